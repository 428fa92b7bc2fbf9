//! The pulling thread: gathers the workers' snapshots, has the algorithm decide the round and
//! the round's data carry it out, sends the target back, all-reduces gradients for DDP, and
//! decides when the run stops. In `sync` and `permits` every worker meets it at each round; in
//! `async` it answers each snapshot with a new center and nobody waits.
//!
//! Its other jobs are types of their own: the budget ([`RoundClock`]), when and what to evaluate
//! ([`Evaluation`]), checkpoint assembly ([`CheckpointAssembly`]) and `--watchdog` ([`Watchdog`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crossbeam::channel::{Receiver, Sender};

use super::checkpoints::{AlgoParts, CheckpointAssembly, Position};
use super::evaluation::Evaluation;
use super::hub::{Reply, Shared, ToHub};
use super::round_clock::RoundClock;
use super::watchdog::Watchdog;
use crate::algo::{Plan, Policy, ScheduleKind, Snapshot, Target, WorkerStats};
use crate::buffer::{Flat, FlatBuffer, FlatPlace};
use crate::checkpoint::Checkpoint;
use crate::events::{flat_weights, EvalEvent, Event, RoundEvent};
use crate::model::LayerEntry;
use crate::ranks::{
    agree, gather_saves, others_losses, push_losses, Header, Kind, Peers, RankCollective,
};
use crate::round::{Collective, Gathered, Reduced, Reducer, RoundData};
use crate::{Error, Result};

/// What the pulling thread needs.
pub struct Coordinator {
    pub clock: RoundClock,
    /// The algorithm's decisions, from the participants' statistics.
    pub policy: Box<dyn Policy>,
    /// Carries the decisions out over the gathered buffers; keeps EASGD's center.
    pub data: RoundData,
    pub table: Vec<LayerEntry>,
    pub inbox: Receiver<ToHub>,
    pub replies: Vec<Sender<Reply>>,
    pub events: Sender<Event>,
    pub evaluation: Evaluation,
    pub checkpoints: CheckpointAssembly,
    pub watchdog: Watchdog,
    pub shared: Arc<Shared>,
    /// Rounds held before (a resumed run), and the proximal anchor then (else the initial point).
    pub rounds: u64,
    pub anchor: Arc<Flat>,
    /// Where rounds make their results: host memory, or the pulling thread's stream on the first
    /// GPU of a GPU run.
    pub place: FlatPlace,
    /// The other ranks of a run across processes (`mpirun`); `None` in one process. Worker ids in
    /// this thread's messages are local; rounds decide over global ones.
    pub peers: Option<Box<dyn Peers>>,
    /// `--round nccl`: the GPU of each worker, for the communicators this thread makes when the
    /// run starts (NCCL's communicators stay on the thread that made them).
    pub nccl_gpus: Option<Vec<usize>>,
}

/// How the run ended, from the pulling thread's side.
pub struct Outcome {
    /// The final evaluation (`None` on ranks other than 0, which do not score).
    pub final_eval: Option<EvalEvent>,
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

/// How every rank's workers ended.
struct Ended {
    /// The first rank with a failed worker.
    failed_rank: Option<usize>,
    interrupted: bool,
    total_steps: u64,
    /// Every worker's local steps, in global order.
    worker_steps: Vec<u64>,
    /// Rank 0: the other ranks' workers' step losses from their final snapshots.
    remote_losses: Vec<(usize, Vec<f32>)>,
}

/// Messages of one gathering, by worker.
struct Inbox {
    pending: Vec<Option<ToHub>>,
    first_at: Option<Instant>,
}

/// What the pulling thread tracks across rounds.
struct RunState {
    failed: Vec<bool>,
    finals: Vec<Option<Snapshot>>,
    failure: Option<Error>,
}

impl RunState {
    /// Still training: neither failed nor finished.
    fn running(&self, w: usize) -> bool {
        !self.failed[w] && self.finals[w].is_none()
    }
}

impl Coordinator {
    /// This process's workers.
    fn workers(&self) -> usize {
        self.clock.workers
    }

    /// The run's workers, over every rank.
    fn global_workers(&self) -> usize {
        self.peers
            .as_ref()
            .map_or(self.workers(), |p| p.layout().global_workers())
    }

