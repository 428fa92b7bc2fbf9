//! The pulling thread: gathers the workers' snapshots, asks the algorithm for the round's target,
//! sends it back, all-reduces gradients for DDP, evaluates when due, and decides when the run
//! stops. In `sync` and `permits` every worker meets it at each round; in `async` it answers each
//! snapshot with a new center and nobody waits.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crossbeam::channel::{Receiver, Sender};

use super::eval::Evaluator;
use super::hub::{Reply, Shared, ToHub};
use crate::algo::{Plan, Policy, ScheduleKind, Snapshot, Target};
use crate::buffer::FlatBuffer;
use crate::checkpoint::{Checkpoint, Identity, MetricsState, RunState as SavedRun, WorkerSave};
use crate::config::CheckpointEvery;
use crate::events::{flat_weights, EvalEvent, Event, RoundEvent};
use crate::model::LayerEntry;
use crate::round::{Collective, Gathered, RoundData};
use crate::{Error, Result};

/// What the pulling thread needs.
pub struct Coordinator {
    pub schedule: ScheduleKind,
    pub workers: usize,
    /// The algorithm's decisions, from the participants' statistics.
    pub policy: Box<dyn Policy>,
    /// Carries the decisions out over the gathered buffers; keeps EASGD's center.
    pub data: RoundData,
    pub table: Vec<LayerEntry>,
    pub inbox: Receiver<ToHub>,
    pub replies: Vec<Sender<Reply>>,
    pub events: Sender<Event>,
    pub evaluator: Evaluator,
    pub shared: Arc<Shared>,
    /// Step budget per worker, and time budget.
    pub max_steps: Option<u64>,
    pub max_seconds: Option<f64>,
    /// Local steps per worker per round (permits: M*tau per round in all).
    pub tau: u64,
    /// Evaluate every this many local steps per worker.
    pub eval_every: u64,
    pub batches_per_epoch: u64,
    pub eval_workers: bool,
    /// The common initial point (the first proximal anchor; its length sizes the metrics' bytes).
    pub x0: Vec<f32>,
    /// When to checkpoint besides the end and an interruption.
    pub checkpoint_every: Option<CheckpointEvery>,
    pub identity: Identity,
    /// Where a resumed run picks up: rounds held, next evaluation, the last target.
    pub resumed: Option<Resumed>,
    /// `--watchdog`: a worker silent this long while it is waited for ends the run.
    pub watchdog: Option<std::time::Duration>,
}

/// The pulling thread's state restored from a checkpoint.
pub struct Resumed {
    pub rounds: u64,
    pub next_eval: u64,
    pub anchor: Vec<f32>,
}

/// How the run ended, from the pulling thread's side.
pub struct Outcome {
    pub final_eval: EvalEvent,
    pub rounds: u64,
    pub total_steps: u64,
    /// Each worker's local steps.
    pub worker_steps: Vec<u64>,
}

/// What a round decided and the target it produced.
struct Decided {
    plan: Plan,
    target: Option<Target>,
    participants: Vec<usize>,
}

impl Decided {
    /// Decides a round over `snaps` (sorted by worker) and carries it out: a lockstep round, or
    /// under `async` the arrival of `arriving`'s snapshot.
    fn new(c: &mut Coordinator, snaps: &[&Snapshot], arriving: Option<&Snapshot>) -> Result<Self> {
        let mut net = Gathered::snapshots(snaps, &c.table);
        let stats = net.all_gather()?;
        let plan = c.policy.decide(&stats);
        let target = match arriving {
            Some(s) => c.data.arrival(&plan, &mut net, s.worker, &s.params)?,
            None => c.data.lockstep(&plan, &mut net)?,
        };
        Ok(Self {
            participants: net.participants().to_vec(),
            plan,
            target,
        })
    }
}

/// Messages of one gathering, by worker.
struct Inbox {
    pending: Vec<Option<ToHub>>,
    first_at: Option<Instant>,
}

