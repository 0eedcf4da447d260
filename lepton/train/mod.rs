//! Training, cell by cell: [`TrainConfig`], a resumable [`Session`], and [`evaluate`].

mod config;
mod evaluate;
mod quant_session;
mod session;

pub use config::{Optimizer, TrainConfig};
pub use evaluate::{evaluate, predict_logits};
pub use session::{Session, TypedSession};
