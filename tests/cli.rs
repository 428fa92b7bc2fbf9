//! The binary end to end: bad input exits 2 with a one-line reason and leaves nothing behind; a
//! short synthetic run writes its outputs; --config merges under the flags.

use std::path::Path;
use std::process::{Command, Output};

fn grawa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_grawa-train"))
        .args(args)
        .env_remove("GRAWA_DATA")
        .output()
        .expect("binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_usage_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(o));
    let err = stderr(o);
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unknown_model_and_bad_values_exit_2() {
    assert_usage_error(&grawa(&["--model", "resnet50"]), "unknown model 'resnet50'");
    assert_usage_error(&grawa(&["--dataset", "imagenet"]), "imagenet");
    assert_usage_error(&grawa(&["--lr", "abc"]), "--lr");
    assert_usage_error(&grawa(&["--dataset", "synthetic", "--lr", "-1"]), "--lr -1");
    assert_usage_error(
        &grawa(&["--dataset", "synthetic", "--momentum", "1.5"]),
        "--momentum",
    );
    assert_usage_error(
        &grawa(&["--dataset", "synthetic", "--batch-size", "0"]),
        "--batch-size",
    );
    assert_usage_error(
        &grawa(&["--dataset", "synthetic", "--lr-schedule", "step"]),
        "--milestones",
    );
    assert_usage_error(&grawa(&["--no-such-flag"]), "--no-such-flag");
}

/// Flags that would be ignored, or would overload the machine, are refused by name: --gamma
/// outside the step schedule (as --milestones is), more than 4 threads per core, more than 256
/// workers. Nothing is written.
#[test]
fn ignored_or_unbounded_flags_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = out.to_str().unwrap();
    let base = ["--dataset", "synthetic", "--steps", "1", "--out", o];
    let with = |extra: &[&str]| grawa(&[&base[..], extra].concat());
    assert_usage_error(
        &with(&["--gamma", "0.5"]),
        "--gamma 0.5 only applies to --lr-schedule step",
    );
    assert_usage_error(
        &with(&["--lr-schedule", "constant", "--gamma", "0.5"]),
        "--lr-schedule constant",
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let too_many = (4 * cores + 1).to_string();
    assert_usage_error(
        &with(&["--threads", &too_many]),
        &format!("--threads {too_many}"),
    );
    assert_usage_error(&with(&["--workers", "257"]), "--workers 257: at most 256");
    assert!(!out.exists(), "a refused run wrote {}", out.display());
}

#[test]
fn missing_data_names_the_file_and_the_fetch_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = grawa(&[
        "--dataset",
        "mnist",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_usage_error(&o, "train-images-idx3-ubyte");
    assert!(stderr(&o).contains("fetch-data.sh mnist"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing may be written on bad input");
}

/// Writes a tiny valid MNIST (IDX, raw) into `dir/mnist`: `n` images of 28x28 and their labels.
fn write_tiny_mnist(dir: &Path, n: u32) {
    let m = dir.join("mnist");
    std::fs::create_dir_all(&m).unwrap();
    for (prefix, count) in [("train", n), ("t10k", n)] {
        let mut img = vec![0, 0, 8, 3];
        for d in [count, 28, 28] {
            img.extend_from_slice(&d.to_be_bytes());
        }
        img.extend((0..count * 784).map(|i| (i % 251) as u8));
        std::fs::write(m.join(format!("{prefix}-images-idx3-ubyte")), img).unwrap();
        let mut lab = vec![0, 0, 8, 1];
        lab.extend_from_slice(&count.to_be_bytes());
        lab.extend((0..count).map(|i| (i % 10) as u8));
        std::fs::write(m.join(format!("{prefix}-labels-idx1-ubyte")), lab).unwrap();
    }
}

#[test]
fn model_and_data_shapes_must_fit() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_mnist(dir.path(), 64);
    let out = dir.path().join("run");
    let data = dir.path().to_str().unwrap();
    let o = grawa(&[
        "--dataset",
        "mnist",
        "--data-dir",
        data,
        "--model",
        "vgg16",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_usage_error(&o, "multiples of 32");
    assert!(!out.exists(), "nothing may be written on bad input");
    let o = grawa(&[
        "--dataset",
        "mnist",
        "--data-dir",
        data,
        "--batch-size",
        "128",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_usage_error(&o, "--batch-size 128");
    assert!(!out.exists());
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_synthetic_run_writes_its_outputs_and_refuses_to_overwrite_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let args = [
        "--dataset",
        "synthetic",
        "--model",
        "mlp",
        "--steps",
        "60",
        "--eval-every",
        "30",
        "--out",
        out_s,
        "--json",
        "--quiet",
    ];
    let o = grawa(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stdout = String::from_utf8(o.stdout).unwrap();
    let line: serde_json::Value =
        serde_json::from_str(stdout.trim()).expect("--json prints one JSON line");
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(line, summary);
    for key in [
        "dataset",
        "model",
        "algo",
        "workers",
        "epochs",
        "steps",
        "wall_seconds",
        "images_per_second",
        "train_loss",
        "test_loss",
        "test_accuracy",
    ] {
        assert!(summary.get(key).is_some(), "summary.json lacks {key}");
    }
    assert_eq!(summary["steps"], 60);
    let acc = summary["test_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc) && acc > 0.5, "accuracy {acc}");
    let config = read_json(&out.join("config.json"));
    assert_eq!(config["model"], "mlp");
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let evals = metrics
        .lines()
        .filter(|l| l.contains("\"event\":\"eval\""))
        .count();
    assert_eq!(
        evals, 2,
        "an evaluation at step 30 and one at the end:\n{metrics}"
    );
    assert!(metrics
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));

    let again = grawa(&args);
    assert_usage_error(&again, "already holds a finished run");
}

#[test]
fn config_file_values_sit_under_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("run.toml");
    std::fs::write(
        &cfg,
        "dataset = \"synthetic\"\nmodel = \"mlp\"\nsteps = 5\nlr = 0.05\nquiet = true\n",
    )
    .unwrap();
    let out = dir.path().join("run");
    let o = grawa(&[
        "--config",
        cfg.to_str().unwrap(),
        "--lr",
        "0.02",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let config = read_json(&out.join("config.json"));
    assert_eq!(config["schedule"]["base"], 0.02);
    assert_eq!(config["budget"]["steps"], 5);
    assert_eq!(config["dataset"], "synthetic");

    std::fs::write(&cfg, "learning_rate = 0.1\n").unwrap();
    assert_usage_error(
        &grawa(&["--config", cfg.to_str().unwrap()]),
        "unknown key 'learning_rate'",
    );
    assert_usage_error(
        &grawa(&["--config", "/nonexistent/run.toml"]),
        "/nonexistent/run.toml",
    );
}

#[test]
fn a_diverging_run_exits_1_naming_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = grawa(&[
        "--dataset",
        "synthetic",
        "--model",
        "mlp",
        "--lr",
        "1e9",
        "--lr-schedule",
        "constant",
        "--steps",
        "200",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("diverged: worker 0 at step"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn sigint_stops_at_a_step_boundary_with_exit_130() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_grawa-train"))
        .args([
            "--dataset",
            "synthetic",
            "--model",
            "mlp",
            "--steps",
            "100000000",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until training runs (the first step summary is written), so the handler is installed.
    let metrics = out.join("metrics.jsonl");
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&metrics).map_or(true, |m| m.is_empty()) {
        assert!(started.elapsed().as_secs() < 60, "training did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(
        !out.join("summary.json").exists(),
        "an interrupted run has no summary"
    );
}

/// A CPU build asked for GPUs: exit 2 and one line saying why and how to get a CUDA build.
#[test]
fn gpus_on_a_cpu_build_exit_2_with_the_reason() {
    for args in [&["--gpus", "1"][..], &["--gpu-ids", "2,3"][..]] {
        let o = grawa(args);
        assert_usage_error(&o, "cuda");
        assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
    }
    assert_usage_error(&grawa(&["--gpus", "0"]), "--gpus 0");
}

/// `--round nccl` moves GPU buffers: on the CPU it is exit 2 naming the flag and what it needs;
/// an unknown transport names the choices.
#[test]
fn round_nccl_without_gpus_and_unknown_transports_exit_2() {
    let o = grawa(&["--round", "nccl"]);
    assert_usage_error(&o, "--round nccl");
    assert!(stderr(&o).contains("--gpus"), "{}", stderr(&o));
    let o = grawa(&["--round", "fast"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("hub or nccl"), "{}", stderr(&o));
}

/// Started by an MPI launcher (seen through its environment: OpenMPI sets OMPI_COMM_WORLD_SIZE)
/// without the `mpi` feature, the binary refuses instead of being one of R separate runs writing
/// into one folder.
#[cfg(not(feature = "mpi"))]
#[test]
fn a_build_without_mpi_refuses_to_be_one_of_several_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_grawa-train"))
        .args(["--dataset", "synthetic", "--steps", "1", "--out"])
        .arg(&out)
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .output()
        .unwrap();
    assert_usage_error(&o, "built without the `mpi` feature");
    assert!(!out.exists());
}
