//! --watchdog: a worker that stops responding ends the run with an error naming it, not a hang.

use std::time::{Duration, Instant};

use grawa_train::cli::parse_from;
use grawa_train::config::RunConfig;

#[test]
fn a_silent_worker_ends_the_run_naming_it() {
    let out = tempfile::tempdir().unwrap();
    let args = parse_from([
        "grawa-train",
        "--dataset",
        "synthetic",
        "--model",
        "mlp",
        "--workers",
        "3",
        "--algo",
        "local-sgd",
        "--tau",
        "4",
        "--steps",
        "40",
        "--watchdog",
        "1",
        "--synthetic-train",
        "2000",
        "--quiet",
        "--out",
        out.path().join("run").to_str().unwrap(),
    ])
    .unwrap();
    let mut cfg = RunConfig::from_args(&args).unwrap();
    // Worker 1 takes 30 s per step: far past the 1 s watchdog, as good as stuck.
    cfg.slow_worker = Some((1, Duration::from_secs(30)));
    let start = Instant::now();
    let err = grawa_train::train::run(cfg).expect_err("the watchdog must end the run");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
    let msg = err.to_string();
    assert!(
        msg.contains("worker 1") && msg.contains("--watchdog"),
        "{msg}"
    );
    assert_eq!(err.exit_code(), 3, "a stalled worker has its own exit code");
}
