//! The in-process transport (`--round hub`): the hub thread holds every participant's buffer
//! (the workers' messages brought them) and combines them where the round runs. Host buffers go
//! through `average::reduce`'s fused, parallel reductions; GPU buffers are read in place on the
//! hub's GPU or peer-copied there first, and combined by our kernels (`buffer::RoundBuffer`).

use super::collective::{Collective, Participants};
use super::transport::Transport;
use crate::algo::WorkerStats;
use crate::average::{sum, weighted_center_window, Weights};
use crate::buffer::{Flat, FlatPlace, RoundBuffer};
use crate::model::LayerEntry;
use crate::ranks::RankLayout;
use crate::{Error, Result};

/// The transport of one process whose hub combines the buffers itself, at `place` (host memory,
/// or the hub's stream on the first GPU).
pub struct InProcess {
    pub layout: RankLayout,
    pub table: Vec<LayerEntry>,
    pub place: FlatPlace,
}

impl Transport for InProcess {
    fn layout(&self) -> RankLayout {
        self.layout
    }

    fn collective<'a>(&'a mut self, parts: Participants<'a>) -> Result<Box<dyn Collective + 'a>> {
        Ok(Box::new(Gathered::from_parts(
            parts,
            &self.table,
            self.place.clone(),
        )))
    }
}

/// Participants' buffers held by one thread.
pub struct Gathered<'a, B: RoundBuffer = Flat> {
    workers: Vec<usize>,
    stats: Vec<WorkerStats>,
    xs: Vec<&'a B>,
    table: &'a [LayerEntry],
    /// Where the round's results are made.
    place: B::Place,
}

impl<'a, B: RoundBuffer> Gathered<'a, B> {
    /// Buffers `xs` of `workers` (sorted), with their statistics (empty for plain buffers such as
    /// DDP's gradients), laid out by `table`; results are made at `place`.
    pub fn new(
        workers: Vec<usize>,
        stats: Vec<WorkerStats>,
        xs: Vec<&'a B>,
        table: &'a [LayerEntry],
        place: B::Place,
    ) -> Self {
        Self {
            workers,
            stats,
            xs,
            table,
            place,
        }
    }

    /// `parts`, laid out by `table`; results are made at `place`.
    pub fn from_parts(
        parts: Participants<'a, B>,
        table: &'a [LayerEntry],
        place: B::Place,
    ) -> Self {
        Self::new(parts.workers, parts.stats, parts.buffers, table, place)
    }

    fn check(&self) -> Result<()> {
        if self.xs.is_empty() {
            return Err(Error::Internal("all-reduce over no participants".into()));
        }
        Ok(())
    }
}

impl<'a> Gathered<'a, Flat> {
    /// Elements `start .. start + out.len()` of [`Collective::all_reduce_sum`], into `out`, with
    /// the same terms in the same order: one window of the sum, for a caller that hands each
    /// window to a cross-rank all-reduce while it is still in cache. Host buffers only.
    pub fn sum_window(&self, scale: Option<&Weights>, start: usize, out: &mut [f32]) -> Result<()> {
        self.check()?;
        let xs: Vec<&[f32]> = self
            .xs
            .iter()
            .map(|x| {
                x.as_host().ok_or_else(|| {
                    Error::Internal("a windowed sum over GPU buffers (stage them first)".into())
                })
            })
            .collect::<Result<_>>()?;
        match scale {
            Some(w) => weighted_center_window(&xs, w, self.table, start, out),
            None => {
                let end = start + out.len();
                let parts: Vec<&[f32]> = xs.iter().map(|x| &x[start..end]).collect();
                sum(&parts, out)
            }
        }
        Ok(())
    }
}

impl<B: RoundBuffer> Collective<B> for Gathered<'_, B> {
    fn participants(&self) -> &[usize] {
        &self.workers
    }

    fn all_gather(&mut self) -> Result<Vec<WorkerStats>> {
        Ok(self.stats.clone())
    }

    fn all_reduce_sum(&mut self, scale: Option<&Weights>) -> Result<B> {
        self.check()?;
        B::combine(&self.xs, scale, self.table, &self.place)
    }

    fn all_reduce_mean(&mut self) -> Result<B> {
        self.check()?;
        B::mean(&self.xs, &self.place)
    }

    fn broadcast(&mut self, worker: usize) -> Result<B> {
        broadcast_copy(&self.workers, &self.xs, worker, &self.place)
    }
}

/// A broadcast between buffers one thread holds: participant `worker`'s buffer (of `xs`, in the
/// order of `workers`) copied to `place`.
pub(super) fn broadcast_copy<B: RoundBuffer>(
    workers: &[usize],
    xs: &[&B],
    worker: usize,
    place: &B::Place,
) -> Result<B> {
    let i = workers.iter().position(|&w| w == worker).ok_or_else(|| {
        Error::Internal(format!("broadcast from worker {worker}, not in the round"))
    })?;
    xs[i].copy_to(place)
}
