//! Tests of `lepton::prune`: mask computation (magnitude, std threshold, global, N:M) on literal
//! tensors, the Zhu–Gupta schedule, masks kept at exactly zero through training, pruned
//! checkpoints, structured pruning (exact when the removed units are dead), sparse sizes and the
//! CSR inference path, the sensitivity scan, and every bad-input error.

mod common;
use common::{train_2k, test_500};

use dfdx::prelude::Cpu;
use lepton::data::Dataset;
use lepton::nn::checkpoint::tensors_of;
use lepton::nn::{Arch, Classifier, LeNet300, LeNet5, LeNet5Net, LeNet5Padded, Mlp};
use lepton::prune::*;
use lepton::train::{predict_logits, Session, TrainConfig};
use lepton::LeptonError;

/// Largest |difference| of logits allowed between two computations of the same function that
/// differ only in summation order (f32, fan-in up to 784).
const LOGIT_TOL: f32 = 1e-4;

fn t(path: &str, shape: &[usize], v: &[f32]) -> TensorValues {
    (path.to_string(), shape.to_vec(), v.to_vec())
}

fn keep_of(set: &MaskSet, path: &str) -> Vec<bool> {
    set.get(path).unwrap().keep.clone()
}

fn quiet() -> TrainConfig {
    TrainConfig::default().with_progress(false)
}

fn build<M: Classifier>(seed: u64) -> M {
    M::build(&Cpu::seed_from_u64(seed)).unwrap()
}

// ---------------------------------------------------------------------------------------
// Mask computation on literal tensors

#[test]
fn per_layer_magnitude_prunes_the_smallest() {
    let w = vec![t("fc1.weight", &[2, 3], &[0.1, -0.5, 0.2, -0.05, 0.9, 0.3]), t("fc1.bias", &[2], &[0.0, 1.0])];
    let m = MaskSet::compute(&w, &PruneMethod::PerLayer(vec![("fc1.weight".into(), 0.5)])).unwrap();
    assert_eq!(keep_of(&m, "fc1.weight"), vec![false, true, false, false, true, true]);
    assert!(m.get("fc1.bias").is_none(), "biases are not pruned unless named");
    assert_eq!(m.sparsity(), 0.5);
    // ties: the earlier element goes first
    let w = vec![t("a.weight", &[2, 2], &[1.0, -1.0, 1.0, 1.0])];
    let m = MaskSet::compute(&w, &PruneMethod::Uniform(0.5)).unwrap();
    assert_eq!(keep_of(&m, "a.weight"), vec![false, false, true, true]);
}

#[test]
fn uniform_prunes_every_weight_matrix_and_no_bias() {
    let w = vec![
        t("fc1.weight", &[2, 2], &[4.0, 3.0, 2.0, 1.0]),
        t("fc1.bias", &[2], &[0.0, 0.0]),
        t("fc2.weight", &[1, 4], &[0.5, -0.1, 0.7, 0.2]),
    ];
    let m = MaskSet::compute(&w, &PruneMethod::Uniform(0.25)).unwrap();
    assert_eq!(m.paths(), vec!["fc1.weight".to_string(), "fc2.weight".to_string()]);
    assert_eq!(keep_of(&m, "fc1.weight"), vec![true, true, true, false]);
    assert_eq!(keep_of(&m, "fc2.weight"), vec![true, false, true, true]);
}

#[test]
fn std_threshold_is_quality_times_std() {
    // mean 0, population std √4.5 ≈ 2.121: quality 0.6 prunes |w| < 1.273
    let w = vec![t("fc.weight", &[2, 4], &[2.0, -2.0, 2.0, -2.0, 1.0, -1.0, 3.0, -3.0])];
    let vals = &w[0].2;
    let std = (vals.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / 8.0).sqrt();
    assert!((std - 4.5f64.sqrt()).abs() < 1e-12, "test data has std {std}");
    let m = MaskSet::compute(&w, &PruneMethod::StdThreshold(vec![("fc.weight".into(), 0.6)])).unwrap();
    assert_eq!(keep_of(&m, "fc.weight"), vec![true, true, true, true, false, false, true, true]);
}

