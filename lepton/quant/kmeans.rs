//! k-means weight sharing (Deep Compression, Han et al. 2016, §3).
//!
//! A layer's weights are replaced by indices into a codebook of `2^b` shared values:
//!
//! - **Prune-preserving.** Weights that are exactly 0 (pruned) are not clustered: when a
//!   tensor has any, code 0 is reserved for the value 0.0, never moves, and the other `2^b − 1`
//!   centroids cluster the non-zero weights. Without zeros all `2^b` centroids are used.
//! - **Linear initialisation** (the paper's best choice: it keeps centroids on the rare
//!   large weights): centroids evenly spaced between the smallest and largest non-zero weight.
//! - **Lloyd iterations**: assign every weight to its nearest centroid (ties to the lower
//!   one), move each centroid to the mean of its cluster (an empty cluster stays put), until
//!   no centroid moves more than `tol` or `max_iters` updates were made. Centroids are kept
//!   sorted, so assignment is a binary search over midpoints. Sums run sequentially in f64:
//!   the result is deterministic.
//! - **Fine-tuning**: the gradient of a shared value is the sum of its weights' gradients;
//!   [`SharedWeights::fine_tune_centroids`] takes one SGD step on the centroids with it.

use super::affine::{check_bits, check_finite, numel};
use crate::error::{LeptonError, Result};

/// Settings of the k-means clustering.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KMeansConfig {
    /// Bits per index: a codebook of `2^bits` values (`2..=8`).
    pub bits: u8,
    /// Most centroid updates.
    pub max_iters: usize,
    /// Stop when no centroid moves more than this (≥ 0).
    pub tol: f64,
}

impl Default for KMeansConfig {
    /// 5 bits (Han et al.'s choice for fully connected layers), 50 iterations, `tol = 1e-7`.
    fn default() -> Self {
        KMeansConfig { bits: 5, max_iters: 50, tol: 1e-7 }
    }
}

/// A tensor stored as a codebook and one index per weight.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedWeights {
    /// Shape of the tensor.
    pub shape: Vec<usize>,
    /// Bits per index.
    pub bits: u8,
    /// The `2^bits` shared values; entry 0 is 0.0 when [`SharedWeights::zero_code`] is set.
    pub centroids: Vec<f32>,
    /// One codebook index per weight, row-major.
    pub indices: Vec<u8>,
    /// Code reserved for pruned (exactly zero) weights, if the tensor had any.
    pub zero_code: Option<u8>,
    /// Centroid updates made.
    pub iterations: usize,
    /// Whether the last update moved no centroid more than `tol`.
    pub converged: bool,
}

/// Index of the nearest of the sorted `centroids` (ties to the lower): the number of
/// midpoints strictly below `v`.
fn nearest(mids: &[f32], v: f32) -> usize {
    mids.partition_point(|&m| m < v)
}

fn midpoints(c: &[f32]) -> Vec<f32> {
    c.windows(2).map(|w| ((w[0] as f64 + w[1] as f64) / 2.0) as f32).collect()
}

