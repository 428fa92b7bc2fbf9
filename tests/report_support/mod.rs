//! Small run folders written by hand for the report tests: every number in them is chosen so the
//! expected tables and means can be worked out on paper (see each test).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// What a fixture run's summary says.
pub struct Fixture {
    pub algo: &'static str,
    pub schedule: &'static str,
    pub seed: u64,
    pub test_accuracy: f64,
    pub test_loss: f64,
    pub wall_seconds: f64,
    pub rounds: u64,
    /// Written to flatness.json when given.
    pub lambda_max: Option<f64>,
}

/// Three workers, two rounds with per-layer weights (2 layers, worker-major), an evaluation after
/// each round, step summaries, a pull, and an event kind the reports do not know.
///
/// Worker means over layers: round 1: w0 (0.2+0.4)/2 = 0.3, w1 (0.3+0.3)/2 = 0.3,
/// w2 (0.5+0.3)/2 = 0.4; round 2: w0 (0.1+0.3)/2 = 0.2, w1 (0.4+0.4)/2 = 0.4, w2 (0.5+0.3)/2 = 0.4.
pub const LGRAWA_METRICS: &str = r#"{"epoch":0.5,"event":"steps","images_per_second":8379.300012915906,"lr":0.09394085563309827,"seconds":0.30551478,"step":20,"train_loss":1.802661344408989,"worker":0}
{"epoch":0.55,"event":"steps","images_per_second":8214.5,"lr":0.09394085563309827,"seconds":0.31165711,"step":20,"train_loss":1.7744956284761428,"worker":1}
{"bytes":4884720,"compute_ms":0.19538,"event":"round","gather_ms":27.967705,"lambda":0.5,"leader":null,"norms":[6.0,91.5,4.25,32.0,2.5,85.0],"round":1,"scatter_ms":0.024536,"seconds":0.463527223,"staleness":0,"total_steps":96,"weights":[0.2,0.4,0.3,0.3,0.5,0.3]}
{"center_accuracy":null,"epoch":1.25,"event":"eval","seconds":0.537576898,"test_accuracy":0.9445,"test_loss":0.2214752361178398,"total_steps":96,"train_loss":1.2685644438800712,"worker_accuracy":[0.91,0.92,0.93]}
{"event":"pull","lag":3,"step":35,"worker":1}
{"event":"checkpoint","round":1,"path":"ckpt-1"}
{"bytes":4884720,"compute_ms":0.17,"event":"round","gather_ms":67.25,"lambda":0.5,"leader":null,"norms":[5.0,98.0,3.25,25.75,5.125,99.5],"round":2,"scatter_ms":2.17,"seconds":0.847318932,"staleness":2,"total_steps":192,"weights":[0.1,0.3,0.4,0.4,0.5,0.3]}
{"center_accuracy":0.95,"epoch":2.5,"event":"eval","seconds":0.895455955,"test_accuracy":0.948,"test_loss":0.15274213254451752,"total_steps":192,"train_loss":0.12038292681487898,"worker_accuracy":null}
"#;

/// Per-worker weights (MGRAWA): three rounds, evaluations after rounds 1 and 3.
pub const MGRAWA_METRICS: &str = r#"{"epoch":0.5,"event":"steps","images_per_second":9000.0,"lr":0.1,"seconds":0.3,"step":20,"train_loss":1.9,"worker":0}
{"bytes":1000,"compute_ms":0.1,"event":"round","gather_ms":1.0,"lambda":0.5,"leader":null,"norms":[1.0,2.0,4.0],"round":1,"scatter_ms":0.1,"seconds":0.4,"staleness":0,"total_steps":90,"weights":[0.5,0.25,0.25]}
{"center_accuracy":null,"epoch":1.0,"event":"eval","seconds":0.5,"test_accuracy":0.80,"test_loss":0.6,"total_steps":90,"train_loss":1.5,"worker_accuracy":null}
{"bytes":1000,"compute_ms":0.1,"event":"round","gather_ms":1.0,"lambda":0.5,"leader":null,"norms":[2.0,2.0,2.0],"round":2,"scatter_ms":0.1,"seconds":0.8,"staleness":0,"total_steps":180,"weights":[0.3333,0.3333,0.3334]}
{"bytes":1000,"compute_ms":0.1,"event":"round","gather_ms":1.0,"lambda":0.5,"leader":null,"norms":[4.0,2.0,1.0],"round":3,"scatter_ms":0.1,"seconds":1.2,"staleness":0,"total_steps":270,"weights":[0.25,0.25,0.5]}
{"center_accuracy":null,"epoch":3.0,"event":"eval","seconds":1.3,"test_accuracy":0.85,"test_loss":0.45,"total_steps":270,"train_loss":0.5,"worker_accuracy":null}
"#;

