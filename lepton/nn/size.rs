//! Parameter count and bytes per tensor: one visitor over any model's tensors.

use dfdx::nn::{RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorName, ViewTensorRef};
use dfdx::prelude::{Dtype, HasShape, Shape, Tensor};
use dfdx::tensor_ops::Device;

use crate::report::{SizeReport, TensorSize};

struct SizeVisitor {
    tensors: Vec<TensorSize>,
}

impl<E: Dtype, D: Device<E>> TensorVisitor<E, D> for SizeVisitor {
    type Viewer = (ViewTensorRef, ViewTensorName);
    type Err = std::convert::Infallible;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        _opts: TensorOptions<S, E, D>,
        (t, path): (&Tensor<S, E, D>, String),
    ) -> Result<Option<Tensor<S, E, D>>, Self::Err> {
        let shape: Vec<usize> = t.shape().concrete().into_iter().collect();
        let params: usize = shape.iter().product();
        let bytes: usize = params * std::mem::size_of::<E>();
        self.tensors.push(TensorSize { path, shape, params, bytes });
        Ok(None)
    }
}

/// Per-tensor parameter count and dense bytes of `model`, in the model's tensor order.
pub fn size_report<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(name: &str, model: &M) -> SizeReport {
    let mut v = SizeVisitor { tensors: Vec::new() };
    // the visitor cannot fail (its error type is uninhabited)
    let _ = M::iter_tensors(&mut RecursiveWalker { m: (model, String::new()), f: &mut v });
    SizeReport { model: name.to_string(), tensors: v.tensors }
}
