//! metrics.csv: the fixed header, one row per event in file order, numbers exactly as in the JSON,
//! lists joined with ';', and an atomic write that leaves the old file alone on error.

mod report_support;

use std::collections::HashMap;
use std::path::Path;

use grawa_train::report::{write_metrics_csv, METRICS_CSV_HEADER};
use report_support::{write_run, Fixture, LGRAWA_METRICS};

fn fixture() -> Fixture {
    Fixture {
        algo: "lgrawa",
        schedule: "sync",
        seed: 0,
        test_accuracy: 0.948,
        test_loss: 0.15,
        wall_seconds: 1.5,
        rounds: 2,
        lambda_max: None,
    }
}

/// The CSV as header plus rows of column name -> cell.
fn read_csv(path: &Path) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(String::from))
                .collect()
        })
        .collect();
    (header, rows)
}

#[test]
fn header_and_one_row_per_event_in_file_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_run(tmp.path(), "run", &fixture(), LGRAWA_METRICS);
    let path = write_metrics_csv(&dir).unwrap();
    assert_eq!(path, dir.join("metrics.csv"));

    let (header, rows) = read_csv(&path);
    assert_eq!(header, METRICS_CSV_HEADER);
    assert_eq!(header.len(), 24);
    for name in [
        "event",
        "worker",
        "weights",
        "norms",
        "worker_accuracy",
        "lag",
        "bytes",
    ] {
        assert!(header.iter().any(|h| h == name), "{name}");
    }
    let events: Vec<&str> = rows.iter().map(|r| r["event"].as_str()).collect();
    // Unknown event kinds keep their row (only the known columns filled).
    assert_eq!(
        events,
        [
            "steps",
            "steps",
            "round",
            "eval",
            "pull",
            "checkpoint",
            "round",
            "eval"
        ]
    );
    assert_eq!(rows[5]["round"], "1");
    assert_eq!(rows[5]["seconds"], "");
}

#[test]
fn values_round_trip_exactly_and_lists_join_with_semicolons() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_run(tmp.path(), "run", &fixture(), LGRAWA_METRICS);
    let (_, rows) = read_csv(&write_metrics_csv(&dir).unwrap());

    // steps
    let s = &rows[0];
    assert_eq!(s["worker"], "0");
    assert_eq!(s["step"], "20");
    assert_eq!(s["seconds"], "0.30551478");
    assert_eq!(s["lr"], "0.09394085563309827");
    assert_eq!(s["train_loss"].parse::<f64>().unwrap(), 1.802661344408989);
    assert_eq!(s["images_per_second"], "8379.300012915906");
    assert_eq!(s["test_loss"], "", "fields a step does not have are empty");
    assert_eq!(s["weights"], "");

    // round: lists, null leader, integers
    let r = &rows[2];
    assert_eq!(r["round"], "1");
    assert_eq!(r["total_steps"], "96");
    assert_eq!(r["weights"], "0.2;0.4;0.3;0.3;0.5;0.3");
    assert_eq!(r["norms"], "6.0;91.5;4.25;32.0;2.5;85.0");
    let norms: Vec<f64> = r["norms"].split(';').map(|x| x.parse().unwrap()).collect();
    assert_eq!(norms, [6.0, 91.5, 4.25, 32.0, 2.5, 85.0]);
    assert_eq!(r["leader"], "");
    assert_eq!(r["lambda"], "0.5");
    assert_eq!(r["bytes"], "4884720");
    assert_eq!(r["gather_ms"], "27.967705");
    assert_eq!(rows[6]["staleness"], "2");

    // eval: worker accuracies, null center accuracy, then a set center accuracy
    let e = &rows[3];
    assert_eq!(e["test_accuracy"], "0.9445");
    assert_eq!(e["test_loss"], "0.2214752361178398");
    assert_eq!(e["worker_accuracy"], "0.91;0.92;0.93");
    assert_eq!(e["center_accuracy"], "");
    assert_eq!(rows[7]["center_accuracy"], "0.95");
    assert_eq!(rows[7]["worker_accuracy"], "");

    // pull
    let p = &rows[4];
    assert_eq!(
        (p["worker"].as_str(), p["step"].as_str(), p["lag"].as_str()),
        ("1", "35", "3")
    );
}

#[test]
fn non_finite_list_elements_are_nan() {
    let tmp = tempfile::tempdir().unwrap();
    let text = LGRAWA_METRICS.replace("[0.91,0.92,0.93]", "[0.91,null,0.93]");
    let dir = write_run(tmp.path(), "run", &fixture(), &text);
    let (_, rows) = read_csv(&write_metrics_csv(&dir).unwrap());
    assert_eq!(rows[3]["worker_accuracy"], "0.91;NaN;0.93");
}

#[test]
fn rewrites_in_place_and_leaves_no_temp_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_run(tmp.path(), "run", &fixture(), LGRAWA_METRICS);
    std::fs::write(dir.join("metrics.csv"), "stale").unwrap();
    write_metrics_csv(&dir).unwrap();
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert!(text.starts_with("event,seconds,epoch,worker,"), "{text}");
    assert_eq!(text.lines().count(), 1 + 8);
    assert!(!dir.join("metrics.csv.tmp").exists());
}

#[test]
fn bad_line_is_an_error_with_its_number_and_the_old_csv_survives() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lines: Vec<&str> = LGRAWA_METRICS.lines().collect();
    lines[4] = "{\"event\":\"pull\" \"lag\":3}";
    let dir = write_run(tmp.path(), "run", &fixture(), &(lines.join("\n") + "\n"));
    std::fs::write(dir.join("metrics.csv"), "old").unwrap();
    let msg = write_metrics_csv(&dir).unwrap_err().to_string();
    assert!(
        msg.starts_with(&format!(
            "{}: line 5: ",
            dir.join("metrics.jsonl").display()
        )),
        "{msg}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("metrics.csv")).unwrap(),
        "old"
    );
    assert!(!dir.join("metrics.csv.tmp").exists());

    // A line that is JSON but names no event kind.
    lines[4] = "{\"lag\":3}";
    let dir = write_run(tmp.path(), "run2", &fixture(), &(lines.join("\n") + "\n"));
    let msg = write_metrics_csv(&dir).unwrap_err().to_string();
    assert!(msg.contains("line 5: no \"event\" field"), "{msg}");
}

#[test]
fn missing_metrics_file_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let msg = write_metrics_csv(tmp.path()).unwrap_err().to_string();
    assert!(msg.contains("metrics.jsonl"), "{msg}");
}
