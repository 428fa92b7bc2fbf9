//! The flatness figures of a model: what to measure ([`FlatnessOptions`]), what comes out
//! ([`FlatnessReport`]), and [`measure`], which runs Lanczos and Hutchinson over the model's
//! Hessian-vector products (see the module docs of `flatness` for what each figure is).

use std::time::Instant;

use candle_core::Result;
use serde::{Deserialize, Serialize};

use super::hutchinson::try_hutchinson;
use super::hvp::ModelHessian;
use super::lanczos::try_lanczos_starts;
use crate::data::seed::derive_seed;
use crate::data::{Dataset, Normalization};
use crate::model::Model;

// Seed tags: the image subset, the Lanczos starts and the Hutchinson probes are independent streams
// of the one seed.
const TAG_IMAGES: u64 = 1;
const TAG_LANCZOS: u64 = 2;
const TAG_HUTCHINSON: u64 = 3;

/// What to measure, and how hard. Defaults are the paper's protocol (docs/design.md section 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlatnessOptions {
    /// Lanczos iterations per start (100). Each costs one Hessian-vector product.
    pub iterations: usize,
    /// Random Lanczos starts (3).
    pub starts: usize,
    /// Fixed training images the loss is taken over (320; all of them when the set is smaller).
    pub samples: usize,
    /// Hutchinson probe vectors (30; 0 skips the estimate, reported as NaN). Each costs one
    /// Hessian-vector product.
    pub hutchinson: usize,
    /// Seed of the image subset, the Lanczos starts and the Hutchinson probes.
    pub seed: u64,
}

impl Default for FlatnessOptions {
    fn default() -> Self {
        FlatnessOptions {
            iterations: 100,
            starts: 3,
            samples: 320,
            hutchinson: 30,
            seed: 0,
        }
    }
}

/// One Lanczos start's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartReport {
    /// Largest Ritz value of this start.
    #[serde(deserialize_with = "null_as_nan")]
    pub lambda_max: f64,
    /// Sum of this start's Ritz values.
    #[serde(deserialize_with = "null_as_nan")]
    pub ritz_sum: f64,
    /// Iterations taken (fewer than asked on breakdown).
    pub iterations: usize,
}

/// The flatness figures of one model. Non-finite values (a skipped Hutchinson estimate, or its
/// standard error with one probe) are written as `null` in JSON, and read back as NaN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlatnessReport {
    /// Largest Hessian eigenvalue: the maximum over the starts of the largest Ritz value.
    #[serde(deserialize_with = "null_as_nan")]
    pub lambda_max: f64,
    /// Mean over the starts of the sum of Ritz values (the paper's "trace" figure).
    #[serde(deserialize_with = "null_as_nan")]
    pub ritz_sum: f64,
    /// Hutchinson's estimate of the Hessian's trace.
    #[serde(deserialize_with = "null_as_nan")]
    pub hutchinson_trace: f64,
    /// Standard error of `hutchinson_trace`.
    #[serde(deserialize_with = "null_as_nan")]
    pub hutchinson_stderr: f64,
    /// Lanczos iterations asked for, per start.
    pub iterations: usize,
    /// Lanczos starts.
    pub starts: usize,
    /// Images the loss was taken over.
    pub samples: usize,
    /// Hutchinson probes used.
    pub hutchinson: usize,
    /// Mean cross-entropy over those images at the model (BatchNorm in eval mode).
    #[serde(deserialize_with = "null_as_nan")]
    pub loss: f64,
    /// Number of trainable parameters (the Hessian's dimension).
    pub parameters: usize,
    /// Hessian-vector products computed (two gradient passes each, four after a kink).
    pub products: usize,
    /// Products whose first step crossed a kink of the loss (a ReLU or max-pool switching), taken
    /// again with a shorter step (see `hvp`).
    pub kinks: usize,
    /// Each start's figures.
    pub per_start: Vec<StartReport>,
    /// Wall-clock seconds the measurement took.
    pub seconds: f64,
}

/// serde_json writes NaN as `null`; read `null` back as NaN so a report round-trips.
fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Measures the flatness of the training loss at `model`'s current parameters on `train`
/// (normalised with `norm`): see the `flatness` module docs for what each figure is. Call it on
/// the evaluated model (the average of the workers, BatchNorm recalibrated), since eval-mode
/// BatchNorm uses the running statistics the model holds. `model` is only read: the products are taken on an f64
/// copy of it (see `hvp` for why).
///
/// Cost: `starts * iterations + hutchinson` Hessian-vector products of two f64 gradient passes
/// over `samples` images each (four when a kink was crossed), plus one pass at the start, and
/// Lanczos memory of `8 * iterations * parameters` bytes. On a 2-core CPU that is about 35 s for
/// the MLP and hours for ResNet-20 at the defaults; see [`measure_with_progress`] to report progress.
pub fn measure(
    model: &Model,
    train: &Dataset,
    norm: &Normalization,
    opts: &FlatnessOptions,
) -> Result<FlatnessReport> {
    measure_with_progress(model, train, norm, opts, |_, _| {})
}

/// [`measure`], calling `progress(done, total)` after every Hessian-vector product, for progress
/// bars on long runs. `total` is `starts * iterations + hutchinson`; `done` ends below it when a
/// Lanczos start breaks down early.
pub fn measure_with_progress(
    model: &Model,
    train: &Dataset,
    norm: &Normalization,
    opts: &FlatnessOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<FlatnessReport> {
    if opts.iterations == 0 || opts.starts == 0 || opts.samples == 0 {
        candle_core::bail!(
            "flatness: iterations ({}), starts ({}) and samples ({}) must all be at least 1",
            opts.iterations,
            opts.starts,
            opts.samples
        );
    }
    if train.is_empty() {
        candle_core::bail!("flatness: the training set is empty");
    }
    let started = Instant::now();
    let images_seed = derive_seed(&[opts.seed, TAG_IMAGES]);
    let mut h = ModelHessian::from_train(model, train, norm, opts.samples, images_seed)?;
    let loss = h.loss()?;
    let dim = h.dim();
    let total = opts.starts * opts.iterations.min(dim) + opts.hutchinson;
    let mut done = 0;
    let mut product = |v: &[f64]| {
        let hv = h.hvp(v)?;
        done += 1;
        progress(done, total);
        Ok::<_, candle_core::Error>(hv)
    };
    let spectrum = try_lanczos_starts(
        dim,
        opts.iterations,
        opts.starts,
        derive_seed(&[opts.seed, TAG_LANCZOS]),
        &mut product,
    )?;
    let trace = try_hutchinson(
        dim,
        opts.hutchinson,
        derive_seed(&[opts.seed, TAG_HUTCHINSON]),
        &mut product,
    )?;
    Ok(FlatnessReport {
        lambda_max: spectrum.lambda_max,
        ritz_sum: spectrum.ritz_sum,
        hutchinson_trace: trace.mean,
        hutchinson_stderr: trace.stderr,
        iterations: opts.iterations,
        starts: opts.starts,
        samples: h.samples(),
        hutchinson: opts.hutchinson,
        loss,
        parameters: dim,
        products: h.products(),
        kinks: h.kinks(),
        per_start: spectrum
            .runs
            .iter()
            .map(|r| StartReport {
                lambda_max: r.lambda_max(),
                ritz_sum: r.ritz_sum(),
                iterations: r.iterations(),
            })
            .collect(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
