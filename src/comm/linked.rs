//! [`Linked`]: any [`Transport`] over a modelled interconnect (`--link`). It wraps the transport
//! [`super::Wiring::open`] made, lets every collective call run for real, and charges it what an
//! ideal implementation needs on the link for the bytes it really moves and its participants
//! (`crate::link`'s formulas, docs/design.md section 7): a buffer's bytes are the result's length
//! times 4, the statistics' a few numbers per participant. So every transport (the hub's own
//! reductions, NCCL, ranks) feels the link from this one place.
//!
//! - Lockstep (`sync`, `permits`): each call waits (a sleep, after the real call) until its
//!   modelled time has passed since it began, so the round, and every worker waiting for it,
//!   takes at least that long.
//! - `async`: the hub is the center and holds every reported snapshot, so a round moves the
//!   arriving worker's snapshot up and the result back: one exchange, charged once for the
//!   round's buffer call; the statistics travel with the snapshot. Nothing waits here: the hub
//!   stamps the reply with the instant it reaches the worker, who keeps stepping meanwhile.
//!
//! Across processes the ranks' real transport already costs something, so the model applies to
//! the cross-rank part only: its participants are the ranks. The hub reads each exchange's
//! modelled time after it ([`LinkTally::take`]) for its events; the run's totals go to
//! `summary.json`. The evaluated point's collective is no part of the training's traffic and is
//! not charged ([`Transport::evaluation_collective`]).

use std::time::Instant;

use super::collective::{Collective, Participants};
use super::link_tally::LinkTally;
use super::transport::{Agreed, Ended, Ending, Proposal, Transport};
use crate::algo::WorkerStats;
use crate::average::Weights;
use crate::buffer::{Flat, FlatBuffer};
use crate::checkpoint::WorkerSave;
use crate::link::{hold, Collective as Op, Link};
use crate::ranks::RankLayout;
use crate::Result;

/// How a modelled link charges the exchanges of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exchanges {
    /// Lockstep schedules: the participants run each collective among themselves, and each call
    /// waits for its modelled time.
    Collective,
    /// `async`: one exchange between the arriving worker and the center per round, counted, not
    /// waited for (the reply carries it).
    Center,
}

/// Who the model counts as a collective's participants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    /// The collective's participants (one process: its workers).
    Participants,
    /// Across processes: the ranks (the model covers the cross-rank part only).
    Ranks(usize),
}

/// A run's modelled link: the link, how exchanges are charged, and what a resumed run had
/// already spent (seconds, bytes).
#[derive(Clone, Debug, PartialEq)]
pub struct LinkModel {
    pub link: Link,
    pub exchanges: Exchanges,
    pub before: (f64, u64),
}

/// A transport over a modelled link.
pub struct Linked {
    inner: Box<dyn Transport>,
    link: Link,
    exchanges: Exchanges,
    counted: Counted,
    tally: LinkTally,
}

impl Linked {
    /// `inner` over `model`'s link, counting participants as `counted`.
    pub fn new(inner: Box<dyn Transport>, model: LinkModel, counted: Counted) -> Self {
        Self {
            inner,
            link: model.link,
            exchanges: model.exchanges,
            counted,
            tally: LinkTally::resumed(model.before),
        }
    }
}

impl Transport for Linked {
    fn layout(&self) -> RankLayout {
        self.inner.layout()
    }

    fn collective<'a>(&'a mut self, parts: Participants<'a>) -> Result<Box<dyn Collective + 'a>> {
        let Self {
            inner,
            link,
            exchanges,
            counted,
            tally,
        } = self;
        Ok(Box::new(LinkedCollective {
            inner: inner.collective(parts)?,
            link,
            exchanges: *exchanges,
            counted: *counted,
            tally,
        }))
    }

