//! Everything a notebook needs: `use lepton::prelude::*;`.
pub use crate::data::*;
pub use crate::error::{LeptonError, Result};
pub use crate::nn::{Arch, Classifier, LeNet300, LeNet5, LeNet5Net, Mlp};
pub use crate::prune::*;
pub use crate::quant::*;
pub use crate::report::*;
pub use crate::train::*;
