//! The symmetric tridiagonal eigen-solver (implicit QL) against closed-form spectra, and against
//! the independent Sturm count on matrices without one.
//!
//! Closed forms used:
//! * 2x2 `[[a, b], [b, c]]`: `(a + c)/2 -+ sqrt(((a - c)/2)^2 + b^2)`.
//! * Toeplitz `tridiag(b, a, b)` of order n: `a + 2 b cos(k pi / (n + 1))`, k = 1..n (the 1-D
//!   Laplacian is a = 2, b = -1).
//! * The Clement (Kac) matrix: zero diagonal, off-diagonal `sqrt(i (n - i))`, i = 1..n-1; its
//!   eigenvalues are `-(n-1), -(n-3), ..., n-3, n-1` (Clement 1959).

use std::f64::consts::PI;

use grawa_train::flatness::{count_below, tridiagonal_eigenvalues, TridiagError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Largest |got - want| over the spectrum, relative to the largest |want| (or 1).
fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(1f64, |m, w| m.max(w.abs()));
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f64::max)
        / scale
}

fn toeplitz_spectrum(n: usize, a: f64, b: f64) -> Vec<f64> {
    sorted(
        (1..=n)
            .map(|k| a + 2.0 * b * (k as f64 * PI / (n as f64 + 1.0)).cos())
            .collect(),
    )
}

#[test]
fn empty_and_one_by_one() {
    assert_eq!(
        tridiagonal_eigenvalues(&[], &[]).unwrap(),
        Vec::<f64>::new()
    );
    assert_eq!(tridiagonal_eigenvalues(&[-3.5], &[]).unwrap(), vec![-3.5]);
}

#[test]
fn two_by_two_closed_form() {
    for &(a, b, c) in &[
        (1.0f64, 2.0f64, 3.0f64),
        (-4.0, 0.5, 7.0),
        (2.0, 1e-9, 2.0),
        (0.0, -3.0, 0.0),
    ] {
        let m = 0.5 * (a + c);
        let r = (0.25 * (a - c) * (a - c) + b * b).sqrt();
        let got = tridiagonal_eigenvalues(&[a, c], &[b]).unwrap();
        assert!(
            rel_err(&got, &[m - r, m + r]) < 1e-14,
            "{a} {b} {c}: {got:?}"
        );
    }
}

#[test]
fn laplacian_matches_cosine_formula() {
    for n in [3, 10, 50, 200] {
        let got = tridiagonal_eigenvalues(&vec![2.0; n], &vec![-1.0; n - 1]).unwrap();
        let err = rel_err(&got, &toeplitz_spectrum(n, 2.0, -1.0));
        assert!(err < 1e-13, "n = {n}: relative error {err:e}");
    }
}

#[test]
fn general_toeplitz_matches_cosine_formula() {
    // A shifted, indefinite one with a large off-diagonal.
    let (n, a, b) = (77, 0.3, 1.7);
    let got = tridiagonal_eigenvalues(&vec![a; n], &vec![b; n - 1]).unwrap();
    let err = rel_err(&got, &toeplitz_spectrum(n, a, b));
    assert!(err < 1e-13, "relative error {err:e}");
}

#[test]
fn clement_matrix_has_integer_spectrum() {
    for n in [2, 5, 21, 64] {
        let off: Vec<f64> = (1..n).map(|i| ((i * (n - i)) as f64).sqrt()).collect();
        let want: Vec<f64> = (0..n).map(|k| -(n as f64 - 1.0) + 2.0 * k as f64).collect();
        let got = tridiagonal_eigenvalues(&vec![0.0; n], &off).unwrap();
        let err = rel_err(&got, &want);
        assert!(err < 1e-13, "n = {n}: relative error {err:e}");
    }
}

#[test]
fn diagonal_and_split_matrices() {
    // Zero couplings: the eigenvalues are the diagonal, returned sorted.
    let d = [5.0, -1.0, 3.0, 3.0, 0.0];
    let got = tridiagonal_eigenvalues(&d, &[0.0; 4]).unwrap();
    assert_eq!(got, sorted(d.to_vec()));
    // Two Laplacian blocks (sizes 6 and 9) joined by a zero: the union of their spectra.
    let mut off = vec![-1.0; 14];
    off[5] = 0.0;
    let got = tridiagonal_eigenvalues(&[2.0; 15], &off).unwrap();
    let mut want = toeplitz_spectrum(6, 2.0, -1.0);
    want.extend(toeplitz_spectrum(9, 2.0, -1.0));
    assert!(rel_err(&got, &sorted(want)) < 1e-13);
}

#[test]
fn random_matrices_agree_with_sturm_counts_and_invariants() {
    let mut rng = StdRng::seed_from_u64(7);
    for n in [4, 30, 150] {
        let d: Vec<f64> = (0..n).map(|_| rng.random_range(-5.0..5.0)).collect();
        let e: Vec<f64> = (0..n - 1).map(|_| rng.random_range(-2.0..2.0)).collect();
        let ev = tridiagonal_eigenvalues(&d, &e).unwrap();
        // Invariants: trace and Frobenius norm.
        let tr: f64 = d.iter().sum();
        let fro: f64 =
            d.iter().map(|x| x * x).sum::<f64>() + 2.0 * e.iter().map(|x| x * x).sum::<f64>();
        assert!((ev.iter().sum::<f64>() - tr).abs() < 1e-11 * (1.0 + tr.abs()));
        assert!((ev.iter().map(|x| x * x).sum::<f64>() - fro).abs() < 1e-11 * fro);
        // Sturm: exactly i eigenvalues lie below the midpoint between the (i-1)-th and i-th.
        for i in 1..n {
            let mid = 0.5 * (ev[i - 1] + ev[i]);
            if ev[i] - ev[i - 1] > 1e-9 {
                assert_eq!(count_below(&d, &e, mid), i, "n = {n}, i = {i}");
            }
        }
        assert_eq!(count_below(&d, &e, ev[0] - 1e-6), 0);
        assert_eq!(count_below(&d, &e, ev[n - 1] + 1e-6), n);
    }
}

#[test]
fn sturm_count_on_the_laplacian() {
    // Closed form again: k eigenvalues of the Laplacian lie below the midpoint of the k-th gap.
    let n = 40;
    let want = toeplitz_spectrum(n, 2.0, -1.0);
    for k in 1..n {
        let mid = 0.5 * (want[k - 1] + want[k]);
        assert_eq!(count_below(&vec![2.0; n], &vec![-1.0; n - 1], mid), k);
    }
}

#[test]
fn bad_input_is_an_error() {
    assert_eq!(
        tridiagonal_eigenvalues(&[1.0, 2.0], &[]),
        Err(TridiagError::Shape { diag: 2, off: 0 })
    );
    assert_eq!(
        tridiagonal_eigenvalues(&[1.0, f64::NAN], &[0.5]),
        Err(TridiagError::NonFinite)
    );
    assert_eq!(
        tridiagonal_eigenvalues(&[1.0, 2.0], &[f64::INFINITY]),
        Err(TridiagError::NonFinite)
    );
}
