//! A round's data movement as the primitives every collective library offers: all-gather of the
//! small statistics, all-reduce-sum of the participants' buffers, broadcast of one participant's.
//! Each transport of `comm` implements them its own way; `round::RoundData` calls only these.

use crate::algo::WorkerStats;
use crate::average::Weights;
use crate::buffer::{Flat, RoundBuffer};
use crate::Result;

/// One exchange's participants: worker ids (sorted, in this process's numbering), their
/// statistics (empty for plain buffers such as DDP's gradients) and their buffers, in the same
/// order.
pub struct Participants<'a, B = Flat> {
    pub workers: Vec<usize>,
    pub stats: Vec<WorkerStats>,
    pub buffers: Vec<&'a B>,
}

impl<'a, B> Participants<'a, B> {
    /// Plain buffers of `workers`, with no statistics.
    pub fn buffers(workers: Vec<usize>, buffers: Vec<&'a B>) -> Self {
        Self {
            workers,
            stats: Vec::new(),
            buffers,
        }
    }
}

/// One round's participants (workers, sorted by id) and their flat buffers, seen through the
/// primitives a collective library offers. Results are buffers of kind `B` (host vectors or GPU
/// buffers for the trainer's [`Flat`]) in the layer table's layout.
pub trait Collective<B: RoundBuffer = Flat> {
    /// The participating workers, sorted.
    fn participants(&self) -> &[usize];

    /// Every participant's statistics, in participant order (all-gather of small vectors).
    fn all_gather(&mut self) -> Result<Vec<WorkerStats>>;

    /// `sum_i s_i x_i` over the participants (all-reduce-sum). `scale` gives each participant's
    /// own factors (per worker, or per worker and layer), applied locally before the sum; `None`
    /// sums the buffers as they are. Terms are added in participant order, so every
    /// implementation that keeps that order gives the same bits.
    fn all_reduce_sum(&mut self, scale: Option<&Weights>) -> Result<B>;

    /// `(sum_i x_i) / M` over the M participants: the all-reduce-sum divided by the participant
    /// count (NCCL's `Avg`). An implementation may fuse the division into its sum; the result must
    /// be the sum's bits divided, as this default gives.
    fn all_reduce_mean(&mut self) -> Result<B> {
        let m = self.participants().len() as f32;
        let mut sum = self.all_reduce_sum(None)?;
        sum.divide(m)?;
        Ok(sum)
    }

    /// The buffer of participant `worker`, to everybody (broadcast from that root).
    fn broadcast(&mut self, worker: usize) -> Result<B>;
}
