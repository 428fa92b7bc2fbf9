//! Real data: one epoch of the MLP on MNIST, and the README's main job, must reach the accuracy the
//! README promises. Skipped (with a note) when `data/mnist` is absent; `scripts/test.sh` fetches it.

use std::path::Path;

use grawa_train::cli::parse_from;
use grawa_train::config::RunConfig;
use grawa_train::metrics::Summary;

/// Trains the MLP on real MNIST with `flags`; None (with a note) when the data is not there.
fn train_mlp_on_mnist(flags: &[&str]) -> Option<Summary> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    if !data.join("mnist").exists() {
        eprintln!(
            "skipped: {} is missing (run scripts/fetch-data.sh mnist)",
            data.join("mnist").display()
        );
        return None;
    }
    let out = tempfile::tempdir().unwrap();
    let run = out.path().join("run");
    let mut args = vec![
        "grawa-train",
        "--dataset",
        "mnist",
        "--data-dir",
        data.to_str().unwrap(),
        "--model",
        "mlp",
        "--quiet",
        "--out",
        run.to_str().unwrap(),
    ];
    args.extend_from_slice(flags);
    let args = parse_from(args).unwrap();
    Some(grawa_train::train::run(RunConfig::from_args(&args).unwrap()).unwrap())
}

#[test]
fn mlp_one_epoch_on_mnist_reaches_097() {
    let Some(summary) = train_mlp_on_mnist(&["--epochs", "1"]) else {
        return;
    };
    assert!(
        summary.test_accuracy >= 0.97,
        "test accuracy {}",
        summary.test_accuracy
    );
    assert_eq!(summary.steps, 468, "60000 / 128 full batches");
}

/// The README's main job: four LGRAWA workers, two epochs (one epoch = one pass over the training
/// set by all workers together), the averaged model at 0.97 or better.
#[test]
fn four_lgrawa_workers_on_mnist_reach_097() {
    let flags = [
        "--workers",
        "4",
        "--algo",
        "lgrawa",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--lr",
        "0.05",
    ];
    let Some(summary) = train_mlp_on_mnist(&flags) else {
        return;
    };
    assert!(
        summary.test_accuracy >= 0.97,
        "test accuracy {}",
        summary.test_accuracy
    );
    assert_eq!(
        summary.worker_steps,
        vec![936; 4],
        "2 epochs of 15000-image shards in batches of 32"
    );
    assert_eq!(
        summary.rounds, 30,
        "936 / 32 = 29.25: 29 full rounds and one at the budget"
    );
}
