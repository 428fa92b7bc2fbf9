//! The spawn phase of a run: the transport chosen, the shared state, one thread per worker (each
//! on its own rayon pool, restored from the checkpoint when resuming), and the hub.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{unbounded, Receiver, Sender};

use super::hub::{CheckpointAssembly, EvalSchedule, Hub, Outcome, RoundClock, Watchdog};
use super::interrupt;
use super::messages::{Reply, ToHub, WorkerLink};
use super::setup::{Setup, Shapes};
use super::shared::Shared;
use super::worker::{Worker, WorkerContext};
use crate::algo::{self, AlgoKind, Policy, ScheduleKind};
use crate::buffer::{Flat, FlatPlace, RoundBuffer};
use crate::checkpoint::{Checkpoint, WorkerSave};
use crate::comm::{Exchanges, LinkModel, Wiring};
use crate::config::RunConfig;
use crate::data::seed::derive_seed;
use crate::error::panic_message;
use crate::eval_clock::EvalClock;
use crate::events::Event;
use crate::ranks::{Peers, RankLayout};
use crate::round::RoundData;
use crate::{Error, Result};

/// A run in progress: its threads and the events they send.
pub struct Running {
    /// The hub; it returns how the run ended.
    pub hub: JoinHandle<Result<Outcome>>,
    pub workers: Vec<JoinHandle<()>>,
    pub events: Receiver<Event>,
    pub shapes: Shapes,
    /// The checkpoint a resumed run continued from (the main thread restores its metrics).
    pub resumed: Option<Checkpoint>,
    pub batches_per_epoch: u64,
    pub max_steps: Option<u64>,
    /// Images in the training set (flatness measures at most that many).
    pub train_images: usize,
    /// This process's place among the ranks.
    pub layout: RankLayout,
    pub shared: Arc<Shared>,
}

fn pool(threads: usize, name: &str) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the {name} thread pool: {e}")))
}

/// The state every thread shares, at the start or where a resumed run left off.
fn shared_state(cfg: &RunConfig, s: &Setup, layout: RankLayout) -> Arc<Shared> {
    let m = cfg.workers;
    let mut shared = Shared::new(interrupt::stop_flag(), m);
    if let Some(r) = &s.resumed {
        // The steps of this process's workers: the run's, unless it has other ranks.
        let first = layout.first_worker();
        let own = r.state.workers[first..first + layout.local_workers].iter();
        let local = match layout.ranks {
            1 => r.state.total_steps,
            _ => own.map(|w| w.step).sum(),
        };
        shared.total_steps.store(local, Ordering::SeqCst);
        let elapsed = Duration::from_secs_f64(r.state.seconds.max(0.0));
        shared.start = Instant::now()
            .checked_sub(elapsed)
            .unwrap_or_else(Instant::now);
    }
    if cfg.algo.schedule == ScheduleKind::Permits {
        // Opened once, before any worker starts: the first round's permits (what is left of the
        // budget on a resumed run).
        let per_round = m as u64 * s.plan.tau;
        let done = shared.total_steps.load(Ordering::SeqCst);
        let left = s
            .budget
            .max_steps
            .map_or(per_round, |st| (st * m as u64).saturating_sub(done));
        shared.open_permits(per_round.min(left));
    }
    Arc::new(shared)
}

/// `--eval-every` in seconds: the clock of evaluations, on the run's clock (a resumed run's next
/// one where its checkpoint left it).
fn eval_clock(cfg: &RunConfig, s: &Setup, shared: &Shared) -> Option<Arc<EvalClock>> {
    let every = cfg.eval_every_seconds?;
    let next = s.resumed.as_ref().and_then(|r| r.state.next_eval_seconds);
    Some(Arc::new(EvalClock::new(every, shared.start, next)))
}

/// `--link`: the modelled interconnect, charged by the schedule's exchanges (a resumed run goes
/// on from what its checkpoint had spent).
fn link_model(cfg: &RunConfig, s: &Setup) -> Option<LinkModel> {
    let exchanges = match cfg.algo.schedule {
        ScheduleKind::Async => Exchanges::Center,
        ScheduleKind::Sync | ScheduleKind::Permits => Exchanges::Collective,
    };
    Some(LinkModel {
        link: cfg.link.clone()?,
        exchanges,
        before: s
            .resumed
            .as_ref()
            .and_then(|r| r.state.link)
            .unwrap_or((0.0, 0)),
    })
}

