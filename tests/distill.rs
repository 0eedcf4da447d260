//! Tests of `lepton::distill`: the loss and its gradient against hand-computed values, the
//! settings' checks, and distillation inside a training session.

use std::sync::OnceLock;

use dfdx::prelude::{Cpu, Tensor};
use dfdx::tensor::{AsArray, TensorFromVec, Trace};
use dfdx::tensor_ops::Backward;
use lepton::data::{mnist10k, Dataset, Split};
use lepton::distill::{distill_loss, soft_targets, DistillConfig};
use lepton::nn::{Arch, Classifier, LeNet300};
use lepton::report::History;
use lepton::train::{Session, TrainConfig, TypedSession};
use lepton::LeptonError;

/// f32 arithmetic against the f64 reference of the loss and its gradient.
const LOSS_ATOL: f32 = 1e-6;
const GRAD_ATOL: f32 = 1e-6;

/// `α·T²·KL + (1 − α)·CE` averaged over the two rows below, computed in f64 by hand (Python)
/// for T = 2, α = 0.7.
const EXPECTED_LOSS: f32 = 0.403_849_03;
/// Its gradient with respect to the student logits: `(α·T·(softmax(z_s/T) − p_t) +
/// (1 − α)·(softmax(z_s) − y)) / batch`.
const EXPECTED_GRAD: [f32; 6] = [-0.115_623_51, 0.065_959_62, 0.049_663_89, -0.048_058_68, -0.097_717_99, 0.145_776_68];

const STUDENT: [f32; 6] = [1.0, 2.0, 0.5, 0.0, -1.0, 3.0];
const TEACHER: [f32; 6] = [2.0, 1.0, 0.0, 0.5, 0.5, 2.0];
const ONEHOT: [f32; 6] = [0.0, 1.0, 0.0, 0.0, 0.0, 1.0];

fn train() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| mnist10k(Split::Train).unwrap().per_class_sample(30, 0).unwrap())
}

fn quiet() -> TrainConfig {
    TrainConfig::default().with_progress(false).with_batch_size(50)
}

fn history_bits(h: &History) -> Vec<(u64, u64)> {
    h.epochs.iter().map(|e| (e.train_loss.to_bits(), e.train_accuracy.to_bits())).collect()
}

#[test]
fn loss_and_gradient_match_the_formula() {
    let dev: Cpu = Default::default();
    let z: Tensor<(usize, usize), f32, Cpu> = dev.tensor_from_vec(STUDENT.to_vec(), (2, 3));
    let y: Tensor<(usize, usize), f32, Cpu> = dev.tensor_from_vec(ONEHOT.to_vec(), (2, 3));
    let cfg = DistillConfig::new(2.0, 0.7).unwrap();
    let (loss, value) = distill_loss(z.leaky_trace(), y, &TEACHER, &cfg).unwrap();
    assert!((value - EXPECTED_LOSS).abs() <= LOSS_ATOL, "{value}");
    // the tensor carries the KL's constant term: only the value subtracts it
    assert!(loss.array() > value);
    let grads = loss.backward();
    let g = grads.get(&z).as_vec();
    for (i, (a, e)) in g.iter().zip(EXPECTED_GRAD).enumerate() {
        assert!((a - e).abs() <= GRAD_ATOL, "gradient {i}: {a} vs {e}");
    }
}

#[test]
fn soft_targets_are_tempered_softmaxes() {
    let p = soft_targets(&[0.0, 2.0_f32.ln(), 100.0, 100.0], 2, 1.0);
    assert!((p[0] - 1.0 / 3.0).abs() < 1e-7 && (p[1] - 2.0 / 3.0).abs() < 1e-7, "{p:?}");
    assert_eq!((p[2], p[3]), (0.5, 0.5), "stable for large logits");
    // a high temperature flattens: logits 0 and 2·ln 2 at T = 2 give 1/3, 2/3 as well
    let q = soft_targets(&[0.0, 2.0 * 2.0_f32.ln()], 2, 2.0);
    assert!((q[0] - 1.0 / 3.0).abs() < 1e-7, "{q:?}");
}

