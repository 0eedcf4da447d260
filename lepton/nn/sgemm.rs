//! lepton's own f32 matrix product for x86-64 with AVX2 and FMA: packed panels and a 6×16
//! register-blocked micro-kernel (the BLIS layout), sized for the products of a training step
//! (m = batch 128, n and k of a few hundred), where the `gemm` crate reached about 60 % of one
//! core's FMA peak and its Rayon parallelism paid several thread hand-offs per call.
//!
//! Semantics: `C = A·B` or `C += A·B`. Every element of `C` sums its `k` products in the same
//! order whatever the split between threads (equal blocks of at most `KC` along `k`, in order,
//! each summed from zero and added to `C`), so the result is bit-for-bit the same with 1 or N threads.
//! [`super::kernels::matmul_into`] checks all bounds and calls [`sgemm`]; other CPUs and
//! other float types use the `gemm` crate.

use super::kernels::MatRef;

/// Rows of `C` per micro-tile.
const MR: usize = 6;
/// Columns of `C` per micro-tile (two AVX registers).
const NR: usize = 16;
/// Depth of one block: a `KC × NR` panel of `B` (16 KiB) stays in L1 while the micro-tiles of
/// one column strip are computed.
const KC: usize = 256;

/// Whether this CPU runs [`sgemm`] (AVX2 and FMA; the answer is cached by `std`).
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A raw pointer to `C` that tasks on other threads may write through (each task owns a
/// disjoint rectangle of `C`).
#[derive(Clone, Copy)]
struct DstPtr(*mut f32);
// SAFETY: the pointer is only dereferenced inside `block`, on rectangles that do not overlap
// between tasks, while the `&mut [f32]` it came from is borrowed by `sgemm`.
unsafe impl Send for DstPtr {}
unsafe impl Sync for DstPtr {}

/// `dst = lhs·rhs` (or `+=` when `accumulate`), `dst` row-major with row stride `dst_rs`, on
/// `threads` threads of the Rayon pool. The caller has checked that every index lies inside
/// its slice, that `lhs.cols == rhs.rows`, and that [`available`] is true.
pub(crate) fn sgemm(dst: &mut [f32], dst_rs: usize, accumulate: bool, lhs: MatRef<'_, f32>, rhs: MatRef<'_, f32>, threads: usize) {
    let (m, n) = (lhs.rows, rhs.cols);
    if m == 0 || n == 0 {
        return;
    }
    let c = DstPtr(dst.as_mut_ptr());
    let m_tiles = m.div_ceil(MR);
    let n_tiles = n.div_ceil(NR);
    let parts = threads.clamp(1, m_tiles.max(n_tiles));
    if parts == 1 {
        block(c, dst_rs, accumulate, lhs, rhs, (0, m), (0, n));
        return;
    }
    // Split into `parts` nearly equal ranges of whole tiles. Every task packs all of the
    // operand along the side that is not split: split the columns when `B` is the larger
    // operand (n ≥ m), unless there are too few column tiles.
    let split_n = (n >= m && n_tiles >= parts) || m_tiles < parts;
    let (tiles, tile, len) = if split_n { (n_tiles, NR, n) } else { (m_tiles, MR, m) };
    let range = |p: usize| {
        let lo = (tiles * p / parts * tile).min(len);
        let hi = (tiles * (p + 1) / parts * tile).min(len);
        (lo, hi)
    };
    use rayon::prelude::*;
    (0..parts).into_par_iter().for_each(|p| {
        let r = range(p);
        if split_n {
            block(c, dst_rs, accumulate, lhs, rhs, (0, m), r);
        } else {
            block(c, dst_rs, accumulate, lhs, rhs, r, (0, n));
        }
    });
}

thread_local! {
    /// This thread's buffer of packed `B` panels, reused from call to call.
    static PACK: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Computes the rectangle rows `i0..i1` × columns `j0..j1` of `C`.
fn block(c: DstPtr, rs_c: usize, accumulate: bool, a: MatRef<'_, f32>, b: MatRef<'_, f32>, (i0, i1): (usize, usize), (j0, j1): (usize, usize)) {
    let k = a.cols;
    PACK.with(|cell| {
        let Ok(mut bufs) = cell.try_borrow_mut() else {
            // (re-entered on this thread: only possible if a Rayon task nested here, which
            // `block` never spawns) — fall back to fresh buffers
            let mut fresh = Vec::new();
            block_with(&mut fresh, c, rs_c, accumulate, a, b, (i0, i1), (j0, j1), k);
            return;
        };
        block_with(&mut bufs, c, rs_c, accumulate, a, b, (i0, i1), (j0, j1), k);
    });
}

#[allow(clippy::too_many_arguments)]
fn block_with(
    pb: &mut Vec<f32>,
    c: DstPtr,
    rs_c: usize,
    accumulate: bool,
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    (i0, i1): (usize, usize),
    (j0, j1): (usize, usize),
    k: usize,
) {
    if k == 0 {
        if !accumulate {
            for i in i0..i1 {
                for j in j0..j1 {
                    // SAFETY: (i, j) lies in this task's rectangle, inside `C` (checked by
                    // the caller), and no other task writes it.
                    unsafe { *c.0.add(i * rs_c + j) = 0.0 };
                }
            }
        }
        return;
    }
    let nc = j1 - j0;
    let n_panels = nc.div_ceil(NR);
    // `B` is read in place when its rows are contiguous (then only a last, partial panel is
    // copied), else packed into NR-wide panels. `A` is always read in place: the kernel
    // broadcasts single elements, for which any stride is as fast.
    // (a row stride of a multiple of 1 KiB maps the panel's rows onto few L1 sets: pack then)
    let direct_b = b.cs == 1 && b.rs % 256 != 0;
    // equal depth blocks of at most KC (k = 300 → 150 + 150, not 256 + 44)
    let kc_even = k.div_ceil(k.div_ceil(KC));
    let mut p0 = 0;
    while p0 < k {
        let kc = kc_even.min(k - p0);
        let load_c = accumulate || p0 > 0;
        if direct_b {
            if nc % NR != 0 {
                pack_b(pb, b, p0, kc, j0 + (n_panels - 1) * NR, nc % NR);
            }
        } else {
            pack_b(pb, b, p0, kc, j0, nc);
        }
        for jp in 0..n_panels {
            let j = j0 + jp * NR;
            let nr = NR.min(j1 - j);
            let panel = if direct_b && nr == NR {
                let lo = p0 * b.rs + j;
                Panel { data: &b.data[lo..lo + (kc - 1) * b.rs + NR], rs: b.rs }
            } else if direct_b {
                Panel { data: &pb[..kc * NR], rs: NR }
            } else {
                Panel { data: &pb[jp * kc * NR..(jp + 1) * kc * NR], rs: NR }
            };
            let mut i = i0;
            while i < i1 {
                let mr = MR.min(i1 - i);
                // rows past the end repeat the last row (their results are dropped)
                let rows: [usize; MR] = std::array::from_fn(|r| (i + r.min(mr - 1)) * a.rs + p0 * a.cs);
                // SAFETY: the tile rows i..i+mr, columns j..j+nr lie in this task's
                // rectangle; `tile` checks the reads of `A` and `B` against their slices.
                unsafe { tile(kc, a, rows, panel, c.0.add(i * rs_c + j), rs_c, mr, nr, load_c) };
                i += mr;
            }
        }
        p0 += kc;
    }
}

/// `kc` rows of `NR` columns of `B`: row `p` at `data[p·rs..p·rs + NR]`.
#[derive(Clone, Copy)]
struct Panel<'a> {
    data: &'a [f32],
    rs: usize,
}

/// Packs rows `p0..p0+kc`, columns `j0..j0+nc` of `b` into `NR`-column panels: panel `s`,
/// depth `p`, column `j` at `(s·kc + p)·NR + j`; columns past `nc` are zero.
fn pack_b(buf: &mut Vec<f32>, b: MatRef<'_, f32>, p0: usize, kc: usize, j0: usize, nc: usize) {
    let panels = nc.div_ceil(NR);
    let len = panels * NR * kc;
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    for s in 0..panels {
        let panel = &mut buf[s * NR * kc..(s + 1) * NR * kc];
        let cols = NR.min(nc - s * NR);
        if b.cs == 1 {
            for (p, dst) in panel.chunks_exact_mut(NR).enumerate() {
                let base = (p0 + p) * b.rs + j0 + s * NR;
                dst[..cols].copy_from_slice(&b.data[base..base + cols]);
                dst[cols..].fill(0.0);
            }
        } else if b.rs == 1 && transpose_panel(panel, b, p0, kc, j0 + s * NR, cols) {
            // (contiguous columns transposed 8×8 at a time)
        } else {
            for j in 0..NR {
                if j >= cols {
                    for row in panel.chunks_exact_mut(NR) {
                        row[j] = 0.0;
                    }
                    continue;
                }
                let base = p0 * b.rs + (j0 + s * NR + j) * b.cs;
                if b.rs == 1 {
                    for (row, &v) in panel.chunks_exact_mut(NR).zip(&b.data[base..base + kc]) {
                        row[j] = v;
                    }
                } else {
                    for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                        row[j] = b.data[base + p * b.rs];
                    }
                }
            }
        }
    }
}

