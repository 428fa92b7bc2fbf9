//! The paper's larger networks: Wide ResNet 16-8 and DenseNet-121 (CIFAR form). Parameter counts
//! and layer tables against the published architectures, their initialisation, any input size
//! and class count, and Hessian-vector products through their layers (flatness).

use candle_core::{Device, Tensor};
use grawa_train::bench::flops::{forward_flops, layers};
use grawa_train::data::ImageShape;
use grawa_train::flatness::ModelHessian;
use grawa_train::model::{Model, ModelKind};

const CIFAR: ImageShape = ImageShape {
    channels: 3,
    height: 32,
    width: 32,
};

fn build(kind: ModelKind, shape: ImageShape, classes: usize) -> Model {
    Model::new(kind, shape, classes, 0, &Device::Cpu).unwrap()
}

/// The length of the named entry of the model's layer table.
fn len_of(m: &Model, name: &str) -> usize {
    let e = m.params.table().iter().find(|e| e.name == name);
    e.unwrap_or_else(|| panic!("no layer {name}")).len
}

/// The values of the named entry.
fn values(m: &Model, name: &str) -> Vec<f32> {
    let flat = m.params.to_flat().unwrap();
    let e = m.params.table().iter().find(|e| e.name == name).unwrap();
    flat[e.offset..e.offset + e.len].to_vec()
}

fn std_of(v: &[f32]) -> f64 {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    (v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n).sqrt()
}

/// WRN-16-8, 10 classes, derived by hand (conv k x k: cin*cout*k*k; BatchNorm: 2c):
/// - stem conv 3->16: 432
/// - group 1 (16 -> 128): block 1: BN(16) 32 + conv 16*128*9 = 18,432 + BN(128) 256 + conv
///   128*128*9 = 147,456 + 1x1 shortcut 16*128 = 2,048; block 2: 256 + 147,456 + 256 + 147,456.
///   Sum 463,648.
/// - group 2 (128 -> 256, stride 2): 256 + 294,912 + 512 + 589,824 + 32,768; 512 + 589,824 + 512
///   + 589,824. Sum 2,098,944.
/// - group 3 (256 -> 512, stride 2): 512 + 1,179,648 + 1,024 + 2,359,296 + 131,072; 1,024 +
///   2,359,296 + 1,024 + 2,359,296. Sum 8,392,192.
/// - final BN(512) 1,024; Linear 512*10 + 10 = 5,130.
///
/// Total 10,961,370: the paper's "11.0M" for WRN-16-8 (Zagoruyko and Komodakis 2016), and what
/// PyTorch counts (`sum(p.numel() for p in net.parameters())`) for the WideResNet of
/// scripts/bench_pytorch.py, written after the authors' PyTorch port (depth 16, widen 8).
#[test]
fn wrn16_8_has_the_published_parameter_count() {
    let m = build(ModelKind::Wrn16_8, CIFAR, 10);
    assert_eq!(
        432 + 463_648 + 2_098_944 + 8_392_192 + 1_024 + 5_130,
        10_961_370
    );
    assert_eq!(m.params.len(), 10_961_370);
    // 100 classes: only the Linear changes, 512*100 + 100 instead of 5,130.
    let m100 = build(ModelKind::Wrn16_8, CIFAR, 100);
    assert_eq!(m100.params.len(), 10_961_370 - 5_130 + 51_300);
}

