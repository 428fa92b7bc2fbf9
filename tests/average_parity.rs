//! Every parallel reduction against its sequential twin in `average::naive`, on random data of
//! odd sizes (1, 7, and 1000003: many cache pieces, layers straddling piece boundaries) with
//! random layer tables, including empty layers.
//!
//! Element-wise operations must agree bit for bit: both sides evaluate each output element with
//! the same f32 operations in the same order, only the loop order over elements differs.
//! `layer_sumsq` reassociates its f64 sum (8 lanes, per-piece partials), so it is compared to
//! 1e-9 relative: the worst-case reassociation error of 1e6 positive f64 terms is about
//! 1e6 * 1.1e-16 = 1.1e-10 relative.

use grawa_train::average::naive::{
    naive_center_and_pull, naive_easgd_round, naive_layer_sumsq, naive_pull, naive_uniform_average,
    naive_weighted_center,
};
use grawa_train::average::{
    center_and_pull, easgd_round, layer_sumsq, pull, uniform_average, weighted_center,
    weighted_center_window, Weights,
};
use grawa_train::model::LayerEntry;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

const SIZES: [usize; 3] = [1, 7, 1_000_003];

fn random_vec(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect()
}

/// Up to 25 layers with random cut points (repeated cuts make empty layers).
fn random_table(rng: &mut StdRng, n: usize) -> Vec<LayerEntry> {
    let layers = rng.random_range(1..=25);
    let mut cuts: Vec<usize> = (1..layers).map(|_| rng.random_range(0..=n)).collect();
    cuts.push(0);
    cuts.push(n);
    cuts.sort_unstable();
    cuts.windows(2)
        .enumerate()
        .map(|(l, c)| LayerEntry {
            name: format!("l{l}"),
            offset: c[0],
            len: c[1] - c[0],
        })
        .collect()
}

