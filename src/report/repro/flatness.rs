//! Claim 2 (flatter optima): lambda_max, the Ritz sum and Hutchinson's trace at the end of each
//! accuracy run, per setting, beside the authors' published figures.

use super::accuracy::rivals_of;
use super::contest::{contests, table, Claim, Measure};
use super::markdown::table as markdown_table;
use super::methods::{fmt_stat, fmt_value, stat_of, Unit};
use super::setting::Facts;
use crate::report::runs::RunData;
use crate::report::verdict::{Better, Stat};

/// The authors' figures (DenseNet-121, CIFAR-100, 8 workers; docs/design.md section 3):
/// method, lambda_max, Ritz sum.
pub const PUBLISHED: [(&str, f64, f64); 6] = [
    ("ddp", 33.9, 436.0),
    ("ddp-sam", 28.5, 634.0),
    ("easgd", 9.5, 194.0),
    ("lsgd", 10.8, 195.0),
    ("mgrawa", 10.9, 165.0),
    ("lgrawa", 13.3, 177.0),
];

type Pick = fn(&RunData) -> Option<f64>;

const MEASURES: [(Measure, Pick); 3] = [
    (
        Measure {
            name: "lambda_max",
            better: Better::Lower,
            unit: Unit::Real,
        },
        |r| r.flatness.as_ref()?.lambda_max,
    ),
    (
        Measure {
            name: "Ritz sum",
            better: Better::Lower,
            unit: Unit::Real,
        },
        |r| r.flatness.as_ref()?.ritz_sum,
    ),
    (
        Measure {
            name: "Hutchinson trace",
            better: Better::Lower,
            unit: Unit::Real,
        },
        |r| r.flatness.as_ref()?.hutchinson_trace,
    ),
];

/// Per method, the stat of measure `pick` over the runs that have it (methods without any left
/// out).
fn stats(f: &Facts, pick: Pick) -> Vec<(String, Stat)> {
    f.methods
        .iter()
        .filter_map(|(m, rs)| {
            let with: Vec<&RunData> = rs.iter().copied().filter(|r| pick(r).is_some()).collect();
            (!with.is_empty()).then(|| (m.clone(), stat_of(&with, |r| pick(r).unwrap_or(f64::NAN))))
        })
        .collect()
}

/// How flatness was measured in a setting, from its flatness.json files.
fn protocol(f: &Facts) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut with = 0;
    let mut total = 0;
    for r in f.methods.iter().flat_map(|(_, rs)| rs.iter()) {
        total += 1;
        let Some(fl) = &r.flatness else { continue };
        with += 1;
        let show = |v: Option<usize>| v.map_or("?".to_string(), |v| v.to_string());
        let p = format!(
            "Lanczos {} iterations x {} starts, Hutchinson {} probes, {} training images",
            show(fl.iterations),
            show(fl.starts),
            show(fl.hutchinson),
            show(fl.samples)
        );
        if !seen.contains(&p) {
            seen.push(p);
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

/// The section and claim 2b.
pub fn section(facts: &[Facts]) -> (String, Claim) {
    let mut out = String::from(
        "## Claim 2: flatness\n\n\
         At the evaluated model of each accuracy run, over fixed un-augmented training images, \
         BatchNorm in eval mode (`grawa-train flatness`): lambda_max is the largest Ritz value \
         over the Lanczos starts, the Ritz sum the mean over starts of the sum of Ritz values (it \
         grows with the number of iterations, so it compares only runs measured alike), and \
         Hutchinson's estimate of the Hessian's trace. Lower is flatter.\n\n",
    );
    let mut all = Vec::new();
    for f in facts {
        out.push_str(&format!("### {} ({})\n\n", f.name, f.describe()));
        out.push_str(&protocol(f));
        let per: Vec<Vec<(String, Stat)>> = MEASURES.iter().map(|(_, p)| stats(f, *p)).collect();
        let rows: Vec<Vec<String>> = f
            .methods
            .iter()
            .map(|(m, _)| {
                let mut row = vec![m.clone()];
                for col in &per {
                    row.push(
                        col.iter()
                            .find(|(n, _)| n == m)
                            .map_or("-".to_string(), |(_, s)| {
                                format!("{} (n={})", fmt_stat(s, Unit::Real), s.n)
                            }),
                    );
                }
                row
            })
            .collect();
        out.push_str(&markdown_table(
            &["method", "lambda_max", "Ritz sum", "Hutchinson trace"],
            &rows,
        ));
        out.push('\n');
        let rivals = rivals_of(f);
        let rivals: Vec<&str> = rivals.iter().map(String::as_str).collect();
        let cs: Vec<_> = MEASURES
            .iter()
            .zip(&per)
            .flat_map(|((m, _), s)| contests(&f.name, *m, s, &rivals))
            .collect();
        out.push_str("Contests (claim 2, flatter optima):\n\n");
        out.push_str(&table(&cs));
        out.push('\n');
        all.extend(cs);
    }
    out.push_str(&published(facts));
    (
        out,
        Claim {
            name: "2b. flatter optima",
            what: "lambda_max, Ritz sum and Hutchinson trace at the end of the budget",
            contests: all,
        },
    )
}

/// The authors' figures beside our means, for orientation only (another model, data set, worker
/// count and iteration count).
fn published(facts: &[Facts]) -> String {
    let mut header = vec![
        "method".to_string(),
        "paper lambda_max".to_string(),
        "paper Ritz sum".to_string(),
    ];
    for f in facts {
        header.push(format!("{} lambda_max", f.name));
        header.push(format!("{} Ritz sum", f.name));
    }
    let rows: Vec<Vec<String>> = PUBLISHED
        .iter()
        .map(|(m, l, r)| {
            let mut row = vec![m.to_string(), format!("{l}"), format!("{r}")];
            for f in facts {
                for (_, pick) in &MEASURES[..2] {
                    let s = stats(f, *pick);
                    row.push(
                        s.iter()
                            .find(|(n, _)| n == m)
                            .map_or("-".to_string(), |(_, s)| fmt_value(s.mean, Unit::Real)),
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
    out.push_str(&markdown_table(&header, &rows));
    out.push('\n');
    out
}
