//! The round's decisions and its data movement, without threads: each algorithm's [`Policy`]
//! on hand-made statistics, and its [`Plan`] carried out by [`RoundData`] over the in-process
//! collective ([`Gathered`]), exactly as the pulling thread does. Also the worker plans, and the
//! flat parameter view's promise that a pull leaves BatchNorm buffers alone. (The protocol itself,
//! with the real workers and pulling thread, is tested in tests/round_protocol.rs.)
//!
//! Expected numbers are worked by hand from docs/design.md section 2 next to each test.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use grawa_train::algo::DEFAULT_NORM_MOMENTUM;
use grawa_train::algo::{
    build, worker_plan, AlgoConfig, AlgoKind, Easgd, Grawa, Mix, NoAveraging, NormSource, Plan,
    Policy, ScheduleKind, StepKind, WorkerStats,
};
use grawa_train::average::{pull, Weights};
use grawa_train::buffer::{Flat, FlatPlace};
use grawa_train::cli::parse_from;
use grawa_train::comm::Gathered;
use grawa_train::config::RunConfig;
use grawa_train::data::ImageShape;
use grawa_train::model::{LayerEntry, Model, ModelKind};
use grawa_train::round::{RoundData, Target};
use grawa_train::train::messages::{participants, Snapshot};

/// A 2-entry layer table over a flat vector of 3: layer "a" = x[0..2], layer "b" = x[2..3].
fn table() -> Vec<LayerEntry> {
    vec![
        LayerEntry {
            name: "a".into(),
            offset: 0,
            len: 2,
        },
        LayerEntry {
            name: "b".into(),
            offset: 2,
            len: 1,
        },
    ]
}

fn snap(worker: usize, step: u64, params: &[f32]) -> Snapshot {
    Snapshot {
        worker,
        step,
        params: Flat::Host(params.to_vec()),
        layer_norms: None,
        recent_loss: None,
        losses: Vec::new(),
    }
}

/// The values of a host buffer.
fn h(f: &Flat) -> &[f32] {
    f.as_host().expect("a host buffer")
}

fn assert_close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        // f32 arithmetic on values of order 1: a few ulps.
        assert!(
            (f64::from(*g) - w).abs() <= 1e-6 * (1.0 + w.abs()),
            "{what}: got {got:?}, want {want:?}"
        );
    }
}

/// The resolved algorithm settings the binary would use for `--workers 4 --algo NAME ...`
/// (defaults from docs/design.md via `RunConfig::from_args`; no data is touched).
fn algo_config(name: &str, extra: &[&str]) -> AlgoConfig {
    let mut args = vec!["grawa-train", "--workers", "4", "--algo", name];
    args.extend_from_slice(extra);
    RunConfig::from_args(&parse_from(args).expect("flags parse"))
        .expect("flags are valid")
        .algo
}

/// One lockstep round as the pulling thread runs it: statistics all-gathered, the policy's plan,
/// carried out over the gathered snapshots.
fn round(
    policy: &mut dyn Policy,
    data: &mut RoundData,
    snaps: &[Snapshot],
) -> (Plan, Option<Target>) {
    let refs: Vec<&Snapshot> = snaps.iter().collect();
    let t = table();
    let mut net = Gathered::from_parts(participants(&refs), &t, FlatPlace::Host);
    let stats: Vec<WorkerStats> = snaps.iter().map(Snapshot::stats).collect();
    let plan = policy.decide(&stats);
    let target = data.lockstep(&plan, &mut net).expect("round");
    (plan, target)
}

/// The point and strength of a pull.
fn pull_of(t: Option<Target>) -> (Arc<Flat>, f32) {
    match t {
        Some(Target::Pull { point, lambda }) => (point, lambda),
        other => panic!("expected a pull, got {other:?}"),
    }
}

