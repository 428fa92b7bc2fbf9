//! A worker's side of the exchanges with the hub: its snapshot, the lockstep round (report, wait,
//! pull), and under `async` posting snapshots and taking replies at step boundaries without
//! waiting (over a modelled link, once they have arrived), within the staleness bound.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Worker;
use crate::algo::NormSource;
use crate::buffer::Flat;
use crate::events::{Event, PullEvent};
use crate::round::Target;
use crate::train::messages::{Reply, Snapshot, ToHub};
use crate::{Error, Result};

/// What a snapshot is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// A round: the parameters and the statistics the algorithm decides from.
    Round,
    /// The worker has stopped: its final parameters.
    Final,
    /// A round forced by a stop signal, which only ends the run: no parameters, no probe (it
    /// would move BatchNorm statistics); the step losses stay for the final snapshot.
    Stop,
}

impl Worker {
    /// This worker's snapshot for `purpose`; it takes the step losses not reported yet.
    pub(super) fn snapshot(&mut self, purpose: Purpose) -> Result<Snapshot> {
        let params = match purpose {
            Purpose::Stop => Flat::Host(Vec::new()),
            _ => self.store.snapshot()?,
        };
        let (layer_norms, recent_loss) = match purpose {
            Purpose::Round => (self.round_norms()?, self.recent_loss()),
            _ => (None, None),
        };
        let losses = match purpose {
            Purpose::Stop => Vec::new(),
            _ => std::mem::take(&mut self.unreported),
        };
        Ok(Snapshot {
            worker: self.id,
            step: self.step,
            params,
            layer_norms,
            recent_loss,
            losses,
        })
    }

    /// The gradient norms a round reports (GRAWA's), from its norm source.
    fn round_norms(&mut self) -> Result<Option<Vec<f64>>> {
        Ok(match self.ctx.plan.norms {
            Some(NormSource::Probe) => Some(self.probe_norms()?),
            Some(NormSource::Accumulated) => self.accumulated.as_ref().map(|a| a.value()),
            None => None,
        })
    }

    /// The recent training loss a round reports (LSGD's).
    fn recent_loss(&self) -> Option<f64> {
        self.ctx
            .plan
            .report_loss
            .then(|| self.losses.mean())
            .flatten()
    }

    /// A lockstep round: report, wait, pull. Returns whether to stop.
    pub(super) fn round(&mut self) -> Result<bool> {
        let snapshot = if self.ctx.shared.stopping() {
            self.snapshot(Purpose::Stop)?
        } else {
            if self.want_state {
                self.send_state()?;
            }
            self.snapshot(Purpose::Round)?
        };
        self.send(ToHub::Round(snapshot))?;
        match self.recv()? {
            Reply::Round {
                target,
                stop,
                checkpoint_next,
                ..
            } => {
                self.want_state = checkpoint_next;
                if let Some(t) = target {
                    self.apply(&t)?;
                }
                if let Some(acc) = &mut self.accumulated {
                    acc.reset();
                }
                Ok(stop)
            }
            Reply::Grads { .. } => Err(Error::Internal(format!(
                "worker {}: an all-reduce reply at a round",
                self.id
            ))),
        }
    }

    /// Applies a round's target where the parameters live; its point becomes the anchor of the
    /// proximal steps until the next round.
    fn apply(&mut self, t: &Target) -> Result<()> {
        if let Some(point) = self.store.apply(t, self.id)? {
            self.anchor = point;
        }
        self.store.sync()
    }

    pub(super) fn async_should_stop(&self) -> bool {
        let s = &self.ctx.shared;
        let total = s.total_steps.load(Ordering::SeqCst);
        let per_worker = total / self.ctx.workers as u64;
        s.stopping() || self.ctx.budget.done(per_worker, s.seconds())
    }

    /// Async: every tau steps post a snapshot, and pull once toward the first center built from
    /// it when it arrives (at a step boundary; nobody waits for it). Before the next step, hold
    /// back only if this worker would get more than `max_staleness` steps past the oldest snapshot
    /// of a running worker (stale-synchronous bound). Returns whether to stop.
    pub(super) fn async_exchange(&mut self) -> Result<bool> {
        if self.since_round == self.ctx.plan.tau {
            let snapshot = self.snapshot(Purpose::Round)?;
            self.last_sent = Some(snapshot.step);
            self.send(ToHub::Round(snapshot))?;
            self.since_round = 0;
            if let Some(acc) = &mut self.accumulated {
                acc.reset();
            }
        }
        while let Ok(reply) = self.link.replies.try_recv() {
            self.hold(reply);
        }
        if self.take_arrived()? {
            return Ok(true);
        }
        let bound = self.ctx.max_staleness.unwrap_or(u64::MAX);
        let shared = self.ctx.shared.clone();
        while (self.step + 1).saturating_sub(shared.oldest_acked()) > bound {
            if self.async_should_stop() {
                return Ok(true);
            }
            match self.link.replies.recv_timeout(Duration::from_millis(2)) {
                Ok(reply) => self.hold(reply),
                Err(crossbeam::channel::RecvTimeoutError::Timeout) => {}
                Err(_) => return Err(self.hub_gone()),
            }
            if self.take_arrived()? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Async: puts `reply` on its way; it arrives at its stamp (over a modelled link), else now.
    fn hold(&mut self, reply: Reply) {
        let at = reply.ready_at().unwrap_or_else(Instant::now);
        self.in_flight.push(at, reply);
    }

    /// Async: takes the replies that have arrived, in the order they were sent. Returns whether
    /// to stop.
    fn take_arrived(&mut self) -> Result<bool> {
        while let Some(reply) = self.in_flight.pop_ready(Instant::now()) {
            if self.take_async_reply(reply)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Handles one async reply: a stop, or a center (applied if it is the first built from this
    /// worker's newest snapshot). Returns whether to stop.
    fn take_async_reply(&mut self, reply: Reply) -> Result<bool> {
        let Reply::Round {
            target,
            sources,
            stop,
            ..
        } = reply
        else {
            return Err(Error::Internal(format!(
                "worker {}: an all-reduce reply in an async run",
                self.id
            )));
        };
        if stop {
            return Ok(true);
        }
        let (Some(t), Some(src), Some(sent)) =
            (target, sources.get(self.id).copied(), self.last_sent)
        else {
            return Ok(false);
        };
        let take = match &t {
            // An exchange is addressed to this worker once, for one snapshot, and the center has
            // taken its half already: apply it whatever was sent since, or the sum drifts.
            Target::Exchange { .. } => t.applies_to(self.id),
            // A pull: once, toward the first center built from the newest snapshot.
            Target::Pull { .. } => src == sent && self.pulled_for != Some(sent),
        };
        if take {
            self.pulled_for = Some(src);
            self.apply(&t)?;
            let _ = self.ctx.events.send(Event::Pull(PullEvent {
                worker: self.id,
                step: self.step,
                lag: self.step - src,
            }));
        }
        Ok(false)
    }
}
