//! A worker's flat buffers (parameters, gradients, momentum) on any device, with the operations a
//! local step and a round need. Workers and the round call only [`FlatBuffer`]; where the bytes
//! live is the implementation's business:
//!
//! - `host`: `[f32]` in host memory, over `average::reduce` and `optim::sgd_update` (the CPU
//!   reference every GPU kernel is checked against);
//! - `cuda` (feature `cuda`): [`CudaBuffer`], a `CudaSlice` on one GPU, over `cuda::Kernels`.
//!
//! One parity suite (`tests/buffer_parity.rs`) runs every operation on both against the naive
//! twins in `average::naive`; its CUDA half runs wherever a GPU is visible.
//!
//! A round combines several workers' buffers: [`RoundBuffer`] (`round.rs`) is what it needs
//! beyond one buffer's operations, and [`Flat`] (`flat.rs`) is the buffer the trainer's messages
//! carry, host or GPU. `tensors` moves values between a model's tensors and a `Flat` where both
//! live; `staging` is how a round over GPU buffers reaches them (in place or by peer copy) and
//! the fences those copies need.

#[cfg(feature = "cuda")]
mod cuda;
mod flat;
mod host;
mod round;
pub mod staging;
mod tensors;

#[cfg(feature = "cuda")]
pub use cuda::{host_transfers, CudaBuffer, CudaPlace};
pub use flat::{Flat, FlatPlace};
pub use round::RoundBuffer;

use crate::model::LayerEntry;
use crate::optim::SgdConfig;
use crate::Result;

/// A flat f32 buffer laid out by a model's layer table, and what training does to it.
pub trait FlatBuffer {
    /// Elements held.
    fn len(&self) -> usize;

    /// True when the buffer holds nothing.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Per-layer sums of squares, in f64 (GRAWA's gradient norms are their square roots).
    fn layer_sumsq(&self, table: &[LayerEntry]) -> Result<Vec<f64>>;

    /// `x <- (1 - lambda) x + lambda c`: the pull toward a center, and the proximal step.
    fn pull(&mut self, center: &Self, lambda: f32) -> Result<()>;

    /// `x <- a x + b y`.
    fn scale_add(&mut self, a: f32, y: &Self, b: f32) -> Result<()>;

    /// `x <- x / d` (a sum into a mean).
    fn divide(&mut self, d: f32) -> Result<()>;

    /// One SGD step on these parameters from `grad`, with momentum `momentum` (PyTorch's rule,
    /// see `optim::sgd_update`).
    fn sgd_step(
        &mut self,
        grad: &Self,
        momentum: &mut Self,
        lr: f32,
        cfg: &SgdConfig,
    ) -> Result<()>;

    /// A copy in host memory.
    fn to_host(&self) -> Result<Vec<f32>>;
}