/// EASGD with M = 2, beta = 0.5, c_old = x0 = [1, 2, 3]; workers [3, 0, 1] and [5, 4, -1].
/// Target: the OLD center [1, 2, 3] with lambda = beta/M = 0.25.
/// mean_i x_i (before the pull) = [4, 2, 0], so the new center (what is evaluated) is
/// 0.5 * [1, 2, 3] + 0.5 * [4, 2, 0] = [2.5, 2, 1.5].
/// Round 2 on the same snapshots: target [2.5, 2, 1.5], center 0.5*[2.5,2,1.5] + 0.5*[4,2,0]
/// = [3.25, 2, 0.75].
#[test]
fn easgd_targets_the_old_center_and_evaluates_the_moved_one() {
    let x0 = [1.0f32, 2.0, 3.0];
    let cfg = AlgoConfig {
        beta: Some(0.5),
        ..algo_config("easgd", &[])
    };
    for (name, mut policy) in [
        (
            "Easgd::new",
            Box::new(Easgd::new(0.5, 2)) as Box<dyn Policy>,
        ),
        ("algo::build", build(&cfg, 2, 2)),
    ] {
        let mut data = RoundData::new(true, &x0);
        assert_close(
            h(&data.evaluation_point().expect("EASGD evaluates its center")),
            &[1.0, 2.0, 3.0],
            &format!("{name}: center before any round is x0"),
        );
        let snaps = [snap(0, 4, &[3.0, 0.0, 1.0]), snap(1, 4, &[5.0, 4.0, -1.0])];
        let (plan, t) = round(policy.as_mut(), &mut data, &snaps);
        assert_eq!(plan.mix, Some(Mix::Elastic { beta: 0.5 }));
        let (point, lambda) = pull_of(t);
        assert_close(h(&point), &[1.0, 2.0, 3.0], &format!("{name}: target"));
        assert_eq!(lambda, 0.25, "{name}: lambda = beta / M");
        assert!(
            plan.weights(2).is_none() && plan.leader().is_none(),
            "{name}"
        );
        assert_close(
            h(&data.evaluation_point().unwrap()),
            &[2.5, 2.0, 1.5],
            &format!("{name}: evaluation point"),
        );
        let (point, _) = pull_of(round(policy.as_mut(), &mut data, &snaps).1);
        assert_close(
            h(&point),
            &[2.5, 2.0, 1.5],
            &format!("{name}: round 2 target"),
        );
        assert_close(
            h(&data.evaluation_point().unwrap()),
            &[3.25, 2.0, 0.75],
            &format!("{name}: round 2 evaluation point"),
        );
    }
}

/// Asynchronous EASGD (Zhang et al., the asynchronous variant): each arriving snapshot x_i and
/// the center exchange diff = alpha (x_i - c), alpha = beta / M. M = 2, beta = 0.5: alpha = 0.25;
/// c0 = [0, 4].
/// 1. worker 0 arrives with [4, 0]: diff = 0.25 [4, -4] = [1, -1]; c1 = [1, 3].
/// 2. worker 1 arrives with [-3, 7]: diff = 0.25 [-4, 4] = [-1, 1]; c2 = [0, 4].
/// 3. worker 0 arrives with [8, 8]: diff = 0.25 [8, 4] = [2, 1]; c3 = [2, 5].
///
/// Each diff goes to the arriving worker alone (x <- x - diff): the sum of all workers and the
/// center is conserved by every exchange.
#[test]
fn async_easgd_is_a_sequence_of_elastic_exchanges() {
    let mut policy = Easgd::new(0.5, 2);
    let t1 = vec![LayerEntry {
        name: "w".into(),
        offset: 0,
        len: 2,
    }];
    let mut data = RoundData::new(true, &[0.0, 4.0]);
    let arrivals = [
        (0, [4.0f32, 0.0], [1.0, -1.0], [1.0, 3.0]),
        (1, [-3.0, 7.0], [-1.0, 1.0], [0.0, 4.0]),
        (0, [8.0, 8.0], [2.0, 1.0], [2.0, 5.0]),
    ];
    let mut newest: Vec<Option<Snapshot>> = vec![None, None];
    for (k, (w, x, diff, center)) in arrivals.iter().enumerate() {
        newest[*w] = Some(snap(*w, 4 * (k as u64 + 1), x));
        let refs: Vec<&Snapshot> = newest.iter().flatten().collect();
        let stats: Vec<WorkerStats> = refs.iter().map(|s| s.stats()).collect();
        let plan = policy.decide(&stats);
        let mut net = Gathered::from_parts(participants(&refs), &t1, FlatPlace::Host);
        let target = data.arrival(&plan, &mut net, *w).unwrap();
        let Some(Target::Exchange { worker, diff: got }) = &target else {
            panic!("arrival {k}: expected an exchange, got {target:?}");
        };
        assert_eq!(
            *worker, *w,
            "arrival {k}: the exchange is the arriving worker's"
        );
        assert_close(h(got), &diff.map(f64::from), &format!("arrival {k}: diff"));
        assert_close(
            h(&data.evaluation_point().unwrap()),
            &center.map(f64::from),
            &format!("arrival {k}: center"),
        );
        let t = target.unwrap();
        assert!(t.applies_to(*w) && !t.applies_to(1 - *w));
        let mut mine = x.to_vec();
        t.apply_host(Some(*w), &mut mine).unwrap();
        let want: Vec<f64> = x.iter().zip(diff).map(|(a, d)| f64::from(*a) - d).collect();
        assert_close(
            &mine,
            &want,
            &format!("arrival {k}: worker after the exchange"),
        );
    }
}

