//! Gradual pruning (Zhu & Gupta 2017): the sparsity rises from s_i to s_f along a cubic,
//!
//! s_t = s_f + (s_i − s_f)·(1 − (t − t₀)/(n·Δt))³,  t ∈ {t₀, t₀+Δt, …, t₀+n·Δt},
//!
//! and the masks are recomputed from the current weights every Δt optimiser steps inside
//! training (fast at first, while the network can recover, slower near the target).

use super::mask::{check_sparsity, PruneMethod};
use crate::error::{LeptonError, Result};

/// A Zhu–Gupta schedule. The target is a [`PruneMethod`] of kind `Uniform`, `PerLayer` or
/// `Global`, whose sparsities are the final ones (s_f, per layer for `PerLayer`).
#[derive(Debug, Clone, PartialEq)]
pub struct GradualPruning {
    /// Final sparsities.
    pub target: PruneMethod,
    /// Initial sparsity s_i (the same for every layer; usually 0).
    pub initial_sparsity: f64,
    /// First pruning step t₀ (optimiser steps counted over the session's life).
    pub start_step: usize,
    /// Steps between mask updates, Δt.
    pub frequency: usize,
    /// Number of mask updates after the first, n: the final sparsity is reached at
    /// t₀ + n·Δt and kept from then on.
    pub updates: usize,
}

impl GradualPruning {
    /// A schedule from `initial_sparsity` at `start_step` to `target` at
    /// `start_step + updates·frequency`.
    pub fn new(target: PruneMethod, initial_sparsity: f64, start_step: usize, frequency: usize, updates: usize) -> Result<Self> {
        let g = GradualPruning { target, initial_sparsity, start_step, frequency, updates };
        g.validate()?;
        Ok(g)
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        check_sparsity("initial_sparsity", self.initial_sparsity)?;
        if self.frequency == 0 {
            return Err(LeptonError::config("frequency", 0, "masks are updated every Δt >= 1 steps"));
        }
        match &self.target {
            PruneMethod::Uniform(s) | PruneMethod::Global(s) => check_sparsity("sparsity", *s),
            PruneMethod::PerLayer(t) => t.iter().try_for_each(|(_, s)| check_sparsity("sparsity", *s)),
            other => Err(LeptonError::config(
                "gradual target",
                format!("{other:?}"),
                "a gradual schedule needs Uniform, PerLayer or Global sparsities",
            )),
        }
    }

    /// Last step of the schedule, t₀ + n·Δt.
    pub fn end_step(&self) -> usize {
        self.start_step + self.updates * self.frequency
    }

    /// Progress fraction 1 − (1 − (t − t₀)/(nΔt))³ in [0, 1] at step `t` (0 before t₀, 1 from
    /// the end on).
    pub fn progress(&self, step: usize) -> f64 {
        if step < self.start_step {
            return 0.0;
        }
        if self.updates == 0 || step >= self.end_step() {
            return 1.0;
        }
        let x = (step - self.start_step) as f64 / (self.updates * self.frequency) as f64;
        1.0 - (1.0 - x).powi(3)
    }

    /// Sparsity at step `t` for a layer whose final sparsity is `s_f`.
    pub fn sparsity_at(&self, final_sparsity: f64, step: usize) -> f64 {
        let s_i = self.initial_sparsity;
        s_f_blend(s_i, final_sparsity, self.progress(step))
    }

    /// Whether the masks are updated after optimiser step `step` (t₀, t₀+Δt, …, t₀+nΔt).
    pub fn is_update_step(&self, step: usize) -> bool {
        step >= self.start_step && step <= self.end_step() && (step - self.start_step) % self.frequency == 0
    }

    /// The target with every sparsity replaced by its value at step `step`.
    pub fn method_at(&self, step: usize) -> PruneMethod {
        let p = self.progress(step);
        let s_i = self.initial_sparsity;
        match &self.target {
            PruneMethod::Uniform(s) => PruneMethod::Uniform(s_f_blend(s_i, *s, p)),
            PruneMethod::Global(s) => PruneMethod::Global(s_f_blend(s_i, *s, p)),
            PruneMethod::PerLayer(t) => {
                PruneMethod::PerLayer(t.iter().map(|(path, s)| (path.clone(), s_f_blend(s_i, *s, p))).collect())
            }
            other => other.clone(),
        }
    }
}

/// s_f + (s_i − s_f)(1 − p) with p the cubic progress; s_i itself when the target is below it.
fn s_f_blend(s_i: f64, s_f: f64, progress: f64) -> f64 {
    if s_f <= s_i {
        return s_f;
    }
    s_f + (s_i - s_f) * (1.0 - progress)
}
