//! CPU kernels shared by lepton's own layers: a bounds-checked matrix product (lepton's own
//! AVX2 kernel for f32, [`super::sgemm`], else the `gemm` crate that dfdx 0.13 uses), and the
//! scalar types they run for.
//!
//! These functions define the semantics of lepton's custom operations; a device kernel
//! (CUDA, behind the `cuda` feature) must compute the same numbers.

use crate::error::{LeptonError, Result};

/// Float types lepton's CPU kernels run for (`f32` for training, `f64` for gradient checks).
pub trait CpuFloat:
    dfdx::shapes::Dtype + Copy + PartialOrd + Send + Sync + std::ops::AddAssign + 'static
{
    /// Negative infinity, the neutral element of `max`.
    const NEG_INFINITY: Self;

    /// The CPU buffer behind a gradient, as a slice. (Inside generic code the compiler cannot
    /// see that `<Cpu as Storage<E>>::Vec` is a `Vec<E>`; for a concrete `E` it can.)
    fn grad_slice(v: &mut <dfdx::tensor::Cpu as dfdx::tensor::Storage<Self>>::Vec) -> &mut [Self];

    /// The value as `f32` (rounded for `f64`).
    fn as_f32(self) -> f32;

    /// `v` in this type.
    fn of_f32(v: f32) -> Self;

    /// The slice as `f32`s when this type is `f32` (lepton's own f32 matrix kernel then runs).
    fn f32_slice(s: &[Self]) -> Option<&[f32]>;

    /// [`f32_slice`](CpuFloat::f32_slice) for a mutable slice.
    fn f32_slice_mut(s: &mut [Self]) -> Option<&mut [f32]>;
}
impl CpuFloat for f32 {
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    fn grad_slice(v: &mut <dfdx::tensor::Cpu as dfdx::tensor::Storage<Self>>::Vec) -> &mut [Self] {
        v.as_mut_slice()
    }
    #[inline]
    fn as_f32(self) -> f32 {
        self
    }
    #[inline]
    fn of_f32(v: f32) -> Self {
        v
    }
    fn f32_slice(s: &[Self]) -> Option<&[f32]> {
        Some(s)
    }
    fn f32_slice_mut(s: &mut [Self]) -> Option<&mut [f32]> {
        Some(s)
    }
}
impl CpuFloat for f64 {
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    fn grad_slice(v: &mut <dfdx::tensor::Cpu as dfdx::tensor::Storage<Self>>::Vec) -> &mut [Self] {
        v.as_mut_slice()
    }
    #[inline]
    fn as_f32(self) -> f32 {
        self as f32
    }
    #[inline]
    fn of_f32(v: f32) -> Self {
        v as f64
    }
    fn f32_slice(_: &[Self]) -> Option<&[f32]> {
        None
    }
    fn f32_slice_mut(_: &mut [Self]) -> Option<&mut [f32]> {
        None
    }
}

/// The values of a tensor in row-major order, copied with one `memcpy` (dfdx's `as_vec` walks
/// an index iterator element by element, which cost 14 % of a LeNet-300-100 training step).
pub(crate) fn host_vec<S: dfdx::shapes::Shape, E: CpuFloat, T>(
    t: &dfdx::tensor::Tensor<S, E, dfdx::tensor::Cpu, T>,
) -> Result<Vec<E>>
where
    dfdx::tensor::Cpu: dfdx::tensor_ops::Device<E>,
{
    use dfdx::shapes::HasShape;
    use dfdx::tensor_ops::ReshapeTo;
    // `try_contiguous` returns the same buffer when the strides are the standard ones (a buffer
    // of exactly `num_elements`), else a contiguous copy: either way `copy_into` sees the
    // sizes it needs.
    let c = t.retaped::<dfdx::tensor::NoneTape>().try_contiguous().map_err(|e| LeptonError::device("copy tensor", e))?;
    let mut v = vec![E::default(); c.shape().num_elements()];
    c.copy_into(&mut v);
    Ok(v)
}

/// A strided read-only matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a, E> {
    pub data: &'a [E],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

fn last_index(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1).checked_mul(rs)?.checked_add((cols - 1).checked_mul(cs)?)
}

fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    rows == 0 || cols == 0 || matches!(last_index(rows, cols, rs, cs), Some(i) if i < len)
}

/// Work (m·n·k) below which a product runs on one thread: splitting tiny products costs more
/// than it saves.
const PARALLEL_WORK: usize = 1 << 18;

