//! Structured pruning that physically removes hidden neurons (Linear layers) and output
//! channels (conv layers), adjusts the next layer's inputs, and returns a smaller *typed*
//! network holding the kept weights.
//!
//! The user names the new widths as types:
//!
//! ```no_run
//! use lepton::nn::{LeNet300, Mlp};
//! use lepton::prune::{Norm, Shrink};
//! # fn f(big: &LeNet300) -> lepton::Result<()> {
//! let small: Mlp<784, 100, 50, 10> = big.shrink(Norm::L1)?;
//! # Ok(()) }
//! ```
//!
//! Units are ranked by the L1 or L2 norm of their incoming weights (Li et al. 2017 rank conv
//! filters by L1 norm); the kept units stay in their original order. A unit of one layer spans
//! `group` input columns of the next: 1 for Linear → Linear, K·K for conv → conv, and the H·W
//! positions of a channel for conv → flatten → Linear.

use std::collections::BTreeMap;

use dfdx::prelude::Cpu;

use super::mask::TensorValues;
use crate::error::{LeptonError, Result};
use crate::nn::checkpoint::tensors_of;
use crate::nn::visit::rewrite_tensors;
use crate::nn::{Classifier, LeNet5Net, Mlp};

/// How units are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Norm {
    /// Sum of absolute weights.
    L1,
    /// Euclidean norm.
    L2,
}

/// One layer of a chain: its name (`fc1` → `fc1.weight`, `fc1.bias`) and how many input
/// columns each unit of the previous layer spans.
#[derive(Debug, Clone)]
pub struct ChainLayer {
    /// Layer name.
    pub name: String,
    /// Input columns per unit of the previous layer.
    pub group: usize,
}

/// Indices of the `keep` units with the largest norms of their rows in `w` (`units` rows of
/// `row_len`), ascending; ties keep the earlier unit.
pub fn rank_units(w: &[f32], units: usize, keep: usize, norm: Norm) -> Vec<usize> {
    let row_len = w.len() / units.max(1);
    let score = |u: usize| -> f64 {
        let row = &w[u * row_len..(u + 1) * row_len];
        match norm {
            Norm::L1 => row.iter().map(|v| v.abs() as f64).sum(),
            Norm::L2 => row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt(),
        }
    };
    let mut order: Vec<(f64, usize)> = (0..units).map(|u| (score(u), u)).collect();
    order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut kept: Vec<usize> = order.into_iter().take(keep).map(|(_, u)| u).collect();
    kept.sort_unstable();
    kept
}

/// Shrinks a chain of layers to `widths` output units each (one width per layer but the last,
/// whose outputs are the classes). Returns the new tensors, same paths, in the same order.
pub fn shrink_chain(tensors: &[TensorValues], chain: &[ChainLayer], widths: &[usize], norm: Norm) -> Result<Vec<TensorValues>> {
    if widths.len() + 1 != chain.len() {
        return Err(LeptonError::config("widths", format!("{widths:?}"), format!("need one width per hidden layer ({})", chain.len().saturating_sub(1))));
    }
    let mut map: BTreeMap<String, (Vec<usize>, Vec<f32>)> =
        tensors.iter().map(|(p, s, v)| (p.clone(), (s.clone(), v.clone()))).collect();
    let get = |map: &BTreeMap<String, (Vec<usize>, Vec<f32>)>, p: &str| -> Result<(Vec<usize>, Vec<f32>)> {
        map.get(p).cloned().ok_or_else(|| LeptonError::config("tensor path", p, "no such tensor in the model"))
    };
    let mut prev_kept: Option<(Vec<usize>, usize)> = None; // kept units of the previous layer, its unit count
    for (i, layer) in chain.iter().enumerate() {
        let (wp, bp) = (format!("{}.weight", layer.name), format!("{}.bias", layer.name));
        let (mut ws, mut wv) = get(&map, &wp)?;
        let (bs, mut bv) = get(&map, &bp)?;
        let units = ws[0];
        let row_len: usize = ws[1..].iter().product();
        // 1. drop the input columns of the previous layer's removed units
        if let Some((kept, prev_units)) = &prev_kept {
            let g = layer.group;
            if prev_units * g != row_len || ws.len() < 2 {
                return Err(LeptonError::Shape { op: "structured pruning", path: wp.clone(), expected: vec![units, prev_units * g], found: ws.clone() });
            }
            let new_len = kept.len() * g;
            let mut nw = Vec::with_capacity(units * new_len);
            for row in wv.chunks_exact(row_len) {
                for &u in kept {
                    nw.extend_from_slice(&row[u * g..(u + 1) * g]);
                }
            }
            wv = nw;
            // the kept units' columns: dims after the first shrink in proportion
            ws[1] = ws[1] / prev_units * kept.len();
        }
        // 2. keep the strongest output units (all of them for the last layer)
        if let Some(&width) = widths.get(i) {
            if width == 0 || width > units {
                return Err(LeptonError::config("width", width, format!("layer {} has {units} units: a new width must be in 1..={units}", layer.name)));
            }
            let row_len: usize = ws[1..].iter().product();
            let kept = rank_units(&wv, units, width, norm);
            let mut nw = Vec::with_capacity(width * row_len);
            for &u in &kept {
                nw.extend_from_slice(&wv[u * row_len..(u + 1) * row_len]);
            }
            wv = nw;
            bv = kept.iter().map(|&u| bv[u]).collect();
            ws[0] = width;
            prev_kept = Some((kept, units));
        }
        let bshape = vec![ws[0]];
        if bs.len() != 1 {
            return Err(LeptonError::Shape { op: "structured pruning", path: bp, expected: vec![units], found: bs });
        }
        map.insert(wp, (ws, wv));
        map.insert(bp, (bshape, bv));
    }
    Ok(tensors
        .iter()
        .map(|(p, _, _)| {
            let (s, v) = map.get(p).cloned().unwrap_or_default();
            (p.clone(), s, v)
        })
        .collect())
}

