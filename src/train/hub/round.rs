//! A round decided and carried out: the participants' statistics all-gathered over the
//! transport, the policy's plan, the round's data moving it; then its metrics line, and the
//! evaluation of the point the round leaves.

use std::time::Duration;

use super::Hub;
use crate::algo::{Plan, ScheduleKind, WorkerStats};
use crate::buffer::FlatBuffer;
use crate::comm::{LinkTally, Participants};
use crate::events::{flat_weights, EvalEvent, Event, RoundEvent};
use crate::round::Target;
use crate::train::messages::{participants, Snapshot};
use crate::Result;

/// What a round decided and the target it produced.
pub(super) struct Decided {
    pub plan: Plan,
    pub target: Option<Target>,
    /// The participants, in the run's numbering.
    pub participants: Vec<usize>,
    /// Over a modelled link: the round's modelled time (lockstep rounds have waited for it).
    pub link: Option<Duration>,
}

impl Hub {
    /// Decides a round over `snaps` (sorted by worker) whose statistics, as every process agreed
    /// them, are `stats`, and carries it out: a lockstep round, or under `async` the arrival of
    /// worker `arriving`'s snapshot.
    pub(super) fn decide(
        &mut self,
        snaps: &[&Snapshot],
        stats: Vec<WorkerStats>,
        arriving: Option<usize>,
    ) -> Result<Decided> {
        let mut parts = participants(snaps);
        parts.stats = stats;
        let mut net = self.comm.collective(parts)?;
        let stats = net.all_gather()?;
        let plan = self.policy.decide(&stats);
        let target = match arriving {
            Some(w) => self.data.arrival(&plan, net.as_mut(), w)?,
            None => self.data.lockstep(&plan, net.as_mut())?,
        };
        let participants = net.participants().to_vec();
        drop(net);
        Ok(Decided {
            participants,
            plan,
            target,
            link: self.take_link(),
        })
    }

    /// The modelled link time of the exchange just made (`None` without `--link`).
    pub(super) fn take_link(&mut self) -> Option<Duration> {
        self.comm.link().map(LinkTally::take)
    }

    /// The metrics line of a round over `snapshots` snapshots after `total` steps in all; `ms`
    /// are its gather, compute and scatter times.
    pub(super) fn round_event(
        &self,
        total: u64,
        r: &Decided,
        snapshots: usize,
        ms: [f64; 3],
    ) -> RoundEvent {
        let is_async = self.clock.schedule == ScheduleKind::Async;
        let staleness = if is_async { self.shared.staleness() } else { 0 };
        let p = self.anchor.len() as u64 * 4;
        let bytes = snapshots as u64 * p
            + if r.target.is_some() {
                self.workers() as u64 * p
            } else {
                0
            };
        RoundEvent {
            round: self.rounds,
            seconds: self.shared.seconds(),
            total_steps: total,
            weights: r
                .plan
                .weights(r.participants.len())
                .map(|w| flat_weights(&w, &r.participants, self.comm.layout().global_workers())),
            norms: r.plan.norms.clone(),
            participants: is_async.then(|| r.participants.clone()),
            leader: r.plan.leader(),
            lambda: r.target.as_ref().map(|_| r.plan.lambda),
            staleness,
            gather_ms: ms[0],
            compute_ms: ms[1],
            scatter_ms: ms[2],
            bytes,
            link_ms: r.link.map(|d| d.as_secs_f64() * 1e3),
        }
    }

    pub(super) fn evaluate_if_due(
        &mut self,
        snaps: &[&Snapshot],
        target: Option<&Target>,
        total: u64,
    ) -> Result<()> {
        if self.evaluation.due(total) {
            if let Some(ev) = self.evaluate(snaps, target, total)? {
                let _ = self.events.send(Event::Eval(ev));
            }
        }
        Ok(())
    }

    /// Scores the evaluated point after `target`: the algorithm's own (EASGD's center), else the
    /// workers' mean, an all-reduce over the transport (every process takes part), moved by
    /// `target`. Rank 0 alone scores it (`None` elsewhere).
    pub(super) fn evaluate(
        &mut self,
        snaps: &[&Snapshot],
        target: Option<&Target>,
        total: u64,
    ) -> Result<Option<EvalEvent>> {
        let seconds = self.shared.seconds();
        let parts = Participants::buffers(
            snaps.iter().map(|s| s.worker).collect(),
            snaps.iter().map(|s| &s.params).collect(),
        );
        let mut net = self.comm.evaluation_collective(parts)?;
        let point = self.data.evaluated(net.as_mut(), target)?;
        drop(net);
        if !self.comm.layout().is_root() {
            return Ok(None);
        }
        self.evaluation
            .score(&point, &self.data, snaps, target, total, seconds)
            .map(Some)
    }
}