fn random_weights(rng: &mut StdRng, workers: usize, layers: usize, per_layer: bool) -> Weights {
    if per_layer {
        Weights::PerLayer {
            layers,
            w: (0..workers * layers).map(|_| rng.random::<f32>()).collect(),
        }
    } else {
        Weights::PerWorker((0..workers).map(|_| rng.random::<f32>()).collect())
    }
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn assert_same(got: &[f32], want: &[f32], what: &str, n: usize) {
    if bits(got) != bits(want) {
        let j = (0..n).find(|&j| got[j].to_bits() != want[j].to_bits());
        panic!("{what}, n = {n}: first difference at {j:?}");
    }
}

#[test]
fn layer_sumsq_matches_naive() {
    let mut rng = StdRng::seed_from_u64(1);
    for n in SIZES {
        let x = random_vec(&mut rng, n);
        let t = random_table(&mut rng, n);
        let (fast, slow) = (layer_sumsq(&x, &t), naive_layer_sumsq(&x, &t));
        assert_eq!(fast.len(), t.len());
        for (l, (f, s)) in fast.iter().zip(&slow).enumerate() {
            assert!(
                (f - s).abs() <= 1e-9 * s.abs(),
                "n = {n}, layer {l} ({} elements): {f} vs {s}",
                t[l].len
            );
        }
    }
}

#[test]
fn weighted_center_matches_naive() {
    let mut rng = StdRng::seed_from_u64(2);
    for n in SIZES {
        for (workers, per_layer) in [(1, false), (3, false), (4, true)] {
            let xs: Vec<Vec<f32>> = (0..workers).map(|_| random_vec(&mut rng, n)).collect();
            let refs: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
            let t = random_table(&mut rng, n);
            let w = random_weights(&mut rng, workers, t.len(), per_layer);
            let (mut fast, mut slow) = (vec![0.0; n], vec![0.0; n]);
            weighted_center(&refs, &w, &t, &mut fast);
            naive_weighted_center(&refs, &w, &t, &mut slow);
            assert_same(&fast, &slow, "weighted_center", n);
        }
    }
}

/// Windows of the center (a cross-rank all-reduce's chunks) put end to end are the naive center
/// bit for bit, with windows of odd sizes that start and end inside layers and pieces.
#[test]
fn weighted_center_windows_match_naive() {
    let mut rng = StdRng::seed_from_u64(12);
    for n in SIZES {
        for per_layer in [false, true] {
            let xs: Vec<Vec<f32>> = (0..3).map(|_| random_vec(&mut rng, n)).collect();
            let refs: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
            let t = random_table(&mut rng, n);
            let w = random_weights(&mut rng, 3, t.len(), per_layer);
            let mut slow = vec![0.0; n];
            naive_weighted_center(&refs, &w, &t, &mut slow);
            let mut joined = Vec::with_capacity(n);
            let mut start = 0;
            while start < n {
                let len = rng.random_range(1..=(n - start).min(70_001));
                let mut part = vec![f32::NAN; len];
                weighted_center_window(&refs, &w, &t, start, &mut part);
                joined.extend(part);
                start += len;
            }
            assert_same(&joined, &slow, "weighted_center_window", n);
        }
    }
}

#[test]
fn pull_matches_naive() {
    let mut rng = StdRng::seed_from_u64(3);
    for n in SIZES {
        let c = random_vec(&mut rng, n);
        let mut fast = random_vec(&mut rng, n);
        let mut slow = fast.clone();
        let lambda = rng.random::<f32>();
        pull(&mut fast, &c, lambda);
        naive_pull(&mut slow, &c, lambda);
        assert_same(&fast, &slow, "pull", n);
    }
}

#[test]
fn center_and_pull_matches_naive() {
    let mut rng = StdRng::seed_from_u64(4);
    for n in SIZES {
        for (workers, per_layer) in [(1, true), (3, false), (4, true)] {
            let mut fast: Vec<Vec<f32>> = (0..workers).map(|_| random_vec(&mut rng, n)).collect();
            let mut slow = fast.clone();
            let t = random_table(&mut rng, n);
            let w = random_weights(&mut rng, workers, t.len(), per_layer);
            let (mut cf, mut cs) = (vec![0.0; n], vec![0.0; n]);
            let mut ff: Vec<&mut [f32]> = fast.iter_mut().map(Vec::as_mut_slice).collect();
            let mut ss: Vec<&mut [f32]> = slow.iter_mut().map(Vec::as_mut_slice).collect();
            center_and_pull(&mut ff, &w, &t, &mut cf, 0.5);
            naive_center_and_pull(&mut ss, &w, &t, &mut cs, 0.5);
            assert_same(&cf, &cs, "center_and_pull center", n);
            for (f, s) in fast.iter().zip(&slow) {
                assert_same(f, s, "center_and_pull worker", n);
            }
        }
    }
}

#[test]
fn easgd_round_matches_naive() {
    let mut rng = StdRng::seed_from_u64(5);
    for n in SIZES {
        for workers in [1, 2, 4] {
            let mut fast: Vec<Vec<f32>> = (0..workers).map(|_| random_vec(&mut rng, n)).collect();
            let mut slow = fast.clone();
            let mut cf = random_vec(&mut rng, n);
            let mut cs = cf.clone();
            let mut ff: Vec<&mut [f32]> = fast.iter_mut().map(Vec::as_mut_slice).collect();
            let mut ss: Vec<&mut [f32]> = slow.iter_mut().map(Vec::as_mut_slice).collect();
            easgd_round(&mut ff, &mut cf, 0.1);
            naive_easgd_round(&mut ss, &mut cs, 0.1);
            assert_same(&cf, &cs, "easgd center", n);
            for (f, s) in fast.iter().zip(&slow) {
                assert_same(f, s, "easgd worker", n);
            }
        }
    }
}

#[test]
fn uniform_average_matches_naive() {
    let mut rng = StdRng::seed_from_u64(6);
    for n in SIZES {
        for workers in [1, 3, 4] {
            let xs: Vec<Vec<f32>> = (0..workers).map(|_| random_vec(&mut rng, n)).collect();
            let refs: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
            let (mut fast, mut slow) = (vec![0.0; n], vec![0.0; n]);
            uniform_average(&refs, &mut fast);
            naive_uniform_average(&refs, &mut slow);
            assert_same(&fast, &slow, "uniform_average", n);
        }
    }
}
