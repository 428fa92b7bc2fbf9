//! Checkpoints and --resume: an interrupted `sync` run, resumed, ends exactly where the
//! uninterrupted run ends (same summary losses, same metrics but for timings); a resume that does
//! not match the checkpoint is refused with a reason.

mod run_support;

use std::path::Path;

use run_support::{
    interrupt_midway, json, metrics_without_timings, run_bin as run, summary_losses, sync_args,
};

fn args(out: &Path) -> Vec<String> {
    sync_args(out, &[])
}

#[test]
fn sigint_then_resume_matches_the_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, cut) = (dir.path().join("whole"), dir.path().join("cut"));
    assert!(run(&args(&whole)).status.success());

    let o = interrupt_midway(&args(&cut), &cut, "-INT", 20);
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!cut.join("summary.json").exists());
    let state = json(
        &std::fs::read_dir(cut.join("checkpoints"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
            .join("state.json"),
    );
    let steps = state["workers"][0]["step"].as_u64().unwrap();
    assert!(
        steps > 0 && steps < 600,
        "interrupted half-way, at step {steps}"
    );

    let mut resume = args(&cut);
    resume.extend(["--resume".to_string(), cut.display().to_string()]);
    let o = run(&resume);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(summary_losses(&whole), summary_losses(&cut));
    assert_eq!(
        metrics_without_timings(&whole),
        metrics_without_timings(&cut)
    );
}

#[test]
fn a_killed_run_resumes_from_its_last_periodic_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, cut) = (dir.path().join("whole"), dir.path().join("cut"));
    assert!(run(&args(&whole)).status.success());
    let mut a = args(&cut);
    a.extend(["--checkpoint-every".into(), "3".into()]);
    // SIGKILL: no chance to save anything; only the periodic checkpoints survive.
    let o = interrupt_midway(&a, &cut, "-KILL", 40);
    assert_eq!(o.status.code(), None);
    // A kill during a write leaves a `.tmp` folder without the COMPLETE marker: it is ignored.
    let ckpts: Vec<_> = std::fs::read_dir(cut.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("COMPLETE").exists())
        .collect();
    assert!(
        !ckpts.is_empty() && ckpts.len() <= 2,
        "--keep 2 keeps at most two: {ckpts:?}"
    );
    a.extend(["--resume".to_string(), cut.display().to_string()]);
    let o = run(&a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(summary_losses(&whole), summary_losses(&cut));
    assert_eq!(
        metrics_without_timings(&whole),
        metrics_without_timings(&cut)
    );
}

#[test]
fn resume_refuses_what_does_not_match() {
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut");
    let o = interrupt_midway(&args(&cut), &cut, "-INT", 20);
    assert_eq!(o.status.code(), Some(130));
    let with = |extra: &[&str]| {
        let mut a = args(&cut);
        a.extend(extra.iter().map(|s| s.to_string()));
        a.extend(["--resume".to_string(), cut.display().to_string()]);
        run(&a)
    };
    let o = with(&["--workers", "2"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--workers 2") && err.contains("--workers 3"),
        "names the flag and both values: {err}"
    );
    let o = with(&["--algo", "easgd"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("lgrawa"));

    // A checkpoint without its completion marker is never read.
    for c in std::fs::read_dir(cut.join("checkpoints")).unwrap() {
        std::fs::remove_file(c.unwrap().path().join("COMPLETE")).unwrap();
    }
    let o = with(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no complete checkpoint"));
}

#[test]
fn a_finished_run_is_not_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("done");
    let mut a = args(&out);
    let budget = a.iter().position(|s| s == "600").unwrap();
    a[budget] = "40".into();
    assert!(run(&a).status.success());
    a.extend(["--resume".to_string(), out.display().to_string()]);
    let o = run(&a);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("has finished"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
