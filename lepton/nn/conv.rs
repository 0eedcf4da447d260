//! 2-D convolution for stable Rust: a custom dfdx operation (im2col + GEMM) whose backward is
//! registered on the tape.
//!
//! dfdx 0.13 puts its own `conv2d` behind the `nightly` feature; this one runs on stable with the
//! same layout: input `(batch, C, H, W)`, weight `(O, C, K, K)`, bias `(O,)`, valid padding,
//! stride 1. Channel and kernel sizes are const generics, and the output extents are types too
//! (see [`ConvDim`]), so mismatched layers fail to compile.
//!
//! Forward: `cols[c·K·K + i·K + j, b·P + y·OW + x] = input[b, c, y + i, x + j]`, then
//! `out = W · cols + bias` with `P = OH·OW`. Backward: `dW += dY · colsᵀ`, `db += Σ dY`, and,
//! unless the caller says the input needs no gradient, `dX = col2im(Wᵀ · dY)`.

use dfdx::nn::modules::{ModuleVisitor, TensorCollection, TensorOptions};
use dfdx::prelude::{Const, Cpu, Dim, Dtype, HasShape, Rank1, Rank4, Tape, Tensor};
use dfdx::tensor::{CpuError, PutTape, SplitTape, Storage, TensorFromVec};
use dfdx::tensor_ops::{Device, ReshapeTo};
use rand_distr::Uniform;

use super::dims::ConvDim;
use super::kernels::{matmul_into, CpuFloat, MatRef};
use crate::error::{LeptonError, Result};

/// A `K`×`K` convolution from `I` to `O` channels, stride 1, no padding.
#[derive(Debug, Clone)]
pub struct Conv2d<const I: usize, const O: usize, const K: usize, E: Dtype, D: Storage<E>> {
    /// `(O, I, K, K)` filters.
    pub weight: Tensor<Rank4<O, I, K, K>, E, D>,
    /// `(O,)` bias.
    pub bias: Tensor<Rank1<O>, E, D>,
}

impl<const I: usize, const O: usize, const K: usize, E, D> TensorCollection<E, D>
    for Conv2d<I, O, K, E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = Conv2d<I, O, K, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> std::result::Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        // PyTorch's default: U(-1/√fan_in, 1/√fan_in), fan_in = I·K·K, for weight and bias.
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight",
                    |s| &s.weight,
                    |s| &mut s.weight,
                    TensorOptions::reset_with(|t| {
                        let b = E::one() / E::from(I * K * K).unwrap_or(E::one()).sqrt();
                        t.try_fill_with_distr(Uniform::new(-b, b))
                    }),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_with(|t| {
                        let b = E::one() / E::from(I * K * K).unwrap_or(E::one()).sqrt();
                        t.try_fill_with_distr(Uniform::new(-b, b))
                    }),
                ),
            ),
            |(weight, bias)| Conv2d { weight, bias },
        )
    }
}

impl<const I: usize, const O: usize, const K: usize, E: CpuFloat> Conv2d<I, O, K, E, Cpu>
where
    Cpu: Device<E>,
{
    /// Applies the convolution; the input's gradient is computed on backward.
    pub fn try_forward<B: Dim, H: ConvDim<K>, W: ConvDim<K>, T: Tape<E, Cpu>>(
        &self,
        x: Tensor<(B, Const<I>, H, W), E, Cpu, T>,
    ) -> Result<Tensor<(B, Const<O>, H::Out, W::Out), E, Cpu, T>> {
        conv2d(x, &self.weight, &self.bias, true)
    }

    /// Like [`Conv2d::try_forward`], but skips the input's gradient: for a network's first layer,
    /// whose input is data.
    pub fn try_forward_first<B: Dim, H: ConvDim<K>, W: ConvDim<K>, T: Tape<E, Cpu>>(
        &self,
        x: Tensor<(B, Const<I>, H, W), E, Cpu, T>,
    ) -> Result<Tensor<(B, Const<O>, H::Out, W::Out), E, Cpu, T>> {
        conv2d(x, &self.weight, &self.bias, false)
    }
}