impl Coordinator {
    /// Runs until every worker has stopped; returns the final evaluation or the first failure.
    pub fn run(mut self) -> Result<Outcome> {
        let mut state = RunState::new(self.workers, &self.x0);
        if let Some(r) = self.resumed.take() {
            state.rounds = r.rounds;
            state.next_eval = r.next_eval;
            state.anchor = Arc::new(r.anchor);
        }
        let result = match self.schedule {
            ScheduleKind::Async => self.run_async(&mut state),
            ScheduleKind::Sync | ScheduleKind::Permits => self.run_lockstep(&mut state),
        };
        result?;
        // A failed run keeps its last good checkpoint; otherwise the final state is saved.
        if let Some(e) = state.failure.take() {
            return Err(e);
        }
        let interrupted = self.shared.interrupt.load(Ordering::Relaxed);
        if let Some(ckpt) = self.checkpoint(&mut state, None, !interrupted) {
            let _ = self.events.send(Event::Checkpoint(Box::new(ckpt)));
        }
        if interrupted {
            return Err(Error::Interrupted);
        }
        let finals: Vec<&Snapshot> = state.finals.iter().flatten().collect();
        let final_eval = self.evaluate(&finals, None, self.total_steps())?;
        let _ = self.events.send(Event::Eval(final_eval.clone()));
        Ok(Outcome {
            final_eval,
            rounds: state.rounds,
            total_steps: self.shared.total_steps.load(Ordering::SeqCst),
            worker_steps: state
                .finals
                .iter()
                .map(|s| s.as_ref().map_or(0, |s| s.step))
                .collect(),
        })
    }

    fn time_up(&self) -> bool {
        self.max_seconds.is_some_and(|m| self.shared.seconds() >= m)
    }

    fn total_steps(&self) -> u64 {
        self.shared.total_steps.load(Ordering::SeqCst)
    }

    /// Permits for the round after `total` steps: M*tau, or what is left of the budget.
    pub fn permits_for_next_round(&self, total: u64) -> u64 {
        let per_round = self.workers as u64 * self.tau;
        match self.max_steps {
            Some(m) => per_round.min((m * self.workers as u64).saturating_sub(total)),
            None => per_round,
        }
    }

    /// The next message from any worker. With a watchdog, a worker in `awaited` that has sent
    /// nothing for that long ends the run with an error naming it (it may be stuck for good, so
    /// nobody waits for it any more).
    fn receive(
        &self,
        state: &mut RunState,
        awaited: impl Fn(&RunState, usize) -> bool,
    ) -> Result<ToHub> {
        let gone = || Error::Internal("every worker hung up without finishing".into());
        let Some(limit) = self.watchdog else {
            return self.inbox.recv().map_err(|_| gone());
        };
        let tick = limit.min(std::time::Duration::from_millis(200));
        loop {
            match self.inbox.recv_timeout(tick) {
                Ok(msg) => {
                    if let Some(w) = sender_of(&msg) {
                        state.last_heard[w] = Instant::now();
                    }
                    return Ok(msg);
                }
                Err(crossbeam::channel::RecvTimeoutError::Disconnected) => return Err(gone()),
                Err(crossbeam::channel::RecvTimeoutError::Timeout) => {}
            }
            if let Some(w) = (0..self.workers)
                .find(|&w| awaited(state, w) && state.last_heard[w].elapsed() >= limit)
            {
                self.shared.abort.store(true, Ordering::SeqCst);
                return Err(Error::Internal(format!(
                    "worker {w} has sent nothing for {:.0} s (--watchdog): it is stuck or far too slow; run stopped",
                    limit.as_secs_f64()
                )));
            }
        }
    }

    /// Waits for one message from every worker still running (failures and finals are recorded).
    fn gather(&self, state: &mut RunState) -> Result<Inbox> {
        let mut g = Inbox {
            pending: (0..self.workers).map(|_| None).collect(),
            first_at: None,
        };
        let waiting = |state: &RunState, g: &Inbox| {
            (0..self.workers).any(|w| state.running(w) && g.pending[w].is_none())
        };
        while waiting(state, &g) {
            let pending: Vec<bool> = g.pending.iter().map(Option::is_some).collect();
            let msg = self.receive(state, |st, w| st.running(w) && !pending[w])?;
            g.first_at.get_or_insert_with(Instant::now);
            match msg {
                ToHub::Failed { worker, error } => state.fail(worker, error, &self.shared),
                ToHub::Final(s) => state.finish(s),
                ToHub::State { worker, save } => state.saves[worker] = Some(save),
                m @ (ToHub::Round(_) | ToHub::Grads { .. }) => {
                    let w = match &m {
                        ToHub::Round(s) => s.worker,
                        ToHub::Grads { worker, .. } => *worker,
                        _ => unreachable!("matched above"),
                    };
                    g.pending[w] = Some(m);
                }
            }
        }
        Ok(g)
    }