#[test]
fn bad_settings_are_config_errors() {
    for (t, a) in [(0.0, 0.5), (-1.0, 0.5), (f64::NAN, 0.5), (f64::INFINITY, 0.5), (2.0, -0.1), (2.0, 1.5), (2.0, f64::NAN)] {
        assert!(matches!(DistillConfig::new(t, a), Err(LeptonError::Config { .. })), "T = {t}, α = {a}");
    }
    assert!(DistillConfig::new(1.0, 0.0).is_ok() && DistillConfig::new(20.0, 1.0).is_ok());
    // the plain-number form: same value as the tensor form, and bad shapes or labels are errors
    let cfg = DistillConfig::new(2.0, 0.7).unwrap();
    let (v, g) = lepton::distill::distill_loss_values(&STUDENT, &[1, 2], &TEACHER, 3, &cfg).unwrap();
    assert!((v - EXPECTED_LOSS).abs() <= LOSS_ATOL && (g[5] - EXPECTED_GRAD[5]).abs() <= GRAD_ATOL);
    assert!(lepton::distill::distill_loss_values(&STUDENT, &[1, 3], &TEACHER, 3, &cfg).is_err());
    assert!(lepton::distill::distill_loss_values(&STUDENT, &[1], &TEACHER, 3, &cfg).is_err());
    assert!(lepton::distill::distill_loss_values(&STUDENT, &[1, 2], &TEACHER[..5], 3, &cfg).is_err());
    // a teacher with another number of classes
    let five = Session::with_classes(Arch::LeNet5, 5, train().filter_classes(&[0, 1, 2, 3, 4], true).unwrap(), None, quiet()).unwrap();
    let mut student = Session::new(Arch::SmallMlp, train().clone(), None, quiet()).unwrap();
    let e = student.distill_from(&five, DistillConfig::default());
    assert!(matches!(e, Err(LeptonError::Shape { op: "distillation teacher", .. })), "{e:?}");
    assert!(student.distillation().is_none());
    let bad = DistillConfig { temperature: -1.0, alpha: 0.5 };
    let teacher = Session::new(Arch::LeNet5, train().clone(), None, quiet()).unwrap();
    assert!(student.distill_from(&teacher, bad).is_err());
}

#[test]
fn alpha_zero_is_plain_training_and_distillation_is_deterministic() {
    let mut teacher = Session::new(Arch::LeNet5, train().clone(), None, quiet().with_seed(1)).unwrap();
    teacher.fit(2).unwrap();
    let mut plain = Session::new(Arch::SmallMlp, train().clone(), None, quiet()).unwrap();
    let mut a0 = Session::new(Arch::SmallMlp, train().clone(), None, quiet()).unwrap();
    a0.distill_from(&teacher, DistillConfig::new(4.0, 0.0).unwrap()).unwrap();
    plain.fit(2).unwrap();
    a0.fit(2).unwrap();
    assert_eq!(plain.tensors(), a0.tensors(), "α = 0: the soft term adds exactly nothing");
    let kd = |teacher: &Session| {
        let mut s = Session::new(Arch::SmallMlp, train().clone(), None, quiet()).unwrap();
        s.distill_from(teacher, DistillConfig::new(4.0, 0.9).unwrap()).unwrap();
        s
    };
    let (mut x, mut y, mut z) = (kd(&teacher), kd(&teacher), kd(&teacher));
    // training the teacher after distill_from does not change the copy a student holds
    teacher.fit(1).unwrap();
    for s in [&mut x, &mut y, &mut z] {
        s.fit(3).unwrap();
    }
    assert_eq!(history_bits(x.history()), history_bits(y.history()));
    assert_eq!(x.tensors(), y.tensors());
    assert_ne!(x.tensors(), plain.tensors());
    // the KD loss falls as the student learns the teacher
    let h = &x.history().epochs;
    assert!(h[2].train_loss < h[0].train_loss, "{} -> {}", h[0].train_loss, h[2].train_loss);
    assert_eq!(z.tensors(), x.tensors());
    z.clear_teacher();
    assert_eq!(z.distillation(), None);
}

#[test]
fn any_classifier_is_a_teacher_of_a_typed_session() {
    let dev = Cpu::seed_from_u64(5);
    let teacher = LeNet300::build(&dev).unwrap();
    let mut s: TypedSession<LeNet300> = TypedSession::new(train().clone(), None, quiet()).unwrap();
    s.set_teacher(teacher, DistillConfig::new(1.0, 1.0).unwrap()).unwrap();
    let h = s.fit(1).unwrap();
    // α = 1, T = 1: the loss is the KL to an untrained (near-uniform) teacher: small, ≥ 0
    assert!(h.epochs[0].train_loss >= 0.0 && h.epochs[0].train_loss < 0.5, "{}", h.epochs[0].train_loss);
}
