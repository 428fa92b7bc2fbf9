//! Claim 4 (communication): per setting, the measured facts (distributed updates, bytes and
//! modelled link seconds to each target) and the comparisons on updates to the main target
//! between methods whose update count is not fixed by their configuration; and the final
//! accuracy at several tau for GRAWA against local SGD (the base setting's runs are the default
//! tau, `communication/` holds the others).

use std::collections::BTreeMap;

use super::charts::{stat_chart, Axes};
use super::contest::{rows, table, Family};
use super::crowding::base_runs;
use super::markdown::table as markdown_table;
use super::measures::{total_updates, FINAL_ACCURACY, UPDATES_TO_MAIN};
use super::methods::{algo_of, by_method, fmt_value, method_lines, ByMethod, PerMethod, Unit};
use super::setting::Setting;
use super::Charts;
use crate::report::comm::Pattern;
use crate::report::error::ReportError;
use crate::report::plot::XScale;
use crate::report::record::{target_name, RunRecord, MAIN_TARGET, TARGETS};
use crate::report::verdict::Stat;

pub const CLAIM_4A: &str = "4a. fewer distributed updates";
const WHAT_4A: &str = "distributed updates to the 99 % target, against rivals with the same \
communication pattern and tau";
pub const CLAIM_4B: &str = "4b. less frequent communication";
const WHAT_4B: &str = "final test accuracy against local SGD at each tau";

const TAU_ALGOS: [&str; 3] = ["mgrawa", "lgrawa", "local-sgd"];

const FORMULA: &str = "A distributed update is one collective over all parameters: DDP and SAM \
all-reduce the gradients at every local step; local SGD, MGRAWA, LGRAWA and EASGD all-reduce the \
(weighted) parameters once per round; LSGD broadcasts the leader's parameters once per round. \
Under `--schedule async` a round is one worker's exchange with the center (its parameters up, the \
result back: `2 x 4 P`), so an async method counts M rounds where a sync one counts one for the \
same traffic per worker: its rounds are compared with async rivals only. Bytes per update, for M workers and P f32 parameters, are what a bandwidth-optimal collective \
moves in total: a ring all-reduce `2 (M - 1) 4 P`, a broadcast `(M - 1) 4 P`; bytes to a target \
are updates to it times that. Link seconds are the modelled time on the setting's link \
(`--link`), summed from the runs' `link_ms`. Updates are counted at evaluations, so the cadence \
of evaluations is their resolution. These counts follow from each method's configuration (DDP \
communicates every step, EASGD and LSGD every 4, GRAWA every 32): they are facts, not contests. \
Only methods with the same pattern and tau are compared, where the count measures how fast a \
method learns per round.\n\n";

/// The communication pattern and tau of a method's runs (`None` for an unknown algorithm).
fn schedule_of(runs: &[&RunRecord]) -> Option<(Pattern, Option<u64>)> {
    let r = runs.first()?;
    let p = Pattern::of_run(&r.algo, &r.schedule)?;
    Some((p, if p.per_step() { None } else { r.tau }))
}

/// The section and the families of claim 4 (4a per setting, 4b over the tau).
pub fn section(
    records: &[RunRecord],
    settings: &[Setting],
    charts: &mut Option<&mut Charts>,
) -> Result<(String, Vec<Family>), ReportError> {
    let mut out = format!("## Claim 4: communication\n\n{FORMULA}");
    let mut families = Vec::new();
    for s in settings {
        out.push_str(&format!("### {} ({})\n\n", s.name, s.describe()));
        out.push_str(&facts(s));
        let sched: BTreeMap<&str, Option<(Pattern, Option<u64>)>> = s
            .methods
            .iter()
            .map(|(m, rs)| (m.as_str(), schedule_of(rs)))
            .collect();
        let keep = |g: &str, r: &str| {
            let (a, b) = (
                sched.get(g).copied().flatten(),
                sched.get(r).copied().flatten(),
            );
            a.is_some() && a == b
        };
        let family = Family::judge(
            CLAIM_4A,
            WHAT_4A,
            &s.name,
            rows(&s.name, UPDATES_TO_MAIN, &s.methods, &keep),
        );
        out.push_str(&format!(
            "Claim 4a (fewer updates, same pattern and tau only), **{}**:\n\n",
            family.verdict_words()
        ));
        out.push_str(&table(&family.rows));
        out.push('\n');
        families.push(family);
    }
    let (tau_text, tau_family) = tau_part(records, charts)?;
    out.push_str(&tau_text);
    families.push(tau_family);
    Ok((out, families))
}

