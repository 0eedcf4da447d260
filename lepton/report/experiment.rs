//! The experiment table: every result is a row.
//!
//! Each notebook appends one [`ExperimentRow`] per trained or compressed model and saves the
//! table as Parquet (`lepton-polars`); later notebooks read it back and compare accuracy
//! against size.

use super::table::{f64_col, str_col, u64_col, Column, Table, Tabular, Values};
use crate::error::{LeptonError, Result};

/// One result: a model at one compression stage, trained with one seed, measured on a test set.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentRow {
    /// Model name, e.g. `lenet300`.
    pub model: String,
    /// Dataset name, e.g. `fashion-mnist`.
    pub dataset: String,
    /// Compression stage, e.g. `baseline`, `pruned-90`, `int8`.
    pub stage: String,
    /// Seed of the run.
    pub seed: u64,
    /// Training epochs behind this result.
    pub epochs: usize,
    /// Test accuracy in [0, 1].
    pub test_accuracy: f64,
    /// Mean test cross-entropy loss (nats).
    pub test_loss: f64,
    /// Parameter count (non-zero parameters for sparse models, if the stage counts them so).
    pub params: usize,
    /// Stored size in bytes.
    pub bytes: usize,
    /// Wall-clock training time in seconds.
    pub train_seconds: f64,
    /// Free-form remarks.
    pub notes: String,
}

/// A list of [`ExperimentRow`]s, one per result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExperimentTable {
    /// The rows, in the order they were pushed.
    pub rows: Vec<ExperimentRow>,
}

impl ExperimentTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a row.
    pub fn push(&mut self, row: ExperimentRow) {
        self.rows.push(row);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True if the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rebuilds a table from a [`Table`] with the columns of [`ExperimentTable::to_table`]
    /// (`lepton-polars` reads Parquet and CSV files into one). Integer columns may hold any
    /// whole numbers (CSV readers give `i64`); a null string reads as `""`, a null number is
    /// an error naming the column.
    pub fn from_table(table: &Table) -> Result<ExperimentTable> {
        let strings = |name: &str| -> Result<Vec<String>> {
            Ok(table.column(name)?.strs()?.into_iter().map(Option::unwrap_or_default).collect())
        };
        let u64s = |name: &str| -> Result<Vec<u64>> {
            table.column(name)?.u64s()?.into_iter().map(|v| v.ok_or_else(|| null_error(name))).collect()
        };
        let f64s = |name: &str| -> Result<Vec<f64>> {
            table.column(name)?.f64s()?.into_iter().map(|v| v.ok_or_else(|| null_error(name))).collect()
        };
        let (model, dataset, stage, notes) = (
            strings("model")?,
            strings("dataset")?,
            strings("stage")?,
            strings("notes")?,
        );
        let (seed, epochs, params, bytes) = (
            u64s("seed")?,
            u64s("epochs")?,
            u64s("params")?,
            u64s("bytes")?,
        );
        let (test_accuracy, test_loss, train_seconds) = (
            f64s("test_accuracy")?,
            f64s("test_loss")?,
            f64s("train_seconds")?,
        );
        let rows = (0..table.height())
            .map(|i| ExperimentRow {
                model: model[i].clone(),
                dataset: dataset[i].clone(),
                stage: stage[i].clone(),
                seed: seed[i],
                epochs: epochs[i] as usize,
                test_accuracy: test_accuracy[i],
                test_loss: test_loss[i],
                params: params[i] as usize,
                bytes: bytes[i] as usize,
                train_seconds: train_seconds[i],
                notes: notes[i].clone(),
            })
            .collect();
        Ok(ExperimentTable { rows })
    }
}

fn null_error(name: &str) -> LeptonError {
    LeptonError::table(format!("experiment table column {name:?}"), "contains a null value")
}

impl FromIterator<ExperimentRow> for ExperimentTable {
    fn from_iter<I: IntoIterator<Item = ExperimentRow>>(iter: I) -> Self {
        ExperimentTable {
            rows: iter.into_iter().collect(),
        }
    }
}

impl Extend<ExperimentRow> for ExperimentTable {
    fn extend<I: IntoIterator<Item = ExperimentRow>>(&mut self, iter: I) {
        self.rows.extend(iter);
    }
}

/// Columns, one row per result: `model`, `dataset`, `stage`, `seed`, `epochs`,
/// `test_accuracy` (fraction), `test_loss`, `params`, `bytes`, `train_seconds`, `notes`.
impl Tabular for ExperimentTable {
    fn to_table(&self) -> Result<Table> {
        let r = &self.rows;
        let columns = vec![
            str_col("model", r.iter().map(|x| x.model.as_str())),
            str_col("dataset", r.iter().map(|x| x.dataset.as_str())),
            str_col("stage", r.iter().map(|x| x.stage.as_str())),
            Column::new("seed", Values::U64(r.iter().map(|x| Some(x.seed)).collect())),
            u64_col("epochs", r.iter().map(|x| x.epochs)),
            f64_col("test_accuracy", r.iter().map(|x| x.test_accuracy)),
            f64_col("test_loss", r.iter().map(|x| x.test_loss)),
            u64_col("params", r.iter().map(|x| x.params)),
            u64_col("bytes", r.iter().map(|x| x.bytes)),
            f64_col("train_seconds", r.iter().map(|x| x.train_seconds)),
            str_col("notes", r.iter().map(|x| x.notes.as_str())),
        ];
        Table::new("experiment table", r.len(), columns)
    }
}
