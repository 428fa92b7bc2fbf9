//! The agreements of the hubs of all ranks: one small vector per rank, all-gathered. Before each
//! lockstep exchange every rank learns the same things, so it takes the same branch and calls the
//! same collectives: whether to stop now (any rank's signal, failure or clock), what the exchange
//! is (a round, a gradient all-reduce), the run's total local steps, and every worker's
//! statistics for the round's decision. At the end they agree how the run ended.

use crate::algo::WorkerStats;
use crate::comm::transport::{Agreed, Ended, Ending, Kind, Proposal};
use crate::ranks::{Peers, RankLayout};

fn kind_code(k: Kind) -> f64 {
    match k {
        Kind::Round => 1.0,
        Kind::Grads => 2.0,
        Kind::Other => 0.0,
    }
}

/// Per-rank vector: kind, stop, steps, then per local worker: step, loss (NaN: none), norms
/// present, `layers` norms; then the snapshots' step losses (see [`push_losses`]).
fn encode(p: &Proposal, layout: RankLayout, layers: usize) -> Vec<f64> {
    let per_worker = 3 + layers;
    let mut v = vec![0.0; 3 + layout.local_workers * per_worker];
    v[0] = kind_code(p.kind);
    v[1] = if p.stop { 1.0 } else { 0.0 };
    v[2] = p.local_steps as f64;
    for (i, s) in p.stats.iter().enumerate().take(layout.local_workers) {
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
    push_losses(&mut v, &p.losses);
    v
}

/// Appends each worker's step losses to `v`: the worker (local id), a count, the values. A rank's
/// vector ends with these, after a fixed-length part.
fn push_losses(v: &mut Vec<f64>, losses: &[(usize, &[f32])]) {
    for (worker, values) in losses {
        v.push(*worker as f64);
        v.push(values.len() as f64);
        v.extend(values.iter().map(|&l| f64::from(l)));
    }
}

/// The step losses the other ranks appended (with [`push_losses`]) after the first `fixed`
/// values of their vectors in `all`, by global worker; nothing unless this is the root, the one
/// rank that reports the run's losses.
fn others_losses(all: &[Vec<f64>], fixed: usize, layout: RankLayout) -> Vec<(usize, Vec<f32>)> {
    let mut out = Vec::new();
    if !layout.is_root() {
        return out;
    }
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

/// All-gathers `mine` over `peers` and decodes what every rank agreed on. Steps travel as f64:
/// exact up to 2^53.
pub fn agree(peers: &mut dyn Peers, mine: &Proposal, layers: usize) -> Agreed {
    let layout = peers.layout();
    let all = peers.all_gather_var(&encode(mine, layout, layers));
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

/// How every rank's workers ended: whether one failed or was interrupted (then all end the same
/// way, and nobody waits in a collective for a rank that has left), the run's total steps, every
/// worker's steps, and (the root) the other ranks' last step losses.
pub fn agree_end(peers: &mut dyn Peers, mine: &Ending) -> Ended {
    let mut v = vec![
        f64::from(u8::from(mine.failed)),
        f64::from(u8::from(mine.interrupted)),
        mine.total_steps as f64,
    ];
    v.extend(mine.worker_steps.iter().map(|&s| s as f64));
    let fixed = v.len();
    push_losses(&mut v, &mine.losses);
    let layout = peers.layout();
    let all = peers.all_gather_var(&v);
    Ended {
        failed_rank: all.iter().position(|v| v[0] != 0.0),
        interrupted: all.iter().any(|v| v[1] != 0.0),
        total_steps: all.iter().map(|v| v[2] as u64).sum(),
        worker_steps: all
            .iter()
            .flat_map(|v| v[3..fixed].iter().map(|&s| s as u64))
            .collect(),
        remote_losses: others_losses(&all, fixed, layout),
    }
}
