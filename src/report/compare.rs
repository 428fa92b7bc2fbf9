//! `compare`: one table over several runs (method, seed, test accuracy and loss, lambda_max,
//! rounds, wall time), sorted by method then seed, and a summary per method with the mean ± sample
//! standard deviation over its runs (seeds): the table that goes into a paper. Columns that only
//! some runs can have appear when any run has them: validation accuracy (`--val-split`), modelled
//! link seconds (`--link`), worker speeds (`--worker-speed`); per-class test accuracy is a table
//! of its own. Below, GRAWA against every other method on final test accuracy by the report's
//! verdict rule (`report::verdict`), when both are present.
//!
//! Output forms: aligned text for the terminal ([`Comparison::to_text`]), Markdown with both tables
//! ([`Comparison::to_markdown`]) and CSV with one row per run and full-precision numbers
//! ([`Comparison::to_csv`]; accuracy there is a fraction, as in `summary.json`; in text and
//! Markdown it is a percentage).

use std::path::{Path, PathBuf};

use super::compare_verdict::{verdict_markdown, verdict_text};
use super::error::ReportError;
pub use super::mean_std::MeanStd;
use super::runs::RunData;
use super::text_table::{markdown_table, text_table};
use super::write_atomic;

/// One run's line of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareRow {
    /// Algorithm, plus the schedule when it is not `sync`.
    pub method: String,
    pub algo: String,
    pub schedule: String,
    pub seed: u64,
    /// `done`, or why the run stopped.
    pub status: String,
    /// Fraction in [0, 1].
    pub test_accuracy: f64,
    pub test_loss: f64,
    /// From `flatness.json`, when the run has one.
    pub lambda_max: Option<f64>,
    pub rounds: u64,
    pub wall_seconds: f64,
    /// On the validation split, when the run had one.
    pub val_accuracy: Option<f64>,
    /// Modelled link seconds, when the run had a link.
    pub link_seconds: Option<f64>,
    /// Worker speed factors (`1,1,1,0.5`), empty when all ran at full speed.
    pub worker_speed: String,
    /// Test accuracy per class, when the run measured it.
    pub per_class: Option<Vec<f64>>,
    /// The class names (`config.json`), when the data set has them.
    pub classes: Option<Vec<String>>,
    /// The run folder.
    pub dir: PathBuf,
}

/// One method's runs summarised.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodSummary {
    pub method: String,
    pub runs: usize,
    pub test_accuracy: MeanStd,
    pub test_loss: MeanStd,
    pub wall_seconds: MeanStd,
    /// Over the runs' lambda_max, when every run of the method has one.
    pub lambda_max: Option<MeanStd>,
    /// Over the runs' validation accuracy, when every run of the method has one.
    pub val_accuracy: Option<MeanStd>,
    /// Over the runs' link seconds, when every run of the method has them.
    pub link_seconds: Option<MeanStd>,
}

/// The comparison of several runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// One per run, sorted by method, then seed, then folder.
    pub rows: Vec<CompareRow>,
    /// One per method, in the same order.
    pub methods: Vec<MethodSummary>,
}

/// Builds the comparison of `runs`.
pub fn compare(runs: &[RunData]) -> Comparison {
    let mut rows: Vec<CompareRow> = runs
        .iter()
        .map(|r| CompareRow {
            method: r.method(),
            algo: r.summary.algo.clone(),
            schedule: r.summary.schedule.clone(),
            seed: r.summary.seed,
            status: r.summary.status.clone(),
            test_accuracy: r.summary.test_accuracy,
            test_loss: r.summary.test_loss,
            lambda_max: r.lambda_max(),
            rounds: r.summary.rounds,
            wall_seconds: r.summary.wall_seconds,
            val_accuracy: r.summary.val_accuracy,
            link_seconds: r.summary.link_seconds,
            worker_speed: r.config.worker_speed_words().replace(';', ","),
            per_class: r.summary.per_class_accuracy.clone(),
            classes: r.config.classes.clone(),
            dir: r.dir.clone(),
        })
        .collect();
    rows.sort_by(|a, b| (&a.method, a.seed, &a.dir).cmp(&(&b.method, b.seed, &b.dir)));

    let mut methods = Vec::new();
    for group in rows.chunk_by(|a, b| a.method == b.method) {
        let col = |f: fn(&CompareRow) -> f64| group.iter().map(f).collect::<Vec<_>>();
        let all = |f: fn(&CompareRow) -> Option<f64>| -> Option<MeanStd> {
            let xs: Option<Vec<f64>> = group.iter().map(f).collect();
            xs.map(|x| MeanStd::of(&x))
        };
        methods.push(MethodSummary {
            method: group[0].method.clone(),
            runs: group.len(),
            test_accuracy: MeanStd::of(&col(|r| r.test_accuracy)),
            test_loss: MeanStd::of(&col(|r| r.test_loss)),
            wall_seconds: MeanStd::of(&col(|r| r.wall_seconds)),
            lambda_max: all(|r| r.lambda_max),
            val_accuracy: all(|r| r.val_accuracy),
            link_seconds: all(|r| r.link_seconds),
        });
    }
    Comparison { rows, methods }
}

