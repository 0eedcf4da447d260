//! Sparse storage and inference: CSR matrices, their size with index overhead (CSR and
//! Deep-Compression relative indices), and a CSR × dense inference path for MLPs.

use rayon::prelude::*;

use super::mask::TensorValues;
use crate::error::{LeptonError, Result};

/// Bytes of one tensor stored three ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparseBytes {
    /// Dense f32: 4 bytes per element.
    pub dense: usize,
    /// CSR of the tensor seen as a matrix (rows = first dimension): f32 values, u16 column
    /// indices when the row length fits (else u32), u32 row pointers.
    pub csr: usize,
    /// Deep Compression (Han et al. 2016): the flattened non-zeros with `index_bits`-bit gaps to
    /// the previous one and `value_bits`-bit values; a gap too large for the index field costs a
    /// filler zero entry.
    pub relative: usize,
    /// Filler entries the relative encoding needed.
    pub fillers: usize,
}

/// Size of a tensor in the three storage formats, with `value_bits` per stored value (32 for
/// f32; less after quantization) and `index_bits` per relative index (Han et al.: 8 for conv,
/// 5 for fully connected layers).
pub fn sparse_bytes(shape: &[usize], values: &[f32], value_bits: usize, index_bits: usize) -> SparseBytes {
    let n = values.len();
    let rows = shape.first().copied().unwrap_or(1).max(1);
    let cols = n / rows;
    let nnz = values.iter().filter(|v| **v != 0.0).count();
    let col_bytes = if cols <= u16::MAX as usize + 1 { 2 } else { 4 };
    let csr = nnz * (4 + col_bytes) + (rows + 1) * 4;
    // relative indices: gap to the previous non-zero (the first from position -1)
    let max_gap = (1usize << index_bits.clamp(1, 32)) - 1;
    let (mut last, mut fillers) = (None::<usize>, 0usize);
    for (i, v) in values.iter().enumerate() {
        if *v != 0.0 {
            let gap = match last {
                Some(l) => i - l,
                None => i + 1,
            };
            fillers += (gap - 1) / max_gap;
            last = Some(i);
        }
    }
    let bits = (nnz + fillers) * (value_bits + index_bits);
    SparseBytes { dense: n * 4, csr, relative: bits.div_ceil(8), fillers }
}

/// A matrix in compressed sparse row form.
#[derive(Debug, Clone, PartialEq)]
pub struct CsrMatrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Row `r` holds entries `indptr[r]..indptr[r + 1]`.
    pub indptr: Vec<u32>,
    /// Column of each entry.
    pub indices: Vec<u32>,
    /// Value of each entry.
    pub values: Vec<f32>,
}

impl CsrMatrix {
    /// The non-zeros of a row-major `rows × cols` matrix.
    pub fn from_dense(rows: usize, cols: usize, dense: &[f32]) -> Result<CsrMatrix> {
        if rows * cols != dense.len() || rows == 0 || cols == 0 {
            return Err(LeptonError::Shape { op: "CSR", path: "matrix".into(), expected: vec![rows, cols], found: vec![dense.len()] });
        }
        if dense.len() > u32::MAX as usize {
            return Err(LeptonError::config("matrix size", dense.len(), "CSR indices are u32"));
        }
        let mut indptr = Vec::with_capacity(rows + 1);
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        indptr.push(0);
        for row in dense.chunks_exact(cols) {
            for (c, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    indices.push(c as u32);
                    values.push(v);
                }
            }
            indptr.push(values.len() as u32);
        }
        Ok(CsrMatrix { rows, cols, indptr, indices, values })
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// `y = x · Aᵀ` for a row-major batch `x` of shape `(batch, cols)`; `y` is `(batch, rows)`.
    /// For one or a few samples each output is a gathered dot product; for larger batches the
    /// batch is transposed once so that every stored entry updates a contiguous run of `batch`
    /// outputs. Rows are split across threads; each output is summed in one fixed order, so the
    /// result does not depend on the thread count.
    pub fn matmul_t(&self, x: &[f32], batch: usize) -> Result<Vec<f32>> {
        if x.len() != batch * self.cols {
            return Err(LeptonError::Shape { op: "CSR matmul", path: "input".into(), expected: vec![batch, self.cols], found: vec![x.len()] });
        }
        let mut y = vec![0.0f32; batch * self.rows];
        if batch < 8 {
            for (xb, yb) in x.chunks_exact(self.cols).zip(y.chunks_exact_mut(self.rows)) {
                for (r, out) in yb.iter_mut().enumerate() {
                    let (a, b) = (self.indptr[r] as usize, self.indptr[r + 1] as usize);
                    let mut acc = 0.0f32;
                    for (&c, &v) in self.indices[a..b].iter().zip(&self.values[a..b]) {
                        acc += v * xb[c as usize];
                    }
                    *out = acc;
                }
            }
            return Ok(y);
        }
        // xt: (cols, batch)
        let mut xt = vec![0.0f32; x.len()];
        for (b, row) in x.chunks_exact(self.cols).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                xt[c * batch + b] = v;
            }
        }
        // yt: (rows, batch), rows in parallel
        let mut yt = vec![0.0f32; batch * self.rows];
        yt.par_chunks_mut(batch).enumerate().for_each(|(r, out)| {
            let (a, b) = (self.indptr[r] as usize, self.indptr[r + 1] as usize);
            for (&c, &v) in self.indices[a..b].iter().zip(&self.values[a..b]) {
                let src = &xt[c as usize * batch..(c as usize + 1) * batch];
                for (o, s) in out.iter_mut().zip(src) {
                    *o += v * s;
                }
            }
        });
        for (r, row) in yt.chunks_exact(batch).enumerate() {
            for (b, &v) in row.iter().enumerate() {
                y[b * self.rows + r] = v;
            }
        }
        Ok(y)
    }
}

