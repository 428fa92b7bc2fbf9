//! The measures the report compares methods on, each read from a run record.

use super::contest::Measure;
use super::methods::Unit;
use crate::report::comm::Pattern;
use crate::report::record::{RunRecord, MAIN_TARGET};
use crate::report::verdict::Better;

pub const FINAL_ACCURACY: Measure = Measure {
    name: "final test accuracy (%)",
    better: Better::Higher,
    unit: Unit::Percent,
    pick: |r| Some((r.test_accuracy, false)),
};

pub const VAL_ACCURACY: Measure = Measure {
    name: "final validation accuracy (%)",
    better: Better::Higher,
    unit: Unit::Percent,
    pick: |r| Some((r.val_accuracy?, false)),
};

pub const AUC: Measure = Measure {
    name: "area under accuracy against time (% of budget)",
    better: Better::Higher,
    unit: Unit::Percent,
    pick: |r| Some((r.auc, false)),
};

/// Seconds to target `i`, censored at the budget.
pub const SECONDS_TO: [Measure; 3] = [
    seconds_to(0, "seconds to the 97 % target"),
    seconds_to(1, "seconds to the 99 % target"),
    seconds_to(2, "seconds to the 99.5 % target"),
];

const fn seconds_to(i: usize, name: &'static str) -> Measure {
    let pick: fn(&RunRecord) -> Option<(f64, bool)> = match i {
        0 => |r| Some(r.seconds_to_censored(0)),
        1 => |r| Some(r.seconds_to_censored(1)),
        _ => |r| Some(r.seconds_to_censored(2)),
    };
    Measure {
        name,
        better: Better::Lower,
        unit: Unit::Seconds,
        pick,
    }
}

/// The seconds-to-target measure the claims are judged on.
pub const MAIN_SECONDS: Measure = SECONDS_TO[MAIN_TARGET];

/// Distributed updates to the main target, censored at the run's total.
pub const UPDATES_TO_MAIN: Measure = Measure {
    name: "distributed updates to the 99 % target",
    better: Better::Lower,
    unit: Unit::Count,
    pick: |r| match r.to_target(MAIN_TARGET).updates {
        Some(u) => Some((u as f64, false)),
        None => Some((total_updates(r) as f64, true)),
    },
};

/// A run's distributed updates over its whole budget: steps per worker for the methods that
/// all-reduce every step, rounds for the others.
pub fn total_updates(r: &RunRecord) -> u64 {
    match Pattern::of_run(&r.algo, &r.schedule) {
        Some(p) if p.per_step() => r.steps,
        _ => r.rounds,
    }
}

pub const LAMBDA_MAX: Measure = Measure {
    name: "lambda_max",
    better: Better::Lower,
    unit: Unit::Real,
    pick: |r| Some((r.lambda_max?, false)),
};

pub const RITZ_SUM: Measure = Measure {
    name: "Ritz sum",
    better: Better::Lower,
    unit: Unit::Real,
    pick: |r| Some((r.ritz_sum?, false)),
};

pub const HUTCHINSON: Measure = Measure {
    name: "Hutchinson trace",
    better: Better::Lower,
    unit: Unit::Real,
    pick: |r| Some((r.hutchinson_trace?, false)),
};
