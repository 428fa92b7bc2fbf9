//! Our 2x2 max-pooling op against a plain scalar reference written here: the forward value of
//! every window, and the backward sending each window's gradient to its *first* maximal element
//! in row-major order (PyTorch's recorded index), checked bit for bit on inputs drawn from a few
//! values so that ties are everywhere, including odd heights and widths (the last row or column
//! is dropped and gets no gradient).

use candle_core::{Device, Tensor, Var};
use grawa_train::model::pool::max_pool2x2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// (forward, input gradient for output gradient `g`) of one (N, C, H, W) input, naively.
fn reference(x: &[f32], g: &[f32], [n, c, h, w]: [usize; 4]) -> (Vec<f32>, Vec<f32>) {
    let (h2, w2) = (h / 2, w / 2);
    let mut y = vec![0f32; n * c * h2 * w2];
    let mut dx = vec![0f32; n * c * h * w];
    for p in 0..n * c {
        for i in 0..h2 {
            for j in 0..w2 {
                let at = |di: usize, dj: usize| p * h * w + (2 * i + di) * w + 2 * j + dj;
                let mut best = at(0, 0);
                for k in [at(0, 1), at(1, 0), at(1, 1)] {
                    if x[k] > x[best] {
                        best = k;
                    }
                }
                let o = p * h2 * w2 + i * w2 + j;
                y[o] = x[best];
                dx[best] = g[o];
            }
        }
    }
    (y, dx)
}

#[test]
fn pooling_matches_the_scalar_reference_with_ties_and_odd_edges() {
    let mut rng = StdRng::seed_from_u64(3);
    for shape in [
        [2, 3, 8, 8],
        [1, 2, 7, 9],
        [3, 1, 26, 26],
        [2, 2, 11, 11],
        [1, 1, 1, 5],
        // Rows of more than 16 windows (the AVX-512 rows take 16 at a time): 35 with a short
        // last step, 32 exactly, 17 with an odd column.
        [1, 2, 6, 70],
        [2, 1, 4, 64],
        [1, 3, 5, 35],
    ] {
        let [n, c, h, w] = shape;
        // Four values only: most windows hold a tie.
        let x: Vec<f32> = (0..n * c * h * w)
            .map(|_| rng.random_range(0..4) as f32 - 1.5)
            .collect();
        let outs = n * c * (h / 2) * (w / 2);
        let g: Vec<f32> = (0..outs).map(|_| rng.random::<f32>() + 0.5).collect();
        let (want_y, want_dx) = reference(&x, &g, shape);

        let v = Var::from_vec(x, (n, c, h, w), &Device::Cpu).unwrap();
        let y = max_pool2x2(v.as_tensor()).unwrap();
        let got_y: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(got_y, want_y, "{shape:?}: forward");

        let gt = Tensor::from_vec(g, y.shape(), &Device::Cpu).unwrap();
        let grads = (y * gt).unwrap().sum_all().unwrap().backward().unwrap();
        let got_dx: Vec<f32> = grads
            .get(v.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(got_dx, want_dx, "{shape:?}: backward");
    }
}
