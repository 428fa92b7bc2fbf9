//! TensorBoard event files: every run writes `events.out.tfevents.<time>.<host>` in its folder
//! (unless `--no-tensorboard`), so `tensorboard --logdir runs/` shows a sweep's runs side by side.
//!
//! The writer is fed the lines of metrics.jsonl as they are written (`MetricsWriter`), so the
//! figures are exactly those of the JSON lines; `scalars` says which tag each becomes. The x axis
//! is the global step, the number of optimizer steps per worker (one step = every worker took
//! one, as in data-parallel training): a worker's own step for the training curves, and the run's
//! local steps divided by the number of workers for evaluations and rounds (equal to every
//! worker's step under `--schedule sync`). The wall time of an event is when it was written.
//!
//! A resumed run writes a new file that starts with a `SessionLog START` at the step after its
//! checkpoint: TensorBoard's reader then drops what the earlier file holds from that step on (the
//! steps the resumed run takes again), as metrics.jsonl is cut back to the checkpoint.

mod record;
mod scalars;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub use record::{encode_event, frame, masked_crc32c, Body};
pub use scalars::Scalars;

use crate::{Error, Result};

/// The prefix of every event file's name (TensorBoard finds files by "tfevents").
pub const FILE_PREFIX: &str = "events.out.tfevents.";

/// An open event file.
pub struct EventWriter {
    path: PathBuf,
    file: BufWriter<File>,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn host() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .collect();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

impl EventWriter {
    /// Creates a new event file in `dir` (a suffix keeps two files of the same second apart)
    /// and writes its first record, the file version.
    pub fn create(dir: &Path) -> Result<Self> {
        let base = format!("{FILE_PREFIX}{}.{}", now() as u64, host());
        let mut path = dir.join(&base);
        for n in 1.. {
            if !path.exists() {
                break;
            }
            path = dir.join(format!("{base}.{n}"));
        }
        let file = File::create(&path).map_err(|e| Error::write(&path, e))?;
        let mut w = Self {
            path,
            file: BufWriter::new(file),
        };
        w.event(0, &Body::FileVersion("brain.Event:2"))?;
        Ok(w)
    }

    /// Opens the newest event file in `dir` to add to it; `None` when there is none.
    pub fn append_newest(dir: &Path) -> Result<Option<Self>> {
        let Some(path) = event_files(dir).pop() else {
            return Ok(None);
        };
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::write(&path, e))?;
        Ok(Some(Self {
            path,
            file: BufWriter::new(file),
        }))
    }

    /// Writes one event at `step`, stamped with the current time.
    pub fn event(&mut self, step: i64, body: &Body) -> Result<()> {
        let data = encode_event(now(), step, body);
        self.file
            .write_all(&frame(&data))
            .map_err(|e| Error::write(&self.path, e))
    }

    /// Writes buffered events to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.file.flush().map_err(|e| Error::write(&self.path, e))
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The event files in `dir`, oldest first (their names start with the creation time).
pub fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(FILE_PREFIX))
        })
        .collect();
    files.sort_by_key(|p| creation_order(p));
    files
}

/// (seconds in the name, suffix): the order files were created in.
fn creation_order(p: &Path) -> (u64, u64, String) {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let rest = name.strip_prefix(FILE_PREFIX).unwrap_or_default();
    let mut parts = rest.split('.');
    let secs = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let suffix = parts.next_back().and_then(|s| s.parse().ok()).unwrap_or(0);
    (secs, suffix, name.to_string())
}

/// Adds the flatness figures of a finished run to its newest event file, at `step`; nothing
/// when the run has no event file (`--no-tensorboard`).
pub fn record_flatness(
    dir: &Path,
    step: u64,
    report: &crate::flatness::FlatnessReport,
) -> Result<()> {
    let Some(mut w) = EventWriter::append_newest(dir)? else {
        return Ok(());
    };
    let values = [
        ("flatness/lambda_max", report.lambda_max),
        ("flatness/ritz_sum", report.ritz_sum),
        ("flatness/hutchinson_trace", report.hutchinson_trace),
    ]
    .map(|(t, v)| (t.to_string(), v as f32));
    w.event(step as i64, &Body::Scalars(&values))?;
    w.flush()
}
