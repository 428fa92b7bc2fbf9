//! The report tools on folders the trainer itself wrote (short synthetic runs), so a change to what
//! the trainer writes that the reports cannot read fails here, not in a researcher's sweep.

use std::path::{Path, PathBuf};
use std::process::Command;

use grawa_train::report::{compare, load_runs, plot, write_metrics_csv, METRICS_CSV_HEADER};

fn train(out: &Path, algo: &str, schedule: &str, seed: u64) -> PathBuf {
    let seed = seed.to_string();
    let status = Command::new(env!("CARGO_BIN_EXE_grawa-train"))
        .args(["--dataset", "synthetic", "--model", "mlp", "--workers", "3"])
        .args(["--algo", algo, "--schedule", schedule, "--seed", &seed])
        .args([
            "--steps",
            "64",
            "--tau",
            "16",
            "--eval-every",
            "16",
            "--quiet",
        ])
        .arg("--out")
        .arg(out)
        .env("CANDLE_NUM_THREADS", "1")
        .status()
        .unwrap();
    assert!(status.success(), "{algo} {schedule}: {status}");
    out.to_path_buf()
}

#[test]
fn trainer_output_loads_converts_compares_and_plots() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = [
        train(&tmp.path().join("lgrawa-0"), "lgrawa", "sync", 0),
        train(&tmp.path().join("mgrawa-async-1"), "mgrawa", "async", 1),
    ];
    let runs = load_runs(&dirs).unwrap();

    let l = &runs[0];
    assert_eq!(l.label(), "lgrawa s0");
    assert!(!l.evals.is_empty() && !l.steps.is_empty());
    assert_eq!(l.rounds.len() as u64, l.summary.rounds);
    assert!(l.weight_layers() > 1, "LGRAWA weights are per layer");
    for (_, w) in l.worker_weights() {
        assert_eq!(w.len(), 3);
    }
    let last = l.evals.last().unwrap();
    assert_eq!(last.test_accuracy, l.summary.test_accuracy);
    let m = &runs[1];
    assert_eq!(m.method(), "mgrawa (async)");
    assert_eq!(m.weight_layers(), 1);

    // metrics.csv: every event a row, every number read back bit for bit.
    for dir in &dirs {
        let csv_path = write_metrics_csv(dir).unwrap();
        let jsonl = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
        let events: Vec<serde_json::Map<String, serde_json::Value>> = jsonl
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut reader = csv::Reader::from_path(&csv_path).unwrap();
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), events.len());
        for (row, event) in rows.iter().zip(&events) {
            for (cell, name) in row.iter().zip(METRICS_CSV_HEADER) {
                match event.get(name) {
                    None | Some(serde_json::Value::Null) => assert_eq!(cell, "", "{name}"),
                    Some(serde_json::Value::Number(n)) => {
                        let back: f64 = cell.parse().unwrap();
                        assert_eq!(back.to_bits(), n.as_f64().unwrap().to_bits(), "{name}");
                    }
                    Some(serde_json::Value::String(s)) => assert_eq!(cell, s),
                    Some(serde_json::Value::Array(a)) => {
                        let back: Vec<f64> = cell.split(';').map(|x| x.parse().unwrap()).collect();
                        let want: Vec<f64> = a.iter().map(|x| x.as_f64().unwrap()).collect();
                        assert_eq!(back, want, "{name}");
                    }
                    Some(other) => panic!("{name}: unexpected {other}"),
                }
            }
        }
    }

    let cmp = compare(&runs);
    assert_eq!(cmp.rows.len(), 2);
    assert_eq!(cmp.methods.len(), 2);
    assert!(cmp.to_text().contains("mgrawa (async)"));

    let files = plot(&runs, &tmp.path().join("plots")).unwrap();
    // 4 charts of accuracy and loss, and a weights chart per run, each as SVG and PNG.
    assert_eq!(files.len(), 2 * (4 + 2));
}
