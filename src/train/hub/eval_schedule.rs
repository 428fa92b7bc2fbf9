//! When the hub evaluates and what it scores: an evaluation is due every `--eval-every` local
//! steps per worker, counted over all workers, or on the clock (`crate::eval_clock`); the
//! evaluated point (`RoundData::evaluated_flat`: the workers' mean after the round's target, or
//! EASGD's center) is scored on the test set and the validation set, and with `--eval-workers`
//! the center and each worker too.

use std::sync::Arc;

use crate::buffer::{Flat, FlatPlace, RoundBuffer};
use crate::eval_clock::EvalClock;
use crate::events::EvalEvent;
use crate::round::{RoundData, Target};
use crate::train::evaluator::Evaluator;
use crate::train::messages::Snapshot;
use crate::Result;

/// When and what to evaluate.
pub struct EvalSchedule {
    pub evaluator: Evaluator,
    /// Evaluate every this many local steps per worker.
    pub every: u64,
    pub workers: usize,
    pub batches_per_epoch: u64,
    /// Also score the center and every worker.
    pub eval_workers: bool,
    /// Total local steps at which the next evaluation is due.
    pub next: u64,
    /// `--eval-every` in seconds: the clock that says when instead.
    pub clock: Option<Arc<EvalClock>>,
}

impl EvalSchedule {
    /// Whether an evaluation is due at a round after `total` local steps in all (then the next
    /// one is scheduled).
    pub fn due(&mut self, total: u64) -> bool {
        if let Some(clock) = &self.clock {
            return clock.take_due();
        }
        let every = self.every * self.workers as u64;
        if total < self.next.max(every) {
            return false;
        }
        self.next = (total / every + 1) * every;
        true
    }

    /// Scores the evaluated point of `snaps` after `target`, formed at `place` (a GPU run's
    /// stays on the GPU, and reaches the evaluator's model device to device); `total` is the
    /// run's local steps.
    pub fn evaluate(
        &self,
        data: &RoundData,
        snaps: &[&Snapshot],
        target: Option<&Target>,
        total: u64,
        seconds: f64,
        place: &FlatPlace,
    ) -> Result<EvalEvent> {
        let xs: Vec<&Flat> = snaps.iter().map(|s| &s.params).collect();
        let point = data.evaluated_flat(&xs, target, place)?;
        self.score(&point, data, snaps, target, total, seconds)
    }

    /// Scores `point` (the evaluated point, formed by the caller: across processes it takes a
    /// collective); `snaps` are the workers scored with `--eval-workers`.
    pub fn score(
        &self,
        point: &Flat,
        data: &RoundData,
        snaps: &[&Snapshot],
        target: Option<&Target>,
        total: u64,
        seconds: f64,
    ) -> Result<EvalEvent> {
        let score = self.evaluator.score_flat(point)?;
        // Right after the score: the evaluator's model still holds the evaluated point.
        let val = self.evaluator.score_validation()?;
        let (center_accuracy, worker_accuracy) = if self.eval_workers {
            let center = match target {
                Some(Target::Pull { point, .. }) => {
                    Some(self.evaluator.score_flat(point)?.accuracy)
                }
                // Async EASGD: the center the exchange has just moved.
                Some(Target::Exchange { .. }) => data
                    .evaluation_point()
                    .map(|c| Ok::<_, crate::Error>(self.evaluator.score_flat(&c)?.accuracy))
                    .transpose()?,
                None => None,
            };
            let workers = snaps
                .iter()
                .map(|s| {
                    let mut x = s.params.duplicate()?;
                    if let Some(t) = target {
                        t.apply(Some(s.worker), &mut x)?;
                    }
                    Ok(self.evaluator.score_flat(&x)?.accuracy)
                })
                .collect::<Result<Vec<_>>>()?;
            (center, Some(workers))
        } else {
            (None, None)
        };
        Ok(EvalEvent {
            total_steps: total,
            epoch: total as f64 / (self.workers as u64 * self.batches_per_epoch) as f64,
            seconds,
            test_loss: score.loss,
            test_accuracy: score.accuracy,
            train_loss: f64::NAN,
            center_accuracy,
            worker_accuracy,
            per_class: score.per_class,
            val_loss: val.as_ref().map(|v| v.loss),
            val_accuracy: val.map(|v| v.accuracy),
        })
    }
}
