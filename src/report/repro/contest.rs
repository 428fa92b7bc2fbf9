//! Comparisons and claims: each GRAWA method against each rival on one measure in one place
//! ([`Row`], judged by `report::verdict`), and a claim's family of comparisons with its verdict
//! ([`Family`]).

use super::markdown::table as markdown_table;
use super::methods::{fmt_diff, fmt_stat, is_grawa, Unit};
use crate::report::record::RunRecord;
use crate::report::verdict::{judge, Better, Comparison, Outcome, Stat, Verdict};

/// A run's value of a measure and whether it is censored at the budget; `None` when the run has
/// no such value (no flatness measured).
pub type Pick = fn(&RunRecord) -> Option<(f64, bool)>;

/// What is measured, which way is better, and how to read it from a run.
#[derive(Clone, Copy)]
pub struct Measure {
    pub name: &'static str,
    pub better: Better,
    pub unit: Unit,
    pub pick: Pick,
}

impl Measure {
    /// The values of `runs` that have one, and how many of them are censored.
    pub fn values(&self, runs: &[&RunRecord]) -> (Vec<f64>, usize) {
        let picked: Vec<(f64, bool)> = runs.iter().filter_map(|r| (self.pick)(r)).collect();
        let censored = picked.iter().filter(|(_, c)| *c).count();
        (picked.into_iter().map(|(v, _)| v).collect(), censored)
    }

    /// The stat of `runs`, `None` when none has a value.
    pub fn stat(&self, runs: &[&RunRecord]) -> Option<Stat> {
        let (xs, censored) = self.values(runs);
        (!xs.is_empty()).then(|| Stat::of_censored(&xs, censored))
    }

    fn direction(&self) -> &'static str {
        match self.better {
            Better::Higher => "higher is better",
            Better::Lower => "lower is better",
        }
    }
}

/// One GRAWA method against one rival.
#[derive(Clone)]
pub struct Row {
    /// Where: the setting, worker count or tau.
    pub place: String,
    pub measure: Measure,
    pub grawa: String,
    pub grawa_stat: Stat,
    pub rival: String,
    pub rival_stat: Stat,
    pub cmp: Comparison,
}

/// Every GRAWA method of `methods` against every rival of `methods` that `keep(grawa, rival)`
/// accepts, on `measure`; methods without a value are left out. p-values are Welch's, not yet
/// corrected (a [`Family`] does that).
pub fn rows(
    place: &str,
    measure: Measure,
    methods: &[(String, Vec<&RunRecord>)],
    keep: &dyn Fn(&str, &str) -> bool,
) -> Vec<Row> {
    let with: Vec<(&String, Vec<f64>, Stat)> = methods
        .iter()
        .filter_map(|(m, rs)| {
            let (xs, censored) = measure.values(rs);
            (!xs.is_empty()).then(|| (m, xs.clone(), Stat::of_censored(&xs, censored)))
        })
        .collect();
    let mut out = Vec::new();
    for (g, gx, gs) in with.iter().filter(|(m, _, _)| is_grawa(m)) {
        for (r, rx, rs) in with.iter().filter(|(m, _, _)| !is_grawa(m)) {
            if !keep(g, r) {
                continue;
            }
            out.push(Row {
                place: place.to_string(),
                measure,
                grawa: g.to_string(),
                grawa_stat: *gs,
                rival: r.to_string(),
                rival_stat: *rs,
                cmp: Comparison::of(gx, rx, measure.better),
            });
        }
    }
    out
}

/// Every pair: no comparison is left out.
pub fn all_pairs(_: &str, _: &str) -> bool {
    true
}

