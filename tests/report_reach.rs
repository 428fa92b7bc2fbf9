//! The reproduction report's measures on numbers worked out by hand: the first evaluation at a
//! target, distributed updates per evaluation, bytes per update, the target itself, and seeds
//! averaged onto a common grid.

mod report_support;

use grawa_train::report::bands::{seed_band, Grid};
use grawa_train::report::comm::{parameter_count, Pattern};
use grawa_train::report::curve::normalised_area;
use grawa_train::report::reach::{
    eval_points, first_reach, target_accuracy, updates_at_evals, EvalPoint,
};
use grawa_train::report::reach::{has_link_time, link_curve};
use grawa_train::report::RunData;
use report_support::{repro_run, write_repro_run, write_run, Fixture, DDP_METRICS, LGRAWA_METRICS};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn point(seconds: f64, updates: u64, accuracy: f64) -> EvalPoint {
    EvalPoint {
        seconds,
        updates,
        accuracy,
        link_seconds: 0.0,
    }
}

#[test]
fn first_reach_is_the_first_evaluation_at_or_above_the_target() {
    let pts = [
        point(1.0, 1, 0.50),
        point(2.0, 2, f64::NAN),
        point(3.0, 3, 0.80),
        point(4.0, 4, 0.79),
        point(5.0, 5, 0.85),
    ];
    // 0.80 is reached at exactly 0.80 (the third evaluation), not later when it dips.
    assert_eq!(first_reach(&pts, 0.80), Some(pts[2]));
    assert_eq!(first_reach(&pts, 0.81), Some(pts[4]));
    assert_eq!(first_reach(&pts, 0.9), None);
    assert_eq!(first_reach(&[], 0.1), None);
}

#[test]
fn the_target_is_a_fraction_of_the_best_rounded_down_to_a_tenth_of_a_point() {
    // 0.99 * 0.9843 = 0.974457 -> 0.974; 0.99 * 0.98 = 0.9702 -> 0.970; 0.99 * 1 = 0.99.
    assert!(close(target_accuracy(0.9843, 0.99).unwrap(), 0.974));
    assert!(close(target_accuracy(0.98, 0.99).unwrap(), 0.970));
    assert!(close(target_accuracy(1.0, 0.99).unwrap(), 0.990));
    assert_eq!(target_accuracy(f64::NAN, 0.99), None);
}

fn fixture(root: &std::path::Path, algo: &'static str, metrics: &str) -> RunData {
    let dir = write_run(
        root,
        algo,
        &Fixture {
            algo,
            schedule: "sync",
            seed: 0,
            test_accuracy: 0.9,
            test_loss: 0.3,
            wall_seconds: 2.0,
            rounds: 2,
            lambda_max: None,
        },
        metrics,
    );
    RunData::load(&dir).unwrap()
}

#[test]
fn updates_are_steps_for_ddp_and_rounds_for_the_averaging_methods() {
    let tmp = tempfile::tempdir().unwrap();
    // DDP, 3 workers: the evaluation at 60 local steps in all is after 20 all-reduce steps.
    let ddp = fixture(tmp.path(), "ddp", DDP_METRICS);
    assert_eq!(updates_at_evals(&ddp), vec![20]);
    // LGRAWA: evaluations at 96 and 192 steps follow rounds 1 and 2.
    let lg = fixture(tmp.path(), "lgrawa", LGRAWA_METRICS);
    assert_eq!(updates_at_evals(&lg), vec![1, 2]);
    let pts = eval_points(&lg);
    assert_eq!(
        pts,
        vec![point(0.537576898, 1, 0.9445), point(0.895455955, 2, 0.948)]
    );
    assert_eq!(first_reach(&pts, 0.946).map(|p| p.updates), Some(2));
}

