//! A contest: one GRAWA variant against its competitors on one measure in one setting, judged by
//! the rule of `report::verdict`; and a claim, the contests behind it.

use super::markdown::table as markdown_table;
use super::methods::{fmt_stat, Unit};
use crate::report::verdict::{combine, outcome, verdict, Better, Outcome, Stat, Verdict};

/// What is measured, and which way is better.
#[derive(Clone, Copy, Debug)]
pub struct Measure {
    pub name: &'static str,
    pub better: Better,
    pub unit: Unit,
}

/// One GRAWA variant against its competitors.
#[derive(Clone, Debug)]
pub struct Contest {
    /// Where: the setting, worker count or tau.
    pub setting: String,
    pub measure: Measure,
    pub grawa: String,
    pub stat: Stat,
    /// Each competitor's method and stat.
    pub rivals: Vec<(String, Stat)>,
}

impl Contest {
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.rivals
            .iter()
            .map(|(_, c)| outcome(&self.stat, c, self.measure.better))
            .collect()
    }

    pub fn verdict(&self) -> Verdict {
        verdict(&self.outcomes())
    }

    /// The competitors GRAWA lost to, by name.
    pub fn losses(&self) -> Vec<&str> {
        self.rivals
            .iter()
            .zip(self.outcomes())
            .filter(|(_, o)| *o == Outcome::Loss)
            .map(|((m, _), _)| m.as_str())
            .collect()
    }
}

/// The contests of `methods` (each GRAWA variant present) against `rivals` (those present), with
/// `stat` giving a method's figure; variants or rivals without runs are left out.
pub fn contests(
    setting: &str,
    measure: Measure,
    stats: &[(String, Stat)],
    rivals: &[&str],
) -> Vec<Contest> {
    super::methods::GRAWA
        .iter()
        .filter_map(|g| {
            let (_, stat) = stats.iter().find(|(m, _)| m == g)?;
            Some(Contest {
                setting: setting.to_string(),
                measure,
                grawa: g.to_string(),
                stat: *stat,
                rivals: stats
                    .iter()
                    .filter(|(m, _)| rivals.contains(&m.as_str()))
                    .cloned()
                    .collect(),
            })
        })
        .collect()
}

/// The contests as a Markdown table: where, measure, the variant's figure, each competitor's
/// figure with the outcome, the verdict.
pub fn table(contests: &[Contest]) -> String {
    let rows: Vec<Vec<String>> = contests
        .iter()
        .map(|c| {
            let against: Vec<String> = c
                .rivals
                .iter()
                .zip(c.outcomes())
                .map(|((m, s), o)| format!("{m} {} ({})", fmt_stat(s, c.measure.unit), o.word()))
                .collect();
            let better = match c.measure.better {
                Better::Higher => "higher",
                Better::Lower => "lower",
            };
            vec![
                c.setting.clone(),
                format!("{} ({better} is better)", c.measure.name),
                format!("{} {}", c.grawa, fmt_stat(&c.stat, c.measure.unit)),
                against.join("; "),
                c.verdict().words().to_string(),
            ]
        })
        .collect();
    markdown_table(
        &["where", "measure", "GRAWA", "against (outcome)", "verdict"],
        &rows,
    )
}

/// One of the paper's claims and the contests behind it.
pub struct Claim {
    pub name: &'static str,
    pub what: &'static str,
    pub contests: Vec<Contest>,
}

impl Claim {
    pub fn verdict(&self) -> Verdict {
        combine(
            &self
                .contests
                .iter()
                .map(Contest::verdict)
                .collect::<Vec<_>>(),
        )
    }

    /// The verdict as the summary prints it; a claim without contests is not judged.
    pub fn verdict_words(&self) -> &'static str {
        if self.contests.is_empty() {
            "not judged: no runs"
        } else {
            self.verdict().words()
        }
    }

    /// A one-line account: how many contests held, and the losses by name.
    pub fn evidence(&self) -> String {
        if self.contests.is_empty() {
            return "no runs to judge".to_string();
        }
        let count = |v: Verdict| self.contests.iter().filter(|c| c.verdict() == v).count();
        let mut s = format!(
            "{} contests: {} hold, {} not distinguishable, {} do not",
            self.contests.len(),
            count(Verdict::Holds),
            count(Verdict::NotDistinguishable),
            count(Verdict::DoesNot)
        );
        let losses: Vec<String> = self
            .contests
            .iter()
            .filter(|c| !c.losses().is_empty())
            .map(|c| {
                format!(
                    "{} on {} ({}) loses to {}",
                    c.grawa,
                    c.measure.name,
                    c.setting,
                    c.losses().join(", ")
                )
            })
            .collect();
        if !losses.is_empty() {
            s.push_str(": ");
            s.push_str(&losses.join("; "));
        }
        s
    }
}
