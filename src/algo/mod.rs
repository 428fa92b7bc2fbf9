//! The averaging algorithms' *decisions*. Each is one small type implementing [`Policy`]: from the
//! participants' small statistics ([`WorkerStats`]: step, per-layer gradient norms, recent loss) it
//! decides a round's [`Plan`]: how the center is formed ([`Mix`]: GRAWA's weights, the uniform
//! mean, LSGD's leader, EASGD's elastic step) and how hard workers are pulled toward it. A policy
//! never sees a parameter: it is a pure, replicated function, so the same statistics give the same
//! plan in any thread, process or machine. Moving the parameters is `crate::round`'s job.
//!
//! The worker's side of an algorithm is data, not code: a [`WorkerPlan`] says how often to meet,
//! what to report, whether to take a proximal step toward the last target, and how a local step is
//! taken (alone, with an all-reduced gradient, or SAM). What each algorithm does, exactly, is
//! docs/design.md section 2.
//!
//! The statistics math the policies decide with lives here too: `weighting` (GRAWA's norms to
//! weights), `smooth` (the bias-corrected averages of norms) and `loss_window` (LSGD's recent
//! loss and leader).

mod easgd;
mod grawa;
mod kind;
mod local_sgd;
pub mod loss_window;
mod lsgd;
mod none;
pub mod smooth;
pub mod weighting;

pub use easgd::Easgd;
pub use grawa::Grawa;
pub use kind::{AlgoConfig, AlgoFlag, AlgoKind, NormSource, ScheduleKind};
pub use local_sgd::LocalSgd;
pub use loss_window::{leader, LossWindow, LOSS_WINDOW};
pub use lsgd::Lsgd;
pub use none::NoAveraging;
pub use smooth::{AccumulatedNorms, NormSmoother, DEFAULT_ACCUMULATED_BETA, DEFAULT_NORM_MOMENTUM};
pub use weighting::{inverse_weights, layer_norms, lgrawa_weights, mgrawa_weights, model_norm};

use crate::average::Weights;

/// A participant's small statistics at a round: everything a [`Policy`] decides from. A few
/// numbers per worker, so an all-gather of them is cheap on any transport.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerStats {
    pub worker: usize,
    /// Local steps taken when the statistics were made.
    pub step: u64,
    /// Per-layer gradient norms (GRAWA).
    pub layer_norms: Option<Vec<f64>>,
    /// Mean training loss of the last few mini-batches (LSGD).
    pub recent_loss: Option<f64>,
}

/// How a round's center is formed from the participants' parameters `x_i` (in participant
/// order).
#[derive(Clone, Debug, PartialEq)]
pub enum Mix {
    /// `sum_i w_i x_i`, per worker or per worker and layer (GRAWA).
    Weighted(Weights),
    /// `(sum_i x_i) / M` (local SGD).
    Mean,
    /// The parameters of this worker (a worker id; LSGD).
    Leader(usize),
    /// EASGD's elastic step against the center `c` the round keeps: the target is `c`, and the
    /// center moves by what the workers move, `c <- c + sum_i lambda (x_i - c)`, which with
    /// `lambda = beta / M` and every worker present is `(1 - beta) c + beta mean_i(x_i)`.
    Elastic { beta: f32 },
}

/// A round's decision: no parameters, only how to combine and pull them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// How the center is formed; `None`: nobody is pulled this round.
    pub mix: Option<Mix>,
    /// Pull strength: `x <- (1 - lambda) x + lambda center`.
    pub lambda: f32,
    /// The smoothed norms behind GRAWA's weights, per participant (MGRAWA) or participant-major
    /// per layer (LGRAWA), for the metrics.
    pub norms: Option<Vec<f64>>,
}

impl Plan {
    /// The weights the center is built with, for the metrics: GRAWA's, or uniform ones for the
    /// mean; `None` for the leader, the elastic step and no pull.
    pub fn weights(&self, participants: usize) -> Option<Weights> {
        match &self.mix {
            Some(Mix::Weighted(w)) => Some(w.clone()),
            Some(Mix::Mean) => Some(Weights::uniform(participants)),
            _ => None,
        }
    }

    /// The worker everybody is pulled toward (LSGD).
    pub fn leader(&self) -> Option<usize> {
        match self.mix {
            Some(Mix::Leader(l)) => Some(l),
            _ => None,
        }
    }
}

/// An algorithm's decision rule. `decide` is given the statistics of the workers taking part in
/// the round, sorted by worker (every worker under `sync` and `permits`; under `async`, those
/// that have reported at least once).
pub trait Policy: Send {
    /// The plan for a round with these participants.
    fn decide(&mut self, stats: &[WorkerStats]) -> Plan;

    /// The state a checkpoint must keep (JSON; `Null` for stateless policies).
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Restores what `state` returned.
    fn restore(&mut self, _state: &serde_json::Value) -> Result<(), String> {
        Ok(())
    }
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

/// `kind`'s default for `flag` from the one table of the algorithms' settings
/// ([`AlgoKind::default`]); 0 where the flag does not apply (never asked: the build below asks
/// each algorithm only for its own flags).
fn table_default(kind: AlgoKind, flag: AlgoFlag) -> f64 {
    kind.default(flag).unwrap_or(0.0)
}

/// `value`, or `kind`'s default for `flag`: a resolved configuration holds every value, one made
/// by hand may leave them out.
fn or_default(value: Option<f32>, kind: AlgoKind, flag: AlgoFlag) -> f32 {
    value.unwrap_or_else(|| table_default(kind, flag) as f32)
}

/// The decision rule of `cfg` for a run of `workers` workers over `layers` layers.
pub fn build(cfg: &AlgoConfig, workers: usize, layers: usize) -> Box<dyn Policy> {
    match cfg.kind {
        AlgoKind::Sgd | AlgoKind::Ddp | AlgoKind::DdpSam => Box::new(NoAveraging),
        AlgoKind::LocalSgd => Box::new(LocalSgd),
        AlgoKind::Mgrawa | AlgoKind::Lgrawa => Box::new(Grawa::new(
            cfg.kind == AlgoKind::Lgrawa,
            cfg.weight_power
                .unwrap_or_else(|| table_default(cfg.kind, AlgoFlag::WeightPower)),
            or_default(cfg.pull, cfg.kind, AlgoFlag::Pull),
            workers,
            layers,
        )),
        AlgoKind::Easgd => Box::new(Easgd::new(
            or_default(cfg.beta, cfg.kind, AlgoFlag::Beta),
            workers,
        )),
        AlgoKind::Lsgd => Box::new(Lsgd::new(or_default(cfg.pull, cfg.kind, AlgoFlag::Pull))),
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
                rho: or_default(cfg.rho, cfg.kind, AlgoFlag::Rho),
            },
            _ => StepKind::Local,
        },
    }
}
