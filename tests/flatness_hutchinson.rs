//! Hutchinson's trace estimator on explicit matrices. Expected numbers: the exact trace, and the
//! closed-form variance of one Rademacher sample, `Var(z^T A z) = 2 sum_{i != j} A_ij^2` for
//! symmetric A (so the standard error of the mean of n samples is `sqrt(that / n)`; zero for a
//! diagonal A, whose every sample is exactly the trace).

use grawa_train::flatness::{hutchinson, try_hutchinson, TraceEstimate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A random symmetric n x n matrix with a dominant positive diagonal (like a Hessian near a
/// minimum): diagonal in [1, 3], off-diagonal in [-0.2, 0.2].
fn matrix(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        a[i * n + i] = rng.random_range(1.0..3.0);
        for j in 0..i {
            let x = rng.random_range(-0.2..0.2);
            a[i * n + j] = x;
            a[j * n + i] = x;
        }
    }
    a
}

fn apply(a: &[f64], v: &[f64]) -> Vec<f64> {
    a.chunks_exact(v.len())
        .map(|row| row.iter().zip(v).map(|(x, y)| x * y).sum())
        .collect()
}

fn trace(a: &[f64], n: usize) -> f64 {
    (0..n).map(|i| a[i * n + i]).sum()
}

fn sample_variance(a: &[f64], n: usize) -> f64 {
    let mut s = 0.0;
    for i in 0..n {
        for j in 0..n {
            if i != j {
                s += a[i * n + j] * a[i * n + j];
            }
        }
    }
    2.0 * s
}

#[test]
fn estimate_is_within_three_standard_errors_of_the_trace() {
    let n = 60;
    let a = matrix(n, 1);
    let exact = trace(&a, n);
    for seed in 0..5 {
        let t = hutchinson(n, 200, seed, |v| apply(&a, v));
        assert_eq!(t.samples.len(), 200);
        assert!(
            (t.mean - exact).abs() < 3.0 * t.stderr,
            "seed {seed}: {} +- {} vs {exact}",
            t.mean,
            t.stderr
        );
        // The reported error bar is the closed-form one, up to sampling noise.
        let want = (sample_variance(&a, n) / 200.0).sqrt();
        assert!(
            (0.7..1.4).contains(&(t.stderr / want)),
            "stderr {} vs closed form {want}",
            t.stderr
        );
    }
}

#[test]
fn standard_error_shrinks_like_one_over_root_n() {
    let n = 60;
    let a = matrix(n, 2);
    let small = hutchinson(n, 25, 9, |v| apply(&a, v));
    let large = hutchinson(n, 400, 9, |v| apply(&a, v));
    // 16 times the samples: about a quarter of the error; at least halved whatever the noise.
    assert!(
        large.stderr < small.stderr / 2.0,
        "{} vs {}",
        large.stderr,
        small.stderr
    );
    assert!((large.mean - trace(&a, n)).abs() < 3.0 * large.stderr);
}

#[test]
fn a_diagonal_matrix_is_estimated_exactly() {
    let d: Vec<f64> = (0..30).map(|i| (i as f64 - 10.0) * 0.7).collect();
    let t = hutchinson(30, 5, 3, |v| v.iter().zip(&d).map(|(x, y)| x * y).collect());
    let exact: f64 = d.iter().sum();
    assert!((t.mean - exact).abs() < 1e-12);
    assert!(t.stderr < 1e-12);
}

#[test]
fn degenerate_sample_counts() {
    let t = hutchinson(4, 1, 0, |v| v.to_vec());
    assert_eq!(t.mean, 4.0);
    assert!(t.stderr.is_nan());
    let t = hutchinson(4, 0, 0, |v| v.to_vec());
    assert!(t.mean.is_nan() && t.stderr.is_nan());
    // from_samples: mean 2, sample sd 1 (n - 1 denominator), stderr 1/sqrt(3).
    let t = TraceEstimate::from_samples(vec![1.0, 2.0, 3.0]);
    assert_eq!(t.mean, 2.0);
    assert!((t.stderr - 1.0 / 3f64.sqrt()).abs() < 1e-15);
}

#[test]
fn probes_are_seeded_and_errors_propagate() {
    let a = matrix(20, 4);
    let x = hutchinson(20, 10, 5, |v| apply(&a, v));
    let y = hutchinson(20, 10, 5, |v| apply(&a, v));
    let z = hutchinson(20, 10, 6, |v| apply(&a, v));
    assert_eq!(x, y);
    assert_ne!(x.samples, z.samples);
    let mut calls = 0;
    let r = try_hutchinson(20, 10, 5, |v| {
        calls += 1;
        if calls == 4 {
            Err(7)
        } else {
            Ok(v.to_vec())
        }
    });
    assert_eq!(r, Err(7));
}
