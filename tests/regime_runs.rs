//! The regime in runs (in-process, synthetic data, the MLP): a slowed worker takes fewer steps
//! under `async`, evaluations follow the clock with and without averaging rounds, and the
//! validation set is scored beside the test set, by the same evaluation.

mod run_support;

use std::path::Path;
use std::sync::Arc;

use candle_core::Device;
use grawa_train::config::RunConfig;
use grawa_train::data::{Dataset, Normalization, SyntheticSpec};
use grawa_train::model::{Model, ModelKind};
use grawa_train::train::evaluator::{EvalSetup, Evaluator};
use run_support::{events, run, run_config};
use serde_json::Value;

/// A learning rate low enough that the MLP does not diverge on synthetic data within a time
/// budget (at the default 0.1 a quiet machine's 2000-odd steps in 2.4 s overflow its logits).
const BASE: [&str; 13] = [
    "--dataset",
    "synthetic",
    "--model",
    "mlp",
    "--synthetic-train",
    "2000",
    "--synthetic-test",
    "200",
    "--batch-size",
    "16",
    "--quiet",
    "--bn-recal-batches=1",
    "--lr=0.02",
];

fn config(extra: &[&str], out: &Path) -> RunConfig {
    run_config(&[&BASE[..], extra].concat(), out)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// Worker 2 at a quarter of its speed, nobody held back by staleness: in the same time it takes
/// about a quarter of the others' steps (bounds left wide for a busy machine).
#[test]
fn a_slowed_worker_takes_clearly_fewer_steps_under_async() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let cfg = config(
        &[
            "--workers",
            "3",
            "--algo",
            "local-sgd",
            "--schedule",
            "async",
            "--tau",
            "4",
            "--max-staleness",
            "1000000",
            "--minutes",
            "0.04",
            "--worker-speed",
            "1,1,0.25",
        ],
        &out,
    );
    let s = run(cfg, 120);
    let steps = &s.worker_steps;
    let fast = steps[0].min(steps[1]);
    assert!(steps[2] > 0, "{steps:?}");
    assert!(
        (steps[2] as f64) < 0.6 * fast as f64,
        "the slowed worker took {} steps, the others {steps:?}",
        steps[2]
    );
}

/// `--eval-every 0.4s` for 2.4 s of training: evaluations in the middle of the run (the last one
/// is the final), none before its time, at most one per period, and not only at epoch
/// boundaries. `rounds`: the tau of an algorithm that averages in rounds (its evaluations fall on
/// rounds, every `workers*tau` local steps); without rounds the workers meet for them at any step.
fn evaluations_on_the_clock(extra: &[&str], workers: u64, rounds: Option<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut flags = vec!["--eval-every", "0.4s", "--minutes", "0.04"];
    flags.extend_from_slice(extra);
    run(config(&flags, &out), 120);
    let evals = events(&out, "eval");
    let mid = &evals[..evals.len() - 1];
    assert!(
        mid.len() >= 2,
        "{extra:?}: only {} evaluations",
        evals.len()
    );
    let mut last_period = 0;
    for e in mid {
        let seconds = e["seconds"].as_f64().unwrap();
        // Due at 0.4, 0.8, ...: the n-th period of 0.4 s has begun, once per period.
        let period = (seconds / 0.4).floor() as u64;
        assert!(
            period > last_period,
            "{extra:?}: eval at {seconds} s after one in period {last_period}"
        );
        last_period = period;
    }
    let totals: Vec<u64> = mid.iter().map(|e| u(&e["total_steps"])).collect();
    // Not the step form's evaluations, once an epoch (2000 images over the workers in batches of
    // 16: this many local steps in all).
    let epoch = 2000 / workers / 16 * workers;
    assert!(
        totals.iter().any(|t| t % epoch != 0),
        "{extra:?}: evaluations only at epoch boundaries: {totals:?}"
    );
    if let Some(tau) = rounds {
        assert!(
            totals.iter().all(|t| t % (workers * tau) == 0),
            "{extra:?}: evaluations off the rounds: {totals:?}"
        );
    }
}

#[test]
fn ddp_meets_for_the_clock() {
    evaluations_on_the_clock(&["--workers", "2", "--algo", "ddp"], 2, None);
}

#[test]
fn a_single_worker_meets_for_the_clock() {
    evaluations_on_the_clock(&["--workers", "1"], 1, None);
}

#[test]
fn grawa_evaluates_on_the_clock_at_its_rounds() {
    evaluations_on_the_clock(
        &["--workers", "2", "--algo", "lgrawa", "--tau", "2"],
        2,
        Some(2),
    );
}