/// LSGD: recent losses 0.7, 0.3, none, 0.5: worker 1 leads (lowest; a worker with no loss ranks
/// last); target = worker 1's parameters exactly (a broadcast), lambda = --pull (default 0.1).
#[test]
fn lsgd_targets_the_worker_with_the_lowest_recent_loss() {
    let mut policy = build(&algo_config("lsgd", &[]), 4, 2);
    let mut data = RoundData::new(false, &[0.0; 3]);
    let losses = [Some(0.7), Some(0.3), None, Some(0.5)];
    let snaps: Vec<Snapshot> = losses
        .iter()
        .enumerate()
        .map(|(i, l)| Snapshot {
            recent_loss: *l,
            losses: Vec::new(),
            ..snap(i, 4, &[i as f32, 10.0 * i as f32, -(i as f32)])
        })
        .collect();
    let (plan, t) = round(policy.as_mut(), &mut data, &snaps);
    assert_eq!(plan.leader(), Some(1));
    let (point, lambda) = pull_of(t);
    assert_eq!(h(&point), [1.0, 10.0, -1.0]);
    assert_eq!(lambda, 0.1);
    assert!(data.evaluation_point().is_none());
    // Among workers 2 and 3 only (ids, not positions), with --pull 0.3.
    let mut policy = build(&algo_config("lsgd", &["--pull", "0.3"]), 4, 2);
    let (plan, t) = round(policy.as_mut(), &mut data, &snaps[2..]);
    assert_eq!(
        plan.leader(),
        Some(3),
        "worker 2 has no loss, worker 3 leads"
    );
    assert_eq!(h(&pull_of(t).0), [3.0, 30.0, -3.0]);
}

/// Local SGD: mean of [1, 2, 3], [3, 2, 1], [2, 8, -1] = [2, 4, 1], lambda 1, uniform weights.
#[test]
fn local_sgd_targets_the_uniform_mean_with_lambda_one() {
    let snaps = [
        snap(0, 32, &[1.0, 2.0, 3.0]),
        snap(1, 32, &[3.0, 2.0, 1.0]),
        snap(2, 32, &[2.0, 8.0, -1.0]),
    ];
    let mut policy = build(&algo_config("local-sgd", &[]), 3, 2);
    let mut data = RoundData::new(false, &[0.0; 3]);
    let (plan, t) = round(policy.as_mut(), &mut data, &snaps);
    let (point, lambda) = pull_of(t);
    assert_close(h(&point), &[2.0, 4.0, 1.0], "mean");
    assert_eq!(lambda, 1.0);
    assert_eq!(plan.weights(3), Some(Weights::uniform(3)));
    assert!(data.evaluation_point().is_none());
}

