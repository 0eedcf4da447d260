//! Calibration observers: they see activation batches and choose quantization parameters.
//!
//! - [`MinMaxObserver`]: the smallest and largest value ever seen.
//! - [`MovingAverageObserver`]: per-batch min/max, averaged with a momentum
//!   (`m ← momentum·m + (1 − momentum)·batch_m`, the first batch taken as is; Jacob et al. 2018
//!   §3 use an exponential moving average of ranges for activations).
//! - [`PercentileObserver`]: clips outliers at a percentile of `|x|` or at lower/upper
//!   percentiles of `x` (linear interpolation between order statistics, as NumPy's default).
//! - [`MseObserver`]: searches clipping ranges `t·[min, max]`, `t = k/N` for `k = 1..=N`, and
//!   keeps the one whose quantization MSE on the observed values is smallest (ties: the wider).
//!
//! The last two keep every observed value (4 bytes each); the MSE search costs `N` passes over
//! them. Observing a non-finite value is an error and leaves the observer unchanged; asking for
//! parameters before any value was observed is an error.

use rayon::prelude::*;

use super::affine::{check_finite, QParams};
use crate::error::{LeptonError, Result};

/// Something that sees batches of values and then proposes quantization parameters.
pub trait Observer: Send + Sync {
    /// Records a batch (an empty batch changes nothing). Errors on NaN/inf.
    fn observe(&mut self, x: &[f32]) -> Result<()>;
    /// Parameters with `bits` bits, symmetric or asymmetric, for everything observed so far.
    fn params(&self, bits: u8, symmetric: bool) -> Result<QParams>;
    /// Number of values observed.
    fn count(&self) -> usize;
}

fn no_data() -> LeptonError {
    LeptonError::config("observer", "0 values", "the observer has not seen any data; call observe() first")
}

fn batch_range(x: &[f32]) -> (f32, f32) {
    x.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

/// Smallest and largest value seen.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MinMaxObserver {
    min: f32,
    max: f32,
    count: usize,
}

impl MinMaxObserver {
    /// An observer that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }
    /// `(min, max)` seen, if any value was.
    pub fn range(&self) -> Option<(f32, f32)> {
        (self.count > 0).then_some((self.min, self.max))
    }
}

impl Observer for MinMaxObserver {
    fn observe(&mut self, x: &[f32]) -> Result<()> {
        check_finite("observed values", "batch", x)?;
        if x.is_empty() {
            return Ok(());
        }
        let (lo, hi) = batch_range(x);
        (self.min, self.max) = if self.count == 0 { (lo, hi) } else { (self.min.min(lo), self.max.max(hi)) };
        self.count += x.len();
        Ok(())
    }
    fn params(&self, bits: u8, symmetric: bool) -> Result<QParams> {
        let (lo, hi) = self.range().ok_or_else(no_data)?;
        QParams::from_range(lo, hi, bits, symmetric)
    }
    fn count(&self) -> usize {
        self.count
    }
}

/// Min/max averaged over batches with a momentum.
#[derive(Debug, Clone, PartialEq)]
pub struct MovingAverageObserver {
    momentum: f32,
    min: f32,
    max: f32,
    count: usize,
    batches: usize,
}

impl MovingAverageObserver {
    /// `momentum` in `[0, 1)`: the weight of the running value (0 keeps only the last batch).
    pub fn new(momentum: f32) -> Result<Self> {
        if !(0.0..1.0).contains(&momentum) {
            return Err(LeptonError::config("momentum", momentum, "must be in [0, 1)"));
        }
        Ok(MovingAverageObserver { momentum, min: 0.0, max: 0.0, count: 0, batches: 0 })
    }
    /// The averaged `(min, max)`, if any value was seen.
    pub fn range(&self) -> Option<(f32, f32)> {
        (self.count > 0).then_some((self.min, self.max))
    }
    /// Number of non-empty batches seen.
    pub fn batches(&self) -> usize {
        self.batches
    }
}

impl Observer for MovingAverageObserver {
    fn observe(&mut self, x: &[f32]) -> Result<()> {
        check_finite("observed values", "batch", x)?;
        if x.is_empty() {
            return Ok(());
        }
        let (lo, hi) = batch_range(x);
        if self.count == 0 {
            (self.min, self.max) = (lo, hi);
        } else {
            let (m, n) = (self.momentum as f64, 1.0 - self.momentum as f64);
            self.min = (m * self.min as f64 + n * lo as f64) as f32;
            self.max = (m * self.max as f64 + n * hi as f64) as f32;
        }
        self.count += x.len();
        self.batches += 1;
        Ok(())
    }
    fn params(&self, bits: u8, symmetric: bool) -> Result<QParams> {
        let (lo, hi) = self.range().ok_or_else(no_data)?;
        QParams::from_range(lo, hi, bits, symmetric)
    }
    fn count(&self) -> usize {
        self.count
    }
}

/// Where a [`PercentileObserver`] clips, percentiles in `[0, 100]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Percentile {
    /// Clip `x` to `±a`, `a` the given percentile of `|x|` (e.g. 99.99), within the seen range.
    Abs(f64),
    /// Clip `x` to its `lower` and `upper` percentiles.
    Bounds { lower: f64, upper: f64 },
}

/// Percentile clipping of the observed values.
#[derive(Debug, Clone, PartialEq)]
pub struct PercentileObserver {
    mode: Percentile,
    values: Vec<f32>,
}

fn check_pct(p: f64) -> Result<()> {
    if !(0.0..=100.0).contains(&p) {
        return Err(LeptonError::config("percentile", p, "must be in [0, 100]"));
    }
    Ok(())
}

