//! Typed head swap: the same backbone with a final layer for a different number of classes.

use dfdx::prelude::Cpu;

use crate::error::{LeptonError, Result};
use crate::nn::checkpoint::tensors_of;
use crate::nn::{Classifier, LeNet5Net, Mlp};
use crate::prune::{model_from_tensors, TensorValues};

/// Path prefix of the final (classification) layer of lepton's models.
pub const HEAD: &str = "fc3";

/// Whether `path` lies under `prefix`: equal to it, or `prefix` followed by a `.`
/// (`fc1` covers `fc1.weight` but not `fc10.weight`).
pub fn under_prefix(path: &str, prefix: &str) -> bool {
    path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.'))
}

/// A model whose final layer can be replaced by one with `K` outputs. The result is a new
/// *type* (`Mlp<784, 300, 100, 10>` → `Mlp<784, 300, 100, 5>`), so code that expects a
/// 5-way model cannot be handed the 10-way one.
pub trait SwapHead<const K: usize>: Classifier {
    /// The same backbone with a `K`-way head.
    type Output: Classifier;
}

impl<const IN: usize, const H1: usize, const H2: usize, const OUT: usize, const K: usize> SwapHead<K>
    for Mlp<IN, H1, H2, OUT, f32, Cpu>
{
    type Output = Mlp<IN, H1, H2, K, f32, Cpu>;
}

impl<const C1: usize, const C2: usize, const FLAT: usize, const F1: usize, const F2: usize, const OUT: usize, const K: usize>
    SwapHead<K> for LeNet5Net<C1, C2, FLAT, F1, F2, OUT, f32, Cpu>
{
    type Output = LeNet5Net<C1, C2, FLAT, F1, F2, K, f32, Cpu>;
}

/// `model` with its head ([`HEAD`]) replaced by a freshly initialised `K`-way one.
///
/// Every backbone tensor is copied bit for bit; the new head is drawn with PyTorch's default
/// initialisation from `head_seed` (the same seed gives the same head). `K = 0` is an error.
///
/// ```
/// use lepton::prelude::*;
/// use lepton::transfer::swap_head;
/// let dev = dfdx::prelude::Cpu::default();
/// let m = LeNet300::build(&dev)?;
/// let m5: Mlp<784, 300, 100, 5> = swap_head::<_, 5>(&m, 0)?;
/// assert_eq!(<Mlp<784, 300, 100, 5> as Classifier>::CLASSES, 5);
/// # Ok::<(), lepton::LeptonError>(())
/// ```
pub fn swap_head<M: SwapHead<K>, const K: usize>(model: &M, head_seed: u64) -> Result<M::Output> {
    if K == 0 {
        return Err(LeptonError::config("classes", 0, "a head needs at least 1 class"));
    }
    let fresh = <M::Output as Classifier>::build(&dfdx::tensor::Cpu::seed_from_u64(head_seed))?;
    let tensors = replace_backbone(&tensors_of(&fresh), &tensors_of(model), |p| !under_prefix(p, HEAD))?;
    model_from_tensors::<M::Output>(&tensors)
}

/// `model`'s layers under the `keep` prefixes (e.g. `["conv1", "conv2"]`: the convolutional
/// features) in a `K`-way model whose every other tensor — the head and any layer not kept — is
/// freshly initialised from `seed`, exactly as a new model built from `seed` would be.
///
/// Transferring only the lower layers is the usual remedy when the upper ones are specific to
/// the source task: a network trained on 5 classes collapses its last hidden layers onto the
/// few directions those classes need. Errors: `K = 0`, an empty `keep`, a prefix that matches
/// no tensor, or one that covers the head.
pub fn transfer_layers<M: SwapHead<K>, const K: usize>(model: &M, keep: &[&str], seed: u64) -> Result<M::Output> {
    if K == 0 {
        return Err(LeptonError::config("classes", 0, "a head needs at least 1 class"));
    }
    let source = tensors_of(model);
    check_keep(&source, keep)?;
    let fresh = <M::Output as Classifier>::build(&dfdx::tensor::Cpu::seed_from_u64(seed))?;
    let tensors = replace_backbone(&tensors_of(&fresh), &source, |p| keep.iter().any(|k| under_prefix(p, k)))?;
    model_from_tensors::<M::Output>(&tensors)
}

/// Checks the prefixes of [`transfer_layers`] against the source's tensors.
pub(crate) fn check_keep(source: &[TensorValues], keep: &[&str]) -> Result<()> {
    if keep.is_empty() {
        return Err(LeptonError::config("keep", "[]", "name at least one layer to transfer"));
    }
    for k in keep {
        if under_prefix(HEAD, k) || k.starts_with(HEAD) {
            return Err(LeptonError::config("keep", k, "the head is replaced, not transferred"));
        }
        if !source.iter().any(|(p, _, _)| under_prefix(p, k)) {
            let paths: Vec<&str> = source.iter().map(|t| t.0.as_str()).collect();
            return Err(LeptonError::config("tensor path", k, format!("matches no tensor; the model has {paths:?}")));
        }
    }
    Ok(())
}

/// The tensors of `target` with every tensor whose path satisfies `take` copied from `source`
/// (same path, same shape required).
pub(crate) fn replace_backbone(target: &[TensorValues], source: &[TensorValues], take: impl Fn(&str) -> bool) -> Result<Vec<TensorValues>> {
    target
        .iter()
        .map(|(path, shape, values)| {
            if !take(path) {
                return Ok((path.clone(), shape.clone(), values.clone()));
            }
            match source.iter().find(|(p, _, _)| p == path) {
                Some((_, s, v)) if s == shape => Ok((path.clone(), shape.clone(), v.clone())),
                Some((_, s, _)) => Err(LeptonError::Shape { op: "swap head", path: path.clone(), expected: shape.clone(), found: s.clone() }),
                None => Err(LeptonError::config("tensor path", path, "the source model has no such backbone tensor")),
            }
        })
        .collect()
}