/// An MLP (Linear layers with ReLU between them) whose weights are CSR matrices: the sparse
/// inference path of a pruned LeNet-300-100 or any [`crate::nn::Mlp`].
#[derive(Debug, Clone, PartialEq)]
pub struct SparseMlp {
    /// (weight, bias) per layer, input to output.
    pub layers: Vec<(CsrMatrix, Vec<f32>)>,
}

impl SparseMlp {
    /// From a model's tensors: every `<name>.weight` of shape `(out, in)` followed by its
    /// `<name>.bias`, in the model's order (as [`crate::train::Session::tensors`] lists them).
    pub fn from_tensors(tensors: &[TensorValues]) -> Result<SparseMlp> {
        let mut layers = Vec::new();
        let mut it = tensors.iter();
        while let Some((wp, ws, wv)) = it.next() {
            let Some((bp, bs, bv)) = it.next() else {
                return Err(LeptonError::config("tensors", wp, "a weight without a bias"));
            };
            if ws.len() != 2 || bs.len() != 1 || bs[0] != ws[0] || !wp.ends_with(".weight") || !bp.ends_with(".bias") {
                return Err(LeptonError::Shape { op: "sparse MLP", path: format!("{wp} / {bp}"), expected: ws.clone(), found: bs.clone() });
            }
            if let Some((prev, _)) = layers.last() {
                let prev: &CsrMatrix = prev;
                if prev.rows != ws[1] {
                    return Err(LeptonError::Shape { op: "sparse MLP", path: wp.clone(), expected: vec![ws[0], prev.rows], found: ws.clone() });
                }
            }
            layers.push((CsrMatrix::from_dense(ws[0], ws[1], wv)?, bv.clone()));
        }
        if layers.is_empty() {
            return Err(LeptonError::config("tensors", "[]", "no layers"));
        }
        Ok(SparseMlp { layers })
    }

    /// Input features.
    pub fn inputs(&self) -> usize {
        self.layers.first().map(|(w, _)| w.cols).unwrap_or(0)
    }

    /// Output logits per sample.
    pub fn outputs(&self) -> usize {
        self.layers.last().map(|(w, _)| w.rows).unwrap_or(0)
    }

    /// Logits `(batch, outputs)` for a row-major batch `(batch, inputs)`.
    pub fn forward(&self, x: &[f32], batch: usize) -> Result<Vec<f32>> {
        let mut h = x.to_vec();
        let last = self.layers.len().saturating_sub(1);
        for (i, (w, b)) in self.layers.iter().enumerate() {
            h = w.matmul_t(&h, batch)?;
            for row in h.chunks_exact_mut(w.rows) {
                for (v, bias) in row.iter_mut().zip(b) {
                    *v += bias;
                    if i < last && *v < 0.0 {
                        *v = 0.0;
                    }
                }
            }
        }
        Ok(h)
    }
}
