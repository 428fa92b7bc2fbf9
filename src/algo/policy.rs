//! What a decision is made of: the participants' small statistics ([`WorkerStats`]), the
//! [`Plan`] a [`Policy`] decides from them, and how the plan's center is formed ([`Mix`]).

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
