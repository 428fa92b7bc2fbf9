//! ResNet-20 for CIFAR (He et al. 2016, section 4.2) with option-A shortcuts, as in the GRAWA
//! authors' code (after akamaster/pytorch_resnet_cifar10): when a block halves the resolution and
//! doubles the channels, the shortcut takes every other pixel and zero-pads the new channels, so it
//! has no parameters. Convolutions have no bias; weights are kaiming_normal_.

use candle_core::{DType, IndexOp, Result, Tensor};
use candle_nn::{Module, ModuleT, VarBuilder};

use crate::ops::batch_norm::BatchNorm;
use crate::ops::bn_relu_conv::bn_relu_conv;
use crate::ops::conv::Conv2d;
use crate::ops::linear::Linear;
use crate::ops::shortcut::option_a_shortcut_cpu;

use super::layers::{batch_norm, conv2d, linear, ConvSpec, WeightInit};

const INIT: WeightInit = WeightInit::KaimingNormal;

fn conv3x3(
    in_channels: usize,
    out_channels: usize,
    stride: usize,
    vb: VarBuilder,
) -> Result<Conv2d> {
    let spec = ConvSpec {
        in_channels,
        out_channels,
        kernel: 3,
        stride,
        padding: 1,
        bias: false,
    };
    conv2d(spec, INIT, vb)
}

/// conv-BN-ReLU-conv-BN plus the shortcut, then ReLU.
struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    /// Channels zero-padded on each side of the subsampled input; None: identity shortcut.
    shortcut_pad: Option<usize>,
}

impl BasicBlock {
    fn new(
        in_planes: usize,
        planes: usize,
        stride: usize,
        bn_momentum: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        let shortcut_pad = (stride != 1 || in_planes != planes).then_some(planes / 4);
        Ok(Self {
            conv1: conv3x3(in_planes, planes, stride, vb.pp("conv1"))?,
            bn1: batch_norm(planes, bn_momentum, vb.pp("bn1"))?,
            conv2: conv3x3(planes, planes, 1, vb.pp("conv2"))?,
            bn2: batch_norm(planes, bn_momentum, vb.pp("bn2"))?,
            shortcut_pad,
        })
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        // conv2(relu(bn1(.))) as one op: it keeps conv1's output alone for the backward (see
        // `bn_relu_conv`).
        let out = bn_relu_conv(&self.bn1, &self.conv2, &self.conv1.forward(xs)?, train)?;
        let short = match self.shortcut_pad {
            None => xs.clone(),
            Some(pad) => option_a_shortcut(xs, pad)?,
        };
        self.bn2.forward_add_relu_t(&out, &short, train)
    }
}

/// PyTorch's `F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad))`: our op on the CPU in f32,
/// else `option_a_shortcut_composed`.
pub fn option_a_shortcut(xs: &Tensor, pad: usize) -> Result<Tensor> {
    if xs.device().is_cpu() && xs.dtype() == DType::F32 && xs.rank() == 4 {
        return option_a_shortcut_cpu(xs, pad);
    }
    option_a_shortcut_composed(xs, pad)
}

/// The device-independent form of `option_a_shortcut`: a reshape, index selections and a
/// concatenation with zeros.
pub fn option_a_shortcut_composed(xs: &Tensor, pad: usize) -> Result<Tensor> {
    let (n, c, h, w) = xs.dims4()?;
    // Every other row and column: view H as (H/2, 2) and W as (W/2, 2) and keep index 0 of each.
    // An odd side keeps its last row/column as `::2` does.
    let xs = xs
        .pad_with_zeros(2, 0, h % 2)?
        .pad_with_zeros(3, 0, w % 2)?;
    let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
    let sub = xs
        .reshape((n, c, h2, 2, w2, 2))?
        .i((.., .., .., 0, .., 0))?;
    sub.pad_with_zeros(1, pad, pad)
}

/// ResNet-20: conv3x3(16), 3 stages of 3 blocks (16, 32, 64 channels), global average pool, Linear.
pub struct ResNet20 {
    conv1: Conv2d,
    bn1: BatchNorm,
    blocks: Vec<BasicBlock>,
    fc: Linear,
}

impl ResNet20 {
    /// Blocks per stage (n = 3 gives 6n + 2 = 20 layers).
    pub const BLOCKS_PER_STAGE: usize = 3;

    /// A ResNet-20 for `channels`-channel images and `num_classes` classes.
    pub fn new(
        channels: usize,
        num_classes: usize,
        bn_momentum: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        let mut blocks = Vec::new();
        let mut in_planes = 16;
        for (stage, planes) in [16, 32, 64].into_iter().enumerate() {
            for b in 0..Self::BLOCKS_PER_STAGE {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                let name = format!("layer{}.{}", stage + 1, b);
                blocks.push(BasicBlock::new(
                    in_planes,
                    planes,
                    stride,
                    bn_momentum,
                    vb.pp(name),
                )?);
                in_planes = planes;
            }
        }
        Ok(Self {
            conv1: conv3x3(channels, 16, 1, vb.pp("conv1"))?,
            bn1: batch_norm(16, bn_momentum, vb.pp("bn1"))?,
            blocks,
            fc: linear(64, num_classes, INIT, vb.pp("linear"))?,
        })
    }
}

impl ModuleT for ResNet20 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut out = self.bn1.forward_relu_t(&self.conv1.forward(xs)?, train)?;
        for block in &self.blocks {
            out = block.forward_t(&out, train)?;
        }
        // Global average pool over the remaining spatial extent.
        let pooled = out.mean(3)?.mean(2)?;
        self.fc.forward(&pooled)
    }
}
