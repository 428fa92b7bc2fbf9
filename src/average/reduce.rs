//! The round's reductions over flat f32 buffers, parallel over cache-sized pieces (see
//! `cache_pieces.rs`). Each has a sequential twin in `naive.rs` that tests compare against.
//!
//! Element-wise results are bit-identical to the twins: every output element is computed by the
//! same f32 operations in the same order (worker 0 first), only the loop nesting differs, and Rust
//! never contracts `a * b + c` into an FMA on its own. Only [`layer_sumsq`] reorders (per-piece f64
//! partial sums, 8 lanes), so it agrees with its twin to f64 rounding, not bit for bit.

use rayon::prelude::*;

use super::cache_pieces::{
    flat_pieces, layer_pieces, run, split_mut, split_workers, window_pieces, Piece, PARALLEL_MIN,
};
use super::weights::Weights;
use crate::model::LayerEntry;

/// Per-layer sum of squares of `x`, accumulated in f64 (f32 loses digits past ~1e7 terms).
pub fn layer_sumsq(x: &[f32], table: &[LayerEntry]) -> Vec<f64> {
    let pieces = layer_pieces(table, x.len());
    let partial = |p: &Piece| (p.layer, sumsq(&x[p.start..p.end]));
    let sums: Vec<(usize, f64)> = if x.len() >= PARALLEL_MIN {
        pieces.par_iter().map(partial).collect()
    } else {
        pieces.iter().map(partial).collect()
    };
    // Combined in piece order, so the result does not depend on the thread count.
    let mut out = vec![0.0; table.len()];
    for (l, s) in sums {
        out[l] += s;
    }
    out
}

/// f64 sum of squares with 8 independent accumulators: one serial chain would not vectorise.
fn sumsq(x: &[f32]) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += f64::from(*v) * f64::from(*v);
        }
    }
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|v| f64::from(*v).powi(2))
        .sum();
    acc.iter().sum::<f64>() + tail
}

/// `out = sum_i w_i x_i`, with layer l of the table using weights `weights.weight(i, l)`.
pub fn weighted_center(xs: &[&[f32]], weights: &Weights, table: &[LayerEntry], out: &mut [f32]) {
    check_lens(xs.iter().map(|x| x.len()), out.len());
    weighted_center_window(xs, weights, table, 0, out);
}

/// Elements `start .. start + out.len()` of [`weighted_center`], into `out`: one window of the
/// center, so a caller can hand each window on (to an all-reduce) while it is still in cache.
pub fn weighted_center_window(
    xs: &[&[f32]],
    weights: &Weights,
    table: &[LayerEntry],
    start: usize,
    out: &mut [f32],
) {
    let len = xs.first().map_or(0, |x| x.len());
    let cols = check_workers(xs.iter().map(|x| x.len()), weights, table, len);
    let total = xs.len() * out.len();
    let pieces = window_pieces(table, len, start, start + out.len());
    let items: Vec<_> = split_mut(out, &pieces).into_iter().zip(&pieces).collect();
    run(items, total, |(c, p)| {
        let parts: Vec<&[f32]> = xs.iter().map(|x| &x[p.start..p.end]).collect();
        center_piece(&parts, &cols[p.layer], c);
    });
}

/// `x <- (1 - lambda) x + lambda c`: the GRAWA/LSGD pull, and the proximal step with p/tau.
pub fn pull(x: &mut [f32], center: &[f32], lambda: f32) {
    assert_eq!(
        x.len(),
        center.len(),
        "pull: x has {} elements, center {}",
        x.len(),
        center.len()
    );
    let pieces = flat_pieces(x.len());
    let items: Vec<_> = split_mut(x, &pieces).into_iter().zip(&pieces).collect();
    run(items, center.len(), |(x, p)| {
        pull_piece(x, &center[p.start..p.end], lambda)
    });
}

/// [`weighted_center`] then [`pull`] of every worker toward it, fused: each piece's center is
/// built and applied while it is in cache, so every x is read from memory once and every x and the
/// center written once, instead of reading every x twice.
pub fn center_and_pull(
    xs: &mut [&mut [f32]],
    weights: &Weights,
    table: &[LayerEntry],
    center_out: &mut [f32],
    lambda: f32,
) {
    let cols = check_workers(xs.iter().map(|x| x.len()), weights, table, center_out.len());
    let pieces = layer_pieces(table, center_out.len());
    let total = xs.len() * center_out.len();
    let items: Vec<_> = split_workers(xs, &pieces)
        .into_iter()
        .zip(split_mut(center_out, &pieces))
        .zip(&pieces)
        .collect();
    run(items, total, |((mut parts, c), p)| {
        let shared: Vec<&[f32]> = parts.iter().map(|x| &**x).collect();
        center_piece(&shared, &cols[p.layer], c);
        for x in parts.iter_mut() {
            pull_piece(x, c, lambda);
        }
    });
}

