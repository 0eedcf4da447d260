//! Bytes of quantized models, with everything a reader needs to decode them.
//!
//! - Codes and k-means indices are bit-packed: `ceil(n·b / 8)` bytes for `n` values of `b` bits.
//! - Every parameter set stores an f32 scale (4 bytes); an asymmetric one also stores its zero
//!   point (1 byte: codes have at most 8 bits); a symmetric one has `Z = 0` by construction
//!   and stores none.
//! - A k-means codebook stores `2^b` f32 values (4 bytes each), the zero entry included.
//! - Float tensors cost 4 bytes per value.

use super::affine::QuantizedTensor;
use super::kmeans::SharedWeights;

/// Bytes of one stored tensor (or activation quantizer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBytes {
    /// Tensor path (`fc1.weight`), or an activation's name.
    pub path: String,
    /// Number of values.
    pub params: usize,
    /// Bits per stored value (32 for f32 / i32).
    pub bits: usize,
    /// The same values as dense f32: `4·params`.
    pub float_bytes: usize,
    /// Codes or indices, bit-packed.
    pub data_bytes: usize,
    /// Scales.
    pub scale_bytes: usize,
    /// Zero points.
    pub zero_point_bytes: usize,
    /// Codebook entries.
    pub codebook_bytes: usize,
}

fn packed(n: usize, bits: usize) -> usize {
    (n * bits).div_ceil(8)
}

impl LayerBytes {
    /// A tensor kept as f32 (or i32, e.g. a quantized bias): 4 bytes per value.
    pub fn float(path: impl Into<String>, params: usize) -> LayerBytes {
        LayerBytes { path: path.into(), params, bits: 32, float_bytes: 4 * params, data_bytes: 4 * params, scale_bytes: 0, zero_point_bytes: 0, codebook_bytes: 0 }
    }

    /// An affine-quantized tensor: packed codes, one scale per parameter set, zero points if
    /// asymmetric.
    pub fn affine(path: impl Into<String>, t: &QuantizedTensor) -> LayerBytes {
        let bits = t.scheme.bits as usize;
        let sets = t.params.len();
        let zp = if t.scheme.symmetric { 0 } else { sets };
        LayerBytes { path: path.into(), params: t.len(), bits, float_bytes: 4 * t.len(), data_bytes: packed(t.len(), bits), scale_bytes: 4 * sets, zero_point_bytes: zp, codebook_bytes: 0 }
    }

    /// A tensor of `params` values quantized with `bits` bits and `sets` parameter sets.
    pub fn quantized(path: impl Into<String>, params: usize, bits: u8, sets: usize, symmetric: bool) -> LayerBytes {
        let bits = bits as usize;
        let zp = if symmetric { 0 } else { sets };
        LayerBytes { path: path.into(), params, bits, float_bytes: 4 * params, data_bytes: packed(params, bits), scale_bytes: 4 * sets, zero_point_bytes: zp, codebook_bytes: 0 }
    }

    /// A k-means shared tensor: `n·b` index bits (rounded up to bytes) and the codebook.
    pub fn kmeans(path: impl Into<String>, w: &SharedWeights) -> LayerBytes {
        let bits = w.bits as usize;
        LayerBytes { path: path.into(), params: w.len(), bits, float_bytes: 4 * w.len(), data_bytes: packed(w.len(), bits), scale_bytes: 0, zero_point_bytes: 0, codebook_bytes: 4 * w.centroids.len() }
    }

    /// All bytes stored.
    pub fn total(&self) -> usize {
        self.data_bytes + self.scale_bytes + self.zero_point_bytes + self.codebook_bytes
    }

    /// `float_bytes / total` (0 when nothing is stored).
    pub fn ratio(&self) -> f64 {
        if self.total() == 0 { 0.0 } else { self.float_bytes as f64 / self.total() as f64 }
    }
}

/// Bytes of a whole model, one row per tensor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuantSize {
    /// One row per stored tensor, in model order.
    pub layers: Vec<LayerBytes>,
}

impl QuantSize {
    /// All bytes stored.
    pub fn total(&self) -> usize {
        self.layers.iter().map(LayerBytes::total).sum()
    }

    /// The same tensors as dense f32.
    pub fn float_total(&self) -> usize {
        self.layers.iter().map(|l| l.float_bytes).sum()
    }

    /// Compression ratio `float_total / total` (0 when nothing is stored).
    pub fn ratio(&self) -> f64 {
        if self.total() == 0 { 0.0 } else { self.float_total() as f64 / self.total() as f64 }
    }

    /// The row of `path`, if any.
    pub fn get(&self, path: &str) -> Option<&LayerBytes> {
        self.layers.iter().find(|l| l.path == path)
    }
}
