//! Several processes ("ranks") training one run, each with its own workers: `mpirun -np R
//! grawa-train --workers K` trains R x K workers, rank r owning global workers r*K .. r*K+K-1 with
//! the shards, seeds and initial point they have in a one-process run of R*K workers.
//!
//! - [`RankLayout`]: where this process sits.
//! - [`Peers`]: what ranks need of each other, as the primitives every collective library has
//!   (all-gather of small vectors, all-reduce-sum of a buffer, broadcast). The MPI implementation
//!   is `mpi` (feature `mpi`); tests can supply their own.
//! - `nccl` (feature `nccl`): one NCCL communicator over the ranks' GPUs, bootstrapped through
//!   [`Peers`] (`unique_id`); `nccl_peers` puts it under [`Peers`] for the buffers.
//! - `gpus`: which GPUs a rank takes on a machine running several.
//!
//! This is the communication library of a run across processes, as MPI is; the transport built
//! on it (the round across ranks, the agreements between the ranks' hubs) is `comm::ranks`.

mod gpus;
#[cfg(feature = "mpi")]
pub mod mpi;
#[cfg(feature = "nccl")]
pub mod nccl;
#[cfg(feature = "nccl")]
pub mod nccl_peers;
pub mod unique_id;

pub use gpus::gpus_for_rank;

/// The number of processes an MPI launcher (OpenMPI's mpirun, MPICH's hydra, Slurm's srun with
/// PMI) says this run has, from its environment; `None` when no launcher started this process.
pub fn launched_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.parse().ok())
        .filter(|_| {
            ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"]
                .iter()
                .any(|k| std::env::var_os(k).is_some())
        })
}

/// This process's rank among the ranks on its machine, from the launcher's environment (OpenMPI,
/// Slurm, MPICH's hydra): which GPU it takes when a machine runs several ranks.
pub fn local_rank() -> Option<usize> {
    [
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "SLURM_LOCALID",
        "MPI_LOCALRANKID",
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok()?.parse().ok())
}

/// Refuses what a run across processes does not do yet, naming the flag (exit 2): scoring each
/// worker and flatness (rank 0 holds only its own workers), checkpoints on a clock (each rank has
/// its own) and `async` (it would need a parameter server).
pub fn check_supported(cfg: &crate::config::RunConfig) -> crate::Result<()> {
    use crate::algo::ScheduleKind;
    let refuse = |what: &str| {
        Err(crate::Error::usage(format!(
            "{what}: not supported across processes yet (mpirun/srun); run it in one process"
        )))
    };
    if cfg.algo.schedule == ScheduleKind::Async {
        return refuse(&format!("--schedule {}", cfg.algo.schedule));
    }
    if let Some(crate::config::CheckpointEvery::Seconds(_)) = cfg.checkpoint_every {
        // Every rank's clock would say otherwise: ranks checkpoint together, every N rounds.
        return refuse("--checkpoint-every with a duration (give a number of rounds)");
    }
    if cfg.eval_workers {
        return refuse("--eval-workers");
    }
    if cfg.eval_every_seconds.is_some() {
        // As with checkpoints: each rank's clock would decide alone (give a number of steps).
        return refuse("--eval-every with a duration (give a number of steps)");
    }
    if cfg.flatness {
        return refuse("--flatness");
    }
    if cfg.round == crate::config::RoundTransport::Nccl {
        return Err(crate::Error::usage(
            "--round nccl is for one process; across processes the round's all-reduce goes over NCCL \
             already in a build with --features nccl,mpi (leave --round at hub)",
        ));
    }
    Ok(())
}

/// This process's place among the ranks of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RankLayout {
    /// This rank, from 0.
    pub rank: usize,
    /// Ranks in the run.
    pub ranks: usize,
    /// Workers on each rank (`--workers`).
    pub local_workers: usize,
}

impl RankLayout {
    /// One process holding all `workers`.
    pub fn single(workers: usize) -> Self {
        Self {
            rank: 0,
            ranks: 1,
            local_workers: workers,
        }
    }

    /// Workers of the whole run.
    pub fn global_workers(&self) -> usize {
        self.ranks * self.local_workers
    }

    /// The global id of this rank's first worker.
    pub fn first_worker(&self) -> usize {
        self.rank * self.local_workers
    }

    /// The rank that owns global worker `w`.
    pub fn owner(&self, w: usize) -> usize {
        w / self.local_workers
    }

    /// Rank 0 writes the run's outputs and shows progress.
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }
}

/// What ranks need of each other. Every rank must make the same calls in the same order.
pub trait Peers: Send {
    /// This process's place.
    fn layout(&self) -> RankLayout;

    /// Every rank's `mine` (all of the same length), in rank order.
    fn all_gather(&mut self, mine: &[f64]) -> Vec<Vec<f64>>;

    /// `out <- ` the sum over ranks of every rank's `send` (of `out`'s length). MPI aborts the
    /// job on a failure; another library's failure (NCCL's) is an error.
    fn all_reduce_sum_into(&mut self, send: &[f32], out: &mut [f32]) -> crate::Result<()>;

    /// The sum over ranks of every rank's `buf`.
    fn all_reduce_sum(&mut self, buf: Vec<f32>) -> crate::Result<Vec<f32>> {
        let mut sum = vec![0f32; buf.len()];
        self.all_reduce_sum_into(&buf, &mut sum)?;
        Ok(sum)
    }

    /// `buf <- root's buf`.
    fn broadcast(&mut self, buf: &mut [f32], root: usize);

    /// Every rank's `mine` (all of the same length), in rank order: checkpoint data.
    fn all_gather_f32(&mut self, mine: &[f32]) -> Vec<Vec<f32>>;

    /// Every rank's `mine`, of any length, in rank order: the lengths first, then the values
    /// padded to the longest.
    fn all_gather_var(&mut self, mine: &[f64]) -> Vec<Vec<f64>> {
        let lens = self.all_gather(&[mine.len() as f64]);
        let longest = lens.iter().map(|l| l[0] as usize).max().unwrap_or(0);
        let mut padded = mine.to_vec();
        padded.resize(longest, 0.0);
        self.all_gather(&padded)
            .into_iter()
            .zip(lens)
            .map(|(mut v, l)| {
                v.truncate(l[0] as usize);
                v
            })
            .collect()
    }

    /// Every rank's bytes, of any length, in rank order (a byte is exact in an f64).
    fn all_gather_bytes(&mut self, mine: &[u8]) -> Vec<Vec<u8>> {
        let mine: Vec<f64> = mine.iter().map(|&b| f64::from(b)).collect();
        self.all_gather_var(&mine)
            .into_iter()
            .map(|v| v.into_iter().map(|b| b as u8).collect())
            .collect()
    }
}
