//! The in-process collective: the hub has brought every participant's buffer to the pulling
//! thread, which combines them with `average::reduce`'s fused, parallel reductions (the design
//! card's shape: gather, weigh, send back).

use super::Collective;
use crate::algo::{Snapshot, WorkerStats};
use crate::average::{sum, uniform_average, weighted_center, weighted_center_window, Weights};
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

    /// Elements `start .. start + out.len()` of [`Collective::all_reduce_sum`], into `out`, with
    /// the same terms in the same order: one window of the sum, for a caller that hands each
    /// window to a cross-rank all-reduce while it is still in cache.
    pub fn sum_window(&self, scale: Option<&Weights>, start: usize, out: &mut [f32]) -> Result<()> {
        if self.xs.is_empty() {
            return Err(Error::Internal("all-reduce over no participants".into()));
        }
        match scale {
            Some(w) => weighted_center_window(&self.xs, w, self.table, start, out),
            None => {
                let end = start + out.len();
                let parts: Vec<&[f32]> = self.xs.iter().map(|x| &x[start..end]).collect();
                sum(&parts, out)
            }
        }
        Ok(())
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
        // Both add the terms in participant order, so a mean formed from the plain sum is the
        // bits `uniform_average` gives.
        let mut out = vec![0f32; self.xs[0].len()];
        match scale {
            Some(w) => weighted_center(&self.xs, w, self.table, &mut out),
            None => sum(&self.xs, &mut out),
        }
        Ok(out)
    }

    fn all_reduce_mean(&mut self) -> Result<Vec<f32>> {
        if self.xs.is_empty() {
            return Err(Error::Internal("all-reduce over no participants".into()));
        }
        // The division happens while each piece of the sum is still in cache.
        let mut out = vec![0f32; self.xs[0].len()];
        uniform_average(&self.xs, &mut out);
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
