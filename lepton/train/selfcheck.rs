//! A check that the compiler building this crate computes dfdx gradients right.
//!
//! rustc 1.95.0 miscompiled dfdx 0.13 at opt-level 2 and 3: a second backward pass into the
//! same `Gradients` gave 3× the gradient instead of 2× (docs/DESIGN.md, "Toolchain"). The
//! notebook kernel builds lepton at opt-level 2, so notebook 00 runs this check.

use dfdx::prelude::{Cpu, Gradients, Rank0, Rank2, Tensor};
use dfdx::tensor::{AsArray, TensorFrom, Trace};
use dfdx::tensor_ops::{Backward, SumTo};

use crate::error::{LeptonError, Result};

/// Runs `d/dx Σ x·r` once, then twice into the same gradients, and returns the ratio of the
/// two gradients' first elements: exactly 2.0 when gradients accumulate as they must.
/// Errors (naming the ratio) when it is anything else.
pub fn gradient_accumulation_check() -> Result<f64> {
    let dev = Cpu::default();
    let x: Tensor<Rank2<2, 3>, f64, Cpu> = dev.tensor([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]]);
    let r: Tensor<Rank2<2, 3>, f64, Cpu> = dev.tensor([[0.5, 1.5, -2.0], [1.0, -0.75, 4.0]]);
    // the closure form is the one that was miscompiled
    let backward = |mut grads: Gradients<f64, Cpu>| -> Result<Gradients<f64, Cpu>> {
        grads.try_alloc_for(&x).map_err(|e| LeptonError::device("self-check", e))?;
        let loss: Tensor<Rank0, f64, Cpu, _> = (x.trace(grads) * r.clone()).sum();
        loss.try_backward().map_err(|e| LeptonError::device("self-check", e))
    };
    let once = backward(Gradients::leaky())?.get(&x).array();
    let twice = backward(backward(Gradients::leaky())?)?.get(&x).array();
    let ratio = twice[0][0] / once[0][0];
    let exact = once.iter().flatten().zip(twice.iter().flatten()).all(|(a, b)| *b == 2.0 * *a);
    if !exact {
        return Err(LeptonError::config(
            "compiler self-check",
            "gradient accumulation",
            format!("two backward passes gave {ratio}× one pass, not 2×: this rustc miscompiles dfdx; build with the toolchain of rust-toolchain.toml"),
        ));
    }
    Ok(ratio)
}

#[cfg(test)]
mod tests {
    #[test]
    fn gradients_accumulate_exactly_twice() {
        assert_eq!(super::gradient_accumulation_check().unwrap(), 2.0);
    }
}
