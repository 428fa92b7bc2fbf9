//! `scripts/reproduce.sh --quick`: every stage on synthetic data with tiny step budgets (the
//! learning-rate grid on a validation split and its choice, MGRAWA and LGRAWA under async and
//! sync, two modelled links, more workers at uneven speeds, another tau, flatness), then the
//! report. The runs must carry the chosen rates and the regime's flags, the report must hold
//! every section and a verdict per claim, a second invocation must skip every finished run and
//! measurement and keep the chosen rates, and `--dry-run` must count what is left without
//! writing anything. A release-mode test (`cargo test --release`, as scripts/test.sh runs it):
//! about 30 s there, far longer in a debug build, where it is skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Instant, SystemTime};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_grawa-train");

/// The quick plan: grid 5 algorithms x 2 rates + ddp, ddp-sam x 2 rates; 9 methods x 2 seeds on
/// the Ethernet link, 6 on PCIe, crowding 5, communication 3.
const GRID: usize = 14;
const ETH: usize = 18;
const PCIE: usize = 12;
const CROWDING: usize = 10;
const COMMUNICATION: usize = 6;
const RUNS: usize = GRID + ETH + PCIE + CROWDING + COMMUNICATION;

fn reproduce(out: &Path, extra: &[&str]) -> Output {
    Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/reproduce.sh"))
        .arg("--quick")
        .args(extra)
        .arg(out)
        .env("GRAWA_BIN", BIN)
        .env_remove("GRID_FLAG")
        .env_remove("GRID_VALUES")
        .env_remove("LR_TSV")
        .env_remove("REPRO_THREADS")
        .output()
        .expect("bash runs scripts/reproduce.sh")
}

fn log(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// Every run folder under `root` (a folder with config.json), sorted.
fn run_folders(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        if d.join("config.json").is_file() {
            out.push(d);
            continue;
        }
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn modified(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

/// lr.tsv as algorithm -> rate.
fn rates(out: &Path) -> BTreeMap<String, f64> {
    std::fs::read_to_string(out.join("lr.tsv"))
        .expect("lr.tsv is written")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[1].parse().unwrap())
        })
        .collect()
}

/// Per algorithm, the grid's rate with the best final validation accuracy, read from the grid's
/// own files (one seed, so no means).
fn best_of_grid(grid: &Path) -> BTreeMap<String, f64> {
    let mut best: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for r in run_folders(grid) {
        let s = json(&r.join("summary.json"));
        let c = json(&r.join("config.json"));
        let algo = s["algo"].as_str().unwrap().to_string();
        let val = s["val_accuracy"]
            .as_f64()
            .expect("the grid is scored on validation");
        let lr = c["schedule"]["base"].as_f64().unwrap();
        let e = best.entry(algo).or_insert((f64::NEG_INFINITY, 0.0));
        if val > e.0 || (val == e.0 && lr > e.1) {
            *e = (val, lr);
        }
    }
    best.into_iter().map(|(a, (_, lr))| (a, lr)).collect()
}

/// Every final run carries the chosen rate (DDP's x2 in crowding: twice the workers), the
/// schedule its folder names, the part's link, the held-out images and, in crowding, the speeds.
fn check_final_runs(out: &Path, runs: &[PathBuf], chosen: &BTreeMap<String, f64>) {
    for r in runs.iter().filter(|r| !r.starts_with(out.join("grid"))) {
        let c = json(&r.join("config.json"));
        let s = json(&r.join("summary.json"));
        let algo = s["algo"].as_str().unwrap();
        let name = r.file_name().unwrap().to_string_lossy().into_owned();
        let crowded = r.starts_with(out.join("crowding"));
        let scale = if crowded && algo.starts_with("ddp") {
            2.0
        } else {
            1.0
        };
        let lr = c["schedule"]["base"].as_f64().unwrap();
        assert!((lr - scale * chosen[algo]).abs() < 1e-12, "{name}: lr {lr}");
        let schedule = s["schedule"].as_str().unwrap();
        assert_eq!(name.contains("-async-"), schedule == "async", "{name}");
        let link = &c["link"];
        if r.starts_with(out.join("accuracy/synthetic-pcie")) {
            assert_eq!(link["preset"], "pcie4-x16", "{name}");
        } else {
            assert_eq!(
                link["bandwidth_bytes_per_s"].as_f64(),
                Some(1.25e8),
                "{name}"
            );
        }
        assert_eq!(c["val_split"].as_u64(), Some(if crowded { 16 } else { 32 }));
        assert!(s["val_accuracy"].is_number(), "{name}");
        if crowded {
            assert_eq!(c["worker_speed"], serde_json::json!([1.0, 1.0, 1.0, 0.5]));
        } else {
            assert!(c.get("worker_speed").is_none_or(Value::is_null), "{name}");
        }
    }
}

