//! Run reports: read run folders back, and turn them into what a researcher reads.
//!
//! - [`runs`]: a run folder (`summary.json`, `config.json`, `metrics.jsonl`, optional
//!   `flatness.json`) as typed data, [`RunData`].
//! - [`csv`]: `metrics.csv` beside `metrics.jsonl`, one row per event ([`write_metrics_csv`]).
//!
//! Every failure is a [`ReportError`] with a one-line message naming the file (and line) at fault;
//! it converts into the crate's usage error, exit code 2.

pub mod csv;
pub mod error;
pub mod runs;

pub use csv::{metrics_jsonl_to_csv, write_metrics_csv, METRICS_CSV_HEADER};
pub use error::ReportError;
pub use runs::{load_runs, RunData};
