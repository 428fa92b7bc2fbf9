//! `ops::conv::Conv2d` (our CPU custom ops: direct AVX-512 convolution or im2col + GEMM, and
//! their backward ops) against candle's own `Tensor::conv2d`: the forward, and the gradients with
//! respect to input, weight and bias of a random linear functional sum(y * r), over many shapes,
//! on both kernel paths.

use std::sync::Mutex;

use candle_core::{Device, Module, Tensor, Var};
use grawa_train::ops::conv::{set_channel_fwd, set_channel_wgrad, set_direct_kernels, Conv2d};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TOL: f32 = 1e-4;

/// Held by the tests whose coverage depends on which kernel path runs: one turns the direct
/// kernels off for a while (results are right either way, only the path changes).
static PATH: Mutex<()> = Mutex::new(());

/// A tensor of uniform(-1, 1) values from a seeded generator.
fn rand_tensor(rng: &mut StdRng, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// max |a - b| / max |b| (b the reference).
fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let (a, b) = (values(a), values(b));
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    let diff = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / scale
}

#[derive(Clone, Copy, Debug)]
struct Case {
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    bias: bool,
}

#[allow(clippy::too_many_arguments)]
const fn case(
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    bias: bool,
) -> Case {
    Case {
        n,
        cin,
        h,
        w,
        cout,
        k,
        stride,
        pad,
        bias,
    }
}

/// candle's conv2d with the padding made explicit and the input cropped to the pixels the
/// kernel reads. Same values as `x.conv2d(w, pad, stride, 1, 1)`, but candle 0.11.1's backward
/// of that fails when (H + 2 pad - k) and (W + 2 pad - k) leave different remainders modulo the
/// stride (it derives the output padding of its transposed convolution from the height alone).
fn reference_conv(x: &Tensor, w: &Tensor, stride: usize, pad: usize) -> Tensor {
    let (_, _, h, wd) = x.dims4().unwrap();
    let k = w.dim(2).unwrap();
    let ho = (h + 2 * pad - k) / stride + 1;
    let wo = (wd + 2 * pad - k) / stride + 1;
    x.pad_with_zeros(2, pad, pad)
        .unwrap()
        .pad_with_zeros(3, pad, pad)
        .unwrap()
        .narrow(2, 0, (ho - 1) * stride + k)
        .unwrap()
        .narrow(3, 0, (wo - 1) * stride + k)
        .unwrap()
        .conv2d(w, 0, stride, 1, 1)
        .unwrap()
}

/// Output, input gradient, weight gradient and bias gradient of y = conv(x, w) + b under the loss
/// sum(y * r); `ours` picks our layer or candle's conv2d. `x` may be a non-contiguous view of `xv`.
struct Run {
    y: Tensor,
    dx: Tensor,
    dw: Tensor,
    db: Option<Tensor>,
}

fn run(c: &Case, xv: &Var, x: &Tensor, w: &Var, b: Option<&Var>, r: &Tensor, ours: bool) -> Run {
    let y = if ours {
        let layer = Conv2d::new(
            w.as_tensor().clone(),
            b.map(|b| b.as_tensor().clone()),
            c.stride,
            c.pad,
        );
        layer.forward(x).unwrap()
    } else {
        let y = reference_conv(x, w.as_tensor(), c.stride, c.pad);
        match b {
            Some(b) => y
                .broadcast_add(&b.as_tensor().reshape((1, c.cout, 1, 1)).unwrap())
                .unwrap(),
            None => y,
        }
    };
    let grads = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
    Run {
        dx: grads.get(xv.as_tensor()).unwrap().clone(),
        dw: grads.get(w.as_tensor()).unwrap().clone(),
        db: b.map(|b| grads.get(b.as_tensor()).unwrap().clone()),
        y,
    }
}

