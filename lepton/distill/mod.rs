//! Knowledge distillation (Hinton, Vinyals & Dean 2015): a student learns from a teacher's
//! softened outputs as well as from the labels.
//!
//! With student logits `z_s`, teacher logits `z_t`, temperature `T` and weight `α`:
//!
//! ```text
//! L = α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1 − α)·CE(y, z_s)
//! ```
//!
//! (`T²` keeps the soft term's gradients on the scale of the hard one as `T` changes.) The
//! teacher's logits are computed for every training batch with no gradient and no tape; any
//! lepton [`Classifier`] is a [`Teacher`]. In a session: [`crate::train::Session::distill_from`]
//! (or [`crate::train::TypedSession::set_teacher`] for any model type).

use dfdx::losses::cross_entropy_with_logits_loss;
use dfdx::prelude::{Cpu, OwnedTape, Tensor};
use dfdx::tensor::{AsArray, TensorFromVec, Trace};
use dfdx::tensor_ops::Backward;

use crate::data::Dataset;
use crate::error::{LeptonError, Result};
use crate::nn::{Arch, Classifier};
use crate::report::{RunRow, RunTable};
use crate::train::{Session, TrainConfig};

/// Settings of knowledge distillation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DistillConfig {
    /// Temperature `T > 0` of both softmaxes in the soft term (Hinton et al. used 20 on MNIST).
    pub temperature: f64,
    /// Weight `α ∈ [0, 1]` of the soft term; `1 − α` weighs the hard-label cross-entropy.
    pub alpha: f64,
}

impl DistillConfig {
    /// `T` and `α`, checked.
    pub fn new(temperature: f64, alpha: f64) -> Result<Self> {
        let c = DistillConfig { temperature, alpha };
        c.validate()?;
        Ok(c)
    }

    /// Errors unless `T` is finite and > 0 and `α` is in `[0, 1]`.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(LeptonError::config("temperature", self.temperature, "must be finite and > 0"));
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(LeptonError::config("alpha", self.alpha, "must be in [0, 1]"));
        }
        Ok(())
    }
}

impl Default for DistillConfig {
    /// `T = 4`, `α = 0.9`: a common recipe for small image models.
    fn default() -> Self {
        DistillConfig { temperature: 4.0, alpha: 0.9 }
    }
}

/// A model that gives logits for a batch, with no gradient: the teacher of distillation.
pub trait Teacher: Send {
    /// Name, for tables.
    fn teacher_name(&self) -> String;
    /// Features per sample.
    fn inputs(&self) -> usize;
    /// Logits per sample.
    fn classes(&self) -> usize;
    /// Row-major `(n, classes)` logits of the row-major `(n, inputs)` batch `x`.
    fn teacher_logits(&self, x: &[f32], n: usize) -> Result<Vec<f32>>;
}

impl<M: Classifier> Teacher for M {
    fn teacher_name(&self) -> String {
        M::arch_name()
    }
    fn inputs(&self) -> usize {
        M::INPUTS
    }
    fn classes(&self) -> usize {
        M::CLASSES
    }
    fn teacher_logits(&self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        if x.len() != n * M::INPUTS {
            return Err(LeptonError::Shape { op: "teacher logits", path: "input".into(), expected: vec![n, M::INPUTS], found: vec![x.len()] });
        }
        let dev: Cpu = Default::default();
        let x: Tensor<(usize, usize), f32, Cpu> =
            dev.try_tensor_from_vec(x.to_vec(), (n, M::INPUTS)).map_err(|e| LeptonError::device("teacher batch", e))?;
        Ok(self.logits(x)?.as_vec())
    }
}

/// `softmax(z / T)` of every row of the row-major `(n, k)` logits, in f64 (stable).
pub fn soft_targets(logits: &[f32], k: usize, temperature: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks_exact(k.max(1)) {
        let m = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64 / temperature));
        let e: Vec<f64> = row.iter().map(|&v| (v as f64 / temperature - m).exp()).collect();
        let s: f64 = e.iter().sum();
        out.extend(e.iter().map(|v| (v / s) as f32));
    }
    out
}

/// Mean entropy (nats) of the rows of `p` (row-major, `k` per row): the constant that turns
/// the soft cross-entropy into the KL divergence.
fn mean_entropy(p: &[f32], k: usize) -> f64 {
    let rows = p.len() / k.max(1);
    let h: f64 = p.iter().filter(|&&v| v > 0.0).map(|&v| -(v as f64) * (v as f64).ln()).sum();
    h / rows.max(1) as f64
}

/// The distillation loss of a batch and its value: `α·T²·KL(p_t ‖ softmax(z_s/T)) + (1 − α)·CE`,
/// averaged over the batch. `onehot` are the labels, `teacher` the teacher's logits (row-major,
/// same shape). The returned tensor's gradient is the loss's; the value includes the KL's
/// constant (`−α·T²·H(p_t)`), so it is ≥ 0 and 0 for a student equal to a confident teacher.
#[allow(clippy::type_complexity)]
pub fn distill_loss(
    student: Tensor<(usize, usize), f32, Cpu, OwnedTape<f32, Cpu>>,
    onehot: Tensor<(usize, usize), f32, Cpu>,
    teacher: &[f32],
    config: &DistillConfig,
) -> Result<(Tensor<(), f32, Cpu, OwnedTape<f32, Cpu>>, f32)> {
    config.validate()?;
    let (n, k) = *dfdx::prelude::HasShape::shape(&student);
    if teacher.len() != n * k || *dfdx::prelude::HasShape::shape(&onehot) != (n, k) {
        return Err(LeptonError::Shape { op: "distillation loss", path: "teacher logits".into(), expected: vec![n, k], found: vec![teacher.len()] });
    }
    let t = config.temperature;
    let a = config.alpha;
    let p_t = soft_targets(teacher, k, t);
    let constant = a * t * t * mean_entropy(&p_t, k);
    let dev: Cpu = Default::default();
    let p_t: Tensor<(usize, usize), f32, Cpu> = dev.try_tensor_from_vec(p_t, (n, k)).map_err(|e| LeptonError::device("soft targets", e))?;
    // The soft branch reads the same logits through a second tape; dfdx merges the tapes when
    // the two losses are added and sums both gradients into the logits.
    let soft_in = student.retaped::<OwnedTape<f32, Cpu>>() * (1.0 / t as f32);
    let soft = cross_entropy_with_logits_loss(soft_in, p_t) * ((a * t * t) as f32);
    let hard = cross_entropy_with_logits_loss(student, onehot) * ((1.0 - a) as f32);
    let loss = soft + hard;
    let value = (loss.array() as f64 - constant) as f32;
    Ok((loss, value))
}

