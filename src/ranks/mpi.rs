//! [`Peers`] over MPI (feature `mpi`): the `mpi` crate (rsmpi) on the system's MPI library, so a
//! run launched by `mpirun -np R` or Slurm's `srun` trains across processes and machines.
//!
//! MPI is initialised with `MPI_THREAD_SERIALIZED`: the main thread makes the set-up calls, then
//! hands the communicator to the hub, the only one to use it from there on.

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Threading;

use super::{Peers, RankLayout};
use crate::{Error, Result};

/// MPI for the life of the process; finalised when dropped (after every rank's run has ended).
pub struct MpiWorld {
    _universe: Universe,
}

/// The communicator of all ranks, as [`Peers`].
pub struct MpiPeers {
    comm: SimpleCommunicator,
    layout: RankLayout,
}

// SAFETY: MPI was initialised with MPI_THREAD_SERIALIZED, which allows calls from any thread as
// long as no two are concurrent. The communicator is used by the main thread during set-up and
// then moved, whole, to the hub, which alone calls it afterwards, or hands one call at
// a time to a thread of the reduction pool and waits for it (the pipelined all-reduce).
unsafe impl Send for MpiPeers {}

/// Starts MPI; `workers` is `--workers` (each rank's). Errors if MPI cannot give the threading
/// level the trainer needs.
pub fn start(workers: usize) -> Result<(MpiWorld, MpiPeers)> {
    let (universe, level) = mpi::initialize_with_threading(Threading::Serialized)
        .ok_or_else(|| Error::Internal("MPI was initialised twice".into()))?;
    if level < Threading::Serialized {
        return Err(Error::usage(format!(
            "MPI: the library gives thread level {level:?}; grawa-train needs Serialized (an MPI built with thread support)"
        )));
    }
    let comm = universe.world();
    let layout = RankLayout {
        rank: comm.rank() as usize,
        ranks: comm.size() as usize,
        local_workers: workers,
    };
    Ok((
        MpiWorld {
            _universe: universe,
        },
        MpiPeers { comm, layout },
    ))
}

impl Peers for MpiPeers {
    fn layout(&self) -> RankLayout {
        self.layout
    }

    fn all_gather(&mut self, mine: &[f64]) -> Vec<Vec<f64>> {
        let mut all = vec![0f64; mine.len() * self.layout.ranks];
        self.comm.all_gather_into(mine, &mut all[..]);
        all.chunks(mine.len().max(1)).map(<[f64]>::to_vec).collect()
    }

    fn all_reduce_sum_into(&mut self, send: &[f32], out: &mut [f32]) -> Result<()> {
        if send.len() != out.len() {
            return Err(Error::Internal(format!(
                "all-reduce: {} elements sent, {} to receive",
                send.len(),
                out.len()
            )));
        }
        self.comm.all_reduce_into(send, out, SystemOperation::sum());
        Ok(())
    }

    fn all_gather_f32(&mut self, mine: &[f32]) -> Vec<Vec<f32>> {
        let mut all = vec![0f32; mine.len() * self.layout.ranks];
        self.comm.all_gather_into(mine, &mut all[..]);
        all.chunks(mine.len().max(1)).map(<[f32]>::to_vec).collect()
    }

    fn broadcast(&mut self, buf: &mut [f32], root: usize) {
        self.comm.process_at_rank(root as i32).broadcast_into(buf);
    }
}
