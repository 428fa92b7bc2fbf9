//! The reproduction report's run table: run folders -> report and runs.csv -> the same report
//! recomputed from the CSV alone (`reproduction-report --from-csv`), equal but for what the table
//! does not carry (the charts and the script's own record, "How it was run"); and verdicts on
//! folders built so that the outcome is clear by hand.

mod report_support;

use std::path::Path;

use grawa_train::report::record::RunRecord;
use grawa_train::report::run_table;
use grawa_train::report::{reproduction_report, reproduction_report_from_csv};
use report_support::{repro_run, write_repro_run, ReproRun};

/// The reproduction folder: one accuracy setting (three GRAWA methods far above three rivals,
/// three seeds), crowding (8 workers, and 4 workers with one slow), another tau, an ablation, a
/// learning-rate grid.
fn reproduction(root: &Path) {
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(
        root.join("manifest.txt"),
        "command\tscripts/reproduce.sh\nbase\tset-a\n",
    )
    .unwrap();
    let acc = root.join("accuracy/set-a");
    for seed in 1..=3u64 {
        let noise = 0.005 * seed as f64;
        for (algo, schedule, base) in [
            ("mgrawa", "sync", 0.90),
            ("lgrawa", "sync", 0.90),
            ("mgrawa", "async", 0.90),
            ("ddp", "sync", 0.80),
            ("easgd", "sync", 0.79),
            ("local-sgd", "sync", 0.85),
        ] {
            let name = format!("{algo}-{schedule}-s{seed}");
            write_repro_run(
                &acc,
                &name,
                &ReproRun {
                    schedule,
                    ..repro_run(algo, seed, base + noise)
                },
            );
        }
    }
    for seed in 1..=2u64 {
        let n = 0.005 * seed as f64;
        let crowd = root.join("crowding");
        for (algo, a) in [("mgrawa", 0.88), ("ddp", 0.78)] {
            write_repro_run(
                &crowd,
                &format!("{algo}-s{seed}-workers8"),
                &ReproRun {
                    workers: 8,
                    ..repro_run(algo, seed, a + n)
                },
            );
            write_repro_run(
                &crowd,
                &format!("{algo}-s{seed}-slow"),
                &ReproRun {
                    worker_speed: Some(vec![1.0, 1.0, 1.0, 0.5]),
                    ..repro_run(algo, seed, a + n)
                },
            );
        }
        for (algo, a) in [("mgrawa", 0.89), ("local-sgd", 0.84)] {
            write_repro_run(
                &root.join("communication"),
                &format!("{algo}-s{seed}-tau8"),
                &ReproRun {
                    tau: 8,
                    ..repro_run(algo, seed, a + n)
                },
            );
        }
        write_repro_run(
            &root.join("ablation/power2"),
            &format!("mgrawa-s{seed}"),
            &repro_run("mgrawa", seed, 0.895 + n),
        );
        for lr in [0.05, 0.1] {
            write_repro_run(
                &root.join("grid/set-a"),
                &format!("mgrawa-s{seed}-lr{lr}"),
                &ReproRun {
                    lr,
                    ..repro_run("mgrawa", seed, 0.8 + lr + n)
                },
            );
        }
    }
}

/// `doc` without its "## How it was run" section.
fn without_origin(doc: &str) -> String {
    let start = doc.find("## How it was run").expect("the section is there");
    let end = doc[start + 3..]
        .find("\n## ")
        .map(|i| start + 3 + i + 1)
        .unwrap();
    format!("{}{}", &doc[..start], &doc[end..])
}

/// `doc` without its charts (an image line and the blank line after it).
fn without_charts(doc: &str) -> String {
    let mut out = Vec::new();
    let mut after_image = false;
    for line in doc.split('\n') {
        if line.starts_with("![") {
            after_image = true;
            continue;
        }
        if !(after_image && line.is_empty()) {
            out.push(line);
        }
        after_image = false;
    }
    out.join("\n")
}

#[test]
fn the_report_from_the_csv_equals_the_report_from_the_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repro");
    reproduction(&root);
    let doc_path = tmp.path().join("docs/reproduction.md");
    std::fs::create_dir_all(doc_path.parent().unwrap()).unwrap();
    let plots = tmp.path().join("docs/reproduction");
    let files = reproduction_report(&root, &doc_path, &plots).unwrap();
    let table = plots.join("runs.csv");
    assert!(files.contains(&table), "{files:?}");
    let from_folders = std::fs::read_to_string(&doc_path).unwrap();
    assert!(
        from_folders
            .contains("![set-a: accuracy against time](reproduction/accuracy_time_set-a.png)"),
        "{from_folders}"
    );

    let again = tmp.path().join("again.md");
    let files = reproduction_report_from_csv(&table, &again).unwrap();
    assert_eq!(files, vec![again.clone()]);
    let from_csv = std::fs::read_to_string(&again).unwrap();
    assert!(
        !from_csv.contains("!["),
        "the CSV holds no curves: no charts"
    );
    assert!(from_csv.contains("from the run table alone"), "{from_csv}");
    assert_eq!(
        without_origin(&without_charts(&from_folders)),
        without_origin(&from_csv),
        "the report from the CSV differs from the report from the folders"
    );

    // One row per finished run: 18 accuracy + 8 crowding + 4 communication + 2 ablation + 4 grid.
    let text = std::fs::read_to_string(&table).unwrap();
    assert!(
        text.starts_with("part,group,run,dataset,model,algo,schedule,workers,tau,"),
        "{text}"
    );
    let records = run_table::read(&table).unwrap();
    assert_eq!(records.len(), 36);
    // The table reads back to itself, digit for digit.
    assert_eq!(run_table::to_csv(&records).unwrap(), text);
    let crowd: Vec<&RunRecord> = records.iter().filter(|r| r.part == "crowding").collect();
    assert!(
        crowd.iter().all(|r| r.group == "set-a"),
        "crowding runs name the base setting"
    );
    assert!(crowd.iter().any(|r| r.worker_speed == "1;1;1;0.5"));
}

