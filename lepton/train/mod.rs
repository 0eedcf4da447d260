//! Training, cell by cell: [`TrainConfig`], a resumable [`Session`], and [`evaluate`].

mod config;
mod evaluate;
mod quant_session;
mod selfcheck;
mod session;
mod snapshot;

pub use config::{Optimizer, TrainConfig};
pub use evaluate::{evaluate, evaluate_hooked, predict_logits, predict_logits_hooked};
pub use selfcheck::gradient_accumulation_check;
pub use session::{Session, TypedSession};
