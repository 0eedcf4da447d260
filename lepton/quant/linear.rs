//! A fully connected layer computed in integers (Jacob et al. 2018, §2.3–2.4):
//!
//! ```text
//! acc[b, c] = Σ_k (x[b, k] − Z_in) · w[c, k] + bias[c]          (i32)
//! y[b, c]   = clamp(Z_out + M_c · acc[b, c], lo, qmax_out)       (u8)
//! ```
//!
//! with `u8` input codes (asymmetric, zero point `Z_in`), `i8` weights (symmetric per output
//! channel, `Z_w = 0`, scale `S_w[c]`), an `i32` bias quantized with scale `S_in·S_w[c]` (so it
//! adds straight onto the accumulator), and `M_c = S_in·S_w[c] / S_out` applied as a
//! [`FixedMultiplier`]. A fused ReLU clamps at `lo = Z_out` (the code of 0.0), otherwise
//! `lo = qmin_out`. `Σ x·w` is one call to [`matmul_u8_i8`]; `Z_in · Σ_k w[c, k]` is
//! precomputed per channel.
//!
//! Overflow cannot happen: inputs are limited to [`QuantizedLinear::MAX_INPUTS`] and the bias
//! to `±2^29`, so `|acc| ≤ 2·255·127·16384 + 2^29 < 2^31`.

use rayon::prelude::*;

use super::affine::{check_finite, Granularity, QParams, QScheme, QuantizedTensor};
use super::fixed_point::{FixedMultiplier, Requantizer};
use super::kernel::{Kernel, PackedWeights};
use crate::error::{LeptonError, Result};

/// Samples per parallel task of [`QuantizedLinear::forward`].
pub(crate) const ROWS_PER_TASK: usize = 32;

/// Largest |bias code|: keeps the accumulator inside `i32`.
const MAX_BIAS: f64 = (1u32 << 29) as f64;

/// An integer-only Linear layer (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedLinear {
    inputs: usize,
    outputs: usize,
    weight: Vec<i8>,
    weight_params: Vec<QParams>,
    bias: Vec<i32>,
    input: QParams,
    output: QParams,
    multipliers: Vec<FixedMultiplier>,
    relu: bool,
    /// `Z_in · Σ_k w[c, k]` per channel.
    zero_offsets: Vec<i32>,
    /// The weights packed for the AVX2 GEMM (derived from `weight`).
    packed: PackedWeights,
    /// Bias, zero-point offsets, multipliers and clamp, per channel (derived).
    requant: Requantizer,
}

fn check_u8(what: &'static str, p: &QParams) -> Result<()> {
    p.validate(what)?;
    if p.qmin < 0 || p.qmax > 255 {
        return Err(LeptonError::config(what, format!("codes [{}, {}]", p.qmin, p.qmax), "activations must use unsigned (asymmetric) codes in 0..=255"));
    }
    Ok(())
}

impl QuantizedLinear {
    /// Most input features: keeps every accumulator inside `i32`.
    pub const MAX_INPUTS: usize = 16_384;

    /// The checks of a float layer's sizes, bias and activation parameters.
    fn check_float_layer(bias: &[f32], outputs: usize, inputs: usize, input: &QParams, output: &QParams) -> Result<()> {
        if inputs == 0 || inputs > Self::MAX_INPUTS {
            return Err(LeptonError::config("inputs", inputs, format!("must be in 1..={}", Self::MAX_INPUTS)));
        }
        if bias.len() != outputs {
            return Err(LeptonError::Shape { op: "quantized linear", path: "bias".into(), expected: vec![outputs], found: vec![bias.len()] });
        }
        check_u8("input params", input)?;
        check_u8("output params", output)?;
        check_finite("bias", "bias", bias)
    }

