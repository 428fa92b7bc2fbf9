//! When a run first reaches a target test accuracy: the wall time, distributed updates and bytes
//! by then, read from its evaluations (`metrics.jsonl`), and the target itself.
//!
//! Distributed updates at an evaluation ([`updates_at_evals`]): for DDP and SAM, which all-reduce
//! at every local step, the steps each worker has taken (the evaluation's `total_steps` over the
//! workers, exact under `--schedule sync`); for the averaging methods, the rounds completed by then
//! ([`RunData::eval_rounds`]). Bytes are updates times [`Pattern::bytes_per_update`].
//!
//! The resolution is the evaluation cadence: a run is seen to reach the target at the first
//! evaluation that scores at least the target, not in between.

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
}

/// The first evaluation, in order, that scores at least `target` (a NaN accuracy never does).
pub fn first_reach(points: &[EvalPoint], target: f64) -> Option<EvalPoint> {
    points.iter().copied().find(|p| p.accuracy >= target)
}

/// The distributed updates completed at each evaluation of `run` (see the module docs).
pub fn updates_at_evals(run: &RunData) -> Vec<u64> {
    match Pattern::of(&run.summary.algo) {
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
        .map(|(e, updates)| EvalPoint {
            seconds: e.seconds,
            updates,
            accuracy: e.test_accuracy,
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
