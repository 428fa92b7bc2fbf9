//! The synthetic data set: deterministic for a seed, balanced, learnable but not trivially so.

use grawa_train::data::{
    eval_batches, load, Augment, DataError, Dataset, DatasetKind, ImageShape, Normalization,
    ShardLoader, SyntheticSpec,
};
use std::path::Path;
use std::sync::Arc;

const MNIST_LIKE: ImageShape = ImageShape::new(1, 28, 28);
const CIFAR_LIKE: ImageShape = ImageShape::new(3, 32, 32);

fn spec(shape: ImageShape, seed: u64) -> SyntheticSpec {
    SyntheticSpec {
        shape,
        num_classes: 10,
        train: 1003,
        test: 200,
        seed,
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    for shape in [MNIST_LIKE, CIFAR_LIKE] {
        let (a_train, a_test) = spec(shape, 7).generate().unwrap();
        let (b_train, b_test) = spec(shape, 7).generate().unwrap();
        assert_eq!(a_train, b_train);
        assert_eq!(a_test, b_test);
        let (c_train, _) = spec(shape, 8).generate().unwrap();
        assert_ne!(a_train.images, c_train.images);
        // Train and test are different draws.
        assert_ne!(a_train.images[..200 * shape.len()], a_test.images[..]);

        assert_eq!(a_train.shape, shape);
        assert_eq!(a_train.images.len(), 1003 * shape.len());
        assert_eq!(
            (a_train.len(), a_test.len(), a_train.num_classes),
            (1003, 200, 10)
        );
        // Images are not constant: the noise spreads pixels over most of the byte range.
        let (lo, hi) = (a_train.images.iter().min(), a_train.images.iter().max());
        assert!(lo < Some(&30) && hi > Some(&225), "{lo:?} {hi:?}");
    }
}

#[test]
fn load_generates_from_the_spec_without_files() {
    let s = load(
        DatasetKind::Synthetic,
        Path::new("/nonexistent"),
        &spec(CIFAR_LIKE, 3),
    )
    .unwrap();
    assert_eq!(s.kind, DatasetKind::Synthetic);
    assert_eq!(s.train, spec(CIFAR_LIKE, 3).generate().unwrap().0);
}

#[test]
fn classes_are_balanced() {
    let (train, test) = spec(MNIST_LIKE, 1).generate().unwrap();
    // 1003 = 100 * 10 + 3: the first three classes get one more.
    assert_eq!(
        train.class_counts(),
        vec![101, 101, 101, 100, 100, 100, 100, 100, 100, 100]
    );
    assert_eq!(test.class_counts(), vec![20; 10]);
}

#[test]
fn invalid_specs_are_errors() {
    let ok = spec(MNIST_LIKE, 0);
    for bad in [
        SyntheticSpec {
            num_classes: 1,
            ..ok
        },
        SyntheticSpec {
            num_classes: 257,
            ..ok
        },
        SyntheticSpec { train: 0, ..ok },
        SyntheticSpec { test: 0, ..ok },
        SyntheticSpec {
            shape: ImageShape::new(1, 0, 28),
            ..ok
        },
    ] {
        assert!(
            matches!(bad.generate(), Err(DataError::Invalid(_))),
            "{bad:?}"
        );
    }
}

/// Accuracy of the nearest true prototype: the best any classifier can do, about.
fn nearest_prototype_accuracy(spec: &SyntheticSpec, test: &Dataset) -> f64 {
    let protos = spec.prototypes();
    let d = spec.shape.len();
    let dist = |x: &[u8], c: usize| -> f32 {
        x.iter()
            .zip(&protos[c * d..(c + 1) * d])
            .map(|(&p, &m)| (p as f32 / 255.0 - m).powi(2))
            .sum()
    };
    let correct = (0..test.len())
        .filter(|&i| {
            let x = test.image(i);
            let best = (0..spec.num_classes)
                .min_by(|&a, &b| dist(x, a).total_cmp(&dist(x, b)))
                .unwrap();
            best == test.labels[i] as usize
        })
        .count();
    correct as f64 / test.len() as f64
}

/// Softmax regression trained by plain SGD (reference implementation written out here), test
/// accuracy after each of `checkpoints` steps.
fn softmax_regression(train: Dataset, test: &Dataset, checkpoints: &[usize]) -> Vec<f64> {
    let norm = Normalization::for_kind(DatasetKind::Synthetic);
    let (d, k, bs, lr) = (train.shape.len(), train.num_classes, 64, 0.05f32);
    let logits = |w: &[f32], b: &[f32], x: &[f32]| -> Vec<f32> {
        (0..k)
            .map(|c| {
                b[c] + w[c * d..(c + 1) * d]
                    .iter()
                    .zip(x)
                    .map(|(a, b)| a * b)
                    .sum::<f32>()
            })
            .collect()
    };
    let accuracy = |w: &[f32], b: &[f32]| {
        let mut correct = 0;
        for batch in eval_batches(test, &norm, 256) {
            for (x, &y) in batch.images.chunks_exact(d).zip(&batch.labels) {
                let l = logits(w, b, x);
                let best = (0..k).max_by(|&i, &j| l[i].total_cmp(&l[j])).unwrap();
                correct += usize::from(best == y as usize);
            }
        }
        correct as f64 / test.len() as f64
    };
    let mut loader = ShardLoader::new(Arc::new(train), norm.clone(), Augment::none(), bs, 0, 1, 0);
    let (mut w, mut b) = (vec![0f32; k * d], vec![0f32; k]);
    let mut out = Vec::new();
    for step in 1..=*checkpoints.iter().max().unwrap() {
        let batch = loader.next_batch();
        let (mut gw, mut gb) = (vec![0f32; k * d], vec![0f32; k]);
        for (x, &y) in batch.images.chunks_exact(d).zip(&batch.labels) {
            let l = logits(&w, &b, x);
            let m = l.iter().copied().fold(f32::MIN, f32::max);
            let e: Vec<f32> = l.iter().map(|v| (v - m).exp()).collect();
            let s: f32 = e.iter().sum();
            for c in 0..k {
                let g = e[c] / s - f32::from(u8::from(c == y as usize));
                gb[c] += g;
                for (gw, xi) in gw[c * d..(c + 1) * d].iter_mut().zip(x) {
                    *gw += g * xi;
                }
            }
        }
        for (w, g) in w.iter_mut().zip(&gw).chain(b.iter_mut().zip(&gb)) {
            *w -= lr * g / bs as f32;
        }
        if checkpoints.contains(&step) {
            out.push(accuracy(&w, &b));
        }
    }
    out
}

#[test]
fn learnable_but_not_trivial() {
    let spec = SyntheticSpec {
        train: 10_000,
        test: 2_000,
        ..spec(MNIST_LIKE, 11)
    };
    let (train, test) = spec.generate().unwrap();

    // Classes overlap: even the true prototypes misclassify a few percent.
    let bayes = nearest_prototype_accuracy(&spec, &test);
    assert!((0.94..0.99).contains(&bayes), "nearest prototype: {bayes}");

    // A linear model starts well below 90% and passes it within a few hundred steps.
    let acc = softmax_regression(train, &test, &[1, 300]);
    println!("nearest prototype {bayes:.4}, softmax regression after 1 / 300 steps: {acc:?}");
    assert!(acc[0] < 0.8, "after 1 step: {}", acc[0]);
    assert!(acc[1] > 0.9, "after 300 steps: {}", acc[1]);
}
