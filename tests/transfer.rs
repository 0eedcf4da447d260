//! Tests of `lepton::transfer`: typed head swap, freezing and per-group learning rates,
//! transfer of a pruned backbone, and the few-shot runner.

use std::sync::OnceLock;

use lepton::data::{mnist10k, Dataset, Split};
use lepton::nn::checkpoint::tensors_of;
use lepton::nn::{Arch, Classifier, LeNet300, LeNet5, LeNet5Net, Mlp};
use lepton::prune::PruneMethod;
use lepton::train::{Optimizer, Session, TrainConfig};
use lepton::transfer::{few_shot, swap_head, under_prefix, FewShotConfig, Shots, TransferMethod};
use lepton::LeptonError;

/// One SGD step scaled by 0.5 against one step at half the learning rate: only the rounding
/// of `w0 + 0.5·(w1 − w0)` against `w0 − 0.05·g` differs.
const SCALED_STEP_ATOL: f32 = 1e-6;

type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

fn mnist_train() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| mnist10k(Split::Train).unwrap())
}

fn mnist_test() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| mnist10k(Split::Test).unwrap())
}

/// Digits 0-4 (source task) and 5-9 relabelled 0-4 (target task).
fn low() -> Dataset {
    mnist_train().filter_classes(&[0, 1, 2, 3, 4], true).unwrap().per_class_sample(40, 0).unwrap()
}
fn high() -> Dataset {
    mnist_train().filter_classes(&[5, 6, 7, 8, 9], true).unwrap()
}
fn high_test() -> Dataset {
    mnist_test().filter_classes(&[5, 6, 7, 8, 9], true).unwrap().per_class_sample(40, 0).unwrap()
}

fn quiet() -> TrainConfig {
    TrainConfig::default().with_progress(false).with_batch_size(32)
}

fn get<'a>(t: &'a Tensors, path: &str) -> &'a [f32] {
    &t.iter().find(|(p, _, _)| p == path).unwrap().2
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn swap_head_keeps_backbone_bits_and_draws_head_from_seed() {
    let dev = dfdx::tensor::Cpu::seed_from_u64(3);
    let m = LeNet5::build(&dev).unwrap();
    let a: LeNet5Net<6, 16, 256, 120, 84, 2> = swap_head::<_, 2>(&m, 7).unwrap();
    let b: LeNet5Net<6, 16, 256, 120, 84, 2> = swap_head::<_, 2>(&m, 7).unwrap();
    let c: LeNet5Net<6, 16, 256, 120, 84, 2> = swap_head::<_, 2>(&m, 8).unwrap();
    let (src, ta, tb, tc) = (tensors_of(&m), tensors_of(&a), tensors_of(&b), tensors_of(&c));
    assert_eq!(ta.len(), src.len());
    for (path, shape, v) in &ta {
        if under_prefix(path, "fc3") {
            let expected = if path.ends_with("weight") { vec![2, 84] } else { vec![2] };
            assert_eq!(shape, &expected, "{path}");
            assert_eq!(bits(v), bits(get(&tb, path)), "same seed, same head: {path}");
            assert_ne!(bits(v), bits(get(&tc, path)), "other seed, other head: {path}");
        } else {
            assert_eq!(bits(v), bits(get(&src, path)), "backbone tensor {path} changed");
        }
    }
    assert_eq!(<LeNet5Net<6, 16, 256, 120, 84, 2> as Classifier>::CLASSES, 2);
    let zero = swap_head::<_, 0>(&LeNet300::build(&dev).unwrap(), 0);
    assert!(matches!(zero, Err(LeptonError::Config { field: "classes", .. })), "{zero:?}");
}

