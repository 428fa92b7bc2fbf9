//! `compare`: one table over several runs (method, seed, test accuracy and loss, lambda_max,
//! rounds, wall time), sorted by method then seed, and a summary per method with the mean ± sample
//! standard deviation over its runs (seeds): the table that goes into a paper.
//!
//! Output forms: aligned text for the terminal ([`Comparison::to_text`]), Markdown with both tables
//! ([`Comparison::to_markdown`]) and CSV with one row per run and full-precision numbers
//! ([`Comparison::to_csv`]; accuracy there is a fraction, as in `summary.json`; in text and
//! Markdown it is a percentage).

use std::path::{Path, PathBuf};

use super::error::ReportError;
use super::runs::RunData;
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
    /// The run folder.
    pub dir: PathBuf,
    /// Each class's test accuracy (`--per-class` runs), by label.
    pub per_class: Option<Vec<Option<f64>>>,
}

/// Mean and sample standard deviation (divisor n - 1) of some numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanStd {
    pub mean: f64,
    /// `None` with fewer than two numbers.
    pub std: Option<f64>,
    pub n: usize,
}

impl MeanStd {
    /// The mean and sample standard deviation of `xs` (NaN mean when `xs` is empty).
    pub fn of(xs: &[f64]) -> Self {
        let n = xs.len();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let std = (n >= 2).then(|| {
            let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
            (ss / (n - 1) as f64).sqrt()
        });
        MeanStd { mean, std, n }
    }

