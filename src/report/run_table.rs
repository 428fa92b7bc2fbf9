//! The run table: every run a reproduction report used, one CSV row per run under a header line
//! naming the columns ([`RunRecord`]'s fields, in order), so the report's verdicts and tables can
//! be recomputed from it alone (`grawa-train reproduction-report --from-csv FILE`).
//!
//! Cells: numbers as the shortest text that reads back to the same `f64` (so a report from the
//! table equals the report from the folders, digit for digit); an empty cell is a value the run
//! does not have (no validation split, no link, a target never reached, no flatness measured);
//! `NaN` a value that was not a number (a diverged run's loss). Text cells are quoted when they
//! hold a comma. What the table does not hold: the evaluation curves (so no charts) and the
//! script's own record (command, machine, wall time per part).

use std::path::Path;

use super::error::ReportError;
use super::record::RunRecord;
use super::write_atomic;

/// The table as CSV text, header first, rows in the order given.
pub fn to_csv(records: &[RunRecord]) -> Result<String, ReportError> {
    let err = |e: csv::Error| ReportError::Other(format!("run table: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in records {
        w.serialize(r).map_err(err)?;
    }
    if records.is_empty() {
        return Err(ReportError::Other("run table: no runs to write".into()));
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ReportError::Other(format!("run table: {e}")))?;
    String::from_utf8(bytes).map_err(|e| ReportError::Other(format!("run table: {e}")))
}

/// Writes the table to `path` (atomically).
pub fn write(path: &Path, records: &[RunRecord]) -> Result<(), ReportError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| ReportError::io(dir, e))?;
    }
    write_atomic(path, to_csv(records)?.as_bytes())
}

/// Reads the table at `path`. A missing column, a cell that does not parse or an empty table is
/// an error naming the file and the line.
pub fn read(path: &Path) -> Result<Vec<RunRecord>, ReportError> {
    let file = std::fs::File::open(path).map_err(|e| ReportError::io(path, e))?;
    let mut rd = csv::Reader::from_reader(file);
    let mut out = Vec::new();
    for row in rd.deserialize::<RunRecord>() {
        let rec = row.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize);
            let msg = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => match err.field() {
                    Some(i) => format!("column {}: {}", i + 1, err.kind()),
                    None => err.kind().to_string(),
                },
                _ => e.to_string(),
            };
            ReportError::invalid(path, line, format!("not a run table row ({msg})"))
        })?;
        out.push(rec);
    }
    if out.is_empty() {
        return Err(ReportError::invalid(
            path,
            None,
            "no runs: a run table has a header line and one row per run",
        ));
    }
    Ok(out)
}
