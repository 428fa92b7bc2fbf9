//! `metrics.csv`: the events of `metrics.jsonl` as one table for spreadsheets and pandas.
//!
//! One row per event, in file order, under a fixed header ([`METRICS_CSV_HEADER`]): `event`, then
//! the union of the fields of the `steps`, `round`, `pull` and `eval` events. A field an event does
//! not have, or that is `null`, is an empty cell. Numbers are the JSON's numbers, parsed correctly
//! rounded and written in the shortest form that reads back to the same `f64` (for a file the
//! trainer wrote, the same text as in the JSON); list fields (`weights`, `norms`, `worker_accuracy`) are their
//! elements joined with `;`, a `null` (non-finite) element written as `NaN`. Fields the header does
//! not know are left out; events of an unknown kind still get a row.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::ReportError;
use super::runs::for_each_json_line;

/// The columns of `metrics.csv`, in order.
pub const METRICS_CSV_HEADER: [&str; 24] = [
    "event",
    "seconds",
    "epoch",
    "worker",
    "step",
    "total_steps",
    "round",
    "lr",
    "train_loss",
    "images_per_second",
    "test_loss",
    "test_accuracy",
    "center_accuracy",
    "worker_accuracy",
    "lag",
    "staleness",
    "leader",
    "lambda",
    "weights",
    "norms",
    "gather_ms",
    "compute_ms",
    "scatter_ms",
    "bytes",
];

/// Writes `run_dir/metrics.csv` from `run_dir/metrics.jsonl` and returns its path. The file is
/// written beside as `metrics.csv.tmp`, synced, then renamed, so a reader never sees half of it.
pub fn write_metrics_csv(run_dir: &Path) -> Result<PathBuf, ReportError> {
    let out = run_dir.join("metrics.csv");
    metrics_jsonl_to_csv(&run_dir.join("metrics.jsonl"), &out)?;
    Ok(out)
}

/// Converts the JSON Lines file `jsonl` into the CSV file `csv` (atomically, as
/// [`write_metrics_csv`]) and returns the number of rows written (the header not counted).
pub fn metrics_jsonl_to_csv(jsonl: &Path, csv: &Path) -> Result<usize, ReportError> {
    let mut tmp_name = csv.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let result = write_csv(jsonl, &tmp).and_then(|rows| {
        std::fs::rename(&tmp, csv).map_err(|e| ReportError::io(csv, e))?;
        Ok(rows)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_csv(jsonl: &Path, tmp: &Path) -> Result<usize, ReportError> {
    let file = File::create(tmp).map_err(|e| ReportError::io(tmp, e))?;
    let mut w = csv::Writer::from_writer(BufWriter::new(file));
    let csv_err = |e: csv::Error| ReportError::Other(format!("{}: {e}", tmp.display()));
    w.write_record(METRICS_CSV_HEADER).map_err(csv_err)?;
    let mut rows = 0;
    for_each_json_line(jsonl, |line, obj: Map<String, Value>| {
        if !matches!(obj.get("event"), Some(Value::String(_))) {
            return Err(ReportError::invalid(
                jsonl,
                Some(line),
                "no \"event\" field naming the kind of event",
            ));
        }
        let row = METRICS_CSV_HEADER.map(|name| cell(obj.get(name)));
        w.write_record(&row).map_err(csv_err)?;
        rows += 1;
        Ok(())
    })?;
    let buf = w
        .into_inner()
        .map_err(|e| ReportError::Other(format!("{}: {e}", tmp.display())))?;
    let file = buf
        .into_inner()
        .map_err(|e| ReportError::io(tmp, e.into_error()))?;
    file.sync_all().map_err(|e| ReportError::io(tmp, e))?;
    drop(file);
    Ok(rows)
}

/// One CSV cell for a JSON field (see the module documentation).
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|x| match x {
                Value::Null => "NaN".to_string(),
                x => cell(Some(x)),
            })
            .collect::<Vec<_>>()
            .join(";"),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}
