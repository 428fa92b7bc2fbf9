//! A run started from the command line: in this process, or as one rank of a run across
//! processes (`mpirun -np R grawa-train ...`, feature `mpi`).

use crate::config::RunConfig;
use crate::Result;

/// Trains in this process, or, started by an MPI launcher (`mpirun -np R`, `srun`), as one of R
/// ranks of one run (feature `mpi`).
pub(super) fn launch(cfg: RunConfig) -> Result<crate::metrics::Summary> {
    match crate::ranks::launched_size().filter(|&n| n > 1) {
        None => crate::train::run(cfg),
        Some(size) => launch_rank(cfg, size),
    }
}

/// This process as one rank of `size`: MPI started, the run's layout recorded, what is not
/// supported across processes refused, and MPI finalised once this rank's run is over.
#[cfg(feature = "mpi")]
fn launch_rank(mut cfg: RunConfig, _size: usize) -> Result<crate::metrics::Summary> {
    let (world, peers) = crate::ranks::mpi::start(cfg.workers)?;
    cfg.ranks = crate::ranks::Peers::layout(&peers).ranks;
    crate::ranks::check_supported(&cfg)?;
    let peers = gpu_rank(&mut cfg, Box::new(peers))?;
    let result = crate::train::run_with(cfg, Some(peers));
    drop(world);
    result
}

/// A GPU rank trains on its machine-local share of the GPUs; with `nccl` its buffers (the
/// round's and DDP's all-reduces) go over NCCL, its small agreements stay on MPI.
#[cfg(feature = "mpi")]
fn gpu_rank(
    cfg: &mut RunConfig,
    peers: Box<dyn crate::ranks::Peers>,
) -> Result<Box<dyn crate::ranks::Peers>> {
    if cfg.gpus.is_empty() {
        return Ok(peers);
    }
    let visible = crate::gpus::gpu_count()
        .map_err(|reason| crate::Error::usage(format!("--gpus: {reason}")))?;
    let local = crate::ranks::local_rank().unwrap_or(0);
    cfg.gpus =
        crate::ranks::gpus_for_rank(&cfg.gpus, local, visible).map_err(crate::Error::usage)?;
    #[cfg(feature = "nccl")]
    let peers: Box<dyn crate::ranks::Peers> =
        Box::new(crate::ranks::nccl_peers::NcclPeers::new(peers, cfg.gpus[0]));
    Ok(peers)
}

/// Without the `mpi` feature a launcher's R processes would be R separate runs into one folder.
#[cfg(not(feature = "mpi"))]
fn launch_rank(_cfg: RunConfig, size: usize) -> Result<crate::metrics::Summary> {
    Err(crate::Error::usage(format!(
        "started by an MPI launcher as one of {size} processes, but this grawa-train was built without the `mpi` feature: build it with `cargo build --release --features mpi`"
    )))
}