/// The mean over runs of `f`, printed in `unit`, with the censored count when some runs never
/// reached the target (`f` gives `None` for them).
fn mean_of(runs: &[&RunRecord], unit: Unit, f: impl Fn(&RunRecord) -> Option<f64>) -> String {
    let xs: Vec<f64> = runs.iter().filter_map(|r| f(r)).collect();
    let missed = runs.len() - xs.len();
    if xs.is_empty() {
        return format!("not reached (0/{})", runs.len());
    }
    let v = fmt_value(Stat::of(&xs).mean, unit);
    if missed > 0 {
        format!("{v} ({missed}/{} not reached)", runs.len())
    } else {
        v
    }
}

/// The measured facts per method (means over the runs that reached each target).
fn facts(s: &Setting) -> String {
    let first = s.first();
    let p = first.and_then(|r| r.parameters);
    let mut out = format!(
        "P = {} parameters. Means over the runs that reached each target.\n\n",
        p.map_or("?".to_string(), |p| p.to_string())
    );
    let rows_: Vec<Vec<String>> = s
        .methods
        .iter()
        .map(|(m, rs)| {
            let pattern = rs
                .first()
                .and_then(|r| Pattern::of_run(&r.algo, &r.schedule));
            let workers = rs.first().map_or(0, |r| r.workers);
            let per = match (pattern, p) {
                (Some(pt), Some(n)) => format!(
                    "{} = {}",
                    pt.formula(),
                    fmt_value(pt.bytes_per_update(workers, n), Unit::Bytes)
                ),
                _ => "-".to_string(),
            };
            let per_bytes = match (pattern, p) {
                (Some(pt), Some(n)) => pt.bytes_per_update(workers, n),
                _ => f64::NAN,
            };
            let tau = match pattern {
                Some(pt) if pt.per_step() => "every step".to_string(),
                _ => rs
                    .first()
                    .and_then(|r| r.tau)
                    .map_or("-".to_string(), |t| t.to_string()),
            };
            let mut row = vec![m.clone(), tau, per];
            for i in 0..TARGETS.len() {
                row.push(mean_of(rs, Unit::Count, |r| {
                    r.to_target(i).updates.map(|u| u as f64)
                }));
            }
            row.push(mean_of(rs, Unit::Bytes, |r| {
                r.to_target(MAIN_TARGET)
                    .updates
                    .map(|u| u as f64 * per_bytes)
            }));
            row.push(mean_of(rs, Unit::Seconds, |r| {
                r.to_target(MAIN_TARGET).link_seconds
            }));
            row.push(mean_of(rs, Unit::Count, |r| Some(total_updates(r) as f64)));
            row.push(mean_of(rs, Unit::Seconds, |r| r.link_seconds));
            row
        })
        .collect();
    let main = target_name(MAIN_TARGET);
    let headers: Vec<String> = ["method", "tau", "bytes per update"]
        .iter()
        .map(|s| s.to_string())
        .chain((0..TARGETS.len()).map(|i| format!("updates to {} %", target_name(i))))
        .chain([
            format!("bytes to {main} %"),
            format!("link s to {main} %"),
            "updates in all".to_string(),
            "link s in all".to_string(),
        ])
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    out.push_str(&markdown_table(&headers, &rows_));
    out.push('\n');
    out
}

