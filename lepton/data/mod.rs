//! Datasets: IDX files, the bundled Fashion-MNIST and MNIST-10k, seeded splits and batches.
//!
//! ```
//! use lepton::data::{fashion_mnist, Split};
//!
//! let train = fashion_mnist(Split::Train)?;               // 60,000 images, 28x28, 10 classes
//! let (fit, val) = train.split_validation(0.1, 42)?;      // stratified 54,000 / 6,000
//! for batch in fit.batches(128, Some(0))?.take(1) {       // seeded shuffle, f32 in [0, 1]
//!     assert_eq!((batch.len, batch.x.len()), (128, 128 * 784));
//! }
//! assert_eq!(val.class_counts(), vec![600; 10]);
//! # Ok::<(), lepton::LeptonError>(())
//! ```
//!
//! - [`Dataset`] holds `u8` images and labels in memory; read one with
//!   [`Dataset::from_idx`] (plain or gzipped IDX) or build one with [`Dataset::from_raw`].
//! - Selection: [`subset`](Dataset::subset), [`take`](Dataset::take),
//!   [`shuffled`](Dataset::shuffled), [`split_validation`](Dataset::split_validation),
//!   [`filter_classes`](Dataset::filter_classes), [`per_class_sample`](Dataset::per_class_sample).
//!   Seeded operations are reproducible bit for bit.
//! - [`Dataset::batches`] yields [`Batch`]es of `f32` pixels (`pixel / 255`) and labels.
//! - [`bundled`], [`fashion_mnist`], [`mnist10k`] load the files in [`datasets_dir`]; their
//!   provenance, licences and split rules are in `datasets/README.md`.

mod batch;
mod bundled;
mod dataset;
mod idx;
mod select;

pub use batch::{Batch, Batches};
pub use bundled::{bundled, datasets_dir, fashion_mnist, mnist10k, Bundled, Split};
pub use dataset::Dataset;
pub use idx::{read_idx_images, read_idx_labels, IdxImages, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC};
