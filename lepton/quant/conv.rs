//! Integer convolution and a quantized LeNet-5.
//!
//! A valid, stride-1 `K`×`K` convolution on `u8` codes is a [`QuantizedLinear`] applied to the
//! im2col patches: row `b·P + y·OW + x` of the patch matrix holds
//! `input[b, c, y + i, x + j]` at column `c·K·K + i·K + j` (the layout of
//! [`crate::nn::conv`]), the `(O, C, K, K)` filters are the `(O, C·K·K)` weight, and the
//! `(batch·P, O)` output codes are transposed back to `(batch, O, OH, OW)`. With no padding
//! every patch entry is a real input code, so the input zero point is handled exactly as in a
//! Linear layer. Max pooling on codes is exact: `q ↦ S·(q − Z)` is increasing, so the largest
//! code is the code of the largest value.
//!
//! [`QuantizedLeNet5`] chains conv1 (ReLU fused) → 2×2 max pool → conv2 (ReLU) → pool → fc1,
//! fc2 (ReLU) → fc3, all in integers from `u8` input codes to `u8` logit codes. Activation
//! parameters come from calibration batches run through the float network: one observer for
//! the input, each conv's output after its ReLU (before pooling; pooling keeps the
//! parameters), and each fc output.

use rayon::prelude::*;

use super::affine::{check_bits, check_finite, quantize_codes, QParams};
use super::kernel::Kernel;
use super::linear::QuantizedLinear;
use super::mlp::{check_params_chain, QuantConfig, WeightParams};
use super::size::{LayerBytes, QuantSize};
use crate::error::{LeptonError, Result};
use crate::prune::TensorValues;

/// Side of the square input images (28×28, one channel).
const SIDE: usize = 28;

/// The im2col patches `(batch·OH·OW, C·K·K)` of `x` `(batch, C, H, W)` (valid, stride 1).
pub fn im2col<T: Copy + Default + Send + Sync>(x: &[T], batch: usize, c: usize, h: usize, w: usize, k: usize) -> Result<(Vec<T>, usize, usize)> {
    if k == 0 || k > h || k > w || batch == 0 || batch.checked_mul(c * h * w) != Some(x.len()) {
        return Err(LeptonError::Shape { op: "im2col", path: "input".into(), expected: vec![batch.max(1), c, h, w], found: vec![x.len()] });
    }
    let (oh, ow) = (h - k + 1, w - k + 1);
    let cols = c * k * k;
    let mut out = vec![T::default(); batch * oh * ow * cols];
    out.par_chunks_mut(oh * ow * cols).zip(x.par_chunks(c * h * w)).for_each(|(o, xb)| im2col_sample(xb, c, h, w, k, o));
    Ok((out, oh, ow))
}

/// The patches of one sample `(C, H, W)` into `o` `(OH·OW, C·K·K)`; sizes checked by the caller.
/// LeNet-5's 5×5 kernels copy fixed-size rows (inline moves, not a `memmove` call per row).
fn im2col_sample<T: Copy>(xb: &[T], c: usize, h: usize, w: usize, k: usize, o: &mut [T]) {
    match k {
        5 => im2col_fixed::<T, 5>(xb, c, h, w, c * 25, o),
        3 => im2col_fixed::<T, 3>(xb, c, h, w, c * 9, o),
        _ => im2col_any(xb, c, h, w, k, o),
    }
}

/// [`im2col_sample`] for a kernel size known at compile time, rows `ld ≥ C·K·K` apart (the
/// padding after each row is left as it is).
fn im2col_fixed<T: Copy, const K: usize>(xb: &[T], c: usize, h: usize, w: usize, ld: usize, o: &mut [T]) {
    let ow = w - K + 1;
    for (p, row) in o.chunks_exact_mut(ld).enumerate() {
        let (y, xx) = (p / ow, p % ow);
        for (ch, patch) in row[..c * K * K].chunks_exact_mut(K * K).enumerate() {
            for (i, dst) in patch.chunks_exact_mut(K).enumerate() {
                let src = ch * h * w + (y + i) * w + xx;
                if let (Ok(d), Some(Ok(s))) = (<&mut [T; K]>::try_from(dst), xb.get(src..src + K).map(<&[T; K]>::try_from)) {
                    *d = *s;
                }
            }
        }
    }
}

