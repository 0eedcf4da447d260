//! [`Dataset`]: labelled `u8` images in memory, its constructors and accessors.

use std::path::{Path, PathBuf};

use super::idx::{self, read_idx_images, read_idx_labels, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC};
use crate::error::{IdxProblem, LeptonError, Result};

/// A labelled image-classification dataset held in memory.
///
/// Images are `u8` grey levels, `rows`×`cols` each, stored row-major one after the other in a
/// single buffer; labels are class indices `0..num_classes`. A dataset is never empty and every
/// label is in range: constructors check this, and every operation keeps it so.
///
/// Operations that select records ([`subset`](Dataset::subset),
/// [`split_validation`](Dataset::split_validation), ...) copy the selected records into a new
/// dataset with a derived name, so the original stays untouched.
///
/// Two datasets are equal when their names, shapes, class names, pixels and labels are equal
/// (the file a dataset was read from does not count).
#[derive(Clone)]
pub struct Dataset {
    pub(super) name: String,
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) num_classes: usize,
    pub(super) images: Vec<u8>,
    pub(super) labels: Vec<u8>,
    pub(super) class_names: Vec<String>,
    /// The image file it was read from, for error messages.
    pub(super) source: Option<PathBuf>,
}

/// Checks `num_classes` (1..=256, since labels are `u8`).
fn check_num_classes(num_classes: usize) -> Result<()> {
    if (1..=256).contains(&num_classes) {
        Ok(())
    } else {
        Err(LeptonError::config("num_classes", num_classes, "must be in 1..=256 (labels are u8)"))
    }
}

/// The first label `>= num_classes`, with its index.
fn first_bad_label(labels: &[u8], num_classes: usize) -> Option<(usize, u8)> {
    labels.iter().copied().enumerate().find(|&(_, l)| usize::from(l) >= num_classes)
}

fn default_class_names(num_classes: usize) -> Vec<String> {
    (0..num_classes).map(|c| c.to_string()).collect()
}

impl Dataset {
    /// Reads a dataset from an IDX image file and an IDX label file.
    ///
    /// Each file may be gzip-compressed (detected by its first bytes `1f 8b`) or raw. The image
    /// file must have magic `0x00000803` (u8, 3 dimensions) and the label file `0x00000801`;
    /// any image size is accepted (see [`expect_dims`](Dataset::expect_dims)). Errors name the
    /// file and the problem: [`LeptonError::Io`], or [`LeptonError::Idx`] with an
    /// [`IdxProblem`] (bad magic, short header, truncated data, trailing bytes, no records,
    /// corrupt gzip, image/label count mismatch, label out of range).
    pub fn from_idx(name: &str, images: impl AsRef<Path>, labels: impl AsRef<Path>, num_classes: usize) -> Result<Dataset> {
        check_num_classes(num_classes)?;
        let (images_path, labels_path) = (images.as_ref(), labels.as_ref());
        let img = read_idx_images(images_path)?;
        let labels = read_idx_labels(labels_path)?;
        let idx_err = |problem| LeptonError::Idx { path: labels_path.to_path_buf(), problem };
        if img.count != labels.len() {
            return Err(idx_err(IdxProblem::CountMismatch { images: img.count, labels: labels.len() }));
        }
        if let Some((index, label)) = first_bad_label(&labels, num_classes) {
            return Err(idx_err(IdxProblem::LabelOutOfRange { index, label, num_classes }));
        }
        Ok(Dataset {
            name: name.to_string(),
            rows: img.rows,
            cols: img.cols,
            num_classes,
            images: img.pixels,
            labels,
            class_names: default_class_names(num_classes),
            source: Some(images_path.to_path_buf()),
        })
    }

    /// Builds a dataset from pixels and labels already in memory.
    ///
    /// `images` holds `labels.len()` images of `rows`×`cols` bytes, row-major. Errors with
    /// [`LeptonError::Dataset`] if there are no records, a dimension is zero, the lengths
    /// disagree or a label is `>= num_classes`; [`LeptonError::Config`] if `num_classes` is
    /// not in `1..=256`.
    ///
    /// ```
    /// use lepton::data::Dataset;
    /// let ds = Dataset::from_raw("toy", 1, 2, 3, vec![0, 255, 10, 20], vec![2, 0])?;
    /// assert_eq!((ds.len(), ds.features(), ds.class_counts()), (2, 2, vec![1, 0, 1]));
    /// assert!(Dataset::from_raw("bad", 1, 2, 3, vec![0, 1, 2], vec![0, 1]).is_err());
    /// # Ok::<(), lepton::LeptonError>(())
    /// ```
    pub fn from_raw(
        name: &str,
        rows: usize,
        cols: usize,
        num_classes: usize,
        images: Vec<u8>,
        labels: Vec<u8>,
    ) -> Result<Dataset> {
        check_num_classes(num_classes)?;
        let err = |reason: String| LeptonError::Dataset { dataset: name.to_string(), reason };
        if labels.is_empty() {
            return Err(err("no records (labels is empty)".into()));
        }
        if rows == 0 || cols == 0 {
            return Err(err(format!("images are {rows}x{cols}: a dimension is zero")));
        }
        let expected = labels.len().checked_mul(rows).and_then(|v| v.checked_mul(cols));
        if expected != Some(images.len()) {
            return Err(err(format!(
                "{} labels of {rows}x{cols} images need {} pixels, got {}",
                labels.len(),
                expected.map_or_else(|| "more than usize::MAX".to_string(), |e| e.to_string()),
                images.len()
            )));
        }
        if let Some((index, label)) = first_bad_label(&labels, num_classes) {
            return Err(err(format!("label {label} at record {index} is out of range 0..{num_classes}")));
        }
        Ok(Dataset {
            name: name.to_string(),
            rows,
            cols,
            num_classes,
            images,
            labels,
            class_names: default_class_names(num_classes),
            source: None,
        })
    }

