//! VGG-16 with BatchNorm for 32x32 images (the common CIFAR variant: 13 conv3x3-BN-ReLU layers,
//! 5 max-pools, one Linear(512 -> classes)).

use candle_core::{Result, Tensor};
use candle_nn::{Module, ModuleT, VarBuilder};

use crate::ops::batch_norm::BatchNorm;
use crate::ops::bn_relu_conv::bn_relu_conv;
use crate::ops::conv::Conv2d;
use crate::ops::linear::Linear;

use super::layers::{batch_norm, conv2d, linear, ConvSpec, WeightInit};
use super::pool::max_pool2x2;

/// Channels per conv layer; 0 marks a 2x2 max-pool.
const CFG: [usize; 18] = [
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
];

/// The downsampling factor of the feature extractor (five 2x2 pools).
pub const REDUCTION: usize = 32;

enum Stage {
    Conv(Conv2d, BatchNorm),
    Pool,
}

/// VGG-16-BN.
pub struct Vgg16 {
    features: Vec<Stage>,
    classifier: Linear,
}

impl Vgg16 {
    /// A VGG-16 for `channels`-channel images whose sides are multiples of 32.
    pub fn new(
        channels: usize,
        side_h: usize,
        side_w: usize,
        num_classes: usize,
        bn_momentum: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        let init = WeightInit::TorchDefault;
        let mut features = Vec::new();
        let mut in_ch = channels;
        for (i, &c) in CFG.iter().enumerate() {
            if c == 0 {
                features.push(Stage::Pool);
                continue;
            }
            let spec = ConvSpec {
                in_channels: in_ch,
                out_channels: c,
                kernel: 3,
                stride: 1,
                padding: 1,
                bias: true,
            };
            let conv = conv2d(spec, init, vb.pp(format!("features.{i}.conv")))?;
            let bn = batch_norm(c, bn_momentum, vb.pp(format!("features.{i}.bn")))?;
            features.push(Stage::Conv(conv, bn));
            in_ch = c;
        }
        let flat = 512 * (side_h / REDUCTION) * (side_w / REDUCTION);
        Ok(Self {
            features,
            classifier: linear(flat, num_classes, init, vb.pp("classifier"))?,
        })
    }
}

impl ModuleT for Vgg16 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut out = xs.clone();
        // A convolution's output whose BatchNorm and ReLU are still to come: a convolution right
        // after takes them as one op with it (`bn_relu_conv`, which keeps the convolution's
        // output alone for the backward); a pooling applies them first.
        let mut pending: Option<(&BatchNorm, Tensor)> = None;
        for stage in &self.features {
            match stage {
                Stage::Conv(conv, bn) => {
                    let c = match pending.take() {
                        Some((prev_bn, prev_c)) => bn_relu_conv(prev_bn, conv, &prev_c, train)?,
                        None => conv.forward(&out)?,
                    };
                    pending = Some((bn, c));
                }
                Stage::Pool => {
                    if let Some((bn, c)) = pending.take() {
                        out = bn.forward_relu_t(&c, train)?;
                    }
                    out = max_pool2x2(&out)?;
                }
            }
        }
        if let Some((bn, c)) = pending.take() {
            out = bn.forward_relu_t(&c, train)?;
        }
        self.classifier.forward(&out.flatten_from(1)?)
    }
}
