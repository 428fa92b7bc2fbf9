//! Times a whole GRAWA round on the GPUs, as the trainer runs it: LGRAWA's weighted center of the
//! workers' snapshots (`RoundData::lockstep` over `Flat::Device` buffers), then every worker
//! pulled toward it on its own GPU. Beside it, in the same run, a plain device-to-device copy of
//! the same snapshots to the round's GPU, the floor for moving those bytes. With `--features
//! nccl` the same round over `--round nccl`'s reducer (one communicator per GPU) is timed too.
//!
//!     cargo run --release --features cuda --example bench_gpu_round
//!
//! Workers go round-robin over every GPU the driver sees (4 workers). Bytes of a round: the
//! center reads M snapshots and writes one buffer, each worker's pull reads the center and
//! reads and writes its parameters: (M + 1 + 3M) * 4 * params; GB/s is that over the median time.
//! The copy's bytes are M * 4 * params read and written.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use grawa_train::algo::lgrawa_weights;
use grawa_train::algo::{Mix, Plan};
use grawa_train::buffer::{CudaBuffer, CudaPlace, Flat, FlatPlace, RoundBuffer};
use grawa_train::comm::{Collective, Gathered};
use grawa_train::model::LayerEntry;
use grawa_train::round::RoundData;

const SIZES: [usize; 2] = [11_000_000, 100_000_000];
const WORKERS: usize = 4;
const LAYERS: usize = 20;
const REPEATS: usize = 10;

fn table(n: usize) -> Vec<LayerEntry> {
    let per = n / LAYERS;
    (0..LAYERS)
        .map(|l| LayerEntry {
            name: format!("layer{l:02}"),
            offset: l * per,
            len: if l == LAYERS - 1 { n - l * per } else { per },
        })
        .collect()
}

/// Waits until every place's GPU has finished its work.
fn sync(places: &[Arc<CudaPlace>]) {
    for p in places {
        p.stream().context().synchronize().expect("GPU synchronize");
    }
}

fn median_ms(mut f: impl FnMut(), places: &[Arc<CudaPlace>]) -> f64 {
    for _ in 0..2 {
        f();
    }
    sync(places);
    let mut t: Vec<f64> = (0..REPEATS)
        .map(|_| {
            let t0 = Instant::now();
            f();
            sync(places);
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[REPEATS / 2]
}

fn main() -> ExitCode {
    grawa_train::cuda::loading::eager_for_nccl();
    let gpus = match grawa_train::gpus::gpu_count() {
        Ok(0) => {
            eprintln!("bench_gpu_round: the CUDA driver sees no GPU");
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("bench_gpu_round: {e}");
            return ExitCode::from(1);
        }
        Ok(n) => n,
    };
    let placement: Vec<usize> = (0..WORKERS).map(|w| w % gpus).collect();
    println!(
        "GPUs: {gpus}; workers on GPUs {placement:?}; the round on GPU 0; median of {REPEATS}"
    );
    println!(
        "{:>11} {:>10} {:>9} {:>10} {:>9} {:>10} {:>12}",
        "params", "transport", "round ms", "GB/s", "copy ms", "copy GB/s", "round/copy"
    );
    for n in SIZES {
        let t = table(n);
        let hub = CudaPlace::new(0, &t, n).expect("the round's place");
        let places: Vec<Arc<CudaPlace>> = placement
            .iter()
            .map(|&g| CudaPlace::new(g, &t, n).expect("a worker's place"))
            .collect();
        let mut all = places.clone();
        all.push(hub.clone());
        let x: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 1e-3).collect();
        let snaps: Vec<Flat> = places
            .iter()
            .map(|p| Flat::Device(CudaBuffer::from_host(p, &x).expect("upload")))
            .collect();
        let mut workers: Vec<Flat> = snaps.iter().map(|s| s.duplicate().unwrap()).collect();
        let vhat = vec![vec![1.0; LAYERS]; WORKERS];
        let plan = Plan {
            mix: Some(Mix::Weighted(lgrawa_weights(&vhat, 1.0))),
            lambda: 0.5,
            norms: None,
        };
        let at = FlatPlace::Device(hub.clone());
        let copy_ms = median_ms(
            || {
                for s in &snaps {
                    drop(s.copy_to(&at).expect("copy"));
                }
            },
            &all,
        );
        let copy_gbps = (WORKERS * n * 4 * 2) as f64 / copy_ms / 1e6;
        let report = |name: &str, ms: f64| {
            let bytes = ((WORKERS + 1 + 3 * WORKERS) * n * 4) as f64;
            println!(
                "{n:>11} {name:>10} {ms:>9.2} {:>10.1} {copy_ms:>9.2} {copy_gbps:>10.1} {:>12.2}",
                bytes / ms / 1e6,
                ms / copy_ms
            );
        };
        let mut data = RoundData::new(false, &[]);
        let mut round = |net: &mut dyn Collective, workers: &mut [Flat]| {
            let target = data.lockstep(&plan, net).expect("round").expect("a target");
            for (w, x) in workers.iter_mut().enumerate() {
                target.apply(Some(w), x).expect("pull");
            }
        };
        let ms = median_ms(
            || {
                let mut net = Gathered::new(
                    (0..WORKERS).collect(),
                    Vec::new(),
                    snaps.iter().collect(),
                    &t,
                    at.clone(),
                );
                round(&mut net, &mut workers);
            },
            &all,
        );
        report("hub", ms);
        #[cfg(feature = "nccl")]
        {
            use grawa_train::comm::nccl::reducer::NcclReducer;
            use grawa_train::comm::nccl::Reduced;
            let reducer = NcclReducer::new(&placement, &t).expect("NCCL communicators");
            let ms = median_ms(
                || {
                    let mut net = Reduced::new(
                        (0..WORKERS).collect(),
                        Vec::new(),
                        snaps.iter().collect(),
                        &reducer,
                        at.clone(),
                    );
                    round(&mut net, &mut workers);
                },
                &all,
            );
            report("nccl", ms);
        }
    }
    ExitCode::SUCCESS
}
