//! Tests of `lepton::quant`: affine quantization on hand-computed tensors, round-trip error
//! bounds and SQNR, constant tensors, the calibration observers, gemmlowp's fixed-point
//! primitives, the AVX2 and portable kernels (bit-identical), the integer Linear against a
//! hand computation and against its fake-quant simulation (within one output code), a
//! quantized LeNet-300-100 (per layer against the simulation, and accuracy after training),
//! k-means weight sharing, size accounting, and every bad-input error.

mod common;
use common::{train_2k, test_500};

use dfdx::prelude::{Cpu, Tensor};
use dfdx::tensor::TensorFromVec;
use lepton::data::Dataset;
use lepton::nn::{Arch, Classifier, LeNet300};
use lepton::quant::*;
use lepton::train::{predict_logits, Session, TrainConfig};
use lepton::LeptonError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

// ---------------------------------------------------------------------------------------
// Tolerances.

/// Slack for f32 rounding of a scale or a dequantized value (relative to the value).
const F32_REL: f32 = 4.0 * f32::EPSILON;
/// Absolute slack for values computed in f64 from f32 inputs.
const F64_ATOL: f64 = 1e-9;
/// The integer path may differ from the float simulation by at most this many output codes.
const MAX_CODE_DIFF: i32 = 1;
/// …and only rarely: at most this fraction of outputs may differ at all (rounding ties of the
/// fixed-point multiplier against the f64 product).
const MAX_CODE_MISMATCH: f64 = 0.01;
/// Uniform data loses ~6.02 dB of SQNR per bit removed; allowed deviation per 4 bits.
const SQNR_4_BITS_TOL_DB: f64 = 1.5;
/// Smallest SQNR of an 8-bit LeNet-300-100's logits against the float model's (dB).
const LOGIT_MIN_SQNR_DB: f64 = 30.0;
/// Accuracy an 8-bit LeNet-300-100 may lose against its float model (absolute).
const INT8_ACCURACY_DROP: f64 = 0.02;
/// Fraction of test samples on which the 8-bit and float models must agree.
const INT8_AGREEMENT: f64 = 0.95;

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn normal(r: &mut StdRng, n: usize, std: f32) -> Vec<f32> {
    (0..n).map(|_| r.sample::<f32, _>(StandardNormal) * std).collect()
}

fn is_config(e: &LeptonError) -> bool {
    matches!(e, LeptonError::Config { .. })
}

fn is_shape(e: &LeptonError) -> bool {
    matches!(e, LeptonError::Shape { .. })
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= F32_REL * a.abs().max(b.abs()).max(f32::MIN_POSITIVE)
}

fn per_tensor(bits: u8, symmetric: bool) -> QScheme {
    QScheme::new(bits, symmetric, Granularity::PerTensor).unwrap()
}

// ---------------------------------------------------------------------------------------
// Affine quantization on literal tensors

#[test]
fn symmetric_8_bit_quantization_of_a_small_tensor_matches_hand_computation() {
    let x = [-1.0, 0.0, 0.5, 1.0];
    let t = QuantizedTensor::quantize(&[4], &x, per_tensor(8, true)).unwrap();
    let p = t.params[0];
    assert_eq!(p.scale, 1.0 / 127.0);
    assert_eq!((p.zero_point, p.qmin, p.qmax, p.bits), (0, -127, 127, 8));
    assert_eq!(t.codes, vec![-127, 0, 64, 127]);
    let d = t.dequantize();
    for (got, want) in d.iter().zip([-1.0, 0.0, 64.0 / 127.0, 1.0]) {
        assert!(close(*got, want), "{got} vs {want}");
    }
    assert_eq!(d[1].to_bits(), 0, "zero is exactly representable");
}

#[test]
fn asymmetric_8_bit_parameters_and_codes_match_hand_computation() {
    // [-0.5, 1.5]: S = 2/255, -0.5/S = -63.75 -> Z = 64
    let p = QParams::from_range(-0.5, 1.5, 8, false).unwrap();
    assert_eq!(p.scale, 2.0 / 255.0);
    assert_eq!((p.zero_point, p.qmin, p.qmax), (64, 0, 255));
    let codes: Vec<i32> = [-0.5, 0.0, 0.25, 1.5, 2.0, -1.0].iter().map(|&v| p.quantize(v)).collect();
    assert_eq!(codes, vec![0, 64, 96, 255, 255, 0], "0.25/S = 31.875 -> 32 + 64; out of range clamps");
    assert_eq!(p.dequantize(64), 0.0);
    assert!(close(p.dequantize(96), 32.0 * 2.0 / 255.0));
    // a range not containing 0 is widened to contain it
    let q = QParams::from_range(0.5, 1.0, 8, false).unwrap();
    assert_eq!((q.scale, q.zero_point), (1.0 / 255.0, 0));
    let q = QParams::from_range(-2.0, -1.0, 8, false).unwrap();
    assert_eq!((q.scale, q.zero_point), (2.0 / 255.0, 255));
}

#[test]
fn low_bit_widths_use_the_symmetric_and_unsigned_code_ranges() {
    for bits in MIN_BITS..=MAX_BITS {
        let m = (1i32 << (bits - 1)) - 1;
        assert_eq!(QParams::code_range(bits, true).unwrap(), (-m, m));
        assert_eq!(QParams::code_range(bits, false).unwrap(), (0, (1 << bits) - 1));
    }
    // 4 bits symmetric: S = 1/7, 0.3·7 = 2.1 -> 2
    let t = QuantizedTensor::quantize(&[3], &[-1.0, 0.3, 1.0], per_tensor(4, true)).unwrap();
    assert_eq!(t.params[0].scale, 1.0 / 7.0);
    assert_eq!(t.codes, vec![-7, 2, 7]);
    // 2 bits symmetric: codes -1..=1, S = 1
    let t = QuantizedTensor::quantize(&[4], &[-1.0, 0.4, 0.6, 1.0], per_tensor(2, true)).unwrap();
    assert_eq!((t.params[0].scale, t.codes.clone()), (1.0, vec![-1, 0, 1, 1]));
}

#[test]
fn per_channel_quantization_has_one_scale_per_row_and_less_error() {
    let w = [1.0, -2.0, 0.5, 0.1, 0.03, -0.1];
    let pc = QuantizedTensor::quantize(&[2, 3], &w, QScheme::int8_weights()).unwrap();
    assert_eq!(pc.params.len(), 2);
    assert_eq!(pc.params[0].scale, 2.0 / 127.0);
    assert_eq!(pc.params[1].scale, 0.1 / 127.0);
    assert_eq!(pc.codes, vec![64, -127, 32, 127, 38, -127], "1/S = 63.5 (f32 S a hair below 2/127) -> 64, 31.75 -> 32, 0.03·1270 = 38.1 -> 38");
    let pt = QuantizedTensor::quantize(&[2, 3], &w, per_tensor(8, true)).unwrap();
    assert_eq!(pt.params.len(), 1);
    assert!(pc.error(&w).unwrap().mse < pt.error(&w).unwrap().mse);
}

#[test]
fn round_trip_error_is_at_most_half_a_step_for_every_scheme() {
    let mut r = rng(1);
    let w = normal(&mut r, 20 * 31, 0.3);
    for bits in MIN_BITS..=MAX_BITS {
        for symmetric in [true, false] {
            for g in [Granularity::PerTensor, Granularity::PerChannel] {
                let t = QuantizedTensor::quantize(&[20, 31], &w, QScheme::new(bits, symmetric, g).unwrap()).unwrap();
                let d = t.dequantize();
                let chunk = t.channel_len();
                for (i, (a, b)) in w.iter().zip(&d).enumerate() {
                    let s = t.params[i / chunk].scale;
                    let bound = s * 0.5 * (1.0 + F32_REL) + F32_REL * a.abs();
                    assert!((a - b).abs() <= bound, "{bits} bits sym={symmetric} {g:?} elem {i}: {a} -> {b} (step {s})");
                }
                let e = t.error(&w).unwrap();
                assert!(e.max_abs <= t.params.iter().map(|p| p.scale as f64).fold(0.0, f64::max) * 0.5 + F64_ATOL);
            }
        }
    }
}

