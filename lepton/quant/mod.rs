//! Quantization: affine (uniform) quantization with per-tensor and per-channel parameters,
//! calibration observers for activations, an integer-only quantized Linear and MLP with
//! fixed-point requantization, k-means weight sharing, and size accounting.
//!
//! # Affine quantization (Jacob et al. 2018)
//!
//! A real value `r` is represented by an integer `q` through `r = S·(q − Z)`, with a positive
//! real *scale* `S` and an integer *zero point* `Z` such that the real 0 is exactly
//! representable. With `b` bits ([`MIN_BITS`]..=[`MAX_BITS`]):
//!
//! - **symmetric** (weights): `Z = 0`, `q ∈ [−(2^(b−1)−1), 2^(b−1)−1]` (the most negative code
//!   is not used, so the range is symmetric), `S = max|r| / (2^(b−1)−1)`;
//! - **asymmetric** (activations): `q ∈ [0, 2^b−1]`, `S = (max − min) / (2^b−1)`,
//!   `Z = round(−min / S)`, the range first widened to contain 0.
//!
//! Per-channel parameters (axis 0, one per output channel / row of a weight) are
//! [`Granularity::PerChannel`]. [`QuantizedTensor`] holds the codes and parameters;
//! [`QuantError`] measures what quantization did (MSE, max abs error, SQNR in dB).
//!
//! # Calibration
//!
//! Activations need ranges seen on data: [`MinMaxObserver`], [`MovingAverageObserver`],
//! [`PercentileObserver`] and [`MseObserver`] all implement [`Observer`] (`observe` many
//! batches, then `params(bits, symmetric)`); [`ObserverKind`] names one for a configuration.
//!
//! # Integer inference
//!
//! [`QuantizedLinear`] computes `u8` activations × `i8` weights → `i32` accumulators, adds an
//! `i32` bias of scale `S_in·S_w[c]`, and requantizes to `u8` with a [`FixedMultiplier`]
//! (`M = S_in·S_w/S_out` as an `i32` in `[2^30, 2^31)` and a shift, applied with gemmlowp's
//! [`saturating_rounding_doubling_high_mul`] and [`rounding_divide_by_pot`]). The dot products
//! run in an AVX2 kernel when the CPU has it, else in a portable one ([`Kernel`]); both give
//! the same bits. [`QuantizedMlp`] chains such layers for a trained [`crate::nn::Mlp`].
//!
//! # Weight sharing (Han et al. 2016)
//!
//! [`SharedWeights`] clusters a tensor's non-zero weights into `2^b` centroids (linear
//! initialisation, Lloyd iterations), keeps pruned zeros exactly zero, and fine-tunes the
//! centroids with summed gradients.
//!
//! # Size
//!
//! [`QuantSize`] counts the bytes of quantized tensors with their scales, zero points and
//! codebooks, one [`LayerBytes`] row per tensor.
//!
//! # Whole models
//!
//! By tensor path, for any model: [`quantize_tensors`] / [`quantize_model_weights`] (weight-only
//! fake quantization, a [`QuantReport`] row per weight), [`SharedModel`] (k-means sharing of
//! every weight, with centroid fine-tuning during training), [`QatState`] (quantization-aware
//! training of weights and activations with a clipped straight-through estimator, set up by
//! [`QatConfig`]; activations are fake-quantized through the models' activation hooks,
//! [`crate::nn::hook`]) and [`QuantizedModel`] (static PTQ of an MLP or a LeNet-5 calibrated on
//! a dataset, or the integer network of a QAT run, [`QuantizedModel::from_qat`], with its
//! [`CalibrationReport`]; LeNet-5's convolutions run as [`QuantizedConv2d`]: im2col of `u8`
//! codes, the integer kernel, requantization; max pooling on codes). A
//! [`crate::train::Session`] exposes them without generics (`quantize_weights`,
//! `share_weights`, `set_qat`, `qat_int8`, `quantize_int8`). [`QuantizedModel::save`] and
//! [`QuantizedModel::load`] keep an integer model in a safetensors file (`I8` weights, `I32`
//! biases, `F32` scales, parameters and the calibration report in the header), so it reloads
//! with identical predictions.

mod affine;
mod conv;
mod fixed_point;
mod int8;
mod io;
mod kernel;
mod kmeans;
mod linear;
mod mlp;
pub(crate) mod model;
mod observer;
mod qat;
mod report;
mod size;

pub use affine::{check_bits, Granularity, QParams, QScheme, QuantError, QuantizedTensor, MAX_BITS, MIN_BITS};
pub use fixed_point::{rounding_divide_by_pot, saturating_rounding_doubling_high_mul, FixedMultiplier};
pub use kernel::{avx2_available, dot_u8_i8, matmul_u8_i8, Kernel};
pub use kmeans::{KMeansConfig, SharedWeights};
pub use linear::QuantizedLinear;
pub use mlp::{Calibration, QuantConfig, QuantizedMlp};
pub use observer::{MinMaxObserver, MovingAverageObserver, MseObserver, ObserverKind, Observer, Percentile, PercentileObserver};
pub use size::{LayerBytes, QuantSize};
pub use conv::{im2col, max_pool2, QuantizedConv2d, QuantizedLeNet5};
pub use int8::QuantizedModel;
pub use model::{is_quantized_weight, quantize_model_weights, quantize_tensors, write_tensors, SharedModel};
pub(crate) use model::TrainingQuant;
pub(crate) use qat::{conflict, ActivationFakeQuant};
pub use qat::{ActivationRange, QatConfig, QatState, ACTIVATION_AVERAGING};
pub use report::{ActivationCalibration, CalibrationReport, QuantLayer, QuantMethod, QuantReport};
