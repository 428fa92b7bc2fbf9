//! LSGD (Teng et al. 2019): the leader is the worker with the lowest training loss averaged over
//! its last 4 mini-batches; everybody is pulled toward it. Workers also take a proximal step
//! toward the last leader after every local step (see `WorkerPlan::prox`).

use std::sync::Arc;

use super::{Averaging, RoundResult, Snapshot, Target};
use crate::average::{leader, LossWindow};
use crate::model::LayerEntry;

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

/// The leader among `snapshots` (an index into them): lowest recent loss, ties to the lower index.
pub fn pick_leader(snapshots: &[&Snapshot]) -> usize {
    let windows: Vec<LossWindow> = snapshots
        .iter()
        .map(|s| {
            let mut w = LossWindow::new();
            if let Some(l) = s.recent_loss {
                w.push(l);
            }
            w
        })
        .collect();
    leader(&windows)
}

impl Averaging for Lsgd {
    fn round(&mut self, snapshots: &[&Snapshot], _: &[LayerEntry]) -> RoundResult {
        let lead = pick_leader(snapshots);
        RoundResult {
            target: Some(Target {
                point: Arc::new(snapshots[lead].params.clone()),
                lambda: self.lambda,
            }),
            leader: Some(snapshots[lead].worker),
            ..RoundResult::default()
        }
    }
}
