//! Masks keyed by tensor path, how they are computed from weights (magnitude per layer, Han's
//! quality × std threshold, one global threshold, N:M), and how they are applied to any model
//! through one visitor over its tensors.

use std::collections::BTreeMap;

use dfdx::nn::TensorCollection;
use dfdx::prelude::Cpu;

use crate::error::{LeptonError, Result};
use crate::nn::visit::{for_each_tensor, rewrite_tensors};

/// A tensor's path, shape and values (row-major), as [`crate::train::Session::tensors`] returns.
pub type TensorValues = (String, Vec<usize>, Vec<f32>);

/// Which weights of one tensor are kept (`true`) and which are pruned (`false`, held at 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    /// Shape of the tensor the mask belongs to.
    pub shape: Vec<usize>,
    /// One flag per element, row-major.
    pub keep: Vec<bool>,
}

impl Mask {
    /// Number of kept elements.
    pub fn kept(&self) -> usize {
        self.keep.iter().filter(|k| **k).count()
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.keep.len()
    }
    /// Whether the mask has no elements.
    pub fn is_empty(&self) -> bool {
        self.keep.is_empty()
    }
    /// Fraction of pruned elements, in [0, 1].
    pub fn sparsity(&self) -> f64 {
        if self.keep.is_empty() {
            0.0
        } else {
            1.0 - self.kept() as f64 / self.keep.len() as f64
        }
    }
}

/// Masks by tensor path, kept beside a model. Tensors without a mask are dense.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MaskSet {
    masks: BTreeMap<String, Mask>,
    /// Tensors an N:M method left dense because their fan-in is not a multiple of M.
    skipped: Vec<String>,
}

/// How to choose the weights to prune. Sparsities are fractions in [0, 1).
#[derive(Debug, Clone, PartialEq)]
pub enum PruneMethod {
    /// The same sparsity for every prunable tensor (every weight with 2 or more dimensions;
    /// biases stay dense).
    Uniform(f64),
    /// A sparsity per tensor path (a bias is pruned only if named here).
    PerLayer(Vec<(String, f64)>),
    /// Han et al. 2015: in each named tensor, prune |w| < quality × std(w).
    StdThreshold(Vec<(String, f64)>),
    /// One magnitude threshold across all prunable tensors, chosen so that the given fraction of
    /// their weights is pruned; layers end up with different sparsities.
    Global(f64),
    /// N:M structured sparsity: in every group of `m` consecutive weights along the input
    /// dimension (rows of a Linear weight, the `C·K·K` fan-in of a conv filter), keep the `n`
    /// largest. Tensors whose fan-in is not a multiple of `m` stay dense (listed by
    /// [`MaskSet::nm_skipped`]).
    NM { n: usize, m: usize },
}

/// Checks a sparsity value: finite and in [0, 1).
pub fn check_sparsity(field: &'static str, s: f64) -> Result<()> {
    if !(0.0..1.0).contains(&s) {
        return Err(LeptonError::config(field, s, "sparsity must be in [0, 1)"));
    }
    Ok(())
}

fn unknown_path(path: &str, weights: &[TensorValues]) -> LeptonError {
    let known: Vec<&str> = weights.iter().map(|(p, _, _)| p.as_str()).collect();
    LeptonError::config("tensor path", path, format!("no such tensor; the model has {known:?}"))
}

fn find<'a>(weights: &'a [TensorValues], path: &str) -> Result<&'a TensorValues> {
    weights.iter().find(|(p, _, _)| p == path).ok_or_else(|| unknown_path(path, weights))
}

/// Paths of the tensors pruned by default: weights with two or more dimensions.
pub fn prunable_paths(weights: &[TensorValues]) -> Vec<String> {
    weights.iter().filter(|(_, s, _)| s.len() >= 2).map(|(p, _, _)| p.clone()).collect()
}

/// Keeps all but the `round(sparsity · n)` smallest magnitudes; ties go by index (the earlier
/// element is pruned first), so the result is deterministic.
fn magnitude_keep(values: &[f32], sparsity: f64) -> Vec<bool> {
    let n = values.len();
    let prune = ((sparsity * n as f64).round() as usize).min(n);
    let mut keep = vec![true; n];
    if prune == 0 {
        return keep;
    }
    let mut order: Vec<u32> = (0..n as u32).collect();
    let key = |i: u32| (values[i as usize].abs(), i);
    order.select_nth_unstable_by(prune - 1, |&a, &b| {
        let (va, ia) = key(a);
        let (vb, ib) = key(b);
        va.total_cmp(&vb).then(ia.cmp(&ib))
    });
    for &i in &order[..prune] {
        keep[i as usize] = false;
    }
    keep
}

