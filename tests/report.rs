//! Reports as tables, figures and HTML (Parquet/CSV: lepton-polars/tests/frames.rs).

use lepton::report::{
    escape_html, plot_histories, Column, ExperimentRow, ExperimentTable, History,
    Table, Tabular, Values,
};
use lepton::LeptonError;

#[path = "common/report_fixtures.rs"]
mod fixtures;
use fixtures::*;

#[test]
fn history_table_has_one_row_per_epoch_and_null_validation() {
    let t = history().to_table().unwrap();
    assert_history_table(&t);
    assert!(matches!(t.column("epoch").unwrap().values, Values::U64(_)));
    assert!(matches!(t.column("val_loss").unwrap().values, Values::F64(_)));
}

#[test]
fn eval_report_tables() {
    let r = eval();
    let t = r.to_table().unwrap();
    assert_eq!(t.shape(), (3, 6));
    assert_eq!(u64s(&t, "class"), [Some(0), Some(1), Some(2)]);
    assert_eq!(strs(&t, "class_name")[1], Some("Trouser".to_owned()));
    assert_eq!(u64s(&t, "samples"), [Some(4), Some(3), Some(3)]);
    assert_eq!(f64s(&t, "accuracy")[0], Some(0.75));

    let c = r.confusion_table().unwrap();
    assert_eq!(c.shape(), (9, 3));
    assert_eq!(c.column_names(), ["true", "predicted", "count"]);
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
        r.confusion_table(),
        Err(LeptonError::Table { .. })
    ));
    assert!(matches!(r.plot_confusion(), Err(LeptonError::Plot { .. })));
}

#[test]
fn size_report_table_and_text() {
    let s = sizes();
    let t = s.to_table().unwrap();
    assert_eq!(t.shape(), (2, 5));
    assert_eq!(
        strs(&t, "shape"),
        [Some("300x784".to_owned()), Some("300".to_owned())]
    );
    assert_eq!(u64s(&t, "params"), [Some(235_200), Some(300)]);
    assert_eq!(u64s(&t, "bytes"), [Some(940_800), Some(1200)]);
    let text = s.to_string();
    assert!(text.contains("235500"), "{text}");
    let html = s.to_html();
    assert!(
        html.contains("font-weight:bold") && html.contains("919.92"),
        "{html}"
    );
}

#[test]
fn experiment_table_round_trips_through_its_table() {
    let mut t = ExperimentTable::new();
    t.push(row("lenet300", "baseline", 0.8875, 1_066_000));
    t.push(ExperimentRow {
        notes: "pruned <90%> & fine-tuned".to_owned(),
        ..row("lenet300", "pruned-90", 0.875, 106_600)
    });
    assert_eq!(t.len(), 2);
    let table = t.to_table().unwrap();
    assert_eq!(table.shape(), (2, 11));
    assert_eq!(ExperimentTable::from_table(&table).unwrap(), t);
}

/// A CSV reader gives integer columns as i64 and may give a whole-number column as f64:
/// both read back; a negative count, a fraction, a null number or a missing column do not.
#[test]
fn experiment_table_from_table_checks_columns() {
    let t: ExperimentTable = [row("lenet5", "baseline", 0.9, 4000)].into_iter().collect();
    let table = t.to_table().unwrap();
    let replace = |name: &str, values: Values| {
        let columns = table
            .columns()
            .iter()
            .map(|c| if c.name == name { Column::new(name, values.clone()) } else { c.clone() })
            .collect();
        Table::new("edited", 1, columns).unwrap()
    };
    let as_i64 = replace("params", Values::I64(vec![Some(1000)]));
    assert_eq!(ExperimentTable::from_table(&as_i64).unwrap(), t);
    let as_f64 = replace("bytes", Values::F64(vec![Some(4000.0)]));
    assert_eq!(ExperimentTable::from_table(&as_f64).unwrap(), t);

    let negative = replace("epochs", Values::I64(vec![Some(-1)]));
    let err = ExperimentTable::from_table(&negative).unwrap_err().to_string();
    assert!(err.contains("\"epochs\"") && err.contains("-1 is not an unsigned integer"), "{err}");
    let fraction = replace("seed", Values::F64(vec![Some(0.5)]));
    assert!(ExperimentTable::from_table(&fraction).unwrap_err().to_string().contains("0.5"));
    let null = replace("test_loss", Values::F64(vec![None]));
    let err = ExperimentTable::from_table(&null).unwrap_err().to_string();
    assert!(err.contains("\"test_loss\"") && err.contains("null"), "{err}");
    let text = replace("test_accuracy", Values::Str(vec![Some("0.9".into())]));
    assert!(ExperimentTable::from_table(&text).unwrap_err().to_string().contains("is text"));
    let no_notes = Table::new(
        "no notes",
        1,
        table.columns().iter().filter(|c| c.name != "notes").cloned().collect(),
    )
    .unwrap();
    let err = ExperimentTable::from_table(&no_notes).unwrap_err().to_string();
    assert!(err.contains("\"notes\"") && err.contains("no such column"), "{err}");
    // a null string reads as ""
    let null_notes = replace("notes", Values::Str(vec![None]));
    assert_eq!(ExperimentTable::from_table(&null_notes).unwrap(), t);
}

#[test]
fn table_rejects_ragged_and_duplicate_columns() {
    let a = Column::new("a", Values::U64(vec![Some(1), Some(2)]));
    let short = Column::new("b", Values::F64(vec![Some(1.0)]));
    let err = Table::new("t", 2, vec![a.clone(), short]).unwrap_err().to_string();
    assert!(err.contains("\"b\" has 1 rows, expected 2"), "{err}");
    let err = Table::new("t", 2, vec![a.clone(), a.clone()]).unwrap_err().to_string();
    assert!(err.contains("\"a\" appears twice"), "{err}");
    let t = Table::new("t", 2, vec![a]).unwrap();
    assert_eq!(t.to_table().unwrap(), t);
    assert_eq!(t.shape(), (2, 1));
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

/// Decodes a PNG file with the `png` crate: (width, height, RGB8 pixels).
fn decode_png(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.color_type, info.bit_depth), (png::ColorType::Rgb, png::BitDepth::Eight));
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[test]
fn png_decodes_to_the_drawn_plot() {
    let fig = history().plot().unwrap().with_size(640, 360).unwrap();
    let path = tmp("figs/decoded.png");
    fig.save_png(&path).unwrap();
    let (w, h, rgb) = decode_png(&path);
    assert_eq!((w, h, rgb.len()), (640, 360, 640 * 360 * 3));
    let px: Vec<[u8; 3]> = rgb.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect();
    // White background: the top-left corner and most of the picture.
    assert_eq!(px[0], [255, 255, 255]);
    let white = px.iter().filter(|p| **p == [255, 255, 255]).count();
    assert!(white > px.len() / 2, "{white} white pixels of {}", px.len());
    // Dark pixels: axes, ticks and the labels drawn with the embedded font.
    let dark = px.iter().filter(|p| p.iter().all(|&c| c < 96)).count();
    assert!(dark > 1_000, "{dark} dark pixels");
    // Coloured pixels: the train and val curves.
    let coloured = px
        .iter()
        .filter(|p| p.iter().max().unwrap() - p.iter().min().unwrap() > 96)
        .count();
    assert!(coloured > 500, "{coloured} coloured pixels");
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
