//! Activation hooks: named points of a forward pass where a technique observes or rewrites the
//! activation (QAT fake-quantizes it there), without per-architecture code in the technique.
//!
//! Every built-in model calls its hook at the points the integer networks quantize:
//! - an MLP at `input`, `fc1.output`, `fc2.output`, `fc3.output`;
//! - LeNet-5 at `input`, `conv1.output`, `conv2.output`, `fc1.output`, `fc2.output`,
//!   `fc3.output`.
//!
//! Hidden outputs are taken after their ReLU (LeNet-5's conv outputs before the max pooling,
//! which commutes with any monotone rounding); `fc3.output` is the logits.

use dfdx::prelude::{Cpu, Shape, Tape, Tensor};
use dfdx::tensor_ops::Device;

use super::kernels::CpuFloat;
use crate::error::Result;

/// One point of a forward pass: its index (0 = the input) and its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivationPoint {
    /// Position in the forward pass, `0` for the input.
    pub index: usize,
    /// The name, e.g. `input` or `fc1.output`.
    pub name: &'static str,
    /// Whether a gradient must flow back through this point (not for the input).
    pub needs_grad: bool,
}

impl ActivationPoint {
    /// The input of the network (no gradient).
    pub const INPUT: ActivationPoint = ActivationPoint { index: 0, name: "input", needs_grad: false };

    /// A point after the input.
    pub const fn after(index: usize, name: &'static str) -> ActivationPoint {
        ActivationPoint { index, name, needs_grad: true }
    }
}

/// What a model calls at each activation point. It must return a tensor of the same shape
/// (and, for training, keep the tape: a rewrite registers its own backward).
pub trait ActivationHook {
    /// Observes or rewrites the activation `x` at `point`.
    fn activation<S: Shape, E: CpuFloat, T: Tape<E, Cpu>>(
        &mut self,
        point: ActivationPoint,
        x: Tensor<S, E, Cpu, T>,
    ) -> Result<Tensor<S, E, Cpu, T>>
    where
        Cpu: Device<E>;
}

/// The hook that does nothing: plain inference and training.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHook;

impl ActivationHook for NoHook {
    #[inline]
    fn activation<S: Shape, E: CpuFloat, T: Tape<E, Cpu>>(
        &mut self,
        _point: ActivationPoint,
        x: Tensor<S, E, Cpu, T>,
    ) -> Result<Tensor<S, E, Cpu, T>>
    where
        Cpu: Device<E>,
    {
        Ok(x)
    }
}

/// Names of the activation points of an architecture with `convs` conv layers (0 or 2) and
/// three fully connected layers, in forward order.
pub fn activation_names(lenet5: bool) -> &'static [&'static str] {
    if lenet5 {
        &["input", "conv1.output", "conv2.output", "fc1.output", "fc2.output", "fc3.output"]
    } else {
        &["input", "fc1.output", "fc2.output", "fc3.output"]
    }
}
