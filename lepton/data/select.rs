//! Selecting records: subsets, seeded shuffles, stratified splits and per-class samples.
//!
//! Every seeded operation draws from `rand::rngs::StdRng::seed_from_u64(seed)`, so the same
//! seed gives the same records in the same order, bit for bit (for the pinned `rand` 0.8).

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::Dataset;
use crate::error::{LeptonError, Result};

/// The permutation of `0..len` drawn from `seed` (shared by [`Dataset::shuffled`] and
/// [`Dataset::batches`]).
pub(super) fn permutation(len: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    order
}

impl Dataset {
    /// Copies the records at `indices` (in that order) into a new dataset; indices must be in
    /// range. Used by every selection below.
    fn gather(&self, name: String, indices: &[usize]) -> Result<Dataset> {
        if indices.is_empty() {
            return Err(self.error(format!("selection for {name:?} is empty")));
        }
        let f = self.features();
        let mut images = Vec::with_capacity(indices.len() * f);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            match (self.image(i), self.labels.get(i)) {
                (Ok(img), Some(&l)) => {
                    images.extend_from_slice(img);
                    labels.push(l);
                }
                _ => return Err(self.error(format!("index {i} is out of range 0..{} (building {name:?})", self.len()))),
            }
        }
        Ok(Dataset {
            name,
            rows: self.rows,
            cols: self.cols,
            num_classes: self.num_classes,
            images,
            labels,
            class_names: self.class_names.clone(),
            source: self.source.clone(),
        })
    }

    /// Indices of each class's records, in dataset order.
    fn indices_by_class(&self) -> Vec<Vec<usize>> {
        let mut by_class = vec![Vec::new(); self.num_classes];
        for (i, &l) in self.labels.iter().enumerate() {
            if let Some(v) = by_class.get_mut(usize::from(l)) {
                v.push(i);
            }
        }
        by_class
    }

    /// The records at `indices`, in that order, as a dataset called `name`.
    ///
    /// Errors if `indices` is empty or an index is `>= len`.
    ///
    /// ```
    /// # use lepton::data::Dataset;
    /// let ds = Dataset::from_raw("toy", 1, 1, 2, vec![10, 20, 30], vec![0, 1, 0])?;
    /// let sub = ds.subset("pick", &[2, 0])?;
    /// assert_eq!((sub.name(), sub.images(), sub.labels()), ("pick", &[30u8, 10][..], &[0u8, 0][..]));
    /// assert!(ds.subset("bad", &[3]).is_err());
    /// # Ok::<(), lepton::LeptonError>(())
    /// ```
    pub fn subset(&self, name: &str, indices: &[usize]) -> Result<Dataset> {
        self.gather(name.to_string(), indices)
    }

    /// The first `n` records, named `"<name>[..n]"`; errors if `n == 0` or `n > len`.
    /// For a random sample, use `shuffled(seed).take(n)`.
    pub fn take(&self, n: usize) -> Result<Dataset> {
        if n == 0 {
            return Err(LeptonError::config("n", n, format!("take needs at least 1 record from {}", self.name)));
        }
        if n > self.len() {
            return Err(self.error(format!("cannot take {n} records, it has {}", self.len())));
        }
        let indices: Vec<usize> = (0..n).collect();
        self.gather(format!("{}[..{n}]", self.name), &indices)
    }

    /// All records in the seeded random order (same name). The order is the one
    /// [`batches`](Dataset::batches) uses for the same seed.
    ///
    /// ```
    /// # use lepton::data::Dataset;
    /// let ds = Dataset::from_raw("toy", 1, 1, 10, (0..10).collect(), (0..10).collect())?;
    /// assert_eq!(ds.shuffled(7), ds.shuffled(7));
    /// assert_ne!(ds.shuffled(7).labels(), ds.labels());
    /// # Ok::<(), lepton::LeptonError>(())
    /// ```
    #[must_use]
    pub fn shuffled(&self, seed: u64) -> Dataset {
        let order = permutation(self.len(), seed);
        let f = self.features();
        let mut images = Vec::with_capacity(self.images.len());
        let mut labels = Vec::with_capacity(self.len());
        for i in order {
            if let (Ok(img), Some(&l)) = (self.image(i), self.labels.get(i)) {
                images.extend_from_slice(img);
                labels.push(l);
            }
        }
        debug_assert_eq!(images.len(), labels.len() * f);
        Dataset { images, labels, ..self.clone_meta() }
    }

    /// Splits off a validation set, stratified by class and seeded.
    ///
    /// Each class's records are shuffled with the seed and `round(n_c * fraction)` of them go
    /// to validation; the rest go to training. Both parts keep the original record order and
    /// are named `"<name>/train"` and `"<name>/val"`. Errors with [`LeptonError::Config`]
    /// unless `fraction` is in `(0, 1)` and leaves at least one record on each side.
    ///
    /// ```
    /// # use lepton::data::Dataset;
    /// let ds = Dataset::from_raw("toy", 1, 1, 2, vec![0; 10], vec![0, 0, 0, 0, 0, 0, 1, 1, 1, 1])?;
    /// let (train, val) = ds.split_validation(0.25, 1)?;
    /// assert_eq!((train.class_counts(), val.class_counts()), (vec![4, 3], vec![2, 1]));
    /// assert_eq!(val.name(), "toy/val");
    /// # Ok::<(), lepton::LeptonError>(())
    /// ```
    pub fn split_validation(&self, fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(LeptonError::config("fraction", fraction, "validation fraction must be in (0, 1)"));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut in_val = vec![false; self.len()];
        for mut class in self.indices_by_class() {
            // Exact for any realistic class size (< 2^52); fraction is in (0, 1).
            #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let k = ((class.len() as f64 * fraction).round() as usize).min(class.len());
            class.shuffle(&mut rng);
            for &i in class.iter().take(k) {
                if let Some(v) = in_val.get_mut(i) {
                    *v = true;
                }
            }
        }
        let (val, train): (Vec<usize>, Vec<usize>) = (0..self.len()).partition(|&i| in_val.get(i) == Some(&true));
        if val.is_empty() || train.is_empty() {
            return Err(LeptonError::config(
                "fraction",
                fraction,
                format!(
                    "leaves {} training and {} validation records of the {} in {}",
                    train.len(),
                    val.len(),
                    self.len(),
                    self.name
                ),
            ));
        }
        Ok((self.gather(format!("{}/train", self.name), &train)?, self.gather(format!("{}/val", self.name), &val)?))
    }

    /// Keeps the records of `classes`, in dataset order.
    ///
    /// With `relabel`, `classes[j]` becomes label `j`, `num_classes` becomes `classes.len()`
    /// and class names follow; without it labels and classes are unchanged. The result is
    /// named `"<name>/classes=a-b-c"`. Errors if `classes` is empty, repeats a class, names a
    /// class `>= num_classes`, or selects no record.
    ///
    /// ```
    /// # use lepton::data::Dataset;
    /// let ds = Dataset::from_raw("digits", 1, 1, 10, vec![0; 6], vec![5, 1, 7, 5, 9, 2])?;
    /// let hi = ds.filter_classes(&[5, 7], true)?;
    /// assert_eq!((hi.labels(), hi.num_classes()), (&[0u8, 1, 0][..], 2));
    /// assert_eq!(hi.class_names(), ["5", "7"]);
    /// # Ok::<(), lepton::LeptonError>(())
    /// ```
    pub fn filter_classes(&self, classes: &[u8], relabel: bool) -> Result<Dataset> {
        if classes.is_empty() {
            return Err(self.error("filter_classes needs at least one class"));
        }
        // new_label[old] = Some(new label) for kept classes.
        let mut new_label: Vec<Option<u8>> = vec![None; self.num_classes];
        // `classes` has no repeats and every entry is a u8 label, so `j` fits in a u8.
        for (j, &c) in (0..=u8::MAX).zip(classes) {
            match new_label.get_mut(usize::from(c)) {
                None => return Err(self.error(format!("class {c} is out of range 0..{}", self.num_classes))),
                Some(Some(_)) => return Err(self.error(format!("class {c} is listed twice"))),
                Some(slot) => *slot = Some(if relabel { j } else { c }),
            }
        }
        if classes.len() > usize::from(u8::MAX) + 1 {
            return Err(self.error(format!("{} classes listed, at most 256 exist", classes.len())));
        }
        let keep: Vec<usize> = (0..self.len())
            .filter(|&i| self.labels.get(i).is_some_and(|&l| matches!(new_label.get(usize::from(l)), Some(Some(_)))))
            .collect();
        let tag: Vec<String> = classes.iter().map(u8::to_string).collect();
        let mut out = self.gather(format!("{}/classes={}", self.name, tag.join("-")), &keep)?;
        if relabel {
            for l in &mut out.labels {
                *l = new_label.get(usize::from(*l)).copied().flatten().unwrap_or(*l);
            }
            out.num_classes = classes.len();
            out.class_names =
                classes.iter().map(|&c| self.class_names.get(usize::from(c)).cloned().unwrap_or_else(|| c.to_string())).collect();
        }
        Ok(out)
    }

    /// `k` records of every class, drawn with the seed, in dataset order; named
    /// `"<name>/<k>-per-class"`. Errors if `k == 0` or a class has fewer than `k` records.
    pub fn per_class_sample(&self, k: usize, seed: u64) -> Result<Dataset> {
        if k == 0 {
            return Err(LeptonError::config("k", k, format!("need at least 1 record per class from {}", self.name)));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut picked = Vec::with_capacity(k * self.num_classes);
        for (c, mut class) in self.indices_by_class().into_iter().enumerate() {
            if class.len() < k {
                let cname = self.class_names.get(c).map_or("?", String::as_str);
                return Err(self.error(format!("class {c} ({cname}) has {} records, fewer than k = {k}", class.len())));
            }
            class.shuffle(&mut rng);
            picked.extend_from_slice(class.get(..k).unwrap_or(&[]));
        }
        picked.sort_unstable();
        self.gather(format!("{}/{k}-per-class", self.name), &picked)
    }

    /// Everything but the records, for building a reordered copy.
    fn clone_meta(&self) -> Dataset {
        Dataset {
            name: self.name.clone(),
            rows: self.rows,
            cols: self.cols,
            num_classes: self.num_classes,
            images: Vec::new(),
            labels: Vec::new(),
            class_names: self.class_names.clone(),
            source: self.source.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::permutation;

    #[test]
    fn permutation_is_a_seeded_permutation() {
        let p = permutation(100, 9);
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(p, permutation(100, 9));
        assert_ne!(p, permutation(100, 10));
        assert!(permutation(0, 1).is_empty());
    }
}
