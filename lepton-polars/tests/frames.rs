//! lepton tables as Polars DataFrames, Parquet and CSV files, and back.

use std::fs::File;

use lepton::report::{ExperimentRow, ExperimentTable, Tabular};
use lepton::LeptonError;
use lepton_polars::polars::*;
use lepton_polars::{frame_to_table, read_csv, read_parquet, ReadTable, ToPolars};

#[path = "../../tests/common/report_fixtures.rs"]
mod fixtures;
use fixtures::*;

#[test]
fn history_dataframe_keeps_names_types_and_nulls() {
    let df = history().to_polars().unwrap();
    assert_history_table(&frame_to_table(&df).unwrap());
    assert_eq!(df.column("val_loss").unwrap().null_count(), 1);
    assert_eq!(df.column("epoch").unwrap().dtype(), &DataType::UInt64);
    assert_eq!(df.column("val_loss").unwrap().dtype(), &DataType::Float64);
    assert_eq!(df.column("run").unwrap().dtype(), &DataType::String);
    // and back: DataFrame -> Table gives the same table
    assert_eq!(frame_to_table(&df).unwrap(), history().to_table().unwrap());
}

#[test]
fn history_parquet_and_csv_round_trip() {
    let h = history();
    let parquet = tmp("polars/nested/dir/history.parquet");
    h.write_parquet(&parquet).unwrap();
    let df = ParquetReader::new(File::open(&parquet).unwrap()).finish().unwrap();
    assert_eq!(df.column("val_loss").unwrap().dtype(), &DataType::Float64);
    assert_history_table(&frame_to_table(&df).unwrap());
    assert_eq!(read_parquet(&parquet).unwrap(), h.to_table().unwrap());

    let csv = tmp("polars/nested/dir/history.csv");
    h.write_csv(&csv).unwrap();
    assert_history_table(&read_csv(&csv).unwrap());
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        "run,epoch,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate,wall_seconds,samples"
    );
    // the null validation values of epoch 2 are empty fields
    assert_eq!(text.lines().nth(2).unwrap(), "lenet300 fashion,2,0.6,0.8,,,0.05,3.0,1000");
    // No temporary files are left next to the outputs.
    let left: Vec<_> = std::fs::read_dir(parquet.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
}

#[test]
fn confusion_and_size_frames() {
    let c = eval().confusion_table().unwrap().to_polars().unwrap();
    assert_eq!(c.shape(), (9, 3));
    let t = frame_to_table(&c).unwrap();
    assert_eq!(u64s(&t, "count"), [3, 1, 0, 0, 2, 1, 1, 0, 2].map(Some));
    let s = sizes().to_polars().unwrap();
    assert_eq!(s.shape(), (2, 5));
    assert_eq!(u64s(&frame_to_table(&s).unwrap(), "bytes"), [Some(940_800), Some(1200)]);
}

#[test]
fn experiment_table_parquet_and_csv_round_trip() {
    let mut t = ExperimentTable::new();
    t.push(row("lenet300", "baseline", 0.8875, 1_066_000));
    t.push(ExperimentRow {
        notes: "pruned <90%>, \"fine-tuned\"".to_owned(),
        ..row("lenet300", "pruned-90", 0.875, 106_600)
    });
    let path = tmp("polars/experiments.parquet");
    t.write_parquet(&path).unwrap();
    assert_eq!(ExperimentTable::read_parquet(&path).unwrap(), t);

    let csv = tmp("polars/experiments.csv");
    t.write_csv(&csv).unwrap();
    // CSV gives the integer columns back as Int64; they still read
    let df = CsvReadOptions::default()
        .try_into_reader_with_file_path(Some(csv.clone()))
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(df.column("bytes").unwrap().dtype(), &DataType::Int64);
    assert_eq!(ExperimentTable::from_polars(&df).unwrap(), t);
    assert_eq!(ExperimentTable::read_csv(&csv).unwrap(), t);
}

#[test]
fn bad_files_are_typed_errors_and_leave_nothing_behind() {
    let missing = tmp("polars/none/such.parquet");
    assert!(matches!(ExperimentTable::read_parquet(&missing), Err(LeptonError::Io { .. })));

    // a truncated Parquet file
    let path = tmp("polars/truncated.parquet");
    history().write_parquet(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = read_parquet(&path).unwrap_err();
    assert!(matches!(err, LeptonError::Table { .. }), "{err}");
    assert!(err.to_string().contains("truncated.parquet"), "{err}");

    // the history is not an experiment table: the missing column is named
    let h = tmp("polars/history-as-experiments.parquet");
    history().write_parquet(&h).unwrap();
    let err = ExperimentTable::read_parquet(&h).unwrap_err().to_string();
    assert!(err.contains("\"model\"") && err.contains("no such column"), "{err}");

    // a path without a file name is refused before anything is written
    let dir = tmp("polars/dir-only");
    std::fs::create_dir_all(&dir).unwrap();
    let err = history().write_csv(dir.join("..")).unwrap_err();
    assert!(matches!(err, LeptonError::Table { .. }), "{err}");
}

#[test]
fn unsupported_column_types_are_named() {
    let df = DataFrame::new(2, vec![Column::new("ok".into(), [true, false])]).unwrap();
    let err = frame_to_table(&df).unwrap_err().to_string();
    assert!(err.contains("\"ok\"") && err.contains("bool"), "{err}");
    let df = DataFrame::new(
        2,
        vec![Column::new("small".into(), [1i32, -2]), Column::new("f".into(), [0.5f32, 1.5])],
    )
    .unwrap();
    let t = frame_to_table(&df).unwrap();
    assert_eq!(f64s(&t, "small"), [Some(1.0), Some(-2.0)]);
    assert_eq!(f64s(&t, "f"), [Some(0.5), Some(1.5)]);
}
