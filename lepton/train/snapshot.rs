//! The weights before an optimiser step, kept in buffers that are reused from step to step.
//!
//! A training session needs the previous weights every step: to restore them when a step makes
//! the loss or a weight non-finite, and to scale the step per parameter group. Cloning the model
//! is cheap by itself (dfdx shares the buffers), but the optimiser's next write then has to copy
//! every shared buffer into a fresh allocation: for LeNet-300-100 a megabyte allocated, zeroed by
//! page faults and copied at every step. Copying into buffers that live as long as the session
//! costs one `memcpy` per tensor and leaves the model's buffers uniquely owned, so the optimiser
//! updates them in place.

use dfdx::nn::{RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorName, ViewTensorRef};
use dfdx::prelude::{Cpu, HasShape, Shape, Tensor};

use crate::error::{LeptonError, Result};
use crate::nn::visit::rewrite_tensors;

/// Every tensor of a model by path, in the model's visiting order.
#[derive(Default)]
pub(crate) struct Snapshot {
    tensors: Vec<(String, Vec<f32>)>,
    /// Whether `tensors` holds a complete copy (false before the first `take`).
    valid: bool,
    /// The copy made by the latest [`check_finite`](Snapshot::check_finite).
    spare: Vec<(String, Vec<f32>)>,
    /// Whether `spare` holds a complete copy of finite weights that `promote` may use.
    spare_valid: bool,
}

impl Snapshot {
    /// Copies every tensor of `model` into the snapshot, reusing its buffers.
    pub(crate) fn take<M: TensorCollection<f32, Cpu>>(&mut self, model: &M) {
        copy_model(model, &mut self.tensors);
        self.valid = true;
        self.spare_valid = false;
    }

    /// Whether every weight of `model` is finite. The check reads a copy of the weights made
    /// into the spare buffers, so that, when nothing changes the model before the next step,
    /// [`promote`](Snapshot::promote) turns that copy into the next snapshot instead of
    /// copying the weights a second time.
    pub(crate) fn check_finite<M: TensorCollection<f32, Cpu>>(&mut self, model: &M) -> bool {
        copy_model(model, &mut self.spare);
        let finite = self.spare.iter().all(|(_, v)| all_finite(v));
        self.spare_valid = finite;
        finite
    }

    /// Makes the copy of the latest successful [`check_finite`](Snapshot::check_finite) the
    /// snapshot, as [`take`](Snapshot::take) of the same, unchanged model would. The caller
    /// promises the model has not changed since that check. Returns false (and changes
    /// nothing) when there is no such copy.
    pub(crate) fn promote(&mut self) -> bool {
        if !self.spare_valid {
            return false;
        }
        std::mem::swap(&mut self.tensors, &mut self.spare);
        self.valid = true;
        self.spare_valid = false;
        true
    }

    /// Whether a complete copy has been taken.
    #[cfg(test)]
    pub(crate) fn is_valid(&self) -> bool {
        self.valid
    }

    /// The values of the tensor at `path` in the snapshot.
    pub(crate) fn get(&self, path: &str) -> Option<&[f32]> {
        if !self.valid {
            return None;
        }
        self.tensors.iter().find(|(p, _)| p == path).map(|(_, v)| v.as_slice())
    }

    /// Writes the snapshot back into `model` (nothing happens before the first `take`).
    /// Errors if `model`'s tensors are not the ones the snapshot was taken from.
    pub(crate) fn restore<M: TensorCollection<f32, Cpu>>(&self, model: &mut M) -> Result<()> {
        if !self.valid {
            return Ok(());
        }
        rewrite_tensors(model, |path, _shape, buf| match self.tensors.iter().find(|(p, _)| p == path) {
            Some((_, v)) if v.len() == buf.len() => {
                buf.copy_from_slice(v);
                Ok(true)
            }
            Some((_, v)) => Err(LeptonError::Shape {
                op: "restore weights",
                path: path.to_string(),
                expected: vec![v.len()],
                found: vec![buf.len()],
            }),
            None => Err(LeptonError::config("restore weights", path, "the snapshot has no tensor with this path")),
        })
    }

}

/// Whether every value is finite. Branch-free over blocks of 1,024 values, so the compiler
/// vectorises it (`Iterator::all` stops at every element and does not).
fn all_finite(v: &[f32]) -> bool {
    v.chunks(1024).all(|c| c.iter().fold(true, |ok, x| ok & x.is_finite()))
}

/// Copies every tensor of `model` into `tensors` (by path, in the model's visiting order),
/// reusing the buffers.
fn copy_model<M: TensorCollection<f32, Cpu>>(model: &M, tensors: &mut Vec<(String, Vec<f32>)>) {
    struct Take<'a> {
        tensors: &'a mut Vec<(String, Vec<f32>)>,
        next: usize,
    }
    impl TensorVisitor<f32, Cpu> for Take<'_> {
        type Viewer = (ViewTensorRef, ViewTensorName);
        type Err = std::convert::Infallible;
        type E2 = f32;
        type D2 = Cpu;
        fn visit<S: Shape>(
            &mut self,
            _opts: TensorOptions<S, f32, Cpu>,
            (t, path): (&Tensor<S, f32, Cpu>, String),
        ) -> std::result::Result<Option<Tensor<S, f32, Cpu>>, Self::Err> {
            let n = t.shape().num_elements();
            match self.tensors.get_mut(self.next) {
                Some((p, buf)) => {
                    if *p != path {
                        *p = path;
                    }
                    buf.resize(n, 0.0);
                    copy_out(t, buf);
                }
                None => {
                    let mut buf = vec![0.0; n];
                    copy_out(t, &mut buf);
                    self.tensors.push((path, buf));
                }
            }
            self.next += 1;
            Ok(None)
        }
    }
    let mut v = Take { tensors, next: 0 };
    let _ = M::iter_tensors(&mut RecursiveWalker { m: (model, String::new()), f: &mut v });
    let n = v.next;
    tensors.truncate(n);
}

