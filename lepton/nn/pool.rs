//! Max pooling for stable Rust: a custom dfdx operation with its backward on the tape.
//!
//! `K`×`K` windows with stride `K` (floor), the pooling LeNet-5 uses. The forward keeps the
//! index of each window's maximum (the first one on ties); the backward adds each output
//! gradient to that input element only.

use dfdx::prelude::{Const, Cpu, Dim, HasShape, Tape, Tensor};
use dfdx::tensor::{PutTape, SplitTape, TensorFromVec};
use dfdx::tensor_ops::{Device, ReshapeTo};

use super::dims::PoolDim;
use super::kernels::{host_vec, CpuFloat};
use crate::error::{LeptonError, Result};

/// `K`×`K` max pooling with stride `K`, as a zero-sized layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct MaxPool2d<const K: usize>;

impl<const K: usize> MaxPool2d<K> {
    /// Applies the pooling.
    pub fn try_forward<B: Dim, const C: usize, H: PoolDim<K>, W: PoolDim<K>, E: CpuFloat, T: Tape<E, Cpu>>(
        &self,
        x: Tensor<(B, Const<C>, H, W), E, Cpu, T>,
    ) -> Result<Tensor<(B, Const<C>, H::Out, W::Out), E, Cpu, T>>
    where
        Cpu: Device<E>,
    {
        max_pool2d::<K, _, C, _, _, _, _>(x)
    }
}

/// `K`×`K` max pooling with stride `K` as a function of tensors.
pub fn max_pool2d<const K: usize, B, const C: usize, H, W, E, T>(
    x: Tensor<(B, Const<C>, H, W), E, Cpu, T>,
) -> Result<Tensor<(B, Const<C>, H::Out, W::Out), E, Cpu, T>>
where
    B: Dim,
    H: PoolDim<K>,
    W: PoolDim<K>,
    E: CpuFloat,
    T: Tape<E, Cpu>,
    Cpu: Device<E>,
{
    let (b, _, h, w) = *x.shape();
    let (batch, hn, wn) = (b.size(), h.size(), w.size());
    let shape_err = || LeptonError::Shape {
        op: "max_pool2d",
        path: String::new(),
        expected: vec![batch, C, K.max(1), K.max(1)],
        found: vec![batch, C, hn, wn],
    };
    if K == 0 || hn < K || wn < K {
        return Err(shape_err());
    }
    let (oh, ow) = (hn / K, wn / K);
    let oh_dim = <H::Out as Dim>::from_size(oh).ok_or_else(shape_err)?;
    let ow_dim = <W::Out as Dim>::from_size(ow).ok_or_else(shape_err)?;

    let x = x.try_contiguous().map_err(|e| LeptonError::device("max_pool2d", e))?;
    let (x, mut tape) = x.split_tape();
    let xv = host_vec(&x)?;
    let planes = batch * C;
    let mut out = vec![E::default(); planes * oh * ow];
    let mut arg = vec![0usize; planes * oh * ow];
    for pl in 0..planes {
        let src = &xv[pl * hn * wn..(pl + 1) * hn * wn];
        for y in 0..oh {
            for xo in 0..ow {
                let mut best = E::NEG_INFINITY;
                let mut best_i = (y * K) * wn + xo * K;
                for i in 0..K {
                    let row = (y * K + i) * wn + xo * K;
                    for (j, v) in src[row..row + K].iter().enumerate() {
                        if *v > best {
                            best = *v;
                            best_i = row + j;
                        }
                    }
                }
                let o = (pl * oh + y) * ow + xo;
                // a window of NaNs keeps its first element (NaN) so NaN propagates
                out[o] = src[best_i];
                arg[o] = pl * hn * wn + best_i;
            }
        }
    }
    let dev = x.device().clone();
    let out = dev
        .try_tensor_from_vec(out, (b, Const::<C>, oh_dim, ow_dim))
        .map_err(|e| LeptonError::device("max_pool2d", e))?;
    if T::OWNS_TAPE {
        let (x_id, out_id) = (x.clone(), out.clone());
        tape.add_backward_op(move |grads| {
            let gy: Vec<E> = E::grad_slice(grads.get_or_alloc_mut(&out_id)?).to_vec();
            let gx = E::grad_slice(grads.get_or_alloc_mut(&x_id)?);
            for (g, &i) in gy.iter().zip(&arg) {
                if let Some(d) = gx.get_mut(i) {
                    *d += *g;
                }
            }
            Ok(())
        });
    }
    Ok(out.put_tape(tape))
}
