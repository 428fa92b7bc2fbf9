//! Runs that survive what a hostile but realistic user does to them: resuming with only
//! `--resume DIR` or with changed flags, async runs interrupted and resumed, damaged checkpoints,
//! a disk that fills, a signal during the final evaluation. Each ends either with the
//! uninterrupted run's numbers or with exit 2/4 and one line saying what to do.

mod run_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use run_support::{
    argv, interrupt_midway, json, metrics_without_timings, run_bin, summary_losses, sync_args,
    wait_bounded, wait_until, BIN,
};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn resume_alone(out: &Path, extra: &[&str]) -> Output {
    let mut a: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    a.extend(["--resume".to_string(), out.display().to_string()]);
    run_bin(&a)
}

/// `grawa-train --resume DIR` alone continues the run with the flags saved in its config.json
/// and ends with the uninterrupted run's numbers; a flag that would change the experiment is
/// refused naming the flag and both values (or "its default"), before anything is touched; flags
/// that only change reporting (--keep, --quiet, --watchdog) are taken.
#[test]
fn resume_alone_continues_and_changed_flags_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, cut) = (dir.path().join("whole"), dir.path().join("cut"));
    assert!(run_bin(&sync_args(&whole, &[])).status.success());
    let o = interrupt_midway(&sync_args(&cut, &[]), &cut, "-INT", 20);
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let before = metrics_without_timings(&cut);

    for (flags, named) in [
        (&["--lr", "0.05"][..], ["--lr 0.05", "its default"]),
        (&["--tau", "8"][..], ["--tau 8", "--tau 16"]),
        (&["--workers", "2"][..], ["--workers 2", "--workers 3"]),
        (
            &["--dataset", "mnist"][..],
            ["--dataset mnist", "--dataset synthetic"],
        ),
    ] {
        let o = resume_alone(&cut, flags);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(named.iter().all(|n| err.contains(n)), "{flags:?}: {err}");
        assert_eq!(
            metrics_without_timings(&cut),
            before,
            "{flags:?} touched the run"
        );
    }
    let o = resume_alone(&cut, &["--keep", "3", "--watchdog", "60", "--tau", "16"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(summary_losses(&whole), summary_losses(&cut));
    assert_eq!(
        metrics_without_timings(&whole),
        metrics_without_timings(&cut)
    );
}

/// Every algorithm that runs under `--schedule async`, interrupted half-way and resumed with
/// `--resume DIR` alone, finishes its budget (no hang: restored workers used to wait for ever
/// past the staleness bound of the fresh pulling thread).
#[test]
fn async_runs_interrupted_and_resumed_finish() {
    for algo in ["lgrawa", "mgrawa", "local-sgd", "easgd", "lsgd"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let a = [
            "--dataset",
            "synthetic",
            "--model",
            "mlp",
            "--workers",
            "3",
            "--algo",
            algo,
            "--schedule",
            "async",
            "--steps",
            "1500",
            "--tau",
            "4",
            "--synthetic-train",
            "6000",
            "--batch-size",
            "32",
            "--threads",
            "2",
            "--quiet",
        ];
        let a = argv(&a, &out);
        let o = interrupt_midway(&a, &out, "-INT", 30);
        assert_eq!(o.status.code(), Some(130), "{algo}: {}", stderr(&o));
        let child = Command::new(BIN)
            .args(["--resume", out.to_str().unwrap()])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let o = wait_bounded(child, 60, algo);
        assert!(o.status.success(), "{algo}: {}", stderr(&o));
        let s = json(&out.join("summary.json"));
        let total = s["local_steps_total"].as_u64().unwrap();
        assert!(
            (4500..=4503).contains(&total),
            "{algo}: the whole budget: {s}"
        );
    }
}

/// The checkpoint folders of a run, oldest first.
fn checkpoints(out: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(out.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("COMPLETE").exists())
        .collect();
    v.sort();
    v
}

/// Flips one bit in the middle of a checkpoint's tensor data.
fn flip_a_bit(ckpt: &Path) {
    let path = ckpt.join("tensors.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - bytes.len() / 3;
    bytes[at] ^= 0x04;
    std::fs::write(&path, bytes).unwrap();
}

/// One flipped bit in the newest checkpoint's weights is caught by its checksum: the resume
/// skips it (set aside as `.damaged`, saying so), continues from the older intact one and still
/// ends with the uninterrupted run's numbers. With every checkpoint damaged it is refused (exit 2)
/// naming the checkpoint and why.
#[test]
fn a_damaged_checkpoint_is_caught_and_the_older_intact_one_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, cut) = (dir.path().join("whole"), dir.path().join("cut"));
    assert!(run_bin(&sync_args(&whole, &[])).status.success());
    let o = interrupt_midway(
        &sync_args(&cut, &["--checkpoint-every", "3"]),
        &cut,
        "-INT",
        40,
    );
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let ckpts = checkpoints(&cut);
    assert_eq!(ckpts.len(), 2, "--keep 2: {ckpts:?}");
    flip_a_bit(&ckpts[1]);
    let o = resume_alone(&cut, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let newest = ckpts[1].file_name().unwrap().to_string_lossy().into_owned();
    assert!(err.contains(&newest) && err.contains("checksum"), "{err}");
    assert!(
        ckpts[1].with_extension("damaged").is_dir(),
        "kept aside for a look"
    );
    assert_eq!(summary_losses(&whole), summary_losses(&cut));
    assert_eq!(
        metrics_without_timings(&whole),
        metrics_without_timings(&cut)
    );

    let only = dir.path().join("only");
    let o = interrupt_midway(&sync_args(&only, &[]), &only, "-INT", 20);
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let c = checkpoints(&only);
    flip_a_bit(&c[0]);
    let o = resume_alone(&only, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no intact checkpoint"),
        "{}",
        stderr(&o)
    );
}

/// SIGTERM while the final evaluation runs (a CNN scoring 12,000 test images: long enough to hit)
/// stops the run with 130 and no summary; `--resume DIR` then does only what was left (the final
/// evaluation and the summary), with the uninterrupted run's numbers.
#[test]
fn a_signal_during_the_final_evaluation_is_an_interruption_and_resumable() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, cut) = (dir.path().join("whole"), dir.path().join("cut"));
    let args = |out: &Path| -> Vec<String> {
        argv(
            &[
                "--dataset",
                "synthetic",
                "--model",
                "cnn",
                "--workers",
                "2",
                "--steps",
                "8",
                "--tau",
                "4",
                "--synthetic-train",
                "512",
                "--synthetic-test",
                "12000",
                "--batch-size",
                "16",
                "--bn-recal-batches",
                "2",
                "--threads",
                "2",
                "--quiet",
            ],
            out,
        )
    };
    assert!(run_bin(&args(&whole)).status.success());
    let child = Command::new(BIN)
        .args(args(&cut))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The finished checkpoint is written just before the final evaluation starts.
    wait_until(60, "no finished checkpoint", || {
        cut.join("checkpoints").is_dir()
            && checkpoints(&cut)
                .iter()
                .any(|c| json(&c.join("state.json"))["finished"] == true)
    });
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let o = wait_bounded(child, 60, "after SIGTERM");
    if o.status.success() {
        // The evaluation won the race (it ended before the signal landed): nothing to check.
        eprintln!("the final evaluation finished before SIGTERM arrived; not exercised this time");
        return;
    }
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(!cut.join("summary.json").exists());
    let o = resume_alone(&cut, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(summary_losses(&whole), summary_losses(&cut));
    assert_eq!(
        metrics_without_timings(&whole),
        metrics_without_timings(&cut)
    );
}