#[test]
fn global_threshold_spans_layers() {
    let w = vec![t("a.weight", &[1, 4], &[0.1, 0.2, 0.3, 0.4]), t("b.weight", &[1, 4], &[1.0, 2.0, 0.05, 3.0])];
    let m = MaskSet::compute(&w, &PruneMethod::Global(0.5)).unwrap();
    // the 4 smallest of all 8: 0.05, 0.1, 0.2, 0.3
    assert_eq!(keep_of(&m, "a.weight"), vec![false, false, false, true]);
    assert_eq!(keep_of(&m, "b.weight"), vec![true, true, false, true]);
    assert_eq!(m.get("a.weight").unwrap().sparsity(), 0.75);
    assert_eq!(m.get("b.weight").unwrap().sparsity(), 0.25);
}

#[test]
fn two_four_sparsity_along_the_input_dimension() {
    let w = vec![
        t("fc.weight", &[1, 8], &[1.0, -3.0, 2.0, 0.5, 4.0, 0.0, 0.0, -1.0]),
        t("conv.weight", &[1, 1, 5, 5], &[1.0; 25]),
    ];
    let m = MaskSet::compute(&w, &PruneMethod::NM { n: 2, m: 4 }).unwrap();
    assert_eq!(keep_of(&m, "fc.weight"), vec![false, true, true, false, true, false, false, true]);
    assert_eq!(m.nm_skipped(), &["conv.weight".to_string()], "fan-in 25 is not a multiple of 4");
    assert!(m.get("conv.weight").is_none());
}

#[test]
fn bad_settings_are_typed_errors() {
    let w = vec![t("fc.weight", &[2, 2], &[1.0, 2.0, 3.0, 4.0])];
    for s in [1.0, -0.1, f64::NAN, 1.5] {
        let e = MaskSet::compute(&w, &PruneMethod::Uniform(s)).unwrap_err();
        assert!(matches!(e, LeptonError::Config { .. }), "sparsity {s}: {e}");
        assert!(MaskSet::compute(&w, &PruneMethod::Global(s)).is_err());
    }
    let e = MaskSet::compute(&w, &PruneMethod::PerLayer(vec![("fc9.weight".into(), 0.5)])).unwrap_err();
    assert!(matches!(e, LeptonError::Config { .. }) && e.to_string().contains("fc9.weight"), "{e}");
    let e = MaskSet::compute(&w, &PruneMethod::NM { n: 3, m: 2 }).unwrap_err();
    assert!(matches!(e, LeptonError::Config { .. }), "{e}");
    assert!(MaskSet::compute(&w, &PruneMethod::NM { n: 0, m: 0 }).is_err());
    assert!(MaskSet::compute(&w, &PruneMethod::StdThreshold(vec![("fc.weight".into(), -1.0)])).is_err());
    let nan = vec![t("fc.weight", &[2, 2], &[1.0, f32::NAN, 3.0, 4.0])];
    assert!(MaskSet::compute(&nan, &PruneMethod::Uniform(0.5)).is_err());
    let mut set = MaskSet::new();
    assert!(matches!(set.insert("fc.weight", vec![2, 2], vec![true; 3]), Err(LeptonError::Shape { .. })));
    set.insert("fc.weight", vec![2, 3], vec![true; 6]).unwrap();
    assert!(matches!(set.check(&w), Err(LeptonError::Shape { .. })));
}

// ---------------------------------------------------------------------------------------
// Gradual schedule

#[test]
fn zhu_gupta_schedule_values() {
    let g = GradualPruning::new(PruneMethod::Uniform(0.9), 0.0, 100, 10, 10).unwrap();
    assert_eq!(g.end_step(), 200);
    assert_eq!(g.sparsity_at(0.9, 50), 0.0);
    assert_eq!(g.sparsity_at(0.9, 100), 0.0);
    // x = 1/2: s = 0.9 - 0.9 * 0.125
    assert!((g.sparsity_at(0.9, 150) - 0.7875).abs() < 1e-12);
    // x = 1/10: s = 0.9 - 0.9 * 0.729
    assert!((g.sparsity_at(0.9, 110) - 0.2439).abs() < 1e-12);
    assert_eq!(g.sparsity_at(0.9, 200), 0.9);
    assert_eq!(g.sparsity_at(0.9, 10_000), 0.9);
    assert!(g.is_update_step(100) && g.is_update_step(130) && g.is_update_step(200));
    assert!(!g.is_update_step(99) && !g.is_update_step(131) && !g.is_update_step(210));
    assert!(matches!(g.method_at(150), PruneMethod::Uniform(s) if (s - 0.7875).abs() < 1e-12));
    // bad settings
    assert!(GradualPruning::new(PruneMethod::Uniform(0.9), 0.0, 0, 0, 10).is_err());
    assert!(GradualPruning::new(PruneMethod::Uniform(1.0), 0.0, 0, 1, 10).is_err());
    assert!(GradualPruning::new(PruneMethod::Uniform(0.5), -0.5, 0, 1, 10).is_err());
    assert!(GradualPruning::new(PruneMethod::NM { n: 2, m: 4 }, 0.0, 0, 1, 10).is_err());
}

