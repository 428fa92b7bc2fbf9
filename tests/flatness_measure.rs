//! `measure` end to end on small models of the synthetic data set: the figures are finite and
//! consistent with each other, the model is left bit-identical, the run is reproducible, and the
//! report round-trips through JSON.
//!
//! Expected relations (no closed form for a trained network): a Ritz value never exceeds the top
//! eigenvalue, so every start's `lambda_max` is at most the reported maximum; the sum of 10 Ritz
//! values includes `lambda_max` plus nine values that, near a minimum of a cross-entropy loss, are
//! mostly positive, so it is at least `lambda_max`; the Hutchinson trace is positive there.

use candle_core::Device;
use grawa_train::data::{Dataset, DatasetKind, ImageShape, Normalization, SyntheticSpec};
use grawa_train::flatness::{measure, measure_with_progress, FlatnessOptions, FlatnessReport};
use grawa_train::model::evaluate::batch_tensors;
use grawa_train::model::{Model, ModelKind};
use grawa_train::optim::{Sgd, SgdConfig};

fn data() -> (Dataset, Normalization) {
    let spec = SyntheticSpec {
        shape: ImageShape::new(1, 28, 28),
        num_classes: 10,
        train: 500,
        test: 100,
        seed: 0,
    };
    let (train, _) = spec.generate().unwrap();
    (train, Normalization::for_kind(DatasetKind::Synthetic))
}

/// A model trained for a few dozen SGD steps, so it sits in a basin rather than at its random
/// start.
fn trained(kind: ModelKind, train: &Dataset, norm: &Normalization) -> Model {
    let m = Model::new(kind, ImageShape::new(1, 28, 28), 10, 1, &Device::Cpu).unwrap();
    let cfg = SgdConfig {
        momentum: 0.9,
        nesterov: true,
        weight_decay: 0.0,
    };
    let mut sgd = Sgd::new(cfg, &m.params);
    let table = norm.table(1);
    for step in 0..40 {
        let ids: Vec<usize> = (0..50).map(|i| (step * 50 + i) % train.len()).collect();
        let b = grawa_train::data::Batch::gather(train, &table, &ids);
        let (x, y) = batch_tensors(&b, &Device::Cpu).unwrap();
        let loss = candle_nn::loss::cross_entropy(&m.forward_t(&x, true).unwrap(), &y).unwrap();
        sgd.step(&m.params, &loss.backward().unwrap(), 0.05)
            .unwrap();
    }
    m
}

fn small() -> FlatnessOptions {
    FlatnessOptions {
        iterations: 10,
        starts: 1,
        samples: 64,
        hutchinson: 8,
        seed: 0,
    }
}

fn check_consistent(r: &FlatnessReport) {
    assert!(r.lambda_max.is_finite() && r.lambda_max > 0.0, "{r:?}");
    assert!(
        r.ritz_sum.is_finite() && r.ritz_sum >= r.lambda_max,
        "{r:?}"
    );
    assert!(
        r.hutchinson_trace.is_finite() && r.hutchinson_trace > 0.0,
        "{r:?}"
    );
    assert!(
        r.hutchinson_stderr.is_finite() && r.hutchinson_stderr >= 0.0,
        "{r:?}"
    );
    assert!(r.loss.is_finite() && r.loss > 0.0);
    assert_eq!(r.per_start.len(), r.starts);
    for s in &r.per_start {
        assert!(s.lambda_max <= r.lambda_max);
        assert!(s.iterations <= r.iterations);
    }
}

