//! The agreement the pulling threads of all ranks reach before each lockstep exchange: one small
//! fixed-length vector per rank, all-gathered. From it every rank knows the same things, so it
//! takes the same branch and calls the same collectives: whether to stop now (any rank's signal,
//! failure or clock), what the exchange is (a round, a gradient all-reduce), the run's total local
//! steps, and every worker's statistics for the round's decision.

use crate::algo::{Snapshot, WorkerStats};
use crate::ranks::{Peers, RankLayout};

/// What this rank's workers sent to this exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Every running worker sent a round snapshot.
    Round,
    /// Every running worker sent a gradient.
    Grads,
    /// Workers out of step (some saw a stop first), or none left.
    Other,
}

/// This rank's contribution.
pub struct Header<'a> {
    pub kind: Kind,
    /// This rank wants the run to stop (a signal, a failed worker, its clock).
    pub stop: bool,
    /// Local steps taken by this rank's workers.
    pub local_steps: u64,
    /// This rank's round snapshots (empty unless `kind` is `Round`), by local worker.
    pub snapshots: &'a [&'a Snapshot],
}

/// What every rank agreed on.
#[derive(Clone, Debug, PartialEq)]
pub struct Agreed {
    /// Every rank sent the same kind (`Other` if they differ).
    pub kind: Kind,
    /// Some rank wants to stop.
    pub stop: bool,
    /// Local steps of the whole run.
    pub total_steps: u64,
    /// Every worker's statistics with global ids (rounds only), in global order.
    pub stats: Vec<WorkerStats>,
    /// The step losses the other ranks' round snapshots carried, by global worker (whatever the
    /// rounds' fate: a round that stops the run still reports them).
    pub losses: Vec<(usize, Vec<f32>)>,
}

fn kind_code(k: Kind) -> f64 {
    match k {
        Kind::Round => 1.0,
        Kind::Grads => 2.0,
        Kind::Other => 0.0,
    }
}

/// Per-rank vector: kind, stop, steps, then per local worker: step, loss (NaN: none), norms
/// present, `layers` norms; then the snapshots' step losses (see [`push_losses`]).
fn encode(h: &Header, layout: RankLayout, layers: usize) -> Vec<f64> {
    let per_worker = 3 + layers;
    let mut v = vec![0.0; 3 + layout.local_workers * per_worker];
    v[0] = kind_code(h.kind);
    v[1] = if h.stop { 1.0 } else { 0.0 };
    v[2] = h.local_steps as f64;
    for (i, s) in h.snapshots.iter().enumerate().take(layout.local_workers) {
        let at = 3 + i * per_worker;
        v[at] = s.step as f64;
        v[at + 1] = s.recent_loss.unwrap_or(f64::NAN);
        if let Some(n) = &s.layer_norms {
            v[at + 2] = 1.0;
            for (d, x) in v[at + 3..at + 3 + layers].iter_mut().zip(n) {
                *d = *x;
            }
        }
    }
    push_losses(&mut v, h.snapshots);
    v
}

/// Appends each snapshot's step losses to `v`: its worker (local id), a count, the values. A
/// rank's vector ends with these, after a fixed-length part.
pub fn push_losses(v: &mut Vec<f64>, snaps: &[&Snapshot]) {
    for s in snaps {
        v.push(s.worker as f64);
        v.push(s.losses.len() as f64);
        v.extend(s.losses.iter().map(|&l| f64::from(l)));
    }
}

/// The step losses the other ranks appended (with [`push_losses`]) after the first `fixed`
/// values of their vectors in `all`, by global worker.
pub fn others_losses(all: &[Vec<f64>], fixed: usize, layout: RankLayout) -> Vec<(usize, Vec<f32>)> {
    let mut out = Vec::new();
    for (r, v) in all.iter().enumerate().filter(|(r, _)| *r != layout.rank) {
        let mut at = fixed;
        while at + 1 < v.len() {
            let (local, n) = (v[at] as usize, v[at + 1] as usize);
            let values = v[at + 2..at + 2 + n].iter().map(|&l| l as f32).collect();
            out.push((r * layout.local_workers + local, values));
            at += 2 + n;
        }
    }
    out
}

/// All-gathers `h` over `peers` and decodes what every rank agreed on. Steps travel as f64:
/// exact up to 2^53.
pub fn agree(peers: &mut dyn Peers, h: &Header, layers: usize) -> Agreed {
    let layout = peers.layout();
    let all = peers.all_gather_var(&encode(h, layout, layers));
    let kinds: Vec<f64> = all.iter().map(|v| v[0]).collect();
    let kind = if kinds.iter().all(|&k| k == kinds[0]) {
        match kinds[0] as u8 {
            1 => Kind::Round,
            2 => Kind::Grads,
            _ => Kind::Other,
        }
    } else {
        Kind::Other
    };
    let stop = all.iter().any(|v| v[1] != 0.0);
    let total_steps = all.iter().map(|v| v[2] as u64).sum();
    let mut stats = Vec::new();
    if kind == Kind::Round {
        let per_worker = 3 + layers;
        for (r, v) in all.iter().enumerate() {
            for i in 0..layout.local_workers {
                let at = 3 + i * per_worker;
                stats.push(WorkerStats {
                    worker: r * layout.local_workers + i,
                    step: v[at] as u64,
                    recent_loss: Some(v[at + 1]).filter(|l| !l.is_nan()),
                    layer_norms: (v[at + 2] != 0.0).then(|| v[at + 3..at + 3 + layers].to_vec()),
                });
            }
        }
    }
    let losses = others_losses(&all, 3 + layout.local_workers * (3 + layers), layout);
    Agreed {
        kind,
        stop,
        total_steps,
        stats,
        losses,
    }
}
