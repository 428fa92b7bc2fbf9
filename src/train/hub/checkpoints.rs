//! Checkpoint assembly on the hub: when one is due, the workers' saved states as they arrive,
//! and the whole checkpoint once every worker still in the run has sent its own (across
//! processes, every rank's gathered to rank 0). Writing it is the main thread's job (it adds the
//! metrics position).

use std::time::Instant;

use super::{Hub, RunState};
use crate::checkpoint::{Checkpoint, Identity, MetricsState, RunState as SavedRun, WorkerSave};
use crate::config::CheckpointEvery;
use crate::round::Target;
use crate::Result;

/// The hub's side of checkpoints.
pub struct CheckpointAssembly {
    every: Option<CheckpointEvery>,
    identity: Identity,
    /// Full worker states sent for the coming checkpoint.
    saves: Vec<Option<Box<WorkerSave>>>,
    last: Instant,
}

/// Where the run stands, for a checkpoint.
struct Position {
    pub rounds: u64,
    pub total_steps: u64,
    pub seconds: f64,
    pub next_eval: u64,
    /// On the clock: seconds of training at which the next evaluation is due.
    pub next_eval_seconds: Option<f64>,
    /// Over a modelled link: its seconds and bytes so far.
    pub link: Option<(f64, u64)>,
}

/// The algorithm's own state, for a checkpoint.
struct AlgoParts {
    pub policy: serde_json::Value,
    pub data: Vec<(String, Vec<f32>)>,
}

impl CheckpointAssembly {
    /// Checkpoints of the run `identity` of `workers` workers, also every `every`.
    pub fn new(every: Option<CheckpointEvery>, identity: Identity, workers: usize) -> Self {
        Self {
            every,
            identity,
            saves: (0..workers).map(|_| None).collect(),
            last: Instant::now(),
        }
    }

    /// Keeps a worker's state for the coming checkpoint.
    pub fn store(&mut self, worker: usize, save: Box<WorkerSave>) {
        if let Some(slot) = self.saves.get_mut(worker) {
            *slot = Some(save);
        }
    }

    /// Whether the round after `rounds` should carry every worker's state.
    pub fn due(&self, rounds: u64) -> bool {
        match self.every {
            Some(CheckpointEvery::Rounds(n)) => (rounds + 1).is_multiple_of(n),
            Some(CheckpointEvery::Seconds(s)) => self.last.elapsed().as_secs_f64() >= s,
            None => false,
        }
    }

    /// True when every worker not `failed` has sent its state.
    pub fn ready(&self, failed: &[bool]) -> bool {
        let wanted = failed.iter().filter(|f| !**f).count();
        wanted > 0 && self.saves.iter().flatten().count() >= wanted
    }

    /// Marks a checkpoint as taken now (for `--checkpoint-every` in seconds).
    pub fn taken(&mut self) {
        self.last = Instant::now();
    }

    /// The stored states, if `ready`; they are taken (each is used once).
    pub fn take_saves(&mut self, failed: &[bool]) -> Option<Vec<WorkerSave>> {
        if !self.ready(failed) {
            return None;
        }
        self.saves
            .iter_mut()
            .map(|s| s.take().map(|b| *b))
            .collect::<Option<Vec<_>>>()
    }

    /// A checkpoint of `saves` (every worker of the run, in order). `pending_pull` is the
    /// lambda of a round's pull the saved states have not had yet (resuming applies it first),
    /// and `anchor` then its point; otherwise `anchor` is the proximal anchor to keep.
    fn build(
        &self,
        saves: Vec<WorkerSave>,
        at: Position,
        algo: AlgoParts,
        anchor: Vec<f32>,
        pending_pull: Option<f32>,
        finished: bool,
    ) -> Checkpoint {
        Checkpoint {
            state: SavedRun {
                version: crate::checkpoint::version(),
                identity: self.identity.clone(),
                rounds: at.rounds,
                total_steps: at.total_steps,
                seconds: at.seconds,
                next_eval: at.next_eval,
                next_eval_seconds: at.next_eval_seconds,
                link: at.link,
                workers: saves.iter().map(|s| s.state.clone()).collect(),
                algo: algo.policy,
                metrics: MetricsState::default(),
                finished,
                pending_pull,
            },
            workers: saves.into_iter().map(|s| s.tensors).collect(),
            anchor,
            algo_tensors: algo.data,
        }
    }
}

impl Hub {
    /// A checkpoint from the workers' saved states (see [`CheckpointAssembly::build`]). `total`
    /// is the run's local steps (every process's). Across processes every rank's saved workers
    /// are gathered, and rank 0 alone gets the checkpoint (to write).
    pub(super) fn checkpoint(
        &mut self,
        state: &RunState,
        pending: Option<&Target>,
        finished: bool,
        total: u64,
    ) -> Result<Option<Checkpoint>> {
        let Some(saves) = self.checkpoints.take_saves(&state.failed) else {
            return Ok(None);
        };
        let Some(saves) = self.comm.gather_saves(saves) else {
            return Ok(None);
        };
        let at = Position {
            rounds: self.rounds,
            total_steps: total,
            seconds: self.shared.seconds(),
            next_eval: self.evaluation.next,
            next_eval_seconds: self.evaluation.clock.as_ref().map(|c| c.next_due()),
            link: self.link_totals(),
        };
        let algo = AlgoParts {
            policy: self.policy.state(),
            data: self.data.state()?,
        };
        // A checkpoint is host data: a GPU round's anchor or pending center is copied here.
        let (anchor, pending_pull) = match pending {
            Some(Target::Pull { point, lambda }) => (point.to_vec()?, Some(*lambda)),
            _ => (self.anchor.to_vec()?, None),
        };
        Ok(Some(self.checkpoints.build(
            saves,
            at,
            algo,
            anchor,
            pending_pull,
            finished,
        )))
    }
}
