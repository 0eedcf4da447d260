//! Closures over every tensor of a model, by path: one place for dfdx's visitor plumbing
//! (`TensorVisitor` + `RecursiveWalker`), which every model-wide operation needs.
//!
//! The values are handed out row-major in a buffer the caller can reuse: parameters have the
//! standard strides, so each copy is one `memcpy`.

use dfdx::nn::{RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorName, ViewTensorRef};
use dfdx::prelude::{Cpu, Gradients, HasShape, Shape, Tensor};

use crate::error::{LeptonError, Result};

/// Calls `f(path, shape, values)` for every tensor of `model`, in the model's order, the values
/// copied into `scratch` (kept by the caller, so repeated calls allocate nothing). Stops at the
/// first error of `f`.
pub(crate) fn for_each_tensor<M, F>(model: &M, scratch: &mut Vec<f32>, f: F) -> Result<()>
where
    M: TensorCollection<f32, Cpu>,
    F: FnMut(&str, &[usize], &[f32]) -> Result<()>,
{
    struct Read<'s, F> {
        f: F,
        buf: &'s mut Vec<f32>,
    }
    impl<F: FnMut(&str, &[usize], &[f32]) -> Result<()>> TensorVisitor<f32, Cpu> for Read<'_, F> {
        type Viewer = (ViewTensorRef, ViewTensorName);
        type Err = LeptonError;
        type E2 = f32;
        type D2 = Cpu;
        fn visit<S: Shape>(
            &mut self,
            _opts: TensorOptions<S, f32, Cpu>,
            (t, path): (&Tensor<S, f32, Cpu>, String),
        ) -> std::result::Result<Option<Tensor<S, f32, Cpu>>, Self::Err> {
            let shape: Vec<usize> = t.shape().concrete().into_iter().collect();
            self.buf.resize(t.shape().num_elements(), 0.0);
            t.copy_into(self.buf);
            (self.f)(&path, &shape, self.buf)?;
            Ok(None)
        }
    }
    M::iter_tensors(&mut RecursiveWalker { m: (model, String::new()), f: &mut Read { f, buf: scratch } })?;
    Ok(())
}

/// Copies every tensor into a buffer, lets `f(path, shape, values)` change it, and writes it
/// back when `f` returns `true`. Writing keeps the tensor's id, so gradients computed through
/// a rewritten clone of a model belong to the original's parameters. An error may leave
/// earlier tensors rewritten; callers that need atomicity work on a clone.
pub(crate) fn rewrite_tensors<M, F>(model: &mut M, f: F) -> Result<()>
where
    M: TensorCollection<f32, Cpu>,
    F: FnMut(&str, &[usize], &mut [f32]) -> Result<bool>,
{
    struct Rewrite<F> {
        f: F,
        buf: Vec<f32>,
    }
    impl<F: FnMut(&str, &[usize], &mut [f32]) -> Result<bool>> TensorVisitor<f32, Cpu> for Rewrite<F> {
        type Viewer = (ViewTensorMut, ViewTensorName);
        type Err = LeptonError;
        type E2 = f32;
        type D2 = Cpu;
        fn visit<S: Shape>(
            &mut self,
            _opts: TensorOptions<S, f32, Cpu>,
            (t, path): (&mut Tensor<S, f32, Cpu>, String),
        ) -> std::result::Result<Option<Tensor<S, f32, Cpu>>, Self::Err> {
            let shape: Vec<usize> = t.shape().concrete().into_iter().collect();
            self.buf.resize(t.shape().num_elements(), 0.0);
            t.copy_into(&mut self.buf);
            if (self.f)(&path, &shape, &mut self.buf)? {
                t.copy_from(&self.buf);
            }
            Ok(None)
        }
    }
    M::iter_tensors(&mut RecursiveWalker { m: (model, String::new()), f: &mut Rewrite { f, buf: Vec::new() } })?;
    Ok(())
}

/// Calls `f(path, values, gradient)` for every tensor of `model` with its gradient in `grads`
/// (allocated as zeros when the tensor has none), the gradient mutable.
pub(crate) fn with_gradients<M, F>(model: &M, grads: &mut Gradients<f32, Cpu>, f: F) -> Result<()>
where
    M: TensorCollection<f32, Cpu>,
    F: FnMut(&str, &[f32], &mut [f32]) -> Result<()>,
{
    struct WithGrads<'g, F> {
        grads: &'g mut Gradients<f32, Cpu>,
        f: F,
        buf: Vec<f32>,
    }
    impl<F: FnMut(&str, &[f32], &mut [f32]) -> Result<()>> TensorVisitor<f32, Cpu> for WithGrads<'_, F> {
        type Viewer = (ViewTensorRef, ViewTensorName);
        type Err = LeptonError;
        type E2 = f32;
        type D2 = Cpu;
        fn visit<S: Shape>(
            &mut self,
            _opts: TensorOptions<S, f32, Cpu>,
            (t, path): (&Tensor<S, f32, Cpu>, String),
        ) -> std::result::Result<Option<Tensor<S, f32, Cpu>>, Self::Err> {
            self.buf.resize(t.shape().num_elements(), 0.0);
            t.copy_into(&mut self.buf);
            let g = self.grads.get_or_alloc_mut(t).map_err(|e| LeptonError::device("gradient of a weight", e))?;
            if g.len() != self.buf.len() {
                return Err(LeptonError::Shape { op: "gradient", path, expected: vec![self.buf.len()], found: vec![g.len()] });
            }
            (self.f)(&path, &self.buf, g.as_mut_slice())?;
            Ok(None)
        }
    }
    M::iter_tensors(&mut RecursiveWalker { m: (model, String::new()), f: &mut WithGrads { grads, f, buf: Vec::new() } })?;
    Ok(())
}
