//! Pruning: masks kept beside a model and re-applied after every optimiser step, unstructured
//! magnitude pruning (per layer, Han et al.'s quality × std threshold, global), gradual pruning
//! (Zhu & Gupta 2017), N:M sparsity, a sensitivity scan, structured pruning into smaller typed
//! networks, sparse storage (CSR, relative indices) and a CSR inference path.
//!
//! Everything works on the model's tensors by path (`fc1.weight`, `conv2.weight`, …) through
//! one visitor, so no code is specific to an architecture. In a notebook the
//! [`crate::train::Session`] methods [`prune`](crate::train::Session::prune),
//! [`set_gradual_pruning`](crate::train::Session::set_gradual_pruning) and
//! [`sparsity`](crate::train::Session::sparsity) are the entry points.

mod mask;
mod report;
mod schedule;
mod sensitivity;
mod sparse;
mod structured;

pub use mask::{apply_to_values, check_sparsity, prunable_paths, Mask, MaskSet, PruneMethod, TensorValues};
pub use report::{weight_histograms, LayerSparsity, SparsityReport};
pub use schedule::GradualPruning;
pub use sensitivity::{sensitivity_scan, SensitivityRow, SensitivityScan};
pub use sparse::{sparse_bytes, CsrMatrix, SparseBytes, SparseMlp};
pub use structured::{model_from_tensors, rank_units, shrink_chain, ChainLayer, Norm, Shrink};
