//! What the report works out once per accuracy setting: the runs by method, the final accuracies,
//! the target accuracy, and when each run first reached it.

use super::layout::Group;
use super::methods::{by_method, stat_of};
use crate::report::comm::{parameter_count, Pattern};
use crate::report::reach::{eval_points, first_reach, target_accuracy, EvalPoint};
use crate::report::runs::RunData;
use crate::report::verdict::Stat;

/// The target is this fraction of the best method's mean final accuracy.
pub const TARGET_FRACTION: f64 = 0.99;

/// A run's first evaluation at or above the target, with the bytes moved by then.
#[derive(Clone, Copy, Debug)]
pub struct Reach {
    pub at: EvalPoint,
    pub bytes: f64,
}

/// One setting, worked out.
pub struct Facts<'a> {
    pub name: String,
    /// Runs by method, in the report's method order.
    pub methods: Vec<(String, Vec<&'a RunData>)>,
    /// Final test accuracy per method.
    pub accuracy: Vec<(String, Stat)>,
    /// [`TARGET_FRACTION`] of the best mean final accuracy, rounded down to 0.1 point.
    pub target: Option<f64>,
    /// Trainable parameters of the setting's model (`None` if it cannot be built).
    pub params: Option<usize>,
    /// Per method, each run's first reach of the target (`None`: never reached).
    pub reach: Vec<(String, Vec<Option<Reach>>)>,
}

impl<'a> Facts<'a> {
    pub fn of(group: &'a Group) -> Self {
        let methods = by_method(&group.runs);
        let accuracy: Vec<(String, Stat)> = methods
            .iter()
            .map(|(m, rs)| (m.clone(), stat_of(rs, |r| r.summary.test_accuracy)))
            .collect();
        let best = accuracy
            .iter()
            .map(|(_, s)| s.mean)
            .filter(|m| m.is_finite())
            .fold(f64::NEG_INFINITY, f64::max);
        let target = target_accuracy(best, TARGET_FRACTION);
        let params = group
            .runs
            .first()
            .and_then(|r| parameter_count(&r.summary.dataset, &r.summary.model).ok());
        let reach = methods
            .iter()
            .map(|(m, rs)| {
                let per_run = rs
                    .iter()
                    .map(|r| reach_of(r, target?, params))
                    .collect::<Vec<_>>();
                (m.clone(), per_run)
            })
            .collect();
        Facts {
            name: group.name.clone(),
            methods,
            accuracy,
            target,
            params,
            reach,
        }
    }

    /// The stat of `f` over each method's reaches (not reached: see [`Stat::of_reached`]).
    pub fn reach_stats(&self, f: impl Fn(&Reach) -> f64) -> Vec<(String, Stat)> {
        self.reach
            .iter()
            .map(|(m, rs)| {
                let xs: Vec<Option<f64>> = rs.iter().map(|r| r.as_ref().map(&f)).collect();
                (m.clone(), Stat::of_reached(&xs))
            })
            .collect()
    }

    /// A description of the setting from its first run: data set, model, workers.
    pub fn describe(&self) -> String {
        match self.methods.first().and_then(|(_, rs)| rs.first()) {
            Some(r) => format!(
                "{}, {}, {} workers",
                r.summary.dataset, r.summary.model, r.summary.workers
            ),
            None => String::new(),
        }
    }
}

fn reach_of(run: &RunData, target: f64, params: Option<usize>) -> Option<Reach> {
    let at = first_reach(&eval_points(run), target)?;
    let per_update = match (Pattern::of(&run.summary.algo), params) {
        (Some(p), Some(n)) => p.bytes_per_update(run.summary.workers, n),
        _ => f64::NAN,
    };
    Some(Reach {
        at,
        bytes: at.updates as f64 * per_update,
    })
}
