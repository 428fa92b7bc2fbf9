//! `grawa-train bench` end to end on the MLP (small and fast), and the analytic FLOP counts
//! against hand counts and against the models' real parameter counts.

use std::process::{Command, Output};

use candle_core::Device;
use grawa_train::bench::flops::{forward_flops, layers, train_flops, Layer};
use grawa_train::data::ImageShape;
use grawa_train::model::{Model, ModelKind};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_grawa-train"))
        .arg("bench")
        .args(args)
        .output()
        .expect("binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_line(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "stderr: {}", stderr(o));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {out}");
    serde_json::from_str(lines[0]).expect("valid JSON")
}

const SMALL: [&str; 10] = [
    "--model",
    "mlp",
    "--batch",
    "8",
    "--warmup",
    "1",
    "--windows",
    "2",
    "--steps",
    "2",
];

#[test]
fn json_line_holds_the_keys() {
    let v = json_line(&bench(
        &[&SMALL[..], &["--threads", "1", "--json"]].concat(),
    ));
    for key in [
        "model",
        "batch",
        "threads",
        "workers",
        "images_per_second",
        "images_per_second_min",
        "images_per_second_max",
        "fwd_ms",
        "bwd_ms",
        "opt_ms",
        "peak_rss_mb",
        "gflops",
    ] {
        assert!(v.get(key).is_some(), "key {key} missing: {v}");
    }
    assert_eq!(v["model"], "mlp");
    assert_eq!(v["batch"], 8);
    assert_eq!(v["threads"], 1);
    assert_eq!(v["workers"], 1);
    assert_eq!(v["steps"], 4, "2 windows of 2 steps: {v}");
    let ips = v["images_per_second"].as_f64().unwrap();
    let (lo, hi) = (
        v["images_per_second_min"].as_f64().unwrap(),
        v["images_per_second_max"].as_f64().unwrap(),
    );
    assert!(ips > 0.0 && lo <= ips && ips <= hi, "{v}");
    for key in ["fwd_ms", "bwd_ms", "opt_ms"] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key}: {v}");
    }
    if cfg!(target_os = "linux") {
        assert!(v["peak_rss_mb"].as_f64().unwrap() > 1.0, "{v}");
    }
    let flops = v["forward_flops_per_image"].as_u64().unwrap();
    assert_eq!(flops, 2 * (784 * 256 + 256 * 10));
    let gflops = v["gflops"].as_f64().unwrap();
    assert!(
        (gflops - 3.0 * flops as f64 * ips / 1e9).abs() <= 1e-9 * gflops.max(1.0),
        "{v}"
    );
}

#[test]
fn several_workers_count_together() {
    let v = json_line(&bench(
        &[&SMALL[..], &["--threads", "2", "--workers", "2", "--json"]].concat(),
    ));
    assert_eq!(v["workers"], 2);
    assert_eq!(v["steps"], 8, "2 workers x 2 windows x 2 steps: {v}");
    assert!(v["images_per_second"].as_f64().unwrap() > 0.0, "{v}");
}

#[test]
fn time_windows_and_the_table() {
    let o = bench(&[
        "--model",
        "mlp",
        "--batch",
        "8",
        "--warmup",
        "1",
        "--windows",
        "2",
        "--window-secs",
        "0.05",
    ]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "model mlp",
        "images/s",
        "forward",
        "backward",
        "optimizer",
        "peak RSS",
        "GFLOP/s",
    ] {
        assert!(out.contains(needle), "'{needle}' missing from:\n{out}");
    }
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    for (args, needle) in [
        (vec!["--batch", "0"], "--batch"),
        (vec!["--threads", "0"], "--threads"),
        (vec!["--workers", "0"], "--workers"),
        (vec!["--windows", "0"], "--windows"),
        (vec!["--steps", "0"], "--steps"),
        (vec!["--window-secs", "0"], "--window-secs"),
        (vec!["--window-secs", "abc"], "--window-secs"),
        (vec!["--batch", "x"], "--batch"),
        (vec!["--model", "resnet50"], "--model"),
        (vec!["--steps", "2", "--window-secs", "1"], "--steps"),
        (vec!["--no-such-flag"], "--no-such-flag"),
    ] {
        let o = bench(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line: {err}"
        );
        assert!(
            err.contains(needle),
            "{args:?}: expected '{needle}' in: {err}"
        );
    }
}

#[test]
fn help_states_the_flop_convention() {
    let o = bench(&["--help"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("2*Cout*Cin*k*k*Ho*Wo") && out.contains("times 3"),
        "{out}"
    );
}

#[test]
fn mlp_flops_equal_the_hand_count() {
    let shape = ImageShape::new(1, 28, 28);
    assert_eq!(
        train_flops(ModelKind::Mlp, shape, 10),
        (784 * 256 + 256 * 10) * 2 * 3
    );
}

#[test]
fn resnet20_forward_flops_equal_the_hand_count() {
    // conv 3->16 at 32x32; stage 1: 6 convs 16->16 at 32x32; stage 2: 16->32 stride 2, then 5
    // convs 32->32 at 16x16; stage 3: 32->64 stride 2, then 5 convs 64->64 at 8x8; fc 64->10.
    let macs: u64 = 3 * 16 * 9 * 32 * 32
        + 6 * (16 * 16 * 9 * 32 * 32)
        + 16 * 32 * 9 * 16 * 16
        + 5 * (32 * 32 * 9 * 16 * 16)
        + 32 * 64 * 9 * 8 * 8
        + 5 * (64 * 64 * 9 * 8 * 8)
        + 64 * 10;
    assert_eq!(macs, 40_551_040); // ~41 M multiply-accumulates
    let shape = ImageShape::new(3, 32, 32);
    assert_eq!(forward_flops(ModelKind::Resnet20, shape, 10), 2 * macs);
    assert_eq!(train_flops(ModelKind::Resnet20, shape, 10), 6 * macs);
}

/// The layer lists describe the models as built: their weights and biases plus BatchNorm's
/// scale and shift add up to each model's trainable parameter count.
#[test]
fn flop_layers_match_the_built_models() {
    for &kind in ModelKind::all() {
        // Pre-activation networks put their BatchNorms before the convolutions:
        // tests/models_large.rs checks their lists against the models' own BatchNorms.
        if matches!(kind, ModelKind::Wrn16_8 | ModelKind::Densenet121) {
            continue;
        }
        let shape = kind.synthetic_shape();
        let model = Model::new(kind, shape, 10, 0, &Device::Cpu).unwrap();
        let list = layers(kind, shape, 10);
        let bn: usize = if kind == ModelKind::Mlp {
            0
        } else {
            list.iter()
                .map(|l| match l {
                    Layer::Conv { cout, .. } => 2 * cout,
                    Layer::Linear { .. } => 0,
                })
                .sum()
        };
        let counted: usize = list.iter().map(Layer::params).sum::<usize>() + bn;
        assert_eq!(counted, model.params.len(), "{kind}");
    }
}
