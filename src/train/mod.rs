//! A training run from start to finish: load the data, build one model per worker (all from the
//! same initial point), start the workers and the pulling thread, then render progress and write
//! metrics from their events until they are done.

pub mod budget;
pub mod coordinator;
pub mod eval;
pub mod events;
pub mod hub;
pub mod interrupt;
pub mod step;
pub mod worker;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use candle_core::Device;
use crossbeam::channel::unbounded;
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::algo::{self, ScheduleKind};
use crate::config::RunConfig;
use crate::data::seed::derive_seed;
use crate::data::{self, Augment, Normalization, ShardLoader, SyntheticSpec};
use crate::metrics::{write_json_atomic, MetricsWriter, Summary};
use crate::model::Model;
use crate::optim::Sgd;
use crate::progress::ProgressView;
use crate::{Error, Result};
use budget::StepBudget;
use coordinator::Coordinator;
use eval::{EvalSetup, Evaluator};
use events::Event;
use hub::{Shared, ToHub, WorkerLink};
use worker::{Worker, WorkerContext};

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

fn pool(threads: usize, name: &str) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the {name} thread pool: {e}")))
}

/// Mean training loss between evaluations, over every worker's steps. Under `sync` the window is
/// cut by step number (an evaluation at a round covers each worker's steps up to that round), so
/// the figure does not depend on when events arrive; otherwise by arrival.
struct TrainLossMeter {
    by_step: bool,
    /// Per worker: every step's loss, and where the last window ended.
    losses: Vec<Vec<f32>>,
    done: Vec<usize>,
    /// The last window's mean, for an evaluation with no step since the previous one.
    last: f64,
}

impl TrainLossMeter {
    fn new(workers: usize, by_step: bool) -> Self {
        Self {
            by_step,
            losses: vec![Vec::new(); workers],
            done: vec![0; workers],
            last: f64::NAN,
        }
    }

    fn observe(&mut self, event: &mut Event) {
        match event {
            Event::Step(s) => self.losses[s.worker].push(s.loss),
            Event::Eval(e) => {
                let m = self.losses.len() as u64;
                let (mut sum, mut count) = (0f64, 0usize);
                for (w, losses) in self.losses.iter().enumerate() {
                    let upto = if self.by_step {
                        (e.total_steps / m) as usize
                    } else {
                        losses.len()
                    };
                    let upto = upto.min(losses.len()).max(self.done[w]);
                    sum += losses[self.done[w]..upto]
                        .iter()
                        .map(|&l| l as f64)
                        .sum::<f64>();
                    count += upto - self.done[w];
                    self.done[w] = upto;
                }
                if count > 0 {
                    self.last = sum / count as f64;
                }
                e.train_loss = self.last;
            }
            _ => {}
        }
    }
}

