//! A round moves no parameter to the host. Every byte a round moves goes through the
//! [`RoundBuffer`] interface (`combine`, `mean`, `copy_to`, `duplicate`) and [`FlatBuffer`]'s
//! in-place operations; only `host` and `to_host` bring values to host memory. This test runs
//! every kind of round (lockstep for each mix, async arrivals, the workers applying their targets)
//! over a buffer kind that lives "on a device" and counts each call by kind, then checks:
//!
//! - no host transfer at all (`host`, `to_host`): on a GPU build the same round code runs over
//!   `CudaBuffer`s, whose only host transfers are those two methods;
//! - the results are the host round's, bit for bit (the counting kind computes with the same
//!   reductions), so the count is of the real round, not of a short cut;
//! - the device-side traffic is what the design says: one `combine` or `mean` per round, a copy
//!   for a broadcast, and the center kept across rounds duplicated once per EASGD round.

mod run_support;

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use grawa_train::algo::{Mix, Plan};
use grawa_train::average::Weights;
use grawa_train::buffer::{Flat, FlatBuffer, FlatPlace, RoundBuffer};
use grawa_train::comm::Gathered;
use grawa_train::model::LayerEntry;
use grawa_train::optim::SgdConfig;
use grawa_train::round::{RoundData, Target};
use grawa_train::train::messages::{participants, Snapshot};
use grawa_train::Result;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use run_support::{round_mixes, table_of};

/// Calls by kind, shared by every buffer of one test.
type Log = Rc<RefCell<BTreeMap<&'static str, usize>>>;

fn note(log: &Log, what: &'static str) {
    *log.borrow_mut().entry(what).or_default() += 1;
}

/// A buffer "on a device": host memory underneath, computing with the host reductions (so
/// results can be compared bit for bit), counting every call that moves values.
#[derive(Debug)]
struct Counted {
    x: Flat,
    log: LogHandle,
}

/// `Debug` for the shared log (targets derive `Debug`).
#[derive(Clone)]
struct LogHandle(Log);

impl std::fmt::Debug for LogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "log")
    }
}

impl Counted {
    fn new(x: Vec<f32>, log: &Log) -> Self {
        Self {
            x: Flat::Host(x),
            log: LogHandle(log.clone()),
        }
    }

    fn wrap(&self, x: Flat) -> Self {
        Self {
            x,
            log: self.log.clone(),
        }
    }

    fn values(&self) -> &[f32] {
        self.x.as_host().expect("host memory underneath")
    }
}

impl FlatBuffer for Counted {
    fn len(&self) -> usize {
        self.x.len()
    }

    fn layer_sumsq(&self, table: &[LayerEntry]) -> Result<Vec<f64>> {
        note(&self.log.0, "layer_sumsq");
        self.x.layer_sumsq(table)
    }

    fn pull(&mut self, center: &Self, lambda: f32) -> Result<()> {
        note(&self.log.0, "pull");
        self.x.pull(&center.x, lambda)
    }

    fn scale_add(&mut self, a: f32, y: &Self, b: f32) -> Result<()> {
        note(&self.log.0, "scale_add");
        self.x.scale_add(a, &y.x, b)
    }

    fn divide(&mut self, d: f32) -> Result<()> {
        note(&self.log.0, "divide");
        self.x.divide(d)
    }

    fn sgd_step(&mut self, g: &Self, m: &mut Self, lr: f32, cfg: &SgdConfig) -> Result<()> {
        note(&self.log.0, "sgd_step");
        self.x.sgd_step(&g.x, &mut m.x, lr, cfg)
    }

    fn to_host(&self) -> Result<Vec<f32>> {
        note(&self.log.0, "HOST to_host");
        self.x.to_host()
    }
}

impl RoundBuffer for Counted {
    type Place = ();

    fn combine(
        xs: &[&Self],
        scale: Option<&Weights>,
        table: &[LayerEntry],
        _at: &(),
    ) -> Result<Self> {
        note(&xs[0].log.0, "combine");
        let inner: Vec<&Flat> = xs.iter().map(|c| &c.x).collect();
        Ok(xs[0].wrap(Flat::combine(&inner, scale, table, &FlatPlace::Host)?))
    }

    fn mean(xs: &[&Self], _at: &()) -> Result<Self> {
        note(&xs[0].log.0, "mean");
        let inner: Vec<&Flat> = xs.iter().map(|c| &c.x).collect();
        Ok(xs[0].wrap(Flat::mean(&inner, &FlatPlace::Host)?))
    }

    fn copy_to(&self, _at: &()) -> Result<Self> {
        note(&self.log.0, "copy_to");
        Ok(self.wrap(self.x.duplicate()?))
    }

    fn duplicate(&self) -> Result<Self> {
        note(&self.log.0, "duplicate");
        Ok(self.wrap(self.x.duplicate()?))
    }

    fn host(&self) -> Result<Cow<'_, [f32]>> {
        note(&self.log.0, "HOST host");
        self.x.host()
    }
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// The values a target carries, from either kind.
fn target_values<B>(t: &Target<B>, values: impl Fn(&B) -> Vec<f32>) -> Vec<f32> {
    match t {
        Target::Pull { point, .. } => values(point),
        Target::Exchange { diff, .. } => values(diff),
    }
}

struct Case {
    table: Vec<LayerEntry>,
    workers: Vec<usize>,
    xs: Vec<Vec<f32>>,
    x0: Vec<f32>,
}

