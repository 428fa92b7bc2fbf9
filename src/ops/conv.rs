//! 2-D convolution layer (NCHW). Delegates to candle for now; the fast CPU path replaces the body.

use candle_core::{Module, Result, Tensor};

/// A 2-D convolution with optional bias, PyTorch's NCHW layout and OIHW weight.
#[derive(Clone, Debug)]
pub struct Conv2d {
    inner: candle_nn::Conv2d,
}

impl Conv2d {
    /// `weight` is (out, in, kh, kw); `bias` is (out,).
    pub fn new(weight: Tensor, bias: Option<Tensor>, stride: usize, padding: usize) -> Self {
        let cfg = candle_nn::Conv2dConfig {
            padding,
            stride,
            dilation: 1,
            groups: 1,
            cudnn_fwd_algo: None,
        };
        Self {
            inner: candle_nn::Conv2d::new(weight, bias, cfg),
        }
    }
}

impl Module for Conv2d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.inner.forward(xs)
    }
}
