//! Every differentiable operation our models use, checked against central finite differences of
//! the same function (computed in f64 from the f32 forward). This is how candle 0.11.1's wrong
//! `max_pool2d` backward was found; `max_pool2x2` replaces it.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::ModuleT;
use grawa_train::model::layers::batch_norm;
use grawa_train::model::pool::{max_pool2x2, max_pool2x2_reshaped};
use grawa_train::model::resnet::option_a_shortcut;

/// Largest relative difference between autograd and central differences over a few coordinates.
fn fd_error(shape: &[usize], f: &dyn Fn(&Tensor) -> Tensor) -> f64 {
    let v = Var::randn(0f32, 1.0, shape, &Device::Cpu).unwrap();
    fd_error_at(v, f)
}

/// Distinct values 0.05 apart in a scrambled order: no two are within the finite-difference step
/// of each other, so a max never changes hands inside a difference (with random inputs it did,
/// now and then, and the test failed).
fn spaced_input(shape: &[usize]) -> Var {
    let n: usize = shape.iter().product();
    let values = (0..n)
        .map(|i| ((i * 7919) % n) as f32 * 0.05 - n as f32 * 0.025)
        .collect::<Vec<_>>();
    Var::from_vec(values, shape, &Device::Cpu).unwrap()
}

/// As `fd_error`, from the given starting point.
fn fd_error_at(v: Var, f: &dyn Fn(&Tensor) -> Tensor) -> f64 {
    let dev = Device::Cpu;
    let shape = v.dims().to_vec();
    let shape = shape.as_slice();
    let grads = f(v.as_tensor()).backward().unwrap();
    let g: Vec<f32> = grads
        .get(v.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let x0: Vec<f32> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
    let eval = |x: Vec<f32>| {
        f(&Tensor::from_vec(x, shape, &dev).unwrap())
            .to_dtype(DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    let n = x0.len();
    let mut worst = 0f64;
    for idx in [0, 1, n / 3, n / 2, n - 2, n - 1] {
        let eps = 1e-2f32;
        let (mut p, mut m) = (x0.clone(), x0.clone());
        p[idx] += eps;
        m[idx] -= eps;
        let fd = (eval(p) - eval(m)) / (2.0 * eps as f64);
        worst = worst.max((fd - g[idx] as f64).abs() / (1.0 + fd.abs()));
    }
    worst
}

const TOL: f64 = 2e-2;

fn sq_sum(t: Tensor) -> Tensor {
    t.sqr().unwrap().sum_all().unwrap()
}

/// A fixed weighting of the output, sin(0.37 i): small second derivatives, so central differences
/// stay accurate in f32 even for large outputs.
fn weighted_sum(t: Tensor) -> Tensor {
    let n = t.elem_count() as f32;
    let idx = Tensor::arange(0f32, n, t.device())
        .unwrap()
        .reshape(t.shape())
        .unwrap();
    let r = (idx * 0.37).unwrap().sin().unwrap();
    (t * r).unwrap().sum_all().unwrap()
}

#[test]
fn max_pool2x2_gradient_matches_finite_differences() {
    for shape in [[2, 3, 8, 8], [2, 2, 7, 9]] {
        let e = fd_error_at(spaced_input(&shape), &|t| sq_sum(max_pool2x2(t).unwrap()));
        assert!(e < TOL, "max_pool2x2 {shape:?}: {e}");
    }
}

/// The forward against PyTorch's `F.max_pool2d(x, 2)` for x = arange(1*1*3*5).view(1, 1, 3, 5):
/// windows {0,1,5,6} and {2,3,7,8} give [[6, 8]] (the odd row and column are dropped).
#[test]
fn max_pool2x2_forward_drops_odd_edges() {
    let x = Tensor::arange(0f32, 15.0, &Device::Cpu)
        .unwrap()
        .reshape((1, 1, 3, 5))
        .unwrap();
    let y: Vec<f32> = max_pool2x2(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(y, vec![6.0, 8.0]);
}

/// d/dx sum(max_pool(x)) for x = arange(16).view(1, 1, 4, 4) is 1 at each window's maximum
/// (5, 7, 13, 15) and 0 elsewhere (PyTorch gives exactly this).
fn pool_gradient(pool: &dyn Fn(&Tensor) -> Tensor) -> Vec<f32> {
    let x = Var::from_tensor(
        &Tensor::arange(0f32, 16.0, &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 4, 4))
            .unwrap(),
    )
    .unwrap();
    let grads = pool(x.as_tensor()).sum_all().unwrap().backward().unwrap();
    grads
        .get(x.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn max_pool2x2_routes_the_gradient_to_the_maximum() {
    let mut expected = vec![0f32; 16];
    for i in [5, 7, 13, 15] {
        expected[i] = 1.0;
    }
    assert_eq!(pool_gradient(&|t| max_pool2x2(t).unwrap()), expected);
}

/// Documents the upstream bug this crate works around: candle passes back a quarter of the
/// gradient. If candle fixes it, this test says so and `max_pool2x2` can go back to `max_pool2d`.
#[test]
fn candle_max_pool2d_gradient_is_still_wrong_upstream() {
    let g = pool_gradient(&|t| t.max_pool2d(2).unwrap());
    assert_eq!(
        g[5], 0.25,
        "candle's max_pool2d backward changed ({g:?}): check whether the workaround can go"
    );
}

#[test]
fn conv_linear_and_pooling_gradients() {
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (2, 3, 9, 9), &dev).unwrap();
    for (pad, stride) in [(0, 1), (1, 1), (1, 2)] {
        let e = fd_error(&[4, 3, 3, 3], &|w| {
            weighted_sum(x.conv2d(w, pad, stride, 1, 1).unwrap())
        });
        assert!(e < TOL, "conv2d weight pad {pad} stride {stride}: {e}");
        let w = Tensor::randn(0f32, 0.3, (4, 3, 3, 3), &dev).unwrap();
        let e = fd_error(&[2, 3, 9, 9], &|t| {
            weighted_sum(t.conv2d(&w, pad, stride, 1, 1).unwrap())
        });
        assert!(e < TOL, "conv2d input pad {pad} stride {stride}: {e}");
    }
    let a = Tensor::randn(0f32, 1.0, (6, 5), &dev).unwrap();
    let e = fd_error(&[4, 5], &|w| sq_sum(a.matmul(&w.t().unwrap()).unwrap()));
    assert!(e < TOL, "linear: {e}");
    let e = fd_error(&[2, 3, 4, 4], &|t| {
        sq_sum(t.mean(3).unwrap().mean(2).unwrap())
    });
    assert!(e < TOL, "global average pool: {e}");
    let e = fd_error(&[2, 4, 6, 6], &|t| sq_sum(option_a_shortcut(t, 2).unwrap()));
    assert!(e < TOL, "option-A shortcut: {e}");
}

#[test]
fn batch_norm_training_and_cross_entropy_gradients() {
    let dev = Device::Cpu;
    let vb = candle_nn::VarBuilder::from_varmap(&candle_nn::VarMap::new(), DType::F32, &dev);
    let bn = batch_norm(3, 0.1, vb).unwrap();
    let w = Tensor::randn(0f32, 1.0, (4, 3, 5, 5), &dev).unwrap();
    // Weighted so the loss is not invariant to the normalisation.
    let e = fd_error(&[4, 3, 5, 5], &|t| {
        (bn.forward_t(t, true).unwrap() * &w)
            .unwrap()
            .sum_all()
            .unwrap()
    });
    assert!(e < TOL, "batch norm (train): {e}");
    let y = Tensor::new(&[0u32, 3, 1, 4], &dev).unwrap();
    let e = fd_error(&[4, 5], &|t| candle_nn::loss::cross_entropy(t, &y).unwrap());
    assert!(e < TOL, "cross entropy: {e}");
}

/// The CPU op against the reshape-and-max form (candle's own ops) on odd and even shapes, values
/// distinct so each window has one maximum: identical outputs and identical gradients.
#[test]
fn max_pool2x2_op_matches_the_reshaped_form() {
    for shape in [
        [1, 1, 2, 2],
        [2, 3, 8, 8],
        [3, 2, 7, 9],
        [1, 4, 5, 2],
        [2, 1, 3, 6],
    ] {
        let x = spaced_input(&shape);
        let r = Tensor::randn(0f32, 1.0, shape.as_slice(), &Device::Cpu).unwrap();
        let ours = max_pool2x2(x.as_tensor()).unwrap();
        let theirs = max_pool2x2_reshaped(x.as_tensor()).unwrap();
        assert_eq!(ours.dims(), theirs.dims(), "{shape:?}");
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(&ours), flat(&theirs), "forward {shape:?}");
        if ours.elem_count() == 0 {
            continue;
        }
        let weight = r.narrow(2, 0, ours.dim(2).unwrap()).unwrap();
        let weight = weight.narrow(3, 0, ours.dim(3).unwrap()).unwrap();
        let g = |y: Tensor| {
            let grads = (y * &weight)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            flat(grads.get(x.as_tensor()).unwrap())
        };
        assert_eq!(g(ours), g(theirs), "gradient {shape:?}");
    }
}

/// A tie sends the whole gradient to the first maximal element, as PyTorch's recorded index does.
#[test]
fn max_pool2x2_tie_goes_to_the_first_maximum() {
    let x = Var::from_vec(vec![1f32, 3.0, 3.0, 0.0], (1, 1, 2, 2), &Device::Cpu).unwrap();
    let grads = max_pool2x2(x.as_tensor())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g: Vec<f32> = grads
        .get(x.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(g, vec![0.0, 1.0, 0.0, 0.0]);
}
