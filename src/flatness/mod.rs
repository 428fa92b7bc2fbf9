//! Flatness of the training loss at a model: the largest Hessian eigenvalue and two trace figures,
//! the GRAWA paper's measure of how flat an optimum is (docs/design.md section 2, "Flatness").
//!
//! * `lambda_max`: Lanczos with full re-orthogonalisation ([`lanczos`](mod@lanczos)), 100
//!   iterations from each of 3 random starts by default; the maximum over the starts is reported.
//! * `ritz_sum`: the sum of the Ritz values of each start (the paper's "trace"), averaged over the
//!   starts. With 100 iterations on a model of 10^5+ parameters this is the trace of the Hessian on a
//!   100-dimensional Krylov space, which leans to the top of the spectrum: comparable with the
//!   paper's numbers, but not the trace.
//! * `hutchinson_trace`: Hutchinson's unbiased estimate of the trace with its standard error
//!   ([`hutchinson`](mod@hutchinson)), the better-defined trace figure.
//!
//! The loss is the mean cross-entropy over a fixed set of un-augmented training images (320 by
//! default, drawn from the seed), with BatchNorm in eval mode, and no weight decay; its
//! Hessian-vector products come from central differences of gradients, taken on an f64 copy of the
//! model with a kink check ([`hvp`]).
//!
//! Module layout: `tridiag` (eigenvalues of the Lanczos matrix), `lanczos`, `hutchinson` (pure math
//! over an abstract `v -> H v`), `hvp` (the model plumbing), `figures` ([`measure`], which ties
//! them, its options and its report), and `run` ([`measure_run`]: a checkpointed run's evaluated
//! model, measured into its `flatness.json`).

mod figures;
pub mod hutchinson;
pub mod hvp;
pub mod lanczos;
pub mod run;
pub mod tridiag;

pub use figures::{measure, measure_with_progress, FlatnessOptions, FlatnessReport, StartReport};
pub use hutchinson::{hutchinson, try_hutchinson, TraceEstimate};
pub use hvp::{
    finite_difference, fixed_subset, Difference, ModelHessian, Product, HVP_BATCH, KINK_TOLERANCE,
    REL_STEP,
};
pub use lanczos::{lanczos, lanczos_starts, try_lanczos, try_lanczos_starts, LanczosRun, Spectrum};
pub use run::measure_run;
pub use tridiag::{count_below, tridiagonal_eigenvalues, TridiagError};
