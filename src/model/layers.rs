//! Layer constructors with PyTorch's initialisation, so a model here starts from the same
//! distribution as its PyTorch reference.
//!
//! PyTorch's `nn.Linear` / `nn.Conv2d` default is kaiming_uniform(a = sqrt(5)) for the weight,
//! which works out to U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias.
//! `kaiming_normal_` (ResNet-20's reference init) is N(0, sqrt(2 / fan_in)); with
//! `mode='fan_out'` (torchvision's ResNets, the Wide ResNet authors' code) N(0, sqrt(2 / fan_out)),
//! fan_out = out_channels * k * k.

use candle_core::Result;
use candle_nn::{BatchNormConfig, Init, VarBuilder};

use crate::ops::batch_norm::BatchNorm;
use crate::ops::conv::Conv2d;
use crate::ops::linear::Linear;

/// How a layer's weight is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightInit {
    /// PyTorch's default for Linear and Conv2d.
    TorchDefault,
    /// `torch.nn.init.kaiming_normal_` with fan_in and ReLU gain.
    KaimingNormal,
    /// `torch.nn.init.kaiming_normal_(mode='fan_out', nonlinearity='relu')`.
    KaimingNormalFanOut,
}

fn weight_hint(init: WeightInit, fan_in: usize, fan_out: usize) -> Init {
    let fan_in = fan_in as f64;
    match init {
        WeightInit::TorchDefault => {
            let b = 1.0 / fan_in.sqrt();
            Init::Uniform { lo: -b, up: b }
        }
        WeightInit::KaimingNormal => Init::Randn {
            mean: 0.0,
            stdev: (2.0 / fan_in).sqrt(),
        },
        WeightInit::KaimingNormalFanOut => Init::Randn {
            mean: 0.0,
            stdev: (2.0 / fan_out as f64).sqrt(),
        },
    }
}

fn bias_hint(fan_in: usize) -> Init {
    let b = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform { lo: -b, up: b }
}

/// A fully connected layer with bias.
pub fn linear(in_dim: usize, out_dim: usize, init: WeightInit, vb: VarBuilder) -> Result<Linear> {
    let w = vb.get_with_hints(
        (out_dim, in_dim),
        "weight",
        weight_hint(init, in_dim, out_dim),
    )?;
    let b = vb.get_with_hints(out_dim, "bias", bias_hint(in_dim))?;
    Ok(Linear::new(w, b))
}

/// A fully connected layer with PyTorch's default weight and a zero bias, as torchvision's
/// DenseNet and the Wide ResNet authors initialise their classifier.
pub fn linear_zero_bias(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let hint = weight_hint(WeightInit::TorchDefault, in_dim, out_dim);
    let w = vb.get_with_hints((out_dim, in_dim), "weight", hint)?;
    let b = vb.get_with_hints(out_dim, "bias", Init::Const(0.0))?;
    Ok(Linear::new(w, b))
}

/// Shape and options of a 2-D convolution.
#[derive(Clone, Copy, Debug)]
pub struct ConvSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub bias: bool,
}

/// A 2-D convolution.
pub fn conv2d(spec: ConvSpec, init: WeightInit, vb: VarBuilder) -> Result<Conv2d> {
    let fan_in = spec.in_channels * spec.kernel * spec.kernel;
    let fan_out = spec.out_channels * spec.kernel * spec.kernel;
    let w = vb.get_with_hints(
        (
            spec.out_channels,
            spec.in_channels,
            spec.kernel,
            spec.kernel,
        ),
        "weight",
        weight_hint(init, fan_in, fan_out),
    )?;
    let b = if spec.bias {
        Some(vb.get_with_hints(spec.out_channels, "bias", bias_hint(fan_in))?)
    } else {
        None
    };
    Ok(Conv2d::new(w, b, spec.stride, spec.padding))
}

/// PyTorch's BatchNorm momentum: running = 0.9 running + 0.1 batch.
pub const BN_MOMENTUM: f64 = 0.1;

/// BatchNorm with PyTorch's defaults (eps 1e-5, gamma 1, beta 0) and the given running-statistics
/// momentum (`BN_MOMENTUM` for training; 1.0 makes the running statistics those of the last batch,
/// which is how evaluation recalibrates them exactly).
pub fn batch_norm(channels: usize, momentum: f64, vb: VarBuilder) -> Result<BatchNorm> {
    let cfg = BatchNormConfig {
        eps: 1e-5,
        remove_mean: true,
        affine: true,
        momentum,
    };
    BatchNorm::new(candle_nn::batch_norm(channels, cfg, vb)?)
}