    fn run_lockstep(&mut self, state: &mut RunState) -> Result<()> {
        loop {
            let g = self.gather(state)?;
            let gathered_at = Instant::now();
            let msgs: Vec<(usize, ToHub)> = g
                .pending
                .into_iter()
                .enumerate()
                .filter_map(|(w, m)| m.map(|m| (w, m)))
                .collect();
            if msgs.is_empty() {
                return Ok(()); // everyone has sent their final snapshot
            }
            let early = state.failure.is_some() || self.shared.stopping() || self.time_up();
            let all_rounds = msgs.iter().all(|(_, m)| matches!(m, ToHub::Round(_)));
            let all_grads = msgs.iter().all(|(_, m)| matches!(m, ToHub::Grads { .. }));
            if all_rounds && !early {
                let snaps: Vec<Snapshot> = msgs
                    .into_iter()
                    .map(|(_, m)| match m {
                        ToHub::Round(s) => s,
                        _ => unreachable!("all rounds"),
                    })
                    .collect();
                self.lockstep_round(state, snaps, g.first_at, gathered_at)?;
            } else if all_grads && !early {
                self.all_reduce(msgs)?;
            } else {
                // Stopping early (a failure, a signal, the clock), or workers out of step because
                // some saw the stop flag first: everybody stops where they are.
                self.reply_stop(msgs);
            }
        }
    }

    /// One synchronous (or permits) round: target, replies, metrics, evaluation when due.
    fn lockstep_round(
        &mut self,
        state: &mut RunState,
        snaps: Vec<Snapshot>,
        first_at: Option<Instant>,
        gathered_at: Instant,
    ) -> Result<()> {
        let total = self.total_steps();
        let budget_done = match self.schedule {
            ScheduleKind::Permits => self.permits_for_next_round(total) == 0,
            _ => self
                .max_steps
                .is_some_and(|m| snaps.iter().all(|s| s.step >= m)),
        };
        let refs: Vec<&Snapshot> = snaps.iter().collect();
        let t0 = Instant::now();
        let result = Decided::new(self, &refs, None)?;
        let compute_ms = t0.elapsed().as_secs_f64() * 1e3;
        let stop = budget_done || self.time_up();
        if self.schedule == ScheduleKind::Permits && !stop {
            let n = self.permits_for_next_round(total);
            self.shared.open_permits(n);
        }
        state.rounds += 1;
        let gather_ms = first_at.map_or(0.0, |f| gathered_at.duration_since(f).as_secs_f64() * 1e3);
        let mut event = self.round_event(
            state.rounds,
            total,
            &result,
            snaps.len(),
            [gather_ms, compute_ms, 0.0],
        );
        event.participants = None;
        // A checkpoint round writes its round line and evaluation, then the checkpoint, all before
        // the replies: nothing of the next round can precede the checkpoint, and a resumed run
        // has nothing of this round to redo.
        let checkpointing = self.checkpoint_ready(state);
        if checkpointing {
            let _ = self.events.send(Event::Round(event.clone()));
            if !stop {
                self.evaluate_if_due(state, &refs, result.target.as_ref(), total)?;
            }
            if let Some(ckpt) = self.checkpoint(state, result.target.as_ref(), false) {
                let _ = self.events.send(Event::Checkpoint(Box::new(ckpt)));
            }
            state.last_checkpoint = Instant::now();
        }
        if let Some(point) = result.target.as_ref().and_then(Target::anchor) {
            state.anchor = point.clone();
        }
        let checkpoint_next = !stop && self.checkpoint_due(state);
        let t1 = Instant::now();
        let sources = Arc::new(snaps.iter().map(|s| s.step).collect::<Vec<_>>());
        for s in &snaps {
            let _ = self.replies[s.worker].send(Reply::Round {
                target: result.target.clone(),
                sources: sources.clone(),
                stop,
                checkpoint_next,
            });
        }
        if !checkpointing {
            event.scatter_ms = t1.elapsed().as_secs_f64() * 1e3;
            let _ = self.events.send(Event::Round(event));
            if !stop {
                self.evaluate_if_due(state, &refs, result.target.as_ref(), total)?;
            }
        }
        Ok(())
    }

