//! Tests of `lepton::data`: IDX parsing (good and crafted bad files), the bundled datasets,
//! seeded selection and batching.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use lepton::data::{bundled, fashion_mnist, mnist10k, Bundled, Dataset, Split};
use lepton::error::{IdxProblem, LeptonError};

// ---------------------------------------------------------------------------------------
// Helpers: a scratch directory and crafted IDX bytes.

/// A fresh directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("lepton-data-test-{}-{tag}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn be(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

fn images_idx(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut v = be(&[0x803, count, rows, cols]);
    v.extend_from_slice(pixels);
    v
}

fn labels_idx(count: u32, labels: &[u8]) -> Vec<u8> {
    let mut v = be(&[0x801, count]);
    v.extend_from_slice(labels);
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip write");
    enc.finish().expect("gzip finish")
}

/// Three 2x3 images with distinct pixels, labels 2, 0, 1.
const PIXELS: [u8; 18] = [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 250, 251, 252, 253, 254, 255];
const LABELS: [u8; 3] = [2, 0, 1];

fn good_images() -> Vec<u8> {
    images_idx(3, 2, 3, &PIXELS)
}

fn good_labels() -> Vec<u8> {
    labels_idx(3, &LABELS)
}

/// The IDX problem of an error, checking that it names `path`.
fn idx_problem(err: LeptonError, path: &Path) -> IdxProblem {
    match err {
        LeptonError::Idx { path: p, problem } => {
            assert_eq!(p, path, "error should name the offending file");
            problem
        }
        other => panic!("expected LeptonError::Idx, got {other:?}"),
    }
}

fn toy(n: usize, num_classes: usize) -> Dataset {
    // Image i is the two bytes of i, so every record is unique.
    let images = (0..n).flat_map(|i| [(i / 256) as u8, (i % 256) as u8]).collect();
    let labels = (0..n).map(|i| (i % num_classes) as u8).collect();
    Dataset::from_raw("toy", 1, 2, num_classes, images, labels).expect("toy dataset")
}

// ---------------------------------------------------------------------------------------
// IDX round trips.

fn check_crafted(ds: &Dataset) {
    assert_eq!((ds.name(), ds.len(), ds.rows(), ds.cols(), ds.features()), ("crafted", 3, 2, 3, 6));
    assert_eq!((ds.num_classes(), ds.is_empty()), (3, false));
    assert_eq!(ds.images(), &PIXELS);
    assert_eq!(ds.labels(), &LABELS);
    assert_eq!(ds.image(1).unwrap(), &[10, 11, 12, 13, 14, 15]);
    assert_eq!(ds.label(0).unwrap(), 2);
    assert_eq!(ds.class_counts(), vec![1, 1, 1]);
    assert_eq!(ds.class_names(), ["0", "1", "2"]);
    assert!(ds.image(3).is_err());
    assert!(ds.label(3).is_err());
}

#[test]
fn idx_round_trip_raw_and_gzip() {
    let dir = Scratch::new("roundtrip");
    let raw = Dataset::from_idx("crafted", dir.file("i", &good_images()), dir.file("l", &good_labels()), 3).unwrap();
    check_crafted(&raw);
    let gz = Dataset::from_idx("crafted", dir.file("i.gz", &gzip(&good_images())), dir.file("l.gz", &gzip(&good_labels())), 3)
        .unwrap();
    check_crafted(&gz);
    assert_eq!(raw, gz);
    // Mixed: gzip is detected per file by its magic bytes, not by the file name.
    let mixed =
        Dataset::from_idx("crafted", dir.file("i.idx", &gzip(&good_images())), dir.file("l.idx", &good_labels()), 3).unwrap();
    assert_eq!(mixed, raw);
}