/// [`im2col_sample`] for any kernel size.
fn im2col_any<T: Copy>(xb: &[T], c: usize, h: usize, w: usize, k: usize, o: &mut [T]) {
    let ow = w - k + 1;
    for (p, row) in o.chunks_exact_mut(c * k * k).enumerate() {
        let (y, xx) = (p / ow, p % ow);
        for ch in 0..c {
            for i in 0..k {
                let src = ch * h * w + (y + i) * w + xx;
                let dst = ch * k * k + i * k;
                row[dst..dst + k].copy_from_slice(&xb[src..src + k]);
            }
        }
    }
}

/// Samples per parallel task of [`QuantizedLeNet5::forward_codes`]: each task runs every layer
/// on one thread (conv1's patches of 8 samples are 8 × 576 × 25 bytes, 115 kB).
const LENET5_TASK: usize = 8;

/// `(batch·P, O)` rows to `(batch, O, P)`.
fn to_channels_first<T: Copy + Default>(y: &[T], batch: usize, p: usize, o: usize) -> Vec<T> {
    let mut out = vec![T::default(); y.len()];
    for b in 0..batch {
        for pos in 0..p {
            for ch in 0..o {
                out[(b * o + ch) * p + pos] = y[(b * p + pos) * o + ch];
            }
        }
    }
    out
}

/// A 5×5 conv of `rows` samples `(C, side, side)` on the AVX2 GEMM, its patches written
/// straight into the GEMM's operand layout (rows at the padded length), then, for 8-bit codes
/// (some code > 127), turned into `x ^ 0x80` and `|x − 128|` in one pass over the whole
/// buffer (see [`super::kernel::PackedWeights`]). Output codes
/// `(rows·OH·OW, O)`, the same as [`QuantizedLinear::forward_rows`] on `im2col` (tested).
/// Sizes checked by the caller.
#[cfg(target_arch = "x86_64")]
fn prepared_conv(conv: &QuantizedConv2d, h: &[u8], rows: usize, channels: usize, side: usize, n: usize) -> Vec<u8> {
    let kp = conv.linear.packed().padded_inputs();
    let wide = h.iter().any(|&v| v > 127);
    let mut cols = vec![0u8; n * kp];
    let per = n / rows.max(1) * kp;
    for (o, s) in cols.chunks_exact_mut(per).zip(h.chunks_exact(channels * side * side)) {
        im2col_fixed::<u8, 5>(s, channels, side, side, kp, o);
    }
    let mut y = vec![0u8; n * conv.out_channels];
    if wide {
        // the padding turns into 0x80 / 128 too; it meets zero weights
        let mut mag = vec![0u8; cols.len()];
        // SAFETY: the caller resolved the kernel to AVX2, which the CPU therefore has.
        unsafe { super::kernel::shift_codes_avx2(&mut cols, &mut mag) };
        conv.linear.forward_prepared(&cols, &mag, true, n, &mut y);
    } else {
        conv.linear.forward_prepared(&cols, &[], false, n, &mut y);
    }
    y
}

/// [`max_pool2`] of `(batch·H·W, C)` rows (a conv GEMM's output) straight to channels-first
/// `(batch, C, H/2, W/2)`: the same values as [`to_channels_first`] then [`max_pool2`], without
/// the transposed copy. Sizes checked by the caller (`y.len() == batch·h·w·c`, `h, w ≥ 2`).
fn max_pool2_rows(y: &[u8], batch: usize, c: usize, h: usize, w: usize) -> Vec<u8> {
    let (ph, pw) = (h / 2, w / 2);
    let mut out = vec![0u8; batch * c * ph * pw];
    for (sample, o) in y.chunks_exact(h * w * c).zip(out.chunks_exact_mut(c * ph * pw)) {
        for py in 0..ph {
            for px in 0..pw {
                let r0 = ((2 * py) * w + 2 * px) * c;
                let r1 = r0 + w * c;
                let (a, bb, cc, d) = (&sample[r0..r0 + c], &sample[r0 + c..r0 + 2 * c], &sample[r1..r1 + c], &sample[r1 + c..r1 + 2 * c]);
                for ch in 0..c {
                    o[ch * ph * pw + py * pw + px] = a[ch].max(bb[ch]).max(cc[ch]).max(d[ch]);
                }
            }
        }
    }
    out
}

