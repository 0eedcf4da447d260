//! Everything a notebook needs: `use lepton::prelude::*;`.
pub use crate::data::*;
pub use crate::error::{LeptonError, Result};
pub use crate::distill::{distill_runs, DistillConfig, Teacher};
pub use crate::nn::{Arch, Classifier, LeNet300, LeNet5, LeNet5Net, LeNet5Padded, Mlp, SmallMlp};
pub use crate::prune::*;
pub use crate::quant::*;
pub use crate::report::*;
pub use crate::train::*;
pub use crate::transfer::{few_shot, swap_head, transfer_layers, FewShotConfig, ParamGroups, Shots, SwapHead, TransferMethod};