/// Nobody is pulled without averaging (sgd, ddp, ddp-sam).
#[test]
fn no_averaging_targets_nothing() {
    let snaps = [snap(0, 8, &[1.0, 2.0, 3.0]), snap(1, 8, &[3.0, 2.0, 1.0])];
    let mut policies: Vec<Box<dyn Policy>> = vec![Box::new(NoAveraging)];
    for name in ["ddp", "ddp-sam"] {
        policies.push(build(&algo_config(name, &[]), 2, 2));
    }
    for mut p in policies {
        let mut data = RoundData::new(false, &[0.0; 3]);
        let (plan, t) = round(p.as_mut(), &mut data, &snaps);
        assert!(t.is_none() && plan == Plan::default(), "{plan:?}");
        assert!(data.evaluation_point().is_none());
    }
}

/// MGRAWA at round 1. Layer norms [0.25, 0.75], [1.5, 0.5], [1, 3]: model norms (SUM of layer
/// norms) 1, 2, 4. Smoothing: v_1 = (1-m) n, vhat_1 = v_1 / (1 - m^1) = n exactly, so round 1
/// weighs the raw norms: 1/n = 1, 1/2, 1/4 over their sum 7/4 gives w = 4/7, 2/7, 1/7.
/// More generally, if every round so far saw the same norm n, v_k = (1-m)(1 + m + ... + m^(k-1)) n
/// = (1 - m^k) n, and the bias correction divides exactly that factor out: vhat_k = n. Round 2 on
/// the same norms therefore gives the same weights.
/// Center of [1, 0, 2], [0, 2, 2], [7, 7, -5]: 4/7 [1,0,2] + 2/7 [0,2,2] + 1/7 [7,7,-5]
/// = [11/7, 11/7, 1]; lambda = --pull (0.5 by default).
/// Round 3 with worker 0's model norm now 2 (layer norms [1, 1]; workers 1 and 2 unchanged, so
/// their vhat stays 2 and 4): worker 0 had v_2 = (1 - m^2) * 1, so v_3 = m (1 - m^2) + (1 - m) 2
/// and vhat_0 = v_3 / (1 - m^3) (about 1.58 for m = 0.9^8); the weights are 1/vhat over their
/// sum. This pins that the smoother keeps state per worker across rounds.
#[test]
fn mgrawa_weighs_workers_by_inverse_smoothed_model_norm() {
    let mut policy = build(&algo_config("mgrawa", &[]), 3, 2);
    let mut data = RoundData::new(false, &[0.0; 3]);
    let params = [[1.0f32, 0.0, 2.0], [0.0, 2.0, 2.0], [7.0, 7.0, -5.0]];
    let norms = [vec![0.25, 0.75], vec![1.5, 0.5], vec![1.0, 3.0]];
    let snaps_at = |step: u64, norms: &[Vec<f64>]| -> Vec<Snapshot> {
        (0..3)
            .map(|i| Snapshot {
                layer_norms: Some(norms[i].clone()),
                ..snap(i, step, &params[i])
            })
            .collect()
    };
    for step in [32, 64] {
        let (plan, t) = round(policy.as_mut(), &mut data, &snaps_at(step, &norms));
        let Some(Weights::PerWorker(w)) = plan.weights(3) else {
            panic!("MGRAWA has per-worker weights: {plan:?}");
        };
        assert_close(&w, &[4.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0], "weights");
        let vhat = plan.norms.clone().unwrap();
        for (v, want) in vhat.iter().zip([1.0, 2.0, 4.0]) {
            assert!((v - want).abs() < 1e-12, "vhat {vhat:?}");
        }
        let (point, lambda) = pull_of(t);
        assert_close(h(&point), &[11.0 / 7.0, 11.0 / 7.0, 1.0], "center");
        assert_eq!(lambda, 0.5);
    }
    let m = DEFAULT_NORM_MOMENTUM;
    let vhat0 = (m * (1.0 - m * m) + 2.0 * (1.0 - m)) / (1.0 - m.powi(3));
    let inv = [1.0 / vhat0, 0.5, 0.25];
    let sum: f64 = inv.iter().sum();
    let changed = vec![vec![1.0, 1.0], norms[1].clone(), norms[2].clone()];
    let (plan, _) = round(policy.as_mut(), &mut data, &snaps_at(96, &changed));
    let Some(Weights::PerWorker(w)) = plan.weights(3) else {
        panic!("{plan:?}")
    };
    assert_close(&w, &inv.map(|v| v / sum), "round-3 weights");
    // The same through the type, built directly.
    let mut direct = Grawa::new(false, 1.0, 0.5, 3, 2);
    let (plan, _) = round(&mut direct, &mut data, &snaps_at(32, &norms));
    assert_eq!(
        plan.weights(3),
        Some(Weights::PerWorker(vec![4.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0]))
    );
}

