//! The averaging math of a communication round, as pure functions over flat f32 parameter
//! vectors (one per worker, laid out by the model's layer table). No tensors, threads other than
//! rayon's pool, or I/O: the trainer moves the bytes, this module decides the numbers.
//!
//! - `reduce`: the parallel reductions a round runs (per-layer sum of squares, weighted center,
//!   pull, the fused center-and-pull, EASGD's round, the uniform average).
//! - `naive`: their sequential twins, the reference in tests and for GPU kernels.
//! - `weights`: the [`Weights`] a center is built with (per worker or per worker and layer).
//! - `grawa`: norms to GRAWA weights (MGRAWA, LGRAWA, the power variant, edge cases).
//! - `smooth`: the bias-corrected EMAs of norms (across rounds, and over local steps).
//! - `lsgd`: LSGD's loss window and leader.
//! - `cache_pieces` (private): how buffers are cut into cache-sized, layer-aligned work items.

mod cache_pieces;
pub mod grawa;
pub mod lsgd;
pub mod naive;
pub mod reduce;
pub mod smooth;
pub mod weights;

pub use grawa::{inverse_weights, layer_norms, lgrawa_weights, mgrawa_weights, model_norm};
pub use lsgd::{leader, LossWindow, LOSS_WINDOW};
pub use reduce::{
    center_and_pull, easgd_round, layer_sumsq, pull, sum, uniform_average, weighted_center,
    weighted_center_window,
};
pub use smooth::{AccumulatedNorms, NormSmoother, DEFAULT_ACCUMULATED_BETA, DEFAULT_NORM_MOMENTUM};
pub use weights::Weights;