/// Packs the panel of columns `j..j+cols` (`cols ≤ NR`), rows `p0..p0+kc` of a `b` whose
/// columns are contiguous (`b.rs == 1`) with AVX 8×8 transposes. The panel's columns past
/// `cols` repeat the last column: they only feed columns of `C` that [`tile`] drops. Returns
/// false (nothing written) when the CPU lacks AVX2 or the panel is not inside `b`'s slice.
fn transpose_panel(panel: &mut [f32], b: MatRef<'_, f32>, p0: usize, kc: usize, j: usize, cols: usize) -> bool {
    let last = (j + cols).checked_sub(1).and_then(|c| c.checked_mul(b.cs)).and_then(|v| v.checked_add(p0 + kc));
    if b.rs != 1 || kc == 0 || cols == 0 || cols > NR || panel.len() < kc * NR || !matches!(last, Some(end) if end <= b.data.len()) || !available() {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: every column j..j+cols (1 ≤ cols ≤ NR), rows p0..p0+kc, lies inside `b.data`
        // (checked above), `panel` holds kc·NR floats, and the CPU has AVX2.
        unsafe { avx2::transpose_panel(b.data.as_ptr().add(j * b.cs + p0), b.cs, kc, cols, panel.as_mut_ptr()) };
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// One `mr × nr` tile of `C` at `c` (row stride `rs_c`): `C (+)= A·B` over depth `kc`, row
/// `r` of `A` starting at `a.data[rows[r]]` (then every `a.cs`), `B` from `panel`. A partial
/// tile goes through a full 6×16 buffer.
///
/// # Safety
/// `c` must point to an `mr × nr` block (row stride `rs_c`) of writable floats that nothing
/// else accesses during the call; `mr ≤ MR`, `nr ≤ NR`; the CPU must have AVX2 and FMA
/// ([`available`]).
#[allow(clippy::too_many_arguments)]
unsafe fn tile(kc: usize, a: MatRef<'_, f32>, rows: [usize; MR], panel: Panel<'_>, c: *mut f32, rs_c: usize, mr: usize, nr: usize, load_c: bool) {
    // every read of the kernel inside its slice (so the unsafe loads below stay in bounds)
    let a_ok = rows.iter().all(|&r| r + (kc - 1) * a.cs < a.data.len());
    let b_ok = (kc - 1) * panel.rs + NR <= panel.data.len();
    if kc == 0 || !a_ok || !b_ok || mr == 0 || nr == 0 || mr > MR || nr > NR {
        debug_assert!(false, "sgemm tile out of bounds");
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let ap = rows.map(|r| a.data[r..].as_ptr());
        if mr == MR && nr == NR {
            // SAFETY: reads checked above; a full tile of `C` at `c`, as the caller promised.
            unsafe { avx2::kernel_6x16(kc, ap, a.cs, panel.data.as_ptr(), panel.rs, c, rs_c, load_c) };
        } else {
            let mut buf = [0.0f32; MR * NR];
            if load_c {
                for i in 0..mr {
                    for j in 0..nr {
                        // SAFETY: (i, j) is inside the caller's mr × nr block.
                        buf[i * NR + j] = unsafe { *c.add(i * rs_c + j) };
                    }
                }
            }
            // SAFETY: reads checked above; `buf` is a full 6×16 tile with row stride NR.
            unsafe { avx2::kernel_6x16(kc, ap, a.cs, panel.data.as_ptr(), panel.rs, buf.as_mut_ptr(), NR, load_c) };
            for i in 0..mr {
                for j in 0..nr {
                    // SAFETY: as above.
                    unsafe { *c.add(i * rs_c + j) = buf[i * NR + j] };
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // `available` is false here, so `sgemm` is never called.
        let _ = (c, rs_c, load_c);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Writes `dst[p·16 + j] = src[min(j, cols - 1)·cs + p]` for `p < kc`, `j < 16`.
    ///
    /// # Safety
    /// `1 ≤ cols ≤ 16`; `src.add(j·cs + p)` is readable for `p < kc`, `j < cols`; `dst` is
    /// writable for `kc·16` floats; the CPU has AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn transpose_panel(src: *const f32, cs: usize, kc: usize, cols: usize, dst: *mut f32) {
        for half in 0..2 {
            // SAFETY (of every `col(j).add(p)` below): the column index is below `cols`.
            let col = |j: usize| unsafe { src.add((half * 8 + j).min(cols - 1) * cs) };
            let mut p = 0;
            while p + 8 <= kc {
                // SAFETY: rows p..p+8 of columns half·8..half·8+8 (see the contract).
                let r: [__m256; 8] = std::array::from_fn(|j| unsafe { _mm256_loadu_ps(col(j).add(p)) });
                let t0 = _mm256_unpacklo_ps(r[0], r[1]);
                let t1 = _mm256_unpackhi_ps(r[0], r[1]);
                let t2 = _mm256_unpacklo_ps(r[2], r[3]);
                let t3 = _mm256_unpackhi_ps(r[2], r[3]);
                let t4 = _mm256_unpacklo_ps(r[4], r[5]);
                let t5 = _mm256_unpackhi_ps(r[4], r[5]);
                let t6 = _mm256_unpacklo_ps(r[6], r[7]);
                let t7 = _mm256_unpackhi_ps(r[6], r[7]);
                let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                // row q of the transposed block: element j = column j at depth p + q
                let rows = [
                    _mm256_permute2f128_ps::<0x20>(s0, s4),
                    _mm256_permute2f128_ps::<0x20>(s1, s5),
                    _mm256_permute2f128_ps::<0x20>(s2, s6),
                    _mm256_permute2f128_ps::<0x20>(s3, s7),
                    _mm256_permute2f128_ps::<0x31>(s0, s4),
                    _mm256_permute2f128_ps::<0x31>(s1, s5),
                    _mm256_permute2f128_ps::<0x31>(s2, s6),
                    _mm256_permute2f128_ps::<0x31>(s3, s7),
                ];
                for (q, v) in rows.into_iter().enumerate() {
                    // SAFETY: (p + q)·16 + half·8 + 7 < kc·16.
                    unsafe { _mm256_storeu_ps(dst.add((p + q) * 16 + half * 8), v) };
                }
                p += 8;
            }
            while p < kc {
                for j in 0..8 {
                    // SAFETY: as above, for the last rows one element at a time.
                    unsafe { *dst.add(p * 16 + half * 8 + j) = *col(j).add(p) };
                }
                p += 1;
            }
        }
    }

    /// The 6×16 micro-kernel: twelve 8-float accumulators, two loads of `B` and six
    /// broadcasts of `A` per depth step. Row `i` of `A` is `a[i][p·cs]`, row `p` of `B` is
    /// `b[p·rs_b..p·rs_b + 16]`.
    ///
    /// # Safety
    /// For every `p < kc`: `a[i].add(p·cs)` (i < 6) and `b.add(p·rs_b + 15)` are readable;
    /// `c` points to a 6×16 block with row stride `rs_c` of writable floats; the CPU has AVX2
    /// and FMA.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn kernel_6x16(kc: usize, a: [*const f32; 6], cs: usize, b: *const f32, rs_b: usize, c: *mut f32, rs_c: usize, load_c: bool) {
        let mut acc = [[_mm256_setzero_ps(); 2]; 6];
        for p in 0..kc {
            // SAFETY: p < kc (see the contract above).
            let (b0, b1) = unsafe { (_mm256_loadu_ps(b.add(p * rs_b)), _mm256_loadu_ps(b.add(p * rs_b + 8))) };
            for (row, ai) in acc.iter_mut().zip(a) {
                // SAFETY: as above.
                let ai = _mm256_set1_ps(unsafe { *ai.add(p * cs) });
                row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
                row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
            }
        }
        for (i, row) in acc.iter().enumerate() {
            // SAFETY: row i < 6 and columns 0..16 of the block at `c`.
            unsafe {
                let r = c.add(i * rs_c);
                let (mut v0, mut v1) = (row[0], row[1]);
                if load_c {
                    v0 = _mm256_add_ps(_mm256_loadu_ps(r), v0);
                    v1 = _mm256_add_ps(_mm256_loadu_ps(r.add(8)), v1);
                }
                _mm256_storeu_ps(r, v0);
                _mm256_storeu_ps(r.add(8), v1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest absolute difference from an f64 reference of `c0 + A·B`, relative to the
    /// largest |product sum| term (f32 rounding over k terms: about k·2⁻²⁴).
    const REL_TOL: f64 = 1e-5;

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n).map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 - 1001.0) / 1001.0).collect()
    }

    /// `A` (m × k) stored row-major or transposed, `B` (k × n) likewise.
    fn check(m: usize, n: usize, k: usize, a_t: bool, b_t: bool, b_rs_pad: usize, accumulate: bool) {
        let a = values(m * k, 1);
        let b_rs = if b_t { k } else { n + b_rs_pad };
        let b = values(if b_t { n * k } else { k * b_rs }, 2);
        let av = if a_t { MatRef { data: &a, rows: m, cols: k, rs: 1, cs: m } } else { MatRef { data: &a, rows: m, cols: k, rs: k, cs: 1 } };
        let bv = if b_t { MatRef { data: &b, rows: k, cols: n, rs: 1, cs: k } } else { MatRef { data: &b, rows: k, cols: n, rs: b_rs, cs: 1 } };
        let dst_rs = n + 3;
        let c0 = values(m * dst_rs, 3);
        let mut results = Vec::new();
        for threads in [1, 2, 3] {
            let mut c = c0.clone();
            sgemm(&mut c, dst_rs, accumulate, av, bv, threads);
            for i in 0..m {
                // the padding between rows is never written
                for j in n..dst_rs {
                    assert_eq!(c[i * dst_rs + j], c0[i * dst_rs + j], "padding written at ({i}, {j})");
                }
                for j in 0..n {
                    let (mut s, mut scale) = (if accumulate { c0[i * dst_rs + j] as f64 } else { 0.0 }, 1.0f64);
                    for p in 0..k {
                        let t = av.data[i * av.rs + p * av.cs] as f64 * bv.data[p * bv.rs + j * bv.cs] as f64;
                        s += t;
                        scale += t.abs();
                    }
                    let err = (c[i * dst_rs + j] as f64 - s).abs() / scale;
                    assert!(err <= REL_TOL, "{m}x{n}x{k} ({a_t}, {b_t}) at ({i}, {j}): {} vs {s}", c[i * dst_rs + j]);
                }
            }
            results.push(c);
        }
        // bit for bit the same whatever the number of threads
        assert!(results.iter().all(|c| c.iter().zip(&results[0]).all(|(x, y)| x.to_bits() == y.to_bits())));
    }

    #[test]
    fn matches_f64_reference_on_edge_shapes_and_layouts() {
        if !available() {
            eprintln!("no AVX2/FMA: lepton's sgemm is not used on this CPU");
            return;
        }
        for &(m, n, k) in &[(1, 1, 1), (6, 16, 1), (7, 17, 3), (13, 5, 300), (5, 33, 257), (128, 100, 300), (20, 40, 600)] {
            for (a_t, b_t) in [(false, false), (false, true), (true, false), (true, true)] {
                check(m, n, k, a_t, b_t, 0, false);
                check(m, n, k, a_t, b_t, 0, true);
            }
        }
        // a row stride of 256 floats (packed path for a row-major B)
        check(9, 20, 40, false, false, 256 - 20, true);
    }

    #[test]
    fn hand_computed_product_and_zero_depth() {
        if !available() {
            return;
        }
        // [[1,2,3],[4,5,6]] · [[1,0],[0,1],[1,1]] = [[4,5],[10,11]]
        let a = [1.0f32, 2., 3., 4., 5., 6.];
        let b = [1.0f32, 0., 0., 1., 1., 1.];
        let mut c = [9.0f32; 4];
        sgemm(&mut c, 2, false, MatRef { data: &a, rows: 2, cols: 3, rs: 3, cs: 1 }, MatRef { data: &b, rows: 3, cols: 2, rs: 2, cs: 1 }, 2);
        assert_eq!(c, [4., 5., 10., 11.]);
        sgemm(&mut c, 2, true, MatRef { data: &a, rows: 2, cols: 3, rs: 3, cs: 1 }, MatRef { data: &b, rows: 3, cols: 2, rs: 2, cs: 1 }, 1);
        assert_eq!(c, [8., 10., 20., 22.]);
        // k = 0: C = 0, or unchanged when accumulating
        let mut c = [9.0f32; 4];
        sgemm(&mut c, 2, true, MatRef { data: &[], rows: 2, cols: 0, rs: 0, cs: 1 }, MatRef { data: &[], rows: 0, cols: 2, rs: 2, cs: 1 }, 2);
        assert_eq!(c, [9.0; 4]);
        sgemm(&mut c, 2, false, MatRef { data: &[], rows: 2, cols: 0, rs: 0, cs: 1 }, MatRef { data: &[], rows: 0, cols: 2, rs: 2, cs: 1 }, 2);
        assert_eq!(c, [0.0; 4]);
    }
}
