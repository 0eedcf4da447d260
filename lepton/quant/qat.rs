//! Quantization-aware training (Jacob et al. 2018, §3) of the weights, with a
//! straight-through estimator.
//!
//! The model's parameters stay the float "shadow" weights. Each training step runs forward and
//! backward through a clone whose weights (tensors with 2 or more dimensions) are replaced by
//! their fake-quantized values `S·round(w/S)` (symmetric, `weight_bits`, per channel or per
//! tensor). The clone's tensors keep the ids of the float ones, so the gradient with respect to
//! a quantized weight is applied, unchanged, to its float weight: the straight-through
//! estimator (`∂ŵ/∂w = 1`). Evaluation and prediction of a session with QAT on also run the
//! fake-quantized weights, so what is measured is what [`crate::train::Session::finish_qat`]
//! bakes into the model.
//!
//! The parameters are min-max ones, recomputed from the current weights at every step, until
//! `freeze_after_steps` steps have run; then they are frozen. A frozen range can be exceeded by
//! later updates: such weights clamp to the end codes, and with `clip_gradients` their gradient
//! is zeroed (the clipped STE: the clamp's true derivative is 0 outside the range). With
//! parameters that follow the weights no weight is ever outside, and clipping changes nothing.
//! Activations are not fake-quantized.

use std::collections::BTreeMap;

use dfdx::nn::TensorCollection;
use dfdx::prelude::{Cpu, Gradients};

use super::affine::{check_bits, Granularity, QParams, QScheme, QuantizedTensor};
use super::model::{check_finite_tensor, is_quantized_weight, quantize_tensors_with, rewrite_tensors, scheme_name, with_gradients};
use super::report::QuantReport;
use crate::error::{LeptonError, Result};
use crate::prune::TensorValues;

/// Settings of quantization-aware training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QatConfig {
    /// Bits of the (symmetric) weight codes, `2..=8`.
    pub weight_bits: u8,
    /// One scale per output channel (else one per tensor).
    pub per_channel: bool,
    /// Freeze the quantization parameters after this many training steps (`None`: they follow
    /// the weights all along).
    pub freeze_after_steps: Option<usize>,
    /// Zero the gradient of weights outside their frozen range (clipped STE).
    pub clip_gradients: bool,
}

impl Default for QatConfig {
    /// 8-bit per-channel weights, never frozen, clipped STE.
    fn default() -> Self {
        QatConfig { weight_bits: 8, per_channel: true, freeze_after_steps: None, clip_gradients: true }
    }
}

impl QatConfig {
    /// `bits`-bit per-channel weights, the other settings as [`QatConfig::default`].
    pub fn bits(weight_bits: u8) -> QatConfig {
        QatConfig { weight_bits, ..QatConfig::default() }
    }

    /// The weight scheme: symmetric, per channel or per tensor. Errors on bad bits.
    pub fn scheme(&self) -> Result<QScheme> {
        check_bits("weight_bits", self.weight_bits)?;
        let g = if self.per_channel { Granularity::PerChannel } else { Granularity::PerTensor };
        QScheme::new(self.weight_bits, true, g)
    }
}

/// The state of quantization-aware training in a session.
#[derive(Debug, Clone, PartialEq)]
pub struct QatState {
    config: QatConfig,
    scheme: QScheme,
    steps: usize,
    frozen: Option<BTreeMap<String, Vec<QParams>>>,
}

impl QatState {
    /// QAT with `config` (checked), no step taken yet.
    pub fn new(config: QatConfig) -> Result<QatState> {
        let scheme = config.scheme()?;
        Ok(QatState { config, scheme, steps: 0, frozen: None })
    }

    /// The settings.
    pub fn config(&self) -> &QatConfig {
        &self.config
    }

    /// The weight scheme.
    pub fn scheme(&self) -> QScheme {
        self.scheme
    }

    /// Training steps run with QAT.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The frozen parameters of `path`, once frozen.
    pub fn frozen_params(&self, path: &str) -> Option<&[QParams]> {
        self.frozen.as_ref().and_then(|f| f.get(path)).map(Vec::as_slice)
    }

