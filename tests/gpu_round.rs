//! The round on the GPUs (feature `cuda`), against the host round, the reference: snapshots on
//! the workers' GPUs, combined on the pulling thread's GPU by our kernels (peer copies from the
//! other GPUs, fenced), targets applied on the workers' GPUs; and with `nccl`, `--round nccl`'s
//! grouped NCCL all-reduce. Every kind of plan, lockstep and async. With two or more GPUs the
//! workers alternate between GPUs 0 and 1, so peer copies and mirrors are exercised.
//!
//! Skipped, with the reason printed, where the driver sees no GPU. `scripts/gpu-check.sh` carries
//! the test binary to a GPU machine and runs it there.
#![cfg(feature = "cuda")]

mod run_support;

use std::sync::Arc;

use grawa_train::algo::{Mix, Plan, Target};
use grawa_train::average::{lgrawa_weights, mgrawa_weights};
use grawa_train::buffer::{host_transfers, CudaBuffer, CudaPlace, Flat, FlatPlace};
use grawa_train::model::LayerEntry;
use grawa_train::round::{Collective, Gathered, RoundData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use run_support::table_of;

/// GPUs the driver sees, or `None` (and why) when there are none.
fn gpus() -> Option<usize> {
    match grawa_train::selftest::gpu_count() {
        Ok(0) => eprintln!("skipped: the CUDA driver sees no GPU"),
        Err(reason) => eprintln!("skipped: {reason}"),
        Ok(n) => return Some(n),
    }
    None
}

struct Case {
    table: Vec<LayerEntry>,
    workers: Vec<usize>,
    xs: Vec<Vec<f32>>,
    x0: Vec<f32>,
    n: usize,
}

fn case() -> Case {
    let mut rng = StdRng::seed_from_u64(5);
    let lens = [7usize, 0, 70_000, 1, 300_000];
    let n: usize = lens.iter().sum();
    let mut buf = || {
        (0..n)
            .map(|_| rng.random::<f32>() * 2.0 - 1.0)
            .collect::<Vec<f32>>()
    };
    Case {
        table: table_of(&lens),
        workers: vec![0, 1, 2, 3],
        xs: (0..4).map(|_| buf()).collect(),
        x0: buf(),
        n,
    }
}

fn mixes(layers: usize) -> Vec<Mix> {
    let vhat: Vec<Vec<f64>> = (0..4)
        .map(|i| {
            (0..layers)
                .map(|l| 0.5 + (i * layers + l) as f64 * 0.1)
                .collect()
        })
        .collect();
    vec![
        Mix::Weighted(mgrawa_weights(&[0.4, 1.3, 0.8, 2.0], 1.0)),
        Mix::Weighted(lgrawa_weights(&vhat, 2.0)),
        Mix::Mean,
        Mix::Leader(2),
        Mix::Elastic { beta: 0.1 },
    ]
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let worst = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs() / (1.0 + w.abs()))
        .fold(0f32, f32::max);
    // Sums of 4 terms of order 1 in another order (FMA on the GPU): a few ulps.
    assert!(worst <= 1e-6, "{what}: worst relative difference {worst:e}");
}

fn values(t: &Target) -> Vec<f32> {
    match t {
        Target::Pull { point, .. } => point.to_vec().unwrap(),
        Target::Exchange { diff, .. } => diff.to_vec().unwrap(),
    }
}

/// Runs two lockstep rounds and an arrival of every worker over `net_for`'s collectives, applying
/// each target to the workers' own buffers; returns the targets (read them after counting).
fn rounds<'a>(
    c: &Case,
    plan: &Plan,
    data: &mut RoundData,
    workers: &mut [Flat],
    snaps: &'a [Flat],
    mut net_for: impl FnMut(&'a [Flat]) -> Box<dyn Collective + 'a>,
) -> Vec<Target> {
    let mut targets = Vec::new();
    let apply = |t: &Target, workers: &mut [Flat]| {
        for (w, x) in c.workers.iter().zip(workers.iter_mut()) {
            t.apply(Some(*w), x).unwrap();
        }
    };
    for _ in 0..2 {
        let t = data
            .lockstep(plan, net_for(snaps).as_mut())
            .unwrap()
            .unwrap();
        apply(&t, workers);
        targets.push(t);
    }
    for &w in &c.workers {
        let t = data
            .arrival(plan, net_for(snaps).as_mut(), w)
            .unwrap()
            .unwrap();
        apply(&t, workers);
        targets.push(t);
    }
    targets
}

/// The targets' values and the workers' parameters, on the host.
fn read(targets: &[Target], workers: &[Flat]) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    (
        targets.iter().map(values).collect(),
        workers.iter().map(|x| x.to_vec().unwrap()).collect(),
    )
}

