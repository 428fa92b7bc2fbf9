//! The learning-rate grid: every method's rate chosen by the same small grid, scored on the
//! validation split (`grid/<setting>/`), the test set left for the report. The rate with the best
//! mean final validation accuracy over the grid's seeds is chosen ([`choices`]); the same choice
//! is printed for `scripts/reproduce.sh` (`reproduction-report OUT --choose-lr SETTING`, its
//! `lr.tsv`) and shown in the report.

use std::collections::BTreeMap;
use std::path::Path;

use super::layout::Layout;
use super::markdown::table as markdown_table;
use super::methods::{by_method, fmt_value, Unit};
use crate::report::error::ReportError;
use crate::report::record::RunRecord;

/// One learning rate of a method's grid: the mean final validation accuracy of its runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub lr: f64,
    pub mean: f64,
    pub runs: usize,
}

/// A method's grid and the rate chosen from it.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub method: String,
    /// By rate, ascending; only runs that recorded a validation accuracy.
    pub cells: Vec<Cell>,
    /// The cell with the best finite mean (the larger rate on a tie); `None` without one.
    pub chosen: Option<Cell>,
}

/// Per method of `runs` (in the report's order), the grid and the chosen rate.
pub fn choices<'a>(runs: impl IntoIterator<Item = &'a RunRecord>) -> Vec<Choice> {
    by_method(runs)
        .into_iter()
        .map(|(method, rs)| {
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
            let mut cells: Vec<Cell> = by_lr
                .into_values()
                .map(|(lr, vs)| Cell {
                    lr,
                    mean: vs.iter().sum::<f64>() / vs.len() as f64,
                    runs: vs.len(),
                })
                .collect();
            cells.sort_by(|a, b| a.lr.total_cmp(&b.lr));
            let chosen = cells
                .iter()
                .filter(|c| c.mean.is_finite())
                .max_by(|a, b| a.mean.total_cmp(&b.mean))
                .cloned();
            Choice {
                method,
                cells,
                chosen,
            }
        })
        .collect()
}

/// The choices of the grid `OUT/grid/<setting>/` that `scripts/reproduce.sh` filled; refused
/// when it holds no finished run.
pub fn choices_in(root: &Path, setting: &str) -> Result<Vec<Choice>, ReportError> {
    let layout = Layout::load(root)?;
    let records = layout.records();
    let grid: Vec<&RunRecord> = records
        .iter()
        .filter(|r| r.part == "grid" && r.group == setting)
        .collect();
    if grid.is_empty() {
        return Err(ReportError::invalid(
            &root.join("grid").join(setting),
            None,
            "no finished grid run: nothing to choose a learning rate from",
        ));
    }
    Ok(choices(grid))
}

/// `choices` as tab-separated lines: a `#` header, then `method, lr, mean validation accuracy,
/// runs` per method with a chosen rate (a method without one has no line).
pub fn choices_tsv(choices: &[Choice]) -> String {
    let mut out = String::from("# method\tlr\tvalidation accuracy\truns\n");
    for c in choices {
        if let Some(cell) = &c.chosen {
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\n",
                c.method, cell.lr, cell.mean, cell.runs
            ));
        }
    }
    out
}

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
        let rows: Vec<Vec<String>> = choices(runs)
            .into_iter()
            .map(|c| {
                vec![
                    c.method,
                    c.cells
                        .iter()
                        .map(|c| {
                            format!(
                                "{}: {} (n={})",
                                c.lr,
                                fmt_value(c.mean, Unit::Percent),
                                c.runs
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                    c.chosen.map_or("-".to_string(), |b| b.lr.to_string()),
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
