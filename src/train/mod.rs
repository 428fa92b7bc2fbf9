//! A training run from start to finish: load data, build the model, start the worker, then render
//! progress and write metrics from the worker's events until it is done.

pub mod budget;
pub mod events;
pub mod interrupt;
pub mod step;
pub mod worker;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use candle_core::Device;

use crate::config::RunConfig;
use crate::data::{self, Augment, Normalization, ShardLoader, SyntheticSpec};
use crate::metrics::{write_json_atomic, MetricsWriter, Summary};
use crate::model::Model;
use crate::optim::Sgd;
use crate::progress::ProgressView;
use crate::{Error, Result};
use budget::StepBudget;
use worker::Worker;

/// Step summaries in metrics.jsonl: one per this many steps per worker.
const LOG_EVERY: u64 = 20;

/// Refuses an output folder that already holds a run: overwriting it would lose that run.
fn prepare_out_dir(out: &Path) -> Result<()> {
    for name in ["summary.json", "metrics.jsonl"] {
        if out.join(name).exists() {
            return Err(Error::usage(format!(
                "--out {}: already holds a run ({name}); choose another folder or delete it",
                out.display()
            )));
        }
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))
}

/// Runs training as configured and returns the summary (also written to `summary.json`).
pub fn run(cfg: RunConfig) -> Result<Summary> {
    let wall = Instant::now();
    let device = Device::Cpu;
    let synthetic = SyntheticSpec {
        shape: cfg.model.synthetic_shape(),
        num_classes: 10,
        train: cfg.synthetic_train,
        test: cfg.synthetic_test,
        seed: cfg.seed,
    };
    // Everything that can fail on user input happens before the output folder is created.
    let split = data::load(cfg.dataset, &cfg.data_dir, &synthetic)?;
    cfg.model.check_input(split.train.shape).map_err(|why| {
        Error::usage(format!(
            "--model {} with --dataset {}: {why}",
            cfg.model, cfg.dataset
        ))
    })?;
    if split.train.len() < cfg.batch_size {
        return Err(Error::usage(format!(
            "--batch-size {}: the training set has only {} images",
            cfg.batch_size,
            split.train.len()
        )));
    }
    let model = Model::new(
        cfg.model,
        split.train.shape,
        split.train.num_classes,
        cfg.seed,
        &device,
    )?;
    let norm = Normalization::for_kind(cfg.dataset);
    let test = Arc::new(split.test);
    let loader = ShardLoader::try_new(
        Arc::new(split.train),
        norm.clone(),
        Augment::for_kind(cfg.dataset),
        cfg.batch_size,
        0,
        1,
        cfg.seed,
    )?;
    prepare_out_dir(&cfg.out)?;
    write_json_atomic(&cfg.out.join("config.json"), &cfg)?;

    let budget = StepBudget::new(&cfg.budget, loader.batches_per_epoch());
    let opt = Sgd::new(cfg.sgd, &model.params);
    let worker = Worker {
        id: 0,
        model,
        opt,
        eval_every: cfg.eval_every.unwrap_or(loader.batches_per_epoch() as u64),
        loader,
        schedule: cfg.schedule.clone(),
        budget,
        test,
        norm,
        eval_batch_size: cfg.eval_batch_size,
    };

    let stop = interrupt::stop_flag();
    let (tx, rx) = crossbeam::channel::unbounded();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads)
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the worker's thread pool: {e}")))?;
    let mut metrics = MetricsWriter::create(&cfg.out, cfg.workers, LOG_EVERY)?;
    let mut view = ProgressView::new(cfg.quiet, cfg.workers, budget.max_steps);
    let handle = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("worker-0".into())
            .spawn(move || pool.install(|| worker.run(&tx, &stop)))
            .map_err(|e| Error::Internal(format!("cannot start worker thread: {e}")))?
    };
    // The channel closes when the worker returns, ending this loop.
    for event in rx.iter() {
        metrics.record(&event)?;
        view.update(&event);
    }
    view.finish();
    metrics.flush()?;
    let outcome = handle
        .join()
        .map_err(|_| Error::Internal("worker 0 panicked".into()))??;

    let eval = &outcome.final_eval;
    let summary = Summary {
        status: "done".into(),
        dataset: cfg.dataset.to_string(),
        model: cfg.model.to_string(),
        algo: cfg.algo.clone(),
        workers: cfg.workers,
        seed: cfg.seed,
        epochs: outcome.epochs,
        steps: outcome.steps,
        wall_seconds: wall.elapsed().as_secs_f64(),
        train_seconds: outcome.train_seconds,
        images_per_second: outcome.images as f64 / outcome.train_seconds.max(1e-9),
        train_loss: eval.train_loss,
        test_loss: eval.test_loss,
        test_accuracy: eval.test_accuracy,
        out: cfg.out.clone(),
    };
    write_json_atomic(&cfg.out.join("summary.json"), &summary)?;
    if cfg.json {
        println!(
            "{}",
            serde_json::to_string(&summary).map_err(|e| Error::Internal(e.to_string()))?
        );
    }
    if !cfg.quiet {
        eprintln!(
            "test accuracy {:.4}, test loss {:.4}, train loss {:.4} ({} {} on {}, {:.2} epochs, {} steps, {:.1} s, {:.0} img/s) -> {}",
            summary.test_accuracy,
            summary.test_loss,
            summary.train_loss,
            summary.algo,
            summary.model,
            summary.dataset,
            summary.epochs,
            summary.steps,
            summary.wall_seconds,
            summary.images_per_second,
            cfg.out.display()
        );
    }
    Ok(summary)
}
