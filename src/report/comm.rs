//! What a distributed update costs: each algorithm's communication pattern (docs/design.md
//! section 4) and the bytes it moves, from the model's parameter count.
//!
//! A *distributed update* is one collective over the parameters (or gradients): DDP and SAM
//! all-reduce the gradients at every local step; local SGD, MGRAWA, LGRAWA and EASGD all-reduce
//! the (weighted) parameters once per round; LSGD broadcasts the leader's parameters once per
//! round. Bytes are those a bandwidth-optimal collective moves between M workers in total, for P
//! parameters of 4 bytes (f32):
//!
//! - ring all-reduce: each worker sends 2 (M - 1) / M of the vector, `2 (M - 1) 4 P` bytes in all;
//! - broadcast (a pipelined chain): every worker but the source receives it once, `(M - 1) 4 P`;
//! - an asynchronous round (`--schedule async`) is one worker's exchange with the center: its
//!   parameters up and the result back, `2 x 4 P`, whatever the algorithm's collective (so its
//!   rounds are not the all-worker rounds of `sync`, and are never counted against them).
//!
//! The statistics exchanged beside them (GRAWA's gradient norms, one per worker or per layer;
//! LSGD's losses) are a few floats per worker and are not counted.

use candle_core::Device;

use crate::data::DatasetKind;
use crate::model::{Model, ModelKind};

/// How an algorithm moves parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Gradients all-reduced at every local step (ddp, ddp-sam).
    AllReducePerStep,
    /// Parameters all-reduced once per round (local-sgd, mgrawa, lgrawa, easgd).
    AllReducePerRound,
    /// The leader's parameters broadcast once per round (lsgd).
    BroadcastPerRound,
    /// One worker's parameters up to the center and the result back, once per round: every
    /// averaging algorithm under `--schedule async`.
    ExchangePerRound,
}

impl Pattern {
    /// The pattern of algorithm `algo` (`None` for one worker's `sgd` or an unknown name).
    pub fn of(algo: &str) -> Option<Self> {
        match algo {
            "ddp" | "ddp-sam" => Some(Pattern::AllReducePerStep),
            "local-sgd" | "mgrawa" | "lgrawa" | "easgd" => Some(Pattern::AllReducePerRound),
            "lsgd" => Some(Pattern::BroadcastPerRound),
            _ => None,
        }
    }

    /// The pattern of `algo` run under `schedule`: an async round is one worker's exchange.
    pub fn of_run(algo: &str, schedule: &str) -> Option<Self> {
        let pattern = Self::of(algo)?;
        if schedule == "async" && !pattern.per_step() {
            Some(Pattern::ExchangePerRound)
        } else {
            Some(pattern)
        }
    }

    /// Whether a distributed update happens at every local step (rather than once per round).
    pub fn per_step(self) -> bool {
        self == Pattern::AllReducePerStep
    }

    /// Bytes one distributed update moves among `workers` workers for `params` f32 parameters.
    pub fn bytes_per_update(self, workers: usize, params: usize) -> f64 {
        let vector = 4.0 * params as f64;
        let others = workers.saturating_sub(1) as f64;
        match self {
            Pattern::AllReducePerStep | Pattern::AllReducePerRound => 2.0 * others * vector,
            Pattern::BroadcastPerRound => others * vector,
            Pattern::ExchangePerRound => 2.0 * vector,
        }
    }

    /// The formula, as the report prints it.
    pub fn formula(self) -> &'static str {
        match self {
            Pattern::AllReducePerStep | Pattern::AllReducePerRound => "2 (M - 1) 4 P",
            Pattern::BroadcastPerRound => "(M - 1) 4 P",
            Pattern::ExchangePerRound => "2 x 4 P",
        }
    }
}

/// Trainable parameters of `model` on `dataset` (synthetic data takes the model's shape), counted
/// by building the network once on the CPU.
pub fn parameter_count(dataset: &str, model: &str) -> crate::Result<usize> {
    let kind: ModelKind = model
        .parse()
        .map_err(|_| crate::Error::usage(format!("unknown model '{model}'")))?;
    let data: DatasetKind = dataset
        .parse()
        .map_err(|_| crate::Error::usage(format!("unknown data set '{dataset}'")))?;
    let shape = data.image_shape().unwrap_or_else(|| kind.synthetic_shape());
    let m = Model::new(kind, shape, data.num_classes(), 0, &Device::Cpu)?;
    Ok(m.params.len())
}