/// `--worker-speed` of this process's workers (empty: all at full speed).
fn local_speeds(cfg: &RunConfig, layout: RankLayout) -> Vec<f64> {
    let first = layout.first_worker();
    cfg.worker_speed
        .get(first..first + layout.local_workers)
        .map_or_else(Vec::new, <[f64]>::to_vec)
}

/// Starts worker `worker`'s thread. A failure of any kind reaches the hub, which stops the
/// others: no hang.
fn spawn_worker(worker: Worker, threads: usize, report: Sender<ToHub>) -> Result<JoinHandle<()>> {
    let id = worker.id;
    let pool = pool(threads, "worker")?;
    std::thread::Builder::new()
        .name(format!("worker-{id}"))
        .spawn(move || {
            let error = match catch_unwind(AssertUnwindSafe(|| pool.install(|| worker.run()))) {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e,
                Err(panic) => {
                    Error::Internal(format!("worker {id} panicked: {}", panic_message(&*panic)))
                }
            };
            let _ = report.send(ToHub::Failed { worker: id, error });
        })
        .map_err(|e| Error::Internal(format!("cannot start worker thread: {e}")))
}

/// Starts every worker of this process and the hub; `peers` are the other ranks of a run across
/// processes (the hub's transport takes them over).
pub fn start(cfg: &RunConfig, mut s: Setup, peers: Option<Box<dyn Peers>>) -> Result<Running> {
    let m = cfg.workers;
    let table = s.shapes.table.clone();
    let mut wiring = Wiring::choose(cfg.round, &cfg.gpus, peers, &table)?;
    let layout = wiring.layout(m);
    wiring.check_same_start(&s.x0)?;
    let shared = shared_state(cfg, &s, layout);
    let link = link_model(cfg, &s);
    let eval_clock = eval_clock(cfg, &s, &shared);
    let (to_hub, inbox) = unbounded();
    let (events_tx, events) = unbounded();
    let ctx = worker_context(cfg, &s, layout, &events_tx, &shared, eval_clock.clone());
    let (workers, replies) = spawn_workers(cfg, &mut s, layout, ctx, to_hub)?;
    let (policy, data, anchor) = round_state(cfg, &s, layout, &wiring.place())?;
    let clock = RoundClock {
        schedule: cfg.algo.schedule,
        workers: m,
        ranks: layout.ranks as u64,
        tau: s.plan.tau,
        max_steps: s.budget.max_steps,
        max_seconds: s.budget.max_seconds,
    };
    let evaluation = EvalSchedule {
        evaluator: s.evaluator,
        every: s.eval_every,
        workers: layout.global_workers(),
        batches_per_epoch: s.batches_per_epoch,
        eval_workers: cfg.eval_workers,
        next: s.resumed.as_ref().map_or(0, |r| r.state.next_eval),
        clock: eval_clock,
    };
    let checkpoints = CheckpointAssembly::new(cfg.checkpoint_every, s.identity, m);
    let (watchdog, shared_hub) = (Watchdog::new(cfg.watchdog, m), shared.clone());
    let rounds = s.resumed.as_ref().map_or(0, |r| r.state.rounds);
    let events_hub = events_tx.clone();
    // The transport is opened on the hub's thread: NCCL's communicators belong to the thread
    // that makes them.
    let hub = spawn_hub(cfg.threads, events_tx, move || {
        Ok(Hub {
            comm: wiring.open(table, m, link)?,
            clock,
            policy,
            data,
            inbox,
            replies,
            events: events_hub,
            evaluation,
            checkpoints,
            watchdog,
            shared: shared_hub,
            rounds,
            anchor: Arc::new(anchor),
        })
    })?;
    Ok(Running {
        hub,
        workers,
        events,
        shapes: s.shapes,
        train_images: s.train.len(),
        resumed: s.resumed,
        batches_per_epoch: s.batches_per_epoch,
        max_steps: s.budget.max_steps,
        layout,
        shared,
    })
}

