//! Image classifiers: an MLP, a small CNN, ResNet-20 (option A), VGG-16-BN, Wide ResNet 16-8 and
//! DenseNet-121 (CIFAR form), built with seeded PyTorch-style initialisation, plus the flat view of
//! their parameters that averaging works on and their evaluation on a data set (`evaluate`).

pub mod cnn;
pub mod densenet;
pub mod evaluate;
pub mod init;
pub mod layers;
pub mod mlp;
pub mod params;
pub mod pool;
pub mod resnet;
pub mod vgg;
pub mod wrn;

use std::fmt;
use std::str::FromStr;

use candle_core::{Device, Result as CResult, Tensor};
use candle_nn::{ModuleT, VarMap};
use serde::{Deserialize, Serialize};

use crate::data::ImageShape;
pub use params::{LayerEntry, ParamSet};

/// Which network to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Mlp,
    Cnn,
    Resnet20,
    Vgg16,
    /// Wide ResNet 16-8.
    #[serde(rename = "wrn16-8")]
    Wrn16_8,
    Densenet121,
}

impl ModelKind {
    /// Every model, in the order `--help` lists them.
    pub fn all() -> &'static [ModelKind] {
        &[
            ModelKind::Mlp,
            ModelKind::Cnn,
            ModelKind::Resnet20,
            ModelKind::Vgg16,
            ModelKind::Wrn16_8,
            ModelKind::Densenet121,
        ]
    }

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
            ModelKind::Cnn => "cnn",
            ModelKind::Resnet20 => "resnet20",
            ModelKind::Vgg16 => "vgg16",
            ModelKind::Wrn16_8 => "wrn16-8",
            ModelKind::Densenet121 => "densenet121",
        }
    }

    /// The image shape the synthetic data set takes for this model: MNIST's for the MNIST-sized
    /// models, CIFAR's for the others.
    pub fn synthetic_shape(self) -> ImageShape {
        match self {
            ModelKind::Mlp | ModelKind::Cnn => ImageShape {
                channels: 1,
                height: 28,
                width: 28,
            },
            ModelKind::Resnet20
            | ModelKind::Vgg16
            | ModelKind::Wrn16_8
            | ModelKind::Densenet121 => ImageShape {
                channels: 3,
                height: 32,
                width: 32,
            },
        }
    }

    /// The image shape this model is fed from a folder data set, or the synthetic one: its
    /// channels (1 for the MNIST-sized models, 3 for the others; [`ModelKind::synthetic_shape`])
    /// and `side` x `side` (`--image-size`), by default its usual side.
    pub fn input_shape(self, side: Option<usize>) -> ImageShape {
        let usual = self.synthetic_shape();
        let side = side.unwrap_or(usual.height);
        ImageShape::new(usual.channels, side, side)
    }

    /// Whether this model can take images of `shape`; the error says why not.
    pub fn check_input(self, shape: ImageShape) -> Result<(), String> {
        let (h, w) = (shape.height, shape.width);
        match self {
            ModelKind::Mlp => Ok(()),
            ModelKind::Cnn => match (cnn::feature_side(h), cnn::feature_side(w)) {
                (Some(_), Some(_)) => Ok(()),
                _ => Err(format!("cnn needs images of at least 10x10, this data set has {h}x{w}")),
            },
            ModelKind::Resnet20 if h >= 4 && w >= 4 => Ok(()),
            ModelKind::Resnet20 => Err(format!("resnet20 needs images of at least 4x4, this data set has {h}x{w}")),
            ModelKind::Vgg16 if h % vgg::REDUCTION == 0 && w % vgg::REDUCTION == 0 && h > 0 && w > 0 => Ok(()),
            ModelKind::Vgg16 => Err(format!(
                "vgg16 needs image sides that are multiples of 32 (CIFAR), this data set has {h}x{w}"
            )),
            ModelKind::Wrn16_8 => Ok(()),
            ModelKind::Densenet121 if h >= densenet::MIN_SIDE && w >= densenet::MIN_SIDE => Ok(()),
            ModelKind::Densenet121 => Err(format!(
                "densenet121 needs images of at least {0}x{0}, this data set has {h}x{w}",
                densenet::MIN_SIDE
            )),
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ModelKind::all()
            .iter()
            .copied()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = ModelKind::all().iter().map(|m| m.name()).collect();
                format!("unknown model '{s}': expected one of {}", names.join(", "))
            })
    }
}

impl ModelKind {
    /// The network of this kind for `shape` images and `classes` classes, its variables created
    /// through `vb` (which fixes their dtype, device and initialisation). The one place a kind
    /// becomes a network: training models and flatness's f64 twins both come from here.
    pub fn network(
        self,
        shape: ImageShape,
        classes: usize,
        bn_momentum: f64,
        vb: candle_nn::VarBuilder,
    ) -> CResult<Box<dyn ModuleT + Send + Sync>> {
        Ok(match self {
            ModelKind::Mlp => Box::new(mlp::Mlp::new(shape.len(), classes, vb)?),
            ModelKind::Cnn => Box::new(cnn::Cnn::new(shape, classes, bn_momentum, vb)?),
            ModelKind::Resnet20 => Box::new(resnet::ResNet20::new(
                shape.channels,
                classes,
                bn_momentum,
                vb,
            )?),
            ModelKind::Vgg16 => Box::new(vgg::Vgg16::new(
                shape.channels,
                shape.height,
                shape.width,
                classes,
                bn_momentum,
                vb,
            )?),
            ModelKind::Wrn16_8 => Box::new(wrn::WideResNet::new(
                shape.channels,
                classes,
                bn_momentum,
                vb,
            )?),
            ModelKind::Densenet121 => Box::new(densenet::DenseNet::new(
                shape.channels,
                classes,
                bn_momentum,
                vb,
            )?),
        })
    }
}

/// A built network with its variables.
pub struct Model {
    pub kind: ModelKind,
    pub device: Device,
    pub varmap: VarMap,
    /// Trainable parameters, sorted by name.
    pub params: ParamSet,
    /// BatchNorm running statistics (empty for models without BatchNorm).
    pub buffers: ParamSet,
    net: Box<dyn ModuleT + Send + Sync>,
}

impl Model {
    /// Builds `kind` for `shape` images and `num_classes` classes, initialised from `seed`.
    pub fn new(
        kind: ModelKind,
        shape: ImageShape,
        num_classes: usize,
        seed: u64,
        device: &Device,
    ) -> crate::Result<Self> {
        Self::with_bn_momentum(kind, shape, num_classes, seed, layers::BN_MOMENTUM, device)
    }

    /// As `new`, with BatchNorm's running-statistics momentum set (evaluation uses 1.0 to
    /// recalibrate the statistics exactly; see `train::evaluator`).
    pub fn with_bn_momentum(
        kind: ModelKind,
        shape: ImageShape,
        num_classes: usize,
        seed: u64,
        bn_momentum: f64,
        device: &Device,
    ) -> crate::Result<Self> {
        kind.check_input(shape).map_err(crate::Error::Usage)?;
        let varmap = VarMap::new();
        let vb = init::SeededVarMap::new(varmap.clone(), seed).into_var_builder(device);
        let net = kind.network(shape, num_classes, bn_momentum, vb)?;
        Ok(Self {
            kind,
            device: device.clone(),
            params: ParamSet::trainable(&varmap),
            buffers: ParamSet::buffers(&varmap),
            varmap,
            net,
        })
    }

    /// Logits for a batch of images (N, C, H, W); `train` selects BatchNorm's training mode.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> CResult<Tensor> {
        self.net.forward_t(xs, train)
    }
}