/// LGRAWA at round 1 (vhat = raw norms, as above), per layer:
/// layer a norms 1, 2, 4 -> 4/7, 2/7, 1/7; layer b norms 4, 1, 4 -> (1/4, 1, 1/4) / (3/2)
/// = 1/6, 2/3, 1/6. Worker-major weights: [4/7, 1/6, 2/7, 2/3, 1/7, 1/6].
/// Center of [1, 0, 2], [0, 2, 2], [7, 7, -5]: layer a = [11/7, 11/7] (as MGRAWA above);
/// layer b = 1/6 * 2 + 2/3 * 2 + 1/6 * (-5) = 5/6.
#[test]
fn lgrawa_weighs_each_layer_on_its_own() {
    let params = [[1.0f32, 0.0, 2.0], [0.0, 2.0, 2.0], [7.0, 7.0, -5.0]];
    let norms = [[1.0, 4.0], [2.0, 1.0], [4.0, 4.0]];
    let snaps: Vec<Snapshot> = (0..3)
        .map(|i| Snapshot {
            layer_norms: Some(norms[i].to_vec()),
            ..snap(i, 32, &params[i])
        })
        .collect();
    for mut policy in [
        build(&algo_config("lgrawa", &[]), 3, 2),
        Box::new(Grawa::new(true, 1.0, 0.5, 3, 2)) as Box<dyn Policy>,
    ] {
        let mut data = RoundData::new(false, &[0.0; 3]);
        let (plan, t) = round(policy.as_mut(), &mut data, &snaps);
        let Some(Weights::PerLayer { layers, w }) = plan.weights(3) else {
            panic!("LGRAWA has per-layer weights: {plan:?}");
        };
        assert_eq!(layers, 2);
        assert_close(
            &w,
            &[
                4.0 / 7.0,
                1.0 / 6.0,
                2.0 / 7.0,
                2.0 / 3.0,
                1.0 / 7.0,
                1.0 / 6.0,
            ],
            "weights",
        );
        let vhat = plan.norms.clone().unwrap();
        let want = [1.0, 4.0, 2.0, 1.0, 4.0, 4.0];
        assert!(
            vhat.iter().zip(want).all(|(v, w)| (v - w).abs() < 1e-12),
            "{vhat:?}"
        );
        let (point, lambda) = pull_of(t);
        assert_close(h(&point), &[11.0 / 7.0, 11.0 / 7.0, 5.0 / 6.0], "center");
        assert_eq!(lambda, 0.5);
    }
}

