//! Affine quantization `r = S·(q − Z)` (Jacob et al. 2018, §2.1): parameters from a range,
//! quantize / dequantize, per-tensor and per-channel tensors, and the error they introduce.
//!
//! Rounding is to nearest, ties away from zero, computed in f64 on the f32 inputs
//! (`q = clamp(round(r / S) + Z, qmin, qmax)`); dequantization is `S·(q − Z)` in f32.
//!
//! A zero range (a constant tensor, or an observer that only saw one value) never divides by
//! zero: the range is first widened to contain 0, so a constant `c ≠ 0` gets `S = |c| / qmax`
//! (symmetric) or `S = |c| / (2^b−1)` (asymmetric) and lands on the end code `±qmax` / `qmax`
//! / `qmin`, reproduced up to the f32 rounding of `S`; an all-zero tensor gets `S = 1`, `Z = 0`
//! and is reproduced exactly.

use rayon::prelude::*;

use crate::error::{LeptonError, Result};

/// Fewest bits a quantizer accepts.
pub const MIN_BITS: u8 = 2;
/// Most bits a quantizer accepts (codes fit in `u8` / `i8`).
pub const MAX_BITS: u8 = 8;

/// Checks a bit width: `MIN_BITS..=MAX_BITS`.
pub fn check_bits(field: &'static str, bits: u8) -> Result<()> {
    if !(MIN_BITS..=MAX_BITS).contains(&bits) {
        return Err(LeptonError::config(field, bits, format!("bits must be in {MIN_BITS}..={MAX_BITS}")));
    }
    Ok(())
}

/// Checks that every value is finite.
pub(crate) fn check_finite(field: &'static str, what: &str, values: &[f32]) -> Result<()> {
    if values.iter().fold(true, |ok, v| ok & v.is_finite()) {
        return Ok(());
    }
    if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(LeptonError::config(field, what, format!("element {i} is {v}; only finite values can be quantized")));
    }
    Ok(())
}

/// `u8` codes of `x` under unsigned parameters `p` (each exactly [`QParams::quantize`], clamped
/// to `0..=255`), in parallel chunks; on x86-64 with AVX2 the same formula compiled for AVX2,
/// where LLVM inlines `round` (as `trunc(v + copysign(0.5 − 2^−54, v))`, exact) instead of
/// calling libm, and vectorizes the loop: same bits, several times faster.
pub(crate) fn quantize_codes(p: &QParams, x: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; x.len()];
    out.par_chunks_mut(16_384).zip(x.par_chunks(16_384)).for_each(|(o, xs)| quantize_codes_into(p, xs, o));
    out
}

/// [`quantize_codes`] on this thread, into `out` (as long as `x`).
pub(crate) fn quantize_codes_into(p: &QParams, x: &[f32], out: &mut [u8]) {
    #[inline(always)]
    fn run(p: &QParams, x: &[f32], out: &mut [u8]) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = p.quantize(v).clamp(0, 255) as u8;
        }
    }
    /// Eight values per step, written out: `v = x / S` in f64 (exactly as `quantize`), `round`
    /// as `trunc(v + copysign(0.5 − 2^−54, v))` (exact half-away rounding, what LLVM emits for
    /// `f64::round`), `+ Z`, the clamps to `qmin..=qmax` and `0..=255`, NaN to `Z` (clamped to `0..=255`); the
    /// tail through `run`. The same bits as `run` (tested).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2(p: &QParams, x: &[f32], out: &mut [u8]) {
        use std::arch::x86_64::*;
        let n = x.len().min(out.len());
        let full = n - n % 8;
        let scale = _mm256_set1_pd(f64::from(p.scale));
        let half = _mm256_set1_pd(0.5 - f64::EPSILON / 4.0);
        let sign = _mm256_set1_pd(-0.0);
        let z = _mm256_set1_pd(f64::from(p.zero_point));
        let (qmin, qmax) = (_mm256_set1_pd(f64::from(p.qmin)), _mm256_set1_pd(f64::from(p.qmax)));
        let (lo, hi) = (_mm256_set1_pd(0.0), _mm256_set1_pd(255.0));
        let zq = _mm256_set1_pd(f64::from(p.zero_point.clamp(0, 255)));
        let mut i = 0;
        while i < full {
            let mut codes = [0i32; 8];
            // SAFETY: i + 8 <= full <= x.len(); unaligned loads and stores of 32 bytes; `codes`
            // is 32 writable bytes.
            unsafe {
                let v8 = _mm256_loadu_ps(x.as_ptr().add(i));
                let q4 = |v4: __m128| {
                    let v = _mm256_div_pd(_mm256_cvtps_pd(v4), scale);
                    let nan = _mm256_cmp_pd(v, v, _CMP_UNORD_Q);
                    let h = _mm256_or_pd(half, _mm256_and_pd(v, sign));
                    let r = _mm256_round_pd(_mm256_add_pd(v, h), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
                    let q = _mm256_min_pd(_mm256_max_pd(_mm256_add_pd(r, z), qmin), qmax);
                    let q = _mm256_min_pd(_mm256_max_pd(q, lo), hi);
                    _mm256_cvttpd_epi32(_mm256_blendv_pd(q, zq, nan))
                };
                let (a, b) = (q4(_mm256_castps256_ps128(v8)), q4(_mm256_extractf128_ps(v8, 1)));
                _mm256_storeu_si256(codes.as_mut_ptr() as *mut __m256i, _mm256_set_m128i(b, a));
            }
            for (o, &c) in out[i..i + 8].iter_mut().zip(&codes) {
                *o = c as u8;
            }
            i += 8;
        }
        run(p, &x[full..n], &mut out[full..n]);
    }
    #[cfg(target_arch = "x86_64")]
    if super::kernel::avx2_available() {
        // SAFETY: AVX2 was detected at run time.
        return unsafe { run_avx2(p, x, out) };
    }
    run(p, x, out)
}

