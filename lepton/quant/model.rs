//! Quantization of whole models by tensor path: weight-only fake quantization, k-means weight
//! sharing with centroid fine-tuning, and the visitors that read and write a model's tensors.
//!
//! Techniques work on `(path, shape, values)` triples ([`TensorValues`], as
//! [`crate::nn::checkpoint::tensors_of`] lists them) and write back through one visitor over
//! the model, so they serve every architecture. The *weights* are the tensors with 2 or more
//! dimensions (Linear `(out, in)`, conv `(out, in, k, k)`); biases are left as they are.

use std::collections::BTreeMap;

use dfdx::nn::TensorCollection;
use dfdx::prelude::{Cpu, Gradients};

use super::affine::{Granularity, QScheme, QuantError, QuantizedTensor};
use super::kmeans::{KMeansConfig, SharedWeights};
use super::qat::QatState;
use super::report::{QuantLayer, QuantMethod, QuantReport};
use super::size::{LayerBytes, QuantSize};
use crate::error::{LeptonError, Result};
use crate::nn::checkpoint::tensors_of;
use crate::nn::visit::{rewrite_tensors, with_gradients};
use crate::prune::TensorValues;

/// Whether a tensor of `shape` is a weight that model-level quantization replaces (2 or more
/// dimensions; biases are kept in f32).
pub fn is_quantized_weight(shape: &[usize]) -> bool {
    shape.len() >= 2
}

/// Errors on the first non-finite value, naming the tensor.
pub(crate) fn check_finite_tensor(path: &str, values: &[f32]) -> Result<()> {
    if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(LeptonError::config("weights", path, format!("element {i} is {v}; only finite weights can be quantized")));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Writing tensors by path

/// Writes `tensors` (path, shape, values) into `model` by path. Every path must exist with the
/// same shape; tensors not listed keep their values. On any error the model is unchanged.
pub fn write_tensors<M: TensorCollection<f32, Cpu> + Clone>(model: &mut M, tensors: &[TensorValues]) -> Result<()> {
    let by_path: BTreeMap<&str, (&[usize], &[f32])> = tensors.iter().map(|(p, s, v)| (p.as_str(), (s.as_slice(), v.as_slice()))).collect();
    let mut candidate = model.clone();
    let mut seen = 0usize;
    rewrite_tensors(&mut candidate, |path, shape, buf| {
        let Some(&(s, v)) = by_path.get(path) else { return Ok(false) };
        if s != shape || v.len() != buf.len() {
            return Err(LeptonError::Shape { op: "write tensors", path: path.to_string(), expected: shape.to_vec(), found: s.to_vec() });
        }
        buf.copy_from_slice(v);
        seen += 1;
        Ok(true)
    })?;
    if seen != by_path.len() {
        let known: Vec<String> = tensors_of(&candidate).into_iter().map(|t| t.0).collect();
        if let Some(missing) = by_path.keys().find(|p| !known.iter().any(|k| k == *p)) {
            return Err(LeptonError::config("tensor path", missing, format!("no such tensor; the model has {known:?}")));
        }
    }
    *model = candidate;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Weight-only fake quantization

fn summary(values: impl Iterator<Item = f32>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v as f64), hi.max(v as f64)))
}

/// The dequantized values of `q` (quantized from `values`) and its report row.
pub(crate) fn affine_row(path: &str, values: &[f32], q: &QuantizedTensor) -> Result<(Vec<f32>, QuantLayer)> {
    let deq = q.dequantize();
    let (scale_min, scale_max) = summary(q.params.iter().map(|p| p.scale));
    let layer = QuantLayer {
        path: path.to_string(),
        shape: q.shape.clone(),
        method: QuantMethod::Affine { granularity: q.scheme.granularity, symmetric: q.scheme.symmetric },
        bits: q.scheme.bits,
        param_sets: q.params.len(),
        scale_min,
        scale_max,
        error: QuantError::between(values, &deq)?,
        bytes: LayerBytes::affine(path, q),
    };
    Ok((deq, layer))
}

