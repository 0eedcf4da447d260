//! Sensitivity scan (Han et al. 2015, Fig. 6): prune one layer at a time over a grid of
//! sparsities, measure accuracy, and pick per-layer sparsities for an overall target.

use super::mask::{check_sparsity, prunable_paths, MaskSet, PruneMethod};
use crate::data::Dataset;
use crate::error::{LeptonError, Result};
use crate::nn::checkpoint::tensors_of;
use crate::nn::Classifier;
use crate::train::evaluate;

/// One point of a scan: `path` alone pruned to `sparsity`.
#[derive(Debug, Clone, PartialEq)]
pub struct SensitivityRow {
    /// Tensor path.
    pub path: String,
    /// Weights in the tensor.
    pub params: usize,
    /// Fraction pruned.
    pub sparsity: f64,
    /// Accuracy on the scan's data.
    pub accuracy: f64,
    /// Mean cross-entropy on the scan's data.
    pub loss: f64,
}

/// Accuracy of a model with each prunable layer pruned alone over a grid of sparsities.
#[derive(Debug, Clone, PartialEq)]
pub struct SensitivityScan {
    /// Model name.
    pub model: String,
    /// Dataset the accuracies were measured on.
    pub dataset: String,
    /// Accuracy of the unpruned model.
    pub baseline_accuracy: f64,
    /// Rows by layer, then sparsity.
    pub rows: Vec<SensitivityRow>,
}

/// Scans every prunable tensor of `model` (or only `paths`) over `grid` on `data`.
pub fn sensitivity_scan<M: Classifier>(
    model: &M,
    data: &Dataset,
    paths: Option<&[String]>,
    grid: &[f64],
    batch_size: usize,
) -> Result<SensitivityScan> {
    if grid.is_empty() {
        return Err(LeptonError::config("grid", "[]", "give at least one sparsity"));
    }
    for s in grid {
        check_sparsity("grid", *s)?;
    }
    let tensors = tensors_of(model);
    let paths: Vec<String> = match paths {
        Some(p) => p.to_vec(),
        None => prunable_paths(&tensors),
    };
    let name = M::arch_name();
    let base = evaluate(model, &name, data, batch_size)?;
    let mut rows = Vec::with_capacity(paths.len() * grid.len());
    for path in &paths {
        let params = tensors
            .iter()
            .find(|(p, _, _)| p == path)
            .map(|(_, _, v)| v.len())
            .ok_or_else(|| LeptonError::config("tensor path", path, "no such tensor in the model"))?;
        for &s in grid {
            let masks = MaskSet::compute(&tensors, &PruneMethod::PerLayer(vec![(path.clone(), s)]))?;
            let mut m = model.clone();
            masks.apply(&mut m)?;
            let r = evaluate(&m, &name, data, batch_size)?;
            rows.push(SensitivityRow { path: path.clone(), params, sparsity: s, accuracy: r.accuracy, loss: r.loss });
        }
    }
    Ok(SensitivityScan { model: name, dataset: data.name().to_string(), baseline_accuracy: base.accuracy, rows })
}

impl SensitivityScan {
    /// Layer paths in scan order.
    pub fn paths(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.rows {
            if !out.contains(&r.path) {
                out.push(r.path.clone());
            }
        }
        out
    }

    /// For each layer, the largest sparsity of the grid up to which accuracy stays within
    /// `max_drop` of the baseline at every grid point (0 if even the smallest point fails).
    pub fn sparsities_within(&self, max_drop: f64) -> Vec<(String, f64)> {
        self.paths()
            .into_iter()
            .map(|p| {
                let mut pts: Vec<&SensitivityRow> = self.rows.iter().filter(|r| r.path == p).collect();
                pts.sort_by(|a, b| a.sparsity.total_cmp(&b.sparsity));
                let mut best = 0.0;
                for r in pts {
                    if self.baseline_accuracy - r.accuracy <= max_drop {
                        best = r.sparsity;
                    } else {
                        break;
                    }
                }
                (p, best)
            })
            .collect()
    }

    /// Per-layer sparsities whose weighted mean (over the scanned layers' sizes) reaches
    /// `target`, chosen by the smallest accuracy tolerance that gets there: every layer takes the
    /// largest sparsity it tolerates, so sensitive layers keep more weights. Errors if even
    /// the grid's largest sparsities fall short.
    pub fn pick_sparsities(&self, target: f64) -> Result<Vec<(String, f64)>> {
        check_sparsity("target", target)?;
        let sizes: Vec<(String, usize)> = self
            .paths()
            .into_iter()
            .map(|p| {
                let n = self.rows.iter().find(|r| r.path == p).map(|r| r.params).unwrap_or(0);
                (p, n)
            })
            .collect();
        let total: usize = sizes.iter().map(|(_, n)| n).sum();
        let overall = |choice: &[(String, f64)]| -> f64 {
            choice.iter().zip(&sizes).map(|((_, s), (_, n))| s * *n as f64).sum::<f64>() / total.max(1) as f64
        };
        let mut drops: Vec<f64> = self.rows.iter().map(|r| (self.baseline_accuracy - r.accuracy).max(0.0)).collect();
        drops.push(0.0);
        drops.sort_by(|a, b| a.total_cmp(b));
        drops.dedup();
        for d in drops {
            let choice = self.sparsities_within(d + 1e-12);
            if overall(&choice) + 1e-12 >= target {
                return Ok(choice);
            }
        }
        let most = self.sparsities_within(f64::INFINITY);
        Err(LeptonError::config(
            "target",
            target,
            format!("the scan's grid reaches at most {:.3} overall sparsity; extend the grid", overall(&most)),
        ))
    }
}