/// Geometry of one convolution call.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    batch: usize,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    oh: usize,
    ow: usize,
}

impl Geometry {
    fn p(&self) -> usize {
        self.oh * self.ow
    }
    fn n(&self) -> usize {
        self.batch * self.p()
    }
    fn ckk(&self) -> usize {
        self.c * self.k * self.k
    }
}

/// `cols` is `(C·K·K) × (B·P)` row-major.
fn im2col<E: Copy>(x: &[E], g: &Geometry, cols: &mut [E]) {
    let (n, p) = (g.n(), g.p());
    for c in 0..g.c {
        for i in 0..g.k {
            for j in 0..g.k {
                let row = (c * g.k + i) * g.k + j;
                let dst_row = &mut cols[row * n..(row + 1) * n];
                for b in 0..g.batch {
                    let src_plane = &x[(b * g.c + c) * g.h * g.w..(b * g.c + c + 1) * g.h * g.w];
                    for y in 0..g.oh {
                        let src = &src_plane[(y + i) * g.w + j..(y + i) * g.w + j + g.ow];
                        let d = b * p + y * g.ow;
                        dst_row[d..d + g.ow].copy_from_slice(src);
                    }
                }
            }
        }
    }
}

/// Adds the columns back onto the input layout (the adjoint of [`im2col`]).
fn col2im_add<E: CpuFloat>(cols: &[E], g: &Geometry, dx: &mut [E]) {
    let (n, p) = (g.n(), g.p());
    for c in 0..g.c {
        for i in 0..g.k {
            for j in 0..g.k {
                let row = (c * g.k + i) * g.k + j;
                let src_row = &cols[row * n..(row + 1) * n];
                for b in 0..g.batch {
                    let plane = &mut dx[(b * g.c + c) * g.h * g.w..(b * g.c + c + 1) * g.h * g.w];
                    for y in 0..g.oh {
                        let dst = &mut plane[(y + i) * g.w + j..(y + i) * g.w + j + g.ow];
                        let s = b * p + y * g.ow;
                        for (d, v) in dst.iter_mut().zip(&src_row[s..s + g.ow]) {
                            *d += *v;
                        }
                    }
                }
            }
        }
    }
}

fn to_cpu_err(e: LeptonError) -> CpuError {
    // Only reachable on an internal size bug; dfdx's backward closures must return its own error.
    let _ = e;
    CpuError::WrongNumElements
}

