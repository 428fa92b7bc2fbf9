//! What the runtime and round tests share: a run with a deadline (a hang fails the test instead
//! of stalling the suite), the events of a run folder, and layer tables from lengths.

#![allow(dead_code)]

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use grawa_train::config::RunConfig;
use grawa_train::metrics::Summary;
use grawa_train::model::LayerEntry;
use serde_json::Value;

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