/// DenseNet-121 (CIFAR form), 10 classes, derived by hand. A dense layer with c input channels:
/// BN(c) 2c + conv1x1 c*128 + BN(128) 256 + conv3x3 128*32*9 = 36,864, i.e. 130c + 37,120.
/// A block of L layers from c0 channels: sum over i < L of 130(c0 + 32i) + 37,120
/// = 130 L c0 + 4,160 L(L-1)/2 + 37,120 L. A transition from c: BN 2c + conv c*(c/2).
/// - stem conv 3->64: 1,728
/// - block 1 (6 layers from 64): 49,920 + 62,400 + 222,720 = 335,040; transition 256->128:
///   512 + 32,768
/// - block 2 (12 from 128): 199,680 + 274,560 + 445,440 = 919,680; transition 512->256: 1,024 +
///   131,072
/// - block 3 (24 from 256): 798,720 + 1,148,160 + 890,880 = 2,837,760; transition 1024->512:
///   2,048 + 524,288
/// - block 4 (16 from 512): 1,064,960 + 499,200 + 593,920 = 2,158,080
/// - final BN(1024) 2,048; Linear 1024*10 + 10 = 10,250.
///
/// Total 6,956,298: the "7.0M" of the CIFAR DenseNet-121 of the model zoos (kuangliu's
/// pytorch-cifar `DenseNet121()`), and what PyTorch counts for the DenseNet121 of
/// scripts/bench_pytorch.py and for a transcription of kuangliu's definition.
#[test]
fn densenet121_has_the_published_parameter_count() {
    let block = |l: usize, c0: usize| 130 * l * c0 + 4_160 * l * (l - 1) / 2 + 37_120 * l;
    assert_eq!(block(6, 64), 335_040);
    assert_eq!(block(24, 256), 2_837_760);
    let total = 1_728
        + block(6, 64)
        + 512
        + 32_768
        + block(12, 128)
        + 1_024
        + 131_072
        + block(24, 256)
        + 2_048
        + 524_288
        + block(16, 512)
        + 2_048
        + 10_250;
    assert_eq!(total, 6_956_298);
    let m = build(ModelKind::Densenet121, CIFAR, 10);
    assert_eq!(m.params.len(), 6_956_298);
    let m100 = build(ModelKind::Densenet121, CIFAR, 100);
    assert_eq!(m100.params.len(), 6_956_298 - 10_250 + 102_500);
}

/// The layer tables name the published layers with their shapes: WRN's widths 128/256/512, 1x1
/// projections where a group starts, no projection inside a group; DenseNet's channel counts
/// 64 -> 256 -> 128 -> 512 -> 256 -> 1024 -> 512 -> 1024.
#[test]
fn layer_tables_follow_the_architectures() {
    let w = build(ModelKind::Wrn16_8, CIFAR, 10);
    assert_eq!(len_of(&w, "conv1.weight"), 3 * 16 * 9);
    assert_eq!(len_of(&w, "block1.0.shortcut.weight"), 16 * 128);
    assert_eq!(len_of(&w, "block2.0.conv1.weight"), 128 * 256 * 9);
    assert_eq!(len_of(&w, "block3.1.conv2.weight"), 512 * 512 * 9);
    assert_eq!(len_of(&w, "fc.weight"), 512 * 10);
    let names: Vec<&str> = w.params.table().iter().map(|e| e.name.as_str()).collect();
    assert!(!names.iter().any(|n| n.starts_with("block1.1.shortcut")));
    // 2 blocks x 3 groups, 4 or 5 tensors of a block's BN and convs each... counted: 3
    // projections, 12 convolutions, 12 block BNs (weight + bias), final BN, stem, fc.
    assert_eq!(
        names
            .iter()
            .filter(|n| n.ends_with("shortcut.weight"))
            .count(),
        3
    );
    assert_eq!(
        w.buffers.table().len(),
        2 * 13,
        "13 BatchNorms, mean and var each"
    );

    let d = build(ModelKind::Densenet121, CIFAR, 10);
    assert_eq!(len_of(&d, "features.conv0.weight"), 3 * 64 * 9);
    assert_eq!(
        len_of(&d, "features.denseblock1.denselayer1.conv1.weight"),
        64 * 128
    );
    assert_eq!(
        len_of(&d, "features.denseblock1.denselayer6.norm1.weight"),
        64 + 5 * 32
    );
    assert_eq!(len_of(&d, "features.transition1.conv.weight"), 256 * 128);
    assert_eq!(
        len_of(&d, "features.denseblock2.denselayer12.norm1.weight"),
        128 + 11 * 32
    );
    assert_eq!(len_of(&d, "features.transition3.conv.weight"), 1024 * 512);
    assert_eq!(
        len_of(&d, "features.denseblock4.denselayer16.conv2.weight"),
        128 * 32 * 9
    );
    assert_eq!(len_of(&d, "features.norm5.weight"), 1024);
    assert_eq!(len_of(&d, "classifier.weight"), 1024 * 10);
    let convs = d
        .params
        .table()
        .iter()
        .filter(|e| e.name.ends_with("conv1.weight"))
        .count();
    assert_eq!(convs, 6 + 12 + 24 + 16, "one bottleneck per dense layer");
    // 121 = 1 stem + 2 x 58 dense-layer convolutions + 3 transitions + 1 Linear.
    let weights = d
        .params
        .table()
        .iter()
        .filter(|e| e.name.contains("conv") || e.name.starts_with("classifier.weight"))
        .count();
    assert_eq!(weights, 121);
}