/// A model of type `M` holding `tensors` (matched by path; every tensor of `M` must be given,
/// with its exact shape). Builds `M` first, so its weights come from a fixed seed and are then
/// overwritten.
pub fn model_from_tensors<M: Classifier>(tensors: &[TensorValues]) -> Result<M> {
    let by_path: BTreeMap<&str, (&[usize], &[f32])> =
        tensors.iter().map(|(p, s, v)| (p.as_str(), (s.as_slice(), v.as_slice()))).collect();
    let dev: Cpu = dfdx::tensor::Cpu::default();
    let mut model = M::build(&dev)?;
    rewrite_tensors(&mut model, |path, expected, buf| {
        let Some(&(shape, values)) = by_path.get(path) else {
            return Err(LeptonError::config("tensor path", path, "missing from the given tensors"));
        };
        if shape != expected || values.len() != buf.len() {
            return Err(LeptonError::Shape { op: "load tensors", path: path.to_string(), expected: expected.to_vec(), found: shape.to_vec() });
        }
        buf.copy_from_slice(values);
        Ok(true)
    })?;
    Ok(model)
}

/// Structured pruning into the smaller typed network `Target`.
pub trait Shrink<Target> {
    /// Removes the weakest units (by `norm`) until the widths are those of `Target`, copying the
    /// kept weights. Errors if a new width is 0 or larger than the current one.
    fn shrink(&self, norm: Norm) -> Result<Target>;
}

fn chain(layers: &[(&str, usize)]) -> Vec<ChainLayer> {
    layers.iter().map(|(n, g)| ChainLayer { name: n.to_string(), group: *g }).collect()
}

impl<const IN: usize, const H1: usize, const H2: usize, const OUT: usize, const N1: usize, const N2: usize>
    Shrink<Mlp<IN, N1, N2, OUT, f32, Cpu>> for Mlp<IN, H1, H2, OUT, f32, Cpu>
{
    fn shrink(&self, norm: Norm) -> Result<Mlp<IN, N1, N2, OUT, f32, Cpu>> {
        let t = shrink_chain(&tensors_of(self), &chain(&[("fc1", 1), ("fc2", 1), ("fc3", 1)]), &[N1, N2], norm)?;
        model_from_tensors(&t)
    }
}

impl<
        const C1: usize,
        const C2: usize,
        const FLAT: usize,
        const F1: usize,
        const F2: usize,
        const OUT: usize,
        const N1: usize,
        const N2: usize,
        const NFLAT: usize,
        const NF1: usize,
        const NF2: usize,
    > Shrink<LeNet5Net<N1, N2, NFLAT, NF1, NF2, OUT, f32, Cpu>> for LeNet5Net<C1, C2, FLAT, F1, F2, OUT, f32, Cpu>
{
    fn shrink(&self, norm: Norm) -> Result<LeNet5Net<N1, N2, NFLAT, NF1, NF2, OUT, f32, Cpu>> {
        // features per conv2 channel in the flatten: 4·4, or 5·5 for a padded input
        let spatial = if crate::nn::models::lenet5_padded::<C2, FLAT>() { 25 } else { 16 };
        if NFLAT != N2 * spatial {
            let side = if spatial == 25 { "5 · 5" } else { "4 · 4" };
            return Err(LeptonError::config("FLAT", NFLAT, format!("must equal C2 · {side} = {} (the source's geometry)", N2 * spatial)));
        }
        let layers = chain(&[("conv1", 1), ("conv2", 25), ("fc1", spatial), ("fc2", 1), ("fc3", 1)]);
        let t = shrink_chain(&tensors_of(self), &layers, &[N1, N2, NF1, NF2], norm)?;
        model_from_tensors(&t)
    }
}
