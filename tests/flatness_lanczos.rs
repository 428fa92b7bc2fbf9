//! Lanczos with full re-orthogonalisation on explicit symmetric matrices whose spectra are known:
//! a diagonal, a random orthogonal similarity `Q D Q^T` of a known diagonal (Q a product of random
//! Householder reflections, exactly orthogonal up to rounding), and the 1-D Laplacian
//! tridiag(-1, 2, -1) of order n, whose eigenvalues are `2 - 2 cos(k pi / (n + 1))`, k = 1..n.
//!
//! With k = n steps the Ritz values are the spectrum (exact arithmetic; 1e-8 relative here) and
//! their sum is the trace. With k < n, Cauchy interlacing bounds every Ritz value by the extreme
//! eigenvalues, and a well-separated top eigenvalue converges at the Chebyshev rate.

use std::f64::consts::PI;

use grawa_train::flatness::{lanczos, lanczos_starts, try_lanczos};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// A dense symmetric matrix, row-major.
struct Dense {
    n: usize,
    a: Vec<f64>,
}

impl Dense {
    fn diagonal(d: &[f64]) -> Self {
        let n = d.len();
        let mut a = vec![0.0; n * n];
        for (i, &x) in d.iter().enumerate() {
            a[i * n + i] = x;
        }
        Dense { n, a }
    }

    /// `Q diag(d) Q^T` with Q the product of `reflections` random Householder reflections.
    fn rotated(d: &[f64], reflections: usize, seed: u64) -> Self {
        let mut m = Dense::diagonal(d);
        let n = m.n;
        let mut rng = StdRng::seed_from_u64(seed);
        for _ in 0..reflections {
            let mut u: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
            let norm = u.iter().map(|x| x * x).sum::<f64>().sqrt();
            u.iter_mut().for_each(|x| *x /= norm);
            // A <- P A P with P = I - 2 u u^T: A u, then the symmetric rank-2 update.
            let au = m.apply(&u);
            let uau: f64 = u.iter().zip(&au).map(|(x, y)| x * y).sum();
            for i in 0..n {
                for j in 0..n {
                    m.a[i * n + j] +=
                        -2.0 * u[i] * au[j] - 2.0 * au[i] * u[j] + 4.0 * uau * u[i] * u[j];
                }
            }
        }
        m
    }

    fn laplacian(n: usize) -> Self {
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            a[i * n + i] = 2.0;
            if i + 1 < n {
                a[i * n + i + 1] = -1.0;
                a[(i + 1) * n + i] = -1.0;
            }
        }
        Dense { n, a }
    }

    fn apply(&self, v: &[f64]) -> Vec<f64> {
        self.a
            .chunks_exact(self.n)
            .map(|row| row.iter().zip(v).map(|(x, y)| x * y).sum())
            .collect()
    }

    fn trace(&self) -> f64 {
        (0..self.n).map(|i| self.a[i * self.n + i]).sum()
    }
}

fn laplacian_spectrum(n: usize) -> Vec<f64> {
    let mut s: Vec<f64> = (1..=n)
        .map(|k| 2.0 - 2.0 * (k as f64 * PI / (n as f64 + 1.0)).cos())
        .collect();
    s.sort_by(f64::total_cmp);
    s
}

fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    let scale = want.iter().fold(0f64, |m, w| m.max(w.abs()));
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f64::max)
        / scale
}

