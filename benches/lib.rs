//! Helpers shared by lepton's criterion benchmarks (`cargo bench -p lepton-benches`).
use dfdx::prelude::{Cpu, Tensor};
use dfdx::tensor::TensorFromVec;
use lepton::prelude::*;

/// The first `batch` Fashion-MNIST test images as f32 in 0..1, `(batch, 784)` row-major;
/// `None` when the bundled data is missing (benches run from the repository root).
pub fn inputs(batch: usize) -> Option<Vec<f32>> {
    let data = fashion_mnist(Split::Test).ok()?.take(batch).ok()?;
    Some(data.images().iter().map(|&p| p as f32 / 255.0).collect())
}

/// lepton's dense f32 inference path (`Classifier::logits`) on `x`; returns the number of
/// logits so the work cannot be optimised away.
pub fn logits<M: Classifier>(dev: &Cpu, m: &M, x: &[f32], batch: usize) -> usize {
    let Ok(t) = dev.try_tensor_from_vec(x.to_vec(), (batch, 784)) else { return 0 };
    let t: Tensor<(usize, usize), f32, Cpu> = t;
    m.logits(t).map(|y| y.as_vec().len()).unwrap_or(0)
}