fn check_finite(path: &str, values: &[f32]) -> Result<()> {
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(LeptonError::config("weights", path, format!("element {i} is {}; prune finite weights only", values[i])));
    }
    Ok(())
}

impl MaskSet {
    /// An empty set (every tensor dense).
    pub fn new() -> Self {
        Self::default()
    }

    /// Masks computed from `weights` (the model's tensors) by `method`.
    pub fn compute(weights: &[TensorValues], method: &PruneMethod) -> Result<MaskSet> {
        match method {
            PruneMethod::Uniform(s) => {
                check_sparsity("sparsity", *s)?;
                let targets: Vec<(String, f64)> = prunable_paths(weights).into_iter().map(|p| (p, *s)).collect();
                Self::per_layer(weights, &targets)
            }
            PruneMethod::PerLayer(targets) => Self::per_layer(weights, targets),
            PruneMethod::StdThreshold(q) => Self::std_threshold(weights, q),
            PruneMethod::Global(s) => Self::global(weights, *s),
            PruneMethod::NM { n, m } => Self::n_m(weights, *n, *m),
        }
    }

    fn per_layer(weights: &[TensorValues], targets: &[(String, f64)]) -> Result<MaskSet> {
        let mut set = MaskSet::new();
        for (path, s) in targets {
            check_sparsity("sparsity", *s)?;
            let (_, shape, values) = find(weights, path)?;
            check_finite(path, values)?;
            set.masks.insert(path.clone(), Mask { shape: shape.clone(), keep: magnitude_keep(values, *s) });
        }
        Ok(set)
    }

    fn std_threshold(weights: &[TensorValues], quality: &[(String, f64)]) -> Result<MaskSet> {
        let mut set = MaskSet::new();
        for (path, q) in quality {
            if !q.is_finite() || *q < 0.0 {
                return Err(LeptonError::config("quality", q, "the quality parameter must be finite and >= 0"));
            }
            let (_, shape, values) = find(weights, path)?;
            check_finite(path, values)?;
            let n = values.len().max(1) as f64;
            let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = values.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
            let threshold = q * var.sqrt();
            let keep = values.iter().map(|&v| (v as f64).abs() >= threshold).collect();
            set.masks.insert(path.clone(), Mask { shape: shape.clone(), keep });
        }
        Ok(set)
    }

    fn global(weights: &[TensorValues], sparsity: f64) -> Result<MaskSet> {
        check_sparsity("sparsity", sparsity)?;
        let paths = prunable_paths(weights);
        let tensors: Vec<&TensorValues> = paths.iter().map(|p| find(weights, p)).collect::<Result<_>>()?;
        for (p, _, v) in &tensors {
            check_finite(p, v)?;
        }
        // one ranking of all magnitudes, ties by (tensor, index)
        let all: Vec<f32> = tensors.iter().flat_map(|(_, _, v)| v.iter().copied()).collect();
        let keep_all = magnitude_keep(&all, sparsity);
        let mut set = MaskSet::new();
        let mut at = 0;
        for (p, shape, v) in tensors {
            set.masks.insert(p.clone(), Mask { shape: shape.clone(), keep: keep_all[at..at + v.len()].to_vec() });
            at += v.len();
        }
        Ok(set)
    }

    fn n_m(weights: &[TensorValues], n: usize, m: usize) -> Result<MaskSet> {
        if m == 0 || n > m {
            return Err(LeptonError::config("N:M", format!("{n}:{m}"), "need 0 <= N <= M and M >= 1"));
        }
        let mut set = MaskSet::new();
        for path in prunable_paths(weights) {
            let (_, shape, values) = find(weights, &path)?;
            check_finite(&path, values)?;
            let fan_in: usize = shape[1..].iter().product();
            if fan_in % m != 0 {
                set.skipped.push(path.clone());
                continue;
            }
            let mut keep = vec![false; values.len()];
            for (g, group) in values.chunks_exact(m).enumerate() {
                let mut idx: Vec<usize> = (0..m).collect();
                // largest magnitude first; ties to the earlier weight
                idx.sort_by(|&a, &b| group[b].abs().total_cmp(&group[a].abs()).then(a.cmp(&b)));
                for &i in &idx[..n] {
                    keep[g * m + i] = true;
                }
            }
            set.masks.insert(path, Mask { shape: shape.clone(), keep });
        }
        Ok(set)
    }
}

impl MaskSet {
    /// The mask of `path`, if it has one.
    pub fn get(&self, path: &str) -> Option<&Mask> {
        self.masks.get(path)
    }

    /// Paths with a mask, in order.
    pub fn paths(&self) -> Vec<String> {
        self.masks.keys().cloned().collect()
    }

