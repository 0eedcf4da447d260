//! Reports as tables: named, typed, nullable columns, one row per epoch, class or tensor.
//!
//! Every report type implements [`Tabular`] with stable snake_case column names. Counts are
//! unsigned integers, measurements floats, names strings; a missing validation value is a null,
//! not a NaN. A [`Table`] holds plain vectors, so the core library needs no DataFrame crate:
//! the `lepton-polars` crate (`:dep lepton-polars` in a notebook) converts any [`Tabular`] to a
//! Polars DataFrame and writes Parquet and CSV through Polars. Keeping Polars out of `lepton`
//! keeps a notebook's `:dep lepton` short: evcxr's rust-analyzer parses every crate a `:dep`
//! brings in, in every new kernel (docs/DESIGN.md, "Notebook start-up").

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::types::{EvalReport, History, SizeReport};
use crate::error::{LeptonError, Result};

/// A record that converts to a [`Table`] (and, through `lepton-polars`, to a Polars DataFrame,
/// Parquet and CSV).
pub trait Tabular {
    /// The record as a table (see each implementation for its columns).
    fn to_table(&self) -> Result<Table>;
}

/// The values of one column. Every entry may be null (`None`), as in Arrow and Polars.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Unsigned integers (counts, sizes, indices, seeds).
    U64(Vec<Option<u64>>),
    /// Signed integers (zero points).
    I64(Vec<Option<i64>>),
    /// Floating-point measurements.
    F64(Vec<Option<f64>>),
    /// Text.
    Str(Vec<Option<String>>),
}

impl Values {
    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            Values::U64(v) => v.len(),
            Values::I64(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::Str(v) => v.len(),
        }
    }

    /// True if the column has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The type's name: `u64`, `i64`, `f64` or `str`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Values::U64(_) => "u64",
            Values::I64(_) => "i64",
            Values::F64(_) => "f64",
            Values::Str(_) => "str",
        }
    }
}

/// A named column of a [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Column name (snake_case).
    pub name: String,
    /// The entries, one per row.
    pub values: Values,
}

impl Column {
    /// A column of `values`.
    pub fn new(name: impl Into<String>, values: Values) -> Column {
        Column { name: name.into(), values }
    }

    fn what(&self) -> String {
        format!("column {:?}", self.name)
    }

    /// The entries as floats: `f64` as is, integers converted (exactly up to 2⁵³).
    /// A text column is an error.
    pub fn f64s(&self) -> Result<Vec<Option<f64>>> {
        match &self.values {
            Values::F64(v) => Ok(v.clone()),
            Values::U64(v) => Ok(v.iter().map(|x| x.map(|x| x as f64)).collect()),
            Values::I64(v) => Ok(v.iter().map(|x| x.map(|x| x as f64)).collect()),
            Values::Str(_) => Err(LeptonError::table(self.what(), "is text, expected numbers")),
        }
    }

    /// The entries as unsigned integers: `u64` as is, `i64` if not negative, `f64` if a whole
    /// number in range (CSV readers give `i64` or `f64` for integer columns). Anything else is
    /// an error naming the row.
    pub fn u64s(&self) -> Result<Vec<Option<u64>>> {
        let bad = |i: usize, v: &dyn std::fmt::Display| {
            LeptonError::table(self.what(), format!("row {i}: {v} is not an unsigned integer"))
        };
        match &self.values {
            Values::U64(v) => Ok(v.clone()),
            Values::I64(v) => v
                .iter()
                .enumerate()
                .map(|(i, x)| x.map(|x| u64::try_from(x).map_err(|_| bad(i, &x))).transpose())
                .collect(),
            Values::F64(v) => v
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    x.map(|x| {
                        if x.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&x) {
                            Ok(x as u64)
                        } else {
                            Err(bad(i, &x))
                        }
                    })
                    .transpose()
                })
                .collect(),
            Values::Str(_) => Err(LeptonError::table(self.what(), "is text, expected integers")),
        }
    }

    /// The entries as text; numbers are an error.
    pub fn strs(&self) -> Result<Vec<Option<String>>> {
        match &self.values {
            Values::Str(v) => Ok(v.clone()),
            other => Err(LeptonError::table(
                self.what(),
                format!("is {}, expected text", other.type_name()),
            )),
        }
    }
}

/// Named columns of equal length: what every [`Tabular`] record converts to.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    height: usize,
    columns: Vec<Column>,
}

impl Table {
    /// A table of `height` rows; `what` names the record in errors. Every column must have
    /// `height` entries and a name no other column has.
    pub fn new(what: &str, height: usize, columns: Vec<Column>) -> Result<Table> {
        for (i, c) in columns.iter().enumerate() {
            if c.values.len() != height {
                return Err(LeptonError::table(
                    what,
                    format!("column {:?} has {} rows, expected {height}", c.name, c.values.len()),
                ));
            }
            if columns[..i].iter().any(|d| d.name == c.name) {
                return Err(LeptonError::table(what, format!("column name {:?} appears twice", c.name)));
            }
        }
        Ok(Table { height, columns })
    }

