//! Tests of saving and reloading integer-quantized models (`QuantizedModel::save` / `load`):
//! an MLP (LeNet-300-100) and a LeNet-5 come back equal, with the same calibration report and
//! bit-identical predictions and logits; the file holds the documented tensors (standard
//! dtypes) and metadata; and every damaged or foreign file is a typed error naming the
//! problem.

mod common;
use common::{train_1k, test_500};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use lepton::data::{fashion_mnist, Dataset, Split};
use lepton::nn::Arch;
use lepton::quant::{Kernel, QuantConfig, QuantizedModel};
use lepton::train::{Session, TrainConfig};
use lepton::LeptonError;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

// ---------------------------------------------------------------------------------------
// Data, models and files.

/// 200 test samples (20 per class), for the slower LeNet-5.
fn test_200() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| fashion_mnist(Split::Test).unwrap().per_class_sample(20, 2).unwrap())
}

fn quiet() -> TrainConfig {
    TrainConfig::default().with_progress(false).with_batch_size(64)
}

/// A session of `arch` trained one epoch on 1 000 samples.
fn trained(arch: Arch) -> Session {
    let mut s = Session::new(arch, train_1k().clone(), None, quiet()).unwrap();
    s.fit(1).unwrap();
    s
}

/// A fresh folder for one test.
fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lepton-quant-io-{}", std::process::id())).join(test);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An untrained LeNet-300-100 in integers (calibrated on one batch), saved once; the error
/// tests damage copies of its file.
fn small_mlp() -> &'static (QuantizedModel, PathBuf) {
    static M: OnceLock<(QuantizedModel, PathBuf)> = OnceLock::new();
    M.get_or_init(|| {
        let s = Session::new(Arch::LeNet300, train_1k().clone(), None, quiet()).unwrap();
        let q = s.quantize_int8(&QuantConfig::default(), train_1k(), 1).unwrap();
        let path = dir("small-mlp").join("lenet300-int8.safetensors");
        q.save(&path).unwrap();
        (q, path)
    })
}

/// An untrained LeNet-5 in integers (calibrated on one batch), saved once.
fn small_lenet5() -> &'static (QuantizedModel, PathBuf) {
    static M: OnceLock<(QuantizedModel, PathBuf)> = OnceLock::new();
    M.get_or_init(|| {
        let s = Session::new(Arch::LeNet5, train_1k().clone(), None, quiet()).unwrap();
        let q = s.quantize_int8(&QuantConfig::default(), train_1k(), 1).unwrap();
        let path = dir("small-lenet5").join("lenet5-int8.safetensors");
        q.save(&path).unwrap();
        (q, path)
    })
}

type Entry = (String, Dtype, Vec<usize>, Vec<u8>);

/// The tensors (sorted by name) and metadata of a safetensors file.
fn entries(path: &Path) -> (Vec<Entry>, HashMap<String, String>) {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().clone().unwrap_or_default();
    let mut e: Vec<Entry> = file.tensors().into_iter().map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec())).collect();
    e.sort_by(|a, b| a.0.cmp(&b.0));
    (e, meta)
}

/// A copy of [`small_mlp`]'s file named `name`, its tensors and metadata edited by `edit`,
/// written with the safetensors crate.
fn damaged(name: &str, edit: impl FnOnce(&mut Vec<Entry>, &mut HashMap<String, String>)) -> PathBuf {
    damaged_copy(&small_mlp().1, name, edit)
}

/// A copy of the file at `src` named `name`, edited by `edit`.
fn damaged_copy(src: &Path, name: &str, edit: impl FnOnce(&mut Vec<Entry>, &mut HashMap<String, String>)) -> PathBuf {
    let (mut e, mut meta) = entries(src);
    edit(&mut e, &mut meta);
    let views: Vec<(String, TensorView<'_>)> = e.iter().map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    let bytes = safetensors::tensor::serialize(views, &Some(meta)).unwrap();
    let path = dir(name).join("damaged.safetensors");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn entry<'a>(e: &'a mut [Entry], name: &str) -> &'a mut Entry {
    e.iter_mut().find(|t| t.0 == name).unwrap()
}