#[test]
fn quant_error_reports_mse_max_abs_and_sqnr() {
    let e = QuantError::between(&[1.0, -1.0, 2.0, 0.0], &[1.0, -0.5, 2.0, 0.5]).unwrap();
    assert_eq!(e.mse, 0.125);
    assert_eq!(e.max_abs, 0.5);
    assert!((e.sqnr_db - 10.0 * 12f64.log10()).abs() < F64_ATOL, "signal 6 / noise 0.5: {}", e.sqnr_db);
    let exact = QuantError::between(&[1.0, 2.0], &[1.0, 2.0]).unwrap();
    assert_eq!((exact.mse, exact.max_abs, exact.sqnr_db), (0.0, 0.0, f64::INFINITY));
}

#[test]
fn sqnr_of_uniform_data_grows_about_six_db_per_bit() {
    let mut r = rng(2);
    let x: Vec<f32> = (0..20_000).map(|_| r.gen_range(-1.0f32..1.0)).collect();
    let sqnr = |bits| QuantizedTensor::quantize(&[x.len()], &x, per_tensor(bits, true)).unwrap().error(&x).unwrap().sqnr_db;
    let (s4, s8) = (sqnr(4), sqnr(8));
    assert!((s8 - s4 - 4.0 * 6.02).abs() < SQNR_4_BITS_TOL_DB, "8 bits {s8:.2} dB, 4 bits {s4:.2} dB");
    assert!(s8 > 40.0, "8-bit SQNR {s8}");
}

#[test]
fn constant_tensors_never_divide_by_zero() {
    // a positive constant lands on the top code
    let t = QuantizedTensor::quantize(&[5], &[0.5; 5], per_tensor(8, true)).unwrap();
    assert_eq!((t.params[0].scale, t.codes.clone()), (0.5 / 127.0, vec![127; 5]));
    assert!(t.dequantize().iter().all(|&v| close(v, 0.5)));
    let t = QuantizedTensor::quantize(&[5], &[0.5; 5], per_tensor(8, false)).unwrap();
    assert_eq!((t.params[0].scale, t.params[0].zero_point, t.codes[0]), (0.5 / 255.0, 0, 255));
    // a negative constant, asymmetric: range [-2, 0], Z = 255, code 0
    let t = QuantizedTensor::quantize(&[3], &[-2.0; 3], per_tensor(8, false)).unwrap();
    assert_eq!((t.params[0].zero_point, t.codes.clone()), (255, vec![0; 3]));
    assert!(t.dequantize().iter().all(|&v| close(v, -2.0)));
    // all zeros: S = 1, Z = 0, reproduced exactly; per channel, a zero row alone gets S = 1
    for symmetric in [true, false] {
        let t = QuantizedTensor::quantize(&[4], &[0.0; 4], per_tensor(8, symmetric)).unwrap();
        assert_eq!((t.params[0].scale, t.params[0].zero_point), (1.0, 0));
        let e = t.error(&[0.0; 4]).unwrap();
        assert_eq!((e.mse, e.sqnr_db), (0.0, f64::INFINITY));
    }
    let t = QuantizedTensor::quantize(&[2, 2], &[0.0, 0.0, 1.0, -1.0], QScheme::int8_weights()).unwrap();
    assert_eq!((t.params[0].scale, t.params[1].scale), (1.0, 1.0 / 127.0));
}

#[test]
fn quantize_with_given_params_uses_them() {
    let p = QParams::from_range(-1.0, 1.0, 8, true).unwrap();
    let t = QuantizedTensor::quantize_with(&[3], &[-2.0, 0.5, 1.0], vec![p]).unwrap();
    assert_eq!(t.codes, vec![-127, 64, 127]);
    assert_eq!(t.scheme.granularity, Granularity::PerTensor);
    assert!(t.scheme.symmetric);
    let e = QuantizedTensor::quantize_with(&[3, 1], &[1.0, 2.0, 3.0], vec![p, p]).unwrap_err();
    assert!(is_shape(&e), "{e}");
    let bad = QParams { scale: 0.0, ..p };
    assert!(is_config(&QuantizedTensor::quantize_with(&[1], &[1.0], vec![bad]).unwrap_err()));
}

#[test]
fn bad_affine_inputs_are_typed_errors() {
    for bits in [0u8, 1, 9, 16] {
        assert!(is_config(&QParams::from_range(-1.0, 1.0, bits, true).unwrap_err()), "bits {bits}");
        assert!(QScheme::new(bits, true, Granularity::PerTensor).is_err());
        let s = QScheme { bits, symmetric: false, granularity: Granularity::PerChannel };
        assert!(is_config(&QuantizedTensor::quantize(&[2], &[1.0, 2.0], s).unwrap_err()));
    }
    for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let e = QuantizedTensor::quantize(&[3], &[1.0, v, 2.0], per_tensor(8, true)).unwrap_err();
        assert!(is_config(&e) && e.to_string().contains("element 1"), "{e}");
        assert!(QParams::from_range(v, 1.0, 8, false).is_err());
    }
    assert!(is_config(&QParams::from_range(1.0, -1.0, 8, false).unwrap_err()));
    assert!(is_shape(&QuantizedTensor::quantize(&[2, 2], &[1.0; 3], per_tensor(8, true)).unwrap_err()));
    assert!(is_shape(&QuantizedTensor::quantize(&[0], &[], per_tensor(8, true)).unwrap_err()));
    assert!(is_shape(&QuantError::between(&[1.0], &[1.0, 2.0]).unwrap_err()));
    assert!(is_config(&QuantError::between(&[1.0], &[f32::NAN]).unwrap_err()));
    assert_eq!(QParams::from_range(-1.0, 1.0, 8, true).unwrap().quantize(f32::NAN), 0, "NaN maps to Z");
}

// ---------------------------------------------------------------------------------------
// Observers

#[test]
fn min_max_observer_tracks_the_extremes_over_batches() {
    let mut o = MinMaxObserver::new();
    o.observe(&[1.0, -2.0]).unwrap();
    o.observe(&[]).unwrap();
    o.observe(&[3.0, 0.5]).unwrap();
    assert_eq!((o.range(), o.count()), (Some((-2.0, 3.0)), 4));
    let p = o.params(8, false).unwrap();
    assert_eq!((p.scale, p.zero_point), (5.0 / 255.0, 102), "Z = 2 / (5/255) = 102");
    assert_eq!(o.params(8, true).unwrap().scale, 3.0 / 127.0);
}

#[test]
fn moving_average_observer_blends_batch_ranges_with_its_momentum() {
    let mut o = MovingAverageObserver::new(0.9).unwrap();
    o.observe(&[-1.0, 0.0, 1.0]).unwrap();
    o.observe(&[-3.0, 2.0]).unwrap();
    let (lo, hi) = o.range().unwrap();
    assert!((lo + 1.2).abs() < 1e-6 && (hi - 1.1).abs() < 1e-6, "0.9·(-1) + 0.1·(-3), 0.9·1 + 0.1·2: {lo} {hi}");
    assert_eq!((o.batches(), o.count()), (2, 5));
    let mut last = MovingAverageObserver::new(0.0).unwrap();
    last.observe(&[-1.0, 1.0]).unwrap();
    last.observe(&[-0.25, 0.5]).unwrap();
    assert_eq!(last.range(), Some((-0.25, 0.5)), "momentum 0 keeps the last batch");
}

