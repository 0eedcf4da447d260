//! Typed classifiers: the LeNet-300-100 MLP and LeNet-5, with their widths as const generics so
//! a later technique (structured pruning, head swaps) yields a new *type*.
//!
//! Every model reads a batch of flattened 28×28 images, `(batch, 784)`, and returns logits
//! `(batch, classes)`. Tensor paths (checkpoint keys, pruning keys) are `fc1.weight`,
//! `conv1.bias`, and so on.

use dfdx::nn::modules::{Linear, ModuleVisitor, TensorCollection};
use dfdx::prelude::{Const, Cpu, Dim, Dtype, HasShape, Tape, Tensor};
use dfdx::tensor::Storage;
use dfdx::tensor_ops::{Device, ReshapeTo};

use super::conv::Conv2d;
use super::hook::{ActivationHook, ActivationPoint, NoHook};
use super::kernels::CpuFloat;
use super::linear::linear_layer;
use super::pool::MaxPool2d;
use crate::error::{LeptonError, Result};

fn dev_err(op: &'static str) -> impl FnOnce(dfdx::tensor::CpuError) -> LeptonError {
    move |e| LeptonError::device(op, e)
}

/// A three-layer perceptron `IN → H1 → H2 → OUT` with ReLU between layers.
#[derive(Debug, Clone)]
pub struct Mlp<const IN: usize, const H1: usize, const H2: usize, const OUT: usize, E: Dtype = f32, D: Storage<E> = Cpu> {
    pub fc1: Linear<IN, H1, E, D>,
    pub fc2: Linear<H1, H2, E, D>,
    pub fc3: Linear<H2, OUT, E, D>,
}

/// LeNet-300-100 (LeCun et al. 1998; the MLP of Han et al. 2015): 784 → 300 → 100 → 10.
pub type LeNet300<E = f32, D = Cpu> = Mlp<784, 300, 100, 10, E, D>;

/// A small MLP, 784 → 100 → 50 → 10 (84,060 parameters): the student of the distillation
/// notebook, and the structured-pruning example's target width.
pub type SmallMlp<E = f32, D = Cpu> = Mlp<784, 100, 50, 10, E, D>;

impl<const IN: usize, const H1: usize, const H2: usize, const OUT: usize, E, D> TensorCollection<E, D>
    for Mlp<IN, H1, H2, OUT, E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = Mlp<IN, H1, H2, OUT, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> std::result::Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("fc1", |s| &s.fc1, |s| &mut s.fc1),
                Self::module("fc2", |s| &s.fc2, |s| &mut s.fc2),
                Self::module("fc3", |s| &s.fc3, |s| &mut s.fc3),
            ),
            |(fc1, fc2, fc3)| Mlp { fc1, fc2, fc3 },
        )
    }
}

impl<const IN: usize, const H1: usize, const H2: usize, const OUT: usize, E: CpuFloat>
    Mlp<IN, H1, H2, OUT, E, Cpu>
where
    Cpu: Device<E>,
{
    /// Logits for a batch of flattened inputs.
    pub fn try_forward<B: Dim, T: Tape<E, Cpu>>(
        &self,
        x: Tensor<(B, Const<IN>), E, Cpu, T>,
    ) -> Result<Tensor<(B, Const<OUT>), E, Cpu, T>> {
        self.try_forward_hooked(x, &mut NoHook)
    }

    /// Logits, calling `hook` at `input`, `fc1.output`, `fc2.output` and `fc3.output`
    /// (hidden outputs after their ReLU; see [`crate::nn::hook`]).
    pub fn try_forward_hooked<B: Dim, T: Tape<E, Cpu>, H: ActivationHook>(
        &self,
        x: Tensor<(B, Const<IN>), E, Cpu, T>,
        hook: &mut H,
    ) -> Result<Tensor<(B, Const<OUT>), E, Cpu, T>> {
        let x = hook.activation(ActivationPoint::INPUT, x)?;
        // fc1 reads the data: no gradient for its input
        let x = linear_layer(&self.fc1, x, false)?.try_relu().map_err(dev_err("relu"))?;
        let x = hook.activation(ActivationPoint::after(1, "fc1.output"), x)?;
        let x = linear_layer(&self.fc2, x, true)?.try_relu().map_err(dev_err("relu"))?;
        let x = hook.activation(ActivationPoint::after(2, "fc2.output"), x)?;
        let x = linear_layer(&self.fc3, x, true)?;
        hook.activation(ActivationPoint::after(3, "fc3.output"), x)
    }
}

