//! Typed classifiers: the LeNet-300-100 MLP and LeNet-5, with their widths as const generics so
//! a later technique (structured pruning, head swaps) yields a new *type*.
//!
//! Every model reads a batch of flattened 28×28 images, `(batch, 784)`, and returns logits
//! `(batch, classes)`. Tensor paths (checkpoint keys, pruning keys) are `fc1.weight`,
//! `conv1.bias`, and so on.

use dfdx::nn::modules::{Linear, ModuleVisitor, TensorCollection};
use dfdx::prelude::{Const, Cpu, Dim, Dtype, HasShape, Tape, Tensor};
use dfdx::tensor::{PutTape, SplitTape, Storage, TensorFromVec};
use dfdx::tensor_ops::{Device, ReshapeTo};

use super::conv::Conv2d;
use super::hook::{ActivationHook, ActivationPoint, NoHook};
use super::kernels::{host_vec, CpuFloat};
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
/// (C1 → C2) → ReLU → max-pool 2 → flatten (FLAT) → fc FLAT → F1 → F2 → OUT.
///
/// `FLAT` also says how the 28×28 image enters conv1, and must be one of:
/// - `C2 · 4 · 4`: unpadded, as in most course material ([`LeNet5`]): 28 → 24 → 12 → 8 → 4;
/// - `C2 · 5 · 5`: the image zero-padded by 2 on every side, i.e. the 32×32 input of LeCun et
///   al. (1998) and PyTorch's `Conv2d(1, 6, 5, padding=2)` ([`LeNet5Padded`]):
///   32 → 28 → 14 → 10 → 5.
///
/// Any other `FLAT` is a compile-time error.
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

/// LeNet-5 with LeCun et al.'s (1998) layer sizes: the 28×28 image zero-padded to 32×32, so
/// conv1 gives 6@28×28 and the flatten has 16·5·5 = 400 features; 61,706 parameters. This is
/// the LeNet-5 of most PyTorch tutorials (`Conv2d(1, 6, 5, padding=2)`).
pub type LeNet5Padded<E = f32, D = Cpu> = LeNet5Net<6, 16, 400, 120, 84, 10, E, D>;

/// Whether a `LeNet5Net` with these widths pads its input (`FLAT = C2·5·5`) or not
/// (`FLAT = C2·4·4`); a compile-time error for any other `FLAT`.
pub(crate) const fn lenet5_padded<const C2: usize, const FLAT: usize>() -> bool {
    assert!(
        FLAT == C2 * 16 || FLAT == C2 * 25,
        "LeNet5Net: FLAT must equal C2 * 4 * 4 (unpadded input) or C2 * 5 * 5 (input padded by 2)"
    );
    FLAT == C2 * 25
}

/// A batch of flattened 28×28 images as `(batch, 1, 32, 32)`, zero-padded by 2 on every side.
///
/// The tape moves to the padded tensor with no backward op: the input is data, and conv1 runs
/// through [`Conv2d::try_forward_first`], which asks no gradient of its input.
fn pad2_images<B: Dim, E: CpuFloat, T: Tape<E, Cpu>>(
    x: Tensor<(B, Const<784>), E, Cpu, T>,
) -> Result<Tensor<(B, Const<1>, Const<32>, Const<32>), E, Cpu, T>>
where
    Cpu: Device<E>,
{
    let b = x.shape().0;
    let (x, tape) = x.split_tape();
    let xv = host_vec(&x)?;
    let mut out = vec![E::default(); b.size() * 32 * 32];
    for (src, dst) in xv.chunks_exact(784).zip(out.chunks_exact_mut(32 * 32)) {
        for (row, d) in src.chunks_exact(28).zip(dst.chunks_exact_mut(32).skip(2)) {
            d[2..30].copy_from_slice(row);
        }
    }
    let out = x
        .device()
        .clone()
        .try_tensor_from_vec(out, (b, Const::<1>, Const::<32>, Const::<32>))
        .map_err(dev_err("pad"))?;
    Ok(out.put_tape(tape))
}

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
    /// Logits for a batch of flattened 28×28 images (padded to 32×32 first when `FLAT = C2·25`).
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
        let padded = const { lenet5_padded::<C2, FLAT>() };
        let b = x.shape().0;
        let x = hook.activation(ActivationPoint::INPUT, x)?;
        // the two geometries have different (typed) extents, so each is its own code path
        macro_rules! features {
            ($x:expr) => {{
                let x = self.conv1.try_forward_first($x)?.try_relu().map_err(dev_err("relu"))?;
                let x = hook.activation(ActivationPoint::after(1, "conv1.output"), x)?;
                let x = MaxPool2d::<2>.try_forward(x)?;
                let x = self.conv2.try_forward(x)?.try_relu().map_err(dev_err("relu"))?;
                let x = hook.activation(ActivationPoint::after(2, "conv2.output"), x)?;
                let x = MaxPool2d::<2>.try_forward(x)?;
                x.try_reshape_like(&(b, Const::<FLAT>)).map_err(dev_err("flatten"))?
            }};
        }
        let x = if padded {
            features!(pad2_images(x)?)
        } else {
            features!(x.try_reshape_like(&(b, Const::<1>, Const::<28>, Const::<28>)).map_err(dev_err("reshape"))?)
        };
        let x = linear_layer(&self.fc1, x, true)?.try_relu().map_err(dev_err("relu"))?;
        let x = hook.activation(ActivationPoint::after(3, "fc1.output"), x)?;
        let x = linear_layer(&self.fc2, x, true)?.try_relu().map_err(dev_err("relu"))?;
        let x = hook.activation(ActivationPoint::after(4, "fc2.output"), x)?;
        let x = linear_layer(&self.fc3, x, true)?;
        hook.activation(ActivationPoint::after(5, "fc3.output"), x)
    }
}
