//! A worker: one model, its optimizer state, its shard and its random stream. Its loop reads like
//! the pseudo-code of docs/design.md section 2: a local step (alone, with an all-reduced gradient,
//! or SAM) and a proximal step toward the last target (`step`), and every tau steps a round with
//! the hub (`exchange`). Its parameters live in a [`ParamStore`] on the host or its GPU, and the
//! step is the same code on both.

mod exchange;
mod step;
mod store;

pub use store::{FlatStore, Gradient, ParamStore, TensorStore};

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::Sender;

use super::budget::StepBudget;
use super::messages::{Reply, ToHub, WorkerLink};
use super::shared::Shared;
use crate::algo::{
    AccumulatedNorms, LossWindow, NormSource, ScheduleKind, WorkerPlan, DEFAULT_ACCUMULATED_BETA,
};
use crate::buffer::{Flat, FlatBuffer, RoundBuffer};
use crate::checkpoint::{WorkerSave, WorkerState, WorkerTensors};
use crate::data::{Dataset, Normalization, ShardLoader};
use crate::eval_clock::EvalClock;
use crate::events::Event;
use crate::link::Delayed;
use crate::model::Model;
use crate::optim::SgdConfig;
use crate::schedule::LrSchedule;
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
    pub loader: ShardLoader,
    /// Seeds GRAWA's probe draws: each probe's generator comes from (seed, step), so a resumed
    /// run draws the same probes without saving generator state.
    pub probe_seed: u64,
    pub link: WorkerLink,
    pub ctx: Arc<WorkerContext>,
    /// The parameters, momentum and last gradient, where the model lives.
    store: Box<dyn ParamStore>,
    step: u64,
    since_round: u64,
    /// The last target (GRAWA's center, LSGD's leader), where the store lives; the initial point
    /// before the first round.
    anchor: Arc<Flat>,
    losses: LossWindow,
    /// Training losses of the steps since the last snapshot (see `Snapshot::losses`).
    unreported: Vec<f32>,
    accumulated: Option<AccumulatedNorms>,
    /// Async: the step of the newest snapshot sent, and of the one last pulled for.
    last_sent: Option<u64>,
    pulled_for: Option<u64>,
    /// Send the full state with the next round (a checkpoint is due).
    want_state: bool,
    /// Async over a modelled link: replies on their way, each applied at the first step
    /// boundary after it arrives.
    in_flight: Delayed<Reply>,
}

impl Worker {
    /// A worker at step 0; its parameters now are the common initial point.
    pub fn new(
        id: usize,
        model: Model,
        sgd: SgdConfig,
        loader: ShardLoader,
        probe_seed: u64,
        link: WorkerLink,
        ctx: Arc<WorkerContext>,
    ) -> Result<Self> {
        let store = store::open(&model, sgd)?;
        let layers = model.params.table().len();
        let accumulated = (ctx.plan.norms == Some(NormSource::Accumulated))
            .then(|| AccumulatedNorms::new(layers, DEFAULT_ACCUMULATED_BETA));
        Ok(Self {
            id,
            anchor: Arc::new(store.snapshot()?),
            store,
            model,
            loader,
            probe_seed,
            link,
            ctx,
            step: 0,
            since_round: 0,
            losses: LossWindow::new(),
            unreported: Vec::new(),
            accumulated,
            last_sent: None,
            pulled_for: None,
            want_state: false,
            in_flight: Delayed::default(),
        })
    }

    /// Everything a checkpoint needs of this worker.
    pub fn save(&self) -> Result<WorkerSave> {
        let (loader_epoch, loader_index) = self.loader.position();
        let (params, momentum) = self.store.save()?;
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
        self.store.load(params, t.momentum.clone())?;
        self.model.buffers.write_flat(&t.buffers)?;
        self.loader.seek(st.loader_epoch, st.loader_index);
        self.step = st.step;
        self.since_round = if pending_pull.is_some() {
            0
        } else {
            st.since_round
        };
        self.losses = st.losses.clone();
        self.anchor = Arc::new(Flat::Host(anchor.to_vec()).copy_to(self.store.place())?);
        self.ctx.shared.steps[self.id].store(self.step, Ordering::SeqCst);
        // Async: the checkpoint is where every worker was last in step, so it stands in for the
        // snapshot the staleness bound measures from. A fresh hub knows of no snapshot (0), and
        // every restored worker would be past the bound and wait for ever.
        self.ctx.shared.acked[self.id].store(self.step, Ordering::SeqCst);
        Ok(())
    }

    /// Trains until the hub (or, async, the budget) says stop, then sends the final parameters.
    /// An error is returned without sending anything more; the caller reports it.
    pub fn run(mut self) -> Result<()> {
        let tau = self.ctx.plan.tau;
        loop {
            crate::cuda::bind_thread(&self.model.device)?;
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
        let last = self.snapshot(exchange::Purpose::Final)?;
        self.send_state()?;
        self.send(ToHub::Final(last))
    }

    /// Sends the full state ahead of a round or the final snapshot.
    fn send_state(&self) -> Result<()> {
        let save = Box::new(self.save()?);
        self.send(ToHub::State {
            worker: self.id,
            save,
        })
    }

    fn send(&self, msg: ToHub) -> Result<()> {
        self.link.to_hub.send(msg).map_err(|_| self.hub_gone())
    }

    fn recv(&self) -> Result<Reply> {
        self.link.replies.recv().map_err(|_| self.hub_gone())
    }

    fn hub_gone(&self) -> Error {
        Error::Internal(format!("worker {}: the hub is gone", self.id))
    }
}
