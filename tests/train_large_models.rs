//! WRN-16-8 and DenseNet-121 train under every algorithm (two steps of two workers on 8x8
//! synthetic images, batch 2, a round after each), checkpoint, and `flatness` measures a checkpoint of each: the
//! larger networks go through every path the small ones do. Kept cheap: the models are large,
//! the images tiny.

mod run_support;

use grawa_train::metrics::Summary;
use run_support::{json, run, run_bin, run_config};

const ALGOS: [&str; 7] = [
    "lgrawa",
    "mgrawa",
    "ddp",
    "ddp-sam",
    "local-sgd",
    "easgd",
    "lsgd",
];

fn train(model: &str, algo: &str, workers: &str, out: &std::path::Path) -> Summary {
    let flags = [
        "--dataset",
        "synthetic",
        "--image-size",
        "8",
        "--model",
        model,
        "--workers",
        workers,
        "--algo",
        algo,
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--synthetic-train",
        "8",
        "--synthetic-test",
        "8",
        "--eval-batch-size",
        "8",
        "--bn-recal-batches",
        "1",
        "--threads",
        "2",
        "--quiet",
    ];
    let mut flags = flags.to_vec();
    if !["sgd", "ddp", "ddp-sam"].contains(&algo) {
        flags.extend(["--tau", "1"]);
    }
    run(run_config(&flags, out), 300)
}

#[test]
fn the_larger_networks_train_under_every_algorithm() {
    let tmp = tempfile::tempdir().unwrap();
    for model in ["wrn16-8", "densenet121"] {
        let runs = std::iter::once(("sgd", "1")).chain(ALGOS.iter().map(|&a| (a, "2")));
        for (algo, workers) in runs {
            let out = tmp.path().join(format!("{model}-{algo}"));
            let s = train(model, algo, workers, &out);
            assert_eq!(s.steps, 2, "{model} {algo}");
            assert!(
                s.train_loss.is_finite() && s.test_loss.is_finite(),
                "{model} {algo}: {s:?}"
            );
            assert!(
                out.join("checkpoints").is_dir(),
                "{model} {algo}: a final checkpoint"
            );
            let params = json(&out.join("config.json"))["parameters"]
                .as_u64()
                .unwrap();
            assert_eq!(params as usize, s.parameters);
        }
    }
}

/// `flatness --checkpoint` rebuilds the run's model at the run's image size from config.json and
/// reads the checkpoint's tensors into it (WRN at 4x4, one image, one product: the f64 products
/// through the big layers are slow).
#[test]
fn flatness_measures_a_checkpoint_of_a_larger_network() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("wrn");
    let flags = [
        "--dataset",
        "synthetic",
        "--image-size",
        "4",
        "--model",
        "wrn16-8",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--synthetic-train",
        "8",
        "--synthetic-test",
        "4",
        "--bn-recal-batches",
        "1",
        "--threads",
        "2",
        "--quiet",
    ];
    run(run_config(&flags, &out), 300);
    let o = run_bin(
        &[
            "flatness",
            "--checkpoint",
            out.to_str().unwrap(),
            "--iterations",
            "1",
            "--starts",
            "1",
            "--samples",
            "1",
            "--hutchinson",
            "0",
            "--json",
        ]
        .map(String::from),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["parameters"], 10_961_370);
    assert!(r["lambda_max"].as_f64().is_some_and(f64::is_finite), "{r}");
}
