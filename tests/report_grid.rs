//! The learning-rate grid's choice (`report::repro::choices`, `reproduction-report OUT
//! --choose-lr SETTING`, which scripts/reproduce.sh keeps as lr.tsv): per method, the rate with
//! the best mean final validation accuracy. The fixture's numbers are chosen so each choice can
//! be worked out by hand (see the test).

use std::path::Path;
use std::process::Command;

use grawa_train::report::record::records_of;
use grawa_train::report::repro::{choices_in, choices_tsv};
use grawa_train::report::RunData;

const BIN: &str = env!("CARGO_BIN_EXE_grawa-train");

/// A finished run in `dir`: `algo` at rate `lr`, seed `seed`, final validation accuracy `val`
/// (absent: not recorded), evaluated on a 5 s clock.
fn run(dir: &Path, algo: &str, lr: f64, seed: u64, val: Option<f64>) {
    std::fs::create_dir_all(dir).unwrap();
    let config = serde_json::json!({
        "dataset": "synthetic", "model": "mlp", "workers": 2, "seed": seed,
        "algo": {"kind": algo, "schedule": "sync"},
        "schedule": {"base": lr, "decay": {"kind": "constant"}},
        "eval_every": null, "eval_every_seconds": 5.0, "val_split": 32,
    });
    let mut summary = serde_json::json!({
        "status": "done", "dataset": "synthetic", "model": "mlp", "algo": algo,
        "schedule": "sync", "workers": 2, "seed": seed, "rounds": 3, "wall_seconds": 1.5,
        "test_loss": 0.5, "test_accuracy": 0.8, "parameters": 1000,
    });
    if let Some(v) = val {
        summary["val_accuracy"] = serde_json::json!(v);
    }
    let eval = r#"{"event":"eval","seconds":1.0,"total_steps":10,"test_accuracy":0.8,"test_loss":0.5,"train_loss":0.6,"epoch":1.0}"#;
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
    std::fs::write(dir.join("metrics.jsonl"), format!("{eval}\n")).unwrap();
}

/// OUT/grid/set: mgrawa 0.05 (seeds 1, 2: 0.80, 0.90, mean 0.85) and 0.1 (0.86): 0.1 wins;
/// ddp 0.2 and 0.4 tie at 0.70: the larger rate; easgd recorded no validation score: no line.
/// A grid of another setting (mgrawa 0.025 at 0.99) and an accuracy run are not the grid's.
fn grid(root: &Path) {
    let g = root.join("grid/set");
    run(&g.join("mgrawa-s1-lr0.05"), "mgrawa", 0.05, 1, Some(0.80));
    run(&g.join("mgrawa-s2-lr0.05"), "mgrawa", 0.05, 2, Some(0.90));
    run(&g.join("mgrawa-s1-lr0.1"), "mgrawa", 0.1, 1, Some(0.86));
    run(&g.join("ddp-s1-lr0.2"), "ddp", 0.2, 1, Some(0.70));
    run(&g.join("ddp-s1-lr0.4"), "ddp", 0.4, 1, Some(0.70));
    run(&g.join("easgd-s1-lr0.05"), "easgd", 0.05, 1, None);
    run(
        &root.join("grid/other/mgrawa-s1-lr0.025"),
        "mgrawa",
        0.025,
        1,
        Some(0.99),
    );
    run(
        &root.join("accuracy/set/mgrawa-s1"),
        "mgrawa",
        0.025,
        1,
        Some(0.99),
    );
}

#[test]
fn the_grid_chooses_the_best_mean_validation_accuracy_per_method() {
    let tmp = tempfile::tempdir().unwrap();
    grid(tmp.path());
    let choices = choices_in(tmp.path(), "set").unwrap();
    assert_eq!(
        choices_tsv(&choices),
        "# method\tlr\tvalidation accuracy\truns\n\
         mgrawa\t0.1\t0.86\t1\n\
         ddp\t0.4\t0.7\t1\n"
    );
    let mgrawa = &choices[0];
    assert_eq!(mgrawa.cells.len(), 2);
    assert!((mgrawa.cells[0].mean - 0.85).abs() < 1e-12);
    assert_eq!(mgrawa.cells[0].runs, 2);
    let easgd = choices.iter().find(|c| c.method == "easgd").unwrap();
    assert!(easgd.cells.is_empty() && easgd.chosen.is_none());

    let err = choices_in(tmp.path(), "nosuch").err().unwrap().to_string();
    assert!(err.contains("grid/nosuch"), "{err}");
}

#[test]
fn choose_lr_prints_the_choice_and_refuses_what_it_cannot_use() {
    let tmp = tempfile::tempdir().unwrap();
    grid(tmp.path());
    let out = Command::new(BIN)
        .args(["reproduction-report"])
        .arg(tmp.path())
        .args(["--choose-lr", "set"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("mgrawa\t0.1\t0.86\t1\n"), "{text}");
    assert!(!tmp.path().join("set").exists());

    let refused = |args: &[&str], says: &str| {
        let out = Command::new(BIN)
            .arg("reproduction-report")
            .arg(tmp.path())
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    };
    refused(&["--choose-lr", "nosuch"], "nosuch");
    refused(&["--choose-lr", "set", "--out", "x.md"], "--out");
}

#[test]
fn a_clock_cadence_is_recorded_in_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    run(&dir, "ddp", 0.2, 1, Some(0.7));
    let data = RunData::load(&dir).unwrap();
    let records = records_of(&[("grid", "set", &data)]);
    assert_eq!(records[0].eval_every, "5s");
    assert_eq!(records[0].val_accuracy, Some(0.7));
}
