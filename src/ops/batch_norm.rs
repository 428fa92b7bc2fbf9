//! BatchNorm2d with PyTorch's semantics, optionally fused with the ReLU that follows it.
//! Delegates to candle for now; the fast CPU path replaces the body.

use candle_core::{ModuleT, Result, Tensor};

/// BatchNorm over (N, C, H, W) or (N, C): batch statistics and a running-statistics update in
/// training mode, running statistics in evaluation mode.
#[derive(Clone, Debug)]
pub struct BatchNorm {
    inner: candle_nn::BatchNorm,
}

impl BatchNorm {
    pub fn new(inner: candle_nn::BatchNorm) -> Self {
        Self { inner }
    }

    /// BatchNorm alone.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.inner.forward_t(xs, train)
    }

    /// `relu(batch_norm(xs))`.
    pub fn forward_relu_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_t(xs, train)?.relu()
    }
}
