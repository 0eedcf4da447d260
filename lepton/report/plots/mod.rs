//! The figures: training curves, confusion heat-map, accuracy against size, and the general
//! line chart ([`LineChart`]) and weight histograms ([`WeightHistograms`]).
//!
//! Each plot is data plus one drawing function generic over the plotters backend, so the SVG
//! and the PNG of a figure come from the same code. Non-finite values are skipped.

mod curves;
mod heatmap;
mod histograms;
mod lines;
mod scatter;

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::experiment::ExperimentTable;
use super::figure::Figure;
use super::types::{EvalReport, History};
use crate::error::{LeptonError, Result};

pub(crate) use heatmap::row_share;
pub use histograms::WeightHistograms;
pub use lines::{LineChart, Series};

/// Tableau-10 colours, one per run or group.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// What a [`Figure`] draws.
#[derive(Debug, Clone)]
pub(crate) enum Plot {
    /// Loss and accuracy per epoch of one or more runs.
    Histories { title: String, runs: Vec<History> },
    /// Confusion matrix heat-map.
    Confusion(EvalReport),
    /// Test accuracy against stored size.
    AccuracyVsSize(ExperimentTable),
    /// Named curves of (x, y) points.
    Lines(LineChart),
    /// Histograms of weight values, one panel per tensor.
    Histograms(WeightHistograms),
}

impl Plot {
    /// Short name used in error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Plot::Histories { .. } => "training curves",
            Plot::Confusion(_) => "confusion matrix",
            Plot::AccuracyVsSize(_) => "accuracy vs size",
            Plot::Lines(_) => "line chart",
            Plot::Histograms(_) => "weight histograms",
        }
    }

    /// Draws the plot on `root`.
    pub(crate) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let kind = self.kind();
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| LeptonError::plot(kind, e);
        root.fill(&WHITE).map_err(err)?;
        match self {
            Plot::Histories { title, runs } => {
                curves::draw_histories(root, title, runs).map_err(err)
            }
            Plot::Confusion(report) => heatmap::draw_confusion(root, report).map_err(err),
            Plot::AccuracyVsSize(table) => scatter::draw_scatter(root, table).map_err(err),
            Plot::Lines(chart) => lines::draw_lines(root, chart).map_err(err),
            Plot::Histograms(h) => histograms::draw_histograms(root, h).map_err(err),
        }
    }
}

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

impl History {
    /// Loss (left) and accuracy (right) per epoch, train against validation.
    /// Errors if the history has no epochs.
    pub fn plot(&self) -> Result<Figure> {
        plot_histories(&[self])
    }
}

/// Loss and accuracy curves of several runs, one colour per run (train solid, validation
/// dashed), with the run names in the legend. Runs without epochs are left out; errors if no
/// run has any.
pub fn plot_histories(histories: &[&History]) -> Result<Figure> {
    let runs: Vec<History> = histories
        .iter()
        .filter(|h| !h.epochs.is_empty())
        .map(|h| (*h).clone())
        .collect();
    if runs.is_empty() {
        let what = match histories {
            [] => "no histories given".to_owned(),
            [h] => format!("history {:?} has no epochs", h.name),
            _ => format!("none of the {} histories has any epochs", histories.len()),
        };
        return Err(LeptonError::plot("training curves", what));
    }
    let title = match runs.as_slice() {
        [one] if !one.name.is_empty() => one.name.clone(),
        [_] => "training history".to_owned(),
        _ => "training histories".to_owned(),
    };
    Figure::render(Plot::Histories { title, runs }, 960, 400)
}

impl EvalReport {
    /// Heat-map of the confusion matrix: rows are true classes, columns predicted classes,
    /// each cell shows its count and is shaded by its share of the true class.
    /// Errors if the matrix is empty or not square.
    pub fn plot_confusion(&self) -> Result<Figure> {
        let n = self
            .checked_confusion()
            .map_err(|e| LeptonError::plot("confusion matrix", e))?;
        let side = (200 + 48 * n.min(100) as u32).clamp(480, 1400);
        Figure::render(Plot::Confusion(self.clone()), side + 80, side)
    }
}

