//! Per-tensor learning-rate scales by path prefix: freezing is a scale of 0.

use std::collections::BTreeMap;

use dfdx::nn::TensorCollection;
use dfdx::prelude::Cpu;
use super::head::under_prefix;
use crate::error::{LeptonError, Result};
use crate::nn::visit::{for_each_tensor, rewrite_tensors};

/// Learning-rate scales by tensor-path prefix, applied after every optimiser step.
///
/// A tensor under a prefix with scale `s` moves by `s ×` the step the optimiser took:
/// `w ← w_old + s·(w_new − w_old)`. For SGD (with or without momentum) and Adam that is exactly
/// the same optimiser with learning rate `s·lr` for that tensor (their steps are linear in the
/// learning rate, and their moments do not depend on it). `s = 0` freezes the tensor: its old
/// values are copied back, so it stays bit-identical. When prefixes overlap, the longest wins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamGroups {
    scales: BTreeMap<String, f64>,
}

impl ParamGroups {
    /// No groups: every tensor moves with the optimiser's own learning rate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the scale of every tensor under `prefix` (a path such as `fc1.weight`, or a layer
    /// prefix such as `conv1`). `paths` are the model's tensor paths; a prefix that matches none
    /// of them, or a scale that is negative or not finite, is an error.
    pub fn set(&mut self, paths: &[String], prefix: &str, scale: f64) -> Result<Vec<String>> {
        if !(scale.is_finite() && scale >= 0.0) {
            return Err(LeptonError::config("learning-rate scale", scale, "must be finite and >= 0 (0 freezes)"));
        }
        let matched: Vec<String> = paths.iter().filter(|p| under_prefix(p, prefix)).cloned().collect();
        if matched.is_empty() {
            return Err(LeptonError::config("tensor path", prefix, format!("matches no tensor; the model has {paths:?}")));
        }
        self.scales.insert(prefix.to_string(), scale);
        Ok(matched)
    }

    /// Removes the group `prefix` (its tensors go back to scale 1); `false` if there was none.
    pub fn remove(&mut self, prefix: &str) -> bool {
        self.scales.remove(prefix).is_some()
    }

    /// Whether there are no groups.
    pub fn is_empty(&self) -> bool {
        self.scales.is_empty()
    }

    /// The scale of the tensor at `path`: the one of its longest matching prefix, else 1.
    pub fn scale_of(&self, path: &str) -> f64 {
        self.scales
            .iter()
            .filter(|(p, _)| under_prefix(path, p))
            .max_by_key(|(p, _)| p.len())
            .map_or(1.0, |(_, s)| *s)
    }

    /// The paths among `paths` that are frozen (scale 0).
    pub fn frozen(&self, paths: &[String]) -> Vec<String> {
        paths.iter().filter(|p| self.scale_of(p) == 0.0).cloned().collect()
    }

    /// The prefixes and their scales.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &f64)> {
        self.scales.iter()
    }

    /// Scales the step from `before` to `after` (the model after the optimiser step) tensor by
    /// tensor; tensors with scale 1 are not touched.
    pub fn apply<M: TensorCollection<f32, Cpu>>(&self, before: &M, after: &mut M) -> Result<()> {
        if self.scales.is_empty() {
            return Ok(());
        }
        let old = values_where(before, |p| self.scale_of(p) != 1.0)?;
        self.apply_from(|path| old.get(path).map(Vec::as_slice), after)
    }

    /// [`apply`](Self::apply) with the values before the step given by path (`None`: the tensor
    /// is left as it is).
    pub(crate) fn apply_from<'a, M: TensorCollection<f32, Cpu>>(
        &self,
        before: impl Fn(&str) -> Option<&'a [f32]>,
        after: &mut M,
    ) -> Result<()> {
        if self.scales.is_empty() {
            return Ok(());
        }
        rewrite_tensors(after, |path, _shape, buf| {
            if self.scale_of(path) == 1.0 {
                return Ok(false);
            }
            let Some(prev) = before(path) else { return Ok(false) };
            if prev.len() != buf.len() {
                return Err(LeptonError::Shape { op: "learning-rate groups", path: path.to_string(), expected: vec![prev.len()], found: vec![buf.len()] });
            }
            let s = self.scale_of(path) as f32;
            if s == 0.0 {
                buf.copy_from_slice(prev);
            } else {
                for (w, &w0) in buf.iter_mut().zip(prev) {
                    *w = w0 + s * (*w - w0);
                }
            }
            Ok(true)
        })
    }
}

/// The values of the tensors of `model` whose path satisfies `keep`, by path.
fn values_where<M: TensorCollection<f32, Cpu>>(model: &M, keep: impl Fn(&str) -> bool) -> Result<BTreeMap<String, Vec<f32>>> {
    let mut out = BTreeMap::new();
    for_each_tensor(model, &mut Vec::new(), |path, _shape, values| {
        if keep(path) {
            out.insert(path.to_string(), values.to_vec());
        }
        Ok(())
    })?;
    Ok(out)
}
