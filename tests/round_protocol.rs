//! The round's protocol run for real: `grawa_train::train::run` with its worker threads and
//! pulling thread (no copy of either), under `--schedule async`, where a worker that has not
//! reported yet must take no part in a round. Worker 2 is slowed so that the others report several
//! times before it does. Sync runs are pinned number for number by tests/reference_runs.rs.

mod run_support;

use std::path::Path;
use std::time::Duration;

use grawa_train::config::RunConfig;
use run_support::{events, run, run_config};
use serde_json::Value;

fn config(algo: &str, out: &Path) -> RunConfig {
    let flags = [
        "--dataset",
        "synthetic",
        "--model",
        "mlp",
        "--synthetic-train",
        "3000",
        "--synthetic-test",
        "300",
        "--quiet",
        "--bn-recal-batches=2",
        "--workers",
        "3",
        "--algo",
        algo,
        "--schedule",
        "async",
        "--tau",
        "4",
        "--max-staleness",
        "12",
        "--steps",
        "24",
        "--batch-size",
        "32",
    ];
    let mut cfg = run_config(&flags, out);
    cfg.slow_worker = Some((2, Duration::from_millis(40)));
    cfg
}

fn rounds(out: &Path) -> Vec<Value> {
    events(out, "round")
}

fn participants(r: &Value) -> Vec<usize> {
    r["participants"]
        .as_array()
        .unwrap_or_else(|| panic!("an async round names its participants: {r}"))
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect()
}

/// GRAWA (per worker and per layer) and local SGD: every round's weights are 0 for the workers
/// that had not reported, sum to 1 (per layer) over those that had, and the slow worker joins
/// only after the others have reported.
#[test]
fn async_rounds_give_no_weight_to_workers_that_have_not_reported() {
    for algo in ["mgrawa", "lgrawa", "local-sgd"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let s = run(config(algo, &out), 120);
        assert!(s.test_loss.is_finite(), "{algo}: {s:?}");
        let rs = rounds(&out);
        assert!(!rs.is_empty(), "{algo}: rounds happened");
        let first = participants(&rs[0]);
        assert_eq!(
            first.len(),
            1,
            "{algo}: the first round has only its reporter: {first:?}"
        );
        assert!(
            rs.iter().any(|r| !participants(r).contains(&2)),
            "{algo}: the slow worker reported late"
        );
        for r in &rs {
            let p = participants(r);
            let w: Vec<f64> = r["weights"]
                .as_array()
                .unwrap_or_else(|| panic!("{algo}: weights in {r}"))
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let per = w.len() / 3;
            for worker in 0..3 {
                let mine = &w[worker * per..(worker + 1) * per];
                if !p.contains(&worker) {
                    assert!(
                        mine.iter().all(|&x| x == 0.0),
                        "{algo}: {worker} not in {p:?}: {w:?}"
                    );
                }
            }
            for l in 0..per {
                let sum: f64 = (0..3).map(|i| w[i * per + l]).sum();
                assert!(
                    (sum - 1.0).abs() < 1e-5,
                    "{algo}: layer {l} sums to {sum}: {r}"
                );
            }
            if algo != "local-sgd" {
                let norms = r["norms"].as_array().unwrap();
                assert_eq!(
                    norms.len(),
                    p.len() * per,
                    "{algo}: norms of participants only"
                );
                assert!(
                    norms.iter().all(|n| n.as_f64().unwrap() > 0.0),
                    "{algo}: {r}"
                );
            }
        }
    }
}

/// Async EASGD: one elastic exchange per snapshot, each applied by the arriving worker alone; the
/// run ends, evaluates the center, and every pull belongs to a snapshot.
#[test]
fn async_easgd_exchanges_with_each_arriving_worker() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let s = run(config("easgd", &out), 120);
    assert!(s.test_loss.is_finite() && s.test_accuracy > 0.0, "{s:?}");
    let rs = rounds(&out);
    assert_eq!(rs.len() as u64, s.rounds);
    let pulls = events(&out, "pull");
    assert!(!pulls.is_empty(), "workers apply their exchanges");
    assert!(
        pulls.len() as u64 <= s.rounds,
        "at most one exchange applied per snapshot: {} pulls, {} rounds",
        pulls.len(),
        s.rounds
    );
}
