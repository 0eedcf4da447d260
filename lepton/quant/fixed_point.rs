//! Fixed-point requantization (Jacob et al. 2018, §2.2; gemmlowp `fixedpoint.h`).
//!
//! An integer layer's `i32` accumulator has scale `S_in·S_w`; its output code needs scale
//! `S_out`, so the accumulator is multiplied by the real `M = S_in·S_w / S_out`. Integer-only
//! hardware represents `M = 2^(−n) · M0 / 2^31` with `M0` an `i32` in `[2^30, 2^31)` (the
//! mantissa, a Q0.31 number in `[0.5, 1)`) and applies it as
//! `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc, M0), n)`: a rounded high half of
//! the 64-bit product, then a rounding arithmetic right shift. `M ≥ 1` (rare: an output range
//! narrower than the accumulator's step) gets a negative `n`, applied as a saturating left shift
//! of the accumulator first, as TFLite's `MultiplyByQuantizedMultiplier` does.

use crate::error::{LeptonError, Result};

/// gemmlowp's `SaturatingRoundingDoublingHighMul`: `round(a·b / 2^31)` with the 64-bit
/// product, the nudge `2^30` (or `1 − 2^30` for a negative product) and truncating division,
/// saturating the one overflow case `a = b = i32::MIN` to `i32::MAX` (ARM's `VQRDMULH`).
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // |ab + nudge| / 2^31 < 2^31 except for the case handled above
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp's `RoundingDivideByPOT`: `x / 2^exponent` rounded to nearest, ties away from zero
/// (an arithmetic right shift with a rounding correction). `exponent` is clamped to `0..=31`.
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    let exponent = exponent.clamp(0, 31);
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// A real multiplier `M = m0 · 2^(−31) · 2^(−shift)` in integer form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedMultiplier {
    /// Mantissa in `[2^30, 2^31)`.
    pub m0: i32,
    /// Right shift `n` (negative: a left shift, for `M ≥ 1`).
    pub shift: i32,
}

/// Largest multiplier accepted: beyond it an accumulator would saturate long before the
/// output range is reached.
const MAX_MULTIPLIER: f64 = (1u32 << 15) as f64;

impl FixedMultiplier {
    /// The integer form of `m` (finite, `0 < m < 2^15`): `m = f·2^(−n)` with `f ∈ [0.5, 1)`,
    /// `m0 = round(f·2^31)` (if that rounds up to `2^31`, `m0 = 2^30` and `n − 1`).
    pub fn from_real(m: f64) -> Result<FixedMultiplier> {
        if !m.is_finite() || m <= 0.0 || m >= MAX_MULTIPLIER {
            return Err(LeptonError::config(
                "requantization multiplier",
                m,
                "must be finite and in (0, 2^15); check that the output scale is not tiny compared with S_in·S_w",
            ));
        }
        let (mut f, mut n) = (m, 0i32);
        while f < 0.5 {
            f *= 2.0;
            n += 1;
        }
        while f >= 1.0 {
            f /= 2.0;
            n -= 1;
        }
        let mut q = (f * (1u64 << 31) as f64).round() as i64;
        if q == 1i64 << 31 {
            q /= 2;
            n -= 1;
        }
        Ok(FixedMultiplier { m0: q as i32, shift: n })
    }

    /// The real number represented.
    pub fn real(&self) -> f64 {
        self.m0 as f64 / (1u64 << 31) as f64 * 2f64.powi(-self.shift)
    }

    /// `round(x · M)` in integer arithmetic, exactly as gemmlowp / TFLite.
    pub fn apply(&self, x: i32) -> i32 {
        if self.shift < 0 {
            let x = x.saturating_mul(1i32 << (-self.shift).min(30));
            saturating_rounding_doubling_high_mul(x, self.m0)
        } else if self.shift > 31 {
            // |x·m0/2^31| < 2^31, so dividing by 2^32 or more rounds to 0
            0
        } else {
            rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, self.m0), self.shift)
        }
    }
}

/// Per-channel requantization of one layer, laid out for [`Requantizer::run`]: output code
/// `clamp(z + M_c·(acc + addend_c), lo, hi)` with `M_c` applied exactly as
/// [`FixedMultiplier::apply`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Requantizer {
    multipliers: Vec<FixedMultiplier>,
    /// Added to the raw accumulator first (bias minus the zero-point offset, wrapping).
    addend: Vec<i32>,
    m0: Vec<i32>,
    shift: Vec<i32>,
    /// Every shift in `0..=31` (`M < 1`, the usual case): the AVX2 path applies.
    vector: bool,
    /// `addend`, `m0` and `shift` repeated over `group` rows, `group · channels` a multiple of
    /// 8: narrow layers (a conv's 6 channels) run eight lanes at a time across rows.
    group: usize,
    tiled: [Vec<i32>; 3],
    zero_point: i32,
    lo: i32,
    hi: i32,
}

