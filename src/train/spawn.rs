//! The spawn phase of a run: the shared state, one thread per worker (each on its own rayon pool,
//! restored from the checkpoint when resuming), and the pulling thread.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{unbounded, Receiver, Sender};

use super::checkpoints::CheckpointAssembly;
use super::coordinator::{Coordinator, Outcome};
use super::evaluation::Evaluation;
use super::hub::{Reply, Shared, ToHub, WorkerLink};
use super::interrupt;
use super::place::round_place;
use super::round_clock::RoundClock;
use super::setup::{Setup, Shapes};
use super::watchdog::Watchdog;
use super::worker::{Worker, WorkerContext};
use crate::algo::{self, AlgoKind, ScheduleKind};
use crate::buffer::{Flat, RoundBuffer};
use crate::checkpoint::{Checkpoint, WorkerSave};
use crate::config::{RoundTransport, RunConfig};
use crate::data::seed::derive_seed;
use crate::error::panic_message;
use crate::eval_clock::EvalClock;
use crate::events::Event;
use crate::optim::Sgd;
use crate::ranks::{Peers, RankLayout};
use crate::round::RoundData;
use crate::{Error, Result};

/// A run in progress: its threads and the events they send.
pub struct Running {
    /// The pulling thread; it returns how the run ended.
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

/// `--worker-speed` of this process's workers (empty: all at full speed).
fn local_speeds(cfg: &RunConfig, layout: RankLayout) -> Vec<f64> {
    let first = layout.first_worker();
    cfg.worker_speed
        .get(first..first + layout.local_workers)
        .map_or_else(Vec::new, <[f64]>::to_vec)
}

/// Checks that every rank starts from the same initial point (the same seed builds the same model
/// everywhere; a different library or CPU could still differ): a hash of its bits, all-gathered.
fn same_start_everywhere(peers: &mut dyn Peers, x0: &[f32]) -> Result<()> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    x0.iter().for_each(|v| v.to_bits().hash(&mut h));
    let bits = h.finish();
    // Two f64 halves of the 64-bit hash: exact.
    let mine = [(bits >> 32) as f64, (bits & 0xffff_ffff) as f64];
    let all = peers.all_gather(&mine);
    if let Some(r) = all.iter().position(|v| v[..] != mine[..]) {
        return Err(Error::Internal(format!(
            "rank {r} builds a different initial model than rank {} (same seed, other numbers): ranks must run the same binary on the same kind of CPU",
            peers.layout().rank
        )));
    }
    Ok(())
}

/// Starts worker `worker`'s thread. A failure of any kind reaches the pulling thread, which stops
/// the others: no hang.
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

