//! A worker: one model, its optimizer, its shard of the data and its place in the schedule. Its
//! loop reads like the pseudo-code: take a batch, step, report, evaluate when due.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam::channel::Sender;

use super::budget::StepBudget;
use super::events::{EvalEvent, Event, StepEvent};
use super::step::{evaluate, train_step};
use crate::data::{Dataset, Normalization, ShardLoader};
use crate::model::Model;
use crate::optim::Sgd;
use crate::schedule::{LrSchedule, Progress};
use crate::{Error, Result};

/// What a worker reports when it stops.
#[derive(Clone, Debug)]
pub struct WorkerOutcome {
    pub steps: u64,
    pub epochs: f64,
    pub images: u64,
    /// Seconds spent training, evaluations excluded.
    pub train_seconds: f64,
    /// The evaluation at the end of training.
    pub final_eval: EvalEvent,
}

/// Everything one worker owns.
pub struct Worker {
    pub id: usize,
    pub model: Model,
    pub opt: Sgd,
    pub loader: ShardLoader,
    pub schedule: LrSchedule,
    pub budget: StepBudget,
    /// Evaluate every this many steps (default: once per epoch).
    pub eval_every: u64,
    pub test: Arc<Dataset>,
    pub norm: Normalization,
    pub eval_batch_size: usize,
}

impl Worker {
    /// Trains until the budget is spent, then evaluates once more. Stops early with
    /// `Error::Interrupted` when `stop` is raised and `Error::Diverged` on a non-finite loss.
    pub fn run(mut self, events: &Sender<Event>, stop: &AtomicBool) -> Result<WorkerOutcome> {
        let start = Instant::now();
        let per_epoch = self.loader.batches_per_epoch() as f64;
        let (mut step, mut images) = (0u64, 0u64);
        let (mut loss_sum, mut loss_count) = (0f64, 0u64);
        let mut eval_seconds = 0.0;
        loop {
            let seconds = start.elapsed().as_secs_f64();
            if self.budget.done(step, seconds - eval_seconds) {
                break;
            }
            if stop.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            let progress = Progress {
                step,
                epoch: step as f64 / per_epoch,
                seconds: seconds - eval_seconds,
                fraction: self.budget.fraction(step, seconds - eval_seconds),
            };
            let lr = self.schedule.lr(&progress);
            let batch = self.loader.next_batch();
            let loss = train_step(&self.model, &mut self.opt, &batch, lr as f32)?;
            step += 1;
            images += batch.labels.len() as u64;
            if !loss.is_finite() {
                return Err(Error::Diverged {
                    worker: self.id,
                    step,
                    what: format!("training loss is {loss}"),
                });
            }
            loss_sum += loss as f64;
            loss_count += 1;
            let epoch = step as f64 / per_epoch;
            let _ = events.send(Event::Step(StepEvent {
                worker: self.id,
                step,
                epoch,
                loss,
                lr,
                images: batch.labels.len(),
                seconds: start.elapsed().as_secs_f64(),
            }));
            let last = self.budget.max_steps == Some(step);
            if step.is_multiple_of(self.eval_every) && !last {
                let t = Instant::now();
                let ev = self.evaluate(step, epoch, &start, loss_sum / loss_count as f64)?;
                eval_seconds += t.elapsed().as_secs_f64();
                (loss_sum, loss_count) = (0.0, 0);
                let _ = events.send(Event::Eval(ev));
            }
        }
        let train_seconds = start.elapsed().as_secs_f64() - eval_seconds;
        let train_loss = if loss_count > 0 {
            loss_sum / loss_count as f64
        } else {
            f64::NAN
        };
        let ev = self.evaluate(step, step as f64 / per_epoch, &start, train_loss)?;
        let _ = events.send(Event::Eval(ev.clone()));
        Ok(WorkerOutcome {
            steps: step,
            epochs: step as f64 / per_epoch,
            images,
            train_seconds,
            final_eval: ev,
        })
    }

    fn evaluate(
        &self,
        step: u64,
        epoch: f64,
        start: &Instant,
        train_loss: f64,
    ) -> Result<EvalEvent> {
        let (test_loss, test_accuracy) =
            evaluate(&self.model, &self.test, &self.norm, self.eval_batch_size)?;
        Ok(EvalEvent {
            step,
            epoch,
            seconds: start.elapsed().as_secs_f64(),
            test_loss,
            test_accuracy,
            train_loss,
        })
    }
}