    /// Averages the gradients and sends the mean back to every worker.
    fn all_reduce(&self, msgs: Vec<(usize, ToHub)>) -> Result<()> {
        let mut grads = Vec::with_capacity(msgs.len());
        let mut workers = Vec::with_capacity(msgs.len());
        let mut step = 0;
        for (w, m) in msgs {
            if let ToHub::Grads {
                grads: g, step: s, ..
            } = m
            {
                grads.push(g);
                workers.push(w);
                step = step.max(s);
            }
        }
        let xs: Vec<&[f32]> = grads.iter().map(Vec::as_slice).collect();
        let m = xs.len() as f32;
        let mut net = Gathered::buffers(workers.clone(), xs, &self.table);
        let mut mean = net.all_reduce_sum(None)?;
        mean.divide(m)?;
        let stop = self.max_steps.is_some_and(|m| step >= m) || self.time_up();
        let mean = Arc::new(mean);
        for w in workers {
            let _ = self.replies[w].send(Reply::Grads {
                mean: mean.clone(),
                stop,
            });
        }
        Ok(())
    }

    fn reply_stop(&self, msgs: Vec<(usize, ToHub)>) {
        for (w, m) in msgs {
            let reply = match m {
                ToHub::Grads { grads, .. } => Reply::Grads {
                    mean: Arc::new(grads),
                    stop: true,
                },
                _ => Reply::Round {
                    target: None,
                    sources: Arc::new(Vec::new()),
                    stop: true,
                    checkpoint_next: false,
                },
            };
            let _ = self.replies[w].send(reply);
        }
    }

