//! Hutchinson's stochastic trace estimator: for random `z` with independent entries of mean 0 and
//! variance 1, `E[z^T H z] = tr H`. With Rademacher entries (+1 or -1, equally likely) the variance
//! of one sample is `2 * sum_{i != j} H_ij^2`, the smallest of any such distribution, and a
//! diagonal `H` is estimated exactly.
//!
//! Unlike the Lanczos Ritz sum, this is an unbiased estimate of the whole trace, with an honest
//! error bar: the better-defined trace figure (docs/design.md section 2, "Flatness").

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::lanczos::dot;
use crate::data::seed::derive_seed;

/// Seed tag of the probe vectors.
const TAG_PROBE: u64 = 0x6875_7463; // "hutc"

/// A trace estimate: the sample mean of `z^T H z` and its standard error.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceEstimate {
    /// Mean of the samples (NaN without samples).
    pub mean: f64,
    /// Standard error of the mean: sample standard deviation (n - 1 denominator) over sqrt(n).
    /// NaN with fewer than two samples.
    pub stderr: f64,
    /// Each `z^T H z`, in draw order.
    pub samples: Vec<f64>,
}

impl TraceEstimate {
    /// Mean and standard error of `samples`.
    pub fn from_samples(samples: Vec<f64>) -> Self {
        let n = samples.len() as f64;
        let mean = if samples.is_empty() {
            f64::NAN
        } else {
            samples.iter().sum::<f64>() / n
        };
        let stderr = if samples.len() < 2 {
            f64::NAN
        } else {
            let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0);
            (var / n).sqrt()
        };
        TraceEstimate {
            mean,
            stderr,
            samples,
        }
    }
}

/// Hutchinson's estimate of `tr H` from `samples` Rademacher probes drawn from `seed`, for the
/// symmetric operator `hvp` of dimension `dim`. The first error of `hvp` is returned as is.
///
/// # Panics
/// If `hvp` returns a vector whose length is not `dim`.
pub fn try_hutchinson<E>(
    dim: usize,
    samples: usize,
    seed: u64,
    mut hvp: impl FnMut(&[f64]) -> Result<Vec<f64>, E>,
) -> Result<TraceEstimate, E> {
    let mut rng = StdRng::seed_from_u64(derive_seed(&[seed, TAG_PROBE]));
    let mut values = Vec::with_capacity(samples);
    for _ in 0..samples {
        let z: Vec<f64> = (0..dim)
            .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
            .collect();
        let hz = hvp(&z)?;
        assert_eq!(
            hz.len(),
            dim,
            "hutchinson: operator returned a vector of the wrong length"
        );
        values.push(dot(&z, &hz));
    }
    Ok(TraceEstimate::from_samples(values))
}

/// [`try_hutchinson`] on an infallible operator.
pub fn hutchinson(
    dim: usize,
    samples: usize,
    seed: u64,
    mut hvp: impl FnMut(&[f64]) -> Vec<f64>,
) -> TraceEstimate {
    match try_hutchinson(dim, samples, seed, |v| {
        Ok::<_, std::convert::Infallible>(hvp(v))
    }) {
        Ok(t) => t,
        Err(never) => match never {},
    }
}
