//! Claim 2b (flatter optima): lambda_max, the Ritz sum and Hutchinson's trace at the end of each
//! accuracy run, per setting; the comparisons on lambda_max; and how well each measure's order of
//! the methods agrees with the authors' published order (Spearman's rho).

use super::contest::{all_pairs, rows, table, Family, Measure};
use super::markdown::table as markdown_table;
use super::measures::{HUTCHINSON, LAMBDA_MAX, RITZ_SUM};
use super::methods::{fmt_stat, fmt_value, Unit};
use super::setting::Setting;
use crate::report::rank::{spearman, spearman_p};
use crate::report::record::RunRecord;

pub const CLAIM_2B: &str = "2b. flatter optima";
const WHAT_2B: &str = "lambda_max at the end of the budget";

/// The authors' figures (DenseNet-121, CIFAR-100, 8 workers; docs/design.md section 3):
/// method, lambda_max, Ritz sum.
pub const PUBLISHED: [Published; 6] = [
    ("ddp", 33.9, 436.0),
    ("ddp-sam", 28.5, 634.0),
    ("easgd", 9.5, 194.0),
    ("lsgd", 10.8, 195.0),
    ("mgrawa", 10.9, 165.0),
    ("lgrawa", 13.3, 177.0),
];

/// One published row: method, lambda_max, Ritz sum.
type Published = (&'static str, f64, f64);

/// Which published figure a measure is ranked against.
type PaperFigure = fn(&Published) -> f64;

/// Our measures and the published figure each is ranked against: lambda_max against the paper's
/// lambda_max; the Ritz sum and Hutchinson's trace (both stand for the trace) against its Ritz sum.
const AGAINST: [(Measure, &str, PaperFigure); 3] = [
    (LAMBDA_MAX, "paper lambda_max", |p| p.1),
    (RITZ_SUM, "paper Ritz sum", |p| p.2),
    (HUTCHINSON, "paper Ritz sum", |p| p.2),
];

/// How flatness was measured in a setting.
fn protocol(s: &Setting) -> String {
    let mut seen: Vec<&str> = Vec::new();
    let (mut with, mut total) = (0, 0);
    for r in s.runs() {
        total += 1;
        if r.flatness_protocol.is_empty() {
            continue;
        }
        with += 1;
        if !seen.contains(&r.flatness_protocol.as_str()) {
            seen.push(&r.flatness_protocol);
        }
    }
    format!(
        "Measured on {with} of {total} runs: {}.\n\n",
        if seen.is_empty() {
            "none".to_string()
        } else {
            seen.join("; ")
        }
    )
}

/// The section and the families of claim 2b (one per setting).
pub fn section(settings: &[Setting]) -> (String, Vec<Family>) {
    let mut out = String::from(
        "## Claim 2: flatness\n\n\
         At the evaluated model of each accuracy run, over fixed un-augmented training images, \
         BatchNorm in eval mode (`grawa-train flatness`): lambda_max is the largest Ritz value \
         over the Lanczos starts, the Ritz sum the mean over starts of the sum of Ritz values (it \
         grows with the number of iterations, so it compares only runs measured alike), and \
         Hutchinson's estimate of the Hessian's trace. Lower is flatter. Claim 2b is judged on \
         lambda_max, the paper's headline figure.\n\n",
    );
    let mut families = Vec::new();
    for s in settings {
        out.push_str(&format!("### {} ({})\n\n", s.name, s.describe()));
        out.push_str(&protocol(s));
        let rows_: Vec<Vec<String>> = s
            .methods
            .iter()
            .map(|(m, rs)| {
                let mut row = vec![m.clone()];
                for (measure, _, _) in &AGAINST {
                    row.push(measure.stat(rs).map_or("-".to_string(), |st| {
                        format!("{} (n={})", fmt_stat(&st, Unit::Real), st.n)
                    }));
                }
                row
            })
            .collect();
        out.push_str(&markdown_table(
            &["method", "lambda_max", "Ritz sum", "Hutchinson trace"],
            &rows_,
        ));
        out.push('\n');
        let family = Family::judge(
            CLAIM_2B,
            WHAT_2B,
            &s.name,
            rows(&s.name, LAMBDA_MAX, &s.methods, &all_pairs),
        );
        out.push_str(&format!(
            "Claim 2b (flatter optima), **{}**:\n\n",
            family.verdict_words()
        ));
        out.push_str(&table(&family.rows));
        out.push('\n');
        families.push(family);
    }
    out.push_str(&agreement(settings));
    out.push_str(&published(settings));
    (out, families)
}

/// For each paper method, the setting's method that stands for it: the asynchronous variant of a
/// GRAWA algorithm when there is one (the paper's MGRAWA and LGRAWA are asynchronous), else the
/// method of that name.
fn stand_in<'s, 'a>(s: &'s Setting<'a>, paper: &str) -> Option<&'s [&'a RunRecord]> {
    let async_name = format!("{paper} (async)");
    let find = |name: &str| {
        s.methods
            .iter()
            .find(|(m, _)| m == name)
            .map(|(_, rs)| rs.as_slice())
    };
    find(&async_name).or_else(|| find(paper))
}

