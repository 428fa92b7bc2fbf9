//! The regime's flags end to end: `--link`, `--worker-speed`, `--eval-every 10s` and `--val-split`
//! refuse bad values by name (exit 2, nothing written), are documented in `--help`, and are
//! recorded in `config.json` (with the run's provenance) only when given; a folder data set's own
//! `val/` and `--val-split` are refused together.

mod run_support;

use std::path::Path;
use std::process::Output;

use run_support::{json as read_json, run_bin};

fn grawa(args: &[&str]) -> Output {
    run_bin(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A tiny synthetic run's flags, writing to `out`.
fn tiny(out: &str) -> Vec<&str> {
    vec![
        "--dataset",
        "synthetic",
        "--model",
        "mlp",
        "--synthetic-train",
        "512",
        "--synthetic-test",
        "128",
        "--batch-size",
        "16",
        "--threads",
        "1",
        "--quiet",
        "--out",
        out,
    ]
}

#[test]
fn bad_regime_values_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = out.to_str().unwrap();
    let cases: [(&[&str], &str); 16] = [
        (&["--link", "10Gbps,25us"], "--link"),
        (&["--link", "10Gbps,25us"], "bandwidth '10Gbps'"),
        (&["--link", "0GB/s,1us"], "bandwidth '0GB/s'"),
        (&["--link", "1GB/s,-1us"], "latency '-1us'"),
        (
            &["--link", "ethernet"],
            "10gbe, 100gbe, hdr-ib, pcie4-x16, nvlink4",
        ),
        (
            &["--workers", "2", "--worker-speed", "1"],
            "--worker-speed 1: 1 given for 2 workers",
        ),
        (
            &["--workers", "2", "--worker-speed", "1,0"],
            "--worker-speed 0: expected a speed in (0, 1]",
        ),
        (
            &["--workers", "2", "--worker-speed", "1,1.5"],
            "--worker-speed 1.5",
        ),
        (
            &["--workers", "2", "--worker-speed", "1,NaN"],
            "--worker-speed NaN",
        ),
        (
            &["--workers", "2", "--worker-speed", "1,-0.5"],
            "--worker-speed -0.5",
        ),
        (
            &["--workers", "2", "--worker-speed", "1,fast"],
            "--worker-speed",
        ),
        (&["--eval-every", "0s"], "--eval-every 0s"),
        (&["--eval-every", "ten"], "--eval-every ten"),
        (&["--val-split", "0"], "--val-split 0"),
        // 512 images over 2 workers: 256 each; holding 250 out leaves 6 < a batch of 16.
        (&["--workers", "2", "--val-split", "250"], "--val-split 250"),
        (&["--val-split", "many"], "--val-split"),
    ];
    for (extra, needle) in cases {
        let mut args = tiny(o);
        args.extend_from_slice(extra);
        let r = grawa(&args);
        assert_eq!(r.status.code(), Some(2), "{extra:?}: {}", stderr(&r));
        assert!(
            stderr(&r).contains(needle),
            "{extra:?}: want '{needle}' in {}",
            stderr(&r)
        );
        assert!(!stderr(&r).contains("panicked"), "{}", stderr(&r));
        assert!(!out.exists(), "{extra:?} wrote {}", out.display());
    }
}

#[test]
fn help_documents_the_link_presets_and_the_regime_flags() {
    let o = grawa(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let help = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "--link",
        "10gbe: 1.25 GB/s, 20 us",
        "100gbe: 12.5 GB/s, 2.7 us",
        "hdr-ib: 25 GB/s, 2.7 us",
        "pcie4-x16: 31.508 GB/s, 1 us",
        "nvlink4: 450 GB/s, 0.6 us",
        "--worker-speed",
        "--val-split",
        "10s, 2m, 1h",
    ] {
        assert!(help.contains(needle), "--help lacks '{needle}'");
    }
}

#[test]
fn config_records_the_regime_and_the_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut args = tiny(out.to_str().unwrap());
    args.extend_from_slice(&[
        "--workers",
        "2",
        "--algo",
        "local-sgd",
        "--steps",
        "8",
        "--tau",
        "4",
        "--link",
        "10gbe",
        "--worker-speed",
        "1,0.5",
        "--val-split",
        "16",
        "--eval-every",
        "2m",
    ]);
    let o = grawa(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let c = read_json(&out.join("config.json"));
    assert_eq!(c["link"]["bandwidth_bytes_per_s"], 1.25e9);
    assert_eq!(c["link"]["latency_s"], 2e-5);
    assert_eq!(c["link"]["preset"], "10gbe");
    assert_eq!(c["worker_speed"], serde_json::json!([1.0, 0.5]));
    assert_eq!(c["val_split"], 16);
    assert_eq!(c["eval_every_seconds"], 120.0);
    let p = &c["provenance"];
    let commit = p["commit"].as_str().unwrap();
    let hex = commit.trim_end_matches("-dirty");
    assert!(
        commit == "unknown" || (hex.len() == 40 && hex.chars().all(|c| c.is_ascii_hexdigit())),
        "commit {commit}"
    );
    assert!(p["cores"].as_u64().unwrap() >= 1);
    assert!(!p["cpu"].as_str().unwrap().is_empty());
    if Path::new("/proc/loadavg").exists() {
        assert_eq!(p["load_average"].as_array().unwrap().len(), 3);
    }
    if !cfg!(feature = "cuda") {
        assert_eq!(p["gpus"], serde_json::json!([]));
    }
    // A custom link has no preset.
    let out2 = dir.path().join("custom");
    let mut args = tiny(out2.to_str().unwrap());
    args.extend_from_slice(&["--steps", "2", "--link", "25GB/s,2us"]);
    let o = grawa(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let link = &read_json(&out2.join("config.json"))["link"];
    assert_eq!(link["bandwidth_bytes_per_s"], 25e9);
    assert_eq!(link["latency_s"], 2e-6);
    assert!(link.get("preset").is_none(), "{link}");
}

#[test]
fn without_the_flags_nothing_new_is_written_but_the_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut args = tiny(out.to_str().unwrap());
    args.extend_from_slice(&["--steps", "4", "--eval-every", "2"]);
    let o = grawa(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let c = read_json(&out.join("config.json"));
    for key in ["link", "worker_speed", "val_split", "eval_every_seconds"] {
        assert!(c.get(key).is_none(), "config.json has {key}: {}", c[key]);
    }
    assert_eq!(c["eval_every"], 2);
    assert!(c.get("provenance").is_some());
    let summary = read_json(&out.join("summary.json"));
    assert!(summary.get("val_accuracy").is_none() && summary.get("val_loss").is_none());
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert!(!metrics.contains("val_"), "{metrics}");
}

/// A folder's own val/ and --val-split both fill the one validation slot: asked for together,
/// the run is refused (exit 2, naming both) before anything is written.
#[test]
fn a_val_folder_and_val_split_are_refused_together() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("images");
    for (split, n) in [("train", 8), ("test", 2), ("val", 2)] {
        let dir = root.join(split).join("x");
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..n {
            let img = image::RgbImage::from_pixel(8, 8, image::Rgb([i as u8 * 20, 90, 160]));
            img.save(dir.join(format!("{i}.png"))).unwrap();
        }
    }
    let out = tmp.path().join("run");
    let o = grawa(&[
        "--dataset",
        "folder",
        "--data-dir",
        root.to_str().unwrap(),
        "--model",
        "mlp",
        "--image-size",
        "8",
        "--batch-size",
        "1",
        "--steps",
        "1",
        "--val-split",
        "2",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let val = root.join("val");
    assert!(
        err.contains("--val-split 2") && err.contains(&*val.to_string_lossy()),
        "{err}"
    );
    assert!(!out.exists(), "no run folder");
}
