//! The binary with several workers: flags that make no sense together exit 2 with a one-line
//! reason naming the flag; a run that diverges exits 1 naming the worker, without hanging the
//! others; SIGINT stops every worker and exits 130. Exit codes are docs/design.md section 6's.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn grawa() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_grawa-train"));
    c.env_remove("GRAWA_DATA");
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Waits for `child` at most `secs`, killing it and failing the test past that (a hang).
fn wait_with_deadline(mut child: Child, secs: u64, what: &str) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let o = child.wait_with_output().expect("output");
            panic!(
                "{what}: still running after {secs} s (hang); stderr: {}",
                stderr(&o)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run_bounded(args: &[&str], out: &Path, secs: u64) -> Output {
    let child = grawa()
        .args(args)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    wait_with_deadline(child, secs, &args.join(" "))
}

/// Each combination is refused before anything is written: exit 2, one line naming the flag
/// (messages from `config::algo_config`, `RunConfig::from_args` and the `--max-staleness` check
/// in `train::run`), no panic, no output folder.
#[test]
fn incompatible_multi_worker_flags_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &[&str]); 5] = [
        (
            &["--beta", "0.2", "--algo", "lgrawa", "--workers", "2"],
            &["--beta", "easgd", "lgrawa"],
        ),
        (
            &["--algo", "ddp", "--schedule", "async", "--workers", "2"],
            &["--schedule async", "ddp", "sync"],
        ),
        (
            &["--algo", "sgd", "--workers", "4"],
            &["--algo sgd", "--workers 4"],
        ),
        (
            &[
                "--schedule",
                "async",
                "--tau",
                "8",
                "--max-staleness",
                "4",
                "--workers",
                "2",
                "--algo",
                "local-sgd",
            ],
            &["--max-staleness 4", "--tau"],
        ),
        (&["--workers", "0"], &["--workers 0"]),
    ];
    for (i, (args, needles)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("run{i}"));
        let o = run_bounded(
            &[&["--dataset", "synthetic", "--quiet"], *args].concat(),
            &out,
            60,
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        for n in *needles {
            assert!(err.contains(n), "{args:?}: expected '{n}' in: {err}");
        }
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            !out.exists(),
            "{args:?}: nothing may be written on bad input"
        );
    }
}

/// `--lr 1e9` makes the loss non-finite within a few steps. One worker's failure must stop the
/// other three, whether they wait for a round (lgrawa, tau 32), for every all-reduce (ddp), or
/// nobody waits (lgrawa under async): exit 1, "diverged: worker N at step S", within the
/// deadline.
#[test]
fn a_diverging_four_worker_run_exits_1_naming_a_worker() {
    let dir = tempfile::tempdir().unwrap();
    for (algo, schedule) in [("lgrawa", "sync"), ("ddp", "sync"), ("lgrawa", "async")] {
        let out = dir.path().join(format!("{algo}-{schedule}"));
        let o = run_bounded(
            &[
                "--dataset",
                "synthetic",
                "--model",
                "mlp",
                "--synthetic-train",
                "4000",
                "--workers",
                "4",
                "--algo",
                algo,
                "--schedule",
                schedule,
                "--lr",
                "1e9",
                "--lr-schedule",
                "constant",
                "--steps",
                "200",
                "--quiet",
            ],
            &out,
            60,
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{algo} {schedule}: {err}");
        let at = err
            .find("diverged: worker ")
            .unwrap_or_else(|| panic!("{algo} {schedule}: {err}"));
        let worker = err[at + "diverged: worker ".len()..]
            .split_whitespace()
            .next()
            .and_then(|w| w.parse::<usize>().ok());
        assert!(
            matches!(worker, Some(0..=3)),
            "{algo} {schedule}: worker id in: {err}"
        );
        assert!(err.contains("at step"), "{algo} {schedule}: {err}");
        assert!(!err.contains("panicked"), "{algo} {schedule}: {err}");
        assert!(
            !out.join("summary.json").exists(),
            "{algo} {schedule}: no summary"
        );
    }
}

/// SIGINT to a 4-worker lgrawa run (sync, waiting at rounds): every worker stops at its next step
/// boundary and the process exits 130 without a summary.
#[test]
fn sigint_stops_a_four_worker_run_with_exit_130() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let child = grawa()
        .args([
            "--dataset",
            "synthetic",
            "--model",
            "mlp",
            "--synthetic-train",
            "4000",
            "--workers",
            "4",
            "--algo",
            "lgrawa",
            "--tau",
            "8",
            "--steps",
            "100000000",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Training runs (and the handler is installed) once metrics.jsonl has its first lines; they
    // reach the disk about 2 s in (the writer flushes every 2 s).
    let metrics = out.join("metrics.jsonl");
    let started = Instant::now();
    while std::fs::read_to_string(&metrics).map_or(true, |m| m.is_empty()) {
        if started.elapsed() > Duration::from_secs(60) {
            let mut child = child;
            let _ = child.kill();
            panic!("training did not start within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = wait_with_deadline(child, 60, "after SIGINT");
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
    assert!(
        !out.join("summary.json").exists(),
        "an interrupted run has no summary"
    );
}