/// Quantization parameters of one tensor or one channel: `r = scale·(q − zero_point)`,
/// `q ∈ [qmin, qmax]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParams {
    /// Scale `S` (> 0, finite).
    pub scale: f32,
    /// Zero point `Z`, in `[qmin, qmax]`; 0 for symmetric parameters.
    pub zero_point: i32,
    /// Smallest code.
    pub qmin: i32,
    /// Largest code.
    pub qmax: i32,
    /// Bit width the codes use.
    pub bits: u8,
}

impl QParams {
    /// The code range of `bits`: symmetric `[−(2^(b−1)−1), 2^(b−1)−1]`, asymmetric `[0, 2^b−1]`.
    pub fn code_range(bits: u8, symmetric: bool) -> Result<(i32, i32)> {
        check_bits("bits", bits)?;
        Ok(if symmetric {
            let m = (1i32 << (bits - 1)) - 1;
            (-m, m)
        } else {
            (0, (1i32 << bits) - 1)
        })
    }

    /// Parameters covering `[min, max]` (widened to contain 0) with `bits` bits. See the module
    /// documentation for zero ranges.
    pub fn from_range(min: f32, max: f32, bits: u8, symmetric: bool) -> Result<QParams> {
        let (qmin, qmax) = Self::code_range(bits, symmetric)?;
        if !min.is_finite() || !max.is_finite() {
            return Err(LeptonError::config("range", format!("[{min}, {max}]"), "the range must be finite"));
        }
        if min > max {
            return Err(LeptonError::config("range", format!("[{min}, {max}]"), "min must not exceed max"));
        }
        let (lo, hi) = (min.min(0.0) as f64, max.max(0.0) as f64);
        let width = if symmetric { lo.abs().max(hi) / qmax as f64 } else { (hi - lo) / (qmax - qmin) as f64 };
        let scale = if width == 0.0 {
            1.0
        } else {
            // a range so small that S would underflow: the smallest normal scale (all codes ~Z)
            (width as f32).max(f32::MIN_POSITIVE)
        };
        let zero_point = if symmetric {
            0
        } else {
            (qmin as f64 - (lo / scale as f64).round()).clamp(qmin as f64, qmax as f64) as i32
        };
        Ok(QParams { scale, zero_point, qmin, qmax, bits })
    }

    /// Checks that the parameters are usable: finite positive scale, `qmin < qmax`, zero point
    /// inside, codes within `bits`.
    pub fn validate(&self, what: &'static str) -> Result<()> {
        check_bits(what, self.bits)?;
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(LeptonError::config(what, self.scale, "the scale must be finite and > 0"));
        }
        let (smin, _) = Self::code_range(self.bits, true)?;
        let (_, umax) = Self::code_range(self.bits, false)?;
        let ok = self.qmin < self.qmax
            && self.qmin >= smin
            && self.qmax <= umax
            && (self.qmin..=self.qmax).contains(&self.zero_point);
        if !ok {
            return Err(LeptonError::config(
                what,
                format!("codes [{}, {}], zero point {}", self.qmin, self.qmax, self.zero_point),
                format!("need qmin < qmax within {} bits and the zero point in between", self.bits),
            ));
        }
        Ok(())
    }

    /// Whether `Z = 0` and the code range is symmetric.
    pub fn is_symmetric(&self) -> bool {
        self.zero_point == 0 && self.qmin == -self.qmax
    }

    /// The code of `x`: `clamp(round(x / S) + Z, qmin, qmax)` (`x / S` in f64, rounded half
    /// away from zero like `f64::round`); NaN maps to `Z`.
    #[inline]
    pub fn quantize(&self, x: f32) -> i32 {
        let v = x as f64 / self.scale as f64;
        if v.is_nan() {
            return self.zero_point;
        }
        // (inside an AVX2 function, see `quantize_codes`, LLVM inlines `round` and vectorizes)
        (v.round() + self.zero_point as f64).clamp(self.qmin as f64, self.qmax as f64) as i32
    }

    /// The real value of code `q`: `S·(q − Z)`.
    pub fn dequantize(&self, q: i32) -> f32 {
        self.scale * (q - self.zero_point) as f32
    }

    /// `dequantize(quantize(x))`: what the integer representation keeps of `x`.
    pub fn fake_quant(&self, x: f32) -> f32 {
        self.dequantize(self.quantize(x))
    }

    /// The representable real range `[S·(qmin − Z), S·(qmax − Z)]`.
    pub fn real_range(&self) -> (f32, f32) {
        (self.dequantize(self.qmin), self.dequantize(self.qmax))
    }
}