// ---------------------------------------------------------------------------------------
// Masks through training

fn zeros_where_pruned(s: &Session) -> (usize, usize) {
    let masks = s.masks().unwrap();
    let (mut pruned, mut nonzero_pruned) = (0, 0);
    for (path, _, values) in s.tensors() {
        if let Some(m) = masks.get(&path) {
            for (v, k) in values.iter().zip(&m.keep) {
                if !k {
                    pruned += 1;
                    nonzero_pruned += usize::from(v.to_bits() != 0);
                }
            }
        }
    }
    (pruned, nonzero_pruned)
}

#[test]
fn masked_weights_stay_exactly_zero_through_fine_tuning() {
    let cfg = quiet().with_batch_size(32);
    let mut s = Session::new(Arch::LeNet300, train_2k().clone(), None, cfg).unwrap();
    s.fit(1).unwrap();
    let report = s.prune(&PruneMethod::PerLayer(vec![
        ("fc1.weight".into(), 0.92),
        ("fc2.weight".into(), 0.91),
        ("fc3.weight".into(), 0.74),
    ]))
    .unwrap();
    assert_eq!(report.layers[0].nonzero, 235_200 - (0.92f64 * 235_200.0).round() as usize);
    s.fit(3).unwrap(); // 3 × 63 = 189 more Adam steps
    assert!(s.steps() >= 250);
    let (pruned, nonzero) = zeros_where_pruned(&s);
    assert_eq!(pruned, (0.92f64 * 235_200.0).round() as usize + 27_300 + 740);
    assert_eq!(nonzero, 0, "pruned weights must be +0.0 exactly after fine-tuning");
    // the kept weights did train
    assert!(s.sparsity().weights_kept() > 0.07 && s.sparsity().weights_kept() < 0.09);
}

#[test]
fn gradual_pruning_reaches_its_target_in_training() {
    let cfg = quiet().with_batch_size(32);
    let mut s = Session::new(Arch::LeNet300, train_2k().clone(), None, cfg).unwrap();
    assert_eq!(s.steps_per_epoch(), 63);
    s.set_gradual_pruning(GradualPruning::new(PruneMethod::Uniform(0.8), 0.0, 10, 5, 8).unwrap()).unwrap();
    s.fit(1).unwrap();
    let r = s.sparsity();
    for l in r.layers.iter().filter(|l| l.shape.len() == 2) {
        let expected = l.params - (0.8 * l.params as f64).round() as usize;
        assert_eq!(l.nonzero, expected, "{}", l.path);
    }
    let (_, nonzero) = zeros_where_pruned(&s);
    assert_eq!(nonzero, 0);
    // a target path that does not exist is refused up front
    let bad = GradualPruning::new(PruneMethod::PerLayer(vec![("fc7.weight".into(), 0.5)]), 0.0, 0, 1, 1).unwrap();
    assert!(matches!(s.set_gradual_pruning(bad), Err(LeptonError::Config { .. })));
}

