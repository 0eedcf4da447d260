//! A quantized MLP: a chain of [`QuantizedLinear`] layers (ReLU fused into all but the last)
//! running in integers from `u8` input codes to `u8` logit codes.
//!
//! Activation parameters (asymmetric, `activation_bits`) come from calibration: either input
//! batches run through the float network, every activation (the input, each layer's output
//! after its ReLU, the logits) seen by one observer of [`QuantConfig::observer`], or ranges
//! given directly. Layer `i` reads the parameters of activation `i` and writes those of
//! activation `i + 1`. Inputs outside the calibrated range saturate at the end codes.

use rayon::prelude::*;

use super::affine::{check_bits, check_finite, quantize_codes, quantize_codes_into, QParams};
use super::kernel::Kernel;
use super::linear::{QuantizedLinear, ROWS_PER_TASK};
use super::observer::ObserverKind;
use super::size::{LayerBytes, QuantSize};
use crate::error::{LeptonError, Result};
use crate::nn::checkpoint::tensors_of;
use crate::nn::Mlp;
use crate::prune::TensorValues;

/// Settings of [`QuantizedMlp`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantConfig {
    /// Bits of the weights (symmetric per output channel), `2..=8`.
    pub weight_bits: u8,
    /// Bits of the activations (asymmetric per tensor), `2..=8`.
    pub activation_bits: u8,
    /// How calibration batches choose activation ranges.
    pub observer: ObserverKind,
    /// Which dot-product kernel to run.
    pub kernel: Kernel,
}

impl Default for QuantConfig {
    /// 8-bit weights and activations, min-max calibration, automatic kernel choice.
    fn default() -> Self {
        QuantConfig { weight_bits: 8, activation_bits: 8, observer: ObserverKind::MinMax, kernel: Kernel::Auto }
    }
}

/// Given weight parameters by tensor path (`fc1.weight` → one set per output channel, or one).
pub(crate) type WeightParams = std::collections::BTreeMap<String, Vec<QParams>>;

/// Where the activation ranges come from.
#[derive(Debug, Clone, Copy)]
pub enum Calibration<'a> {
    /// Input batches, each row-major `(n, inputs)` with `n ≥ 1` (images in 0..1).
    Batches(&'a [Vec<f32>]),
    /// `(min, max)` of the input and of every layer's output (after its ReLU): `layers + 1`
    /// entries, input first.
    Ranges(&'a [(f32, f32)]),
}

/// An MLP computed in integers (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedMlp {
    layers: Vec<QuantizedLinear>,
    names: Vec<String>,
    kernel: Kernel,
}

type FloatLayer<'a> = (&'a str, usize, usize, &'a [f32], &'a [f32]);

/// `(name, outputs, inputs, weight, bias)` for each `<name>.weight` `(out, in)` followed by its
/// `<name>.bias`, checked to chain.
fn float_layers(tensors: &[TensorValues]) -> Result<Vec<FloatLayer<'_>>> {
    let mut layers: Vec<FloatLayer<'_>> = Vec::new();
    for pair in tensors.chunks(2) {
        let [(wp, ws, wv), (bp, bs, bv)] = pair else {
            let last = pair.first().map(|t| t.0.as_str()).unwrap_or("");
            return Err(LeptonError::config("tensors", last, "a weight without a bias"));
        };
        let name = wp.strip_suffix(".weight").unwrap_or("");
        let fits = ws.len() == 2 && bs.len() == 1 && ws.first() == bs.first() && !name.is_empty() && bp == &format!("{name}.bias");
        let (Some(&out), Some(&inp), true) = (ws.first(), ws.get(1), fits) else {
            return Err(LeptonError::Shape { op: "quantized MLP", path: format!("{wp} / {bp}"), expected: ws.clone(), found: bs.clone() });
        };
        check_finite("weights", wp, wv)?;
        check_finite("weights", bp, bv)?;
        if let Some(&(_, prev_out, _, _, _)) = layers.last() {
            if prev_out != inp {
                return Err(LeptonError::Shape { op: "quantized MLP", path: wp.clone(), expected: vec![out, prev_out], found: ws.clone() });
            }
        }
        layers.push((name, out, inp, wv, bv));
    }
    if layers.is_empty() {
        return Err(LeptonError::config("tensors", "[]", "no layers"));
    }
    Ok(layers)
}