impl ExperimentTable {
    /// Scatter of test accuracy (%) against stored size (KiB, log scale when sizes span more
    /// than a factor of 20): one colour per model and dataset (in the legend), each point
    /// labelled with its stage. Rows with a non-finite accuracy or zero bytes are skipped;
    /// errors if none is left.
    pub fn plot_accuracy_vs_size(&self) -> Result<Figure> {
        if !scatter::has_points(self) {
            let reason = if self.rows.is_empty() {
                "the table has no rows"
            } else {
                "no row has a finite accuracy and a non-zero size"
            };
            return Err(LeptonError::plot("accuracy vs size", reason));
        }
        Figure::render(Plot::AccuracyVsSize(self.clone()), 820, 520)
    }
}

/// An `f64` axis (linear or logarithmic) with ticks and bold mesh lines exactly at the given
/// values, e.g. whole epochs, class indices, or 1-2-5 steps of a log axis.
struct TickedAxis<R: Ranged<ValueType = f64>> {
    inner: R,
    ticks: Vec<f64>,
}

impl TickedAxis<RangedCoordf64> {
    fn linear(range: Range<f64>, ticks: Vec<f64>) -> Self {
        TickedAxis {
            inner: range.into(),
            ticks,
        }
    }
}

impl TickedAxis<LogCoord<f64>> {
    /// A log axis over `range` (positive) with ticks at 1, 2, 5 times powers of ten, or at
    /// every digit if that gives fewer than three ticks.
    fn log(range: Range<f64>) -> Self {
        let (lo, hi) = (range.start, range.end);
        let decades = lo.log10().floor() as i32..=hi.log10().ceil() as i32;
        let ticks_at = |mantissas: &[f64]| -> Vec<f64> {
            decades
                .clone()
                .flat_map(|k| mantissas.iter().map(move |m| m * 10f64.powi(k)))
                .filter(|v| (lo..=hi).contains(v))
                .collect()
        };
        let mut ticks = ticks_at(&[1.0, 2.0, 5.0]);
        if ticks.len() < 3 {
            ticks = ticks_at(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        }
        TickedAxis {
            inner: range.log_scale().into(),
            ticks,
        }
    }

    /// Like [`TickedAxis::log`], but with at most `max_ticks` ticks: only powers of ten when
    /// the 1-2-5 ticks are too many, and then every second (third, ...) one if need be.
    fn log_sparse(range: Range<f64>, max_ticks: usize) -> Self {
        let (lo, hi) = (range.start, range.end);
        let mut axis = Self::log(range);
        let max_ticks = max_ticks.max(2);
        if axis.ticks.len() > max_ticks {
            let decades = (lo.log10().floor() as i32 - 1)..=(hi.log10().ceil() as i32 + 1);
            let powers: Vec<f64> = decades
                .map(|k| 10f64.powi(k))
                .filter(|v| (lo..=hi).contains(v))
                .collect();
            if !powers.is_empty() {
                let step = powers.len().div_ceil(max_ticks);
                axis.ticks = powers.into_iter().step_by(step).collect();
            }
        }
        axis
    }
}

impl<R: Ranged<ValueType = f64>> Ranged for TickedAxis<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// `[lo, hi]` of the finite values with a margin, kept within `bounds` when the data is.
fn padded_range(
    values: impl Iterator<Item = f64>,
    bounds: (Option<f64>, Option<f64>),
) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    let pad = if !span.is_finite() {
        0.0
    } else if span > 0.0 {
        0.08 * span
    } else {
        (0.05 * lo.abs()).max(0.5)
    };
    let mut range = (lo - pad, hi + pad);
    if let Some(b) = bounds.0 {
        if lo >= b {
            range.0 = range.0.max(b);
        }
    }
    if let Some(b) = bounds.1 {
        if hi <= b {
            range.1 = range.1.min(b);
        }
    }
    if range.0 >= range.1 || !(range.1 - range.0).is_finite() {
        return (lo.min(0.0), lo.max(0.0) + 1.0);
    }
    range
}

/// Tick label with as many decimals as ticks about a tenth of `span` apart need.
fn tick_label(v: f64, span: f64) -> String {
    let decimals = if span > 0.0 {
        (1.0 - span.log10().floor()).clamp(0.0, 6.0) as usize
    } else {
        2
    };
    let s = format!("{v:.decimals$}");
    // A tick a rounding error below zero would read "-0.00".
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_owned(),
        _ => s,
    }
}
