//! A worker: one model, its optimizer, its shard and its random stream. Its loop reads like the
//! pseudo-code of docs/design.md section 2: take a local step (alone, with an all-reduced gradient, or SAM), a
//! proximal step toward the last target, and every tau steps a round with the pulling thread.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use candle_core::backprop::GradStore;
use crossbeam::channel::Sender;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::budget::StepBudget;
use super::device_params::{write_model, DeviceParams};
use super::hub::{Reply, Shared, ToHub, WorkerLink};
use super::step::batch_tensors;
use crate::algo::{NormSource, ScheduleKind, Snapshot, StepKind, Target, WorkerPlan};
use crate::average::{layer_norms, AccumulatedNorms, LossWindow, DEFAULT_ACCUMULATED_BETA};
use crate::buffer::{Flat, FlatBuffer, RoundBuffer};
use crate::checkpoint::{WorkerSave, WorkerState, WorkerTensors};
use crate::data::seed::derive_seed;
use crate::data::{sample_batch, Batch, Dataset, Normalization, ShardLoader};
use crate::eval_clock::EvalClock;
use crate::events::{Event, PullEvent, StepEvent};
use crate::model::Model;
use crate::optim::{flat_grads, Sgd};
use crate::schedule::{LrSchedule, Progress};
use crate::{Error, Result};

/// What every worker of a run shares.
pub struct WorkerContext {
    pub workers: usize,
    pub plan: WorkerPlan,
    pub mode: ScheduleKind,
    pub schedule: LrSchedule,
    pub budget: StepBudget,
    pub batches_per_epoch: u64,
    pub max_staleness: Option<u64>,
    /// The whole training set (GRAWA's probe draws from all of it).
    pub train: Arc<Dataset>,
    pub norm: Normalization,
    pub events: Sender<Event>,
    pub shared: Arc<Shared>,
    /// Tests only: sleep this long after each step of this worker.
    pub slow: Option<(usize, Duration)>,
    /// `--eval-every` in seconds, for algorithms without rounds: when to meet for an evaluation.
    pub eval_clock: Option<Arc<EvalClock>>,
    /// `--worker-speed` of this process's workers, by local id (empty: all at full speed).
    pub speed: Vec<f64>,
}

/// Everything one worker owns.
pub struct Worker {
    pub id: usize,
    pub model: Model,
    pub opt: Sgd,
    pub loader: ShardLoader,
    /// Seeds GRAWA's probe draws: each probe's generator comes from (seed, step), so a resumed
    /// run draws the same probes without saving generator state.
    pub probe_seed: u64,
    pub link: WorkerLink,
    pub ctx: Arc<WorkerContext>,
    step: u64,
    since_round: u64,
    /// The last target (GRAWA's center, LSGD's leader); the initial point before the first round.
    anchor: Arc<Flat>,
    losses: LossWindow,
    /// Training losses of the steps since the last snapshot (see `Snapshot::losses`).
    unreported: Vec<f32>,
    accumulated: Option<AccumulatedNorms>,
    flat: Vec<f32>,
    /// Async: the step of the newest snapshot sent, and of the one last pulled for.
    last_sent: Option<u64>,
    pulled_for: Option<u64>,
    /// Send the full state with the next round (a checkpoint is due).
    want_state: bool,
    /// A GPU worker's flat parameters, gradients and momentum on its GPU (`None` on the CPU):
    /// its optimizer step, pulls and snapshots run there.
    device: Option<DeviceParams>,
}

impl Worker {
    /// A worker at step 0; `anchor` is the common initial point.
    pub fn new(
        id: usize,
        model: Model,
        opt: Sgd,
        loader: ShardLoader,
        probe_seed: u64,
        link: WorkerLink,
        ctx: Arc<WorkerContext>,
    ) -> Result<Self> {
        let flat = model.params.to_flat()?;
        let layers = model.params.table().len();
        let device = DeviceParams::open(&model, opt.momentum())?;
        let anchor = match &device {
            Some(d) => d.snapshot()?,
            None => Flat::Host(flat.clone()),
        };
        let accumulated = (ctx.plan.norms == Some(NormSource::Accumulated))
            .then(|| AccumulatedNorms::new(layers, DEFAULT_ACCUMULATED_BETA));
        Ok(Self {
            id,
            anchor: Arc::new(anchor),
            model,
            opt,
            loader,
            probe_seed,
            link,
            ctx,
            step: 0,
            since_round: 0,
            losses: LossWindow::new(),
            unreported: Vec::new(),
            accumulated,
            flat,
            last_sent: None,
            pulled_for: None,
            want_state: false,
            device,
        })
    }

