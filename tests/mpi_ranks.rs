//! Runs across processes (feature `mpi`), under `mpirun --oversubscribe` on this machine: two ranks
//! of two workers are the same experiment as one process of four, a rank that dies takes the run
//! down with it (no hang), and what is not supported across processes yet is refused by name.
//! Skipped, with a message, where `mpirun` is not installed (scripts/test.sh installs it).
#![cfg(feature = "mpi")]

mod run_support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use run_support::{json, metrics_lines, wait_bounded, wait_until, BIN};

fn have_mpirun() -> bool {
    Command::new("mpirun")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `mpirun --oversubscribe -np ranks grawa-train args` (as root where the tests run as root).
fn mpirun(ranks: usize, args: &[String]) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["--oversubscribe", "-np", &ranks.to_string(), BIN])
        .args(args)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env_remove("GRAWA_DATA");
    c
}

fn bounded(mut c: Command, secs: u64) -> Output {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_bounded(child, secs, "mpirun")
}

fn flags(algo: &str, workers: usize, threads: usize, out: &Path) -> Vec<String> {
    let mut a = vec![
        "--dataset",
        "synthetic",
        "--model",
        "mlp",
        "--algo",
        algo,
        "--steps",
        "40",
        "--batch-size",
        "32",
        "--lr",
        "0.05",
        "--eval-every",
        "20",
        "--synthetic-train",
        "4000",
        "--synthetic-test",
        "1000",
        "--quiet",
    ];
    if !algo.starts_with("ddp") {
        a.extend(["--tau", "8"]);
    }
    a.iter()
        .map(|s| s.to_string())
        .chain([
            "--workers".into(),
            workers.to_string(),
            "--threads".into(),
            threads.to_string(),
            "--out".into(),
            out.display().to_string(),
        ])
        .collect()
}