/// The convolution as a function of tensors. `input_grad = false` skips `dX` on backward
/// (the gradients of weight and bias are always computed when the input carries a tape).
///
/// Errors when a run-time extent is smaller than the kernel.
pub fn conv2d<B, const C: usize, H, W, const O: usize, const K: usize, E, T>(
    x: Tensor<(B, Const<C>, H, W), E, Cpu, T>,
    weight: &Tensor<Rank4<O, C, K, K>, E, Cpu>,
    bias: &Tensor<Rank1<O>, E, Cpu>,
    input_grad: bool,
) -> Result<Tensor<(B, Const<O>, H::Out, W::Out), E, Cpu, T>>
where
    B: Dim,
    H: ConvDim<K>,
    W: ConvDim<K>,
    E: CpuFloat,
    T: Tape<E, Cpu>,
    Cpu: Device<E>,
{
    let (b, _, h, w) = *x.shape();
    let (batch, hn, wn) = (b.size(), h.size(), w.size());
    let shape_err = || LeptonError::Shape {
        op: "conv2d",
        path: String::new(),
        expected: vec![batch, C, K.max(1), K.max(1)],
        found: vec![batch, C, hn, wn],
    };
    if K == 0 || hn < K || wn < K {
        return Err(shape_err());
    }
    let g = Geometry { batch, c: C, h: hn, w: wn, k: K, oh: hn - K + 1, ow: wn - K + 1 };
    let oh_dim = <H::Out as Dim>::from_size(g.oh).ok_or_else(shape_err)?;
    let ow_dim = <W::Out as Dim>::from_size(g.ow).ok_or_else(shape_err)?;

    let x = x.try_contiguous().map_err(|e| LeptonError::device("conv2d", e))?;
    let (x, mut tape) = x.split_tape();
    let xv = x.as_vec();
    let (n, p, ckk) = (g.n(), g.p(), g.ckk());
    let mut cols = vec![E::default(); ckk * n];
    im2col(&xv, &g, &mut cols);
    drop(xv);

    let wv = weight.as_vec();
    let bv = bias.as_vec();
    let mut out_t = vec![E::default(); O * n];
    matmul_into(
        "conv2d",
        &mut out_t,
        n,
        false,
        MatRef { data: &wv, rows: O, cols: ckk, rs: ckk, cs: 1 },
        MatRef { data: &cols, rows: ckk, cols: n, rs: n, cs: 1 },
    )?;
    let mut out = vec![E::default(); batch * O * p];
    for (bi, out_b) in out.chunks_exact_mut(O * p).enumerate() {
        for (o, out_bo) in out_b.chunks_exact_mut(p).enumerate() {
            let src = &out_t[o * n + bi * p..o * n + (bi + 1) * p];
            let bo = bv[o];
            for (d, s) in out_bo.iter_mut().zip(src) {
                *d = *s + bo;
            }
        }
    }
    drop(out_t);
    let dev = x.device().clone();
    let out = dev
        .try_tensor_from_vec(out, (b, Const::<O>, oh_dim, ow_dim))
        .map_err(|e| LeptonError::device("conv2d", e))?;

    if T::OWNS_TAPE {
        let (x_id, w_id, b_id, out_id) = (x.clone(), weight.clone(), bias.clone(), out.clone());
        tape.add_backward_op(move |grads| {
            // dY as (O × B·P)
            let gy: Vec<E> = E::grad_slice(grads.get_or_alloc_mut(&out_id)?).to_vec();
            let mut gt = vec![E::default(); O * n];
            for (bi, gy_b) in gy.chunks_exact(O * p).enumerate() {
                for (o, gy_bo) in gy_b.chunks_exact(p).enumerate() {
                    gt[o * n + bi * p..o * n + (bi + 1) * p].copy_from_slice(gy_bo);
                }
            }
            drop(gy);
            {
                let gb = E::grad_slice(grads.get_or_alloc_mut(&b_id)?);
                for (o, gbo) in gb.iter_mut().enumerate() {
                    let mut s = E::default();
                    for v in &gt[o * n..(o + 1) * n] {
                        s += *v;
                    }
                    *gbo += s;
                }
            }
            {
                let gw = E::grad_slice(grads.get_or_alloc_mut(&w_id)?);
                matmul_into(
                    "conv2d backward (weight)",
                    gw,
                    ckk,
                    true,
                    MatRef { data: &gt, rows: O, cols: n, rs: n, cs: 1 },
                    MatRef { data: &cols, rows: n, cols: ckk, rs: 1, cs: n },
                )
                .map_err(to_cpu_err)?;
            }
            if input_grad {
                // reuse the columns buffer for dcols = Wᵀ · dY
                let mut dcols = cols;
                matmul_into(
                    "conv2d backward (input)",
                    &mut dcols,
                    n,
                    false,
                    MatRef { data: &wv, rows: ckk, cols: O, rs: 1, cs: ckk },
                    MatRef { data: &gt, rows: O, cols: n, rs: n, cs: 1 },
                )
                .map_err(to_cpu_err)?;
                let gx = E::grad_slice(grads.get_or_alloc_mut(&x_id)?);
                col2im_add(&dcols, &g, gx);
            }
            Ok(())
        });
    }
    Ok(out.put_tape(tape))
}