    /// Quantizes a float layer: `weight` is `(outputs, inputs)` row-major, `bias` `(outputs,)`;
    /// weights become `weight_bits`-bit symmetric per-channel codes; `input` and `output` are the
    /// activation parameters (asymmetric, codes within `0..=255`, e.g. from an [`super::Observer`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        weight: &[f32],
        bias: &[f32],
        outputs: usize,
        inputs: usize,
        weight_bits: u8,
        input: QParams,
        output: QParams,
        relu: bool,
    ) -> Result<QuantizedLinear> {
        Self::check_float_layer(bias, outputs, inputs, &input, &output)?;
        let scheme = QScheme::new(weight_bits, true, Granularity::PerChannel)?;
        let qw = QuantizedTensor::quantize(&[outputs, inputs], weight, scheme)?;
        Self::from_quantized(qw, bias, outputs, inputs, input, output, relu)
    }

    /// Like [`QuantizedLinear::new`], with the weights' parameters given: one symmetric set per
    /// output channel, or one for all (e.g. those QAT trained with). Weights outside a
    /// channel's range clamp to its end codes.
    #[allow(clippy::too_many_arguments)]
    pub fn with_weight_params(
        weight: &[f32],
        bias: &[f32],
        outputs: usize,
        inputs: usize,
        weight_params: &[QParams],
        input: QParams,
        output: QParams,
        relu: bool,
    ) -> Result<QuantizedLinear> {
        Self::check_float_layer(bias, outputs, inputs, &input, &output)?;
        let params = match weight_params {
            [one] => vec![*one; outputs],
            many => many.to_vec(),
        };
        if params.len() != outputs {
            return Err(LeptonError::Shape { op: "quantized linear", path: "weight params".into(), expected: vec![outputs], found: vec![params.len()] });
        }
        if let Some(p) = params.iter().find(|p| !p.is_symmetric() || p.qmin < -127 || p.qmax > 127) {
            return Err(LeptonError::config("weight params", format!("codes [{}, {}], zero point {}", p.qmin, p.qmax, p.zero_point), "weights must be symmetric codes of at most 8 bits"));
        }
        let qw = QuantizedTensor::quantize_with(&[outputs, inputs], weight, params)?;
        Self::from_quantized(qw, bias, outputs, inputs, input, output, relu)
    }

    /// The layer of weights quantized per channel: the bias becomes `i32` codes of scale
    /// `S_in·S_w[c]`.
    fn from_quantized(qw: QuantizedTensor, bias: &[f32], outputs: usize, inputs: usize, input: QParams, output: QParams, relu: bool) -> Result<QuantizedLinear> {
        // symmetric codes of at most 8 bits fit in i8
        let codes: Vec<i8> = qw.codes.iter().map(|&q| q.clamp(-127, 127) as i8).collect();
        let bias_q = qw
            .params
            .iter()
            .zip(bias)
            .map(|(p, &b)| (b as f64 / (input.scale as f64 * p.scale as f64)).round().clamp(-MAX_BIAS, MAX_BIAS) as i32)
            .collect();
        Self::from_codes(inputs, outputs, codes, qw.params, bias_q, input, output, relu)
    }

    /// A layer from its integer parts, e.g. read back from a file: weight codes `(outputs,
    /// inputs)` with one symmetric parameter set per output channel, bias codes of scale
    /// `S_in·S_w[c]`, and the activation parameters. The requantization multipliers and the
    /// zero-point offsets are derived again. Errors on mismatched lengths, asymmetric or
    /// out-of-range weight parameters, codes outside them, or a bias beyond `±2^29`.
    #[allow(clippy::too_many_arguments)]
    pub fn from_codes(
        inputs: usize,
        outputs: usize,
        weight: Vec<i8>,
        weight_params: Vec<QParams>,
        bias: Vec<i32>,
        input: QParams,
        output: QParams,
        relu: bool,
    ) -> Result<QuantizedLinear> {
        if inputs == 0 || inputs > Self::MAX_INPUTS {
            return Err(LeptonError::config("inputs", inputs, format!("must be in 1..={}", Self::MAX_INPUTS)));
        }
        if outputs == 0 || outputs.checked_mul(inputs) != Some(weight.len()) {
            return Err(LeptonError::Shape { op: "quantized linear", path: "weight".into(), expected: vec![outputs, inputs], found: vec![weight.len()] });
        }
        if bias.len() != outputs || weight_params.len() != outputs {
            return Err(LeptonError::Shape { op: "quantized linear", path: "bias / weight params".into(), expected: vec![outputs], found: vec![bias.len(), weight_params.len()] });
        }
        check_u8("input params", &input)?;
        check_u8("output params", &output)?;
        for (row, p) in weight.chunks_exact(inputs).zip(&weight_params) {
            p.validate("weight params")?;
            if p.zero_point != 0 || p.qmin < -128 || p.qmax > 127 {
                return Err(LeptonError::config("weight params", format!("codes [{}, {}], zero point {}", p.qmin, p.qmax, p.zero_point), "weights must be symmetric i8 codes"));
            }
            if let Some(&q) = row.iter().find(|&&q| i32::from(q) < p.qmin || i32::from(q) > p.qmax) {
                return Err(LeptonError::config("weight codes", q, format!("outside the channel's codes [{}, {}]", p.qmin, p.qmax)));
            }
        }
        if let Some(&b) = bias.iter().find(|&&b| f64::from(b).abs() > MAX_BIAS) {
            return Err(LeptonError::config("bias codes", b, "must be within ±2^29 (keeps the accumulator inside i32)"));
        }
        let multipliers = weight_params
            .iter()
            .map(|p| FixedMultiplier::from_real(input.scale as f64 * p.scale as f64 / output.scale as f64))
            .collect::<Result<Vec<_>>>()?;
        let zero_offsets: Vec<i32> = weight
            .chunks_exact(inputs)
            .map(|row| input.zero_point * row.iter().map(|&w| i32::from(w)).sum::<i32>())
            .collect();
        let packed = PackedWeights::new(&weight, outputs, inputs)?;
        let addend: Vec<i32> = bias.iter().zip(&zero_offsets).map(|(&b, &off): (&i32, &i32)| b.wrapping_sub(off)).collect();
        let lo = if relu { output.zero_point.max(output.qmin) } else { output.qmin };
        let requant = Requantizer::new(multipliers.clone(), addend, output.zero_point, lo, output.qmax);
        Ok(QuantizedLinear { inputs, outputs, weight, weight_params, bias, input, output, multipliers, relu, zero_offsets, packed, requant })
    }

    /// Input features.
    pub fn inputs(&self) -> usize {
        self.inputs
    }
    /// Output features.
    pub fn outputs(&self) -> usize {
        self.outputs
    }
    /// Weight codes `(outputs, inputs)`, row-major.
    pub fn weight(&self) -> &[i8] {
        &self.weight
    }
    /// Weight parameters, one per output channel (symmetric, `Z = 0`).
    pub fn weight_params(&self) -> &[QParams] {
        &self.weight_params
    }
    /// Bias codes, scale `S_in·S_w[c]`.
    pub fn bias(&self) -> &[i32] {
        &self.bias
    }
    /// Parameters of the input codes.
    pub fn input_params(&self) -> QParams {
        self.input
    }
    /// Parameters of the output codes.
    pub fn output_params(&self) -> QParams {
        self.output
    }
    /// Requantization multipliers `M_c = S_in·S_w[c] / S_out`.
    pub fn multipliers(&self) -> &[FixedMultiplier] {
        &self.multipliers
    }
    /// Whether a ReLU is fused (output clamped at `Z_out`).
    pub fn relu(&self) -> bool {
        self.relu
    }

    pub(crate) fn check_input(&self, len: usize, batch: usize) -> Result<()> {
        if batch == 0 || batch.checked_mul(self.inputs) != Some(len) {
            return Err(LeptonError::Shape { op: "quantized linear", path: "input".into(), expected: vec![batch.max(1), self.inputs], found: vec![len] });
        }
        Ok(())
    }

    /// The `i32` accumulators `(batch, outputs)` for input codes `x` `(batch, inputs)`.
    pub fn accumulate(&self, x: &[u8], batch: usize, kernel: Kernel) -> Result<Vec<i32>> {
        self.check_input(x.len(), batch)?;
        let mut acc = self.packed.matmul(x, &self.weight, batch, kernel)?;
        for row in acc.chunks_exact_mut(self.outputs) {
            self.finish_row(row);
        }
        Ok(acc)
    }

    /// Subtracts the zero-point offsets and adds the bias.
    fn finish_row(&self, row: &mut [i32]) {
        for ((a, &off), &b) in row.iter_mut().zip(&self.zero_offsets).zip(&self.bias) {
            *a = a.wrapping_sub(off).wrapping_add(b);
        }
    }

    /// The output code range `(lo, qmax)`: `lo = Z_out` under a fused ReLU.
    fn clamp_range(&self) -> (i32, i32) {
        let o = self.output;
        (if self.relu { o.zero_point.max(o.qmin) } else { o.qmin }, o.qmax)
    }

    /// Output codes for accumulators `(batch, outputs)`: `clamp(Z_out + M_c·acc, lo, qmax)`.
    pub fn requantize(&self, acc: &[i32]) -> Result<Vec<u8>> {
        if acc.is_empty() || acc.len() % self.outputs != 0 {
            return Err(LeptonError::Shape { op: "requantize", path: "accumulators".into(), expected: vec![self.outputs], found: vec![acc.len()] });
        }
        let mut out = vec![0u8; acc.len()];
        self.requantize_into(acc, &mut out);
        Ok(out)
    }

    fn requantize_into(&self, acc: &[i32], out: &mut [u8]) {
        let (lo, hi) = self.clamp_range();
        let z = self.output.zero_point;
        for (arow, orow) in acc.chunks_exact(self.outputs).zip(out.chunks_exact_mut(self.outputs)) {
            for ((o, &a), m) in orow.iter_mut().zip(arow).zip(&self.multipliers) {
                *o = z.saturating_add(m.apply(a)).clamp(lo, hi) as u8;
            }
        }
    }

    /// Output codes `(batch, outputs)` for input codes `x` `(batch, inputs)`, all in integers;
    /// samples in parallel.
    pub fn forward(&self, x: &[u8], batch: usize, kernel: Kernel) -> Result<Vec<u8>> {
        self.check_input(x.len(), batch)?;
        let kernel = kernel.resolve()?;
        let mut out = vec![0u8; batch * self.outputs];
        out.par_chunks_mut(ROWS_PER_TASK * self.outputs).zip(x.par_chunks(ROWS_PER_TASK * self.inputs)).for_each(|(o, xb)| {
            self.forward_rows(xb, xb.len() / self.inputs, kernel, o);
        });
        Ok(out)
    }

    /// [`QuantizedLinear::forward`] of `rows` samples on this thread into `out`; sizes
    /// checked by the caller, `kernel` resolved.
    pub(crate) fn forward_rows(&self, x: &[u8], rows: usize, kernel: Kernel, out: &mut [u8]) {
        let mut acc = vec![0i32; rows * self.outputs];
        self.packed.gemm(x, &self.weight, rows, &mut acc, kernel);
        // bias, zero-point offsets and requantization in one pass (AVX2: eight channels at a
        // time, the same bits as `requantize`)
        self.requant.run(&acc, out, kernel == Kernel::Avx2);
    }

    /// [`QuantizedLinear::forward_rows`] on rows prepared for the AVX2 GEMM (see
    /// [`PackedWeights::tiles_avx2`]): a conv's patches written straight into that layout.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn forward_prepared(&self, sign: &[u8], mag: &[u8], wide: bool, rows: usize, out: &mut [u8]) {
        let mut acc = vec![0i32; rows * self.outputs];
        self.packed.tiles_avx2(sign, mag, wide, rows, &mut acc);
        self.requant.run(&acc, out, true);
    }

    /// The packed weights (their padded row length and whether they take 8-bit prepared rows).
    pub(crate) fn packed(&self) -> &PackedWeights {
        &self.packed
    }

    /// The float simulation of the same layer ("fake quantization"): dequantized inputs,
    /// weights and bias, an f64 sum, ReLU, then the output quantizer. The integer
    /// [`QuantizedLinear::forward`] matches it to within one output code (the fixed-point
    /// multiplier and its rounding differ from the real `M` by about `2^−31`).
    pub fn simulate(&self, x: &[u8], batch: usize) -> Result<Vec<i32>> {
        self.check_input(x.len(), batch)?;
        let w: Vec<f32> = self
            .weight
            .chunks_exact(self.inputs)
            .zip(&self.weight_params)
            .flat_map(|(row, p)| row.iter().map(|&q| p.dequantize(i32::from(q))))
            .collect();
        let b: Vec<f32> = self
            .bias
            .iter()
            .zip(&self.weight_params)
            .map(|(&q, p)| (q as f64 * self.input.scale as f64 * p.scale as f64) as f32)
            .collect();
        let mut out = Vec::with_capacity(batch * self.outputs);
        for xb in x.chunks_exact(self.inputs) {
            let xr: Vec<f32> = xb.iter().map(|&q| self.input.dequantize(i32::from(q))).collect();
            for (row, &bias) in w.chunks_exact(self.inputs).zip(&b) {
                let mut y = row.iter().zip(&xr).map(|(&a, &v)| a as f64 * v as f64).sum::<f64>() + bias as f64;
                if self.relu {
                    y = y.max(0.0);
                }
                out.push(self.output.quantize(y as f32));
            }
        }
        Ok(out)
    }
}
