//! Integer dot products `Σ x[k]·w[k]` of `u8` activations and `i8` weights into `i32`: an AVX2
//! kernel and a portable one, picked at run time.
//!
//! The AVX2 kernel widens 16 `u8` and 16 `i8` to `i16` (`_mm256_cvtepu8_epi16`,
//! `_mm256_cvtepi8_epi16`), multiplies and adds adjacent pairs into eight `i32` lanes
//! (`_mm256_madd_epi16`: `|255·128·2| < 2^31`, exact), and sums the lanes at the end. Integer
//! addition is associative, and both kernels wrap on overflow (two's complement, like the
//! vector adds), so they return the same bits for every input — the test suite checks it.
//! [`Kernel::Portable`] forces the scalar path.

use rayon::prelude::*;

use crate::error::{LeptonError, Result};

/// Which dot-product kernel to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernel {
    /// AVX2 when the CPU has it (`is_x86_feature_detected!("avx2")`), else portable.
    #[default]
    Auto,
    /// The portable scalar loop.
    Portable,
    /// The AVX2 kernel; an error on a CPU without AVX2.
    Avx2,
}

/// Whether this CPU can run [`Kernel::Avx2`].
pub fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl Kernel {
    /// The kernel that will actually run: `Auto` resolved, `Avx2` checked.
    pub fn resolve(self) -> Result<Kernel> {
        match self {
            Kernel::Auto if avx2_available() => Ok(Kernel::Avx2),
            Kernel::Auto | Kernel::Portable => Ok(Kernel::Portable),
            Kernel::Avx2 if avx2_available() => Ok(Kernel::Avx2),
            Kernel::Avx2 => Err(LeptonError::config("kernel", "Avx2", "this CPU does not support AVX2; use Kernel::Auto or Kernel::Portable")),
        }
    }
}

