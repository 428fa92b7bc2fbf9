//! Run outputs: `metrics.jsonl` (one JSON object per event) and `summary.json`. Step events are
//! summarised per worker over windows of `log_every` steps so the file stays small on fast models.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::events::{Event, StepEvent};
use crate::{Error, Result};

/// The headline numbers of a finished (or stopped) run.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub status: String,
    pub dataset: String,
    pub model: String,
    pub algo: String,
    pub schedule: String,
    pub workers: usize,
    pub seed: u64,
    pub epochs: f64,
    /// Local steps of the busiest worker (all of them, under `sync`).
    pub steps: u64,
    /// Local steps of all workers together, and of each.
    pub local_steps_total: u64,
    pub worker_steps: Vec<u64>,
    pub rounds: u64,
    pub wall_seconds: f64,
    pub train_seconds: f64,
    pub images_per_second: f64,
    pub train_loss: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    /// The final evaluation on the validation set (`--val-split`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<f64>,
    pub out: PathBuf,
    /// The model's trainable parameters.
    pub parameters: usize,
    /// A folder data set's class names (label i is `classes[i]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    /// With --per-class: the final evaluation's accuracy of each class, by label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_class_accuracy: Option<Vec<f64>>,
    /// With --link: the modelled link's seconds in all (every collective's modelled time), and
    /// the payload bytes of those collectives (S each).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// An open step window as a checkpoint keeps it: loss sum, steps, images.
pub type WindowState = (f64, u64, u64);

/// Per-worker running window of step losses.
#[derive(Default)]
struct Window {
    loss_sum: f64,
    steps: u64,
    images: u64,
    started: f64,
    /// Over a modelled link: the modelled milliseconds of the window's all-reduces (a resumed
    /// run's first window counts those since the resume).
    link_ms: Option<f64>,
}

/// Lines reach the disk at least this often, so `tail -f metrics.jsonl` follows a run.
const FLUSH_INTERVAL: Duration = Duration::from_secs(2);

/// Writes `metrics.jsonl` as events arrive.
pub struct MetricsWriter {
    path: PathBuf,
    file: BufWriter<File>,
    /// Bytes written so far (the position a checkpoint records).
    bytes: u64,
    last_flush: Instant,
    log_every: u64,
    windows: Vec<Window>,
    /// TensorBoard scalars, fed every line written (`--no-tensorboard`: none).
    tensorboard: Option<crate::tensorboard::Scalars>,
}

impl MetricsWriter {
    /// Creates `dir/metrics.jsonl` for `workers` workers, one step summary every `log_every` steps.
    pub fn create(dir: &Path, workers: usize, log_every: u64) -> Result<Self> {
        let path = dir.join("metrics.jsonl");
        let file = File::create(&path).map_err(|e| Error::write(&path, e))?;
        Ok(Self::from_file(path, file, workers, log_every))
    }

    /// Reopens `dir/metrics.jsonl` of a resumed run: cut back to `bytes` (what the checkpoint had
    /// seen), with the open step windows restored.
    pub fn resume(
        dir: &Path,
        workers: usize,
        log_every: u64,
        bytes: u64,
        windows: &[(f64, u64, u64)],
    ) -> Result<Self> {
        let path = dir.join("metrics.jsonl");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        file.set_len(bytes).map_err(|e| Error::io(&path, e))?;
        use std::io::Seek;
        file.seek(std::io::SeekFrom::End(0))
            .map_err(|e| Error::io(&path, e))?;
        let mut w = Self::from_file(path, file, workers, log_every);
        w.bytes = bytes;
        for (win, &(loss_sum, steps, images)) in w.windows.iter_mut().zip(windows) {
            *win = Window {
                loss_sum,
                steps,
                images,
                started: 0.0,
                link_ms: None,
            };
        }
        Ok(w)
    }

