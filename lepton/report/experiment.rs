//! The experiment table: every result is a row.
//!
//! Each notebook appends one [`ExperimentRow`] per trained or compressed model and saves the
//! table as Parquet; later notebooks read it back and compare accuracy against size.

use std::fs::File;
use std::path::Path;

use crate::polars::{DataFrame, DataType, ParquetReader, SerReader};

use super::table::{f64_col, frame, str_col, u64_col, Tabular};
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

    /// Reads a table written by [`Tabular::write_parquet`].
    pub fn read_parquet(path: impl AsRef<Path>) -> Result<ExperimentTable> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| LeptonError::io("open", path, e))?;
        let df = ParquetReader::new(file)
            .finish()
            .map_err(|e| LeptonError::table(format!("reading {}", path.display()), e))?;
        Self::from_polars(&df)
    }

    /// Rebuilds a table from a DataFrame with the columns of [`ExperimentTable::to_polars`].
    /// Integer columns may be any numeric type (CSV readers give `Int64`); a null string
    /// reads as `""`, a null number is an error.
    pub fn from_polars(df: &DataFrame) -> Result<ExperimentTable> {
        let strings = |name: &str| -> Result<Vec<String>> {
            let col = cast(df, name, &DataType::String)?;
            let ca = col
                .str()
                .map_err(|e| LeptonError::table(column_what(name), e))?;
            Ok(ca
                .iter()
                .map(|v| v.unwrap_or_default().to_owned())
                .collect())
        };
        let u64s = |name: &str| -> Result<Vec<u64>> {
            let col = cast(df, name, &DataType::UInt64)?;
            let ca = col
                .u64()
                .map_err(|e| LeptonError::table(column_what(name), e))?;
            ca.iter()
                .map(|v| v.ok_or_else(|| null_error(name)))
                .collect()
        };
        let f64s = |name: &str| -> Result<Vec<f64>> {
            let col = cast(df, name, &DataType::Float64)?;
            let ca = col
                .f64()
                .map_err(|e| LeptonError::table(column_what(name), e))?;
            ca.iter()
                .map(|v| v.ok_or_else(|| null_error(name)))
                .collect()
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
        let rows = (0..df.height())
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

fn column_what(name: &str) -> String {
    format!("experiment table column {name:?}")
}

fn null_error(name: &str) -> LeptonError {
    LeptonError::table(column_what(name), "contains a null value")
}

/// Column `name` of `df`, cast to `dtype` (strict: values that do not fit are an error).
fn cast(df: &DataFrame, name: &str, dtype: &DataType) -> Result<crate::polars::Column> {
    let col = df
        .column(name)
        .map_err(|e| LeptonError::table(column_what(name), e))?;
    col.strict_cast(dtype)
        .map_err(|e| LeptonError::table(column_what(name), e))
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
    fn to_polars(&self) -> Result<DataFrame> {
        let r = &self.rows;
        let columns = vec![
            str_col("model", r.iter().map(|x| x.model.as_str())),
            str_col("dataset", r.iter().map(|x| x.dataset.as_str())),
            str_col("stage", r.iter().map(|x| x.stage.as_str())),
            crate::polars::Column::new(
                "seed".into(),
                r.iter().map(|x| x.seed).collect::<Vec<u64>>(),
            ),
            u64_col("epochs", r.iter().map(|x| x.epochs)),
            f64_col("test_accuracy", r.iter().map(|x| x.test_accuracy)),
            f64_col("test_loss", r.iter().map(|x| x.test_loss)),
            u64_col("params", r.iter().map(|x| x.params)),
            u64_col("bytes", r.iter().map(|x| x.bytes)),
            f64_col("train_seconds", r.iter().map(|x| x.train_seconds)),
            str_col("notes", r.iter().map(|x| x.notes.as_str())),
        ];
        frame("experiment table", r.len(), columns)
    }
}
