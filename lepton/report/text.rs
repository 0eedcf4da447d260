//! Plain-text tables: `Display` for every report, for terminals and logs.
//!
//! Each report builds a [`Grid`] (header, formatted cells, optional total row); the same grid
//! renders as aligned text here and as HTML in `html.rs`.

use std::fmt;

use super::experiment::ExperimentTable;
use super::table::shape_string;
use super::types::{EvalReport, History, SizeReport};

/// A formatted table: header, rows of cells, and an optional total row.
pub(crate) struct Grid {
    pub headers: Vec<&'static str>,
    /// Right-align (numeric) per column.
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<String>>,
    pub total: Option<Vec<String>>,
}

impl Grid {
    /// Aligned text: two spaces between columns, a rule under the header and above the total.
    pub(crate) fn to_text(&self) -> String {
        let all = std::iter::once(
            self.headers
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>(),
        )
        .chain(self.rows.iter().cloned())
        .chain(self.total.iter().cloned());
        let mut widths = vec![0; self.headers.len()];
        for row in all {
            for (w, cell) in widths.iter_mut().zip(&row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .zip(&self.numeric)
                .map(|((c, &w), &num)| {
                    if num {
                        format!("{c:>w$}")
                    } else {
                        format!("{c:<w$}")
                    }
                })
                .collect();
            padded.join("  ").trim_end().to_owned()
        };
        let rule = "-".repeat(widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1));
        let headers: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        let mut out = vec![line(&headers), rule.clone()];
        out.extend(self.rows.iter().map(|r| line(r)));
        if let Some(total) = &self.total {
            out.push(rule);
            out.push(line(total));
        }
        out.join("\n")
    }
}

/// `x` with about `sig` significant digits, trailing zeros trimmed; large or tiny magnitudes
/// in scientific notation; `NaN`/`inf` as such.
pub(crate) fn fmt_sig(x: f64, sig: usize) -> String {
    if !x.is_finite() || x == 0.0 {
        return format!("{x}");
    }
    let mag = x.abs().log10().floor();
    if !(-3.0..7.0).contains(&mag) {
        return format!("{x:.prec$e}", prec = sig.saturating_sub(1));
    }
    let decimals = (sig as f64 - 1.0 - mag).max(0.0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// A fraction as a percentage with two decimals (`0.9123` → `"91.23"`).
pub(crate) fn pct(fraction: f64) -> String {
    format!("{:.2}", 100.0 * fraction)
}

/// Bytes as KiB with two decimals.
pub(crate) fn kib(bytes: usize) -> String {
    format!("{:.2}", bytes as f64 / 1024.0)
}

impl History {
    pub(crate) fn grid(&self) -> Grid {
        let dash = || "-".to_owned();
        Grid {
            headers: vec![
                "epoch",
                "train loss",
                "train acc %",
                "val loss",
                "val acc %",
                "lr",
                "seconds",
                "samples",
            ],
            numeric: vec![true; 8],
            rows: self
                .epochs
                .iter()
                .map(|e| {
                    vec![
                        e.epoch.to_string(),
                        format!("{:.4}", e.train_loss),
                        pct(e.train_accuracy),
                        e.val_loss.map_or_else(dash, |v| format!("{v:.4}")),
                        e.val_accuracy.map_or_else(dash, pct),
                        fmt_sig(e.learning_rate, 3),
                        format!("{:.1}", e.wall_seconds),
                        e.samples.to_string(),
                    ]
                })
                .collect(),
            total: None,
        }
    }

    pub(crate) fn summary(&self) -> String {
        let name = if self.name.is_empty() {
            "(unnamed run)"
        } else {
            &self.name
        };
        let seconds: f64 = self.epochs.iter().map(|e| e.wall_seconds).sum();
        format!(
            "History {name}: {} epochs, {seconds:.1} s",
            self.epochs.len()
        )
    }
}

impl fmt::Display for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary())?;
        if !self.epochs.is_empty() {
            write!(f, "{}", self.grid().to_text())?;
        }
        Ok(())
    }
}