/// `dst = lhs · rhs` (or `dst += lhs · rhs` when `accumulate`), `dst` row-major `m × n` with row
/// stride `dst_rs`. All bounds are checked before the unsafe call.
pub(crate) fn matmul_into<E: CpuFloat>(
    op: &'static str,
    dst: &mut [E],
    dst_rs: usize,
    accumulate: bool,
    lhs: MatRef<'_, E>,
    rhs: MatRef<'_, E>,
) -> Result<()> {
    matmul_impl(op, dst, dst_rs, accumulate, lhs, rhs, true)
}

/// [`matmul_into`] on the calling thread only (for callers that parallelise themselves).
pub(crate) fn matmul_into_seq<E: CpuFloat>(
    op: &'static str,
    dst: &mut [E],
    dst_rs: usize,
    accumulate: bool,
    lhs: MatRef<'_, E>,
    rhs: MatRef<'_, E>,
) -> Result<()> {
    matmul_impl(op, dst, dst_rs, accumulate, lhs, rhs, false)
}

fn matmul_impl<E: CpuFloat>(
    op: &'static str,
    dst: &mut [E],
    dst_rs: usize,
    accumulate: bool,
    lhs: MatRef<'_, E>,
    rhs: MatRef<'_, E>,
    allow_parallel: bool,
) -> Result<()> {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    if rhs.rows != k
        || !fits(dst.len(), m, n, dst_rs, 1)
        || !fits(lhs.data.len(), m, k, lhs.rs, lhs.cs)
        || !fits(rhs.data.len(), k, n, rhs.rs, rhs.cs)
    {
        return Err(LeptonError::Shape {
            op,
            path: String::new(),
            expected: vec![m, k, k, n],
            found: vec![lhs.rows, lhs.cols, rhs.rows, rhs.cols],
        });
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                dst[i * dst_rs..i * dst_rs + n].fill(E::default());
            }
        }
        return Ok(());
    }
    let parallel = allow_parallel && m.saturating_mul(n).saturating_mul(k) >= PARALLEL_WORK;
    if super::sgemm::available() {
        if let (Some(d), Some(l), Some(r)) = (E::f32_slice_mut(dst), E::f32_slice(lhs.data), E::f32_slice(rhs.data)) {
            let threads = if parallel { rayon::current_num_threads() } else { 1 };
            let lhs = MatRef { data: l, rows: lhs.rows, cols: lhs.cols, rs: lhs.rs, cs: lhs.cs };
            let rhs = MatRef { data: r, rows: rhs.rows, cols: rhs.cols, rs: rhs.rs, cs: rhs.cs };
            super::sgemm::sgemm(d, dst_rs, accumulate, lhs, rhs, threads);
            return Ok(());
        }
    }
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    let one = E::ONE;
    let zero = E::default();
    // SAFETY: `fits` checked above that every element the product reads (lhs, rhs) and writes
    // (dst) lies inside its slice; `dst` is borrowed mutably so it aliases neither input.
    // Strides fit in isize because each largest index is below a slice length (≤ isize::MAX).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            if accumulate { one } else { zero },
            one,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_matches_hand_computed_product_and_accumulates() {
        // [[1,2,3],[4,5,6]] · [[1,0],[0,1],[1,1]] = [[4,5],[10,11]]
        let a = [1.0f32, 2., 3., 4., 5., 6.];
        let b = [1.0f32, 0., 0., 1., 1., 1.];
        let mut c = [0.0f32; 4];
        let lhs = MatRef { data: &a, rows: 2, cols: 3, rs: 3, cs: 1 };
        let rhs = MatRef { data: &b, rows: 3, cols: 2, rs: 2, cs: 1 };
        matmul_into("t", &mut c, 2, false, lhs, rhs).unwrap();
        assert_eq!(c, [4., 5., 10., 11.]);
        matmul_into("t", &mut c, 2, true, lhs, rhs).unwrap();
        assert_eq!(c, [8., 10., 20., 22.]);
        // transposed view of `a`: (3x2)
        let at = MatRef { data: &a, rows: 3, cols: 2, rs: 1, cs: 3 };
        let mut d = [0.0f32; 9];
        matmul_into("t", &mut d, 3, false, at, MatRef { data: &a, rows: 2, cols: 3, rs: 3, cs: 1 }).unwrap();
        // aᵀa
        assert_eq!(d, [17., 22., 27., 22., 29., 36., 27., 36., 45.]);
    }

    #[test]
    fn matmul_rejects_views_outside_their_slices() {
        let a = [1.0f32; 5];
        let mut c = [0.0f32; 4];
        let lhs = MatRef { data: &a, rows: 2, cols: 3, rs: 3, cs: 1 };
        let rhs = MatRef { data: &a, rows: 3, cols: 2, rs: 2, cs: 1 };
        assert!(matmul_into("t", &mut c, 2, false, lhs, rhs).is_err());
    }
}