/// 2×2 max pooling, stride 2 (odd edges dropped), of `(batch, C, H, W)` values or codes.
pub fn max_pool2<T: Copy + PartialOrd + Default>(x: &[T], batch: usize, c: usize, h: usize, w: usize) -> Result<(Vec<T>, usize, usize)> {
    if batch.checked_mul(c * h * w) != Some(x.len()) || h < 2 || w < 2 {
        return Err(LeptonError::Shape { op: "max pool", path: "input".into(), expected: vec![batch, c, h, w], found: vec![x.len()] });
    }
    let (ph, pw) = (h / 2, w / 2);
    let mut out = Vec::with_capacity(batch * c * ph * pw);
    for plane in x.chunks_exact(h * w) {
        for y in 0..ph {
            for xx in 0..pw {
                let at = |i: usize, j: usize| plane[(2 * y + i) * w + 2 * xx + j];
                let mut m = at(0, 0);
                for v in [at(0, 1), at(1, 0), at(1, 1)] {
                    if v > m {
                        m = v;
                    }
                }
                out.push(m);
            }
        }
    }
    Ok((out, ph, pw))
}

/// A convolution computed in integers (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedConv2d {
    linear: QuantizedLinear,
    in_channels: usize,
    out_channels: usize,
    kernel_size: usize,
}

impl QuantizedConv2d {
    /// Quantizes float filters `(outputs, inputs, k, k)` (row-major) and bias `(outputs,)`:
    /// `weight_bits`-bit symmetric codes per filter; `input` / `output` as in
    /// [`QuantizedLinear::new`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(weight: &[f32], bias: &[f32], outputs: usize, inputs: usize, k: usize, weight_bits: u8, input: QParams, output: QParams, relu: bool) -> Result<QuantizedConv2d> {
        if k == 0 || outputs.checked_mul(inputs * k * k) != Some(weight.len()) {
            return Err(LeptonError::Shape { op: "quantized conv", path: "weight".into(), expected: vec![outputs, inputs, k, k], found: vec![weight.len()] });
        }
        let linear = QuantizedLinear::new(weight, bias, outputs, inputs * k * k, weight_bits, input, output, relu)?;
        Ok(QuantizedConv2d { linear, in_channels: inputs, out_channels: outputs, kernel_size: k })
    }

    /// The layer on im2col patches (weights `(O, C·K·K)`, parameters, multipliers).
    pub fn linear(&self) -> &QuantizedLinear {
        &self.linear
    }
    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }
    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }
    /// Kernel side.
    pub fn kernel_size(&self) -> usize {
        self.kernel_size
    }

    /// Output codes `(batch, O, OH, OW)` for input codes `(batch, C, h, w)`, in integers.
    pub fn forward(&self, x: &[u8], batch: usize, h: usize, w: usize, kernel: Kernel) -> Result<(Vec<u8>, usize, usize)> {
        let (cols, oh, ow) = im2col(x, batch, self.in_channels, h, w, self.kernel_size)?;
        let y = self.linear.forward(&cols, batch * oh * ow, kernel)?;
        Ok((to_channels_first(&y, batch, oh * ow, self.out_channels), oh, ow))
    }

    /// The float simulation (fake quantization) of [`QuantizedConv2d::forward`]: output codes
    /// `(batch, O, OH, OW)`, see [`QuantizedLinear::simulate`].
    pub fn simulate(&self, x: &[u8], batch: usize, h: usize, w: usize) -> Result<(Vec<i32>, usize, usize)> {
        let (cols, oh, ow) = im2col(x, batch, self.in_channels, h, w, self.kernel_size)?;
        let y = self.linear.simulate(&cols, batch * oh * ow)?;
        Ok((to_channels_first(&y, batch, oh * ow, self.out_channels), oh, ow))
    }

    /// A convolution from its layer on im2col patches (e.g. read back from a file): `linear`
    /// must take `in_channels · kernel_size²` inputs; its outputs are the output channels.
    pub(crate) fn from_linear(linear: QuantizedLinear, in_channels: usize, kernel_size: usize) -> Result<QuantizedConv2d> {
        let patch = kernel_size.checked_mul(kernel_size).and_then(|k2| k2.checked_mul(in_channels));
        if in_channels == 0 || kernel_size == 0 || patch != Some(linear.inputs()) {
            return Err(LeptonError::Shape {
                op: "quantized conv",
                path: "weight".into(),
                expected: vec![linear.outputs(), in_channels, kernel_size, kernel_size],
                found: vec![linear.outputs(), linear.inputs()],
            });
        }
        let out_channels = linear.outputs();
        Ok(QuantizedConv2d { linear, in_channels, out_channels, kernel_size })
    }
}

