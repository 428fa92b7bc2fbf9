//! The Lanczos method with full re-orthogonalisation, over an abstract symmetric operator given
//! only as a matrix-vector product (for us: a Hessian-vector product).
//!
//! After `k` steps from a random unit vector `q_1`, the orthonormal Lanczos basis `Q_k` reduces the
//! operator to the tridiagonal `T_k = Q_k^T H Q_k` (diagonal `alpha`, off-diagonal `beta`). Its
//! eigenvalues, the Ritz values, approximate `H`'s extreme eigenvalues first: the largest converges
//! fast when it is well separated. With `k = n` (and exact orthogonality) they are `H`'s spectrum.
//!
//! In floating point, plain Lanczos loses orthogonality as soon as a Ritz value converges and then
//! finds copies of it ("ghosts"). Full re-orthogonalisation (every new vector is orthogonalised
//! against the whole stored basis; a second pass when the first one removed most of the vector,
//! "twice is enough") keeps `Q_k` orthonormal to working precision, at the price of storing `k`
//! vectors of length `n` in f64 (`8 k n` bytes: 160 MB for ResNet-20's 0.27 M parameters and
//! k = 100) and O(k^2 n) flops. It is the method of the paper's flatness figures (docs/design.md
//! section 2, "Flatness"), so the Ritz sum we report is comparable to its numbers.

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::Serialize;

use super::tridiag::tridiagonal_eigenvalues;
use crate::data::seed::derive_seed;

/// Seed tag of the Lanczos start vectors.
const TAG_START: u64 = 0x6c61_6e63; // "lanc"

/// When `beta_j` falls to this fraction of the largest `|alpha|` or `beta` so far, the Krylov space
/// is invariant to working precision (breakdown): every eigenvalue `H` shows to this start has been
/// found, and normalising `w` would only amplify rounding noise, so we stop.
const BREAKDOWN: f64 = 1e-12;

/// Vectors are split in chunks of this many values for the parallel orthogonalisation updates.
const CHUNK: usize = 1 << 14;

/// One Lanczos run: the tridiagonal matrix and its eigenvalues.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LanczosRun {
    /// Diagonal of `T` (one entry per step taken).
    pub alpha: Vec<f64>,
    /// Off-diagonal of `T` (`alpha.len() - 1` entries).
    pub beta: Vec<f64>,
    /// Eigenvalues of `T`, ascending.
    pub ritz: Vec<f64>,
    /// True when the run stopped before the requested iterations because the Krylov space became
    /// invariant (the start vector lies in a span of fewer eigenvectors).
    pub breakdown: bool,
}

impl LanczosRun {
    /// Steps taken (the size of `T`).
    pub fn iterations(&self) -> usize {
        self.alpha.len()
    }

    /// The largest Ritz value: the estimate of `H`'s largest eigenvalue.
    pub fn lambda_max(&self) -> f64 {
        self.ritz.last().copied().unwrap_or(f64::NAN)
    }

    /// The sum of the Ritz values (= trace of `T` = sum of `alpha`): the paper's "trace" figure
    /// (docs/design.md section 2, "Flatness"). It is the trace of `H` restricted to the Krylov
    /// space, so it equals `tr H` only when `k = n`; for `k << n` it is dominated by the top of the
    /// spectrum and is not an unbiased trace estimate (see Hutchinson for that).
    pub fn ritz_sum(&self) -> f64 {
        self.ritz.iter().sum()
    }
}

/// Several Lanczos runs from independent random starts, summarised.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Spectrum {
    /// The largest `lambda_max` over the starts: each start can only underestimate the top
    /// eigenvalue (a Ritz value never exceeds it), so the maximum is the best estimate.
    pub lambda_max: f64,
    /// The mean over the starts of each run's Ritz sum (docs/design.md section 2, "Flatness").
    pub ritz_sum: f64,
    /// Every run, in start order.
    pub runs: Vec<LanczosRun>,
}

/// Lanczos on an infallible operator; see [`try_lanczos`].
pub fn lanczos(
    dim: usize,
    iterations: usize,
    seed: u64,
    mut hvp: impl FnMut(&[f64]) -> Vec<f64>,
) -> LanczosRun {
    match try_lanczos(dim, iterations, seed, |v| {
        Ok::<_, std::convert::Infallible>(hvp(v))
    }) {
        Ok(run) => run,
        Err(never) => match never {},
    }
}

