//! Claims 1 and 2a: every algorithm under the same wall-clock budget, per setting: each method's
//! figures (final test and validation accuracy, area under the curve, seconds to each target),
//! accuracy against time and against distributed updates (seeds shaded, from folders only), and
//! the comparisons on seconds to the main target and on final accuracy.

use super::charts::{seed_chart, Axes, SeedCurves};
use super::contest::{all_pairs, rows, table, Family, Measure};
use super::markdown::table as markdown_table;
use super::measures::{AUC, FINAL_ACCURACY, MAIN_SECONDS, SECONDS_TO, VAL_ACCURACY};
use super::methods::{fmt_stat, fmt_value, Unit};
use super::setting::Setting;
use super::Charts;
use crate::report::bands::Grid;
use crate::report::error::ReportError;
use crate::report::plot::XScale;
use crate::report::reach::{eval_points, EvalPoint};
use crate::report::record::{target_name, TARGETS};

pub const CLAIM_1: &str = "1. converge faster";
const WHAT_1: &str =
    "seconds until test accuracy first reaches the 99 % target (censored at the budget)";
pub const CLAIM_2A: &str = "2a. better optima";
const WHAT_2A: &str = "test accuracy at the end of the budget";

/// The section, and the families of claims 1 and 2a (one per setting each).
pub fn section(
    settings: &[Setting],
    charts: &mut Option<&mut Charts>,
) -> Result<(String, Vec<Family>), ReportError> {
    let mut out = String::from(
        "## Claims 1 and 2: accuracy under a time budget\n\n\
         Every algorithm of a setting ran with the same budget and flags, seed for seed, each with \
         its own learning rate (see the grid above when there is one). Test accuracy is that of \
         the evaluated model: the workers' average after the round's pull with BatchNorm \
         recalibrated (EASGD: its center). Censored runs (a target never reached) count at the \
         budget. Charts draw each method's mean over seeds with ± one standard deviation shaded, \
         on the range of x every seed covers.\n\n",
    );
    let mut families = Vec::new();
    for s in settings {
        out.push_str(&format!("### {} ({})\n\n", s.name, s.describe()));
        out.push_str(&target_line(s));
        out.push_str(&figures(s));
        if let Some(c) = charts.as_deref_mut() {
            out.push_str(&draw(s, c)?);
        }
        let faster = Family::judge(
            CLAIM_1,
            WHAT_1,
            &s.name,
            rows(&s.name, MAIN_SECONDS, &s.methods, &all_pairs),
        );
        let better = Family::judge(
            CLAIM_2A,
            WHAT_2A,
            &s.name,
            rows(&s.name, FINAL_ACCURACY, &s.methods, &all_pairs),
        );
        out.push_str(&format!(
            "Claim 1 (converge faster), **{}**:\n\n",
            faster.verdict_words()
        ));
        out.push_str(&table(&faster.rows));
        out.push_str(&format!(
            "\nClaim 2a (better optima), **{}**:\n\n",
            better.verdict_words()
        ));
        out.push_str(&table(&better.rows));
        out.push('\n');
        families.push(faster);
        families.push(better);
    }
    Ok((out, families))
}

/// The setting's targets, in words with their numbers.
pub fn target_line(s: &Setting) -> String {
    let best = s
        .methods
        .iter()
        .filter_map(|(m, rs)| Some((m, FINAL_ACCURACY.stat(rs)?.mean)))
        .filter(|(_, mean)| mean.is_finite())
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let Some((m, mean)) = best else {
        return "No targets: no finite final accuracy.\n\n".to_string();
    };
    let each: Vec<String> = s
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                "{} % -> **{}%**",
                target_name(i),
                t.map_or("-".to_string(), |t| fmt_value(t, Unit::Percent))
            )
        })
        .collect();
    format!(
        "Targets ({} of the best mean final accuracy, {}% by {m}, rounded down to 0.1 point): \
         {}.\n\n",
        TARGETS.map(|t| t.to_string()).join(", "),
        fmt_value(mean, Unit::Percent),
        each.join(", ")
    )
}

