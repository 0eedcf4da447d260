//! Networks: lepton's stable-Rust convolution and pooling, typed LeNet models, the
//! [`Classifier`] trait the trainer uses, size accounting and safetensors checkpoints.

pub mod checkpoint;
pub mod classifier;
pub mod conv;
pub mod dims;
mod direct_conv;
pub mod hook;
pub(crate) mod kernels;
pub mod linear;
pub mod models;
pub mod pool;
mod sgemm;
pub mod size;
pub(crate) mod visit;

pub use checkpoint::{load_safetensors, save_safetensors};
pub use classifier::{Arch, Classifier};
pub use conv::{conv2d, Conv2d};
pub use dims::{ConvDim, PoolDim};
pub use hook::{ActivationHook, ActivationPoint, NoHook};
pub use kernels::CpuFloat;
pub use linear::{linear, linear_layer};
pub use models::{LeNet300, LeNet5, LeNet5Net, LeNet5Padded, Mlp, SmallMlp};
pub use pool::{max_pool2d, MaxPool2d};
pub use size::size_report;