/// Fake-quantizes every weight of `tensors` (2 or more dimensions) with `scheme` and min-max
/// parameters: the new tensors (biases unchanged) and the report. Errors on bad bits or a
/// non-finite weight.
pub fn quantize_tensors(model: &str, tensors: &[TensorValues], scheme: &QScheme) -> Result<(Vec<TensorValues>, QuantReport)> {
    let scheme = QScheme::new(scheme.bits, scheme.symmetric, scheme.granularity)?;
    quantize_tensors_with(model, scheme_name(&scheme), tensors, |_, shape, values| QuantizedTensor::quantize(shape, values, scheme))
}

/// `"4-bit symmetric per channel weights"`.
pub(crate) fn scheme_name(scheme: &QScheme) -> String {
    let granularity = match scheme.granularity {
        Granularity::PerTensor => "per tensor",
        Granularity::PerChannel => "per channel",
    };
    let kind = if scheme.symmetric { "symmetric" } else { "asymmetric" };
    format!("{}-bit {kind} {granularity} weights", scheme.bits)
}

/// [`quantize_tensors`] with any quantizer of one weight `(path, shape, values)`.
pub(crate) fn quantize_tensors_with(
    model: &str,
    method: String,
    tensors: &[TensorValues],
    mut quantize: impl FnMut(&str, &[usize], &[f32]) -> Result<QuantizedTensor>,
) -> Result<(Vec<TensorValues>, QuantReport)> {
    let mut out = Vec::with_capacity(tensors.len());
    let mut layers = Vec::new();
    let mut size = QuantSize::default();
    for (path, shape, values) in tensors {
        if is_quantized_weight(shape) {
            check_finite_tensor(path, values)?;
            let (deq, layer) = affine_row(path, values, &quantize(path, shape, values)?)?;
            size.layers.push(layer.bytes.clone());
            layers.push(layer);
            out.push((path.clone(), shape.clone(), deq));
        } else {
            size.layers.push(LayerBytes::float(path.clone(), values.len()));
            out.push((path.clone(), shape.clone(), values.clone()));
        }
    }
    Ok((out, QuantReport { model: model.to_string(), method, layers, size }))
}

/// [`quantize_tensors`] on a model, in place (unchanged on error).
pub fn quantize_model_weights<M: TensorCollection<f32, Cpu> + Clone>(model: &mut M, name: &str, scheme: &QScheme) -> Result<QuantReport> {
    let (tensors, report) = quantize_tensors(name, &tensors_of(model), scheme)?;
    write_tensors(model, &tensors)?;
    Ok(report)
}

// ---------------------------------------------------------------------------------------
// k-means weight sharing of a whole model

/// The codebooks of a model whose weights were shared by k-means, by tensor path: what
/// centroid fine-tuning needs during training.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SharedModel {
    tensors: BTreeMap<String, SharedWeights>,
}

impl SharedModel {
    /// Clusters every weight of `tensors` (prune-preserving: exact zeros keep code 0 = 0.0);
    /// returns the codebooks, the reconstructed tensors (biases unchanged) and the report.
    pub fn fit(model: &str, tensors: &[TensorValues], config: &KMeansConfig) -> Result<(SharedModel, Vec<TensorValues>, QuantReport)> {
        super::affine::check_bits("bits", config.bits)?;
        let mut shared = SharedModel::default();
        let mut out = Vec::with_capacity(tensors.len());
        let mut layers = Vec::new();
        let mut size = QuantSize::default();
        for (path, shape, values) in tensors {
            if !is_quantized_weight(shape) {
                size.layers.push(LayerBytes::float(path.clone(), values.len()));
                out.push((path.clone(), shape.clone(), values.clone()));
                continue;
            }
            check_finite_tensor(path, values)?;
            let w = SharedWeights::fit(shape, values, config)?;
            let rec = w.reconstruct();
            let (lo, hi) = summary(w.centroids.iter().copied());
            let bytes = LayerBytes::kmeans(path.clone(), &w);
            size.layers.push(bytes.clone());
            layers.push(QuantLayer {
                path: path.clone(),
                shape: shape.clone(),
                method: QuantMethod::KMeans { centroids: w.centroids.len(), iterations: w.iterations, converged: w.converged },
                bits: config.bits,
                param_sets: 1,
                scale_min: lo,
                scale_max: hi,
                error: QuantError::between(values, &rec)?,
                bytes,
            });
            out.push((path.clone(), shape.clone(), rec));
            shared.tensors.insert(path.clone(), w);
        }
        let method = format!("{}-bit k-means weight sharing", config.bits);
        Ok((shared, out, QuantReport { model: model.to_string(), method, layers, size }))
    }