fn check_report(out: &Path, runs: usize) {
    let doc = std::fs::read_to_string(out.join("reproduction.md")).expect("the report");
    for heading in [
        "## Verdicts",
        "## How it was run",
        "## Learning rates",
        "## Claims 1 and 2: accuracy under a time budget",
        "### synthetic-eth",
        "### synthetic-pcie",
        "## Claim 2: flatness",
        "### Beside the published figures",
        "## Claim 3: more crowded workers",
        "## Claim 4: communication",
        "### Final accuracy against tau",
        "## Ablations of GRAWA",
    ] {
        assert!(doc.contains(heading), "no '{heading}' in:\n{doc}");
    }
    assert!(doc.contains("mgrawa (async)"), "{doc}");
    assert!(
        doc.contains("- links: synthetic-eth: --link 1Gbit/s,50us"),
        "{doc}"
    );
    assert!(doc.contains("4 workers, speeds 1,1,1,0.5"), "{doc}");
    let verdicts = ["**supported**", "**contradicted**", "**not resolved**"];
    for (claim, places) in [
        (
            "1. converge faster",
            &["synthetic-eth", "synthetic-pcie"][..],
        ),
        ("2a. better optima", &["synthetic-eth", "synthetic-pcie"]),
        ("2b. flatter optima", &["synthetic-eth"]),
        ("4a. fewer distributed updates", &["synthetic-eth"]),
        ("3. advantages kept with crowded workers", &["crowding"]),
        ("4b. less frequent communication", &["tau"]),
    ] {
        for place in places {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| {claim} | {place} |")))
                .unwrap_or_else(|| panic!("no verdict row for '{claim}' in {place}:\n{doc}"));
            assert!(verdicts.iter().any(|v| row.contains(v)), "{row}");
        }
    }
    // The PCIe place runs only async GRAWA against sync rivals: an async round is one worker's
    // exchange, not an all-worker round, so claim 4a has nothing to compare there.
    assert!(
        doc.lines().any(|l| l.starts_with(
            "| 4a. fewer distributed updates | synthetic-pcie | **not judged: no comparable runs** |"
        )),
        "{doc}"
    );
    // The run table, one row per run, and the verdicts recomputed from it alone.
    let table = out.join("reproduction/runs.csv");
    let rows = std::fs::read_to_string(&table).expect("the run table is written");
    assert_eq!(rows.lines().count(), 1 + runs, "{rows}");
    let again = out.join("again.md");
    let status = Command::new(BIN)
        .args(["reproduction-report", "--from-csv"])
        .arg(&table)
        .arg("--out")
        .arg(&again)
        .status()
        .unwrap();
    assert!(status.success());
    let verdicts_of = |d: &str| {
        d.split("## How the verdicts are made")
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        verdicts_of(&std::fs::read_to_string(&again).unwrap()),
        verdicts_of(&doc)
    );
    assert!(
        doc.contains("Every run folder holds a finished run."),
        "{doc}"
    );
    // The published flatness figures stand beside ours; the machine and wall time are recorded.
    assert!(doc.contains("| ddp | 33.9 | 436 |"), "{doc}");
    assert!(doc.contains("cores (nproc):"), "{doc}");
    assert!(doc.contains("Wall time: **"), "{doc}");
    let images: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("![")?.split("](").nth(1)?.strip_suffix(')'))
        .collect();
    assert!(images.len() >= 7, "{images:?}");
    for img in &images {
        let bytes = std::fs::read(out.join(img)).unwrap_or_else(|_| panic!("{img} missing"));
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{img}");
    }
}