/// Our layer and candle's on one random case; returns the four relative errors. With
/// `transposed_input` the input is a (N, C, W, H) tensor transposed to (N, C, H, W).
fn compare(c: &Case, seed: u64, transposed_input: bool) -> [f32; 4] {
    let mut rng = StdRng::seed_from_u64(seed);
    let (xv, x) = if transposed_input {
        let xv = Var::from_tensor(&rand_tensor(&mut rng, &[c.n, c.cin, c.w, c.h])).unwrap();
        let x = xv.as_tensor().transpose(2, 3).unwrap();
        assert!(!x.is_contiguous());
        (xv, x)
    } else {
        let xv = Var::from_tensor(&rand_tensor(&mut rng, &[c.n, c.cin, c.h, c.w])).unwrap();
        let x = xv.as_tensor().clone();
        (xv, x)
    };
    let w = Var::from_tensor(&rand_tensor(&mut rng, &[c.cout, c.cin, c.k, c.k])).unwrap();
    let b = c
        .bias
        .then(|| Var::from_tensor(&rand_tensor(&mut rng, &[c.cout])).unwrap());
    let ho = (c.h + 2 * c.pad - c.k) / c.stride + 1;
    let wo = (c.w + 2 * c.pad - c.k) / c.stride + 1;
    let r = rand_tensor(&mut rng, &[c.n, c.cout, ho, wo]);
    let ours = run(c, &xv, &x, &w, b.as_ref(), &r, true);
    let reference = run(c, &xv, &x, &w, b.as_ref(), &r, false);
    let db = match (&ours.db, &reference.db) {
        (Some(a), Some(b)) => rel_err(a, b),
        _ => 0.0,
    };
    [
        rel_err(&ours.y, &reference.y),
        rel_err(&ours.dx, &reference.dx),
        rel_err(&ours.dw, &reference.dw),
        db,
    ]
}

fn check(c: &Case, seed: u64, transposed_input: bool) {
    let errs = compare(c, seed, transposed_input);
    let names = ["forward", "input grad", "weight grad", "bias grad"];
    for (e, name) in errs.iter().zip(names) {
        assert!(
            *e <= TOL,
            "{name}: relative error {e:e} for {c:?} (transposed input: {transposed_input})"
        );
    }
}

const CASES: &[Case] = &[
    case(1, 1, 5, 5, 1, 3, 1, 1, false),
    case(2, 3, 7, 9, 4, 3, 1, 1, true),
    case(3, 5, 8, 6, 7, 3, 2, 1, false),
    case(2, 4, 9, 7, 3, 5, 1, 2, true),
    case(2, 4, 11, 10, 6, 5, 2, 0, false),
    case(1, 3, 9, 8, 5, 5, 2, 2, true),
    case(4, 6, 6, 6, 5, 1, 1, 0, true),
    case(3, 3, 5, 7, 4, 1, 2, 0, false),
    case(2, 3, 4, 5, 2, 1, 1, 1, false),
    case(1, 2, 6, 5, 3, 3, 1, 2, false),
    case(2, 2, 6, 5, 3, 3, 1, 0, true),
    case(3, 2, 7, 7, 3, 3, 2, 2, false),
    case(1, 2, 3, 3, 2, 5, 1, 2, false),
    case(2, 3, 4, 4, 3, 5, 1, 1, false),
    // ResNet-like, with enough images that chunks hold several images and run in parallel.
    case(9, 8, 16, 16, 8, 3, 1, 1, false),
    case(7, 8, 9, 9, 16, 3, 2, 1, true),
    case(33, 4, 4, 4, 6, 3, 1, 1, false),
    case(17, 16, 8, 8, 32, 3, 2, 1, false),
    case(5, 3, 32, 32, 16, 3, 1, 1, false),
    // One per layout of the direct kernels: rows of 16 (stride 1 and 2), masked rows of 8 and 4
    // (stride 1 with kernels 3 and 5, stride 2), padded width; channel counts off the tiles.
    case(3, 4, 32, 32, 8, 3, 2, 1, true),
    case(4, 3, 16, 32, 5, 3, 1, 1, false),
    case(4, 3, 8, 8, 5, 5, 1, 2, true),
    case(6, 5, 8, 8, 9, 3, 1, 1, false),
    case(3, 6, 16, 16, 7, 3, 2, 1, false),
    case(4, 2, 10, 12, 3, 3, 1, 1, true),
    case(2, 17, 12, 12, 33, 3, 1, 1, false),
    // Images no larger than the kernel's reach (one GEMM per pixel pair): 2x2 and 1x1 with a
    // 3x3 kernel, 1x3 with a 5x5 one, 2x2 with stride 2 and padding 2.
    case(6, 8, 2, 2, 8, 3, 1, 1, true),
    case(5, 7, 1, 1, 9, 3, 1, 1, true),
    case(4, 3, 1, 3, 5, 5, 1, 2, false),
    case(3, 4, 2, 2, 6, 3, 2, 2, true),
    // The channel-lane weight gradient (32 input channels or more): its tiles (4, 2 and 1
    // vectors of 16 channels, channels off 16), small and odd images, no and double padding, and
    // row tiles cut short.
    case(5, 32, 4, 4, 64, 3, 1, 1, false),
    case(3, 33, 2, 2, 130, 3, 1, 1, true),
    case(4, 40, 6, 7, 32, 3, 1, 0, false),
    case(3, 32, 5, 9, 20, 3, 1, 2, false),
    case(6, 35, 8, 8, 96, 3, 1, 1, false),
    // The channel-lane forward and input gradient (small images, 128 channels or more in): a
    // forward only (64 out), both with Cout and Cin off the 64-channel blocks, no and double
    // padding (the input gradient's transposed padding is then 2 and 0).
    case(3, 128, 4, 4, 64, 3, 1, 1, true),
    case(4, 130, 5, 7, 144, 3, 1, 1, false),
    case(2, 128, 8, 8, 128, 3, 1, 0, true),
    case(3, 136, 3, 3, 128, 3, 1, 2, false),
];

