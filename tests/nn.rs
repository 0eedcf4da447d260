//! Tests of `lepton::nn`: the stable-Rust convolution, max pooling and linear operations
//! (forward against naive loops, backward against central finite differences and naive
//! adjoints, in f64), the LeNet models (shapes, parameter counts, forward against a naive
//! re-implementation) and safetensors checkpoints (bit-exact round trips, typed errors that
//! leave the model unchanged, atomic writes).

use std::path::{Path, PathBuf};

use dfdx::prelude::{Const, Cpu, Gradients, HasShape, Rank0, Rank1, Rank2, Rank4, Tensor};
use dfdx::tensor::{SampleTensor, Trace, TensorFromVec, ZerosTensor};
use dfdx::tensor_ops::{Backward, SumTo};
use lepton::data::Dataset;
use lepton::nn::checkpoint::{load_safetensors, save_safetensors, tensors_of};
use lepton::nn::{conv2d, linear, linear_layer, max_pool2d, size_report, Classifier, Conv2d, LeNet300, LeNet5, LeNet5Padded, MaxPool2d, SmallMlp};
use lepton::train::{Session, TrainConfig};
use lepton::{nn::Arch, LeptonError};

// ---------------------------------------------------------------------------------------
// Tolerances.

/// Relative tolerance of an analytic gradient against a central finite difference (f64):
/// `|analytic - numeric| <= FD_RTOL * max(1, |analytic|, |numeric|)`.
const FD_RTOL: f64 = 1e-6;
/// Step of the central finite differences. The losses below are linear (conv, linear) or
/// piecewise linear (max pool) in each input, so the truncation error is zero and only
/// rounding (~1e-16 · |loss| / step) remains.
const FD_STEP: f64 = 1e-5;
/// Relative tolerance of an f64 operation against a naive f64 loop (only summation order
/// differs).
const F64_RTOL: f64 = 1e-12;
/// Absolute tolerance of an f32 model's logits against a naive f64 re-implementation.
const F32_LOGIT_ATOL: f64 = 1e-4;

fn close(a: f64, b: f64, rtol: f64) -> bool {
    (a - b).abs() <= rtol * 1f64.max(a.abs()).max(b.abs())
}

#[track_caller]
fn assert_all_close(what: &str, actual: &[f64], expected: &[f64], rtol: f64) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(close(*a, *e, rtol), "{what}[{i}]: got {a}, expected {e} (rtol {rtol})");
    }
}

