//! Saving and loading a [`QuantizedModel`] as a safetensors file: the integer tensors with
//! their quantization parameters, so a reloaded model predicts bit for bit what the saved one
//! did. Only standard dtypes (`I8`, `I32`, `F32`), so Python's `safetensors` reads the file.
//!
//! # Tensors
//!
//! Per layer `<name>` (`conv1`, `conv2`, `fc1`, `fc2`, `fc3` for a LeNet-5; the MLP's
//! [`super::QuantizedMlp::names`] otherwise), `O` its output channels:
//!
//! - `<name>.weight` — `I8`, `[O, I]` (a convolution: `[O, C, K, K]`), the weight codes;
//! - `<name>.bias` — `I32`, `[O]`, the bias codes (scale `S_in·S_w[c]`);
//! - `<name>.weight_scale` — `F32`, `[O]`, `S_w[c]`;
//! - `<name>.weight_qparams` — `I32`, `[O, 4]`, per channel `(zero_point, qmin, qmax, bits)`.
//!
//! The activations, input first then each layer's output (layer `i` reads activation `i` and
//! writes `i + 1`): `activations.scale` — `F32`, `[L + 1]`; `activations.qparams` — `I32`,
//! `[L + 1, 4]`, `(zero_point, qmin, qmax, bits)` as above.
//!
//! # Metadata (`__metadata__`)
//!
//! `format` = `lepton-quantized-model`, `format_version` = `1`, `kind` = `mlp` | `lenet5`,
//! `model` (the name), `kernel` = `Auto` | `Portable` | `Avx2`, `layers` (the count `L`) and
//! per layer `layer.<i>.name`, `layer.<i>.relu` (`true` / `false`). The calibration report:
//! `calibration.model`, `calibration.observer`, `calibration.batches`, `calibration.samples`,
//! `calibration.activations` (row count) and per row `calibration.<j>.<field>` for `activation`,
//! `bits`, `observed_min`, `observed_max`, `range_min`, `range_max`, `scale`, `zero_point`.
//! Integers are decimal; an `f32` is `0x` and the 8 lowercase hex digits of its bits
//! (`f32::to_bits`), so every value comes back exactly (`0x3f800000` is 1.0).
//!
//! Loading checks every name, dtype and shape, that no tensor is missing or extra, the
//! parameters (through [`QuantizedLinear::from_codes`] and [`QParams::validate`]), that the
//! layers chain, and that the calibration describes the activations; every problem with the
//! file's content is a [`LeptonError::Checkpoint`] naming it.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::str::FromStr;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::affine::QParams;
use super::conv::{QuantizedConv2d, QuantizedLeNet5};
use super::int8::QuantizedModel;
use super::kernel::Kernel;
use super::linear::QuantizedLinear;
use super::mlp::QuantizedMlp;
use super::report::{ActivationCalibration, CalibrationReport};
use crate::error::{LeptonError, Result};
use crate::nn::checkpoint::write_atomic;

/// Value of the `format` metadata key.
const FORMAT: &str = "lepton-quantized-model";
/// Value of the `format_version` metadata key.
const VERSION: &str = "1";
/// Layer names of a LeNet-5, in order.
const LENET5_LAYERS: [&str; 5] = ["conv1", "conv2", "fc1", "fc2", "fc3"];

/// An `f32` as `0x` + the hex digits of its bits.
fn f32_hex(v: f32) -> String {
    format!("0x{:08x}", v.to_bits())
}

/// `(zero_point, qmin, qmax, bits)`.
fn qparams_row(p: &QParams) -> [i32; 4] {
    [p.zero_point, p.qmin, p.qmax, i32::from(p.bits)]
}

fn i32_bytes(v: impl IntoIterator<Item = i32>) -> Vec<u8> {
    v.into_iter().flat_map(i32::to_le_bytes).collect()
}

fn f32_bytes(v: impl IntoIterator<Item = f32>) -> Vec<u8> {
    v.into_iter().flat_map(f32::to_le_bytes).collect()
}

/// Little-endian 4-byte words of `b` (a trailing partial word is dropped; safetensors has
/// already checked that the length is a whole number of elements).
fn words(b: &[u8]) -> impl Iterator<Item = [u8; 4]> + '_ {
    b.chunks_exact(4).filter_map(|c| <[u8; 4]>::try_from(c).ok())
}

