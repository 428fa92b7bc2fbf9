//! The in-process collective: the hub has brought every participant's buffer to the pulling
//! thread, which combines them with `average::reduce`'s fused, parallel reductions (the design
//! card's shape: gather, weigh, send back).

use super::Collective;
use crate::algo::{Snapshot, WorkerStats};
use crate::average::{weighted_center, Weights};
use crate::model::LayerEntry;
use crate::{Error, Result};

/// Participants' buffers held in one address space.
pub struct Gathered<'a> {
    workers: Vec<usize>,
    stats: Vec<WorkerStats>,
    xs: Vec<&'a [f32]>,
    table: &'a [LayerEntry],
}

impl<'a> Gathered<'a> {
    /// The parameters and statistics of `snaps` (sorted by worker), laid out by `table`.
    pub fn snapshots(snaps: &[&'a Snapshot], table: &'a [LayerEntry]) -> Self {
        Self {
            workers: snaps.iter().map(|s| s.worker).collect(),
            stats: snaps.iter().map(|s| s.stats()).collect(),
            xs: snaps.iter().map(|s| s.params.as_slice()).collect(),
            table,
        }
    }

    /// Plain buffers (gradients for DDP's all-reduce) of `workers`, with no statistics.
    pub fn buffers(workers: Vec<usize>, xs: Vec<&'a [f32]>, table: &'a [LayerEntry]) -> Self {
        Self {
            stats: Vec::new(),
            workers,
            xs,
            table,
        }
    }
}

impl Collective for Gathered<'_> {
    fn participants(&self) -> &[usize] {
        &self.workers
    }

    fn all_gather(&mut self) -> Result<Vec<WorkerStats>> {
        Ok(self.stats.clone())
    }

    fn all_reduce_sum(&mut self, scale: Option<&Weights>) -> Result<Vec<f32>> {
        if self.xs.is_empty() {
            return Err(Error::Internal("all-reduce over no participants".into()));
        }
        // Unscaled is a weighted sum with unit weights: 1 * x is x exactly in IEEE arithmetic,
        // so this is the plain sum, added in participant order, through the same fused kernel.
        let ones;
        let w = match scale {
            Some(w) => w,
            None => {
                ones = Weights::PerWorker(vec![1.0; self.xs.len()]);
                &ones
            }
        };
        let mut out = vec![0f32; self.xs[0].len()];
        weighted_center(&self.xs, w, self.table, &mut out);
        Ok(out)
    }

    fn broadcast(&mut self, worker: usize) -> Result<Vec<f32>> {
        let i = self
            .workers
            .iter()
            .position(|&w| w == worker)
            .ok_or_else(|| {
                Error::Internal(format!("broadcast from worker {worker}, not in the round"))
            })?;
        Ok(self.xs[i].to_vec())
    }
}
