//! Training on a GPU (feature `cuda`), checked against the CPU, the reference. Skipped, with the
//! reason printed, where the driver sees no GPU; in a build without `cuda` there is nothing here.
//! Carry the binary from `cargo test --release --features cuda --test gpu_train --no-run` to a GPU
//! machine to run it there.
//!
//! - The flat view: a model built on the GPU holds exactly the CPU model's initial values (both
//!   are written from the same seeded host draw), and write_flat/read_flat round-trip bit for bit.
//! - The worker's step: its parameter store on the GPU (the gradient from autograd packed, the
//!   fused `sgd_step` kernel, the parameters written back; or a step from a host gradient, an
//!   all-reduced one from across ranks) equals `optim::sgd_update` on the host bit for bit
//!   (kernels/sgd.cu is compiled without FMA contraction).
//! - Whole runs: `--gpus 1 --workers 4` with mgrawa, lgrawa and ddp on synthetic data finish with
//!   accuracy far above chance and close to the same run on the CPU.
#![cfg(feature = "cuda")]

use std::path::Path;

use candle_core::{Device, Tensor};
use grawa_train::buffer::Flat;
use grawa_train::cli::parse_from;
use grawa_train::config::RunConfig;
use grawa_train::data::ImageShape;
use grawa_train::model::{Model, ModelKind};
use grawa_train::optim::{flat_grads, sgd_update, SgdConfig};
use grawa_train::train::worker::{FlatStore, Gradient, ParamStore};

/// The first GPU, or why there is none (the test then passes without checking anything).
fn gpu() -> Option<Device> {
    match grawa_train::gpus::gpu_count() {
        Ok(0) => eprintln!("skipped: the CUDA driver sees no GPU"),
        Err(reason) => eprintln!("skipped: {reason}"),
        Ok(_) => return Some(Device::new_cuda_with_stream(0).expect("GPU 0 opens")),
    }
    None
}

const MNIST: ImageShape = ImageShape {
    channels: 1,
    height: 28,
    width: 28,
};

const CFG: SgdConfig = SgdConfig {
    momentum: 0.9,
    nesterov: true,
    weight_decay: 5e-4,
};

#[test]
fn a_model_on_the_gpu_starts_where_the_cpu_model_does_and_round_trips() {
    let Some(dev) = gpu() else { return };
    for kind in [ModelKind::Mlp, ModelKind::Cnn] {
        let cpu = Model::new(kind, MNIST, 10, 3, &Device::Cpu).unwrap();
        let gpu = Model::new(kind, MNIST, 10, 3, &dev).unwrap();
        let x0 = cpu.params.to_flat().unwrap();
        assert_eq!(
            gpu.params.to_flat().unwrap(),
            x0,
            "{kind}: initial parameters"
        );
        assert_eq!(
            gpu.buffers.to_flat().unwrap(),
            cpu.buffers.to_flat().unwrap(),
            "{kind}: BatchNorm buffers"
        );
        let moved: Vec<f32> = x0
            .iter()
            .enumerate()
            .map(|(i, v)| v + i as f32 * 1e-3)
            .collect();
        gpu.params.write_flat(&moved).unwrap();
        assert_eq!(
            gpu.params.to_flat().unwrap(),
            moved,
            "{kind}: write then read"
        );
    }
}

#[test]
fn the_store_steps_on_the_gpu_exactly_as_the_host_twin() {
    let Some(dev) = gpu() else { return };
    let model = Model::new(ModelKind::Cnn, MNIST, 10, 5, &dev).unwrap();
    let params = &model.params;
    let mut store = FlatStore::open(&model, CFG).unwrap();
    let mut x = params.to_flat().unwrap();
    let mut buf = vec![0f32; params.len()];
    let images = Tensor::randn(0f32, 1.0, (8, 1, 28, 28), &dev).unwrap();
    let labels = Tensor::new(&[0u32, 1, 2, 3, 4, 5, 6, 7], &dev).unwrap();
    for step in 0..3 {
        // Autograd on the GPU, packed, the kernel, written back.
        let logits = model.forward_t(&images, true).unwrap();
        let loss = candle_nn::loss::cross_entropy(&logits, &labels).unwrap();
        let grads = loss.backward().unwrap();
        let mut g = vec![0f32; params.len()];
        flat_grads(params, &grads, &mut g).unwrap();
        store.step(Gradient::Backward(&grads), 0.05).unwrap();
        store.sync().unwrap();
        sgd_update(&mut x, &g, &mut buf, 0.05, &CFG);
        assert_eq!(params.to_flat().unwrap(), x, "the packed step, step {step}");
        assert_eq!(store.save().unwrap().1, buf, "momentum, step {step}");
        // A host gradient (an all-reduced one from across ranks), brought to the GPU.
        let h: Vec<f32> = (0..params.len())
            .map(|i| ((i % 17) as f32 - 8.0) * 1e-3)
            .collect();
        store
            .step(Gradient::Given(&Flat::Host(h.clone())), 0.1)
            .unwrap();
        store.sync().unwrap();
        sgd_update(&mut x, &h, &mut buf, 0.1, &CFG);
        assert_eq!(params.to_flat().unwrap(), x, "a host gradient, step {step}");
    }
    // A restored state reaches the GPU.
    let restored: Vec<f32> = (0..params.len()).map(|i| i as f32 * 1e-4).collect();
    store.load(x.clone(), restored.clone()).unwrap();
    assert_eq!(store.save().unwrap(), (x, restored));
}

fn config(algo: &str, gpus: bool, out: &Path) -> RunConfig {
    let mut args: Vec<String> = [
        "grawa-train",
        "--dataset=synthetic",
        "--model=mlp",
        "--synthetic-train=4000",
        "--synthetic-test=500",
        "--workers=4",
        "--batch-size=32",
        "--lr=0.05",
        "--steps=120",
        "--seed=1",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--algo={algo}"));
    if algo != "ddp" {
        args.push("--tau=8".into());
    }
    if gpus {
        args.push("--gpus=1".into());
    }
    args.push(format!("--out={}", out.display()));
    RunConfig::from_args(&parse_from(args).expect("flags parse")).expect("flags are valid")
}

#[test]
fn four_workers_on_one_gpu_learn_like_four_on_the_cpu() {
    if gpu().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for algo in ["mgrawa", "lgrawa", "ddp"] {
        let on_gpu = config(algo, true, &dir.path().join(format!("{algo}-gpu")));
        assert_eq!(on_gpu.gpus, vec![0, 0, 0, 0]);
        let gpu = grawa_train::train::run(on_gpu).expect("the GPU run succeeds");
        let cpu = grawa_train::train::run(config(algo, false, &dir.path().join(algo)))
            .expect("the CPU run succeeds");
        eprintln!(
            "{algo}: GPU accuracy {:.4} loss {:.4}, CPU accuracy {:.4} loss {:.4}",
            gpu.test_accuracy, gpu.test_loss, cpu.test_accuracy, cpu.test_loss
        );
        assert_eq!(gpu.local_steps_total, cpu.local_steps_total, "{algo}");
        assert_eq!(gpu.rounds, cpu.rounds, "{algo}");
        // Ten classes: chance is 0.1.
        assert!(
            gpu.test_accuracy > 0.5,
            "{algo}: GPU accuracy {}",
            gpu.test_accuracy
        );
        // The same run up to float rounding (cuBLAS sums in another order than the CPU).
        assert!(
            (gpu.test_accuracy - cpu.test_accuracy).abs() < 0.05,
            "{algo}: GPU {} vs CPU {}",
            gpu.test_accuracy,
            cpu.test_accuracy
        );
    }
}