    /// Runs until every worker has stopped; returns the final evaluation or the first failure.
    pub fn run(mut self) -> Result<Outcome> {
        // `--round nccl`: the communicators are made here, on the thread that will use them.
        let reducer = match &self.nccl_gpus {
            Some(gpus) => Some(nccl_reducer(gpus, &self.table)?),
            None => None,
        };
        let nccl = reducer.as_deref();
        let m = self.workers();
        let mut state = RunState {
            failed: vec![false; m],
            finals: (0..m).map(|_| None).collect(),
            failure: None,
        };
        match self.clock.schedule {
            ScheduleKind::Async => self.run_async(&mut state, nccl)?,
            ScheduleKind::Sync | ScheduleKind::Permits => self.run_lockstep(&mut state, nccl)?,
        }
        let ended = self.agree_end(&state)?;
        // A failed run keeps its last good checkpoint; otherwise the final state is saved.
        if let Some(e) = state.failure.take() {
            return Err(e);
        }
        if let Some(rank) = ended.failed_rank {
            return Err(Error::Internal(format!(
                "rank {rank} failed (its own message says why); run stopped"
            )));
        }
        // The other ranks' last step losses, in time for the final checkpoint and evaluation.
        self.send_remote_losses(ended.remote_losses);
        let interrupted = ended.interrupted;
        if let Some(ckpt) = self.checkpoint(&state, None, !interrupted, ended.total_steps)? {
            let _ = self.events.send(Event::Checkpoint(Box::new(ckpt)));
        }
        if interrupted {
            return Err(Error::Interrupted);
        }
        let finals: Vec<&Snapshot> = state.finals.iter().flatten().collect();
        let total = ended.total_steps;
        let final_eval = self.evaluate(&finals, None, total)?;
        if let Some(e) = &final_eval {
            let _ = self.events.send(Event::Eval(e.clone()));
        }
        // A signal during the final evaluation stops the run too (exit 130). The checkpoint above
        // is the finished one, so `--resume` does only the final evaluation and the summary.
        if self.shared.interrupt.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        Ok(Outcome {
            final_eval,
            rounds: self.rounds,
            total_steps: total,
            worker_steps: ended.worker_steps,
        })
    }

    /// Rank 0's main thread gets other ranks' step losses, for its training-loss figures.
    fn send_remote_losses(&self, losses: Vec<(usize, Vec<f32>)>) {
        for (worker, losses) in losses {
            let _ = self.events.send(Event::RemoteLosses { worker, losses });
        }
    }

    /// What every rank agrees on once its workers have all stopped: whether one failed or was
    /// interrupted (then all end the same way, and nobody waits in a collective for a rank that
    /// has left), the run's total steps, every worker's steps, and (rank 0) the other ranks'
    /// last step losses. In one process, its own.
    fn agree_end(&mut self, state: &RunState) -> Result<Ended> {
        let steps: Vec<u64> = state
            .finals
            .iter()
            .map(|s| s.as_ref().map_or(0, |s| s.step))
            .collect();
        let failed = state.failure.is_some();
        let interrupted = self.shared.interrupt.load(Ordering::Relaxed);
        let total = self.total_steps();
        let Some(peers) = &mut self.peers else {
            return Ok(Ended {
                failed_rank: None,
                interrupted,
                total_steps: total,
                worker_steps: steps,
                remote_losses: Vec::new(),
            });
        };
        let finals: Vec<&Snapshot> = state.finals.iter().flatten().collect();
        let mut mine = vec![
            f64::from(u8::from(failed)),
            f64::from(u8::from(interrupted)),
        ];
        mine.push(total as f64);
        mine.extend(steps.iter().map(|&s| s as f64));
        let fixed = mine.len();
        push_losses(&mut mine, &finals);
        let layout = peers.layout();
        let all = peers.all_gather_var(&mine);
        Ok(Ended {
            failed_rank: all.iter().position(|v| v[0] != 0.0),
            interrupted: all.iter().any(|v| v[1] != 0.0),
            total_steps: all.iter().map(|v| v[2] as u64).sum(),
            worker_steps: all
                .iter()
                .flat_map(|v| v[3..fixed].iter().map(|&s| s as u64))
                .collect(),
            remote_losses: if layout.is_root() {
                others_losses(&all, fixed, layout)
            } else {
                Vec::new()
            },
        })
    }

    fn total_steps(&self) -> u64 {
        self.shared.total_steps.load(Ordering::SeqCst)
    }

