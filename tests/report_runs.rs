//! Reading run folders back: typed fields, derived series (rounds at each evaluation, weights per
//! worker), tolerance of unknown fields and events, and one-line errors naming the file at fault.

mod report_support;

use grawa_train::report::{load_runs, ReportError, RunData};
use report_support::{three_runs, write_run, Fixture, LGRAWA_METRICS, MGRAWA_METRICS};

fn lgrawa_fixture() -> Fixture {
    Fixture {
        algo: "lgrawa",
        schedule: "sync",
        seed: 3,
        test_accuracy: 0.948,
        test_loss: 0.15274213254451752,
        wall_seconds: 1.5,
        rounds: 2,
        lambda_max: Some(7.5),
    }
}

fn err_text(e: ReportError) -> String {
    let s = e.to_string();
    assert!(!s.contains('\n'), "error messages are one line: {s:?}");
    s
}

#[test]
fn loads_summary_config_flatness_and_every_event_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_run(tmp.path(), "run", &lgrawa_fixture(), LGRAWA_METRICS);
    let run = RunData::load(&dir).unwrap();

    assert_eq!(run.summary.algo, "lgrawa");
    assert_eq!(run.summary.seed, 3);
    assert_eq!(run.summary.workers, 3);
    assert_eq!(run.summary.rounds, 2);
    assert_eq!(run.summary.test_accuracy, 0.948);
    assert_eq!(run.summary.worker_steps, vec![64, 64, 64]);
    assert_eq!(run.config.algo.as_ref().unwrap().tau, Some(32));
    assert_eq!(run.lambda_max(), Some(7.5));
    assert_eq!(run.flatness.as_ref().unwrap().hutchinson_trace, Some(22.5));

    // 2 step summaries, 2 rounds, 1 pull, 2 evaluations; the "checkpoint" line is skipped.
    assert_eq!(run.steps.len(), 2);
    assert_eq!(run.rounds.len(), 2);
    assert_eq!(run.pulls.len(), 1);
    assert_eq!(run.evals.len(), 2);
    assert_eq!(run.steps[1].worker, 1);
    assert_eq!(run.steps[0].seconds, 0.30551478);
    assert_eq!(run.rounds[1].staleness, 2);
    assert_eq!(run.rounds[0].leader, None);
    assert_eq!(run.pulls[0].lag, 3);
    assert_eq!(run.evals[0].worker_accuracy, Some(vec![0.91, 0.92, 0.93]));
    assert_eq!(run.evals[1].center_accuracy, Some(0.95));

    assert_eq!(run.method(), "lgrawa");
    assert_eq!(run.label(), "lgrawa s3");
    assert_eq!(run.eval_rounds(), vec![1, 2]);
}

#[test]
fn per_layer_weights_become_each_workers_mean_over_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_run(tmp.path(), "run", &lgrawa_fixture(), LGRAWA_METRICS);
    let run = RunData::load(&dir).unwrap();
    assert!(run.has_weights());
    assert_eq!(run.weight_layers(), 2);
    // Hand numbers: see LGRAWA_METRICS.
    let expected = [(1, [0.3, 0.3, 0.4]), (2, [0.2, 0.4, 0.4])];
    let got = run.worker_weights();
    assert_eq!(got.len(), 2);
    for ((round, w), (er, ew)) in got.iter().zip(expected) {
        assert_eq!(*round, er);
        for (a, b) in w.iter().zip(ew) {
            assert!((a - b).abs() < 1e-12, "round {round}: {w:?} vs {ew:?}");
        }
    }
}

#[test]
fn per_worker_weights_and_schedule_in_the_method() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = three_runs(tmp.path());
    let runs = load_runs(&dirs).unwrap();
    let m = &runs[1];
    assert_eq!(m.method(), "mgrawa (async)");
    assert_eq!(m.label(), "mgrawa (async) s0");
    assert_eq!(m.weight_layers(), 1);
    assert_eq!(m.worker_weights()[0], (1, vec![0.5, 0.25, 0.25]));
    // Evaluations after rounds 1 and 3 (total steps 90 and 270).
    assert_eq!(m.eval_rounds(), vec![1, 3]);
    assert!(m.flatness.is_none());
    assert_eq!(m.lambda_max(), None);
}

#[test]
fn missing_summary_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_run(tmp.path(), "run", &lgrawa_fixture(), LGRAWA_METRICS);
    std::fs::remove_file(dir.join("summary.json")).unwrap();
    let msg = err_text(RunData::load(&dir).unwrap_err());
    assert!(
        msg.contains(&dir.join("summary.json").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("missing"), "{msg}");
}

#[test]
fn missing_folder_and_missing_metrics_name_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let nowhere = tmp.path().join("nowhere");
    let msg = err_text(RunData::load(&nowhere).unwrap_err());
    assert!(
        msg.contains("nowhere") && msg.contains("not a run folder"),
        "{msg}"
    );

    let dir = write_run(tmp.path(), "run", &lgrawa_fixture(), LGRAWA_METRICS);
    std::fs::remove_file(dir.join("metrics.jsonl")).unwrap();
    let msg = err_text(RunData::load(&dir).unwrap_err());
    assert!(msg.contains("metrics.jsonl"), "{msg}");

    std::fs::remove_file(dir.join("config.json")).unwrap();
    let msg = err_text(RunData::load(&dir).unwrap_err());
    assert!(msg.contains("config.json"), "{msg}");
}

