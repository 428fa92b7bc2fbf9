//! `bn_relu_conv` (one graph node whose convolution reads x through BatchNorm's constants) against
//! the two layers it replaces, `conv.forward(&bn.forward_relu_t(x))`: forward, the gradients of
//! sum(y * r) with respect to x, the weight, gamma and beta, and the running statistics, bit for
//! bit (the same kernels run on the same values), on shapes that take the direct kernels (read
//! through the map), the channel-lane weight gradient and the paths given a mapped copy (stride
//! 2, small batches); and against candle's own BatchNorm, relu and conv2d within rounding, so the
//! comparison does not rest on our ops alone.

use candle_core::{Device, Tensor, Var};
use candle_nn::{Module, ModuleT};
use grawa_train::ops::batch_norm::BatchNorm;
use grawa_train::ops::bn_relu_conv::bn_relu_conv;
use grawa_train::ops::conv::Conv2d;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

const EPS: f64 = 1e-5;

fn normal(seed: u64, shape: &[usize], mean: f32, std: f32) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let d = Normal::new(mean, std).unwrap();
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| d.sample(&mut rng)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    v.iter().map(|x| x.to_bits()).collect()
}

/// max |a - b| / max |b|.
fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
    let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap();
    let scale = b.abs().unwrap().max_all().unwrap();
    (diff.to_scalar::<f32>().unwrap()) / scale.to_scalar::<f32>().unwrap().max(1e-30)
}

/// The layers and inputs of one case: gamma, beta, the weight and x are variables.
struct Setup {
    gamma: Var,
    beta: Var,
    w: Var,
    /// The convolution's bias, if it has one.
    b: Option<Var>,
    x: Var,
    /// The output's weights in the loss sum(y * r).
    r: Tensor,
    stride: usize,
    rm: Tensor,
    rv: Tensor,
}

#[allow(clippy::too_many_arguments)]
fn setup(
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    stride: usize,
    bias: bool,
    seed: u64,
) -> Setup {
    let var = |t: Tensor| Var::from_tensor(&t).unwrap();
    Setup {
        b: bias.then(|| var(normal(seed + 7, &[cout], 0.0, 0.5))),
        gamma: var(normal(seed, &[cin], 1.0, 0.5)),
        beta: var(normal(seed + 1, &[cin], 0.0, 0.7)),
        w: var(normal(seed + 2, &[cout, cin, 3, 3], 0.0, 0.3)),
        x: var(normal(seed + 3, &[n, cin, h, w], 0.4, 1.5)),
        r: normal(
            seed + 4,
            &[n, cout, h.div_ceil(stride), w.div_ceil(stride)],
            0.0,
            1.0,
        ),
        stride,
        rm: normal(seed + 5, &[cin], 0.2, 0.5),
        rv: normal(seed + 6, &[cin], 1.0, 0.2).abs().unwrap(),
    }
}

fn candle_bn(s: &Setup) -> candle_nn::BatchNorm {
    candle_nn::BatchNorm::new_with_momentum(
        s.gamma.dims()[0],
        s.rm.copy().unwrap(),
        s.rv.copy().unwrap(),
        s.gamma.as_tensor().clone(),
        s.beta.as_tensor().clone(),
        EPS,
        0.1,
    )
    .unwrap()
}