    /// Decides a round over `snaps` (sorted by worker) and carries it out: a lockstep round, or
    /// under `async` the arrival of `arriving`'s snapshot.
    /// `agreed`: every worker's statistics as the ranks agreed them (across processes).
    fn decide(
        &mut self,
        snaps: &[&Snapshot],
        arriving: Option<&Snapshot>,
        agreed: Option<Vec<WorkerStats>>,
        nccl: Option<&dyn Reducer>,
    ) -> Result<Decided> {
        let len = self.anchor.len();
        // Across ranks the round's buffers are host memory: a GPU rank's snapshots are staged.
        let staged: Vec<Flat> = match &self.peers {
            Some(_) => snaps
                .iter()
                .map(|s| Ok(Flat::Host(s.params.to_vec()?)))
                .collect::<Result<_>>()?,
            None => Vec::new(),
        };
        let mut net: Box<dyn Collective + '_> = match (&mut self.peers, agreed) {
            (Some(p), Some(stats)) => {
                let local = Gathered::new(
                    snaps.iter().map(|s| s.worker).collect(),
                    snaps.iter().map(|s| s.stats()).collect(),
                    staged.iter().collect(),
                    &self.table,
                    FlatPlace::Host,
                );
                Box::new(RankCollective::new(local, p.as_mut(), stats, len))
            }
            _ => match nccl {
                Some(r) => Box::new(Reduced::new(
                    snaps.iter().map(|s| s.worker).collect(),
                    snaps.iter().map(|s| s.stats()).collect(),
                    snaps.iter().map(|s| &s.params).collect(),
                    r,
                    self.place.clone(),
                )),
                None => Box::new(Gathered::snapshots(snaps, &self.table, self.place.clone())),
            },
        };
        let stats = net.all_gather()?;
        let plan = self.policy.decide(&stats);
        let target = match arriving {
            Some(s) => self.data.arrival(&plan, net.as_mut(), s.worker)?,
            None => self.data.lockstep(&plan, net.as_mut())?,
        };
        Ok(Decided {
            participants: net.participants().to_vec(),
            plan,
            target,
        })
    }

    /// Records a worker's failure and tells the others to stop.
    fn fail(&self, state: &mut RunState, worker: usize, error: Error) {
        state.failed[worker] = true;
        self.shared.abort.store(true, Ordering::SeqCst);
        state.failure.get_or_insert(error);
    }

    /// Waits for one message from every worker still running (failures and finals are recorded).
    fn gather(&mut self, state: &mut RunState) -> Result<Inbox> {
        let mut g = Inbox {
            pending: (0..self.workers()).map(|_| None).collect(),
            first_at: None,
        };
        let waiting = |state: &RunState, g: &Inbox| {
            (0..g.pending.len()).any(|w| state.running(w) && g.pending[w].is_none())
        };
        while waiting(state, &g) {
            let awaited: Vec<bool> = (0..g.pending.len())
                .map(|w| state.running(w) && g.pending[w].is_none())
                .collect();
            let msg = self
                .watchdog
                .receive(&self.inbox, &self.shared, |w| awaited[w])?;
            g.first_at.get_or_insert_with(Instant::now);
            match msg {
                ToHub::Failed { worker, error } => self.fail(state, worker, error),
                ToHub::Final(s) => {
                    let w = s.worker;
                    state.finals[w] = Some(s);
                }
                ToHub::State { worker, save } => self.checkpoints.store(worker, save),
                m @ (ToHub::Round(_) | ToHub::Grads { .. }) => {
                    let w = m.sender();
                    g.pending[w] = Some(m);
                }
            }
        }
        Ok(g)
    }