/// Loads `path`, expects a `Checkpoint` error for that path, and returns its message.
fn checkpoint_error(path: &Path) -> String {
    match QuantizedModel::load(path) {
        Err(e @ LeptonError::Checkpoint { .. }) => {
            let LeptonError::Checkpoint { path: p, .. } = &e else { unreachable!() };
            assert_eq!(p, path);
            e.to_string()
        }
        Err(e) => panic!("expected a checkpoint error, got {e:?}"),
        Ok(_) => panic!("{} loaded", path.display()),
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Saves `q`, checks that only the file is left in its folder, loads it and checks that the
/// model, its calibration, predictions and logits on `data` are exactly the same.
fn round_trip(q: &QuantizedModel, test: &str, data: &Dataset) -> (QuantizedModel, PathBuf) {
    let folder = dir(test);
    let path = folder.join("model.safetensors");
    q.save(&path).unwrap();
    let files: Vec<String> = std::fs::read_dir(&folder).unwrap().map(|f| f.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(files, vec!["model.safetensors".to_string()], "no temporary file is left");
    let loaded = QuantizedModel::load(&path).unwrap();
    assert_eq!(loaded, *q);
    assert_eq!(loaded.calibration(), q.calibration());
    assert_eq!((loaded.name(), loaded.kernel()), (q.name(), q.kernel()));
    assert_eq!(loaded.predict(data).unwrap(), q.predict(data).unwrap());
    assert_eq!(bits(&loaded.logits(data).unwrap()), bits(&q.logits(data).unwrap()));
    (loaded, path)
}

fn layout(path: &Path) -> Vec<(String, Dtype, Vec<usize>)> {
    entries(path).0.into_iter().map(|(n, d, s, _)| (n, d, s)).collect()
}

// ---------------------------------------------------------------------------------------
// Round trips

#[test]
fn an_int8_mlp_reloads_equal_with_identical_predictions_and_the_documented_layout() {
    let s = trained(Arch::LeNet300);
    let q = s.quantize_int8(&QuantConfig::default(), train_1k(), 2).unwrap();
    let (loaded, path) = round_trip(&q, "mlp", test_500());
    assert_eq!(loaded.name(), "LeNet-300-100");
    // a trained model: the test set gets several classes and better than chance
    let p = loaded.predict(test_500()).unwrap();
    assert!((0..10).filter(|c| p.contains(c)).count() >= 5, "{p:?}");
    assert!(loaded.evaluate(test_500()).unwrap() > 0.5);

    let expected: Vec<(String, Dtype, Vec<usize>)> = [
        ("activations.qparams", Dtype::I32, vec![4, 4]),
        ("activations.scale", Dtype::F32, vec![4]),
        ("fc1.bias", Dtype::I32, vec![300]),
        ("fc1.weight", Dtype::I8, vec![300, 784]),
        ("fc1.weight_qparams", Dtype::I32, vec![300, 4]),
        ("fc1.weight_scale", Dtype::F32, vec![300]),
        ("fc2.bias", Dtype::I32, vec![100]),
        ("fc2.weight", Dtype::I8, vec![100, 300]),
        ("fc2.weight_qparams", Dtype::I32, vec![100, 4]),
        ("fc2.weight_scale", Dtype::F32, vec![100]),
        ("fc3.bias", Dtype::I32, vec![10]),
        ("fc3.weight", Dtype::I8, vec![10, 100]),
        ("fc3.weight_qparams", Dtype::I32, vec![10, 4]),
        ("fc3.weight_scale", Dtype::F32, vec![10]),
    ]
    .into_iter()
    .map(|(n, d, s)| (n.to_string(), d, s))
    .collect();
    assert_eq!(layout(&path), expected);

    let (e, meta) = entries(&path);
    let get = |k: &str| meta.get(k).map(String::as_str).unwrap_or("<missing>");
    assert_eq!((get("format"), get("format_version"), get("kind"), get("model")), ("lepton-quantized-model", "1", "mlp", "LeNet-300-100"));
    assert_eq!((get("kernel"), get("layers")), ("Auto", "3"));
    let layers: Vec<(&str, &str)> = (0..3).map(|i| (get(&format!("layer.{i}.name")), get(&format!("layer.{i}.relu")))).collect();
    assert_eq!(layers, vec![("fc1", "true"), ("fc2", "true"), ("fc3", "false")]);
    assert_eq!((get("calibration.observer"), get("calibration.batches"), get("calibration.samples"), get("calibration.activations")), ("MinMax", "2", "128", "4"));
    assert_eq!((get("calibration.0.activation"), get("calibration.3.activation")), ("input", "fc3.output"));
    // the input scale 1/255 as the bits of an f32, zero point 0, pixels seen in [0, 1]
    assert_eq!((get("calibration.0.scale"), get("calibration.0.zero_point")), ("0x3b808081", "0"));
    assert_eq!((get("calibration.0.observed_min"), get("calibration.0.observed_max")), ("0x00000000", "0x3f800000"));
    // the stored values are the model's: fc1's codes and the first weight row's parameters
    let fc1 = &loaded.mlp().unwrap().layers()[0];
    let codes = &e.iter().find(|t| t.0 == "fc1.weight").unwrap().3;
    assert_eq!(codes.iter().map(|&b| b as i8).collect::<Vec<i8>>(), fc1.weight());
    let row: Vec<u8> = e.iter().find(|t| t.0 == "fc1.weight_qparams").unwrap().3[..16].to_vec();
    let p = fc1.weight_params()[0];
    assert_eq!((p.zero_point, p.qmin, p.qmax, p.bits), (0, -127, 127, 8));
    assert_eq!(row, [0i32, -127, 127, 8].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());

    // loading and saving again gives the same model once more
    let (again, _) = round_trip(&loaded, "mlp-again", test_500());
    assert_eq!(again, q);
}

#[test]
fn an_int8_lenet5_reloads_equal_with_identical_predictions_and_any_kernel() {
    let s = trained(Arch::LeNet5);
    let q = s.quantize_int8(&QuantConfig::default(), train_1k(), 4).unwrap();
    let (loaded, path) = round_trip(&q, "lenet5", test_200());
    assert!(loaded.lenet5().is_some() && loaded.mlp().is_none());
    assert_eq!(loaded.name(), "LeNet-5");
    let p = loaded.predict(test_200()).unwrap();
    assert!((0..10).filter(|c| p.contains(c)).count() >= 5, "{p:?}");

    let shapes: Vec<(String, Dtype, Vec<usize>)> = layout(&path).into_iter().filter(|t| t.0.ends_with(".weight") || t.0.starts_with("activations")).collect();
    let expected: Vec<(String, Dtype, Vec<usize>)> = [
        ("activations.qparams", Dtype::I32, vec![6, 4]),
        ("activations.scale", Dtype::F32, vec![6]),
        ("conv1.weight", Dtype::I8, vec![6, 1, 5, 5]),
        ("conv2.weight", Dtype::I8, vec![16, 6, 5, 5]),
        ("fc1.weight", Dtype::I8, vec![120, 256]),
        ("fc2.weight", Dtype::I8, vec![84, 120]),
        ("fc3.weight", Dtype::I8, vec![10, 84]),
    ]
    .into_iter()
    .map(|(n, d, s)| (n.to_string(), d, s))
    .collect();
    assert_eq!(shapes, expected);
    assert_eq!(layout(&path).len(), 5 * 4 + 2);
    let (_, meta) = entries(&path);
    assert_eq!(meta.get("kind").map(String::as_str), Some("lenet5"));
    assert_eq!(meta.get("calibration.5.activation").map(String::as_str), Some("fc3.output"));
    assert_eq!(meta.get("calibration.batches").map(String::as_str), Some("4"));

    // the kernel choice is kept
    let portable = q.clone().with_kernel(Kernel::Portable).unwrap();
    let (loaded, _) = round_trip(&portable, "lenet5-portable", test_200());
    assert_eq!(loaded.kernel(), Kernel::Portable);
    assert_ne!(loaded, q, "the kernel is part of the model");
}

// ---------------------------------------------------------------------------------------
// Errors

#[test]
fn a_missing_truncated_or_garbage_file_is_a_typed_error() {
    let folder = dir("bad-files");
    let missing = folder.join("nothing-here.safetensors");
    let e = QuantizedModel::load(&missing).unwrap_err();
    assert!(matches!(e, LeptonError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("nothing-here.safetensors"), "{e}");

    let bytes = std::fs::read(&small_mlp().1).unwrap();
    let half = folder.join("half.safetensors");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    let msg = checkpoint_error(&half);
    assert!(msg.contains("not a safetensors file") && msg.contains("truncated"), "{msg}");
    // only the last byte missing
    std::fs::write(&half, &bytes[..bytes.len() - 1]).unwrap();
    assert!(checkpoint_error(&half).contains("not a safetensors file"));

    for (name, content) in [("garbage", &b"this is not a safetensors file, just some text"[..]), ("empty", &b""[..]), ("header", &[200, 0, 0, 0, 0, 0, 0, 0, b'{'][..])] {
        let p = folder.join(format!("{name}.safetensors"));
        std::fs::write(&p, content).unwrap();
        let msg = checkpoint_error(&p);
        assert!(msg.contains("not a safetensors file"), "{name}: {msg}");
    }
}

#[test]
fn a_float_checkpoint_is_not_a_quantized_model() {
    let s = Session::new(Arch::LeNet300, train_1k().clone(), None, quiet()).unwrap();
    let path = dir("float").join("float.safetensors");
    s.save(&path).unwrap();
    let msg = checkpoint_error(&path);
    assert!(msg.contains("not a quantized model") && msg.contains("Session::load"), "{msg}");
}

#[test]
fn a_missing_mistyped_misshapen_or_extra_tensor_is_named() {
    let p = damaged("missing-tensor", |e, _| e.retain(|t| t.0 != "fc2.bias"));
    assert!(checkpoint_error(&p).contains("tensor \"fc2.bias\" is missing"), "{}", checkpoint_error(&p));

    let p = damaged("missing-activations", |e, _| e.retain(|t| t.0 != "activations.scale"));
    assert!(checkpoint_error(&p).contains("tensor \"activations.scale\" is missing"));

    let p = damaged("wrong-dtype", |e, _| entry(e, "fc1.weight").1 = Dtype::U8);
    let msg = checkpoint_error(&p);
    assert!(msg.contains("tensor \"fc1.weight\" has dtype U8, expected I8"), "{msg}");

    let p = damaged("wrong-dtype-scale", |e, _| entry(e, "fc3.weight_scale").1 = Dtype::I32);
    assert!(checkpoint_error(&p).contains("tensor \"fc3.weight_scale\" has dtype I32, expected F32"));

    let p = damaged("wrong-shape", |e, _| entry(e, "fc3.bias").2 = vec![1, 10]);
    let msg = checkpoint_error(&p);
    assert!(msg.contains("tensor \"fc3.bias\" has shape [1, 10], expected [10]"), "{msg}");

    let p = damaged("weight-rank", |e, _| entry(e, "fc2.weight").2 = vec![100, 300, 1]);
    assert!(checkpoint_error(&p).contains("tensor \"fc2.weight\" has shape [100, 300, 1], expected [outputs, inputs]"));

    let p = damaged("extra", |e, _| e.push(("fc4.weight".into(), Dtype::F32, vec![1], vec![0; 4])));
    let msg = checkpoint_error(&p);
    assert!(msg.contains("tensors a quantized model does not: [\"fc4.weight\"]"), "{msg}");
}

#[test]
fn layers_that_do_not_chain_and_bad_parameters_are_errors() {
    // fc2 reads 299 features, fc1 writes 300: every tensor of fc2 is consistent by itself
    let p = damaged("chain", |e, _| {
        let w = entry(e, "fc2.weight");
        w.2 = vec![100, 299];
        w.3 = w.3.chunks(300).flat_map(|row| row[..299].to_vec()).collect();
    });
    let msg = checkpoint_error(&p);
    assert!(msg.contains("fc2.weight") && msg.contains("expected shape [100, 300], found [100, 299]"), "{msg}");

    let p = damaged("negative-scale", |e, _| entry(e, "fc1.weight_scale").3[..4].copy_from_slice(&(-1.0f32).to_le_bytes()));
    let msg = checkpoint_error(&p);
    assert!(msg.contains("layer fc1") && msg.contains("the scale must be finite and > 0"), "{msg}");

    // weight codes must stay within their channel's [qmin, qmax]: shrink row 0's range to ±1
    let p = damaged("code-range", |e, _| {
        let q = &mut entry(e, "fc1.weight_qparams").3;
        q[4..12].copy_from_slice(&[(-1i32).to_le_bytes(), 1i32.to_le_bytes()].concat());
    });
    let msg = checkpoint_error(&p);
    assert!(msg.contains("layer fc1") && msg.contains("outside the channel's codes [-1, 1]"), "{msg}");

    // fc1's output zero point beyond its codes
    let p = damaged("zero-point", |e, _| entry(e, "activations.qparams").3[16..20].copy_from_slice(&300i32.to_le_bytes()));
    let msg = checkpoint_error(&p);
    assert!(msg.contains("activation 1") && msg.contains("zero point 300"), "{msg}");

    // bits that do not fit a u8
    let p = damaged("bits", |e, _| entry(e, "activations.qparams").3[12..16].copy_from_slice(&1000i32.to_le_bytes()));
    assert!(checkpoint_error(&p).contains("bits 1000 is out of range"));
}

#[test]
fn bad_metadata_is_named() {
    let p = damaged("kind", |_, m| {
        m.insert("kind".into(), "resnet".into());
    });
    let msg = checkpoint_error(&p);
    assert!(msg.contains("unknown model kind \"resnet\""), "{msg}");

    let p = damaged("version", |_, m| {
        m.insert("format_version".into(), "2".into());
    });
    assert!(checkpoint_error(&p).contains("format version \"2\" is not supported"));

    let p = damaged("kernel", |_, m| {
        m.insert("kernel".into(), "Neon".into());
    });
    assert!(checkpoint_error(&p).contains("unknown kernel \"Neon\""));

    let p = damaged("no-layer-name", |_, m| {
        m.remove("layer.1.name");
    });
    assert!(checkpoint_error(&p).contains("metadata key \"layer.1.name\" is missing"));

    // more layers than the file has: the first missing one is named, nothing is allocated for
    // the claimed count
    for count in ["4", "18446744073709551615"] {
        let p = damaged("layer-count", |_, m| {
            m.insert("layers".into(), count.into());
        });
        let msg = checkpoint_error(&p);
        assert!(msg.contains("metadata key \"layer.3.name\" is missing"), "{count}: {msg}");
    }
    let p = damaged("layer-count-text", |_, m| {
        m.insert("layers".into(), "three".into());
    });
    assert!(checkpoint_error(&p).contains("metadata \"layers\" = \"three\" is not a count"));

    let p = damaged("relu", |_, m| {
        m.insert("layer.0.relu".into(), "yes".into());
    });
    assert!(checkpoint_error(&p).contains("\"layer.0.relu\" = \"yes\" is not true or false"));

    // floats are stored as their bits: a decimal is refused
    let p = damaged("float", |_, m| {
        m.insert("calibration.0.scale".into(), "0.003921569".into());
    });
    let msg = checkpoint_error(&p);
    assert!(msg.contains("\"calibration.0.scale\" = \"0.003921569\" is not an f32"), "{msg}");

    // a calibration report that does not describe the network
    let p = damaged("calibration-zero-point", |_, m| {
        m.insert("calibration.1.zero_point".into(), "7".into());
    });
    let msg = checkpoint_error(&p);
    assert!(msg.contains("fc1.output") && msg.contains("differ from the network"), "{msg}");
    let p = damaged("calibration-rows", |_, m| {
        m.insert("calibration.activations".into(), "3".into());
    });
    assert!(checkpoint_error(&p).contains("calibration report"));

    // no metadata at all
    let p = damaged("no-metadata", |_, m| m.clear());
    assert!(checkpoint_error(&p).contains("not a quantized model"));
}

#[test]
fn the_small_model_round_trips_and_a_damaged_copy_does_not_touch_the_original() {
    let (q, path) = small_mlp();
    let before = std::fs::read(path).unwrap();
    let _ = damaged("untouched", |e, _| e.clear());
    assert_eq!(std::fs::read(path).unwrap(), before);
    assert_eq!(QuantizedModel::load(path).unwrap(), *q);
}

#[test]
fn a_lenet5_file_with_the_wrong_geometry_or_kind_is_an_error() {
    let (q, src) = small_lenet5();
    assert_eq!(QuantizedModel::load(src).unwrap(), *q);

    // the same 150 codes as 25 input channels of 1×1 filters: conv1 must read one channel
    let p = damaged_copy(src, "lenet5-channels", |e, _| entry(e, "conv1.weight").2 = vec![6, 25, 1, 1]);
    let msg = checkpoint_error(&p);
    assert!(msg.contains("quantized LeNet-5: tensor \"conv1.weight\" expected shape [6, 1, 1, 1], found [6, 25, 1, 1]"), "{msg}");

    // filters that are not square
    let p = damaged_copy(src, "lenet5-square", |e, _| entry(e, "conv2.weight").2 = vec![16, 6, 1, 25]);
    let msg = checkpoint_error(&p);
    assert!(msg.contains("tensor \"conv2.weight\" has shape [16, 6, 1, 25], expected [outputs, channels, k, k]"), "{msg}");

    // fc1 must read conv2's 16·4·4 pooled features
    let p = damaged_copy(src, "lenet5-fc1", |e, _| {
        let w = entry(e, "fc1.weight");
        w.2 = vec![120, 255];
        w.3 = w.3.chunks(256).flat_map(|row| row[..255].to_vec()).collect();
    });
    let msg = checkpoint_error(&p);
    assert!(msg.contains("tensor \"fc1.weight\" expected shape [120, 256], found [120, 255]"), "{msg}");

    // read as an MLP, conv1's weight has the wrong rank
    let p = damaged_copy(src, "lenet5-as-mlp", |_, m| {
        m.insert("kind".into(), "mlp".into());
    });
    assert!(checkpoint_error(&p).contains("tensor \"conv1.weight\" has shape [6, 1, 5, 5], expected [outputs, inputs]"));

    // renamed layers
    let p = damaged_copy(src, "lenet5-names", |_, m| {
        m.insert("layer.2.name".into(), "dense1".into());
    });
    assert!(checkpoint_error(&p).contains("LeNet-5 layer 2 is named \"dense1\", expected \"fc1\""));

    // an MLP file that claims to be a LeNet-5
    let p = damaged("mlp-as-lenet5", |_, m| {
        m.insert("kind".into(), "lenet5".into());
    });
    assert!(checkpoint_error(&p).contains("a LeNet-5 has 5 layers, metadata \"layers\" = 3"));
}