#[test]
fn verdicts_on_clear_cases() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repro");
    reproduction(&root);
    let doc_path = tmp.path().join("report.md");
    reproduction_report(&root, &doc_path, &tmp.path().join("plots")).unwrap();
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    let row = |claim: &str, place: &str| -> String {
        doc.lines()
            .find(|l| l.starts_with(&format!("| {claim} | {place} |")))
            .unwrap_or_else(|| panic!("no verdict row for {claim} in {place}:\n{doc}"))
            .to_string()
    };
    // Final accuracy: every GRAWA seed (0.905, 0.910, 0.915) is 0.05-0.12 above every rival's,
    // with the same spread: Welch's t = 0.05 / (0.005 sqrt(2/3)) = 12.2 at 4 df at the least,
    // p < 3e-4, x 9 pairs still far below 0.05.
    assert!(row("2a. better optima", "set-a").contains("**supported**"));
    // lambda_max was written as 10 x accuracy: GRAWA is the sharpest, significantly.
    assert!(row("2b. flatter optima", "set-a").contains("**contradicted**"));
    // Time to the 99 % target (0.99 x 0.91 -> 0.900): GRAWA's seeds at 50, 40, 40 s, no rival
    // ever (censored at the 60 s budget): t = -16.7 / 3.33 = -5 at 2 df, p = 0.038, x 9 pairs: not
    // resolved.
    assert!(row("1. converge faster", "set-a").contains("**not resolved**"));
    assert!(doc.contains("60.0 ± 0.0 (3/3 censored)"), "{doc}");
    assert!(doc.contains("43.3 ± 5.8"), "{doc}");
    // Updates are contested only between methods of one pattern and tau: here every averaging
    // method ran at tau 32, so GRAWA meets EASGD and local SGD (3 x 2 pairs), never DDP, which
    // all-reduces every step.
    let updates: Vec<&str> = doc
        .lines()
        .filter(|l| l.contains("distributed updates to the 99 % target (lower"))
        .collect();
    assert!(!updates.is_empty(), "{doc}");
    assert!(updates.iter().all(|l| !l.contains("| ddp ")), "{updates:?}");
    // Crowding: MGRAWA against DDP at 8 workers and with a slow worker, not at the base's 4.
    let crowd = row("3. advantages kept with crowded workers", "crowding");
    assert!(crowd.contains("2 comparisons: 2 for GRAWA"), "{crowd}");
    assert!(doc.contains("4 workers, speeds 1,1,1,0.5"), "{doc}");
    // The grid's choice: lr 0.1 scored higher on validation (0.8 + lr + 0.005 seed - 0.01:
    // 0.845 and 0.850 at 0.05, 0.895 and 0.900 at 0.1).
    assert!(
        doc.contains("| mgrawa | 0.05: 84.75 (n=2); 0.1: 89.75 (n=2) | 0.1 |"),
        "{doc}"
    );
    // Rank agreement with the paper's order is reported.
    assert!(
        doc.contains("### Rank agreement with the paper's order"),
        "{doc}"
    );
}

#[test]
fn a_bad_run_table_is_refused_by_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repro");
    reproduction(&root);
    let plots = tmp.path().join("plots");
    reproduction_report(&root, &tmp.path().join("r.md"), &plots).unwrap();
    let good = std::fs::read_to_string(plots.join("runs.csv")).unwrap();
    let bad = tmp.path().join("bad.csv");
    let mut lines: Vec<String> = good.lines().map(String::from).collect();
    lines[3] = lines[3].replacen(",sync,", ",sync,not-a-number-of-workers-", 1);
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let out = tmp.path().join("never.md");
    let err = reproduction_report_from_csv(&bad, &out)
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.csv") && err.contains("line 4"), "{err}");
    assert!(!out.exists(), "nothing half-written");
    std::fs::write(&bad, "part,group\n").unwrap();
    let err = reproduction_report_from_csv(&bad, &out)
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.csv"), "{err}");
}

#[test]
fn the_command_line_refuses_what_it_cannot_use() {
    let bin = env!("CARGO_BIN_EXE_grawa-train");
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .arg("reproduction-report")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let md = tmp.path().join("r.md");
    let md = md.to_str().unwrap();
    // Neither the runs folder nor a run table.
    let (code, err) = run(&["--out", md]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--from-csv") || err.contains("<RUNS>"),
        "{err}"
    );
    // Both at once.
    let (code, err) = run(&["somewhere", "--from-csv", "t.csv", "--out", md]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--from-csv"), "{err}");
    // A run table that is not there.
    let missing = tmp.path().join("missing.csv");
    let (code, err) = run(&["--from-csv", missing.to_str().unwrap(), "--out", md]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("missing.csv"), "{err}");
    assert!(!Path::new(md).exists());
}
