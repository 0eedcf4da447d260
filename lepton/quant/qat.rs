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
//!
//! **Activations** (with `activation_bits`, 8 by default) are fake-quantized where the integer
//! networks quantize them: the input and every layer's output (after its ReLU; see
//! [`crate::nn::hook`]), asymmetric per tensor, `activation_bits` bits. Each point's range is a
//! moving average of the per-batch extremes, `r ← r + c·(r_batch − r)` with
//! `c = `[`ACTIVATION_AVERAGING`] (PyTorch's `MovingAverageMinMaxObserver`), the first batch
//! taken as it is; the ranges stop moving when the weights freeze. The backward pass is the
//! clipped straight-through estimator: the gradient passes where the activation lies inside its
//! representable range and is 0 outside. Evaluation uses the ranges as they are (a point with no
//! range yet, before the first training step, passes unchanged).
//! [`crate::train::Session::qat_int8`] turns the result into an integer network with exactly
//! these weight codes and activation ranges.

use std::collections::BTreeMap;

use dfdx::nn::TensorCollection;
use dfdx::prelude::{Cpu, Gradients, HasShape, Shape, Tape, Tensor};
use dfdx::tensor::{PutTape, SplitTape, TensorFromVec};
use dfdx::tensor_ops::Device;

use super::affine::{check_bits, Granularity, QParams, QScheme, QuantizedTensor};
use super::model::{check_finite_tensor, is_quantized_weight, quantize_tensors_with, scheme_name};
use crate::nn::visit::{rewrite_tensors, with_gradients};
use super::report::QuantReport;
use crate::error::{LeptonError, Result};
use crate::nn::hook::{ActivationHook, ActivationPoint};
use crate::nn::kernels::{host_vec, CpuFloat};
use crate::prune::TensorValues;

/// The averaging constant `c` of QAT's activation ranges, `r ← r + c·(r_batch − r)`.
pub const ACTIVATION_AVERAGING: f32 = 0.01;

/// Settings of quantization-aware training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QatConfig {
    /// Bits of the (symmetric) weight codes, `2..=8`.
    pub weight_bits: u8,
    /// One scale per output channel (else one per tensor).
    pub per_channel: bool,
    /// Bits of the fake-quantized activations (asymmetric per tensor), `2..=8`; `None`
    /// quantizes the weights only.
    pub activation_bits: Option<u8>,
    /// Freeze the quantization parameters (weights' scales and activation ranges) after this
    /// many training steps (`None`: they follow the weights and activations all along).
    pub freeze_after_steps: Option<usize>,
    /// Zero the gradient of weights outside their frozen range (clipped STE).
    pub clip_gradients: bool,
}

impl Default for QatConfig {
    /// 8-bit per-channel weights, 8-bit activations, never frozen, clipped STE.
    fn default() -> Self {
        QatConfig { weight_bits: 8, per_channel: true, activation_bits: Some(8), freeze_after_steps: None, clip_gradients: true }
    }
}

impl QatConfig {
    /// `bits`-bit per-channel weights, the other settings (8-bit activations) as
    /// [`QatConfig::default`].
    pub fn bits(weight_bits: u8) -> QatConfig {
        QatConfig { weight_bits, ..QatConfig::default() }
    }

    /// `bits`-bit per-channel weights and float activations.
    pub fn weights_only(weight_bits: u8) -> QatConfig {
        QatConfig { weight_bits, activation_bits: None, ..QatConfig::default() }
    }

    /// The weight scheme: symmetric, per channel or per tensor. Errors on bad bits (weights or
    /// activations).
    pub fn scheme(&self) -> Result<QScheme> {
        check_bits("weight_bits", self.weight_bits)?;
        if let Some(b) = self.activation_bits {
            check_bits("activation_bits", b)?;
        }
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
    /// The activation ranges, by point index (`None`: not seen yet).
    activations: Vec<Option<ActivationRange>>,
}

/// The range QAT keeps for one activation point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivationRange {
    /// The point, e.g. `fc1.output`.
    pub name: &'static str,
    /// Moving average of the per-batch minima.
    pub min: f32,
    /// Moving average of the per-batch maxima.
    pub max: f32,
    /// Training batches that moved it.
    pub batches: usize,
}

