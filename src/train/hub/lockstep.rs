//! The lockstep schedules (`sync`, `permits`): every worker meets the hub at each exchange, a
//! round or DDP's gradient all-reduce. Before each exchange the processes of the run agree on what
//! it is and whether to stop (in one process the agreement is the hub's own view), so every
//! process takes the same branch and makes the same collective calls.

use std::sync::Arc;
use std::time::Instant;

use super::{Hub, RunState};
use crate::algo::{ScheduleKind, WorkerStats};
use crate::comm::{Kind, Participants, Proposal};
use crate::events::Event;
use crate::round::Target;
use crate::train::messages::{Reply, Snapshot, ToHub};
use crate::Result;

impl Hub {
    pub(super) fn run_lockstep(&mut self, state: &mut RunState) -> Result<()> {
        loop {
            let g = self.gather(state)?;
            let gathered_at = Instant::now();
            let gather_ms = g
                .first_at
                .map_or(0.0, |f| gathered_at.duration_since(f).as_secs_f64() * 1e3);
            let msgs: Vec<ToHub> = g.pending.into_iter().flatten().collect();
            if msgs.is_empty() {
                return Ok(()); // everyone has sent their final snapshot
            }
            // The clock is read once, here, and agreed: reading it again later could end the run
            // on one process and not another.
            let early = state.failure.is_some()
                || self.shared.stopping()
                || self.clock.time_up(&self.shared);
            let snaps: Vec<&Snapshot> = msgs
                .iter()
                .filter_map(|m| match m {
                    ToHub::Round(s) => Some(s),
                    _ => None,
                })
                .collect();
            let kind = if snaps.len() == msgs.len() {
                Kind::Round
            } else if snaps.is_empty() && msgs.iter().all(|m| matches!(m, ToHub::Grads { .. })) {
                Kind::Grads
            } else {
                Kind::Other
            };
            // The agreement also brings rank 0 the other ranks' step losses (even of a round that
            // stops the run), for its training-loss figures.
            let agreed = self.comm.agree(Proposal {
                kind,
                stop: early,
                local_steps: self.total_steps(),
                stats: snaps.iter().map(|s| s.stats()).collect(),
                losses: snaps.iter().map(|s| (s.worker, &s.losses[..])).collect(),
            })?;
            drop(snaps);
            self.send_remote_losses(agreed.losses);
            match agreed.kind {
                Kind::Round if !agreed.stop => {
                    let snaps = msgs.into_iter().filter_map(|m| match m {
                        ToHub::Round(s) => Some(s),
                        _ => None,
                    });
                    let at = (gather_ms, agreed.total_steps);
                    self.lockstep_round(state, snaps.collect(), agreed.stats, at)?;
                }
                Kind::Grads if !agreed.stop => self.all_reduce(msgs)?,
                // Stopping early (a failure, a signal, the clock), or workers out of step because
                // some saw the stop flag first: everybody stops where they are.
                _ => self.reply_stop(msgs),
            }
        }
    }

    /// One synchronous (or permits) round over `snaps` whose statistics the processes agreed as
    /// `stats`: target, replies, metrics, evaluation when due. `at` holds the gathering's time
    /// (ms) and the run's local steps (every process's).
    fn lockstep_round(
        &mut self,
        state: &mut RunState,
        snaps: Vec<Snapshot>,
        stats: Vec<WorkerStats>,
        (gather_ms, total): (f64, u64),
    ) -> Result<()> {
        let stop = self.clock.budget_ends_run(&snaps, total);
        let refs: Vec<&Snapshot> = snaps.iter().collect();
        let t0 = Instant::now();
        let result = self.decide(&refs, stats, None)?;
        let compute_ms = t0.elapsed().as_secs_f64() * 1e3;
        if self.clock.schedule == ScheduleKind::Permits && !stop {
            let n = self.clock.permits_for_next_round(total);
            self.shared.open_permits(n);
        }
        self.rounds += 1;
        let mut event = self.round_event(total, &result, snaps.len(), [gather_ms, compute_ms, 0.0]);
        let target = result.target.as_ref();
        // A checkpoint round writes its round line and evaluation, then the checkpoint, all before
        // the replies: nothing of the next round can precede the checkpoint, and a resumed run
        // has nothing of this round to redo.
        let checkpointing = self.checkpoints.ready(&state.failed);
        if checkpointing {
            let _ = self.events.send(Event::Round(event.clone()));
            if !stop {
                self.evaluate_if_due(&refs, target, total)?;
            }
            if let Some(ckpt) = self.checkpoint(state, target, false, total)? {
                let _ = self.events.send(Event::Checkpoint(Box::new(ckpt)));
            }
            self.checkpoints.taken();
        }
        if let Some(point) = target.and_then(Target::anchor) {
            self.anchor = point.clone();
        }
        let checkpoint_next = !stop && self.checkpoints.due(self.rounds);
        let t1 = Instant::now();
        let sources = Arc::new(snaps.iter().map(|s| s.step).collect::<Vec<_>>());
        for s in &snaps {
            let _ = self.replies[s.worker].send(Reply::Round {
                target: result.target.clone(),
                sources: sources.clone(),
                stop,
                checkpoint_next,
                ready_at: None,
            });
        }
        if !checkpointing {
            event.scatter_ms = t1.elapsed().as_secs_f64() * 1e3;
            let _ = self.events.send(Event::Round(event));
            if !stop {
                self.evaluate_if_due(&refs, target, total)?;
            }
        }
        Ok(())
    }

    /// Averages the gradients (an all-reduce over the transport) and sends the mean back.
    fn all_reduce(&mut self, msgs: Vec<ToHub>) -> Result<()> {
        let mut grads = Vec::with_capacity(msgs.len());
        let mut workers = Vec::with_capacity(msgs.len());
        let mut step = 0;
        for m in msgs {
            if let ToHub::Grads {
                worker,
                grads: g,
                step: s,
            } = m
            {
                grads.push(g);
                workers.push(worker);
                step = step.max(s);
            }
        }
        let parts = Participants::buffers(workers.clone(), grads.iter().collect());
        let mean = Arc::new(self.comm.collective(parts)?.all_reduce_mean()?);
        let link_ms = self.take_link().map(|d| d.as_secs_f64() * 1e3);
        let stop = self.clock.all_reduce_ends_run(step);
        if let Some(c) = &self.evaluation.clock {
            c.call_meeting(step); // --eval-every on the clock: meet after this step
        }
        for w in workers {
            let _ = self.replies[w].send(Reply::Grads {
                mean: mean.clone(),
                stop,
                link_ms,
            });
        }
        Ok(())
    }

    /// Stops every worker of `msgs` where it is (a gradient's sender gets its own gradient back).
    fn reply_stop(&self, msgs: Vec<ToHub>) {
        for m in msgs {
            let w = m.sender();
            let reply = match m {
                ToHub::Grads { grads, .. } => Reply::Grads {
                    mean: Arc::new(grads),
                    stop: true,
                    link_ms: None,
                },
                _ => Reply::stop(),
            };
            let _ = self.replies[w].send(reply);
        }
    }
}
