//! The area under a run's test accuracy against training time, normalised by its budget: the
//! mean accuracy over the budget, one number that rewards getting good early and staying good,
//! and that no single evaluation can flip.
//!
//! The curve starts at (0, 0) (no credit before the first evaluation but the linear rise to it),
//! goes through the evaluations in time order by straight lines (trapezoids), is held at its last
//! value until the budget B, and is cut at B (linearly between the evaluations either side) when
//! an evaluation falls after it. The area is divided by B, so it is a fraction like accuracy.

/// The area under `points` (`(seconds, accuracy)`, any order) from 0 to `budget`, divided by
/// `budget` (see the module docs). Points with a non-finite coordinate or a negative time are
/// dropped. NaN for a budget that is not positive and finite; 0 with no point.
pub fn normalised_area(points: &[(f64, f64)], budget: f64) -> f64 {
    if !(budget.is_finite() && budget > 0.0) {
        return f64::NAN;
    }
    let mut pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(t, a)| t.is_finite() && a.is_finite() && *t >= 0.0)
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut area = 0.0;
    let mut prev = (0.0, 0.0);
    for (t, a) in pts {
        if t >= budget {
            // Cut at the budget: the straight line from `prev` to (t, a) at B.
            let span = t - prev.0;
            let at_budget = if span > 0.0 {
                prev.1 + (a - prev.1) * (budget - prev.0) / span
            } else {
                a
            };
            area += (budget - prev.0) * (prev.1 + at_budget) / 2.0;
            return area / budget;
        }
        area += (t - prev.0) * (prev.1 + a) / 2.0;
        prev = (t, a);
    }
    area += (budget - prev.0) * prev.1;
    area / budget
}
