//! Mini-batches of `f32` pixels for training and evaluation.

use super::select::permutation;
use super::Dataset;
use crate::error::{LeptonError, Result};

/// One mini-batch: `len` images as `f32` in `[0, 1]` and their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `len * features` values, `pixel / 255.0`, image after image, each row-major (the layout
    /// of a `[len, 1, rows, cols]` or `[len, rows * cols]` tensor).
    pub x: Vec<f32>,
    /// `len` class labels.
    pub y: Vec<usize>,
    /// Number of images in the batch.
    pub len: usize,
}

/// Iterator over the [`Batch`]es of a dataset, from [`Dataset::batches`].
///
/// Every batch has `batch_size` images except possibly the last, which holds the rest.
#[derive(Clone)]
pub struct Batches<'a> {
    data: &'a Dataset,
    order: Vec<usize>,
    batch_size: usize,
    pos: usize,
}

impl Dataset {
    /// Iterates over the dataset in batches of `batch_size` (the last batch may be smaller).
    ///
    /// With `shuffle_seed: Some(seed)` the records come in the order of
    /// [`shuffled(seed)`](Dataset::shuffled); use a different seed per epoch (e.g.
    /// `base + epoch`) for a fresh order each epoch. With `None` they come in dataset order.
    /// Errors with [`LeptonError::Config`] if `batch_size` is 0.
    ///
    /// ```
    /// use lepton::data::Dataset;
    /// let ds = Dataset::from_raw("toy", 1, 2, 2, vec![0, 255, 51, 102, 255, 0], vec![0, 1, 1])?;
    /// let mut batches = ds.batches(2, None)?;
    /// assert_eq!(batches.len(), 2);
    /// let first = batches.next().unwrap();
    /// assert_eq!((first.len, first.x, first.y), (2, vec![0.0, 1.0, 0.2, 0.4], vec![0, 1]));
    /// let last = batches.next().unwrap();
    /// assert_eq!((last.len, last.x, last.y), (1, vec![1.0, 0.0], vec![1]));
    /// assert!(batches.next().is_none());
    /// assert!(ds.batches(0, None).is_err());
    /// # Ok::<(), lepton::LeptonError>(())
    /// ```
    pub fn batches(&self, batch_size: usize, shuffle_seed: Option<u64>) -> Result<Batches<'_>> {
        if batch_size == 0 {
            return Err(LeptonError::config("batch_size", batch_size, format!("must be at least 1 (dataset {})", self.name)));
        }
        let order = match shuffle_seed {
            Some(seed) => permutation(self.len(), seed),
            None => (0..self.len()).collect(),
        };
        Ok(Batches { data: self, order, batch_size, pos: 0 })
    }
}

impl std::fmt::Debug for Batches<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches")
            .field("dataset", &self.data.name())
            .field("batch_size", &self.batch_size)
            .field("remaining", &self.len())
            .finish()
    }
}

impl Batches<'_> {
    /// The batch size asked for (the last batch may be smaller).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }
}

impl Iterator for Batches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let end = self.pos.saturating_add(self.batch_size).min(self.order.len());
        let indices = self.order.get(self.pos..end).filter(|s| !s.is_empty())?;
        self.pos = end;
        let f = self.data.features();
        let mut x = Vec::with_capacity(indices.len() * f);
        let mut y = Vec::with_capacity(indices.len());
        for &i in indices {
            if let (Ok(img), Ok(l)) = (self.data.image(i), self.data.label(i)) {
                x.extend(img.iter().map(|&p| f32::from(p) / 255.0));
                y.push(usize::from(l));
            }
        }
        Some(Batch { x, len: y.len(), y })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.order.len().saturating_sub(self.pos).div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Batches<'_> {}

impl std::iter::FusedIterator for Batches<'_> {}

#[cfg(test)]
mod tests {
    use super::Dataset;

    #[test]
    fn exact_size_and_fused() {
        let ds = Dataset::from_raw("t", 1, 1, 1, vec![0; 7], vec![0; 7]).unwrap();
        let mut it = ds.batches(3, Some(2)).unwrap();
        assert_eq!((it.len(), it.batch_size()), (3, 3));
        let lens: Vec<usize> = it.by_ref().map(|b| b.len).collect();
        assert_eq!(lens, vec![3, 3, 1]);
        assert_eq!(it.len(), 0);
        assert!(it.next().is_none());
    }
}
