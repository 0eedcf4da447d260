//! A training session: model, optimiser state, data and history in one object, so `fit` can be
//! called again and again from notebook cells and every call continues where the last stopped.

use std::any::Any;
use std::borrow::Cow;
use std::path::Path;
use std::time::Instant;

use dfdx::losses::cross_entropy_with_logits_loss;
use dfdx::nn::ZeroGrads;
use dfdx::optim::{Adam, AdamConfig, Momentum, Optimizer as DfdxOptimizer, Sgd, SgdConfig, WeightDecay};
use dfdx::prelude::{Cpu, Gradients, Tensor};
use dfdx::tensor::{AsArray, TensorFromVec, Trace};
use dfdx::tensor_ops::Backward;

use super::config::{check_learning_rate, Optimizer, TrainConfig};
use super::evaluate::{argmax, check_data, evaluate_hooked, predict_logits_hooked};
use super::snapshot::Snapshot;
use crate::data::Dataset;
use crate::distill::{distill_loss, DistillConfig, Distillation, Teacher};
use crate::error::{LeptonError, Result};
use crate::nn::{checkpoint, size_report, Arch, Classifier, LeNet300, LeNet5, LeNet5Net, LeNet5Padded, Mlp, NoHook, SmallMlp};
use crate::prune::{sensitivity_scan, GradualPruning, MaskSet, PruneMethod, SensitivityScan, SparsityReport, TensorValues};
use crate::quant::{ActivationFakeQuant, TrainingQuant};
use crate::report::{EpochRecord, EvalReport, History, SizeReport};
use crate::transfer::{swap_head, transfer_layers, under_prefix, ParamGroups, SwapHead, HEAD};

enum Opt<M> {
    Adam(Adam<M, f32, Cpu>),
    Sgd(Sgd<M, f32, Cpu>),
}

// SAFETY: dfdx's `Adam` and `Sgd` hold a config, a step count, their moment buffers
// (`Gradients<f32, Cpu>`, which is `Send`) and a `PhantomData<*const M>` that only ties them
// to the model type; the raw pointer is never created, so nothing in them is bound to a
// thread. `M: Send` (every `Classifier` is) covers the model type itself.
unsafe impl<M: Send> Send for Opt<M> {}

impl<M: Classifier> Opt<M> {
    fn new(model: &M, cfg: &TrainConfig) -> Self {
        let wd = (cfg.weight_decay > 0.0).then_some(WeightDecay::L2(cfg.weight_decay));
        match cfg.optimizer {
            Optimizer::Adam { beta1, beta2, eps } => Opt::Adam(Adam::new(
                model,
                AdamConfig { lr: cfg.learning_rate, betas: [beta1, beta2], eps, weight_decay: wd },
            )),
            Optimizer::Sgd { momentum } => Opt::Sgd(Sgd::new(
                model,
                SgdConfig {
                    lr: cfg.learning_rate,
                    momentum: (momentum > 0.0).then_some(Momentum::Classic(momentum)),
                    weight_decay: wd,
                },
            )),
        }
    }

    fn set_lr(&mut self, lr: f64) {
        match self {
            Opt::Adam(o) => o.cfg.lr = lr,
            Opt::Sgd(o) => o.cfg.lr = lr,
        }
    }

    fn update(&mut self, model: &mut M, grads: &Gradients<f32, Cpu>) -> Result<()> {
        let r = match self {
            Opt::Adam(o) => o.update(model, grads),
            Opt::Sgd(o) => o.update(model, grads),
        };
        r.map_err(|e| LeptonError::Device { op: "optimizer update", reason: format!("{e:?}") })
    }
}

/// A session for one concrete model type. Most users reach it through [`Session`], which
/// hides the type; a user-defined [`Classifier`] uses it directly.
pub struct TypedSession<M: Classifier> {
    name: String,
    dev: Cpu,
    model: M,
    opt: Opt<M>,
    config: TrainConfig,
    train: Dataset,
    val: Option<Dataset>,
    history: History,
    steps: usize,
    grads: Option<Gradients<f32, Cpu>>,
    /// The weights before the latest optimiser step: the last weights known to give a finite
    /// loss, restored when the next loss is not finite (copied into reused buffers, so the
    /// optimiser keeps updating the model's own buffers in place).
    last_good: Snapshot,
    /// Pruning masks, re-applied after every optimiser step so pruned weights stay exactly 0.
    masks: Option<MaskSet>,
    /// A gradual-pruning schedule that updates `masks` during training.
    gradual: Option<GradualPruning>,
    /// Quantization kept across `fit` calls (QAT, k-means codebooks); set by the methods in
    /// `quant_session.rs`, used at the three hook points of `train_epoch`.
    quant: TrainingQuant,
    /// Learning-rate scales by path prefix (0 = frozen), applied after every optimiser step.
    groups: ParamGroups,
    /// A teacher whose softened logits join the loss (knowledge distillation).
    distill: Option<Distillation>,
}

