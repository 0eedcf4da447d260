//! Pruning speed-ups, inference only:
//!
//! - `structured/*`: a network with k× fewer FLOPs from structured pruning against the
//!   original, batch 256 (LeNet-300-100 → 784-100-50-10: 3.17× fewer multiply-adds;
//!   LeNet-5 → channels 3/8, fc 60/42: 3.05× fewer).
//! - `csr_vs_dense/*`: LeNet-300-100 magnitude-pruned to each sparsity, CSR × dense
//!   ([`SparseMlp`]) against lepton's dense path (`Classifier::logits`, gemm), per batch size.
//!
//! `cargo bench -p lepton-benches --bench prune`; the README's results table quotes it.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dfdx::prelude::Cpu;
use lepton::nn::checkpoint::tensors_of;
use lepton::prelude::*;

use lepton_benches::{inputs, logits};

fn structured(c: &mut Criterion) {
    const BATCH: usize = 256;
    let Some(x) = inputs(BATCH) else {
        eprintln!("bundled Fashion-MNIST missing: run from the repository root");
        return;
    };
    let dev = Cpu::seed_from_u64(0);
    let mut group = c.benchmark_group("structured");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(30);
    let (Ok(mlp), Ok(lenet5)) = (LeNet300::build(&dev), LeNet5::build(&dev)) else { return };
    let small: Mlp<784, 100, 50, 10> = match mlp.shrink(Norm::L1) {
        Ok(m) => m,
        Err(e) => return eprintln!("{e}"),
    };
    let small5: LeNet5Net<3, 8, 128, 60, 42, 10> = match lenet5.shrink(Norm::L1) {
        Ok(m) => m,
        Err(e) => return eprintln!("{e}"),
    };
    group.bench_function("LeNet-300-100", |b| b.iter(|| logits(&dev, &mlp, &x, BATCH)));
    group.bench_function("MLP-784-100-50-10", |b| b.iter(|| logits(&dev, &small, &x, BATCH)));
    group.bench_function("LeNet-5", |b| b.iter(|| logits(&dev, &lenet5, &x, BATCH)));
    group.bench_function("LeNet-5-3-8-60-42", |b| b.iter(|| logits(&dev, &small5, &x, BATCH)));
    group.finish();
}

fn csr_vs_dense(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);
    let Ok(model) = LeNet300::build(&dev) else { return };
    let tensors = tensors_of(&model);
    let mut group = c.benchmark_group("csr_vs_dense");
    group.sample_size(20);
    group.measurement_time(std::time::Duration::from_secs(2));
    group.warm_up_time(std::time::Duration::from_millis(500));
    for batch in [1usize, 16, 256] {
        let Some(x) = inputs(batch) else { return };
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("dense", batch), &batch, |b, &n| b.iter(|| logits(&dev, &model, &x, n)));
        for sparsity in [0.5, 0.8, 0.9, 0.95, 0.98] {
            let Ok(masks) = MaskSet::compute(&tensors, &PruneMethod::Uniform(sparsity)) else { return };
            let mut pruned = model.clone();
            if masks.apply(&mut pruned).is_err() {
                return;
            }
            let Ok(sparse) = SparseMlp::from_tensors(&tensors_of(&pruned)) else { return };
            let id = BenchmarkId::new(format!("csr_{:02}", (sparsity * 100.0) as u32), batch);
            group.bench_with_input(id, &batch, |b, &n| b.iter(|| sparse.forward(&x, n).map(|y| y.len()).unwrap_or(0)));
        }
    }
    group.finish();
}

criterion_group!(benches, structured, csr_vs_dense);
criterion_main!(benches);
