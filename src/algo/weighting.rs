//! GRAWA's weighting (Dimlioglu & Choromanska): flatter workers, i.e. those with smaller gradient
//! norms, get larger weights in the center. MGRAWA weighs whole models, LGRAWA each layer.
//! Norms come from `layer_sumsq` (probe gradient) or `AccumulatedNorms`, are smoothed by a
//! `NormSmoother`, and turned into weights here.

use crate::average::Weights;

/// Per-layer L2 norms from per-layer sums of squares.
pub fn layer_norms(sumsq: &[f64]) -> Vec<f64> {
    sumsq.iter().map(|s| s.sqrt()).collect()
}

/// MGRAWA's model norm: the SUM of the layer norms (docs/design.md section 2, step 2). Not the
/// global norm sqrt(sum of squares): the sum weighs a small layer's gradient as much as a large
/// one's.
pub fn model_norm(layer_norms: &[f64]) -> f64 {
    layer_norms.iter().sum()
}

/// `w_i = v_i^-power / sum_j v_j^-power`: inverse-norm weights summing to 1.
///
/// Edge cases, so that no input produces NaN:
/// - a NaN, negative or infinite value gets weight 0 (a diverged gradient must not steer);
/// - if any value is exactly 0, the zero-valued workers share all the weight equally (the limit
///   of the formula as their norms go to 0);
/// - if no value is usable (all NaN/negative/infinite), the weights are uniform;
/// - equal values give equal weights.
///
/// Computed as `(min / v_i)^power` over its sum, which is the same ratio but cannot overflow for
/// tiny norms or large powers.
pub fn inverse_weights(values: &[f64], power: f64) -> Vec<f64> {
    assert!(
        power.is_finite() && power > 0.0,
        "weight power must be positive, got {power}"
    );
    let usable = |v: f64| v.is_finite() && v >= 0.0;
    let n_usable = values.iter().filter(|v| usable(**v)).count();
    if n_usable == 0 {
        return vec![1.0 / values.len() as f64; values.len()];
    }
    let zeros = values.iter().filter(|v| **v == 0.0).count();
    if zeros > 0 {
        let share = 1.0 / zeros as f64;
        return values
            .iter()
            .map(|v| if *v == 0.0 { share } else { 0.0 })
            .collect();
    }
    let min = values
        .iter()
        .copied()
        .filter(|v| usable(*v))
        .fold(f64::INFINITY, f64::min);
    let raw: Vec<f64> = values
        .iter()
        .map(|v| {
            if usable(*v) {
                (min / v).powf(power)
            } else {
                0.0
            }
        })
        .collect();
    // The minimum's own term is 1, so the sum is at least 1.
    let sum: f64 = raw.iter().sum();
    raw.iter().map(|r| r / sum).collect()
}

/// MGRAWA: one weight per worker from its smoothed model norm (`model_norm` then smoothing).
pub fn mgrawa_weights(vhat_per_worker: &[f64], power: f64) -> Weights {
    let w = inverse_weights(vhat_per_worker, power);
    Weights::PerWorker(w.into_iter().map(|w| w as f32).collect())
}

/// LGRAWA: `vhat[i][l]` is worker i's smoothed norm of layer l; each layer is weighted on its
/// own, so each layer's weights sum to 1. Returned worker-major (`w[i * layers + l]`).
pub fn lgrawa_weights(vhat: &[Vec<f64>], power: f64) -> Weights {
    let layers = vhat.first().map_or(0, Vec::len);
    for (i, v) in vhat.iter().enumerate() {
        assert_eq!(
            v.len(),
            layers,
            "worker {i} has {} layer norms, worker 0 has {layers}",
            v.len()
        );
    }
    let mut w = vec![0.0f32; vhat.len() * layers];
    for l in 0..layers {
        let column: Vec<f64> = vhat.iter().map(|v| v[l]).collect();
        for (i, wi) in inverse_weights(&column, power).into_iter().enumerate() {
            w[i * layers + l] = wi as f32;
        }
    }
    Weights::PerLayer { layers, w }
}
