//! GRAWA weighting, centering and pulling against numbers derived by hand (derivations beside
//! each test), plus the edge cases of the weighting rule.

use grawa_train::algo::{
    inverse_weights, layer_norms, lgrawa_weights, mgrawa_weights, model_norm, AccumulatedNorms,
    NormSmoother, DEFAULT_ACCUMULATED_BETA, DEFAULT_NORM_MOMENTUM,
};
use grawa_train::average::{center_and_pull, layer_sumsq, pull, weighted_center, Weights};
use grawa_train::model::LayerEntry;

fn table(lens: &[usize]) -> Vec<LayerEntry> {
    let mut offset = 0;
    lens.iter()
        .enumerate()
        .map(|(l, &len)| {
            let e = LayerEntry {
                name: format!("layer{l}"),
                offset,
                len,
            };
            offset += len;
            e
        })
        .collect()
}

fn assert_close(got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= rel * w.abs().max(1e-300),
            "got {got:?}, want {want:?}"
        );
    }
}

fn assert_close32(got: &[f32], want: &[f64]) {
    // f32 storage: 1e-6 relative is a few ulps of the values involved.
    let got: Vec<f64> = got.iter().map(|v| f64::from(*v)).collect();
    assert_close(&got, want, 1e-6);
}

fn per_worker(w: &Weights) -> Vec<f64> {
    match w {
        Weights::PerWorker(w) => w.iter().map(|v| f64::from(*v)).collect(),
        other => panic!("expected per-worker weights, got {other:?}"),
    }
}

/// Norms 1, 2, 4. Power 1: inverses 1, 1/2, 1/4 sum to 7/4, so w = 4/7, 2/7, 1/7.
/// Power 2: inverses 1, 1/4, 1/16 sum to 21/16, so w = 16/21, 4/21, 1/21.
#[test]
fn inverse_norm_weights_power_one_and_two() {
    assert_close(
        &inverse_weights(&[1.0, 2.0, 4.0], 1.0),
        &[4.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0],
        1e-15,
    );
    assert_close(
        &inverse_weights(&[1.0, 2.0, 4.0], 2.0),
        &[16.0 / 21.0, 4.0 / 21.0, 1.0 / 21.0],
        1e-15,
    );
    assert_close32(
        &per_worker(&mgrawa_weights(&[1.0, 2.0, 4.0], 1.0))
            .iter()
            .map(|v| *v as f32)
            .collect::<Vec<_>>(),
        &[4.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0],
    );
}

/// Workers x0 = [1, 0], x1 = [8, 7], x2 = [-7, 7], one layer.
/// Weights 4/7, 2/7, 1/7: c = [(4 + 16 - 7)/7, (0 + 14 + 7)/7] = [13/7, 3].
/// Pull with lambda 0.5 (the midpoint): x0 = [(1 + 13/7)/2, 1.5] = [10/7, 1.5],
/// x1 = [(8 + 13/7)/2, 5] = [69/14, 5], x2 = [(-7 + 13/7)/2, 5] = [-18/7, 5].
/// Weights 16/21, 4/21, 1/21: c = [(16 + 32 - 7)/21, (0 + 28 + 7)/21] = [41/21, 5/3].
#[test]
fn center_and_pull_match_hand_derivation() {
    let t = table(&[2]);
    let (x0, x1, x2) = ([1.0f32, 0.0], [8.0f32, 7.0], [-7.0f32, 7.0]);
    let w = mgrawa_weights(&[1.0, 2.0, 4.0], 1.0);

    let mut c = [0.0f32; 2];
    weighted_center(&[&x0, &x1, &x2], &w, &t, &mut c);
    assert_close32(&c, &[13.0 / 7.0, 3.0]);

    let mut y0 = x0;
    pull(&mut y0, &c, 0.5);
    assert_close32(&y0, &[10.0 / 7.0, 1.5]);

    let (mut a, mut b, mut d) = (x0, x1, x2);
    let mut fused = [0.0f32; 2];
    center_and_pull(&mut [&mut a, &mut b, &mut d], &w, &t, &mut fused, 0.5);
    assert_close32(&fused, &[13.0 / 7.0, 3.0]);
    assert_close32(&a, &[10.0 / 7.0, 1.5]);
    assert_close32(&b, &[69.0 / 14.0, 5.0]);
    assert_close32(&d, &[-18.0 / 7.0, 5.0]);

    let w2 = mgrawa_weights(&[1.0, 2.0, 4.0], 2.0);
    weighted_center(&[&x0, &x1, &x2], &w2, &t, &mut c);
    assert_close32(&c, &[41.0 / 21.0, 5.0 / 3.0]);
}

