//! Report fixtures and table assertions shared by lepton's tests/report.rs and
//! lepton-polars/tests/frames.rs (which includes this file with `#[path]`).
#![allow(dead_code)]

use std::path::PathBuf;

use lepton::report::{EpochRecord, EvalReport, ExperimentRow, History, SizeReport, Table, TensorSize};

pub fn history() -> History {
    let epoch = |epoch, train_loss, train_accuracy, val_loss, val_accuracy| EpochRecord {
        epoch,
        train_loss,
        train_accuracy,
        val_loss,
        val_accuracy,
        learning_rate: 0.05,
        wall_seconds: 1.5 * epoch as f64,
        samples: 1000,
    };
    History {
        name: "lenet300 fashion".to_owned(),
        epochs: vec![
            epoch(1, 0.9, 0.7, Some(0.8), Some(0.75)),
            epoch(2, 0.6, 0.8, None, None),
            epoch(3, 0.4, 0.875, Some(0.5), Some(0.85)),
        ],
    }
}

pub fn eval() -> EvalReport {
    EvalReport {
        model: "lenet300".to_owned(),
        dataset: "fashion-mnist/test".to_owned(),
        samples: 10,
        loss: 0.25,
        accuracy: 0.7,
        per_class_accuracy: vec![0.75, 2.0 / 3.0, 2.0 / 3.0],
        class_counts: vec![4, 3, 3],
        confusion: vec![vec![3, 1, 0], vec![0, 2, 1], vec![1, 0, 2]],
        class_names: vec![
            "T-shirt/top".to_owned(),
            "Trouser".to_owned(),
            "Pullover".to_owned(),
        ],
    }
}

pub fn sizes() -> SizeReport {
    let t = |path: &str, shape: Vec<usize>| {
        let params = shape.iter().product();
        TensorSize {
            path: path.to_owned(),
            shape,
            params,
            bytes: 4 * params,
        }
    };
    SizeReport {
        model: "lenet300".to_owned(),
        tensors: vec![t("fc1.weight", vec![300, 784]), t("fc1.bias", vec![300])],
    }
}

pub fn row(model: &str, stage: &str, accuracy: f64, bytes: usize) -> ExperimentRow {
    ExperimentRow {
        model: model.to_owned(),
        dataset: "fashion-mnist".to_owned(),
        stage: stage.to_owned(),
        seed: 42,
        epochs: 10,
        test_accuracy: accuracy,
        test_loss: 0.3125,
        params: bytes / 4,
        bytes,
        train_seconds: 12.5,
        notes: String::new(),
    }
}

pub fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir()
        .join(format!("lepton-report-test-{}", std::process::id()))
        .join(name)
}

/// Column `name` of `t` as floats (integers converted).
pub fn f64s(t: &Table, name: &str) -> Vec<Option<f64>> {
    t.column(name).unwrap().f64s().unwrap()
}

/// Column `name` of `t` as unsigned integers.
pub fn u64s(t: &Table, name: &str) -> Vec<Option<u64>> {
    t.column(name).unwrap().u64s().unwrap()
}

/// Column `name` of `t` as text.
pub fn strs(t: &Table, name: &str) -> Vec<Option<String>> {
    t.column(name).unwrap().strs().unwrap()
}

/// The History columns with their values, as read back from any of the formats.
pub fn assert_history_table(df: &Table) {
    assert_eq!(df.shape(), (3, 9));
    assert_eq!(
        df.column_names(),
        [
            "run",
            "epoch",
            "train_loss",
            "train_accuracy",
            "val_loss",
            "val_accuracy",
            "learning_rate",
            "wall_seconds",
            "samples"
        ]
    );
    let run = Some("lenet300 fashion".to_owned());
    assert_eq!(strs(df, "run"), [run.clone(), run.clone(), run]);
    assert_eq!(u64s(df, "epoch"), [Some(1), Some(2), Some(3)]);
    assert_eq!(f64s(df, "train_loss"), [Some(0.9), Some(0.6), Some(0.4)]);
    assert_eq!(
        f64s(df, "train_accuracy"),
        [Some(0.7), Some(0.8), Some(0.875)]
    );
    assert_eq!(f64s(df, "val_loss"), [Some(0.8), None, Some(0.5)]);
    assert_eq!(f64s(df, "val_accuracy"), [Some(0.75), None, Some(0.85)]);
    assert_eq!(f64s(df, "learning_rate"), [Some(0.05); 3]);
    assert_eq!(f64s(df, "wall_seconds"), [Some(1.5), Some(3.0), Some(4.5)]);
    assert_eq!(u64s(df, "samples"), [Some(1000); 3]);
}
