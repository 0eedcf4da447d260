//! # lepton-polars
//!
//! Every lepton table ([`Tabular`]: histories, evaluation, size, pruning, quantization and
//! experiment tables) as a Polars [`DataFrame`], written to Parquet and CSV, and read back.
//!
//! ```
//! use lepton::prelude::*;
//! use lepton_polars::prelude::*;
//!
//! let mut table = ExperimentTable::new();
//! table.push(ExperimentRow {
//!     model: "lenet300".into(), dataset: "fashion-mnist".into(), stage: "baseline".into(),
//!     seed: 0, epochs: 10, test_accuracy: 0.889, test_loss: 0.31, params: 266_610,
//!     bytes: 1_066_440, train_seconds: 41.5, notes: String::new(),
//! });
//! let df = table.to_polars()?;
//! assert_eq!(df.shape(), (1, 11));
//! let path = std::env::temp_dir().join(format!("lepton-polars-doc-{}.parquet", std::process::id()));
//! table.write_parquet(&path)?;
//! assert_eq!(ExperimentTable::read_parquet(&path)?, table);
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), lepton::LeptonError>(())
//! ```
//!
//! Column types: lepton's `u64` columns become `UInt64`, `i64` `Int64`, `f64` `Float64`, text
//! `String`; nulls stay nulls. Files are written atomically (a temporary file in the same
//! directory, renamed when complete), so a failed write never leaves a half-written file.
//!
//! Why a second crate: evcxr's embedded rust-analyzer parses every crate a `:dep` brings in,
//! in every new kernel, and Polars is most of lepton's dependency tree. Notebooks load
//! `lepton` first and this crate only in the cells that export.
#![forbid(unsafe_code)]

use std::fs::File;
use std::path::Path;

use lepton::report::{write_file_atomically, Column, ExperimentTable, Table, Tabular, Values};
use lepton::{LeptonError, Result};

pub mod polars;

use polars::{
    CsvReadOptions, CsvWriter, DataFrame, DataType, ParquetReader, ParquetWriter, SerReader,
    SerWriter,
};

/// What a notebook's export cell needs: `use lepton_polars::prelude::*;`.
pub mod prelude {
    pub use crate::polars::DataFrame;
    pub use crate::{frame_to_table, read_csv, read_parquet, table_to_frame, ReadTable, ToPolars};
}

/// Any [`Tabular`] record as a Polars DataFrame, and written as Parquet or CSV.
pub trait ToPolars: Tabular {
    /// The record's [`Table`] as a DataFrame (same column names, order and values).
    fn to_polars(&self) -> Result<DataFrame> {
        table_to_frame(&self.to_table()?)
    }

    /// Writes the record as a Parquet file at `path` (atomically; parent directories are
    /// created).
    fn write_parquet(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut df = self.to_polars()?;
        write_file_atomically(path.as_ref(), |file| {
            ParquetWriter::new(file).finish(&mut df).map(|_| ()).map_err(|e| e.to_string())
        })
    }

    /// Writes the record as a CSV file with a header row at `path` (atomically; parent
    /// directories are created). A null is an empty field.
    fn write_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut df = self.to_polars()?;
        write_file_atomically(path.as_ref(), |file| {
            CsvWriter::new(file).include_header(true).finish(&mut df).map_err(|e| e.to_string())
        })
    }
}

impl<T: Tabular + ?Sized> ToPolars for T {}

/// A lepton table as a DataFrame.
pub fn table_to_frame(table: &Table) -> Result<DataFrame> {
    let columns = table
        .columns()
        .iter()
        .map(|c| {
            let name = c.name.as_str().into();
            match &c.values {
                Values::U64(v) => polars::Column::new(name, v.as_slice()),
                Values::I64(v) => polars::Column::new(name, v.as_slice()),
                Values::F64(v) => polars::Column::new(name, v.as_slice()),
                Values::Str(v) => polars::Column::new(name, v.as_slice()),
            }
        })
        .collect();
    DataFrame::new(table.height(), columns).map_err(|e| LeptonError::table("table as DataFrame", e))
}

/// A DataFrame as a lepton table: unsigned integer columns become `u64`, signed `i64`, floats
/// `f64`, strings text; any other column type (dates, lists, booleans, ...) is an error naming
/// the column.
pub fn frame_to_table(df: &DataFrame) -> Result<Table> {
    let columns = df
        .columns()
        .iter()
        .map(|c| {
            let name = c.name().as_str();
            let what = || format!("DataFrame column {name:?}");
            let cast = |dtype: DataType| {
                c.strict_cast(&dtype).map_err(|e| LeptonError::table(what(), e))
            };
            let values = match c.dtype() {
                DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
                    let c = cast(DataType::UInt64)?;
                    let ca = c.u64().map_err(|e| LeptonError::table(what(), e))?;
                    Values::U64(ca.iter().collect())
                }
                DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                    let c = cast(DataType::Int64)?;
                    let ca = c.i64().map_err(|e| LeptonError::table(what(), e))?;
                    Values::I64(ca.iter().collect())
                }
                DataType::Float32 | DataType::Float64 => {
                    let c = cast(DataType::Float64)?;
                    let ca = c.f64().map_err(|e| LeptonError::table(what(), e))?;
                    Values::F64(ca.iter().collect())
                }
                DataType::String => {
                    let ca = c.str().map_err(|e| LeptonError::table(what(), e))?;
                    Values::Str(ca.iter().map(|s| s.map(str::to_owned)).collect())
                }
                // a CSV column with no values at all reads as nulls of type Null
                DataType::Null => Values::Str(vec![None; c.len()]),
                other => {
                    return Err(LeptonError::table(
                        what(),
                        format!("type {other} has no lepton column type (integers, floats, text)"),
                    ))
                }
            };
            Ok(Column::new(name, values))
        })
        .collect::<Result<Vec<_>>>()?;
    Table::new("DataFrame", df.height(), columns)
}

/// Reads a Parquet file (e.g. one written by [`ToPolars::write_parquet`]) into a table.
pub fn read_parquet(path: impl AsRef<Path>) -> Result<Table> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| LeptonError::io("open", path, e))?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| LeptonError::table(format!("reading {}", path.display()), e))?;
    frame_to_table(&df)
}

/// Reads a CSV file with a header row (e.g. one written by [`ToPolars::write_csv`]) into a
/// table; Polars infers the column types (integers read as `i64`).
pub fn read_csv(path: impl AsRef<Path>) -> Result<Table> {
    let path = path.as_ref();
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|r| r.finish())
        .map_err(|e| LeptonError::table(format!("reading {}", path.display()), e))?;
    frame_to_table(&df)
}

/// Records that can be rebuilt from a table, read from Parquet or CSV.
pub trait ReadTable: Sized {
    /// Rebuilds the record from a DataFrame with its columns.
    fn from_polars(df: &DataFrame) -> Result<Self>;

    /// Reads a Parquet file written by [`ToPolars::write_parquet`].
    fn read_parquet(path: impl AsRef<Path>) -> Result<Self>;

    /// Reads a CSV file written by [`ToPolars::write_csv`].
    fn read_csv(path: impl AsRef<Path>) -> Result<Self>;
}

impl ReadTable for ExperimentTable {
    fn from_polars(df: &DataFrame) -> Result<Self> {
        ExperimentTable::from_table(&frame_to_table(df)?)
    }

    fn read_parquet(path: impl AsRef<Path>) -> Result<Self> {
        ExperimentTable::from_table(&read_parquet(path)?)
    }

    fn read_csv(path: impl AsRef<Path>) -> Result<Self> {
        ExperimentTable::from_table(&read_csv(path)?)
    }
}