/// The proximal step is the pull with lambda = p/tau: p = 0.01, tau = 32 gives lambda = 3.125e-4;
/// x = 2, z = 0: x = (1 - 3.125e-4) * 2 = 1.999375.
#[test]
fn proximal_pull_is_a_small_pull() {
    let mut x = [2.0f32];
    pull(&mut x, &[0.0], 0.01 / 32.0);
    assert_close32(&x, &[1.999375]);
}

/// m = 0.9^8 = 0.43046721, 1 - m = 0.56953279; norms 2, 4, 1 at rounds 1, 2, 3.
/// k=1: v = 0.56953279 * 2 = 1.13906558; 1 - m = 0.56953279; vhat = 2.
/// k=2: v = 0.43046721 * 1.13906558 + 0.56953279 * 4 = 0.49033038 + 2.27813116 = 2.76846154223;
///      1 - m^2 = 0.81469798111; vhat = 3.39814459641.
/// k=3: v = 0.43046721 * 2.76846154223 + 0.56953279 = 1.76126470608;
///      1 - m^3 = 0.92023355692; vhat = 1.91393227602.
/// (Computed exactly with Python's fractions.Fraction, rounded to 12 significant digits.)
#[test]
fn bias_correction_rounds_one_to_three() {
    // The literal is 0.9^8 exactly in decimal; powi(8) of the double 0.9 lands one ulp off.
    assert!((DEFAULT_NORM_MOMENTUM - 0.9f64.powi(8)).abs() < 1e-15);
    let mut s = NormSmoother::new(1, DEFAULT_NORM_MOMENTUM);
    let steps = [
        (2.0, 1.13906558, 2.0),
        (4.0, 2.76846154223, 3.39814459641),
        (1.0, 1.76126470608, 1.91393227602),
    ];
    for (k, (n, v, vhat)) in steps.into_iter().enumerate() {
        let got = s.update(&[n]);
        assert_eq!(s.round, k as u64 + 1);
        assert_close(&s.v, &[v], 1e-11);
        assert_close(&got, &[vhat], 1e-11);
    }
}

/// A constant norm is its own bias-corrected average at every round: v_k = n (1 - m^k).
#[test]
fn bias_correction_is_exact_for_constant_norms() {
    let mut s = NormSmoother::new(2, DEFAULT_NORM_MOMENTUM);
    for _ in 0..10 {
        assert_close(&s.update(&[0.5, 3.0]), &[0.5, 3.0], 1e-14);
    }
}

/// Worker A's gradient x = [3, 4], worker B's [5, 0], one element per layer.
/// Layer norms A (3, 4), B (5, 0). Global norms: both 5, which would give 1/2, 1/2.
/// Sums of layer norms (MGRAWA): A 7, B 5, so w_A = (1/7) / (1/7 + 1/5) = 5/12, w_B = 7/12.
#[test]
fn mgrawa_uses_the_sum_of_layer_norms() {
    let t = table(&[1, 1]);
    let sums: Vec<f64> = [[3.0f32, 4.0], [5.0, 0.0]]
        .iter()
        .map(|g| model_norm(&layer_norms(&layer_sumsq(g, &t))))
        .collect();
    assert_close(&sums, &[7.0, 5.0], 1e-15);
    assert_close(
        &per_worker(&mgrawa_weights(&sums, 1.0)),
        &[5.0 / 12.0, 7.0 / 12.0],
        1e-6,
    );
}

