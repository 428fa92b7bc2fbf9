//! When rounds end the run, and how many permits the next `permits` round hands out: the
//! budget as the hub sees it.

use crate::algo::ScheduleKind;
use crate::train::messages::Snapshot;
use crate::train::shared::Shared;

/// The run's budget and schedule, from the hub's side.
pub struct RoundClock {
    pub schedule: ScheduleKind,
    /// This process's workers.
    pub workers: usize,
    /// Processes in the run (1 without MPI); every rank has `workers` workers.
    pub ranks: u64,
    /// Local steps per worker per round (permits: M*tau per round in all).
    pub tau: u64,
    /// Step budget per worker, and time budget.
    pub max_steps: Option<u64>,
    pub max_seconds: Option<f64>,
}

impl RoundClock {
    /// True once the time budget is spent.
    pub fn time_up(&self, shared: &Shared) -> bool {
        self.max_seconds.is_some_and(|m| shared.seconds() >= m)
    }

    /// This process's permits for the round after `total` steps (the run's, every rank's): its
    /// workers' share, K*tau, or its share of what is left of the budget. Across ranks the pool
    /// is per process, since a permit handed across ranks would cost a message per local step:
    /// a fast worker takes a slow one's steps only on its own rank. Every rank spends its whole
    /// share each round, so the run's total stays a multiple of the ranks and the shares equal.
    pub fn permits_for_next_round(&self, total: u64) -> u64 {
        let per_round = self.workers as u64 * self.tau;
        match self.max_steps {
            Some(m) => {
                let left = (m * self.workers as u64 * self.ranks).saturating_sub(total);
                per_round.min(left / self.ranks)
            }
            None => per_round,
        }
    }

    /// Whether the step budget ends the run at a lockstep round over `snaps`, after `total`
    /// steps in all (the clock is read before the round, once: `time_up`).
    pub fn budget_ends_run(&self, snaps: &[Snapshot], total: u64) -> bool {
        match self.schedule {
            ScheduleKind::Permits => self.permits_for_next_round(total) == 0,
            _ => self
                .max_steps
                .is_some_and(|m| snaps.iter().all(|s| s.step >= m)),
        }
    }

    /// Whether the all-reduce for local step `step` (1-based) is the run's last (the clock is
    /// read before the all-reduce, once: `time_up`).
    pub fn all_reduce_ends_run(&self, step: u64) -> bool {
        self.max_steps.is_some_and(|m| step >= m)
    }
}
