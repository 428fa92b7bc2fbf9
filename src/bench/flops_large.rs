//! The conv and linear layers of the two larger networks (Wide ResNet 16-8, DenseNet-121), in
//! order, as src/model/wrn.rs and src/model/densenet.rs build them: what `flops` counts.

use super::flops::Layer;
use crate::model::{densenet, wrn};

/// Output side of a convolution with padding kernel / 2.
fn out_side(side: usize, kernel: usize, stride: usize) -> usize {
    (side + 2 * (kernel / 2) - kernel) / stride + 1
}

fn conv(cin: usize, cout: usize, kernel: usize, (h, w): (usize, usize)) -> Layer {
    Layer::Conv {
        cin,
        cout,
        kernel,
        out_h: h,
        out_w: w,
        bias: false,
    }
}

/// WRN-16-8 on `channels` x `h` x `w` images.
pub fn wrn_layers(channels: usize, h: usize, w: usize, classes: usize) -> Vec<Layer> {
    let mut hw = (h, w);
    let mut out = vec![conv(channels, 16, 3, hw)];
    let mut cin = 16;
    for (g, &width) in wrn::WideResNet::WIDTHS.iter().enumerate() {
        for b in 0..wrn::BLOCKS_PER_GROUP {
            let stride = if g > 0 && b == 0 { 2 } else { 1 };
            let down = (out_side(hw.0, 3, stride), out_side(hw.1, 3, stride));
            out.push(conv(cin, width, 3, down));
            out.push(conv(width, width, 3, down));
            if cin != width || stride != 1 {
                out.push(conv(cin, width, 1, down));
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

/// DenseNet-121 (CIFAR form) on `channels` x `h` x `w` images.
pub fn densenet_layers(channels: usize, h: usize, w: usize, classes: usize) -> Vec<Layer> {
    let mut hw = (h, w);
    let mut out = vec![conv(channels, densenet::STEM, 3, hw)];
    let mut c = densenet::STEM;
    for (b, &layers) in densenet::BLOCKS.iter().enumerate() {
        for _ in 0..layers {
            out.push(conv(c, densenet::BOTTLENECK, 1, hw));
            out.push(conv(densenet::BOTTLENECK, densenet::GROWTH, 3, hw));
            c += densenet::GROWTH;
        }
        if b + 1 < densenet::BLOCKS.len() {
            out.push(conv(c, c / 2, 1, hw));
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
