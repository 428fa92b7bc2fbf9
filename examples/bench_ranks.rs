//! The round's all-reduce across ranks against the MPI library's own ceiling, side by side in one
//! run: for each size, the median time of `RankCollective::all_reduce_sum` with LGRAWA weights
//! (each rank's 2 workers combined window by window, each window all-reduced) beside a plain
//! `MPI_Allreduce` of the same bytes, both as one call and in the round's 1 MiB windows (whichever
//! is faster is the engine's ceiling), and the bandwidth each achieves (bytes of one buffer /
//! time). Rank 0 prints.
//!
//!     cargo build --release --features mpi --example bench_ranks
//!     mpirun --oversubscribe -np 2 target/release/examples/bench_ranks

use std::time::Instant;

use grawa_train::algo::lgrawa_weights;
use grawa_train::buffer::FlatPlace;
use grawa_train::comm::ranks::{RankCollective, ALL_REDUCE_WINDOW as WINDOW};
use grawa_train::comm::{Collective, Gathered};
use grawa_train::model::LayerEntry;
use grawa_train::ranks::mpi::start;
use grawa_train::ranks::Peers;
use grawa_train::train::messages::{participants, Snapshot};

const SIZES: [usize; 3] = [270_000, 11_000_000, 100_000_000];
const LOCAL_WORKERS: usize = 2;
const LAYERS: usize = 20;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (_world, mut peers) = start(LOCAL_WORKERS).expect("MPI starts");
    let layout = peers.layout();
    if layout.is_root() {
        println!(
            "{} ranks x {LOCAL_WORKERS} workers, {LAYERS} layers; median ms and GB/s (one buffer's bytes / time)",
            layout.ranks
        );
        println!(
            "{:>11} {:>9} {:>6} {:>9} {:>6} {:>9} {:>6} {:>6}",
            "params", "round ms", "GB/s", "one ms", "GB/s", "win ms", "GB/s", "ratio"
        );
    }
    for n in SIZES {
        let reps = if n > 50_000_000 { 5 } else { 15 };
        let per = n / LAYERS;
        let table: Vec<LayerEntry> = (0..LAYERS)
            .map(|l| LayerEntry {
                name: format!("l{l:02}"),
                offset: l * per,
                len: if l + 1 == LAYERS { n - l * per } else { per },
            })
            .collect();
        let snaps: Vec<Snapshot> = (0..LOCAL_WORKERS)
            .map(|w| Snapshot {
                worker: w,
                step: 0,
                params: vec![0.5 + w as f32; n].into(),
                layer_norms: None,
                recent_loss: None,
                losses: Vec::new(),
            })
            .collect();
        let refs: Vec<&Snapshot> = snaps.iter().collect();
        let vhat = vec![vec![1.0; LAYERS]; layout.global_workers()];
        let weights = lgrawa_weights(&vhat, 1.0);
        let mut round = Vec::new();
        let mut plain = Vec::new();
        let mut windowed = Vec::new();
        let mut buf = vec![1f32; n];
        for rep in 0..reps + 1 {
            let t = Instant::now();
            let local = Gathered::from_parts(participants(&refs), &table, FlatPlace::Host);
            let sum = RankCollective::new(local, &mut peers, Vec::new(), n)
                .all_reduce_sum(Some(&weights))
                .expect("round");
            std::hint::black_box(&sum);
            let round_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            buf = peers.all_reduce_sum(buf).expect("all-reduce");
            let plain_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let mut out = vec![0f32; n];
            for (send, recv) in buf.chunks(WINDOW).zip(out.chunks_mut(WINDOW)) {
                peers.all_reduce_sum_into(send, recv).expect("all-reduce");
            }
            buf = out;
            let windowed_s = t.elapsed().as_secs_f64();
            if rep > 0 {
                round.push(round_s);
                plain.push(plain_s);
                windowed.push(windowed_s);
            }
        }
        let (r, p, w) = (median(round), median(plain), median(windowed));
        let gbps = |s: f64| n as f64 * 4.0 / s / 1e9;
        if layout.is_root() {
            println!(
                "{n:>11} {:>9.2} {:>6.2} {:>9.2} {:>6.2} {:>9.2} {:>6.2} {:>6.2}",
                r * 1e3,
                gbps(r),
                p * 1e3,
                gbps(p),
                w * 1e3,
                gbps(w),
                p.min(w) / r
            );
        }
    }
}
