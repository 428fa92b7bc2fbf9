//! The averaging algorithms. Each is one small type implementing [`Averaging`], the pulling
//! thread's side of a round: snapshots of every worker in, the point they are pulled toward out.
//! The worker's side of an algorithm is data, not code: a [`WorkerPlan`] says how often to meet,
//! what to report (gradient norms, recent loss), whether to take a proximal step toward the last
//! target, and how a local step is taken (alone, with an all-reduced gradient, or SAM).
//!
//! The math lives in `crate::average`; this module only decides which of it each algorithm uses.

mod easgd;
mod grawa;
mod kind;
mod local_sgd;
mod lsgd;
mod none;

use std::sync::Arc;

pub use easgd::Easgd;
pub use grawa::Grawa;
pub use kind::{AlgoConfig, AlgoKind, NormSource, ScheduleKind};
pub use local_sgd::LocalSgd;
pub use lsgd::Lsgd;
pub use none::NoAveraging;

use crate::average::Weights;
use crate::model::LayerEntry;

/// What a worker hands to the pulling thread at a round.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub worker: usize,
    /// Local steps the worker had taken when the snapshot was made.
    pub step: u64,
    /// Trainable parameters, flat, in the layer table's order.
    pub params: Vec<f32>,
    /// Per-layer gradient norms (GRAWA).
    pub layer_norms: Option<Vec<f64>>,
    /// Mean training loss of the last few mini-batches (LSGD).
    pub recent_loss: Option<f64>,
}

/// A point to pull toward: `x <- (1 - lambda) x + lambda * point`.
#[derive(Clone, Debug)]
pub struct Target {
    pub point: Arc<Vec<f32>>,
    pub lambda: f32,
}

/// What a round decided, with what the metrics should show of it.
#[derive(Clone, Debug, Default)]
pub struct RoundResult {
    /// None: nobody is pulled this round.
    pub target: Option<Target>,
    /// The weights the center was built with (GRAWA).
    pub weights: Option<Weights>,
    /// The smoothed norms behind the weights, per worker (MGRAWA) or worker-major per layer (LGRAWA).
    pub norms: Option<Vec<f64>>,
    /// The worker everybody was pulled toward (LSGD).
    pub leader: Option<usize>,
}

/// The pulling thread's side of an averaging algorithm.
pub trait Averaging: Send {
    /// Combines the newest snapshot of every worker (sorted by worker) into this round's pull.
    fn round(&mut self, snapshots: &[&Snapshot], table: &[LayerEntry]) -> RoundResult;

    /// The point to evaluate instead of the workers' average, for algorithms that keep their own
    /// (EASGD's center).
    fn evaluation_point(&self) -> Option<Arc<Vec<f32>>> {
        None
    }

    /// The state a checkpoint must keep: scalars as JSON, vectors by name.
    fn state(&self) -> AlgoState {
        AlgoState::default()
    }

    /// Restores what `state` returned.
    fn restore(&mut self, _state: &AlgoState) -> Result<(), String> {
        Ok(())
    }
}

/// An algorithm's own state, for checkpoints.
#[derive(Clone, Debug, Default)]
pub struct AlgoState {
    pub json: serde_json::Value,
    pub tensors: Vec<(String, Vec<f32>)>,
}

/// How a worker takes a local step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepKind {
    /// On its own gradient.
    Local,
    /// On the gradient averaged over all workers (DDP's all-reduce).
    AllReduce,
    /// SAM: ascend by `rho` along the local gradient, then descend with the all-reduced gradient
    /// taken there.
    Sam { rho: f32 },
}

/// The worker's side of an algorithm.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerPlan {
    /// Local steps between rounds.
    pub tau: u64,
    /// Which gradient norms to report, if any.
    pub norms: Option<NormSource>,
    /// Samples in GRAWA's probe batch.
    pub probe_samples: usize,
    /// Report the recent training loss (LSGD).
    pub report_loss: bool,
    /// Proximal factor p/tau applied after every local step toward the last target.
    pub prox: Option<f32>,
    pub step: StepKind,
}

/// Builds the pulling thread's side of `cfg` for `workers` workers starting at `x0`.
pub fn build(cfg: &AlgoConfig, workers: usize, layers: usize, x0: &[f32]) -> Box<dyn Averaging> {
    match cfg.kind {
        AlgoKind::Sgd | AlgoKind::Ddp | AlgoKind::DdpSam => Box::new(NoAveraging),
        AlgoKind::LocalSgd => Box::new(LocalSgd),
        AlgoKind::Mgrawa | AlgoKind::Lgrawa => Box::new(Grawa::new(
            cfg.kind == AlgoKind::Lgrawa,
            cfg.weight_power.unwrap_or(1.0),
            cfg.pull.unwrap_or(0.5),
            workers,
            layers,
        )),
        AlgoKind::Easgd => Box::new(Easgd::new(x0.to_vec(), cfg.beta.unwrap_or(0.1))),
        AlgoKind::Lsgd => Box::new(Lsgd::new(cfg.pull.unwrap_or(0.1))),
    }
}

/// The worker's side of `cfg`; `round_every` is the round period for algorithms without averaging
/// rounds (they still meet to be evaluated).
pub fn worker_plan(cfg: &AlgoConfig, round_every: u64, batch_size: usize) -> WorkerPlan {
    let tau = cfg.tau.unwrap_or(round_every).max(1);
    WorkerPlan {
        tau,
        norms: cfg.norm_source,
        probe_samples: cfg.probe_samples.unwrap_or(batch_size),
        report_loss: cfg.kind == AlgoKind::Lsgd,
        prox: cfg.prox.filter(|&p| p > 0.0).map(|p| p / tau as f32),
        step: match cfg.kind {
            AlgoKind::Ddp => StepKind::AllReduce,
            AlgoKind::DdpSam => StepKind::Sam {
                rho: cfg.rho.unwrap_or(0.05),
            },
            _ => StepKind::Local,
        },
    }
}