/// The FLOP counter's layers (src/bench) are the model's: their weights plus the BatchNorms give
/// the parameter count.
#[test]
fn the_benchmarks_layer_lists_match_the_models() {
    for (kind, bn) in [
        // BatchNorm values: WRN 2 x (16 + 128 + 128 + 256 + 256 + 512 + 512 + 512 + ... ) read
        // from the model itself (every `.weight`/`.bias` of a norm layer).
        (ModelKind::Wrn16_8, "bn"),
        (ModelKind::Densenet121, "norm"),
    ] {
        let m = build(kind, CIFAR, 10);
        let bn_params: usize = m
            .params
            .table()
            .iter()
            .filter(|e| e.name.rsplit('.').nth(1).is_some_and(|l| l.starts_with(bn)))
            .map(|e| e.len)
            .sum();
        let counted: usize = layers(kind, CIFAR, 10).iter().map(|l| l.params()).sum();
        // The FLOP counter's Linear carries a bias, as the models' does.
        assert_eq!(counted + bn_params, m.params.len(), "{kind}");
    }
    // Forward FLOPs per 32x32 image as scripts/bench_pytorch.py counts them with forward hooks
    // on its PyTorch twins of the two networks (2 x multiply-accumulates of every Conv2d and
    // Linear): 3,096,291,328 and 1,776,701,440.
    assert_eq!(forward_flops(ModelKind::Wrn16_8, CIFAR, 10), 3_096_291_328);
    assert_eq!(
        forward_flops(ModelKind::Densenet121, CIFAR, 10),
        1_776_701_440
    );
}

/// Convolutions: kaiming_normal_(mode='fan_out'), std sqrt(2 / (cout k k)); BatchNorm 1 and 0;
/// the Linear's bias 0 and its weight U(-1/sqrt(in), 1/sqrt(in)).
#[test]
fn initialisation_follows_the_references() {
    let w = build(ModelKind::Wrn16_8, CIFAR, 10);
    // block3.1.conv2: 512 -> 512, 3x3: fan_out 4,608, std 0.02083 (2.36 M draws: within 1%).
    let std = std_of(&values(&w, "block3.1.conv2.weight"));
    let want = (2.0f64 / 4_608.0).sqrt();
    assert!(
        (std - want).abs() < 0.01 * want,
        "wrn conv std {std} vs {want}"
    );
    // The stem has fan_in 27 but fan_out 144: sqrt(2/144) = 0.118 (fan_in would give 0.272).
    let std = std_of(&values(&w, "conv1.weight"));
    let want = (2.0f64 / 144.0).sqrt();
    assert!(
        (std - want).abs() < 0.15 * want,
        "stem std {std} vs {want} (432 draws)"
    );
    assert!(values(&w, "bn.weight").iter().all(|&v| v == 1.0));
    assert!(values(&w, "block2.0.bn1.bias").iter().all(|&v| v == 0.0));
    assert!(values(&w, "fc.bias").iter().all(|&v| v == 0.0));
    let bound = 1.0 / (512f32).sqrt();
    let fc = values(&w, "fc.weight");
    assert!(fc.iter().all(|v| v.abs() <= bound));
    assert!(
        std_of(&fc) > 0.5 * bound as f64 / 3f64.sqrt(),
        "uniform, not zero"
    );

    let d = build(ModelKind::Densenet121, CIFAR, 10);
    // denselayer conv2: 128 -> 32, 3x3: fan_out 288, std 0.0833.
    let std = std_of(&values(
        &d,
        "features.denseblock3.denselayer24.conv2.weight",
    ));
    let want = (2.0f64 / 288.0).sqrt();
    assert!(
        (std - want).abs() < 0.02 * want,
        "densenet conv std {std} vs {want}"
    );
    assert!(values(&d, "features.norm5.weight")
        .iter()
        .all(|&v| v == 1.0));
    assert!(values(&d, "classifier.bias").iter().all(|&v| v == 0.0));
}

