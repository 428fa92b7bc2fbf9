//! One parity suite for every [`FlatBuffer`] implementation: each operation on seeded random
//! inputs against a plain scalar reference written here (the formulas of docs/design.md section
//! 2) and against `average::naive`. Element-wise operations must agree bit for bit (the same f32
//! operations in the same order; the CUDA kernels are compiled without FMA contraction); per-layer
//! sums of squares, accumulated in f64 in another order, to 1e-12 relative.
//!
//! The host half always runs; the CUDA half (feature `cuda`) runs on GPU 0 wherever the driver
//! sees one, and says it skipped otherwise.

mod run_support;

use grawa_train::average::naive::{naive_layer_sumsq, naive_pull};
use grawa_train::buffer::FlatBuffer;
use grawa_train::model::LayerEntry;
use grawa_train::optim::SgdConfig;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use run_support::table_of;

/// Layer lengths with an empty layer, single elements, both sides of the kernels' 4096-element
/// pieces, and a layer that spans several pieces.
const LAYERS: [usize; 8] = [1, 0, 4095, 4096, 4097, 7, 20_000, 3];

fn table() -> Vec<LayerEntry> {
    table_of(&LAYERS)
}

fn random(n: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..n).map(|_| StandardNormal.sample(rng)).collect()
}

fn assert_bits(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    if let Some(j) = (0..got.len()).find(|&j| got[j].to_bits() != want[j].to_bits()) {
        panic!(
            "{what}: element {j} is {}, the reference {}",
            got[j], want[j]
        );
    }
}

/// Runs every operation of `B`, whose buffers `make` builds from host values.
fn suite<B: FlatBuffer>(make: impl Fn(&[f32]) -> B, place: &str) {
    let t = table();
    let n: usize = LAYERS.iter().sum();
    let mut rng = StdRng::seed_from_u64(20_261_201);
    let (x, c, g, m) = (
        random(n, &mut rng),
        random(n, &mut rng),
        random(n, &mut rng),
        random(n, &mut rng),
    );

    // Per-layer sums of squares, twice: a second launch must not see the first one's scratch.
    let b = make(&x);
    assert_eq!(b.len(), n, "{place}: len");
    let want = naive_layer_sumsq(&x, &t);
    for round in 0..2 {
        let got = b.layer_sumsq(&t).unwrap();
        assert_eq!(got.len(), t.len(), "{place}: one sum per layer");
        for (l, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-12 * w.abs().max(1.0),
                "{place}: layer_sumsq layer {l} (call {round}): {g} vs {w}"
            );
        }
    }
    assert_eq!(want[1], 0.0, "the empty layer sums to 0");

    // pull: x <- (1 - lambda) x + lambda c.
    let mut b = make(&x);
    b.pull(&make(&c), 0.3).unwrap();
    let mut want = x.clone();
    naive_pull(&mut want, &c, 0.3);
    assert_bits(&b.to_host().unwrap(), &want, &format!("{place}: pull"));

    // scale_add: x <- a x + b y.
    let mut b = make(&x);
    b.scale_add(0.75, &make(&c), -1.5).unwrap();
    let want: Vec<f32> = x.iter().zip(&c).map(|(x, c)| 0.75 * x + -1.5 * c).collect();
    assert_bits(&b.to_host().unwrap(), &want, &format!("{place}: scale_add"));

    // divide: x <- x / d (a true division: x * (1/3) differs in the last bit for many x).
    let mut b = make(&x);
    b.divide(3.0).unwrap();
    let want: Vec<f32> = x.iter().map(|x| x / 3.0).collect();
    assert_bits(&b.to_host().unwrap(), &want, &format!("{place}: divide"));

    // sgd_step, PyTorch's rule, with and without Nesterov, two steps (momentum carried over).
    for nesterov in [true, false] {
        let cfg = SgdConfig {
            momentum: 0.9,
            nesterov,
            weight_decay: 1e-4,
        };
        let (mut bx, mut bm, bg) = (make(&x), make(&m), make(&g));
        let (mut wx, mut wm) = (x.clone(), m.clone());
        for lr in [0.1f32, 0.05] {
            bx.sgd_step(&bg, &mut bm, lr, &cfg).unwrap();
            for j in 0..n {
                let d = g[j] + cfg.weight_decay * wx[j];
                wm[j] = cfg.momentum * wm[j] + d;
                let step = if nesterov {
                    d + cfg.momentum * wm[j]
                } else {
                    wm[j]
                };
                wx[j] -= lr * step;
            }
        }
        let what = format!("{place}: sgd_step (nesterov {nesterov})");
        assert_bits(&bx.to_host().unwrap(), &wx, &format!("{what}: parameters"));
        assert_bits(&bm.to_host().unwrap(), &wm, &format!("{what}: momentum"));
    }

    // Mismatched lengths are an error, not a panic or a silent partial update.
    let mut short = make(&x[..10]);
    assert!(
        short.pull(&make(&c), 0.5).is_err(),
        "{place}: pull of unequal lengths"
    );
}

#[test]
fn host_buffers_match_the_references() {
    suite(|v: &[f32]| v.to_vec(), "host");
}

/// `Vec<f32>` reaches the `[f32]` implementation through deref; the suite above runs on `Vec`s.
/// This pins that the trait object form works too (what a caller holding `dyn` buffers gets).
#[test]
fn host_buffers_work_through_slices() {
    let mut x = vec![1.0f32, 2.0, 3.0];
    let c = [3.0f32, 2.0, 1.0];
    FlatBuffer::pull(x.as_mut_slice(), &c[..], 0.5).unwrap();
    assert_eq!(x, vec![2.0, 2.0, 2.0]);
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_buffers_match_the_references() {
    use grawa_train::buffer::{CudaBuffer, CudaPlace};
    match grawa_train::cuda::device_count() {
        Ok(n) if n > 0 => {}
        other => {
            eprintln!("no GPU ({other:?}): the CUDA half of the parity suite did not run");
            return;
        }
    }
    let t = table();
    let n: usize = LAYERS.iter().sum();
    let place = CudaPlace::new(0, &t, n).expect("GPU 0");
    // Buffers of the suite's short-length check use the same place: lengths are checked by the
    // kernels' launchers, not by the layout.
    suite(
        |v: &[f32]| CudaBuffer::from_host(&place, v).unwrap(),
        "cuda",
    );
}