    fn evaluation_collective<'a>(
        &'a mut self,
        parts: Participants<'a>,
    ) -> Result<Box<dyn Collective + 'a>> {
        self.inner.evaluation_collective(parts)
    }

    fn link(&mut self) -> Option<&mut LinkTally> {
        Some(&mut self.tally)
    }

    fn agree(&mut self, mine: Proposal<'_>) -> Result<Agreed> {
        self.inner.agree(mine)
    }

    fn gather_saves(&mut self, saves: Vec<WorkerSave>) -> Option<Vec<WorkerSave>> {
        self.inner.gather_saves(saves)
    }

    fn agree_end(&mut self, mine: Ending<'_>) -> Result<Ended> {
        self.inner.agree_end(mine)
    }
}

/// The bytes of the statistics an all-gather moves: per participant its step, its layer norms
/// and its recent loss, 8 bytes each.
pub fn stats_bytes(stats: &[WorkerStats]) -> u64 {
    let numbers: usize = stats
        .iter()
        .map(|s| {
            1 + s.layer_norms.as_ref().map_or(0, Vec::len) + usize::from(s.recent_loss.is_some())
        })
        .sum();
    numbers as u64 * 8
}

/// The primitives of a collective as a modelled link charges them.
#[derive(Clone, Copy)]
enum Primitive {
    AllGather,
    AllReduce,
    Broadcast,
}

/// A collective whose every call is charged on the link.
struct LinkedCollective<'a> {
    inner: Box<dyn Collective + 'a>,
    link: &'a Link,
    exchanges: Exchanges,
    counted: Counted,
    tally: &'a mut LinkTally,
}

impl LinkedCollective<'_> {
    /// Charges `primitive` of `bytes` that began at `started`: its modelled time is added to the
    /// exchange's, and a lockstep call waits until it has passed.
    fn charge(&mut self, primitive: Primitive, bytes: u64, started: Instant) {
        let participants = match self.counted {
            Counted::Participants => self.inner.participants().len(),
            Counted::Ranks(r) => r,
        };
        let op = match (self.exchanges, primitive) {
            (Exchanges::Center, Primitive::AllGather) => return,
            (Exchanges::Center, _) => Op::Exchange { bytes },
            (Exchanges::Collective, Primitive::AllGather) => Op::AllGather {
                total_bytes: bytes,
                participants,
            },
            (Exchanges::Collective, Primitive::AllReduce) => Op::AllReduce {
                bytes,
                participants,
            },
            (Exchanges::Collective, Primitive::Broadcast) => Op::Broadcast {
                bytes,
                participants,
            },
        };
        let modelled = self.link.time(op);
        self.tally.add(modelled, op.bytes());
        if self.exchanges == Exchanges::Collective {
            hold(started, modelled);
        }
    }

    /// Charges a call that returned buffer `out`.
    fn charged(&mut self, primitive: Primitive, out: Flat, started: Instant) -> Flat {
        self.charge(primitive, out.len() as u64 * 4, started);
        out
    }
}

impl Collective for LinkedCollective<'_> {
    fn participants(&self) -> &[usize] {
        self.inner.participants()
    }

    fn all_gather(&mut self) -> Result<Vec<WorkerStats>> {
        let started = Instant::now();
        let stats = self.inner.all_gather()?;
        self.charge(Primitive::AllGather, stats_bytes(&stats), started);
        Ok(stats)
    }

    fn all_reduce_sum(&mut self, scale: Option<&Weights>) -> Result<Flat> {
        let started = Instant::now();
        let out = self.inner.all_reduce_sum(scale)?;
        Ok(self.charged(Primitive::AllReduce, out, started))
    }

    fn all_reduce_mean(&mut self) -> Result<Flat> {
        let started = Instant::now();
        let out = self.inner.all_reduce_mean()?;
        Ok(self.charged(Primitive::AllReduce, out, started))
    }

    fn broadcast(&mut self, worker: usize) -> Result<Flat> {
        let started = Instant::now();
        let out = self.inner.broadcast(worker)?;
        Ok(self.charged(Primitive::Broadcast, out, started))
    }
}
