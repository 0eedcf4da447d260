//! Repeated runs over seeds: one row per (experiment, method, setting, seed), and their
//! mean ± standard deviation per (experiment, method, setting) as a table and a figure.

use std::fmt;

use crate::report::Table;

use super::figure::Figure;
use super::html::{emit, escape_html};
use super::plots::{LineChart, Series};
use super::table::{f64_col, str_col, u64_col, Tabular};
use super::text::Grid;
use crate::error::Result;

/// One run: a method at one setting (e.g. `k` examples per class, or a temperature) with one
/// seed, measured on a test set.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// Experiment name, e.g. `digits 0-4 -> 5-9`.
    pub experiment: String,
    /// Method, e.g. `frozen`, `fine-tune`, `scratch`, `hard labels`, `KD α=0.5`.
    pub method: String,
    /// The setting on the table's x axis (its name is [`RunTable::x_name`]).
    pub x: f64,
    /// Seed of the run.
    pub seed: u64,
    /// Test accuracy in [0, 1].
    pub accuracy: f64,
    /// Misclassified test samples.
    pub errors: usize,
    /// Test samples.
    pub test_samples: usize,
    /// Training samples the run used.
    pub train_samples: usize,
    /// Optimiser steps the run took.
    pub steps: usize,
    /// Wall-clock seconds of training.
    pub train_seconds: f64,
}

/// Mean and sample standard deviation (n − 1; 0 for a single run) over the seeds of one
/// (experiment, method, setting).
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummaryRow {
    /// Experiment name.
    pub experiment: String,
    /// Method.
    pub method: String,
    /// Setting.
    pub x: f64,
    /// Number of runs (seeds).
    pub runs: usize,
    /// Mean test accuracy in [0, 1].
    pub mean_accuracy: f64,
    /// Standard deviation of the test accuracy.
    pub std_accuracy: f64,
    /// Mean number of test errors.
    pub mean_errors: f64,
    /// Standard deviation of the number of test errors.
    pub std_errors: f64,
}

/// Runs over seeds. Push [`RunRow`]s, then read [`RunTable::summary`], draw
/// [`RunTable::plot`], or write either table as Parquet/CSV ([`Tabular`]).
///
/// ```
/// use lepton::report::{RunRow, RunTable};
/// let mut t = RunTable::new("k");
/// for (seed, acc) in [(0, 0.80), (1, 0.84)] {
///     t.push(RunRow { experiment: "e".into(), method: "frozen".into(), x: 5.0, seed, accuracy: acc,
///         errors: ((1.0 - acc) * 100.0) as usize, test_samples: 100, train_samples: 25, steps: 10, train_seconds: 0.1 });
/// }
/// let s = t.summary();
/// assert_eq!(s[0].runs, 2);
/// assert!((s[0].mean_accuracy - 0.82).abs() < 1e-12);
/// assert!((s[0].std_accuracy - 0.02 * 2f64.sqrt()).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RunTable {
    /// Name of the setting column, e.g. `k` or `temperature`.
    pub x_name: &'static str,
    /// The runs in the order they were pushed.
    pub rows: Vec<RunRow>,
}

/// The summary of a [`RunTable`], one row per (experiment, method, setting), in order of first
/// appearance.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// Name of the setting column.
    pub x_name: &'static str,
    /// The summary rows.
    pub rows: Vec<RunSummaryRow>,
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let std = if n > 1 { (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
    (mean, std)
}

impl RunTable {
    /// An empty table whose setting column is called `x_name`.
    pub fn new(x_name: &'static str) -> Self {
        RunTable { x_name, rows: Vec::new() }
    }

    /// Appends a run.
    pub fn push(&mut self, row: RunRow) {
        self.rows.push(row);
    }

    /// Appends every run of `other` (its setting name is not checked).
    pub fn extend(&mut self, other: RunTable) {
        self.rows.extend(other.rows);
    }

    /// Number of runs.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no runs.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Mean ± std per (experiment, method, setting), in order of first appearance.
    pub fn summary(&self) -> Vec<RunSummaryRow> {
        let mut keys: Vec<(&str, &str, f64)> = Vec::new();
        for r in &self.rows {
            let k = (r.experiment.as_str(), r.method.as_str(), r.x);
            if !keys.iter().any(|q| q.0 == k.0 && q.1 == k.1 && q.2.to_bits() == k.2.to_bits()) {
                keys.push(k);
            }
        }
        keys.into_iter()
            .map(|(e, m, x)| {
                let runs: Vec<&RunRow> =
                    self.rows.iter().filter(|r| r.experiment == e && r.method == m && r.x.to_bits() == x.to_bits()).collect();
                let acc: Vec<f64> = runs.iter().map(|r| r.accuracy).collect();
                let err: Vec<f64> = runs.iter().map(|r| r.errors as f64).collect();
                let (mean_accuracy, std_accuracy) = mean_std(&acc);
                let (mean_errors, std_errors) = mean_std(&err);
                RunSummaryRow { experiment: e.into(), method: m.into(), x, runs: runs.len(), mean_accuracy, std_accuracy, mean_errors, std_errors }
            })
            .collect()
    }

    /// [`RunTable::summary`] as a table that displays and writes itself.
    pub fn summary_table(&self) -> RunSummary {
        RunSummary { x_name: self.x_name, rows: self.summary() }
    }

    /// The summary row of (experiment, method, x), if any run has it.
    pub fn mean(&self, experiment: &str, method: &str, x: f64) -> Option<RunSummaryRow> {
        self.summary().into_iter().find(|r| r.experiment == experiment && r.method == method && r.x.to_bits() == x.to_bits())
    }

    /// Mean test accuracy (%) against the setting, one curve per method of `experiment`, with
    /// ± one standard deviation as error bars. `log_x` for settings such as `k`.
    pub fn plot(&self, experiment: &str, log_x: bool) -> Result<Figure> {
        let summary = self.summary();
        let mut methods: Vec<&str> = Vec::new();
        for r in summary.iter().filter(|r| r.experiment == experiment) {
            if !methods.contains(&r.method.as_str()) {
                methods.push(&r.method);
            }
        }
        let mut chart = LineChart::new(experiment, self.x_name, "test accuracy (%), mean ± std over seeds").log_x(log_x);
        for m in methods {
            let rows: Vec<&RunSummaryRow> = summary.iter().filter(|r| r.experiment == experiment && r.method == m).collect();
            let pts = rows.iter().map(|r| (r.x, 100.0 * r.mean_accuracy)).collect();
            let errs = rows.iter().map(|r| 100.0 * r.std_accuracy).collect();
            chart = chart.series(Series::new(m, pts).with_errors(errs));
        }
        chart.plot()
    }

    fn grid(&self) -> Grid {
        Grid {
            headers: vec!["experiment", "method", self.x_name, "seed", "accuracy %", "errors", "test", "train", "steps", "train s"],
            numeric: vec![false, false, true, true, true, true, true, true, true, true],
            rows: self
                .rows
                .iter()
                .map(|r| {
                    vec![
                        r.experiment.clone(),
                        r.method.clone(),
                        fmt_x(r.x),
                        r.seed.to_string(),
                        format!("{:.2}", 100.0 * r.accuracy),
                        r.errors.to_string(),
                        r.test_samples.to_string(),
                        r.train_samples.to_string(),
                        r.steps.to_string(),
                        format!("{:.1}", r.train_seconds),
                    ]
                })
                .collect(),
            total: None,
        }
    }
}

fn fmt_x(x: f64) -> String {
    if x.is_infinite() {
        "all".into()
    } else if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:.1}")
    }
}