/// LeNet-5 computed in integers (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedLeNet5 {
    conv1: QuantizedConv2d,
    conv2: QuantizedConv2d,
    fc: Vec<QuantizedLinear>,
    kernel: Kernel,
}

/// The float tensors of a LeNet-5, checked.
struct FloatLeNet5<'a> {
    /// `(weight, bias, outputs, inputs, k)` of conv1, conv2.
    convs: [(&'a [f32], &'a [f32], usize, usize, usize); 2],
    /// `(weight, bias, outputs, inputs)` of fc1, fc2, fc3.
    fcs: [(&'a [f32], &'a [f32], usize, usize); 3],
}

fn find<'a>(tensors: &'a [TensorValues], path: &str) -> Result<(&'a [usize], &'a [f32])> {
    let (_, s, v) = tensors
        .iter()
        .find(|t| t.0 == path)
        .ok_or_else(|| LeptonError::config("tensors", path, "a LeNet-5 needs conv1, conv2, fc1, fc2, fc3 weights and biases"))?;
    check_finite("weights", path, v)?;
    Ok((s, v))
}

/// The side of conv2's pooled output when the 28×28 input is zero-padded by 2 (32×32).
fn padded_side(convs: &[(&[f32], &[f32], usize, usize, usize)]) -> usize {
    convs.iter().fold(SIDE + 4, |side, &(.., k)| side.saturating_sub(k.saturating_sub(1)) / 2)
}

fn float_lenet5(tensors: &[TensorValues]) -> Result<FloatLeNet5<'_>> {
    let shape_err = |path: &str, expected: Vec<usize>, found: &[usize]| LeptonError::Shape { op: "quantized LeNet-5", path: path.into(), expected, found: found.to_vec() };
    let mut side = SIDE;
    let mut channels = 1;
    let mut convs = Vec::new();
    for name in ["conv1", "conv2"] {
        let (ws, w) = find(tensors, &format!("{name}.weight"))?;
        let (bs, b) = find(tensors, &format!("{name}.bias"))?;
        let &[o, c, k, k2] = ws else { return Err(shape_err(name, vec![0, channels, 5, 5], ws)) };
        if c != channels || k != k2 || k == 0 || k > side || bs != [o] || (side - k + 1) < 2 {
            return Err(shape_err(name, vec![o, channels, k, k], ws));
        }
        side = (side - k + 1) / 2;
        channels = o;
        convs.push((w, b, o, c, k));
    }
    let mut inputs = channels * side * side;
    let mut fcs = Vec::new();
    for name in ["fc1", "fc2", "fc3"] {
        let (ws, w) = find(tensors, &format!("{name}.weight"))?;
        let (bs, b) = find(tensors, &format!("{name}.bias"))?;
        let &[o, i] = ws else { return Err(shape_err(name, vec![0, inputs], ws)) };
        if name == "fc1" && i != inputs && i == channels * padded_side(&convs).pow(2) {
            return Err(LeptonError::config(
                "model",
                "LeNet-5-pad2",
                format!("fc1 reads {i} features: the LeNet-5 pads its 28×28 input to 32×32, and integer inference runs unpadded LeNet-5s only (fake quantization with quantize_weights works on it)"),
            ));
        }
        if i != inputs || bs != [o] {
            return Err(shape_err(name, vec![o, inputs], ws));
        }
        inputs = o;
        fcs.push((w, b, o, i));
    }
    let (Ok(convs), Ok(fcs)) = (convs.try_into(), fcs.try_into()) else {
        return Err(LeptonError::config("tensors", "LeNet-5", "expected 2 convolutions and 3 Linear layers"));
    };
    Ok(FloatLeNet5 { convs, fcs })
}