#[test]
fn garbled_summary_and_missing_field_name_the_file_and_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_run(tmp.path(), "run", &lgrawa_fixture(), LGRAWA_METRICS);
    std::fs::write(dir.join("summary.json"), "{\"status\": \"done\", ").unwrap();
    let msg = err_text(RunData::load(&dir).unwrap_err());
    assert!(msg.contains("summary.json"), "{msg}");

    std::fs::write(
        dir.join("summary.json"),
        r#"{"status": "done", "algo": "lgrawa"}"#,
    )
    .unwrap();
    let msg = err_text(RunData::load(&dir).unwrap_err());
    assert!(
        msg.contains("summary.json") && msg.contains("missing field"),
        "{msg}"
    );

    std::fs::write(dir.join("summary.json"), "{}").unwrap();
    std::fs::write(dir.join("flatness.json"), "[1, 2").unwrap();
    // summary is checked first
    assert!(err_text(RunData::load(&dir).unwrap_err()).contains("summary.json"));
}

#[test]
fn garbled_flatness_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_run(tmp.path(), "run", &lgrawa_fixture(), LGRAWA_METRICS);
    std::fs::write(dir.join("flatness.json"), "{\"lambda_max\": \"big\"}").unwrap();
    let msg = err_text(RunData::load(&dir).unwrap_err());
    assert!(msg.contains("flatness.json"), "{msg}");
}

#[test]
fn bad_metrics_line_names_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lines: Vec<&str> = LGRAWA_METRICS.lines().collect();
    lines[2] = "{\"event\":\"round\",\"round\":1,";
    let text = lines.join("\n") + "\n";
    let dir = write_run(tmp.path(), "run", &lgrawa_fixture(), &text);
    let msg = err_text(RunData::load(&dir).unwrap_err());
    let want = format!("{}: line 3: ", dir.join("metrics.jsonl").display());
    assert!(msg.starts_with(&want), "{msg}");

    // A known event without a required field.
    lines[2] = r#"{"event":"eval","seconds":1.0}"#;
    let text = lines.join("\n") + "\n";
    let dir = write_run(tmp.path(), "run2", &lgrawa_fixture(), &text);
    let msg = err_text(RunData::load(&dir).unwrap_err());
    assert!(msg.contains("line 3: missing field"), "{msg}");
}

#[test]
fn weights_that_do_not_split_over_the_workers_are_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let text = LGRAWA_METRICS.replace("[0.2,0.4,0.3,0.3,0.5,0.3]", "[0.2,0.4,0.3,0.3]");
    let dir = write_run(tmp.path(), "run", &lgrawa_fixture(), &text);
    let msg = err_text(RunData::load(&dir).unwrap_err());
    assert!(
        msg.contains("line 3: round 1: 4 weights do not split over 3 workers"),
        "{msg}"
    );
}

#[test]
fn torn_last_line_is_skipped_and_blank_lines_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    // A killed writer leaves half a line with no newline at the end.
    let text = format!("{LGRAWA_METRICS}\n{{\"event\":\"steps\",\"work");
    let dir = write_run(tmp.path(), "run", &lgrawa_fixture(), &text);
    let run = RunData::load(&dir).unwrap();
    assert_eq!(run.evals.len(), 2);
    assert_eq!(run.steps.len(), 2);

    // The same half line followed by a newline is garbage, not a torn write.
    let text = format!("{text}\n");
    let dir = write_run(tmp.path(), "run2", &lgrawa_fixture(), &text);
    let msg = err_text(RunData::load(&dir).unwrap_err());
    assert!(msg.contains("line 10: "), "{msg}");
}

#[test]
fn null_losses_of_a_diverged_run_read_as_nan() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_run(tmp.path(), "run", &lgrawa_fixture(), MGRAWA_METRICS);
    let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&summary).unwrap();
    v["test_loss"] = serde_json::Value::Null;
    v["status"] = "diverged".into();
    std::fs::write(dir.join("summary.json"), v.to_string()).unwrap();
    let text = MGRAWA_METRICS.replace("\"test_loss\":0.45", "\"test_loss\":null");
    std::fs::write(dir.join("metrics.jsonl"), text).unwrap();
    let run = RunData::load(&dir).unwrap();
    assert!(run.summary.test_loss.is_nan());
    assert_eq!(run.summary.status, "diverged");
    assert!(run.evals[1].test_loss.is_nan());
}

#[test]
fn report_errors_exit_2_through_the_crate_error() {
    let tmp = tempfile::tempdir().unwrap();
    let e = RunData::load(&tmp.path().join("none")).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let crate_err: grawa_train::Error = e.into();
    assert_eq!(crate_err.exit_code(), 2);
    assert!(crate_err.to_string().contains("not a run folder"));
}
