//! The mean training loss between evaluations, over every worker's steps, as the main thread
//! sees their step events.

use crate::checkpoint;
use crate::events::Event;

/// Mean training loss between evaluations, over every worker's steps. Under `sync` the window is
/// cut by step number (an evaluation at a round covers each worker's steps up to that round), so
/// the figure does not depend on when events arrive; otherwise by arrival.
pub struct TrainLossMeter {
    by_step: bool,
    /// Per worker: the losses of steps `done + 1 ..` not yet reported, and `done`.
    pub pending: Vec<Vec<f32>>,
    done: Vec<u64>,
    /// The last window's mean, for an evaluation with no step since the previous one.
    pub last: f64,
}

impl TrainLossMeter {
    /// Continues from a checkpoint: `steps` are the workers' steps there.
    pub fn restore(&mut self, saved: &checkpoint::MetricsState, steps: &[u64]) {
        for (w, pending) in saved
            .pending_losses
            .iter()
            .enumerate()
            .take(self.pending.len())
        {
            self.pending[w] = pending.clone();
            self.done[w] = steps[w].saturating_sub(pending.len() as u64);
        }
        self.last = saved.last_train_loss.unwrap_or(f64::NAN);
    }

    /// Over all `workers` workers of the run (across processes rank 0's meter gets the other
    /// ranks' losses as `RemoteLosses`).
    pub fn new(workers: usize, by_step: bool) -> Self {
        Self {
            by_step,
            pending: vec![Vec::new(); workers],
            done: vec![0; workers],
            last: f64::NAN,
        }
    }

    pub fn observe(&mut self, event: &mut Event) {
        match event {
            Event::Step(s) => self.pending[s.worker].push(s.loss),
            Event::RemoteLosses { worker, losses } => self.pending[*worker].extend(losses.iter()),
            Event::Eval(e) => {
                let m = self.pending.len() as u64;
                let (mut sum, mut count) = (0f64, 0usize);
                for (w, losses) in self.pending.iter_mut().enumerate() {
                    let take = if self.by_step {
                        ((e.total_steps / m).saturating_sub(self.done[w]) as usize)
                            .min(losses.len())
                    } else {
                        losses.len()
                    };
                    sum += losses[..take].iter().map(|&l| l as f64).sum::<f64>();
                    count += take;
                    losses.drain(..take);
                    self.done[w] += take as u64;
                }
                if count > 0 {
                    self.last = sum / count as f64;
                }
                e.train_loss = self.last;
            }
            _ => {}
        }
    }
}
