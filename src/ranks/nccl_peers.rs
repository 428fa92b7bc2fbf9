//! [`Peers`] for GPU ranks (feature `nccl`): the small agreements (headers, statistics,
//! checkpoint data) stay on MPI, and the round's and DDP's all-reduces and the leader's
//! broadcast go over one NCCL communicator on the rank's GPU.
//!
//! The round is still gathered in host memory (the rank transport stages a GPU worker's snapshot
//! to the host, `comm::ranks`), so each window goes up to the GPU, through NCCL, and back. The bytes
//! between ranks move GPU to GPU (NVLink, PCIe, InfiniBand with GPUDirect), which is what NCCL
//! is for across machines; with a device-resident round the staging copies go away.

use std::sync::Arc;

use super::nccl::NcclRanks;
use super::{Peers, RankLayout};
use crate::cuda::cudarc::driver::{CudaContext, CudaSlice, CudaStream};
use crate::{Error, Result};

/// MPI for the small calls, NCCL (made at first use, on the thread that uses it) for buffers.
pub struct NcclPeers {
    mpi: Box<dyn Peers>,
    gpu: usize,
    nccl: Option<(NcclRanks, Arc<CudaStream>, CudaSlice<f32>)>,
}

// SAFETY: the communicator and its staging buffer are created by the first buffer call and used
// by one thread at a time from then on (NCCL's rule for a communicator): the hub, or a
// thread of the reduction pool it hands one all-reduce to and waits for. Before that `nccl` is
// None and only the MPI half moves between threads, which is Send itself.
unsafe impl Send for NcclPeers {}

impl NcclPeers {
    /// `mpi` for the small calls; the buffers go over NCCL on GPU `gpu` (this rank's first).
    pub fn new(mpi: Box<dyn Peers>, gpu: usize) -> Self {
        Self {
            mpi,
            gpu,
            nccl: None,
        }
    }

    /// The communicator, its stream and a staging buffer of at least `len` elements. Every rank
    /// reaches its first buffer call at the same collective point, so the bootstrap (an MPI
    /// all-gather of the id) happens in step on all of them.
    fn nccl(&mut self, len: usize) -> Result<&mut (NcclRanks, Arc<CudaStream>, CudaSlice<f32>)> {
        let gpu_err = |what: &str, e: &dyn std::fmt::Display| {
            Error::Internal(format!("GPU {}: {what}: {e}", self.gpu))
        };
        if self.nccl.is_none() {
            let ctx = CudaContext::new(self.gpu).map_err(|e| gpu_err("opening it", &e))?;
            let stream = ctx.new_stream().map_err(|e| gpu_err("a stream", &e))?;
            let comm = NcclRanks::new(self.mpi.as_mut(), stream.clone())?;
            let staging = stream
                .alloc_zeros::<f32>(len.max(1))
                .map_err(|e| gpu_err("staging memory", &e))?;
            self.nccl = Some((comm, stream, staging));
        }
        let (_, stream, staging) = self.nccl.as_mut().expect("made above");
        if staging.len() < len {
            *staging = stream
                .alloc_zeros::<f32>(len)
                .map_err(|e| Error::Internal(format!("GPU staging memory: {e}")))?;
        }
        Ok(self.nccl.as_mut().expect("made above"))
    }
}

fn staged(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("GPU staging copy: {e}"))
}

impl Peers for NcclPeers {
    fn layout(&self) -> RankLayout {
        self.mpi.layout()
    }

    fn all_gather(&mut self, mine: &[f64]) -> Vec<Vec<f64>> {
        self.mpi.all_gather(mine)
    }

    fn all_reduce_sum_into(&mut self, send: &[f32], out: &mut [f32]) -> Result<()> {
        let (comm, stream, staging) = self.nccl(send.len())?;
        let mut window = staging.slice_mut(..send.len());
        stream.memcpy_htod(send, &mut window).map_err(staged)?;
        if let Err(e) = comm.all_reduce_sum(&mut window) {
            // The other ranks' all-reduces now wait for this one for ever: abort the
            // communicator (dropping it is ncclCommAbort) and end the run with the error; the
            // MPI launcher then stops the other ranks.
            self.nccl = None;
            return Err(e);
        }
        stream.memcpy_dtoh(&window, out).map_err(staged)?;
        stream.synchronize().map_err(staged)
    }

    fn broadcast(&mut self, buf: &mut [f32], root: usize) {
        self.mpi.broadcast(buf, root)
    }

    fn all_gather_f32(&mut self, mine: &[f32]) -> Vec<Vec<f32>> {
        self.mpi.all_gather_f32(mine)
    }
}
