//! The cost of the round's seam: a round carried out through `round::RoundData` over the
//! in-process collective (`comm::Gathered`), against the direct call into `average::reduce` it
//! replaced, side by side in one run. Medians of 15 repetitions after 2 warm-ups, 4 workers.
//!
//!     cargo run --release --example bench_seam
//!
//! - weighted: LGRAWA's center (`Mix::Weighted` -> all-reduce-sum with the weights) against
//!   `weighted_center`;
//! - mean: local SGD's center (`Mix::Mean` -> all-reduce-sum with unit weights, then divide)
//!   against `uniform_average`, the function the old round called.

use std::time::Instant;

use grawa_train::algo::lgrawa_weights;
use grawa_train::algo::{Mix, Plan};
use grawa_train::average::{uniform_average, weighted_center};
use grawa_train::buffer::FlatPlace;
use grawa_train::comm::Gathered;
use grawa_train::model::LayerEntry;
use grawa_train::round::RoundData;
use grawa_train::train::messages::{participants, Snapshot};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SIZES: [usize; 2] = [270_000, 11_000_000];
const WORKERS: usize = 4;
const LAYERS: usize = 20;
const REPS: usize = 15;

fn median_ms(mut f: impl FnMut()) -> f64 {
    for _ in 0..2 {
        f();
    }
    let mut t: Vec<f64> = (0..REPS)
        .map(|_| {
            let at = Instant::now();
            f();
            at.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[REPS / 2]
}

fn main() {
    let mut rng = StdRng::seed_from_u64(1);
    println!(
        "rayon threads: {}; {WORKERS} workers, {LAYERS} layers, median of {REPS}",
        rayon::current_num_threads()
    );
    println!(
        "{:>11} {:>9} {:>11} {:>11} {:>7}",
        "params", "round", "direct ms", "seam ms", "ratio"
    );
    for n in SIZES {
        let per = n / LAYERS;
        let table: Vec<LayerEntry> = (0..LAYERS)
            .map(|l| LayerEntry {
                name: format!("l{l:02}"),
                offset: l * per,
                len: if l + 1 == LAYERS { n - l * per } else { per },
            })
            .collect();
        let snaps: Vec<Snapshot> = (0..WORKERS)
            .map(|w| Snapshot {
                worker: w,
                step: 32,
                params: (0..n).map(|_| rng.random::<f32>()).collect(),
                layer_norms: None,
                recent_loss: None,
                losses: Vec::new(),
            })
            .collect();
        let refs: Vec<&Snapshot> = snaps.iter().collect();
        let xs: Vec<&[f32]> = snaps
            .iter()
            .map(|s| s.params.as_host().expect("host"))
            .collect();
        let vhat: Vec<Vec<f64>> = (0..WORKERS)
            .map(|_| (0..LAYERS).map(|_| rng.random::<f64>() + 0.5).collect())
            .collect();
        let weights = lgrawa_weights(&vhat, 1.0);
        let mut data = RoundData::new(false, &[]);
        let cases = [
            ("weighted", Mix::Weighted(weights.clone())),
            ("mean", Mix::Mean),
        ];
        for (name, mix) in cases {
            let direct = median_ms(|| {
                let mut out = vec![0f32; n];
                match name {
                    "weighted" => weighted_center(&xs, &weights, &table, &mut out),
                    _ => uniform_average(&xs, &mut out),
                }
                std::hint::black_box(&out);
            });
            let plan = Plan {
                mix: Some(mix),
                lambda: 0.5,
                norms: None,
            };
            let seam = median_ms(|| {
                let mut net = Gathered::from_parts(participants(&refs), &table, FlatPlace::Host);
                let t = data.lockstep(&plan, &mut net).expect("round");
                std::hint::black_box(&t);
            });
            println!(
                "{n:>11} {name:>9} {direct:>11.3} {seam:>11.3} {:>7.2}",
                seam / direct
            );
        }
    }
}
