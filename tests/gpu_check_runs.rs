//! The training runs `scripts/gpu-check.sh` makes on a GPU, run here first: a GPU call may be the
//! only one there is, and a misspelt flag or a bad value must not be what it finds out.
//!
//! For each run the script lists (`--print-runs`):
//! - its whole command line, as the GPU will see it, is refused by this CPU build only for what
//!   it lacks (`--gpus` without CUDA, `--round nccl` without NCCL): every flag parsed and every
//!   other value passed its checks;
//! - without `--gpus` and `--round nccl`, it trains to the end on the CPU and writes its summary:
//!   every value passes, in the combination the GPU gets. Only the run's length shrinks (2 steps,
//!   a smaller synthetic set, one BatchNorm recalibration batch), to keep this test short.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_grawa-train");

/// (name, arguments) of every run the GPU check makes.
fn gpu_runs() -> Vec<(String, Vec<String>)> {
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gpu-check.sh"))
        .arg("--print-runs")
        .output()
        .expect("bash runs the script");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Vec<_> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut words = l.split_whitespace().map(String::from);
            let name = words.next().expect("a name");
            (name, words.collect())
        })
        .collect();
    assert!(runs.len() >= 8, "the script lists {} runs", runs.len());
    runs
}

fn run(args: &[String], out: &std::path::Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--out")
        .arg(out)
        .env_remove("GRAWA_DATA")
        .output()
        .expect("grawa-train runs")
}

/// `args` without the flags only a GPU build takes, and shorter: 2 steps with an evaluation at
/// the end, 512 training and 128 test images, one recalibration batch.
fn on_the_cpu(args: &[String]) -> Vec<String> {
    let mut cpu = Vec::new();
    let mut words = args.iter();
    while let Some(w) = words.next() {
        let shorter = match w.as_str() {
            "--gpus" | "--round" => {
                words.next();
                continue;
            }
            "--steps" | "--eval-every" => "2",
            "--synthetic-train" => "512",
            "--synthetic-test" => "128",
            _ => {
                cpu.push(w.clone());
                continue;
            }
        };
        words.next();
        cpu.extend([w.clone(), shorter.into()]);
    }
    cpu.extend(["--bn-recal-batches".into(), "1".into()]);
    cpu
}

#[test]
fn the_gpu_runs_command_lines_parse_and_train_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    for (name, args) in gpu_runs() {
        assert!(args.iter().any(|a| a == "--gpus"), "{name}: not a GPU run");
        let full = run(&args, &dir.path().join(format!("{name}-gpu")));
        let err = String::from_utf8_lossy(&full.stderr);
        assert_eq!(full.status.code(), Some(2), "{name}: {err}");
        // Refused for the GPU or NCCL this build lacks, by the flag's own check; a parse
        // error would name another flag or say "unexpected argument".
        assert!(
            err.starts_with("grawa-train: --gpus ")
                || err.starts_with("grawa-train: --round nccl:"),
            "{name}: refused for something else: {err}"
        );
        let out = dir.path().join(&name);
        let cpu = run(&on_the_cpu(&args), &out);
        assert!(
            cpu.status.success(),
            "{name} on the CPU: {}",
            String::from_utf8_lossy(&cpu.stderr)
        );
        assert!(out.join("summary.json").exists(), "{name}: no summary.json");
    }
}

#[test]
fn the_cpu_version_drops_only_the_gpu_flags_and_shortens_the_run() {
    let args: Vec<String> = "--model cnn --gpus 2 --steps 400 --round nccl --eval-every 100 \
                             --synthetic-train 8000 --synthetic-test 1000 --lr 0.05"
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(
        on_the_cpu(&args).join(" "),
        "--model cnn --steps 2 --eval-every 2 --synthetic-train 512 --synthetic-test 128 \
         --lr 0.05 --bn-recal-batches 1"
    );
}
