//! The fused linear op (src/ops/linear.rs) against candle's matmul + broadcast add (+ relu):
//! forward values and gradients for x, W and b, through `backward()` of a random linear functional.

use candle_core::{Device, Tensor, Var};
use grawa_train::ops::linear::Linear;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Normal-ish values (sum of uniforms) times `scale` from a seeded generator, so every run sees
/// the same numbers (a ReLU input within rounding of 0 could otherwise flip a mask now and then).
fn seeded(rng: &mut StdRng, shape: &[usize], scale: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| scale * (0..3).map(|_| rng.random_range(-1.0f32..1.0)).sum::<f32>())
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn max_rel_err(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn reference(x: &Tensor, w: &Tensor, b: &Tensor, relu: bool) -> Tensor {
    let y = x.matmul(&w.t().unwrap()).unwrap().broadcast_add(b).unwrap();
    if relu {
        y.relu().unwrap()
    } else {
        y
    }
}

/// Compares forward and all three gradients for one shape.
fn check(n: usize, i: usize, o: usize, relu: bool, transposed_input: bool) {
    let mut rng = StdRng::seed_from_u64((n * 1_000_003 + i * 1009 + o) as u64);
    let x = if transposed_input {
        // A non-contiguous input: the transpose of an (i, n) tensor.
        Var::from_tensor(&seeded(&mut rng, &[i, n], 1.0).t().unwrap()).unwrap()
    } else {
        Var::from_tensor(&seeded(&mut rng, &[n, i], 1.0)).unwrap()
    };
    let w = Var::from_tensor(&seeded(&mut rng, &[o, i], 0.3)).unwrap();
    let b = Var::from_tensor(&seeded(&mut rng, &[o], 0.3)).unwrap();
    let r = seeded(&mut rng, &[n, o], 1.0);

    let layer = Linear::new(w.as_tensor().clone(), b.as_tensor().clone());
    let ours = if relu {
        layer.forward_relu(x.as_tensor()).unwrap()
    } else {
        candle_core::Module::forward(&layer, x.as_tensor()).unwrap()
    };
    let theirs = reference(x.as_tensor(), w.as_tensor(), b.as_tensor(), relu);
    let what = format!("n={n} i={i} o={o} relu={relu} transposed={transposed_input}");
    assert!(max_rel_err(&ours, &theirs) < 1e-5, "forward {what}");

    let g_ours = (ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let g_theirs = (theirs * &r)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    for (name, v) in [("x", &x), ("w", &w), ("b", &b)] {
        let a = g_ours
            .get(v.as_tensor())
            .unwrap_or_else(|| panic!("no d{name} {what}"));
        let e = g_theirs.get(v.as_tensor()).unwrap();
        let err = max_rel_err(a, e);
        assert!(err < 1e-5, "d{name} {what}: relative error {err}");
    }
}

#[test]
fn matches_candle_on_assorted_shapes() {
    for &(n, i, o) in &[
        (1, 1, 1),
        (3, 5, 7),
        (128, 784, 256),
        (17, 64, 10),
        (2, 1600, 128),
    ] {
        for relu in [false, true] {
            check(n, i, o, relu, false);
        }
    }
    check(9, 13, 6, true, true);
}

#[test]
fn matches_candle_in_one_and_two_thread_pools() {
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| check(64, 300, 200, true, false));
    }
}

/// The first layer's input is data: no gradient is computed for it, and the weight still gets one.
#[test]
fn skips_the_gradient_of_a_data_input() {
    let dev = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(1);
    let x = seeded(&mut rng, &[4, 6], 1.0);
    let w = Var::from_tensor(&seeded(&mut rng, &[3, 6], 1.0)).unwrap();
    let b = Var::zeros(3, candle_core::DType::F32, &dev).unwrap();
    let layer = Linear::new(w.as_tensor().clone(), b.as_tensor().clone());
    let grads = layer
        .forward_relu(&x)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(grads.get(&x).is_none());
    assert!(grads.get(w.as_tensor()).is_some());
}

/// The test can fail: a weight used untransposed gives a different product.
#[test]
fn detects_a_transposed_weight() {
    let dev = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(2);
    let x = seeded(&mut rng, &[5, 4], 1.0);
    let w = seeded(&mut rng, &[4, 4], 1.0);
    let b = Tensor::zeros(4, candle_core::DType::F32, &dev).unwrap();
    let ours = candle_core::Module::forward(
        &Linear::new(w.t().unwrap().contiguous().unwrap(), b.clone()),
        &x,
    )
    .unwrap();
    assert!(max_rel_err(&ours, &reference(&x, &w, &b, false)) > 1e-2);
}

/// An f64 layer (the flatness code's model copy) goes through candle's ops and still matches.
#[test]
fn f64_layers_use_candle_ops() {
    let dev = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(3);
    let x = seeded(&mut rng, &[3, 5], 1.0)
        .to_dtype(candle_core::DType::F64)
        .unwrap();
    let w = seeded(&mut rng, &[2, 5], 1.0)
        .to_dtype(candle_core::DType::F64)
        .unwrap();
    let b = Tensor::zeros(2, candle_core::DType::F64, &dev).unwrap();
    let ours = Linear::new(w.clone(), b.clone()).forward_relu(&x).unwrap();
    let theirs = reference(&x, &w, &b, true);
    let diff = (ours - theirs).unwrap().abs().unwrap().max_all().unwrap();
    assert_eq!(diff.to_scalar::<f64>().unwrap(), 0.0);
}
