//! Static post-training quantization of a whole network from its tensors and a calibration
//! [`Dataset`]: a [`QuantizedMlp`] (an MLP) or a [`QuantizedLeNet5`] (a LeNet-5: tensors named
//! `conv1.weight`, …) with the [`CalibrationReport`] of its activations, evaluated on datasets
//! in integers.

use crate::report::Table;
use rayon::prelude::*;

use super::affine::QParams;
use super::conv::QuantizedLeNet5;
use super::kernel::Kernel;
use super::linear::QuantizedLinear;
use super::mlp::{Calibration, QuantConfig, QuantizedMlp, WeightParams};
use super::qat::QatState;
use super::report::{ActivationCalibration, CalibrationReport};
use super::size::QuantSize;
use crate::data::Dataset;
use crate::error::{LeptonError, Result};
use crate::prune::TensorValues;
use crate::report::html::{emit, escape_html};
use crate::report::Tabular;

/// Samples per batch when a [`QuantizedModel`] runs over a dataset.
const EVAL_BATCH: usize = 1000;

/// The integer network inside a [`QuantizedModel`].
#[derive(Debug, Clone, PartialEq)]
enum Net {
    Mlp(QuantizedMlp),
    LeNet5(QuantizedLeNet5),
}

/// A network quantized for integer inference, with its calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedModel {
    model: String,
    net: Net,
    calibration: CalibrationReport,
}

/// `(min, max)` of every activation (input, each layer's output after its ReLU) on `batches`,
/// computed in f32 like the calibration itself.
fn observed_ranges(tensors: &[TensorValues], batches: &[Vec<f32>]) -> Vec<(f32, f32)> {
    let layers: Vec<(&[f32], &[f32], usize, usize)> = tensors
        .chunks_exact(2)
        .filter_map(|p| match p {
            [(_, ws, w), (_, _, b)] if ws.len() == 2 => Some((w.as_slice(), b.as_slice(), ws[0], ws[1])),
            _ => None,
        })
        .collect();
    let mut ranges = vec![(f32::INFINITY, f32::NEG_INFINITY); layers.len() + 1];
    let widen = |r: &mut (f32, f32), v: &[f32]| {
        for &x in v {
            *r = (r.0.min(x), r.1.max(x));
        }
    };
    let last = layers.len().saturating_sub(1);
    for x in batches {
        let mut h = x.clone();
        if let Some(r) = ranges.first_mut() {
            widen(r, &h);
        }
        for (i, &(w, b, out, inp)) in layers.iter().enumerate() {
            let mut y = vec![0.0f32; h.len() / inp.max(1) * out];
            y.par_chunks_mut(out).zip(h.par_chunks(inp)).for_each(|(yb, xb)| {
                for ((o, row), &bias) in yb.iter_mut().zip(w.chunks_exact(inp)).zip(b) {
                    let v = row.iter().zip(xb).map(|(a, v)| a * v).sum::<f32>() + bias;
                    *o = if i < last { v.max(0.0) } else { v };
                }
            });
            h = y;
            if let Some(r) = ranges.get_mut(i + 1) {
                widen(r, &h);
            }
        }
    }
    ranges
}