fn mix_seed(seed: u64, epoch: usize) -> u64 {
    // splitmix64 of (seed, epoch): a different, reproducible shuffle every epoch
    let mut z = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl<M: Classifier> TypedSession<M> {
    /// A new session with freshly initialised weights drawn from `config.seed`.
    pub fn new(train: Dataset, val: Option<Dataset>, config: TrainConfig) -> Result<Self> {
        config.validate()?;
        check_data::<M>(&train)?;
        if let Some(v) = &val {
            check_data::<M>(v)?;
        }
        let dev = Cpu::seed_from_u64(config.seed);
        let model = M::build(&dev)?;
        Ok(Self::with_model(model, train, val, config))
    }

    fn with_model(model: M, train: Dataset, val: Option<Dataset>, config: TrainConfig) -> Self {
        let dev = Cpu::seed_from_u64(config.seed);
        let opt = Opt::new(&model, &config);
        let name = format!("{} on {}", M::arch_name(), train.name());
        TypedSession {
            history: History { name: name.clone(), epochs: Vec::new() },
            name,
            dev,
            model,
            opt,
            config,
            train,
            val,
            steps: 0,
            grads: None,
            last_good: Snapshot::default(),
            masks: None,
            gradual: None,
            quant: TrainingQuant::default(),
            groups: ParamGroups::new(),
            distill: None,
        }
    }

    /// A session starting from an existing model (e.g. loaded from a checkpoint).
    pub fn from_model(model: M, train: Dataset, val: Option<Dataset>, config: TrainConfig) -> Result<Self> {
        config.validate()?;
        check_data::<M>(&train)?;
        if let Some(v) = &val {
            check_data::<M>(v)?;
        }
        Ok(Self::with_model(model, train, val, config))
    }

    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }
    /// The model, mutably (e.g. to apply a compression technique between `fit` calls).
    pub fn model_mut(&mut self) -> &mut M {
        &mut self.model
    }
    /// The history so far.
    pub fn history(&self) -> &History {
        &self.history
    }
    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }
    /// Optimiser steps taken so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Changes the learning rate for the following epochs.
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        check_learning_rate(lr)?;
        self.config.learning_rate = lr;
        self.opt.set_lr(lr);
        Ok(())
    }

    /// Trains `epochs` more epochs and returns the whole history so far.
    ///
    /// A non-finite loss stops the run with [`LeptonError::NonFiniteLoss`]; the model then holds
    /// the weights of the last step whose weights were all finite.
    pub fn fit(&mut self, epochs: usize) -> Result<History> {
        if epochs == 0 {
            return Err(LeptonError::config("epochs", 0, "must be at least 1"));
        }
        for _ in 0..epochs {
            // The epoch runs on a thread of Rayon's pool: the matrix products split in two
            // there, so the calling thread does one half itself instead of sleeping until
            // two pool threads are done (a thread wake-up per product).
            let record = rayon::scope(|_| self.train_epoch())?;
            if self.config.progress {
                println!("{}", format_epoch(&record, self.history.epochs.len() + 1));
            }
            self.history.epochs.push(record);
        }
        Ok(self.history.clone())
    }

    fn train_epoch(&mut self) -> Result<EpochRecord> {
        let start = Instant::now();
        let epoch = self.history.epochs.len() + 1;
        let batches = self.train.batches(self.config.batch_size, Some(mix_seed(self.config.seed, epoch)))?;
        let n_batches = batches.len();
        let bar = if self.config.progress {
            indicatif::ProgressBar::new(n_batches as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        let k = M::CLASSES;
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        // whether `last_good`'s spare copy (made by the finiteness check) holds the current
        // weights: only between steps of this loop, since other methods may change the model
        let mut checked_copy = false;
        for (step, batch) in batches.enumerate() {
            let n = batch.len;
            // Distillation: the teacher's logits for this batch, with no tape.
            let teacher_logits = match &self.distill {
                Some(d) => Some(d.teacher.teacher_logits(&batch.x, n)?),
                None => None,
            };
            let x: Tensor<(usize, usize), f32, Cpu> = self
                .dev
                .try_tensor_from_vec(batch.x, (n, M::INPUTS))
                .map_err(|e| LeptonError::device("batch", e))?;
            let mut onehot = vec![0.0f32; n * k];
            for (i, &y) in batch.y.iter().enumerate() {
                if let Some(v) = onehot.get_mut(i * k + y) {
                    *v = 1.0;
                }
            }
            let y: Tensor<(usize, usize), f32, Cpu> = self
                .dev
                .try_tensor_from_vec(onehot, (n, k))
                .map_err(|e| LeptonError::device("batch", e))?;
            let grads = match self.grads.take() {
                Some(g) => g,
                None => self.model.try_alloc_grads().map_err(|e| LeptonError::device("alloc grads", e))?,
            };
            // Quantization hook 1 (QAT): forward and backward through fake-quantized weights.
            // They keep the float weights' tensor ids, so the optimiser below applies the
            // gradients to the float weights (straight-through estimator).
            // With activation bits, QAT also fake-quantizes every activation (and moves its
            // range) through the model's activation hook.
            let qat_model = self.quant.training_model(&self.model)?;
            let model = qat_model.as_ref().unwrap_or(&self.model);
            let logits = match self.quant.qat.as_mut().and_then(|q| q.training_hook()) {
                Some(mut hook) => model.logits_hooked(x.traced(grads), &mut hook)?,
                None => model.logits(x.traced(grads))?,
            };
            let values = logits.as_vec();
            let (loss, loss_value) = match (&self.distill, &teacher_logits) {
                (Some(d), Some(t)) => distill_loss(logits, y, t, &d.config)?,
                _ => {
                    let loss = cross_entropy_with_logits_loss(logits, y);
                    let v = loss.array();
                    (loss, v)
                }
            };
            if !loss_value.is_finite() {
                bar.finish_and_clear();
                // the current weights gave this loss: go back to the ones before the last step
                self.last_good.restore(&mut self.model)?;
                return Err(LeptonError::NonFiniteLoss { epoch, step: step + 1, loss: loss_value });
            }
            let mut grads = loss.try_backward().map_err(|e| LeptonError::device("backward", e))?;
            // Quantization hook 2 (QAT, clipped STE): no gradient outside frozen ranges.
            self.quant.before_update(&self.model, &mut grads)?;
            // The weights before this update. From the second step of an epoch on, the check
            // at the end of the previous step already copied them (nothing changes the model
            // in between), so that copy becomes the snapshot.
            if !(checked_copy && self.last_good.promote()) {
                self.last_good.take(&self.model);
            }
            self.opt.update(&mut self.model, &grads)?;
            self.steps += 1;
            // Quantization hook 3 (k-means sharing): centroids move by the summed gradient of
            // their clusters and the shared weights are rewritten from the codebooks.
            self.quant.after_update(&mut self.model, &mut grads, self.config.learning_rate)?;
            if let Some(g) = &self.gradual {
                if g.is_update_step(self.steps) {
                    let tensors = checkpoint::tensors_of(&self.model);
                    self.masks = Some(MaskSet::compute(&tensors, &g.method_at(self.steps))?);
                }
            }
            if let Some(m) = &self.masks {
                m.apply_in_place(&mut self.model)?;
            }
            // Per-group learning rates and frozen tensors: scale this step's change per tensor
            // (frozen ones get their old values back, bit for bit).
            self.groups.apply_from(|path| self.last_good.get(path), &mut self.model)?;
            checked_copy = true;
            if !self.last_good.check_finite(&self.model) {
                // This step made some weights non-finite. The loss need not show it yet (ReLU
                // maps NaN to 0 and max pooling skips NaN), so check the weights themselves,
                // every step: `last_good` then always holds finite weights.
                bar.finish_and_clear();
                self.last_good.restore(&mut self.model)?;
                return Err(LeptonError::NonFiniteLoss { epoch, step: step + 1, loss: f32::NAN });
            }
            self.model.try_zero_grads(&mut grads).map_err(|e| LeptonError::device("zero grads", e))?;
            self.grads = Some(grads);
            loss_sum += loss_value as f64 * n as f64;
            seen += n;
            for (row, &label) in values.chunks_exact(k).zip(&batch.y) {
                correct += usize::from(argmax(row) == label);
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        let (val_loss, val_accuracy) = match &self.val {
            Some(v) => {
                let r = self.eval_report(&self.name, v)?;
                (Some(r.loss), Some(r.accuracy))
            }
            None => (None, None),
        };
        Ok(EpochRecord {
            epoch,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            val_loss,
            val_accuracy,
            learning_rate: self.config.learning_rate,
            wall_seconds: start.elapsed().as_secs_f64(),
            samples: seen,
        })
    }

    /// Optimiser steps per epoch: ⌈training samples / batch size⌉.
    pub fn steps_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.config.batch_size.max(1))
    }

    /// Prunes the current weights by `method`, keeps the masks (re-applied after every
    /// optimiser step from now on, replacing earlier masks) and returns the new sparsity.
    pub fn prune(&mut self, method: &PruneMethod) -> Result<SparsityReport> {
        let masks = MaskSet::compute(&checkpoint::tensors_of(&self.model), method)?;
        self.set_masks(masks)?;
        Ok(self.sparsity())
    }

    /// Sets the masks (checked against the model's tensors) and applies them at once.
    pub fn set_masks(&mut self, masks: MaskSet) -> Result<()> {
        masks.check(&checkpoint::tensors_of(&self.model))?;
        masks.apply(&mut self.model)?;
        self.masks = Some(masks);
        Ok(())
    }

    /// The current masks, if any.
    pub fn masks(&self) -> Option<&MaskSet> {
        self.masks.as_ref()
    }

    /// Drops the masks (and any gradual schedule): training may regrow pruned weights.
    pub fn clear_masks(&mut self) {
        self.masks = None;
        self.gradual = None;
    }

    /// Prunes gradually while training (Zhu & Gupta 2017): the masks are recomputed from the
    /// current weights at every update step of `schedule`, counted in optimiser steps over the
    /// session's life ([`TypedSession::steps`]).
    pub fn set_gradual_pruning(&mut self, schedule: GradualPruning) -> Result<()> {
        schedule.validate()?;
        // checks the target's paths now rather than in the middle of an epoch
        MaskSet::compute(&checkpoint::tensors_of(&self.model), &schedule.target)?;
        self.gradual = Some(schedule);
        Ok(())
    }

    fn paths(&self) -> Vec<String> {
        checkpoint::tensors_of(&self.model).into_iter().map(|t| t.0).collect()
    }

    /// Freezes every tensor under each prefix (a tensor path such as `fc1.weight`, or a layer
    /// such as `conv1`): from now on it stays bit-identical through training. Returns the
    /// frozen paths. A prefix matching no tensor is an error, and then nothing changes.
    pub fn freeze(&mut self, prefixes: &[&str]) -> Result<Vec<String>> {
        self.scale_groups(prefixes, 0.0)?;
        Ok(self.frozen())
    }

    /// Freezes every layer but the head (`fc3`): only the classifier trains.
    pub fn freeze_backbone(&mut self) -> Result<Vec<String>> {
        let mut layers: Vec<String> = Vec::new();
        for p in self.paths() {
            let layer = p.split('.').next().unwrap_or(&p).to_string();
            if !under_prefix(&p, HEAD) && !layers.contains(&layer) {
                layers.push(layer);
            }
        }
        let refs: Vec<&str> = layers.iter().map(String::as_str).collect();
        self.freeze(&refs)
    }

    /// Lets the tensors under each prefix train again at the full learning rate (scale 1; a
    /// longer prefix overrides a shorter one, so `unfreeze(&["fc2.bias"])` after
    /// `freeze(&["fc2"])` trains only that bias).
    pub fn unfreeze(&mut self, prefixes: &[&str]) -> Result<()> {
        self.scale_groups(prefixes, 1.0)
    }

    /// Drops every learning-rate group: all tensors train at the session's learning rate.
    pub fn unfreeze_all(&mut self) {
        self.groups = ParamGroups::new();
    }

    /// Scales the learning rate of the tensors under `prefix` by `scale` (≥ 0; 0 freezes):
    /// per-group learning rates, e.g. a backbone at 0.1× while a new head trains at 1×.
    pub fn set_lr_scale(&mut self, prefix: &str, scale: f64) -> Result<()> {
        self.scale_groups(&[prefix], scale)
    }

    fn scale_groups(&mut self, prefixes: &[&str], scale: f64) -> Result<()> {
        let paths = self.paths();
        let mut groups = self.groups.clone();
        for p in prefixes {
            groups.set(&paths, p, scale)?;
        }
        self.groups = groups;
        Ok(())
    }

    /// The frozen tensor paths (learning-rate scale 0).
    pub fn frozen(&self) -> Vec<String> {
        self.groups.frozen(&self.paths())
    }

    /// The learning-rate groups.
    pub fn param_groups(&self) -> &ParamGroups {
        &self.groups
    }

    /// Distils from `teacher` in the following `fit` calls (Hinton et al. 2015): the loss
    /// becomes `α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1 − α)·CE(y, z_s)`, with the
    /// teacher's logits computed for each batch without gradients. The teacher must read the
    /// same features and give as many logits as the student.
    pub fn set_teacher<T: Teacher + 'static>(&mut self, teacher: T, config: DistillConfig) -> Result<()> {
        self.set_teacher_boxed(Box::new(teacher), config)
    }

    fn set_teacher_boxed(&mut self, teacher: Box<dyn Teacher>, config: DistillConfig) -> Result<()> {
        config.validate()?;
        if teacher.inputs() != M::INPUTS || teacher.classes() != M::CLASSES {
            return Err(LeptonError::Shape {
                op: "distillation teacher",
                path: teacher.teacher_name(),
                expected: vec![M::INPUTS, M::CLASSES],
                found: vec![teacher.inputs(), teacher.classes()],
            });
        }
        self.distill = Some(Distillation { teacher, config });
        Ok(())
    }

    /// Stops distilling: the following epochs train on the labels alone.
    pub fn clear_teacher(&mut self) {
        self.distill = None;
    }

    /// The distillation settings, if a teacher is set.
    pub fn distillation(&self) -> Option<DistillConfig> {
        self.distill.as_ref().map(|d| d.config)
    }

    /// Per-tensor sparsity and stored size of the current weights.
    pub fn sparsity(&self) -> SparsityReport {
        SparsityReport::from_tensors(&M::arch_name(), &checkpoint::tensors_of(&self.model))
    }

    /// Sensitivity scan of the current model on `data` (every prunable tensor alone).
    pub fn sensitivity_scan(&self, data: &Dataset, grid: &[f64]) -> Result<SensitivityScan> {
        sensitivity_scan(&self.model, data, None, grid, self.config.eval_batch_size)
    }

    /// The model evaluation and prediction run: with QAT on (`quant_session.rs`), the one
    /// with fake-quantized weights, as trained.
    fn eval_model(&self) -> Result<Cow<'_, M>> {
        Ok(match self.quant.eval_model(&self.model)? {
            Some(m) => Cow::Owned(m),
            None => Cow::Borrowed(&self.model),
        })
    }

    /// The report of the model as evaluation runs it (with QAT on, fake-quantized weights and
    /// activations).
    fn eval_report(&self, name: &str, data: &Dataset) -> Result<EvalReport> {
        let model = self.eval_model()?;
        match self.quant.qat.as_ref().and_then(|q| q.eval_ranges()) {
            Some((bits, mut ranges)) => {
                evaluate_hooked(&*model, name, data, self.config.eval_batch_size, &mut ActivationFakeQuant::eval(bits, &mut ranges))
            }
            None => evaluate_hooked(&*model, name, data, self.config.eval_batch_size, &mut NoHook),
        }
    }

    /// Evaluates the current model on `data` (with QAT on, its fake-quantized weights and
    /// activations).
    pub fn evaluate(&self, data: &Dataset) -> Result<EvalReport> {
        self.eval_report(&M::arch_name(), data)
    }

    /// Logits of every sample of `data`, row-major `(len, classes)`, as [`TypedSession::evaluate`]
    /// computes them.
    pub fn predict_logits(&self, data: &Dataset) -> Result<Vec<f32>> {
        let model = self.eval_model()?;
        match self.quant.qat.as_ref().and_then(|q| q.eval_ranges()) {
            Some((bits, mut ranges)) => {
                predict_logits_hooked(&*model, data, self.config.eval_batch_size, &mut ActivationFakeQuant::eval(bits, &mut ranges))
            }
            None => predict_logits_hooked(&*model, data, self.config.eval_batch_size, &mut NoHook),
        }
    }

    /// Predicted class of every sample of `data` (with QAT on, of its fake-quantized weights and
    /// activations).
    pub fn predict(&self, data: &Dataset) -> Result<Vec<usize>> {
        let logits = self.predict_logits(data)?;
        Ok(logits.chunks_exact(M::CLASSES).map(argmax).collect())
    }

    /// Saves the weights as safetensors (atomically).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let arch = M::arch_name();
        let epochs = self.history.epochs.len().to_string();
        let seed = self.config.seed.to_string();
        checkpoint::save_safetensors(&self.model, path, &[("arch", &arch), ("epochs", &epochs), ("seed", &seed)])
    }

    /// Loads weights saved by [`TypedSession::save`]; on error nothing changes. Masks, any
    /// gradual schedule, QAT and k-means codebooks are dropped (they belonged to the old
    /// weights); for a pruned checkpoint, [`TypedSession::mask_zeros`] derives the masks from
    /// its zeros.
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<()> {
        checkpoint::load_safetensors(&mut self.model, path)?;
        self.clear_masks();
        self.quant = TrainingQuant::default();
        Ok(())
    }

    /// Masks every weight that is exactly 0 in the prunable tensors (weights with 2 or more
    /// dimensions), e.g. after loading a pruned checkpoint, so fine-tuning keeps them at 0.
    pub fn mask_zeros(&mut self) -> Result<SparsityReport> {
        let masks = MaskSet::from_zeros(&checkpoint::tensors_of(&self.model));
        self.set_masks(masks)?;
        Ok(self.sparsity())
    }
}