fn case() -> Case {
    let mut rng = StdRng::seed_from_u64(11);
    let lens = [7usize, 0, 3000, 1, 9000];
    let n: usize = lens.iter().sum();
    let mut buf = |_| {
        (0..n)
            .map(|_| rng.random::<f32>() * 2.0 - 1.0)
            .collect::<Vec<f32>>()
    };
    Case {
        table: table_of(&lens),
        workers: vec![0, 2, 3],
        xs: (0..3).map(&mut buf).collect(),
        x0: buf(9),
    }
}

/// The host round's targets (lockstep rounds, then async arrivals of each worker in turn).
fn host_round(c: &Case, plan: &Plan, elastic: bool) -> Vec<Target> {
    let mut data = RoundData::new(elastic, &c.x0);
    let snaps: Vec<Snapshot> = c
        .workers
        .iter()
        .zip(&c.xs)
        .map(|(&w, x)| Snapshot {
            worker: w,
            step: 4,
            params: Flat::Host(x.clone()),
            layer_norms: None,
            recent_loss: None,
            losses: Vec::new(),
        })
        .collect();
    let refs: Vec<&Snapshot> = snaps.iter().collect();
    let mut out = Vec::new();
    for _ in 0..2 {
        let mut net = Gathered::from_parts(participants(&refs), &c.table, FlatPlace::Host);
        out.extend(data.lockstep(plan, &mut net).unwrap());
    }
    for &w in &c.workers {
        let mut net = Gathered::from_parts(participants(&refs), &c.table, FlatPlace::Host);
        out.extend(data.arrival(plan, &mut net, w).unwrap());
    }
    out
}

/// The round's view of the counted buffers, as the pulling thread's `Gathered` over snapshots.
fn counted_net<'a>(c: &'a Case, xs: &'a [Counted]) -> Gathered<'a, Counted> {
    Gathered::new(
        c.workers.clone(),
        Vec::new(),
        xs.iter().collect(),
        &c.table,
        (),
    )
}

#[test]
fn rounds_of_every_kind_move_no_parameter_to_the_host() {
    let c = case();
    for mix in round_mixes(c.workers.len(), c.table.len()) {
        let elastic = matches!(mix, Mix::Elastic { .. });
        let plan = Plan {
            mix: Some(mix.clone()),
            lambda: 0.3,
            norms: None,
        };
        let want = host_round(&c, &plan, elastic);

        let log: Log = Rc::default();
        let xs: Vec<Counted> = c.xs.iter().map(|x| Counted::new(x.clone(), &log)).collect();
        let mut data = RoundData::starting_at(elastic, Counted::new(c.x0.clone(), &log));
        let mut workers: Vec<Counted> =
            c.xs.iter().map(|x| Counted::new(x.clone(), &log)).collect();
        log.borrow_mut().clear();
        let mut got: Vec<Target<Counted>> = Vec::new();
        for _ in 0..2 {
            let t = data
                .lockstep(&plan, &mut counted_net(&c, &xs))
                .unwrap()
                .unwrap();
            // Each worker applies the target to its own parameters, where they live.
            for (w, x) in c.workers.iter().zip(&mut workers) {
                t.apply(Some(*w), x).unwrap();
            }
            got.push(t);
        }
        for &w in &c.workers {
            let t = data
                .arrival(&plan, &mut counted_net(&c, &xs), w)
                .unwrap()
                .unwrap();
            for (v, x) in c.workers.iter().zip(&mut workers) {
                t.apply(Some(*v), x).unwrap();
            }
            got.push(t);
        }
        let calls = log.borrow().clone();

        let host_calls: usize = calls
            .iter()
            .filter(|(k, _)| k.starts_with("HOST"))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(
            host_calls, 0,
            "{mix:?}: host transfers in a round: {calls:?}"
        );

        assert_eq!(got.len(), want.len(), "{mix:?}");
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            let g = target_values(g, |b: &Counted| b.values().to_vec());
            let w = target_values(w, |b: &Flat| b.to_vec().unwrap());
            assert_eq!(
                bits(&g),
                bits(&w),
                "{mix:?}: target {k} differs from the host round's"
            );
        }

        // The device-side traffic of 5 rounds (2 lockstep, 3 arrivals).
        let n = |k: &str| calls.get(k).copied().unwrap_or(0);
        match mix {
            Mix::Weighted(_) => assert_eq!(n("combine"), 5, "{calls:?}"),
            Mix::Mean => assert_eq!(n("mean"), 5, "{calls:?}"),
            Mix::Leader(_) => assert_eq!(n("copy_to"), 5, "{calls:?}"),
            Mix::Elastic { .. } => {
                // Lockstep: a mean and the new center; arrival: the worker's snapshot brought
                // over and the new center.
                assert_eq!(n("mean"), 2, "{calls:?}");
                assert_eq!(n("copy_to"), 3, "{calls:?}");
                assert_eq!(n("duplicate"), 5, "{calls:?}");
            }
        }
        // Pulls: every worker, every round that pulls (an exchange moves its worker alone).
        let pulls = if elastic { 2 * 3 } else { 5 * 3 };
        assert_eq!(n("pull"), pulls, "{mix:?}: {calls:?}");
    }
}

/// The same round over the trainer's own host buffers asks nothing of the host it does not
/// already hold: `Flat::host` of a host buffer borrows.
#[test]
fn host_buffers_are_borrowed_not_copied() {
    let f = Flat::Host(vec![1.0, 2.0]);
    assert!(matches!(f.host().unwrap(), Cow::Borrowed(_)));
}
