//! Run reports: read run folders back, and turn them into what a researcher reads.
//!
//! - [`runs`]: a run folder (`summary.json`, `config.json`, `metrics.jsonl`, optional
//!   `flatness.json`) as typed data, [`RunData`].
//! - [`csv`]: `metrics.csv` beside `metrics.jsonl`, one row per event ([`write_metrics_csv`]).
//! - [`compare`]: the table over several runs and the mean ± std per method, as text, CSV and
//!   Markdown ([`compare_dirs`] is the whole `compare` command).
//! - [`plot`]: accuracy and loss against time and rounds, GRAWA weights per worker, as SVG and PNG
//!   ([`plot_dirs`] is the whole `plot` command).
//! - [`verdict`]: the rule that judges GRAWA against its rivals (Welch's test per pair, [`welch`];
//!   Holm's correction over a claim; supported, contradicted or not resolved); [`rank`]:
//!   Spearman's rank agreement; [`reach`]: when a run first reaches a target accuracy; [`curve`]:
//!   the area under accuracy against time; [`comm`]: what a distributed update costs in bytes;
//!   [`bands`]: seeds as a mean line with a shaded std band.
//! - [`record`]: one run as the reproduction report uses it, and [`run_table`]: those records as
//!   the CSV the report writes and can be recomputed from.
//! - [`repro`]: the reproduction report, docs/reproduction.md from `scripts/reproduce.sh`'s runs
//!   ([`reproduction_report`] is the whole `reproduction-report` command,
//!   [`reproduction_report_from_csv`] the same from the run table alone).
//!
//! Every failure is a [`ReportError`] with a one-line message naming the file (and line) at fault;
//! it converts into the crate's usage error, exit code 2.

pub mod bands;
pub mod chart;
pub mod comm;
pub mod compare;
pub mod compare_verdict;
pub mod csv;
pub mod curve;
pub mod error;
pub mod mean_std;
pub mod plot;
pub mod rank;
pub mod reach;
pub mod record;
pub mod repro;
pub mod run_config;
pub mod run_table;
pub mod runs;
pub mod text_table;
pub mod verdict;
pub mod welch;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use compare::{compare, compare_dirs, CompareRow, Comparison, MeanStd, MethodSummary};
pub use csv::{metrics_jsonl_to_csv, write_metrics_csv, METRICS_CSV_HEADER};
pub use error::ReportError;
pub use plot::{plot, plot_dirs};
pub use repro::{reproduction_report, reproduction_report_from_csv};
pub use runs::{load_runs, RunData};

/// Writes `bytes` to `path` atomically: a temp file beside it, synced, then renamed over `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| ReportError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| ReportError::io(&tmp, e))?;
        f.sync_all().map_err(|e| ReportError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| ReportError::io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