#[test]
fn percentile_observer_interpolates_order_statistics() {
    let x = [-10.0, -1.0, 0.0, 1.0, 2.0, 3.0, 100.0];
    let obs = |mode| {
        let mut o = PercentileObserver::new(mode).unwrap();
        o.observe(&x[..3]).unwrap();
        o.observe(&x[3..]).unwrap();
        o
    };
    // |x| sorted: 0 1 1 2 3 10 100, median 2
    assert_eq!(obs(Percentile::Abs(50.0)).range().unwrap(), (-2.0, 2.0));
    assert_eq!(obs(Percentile::Abs(100.0)).range().unwrap(), (-10.0, 100.0));
    assert_eq!(obs(Percentile::Bounds { lower: 0.0, upper: 100.0 }).range().unwrap(), (-10.0, 100.0));
    // positions 1.5 and 4.5 of 0..=6
    assert_eq!(obs(Percentile::Bounds { lower: 25.0, upper: 75.0 }).range().unwrap(), (-0.5, 2.5));
    assert_eq!(obs(Percentile::Abs(50.0)).params(8, true).unwrap().scale, 2.0 / 127.0);
}

#[test]
fn percentile_and_mse_observers_clip_an_outlier_that_min_max_keeps() {
    // 4 bits: the step of the min-max range costs more than clipping the one outlier
    let mut r = rng(3);
    let mut x: Vec<f32> = (0..4000).map(|_| r.gen_range(-1.0f32..1.0)).collect();
    x.push(5.0);
    let mut mm = MinMaxObserver::new();
    let mut pct = PercentileObserver::new(Percentile::Abs(99.9)).unwrap();
    let mut mse = MseObserver::new(200).unwrap();
    for chunk in x.chunks(1000) {
        mm.observe(chunk).unwrap();
        pct.observe(chunk).unwrap();
        mse.observe(chunk).unwrap();
    }
    let err = |p: QParams| x.iter().map(|&v| ((v - p.fake_quant(v)) as f64).powi(2)).sum::<f64>() / x.len() as f64;
    let (p_mm, p_pct) = (mm.params(4, true).unwrap(), pct.params(4, true).unwrap());
    let (p_mse, best) = mse.search(4, true).unwrap();
    assert_eq!(p_mm.scale, 5.0 / 7.0);
    assert!(p_pct.scale < 1.01 / 7.0, "99.9 % of |x| is below 1: {}", p_pct.scale);
    assert!((best - err(p_mse)).abs() < F64_ATOL, "the search reports the MSE of its choice");
    // candidate k = 40 of 200 is the range ±1
    let (lo, _) = mm.range().unwrap();
    let k40 = QParams::from_range(lo * 0.2, 1.0, 4, true).unwrap();
    assert!(best <= err(k40) + F64_ATOL && best < err(p_mm) / 4.0, "mse {best} vs ±1 {} vs min-max {}", err(k40), err(p_mm));
    assert!(p_mse.scale < p_mm.scale / 2.0);
}

#[test]
fn mse_observer_keeps_the_full_range_of_uniform_data() {
    let mut r = rng(4);
    let x: Vec<f32> = (0..5000).map(|_| r.gen_range(0.0f32..1.0)).collect();
    let mut o = MseObserver::new(100).unwrap();
    o.observe(&x).unwrap();
    let p = o.params(8, false).unwrap();
    let (_, hi) = p.real_range();
    assert!(hi > 0.97, "clipping uniform data at 8 bits only adds error: top of range {hi}");
}

#[test]
fn observers_reject_bad_settings_no_data_and_non_finite_values() {
    let kinds = [
        ObserverKind::MinMax,
        ObserverKind::MovingAverage { momentum: 0.5 },
        ObserverKind::Percentile(Percentile::Abs(99.99)),
        ObserverKind::Mse { candidates: 10 },
    ];
    for kind in kinds {
        let mut o = kind.build().unwrap();
        let e = o.params(8, false).unwrap_err();
        assert!(is_config(&e) && e.to_string().contains("not seen any data"), "{kind:?}: {e}");
        o.observe(&[]).unwrap();
        assert!(o.params(8, false).is_err(), "{kind:?}: an empty batch is no data");
        o.observe(&[1.0, 2.0]).unwrap();
        assert!(is_config(&o.observe(&[3.0, f32::NAN]).unwrap_err()));
        assert!(o.observe(&[f32::INFINITY]).is_err());
        assert_eq!(o.count(), 2, "{kind:?}: a rejected batch changes nothing");
        assert!(is_config(&o.params(9, false).unwrap_err()));
        assert!(is_config(&o.params(1, true).unwrap_err()));
        assert!(o.params(8, false).is_ok());
    }
    assert!(MovingAverageObserver::new(1.0).is_err());
    assert!(MovingAverageObserver::new(f32::NAN).is_err());
    assert!(PercentileObserver::new(Percentile::Abs(100.5)).is_err());
    assert!(PercentileObserver::new(Percentile::Bounds { lower: 60.0, upper: 40.0 }).is_err());
    assert!(PercentileObserver::new(Percentile::Abs(f64::NAN)).is_err());
    assert!(MseObserver::new(0).is_err());
    assert!(ObserverKind::Mse { candidates: 0 }.build().is_err());
}

// ---------------------------------------------------------------------------------------
// Fixed point

#[test]
fn fixed_point_multiplier_decomposes_into_m0_and_shift() {
    let fm = |m| FixedMultiplier::from_real(m).unwrap();
    assert_eq!(fm(0.5), FixedMultiplier { m0: 1 << 30, shift: 0 });
    assert_eq!(fm(0.25), FixedMultiplier { m0: 1 << 30, shift: 1 });
    assert_eq!(fm(0.75), FixedMultiplier { m0: 1_610_612_736, shift: 0 });
    // 0.1 = 0.8 · 2^-3, 0.8 · 2^31 = 1717986918.4
    assert_eq!(fm(0.1), FixedMultiplier { m0: 1_717_986_918, shift: 3 });
    assert_eq!(fm(1.0), FixedMultiplier { m0: 1 << 30, shift: -1 });
    assert_eq!(fm(3.0), FixedMultiplier { m0: 1_610_612_736, shift: -2 });
    // a mantissa that rounds up to 2^31 is renormalised
    assert_eq!(fm(1.0 - 1e-12), FixedMultiplier { m0: 1 << 30, shift: -1 });
    let mut r = rng(5);
    for _ in 0..1000 {
        let m = 10f64.powf(r.gen_range(-8.0..4.0));
        let f = fm(m);
        assert!((1 << 30..=i32::MAX).contains(&f.m0), "{m}: m0 {}", f.m0);
        assert!(((f.real() - m) / m).abs() <= 2f64.powi(-31), "{m} vs {}", f.real());
    }
    for bad in [0.0, -0.5, f64::NAN, f64::INFINITY, 32768.0] {
        assert!(is_config(&FixedMultiplier::from_real(bad).unwrap_err()), "{bad}");
    }
}

#[test]
fn gemmlowp_primitives_match_hand_computed_values() {
    let srdhm = saturating_rounding_doubling_high_mul;
    assert_eq!(srdhm(i32::MIN, i32::MIN), i32::MAX, "the one overflow saturates");
    assert_eq!(srdhm(3, 1 << 30), 2, "1.5 rounds up");
    assert_eq!(srdhm(-3, 1 << 30), -1, "gemmlowp's nudge 1 - 2^30: -1.5 rounds toward zero");
    assert_eq!(srdhm(1 << 30, 1 << 30), 1 << 29);
    assert_eq!(srdhm(i32::MAX, i32::MAX), i32::MAX - 1);
    assert_eq!(srdhm(i32::MIN, i32::MAX), i32::MIN + 1);
    let rdp = rounding_divide_by_pot;
    assert_eq!([rdp(5, 1), rdp(-5, 1), rdp(4, 1), rdp(7, 2), rdp(6, 2), rdp(-6, 2), rdp(-7, 2)], [3, -3, 2, 2, 2, -2, -2]);
    assert_eq!((rdp(12345, 0), rdp(-1, 31), rdp(i32::MAX, 31), rdp(i32::MIN, 31)), (12345, 0, 1, -1));
    let mut r = rng(6);
    for _ in 0..10_000 {
        let (a, b): (i32, i32) = (r.gen(), r.gen());
        let exact = a as f64 * b as f64 / 2f64.powi(31);
        assert!((srdhm(a, b) as f64 - exact).abs() <= 0.5, "srdhm({a}, {b})");
        let e = r.gen_range(0..=31);
        let q = a as f64 / 2f64.powi(e);
        assert!((rdp(a, e) as f64 - q).abs() <= 0.5, "rdp({a}, {e})");
        if q.fract().abs() == 0.5 {
            assert_eq!(rdp(a, e) as f64, q.round(), "ties away from zero");
        }
    }
}