/// Each method's figures over its seeds.
fn figures(s: &Setting) -> String {
    let measures: [(Measure, Unit); 6] = [
        (FINAL_ACCURACY, Unit::Percent),
        (VAL_ACCURACY, Unit::Percent),
        (AUC, Unit::Percent),
        (SECONDS_TO[0], Unit::Seconds),
        (SECONDS_TO[1], Unit::Seconds),
        (SECONDS_TO[2], Unit::Seconds),
    ];
    let rows: Vec<Vec<String>> = s
        .methods
        .iter()
        .map(|(m, rs)| {
            let mut lrs: Vec<String> = rs
                .iter()
                .map(|r| r.lr.map_or("-".to_string(), |l| l.to_string()))
                .collect();
            lrs.dedup();
            let mut row = vec![m.clone(), rs.len().to_string(), lrs.join(", ")];
            for (measure, unit) in &measures {
                row.push(
                    measure
                        .stat(rs)
                        .map_or("-".to_string(), |st| fmt_stat(&st, *unit)),
                );
            }
            row
        })
        .collect();
    let mut out = markdown_table(
        &[
            "method",
            "runs",
            "lr",
            "test acc (%)",
            "val acc (%)",
            "area under acc (%)",
            "s to 97 %",
            "s to 99 %",
            "s to 99.5 %",
        ],
        &rows,
    );
    out.push('\n');
    out
}

fn draw(s: &Setting, charts: &mut Charts) -> Result<String, ReportError> {
    let runs: Vec<(String, Vec<Vec<EvalPoint>>)> = s
        .methods
        .iter()
        .map(|(m, rs)| {
            let pts = charts
                .runs(rs.iter().copied())
                .into_iter()
                .map(eval_points)
                .collect();
            (m.clone(), pts)
        })
        .collect();
    let max_seconds = runs
        .iter()
        .flat_map(|(_, rs)| rs.iter().flatten().map(|p| p.seconds))
        .filter(|s| s.is_finite())
        .fold(0.0, f64::max);
    let (unit, per) = if max_seconds > 600.0 {
        ("min", 60.0)
    } else {
        ("s", 1.0)
    };
    let curves = |x: &dyn Fn(&EvalPoint) -> f64| -> Vec<SeedCurves> {
        runs.iter()
            .map(|(m, rs)| {
                let cs = rs
                    .iter()
                    .map(|pts| pts.iter().map(|p| (x(p), 100.0 * p.accuracy)).collect())
                    .collect();
                (m.clone(), cs)
            })
            .collect()
    };
    let time = seed_chart(
        Axes {
            title: format!("{}: test accuracy against training time", s.name),
            x_label: format!("training time ({unit})"),
            y_label: "test accuracy (%)".to_string(),
            x_scale: XScale::Linear,
            integer_x: false,
        },
        &curves(&|p| p.seconds / per),
        Grid::Linear(60),
        &charts.plots,
        &format!("accuracy_time_{}", s.name),
    )?;
    let updates = seed_chart(
        Axes {
            title: format!("{}: test accuracy against distributed updates", s.name),
            x_label: "distributed updates (log scale)".to_string(),
            y_label: "test accuracy (%)".to_string(),
            x_scale: XScale::Log10,
            integer_x: false,
        },
        &curves(&|p| p.updates as f64),
        Grid::Log(60),
        &charts.plots,
        &format!("accuracy_updates_{}", s.name),
    )?;
    let mut out = charts.image(time, &format!("{}: accuracy against time", s.name));
    out.push_str(&charts.image(updates, &format!("{}: accuracy against updates", s.name)));
    if let Some(w) = charts.weights(s)? {
        out.push_str(&w);
    }
    Ok(out)
}
