//! Gathering: one message from every worker still running, with failures and final snapshots
//! recorded on the way.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Hub, RunState};
use crate::train::messages::ToHub;
use crate::{Error, Result};

/// Messages of one gathering, by worker.
pub(super) struct Inbox {
    pub pending: Vec<Option<ToHub>>,
    /// When the first message arrived.
    pub first_at: Option<Instant>,
}

impl Hub {
    /// Records a worker's failure and tells the others to stop.
    pub(super) fn fail(&self, state: &mut RunState, worker: usize, error: Error) {
        state.failed[worker] = true;
        self.shared.abort.store(true, Ordering::SeqCst);
        state.failure.get_or_insert(error);
    }

    /// Waits for one message from every worker still running (failures and finals are recorded).
    pub(super) fn gather(&mut self, state: &mut RunState) -> Result<Inbox> {
        let mut g = Inbox {
            pending: (0..self.workers()).map(|_| None).collect(),
            first_at: None,
        };
        let awaited =
            |state: &RunState, g: &Inbox, w: usize| state.running(w) && g.pending[w].is_none();
        while (0..g.pending.len()).any(|w| awaited(state, &g, w)) {
            let waiting: Vec<bool> = (0..g.pending.len())
                .map(|w| awaited(state, &g, w))
                .collect();
            let msg = self
                .watchdog
                .receive(&self.inbox, &self.shared, |w| waiting[w])?;
            g.first_at.get_or_insert_with(Instant::now);
            match msg {
                ToHub::Failed { worker, error } => self.fail(state, worker, error),
                ToHub::Final(s) => {
                    let w = s.worker;
                    state.finals[w] = Some(s);
                }
                ToHub::State { worker, save } => self.checkpoints.store(worker, save),
                m @ (ToHub::Round(_) | ToHub::Grads { .. }) => {
                    let w = m.sender();
                    g.pending[w] = Some(m);
                }
            }
        }
        Ok(g)
    }
}