#[test]
fn write_idx_round_trip() {
    let dir = Scratch::new("write");
    let ds = Dataset::from_raw("crafted", 2, 3, 3, PIXELS.to_vec(), LABELS.to_vec()).unwrap();
    for (i, l) in [("a-images.gz", "a-labels.gz"), ("b-images", "b-labels")] {
        let (i, l) = (dir.0.join(i), dir.0.join(l));
        ds.write_idx(&i, &l).unwrap();
        let back = Dataset::from_idx("crafted", &i, &l, 3).unwrap();
        check_crafted(&back);
        assert_eq!(back, ds);
    }
    // Raw output is exactly the IDX bytes.
    assert_eq!(std::fs::read(dir.0.join("b-images")).unwrap(), good_images());
    assert_eq!(std::fs::read(dir.0.join("b-labels")).unwrap(), good_labels());
}

// ---------------------------------------------------------------------------------------
// Malformed IDX files: each gives a typed error naming the file.

#[test]
fn wrong_magic() {
    let dir = Scratch::new("magic");
    let (img, lab) = (dir.file("i", &good_images()), dir.file("l", &good_labels()));
    // Arguments swapped: the label file is read as images.
    let err = Dataset::from_idx("x", &lab, &img, 3).unwrap_err();
    assert_eq!(idx_problem(err, &lab), IdxProblem::BadMagic { found: 0x801, expected: 0x803, what: "u8 images, 3 dimensions" });
    let err = Dataset::from_idx("x", &img, &img, 3).unwrap_err();
    assert!(matches!(idx_problem(err, &img), IdxProblem::BadMagic { found: 0x803, expected: 0x801, .. }));
    // A float IDX file (type byte 0x0d) is rejected too.
    let float = dir.file(
        "f",
        &images_idx(3, 2, 3, &PIXELS).iter().enumerate().map(|(i, &b)| if i == 2 { 0x0d } else { b }).collect::<Vec<_>>(),
    );
    let err = Dataset::from_idx("x", &float, &lab, 3).unwrap_err();
    assert!(matches!(idx_problem(err, &float), IdxProblem::BadMagic { found: 0x0d03, .. }));
}

#[test]
fn truncated_data() {
    let dir = Scratch::new("trunc");
    let lab = dir.file("l", &good_labels());
    let short = images_idx(3, 2, 3, &PIXELS[..17]);
    for (name, bytes) in [("i", short.clone()), ("i.gz", gzip(&short))] {
        let img = dir.file(name, &bytes);
        let err = Dataset::from_idx("x", &img, &lab, 3).unwrap_err();
        assert_eq!(idx_problem(err, &img), IdxProblem::Truncated { expected: 18, found: 17 });
    }
    let img = dir.file("i2", &good_images());
    let short_labels = dir.file("l2", &labels_idx(3, &LABELS[..2]));
    let err = Dataset::from_idx("x", &img, &short_labels, 3).unwrap_err();
    assert_eq!(idx_problem(err, &short_labels), IdxProblem::Truncated { expected: 3, found: 2 });
}

#[test]
fn truncated_header() {
    let dir = Scratch::new("header");
    let lab = dir.file("l", &good_labels());
    let img = dir.file("i", &good_images()[..10]);
    let err = Dataset::from_idx("x", &img, &lab, 3).unwrap_err();
    assert_eq!(idx_problem(err, &img), IdxProblem::ShortHeader { expected: 16, found: 10 });
    let tiny = dir.file("t", &[0, 0]);
    let err = Dataset::from_idx("x", &tiny, &lab, 3).unwrap_err();
    assert_eq!(idx_problem(err, &tiny), IdxProblem::ShortHeader { expected: 16, found: 2 });
    let img = dir.file("i2", &good_images());
    let lab6 = dir.file("l6", &good_labels()[..6]);
    let err = Dataset::from_idx("x", &img, &lab6, 3).unwrap_err();
    assert_eq!(idx_problem(err, &lab6), IdxProblem::ShortHeader { expected: 8, found: 6 });
}

#[test]
fn trailing_bytes() {
    let dir = Scratch::new("trailing");
    let mut long = good_images();
    long.extend_from_slice(&[9, 9]);
    let img = dir.file("i", &long);
    let err = Dataset::from_idx("x", &img, dir.file("l", &good_labels()), 3).unwrap_err();
    assert_eq!(idx_problem(err, &img), IdxProblem::TrailingBytes { extra: 2 });
}

