//! Evaluation: loss, accuracy, per-class accuracy and the confusion matrix of a classifier.

use dfdx::prelude::{Cpu, Tensor};
use dfdx::tensor::TensorFromVec;

use crate::data::Dataset;
use crate::error::{LeptonError, Result};
use crate::nn::{ActivationHook, Classifier, NoHook};
use crate::report::EvalReport;

/// Logits of `model` for every sample of `data`, row-major `(len, classes)`.
pub fn predict_logits<M: Classifier>(model: &M, data: &Dataset, batch_size: usize) -> Result<Vec<f32>> {
    predict_logits_hooked(model, data, batch_size, &mut NoHook)
}

/// [`predict_logits`] with `hook` called at every activation point of every batch.
pub fn predict_logits_hooked<M: Classifier, H: ActivationHook>(model: &M, data: &Dataset, batch_size: usize, hook: &mut H) -> Result<Vec<f32>> {
    check_data::<M>(data)?;
    if batch_size == 0 {
        return Err(LeptonError::config("eval_batch_size", 0, "must be at least 1"));
    }
    let dev: Cpu = Default::default();
    let mut out = Vec::with_capacity(data.len() * M::CLASSES);
    for batch in data.batches(batch_size, None)? {
        let x: Tensor<(usize, usize), f32, Cpu> = dev
            .try_tensor_from_vec(batch.x, (batch.len, M::INPUTS))
            .map_err(|e| LeptonError::device("predict", e))?;
        out.extend(model.logits_hooked(x, hook)?.as_vec());
    }
    Ok(out)
}

/// Checks that `data` fits `M` (features and classes).
pub(crate) fn check_data<M: Classifier>(data: &Dataset) -> Result<()> {
    if data.features() != M::INPUTS || data.num_classes() > M::CLASSES {
        return Err(LeptonError::Dataset {
            dataset: data.name().to_string(),
            reason: format!(
                "has {} features and {} classes; {} takes {} features and {} classes",
                data.features(),
                data.num_classes(),
                M::arch_name(),
                M::INPUTS,
                M::CLASSES
            ),
        });
    }
    if data.is_empty() {
        return Err(LeptonError::Dataset { dataset: data.name().to_string(), reason: "is empty".into() });
    }
    Ok(())
}

/// Index of the largest logit (the first on ties).
pub(crate) fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

/// Cross-entropy of one row of logits against `label`, in f64 (log-sum-exp, stable).
pub(crate) fn cross_entropy(row: &[f32], label: usize) -> f64 {
    let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let lse = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
    lse - row.get(label).copied().unwrap_or(f32::NAN) as f64
}

/// Evaluates `model` on `data`: mean cross-entropy, accuracy, per-class accuracy, confusion.
pub fn evaluate<M: Classifier>(model: &M, model_name: &str, data: &Dataset, batch_size: usize) -> Result<EvalReport> {
    evaluate_hooked(model, model_name, data, batch_size, &mut NoHook)
}

/// [`evaluate`] with `hook` called at every activation point of every batch.
pub fn evaluate_hooked<M: Classifier, H: ActivationHook>(model: &M, model_name: &str, data: &Dataset, batch_size: usize, hook: &mut H) -> Result<EvalReport> {
    let logits = predict_logits_hooked(model, data, batch_size, hook)?;
    let k = M::CLASSES;
    let classes = data.num_classes().max(1);
    let mut confusion = vec![vec![0usize; k]; classes];
    let mut loss = 0.0;
    let mut correct = 0usize;
    for (row, &label) in logits.chunks_exact(k).zip(data.labels()) {
        let label = label as usize;
        let pred = argmax(row);
        loss += cross_entropy(row, label);
        correct += usize::from(pred == label);
        if let Some(c) = confusion.get_mut(label).and_then(|r| r.get_mut(pred)) {
            *c += 1;
        }
    }
    let n = data.len();
    let class_counts = data.class_counts();
    let per_class_accuracy = (0..classes)
        .map(|c| {
            let total = class_counts.get(c).copied().unwrap_or(0);
            let hit = confusion.get(c).and_then(|r| r.get(c)).copied().unwrap_or(0);
            if total == 0 { 0.0 } else { hit as f64 / total as f64 }
        })
        .collect();
    Ok(EvalReport {
        model: model_name.to_string(),
        dataset: data.name().to_string(),
        samples: n,
        loss: loss / n as f64,
        accuracy: correct as f64 / n as f64,
        per_class_accuracy,
        class_counts,
        confusion,
        class_names: data.class_names().to_vec(),
    })
}
