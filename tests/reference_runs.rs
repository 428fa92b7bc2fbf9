//! Recorded reference numbers: short `--schedule sync` runs of every algorithm whose metrics
//! (timings aside) and summary losses must not move. The files in `tests/reference/` were written
//! by commit 32024db (before the round became a seam) on this project's 2-vCPU AMD EPYC machine,
//! with `GRAWA_RECORD_REFERENCE=1 cargo test --release --test reference_runs`; the CNN and
//! ResNet-20 files were re-recorded when the weight gradient of layers with 32 or more input
//! channels moved to the channel-lane kernel (`ops::conv_dw`: the same sums in another order,
//! within 1e-6 of the earlier path; ResNet-20's short runs on random labels amplify that to
//! 1e-3 in a few steps). A refactoring that
//! changes any number fails here. Re-record only for a change that is *meant* to move numbers,
//! and say why in its commit.
//!
//! Exactness depends on the CPU kernels chosen at run time (gemm and our convolutions pick AVX-512
//! or AVX2 code by CPU detection), so each file stores the CPU features it was recorded with: on
//! the same kind of CPU the comparison is bit for bit; on another it allows a relative 1e-3 and
//! says so, since the reduction order of those kernels, not our code, is then what differs.
//!
//! Every run uses `--threads 2` so the split of threads (and so the kernels' blocking) is fixed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Keys that are wall-clock measurements, not results.
const TIMING_KEYS: [&str; 6] = [
    "seconds",
    "gather_ms",
    "compute_ms",
    "scatter_ms",
    "images_per_second",
    "wall_seconds",
];

/// Summary keys that are results (the rest are timings, paths or echoes of the flags).
const SUMMARY_KEYS: [&str; 8] = [
    "epochs",
    "steps",
    "local_steps_total",
    "worker_steps",
    "rounds",
    "train_loss",
    "test_loss",
    "test_accuracy",
];

fn mnist_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    dir.join("mnist").is_dir().then_some(dir)
}

/// (name, flags). MNIST cases need `data/mnist` (scripts/test.sh fetches it).
fn cases() -> Vec<(&'static str, Vec<&'static str>)> {
    let mlp = [
        "--dataset",
        "mnist",
        "--model",
        "mlp",
        "--workers",
        "4",
        "--steps",
        "40",
        "--batch-size",
        "32",
        "--lr",
        "0.05",
        "--tau",
        "8",
        "--eval-every",
        "20",
    ];
    let with = |algo: &'static str, extra: &[&'static str]| {
        let mut v = mlp.to_vec();
        // ddp and ddp-sam have no rounds, so no --tau.
        if algo == "ddp" || algo == "ddp-sam" {
            v.retain(|a| *a != "--tau" && *a != "8");
        }
        v.extend_from_slice(&["--algo", algo]);
        v.extend_from_slice(extra);
        v
    };
    vec![
        // The README's main job, whole.
        (
            "main-job",
            vec![
                "--dataset",
                "mnist",
                "--model",
                "mlp",
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
            ],
        ),
        ("mlp-mgrawa", with("mgrawa", &[])),
        ("mlp-lgrawa", with("lgrawa", &[])),
        (
            "mlp-lgrawa-accumulated",
            with(
                "lgrawa",
                &["--norm-source", "accumulated", "--weight-power", "2"],
            ),
        ),
        ("mlp-ddp", with("ddp", &[])),
        ("mlp-ddp-sam", with("ddp-sam", &[])),
        ("mlp-local-sgd", with("local-sgd", &[])),
        ("mlp-easgd", with("easgd", &[])),
        ("mlp-lsgd", with("lsgd", &[])),
        (
            "mlp-sgd",
            vec![
                "--dataset",
                "mnist",
                "--model",
                "mlp",
                "--steps",
                "40",
                "--batch-size",
                "32",
                "--eval-every",
                "20",
            ],
        ),
        (
            "cnn-synthetic-mgrawa",
            vec![
                "--dataset",
                "synthetic",
                "--model",
                "cnn",
                "--workers",
                "2",
                "--algo",
                "mgrawa",
                "--steps",
                "12",
                "--tau",
                "4",
                "--batch-size",
                "16",
                "--synthetic-train",
                "256",
                "--synthetic-test",
                "64",
                "--eval-every",
                "6",
            ],
        ),
        (
            "resnet20-synthetic-lgrawa",
            vec![
                "--dataset",
                "synthetic",
                "--model",
                "resnet20",
                "--workers",
                "2",
                "--algo",
                "lgrawa",
                "--steps",
                "6",
                "--tau",
                "3",
                "--batch-size",
                "8",
                "--synthetic-train",
                "64",
                "--synthetic-test",
                "32",
                "--bn-recal-batches",
                "2",
            ],
        ),
        (
            "resnet20-synthetic-easgd",
            vec![
                "--dataset",
                "synthetic",
                "--model",
                "resnet20",
                "--workers",
                "2",
                "--algo",
                "easgd",
                "--steps",
                "6",
                "--tau",
                "2",
                "--batch-size",
                "8",
                "--synthetic-train",
                "64",
                "--synthetic-test",
                "32",
                "--bn-recal-batches",
                "2",
            ],
        ),
    ]
}

