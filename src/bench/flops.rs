//! Analytic FLOP counts per image. Only convolutions and fully connected layers count: a conv
//! costs `2 * Cout * Cin * k * k * Ho * Wo`, a linear layer `2 * in * out` (one multiply and one
//! add per weight use); biases, BatchNorm, ReLU, pooling and the loss are left out. A training step
//! is taken as three forward passes (forward, plus backward's two products: the gradient of the
//! input and of the weight), the usual convention.

use crate::data::ImageShape;
use crate::model::{cnn, densenet, wrn, ModelKind};

/// A layer that does a matrix product, with the sizes its cost depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// A 2-D convolution producing an `out_h x out_w` map.
    Conv {
        cin: usize,
        cout: usize,
        kernel: usize,
        out_h: usize,
        out_w: usize,
        bias: bool,
    },
    /// A fully connected layer (always with bias here).
    Linear { inputs: usize, outputs: usize },
}

impl Layer {
    /// Multiply-accumulates for one image.
    pub fn macs(&self) -> u64 {
        let v = match *self {
            Layer::Conv {
                cin,
                cout,
                kernel,
                out_h,
                out_w,
                ..
            } => cout * cin * kernel * kernel * out_h * out_w,
            Layer::Linear { inputs, outputs } => inputs * outputs,
        };
        v as u64
    }

    /// Trainable values: weight plus bias.
    pub fn params(&self) -> usize {
        match *self {
            Layer::Conv {
                cin,
                cout,
                kernel,
                bias,
                ..
            } => cout * cin * kernel * kernel + if bias { cout } else { 0 },
            Layer::Linear { inputs, outputs } => inputs * outputs + outputs,
        }
    }
}

/// VGG-16's conv widths, 0 for a 2x2 max-pool (as src/model/vgg.rs; the parameter-count test
/// checks the two agree).
const VGG16_CFG: [usize; 18] = [
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
];

/// Output side of a convolution.
fn conv_out(side: usize, kernel: usize, stride: usize, pad: usize) -> usize {
    (side + 2 * pad - kernel) / stride + 1
}

/// The conv and linear layers of `kind` on `shape` images with `classes` outputs, in order, as
/// src/model builds them. `shape` must be one the model accepts (`ModelKind::check_input`).
pub fn layers(kind: ModelKind, shape: ImageShape, classes: usize) -> Vec<Layer> {
    let (c, h, w) = (shape.channels, shape.height, shape.width);
    match kind {
        ModelKind::Mlp => mlp_layers(c * h * w, classes),
        ModelKind::Cnn => cnn_layers(c, (h, w), classes),
        ModelKind::Resnet20 => resnet20_layers(c, (h, w), classes),
        ModelKind::Vgg16 => vgg16_layers(c, (h, w), classes),
        ModelKind::Wrn16_8 => wrn_layers(c, (h, w), classes),
        ModelKind::Densenet121 => densenet_layers(c, (h, w), classes),
    }
}

/// The MLP's two layers, as src/model/mlp.rs builds them.
fn mlp_layers(inputs: usize, classes: usize) -> Vec<Layer> {
    vec![
        Layer::Linear {
            inputs,
            outputs: crate::model::mlp::HIDDEN,
        },
        Layer::Linear {
            inputs: crate::model::mlp::HIDDEN,
            outputs: classes,
        },
    ]
}

/// The small CNN's layers, as src/model/cnn.rs builds them: valid conv3x3, pool2, valid conv3x3,
/// pool2, two linear layers.
fn cnn_layers(c: usize, (h, w): (usize, usize), classes: usize) -> Vec<Layer> {
    let (h1, w1) = (h - 2, w - 2);
    let (h2, w2) = (h1 / 2 - 2, w1 / 2 - 2);
    let (fh, fw) = (
        cnn::feature_side(h).unwrap_or(0),
        cnn::feature_side(w).unwrap_or(0),
    );
    let conv = |cin, cout, out_h, out_w| Layer::Conv {
        cin,
        cout,
        kernel: 3,
        out_h,
        out_w,
        bias: true,
    };
    vec![
        conv(c, 32, h1, w1),
        conv(32, 64, h2, w2),
        Layer::Linear {
            inputs: 64 * fh * fw,
            outputs: 128,
        },
        Layer::Linear {
            inputs: 128,
            outputs: classes,
        },
    ]
}

/// ResNet-20's layers, as src/model/resnet.rs builds them (its shortcuts have no weights).
fn resnet20_layers(c: usize, hw: (usize, usize), classes: usize) -> Vec<Layer> {
    // A 3x3 convolution (padding 1) and the side of the map it produces.
    let conv = |cin, cout, stride, (ih, iw): (usize, usize)| {
        let out = (conv_out(ih, 3, stride, 1), conv_out(iw, 3, stride, 1));
        (conv_nb(cin, cout, 3, out), out)
    };
    let (first, mut hw) = conv(c, 16, 1, hw);
    let mut out = vec![first];
    let mut in_planes = 16;
    for (stage, planes) in [16, 32, 64].into_iter().enumerate() {
        for b in 0..crate::model::resnet::ResNet20::BLOCKS_PER_STAGE {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            let (c1, hw1) = conv(in_planes, planes, stride, hw);
            let (c2, hw2) = conv(planes, planes, 1, hw1);
            out.extend([c1, c2]);
            hw = hw2;
            in_planes = planes;
        }
    }
    out.push(Layer::Linear {
        inputs: 64,
        outputs: classes,
    });
    out
}