    fn run_lockstep(&mut self, state: &mut RunState, nccl: Option<&dyn Reducer>) -> Result<()> {
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
            let early = state.failure.is_some()
                || self.shared.stopping()
                || self.clock.time_up(&self.shared);
            let kind = if msgs.iter().all(|(_, m)| matches!(m, ToHub::Round(_))) {
                Kind::Round
            } else if msgs.iter().all(|(_, m)| matches!(m, ToHub::Grads { .. })) {
                Kind::Grads
            } else {
                Kind::Other
            };
            let snaps: Vec<&Snapshot> = msgs
                .iter()
                .filter_map(|(_, m)| match m {
                    ToHub::Round(s) => Some(s),
                    _ => None,
                })
                .collect();
            // Across processes every rank takes the branch all agreed on, so all make the same
            // collective calls: one rank's signal, failure or clock stops them all here. The
            // agreement also brings rank 0 the other ranks' step losses (even of a round that
            // stops the run), for its training-loss figures.
            let local_steps = self.total_steps();
            let (kind, early, total, agreed) = match &mut self.peers {
                None => (kind, early, local_steps, None),
                Some(p) => {
                    let header = Header {
                        kind,
                        stop: early,
                        local_steps,
                        snapshots: &snaps,
                    };
                    let a = agree(p.as_mut(), &header, self.table.len());
                    if p.layout().is_root() {
                        self.send_remote_losses(a.losses);
                    }
                    (a.kind, a.stop, a.total_steps, Some(a.stats))
                }
            };
            drop(snaps);
            match kind {
                Kind::Round if !early => {
                    let snaps: Vec<Snapshot> = msgs
                        .into_iter()
                        .map(|(_, m)| match m {
                            ToHub::Round(s) => s,
                            _ => unreachable!("all rounds"),
                        })
                        .collect();
                    let gather_ms = g
                        .first_at
                        .map_or(0.0, |f| gathered_at.duration_since(f).as_secs_f64() * 1e3);
                    self.lockstep_round(state, snaps, gather_ms, total, agreed, nccl)?;
                }
                Kind::Grads if !early => self.all_reduce(msgs, nccl)?,
                // Stopping early (a failure, a signal, the clock), or workers out of step because
                // some saw the stop flag first: everybody stops where they are.
                _ => self.reply_stop(msgs),
            }
        }
    }

    /// One synchronous (or permits) round: target, replies, metrics, evaluation when due. `total`
    /// is the run's local steps (every rank's), `agreed` every worker's statistics across ranks.
    fn lockstep_round(
        &mut self,
        state: &mut RunState,
        snaps: Vec<Snapshot>,
        gather_ms: f64,
        total: u64,
        agreed: Option<Vec<WorkerStats>>,
        nccl: Option<&dyn Reducer>,
    ) -> Result<()> {
        // Across processes the clock was read once, by every rank, in the agreement: reading it
        // again here could end the run on one rank and not another.
        let stop = match self.peers {
            None => self.clock.round_ends_run(&snaps, total, &self.shared),
            Some(_) => self.clock.budget_ends_run(&snaps, total),
        };
        let refs: Vec<&Snapshot> = snaps.iter().collect();
        let t0 = Instant::now();
        let result = self.decide(&refs, None, agreed, nccl)?;
        let compute_ms = t0.elapsed().as_secs_f64() * 1e3;
        if self.clock.schedule == ScheduleKind::Permits && !stop {
            let n = self.clock.permits_for_next_round(total);
            self.shared.open_permits(n);
        }
        self.rounds += 1;
        let mut event = self.round_event(total, &result, snaps.len(), [gather_ms, compute_ms, 0.0]);
        // A checkpoint round writes its round line and evaluation, then the checkpoint, all before
        // the replies: nothing of the next round can precede the checkpoint, and a resumed run
        // has nothing of this round to redo.
        let checkpointing = self.checkpoints.ready(&state.failed);
        if checkpointing {
            let _ = self.events.send(Event::Round(event.clone()));
            if !stop {
                self.evaluate_if_due(&refs, result.target.as_ref(), total)?;
            }
            if let Some(ckpt) = self.checkpoint(state, result.target.as_ref(), false, total)? {
                let _ = self.events.send(Event::Checkpoint(Box::new(ckpt)));
            }
            self.checkpoints.taken();
        }
        if let Some(point) = result.target.as_ref().and_then(Target::anchor) {
            self.anchor = point.clone();
        }
        let checkpoint_next = !stop && self.checkpoints.due(self.rounds);
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
                self.evaluate_if_due(&refs, result.target.as_ref(), total)?;
            }
        }
        Ok(())
    }

    /// Averages the gradients (an all-reduce over the gathered buffers, and across ranks) and
    /// sends the mean back.
    fn all_reduce(&mut self, msgs: Vec<(usize, ToHub)>, nccl: Option<&dyn Reducer>) -> Result<()> {
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
        let len = grads.first().map_or(0, |x| x.len());
        let (mean, stop) = match &mut self.peers {
            None => {
                // Where the round runs: a GPU run's gradients never leave the GPUs.
                let xs: Vec<&Flat> = grads.iter().collect();
                let stop = self.clock.all_reduce_ends_run(step, &self.shared);
                if let Some(c) = &self.evaluation.clock {
                    c.call_meeting(step); // --eval-every on the clock: meet after this step
                }
                let mean = match nccl {
                    Some(r) => r.mean(&workers, &xs)?,
                    None => Gathered::new(
                        workers.clone(),
                        Vec::new(),
                        xs,
                        &self.table,
                        self.place.clone(),
                    )
                    .all_reduce_mean()?,
                };
                (mean, stop)
            }
            Some(p) => {
                // Across ranks the all-reduce takes host buffers: a GPU rank's are staged.
                let staged: Vec<Flat> = grads
                    .iter()
                    .map(|g| Ok(Flat::Host(g.to_vec()?)))
                    .collect::<Result<_>>()?;
                let local =
                    Gathered::buffers(workers.clone(), staged.iter().collect(), &self.table);
                let mut net = RankCollective::new(local, p.as_mut(), Vec::new(), len);
                let stop = self.clock.max_steps.is_some_and(|m| step >= m);
                (net.all_reduce_mean()?, stop)
            }
        };
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

    fn run_async(&mut self, state: &mut RunState, nccl: Option<&dyn Reducer>) -> Result<()> {
        // The newest snapshot of each worker; a worker that has not reported takes no part.
        let mut newest: Vec<Option<Snapshot>> = (0..self.workers()).map(|_| None).collect();
        let mut stop_sent = false;
        while (0..self.workers()).any(|w| state.running(w)) {
            let msg = self
                .watchdog
                .receive(&self.inbox, &self.shared, |w| state.running(w))?;
            match msg {
                ToHub::Failed { worker, error } => {
                    self.shared.acked[worker].store(u64::MAX, Ordering::SeqCst);
                    self.fail(state, worker, error)
                }
                ToHub::Final(s) => {
                    let w = s.worker;
                    self.shared.acked[w].store(u64::MAX, Ordering::SeqCst);
                    state.finals[w] = Some(s);
                }
                ToHub::State { worker, save } => self.checkpoints.store(worker, save),
                ToHub::Grads { worker, .. } => {
                    return Err(Error::Internal(format!(
                        "worker {worker} all-reduced in an async run"
                    )));
                }
                ToHub::Round(s) => {
                    let w = s.worker;
                    self.shared.acked[w].store(s.step, Ordering::SeqCst);
                    newest[w] = Some(s);
                    self.async_round(state, &newest, w, nccl)?;
                }
            }
            // A worker waiting for a fresher center must hear about a stop too.
            if self.shared.stopping() && !stop_sent {
                stop_sent = true;
                self.reply_running(
                    state,
                    Reply::Round {
                        target: None,
                        sources: Arc::new(Vec::new()),
                        stop: true,
                        checkpoint_next: false,
                    },
                );
            }
        }
        Ok(())
    }

    /// The round `arriving`'s new snapshot triggers: decided over every worker that has reported,
    /// sent to every running worker (each applies what is meant for it).
    fn async_round(
        &mut self,
        state: &RunState,
        newest: &[Option<Snapshot>],
        arriving: usize,
        nccl: Option<&dyn Reducer>,
    ) -> Result<()> {
        let at = Instant::now();
        let refs: Vec<&Snapshot> = newest.iter().flatten().collect();
        let result = self.decide(&refs, newest[arriving].as_ref(), None, nccl)?;
        let compute_ms = at.elapsed().as_secs_f64() * 1e3;
        // Per worker, the step of the snapshot the target was built from (0: none).
        let sources = newest.iter().map(|s| s.as_ref().map_or(0, |s| s.step));
        let t1 = Instant::now();
        self.reply_running(
            state,
            Reply::Round {
                target: result.target.clone(),
                sources: Arc::new(sources.collect()),
                stop: false,
                checkpoint_next: false,
            },
        );
        let scatter_ms = t1.elapsed().as_secs_f64() * 1e3;
        self.rounds += 1;
        let total = self.total_steps();
        let event = self.round_event(total, &result, 1, [0.0, compute_ms, scatter_ms]);
        let _ = self.events.send(Event::Round(event));
        self.evaluate_if_due(&refs, result.target.as_ref(), total)
    }

    /// Sends `reply` to every worker still running.
    fn reply_running(&self, state: &RunState, reply: Reply) {
        for (r, tx) in self.replies.iter().enumerate() {
            if state.running(r) {
                let _ = tx.send(reply.clone());
            }
        }
    }

    /// A checkpoint from the workers' saved states (see `CheckpointAssembly::assemble`).
    /// `total` is the run's local steps (every rank's). Across processes every rank's saved
    /// workers are gathered, and rank 0 alone gets the checkpoint (to write).
    fn checkpoint(
        &mut self,
        state: &RunState,
        pending: Option<&Target>,
        finished: bool,
        total: u64,
    ) -> Result<Option<Checkpoint>> {
        let Some(saves) = self.checkpoints.take_saves(&state.failed) else {
            return Ok(None);
        };
        let saves = match &mut self.peers {
            None => saves,
            Some(p) => match gather_saves(p.as_mut(), saves) {
                Some(s) => s,
                None => return Ok(None),
            },
        };
        let at = Position {
            rounds: self.rounds,
            total_steps: total,
            seconds: self.shared.seconds(),
            next_eval: self.evaluation.next,
            next_eval_seconds: self.evaluation.clock.as_ref().map(|c| c.next_due()),
        };
        let algo = AlgoParts {
            policy: self.policy.state(),
            data: self.data.state()?,
        };
        // A checkpoint is host data: a GPU round's anchor or pending center is copied here.
        let (anchor, pending_pull) = match pending {
            Some(Target::Pull { point, lambda }) => (point.to_vec()?, Some(*lambda)),
            _ => (self.anchor.to_vec()?, None),
        };
        Ok(Some(self.checkpoints.build(
            saves,
            at,
            algo,
            anchor,
            pending_pull,
            finished,
        )))
    }

    fn round_event(&self, total: u64, r: &Decided, snapshots: usize, ms: [f64; 3]) -> RoundEvent {
        let is_async = self.clock.schedule == ScheduleKind::Async;
        let staleness = if is_async { self.shared.staleness() } else { 0 };
        let p = self.anchor.len() as u64 * 4;
        let bytes = snapshots as u64 * p
            + if r.target.is_some() {
                self.workers() as u64 * p
            } else {
                0
            };
        RoundEvent {
            round: self.rounds,
            seconds: self.shared.seconds(),
            total_steps: total,
            weights: r
                .plan
                .weights(r.participants.len())
                .map(|w| flat_weights(&w, &r.participants, self.global_workers())),
            norms: r.plan.norms.clone(),
            participants: is_async.then(|| r.participants.clone()),
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
        &mut self,
        snaps: &[&Snapshot],
        target: Option<&Target>,
        total: u64,
    ) -> Result<()> {
        if self.evaluation.due(total) {
            if let Some(ev) = self.evaluate(snaps, target, total)? {
                let _ = self.events.send(Event::Eval(ev));
            }
        }
        Ok(())
    }

    /// Scores the evaluated point after `target`. Across processes the workers' mean is an
    /// all-reduce every rank takes part in, and rank 0 alone scores it (`None` elsewhere).
    fn evaluate(
        &mut self,
        snaps: &[&Snapshot],
        target: Option<&Target>,
        total: u64,
    ) -> Result<Option<EvalEvent>> {
        let seconds = self.shared.seconds();
        let Some(peers) = &mut self.peers else {
            return self
                .evaluation
                .evaluate(&self.data, snaps, target, total, seconds, &self.place)
                .map(Some);
        };
        let root = peers.layout().is_root();
        let point = match self.data.evaluation_point() {
            // EASGD's center: every rank holds the same one.
            Some(c) => c.to_vec()?,
            None => {
                let staged: Vec<Flat> = snaps
                    .iter()
                    .map(|s| Ok(Flat::Host(s.params.to_vec()?)))
                    .collect::<Result<_>>()?;
                let workers = snaps.iter().map(|s| s.worker).collect();
                let local = Gathered::buffers(workers, staged.iter().collect(), &self.table);
                let len = self.anchor.len();
                let mut mean = RankCollective::new(local, peers.as_mut(), Vec::new(), len)
                    .all_reduce_mean()?
                    .into_vec()?;
                if let Some(t) = target {
                    t.apply_host(None, &mut mean)?;
                }
                mean
            }
        };
        if !root {
            return Ok(None);
        }
        self.evaluation
            .score(
                &Flat::Host(point),
                &self.data,
                snaps,
                target,
                total,
                seconds,
            )
            .map(Some)
    }
}

/// `--round nccl`'s communicators over the GPUs `gpus` (one per worker).
#[cfg(feature = "nccl")]
fn nccl_reducer(gpus: &[usize], table: &[LayerEntry]) -> Result<Box<dyn Reducer>> {
    Ok(Box::new(crate::cuda::nccl_round::NcclReducer::new(
        gpus, table,
    )?))
}

/// Refused when the flags are read (`--round nccl` needs the `nccl` feature); a backstop.
#[cfg(not(feature = "nccl"))]
fn nccl_reducer(_gpus: &[usize], _table: &[LayerEntry]) -> Result<Box<dyn Reducer>> {
    Err(Error::usage(
        "--round nccl: this build has no NCCL; build with --features nccl",
    ))
}