/// Greatest common divisor (`gcd(n, 0) = n`).
fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Requantizer {
    /// `addend[c]` is added to channel `c`'s accumulator, then `multipliers[c]`, then `zero_point`,
    /// then the clamp to `lo..=hi` (`0 ≤ lo ≤ hi ≤ 255`).
    pub(crate) fn new(multipliers: Vec<FixedMultiplier>, addend: Vec<i32>, zero_point: i32, lo: i32, hi: i32) -> Requantizer {
        let m0 = multipliers.iter().map(|m| m.m0).collect();
        let shift = multipliers.iter().map(|m| m.shift).collect();
        let vector = multipliers.iter().all(|m| (0..=31).contains(&m.shift));
        let n = multipliers.len().max(1);
        let group = 8 / gcd(n, 8);
        let tile = |v: &Vec<i32>| v.iter().copied().cycle().take(v.len() * group).collect::<Vec<i32>>();
        let tiled = [tile(&addend), tile(&m0), tile(&shift)];
        Requantizer { multipliers, addend, m0, shift, vector, group, tiled, zero_point, lo, hi }
    }

    /// Channels `from..` of one row: `acc` and `out` start at channel `from`.
    fn scalar(&self, acc: &[i32], out: &mut [u8], from: usize) {
        let channels = self.multipliers.iter().zip(&self.addend).skip(from);
        for ((o, &a), (m, &add)) in out.iter_mut().zip(acc).zip(channels) {
            *o = self.zero_point.saturating_add(m.apply(a.wrapping_add(add))).clamp(self.lo, self.hi) as u8;
        }
    }

    /// Output codes of accumulator rows `acc` (each as long as the channel list) into `out`;
    /// `avx2`: the CPU has AVX2 (same bits either way, tested).
    pub(crate) fn run(&self, acc: &[i32], out: &mut [u8], avx2: bool) {
        let n = self.addend.len();
        if n == 0 {
            return;
        }
        let (mut acc, mut out) = (acc, out);
        #[cfg(target_arch = "x86_64")]
        if avx2 && self.vector {
            // groups of rows whose channels fill whole vectors
            let g = n * self.group;
            let whole = acc.len().min(out.len()) / g * g;
            let [add, m0, shift] = &self.tiled;
            for (a, o) in acc[..whole].chunks_exact(g).zip(out[..whole].chunks_exact_mut(g)) {
                // SAFETY: the caller detected AVX2.
                unsafe { self.row_avx2(a, o, add, m0, shift) };
            }
            (acc, out) = (&acc[whole..], &mut out[whole..]);
        }
        for (a, o) in acc.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            #[cfg(target_arch = "x86_64")]
            if avx2 && self.vector {
                // SAFETY: the caller detected AVX2.
                unsafe { self.row_avx2(a, o, &self.addend, &self.m0, &self.shift) };
                continue;
            }
            let _ = avx2;
            self.scalar(a, o, 0);
        }
    }

    /// One row, eight channels per step:
    /// - `SaturatingRoundingDoublingHighMul(a, m0)` with `m0 > 0`: `sign(a)·((|a|·m0 + 2^30 −
    ///   [a < 0]) >> 31)`, the 64-bit products of `_mm256_mul_epu32` on even and odd lanes (the
    ///   truncating division of gemmlowp, written on the magnitude; `a = i32::MIN` has
    ///   `|a| = 2^31` as an unsigned lane);
    /// - `RoundingDivideByPOT` with per-lane shifts `_mm256_srav_epi32`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    /// `addend`, `m0` and `shift` are the channel parameters of `acc`'s lanes (one row's, or
    /// [`Requantizer::tiled`] for a group of rows); a tail of fewer than eight lanes goes to
    /// [`Requantizer::scalar`], which only one row (`addend == self.addend`) can have.
    unsafe fn row_avx2(&self, acc: &[i32], out: &mut [u8], addend: &[i32], m0: &[i32], shift: &[i32]) {
        use std::arch::x86_64::*;
        let n = acc.len().min(out.len()).min(addend.len()).min(m0.len()).min(shift.len());
        let full = n - n % 8;
        let zero = _mm256_setzero_si256();
        let one = _mm256_set1_epi32(1);
        let c30 = _mm256_set1_epi64x(1 << 30);
        let bit = _mm256_set1_epi64x(1);
        let low = _mm256_set1_epi64x(0xffff_ffff);
        let (sat_lo, sat_hi) = (_mm256_set1_epi32(-65_536), _mm256_set1_epi32(65_536));
        let (z, lo, hi) = (_mm256_set1_epi32(self.zero_point), _mm256_set1_epi32(self.lo), _mm256_set1_epi32(self.hi));
        let mut i = 0;
        while i < full {
            let mut codes = [0i32; 8];
            // SAFETY: i + 8 <= full <= n, the length of every slice read; `codes` is 32
            // writable bytes; the loads and stores are unaligned ones.
            unsafe {
                let ld = |s: &[i32]| _mm256_loadu_si256(s.as_ptr().add(i) as *const __m256i);
                let a = _mm256_add_epi32(ld(acc), ld(addend));
                let (m, e) = (ld(m0), ld(shift));
                let neg = _mm256_cmpgt_epi32(zero, a);
                let abs = _mm256_abs_epi32(a);
                let pe = _mm256_mul_epu32(abs, m);
                let po = _mm256_mul_epu32(_mm256_srli_epi64(abs, 32), _mm256_srli_epi64(m, 32));
                let ne = _mm256_and_si256(neg, bit);
                let no = _mm256_and_si256(_mm256_srli_epi64(neg, 32), bit);
                let re = _mm256_srli_epi64(_mm256_add_epi64(pe, _mm256_sub_epi64(c30, ne)), 31);
                let ro = _mm256_srli_epi64(_mm256_add_epi64(po, _mm256_sub_epi64(c30, no)), 31);
                let r = _mm256_or_si256(_mm256_and_si256(re, low), _mm256_slli_epi64(ro, 32));
                let r = _mm256_sign_epi32(r, a);
                let mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, e), one);
                let rem = _mm256_and_si256(r, mask);
                let thr = _mm256_sub_epi32(_mm256_srai_epi32(mask, 1), _mm256_cmpgt_epi32(zero, r));
                let q = _mm256_sub_epi32(_mm256_srav_epi32(r, e), _mm256_cmpgt_epi32(rem, thr));
                let q = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(q, sat_lo), sat_hi), z);
                let q = _mm256_min_epi32(_mm256_max_epi32(q, lo), hi);
                _mm256_storeu_si256(codes.as_mut_ptr() as *mut __m256i, q);
            }
            for (o, &c) in out[i..i + 8].iter_mut().zip(&codes) {
                *o = c as u8;
            }
            i += 8;
        }
        if full < n {
            self.scalar(&acc[full..n], &mut out[full..n], full);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small xorshift generator (the test needs no external crate).
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// The vector requantizer against the scalar one, on accumulators chosen so that
    /// `M_c·acc` lands inside the output range (rounding decides the code) and on extremes.
    #[test]
    fn vector_requantization_equals_the_scalar_one() {
        if !crate::quant::avx2_available() {
            return;
        }
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let (mut mismatches, mut checked, mut total) = (0, 0, 0);
        for round in 0..200 {
            // 29 channels: one row per vector group; 6 (conv1) and 3: rows grouped in fours and
            // eights, 11 rows leaving a remainder that runs row by row; 16: whole vectors
            let channels = [29, 6, 16, 3][round % 4];
            let multipliers: Vec<FixedMultiplier> = (0..channels)
                .map(|c| {
                    let m = 2f64.powf(-((next(&mut s) % 3100) as f64) / 100.0 - (c % 2) as f64 * 0.3) * 0.999;
                    FixedMultiplier::from_real(m).map_err(|e| e.to_string())
                })
                .collect::<std::result::Result<_, _>>()
                .unwrap_or_default();
            assert_eq!(multipliers.len(), channels);
            let addend: Vec<i32> = (0..channels).map(|_| (next(&mut s) % 2001) as i32 - 1000).collect();
            let (z, lo, hi) = ((round as i32 * 37) % 256, 0, 255);
            let q = Requantizer::new(multipliers.clone(), addend.clone(), z, lo, hi);
            assert!(q.vector, "shifts {:?}", multipliers.iter().map(|m| m.shift).collect::<Vec<_>>());
            let acc: Vec<i32> = (0..channels * 11)
                .map(|i| {
                    let c = i % channels;
                    match next(&mut s) % 10 {
                        0 => [i32::MIN, i32::MAX, i32::MIN + 1, -1, 0, 1][(next(&mut s) % 6) as usize],
                        _ => {
                            let t = (next(&mut s) % 600) as f64 - 300.0 + (next(&mut s) % 1000) as f64 / 1000.0;
                            ((t / multipliers[c].real()).clamp(-2e9, 2e9) as i32).wrapping_sub(addend[c])
                        }
                    }
                })
                .collect();
            let (mut vector, mut scalar) = (vec![0u8; acc.len()], vec![0u8; acc.len()]);
            q.run(&acc, &mut vector, true);
            q.run(&acc, &mut scalar, false);
            mismatches += vector.iter().zip(&scalar).filter(|(a, b)| a != b).count();
            checked += scalar.iter().filter(|&&v| v != 0 && v != 255).count();
            total += acc.len();
        }
        assert_eq!(mismatches, 0);
        // most codes are inside the range, so rounding (not the clamp) decided them
        assert_eq!(total, 50 * (29 + 6 + 16 + 3) * 11);
        assert!(checked > total / 2, "{checked} of {total} codes inside 1..=254");
    }
}
