//! The fused CPU BatchNorm (`ops::batch_norm`) against candle_nn's BatchNorm followed by candle's
//! relu / add + relu: forward, gradients of sum(y * r) with respect to x, gamma, beta and the
//! residual, running statistics over several steps, evaluation mode (also under autograd), on odd
//! shapes, batch 1, one channel, (N, C) inputs and tensors large enough to run in parallel.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{ModuleT, VarBuilder, VarMap};
use grawa_train::model::layers::batch_norm;
use grawa_train::ops::batch_norm::BatchNorm;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, Uniform};

const EPS: f64 = 1e-5;
const TOL: f64 = 1e-4;

fn normal(seed: u64, n: usize, mean: f32, std: f32) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let d = Normal::new(mean, std).unwrap();
    (0..n).map(|_| d.sample(&mut rng)).collect()
}

fn uniform(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let d = Uniform::new(lo, hi).unwrap();
    (0..n).map(|_| d.sample(&mut rng)).collect()
}

fn tensor(v: Vec<f32>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// Every |a - b| within TOL (|b| + mean |b|): relative, with the tensor's scale as the floor for
/// entries that cancel to near zero.
fn assert_close(what: &str, a: &Tensor, b: &Tensor) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let (a, b) = (to_vec(a), to_vec(b));
    let scale = b.iter().map(|v| v.abs() as f64).sum::<f64>() / b.len().max(1) as f64;
    for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
        let err = (x as f64 - y as f64).abs();
        assert!(
            err <= TOL * (y.abs() as f64 + scale) + 1e-7,
            "{what}: element {i}: ours {x}, candle {y} (scale {scale})"
        );
    }
}

/// Which fused variant.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Epi {
    Plain,
    Relu,
    AddRelu,
}

/// Ours and candle's BatchNorm with the same random gamma, beta and running statistics (each its
/// own copy of the running statistics); gamma and beta are shared variables.
struct Pair {
    ours: BatchNorm,
    theirs: candle_nn::BatchNorm,
    gamma: Var,
    beta: Var,
}

fn pair(c: usize, momentum: f64, seed: u64) -> Pair {
    let gamma = Var::from_tensor(&tensor(normal(seed, c, 1.0, 0.6), &[c])).unwrap();
    let beta = Var::from_tensor(&tensor(normal(seed + 1, c, 0.0, 0.7), &[c])).unwrap();
    let rm = normal(seed + 2, c, 0.2, 0.5);
    let rv = uniform(seed + 3, c, 0.5, 2.0);
    let make = || {
        candle_nn::BatchNorm::new_with_momentum(
            c,
            tensor(rm.clone(), &[c]),
            tensor(rv.clone(), &[c]),
            gamma.as_tensor().clone(),
            beta.as_tensor().clone(),
            EPS,
            momentum,
        )
        .unwrap()
    };
    Pair {
        ours: BatchNorm::new(make()).unwrap(),
        theirs: make(),
        gamma,
        beta,
    }
}

fn ours_fwd(p: &Pair, x: &Tensor, res: &Tensor, epi: Epi, train: bool) -> Tensor {
    match epi {
        Epi::Plain => p.ours.forward_t(x, train),
        Epi::Relu => p.ours.forward_relu_t(x, train),
        Epi::AddRelu => p.ours.forward_add_relu_t(x, res, train),
    }
    .unwrap()
}

fn theirs_fwd(p: &Pair, x: &Tensor, res: &Tensor, epi: Epi, train: bool) -> Tensor {
    let y = p.theirs.forward_t(x, train).unwrap();
    match epi {
        Epi::Plain => y,
        Epi::Relu => y.relu().unwrap(),
        Epi::AddRelu => (y + res).unwrap().relu().unwrap(),
    }
}

const SHAPES: &[&[usize]] = &[
    &[4, 3, 5, 7],    // odd sizes, planes under 16 values
    &[3, 5, 7, 9],    // odd sizes, per-plane path with a remainder
    &[1, 4, 5, 5],    // batch 1
    &[1, 2, 17, 3],   // batch 1, odd plane of 51
    &[6, 1, 4, 4],    // one channel
    &[5, 1, 33, 1],   // one channel, plane of 33
    &[7, 6],          // (N, C)
    &[3, 4, 1, 1],    // H = W = 1
    &[2, 3, 4, 5, 3], // rank 5
    &[8, 16, 16, 16], // parallel over channels
    &[16, 32, 8, 8],  // ResNet-20's last stage, smaller batch
];

