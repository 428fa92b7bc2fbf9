//! The round on the GPUs (feature `cuda`), against the host round, the reference: snapshots on
//! the workers' GPUs, combined on the pulling thread's GPU by our kernels (peer copies from the
//! other GPUs, fenced), targets applied on the workers' GPUs; and with `nccl`, `--round nccl`'s
//! grouped NCCL all-reduce. Every kind of plan, lockstep and async. With two or more GPUs the
//! workers alternate between GPUs 0 and 1, so peer copies and mirrors are exercised. The rounds
//! themselves must not copy a buffer to or from the host: `CudaBuffer` counts its host transfers.
//!
//! Skipped, with the reason printed, where the driver sees no GPU. `scripts/gpu-check.sh` carries
//! the test binary to a GPU machine and runs it there.
#![cfg(feature = "cuda")]

mod run_support;

use std::sync::Arc;

use grawa_train::algo::Plan;
use grawa_train::buffer::{host_transfers, CudaBuffer, CudaPlace, Flat, FlatPlace};
use grawa_train::comm::{Collective, Gathered};
use grawa_train::model::LayerEntry;
use grawa_train::round::{RoundData, Target};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use run_support::{round_mixes, table_of};

/// GPUs the driver sees, or `None` (and why) when there are none.
fn gpus() -> Option<usize> {
    match grawa_train::gpus::gpu_count() {
        Ok(0) => eprintln!("skipped: the CUDA driver sees no GPU"),
        Err(reason) => eprintln!("skipped: {reason}"),
        Ok(n) => return Some(n),
    }
    None
}

/// Four workers' parameters and the initial point, over layers of awkward sizes, and where the
/// workers and the round live.
struct Case {
    table: Vec<LayerEntry>,
    workers: Vec<usize>,
    xs: Vec<Vec<f32>>,
    x0: Vec<f32>,
    /// Each worker's place; workers alternate over the first two GPUs.
    places: Vec<Arc<CudaPlace>>,
    /// The round's own stream on GPU 0.
    hub: Arc<CudaPlace>,
}

fn case(gpus: usize) -> Case {
    let mut rng = StdRng::seed_from_u64(5);
    let lens = [7usize, 0, 70_000, 1, 300_000];
    let n: usize = lens.iter().sum();
    let table = table_of(&lens);
    let mut buf = || {
        (0..n)
            .map(|_| rng.random::<f32>() * 2.0 - 1.0)
            .collect::<Vec<f32>>()
    };
    let placement: Vec<usize> = (0..4).map(|w| w % gpus.min(2)).collect();
    let places = placement
        .iter()
        .map(|&g| CudaPlace::new(g, &table, n).unwrap())
        .collect();
    Case {
        workers: vec![0, 1, 2, 3],
        xs: (0..4).map(|_| buf()).collect(),
        x0: buf(),
        hub: CudaPlace::new(0, &table, n).unwrap(),
        places,
        table,
    }
}

/// The workers' parameters on their GPUs.
fn on_gpus(c: &Case) -> Vec<Flat> {
    c.xs.iter()
        .zip(&c.places)
        .map(|(x, p)| Flat::Device(CudaBuffer::from_host(p, x).unwrap()))
        .collect()
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

/// Two lockstep rounds and an arrival of every worker over `net_for`'s collectives, each target
/// applied to the workers' own buffers `workers`; returns the targets.
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

/// Every kind of plan over the GPUs (collectives from `net_for`, results at the hub) against the
/// same rounds over host buffers: targets and the workers' parameters after them, and no host
/// transfer in between.
fn check_against_host<'c>(
    c: &'c Case,
    dev_snaps: &'c [Flat],
    name: &str,
    mut net_for: impl FnMut(&'c [Flat]) -> Box<dyn Collective + 'c>,
) {
    for mix in round_mixes(c.workers.len(), c.table.len()) {
        let elastic = matches!(mix, grawa_train::algo::Mix::Elastic { .. });
        let plan = Plan {
            mix: Some(mix.clone()),
            lambda: 0.3,
            norms: None,
        };
        let host_snaps: Vec<Flat> = c.xs.iter().cloned().map(Flat::Host).collect();
        let mut host_workers = host_snaps
            .iter()
            .map(|x| Flat::Host(x.to_vec().unwrap()))
            .collect::<Vec<_>>();
        let mut host_data = RoundData::new(elastic, &c.x0);
        let want = rounds(
            c,
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

        let mut dev_workers = on_gpus(c);
        let mut dev_data = RoundData::new(elastic, &c.x0);
        dev_data.move_to(&FlatPlace::Device(c.hub.clone())).unwrap();
        // The rounds and the pulls themselves: no buffer goes to or from the host (the checks
        // below download the results, after this count).
        let before = host_transfers();
        let got = rounds(
            c,
            &plan,
            &mut dev_data,
            &mut dev_workers,
            dev_snaps,
            &mut net_for,
        );
        assert_eq!(
            host_transfers(),
            before,
            "{name} {mix:?}: the rounds copied buffers to or from the host"
        );

        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_close(
                &values(g),
                &values(w),
                &format!("{name} {mix:?}: target {k}"),
            );
        }
        for (k, (g, w)) in dev_workers.iter().zip(&host_workers).enumerate() {
            let (g, w) = (g.to_vec().unwrap(), w.to_vec().unwrap());
            assert_close(
                &g,
                &w,
                &format!("{name} {mix:?}: worker {k} after the rounds"),
            );
        }
    }
}

#[test]
fn the_round_on_the_gpus_is_the_host_round() {
    let Some(count) = gpus() else { return };
    let c = case(count);
    let hub = FlatPlace::Device(c.hub.clone());
    let snaps = on_gpus(&c);
    check_against_host(&c, &snaps, "hub", |s| {
        Box::new(Gathered::new(
            c.workers.clone(),
            Vec::new(),
            s.iter().collect(),
            &c.table,
            hub.clone(),
        ))
    });
}

/// `--round nccl`: one communicator per GPU, each GPU's workers combined there first, then the
/// grouped all-reduce; the result is on every GPU (mirrors) and equals the hub's round.
#[cfg(feature = "nccl")]
#[test]
fn the_nccl_round_is_the_host_round() {
    use grawa_train::comm::nccl::reducer::NcclReducer;
    use grawa_train::comm::nccl::Reduced;

    let Some(count) = gpus() else { return };
    let c = case(count);
    let placement: Vec<usize> = c.places.iter().map(|p| p.ordinal()).collect();
    let reducer = NcclReducer::new(&placement, &c.table).expect("NCCL communicators");
    let hub = FlatPlace::Device(c.hub.clone());
    let snaps = on_gpus(&c);
    check_against_host(&c, &snaps, "nccl", |s| {
        Box::new(Reduced::new(
            c.workers.clone(),
            Vec::new(),
            s.iter().collect(),
            &reducer,
            hub.clone(),
        ))
    });
}