#[test]
fn applying_a_fixed_multiplier_rounds_the_real_product() {
    let mut r = rng(7);
    for _ in 0..10_000 {
        let m = 10f64.powf(r.gen_range(-6.0..1.0));
        let f = FixedMultiplier::from_real(m).unwrap();
        let x: i32 = r.gen_range(-(1 << 24)..(1 << 24));
        let exact = x as f64 * f.real();
        // SRDHM rounds at 2^-n of the result, then RoundingDivideByPOT rounds again
        let bound = 0.5 + 0.5 * 2f64.powi(-f.shift.max(0)) + 1e-6;
        assert!((f.apply(x) as f64 - exact).abs() <= bound, "{x} · {m}: {} vs {exact}", f.apply(x));
    }
    let big = FixedMultiplier::from_real(4.0).unwrap();
    assert_eq!(big.apply(1000), 4000);
    assert!(big.apply(i32::MAX) >= 1 << 30 && big.apply(i32::MIN) <= -(1 << 30), "left shifts saturate far beyond any code");
}

// ---------------------------------------------------------------------------------------
// Kernels

fn random_u8(r: &mut StdRng, n: usize) -> Vec<u8> {
    (0..n).map(|_| r.gen()).collect()
}

fn random_i8(r: &mut StdRng, n: usize) -> Vec<i8> {
    (0..n).map(|_| r.gen()).collect()
}

fn naive_dot(x: &[u8], w: &[i8]) -> i64 {
    x.iter().zip(w).map(|(&a, &b)| a as i64 * b as i64).sum()
}

#[test]
fn kernel_choice_resolves_to_what_the_cpu_supports() {
    assert_eq!(Kernel::Portable.resolve().unwrap(), Kernel::Portable);
    let auto = Kernel::Auto.resolve().unwrap();
    if avx2_available() {
        assert_eq!((auto, Kernel::Avx2.resolve().unwrap()), (Kernel::Avx2, Kernel::Avx2));
    } else {
        assert_eq!(auto, Kernel::Portable);
        assert!(is_config(&Kernel::Avx2.resolve().unwrap_err()));
    }
}

#[test]
fn avx2_and_portable_dot_products_are_bit_identical() {
    if !avx2_available() {
        eprintln!("skipped: this CPU has no AVX2");
        return;
    }
    let mut r = rng(8);
    let lengths: Vec<usize> = (0..=70).chain([255, 783, 784, 785, 1000, 4099]).collect();
    for n in lengths {
        for extreme in [false, true] {
            let (x, w) = if extreme {
                (vec![255u8; n], (0..n).map(|i| if i % 3 == 0 { -128i8 } else { 127 }).collect())
            } else {
                (random_u8(&mut r, n), random_i8(&mut r, n))
            };
            let p = dot_u8_i8(&x, &w, Kernel::Portable).unwrap();
            let a = dot_u8_i8(&x, &w, Kernel::Avx2).unwrap();
            assert_eq!(p, a, "length {n}, extreme {extreme}");
            assert_eq!(p as i64, naive_dot(&x, &w), "length {n}");
        }
    }
    // beyond i32 both wrap the same way
    let (x, w) = (vec![255u8; 70_001], vec![-128i8; 70_001]);
    let p = dot_u8_i8(&x, &w, Kernel::Portable).unwrap();
    assert_eq!(p, dot_u8_i8(&x, &w, Kernel::Avx2).unwrap());
    assert_eq!(p, naive_dot(&x, &w) as i32, "two's-complement wrap");
}

#[test]
fn blocked_avx2_matmul_equals_the_portable_kernel_bit_for_bit() {
    // outputs 1..=9 cover whole blocks of four and every remainder; 784/785 inputs cover the
    // 16-value chunks and their tails; extreme codes check the exact i16 pair sums.
    let mut r = rng(21);
    for (batch, outputs, inputs) in [(3, 1, 784), (2, 9, 785), (4, 6, 16), (1, 5, 15), (2, 301, 784)] {
        let x = random_u8(&mut r, batch * inputs);
        let w = random_i8(&mut r, outputs * inputs);
        let portable = matmul_u8_i8(&x, batch, &w, outputs, inputs, Kernel::Portable).unwrap();
        assert_eq!(matmul_u8_i8(&x, batch, &w, outputs, inputs, Kernel::Auto).unwrap(), portable, "{batch}x{outputs}x{inputs}");
    }
    // both GEMM paths: 7-bit codes (x ≤ 127, straight `maddubs`) and 8-bit codes (the
    // x − 128 path), with remainders of every tile size (rows 1..=5, outputs 1..=17, inputs
    // not a multiple of 4)
    for (batch, outputs, inputs) in [(5, 17, 25), (1, 16, 150), (33, 3, 7), (6, 10, 84), (37, 33, 100)] {
        let w = random_i8(&mut r, outputs * inputs).into_iter().map(|v| v.max(-127)).collect::<Vec<i8>>();
        let x8 = random_u8(&mut r, batch * inputs);
        let x7: Vec<u8> = x8.iter().map(|&v| v / 2).collect();
        for x in [&x8, &x7] {
            let naive: Vec<i32> = x.chunks(inputs).flat_map(|xb| w.chunks(inputs).map(move |wc| naive_dot(xb, wc) as i32)).collect();
            assert_eq!(matmul_u8_i8(x, batch, &w, outputs, inputs, Kernel::Auto).unwrap(), naive, "{batch}x{outputs}x{inputs}");
        }
    }
    // extreme pair sums of the 8-bit path: x = 0 (x − 128 = −128) and x = 255 against ±127
    for (xv, wv) in [(0u8, -127i8), (0, 127), (255, 127), (255, -127), (128, 127), (127, -127), (127, 127)] {
        let (x, w) = (vec![xv; 3 * 784], vec![wv; 18 * 784]);
        let expected = vec![i32::from(xv) * i32::from(wv) * 784; 3 * 18];
        assert_eq!(matmul_u8_i8(&x, 3, &w, 18, 784, Kernel::Auto).unwrap(), expected, "x {xv}, w {wv}");
    }
    let (x, w) = (vec![255u8; 2 * 784], vec![-128i8; 7 * 784]);
    let expected = vec![255 * -128 * 784; 2 * 7];
    assert_eq!(matmul_u8_i8(&x, 2, &w, 7, 784, Kernel::Auto).unwrap(), expected);
    assert_eq!(matmul_u8_i8(&x, 2, &w, 7, 784, Kernel::Portable).unwrap(), expected);
}

#[test]
fn matmul_accumulators_match_naive_sums_for_every_kernel() {
    let mut r = rng(9);
    let (batch, out, inp) = (7, 13, 37);
    let x = random_u8(&mut r, batch * inp);
    let w = random_i8(&mut r, out * inp);
    let naive: Vec<i32> = x.chunks(inp).flat_map(|xb| w.chunks(inp).map(move |wc| naive_dot(xb, wc) as i32)).collect();
    assert_eq!(matmul_u8_i8(&x, batch, &w, out, inp, Kernel::Portable).unwrap(), naive);
    assert_eq!(matmul_u8_i8(&x, batch, &w, out, inp, Kernel::Auto).unwrap(), naive);
    assert!(is_shape(&matmul_u8_i8(&x, batch, &w, out, inp + 1, Kernel::Auto).unwrap_err()));
    assert!(is_shape(&matmul_u8_i8(&x, batch + 1, &w, out, inp, Kernel::Auto).unwrap_err()));
    assert!(is_shape(&matmul_u8_i8(&[], 0, &w, out, inp, Kernel::Auto).unwrap_err()));
    assert!(is_shape(&dot_u8_i8(&[1, 2], &[1], Kernel::Portable).unwrap_err()));
}