/// Loads the run folders `dirs`, compares them, prints nothing; writes the CSV and Markdown forms
/// where asked, and returns the text form for the terminal. The whole `compare` command in one call.
pub fn compare_dirs<P: AsRef<Path>>(
    dirs: &[P],
    csv: Option<&Path>,
    markdown: Option<&Path>,
) -> Result<String, ReportError> {
    if dirs.is_empty() {
        return Err(ReportError::Other("compare: no run folders given".into()));
    }
    let runs = super::runs::load_runs(dirs)?;
    let cmp = compare(&runs);
    if let Some(path) = csv {
        cmp.write_csv(path)?;
    }
    if let Some(path) = markdown {
        cmp.write_markdown(path)?;
    }
    Ok(cmp.to_text())
}

/// A column shown only when some run has it.
#[derive(Clone, Copy, PartialEq)]
enum Extra {
    Val,
    Link,
    Speed,
}

impl Comparison {
    /// The optional columns some run has, in order.
    fn extras(&self) -> Vec<Extra> {
        let mut out = Vec::new();
        if self.rows.iter().any(|r| r.val_accuracy.is_some()) {
            out.push(Extra::Val);
        }
        if self.rows.iter().any(|r| r.link_seconds.is_some()) {
            out.push(Extra::Link);
        }
        if self.rows.iter().any(|r| !r.worker_speed.is_empty()) {
            out.push(Extra::Speed);
        }
        out
    }