/// The comparisons as a Markdown table: where, measure, each side's mean ± std (n), the
/// difference with its plain 95 % interval, Welch's p, Holm's p and the outcome; nothing for
/// none (the verdict above it says why).
pub fn table(rows: &[Row]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let u = r.measure.unit;
            let c = &r.cmp;
            let interval = if c.low.is_finite() {
                format!(
                    "{} [{}, {}]",
                    fmt_diff(c.diff, u),
                    fmt_diff(c.low, u),
                    fmt_diff(c.high, u)
                )
            } else {
                format!("{} [-]", fmt_diff(c.diff, u))
            };
            vec![
                r.place.clone(),
                format!("{} ({})", r.measure.name, r.measure.direction()),
                format!(
                    "{} {} (n={})",
                    r.grawa,
                    fmt_stat(&r.grawa_stat, u),
                    r.grawa_stat.n
                ),
                format!(
                    "{} {} (n={})",
                    r.rival,
                    fmt_stat(&r.rival_stat, u),
                    r.rival_stat.n
                ),
                interval,
                fmt_p(c.p),
                fmt_p(c.p_holm),
                c.outcome().words().to_string(),
            ]
        })
        .collect();
    markdown_table(
        &[
            "where",
            "measure",
            "GRAWA",
            "rival",
            "GRAWA - rival [95 % CI]",
            "p",
            "p (Holm)",
            "outcome",
        ],
        &cells,
    )
}

/// A p-value with 2 significant digits (`0.031`, `2.4e-5`).
pub fn fmt_p(p: f64) -> String {
    if !p.is_finite() {
        "-".to_string()
    } else if p >= 0.001 || p == 0.0 {
        format!("{:.1$}", p, if p >= 0.1 { 2 } else { 3 })
    } else {
        format!("{p:.1e}")
    }
}

/// One verdict: a claim in one place, with the comparisons behind it corrected together.
pub struct Family {
    pub claim: &'static str,
    pub what: &'static str,
    pub place: String,
    pub rows: Vec<Row>,
    pub verdict: Verdict,
}

impl Family {
    /// Judges `rows` as one family (Holm's correction over them all).
    pub fn judge(claim: &'static str, what: &'static str, place: &str, mut rows: Vec<Row>) -> Self {
        let mut cmps: Vec<Comparison> = rows.iter().map(|r| r.cmp).collect();
        let verdict = judge(&mut cmps);
        for (r, c) in rows.iter_mut().zip(cmps) {
            r.cmp = c;
        }
        Family {
            claim,
            what,
            place: place.to_string(),
            rows,
            verdict,
        }
    }

    /// The verdict as the summary prints it; a family without comparisons (no runs of the
    /// measure, or no rival of the same kind) is not judged.
    pub fn verdict_words(&self) -> &'static str {
        if self.rows.is_empty() {
            "not judged: no comparable runs"
        } else {
            self.verdict.words()
        }
    }

    /// One line: the count of each outcome, then every comparison against GRAWA and the one
    /// closest to being for it, with effect sizes and intervals.
    pub fn evidence(&self) -> String {
        if self.rows.is_empty() {
            return "no comparison".to_string();
        }
        let count = |o: Outcome| self.rows.iter().filter(|r| r.cmp.outcome() == o).count();
        let mut s = format!(
            "{} comparisons: {} for GRAWA, {} not resolved, {} against",
            self.rows.len(),
            count(Outcome::ForGrawa),
            count(Outcome::NotResolved),
            count(Outcome::AgainstGrawa)
        );
        let against: Vec<String> = self
            .rows
            .iter()
            .filter(|r| r.cmp.outcome() == Outcome::AgainstGrawa)
            .map(effect)
            .collect();
        if !against.is_empty() {
            s.push_str(&format!("; against: {}", against.join("; ")));
        }
        if self.verdict != Verdict::Supported {
            let weakest = self
                .rows
                .iter()
                .filter(|r| r.cmp.outcome() == Outcome::NotResolved)
                .max_by(|a, b| a.cmp.p_holm.total_cmp(&b.cmp.p_holm));
            if let Some(r) = weakest {
                s.push_str(&format!("; least resolved: {}", effect(r)));
            }
        }
        s
    }
}

/// `mgrawa vs ddp on seconds to 99 % (fmnist): -12.3 s [-20.1, -4.5], p (Holm) 0.021`.
fn effect(r: &Row) -> String {
    let u = r.measure.unit;
    let ci = if r.cmp.low.is_finite() {
        format!(" [{}, {}]", fmt_diff(r.cmp.low, u), fmt_diff(r.cmp.high, u))
    } else {
        String::new()
    };
    format!(
        "{} vs {} on {} ({}): {}{ci}, p (Holm) {}",
        r.grawa,
        r.rival,
        r.measure.name,
        r.place,
        fmt_diff(r.cmp.diff, u),
        fmt_p(r.cmp.p_holm)
    )
}
