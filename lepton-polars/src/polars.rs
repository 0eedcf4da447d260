//! The part of Polars that lepton's tables are made of, re-exported for notebook cells: a cell
//! can filter, sort or print a DataFrame through this module without a `:dep polars` of its own.
//!
//! ```
//! use lepton_polars::polars::{Column, DataFrame};
//! let df = DataFrame::new(3, vec![Column::new("epoch".into(), [1u32, 2, 3])])?;
//! assert_eq!(df.shape(), (3, 1));
//! # Ok::<(), lepton_polars::polars::PolarsError>(())
//! ```
//!
//! This crate depends on `polars-core` (DataFrame, Series, formatting) and `polars-io` (Parquet
//! and CSV) rather than on the `polars` crate: the `polars` crate adds nothing used here, and
//! its optional `polars-lazy?/…` features make `cargo metadata` list about 140 more crates (the
//! lazy engine, SQL, cloud I/O, tokio, rustls), which evcxr's rust-analyzer would load in every
//! new kernel.
pub use polars_core::prelude::*;
pub use polars_io::prelude::{
    CsvReadOptions, CsvReader, CsvWriter, ParquetReader, ParquetWriter, SerReader, SerWriter,
};