/// Final accuracy at each tau, GRAWA against local SGD.
fn tau_part(
    records: &[RunRecord],
    charts: &mut Option<&mut Charts>,
) -> Result<(String, Family), ReportError> {
    let mut out = String::from(
        "### Final accuracy against tau\n\n\
         The base setting with tau (local steps between rounds) changed for GRAWA and local SGD; \
         the same wall-clock budget.\n\n",
    );
    let groups = runs_by_tau(records);
    if groups.is_empty() {
        out.push_str("No runs.\n\n");
        return Ok((out, Family::judge(CLAIM_4B, WHAT_4B, "tau", Vec::new())));
    }
    let mut methods: Vec<String> = groups
        .iter()
        .flat_map(|(_, ms)| ms.iter().map(|(m, _)| m.clone()))
        .collect();
    super::methods::sort_methods(&mut methods);
    methods.dedup();
    let stats = tau_stats(&groups);
    out.push_str(&tau_table(&methods, &stats));
    if let Some(c) = charts.as_deref_mut() {
        out.push_str(&tau_chart(&methods, &stats, c)?);
    }
    let keep = |_: &str, r: &str| algo_of(r) == "local-sgd";
    let judged: Vec<_> = groups
        .iter()
        .flat_map(|(t, ms)| rows(&format!("tau {t}"), FINAL_ACCURACY, ms, &keep))
        .collect();
    let family = Family::judge(CLAIM_4B, WHAT_4B, "tau", judged);
    out.push_str(&format!(
        "Claim 4b (less frequent communication), **{}**:\n\n",
        family.verdict_words()
    ));
    out.push_str(&table(&family.rows));
    out.push('\n');
    Ok((out, family))
}

/// The runs of the tau comparison (the base setting's and `communication/`'s, GRAWA and local
/// SGD only) by tau, then by method; smallest tau first.
fn runs_by_tau(records: &[RunRecord]) -> Vec<(u64, ByMethod<'_>)> {
    let mut by_tau: BTreeMap<u64, Vec<&RunRecord>> = BTreeMap::new();
    for r in base_runs(records)
        .into_iter()
        .chain(records.iter().filter(|r| r.part == "communication"))
        .filter(|r| TAU_ALGOS.contains(&r.algo.as_str()))
    {
        if let Some(t) = r.tau {
            by_tau.entry(t).or_default().push(r);
        }
    }
    by_tau
        .into_iter()
        .map(|(t, rs)| (t, by_method(rs)))
        .collect()
}

/// Per tau, each method's final accuracy and its rounds.
fn tau_stats(groups: &[(u64, ByMethod)]) -> Vec<(u64, PerMethod, PerMethod)> {
    groups
        .iter()
        .map(|(t, ms)| {
            let acc = ms
                .iter()
                .filter_map(|(m, rs)| Some((m.clone(), FINAL_ACCURACY.stat(rs)?)))
                .collect();
            let rounds = ms
                .iter()
                .map(|(m, rs)| {
                    let xs: Vec<f64> = rs.iter().map(|r| r.rounds as f64).collect();
                    (m.clone(), Stat::of(&xs))
                })
                .collect();
            (*t, acc, rounds)
        })
        .collect()
}

/// The chart of final accuracy against tau, one line per method; returns its image link.
fn tau_chart(
    methods: &[String],
    stats: &[(u64, PerMethod, PerMethod)],
    c: &mut Charts,
) -> Result<String, ReportError> {
    let lines = method_lines(
        methods,
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
        &c.plots,
        "tau",
    )?;
    Ok(c.image(png, "accuracy against tau"))
}

/// Accuracy and rounds per method at each tau.
fn tau_table(methods: &[String], stats: &[(u64, PerMethod, PerMethod)]) -> String {
    let mut header = vec!["method".to_string()];
    for (t, _, _) in stats {
        header.push(format!("tau {t}: accuracy (%)"));
        header.push(format!("tau {t}: rounds"));
    }
    let table_rows: Vec<Vec<String>> = methods
        .iter()
        .map(|m| {
            let mut row = vec![m.clone()];
            for (_, acc, rounds) in stats {
                for (v, u) in [(acc, Unit::Percent), (rounds, Unit::Count)] {
                    row.push(
                        v.iter()
                            .find(|(n, _)| n == m)
                            .map_or("-".to_string(), |(_, s)| super::methods::fmt_stat(s, u)),
                    );
                }
            }
            row
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut out = markdown_table(&header, &table_rows);
    out.push('\n');
    out
}