/// Spearman's rho of each measure's mean per method with the paper's figure, per setting.
fn agreement(settings: &[Setting]) -> String {
    let mut rows_ = Vec::new();
    for s in settings {
        for (measure, paper_name, paper) in &AGAINST {
            let pairs: Vec<(&str, f64, f64)> = PUBLISHED
                .iter()
                .filter_map(|p| {
                    let ours = measure.stat(stand_in(s, p.0)?)?.mean;
                    ours.is_finite().then(|| (p.0, ours, paper(p)))
                })
                .collect();
            if pairs.len() < 3 {
                continue;
            }
            let ours: Vec<f64> = pairs.iter().map(|p| p.1).collect();
            let theirs: Vec<f64> = pairs.iter().map(|p| p.2).collect();
            let rho = spearman(&ours, &theirs);
            rows_.push(vec![
                s.name.clone(),
                format!("{} against {paper_name}", measure.name),
                pairs.iter().map(|p| p.0).collect::<Vec<_>>().join(", "),
                format!("{rho:.2}"),
                spearman_p(&ours, &theirs).map_or("-".to_string(), |p| format!("{p:.3}")),
            ]);
        }
    }
    let mut out = String::from(
        "### Rank agreement with the paper's order\n\n\
         Spearman's rho (ties averaged) between our mean figure per method and the paper's, over \
         the methods both have (MGRAWA and LGRAWA: the asynchronous runs where there are any, as \
         in the paper). 1 is the same order, -1 the reverse; p is the exact share of all \
         orderings that agree at least as well (one-sided). Hutchinson's trace is ranked against \
         the paper's Ritz sum, its stand-in for the trace.\n\n",
    );
    if rows_.is_empty() {
        out.push_str("Not enough methods with flatness figures (three are needed).\n\n");
        return out;
    }
    out.push_str(&markdown_table(
        &["setting", "order of", "methods", "rho", "p"],
        &rows_,
    ));
    out.push('\n');
    out
}

/// The authors' figures beside our means, for orientation only (another model, data set, worker
/// count and iteration count).
fn published(settings: &[Setting]) -> String {
    let mut header = vec![
        "method".to_string(),
        "paper lambda_max".to_string(),
        "paper Ritz sum".to_string(),
    ];
    for s in settings {
        header.push(format!("{} lambda_max", s.name));
        header.push(format!("{} Ritz sum", s.name));
    }
    let rows_: Vec<Vec<String>> = PUBLISHED
        .iter()
        .map(|p| {
            let mut row = vec![p.0.to_string(), format!("{}", p.1), format!("{}", p.2)];
            for s in settings {
                for (measure, _, _) in &AGAINST[..2] {
                    row.push(
                        stand_in(s, p.0)
                            .and_then(|rs| measure.stat(rs))
                            .map_or("-".to_string(), |st| fmt_value(st.mean, Unit::Real)),
                    );
                }
            }
            row
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut out = String::from(
        "### Beside the published figures\n\n\
         The authors' figures are for DenseNet-121 on CIFAR-100 with 8 workers (Lanczos over 100 \
         iterations); ours are the means above, for much smaller models, so only the order of the \
         methods can be compared, not the values.\n\n",
    );
    out.push_str(&markdown_table(&header, &rows_));
    out.push('\n');
    out
}
