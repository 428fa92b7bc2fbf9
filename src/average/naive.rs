//! Sequential, element-by-element twins of `reduce.rs`: the reference the parallel versions are
//! tested against, and the CPU reference for the CUDA kernels. Written for obviousness, not speed;
//! each performs the same f32 operations in the same order per element as its fast twin.

// Index loops on purpose: `x[j]` over `j` reads like the math it checks.
#![allow(clippy::needless_range_loop)]

use super::weights::Weights;
use crate::model::LayerEntry;

/// Per-layer sum of squares, one f64 accumulator per layer.
pub fn naive_layer_sumsq(x: &[f32], table: &[LayerEntry]) -> Vec<f64> {
    super::cache_pieces::check_table(table, x.len());
    let mut out = vec![0.0f64; table.len()];
    for (l, e) in table.iter().enumerate() {
        for j in e.offset..e.offset + e.len {
            out[l] += f64::from(x[j]) * f64::from(x[j]);
        }
    }
    out
}

/// `out[j] = sum_i w_{i,layer(j)} x_i[j]`, summed from worker 0 up.
pub fn naive_weighted_center(
    xs: &[&[f32]],
    weights: &Weights,
    table: &[LayerEntry],
    out: &mut [f32],
) {
    super::cache_pieces::check_table(table, out.len());
    for (l, e) in table.iter().enumerate() {
        for j in e.offset..e.offset + e.len {
            let mut acc = weights.weight(0, l) * xs[0][j];
            for (i, x) in xs.iter().enumerate().skip(1) {
                acc += weights.weight(i, l) * x[j];
            }
            out[j] = acc;
        }
    }
}

/// `x[j] = (1 - lambda) x[j] + lambda c[j]`.
pub fn naive_pull(x: &mut [f32], center: &[f32], lambda: f32) {
    assert_eq!(x.len(), center.len());
    for j in 0..x.len() {
        x[j] = (1.0 - lambda) * x[j] + lambda * center[j];
    }
}

/// The center, then every worker pulled toward it.
pub fn naive_center_and_pull(
    xs: &mut [&mut [f32]],
    weights: &Weights,
    table: &[LayerEntry],
    center_out: &mut [f32],
    lambda: f32,
) {
    let shared: Vec<&[f32]> = xs.iter().map(|x| &**x).collect();
    naive_weighted_center(&shared, weights, table, center_out);
    for x in xs.iter_mut() {
        naive_pull(x, center_out, lambda);
    }
}

/// One EASGD round, element by element: the mean is taken before any worker moves.
pub fn naive_easgd_round(xs: &mut [&mut [f32]], center: &mut [f32], beta: f32) {
    let m = xs.len() as f32;
    for j in 0..center.len() {
        let c_old = center[j];
        let mut sum = xs[0][j];
        for x in xs.iter().skip(1) {
            sum += x[j];
        }
        for x in xs.iter_mut() {
            x[j] = (1.0 - beta / m) * x[j] + (beta / m) * c_old;
        }
        center[j] = (1.0 - beta) * c_old + beta * (sum / m);
    }
}

/// `out[j] = (sum_i x_i[j]) / M`.
pub fn naive_uniform_average(xs: &[&[f32]], out: &mut [f32]) {
    let m = xs.len() as f32;
    for j in 0..out.len() {
        let mut sum = xs[0][j];
        for x in xs.iter().skip(1) {
            sum += x[j];
        }
        out[j] = sum / m;
    }
}
