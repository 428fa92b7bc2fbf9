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
mod policy;
pub mod smooth;
pub mod weighting;
mod worker_plan;

pub use easgd::Easgd;
pub use grawa::Grawa;
pub use kind::{AlgoConfig, AlgoFlag, AlgoKind, NormSource, ScheduleKind};
pub use local_sgd::LocalSgd;
pub use loss_window::{leader, LossWindow, LOSS_WINDOW};
pub use lsgd::Lsgd;
pub use none::NoAveraging;
pub use policy::{Mix, Plan, Policy, WorkerStats};
pub use smooth::{AccumulatedNorms, NormSmoother, DEFAULT_ACCUMULATED_BETA, DEFAULT_NORM_MOMENTUM};
pub use weighting::{inverse_weights, layer_norms, lgrawa_weights, mgrawa_weights, model_norm};
pub use worker_plan::{worker_plan, StepKind, WorkerPlan};

/// The decision rule of `cfg` for a run of `workers` workers over `layers` layers.
pub fn build(cfg: &AlgoConfig, workers: usize, layers: usize) -> Box<dyn Policy> {
    match cfg.kind {
        AlgoKind::Sgd | AlgoKind::Ddp | AlgoKind::DdpSam => Box::new(NoAveraging),
        AlgoKind::LocalSgd => Box::new(LocalSgd),
        AlgoKind::Mgrawa | AlgoKind::Lgrawa => Box::new(Grawa::new(
            cfg.kind == AlgoKind::Lgrawa,
            cfg.setting(AlgoFlag::WeightPower),
            cfg.setting(AlgoFlag::Pull) as f32,
            workers,
            layers,
        )),
        AlgoKind::Easgd => Box::new(Easgd::new(cfg.setting(AlgoFlag::Beta) as f32, workers)),
        AlgoKind::Lsgd => Box::new(Lsgd::new(cfg.setting(AlgoFlag::Pull) as f32)),
    }
}
