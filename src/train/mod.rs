//! A training run from start to finish: load the data, build one model per worker (all from the
//! same initial point), start the workers and the pulling thread, then render progress and write
//! metrics from their events until they are done.

pub mod budget;
pub mod coordinator;
pub mod eval;
pub use crate::events;
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

use crate::algo::{self, AlgoKind, ScheduleKind};
use crate::checkpoint::{self, Checkpoint, Identity, Layout, WorkerSave};
use crate::config::RunConfig;
use crate::data::seed::derive_seed;
use crate::data::{self, Augment, Normalization, ShardLoader, SyntheticSpec};
use crate::error::panic_message;
use crate::events::Event;
use crate::metrics::{write_json_atomic, MetricsWriter, Summary};
use crate::model::Model;
use crate::optim::Sgd;
use crate::progress::ProgressView;
use crate::round::RoundData;
use crate::{Error, Result};
use budget::StepBudget;
use coordinator::{Coordinator, Resumed};
use eval::{EvalSetup, Evaluator};
use hub::{Shared, ToHub, WorkerLink};
use worker::{Worker, WorkerContext};

/// Step summaries in metrics.jsonl: one per this many steps per worker.
const LOG_EVERY: u64 = 20;

/// One device per worker and one for the pulling thread. On GPUs every worker gets a CUDA device
/// with a stream of its own (workers sharing a GPU then overlap, and candle's per-slice events
/// order their buffers across streams); the pulling thread gets its own stream on the first GPU.
fn open_devices(gpus: &[usize], workers: usize) -> Result<(Vec<Device>, Device)> {
    if gpus.is_empty() {
        return Ok((vec![Device::Cpu; workers], Device::Cpu));
    }
    if gpus.len() != workers {
        return Err(Error::Internal(format!(
            "{} GPU placements for {workers} workers",
            gpus.len()
        )));
    }
    let open = |ordinal: usize| {
        Device::new_cuda_with_stream(ordinal)
            .map_err(|e| Error::usage(format!("GPU {ordinal}: cannot open it: {e}")))
    };
    let per_worker = gpus.iter().map(|&g| open(g)).collect::<Result<Vec<_>>>()?;
    let first = open(gpus[0])?;
    Ok((per_worker, first))
}

/// Refuses an output folder that already holds a run: overwriting it would lose that run.
fn prepare_out_dir(out: &Path, resume: bool) -> Result<()> {
    if resume {
        return Ok(());
    }
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
    /// Per worker: the losses of steps `done + 1 ..` not yet reported, and `done`.
    pending: Vec<Vec<f32>>,
    done: Vec<u64>,
    /// The last window's mean, for an evaluation with no step since the previous one.
    last: f64,
}

impl TrainLossMeter {
    /// Continues from a checkpoint: `steps` are the workers' steps there.
    fn restore(&mut self, saved: &checkpoint::MetricsState, steps: &[u64]) {
        for (w, pending) in saved
            .pending_losses
            .iter()
            .enumerate()
            .take(self.pending.len())
        {
            self.pending[w] = pending.clone();
            self.done[w] = steps[w].saturating_sub(pending.len() as u64);
        }
        self.last = saved.last_train_loss.unwrap_or(f64::NAN);
    }

    fn new(workers: usize, by_step: bool) -> Self {
        Self {
            by_step,
            pending: vec![Vec::new(); workers],
            done: vec![0; workers],
            last: f64::NAN,
        }
    }