impl QatState {
    /// QAT with `config` (checked), no step taken yet.
    pub fn new(config: QatConfig) -> Result<QatState> {
        let scheme = config.scheme()?;
        Ok(QatState { config, scheme, steps: 0, frozen: None, activations: Vec::new() })
    }

    /// The activation ranges observed so far, in forward order (empty with weights-only QAT or
    /// before the first step).
    pub fn activation_ranges(&self) -> Vec<ActivationRange> {
        self.activations.iter().flatten().copied().collect()
    }

    /// The activation parameters QAT uses now (`activation_bits`, asymmetric), by point.
    pub fn activation_params(&self) -> Result<Vec<(&'static str, QParams)>> {
        let Some(bits) = self.config.activation_bits else { return Ok(Vec::new()) };
        self.activations.iter().flatten().map(|r| Ok((r.name, QParams::from_range(r.min, r.max, bits, false)?))).collect()
    }

    /// The hook that fake-quantizes activations in a training step (moving the ranges unless
    /// frozen), or `None` with weights-only QAT.
    pub(crate) fn training_hook(&mut self) -> Option<ActivationFakeQuant<'_>> {
        let bits = self.config.activation_bits?;
        let update = self.frozen.is_none();
        Some(ActivationFakeQuant { bits, ranges: &mut self.activations, update })
    }

    /// A copy of the activation ranges for evaluation hooks ([`ActivationFakeQuant::eval`]).
    pub(crate) fn eval_ranges(&self) -> Option<(u8, Vec<Option<ActivationRange>>)> {
        Some((self.config.activation_bits?, self.activations.clone()))
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

/// QAT's activation fake quantization, as an [`ActivationHook`]: see the module
/// documentation.
#[derive(Debug)]
pub(crate) struct ActivationFakeQuant<'a> {
    bits: u8,
    ranges: &'a mut Vec<Option<ActivationRange>>,
    update: bool,
}

impl<'a> ActivationFakeQuant<'a> {
    /// A hook that reads `ranges` (from [`QatState::eval_ranges`]) and never moves them.
    pub(crate) fn eval(bits: u8, ranges: &'a mut Vec<Option<ActivationRange>>) -> Self {
        ActivationFakeQuant { bits, ranges, update: false }
    }
}