/// DDP: rounds without weights, so no weights chart.
pub const DDP_METRICS: &str = r#"{"bytes":1000,"compute_ms":0.0,"event":"round","gather_ms":1.0,"lambda":null,"leader":null,"norms":null,"round":1,"scatter_ms":0.1,"seconds":0.5,"staleness":0,"total_steps":60,"weights":null}
{"center_accuracy":null,"epoch":1.0,"event":"eval","seconds":0.6,"test_accuracy":0.9,"test_loss":0.3,"total_steps":60,"train_loss":1.0,"worker_accuracy":null}
"#;

/// Writes a run folder `root/name` with the given summary numbers and `metrics.jsonl` text.
pub fn write_run(root: &Path, name: &str, f: &Fixture, metrics: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let config = serde_json::json!({
        "dataset": "synthetic",
        "model": "mlp",
        "algo": {"kind": f.algo, "schedule": f.schedule, "tau": 32, "pull": 0.5, "future_knob": true},
        "workers": 3,
        "seed": f.seed,
        "out": dir,
    });
    let summary = serde_json::json!({
        "status": "done",
        "dataset": "synthetic",
        "model": "mlp",
        "algo": f.algo,
        "schedule": f.schedule,
        "workers": 3,
        "seed": f.seed,
        "epochs": 2.5,
        "steps": 64,
        "local_steps_total": 192,
        "worker_steps": [64, 64, 64],
        "rounds": f.rounds,
        "wall_seconds": f.wall_seconds,
        "train_seconds": f.wall_seconds - 0.25,
        "images_per_second": 27300.5,
        "train_loss": 0.125,
        "test_loss": f.test_loss,
        "test_accuracy": f.test_accuracy,
        "out": dir,
        "a_field_from_the_future": [1, 2, 3],
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
    std::fs::write(dir.join("metrics.jsonl"), metrics).unwrap();
    if let Some(l) = f.lambda_max {
        let flat = serde_json::json!({"lambda_max": l, "ritz_sum": 2.0 * l, "hutchinson_trace": 3.0 * l, "iterations": 100});
        std::fs::write(dir.join("flatness.json"), flat.to_string()).unwrap();
    }
    dir
}

/// The three runs of the compare and plot tests: LGRAWA seeds 0 and 1 (with flatness), MGRAWA
/// async seed 0 (without), returned in an order that is not the sorted one: [lgrawa s1,
/// mgrawa (async) s0, lgrawa s0].
pub fn three_runs(root: &Path) -> Vec<PathBuf> {
    let l1 = write_run(
        root,
        "b-lgrawa-1",
        &Fixture {
            algo: "lgrawa",
            schedule: "sync",
            seed: 1,
            test_accuracy: 0.94,
            test_loss: 0.20,
            wall_seconds: 14.0,
            rounds: 4,
            lambda_max: Some(10.0),
        },
        LGRAWA_METRICS,
    );
    let m0 = write_run(
        root,
        "a-mgrawa-async-0",
        &Fixture {
            algo: "mgrawa",
            schedule: "async",
            seed: 0,
            test_accuracy: 0.85,
            test_loss: 0.45,
            wall_seconds: 9.5,
            rounds: 7,
            lambda_max: None,
        },
        MGRAWA_METRICS,
    );
    let l0 = write_run(
        root,
        "c-lgrawa-0",
        &Fixture {
            algo: "lgrawa",
            schedule: "sync",
            seed: 0,
            test_accuracy: 0.90,
            test_loss: 0.30,
            wall_seconds: 10.0,
            rounds: 4,
            lambda_max: Some(12.0),
        },
        LGRAWA_METRICS,
    );
    vec![l1, m0, l0]
}

/// A run of the reproduction layout: what `write_repro_run` puts in its folder.
pub struct ReproRun {
    pub algo: &'static str,
    pub schedule: &'static str,
    pub seed: u64,
    pub workers: usize,
    pub tau: u64,
    pub lr: f64,
    /// Final test accuracy; the evaluations reach it along [`CURVE`].
    pub accuracy: f64,
    pub val_accuracy: Option<f64>,
    /// A modelled link (its preset name), with `link_ms` on every round.
    pub link: Option<&'static str>,
    pub worker_speed: Option<Vec<f64>>,
    pub lambda_max: Option<f64>,
}

/// Evaluations at (seconds, fraction of the final accuracy); the budget is one minute.
pub const CURVE: [(f64, f64); 6] = [
    (10.0, 0.5),
    (20.0, 0.9),
    (30.0, 0.97),
    (40.0, 0.99),
    (50.0, 1.0),
    (60.0, 1.0),
];

/// Writes a run folder `root/name` in the form the trainer writes, with the fields of the
/// reproduction regime (link, worker speeds, validation, provenance) when `r` has them.
pub fn write_repro_run(root: &Path, name: &str, r: &ReproRun) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = serde_json::json!({
        "dataset": "synthetic",
        "model": "mlp",
        "algo": {"kind": r.algo, "schedule": r.schedule, "tau": r.tau, "norm_source": "probe", "weight_power": 1.0},
        "workers": r.workers,
        "seed": r.seed,
        "budget": {"epochs": null, "steps": null, "minutes": 1.0},
        "batch_size": 32,
        "schedule": {"base": r.lr, "decay": {"kind": "step", "milestones": [40.0], "unit": "seconds", "gamma": 0.1}, "warmup_steps": 0},
        "eval_every": 128,
        "provenance": {"commit": "abc1234", "cpu": "test cpu", "cores": 2, "load_average": [0.5, 0.4, 0.3], "gpus": []},
    });
    if let Some(l) = r.link {
        config["link"] =
            serde_json::json!({"bandwidth_bytes_per_s": 1.25e9, "latency_s": 25e-6, "preset": l});
    }
    if let Some(s) = &r.worker_speed {
        config["worker_speed"] = serde_json::json!(s);
    }
    let per_step = matches!(r.algo, "ddp" | "ddp-sam");
    let mut metrics = String::new();
    let mut link_total = 0.0;
    for (k, (t, frac)) in CURVE.iter().enumerate() {
        let round = k as u64 + 1;
        let steps = 64 * round * r.workers as u64;
        let link_ms = r.link.map(|_| 250.0);
        link_total += link_ms.unwrap_or(0.0) / 1000.0;
        let mut ev = serde_json::json!({"event": "round", "round": round, "seconds": t - 0.5, "total_steps": steps});
        if let Some(l) = link_ms {
            ev["link_ms"] = serde_json::json!(l);
        }
        metrics.push_str(&format!("{ev}\n"));
        let mut e = serde_json::json!({"event": "eval", "seconds": t, "total_steps": steps, "test_loss": 0.3, "test_accuracy": r.accuracy * frac});
        if let Some(v) = r.val_accuracy {
            e["val_accuracy"] = serde_json::json!(v * frac);
        }
        metrics.push_str(&format!("{e}\n"));
    }
    let mut summary = serde_json::json!({
        "status": "done",
        "dataset": "synthetic",
        "model": "mlp",
        "algo": r.algo,
        "schedule": r.schedule,
        "workers": r.workers,
        "seed": r.seed,
        "steps": 64 * CURVE.len() as u64,
        "rounds": if per_step { 0 } else { CURVE.len() as u64 },
        "wall_seconds": 61.5,
        "train_seconds": 60.0,
        "test_loss": 0.3,
        "test_accuracy": r.accuracy,
        "parameters": 1000,
    });
    if let Some(v) = r.val_accuracy {
        summary["val_accuracy"] = serde_json::json!(v);
    }
    if r.link.is_some() {
        summary["link_seconds"] = serde_json::json!(link_total);
        summary["bytes"] = serde_json::json!(48000);
    }
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
    std::fs::write(dir.join("metrics.jsonl"), metrics).unwrap();
    if let Some(l) = r.lambda_max {
        let flat = serde_json::json!({"lambda_max": l, "ritz_sum": 10.0 * l, "hutchinson_trace": 20.0 * l, "iterations": 10, "starts": 1, "hutchinson": 4, "samples": 64});
        std::fs::write(dir.join("flatness.json"), flat.to_string()).unwrap();
    }
    dir
}

/// A plain run of `write_repro_run`: sync, 4 workers, tau 32, lr 0.05, no link.
pub fn repro_run(algo: &'static str, seed: u64, accuracy: f64) -> ReproRun {
    ReproRun {
        algo,
        schedule: "sync",
        seed,
        workers: 4,
        tau: 32,
        lr: 0.05,
        accuracy,
        val_accuracy: Some(accuracy - 0.01),
        link: Some("10gbe"),
        worker_speed: None,
        lambda_max: Some(10.0 * accuracy),
    }
}