#[test]
fn session_transfer_then_frozen_backbone_is_bit_identical_after_training() {
    let mut src = Session::new(Arch::LeNet300, low(), None, quiet()).unwrap();
    src.fit(1).unwrap();
    let before = src.tensors();
    let mut t = src.transfer(5, high().per_class_sample(20, 1).unwrap(), None, quiet().with_seed(4)).unwrap();
    assert_eq!(t.arch_name(), "MLP-784-300-100-5");
    let moved = t.tensors();
    for (path, _, v) in &moved {
        if !under_prefix(path, "fc3") {
            assert_eq!(bits(v), bits(get(&before, path)), "head swap changed {path}");
        }
    }
    assert_eq!(get(&moved, "fc3.weight").len(), 5 * 100);
    let frozen = t.freeze_backbone().unwrap();
    assert_eq!(frozen, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
    t.fit(3).unwrap();
    assert_eq!(t.steps(), 3 * 100usize.div_ceil(32));
    let after = t.tensors();
    for p in &frozen {
        assert_eq!(bits(get(&after, p)), bits(get(&moved, p)), "frozen {p} changed in training");
    }
    let changed = get(&after, "fc3.weight").iter().zip(get(&moved, "fc3.weight")).filter(|(a, b)| a != b).count();
    // (weights reading a hidden unit that ReLU keeps at 0 on all 100 samples get no gradient:
    // 325 of 500 change for this seed)
    assert!(changed > 250, "the head must train: {changed} of 500 weights changed");
    // the source session is untouched by the new one
    assert_eq!(src.tensors(), before);
    // unfreezing a tensor under a frozen layer: only that tensor trains again
    t.unfreeze(&["fc2.bias"]).unwrap();
    assert_eq!(t.frozen(), ["fc1.weight", "fc1.bias", "fc2.weight"]);
    t.fit(1).unwrap();
    let again = t.tensors();
    assert_eq!(bits(get(&again, "fc2.weight")), bits(get(&moved, "fc2.weight")));
    assert_ne!(bits(get(&again, "fc2.bias")), bits(get(&moved, "fc2.bias")));
}

#[test]
fn freeze_errors_leave_the_session_unchanged() {
    let mut s = Session::new(Arch::LeNet5, low(), None, quiet()).unwrap();
    let e = s.freeze(&["conv1", "nope"]).unwrap_err();
    assert!(matches!(&e, LeptonError::Config { field: "tensor path", value, .. } if value == "nope"), "{e:?}");
    assert!(s.frozen().is_empty(), "a failed freeze must not freeze conv1");
    // a prefix is a whole path component: "fc" is not "fc1"
    assert!(s.freeze(&["fc"]).is_err());
    for bad in [-0.1, f64::NAN, f64::INFINITY] {
        assert!(matches!(s.set_lr_scale("fc1", bad), Err(LeptonError::Config { .. })), "{bad}");
    }
    assert_eq!(s.freeze(&["conv1.weight"]).unwrap(), ["conv1.weight"]);
    s.unfreeze_all();
    assert!(s.frozen().is_empty());
}

#[test]
fn lr_scale_equals_a_smaller_learning_rate_for_that_tensor() {
    // one full-batch SGD step: fc1 at scale 0.5 with lr 0.1 == fc1 with lr 0.05; other
    // tensors as with lr 0.1
    let data = low().per_class_sample(8, 2).unwrap();
    let cfg = |lr: f64| quiet().with_batch_size(40).with_optimizer(Optimizer::sgd(0.0)).with_learning_rate(lr).with_seed(9);
    let mut scaled = Session::new(Arch::LeNet300, data.clone(), None, cfg(0.1)).unwrap();
    scaled.set_lr_scale("fc1", 0.5).unwrap();
    let mut half = Session::new(Arch::LeNet300, data.clone(), None, cfg(0.05)).unwrap();
    let mut full = Session::new(Arch::LeNet300, data, None, cfg(0.1)).unwrap();
    for s in [&mut scaled, &mut half, &mut full] {
        s.fit(1).unwrap();
        assert_eq!(s.steps(), 1);
    }
    let (a, h, f) = (scaled.tensors(), half.tensors(), full.tensors());
    let max_diff = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
    assert!(max_diff(get(&a, "fc1.weight"), get(&h, "fc1.weight")) <= SCALED_STEP_ATOL);
    assert!(max_diff(get(&a, "fc1.bias"), get(&h, "fc1.bias")) <= SCALED_STEP_ATOL);
    assert_eq!(bits(get(&a, "fc2.weight")), bits(get(&f, "fc2.weight")));
    assert!(max_diff(get(&f, "fc1.weight"), get(&h, "fc1.weight")) > 100.0 * SCALED_STEP_ATOL, "the two rates must differ");
}

#[test]
fn with_classes_and_transfer_reject_unsupported_heads() {
    for bad in [0, 3, 11] {
        let e = Session::with_classes(Arch::LeNet300, bad, high(), None, quiet());
        assert!(matches!(e, Err(LeptonError::Config { field: "classes", .. })), "{bad}");
    }
    let s = Session::with_classes(Arch::LeNet5, 5, low(), None, quiet()).unwrap();
    assert_eq!(s.arch_name(), "LeNet-5-6-16-120-84-5");
    assert!(matches!(s.transfer(7, high(), None, quiet()), Err(LeptonError::Config { field: "classes", .. })));
    // a 10-class dataset does not fit a 5-way head
    assert!(matches!(s.transfer(5, mnist_train().clone(), None, quiet()), Err(LeptonError::Dataset { .. })));
    let custom = Session::from_model(
        swap_head::<_, 3>(&Mlp::<784, 300, 100, 10>::build(&Default::default()).unwrap(), 0).unwrap(),
        mnist_train().filter_classes(&[0, 1, 2], true).unwrap(),
        None,
        quiet(),
    )
    .unwrap();
    assert!(matches!(custom.transfer(5, high(), None, quiet()), Err(LeptonError::Config { field: "classes", .. })));
}

#[test]
fn transferred_pruned_backbone_keeps_its_zeros() {
    let mut src = Session::new(Arch::LeNet5, low(), None, quiet()).unwrap();
    src.fit(1).unwrap();
    src.prune(&PruneMethod::Global(0.9)).unwrap();
    let mut t = src.transfer(5, high().per_class_sample(10, 3).unwrap(), None, quiet()).unwrap();
    let masks = t.masks().expect("the backbone's masks come along");
    assert_eq!(masks.paths(), ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"], "no mask for the new head");
    t.fit(2).unwrap();
    let (s, d) = (src.tensors(), t.tensors());
    for p in ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"] {
        let zeros_src: Vec<bool> = get(&s, p).iter().map(|v| *v == 0.0).collect();
        let zeros_dst: Vec<bool> = get(&d, p).iter().map(|v| *v == 0.0).collect();
        assert_eq!(zeros_src, zeros_dst, "{p}: pruned weights must stay 0 and kept ones train");
    }
    let sp = t.sparsity();
    let fc1 = sp.layers.iter().find(|l| l.path == "fc1.weight").unwrap();
    assert!(fc1.nonzero * 2 < fc1.params, "{fc1:?}");
}

#[test]
fn few_shot_rows_are_seeded_and_reproducible() {
    let mut src = Session::new(Arch::LeNet300, low(), None, quiet()).unwrap();
    src.fit(2).unwrap();
    let cfg = FewShotConfig { train: quiet(), steps: 6, max_epochs: 10 };
    let run = |m: TransferMethod<'_>, label: &str| {
        few_shot("0-4 -> 5-9", label, m, &high(), &high_test(), &[Shots::K(2), Shots::K(4)], &[0, 1], &cfg).unwrap()
    };
    let a = run(TransferMethod::Frozen(&src), "frozen");
    let b = run(TransferMethod::Frozen(&src), "frozen");
    let scratch = run(TransferMethod::Scratch(Arch::LeNet300), "scratch");
    assert_eq!(without_time(&a), without_time(&b), "same seeds, same runs");
    assert_eq!(a.len(), 4);
    let row = &a.rows[0];
    assert_eq!((row.x, row.seed, row.train_samples, row.test_samples), (2.0, 0, 10, 200));
    // 10 samples in batches of 10: one step per epoch, 6 epochs
    assert_eq!(row.steps, 6);
    assert_eq!(a.rows[2].steps, 6, "20 samples, batch 20: 6 steps");
    assert_eq!(row.errors, ((1.0 - row.accuracy) * 200.0).round() as usize);
    assert_eq!(scratch.summary().len(), 2);
    // a transferred backbone helps at 2 examples per class (chance is 20 %)
    assert!(a.summary()[0].mean_accuracy > 0.35, "{:?}", a.summary()[0]);
    let too_many = few_shot("x", "frozen", TransferMethod::Frozen(&src), &high(), &high_test(), &[Shots::K(100_000)], &[0], &cfg);
    assert!(too_many.is_err());
    assert!(few_shot("x", "s", TransferMethod::Scratch(Arch::LeNet300), &high(), &high_test(), &[], &[0], &cfg).is_err());
    let zero = FewShotConfig { steps: 0, ..cfg.clone() };
    assert!(few_shot("x", "s", TransferMethod::Scratch(Arch::LeNet300), &high(), &high_test(), &[Shots::K(1)], &[0], &zero).is_err());
}