/// `x·Wᵀ + b` (then ReLU) in f32, samples in parallel, each sum in one fixed order.
fn float_forward(x: &[f32], layer: &FloatLayer<'_>, relu: bool) -> Vec<f32> {
    let &(_, out, inp, w, b) = layer;
    let mut y = vec![0.0f32; x.len() / inp * out];
    y.par_chunks_mut(out).zip(x.par_chunks(inp)).for_each(|(yb, xb)| {
        for ((o, row), &bias) in yb.iter_mut().zip(w.chunks_exact(inp)).zip(b) {
            let v = row.iter().zip(xb).map(|(a, v)| a * v).sum::<f32>() + bias;
            *o = if relu { v.max(0.0) } else { v };
        }
    });
    y
}

fn check_batch(x: &[f32], batch: usize, inputs: usize) -> Result<()> {
    if batch == 0 || batch.checked_mul(inputs) != Some(x.len()) {
        return Err(LeptonError::Shape { op: "quantized MLP", path: "input".into(), expected: vec![batch.max(1), inputs], found: vec![x.len()] });
    }
    check_finite("input", "batch", x)
}

/// Activation parameters from calibration batches run through the float layers.
fn calibrate(layers: &[FloatLayer<'_>], batches: &[Vec<f32>], config: &QuantConfig) -> Result<Vec<QParams>> {
    let inputs = layers.first().map(|l| l.2).unwrap_or(0);
    if batches.is_empty() {
        return Err(LeptonError::config("calibration", "0 batches", "need at least one calibration batch"));
    }
    let mut observers = (0..=layers.len()).map(|_| config.observer.build()).collect::<Result<Vec<_>>>()?;
    let last = layers.len() - 1;
    for x in batches {
        check_batch(x, (x.len() / inputs.max(1)).max(1), inputs)?;
        let mut h = x.clone();
        let mut obs = observers.iter_mut();
        if let Some(o) = obs.next() {
            o.observe(&h)?;
        }
        for ((i, layer), o) in layers.iter().enumerate().zip(obs) {
            h = float_forward(&h, layer, i < last);
            o.observe(&h)?;
        }
    }
    observers.iter().map(|o| o.params(config.activation_bits, false)).collect()
}

impl QuantizedMlp {
    /// Quantizes a trained [`Mlp`] (e.g. [`crate::nn::LeNet300`]).
    pub fn from_model<const IN: usize, const H1: usize, const H2: usize, const OUT: usize>(
        model: &Mlp<IN, H1, H2, OUT>,
        calibration: &Calibration<'_>,
        config: &QuantConfig,
    ) -> Result<QuantizedMlp> {
        Self::from_tensors(&tensors_of(model), calibration, config)
    }

    /// Quantizes any MLP given as its tensors: `<name>.weight` `(out, in)` then `<name>.bias`
    /// per layer, in order (as [`crate::nn::checkpoint::tensors_of`] lists them).
    pub fn from_tensors(tensors: &[TensorValues], calibration: &Calibration<'_>, config: &QuantConfig) -> Result<QuantizedMlp> {
        Self::from_tensors_with(tensors, calibration, config, None)
    }

    /// [`QuantizedMlp::from_tensors`] with the weights' parameters of some tensors given
    /// (`<name>.weight` → per-channel or one set), e.g. QAT's; the others get min-max ones.
    pub(crate) fn from_tensors_with(
        tensors: &[TensorValues],
        calibration: &Calibration<'_>,
        config: &QuantConfig,
        weight_params: Option<&WeightParams>,
    ) -> Result<QuantizedMlp> {
        check_bits("weight_bits", config.weight_bits)?;
        check_bits("activation_bits", config.activation_bits)?;
        config.kernel.resolve()?;
        let layers = float_layers(tensors)?;
        let acts = match calibration {
            Calibration::Batches(b) => calibrate(&layers, b, config)?,
            Calibration::Ranges(r) => {
                if r.len() != layers.len() + 1 {
                    return Err(LeptonError::Shape { op: "calibration ranges", path: "ranges".into(), expected: vec![layers.len() + 1], found: vec![r.len()] });
                }
                r.iter().map(|&(lo, hi)| QParams::from_range(lo, hi, config.activation_bits, false)).collect::<Result<_>>()?
            }
        };
        let last = layers.len() - 1;
        let mut q = Vec::with_capacity(layers.len());
        for (i, ((_, out, inp, w, b), io)) in layers.iter().zip(acts.windows(2)).enumerate() {
            let [input, output] = io else { continue };
            let relu = i < last;
            q.push(match weight_params.and_then(|m| m.get(&format!("{}.weight", layers[i].0))) {
                Some(p) => QuantizedLinear::with_weight_params(w, b, *out, *inp, p, *input, *output, relu)?,
                None => QuantizedLinear::new(w, b, *out, *inp, config.weight_bits, *input, *output, relu)?,
            });
        }
        let names = layers.iter().map(|l| l.0.to_string()).collect();
        Ok(QuantizedMlp { layers: q, names, kernel: config.kernel })
    }

    /// The layers, input to output.
    pub fn layers(&self) -> &[QuantizedLinear] {
        &self.layers
    }

    /// Layer names (`fc1`, …).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Input features.
    pub fn inputs(&self) -> usize {
        self.layers.first().map(QuantizedLinear::inputs).unwrap_or(0)
    }

    /// Logits per sample.
    pub fn outputs(&self) -> usize {
        self.layers.last().map(QuantizedLinear::outputs).unwrap_or(0)
    }

    /// The kernel the layers run.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// The same network running `kernel` (e.g. [`Kernel::Portable`] to compare with AVX2).
    pub fn with_kernel(mut self, kernel: Kernel) -> Result<QuantizedMlp> {
        kernel.resolve()?;
        self.kernel = kernel;
        Ok(self)
    }

    /// Parameters of the input codes.
    pub fn input_params(&self) -> Option<QParams> {
        self.layers.first().map(QuantizedLinear::input_params)
    }

    /// Input codes for a float batch `(batch, inputs)`.
    pub fn quantize_input(&self, x: &[f32], batch: usize) -> Result<Vec<u8>> {
        check_batch(x, batch, self.inputs())?;
        let p = self.input_params().ok_or_else(|| LeptonError::config("quantized MLP", "[]", "no layers"))?;
        Ok(quantize_codes(&p, x))
    }

    /// Output codes `(batch, outputs)` from input codes, every layer in integers. Samples run
    /// in parallel, each task through all layers (its activations stay in cache).
    pub fn forward_codes(&self, x: &[u8], batch: usize) -> Result<Vec<u8>> {
        let inputs = self.inputs();
        if batch == 0 || batch.checked_mul(inputs) != Some(x.len()) {
            return Err(LeptonError::Shape { op: "quantized MLP", path: "input codes".into(), expected: vec![batch.max(1), inputs], found: vec![x.len()] });
        }
        self.run_tasks(x, |xb: &[u8]| xb.to_vec())
    }

    /// Output codes of a float batch: each task quantizes its own rows, then runs every layer.
    fn codes_of_floats(&self, x: &[f32], batch: usize) -> Result<Vec<u8>> {
        check_batch(x, batch, self.inputs())?;
        let p = self.input_params().ok_or_else(|| LeptonError::config("quantized MLP", "[]", "no layers"))?;
        self.run_tasks(x, |xb: &[f32]| {
            let mut codes = vec![0u8; xb.len()];
            quantize_codes_into(&p, xb, &mut codes);
            codes
        })
    }

    /// Tasks of [`ROWS_PER_TASK`] samples of `x` in parallel: `first` turns a task's rows into
    /// input codes, then every layer runs on this thread.
    fn run_tasks<T: Sync>(&self, x: &[T], first: impl Fn(&[T]) -> Vec<u8> + Sync) -> Result<Vec<u8>> {
        let kernel = self.kernel.resolve()?;
        let (inputs, outputs) = (self.inputs().max(1), self.outputs());
        let mut out = vec![0u8; x.len() / inputs * outputs];
        out.par_chunks_mut(ROWS_PER_TASK * outputs).zip(x.par_chunks(ROWS_PER_TASK * inputs)).for_each(|(o, xb)| {
            let rows = xb.len() / inputs;
            let mut h = first(xb);
            for layer in &self.layers {
                let mut y = vec![0u8; rows * layer.outputs()];
                layer.forward_rows(&h, rows, kernel, &mut y);
                h = y;
            }
            o.copy_from_slice(&h);
        });
        Ok(out)
    }

    /// Dequantized logits `(batch, outputs)` for a float batch `(batch, inputs)`.
    pub fn logits(&self, x: &[f32], batch: usize) -> Result<Vec<f32>> {
        let codes = self.codes_of_floats(x, batch)?;
        let p = self.layers.last().map(QuantizedLinear::output_params).ok_or_else(|| LeptonError::config("quantized MLP", "[]", "no layers"))?;
        Ok(codes.iter().map(|&q| p.dequantize(i32::from(q))).collect())
    }

    /// The predicted class of every sample (largest logit code; ties to the lower class).
    pub fn predict(&self, x: &[f32], batch: usize) -> Result<Vec<usize>> {
        let codes = self.codes_of_floats(x, batch)?;
        let out = self.outputs().max(1);
        Ok(codes
            .chunks_exact(out)
            .map(|row| row.iter().enumerate().fold((0, 0u8), |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) }).0)
            .collect())
    }

    /// Bytes stored: per layer the packed weight codes with per-channel scales (symmetric: no
    /// zero points), the `i32` bias, and the output activation's scale and zero point; plus the
    /// input quantizer. (The requantization multipliers are derived from these scales.)
    pub fn size(&self) -> QuantSize {
        let mut rows = Vec::new();
        if let Some(p) = self.input_params() {
            rows.push(LayerBytes::quantized("input", 0, p.bits, 1, false));
        }
        for (l, name) in self.layers.iter().zip(&self.names) {
            let bits = l.weight_params().first().map(|p| p.bits).unwrap_or(8);
            rows.push(LayerBytes::quantized(format!("{name}.weight"), l.weight().len(), bits, l.outputs(), true));
            rows.push(LayerBytes::float(format!("{name}.bias"), l.outputs()));
            rows.push(LayerBytes::quantized(format!("{name}.output"), 0, l.output_params().bits, 1, false));
        }
        QuantSize { layers: rows }
    }

    /// An MLP from its integer layers (e.g. read back from a file): at least one layer, one
    /// non-empty distinct name per layer, each layer reading as many features as the previous
    /// one writes and with the same parameters, and a `kernel` this CPU runs.
    pub(crate) fn from_parts(layers: Vec<QuantizedLinear>, names: Vec<String>, kernel: Kernel) -> Result<QuantizedMlp> {
        kernel.resolve()?;
        if layers.is_empty() {
            return Err(LeptonError::config("layers", "[]", "a quantized MLP needs at least one layer"));
        }
        if names.len() != layers.len() {
            return Err(LeptonError::Shape { op: "quantized MLP", path: "layer names".into(), expected: vec![layers.len()], found: vec![names.len()] });
        }
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() || names.iter().take(i).any(|n| n == name) {
                return Err(LeptonError::config("layer names", format!("{name:?}"), "layer names must be non-empty and distinct"));
            }
        }
        for (pair, name) in layers.windows(2).zip(names.iter().skip(1)) {
            let [prev, layer] = pair else { continue };
            if layer.inputs() != prev.outputs() {
                return Err(LeptonError::Shape {
                    op: "quantized MLP",
                    path: format!("{name}.weight"),
                    expected: vec![layer.outputs(), prev.outputs()],
                    found: vec![layer.outputs(), layer.inputs()],
                });
            }
            check_params_chain(name, prev.output_params(), layer)?;
        }
        Ok(QuantizedMlp { layers, names, kernel })
    }
}

/// Checks that `layer` (named `name`) reads its input codes with the parameters the previous
/// layer writes them with (`prev_output`).
pub(super) fn check_params_chain(name: &str, prev_output: QParams, layer: &QuantizedLinear) -> Result<()> {
    let input = layer.input_params();
    if input != prev_output {
        return Err(LeptonError::Config {
            field: "input params",
            value: format!("{input:?}"),
            reason: format!("layer {name} must read its input with the previous layer's output params {prev_output:?}"),
        });
    }
    Ok(())
}