    /// (path, mask) pairs, in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Mask)> {
        self.masks.iter()
    }

    /// Number of masked tensors.
    pub fn len(&self) -> usize {
        self.masks.len()
    }

    /// Whether no tensor is masked.
    pub fn is_empty(&self) -> bool {
        self.masks.is_empty()
    }

    /// Masks the exact zeros of every prunable tensor (weights with 2 or more dimensions).
    pub fn from_zeros(weights: &[TensorValues]) -> MaskSet {
        let mut set = MaskSet::new();
        for (p, s, v) in weights.iter().filter(|(_, s, _)| s.len() >= 2) {
            set.masks.insert(p.clone(), Mask { shape: s.clone(), keep: v.iter().map(|x| *x != 0.0).collect() });
        }
        set
    }

    /// Tensors an [`PruneMethod::NM`] left dense (fan-in not a multiple of M).
    pub fn nm_skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Adds or replaces the mask of `path` (`keep` row-major, one flag per element).
    pub fn insert(&mut self, path: impl Into<String>, shape: Vec<usize>, keep: Vec<bool>) -> Result<()> {
        let path = path.into();
        let n: usize = shape.iter().product();
        if n != keep.len() {
            return Err(LeptonError::Shape { op: "mask", path, expected: shape, found: vec![keep.len()] });
        }
        self.masks.insert(path, Mask { shape, keep });
        Ok(())
    }

    /// The intersection: a weight is kept only if both sets keep it (a tensor masked in one set
    /// only keeps that mask). Errors if a path has different shapes in the two sets.
    pub fn intersect(&self, other: &MaskSet) -> Result<MaskSet> {
        let mut out = self.clone();
        for (path, m) in &other.masks {
            match out.masks.get_mut(path) {
                Some(mine) => {
                    if mine.shape != m.shape {
                        return Err(LeptonError::Shape { op: "intersect masks", path: path.clone(), expected: mine.shape.clone(), found: m.shape.clone() });
                    }
                    for (a, b) in mine.keep.iter_mut().zip(&m.keep) {
                        *a &= *b;
                    }
                }
                None => {
                    out.masks.insert(path.clone(), m.clone());
                }
            }
        }
        Ok(out)
    }

    /// Checks every mask against the model's tensors: the path exists and the shape matches.
    pub fn check(&self, weights: &[TensorValues]) -> Result<()> {
        for (path, m) in &self.masks {
            let (_, shape, _) = find(weights, path)?;
            if *shape != m.shape {
                return Err(LeptonError::Shape { op: "mask", path: path.clone(), expected: shape.clone(), found: m.shape.clone() });
            }
        }
        Ok(())
    }

    /// Pruned fraction over the masked tensors, weighted by their sizes.
    pub fn sparsity(&self) -> f64 {
        let total: usize = self.masks.values().map(Mask::len).sum();
        let kept: usize = self.masks.values().map(Mask::kept).sum();
        if total == 0 { 0.0 } else { 1.0 - kept as f64 / total as f64 }
    }

    /// Zeroes the pruned weights of `model` (every masked tensor) in place. The masks must fit
    /// the model ([`MaskSet::check`]); on a mismatch the model is left unchanged.
    pub fn apply<M: TensorCollection<f32, Cpu> + Clone>(&self, model: &mut M) -> Result<()> {
        let mut candidate = model.clone();
        self.apply_in_place(&mut candidate)?;
        *model = candidate;
        Ok(())
    }

    /// [`MaskSet::apply`] without the copy; a shape mismatch may leave some tensors masked.
    /// Used after every optimiser step, where the masks were checked when they were set.
    pub(crate) fn apply_in_place<M: TensorCollection<f32, Cpu>>(&self, model: &mut M) -> Result<()> {
        let mut seen = 0usize;
        rewrite_tensors(model, |path, shape, buf| {
            let Some(mask) = self.masks.get(path) else { return Ok(false) };
            if shape != mask.shape {
                return Err(LeptonError::Shape { op: "apply mask", path: path.to_string(), expected: shape.to_vec(), found: mask.shape.clone() });
            }
            apply_to_values(mask, buf);
            seen += 1;
            Ok(true)
        })?;
        if seen < self.masks.len() {
            // some mask's path is not a tensor of the model (each tensor path is visited once)
            let mut paths = Vec::new();
            let mut scratch = Vec::new();
            for_each_tensor(model, &mut scratch, |path, _, _| {
                paths.push(path.to_string());
                Ok(())
            })?;
            if let Some(missing) = self.masks.keys().find(|k| !paths.contains(*k)) {
                return Err(LeptonError::config("mask", missing, "the model has no tensor with this path"));
            }
        }
        Ok(())
    }
}

/// Applies `mask` to row-major `values` (pruned elements set to 0).
pub fn apply_to_values(mask: &Mask, values: &mut [f32]) {
    for (v, k) in values.iter_mut().zip(&mask.keep) {
        if !*k {
            *v = 0.0;
        }
    }
}
