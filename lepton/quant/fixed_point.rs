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