/// The validation set is scored at every evaluation and in the summary; a checkpoint keeps when
/// the next clocked evaluation is due.
#[test]
fn validation_scores_and_the_clock_reach_the_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let cfg = config(
        &[
            "--workers",
            "2",
            "--algo",
            "easgd",
            "--steps",
            "40",
            "--val-split",
            "50",
            "--eval-every",
            "30s",
        ],
        &out,
    );
    let s = run(cfg, 120);
    let evals = events(&out, "eval");
    for e in &evals {
        let (loss, acc) = (e["val_loss"].as_f64(), e["val_accuracy"].as_f64());
        assert!(loss.is_some_and(f64::is_finite), "{e}");
        assert!(acc.is_some_and(|a| (0.0..=1.0).contains(&a)), "{e}");
    }
    let last = evals.last().unwrap();
    assert_eq!(s.val_accuracy, last["val_accuracy"].as_f64());
    assert_eq!(s.val_loss, last["val_loss"].as_f64());
    // 2000 images less 2 x 50 held out: 950 per worker, 59 batches of 16 an epoch.
    assert!(
        (s.epochs - 80.0 / (2.0 * 59.0)).abs() < 1e-9,
        "epochs {}",
        s.epochs
    );
    let ckpts: Vec<_> = std::fs::read_dir(out.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path().join("state.json"))
        .filter(|p| p.exists())
        .collect();
    assert!(!ckpts.is_empty());
    for p in ckpts {
        let state: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(state["next_eval_seconds"], 30.0, "{}", p.display());
    }
}

/// The regime's flags together, in every schedule (and DDP, which has no rounds), over a
/// modelled link: worker 1 at a quarter of its speed, evaluations every 0.25 s of a 0.9 s run,
/// each with the validation score, and the link's time in the summary. Under `permits` and
/// `async` the slowed worker takes fewer steps; under `sync` as many.
#[test]
fn every_schedule_takes_the_regime_flags_together() {
    let dir = tempfile::tempdir().unwrap();
    for (algo, schedule) in [
        ("lgrawa", "sync"),
        ("local-sgd", "permits"),
        ("easgd", "async"),
        ("ddp", "sync"),
    ] {
        let out = dir.path().join(format!("{algo}-{schedule}"));
        let flags = [
            "--workers",
            "2",
            "--algo",
            algo,
            "--schedule",
            schedule,
            "--worker-speed",
            "1,0.25",
            "--eval-every",
            "0.25s",
            "--val-split",
            "50",
            "--link",
            "10gbe",
            "--minutes",
            "0.015",
        ];
        let s = run(config(&flags, &out), 120);
        let what = format!("{algo} {schedule}");
        let evals = events(&out, "eval");
        assert!(evals.len() >= 3, "{what}: {} evaluations", evals.len());
        assert!(
            evals.iter().all(|e| e["val_loss"].as_f64().is_some()),
            "{what}"
        );
        assert!(
            s.val_accuracy.is_some() && s.link_seconds.is_some(),
            "{what}"
        );
        let w = &s.worker_steps;
        match schedule {
            "sync" => assert_eq!(w[0], w[1], "{what}: {w:?}"),
            _ => assert!(w[1] < w[0], "{what}: the slowed worker {w:?}"),
        }
    }
}

/// The validation score is the test score's computation on the validation set: an evaluator
/// scoring a point on set V as its validation set gives what one with V as its test set gives.
#[test]
fn the_validation_score_is_the_evaluation_on_the_validation_set() {
    let spec = SyntheticSpec {
        train: 300,
        test: 100,
        ..SyntheticSpec::default()
    };
    let (train, test) = spec.generate().unwrap();
    let (train, test) = (Arc::new(train), Arc::new(test));
    let setup = EvalSetup {
        kind: ModelKind::Mlp,
        shape: spec.shape,
        num_classes: 10,
        eval_batch_size: 64,
        recal_batches: 1,
        recal_batch_size: 16,
        seed: 3,
        per_class: false,
    };
    let norm = Normalization::for_kind(grawa_train::data::DatasetKind::Synthetic);
    let params = Model::new(ModelKind::Mlp, spec.shape, 10, 3, &Device::Cpu)
        .unwrap()
        .params
        .to_flat()
        .unwrap();
    let evaluator = |test: &Arc<Dataset>| {
        Evaluator::new(
            &setup,
            train.clone(),
            test.clone(),
            norm.clone(),
            &Device::Cpu,
        )
        .unwrap()
    };
    // The validation set here: the training images (any set other than the test set).
    let on_val_as_test = evaluator(&train).score(&params).unwrap();
    let plain = evaluator(&test);
    assert!(plain.score_validation().unwrap().is_none());
    let with_val = evaluator(&test).with_validation(Some(train.clone()));
    let on_test = with_val.score(&params).unwrap();
    let on_val = with_val.score_validation().unwrap().unwrap();
    assert_eq!(
        (on_val.loss, on_val.accuracy),
        (on_val_as_test.loss, on_val_as_test.accuracy)
    );
    assert_ne!(on_val.loss, on_test.loss, "two different sets");
}
