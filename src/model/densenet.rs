//! DenseNet-121 (Huang et al., "Densely Connected Convolutional Networks", 2017) in the form the
//! CIFAR model zoos use (kuangliu/pytorch-cifar's `DenseNet121`, the GRAWA paper's flatness
//! network): growth rate k = 32, dense blocks of 6, 12, 24 and 16 layers, a 3x3 stem convolution
//! of 2k = 64 channels with no max-pool, compression 0.5 in the transitions, global average
//! pooling and one Linear.
//!
//! - Dense layer (bottleneck, "DenseNet-BC"): BN-ReLU-conv1x1 to 4k channels, BN-ReLU-conv3x3 to
//!   k channels; its output is concatenated after its input along the channels (torchvision's
//!   order: earlier features first).
//! - Transition: BN-ReLU-conv1x1 to floor(channels / 2), then 2x2 average pooling.
//! - Channels: 64 -> 256 (block 1) -> 128 -> 512 (block 2) -> 256 -> 1024 (block 3) -> 512 ->
//!   1024 (block 4), then BN-ReLU.
//!
//! Convolutions have no bias and start from kaiming_normal_(mode='fan_out'); BatchNorm from 1 and
//! 0; the Linear from PyTorch's default weight and a zero bias (torchvision's DenseNet
//! initialisation, except that it draws convolutions with fan_in). Any number of classes; images
//! of at least 8x8 (three transitions halve the sides).

use candle_core::{Result, Tensor};
use candle_nn::{Module, ModuleT, VarBuilder};

use crate::ops::batch_norm::BatchNorm;
use crate::ops::bn_relu_conv::bn_relu_conv;
use crate::ops::conv::Conv2d;
use crate::ops::linear::Linear;

use super::layers::{batch_norm, conv2d, linear_zero_bias, ConvSpec, WeightInit};
use super::pool::avg_pool2x2;

/// Growth rate k: channels each dense layer adds.
pub const GROWTH: usize = 32;
/// Dense layers per block.
pub const BLOCKS: [usize; 4] = [6, 12, 24, 16];
/// Channels of the bottleneck between a dense layer's two convolutions: 4k.
pub const BOTTLENECK: usize = 4 * GROWTH;
/// Channels of the stem: 2k.
pub const STEM: usize = 2 * GROWTH;
/// The smallest image side: three transitions halve it, and the last block needs one pixel.
pub const MIN_SIDE: usize = 8;

fn conv(cin: usize, cout: usize, kernel: usize, vb: VarBuilder) -> Result<Conv2d> {
    let spec = ConvSpec {
        in_channels: cin,
        out_channels: cout,
        kernel,
        stride: 1,
        padding: kernel / 2,
        bias: false,
    };
    conv2d(spec, WeightInit::KaimingNormalFanOut, vb)
}

/// One bottleneck layer: k new channels from all the block's earlier ones.
struct DenseLayer {
    norm1: BatchNorm,
    conv1: Conv2d,
    norm2: BatchNorm,
    conv2: Conv2d,
}

impl DenseLayer {
    fn new(cin: usize, bn_momentum: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            norm1: batch_norm(cin, bn_momentum, vb.pp("norm1"))?,
            conv1: conv(cin, BOTTLENECK, 1, vb.pp("conv1"))?,
            norm2: batch_norm(BOTTLENECK, bn_momentum, vb.pp("norm2"))?,
            conv2: conv(BOTTLENECK, GROWTH, 3, vb.pp("conv2"))?,
        })
    }

    /// The input with the layer's k new channels after it.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let bottleneck = bn_relu_conv(&self.norm1, &self.conv1, xs, train)?;
        let new = bn_relu_conv(&self.norm2, &self.conv2, &bottleneck, train)?;
        Tensor::cat(&[xs, &new], 1)
    }
}

/// BN-ReLU-conv1x1 (compression 0.5), then 2x2 average pooling.
struct Transition {
    norm: BatchNorm,
    conv: Conv2d,
}

impl Transition {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        avg_pool2x2(&bn_relu_conv(&self.norm, &self.conv, xs, train)?)
    }
}

/// DenseNet-121, CIFAR form.
pub struct DenseNet {
    conv0: Conv2d,
    /// Each block's layers, and the transition after it (none after the last).
    blocks: Vec<(Vec<DenseLayer>, Option<Transition>)>,
    norm5: BatchNorm,
    classifier: Linear,
}

impl DenseNet {
    /// A DenseNet-121 for `channels`-channel images and `num_classes` classes.
    pub fn new(
        channels: usize,
        num_classes: usize,
        bn_momentum: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        let features = vb.pp("features");
        let mut c = STEM;
        let mut blocks = Vec::new();
        for (b, &layers) in BLOCKS.iter().enumerate() {
            let block_vb = features.pp(format!("denseblock{}", b + 1));
            let mut dense = Vec::with_capacity(layers);
            for l in 0..layers {
                let name = format!("denselayer{}", l + 1);
                dense.push(DenseLayer::new(c, bn_momentum, block_vb.pp(name))?);
                c += GROWTH;
            }
            let transition = if b + 1 < BLOCKS.len() {
                let vb = features.pp(format!("transition{}", b + 1));
                let t = Transition {
                    norm: batch_norm(c, bn_momentum, vb.pp("norm"))?,
                    conv: conv(c, c / 2, 1, vb.pp("conv"))?,
                };
                c /= 2;
                Some(t)
            } else {
                None
            };
            blocks.push((dense, transition));
        }
        Ok(Self {
            conv0: conv(channels, STEM, 3, features.pp("conv0"))?,
            blocks,
            norm5: batch_norm(c, bn_momentum, features.pp("norm5"))?,
            classifier: linear_zero_bias(c, num_classes, vb.pp("classifier"))?,
        })
    }
}

impl ModuleT for DenseNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut out = self.conv0.forward(xs)?;
        for (layers, transition) in &self.blocks {
            for layer in layers {
                out = layer.forward_t(&out, train)?;
            }
            if let Some(t) = transition {
                out = t.forward_t(&out, train)?;
            }
        }
        let out = self.norm5.forward_relu_t(&out, train)?;
        self.classifier.forward(&out.mean(3)?.mean(2)?)
    }
}
