//! Fully connected layer `y = x·Wᵀ + b` as a custom dfdx operation on the CPU, so a network's
//! first layer can skip the gradient of its input (the data), which dfdx's own `Linear` always
//! computes: for LeNet-300-100 that product is a third of all training arithmetic.
//!
//! The weights stay in dfdx's [`Linear`] (`weight` is `(OUT, IN)`,
//! `bias` is `(OUT,)`), so tensor paths and checkpoints do not change.
//!
//! Backward: `dW += dYᵀ·X`, `db += Σ_batch dY`, and when asked `dX += dY·W`.

use dfdx::nn::modules::Linear;
use dfdx::prelude::{Const, Cpu, Dim, HasShape, Rank1, Rank2, Tape, Tensor};
use dfdx::tensor::{CpuError, PutTape, SplitTape, TensorFromVec};
use dfdx::tensor_ops::{Device, ReshapeTo};

use super::kernels::{host_vec, matmul_into, matmul_into_seq, CpuFloat, MatRef};
use crate::error::{LeptonError, Result};

fn to_cpu_err(_e: LeptonError) -> CpuError {
    // Only reachable on an internal size bug; dfdx's backward closures return its own error.
    CpuError::WrongNumElements
}

/// Batch rows per parallel task at inference. A fixed size (not derived from the thread count),
/// so each row's sum is the same whatever the number of threads.
const INFERENCE_ROWS: usize = 64;

/// `x·Wᵀ + b` with `x: (batch, IN)`, `weight: (OUT, IN)`, `bias: (OUT,)`.
/// `input_grad = false` skips `dX` on backward (weight and bias gradients are always computed
/// when `x` carries a tape).
pub fn linear<B, const IN: usize, const OUT: usize, E, T>(
    x: Tensor<(B, Const<IN>), E, Cpu, T>,
    weight: &Tensor<Rank2<OUT, IN>, E, Cpu>,
    bias: &Tensor<Rank1<OUT>, E, Cpu>,
    input_grad: bool,
) -> Result<Tensor<(B, Const<OUT>), E, Cpu, T>>
where
    B: Dim,
    E: CpuFloat,
    T: Tape<E, Cpu>,
    Cpu: Device<E>,
{
    let b = x.shape().0;
    let n = b.size();
    let x = x.try_contiguous().map_err(|e| LeptonError::device("linear", e))?;
    let (x, mut tape) = x.split_tape();
    let xv = host_vec(&x)?;
    let wv = host_vec(weight)?;
    let bv = host_vec(bias)?;
    let mut out = vec![E::default(); n * OUT];
    if OUT > 0 {
        for row in out.chunks_exact_mut(OUT) {
            row.copy_from_slice(&bv);
        }
    }
    let w_t = MatRef { data: &wv, rows: IN, cols: OUT, rs: 1, cs: IN };
    // (zero-width layers take the single product too: a chunk size of 0 is not allowed)
    if T::OWNS_TAPE || n < 2 * INFERENCE_ROWS || IN == 0 || OUT == 0 {
        matmul_into("linear", &mut out, OUT, true, MatRef { data: &xv, rows: n, cols: IN, rs: IN, cs: 1 }, w_t)?;
    } else {
        // inference: blocks of rows on the pool's threads, each product on one thread
        use rayon::prelude::*;
        out.par_chunks_mut(INFERENCE_ROWS * OUT).zip(xv.par_chunks(INFERENCE_ROWS * IN)).try_for_each(|(o, xc)| {
            let x_c = MatRef { data: xc, rows: xc.len() / IN.max(1), cols: IN, rs: IN, cs: 1 };
            matmul_into_seq("linear", o, OUT, true, x_c, w_t)
        })?;
    }
    let dev = x.device().clone();
    let out = dev
        .try_tensor_from_vec(out, (b, Const::<OUT>))
        .map_err(|e| LeptonError::device("linear", e))?;
    if T::OWNS_TAPE {
        let (x_id, w_id, b_id, out_id) = (x.clone(), weight.clone(), bias.clone(), out.clone());
        tape.add_backward_op(move |grads| {
            let gy: Vec<E> = E::grad_slice(grads.get_or_alloc_mut(&out_id)?).to_vec();
            {
                let gb = E::grad_slice(grads.get_or_alloc_mut(&b_id)?);
                for row in gy.chunks_exact(OUT) {
                    for (g, v) in gb.iter_mut().zip(row) {
                        *g += *v;
                    }
                }
            }
            {
                let gw = E::grad_slice(grads.get_or_alloc_mut(&w_id)?);
                matmul_into(
                    "linear backward (weight)",
                    gw,
                    IN,
                    true,
                    MatRef { data: &gy, rows: OUT, cols: n, rs: 1, cs: OUT },
                    MatRef { data: &xv, rows: n, cols: IN, rs: IN, cs: 1 },
                )
                .map_err(to_cpu_err)?;
            }
            if input_grad {
                let gx = E::grad_slice(grads.get_or_alloc_mut(&x_id)?);
                matmul_into(
                    "linear backward (input)",
                    gx,
                    IN,
                    true,
                    MatRef { data: &gy, rows: n, cols: OUT, rs: OUT, cs: 1 },
                    MatRef { data: &wv, rows: OUT, cols: IN, rs: IN, cs: 1 },
                )
                .map_err(to_cpu_err)?;
            }
            Ok(())
        });
    }
    Ok(out.put_tape(tape))
}

/// Applies a dfdx [`Linear`] through [`linear`]; `input_grad = false` for a first layer.
pub fn linear_layer<B, const IN: usize, const OUT: usize, E, T>(
    layer: &Linear<IN, OUT, E, Cpu>,
    x: Tensor<(B, Const<IN>), E, Cpu, T>,
    input_grad: bool,
) -> Result<Tensor<(B, Const<OUT>), E, Cpu, T>>
where
    B: Dim,
    E: CpuFloat,
    T: Tape<E, Cpu>,
    Cpu: Device<E>,
{
    linear(x, &layer.weight, &layer.bias, input_grad)
}