fn dot_portable(x: &[u8], w: &[i8]) -> i32 {
    x.iter().zip(w).fold(0i32, |acc, (&a, &b)| acc.wrapping_add(i32::from(a) * i32::from(b)))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(x: &[u8], w: &[i8]) -> i32 {
    use std::arch::x86_64::*;
    let n = x.len().min(w.len());
    let full = n - n % 16;
    let mut acc = _mm256_setzero_si256();
    let mut i = 0;
    while i < full {
        // SAFETY: i + 16 <= full <= len of both slices, so each 16-byte unaligned load
        // (`_mm_loadu_si128` has no alignment requirement) stays inside its slice.
        let (xv, wv) = unsafe {
            (
                _mm_loadu_si128(x.as_ptr().add(i) as *const __m128i),
                _mm_loadu_si128(w.as_ptr().add(i) as *const __m128i),
            )
        };
        let prod = _mm256_madd_epi16(_mm256_cvtepu8_epi16(xv), _mm256_cvtepi8_epi16(wv));
        acc = _mm256_add_epi32(acc, prod);
        i += 16;
    }
    let mut lanes = [0i32; 8];
    // SAFETY: `lanes` is 32 writable bytes; `_mm256_storeu_si256` has no alignment requirement.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, acc) };
    let head = lanes.iter().fold(0i32, |a, &l| a.wrapping_add(l));
    head.wrapping_add(dot_portable(&x[full..n], &w[full..n]))
}

fn dot_resolved(x: &[u8], w: &[i8], kernel: Kernel) -> i32 {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Kernel::Avx2` only comes out of `Kernel::resolve`, which checked
        // `is_x86_feature_detected!("avx2")`.
        Kernel::Avx2 => unsafe { dot_avx2(x, w) },
        _ => dot_portable(x, w),
    }
}

/// `Σ x[k]·w[k]` (wrapping `i32`) with `kernel`. Errors if the lengths differ or the kernel
/// cannot run here.
pub fn dot_u8_i8(x: &[u8], w: &[i8], kernel: Kernel) -> Result<i32> {
    if x.len() != w.len() {
        return Err(LeptonError::Shape { op: "u8·i8 dot", path: "weights".into(), expected: vec![x.len()], found: vec![w.len()] });
    }
    Ok(dot_resolved(x, w, kernel.resolve()?))
}

/// Rows of samples per parallel task of [`matmul_u8_i8`] and [`PackedWeights::matmul`].
const TASK_ROWS: usize = 32;
/// Outputs per packed weight block (two AVX2 vectors of eight `i32` accumulators).
const BLOCK: usize = 16;

/// `i8` weights `(outputs, inputs)` packed once for the AVX2 GEMM: blocks of [`BLOCK`]
/// outputs, inside a block four consecutive inputs of each output side by side
/// (`[block][k / 4][output in block][k % 4]`), inputs padded to a multiple of 4 and outputs to
/// a multiple of [`BLOCK`] with zeros. One 32-byte load then holds four inputs of eight
/// outputs, the operand of `_mm256_maddubs_epi16` against four input codes broadcast to every
/// lane.
///
/// Exactness. `maddubs` adds pairs of `u8 × i8` products into saturating `i16`:
/// - codes `x ≤ 127` (7-bit activations, or any row whose codes happen to stay below 128):
///   `|2·127·127| = 32258 < 2^15`, so it never saturates;
/// - 8-bit codes: the kernel runs on `x − 128 ∈ [−128, 127]` as `|x − 128|` (unsigned,
///   ≤ 128) times `w·sign(x − 128)` (|w| ≤ 127: negating it cannot wrap), pairs bounded by
///   `2·128·127 = 32512`, and adds back `128·Σ_k w[o, k]`, precomputed per output. (A matrix
///   holding −128, which no symmetric quantizer makes, runs 8-bit codes on the portable loop.)
///
/// Then `_mm256_madd_epi16` against ones widens each pair sum into `i32` lanes. Every step is
/// exact integer arithmetic, so the result equals the portable kernel's bit for bit (tested).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PackedWeights {
    outputs: usize,
    inputs: usize,
    /// `inputs` rounded up to a multiple of 4.
    padded: usize,
    data: Vec<i8>,
    /// `128 · Σ_k w[o, k]` per output (the 8-bit correction).
    shift_sums: Vec<i32>,
    /// Whether some weight is −128 (no layer makes one: symmetric codes stop at ±127); the
    /// 8-bit path could not negate it, so such matrices run 8-bit codes on the portable loop.
    has_min: bool,
}

impl PackedWeights {
    /// Packs `w` `(outputs, inputs)`. Errors if the sizes do not match.
    pub fn new(w: &[i8], outputs: usize, inputs: usize) -> Result<PackedWeights> {
        if inputs == 0 || outputs == 0 || outputs.checked_mul(inputs) != Some(w.len()) {
            return Err(LeptonError::Shape { op: "u8·i8 matmul", path: "weights".into(), expected: vec![outputs, inputs], found: vec![w.len()] });
        }
        let padded = inputs.div_ceil(4) * 4;
        let blocks = outputs.div_ceil(BLOCK);
        let mut data = vec![0i8; blocks * padded * BLOCK];
        for (o, row) in w.chunks_exact(inputs).enumerate() {
            let (b, j) = (o / BLOCK, o % BLOCK);
            for (k, &v) in row.iter().enumerate() {
                data[b * padded * BLOCK + (k / 4) * 4 * BLOCK + j * 4 + k % 4] = v;
            }
        }
        let shift_sums = w.chunks_exact(inputs).map(|row| 128 * row.iter().map(|&v| i32::from(v)).sum::<i32>()).collect();
        let has_min = w.contains(&i8::MIN);
        Ok(PackedWeights { outputs, inputs, padded, data, shift_sums, has_min })
    }

    /// `x · wᵀ` for `x` `(batch, inputs)` on the AVX2 kernel, into `out` `(batch, outputs)`,
    /// one thread. The caller checked the sizes and that AVX2 runs here.
    #[cfg(target_arch = "x86_64")]
    fn gemm_avx2(&self, x: &[u8], w: &[i8], batch: usize, out: &mut [i32]) {
        let (k, kp) = (self.inputs, self.padded);
        let wide = x.iter().any(|&v| v > 127);
        if wide && self.has_min {
            return self.gemm(x, w, batch, out, Kernel::Portable);
        }
        // rows copied with padding (unless 7-bit rows need none); for 8-bit codes as x − 128
        // (sign) and |x − 128| (magnitude)
        let copy = wide || k != kp;
        let mut sign = vec![0u8; if copy { batch * kp } else { 0 }];
        let mut mag = vec![0u8; if wide { batch * kp } else { 0 }];
        if copy {
            for (dst, row) in sign.chunks_exact_mut(kp).zip(x.chunks_exact(k)) {
                dst[..k].copy_from_slice(row);
            }
            if wide {
                // SAFETY: the caller checked AVX2 (`Kernel::resolve`).
                unsafe { shift_codes_avx2(&mut sign, &mut mag) };
            }
        }
        let sign: &[u8] = if copy { &sign } else { x };
        self.tiles_avx2(sign, &mag, wide, batch, out);
    }

    /// Inputs rounded up to a multiple of 4: the row length of [`PackedWeights::tiles_avx2`]'s
    /// operands.
    pub(crate) fn padded_inputs(&self) -> usize {
        self.padded
    }

    /// Whether the prepared 8-bit path ([`PackedWeights::tiles_avx2`] with `wide`) can run:
    /// no weight is −128.
    pub(crate) fn takes_wide(&self) -> bool {
        !self.has_min
    }

    /// The AVX2 GEMM on prepared rows of [`PackedWeights::padded_inputs`] codes, zero padded:
    /// `sign` holds the codes themselves (`wide == false`, every code ≤ 127) or `x − 128` as
    /// bytes (`x ^ 0x80`) with `mag = |x − 128|` (`wide`, only when
    /// [`PackedWeights::takes_wide`]). Rows whose lengths do not match are left unwritten; the
    /// caller checked the sizes and that AVX2 runs here.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn tiles_avx2(&self, sign: &[u8], mag: &[u8], wide: bool, batch: usize, out: &mut [i32]) {
        let kp = self.padded;
        if sign.len() < batch * kp || (wide && mag.len() < batch * kp) || out.len() < batch * self.outputs {
            return;
        }
        let mut tile = [[0i32; BLOCK]; 4];
        for (blk, w) in self.data.chunks_exact(kp * BLOCK).enumerate() {
            let o0 = blk * BLOCK;
            let width = BLOCK.min(self.outputs - o0);
            let mut r = 0;
            while r < batch {
                let rows = (batch - r).min(4);
                let (s, m) = (&sign[r * kp..(r + rows) * kp], if wide { &mag[r * kp..(r + rows) * kp] } else { &[][..] });
                // SAFETY: the caller checked AVX2 (`Kernel::resolve`); `s` (and `m` when
                // wide) hold `rows` padded rows of `kp` codes, `w` one block of `kp·BLOCK`.
                unsafe {
                    match (rows, wide) {
                        (4, false) => tile_avx2::<4, false>(s, m, w, kp, &mut tile),
                        (3, false) => tile_avx2::<3, false>(s, m, w, kp, &mut tile),
                        (2, false) => tile_avx2::<2, false>(s, m, w, kp, &mut tile),
                        (_, false) => tile_avx2::<1, false>(s, m, w, kp, &mut tile),
                        (4, true) => tile_avx2::<4, true>(s, m, w, kp, &mut tile),
                        (3, true) => tile_avx2::<3, true>(s, m, w, kp, &mut tile),
                        (2, true) => tile_avx2::<2, true>(s, m, w, kp, &mut tile),
                        (_, true) => tile_avx2::<1, true>(s, m, w, kp, &mut tile),
                    }
                }
                for (i, t) in tile.iter().take(rows).enumerate() {
                    let dst = &mut out[(r + i) * self.outputs + o0..(r + i) * self.outputs + o0 + width];
                    if wide {
                        for ((d, &v), &c) in dst.iter_mut().zip(t).zip(&self.shift_sums[o0..o0 + width]) {
                            *d = v.wrapping_add(c);
                        }
                    } else {
                        dst.copy_from_slice(&t[..width]);
                    }
                }
                r += rows;
            }
        }
    }

    /// `x · wᵀ` for `x` `(batch, inputs)` into `out` `(batch, outputs)`, one thread.
    pub(crate) fn gemm(&self, x: &[u8], w: &[i8], batch: usize, out: &mut [i32], kernel: Kernel) {
        #[cfg(target_arch = "x86_64")]
        if kernel == Kernel::Avx2 {
            return self.gemm_avx2(x, w, batch, out);
        }
        for (o, xb) in out.chunks_exact_mut(self.outputs).zip(x.chunks_exact(self.inputs)) {
            for (acc, wc) in o.iter_mut().zip(w.chunks_exact(self.inputs)) {
                *acc = dot_resolved(xb, wc, kernel);
            }
        }
    }

    /// `x · wᵀ` (raw `i32` products) for `x` `(batch, inputs)`, where `w` is the unpacked
    /// matrix these were packed from (the portable kernel reads it), samples in parallel.
    pub(crate) fn matmul(&self, x: &[u8], w: &[i8], batch: usize, kernel: Kernel) -> Result<Vec<i32>> {
        if batch == 0 || batch.checked_mul(self.inputs) != Some(x.len()) {
            return Err(LeptonError::Shape { op: "u8·i8 matmul", path: "input".into(), expected: vec![batch.max(1), self.inputs], found: vec![x.len()] });
        }
        let kernel = kernel.resolve()?;
        let mut out = vec![0i32; batch * self.outputs];
        out.par_chunks_mut(TASK_ROWS * self.outputs).zip(x.par_chunks(TASK_ROWS * self.inputs)).for_each(|(o, xb)| {
            self.gemm(xb, w, xb.len() / self.inputs, o, kernel);
        });
        Ok(out)
    }
}

/// `x` → `x ^ 0x80` (that is `x − 128` as an `i8`) in place, and `|x − 128|` into `mag`: the
/// 8-bit operands of the AVX2 GEMM, over a whole buffer (vectorized by LLVM for AVX2). Zero
/// padding becomes 0x80 / 128, which meets zero weights.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(crate) fn shift_codes_avx2(x: &mut [u8], mag: &mut [u8]) {
    for (v, m) in x.iter_mut().zip(mag.iter_mut()) {
        *m = v.abs_diff(128);
        *v ^= 0x80;
    }
}

/// A `ROWS × 16` tile of `x · wᵀ` over the whole (padded) input: `sign` holds `ROWS` rows of
/// `kp` codes (`WIDE`: `x − 128` as bytes, with `mag` = `|x − 128|`), `w` one packed block.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn tile_avx2<const ROWS: usize, const WIDE: bool>(sign: &[u8], mag: &[u8], w: &[i8], kp: usize, tile: &mut [[i32; BLOCK]; 4]) {
    use std::arch::x86_64::*;
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_si256(); 2]; ROWS];
    let steps = kp / 4;
    if sign.len() < ROWS * kp || (WIDE && mag.len() < ROWS * kp) || w.len() < steps * 64 {
        return;
    }
    let (sp, mp, wp) = (sign.as_ptr(), mag.as_ptr(), w.as_ptr());
    for s in 0..steps {
        // SAFETY: `w` holds at least `steps` × 64 bytes (checked above), so both 32-byte
        // loads at `64·s` and `64·s + 32` stay inside it (unaligned loads need no alignment).
        let (w0, w1) = unsafe {
            let p = wp.add(64 * s) as *const __m256i;
            (_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1)))
        };
        for (r, a) in acc.iter_mut().enumerate() {
            let at = r * kp + 4 * s;
            // SAFETY: at + 4 <= ROWS·kp <= the length of `sign` (and of `mag` when WIDE),
            // checked above; `read_unaligned` needs no alignment.
            let (p0, p1) = unsafe {
                if WIDE {
                    let sv = _mm256_set1_epi32((sp.add(at) as *const i32).read_unaligned());
                    let mv = _mm256_set1_epi32((mp.add(at) as *const i32).read_unaligned());
                    (_mm256_maddubs_epi16(mv, _mm256_sign_epi8(w0, sv)), _mm256_maddubs_epi16(mv, _mm256_sign_epi8(w1, sv)))
                } else {
                    let xv = _mm256_set1_epi32((sp.add(at) as *const i32).read_unaligned());
                    (_mm256_maddubs_epi16(xv, w0), _mm256_maddubs_epi16(xv, w1))
                }
            };
            a[0] = _mm256_add_epi32(a[0], _mm256_madd_epi16(p0, ones));
            a[1] = _mm256_add_epi32(a[1], _mm256_madd_epi16(p1, ones));
        }
    }
    for (t, a) in tile.iter_mut().zip(&acc) {
        // SAFETY: `t` is 16 writable `i32` = two 32-byte unaligned stores.
        unsafe {
            let p = t.as_mut_ptr() as *mut __m256i;
            _mm256_storeu_si256(p, a[0]);
            _mm256_storeu_si256(p.add(1), a[1]);
        }
    }
}

/// `acc = x · wᵀ`: `x` is `(batch, inputs)` `u8`, `w` is `(outputs, inputs)` `i8`, the result
/// `(batch, outputs)` `i32` (raw products: no zero point, no bias). Packs `w` for the call
/// (layers keep a `PackedWeights` instead); samples run in parallel; every accumulator is
/// exact, so the result does not depend on the kernel or the thread count.
pub fn matmul_u8_i8(x: &[u8], batch: usize, w: &[i8], outputs: usize, inputs: usize, kernel: Kernel) -> Result<Vec<i32>> {
    let packed = PackedWeights::new(w, outputs, inputs)?;
    if batch == 0 || batch.checked_mul(inputs) != Some(x.len()) {
        return Err(LeptonError::Shape { op: "u8·i8 matmul", path: "input".into(), expected: vec![batch.max(1), inputs], found: vec![x.len()] });
    }
    packed.matmul(x, w, batch, kernel)
}