/// One EASGD round with M = `xs.len()` workers (elastic averaging, Zhang et al. 2015):
/// `x_i <- (1 - beta/M) x_i + (beta/M) c_old`, `c <- (1 - beta) c_old + beta * mean_i(x_i)`,
/// where the mean is of the workers *before* their pull.
pub fn easgd_round(xs: &mut [&mut [f32]], center: &mut [f32], beta: f32) {
    check_lens(xs.iter().map(|x| x.len()), center.len());
    let pieces = flat_pieces(center.len());
    let total = xs.len() * center.len();
    let items: Vec<_> = split_workers(xs, &pieces)
        .into_iter()
        .zip(split_mut(center, &pieces))
        .collect();
    run(items, total, |(mut parts, c)| {
        easgd_piece(&mut parts, c, beta)
    });
}

/// `out = (sum_i x_i) / M`: local SGD's average, and the evaluated model.
pub fn uniform_average(xs: &[&[f32]], out: &mut [f32]) {
    sum_then(xs, out, Some(xs.len() as f32));
}

/// `out = sum_i x_i`, added from worker 0 up: an unscaled all-reduce-sum.
pub fn sum(xs: &[&[f32]], out: &mut [f32]) {
    sum_then(xs, out, None);
}

/// The sum of the workers, divided by `divisor` while each piece is still in cache.
fn sum_then(xs: &[&[f32]], out: &mut [f32], divisor: Option<f32>) {
    check_lens(xs.iter().map(|x| x.len()), out.len());
    let total = xs.len() * out.len();
    let pieces = flat_pieces(out.len());
    let items: Vec<_> = split_mut(out, &pieces).into_iter().zip(&pieces).collect();
    run(items, total, |(o, p)| {
        o.copy_from_slice(&xs[0][p.start..p.end]);
        for x in &xs[1..] {
            add_assign(o, &x[p.start..p.end]);
        }
        if let Some(m) = divisor {
            o.iter_mut().for_each(|v| *v /= m);
        }
    });
}

/// Panics unless there is at least one worker and every buffer has `len` elements.
fn check_lens(lens: impl Iterator<Item = usize>, len: usize) -> usize {
    let mut m = 0;
    for (i, l) in lens.enumerate() {
        assert_eq!(l, len, "worker {i} has {l} elements, expected {len}");
        m += 1;
    }
    assert!(m > 0, "an average needs at least one worker");
    m
}

/// [`check_lens`] plus the weights' shape; returns the weights layer-major.
fn check_workers(
    lens: impl Iterator<Item = usize>,
    weights: &Weights,
    table: &[LayerEntry],
    len: usize,
) -> Vec<Vec<f32>> {
    let m = check_lens(lens, len);
    weights.check(m, table.len());
    weights.by_layer(m, table.len())
}

/// `out = w_0 x_0 + w_1 x_1 + ...`, accumulated in that order (the naive twin's order). Plain f32:
/// a sum of M convex-weighted terms loses nothing worth an f64 pass.
fn center_piece(xs: &[&[f32]], w: &[f32], out: &mut [f32]) {
    for (o, v) in out.iter_mut().zip(xs[0]) {
        *o = w[0] * *v;
    }
    for (x, &wi) in xs.iter().zip(w).skip(1) {
        for (o, v) in out.iter_mut().zip(*x) {
            *o += wi * *v;
        }
    }
}

fn pull_piece(x: &mut [f32], c: &[f32], lambda: f32) {
    let keep = 1.0 - lambda;
    for (v, c) in x.iter_mut().zip(c) {
        *v = keep * *v + lambda * *c;
    }
}

fn add_assign(acc: &mut [f32], x: &[f32]) {
    for (a, v) in acc.iter_mut().zip(x) {
        *a += *v;
    }
}

/// EASGD on one piece, in blocks small enough for a stack buffer holding the workers' sum, which
/// must be taken before the workers are pulled.
fn easgd_piece(xs: &mut [&mut [f32]], c: &mut [f32], beta: f32) {
    const BLOCK: usize = 1024;
    let m = xs.len() as f32;
    let a = beta / m;
    let (keep, c_keep) = (1.0 - a, 1.0 - beta);
    let mut sum = [0.0f32; BLOCK];
    for start in (0..c.len()).step_by(BLOCK) {
        let end = (start + BLOCK).min(c.len());
        let s = &mut sum[..end - start];
        s.copy_from_slice(&xs[0][start..end]);
        for x in xs[1..].iter() {
            add_assign(s, &x[start..end]);
        }
        let c_old = &mut c[start..end];
        for x in xs.iter_mut() {
            pull_piece_with(&mut x[start..end], c_old, keep, a);
        }
        for (c, s) in c_old.iter_mut().zip(s.iter()) {
            *c = c_keep * *c + beta * (*s / m);
        }
    }
}

fn pull_piece_with(x: &mut [f32], c: &[f32], keep: f32, a: f32) {
    for (v, c) in x.iter_mut().zip(c) {
        *v = keep * *v + a * *c;
    }
}