/// Tensors and metadata of the file being written.
#[derive(Default)]
struct Writer {
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    meta: HashMap<String, String>,
}

impl Writer {
    fn meta(&mut self, key: impl Into<String>, value: impl ToString) {
        self.meta.insert(key.into(), value.to_string());
    }

    fn tensor(&mut self, name: String, dtype: Dtype, shape: Vec<usize>, bytes: Vec<u8>) {
        self.tensors.push((name, dtype, shape, bytes));
    }

    fn layer(&mut self, i: usize, name: &str, shape: Vec<usize>, l: &QuantizedLinear) {
        self.meta(format!("layer.{i}.name"), name);
        self.meta(format!("layer.{i}.relu"), l.relu());
        let o = l.outputs();
        self.tensor(format!("{name}.weight"), Dtype::I8, shape, l.weight().iter().map(|&w| w as u8).collect());
        self.tensor(format!("{name}.bias"), Dtype::I32, vec![o], i32_bytes(l.bias().iter().copied()));
        self.tensor(format!("{name}.weight_scale"), Dtype::F32, vec![o], f32_bytes(l.weight_params().iter().map(|p| p.scale)));
        self.tensor(format!("{name}.weight_qparams"), Dtype::I32, vec![o, 4], i32_bytes(l.weight_params().iter().flat_map(qparams_row)));
    }

    fn calibration(&mut self, c: &CalibrationReport) {
        self.meta("calibration.model", &c.model);
        self.meta("calibration.observer", &c.observer);
        self.meta("calibration.batches", c.batches);
        self.meta("calibration.samples", c.samples);
        self.meta("calibration.activations", c.activations.len());
        for (j, a) in c.activations.iter().enumerate() {
            let key = |field: &str| format!("calibration.{j}.{field}");
            self.meta(key("activation"), &a.activation);
            self.meta(key("bits"), a.bits);
            self.meta(key("observed_min"), f32_hex(a.observed_min));
            self.meta(key("observed_max"), f32_hex(a.observed_max));
            self.meta(key("range_min"), f32_hex(a.range_min));
            self.meta(key("range_max"), f32_hex(a.range_max));
            self.meta(key("scale"), f32_hex(a.scale));
            self.meta(key("zero_point"), a.zero_point);
        }
    }

    fn serialize(self) -> Result<Vec<u8>> {
        let err = |reason: String| LeptonError::Checkpoint { path: "<memory>".into(), reason };
        let mut views = Vec::with_capacity(self.tensors.len());
        for (name, dtype, shape, bytes) in &self.tensors {
            let view = TensorView::new(*dtype, shape.clone(), bytes).map_err(|e| err(format!("tensor {name:?}: {e:?}")))?;
            views.push((name.clone(), view));
        }
        safetensors::tensor::serialize(views, &Some(self.meta)).map_err(|e| err(format!("{e:?}")))
    }
}

/// The file being read: every lookup names what is wrong with it.
struct Reader<'a> {
    path: &'a Path,
    file: SafeTensors<'a>,
    meta: HashMap<String, String>,
    used: BTreeSet<String>,
}

