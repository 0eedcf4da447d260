//! Reports of model-level quantization: one row per quantized tensor ([`QuantReport`]) and one
//! per calibrated activation ([`CalibrationReport`]), as Polars tables, text and inline HTML.

use std::fmt;

use crate::report::Table;

use super::affine::{Granularity, QuantError};
use super::size::{LayerBytes, QuantSize};
use crate::error::Result;
use crate::report::html::{emit, escape_html};
use crate::report::table::{f64_col, i64_col, shape_string, str_col, u64_col};
use crate::report::text::{fmt_sig, kib, Grid};
use crate::report::Tabular;

/// How a tensor was quantized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantMethod {
    /// Affine codes with scales (and zero points if asymmetric).
    Affine {
        /// Per tensor or per output channel.
        granularity: Granularity,
        /// Symmetric (`Z = 0`).
        symmetric: bool,
    },
    /// k-means weight sharing.
    KMeans {
        /// Codebook entries (`2^bits`, the zero entry included).
        centroids: usize,
        /// Lloyd updates made.
        iterations: usize,
        /// Whether the clustering converged.
        converged: bool,
    },
}

impl QuantMethod {
    /// `"affine"` or `"k-means"`.
    pub fn name(&self) -> &'static str {
        match self {
            QuantMethod::Affine { .. } => "affine",
            QuantMethod::KMeans { .. } => "k-means",
        }
    }

    /// `"per tensor"`, `"per channel"` or `"codebook"`.
    pub fn granularity(&self) -> &'static str {
        match self {
            QuantMethod::Affine { granularity: Granularity::PerTensor, .. } => "per tensor",
            QuantMethod::Affine { granularity: Granularity::PerChannel, .. } => "per channel",
            QuantMethod::KMeans { .. } => "codebook",
        }
    }
}

/// One quantized tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantLayer {
    /// Tensor path.
    pub path: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// How it was quantized.
    pub method: QuantMethod,
    /// Bits per code or index.
    pub bits: u8,
    /// Parameter sets (scales), or 1 codebook.
    pub param_sets: usize,
    /// Smallest scale (affine), or smallest centroid (k-means).
    pub scale_min: f64,
    /// Largest scale (affine), or largest centroid (k-means).
    pub scale_max: f64,
    /// Error of the quantized values against the float ones.
    pub error: QuantError,
    /// Bytes stored.
    pub bytes: LayerBytes,
}

/// What model-level quantization did: one row per quantized weight tensor, and the bytes of
/// the whole model (biases as f32).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantReport {
    /// Model name.
    pub model: String,
    /// The technique, e.g. `"4-bit symmetric per channel weights"`.
    pub method: String,
    /// One row per quantized tensor, in model order.
    pub layers: Vec<QuantLayer>,
    /// Bytes of every tensor (quantized and float).
    pub size: QuantSize,
}

impl QuantReport {
    /// The row of `path`, if it was quantized.
    pub fn get(&self, path: &str) -> Option<&QuantLayer> {
        self.layers.iter().find(|l| l.path == path)
    }

    /// Compression of the whole model against dense f32.
    pub fn ratio(&self) -> f64 {
        self.size.ratio()
    }

    /// Smallest SQNR over the quantized tensors (dB; `+∞` if none).
    pub fn min_sqnr_db(&self) -> f64 {
        self.layers.iter().map(|l| l.error.sqnr_db).fold(f64::INFINITY, f64::min)
    }

    /// One-line summary.
    pub fn summary(&self) -> String {
        format!(
            "{}: {}, {} tensors quantized, {} → {} bytes (×{:.2}), min SQNR {:.1} dB",
            self.model,
            self.method,
            self.layers.len(),
            self.size.float_total(),
            self.size.total(),
            self.ratio(),
            self.min_sqnr_db()
        )
    }

    fn grid(&self) -> Grid {
        Grid {
            headers: vec!["tensor", "shape", "method", "bits", "granularity", "sets", "scale / value min", "max", "MSE", "SQNR dB", "float KiB", "KiB", "ratio"],
            numeric: vec![false, false, false, true, false, true, true, true, true, true, true, true, true],
            rows: self
                .layers
                .iter()
                .map(|l| {
                    vec![
                        l.path.clone(),
                        shape_string(&l.shape),
                        l.method.name().to_string(),
                        l.bits.to_string(),
                        l.method.granularity().to_string(),
                        l.param_sets.to_string(),
                        fmt_sig(l.scale_min, 4),
                        fmt_sig(l.scale_max, 4),
                        fmt_sig(l.error.mse, 3),
                        format!("{:.1}", l.error.sqnr_db),
                        kib(l.bytes.float_bytes),
                        kib(l.bytes.total()),
                        format!("{:.2}", l.bytes.ratio()),
                    ]
                })
                .collect(),
            total: Some(vec![
                "model (biases f32)".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                kib(self.size.float_total()),
                kib(self.size.total()),
                format!("{:.2}", self.ratio()),
            ]),
        }
    }

    /// HTML: summary line and the per-tensor table.
    pub fn to_html(&self) -> String {
        format!("<div><b>{}</b>{}</div>", escape_html(&self.summary()), self.grid().to_html())
    }

    /// Shows the report inline in the evcxr Jupyter kernel.
    pub fn evcxr_display(&self) {
        emit(&self.to_html(), &self.to_string());
    }
}

impl fmt::Display for QuantReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary())?;
        write!(f, "{}", self.grid().to_text())
    }
}

