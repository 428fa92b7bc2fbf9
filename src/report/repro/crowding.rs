//! Claim 3 (crowding): GRAWA against DDP, EASGD and LSGD with more workers and with uneven worker
//! speeds on the same wall-clock budget. The base setting's runs are the first place;
//! `crowding/` holds the others.

use std::collections::BTreeMap;

use super::charts::{stat_chart, Axes};
use super::contest::{rows, table, Family};
use super::markdown::table as markdown_table;
use super::measures::FINAL_ACCURACY;
use super::methods::{algo_of, by_method, fmt_stat, method_lines, sort_methods, ByMethod, Unit};
use super::Charts;
use crate::report::error::ReportError;
use crate::report::plot::XScale;
use crate::report::record::RunRecord;
use crate::report::verdict::Stat;

pub const CLAIM_3: &str = "3. advantages kept with crowded workers";
const WHAT_3: &str =
    "final test accuracy against DDP, EASGD and LSGD with more workers or uneven worker speeds";

/// The algorithms of this part, and GRAWA's rivals in it.
const ALGOS: [&str; 5] = ["mgrawa", "lgrawa", "ddp", "easgd", "lsgd"];
const RIVALS: [&str; 3] = ["ddp", "easgd", "lsgd"];

/// The setting the crowding and communication parts vary: their runs' group.
pub fn base_name(records: &[RunRecord]) -> Option<&str> {
    records
        .iter()
        .find(|r| (r.part == "crowding" || r.part == "communication") && !r.group.is_empty())
        .map(|r| r.group.as_str())
}

/// The base setting's runs.
pub fn base_runs(records: &[RunRecord]) -> Vec<&RunRecord> {
    let Some(base) = base_name(records) else {
        return Vec::new();
    };
    records
        .iter()
        .filter(|r| r.part == "accuracy" && r.group == base)
        .collect()
}

/// A worker count and worker speeds (empty: all at full speed).
type Place = (usize, String);

/// Where a crowding run sits: its worker count and speeds.
fn place(r: &RunRecord) -> Place {
    (r.workers, r.worker_speed.clone())
}

fn place_name((workers, speeds): &(usize, String)) -> String {
    if speeds.is_empty() {
        format!("{workers} workers")
    } else {
        format!("{workers} workers, speeds {}", speeds.replace(';', ","))
    }
}

/// The section and the family of claim 3 (judged away from the base setting's place).
pub fn section(
    records: &[RunRecord],
    charts: &mut Option<&mut Charts>,
) -> Result<(String, Family), ReportError> {
    let mut out = String::from(
        "## Claim 3: more crowded workers\n\n\
         The same wall-clock budget and flags as the base setting, with more workers sharing the \
         same cores (each with a smaller shard), or with some workers slowed (`--worker-speed`: \
         a worker of speed f sleeps its step time times 1/f - 1 after each step). The first place \
         is the base setting's runs.\n\n",
    );
    let base = base_runs(records);
    let base_place = base.first().map(|r| place(r));
    let runs: Vec<&RunRecord> = base
        .into_iter()
        .chain(records.iter().filter(|r| r.part == "crowding"))
        .filter(|r| ALGOS.contains(&r.algo.as_str()))
        .collect();
    let mut by_place: BTreeMap<(usize, String), Vec<&RunRecord>> = BTreeMap::new();
    for r in runs {
        by_place.entry(place(r)).or_default().push(r);
    }
    if by_place.is_empty() {
        out.push_str("No runs.\n\n");
        return Ok((out, Family::judge(CLAIM_3, WHAT_3, "crowding", Vec::new())));
    }
    let places: Vec<(Place, ByMethod)> = by_place
        .into_iter()
        .map(|(p, rs)| (p, by_method(rs)))
        .collect();
    let mut methods: Vec<String> = places
        .iter()
        .flat_map(|(_, ms)| ms.iter().map(|(m, _)| m.clone()))
        .collect();
    sort_methods(&mut methods);
    methods.dedup();
    let stats: Vec<(String, Vec<(String, Stat)>)> = places
        .iter()
        .map(|(p, ms)| {
            let s = ms
                .iter()
                .filter_map(|(m, rs)| Some((m.clone(), FINAL_ACCURACY.stat(rs)?)))
                .collect();
            (place_name(p), s)
        })
        .collect();
    out.push_str(&accuracy_table(&methods, &stats));
    if let Some(c) = charts.as_deref_mut() {
        out.push_str(&chart(&places, &methods, c)?);
    }
    let mut judged = Vec::new();
    for (p, ms) in &places {
        if Some(p) == base_place.as_ref() {
            continue;
        }
        let keep = |_: &str, r: &str| RIVALS.contains(&algo_of(r));
        judged.extend(rows(&place_name(p), FINAL_ACCURACY, ms, &keep));
    }
    let family = Family::judge(CLAIM_3, WHAT_3, "crowding", judged);
    out.push_str(&format!(
        "Claim 3, judged away from the base setting's {}: **{}**\n\n",
        base_place.as_ref().map_or("?".to_string(), place_name),
        family.verdict_words()
    ));
    out.push_str(&table(&family.rows));
    out.push('\n');
    Ok((out, family))
}

/// Final accuracy against the worker count (runs with uneven speeds are not drawn: they share a
/// worker count with even ones).
fn chart(
    places: &[(Place, ByMethod)],
    methods: &[String],
    charts: &mut Charts,
) -> Result<String, ReportError> {
    let even: Vec<(f64, Vec<(String, Stat)>)> = places
        .iter()
        .filter(|((_, speeds), _)| speeds.is_empty())
        .map(|((w, _), ms)| {
            let s = ms
                .iter()
                .filter_map(|(m, rs)| Some((m.clone(), FINAL_ACCURACY.stat(rs)?)))
                .collect();
            (*w as f64, s)
        })
        .collect();
    let lines = method_lines(methods, even.iter().map(|(w, s)| (*w, s.as_slice())));
    let png = stat_chart(
        Axes {
            title: "Final test accuracy against workers (same budget)".to_string(),
            x_label: "workers (log scale)".to_string(),
            y_label: "test accuracy (%)".to_string(),
            x_scale: XScale::Log2,
            integer_x: true,
        },
        &lines,
        100.0,
        &charts.plots,
        "crowding",
    )?;
    Ok(charts.image(png, "accuracy against workers"))
}

/// Each method's final accuracy at each place.
fn accuracy_table(methods: &[String], stats: &[(String, Vec<(String, Stat)>)]) -> String {
    let mut header = vec!["method".to_string()];
    header.extend(stats.iter().map(|(p, _)| format!("{p}: accuracy (%)")));
    let table_rows: Vec<Vec<String>> = methods
        .iter()
        .map(|m| {
            let mut row = vec![m.clone()];
            for (_, s) in stats {
                row.push(
                    s.iter()
                        .find(|(n, _)| n == m)
                        .map_or("-".to_string(), |(_, s)| {
                            format!("{} (n={})", fmt_stat(s, Unit::Percent), s.n)
                        }),
                );
            }
            row
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut out = markdown_table(&header, &table_rows);
    out.push('\n');
    out
}
