//! The `async` schedule: nobody waits. Each arriving snapshot triggers a round over the newest
//! snapshot of every worker that has reported, sent to every running worker (each applies what is
//! meant for it, at its next step boundary).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::{Hub, RunState};
use crate::events::Event;
use crate::link::ready_at;
use crate::train::messages::{Reply, Snapshot, ToHub};
use crate::{Error, Result};

impl Hub {
    pub(super) fn run_async(&mut self, state: &mut RunState) -> Result<()> {
        // The newest snapshot of each worker; a worker that has not reported takes no part.
        let mut newest: Vec<Option<Snapshot>> = (0..self.workers()).map(|_| None).collect();
        let mut stop_sent = false;
        while (0..self.workers()).any(|w| state.running(w)) {
            let msg = self
                .watchdog
                .receive(&self.inbox, &self.shared, |w| state.running(w))?;
            match msg {
                ToHub::Failed { worker, error } => {
                    self.shared.acked[worker].store(u64::MAX, Ordering::SeqCst);
                    self.fail(state, worker, error)
                }
                ToHub::Final(s) => {
                    let w = s.worker;
                    self.shared.acked[w].store(u64::MAX, Ordering::SeqCst);
                    state.finals[w] = Some(s);
                }
                ToHub::State { worker, save } => self.checkpoints.store(worker, save),
                ToHub::Grads { worker, .. } => {
                    return Err(Error::Internal(format!(
                        "worker {worker} all-reduced in an async run"
                    )));
                }
                ToHub::Round(s) => {
                    let w = s.worker;
                    self.shared.acked[w].store(s.step, Ordering::SeqCst);
                    newest[w] = Some(s);
                    self.async_round(state, &newest, w)?;
                }
            }
            // A worker waiting for a fresher center must hear about a stop too.
            if self.shared.stopping() && !stop_sent {
                stop_sent = true;
                self.reply_running(state, Reply::stop());
            }
        }
        Ok(())
    }

    /// The round `arriving`'s new snapshot triggers: decided over every worker that has reported,
    /// sent to every running worker (each applies what is meant for it).
    fn async_round(
        &mut self,
        state: &RunState,
        newest: &[Option<Snapshot>],
        arriving: usize,
    ) -> Result<()> {
        let at = Instant::now();
        let refs: Vec<&Snapshot> = newest.iter().flatten().collect();
        let stats = refs.iter().map(|s| s.stats()).collect();
        let result = self.decide(&refs, stats, Some(arriving))?;
        let compute_ms = at.elapsed().as_secs_f64() * 1e3;
        // Per worker, the step of the snapshot the target was built from (0: none).
        let sources = newest.iter().map(|s| s.as_ref().map_or(0, |s| s.step));
        let t1 = Instant::now();
        self.reply_running(
            state,
            Reply::Round {
                target: result.target.clone(),
                sources: Arc::new(sources.collect()),
                stop: false,
                checkpoint_next: false,
                // Over a modelled link the reply reaches the worker the exchange's time later.
                ready_at: result.link.map(|d| ready_at(t1, d)),
            },
        );
        let scatter_ms = t1.elapsed().as_secs_f64() * 1e3;
        self.rounds += 1;
        let total = self.total_steps();
        let event = self.round_event(total, &result, 1, [0.0, compute_ms, scatter_ms]);
        let _ = self.events.send(Event::Round(event));
        self.evaluate_if_due(&refs, result.target.as_ref(), total)
    }
}