    /// Everything a checkpoint needs of this worker.
    pub fn save(&self) -> Result<WorkerSave> {
        let (loader_epoch, loader_index) = self.loader.position();
        let (params, momentum) = match &self.device {
            Some(d) => d.to_host()?,
            None => (self.model.params.to_flat()?, self.opt.momentum_vec()?),
        };
        Ok(WorkerSave {
            state: WorkerState {
                step: self.step,
                since_round: self.since_round,
                loader_epoch,
                loader_index,
                losses: self.losses.clone(),
            },
            tensors: WorkerTensors {
                params,
                buffers: self.model.buffers.to_flat()?,
                momentum,
            },
        })
    }

    /// Puts this worker where `save` left it; `anchor` is the proximal target, `pending_pull` a
    /// round's pull the saved parameters have not had yet.
    pub fn restore(
        &mut self,
        save: &WorkerSave,
        anchor: &[f32],
        pending_pull: Option<f32>,
    ) -> Result<()> {
        let (st, t) = (&save.state, &save.tensors);
        let mut params = t.params.clone();
        if let Some(lambda) = pending_pull {
            params.as_mut_slice().pull(anchor, lambda)?;
        }
        self.model.params.write_flat(&params)?;
        self.model.buffers.write_flat(&t.buffers)?;
        self.opt.set_momentum(&t.momentum)?;
        self.loader.seek(st.loader_epoch, st.loader_index);
        self.step = st.step;
        self.since_round = if pending_pull.is_some() {
            0
        } else {
            st.since_round
        };
        self.losses = st.losses.clone();
        self.anchor = Arc::new(Flat::Host(anchor.to_vec()));
        if let Some(d) = &mut self.device {
            d.load(&self.model.params, &params, &t.momentum)?;
            self.anchor = Arc::new(self.anchor.copy_to(&d.place())?);
        }
        self.ctx.shared.steps[self.id].store(self.step, Ordering::SeqCst);
        // Async: the checkpoint is where every worker was last in step, so it stands in for the
        // snapshot the staleness bound measures from. A fresh hub knows of no snapshot (0), and
        // every restored worker would be past the bound and wait for ever.
        self.ctx.shared.acked[self.id].store(self.step, Ordering::SeqCst);
        Ok(())
    }

    /// Sends the full state ahead of a round or the final snapshot.
    fn send_state(&self) -> Result<()> {
        let save = Box::new(self.save()?);
        self.send(ToHub::State {
            worker: self.id,
            save,
        })
    }

    /// Trains until the pulling thread (or, async, the budget) says stop, then sends the final
    /// parameters. An error is returned without sending anything more; the caller reports it.
    pub fn run(mut self) -> Result<()> {
        let tau = self.ctx.plan.tau;
        loop {
            let shared = &self.ctx.shared;
            let at_round = match self.ctx.mode {
                ScheduleKind::Sync => {
                    self.since_round == tau
                        || self.ctx.budget.max_steps == Some(self.step)
                        || shared.stopping()
                        || self.ctx.eval_clock.as_ref().is_some_and(|c| {
                            c.worker_meets(self.step, self.since_round, self.ctx.workers == 1)
                        })
                }
                ScheduleKind::Permits => shared.stopping() || !shared.take_permit(),
                ScheduleKind::Async => {
                    if self.async_should_stop() {
                        break;
                    }
                    false
                }
            };
            if at_round {
                // Stopping keeps `since_round`: a checkpoint taken now resumes mid-round.
                if self.round()? {
                    break;
                }
                self.since_round = 0;
                continue;
            }
            let speed = self.ctx.speed.get(self.id).copied().unwrap_or(1.0);
            let stop = crate::pace::paced(speed, || self.train_one_step())?;
            if stop {
                break;
            }
            if self.ctx.mode == ScheduleKind::Async && self.async_exchange()? {
                break;
            }
        }
        let snapshot = Snapshot {
            worker: self.id,
            step: self.step,
            params: self.params_snapshot()?,
            layer_norms: None,
            recent_loss: None,
            losses: std::mem::take(&mut self.unreported),
        };
        self.send_state()?;
        self.send(ToHub::Final(snapshot))
    }

    fn send(&self, msg: ToHub) -> Result<()> {
        self.link
            .to_hub
            .send(msg)
            .map_err(|_| Error::Internal(format!("worker {}: the pulling thread is gone", self.id)))
    }

