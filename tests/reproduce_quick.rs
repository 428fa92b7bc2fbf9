//! `scripts/reproduce.sh --quick`: every part on synthetic data with tiny step budgets, then the
//! report. The report must hold every section and a verdict per claim, and a second invocation
//! must skip every finished run and measurement (it resumes rather than redoes). A release-mode
//! test (`cargo test --release`, as scripts/test.sh runs it): about 15 s there, far longer in a
//! debug build, where it is skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Instant, SystemTime};

const BIN: &str = env!("CARGO_BIN_EXE_grawa-train");

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/reproduce.sh")
}

fn reproduce(out: &Path) -> Output {
    Command::new("bash")
        .arg(script())
        .arg("--quick")
        .arg(out)
        .env("GRAWA_BIN", BIN)
        .env_remove("GRID_FLAG")
        .env_remove("GRID_VALUES")
        .env_remove("REPRO_THREADS")
        .output()
        .expect("bash runs scripts/reproduce.sh")
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

fn modified(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

#[test]
fn quick_reproduction_writes_every_section_and_resumes() {
    if cfg!(debug_assertions) {
        eprintln!("skipped: a release-mode test (cargo test --release)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("repro");
    let t0 = Instant::now();
    let first = reproduce(&out);
    let first_secs = t0.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&first.stdout).into_owned()
        + &String::from_utf8_lossy(&first.stderr);
    assert!(
        first.status.success(),
        "reproduce.sh --quick failed:\n{log}"
    );

    // Every planned run finished: 2 settings x 7 algorithms x 2 seeds, crowding 5 x 2, tau 3 x 2
    // x 2, ablations 2 x 2 x 2.
    let runs = run_folders(&out);
    assert_eq!(runs.len(), 28 + 10 + 12 + 8, "{runs:#?}");
    for r in &runs {
        assert!(
            r.join("summary.json").is_file(),
            "{} unfinished",
            r.display()
        );
    }
    let accuracy: Vec<&PathBuf> = runs
        .iter()
        .filter(|r| r.starts_with(out.join("accuracy")))
        .collect();
    assert_eq!(accuracy.len(), 28);
    for r in &accuracy {
        assert!(
            r.join("flatness.json").is_file(),
            "{} has no flatness",
            r.display()
        );
    }

    // The report: every section, a verdict per claim, the charts it links.
    let doc_path = out.join("reproduction.md");
    let doc = std::fs::read_to_string(&doc_path).expect("the report is written");
    for heading in [
        "## Verdicts",
        "## How it was run",
        "## Claims 1 and 2: accuracy under a time budget",
        "### synthetic-a",
        "### synthetic-b",
        "## Claim 2: flatness",
        "### Beside the published figures",
        "## Claim 3: more crowded workers",
        "## Claim 4: communication",
        "### Final accuracy against tau",
        "## Ablations of GRAWA",
    ] {
        assert!(
            doc.contains(heading),
            "no '{heading}' in the report:\n{doc}"
        );
    }
    let verdicts = [
        "**supported**",
        "**contradicted**",
        "**not resolved**",
        "**not judged: no runs**",
    ];
    for (claim, places) in [
        ("1. converge faster", &["synthetic-a", "synthetic-b"][..]),
        ("2a. better optima", &["synthetic-a", "synthetic-b"]),
        ("2b. flatter optima", &["synthetic-a", "synthetic-b"]),
        ("3. advantages kept with crowded workers", &["crowding"]),
        (
            "4a. fewer distributed updates",
            &["synthetic-a", "synthetic-b"],
        ),
        ("4b. less frequent communication", &["tau"]),
    ] {
        for place in places {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| {claim} | {place} |")))
                .unwrap_or_else(|| panic!("no verdict row for '{claim}' in {place}:\n{doc}"));
            assert!(
                verdicts.iter().any(|v| row.contains(v)),
                "no verdict in: {row}"
            );
        }
    }
    // The run table beside the charts, one row per run, and the report recomputed from it alone.
    let table = out.join("reproduction/runs.csv");
    let rows = std::fs::read_to_string(&table).expect("the run table is written");
    assert_eq!(rows.lines().count(), 1 + runs.len(), "{rows}");
    let again = out.join("again.md");
    let status = Command::new(BIN)
        .args(["reproduction-report", "--from-csv"])
        .arg(&table)
        .arg("--out")
        .arg(&again)
        .status()
        .unwrap();
    assert!(status.success());
    let recomputed = std::fs::read_to_string(&again).unwrap();
    let verdicts_of = |d: &str| {
        d.split("## How the verdicts are made")
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(verdicts_of(&recomputed), verdicts_of(&doc));
    // The published flatness figures stand beside ours; the machine and wall time are recorded.
    assert!(doc.contains("| ddp | 33.9 | 436 |"), "{doc}");
    assert!(doc.contains("cores (nproc):"), "{doc}");
    assert!(doc.contains("Wall time: **"), "{doc}");
    assert!(
        doc.contains("Every run folder holds a finished run."),
        "{doc}"
    );
    let images: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("![")?.split("](").nth(1)?.strip_suffix(')'))
        .collect();
    assert!(images.len() >= 7, "{images:?}");
    for img in &images {
        let png = out.join(img);
        let bytes = std::fs::read(&png).unwrap_or_else(|_| panic!("{} missing", png.display()));
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", png.display());
    }
    let timings = std::fs::read_to_string(out.join("timings.tsv")).unwrap();
    let parts = timings.lines().count();
    assert_eq!(parts, 8, "{timings}");
    assert!(
        timings
            .lines()
            .all(|l| l.split('\t').nth(2) == Some("done")),
        "{timings}"
    );

    // Again: every run and every measurement is skipped, nothing is rewritten but the report.
    let stamps: Vec<SystemTime> = runs
        .iter()
        .map(|r| modified(&r.join("summary.json")))
        .collect();
    let flat_stamp = modified(&accuracy[0].join("flatness.json"));
    let t1 = Instant::now();
    let second = reproduce(&out);
    let second_secs = t1.elapsed().as_secs_f64();
    let log2 = String::from_utf8_lossy(&second.stdout).into_owned()
        + &String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "second invocation failed:\n{log2}");
    let skipped = log2.matches(" finished, skipped").count();
    assert_eq!(skipped, runs.len(), "{log2}");
    assert_eq!(log2.matches(" measured, skipped").count(), 28, "{log2}");
    assert!(!log2.contains("resuming"), "{log2}");
    let again: Vec<SystemTime> = runs
        .iter()
        .map(|r| modified(&r.join("summary.json")))
        .collect();
    assert_eq!(stamps, again, "a finished run was rewritten");
    assert_eq!(flat_stamp, modified(&accuracy[0].join("flatness.json")));
    let timings = std::fs::read_to_string(out.join("timings.tsv")).unwrap();
    assert_eq!(timings.lines().count(), 2 * parts, "{timings}");
    let doc2 = std::fs::read_to_string(&doc_path).unwrap();
    assert!(doc2.contains("| synthetic-a: training |"), "{doc2}");
    eprintln!("reproduce.sh --quick: {first_secs:.1} s, again {second_secs:.1} s");
}
