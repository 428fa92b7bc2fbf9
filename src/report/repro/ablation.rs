//! Ablations of GRAWA itself: each `ablation/<variant>` folder changes one knob of the base
//! setting's MGRAWA and LGRAWA runs (the norm source, the weight power), compared with the base
//! runs; and MGRAWA against LGRAWA in the base setting. The same rule as the claims, without a
//! claim: one variant is better when its mean beats the other's by more than the larger std.

use super::accuracy::FINAL_ACCURACY;
use super::layout::{Group, Layout};
use super::markdown::table as markdown_table;
use super::methods::{by_method, fmt_stat, stat_of, Unit, GRAWA};
use crate::report::runs::RunData;
use crate::report::verdict::{outcome, Better, Outcome, Stat};

/// The knobs of a group as its first run's config records them.
fn knobs(runs: &[RunData]) -> String {
    let grawa = runs
        .iter()
        .find(|r| GRAWA.contains(&r.summary.algo.as_str()));
    let Some(a) = grawa.and_then(|r| r.config.algo.as_ref()) else {
        return "-".to_string();
    };
    format!(
        "norm source {}, weight power {}",
        a.norm_source.as_deref().unwrap_or("?"),
        a.weight_power.map_or("?".to_string(), |p| p.to_string())
    )
}

/// Per GRAWA method: its final accuracy, rounds and steps per worker.
type MethodStats = Vec<(String, [Stat; 3])>;

fn stats(runs: &[RunData]) -> MethodStats {
    by_method(
        runs.iter()
            .filter(|r| GRAWA.contains(&r.summary.algo.as_str())),
    )
    .into_iter()
    .map(|(m, rs)| {
        let s = [
            stat_of(&rs, |r| r.summary.test_accuracy),
            stat_of(&rs, |r| r.summary.rounds as f64),
            stat_of(&rs, |r| r.summary.steps as f64),
        ];
        (m, s)
    })
    .collect()
}

fn judged(a: &str, b: &str, o: Outcome) -> String {
    match o {
        Outcome::Win => format!("{a} better"),
        Outcome::Loss => format!("{b} better"),
        Outcome::Tie => "not distinguishable within seed spread".to_string(),
    }
}

/// The section.
pub fn section(layout: &Layout) -> String {
    let mut out = String::from(
        "## Ablations of GRAWA\n\n\
         The base setting with one GRAWA knob changed, the same budget: the norm source \
         (`accumulated` takes the local steps' gradient norms and saves the probe pass, so it \
         has more time for steps), the weight power (weights proportional to 1/norm^power), and \
         MGRAWA (one weight per worker) against LGRAWA (one per worker and layer). One variant is \
         better when its mean final accuracy beats the other's by more than the larger std.\n\n",
    );
    let Some(base) = layout.base() else {
        out.push_str("No base setting.\n\n");
        return out;
    };
    let base_group = Group {
        name: format!("base ({})", base.name),
        runs: base.runs.clone(),
    };
    let groups: Vec<&Group> = std::iter::once(&base_group)
        .chain(layout.ablations.iter())
        .collect();
    let all: Vec<(&Group, MethodStats)> = groups.iter().map(|g| (*g, stats(&g.runs))).collect();
    let mut rows = Vec::new();
    for (g, s) in &all {
        for (m, [acc, rounds, steps]) in s {
            rows.push(vec![
                g.name.clone(),
                knobs(&g.runs),
                m.clone(),
                format!("{} (n={})", fmt_stat(acc, Unit::Percent), acc.n),
                fmt_stat(rounds, Unit::Count),
                fmt_stat(steps, Unit::Count),
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

    let base_stats = &all[0].1;
    let find = |s: &[(String, [Stat; 3])], m: &str| s.iter().find(|(n, _)| n == m).map(|x| x.1[0]);
    let mut pairs = Vec::new();
    for (g, s) in &all[1..] {
        for m in GRAWA {
            if let (Some(v), Some(b)) = (find(s, m), find(base_stats, m)) {
                pairs.push(vec![
                    format!("{m}: {} against base", g.name),
                    judged(&g.name, "base", outcome(&v, &b, Better::Higher)),
                ]);
            }
        }
    }
    if let (Some(mg), Some(lg)) = (find(base_stats, "mgrawa"), find(base_stats, "lgrawa")) {
        pairs.push(vec![
            "mgrawa against lgrawa (base)".to_string(),
            judged("mgrawa", "lgrawa", outcome(&mg, &lg, FINAL_ACCURACY.better)),
        ]);
    }
    out.push_str(&markdown_table(&["comparison", "final accuracy"], &pairs));
    out.push('\n');
    out
}
