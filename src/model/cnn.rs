//! A small convolutional network for 28x28 images (MNIST, Fashion-MNIST):
//! conv3x3(32) BN ReLU maxpool2, conv3x3(64) BN ReLU maxpool2, Linear(128) ReLU, Linear(classes).
//! BatchNorm is there because the default learning rate (0.1 with Nesterov momentum) is too hot
//! for the plain network to learn much in one epoch: with it, Fashion-MNIST goes past 0.86 in one.

use candle_core::{Result, Tensor};
use candle_nn::{Module, ModuleT, VarBuilder};

use crate::ops::batch_norm::BatchNorm;
use crate::ops::conv::Conv2d;
use crate::ops::linear::Linear;

use super::layers::{batch_norm, conv2d, linear, ConvSpec, WeightInit};
use super::pool::max_pool2x2;
use crate::data::ImageShape;

/// The small CNN.
pub struct Cnn {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    fc1: Linear,
    fc2: Linear,
}

/// Spatial size after the two (valid conv3x3, maxpool2) stages, or None when the image is too small.
pub fn feature_side(side: usize) -> Option<usize> {
    let after1 = side.checked_sub(2)? / 2;
    let after2 = after1.checked_sub(2)? / 2;
    (after2 > 0).then_some(after2)
}

impl Cnn {
    /// A CNN for images of `shape`; the caller checks `feature_side` first.
    pub fn new(
        shape: ImageShape,
        num_classes: usize,
        bn_momentum: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        let init = WeightInit::TorchDefault;
        let conv = |i, o| ConvSpec {
            in_channels: i,
            out_channels: o,
            kernel: 3,
            stride: 1,
            padding: 0,
            bias: true,
        };
        let (Some(h), Some(w)) = (feature_side(shape.height), feature_side(shape.width)) else {
            candle_core::bail!(
                "cnn needs images of at least 10x10, got {}x{}",
                shape.height,
                shape.width
            )
        };
        Ok(Self {
            conv1: conv2d(conv(shape.channels, 32), init, vb.pp("conv1"))?,
            bn1: batch_norm(32, bn_momentum, vb.pp("bn1"))?,
            conv2: conv2d(conv(32, 64), init, vb.pp("conv2"))?,
            bn2: batch_norm(64, bn_momentum, vb.pp("bn2"))?,
            fc1: linear(64 * h * w, 128, init, vb.pp("fc1"))?,
            fc2: linear(128, num_classes, init, vb.pp("fc2"))?,
        })
    }
}

impl ModuleT for Cnn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let xs = self.bn1.forward_relu_t(&self.conv1.forward(xs)?, train)?;
        let xs = max_pool2x2(&xs)?;
        let xs = self.bn2.forward_relu_t(&self.conv2.forward(&xs)?, train)?;
        let xs = max_pool2x2(&xs)?;
        let xs = self.fc1.forward_relu(&xs.flatten_from(1)?)?;
        self.fc2.forward(&xs)
    }
}
