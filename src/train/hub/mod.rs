//! The hub: the thread every worker reports to. It gathers the workers' snapshots, has the
//! algorithm decide each round and the round's data carry it out over the run's transport, sends
//! the target back, averages DDP's gradients, evaluates, assembles checkpoints and decides when
//! the run stops. In `sync` and `permits` every worker meets it at each round (`lockstep`); in
//! `async` it answers each snapshot with a new center and nobody waits (`asynchronous`).
//!
//! It never asks how bytes move: one [`Transport`] does that, the same calls for every transport.
//! Its jobs are files of their own: `gather` (one message from every worker, and failures),
//! `round` (a round decided and carried out), `round_clock` (the budget), `eval_schedule` (when
//! and what to evaluate), `checkpoints` (assembly) and `watchdog` (`--watchdog`).

mod asynchronous;
mod checkpoints;
mod eval_schedule;
mod gather;
mod lockstep;
mod round;
mod round_clock;
mod watchdog;

pub use checkpoints::CheckpointAssembly;
pub use eval_schedule::EvalSchedule;
pub use round_clock::RoundClock;
pub use watchdog::Watchdog;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam::channel::{Receiver, Sender};

use super::messages::{Reply, Snapshot, ToHub};
use super::shared::Shared;
use crate::algo::{Policy, ScheduleKind};
use crate::buffer::Flat;
use crate::comm::{Ending, Transport};
use crate::events::{EvalEvent, Event};
use crate::round::RoundData;
use crate::{Error, Result};

/// What the hub needs.
pub struct Hub {
    pub clock: RoundClock,
    /// The algorithm's decisions, from the participants' statistics.
    pub policy: Box<dyn Policy>,
    /// Carries the decisions out over the transport; keeps EASGD's center.
    pub data: RoundData,
    /// How bytes move between the workers (and processes). Worker ids in the hub's messages are
    /// this process's; across processes rounds decide over the run's.
    pub comm: Box<dyn Transport>,
    pub inbox: Receiver<ToHub>,
    pub replies: Vec<Sender<Reply>>,
    pub events: Sender<Event>,
    pub evaluation: EvalSchedule,
    pub checkpoints: CheckpointAssembly,
    pub watchdog: Watchdog,
    pub shared: Arc<Shared>,
    /// Rounds held before (a resumed run), and the proximal anchor then (else the initial point).
    pub rounds: u64,
    pub anchor: Arc<Flat>,
}

/// How the run ended, from the hub's side.
pub struct Outcome {
    /// The final evaluation (`None` on ranks other than 0, which do not score).
    pub final_eval: Option<EvalEvent>,
    pub rounds: u64,
    pub total_steps: u64,
    /// Each worker's local steps.
    pub worker_steps: Vec<u64>,
    /// Over a modelled link: its seconds and payload bytes in all.
    pub link: Option<(f64, u64)>,
}

/// What the hub tracks across rounds.
struct RunState {
    failed: Vec<bool>,
    finals: Vec<Option<Snapshot>>,
    failure: Option<Error>,
}

impl RunState {
    /// Still training: neither failed nor finished.
    fn running(&self, w: usize) -> bool {
        !self.failed[w] && self.finals[w].is_none()
    }
}

impl Hub {
    /// This process's workers.
    fn workers(&self) -> usize {
        self.clock.workers
    }

    /// Runs until every worker has stopped; returns the final evaluation or the first failure.
    pub fn run(mut self) -> Result<Outcome> {
        let m = self.workers();
        let mut state = RunState {
            failed: vec![false; m],
            finals: (0..m).map(|_| None).collect(),
            failure: None,
        };
        match self.clock.schedule {
            ScheduleKind::Async => self.run_async(&mut state)?,
            ScheduleKind::Sync | ScheduleKind::Permits => self.run_lockstep(&mut state)?,
        }
        self.finish(state)
    }

    /// Once every worker has stopped: how the run ended (on every process), the final
    /// checkpoint and the final evaluation.
    fn finish(&mut self, mut state: RunState) -> Result<Outcome> {
        let ending = Ending {
            failed: state.failure.is_some(),
            interrupted: self.shared.interrupt.load(Ordering::Relaxed),
            total_steps: self.total_steps(),
            worker_steps: state
                .finals
                .iter()
                .map(|s| s.as_ref().map_or(0, |s| s.step))
                .collect(),
            losses: state
                .finals
                .iter()
                .flatten()
                .map(|s| (s.worker, &s.losses[..]))
                .collect(),
        };
        let ended = self.comm.agree_end(ending)?;
        // A failed run keeps its last good checkpoint; otherwise the final state is saved.
        if let Some(e) = state.failure.take() {
            return Err(e);
        }
        if let Some(rank) = ended.failed_rank {
            return Err(Error::Internal(format!(
                "rank {rank} failed (its own message says why); run stopped"
            )));
        }
        // The other ranks' last step losses, in time for the final checkpoint and evaluation.
        self.send_remote_losses(ended.remote_losses);
        let total = ended.total_steps;
        if let Some(ckpt) = self.checkpoint(&state, None, !ended.interrupted, total)? {
            let _ = self.events.send(Event::Checkpoint(Box::new(ckpt)));
        }
        if ended.interrupted {
            return Err(Error::Interrupted);
        }
        let finals: Vec<&Snapshot> = state.finals.iter().flatten().collect();
        let final_eval = self.evaluate(&finals, None, total)?;
        if let Some(e) = &final_eval {
            let _ = self.events.send(Event::Eval(e.clone()));
        }
        // A signal during the final evaluation stops the run too (exit 130). The checkpoint above
        // is the finished one, so `--resume` does only the final evaluation and the summary.
        if self.shared.interrupt.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        Ok(Outcome {
            final_eval,
            rounds: self.rounds,
            total_steps: total,
            worker_steps: ended.worker_steps,
            link: self.link_totals(),
        })
    }

    /// The modelled link's seconds and payload bytes so far (`None` without `--link`).
    fn link_totals(&mut self) -> Option<(f64, u64)> {
        self.comm.link().map(|l| (l.seconds(), l.bytes()))
    }

    /// Rank 0's main thread gets other ranks' step losses, for its training-loss figures.
    fn send_remote_losses(&self, losses: Vec<(usize, Vec<f32>)>) {
        for (worker, losses) in losses {
            let _ = self.events.send(Event::RemoteLosses { worker, losses });
        }
    }

    fn total_steps(&self) -> u64 {
        self.shared.total_steps.load(Ordering::SeqCst)
    }

    /// Sends `reply` to every worker still running.
    fn reply_running(&self, state: &RunState, reply: Reply) {
        for (r, tx) in self.replies.iter().enumerate() {
            if state.running(r) {
                let _ = tx.send(reply.clone());
            }
        }
    }
}