#[test]
fn pruned_checkpoint_reloads_with_identical_predictions() {
    let dir = std::env::temp_dir().join(format!("lepton-prune-{}", std::process::id()));
    let path = dir.join("pruned.safetensors");
    let mut s = Session::new(Arch::LeNet5, train_2k().clone(), None, quiet()).unwrap();
    s.fit(1).unwrap();
    s.prune(&PruneMethod::Global(0.9)).unwrap();
    s.fit(1).unwrap();
    s.save(&path).unwrap();
    let before = s.predict(test_500()).unwrap();
    let tensors_before = s.tensors();
    let mut r = Session::new(Arch::LeNet5, train_2k().clone(), None, quiet().with_seed(7)).unwrap();
    r.load(&path).unwrap();
    assert_eq!(r.predict(test_500()).unwrap(), before);
    assert_eq!(r.tensors(), tensors_before);
    let rep = r.mask_zeros().unwrap();
    assert_eq!(rep.total_nonzero(), s.sparsity().total_nonzero());
    assert_eq!(r.masks().unwrap().sparsity(), s.masks().unwrap().sparsity());
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------------
// Structured pruning

#[test]
fn mlp_shrink_keeps_the_strongest_neurons_in_order() {
    let big: LeNet300 = build(3);
    let small: Mlp<784, 100, 50, 10> = big.shrink(Norm::L1).unwrap();
    let bt = tensors_of(&big);
    let st = tensors_of(&small);
    assert_eq!(st.iter().map(|(_, s, _)| s.clone()).collect::<Vec<_>>(), vec![vec![100, 784], vec![100], vec![50, 100], vec![50], vec![10, 50], vec![10]]);
    // recompute the kept fc1 units independently
    let w1 = &bt[0].2;
    let mut norms: Vec<(f64, usize)> = (0..300).map(|u| (w1[u * 784..(u + 1) * 784].iter().map(|v| v.abs() as f64).sum(), u)).collect();
    norms.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap());
    let mut kept: Vec<usize> = norms[..100].iter().map(|x| x.1).collect();
    kept.sort();
    for (i, u) in kept.iter().enumerate() {
        assert_eq!(&st[0].2[i * 784..(i + 1) * 784], &w1[u * 784..(u + 1) * 784]);
        assert_eq!(st[1].2[i], bt[1].2[*u]);
    }
    assert_eq!(<Mlp<784, 100, 50, 10> as Classifier>::arch_name(), "MLP-784-100-50-10");
    // wider than the original: typed error
    let e = Shrink::<Mlp<784, 400, 100, 10>>::shrink(&big, Norm::L2).unwrap_err();
    assert!(matches!(e, LeptonError::Config { .. }), "{e}");
}

/// Zeroes units `from..` of a layer (weight rows and bias), so they output ReLU(0) = 0.
fn kill_units(tensors: &mut [TensorValues], layer: &str, from: usize) {
    for (p, s, v) in tensors.iter_mut() {
        if p == &format!("{layer}.weight") || p == &format!("{layer}.bias") {
            let row: usize = s[1..].iter().product();
            for x in &mut v[from * row..] {
                *x = 0.0;
            }
        }
    }
}