#[test]
fn the_round_on_the_gpus_is_the_host_round() {
    let Some(count) = gpus() else { return };
    let c = case();
    // Workers alternate over the first two GPUs; the round runs on GPU 0 on its own stream.
    let placement: Vec<usize> = (0..4).map(|w| w % count.min(2)).collect();
    let hub = CudaPlace::new(0, &c.table, c.n).unwrap();
    let places: Vec<Arc<CudaPlace>> = placement
        .iter()
        .map(|&g| CudaPlace::new(g, &c.table, c.n).unwrap())
        .collect();
    let on_gpus = |xs: &[Vec<f32>]| -> Vec<Flat> {
        xs.iter()
            .zip(&places)
            .map(|(x, p)| Flat::Device(CudaBuffer::from_host(p, x).unwrap()))
            .collect()
    };
    for mix in mixes(c.table.len()) {
        let elastic = matches!(mix, Mix::Elastic { .. });
        let plan = Plan {
            mix: Some(mix.clone()),
            lambda: 0.3,
            norms: None,
        };
        let host_snaps: Vec<Flat> = c.xs.iter().cloned().map(Flat::Host).collect();
        let mut host_workers: Vec<Flat> = c.xs.iter().cloned().map(Flat::Host).collect();
        let mut host_data = RoundData::new(elastic, &c.x0);
        let want_targets = rounds(
            &c,
            &plan,
            &mut host_data,
            &mut host_workers,
            &host_snaps,
            |s| {
                Box::new(Gathered::new(
                    c.workers.clone(),
                    Vec::new(),
                    s.iter().collect(),
                    &c.table,
                    FlatPlace::Host,
                ))
            },
        );

        let dev_snaps = on_gpus(&c.xs);
        let mut dev_workers = on_gpus(&c.xs);
        let mut dev_data = RoundData::new(elastic, &c.x0);
        dev_data.move_to(&FlatPlace::Device(hub.clone())).unwrap();
        // The rounds and the pulls themselves: no buffer goes to or from the host. (The checks
        // below download the results, after this count.)
        let before = host_transfers();
        let got_targets = rounds(
            &c,
            &plan,
            &mut dev_data,
            &mut dev_workers,
            &dev_snaps,
            |s| {
                Box::new(Gathered::new(
                    c.workers.clone(),
                    Vec::new(),
                    s.iter().collect(),
                    &c.table,
                    FlatPlace::Device(hub.clone()),
                ))
            },
        );
        assert_eq!(
            host_transfers(),
            before,
            "{mix:?}: the rounds on the GPUs copied buffers to or from the host"
        );
        let (want, want_workers) = read(&want_targets, &host_workers);
        let (got, got_workers) = read(&got_targets, &dev_workers);
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_close(g, w, &format!("{mix:?}: target {k}"));
        }
        for (k, (g, w)) in got_workers.iter().zip(&want_workers).enumerate() {
            assert_close(g, w, &format!("{mix:?}: worker {k} after the rounds"));
        }
    }
}

/// `--round nccl`: one communicator per GPU, each GPU's workers combined there first, then the
/// grouped all-reduce; the result is on every GPU (mirrors) and equals the hub's round.
#[cfg(feature = "nccl")]
#[test]
fn the_nccl_round_is_the_hub_round() {
    use grawa_train::cuda::nccl_round::NcclReducer;
    use grawa_train::round::Reduced;

    let Some(count) = gpus() else { return };
    let c = case();
    let placement: Vec<usize> = (0..4).map(|w| w % count.min(2)).collect();
    let places: Vec<Arc<CudaPlace>> = placement
        .iter()
        .map(|&g| CudaPlace::new(g, &c.table, c.n).unwrap())
        .collect();
    let hub = CudaPlace::new(0, &c.table, c.n).unwrap();
    let reducer = NcclReducer::new(&placement, &c.table).expect("NCCL communicators");
    for mix in mixes(c.table.len()) {
        let elastic = matches!(mix, Mix::Elastic { .. });
        let plan = Plan {
            mix: Some(mix.clone()),
            lambda: 0.3,
            norms: None,
        };
        let host_snaps: Vec<Flat> = c.xs.iter().cloned().map(Flat::Host).collect();
        let mut host_workers: Vec<Flat> = c.xs.iter().cloned().map(Flat::Host).collect();
        let mut host_data = RoundData::new(elastic, &c.x0);
        let want_targets = rounds(
            &c,
            &plan,
            &mut host_data,
            &mut host_workers,
            &host_snaps,
            |s| {
                Box::new(Gathered::new(
                    c.workers.clone(),
                    Vec::new(),
                    s.iter().collect(),
                    &c.table,
                    FlatPlace::Host,
                ))
            },
        );
        let on_gpus = |xs: &[Vec<f32>]| -> Vec<Flat> {
            xs.iter()
                .zip(&places)
                .map(|(x, p)| Flat::Device(CudaBuffer::from_host(p, x).unwrap()))
                .collect()
        };
        let dev_snaps = on_gpus(&c.xs);
        let mut dev_workers = on_gpus(&c.xs);
        let mut dev_data = RoundData::new(elastic, &c.x0);
        dev_data.move_to(&FlatPlace::Device(hub.clone())).unwrap();
        let before = host_transfers();
        let got_targets = rounds(
            &c,
            &plan,
            &mut dev_data,
            &mut dev_workers,
            &dev_snaps,
            |s| {
                Box::new(Reduced::new(
                    c.workers.clone(),
                    Vec::new(),
                    s.iter().collect(),
                    &reducer,
                    FlatPlace::Device(hub.clone()),
                ))
            },
        );
        assert_eq!(
            host_transfers(),
            before,
            "nccl {mix:?}: the rounds copied buffers to or from the host"
        );
        let (want, want_workers) = read(&want_targets, &host_workers);
        let (got, got_workers) = read(&got_targets, &dev_workers);
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_close(g, w, &format!("nccl {mix:?}: target {k}"));
        }
        for (k, (g, w)) in got_workers.iter().zip(&want_workers).enumerate() {
            assert_close(g, w, &format!("nccl {mix:?}: worker {k} after the rounds"));
        }
    }
}
