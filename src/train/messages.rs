//! What workers and the hub say to each other. Workers send on one channel to the hub; each
//! worker has its own reply channel. Messages move buffers (no copies on the CPU).

use std::sync::Arc;
use std::time::Instant;

use crossbeam::channel::{Receiver, Sender};

use crate::algo::WorkerStats;
use crate::buffer::Flat;
use crate::checkpoint::WorkerSave;
use crate::comm::Participants;
use crate::round::Target;
use crate::Error;

/// What a worker hands to the hub at a round: its statistics and its parameters.
#[derive(Debug)]
pub struct Snapshot {
    pub worker: usize,
    /// Local steps the worker had taken when the snapshot was made.
    pub step: u64,
    /// Trainable parameters, flat, in the layer table's order, where the worker keeps them (a GPU
    /// worker's snapshot stays on its GPU).
    pub params: Flat,
    /// Per-layer gradient norms (GRAWA).
    pub layer_norms: Option<Vec<f64>>,
    /// Mean training loss of the last few mini-batches (LSGD).
    pub recent_loss: Option<f64>,
    /// The training loss of every local step since the worker's previous snapshot: across
    /// processes, rank 0's metrics take the other ranks' losses from these.
    pub losses: Vec<f32>,
}

impl Snapshot {
    /// The part a policy decides from (no parameters).
    pub fn stats(&self) -> WorkerStats {
        WorkerStats {
            worker: self.worker,
            step: self.step,
            layer_norms: self.layer_norms.clone(),
            recent_loss: self.recent_loss,
        }
    }
}

/// The participants of an exchange over `snaps` (sorted by worker): ids, statistics, parameters.
pub fn participants<'a>(snaps: &[&'a Snapshot]) -> Participants<'a> {
    Participants {
        workers: snaps.iter().map(|s| s.worker).collect(),
        stats: snaps.iter().map(|s| s.stats()).collect(),
        buffers: snaps.iter().map(|s| &s.params).collect(),
    }
}

/// Worker to hub.
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

/// Hub to one worker.
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
        /// Async over a modelled link: the instant the reply reaches the worker (its exchange's
        /// link time after it was sent); the worker holds it until then, stepping meanwhile.
        ready_at: Option<Instant>,
    },
    /// The all-reduced gradient, and whether to stop after applying it; over a modelled link,
    /// the all-reduce's modelled milliseconds (for the worker's step accounting).
    Grads {
        mean: Arc<Flat>,
        stop: bool,
        link_ms: Option<f64>,
    },
}

impl Reply {
    /// A round's reply that only stops the worker.
    pub fn stop() -> Self {
        Reply::Round {
            target: None,
            sources: Arc::new(Vec::new()),
            stop: true,
            checkpoint_next: false,
            ready_at: None,
        }
    }

    /// When the reply may be applied (`None`: at once).
    pub fn ready_at(&self) -> Option<Instant> {
        match self {
            Reply::Round { ready_at, .. } => *ready_at,
            Reply::Grads { .. } => None,
        }
    }
}

/// The worker's end of the channels.
pub struct WorkerLink {
    pub to_hub: Sender<ToHub>,
    pub replies: Receiver<Reply>,
}
