//! configs/paper-resnet20-cifar10.toml and scripts/paper-gpus.sh, the authors' recipe for users
//! with GPUs and CIFAR-10, kept from rotting: the script runs every method with the config on the
//! CPU (`--gpus 0`, synthetic 8x8 images, two steps), and each run must have resolved the
//! authors' settings (docs/design.md section 3) from the config and the method's own flags. A
//! release-mode test (a few seconds there; skipped in a debug build).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_grawa-train");

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// f32 settings are recorded as f32 widened to f64.
fn close(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 1e-6)
}

#[test]
fn every_method_resolves_the_authors_recipe() {
    if cfg!(debug_assertions) {
        eprintln!("skipped: a release-mode test (cargo test --release)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("paper");
    let run = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/paper-gpus.sh"))
        .args(["--gpus", "0", "--seeds", "1"])
        .arg(&out)
        .args([
            "--",
            "--dataset",
            "synthetic",
            "--image-size",
            "8",
            "--batch-size",
            "4",
        ])
        .args([
            "--synthetic-train",
            "64",
            "--synthetic-test",
            "16",
            "--steps",
            "2",
        ])
        .args(["--eval-every", "1", "--quiet"])
        .env("GRAWA_BIN", BIN)
        .output()
        .unwrap();
    let log =
        String::from_utf8_lossy(&run.stdout).into_owned() + &String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{log}");

    // (folder, algo, schedule, tau, pull, prox, beta, rho) as the authors give them.
    let methods = [
        (
            "mgrawa-async-s1",
            "mgrawa",
            "async",
            Some(32),
            Some(0.5),
            Some(0.01),
            None,
            None,
        ),
        (
            "lgrawa-async-s1",
            "lgrawa",
            "async",
            Some(32),
            Some(0.5),
            Some(0.01),
            None,
            None,
        ),
        (
            "easgd-s1",
            "easgd",
            "sync",
            Some(4),
            None,
            None,
            Some(0.1),
            None,
        ),
        (
            "lsgd-s1",
            "lsgd",
            "sync",
            Some(4),
            Some(0.1),
            Some(0.1),
            None,
            None,
        ),
        (
            "local-sgd-s1",
            "local-sgd",
            "sync",
            Some(32),
            None,
            None,
            None,
            None,
        ),
        ("ddp-s1", "ddp", "sync", None, None, None, None, None),
        (
            "ddp-sam-s1",
            "ddp-sam",
            "sync",
            None,
            None,
            None,
            None,
            Some(0.05),
        ),
    ];
    for (name, algo, schedule, tau, pull, prox, beta, rho) in methods {
        let dir = out.join("accuracy/resnet20-cifar10").join(name);
        assert!(
            dir.join("summary.json").is_file(),
            "{name} unfinished:\n{log}"
        );
        let c = json(&dir.join("config.json"));
        // From the config file: the model, workers, SGD and its decay, the budget.
        assert_eq!(c["model"], "resnet20", "{name}");
        assert_eq!(c["workers"], 4, "{name}");
        assert!(
            close(&c["schedule"]["base"], 0.1),
            "{name}: {}",
            c["schedule"]
        );
        assert_eq!(c["schedule"]["decay"]["kind"], "step");
        assert_eq!(
            c["schedule"]["decay"]["milestones"],
            serde_json::json!([500.0])
        );
        assert!(close(&c["schedule"]["decay"]["gamma"], 0.1));
        assert!(close(&c["sgd"]["momentum"], 0.9), "{name}: {}", c["sgd"]);
        assert_eq!(c["sgd"]["nesterov"], false, "{name}");
        assert!(close(&c["budget"]["minutes"], 15.0), "{name}");
        // The method's own settings.
        let a = &c["algo"];
        assert_eq!(a["kind"], algo);
        assert_eq!(a["schedule"], schedule, "{name}");
        let same = |key: &str, want: Option<f64>| match want {
            Some(w) => assert!(close(&a[key], w), "{name}: {key} {}", a[key]),
            None => assert!(a[key].is_null(), "{name}: {key} {}", a[key]),
        };
        same("tau", tau.map(f64::from));
        same("pull", pull);
        same("prox", prox);
        same("beta", beta);
        same("rho", rho);
    }
    let doc = std::fs::read_to_string(out.join("reproduction.md")).expect("the report");
    assert!(doc.contains("### resnet20-cifar10"), "{doc}");
}