/// `x·Wᵀ + b` (then ReLU) in f32 for `(n, inp)` rows.
fn float_linear(x: &[f32], w: &[f32], b: &[f32], out: usize, inp: usize, relu: bool) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len() / inp.max(1) * out];
    y.par_chunks_mut(out).zip(x.par_chunks(inp)).for_each(|(yb, xb)| {
        for ((o, row), &bias) in yb.iter_mut().zip(w.chunks_exact(inp)).zip(b) {
            let v = row.iter().zip(xb).map(|(a, v)| a * v).sum::<f32>() + bias;
            *o = if relu { v.max(0.0) } else { v };
        }
    });
    y
}

/// The six activations (input, conv1, conv2 after ReLU before pooling, fc1, fc2, fc3) of a
/// float LeNet-5 on `x` `(batch, 784)`, each visited by `f(index, values)`.
fn float_activations(net: &FloatLeNet5<'_>, x: &[f32], batch: usize, mut f: impl FnMut(usize, &[f32]) -> Result<()>) -> Result<()> {
    f(0, x)?;
    let (mut h, mut side, mut c) = (x.to_vec(), SIDE, 1usize);
    for (i, &(w, b, o, _, k)) in net.convs.iter().enumerate() {
        let (cols, oh, ow) = im2col(&h, batch, c, side, side, k)?;
        let y = float_linear(&cols, w, b, o, c * k * k, true);
        let y = to_channels_first(&y, batch, oh * ow, o);
        f(1 + i, &y)?;
        let (p, ph, _) = max_pool2(&y, batch, o, oh, ow)?;
        (h, side, c) = (p, ph, o);
    }
    for (i, &(w, b, o, inp)) in net.fcs.iter().enumerate() {
        h = float_linear(&h, w, b, o, inp, i < 2);
        f(3 + i, &h)?;
    }
    Ok(())
}

impl QuantizedLeNet5 {
    /// Quantizes a LeNet-5 given as its tensors (`conv1.weight` `(C1, 1, K, K)`, `conv1.bias`,
    /// `conv2.*`, `fc1.*`, `fc2.*`, `fc3.*`, any widths, 28×28 inputs) with activations
    /// calibrated on `batches` (each `(n, 784)`, pixels in 0..1). Also returns the observed
    /// `(min, max)` of the six activations.
    pub fn from_tensors(tensors: &[TensorValues], batches: &[Vec<f32>], config: &QuantConfig) -> Result<(QuantizedLeNet5, Vec<(f32, f32)>)> {
        check_bits("weight_bits", config.weight_bits)?;
        check_bits("activation_bits", config.activation_bits)?;
        config.kernel.resolve()?;
        let net = float_lenet5(tensors)?;
        if batches.is_empty() {
            return Err(LeptonError::config("calibration", "0 batches", "need at least one calibration batch"));
        }
        let mut observers = (0..6).map(|_| config.observer.build()).collect::<Result<Vec<_>>>()?;
        let mut seen = vec![(f32::INFINITY, f32::NEG_INFINITY); 6];
        for x in batches {
            let batch = x.len() / (SIDE * SIDE);
            if batch == 0 || batch * SIDE * SIDE != x.len() {
                return Err(LeptonError::Shape { op: "quantized LeNet-5", path: "calibration batch".into(), expected: vec![batch.max(1), SIDE * SIDE], found: vec![x.len()] });
            }
            check_finite("input", "calibration batch", x)?;
            float_activations(&net, x, batch, |i, v| {
                if let (Some(o), Some(r)) = (observers.get_mut(i), seen.get_mut(i)) {
                    o.observe(v)?;
                    for &a in v {
                        *r = (r.0.min(a), r.1.max(a));
                    }
                }
                Ok(())
            })?;
        }
        let p: Vec<QParams> = observers.iter().map(|o| o.params(config.activation_bits, false)).collect::<Result<_>>()?;
        Ok((Self::assemble(&net, &p, config, None)?, seen))
    }

    /// LeNet-5 from its tensors with the activation parameters given (input, conv1, conv2,
    /// fc1, fc2, fc3 outputs) and, for some weights, their parameters (e.g. QAT's).
    pub(crate) fn from_params(tensors: &[TensorValues], activations: &[QParams], config: &QuantConfig, weight_params: Option<&WeightParams>) -> Result<QuantizedLeNet5> {
        check_bits("weight_bits", config.weight_bits)?;
        config.kernel.resolve()?;
        let net = float_lenet5(tensors)?;
        if activations.len() != 6 {
            return Err(LeptonError::Shape { op: "quantized LeNet-5", path: "activation params".into(), expected: vec![6], found: vec![activations.len()] });
        }
        Self::assemble(&net, activations, config, weight_params)
    }

