//! Claim 4 (communication): distributed updates and bytes until each algorithm first reaches the
//! setting's target, and the final accuracy at several tau for GRAWA against local SGD (the base
//! setting's runs are the default tau, `communication/` holds the others).

use std::collections::BTreeMap;

use super::accuracy::{rivals_of, target_line, FINAL_ACCURACY};
use super::charts::{stat_chart, Axes};
use super::contest::{contests, table, Claim, Measure};
use super::layout::Layout;
use super::markdown::table as markdown_table;
use super::methods::{by_method, fmt_stat, fmt_value, method_lines, stat_of, Unit};
use super::setting::Facts;
use super::Ctx;
use crate::report::comm::Pattern;
use crate::report::error::ReportError;
use crate::report::plot::XScale;
use crate::report::runs::RunData;
use crate::report::verdict::{Better, Stat};

const UPDATES: Measure = Measure {
    name: "distributed updates to the target",
    better: Better::Lower,
    unit: Unit::Count,
};
const BYTES: Measure = Measure {
    name: "bytes to the target",
    better: Better::Lower,
    unit: Unit::Bytes,
};
const TAU_METHODS: [&str; 3] = ["mgrawa", "lgrawa", "local-sgd"];

/// A figure per method.
type PerMethod = Vec<(String, Stat)>;

const FORMULA: &str = "A distributed update is one collective over all parameters: DDP and SAM \
all-reduce the gradients at every local step; local SGD, MGRAWA, LGRAWA and EASGD all-reduce the \
(weighted) parameters once per round; LSGD broadcasts the leader's parameters once per round. \
Bytes per update, for M workers and P f32 parameters, are what a bandwidth-optimal collective \
moves in total: a ring all-reduce `2 (M - 1) 4 P`, a broadcast `(M - 1) 4 P`; bytes to the target \
are updates to the target times that. GRAWA's gradient norms and LSGD's losses (a few floats per \
worker) are not counted. Updates are counted at evaluations (every `eval every` steps), so they \
are exact at the evaluation that first reaches the target, and that cadence is their \
resolution.\n\n";

/// The section and claim 4.
pub fn section(
    layout: &Layout,
    facts: &[Facts],
    ctx: &mut Ctx,
) -> Result<(String, Claim), ReportError> {
    let mut out = format!("## Claim 4: communication\n\n{FORMULA}");
    let mut all = Vec::new();
    for f in facts {
        out.push_str(&format!("### {} ({})\n\n", f.name, f.describe()));
        out.push_str(&target_line(f));
        out.push_str(&reach_table(f));
        let rivals = rivals_of(f);
        let rivals: Vec<&str> = rivals.iter().map(String::as_str).collect();
        let updates = f.reach_stats(|r| r.at.updates as f64);
        let bytes = f.reach_stats(|r| r.bytes);
        let cs: Vec<_> = contests(&f.name, UPDATES, &updates, &rivals)
            .into_iter()
            .chain(contests(&f.name, BYTES, &bytes, &rivals))
            .collect();
        out.push_str("Contests (claim 4, fewer distributed updates):\n\n");
        out.push_str(&table(&cs));
        out.push('\n');
        all.extend(cs);
    }
    let (tau_text, tau_contests) = tau_part(layout, ctx)?;
    out.push_str(&tau_text);
    all.extend(tau_contests);
    Ok((
        out,
        Claim {
            name: "4. less communication",
            what: "distributed updates and bytes to the target; final accuracy against local SGD at each tau",
            contests: all,
        },
    ))
}

