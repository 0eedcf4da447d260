//! Reports as Polars DataFrames, written to Parquet and CSV.
//!
//! Every report type implements [`Tabular`]: one row per epoch, per class or per tensor, with
//! stable snake_case column names. Counts are `UInt64`, measurements `Float64`, names `String`;
//! a missing validation value is a null, not a NaN.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::polars::{Column, CsvWriter, DataFrame, ParquetWriter, SerWriter};

use super::types::{EvalReport, History, SizeReport};
use crate::error::{LeptonError, Result};

/// A record that converts to a Polars DataFrame and writes itself as Parquet or CSV.
///
/// Writers create missing parent directories and write atomically: the file appears complete
/// under its final name or not at all (a temporary file in the same directory is renamed).
pub trait Tabular {
    /// The record as a DataFrame (see each implementation for its columns).
    fn to_polars(&self) -> Result<DataFrame>;

    /// Writes [`Tabular::to_polars`] as a Parquet file at `path`.
    fn write_parquet(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut df = self.to_polars()?;
        write_atomically(path.as_ref(), |file| {
            ParquetWriter::new(file)
                .finish(&mut df)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    /// Writes [`Tabular::to_polars`] as a CSV file (with header) at `path`.
    fn write_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut df = self.to_polars()?;
        write_atomically(path.as_ref(), |file| {
            CsvWriter::new(file)
                .include_header(true)
                .finish(&mut df)
                .map_err(|e| e.to_string())
        })
    }
}

/// A unique temporary path next to `path`, keeping its extension (image encoders pick the
/// format from it).
pub(crate) fn temp_path_for(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let name = format!(".{stem}.tmp-{}-{n}{ext}", std::process::id());
    path.with_file_name(name)
}

/// Creates the parent directory of `path` if it is missing.
pub(crate) fn create_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            fs::create_dir_all(dir).map_err(|e| LeptonError::io("create directory", dir, e))
        }
        _ => Ok(()),
    }
}

/// Renames a finished temporary file over `path`, removing it if the rename fails.
pub(crate) fn commit_temp(tmp: &Path, path: &Path) -> Result<()> {
    fs::rename(tmp, path).map_err(|e| {
        let _ = fs::remove_file(tmp);
        LeptonError::io("rename into", path, e)
    })
}

/// Writes `path` through `write` into a temporary file in the same directory, then renames it.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::result::Result<(), String>,
) -> Result<()> {
    if path.file_name().is_none() {
        return Err(LeptonError::table(
            path.display().to_string(),
            "path has no file name",
        ));
    }
    create_parent(path)?;
    let tmp = temp_path_for(path);
    let mut file = File::create(&tmp).map_err(|e| LeptonError::io("create", &tmp, e))?;
    let written = write(&mut file)
        .map_err(|reason| LeptonError::table(format!("writing {}", path.display()), reason))
        .and_then(|()| {
            file.sync_all()
                .map_err(|e| LeptonError::io("sync", &tmp, e))
        });
    drop(file);
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    commit_temp(&tmp, path)
}

/// Builds a DataFrame of `height` rows, naming the record in any error.
pub(crate) fn frame(what: &str, height: usize, columns: Vec<Column>) -> Result<DataFrame> {
    DataFrame::new(height, columns).map_err(|e| LeptonError::table(what, e))
}

/// `usize` values as a `UInt64` column.
pub(crate) fn u64_col(name: &str, values: impl IntoIterator<Item = usize>) -> Column {
    Column::new(
        name.into(),
        values.into_iter().map(|v| v as u64).collect::<Vec<u64>>(),
    )
}

/// `f64` values as a `Float64` column.
pub(crate) fn f64_col(name: &str, values: impl IntoIterator<Item = f64>) -> Column {
    Column::new(name.into(), values.into_iter().collect::<Vec<f64>>())
}

/// Strings as a `String` column.
pub(crate) fn str_col<S: AsRef<str>>(name: &str, values: impl IntoIterator<Item = S>) -> Column {
    Column::new(
        name.into(),
        values
            .into_iter()
            .map(|s| s.as_ref().to_owned())
            .collect::<Vec<String>>(),
    )
}