impl RunSummary {
    fn grid(&self) -> Grid {
        Grid {
            headers: vec!["experiment", "method", self.x_name, "runs", "accuracy % (mean ± std)", "errors (mean ± std)"],
            numeric: vec![false, false, true, true, true, true],
            rows: self
                .rows
                .iter()
                .map(|r| {
                    vec![
                        r.experiment.clone(),
                        r.method.clone(),
                        fmt_x(r.x),
                        r.runs.to_string(),
                        format!("{:.2} ± {:.2}", 100.0 * r.mean_accuracy, 100.0 * r.std_accuracy),
                        format!("{:.1} ± {:.1}", r.mean_errors, r.std_errors),
                    ]
                })
                .collect(),
            total: None,
        }
    }

    /// HTML table.
    pub fn to_html(&self) -> String {
        self.grid().to_html()
    }

    /// Shows the table inline in the evcxr Jupyter kernel.
    pub fn evcxr_display(&self) {
        emit(&self.to_html(), &self.to_string());
    }
}

impl RunTable {
    /// HTML table of every run.
    pub fn to_html(&self) -> String {
        format!("<div><b>{}</b>{}</div>", escape_html(&format!("{} runs", self.rows.len())), self.grid().to_html())
    }

    /// Shows the table inline in the evcxr Jupyter kernel.
    pub fn evcxr_display(&self) {
        emit(&self.to_html(), &self.to_string());
    }
}

impl fmt::Display for RunTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.grid().to_text())
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.grid().to_text())
    }
}

/// Columns: `experiment`, `method`, the setting (named [`RunTable::x_name`]; `inf` = all),
/// `seed`, `accuracy`, `errors`, `test_samples`, `train_samples`, `steps`, `train_seconds`.
impl Tabular for RunTable {
    fn to_table(&self) -> Result<Table> {
        let r = &self.rows;
        let columns = vec![
            str_col("experiment", r.iter().map(|r| r.experiment.as_str())),
            str_col("method", r.iter().map(|r| r.method.as_str())),
            f64_col(self.x_name, r.iter().map(|r| r.x)),
            u64_col("seed", r.iter().map(|r| r.seed as usize)),
            f64_col("accuracy", r.iter().map(|r| r.accuracy)),
            u64_col("errors", r.iter().map(|r| r.errors)),
            u64_col("test_samples", r.iter().map(|r| r.test_samples)),
            u64_col("train_samples", r.iter().map(|r| r.train_samples)),
            u64_col("steps", r.iter().map(|r| r.steps)),
            f64_col("train_seconds", r.iter().map(|r| r.train_seconds)),
        ];
        Table::new("run table", r.len(), columns)
    }
}

/// Columns: `experiment`, `method`, the setting, `runs`, `mean_accuracy`, `std_accuracy`,
/// `mean_errors`, `std_errors`.
impl Tabular for RunSummary {
    fn to_table(&self) -> Result<Table> {
        let r = &self.rows;
        let columns = vec![
            str_col("experiment", r.iter().map(|r| r.experiment.as_str())),
            str_col("method", r.iter().map(|r| r.method.as_str())),
            f64_col(self.x_name, r.iter().map(|r| r.x)),
            u64_col("runs", r.iter().map(|r| r.runs)),
            f64_col("mean_accuracy", r.iter().map(|r| r.mean_accuracy)),
            f64_col("std_accuracy", r.iter().map(|r| r.std_accuracy)),
            f64_col("mean_errors", r.iter().map(|r| r.mean_errors)),
            f64_col("std_errors", r.iter().map(|r| r.std_errors)),
        ];
        Table::new("run summary", r.len(), columns)
    }
}
