//! The transport across processes (`mpirun`/`srun`, feature `mpi`): every rank runs a hub over
//! its own workers, and the hubs of all ranks move the round's bytes and agree with each other
//! over [`Peers`] (MPI, or NCCL for the buffers of GPU ranks).
//!
//! - `collective`: [`RankCollective`], local-then-global: each rank combines its own workers,
//!   then one all-reduce across ranks.
//! - `header`: the agreement before each lockstep exchange and at the end.
//! - `saves`: every rank's saved workers gathered to rank 0 for a checkpoint.

mod collective;
mod header;
mod saves;

pub use collective::{RankCollective, WINDOW as ALL_REDUCE_WINDOW};

use crate::buffer::{Flat, FlatPlace, RoundBuffer};
use crate::checkpoint::WorkerSave;
use crate::comm::collective::{Collective, Participants};
use crate::comm::gathered::Gathered;
use crate::comm::transport::{Agreed, Ended, Ending, Proposal, Transport};
use crate::model::LayerEntry;
use crate::ranks::{Peers, RankLayout};
use crate::{Error, Result};

/// The ranks of a run across processes, as this rank's hub sees them.
pub struct Ranks {
    peers: Box<dyn Peers>,
    table: Vec<LayerEntry>,
    /// Host copies of this exchange's GPU buffers (the cross-rank all-reduce takes host memory).
    staged: Vec<Option<Flat>>,
}

impl Ranks {
    /// Over `peers`, for buffers laid out by `table`.
    pub fn new(peers: Box<dyn Peers>, table: Vec<LayerEntry>) -> Self {
        Self {
            peers,
            table,
            staged: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.table.last().map_or(0, |e| e.offset + e.len)
    }
}

impl Transport for Ranks {
    fn layout(&self) -> RankLayout {
        self.peers.layout()
    }

    /// This rank's participants (its own workers, local ids) with `parts.stats` every worker's
    /// statistics as the ranks agreed them (empty for plain buffers).
    fn collective<'a>(&'a mut self, parts: Participants<'a>) -> Result<Box<dyn Collective + 'a>> {
        let len = self.len();
        self.staged = parts
            .buffers
            .iter()
            .map(|b| match b.as_host() {
                Some(_) => Ok(None),
                None => b.copy_to(&FlatPlace::Host).map(Some),
            })
            .collect::<Result<_>>()?;
        let xs: Vec<&Flat> = parts
            .buffers
            .iter()
            .zip(&self.staged)
            .map(|(b, s)| s.as_ref().unwrap_or(b))
            .collect();
        let local = Gathered::new(parts.workers, Vec::new(), xs, &self.table, FlatPlace::Host);
        let peers = self.peers.as_mut();
        Ok(Box::new(RankCollective::new(
            local,
            peers,
            parts.stats,
            len,
        )))
    }

    fn agree(&mut self, mine: Proposal<'_>) -> Result<Agreed> {
        Ok(header::agree(self.peers.as_mut(), &mine, self.table.len()))
    }

    fn gather_saves(&mut self, saves: Vec<WorkerSave>) -> Option<Vec<WorkerSave>> {
        saves::gather_saves(self.peers.as_mut(), saves)
    }

    fn agree_end(&mut self, mine: Ending<'_>) -> Result<Ended> {
        Ok(header::agree_end(self.peers.as_mut(), &mine))
    }
}

/// Checks that every rank starts from the same initial point (the same seed builds the same model
/// everywhere; a different library or CPU could still differ): a hash of its bits, all-gathered.
pub fn same_start_everywhere(peers: &mut dyn Peers, x0: &[f32]) -> Result<()> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    x0.iter().for_each(|v| v.to_bits().hash(&mut h));
    let bits = h.finish();
    // Two f64 halves of the 64-bit hash: exact.
    let mine = [(bits >> 32) as f64, (bits & 0xffff_ffff) as f64];
    let all = peers.all_gather(&mine);
    if let Some(r) = all.iter().position(|v| v[..] != mine[..]) {
        return Err(Error::Internal(format!(
            "rank {r} builds a different initial model than rank {} (same seed, other numbers): ranks must run the same binary on the same kind of CPU",
            peers.layout().rank
        )));
    }
    Ok(())
}