impl Reader<'_> {
    fn err(&self, reason: impl Into<String>) -> LeptonError {
        LeptonError::Checkpoint { path: self.path.to_path_buf(), reason: reason.into() }
    }

    fn meta(&self, key: &str) -> Result<&str> {
        self.meta.get(key).map(String::as_str).ok_or_else(|| self.err(format!("metadata key {key:?} is missing")))
    }

    fn parse<T: FromStr>(&self, key: &str, what: &str) -> Result<T> {
        let v = self.meta(key)?;
        v.parse().map_err(|_| self.err(format!("metadata {key:?} = {v:?} is not {what}")))
    }

    fn bool(&self, key: &str) -> Result<bool> {
        self.parse(key, "true or false")
    }

    fn f32(&self, key: &str) -> Result<f32> {
        let v = self.meta(key)?;
        v.strip_prefix("0x")
            .filter(|h| h.len() == 8)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .map(f32::from_bits)
            .ok_or_else(|| self.err(format!("metadata {key:?} = {v:?} is not an f32 as 0x and 8 hex digits of its bits")))
    }

    /// The shape and bytes of tensor `name`, which must have `dtype`.
    fn read(&mut self, name: &str, dtype: Dtype) -> Result<(Vec<usize>, Vec<u8>)> {
        let view = self.file.tensor(name).map_err(|_| self.err(format!("tensor {name:?} is missing")))?;
        if view.dtype() != dtype {
            return Err(self.err(format!("tensor {name:?} has dtype {:?}, expected {dtype:?}", view.dtype())));
        }
        let out = (view.shape().to_vec(), view.data().to_vec());
        self.used.insert(name.to_string());
        Ok(out)
    }

    /// The bytes of tensor `name`, which must have `dtype` and `shape`.
    fn read_shaped(&mut self, name: &str, dtype: Dtype, shape: &[usize]) -> Result<Vec<u8>> {
        let (found, bytes) = self.read(name, dtype)?;
        if found != shape {
            return Err(self.err(format!("tensor {name:?} has shape {found:?}, expected {shape:?}")));
        }
        Ok(bytes)
    }

    fn i32s(&mut self, name: &str, shape: &[usize]) -> Result<Vec<i32>> {
        Ok(words(&self.read_shaped(name, Dtype::I32, shape)?).map(i32::from_le_bytes).collect())
    }

    fn f32s(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        Ok(words(&self.read_shaped(name, Dtype::F32, shape)?).map(f32::from_le_bytes).collect())
    }

    /// Parameters from `scales` and their `(zero_point, qmin, qmax, bits)` rows.
    fn qparams(&self, what: &str, scales: &[f32], rows: &[i32]) -> Result<Vec<QParams>> {
        scales
            .iter()
            .zip(rows.chunks_exact(4))
            .map(|(&scale, row)| {
                let &[zero_point, qmin, qmax, bits] = row else { return Err(self.err(format!("{what}: a parameter row is not 4 values"))) };
                let bits = u8::try_from(bits).map_err(|_| self.err(format!("{what}: bits {bits} is out of range")))?;
                Ok(QParams { scale, zero_point, qmin, qmax, bits })
            })
            .collect()
    }

    /// The `n` activation parameters, each validated.
    fn activations(&mut self, n: usize) -> Result<Vec<QParams>> {
        let scales = self.f32s("activations.scale", &[n])?;
        let rows = self.i32s("activations.qparams", &[n, 4])?;
        let params = self.qparams("activations.qparams", &scales, &rows)?;
        for (i, p) in params.iter().enumerate() {
            p.validate("activation params").map_err(|e| self.err(format!("activation {i}: {e}")))?;
        }
        Ok(params)
    }

    /// Layer `name`: its weight has `rank` 2 (`[O, I]`) or 4 (`[O, C, K, K]`, returned as
    /// `Some((C, K))`).
    fn layer(&mut self, name: &str, rank: usize, input: QParams, output: QParams, relu: bool) -> Result<(QuantizedLinear, Option<(usize, usize)>)> {
        let wname = format!("{name}.weight");
        let (shape, codes) = self.read(&wname, Dtype::I8)?;
        let (outputs, inputs, conv) = match (rank, shape.as_slice()) {
            (2, &[o, i]) => (o, i, None),
            (4, &[o, c, k, k2]) if k == k2 => {
                let inputs = k.checked_mul(k).and_then(|kk| kk.checked_mul(c)).ok_or_else(|| self.err(format!("tensor {wname:?} has shape {shape:?}: too large")))?;
                (o, inputs, Some((c, k)))
            }
            _ => {
                let want = if rank == 4 { "[outputs, channels, k, k]" } else { "[outputs, inputs]" };
                return Err(self.err(format!("tensor {wname:?} has shape {shape:?}, expected {want}")));
            }
        };
        let weight: Vec<i8> = codes.iter().map(|&b| b as i8).collect();
        let bias = self.i32s(&format!("{name}.bias"), &[outputs])?;
        let scales = self.f32s(&format!("{name}.weight_scale"), &[outputs])?;
        let rows = self.i32s(&format!("{name}.weight_qparams"), &[outputs, 4])?;
        let weight_params = self.qparams(&format!("{name}.weight_qparams"), &scales, &rows)?;
        for p in &weight_params {
            p.validate("weight params").map_err(|e| self.err(format!("layer {name}: {e}")))?;
        }
        let layer = QuantizedLinear::from_codes(inputs, outputs, weight, weight_params, bias, input, output, relu).map_err(|e| self.err(format!("layer {name}: {e}")))?;
        Ok((layer, conv))
    }

    fn calibration(&self) -> Result<CalibrationReport> {
        let n: usize = self.parse("calibration.activations", "a count")?;
        let mut activations = Vec::new();
        for j in 0..n {
            let key = |field: &str| format!("calibration.{j}.{field}");
            activations.push(ActivationCalibration {
                activation: self.meta(&key("activation"))?.to_string(),
                bits: self.parse(&key("bits"), "a bit width")?,
                observed_min: self.f32(&key("observed_min"))?,
                observed_max: self.f32(&key("observed_max"))?,
                range_min: self.f32(&key("range_min"))?,
                range_max: self.f32(&key("range_max"))?,
                scale: self.f32(&key("scale"))?,
                zero_point: self.parse(&key("zero_point"), "an integer")?,
            });
        }
        Ok(CalibrationReport {
            model: self.meta("calibration.model")?.to_string(),
            observer: self.meta("calibration.observer")?.to_string(),
            batches: self.parse("calibration.batches", "a count")?,
            samples: self.parse("calibration.samples", "a count")?,
            activations,
        })
    }

    fn kernel(&self) -> Result<Kernel> {
        match self.meta("kernel")? {
            "Auto" => Ok(Kernel::Auto),
            "Portable" => Ok(Kernel::Portable),
            "Avx2" => Ok(Kernel::Avx2),
            other => Err(self.err(format!("unknown kernel {other:?} (expected \"Auto\", \"Portable\" or \"Avx2\")"))),
        }
    }

    /// Errors on tensors the model did not read.
    fn check_all_used(&self) -> Result<()> {
        let mut extra: Vec<&String> = self.file.names().into_iter().filter(|n| !self.used.contains(*n)).collect();
        extra.sort();
        if !extra.is_empty() {
            return Err(self.err(format!("file has tensors a quantized model does not: {extra:?}")));
        }
        Ok(())
    }
}

