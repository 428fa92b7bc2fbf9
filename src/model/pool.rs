//! 2x2 max- and average pooling with correct gradients.
//!
//! candle 0.11.1's `max_pool2d` backward is wrong: it multiplies the incoming gradient by the
//! *fraction* of window elements that are maximal instead of dividing by their count, so a window
//! with one maximum passes back a quarter of its gradient (measured against finite differences in
//! `tests/ops_grad.rs`). Small CNNs then barely learn.
//!
//! On the CPU, pooling is our own op (src/ops/max_pool.rs: one pass forward, one scatter back);
//! elsewhere it is a reshape and two `max` reductions, whose backward routes the gradient to the
//! maximum and which works on every device. (The reshape form cost the small CNN more backward
//! time than its convolutions on the CPU.)

use candle_core::{Result, Tensor};

use crate::ops::max_pool::max_pool2x2_cpu;

/// Max over non-overlapping 2x2 windows of an (N, C, H, W) tensor; an odd last row or column is
/// dropped, as `nn.MaxPool2d(2)` does.
pub fn max_pool2x2(xs: &Tensor) -> Result<Tensor> {
    if xs.device().is_cpu() && xs.dtype() == candle_core::DType::F32 {
        return max_pool2x2_cpu(xs);
    }
    max_pool2x2_reshaped(xs)
}

/// The device-independent form: a reshape and two `max` reductions.
pub fn max_pool2x2_reshaped(xs: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = xs.dims4()?;
    let (h2, w2) = (h / 2, w / 2);
    let xs = if h % 2 == 1 || w % 2 == 1 {
        xs.narrow(2, 0, 2 * h2)?.narrow(3, 0, 2 * w2)?
    } else {
        xs.clone()
    };
    xs.reshape((n, c, h2, 2, w2, 2))?.max(5)?.max(3)
}

/// Mean over non-overlapping 2x2 windows of an (N, C, H, W) tensor; an odd last row or column is
/// dropped, as `nn.AvgPool2d(2)` does. A narrow, a reshape and two sums: the backward spreads a
/// quarter of each gradient over its window (and nothing over a dropped row), on every device.
/// (candle's `avg_pool2d` backward upsamples the gradient to the full input, so a dropped row
/// would receive one.)
pub fn avg_pool2x2(xs: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = xs.dims4()?;
    let (h2, w2) = (h / 2, w / 2);
    let xs = if h % 2 == 1 || w % 2 == 1 {
        xs.narrow(2, 0, 2 * h2)?.narrow(3, 0, 2 * w2)?
    } else {
        xs.clone()
    };
    xs.reshape((n, c, h2, 2, w2, 2))?.sum(5)?.sum(3)? * 0.25
}