/// Distinct values spread over [lo, hi] with a few clustered pairs, shuffled into no order.
fn known_spectrum(n: usize, lo: f64, hi: f64) -> Vec<f64> {
    let mut d: Vec<f64> = (0..n)
        .map(|i| lo + (hi - lo) * (i as f64 / (n - 1) as f64).powi(2))
        .collect();
    d[n / 2] = d[n / 2 + 1] - 1e-3; // a close (but resolvable) pair
    let mut rng = StdRng::seed_from_u64(3);
    for i in (1..n).rev() {
        d.swap(i, rng.random_range(0..=i));
    }
    d
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

#[test]
fn full_run_on_a_diagonal_recovers_the_spectrum() {
    let d = known_spectrum(40, -3.0, 25.0);
    let m = Dense::diagonal(&d);
    let run = lanczos(m.n, m.n, 11, |v| m.apply(v));
    assert_eq!(run.iterations(), 40);
    assert!(!run.breakdown);
    let err = rel_err(&run.ritz, &sorted(d.clone()));
    assert!(err < 1e-8, "relative error {err:e}");
    assert!((run.ritz_sum() - m.trace()).abs() < 1e-8 * m.trace().abs());
    // The sum of Ritz values is the trace of T, i.e. the sum of alpha.
    assert!((run.ritz_sum() - run.alpha.iter().sum::<f64>()).abs() < 1e-10 * m.trace().abs());
    assert_eq!(run.beta.len(), 39);
}

#[test]
fn full_run_on_a_rotated_diagonal_recovers_the_spectrum() {
    let d = known_spectrum(60, -7.5, 12.0);
    let m = Dense::rotated(&d, 8, 5);
    // The similarity really mixed the coordinates: the matrix is far from diagonal.
    let off: f64 = (0..m.n * m.n)
        .filter(|i| i / m.n != i % m.n)
        .map(|i| m.a[i].abs())
        .sum();
    assert!(off > 10.0, "off-diagonal mass {off}");
    let run = lanczos(m.n, m.n, 12, |v| m.apply(v));
    let err = rel_err(&run.ritz, &sorted(d.clone()));
    assert!(err < 1e-8, "relative error {err:e}");
    let trace: f64 = d.iter().sum();
    assert!((run.ritz_sum() - trace).abs() < 1e-8 * d.iter().map(|x| x.abs()).sum::<f64>());
}

#[test]
fn full_run_on_the_laplacian_matches_the_cosine_formula() {
    let n = 80;
    let m = Dense::laplacian(n);
    let run = lanczos(n, n, 13, |v| m.apply(v));
    let err = rel_err(&run.ritz, &laplacian_spectrum(n));
    assert!(err < 1e-8, "relative error {err:e}");
    assert!((run.ritz_sum() - 2.0 * n as f64).abs() < 1e-8 * 2.0 * n as f64);
}

#[test]
fn few_steps_find_a_well_separated_top_eigenvalue() {
    // Spectrum in [0, 1] plus a top eigenvalue at 10: gap ratio 9, so 20 steps are plenty.
    let n = 500;
    let mut d: Vec<f64> = (0..n - 1).map(|i| i as f64 / (n - 2) as f64).collect();
    d.push(10.0);
    let m = Dense::rotated(&d, 4, 9);
    for seed in 0..3 {
        let run = lanczos(n, 20, seed, |v| m.apply(v));
        assert_eq!(run.iterations(), 20);
        let err = (run.lambda_max() - 10.0).abs() / 10.0;
        assert!(
            err < 1e-8,
            "seed {seed}: lambda_max {} (error {err:e})",
            run.lambda_max()
        );
        // Interlacing: every Ritz value lies inside [lambda_min, lambda_max].
        assert!(run.ritz.iter().all(|&r| (-1e-9..=10.0 + 1e-9).contains(&r)));
    }
}

#[test]
fn few_steps_interlace_on_the_laplacian() {
    // The Laplacian's top is not separated: lambda_max converges slowly, but from below.
    let n = 300;
    let m = Dense::laplacian(n);
    let top = laplacian_spectrum(n)[n - 1];
    let run = lanczos(n, 30, 1, |v| m.apply(v));
    assert!(run.lambda_max() <= top + 1e-12);
    assert!(
        run.lambda_max() > 0.95 * top,
        "lambda_max {}",
        run.lambda_max()
    );
    assert!(run.ritz[0] >= laplacian_spectrum(n)[0] - 1e-12);
}

#[test]
fn full_reorthogonalisation_leaves_no_ghosts() {
    // Plain Lanczos, once the separated top eigenvalue has converged (after ~15 steps), loses
    // orthogonality and finds it again ("ghost" copies). With full re-orthogonalisation there is
    // exactly one Ritz value near 10 after 120 steps.
    let n = 400;
    let mut d: Vec<f64> = (0..n - 1).map(|i| i as f64 / (n - 2) as f64).collect();
    d.push(10.0);
    let m = Dense::diagonal(&d);
    let run = lanczos(n, 120, 2, |v| m.apply(v));
    let near_top = run
        .ritz
        .iter()
        .filter(|&&r| (r - 10.0).abs() < 1e-3)
        .count();
    assert_eq!(
        near_top,
        1,
        "top Ritz values {:?}",
        &run.ritz[run.ritz.len() - 4..]
    );
    assert!(run.ritz.iter().all(|r| (-1e-9..=10.0 + 1e-9).contains(r)));
}

#[test]
fn breakdown_stops_early_on_repeated_eigenvalues() {
    // The identity: the first Krylov space is already invariant.
    let run = lanczos(50, 10, 4, |v| v.to_vec());
    assert!(run.breakdown);
    assert_eq!(run.iterations(), 1);
    assert!((run.lambda_max() - 1.0).abs() < 1e-14);
    // Three distinct eigenvalues with multiplicities: a random start sees three directions.
    let d: Vec<f64> = (0..60).map(|i| [1.0, 4.0, -2.0][i % 3]).collect();
    let m = Dense::rotated(&d, 3, 1);
    let run = lanczos(60, 30, 4, |v| m.apply(v));
    assert!(run.breakdown);
    assert_eq!(run.iterations(), 3);
    assert!(
        rel_err(&run.ritz, &[-2.0, 1.0, 4.0]) < 1e-10,
        "{:?}",
        run.ritz
    );
    // The zero operator.
    let run = lanczos(5, 5, 0, |v| vec![0.0; v.len()]);
    assert!(run.breakdown);
    assert_eq!(run.ritz, vec![0.0]);
}

#[test]
fn iterations_beyond_the_dimension_are_capped() {
    let m = Dense::laplacian(12);
    let run = lanczos(12, 100, 0, |v| m.apply(v));
    assert!(run.iterations() <= 12);
    assert!(rel_err(&run.ritz, &laplacian_spectrum(12)) < 1e-8);
}

#[test]
fn seeds_are_reproducible_and_matter() {
    let m = Dense::laplacian(40);
    let a = lanczos(40, 10, 5, |v| m.apply(v));
    let b = lanczos(40, 10, 5, |v| m.apply(v));
    let c = lanczos(40, 10, 6, |v| m.apply(v));
    assert_eq!(a, b);
    assert_ne!(a.alpha, c.alpha);
}

#[test]
fn several_starts_report_max_lambda_and_mean_ritz_sum() {
    let n = 200;
    let m = Dense::laplacian(n);
    let s = lanczos_starts(n, 15, 3, 8, |v| m.apply(v));
    assert_eq!(s.runs.len(), 3);
    let max = s
        .runs
        .iter()
        .map(|r| r.lambda_max())
        .fold(f64::MIN, f64::max);
    let mean = s.runs.iter().map(|r| r.ritz_sum()).sum::<f64>() / 3.0;
    assert_eq!(s.lambda_max, max);
    assert!((s.ritz_sum - mean).abs() < 1e-12 * mean);
    // The starts differ (independent seeds), and each stays below the true top.
    assert_ne!(s.runs[0].alpha, s.runs[1].alpha);
    assert!(s.lambda_max <= laplacian_spectrum(n)[n - 1] + 1e-12);
}

#[test]
fn operator_errors_are_returned_and_non_finite_products_give_nan() {
    let mut calls = 0;
    let out = try_lanczos(10, 5, 0, |v| {
        calls += 1;
        if calls == 3 {
            Err("product failed")
        } else {
            Ok(v.iter()
                .enumerate()
                .map(|(i, x)| (i + 1) as f64 * x)
                .collect())
        }
    });
    assert_eq!(out, Err("product failed"));
    let run = lanczos(10, 5, 0, |v| vec![f64::NAN; v.len()]);
    assert!(run.lambda_max().is_nan());
}