    /// The codebook of `path`, if the tensor is shared.
    pub fn get(&self, path: &str) -> Option<&SharedWeights> {
        self.tensors.get(path)
    }

    /// Paths of the shared tensors, in order.
    pub fn paths(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    /// Number of shared tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether no tensor is shared.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Centroid fine-tuning (Han et al. 2016, §3.3): every centroid moves by `−lr ×` the summed
    /// gradient of its cluster ([`SharedWeights::fine_tune_centroids`]; the zero code stays),
    /// then each shared tensor of `model` is rewritten from its codebook. Called after the
    /// optimiser step, so the optimiser's own update of shared weights is overwritten; biases
    /// keep it.
    pub fn fine_tune<M: TensorCollection<f32, Cpu>>(&mut self, model: &mut M, grads: &mut Gradients<f32, Cpu>, lr: f64) -> Result<()> {
        let lr = lr as f32;
        let tensors = &mut self.tensors;
        with_gradients(model, grads, |path, _values, g| match tensors.get_mut(path) {
            Some(w) => w.fine_tune_centroids(g, lr),
            None => Ok(()),
        })?;
        self.write_to(model)
    }

    /// Writes every shared tensor's reconstruction into `model`.
    pub fn write_to<M: TensorCollection<f32, Cpu>>(&self, model: &mut M) -> Result<()> {
        rewrite_tensors(model, |path, shape, buf| {
            let Some(w) = self.tensors.get(path) else { return Ok(false) };
            if w.shape != shape {
                return Err(LeptonError::Shape { op: "shared weights", path: path.to_string(), expected: shape.to_vec(), found: w.shape.clone() });
            }
            for (b, &i) in buf.iter_mut().zip(&w.indices) {
                *b = w.centroids.get(i as usize).copied().unwrap_or(0.0);
            }
            Ok(true)
        })
    }

    /// Bytes of the codebooks and indices, one row per shared tensor.
    pub fn size(&self) -> QuantSize {
        QuantSize { layers: self.tensors.iter().map(|(p, w)| LayerBytes::kmeans(p.clone(), w)).collect() }
    }
}

// ---------------------------------------------------------------------------------------
// What a training session keeps for quantization

/// Quantization state a training session keeps between `fit` calls: quantization-aware
/// training and k-means codebooks. Used by `lepton/train/session.rs` at its hook points.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrainingQuant {
    pub(crate) qat: Option<QatState>,
    pub(crate) shared: Option<SharedModel>,
}

impl TrainingQuant {
    /// The model the training step runs forward and backward: with QAT, a clone whose weights
    /// are fake-quantized (same tensor ids, so the gradients reach the float weights: the
    /// straight-through estimator). Counts the step for freezing.
    pub(crate) fn training_model<M: TensorCollection<f32, Cpu> + Clone>(&mut self, model: &M) -> Result<Option<M>> {
        match &mut self.qat {
            Some(q) => q.training_model(model).map(Some),
            None => Ok(None),
        }
    }

    /// The model evaluation and prediction run: with QAT, the fake-quantized one.
    pub(crate) fn eval_model<M: TensorCollection<f32, Cpu> + Clone>(&self, model: &M) -> Result<Option<M>> {
        match &self.qat {
            Some(q) => q.fake_quant_model(model).map(Some),
            None => Ok(None),
        }
    }

    /// Before the optimiser step: QAT's clipped straight-through estimator (zero gradient for
    /// weights outside frozen ranges).
    pub(crate) fn before_update<M: TensorCollection<f32, Cpu>>(&self, model: &M, grads: &mut Gradients<f32, Cpu>) -> Result<()> {
        match &self.qat {
            Some(q) => q.clip_gradients(model, grads),
            None => Ok(()),
        }
    }

    /// After the optimiser step: centroid fine-tuning of shared weights.
    pub(crate) fn after_update<M: TensorCollection<f32, Cpu>>(&mut self, model: &mut M, grads: &mut Gradients<f32, Cpu>, lr: f64) -> Result<()> {
        match &mut self.shared {
            Some(s) => s.fine_tune(model, grads, lr),
            None => Ok(()),
        }
    }
}
