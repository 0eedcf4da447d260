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
    if !T::OWNS_TAPE {
        // inference: no argmax to keep, planes in parallel
        let out = pool_values::<K, E>(&xv, hn, wn, oh, ow);
        let out = x
            .device()
            .clone()
            .try_tensor_from_vec(out, (b, Const::<C>, oh_dim, ow_dim))
            .map_err(|e| LeptonError::device("max_pool2d", e))?;
        return Ok(out.put_tape(tape));
    }
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

/// Planes pooled per parallel task at inference.
const PLANES_PER_TASK: usize = 16;

/// The pooled values of every `h × w` plane of `xv`, without argmax: the values of the
/// training path exactly. Each window keeps its first maximum (`v > best`, so of `-0.0` and
/// `0.0` the first one), skips NaNs next to numbers, and keeps its first element when nothing
/// in it is above `-inf` (a window of NaNs stays NaN).
fn pool_values<const K: usize, E: CpuFloat>(xv: &[E], h: usize, w: usize, oh: usize, ow: usize) -> Vec<E> {
    use rayon::prelude::*;
    let (plane_in, plane_out) = (h * w, oh * ow);
    let mut out = vec![E::default(); xv.len() / plane_in.max(1) * plane_out];
    if plane_in == 0 || plane_out == 0 {
        return out;
    }
    out.par_chunks_mut(PLANES_PER_TASK * plane_out)
        .zip(xv.par_chunks(PLANES_PER_TASK * plane_in))
        .for_each(|(out_t, x_t)| {
            for (dst, src) in out_t.chunks_exact_mut(plane_out).zip(x_t.chunks_exact(plane_in)) {
                if K == 2 {
                    pool2_plane(src, w, dst, ow);
                    continue;
                }
                for (y, dst_row) in dst.chunks_exact_mut(ow).enumerate() {
                    let rows = &src[y * K * w..(y * K + K) * w];
                    for (xo, d) in dst_row.iter_mut().enumerate() {
                        let mut best = E::NEG_INFINITY;
                        for i in 0..K {
                            for v in &rows[i * w + xo * K..i * w + xo * K + K] {
                                best = if *v > best { *v } else { best };
                            }
                        }
                        *d = if best > E::NEG_INFINITY { best } else { rows[xo * K] };
                    }
                }
            }
        });
    out
}

/// [`pool_values`] for 2×2 windows on one plane: the same selections, written over pairs of
/// input rows so that the compiler can vectorize them.
fn pool2_plane<E: CpuFloat>(src: &[E], w: usize, dst: &mut [E], ow: usize) {
    #[inline(always)]
    fn pick<E: CpuFloat>(best: E, v: E) -> E {
        if v > best {
            v
        } else {
            best
        }
    }
    for (rows, dst_row) in src.chunks_exact(2 * w).zip(dst.chunks_exact_mut(ow)) {
        let (top, bottom) = rows.split_at(w);
        for ((d, t), b) in dst_row.iter_mut().zip(top.chunks_exact(2)).zip(bottom.chunks_exact(2)) {
            let best = pick(pick(pick(pick(E::NEG_INFINITY, t[0]), t[1]), b[0]), b[1]);
            *d = if best > E::NEG_INFINITY { best } else { t[0] };
        }
    }
}
