//! `flatness::measure_run` on a run folder measures the model the trainer evaluates: the figures it
//! writes to `flatness.json` equal, bit for bit, those of `measure` on the trainer's own evaluator
//! (`train::evaluator::Evaluator`) set to the run's evaluated point, with BatchNorm recalibrated as the
//! run was. The run: the CNN (BatchNorm) on synthetic data, two workers of local SGD.

mod run_support;

use std::sync::Arc;

use candle_core::Device;
use grawa_train::checkpoint::{self, Layout};
use grawa_train::data::{holdout, DatasetKind, Normalization, SyntheticSpec};
use grawa_train::flatness::run::evaluated_point;
use grawa_train::flatness::{measure, measure_run, FlatnessOptions, FlatnessReport};
use grawa_train::model::{Model, ModelKind};
use grawa_train::train::evaluator::{EvalSetup, Evaluator};

const SEED: u64 = 3;
/// `--bn-recal-batches` of the run.
const RECAL_BATCHES: usize = 3;

fn options() -> FlatnessOptions {
    FlatnessOptions {
        iterations: 4,
        starts: 1,
        samples: 32,
        hutchinson: 2,
        seed: 0,
    }
}

/// The reference: the run's newest checkpoint read by hand, its evaluated point scored the way the
/// trainer scores it (`Evaluator::prepare`), and measured; on the training images without the
/// `val_split` images per worker (of two) held out, as the run trained.
fn measured_by_the_evaluator(
    dir: &std::path::Path,
    bn_recal_batches: usize,
    val_split: Option<usize>,
) -> FlatnessReport {
    let kind = ModelKind::Cnn;
    let spec = SyntheticSpec {
        shape: kind.synthetic_shape(),
        num_classes: 10,
        train: 256,
        test: 64,
        seed: SEED,
    };
    let (mut train, test) = spec.generate().unwrap();
    if let Some(n) = val_split {
        train = holdout::hold_out(train, n, 2).unwrap().0;
    }
    let probe = Model::new(kind, spec.shape, 10, SEED, &Device::Cpu).unwrap();
    let (ps, bs) = (probe.params.shapes(), probe.buffers.shapes());
    let layout = Layout {
        params: probe.params.table(),
        param_shapes: &ps,
        buffers: probe.buffers.table(),
        buffer_shapes: &bs,
    };
    let newest = checkpoint::list(dir).unwrap().pop().expect("a checkpoint");
    let ckpt = checkpoint::read(&newest, &layout).unwrap();
    let norm = Normalization::for_kind(DatasetKind::Synthetic);
    let setup = EvalSetup {
        kind,
        shape: spec.shape,
        num_classes: 10,
        eval_batch_size: 1000,
        recal_batches: bn_recal_batches,
        recal_batch_size: 16,
        seed: SEED,
        per_class: false,
    };
    let train = Arc::new(train);
    let evaluator = Evaluator::new(
        &setup,
        train.clone(),
        Arc::new(test),
        norm.clone(),
        &Device::Cpu,
    )
    .unwrap();
    let model = evaluator.prepare(&evaluated_point(&ckpt).unwrap()).unwrap();
    measure(model, &train, &norm, &options()).unwrap()
}

fn without_time(mut r: FlatnessReport) -> FlatnessReport {
    r.seconds = 0.0;
    r
}

/// Runs the test's run with `extra` flags and measures it; checks flatness.json and compares with
/// the reference.
fn measured_run_matches_the_evaluator(extra: &[&str], val_split: Option<usize>) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let base = [
        "--dataset=synthetic",
        "--model=cnn",
        "--synthetic-train=256",
        "--synthetic-test=64",
        "--workers=2",
        "--algo=local-sgd",
        "--tau=2",
        "--steps=4",
        "--batch-size=16",
        "--bn-recal-batches=3", // RECAL_BATCHES
        "--seed=3",
        "--threads=2",
        "--quiet",
    ];
    let flags = [&base[..], extra].concat();
    run_support::run(run_support::run_config(&flags, &out), 300);
    let report = measure_run(&out, None, &options(), false).unwrap();
    let written: FlatnessReport =
        serde_json::from_str(&std::fs::read_to_string(out.join("flatness.json")).unwrap()).unwrap();
    assert_eq!(without_time(written), without_time(report.clone()));
    assert!(report.lambda_max.is_finite() && report.loss.is_finite());
    assert_eq!(
        without_time(report),
        without_time(measured_by_the_evaluator(&out, RECAL_BATCHES, val_split))
    );
}

#[test]
fn a_run_is_measured_at_the_model_its_evaluator_scores() {
    measured_run_matches_the_evaluator(&[], None);
}

/// With `--val-split` the run trained (and recalibrated BatchNorm) on the images left after the
/// held-out ones: flatness is measured on those too.
#[test]
fn a_run_with_a_validation_split_is_measured_on_the_images_it_trained_on() {
    measured_run_matches_the_evaluator(&["--val-split=40"], Some(40));
}
