//! Pruning reports: per-layer sparsity and stored size with index overhead, the sensitivity
//! scan, as Polars tables, text, inline HTML and figures.

use std::fmt;

use crate::report::Table;

use super::mask::TensorValues;
use super::sensitivity::SensitivityScan;
use super::sparse::sparse_bytes;
use crate::error::Result;
use crate::report::html::{emit, escape_html};
use crate::report::table::{f64_col, shape_string, str_col, u64_col};
use crate::report::text::{kib, Grid};
use crate::report::{Figure, LineChart, Series, Tabular, WeightHistograms};

/// Sparsity and storage of one tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSparsity {
    /// Tensor path.
    pub path: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Elements.
    pub params: usize,
    /// Non-zero elements.
    pub nonzero: usize,
    /// Dense f32 bytes.
    pub dense_bytes: usize,
    /// CSR bytes (f32 values, u16/u32 column indices, u32 row pointers).
    pub csr_bytes: usize,
    /// Deep-Compression relative-index bytes (f32 values).
    pub relative_bytes: usize,
    /// Relative-index bits used for this tensor.
    pub index_bits: usize,
    /// Filler zeros the relative encoding needed.
    pub fillers: usize,
}

impl LayerSparsity {
    /// Fraction of weights kept (non-zero).
    pub fn kept(&self) -> f64 {
        if self.params == 0 { 0.0 } else { self.nonzero as f64 / self.params as f64 }
    }
    /// Best stored size: dense, or the smaller sparse format when it is smaller.
    pub fn best_bytes(&self) -> usize {
        self.dense_bytes.min(self.csr_bytes).min(self.relative_bytes)
    }
}

/// Per-tensor sparsity and size of a model, with totals.
#[derive(Debug, Clone, PartialEq)]
pub struct SparsityReport {
    /// Model name.
    pub model: String,
    /// One row per tensor, in model order.
    pub layers: Vec<LayerSparsity>,
}

impl SparsityReport {
    /// From a model's tensors. Relative indices use 8 bits for conv weights (4 dimensions) and 5
    /// for the rest, as Han et al. 2016.
    pub fn from_tensors(model: &str, tensors: &[TensorValues]) -> SparsityReport {
        let layers = tensors
            .iter()
            .map(|(path, shape, values)| {
                let index_bits = if shape.len() == 4 { 8 } else { 5 };
                let b = sparse_bytes(shape, values, 32, index_bits);
                LayerSparsity {
                    path: path.clone(),
                    shape: shape.clone(),
                    params: values.len(),
                    nonzero: values.iter().filter(|v| **v != 0.0).count(),
                    dense_bytes: b.dense,
                    csr_bytes: b.csr,
                    relative_bytes: b.relative,
                    index_bits,
                    fillers: b.fillers,
                }
            })
            .collect();
        SparsityReport { model: model.to_string(), layers }
    }

    /// All elements.
    pub fn total_params(&self) -> usize {
        self.layers.iter().map(|l| l.params).sum()
    }
    /// All non-zero elements.
    pub fn total_nonzero(&self) -> usize {
        self.layers.iter().map(|l| l.nonzero).sum()
    }
    /// Fraction of all parameters kept.
    pub fn kept(&self) -> f64 {
        self.total_nonzero() as f64 / self.total_params().max(1) as f64
    }
    /// Fraction kept of the weight tensors (2 or more dimensions), as Han et al. count it.
    pub fn weights_kept(&self) -> f64 {
        let w: Vec<&LayerSparsity> = self.layers.iter().filter(|l| l.shape.len() >= 2).collect();
        let n: usize = w.iter().map(|l| l.params).sum();
        w.iter().map(|l| l.nonzero).sum::<usize>() as f64 / n.max(1) as f64
    }
    /// Compression ratio of the weights: params / non-zeros.
    pub fn compression(&self) -> f64 {
        self.total_params() as f64 / self.total_nonzero().max(1) as f64
    }
    /// Dense bytes in all.
    pub fn dense_bytes(&self) -> usize {
        self.layers.iter().map(|l| l.dense_bytes).sum()
    }
    /// CSR bytes in all (every tensor in CSR).
    pub fn csr_bytes(&self) -> usize {
        self.layers.iter().map(|l| l.csr_bytes).sum()
    }
    /// Relative-index bytes in all.
    pub fn relative_bytes(&self) -> usize {
        self.layers.iter().map(|l| l.relative_bytes).sum()
    }
    /// Bytes when each tensor takes its smallest format.
    pub fn best_bytes(&self) -> usize {
        self.layers.iter().map(LayerSparsity::best_bytes).sum()
    }

    fn grid(&self) -> Grid {
        Grid {
            headers: vec!["tensor", "shape", "params", "non-zero", "kept %", "dense KiB", "CSR KiB", "rel. idx KiB", "idx bits"],
            numeric: vec![false, false, true, true, true, true, true, true, true],
            rows: self
                .layers
                .iter()
                .map(|l| {
                    vec![
                        l.path.clone(),
                        shape_string(&l.shape),
                        l.params.to_string(),
                        l.nonzero.to_string(),
                        format!("{:.1}", 100.0 * l.kept()),
                        kib(l.dense_bytes),
                        kib(l.csr_bytes),
                        kib(l.relative_bytes),
                        l.index_bits.to_string(),
                    ]
                })
                .collect(),
            total: Some(vec![
                "total".into(),
                String::new(),
                self.total_params().to_string(),
                self.total_nonzero().to_string(),
                format!("{:.1}", 100.0 * self.kept()),
                kib(self.dense_bytes()),
                kib(self.csr_bytes()),
                kib(self.relative_bytes()),
                String::new(),
            ]),
        }
    }