fn reach_table(f: &Facts) -> String {
    let secs = f.reach_stats(|r| r.at.seconds);
    let ups = f.reach_stats(|r| r.at.updates as f64);
    let bytes = f.reach_stats(|r| r.bytes);
    let find = |v: &[(String, Stat)], m: &str| v.iter().find(|(n, _)| n == m).map(|(_, s)| *s);
    let rows: Vec<Vec<String>> = f
        .methods
        .iter()
        .map(|(m, rs)| {
            let workers = rs.first().map_or(0, |r| r.summary.workers);
            let per = match (Pattern::of(m), f.params) {
                (Some(p), Some(n)) => format!(
                    "{} = {}",
                    p.formula(),
                    fmt_value(p.bytes_per_update(workers, n), Unit::Bytes)
                ),
                _ => "-".to_string(),
            };
            let cell = |v: &[(String, Stat)], u: Unit| {
                find(v, m).map_or("-".to_string(), |s| fmt_stat(&s, u))
            };
            vec![
                m.clone(),
                per,
                format!("{}/{}", find(&secs, m).map_or(0, |s| s.reached), rs.len()),
                cell(&secs, Unit::Seconds),
                cell(&ups, Unit::Count),
                cell(&bytes, Unit::Bytes),
            ]
        })
        .collect();
    let mut out = format!(
        "P = {} parameters.\n\n",
        f.params.map_or("?".to_string(), |p| p.to_string())
    );
    out.push_str(&markdown_table(
        &[
            "method",
            "bytes per update",
            "runs reaching the target",
            "seconds to the target",
            "updates to the target",
            "bytes to the target",
        ],
        &rows,
    ));
    out.push('\n');
    out
}

/// Final accuracy at each tau, GRAWA against local SGD.
fn tau_part(
    layout: &Layout,
    ctx: &mut Ctx,
) -> Result<(String, Vec<super::contest::Contest>), ReportError> {
    let mut out = String::from(
        "### Final accuracy against tau\n\n\
         The base setting with tau (local steps between rounds) changed for GRAWA and local SGD; \
         the same wall-clock budget.\n\n",
    );
    let runs: Vec<&RunData> = layout
        .base()
        .map(|b| b.runs.iter().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(layout.communication.iter())
        .filter(|r| TAU_METHODS.contains(&r.summary.algo.as_str()))
        .collect();
    let mut by_tau: BTreeMap<u64, Vec<&RunData>> = BTreeMap::new();
    for r in runs {
        if let Some(t) = r.config.algo.as_ref().and_then(|a| a.tau) {
            by_tau.entry(t).or_default().push(r);
        }
    }
    if by_tau.is_empty() {
        out.push_str("No runs.\n\n");
        return Ok((out, Vec::new()));
    }
    let stats: Vec<(u64, PerMethod, PerMethod)> = by_tau
        .iter()
        .map(|(t, rs)| {
            let groups = by_method(rs.iter().copied());
            let acc = groups
                .iter()
                .map(|(m, rs)| (m.clone(), stat_of(rs, |r| r.summary.test_accuracy)))
                .collect();
            let rounds = groups
                .iter()
                .map(|(m, rs)| (m.clone(), stat_of(rs, |r| r.summary.rounds as f64)))
                .collect();
            (*t, acc, rounds)
        })
        .collect();
    let mut header = vec!["method".to_string()];
    for (t, _, _) in &stats {
        header.push(format!("tau {t}: accuracy (%)"));
        header.push(format!("tau {t}: rounds"));
    }
    let rows: Vec<Vec<String>> = TAU_METHODS
        .iter()
        .map(|m| {
            let mut row = vec![m.to_string()];
            for (_, acc, rounds) in &stats {
                for (v, u) in [(acc, Unit::Percent), (rounds, Unit::Count)] {
                    row.push(
                        v.iter()
                            .find(|(n, _)| n == m)
                            .map_or("-".to_string(), |(_, s)| fmt_stat(s, u)),
                    );
                }
            }
            row
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    out.push_str(&markdown_table(&header, &rows));
    out.push('\n');
    let lines = method_lines(
        &TAU_METHODS,
        stats.iter().map(|(t, acc, _)| (*t as f64, acc.as_slice())),
    );
    let png = stat_chart(
        Axes {
            title: "Final test accuracy against tau (same budget)".to_string(),
            x_label: "tau, local steps between rounds (log scale)".to_string(),
            y_label: "test accuracy (%)".to_string(),
            x_scale: XScale::Log2,
            integer_x: true,
        },
        &lines,
        100.0,
        &ctx.plots,
        "tau",
    )?;
    out.push_str(&ctx.image(png, "accuracy against tau"));
    let cs: Vec<_> = stats
        .iter()
        .flat_map(|(t, acc, _)| contests(&format!("tau {t}"), FINAL_ACCURACY, acc, &["local-sgd"]))
        .collect();
    out.push_str("Contests (claim 4, less frequent communication):\n\n");
    out.push_str(&table(&cs));
    out.push('\n');
    Ok((out, cs))
}