/// A small tmpfs at `dir` (root only); `None` where mounting is not allowed.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Files anywhere under `dir` whose name ends in `.tmp`.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "tmp") {
                out.push(p.clone());
            }
            if p.is_dir() {
                out.extend(leftovers(&p));
            }
        }
    }
    out
}

/// A disk that fills: exit 4, no `.tmp` left, and the folder either resumable (a checkpoint was
/// written) or cleared for the same command to run again, as the message says. Needs root (a
/// tmpfs); skipped with a message otherwise.
#[test]
fn a_full_disk_leaves_the_run_resumable_or_re_runnable() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("disk");
    // 1 MiB: config.json and the metrics fit, a checkpoint (about 5.7 MB for 3 MLPs) does not.
    let Some(disk) = Tmpfs::mount(&mnt, "1m") else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let out = mnt.join("run");
    let a = sync_args(&out, &["--checkpoint-every", "2"]);
    let o = run_bin(&a);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("cannot write") && err.contains("run the same command again"),
        "{err}"
    );
    assert!(leftovers(&mnt).is_empty(), "{:?}", leftovers(&mnt));
    assert!(
        !out.exists(),
        "nothing to resume, so the partial run is cleared"
    );
    disk.resize("64m");
    let o = run_bin(&a);
    assert!(o.status.success(), "re-runnable: {}", stderr(&o));

    // 8 MiB: the first checkpoint fits, the second (both live until the older is pruned) does
    // not. The run stops resumable from the first, and resumed it ends as an uninterrupted run.
    drop(disk);
    let Some(disk) = Tmpfs::mount(&mnt, "8m") else {
        panic!("mounted once, not twice");
    };
    let whole = dir.path().join("whole");
    assert!(run_bin(&sync_args(&whole, &["--checkpoint-every", "2"]))
        .status
        .success());
    let o = run_bin(&a);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("--resume"), "{err}");
    assert!(leftovers(&mnt).is_empty(), "{:?}", leftovers(&mnt));
    disk.resize("64m");
    let o = resume_alone(&out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(summary_losses(&whole), summary_losses(&out));
    assert_eq!(
        metrics_without_timings(&whole),
        metrics_without_timings(&out)
    );

    // Full before the run starts: config.json cannot be written; nothing is left behind.
    let filler = mnt.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "count=80"])
        .arg(format!("of={}", filler.display()))
        .stderr(Stdio::null())
        .status();
    let fresh = mnt.join("fresh");
    let o = run_bin(&sync_args(&fresh, &[]));
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("config.json"), "{}", stderr(&o));
    assert!(!fresh.exists() && leftovers(&mnt).is_empty());
}

/// A summary that cannot be written (here: its temporary path is taken) exits 4; the run's
/// training is done and checkpointed, so `--resume` writes what was missing, with the
/// uninterrupted run's numbers; a new run into the folder is refused with a pointer to --resume.
#[test]
fn a_failed_summary_is_finished_by_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, cut) = (dir.path().join("whole"), dir.path().join("cut"));
    let short = |out: &Path| {
        let mut a = sync_args(out, &[]);
        let i = a.iter().position(|s| s == "600").unwrap();
        a[i] = "64".into();
        a
    };
    assert!(run_bin(&short(&whole)).status.success());
    std::fs::create_dir_all(cut.join("summary.json.tmp")).unwrap();
    let o = run_bin(&short(&cut));
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("--resume"), "{}", stderr(&o));
    assert!(!cut.join("summary.json").exists());
    let again = run_bin(&short(&cut));
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--resume"), "{}", stderr(&again));
    std::fs::remove_dir(cut.join("summary.json.tmp")).unwrap();
    let o = resume_alone(&cut, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(summary_losses(&whole), summary_losses(&cut));
    assert_eq!(
        metrics_without_timings(&whole),
        metrics_without_timings(&cut)
    );
}