    /// `"mean ± std"` with `decimals` decimals after scaling by `scale`; just the mean when there
    /// is no spread to show.
    fn format(&self, scale: f64, decimals: usize) -> String {
        match self.std {
            Some(s) => format!(
                "{:.*} ± {:.*}",
                decimals,
                self.mean * scale,
                decimals,
                s * scale
            ),
            None => format!("{:.*}", decimals, self.mean * scale),
        }
    }
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
            dir: r.dir.clone(),
            per_class: r.summary.per_class_accuracy.clone(),
        })
        .collect();
    rows.sort_by(|a, b| (&a.method, a.seed, &a.dir).cmp(&(&b.method, b.seed, &b.dir)));

    let mut methods = Vec::new();
    for group in rows.chunk_by(|a, b| a.method == b.method) {
        let col = |f: fn(&CompareRow) -> f64| group.iter().map(f).collect::<Vec<_>>();
        let lambdas: Option<Vec<f64>> = group.iter().map(|r| r.lambda_max).collect();
        methods.push(MethodSummary {
            method: group[0].method.clone(),
            runs: group.len(),
            test_accuracy: MeanStd::of(&col(|r| r.test_accuracy)),
            test_loss: MeanStd::of(&col(|r| r.test_loss)),
            wall_seconds: MeanStd::of(&col(|r| r.wall_seconds)),
            lambda_max: lambdas.map(|l| MeanStd::of(&l)),
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

const RUN_HEADER: [&str; 7] = [
    "method",
    "seed",
    "test acc (%)",
    "test loss",
    "lambda_max",
    "rounds",
    "wall (s)",
];
const METHOD_HEADER: [&str; 6] = [
    "method",
    "runs",
    "test acc (%)",
    "test loss",
    "lambda_max",
    "wall (s)",
];

/// The per-run table's extra column when some run has per-class accuracies.
const PER_CLASS_HEADER: &str = "per-class acc (%)";

/// Per-class accuracies as percentages by label, `a/b/c` ("-" for a class without test image,
/// or for a run without them).
fn per_class_cell(per_class: Option<&Vec<Option<f64>>>) -> String {
    let Some(p) = per_class else {
        return "-".into();
    };
    let cells: Vec<String> = p
        .iter()
        .map(|a| a.map_or_else(|| "-".into(), |a| format!("{:.1}", 100.0 * a)))
        .collect();
    cells.join("/")
}

impl Comparison {
    /// Whether the per-run tables carry the per-class column.
    fn has_per_class(&self) -> bool {
        self.rows.iter().any(|r| r.per_class.is_some())
    }

    fn run_header(&self) -> Vec<&'static str> {
        let mut h = RUN_HEADER.to_vec();
        if self.has_per_class() {
            h.push(PER_CLASS_HEADER);
        }
        h
    }

    fn run_cells(&self) -> Vec<Vec<String>> {
        let per_class = self.has_per_class();
        self.rows
            .iter()
            .map(|r| {
                let mut cells = vec![
                    r.method.clone(),
                    r.seed.to_string(),
                    format!("{:.2}", 100.0 * r.test_accuracy),
                    format!("{:.4}", r.test_loss),
                    r.lambda_max
                        .map_or_else(|| "-".to_string(), |l| format!("{l:.3}")),
                    r.rounds.to_string(),
                    format!("{:.1}", r.wall_seconds),
                ];
                if per_class {
                    cells.push(per_class_cell(r.per_class.as_ref()));
                }
                cells
            })
            .collect()
    }

    fn method_cells(&self) -> Vec<Vec<String>> {
        self.methods
            .iter()
            .map(|m| {
                vec![
                    m.method.clone(),
                    m.runs.to_string(),
                    m.test_accuracy.format(100.0, 2),
                    m.test_loss.format(1.0, 4),
                    m.lambda_max
                        .map_or_else(|| "-".to_string(), |l| l.format(1.0, 3)),
                    m.wall_seconds.format(1.0, 1),
                ]
            })
            .collect()
    }

    /// Both tables as aligned text (method left-aligned, numbers right-aligned), the per-run
    /// table first, then the per-method summary under a title line.
    pub fn to_text(&self) -> String {
        let mut out = text_table(&self.run_header(), &self.run_cells());
        out.push_str("\nmean ± std over seeds (sample std, n - 1)\n");
        out.push_str(&text_table(&METHOD_HEADER, &self.method_cells()));
        out
    }

    /// Both tables as Markdown, each under a heading.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("### Runs\n\n");
        out.push_str(&markdown_table(&self.run_header(), &self.run_cells()));
        out.push_str("\n### Mean ± std over seeds\n\n");
        out.push_str(&markdown_table(&METHOD_HEADER, &self.method_cells()));
        out
    }

    /// The per-run table as CSV with full-precision numbers: `method, algo, schedule, seed, status,
    /// test_accuracy (fraction), test_loss, lambda_max (empty when unknown), rounds, wall_seconds,
    /// run` (the folder), and `per_class_accuracy` (fractions by label, `;`-joined) when some run
    /// has them.
    pub fn to_csv(&self) -> Result<String, ReportError> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let err = |e: csv::Error| ReportError::Other(format!("compare CSV: {e}"));
        let per_class = self.has_per_class();
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
            ];
            if per_class {
                let fractions = r.per_class.iter().flatten();
                let text: Vec<String> = fractions
                    .map(|a| a.map(|a| a.to_string()).unwrap_or_default())
                    .collect();
                record.push(text.join(";"));
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

fn widths(header: &[&str], rows: &[Vec<String>]) -> Vec<usize> {
    header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([h.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// Pads `s` to `w` characters: left-aligned in the first column, right-aligned elsewhere.
fn pad(s: &str, w: usize, col: usize) -> String {
    let fill = " ".repeat(w.saturating_sub(s.chars().count()));
    if col == 0 {
        format!("{s}{fill}")
    } else {
        format!("{fill}{s}")
    }
}

fn text_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let w = widths(header, rows);
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| pad(c, w[i], i))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let w = widths(header, rows);
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| pad(&c.replace('|', "\\|"), w[i], i))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(header.to_vec());
    let rule: Vec<String> = w
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let dashes = "-".repeat(n.max(3) - 1);
            if i == 0 {
                format!(":{dashes}")
            } else {
                format!("{dashes}:")
            }
        })
        .collect();
    out.push_str(&format!("| {} |\n", rule.join(" | ")));
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}
