//! Claims 1 and 2 (better optima): every algorithm under the same wall-clock budget, per setting:
//! the `compare` tables, accuracy against time and against distributed updates (seeds shaded),
//! and the contests on time to the target and on final accuracy.

use super::charts::{seed_chart, Axes, SeedCurves};
use super::contest::{contests, table, Claim, Contest, Measure};
use super::methods::{fmt_value, Unit, GRAWA};
use super::setting::{Facts, TARGET_FRACTION};
use super::Ctx;
use crate::report::bands::Grid;
use crate::report::compare::compare;
use crate::report::error::ReportError;
use crate::report::plot::XScale;
use crate::report::reach::eval_points;
use crate::report::verdict::Better;

pub const FINAL_ACCURACY: Measure = Measure {
    name: "final test accuracy (%)",
    better: Better::Higher,
    unit: Unit::Percent,
};

const SECONDS_TO_TARGET: Measure = Measure {
    name: "seconds to the target",
    better: Better::Lower,
    unit: Unit::Seconds,
};

/// The methods GRAWA is judged against in claims 1, 2 and 4: every other algorithm run.
pub fn rivals_of(facts: &Facts) -> Vec<String> {
    facts
        .methods
        .iter()
        .map(|(m, _)| m.clone())
        .filter(|m| !GRAWA.contains(&m.as_str()))
        .collect()
}

/// The section, and claims 1 and 2a.
pub fn section(facts: &[Facts], ctx: &mut Ctx) -> Result<(String, Claim, Claim), ReportError> {
    let mut out = String::from(
        "## Claims 1 and 2: accuracy under a time budget\n\n\
         Every algorithm of a setting ran with the same budget (wall-clock minutes in the full \
         run; see the settings above) and the same flags, seed for seed. Test accuracy is that of the evaluated model: the workers' average after the \
         round's pull with BatchNorm recalibrated (EASGD: its center). The charts draw each \
         method's mean over seeds with ± one standard deviation shaded, on the range of x every \
         seed covers. Distributed updates are all-reduce steps for DDP and SAM and averaging \
         rounds for the others (see claim 4).\n\n",
    );
    let mut faster = Vec::new();
    let mut better = Vec::new();
    for f in facts {
        out.push_str(&format!("### {} ({})\n\n", f.name, f.describe()));
        let runs: Vec<_> = f
            .methods
            .iter()
            .flat_map(|(_, rs)| rs.iter().copied())
            .collect();
        let owned: Vec<_> = runs.iter().map(|r| (*r).clone()).collect();
        out.push_str(&compare(&owned).to_markdown().replace("### ", "#### "));
        out.push('\n');
        out.push_str(&charts(f, ctx)?);
        out.push_str(&target_line(f));
        let rivals = rivals_of(f);
        let rivals: Vec<&str> = rivals.iter().map(String::as_str).collect();
        let seconds = f.reach_stats(|r| r.at.seconds);
        let c1: Vec<Contest> = contests(&f.name, SECONDS_TO_TARGET, &seconds, &rivals);
        let c2: Vec<Contest> = contests(&f.name, FINAL_ACCURACY, &f.accuracy, &rivals);
        out.push_str("Contests (claim 1, converge faster; claim 2, better optima):\n\n");
        out.push_str(&table(&[c1.clone(), c2.clone()].concat()));
        out.push('\n');
        faster.extend(c1);
        better.extend(c2);
    }
    Ok((
        out,
        Claim {
            name: "1. converge faster",
            what: "wall-clock seconds until the test accuracy first reaches the setting's target",
            contests: faster,
        },
        Claim {
            name: "2a. better optima",
            what: "test accuracy at the end of the budget",
            contests: better,
        },
    ))
}

/// How the setting's target was set, in words with its numbers.
pub fn target_line(f: &Facts) -> String {
    let best = f
        .accuracy
        .iter()
        .filter(|(_, s)| s.mean.is_finite())
        .max_by(|a, b| a.1.mean.total_cmp(&b.1.mean));
    match (f.target, best) {
        (Some(t), Some((m, s))) => format!(
            "Target accuracy: **{}%**, {TARGET_FRACTION} x the best mean final accuracy ({}%, {m}), \
             rounded down to 0.1 point; a run reaches it at its first evaluation scoring at least \
             that.\n\n",
            fmt_value(t, Unit::Percent),
            fmt_value(s.mean, Unit::Percent)
        ),
        _ => "No target: no finite final accuracy.\n\n".to_string(),
    }
}

fn charts(f: &Facts, ctx: &mut Ctx) -> Result<String, ReportError> {
    let max_seconds = f
        .methods
        .iter()
        .flat_map(|(_, rs)| rs.iter().flat_map(|r| r.evals.iter().map(|e| e.seconds)))
        .filter(|s| s.is_finite())
        .fold(0.0, f64::max);
    let (unit, per) = if max_seconds > 600.0 {
        ("min", 60.0)
    } else {
        ("s", 1.0)
    };
    let curves = |x: &dyn Fn(&crate::report::reach::EvalPoint) -> f64| -> Vec<SeedCurves> {
        f.methods
            .iter()
            .map(|(m, rs)| {
                let cs = rs
                    .iter()
                    .map(|r| {
                        eval_points(r)
                            .iter()
                            .map(|p| (x(p), 100.0 * p.accuracy))
                            .collect()
                    })
                    .collect();
                (m.clone(), cs)
            })
            .collect()
    };
    let time = seed_chart(
        Axes {
            title: format!("{}: test accuracy against training time", f.name),
            x_label: format!("training time ({unit})"),
            y_label: "test accuracy (%)".to_string(),
            x_scale: XScale::Linear,
            integer_x: false,
        },
        &curves(&|p| p.seconds / per),
        Grid::Linear(60),
        &ctx.plots,
        &format!("accuracy_time_{}", f.name),
    )?;
    let updates = seed_chart(
        Axes {
            title: format!("{}: test accuracy against distributed updates", f.name),
            x_label: "distributed updates (log scale)".to_string(),
            y_label: "test accuracy (%)".to_string(),
            x_scale: XScale::Log10,
            integer_x: false,
        },
        &curves(&|p| p.updates as f64),
        Grid::Log(60),
        &ctx.plots,
        &format!("accuracy_updates_{}", f.name),
    )?;
    let mut out = ctx.image(time, &format!("{}: accuracy against time", f.name));
    out.push_str(&ctx.image(updates, &format!("{}: accuracy against updates", f.name)));
    if let Some(w) = ctx.weights(f)? {
        out.push_str(&w);
    }
    Ok(out)
}
