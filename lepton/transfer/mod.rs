//! Transfer learning: reuse a trained backbone on a new task.
//!
//! - **Head swap** ([`SwapHead`], [`swap_head`]): the same backbone with a final layer for a
//!   different number of classes, as a new *type*; backbone tensors are copied bit for bit.
//!   Non-generic: [`crate::train::Session::transfer`] and [`crate::train::Session::with_classes`].
//!   [`transfer_layers`] / [`crate::train::Session::transfer_layers`] keep only some layers (e.g.
//!   the convolutions) and draw the rest afresh.
//! - **Freezing and per-group learning rates** ([`ParamGroups`]): by tensor path or layer
//!   prefix; a frozen tensor is bit-identical after training
//!   ([`crate::train::Session::freeze`], [`crate::train::Session::set_lr_scale`]).
//! - **Few-shot experiments**: [`crate::data::Dataset::per_class_sample`] draws `k` labelled
//!   examples per class with a seed, [`few_shot`] runs scratch / frozen / fine-tuned training
//!   over several `k` and seeds into a [`crate::report::RunTable`] (mean ± std, plots).

mod fewshot;
mod groups;
mod head;

pub use fewshot::{few_shot, FewShotConfig, TransferMethod, Shots};
pub use groups::ParamGroups;
pub use head::{swap_head, transfer_layers, under_prefix, SwapHead, HEAD};