/// LeNet-5 with configurable widths: conv 5×5 (1 → C1) → ReLU → max-pool 2 → conv 5×5
/// (C1 → C2) → ReLU → max-pool 2 → flatten (C2·4·4 = FLAT) → fc FLAT → F1 → F2 → OUT.
///
/// `FLAT` must equal `C2 * 16`; a mismatch is a compile-time error.
#[derive(Debug, Clone)]
pub struct LeNet5Net<
    const C1: usize,
    const C2: usize,
    const FLAT: usize,
    const F1: usize,
    const F2: usize,
    const OUT: usize,
    E: Dtype = f32,
    D: Storage<E> = Cpu,
> {
    pub conv1: Conv2d<1, C1, 5, E, D>,
    pub conv2: Conv2d<C1, C2, 5, E, D>,
    pub fc1: Linear<FLAT, F1, E, D>,
    pub fc2: Linear<F1, F2, E, D>,
    pub fc3: Linear<F2, OUT, E, D>,
}

/// LeNet-5 as in the issue and most course material: 6 and 16 channels, 120-84-10 head.
pub type LeNet5<E = f32, D = Cpu> = LeNet5Net<6, 16, 256, 120, 84, 10, E, D>;

impl<
        const C1: usize,
        const C2: usize,
        const FLAT: usize,
        const F1: usize,
        const F2: usize,
        const OUT: usize,
        E,
        D,
    > TensorCollection<E, D> for LeNet5Net<C1, C2, FLAT, F1, F2, OUT, E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = LeNet5Net<C1, C2, FLAT, F1, F2, OUT, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> std::result::Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("conv1", |s| &s.conv1, |s| &mut s.conv1),
                Self::module("conv2", |s| &s.conv2, |s| &mut s.conv2),
                Self::module("fc1", |s| &s.fc1, |s| &mut s.fc1),
                Self::module("fc2", |s| &s.fc2, |s| &mut s.fc2),
                Self::module("fc3", |s| &s.fc3, |s| &mut s.fc3),
            ),
            |(conv1, conv2, fc1, fc2, fc3)| LeNet5Net { conv1, conv2, fc1, fc2, fc3 },
        )
    }
}

impl<
        const C1: usize,
        const C2: usize,
        const FLAT: usize,
        const F1: usize,
        const F2: usize,
        const OUT: usize,
        E: CpuFloat,
    > LeNet5Net<C1, C2, FLAT, F1, F2, OUT, E, Cpu>
where
    Cpu: Device<E>,
{
    /// Logits for a batch of flattened 28×28 images.
    pub fn try_forward<B: Dim, T: Tape<E, Cpu>>(
        &self,
        x: Tensor<(B, Const<784>), E, Cpu, T>,
    ) -> Result<Tensor<(B, Const<OUT>), E, Cpu, T>> {
        self.try_forward_hooked(x, &mut NoHook)
    }

    /// Logits, calling `hook` at `input`, `conv1.output`, `conv2.output`, `fc1.output`,
    /// `fc2.output` and `fc3.output` (after each ReLU, conv outputs before their pooling; see
    /// [`crate::nn::hook`]).
    pub fn try_forward_hooked<B: Dim, T: Tape<E, Cpu>, H: ActivationHook>(
        &self,
        x: Tensor<(B, Const<784>), E, Cpu, T>,
        hook: &mut H,
    ) -> Result<Tensor<(B, Const<OUT>), E, Cpu, T>> {
        const { assert!(C2 * 16 == FLAT, "LeNet5Net: FLAT must equal C2 * 4 * 4") };
        let b = x.shape().0;
        let x = hook.activation(ActivationPoint::INPUT, x)?;
        let x = x
            .try_reshape_like(&(b, Const::<1>, Const::<28>, Const::<28>))
            .map_err(dev_err("reshape"))?;
        let x = self.conv1.try_forward_first(x)?.try_relu().map_err(dev_err("relu"))?;
        let x = hook.activation(ActivationPoint::after(1, "conv1.output"), x)?;
        let x = MaxPool2d::<2>.try_forward(x)?;
        let x = self.conv2.try_forward(x)?.try_relu().map_err(dev_err("relu"))?;
        let x = hook.activation(ActivationPoint::after(2, "conv2.output"), x)?;
        let x = MaxPool2d::<2>.try_forward(x)?;
        let x = x.try_reshape_like(&(b, Const::<FLAT>)).map_err(dev_err("flatten"))?;
        let x = linear_layer(&self.fc1, x, true)?.try_relu().map_err(dev_err("relu"))?;
        let x = hook.activation(ActivationPoint::after(3, "fc1.output"), x)?;
        let x = linear_layer(&self.fc2, x, true)?.try_relu().map_err(dev_err("relu"))?;
        let x = hook.activation(ActivationPoint::after(4, "fc2.output"), x)?;
        let x = linear_layer(&self.fc3, x, true)?;
        hook.activation(ActivationPoint::after(5, "fc3.output"), x)
    }
}