/// `iterations` Lanczos steps (at most `dim`) with full re-orthogonalisation, on the symmetric
/// operator `hvp` of dimension `dim`, from a Gaussian start vector drawn from `seed`. Stops early
/// on breakdown (see [`LanczosRun::breakdown`]). The first error of `hvp` is returned as is; a
/// non-finite product ends the run with NaN Ritz values.
///
/// # Panics
/// If `hvp` returns a vector whose length is not `dim`, or `dim` or `iterations` is 0.
pub fn try_lanczos<E>(
    dim: usize,
    iterations: usize,
    seed: u64,
    mut hvp: impl FnMut(&[f64]) -> Result<Vec<f64>, E>,
) -> Result<LanczosRun, E> {
    assert!(
        dim > 0 && iterations > 0,
        "lanczos: dim {dim}, iterations {iterations}"
    );
    let k = iterations.min(dim);
    let mut q = start_vector(dim, seed);
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(k);
    let (mut alpha, mut beta): (Vec<f64>, Vec<f64>) =
        (Vec::with_capacity(k), Vec::with_capacity(k));
    let mut scale = 0f64;
    let mut breakdown = false;
    loop {
        let mut w = hvp(&q)?;
        assert_eq!(
            w.len(),
            dim,
            "lanczos: operator returned a vector of the wrong length"
        );
        let a = dot(&q, &w);
        alpha.push(a);
        scale = scale.max(a.abs());
        basis.push(q);
        if alpha.len() == k {
            break;
        }
        // The three-term recurrence, then full re-orthogonalisation against every stored vector
        // (which also removes what the recurrence subtracted imperfectly).
        let j = basis.len() - 1;
        axpy(-a, &basis[j], &mut w);
        if j > 0 {
            axpy(-beta[j - 1], &basis[j - 1], &mut w);
        }
        let before = norm_of(&w);
        let mut b = reorthogonalise(&basis, &mut w);
        // Twice is enough (Kahan/Parlett): a second pass only when the first cancelled most of w,
        // which is when its rounding errors are large relative to what is left.
        if b < 0.7 * before {
            b = reorthogonalise(&basis, &mut w);
        }
        if !(a.is_finite() && b.is_finite()) {
            // A non-finite product: nothing after it means anything. Stop; the Ritz values become
            // NaN below so the caller sees it.
            break;
        }
        if b <= BREAKDOWN * scale.max(f64::MIN_POSITIVE) {
            breakdown = true;
            break;
        }
        scale = scale.max(b);
        beta.push(b);
        w.par_iter_mut().for_each(|x| *x /= b);
        q = w;
    }
    // The only possible failure is a non-finite entry (from a non-finite product): report NaN.
    let ritz =
        tridiagonal_eigenvalues(&alpha, &beta).unwrap_or_else(|_| vec![f64::NAN; alpha.len()]);
    Ok(LanczosRun {
        alpha,
        beta,
        ritz,
        breakdown,
    })
}

/// `starts` independent Lanczos runs (start `s` from a seed derived from `(seed, s)`), summarised
/// as the maximum `lambda_max` and the mean Ritz sum over the starts.
///
/// # Panics
/// As [`try_lanczos`], and if `starts` is 0.
pub fn try_lanczos_starts<E>(
    dim: usize,
    iterations: usize,
    starts: usize,
    seed: u64,
    mut hvp: impl FnMut(&[f64]) -> Result<Vec<f64>, E>,
) -> Result<Spectrum, E> {
    assert!(starts > 0, "lanczos: 0 starts");
    let mut runs = Vec::with_capacity(starts);
    for s in 0..starts {
        runs.push(try_lanczos(
            dim,
            iterations,
            derive_seed(&[seed, s as u64]),
            &mut hvp,
        )?);
    }
    let lambda_max = runs
        .iter()
        .map(LanczosRun::lambda_max)
        .fold(f64::NEG_INFINITY, f64::max);
    let ritz_sum = runs.iter().map(LanczosRun::ritz_sum).sum::<f64>() / starts as f64;
    Ok(Spectrum {
        lambda_max,
        ritz_sum,
        runs,
    })
}

/// [`try_lanczos_starts`] on an infallible operator.
pub fn lanczos_starts(
    dim: usize,
    iterations: usize,
    starts: usize,
    seed: u64,
    mut hvp: impl FnMut(&[f64]) -> Vec<f64>,
) -> Spectrum {
    match try_lanczos_starts(dim, iterations, starts, seed, |v| {
        Ok::<_, std::convert::Infallible>(hvp(v))
    }) {
        Ok(s) => s,
        Err(never) => match never {},
    }
}

/// A unit vector with i.i.d. Gaussian entries (uniform on the sphere), from `seed`.
fn start_vector(dim: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(derive_seed(&[seed, TAG_START]));
    let mut q: Vec<f64> = (0..dim).map(|_| StandardNormal.sample(&mut rng)).collect();
    let n = norm_of(&q);
    q.iter_mut().for_each(|x| *x /= n);
    q
}

/// One classical Gram-Schmidt pass of `w` against every vector of `basis` (orthonormal); returns
/// the norm of `w` afterwards. The projections are all computed first (parallel over the basis),
/// then subtracted in one sweep (parallel over chunks of `w`): two passes over memory, not 2k.
fn reorthogonalise(basis: &[Vec<f64>], w: &mut [f64]) -> f64 {
    let h: Vec<f64> = basis.par_iter().map(|qi| dot(qi, w)).collect();
    w.par_chunks_mut(CHUNK).enumerate().for_each(|(c, wc)| {
        let (lo, len) = (c * CHUNK, wc.len());
        for (qi, &hi) in basis.iter().zip(&h) {
            for (x, &y) in wc.iter_mut().zip(&qi[lo..lo + len]) {
                *x -= hi * y;
            }
        }
    });
    norm_of(w)
}

/// Dot product, in parallel chunks for long vectors. The chunks' sums are added in chunk order:
/// rayon's parallel `sum` adds partial sums in an order that depends on how the work was split
/// and stolen, so the same vectors could give a different last bit from run to run (a repeated
/// measurement then differed in `lambda_max`).
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    if a.len() <= CHUNK {
        return a.iter().zip(b).map(|(x, y)| x * y).sum();
    }
    let parts: Vec<f64> = a
        .par_chunks(CHUNK)
        .zip(b.par_chunks(CHUNK))
        .map(|(x, y)| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>())
        .collect();
    parts.iter().sum()
}

/// Euclidean norm.
pub(crate) fn norm_of(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// `y += a x`.
fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(yc, xc)| yc.iter_mut().zip(xc).for_each(|(y, x)| *y += a * x));
}