fn format_epoch(r: &EpochRecord, _next: usize) -> String {
    let val = match (r.val_loss, r.val_accuracy) {
        (Some(l), Some(a)) => format!("  val loss {l:.4} acc {:.2}%", a * 100.0),
        _ => String::new(),
    };
    format!(
        "epoch {:>3}  train loss {:.4} acc {:.2}%{}  ({:.1} s, {:.0} samples/s)",
        r.epoch,
        r.train_loss,
        r.train_accuracy * 100.0,
        val,
        r.wall_seconds,
        r.samples as f64 / r.wall_seconds.max(1e-9)
    )
}

/// What [`Session`] needs from a typed session, object-safe so notebooks call compiled code.
trait AnySession {
    fn fit(&mut self, epochs: usize) -> Result<History>;
    fn run(&mut self) -> Result<History>;
    fn evaluate(&self, data: &Dataset) -> Result<EvalReport>;
    fn predict(&self, data: &Dataset) -> Result<Vec<usize>>;
    fn predict_logits(&self, data: &Dataset) -> Result<Vec<f32>>;
    fn history(&self) -> &History;
    fn size(&self) -> SizeReport;
    fn save(&self, path: &Path) -> Result<()>;
    fn load(&mut self, path: &Path) -> Result<()>;
    fn tensors(&self) -> Vec<(String, Vec<usize>, Vec<f32>)>;
    fn set_learning_rate(&mut self, lr: f64) -> Result<()>;
    fn config(&self) -> &TrainConfig;
    fn steps(&self) -> usize;
    fn steps_per_epoch(&self) -> usize;
    fn arch_name(&self) -> String;
    fn prune(&mut self, method: &PruneMethod) -> Result<SparsityReport>;
    fn set_masks(&mut self, masks: MaskSet) -> Result<()>;
    fn masks(&self) -> Option<&MaskSet>;
    fn clear_masks(&mut self);
    fn mask_zeros(&mut self) -> Result<SparsityReport>;
    fn set_gradual_pruning(&mut self, schedule: GradualPruning) -> Result<()>;
    fn sparsity(&self) -> SparsityReport;
    fn sensitivity_scan(&self, data: &Dataset, grid: &[f64]) -> Result<SensitivityScan>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    // for quant_session.rs
    fn quant(&self) -> &TrainingQuant;
    fn quant_mut(&mut self) -> &mut TrainingQuant;
    fn write_tensors(&mut self, tensors: &[TensorValues]) -> Result<()>;
    // transfer and distillation
    fn freeze(&mut self, prefixes: &[&str]) -> Result<Vec<String>>;
    fn freeze_backbone(&mut self) -> Result<Vec<String>>;
    fn unfreeze(&mut self, prefixes: &[&str]) -> Result<()>;
    fn unfreeze_all(&mut self);
    fn set_lr_scale(&mut self, prefix: &str, scale: f64) -> Result<()>;
    fn frozen(&self) -> Vec<String>;
    fn teacher(&self) -> Result<Box<dyn Teacher>>;
    fn set_teacher_boxed(&mut self, teacher: Box<dyn Teacher>, config: DistillConfig) -> Result<()>;
    fn clear_teacher(&mut self);
    fn distillation(&self) -> Option<DistillConfig>;
}

