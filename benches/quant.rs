//! Integer inference against lepton's f32 path, LeNet-300-100, batch 256:
//!
//! - `lenet300_b256/f32`: `Classifier::logits` (gemm, f32).
//! - `lenet300_b256/int8_auto`: [`QuantizedMlp::logits`] with [`Kernel::Auto`] (AVX2 when the
//!   CPU has it): input quantization, `u8 × i8 → i32` layers with fixed-point requantization,
//!   dequantized logits.
//! - `lenet300_b256/int8_portable`: the same with the portable scalar kernel.
//! - `lenet300_b256/int8_auto_codes`: `forward_codes` only (no input quantization or
//!   dequantization).
//! - `lenet300_b256/int8_act7_*`: the same two with 7-bit activations (codes ≤ 127, the
//!   kernel's straight `maddubs` path; PyTorch's x86 backend likewise uses `reduce_range`).
//!
//! - `lenet5_b256/f32` and `lenet5_b256/int8_auto`: the same for LeNet-5 (lepton's im2col
//!   conv in f32; the integer LeNet-5 runs 8-sample tasks through every layer, its patches
//!   written straight into the GEMM's padded operand layout and pooled straight from the
//!   GEMM's rows).
//!
//! The weights are an untrained, seeded LeNet-300-100 (speed does not depend on their values),
//! the activations calibrated on the batch itself. `cargo bench -p lepton-benches --bench quant`.
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dfdx::prelude::Cpu;
use lepton::prelude::*;

const BATCH: usize = 256;

use lepton_benches::{inputs, logits};

fn int8_vs_f32(c: &mut Criterion) {
    let Some(x) = inputs(BATCH) else {
        eprintln!("bundled Fashion-MNIST missing: run from the repository root");
        return;
    };
    let dev = Cpu::seed_from_u64(0);
    let Ok(model) = LeNet300::build(&dev) else { return };
    let calib = vec![x.clone()];
    let auto = match QuantizedMlp::from_model(&model, &Calibration::Batches(&calib), &QuantConfig::default()) {
        Ok(q) => q,
        Err(e) => return eprintln!("{e}"),
    };
    let Ok(portable) = auto.clone().with_kernel(Kernel::Portable) else { return };
    // 7-bit activations (PyTorch's `reduce_range` on x86): codes ≤ 127 take the straight
    // `maddubs` path of the GEMM
    let auto7 = match QuantizedMlp::from_model(&model, &Calibration::Batches(&calib), &QuantConfig { activation_bits: 7, ..QuantConfig::default() }) {
        Ok(q) => q,
        Err(e) => return eprintln!("{e}"),
    };
    let Ok(codes7) = auto7.quantize_input(&x, BATCH) else { return };
    let Ok(codes) = auto.quantize_input(&x, BATCH) else { return };
    eprintln!("Kernel::Auto runs {:?}", Kernel::Auto.resolve());
    let mut group = c.benchmark_group("lenet300_b256");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(30);
    group.bench_function("f32", |b| b.iter(|| logits(&dev, &model, &x, BATCH)));
    group.bench_function("int8_auto", |b| b.iter(|| auto.logits(&x, BATCH).map(|y| y.len()).unwrap_or(0)));
    group.bench_function("int8_portable", |b| b.iter(|| portable.logits(&x, BATCH).map(|y| y.len()).unwrap_or(0)));
    group.bench_function("int8_auto_codes", |b| b.iter(|| auto.forward_codes(&codes, BATCH).map(|y| y.len()).unwrap_or(0)));
    group.bench_function("int8_act7_auto", |b| b.iter(|| auto7.logits(&x, BATCH).map(|y| y.len()).unwrap_or(0)));
    group.bench_function("int8_act7_auto_codes", |b| b.iter(|| auto7.forward_codes(&codes7, BATCH).map(|y| y.len()).unwrap_or(0)));
    group.finish();
}

fn lenet5_int8_vs_f32(c: &mut Criterion) {
    let Some(x) = inputs(BATCH) else {
        eprintln!("bundled Fashion-MNIST missing: run from the repository root");
        return;
    };
    let dev = Cpu::seed_from_u64(0);
    let Ok(model) = LeNet5::build(&dev) else { return };
    let q = match QuantizedLeNet5::from_tensors(&lepton::nn::checkpoint::tensors_of(&model), &[x.clone()], &QuantConfig::default()) {
        Ok((q, _)) => q,
        Err(e) => return eprintln!("{e}"),
    };
    let mut group = c.benchmark_group("lenet5_b256");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.bench_function("f32", |b| b.iter(|| logits(&dev, &model, &x, BATCH)));
    group.bench_function("int8_auto", |b| b.iter(|| q.logits(&x, BATCH).map(|y| y.len()).unwrap_or(0)));
    group.finish();
}

criterion_group!(benches, int8_vs_f32, lenet5_int8_vs_f32);
criterion_main!(benches);