impl QuantizedModel {
    /// The integer network of a quantization-aware training run: `tensors` are the float
    /// (shadow) weights, quantized with exactly the parameters QAT uses now (frozen or min-max,
    /// per channel or per tensor), and the activations get QAT's ranges (its calibration
    /// report lists them: observed = quantized range = the moving averages). The integer
    /// network then computes what QAT's evaluation simulates, up to rounding: biases in
    /// `i32`, requantization in fixed point. Errors with weights-only QAT, before QAT saw a
    /// batch (no ranges), or if the network does not fit.
    pub fn from_qat(model: &str, tensors: &[TensorValues], qat: &QatState, kernel: Kernel) -> Result<QuantizedModel> {
        let Some(activation_bits) = qat.config().activation_bits else {
            return Err(LeptonError::config("activation_bits", "None", "integer inference needs quantized activations: QAT with activation_bits"));
        };
        let ranges = qat.activation_ranges();
        let params = qat.activation_params()?;
        let lenet5 = tensors.iter().any(|t| t.0 == "conv1.weight");
        let points = if lenet5 { 6 } else { tensors.iter().filter(|t| t.1.len() == 2).count() + 1 };
        if ranges.len() != points {
            return Err(LeptonError::config(
                "QAT",
                format!("{} activation ranges", ranges.len()),
                format!("{model} has {points} activation points: run at least one QAT training step first"),
            ));
        }
        let mut weight_params = WeightParams::new();
        for (path, shape, values) in tensors.iter().filter(|t| t.1.len() >= 2) {
            weight_params.insert(path.clone(), qat.quantize(path, shape, values)?.params);
        }
        let config = QuantConfig { weight_bits: qat.config().weight_bits, activation_bits, observer: super::observer::ObserverKind::MinMax, kernel };
        let acts: Vec<QParams> = params.iter().map(|p| p.1).collect();
        let net = if lenet5 {
            Net::LeNet5(QuantizedLeNet5::from_params(tensors, &acts, &config, Some(&weight_params))?)
        } else {
            let r: Vec<(f32, f32)> = ranges.iter().map(|r| (r.min, r.max)).collect();
            Net::Mlp(QuantizedMlp::from_tensors_with(tensors, &Calibration::Ranges(&r), &config, Some(&weight_params))?)
        };
        let activations = ranges
            .iter()
            .zip(&acts)
            .map(|(r, p)| {
                let (range_min, range_max) = p.real_range();
                ActivationCalibration {
                    activation: r.name.to_string(),
                    bits: p.bits,
                    observed_min: r.min,
                    observed_max: r.max,
                    range_min,
                    range_max,
                    scale: p.scale,
                    zero_point: p.zero_point,
                }
            })
            .collect();
        let calibration = CalibrationReport {
            model: model.to_string(),
            observer: format!("QAT moving average (c = {})", super::qat::ACTIVATION_AVERAGING),
            batches: ranges.first().map_or(0, |r| r.batches),
            samples: 0,
            activations,
        };
        Ok(QuantizedModel { model: model.to_string(), net, calibration })
    }

    /// Quantizes a network given as its tensors with activations calibrated on the first
    /// `batches` batches of `batch_size` samples of `calib` (in order; fewer if `calib` is
    /// smaller): an MLP (`<name>.weight` `(out, in)`, `<name>.bias`, layer after layer), or a
    /// LeNet-5 (`conv1`, `conv2`, `fc1`–`fc3`, any widths). Errors on zero batches, other
    /// convolutional networks, bad bits, non-finite weights, or a dataset that does not fit.
    pub fn calibrate(
        model: &str,
        tensors: &[TensorValues],
        config: &QuantConfig,
        calib: &Dataset,
        batch_size: usize,
        batches: usize,
    ) -> Result<QuantizedModel> {
        if batches == 0 {
            return Err(LeptonError::config("batches", 0, "need at least one calibration batch"));
        }
        let conv = tensors.iter().find(|t| t.1.len() > 2);
        let lenet5 = conv.is_some() && tensors.iter().any(|t| t.0 == "conv1.weight");
        if let (Some((path, shape, _)), false) = (conv, lenet5) {
            return Err(LeptonError::config(
                "model",
                model,
                format!("integer inference supports MLPs and LeNet-5 only; tensor {path} has shape {shape:?}"),
            ));
        }
        let inputs = if lenet5 { 784 } else { tensors.first().and_then(|t| t.1.get(1)).copied().unwrap_or(0) };
        if calib.features() != inputs || calib.is_empty() {
            return Err(LeptonError::Dataset {
                dataset: calib.name().to_string(),
                reason: format!("has {} samples of {} features; {model} takes {inputs} features and calibration needs samples", calib.len(), calib.features()),
            });
        }
        let xs: Vec<Vec<f32>> = calib.batches(batch_size, None)?.take(batches).map(|b| b.x).collect();
        let mut params = Vec::new();
        let (net, seen) = if lenet5 {
            let (q, seen) = QuantizedLeNet5::from_tensors(tensors, &xs, config)?;
            let names = ["input", "conv1.output", "conv2.output", "fc1.output", "fc2.output", "fc3.output"];
            params.extend(names.iter().map(|n| n.to_string()).zip(q.activation_params()));
            (Net::LeNet5(q), seen)
        } else {
            let mlp = QuantizedMlp::from_tensors(tensors, &Calibration::Batches(&xs), config)?;
            if let Some(p) = mlp.input_params() {
                params.push(("input".to_string(), p));
            }
            for (l, name) in mlp.layers().iter().zip(mlp.names()) {
                params.push((format!("{name}.output"), l.output_params()));
            }
            (Net::Mlp(mlp), observed_ranges(tensors, &xs))
        };
        let activations = params
            .into_iter()
            .zip(seen)
            .map(|((activation, p), (lo, hi))| {
                let (range_min, range_max) = p.real_range();
                ActivationCalibration { activation, bits: p.bits, observed_min: lo, observed_max: hi, range_min, range_max, scale: p.scale, zero_point: p.zero_point }
            })
            .collect();
        let calibration = CalibrationReport {
            model: model.to_string(),
            observer: format!("{:?}", config.observer),
            batches: xs.len(),
            samples: xs.iter().map(|x| x.len() / inputs.max(1)).sum(),
            activations,
        };
        Ok(QuantizedModel { model: model.to_string(), net, calibration })
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.model
    }