// ---------------------------------------------------------------------------------------
// Integer Linear

/// S = 1/128, Z = 128: codes 0..=255 cover [-1, 0.9921875].
fn input_params() -> QParams {
    QParams { scale: 1.0 / 128.0, zero_point: 128, qmin: 0, qmax: 255, bits: 8 }
}

/// S = 1/64, Z = 100.
fn output_params() -> QParams {
    QParams { scale: 1.0 / 64.0, zero_point: 100, qmin: 0, qmax: 255, bits: 8 }
}

#[test]
fn integer_linear_matches_a_hand_computation() {
    // W = [[0.5, -1], [-1, 0.5]], b = [0.25, -0.25]; per-channel S_w = 1/127, codes 64 / -127
    let w = [0.5, -1.0, -1.0, 0.5];
    let b = [0.25, -0.25];
    let l = QuantizedLinear::new(&w, &b, 2, 2, 8, input_params(), output_params(), false).unwrap();
    assert_eq!(l.weight(), &[64, -127, -127, 64]);
    assert_eq!(l.bias(), &[4064, -4064], "0.25 / (1/128 · 1/127) = 4064");
    for m in l.multipliers() {
        assert!((m.real() - 1.0 / 254.0).abs() < 1e-9, "M = (1/128)(1/127)/(1/64)");
        assert_eq!(m.shift, 7);
    }
    // x = [0.5, 0.25] -> codes [192, 160]
    let x = [192u8, 160];
    // acc0 = 64·64 + 32·(-127) + 4064 = 4096; acc1 = 64·(-127) + 32·64 - 4064 = -10144
    assert_eq!(l.accumulate(&x, 1, Kernel::Auto).unwrap(), vec![4096, -10144]);
    // 100 + round(4096/254 = 16.13) = 116; 100 + round(-39.94) = 60
    assert_eq!(l.forward(&x, 1, Kernel::Auto).unwrap(), vec![116, 60]);
    assert_eq!(l.simulate(&x, 1).unwrap(), vec![116, 60]);
    let relu = QuantizedLinear::new(&w, &b, 2, 2, 8, input_params(), output_params(), true).unwrap();
    assert_eq!(relu.forward(&x, 1, Kernel::Portable).unwrap(), vec![116, 100], "ReLU clamps at Z_out");
    assert_eq!(relu.simulate(&x, 1).unwrap(), vec![116, 100]);
}

fn random_linear(seed: u64, out: usize, inp: usize, bits: u8, relu: bool) -> QuantizedLinear {
    let mut r = rng(seed);
    let w = normal(&mut r, out * inp, 1.0 / (inp as f32).sqrt());
    let b = normal(&mut r, out, 0.1);
    let output = QParams::from_range(-2.0, 2.5, 8, false).unwrap();
    QuantizedLinear::new(&w, &b, out, inp, bits, input_params(), output, relu).unwrap()
}

/// (largest |difference| in codes, fraction of codes that differ).
fn code_diff(a: &[u8], b: &[i32]) -> (i32, f64) {
    assert_eq!(a.len(), b.len());
    let diffs: Vec<i32> = a.iter().zip(b).map(|(&x, &y)| (x as i32 - y).abs()).collect();
    (diffs.iter().copied().max().unwrap_or(0), diffs.iter().filter(|d| **d > 0).count() as f64 / a.len() as f64)
}

#[test]
fn integer_linear_matches_its_fake_quant_simulation_within_one_step() {
    let mut r = rng(10);
    for (seed, bits, relu) in [(11, 8, false), (12, 8, true), (13, 4, false), (14, 6, true)] {
        let l = random_linear(seed, 64, 300, bits, relu);
        let batch = 32;
        let x = random_u8(&mut r, batch * 300);
        let int = l.forward(&x, batch, Kernel::Auto).unwrap();
        let sim = l.simulate(&x, batch).unwrap();
        let (max, frac) = code_diff(&int, &sim);
        assert!(max <= MAX_CODE_DIFF && frac <= MAX_CODE_MISMATCH, "{bits} bits relu={relu}: max diff {max}, {frac:.4} differ");
        if relu {
            assert!(int.iter().all(|&q| q as i32 >= l.output_params().zero_point));
        }
        let acc = l.accumulate(&x, batch, Kernel::Portable).unwrap();
        assert_eq!(acc, l.accumulate(&x, batch, Kernel::Auto).unwrap());
        assert_eq!(l.requantize(&acc).unwrap(), int);
    }
}

#[test]
fn integer_linear_rejects_bad_layers_and_inputs() {
    let (ip, op) = (input_params(), output_params());
    let e = QuantizedLinear::new(&[1.0, f32::NAN], &[0.0], 1, 2, 8, ip, op, false).unwrap_err();
    assert!(is_config(&e), "{e}");
    assert!(is_config(&QuantizedLinear::new(&[1.0, 2.0], &[f32::INFINITY], 1, 2, 8, ip, op, false).unwrap_err()));
    assert!(is_shape(&QuantizedLinear::new(&[1.0, 2.0], &[0.0, 0.0], 1, 2, 8, ip, op, false).unwrap_err()));
    assert!(is_shape(&QuantizedLinear::new(&[1.0, 2.0, 3.0], &[0.0], 1, 2, 8, ip, op, false).unwrap_err()));
    assert!(is_config(&QuantizedLinear::new(&[1.0, 2.0], &[0.0], 1, 2, 9, ip, op, false).unwrap_err()));
    assert!(is_config(&QuantizedLinear::new(&[1.0, 2.0], &[0.0], 1, 2, 1, ip, op, false).unwrap_err()));
    let n = QuantizedLinear::MAX_INPUTS + 1;
    assert!(is_config(&QuantizedLinear::new(&vec![0.1; n], &[0.0], 1, n, 8, ip, op, false).unwrap_err()));
    let signed = QParams::from_range(-1.0, 1.0, 8, true).unwrap();
    assert!(is_config(&QuantizedLinear::new(&[1.0, 2.0], &[0.0], 1, 2, 8, signed, op, false).unwrap_err()));
    let zero_scale = QParams { scale: 0.0, ..op };
    assert!(is_config(&QuantizedLinear::new(&[1.0, 2.0], &[0.0], 1, 2, 8, ip, zero_scale, false).unwrap_err()));
    let l = QuantizedLinear::new(&[1.0, 2.0], &[0.0], 1, 2, 8, ip, op, false).unwrap();
    assert!(is_shape(&l.forward(&[1, 2, 3], 1, Kernel::Auto).unwrap_err()));
    assert!(is_shape(&l.forward(&[], 0, Kernel::Auto).unwrap_err()));
    assert!(is_shape(&l.simulate(&[1], 1).unwrap_err()));
    assert!(is_shape(&l.requantize(&[]).unwrap_err()));
    assert!(is_shape(&l.forward(&[1, 2], usize::MAX, Kernel::Auto).unwrap_err()), "a batch that overflows is an error");
    assert!(is_shape(&QuantizedTensor::quantize(&[usize::MAX, 2], &[1.0], per_tensor(8, true)).unwrap_err()));
}

// ---------------------------------------------------------------------------------------
// Quantized MLP

fn build<M: Classifier>(seed: u64) -> M {
    M::build(&Cpu::seed_from_u64(seed)).unwrap()
}