/// Copies `t` into `buf` (of `t`'s element count). `try_contiguous` gives back the same buffer
/// for a tensor with the standard strides (every parameter), so that is one `memcpy`.
fn copy_out<S: Shape>(t: &Tensor<S, f32, Cpu>, buf: &mut [f32]) {
    use dfdx::tensor_ops::ReshapeTo;
    match t.clone().try_contiguous() {
        Ok(c) => c.copy_into(buf),
        Err(_) => {
            for (b, v) in buf.iter_mut().zip(t.as_vec()) {
                *b = v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfdx::nn::modules::Linear;
    use dfdx::nn::{builders, DeviceBuildExt};
    use dfdx::prelude::{Module, ReLU, TensorFrom};
    use dfdx::tensor::AsArray;

    type Net = (Linear<3, 2, f32, Cpu>, ReLU, Linear<2, 1, f32, Cpu>);
    type Build = (builders::Linear<3, 2>, ReLU, builders::Linear<2, 1>);

    #[test]
    fn take_restore_round_trip_and_paths() {
        let dev = Cpu::default();
        let mut net: Net = dev.build_module::<Build, f32>();
        let mut snap = Snapshot::default();
        assert!(!snap.is_valid());
        assert_eq!(snap.get("0.weight"), None);
        // restoring before any take leaves the model alone
        let w0 = net.0.weight.array();
        snap.restore(&mut net).unwrap();
        assert_eq!(net.0.weight.array(), w0);

        net.0.weight = dev.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        net.2.bias = dev.tensor([0.5]);
        snap.take(&net);
        assert_eq!(snap.get("0.weight"), Some(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0][..]));
        assert_eq!(snap.get("2.bias"), Some(&[0.5][..]));
        assert_eq!(snap.get("1.weight"), None);
        assert!(snap.check_finite(&net));

        net.0.weight = dev.tensor([[f32::NAN, 0.0, 0.0], [0.0, 0.0, 0.0]]);
        net.2.bias = dev.tensor([-1.0]);
        assert!(!snap.check_finite(&net));
        snap.restore(&mut net).unwrap();
        assert_eq!(net.0.weight.array(), [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        assert_eq!(net.2.bias.array(), [0.5]);
        assert!(snap.check_finite(&net));

        // a second take reuses the buffers and sees the new values
        net.2.bias = dev.tensor([f32::INFINITY]);
        assert!(!snap.check_finite(&net));
        snap.take(&net);
        assert_eq!(snap.get("2.bias"), Some(&[f32::INFINITY][..]));
        let y = net.forward(dev.tensor([1.0, 1.0, 1.0]));
        assert_eq!(y.array(), [f32::INFINITY]);
    }

    #[test]
    fn promote_turns_the_checked_copy_into_the_snapshot() {
        let dev = Cpu::default();
        let mut net: Net = dev.build_module::<Build, f32>();
        let mut snap = Snapshot::default();
        // nothing checked yet
        assert!(!snap.promote());
        net.2.bias = dev.tensor([0.5]);
        snap.take(&net);
        net.2.bias = dev.tensor([2.5]);
        assert!(snap.check_finite(&net));
        // the snapshot still holds the weights before the change until promoted
        assert_eq!(snap.get("2.bias"), Some(&[0.5][..]));
        assert!(snap.promote());
        assert_eq!(snap.get("2.bias"), Some(&[2.5][..]));
        // a copy is promoted once
        assert!(!snap.promote());
        // a failed check leaves nothing to promote, and the snapshot as it was
        net.2.bias = dev.tensor([f32::NAN]);
        assert!(!snap.check_finite(&net));
        assert!(!snap.promote());
        assert_eq!(snap.get("2.bias"), Some(&[2.5][..]));
        // `take` drops a pending copy: it is older than what `take` just copied
        net.2.bias = dev.tensor([1.0]);
        assert!(snap.check_finite(&net));
        net.2.bias = dev.tensor([3.0]);
        snap.take(&net);
        assert!(!snap.promote());
        assert_eq!(snap.get("2.bias"), Some(&[3.0][..]));
    }

    #[test]
    fn all_finite_sees_every_block() {
        let mut v = vec![1.0f32; 5000];
        assert!(all_finite(&v));
        for (i, bad) in [(0, f32::NAN), (1023, f32::INFINITY), (1024, f32::NEG_INFINITY), (4999, f32::NAN)] {
            v[i] = bad;
            assert!(!all_finite(&v), "{bad} at {i}");
            v[i] = f32::MAX;
        }
        assert!(all_finite(&v));
        assert!(all_finite(&[]));
    }
}
