//! `comm::Linked`: a transport over a modelled link charges each collective call the formula of
//! its primitive, for the bytes of its result and its participants (the ranks across processes),
//! waits for it in lockstep and only counts it under `async` (one exchange per round), leaves the
//! evaluation's collective alone, and hands back the real transport's bits. The expected times
//! are the formulas of docs/design.md section 7 written out here by hand.

use std::time::{Duration, Instant};

use grawa_train::algo::WorkerStats;
use grawa_train::average::Weights;
use grawa_train::buffer::{Flat, FlatPlace};
use grawa_train::comm::{
    Counted, Exchanges, InProcess, LinkModel, Linked, Participants, Transport,
};
use grawa_train::link::Link;
use grawa_train::model::LayerEntry;
use grawa_train::ranks::RankLayout;

/// Floats per buffer: 25,000, so S = 100,000 bytes.
const N: usize = 25_000;
const S: f64 = 4.0 * N as f64;
/// 10 MB/s and 1 ms: S/B = 10 ms.
const B: f64 = 1e7;
const L: f64 = 1e-3;

fn transport(exchanges: Exchanges, counted: Counted) -> Linked {
    let table = vec![LayerEntry {
        name: "w".into(),
        offset: 0,
        len: N,
    }];
    let real = InProcess {
        layout: RankLayout::single(3),
        table,
        place: FlatPlace::Host,
    };
    let model = LinkModel {
        link: Link::new(B, L),
        exchanges,
        before: (0.0, 0),
    };
    Linked::new(Box::new(real), model, counted)
}

/// Three workers' buffers and statistics (GRAWA's: 2 layer norms each).
fn buffers() -> Vec<Flat> {
    (0..3)
        .map(|w| Flat::Host((0..N).map(|i| (i * (w + 1)) as f32 * 1e-3).collect()))
        .collect()
}

fn parts(xs: &[Flat]) -> Participants<'_> {
    Participants {
        workers: vec![0, 1, 2],
        stats: (0..3)
            .map(|w| WorkerStats {
                worker: w,
                step: 4,
                layer_norms: Some(vec![1.0, 2.0]),
                recent_loss: None,
            })
            .collect(),
        buffers: xs.iter().collect(),
    }
}

fn taken_ms(t: &mut Linked) -> f64 {
    t.link().expect("a link").take().as_secs_f64() * 1e3
}

fn close(got: f64, want: f64) {
    assert!((got - want).abs() < 1e-6, "got {got} ms, want {want} ms");
}

#[test]
fn lockstep_calls_are_charged_by_their_formulas_and_waited_for() {
    let xs = buffers();
    let mut t = transport(Exchanges::Collective, Counted::Participants);
    let m = 3.0;
    let started = Instant::now();
    let sum = {
        let mut net = t.collective(parts(&xs)).unwrap();
        net.all_gather().unwrap();
        net.all_reduce_sum(Some(&Weights::PerWorker(vec![0.2, 0.3, 0.5])))
            .unwrap()
    };
    // All-gather of 3 x (step + 2 norms) x 8 = 72 bytes: (M-1)/M * 72/B + (M-1) L; the ring
    // all-reduce of S: 2(M-1)/M * S/B + 2(M-1) L.
    let gather = (m - 1.0) / m * 72.0 / B + (m - 1.0) * L;
    let reduce = 2.0 * (m - 1.0) / m * S / B + 2.0 * (m - 1.0) * L;
    close(taken_ms(&mut t), (gather + reduce) * 1e3);
    assert!(started.elapsed() >= Duration::from_secs_f64(gather + reduce));
    // The real transport's bits.
    let real = InProcess {
        layout: RankLayout::single(3),
        table: vec![LayerEntry {
            name: "w".into(),
            offset: 0,
            len: N,
        }],
        place: FlatPlace::Host,
    };
    let mut real: Box<dyn Transport> = Box::new(real);
    let want = real
        .collective(parts(&xs))
        .unwrap()
        .all_reduce_sum(Some(&Weights::PerWorker(vec![0.2, 0.3, 0.5])))
        .unwrap();
    assert_eq!(sum.as_host(), want.as_host());

    // A broadcast: the pipelined chain, S/B + (M-1) L; the mean: the ring all-reduce.
    t.collective(parts(&xs)).unwrap().broadcast(1).unwrap();
    close(taken_ms(&mut t), (S / B + (m - 1.0) * L) * 1e3);
    t.collective(parts(&xs)).unwrap().all_reduce_mean().unwrap();
    close(taken_ms(&mut t), reduce * 1e3);
    // The run's totals: every charge, and S per buffer collective plus the statistics' 72.
    let tally = t.link().unwrap();
    let total = gather + 2.0 * reduce + S / B + (m - 1.0) * L;
    assert!(
        (tally.seconds() - total).abs() < 1e-9,
        "{}",
        tally.seconds()
    );
    assert_eq!(tally.bytes(), 3 * 100_000 + 72);
}

#[test]
fn async_rounds_are_one_exchange_counted_not_waited_for() {
    let xs = buffers();
    let mut t = transport(Exchanges::Center, Counted::Participants);
    let started = Instant::now();
    {
        let mut net = t.collective(parts(&xs)).unwrap();
        net.all_gather().unwrap();
        net.broadcast(2).unwrap();
    }
    // The statistics ride with the snapshot; the round is S up and S back: 2 (S/B + L) = 22 ms.
    close(taken_ms(&mut t), 2.0 * (S / B + L) * 1e3);
    assert!(
        started.elapsed() < Duration::from_millis(15),
        "the hub does not wait under async: {:?}",
        started.elapsed()
    );
}

#[test]
fn across_ranks_the_ranks_are_the_participants() {
    let xs = buffers();
    let mut t = transport(Exchanges::Collective, Counted::Ranks(2));
    t.collective(parts(&xs)).unwrap().all_reduce_mean().unwrap();
    // Two ranks, whatever the three local workers: 2*1/2 * S/B + 2 L.
    close(taken_ms(&mut t), (S / B + 2.0 * L) * 1e3);
}

#[test]
fn the_evaluated_point_is_not_charged() {
    let xs = buffers();
    let mut t = transport(Exchanges::Collective, Counted::Participants);
    let started = Instant::now();
    t.evaluation_collective(parts(&xs))
        .unwrap()
        .all_reduce_mean()
        .unwrap();
    close(taken_ms(&mut t), 0.0);
    assert_eq!(t.link().unwrap().bytes(), 0);
    assert!(started.elapsed() < Duration::from_millis(30));
}