    /// The integer network, if it is an MLP.
    pub fn mlp(&self) -> Option<&QuantizedMlp> {
        match &self.net {
            Net::Mlp(m) => Some(m),
            Net::LeNet5(_) => None,
        }
    }

    /// The integer network, if it is a LeNet-5.
    pub fn lenet5(&self) -> Option<&QuantizedLeNet5> {
        match &self.net {
            Net::LeNet5(m) => Some(m),
            Net::Mlp(_) => None,
        }
    }

    /// The same network running `kernel` (e.g. [`Kernel::Portable`]).
    pub fn with_kernel(mut self, kernel: Kernel) -> Result<QuantizedModel> {
        self.net = match self.net {
            Net::Mlp(m) => Net::Mlp(m.with_kernel(kernel)?),
            Net::LeNet5(m) => Net::LeNet5(m.with_kernel(kernel)?),
        };
        Ok(self)
    }

    /// The kernel the layers run.
    pub fn kernel(&self) -> Kernel {
        match &self.net {
            Net::Mlp(m) => m.kernel(),
            Net::LeNet5(m) => m.kernel(),
        }
    }

    fn inputs(&self) -> usize {
        match &self.net {
            Net::Mlp(m) => m.inputs(),
            Net::LeNet5(m) => m.inputs(),
        }
    }

    fn outputs(&self) -> usize {
        match &self.net {
            Net::Mlp(m) => m.outputs(),
            Net::LeNet5(m) => m.outputs(),
        }
    }

    /// Predicted classes of a float batch `(batch, inputs)`.
    pub fn predict_batch(&self, x: &[f32], batch: usize) -> Result<Vec<usize>> {
        match &self.net {
            Net::Mlp(m) => m.predict(x, batch),
            Net::LeNet5(m) => m.predict(x, batch),
        }
    }

    /// Dequantized logits of a float batch `(batch, inputs)`.
    pub fn logits_batch(&self, x: &[f32], batch: usize) -> Result<Vec<f32>> {
        match &self.net {
            Net::Mlp(m) => m.logits(x, batch),
            Net::LeNet5(m) => m.logits(x, batch),
        }
    }

    /// The calibration of its activations.
    pub fn calibration(&self) -> &CalibrationReport {
        &self.calibration
    }

    /// Bytes stored.
    pub fn size(&self) -> QuantSize {
        match &self.net {
            Net::Mlp(m) => m.size(),
            Net::LeNet5(m) => m.size(),
        }
    }

    fn check(&self, data: &Dataset) -> Result<()> {
        if data.features() != self.inputs() || data.is_empty() || data.num_classes() > self.outputs() {
            return Err(LeptonError::Dataset {
                dataset: data.name().to_string(),
                reason: format!(
                    "has {} samples of {} features and {} classes; {} takes {} features and {} classes",
                    data.len(),
                    data.features(),
                    data.num_classes(),
                    self.model,
                    self.inputs(),
                    self.outputs()
                ),
            });
        }
        Ok(())
    }

    /// Predicted class of every sample of `data`, computed in integers.
    pub fn predict(&self, data: &Dataset) -> Result<Vec<usize>> {
        self.check(data)?;
        let mut out = Vec::with_capacity(data.len());
        for b in data.batches(EVAL_BATCH, None)? {
            out.extend(self.predict_batch(&b.x, b.len)?);
        }
        Ok(out)
    }