impl ActivationHook for ActivationFakeQuant<'_> {
    fn activation<S: Shape, E: CpuFloat, T: Tape<E, Cpu>>(&mut self, point: ActivationPoint, x: Tensor<S, E, Cpu, T>) -> Result<Tensor<S, E, Cpu, T>>
    where
        Cpu: Device<E>,
    {
        let (x, mut tape) = x.split_tape();
        let values = host_vec(&x)?;
        if self.update {
            let (lo, hi) = values.iter().map(|v| v.as_f32()).filter(|v| v.is_finite()).fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
            if lo <= hi {
                if self.ranges.len() <= point.index {
                    self.ranges.resize(point.index + 1, None);
                }
                if let Some(slot) = self.ranges.get_mut(point.index) {
                    *slot = Some(match *slot {
                        None => ActivationRange { name: point.name, min: lo, max: hi, batches: 1 },
                        Some(r) => ActivationRange {
                            name: point.name,
                            min: r.min + ACTIVATION_AVERAGING * (lo - r.min),
                            max: r.max + ACTIVATION_AVERAGING * (hi - r.max),
                            batches: r.batches + 1,
                        },
                    });
                }
            }
        }
        let Some(Some(range)) = self.ranges.get(point.index) else { return Ok(x.put_tape(tape)) };
        let p = QParams::from_range(range.min, range.max, self.bits, false)?;
        let (lo, hi) = p.real_range();
        // non-finite values stay as they are, so a diverging run still shows as a NaN loss
        let out: Vec<E> = values
            .iter()
            .map(|&v| {
                let f = v.as_f32();
                if f.is_finite() { E::of_f32(p.fake_quant(f)) } else { v }
            })
            .collect();
        let shape = *x.shape();
        let out = x.device().clone().try_tensor_from_vec(out, shape).map_err(|e| LeptonError::device("fake-quantize activation", e))?;
        if T::OWNS_TAPE && point.needs_grad {
            // the clipped straight-through estimator
            let inside: Vec<bool> = values.iter().map(|&v| (lo..=hi).contains(&v.as_f32())).collect();
            let (x_id, out_id) = (x.clone(), out.clone());
            tape.add_backward_op(move |grads| {
                let gy: Vec<E> = E::grad_slice(grads.get_or_alloc_mut(&out_id)?).to_vec();
                let gx = E::grad_slice(grads.get_or_alloc_mut(&x_id)?);
                for ((d, g), &keep) in gx.iter_mut().zip(&gy).zip(&inside) {
                    if keep {
                        *d += *g;
                    }
                }
                Ok(())
            });
        }
        Ok(out.put_tape(tape))
    }
}

/// Checks that a session can start QAT or weight sharing given what it already runs.
pub(crate) fn conflict(what: &'static str, other: &str) -> LeptonError {
    LeptonError::config(what, other, format!("{other} is on; clear it first (clear_qat / clear_shared_weights)"))
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::{Backward, Cpu, SumTo, Tensor, TensorFrom, Trace};

    use super::*;

    #[test]
    fn activation_ranges_move_by_the_averaging_constant_and_the_ste_clips() {
        let dev: Cpu = Default::default();
        let point = ActivationPoint::after(1, "fc1.output");
        let mut ranges = Vec::new();
        let mut hook = ActivationFakeQuant { bits: 8, ranges: &mut ranges, update: true };
        let x: Tensor<(usize,), f32, Cpu> = dev.tensor((vec![-1.0f32, 0.5, 2.0, 3.0], (4,)));
        hook.activation(point, x).unwrap();
        let x: Tensor<(usize,), f32, Cpu> = dev.tensor((vec![0.0f32, 1.0, 5.0, -3.0], (4,)));
        let y = hook.activation(point, x.leaky_trace()).unwrap();
        let r = ranges[1].unwrap();
        // first batch taken as is, then r + 0.01·(batch − r)
        assert_eq!((r.name, r.batches), ("fc1.output", 2));
        assert_eq!(r.min, -1.0 + ACTIVATION_AVERAGING * (-3.0 - -1.0));
        assert_eq!(r.max, 3.0 + ACTIVATION_AVERAGING * (5.0 - 3.0));
        assert!(ranges[0].is_none(), "only the point seen has a range");
        let p = QParams::from_range(r.min, r.max, 8, false).unwrap();
        let (lo, hi) = p.real_range();
        assert_eq!(y.as_vec(), vec![p.fake_quant(0.0), p.fake_quant(1.0), hi, lo]);
        // the gradient passes inside the range only
        let g = y.sum::<(), _>().backward();
        assert_eq!(g.get(&x).as_vec(), vec![1.0, 1.0, 0.0, 0.0]);

        // an evaluation hook reads the ranges and does not move them
        let before = ranges.clone();
        let mut eval = ActivationFakeQuant::eval(8, &mut ranges);
        let z: Tensor<(usize,), f32, Cpu> = dev.tensor((vec![100.0f32, f32::NAN], (2,)));
        let out = eval.activation(point, z).unwrap().as_vec();
        assert_eq!(out[0], hi);
        assert!(out[1].is_nan(), "NaN stays NaN so a diverging run shows");
        assert_eq!(ranges, before);
    }
}