fn images(n: usize, seed: u64) -> Vec<f32> {
    let mut r = rng(seed);
    (0..n * 784).map(|_| r.gen_range(0.0f32..1.0)).collect()
}

fn float_logits<M: Classifier>(model: &M, x: &[f32], n: usize) -> Vec<f32> {
    let dev = Cpu::default();
    let t: Tensor<(usize, usize), f32, Cpu> = dev.tensor_from_vec(x.to_vec(), (n, M::INPUTS));
    model.logits(t).unwrap().as_vec()
}

#[test]
fn quantized_lenet300_layers_match_the_simulation_within_one_step() {
    let model: LeNet300 = build(42);
    let calib = vec![images(32, 1), images(32, 2)];
    let q = QuantizedMlp::from_model(&model, &Calibration::Batches(&calib), &QuantConfig::default()).unwrap();
    assert_eq!((q.inputs(), q.outputs(), q.names().to_vec()), (784, 10, vec!["fc1".to_string(), "fc2".into(), "fc3".into()]));
    assert_eq!(q.layers().iter().map(|l| l.relu()).collect::<Vec<_>>(), vec![true, true, false]);
    let input = q.input_params().unwrap();
    assert_eq!(input.zero_point, 0, "inputs in 0..1 need no zero point");
    assert!((input.scale - 1.0 / 255.0).abs() < 1e-4);

    let batch = 40;
    let x = images(batch, 3);
    let mut h = q.quantize_input(&x, batch).unwrap();
    for (i, l) in q.layers().iter().enumerate() {
        let int = l.forward(&h, batch, Kernel::Auto).unwrap();
        let (max, frac) = code_diff(&int, &l.simulate(&h, batch).unwrap());
        assert!(max <= MAX_CODE_DIFF && frac <= MAX_CODE_MISMATCH, "layer {i}: max diff {max}, {frac:.4} differ");
        assert_eq!(l.accumulate(&h, batch, Kernel::Portable).unwrap(), l.accumulate(&h, batch, Kernel::Auto).unwrap());
        h = int;
    }
    assert_eq!(q.forward_codes(&q.quantize_input(&x, batch).unwrap(), batch).unwrap(), h);
    let portable = q.clone().with_kernel(Kernel::Portable).unwrap();
    assert_eq!(portable.logits(&x, batch).unwrap(), q.logits(&x, batch).unwrap(), "kernels give the same bits");

    // dequantized logits follow the float model; the last layer's step bounds the rounding
    let step = q.layers()[2].output_params().scale;
    let (ql, fl) = (q.logits(&x, batch).unwrap(), float_logits(&model, &x, batch));
    let e = QuantError::between(&fl, &ql).unwrap();
    let spread = fl.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    eprintln!("untrained LeNet-300-100, int8 vs float logits: max |err| {:.5} ({:.1} output steps, range ±{spread:.4}), SQNR {:.1} dB", e.max_abs, e.max_abs / step as f64, e.sqnr_db);
    assert!(e.sqnr_db >= LOGIT_MIN_SQNR_DB, "logit SQNR {} dB", e.sqnr_db);
}

#[test]
fn quantized_mlp_is_deterministic_and_accepts_every_observer_and_ranges() {
    let model: LeNet300 = build(43);
    let calib = vec![images(16, 4)];
    let x = images(8, 5);
    let cfg = QuantConfig::default();
    let a = QuantizedMlp::from_model(&model, &Calibration::Batches(&calib), &cfg).unwrap();
    let b = QuantizedMlp::from_model(&model, &Calibration::Batches(&calib), &cfg).unwrap();
    assert_eq!(a, b);
    let kinds = [
        ObserverKind::MovingAverage { momentum: 0.9 },
        ObserverKind::Percentile(Percentile::Abs(99.99)),
        ObserverKind::Mse { candidates: 20 },
    ];
    for observer in kinds {
        let q = QuantizedMlp::from_model(&model, &Calibration::Batches(&calib), &QuantConfig { observer, ..cfg }).unwrap();
        assert_eq!(q.predict(&x, 8).unwrap().len(), 8);
    }
    let ranges = [(0.0, 1.0), (0.0, 2.0), (0.0, 2.0), (-1.0, 1.0)];
    let q = QuantizedMlp::from_model(&model, &Calibration::Ranges(&ranges), &QuantConfig { weight_bits: 4, ..cfg }).unwrap();
    assert_eq!(q.layers()[1].input_params(), QParams::from_range(0.0, 2.0, 8, false).unwrap());
    assert_eq!(q.layers()[0].weight_params()[0].qmax, 7);
    let preds = q.predict(&x, 8).unwrap();
    assert!(preds.iter().all(|&p| p < 10));
}

#[test]
fn quantized_mlp_rejects_bad_calibration_and_inputs() {
    let model: LeNet300 = build(44);
    let cfg = QuantConfig::default();
    let calib = vec![images(4, 6)];
    let from = |c: &Calibration, cfg: &QuantConfig| QuantizedMlp::from_model(&model, c, cfg);
    assert!(is_config(&from(&Calibration::Batches(&[]), &cfg).unwrap_err()));
    assert!(is_shape(&from(&Calibration::Batches(&[vec![0.5; 783]]), &cfg).unwrap_err()));
    assert!(is_shape(&from(&Calibration::Batches(&[vec![]]), &cfg).unwrap_err()));
    let mut nan = calib[0].clone();
    nan[17] = f32::NAN;
    assert!(is_config(&from(&Calibration::Batches(&[nan]), &cfg).unwrap_err()));
    assert!(is_shape(&from(&Calibration::Ranges(&[(0.0, 1.0)]), &cfg).unwrap_err()));
    assert!(is_config(&from(&Calibration::Ranges(&[(0.0, 1.0), (0.0, f32::NAN), (0.0, 1.0), (0.0, 1.0)]), &cfg).unwrap_err()));
    for bits in [1, 9] {
        assert!(is_config(&from(&Calibration::Batches(&calib), &QuantConfig { weight_bits: bits, ..cfg }).unwrap_err()));
        assert!(is_config(&from(&Calibration::Batches(&calib), &QuantConfig { activation_bits: bits, ..cfg }).unwrap_err()));
    }
    let q = from(&Calibration::Batches(&calib), &cfg).unwrap();
    assert!(is_shape(&q.predict(&[0.5; 783], 1).unwrap_err()));
    assert!(is_shape(&q.logits(&[], 0).unwrap_err()));
    let mut x = images(1, 7);
    x[3] = f32::INFINITY;
    assert!(is_config(&q.predict(&x, 1).unwrap_err()));
    let e = QuantizedMlp::from_tensors(&[("fc1.weight".into(), vec![2, 3], vec![0.0; 6])], &Calibration::Batches(&calib), &cfg).unwrap_err();
    assert!(is_config(&e), "{e}");
}

fn pixels(d: &Dataset) -> Vec<f32> {
    d.images().iter().map(|&p| p as f32 / 255.0).collect()
}

fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) }).0
}

