//! `compare`'s verdict: every GRAWA method of the comparison against every other method on final
//! test accuracy, by the reproduction report's rule (`report::verdict`: Welch's difference with
//! its 95 % interval, Holm's correction over all the pairs, supported / contradicted / not
//! resolved). Shown only when the runs hold both a GRAWA method and another one.

use super::text_table::{markdown_table, text_table};
use super::verdict::{is_grawa, judge, Better, Comparison as Pair, Verdict};

/// Each GRAWA method against each rival: names and the comparison.
type Pairs = Vec<(String, String, Pair)>;

/// Each method's final test accuracies (one per run), by method name.
pub type Accuracies = [(String, Vec<f64>)];

/// The pairs and the verdict, or `None` without both sides.
fn pairs(methods: &Accuracies) -> Option<(Pairs, Verdict)> {
    let mut out = Vec::new();
    for (g, ga) in methods.iter().filter(|(m, _)| is_grawa(m)) {
        for (r, ra) in methods.iter().filter(|(m, _)| !is_grawa(m)) {
            out.push((g.clone(), r.clone(), Pair::of(ga, ra, Better::Higher)));
        }
    }
    if out.is_empty() {
        return None;
    }
    let mut ps: Vec<Pair> = out.iter().map(|(_, _, p)| *p).collect();
    let verdict = judge(&mut ps);
    for (row, p) in out.iter_mut().zip(ps) {
        row.2 = p;
    }
    Some((out, verdict))
}

const HEADER: [&str; 5] = [
    "GRAWA - rival",
    "test acc difference (points)",
    "95 % CI",
    "p (Holm)",
    "outcome",
];

fn cells(pairs: &[(String, String, Pair)]) -> Vec<Vec<String>> {
    let pts = |v: f64| {
        if v.is_finite() {
            format!("{:+.2}", 100.0 * v)
        } else {
            "-".to_string()
        }
    };
    pairs
        .iter()
        .map(|(g, r, p)| {
            vec![
                format!("{g} - {r}"),
                pts(p.diff),
                if p.low.is_finite() {
                    format!("[{}, {}]", pts(p.low), pts(p.high))
                } else {
                    "- (fewer than 2 runs)".to_string()
                },
                format!("{:.3}", p.p_holm),
                p.outcome().words().to_string(),
            ]
        })
        .collect()
}

fn title(n: usize, verdict: Verdict) -> String {
    format!(
        "GRAWA against the others on final test accuracy (Welch's t, p Holm-corrected over {n} \
         pair{}): {}",
        if n == 1 { "" } else { "s" },
        verdict.words()
    )
}

/// The verdict block for the terminal (empty without both sides).
pub fn verdict_text(methods: &Accuracies) -> String {
    let Some((pairs, verdict)) = pairs(methods) else {
        return String::new();
    };
    format!(
        "\n{}\n{}",
        title(pairs.len(), verdict),
        text_table(&HEADER, &cells(&pairs))
    )
}

/// The verdict block in Markdown (empty without both sides).
pub fn verdict_markdown(methods: &Accuracies) -> String {
    let Some((pairs, verdict)) = pairs(methods) else {
        return String::new();
    };
    format!(
        "\n### Verdict\n\n{}.\n\n{}",
        title(pairs.len(), verdict),
        markdown_table(&HEADER, &cells(&pairs))
    )
}
