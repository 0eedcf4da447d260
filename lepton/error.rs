//! One error type for the whole library.
//!
//! Every fallible public function returns [`Result<T>`]; a notebook cell uses `?` and the
//! user's variables survive. Variants name the operation, the file or tensor path, and the
//! shapes or values involved, so the message alone says what to fix.

use std::path::PathBuf;

/// What went wrong in an IDX file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdxProblem {
    #[error("wrong magic number 0x{found:08x} (expected 0x{expected:08x}: {what})")]
    BadMagic { found: u32, expected: u32, what: &'static str },
    #[error("header is truncated: need {expected} bytes, file has {found}")]
    ShortHeader { expected: usize, found: usize },
    #[error("file is truncated: header says {expected} bytes of data, found {found}")]
    Truncated { expected: usize, found: usize },
    #[error("{extra} bytes after the last record")]
    TrailingBytes { extra: usize },
    #[error("image count {images} does not match label count {labels}")]
    CountMismatch { images: usize, labels: usize },
    #[error("label {label} at record {index} is out of range 0..{num_classes}")]
    LabelOutOfRange { index: usize, label: u8, num_classes: usize },
    #[error("images are {rows}x{cols}, expected {expected_rows}x{expected_cols}")]
    WrongDims { rows: usize, cols: usize, expected_rows: usize, expected_cols: usize },
    #[error("{count} empty records (first at index {first})")]
    EmptyRecords { count: usize, first: usize },
    #[error("file holds no records")]
    NoRecords,
    #[error("images are {rows}x{cols}: a dimension is zero")]
    ZeroDims { rows: usize, cols: usize },
    #[error("gzip stream is corrupt: {0}")]
    Gzip(String),
}

/// The library's error type.
#[derive(Debug, thiserror::Error)]
pub enum LeptonError {
    /// Reading or writing a file failed.
    #[error("{op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, #[source] source: std::io::Error },

    /// An IDX dataset file is malformed.
    #[error("IDX file {path}: {problem}")]
    Idx { path: PathBuf, problem: IdxProblem },

    /// A dataset operation got arguments it cannot honour (empty split, bad fraction, ...).
    #[error("dataset {dataset}: {reason}")]
    Dataset { dataset: String, reason: String },

    /// A configuration value is out of range.
    #[error("invalid setting {field} = {value}: {reason}")]
    Config { field: &'static str, value: String, reason: String },

    /// Tensor shapes do not fit the operation.
    #[error("{op}: tensor {path:?} expected shape {expected:?}, found {found:?}")]
    Shape { op: &'static str, path: String, expected: Vec<usize>, found: Vec<usize> },

    /// Training produced a non-finite loss; the model keeps the weights of the last good step.
    #[error("non-finite loss {loss} at epoch {epoch}, step {step}: weights restored to the last finite step")]
    NonFiniteLoss { epoch: usize, step: usize, loss: f32 },

    /// A checkpoint could not be written or read back.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },

    /// A device (CPU allocator or CUDA) failed.
    #[error("device error in {op}: {reason}")]
    Device { op: &'static str, reason: String },

    /// A report or table could not be built or written.
    #[error("table {what}: {reason}")]
    Table { what: String, reason: String },

    /// A figure could not be drawn or saved.
    #[error("plot {what}: {reason}")]
    Plot { what: String, reason: String },
}

/// Short alias used across the crate.
pub type Result<T, E = LeptonError> = std::result::Result<T, E>;

impl LeptonError {
    /// An [`LeptonError::Io`] for `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LeptonError::Io { op, path: path.into(), source }
    }

    /// A [`LeptonError::Config`] for a setting.
    pub fn config(field: &'static str, value: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        LeptonError::Config { field, value: value.to_string(), reason: reason.into() }
    }

    /// A [`LeptonError::Device`] from any device error.
    pub fn device(op: &'static str, err: impl std::fmt::Display) -> Self {
        LeptonError::Device { op, reason: err.to_string() }
    }

    /// A [`LeptonError::Table`]: a malformed table or column, or a Polars / file-format error.
    pub fn table(what: impl Into<String>, err: impl std::fmt::Display) -> Self {
        LeptonError::Table { what: what.into(), reason: err.to_string() }
    }

    /// A [`LeptonError::Plot`] from a plotters error.
    pub fn plot(what: impl Into<String>, err: impl std::fmt::Display) -> Self {
        LeptonError::Plot { what: what.into(), reason: err.to_string() }
    }
}
