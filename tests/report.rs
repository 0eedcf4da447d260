//! Reports as DataFrames, Parquet/CSV files, figures and HTML.

use std::fs::File;
use std::path::PathBuf;

use lepton::report::{
    escape_html, plot_histories, EpochRecord, EvalReport, ExperimentRow, ExperimentTable, History,
    SizeReport, Tabular, TensorSize,
};
use lepton::LeptonError;
use lepton::polars::*;

fn history() -> History {
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

fn eval() -> EvalReport {
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

fn sizes() -> SizeReport {
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

fn row(model: &str, stage: &str, accuracy: f64, bytes: usize) -> ExperimentRow {
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

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir()
        .join(format!("lepton-report-test-{}", std::process::id()))
        .join(name)
}

fn f64s(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
    df.column(name)
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect()
}

fn u64s(df: &DataFrame, name: &str) -> Vec<Option<u64>> {
    df.column(name)
        .unwrap()
        .cast(&DataType::UInt64)
        .unwrap()
        .u64()
        .unwrap()
        .iter()
        .collect()
}

fn strs(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    df.column(name)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.map(str::to_owned))
        .collect()
}

/// The History columns with their values, as read back from any of the formats.
fn assert_history_frame(df: &DataFrame) {
    assert_eq!(df.shape(), (3, 9));
    let names: Vec<&str> = df.get_column_names().iter().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
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

#[test]
fn history_dataframe_has_one_row_per_epoch_and_null_validation() {
    let df = history().to_polars().unwrap();
    assert_history_frame(&df);
    assert_eq!(df.column("val_loss").unwrap().null_count(), 1);
    assert_eq!(df.column("epoch").unwrap().dtype(), &DataType::UInt64);
}

#[test]
fn history_parquet_and_csv_round_trip() {
    let h = history();
    let parquet = tmp("nested/dir/history.parquet");
    h.write_parquet(&parquet).unwrap();
    let df = ParquetReader::new(File::open(&parquet).unwrap())
        .finish()
        .unwrap();
    assert_history_frame(&df);
    assert_eq!(df.column("val_loss").unwrap().dtype(), &DataType::Float64);

    let csv = tmp("nested/dir/history.csv");
    h.write_csv(&csv).unwrap();
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(csv.clone()))
        .unwrap()
        .finish()
        .unwrap();
    assert_history_frame(&df);
    // No temporary files are left next to the outputs.
    let left: Vec<_> = std::fs::read_dir(parquet.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
}

#[test]
fn eval_report_frames() {
    let r = eval();
    let df = r.to_polars().unwrap();
    assert_eq!(df.shape(), (3, 6));
    assert_eq!(u64s(&df, "class"), [Some(0), Some(1), Some(2)]);
    assert_eq!(strs(&df, "class_name")[1], Some("Trouser".to_owned()));
    assert_eq!(u64s(&df, "samples"), [Some(4), Some(3), Some(3)]);
    assert_eq!(f64s(&df, "accuracy")[0], Some(0.75));

    let c = r.confusion_to_polars().unwrap();
    assert_eq!(c.shape(), (9, 3));
    let names: Vec<&str> = c.get_column_names().iter().map(|s| s.as_str()).collect();
    assert_eq!(names, ["true", "predicted", "count"]);
    let counts = u64s(&c, "count");
    assert_eq!(
        counts.iter().map(|c| c.unwrap()).sum::<u64>(),
        r.samples as u64
    );
    assert_eq!(counts, [3, 1, 0, 0, 2, 1, 1, 0, 2].map(Some));
    assert_eq!(u64s(&c, "true")[3], Some(1));
    assert_eq!(u64s(&c, "predicted")[3], Some(0));
}

#[test]
fn ragged_confusion_is_an_error() {
    let mut r = eval();
    r.confusion[1].pop();
    assert!(matches!(
        r.confusion_to_polars(),
        Err(LeptonError::Table { .. })
    ));
    assert!(matches!(r.plot_confusion(), Err(LeptonError::Plot { .. })));
}

#[test]
fn size_report_frame_and_text() {
    let s = sizes();
    let df = s.to_polars().unwrap();
    assert_eq!(df.shape(), (2, 5));
    assert_eq!(
        strs(&df, "shape"),
        [Some("300x784".to_owned()), Some("300".to_owned())]
    );
    assert_eq!(u64s(&df, "params"), [Some(235_200), Some(300)]);
    assert_eq!(u64s(&df, "bytes"), [Some(940_800), Some(1200)]);
    let text = s.to_string();
    assert!(text.contains("235500"), "{text}");
    let html = s.to_html();
    assert!(
        html.contains("font-weight:bold") && html.contains("919.92"),
        "{html}"
    );
}

#[test]
fn experiment_table_parquet_round_trip() {
    let mut t = ExperimentTable::new();
    t.push(row("lenet300", "baseline", 0.8875, 1_066_000));
    t.push(ExperimentRow {
        notes: "pruned <90%> & fine-tuned".to_owned(),
        ..row("lenet300", "pruned-90", 0.875, 106_600)
    });
    assert_eq!(t.len(), 2);
    let path = tmp("experiments.parquet");
    t.write_parquet(&path).unwrap();
    let back = ExperimentTable::read_parquet(&path).unwrap();
    assert_eq!(back, t);

    let csv = tmp("experiments.csv");
    t.write_csv(&csv).unwrap();
    let df = CsvReadOptions::default()
        .try_into_reader_with_file_path(Some(csv))
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(ExperimentTable::from_polars(&df).unwrap(), t);
}

#[test]
fn history_svg_has_title_axes_and_legend() {
    let fig = history().plot().unwrap();
    let svg = fig.svg();
    assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
    for text in [
        "lenet300 fashion",
        "epoch",
        "cross-entropy loss (nats)",
        "accuracy (%)",
        "train",
        "validation",
    ] {
        assert!(svg.contains(text), "SVG lacks {text:?}");
    }
    let (a, b) = (
        history(),
        History {
            name: "run-b".to_owned(),
            ..history()
        },
    );
    let svg = plot_histories(&[&a, &b]).unwrap().svg().to_owned();
    assert!(svg.contains("lenet300 fashion train") && svg.contains("run-b val"));
}

/// Width and height from the IHDR chunk of a PNG file.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

#[test]
fn png_has_signature_and_requested_size() {
    let fig = history().plot().unwrap().with_size(640, 360).unwrap();
    let path = tmp("figs/history.png");
    fig.save_png(&path).unwrap();
    assert_eq!(png_size(&std::fs::read(&path).unwrap()), (640, 360));

    let svg_path = tmp("figs/history.svg");
    fig.save_svg(&svg_path).unwrap();
    assert_eq!(std::fs::read_to_string(&svg_path).unwrap(), fig.svg());

    let confusion = eval().plot_confusion().unwrap();
    let path = tmp("figs/confusion.png");
    confusion.save_png(&path).unwrap();
    assert_eq!(
        png_size(&std::fs::read(&path).unwrap()),
        (confusion.width(), confusion.height())
    );
    assert!(confusion.svg().contains("predicted class") && confusion.svg().contains("Trouser"));
}

#[test]
fn empty_inputs_are_plot_errors() {
    let empty = History {
        name: "nothing".to_owned(),
        epochs: vec![],
    };
    assert!(matches!(empty.plot(), Err(LeptonError::Plot { .. })));
    assert!(matches!(plot_histories(&[]), Err(LeptonError::Plot { .. })));
    assert!(matches!(
        ExperimentTable::new().plot_accuracy_vs_size(),
        Err(LeptonError::Plot { .. })
    ));
    assert!(matches!(
        history().plot().unwrap().with_size(0, 10),
        Err(LeptonError::Plot { .. })
    ));
}

#[test]
fn non_finite_values_are_skipped() {
    let mut h = history();
    h.epochs[1].train_loss = f64::NAN;
    h.epochs[2].val_loss = Some(f64::INFINITY);
    h.epochs[0].train_accuracy = f64::NEG_INFINITY;
    h.plot().unwrap().save_png(tmp("figs/nan.png")).unwrap();
    let mut all_nan = history();
    for e in &mut all_nan.epochs {
        e.train_loss = f64::NAN;
        e.val_loss = Some(f64::NAN);
    }
    all_nan.plot().unwrap();
    let mut extreme = history();
    extreme.epochs[0].train_loss = 1e300;
    extreme.epochs[1].train_loss = -1e300;
    extreme.epochs[2].val_accuracy = Some(f64::MAX);
    extreme
        .plot()
        .unwrap()
        .save_png(tmp("figs/extreme.png"))
        .unwrap();

    let t: ExperimentTable = [
        row("a", "baseline", f64::NAN, 1000),
        row("b", "baseline", 0.9, 0),
        row("c", "int8", 0.5, 2048),
    ]
    .into_iter()
    .collect();
    t.plot_accuracy_vs_size().unwrap();
    let t: ExperimentTable = [row("a", "baseline", f64::NAN, 1000)].into_iter().collect();
    assert!(matches!(
        t.plot_accuracy_vs_size(),
        Err(LeptonError::Plot { .. })
    ));
}

#[test]
fn accuracy_vs_size_scatter() {
    let t: ExperimentTable = [
        row("lenet300", "baseline", 0.8875, 1_066_000),
        row("lenet300", "pruned-90", 0.875, 106_600),
        row("lenet5", "baseline", 0.9, 246_000),
    ]
    .into_iter()
    .collect();
    let fig = t.plot_accuracy_vs_size().unwrap();
    for text in [
        "lenet300 / fashion-mnist",
        "lenet5 / fashion-mnist",
        "pruned-90",
        "stored size (KiB)",
        "test accuracy (%)",
    ] {
        assert!(fig.svg().contains(text), "SVG lacks {text:?}");
    }
    fig.save_png(tmp("figs/scatter.png")).unwrap();
}

#[test]
fn html_escapes_names() {
    assert_eq!(
        escape_html("<a href=\"x\">&'"),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
    );
    let h = History {
        name: "<script>alert(1)</script>".to_owned(),
        ..history()
    };
    let html = h.to_html();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script>"));
    let mut r = eval();
    r.class_names[0] = "a<b".to_owned();
    let html = r.to_html();
    assert!(html.contains("a&lt;b") && !html.contains("a<b"));
    assert!(html.contains("70.00 %"));
    let t: ExperimentTable = [ExperimentRow {
        model: "m<1>".to_owned(),
        ..row("x", "baseline", 0.5, 10)
    }]
    .into_iter()
    .collect();
    assert!(t.to_html().contains("m&lt;1&gt;"));
}

#[test]
fn display_is_a_text_table() {
    let text = history().to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "History lenet300 fashion: 3 epochs, 9.0 s");
    assert!(lines[1].starts_with("epoch  train loss"));
    assert!(
        lines[4].contains("0.6000") && lines[4].contains(" - "),
        "{}",
        lines[4]
    );
    let text = eval().to_string();
    assert!(text.starts_with(
        "lenet300 on fashion-mnist/test: accuracy 70.00 %, loss 0.2500 nats, 10 samples"
    ));
}