/// What every worker of this process (of `layout`) shares.
fn worker_context(
    cfg: &RunConfig,
    s: &Setup,
    layout: RankLayout,
    events: &Sender<Event>,
    shared: &Arc<Shared>,
    eval_clock: Option<Arc<EvalClock>>,
) -> Arc<WorkerContext> {
    Arc::new(WorkerContext {
        workers: cfg.workers,
        plan: s.plan.clone(),
        mode: cfg.algo.schedule,
        schedule: cfg.schedule.clone(),
        budget: s.budget,
        batches_per_epoch: s.batches_per_epoch,
        max_staleness: cfg.algo.max_staleness,
        train: s.train.clone(),
        norm: s.norm.clone(),
        events: events.clone(),
        shared: shared.clone(),
        slow: cfg.slow_worker,
        // Workers of algorithms without rounds meet for the clock's evaluations.
        eval_clock: eval_clock.filter(|_| !cfg.algo.kind.has_rounds()),
        speed: local_speeds(cfg, layout),
    })
}

/// The worker threads, and the senders of their replies (the hub's).
type WorkerThreads = (Vec<JoinHandle<()>>, Vec<Sender<Reply>>);

/// Starts one thread per model of `s` (restored from its checkpoint when resuming), each
/// reporting to `to_hub`. Only the threads keep senders: the main thread's event loop ends when
/// they have all returned.
fn spawn_workers(
    cfg: &RunConfig,
    s: &mut Setup,
    layout: RankLayout,
    ctx: Arc<WorkerContext>,
    to_hub: Sender<ToHub>,
) -> Result<WorkerThreads> {
    let m = cfg.workers;
    let mut replies = Vec::with_capacity(m);
    let mut workers = Vec::with_capacity(m);
    let models = std::mem::take(&mut s.models);
    let loaders = std::mem::take(&mut s.loaders);
    for (id, (model, loader)) in models.into_iter().zip(loaders).enumerate() {
        let (reply_tx, reply_rx) = unbounded();
        replies.push(reply_tx);
        // Seeded by the global id: the same probes as worker `global` of a one-process run.
        let global = layout.first_worker() + id;
        let probe_seed = derive_seed(&[cfg.seed, 0x7072_6f62, global as u64]); // "prob"
        let link = WorkerLink {
            to_hub: to_hub.clone(),
            replies: reply_rx,
        };
        let mut worker = Worker::new(id, model, cfg.sgd, loader, probe_seed, link, ctx.clone())?;
        if let Some(r) = &s.resumed {
            let save = WorkerSave {
                state: r.state.workers[global].clone(),
                tensors: r.workers[global].clone(),
            };
            worker.restore(&save, &r.anchor, r.state.pending_pull)?;
        }
        let threads = (cfg.threads / m).max(1);
        workers.push(spawn_worker(worker, threads, to_hub.clone())?);
    }
    Ok((workers, replies))
}

/// The round's decision rule, its data and the proximal anchor, at the start of the run or where
/// a resumed run left off, placed at `place` where the hub makes rounds (uploaded once on a GPU
/// run).
fn round_state(
    cfg: &RunConfig,
    s: &Setup,
    layout: RankLayout,
    place: &FlatPlace,
) -> Result<(Box<dyn Policy>, RoundData, Flat)> {
    let table = &s.shapes.table;
    let mut policy = algo::build(&cfg.algo, layout.global_workers(), table.len());
    let mut data = RoundData::new(cfg.algo.kind == AlgoKind::Easgd, &s.x0);
    if let Some(r) = &s.resumed {
        let bad = |e: String| Error::usage(format!("--resume {}: {e}", cfg.out.display()));
        policy.restore(&r.state.algo).map_err(bad)?;
        data.restore(&r.algo_tensors).map_err(bad)?;
    }
    data.move_to(place)?;
    let anchor = s.resumed.as_ref().map_or(&s.x0, |r| &r.anchor);
    let anchor = Flat::Host(anchor.clone()).copy_to(place)?;
    Ok((policy, data, anchor))
}

/// Starts the hub's thread, on a pool of `threads` threads: it makes the hub with `make` and
/// runs it; a failure tells the main thread (`events`) to stop waiting.
fn spawn_hub(
    threads: usize,
    events: Sender<Event>,
    make: impl FnOnce() -> Result<Hub> + Send + 'static,
) -> Result<JoinHandle<Result<Outcome>>> {
    let hub_pool = pool(threads, "hub")?;
    std::thread::Builder::new()
        .name("hub".into())
        .spawn(move || {
            let result = hub_pool.install(|| make()?.run());
            if result.is_err() {
                let _ = events.send(Event::Fatal);
            }
            result
        })
        .map_err(|e| Error::Internal(format!("cannot start the hub: {e}")))
}
