//! LSGD (Teng et al. 2019): the leader is the worker with the lowest training loss averaged over
//! its last 4 mini-batches; everybody is pulled toward it. Workers also take a proximal step
//! toward the last leader after every local step (see `WorkerPlan::prox`).

use super::loss_window::{leader, LossWindow};
use super::policy::{Mix, Plan, Policy, WorkerStats};

/// Pull toward the leader with strength `lambda`.
pub struct Lsgd {
    lambda: f32,
}

impl Lsgd {
    /// LSGD with pull strength `lambda`.
    pub fn new(lambda: f32) -> Self {
        Self { lambda }
    }
}

/// The leader among `stats` (a worker id): lowest recent loss, ties to the lower worker; a worker
/// with no loss ranks last.
pub fn pick_leader(stats: &[WorkerStats]) -> usize {
    let windows: Vec<LossWindow> = stats
        .iter()
        .map(|s| {
            let mut w = LossWindow::new();
            if let Some(l) = s.recent_loss {
                w.push(l);
            }
            w
        })
        .collect();
    stats[leader(&windows)].worker
}

impl Policy for Lsgd {
    fn decide(&mut self, stats: &[WorkerStats]) -> Plan {
        Plan {
            mix: Some(Mix::Leader(pick_leader(stats))),
            lambda: self.lambda,
            norms: None,
        }
    }
}
