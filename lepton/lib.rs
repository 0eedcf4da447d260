//! # lepton
//!
//! Model-compression research notebooks in Rust, on dfdx 0.13.
//!
//! - [`data`]: IDX datasets (bundled Fashion-MNIST and MNIST-10k), seeded splits and batches.
//! - [`nn`]: stable-Rust convolution and pooling, typed LeNet models, parameter and size accounting,
//!   safetensors checkpoints.
//! - [`train`]: a resumable training [`train::Session`], `evaluate`, and the reports they return.
//! - [`report`]: histories and reports as Polars DataFrames (Parquet/CSV), SVG/PNG figures, and
//!   inline display in the evcxr Jupyter kernel.
//!
//! Notebooks start with `use lepton::prelude::*;`.
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod data;
pub mod error;
pub mod nn;
pub mod prune;
pub mod prelude;
pub mod report;
pub mod train;

pub use error::{LeptonError, Result};