#[test]
fn int8_lenet300_keeps_the_float_accuracy_after_training() {
    let cfg = TrainConfig::default().with_progress(false).with_batch_size(32);
    let mut s = Session::new(Arch::LeNet300, train_2k().clone(), None, cfg).unwrap();
    s.fit(2).unwrap();
    let model = s.typed::<LeNet300>().unwrap().model().clone();
    let train = pixels(&train_2k().shuffled(3));
    let calib: Vec<Vec<f32>> = train.chunks(128 * 784).take(2).map(<[f32]>::to_vec).collect();
    let q = QuantizedMlp::from_model(&model, &Calibration::Batches(&calib), &QuantConfig::default()).unwrap();

    let test = test_500();
    let x = pixels(test);
    let n = test.len();
    let float: Vec<usize> = predict_logits(&model, test, 100).unwrap().chunks(10).map(argmax).collect();
    let int = q.predict(&x, n).unwrap();
    let acc = |p: &[usize]| p.iter().zip(test.labels()).filter(|(a, b)| **a == **b as usize).count() as f64 / n as f64;
    let fl = predict_logits(&model, test, 100).unwrap();
    let e = QuantError::between(&fl, &q.logits(&x, n).unwrap()).unwrap();
    eprintln!("trained LeNet-300-100, int8 vs float logits: max |err| {:.4}, SQNR {:.1} dB", e.max_abs, e.sqnr_db);
    assert!(e.sqnr_db >= LOGIT_MIN_SQNR_DB, "logit SQNR {} dB", e.sqnr_db);
    let agree = float.iter().zip(&int).filter(|(a, b)| a == b).count() as f64 / n as f64;
    eprintln!("float accuracy {:.3}, int8 accuracy {:.3}, agreement {agree:.3}", acc(&float), acc(&int));
    assert!(acc(&float) > 0.6, "the float model trained: {}", acc(&float));
    assert!(acc(&int) >= acc(&float) - INT8_ACCURACY_DROP, "int8 {} vs float {}", acc(&int), acc(&float));
    assert!(agree >= INT8_AGREEMENT, "agreement {agree}");
}

// ---------------------------------------------------------------------------------------
// k-means weight sharing

fn km(bits: u8) -> KMeansConfig {
    KMeansConfig { bits, ..KMeansConfig::default() }
}

#[test]
fn kmeans_on_a_hand_computed_tensor() {
    // linear init over [-1, 1]: -1, -1/3, 1/3, 1; one Lloyd step moves them to the cluster
    // means, the second changes nothing
    let w = [0.1, 0.2, 0.9, 1.0, -1.0, -0.9];
    let s = SharedWeights::fit(&[2, 3], &w, &km(2)).unwrap();
    assert_eq!(s.zero_code, None);
    assert_eq!((s.iterations, s.converged), (2, true));
    let want = [-0.95, -1.0 / 3.0, 0.15, 0.95];
    for (c, e) in s.centroids.iter().zip(want) {
        assert!((c - e).abs() < 1e-6, "{:?}", s.centroids);
    }
    assert_eq!(s.indices, vec![2, 2, 3, 3, 0, 0]);
    assert_eq!(s.cluster_sizes(), vec![2, 0, 2, 2], "the middle-negative cluster is empty and stays put");
    let r = s.reconstruct();
    for (a, e) in r.iter().zip([0.15, 0.15, 0.95, 0.95, -0.95, -0.95]) {
        assert!((a - e).abs() < 1e-6);
    }
    // linear initialisation alone
    let init = SharedWeights::fit(&[6], &w, &KMeansConfig { bits: 2, max_iters: 0, tol: 0.0 }).unwrap();
    assert_eq!((init.iterations, init.converged), (0, false));
    assert!((init.centroids[1] + 1.0 / 3.0).abs() < 1e-6 && init.centroids[3] == 1.0);
}

#[test]
fn kmeans_keeps_pruned_weights_exactly_zero() {
    let w = [0.0, 0.5, 0.0, -0.5, 0.6, 0.0];
    let s = SharedWeights::fit(&[6], &w, &km(2)).unwrap();
    assert_eq!(s.zero_code, Some(0));
    assert_eq!((s.centroids.len(), s.centroids[0].to_bits()), (4, 0));
    assert_eq!(s.indices, vec![0, 3, 0, 1, 3, 0]);
    let r = s.reconstruct();
    for (i, (&orig, rec)) in w.iter().zip(&r).enumerate() {
        if orig == 0.0 {
            assert_eq!(rec.to_bits(), 0, "weight {i}");
        }
    }
    assert!((r[1] - 0.55).abs() < 1e-6 && (r[3] + 0.5).abs() < 1e-6);
    // a larger pruned tensor: zeros stay zero, non-zeros never map to the zero code
    let mut rg = rng(15);
    let v: Vec<f32> = normal(&mut rg, 5000, 0.1).into_iter().enumerate().map(|(i, x)| if i % 3 == 0 { 0.0 } else { x }).collect();
    let s = SharedWeights::fit(&[50, 100], &v, &km(4)).unwrap();
    for ((&orig, &idx), rec) in v.iter().zip(&s.indices).zip(s.reconstruct()) {
        assert_eq!(orig == 0.0, idx == 0);
        assert_eq!(orig == 0.0, rec == 0.0);
    }
    let all_zero = SharedWeights::fit(&[3], &[0.0; 3], &km(3)).unwrap();
    assert!(all_zero.reconstruct().iter().all(|v| v.to_bits() == 0));
}

#[test]
fn kmeans_is_deterministic_and_lloyd_lowers_the_error() {
    let mut r = rng(16);
    let w = normal(&mut r, 20_000, 0.05);
    let cfg = KMeansConfig { bits: 4, max_iters: 100, tol: 1e-9 };
    let a = SharedWeights::fit(&[20_000], &w, &cfg).unwrap();
    let b = SharedWeights::fit(&[20_000], &w, &cfg).unwrap();
    assert_eq!(a, b, "same input, same bits");
    let init = SharedWeights::fit(&[20_000], &w, &KMeansConfig { max_iters: 0, ..cfg }).unwrap();
    let (e_fit, e_init) = (QuantError::between(&w, &a.reconstruct()).unwrap(), QuantError::between(&w, &init.reconstruct()).unwrap());
    assert!(e_fit.mse < e_init.mse, "Lloyd {} vs linear init {}", e_fit.mse, e_init.mse);
    assert!(a.iterations <= 100 && a.centroids.windows(2).all(|c| c[0] <= c[1]));
    // 4-bit k-means beats 4-bit uniform quantization on Gaussian weights
    let u = QuantizedTensor::quantize(&[20_000], &w, per_tensor(4, false)).unwrap();
    assert!(e_fit.mse < u.error(&w).unwrap().mse);
}

#[test]
fn fine_tuning_moves_each_centroid_by_its_clusters_summed_gradient() {
    let w = [0.1, 0.2, 0.9, 1.0, -1.0, 0.0];
    let mut s = SharedWeights::fit(&[6], &w, &km(2)).unwrap();
    // zero code 0; non-zeros: init over [-1, 1] with 3 centroids -1, 0, 1 -> clusters
    // {-1}, {0.1, 0.2}, {0.9, 1.0}
    assert_eq!(s.indices, vec![2, 2, 3, 3, 1, 0]);
    let before = s.centroids.clone();
    s.fine_tune_centroids(&[1.0, 1.0, 0.5, 0.5, -2.0, 7.0], 0.1).unwrap();
    assert_eq!(s.centroids[0].to_bits(), 0, "the zero code does not move");
    let expect = [0.0, before[1] + 0.2, before[2] - 0.2, before[3] - 0.1];
    for (c, e) in s.centroids.iter().zip(expect) {
        assert!((c - e).abs() < 1e-6, "{:?} vs {expect:?}", s.centroids);
    }
    assert!(is_shape(&s.fine_tune_centroids(&[1.0], 0.1).unwrap_err()));
    assert!(is_config(&s.fine_tune_centroids(&[f32::NAN; 6], 0.1).unwrap_err()));
    assert!(is_config(&s.fine_tune_centroids(&[0.0; 6], f32::INFINITY).unwrap_err()));
}

#[test]
fn kmeans_rejects_bad_settings_and_weights() {
    for bits in [0, 1, 9] {
        assert!(is_config(&SharedWeights::fit(&[2], &[1.0, 2.0], &km(bits)).unwrap_err()), "bits {bits}");
    }
    assert!(is_config(&SharedWeights::fit(&[2], &[1.0, f32::NAN], &km(4)).unwrap_err()));
    assert!(is_shape(&SharedWeights::fit(&[3], &[1.0, 2.0], &km(4)).unwrap_err()));
    assert!(is_shape(&SharedWeights::fit(&[0], &[], &km(4)).unwrap_err()));
    for tol in [-1.0, f64::NAN, f64::INFINITY] {
        assert!(is_config(&SharedWeights::fit(&[2], &[1.0, 2.0], &KMeansConfig { tol, ..km(4) }).unwrap_err()));
    }
}