/// Every algorithm under `sync`: `-np 2 --workers 2` against the in-process `--workers 4` of the
/// same seed. The ranks hold the same global workers (shards, probe seeds, initial point) and the
/// round differs only in the order of its sums (each rank's, then across ranks), so the final test
/// accuracy agrees within 0.002 and the test and training losses to 1e-4 relative; steps and
/// rounds exactly.
#[test]
fn two_ranks_of_two_are_the_run_of_four() {
    if !have_mpirun() {
        eprintln!("skipped: mpirun is not installed (scripts/test.sh installs openmpi-bin)");
        return;
    }
    for algo in [
        "lgrawa",
        "mgrawa",
        "local-sgd",
        "easgd",
        "lsgd",
        "ddp",
        "ddp-sam",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (two, one) = (dir.path().join("two"), dir.path().join("one"));
        let o = bounded(mpirun(2, &flags(algo, 2, 1, &two)), 120);
        assert!(
            o.status.success(),
            "{algo}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let o = Command::new(BIN)
            .args(flags(algo, 4, 2, &one))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{algo}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let (a, b) = (
            json(&two.join("summary.json")),
            json(&one.join("summary.json")),
        );
        let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap();
        assert!(
            (f(&a, "test_accuracy") - f(&b, "test_accuracy")).abs() <= 0.002,
            "{algo}: accuracy {a} vs {b}"
        );
        // The training loss covers every rank's workers (rank 0 gets the others' step losses).
        for k in ["test_loss", "train_loss"] {
            let (la, lb) = (f(&a, k), f(&b, k));
            assert!(
                (la - lb).abs() <= 1e-4 * lb.abs(),
                "{algo}: {k} {la} vs {lb}"
            );
        }
        for k in ["rounds", "local_steps_total", "worker_steps", "workers"] {
            assert_eq!(a[k], b[k], "{algo}: {k}");
        }
        let config = json(&two.join("config.json"));
        assert_eq!(config["ranks"], 2, "{algo}: config.json records the ranks");
        // Every worker of every rank is in the round metrics.
        let metrics = std::fs::read_to_string(two.join("metrics.jsonl")).unwrap();
        let round = metrics
            .lines()
            .find(|l| l.contains("\"event\":\"round\""))
            .unwrap();
        let round: serde_json::Value = serde_json::from_str(round).unwrap();
        if let Some(w) = round["weights"].as_array() {
            assert!(
                w.len() % 4 == 0,
                "{algo}: weights of all 4 workers: {round}"
            );
        }
    }
}

/// `--schedule permits` across ranks: each rank hands out its own workers' share of permits
/// (K*tau a round), so the run's steps and rounds are those of the budget, the ranks' shares are
/// equal, and every worker of both ranks takes part in every round.
#[test]
fn permits_across_ranks_share_the_budget() {
    if !have_mpirun() {
        eprintln!("skipped: mpirun is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("permits");
    let mut a = flags("lgrawa", 2, 1, &out);
    a.extend(["--schedule".into(), "permits".into()]);
    let o = bounded(mpirun(2, &a), 120);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["rounds"], 5, "40 steps of tau 8: {summary}");
    assert_eq!(summary["local_steps_total"], 160, "{summary}");
    let steps: Vec<u64> = summary["worker_steps"]
        .as_array()
        .unwrap_or_else(|| panic!("worker_steps: {summary}"))
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(steps.len(), 4, "{summary}");
    assert_eq!(steps[0] + steps[1], 80, "rank 0's share: {steps:?}");
    assert_eq!(steps[2] + steps[3], 80, "rank 1's share: {steps:?}");
    assert!(
        summary["test_accuracy"].as_f64().unwrap() > 0.2,
        "{summary}"
    );
}

/// A rank killed with SIGKILL mid-run: the launcher ends the others, non-zero, within seconds,
/// naming the process that died; nothing is left running.
#[test]
fn a_killed_rank_ends_the_run() {
    if !have_mpirun() {
        eprintln!("skipped: mpirun is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut a = flags("lgrawa", 2, 1, &out);
    let i = a.iter().position(|s| s == "40").unwrap();
    a[i] = "100000".into();
    let mut child = mpirun(2, &a)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for training (rank 0's metrics), then kill one rank's process.
    wait_until(60, "the run did not start", || {
        out.join("metrics.jsonl").exists()
    });
    std::thread::sleep(Duration::from_millis(500));
    let ranks = Command::new("pgrep")
        .args(["-P", &child.id().to_string(), "-f", "grawa-train"])
        .output()
        .unwrap();
    let pids: Vec<String> = String::from_utf8_lossy(&ranks.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(pids.len(), 2, "two rank processes under mpirun: {pids:?}");
    assert!(Command::new("kill")
        .args(["-9", &pids[1]])
        .status()
        .unwrap()
        .success());
    let killed_at = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "the other rank did not end within 30 s of the kill"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("signal 9") || err.contains("Killed"),
        "names the dead process: {err}"
    );
    let left = Command::new("pgrep")
        .args(["-f", &out.display().to_string()])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "ranks left running: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

/// What does not work across processes yet is refused by every rank, exit 2, naming the flag.
#[test]
fn unsupported_flags_across_processes_exit_2() {
    if !have_mpirun() {
        eprintln!("skipped: mpirun is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for extra in [
        &["--schedule", "async"][..],
        &["--checkpoint-every", "30s"][..],
        &["--eval-workers"][..],
        &["--eval-every", "10s"][..],
    ] {
        let out = dir.path().join(extra[0].trim_start_matches('-'));
        let mut a = flags("lgrawa", 2, 1, &out);
        a.extend(extra.iter().map(|s| s.to_string()));
        let o = bounded(mpirun(2, &a), 60);
        assert!(!o.status.success(), "{extra:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(extra[0]) && err.contains("across processes"),
            "{extra:?}: {err}"
        );
    }
}

/// `--worker-speed` takes one speed per worker of the whole run, rank by rank: every rank refuses
/// a list of the wrong length by name, and a whole list is recorded in config.json.
#[test]
fn worker_speed_counts_every_worker_of_the_run() {
    if !have_mpirun() {
        eprintln!("skipped: mpirun is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("short");
    let mut a = flags("lgrawa", 2, 1, &out);
    a.extend(["--worker-speed".to_string(), "1,0.5".to_string()]);
    let o = bounded(mpirun(2, &a), 60);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--worker-speed 1,0.5: 2 given for 4 workers (2 ranks x 2 workers)"),
        "{err}"
    );
    let out = dir.path().join("run");
    let mut a = flags("lgrawa", 2, 1, &out);
    a.extend(["--worker-speed".to_string(), "1,1,1,0.5".to_string()]);
    let o = bounded(mpirun(2, &a), 120);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let config = json(&out.join("config.json"));
    assert_eq!(
        config["worker_speed"],
        serde_json::json!([1.0, 1.0, 1.0, 0.5])
    );
}

/// `--link` across ranks models the cross-rank part only: DDP over 2 ranks of 2 workers is
/// charged the ring all-reduce over 2 participants (the ranks), `2(2-1)/2 S/B + 2(2-1) L`, per
/// step: 20 of them per `steps` line, within 5 %.
#[test]
fn the_link_across_ranks_counts_the_ranks() {
    if !have_mpirun() {
        eprintln!("skipped: mpirun is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut a = flags("ddp", 2, 1, &out);
    a.extend(["--link".to_string(), "1Gbit/s,50us".to_string()]);
    let o = bounded(mpirun(2, &a), 120);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = json(&out.join("config.json"))["parameters"]
        .as_f64()
        .unwrap()
        * 4.0;
    let step_ms = (s / (1e9 / 8.0) + 2.0 * 50e-6) * 1e3;
    let lines: Vec<serde_json::Value> = run_support::events(&out, "steps")
        .into_iter()
        .filter(|v| v.get("link_ms").is_some())
        .collect();
    assert!(!lines.is_empty(), "steps lines carry link_ms");
    for v in &lines {
        let ms = v["link_ms"].as_f64().unwrap();
        assert!((ms - 20.0 * step_ms).abs() <= 0.05 * 20.0 * step_ms, "{v}");
    }
    let summary = json(&out.join("summary.json"));
    let total = summary["link_seconds"].as_f64().unwrap();
    assert!(
        (total - 40.0 * step_ms / 1e3).abs() <= 0.05 * 40.0 * step_ms / 1e3,
        "{summary}"
    );
}

/// Ctrl-C on mpirun reaches every rank: they stop together at a round, rank 0 writes one
/// checkpoint holding all four workers, and `mpirun ... --resume DIR` continues it to the
/// uninterrupted run's numbers, metrics line for line (timings aside).
#[test]
fn an_interrupted_run_across_ranks_resumes_to_the_same_numbers() {
    if !have_mpirun() {
        eprintln!("skipped: mpirun is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (whole, cut) = (dir.path().join("whole"), dir.path().join("cut"));
    let long = |out: &Path| {
        let mut a = flags("lgrawa", 2, 1, out);
        let i = a.iter().position(|s| s == "40").unwrap();
        a[i] = "3000".into();
        a
    };
    let o = bounded(mpirun(2, &long(&whole)), 120);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut child = mpirun(2, &long(&cut))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(60, "the run did not get going", || {
        metrics_lines(&cut) >= 12
    });
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let _ = child.wait().unwrap();
    assert!(!cut.join("summary.json").exists(), "stopped before the end");
    let ckpts: Vec<_> = std::fs::read_dir(cut.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("COMPLETE").exists())
        .collect();
    assert_eq!(ckpts.len(), 1, "{ckpts:?}");
    let state = json(&ckpts[0].join("state.json"));
    assert_eq!(
        state["workers"].as_array().unwrap().len(),
        4,
        "every rank's workers"
    );
    assert_eq!(state["finished"], false);
    let o = bounded(
        mpirun(2, &["--resume".into(), cut.display().to_string()]),
        120,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        run_support::summary_losses(&whole),
        run_support::summary_losses(&cut)
    );
    assert_eq!(
        run_support::metrics_without_timings(&whole),
        run_support::metrics_without_timings(&cut)
    );
}
