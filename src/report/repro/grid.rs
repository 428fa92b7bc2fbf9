//! The learning-rate grid: every method's rate chosen by the same small grid, scored on the
//! validation split (`grid/<setting>/`), the test set left for the report. The rate with the best
//! mean final validation accuracy over the grid's seeds is chosen.

use std::collections::BTreeMap;

use super::markdown::table as markdown_table;
use super::methods::{by_method, fmt_value, Unit};
use crate::report::record::RunRecord;

/// The section (empty when no grid was run).
pub fn section(records: &[RunRecord]) -> String {
    let mut groups: BTreeMap<&str, Vec<&RunRecord>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.part == "grid") {
        groups.entry(r.group.as_str()).or_default().push(r);
    }
    if groups.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "## Learning rates\n\n\
         Each method's learning rate was chosen by the same grid on the held-out validation split \
         (`--val-split`): the rate with the best mean final validation accuracy (DDP's grid is \
         scaled for its effective batch, workers x batch, as its users scale it). Cells: mean \
         validation accuracy (%) over the grid's seeds.\n\n",
    );
    for (group, runs) in groups {
        out.push_str(&format!("### {group}\n\n"));
        let rows: Vec<Vec<String>> = by_method(runs)
            .into_iter()
            .map(|(m, rs)| {
                let mut by_lr: BTreeMap<u64, (f64, Vec<f64>)> = BTreeMap::new();
                for r in &rs {
                    let (Some(lr), Some(v)) = (r.lr, r.val_accuracy) else {
                        continue;
                    };
                    by_lr
                        .entry(lr.to_bits())
                        .or_insert((lr, Vec::new()))
                        .1
                        .push(v);
                }
                let mut cells: Vec<(f64, f64, usize)> = by_lr
                    .into_values()
                    .map(|(lr, vs)| (lr, vs.iter().sum::<f64>() / vs.len() as f64, vs.len()))
                    .collect();
                cells.sort_by(|a, b| a.0.total_cmp(&b.0));
                let best = cells
                    .iter()
                    .filter(|c| c.1.is_finite())
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                vec![
                    m,
                    cells
                        .iter()
                        .map(|(lr, v, n)| format!("{lr}: {} (n={n})", fmt_value(*v, Unit::Percent)))
                        .collect::<Vec<_>>()
                        .join("; "),
                    best.map_or("-".to_string(), |b| b.0.to_string()),
                ]
            })
            .collect();
        out.push_str(&markdown_table(
            &["method", "lr: validation accuracy (%)", "chosen lr"],
            &rows,
        ));
        out.push('\n');
    }
    out
}