#[test]
fn matches_candle_on_many_shapes() {
    let _path = PATH.lock().unwrap_or_else(|e| e.into_inner());
    for (i, c) in CASES.iter().enumerate() {
        check(c, 100 + i as u64, false);
    }
}

/// Runs `checks` with a path switched off by `switch(false)`, switching it back on even when a
/// check fails.
fn without_path(switch: fn(bool), checks: impl FnOnce() + std::panic::UnwindSafe) {
    let _path = PATH.lock().unwrap_or_else(|e| e.into_inner());
    switch(false);
    let result = std::panic::catch_unwind(checks);
    switch(true);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// The same shapes on the im2col + GEMM path (what a CPU without AVX-512 runs).
#[test]
fn gemm_path_matches_candle() {
    without_path(set_direct_kernels, || {
        for (i, c) in CASES.iter().enumerate() {
            check(c, 200 + i as u64, false);
        }
        check(&case(3, 4, 7, 5, 6, 3, 1, 1, true), 13, true);
    });
}

/// The same shapes with the weight gradient on the path it takes without the channel-lane kernel
/// (direct pixel lanes or GEMM).
#[test]
fn pixel_lane_weight_grad_matches_candle() {
    without_path(set_channel_wgrad, || {
        for (i, c) in CASES.iter().enumerate() {
            check(c, 300 + i as u64, false);
        }
    });
}

/// The same shapes with the forward and input gradient on the path they take without the
/// channel-lane kernel (direct pixel lanes or GEMM).
#[test]
fn pixel_lane_forward_matches_candle() {
    without_path(set_channel_fwd, || {
        for (i, c) in CASES.iter().enumerate() {
            check(c, 400 + i as u64, false);
        }
    });
}

#[test]
fn matches_candle_on_random_shapes() {
    let _path = PATH.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = StdRng::seed_from_u64(7);
    for i in 0..24 {
        let k: usize = [1, 3, 5][rng.random_range(0..3)];
        let pad = rng.random_range(0..3usize);
        let stride = rng.random_range(1..3usize);
        let h = rng.random_range(k.saturating_sub(2 * pad).max(1)..12);
        let w = rng.random_range(k.saturating_sub(2 * pad).max(1)..12);
        let c = case(
            rng.random_range(1..6),
            rng.random_range(1..7),
            h,
            w,
            rng.random_range(1..7),
            k,
            stride,
            pad,
            rng.random_bool(0.5),
        );
        check(&c, 1000 + i, false);
    }
}

#[test]
fn non_contiguous_input() {
    check(&case(3, 4, 7, 5, 6, 3, 1, 1, true), 11, true);
    check(&case(2, 3, 9, 6, 4, 3, 2, 1, false), 12, true);
}

/// The comparison is sharp enough to catch a wrong op: our layer with the kernel transposed
/// (kh <-> kw), or with the input's spatial axes swapped, is far outside the tolerance.
#[test]
fn detects_a_transposed_weight() {
    let c = case(2, 3, 7, 7, 4, 3, 1, 1, false);
    let mut rng = StdRng::seed_from_u64(5);
    let x = rand_tensor(&mut rng, &[c.n, c.cin, c.h, c.w]);
    let w = rand_tensor(&mut rng, &[c.cout, c.cin, c.k, c.k]);
    let reference = x.conv2d(&w, c.pad, c.stride, 1, 1).unwrap();
    let good = Conv2d::new(w.clone(), None, c.stride, c.pad)
        .forward(&x)
        .unwrap();
    assert!(rel_err(&good, &reference) <= TOL);
    let wt = w.transpose(2, 3).unwrap();
    let bad = Conv2d::new(wt, None, c.stride, c.pad).forward(&x).unwrap();
    assert!(
        rel_err(&bad, &reference) > 1e-2,
        "transposed kernel not detected"
    );
    let xt = x.transpose(2, 3).unwrap();
    let bad = Conv2d::new(w, None, c.stride, c.pad).forward(&xt).unwrap();
    assert!(
        rel_err(&bad, &reference) > 1e-2,
        "transposed input not detected"
    );
}

/// Gradients flow only where asked: an input that is not a variable gets none, the weight does.
#[test]
fn constant_input_gets_no_gradient() {
    let mut rng = StdRng::seed_from_u64(3);
    let x = rand_tensor(&mut rng, &[2, 3, 6, 6]);
    let w = Var::from_tensor(&rand_tensor(&mut rng, &[4, 3, 3, 3])).unwrap();
    let y = Conv2d::new(w.as_tensor().clone(), None, 1, 1)
        .forward(&x)
        .unwrap();
    let grads = y.sum_all().unwrap().backward().unwrap();
    assert!(grads.get(&x).is_none());
    let dw = grads.get(w.as_tensor()).unwrap();
    let reference = x
        .conv2d(w.as_tensor(), 1, 1, 1, 1)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(rel_err(dw, reference.get(w.as_tensor()).unwrap()) <= TOL);
}

/// Inside a worker's rayon pool of 1 and of 2 threads the op gives the same results (up to the
/// rounding of sums taken in another order), and both match candle.
#[test]
fn same_result_in_pools_of_one_and_two_threads() {
    let cases = [
        case(8, 16, 16, 16, 16, 3, 1, 1, false),
        case(6, 16, 12, 12, 32, 3, 2, 1, true),
        case(1, 4, 9, 9, 8, 3, 1, 1, false),
    ];
    for (i, c) in cases.iter().enumerate() {
        let in_pool = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| compare(c, 50 + i as u64, false))
        };
        let one = in_pool(1);
        let two = in_pool(2);
        for e in one.iter().chain(&two) {
            assert!(
                *e <= TOL,
                "{c:?}: errors {one:?} (1 thread), {two:?} (2 threads)"
            );
        }
        let mut rng = StdRng::seed_from_u64(9);
        let x = Var::from_tensor(&rand_tensor(&mut rng, &[c.n, c.cin, c.h, c.w])).unwrap();
        let w = Var::from_tensor(&rand_tensor(&mut rng, &[c.cout, c.cin, c.k, c.k])).unwrap();
        let grads_in = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let y = Conv2d::new(w.as_tensor().clone(), None, c.stride, c.pad)
                    .forward(x.as_tensor())
                    .unwrap();
                let g = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
                (
                    y,
                    g.get(x.as_tensor()).unwrap().clone(),
                    g.get(w.as_tensor()).unwrap().clone(),
                )
            })
        };
        let (y1, dx1, dw1) = grads_in(1);
        let (y2, dx2, dw2) = grads_in(2);
        // Chunk sizes differ between the pools, so sums may be rounded in another order.
        assert!(rel_err(&y1, &y2) <= 1e-5, "forward differs between pools");
        assert!(
            rel_err(&dx1, &dx2) <= 1e-5,
            "input grad differs between pools"
        );
        assert!(
            rel_err(&dw1, &dw2) <= 1e-5,
            "weight grad differs between pools"
        );
    }
}