    fn run_async(&mut self, state: &mut RunState) -> Result<()> {
        // The newest snapshot of each worker; a worker that has not reported takes no part.
        let mut newest: Vec<Option<Snapshot>> = (0..self.workers).map(|_| None).collect();
        let mut stop_sent = false;
        while (0..self.workers).any(|w| state.running(w)) {
            let msg = self.receive(state, |st, w| st.running(w))?;
            match msg {
                ToHub::Failed { worker, error } => {
                    self.shared.acked[worker].store(u64::MAX, Ordering::SeqCst);
                    state.fail(worker, error, &self.shared)
                }
                ToHub::Final(s) => {
                    self.shared.acked[s.worker].store(u64::MAX, Ordering::SeqCst);
                    state.finish(s)
                }
                ToHub::State { worker, save } => state.saves[worker] = Some(save),
                ToHub::Grads { worker, .. } => {
                    return Err(Error::Internal(format!(
                        "worker {worker} all-reduced in an async run"
                    )));
                }
                ToHub::Round(s) => {
                    let at = Instant::now();
                    let w = s.worker;
                    self.shared.acked[w].store(s.step, Ordering::SeqCst);
                    newest[w] = Some(s);
                    let refs: Vec<&Snapshot> = newest.iter().flatten().collect();
                    let arriving = newest[w].as_ref();
                    let result = Decided::new(self, &refs, arriving)?;
                    let compute_ms = at.elapsed().as_secs_f64() * 1e3;
                    // Per worker, the step of the snapshot the target was built from (0: none).
                    let sources = Arc::new(
                        newest
                            .iter()
                            .map(|s| s.as_ref().map_or(0, |s| s.step))
                            .collect::<Vec<_>>(),
                    );
                    let t1 = Instant::now();
                    for (r, reply) in self.replies.iter().enumerate() {
                        if state.running(r) {
                            let _ = reply.send(Reply::Round {
                                target: result.target.clone(),
                                sources: sources.clone(),
                                stop: false,
                                checkpoint_next: false,
                            });
                        }
                    }
                    let scatter_ms = t1.elapsed().as_secs_f64() * 1e3;
                    state.rounds += 1;
                    let total = self.total_steps();
                    let event = self.round_event(
                        state.rounds,
                        total,
                        &result,
                        1,
                        [0.0, compute_ms, scatter_ms],
                    );
                    let _ = self.events.send(Event::Round(event));
                    self.evaluate_if_due(state, &refs, result.target.as_ref(), total)?;
                }
            }
            // A worker waiting for a fresher center must hear about a stop too.
            if self.shared.stopping() && !stop_sent {
                stop_sent = true;
                for (r, reply) in self.replies.iter().enumerate() {
                    if state.running(r) {
                        let _ = reply.send(Reply::Round {
                            target: None,
                            sources: Arc::new(Vec::new()),
                            stop: true,
                            checkpoint_next: false,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the next round should carry every worker's state for a checkpoint.
    fn checkpoint_due(&self, state: &RunState) -> bool {
        match self.checkpoint_every {
            Some(CheckpointEvery::Rounds(n)) => (state.rounds + 1).is_multiple_of(n),
            Some(CheckpointEvery::Seconds(s)) => state.last_checkpoint.elapsed().as_secs_f64() >= s,
            None => false,
        }
    }

    /// True when every worker still in the run has sent its state for a checkpoint.
    fn checkpoint_ready(&self, state: &RunState) -> bool {
        let wanted = (0..self.workers).filter(|&w| !state.failed[w]).count();
        wanted > 0 && state.saves.iter().flatten().count() >= wanted
    }

    /// A checkpoint from the workers' saved states, if every running (or finished) worker sent
    /// one; they are taken (so each is used once). `pending` is a pull the saved states have not
    /// had yet (a round's target: resuming applies it first).
    fn checkpoint(
        &self,
        state: &mut RunState,
        pending: Option<&Target>,
        finished: bool,
    ) -> Option<Checkpoint> {
        if !self.checkpoint_ready(state) {
            return None;
        }
        let saves: Vec<WorkerSave> = state
            .saves
            .iter_mut()
            .map(|s| s.take().map(|b| *b))
            .collect::<Option<Vec<_>>>()?;
        let (anchor, pending_pull) = match pending {
            Some(Target::Pull { point, lambda }) => (point.to_vec(), Some(*lambda)),
            _ => (state.anchor.to_vec(), None),
        };
        Some(Checkpoint {
            state: SavedRun {
                version: crate::checkpoint::version(),
                identity: self.identity.clone(),
                rounds: state.rounds,
                total_steps: self.total_steps(),
                seconds: self.shared.seconds(),
                next_eval: state.next_eval,
                workers: saves.iter().map(|s| s.state.clone()).collect(),
                algo: self.policy.state(),
                metrics: MetricsState::default(),
                finished,
                pending_pull,
            },
            workers: saves.into_iter().map(|s| s.tensors).collect(),
            anchor,
            algo_tensors: self.data.state(),
        })
    }

    fn round_event(
        &self,
        round: u64,
        total: u64,
        r: &Decided,
        snapshots: usize,
        ms: [f64; 3],
    ) -> RoundEvent {
        let staleness = if self.schedule == ScheduleKind::Async {
            self.shared.staleness()
        } else {
            0
        };
        let p = self.x0.len() as u64 * 4;
        let bytes = snapshots as u64 * p
            + if r.target.is_some() {
                self.workers as u64 * p
            } else {
                0
            };
        RoundEvent {
            round,
            seconds: self.shared.seconds(),
            total_steps: total,
            weights: r
                .plan
                .weights(r.participants.len())
                .map(|w| flat_weights(&w, &r.participants, self.workers)),
            norms: r.plan.norms.clone(),
            participants: Some(r.participants.clone()),
            leader: r.plan.leader(),
            lambda: r.target.as_ref().map(|_| r.plan.lambda),
            staleness,
            gather_ms: ms[0],
            compute_ms: ms[1],
            scatter_ms: ms[2],
            bytes,
        }
    }

    fn evaluate_if_due(
        &self,
        state: &mut RunState,
        snaps: &[&Snapshot],
        target: Option<&Target>,
        total: u64,
    ) -> Result<()> {
        let every = self.eval_every * self.workers as u64;
        if total < state.next_eval.max(every) {
            return Ok(());
        }
        state.next_eval = (total / every + 1) * every;
        let ev = self.evaluate(snaps, target, total)?;
        let _ = self.events.send(Event::Eval(ev));
        Ok(())
    }

    /// Scores the evaluated point: the algorithm's own (EASGD) or the workers' uniform average
    /// after this round's pull. `total` is the run's local steps at that round.
    fn evaluate(
        &self,
        snaps: &[&Snapshot],
        target: Option<&Target>,
        total: u64,
    ) -> Result<EvalEvent> {
        // A worker's parameters after the target.
        let pulled = |x: &[f32], worker: usize| -> Result<Vec<f32>> {
            let mut x = x.to_vec();
            if let Some(t) = target {
                t.apply_host(Some(worker), &mut x)?;
            }
            Ok(x)
        };
        let xs: Vec<&[f32]> = snaps.iter().map(|s| s.params.as_slice()).collect();
        let point = self.data.evaluated_point(&xs, target)?;
        let score = self.evaluator.score(&point)?;
        let (center_accuracy, worker_accuracy) = if self.eval_workers {
            let center = match target {
                Some(Target::Pull { point, .. }) => Some(self.evaluator.score(point)?.accuracy),
                // Async EASGD: the center the exchange has just moved.
                Some(Target::Exchange { .. }) => self
                    .data
                    .evaluation_point()
                    .map(|c| self.evaluator.score(&c).map(|s| s.accuracy))
                    .transpose()?,
                None => None,
            };
            let workers = snaps
                .iter()
                .map(|s| {
                    Ok(self
                        .evaluator
                        .score(&pulled(&s.params, s.worker)?)?
                        .accuracy)
                })
                .collect::<Result<Vec<_>>>()?;
            (center, Some(workers))
        } else {
            (None, None)
        };
        Ok(EvalEvent {
            total_steps: total,
            epoch: total as f64 / (self.workers as u64 * self.batches_per_epoch) as f64,
            seconds: self.shared.seconds(),
            test_loss: score.loss,
            test_accuracy: score.accuracy,
            train_loss: f64::NAN,
            center_accuracy,
            worker_accuracy,
        })
    }
}

/// What the pulling thread tracks across rounds.
struct RunState {
    failed: Vec<bool>,
    finals: Vec<Option<Snapshot>>,
    /// Full worker states sent for the coming checkpoint.
    saves: Vec<Option<Box<WorkerSave>>>,
    failure: Option<Error>,
    rounds: u64,
    next_eval: u64,
    /// The last target (what workers take proximal steps toward).
    anchor: Arc<Vec<f32>>,
    last_checkpoint: Instant,
    /// When each worker was last heard from (for the watchdog).
    last_heard: Vec<Instant>,
}

impl RunState {
    fn new(workers: usize, x0: &[f32]) -> Self {
        Self {
            failed: vec![false; workers],
            finals: (0..workers).map(|_| None).collect(),
            saves: (0..workers).map(|_| None).collect(),
            failure: None,
            rounds: 0,
            next_eval: 0,
            anchor: Arc::new(x0.to_vec()),
            last_checkpoint: Instant::now(),
            last_heard: vec![Instant::now(); workers],
        }
    }

    /// Still training: neither failed nor finished.
    fn running(&self, w: usize) -> bool {
        !self.failed[w] && self.finals[w].is_none()
    }

    fn fail(&mut self, worker: usize, error: Error, shared: &Shared) {
        self.failed[worker] = true;
        shared.abort.store(true, Ordering::SeqCst);
        if self.failure.is_none() {
            self.failure = Some(error);
        }
    }

    fn finish(&mut self, s: Snapshot) {
        let w = s.worker;
        self.finals[w] = Some(s);
    }
}

/// The worker a message comes from.
fn sender_of(msg: &ToHub) -> Option<usize> {
    match msg {
        ToHub::Round(s) | ToHub::Final(s) => Some(s.worker),
        ToHub::Grads { worker, .. }
        | ToHub::State { worker, .. }
        | ToHub::Failed { worker, .. } => Some(*worker),
    }
}