/// VGG-16's layers, as src/model/vgg.rs builds them.
fn vgg16_layers(c: usize, (h, w): (usize, usize), classes: usize) -> Vec<Layer> {
    let mut out = Vec::new();
    let (mut cin, mut hh, mut ww) = (c, h, w);
    for &cout in VGG16_CFG.iter() {
        if cout == 0 {
            (hh, ww) = (hh / 2, ww / 2);
            continue;
        }
        out.push(Layer::Conv {
            cin,
            cout,
            kernel: 3,
            out_h: hh,
            out_w: ww,
            bias: true,
        });
        cin = cout;
    }
    out.push(Layer::Linear {
        inputs: 512 * hh * ww,
        outputs: classes,
    });
    out
}

/// A bias-free convolution (padding kernel / 2) producing an `h x w` map.
fn conv_nb(cin: usize, cout: usize, kernel: usize, (h, w): (usize, usize)) -> Layer {
    Layer::Conv {
        cin,
        cout,
        kernel,
        out_h: h,
        out_w: w,
        bias: false,
    }
}

/// WRN-16-8's layers, as src/model/wrn.rs builds them.
fn wrn_layers(c: usize, mut hw: (usize, usize), classes: usize) -> Vec<Layer> {
    let mut out = vec![conv_nb(c, 16, 3, hw)];
    let mut cin = 16;
    for (g, &width) in wrn::WideResNet::WIDTHS.iter().enumerate() {
        for b in 0..wrn::BLOCKS_PER_GROUP {
            let stride = if g > 0 && b == 0 { 2 } else { 1 };
            let down = (conv_out(hw.0, 3, stride, 1), conv_out(hw.1, 3, stride, 1));
            out.push(conv_nb(cin, width, 3, down));
            out.push(conv_nb(width, width, 3, down));
            if cin != width || stride != 1 {
                out.push(conv_nb(cin, width, 1, down));
            }
            (hw, cin) = (down, width);
        }
    }
    out.push(Layer::Linear {
        inputs: cin,
        outputs: classes,
    });
    out
}

/// DenseNet-121's (CIFAR form) layers, as src/model/densenet.rs builds them.
fn densenet_layers(c: usize, mut hw: (usize, usize), classes: usize) -> Vec<Layer> {
    let mut out = vec![conv_nb(c, densenet::STEM, 3, hw)];
    let mut c = densenet::STEM;
    for (b, &layers) in densenet::BLOCKS.iter().enumerate() {
        for _ in 0..layers {
            out.push(conv_nb(c, densenet::BOTTLENECK, 1, hw));
            out.push(conv_nb(densenet::BOTTLENECK, densenet::GROWTH, 3, hw));
            c += densenet::GROWTH;
        }
        if b + 1 < densenet::BLOCKS.len() {
            out.push(conv_nb(c, c / 2, 1, hw));
            c /= 2;
            hw = (hw.0 / 2, hw.1 / 2);
        }
    }
    out.push(Layer::Linear {
        inputs: c,
        outputs: classes,
    });
    out
}

/// Forward FLOPs per image: 2 x the multiply-accumulates of every conv and linear layer.
pub fn forward_flops(kind: ModelKind, shape: ImageShape, classes: usize) -> u64 {
    2 * layers(kind, shape, classes)
        .iter()
        .map(Layer::macs)
        .sum::<u64>()
}

/// FLOPs of one training step per image: forward plus backward, counted as 3 x forward.
pub fn train_flops(kind: ModelKind, shape: ImageShape, classes: usize) -> u64 {
    3 * forward_flops(kind, shape, classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlp_is_two_matrix_products() {
        let shape = ImageShape::new(1, 28, 28);
        assert_eq!(
            forward_flops(ModelKind::Mlp, shape, 10),
            2 * (784 * 256 + 256 * 10)
        );
        assert_eq!(
            train_flops(ModelKind::Mlp, shape, 10),
            (784 * 256 + 256 * 10) * 2 * 3
        );
    }

    #[test]
    fn cnn_by_hand() {
        // conv1 1->32 at 26x26, conv2 32->64 at 11x11, fc 1600->128, fc 128->10.
        let macs = 32 * 9 * 26 * 26 + 64 * 32 * 9 * 11 * 11 + 1600 * 128 + 128 * 10;
        assert_eq!(
            forward_flops(ModelKind::Cnn, ImageShape::new(1, 28, 28), 10),
            2 * macs
        );
    }

    #[test]
    fn resnet20_by_hand() {
        // Stem 3->16 at 32x32; stage 1: six 16->16 at 32x32; stage 2: 16->32 (stride 2) and five
        // 32->32 at 16x16; stage 3: 32->64 and five 64->64 at 8x8; fc 64->10.
        let stem = 3 * 16 * 9 * 1024;
        let s1 = 6 * 16 * 16 * 9 * 1024;
        let s2 = 16 * 32 * 9 * 256 + 5 * 32 * 32 * 9 * 256;
        let s3 = 32 * 64 * 9 * 64 + 5 * 64 * 64 * 9 * 64;
        let macs: u64 = stem + s1 + s2 + s3 + 64 * 10;
        assert_eq!(macs, 40_551_040);
        assert_eq!(
            forward_flops(ModelKind::Resnet20, ImageShape::new(3, 32, 32), 10),
            81_102_080
        );
    }

    #[test]
    fn vgg16_at_32x32() {
        // The usual figure for CIFAR VGG-16: 313.2 M multiply-accumulates in the convolutions.
        let f = forward_flops(ModelKind::Vgg16, ImageShape::new(3, 32, 32), 10);
        assert_eq!(f, 2 * (313_196_544 + 512 * 10));
    }
}
