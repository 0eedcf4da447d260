//! 2-D convolution for stable Rust: a custom dfdx operation (im2col + GEMM) whose backward is
//! registered on the tape.
//!
//! dfdx 0.13 puts its own `conv2d` behind the `nightly` feature; this one runs on stable with the
//! same layout: input `(batch, C, H, W)`, weight `(O, C, K, K)`, bias `(O,)`, valid padding,
//! stride 1. Channel and kernel sizes are const generics, and the output extents are types too
//! (see [`ConvDim`]), so mismatched layers fail to compile.
//!
//! Forward: `cols[b·P + y·OW + x, c·K·K + i·K + j] = input[b, c, y + i, x + j]` (one patch per
//! row), then `out = cols · Wᵀ + bias` with `P = OH·OW`. Backward: `dW += dYᵀ · cols`,
//! `db += Σ dY`, and, unless the caller says the input needs no gradient, `dX = col2im(dY · W)`.

use dfdx::nn::modules::{ModuleVisitor, TensorCollection, TensorOptions};
use dfdx::prelude::{Const, Cpu, Dim, Dtype, HasShape, Rank1, Rank4, Tape, Tensor};
use dfdx::tensor::{CpuError, PutTape, SplitTape, Storage, TensorFromVec};
use dfdx::tensor_ops::{Device, ReshapeTo};
use rand_distr::Uniform;

use super::dims::ConvDim;
use super::direct_conv;
use rayon::prelude::*;

use super::kernels::{host_vec, matmul_into_seq, CpuFloat, MatRef};
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

/// Samples per work item: the unit of parallelism, and small enough that a chunk's patch rows
/// stay in cache (LeNet-5's first layer: 8 × 576 × 25 floats = 460 kB). Fixed, not derived
/// from the thread count, so sums happen in the same order on every machine.
const CHUNK: usize = 8;

/// Patch columns: `(C·K·K) × (B·P)` row-major. Row `c·K·K + i·K + j` holds
/// `input[b, c, y + i, x + j]` at column `b·P + y·OW + x`, so every copy is a run of `OW`
/// contiguous pixels, and the product `W · cols` comes out channel-major, as the output is laid
/// out.
fn im2col_into<E: Copy, const K: usize>(x: &[E], g: &Geometry, cols: &mut Vec<E>) {
    cols.clear();
    cols.reserve(g.ckk() * g.n());
    // filled in order (row, sample, output row): no zero-initialisation pass
    for r in 0..g.ckk() {
        let (c, i, j) = (r / (K * K), (r / K) % K, r % K);
        for b in 0..g.batch {
            let plane = &x[(b * g.c + c) * g.h * g.w..(b * g.c + c + 1) * g.h * g.w];
            for y in 0..g.oh {
                let s = (y + i) * g.w + j;
                cols.extend(plane[s..s + g.ow].iter().copied());
            }
        }
    }
}

/// Adds patch columns back onto the input layout (the adjoint of [`im2col_into`]).
fn col2im_add<E: CpuFloat, const K: usize>(cols: &[E], g: &Geometry, dx: &mut [E]) {
    let (p, n) = (g.p(), g.n());
    for (r, row) in cols.chunks_exact(n).enumerate() {
        let (c, i, j) = (r / (K * K), (r / K) % K, r % K);
        for (b, src_b) in row.chunks_exact(p).enumerate() {
            let plane = &mut dx[(b * g.c + c) * g.h * g.w..(b * g.c + c + 1) * g.h * g.w];
            for (y, src) in src_b.chunks_exact(g.ow).enumerate() {
                let d = (y + i) * g.w + j;
                for (t, v) in plane[d..d + g.ow].iter_mut().zip(src) {
                    *t += *v;
                }
            }
        }
    }
}

fn to_cpu_err(_e: LeptonError) -> CpuError {
    // Only reachable on an internal size bug; dfdx's backward closures must return its own error.
    CpuError::WrongNumElements
}

/// Forward of one chunk of samples into `out_c` `(b, O, P)`; the chunk's patch columns are
/// left in `cols` (for the backward pass), `y` is scratch. Buffers are reused across chunks
/// when the caller keeps them: large fresh allocations cost page faults and zeroing.
#[allow(clippy::too_many_arguments)]
fn forward_chunk<E: CpuFloat, const K: usize>(
    g: &Geometry,
    o: usize,
    x_c: &[E],
    wv: &[E],
    bv: &[E],
    out_c: &mut [E],
    cols: &mut Vec<E>,
    y: &mut Vec<E>,
) -> Result<()> {
    let (n, p, ckk) = (g.n(), g.p(), g.ckk());
    im2col_into::<E, K>(x_c, g, cols);
    // y (O × b·P) = W · cols (the product overwrites y: no need to clear it)
    y.resize(o * n, E::default());
    matmul_into_seq(
        "conv2d",
        y,
        n,
        false,
        MatRef { data: wv, rows: o, cols: ckk, rs: ckk, cs: 1 },
        MatRef { data: cols, rows: ckk, cols: n, rs: n, cs: 1 },
    )?;
    // (O, b, P) → (b, O, P), plus bias: runs of P
    for (bi, out_b) in out_c.chunks_exact_mut(o * p).enumerate() {
        for (oi, out_bo) in out_b.chunks_exact_mut(p).enumerate() {
            let bo = bv[oi];
            let src = &y[oi * n + bi * p..oi * n + (bi + 1) * p];
            for (d, v) in out_bo.iter_mut().zip(src) {
                *d = *v + bo;
            }
        }
    }
    Ok(())
}

