//! Wide ResNet 16-8 (Zagoruyko and Komodakis, "Wide Residual Networks", 2016), as the authors'
//! code builds it: a 3x3 stem of 16 channels, three groups of (16 - 4) / 6 = 2 pre-activation
//! basic blocks of 16k, 32k and 64k channels (k = 8: 128, 256, 512; the second and third groups
//! start with stride 2), BatchNorm and ReLU, global average pooling and one Linear. Dropout 0.
//!
//! A block is BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus a shortcut: the identity when the block keeps
//! its channels and resolution, else a 1x1 convolution (with the block's stride) of the
//! pre-activated input relu(bn1(x)), the same tensor the first convolution reads. Convolutions
//! have no bias and start from kaiming_normal_(mode='fan_out'); BatchNorm from 1 and 0; the
//! Linear from PyTorch's default weight and a zero bias. Any number of classes and input size.

use candle_core::{Result, Tensor};
use candle_nn::{Module, ModuleT, VarBuilder};

use crate::ops::batch_norm::BatchNorm;
use crate::ops::bn_relu_conv::bn_relu_conv;
use crate::ops::conv::Conv2d;
use crate::ops::linear::Linear;

use super::layers::{batch_norm, conv2d, linear_zero_bias, ConvSpec, WeightInit};

/// Depth 16: 6 n + 4 with n = 2 blocks per group.
pub const DEPTH: usize = 16;
/// Widening factor k.
pub const WIDEN: usize = 8;
/// Blocks per group: (depth - 4) / 6.
pub const BLOCKS_PER_GROUP: usize = (DEPTH - 4) / 6;

fn conv(cin: usize, cout: usize, kernel: usize, stride: usize, vb: VarBuilder) -> Result<Conv2d> {
    let spec = ConvSpec {
        in_channels: cin,
        out_channels: cout,
        kernel,
        stride,
        padding: kernel / 2,
        bias: false,
    };
    conv2d(spec, WeightInit::KaimingNormalFanOut, vb)
}

/// One pre-activation basic block.
struct WideBlock {
    bn1: BatchNorm,
    conv1: Conv2d,
    bn2: BatchNorm,
    conv2: Conv2d,
    /// The 1x1 projection when channels or resolution change; None: the identity.
    shortcut: Option<Conv2d>,
}

impl WideBlock {
    fn new(
        cin: usize,
        cout: usize,
        stride: usize,
        bn_momentum: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        let projects = cin != cout || stride != 1;
        Ok(Self {
            bn1: batch_norm(cin, bn_momentum, vb.pp("bn1"))?,
            conv1: conv(cin, cout, 3, stride, vb.pp("conv1"))?,
            bn2: batch_norm(cout, bn_momentum, vb.pp("bn2"))?,
            conv2: conv(cout, cout, 3, 1, vb.pp("conv2"))?,
            shortcut: match projects {
                true => Some(conv(cin, cout, 1, stride, vb.pp("shortcut"))?),
                false => None,
            },
        })
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        match &self.shortcut {
            // relu(bn1(x)) feeds both the convolution and the projection: computed once.
            Some(project) => {
                let act = self.bn1.forward_relu_t(xs, train)?;
                let out = self.conv1.forward(&act)?;
                let out = bn_relu_conv(&self.bn2, &self.conv2, &out, train)?;
                out + project.forward(&act)?
            }
            None => {
                let out = bn_relu_conv(&self.bn1, &self.conv1, xs, train)?;
                let out = bn_relu_conv(&self.bn2, &self.conv2, &out, train)?;
                out + xs
            }
        }
    }
}

/// WRN-16-8.
pub struct WideResNet {
    conv1: Conv2d,
    blocks: Vec<WideBlock>,
    bn: BatchNorm,
    fc: Linear,
}

impl WideResNet {
    /// Channels of the three groups: 16k, 32k, 64k.
    pub const WIDTHS: [usize; 3] = [16 * WIDEN, 32 * WIDEN, 64 * WIDEN];

    /// A WRN-16-8 for `channels`-channel images and `num_classes` classes.
    pub fn new(
        channels: usize,
        num_classes: usize,
        bn_momentum: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        let mut blocks = Vec::new();
        let mut cin = 16;
        for (g, &width) in Self::WIDTHS.iter().enumerate() {
            for b in 0..BLOCKS_PER_GROUP {
                let stride = if g > 0 && b == 0 { 2 } else { 1 };
                let name = format!("block{}.{b}", g + 1);
                blocks.push(WideBlock::new(
                    cin,
                    width,
                    stride,
                    bn_momentum,
                    vb.pp(name),
                )?);
                cin = width;
            }
        }
        Ok(Self {
            conv1: conv(channels, 16, 3, 1, vb.pp("conv1"))?,
            blocks,
            bn: batch_norm(cin, bn_momentum, vb.pp("bn"))?,
            fc: linear_zero_bias(cin, num_classes, vb.pp("fc"))?,
        })
    }
}

impl ModuleT for WideResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut out = self.conv1.forward(xs)?;
        for block in &self.blocks {
            out = block.forward_t(&out, train)?;
        }
        let out = self.bn.forward_relu_t(&out, train)?;
        // Global average pooling: any input size.
        self.fc.forward(&out.mean(3)?.mean(2)?)
    }
}
