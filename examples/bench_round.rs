//! Times one fused GRAWA round (`average::center_and_pull`: per-layer weighted center of M
//! workers, then every worker pulled toward it) and compares its memory traffic with this
//! machine's copy bandwidth, measured in the same run.
//!
//!     cargo run --release --example bench_round [-- --json]
//!
//! Bytes per round are the fewest a one-pass round must move: read M workers, write M workers and
//! the center, (2M + 1) * 4 * params. Copy bandwidth is a single large `copy_from_slice`
//! (256 MiB, far past any cache), counted as bytes read + written; that is one thread, so the same
//! copy split over rayon's threads is reported beside it (par copy), the fairer ceiling for a
//! parallel round. At 0.27M parameters the whole round fits in cache, so its fractions can
//! exceed 1.

use std::process::ExitCode;
use std::time::Instant;

use grawa_train::algo::lgrawa_weights;
use grawa_train::average::center_and_pull;
use grawa_train::model::LayerEntry;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

const SIZES: [usize; 3] = [270_000, 10_000_000, 100_000_000];
const WORKERS: usize = 4;
const LAYERS: usize = 20;
const LAMBDA: f32 = 0.5;
/// Elements in the copy-bandwidth buffers: 256 MiB each.
const COPY_LEN: usize = 64 << 20;

const USAGE: &str = "usage: bench_round [--json]
  --json   one JSON line per size instead of a table
  --help   this text";

fn main() -> ExitCode {
    let mut json = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--json" => json = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("bench_round: unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }

    let (copy_gbps, par_copy_gbps) = copy_bandwidth();
    if !json {
        println!(
            "rayon threads: {}; copy bandwidth (256 MiB, read + write): copy_from_slice {copy_gbps:.2} GB/s, split over the threads {par_copy_gbps:.2} GB/s",
            rayon::current_num_threads()
        );
        println!(
            "{:>11} {:>7} {:>6} {:>5} {:>10} {:>13} {:>9} {:>16} {:>13} {:>9}",
            "params",
            "workers",
            "layers",
            "reps",
            "round ms",
            "achieved GB/s",
            "copy GB/s",
            "fraction_of_copy",
            "par copy GB/s",
            "fraction"
        );
    }
    for (k, &params) in SIZES.iter().enumerate() {
        let r = bench_size(params, k as u64);
        let fraction = r.gbps / copy_gbps;
        let par_fraction = r.gbps / par_copy_gbps;
        if json {
            let line = serde_json::json!({
                "params": params,
                "workers": WORKERS,
                "layers": LAYERS,
                "reps": r.reps,
                "round_ms": r.ms,
                "achieved_gbps": r.gbps,
                "copy_gbps": copy_gbps,
                "fraction_of_copy": fraction,
                "par_copy_gbps": par_copy_gbps,
                "fraction_of_par_copy": par_fraction,
                "threads": rayon::current_num_threads(),
            });
            println!("{line}");
        } else {
            println!(
                "{params:>11} {WORKERS:>7} {LAYERS:>6} {:>5} {:>10.3} {:>13.2} {copy_gbps:>9.2} {fraction:>16.3} {par_copy_gbps:>13.2} {par_fraction:>9.3}",
                r.reps, r.ms, r.gbps
            );
        }
    }
    ExitCode::SUCCESS
}

struct RoundTiming {
    reps: usize,
    ms: f64,
    gbps: f64,
}

/// Median time of `center_and_pull` on `WORKERS` random buffers of `params` elements.
fn bench_size(params: usize, seed: u64) -> RoundTiming {
    let mut rng = StdRng::seed_from_u64(seed);
    let table = layer_table(params, &mut rng);
    let norms: Vec<Vec<f64>> = (0..WORKERS)
        .map(|_| (0..LAYERS).map(|_| rng.random_range(0.5..2.0)).collect())
        .collect();
    let weights = lgrawa_weights(&norms, 1.0);
    let mut xs: Vec<Vec<f32>> = (0..WORKERS)
        .map(|i| random_buffer(params, seed * 100 + i as u64))
        .collect();
    let mut center = vec![0.0f32; params];
    let mut round = || {
        let mut refs: Vec<&mut [f32]> = xs.iter_mut().map(Vec::as_mut_slice).collect();
        let t = Instant::now();
        center_and_pull(&mut refs, &weights, &table, &mut center, LAMBDA);
        t.elapsed().as_secs_f64()
    };
    // Warm-up: faults in the center's pages and wakes the pool. Then about 1 s of repetitions.
    round();
    let first = round();
    let reps = ((1.0 / first).round() as usize).clamp(5, 200);
    let mut times: Vec<f64> = (0..reps).map(|_| round()).collect();
    let secs = median(&mut times);
    let bytes = ((2 * WORKERS + 1) * 4 * params) as f64;
    RoundTiming {
        reps,
        ms: secs * 1e3,
        gbps: bytes / secs / 1e9,
    }
}

/// `LAYERS` entries with random lengths (between 0.2 and 1.8 of the mean), covering `params`.
fn layer_table(params: usize, rng: &mut StdRng) -> Vec<LayerEntry> {
    let shares: Vec<f64> = (0..LAYERS).map(|_| rng.random_range(0.2..1.8)).collect();
    let total: f64 = shares.iter().sum();
    let mut offset = 0;
    let mut table = Vec::with_capacity(LAYERS);
    for (l, s) in shares.iter().enumerate() {
        let len = if l + 1 == LAYERS {
            params - offset
        } else {
            (params as f64 * s / total) as usize
        };
        table.push(LayerEntry {
            name: format!("layer{l}"),
            offset,
            len,
        });
        offset += len;
    }
    table
}

/// Uniform values in [-1, 1), filled in parallel (one seeded generator per 1 Mi block) so the
/// 100M setup takes seconds, not tens of seconds.
fn random_buffer(len: usize, seed: u64) -> Vec<f32> {
    let mut v = vec![0.0f32; len];
    v.par_chunks_mut(1 << 20).enumerate().for_each(|(k, c)| {
        let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1 << 32) + k as u64);
        c.iter_mut().for_each(|x| *x = rng.random_range(-1.0..1.0));
    });
    v
}

/// Median over 7 copies of a 256 MiB buffer, in GB/s of bytes read + written: one
/// `copy_from_slice`, and the same copy in 1 Mi-element blocks over rayon's threads.
fn copy_bandwidth() -> (f64, f64) {
    let src = random_buffer(COPY_LEN, 7);
    let mut dst = vec![0.0f32; COPY_LEN];
    dst.copy_from_slice(&src); // warm-up: faults in dst's pages
    let mut time = |copy: &dyn Fn(&mut [f32])| {
        let mut times: Vec<f64> = (0..7)
            .map(|_| {
                let t = Instant::now();
                copy(&mut dst);
                t.elapsed().as_secs_f64()
            })
            .collect();
        // Keeps the copies from being optimised away.
        assert_eq!(dst[COPY_LEN / 2], src[COPY_LEN / 2]);
        (2 * 4 * COPY_LEN) as f64 / median(&mut times) / 1e9
    };
    let single = time(&|d| d.copy_from_slice(&src));
    let parallel = time(&|d| {
        d.par_chunks_mut(1 << 20)
            .zip(src.par_chunks(1 << 20))
            .for_each(|(d, s)| d.copy_from_slice(s))
    });
    (single, parallel)
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}