    /// Dequantized logits of every sample of `data`, row-major `(len, classes)`.
    pub fn logits(&self, data: &Dataset) -> Result<Vec<f32>> {
        self.check(data)?;
        let mut out = Vec::with_capacity(data.len() * self.outputs());
        for b in data.batches(EVAL_BATCH, None)? {
            out.extend(self.logits_batch(&b.x, b.len)?);
        }
        Ok(out)
    }

    /// Accuracy on `data` (fraction in [0, 1]).
    pub fn evaluate(&self, data: &Dataset) -> Result<f64> {
        let p = self.predict(data)?;
        let hit = p.iter().zip(data.labels()).filter(|(a, b)| **a == **b as usize).count();
        Ok(hit as f64 / data.len() as f64)
    }

    /// One-line summary.
    pub fn summary(&self) -> String {
        let s = self.size();
        let bits = s.layers.iter().find(|l| l.params > 0 && l.bits < 32).map(|l| l.bits).unwrap_or(8);
        let abits = s.layers.first().map(|l| l.bits).unwrap_or(8);
        format!("{} in integers: {bits}-bit weights, {abits}-bit activations, {} bytes (×{:.2} against f32), kernel {:?}", self.model, s.total(), s.ratio(), self.kernel())
    }

    /// HTML: summary and the calibration table.
    pub fn to_html(&self) -> String {
        format!("<div><b>{}</b>{}</div>", escape_html(&self.summary()), self.calibration.to_html())
    }

    /// Shows the model inline in the evcxr Jupyter kernel.
    pub fn evcxr_display(&self) {
        emit(&self.to_html(), &self.to_string());
    }

    /// A model from an integer MLP and its calibration (e.g. read back from a file); the
    /// calibration must describe the network (`check_calibration`).
    pub(crate) fn from_mlp_parts(model: String, mlp: QuantizedMlp, calibration: CalibrationReport) -> Result<QuantizedModel> {
        let mut names = vec!["input".to_string()];
        names.extend(mlp.names().iter().map(|n| format!("{n}.output")));
        let mut params: Vec<QParams> = mlp.input_params().into_iter().collect();
        params.extend(mlp.layers().iter().map(QuantizedLinear::output_params));
        check_calibration(&calibration, &names, &params)?;
        Ok(QuantizedModel { model, net: Net::Mlp(mlp), calibration })
    }

    /// A model from an integer LeNet-5 and its calibration (e.g. read back from a file); the
    /// calibration must describe the network (`check_calibration`).
    pub(crate) fn from_lenet5_parts(model: String, net: QuantizedLeNet5, calibration: CalibrationReport) -> Result<QuantizedModel> {
        let names: Vec<String> = ["input", "conv1.output", "conv2.output", "fc1.output", "fc2.output", "fc3.output"].iter().map(|n| n.to_string()).collect();
        check_calibration(&calibration, &names, &net.activation_params())?;
        Ok(QuantizedModel { model, net: Net::LeNet5(net), calibration })
    }
}

/// Checks that `calibration` describes the activations of a network, as
/// [`QuantizedModel::calibrate`] writes it: one row per activation (`names`, input first), each
/// with the bits, scale and zero point of that activation's parameters.
fn check_calibration(calibration: &CalibrationReport, names: &[String], params: &[QParams]) -> Result<()> {
    if calibration.activations.len() != names.len() || names.len() != params.len() {
        return Err(LeptonError::Shape { op: "calibration report", path: "activations".into(), expected: vec![names.len()], found: vec![calibration.activations.len()] });
    }
    for ((row, name), p) in calibration.activations.iter().zip(names).zip(params) {
        if &row.activation != name {
            return Err(LeptonError::config("calibration activation", &row.activation, format!("expected {name:?} (input first, then each layer's output)")));
        }
        if row.bits != p.bits || row.scale.to_bits() != p.scale.to_bits() || row.zero_point != p.zero_point {
            return Err(LeptonError::config(
                "calibration row",
                name,
                format!(
                    "bits {}, scale {:e}, zero point {} differ from the network's {}, {:e}, {}",
                    row.bits, row.scale, row.zero_point, p.bits, p.scale, p.zero_point
                ),
            ));
        }
    }
    Ok(())
}

impl std::fmt::Display for QuantizedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.summary())?;
        write!(f, "{}", self.calibration)
    }
}

/// The calibration table ([`CalibrationReport`]'s columns).
impl Tabular for QuantizedModel {
    fn to_table(&self) -> Result<Table> {
        self.calibration.to_table()
    }
}
