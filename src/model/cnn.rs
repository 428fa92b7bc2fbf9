//! A small convolutional network for 28x28 images (MNIST, Fashion-MNIST):
//! conv3x3(32) ReLU maxpool2, conv3x3(64) ReLU maxpool2, Linear(128) ReLU, Linear(classes).

use candle_core::{Result, Tensor};
use candle_nn::{Conv2d, Linear, Module, ModuleT, VarBuilder};

use super::layers::{conv2d, linear, ConvSpec, WeightInit};
use crate::data::ImageShape;

/// The small CNN.
pub struct Cnn {
    conv1: Conv2d,
    conv2: Conv2d,
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
    pub fn new(shape: ImageShape, num_classes: usize, vb: VarBuilder) -> Result<Self> {
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
            conv2: conv2d(conv(32, 64), init, vb.pp("conv2"))?,
            fc1: linear(64 * h * w, 128, init, vb.pp("fc1"))?,
            fc2: linear(128, num_classes, init, vb.pp("fc2"))?,
        })
    }
}

impl ModuleT for Cnn {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Result<Tensor> {
        let xs = self.conv1.forward(xs)?.relu()?.max_pool2d(2)?;
        let xs = self.conv2.forward(&xs)?.relu()?.max_pool2d(2)?;
        let xs = self.fc1.forward(&xs.flatten_from(1)?)?.relu()?;
        self.fc2.forward(&xs)
    }
}