    fn recv(&self) -> Result<Reply> {
        self.link
            .replies
            .recv()
            .map_err(|_| Error::Internal(format!("worker {}: the pulling thread is gone", self.id)))
    }

    /// One local step (and the proximal step after it); true when the all-reduce said stop.
    fn train_one_step(&mut self) -> Result<bool> {
        let ctx = self.ctx.clone();
        // Under `sync` every worker is at the same step, so its own count keeps the schedule
        // deterministic; otherwise the run's progress is the steps of all workers together.
        let global_step = if ctx.mode == ScheduleKind::Sync {
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
        let (loss, stop) = self.local_step(&batch, lr as f32)?;
        self.step += 1;
        self.since_round += 1;
        let total = ctx.shared.total_steps.fetch_add(1, Ordering::SeqCst) + 1;
        ctx.shared.steps[self.id].store(self.step, Ordering::SeqCst);
        self.losses.push(loss as f64);
        self.unreported.push(loss);
        if let Some(c) = ctx.plan.prox {
            match &mut self.device {
                Some(d) => d.params_mut().pull(&self.anchor, c)?,
                None => {
                    self.model.params.read_flat(&mut self.flat)?;
                    self.flat.as_mut_slice().pull(&self.anchor.host()?, c)?;
                    self.model.params.write_flat(&self.flat)?;
                }
            }
        }
        // A GPU worker's step and pull ran on its flat buffer: the tensors follow once.
        if let Some(d) = &self.device {
            d.unpack(&self.model.params)?;
        }
        let _ = ctx.events.send(Event::Step(StepEvent {
            worker: self.id,
            step: self.step,
            epoch: if ctx.mode == ScheduleKind::Sync {
                self.step as f64 / ctx.batches_per_epoch as f64
            } else {
                total as f64 / (ctx.workers as u64 * ctx.batches_per_epoch) as f64
            },
            loss,
            lr,
            images: batch.len(),
            seconds: ctx.shared.seconds(),
        }));
        if let Some((w, d)) = ctx.slow {
            if w == self.id {
                std::thread::sleep(d);
            }
        }
        Ok(stop)
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

    /// Sends a gradient for all-reduce and waits for the mean.
    fn all_reduce(&self, grads: Flat) -> Result<(Arc<Flat>, bool)> {
        self.send(ToHub::Grads {
            worker: self.id,
            step: self.step + 1,
            grads,
        })?;
        match self.recv()? {
            Reply::Grads { mean, stop } => Ok((mean, stop)),
            Reply::Round { .. } => Err(Error::Internal(format!(
                "worker {}: a round reply during all-reduce",
                self.id
            ))),
        }
    }

    fn local_step(&mut self, batch: &Batch, lr: f32) -> Result<(f32, bool)> {
        if self.device.is_some() {
            return self.local_step_device(batch, lr);
        }
        let params = self.model.params.clone();
        let (loss, grads) = self.forward_backward(batch)?;
        match self.ctx.plan.step {
            StepKind::Local => {
                if let Some(acc) = &mut self.accumulated {
                    let mut g = vec![0f32; params.len()];
                    flat_grads(&params, &grads, &mut g)?;
                    acc.push(&layer_norms(&g.layer_sumsq(params.table())?));
                }
                self.opt.step(&params, &grads, lr)?;
                Ok((loss, false))
            }
            StepKind::AllReduce => {
                let mut g = vec![0f32; params.len()];
                flat_grads(&params, &grads, &mut g)?;
                let (mean, stop) = self.all_reduce(Flat::Host(g))?;
                self.opt.step_flat(&params, &mean.host()?, lr)?;
                Ok((loss, stop))
            }
            StepKind::Sam { rho } => {
                // Ascend to x + rho g/|g| on the local gradient, take the gradient there, come back.
                let mut g = vec![0f32; params.len()];
                flat_grads(&params, &grads, &mut g)?;
                let scale = rho / (global_norm(&g) + 1e-12);
                params.read_flat(&mut self.flat)?;
                let mut ascended = self.flat.clone();
                ascended.scale_add(1.0, &g, scale)?;
                params.write_flat(&ascended)?;
                let (_, grads_there) = self.forward_backward(batch)?;
                flat_grads(&params, &grads_there, &mut g)?;
                params.write_flat(&self.flat)?;
                let (mean, stop) = self.all_reduce(Flat::Host(g))?;
                self.opt.step_flat(&params, &mean.host()?, lr)?;
                Ok((loss, stop))
            }
        }
    }

    /// [`Worker::local_step`] of a GPU worker: the gradient packed into its flat buffer, one
    /// `sgd_step` launch. DDP's and SAM's all-reduce hand the hub a copy of the flat gradient on
    /// this GPU and take the mean back the same way. The caller unpacks the parameters.
    fn local_step_device(&mut self, batch: &Batch, lr: f32) -> Result<(f32, bool)> {
        let params = self.model.params.clone();
        let cfg = self.opt.config;
        let (loss, grads) = self.forward_backward(batch)?;
        self.gpu()?.pack_grads(&params, &grads)?;
        drop(grads);
        let stop = match self.ctx.plan.step {
            StepKind::Local => {
                if self.accumulated.is_some() {
                    let norms = layer_norms(&self.gpu()?.grad_sumsq(&params)?);
                    if let Some(acc) = &mut self.accumulated {
                        acc.push(&norms);
                    }
                }
                false
            }
            StepKind::AllReduce => {
                let g = self.gpu()?.grads_snapshot()?;
                let (mean, stop) = self.all_reduce(g)?;
                self.gpu()?.set_grads(&mean)?;
                stop
            }
            StepKind::Sam { rho } => {
                // |g| from the per-layer sums of squares: L numbers come to the host.
                let d = self.gpu()?;
                let norm = d.grad_sumsq(&params)?.iter().sum::<f64>().sqrt() as f32;
                write_model(&d.ascended(rho / (norm + 1e-12))?, &params)?;
                let (_, grads_there) = self.forward_backward(batch)?;
                let d = self.gpu()?;
                d.pack_grads(&params, &grads_there)?;
                d.unpack(&params)?;
                let g = d.grads_snapshot()?;
                let (mean, stop) = self.all_reduce(g)?;
                self.gpu()?.set_grads(&mean)?;
                stop
            }
        };
        self.gpu()?.step(lr, &cfg)?;
        Ok((loss, stop))
    }

    /// A GPU worker's flat buffers.
    fn gpu(&mut self) -> Result<&mut DeviceParams> {
        self.device
            .as_mut()
            .ok_or_else(|| Error::Internal(format!("worker {}: not a GPU worker", self.id)))
    }

    /// The parameters as a round's snapshot, where they live.
    fn params_snapshot(&self) -> Result<Flat> {
        match &self.device {
            Some(d) => d.snapshot(),
            None => Ok(Flat::Host(self.model.params.to_flat()?)),
        }
    }

    /// Gradient norms per layer at the current parameters for a fresh probe batch from the whole
    /// training set: summed cross-entropy, BatchNorm in training mode, no weight decay.
    fn probe_norms(&mut self) -> Result<Vec<f64>> {
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
        let params = &self.model.params;
        if let Some(d) = &mut self.device {
            // On the GPU: only the L sums of squares come to the host.
            d.pack_grads(params, &grads)?;
            return Ok(layer_norms(&d.grad_sumsq(params)?));
        }
        let mut g = vec![0f32; params.len()];
        flat_grads(params, &grads, &mut g)?;
        Ok(layer_norms(&g.layer_sumsq(params.table())?))
    }

    fn snapshot(&mut self) -> Result<Snapshot> {
        let layer_norms = match self.ctx.plan.norms {
            Some(NormSource::Probe) => Some(self.probe_norms()?),
            Some(NormSource::Accumulated) => self.accumulated.as_ref().map(|a| a.value()),
            None => None,
        };
        Ok(Snapshot {
            worker: self.id,
            step: self.step,
            params: self.params_snapshot()?,
            layer_norms,
            recent_loss: if self.ctx.plan.report_loss {
                self.losses.mean()
            } else {
                None
            },
            losses: std::mem::take(&mut self.unreported),
        })
    }

    /// A lockstep round: report, wait, pull. Returns whether to stop.
    fn round(&mut self) -> Result<bool> {
        // A round forced by a stop signal only ends the run: no probe (it would move BatchNorm
        // statistics) and no state (the final snapshot carries it).
        let snapshot = if self.ctx.shared.stopping() {
            // Its losses stay for the final snapshot.
            Snapshot {
                worker: self.id,
                step: self.step,
                params: Flat::Host(Vec::new()),
                layer_norms: None,
                recent_loss: None,
                losses: Vec::new(),
            }
        } else {
            if self.want_state {
                self.send_state()?;
            }
            self.snapshot()?
        };
        self.send(ToHub::Round(snapshot))?;
        match self.recv()? {
            Reply::Round {
                target,
                stop,
                checkpoint_next,
                ..
            } => {
                self.want_state = checkpoint_next;
                if let Some(t) = target {
                    self.apply(&t)?;
                }
                if let Some(acc) = &mut self.accumulated {
                    acc.reset();
                }
                Ok(stop)
            }
            Reply::Grads { .. } => Err(Error::Internal(format!(
                "worker {}: an all-reduce reply at a round",
                self.id
            ))),
        }
    }

    fn apply(&mut self, t: &Target) -> Result<()> {
        if let Some(d) = &mut self.device {
            match t {
                // The point comes to this GPU once: the pull reads it, and the proximal steps
                // until the next round pull toward it.
                Target::Pull { point, lambda } => {
                    let here = Arc::new(point.copy_to(&d.place())?);
                    d.params_mut().pull(&here, *lambda)?;
                    self.anchor = here;
                }
                Target::Exchange { .. } => t.apply(Some(self.id), d.params_mut())?,
            }
            return d.unpack(&self.model.params);
        }
        self.model.params.read_flat(&mut self.flat)?;
        t.apply_host(Some(self.id), &mut self.flat)?;
        self.model.params.write_flat(&self.flat)?;
        if let Some(point) = t.anchor() {
            self.anchor = point.clone();
        }
        Ok(())
    }

    fn async_should_stop(&self) -> bool {
        let s = &self.ctx.shared;
        let total = s.total_steps.load(Ordering::SeqCst);
        let per_worker = total / self.ctx.workers as u64;
        s.stopping() || self.ctx.budget.done(per_worker, s.seconds())
    }

    /// Async: every tau steps post a snapshot, and pull once toward the first center built from
    /// it when it arrives (at a step boundary; nobody waits for it). Before the next step, hold
    /// back only if this worker would get more than `max_staleness` steps past the oldest snapshot
    /// of a running worker (stale-synchronous bound). Returns whether to stop.
    fn async_exchange(&mut self) -> Result<bool> {
        if self.since_round == self.ctx.plan.tau {
            let snapshot = self.snapshot()?;
            self.last_sent = Some(snapshot.step);
            self.send(ToHub::Round(snapshot))?;
            self.since_round = 0;
            if let Some(acc) = &mut self.accumulated {
                acc.reset();
            }
        }
        while let Ok(reply) = self.link.replies.try_recv() {
            if self.take_async_reply(reply)? {
                return Ok(true);
            }
        }
        let bound = self.ctx.max_staleness.unwrap_or(u64::MAX);
        let shared = self.ctx.shared.clone();
        while (self.step + 1).saturating_sub(shared.oldest_acked()) > bound {
            if self.async_should_stop() {
                return Ok(true);
            }
            match self.link.replies.recv_timeout(Duration::from_millis(2)) {
                Ok(reply) => {
                    if self.take_async_reply(reply)? {
                        return Ok(true);
                    }
                }
                Err(crossbeam::channel::RecvTimeoutError::Timeout) => {}
                Err(_) => {
                    return Err(Error::Internal(format!(
                        "worker {}: the pulling thread is gone",
                        self.id
                    )))
                }
            }
        }
        Ok(false)
    }

    /// Handles one async reply: a stop, or a center (applied if it is the first built from this
    /// worker's newest snapshot). Returns whether to stop.
    fn take_async_reply(&mut self, reply: Reply) -> Result<bool> {
        let Reply::Round {
            target,
            sources,
            stop,
            ..
        } = reply
        else {
            return Err(Error::Internal(format!(
                "worker {}: an all-reduce reply in an async run",
                self.id
            )));
        };
        if stop {
            return Ok(true);
        }
        let (Some(t), Some(src), Some(sent)) =
            (target, sources.get(self.id).copied(), self.last_sent)
        else {
            return Ok(false);
        };
        let take = match &t {
            // An exchange is addressed to this worker once, for one snapshot, and the center has
            // taken its half already: apply it whatever was sent since, or the sum drifts.
            Target::Exchange { .. } => t.applies_to(self.id),
            // A pull: once, toward the first center built from the newest snapshot.
            Target::Pull { .. } => src == sent && self.pulled_for != Some(sent),
        };
        if take {
            self.pulled_for = Some(src);
            self.apply(&t)?;
            let _ = self.ctx.events.send(Event::Pull(PullEvent {
                worker: self.id,
                step: self.step,
                lag: self.step - src,
            }));
        }
        Ok(false)
    }
}

/// The global L2 norm of a flat gradient, accumulated in f64 (SAM's ascent step).
fn global_norm(g: &[f32]) -> f32 {
    g.iter()
        .map(|&v| (v as f64) * (v as f64))
        .sum::<f64>()
        .sqrt() as f32
}