    /// HTML table.
    pub fn to_html(&self) -> String {
        format!(
            "<div><b>{}</b>: {:.2}% of weights kept ({:.1}× fewer), {} KiB dense → {} KiB best sparse</div>{}",
            escape_html(&self.model),
            100.0 * self.weights_kept(),
            self.compression(),
            kib(self.dense_bytes()),
            kib(self.best_bytes()),
            self.grid().to_html()
        )
    }

    /// Shows the report inline in evcxr.
    pub fn evcxr_display(&self) {
        emit(&self.to_html(), &self.to_string());
    }
}

impl fmt::Display for SparsityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "SparsityReport {}: {:.2}% of weights kept ({:.1}x fewer parameters)",
            self.model,
            100.0 * self.weights_kept(),
            self.compression()
        )?;
        write!(f, "{}", self.grid().to_text())
    }
}

impl Tabular for SparsityReport {
    /// Columns: model, tensor, shape, params, nonzero, kept, dense_bytes, csr_bytes,
    /// relative_bytes, index_bits, fillers.
    fn to_table(&self) -> Result<Table> {
        let l = &self.layers;
        Table::new(
            "sparsity report",
            l.len(),
            vec![
                str_col("model", l.iter().map(|_| self.model.as_str())),
                str_col("tensor", l.iter().map(|x| x.path.as_str())),
                str_col("shape", l.iter().map(|x| shape_string(&x.shape))),
                u64_col("params", l.iter().map(|x| x.params)),
                u64_col("nonzero", l.iter().map(|x| x.nonzero)),
                f64_col("kept", l.iter().map(|x| x.kept())),
                u64_col("dense_bytes", l.iter().map(|x| x.dense_bytes)),
                u64_col("csr_bytes", l.iter().map(|x| x.csr_bytes)),
                u64_col("relative_bytes", l.iter().map(|x| x.relative_bytes)),
                u64_col("index_bits", l.iter().map(|x| x.index_bits)),
                u64_col("fillers", l.iter().map(|x| x.fillers)),
            ],
        )
    }
}

/// Histograms of each weight tensor's values: all weights against the non-zero ones.
pub fn weight_histograms(title: &str, tensors: &[TensorValues], bins: usize) -> Result<Figure> {
    let mut h = WeightHistograms::new(title, bins);
    for (p, s, v) in tensors {
        if s.len() >= 2 {
            h = h.panel(p.clone(), v.clone());
        }
    }
    h.plot()
}

impl SensitivityScan {
    fn grid(&self) -> Grid {
        Grid {
            headers: vec!["tensor", "params", "sparsity %", "accuracy %", "drop (points)", "loss"],
            numeric: vec![false, true, true, true, true, true],
            rows: self
                .rows
                .iter()
                .map(|r| {
                    vec![
                        r.path.clone(),
                        r.params.to_string(),
                        format!("{:.0}", 100.0 * r.sparsity),
                        format!("{:.2}", 100.0 * r.accuracy),
                        format!("{:+.2}", 100.0 * (self.baseline_accuracy - r.accuracy)),
                        format!("{:.4}", r.loss),
                    ]
                })
                .collect(),
            total: None,
        }
    }

    /// Accuracy (%) against sparsity (%), one curve per layer, the unpruned accuracy as a flat
    /// reference line.
    pub fn plot(&self) -> Result<Figure> {
        let mut chart = LineChart::new(
            format!("Sensitivity of {} on {}", self.model, self.dataset),
            "sparsity of the layer (%)",
            "accuracy (%)",
        );
        let mut xs: Vec<f64> = self.rows.iter().map(|r| 100.0 * r.sparsity).collect();
        xs.sort_by(|a, b| a.total_cmp(b));
        for p in self.paths() {
            let pts = self.rows.iter().filter(|r| r.path == p).map(|r| (100.0 * r.sparsity, 100.0 * r.accuracy)).collect();
            chart = chart.series(Series::new(p, pts));
        }
        if let (Some(lo), Some(hi)) = (xs.first(), xs.last()) {
            let b = 100.0 * self.baseline_accuracy;
            chart = chart.series(Series::new("unpruned", vec![(*lo, b), (*hi, b)]));
        }
        chart.plot()
    }

    /// HTML table.
    pub fn to_html(&self) -> String {
        format!(
            "<div><b>Sensitivity of {}</b> on {}: unpruned accuracy {:.2}%</div>{}",
            escape_html(&self.model),
            escape_html(&self.dataset),
            100.0 * self.baseline_accuracy,
            self.grid().to_html()
        )
    }

    /// Shows the scan inline in evcxr (table).
    pub fn evcxr_display(&self) {
        emit(&self.to_html(), &self.to_string());
    }
}

impl fmt::Display for SensitivityScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "SensitivityScan {} on {}: unpruned {:.2}%", self.model, self.dataset, 100.0 * self.baseline_accuracy)?;
        write!(f, "{}", self.grid().to_text())
    }
}

impl Tabular for SensitivityScan {
    /// Columns: model, dataset, tensor, params, sparsity, accuracy, loss, baseline_accuracy.
    fn to_table(&self) -> Result<Table> {
        let r = &self.rows;
        Table::new(
            "sensitivity scan",
            r.len(),
            vec![
                str_col("model", r.iter().map(|_| self.model.as_str())),
                str_col("dataset", r.iter().map(|_| self.dataset.as_str())),
                str_col("tensor", r.iter().map(|x| x.path.as_str())),
                u64_col("params", r.iter().map(|x| x.params)),
                f64_col("sparsity", r.iter().map(|x| x.sparsity)),
                f64_col("accuracy", r.iter().map(|x| x.accuracy)),
                f64_col("loss", r.iter().map(|x| x.loss)),
                f64_col("baseline_accuracy", r.iter().map(|_| self.baseline_accuracy)),
            ],
        )
    }
}
