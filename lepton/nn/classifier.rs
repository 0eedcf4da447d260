//! The [`Classifier`] trait: what the trainer, evaluation, checkpoints and size accounting need
//! from a model, so one training loop serves every architecture.

use dfdx::nn::{BuildModule, TensorCollection};
use dfdx::prelude::{Const, Cpu, HasShape, Tape, Tensor};
use dfdx::tensor_ops::ReshapeTo;

use super::hook::{ActivationHook, NoHook};
use super::models::{LeNet5Net, Mlp};
use crate::error::{LeptonError, Result};

/// A model mapping `(batch, INPUTS)` features to `(batch, CLASSES)` logits, f32 on the CPU.
pub trait Classifier:
    Clone + std::fmt::Debug + TensorCollection<f32, Cpu, To<f32, Cpu> = Self> + Send + Sync + 'static
{
    /// Features per sample.
    const INPUTS: usize;
    /// Number of classes (logits per sample).
    const CLASSES: usize;

    /// A short name of the architecture, e.g. `LeNet-300-100` or `MLP-784-100-50-10`.
    fn arch_name() -> String;

    /// Logits for a batch whose run-time shape is `(batch, INPUTS)`.
    fn logits<T: Tape<f32, Cpu>>(
        &self,
        x: Tensor<(usize, usize), f32, Cpu, T>,
    ) -> Result<Tensor<(usize, usize), f32, Cpu, T>> {
        self.logits_hooked(x, &mut NoHook)
    }

    /// Logits, with `hook` called at every activation point (see [`crate::nn::hook`]).
    fn logits_hooked<T: Tape<f32, Cpu>, H: ActivationHook>(
        &self,
        x: Tensor<(usize, usize), f32, Cpu, T>,
        hook: &mut H,
    ) -> Result<Tensor<(usize, usize), f32, Cpu, T>>;

    /// A freshly initialised model (PyTorch's default uniform initialisation), drawn from the
    /// device's random generator: `Cpu::seed_from_u64(seed)` makes it reproducible.
    fn build(dev: &Cpu) -> Result<Self> {
        <Self as BuildModule<Cpu, f32>>::try_build(dev).map_err(|e| LeptonError::device("build model", e))
    }
}

fn check_inputs(x: &Tensor<(usize, usize), f32, Cpu, impl Tape<f32, Cpu>>, inputs: usize) -> Result<usize> {
    let (n, f) = *x.shape();
    if f != inputs || n == 0 {
        return Err(LeptonError::Shape { op: "logits", path: "input".into(), expected: vec![n.max(1), inputs], found: vec![n, f] });
    }
    Ok(n)
}

fn reshape_err(e: dfdx::tensor::CpuError) -> LeptonError {
    LeptonError::device("reshape", e)
}

impl<const IN: usize, const H1: usize, const H2: usize, const OUT: usize> Classifier
    for Mlp<IN, H1, H2, OUT, f32, Cpu>
{
    const INPUTS: usize = IN;
    const CLASSES: usize = OUT;

    fn arch_name() -> String {
        if (IN, H1, H2, OUT) == (784, 300, 100, 10) {
            "LeNet-300-100".into()
        } else {
            format!("MLP-{IN}-{H1}-{H2}-{OUT}")
        }
    }

    fn logits_hooked<T: Tape<f32, Cpu>, H: ActivationHook>(
        &self,
        x: Tensor<(usize, usize), f32, Cpu, T>,
        hook: &mut H,
    ) -> Result<Tensor<(usize, usize), f32, Cpu, T>> {
        let n = check_inputs(&x, IN)?;
        let x = x.try_reshape_like(&(n, Const::<IN>)).map_err(reshape_err)?;
        self.try_forward_hooked(x, hook)?.try_reshape_like(&(n, OUT)).map_err(reshape_err)
    }
}

impl<const C1: usize, const C2: usize, const FLAT: usize, const F1: usize, const F2: usize, const OUT: usize>
    Classifier for LeNet5Net<C1, C2, FLAT, F1, F2, OUT, f32, Cpu>
{
    const INPUTS: usize = 784;
    const CLASSES: usize = OUT;

    fn arch_name() -> String {
        let pad = if super::models::lenet5_padded::<C2, FLAT>() { "-pad2" } else { "" };
        if (C1, C2, F1, F2, OUT) == (6, 16, 120, 84, 10) {
            format!("LeNet-5{pad}")
        } else {
            format!("LeNet-5{pad}-{C1}-{C2}-{F1}-{F2}-{OUT}")
        }
    }

    fn logits_hooked<T: Tape<f32, Cpu>, H: ActivationHook>(
        &self,
        x: Tensor<(usize, usize), f32, Cpu, T>,
        hook: &mut H,
    ) -> Result<Tensor<(usize, usize), f32, Cpu, T>> {
        let n = check_inputs(&x, 784)?;
        let x = x.try_reshape_like(&(n, Const::<784>)).map_err(reshape_err)?;
        self.try_forward_hooked(x, hook)?.try_reshape_like(&(n, OUT)).map_err(reshape_err)
    }
}

/// The built-in architectures, for the non-generic entry points notebooks call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// [`super::LeNet300`]: 784-300-100-10 MLP, 266,610 parameters.
    LeNet300,
    /// [`super::LeNet5`]: conv 6@5×5, pool, conv 16@5×5, pool, 120-84-10; 44,426 parameters.
    LeNet5,
    /// [`super::SmallMlp`]: 784-100-50-10 MLP, 84,060 parameters.
    SmallMlp,
    /// [`super::LeNet5Padded`]: LeNet-5 on the image zero-padded to 32×32 (LeCun et al. 1998's
    /// sizes: conv 6@28×28, flatten 400), 120-84-10; 61,706 parameters.
    LeNet5Padded,
}

impl Arch {
    /// Display name, as in tables and figures.
    pub fn name(&self) -> &'static str {
        match self {
            Arch::LeNet300 => "LeNet-300-100",
            Arch::LeNet5 => "LeNet-5",
            Arch::SmallMlp => "MLP-784-100-50-10",
            Arch::LeNet5Padded => "LeNet-5-pad2",
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