    /// Whether the parameters are frozen.
    pub fn is_frozen(&self) -> bool {
        self.frozen.is_some()
    }

    /// Freezes the parameters at the min-max ones of `tensors`' weights now.
    pub fn freeze(&mut self, tensors: &[TensorValues]) -> Result<()> {
        let mut frozen = BTreeMap::new();
        for (path, shape, values) in tensors.iter().filter(|t| is_quantized_weight(&t.1)) {
            check_finite_tensor(path, values)?;
            frozen.insert(path.clone(), QuantizedTensor::quantize(shape, values, self.scheme)?.params);
        }
        self.frozen = Some(frozen);
        Ok(())
    }

    /// One weight tensor quantized as QAT does now (frozen parameters, or min-max).
    pub fn quantize(&self, path: &str, shape: &[usize], values: &[f32]) -> Result<QuantizedTensor> {
        check_finite_tensor(path, values)?;
        match self.frozen_params(path) {
            Some(p) => QuantizedTensor::quantize_with(shape, values, p.to_vec()),
            None => QuantizedTensor::quantize(shape, values, self.scheme),
        }
    }

    /// A clone of `model` with fake-quantized weights (the same tensor ids).
    pub fn fake_quant_model<M: TensorCollection<f32, Cpu> + Clone>(&self, model: &M) -> Result<M> {
        let mut m = model.clone();
        rewrite_tensors(&mut m, |path, shape, buf| {
            if !is_quantized_weight(shape) {
                return Ok(false);
            }
            let deq = self.quantize(path, shape, buf)?.dequantize();
            buf.copy_from_slice(&deq);
            Ok(true)
        })?;
        Ok(m)
    }

    /// The model of one training step: freezes first if this is step `freeze_after_steps`,
    /// counts the step, and fake-quantizes.
    pub(crate) fn training_model<M: TensorCollection<f32, Cpu> + Clone>(&mut self, model: &M) -> Result<M> {
        if let Some(n) = self.config.freeze_after_steps {
            if self.frozen.is_none() && self.steps >= n {
                self.freeze(&crate::nn::checkpoint::tensors_of(model))?;
            }
        }
        self.steps += 1;
        self.fake_quant_model(model)
    }

    /// The clipped STE: with frozen parameters and `clip_gradients`, zeroes the gradient of
    /// every weight outside its representable range.
    pub(crate) fn clip_gradients<M: TensorCollection<f32, Cpu>>(&self, model: &M, grads: &mut Gradients<f32, Cpu>) -> Result<()> {
        let (Some(frozen), true) = (&self.frozen, self.config.clip_gradients) else { return Ok(()) };
        with_gradients(model, grads, |path, values, g| {
            let Some(params) = frozen.get(path) else { return Ok(()) };
            let chunk = (values.len() / params.len().max(1)).max(1);
            for ((v, g), p) in values.chunks(chunk).zip(g.chunks_mut(chunk)).zip(params) {
                let (lo, hi) = p.real_range();
                for (&w, gw) in v.iter().zip(g) {
                    if w < lo || w > hi {
                        *gw = 0.0;
                    }
                }
            }
            Ok(())
        })
    }

    /// The fake-quantized tensors of `tensors` and their report, as QAT quantizes them now.
    pub fn quantize_tensors(&self, model: &str, tensors: &[TensorValues]) -> Result<(Vec<TensorValues>, QuantReport)> {
        let frozen = if self.is_frozen() { ", frozen ranges" } else { "" };
        let method = format!("QAT: {}{frozen}", scheme_name(&self.scheme));
        quantize_tensors_with(model, method, tensors, |path, shape, values| self.quantize(path, shape, values))
    }
}

/// Checks that a session can start QAT or weight sharing given what it already runs.
pub(crate) fn conflict(what: &'static str, other: &str) -> LeptonError {
    LeptonError::config(what, other, format!("{other} is on; clear it first (clear_qat / clear_shared_weights)"))
}