#[test]
fn quick_reproduction_runs_every_stage_and_resumes() {
    if cfg!(debug_assertions) {
        eprintln!("skipped: a release-mode test (cargo test --release)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("repro");

    // The dry run on nothing: every run new, nothing written.
    let plan = reproduce(&out, &["--dry-run"]);
    let plan_log = log(&plan);
    assert!(plan.status.success(), "{plan_log}");
    for (stage, n) in [("grid", GRID), ("accuracy, eth", ETH), ("flatness", ETH)] {
        let line = format!("{stage:<16} {n:>3} new,   0 to resume,   0 done");
        assert!(plan_log.contains(&line), "no '{line}' in:\n{plan_log}");
    }
    assert!(!out.exists(), "--dry-run wrote {}", out.display());

    let t0 = Instant::now();
    let first = reproduce(&out, &[]);
    let first_secs = t0.elapsed().as_secs_f64();
    assert!(
        first.status.success(),
        "reproduce.sh --quick failed:\n{}",
        log(&first)
    );

    let runs = run_folders(&out);
    assert_eq!(runs.len(), RUNS, "{runs:#?}");
    for r in &runs {
        assert!(
            r.join("summary.json").is_file(),
            "{} unfinished",
            r.display()
        );
    }
    let eth: Vec<&PathBuf> = runs
        .iter()
        .filter(|r| r.starts_with(out.join("accuracy/synthetic-eth")))
        .collect();
    assert_eq!(eth.len(), ETH);
    assert!(eth.iter().all(|r| r.join("flatness.json").is_file()));

    // The rates: the grid's best validation score per algorithm, carried by every final run.
    let chosen = rates(&out);
    assert_eq!(chosen, best_of_grid(&out.join("grid/synthetic-eth")));
    assert_eq!(chosen.len(), 7, "{chosen:?}");
    check_final_runs(&out, &runs, &chosen);
    check_report(&out, runs.len());
    let timings = std::fs::read_to_string(out.join("timings.tsv")).unwrap();
    let parts = timings.lines().count();
    assert_eq!(parts, 7, "{timings}");
    assert!(
        timings
            .lines()
            .all(|l| l.split('\t').nth(2) == Some("done")),
        "{timings}"
    );

    // Again: every run and measurement skipped, the rates kept, only the report rewritten.
    let stamps: Vec<SystemTime> = runs
        .iter()
        .map(|r| modified(&r.join("summary.json")))
        .collect();
    let kept = (
        modified(&out.join("lr.tsv")),
        modified(&eth[0].join("flatness.json")),
    );
    let t1 = Instant::now();
    let second = reproduce(&out, &[]);
    let second_secs = t1.elapsed().as_secs_f64();
    let log2 = log(&second);
    assert!(second.status.success(), "second invocation failed:\n{log2}");
    assert_eq!(log2.matches(" finished, skipped").count(), RUNS, "{log2}");
    assert_eq!(log2.matches(" measured, skipped").count(), ETH, "{log2}");
    assert!(log2.contains("lr: kept"), "{log2}");
    assert!(!log2.contains("resuming"), "{log2}");
    let again: Vec<SystemTime> = runs
        .iter()
        .map(|r| modified(&r.join("summary.json")))
        .collect();
    assert_eq!(stamps, again, "a finished run was rewritten");
    let kept_again = (
        modified(&out.join("lr.tsv")),
        modified(&eth[0].join("flatness.json")),
    );
    assert_eq!(kept, kept_again, "lr.tsv or a flatness.json was rewritten");
    let timings = std::fs::read_to_string(out.join("timings.tsv")).unwrap();
    assert_eq!(timings.lines().count(), 2 * parts, "{timings}");

    // Nothing left: every stage done.
    let plan = log(&reproduce(&out, &["--dry-run"]));
    assert_eq!(
        plan.matches("   0 new,   0 to resume,").count(),
        6,
        "{plan}"
    );
    eprintln!("reproduce.sh --quick: {first_secs:.1} s, again {second_secs:.1} s");
}
