//! The reductions of a communication round, as pure functions over flat f32 parameter vectors
//! (one per worker, laid out by the model's layer table): the host side of `buffer::FlatBuffer`.
//! No tensors, threads other than rayon's pool, or I/O. (What the weights are is a decision:
//! `algo`.)
//!
//! - `reduce`: the parallel reductions a round runs (per-layer sum of squares, weighted center,
//!   pull, the fused center-and-pull, EASGD's round, the uniform average).
//! - `naive`: their sequential twins, the reference in tests and for GPU kernels.
//! - `weights`: the [`Weights`] a center is built with (per worker or per worker and layer).
//! - `cache_pieces` (private): how buffers are cut into cache-sized, layer-aligned work items.

mod cache_pieces;
pub mod naive;
pub mod reduce;
pub mod weights;

pub use reduce::{
    center_and_pull, easgd_round, layer_sumsq, pull, sum, uniform_average, weighted_center,
    weighted_center_window,
};
pub use weights::Weights;