impl SharedWeights {
    /// Clusters `values` (row-major, `shape`) as the module documentation describes. Errors on
    /// bad settings, a shape that does not fit, an empty tensor or a non-finite weight.
    pub fn fit(shape: &[usize], values: &[f32], config: &KMeansConfig) -> Result<SharedWeights> {
        check_bits("bits", config.bits)?;
        if !(config.tol >= 0.0 && config.tol.is_finite()) {
            return Err(LeptonError::config("tol", config.tol, "must be finite and >= 0"));
        }
        if numel(shape) != Some(values.len()) || values.is_empty() {
            return Err(LeptonError::Shape { op: "k-means", path: "values".into(), expected: shape.to_vec(), found: vec![values.len()] });
        }
        check_finite("weights", "tensor", values)?;
        let has_zero = values.contains(&0.0);
        let offset = usize::from(has_zero);
        let k = (1usize << config.bits) - offset;
        let nonzero: Vec<f32> = values.iter().copied().filter(|&v| v != 0.0).collect();
        let (lo, hi) = nonzero.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let mut c: Vec<f32> = if nonzero.is_empty() {
            vec![0.0; k]
        } else {
            (0..k).map(|j| (lo as f64 + (hi as f64 - lo as f64) * j as f64 / (k - 1) as f64) as f32).collect()
        };
        let (mut iterations, mut converged) = (0, nonzero.is_empty());
        let mut assign = vec![0usize; nonzero.len()];
        while !converged && iterations < config.max_iters {
            let mids = midpoints(&c);
            for (a, &v) in assign.iter_mut().zip(&nonzero) {
                *a = nearest(&mids, v);
            }
            let (mut sum, mut cnt) = (vec![0.0f64; k], vec![0usize; k]);
            for (&a, &v) in assign.iter().zip(&nonzero) {
                if let (Some(s), Some(n)) = (sum.get_mut(a), cnt.get_mut(a)) {
                    *s += v as f64;
                    *n += 1;
                }
            }
            let mut shift = 0.0f64;
            for ((cj, s), &m) in c.iter_mut().zip(&sum).zip(&cnt) {
                if m > 0 {
                    let new = (s / m as f64) as f32;
                    shift = shift.max((new as f64 - *cj as f64).abs());
                    *cj = new;
                }
            }
            c.sort_unstable_by(f32::total_cmp);
            iterations += 1;
            converged = shift <= config.tol;
        }
        let mids = midpoints(&c);
        let indices = values
            .iter()
            .map(|&v| if v == 0.0 { 0 } else { (nearest(&mids, v) + offset) as u8 })
            .collect();
        let centroids = if has_zero { std::iter::once(0.0).chain(c).collect() } else { c };
        Ok(SharedWeights {
            shape: shape.to_vec(),
            bits: config.bits,
            centroids,
            indices,
            zero_code: has_zero.then_some(0),
            iterations,
            converged,
        })
    }

    /// Number of weights.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the tensor has no weights (never, for one built by `fit`).
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The weights the codebook stands for, row-major (pruned weights exactly 0.0).
    pub fn reconstruct(&self) -> Vec<f32> {
        self.indices.iter().map(|&i| self.centroids.get(i as usize).copied().unwrap_or(0.0)).collect()
    }

    /// Number of weights per codebook entry.
    pub fn cluster_sizes(&self) -> Vec<usize> {
        let mut n = vec![0usize; self.centroids.len()];
        for &i in &self.indices {
            if let Some(c) = n.get_mut(i as usize) {
                *c += 1;
            }
        }
        n
    }

    /// One SGD step on the shared values: `c_k ← c_k − lr · Σ_{i: idx_i = k} grads_i`
    /// (`grads` row-major, one per weight). The zero code does not move. Errors on a length
    /// mismatch or non-finite gradients or `lr`.
    pub fn fine_tune_centroids(&mut self, grads: &[f32], lr: f32) -> Result<()> {
        if grads.len() != self.indices.len() {
            return Err(LeptonError::Shape { op: "fine-tune centroids", path: "grads".into(), expected: self.shape.clone(), found: vec![grads.len()] });
        }
        check_finite("gradients", "grads", grads)?;
        if !lr.is_finite() {
            return Err(LeptonError::config("lr", lr, "must be finite"));
        }
        let mut sum = vec![0.0f64; self.centroids.len()];
        for (&i, &g) in self.indices.iter().zip(grads) {
            if let Some(s) = sum.get_mut(i as usize) {
                *s += g as f64;
            }
        }
        for (k, (c, s)) in self.centroids.iter_mut().zip(&sum).enumerate() {
            if self.zero_code != Some(k as u8) {
                *c = (*c as f64 - lr as f64 * s) as f32;
            }
        }
        Ok(())
    }
}