/// One set of parameters for a whole tensor, or one per channel along axis 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// One scale and zero point for the tensor.
    PerTensor,
    /// One per slice along axis 0 (the output channel / row of a weight).
    PerChannel,
}

/// How to quantize a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QScheme {
    /// Bits per code, `MIN_BITS..=MAX_BITS`.
    pub bits: u8,
    /// Symmetric (`Z = 0`, signed codes) or asymmetric (unsigned codes).
    pub symmetric: bool,
    /// Per tensor or per channel.
    pub granularity: Granularity,
}

impl QScheme {
    /// A scheme (checks `bits`).
    pub fn new(bits: u8, symmetric: bool, granularity: Granularity) -> Result<QScheme> {
        check_bits("bits", bits)?;
        Ok(QScheme { bits, symmetric, granularity })
    }

    /// 8-bit symmetric per-channel: the usual weight scheme (and the integer kernel's).
    pub fn int8_weights() -> QScheme {
        QScheme { bits: 8, symmetric: true, granularity: Granularity::PerChannel }
    }
}

/// A quantized tensor: codes (row-major) and their parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedTensor {
    /// Shape of the tensor.
    pub shape: Vec<usize>,
    /// One code per element, row-major.
    pub codes: Vec<i32>,
    /// One entry per tensor, or one per channel (axis 0).
    pub params: Vec<QParams>,
    /// The scheme the tensor was quantized with.
    pub scheme: QScheme,
}

/// The number of elements of `shape`, `None` on overflow.
pub(crate) fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

fn check_shape(op: &'static str, shape: &[usize], len: usize) -> Result<()> {
    if numel(shape) != Some(len) || len == 0 {
        return Err(LeptonError::Shape { op, path: "values".into(), expected: shape.to_vec(), found: vec![len] });
    }
    Ok(())
}

