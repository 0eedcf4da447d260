//! Direct convolution for inference: a convolution with few output channels, such as
//! LeNet-5's first layer or a structurally pruned one, computed from the input planes without
//! patch columns.
//!
//! im2col + GEMM (the path used in training, [`super::conv`]) copies `C·K·K` values per output
//! pixel and then runs a GEMM whose `M` is the number of output channels. With few output
//! channels the copy costs about as much as the product, and the GEMM's tiles are mostly
//! padding; the copy does not shrink when structured pruning removes filters. Here each output row is
//! accumulated in registers straight from the input rows:
//! `out[o, y, x] = b[o] + Σ_{c,i,j} w[o, c, i, j] · in[c, y + i, x + j]`. Each input vector
//! is read once for 4 output channels.
//!
//! The sum runs in `(c, i, j)` order, starting from the bias, with fused multiply-adds.
//! The im2col path adds the bias after the GEMM's sum, so the two paths can differ in the last
//! bits. Results do not depend on the thread count.

/// Whether [`conv_sample_f32`] can run here (x86_64 with AVX2 and FMA).
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

/// Output channels at or below which inference uses the direct path (when [`available`]).
/// Measured on LeNet-5's layers (`cargo bench -p lepton-benches --bench prune`, one thread and
/// two): with 16 filters (conv2) the direct loop still beats im2col + GEMM (dense LeNet-5
/// 6.7–6.9 ms against 7.5–7.9 ms per 256 images on one thread). Wider layers keep the GEMM,
/// whose tiles fill up there.
pub(crate) const MAX_OUT_CHANNELS: usize = 16;

/// Extents of one sample's convolution: `C` input planes of `h × w`, `K × K` filters, `O`
/// outputs of `(h − K + 1) × (w − K + 1)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Extents {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub o: usize,
}

impl Extents {
    fn oh(&self) -> usize {
        self.h + 1 - self.k
    }
    fn ow(&self) -> usize {
        self.w + 1 - self.k
    }
    /// Whether the slices have the lengths these extents need (and the extents are valid).
    fn fits(&self, x: usize, wt: usize, b: usize, out: usize) -> bool {
        self.k >= 1
            && self.h >= self.k
            && self.w >= self.k
            && x == self.c * self.h * self.w
            && wt == self.o * self.c * self.k * self.k
            && b == self.o
            && out == self.o * self.oh() * self.ow()
    }
}

