//! Training throughput (samples/s) of the two baselines, batch 128, Adam, on Fashion-MNIST:
//! the real training loop (`Session::fit`: shuffle, batch, forward, backward, optimiser step).
//!
//! `cargo bench -p lepton-benches --bench train_throughput`. The guide quotes PyTorch CPU at ~55k
//! (LeNet-300-100) and ~10k (LeNet-5) samples/s on 2 cores; `scripts/pytorch_reference.py
//! <lenet300|lenet5> fashion --throughput` measures the same loop in PyTorch on this machine.
//! Results: README, "Training throughput".
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lepton::prelude::*;

/// Samples per measured iteration: 20 steps of batch 128.
const SAMPLES: usize = 2560;

fn train_throughput(c: &mut Criterion) {
    let Ok(train) = fashion_mnist(Split::Train).and_then(|d| d.take(SAMPLES)) else {
        eprintln!("bundled Fashion-MNIST missing: run from the repository root");
        return;
    };
    let mut group = c.benchmark_group("train_batch128");
    group.throughput(Throughput::Elements(SAMPLES as u64));
    group.sample_size(10);
    for arch in [Arch::LeNet300, Arch::LeNet5] {
        let config = TrainConfig::default().with_progress(false);
        let Ok(mut session) = Session::new(arch, train.clone(), None, config) else {
            eprintln!("could not build {arch}");
            return;
        };
        group.bench_function(arch.name(), |b| {
            b.iter(|| session.fit(1).map(|h| h.epochs.len()).unwrap_or(0));
        });
    }
    group.finish();
}

criterion_group!(benches, train_throughput);
criterion_main!(benches);
