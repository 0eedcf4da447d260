//! Bundled-data subsets shared by the integration tests (each built once per test binary).
//! Not every test binary uses every subset.
#![allow(dead_code)]

use std::sync::OnceLock;

use lepton::data::{fashion_mnist, Dataset, Split};

/// 1,000 Fashion-MNIST training images, 100 per class (seed 0).
pub fn train_1k() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| fashion_mnist(Split::Train).unwrap().per_class_sample(100, 0).unwrap())
}

/// 2,000 Fashion-MNIST training images, 200 per class (seed 0).
pub fn train_2k() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| fashion_mnist(Split::Train).unwrap().per_class_sample(200, 0).unwrap())
}

/// 500 Fashion-MNIST test images, 50 per class (seed 1).
pub fn test_500() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| fashion_mnist(Split::Test).unwrap().per_class_sample(50, 1).unwrap())
}