/// Columns: `model`, `method`, `path`, `shape`, `technique` (`affine` / `k-means`), `bits`,
/// `granularity`, `param_sets`, `scale_min`, `scale_max` (for k-means: the smallest and
/// largest centroid), `mse`, `max_abs_error`, `sqnr_db`, `float_bytes`, `bytes`, `ratio`; one
/// row per quantized tensor.
impl Tabular for QuantReport {
    fn to_table(&self) -> Result<Table> {
        let l = &self.layers;
        let columns = vec![
            str_col("model", l.iter().map(|_| self.model.as_str())),
            str_col("method", l.iter().map(|_| self.method.as_str())),
            str_col("path", l.iter().map(|x| x.path.as_str())),
            str_col("shape", l.iter().map(|x| shape_string(&x.shape))),
            str_col("technique", l.iter().map(|x| x.method.name())),
            u64_col("bits", l.iter().map(|x| x.bits as usize)),
            str_col("granularity", l.iter().map(|x| x.method.granularity())),
            u64_col("param_sets", l.iter().map(|x| x.param_sets)),
            f64_col("scale_min", l.iter().map(|x| x.scale_min)),
            f64_col("scale_max", l.iter().map(|x| x.scale_max)),
            f64_col("mse", l.iter().map(|x| x.error.mse)),
            f64_col("max_abs_error", l.iter().map(|x| x.error.max_abs)),
            f64_col("sqnr_db", l.iter().map(|x| x.error.sqnr_db)),
            u64_col("float_bytes", l.iter().map(|x| x.bytes.float_bytes)),
            u64_col("bytes", l.iter().map(|x| x.bytes.total())),
            f64_col("ratio", l.iter().map(|x| x.bytes.ratio())),
        ];
        Table::new(&format!("quantization report of {:?}", self.model), l.len(), columns)
    }
}

/// The calibration of one activation of a quantized network.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationCalibration {
    /// `input`, or `<layer>.output` (after its ReLU, if any).
    pub activation: String,
    /// Bits of the codes.
    pub bits: u8,
    /// Smallest value seen on the calibration batches.
    pub observed_min: f32,
    /// Largest value seen on the calibration batches.
    pub observed_max: f32,
    /// Smallest representable value `S·(qmin − Z)` (the observer's clipping range).
    pub range_min: f32,
    /// Largest representable value `S·(qmax − Z)`.
    pub range_max: f32,
    /// Scale `S`.
    pub scale: f32,
    /// Zero point `Z`.
    pub zero_point: i32,
}

/// Activation calibration of a quantized network: one row per activation.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationReport {
    /// Model name.
    pub model: String,
    /// The observer, e.g. `MinMax`.
    pub observer: String,
    /// Calibration batches used.
    pub batches: usize,
    /// Calibration samples used.
    pub samples: usize,
    /// Input first, then each layer's output.
    pub activations: Vec<ActivationCalibration>,
}

impl CalibrationReport {
    /// One-line summary.
    pub fn summary(&self) -> String {
        format!("{}: {} calibration on {} batches ({} samples), {} activations", self.model, self.observer, self.batches, self.samples, self.activations.len())
    }

    fn grid(&self) -> Grid {
        Grid {
            headers: vec!["activation", "bits", "seen min", "seen max", "range min", "range max", "scale", "zero point"],
            numeric: vec![false, true, true, true, true, true, true, true],
            rows: self
                .activations
                .iter()
                .map(|a| {
                    vec![
                        a.activation.clone(),
                        a.bits.to_string(),
                        fmt_sig(a.observed_min as f64, 4),
                        fmt_sig(a.observed_max as f64, 4),
                        fmt_sig(a.range_min as f64, 4),
                        fmt_sig(a.range_max as f64, 4),
                        fmt_sig(a.scale as f64, 4),
                        a.zero_point.to_string(),
                    ]
                })
                .collect(),
            total: None,
        }
    }

    /// HTML: summary line and the per-activation table.
    pub fn to_html(&self) -> String {
        format!("<div><b>{}</b>{}</div>", escape_html(&self.summary()), self.grid().to_html())
    }

    /// Shows the report inline in the evcxr Jupyter kernel.
    pub fn evcxr_display(&self) {
        emit(&self.to_html(), &self.to_string());
    }
}

impl fmt::Display for CalibrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary())?;
        write!(f, "{}", self.grid().to_text())
    }
}

/// Columns: `model`, `observer`, `activation`, `bits`, `observed_min`, `observed_max`,
/// `range_min`, `range_max`, `scale` (all floats), `zero_point` (signed); one row per
/// activation, input first.
impl Tabular for CalibrationReport {
    fn to_table(&self) -> Result<Table> {
        let a = &self.activations;
        let f = |name: &str, g: fn(&ActivationCalibration) -> f32| f64_col(name, a.iter().map(|x| g(x) as f64));
        let columns = vec![
            str_col("model", a.iter().map(|_| self.model.as_str())),
            str_col("observer", a.iter().map(|_| self.observer.as_str())),
            str_col("activation", a.iter().map(|x| x.activation.as_str())),
            u64_col("bits", a.iter().map(|x| x.bits as usize)),
            f("observed_min", |x| x.observed_min),
            f("observed_max", |x| x.observed_max),
            f("range_min", |x| x.range_min),
            f("range_max", |x| x.range_max),
            f("scale", |x| x.scale),
            i64_col("zero_point", a.iter().map(|x| x.zero_point as i64)),
        ];
        Table::new(&format!("calibration of {:?}", self.model), a.len(), columns)
    }
}
