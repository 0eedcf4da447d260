//! Plain result records. Training and evaluation fill them; the rest of `report` renders them
//! (HTML/SVG inline in evcxr, Polars DataFrames, Parquet/CSV, SVG/PNG figures).

/// One epoch of a training run.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    /// 1-based epoch number, counted across repeated `fit` calls.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (cross-entropy, nats).
    pub train_loss: f64,
    /// Training accuracy over the epoch, in [0, 1].
    pub train_accuracy: f64,
    /// Validation loss after the epoch, if a validation set was given.
    pub val_loss: Option<f64>,
    /// Validation accuracy after the epoch, in [0, 1].
    pub val_accuracy: Option<f64>,
    /// Learning rate used during the epoch.
    pub learning_rate: f64,
    /// Wall-clock seconds spent on the epoch (training and validation).
    pub wall_seconds: f64,
    /// Training samples seen during the epoch.
    pub samples: usize,
}

/// The per-epoch history of a training session. `fit` appends to it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    /// Free-form name of the run (model and dataset), used in titles and tables.
    pub name: String,
    /// The epochs in order, one record each.
    pub epochs: Vec<EpochRecord>,
}

/// The result of evaluating a classifier on a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    /// Model name.
    pub model: String,
    /// Dataset name, including the split (e.g. `fashion-mnist/test`).
    pub dataset: String,
    /// Number of evaluated samples.
    pub samples: usize,
    /// Mean cross-entropy loss (nats).
    pub loss: f64,
    /// Overall accuracy in [0, 1].
    pub accuracy: f64,
    /// Accuracy of each true class in [0, 1] (NaN-free: a class with no samples gets 0 and
    /// `class_counts` shows 0).
    pub per_class_accuracy: Vec<f64>,
    /// Number of samples of each true class.
    pub class_counts: Vec<usize>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Class names, one per class (e.g. "T-shirt/top" or "0").
    pub class_names: Vec<String>,
}

/// Size of one tensor of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSize {
    /// Tensor path as in checkpoints, e.g. `fc1.weight`.
    pub path: String,
    /// Shape of the tensor.
    pub shape: Vec<usize>,
    /// Number of scalar parameters.
    pub params: usize,
    /// Bytes in the stored representation (dense f32: 4 per parameter).
    pub bytes: usize,
}

/// Per-tensor and total size of a model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SizeReport {
    /// Model name.
    pub model: String,
    /// One entry per tensor, in checkpoint order.
    pub tensors: Vec<TensorSize>,
}

impl SizeReport {
    /// Total parameter count.
    pub fn total_params(&self) -> usize {
        self.tensors.iter().map(|t| t.params).sum()
    }
    /// Total bytes.
    pub fn total_bytes(&self) -> usize {
        self.tensors.iter().map(|t| t.bytes).sum()
    }
}