impl QuantizedModel {
    /// Saves the model to `path` as safetensors (atomically: a temporary file, then a rename):
    /// integer weights and biases, every quantization parameter, and the calibration report.
    /// [`QuantizedModel::load`] gives back an equal model. The format is described in
    /// `lepton/quant/io.rs` and in `docs/DESIGN.md`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut w = Writer::default();
        w.meta("format", FORMAT);
        w.meta("format_version", VERSION);
        w.meta("model", self.name());
        w.meta("kernel", format!("{:?}", self.kernel()));
        let mut acts: Vec<QParams> = Vec::new();
        if let Some(m) = self.mlp() {
            w.meta("kind", "mlp");
            w.meta("layers", m.layers().len());
            acts.extend(m.input_params());
            for (i, (l, name)) in m.layers().iter().zip(m.names()).enumerate() {
                w.layer(i, name, vec![l.outputs(), l.inputs()], l);
                acts.push(l.output_params());
            }
        } else if let Some(m) = self.lenet5() {
            w.meta("kind", "lenet5");
            w.meta("layers", LENET5_LAYERS.len());
            acts = m.activation_params();
            let [c1, c2] = m.convs();
            let convs = [c1, c2].map(|c| (vec![c.out_channels(), c.in_channels(), c.kernel_size(), c.kernel_size()], c.linear()));
            let fcs = m.fcs().iter().map(|l| (vec![l.outputs(), l.inputs()], l));
            for (i, (name, (shape, l))) in LENET5_LAYERS.into_iter().zip(convs.into_iter().chain(fcs)).enumerate() {
                w.layer(i, name, shape, l);
            }
        }
        let n = acts.len();
        w.tensor("activations.scale".into(), Dtype::F32, vec![n], f32_bytes(acts.iter().map(|p| p.scale)));
        w.tensor("activations.qparams".into(), Dtype::I32, vec![n, 4], i32_bytes(acts.iter().flat_map(qparams_row)));
        w.calibration(self.calibration());
        let bytes = w.serialize()?;
        write_atomic(path.as_ref(), &bytes)
    }

    /// Loads a model saved by [`QuantizedModel::save`]. Errors: [`LeptonError::Io`] if the file
    /// cannot be read; [`LeptonError::Checkpoint`] naming the problem if it is not a
    /// safetensors file, not a quantized model (e.g. a float checkpoint), or has a missing,
    /// extra, mistyped or misshapen tensor, bad metadata, invalid parameters, layers that do not
    /// chain, or a calibration report that does not describe the network.
    pub fn load(path: impl AsRef<Path>) -> Result<QuantizedModel> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| LeptonError::io("read", path, e))?;
        let err = |reason: String| LeptonError::Checkpoint { path: path.to_path_buf(), reason };
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| err(format!("not a safetensors file ({e:?}); truncated or corrupt?")))?;
        let file = SafeTensors::deserialize(&bytes).map_err(|e| err(format!("not a safetensors file ({e:?}); truncated or corrupt?")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let mut r = Reader { path, file, meta, used: BTreeSet::new() };
        match r.meta.get("format").map(String::as_str) {
            Some(FORMAT) => {}
            Some(other) => return Err(r.err(format!("format {other:?} is not {FORMAT:?}"))),
            None => {
                return Err(r.err(format!(
                    "not a quantized model: no \"format\" = {FORMAT:?} in the metadata (a float checkpoint loads with Session::load or load_safetensors)"
                )))
            }
        }
        let version = r.meta("format_version")?;
        if version != VERSION {
            return Err(r.err(format!("format version {version:?} is not supported (this lepton reads version {VERSION})")));
        }
        let kind = r.meta("kind")?.to_string();
        let rank_of = |i: usize| if kind == "lenet5" && i < 2 { 4 } else { 2 };
        let n: usize = r.parse("layers", "a count")?;
        match kind.as_str() {
            "mlp" if n == 0 => return Err(r.err("an MLP needs at least one layer (\"layers\" = 0)")),
            "mlp" => {}
            "lenet5" if n != LENET5_LAYERS.len() => return Err(r.err(format!("a LeNet-5 has 5 layers, metadata \"layers\" = {n}"))),
            "lenet5" => {}
            other => return Err(r.err(format!("unknown model kind {other:?} (expected \"mlp\" or \"lenet5\")"))),
        }
        let model = r.meta("model")?.to_string();
        let kernel = r.kernel()?;
        let mut names = Vec::new();
        let mut relus = Vec::new();
        for i in 0..n {
            let name = r.meta(&format!("layer.{i}.name"))?.to_string();
            if kind == "lenet5" && LENET5_LAYERS.get(i) != Some(&name.as_str()) {
                return Err(r.err(format!("LeNet-5 layer {i} is named {name:?}, expected {:?}", LENET5_LAYERS.get(i).unwrap_or(&""))));
            }
            names.push(name);
            relus.push(r.bool(&format!("layer.{i}.relu"))?);
        }
        let acts = r.activations(n.checked_add(1).ok_or_else(|| r.err("too many layers"))?)?;
        let mut layers = Vec::new();
        for (i, ((name, &relu), io)) in names.iter().zip(&relus).zip(acts.windows(2)).enumerate() {
            let &[input, output] = io else { continue };
            layers.push(r.layer(name, rank_of(i), input, output, relu)?);
        }
        let calibration = r.calibration()?;
        r.check_all_used()?;
        let model = if kind == "mlp" {
            let mlp = QuantizedMlp::from_parts(layers.into_iter().map(|l| l.0).collect(), names, kernel).map_err(|e| r.err(e.to_string()))?;
            QuantizedModel::from_mlp_parts(model, mlp, calibration)
        } else {
            let mut it = layers.into_iter();
            let mut conv = |name: &str| -> Result<QuantizedConv2d> {
                match it.next() {
                    Some((linear, Some((c, k)))) => QuantizedConv2d::from_linear(linear, c, k).map_err(|e| r.err(format!("layer {name}: {e}"))),
                    _ => Err(r.err(format!("layer {name} is not a convolution"))),
                }
            };
            let (conv1, conv2) = (conv("conv1")?, conv("conv2")?);
            let fc: Vec<QuantizedLinear> = it.map(|l| l.0).collect();
            let net = QuantizedLeNet5::from_parts(conv1, conv2, fc, kernel).map_err(|e| r.err(e.to_string()))?;
            QuantizedModel::from_lenet5_parts(model, net, calibration)
        };
        model.map_err(|e| r.err(e.to_string()))
    }
}