impl<M: Classifier> AnySession for TypedSession<M> {
    fn fit(&mut self, epochs: usize) -> Result<History> {
        TypedSession::fit(self, epochs)
    }
    fn run(&mut self) -> Result<History> {
        TypedSession::fit(self, self.config.epochs)
    }
    fn evaluate(&self, data: &Dataset) -> Result<EvalReport> {
        TypedSession::evaluate(self, data)
    }
    fn predict(&self, data: &Dataset) -> Result<Vec<usize>> {
        TypedSession::predict(self, data)
    }
    fn predict_logits(&self, data: &Dataset) -> Result<Vec<f32>> {
        TypedSession::predict_logits(self, data)
    }
    fn history(&self) -> &History {
        &self.history
    }
    fn size(&self) -> SizeReport {
        size_report(&M::arch_name(), &self.model)
    }
    fn save(&self, path: &Path) -> Result<()> {
        TypedSession::save(self, path)
    }
    fn load(&mut self, path: &Path) -> Result<()> {
        TypedSession::load(self, path)
    }
    fn tensors(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        checkpoint::tensors_of(&self.model)
    }
    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        TypedSession::set_learning_rate(self, lr)
    }
    fn config(&self) -> &TrainConfig {
        &self.config
    }
    fn steps(&self) -> usize {
        self.steps
    }
    fn steps_per_epoch(&self) -> usize {
        TypedSession::steps_per_epoch(self)
    }
    fn arch_name(&self) -> String {
        M::arch_name()
    }
    fn prune(&mut self, method: &PruneMethod) -> Result<SparsityReport> {
        TypedSession::prune(self, method)
    }
    fn set_masks(&mut self, masks: MaskSet) -> Result<()> {
        TypedSession::set_masks(self, masks)
    }
    fn masks(&self) -> Option<&MaskSet> {
        self.masks.as_ref()
    }
    fn clear_masks(&mut self) {
        TypedSession::clear_masks(self)
    }
    fn mask_zeros(&mut self) -> Result<SparsityReport> {
        TypedSession::mask_zeros(self)
    }
    fn set_gradual_pruning(&mut self, schedule: GradualPruning) -> Result<()> {
        TypedSession::set_gradual_pruning(self, schedule)
    }
    fn sparsity(&self) -> SparsityReport {
        TypedSession::sparsity(self)
    }
    fn sensitivity_scan(&self, data: &Dataset, grid: &[f64]) -> Result<SensitivityScan> {
        TypedSession::sensitivity_scan(self, data, grid)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn quant(&self) -> &TrainingQuant {
        &self.quant
    }
    fn quant_mut(&mut self) -> &mut TrainingQuant {
        &mut self.quant
    }
    fn freeze(&mut self, prefixes: &[&str]) -> Result<Vec<String>> {
        TypedSession::freeze(self, prefixes)
    }
    fn freeze_backbone(&mut self) -> Result<Vec<String>> {
        TypedSession::freeze_backbone(self)
    }
    fn unfreeze(&mut self, prefixes: &[&str]) -> Result<()> {
        TypedSession::unfreeze(self, prefixes)
    }
    fn unfreeze_all(&mut self) {
        TypedSession::unfreeze_all(self)
    }
    fn set_lr_scale(&mut self, prefix: &str, scale: f64) -> Result<()> {
        TypedSession::set_lr_scale(self, prefix, scale)
    }
    fn frozen(&self) -> Vec<String> {
        TypedSession::frozen(self)
    }
    fn teacher(&self) -> Result<Box<dyn Teacher>> {
        Ok(Box::new(self.eval_model()?.into_owned()))
    }
    fn set_teacher_boxed(&mut self, teacher: Box<dyn Teacher>, config: DistillConfig) -> Result<()> {
        TypedSession::set_teacher_boxed(self, teacher, config)
    }
    fn clear_teacher(&mut self) {
        TypedSession::clear_teacher(self)
    }
    fn distillation(&self) -> Option<DistillConfig> {
        TypedSession::distillation(self)
    }
    fn write_tensors(&mut self, tensors: &[TensorValues]) -> Result<()> {
        crate::quant::write_tensors(&mut self.model, tensors)?;
        // weights changed outside training: pruned weights stay pruned
        match &self.masks {
            Some(m) => m.apply(&mut self.model),
            None => Ok(()),
        }
    }
}

