//! The part of Polars that lepton's tables are made of, re-exported for notebook cells.
//!
//! Every history and report converts to a Polars [`DataFrame`] (`to_polars()`); a cell can
//! filter, sort or print it through this module without a `:dep polars` of its own:
//!
//! ```
//! use lepton::polars::{Column, DataFrame};
//! let df = DataFrame::new(3, vec![Column::new("epoch".into(), [1u32, 2, 3])])?;
//! assert_eq!(df.shape(), (3, 1));
//! # Ok::<(), lepton::polars::PolarsError>(())
//! ```
//!
//! lepton depends on `polars-core` (DataFrame, Series, formatting) and `polars-io` (Parquet
//! and CSV) rather than on the `polars` crate. The `polars` crate adds nothing lepton uses,
//! and its optional `polars-lazy?/…` features make `cargo metadata` list about 140 more
//! crates (the lazy engine, SQL, cloud I/O, tokio, rustls). evcxr's embedded rust-analyzer
//! loads every crate `cargo metadata` lists, in every new kernel, so those crates cost each
//! `:dep lepton` seconds (docs/DESIGN.md, "Notebook start-up").
pub use polars_core::prelude::*;
pub use polars_io::prelude::{
    CsvReadOptions, CsvReader, CsvWriter, ParquetReader, ParquetWriter, SerReader, SerWriter,
};