/// Asynchronous GRAWA with 3 workers where worker 2 reports late: rounds before its first report
/// are decided among the workers that have reported (it gets no weight and its smoother is
/// untouched), and at its first report its smoothed norm is its own norm exactly (k = 1 of ITS
/// smoother: vhat = (1-m) n / (1 - m) = n), not biased by rounds it took no part in.
/// Worker 0 reports norms 1 then 3 (vhat after two: v = m(1-m) + (1-m) 3 = (1-m)(m + 3), over
/// 1 - m^2 = (1-m)(1+m): vhat_0 = (m + 3) / (1 + m)); worker 1 reports 2 once (vhat_1 = 2);
/// worker 2 then reports 4: vhat_2 = 4, and the weights are 1/vhat over their sum.
#[test]
fn async_grawa_ignores_workers_that_have_not_reported() {
    let mut policy = Grawa::new(false, 1.0, 0.5, 3, 1);
    let s = |worker: usize, step: u64, n: f64| WorkerStats {
        worker,
        step,
        layer_norms: Some(vec![n]),
        recent_loss: None,
    };
    let plan = policy.decide(&[s(0, 4, 1.0)]);
    assert_eq!(plan.weights(1), Some(Weights::PerWorker(vec![1.0])));
    let plan = policy.decide(&[s(0, 4, 1.0), s(1, 4, 2.0)]);
    assert_eq!(
        plan.norms,
        Some(vec![1.0, 2.0]),
        "worker 0's report at step 4 is not counted twice"
    );
    let plan = policy.decide(&[s(0, 8, 3.0), s(1, 4, 2.0)]);
    let m = DEFAULT_NORM_MOMENTUM;
    let vhat0 = (m + 3.0) / (1.0 + m);
    assert!(
        (plan.norms.as_ref().unwrap()[0] - vhat0).abs() < 1e-12,
        "{plan:?}"
    );
    let plan = policy.decide(&[s(0, 8, 3.0), s(1, 4, 2.0), s(2, 4, 4.0)]);
    let vhat = plan.norms.clone().unwrap();
    assert!(
        (vhat[2] - 4.0).abs() < 1e-12,
        "late worker's vhat is its own norm: {vhat:?}"
    );
    let inv = [1.0 / vhat0, 0.5, 0.25];
    let sum: f64 = inv.iter().sum();
    let Some(Weights::PerWorker(w)) = plan.weights(3) else {
        panic!("{plan:?}")
    };
    assert_close(&w, &inv.map(|v| v / sum), "weights once all have reported");
}

/// The worker's side: docs/design.md defaults per algorithm.
#[test]
fn worker_plans_follow_the_design_defaults() {
    let plan = |name: &str| worker_plan(&algo_config(name, &[]), 50, 128);
    let l = plan("lgrawa");
    assert_eq!(
        (l.tau, l.norms, l.probe_samples, l.report_loss, l.step),
        (32, Some(NormSource::Probe), 128, false, StepKind::Local)
    );
    assert!((l.prox.unwrap() - 0.01 / 32.0).abs() < 1e-12, "p / tau");
    let s = plan("lsgd");
    assert_eq!((s.tau, s.report_loss, s.norms), (4, true, None));
    assert!((s.prox.unwrap() - 0.1 / 4.0).abs() < 1e-9, "p / tau");
    let e = plan("easgd");
    assert_eq!((e.tau, e.prox), (4, None));
    assert_eq!((plan("local-sgd").tau, plan("local-sgd").prox), (32, None));
    let d = plan("ddp");
    assert_eq!(
        (d.tau, d.step),
        (50, StepKind::AllReduce),
        "rounds only to evaluate"
    );
    assert_eq!(plan("ddp-sam").step, StepKind::Sam { rho: 0.05 });
    let cfg = algo_config("lgrawa", &["--prox", "0"]);
    assert_eq!(
        worker_plan(&cfg, 50, 128).prox,
        None,
        "--prox 0 turns it off"
    );
    assert_eq!(cfg.kind, AlgoKind::Lgrawa);
    assert_eq!(cfg.schedule, ScheduleKind::Sync);
}