/// The fixed random weighting `r` that turns an output into the scalar loss `Σ out·r`.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Central finite differences of `f` at `v`, one coordinate at a time.
fn finite_diff(v: &[f64], mut f: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let mut p = v.to_vec();
    (0..v.len())
        .map(|i| {
            let orig = p[i];
            p[i] = orig + FD_STEP;
            let up = f(&p);
            p[i] = orig - FD_STEP;
            let down = f(&p);
            p[i] = orig;
            (up - down) / (2.0 * FD_STEP)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Naive reference implementations (f64, plain loops over row-major buffers).

/// Valid, stride-1 convolution: `x (n, c, h, w)`, `wt (o, c, k, k)`, `b (o,)`.
#[allow(clippy::too_many_arguments)]
fn naive_conv(x: &[f64], wt: &[f64], b: &[f64], n: usize, c: usize, h: usize, w: usize, o: usize, k: usize) -> Vec<f64> {
    let (oh, ow) = (h - k + 1, w - k + 1);
    let mut out = vec![0.0; n * o * oh * ow];
    for bi in 0..n {
        for oi in 0..o {
            for y in 0..oh {
                for xx in 0..ow {
                    let mut s = b[oi];
                    for ci in 0..c {
                        for i in 0..k {
                            for j in 0..k {
                                s += wt[((oi * c + ci) * k + i) * k + j] * x[((bi * c + ci) * h + y + i) * w + xx + j];
                            }
                        }
                    }
                    out[((bi * o + oi) * oh + y) * ow + xx] = s;
                }
            }
        }
    }
    out
}

/// Gradients of `Σ conv(x, wt, b)·r` by the adjoint formulas, as (dx, dw, db).
#[allow(clippy::too_many_arguments)]
fn naive_conv_grads(
    x: &[f64],
    wt: &[f64],
    r: &[f64],
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    k: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (oh, ow) = (h - k + 1, w - k + 1);
    let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; wt.len()], vec![0.0; o]);
    for bi in 0..n {
        for oi in 0..o {
            for y in 0..oh {
                for xx in 0..ow {
                    let g = r[((bi * o + oi) * oh + y) * ow + xx];
                    db[oi] += g;
                    for ci in 0..c {
                        for i in 0..k {
                            for j in 0..k {
                                let xi = ((bi * c + ci) * h + y + i) * w + xx + j;
                                let wi = ((oi * c + ci) * k + i) * k + j;
                                dw[wi] += g * x[xi];
                                dx[xi] += g * wt[wi];
                            }
                        }
                    }
                }
            }
        }
    }
    (dx, dw, db)
}

/// `k`×`k` max pooling with stride `k` over `planes` planes of `h`×`w`.
fn naive_pool(x: &[f64], planes: usize, h: usize, w: usize, k: usize) -> Vec<f64> {
    let (oh, ow) = (h / k, w / k);
    let mut out = Vec::with_capacity(planes * oh * ow);
    for p in 0..planes {
        for y in 0..oh {
            for xx in 0..ow {
                let mut m = f64::NEG_INFINITY;
                for i in 0..k {
                    for j in 0..k {
                        m = m.max(x[(p * h + y * k + i) * w + xx * k + j]);
                    }
                }
                out.push(m);
            }
        }
    }
    out
}

/// `x (n, in) · wᵀ (in, out) + b`.
fn naive_linear(x: &[f64], wt: &[f64], b: &[f64], n: usize, inp: usize, out: usize) -> Vec<f64> {
    let mut y = vec![0.0; n * out];
    for i in 0..n {
        for o in 0..out {
            y[i * out + o] = b[o] + (0..inp).map(|j| x[i * inp + j] * wt[o * inp + j]).sum::<f64>();
        }
    }
    y
}

fn relu(v: Vec<f64>) -> Vec<f64> {
    v.into_iter().map(|x| x.max(0.0)).collect()
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

/// The named tensor of a model (from `tensors_of`), as f64.
fn param(tensors: &[(String, Vec<usize>, Vec<f32>)], name: &str) -> Vec<f64> {
    let (_, _, v) = tensors.iter().find(|(n, _, _)| n == name).unwrap_or_else(|| panic!("no tensor {name}"));
    to_f64(v)
}

fn bits(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    tensors.iter().map(|(n, s, v)| (n.clone(), s.clone(), v.iter().map(|x| x.to_bits()).collect())).collect()
}

// ---------------------------------------------------------------------------------------
// conv2d

// Small case: batch 2, 2 input channels, 3 output channels, 3×3 kernel, 6×6 images.
type ConvX = Rank4<2, 2, 6, 6>;
type ConvW = Rank4<3, 2, 3, 3>;
type ConvY = Rank4<2, 3, 4, 4>;

struct ConvCase {
    dev: Cpu,
    x: Tensor<ConvX, f64, Cpu>,
    w: Tensor<ConvW, f64, Cpu>,
    b: Tensor<Rank1<3>, f64, Cpu>,
    r: Tensor<ConvY, f64, Cpu>,
}

fn conv_case(seed: u64) -> ConvCase {
    let dev = Cpu::seed_from_u64(seed);
    let x = dev.sample_normal::<ConvX>();
    let w = dev.sample_normal::<ConvW>();
    let b = dev.sample_normal::<Rank1<3>>();
    let r = dev.sample_normal::<ConvY>();
    ConvCase { dev, x, w, b, r }
}

impl ConvCase {
    /// `Σ conv2d(x, w, b)·r` evaluated by lepton's forward (no tape).
    fn loss(&self, xv: &[f64], wv: &[f64], bv: &[f64]) -> f64 {
        let x = self.dev.tensor_from_vec(xv.to_vec(), ConvX::default());
        let w = self.dev.tensor_from_vec(wv.to_vec(), ConvW::default());
        let b = self.dev.tensor_from_vec(bv.to_vec(), Rank1::<3>::default());
        let out = conv2d(x, &w, &b, true).unwrap();
        dot(&out.as_vec(), &self.r.as_vec())
    }

    /// Backward of `Σ conv2d(x, w, b)·r` into `grads` (which may already hold gradients).
    fn backward(&self, grads: Gradients<f64, Cpu>, input_grad: bool) -> Gradients<f64, Cpu> {
        let out = conv2d(self.x.trace(grads), &self.w, &self.b, input_grad).unwrap();
        let loss: Tensor<Rank0, f64, Cpu, _> = (out * self.r.clone()).sum();
        loss.backward()
    }
}

#[test]
fn conv2d_forward_matches_hand_computed_values() {
    // 1×1×3×3 input 1..9, one 2×2 filter [[1, 0], [0, -1]], bias 0.5:
    // out[y][x] = in[y][x] - in[y+1][x+1] + 0.5 = -4 + 0.5 everywhere.
    let dev = Cpu::default();
    let x = dev.tensor_from_vec((1..=9).map(f64::from).collect(), Rank4::<1, 1, 3, 3>::default());
    let w = dev.tensor_from_vec(vec![1.0, 0.0, 0.0, -1.0], Rank4::<1, 1, 2, 2>::default());
    let b = dev.tensor_from_vec(vec![0.5], Rank1::<1>::default());
    let out: Tensor<Rank4<1, 1, 2, 2>, f64, Cpu> = conv2d(x.clone(), &w, &b, true).unwrap();
    assert_eq!(out.as_vec(), vec![-3.5; 4]);

    // Two filters on a 2-channel 2×2 input: filter 0 picks x[0, 0, 0, 0]; filter 1 sums
    // channel 0 and ten times channel 1, minus 1. Checks channel and filter order.
    let x2 = dev.tensor_from_vec(
        vec![1.0, 2.0, 3.0, 4.0, /* channel 1 */ 10.0, 20.0, 30.0, 40.0],
        Rank4::<1, 2, 2, 2>::default(),
    );
    let w2 = dev.tensor_from_vec(
        vec![
            1.0, 0.0, 0.0, 0.0, /* f0 c1 */ 0.0, 0.0, 0.0, 0.0, // filter 0: x[0,0,0,0]
            1.0, 1.0, 1.0, 1.0, /* f1 c1 */ 10.0, 10.0, 10.0, 10.0, // filter 1: 10 + 10·100
        ],
        Rank4::<2, 2, 2, 2>::default(),
    );
    let b2 = dev.tensor_from_vec(vec![0.0, -1.0], Rank1::<2>::default());
    let out2: Tensor<Rank4<1, 2, 1, 1>, f64, Cpu> = conv2d(x2, &w2, &b2, true).unwrap();
    assert_eq!(out2.as_vec(), vec![1.0, 1009.0]);
}

#[test]
fn conv2d_forward_matches_naive_convolution() {
    let c = conv_case(1);
    let out: Tensor<ConvY, f64, Cpu> = conv2d(c.x.clone(), &c.w, &c.b, true).unwrap();
    let expected = naive_conv(&c.x.as_vec(), &c.w.as_vec(), &c.b.as_vec(), 2, 2, 6, 6, 3, 3);
    assert_all_close("conv2d forward", &out.as_vec(), &expected, F64_RTOL);

    // Through the layer type, and with run-time extents: same numbers.
    let layer = Conv2d::<2, 3, 3, f64, Cpu> { weight: c.w.clone(), bias: c.b.clone() };
    let out_layer = layer.try_forward(c.x.clone()).unwrap();
    assert_eq!(out_layer.as_vec(), out.as_vec());
    let x_dyn: Tensor<(usize, Const<2>, usize, usize), f64, Cpu> =
        c.dev.tensor_from_vec(c.x.as_vec(), (2, Const::<2>, 6, 6));
    let out_dyn = conv2d(x_dyn, &c.w, &c.b, true).unwrap();
    assert_eq!(*out_dyn.shape(), (2, Const::<3>, 4, 4));
    assert_eq!(out_dyn.as_vec(), out.as_vec());
}

#[test]
fn conv2d_forward_and_backward_match_naive_at_lenet_size() {
    // LeNet-5's second convolution on a batch of 19: several chunks of samples (the last one
    // partial) and products large enough for the threaded paths.
    let dev = Cpu::seed_from_u64(2);
    let x = dev.sample_normal::<Rank4<19, 6, 12, 12>>();
    let w = dev.sample_normal::<Rank4<16, 6, 5, 5>>();
    let b = dev.sample_normal::<Rank1<16>>();
    let r = dev.sample_normal::<Rank4<19, 16, 8, 8>>();
    let out = conv2d(x.leaky_trace(), &w, &b, true).unwrap();
    let expected = naive_conv(&x.as_vec(), &w.as_vec(), &b.as_vec(), 19, 6, 12, 12, 16, 5);
    assert_all_close("conv2d forward (LeNet size)", &out.as_vec(), &expected, F64_RTOL);
    let loss: Tensor<Rank0, f64, Cpu, _> = (out * r.clone()).sum();
    let grads = loss.backward();
    let (dx, dw, db) = naive_conv_grads(&x.as_vec(), &w.as_vec(), &r.as_vec(), 19, 6, 12, 12, 16, 5);
    assert_all_close("dL/dx", &grads.get(&x).as_vec(), &dx, F64_RTOL);
    assert_all_close("dL/dw", &grads.get(&w).as_vec(), &dw, F64_RTOL);
    assert_all_close("dL/db", &grads.get(&b).as_vec(), &db, F64_RTOL);
    // Run-time batch size of 1 and 9 (one full chunk plus one sample): same numbers as the
    // first samples of the big batch.
    let xv = x.as_vec();
    for n in [1usize, 9] {
        let xs: Tensor<(usize, Const<6>, Const<12>, Const<12>), f64, Cpu> =
            dev.tensor_from_vec(xv[..n * 6 * 144].to_vec(), (n, Const, Const, Const));
        let o = conv2d(xs, &w, &b, true).unwrap();
        assert_all_close("conv2d forward (sub-batch)", &o.as_vec(), &expected[..n * 16 * 64], F64_RTOL);
    }
}

#[test]
fn conv2d_gradients_match_finite_differences() {
    let c = conv_case(3);
    let grads = c.backward(Gradients::leaky(), true);
    let (xv, wv, bv) = (c.x.as_vec(), c.w.as_vec(), c.b.as_vec());

    let fd_x = finite_diff(&xv, |p| c.loss(p, &wv, &bv));
    let fd_w = finite_diff(&wv, |p| c.loss(&xv, p, &bv));
    let fd_b = finite_diff(&bv, |p| c.loss(&xv, &wv, p));
    let (gx, gw, gb) = (grads.get(&c.x).as_vec(), grads.get(&c.w).as_vec(), grads.get(&c.b).as_vec());
    assert_all_close("conv2d dL/dx vs finite differences", &gx, &fd_x, FD_RTOL);
    assert_all_close("conv2d dL/dw vs finite differences", &gw, &fd_w, FD_RTOL);
    assert_all_close("conv2d dL/db vs finite differences", &gb, &fd_b, FD_RTOL);
    // The check is not vacuous: every gradient has entries of order one.
    for (name, g) in [("dx", &gx), ("dw", &gw), ("db", &gb)] {
        assert!(g.iter().any(|v| v.abs() > 0.1), "{name} is (nearly) zero: {g:?}");
    }
    // The bias gradient is the plain sum of the weighting per output channel.
    let r = c.r.as_vec();
    for (o, g) in gb.iter().enumerate() {
        let s: f64 = (0..2).flat_map(|bi| r[(bi * 3 + o) * 16..(bi * 3 + o + 1) * 16].iter()).sum();
        assert!(close(*g, s, F64_RTOL), "db[{o}] = {g}, Σ r = {s}");
    }
}

#[test]
fn conv2d_gradients_accumulate_across_backward_passes() {
    let c = conv_case(4);
    let once = c.backward(Gradients::leaky(), true);
    let twice = c.backward(c.backward(Gradients::leaky(), true), true);
    for (name, g1, g2) in [
        ("dx", once.get(&c.x).as_vec(), twice.get(&c.x).as_vec()),
        ("dw", once.get(&c.w).as_vec(), twice.get(&c.w).as_vec()),
        ("db", once.get(&c.b).as_vec(), twice.get(&c.b).as_vec()),
    ] {
        let doubled: Vec<f64> = g1.iter().map(|v| 2.0 * v).collect();
        assert_all_close(name, &g2, &doubled, F64_RTOL);
    }
}

#[test]
fn conv2d_without_input_grad_leaves_input_gradient_zero() {
    let c = conv_case(5);
    // Pre-allocate (zero) gradients for x, so that reading them cannot panic either way.
    let fresh = || {
        let mut g = Gradients::leaky();
        g.try_alloc_for(&c.x).unwrap();
        g
    };
    let without = c.backward(fresh(), false);
    let with = c.backward(fresh(), true);
    assert!(without.get(&c.x).as_vec().iter().all(|&v| v == 0.0), "input_grad=false wrote dL/dx");
    assert!(with.get(&c.x).as_vec().iter().any(|&v| v.abs() > 0.1), "input_grad=true left dL/dx zero");
    // Weight and bias gradients do not depend on the flag.
    assert_eq!(without.get(&c.w).as_vec(), with.get(&c.w).as_vec());
    assert_eq!(without.get(&c.b).as_vec(), with.get(&c.b).as_vec());
    // And the forward pass neither.
    let a: Tensor<ConvY, f64, Cpu> = conv2d(c.x.clone(), &c.w, &c.b, false).unwrap();
    let b: Tensor<ConvY, f64, Cpu> = conv2d(c.x.clone(), &c.w, &c.b, true).unwrap();
    assert_eq!(a.as_vec(), b.as_vec());
}

#[test]
fn conv2d_rejects_runtime_extent_smaller_than_kernel() {
    let dev = Cpu::default();
    let x: Tensor<(usize, Const<1>, usize, usize), f64, Cpu> = dev.tensor_from_vec(vec![0.0; 2 * 4 * 6], (2, Const::<1>, 4, 6));
    let w = dev.tensor_from_vec(vec![0.0; 25], Rank4::<1, 1, 5, 5>::default());
    let b = dev.tensor_from_vec(vec![0.0], Rank1::<1>::default());
    match conv2d(x, &w, &b, true) {
        Err(LeptonError::Shape { op, found, .. }) => {
            assert_eq!(op, "conv2d");
            assert_eq!(found, vec![2, 1, 4, 6]);
        }
        other => panic!("expected a Shape error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// max_pool2d

#[test]
fn max_pool2d_forward_and_gradient_routing_on_hand_written_example() {
    let dev = Cpu::default();
    #[rustfmt::skip]
    let input = vec![
        1.0,  3.0,  2.0, 0.0,
        4.0, -1.0,  5.0, 6.0,
        0.0,  2.0, -3.0, 1.0,
        7.0,  1.0,  8.0, 8.0, // tie in the last window: the first 8 wins
    ];
    let x = dev.tensor_from_vec(input, Rank4::<1, 1, 4, 4>::default());
    let out = max_pool2d::<2, _, 1, _, _, _, _>(x.leaky_trace()).unwrap();
    assert_eq!(out.as_vec(), vec![4.0, 6.0, 7.0, 8.0]);
    let up = dev.tensor_from_vec(vec![1.0, 2.0, 3.0, 4.0], Rank4::<1, 1, 2, 2>::default());
    let loss: Tensor<Rank0, f64, Cpu, _> = (out * up).sum();
    let grads = loss.backward();
    #[rustfmt::skip]
    let expected = vec![
        0.0, 0.0, 0.0, 0.0,
        1.0, 0.0, 0.0, 2.0,
        0.0, 0.0, 0.0, 0.0,
        3.0, 0.0, 4.0, 0.0,
    ];
    assert_eq!(grads.get(&x).as_vec(), expected);

    // The layer type computes the same.
    let x2 = dev.tensor_from_vec(grads.get(&x).as_vec(), Rank4::<1, 1, 4, 4>::default());
    assert_eq!(MaxPool2d::<2>.try_forward(x2).unwrap().as_vec(), vec![1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn max_pool2d_matches_naive_and_finite_differences() {
    // 7×7 planes: pooling with stride 2 drops the last row and column (floor), whose
    // gradient must stay zero.
    type X = Rank4<2, 3, 7, 7>;
    type Y = Rank4<2, 3, 3, 3>;
    let dev = Cpu::seed_from_u64(6);
    let x = dev.sample_normal::<X>();
    let r = dev.sample_normal::<Y>();
    let xv = x.as_vec();
    let out = max_pool2d::<2, _, 3, _, _, _, _>(x.leaky_trace()).unwrap();
    assert_eq!(out.as_vec(), naive_pool(&xv, 6, 7, 7, 2));
    let loss: Tensor<Rank0, f64, Cpu, _> = (out * r.clone()).sum();
    let g = loss.backward().get(&x).as_vec();

    // Finite differences are exact only away from ties: check the windows' gaps first.
    for p in 0..6 {
        for y in 0..3 {
            for xx in 0..3 {
                let mut w: Vec<f64> = (0..4).map(|i| xv[(p * 7 + y * 2 + i / 2) * 7 + xx * 2 + i % 2]).collect();
                w.sort_by(f64::total_cmp);
                assert!(w[3] - w[2] > 10.0 * FD_STEP, "window too close to a tie for finite differences");
            }
        }
    }
    let rv = r.as_vec();
    let fd = finite_diff(&xv, |p| {
        let t = dev.tensor_from_vec(p.to_vec(), X::default());
        dot(&max_pool2d::<2, _, 3, _, _, _, _>(t).unwrap().as_vec(), &rv)
    });
    assert_all_close("max_pool2d dL/dx vs finite differences", &g, &fd, FD_RTOL);

    // Routing: each window's gradient lands on its argmax only; everything else is zero.
    let nonzero = g.iter().filter(|v| **v != 0.0).count();
    assert_eq!(nonzero, 2 * 3 * 3 * 3, "one gradient entry per output");
    let mut routed: Vec<f64> = g.iter().copied().filter(|v| *v != 0.0).collect();
    let mut ups = rv.clone();
    routed.sort_by(f64::total_cmp);
    ups.sort_by(f64::total_cmp);
    assert_eq!(routed, ups, "the gradient entries are exactly the upstream values");
    for p in 0..6 {
        for i in 0..7 {
            assert_eq!(g[(p * 7 + 6) * 7 + i], 0.0, "dropped last row got a gradient");
            assert_eq!(g[(p * 7 + i) * 7 + 6], 0.0, "dropped last column got a gradient");
        }
    }
}

/// Inference (no tape) pools without keeping argmaxes, in parallel; it must give the taped
/// path's values bit for bit, on the edge cases too: ties of `-0.0` and `0.0` (the first one
/// wins), NaNs next to numbers (skipped), a window of NaNs (NaN), of `-inf` (`-inf`), and many
/// planes (more than one parallel task).
#[test]
fn max_pool2d_inference_equals_taped_values_on_edge_cases() {
    let dev = Cpu::default();
    let (nan, inf) = (f32::NAN, f32::INFINITY);
    #[rustfmt::skip]
    let plane = vec![
        -0.0, 0.0,   nan, 2.0,   nan, nan,    -inf, -inf,
         0.0, -0.0,  1.0, nan,   nan, nan,    -inf, -inf,
         3.0, nan,   -inf, 5.0,  0.0, -0.0,   7.0, 7.0,
         nan, -1.0,  nan, -inf,  -0.0, -0.0,  -2.0, 8.0,
    ];
    let want_plane = [-0.0f32, 2.0, nan, -inf, 3.0, 5.0, 0.0, 8.0];
    let planes = 37;
    let input: Vec<f32> = (0..planes).flat_map(|p| plane.iter().map(move |v| if v.is_finite() { v * (p as f32 + 1.0) } else { *v })).collect();
    let x = dev.tensor_from_vec(input, (Const::<37>, Const::<1>, Const::<4>, Const::<8>));
    let taped = max_pool2d::<2, _, 1, _, _, _, _>(x.leaky_trace()).unwrap().as_vec();
    let plain = max_pool2d::<2, _, 1, _, _, _, _>(x.clone()).unwrap().as_vec();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    assert_eq!(bits(&plain), bits(&taped), "inference pooling differs from the taped path");
    let want0: Vec<u32> = bits(&want_plane);
    assert_eq!(bits(&plain[..8]), want0, "first plane against hand-computed values");
    assert_eq!(plain[36 * 8 + 1], 2.0 * 37.0);
    assert_eq!(plain.len(), planes * 8);

    // 3×3 windows take the general loop: the same values as the taped path
    let dev = Cpu::seed_from_u64(9);
    let mut v = dev.sample_normal::<Rank4<2, 5, 7, 7>>().as_vec();
    for (i, x) in v.iter_mut().enumerate() {
        match i % 11 {
            0 => *x = nan,
            3 => *x = -0.0,
            5 => *x = 0.0,
            7 => *x = -inf,
            _ => {}
        }
    }
    let x3 = dev.tensor_from_vec(v, Rank4::<2, 5, 7, 7>::default());
    let taped = max_pool2d::<3, _, 5, _, _, _, _>(x3.leaky_trace()).unwrap().as_vec();
    let plain = max_pool2d::<3, _, 5, _, _, _, _>(x3).unwrap().as_vec();
    assert_eq!(plain.len(), 2 * 5 * 2 * 2);
    assert_eq!(bits(&plain), bits(&taped), "3x3 inference pooling differs from the taped path");
}

/// At inference an f32 convolution with at most 16 filters runs the direct kernel (more run
/// im2col + GEMM); its outputs must match a naive f64 convolution (the im2col path is checked
/// against the same loop in f64 above): LeNet-5's two layer shapes, pruned ones, a wide one.
#[test]
fn conv2d_f32_inference_matches_naive_convolution() {
    /// Worst-case f32 rounding of a sum of `n` non-negative terms, relative to the sum:
    /// `n · ε` (inputs, weights and biases are in 0..1 here, so the sum bounds the terms).
    fn tol(terms: usize, sum: f64) -> f64 {
        terms as f64 * f64::from(f32::EPSILON) * sum.abs().max(1.0)
    }
    macro_rules! check {
        ($c:literal, $o:literal, $h:literal, $seed:literal, $n:literal) => {{
            let (c, o, h, n) = ($c, $o, $h, $n);
            let dev = Cpu::seed_from_u64($seed);
            let x: Tensor<(usize, Const<$c>, Const<$h>, Const<$h>), f32, Cpu> =
                dev.sample_uniform_like(&(n, Const::<$c>, Const::<$h>, Const::<$h>));
            let w: Tensor<Rank4<$o, $c, 5, 5>, f32, Cpu> = dev.sample_uniform();
            let b: Tensor<Rank1<$o>, f32, Cpu> = dev.sample_uniform();
            let out = conv2d(x.clone(), &w, &b, false).unwrap();
            let expected = naive_conv(&to_f64(&x.as_vec()), &to_f64(&w.as_vec()), &to_f64(&b.as_vec()), n, c, h, h, o, 5);
            let got = to_f64(&out.as_vec());
            assert_eq!(got.len(), expected.len());
            for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                assert!((g - e).abs() <= tol(c * 25 + 1, *e), "C={c} O={o} H={h}: output {i}: {g} vs {e}");
            }
            // the taped path (im2col + GEMM) computes the same outputs within f32 rounding
            let taped = conv2d(x.leaky_trace(), &w, &b, false).unwrap().as_vec();
            for (i, (t, g)) in to_f64(&taped).iter().zip(&got).enumerate() {
                assert!((t - g).abs() <= 2.0 * tol(c * 25 + 1, *g), "C={c} O={o} H={h}: taped output {i}: {t} vs {g}");
            }
        }};
    }
    check!(1, 6, 28, 1, 11);
    check!(6, 16, 12, 2, 9);
    check!(3, 8, 12, 3, 17);
    check!(1, 3, 28, 4, 1);
    check!(2, 20, 12, 5, 3);
}

// ---------------------------------------------------------------------------------------
// linear

#[test]
fn linear_forward_matches_hand_computed_and_naive_values() {
    let dev = Cpu::default();
    // x = [[1, 2]], W = [[1, 0], [0, 1], [2, -1]], b = [0.5, -0.5, 0]  →  [1.5, 1.5, 0]
    let x = dev.tensor_from_vec(vec![1.0, 2.0], Rank2::<1, 2>::default());
    let w = dev.tensor_from_vec(vec![1.0, 0.0, 0.0, 1.0, 2.0, -1.0], Rank2::<3, 2>::default());
    let b = dev.tensor_from_vec(vec![0.5, -0.5, 0.0], Rank1::<3>::default());
    assert_eq!(linear(x, &w, &b, true).unwrap().as_vec(), vec![1.5, 1.5, 0.0]);

    let dev = Cpu::seed_from_u64(7);
    let x = dev.sample_normal::<Rank2<5, 7>>();
    let w = dev.sample_normal::<Rank2<4, 7>>();
    let b = dev.sample_normal::<Rank1<4>>();
    let out = linear(x.clone(), &w, &b, true).unwrap();
    let expected = naive_linear(&x.as_vec(), &w.as_vec(), &b.as_vec(), 5, 7, 4);
    assert_all_close("linear forward", &out.as_vec(), &expected, F64_RTOL);
    // Run-time batch size gives the same numbers.
    let x_dyn: Tensor<(usize, Const<7>), f64, Cpu> = dev.tensor_from_vec(x.as_vec(), (5, Const::<7>));
    let out_dyn = linear(x_dyn, &w, &b, true).unwrap();
    assert_eq!(out_dyn.shape().0, 5);
    assert_eq!(out_dyn.as_vec(), out.as_vec());

    // A batch of 300 at inference runs in blocks of 64 rows (the last one 44 rows): the same
    // values as the naive loop and as the taped path, which runs one product.
    let x = dev.sample_normal::<Rank2<300, 37>>();
    let w = dev.sample_normal::<Rank2<23, 37>>();
    let b = dev.sample_normal::<Rank1<23>>();
    let expected = naive_linear(&x.as_vec(), &w.as_vec(), &b.as_vec(), 300, 37, 23);
    let plain = linear(x.clone(), &w, &b, true).unwrap().as_vec();
    assert_all_close("linear forward, blocked inference", &plain, &expected, F64_RTOL);
    let taped = linear(x.leaky_trace(), &w, &b, true).unwrap().as_vec();
    assert_all_close("linear forward, taped", &taped, &expected, F64_RTOL);
    // a zero-width input at that batch: the bias alone
    let b3 = dev.tensor_from_vec(vec![0.5, -1.0, 2.0], Rank1::<3>::default());
    let none = linear(dev.zeros::<Rank2<300, 0>>(), &dev.zeros::<Rank2<3, 0>>(), &b3, true).unwrap().as_vec();
    assert_eq!(none, [0.5, -1.0, 2.0].repeat(300));
}

#[test]
fn linear_gradients_match_finite_differences() {
    let dev = Cpu::seed_from_u64(8);
    let x = dev.sample_normal::<Rank2<5, 7>>();
    let w = dev.sample_normal::<Rank2<4, 7>>();
    let b = dev.sample_normal::<Rank1<4>>();
    let r = dev.sample_normal::<Rank2<5, 4>>();
    let (xv, wv, bv, rv) = (x.as_vec(), w.as_vec(), b.as_vec(), r.as_vec());

    let loss_at = |xv: &[f64], wv: &[f64], bv: &[f64]| {
        let x = dev.tensor_from_vec(xv.to_vec(), Rank2::<5, 7>::default());
        let w = dev.tensor_from_vec(wv.to_vec(), Rank2::<4, 7>::default());
        let b = dev.tensor_from_vec(bv.to_vec(), Rank1::<4>::default());
        dot(&linear(x, &w, &b, true).unwrap().as_vec(), &rv)
    };
    let backward = |mut grads: Gradients<f64, Cpu>, input_grad: bool| {
        grads.try_alloc_for(&x).unwrap();
        let out = linear(x.trace(grads), &w, &b, input_grad).unwrap();
        let loss: Tensor<Rank0, f64, Cpu, _> = (out * r.clone()).sum();
        loss.backward()
    };
    let grads = backward(Gradients::leaky(), true);
    let (gx, gw, gb) = (grads.get(&x).as_vec(), grads.get(&w).as_vec(), grads.get(&b).as_vec());
    assert_all_close("linear dL/dx", &gx, &finite_diff(&xv, |p| loss_at(p, &wv, &bv)), FD_RTOL);
    assert_all_close("linear dL/dw", &gw, &finite_diff(&wv, |p| loss_at(&xv, p, &bv)), FD_RTOL);
    assert_all_close("linear dL/db", &gb, &finite_diff(&bv, |p| loss_at(&xv, &wv, p)), FD_RTOL);
    assert!(gx.iter().chain(&gw).chain(&gb).any(|v| v.abs() > 0.1));

    // input_grad = false: same weight and bias gradients, no input gradient.
    let no_input = backward(Gradients::leaky(), false);
    assert!(no_input.get(&x).as_vec().iter().all(|&v| v == 0.0));
    assert_eq!(no_input.get(&w).as_vec(), gw);
    assert_eq!(no_input.get(&b).as_vec(), gb);

    // A second backward pass into the same gradients accumulates.
    let twice = backward(backward(Gradients::leaky(), true), true);
    let doubled = |v: &[f64]| v.iter().map(|x| 2.0 * x).collect::<Vec<_>>();
    assert_all_close("accumulated dL/dw", &twice.get(&w).as_vec(), &doubled(&gw), F64_RTOL);
    assert_all_close("accumulated dL/dx", &twice.get(&x).as_vec(), &doubled(&gx), F64_RTOL);
}

#[test]
fn linear_layer_uses_dfdx_linear_weights() {
    use dfdx::nn::BuildModule;
    let dev = Cpu::seed_from_u64(9);
    let layer = <dfdx::nn::modules::Linear<6, 3, f64, Cpu> as BuildModule<Cpu, f64>>::build(&dev);
    let x = dev.sample_normal::<Rank2<2, 6>>();
    let out = linear_layer(&layer, x.clone(), true).unwrap();
    let expected = naive_linear(&x.as_vec(), &layer.weight.as_vec(), &layer.bias.as_vec(), 2, 6, 3);
    assert_all_close("linear_layer", &out.as_vec(), &expected, F64_RTOL);
}

// ---------------------------------------------------------------------------------------
// LeNet models

fn random_images(dev: &Cpu, n: usize) -> Tensor<(usize, usize), f32, Cpu> {
    let x: Tensor<(usize, usize), f32, Cpu> = dev.sample_uniform_like(&(n, 784));
    x
}

/// An f32 model's logits against a naive f64 re-implementation, within `F32_LOGIT_ATOL`.
#[track_caller]
fn assert_logits_near(logits: &Tensor<(usize, usize), f32, Cpu>, expected: &[f64]) {
    let got = to_f64(&logits.as_vec());
    assert_eq!(got.len(), expected.len(), "logit count");
    for (i, (a, e)) in got.iter().zip(expected).enumerate() {
        assert!((a - e).abs() <= F32_LOGIT_ATOL, "logit {i}: {a} vs naive {e}");
    }
}

#[test]
fn lenet300_logits_shape_and_values_match_naive_mlp() {
    let dev = Cpu::seed_from_u64(10);
    let model = <LeNet300 as Classifier>::build(&dev).unwrap();
    let x = random_images(&dev, 3);
    let xv = to_f64(&x.as_vec());
    let logits = model.logits(x).unwrap();
    assert_eq!(*logits.shape(), (3, 10));

    let t = tensors_of(&model);
    let h1 = relu(naive_linear(&xv, &param(&t, "fc1.weight"), &param(&t, "fc1.bias"), 3, 784, 300));
    let h2 = relu(naive_linear(&h1, &param(&t, "fc2.weight"), &param(&t, "fc2.bias"), 3, 300, 100));
    let expected = naive_linear(&h2, &param(&t, "fc3.weight"), &param(&t, "fc3.bias"), 3, 100, 10);
    assert_logits_near(&logits, &expected);
}

#[test]
fn lenet5_logits_shape_and_values_match_naive_network() {
    let dev = Cpu::seed_from_u64(11);
    let model = <LeNet5 as Classifier>::build(&dev).unwrap();
    let x = random_images(&dev, 3);
    let xv = to_f64(&x.as_vec());
    let logits = model.logits(x).unwrap();
    assert_eq!(*logits.shape(), (3, 10));

    let t = tensors_of(&model);
    let c1 = relu(naive_conv(&xv, &param(&t, "conv1.weight"), &param(&t, "conv1.bias"), 3, 1, 28, 28, 6, 5));
    let p1 = naive_pool(&c1, 3 * 6, 24, 24, 2);
    let c2 = relu(naive_conv(&p1, &param(&t, "conv2.weight"), &param(&t, "conv2.bias"), 3, 6, 12, 12, 16, 5));
    let p2 = naive_pool(&c2, 3 * 16, 8, 8, 2); // (3, 16, 4, 4) = (3, 256) flattened
    let f1 = relu(naive_linear(&p2, &param(&t, "fc1.weight"), &param(&t, "fc1.bias"), 3, 256, 120));
    let f2 = relu(naive_linear(&f1, &param(&t, "fc2.weight"), &param(&t, "fc2.bias"), 3, 120, 84));
    let expected = naive_linear(&f2, &param(&t, "fc3.weight"), &param(&t, "fc3.bias"), 3, 84, 10);
    assert_logits_near(&logits, &expected);
}

/// `x (n, 784)` as `(n, 1, 32, 32)`, zero-padded by 2 on every side.
fn naive_pad2(x: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * 32 * 32];
    for i in 0..n {
        for y in 0..28 {
            for xx in 0..28 {
                out[i * 1024 + (y + 2) * 32 + xx + 2] = x[i * 784 + y * 28 + xx];
            }
        }
    }
    out
}

/// The padded LeNet-5 in naive f64 loops: conv1 on 32×32 → 28×28, pool → 14, conv2 → 10,
/// pool → 5, flatten 16·5·5 = 400.
fn naive_lenet5_padded(xv: &[f64], n: usize, t: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<f64> {
    let p = |name: &str| param(t, name);
    let c1 = relu(naive_conv(&naive_pad2(xv, n), &p("conv1.weight"), &p("conv1.bias"), n, 1, 32, 32, 6, 5));
    let p1 = naive_pool(&c1, n * 6, 28, 28, 2);
    let c2 = relu(naive_conv(&p1, &p("conv2.weight"), &p("conv2.bias"), n, 6, 14, 14, 16, 5));
    let p2 = naive_pool(&c2, n * 16, 10, 10, 2);
    let f1 = relu(naive_linear(&p2, &p("fc1.weight"), &p("fc1.bias"), n, 400, 120));
    let f2 = relu(naive_linear(&f1, &p("fc2.weight"), &p("fc2.bias"), n, 120, 84));
    naive_linear(&f2, &p("fc3.weight"), &p("fc3.bias"), n, 84, 10)
}

#[test]
fn lenet5_padded_logits_match_naive_padded_network() {
    let dev = Cpu::seed_from_u64(14);
    let model = <LeNet5Padded as Classifier>::build(&dev).unwrap();
    let x = random_images(&dev, 3);
    let xv = to_f64(&x.as_vec());
    let logits = model.logits(x).unwrap();
    assert_eq!(*logits.shape(), (3, 10));
    let expected = naive_lenet5_padded(&xv, 3, &tensors_of(&model));
    assert_logits_near(&logits, &expected);
    assert_eq!(<LeNet5Padded as Classifier>::arch_name(), "LeNet-5-pad2");
    assert_eq!((Arch::LeNet5Padded.name(), Arch::LeNet5.name()), ("LeNet-5-pad2", "LeNet-5"));

    let r = size_report("LeNet-5-pad2", &model);
    assert_eq!((r.total_params(), r.total_bytes()), (61_706, 246_824));
    let fc1: Vec<(&str, Vec<usize>)> =
        r.tensors.iter().filter(|t| t.path.starts_with("fc1")).map(|t| (t.path.as_str(), t.shape.clone())).collect();
    assert_eq!(fc1, vec![("fc1.weight", vec![120, 400]), ("fc1.bias", vec![120])]);
}

#[test]
fn lenet5_padded_gradients_match_finite_differences() {
    use dfdx::nn::BuildModule;
    type Padded64 = lepton::nn::LeNet5Padded<f64, Cpu>;
    let dev = Cpu::seed_from_u64(15);
    let model = <Padded64 as BuildModule<Cpu, f64>>::build(&dev);
    let x: Tensor<Rank2<2, 784>, f64, Cpu> = dev.sample_uniform();
    let r: Tensor<Rank2<2, 10>, f64, Cpu> = dev.sample_normal();
    let rv = r.as_vec();

    let loss: Tensor<Rank0, f64, Cpu, _> = (model.try_forward(x.clone().traced(Gradients::leaky())).unwrap() * r.clone()).sum();
    let grads = loss.backward();
    // The analytic gradients of the first and the flatten-facing layers: padding moves where
    // conv1's kernel lands and which 400 features fc1 sees.
    let g_conv1 = grads.get(&model.conv1.weight).as_vec();
    let g_conv1_b = grads.get(&model.conv1.bias).as_vec();
    let g_fc1: Vec<f64> = grads.get(&model.fc1.weight).as_vec().into_iter().take(400).collect();

    let loss_with = |edit: &dyn Fn(&mut Padded64, &[f64]), p: &[f64]| {
        let mut m = model.clone();
        edit(&mut m, p);
        dot(&m.try_forward(x.clone()).unwrap().as_vec(), &rv)
    };
    let w1 = model.conv1.weight.as_vec();
    let fd_conv1 = finite_diff(&w1, |p| loss_with(&|m, p| m.conv1.weight.copy_from(p), p));
    let b1 = model.conv1.bias.as_vec();
    let fd_conv1_b = finite_diff(&b1, |p| loss_with(&|m, p| m.conv1.bias.copy_from(p), p));
    let wf = model.fc1.weight.as_vec();
    let fd_fc1 = finite_diff(&wf[..400], |p| {
        loss_with(
            &|m, p| {
                let mut all = wf.clone();
                all[..400].copy_from_slice(p);
                m.fc1.weight.copy_from(&all);
            },
            p,
        )
    });
    assert_all_close("padded conv1 dL/dw", &g_conv1, &fd_conv1, FD_RTOL);
    assert_all_close("padded conv1 dL/db", &g_conv1_b, &fd_conv1_b, FD_RTOL);
    assert_all_close("padded fc1 dL/dw (row 0)", &g_fc1, &fd_fc1, FD_RTOL);
    assert!(g_conv1.iter().any(|v| v.abs() > 1e-3), "conv1 gradient vanished");
}

#[test]
fn size_reports_count_every_parameter() {
    let dev = Cpu::seed_from_u64(12);
    let r300 = size_report("LeNet-300-100", &<LeNet300 as Classifier>::build(&dev).unwrap());
    assert_eq!((r300.total_params(), r300.total_bytes()), (266_610, 1_066_440));
    let rows: Vec<(&str, Vec<usize>, usize, usize)> =
        r300.tensors.iter().map(|t| (t.path.as_str(), t.shape.clone(), t.params, t.bytes)).collect();
    assert_eq!(
        rows,
        vec![
            ("fc1.weight", vec![300, 784], 235_200, 940_800),
            ("fc1.bias", vec![300], 300, 1_200),
            ("fc2.weight", vec![100, 300], 30_000, 120_000),
            ("fc2.bias", vec![100], 100, 400),
            ("fc3.weight", vec![10, 100], 1_000, 4_000),
            ("fc3.bias", vec![10], 10, 40),
        ]
    );

    let r5 = size_report("LeNet-5", &<LeNet5 as Classifier>::build(&dev).unwrap());
    assert_eq!((r5.total_params(), r5.total_bytes()), (44_426, 177_704));
    let rows: Vec<(&str, Vec<usize>, usize)> = r5.tensors.iter().map(|t| (t.path.as_str(), t.shape.clone(), t.params)).collect();
    assert_eq!(
        rows,
        vec![
            ("conv1.weight", vec![6, 1, 5, 5], 150),
            ("conv1.bias", vec![6], 6),
            ("conv2.weight", vec![16, 6, 5, 5], 2_400),
            ("conv2.bias", vec![16], 16),
            ("fc1.weight", vec![120, 256], 30_720),
            ("fc1.bias", vec![120], 120),
            ("fc2.weight", vec![84, 120], 10_080),
            ("fc2.bias", vec![84], 84),
            ("fc3.weight", vec![10, 84], 840),
            ("fc3.bias", vec![10], 10),
        ]
    );
    assert_eq!(r5.model, "LeNet-5");
}

#[test]
fn logits_reject_wrong_input_width_and_empty_batch() {
    let dev = Cpu::seed_from_u64(13);
    let m300 = <LeNet300 as Classifier>::build(&dev).unwrap();
    let m5 = <LeNet5 as Classifier>::build(&dev).unwrap();
    let narrow = || -> Tensor<(usize, usize), f32, Cpu> { dev.tensor_from_vec(vec![0.5; 3 * 783], (3, 783)) };
    let empty = || -> Tensor<(usize, usize), f32, Cpu> { dev.tensor_from_vec(Vec::new(), (0, 784)) };
    for (arch, result) in [("LeNet300", m300.logits(narrow())), ("LeNet5", m5.logits(narrow()))] {
        match result {
            Err(LeptonError::Shape { op, expected, found, .. }) => {
                assert_eq!((op, expected, found), ("logits", vec![3, 784], vec![3, 783]), "{arch}");
            }
            other => panic!("{arch}: expected a Shape error, got {other:?}"),
        }
    }
    for (arch, result) in [("LeNet300", m300.logits(empty())), ("LeNet5", m5.logits(empty()))] {
        assert!(matches!(result, Err(LeptonError::Shape { .. })), "{arch}: empty batch gave {result:?}");
    }
    assert_eq!(
        (<LeNet300 as Classifier>::INPUTS, <LeNet300 as Classifier>::CLASSES, <LeNet5 as Classifier>::INPUTS, <LeNet5 as Classifier>::CLASSES),
        (784, 10, 784, 10)
    );
    assert_eq!((<LeNet300 as Classifier>::arch_name(), <LeNet5 as Classifier>::arch_name()), ("LeNet-300-100".to_string(), "LeNet-5".to_string()));
}

// ---------------------------------------------------------------------------------------
// Checkpoints

/// A fresh directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("lepton-nn-test-{}-{tag}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// File names in the directory, sorted.
    fn listing(&self) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(&self.0).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn built<M: Classifier>(seed: u64) -> M {
    M::build(&Cpu::seed_from_u64(seed)).unwrap()
}

fn logits_bits<M: Classifier>(model: &M, x: &Tensor<(usize, usize), f32, Cpu>) -> Vec<u32> {
    model.logits(x.clone()).unwrap().as_vec().iter().map(|v| v.to_bits()).collect()
}

#[test]
fn checkpoint_round_trip_is_bit_exact() {
    let dir = Scratch::new("roundtrip");
    let dev = Cpu::seed_from_u64(20);
    let x = random_images(&dev, 4);
    for arch in [Arch::LeNet300, Arch::LeNet5, Arch::SmallMlp, Arch::LeNet5Padded] {
        let path = dir.path(&format!("{arch}.safetensors"));
        match arch {
            Arch::LeNet300 => round_trip::<LeNet300>(&path, &x),
            Arch::LeNet5 => round_trip::<LeNet5>(&path, &x),
            Arch::SmallMlp => round_trip::<SmallMlp>(&path, &x),
            Arch::LeNet5Padded => round_trip::<LeNet5Padded>(&path, &x),
        }
    }
    assert_eq!(
        dir.listing(),
        vec!["LeNet-300-100.safetensors", "LeNet-5-pad2.safetensors", "LeNet-5.safetensors", "MLP-784-100-50-10.safetensors"],
        "no temporary file left"
    );
}

fn round_trip<M: Classifier>(path: &Path, x: &Tensor<(usize, usize), f32, Cpu>) {
    let saved: M = built(21);
    let mut loaded: M = built(22);
    assert_ne!(bits(&tensors_of(&saved)), bits(&tensors_of(&loaded)), "seeds must give different weights");
    save_safetensors(&saved, path, &[("arch", &M::arch_name())]).unwrap();
    load_safetensors(&mut loaded, path).unwrap();
    assert_eq!(bits(&tensors_of(&saved)), bits(&tensors_of(&loaded)));
    assert_eq!(logits_bits(&saved, x), logits_bits(&loaded, x));
    // The file is plain safetensors with the model's tensor paths and the metadata.
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(meta.metadata().as_ref().and_then(|m| m.get("arch")).cloned(), Some(M::arch_name()));
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = file.names().into_iter().cloned().collect();
    names.sort();
    let mut expected: Vec<String> = tensors_of(&saved).into_iter().map(|(n, _, _)| n).collect();
    expected.sort();
    assert_eq!(names, expected);
}

#[track_caller]
fn assert_load_fails_unchanged<M: Classifier>(model: &mut M, path: &Path, want: &str) -> LeptonError {
    let before = bits(&tensors_of(model));
    let err = load_safetensors(model, path).expect_err("load must fail");
    let ok = match (&err, want) {
        (LeptonError::Checkpoint { path: p, .. }, "checkpoint") => p == path,
        (LeptonError::Io { op, path: p, .. }, "io") => *op == "read" && p == path,
        _ => false,
    };
    assert!(ok, "expected a {want} error naming {}, got {err:?}", path.display());
    assert_eq!(bits(&tensors_of(model)), before, "a failed load changed the model");
    err
}

#[test]
fn checkpoint_of_another_architecture_is_rejected_and_model_unchanged() {
    let dir = Scratch::new("arch");
    let p5 = dir.path("lenet5.safetensors");
    let p300 = dir.path("lenet300.safetensors");
    save_safetensors(&built::<LeNet5>(30), &p5, &[]).unwrap();
    save_safetensors(&built::<LeNet300>(31), &p300, &[]).unwrap();
    let mut m300: LeNet300 = built(32);
    let err = assert_load_fails_unchanged(&mut m300, &p5, "checkpoint");
    // LeNet-5 also has fc1.weight, but (120, 256): the message names the tensor and shapes.
    let msg = err.to_string();
    assert!(msg.contains("fc1.weight") && msg.contains("[120, 256]") && msg.contains("[300, 784]"), "{msg}");
    let mut m5: LeNet5 = built(33);
    let err = assert_load_fails_unchanged(&mut m5, &p300, "checkpoint");
    assert!(err.to_string().contains("conv1.weight"), "{err}");
}

#[test]
fn checkpoint_with_extra_or_wrongly_typed_tensors_is_rejected() {
    let dir = Scratch::new("extra");
    let model: LeNet300 = built(34);
    // Every tensor of the model plus one more.
    let tensors = tensors_of(&model);
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> =
        tensors.iter().map(|(n, s, v)| (n.clone(), s.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect())).collect();
    owned.push(("fc4.weight".into(), vec![2], vec![0u8; 8]));
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = owned
        .iter()
        .map(|(n, s, b)| (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap()))
        .collect();
    let extra = dir.path("extra.safetensors");
    safetensors::serialize_to_file(views, &None, &extra).unwrap();
    let mut target: LeNet300 = built(35);
    let err = assert_load_fails_unchanged(&mut target, &extra, "checkpoint");
    assert!(err.to_string().contains("fc4.weight"), "{err}");

    // Right names and shapes, wrong dtype (f64 for fc3.bias).
    let f64_bytes: Vec<u8> = (0..10).flat_map(|i| f64::from(i).to_le_bytes()).collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = owned
        .iter()
        .filter(|(n, _, _)| n != "fc4.weight")
        .map(|(n, s, b)| {
            let view = if n == "fc3.bias" {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F64, s.clone(), &f64_bytes).unwrap()
            } else {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap()
            };
            (n.clone(), view)
        })
        .collect();
    let wrong_dtype = dir.path("f64.safetensors");
    safetensors::serialize_to_file(views, &None, &wrong_dtype).unwrap();
    let err = assert_load_fails_unchanged(&mut target, &wrong_dtype, "checkpoint");
    assert!(err.to_string().contains("fc3.bias"), "{err}");
}

#[test]
fn truncated_garbage_and_missing_checkpoints_give_typed_errors() {
    let dir = Scratch::new("corrupt");
    let good = dir.path("good.safetensors");
    let mut model: LeNet300 = built(40);
    save_safetensors(&built::<LeNet300>(41), &good, &[]).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let header_len = usize::try_from(u64::from_le_bytes(bytes[..8].try_into().unwrap())).unwrap();

    // Truncated: inside the length prefix, inside the header, right after it, mid-data, one
    // byte short. Each is a Checkpoint error naming the file.
    for cut in [4, 8 + header_len / 2, 8 + header_len, bytes.len() / 2, bytes.len() - 1] {
        let p = dir.path(&format!("cut-{cut}.safetensors"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        assert_load_fails_unchanged(&mut model, &p, "checkpoint");
    }
    // One byte too many.
    let p = dir.path("long.safetensors");
    let mut long = bytes.clone();
    long.push(0);
    std::fs::write(&p, &long).unwrap();
    assert_load_fails_unchanged(&mut model, &p, "checkpoint");
    // Garbage: random bytes, text, a corrupted header.
    let p = dir.path("garbage.safetensors");
    std::fs::write(&p, (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect::<Vec<u8>>()).unwrap();
    assert_load_fails_unchanged(&mut model, &p, "checkpoint");
    let p = dir.path("text.safetensors");
    std::fs::write(&p, b"this is not a checkpoint").unwrap();
    assert_load_fails_unchanged(&mut model, &p, "checkpoint");
    let p = dir.path("header.safetensors");
    let mut bad_header = bytes.clone();
    bad_header[8] = b'[';
    std::fs::write(&p, &bad_header).unwrap();
    assert_load_fails_unchanged(&mut model, &p, "checkpoint");
    let p = dir.path("empty.safetensors");
    std::fs::write(&p, b"").unwrap();
    assert_load_fails_unchanged(&mut model, &p, "checkpoint");
    // Missing file and a directory: Io errors.
    assert_load_fails_unchanged(&mut model, &dir.path("missing.safetensors"), "io");
    assert_load_fails_unchanged(&mut model, &dir.0, "io");

    // The intact file still loads.
    load_safetensors(&mut model, &good).unwrap();
    assert_eq!(bits(&tensors_of(&model)), bits(&tensors_of(&built::<LeNet300>(41))));
}

#[test]
fn save_is_atomic_creates_folders_and_replaces_files() {
    let dir = Scratch::new("atomic");
    let nested = dir.path("a/b/model.safetensors");
    let first: LeNet5 = built(50);
    let second: LeNet5 = built(51);
    save_safetensors(&first, &nested, &[]).unwrap();
    save_safetensors(&second, &nested, &[]).unwrap();
    let listing: Vec<String> = std::fs::read_dir(dir.path("a/b")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(listing, vec!["model.safetensors".to_string()], "temporary files left behind");
    let mut m: LeNet5 = built(52);
    load_safetensors(&mut m, &nested).unwrap();
    assert_eq!(bits(&tensors_of(&m)), bits(&tensors_of(&second)), "the second save replaced the first");

    // A save that cannot complete (the target is an existing directory) errors, leaves the
    // existing entry as it was and no temporary file.
    std::fs::create_dir(dir.path("occupied")).unwrap();
    match save_safetensors(&first, dir.path("occupied"), &[]) {
        Err(LeptonError::Io { .. }) => {}
        other => panic!("expected an Io error, got {other:?}"),
    }
    assert!(dir.path("occupied").is_dir());
    // A parent that is a file: cannot create the folder.
    std::fs::write(dir.path("file"), b"x").unwrap();
    assert!(matches!(save_safetensors(&first, dir.path("file/model.safetensors"), &[]), Err(LeptonError::Io { .. })));
    assert_eq!(dir.listing(), vec!["a", "file", "occupied"]);
}

fn tiny_dataset(n: usize, seed: u64) -> Dataset {
    let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = move || {
        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (s >> 33) as u8
    };
    let images: Vec<u8> = (0..n * 784).map(|_| next()).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    Dataset::from_raw("tiny", 28, 28, 10, images, labels).unwrap()
}

fn quiet(seed: u64) -> TrainConfig {
    TrainConfig::default().with_seed(seed).with_batch_size(16).with_progress(false)
}

#[test]
fn session_save_and_load_round_trip_and_reject_wrong_files() {
    let dir = Scratch::new("session");
    let data = tiny_dataset(48, 1);
    for arch in [Arch::LeNet300, Arch::LeNet5] {
        let path = dir.path(&format!("{arch}.safetensors"));
        let mut trained = Session::new(arch, data.clone(), None, quiet(60)).unwrap();
        trained.fit(1).unwrap();
        trained.save(&path).unwrap();
        let mut other = Session::new(arch, data.clone(), None, quiet(61)).unwrap();
        assert_ne!(bits(&other.tensors()), bits(&trained.tensors()));
        other.load(&path).unwrap();
        assert_eq!(bits(&other.tensors()), bits(&trained.tensors()));
        assert_eq!(other.predict(&data).unwrap(), trained.predict(&data).unwrap());
        let restored = Session::from_checkpoint(arch, &path, data.clone(), None, quiet(62)).unwrap();
        assert_eq!(bits(&restored.tensors()), bits(&trained.tensors()));
        let r1 = restored.evaluate(&data).unwrap();
        let r2 = trained.evaluate(&data).unwrap();
        assert_eq!((r1.loss.to_bits(), r1.confusion), (r2.loss.to_bits(), r2.confusion));
        // The header records the architecture, epochs and seed.
        let bytes = std::fs::read(&path).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let meta = meta.metadata().clone().unwrap();
        assert_eq!(
            (meta["arch"].as_str(), meta["epochs"].as_str(), meta["seed"].as_str()),
            (arch.name(), "1", "60")
        );
    }
    // Cross-architecture: typed error, session unchanged; from_checkpoint fails too.
    let mut s300 = Session::new(Arch::LeNet300, data.clone(), None, quiet(63)).unwrap();
    let before = bits(&s300.tensors());
    let err = s300.load(dir.path("LeNet-5.safetensors")).unwrap_err();
    assert!(matches!(err, LeptonError::Checkpoint { .. }), "{err:?}");
    assert_eq!(bits(&s300.tensors()), before);
    let err = s300.load(dir.path("nope.safetensors")).unwrap_err();
    assert!(matches!(err, LeptonError::Io { .. }), "{err:?}");
    assert_eq!(bits(&s300.tensors()), before);
    let from = Session::from_checkpoint(Arch::LeNet5, dir.path("LeNet-300-100.safetensors"), data, None, quiet(64));
    assert!(matches!(from, Err(LeptonError::Checkpoint { .. })));
    assert_eq!(dir.listing(), vec!["LeNet-300-100.safetensors", "LeNet-5.safetensors"]);
}