    fn assemble(net: &FloatLeNet5<'_>, p: &[QParams], config: &QuantConfig, weight_params: Option<&WeightParams>) -> Result<QuantizedLeNet5> {
        let given = |name: &str| weight_params.and_then(|m| m.get(&format!("{name}.weight")));
        let p = |i: usize| p.get(i).copied().ok_or_else(|| LeptonError::config("activation params", i, "missing"));
        let mut convs = Vec::with_capacity(2);
        for (i, &(w, b, o, c, k)) in net.convs.iter().enumerate() {
            let name = if i == 0 { "conv1" } else { "conv2" };
            convs.push(match given(name) {
                Some(wp) => {
                    let linear = QuantizedLinear::with_weight_params(w, b, o, c * k * k, wp, p(i)?, p(i + 1)?, true)?;
                    QuantizedConv2d::from_linear(linear, c, k)?
                }
                None => QuantizedConv2d::new(w, b, o, c, k, config.weight_bits, p(i)?, p(i + 1)?, true)?,
            });
        }
        let mut fc = Vec::with_capacity(3);
        for (i, &(w, b, o, inp)) in net.fcs.iter().enumerate() {
            let name = ["fc1", "fc2", "fc3"][i.min(2)];
            fc.push(match given(name) {
                Some(wp) => QuantizedLinear::with_weight_params(w, b, o, inp, wp, p(2 + i)?, p(3 + i)?, i < 2)?,
                None => QuantizedLinear::new(w, b, o, inp, config.weight_bits, p(2 + i)?, p(3 + i)?, i < 2)?,
            });
        }
        let [conv1, conv2]: [QuantizedConv2d; 2] = convs.try_into().map_err(|_| LeptonError::config("tensors", "LeNet-5", "expected 2 convolutions"))?;
        Ok(QuantizedLeNet5 { conv1, conv2, fc, kernel: config.kernel })
    }

    /// conv1 and conv2.
    pub fn convs(&self) -> [&QuantizedConv2d; 2] {
        [&self.conv1, &self.conv2]
    }
    /// fc1, fc2, fc3.
    pub fn fcs(&self) -> &[QuantizedLinear] {
        &self.fc
    }
    /// Parameters of the input codes.
    pub fn input_params(&self) -> QParams {
        self.conv1.linear.input_params()
    }
    /// Parameters of every activation: input, conv1, conv2, fc1, fc2, fc3.
    pub fn activation_params(&self) -> Vec<QParams> {
        let mut p = vec![self.input_params(), self.conv1.linear.output_params(), self.conv2.linear.output_params()];
        p.extend(self.fc.iter().map(QuantizedLinear::output_params));
        p
    }
    /// Input features (784).
    pub fn inputs(&self) -> usize {
        SIDE * SIDE
    }
    /// Logits per sample.
    pub fn outputs(&self) -> usize {
        self.fc.last().map(QuantizedLinear::outputs).unwrap_or(0)
    }
    /// The kernel the layers run.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }
    /// The same network running `kernel`.
    pub fn with_kernel(mut self, kernel: Kernel) -> Result<QuantizedLeNet5> {
        kernel.resolve()?;
        self.kernel = kernel;
        Ok(self)
    }

    /// Input codes for a float batch `(batch, 784)`.
    pub fn quantize_input(&self, x: &[f32], batch: usize) -> Result<Vec<u8>> {
        if batch == 0 || batch.checked_mul(self.inputs()) != Some(x.len()) {
            return Err(LeptonError::Shape { op: "quantized LeNet-5", path: "input".into(), expected: vec![batch.max(1), self.inputs()], found: vec![x.len()] });
        }
        check_finite("input", "batch", x)?;
        Ok(quantize_codes(&self.input_params(), x))
    }