/// Backward of one chunk, given the chunk's patch columns from the forward pass: returns the
/// chunk's `(dW, db)` and adds `dX` into `gx_c` if given.
fn backward_chunk<E: CpuFloat, const K: usize>(
    g: &Geometry,
    o: usize,
    mut cols: Vec<E>,
    wv: &[E],
    gy_c: &[E],
    gx_c: Option<&mut [E]>,
) -> Result<(Vec<E>, Vec<E>)> {
    let (n, p, ckk) = (g.n(), g.p(), g.ckk());
    // dY from (b, O, P) to (O × b·P): runs of P
    let mut gt = vec![E::default(); o * n];
    for (bi, gy_b) in gy_c.chunks_exact(o * p).enumerate() {
        for (oi, src) in gy_b.chunks_exact(p).enumerate() {
            gt[oi * n + bi * p..oi * n + (bi + 1) * p].copy_from_slice(src);
        }
    }
    let mut db = vec![E::default(); o];
    for (d, row) in db.iter_mut().zip(gt.chunks_exact(n)) {
        for v in row {
            *d += *v;
        }
    }
    // dW (O × CKK) = dY · colsᵀ
    let mut dw = vec![E::default(); o * ckk];
    matmul_into_seq(
        "conv2d backward (weight)",
        &mut dw,
        ckk,
        false,
        MatRef { data: &gt, rows: o, cols: n, rs: n, cs: 1 },
        MatRef { data: &cols, rows: n, cols: ckk, rs: 1, cs: n },
    )?;
    if let Some(gx_c) = gx_c {
        // dcols (CKK × b·P) = Wᵀ · dY, reusing the columns buffer
        matmul_into_seq(
            "conv2d backward (input)",
            &mut cols,
            n,
            false,
            MatRef { data: wv, rows: ckk, cols: o, rs: 1, cs: ckk },
            MatRef { data: &gt, rows: o, cols: n, rs: n, cs: 1 },
        )?;
        col2im_add::<E, K>(&cols, g, gx_c);
    }
    Ok((dw, db))
}

/// Inference through the direct kernel ([`super::direct_conv`]) when it applies: `f32`, at most
/// [`direct_conv::MAX_OUT_CHANNELS`] filters, rows of at least 8 pixels, AVX2 and FMA. Samples
/// run in parallel chunks of [`CHUNK`]. Returns `false` (nothing written) otherwise.
fn direct_f32<E: CpuFloat>(xv: &[E], wv: &[E], bv: &[E], g: &Geometry, o: usize, out: &mut [E]) -> bool {
    if o > direct_conv::MAX_OUT_CHANNELS || g.ow < 8 || !direct_conv::available() {
        return false;
    }
    let (Some(x), Some(w), Some(b)) = (f32_slice(xv), f32_slice(wv), f32_slice(bv)) else {
        return false;
    };
    let Some(out) = f32_slice_mut(out) else { return false };
    let e = direct_conv::Extents { c: g.c, h: g.h, w: g.w, k: g.k, o };
    let (sample_in, sample_out) = (g.c * g.h * g.w, o * g.p());
    if sample_in == 0 || sample_out == 0 {
        return false;
    }
    out.par_chunks_mut(CHUNK * sample_out)
        .zip(x.par_chunks(CHUNK * sample_in))
        // a refused sample (impossible once the extents fit) sends the whole batch to the
        // im2col path, which overwrites every output
        .all(|(out_c, x_c)| {
            out_c
                .chunks_exact_mut(sample_out)
                .zip(x_c.chunks_exact(sample_in))
                .all(|(out_s, x_s)| direct_conv::conv_sample_f32(x_s, w, b, e, out_s))
        })
}

/// `v` as `&[f32]` when `E` is `f32`.
fn f32_slice<E: 'static>(v: &[E]) -> Option<&[f32]> {
    if std::any::TypeId::of::<E>() == std::any::TypeId::of::<f32>() {
        // SAFETY: E is f32 (same TypeId), so the slice's layout is that of a [f32].
        Some(unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<f32>(), v.len()) })
    } else {
        None
    }
}