/// [`distill_loss`] on plain numbers, for inspecting it in a notebook: the loss value and its
/// gradient with respect to the student's logits, both computed through dfdx's tape exactly as
/// in training. `student` and `teacher` are row-major `(n, k)` logits, `labels` one class per
/// row.
///
/// ```
/// use lepton::distill::{distill_loss_values, DistillConfig};
/// let (loss, grad) = distill_loss_values(&[0.0, 0.0], &[0], &[0.0, 0.0], 2, &DistillConfig::new(1.0, 1.0)?)?;
/// assert!(loss.abs() < 1e-7 && grad.iter().all(|g| g.abs() < 1e-7)); // student = teacher: KL 0
/// # Ok::<(), lepton::LeptonError>(())
/// ```
pub fn distill_loss_values(student: &[f32], labels: &[usize], teacher: &[f32], k: usize, config: &DistillConfig) -> Result<(f32, Vec<f32>)> {
    let n = labels.len();
    if k == 0 || student.len() != n * k {
        return Err(LeptonError::Shape { op: "distillation loss", path: "student logits".into(), expected: vec![n, k], found: vec![student.len()] });
    }
    let mut onehot = vec![0.0f32; n * k];
    for (i, &y) in labels.iter().enumerate() {
        if y >= k {
            return Err(LeptonError::config("label", y, format!("must be < {k} classes")));
        }
        onehot[i * k + y] = 1.0;
    }
    let dev: Cpu = Default::default();
    let z: Tensor<(usize, usize), f32, Cpu> = dev.try_tensor_from_vec(student.to_vec(), (n, k)).map_err(|e| LeptonError::device("student logits", e))?;
    let y: Tensor<(usize, usize), f32, Cpu> = dev.try_tensor_from_vec(onehot, (n, k)).map_err(|e| LeptonError::device("labels", e))?;
    let (loss, value) = distill_loss(z.leaky_trace(), y, teacher, config)?;
    let grads = loss.try_backward().map_err(|e| LeptonError::device("backward", e))?;
    Ok((value, grads.get(&z).as_vec()))
}

/// Holds the teacher and settings inside a training session.
pub(crate) struct Distillation {
    pub teacher: Box<dyn Teacher>,
    pub config: DistillConfig,
}

impl std::fmt::Debug for Distillation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distillation").field("teacher", &self.teacher.teacher_name()).field("config", &self.config).finish()
    }
}

/// Trains a fresh `student` for `epochs` on `train` once per seed and per setting — `None`:
/// on the hard labels alone; `Some(c)`: distilled from `teacher` with `c` — and counts its
/// errors on `test`. One [`RunRow`] per run: method `hard labels` or `KD α=<α>`, `x` = the
/// temperature (0 for hard labels). The teacher's current weights are copied once; it is not
/// trained. `train_config` gives the optimiser, learning rate and batch size (the seed is each
/// run's own).
///
/// Errors: no settings or seeds, zero epochs, an invalid setting, a teacher whose inputs or
/// classes differ from the student's.
#[allow(clippy::too_many_arguments)]
pub fn distill_runs(
    experiment: &str,
    teacher: &Session,
    settings: &[Option<DistillConfig>],
    student: Arch,
    train: &Dataset,
    test: &Dataset,
    seeds: &[u64],
    epochs: usize,
    train_config: &TrainConfig,
) -> Result<RunTable> {
    if settings.is_empty() || seeds.is_empty() || epochs == 0 {
        return Err(LeptonError::config(
            "settings / seeds / epochs",
            format!("{} / {} / {epochs}", settings.len(), seeds.len()),
            "need at least one of each",
        ));
    }
    for c in settings.iter().flatten() {
        c.validate()?;
    }
    let mut table = RunTable::new("temperature");
    for setting in settings {
        for &seed in seeds {
            let cfg = train_config.clone().with_seed(seed).with_progress(false);
            let mut s = Session::new(student, train.clone(), None, cfg)?;
            if let Some(c) = setting {
                s.distill_from(teacher, *c)?;
            }
            let h = s.fit(epochs)?;
            let r = s.evaluate(test)?;
            let correct: usize = r.confusion.iter().enumerate().map(|(i, row)| row.get(i).copied().unwrap_or(0)).sum();
            table.push(RunRow {
                experiment: experiment.to_string(),
                method: match setting {
                    Some(c) => format!("KD α={}", c.alpha),
                    None => "hard labels".into(),
                },
                x: setting.map_or(0.0, |c| c.temperature),
                seed,
                accuracy: r.accuracy,
                errors: r.samples - correct.min(r.samples),
                test_samples: r.samples,
                train_samples: train.len(),
                steps: s.steps(),
                train_seconds: h.epochs.iter().map(|e| e.wall_seconds).sum(),
            });
        }
    }
    Ok(table)
}