/// Runs training as configured and returns the summary (also written to `summary.json`).
pub fn run(cfg: RunConfig) -> Result<Summary> {
    let wall = Instant::now();
    let device = Device::Cpu;
    let m = cfg.workers;
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
    let shard = split.train.len() / m;
    if shard < cfg.batch_size {
        return Err(Error::usage(format!(
            "--batch-size {}: each of the {m} workers' shards has only {shard} of the {} training images",
            cfg.batch_size,
            split.train.len()
        )));
    }
    let (shape, classes) = (split.train.shape, split.train.num_classes);
    let norm = Normalization::for_kind(cfg.dataset);
    let train = Arc::new(split.train);
    let test = Arc::new(split.test);
    let loaders = (0..m)
        .map(|i| {
            ShardLoader::try_new(
                train.clone(),
                norm.clone(),
                Augment::for_kind(cfg.dataset),
                cfg.batch_size,
                i,
                m,
                cfg.seed,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let per_epoch = loaders[0].batches_per_epoch() as u64;
    let budget = StepBudget::new(&cfg.budget, per_epoch as usize);
    let eval_every = cfg.eval_every.unwrap_or(per_epoch);
    let plan = algo::worker_plan(&cfg.algo, eval_every, cfg.batch_size);
    if let Some(s) = cfg.algo.max_staleness {
        if s < plan.tau {
            return Err(Error::usage(format!(
                "--max-staleness {s}: must be at least --tau ({}), or a worker could wait for a snapshot it has not sent",
                plan.tau
            )));
        }
    }
    // Every worker starts from the same point: the same seed builds the same model.
    let models = (0..m)
        .map(|_| Model::new(cfg.model, shape, classes, cfg.seed, &device))
        .collect::<Result<Vec<_>>>()?;
    let x0 = models[0].params.to_flat()?;
    let table = models[0].params.table().to_vec();
    let setup = EvalSetup {
        kind: cfg.model,
        shape,
        num_classes: classes,
        eval_batch_size: cfg.eval_batch_size,
        recal_batches: cfg.bn_recal_batches,
        recal_batch_size: cfg.batch_size,
        seed: cfg.seed,
    };
    let evaluator = Evaluator::new(&setup, train.clone(), test, norm.clone(), &device)?;
    prepare_out_dir(&cfg.out)?;
    write_json_atomic(&cfg.out.join("config.json"), &cfg)?;

    let shared = Arc::new(Shared::new(interrupt::stop_flag(), m));
    if cfg.algo.schedule == ScheduleKind::Permits {
        let per_round = m as u64 * plan.tau;
        shared.open_permits(
            budget
                .max_steps
                .map_or(per_round, |s| per_round.min(s * m as u64)),
        );
    }
    let (to_hub, inbox) = unbounded();
    let (events_tx, events) = unbounded();
    let ctx = Arc::new(WorkerContext {
        workers: m,
        plan: plan.clone(),
        mode: cfg.algo.schedule,
        schedule: cfg.schedule.clone(),
        budget,
        batches_per_epoch: per_epoch,
        max_staleness: cfg.algo.max_staleness,
        train,
        norm,
        events: events_tx.clone(),
        shared: shared.clone(),
        slow: cfg.slow_worker,
    });
    let mut replies = Vec::with_capacity(m);
    let mut handles = Vec::with_capacity(m + 1);
    for (id, (model, loader)) in models.into_iter().zip(loaders).enumerate() {
        let (reply_tx, reply_rx) = unbounded();
        replies.push(reply_tx);
        let opt = Sgd::new(cfg.sgd, &model.params);
        let rng = StdRng::seed_from_u64(derive_seed(&[cfg.seed, 0x7072_6f62, id as u64])); // "prob"
        let link = WorkerLink {
            to_hub: to_hub.clone(),
            replies: reply_rx,
        };
        let worker = Worker::new(id, model, opt, loader, rng, link, ctx.clone())?;
        let report = to_hub.clone();
        let threads = pool((cfg.threads / m).max(1), "worker")?;
        let handle = std::thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || {
                // A failure of any kind reaches the pulling thread, which stops the others: no hang.
                let error = match catch_unwind(AssertUnwindSafe(|| {
                    threads.install(|| worker.run())
                })) {
                    Ok(Ok(())) => return,
                    Ok(Err(e)) => e,
                    Err(panic) => {
                        Error::Internal(format!("worker {id} panicked: {}", panic_message(&panic)))
                    }
                };
                let _ = report.send(ToHub::Failed { worker: id, error });
            })
            .map_err(|e| Error::Internal(format!("cannot start worker thread: {e}")))?;
        handles.push(handle);
    }
    // Only the threads may hold senders: the event loop below ends when they have all returned.
    drop(to_hub);
    drop(ctx);
    let coordinator = Coordinator {
        schedule: cfg.algo.schedule,
        workers: m,
        averaging: algo::build(&cfg.algo, m, table.len(), &x0),
        table,
        inbox,
        replies,
        events: events_tx,
        evaluator,
        shared,
        max_steps: budget.max_steps,
        max_seconds: budget.max_seconds,
        tau: plan.tau,
        eval_every,
        batches_per_epoch: per_epoch,
        eval_workers: cfg.eval_workers,
        x0,
    };
    let hub_threads = pool(cfg.threads, "pulling")?;
    let hub = std::thread::Builder::new()
        .name("pulling".into())
        .spawn(move || hub_threads.install(|| coordinator.run()))
        .map_err(|e| Error::Internal(format!("cannot start the pulling thread: {e}")))?;

    let mut metrics = MetricsWriter::create(&cfg.out, m, LOG_EVERY)?;
    let mut view = ProgressView::new(cfg.quiet, m, budget.max_steps);
    let mut meter = TrainLossMeter::new(m, cfg.algo.schedule == ScheduleKind::Sync);
    let mut train_loss = f64::NAN;
    // The channel closes when the workers and the pulling thread have all returned.
    for mut event in events.iter() {
        meter.observe(&mut event);
        if let Event::Eval(e) = &event {
            train_loss = e.train_loss;
        }
        metrics.record(&event)?;
        view.update(&event);
    }
    view.finish();
    metrics.flush()?;
    for h in handles {
        let _ = h.join();
    }
    let outcome = hub.join().map_err(|p| {
        Error::Internal(format!(
            "the pulling thread panicked: {}",
            panic_message(&p)
        ))
    })??;

    let train_seconds = wall.elapsed().as_secs_f64();
    let eval = &outcome.final_eval;
    let images = outcome.total_steps * cfg.batch_size as u64;
    let summary = Summary {
        status: "done".into(),
        dataset: cfg.dataset.to_string(),
        model: cfg.model.to_string(),
        algo: cfg.algo.kind.to_string(),
        schedule: cfg.algo.schedule.to_string(),
        workers: m,
        seed: cfg.seed,
        epochs: outcome.total_steps as f64 / (m as u64 * per_epoch) as f64,
        steps: outcome.worker_steps.iter().copied().max().unwrap_or(0),
        local_steps_total: outcome.total_steps,
        worker_steps: outcome.worker_steps.clone(),
        rounds: outcome.rounds,
        wall_seconds: wall.elapsed().as_secs_f64(),
        train_seconds,
        images_per_second: images as f64 / train_seconds.max(1e-9),
        train_loss,
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
            "test accuracy {:.4}, test loss {:.4}, train loss {:.4} ({} x{} {} {} on {}, {:.2} epochs, {} rounds, {:.1} s, {:.0} img/s) -> {}",
            summary.test_accuracy,
            summary.test_loss,
            summary.train_loss,
            summary.algo,
            summary.workers,
            summary.schedule,
            summary.model,
            summary.dataset,
            summary.epochs,
            summary.rounds,
            summary.wall_seconds,
            summary.images_per_second,
            cfg.out.display()
        );
    }
    Ok(summary)
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