/// Forward and gradients of sum(y * r) against candle for one shape, variant and mode; in
/// training also the running statistics after the step.
fn check(shape: &[usize], epi: Epi, train: bool, seed: u64) {
    let c = shape[1];
    let n: usize = shape.iter().product();
    let p = pair(c, 0.1, seed);
    let x = Var::from_tensor(&tensor(normal(seed + 10, n, 0.3, 1.7), shape)).unwrap();
    let res = Var::from_tensor(&tensor(normal(seed + 11, n, 0.1, 1.0), shape)).unwrap();
    let r = tensor(normal(seed + 12, n, 0.0, 1.0), shape);
    let what = format!("{shape:?} {epi:?} train={train}");

    let y = ours_fwd(&p, x.as_tensor(), res.as_tensor(), epi, train);
    let yr = theirs_fwd(&p, x.as_tensor(), res.as_tensor(), epi, train);
    assert_close(&format!("{what}: forward"), &y, &yr);
    if epi != Epi::Plain {
        let on = to_vec(&y).iter().filter(|&&v| v > 0.0).count();
        assert!(
            on > 0 && on < n,
            "{what}: the ReLU should cut some values, {on} of {n} on"
        );
    }

    let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let gr = (&yr * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let mut vars = vec![("x", &x), ("gamma", &p.gamma), ("beta", &p.beta)];
    if epi == Epi::AddRelu {
        vars.push(("residual", &res));
    }
    for (name, v) in vars {
        let a = g
            .get(v.as_tensor())
            .unwrap_or_else(|| panic!("{what}: no grad for {name}"));
        let b = gr.get(v.as_tensor()).unwrap();
        assert_close(&format!("{what}: d{name}"), a, b);
    }
    if train {
        assert_close(
            &format!("{what}: running mean"),
            p.ours.running_mean(),
            p.theirs.running_mean(),
        );
        assert_close(
            &format!("{what}: running var"),
            p.ours.running_var(),
            p.theirs.running_var(),
        );
    } else {
        // Evaluation leaves the running statistics alone.
        assert_eq!(
            to_vec(p.ours.running_mean()),
            to_vec(p.theirs.running_mean())
        );
        assert_eq!(to_vec(p.ours.running_var()), to_vec(p.theirs.running_var()));
    }
}

#[test]
fn training_forward_and_gradients_match_candle() {
    for (i, shape) in SHAPES.iter().enumerate() {
        for (j, epi) in [Epi::Plain, Epi::Relu, Epi::AddRelu]
            .into_iter()
            .enumerate()
        {
            check(shape, epi, true, 100 * i as u64 + 10 * j as u64);
        }
    }
}

#[test]
fn evaluation_forward_and_gradients_match_candle() {
    for (i, shape) in SHAPES.iter().enumerate() {
        for (j, epi) in [Epi::Plain, Epi::Relu, Epi::AddRelu]
            .into_iter()
            .enumerate()
        {
            check(shape, epi, false, 5000 + 100 * i as u64 + 10 * j as u64);
        }
    }
}

/// Several training steps on different batches: the running statistics follow candle's (PyTorch's)
/// update, with momentum 0.1 and 1.0; with 1.0 they are exactly the last batch's mean and unbiased
/// variance.
#[test]
fn running_statistics_follow_candle_over_several_steps() {
    for momentum in [0.1, 1.0] {
        for (i, shape) in [&[4usize, 3, 5, 7][..], &[1, 2, 6, 6], &[9, 5]]
            .into_iter()
            .enumerate()
        {
            let c = shape[1];
            let n: usize = shape.iter().product();
            let p = pair(c, momentum, 700 + i as u64);
            let mut last = Vec::new();
            for step in 0..4u64 {
                let x = tensor(
                    normal(800 + step, n, step as f32 - 1.0, 0.5 + step as f32),
                    shape,
                );
                let epi = [Epi::Plain, Epi::Relu, Epi::AddRelu][step as usize % 3];
                ours_fwd(&p, &x, &x, epi, true);
                theirs_fwd(&p, &x, &x, epi, true);
                last = to_vec(&x);
            }
            let what = format!("momentum {momentum} {shape:?}");
            assert_close(&what, p.ours.running_mean(), p.theirs.running_mean());
            assert_close(&what, p.ours.running_var(), p.theirs.running_var());
            if momentum == 1.0 {
                let (mean, var) = channel_moments(&last, shape);
                let m = (n / c) as f64;
                let rm = to_vec(p.ours.running_mean());
                let rv = to_vec(p.ours.running_var());
                for ch in 0..c {
                    let unbiased = var[ch] * m / (m - 1.0);
                    assert!((rm[ch] as f64 - mean[ch]).abs() <= 1e-6 * (1.0 + mean[ch].abs()));
                    assert!((rv[ch] as f64 - unbiased).abs() <= 1e-6 * unbiased);
                }
            }
        }
    }
}

/// Per-channel mean and biased variance in f64.
fn channel_moments(x: &[f32], shape: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let c = shape[1];
    let hw: usize = shape[2..].iter().product();
    let mut vals = vec![Vec::new(); c];
    for (i, &v) in x.iter().enumerate() {
        vals[(i / hw) % c].push(v as f64);
    }
    vals.iter()
        .map(|v| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / v.len() as f64;
            (mean, var)
        })
        .unzip()
}

