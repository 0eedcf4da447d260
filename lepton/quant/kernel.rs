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
    #[cfg(target_arch = "x86_64")]
    if kernel == Kernel::Avx2 {
        // Widen the weights to i16 once per call (the AVX2 loop then only loads, multiplies
        // and adds) and each sample's row once; four outputs share every load of the row.
        // Pairs of samples share every weight load (the weights, not the arithmetic, bound
        // this loop: each pass streams all of them from cache).
        let w16: Vec<i16> = w.iter().map(|&v| i16::from(v)).collect();
        out.par_chunks_mut(2 * outputs).zip(x.par_chunks(2 * inputs)).for_each(|(o, xb)| {
            let x16: Vec<i16> = xb.iter().map(|&v| i16::from(v)).collect();
            let (o0, o1) = o.split_at_mut(outputs.min(o.len()));
            if o1.is_empty() {
                // SAFETY: `Kernel::Avx2` only comes out of `Kernel::resolve`, which checked
                // `is_x86_feature_detected!("avx2")`.
                unsafe { rows_avx2(&x16, &w16, inputs, o0) };
            } else {
                let (x0, x1) = x16.split_at(inputs);
                // SAFETY: as above.
                unsafe { rows2_avx2(x0, x1, &w16, inputs, o0, o1) };
            }
        });
        return Ok(out);
    }
    out.par_chunks_mut(outputs).zip(x.par_chunks(inputs)).for_each(|(o, xb)| {
        for (acc, wc) in o.iter_mut().zip(w.chunks_exact(inputs)) {
            *acc = dot_resolved(xb, wc, kernel);
        }
    });
    Ok(out)
}

/// [`rows_avx2`] for two samples at once: every weight chunk is loaded once for both, two
/// outputs at a time (eight accumulators).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rows2_avx2(x0: &[i16], x1: &[i16], w: &[i16], inputs: usize, out0: &mut [i32], out1: &mut [i32]) {
    use std::arch::x86_64::*;
    let n = inputs.min(x0.len()).min(x1.len());
    let full = n - n % 16;
    let hsum = |v: __m256i| -> i32 {
        let mut lanes = [0i32; 8];
        // SAFETY: `lanes` is 32 writable bytes; `_mm256_storeu_si256` needs no alignment.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, v) };
        lanes.iter().fold(0i32, |a, &l| a.wrapping_add(l))
    };
    let tail = |x: &[i16], wr: &[i16]| -> i32 {
        x[full..n].iter().zip(&wr[full..n]).fold(0i32, |a, (&p, &q)| a.wrapping_add(i32::from(p) * i32::from(q)))
    };
    let outputs = out0.len().min(out1.len());
    let mut o = 0;
    while o < outputs {
        let pair = (outputs - o).min(2);
        let rows: [&[i16]; 2] = [&w[o * inputs..(o + 1) * inputs], &w[(o + pair - 1) * inputs..(o + pair) * inputs]];
        let mut acc = [_mm256_setzero_si256(); 4];
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= full <= n, and both samples and both rows hold at least n
            // values, so each 32-byte unaligned load stays inside its slice.
            unsafe {
                let xa = _mm256_loadu_si256(x0.as_ptr().add(i) as *const __m256i);
                let xb = _mm256_loadu_si256(x1.as_ptr().add(i) as *const __m256i);
                let wa = _mm256_loadu_si256(rows[0].as_ptr().add(i) as *const __m256i);
                let wb = _mm256_loadu_si256(rows[1].as_ptr().add(i) as *const __m256i);
                acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(xa, wa));
                acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(xb, wa));
                acc[2] = _mm256_add_epi32(acc[2], _mm256_madd_epi16(xa, wb));
                acc[3] = _mm256_add_epi32(acc[3], _mm256_madd_epi16(xb, wb));
            }
            i += 16;
        }
        out0[o] = hsum(acc[0]).wrapping_add(tail(x0, rows[0]));
        out1[o] = hsum(acc[1]).wrapping_add(tail(x1, rows[0]));
        if pair == 2 {
            out0[o + 1] = hsum(acc[2]).wrapping_add(tail(x0, rows[1]));
            out1[o + 1] = hsum(acc[3]).wrapping_add(tail(x1, rows[1]));
        }
        o += pair;
    }
}

/// `out[o] = Σ_k x[k]·w[o·inputs + k]` for every output `o`, on values already widened to
/// `i16`: four outputs at a time share each 16-value load of `x`; `_mm256_madd_epi16` adds
/// products in pairs into `i32` lanes exactly (|255·127·2| < 2^31). Wrapping `i32` sums in any
/// order give the same bits as [`dot_portable`] (tested).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rows_avx2(x: &[i16], w: &[i16], inputs: usize, out: &mut [i32]) {
    use std::arch::x86_64::*;
    let n = inputs.min(x.len());
    let full = n - n % 16;
    let hsum = |v: __m256i| -> i32 {
        let mut lanes = [0i32; 8];
        // SAFETY: `lanes` is 32 writable bytes; `_mm256_storeu_si256` needs no alignment.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, v) };
        lanes.iter().fold(0i32, |a, &l| a.wrapping_add(l))
    };
    let tail = |wr: &[i16]| -> i32 {
        x[full..n].iter().zip(&wr[full..n]).fold(0i32, |a, (&p, &q)| a.wrapping_add(i32::from(p) * i32::from(q)))
    };
    let mut chunks = out.chunks_exact_mut(4);
    let mut o = 0;
    for quad in &mut chunks {
        let rows: [&[i16]; 4] = [
            &w[o * inputs..(o + 1) * inputs],
            &w[(o + 1) * inputs..(o + 2) * inputs],
            &w[(o + 2) * inputs..(o + 3) * inputs],
            &w[(o + 3) * inputs..(o + 4) * inputs],
        ];
        let mut acc = [_mm256_setzero_si256(); 4];
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= full <= n, and x and every row hold at least n values, so
            // each 32-byte unaligned load (`_mm256_loadu_si256`) stays inside its slice.
            unsafe {
                let xv = _mm256_loadu_si256(x.as_ptr().add(i) as *const __m256i);
                for (a, r) in acc.iter_mut().zip(&rows) {
                    let wv = _mm256_loadu_si256(r.as_ptr().add(i) as *const __m256i);
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(xv, wv));
                }
            }
            i += 16;
        }
        for ((q, a), r) in quad.iter_mut().zip(acc).zip(&rows) {
            *q = hsum(a).wrapping_add(tail(r));
        }
        o += 4;
    }
    for q in chunks.into_remainder() {
        let r = &w[o * inputs..(o + 1) * inputs];
        let mut a = _mm256_setzero_si256();
        let mut i = 0;
        while i < full {
            // SAFETY: as above.
            unsafe {
                let xv = _mm256_loadu_si256(x.as_ptr().add(i) as *const __m256i);
                let wv = _mm256_loadu_si256(r.as_ptr().add(i) as *const __m256i);
                a = _mm256_add_epi32(a, _mm256_madd_epi16(xv, wv));
            }
            i += 16;
        }
        *q = hsum(a).wrapping_add(tail(r));
        o += 1;
    }
}