fn logits<M: Classifier>(m: &M, data: &Dataset) -> Vec<f32> {
    predict_logits(m, data, 128).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn removing_dead_units_is_exact_mlp() {
    let mut t = tensors_of(&build::<LeNet300>(5));
    kill_units(&mut t, "fc1", 120);
    kill_units(&mut t, "fc2", 40);
    let big: LeNet300 = model_from_tensors(&t).unwrap();
    let small: Mlp<784, 120, 40, 10> = big.shrink(Norm::L2).unwrap();
    let d = max_abs_diff(&logits(&big, test_500()), &logits(&small, test_500()));
    assert!(d <= LOGIT_TOL, "max |Δlogit| = {d}");
}

#[test]
fn removing_dead_channels_is_exact_lenet5() {
    let mut t = tensors_of(&build::<LeNet5>(6));
    kill_units(&mut t, "conv1", 4);
    kill_units(&mut t, "conv2", 10);
    kill_units(&mut t, "fc1", 64);
    kill_units(&mut t, "fc2", 32);
    let big: LeNet5 = model_from_tensors(&t).unwrap();
    let small: LeNet5Net<4, 10, 160, 64, 32, 10> = big.shrink(Norm::L1).unwrap();
    let d = max_abs_diff(&logits(&big, test_500()), &logits(&small, test_500()));
    assert!(d <= LOGIT_TOL, "max |Δlogit| = {d}");
    let sizes: Vec<Vec<usize>> = tensors_of(&small).into_iter().map(|x| x.1).collect();
    assert_eq!(sizes[0], vec![4, 1, 5, 5]);
    assert_eq!(sizes[2], vec![10, 4, 5, 5]);
    assert_eq!(sizes[4], vec![64, 160]);
    // FLAT must be C2 · 16
    let e = Shrink::<LeNet5Net<4, 10, 150, 64, 32, 10>>::shrink(&big, Norm::L1).unwrap_err();
    assert!(matches!(e, LeptonError::Config { .. }), "{e}");
}

#[test]
fn removing_dead_channels_is_exact_padded_lenet5() {
    let mut t = tensors_of(&build::<LeNet5Padded>(7));
    kill_units(&mut t, "conv1", 4);
    kill_units(&mut t, "conv2", 10);
    kill_units(&mut t, "fc1", 64);
    kill_units(&mut t, "fc2", 32);
    let big: LeNet5Padded = model_from_tensors(&t).unwrap();
    // the padded net flattens 5·5 features per conv2 channel: 10 · 25 = 250
    let small: LeNet5Net<4, 10, 250, 64, 32, 10> = big.shrink(Norm::L2).unwrap();
    let d = max_abs_diff(&logits(&big, test_500()), &logits(&small, test_500()));
    assert!(d <= LOGIT_TOL, "max |Δlogit| = {d}");
    assert_eq!(<LeNet5Net<4, 10, 250, 64, 32, 10> as Classifier>::arch_name(), "LeNet-5-pad2-4-10-64-32-10");
    let sizes: Vec<Vec<usize>> = tensors_of(&small).into_iter().map(|x| x.1).collect();
    assert_eq!(sizes[4], vec![64, 250]);
    // the unpadded flatten (10 · 16) does not fit the padded source's geometry
    match Shrink::<LeNet5Net<4, 10, 160, 64, 32, 10>>::shrink(&big, Norm::L2) {
        Err(LeptonError::Config { .. }) => {}
        other => panic!("expected a Config error, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn shrunk_model_trains_saves_and_reloads() {
    let big: LeNet300 = build(8);
    let small: Mlp<784, 100, 50, 10> = big.shrink(Norm::L1).unwrap();
    let mut s = Session::from_model(small, train_2k().clone(), None, quiet()).unwrap();
    // 784-100-50-10 is the built-in student of distillation, so the session recognises it
    assert_eq!(s.arch(), Some(Arch::SmallMlp));
    assert_eq!(s.arch_name(), "MLP-784-100-50-10");
    s.fit(1).unwrap();
    assert_eq!(s.size().total_params(), 784 * 100 + 100 + 100 * 50 + 50 + 50 * 10 + 10);
    let dir = std::env::temp_dir().join(format!("lepton-shrink-{}", std::process::id()));
    s.save(dir.join("small.safetensors")).unwrap();
    let mut r = Session::from_model(build::<Mlp<784, 100, 50, 10>>(1), train_2k().clone(), None, quiet()).unwrap();
    r.load(dir.join("small.safetensors")).unwrap();
    assert_eq!(r.predict(test_500()).unwrap(), s.predict(test_500()).unwrap());
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------------
// Sparse storage and inference

#[test]
fn sparse_sizes_count_index_overhead() {
    let mut v = vec![0.0f32; 16];
    v[0] = 1.0;
    v[5] = 2.0;
    v[15] = 3.0;
    // gaps 1, 5, 10 with 2-bit indices (max gap 3): 0 + 1 + 3 fillers
    let b = sparse_bytes(&[2, 8], &v, 32, 2);
    assert_eq!(b.fillers, 4);
    assert_eq!(b.relative, ((3 + 4) * 34usize).div_ceil(8));
    assert_eq!(b.dense, 64);
    // 3 × (f32 + u16 column) + 3 row pointers × u32
    assert_eq!(b.csr, 3 * 6 + 3 * 4);
    // 5-bit indices: no filler
    assert_eq!(sparse_bytes(&[2, 8], &v, 32, 5).fillers, 0);
}

#[test]
fn csr_matmul_matches_dense_for_small_and_large_batches() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let (rows, cols) = (37, 53);
    let a: Vec<f32> = (0..rows * cols).map(|_| if rng.gen::<f32>() < 0.8 { 0.0 } else { rng.gen_range(-1.0..1.0) }).collect();
    let csr = CsrMatrix::from_dense(rows, cols, &a).unwrap();
    assert_eq!(csr.nnz(), a.iter().filter(|v| **v != 0.0).count());
    for batch in [1, 3, 8, 33] {
        let x: Vec<f32> = (0..batch * cols).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let y = csr.matmul_t(&x, batch).unwrap();
        for b in 0..batch {
            for r in 0..rows {
                let want: f32 = (0..cols).map(|c| a[r * cols + c] * x[b * cols + c]).sum();
                assert!((y[b * rows + r] - want).abs() <= 1e-5, "batch {batch}, ({b},{r})");
            }
        }
    }
    assert!(matches!(csr.matmul_t(&[0.0; 10], 1), Err(LeptonError::Shape { .. })));
    assert!(CsrMatrix::from_dense(2, 3, &[0.0; 5]).is_err());
}

#[test]
fn sparse_mlp_matches_the_dense_model() {
    let mut s = Session::new(Arch::LeNet300, train_2k().clone(), None, quiet()).unwrap();
    s.prune(&PruneMethod::Uniform(0.9)).unwrap();
    let sparse = SparseMlp::from_tensors(&s.tensors()).unwrap();
    assert_eq!((sparse.inputs(), sparse.outputs()), (784, 10));
    let model = s.typed::<LeNet300>().unwrap().model().clone();
    let data = test_500();
    let dense = predict_logits(&model, data, 500).unwrap();
    let x: Vec<f32> = data.images().iter().map(|&p| p as f32 / 255.0).collect();
    for batch in [1usize, 500] {
        let mut got = Vec::new();
        for chunk in x.chunks(batch * 784) {
            got.extend(sparse.forward(chunk, chunk.len() / 784).unwrap());
        }
        let d = max_abs_diff(&got, &dense);
        assert!(d <= LOGIT_TOL, "batch {batch}: max |Δlogit| = {d}");
    }
    // LeNet-5's tensors are not an MLP
    let s5 = Session::new(Arch::LeNet5, train_2k().clone(), None, quiet()).unwrap();
    assert!(SparseMlp::from_tensors(&s5.tensors()).is_err());
}

// ---------------------------------------------------------------------------------------
// Sensitivity scan

#[test]
fn sensitivity_scan_and_pick() {
    let mut s = Session::new(Arch::LeNet300, train_2k().clone(), None, quiet().with_batch_size(32)).unwrap();
    s.fit(2).unwrap();
    let grid = [0.0, 0.5, 0.9, 0.99];
    let scan = s.sensitivity_scan(test_500(), &grid).unwrap();
    assert_eq!(scan.rows.len(), 3 * grid.len());
    let base = s.evaluate(test_500()).unwrap().accuracy;
    assert_eq!(scan.baseline_accuracy, base);
    for r in scan.rows.iter().filter(|r| r.sparsity == 0.0) {
        assert_eq!(r.accuracy, base, "{} at 0 sparsity", r.path);
    }
    // fc3 (1,000 weights) at 99 % leaves 10 weights: accuracy must fall
    let fc3_99 = scan.rows.iter().find(|r| r.path == "fc3.weight" && r.sparsity == 0.99).unwrap();
    assert!(fc3_99.accuracy < base - 0.05, "{}", fc3_99.accuracy);
    let pick = scan.pick_sparsities(0.8).unwrap();
    let sizes = [235_200.0, 30_000.0, 1_000.0];
    let overall: f64 = pick.iter().zip(sizes).map(|((_, s), n)| s * n).sum::<f64>() / sizes.iter().sum::<f64>();
    assert!(overall >= 0.8, "overall {overall}");
    assert!(matches!(scan.pick_sparsities(0.995), Err(LeptonError::Config { .. })));
    assert!(s.sensitivity_scan(test_500(), &[]).is_err());
    assert!(s.sensitivity_scan(test_500(), &[1.0]).is_err());
    use lepton::report::Tabular;
    let t = scan.to_table().unwrap();
    assert_eq!(t.height(), 12);
    assert!(scan.plot().unwrap().svg().contains("fc2.weight"));
}

#[test]
fn sparsity_report_table() {
    let mut s = Session::new(Arch::LeNet300, train_2k().clone(), None, quiet()).unwrap();
    s.prune(&PruneMethod::Uniform(0.9)).unwrap();
    let r = s.sparsity();
    use lepton::report::Tabular;
    let t = r.to_table().unwrap();
    assert_eq!(t.shape(), (6, 11));
    assert!((r.weights_kept() - 0.1).abs() < 1e-4);
    assert!(r.csr_bytes() < r.dense_bytes() / 4);
    let text = r.to_string();
    assert!(text.contains("fc1.weight") && text.contains("total"), "{text}");
    assert!(weight_histograms("LeNet-300-100", &s.tensors(), 60).unwrap().svg().contains("fc1.weight"));
}
