//! Writes the artefacts a Python user reads, for the interop test `tests/python/test_interop.py`.
//!
//! ```text
//! cargo run --release -p lepton-polars --example interop_export -- <output-dir>
//! ```
//! Trains LeNet-300-100 for one epoch on 1,000 Fashion-MNIST training images (100 per class,
//! seed 0), evaluates it on 1,000 test images and writes to `<output-dir>`:
//!
//! - `lenet300.safetensors`: the checkpoint (`Session::save`);
//! - `lenet300-int8.safetensors`: the model quantized to 8-bit integers, calibrated on 4
//!   training batches (`Session::quantize_int8`, `QuantizedModel::save`);
//! - `history.parquet`, `history.csv`, `eval.parquet`, `eval.csv`, `size.parquet`: the
//!   [`Tabular`] reports, through lepton-polars;
//! - `expected.json`: the values the Python side must find in those files (tensor names,
//!   shapes and sums, history rows, accuracy, per-class numbers).
use std::fmt::Write as _;
use std::path::PathBuf;

use lepton::prelude::*;
use lepton_polars::ToPolars;

/// A JSON string literal (the names written here need no more than quotes and backslashes,
/// but control characters are escaped too).
fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A finite f64 as a JSON number (Rust's `{:?}` prints the shortest round-tripping form).
fn json_f64(v: f64) -> Result<String> {
    if v.is_finite() {
        Ok(format!("{v:?}"))
    } else {
        Err(LeptonError::config("json value", v, "JSON has no NaN or infinity"))
    }
}

fn json_list<T>(items: impl IntoIterator<Item = T>, f: impl Fn(T) -> Result<String>) -> Result<String> {
    let parts: Result<Vec<String>> = items.into_iter().map(f).collect();
    Ok(format!("[{}]", parts?.join(", ")))
}

fn main() -> Result<()> {
    let out: PathBuf = match std::env::args_os().nth(1) {
        Some(dir) => dir.into(),
        None => {
            return Err(LeptonError::config(
                "output_dir",
                "<missing>",
                "usage: cargo run --release -p lepton-polars --example interop_export -- <output-dir>",
            ))
        }
    };
    std::fs::create_dir_all(&out).map_err(|e| LeptonError::io("create folder", &out, e))?;

    let train = fashion_mnist(Split::Train)?.per_class_sample(100, 0)?;
    let test = fashion_mnist(Split::Test)?.per_class_sample(100, 1)?;
    let config = TrainConfig::default().with_epochs(1).with_seed(0).with_progress(false);
    let mut session = Session::new(Arch::LeNet300, train.clone(), None, config)?;
    let history = session.fit(1)?;
    let report = session.evaluate(&test)?;

    session.save(out.join("lenet300.safetensors"))?;
    let int8 = session.quantize_int8(&QuantConfig::default(), &train, 4)?;
    int8.save(out.join("lenet300-int8.safetensors"))?;
    history.write_parquet(out.join("history.parquet"))?;
    history.write_csv(out.join("history.csv"))?;
    report.write_parquet(out.join("eval.parquet"))?;
    report.write_csv(out.join("eval.csv"))?;
    session.size().write_parquet(out.join("size.parquet"))?;

    let tensors = session.tensors();
    let sum = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>();
    let fc1_sum = tensors
        .iter()
        .find(|(name, _, _)| name == "fc1.weight")
        .map(|(_, _, v)| sum(v))
        .ok_or_else(|| LeptonError::config("tensor", "fc1.weight", "missing from the model"))?;
    let tensor_json = json_list(&tensors, |(name, shape, values)| {
        Ok(format!(
            "{{\"name\": {}, \"shape\": {}, \"sum\": {}, \"abs_sum\": {}}}",
            json_str(name),
            json_list(shape, |d| Ok(d.to_string()))?,
            json_f64(sum(values))?,
            json_f64(values.iter().map(|&x| f64::from(x).abs()).sum())?
        ))
    })?;
    let e = &history.epochs;
    let json = format!(
        "{{\n  \"arch\": {},\n  \"seed\": 0,\n  \"epochs\": {},\n  \"tensors\": {},\n  \"fc1_weight_sum\": {},\n  \
         \"total_params\": {},\n  \"history_name\": {},\n  \"history_rows\": {},\n  \"train_loss\": {},\n  \
         \"train_accuracy\": {},\n  \"train_samples\": {},\n  \"learning_rate\": {},\n  \"eval_model\": {},\n  \
         \"eval_dataset\": {},\n  \"samples\": {},\n  \"accuracy\": {},\n  \"loss\": {},\n  \"class_names\": {},\n  \
         \"class_counts\": {},\n  \"per_class_accuracy\": {}\n}}\n",
        json_str(Arch::LeNet300.name()),
        e.len(),
        tensor_json,
        json_f64(fc1_sum)?,
        session.size().total_params(),
        json_str(&history.name),
        e.len(),
        json_list(e, |r| json_f64(r.train_loss))?,
        json_list(e, |r| json_f64(r.train_accuracy))?,
        json_list(e, |r| Ok(r.samples.to_string()))?,
        json_list(e, |r| json_f64(r.learning_rate))?,
        json_str(&report.model),
        json_str(&report.dataset),
        report.samples,
        json_f64(report.accuracy)?,
        json_f64(report.loss)?,
        json_list(&report.class_names, |s| Ok(json_str(s)))?,
        json_list(&report.class_counts, |c| Ok(c.to_string()))?,
        json_list(&report.per_class_accuracy, |a| json_f64(*a))?,
    );
    let path = out.join("expected.json");
    std::fs::write(&path, json).map_err(|e| LeptonError::io("write", &path, e))?;
    println!(
        "wrote {}: accuracy {:.4}, train loss {:.4}, fc1.weight sum {fc1_sum:.6}",
        out.display(),
        report.accuracy,
        e.first().map_or(f64::NAN, |r| r.train_loss)
    );
    Ok(())
}