/// Each algorithm's settings live in one table (`AlgoKind::default`): the resolved configuration
/// takes its defaults from it, a flag outside it is refused naming the algorithms that take it,
/// and `--help` lists the same defaults. The numbers are docs/design.md section 3's.
#[test]
fn the_algorithm_table_drives_defaults_validation_and_help() {
    use grawa_train::algo::AlgoFlag;
    assert_eq!(AlgoFlag::Pull.takers(), "mgrawa, lgrawa and lsgd");
    assert_eq!(AlgoFlag::Beta.takers(), "easgd");
    assert_eq!(
        AlgoFlag::Tau.defaults(),
        "32 for mgrawa, lgrawa, local-sgd; 4 for easgd, lsgd"
    );
    assert!(AlgoFlag::Prox
        .help()
        .ends_with("Default: 0.01 for mgrawa, lgrawa; 0.1 for lsgd."));
    for kind in AlgoKind::ALL.into_iter().filter(|k| *k != AlgoKind::Sgd) {
        let cfg = algo_config(kind.name(), &[]);
        let d = |f: AlgoFlag| kind.default(f);
        assert_eq!(cfg.tau.map(|t| t as f64), d(AlgoFlag::Tau), "{kind}: tau");
        assert_eq!(
            cfg.pull.map(f64::from),
            d(AlgoFlag::Pull).map(|v| v as f32 as f64),
            "{kind}"
        );
        assert_eq!(
            cfg.prox.map(f64::from),
            d(AlgoFlag::Prox).map(|v| v as f32 as f64),
            "{kind}"
        );
        assert_eq!(
            cfg.beta.map(f64::from),
            d(AlgoFlag::Beta).map(|v| v as f32 as f64),
            "{kind}"
        );
        assert_eq!(
            cfg.rho.map(f64::from),
            d(AlgoFlag::Rho).map(|v| v as f32 as f64),
            "{kind}"
        );
        assert_eq!(cfg.weight_power, d(AlgoFlag::WeightPower), "{kind}");
        assert_eq!(kind.has_rounds(), cfg.tau.is_some(), "{kind}");
    }
    let refused = RunConfig::from_args(
        &parse_from([
            "grawa-train",
            "--workers",
            "2",
            "--algo",
            "ddp",
            "--pull",
            "0.3",
        ])
        .unwrap(),
    )
    .expect_err("ddp takes no --pull")
    .to_string();
    assert!(
        refused.contains("--pull applies to mgrawa, lgrawa and lsgd only"),
        "{refused}"
    );
}

// ---------------------------------------------------------------------------------------------
// The flat parameter view.

/// A pull written through `model.params.write_flat` changes exactly the trainable parameters and
/// leaves the BatchNorm running statistics (`model.buffers`) bit-identical. One forward pass in
/// training mode first moves the buffers off their initial 0 / 1, so "unchanged" is not trivial.
#[test]
fn a_pull_through_the_flat_view_leaves_batchnorm_buffers_alone() {
    let device = Device::Cpu;
    let shape = ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    let model = Model::new(ModelKind::Cnn, shape, 10, 7, &device).unwrap();
    assert!(!model.buffers.is_empty(), "the CNN has BatchNorm buffers");
    assert!(model
        .params
        .table()
        .iter()
        .all(|e| !e.name.contains("running")));
    assert!(model
        .buffers
        .table()
        .iter()
        .all(|e| e.name.ends_with("running_mean") || e.name.ends_with("running_var")));
    let initial_buffers = model.buffers.to_flat().unwrap();
    let x = Tensor::randn(0.5f32, 1.0, (8, 1, 28, 28), &device).unwrap();
    model.forward_t(&x, true).unwrap();
    let buffers = model.buffers.to_flat().unwrap();
    assert_ne!(
        buffers, initial_buffers,
        "a training-mode forward updates the running statistics"
    );

    let before = model.params.to_flat().unwrap();
    let center: Vec<f32> = before.iter().map(|v| v + 1.0).collect();
    let mut pulled = before.clone();
    pull(&mut pulled, &center, 0.5);
    model.params.write_flat(&pulled).unwrap();
    let after = model.params.to_flat().unwrap();
    assert_eq!(after, pulled, "the parameters are the pulled values");
    assert!(after.iter().zip(&before).all(|(a, b)| a != b));
    let after_buffers = model.buffers.to_flat().unwrap();
    assert!(
        after_buffers
            .iter()
            .zip(&buffers)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "BatchNorm buffers changed under a parameter pull"
    );
    // An evaluation-mode forward reads the buffers without changing them either.
    model.forward_t(&x, false).unwrap();
    assert_eq!(model.buffers.to_flat().unwrap(), buffers);
}
