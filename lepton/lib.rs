//! # lepton
//!
//! Model-compression research notebooks in Rust, on dfdx 0.13.
//!
//! - [`data`]: IDX datasets (bundled Fashion-MNIST and MNIST-10k), seeded splits and batches.
//! - [`nn`]: stable-Rust convolution and pooling, typed LeNet models, parameter and size accounting,
//!   safetensors checkpoints.
//! - [`train`]: a resumable training [`train::Session`], `evaluate`, and the reports they return.
//! - [`quant`]: affine quantization (per tensor / per channel), calibration observers, an
//!   integer-only quantized Linear/MLP (AVX2 or portable kernel, fixed-point requantization),
//!   k-means weight sharing and size accounting.
//! - [`transfer`]: typed head swap, freezing and per-group learning rates, few-shot experiments.
//! - [`distill`]: knowledge distillation (Hinton et al. 2015) from any model to any model.
//! - [`report`]: histories and reports as typed tables, SVG/PNG figures, and inline display in
//!   the evcxr Jupyter kernel.
//!
//! Polars lives in a second crate, `lepton-polars` (`lepton-polars/`): every lepton table as a
//! Polars DataFrame, written to Parquet and CSV, and read back. A notebook loads it with its own
//! `:dep` where it exports results, so that `:dep lepton` stays short (docs/DESIGN.md,
//! "Notebook start-up").
//!
//! Notebooks start with `use lepton::prelude::*;`.
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod data;
pub mod distill;
pub mod error;
pub mod nn;
pub mod prune;
pub mod prelude;
pub mod quant;
pub mod report;
pub mod train;
pub mod transfer;

pub use error::{LeptonError, Result};
