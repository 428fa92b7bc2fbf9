//! What the runtime and round tests share: a run with a deadline (a hang fails the test instead
//! of stalling the suite), the events of a run folder, and layer tables from lengths.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use grawa_train::algo::{lgrawa_weights, mgrawa_weights, Mix};
use grawa_train::config::RunConfig;
use grawa_train::metrics::Summary;
use grawa_train::model::LayerEntry;
use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_grawa-train");

/// Runs on a thread and fails the test if the run has not returned within `secs`: a hang is a
/// failure, not a stuck test binary.
pub fn run(cfg: RunConfig, secs: u64) -> Summary {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(grawa_train::train::run(cfg));
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(r) => r.expect("the run succeeds"),
        Err(_) => panic!("the run did not return within {secs} s (hang)"),
    }
}

/// The events of kind `kind` ("round", "eval", "pull", "steps") in `out/metrics.jsonl`.
pub fn events(out: &Path, kind: &str) -> Vec<Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("one JSON object per line"))
        .filter(|v| v["event"] == kind)
        .collect()
}

/// A contiguous layer table over layers of these lengths, named l0, l1, ...
pub fn table_of(lens: &[usize]) -> Vec<LayerEntry> {
    let mut offset = 0;
    lens.iter()
        .enumerate()
        .map(|(i, &len)| {
            let e = LayerEntry {
                name: format!("l{i}"),
                offset,
                len,
            };
            offset += len;
            e
        })
        .collect()
}

pub fn run_bin(a: &[String]) -> Output {
    Command::new(BIN).args(a).output().expect("binary runs")
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// metrics.jsonl lines without their timing fields, sorted (worker events interleave freely).
pub fn metrics_without_timings(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            for k in [
                "seconds",
                "gather_ms",
                "compute_ms",
                "scatter_ms",
                "images_per_second",
            ] {
                v.as_object_mut().unwrap().remove(k);
            }
            v.to_string()
        })
        .collect();
    lines.sort();
    lines
}

/// Starts a run, waits until its metrics show `steps` lines, then sends `signal`.
pub fn interrupt_midway(a: &[String], out: &Path, signal: &str, min_lines: usize) -> Output {
    let child = Command::new(BIN)
        .args(a)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(60, "the run did not get going", || {
        metrics_lines(out) >= min_lines
    });
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait_with_output().unwrap()
}

pub fn summary_losses(dir: &Path) -> [serde_json::Value; 3] {
    let s = json(&dir.join("summary.json"));
    [
        s["train_loss"].clone(),
        s["test_loss"].clone(),
        s["test_accuracy"].clone(),
    ]
}

/// `flags` as owned arguments, then `--out out`.
pub fn argv(flags: &[&str], out: &Path) -> Vec<String> {
    flags
        .iter()
        .map(|s| s.to_string())
        .chain(["--out".to_string(), out.display().to_string()])
        .collect()
}

/// A sync LGRAWA run of 3 workers on synthetic data, long enough (600 steps, about 2 s) to be
/// interrupted half-way, with `extra` flags.
pub fn sync_args(out: &Path, extra: &[&str]) -> Vec<String> {
    let base = [
        "--dataset",
        "synthetic",
        "--model",
        "mlp",
        "--workers",
        "3",
        "--algo",
        "lgrawa",
        "--steps",
        "600",
        "--tau",
        "16",
        "--eval-every",
        "80",
        "--synthetic-train",
        "6000",
        "--batch-size",
        "32",
        "--threads",
        "2",
        "--quiet",
    ];
    argv(&[&base[..], extra].concat(), out)
}

/// Waits for `child` at most `secs`, killing it and failing the test past that (a hang).
pub fn wait_bounded(mut child: std::process::Child, secs: u64, what: &str) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "{what}: still running after {secs} s (a hang): {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lines in `out/metrics.jsonl` so far (0 before it exists).
pub fn metrics_lines(out: &Path) -> usize {
    std::fs::read_to_string(out.join("metrics.jsonl")).map_or(0, |m| m.lines().count())
}

/// Polls `done` every 5 ms; fails the test with `what` if it is not true within `secs`.
pub fn wait_until(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(secs), "{what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The configuration the binary would run for `flags` with `--out out` (no data is touched).
pub fn run_config(flags: &[&str], out: &Path) -> RunConfig {
    let args = std::iter::once("grawa-train")
        .chain(flags.iter().copied())
        .chain(["--out", out.to_str().unwrap()]);
    RunConfig::from_args(&grawa_train::cli::parse_from(args).expect("flags parse"))
        .expect("flags are valid")
}

/// One plan of every kind for `workers` workers over `layers` layers: MGRAWA's weights, LGRAWA's
/// with power 2, the mean, worker 2 as the leader, and EASGD (the round tests run each).
pub fn round_mixes(workers: usize, layers: usize) -> Vec<Mix> {
    let norms: Vec<f64> = (0..workers).map(|i| 0.4 + 0.45 * i as f64).collect();
    let vhat: Vec<Vec<f64>> = (0..workers)
        .map(|i| {
            (0..layers)
                .map(|l| 0.5 + (i * layers + l) as f64 * 0.1)
                .collect()
        })
        .collect();
    vec![
        Mix::Weighted(mgrawa_weights(&norms, 1.0)),
        Mix::Weighted(lgrawa_weights(&vhat, 2.0)),
        Mix::Mean,
        Mix::Leader(2),
        Mix::Elastic { beta: 0.1 },
    ]
}