    fn observe(&mut self, event: &mut Event) {
        match event {
            Event::Step(s) => self.pending[s.worker].push(s.loss),
            Event::Eval(e) => {
                let m = self.pending.len() as u64;
                let (mut sum, mut count) = (0f64, 0usize);
                for (w, losses) in self.pending.iter_mut().enumerate() {
                    let take = if self.by_step {
                        ((e.total_steps / m).saturating_sub(self.done[w]) as usize)
                            .min(losses.len())
                    } else {
                        losses.len()
                    };
                    sum += losses[..take].iter().map(|&l| l as f64).sum::<f64>();
                    count += take;
                    losses.drain(..take);
                    self.done[w] += take as u64;
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
    // Each worker's device (round-robin over the GPUs asked for), and the pulling thread's: the
    // first GPU, on a stream of its own, where it evaluates. All CPU without GPUs.
    let (devices, device) = open_devices(&cfg.gpus, m)?;
    // Every worker starts from the same point: the same seed builds the same model.
    let models = devices
        .iter()
        .map(|d| Model::new(cfg.model, shape, classes, cfg.seed, d))
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
    let identity = Identity {
        dataset: cfg.dataset.to_string(),
        model: cfg.model.to_string(),
        algo: cfg.algo.kind.to_string(),
        schedule: cfg.algo.schedule.to_string(),
        workers: m,
        batch_size: cfg.batch_size,
        seed: cfg.seed,
    };
    let (param_shapes, buffer_shapes) = (models[0].params.shapes(), models[0].buffers.shapes());
    let buffer_table = models[0].buffers.table().to_vec();
    let layout = Layout {
        params: &table,
        param_shapes: &param_shapes,
        buffers: &buffer_table,
        buffer_shapes: &buffer_shapes,
    };
    let resumed = if cfg.resume {
        Some(load_resume(&cfg.out, &identity, &layout)?)
    } else {
        None
    };
    prepare_out_dir(&cfg.out, cfg.resume)?;
    if !cfg.resume {
        write_json_atomic(&cfg.out.join("config.json"), &cfg)?;
    }

    let mut shared = Shared::new(interrupt::stop_flag(), m);
    if let Some(r) = &resumed {
        let st = &r.state;
        shared
            .total_steps
            .store(st.total_steps, std::sync::atomic::Ordering::SeqCst);
        let elapsed = std::time::Duration::from_secs_f64(st.seconds.max(0.0));
        shared.start = Instant::now()
            .checked_sub(elapsed)
            .unwrap_or_else(Instant::now);
    }
    let shared = Arc::new(shared);
    if cfg.algo.schedule == ScheduleKind::Permits {
        // Opened once, before any worker starts: the first round's permits (what is left of the
        // budget on a resumed run).
        let per_round = m as u64 * plan.tau;
        let done = shared.total_steps.load(std::sync::atomic::Ordering::SeqCst);
        let left = budget
            .max_steps
            .map_or(per_round, |s| (s * m as u64).saturating_sub(done));
        shared.open_permits(per_round.min(left));
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
        let probe_seed = derive_seed(&[cfg.seed, 0x7072_6f62, id as u64]); // "prob"
        let link = WorkerLink {
            to_hub: to_hub.clone(),
            replies: reply_rx,
        };
        let mut worker = Worker::new(id, model, opt, loader, probe_seed, link, ctx.clone())?;
        if let Some(r) = &resumed {
            let save = WorkerSave {
                state: r.state.workers[id].clone(),
                tensors: r.workers[id].clone(),
            };
            worker.restore(&save, &r.anchor, r.state.pending_pull)?;
        }
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
                        Error::Internal(format!("worker {id} panicked: {}", panic_message(&*panic)))
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
    let mut policy = algo::build(&cfg.algo, m, table.len());
    let mut data = RoundData::new(cfg.algo.kind == AlgoKind::Easgd, &x0);
    if let Some(r) = &resumed {
        let bad = |e: String| Error::usage(format!("--resume {}: {e}", cfg.out.display()));
        policy.restore(&r.state.algo).map_err(bad)?;
        data.restore(&r.algo_tensors).map_err(bad)?;
    }
    let coordinator = Coordinator {
        schedule: cfg.algo.schedule,
        workers: m,
        policy,
        data,
        table: table.clone(),
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
        checkpoint_every: cfg.checkpoint_every,
        identity,
        resumed: resumed.as_ref().map(|r| Resumed {
            rounds: r.state.rounds,
            next_eval: r.state.next_eval,
            anchor: r.anchor.clone(),
        }),
        watchdog: cfg.watchdog,
    };
    let hub_threads = pool(cfg.threads, "pulling")?;
    let hub = std::thread::Builder::new()
        .name("pulling".into())
        .spawn(move || {
            let events = coordinator.events.clone();
            let result = hub_threads.install(|| coordinator.run());
            if result.is_err() {
                let _ = events.send(Event::Fatal);
            }
            result
        })
        .map_err(|e| Error::Internal(format!("cannot start the pulling thread: {e}")))?;

    let mut metrics = match &resumed {
        Some(r) => MetricsWriter::resume(
            &cfg.out,
            m,
            LOG_EVERY,
            r.state.metrics.bytes,
            &r.state.metrics.windows,
        )?,
        None => MetricsWriter::create(&cfg.out, m, LOG_EVERY)?,
    };
    let mut view = ProgressView::new(cfg.quiet, m, budget.max_steps);
    let mut meter = TrainLossMeter::new(m, cfg.algo.schedule == ScheduleKind::Sync);
    if let Some(r) = &resumed {
        meter.restore(
            &r.state.metrics,
            &r.state.workers.iter().map(|w| w.step).collect::<Vec<_>>(),
        );
    }
    let mut train_loss = f64::NAN;
    // The channel closes when the workers and the pulling thread have all returned.
    for mut event in events.iter() {
        if let Event::Checkpoint(ckpt) = event {
            save_checkpoint(*ckpt, &mut metrics, &meter, &cfg, &layout)?;
            continue;
        }
        if let Event::Fatal = event {
            break;
        }
        meter.observe(&mut event);
        if let Event::Eval(e) = &event {
            train_loss = e.train_loss;
        }
        metrics.record(&event)?;
        view.update(&event);
    }
    view.finish();
    metrics.flush()?;
    // The pulling thread first: after a failure a stuck worker may never return, and is not
    // waited for (the process ends with the error).
    let outcome = hub.join().map_err(|p| {
        Error::Internal(format!(
            "the pulling thread panicked: {}",
            panic_message(&*p)
        ))
    })??;
    for h in handles {
        let _ = h.join();
    }

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
    crate::report::write_metrics_csv(&cfg.out)?;
    if cfg.flatness {
        let opts = crate::flatness::FlatnessOptions::default();
        let r = crate::flatness_cmd::measure_run(&cfg.out, Some(&cfg.data_dir), &opts)?;
        if !cfg.quiet {
            eprintln!(
                "flatness: lambda_max {:.4}, ritz_sum {:.4}, hutchinson_trace {:.4} -> {}",
                r.lambda_max,
                r.ritz_sum,
                r.hutchinson_trace,
                cfg.out.join("flatness.json").display()
            );
        }
    }
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

/// Completes a checkpoint with the main thread's metrics state and writes it.
fn save_checkpoint(
    mut ckpt: Checkpoint,
    metrics: &mut MetricsWriter,
    meter: &TrainLossMeter,
    cfg: &RunConfig,
    layout: &Layout,
) -> Result<()> {
    let (bytes, windows) = metrics.position()?;
    ckpt.state.metrics = checkpoint::MetricsState {
        bytes,
        pending_losses: meter.pending.clone(),
        last_train_loss: meter.last.is_finite().then_some(meter.last),
        windows,
    };
    checkpoint::write(&cfg.out, &ckpt, layout, cfg.keep)?;
    Ok(())
}

/// Reads the newest checkpoint of the run in `out` and checks that this run may continue it.
fn load_resume(out: &Path, identity: &Identity, layout: &Layout) -> Result<Checkpoint> {
    let where_ = out.display();
    let Some(dir) = checkpoint::list(out)?.pop() else {
        return Err(Error::usage(format!(
            "--resume {where_}: no complete checkpoint in {where_}/checkpoints"
        )));
    };
    let ckpt = checkpoint::read(&dir, layout)?;
    let saved = &ckpt.state.identity;
    if saved != identity {
        return Err(Error::usage(format!(
            "--resume {where_}: the checkpoint is of {} {} x{} {} on {} (batch {}, seed {}); this run asks for {} {} x{} {} on {} (batch {}, seed {})",
            saved.algo, saved.schedule, saved.workers, saved.model, saved.dataset, saved.batch_size, saved.seed,
            identity.algo, identity.schedule, identity.workers, identity.model, identity.dataset, identity.batch_size, identity.seed
        )));
    }
    if ckpt.state.finished {
        return Err(Error::usage(format!(
            "--resume {where_}: that run has finished (see its summary.json)"
        )));
    }
    if ckpt.workers.len() != identity.workers {
        return Err(Error::usage(format!(
            "--resume {where_}: the checkpoint holds {} workers",
            ckpt.workers.len()
        )));
    }
    Ok(ckpt)
}