/// Tensor shape as text: `[300, 784]` → `"300x784"`, a scalar → `"scalar"`.
pub(crate) fn shape_string(shape: &[usize]) -> String {
    if shape.is_empty() {
        return "scalar".to_owned();
    }
    shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// Columns: `run`, `epoch`, `train_loss`, `train_accuracy`, `val_loss` (nullable),
/// `val_accuracy` (nullable), `learning_rate`, `wall_seconds`, `samples`; one row per epoch.
/// Accuracies are fractions in [0, 1].
impl Tabular for History {
    fn to_polars(&self) -> Result<DataFrame> {
        let e = &self.epochs;
        let columns = vec![
            str_col("run", e.iter().map(|_| self.name.as_str())),
            u64_col("epoch", e.iter().map(|r| r.epoch)),
            f64_col("train_loss", e.iter().map(|r| r.train_loss)),
            f64_col("train_accuracy", e.iter().map(|r| r.train_accuracy)),
            Column::new(
                "val_loss".into(),
                e.iter().map(|r| r.val_loss).collect::<Vec<_>>(),
            ),
            Column::new(
                "val_accuracy".into(),
                e.iter().map(|r| r.val_accuracy).collect::<Vec<_>>(),
            ),
            f64_col("learning_rate", e.iter().map(|r| r.learning_rate)),
            f64_col("wall_seconds", e.iter().map(|r| r.wall_seconds)),
            u64_col("samples", e.iter().map(|r| r.samples)),
        ];
        frame(&format!("history {:?}", self.name), e.len(), columns)
    }
}

impl EvalReport {
    /// Number of classes, checked against the per-class vectors.
    pub(crate) fn checked_classes(&self) -> Result<usize> {
        let n = self.class_counts.len();
        if self.per_class_accuracy.len() != n {
            return Err(LeptonError::table(
                format!("evaluation of {:?}", self.model),
                format!(
                    "{} per-class accuracies but {} class counts",
                    self.per_class_accuracy.len(),
                    n
                ),
            ));
        }
        Ok(n)
    }

    /// Name of class `i`: its entry in `class_names`, or the index if names are missing.
    pub fn class_name(&self, i: usize) -> String {
        self.class_names
            .get(i)
            .cloned()
            .unwrap_or_else(|| i.to_string())
    }

    /// Checks that `confusion` is square with one row per class and returns the class count.
    pub(crate) fn checked_confusion(&self) -> Result<usize> {
        let n = self.confusion.len();
        let what = || format!("confusion matrix of {:?}", self.model);
        if n == 0 {
            return Err(LeptonError::table(what(), "matrix is empty"));
        }
        if let Some((i, row)) = self
            .confusion
            .iter()
            .enumerate()
            .find(|(_, r)| r.len() != n)
        {
            return Err(LeptonError::table(
                what(),
                format!(
                    "row {i} has {} entries, expected {n} (matrix must be square)",
                    row.len()
                ),
            ));
        }
        Ok(n)
    }

    /// The confusion matrix in long form: columns `true`, `predicted`, `count` (all `UInt64`),
    /// one row per (true, predicted) pair including zero counts, in row-major order.
    pub fn confusion_to_polars(&self) -> Result<DataFrame> {
        let n = self.checked_confusion()?;
        let pairs = || (0..n).flat_map(|t| (0..n).map(move |p| (t, p)));
        let columns = vec![
            u64_col("true", pairs().map(|(t, _)| t)),
            u64_col("predicted", pairs().map(|(_, p)| p)),
            u64_col("count", pairs().map(|(t, p)| self.confusion[t][p])),
        ];
        frame(
            &format!("confusion matrix of {:?}", self.model),
            n * n,
            columns,
        )
    }
}

/// Columns: `model`, `dataset`, `class` (index), `class_name`, `samples`, `accuracy`
/// (fraction in [0, 1]); one row per class.
impl Tabular for EvalReport {
    fn to_polars(&self) -> Result<DataFrame> {
        let n = self.checked_classes()?;
        let columns = vec![
            str_col("model", (0..n).map(|_| self.model.as_str())),
            str_col("dataset", (0..n).map(|_| self.dataset.as_str())),
            u64_col("class", 0..n),
            str_col("class_name", (0..n).map(|i| self.class_name(i))),
            u64_col("samples", self.class_counts.iter().copied()),
            f64_col("accuracy", self.per_class_accuracy.iter().copied()),
        ];
        frame(&format!("evaluation of {:?}", self.model), n, columns)
    }
}

/// Columns: `model`, `path`, `shape` (e.g. `"300x784"`), `params`, `bytes`; one row per tensor
/// (totals: [`SizeReport::total_params`], [`SizeReport::total_bytes`]).
impl Tabular for SizeReport {
    fn to_polars(&self) -> Result<DataFrame> {
        let t = &self.tensors;
        let columns = vec![
            str_col("model", t.iter().map(|_| self.model.as_str())),
            str_col("path", t.iter().map(|x| x.path.as_str())),
            str_col("shape", t.iter().map(|x| shape_string(&x.shape))),
            u64_col("params", t.iter().map(|x| x.params)),
            u64_col("bytes", t.iter().map(|x| x.bytes)),
        ];
        frame(
            &format!("size report of {:?}", self.model),
            t.len(),
            columns,
        )
    }
}
