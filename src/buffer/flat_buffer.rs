//! [`FlatBuffer`]: one flat buffer's operations, what a local step and a round do to it; `host.rs`
//! and `cuda.rs` implement it.

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