/// A training session for one of the built-in architectures, with no generic parameters, so
/// notebook cells that use it compile in about a second (the training code was compiled once,
/// with the library).
///
/// ```no_run
/// use lepton::prelude::*;
/// # fn main() -> lepton::Result<()> {
/// let (train, val) = fashion_mnist(Split::Train)?.split_validation(0.1, 0)?;
/// let mut s = Session::new(Arch::LeNet300, train, Some(val), TrainConfig::default())?;
/// s.fit(2)?;          // two epochs
/// s.fit(1)?;          // one more: optimiser state and history carry on
/// let report = s.evaluate(&fashion_mnist(Split::Test)?)?;
/// s.save("checkpoints/lenet300.safetensors")?;
/// # Ok(()) }
/// ```
pub struct Session {
    arch: Option<Arch>,
    inner: Box<dyn AnySession>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("arch", &self.arch_name())
            .field("epochs", &self.history().epochs.len())
            .field("steps", &self.steps())
            .field("config", self.config())
            .finish()
    }
}

impl Session {
    /// A new session with weights initialised from `config.seed`.
    pub fn new(arch: Arch, train: Dataset, val: Option<Dataset>, config: TrainConfig) -> Result<Session> {
        let inner: Box<dyn AnySession> = match arch {
            Arch::LeNet300 => Box::new(TypedSession::<LeNet300>::new(train, val, config)?),
            Arch::LeNet5 => Box::new(TypedSession::<LeNet5>::new(train, val, config)?),
            Arch::SmallMlp => Box::new(TypedSession::<SmallMlp>::new(train, val, config)?),
            Arch::LeNet5Padded => Box::new(TypedSession::<LeNet5Padded>::new(train, val, config)?),
        };
        Ok(Session { arch: Some(arch), inner })
    }

