//! NCCL across ranks (feature `nccl`, launched under MPI): one communicator over every rank's GPU,
//! created from an id that rank 0 makes and sends to the others through [`Peers`] (MPI), the way
//! Horovod and torchrun bootstrap NCCL. A device buffer is summed in place by NCCL's all-reduce on
//! the rank's own stream: the bytes go GPU to GPU (NVLink, PCIe or the network), never through
//! this process's memory.
//!
//! The communicator belongs to the thread that made it (NCCL's rule): the hub, which
//! alone makes a rank's collective calls.

use std::sync::Arc;

use super::unique_id::{share_id, ID_BYTES};
use super::{local_rank, Peers};
use crate::cuda::cudarc::driver::{CudaStream, DevicePtrMut};
use crate::cuda::cudarc::nccl::{Comm, Id, ReduceOp};
use crate::{Error, Result};

/// One NCCL communicator over the ranks of a run, one GPU each.
pub struct NcclRanks {
    comm: Comm,
}

impl NcclRanks {
    /// Every rank calls this at the same point, with the stream of the GPU it trains on: rank 0
    /// makes the id, every rank receives it over `peers`, and all join the communicator.
    pub fn new(peers: &mut dyn Peers, stream: Arc<CudaStream>) -> Result<Self> {
        let layout = peers.layout();
        crate::cuda::loading::require_eager()?;
        let id = share_id(peers, || {
            let id = Id::new().map_err(|e| nccl_error("making the unique id", e))?;
            let bytes: [u8; ID_BYTES] = id.internal().map(|c| c as u8);
            Ok(bytes)
        })?;
        let id = Id::uninit(id.map(|b| b as ::core::ffi::c_char));
        let comm = Comm::from_rank(stream, layout.rank, layout.ranks, id).map_err(|e| {
            nccl_error(
                &format!(
                    "joining the communicator as rank {} of {}",
                    layout.rank, layout.ranks
                ),
                e,
            )
        })?;
        Ok(Self { comm })
    }

    /// `buf <-` the sum over ranks of every rank's `buf`, queued on the communicator's stream.
    pub fn all_reduce_sum(&self, buf: &mut impl DevicePtrMut<f32>) -> Result<()> {
        self.comm
            .all_reduce_in_place(buf, &ReduceOp::Sum)
            .map(|_| ())
            .map_err(|e| nccl_error("all-reduce", e))
    }

    /// The GPU ordinal this rank's communicator runs on.
    pub fn ordinal(&self) -> usize {
        self.comm.ordinal()
    }
}

/// The GPU a rank trains on when several ranks share a machine: its rank among that machine's
/// ranks, round-robin over the `gpus` the machine shows it.
pub fn rank_gpu(gpus: usize) -> Option<usize> {
    (gpus > 0).then(|| local_rank().unwrap_or(0) % gpus)
}

fn nccl_error(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Internal(format!("NCCL: {what}: {e:?}"))
}