/// The rows with the wall-clock seconds zeroed, so two runs compare equal.
fn without_time(t: &lepton::report::RunTable) -> Vec<lepton::report::RunRow> {
    t.rows.iter().cloned().map(|mut r| {
        r.train_seconds = 0.0;
        r
    }).collect()
}

#[test]
fn transfer_layers_keeps_only_the_named_layers_and_draws_the_rest_like_scratch() {
    let mut src = Session::new(Arch::LeNet5, low(), None, quiet()).unwrap();
    src.fit(1).unwrap();
    let cfg = quiet().with_seed(11);
    let t = src.transfer_layers(5, &["conv1", "conv2"], high(), None, cfg.clone()).unwrap();
    let scratch = Session::with_classes(Arch::LeNet5, 5, high(), None, cfg).unwrap();
    let (s, tt, sc) = (src.tensors(), t.tensors(), scratch.tensors());
    for (path, _, v) in &tt {
        if path.starts_with("conv") {
            assert_eq!(bits(v), bits(get(&s, path)), "{path} must come from the source");
        } else {
            assert_eq!(bits(v), bits(get(&sc, path)), "{path} must be the scratch model's of the same seed");
        }
    }
    for bad in [&[][..], &["fc3"][..], &["conv9"][..]] {
        let e = src.transfer_layers(5, bad, high(), None, quiet());
        assert!(matches!(e, Err(LeptonError::Config { .. })), "{bad:?}");
    }
}