    /// A new session for `arch` with a `classes`-way head instead of its 10-way one (2, 5 or
    /// 10 for the built-in architectures; any other number through the generic
    /// [`crate::transfer::swap_head`] and [`Session::from_model`]), e.g. to train from scratch
    /// on the digits 5–9 relabelled 0–4.
    pub fn with_classes(arch: Arch, classes: usize, train: Dataset, val: Option<Dataset>, config: TrainConfig) -> Result<Session> {
        let inner: Box<dyn AnySession> = match (arch, classes) {
            (_, 10) => return Session::new(arch, train, val, config),
            (Arch::LeNet300, 5) => Box::new(TypedSession::<Mlp<784, 300, 100, 5>>::new(train, val, config)?),
            (Arch::LeNet300, 2) => Box::new(TypedSession::<Mlp<784, 300, 100, 2>>::new(train, val, config)?),
            (Arch::LeNet5, 5) => Box::new(TypedSession::<LeNet5Net<6, 16, 256, 120, 84, 5>>::new(train, val, config)?),
            (Arch::LeNet5, 2) => Box::new(TypedSession::<LeNet5Net<6, 16, 256, 120, 84, 2>>::new(train, val, config)?),
            _ => return Err(unsupported_classes(classes, &arch.to_string())),
        };
        Ok(Session { arch: None, inner })
    }

    /// Transfer learning: a new session on a new task whose model is this one with its head
    /// (`fc3`) replaced by a freshly initialised `classes`-way one, drawn from `config.seed`
    /// (the typed [`crate::transfer::swap_head`]). Every backbone tensor is copied bit for bit;
    /// the masks of a pruned backbone come along, so fine-tuning keeps its zeros. Built-in
    /// architectures (with 2, 5 or 10 classes) to 2, 5 or 10 classes; others through
    /// `swap_head` and [`Session::from_model`].
    pub fn transfer(&self, classes: usize, train: Dataset, val: Option<Dataset>, config: TrainConfig) -> Result<Session> {
        self.transfer_impl(classes, None, train, val, config)
    }