    /// Output codes `(batch, outputs)` from input codes, every layer in integers (`simulate`:
    /// the fake-quant float simulation of every layer instead, fed the integer path's codes).
    /// Integer inference: tasks of [`LENET5_TASK`] samples in parallel, each through every
    /// layer on one thread (the codes do not depend on the split).
    fn run_integer(&self, x: &[u8], batch: usize) -> Result<Vec<u8>> {
        let per = SIDE * SIDE;
        if batch == 0 || batch.checked_mul(per) != Some(x.len()) {
            return Err(LeptonError::Shape { op: "quantized LeNet-5", path: "input".into(), expected: vec![batch.max(1), per], found: vec![x.len()] });
        }
        let kernel = self.kernel.resolve()?;
        let outputs = self.outputs();
        let mut out = vec![0u8; batch * outputs];
        out.par_chunks_mut(LENET5_TASK * outputs).zip(x.par_chunks(LENET5_TASK * per)).try_for_each(|(o, xb)| -> Result<()> {
            let rows = xb.len() / per;
            let (mut h, mut side, mut channels) = (xb.to_vec(), SIDE, 1);
            for conv in [&self.conv1, &self.conv2] {
                let k = conv.kernel_size;
                if conv.in_channels != channels || k == 0 || k > side {
                    return Err(LeptonError::Shape { op: "quantized LeNet-5", path: "conv".into(), expected: vec![channels, side, side], found: vec![conv.in_channels, k, k] });
                }
                let (oh, ow) = (side - k + 1, side - k + 1);
                let n = rows * oh * ow;
                if oh < 2 {
                    return Err(LeptonError::Shape { op: "quantized LeNet-5", path: "pool".into(), expected: vec![2, 2], found: vec![oh, ow] });
                }
                #[cfg(target_arch = "x86_64")]
                if kernel == Kernel::Avx2 && k == 5 && conv.linear.packed().takes_wide() {
                    conv.linear.check_input(n * channels * k * k, n)?;
                    let y = prepared_conv(conv, &h, rows, channels, side, n);
                    (h, side, channels) = (max_pool2_rows(&y, rows, conv.out_channels, oh, ow), oh / 2, conv.out_channels);
                    continue;
                }
                let mut cols = vec![0u8; rows * oh * ow * channels * k * k];
                for (o, s) in cols.chunks_exact_mut(oh * ow * channels * k * k).zip(h.chunks_exact(channels * side * side)) {
                    im2col_sample(s, channels, side, side, k, o);
                }
                conv.linear.check_input(cols.len(), n)?;
                let mut y = vec![0u8; n * conv.out_channels];
                conv.linear.forward_rows(&cols, n, kernel, &mut y);
                (h, side, channels) = (max_pool2_rows(&y, rows, conv.out_channels, oh, ow), oh / 2, conv.out_channels);
            }
            for l in &self.fc {
                l.check_input(h.len(), rows)?;
                let mut y = vec![0u8; rows * l.outputs()];
                l.forward_rows(&h, rows, kernel, &mut y);
                h = y;
            }
            if h.len() != o.len() {
                return Err(LeptonError::Shape { op: "quantized LeNet-5", path: "output".into(), expected: vec![o.len()], found: vec![h.len()] });
            }
            o.copy_from_slice(&h);
            Ok(())
        })?;
        Ok(out)
    }

    /// Output codes `(batch, outputs)` from input codes `(batch, 784)`, all in integers.
    pub fn forward_codes(&self, x: &[u8], batch: usize) -> Result<Vec<u8>> {
        self.run_integer(x, batch)
    }

    /// The fake-quant simulation of [`QuantizedLeNet5::forward_codes`] (float arithmetic on
    /// dequantized codes, requantized after every layer).
    pub fn simulate_codes(&self, x: &[u8], batch: usize) -> Result<Vec<u8>> {
        let to_u8 = |v: Vec<i32>| v.into_iter().map(|q| q.clamp(0, 255) as u8).collect::<Vec<u8>>();
        let (mut h, mut side) = (x.to_vec(), SIDE);
        for conv in [&self.conv1, &self.conv2] {
            let (y, oh, ow) = conv.simulate(&h, batch, side, side)?;
            let (p, ph, _) = max_pool2(&to_u8(y), batch, conv.out_channels, oh, ow)?;
            (h, side) = (p, ph);
        }
        for l in &self.fc {
            h = to_u8(l.simulate(&h, batch)?);
        }
        Ok(h)
    }