#[test]
fn image_label_count_mismatch() {
    let dir = Scratch::new("count");
    let lab = dir.file("l", &labels_idx(2, &LABELS[..2]));
    let err = Dataset::from_idx("x", dir.file("i", &good_images()), &lab, 3).unwrap_err();
    assert_eq!(idx_problem(err, &lab), IdxProblem::CountMismatch { images: 3, labels: 2 });
}

#[test]
fn label_out_of_range() {
    let dir = Scratch::new("label");
    let lab = dir.file("l", &labels_idx(3, &[0, 5, 1]));
    let err = Dataset::from_idx("x", dir.file("i", &good_images()), &lab, 3).unwrap_err();
    assert_eq!(idx_problem(err, &lab), IdxProblem::LabelOutOfRange { index: 1, label: 5, num_classes: 3 });
    // num_classes itself must fit u8 labels.
    let err = Dataset::from_idx("x", dir.file("i2", &good_images()), &lab, 0).unwrap_err();
    assert!(matches!(err, LeptonError::Config { field: "num_classes", .. }));
}

#[test]
fn wrong_dims() {
    let dir = Scratch::new("dims");
    let img = dir.file("i", &good_images());
    let ds = Dataset::from_idx("x", &img, dir.file("l", &good_labels()), 3).unwrap();
    let err = ds.clone().expect_dims(28, 28).unwrap_err();
    assert_eq!(idx_problem(err, &img), IdxProblem::WrongDims { rows: 2, cols: 3, expected_rows: 28, expected_cols: 28 });
    assert_eq!(ds.clone().expect_dims(2, 3).unwrap(), ds);
    // Zero-sized images are rejected when reading.
    let zero = dir.file("z", &images_idx(3, 0, 3, &[]));
    let err = Dataset::from_idx("x", &zero, dir.file("l2", &good_labels()), 3).unwrap_err();
    assert_eq!(idx_problem(err, &zero), IdxProblem::ZeroDims { rows: 0, cols: 3 });
}

#[test]
fn empty_file_and_no_records() {
    let dir = Scratch::new("empty");
    let lab = dir.file("l", &good_labels());
    for (name, bytes) in [("empty", Vec::new()), ("empty.gz", gzip(&[])), ("zero", images_idx(0, 28, 28, &[]))] {
        let img = dir.file(name, &bytes);
        let err = Dataset::from_idx("x", &img, &lab, 3).unwrap_err();
        assert_eq!(idx_problem(err, &img), IdxProblem::NoRecords, "{name}");
    }
    let img = dir.file("i", &good_images());
    let no_labels = dir.file("l0", &labels_idx(0, &[]));
    let err = Dataset::from_idx("x", &img, &no_labels, 3).unwrap_err();
    assert_eq!(idx_problem(err, &no_labels), IdxProblem::NoRecords);
}

#[test]
fn corrupt_gzip() {
    let dir = Scratch::new("gzip");
    let lab = dir.file("l", &good_labels());
    let gz = gzip(&good_images());
    // A flipped byte in the deflate stream or the CRC, and a stream cut short.
    let mut flipped = gz.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    let mut bad_crc = gz.clone();
    let crc_at = bad_crc.len() - 8;
    bad_crc[crc_at] ^= 0x01;
    let cut = gz[..gz.len() - 6].to_vec();
    for (name, bytes) in [("flipped.gz", flipped), ("crc.gz", bad_crc), ("cut.gz", cut)] {
        let img = dir.file(name, &bytes);
        let err = Dataset::from_idx("x", &img, &lab, 3).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(idx_problem(err, &img), IdxProblem::Gzip(_)), "{name}: {msg}");
        assert!(msg.contains(name), "message names the file: {msg}");
    }
}