    /// [`Session::transfer`] (`keep = None`) or [`Session::transfer_layers`], for the six
    /// compiled source types.
    fn transfer_impl(&self, classes: usize, keep: Option<&[&str]>, train: Dataset, val: Option<Dataset>, config: TrainConfig) -> Result<Session> {
        macro_rules! from {
            ($($t:ty),*) => {$(
                if let Some(s) = self.typed::<$t>() {
                    return transfer_from(s, classes, keep, train, val, config);
                }
            )*};
        }
        from!(
            LeNet300,
            Mlp<784, 300, 100, 5>,
            Mlp<784, 300, 100, 2>,
            LeNet5,
            LeNet5Net<6, 16, 256, 120, 84, 5>,
            LeNet5Net<6, 16, 256, 120, 84, 2>
        );
        Err(unsupported_classes(classes, &self.arch_name()))
    }

    /// Transfer of some layers only: a new session whose model has this one's tensors under
    /// the `keep` prefixes (e.g. `&["conv1", "conv2"]`) and every other tensor — the
    /// `classes`-way head and the layers not kept — freshly initialised from `config.seed`,
    /// exactly as `Session::with_classes(arch, classes, …)` with that seed would draw them
    /// (the generic [`crate::transfer::transfer_layers`]). Masks of kept tensors come along.
    pub fn transfer_layers(&self, classes: usize, keep: &[&str], train: Dataset, val: Option<Dataset>, config: TrainConfig) -> Result<Session> {
        self.transfer_impl(classes, Some(keep), train, val, config)
    }

    /// Freezes every tensor under each prefix (`fc1.weight`, or a layer such as `conv1`): it
    /// stays bit-identical through training. Returns every frozen path. A prefix that matches
    /// no tensor is an error (and nothing changes).
    pub fn freeze(&mut self, prefixes: &[&str]) -> Result<Vec<String>> {
        self.inner.freeze(prefixes)
    }
    /// Freezes everything but the head (`fc3`). Returns the frozen paths.
    pub fn freeze_backbone(&mut self) -> Result<Vec<String>> {
        self.inner.freeze_backbone()
    }
    /// Lets the tensors under each prefix train again at the full learning rate.
    pub fn unfreeze(&mut self, prefixes: &[&str]) -> Result<()> {
        self.inner.unfreeze(prefixes)
    }
    /// Unfreezes everything and drops all learning-rate scales.
    pub fn unfreeze_all(&mut self) {
        self.inner.unfreeze_all()
    }
    /// Scales the learning rate of the tensors under `prefix` (≥ 0; 0 freezes).
    pub fn set_lr_scale(&mut self, prefix: &str, scale: f64) -> Result<()> {
        self.inner.set_lr_scale(prefix, scale)
    }
    /// The frozen tensor paths.
    pub fn frozen(&self) -> Vec<String> {
        self.inner.frozen()
    }
    /// Knowledge distillation from `teacher` (its current weights, copied; later training of
    /// the teacher does not change them) in the following `fit` calls. See
    /// [`crate::distill`] for the loss. The teacher must take the same inputs and give as many
    /// logits as this model.
    pub fn distill_from(&mut self, teacher: &Session, config: DistillConfig) -> Result<()> {
        let t = teacher.inner.teacher()?;
        self.inner.set_teacher_boxed(t, config)
    }
    /// Stops distilling.
    pub fn clear_teacher(&mut self) {
        self.inner.clear_teacher()
    }
    /// The distillation settings, if a teacher is set.
    pub fn distillation(&self) -> Option<DistillConfig> {
        self.inner.distillation()
    }

    /// A session around any [`Classifier`] model, e.g. a network from structured pruning
    /// ([`crate::prune::Shrink`]). Generic: the cell calling it compiles the training code for
    /// `M` once (a few seconds in evcxr).
    pub fn from_model<M: Classifier>(model: M, train: Dataset, val: Option<Dataset>, config: TrainConfig) -> Result<Session> {
        let inner = TypedSession::<M>::from_model(model, train, val, config)?;
        let arch = [Arch::LeNet300, Arch::LeNet5, Arch::SmallMlp, Arch::LeNet5Padded].into_iter().find(|a| a.name() == M::arch_name());
        Ok(Session { arch, inner: Box::new(inner) })
    }

    /// A new session whose weights come from a checkpoint saved by [`Session::save`].
    pub fn from_checkpoint(
        arch: Arch,
        path: impl AsRef<Path>,
        train: Dataset,
        val: Option<Dataset>,
        config: TrainConfig,
    ) -> Result<Session> {
        let mut s = Session::new(arch, train, val, config)?;
        s.load(path)?;
        Ok(s)
    }