#[test]
fn mlp_figures_are_sane_and_the_model_is_untouched() {
    let (train, norm) = data();
    let m = trained(ModelKind::Mlp, &train, &norm);
    let before = m.params.to_flat().unwrap();
    let mut calls = Vec::new();
    let r = measure_with_progress(&m, &train, &norm, &small(), |done, total| {
        calls.push((done, total))
    })
    .unwrap();
    eprintln!("{}", serde_json::to_string(&r).unwrap());
    check_consistent(&r);
    assert_eq!(calls, (1..=18).map(|d| (d, 18)).collect::<Vec<_>>());
    assert_eq!(
        (r.iterations, r.starts, r.samples, r.hutchinson),
        (10, 1, 64, 8)
    );
    assert_eq!(r.parameters, m.params.len());
    assert_eq!(r.products, 10 + 8);
    let after = m.params.to_flat().unwrap();
    assert!(before
        .iter()
        .zip(&after)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn cnn_with_batchnorm_leaves_buffers_untouched() {
    let (train, norm) = data();
    let m = Model::new(
        ModelKind::Cnn,
        ImageShape::new(1, 28, 28),
        10,
        1,
        &Device::Cpu,
    )
    .unwrap();
    // Forward passes in train mode move the running statistics away from their initial 0 and 1, so
    // "untouched" is a real check (training the CNN would take longer than this whole test).
    let table = norm.table(1);
    for start in [0, 50, 100] {
        let ids: Vec<usize> = (start..start + 50).collect();
        let b = grawa_train::data::Batch::gather(&train, &table, &ids);
        m.forward_t(&batch_tensors(&b, &Device::Cpu).unwrap().0, true)
            .unwrap();
    }
    let before = (m.params.to_flat().unwrap(), m.buffers.to_flat().unwrap());
    assert!(before.1.iter().any(|&b| b != 0.0 && b != 1.0));
    let opts = FlatnessOptions {
        iterations: 4,
        samples: 16,
        hutchinson: 2,
        ..small()
    };
    let r = measure(&m, &train, &norm, &opts).unwrap();
    eprintln!("{}", serde_json::to_string(&r).unwrap());
    assert!(r.lambda_max.is_finite() && r.lambda_max > 0.0, "{r:?}");
    let after = (m.params.to_flat().unwrap(), m.buffers.to_flat().unwrap());
    assert!(before
        .0
        .iter()
        .zip(&after.0)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    assert!(before
        .1
        .iter()
        .zip(&after.1)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn reproducible_for_a_seed_and_several_starts_summarised() {
    let (train, norm) = data();
    let m = trained(ModelKind::Mlp, &train, &norm);
    let opts = FlatnessOptions {
        iterations: 6,
        starts: 2,
        samples: 48,
        hutchinson: 3,
        seed: 4,
    };
    let a = measure(&m, &train, &norm, &opts).unwrap();
    let b = measure(&m, &train, &norm, &opts).unwrap();
    let strip = |r: &FlatnessReport| FlatnessReport {
        seconds: 0.0,
        ..r.clone()
    };
    assert_eq!(strip(&a), strip(&b));
    // Max over starts, mean of Ritz sums.
    let max = a
        .per_start
        .iter()
        .map(|s| s.lambda_max)
        .fold(f64::MIN, f64::max);
    let mean = a.per_start.iter().map(|s| s.ritz_sum).sum::<f64>() / 2.0;
    assert_eq!(a.lambda_max, max);
    assert!((a.ritz_sum - mean).abs() <= 1e-12 * mean.abs());
    // Another seed: other images and start vectors, other numbers.
    let c = measure(&m, &train, &norm, &FlatnessOptions { seed: 5, ..opts }).unwrap();
    assert_ne!(c.ritz_sum, a.ritz_sum);
}

#[test]
fn report_round_trips_through_json_with_nan_as_null() {
    let (train, norm) = data();
    let m = trained(ModelKind::Mlp, &train, &norm);
    let opts = FlatnessOptions {
        iterations: 3,
        samples: 16,
        hutchinson: 1,
        ..small()
    };
    let r = measure(&m, &train, &norm, &opts).unwrap();
    // One probe: no standard error.
    assert!(r.hutchinson_stderr.is_nan());
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"hutchinson_stderr\":null"), "{json}");
    let back: FlatnessReport = serde_json::from_str(&json).unwrap();
    assert!(back.hutchinson_stderr.is_nan());
    assert_eq!(back.lambda_max, r.lambda_max);
    assert_eq!(back.per_start, r.per_start);
}

#[test]
fn bad_options_are_errors() {
    let (train, norm) = data();
    let m = Model::new(
        ModelKind::Mlp,
        ImageShape::new(1, 28, 28),
        10,
        1,
        &Device::Cpu,
    )
    .unwrap();
    for opts in [
        FlatnessOptions {
            iterations: 0,
            ..small()
        },
        FlatnessOptions {
            starts: 0,
            ..small()
        },
        FlatnessOptions {
            samples: 0,
            ..small()
        },
    ] {
        let e = measure(&m, &train, &norm, &opts).unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
    }
    let defaults = FlatnessOptions::default();
    assert_eq!(
        (defaults.iterations, defaults.starts, defaults.samples),
        (100, 3, 320)
    );
}

/// `grawa-train flatness` with a zero or absurd count exits 2 with one line naming the flag, and
/// writes nothing; a `--samples` past the training set is refused the same way (the default of 320
/// is cut to a smaller training set instead).
#[test]
fn the_subcommand_refuses_zero_and_absurd_counts() {
    let bin = env!("CARGO_BIN_EXE_grawa-train");
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let made = std::process::Command::new(bin)
        .args([
            "--dataset",
            "synthetic",
            "--model",
            "mlp",
            "--steps",
            "3",
            "--quiet",
        ])
        .args([
            "--synthetic-train",
            "200",
            "--synthetic-test",
            "50",
            "--batch-size",
            "16",
        ])
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let cases: [(&[&str], &str); 6] = [
        (&["--iterations", "0"], "--iterations 0"),
        (&["--iterations", "1000000"], "--iterations 1000000"),
        (&["--starts", "0"], "--starts 0"),
        (&["--samples", "0"], "--samples 0"),
        (&["--samples", "100000000"], "--samples 100000000"),
        (&["--hutchinson", "99999"], "--hutchinson 99999"),
    ];
    for (flags, named) in cases {
        let o = std::process::Command::new(bin)
            .arg("flatness")
            .arg("--checkpoint")
            .arg(&run)
            .args(flags)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {err}");
        assert!(
            err.contains(named) && err.lines().count() == 1,
            "{flags:?}: {err}"
        );
        assert!(
            !run.join("flatness.json").exists(),
            "{flags:?} wrote a report"
        );
    }
    // The default 320 samples on a 200-image training set: the whole set, and a report.
    let o = std::process::Command::new(bin)
        .args([
            "flatness",
            "--iterations",
            "3",
            "--starts",
            "1",
            "--hutchinson",
            "2",
            "--json",
        ])
        .arg("--checkpoint")
        .arg(&run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["samples"], 200);
}
