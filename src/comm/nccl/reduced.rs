//! A round whose all-reduces go through a [`Reducer`]: a collective library that lives for the
//! whole run (NCCL's communicators over the run's GPUs, `--round nccl`), instead of the hub
//! combining the gathered buffers itself (`--round hub`, [`crate::comm::Gathered`]). Broadcasts
//! stay copies: NCCL would move the same bytes.

use crate::algo::WorkerStats;
use crate::average::Weights;
use crate::buffer::{Flat, FlatPlace};
use crate::comm::collective::Collective;
use crate::comm::gathered::broadcast_copy;
use crate::Result;

/// Sums of participants' buffers by a collective library.
pub trait Reducer {
    /// `sum_i s_i x_i` over the buffers `xs` of `workers` (sorted); `scale` as in
    /// [`Collective::all_reduce_sum`]. The order of the terms is the library's.
    fn sum(&self, workers: &[usize], xs: &[&Flat], scale: Option<&Weights>) -> Result<Flat>;

    /// `(sum_i x_i) / M` over the M buffers.
    fn mean(&self, workers: &[usize], xs: &[&Flat]) -> Result<Flat>;

    /// Its name in messages and metrics ("nccl").
    fn name(&self) -> &'static str;
}

/// Participants' buffers, all-reduced by a [`Reducer`].
pub struct Reduced<'a> {
    workers: Vec<usize>,
    stats: Vec<WorkerStats>,
    xs: Vec<&'a Flat>,
    reducer: &'a dyn Reducer,
    /// Where a broadcast's copy is made.
    place: FlatPlace,
}

impl<'a> Reduced<'a> {
    /// `xs` of `workers` (sorted) with their statistics (empty for gradients).
    pub fn new(
        workers: Vec<usize>,
        stats: Vec<WorkerStats>,
        xs: Vec<&'a Flat>,
        reducer: &'a dyn Reducer,
        place: FlatPlace,
    ) -> Self {
        Self {
            workers,
            stats,
            xs,
            reducer,
            place,
        }
    }
}

impl Collective for Reduced<'_> {
    fn participants(&self) -> &[usize] {
        &self.workers
    }

    fn all_gather(&mut self) -> Result<Vec<WorkerStats>> {
        Ok(self.stats.clone())
    }

    fn all_reduce_sum(&mut self, scale: Option<&Weights>) -> Result<Flat> {
        self.reducer.sum(&self.workers, &self.xs, scale)
    }

    fn all_reduce_mean(&mut self) -> Result<Flat> {
        self.reducer.mean(&self.workers, &self.xs)
    }

    fn broadcast(&mut self, worker: usize) -> Result<Flat> {
        broadcast_copy(&self.workers, &self.xs, worker, &self.place)
    }
}
