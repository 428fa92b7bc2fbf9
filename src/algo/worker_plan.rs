//! The worker's side of an algorithm, as data: how often it meets the hub, what it reports, the
//! proximal step, and how a local step is taken.

use super::kind::{AlgoConfig, AlgoFlag, AlgoKind, NormSource};

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
                rho: cfg.setting(AlgoFlag::Rho) as f32,
            },
            _ => StepKind::Local,
        },
    }
}
