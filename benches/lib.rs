//! Empty: this package only holds lepton's criterion benchmarks (`cargo bench -p lepton-benches`).
