//! Reports: records of training and evaluation, rendered as tables and figures.
//!
//! - Records: [`History`] (per epoch), [`EvalReport`], [`SizeReport`], and the
//!   [`ExperimentTable`] in which every result is an [`ExperimentRow`].
//! - [`Tabular`]: each record as a [`Table`] of named, typed columns; the `lepton-polars`
//!   crate turns any of them into a Polars DataFrame and writes Parquet and CSV.
//! - [`Figure`]: training curves ([`History::plot`], [`plot_histories`]), confusion heat-maps
//!   ([`EvalReport::plot_confusion`]) and accuracy against size
//!   ([`ExperimentTable::plot_accuracy_vs_size`]), general line charts ([`LineChart`] of
//!   [`Series`]) and weight histograms ([`WeightHistograms`]), as SVG or PNG.
//! - Display: every record has `to_html` and `evcxr_display` (inline HTML in the evcxr Jupyter
//!   kernel) and a plain-text `Display` table.
mod experiment;
mod figure;
pub(crate) mod html;
mod plots;
mod runs;
pub(crate) mod table;
pub(crate) mod text;
mod types;

pub use experiment::{ExperimentRow, ExperimentTable};
pub use figure::Figure;
pub use html::escape_html;
pub use plots::{plot_histories, LineChart, Series, WeightHistograms};
pub use runs::{RunRow, RunSummary, RunSummaryRow, RunTable};
pub use table::{write_file_atomically, Column, Table, Tabular, Values};
pub use types::*;
