//! Evaluation on a clock (`--eval-every 10s`): an evaluation falls due every S seconds of
//! training (the run's clock, which a resumed run continues), and is taken at the first round
//! after that; the next one is due at the next multiple of S.
//!
//! Algorithms that average meet the hub every tau steps anyway, so their evaluations
//! wait at most a round. Algorithms without averaging rounds (ddp, ddp-sam, sgd) meet only to be
//! evaluated, so the clock calls the meeting at the first step boundary after the due time: for
//! DDP the hub, which sees every step's all-reduce, names the step after which every
//! worker meets it ([`EvalClock::call_meeting`]); a run's only worker reads the clock itself.
//! Workers of one run decide alike, so lockstep schedules stay in step.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// No meeting called.
const NONE: u64 = u64::MAX;

/// When the next evaluation is due, shared by the hub and the workers.
#[derive(Debug)]
pub struct EvalClock {
    every: f64,
    start: Instant,
    /// Seconds of training at which the next evaluation is due (f64 bits).
    next_due: AtomicU64,
    /// The step after which the workers of an algorithm without rounds meet the hub.
    meet_at: AtomicU64,
}

/// The first multiple of `every` after `seconds`: the evaluation after one taken at `seconds`.
pub fn next_on_grid(seconds: f64, every: f64) -> f64 {
    ((seconds / every).floor() + 1.0) * every
}

impl EvalClock {
    /// Evaluations every `every` seconds of the run whose clock started at `start`; the next one
    /// due at `next_due` (a resumed run's, from its checkpoint), else at `every`.
    pub fn new(every: f64, start: Instant, next_due: Option<f64>) -> Self {
        Self {
            every,
            start,
            next_due: AtomicU64::new(next_due.unwrap_or(every).to_bits()),
            meet_at: AtomicU64::new(NONE),
        }
    }

    /// Seconds of training so far.
    pub fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Seconds of training at which the next evaluation is due (what a checkpoint keeps).
    pub fn next_due(&self) -> f64 {
        f64::from_bits(self.next_due.load(Ordering::SeqCst))
    }

    /// True once the next evaluation is due.
    pub fn is_due(&self) -> bool {
        self.seconds() >= self.next_due()
    }

    /// At a round: whether to evaluate now. If so, the next evaluation is scheduled.
    pub fn take_due(&self) -> bool {
        let now = self.seconds();
        if now < self.next_due() {
            return false;
        }
        let next = next_on_grid(now, self.every);
        self.next_due.store(next.to_bits(), Ordering::SeqCst);
        true
    }

    /// The hub, answering the all-reduce of local step `step`: when an evaluation is
    /// due, every worker meets it after that step. Called before the replies go out, so every
    /// worker sees it at its next step boundary.
    pub fn call_meeting(&self, step: u64) {
        if self.is_due() {
            self.meet_at.store(step, Ordering::SeqCst);
        }
    }

    /// Whether a worker that has taken `step` steps, `since_round` of them since it last met the
    /// hub, meets it now: the hub called a meeting at this step, or, the
    /// run's only worker (`sole`), an evaluation is due.
    pub fn worker_meets(&self, step: u64, since_round: u64, sole: bool) -> bool {
        since_round > 0 && (self.meet_at.load(Ordering::SeqCst) == step || (sole && self.is_due()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_next_evaluation_is_on_the_grid() {
        assert_eq!(next_on_grid(0.0, 10.0), 10.0);
        assert_eq!(next_on_grid(10.0, 10.0), 20.0);
        assert_eq!(next_on_grid(10.3, 10.0), 20.0);
        // Several periods late (a long round): the next one is still on the grid.
        assert_eq!(next_on_grid(37.9, 10.0), 40.0);
        assert_eq!(next_on_grid(1.2, 0.5), 1.5);
    }

    #[test]
    fn due_once_per_period() {
        let start = Instant::now() - Duration::from_millis(2500);
        let c = EvalClock::new(1.0, start, None);
        assert!(c.is_due());
        assert!(c.take_due());
        assert_eq!(c.next_due(), 3.0);
        assert!(!c.take_due());
        // A resumed run continues from its checkpoint's next due time.
        let resumed = EvalClock::new(1.0, start, Some(7.0));
        assert!(!resumed.is_due());
        assert_eq!(resumed.next_due(), 7.0);
    }

    #[test]
    fn meetings_are_called_for_one_step_only_when_due() {
        let not_yet = EvalClock::new(60.0, Instant::now(), None);
        not_yet.call_meeting(5);
        assert!(!not_yet.worker_meets(5, 3, false));
        assert!(!not_yet.worker_meets(5, 3, true));

        let due = EvalClock::new(1.0, Instant::now() - Duration::from_secs(2), None);
        due.call_meeting(5);
        assert!(due.worker_meets(5, 3, false));
        // Not at another step, and not again right after the meeting (since_round 0).
        assert!(!due.worker_meets(6, 1, false));
        assert!(!due.worker_meets(5, 0, false));
        // The only worker reads the clock itself.
        let sole = EvalClock::new(1.0, Instant::now() - Duration::from_secs(2), None);
        assert!(sole.worker_meets(9, 1, true));
        assert!(!sole.worker_meets(9, 1, false));
    }
}
