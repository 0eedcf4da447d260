//! Checkpoints as safetensors files whose tensor names are the model's tensor paths
//! (`fc1.weight`, `conv1.bias`, ...), so Python's `safetensors` reads them as they are.
//!
//! Writing is atomic (a temporary file in the same folder, then a rename): an interrupted save
//! never leaves a half-written checkpoint under the real name. Loading checks every name, dtype
//! and shape, and changes the model only when the whole file fits it.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use dfdx::nn::TensorCollection;
use dfdx::prelude::Cpu;
use safetensors::tensor::{Dtype as SDtype, SafeTensors, TensorView};

use crate::error::{LeptonError, Result};

/// Serialises `model` to safetensors bytes, with `metadata` in the header.
pub fn to_safetensors_bytes<M: TensorCollection<f32, Cpu>>(model: &M, metadata: &[(&str, &str)]) -> Result<Vec<u8>> {
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = tensors_of(model)
        .into_iter()
        .map(|(name, shape, values)| (name, shape, values.iter().flat_map(|v| v.to_le_bytes()).collect()))
        .collect();
    let mut views = Vec::with_capacity(tensors.len());
    for (name, shape, bytes) in &tensors {
        let view = TensorView::new(SDtype::F32, shape.clone(), bytes)
            .map_err(|e| LeptonError::Checkpoint { path: name.into(), reason: format!("{e:?}") })?;
        views.push((name.clone(), view));
    }
    let meta: HashMap<String, String> = metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    safetensors::tensor::serialize(views, &Some(meta))
        .map_err(|e| LeptonError::Checkpoint { path: "<memory>".into(), reason: format!("{e:?}") })
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, flushed, then renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| LeptonError::io("create folder", dir, e))?;
    }
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // process id + a per-process counter: two saves to one path (threads, or a notebook cell
    // run twice at once) never share a temporary file
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}-{n}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(LeptonError::io("write", path, e));
    }
    Ok(())
}

/// Saves `model` to `path` as safetensors (atomically). `metadata` goes into the header,
/// e.g. `[("arch", "LeNet-5")]`.
pub fn save_safetensors<M: TensorCollection<f32, Cpu>>(model: &M, path: impl AsRef<Path>, metadata: &[(&str, &str)]) -> Result<()> {
    let bytes = to_safetensors_bytes(model, metadata)?;
    write_atomic(path.as_ref(), &bytes)
}

/// Loads weights saved by [`save_safetensors`] (or any safetensors file with the same names,
/// dtypes and shapes) into `model`. On any error the model is left unchanged.
pub fn load_safetensors<M: TensorCollection<f32, Cpu> + Clone>(model: &mut M, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| LeptonError::io("read", path, e))?;
    let err = |reason: String| LeptonError::Checkpoint { path: path.to_path_buf(), reason };
    let file = SafeTensors::deserialize(&bytes).map_err(|e| err(format!("not a safetensors file: {e:?}")))?;
    let mut candidate = model.clone();
    let mut seen = BTreeSet::new();
    super::visit::rewrite_tensors(&mut candidate, |name, expected, buf| {
        let view = file.tensor(name).map_err(|_| err(format!("tensor {name:?} is missing")))?;
        if view.dtype() != SDtype::F32 {
            return Err(err(format!("tensor {name:?} has dtype {:?}, expected F32", view.dtype())));
        }
        if view.shape() != expected {
            return Err(err(format!("tensor {name:?} has shape {:?}, expected {:?}", view.shape(), expected)));
        }
        let values = view.data().chunks_exact(4);
        if values.len() != buf.len() {
            return Err(err(format!("tensor {name:?} holds {} values, expected {}", values.len(), buf.len())));
        }
        for (v, c) in buf.iter_mut().zip(values) {
            *v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        seen.insert(name.to_string());
        Ok(true)
    })?;
    let extra: Vec<String> = file.names().into_iter().filter(|n| !seen.contains(*n)).cloned().collect();
    if !extra.is_empty() {
        return Err(err(format!("file has tensors the model does not: {extra:?}")));
    }
    *model = candidate;
    Ok(())
}

/// Every tensor of `model` as (path, shape, values), in the model's order.
pub fn tensors_of<M: TensorCollection<f32, Cpu>>(model: &M) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut out = Vec::new();
    // the closure never fails, so neither does the walk
    let _ = super::visit::for_each_tensor(model, &mut Vec::new(), |path, shape, values| {
        out.push((path.to_string(), shape.to_vec(), values.to_vec()));
        Ok(())
    });
    out
}