#[test]
fn missing_file_is_io_error() {
    let dir = Scratch::new("missing");
    let missing = dir.0.join("nope.gz");
    let err = Dataset::from_idx("x", &missing, dir.file("l", &good_labels()), 3).unwrap_err();
    assert!(matches!(&err, LeptonError::Io { path, .. } if path == &missing), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// Argument errors.

#[test]
fn from_raw_and_class_name_errors() {
    let is_dataset_err = |r: lepton::Result<Dataset>| matches!(r, Err(LeptonError::Dataset { .. }));
    assert!(is_dataset_err(Dataset::from_raw("x", 2, 3, 3, PIXELS[..17].to_vec(), LABELS.to_vec())));
    assert!(is_dataset_err(Dataset::from_raw("x", 2, 3, 3, PIXELS.to_vec(), vec![0, 3, 1])));
    assert!(is_dataset_err(Dataset::from_raw("x", 2, 3, 3, Vec::new(), Vec::new())));
    assert!(is_dataset_err(Dataset::from_raw("x", 0, 3, 3, Vec::new(), vec![0])));
    assert!(matches!(Dataset::from_raw("x", 1, 1, 300, vec![0], vec![0]), Err(LeptonError::Config { field: "num_classes", .. })));
    let ds = Dataset::from_raw("x", 2, 3, 3, PIXELS.to_vec(), LABELS.to_vec()).unwrap();
    assert!(is_dataset_err(ds.clone().with_class_names(vec!["a".into(), "b".into()])));
    let named = ds.with_class_names(vec!["a".into(), "b".into(), "c".into()]).unwrap();
    assert_eq!(named.class_names(), ["a", "b", "c"]);
}

#[test]
fn batch_size_zero() {
    let err = toy(10, 2).batches(0, None).unwrap_err();
    assert!(matches!(err, LeptonError::Config { field: "batch_size", .. }), "{err:?}");
}

#[test]
fn bad_validation_fraction() {
    let ds = toy(10, 2);
    for f in [0.0, 1.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
        let err = ds.split_validation(f, 0).unwrap_err();
        assert!(matches!(err, LeptonError::Config { field: "fraction", .. }), "{f}: {err:?}");
    }
    // In range, but rounds to no validation record (or no training record).
    for f in [0.01, 0.99] {
        let err = ds.split_validation(f, 0).unwrap_err();
        assert!(matches!(err, LeptonError::Config { field: "fraction", .. }), "{f}: {err:?}");
    }
}

#[test]
fn subset_index_out_of_range() {
    let ds = toy(10, 2);
    assert!(matches!(ds.subset("s", &[0, 10]), Err(LeptonError::Dataset { .. })));
    assert!(matches!(ds.subset("s", &[]), Err(LeptonError::Dataset { .. })));
    assert!(matches!(ds.subset("s", &[usize::MAX]), Err(LeptonError::Dataset { .. })));
    let s = ds.subset("s", &[9, 9, 0]).unwrap();
    assert_eq!((s.name(), s.images(), s.labels()), ("s", &[0u8, 9, 0, 9, 0, 0][..], &[1u8, 1, 0][..]));
}

#[test]
fn take_errors_and_prefix() {
    let ds = toy(10, 2);
    assert!(matches!(ds.take(0), Err(LeptonError::Config { field: "n", .. })));
    assert!(matches!(ds.take(11), Err(LeptonError::Dataset { .. })));
    let t = ds.take(3).unwrap();
    assert_eq!((t.name(), t.labels()), ("toy[..3]", &[0u8, 1, 0][..]));
    assert_eq!(ds.take(10).unwrap().images(), ds.images());
}

#[test]
fn per_class_sample_k_too_large() {
    let ds = toy(10, 3); // classes 0,1,2 have 4,3,3 records
    let err = ds.per_class_sample(4, 0).unwrap_err();
    assert!(matches!(&err, LeptonError::Dataset { reason, .. } if reason.contains("class 1")), "{err:?}");
    assert!(matches!(ds.per_class_sample(0, 0), Err(LeptonError::Config { field: "k", .. })));
    let s = ds.per_class_sample(3, 0).unwrap();
    assert_eq!((s.name(), s.class_counts()), ("toy/3-per-class", vec![3, 3, 3]));
}

#[test]
fn filter_classes_errors() {
    let ds = toy(10, 3);
    assert!(matches!(ds.filter_classes(&[], true), Err(LeptonError::Dataset { .. })));
    assert!(matches!(ds.filter_classes(&[1, 1], true), Err(LeptonError::Dataset { .. })));
    assert!(matches!(ds.filter_classes(&[3], false), Err(LeptonError::Dataset { .. })));
    let kept = ds.filter_classes(&[2, 0], false).unwrap();
    assert_eq!((kept.labels(), kept.num_classes()), (&[0u8, 2, 0, 2, 0, 2, 0][..], 3));
    let relabelled = ds.filter_classes(&[2, 0], true).unwrap();
    assert_eq!((relabelled.labels(), relabelled.num_classes()), (&[1u8, 0, 1, 0, 1, 0, 1][..], 2));
    assert_eq!(relabelled.name(), "toy/classes=2-0");
    assert_eq!(relabelled.class_names(), ["2", "0"]);
}

// ---------------------------------------------------------------------------------------
// Seeded operations and batches.

#[test]
fn seeded_shuffle_is_reproducible() {
    let ds = toy(1000, 10);
    let a = ds.shuffled(42);
    assert_eq!(a, ds.shuffled(42));
    assert_ne!(a.images(), ds.shuffled(43).images());
    assert_ne!(a.images(), ds.images());
    assert_eq!(a.class_counts(), ds.class_counts());
    // The same records, each image still paired with its label.
    let mut pairs: Vec<(Vec<u8>, u8)> = (0..a.len()).map(|i| (a.image(i).unwrap().to_vec(), a.label(i).unwrap())).collect();
    pairs.sort();
    let mut orig: Vec<(Vec<u8>, u8)> = (0..ds.len()).map(|i| (ds.image(i).unwrap().to_vec(), ds.label(i).unwrap())).collect();
    orig.sort();
    assert_eq!(pairs, orig);
    // Pinned order: StdRng (rand 0.8) with seed 7 over ten records.
    let small = toy(10, 10).shuffled(7);
    assert_eq!(small.labels(), SHUFFLE_SEED7);
}

/// `toy(10, 10).shuffled(7).labels()`, recorded once; a change means seeded runs changed.
const SHUFFLE_SEED7: &[u8] = &[5, 7, 9, 6, 3, 8, 2, 1, 0, 4];

#[test]
fn batches_cover_everything_in_order() {
    let ds = toy(10, 3);
    let batches: Vec<_> = ds.batches(4, None).unwrap().collect();
    assert_eq!(batches.iter().map(|b| b.len).collect::<Vec<_>>(), vec![4, 4, 2]);
    assert_eq!(batches[2].y, vec![2, 0]);
    assert_eq!(batches[2].x, vec![0.0, 8.0 / 255.0, 0.0, 9.0 / 255.0]);
    let mut it = ds.batches(4, Some(1)).unwrap();
    assert_eq!(it.len(), 3);
    it.next();
    assert_eq!(it.len(), 2);
    assert_eq!(ds.batches(100, None).unwrap().len(), 1);
    // Shuffled batches follow shuffled(seed) exactly.
    let via_batches: Vec<usize> = ds.batches(3, Some(5)).unwrap().flat_map(|b| b.y).collect();
    let via_shuffled: Vec<usize> = ds.shuffled(5).labels().iter().map(|&l| usize::from(l)).collect();
    assert_eq!(via_batches, via_shuffled);
}

// ---------------------------------------------------------------------------------------
// The bundled datasets.

#[test]
fn bundled_fashion_mnist() {
    let train = fashion_mnist(Split::Train).unwrap();
    assert_eq!(
        (train.name(), train.len(), train.rows(), train.cols(), train.num_classes()),
        ("fashion-mnist/train", 60_000, 28, 28, 10)
    );
    assert_eq!(train.class_counts(), vec![6_000; 10]);
    assert_eq!(train.class_names()[0], "T-shirt/top");
    assert_eq!(train.class_names()[9], "Ankle boot");
    let first: u32 = train.image(0).unwrap().iter().map(|&p| u32::from(p)).sum();
    assert_eq!((train.label(0).unwrap(), first), (0, 79_892));
    let test = bundled(Bundled::FashionMnist, Split::Test).unwrap();
    assert_eq!((test.name(), test.len()), ("fashion-mnist/test", 10_000));
    assert_eq!(test.class_counts(), vec![1_000; 10]);
    let sum = |i: usize| test.image(i).unwrap().iter().map(|&p| u32::from(p)).sum::<u32>();
    assert_eq!((test.label(0).unwrap(), sum(0)), (0, 46_480));
    assert_eq!((test.label(9_999).unwrap(), sum(9_999)), (9, 71_374));
    let total: u64 = test.images().iter().map(|&p| u64::from(p)).sum();
    assert_eq!(total, 574_628_567);
}

#[test]
fn bundled_mnist10k() {
    let train = mnist10k(Split::Train).unwrap();
    assert_eq!((train.name(), train.len(), train.features()), ("mnist-10k/train", 8_000, 784));
    assert_eq!(train.class_counts(), vec![801, 902, 793, 826, 784, 690, 811, 856, 755, 782]);
    let test = mnist10k(Split::Test).unwrap();
    assert_eq!((test.name(), test.len()), ("mnist-10k/test", 2_000));
    assert_eq!(test.class_counts(), vec![200, 225, 198, 206, 196, 173, 203, 214, 189, 196]);
    assert_eq!(test.class_names(), ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    let sum0: u32 = test.image(0).unwrap().iter().map(|&p| u32::from(p)).sum();
    assert_eq!((test.label(0).unwrap(), sum0), (0, 29_098));
    let total: u64 = train.images().iter().map(|&p| u64::from(p)).sum();
    assert_eq!(total, 209_344_942);
    // Digits 5-9 relabelled to 0-4 (for transfer experiments).
    let hi = test.filter_classes(&[5, 6, 7, 8, 9], true).unwrap();
    assert_eq!((hi.len(), hi.num_classes()), (975, 5));
    assert_eq!(hi.class_counts(), vec![173, 203, 214, 189, 196]);
    assert_eq!(hi.class_names(), ["5", "6", "7", "8", "9"]);
    assert_eq!(test.per_class_sample(173, 0).unwrap().class_counts(), vec![173; 10]);
    assert!(matches!(test.per_class_sample(174, 0), Err(LeptonError::Dataset { .. })));
}

#[test]
fn validation_split_is_stratified_disjoint_and_seeded() {
    let train = mnist10k(Split::Train).unwrap();
    let (fit, val) = train.split_validation(0.25, 3).unwrap();
    assert_eq!((fit.name(), val.name()), ("mnist-10k/train/train", "mnist-10k/train/val"));
    // round(n_c / 4) per class; halves round away from zero.
    assert_eq!(val.class_counts(), vec![200, 226, 198, 207, 196, 173, 203, 214, 189, 196]);
    let sum: Vec<usize> = fit.class_counts().iter().zip(val.class_counts()).map(|(a, b)| a + b).collect();
    assert_eq!(sum, train.class_counts());
    // MNIST-10k has no duplicate images, so images identify records.
    let fit_set: HashSet<&[u8]> = (0..fit.len()).map(|i| fit.image(i).unwrap()).collect();
    let val_set: HashSet<&[u8]> = (0..val.len()).map(|i| val.image(i).unwrap()).collect();
    assert_eq!(fit_set.len() + val_set.len(), train.len());
    assert!(fit_set.is_disjoint(&val_set));
    // Seeded: same seed same split, other seed another split.
    assert_eq!(train.split_validation(0.25, 3).unwrap().1, val);
    assert_ne!(train.split_validation(0.25, 4).unwrap().1, val);
}

#[test]
fn bundled_paths_and_names() {
    let (img, lab) = Bundled::Mnist10k.paths(Split::Test);
    assert!(img.ends_with("datasets/mnist-10k/t10k-images-idx3-ubyte.gz"), "{img:?}");
    assert!(lab.ends_with("datasets/mnist-10k/t10k-labels-idx1-ubyte.gz"), "{lab:?}");
    assert!(lepton::data::datasets_dir().join("fashion-mnist/train-images-idx3-ubyte.gz").is_file());
    assert_eq!(format!("{}/{}", Bundled::FashionMnist, Split::Train), "fashion-mnist/train");
}
