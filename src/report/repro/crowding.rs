//! Claim 3 (crowding): GRAWA against DDP, EASGD and LSGD with more workers on the same wall-clock
//! budget: the base setting's runs are the first worker count, `crowding/` holds the others.

use std::collections::BTreeMap;

use super::accuracy::FINAL_ACCURACY;
use super::charts::{stat_chart, Axes};
use super::contest::{contests, table, Claim, Contest};
use super::layout::Layout;
use super::markdown::table as markdown_table;
use super::methods::{by_method, fmt_stat, method_lines, stat_of, Unit};
use super::Ctx;
use crate::report::error::ReportError;
use crate::report::plot::XScale;
use crate::report::runs::RunData;
use crate::report::verdict::Stat;

/// The methods of this part.
const METHODS: [&str; 5] = ["mgrawa", "lgrawa", "ddp", "easgd", "lsgd"];
const RIVALS: [&str; 3] = ["ddp", "easgd", "lsgd"];

/// The section and claim 3 (judged at the worker counts above the base setting's).
pub fn section(layout: &Layout, ctx: &mut Ctx) -> Result<(String, Claim), ReportError> {
    let mut out = String::from(
        "## Claim 3: more crowded workers\n\n\
         The same wall-clock budget and flags as the base setting, with more workers sharing the \
         same cores (each with a smaller shard). The first worker count is the base setting's \
         runs.\n\n",
    );
    let base = layout.base();
    let base_workers = base.and_then(|b| b.runs.first()).map(|r| r.summary.workers);
    let runs: Vec<&RunData> = base
        .map(|b| b.runs.iter().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(layout.crowding.iter())
        .filter(|r| METHODS.contains(&r.summary.algo.as_str()))
        .collect();
    let mut by_workers: BTreeMap<usize, Vec<&RunData>> = BTreeMap::new();
    for r in runs {
        by_workers.entry(r.summary.workers).or_default().push(r);
    }
    if by_workers.is_empty() {
        out.push_str("No runs.\n\n");
        return Ok((out, claim(Vec::new())));
    }
    // Per worker count, each method's final accuracy.
    let stats: Vec<(usize, Vec<(String, Stat)>)> = by_workers
        .iter()
        .map(|(w, rs)| {
            let s = by_method(rs.iter().copied())
                .into_iter()
                .map(|(m, rs)| {
                    let s = stat_of(&rs, |r| r.summary.test_accuracy);
                    (m, s)
                })
                .collect();
            (*w, s)
        })
        .collect();
    let counts: Vec<usize> = stats.iter().map(|(w, _)| *w).collect();
    let mut header = vec!["method".to_string()];
    header.extend(counts.iter().map(|w| format!("{w} workers: accuracy (%)")));
    let rows: Vec<Vec<String>> = METHODS
        .iter()
        .map(|m| {
            let mut row = vec![m.to_string()];
            for (_, s) in &stats {
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
    out.push_str(&markdown_table(&header, &rows));
    out.push('\n');

    let lines = method_lines(
        &METHODS,
        stats.iter().map(|(w, s)| (*w as f64, s.as_slice())),
    );
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
        &ctx.plots,
        "crowding",
    )?;
    out.push_str(&ctx.image(png, "accuracy against workers"));

    let mut all = Vec::new();
    let mut judged = Vec::new();
    for (w, s) in &stats {
        let cs = contests(&format!("{w} workers"), FINAL_ACCURACY, s, &RIVALS);
        if base_workers.is_some_and(|b| *w > b) {
            judged.extend(cs.iter().cloned());
        }
        all.extend(cs);
    }
    out.push_str(&format!(
        "Contests (claim 3 is judged at the counts above the base setting's {} workers):\n\n",
        base_workers.map_or("?".to_string(), |w| w.to_string())
    ));
    out.push_str(&table(&all));
    out.push('\n');
    Ok((out, claim(judged)))
}

fn claim(contests: Vec<Contest>) -> Claim {
    Claim {
        name: "3. advantages kept with crowded workers",
        what: "final test accuracy against DDP, EASGD and LSGD at the larger worker counts",
        contests,
    }
}