/// Starts every worker of this process and the pulling thread; `peers` are the other ranks of a
/// run across processes (the pulling thread takes them over).
pub fn start(cfg: &RunConfig, s: Setup, mut peers: Option<Box<dyn Peers>>) -> Result<Running> {
    let m = cfg.workers;
    let layout = peers.as_ref().map_or(RankLayout::single(m), |p| p.layout());
    if let Some(p) = &mut peers {
        same_start_everywhere(p.as_mut(), &s.x0)?;
    }
    let shared = shared_state(cfg, &s, layout);
    let eval_clock = eval_clock(cfg, &s, &shared);
    let train_images = s.train.len();
    let (to_hub, inbox) = unbounded();
    let (events_tx, events) = unbounded();
    let ctx = Arc::new(WorkerContext {
        workers: m,
        plan: s.plan.clone(),
        mode: cfg.algo.schedule,
        schedule: cfg.schedule.clone(),
        budget: s.budget,
        batches_per_epoch: s.batches_per_epoch,
        max_staleness: cfg.algo.max_staleness,
        train: s.train.clone(),
        norm: s.norm.clone(),
        events: events_tx.clone(),
        shared: shared.clone(),
        slow: cfg.slow_worker,
        // Workers of algorithms without rounds meet for the clock's evaluations.
        eval_clock: eval_clock.clone().filter(|_| !cfg.algo.kind.has_rounds()),
        speed: local_speeds(cfg, layout),
    });
    let mut replies: Vec<Sender<Reply>> = Vec::with_capacity(m);
    let mut workers = Vec::with_capacity(m);
    for (id, (model, loader)) in s.models.into_iter().zip(s.loaders).enumerate() {
        let (reply_tx, reply_rx) = unbounded();
        replies.push(reply_tx);
        let opt = Sgd::new(cfg.sgd, &model.params);
        // Seeded by the global id: the same probes as worker `global` of a one-process run.
        let global = layout.first_worker() + id;
        let probe_seed = derive_seed(&[cfg.seed, 0x7072_6f62, global as u64]); // "prob"
        let link = WorkerLink {
            to_hub: to_hub.clone(),
            replies: reply_rx,
        };
        let mut worker = Worker::new(id, model, opt, loader, probe_seed, link, ctx.clone())?;
        if let Some(r) = &s.resumed {
            let save = WorkerSave {
                state: r.state.workers[global].clone(),
                tensors: r.workers[global].clone(),
            };
            worker.restore(&save, &r.anchor, r.state.pending_pull)?;
        }
        workers.push(spawn_worker(
            worker,
            (cfg.threads / m).max(1),
            to_hub.clone(),
        )?);
    }
    // Only the threads may hold senders: the main thread's event loop ends when they have all
    // returned.
    drop(to_hub);
    drop(ctx);

    let table = s.shapes.table.clone();
    let mut policy = algo::build(&cfg.algo, layout.global_workers(), table.len());
    let mut data = RoundData::new(cfg.algo.kind == AlgoKind::Easgd, &s.x0);
    if let Some(r) = &s.resumed {
        let bad = |e: String| Error::usage(format!("--resume {}: {e}", cfg.out.display()));
        policy.restore(&r.state.algo).map_err(bad)?;
        data.restore(&r.algo_tensors).map_err(bad)?;
    }
    // The round's data and anchor start where rounds run (uploaded once on a GPU run).
    let place = round_place(&cfg.gpus, &table, layout.ranks)?;
    data.move_to(&place)?;
    let anchor = Flat::Host(match &s.resumed {
        Some(r) => r.anchor.clone(),
        None => s.x0,
    })
    .copy_to(&place)?;
    let coordinator = Coordinator {
        clock: RoundClock {
            schedule: cfg.algo.schedule,
            workers: m,
            ranks: layout.ranks as u64,
            tau: s.plan.tau,
            max_steps: s.budget.max_steps,
            max_seconds: s.budget.max_seconds,
        },
        policy,
        data,
        table,
        inbox,
        replies,
        events: events_tx,
        evaluation: Evaluation {
            evaluator: s.evaluator,
            every: s.eval_every,
            workers: layout.global_workers(),
            batches_per_epoch: s.batches_per_epoch,
            eval_workers: cfg.eval_workers,
            next: s.resumed.as_ref().map_or(0, |r| r.state.next_eval),
            clock: eval_clock,
        },
        checkpoints: CheckpointAssembly::new(cfg.checkpoint_every, s.identity, m),
        watchdog: Watchdog::new(cfg.watchdog, m),
        shared: shared.clone(),
        rounds: s.resumed.as_ref().map_or(0, |r| r.state.rounds),
        anchor: Arc::new(anchor),
        place,
        peers,
        nccl_gpus: (cfg.round == RoundTransport::Nccl).then(|| cfg.gpus.clone()),
    };
    let hub_pool = pool(cfg.threads, "pulling")?;
    let hub = std::thread::Builder::new()
        .name("pulling".into())
        .spawn(move || {
            let events = coordinator.events.clone();
            let result = hub_pool.install(|| coordinator.run());
            if result.is_err() {
                let _ = events.send(Event::Fatal);
            }
            result
        })
        .map_err(|e| Error::Internal(format!("cannot start the pulling thread: {e}")))?;
    Ok(Running {
        hub,
        workers,
        events,
        shapes: s.shapes,
        resumed: s.resumed,
        batches_per_epoch: s.batches_per_epoch,
        max_steps: s.budget.max_steps,
        train_images,
        layout,
        shared,
    })
}
