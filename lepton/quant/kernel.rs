//! Integer dot products `Σ x[k]·w[k]` of `u8` activations and `i8` weights into `i32`: an AVX2
//! kernel and a portable one, picked at run time.
//!
//! The AVX2 kernel widens 16 `u8` and 16 `i8` to `i16` (`_mm256_cvtepu8_epi16`,
//! `_mm256_cvtepi8_epi16`), multiplies and adds adjacent pairs into eight `i32` lanes
//! (`_mm256_madd_epi16`: `|255·128·2| < 2^31`, exact), and sums the lanes at the end. Integer
//! addition is associative, and both kernels wrap on overflow (two's complement, like the
//! vector adds), so they return the same bits for every input — the test suite checks it.
//! [`Kernel::Portable`] forces the scalar path.

use rayon::prelude::*;

use crate::error::{LeptonError, Result};

/// Which dot-product kernel to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernel {
    /// AVX2 when the CPU has it (`is_x86_feature_detected!("avx2")`), else portable.
    #[default]
    Auto,
    /// The portable scalar loop.
    Portable,
    /// The AVX2 kernel; an error on a CPU without AVX2.
    Avx2,
}

/// Whether this CPU can run [`Kernel::Avx2`].
pub fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl Kernel {
    /// The kernel that will actually run: `Auto` resolved, `Avx2` checked.
    pub fn resolve(self) -> Result<Kernel> {
        match self {
            Kernel::Auto if avx2_available() => Ok(Kernel::Avx2),
            Kernel::Auto | Kernel::Portable => Ok(Kernel::Portable),
            Kernel::Avx2 if avx2_available() => Ok(Kernel::Avx2),
            Kernel::Avx2 => Err(LeptonError::config("kernel", "Avx2", "this CPU does not support AVX2; use Kernel::Auto or Kernel::Portable")),
        }
    }
}

fn dot_portable(x: &[u8], w: &[i8]) -> i32 {
    x.iter().zip(w).fold(0i32, |acc, (&a, &b)| acc.wrapping_add(i32::from(a) * i32::from(b)))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(x: &[u8], w: &[i8]) -> i32 {
    use std::arch::x86_64::*;
    let n = x.len().min(w.len());
    let full = n - n % 16;
    let mut acc = _mm256_setzero_si256();
    let mut i = 0;
    while i < full {
        // SAFETY: i + 16 <= full <= len of both slices, so each 16-byte unaligned load
        // (`_mm_loadu_si128` has no alignment requirement) stays inside its slice.
        let (xv, wv) = unsafe {
            (
                _mm_loadu_si128(x.as_ptr().add(i) as *const __m128i),
                _mm_loadu_si128(w.as_ptr().add(i) as *const __m128i),
            )
        };
        let prod = _mm256_madd_epi16(_mm256_cvtepu8_epi16(xv), _mm256_cvtepi8_epi16(wv));
        acc = _mm256_add_epi32(acc, prod);
        i += 16;
    }
    let mut lanes = [0i32; 8];
    // SAFETY: `lanes` is 32 writable bytes; `_mm256_storeu_si256` has no alignment requirement.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, acc) };
    let head = lanes.iter().fold(0i32, |a, &l| a.wrapping_add(l));
    head.wrapping_add(dot_portable(&x[full..n], &w[full..n]))
}

fn dot_resolved(x: &[u8], w: &[i8], kernel: Kernel) -> i32 {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Kernel::Avx2` only comes out of `Kernel::resolve`, which checked
        // `is_x86_feature_detected!("avx2")`.
        Kernel::Avx2 => unsafe { dot_avx2(x, w) },
        _ => dot_portable(x, w),
    }
}

/// `Σ x[k]·w[k]` (wrapping `i32`) with `kernel`. Errors if the lengths differ or the kernel
/// cannot run here.
pub fn dot_u8_i8(x: &[u8], w: &[i8], kernel: Kernel) -> Result<i32> {
    if x.len() != w.len() {
        return Err(LeptonError::Shape { op: "u8·i8 dot", path: "weights".into(), expected: vec![x.len()], found: vec![w.len()] });
    }
    Ok(dot_resolved(x, w, kernel.resolve()?))
}

/// `acc = x · wᵀ`: `x` is `(batch, inputs)` `u8`, `w` is `(outputs, inputs)` `i8`, the result
/// `(batch, outputs)` `i32` (raw products: no zero point, no bias). Samples run in parallel;
/// every accumulator is computed the same way whatever the thread count.
pub fn matmul_u8_i8(x: &[u8], batch: usize, w: &[i8], outputs: usize, inputs: usize, kernel: Kernel) -> Result<Vec<i32>> {
    if inputs == 0 || outputs == 0 || outputs.checked_mul(inputs) != Some(w.len()) {
        return Err(LeptonError::Shape { op: "u8·i8 matmul", path: "weights".into(), expected: vec![outputs, inputs], found: vec![w.len()] });
    }
    if batch == 0 || batch.checked_mul(inputs) != Some(x.len()) {
        return Err(LeptonError::Shape { op: "u8·i8 matmul", path: "input".into(), expected: vec![batch.max(1), inputs], found: vec![x.len()] });
    }
    let kernel = kernel.resolve()?;
    let mut out = vec![0i32; batch * outputs];
    out.par_chunks_mut(outputs).zip(x.par_chunks(inputs)).for_each(|(o, xb)| {
        for (acc, wc) in o.iter_mut().zip(w.chunks_exact(inputs)) {
            *acc = dot_resolved(xb, wc, kernel);
        }
    });
    Ok(out)
}