    fn from_file(path: PathBuf, file: File, workers: usize, log_every: u64) -> Self {
        Self {
            path,
            bytes: 0,
            file: BufWriter::new(file),
            last_flush: Instant::now(),
            log_every: log_every.max(1),
            windows: (0..workers).map(|_| Window::default()).collect(),
            tensorboard: None,
        }
    }

    /// Feeds every line written from now on to `tb` as well.
    pub fn attach_tensorboard(&mut self, tb: crate::tensorboard::Scalars) {
        self.tensorboard = Some(tb);
    }

    /// Bytes written so far, and the open step windows (for a checkpoint); flushes first.
    pub fn position(&mut self) -> Result<(u64, Vec<WindowState>)> {
        self.flush()?;
        let windows = self
            .windows
            .iter()
            .map(|w| (w.loss_sum, w.steps, w.images))
            .collect();
        Ok((self.bytes, windows))
    }

    /// Records one event.
    pub fn record(&mut self, event: &Event) -> Result<()> {
        match event {
            Event::Step(s) => self.step(s),
            Event::Eval(e) => self.tagged("eval", e),
            Event::Round(r) => self.tagged("round", r),
            Event::Pull(p) => self.tagged("pull", p),
            Event::RemoteLosses { .. } | Event::Checkpoint(_) | Event::Fatal => Ok(()),
        }
    }

    fn tagged(&mut self, tag: &str, value: &impl Serialize) -> Result<()> {
        let mut v = serde_json::to_value(value).map_err(|e| Error::Internal(e.to_string()))?;
        v["event"] = json!(tag);
        self.line(&v)
    }

    fn step(&mut self, s: &StepEvent) -> Result<()> {
        let w = &mut self.windows[s.worker];
        w.loss_sum += s.loss as f64;
        w.steps += 1;
        w.images += s.images as u64;
        if let Some(ms) = s.link_ms {
            *w.link_ms.get_or_insert(0.0) += ms;
        }
        if !s.step.is_multiple_of(self.log_every) {
            return Ok(());
        }
        let dt = s.seconds - w.started;
        let mut v = json!({
            "event": "steps",
            "worker": s.worker,
            "step": s.step,
            "epoch": s.epoch,
            "seconds": s.seconds,
            "lr": s.lr,
            "train_loss": w.loss_sum / w.steps as f64,
            "images_per_second": if dt > 0.0 { w.images as f64 / dt } else { 0.0 },
        });
        if let Some(ms) = w.link_ms {
            v["link_ms"] = json!(ms);
        }
        *w = Window {
            started: s.seconds,
            ..Window::default()
        };
        self.line(&v)
    }

    fn line(&mut self, v: &serde_json::Value) -> Result<()> {
        let line = v.to_string();
        writeln!(self.file, "{line}").map_err(|e| Error::write(&self.path, e))?;
        self.bytes += line.len() as u64 + 1;
        if let Some(tb) = &mut self.tensorboard {
            tb.record(v)?;
        }
        if self.last_flush.elapsed() >= FLUSH_INTERVAL {
            self.flush()?;
        }
        Ok(())
    }

    /// Flushes buffered lines to disk.
    pub fn flush(&mut self) -> Result<()> {
        self.last_flush = Instant::now();
        if let Some(tb) = &mut self.tensorboard {
            tb.flush()?;
        }
        self.file.flush().map_err(|e| Error::write(&self.path, e))
    }

    /// The end of the run's lines: what TensorBoard still holds back is written, then all is
    /// flushed.
    pub fn finish(&mut self) -> Result<()> {
        if let Some(tb) = &mut self.tensorboard {
            tb.finish()?;
        }
        self.flush()
    }
}

/// Writes `value` as pretty JSON to `path` atomically (temp file, then rename), so a reader never
/// sees half a file.
pub fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Internal(e.to_string()))?;
    // A write that fails (a full disk) leaves no `.tmp` behind, and the old file, if any, whole.
    let written = std::fs::write(&tmp, text + "\n").and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::write(path, e)
    })
}