    /// The built-in architecture, if the model is one.
    pub fn arch(&self) -> Option<Arch> {
        self.arch
    }
    /// The architecture's name, e.g. `LeNet-300-100` or `MLP-784-100-50-10`.
    pub fn arch_name(&self) -> String {
        self.inner.arch_name()
    }
    /// Optimiser steps per epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.inner.steps_per_epoch()
    }
    /// Prunes the current weights by `method` and keeps the masks: from now on they are
    /// re-applied after every optimiser step, so pruned weights stay exactly 0 while
    /// fine-tuning. Replaces earlier masks. Returns the new per-tensor sparsity.
    pub fn prune(&mut self, method: &PruneMethod) -> Result<SparsityReport> {
        self.inner.prune(method)
    }
    /// Sets masks computed elsewhere (checked against the model's tensor paths and shapes).
    pub fn set_masks(&mut self, masks: MaskSet) -> Result<()> {
        self.inner.set_masks(masks)
    }
    /// The current masks, if any.
    pub fn masks(&self) -> Option<&MaskSet> {
        self.inner.masks()
    }
    /// Drops masks and any gradual schedule.
    pub fn clear_masks(&mut self) {
        self.inner.clear_masks()
    }
    /// Masks the weights that are exactly 0 (after loading a pruned checkpoint).
    pub fn mask_zeros(&mut self) -> Result<SparsityReport> {
        self.inner.mask_zeros()
    }
    /// Gradual pruning during the following `fit` calls (Zhu & Gupta 2017).
    pub fn set_gradual_pruning(&mut self, schedule: GradualPruning) -> Result<()> {
        self.inner.set_gradual_pruning(schedule)
    }
    /// Per-tensor sparsity and stored size (dense, CSR, relative indices).
    pub fn sparsity(&self) -> SparsityReport {
        self.inner.sparsity()
    }
    /// Accuracy on `data` with each prunable tensor pruned alone to each sparsity of `grid`.
    pub fn sensitivity_scan(&self, data: &Dataset, grid: &[f64]) -> Result<SensitivityScan> {
        self.inner.sensitivity_scan(data, grid)
    }
    /// Trains `epochs` more epochs; returns the whole history so far.
    pub fn fit(&mut self, epochs: usize) -> Result<History> {
        self.inner.fit(epochs)
    }
    /// Trains `config.epochs` more epochs.
    pub fn run(&mut self) -> Result<History> {
        self.inner.run()
    }
    /// Evaluates on `data`.
    pub fn evaluate(&self, data: &Dataset) -> Result<EvalReport> {
        self.inner.evaluate(data)
    }
    /// Predicted class per sample.
    pub fn predict(&self, data: &Dataset) -> Result<Vec<usize>> {
        self.inner.predict(data)
    }
    /// Logits per sample, row-major `(len, classes)`, as `evaluate` computes them (with QAT
    /// on, through the fake-quantized weights and activations).
    pub fn predict_logits(&self, data: &Dataset) -> Result<Vec<f32>> {
        self.inner.predict_logits(data)
    }
    /// The history so far.
    pub fn history(&self) -> &History {
        self.inner.history()
    }
    /// Parameters and bytes per tensor.
    pub fn size(&self) -> SizeReport {
        self.inner.size()
    }
    /// Saves the weights as safetensors (atomic write).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.inner.save(path.as_ref())
    }
    /// Loads weights; on error the session is unchanged.
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<()> {
        self.inner.load(path.as_ref())
    }
    /// Every tensor as (path, shape, values), in the model's order.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        self.inner.tensors()
    }
    /// Changes the learning rate for the following epochs.
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        self.inner.set_learning_rate(lr)
    }
    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        self.inner.config()
    }
    /// Optimiser steps taken so far.
    pub fn steps(&self) -> usize {
        self.inner.steps()
    }
    /// The typed session inside, e.g. `s.typed::<LeNet5>()`, for techniques that need the types.
    pub fn typed<M: Classifier>(&self) -> Option<&TypedSession<M>> {
        self.inner.as_any().downcast_ref()
    }
    /// The typed session inside, mutably.
    pub fn typed_mut<M: Classifier>(&mut self) -> Option<&mut TypedSession<M>> {
        self.inner.as_any_mut().downcast_mut()
    }

    // Access for the quantization methods in quant_session.rs (a sibling module).
    pub(super) fn quant_state(&self) -> &TrainingQuant {
        self.inner.quant()
    }
    pub(super) fn quant_state_mut(&mut self) -> &mut TrainingQuant {
        self.inner.quant_mut()
    }
    pub(super) fn write_tensors(&mut self, tensors: &[TensorValues]) -> Result<()> {
        self.inner.write_tensors(tensors)
    }
}

fn unsupported_classes(classes: usize, arch: &str) -> LeptonError {
    if classes == 0 {
        return LeptonError::config("classes", 0, "a head needs at least 1 class");
    }
    LeptonError::config(
        "classes",
        classes,
        format!("{arch}: the non-generic API has 2-, 5- and 10-way heads for LeNet-300-100 and LeNet-5; for other cases use lepton::transfer::swap_head::<_, K> and Session::from_model"),
    )
}

/// [`Session::transfer`] for one source type.
fn transfer_from<M>(
    s: &TypedSession<M>,
    classes: usize,
    keep: Option<&[&str]>,
    train: Dataset,
    val: Option<Dataset>,
    config: TrainConfig,
) -> Result<Session>
where
    M: Classifier + SwapHead<2> + SwapHead<5> + SwapHead<10>,
{
    let seed = config.seed;
    macro_rules! build {
        ($k:literal) => {
            match keep {
                None => Session::from_model(swap_head::<M, $k>(s.model(), seed)?, train, val, config)?,
                Some(keep) => Session::from_model(transfer_layers::<M, $k>(s.model(), keep, seed)?, train, val, config)?,
            }
        };
    }
    let mut out = match classes {
        2 => build!(2),
        5 => build!(5),
        10 => build!(10),
        _ => return Err(unsupported_classes(classes, &M::arch_name())),
    };
    let kept_path = |p: &str| match keep {
        None => !under_prefix(p, HEAD),
        Some(keep) => keep.iter().any(|k| under_prefix(p, k)),
    };
    if let Some(masks) = s.masks() {
        let mut kept = MaskSet::new();
        for (path, m) in masks.iter().filter(|(p, _)| kept_path(p)) {
            kept.insert(path.clone(), m.shape.clone(), m.keep.clone())?;
        }
        if !kept.is_empty() {
            out.set_masks(kept)?;
        }
    }
    Ok(out)
}