/// The CPU features the run-time kernel choice depends on.
fn cpu_fingerprint() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let f = [
            ("avx512f", is_x86_feature_detected!("avx512f")),
            ("avx512vl", is_x86_feature_detected!("avx512vl")),
            ("avx2", is_x86_feature_detected!("avx2")),
            ("fma", is_x86_feature_detected!("fma")),
        ];
        f.iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(",")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
}

fn strip_timings(v: &mut Value) {
    if let Value::Object(map) = v {
        for k in TIMING_KEYS {
            map.remove(k);
        }
    }
}

/// The run's numbers: metrics lines without timings, sorted (workers' step lines interleave in
/// arrival order), and the summary's result keys.
fn run_case(name: &str, flags: &[&str], data: Option<&Path>) -> Value {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("run");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_grawa-train"));
    cmd.env_remove("GRAWA_DATA")
        .args(flags)
        .args(["--threads", "2", "--quiet", "--seed", "0", "--out"])
        .arg(&dir);
    if let Some(d) = data {
        cmd.arg("--data-dir").arg(d);
    }
    let o = cmd.output().expect("binary starts");
    assert!(
        o.status.success(),
        "{name}: {flags:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            strip_timings(&mut v);
            v.to_string()
        })
        .collect();
    lines.sort();
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let kept: BTreeMap<&str, Value> = SUMMARY_KEYS
        .iter()
        .map(|k| (*k, summary[*k].clone()))
        .collect();
    serde_json::json!({
        "metrics": lines.iter().map(|l| serde_json::from_str::<Value>(l).unwrap()).collect::<Vec<_>>(),
        "summary": kept,
    })
}

/// Walks two JSON values side by side; numbers equal exactly, or within `rel` when given.
fn compare(path: &str, got: &Value, want: &Value, rel: Option<f64>, diffs: &mut Vec<String>) {
    match (got, want) {
        (Value::Number(g), Value::Number(w)) => {
            let (g, w) = (g.as_f64().unwrap(), w.as_f64().unwrap());
            let ok = match rel {
                None => g == w,
                Some(r) => (g - w).abs() <= r * w.abs().max(1e-3),
            };
            if !ok {
                diffs.push(format!("{path}: got {g}, recorded {w}"));
            }
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => {
            for (i, (g, w)) in g.iter().zip(w).enumerate() {
                compare(&format!("{path}[{i}]"), g, w, rel, diffs);
            }
        }
        (Value::Object(g), Value::Object(w)) if g.len() == w.len() => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => compare(&format!("{path}.{k}"), gv, wv, rel, diffs),
                    None => diffs.push(format!("{path}.{k}: missing")),
                }
            }
        }
        _ if got == want => {}
        _ => diffs.push(format!("{path}: got {got}, recorded {want}")),
    }
}

#[test]
fn sync_runs_reproduce_the_recorded_numbers() {
    let record = std::env::var_os("GRAWA_RECORD_REFERENCE").is_some();
    let refs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference");
    let data = mnist_dir();
    let fingerprint = cpu_fingerprint();
    let mut failures = Vec::new();
    let mut ran = 0;
    for (name, flags) in cases() {
        let needs_mnist = flags.contains(&"mnist");
        if needs_mnist && data.is_none() {
            eprintln!("{name}: skipped, data/mnist is missing (scripts/fetch-data.sh mnist)");
            continue;
        }
        let got = run_case(name, &flags, data.as_deref());
        let file = refs.join(format!("{name}.json"));
        if record {
            std::fs::create_dir_all(&refs).unwrap();
            let doc = serde_json::json!({"flags": flags, "cpu": fingerprint, "numbers": got});
            std::fs::write(&file, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
            continue;
        }
        let doc: Value = serde_json::from_str(
            &std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())),
        )
        .unwrap();
        assert_eq!(
            doc["flags"],
            serde_json::json!(flags),
            "{name}: the recorded flags differ from the case's; re-record"
        );
        let rel = if doc["cpu"] == Value::String(fingerprint.clone()) {
            None
        } else {
            eprintln!(
                "{name}: recorded on a CPU with [{}], this one has [{fingerprint}]: comparing to 1e-3",
                doc["cpu"]
            );
            Some(1e-3)
        };
        let mut diffs = Vec::new();
        compare(name, &got, &doc["numbers"], rel, &mut diffs);
        if !diffs.is_empty() {
            diffs.truncate(8);
            failures.push(diffs.join("\n  "));
        }
        ran += 1;
    }
    assert!(
        failures.is_empty(),
        "numbers moved from the recorded reference:\n  {}",
        failures.join("\n  ")
    );
    assert!(record || ran > 0, "no reference case ran");
}
