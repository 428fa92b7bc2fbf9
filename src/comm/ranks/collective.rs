//! The round's collective across ranks, hierarchical: a rank first combines its own workers with
//! the in-process reductions ([`Gathered`]), then one all-reduce across ranks adds the ranks'
//! partial sums. The sum's order differs from one process's (worker by worker), so results agree
//! with a one-process run to f32 rounding, not bit for bit. Buffers are host memory here: a GPU
//! rank's buffers are staged to the host first (`super::Ranks::collective`).

use crate::algo::WorkerStats;
use crate::average::Weights;
use crate::buffer::Flat;
use crate::comm::collective::Collective;
use crate::comm::gathered::Gathered;
use crate::ranks::{Peers, RankLayout};
use crate::Result;

/// Elements per cross-rank all-reduce call: 256 Ki f32 (1 MiB) fits in L2 with this rank's
/// workers' slices of it, and is large enough that the per-call latency (microseconds) is small
/// next to the transfer.
pub const WINDOW: usize = 256 * 1024;

/// Every worker of the run as participants; this rank holds the buffers of its own.
pub struct RankCollective<'a> {
    local: Gathered<'a>,
    peers: &'a mut dyn Peers,
    layout: RankLayout,
    /// Global ids of every worker, and their statistics as the ranks agreed them.
    workers: Vec<usize>,
    stats: Vec<WorkerStats>,
    len: usize,
}

impl<'a> RankCollective<'a> {
    /// `local` holds this rank's workers (local ids, in order) with buffers of `len` elements;
    /// `stats` are every worker's, global ids (empty for a gradient all-reduce).
    pub fn new(
        local: Gathered<'a>,
        peers: &'a mut dyn Peers,
        stats: Vec<WorkerStats>,
        len: usize,
    ) -> Self {
        let layout = peers.layout();
        Self {
            local,
            layout,
            workers: (0..layout.global_workers()).collect(),
            stats,
            peers,
            len,
        }
    }

    /// This rank's rows of global weights.
    fn local_weights(&self, w: &Weights) -> Weights {
        let (first, k) = (self.layout.first_worker(), self.layout.local_workers);
        match w {
            Weights::PerWorker(w) => Weights::PerWorker(w[first..first + k].to_vec()),
            Weights::PerLayer { layers, w } => Weights::PerLayer {
                layers: *layers,
                w: w[first * layers..(first + k) * layers].to_vec(),
            },
        }
    }
}

impl Collective for RankCollective<'_> {
    fn participants(&self) -> &[usize] {
        &self.workers
    }

    fn all_gather(&mut self) -> Result<Vec<WorkerStats>> {
        Ok(self.stats.clone())
    }

    fn all_reduce_sum(&mut self, scale: Option<&Weights>) -> Result<Flat> {
        let mine = scale.map(|w| self.local_weights(w));
        // Window by window, pipelined: while MPI sums window k across ranks, this rank's workers
        // are combined into window k+1. A window's combine is still in cache when MPI reads it,
        // so the local sum costs one read of each worker's buffer and no full-size intermediate.
        let n = self.len;
        let mut out = vec![0f32; n];
        let starts: Vec<usize> = (0..n).step_by(WINDOW).collect();
        let span = |s: usize| s..(s + WINDOW).min(n);
        let Some(&first) = starts.first() else {
            return Ok(Flat::Host(out));
        };
        let width = WINDOW.min(n);
        let (mut ready, mut next) = (vec![0f32; width], vec![0f32; width]);
        self.local
            .sum_window(mine.as_ref(), first, &mut ready[..span(first).len()])?;
        let (local, peers) = (&self.local, &mut *self.peers);
        for (k, &s) in starts.iter().enumerate() {
            let this = span(s);
            let following = starts.get(k + 1).map(|&t| span(t));
            let (reduced, combined) = rayon::join(
                || peers.all_reduce_sum_into(&ready[..this.len()], &mut out[this.clone()]),
                || match &following {
                    Some(f) => local.sum_window(mine.as_ref(), f.start, &mut next[..f.len()]),
                    None => Ok(()),
                },
            );
            reduced?;
            combined?;
            std::mem::swap(&mut ready, &mut next);
        }
        Ok(Flat::Host(out))
    }

    fn broadcast(&mut self, worker: usize) -> Result<Flat> {
        let owner = self.layout.owner(worker);
        let mut buf = if owner == self.layout.rank {
            self.local
                .broadcast(worker - self.layout.first_worker())?
                .into_vec()?
        } else {
            vec![0f32; self.len]
        };
        self.peers.broadcast(&mut buf, owner);
        Ok(Flat::Host(buf))
    }
}