/// A large mean and a small spread (1e4 +- 1): the statistics stay accurate where a one-pass
/// E[x^2] - E[x]^2 in f32 would return noise.
#[test]
fn statistics_are_accurate_far_from_zero() {
    let shape = [16usize, 4, 32, 32];
    let n: usize = shape.iter().product();
    let x: Vec<f32> = normal(31, n, 1.0e4, 1.0);
    let p = pair(4, 1.0, 32);
    let y = p.ours.forward_t(&tensor(x.clone(), &shape), true).unwrap();
    let (mean, var) = channel_moments(&x, &shape);
    let m = (n / 4) as f64;
    let rm = to_vec(p.ours.running_mean());
    let rv = to_vec(p.ours.running_var());
    for c in 0..4 {
        assert!(
            (rm[c] as f64 - mean[c]).abs() < 1e-3,
            "mean {c}: {} vs {}",
            rm[c],
            mean[c]
        );
        let unbiased = var[c] * m / (m - 1.0);
        assert!(
            (rv[c] as f64 - unbiased).abs() < 1e-5 * unbiased,
            "var {c}: {} vs {unbiased}",
            rv[c]
        );
    }
    // The normalised output has mean beta and spread |gamma| per channel.
    let gamma = to_vec(p.gamma.as_tensor());
    let beta = to_vec(p.beta.as_tensor());
    let (ym, yv) = channel_moments(&to_vec(&y), &shape);
    for c in 0..4 {
        assert!((ym[c] - beta[c] as f64).abs() < 1e-4, "output mean {c}");
        let want = (gamma[c] as f64).powi(2) * var[c] / (var[c] + EPS);
        assert!(
            (yv[c] - want).abs() < 1e-4 * want,
            "output var {c}: {} vs {want}",
            yv[c]
        );
    }
}

/// The layer built by `model::layers::batch_norm` keeps PyTorch's variable names and updates the
/// running statistics in the `VarMap` itself (checkpoints and averaging read them there).
#[test]
fn layer_updates_its_varmap_buffers_in_place() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let bn = batch_norm(3, 1.0, vb.pp("bn")).unwrap();
    let shape = [4usize, 3, 6, 6];
    let x = normal(41, shape.iter().product(), 2.0, 3.0);
    bn.forward_relu_t(&tensor(x.clone(), &shape), true).unwrap();
    let data = varmap.data().lock().unwrap();
    let mut names: Vec<_> = data.keys().cloned().collect();
    names.sort();
    assert_eq!(
        names,
        ["bn.bias", "bn.running_mean", "bn.running_var", "bn.weight"]
    );
    let (mean, _) = channel_moments(&x, &shape);
    let rm = to_vec(data["bn.running_mean"].as_tensor());
    for c in 0..3 {
        assert!((rm[c] as f64 - mean[c]).abs() < 1e-5);
    }
}

/// A non-contiguous input (a transposed view) goes through the same op.
#[test]
fn non_contiguous_input() {
    let p = pair(3, 0.1, 51);
    let x = tensor(normal(52, 4 * 3 * 5 * 6, 0.0, 1.0), &[4, 3, 6, 5])
        .transpose(2, 3)
        .unwrap();
    assert!(!x.is_contiguous());
    let y = p.ours.forward_relu_t(&x, true).unwrap();
    let yr = p.theirs.forward_t(&x, true).unwrap().relu().unwrap();
    assert_close("transposed", &y, &yr);
}
