//! A worker's local step: forward and backward on its own batch, the gradient packed into the
//! store, the step kind's exchange (none, DDP's all-reduce, or SAM's ascent and all-reduce), one
//! SGD step of the whole model, the proximal pull, and the parameters written back into the
//! model's tensors. The same code whether the store lives on the host or a GPU.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use candle_core::backprop::GradStore;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::{Gradient, Worker};
use crate::algo::{layer_norms, StepKind};
use crate::buffer::{Flat, FlatBuffer, RoundBuffer};
use crate::data::seed::derive_seed;
use crate::data::{sample_batch, Batch};
use crate::events::{Event, StepEvent};
use crate::model::evaluate::batch_tensors;
use crate::schedule::Progress;
use crate::train::messages::{Reply, ToHub};
use crate::{Error, Result};

/// What a local step gives back.
struct LocalStep {
    /// The mean training loss of the batch.
    loss: f32,
    /// The all-reduce said stop.
    stop: bool,
    /// Over a modelled link: the all-reduce's modelled milliseconds.
    link_ms: Option<f64>,
}

impl Worker {
    /// One local step (and the proximal step after it); true when the all-reduce said stop.
    pub(super) fn train_one_step(&mut self) -> Result<bool> {
        let ctx = self.ctx.clone();
        // Under `sync` every worker is at the same step, so its own count keeps the schedule
        // deterministic; otherwise the run's progress is the steps of all workers together.
        let global_step = if ctx.mode == crate::algo::ScheduleKind::Sync {
            self.step
        } else {
            ctx.shared.total_steps.load(Ordering::Relaxed) / ctx.workers as u64
        };
        let seconds = ctx.shared.seconds();
        let progress = Progress {
            step: global_step,
            epoch: global_step as f64 / ctx.batches_per_epoch as f64,
            seconds,
            fraction: ctx.budget.fraction(global_step, seconds),
        };
        let lr = ctx.schedule.lr(&progress);
        let batch = self.loader.next_batch();
        let LocalStep {
            loss,
            stop,
            link_ms,
        } = self.local_step(&batch, lr as f32)?;
        self.step += 1;
        self.since_round += 1;
        let total = ctx.shared.total_steps.fetch_add(1, Ordering::SeqCst) + 1;
        ctx.shared.steps[self.id].store(self.step, Ordering::SeqCst);
        self.losses.push(loss as f64);
        self.unreported.push(loss);
        if let Some(c) = ctx.plan.prox {
            self.store.pull(&self.anchor, c)?;
        }
        // The model's tensors follow the step and the pull, once.
        self.store.sync()?;
        let _ = ctx.events.send(Event::Step(StepEvent {
            worker: self.id,
            step: self.step,
            epoch: if ctx.mode == crate::algo::ScheduleKind::Sync {
                self.step as f64 / ctx.batches_per_epoch as f64
            } else {
                total as f64 / (ctx.workers as u64 * ctx.batches_per_epoch) as f64
            },
            loss,
            lr,
            images: batch.len(),
            seconds: ctx.shared.seconds(),
            link_ms,
        }));
        if let Some((w, d)) = ctx.slow {
            if w == self.id {
                std::thread::sleep(d);
            }
        }
        Ok(stop)
    }

    /// The step on `batch` with learning rate `lr`.
    fn local_step(&mut self, batch: &Batch, lr: f32) -> Result<LocalStep> {
        let (loss, grads) = self.forward_backward(batch)?;
        let table = self.model.params.table();
        let (mean, stop, link_ms) = match self.ctx.plan.step {
            StepKind::Local => {
                match &mut self.accumulated {
                    Some(acc) => {
                        let g = self.store.pack(&grads)?;
                        acc.push(&layer_norms(&g.layer_sumsq(table)?));
                        self.store.step(Gradient::Packed, lr)?;
                    }
                    None => self.store.step(Gradient::Backward(&grads), lr)?,
                }
                return Ok(LocalStep {
                    loss,
                    stop: false,
                    link_ms: None,
                });
            }
            StepKind::AllReduce => {
                let g = self.store.pack(&grads)?.duplicate()?;
                drop(grads);
                self.all_reduce(g)?
            }
            StepKind::Sam { rho } => {
                // Ascend to x + rho g/|g| on the local gradient, take the gradient there, and
                // come back to x. |g| from the per-layer sums of squares (on a GPU only L
                // numbers reach the host).
                let sumsq = self.store.pack(&grads)?.layer_sumsq(table)?;
                drop(grads);
                let norm = sumsq.iter().sum::<f64>().sqrt() as f32;
                self.store.ascend(rho / (norm + 1e-12))?;
                let (_, there) = self.forward_backward(batch)?;
                let g = self.store.pack(&there)?.duplicate()?;
                self.store.descend()?;
                self.all_reduce(g)?
            }
        };
        self.store.step(Gradient::Given(&mean), lr)?;
        Ok(LocalStep {
            loss,
            stop,
            link_ms,
        })
    }

    /// Forward and backward on `batch`: the mean loss and the gradients.
    fn forward_backward(&self, batch: &Batch) -> Result<(f32, GradStore)> {
        let (x, y) = batch_tensors(batch, &self.model.device)?;
        let logits = self.model.forward_t(&x, true)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        let grads = loss.backward()?;
        let value = loss.to_scalar::<f32>()?;
        if !value.is_finite() {
            return Err(Error::Diverged {
                worker: self.id,
                step: self.step + 1,
                what: format!("training loss is {value}"),
            });
        }
        Ok((value, grads))
    }

    /// Sends a gradient for all-reduce and waits for the mean: the mean, whether to stop, and
    /// the all-reduce's modelled milliseconds over a modelled link.
    fn all_reduce(&self, grads: Flat) -> Result<(Arc<Flat>, bool, Option<f64>)> {
        self.send(ToHub::Grads {
            worker: self.id,
            step: self.step + 1,
            grads,
        })?;
        match self.recv()? {
            Reply::Grads {
                mean,
                stop,
                link_ms,
            } => Ok((mean, stop, link_ms)),
            Reply::Round { .. } => Err(Error::Internal(format!(
                "worker {}: a round reply during all-reduce",
                self.id
            ))),
        }
    }

    /// Gradient norms per layer at the current parameters for a fresh probe batch from the whole
    /// training set: summed cross-entropy, BatchNorm in training mode, no weight decay.
    pub(super) fn probe_norms(&mut self) -> Result<Vec<f64>> {
        let batch = sample_batch(
            &self.ctx.train,
            &self.ctx.norm,
            self.ctx.plan.probe_samples,
            &mut StdRng::seed_from_u64(derive_seed(&[self.probe_seed, self.step])),
        );
        let (x, y) = batch_tensors(&batch, &self.model.device)?;
        let logits = self.model.forward_t(&x, true)?;
        let summed = (candle_nn::loss::cross_entropy(&logits, &y)? * batch.len() as f64)?;
        let grads = summed.backward()?;
        let g = self.store.pack(&grads)?;
        Ok(layer_norms(&g.layer_sumsq(self.model.params.table())?))
    }
}