/// One sample: `out (O, OH, OW) = conv(x (C, H, W), w (O, C, K, K)) + b`. Returns `false`
/// (and writes nothing) when the CPU lacks AVX2/FMA or a slice length does not match `e`.
pub(crate) fn conv_sample_f32(x: &[f32], wt: &[f32], b: &[f32], e: Extents, out: &mut [f32]) -> bool {
    if !e.fits(x.len(), wt.len(), b.len(), out.len()) || !available() {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: AVX2 and FMA were detected above, and `fits` checked every slice length the
        // kernel's index arithmetic relies on.
        unsafe { avx2::conv_sample(x, wt, b, e, out) };
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The same sum in plain scalar code (with `mul_add`, in the same order): the definition the
/// vector kernel is tested against.
#[cfg(test)]
fn conv_sample_scalar(x: &[f32], wt: &[f32], b: &[f32], e: Extents, out: &mut [f32]) {
    let (oh, ow, kk) = (e.oh(), e.ow(), e.k * e.k);
    for o in 0..e.o {
        for y in 0..oh {
            for xo in 0..ow {
                let mut acc = b[o];
                for c in 0..e.c {
                    for i in 0..e.k {
                        for j in 0..e.k {
                            let wv = wt[(o * e.c + c) * kk + i * e.k + j];
                            acc = wv.mul_add(x[(c * e.h + y + i) * e.w + xo + j], acc);
                        }
                    }
                }
                out[(o * oh + y) * ow + xo] = acc;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Extents;
    use std::arch::x86_64::*;

    /// Output channels per register block.
    const OB: usize = 4;

    /// # Safety
    /// The CPU must have AVX2 and FMA, and the slices the lengths `Extents::fits` checks.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn conv_sample(x: &[f32], wt: &[f32], b: &[f32], e: Extents, out: &mut [f32]) {
        let a = Args { x, wt, b, e };
        // SAFETY: the caller guarantees AVX2/FMA and the slice lengths (see `# Safety`).
        unsafe {
            let (oh, ow) = (e.oh(), e.ow());
            let mut o0 = 0;
            while o0 < e.o {
                let nb = (e.o - o0).min(OB);
                for y in 0..oh {
                    let mut x0 = 0;
                    while x0 + 24 <= ow {
                        block_dispatch::<3>(nb, a, out, o0, y, x0);
                        x0 += 24;
                    }
                    while x0 + 8 <= ow {
                        block_dispatch::<1>(nb, a, out, o0, y, x0);
                        x0 += 8;
                    }
                    for xo in x0..ow {
                        for q in 0..nb {
                            let o = o0 + q;
                            out[(o * oh + y) * ow + xo] = pixel(a, o, y, xo);
                        }
                    }
                }
                o0 += nb;
            }
        }
    }

    /// One sample's operands.
    #[derive(Clone, Copy)]
    struct Args<'a> {
        x: &'a [f32],
        wt: &'a [f32],
        b: &'a [f32],
        e: Extents,
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn block_dispatch<const NV: usize>(nb: usize, a: Args<'_>, out: &mut [f32], o0: usize, y: usize, x0: usize) {
        // SAFETY: the caller guarantees AVX2/FMA and the slice lengths (see `# Safety`).
        unsafe {
            match nb {
                4 => block::<4, NV>(a, out, o0, y, x0),
                3 => block::<3, NV>(a, out, o0, y, x0),
                2 => block::<2, NV>(a, out, o0, y, x0),
                _ => block::<1, NV>(a, out, o0, y, x0),
            }
        }
    }

    /// `Q` output channels from `o0`, output row `y`, `8·NV` pixels from `x0`, held in
    /// registers for the whole `(c, i, j)` sum.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block<const Q: usize, const NV: usize>(a: Args<'_>, out: &mut [f32], o0: usize, y: usize, x0: usize) {
        let Args { x, wt, b, e } = a;
        // SAFETY: the caller guarantees AVX2/FMA and the slice lengths (see `# Safety`).
        unsafe {
            let (oh, ow, kk) = (e.oh(), e.ow(), e.k * e.k);
            let xp = x.as_ptr();
            let wp = wt.as_ptr();
            let mut acc = [[_mm256_setzero_ps(); NV]; Q];
            for (q, a) in acc.iter_mut().enumerate() {
                *a = [_mm256_set1_ps(b[o0 + q]); NV];
            }
            for c in 0..e.c {
                for i in 0..e.k {
                    // input row c, y + i, from column x0: the block reads columns
                    // x0 .. x0 + 8·NV + K − 1 ≤ ow + K − 1 = w, inside the row
                    let row = xp.add((c * e.h + y + i) * e.w + x0);
                    for j in 0..e.k {
                        let mut v = [_mm256_setzero_ps(); NV];
                        for (n, vn) in v.iter_mut().enumerate() {
                            *vn = _mm256_loadu_ps(row.add(j + 8 * n));
                        }
                        for (q, a) in acc.iter_mut().enumerate() {
                            let wq = _mm256_broadcast_ss(&*wp.add(((o0 + q) * e.c + c) * kk + i * e.k + j));
                            for (an, vn) in a.iter_mut().zip(&v) {
                                *an = _mm256_fmadd_ps(wq, *vn, *an);
                            }
                        }
                    }
                }
            }
            let op = out.as_mut_ptr();
            for (q, a) in acc.iter().enumerate() {
                let dst = op.add(((o0 + q) * oh + y) * ow + x0);
                for (n, an) in a.iter().enumerate() {
                    _mm256_storeu_ps(dst.add(8 * n), *an);
                }
            }
        }
    }

    /// One output pixel in scalar code, in the vector loop's order.
    #[target_feature(enable = "avx2,fma")]
    fn pixel(a: Args<'_>, o: usize, y: usize, xo: usize) -> f32 {
        let Args { x, wt, b, e } = a;
        let kk = e.k * e.k;
        let mut acc = b[o];
        for c in 0..e.c {
            for i in 0..e.k {
                for j in 0..e.k {
                    acc = wt[(o * e.c + c) * kk + i * e.k + j].mul_add(x[(c * e.h + y + i) * e.w + xo + j], acc);
                }
            }
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        // a fixed pseudo-random sequence in [-1, 1)
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// The vector kernel equals the scalar definition bit for bit: every block height (1–4
    /// channels and more), 24- and 8-wide blocks and scalar tails, several input channels.
    #[test]
    fn vector_kernel_equals_scalar_definition() {
        if !available() {
            return;
        }
        let cases = [
            Extents { c: 1, h: 28, w: 28, k: 5, o: 6 },
            Extents { c: 1, h: 28, w: 28, k: 5, o: 3 },
            Extents { c: 3, h: 12, w: 12, k: 5, o: 8 },
            Extents { c: 2, h: 9, w: 40, k: 3, o: 7 },
            Extents { c: 1, h: 5, w: 5, k: 5, o: 2 },
            Extents { c: 4, h: 6, w: 13, k: 1, o: 5 },
        ];
        for (t, e) in cases.into_iter().enumerate() {
            let x = values(e.c * e.h * e.w, t as u32);
            let wt = values(e.o * e.c * e.k * e.k, 100 + t as u32);
            let b = values(e.o, 200 + t as u32);
            let n = e.o * e.oh() * e.ow();
            let (mut got, mut want) = (vec![f32::NAN; n], vec![0.0; n]);
            assert!(conv_sample_f32(&x, &wt, &b, e, &mut got), "case {t}");
            conv_sample_scalar(&x, &wt, &b, e, &mut want);
            let (gb, wb): (Vec<u32>, Vec<u32>) = (got.iter().map(|v| v.to_bits()).collect(), want.iter().map(|v| v.to_bits()).collect());
            assert_eq!(gb, wb, "case {t}: {e:?}");
        }
    }

    /// A hand-computed case: a 3×3 input, one 2×2 filter of ones, bias 0.5.
    #[test]
    fn hand_computed_values() {
        let e = Extents { c: 1, h: 3, w: 3, k: 2, o: 1 };
        let x = [1.0f32, 2., 3., 4., 5., 6., 7., 8., 9.];
        let mut want = [0.0f32; 4];
        conv_sample_scalar(&x, &[1.0; 4], &[0.5], e, &mut want);
        assert_eq!(want, [12.5, 16.5, 24.5, 28.5]);
        let mut got = [0.0f32; 4];
        if conv_sample_f32(&x, &[1.0; 4], &[0.5], e, &mut got) {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn mismatched_lengths_are_refused_and_write_nothing() {
        let e = Extents { c: 1, h: 3, w: 3, k: 2, o: 1 };
        let mut out = [7.0f32; 4];
        assert!(!conv_sample_f32(&[1.0; 8], &[1.0; 4], &[0.5], e, &mut out));
        assert!(!conv_sample_f32(&[1.0; 9], &[1.0; 4], &[0.5], e, &mut out[..3]));
        assert!(!conv_sample_f32(&[1.0; 9], &[1.0; 4], &[0.5], Extents { k: 4, ..e }, &mut out));
        assert_eq!(out, [7.0; 4]);
    }
}
