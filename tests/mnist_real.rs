//! Real data: one epoch of the MLP on MNIST must reach the accuracy the README promises. Skipped
//! (with a note) when `data/mnist` is absent; `scripts/test.sh` fetches it first.

use std::path::Path;

use grawa_train::cli::parse_from;
use grawa_train::config::RunConfig;

#[test]
fn mlp_one_epoch_on_mnist_reaches_097() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    if !data.join("mnist").exists() {
        eprintln!(
            "skipped: {} is missing (run scripts/fetch-data.sh mnist)",
            data.join("mnist").display()
        );
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let args = parse_from([
        "grawa-train",
        "--dataset",
        "mnist",
        "--data-dir",
        data.to_str().unwrap(),
        "--model",
        "mlp",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        out.path().join("run").to_str().unwrap(),
    ])
    .unwrap();
    let summary = grawa_train::train::run(RunConfig::from_args(&args).unwrap()).unwrap();
    assert!(
        summary.test_accuracy >= 0.97,
        "test accuracy {}",
        summary.test_accuracy
    );
    assert_eq!(summary.steps, 468, "60000 / 128 full batches");
}
