//! Quantization of a [`Session`]'s model, without generics: weight-only fake quantization,
//! k-means weight sharing with centroid fine-tuning, quantization-aware training, and static
//! post-training quantization to an integer network (MLPs).
//!
//! ```no_run
//! use lepton::prelude::*;
//! # fn main() -> lepton::Result<()> {
//! let train = fashion_mnist(Split::Train)?;
//! let test = fashion_mnist(Split::Test)?;
//! let mut s = Session::new(Arch::LeNet300, train.clone(), None, TrainConfig::default())?;
//! s.fit(2)?;
//! let int8 = s.quantize_int8(&QuantConfig::default(), &train, 4)?;   // 4 calibration batches
//! println!("{:.4}", int8.evaluate(&test)?);
//! s.set_qat(QatConfig::bits(4))?;                                 // QAT: 4-bit weights
//! s.fit(1)?;
//! let report = s.finish_qat()?;                                   // bake the codes in
//! # Ok(()) }
//! ```

use super::session::Session;
use crate::data::Dataset;
use crate::error::{LeptonError, Result};
use crate::quant::{conflict, quantize_tensors, KMeansConfig, Kernel, QScheme, QatConfig, QatState, QuantConfig, QuantReport, QuantizedModel, SharedModel};

impl Session {
    /// Replaces every weight (tensors with 2 or more dimensions; biases untouched) by its
    /// fake-quantized values with `scheme` (min-max parameters, per tensor or per channel) and
    /// returns one report row per weight. Pruned weights stay 0. Drops k-means codebooks (the
    /// weights left them). On error (bad bits, a non-finite weight) the model is unchanged.
    pub fn quantize_weights(&mut self, scheme: &QScheme) -> Result<QuantReport> {
        let (tensors, report) = quantize_tensors(&self.arch_name(), &self.tensors(), scheme)?;
        self.write_tensors(&tensors)?;
        self.quant_state_mut().shared = None;
        Ok(report)
    }

    /// k-means weight sharing of every weight (Han et al. 2016): `2^bits` shared values per
    /// tensor, pruned zeros kept exactly 0. The codebooks are kept: the following `fit` calls
    /// fine-tune the centroids (each moves by `−learning_rate ×` the summed gradient of its
    /// cluster after every step) and keep every weight on its centroid. Errors if QAT is on.
    pub fn share_weights(&mut self, config: &KMeansConfig) -> Result<QuantReport> {
        if self.quant_state().qat.is_some() {
            return Err(conflict("share_weights", "QAT"));
        }
        let (shared, tensors, report) = SharedModel::fit(&self.arch_name(), &self.tensors(), config)?;
        self.write_tensors(&tensors)?;
        self.quant_state_mut().shared = Some(shared);
        Ok(report)
    }

    /// The k-means codebooks, if the weights are shared.
    pub fn shared_weights(&self) -> Option<&SharedModel> {
        self.quant_state().shared.as_ref()
    }

    /// Drops the codebooks: training updates the weights freely again.
    pub fn clear_shared_weights(&mut self) {
        self.quant_state_mut().shared = None;
    }

    /// Quantization-aware training from now on (see [`crate::quant::QatState`]): `fit` runs
    /// forward and backward through fake-quantized weights (and, with `activation_bits`,
    /// activations) and updates the float weights (straight-through estimator); `evaluate` and
    /// `predict` use the fake-quantized weights and activations.
    /// Replaces an earlier QAT (its step count restarts). Errors on bad bits, or if the
    /// weights are shared by k-means.
    pub fn set_qat(&mut self, config: QatConfig) -> Result<()> {
        if self.quant_state().shared.is_some() {
            return Err(conflict("set_qat", "k-means weight sharing"));
        }
        let state = QatState::new(config)?;
        self.quant_state_mut().qat = Some(state);
        Ok(())
    }

    /// The QAT state, if QAT is on.
    pub fn qat(&self) -> Option<&QatState> {
        self.quant_state().qat.as_ref()
    }

    /// Turns QAT off: the float weights are trained and evaluated again.
    pub fn clear_qat(&mut self) {
        self.quant_state_mut().qat = None;
    }

    /// Ends QAT: writes the fake-quantized weights, exactly as QAT computes them now (frozen
    /// parameters if frozen), into the model, turns QAT off and returns the report. With
    /// weights-only QAT the predictions do not change; with activation bits the activations are
    /// float again (for the integer network with QAT's activation ranges, call
    /// [`Session::qat_int8`] before). Errors if QAT is off.
    pub fn finish_qat(&mut self) -> Result<QuantReport> {
        let Some(qat) = self.qat().cloned() else {
            return Err(LeptonError::config("finish_qat", "QAT off", "QAT is not on; call set_qat first"));
        };
        let (tensors, report) = qat.quantize_tensors(&self.arch_name(), &self.tensors())?;
        self.write_tensors(&tensors)?;
        self.clear_qat();
        Ok(report)
    }

    /// The integer network of the QAT run (see [`QuantizedModel::from_qat`]): weights with
    /// QAT's codes, activations with QAT's ranges, `kernel` for the products. QAT stays on.
    /// Errors if QAT is off or weights-only, before the first QAT step, or for an architecture
    /// without an integer network.
    pub fn qat_int8(&self, kernel: Kernel) -> Result<QuantizedModel> {
        let Some(qat) = self.qat() else {
            return Err(LeptonError::config("qat_int8", "QAT off", "QAT is not on; call set_qat and fit first"));
        };
        QuantizedModel::from_qat(&self.arch_name(), &self.tensors(), qat, kernel)
    }

    /// Static post-training quantization for integer inference: the model as a
    /// [`crate::quant::QuantizedMlp`] (MLPs) or a [`crate::quant::QuantizedLeNet5`] (LeNet-5,
    /// any widths), with `config`'s bits, observer and kernel, activations calibrated on the
    /// first `batches` batches (of the session's batch size) of `calib`. Uses the current
    /// weights (with QAT on, the float ones: call `finish_qat` first). Errors on zero batches,
    /// bad bits, non-finite weights or a dataset that does not fit.
    pub fn quantize_int8(&self, config: &QuantConfig, calib: &Dataset, batches: usize) -> Result<QuantizedModel> {
        QuantizedModel::calibrate(&self.arch_name(), &self.tensors(), config, calib, self.config().batch_size, batches)
    }
}