#[test]
fn bytes_per_update_by_pattern() {
    assert_eq!(Pattern::of("ddp"), Some(Pattern::AllReducePerStep));
    assert_eq!(Pattern::of("ddp-sam"), Some(Pattern::AllReducePerStep));
    for a in ["mgrawa", "lgrawa", "local-sgd", "easgd"] {
        assert_eq!(Pattern::of(a), Some(Pattern::AllReducePerRound), "{a}");
    }
    assert_eq!(Pattern::of("lsgd"), Some(Pattern::BroadcastPerRound));
    assert_eq!(Pattern::of("sgd"), None);
    // 4 workers, 1000 parameters (4000 bytes): ring all-reduce 2 * 3 * 4000, broadcast 3 * 4000.
    assert_eq!(
        Pattern::AllReducePerRound.bytes_per_update(4, 1000),
        24_000.0
    );
    assert_eq!(
        Pattern::AllReducePerStep.bytes_per_update(4, 1000),
        24_000.0
    );
    assert_eq!(
        Pattern::BroadcastPerRound.bytes_per_update(4, 1000),
        12_000.0
    );
    // One worker moves nothing.
    assert_eq!(Pattern::AllReducePerRound.bytes_per_update(1, 1000), 0.0);
}

/// Under `--schedule async` a round is one worker's exchange (up and back, 2 x 4000 bytes for
/// 1000 parameters, whatever the worker count), a pattern of its own: its rounds are never
/// counted against a sync method's all-worker rounds. DDP has no async form.
#[test]
fn an_async_round_is_one_workers_exchange() {
    for a in ["mgrawa", "lgrawa", "local-sgd", "easgd", "lsgd"] {
        assert_eq!(
            Pattern::of_run(a, "async"),
            Some(Pattern::ExchangePerRound),
            "{a}"
        );
        assert_eq!(Pattern::of_run(a, "sync"), Pattern::of(a), "{a}");
        assert_eq!(Pattern::of_run(a, "permits"), Pattern::of(a), "{a}");
    }
    assert_eq!(
        Pattern::of_run("ddp", "sync"),
        Some(Pattern::AllReducePerStep)
    );
    assert_eq!(Pattern::ExchangePerRound.bytes_per_update(4, 1000), 8_000.0);
    assert_eq!(Pattern::ExchangePerRound.bytes_per_update(8, 1000), 8_000.0);
    assert!(!Pattern::ExchangePerRound.per_step());
}

#[test]
fn parameter_count_builds_the_model() {
    // MLP 784 -> 256 -> 10: 784 * 256 + 256 + 256 * 10 + 10.
    assert_eq!(parameter_count("mnist", "mlp").unwrap(), 203_530);
    // Synthetic data takes the model's shape (1x28x28 for the MLP).
    assert_eq!(parameter_count("synthetic", "mlp").unwrap(), 203_530);
    assert!(parameter_count("mnist", "nope").is_err());
}

#[test]
fn seed_band_is_the_mean_and_std_on_a_common_grid() {
    // Two lines two apart: at every x the mean is the midpoint and the std sqrt(2).
    let c1 = vec![(0.0, 0.0), (10.0, 10.0)];
    let c2 = vec![(10.0, 12.0), (0.0, 2.0)]; // any order
    let b = seed_band(&[c1, c2], Grid::Linear(3));
    let xs: Vec<f64> = b.iter().map(|p| p.x).collect();
    assert_eq!(xs, vec![0.0, 5.0, 10.0]);
    assert!(
        close(b[1].mean, 6.0) && close(b[1].std, 2f64.sqrt()),
        "{b:?}"
    );
    assert!(close(b[0].mean, 1.0) && close(b[2].mean, 11.0), "{b:?}");
}

#[test]
fn seed_band_covers_only_the_range_every_seed_has() {
    // x from max(1, 3) = 3 to min(9, 12) = 9. At 3: c1 = 0 + 8 * 2/8 = 2, c2 = 1; at 9: c1 = 8,
    // c2 = 1 + 9 * 6/9 = 7.
    let c1 = vec![(1.0, 0.0), (9.0, 8.0)];
    let c2 = vec![(3.0, 1.0), (12.0, 10.0)];
    let b = seed_band(&[c1.clone(), c2], Grid::Linear(4));
    let xs: Vec<f64> = b.iter().map(|p| p.x).collect();
    assert_eq!(xs, vec![3.0, 5.0, 7.0, 9.0]);
    assert!(close(b[0].mean, 1.5) && close(b[3].mean, 7.5), "{b:?}");
    // No overlap: nothing to draw.
    assert!(seed_band(&[c1, vec![(20.0, 1.0), (30.0, 2.0)]], Grid::Linear(4)).is_empty());
    assert!(seed_band(&[], Grid::Linear(4)).is_empty());
}

