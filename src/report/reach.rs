//! When a run first reaches a target test accuracy: the wall time, distributed updates and bytes
//! by then, read from its evaluations (`metrics.jsonl`), and the target itself.
//!
//! Distributed updates at an evaluation ([`updates_at_evals`]): for DDP and SAM, which all-reduce
//! at every local step, the steps each worker has taken (the evaluation's `total_steps` over the
//! workers, exact under `--schedule sync`); for the averaging methods, the rounds completed by then
//! ([`RunData::eval_rounds`]). Bytes are updates times [`Pattern::bytes_per_update`].
//!
//! The resolution is the evaluation cadence: a run is seen to reach the target at the first
//! evaluation that scores at least the target, not in between. A run that never does is
//! *censored*: the report counts it at its budget ([`RunData::budget_seconds`]) and marks it.
//!
//! Modelled link seconds by an evaluation ([`link_seconds_at_evals`]): the `link_ms` of every
//! `round` event up to it, plus the `link_ms` of the `steps` events up to it over the workers
//! (each worker's steps event carries the all-reduces it waited for, which every worker shares).

use super::comm::Pattern;
use super::runs::RunData;

/// One evaluation: when it ran and what it scored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalPoint {
    /// Seconds since training started.
    pub seconds: f64,
    /// Distributed updates completed by then.
    pub updates: u64,
    /// Test accuracy, a fraction.
    pub accuracy: f64,
    /// Modelled link seconds by then (0 without a link).
    pub link_seconds: f64,
}

/// The first evaluation, in order, that scores at least `target` (a NaN accuracy never does).
pub fn first_reach(points: &[EvalPoint], target: f64) -> Option<EvalPoint> {
    points.iter().copied().find(|p| p.accuracy >= target)
}

/// The distributed updates completed at each evaluation of `run` (see the module docs).
pub fn updates_at_evals(run: &RunData) -> Vec<u64> {
    match Pattern::of_run(&run.summary.algo, &run.summary.schedule) {
        Some(p) if p.per_step() => {
            let workers = run.summary.workers.max(1) as u64;
            run.evals.iter().map(|e| e.total_steps / workers).collect()
        }
        _ => run.eval_rounds(),
    }
}

/// Every evaluation of `run` as an [`EvalPoint`], in the order they were written.
pub fn eval_points(run: &RunData) -> Vec<EvalPoint> {
    run.evals
        .iter()
        .zip(updates_at_evals(run))
        .zip(link_seconds_at_evals(run))
        .map(|((e, updates), link_seconds)| EvalPoint {
            seconds: e.seconds,
            updates,
            accuracy: e.test_accuracy,
            link_seconds,
        })
        .collect()
}

/// Whether any event of `run` carries a modelled link time.
pub fn has_link_time(run: &RunData) -> bool {
    run.rounds.iter().any(|r| r.link_ms.is_some()) || run.steps.iter().any(|s| s.link_ms.is_some())
}

/// The cumulative modelled link seconds of `run` at each event time that carries `link_ms`, as
/// `(seconds, cumulative link seconds)` sorted by time (see the module docs); empty without a
/// link.
pub fn link_curve(run: &RunData) -> Vec<(f64, f64)> {
    let workers = run.summary.workers.max(1) as f64;
    let mut events: Vec<(f64, f64)> = run
        .rounds
        .iter()
        .filter_map(|r| Some((r.seconds, r.link_ms? / 1000.0)))
        .chain(
            run.steps
                .iter()
                .filter_map(|s| Some((s.seconds, s.link_ms? / 1000.0 / workers))),
        )
        .filter(|(t, l)| t.is_finite() && l.is_finite())
        .collect();
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    events
        .into_iter()
        .map(|(t, l)| {
            total += l;
            (t, total)
        })
        .collect()
}

/// The cumulative modelled link seconds at each evaluation of `run` (0 without a link).
pub fn link_seconds_at_evals(run: &RunData) -> Vec<f64> {
    let curve = link_curve(run);
    run.evals
        .iter()
        .map(|e| {
            let upto = curve.partition_point(|(t, _)| *t <= e.seconds);
            if upto == 0 {
                0.0
            } else {
                curve[upto - 1].1
            }
        })
        .collect()
}

/// The target the report uses: `fraction` of the best method's mean final accuracy, rounded down
/// to a tenth of a percentage point (0.001). `None` when there is no finite accuracy.
pub fn target_accuracy(best_mean_final: f64, fraction: f64) -> Option<f64> {
    let t = fraction * best_mean_final;
    // The small nudge keeps a product like 0.99 * 0.98 = 0.97019999... at 0.970.
    t.is_finite()
        .then(|| ((t * 1000.0) + 1e-9).floor() / 1000.0)
}