/// Any input size the architectures allow, any class count: logits of shape (N, classes).
#[test]
fn any_input_size_and_class_count() {
    let dev = Device::Cpu;
    for (kind, side, classes) in [
        (ModelKind::Wrn16_8, 8, 3),
        (ModelKind::Wrn16_8, 13, 7),
        (ModelKind::Densenet121, 8, 5),
        (ModelKind::Densenet121, 11, 2),
    ] {
        let shape = ImageShape::new(3, side, side);
        let m = Model::new(kind, shape, classes, 1, &dev).unwrap();
        let x = Tensor::randn(0f32, 1.0, (2, 3, side, side), &dev).unwrap();
        for train in [true, false] {
            let y = m.forward_t(&x, train).unwrap();
            assert_eq!(y.dims(), &[2, classes], "{kind} at {side}x{side}");
            let v: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
            assert!(v.iter().all(|x| x.is_finite()));
        }
    }
    // Three transitions halve the sides: DenseNet needs 8x8 at least.
    let err = Model::new(
        ModelKind::Densenet121,
        ImageShape::new(3, 7, 7),
        10,
        0,
        &dev,
    );
    assert!(err.is_err_and(|e| e.to_string().contains("at least 8x8")));
}

/// Flatness differences gradients: through concatenation, average pooling, projections and the
/// pre-activation blocks the Hessian-vector products must be those of a symmetric matrix,
/// u.(Hv) = v.(Hu), and not zero (in f64, on one fixed image; the smallest inputs each network
/// takes, 8x8 for DenseNet, whose last block then sees 1x1: f64 products through candle's
/// convolutions are slow).
#[test]
fn hessian_vector_products_go_through_the_new_layers() {
    let dev = Device::Cpu;
    for (kind, side) in [(ModelKind::Wrn16_8, 4), (ModelKind::Densenet121, 8)] {
        let t = std::time::Instant::now();
        let shape = ImageShape::new(3, side, side);
        let m = Model::new(kind, shape, 4, 3, &dev).unwrap();
        let images: Vec<f32> = (0..shape.len())
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        let batch = grawa_train::data::Batch {
            images,
            labels: vec![3],
            shape,
        };
        let mut h = ModelHessian::new(&m, &batch, 1).unwrap();
        let n = h.dim();
        let u: Vec<f64> = (0..n)
            .map(|i| ((i * 7919 % 1000) as f64 / 500.0) - 1.0)
            .collect();
        let v: Vec<f64> = (0..n)
            .map(|i| ((i * 104_729 % 997) as f64 / 498.5) - 1.0)
            .collect();
        let hv = h.hvp(&v).unwrap();
        let hu = h.hvp(&u).unwrap();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let (a, b) = (dot(&u, &hv), dot(&v, &hu));
        assert!(a.abs() > 1e-8, "{kind}: u.Hv = {a}: no curvature seen");
        assert!(
            (a - b).abs() <= 1e-3 * a.abs().max(b.abs()),
            "{kind}: u.Hv {a} vs v.Hu {b}"
        );
        let secs = t.elapsed().as_secs_f64();
        eprintln!("{kind}: u.Hv {a:.6e}, v.Hu {b:.6e}, {secs:.1} s");
    }
}

/// 2x2 average pooling (DenseNet's transitions) of a 3x3 map: the mean of the top-left window
/// (0 + 1 + 3 + 4) / 4 = 2; an odd last row and column are dropped, so the gradient of the sum is
/// 1/4 on that window and 0 on them, as `nn.AvgPool2d(2)` gives.
#[test]
fn average_pooling_drops_an_odd_edge_in_value_and_gradient() {
    let x = candle_core::Var::from_tensor(
        &Tensor::arange(0f32, 9.0, &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 3, 3))
            .unwrap(),
    )
    .unwrap();
    let y = grawa_train::model::pool::avg_pool2x2(x.as_tensor()).unwrap();
    assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), [2.0]);
    let grads = y.sum_all().unwrap().backward().unwrap();
    let g: Vec<f32> = grads
        .get(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(g, [0.25, 0.25, 0.0, 0.25, 0.25, 0.0, 0.0, 0.0, 0.0]);
}