fn min_max(values: &[f32]) -> (f32, f32) {
    values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

impl QuantizedTensor {
    /// Quantizes `values` (row-major, `shape`) with parameters fitted to their min/max (per
    /// tensor or per channel). Errors on bad bits, a shape that does not fit, an empty tensor
    /// or a non-finite value.
    pub fn quantize(shape: &[usize], values: &[f32], scheme: QScheme) -> Result<QuantizedTensor> {
        check_bits("bits", scheme.bits)?;
        check_shape("quantize", shape, values.len())?;
        check_finite("values", "tensor", values)?;
        let chunk = Self::chunk_len(shape, values.len(), scheme.granularity);
        let params = values
            .chunks(chunk)
            .map(|c| {
                let (lo, hi) = min_max(c);
                QParams::from_range(lo, hi, scheme.bits, scheme.symmetric)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::with_params_unchecked(shape, values, params, scheme))
    }

    /// Quantizes `values` with given parameters: one (per tensor) or `shape[0]` (per channel).
    pub fn quantize_with(shape: &[usize], values: &[f32], params: Vec<QParams>) -> Result<QuantizedTensor> {
        check_shape("quantize", shape, values.len())?;
        check_finite("values", "tensor", values)?;
        let channels = shape.first().copied().unwrap_or(1);
        let granularity = match params.len() {
            1 => Granularity::PerTensor,
            n if n == channels => Granularity::PerChannel,
            n => return Err(LeptonError::Shape { op: "quantize with params", path: "params".into(), expected: vec![channels], found: vec![n] }),
        };
        for p in &params {
            p.validate("params")?;
        }
        let (bits, symmetric) = params.first().map(|p| (p.bits, p.is_symmetric())).unwrap_or((8, true));
        let scheme = QScheme { bits, symmetric, granularity };
        Ok(Self::with_params_unchecked(shape, values, params, scheme))
    }

    fn chunk_len(shape: &[usize], len: usize, g: Granularity) -> usize {
        match g {
            Granularity::PerTensor => len,
            Granularity::PerChannel => (len / shape.first().copied().unwrap_or(1).max(1)).max(1),
        }
    }

    fn with_params_unchecked(shape: &[usize], values: &[f32], params: Vec<QParams>, scheme: QScheme) -> QuantizedTensor {
        let chunk = Self::chunk_len(shape, values.len(), scheme.granularity);
        let codes = values.chunks(chunk).zip(&params).flat_map(|(c, p)| c.iter().map(|&v| p.quantize(v))).collect();
        QuantizedTensor { shape: shape.to_vec(), codes, params, scheme }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Whether the tensor has no elements (never, for a tensor built by `quantize`).
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Elements per parameter set (the whole tensor, or one channel).
    pub fn channel_len(&self) -> usize {
        Self::chunk_len(&self.shape, self.codes.len(), self.scheme.granularity)
    }

    /// The real values the codes stand for, row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        let chunk = self.channel_len();
        self.codes.chunks(chunk).zip(&self.params).flat_map(|(c, p)| c.iter().map(|&q| p.dequantize(q))).collect()
    }

    /// The error of [`QuantizedTensor::dequantize`] against the `original` values.
    pub fn error(&self, original: &[f32]) -> Result<QuantError> {
        QuantError::between(original, &self.dequantize())
    }
}

/// What quantization did to a tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantError {
    /// Mean squared error.
    pub mse: f64,
    /// Largest absolute error.
    pub max_abs: f64,
    /// Signal-to-quantization-noise ratio `10·log10(Σ r² / Σ (r − r̂)²)` in dB; `+∞` when the
    /// reconstruction is exact.
    pub sqnr_db: f64,
}

impl QuantError {
    /// The error of `reconstructed` against `original` (same length, not empty, finite).
    pub fn between(original: &[f32], reconstructed: &[f32]) -> Result<QuantError> {
        if original.len() != reconstructed.len() || original.is_empty() {
            return Err(LeptonError::Shape { op: "quantization error", path: "reconstructed".into(), expected: vec![original.len()], found: vec![reconstructed.len()] });
        }
        check_finite("values", "original", original)?;
        check_finite("values", "reconstructed", reconstructed)?;
        let (mut signal, mut noise, mut max_abs) = (0.0f64, 0.0f64, 0.0f64);
        for (&r, &h) in original.iter().zip(reconstructed) {
            let e = r as f64 - h as f64;
            signal += (r as f64).powi(2);
            noise += e * e;
            max_abs = max_abs.max(e.abs());
        }
        let sqnr_db = if noise == 0.0 { f64::INFINITY } else { 10.0 * (signal / noise).log10() };
        Ok(QuantError { mse: noise / original.len() as f64, max_abs, sqnr_db })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorized input quantizer gives exactly `QParams::quantize` clamped to `0..=255`:
    /// on exact half-steps `(k + 0.5)·S` and their neighbours one f32 ulp away, on values far
    /// outside the range, on ±inf and NaN, and on lengths that leave a scalar tail.
    #[test]
    fn vector_input_quantization_equals_quantize() {
        let params = [
            QParams { scale: 1.0 / 255.0, zero_point: 0, qmin: 0, qmax: 255, bits: 8 },
            QParams { scale: 0.037, zero_point: 131, qmin: 0, qmax: 255, bits: 8 },
            QParams { scale: 0.25, zero_point: 7, qmin: 0, qmax: 15, bits: 4 },
            QParams { scale: 3.0e-5, zero_point: 64, qmin: 0, qmax: 127, bits: 7 },
        ];
        for p in params {
            let mut x = Vec::new();
            for k in -300..300 {
                let t = (k as f32 + 0.5) * p.scale;
                x.extend([t, f32::from_bits(t.to_bits() + 1), f32::from_bits(t.to_bits().saturating_sub(1)), k as f32 * p.scale * 0.731]);
            }
            x.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1e30, -1e30, f32::MIN_POSITIVE, 1e-45]);
            for len in [x.len(), x.len() - 3, 7, 1] {
                let got = quantize_codes(&p, &x[..len]);
                let want: Vec<u8> = x[..len].iter().map(|&v| p.quantize(v).clamp(0, 255) as u8).collect();
                assert_eq!(got, want, "{p:?}, {len} values");
            }
            // exact half-steps round away from zero
            let z = p.zero_point;
            let code = |v: f32| i32::from(quantize_codes(&p, &[v; 8])[0]);
            assert_eq!(code(1.5 * p.scale), (z + 2).min(p.qmax), "{p:?}");
            assert_eq!(code(f32::NAN), z);
        }
    }
}