    /// Replaces the class names (default `"0"`, `"1"`, ...); there must be `num_classes` of them.
    pub fn with_class_names(mut self, names: Vec<String>) -> Result<Dataset> {
        if names.len() != self.num_classes {
            return Err(self.error(format!("{} class names given for {} classes", names.len(), self.num_classes)));
        }
        self.class_names = names;
        Ok(self)
    }

    /// Checks the image size: errors with [`IdxProblem::WrongDims`] (naming the source file,
    /// or the dataset name if it was not read from a file) unless images are `rows`×`cols`.
    pub fn expect_dims(self, rows: usize, cols: usize) -> Result<Dataset> {
        if (self.rows, self.cols) == (rows, cols) {
            return Ok(self);
        }
        Err(LeptonError::Idx {
            path: self.source.clone().unwrap_or_else(|| PathBuf::from(&self.name)),
            problem: IdxProblem::WrongDims { rows: self.rows, cols: self.cols, expected_rows: rows, expected_cols: cols },
        })
    }

    /// Writes the dataset as an IDX image file and an IDX label file (gzip-compressed, with a
    /// zero mtime, when a file name ends in `.gz`), readable back with [`Dataset::from_idx`].
    pub fn write_idx(&self, images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<()> {
        let (images, labels) = (images.as_ref(), labels.as_ref());
        let n = idx::header_field(images, "record count", self.len())?;
        let rows = idx::header_field(images, "rows", self.rows)?;
        let cols = idx::header_field(images, "cols", self.cols)?;
        idx::write_idx(images, &[IDX_IMAGES_MAGIC, n, rows, cols], &self.images)?;
        idx::write_idx(labels, &[IDX_LABELS_MAGIC, n], &self.labels)
    }

    /// The dataset's name, e.g. `"fashion-mnist/train"`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of records (images).
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Always `false`: a dataset holds at least one record.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image height in pixels.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Image width in pixels.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Pixels per image, `rows * cols`.
    pub fn features(&self) -> usize {
        self.rows * self.cols
    }

    /// Number of classes; labels are in `0..num_classes`.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Class names, one per class (default `"0"`, `"1"`, ...).
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// All labels, one per record.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// All pixels, `len * features` bytes, record after record, each row-major.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// The pixels of record `i`, row-major; errors if `i >= len`.
    pub fn image(&self, i: usize) -> Result<&[u8]> {
        let f = self.features();
        i.checked_mul(f).and_then(|start| self.images.get(start..start.checked_add(f)?)).ok_or_else(|| self.out_of_range(i))
    }

    /// The label of record `i`; errors if `i >= len`.
    pub fn label(&self, i: usize) -> Result<u8> {
        self.labels.get(i).copied().ok_or_else(|| self.out_of_range(i))
    }

    /// Number of records of each class, indexed by class.
    ///
    /// ```
    /// # use lepton::data::Dataset;
    /// let ds = Dataset::from_raw("toy", 1, 1, 3, vec![7, 8, 9], vec![2, 0, 2])?;
    /// assert_eq!(ds.class_counts(), vec![1, 0, 2]);
    /// # Ok::<(), lepton::LeptonError>(())
    /// ```
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(usize::from(l)) {
                *c += 1;
            }
        }
        counts
    }

    /// A [`LeptonError::Dataset`] for this dataset.
    pub(super) fn error(&self, reason: impl Into<String>) -> LeptonError {
        LeptonError::Dataset { dataset: self.name.clone(), reason: reason.into() }
    }

    fn out_of_range(&self, i: usize) -> LeptonError {
        self.error(format!("record {i} is out of range 0..{}", self.len()))
    }
}

impl PartialEq for Dataset {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && (self.rows, self.cols, self.num_classes) == (other.rows, other.cols, other.num_classes)
            && self.class_names == other.class_names
            && self.labels == other.labels
            && self.images == other.images
    }
}

impl Eq for Dataset {}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("name", &self.name)
            .field("len", &self.len())
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("num_classes", &self.num_classes)
            .field("class_counts", &self.class_counts())
            .finish_non_exhaustive()
    }
}

/// One line: name, record count, image size and classes.
impl std::fmt::Display for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} images of {}x{}, {} classes", self.name, self.len(), self.rows, self.cols, self.num_classes)
    }
}
