//! Few-shot experiments: accuracy against the number of labelled examples per class, for
//! training from scratch and for transfer from a trained backbone, over several seeds.

use crate::data::Dataset;
use crate::error::{LeptonError, Result};
use crate::nn::Arch;
use crate::report::{RunRow, RunTable};
use crate::train::{Session, TrainConfig};

/// How many labelled examples per class a run trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shots {
    /// `k` examples of every class, drawn with the run's seed.
    K(usize),
    /// The whole training set.
    All,
}

impl Shots {
    /// The value on a plot's x axis: `k`, or for [`Shots::All`] the mean number of examples
    /// per class of `train` (`len / classes`), so the whole set sits where it belongs on a log
    /// axis.
    pub fn x(&self, train: &Dataset) -> f64 {
        match self {
            Shots::K(k) => *k as f64,
            Shots::All => train.len() as f64 / train.num_classes().max(1) as f64,
        }
    }
}

/// What a few-shot run starts from.
#[derive(Debug, Clone, Copy)]
pub enum TransferMethod<'a> {
    /// A freshly initialised model of this architecture, with as many classes as the data.
    Scratch(Arch),
    /// The backbone of this session, frozen; only a new head trains.
    Frozen(&'a Session),
    /// The backbone of this session with a new head, and a learning-rate scale per prefix
    /// (0 freezes): `&[("conv1", 0.0), ("conv2", 0.0)]` keeps the convolutional features and
    /// retrains the classifier; `&[("conv1", 0.1), ("conv2", 0.1)]` fine-tunes them slowly.
    Scaled(&'a Session, &'a [(&'a str, f64)]),
    /// The backbone of this session with a new head, everything trained.
    FineTune(&'a Session),
    /// Only the layers under `keep` from this session (e.g. `&["conv1", "conv2"]`), every
    /// other layer freshly initialised from the run's seed (so the same as the scratch model of
    /// that seed), the kept layers frozen if `freeze`.
    Layers { source: &'a Session, keep: &'a [&'a str], freeze: bool },
}

/// Settings of a few-shot experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct FewShotConfig {
    /// Optimiser, learning rate and batch size of every run (the batch is capped at the number
    /// of training samples; the seed is each run's own; progress lines are off).
    pub train: TrainConfig,
    /// Optimiser steps per run: a run trains `⌈steps / steps per epoch⌉` epochs (at least 1, at
    /// most `max_epochs`), so runs with 10 or 10 000 samples get a comparable budget.
    pub steps: usize,
    /// Upper bound on the epochs of a run.
    pub max_epochs: usize,
}

impl Default for FewShotConfig {
    /// Adam at 1e-3, batch 64, 300 steps, at most 300 epochs.
    fn default() -> Self {
        FewShotConfig { train: TrainConfig::default().with_batch_size(64), steps: 300, max_epochs: 300 }
    }
}

/// Runs `method` on `k` examples per class of `train` for every `shots` and every seed, and
/// measures each run on `test`. Returns one [`RunRow`] per run (experiment `experiment`,
/// method `label`, `x` = [`Shots::x`] of `train`); [`RunTable::summary`] gives mean ± std over seeds.
///
/// The `k` examples of a seed are the same for every method (drawn by
/// [`Dataset::per_class_sample`] with that seed), so methods are compared on the same data. A
/// transferred model gets a new head drawn from the run's seed, and keeps the source's masks.
/// Errors: no shots or seeds, `k = 0` or larger than a class has, zero steps, a test set with
/// other features, a source that cannot change heads to the data's number of classes.
#[allow(clippy::too_many_arguments)]
pub fn few_shot(
    experiment: &str,
    label: &str,
    method: TransferMethod<'_>,
    train: &Dataset,
    test: &Dataset,
    shots: &[Shots],
    seeds: &[u64],
    config: &FewShotConfig,
) -> Result<RunTable> {
    if shots.is_empty() || seeds.is_empty() {
        return Err(LeptonError::config("shots / seeds", format!("{} / {}", shots.len(), seeds.len()), "need at least one of each"));
    }
    if config.steps == 0 || config.max_epochs == 0 {
        return Err(LeptonError::config("steps / max_epochs", format!("{} / {}", config.steps, config.max_epochs), "must be at least 1"));
    }
    config.train.validate()?;
    let classes = train.num_classes();
    let mut table = RunTable::new("k per class");
    for &s in shots {
        for &seed in seeds {
            let data = match s {
                Shots::K(k) => train.per_class_sample(k, seed)?,
                Shots::All => train.clone(),
            };
            let n = data.len();
            let tc = config.train.clone().with_seed(seed).with_progress(false).with_batch_size(config.train.batch_size.min(n).max(1));
            let spe = n.div_ceil(tc.batch_size);
            let epochs = config.steps.div_ceil(spe).clamp(1, config.max_epochs);
            let mut session = match method {
                TransferMethod::Scratch(arch) => Session::with_classes(arch, classes, data, None, tc)?,
                TransferMethod::Frozen(src) => {
                    let mut t = src.transfer(classes, data, None, tc)?;
                    t.freeze_backbone()?;
                    t
                }
                TransferMethod::Scaled(src, scales) => {
                    let mut t = src.transfer(classes, data, None, tc)?;
                    for (prefix, scale) in scales.iter() {
                        t.set_lr_scale(prefix, *scale)?;
                    }
                    t
                }
                TransferMethod::FineTune(src) => src.transfer(classes, data, None, tc)?,
                TransferMethod::Layers { source, keep, freeze } => {
                    let mut t = source.transfer_layers(classes, keep, data, None, tc)?;
                    if freeze {
                        t.freeze(keep)?;
                    }
                    t
                }
            };
            let history = session.fit(epochs)?;
            let report = session.evaluate(test)?;
            let correct: usize = report.confusion.iter().enumerate().map(|(i, r)| r.get(i).copied().unwrap_or(0)).sum();
            table.push(RunRow {
                experiment: experiment.to_string(),
                method: label.to_string(),
                x: s.x(train),
                seed,
                accuracy: report.accuracy,
                errors: report.samples - correct.min(report.samples),
                test_samples: report.samples,
                train_samples: n,
                steps: session.steps(),
                train_seconds: history.epochs.iter().map(|e| e.wall_seconds).sum(),
            });
        }
    }
    Ok(table)
}