    /// Number of rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// `(rows, columns)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.height, self.columns.len())
    }

    /// The columns, in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The column names, in order.
    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    /// The column called `name`, or an error listing the names there are.
    pub fn column(&self, name: &str) -> Result<&Column> {
        self.columns.iter().find(|c| c.name == name).ok_or_else(|| {
            LeptonError::table(
                format!("column {name:?}"),
                format!("no such column (columns: {})", self.column_names().join(", ")),
            )
        })
    }
}

/// A table is its own table (so a [`Table`] built in a cell converts and writes like a report).
impl Tabular for Table {
    fn to_table(&self) -> Result<Table> {
        Ok(self.clone())
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

/// Writes `path` atomically: `write` fills a temporary file in the same directory (missing
/// parent directories are created), which is synced and renamed over `path`. On any error the
/// temporary file is removed and `path` is untouched; `write`'s error text becomes a
/// [`LeptonError::Table`] naming the file.
pub fn write_file_atomically(
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

/// `usize` values as an unsigned column.
pub(crate) fn u64_col(name: &str, values: impl IntoIterator<Item = usize>) -> Column {
    Column::new(name, Values::U64(values.into_iter().map(|v| Some(v as u64)).collect()))
}

/// `i64` values as a signed column.
pub(crate) fn i64_col(name: &str, values: impl IntoIterator<Item = i64>) -> Column {
    Column::new(name, Values::I64(values.into_iter().map(Some).collect()))
}

/// `f64` values as a float column.
pub(crate) fn f64_col(name: &str, values: impl IntoIterator<Item = f64>) -> Column {
    Column::new(name, Values::F64(values.into_iter().map(Some).collect()))
}

/// Optional `f64` values (`None` = null) as a float column.
pub(crate) fn opt_f64_col(name: &str, values: impl IntoIterator<Item = Option<f64>>) -> Column {
    Column::new(name, Values::F64(values.into_iter().collect()))
}

/// Strings as a text column.
pub(crate) fn str_col<S: AsRef<str>>(name: &str, values: impl IntoIterator<Item = S>) -> Column {
    Column::new(
        name,
        Values::Str(values.into_iter().map(|s| Some(s.as_ref().to_owned())).collect()),
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
    fn to_table(&self) -> Result<Table> {
        let e = &self.epochs;
        let columns = vec![
            str_col("run", e.iter().map(|_| self.name.as_str())),
            u64_col("epoch", e.iter().map(|r| r.epoch)),
            f64_col("train_loss", e.iter().map(|r| r.train_loss)),
            f64_col("train_accuracy", e.iter().map(|r| r.train_accuracy)),
            opt_f64_col("val_loss", e.iter().map(|r| r.val_loss)),
            opt_f64_col("val_accuracy", e.iter().map(|r| r.val_accuracy)),
            f64_col("learning_rate", e.iter().map(|r| r.learning_rate)),
            f64_col("wall_seconds", e.iter().map(|r| r.wall_seconds)),
            u64_col("samples", e.iter().map(|r| r.samples)),
        ];
        Table::new(&format!("history {:?}", self.name), e.len(), columns)
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

    /// The confusion matrix in long form: columns `true`, `predicted`, `count` (all unsigned),
    /// one row per (true, predicted) pair including zero counts, in row-major order.
    pub fn confusion_table(&self) -> Result<Table> {
        let n = self.checked_confusion()?;
        let pairs = || (0..n).flat_map(|t| (0..n).map(move |p| (t, p)));
        let columns = vec![
            u64_col("true", pairs().map(|(t, _)| t)),
            u64_col("predicted", pairs().map(|(_, p)| p)),
            u64_col("count", pairs().map(|(t, p)| self.confusion[t][p])),
        ];
        Table::new(
            &format!("confusion matrix of {:?}", self.model),
            n * n,
            columns,
        )
    }
}

/// Columns: `model`, `dataset`, `class` (index), `class_name`, `samples`, `accuracy`
/// (fraction in [0, 1]); one row per class.
impl Tabular for EvalReport {
    fn to_table(&self) -> Result<Table> {
        let n = self.checked_classes()?;
        let columns = vec![
            str_col("model", (0..n).map(|_| self.model.as_str())),
            str_col("dataset", (0..n).map(|_| self.dataset.as_str())),
            u64_col("class", 0..n),
            str_col("class_name", (0..n).map(|i| self.class_name(i))),
            u64_col("samples", self.class_counts.iter().copied()),
            f64_col("accuracy", self.per_class_accuracy.iter().copied()),
        ];
        Table::new(&format!("evaluation of {:?}", self.model), n, columns)
    }
}

/// Columns: `model`, `path`, `shape` (e.g. `"300x784"`), `params`, `bytes`; one row per tensor
/// (totals: [`SizeReport::total_params`], [`SizeReport::total_bytes`]).
impl Tabular for SizeReport {
    fn to_table(&self) -> Result<Table> {
        let t = &self.tensors;
        let columns = vec![
            str_col("model", t.iter().map(|_| self.model.as_str())),
            str_col("path", t.iter().map(|x| x.path.as_str())),
            str_col("shape", t.iter().map(|x| shape_string(&x.shape))),
            u64_col("params", t.iter().map(|x| x.params)),
            u64_col("bytes", t.iter().map(|x| x.bytes)),
        ];
        Table::new(
            &format!("size report of {:?}", self.model),
            t.len(),
            columns,
        )
    }
}
