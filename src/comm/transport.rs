//! [`Transport`]: how one run's bytes move, as one value the hub holds. The hub calls it the same
//! way whatever moves the bytes (its own reductions, NCCL between GPUs, MPI between processes):
//! [`Transport::collective`] for a round, DDP's gradient mean and the evaluated point, and the
//! agreements a lockstep exchange, a checkpoint and the run's end need between processes. In one
//! process those agreements are identities: the trait's defaults.

use super::collective::{Collective, Participants};
use super::link_tally::LinkTally;
use crate::algo::WorkerStats;
use crate::checkpoint::WorkerSave;
use crate::ranks::RankLayout;
use crate::Result;

/// What this process's workers sent to a lockstep exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Every running worker sent a round snapshot.
    Round,
    /// Every running worker sent a gradient.
    Grads,
    /// Workers out of step (some saw a stop first), or none left.
    Other,
}

/// This process's side of the agreement before a lockstep exchange.
pub struct Proposal<'a> {
    pub kind: Kind,
    /// This process wants the run to stop (a signal, a failed worker, its clock).
    pub stop: bool,
    /// Local steps taken by this process's workers.
    pub local_steps: u64,
    /// The round's participants' statistics, in this process's numbering (empty unless `kind`
    /// is `Round`).
    pub stats: Vec<WorkerStats>,
    /// Each participant's step losses since its previous snapshot, by worker.
    pub losses: Vec<(usize, &'a [f32])>,
}

/// What every process agreed on.
#[derive(Clone, Debug, PartialEq)]
pub struct Agreed {
    /// Every process sent the same kind (`Other` if they differ).
    pub kind: Kind,
    /// Some process wants to stop.
    pub stop: bool,
    /// Local steps of the whole run.
    pub total_steps: u64,
    /// The round's participants' statistics over every process, in the run's numbering.
    pub stats: Vec<WorkerStats>,
    /// The root: the other processes' workers' step losses, by run-wide worker (empty elsewhere).
    pub losses: Vec<(usize, Vec<f32>)>,
}

/// How this process's workers ended.
pub struct Ending<'a> {
    pub failed: bool,
    pub interrupted: bool,
    pub total_steps: u64,
    /// Each worker's local steps.
    pub worker_steps: Vec<u64>,
    /// The step losses of the workers' final snapshots, by worker.
    pub losses: Vec<(usize, &'a [f32])>,
}

/// How every process's workers ended.
pub struct Ended {
    /// The first process with a failed worker.
    pub failed_rank: Option<usize>,
    pub interrupted: bool,
    pub total_steps: u64,
    /// Every worker's local steps, in the run's order.
    pub worker_steps: Vec<u64>,
    /// The root: the other processes' workers' last step losses, by run-wide worker.
    pub remote_losses: Vec<(usize, Vec<f32>)>,
}

/// How one run's bytes move between its workers (and processes).
pub trait Transport {
    /// Where this process sits among the run's processes (one process: all the workers).
    fn layout(&self) -> RankLayout;

    /// The collective over one exchange's participants (a round's snapshots, DDP's gradients,
    /// the workers whose mean is evaluated); its results are made where the hub works (host
    /// memory, or the hub's GPU). Every byte the run moves between workers goes through a
    /// collective made here: the one place a model of the interconnect wraps.
    fn collective<'a>(&'a mut self, parts: Participants<'a>) -> Result<Box<dyn Collective + 'a>>;

    /// The collective that forms the point an evaluation scores (the workers' mean): the same as
    /// [`Transport::collective`], but no part of the training's traffic, so a modelled link does
    /// not charge it (an evaluation observes the run; it does not train it).
    fn evaluation_collective<'a>(
        &'a mut self,
        parts: Participants<'a>,
    ) -> Result<Box<dyn Collective + 'a>> {
        self.collective(parts)
    }

    /// The modelled link's account (`--link`; `None` without one): after each exchange,
    /// [`LinkTally::take`] gives its modelled time.
    fn link(&mut self) -> Option<&mut LinkTally> {
        None
    }

    /// What every process agrees on before a lockstep exchange, so that all take the same branch
    /// and make the same collective calls.
    fn agree(&mut self, mine: Proposal<'_>) -> Result<Agreed> {
        Ok(Agreed {
            kind: mine.kind,
            stop: mine.stop,
            total_steps: mine.local_steps,
            stats: mine.stats,
            losses: Vec::new(),
        })
    }

    /// Every process's saved workers, in the run's order, on the root (`None` elsewhere): the
    /// checkpoint the root writes.
    fn gather_saves(&mut self, saves: Vec<WorkerSave>) -> Option<Vec<WorkerSave>> {
        Some(saves)
    }

    /// How every process's workers ended, once this one's have all stopped.
    fn agree_end(&mut self, mine: Ending<'_>) -> Result<Ended> {
        Ok(Ended {
            failed_rank: None,
            interrupted: mine.interrupted,
            total_steps: mine.total_steps,
            worker_steps: mine.worker_steps,
            remote_losses: Vec::new(),
        })
    }
}