impl EvalReport {
    pub(crate) fn summary(&self) -> String {
        format!(
            "{} on {}: accuracy {} %, loss {:.4} nats, {} samples",
            self.model,
            self.dataset,
            pct(self.accuracy),
            self.loss,
            self.samples
        )
    }

    pub(crate) fn class_grid(&self) -> Grid {
        let n = self.class_counts.len().min(self.per_class_accuracy.len());
        Grid {
            headers: vec!["class", "name", "samples", "accuracy %"],
            numeric: vec![true, false, true, true],
            rows: (0..n)
                .map(|i| {
                    vec![
                        i.to_string(),
                        self.class_name(i),
                        self.class_counts[i].to_string(),
                        pct(self.per_class_accuracy[i]),
                    ]
                })
                .collect(),
            total: None,
        }
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary())?;
        writeln!(f, "{}", self.class_grid().to_text())?;
        let n = self.confusion.len();
        if n == 0 {
            return Ok(());
        }
        writeln!(
            f,
            "confusion matrix (rows: true class, columns: predicted class)"
        )?;
        let width = self
            .confusion
            .iter()
            .flatten()
            .map(|c| c.to_string().len())
            .max()
            .unwrap_or(1)
            .max(n.to_string().len());
        let index = n.to_string().len();
        let header: Vec<String> = (0..n).map(|p| format!("{p:>width$}")).collect();
        write!(f, "{:>index$}  {}", "", header.join(" "))?;
        for (t, row) in self.confusion.iter().enumerate() {
            let cells: Vec<String> = row.iter().map(|c| format!("{c:>width$}")).collect();
            write!(f, "\n{t:>index$}  {}", cells.join(" "))?;
        }
        Ok(())
    }
}

impl SizeReport {
    pub(crate) fn grid(&self) -> Grid {
        Grid {
            headers: vec!["tensor", "shape", "params", "bytes", "KiB"],
            numeric: vec![false, false, true, true, true],
            rows: self
                .tensors
                .iter()
                .map(|t| {
                    vec![
                        t.path.clone(),
                        shape_string(&t.shape),
                        t.params.to_string(),
                        t.bytes.to_string(),
                        kib(t.bytes),
                    ]
                })
                .collect(),
            total: Some(vec![
                "total".to_owned(),
                String::new(),
                self.total_params().to_string(),
                self.total_bytes().to_string(),
                kib(self.total_bytes()),
            ]),
        }
    }
}

impl fmt::Display for SizeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "SizeReport {}: {} tensors",
            self.model,
            self.tensors.len()
        )?;
        write!(f, "{}", self.grid().to_text())
    }
}

impl ExperimentTable {
    pub(crate) fn grid(&self) -> Grid {
        Grid {
            headers: vec![
                "model",
                "dataset",
                "stage",
                "seed",
                "epochs",
                "test acc %",
                "test loss",
                "params",
                "KiB",
                "train s",
                "notes",
            ],
            numeric: vec![
                false, false, false, true, true, true, true, true, true, true, false,
            ],
            rows: self
                .rows
                .iter()
                .map(|r| {
                    vec![
                        r.model.clone(),
                        r.dataset.clone(),
                        r.stage.clone(),
                        r.seed.to_string(),
                        r.epochs.to_string(),
                        pct(r.test_accuracy),
                        format!("{:.4}", r.test_loss),
                        r.params.to_string(),
                        kib(r.bytes),
                        format!("{:.1}", r.train_seconds),
                        r.notes.clone(),
                    ]
                })
                .collect(),
            total: None,
        }
    }
}

impl fmt::Display for ExperimentTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "ExperimentTable: {} rows", self.rows.len())?;
        if !self.rows.is_empty() {
            write!(f, "{}", self.grid().to_text())?;
        }
        Ok(())
    }
}
