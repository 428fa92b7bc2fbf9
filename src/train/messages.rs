//! The hub: what workers and the pulling thread say to each other, and the little state they
//! share (stop flags, step counters, permits). Workers send on one channel to the pulling thread;
//! each worker has its own reply channel. Messages move buffers (no copies on the CPU).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam::channel::{Receiver, Sender};

use crate::algo::{Snapshot, Target};
use crate::buffer::Flat;
use crate::checkpoint::WorkerSave;
use crate::Error;

/// Worker to pulling thread.
pub enum ToHub {
    /// A round: sync and permits workers wait for the reply; async workers go on.
    Round(Snapshot),
    /// A local gradient to all-reduce (DDP, SAM); `step` is the step it is for (1-based). A GPU
    /// worker's stays on its GPU.
    Grads {
        worker: usize,
        step: u64,
        grads: Flat,
    },
    /// The worker stopped; its final parameters.
    Final(Snapshot),
    /// The worker's full state for a checkpoint; sent just before its `Round` or `Final`.
    State {
        worker: usize,
        save: Box<WorkerSave>,
    },
    /// The worker failed (diverged, panicked); it sends nothing more.
    Failed { worker: usize, error: Error },
}

impl ToHub {
    /// The worker the message comes from.
    pub fn sender(&self) -> usize {
        match self {
            ToHub::Round(s) | ToHub::Final(s) => s.worker,
            ToHub::Grads { worker, .. }
            | ToHub::State { worker, .. }
            | ToHub::Failed { worker, .. } => *worker,
        }
    }
}

/// Pulling thread to one worker.
#[derive(Clone, Debug)]
pub enum Reply {
    /// The outcome of a round: the pull to apply, and whether to stop after it. `sources` holds,
    /// per worker, the step of the snapshot the target was built from (async staleness).
    Round {
        target: Option<Target>,
        sources: Arc<Vec<u64>>,
        stop: bool,
        /// Send your full state with the next round (a checkpoint is due).
        checkpoint_next: bool,
    },
    /// The all-reduced gradient, and whether to stop after applying it.
    Grads { mean: Arc<Flat>, stop: bool },
}

/// The worker's end of the hub.
pub struct WorkerLink {
    pub to_hub: Sender<ToHub>,
    pub replies: Receiver<Reply>,
}

/// State shared by every thread of a run.
pub struct Shared {
    /// Raised by SIGINT/SIGTERM.
    pub interrupt: Arc<AtomicBool>,
    /// Raised when a worker fails, so the others stop (async) rather than wait.
    pub abort: AtomicBool,
    /// Local steps taken by all workers together.
    pub total_steps: AtomicU64,
    /// Permits schedule: steps handed out this round, and how many may be.
    pub permits_taken: AtomicU64,
    pub permits_allowed: AtomicU64,
    /// Async: each worker's local steps, and the step of its newest snapshot the pulling thread
    /// has taken in (u64::MAX once it has finished: it holds nobody back any more).
    pub steps: Vec<AtomicU64>,
    pub acked: Vec<AtomicU64>,
    pub start: Instant,
}

impl Shared {
    /// Fresh shared state for a run of `workers` workers starting now.
    pub fn new(interrupt: Arc<AtomicBool>, workers: usize) -> Self {
        Self {
            steps: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            acked: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            interrupt,
            abort: AtomicBool::new(false),
            total_steps: AtomicU64::new(0),
            permits_taken: AtomicU64::new(0),
            permits_allowed: AtomicU64::new(0),
            start: Instant::now(),
        }
    }

    /// Seconds since the run started.
    pub fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// True once the run should wind down early (signal or a failed worker).
    pub fn stopping(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed) || self.abort.load(Ordering::Relaxed)
    }

    /// Takes one local-step permit if any is left this round.
    pub fn take_permit(&self) -> bool {
        self.permits_taken.fetch_add(1, Ordering::SeqCst)
            < self.permits_allowed.load(Ordering::SeqCst)
    }

    /// The oldest snapshot step the pulling thread holds of a worker still running.
    pub fn oldest_acked(&self) -> u64 {
        self.acked
            .iter()
            .map(|a| a.load(Ordering::SeqCst))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Async staleness: how many local steps the most advanced worker is past the oldest
    /// snapshot of a running worker (0 when every running worker is at its snapshot).
    pub fn staleness(&self) -> u64 {
        let oldest = self.oldest_acked();
        let ahead = self
            .steps
            .iter()
            .map(|s| s.load(Ordering::SeqCst))
            .max()
            .unwrap_or(0);
        if oldest == u64::MAX {
            0
        } else {
            ahead.saturating_sub(oldest)
        }
    }

    /// Opens a new permits round with `n` permits (called while every worker waits at the round).
    pub fn open_permits(&self, n: u64) {
        self.permits_allowed.store(n, Ordering::SeqCst);
        self.permits_taken.store(0, Ordering::SeqCst);
    }
}