/// vhat[worker][layer] = [[1, 4], [2, 2], [4, 1]].
/// Layer 0 weights from (1, 2, 4): 4/7, 2/7, 1/7. Layer 1 from (4, 2, 1): 1/7, 2/7, 4/7.
/// Worker-major layout: w = [4/7, 1/7, 2/7, 2/7, 1/7, 4/7].
/// Center of x0 = [1, 1], x1 = [8, 8], x2 = [-7, -7] (one element per layer):
/// c = [(4 + 16 - 7)/7, (1 + 16 - 28)/7] = [13/7, -11/7].
#[test]
fn lgrawa_weights_each_layer_separately() {
    let w = lgrawa_weights(&[vec![1.0, 4.0], vec![2.0, 2.0], vec![4.0, 1.0]], 1.0);
    let Weights::PerLayer { layers, w: ws } = &w else {
        panic!("expected per-layer weights, got {w:?}")
    };
    assert_eq!(*layers, 2);
    let ws: Vec<f64> = ws.iter().map(|v| f64::from(*v)).collect();
    assert_close(&ws, &[4.0, 1.0, 2.0, 2.0, 1.0, 4.0].map(|v| v / 7.0), 1e-6);
    for l in 0..2 {
        let sum: f64 = (0..3).map(|i| ws[i * 2 + l]).sum();
        assert!((sum - 1.0).abs() < 1e-6, "layer {l} sums to {sum}");
    }
    let mut c = [0.0f32; 2];
    weighted_center(
        &[&[1.0, 1.0], &[8.0, 8.0], &[-7.0, -7.0]],
        &w,
        &table(&[1, 1]),
        &mut c,
    );
    assert_close32(&c, &[13.0 / 7.0, -11.0 / 7.0]);
}

/// The documented rule: zero norms share all the weight; NaN, negative and infinite norms get 0;
/// nothing usable gives uniform weights; tiny norms do not overflow (1e-300^-2 would be inf).
#[test]
fn degenerate_norms_give_sane_weights() {
    let cases: [(&[f64], f64, &[f64]); 8] = [
        (&[0.0, 2.0, 0.0], 1.0, &[0.5, 0.0, 0.5]),
        (&[0.0], 2.0, &[1.0]),
        (&[3.0, 3.0, 3.0, 3.0], 1.0, &[0.25; 4]),
        (&[f64::NAN, 1.0, f64::INFINITY], 1.0, &[0.0, 1.0, 0.0]),
        (&[f64::NAN, f64::NAN], 1.0, &[0.5, 0.5]),
        (&[-1.0, 2.0], 1.0, &[0.0, 1.0]),
        // 1/1e-300 : 1/2e-300 squared = 4 : 1.
        (&[1e-300, 2e-300], 2.0, &[0.8, 0.2]),
        (&[], 1.0, &[]),
    ];
    for (values, power, want) in cases {
        let got = inverse_weights(values, power);
        assert!(got.iter().all(|w| w.is_finite()), "{values:?} -> {got:?}");
        assert_close(&got, want, 1e-12);
        if !values.is_empty() {
            assert!((got.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }
    let w = lgrawa_weights(&[vec![0.0, 1.0], vec![0.0, 1.0]], 1.0);
    assert_eq!(
        w,
        Weights::PerLayer {
            layers: 2,
            w: vec![0.5; 4]
        }
    );
}

/// beta = 0.85. Push 1: e = 0.15 * 1 = 0.15; vhat = 0.15 / (1 - 0.85) = 1.
/// Push 3: e = 0.85 * 0.15 + 0.15 * 3 = 0.5775; vhat = 0.5775 / (1 - 0.7225) = 77/37 = 2.0810810...
/// After reset: zeros, then a single push of 5 is returned as 5.
#[test]
fn accumulated_norms_bias_corrected_and_reset() {
    let mut a = AccumulatedNorms::new(2, DEFAULT_ACCUMULATED_BETA);
    assert_eq!(a.value(), vec![0.0, 0.0]);
    a.push(&[1.0, 2.0]);
    assert_close(&a.value(), &[1.0, 2.0], 1e-14);
    a.push(&[3.0, 2.0]);
    assert_close(&a.value(), &[77.0 / 37.0, 2.0], 1e-14);
    assert_eq!(a.steps(), 2);
    a.reset();
    assert_eq!((a.value(), a.steps()), (vec![0.0, 0.0], 0));
    a.push(&[5.0, 0.5]);
    assert_close(&a.value(), &[5.0, 0.5], 1e-14);
}

#[test]
#[should_panic(expected = "layer table covers 3 elements but the buffer has 4")]
fn a_table_that_does_not_cover_the_buffer_panics() {
    let mut c = [0.0f32; 4];
    weighted_center(&[&[1.0; 4]], &Weights::uniform(1), &table(&[1, 2]), &mut c);
}