/// `v` as `&mut [f32]` when `E` is `f32`.
fn f32_slice_mut<E: 'static>(v: &mut [E]) -> Option<&mut [f32]> {
    if std::any::TypeId::of::<E>() == std::any::TypeId::of::<f32>() {
        // SAFETY: E is f32 (same TypeId); the exclusive borrow moves into the result.
        Some(unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<f32>(), v.len()) })
    } else {
        None
    }
}

/// The convolution as a function of tensors. `input_grad = false` skips `dX` on backward
/// (the gradients of weight and bias are always computed when the input carries a tape).
///
/// The batch is cut into chunks of 8 samples that run in parallel (rayon); per-chunk weight
/// gradients are summed in chunk order, so results are bit-identical for any thread count.
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
    let xv = host_vec(&x)?;
    let wv = host_vec(weight)?;
    let bv = host_vec(bias)?;
    let p = g.p();
    let (sample_in, sample_out) = (C * hn * wn, O * p);
    let chunk_geometry = move |samples: usize| Geometry { batch: samples, ..g };

    let mut out = vec![E::default(); batch * sample_out];
    // with a tape, the patch columns of every chunk, kept for the backward pass; without one
    // (inference), one set of buffers per worker, reused chunk after chunk
    let cols: Vec<Vec<E>> = if T::OWNS_TAPE {
        out.par_chunks_mut(CHUNK * sample_out).zip(xv.par_chunks(CHUNK * sample_in))
            .map_init(Vec::new, |y, (out_c, x_c)| {
                let gc = chunk_geometry(x_c.len() / sample_in);
                let mut cols = Vec::new();
                forward_chunk::<E, K>(&gc, O, x_c, &wv, &bv, out_c, &mut cols, y).map(|()| cols)
            })
            .collect::<Result<_>>()?
    } else if direct_f32::<E>(&xv, &wv, &bv, &g, O, &mut out) {
        Vec::new()
    } else {
        out.par_chunks_mut(CHUNK * sample_out).zip(xv.par_chunks(CHUNK * sample_in)).try_for_each_init(
            || (Vec::new(), Vec::new()),
            |(cols, y), (out_c, x_c)| {
                let gc = chunk_geometry(x_c.len() / sample_in);
                forward_chunk::<E, K>(&gc, O, x_c, &wv, &bv, out_c, cols, y)
            },
        )?;
        Vec::new()
    };
    drop(xv);
    let dev = x.device().clone();
    let out = dev
        .try_tensor_from_vec(out, (b, Const::<O>, oh_dim, ow_dim))
        .map_err(|e| LeptonError::device("conv2d", e))?;

    if T::OWNS_TAPE && batch > 0 {
        let (x_id, w_id, b_id, out_id) = (x.clone(), weight.clone(), bias.clone(), out.clone());
        tape.add_backward_op(move |grads| {
            let gy: Vec<E> = E::grad_slice(grads.get_or_alloc_mut(&out_id)?).to_vec();
            let parts: Vec<(Vec<E>, Vec<E>)> = if input_grad {
                let gx = E::grad_slice(grads.get_or_alloc_mut(&x_id)?);
                gx.par_chunks_mut(CHUNK * sample_in)
                    .zip(cols.into_par_iter())
                    .zip(gy.par_chunks(CHUNK * sample_out))
                    .map(|((gx_c, cols_c), gy_c)| {
                        let gc = chunk_geometry(gy_c.len() / sample_out);
                        backward_chunk::<E, K>(&gc, O, cols_c, &wv, gy_c, Some(gx_c))
                    })
                    .collect::<Result<_>>()
            } else {
                cols.into_par_iter()
                    .zip(gy.par_chunks(CHUNK * sample_out))
                    .map(|(cols_c, gy_c)| {
                        let gc = chunk_geometry(gy_c.len() / sample_out);
                        backward_chunk::<E, K>(&gc, O, cols_c, &wv, gy_c, None)
                    })
                    .collect::<Result<_>>()
            }
            .map_err(to_cpu_err)?;
            // sum the chunks in order: the same bits for any number of threads
            {
                let gw = E::grad_slice(grads.get_or_alloc_mut(&w_id)?);
                for (dw, _) in &parts {
                    for (g, v) in gw.iter_mut().zip(dw) {
                        *g += *v;
                    }
                }
            }
            let gb = E::grad_slice(grads.get_or_alloc_mut(&b_id)?);
            for (_, db) in &parts {
                for (g, v) in gb.iter_mut().zip(db) {
                    *g += *v;
                }
            }
            Ok(())
        });
    }
    Ok(out.put_tape(tape))
}