/// What one step gives: y, dx, dw, dgamma, dbeta and the running statistics after it.
struct Out {
    tensors: Vec<(&'static str, Tensor)>,
}

#[derive(Clone, Copy, PartialEq)]
enum Path {
    Fused,
    TwoLayers,
    Candle,
}

fn step(s: &Setup, path: Path, train: bool) -> Out {
    let bn = BatchNorm::new(candle_bn(s)).unwrap();
    let bias = s.b.as_ref().map(|b| b.as_tensor().clone());
    let conv = Conv2d::new(s.w.as_tensor().clone(), bias, s.stride, 1);
    let x = s.x.as_tensor();
    let (y, rm, rv) = match path {
        Path::Fused => (
            bn_relu_conv(&bn, &conv, x, train).unwrap(),
            bn.running_mean().clone(),
            bn.running_var().clone(),
        ),
        Path::TwoLayers => {
            let y = conv.forward(&bn.forward_relu_t(x, train).unwrap()).unwrap();
            (y, bn.running_mean().clone(), bn.running_var().clone())
        }
        Path::Candle => {
            let theirs = candle_bn(s);
            let z = theirs.forward_t(x, train).unwrap().relu().unwrap();
            let y = z.conv2d(s.w.as_tensor(), 1, s.stride, 1, 1).unwrap();
            let y = match &s.b {
                Some(b) => y
                    .broadcast_add(&b.as_tensor().reshape((1, (), 1, 1)).unwrap())
                    .unwrap(),
                None => y,
            };
            (
                y,
                theirs.running_mean().clone(),
                theirs.running_var().clone(),
            )
        }
    };
    let grads = (&y * &s.r).unwrap().sum_all().unwrap().backward().unwrap();
    let g = |v: &Var| grads.get(v.as_tensor()).expect("a gradient").clone();
    let mut tensors = vec![
        ("output", y.clone()),
        ("dx", g(&s.x)),
        ("dw", g(&s.w)),
        ("dgamma", g(&s.gamma)),
        ("dbeta", g(&s.beta)),
        ("running mean", rm),
        ("running var", rv),
    ];
    if let Some(b) = &s.b {
        tensors.push(("dbias", g(b)));
    }
    Out { tensors }
}

const CASES: &[(usize, usize, usize, usize, usize, usize, bool)] = &[
    // (n, cin, h, w, cout, stride, convolution bias)
    (2, 3, 5, 7, 4, 1, false),     // odd sizes, small planes
    (1, 4, 9, 9, 5, 1, true),      // batch 1
    (3, 5, 8, 6, 7, 2, false),     // stride 2
    (8, 16, 32, 32, 16, 1, false), // ResNet-20's first stage at batch 8: parallel paths
    (8, 32, 16, 16, 32, 1, false), // its second stage
    (4, 24, 16, 16, 40, 1, true),  // VGG-16-like, with the convolution's bias
    (4, 128, 4, 4, 64, 1, true),   // a deep VGG-16 layer (channel-lane forward, mapped copy)
];

fn each_case(f: impl Fn(&Setup, bool, &str) + Send + Sync) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        for (i, &(n, cin, h, w, cout, stride, bias)) in CASES.iter().enumerate() {
            let s = setup(n, cin, h, w, cout, stride, bias, 100 * i as u64);
            for train in [true, false] {
                f(
                    &s,
                    train,
                    &format!(
                        "{n}x{cin}x{h}x{w} -> {cout}, stride {stride}, bias {bias}, train {train}"
                    ),
                );
            }
        }
    });
}

#[test]
fn same_bits_as_the_two_layers() {
    each_case(|s, train, what| {
        let fused = step(s, Path::Fused, train);
        let two = step(s, Path::TwoLayers, train);
        for ((name, a), (_, b)) in fused.tensors.iter().zip(&two.tensors) {
            assert_eq!(a.dims(), b.dims(), "{what}: {name} shape");
            assert!(
                bits(a) == bits(b),
                "{what}: {name} differs (max rel {})",
                rel_err(a, b)
            );
        }
    });
}

#[test]
fn matches_candle() {
    // f32 sums of at most 9 * 32 products and BatchNorm's f64 statistics against candle's f32
    // ones: a few units in the sixth digit. A wrong tap or a missing term is off by 1e-2 or more.
    const TOL: f32 = 2e-5;
    each_case(|s, train, what| {
        let fused = step(s, Path::Fused, train);
        let theirs = step(s, Path::Candle, train);
        for ((name, a), (_, b)) in fused.tensors.iter().zip(&theirs.tensors) {
            let e = rel_err(a, b);
            assert!(e <= TOL, "{what}: {name}: max rel error {e}");
        }
    });
}

#[test]
fn a_second_use_of_the_output_still_gets_gradients() {
    // y feeding two consumers: candle sums their gradients before the fused op's backward runs.
    let s = setup(2, 4, 6, 6, 3, 1, false, 7);
    let bn = BatchNorm::new(candle_bn(&s)).unwrap();
    let conv = Conv2d::new(s.w.as_tensor().clone(), None, 1, 1);
    let y = bn_relu_conv(&bn, &conv, s.x.as_tensor(), true).unwrap();
    let loss =
        ((&y * &s.r).unwrap().sum_all().unwrap() + y.sqr().unwrap().sum_all().unwrap()).unwrap();
    let got = loss.backward().unwrap();
    let bn2 = BatchNorm::new(candle_bn(&s)).unwrap();
    let y2 = conv
        .forward(&bn2.forward_relu_t(s.x.as_tensor(), true).unwrap())
        .unwrap();
    let loss2 =
        ((&y2 * &s.r).unwrap().sum_all().unwrap() + y2.sqr().unwrap().sum_all().unwrap()).unwrap();
    let want = loss2.backward().unwrap();
    for v in [&s.x, &s.w, &s.gamma, &s.beta] {
        let (a, b) = (
            got.get(v.as_tensor()).unwrap(),
            want.get(v.as_tensor()).unwrap(),
        );
        assert!(
            bits(a) == bits(b),
            "gradient differs (max rel {})",
            rel_err(a, b)
        );
    }
}