    fn run_header(&self) -> Vec<&'static str> {
        let mut h = vec!["method", "seed", "test acc (%)"];
        let extras = self.extras();
        if extras.contains(&Extra::Val) {
            h.push("val acc (%)");
        }
        h.extend(["test loss", "lambda_max", "rounds", "wall (s)"]);
        if extras.contains(&Extra::Link) {
            h.push("link (s)");
        }
        if extras.contains(&Extra::Speed) {
            h.push("worker speeds");
        }
        h
    }

    fn method_header(&self) -> Vec<&'static str> {
        let mut h = vec!["method", "runs", "test acc (%)"];
        let extras = self.extras();
        if extras.contains(&Extra::Val) {
            h.push("val acc (%)");
        }
        h.extend(["test loss", "lambda_max", "wall (s)"]);
        if extras.contains(&Extra::Link) {
            h.push("link (s)");
        }
        h
    }

    fn run_cells(&self) -> Vec<Vec<String>> {
        let extras = self.extras();
        let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or_else(|| "-".to_string(), f);
        self.rows
            .iter()
            .map(|r| {
                let mut row = vec![
                    r.method.clone(),
                    r.seed.to_string(),
                    format!("{:.2}", 100.0 * r.test_accuracy),
                ];
                if extras.contains(&Extra::Val) {
                    row.push(opt(r.val_accuracy, &|v| format!("{:.2}", 100.0 * v)));
                }
                row.extend([
                    format!("{:.4}", r.test_loss),
                    opt(r.lambda_max, &|l| format!("{l:.3}")),
                    r.rounds.to_string(),
                    format!("{:.1}", r.wall_seconds),
                ]);
                if extras.contains(&Extra::Link) {
                    row.push(opt(r.link_seconds, &|l| format!("{l:.1}")));
                }
                if extras.contains(&Extra::Speed) {
                    row.push(if r.worker_speed.is_empty() {
                        "-".to_string()
                    } else {
                        r.worker_speed.clone()
                    });
                }
                row
            })
            .collect()
    }

    fn method_cells(&self) -> Vec<Vec<String>> {
        let extras = self.extras();
        let opt = |m: Option<MeanStd>, scale: f64, d: usize| {
            m.map_or_else(|| "-".to_string(), |m| m.format(scale, d))
        };
        self.methods
            .iter()
            .map(|m| {
                let mut row = vec![
                    m.method.clone(),
                    m.runs.to_string(),
                    m.test_accuracy.format(100.0, 2),
                ];
                if extras.contains(&Extra::Val) {
                    row.push(opt(m.val_accuracy, 100.0, 2));
                }
                row.extend([
                    m.test_loss.format(1.0, 4),
                    opt(m.lambda_max, 1.0, 3),
                    m.wall_seconds.format(1.0, 1),
                ]);
                if extras.contains(&Extra::Link) {
                    row.push(opt(m.link_seconds, 1.0, 1));
                }
                row
            })
            .collect()
    }

    /// Each method's final test accuracies, in the methods' order: what `compare`'s verdict
    /// judges.
    fn accuracies(&self) -> Vec<(String, Vec<f64>)> {
        self.methods
            .iter()
            .map(|m| {
                let runs = self.rows.iter().filter(|r| r.method == m.method);
                (m.method.clone(), runs.map(|r| r.test_accuracy).collect())
            })
            .collect()
    }

    /// Per-class test accuracy (%) per run, when some run has it: `(header, rows)`.
    fn per_class(&self) -> Option<(Vec<String>, Vec<Vec<String>>)> {
        let classes = self
            .rows
            .iter()
            .filter_map(|r| r.per_class.as_ref().map(Vec::len))
            .max()?;
        let names = self.rows.iter().find_map(|r| r.classes.clone());
        let mut header = vec!["method".to_string(), "seed".to_string()];
        header.extend((0..classes).map(|c| {
            names
                .as_ref()
                .and_then(|n| n.get(c).cloned())
                .unwrap_or_else(|| format!("class {c}"))
        }));
        let rows = self
            .rows
            .iter()
            .filter_map(|r| {
                let pc = r.per_class.as_ref()?;
                let mut row = vec![r.method.clone(), r.seed.to_string()];
                row.extend((0..classes).map(|c| {
                    pc.get(c)
                        .map_or("-".to_string(), |a| format!("{:.2}", 100.0 * a))
                }));
                Some(row)
            })
            .collect();
        Some((header, rows))
    }

    /// Both tables as aligned text (method left-aligned, numbers right-aligned), the per-run
    /// table first, then the per-method summary under a title line; then per-class accuracy and
    /// the verdict of GRAWA against the others, when there are any.
    pub fn to_text(&self) -> String {
        let mut out = text_table(&self.run_header(), &self.run_cells());
        out.push_str("\nmean ± std over seeds (sample std, n - 1)\n");
        out.push_str(&text_table(&self.method_header(), &self.method_cells()));
        if let Some((h, rows)) = self.per_class() {
            out.push_str("\nper-class test accuracy (%)\n");
            let h: Vec<&str> = h.iter().map(String::as_str).collect();
            out.push_str(&text_table(&h, &rows));
        }
        out.push_str(&verdict_text(&self.accuracies()));
        out
    }

    /// Both tables as Markdown, each under a heading (and per-class accuracy and the verdict,
    /// when there are any).
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("### Runs\n\n");
        out.push_str(&markdown_table(&self.run_header(), &self.run_cells()));
        out.push_str("\n### Mean ± std over seeds\n\n");
        out.push_str(&markdown_table(&self.method_header(), &self.method_cells()));
        if let Some((h, rows)) = self.per_class() {
            out.push_str("\n### Per-class test accuracy (%)\n\n");
            let h: Vec<&str> = h.iter().map(String::as_str).collect();
            out.push_str(&markdown_table(&h, &rows));
        }
        out.push_str(&verdict_markdown(&self.accuracies()));
        out
    }

    /// The per-run table as CSV with full-precision numbers: `method, algo, schedule, seed, status,
    /// test_accuracy (fraction), test_loss, lambda_max (empty when unknown), rounds, wall_seconds,
    /// run` (the folder), `val_accuracy, link_seconds` (empty when the run has none),
    /// `worker_speed` (`;`-separated, empty at full speed), and `per_class_accuracy` (fractions by
    /// label, `;`-joined) when some run has them.
    pub fn to_csv(&self) -> Result<String, ReportError> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let err = |e: csv::Error| ReportError::Other(format!("compare CSV: {e}"));
        let per_class = self.rows.iter().any(|r| r.per_class.is_some());
        let mut header = vec![
            "method",
            "algo",
            "schedule",
            "seed",
            "status",
            "test_accuracy",
            "test_loss",
            "lambda_max",
            "rounds",
            "wall_seconds",
            "run",
            "val_accuracy",
            "link_seconds",
            "worker_speed",
        ];
        if per_class {
            header.push("per_class_accuracy");
        }
        w.write_record(header).map_err(err)?;
        for r in &self.rows {
            let mut record = vec![
                r.method.clone(),
                r.algo.clone(),
                r.schedule.clone(),
                r.seed.to_string(),
                r.status.clone(),
                r.test_accuracy.to_string(),
                r.test_loss.to_string(),
                r.lambda_max.map(|l| l.to_string()).unwrap_or_default(),
                r.rounds.to_string(),
                r.wall_seconds.to_string(),
                r.dir.display().to_string(),
                r.val_accuracy.map(|v| v.to_string()).unwrap_or_default(),
                r.link_seconds.map(|v| v.to_string()).unwrap_or_default(),
                r.worker_speed.replace(',', ";"),
            ];
            if per_class {
                // Fractions by label, `;`-joined (empty for a run without them).
                let fractions = r.per_class.iter().flatten().map(|a| a.to_string());
                record.push(fractions.collect::<Vec<_>>().join(";"));
            }
            w.write_record(record).map_err(err)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| ReportError::Other(format!("compare CSV: {e}")))?;
        String::from_utf8(bytes).map_err(|e| ReportError::Other(format!("compare CSV: {e}")))
    }

    /// Writes [`Self::to_csv`] to `path` (atomically).
    pub fn write_csv(&self, path: &Path) -> Result<(), ReportError> {
        write_atomic(path, self.to_csv()?.as_bytes())
    }

    /// Writes [`Self::to_markdown`] to `path` (atomically).
    pub fn write_markdown(&self, path: &Path) -> Result<(), ReportError> {
        write_atomic(path, self.to_markdown().as_bytes())
    }
}
