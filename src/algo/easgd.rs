//! EASGD (Zhang et al. 2015). With M workers and moving rate beta, each worker and the center
//! exchange `alpha (x_i - c)` with `alpha = beta / M`: the worker moves toward the center by it,
//! the center toward the worker by the same amount. Synchronously, with every worker at once, that
//! is `x_i <- (1 - beta/M) x_i + (beta/M) c_old` and `c <- (1 - beta) c_old + beta mean_i(x_i)`
//! (the mean taken before the pull); asynchronously, one exchange per arriving snapshot. The
//! center starts at the common initial point and is what gets evaluated; it is data, so it lives
//! in the round (`crate::round::RoundData`), not here.

use super::policy::{Mix, Plan, Policy, WorkerStats};

/// EASGD's moving rate and the run's worker count.
pub struct Easgd {
    beta: f32,
    workers: usize,
}

impl Easgd {
    /// EASGD with moving rate `beta` over `workers` workers.
    pub fn new(beta: f32, workers: usize) -> Self {
        Self { beta, workers }
    }
}

impl Policy for Easgd {
    fn decide(&mut self, _: &[WorkerStats]) -> Plan {
        Plan {
            mix: Some(Mix::Elastic { beta: self.beta }),
            lambda: self.beta / self.workers as f32,
            norms: None,
        }
    }
}