// ---------------------------------------------------------------------------------------
// Size accounting

#[test]
fn sizes_count_codes_scales_zero_points_and_codebooks() {
    let mut r = rng(17);
    let w = normal(&mut r, 300 * 784, 0.05);
    let t8 = QuantizedTensor::quantize(&[300, 784], &w, QScheme::int8_weights()).unwrap();
    let row = LayerBytes::affine("fc1.weight", &t8);
    assert_eq!((row.data_bytes, row.scale_bytes, row.zero_point_bytes, row.float_bytes), (235_200, 1200, 0, 940_800));
    assert_eq!(row.total(), 236_400);
    let t4 = QuantizedTensor::quantize(&[300, 784], &w, QScheme::new(4, true, Granularity::PerChannel).unwrap()).unwrap();
    assert_eq!(LayerBytes::affine("fc1.weight", &t4).data_bytes, 117_600);
    let t3 = QuantizedTensor::quantize(&[10], &w[..10], per_tensor(3, false)).unwrap();
    let row = LayerBytes::affine("t", &t3);
    assert_eq!((row.data_bytes, row.scale_bytes, row.zero_point_bytes), (4, 4, 1), "30 bits -> 4 bytes");
    let s = SharedWeights::fit(&[1000], &w[..1000], &km(5)).unwrap();
    let row = LayerBytes::kmeans("k", &s);
    assert_eq!((row.data_bytes, row.codebook_bytes, row.total()), (625, 128, 753));
    let s = SharedWeights::fit(&[3], &w[..3], &km(2)).unwrap();
    assert_eq!(LayerBytes::kmeans("k", &s).data_bytes, 1);
    let total = QuantSize { layers: vec![LayerBytes::affine("fc1.weight", &t8), LayerBytes::float("fc1.bias", 300)] };
    assert_eq!((total.total(), total.float_total()), (236_400 + 1200, 940_800 + 1200));
    assert!(total.get("fc1.bias").is_some() && total.get("fc9").is_none());
}

#[test]
fn int8_lenet300_takes_about_a_quarter_of_the_float_bytes() {
    let model: LeNet300 = build(45);
    let q = QuantizedMlp::from_model(&model, &Calibration::Ranges(&[(0.0, 1.0); 4]), &QuantConfig::default()).unwrap();
    let size = q.size();
    let paths: Vec<&str> = size.layers.iter().map(|l| l.path.as_str()).collect();
    assert_eq!(paths, ["input", "fc1.weight", "fc1.bias", "fc1.output", "fc2.weight", "fc2.bias", "fc2.output", "fc3.weight", "fc3.bias", "fc3.output"]);
    // codes 266 200, weight scales 4·410, i32 biases 4·410, 4 activation quantizers × 5 bytes
    assert_eq!(size.total(), 266_200 + 1640 + 1640 + 20);
    assert_eq!(size.float_total(), 4 * 266_610);
    assert!((size.ratio() - 1_066_440.0 / 269_500.0).abs() < 1e-12);
}

#[test]
fn avx2_gemm_and_vector_requantization_equal_the_portable_layer_bit_for_bit() {
    if !avx2_available() {
        eprintln!("skipped: this CPU has no AVX2");
        return;
    }
    // Channel scales over eight decades give requantization shifts from 0 to 31 in the first
    // two layers (the vector path) and shifts below 0 or above 31 in the last two (the scalar
    // path, which the vector one must equal wherever it runs); large
    // inputs, weights and biases give accumulators of either sign up to ~2^29.
    let mut r = rng(31);
    let mut shifts = std::collections::BTreeSet::new();
    for (case, (outputs, inputs, out_scale, relu, zp)) in
        [(37, 4096, 0.025f32, false, 0), (21, 100, 0.03, true, 37), (9, 25, 1e-3, false, 255), (16, 784, 1.0, true, 3)].into_iter().enumerate()
    {
        let w: Vec<i8> = random_i8(&mut r, outputs * inputs).into_iter().map(|v| v.max(-127)).collect();
        let params: Vec<QParams> = (0..outputs)
            .map(|c| QParams { scale: 10f32.powf(-((c % 9) as f32)) * 0.37, zero_point: 0, qmin: -127, qmax: 127, bits: 8 })
            .collect();
        let bias: Vec<i32> = (0..outputs).map(|_| r.gen_range(-(1 << 29)..(1 << 29))).collect();
        let input = QParams { scale: 0.05, zero_point: if case % 2 == 0 { 128 } else { 0 }, qmin: 0, qmax: 255, bits: 8 };
        let output = QParams { scale: out_scale, zero_point: zp, qmin: 0, qmax: 255, bits: 8 };
        let Ok(layer) = QuantizedLinear::from_codes(inputs, outputs, w, params, bias, input, output, relu) else {
            panic!("case {case}: the layer should build");
        };
        shifts.extend(layer.multipliers().iter().map(|m| m.shift));
        for batch in [1, 5, 33] {
            for seven in [false, true] {
                let x: Vec<u8> = random_u8(&mut r, batch * inputs).into_iter().map(|v| if seven { v / 2 } else { v }).collect();
                let scalar = layer.requantize(&layer.accumulate(&x, batch, Kernel::Portable).unwrap()).unwrap();
                assert_eq!(layer.forward(&x, batch, Kernel::Portable).unwrap(), scalar, "case {case}, batch {batch}");
                assert_eq!(layer.forward(&x, batch, Kernel::Avx2).unwrap(), scalar, "case {case}, batch {batch}, 7-bit {seven}");
            }
        }
    }
    assert!(shifts.iter().any(|&s| s < 0) && shifts.contains(&0) && shifts.iter().any(|&s| (29..=31).contains(&s)) && shifts.iter().any(|&s| s > 31), "shifts covered: {shifts:?}");
}

#[test]
fn quantize_rounds_exactly_like_f64_round_on_ties_extremes_and_random_values() {
    // the reference: clamp(round(x / S) + Z, qmin, qmax) with f64::round (ties away from 0)
    let reference = |p: &QParams, x: f32| -> i32 {
        let v = (x as f64 / p.scale as f64).round() + p.zero_point as f64;
        if v.is_nan() {
            p.zero_point
        } else {
            v.clamp(p.qmin as f64, p.qmax as f64) as i32
        }
    };
    let params = [
        QParams { scale: 0.5, zero_point: 3, qmin: 0, qmax: 255, bits: 8 },
        QParams { scale: 0.25, zero_point: 0, qmin: -127, qmax: 127, bits: 8 },
        QParams { scale: 1.0 / 255.0, zero_point: 0, qmin: 0, qmax: 255, bits: 8 },
        QParams { scale: 3e-38, zero_point: 7, qmin: 0, qmax: 15, bits: 4 },
    ];
    let mut r = rng(44);
    let mut values: Vec<f32> = vec![0.0, -0.0, 0.25, -0.25, 0.75, -0.75, 1.25, -1.25, 63.75, -63.75, f32::MAX, f32::MIN, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1e-45, -1e-45];
    values.extend((0..20_000).map(|_| (r.gen::<f32>() - 0.5) * 300.0));
    values.extend((-600..600).map(|k| k as f32 * 0.125));
    for p in &params {
        for &x in &values {
            assert_eq!(p.quantize(x), reference(p, x), "x = {x:e}, scale {}", p.scale);
        }
    }
    // literal ties: 1.25 / 0.5 = 2.5 → 3 (+ Z 3 = 6); −1.25 / 0.5 = −2.5 → −3 (+ 3 = 0)
    assert_eq!(params[0].quantize(1.25), 6);
    assert_eq!(params[0].quantize(-1.25), 0);
    assert_eq!(params[1].quantize(-0.375), -2);
}