/// The `p`-th percentile of sorted values, interpolating linearly between order statistics.
fn percentile_sorted(sorted: &[f32], p: f64) -> Option<f32> {
    let last = sorted.len().checked_sub(1)?;
    let pos = p / 100.0 * last as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    let a = *sorted.get(i)?;
    let b = *sorted.get((i + 1).min(last))?;
    Some((a as f64 + (b as f64 - a as f64) * frac) as f32)
}

impl PercentileObserver {
    /// An observer clipping as `mode` says (percentiles in `[0, 100]`, `lower <= upper`).
    pub fn new(mode: Percentile) -> Result<Self> {
        match mode {
            Percentile::Abs(p) => check_pct(p)?,
            Percentile::Bounds { lower, upper } => {
                check_pct(lower)?;
                check_pct(upper)?;
                if lower > upper {
                    return Err(LeptonError::config("percentile", format!("{lower}..{upper}"), "lower must not exceed upper"));
                }
            }
        }
        Ok(PercentileObserver { mode, values: Vec::new() })
    }

    /// The clipping range `(min, max)` for everything observed.
    pub fn range(&self) -> Result<(f32, f32)> {
        let mut sorted = self.values.clone();
        sorted.sort_unstable_by(f32::total_cmp);
        let (lo, hi) = (*sorted.first().ok_or_else(no_data)?, *sorted.last().ok_or_else(no_data)?);
        match self.mode {
            Percentile::Abs(p) => {
                let mut abs: Vec<f32> = sorted.iter().map(|v| v.abs()).collect();
                abs.sort_unstable_by(f32::total_cmp);
                let a = percentile_sorted(&abs, p).ok_or_else(no_data)?;
                Ok((lo.max(-a), hi.min(a)))
            }
            Percentile::Bounds { lower, upper } => {
                let l = percentile_sorted(&sorted, lower).ok_or_else(no_data)?;
                let u = percentile_sorted(&sorted, upper).ok_or_else(no_data)?;
                Ok((l, u))
            }
        }
    }
}

impl Observer for PercentileObserver {
    fn observe(&mut self, x: &[f32]) -> Result<()> {
        check_finite("observed values", "batch", x)?;
        self.values.extend_from_slice(x);
        Ok(())
    }
    fn params(&self, bits: u8, symmetric: bool) -> Result<QParams> {
        let (lo, hi) = self.range()?;
        QParams::from_range(lo, hi, bits, symmetric)
    }
    fn count(&self) -> usize {
        self.values.len()
    }
}

/// The clipping range that minimises the quantization MSE of the observed values.
#[derive(Debug, Clone, PartialEq)]
pub struct MseObserver {
    candidates: usize,
    values: Vec<f32>,
}

impl MseObserver {
    /// Searches `candidates` (≥ 1) ranges `k/candidates · [min, max]`.
    pub fn new(candidates: usize) -> Result<Self> {
        if candidates == 0 {
            return Err(LeptonError::config("candidates", 0, "the MSE search needs at least one candidate range"));
        }
        Ok(MseObserver { candidates, values: Vec::new() })
    }

    /// The chosen parameters and their MSE.
    pub fn search(&self, bits: u8, symmetric: bool) -> Result<(QParams, f64)> {
        QParams::code_range(bits, symmetric)?;
        if self.values.is_empty() {
            return Err(no_data());
        }
        let (lo, hi) = batch_range(&self.values);
        let n = self.candidates;
        // every candidate's MSE is summed sequentially; candidates run in parallel
        let scored: Vec<(QParams, f64)> = (1..=n)
            .into_par_iter()
            .map(|k| {
                let t = k as f64 / n as f64;
                let p = QParams::from_range((lo as f64 * t) as f32, (hi as f64 * t) as f32, bits, symmetric)?;
                let sse: f64 = self.values.iter().map(|&v| (v as f64 - p.fake_quant(v) as f64).powi(2)).sum();
                Ok((p, sse / self.values.len() as f64))
            })
            .collect::<Result<_>>()?;
        // widest first, so that ties keep the wider range
        let mut best: Option<(QParams, f64)> = None;
        for (p, mse) in scored.into_iter().rev() {
            match best {
                Some((_, b)) if mse >= b => {}
                _ => best = Some((p, mse)),
            }
        }
        best.ok_or_else(no_data)
    }
}

impl Observer for MseObserver {
    fn observe(&mut self, x: &[f32]) -> Result<()> {
        check_finite("observed values", "batch", x)?;
        self.values.extend_from_slice(x);
        Ok(())
    }
    fn params(&self, bits: u8, symmetric: bool) -> Result<QParams> {
        Ok(self.search(bits, symmetric)?.0)
    }
    fn count(&self) -> usize {
        self.values.len()
    }
}

/// An observer named in a configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ObserverKind {
    /// [`MinMaxObserver`].
    MinMax,
    /// [`MovingAverageObserver`] with this momentum.
    MovingAverage { momentum: f32 },
    /// [`PercentileObserver`].
    Percentile(Percentile),
    /// [`MseObserver`] with this many candidate ranges.
    Mse { candidates: usize },
}

impl ObserverKind {
    /// A fresh observer of this kind.
    pub fn build(&self) -> Result<Box<dyn Observer>> {
        Ok(match *self {
            ObserverKind::MinMax => Box::new(MinMaxObserver::new()),
            ObserverKind::MovingAverage { momentum } => Box::new(MovingAverageObserver::new(momentum)?),
            ObserverKind::Percentile(p) => Box::new(PercentileObserver::new(p)?),
            ObserverKind::Mse { candidates } => Box::new(MseObserver::new(candidates)?),
        })
    }
}
