//! Ablations of GRAWA itself: each `ablation/<variant>` folder changes one knob of the base
//! setting's MGRAWA and LGRAWA runs (the norm source, the weight power), compared with the base
//! runs; and MGRAWA against LGRAWA in the base setting. Each pair by Welch's test as in the
//! claims, with Holm's correction over the pairs of the table (no claim rests on them).

use std::collections::BTreeMap;

use super::contest::fmt_p;
use super::crowding::{base_name, base_runs};
use super::markdown::table as markdown_table;
use super::measures::FINAL_ACCURACY;
use super::methods::{by_method, fmt_diff, fmt_stat, is_grawa, Unit};
use crate::report::record::RunRecord;
use crate::report::verdict::{holm, Better, Comparison, Outcome};

/// The knobs of a group as its first GRAWA run records them.
fn knobs(runs: &[&RunRecord]) -> String {
    let Some(r) = runs.iter().find(|r| is_grawa(&r.method())) else {
        return "-".to_string();
    };
    format!(
        "norm source {}, weight power {}",
        r.norm_source.as_deref().unwrap_or("?"),
        r.weight_power.map_or("?".to_string(), |p| p.to_string())
    )
}

/// One pair: its name and the two samples (first minus second).
struct Pair {
    name: String,
    first: String,
    second: String,
    cmp: Comparison,
}

/// The section.
pub fn section(records: &[RunRecord]) -> String {
    let mut out = String::from(
        "## Ablations of GRAWA\n\n\
         The base setting with one GRAWA knob changed, the same budget: the norm source \
         (`accumulated` takes the local steps' gradient norms and saves the probe pass, so it \
         has more time for steps), the weight power (weights proportional to 1/norm^power), and \
         MGRAWA (one weight per worker) against LGRAWA (one per worker and layer). Each pair is \
         the difference of the mean final accuracies with its 95 % interval, by Welch's test, \
         Holm-corrected over the pairs of this table.\n\n",
    );
    let base = base_runs(records);
    if base.is_empty() {
        out.push_str("No base setting.\n\n");
        return out;
    }
    let base_label = format!("base ({})", base_name(records).unwrap_or("?"));
    let mut groups: BTreeMap<&str, Vec<&RunRecord>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.part == "ablation") {
        groups.entry(r.group.as_str()).or_default().push(r);
    }
    let all: Vec<(String, Vec<&RunRecord>)> = std::iter::once((base_label.clone(), base))
        .chain(groups.into_iter().map(|(g, rs)| (g.to_string(), rs)))
        .map(|(g, rs)| {
            (
                g,
                rs.into_iter().filter(|r| is_grawa(&r.method())).collect(),
            )
        })
        .collect();
    let mut rows = Vec::new();
    for (g, rs) in &all {
        for (m, mrs) in by_method(rs.iter().copied()) {
            let acc = FINAL_ACCURACY.stat(&mrs);
            let rounds: Vec<f64> = mrs.iter().map(|r| r.rounds as f64).collect();
            let steps: Vec<f64> = mrs.iter().map(|r| r.steps as f64).collect();
            rows.push(vec![
                g.clone(),
                knobs(rs),
                m.clone(),
                acc.map_or("-".to_string(), |a| {
                    format!("{} (n={})", fmt_stat(&a, Unit::Percent), a.n)
                }),
                fmt_stat(&crate::report::verdict::Stat::of(&rounds), Unit::Count),
                fmt_stat(&crate::report::verdict::Stat::of(&steps), Unit::Count),
            ]);
        }
    }
    out.push_str(&markdown_table(
        &[
            "variant",
            "knobs",
            "method",
            "final accuracy (%)",
            "rounds",
            "steps per worker",
        ],
        &rows,
    ));
    out.push('\n');
    out.push_str(&pairs_table(&all, &base_label));
    out
}

fn accuracies(runs: &[&RunRecord], method: &str) -> Vec<f64> {
    runs.iter()
        .filter(|r| r.method() == method)
        .map(|r| r.test_accuracy)
        .collect()
}

fn pairs_table(all: &[(String, Vec<&RunRecord>)], base_label: &str) -> String {
    let base = &all[0].1;
    let mut methods: Vec<String> = base.iter().map(|r| r.method()).collect();
    methods.sort();
    methods.dedup();
    let mut pairs = Vec::new();
    for (g, rs) in &all[1..] {
        for m in &methods {
            let (v, b) = (accuracies(rs, m), accuracies(base, m));
            if !v.is_empty() && !b.is_empty() {
                pairs.push(Pair {
                    name: format!("{m}: {g} against base"),
                    first: g.clone(),
                    second: "base".to_string(),
                    cmp: Comparison::of(&v, &b, Better::Higher),
                });
            }
        }
    }
    for (a, b) in [("mgrawa", "lgrawa"), ("mgrawa (async)", "lgrawa (async)")] {
        let (x, y) = (accuracies(base, a), accuracies(base, b));
        if !x.is_empty() && !y.is_empty() {
            pairs.push(Pair {
                name: format!("{a} against {b} ({base_label})"),
                first: a.to_string(),
                second: b.to_string(),
                cmp: Comparison::of(&x, &y, Better::Higher),
            });
        }
    }
    let adjusted = holm(&pairs.iter().map(|p| p.cmp.p).collect::<Vec<_>>());
    let rows: Vec<Vec<String>> = pairs
        .iter_mut()
        .zip(adjusted)
        .map(|(p, adj)| {
            p.cmp.p_holm = adj;
            let judged = match p.cmp.outcome() {
                Outcome::ForGrawa => format!("{} better", p.first),
                Outcome::AgainstGrawa => format!("{} better", p.second),
                Outcome::NotResolved => "not resolved".to_string(),
            };
            let ci = if p.cmp.low.is_finite() {
                format!(
                    " [{}, {}]",
                    fmt_diff(p.cmp.low, Unit::Percent),
                    fmt_diff(p.cmp.high, Unit::Percent)
                )
            } else {
                String::new()
            };
            vec![
                p.name.clone(),
                format!("{}{ci}", fmt_diff(p.cmp.diff, Unit::Percent)),
                fmt_p(p.cmp.p_holm),
                judged,
            ]
        })
        .collect();
    let mut out = markdown_table(
        &[
            "comparison",
            "difference of final accuracy (points) [95 % CI]",
            "p (Holm)",
            "outcome",
        ],
        &rows,
    );
    out.push('\n');
    out
}
