//! Training settings with documented defaults, validated before a run starts.

use crate::error::{LeptonError, Result};

/// The optimiser and its own settings (the learning rate and weight decay live in
/// [`TrainConfig`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// Adam (Kingma & Ba 2015). Defaults: β₁ = 0.9, β₂ = 0.999, ε = 1e-8 (PyTorch's).
    Adam { beta1: f64, beta2: f64, eps: f64 },
    /// SGD with classic momentum (PyTorch's `SGD(momentum=…)`); `momentum = 0` is plain SGD.
    Sgd { momentum: f64 },
}

impl Optimizer {
    /// Adam with PyTorch's defaults.
    pub fn adam() -> Self {
        Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
    /// SGD with the given momentum.
    pub fn sgd(momentum: f64) -> Self {
        Optimizer::Sgd { momentum }
    }
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer::adam()
    }
}

/// Settings of a training session.
///
/// Defaults reproduce the common PyTorch recipe for these models: Adam, learning rate 1e-3,
/// batch 128, no weight decay, seed 0, 10 epochs.
///
/// ```
/// use lepton::train::{TrainConfig, Optimizer};
/// let cfg = TrainConfig::default().with_epochs(3).with_seed(7).with_optimizer(Optimizer::sgd(0.9)).with_learning_rate(0.05);
/// assert_eq!((cfg.epochs, cfg.batch_size, cfg.seed), (3, 128, 7));
/// assert!(cfg.validate().is_ok());
/// assert!(TrainConfig::default().with_batch_size(0).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Epochs for [`crate::train::Session::run`] (each `fit(n)` call says its own `n`). Default 10.
    pub epochs: usize,
    /// Samples per optimiser step. Default 128.
    pub batch_size: usize,
    /// Optimiser. Default Adam.
    pub optimizer: Optimizer,
    /// Learning rate, finite and > 0. Default 1e-3.
    pub learning_rate: f64,
    /// L2 weight decay added to the gradient (PyTorch's `weight_decay`), ≥ 0. Default 0.
    pub weight_decay: f64,
    /// Seed of the initial weights and of every epoch's shuffle. Default 0.
    pub seed: u64,
    /// Batch size used for evaluation (no gradients). Default 1000.
    pub eval_batch_size: usize,
    /// Print one line per epoch (and a progress bar in a terminal). Default true.
    pub progress: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 128,
            optimizer: Optimizer::adam(),
            learning_rate: 1e-3,
            weight_decay: 0.0,
            seed: 0,
            eval_batch_size: 1000,
            progress: true,
        }
    }
}

impl TrainConfig {
    /// Sets [`TrainConfig::epochs`].
    pub fn with_epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }
    /// Sets [`TrainConfig::batch_size`].
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }
    /// Sets [`TrainConfig::optimizer`].
    pub fn with_optimizer(mut self, optimizer: Optimizer) -> Self {
        self.optimizer = optimizer;
        self
    }
    /// Sets [`TrainConfig::learning_rate`].
    pub fn with_learning_rate(mut self, learning_rate: f64) -> Self {
        self.learning_rate = learning_rate;
        self
    }
    /// Sets [`TrainConfig::weight_decay`].
    pub fn with_weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }
    /// Sets [`TrainConfig::seed`].
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Sets [`TrainConfig::progress`].
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }

    /// Checks every setting; the error names the first one out of range.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(LeptonError::config("epochs", self.epochs, "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(LeptonError::config("batch_size", self.batch_size, "must be at least 1"));
        }
        if self.eval_batch_size == 0 {
            return Err(LeptonError::config("eval_batch_size", self.eval_batch_size, "must be at least 1"));
        }
        check_learning_rate(self.learning_rate)?;
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(LeptonError::config("weight_decay", self.weight_decay, "must be finite and ≥ 0"));
        }
        match self.optimizer {
            Optimizer::Adam { beta1, beta2, eps } => {
                if !(0.0..1.0).contains(&beta1) {
                    return Err(LeptonError::config("beta1", beta1, "must be in [0, 1)"));
                }
                if !(0.0..1.0).contains(&beta2) {
                    return Err(LeptonError::config("beta2", beta2, "must be in [0, 1)"));
                }
                if !(eps.is_finite() && eps > 0.0) {
                    return Err(LeptonError::config("eps", eps, "must be finite and > 0"));
                }
            }
            Optimizer::Sgd { momentum } => {
                if !(0.0..1.0).contains(&momentum) {
                    return Err(LeptonError::config("momentum", momentum, "must be in [0, 1)"));
                }
            }
        }
        Ok(())
    }
}

/// A learning rate must be finite and > 0.
pub(crate) fn check_learning_rate(lr: f64) -> Result<()> {
    if lr.is_finite() && lr > 0.0 {
        Ok(())
    } else {
        Err(LeptonError::config("learning_rate", lr, "must be finite and > 0"))
    }
}