#[test]
fn seed_band_on_a_log_grid_and_with_odd_points() {
    // Log grid 1, 10, 100; one seed: std 0; interpolation is linear in x: at 10, 2 * 9/99.
    let c = vec![(1.0, 0.0), (100.0, 2.0), (0.0, 5.0), (f64::NAN, 1.0)];
    let b = seed_band(&[c], Grid::Log(3));
    assert_eq!(b.len(), 3);
    assert!(close(b[0].x, 1.0) && close(b[1].x, 10.0) && close(b[2].x, 100.0));
    assert!(close(b[1].mean, 18.0 / 99.0) && b[1].std == 0.0, "{b:?}");
    // A repeated x takes its last point; between points, a straight line.
    let c = vec![(1.0, 1.0), (2.0, 2.0), (2.0, 3.0), (3.0, 4.0)];
    let b = seed_band(&[c], Grid::Linear(5));
    let ys: Vec<f64> = b.iter().map(|p| p.mean).collect();
    assert_eq!(ys, vec![1.0, 1.5, 3.0, 3.5, 4.0]);
}

#[test]
fn area_under_the_curve_by_hand() {
    // From (0, 0): 0-10 s (0 + 0.5) / 2 x 10 = 2.5; 10-20 s (0.5 + 0.9) / 2 x 10 = 7; held at 0.9
    // from 20 to the 40 s budget: 18. (2.5 + 7 + 18) / 40 = 0.6875. Order and NaN do not matter.
    let a = normalised_area(&[(20.0, 0.9), (f64::NAN, 1.0), (10.0, 0.5)], 40.0);
    assert!(close(a, 0.6875), "{a}");
    // An evaluation after the budget is cut there: the line from (10, 0.5) to (30, 0.9) is 0.7 at
    // 20 s; (2.5 + (0.5 + 0.7) / 2 x 10) / 20 = 0.425.
    assert!(close(
        normalised_area(&[(10.0, 0.5), (30.0, 0.9)], 20.0),
        0.425
    ));
    // Exactly at the budget: 2.5 + 7 = 9.5 over 20.
    assert!(close(
        normalised_area(&[(10.0, 0.5), (20.0, 0.9)], 20.0),
        0.475
    ));
    assert_eq!(normalised_area(&[], 10.0), 0.0);
    assert!(normalised_area(&[(1.0, 1.0)], 0.0).is_nan());
}

#[test]
fn link_seconds_accumulate_from_rounds_and_steps() {
    let tmp = tempfile::tempdir().unwrap();
    // Rounds at 9.5, 19.5, ... s with link_ms 250 each; evaluations at 10, 20, ... s.
    let dir = write_repro_run(tmp.path(), "m", &repro_run("mgrawa", 1, 0.9));
    let mut run = RunData::load(&dir).unwrap();
    assert!(has_link_time(&run));
    let at: Vec<f64> = eval_points(&run).iter().map(|p| p.link_seconds).collect();
    assert_eq!(at, [0.25, 0.5, 0.75, 1.0, 1.25, 1.5]);
    // DDP's steps events carry the all-reduce time each worker waited for, which all workers
    // share: each event counts divided by the run's 4 workers, so 400 ms and 200 ms at 5 s add
    // 0.1 + 0.05 = 0.15 s.
    let mut step = run.steps.first().cloned();
    assert!(step.is_none());
    run.rounds.clear();
    let text = r#"{"event":"steps","worker":0,"step":10,"seconds":5.0,"link_ms":400.0}
{"event":"steps","worker":1,"step":10,"seconds":5.0,"link_ms":200.0}
{"event":"eval","seconds":6.0,"total_steps":20,"test_loss":0.1,"test_accuracy":0.5}
"#;
    std::fs::write(dir.join("metrics.jsonl"), text).unwrap();
    run = RunData::load(&dir).unwrap();
    step = run.steps.first().cloned();
    assert_eq!(step.unwrap().link_ms, Some(400.0));
    assert_eq!(
        link_curve(&run),
        vec![(5.0, 0.1), (5.0, 0.15000000000000002)]
    );
    assert!(close(eval_points(&run)[0].link_seconds, 0.15));
    // Without a link: nothing.
    let plain = fixture(tmp.path(), "ddp", DDP_METRICS);
    assert!(!has_link_time(&plain));
    assert_eq!(eval_points(&plain)[0].link_seconds, 0.0);
}