    /// Dequantized logits `(batch, outputs)` for a float batch `(batch, 784)`.
    pub fn logits(&self, x: &[f32], batch: usize) -> Result<Vec<f32>> {
        let codes = self.forward_codes(&self.quantize_input(x, batch)?, batch)?;
        let p = self.fc.last().map(QuantizedLinear::output_params).ok_or_else(|| LeptonError::config("quantized LeNet-5", "[]", "no layers"))?;
        Ok(codes.iter().map(|&q| p.dequantize(i32::from(q))).collect())
    }

    /// The predicted class of every sample (largest logit code; ties to the lower class).
    pub fn predict(&self, x: &[f32], batch: usize) -> Result<Vec<usize>> {
        let codes = self.forward_codes(&self.quantize_input(x, batch)?, batch)?;
        let out = self.outputs().max(1);
        Ok(codes
            .chunks_exact(out)
            .map(|row| row.iter().enumerate().fold((0, 0u8), |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) }).0)
            .collect())
    }

    /// Bytes stored, as [`super::QuantizedMlp::size`] counts them.
    pub fn size(&self) -> QuantSize {
        let mut rows = vec![LayerBytes::quantized("input", 0, self.input_params().bits, 1, false)];
        let layers = [("conv1", &self.conv1.linear), ("conv2", &self.conv2.linear)].into_iter().chain(["fc1", "fc2", "fc3"].into_iter().zip(&self.fc));
        for (name, l) in layers {
            let bits = l.weight_params().first().map(|p| p.bits).unwrap_or(8);
            rows.push(LayerBytes::quantized(format!("{name}.weight"), l.weight().len(), bits, l.outputs(), true));
            rows.push(LayerBytes::float(format!("{name}.bias"), l.outputs()));
            rows.push(LayerBytes::quantized(format!("{name}.output"), 0, l.output_params().bits, 1, false));
        }
        QuantSize { layers: rows }
    }

    /// A LeNet-5 from its integer layers (e.g. read back from a file), checked like
    /// [`QuantizedLeNet5::from_tensors`] checks float tensors: conv1 on one 28×28 channel,
    /// conv2 on conv1's channels, each conv leaving at least 2×2 outputs before its 2×2 pool,
    /// three fc layers with fc1 reading the pooled conv2 features, every layer reading its
    /// input with the previous layer's output parameters, and a `kernel` this CPU runs.
    pub(crate) fn from_parts(conv1: QuantizedConv2d, conv2: QuantizedConv2d, fc: Vec<QuantizedLinear>, kernel: Kernel) -> Result<QuantizedLeNet5> {
        kernel.resolve()?;
        let (mut side, mut channels) = (SIDE, 1);
        for (name, conv) in [("conv1", &conv1), ("conv2", &conv2)] {
            let k = conv.kernel_size;
            if conv.in_channels != channels {
                return Err(LeptonError::Shape {
                    op: "quantized LeNet-5",
                    path: format!("{name}.weight"),
                    expected: vec![conv.out_channels, channels, k, k],
                    found: vec![conv.out_channels, conv.in_channels, k, k],
                });
            }
            if k > side || side - k + 1 < 2 {
                return Err(LeptonError::config("kernel_size", k, format!("{name} sees {side}×{side} inputs: its kernel must leave at least 2×2 outputs")));
            }
            // `side − k + 1` outputs, halved (rounding down) by the pool
            side = (side - k).div_ceil(2);
            channels = conv.out_channels;
        }
        if fc.len() != 3 {
            return Err(LeptonError::config("fc layers", fc.len(), "a LeNet-5 has 3 fully connected layers (fc1, fc2, fc3)"));
        }
        let mut inputs = channels * side * side;
        for (name, l) in ["fc1", "fc2", "fc3"].into_iter().zip(&fc) {
            if l.inputs() != inputs {
                return Err(LeptonError::Shape { op: "quantized LeNet-5", path: format!("{name}.weight"), expected: vec![l.outputs(), inputs], found: vec![l.outputs(), l.inputs()] });
            }
            inputs = l.outputs();
        }
        let mut prev = conv1.linear.output_params();
        for (name, l) in [("conv2", &conv2.linear)].into_iter().chain(["fc1", "fc2", "fc3"].into_iter().zip(&fc)) {
            check_params_chain(name, prev, l)?;
            prev = l.output_params();
        }
        Ok(QuantizedLeNet5 { conv1, conv2, fc, kernel })
    }
}
