//! Reports: records of training and evaluation, rendered as tables and figures.
//!
//! - Records: [`History`] (per epoch), [`EvalReport`], [`SizeReport`], and the
//!   [`ExperimentTable`] in which every result is an [`ExperimentRow`].
//! - [`Tabular`]: each record as a Polars DataFrame, written atomically to Parquet or CSV.
//! - [`Figure`]: training curves ([`History::plot`], [`plot_histories`]), confusion heat-maps
//!   ([`EvalReport::plot_confusion`]) and accuracy against size
//!   ([`ExperimentTable::plot_accuracy_vs_size`]), as SVG or PNG.
//! - Display: every record has `to_html` and `evcxr_display` (inline HTML in the evcxr Jupyter
//!   kernel) and a plain-text `Display` table.
mod experiment;
mod figure;
mod html;
mod plots;
mod table;
mod text;
mod types;

pub use experiment::{ExperimentRow, ExperimentTable};
pub use figure::Figure;
pub use html::escape_html;
pub use plots::plot_histories;
pub use table::Tabular;
pub use types::*;
