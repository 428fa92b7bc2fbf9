//! When a worker stops: the first of an epoch, step or time budget. Epoch budgets become step
//! counts (whole batches per epoch), so a seeded run always takes the same number of steps.

use crate::config::Budget;

/// A budget resolved against the loader's batches per epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepBudget {
    /// The step limit, from --steps and --epochs (the smaller), if either was given.
    pub max_steps: Option<u64>,
    /// The time limit in seconds, if --minutes was given.
    pub max_seconds: Option<f64>,
}

impl StepBudget {
    /// Resolves `budget` for a loader with `batches_per_epoch` steps per epoch.
    pub fn new(budget: &Budget, batches_per_epoch: usize) -> Self {
        let from_epochs = budget
            .epochs
            .map(|e| (e * batches_per_epoch as f64).ceil().max(1.0) as u64);
        let max_steps = match (from_epochs, budget.steps) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Self {
            max_steps,
            max_seconds: budget.minutes.map(|m| m * 60.0),
        }
    }

    /// True once `step` steps have been taken or `seconds` have passed.
    pub fn done(&self, step: u64, seconds: f64) -> bool {
        self.max_steps.is_some_and(|m| step >= m) || self.max_seconds.is_some_and(|m| seconds >= m)
    }

    /// Fraction of the budget used (for cosine schedules): by steps when a step limit exists,
    /// else by time.
    pub fn fraction(&self, step: u64, seconds: f64) -> Option<f64> {
        match (self.max_steps, self.max_seconds) {
            (Some(m), _) => Some(step as f64 / m as f64),
            (None, Some(s)) => Some(seconds / s),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_round_up_to_whole_steps_and_the_smaller_limit_wins() {
        let b = Budget {
            epochs: Some(1.5),
            steps: None,
            minutes: None,
        };
        // 1.5 epochs of 469 batches = 703.5 -> 704 steps.
        assert_eq!(StepBudget::new(&b, 469).max_steps, Some(704));
        let b = Budget {
            epochs: Some(2.0),
            steps: Some(100),
            minutes: Some(1.0),
        };
        let s = StepBudget::new(&b, 469);
        assert_eq!(s.max_steps, Some(100));
        assert!(!s.done(99, 59.0));
        assert!(s.done(100, 0.0));
        assert!(s.done(0, 60.0));
        assert_eq!(s.fraction(50, 0.0), Some(0.5));
    }
}
