//! Which TensorBoard scalar each figure of metrics.jsonl becomes, fed line by line.
//!
//! | line | tags (x = global step) |
//! |---|---|
//! | `steps` (per worker, every 20 steps) | `train/loss` (mean over the workers), `train/lr` (mean), `train/images_per_second` (sum), `train/link_ms` (mean, when present: DDP's all-reduces over `--link`), once every worker of this process has reached the step |
//! | `eval` | `test/accuracy`, `test/loss`, `train/loss_since_eval`, `val/accuracy`, `val/loss` (when present), `test/center_accuracy`, `test/worker_accuracy/worker<i>` (`--eval-workers`), `test/class_accuracy/<class>` (`--per-class`) |
//! | `round` | `round/weight/worker<i>` (LGRAWA: the mean over layers), `round/lambda`, `round/gather_ms`, `round/compute_ms`, `round/scatter_ms`, `round/link_ms` (when present), `round/staleness` |
//!
//! The flatness figures are added at the end (`record_flatness`). A value that is null in the
//! line (not a number) is left out.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::{Body, EventWriter};
use crate::Result;

/// The step windows of the workers that have reached one step.
#[derive(Default)]
struct Pending {
    workers: usize,
    loss: f64,
    lr: f64,
    images_per_second: f64,
    /// The workers' modelled link milliseconds (DDP over `--link`), summed.
    link_ms: Option<f64>,
}

/// Scalars from metrics lines into an event file.
pub struct Scalars {
    writer: EventWriter,
    /// Workers of the run (every rank's): evaluations and rounds are at total_steps / workers.
    workers: u64,
    /// Workers whose step lines this process writes.
    local: usize,
    classes: Option<Vec<String>>,
    pending: BTreeMap<u64, Pending>,
}

/// Appends (tag, value) when `value` is a number.
fn push(out: &mut Vec<(String, f32)>, tag: impl Into<String>, value: &Value) {
    if let Some(v) = value.as_f64() {
        out.push((tag.into(), v as f32));
    }
}

impl Scalars {
    /// A new event file in `dir` for a run of `workers` workers, `local` of them in this process;
    /// `classes` name the per-class tags; `resumed_at`: the global step after a resumed run's
    /// checkpoint (the file starts with a session start there).
    pub fn create(
        dir: &Path,
        workers: usize,
        local: usize,
        classes: Option<Vec<String>>,
        resumed_at: Option<u64>,
    ) -> Result<Self> {
        let mut writer = EventWriter::create(dir)?;
        if let Some(step) = resumed_at {
            writer.event(step as i64, &Body::SessionStart)?;
        }
        Ok(Self {
            writer,
            workers: workers.max(1) as u64,
            local: local.max(1),
            classes,
            pending: BTreeMap::new(),
        })
    }

    /// Records one metrics line (a JSON object with `event`).
    pub fn record(&mut self, line: &Value) -> Result<()> {
        match line["event"].as_str() {
            Some("steps") => self.steps(line),
            Some("eval") => {
                let values = self.eval_values(line);
                self.write(self.global_step(line), &values)
            }
            Some("round") => {
                let values = self.round_values(line);
                self.write(self.global_step(line), &values)
            }
            _ => Ok(()),
        }
    }

    fn global_step(&self, line: &Value) -> u64 {
        line["total_steps"].as_u64().unwrap_or(0) / self.workers
    }

    fn write(&mut self, step: u64, values: &[(String, f32)]) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        self.writer.event(step as i64, &Body::Scalars(values))
    }

    fn steps(&mut self, line: &Value) -> Result<()> {
        let step = line["step"].as_u64().unwrap_or(0);
        let p = self.pending.entry(step).or_default();
        p.workers += 1;
        p.loss += line["train_loss"].as_f64().unwrap_or(f64::NAN);
        p.lr += line["lr"].as_f64().unwrap_or(f64::NAN);
        p.images_per_second += line["images_per_second"].as_f64().unwrap_or(f64::NAN);
        if let Some(ms) = line["link_ms"].as_f64() {
            *p.link_ms.get_or_insert(0.0) += ms;
        }
        if p.workers < self.local {
            return Ok(());
        }
        self.emit_window(step)
    }

    /// Writes the window of `step` over the workers that reached it.
    fn emit_window(&mut self, step: u64) -> Result<()> {
        let Some(p) = self.pending.remove(&step) else {
            return Ok(());
        };
        let n = p.workers as f64;
        let mut values: Vec<(String, f32)> = [
            ("train/loss", p.loss / n),
            ("train/lr", p.lr / n),
            ("train/images_per_second", p.images_per_second),
        ]
        .map(|(t, v)| (t.to_string(), v as f32))
        .into();
        if let Some(ms) = p.link_ms {
            values.push(("train/link_ms".to_string(), (ms / n) as f32));
        }
        self.write(step, &values)
    }

    fn eval_values(&self, line: &Value) -> Vec<(String, f32)> {
        let mut out = Vec::new();
        for (tag, key) in [
            ("test/accuracy", "test_accuracy"),
            ("test/loss", "test_loss"),
            ("train/loss_since_eval", "train_loss"),
            ("val/accuracy", "val_accuracy"),
            ("val/loss", "val_loss"),
            ("test/center_accuracy", "center_accuracy"),
        ] {
            push(&mut out, tag, &line[key]);
        }
        for (i, v) in line["worker_accuracy"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            push(&mut out, format!("test/worker_accuracy/worker{i}"), v);
        }
        for (i, v) in line["per_class"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let name = self.classes.as_ref().and_then(|c| c.get(i));
            let name = name.cloned().unwrap_or_else(|| format!("class{i}"));
            push(&mut out, format!("test/class_accuracy/{name}"), v);
        }
        out
    }

    fn round_values(&self, line: &Value) -> Vec<(String, f32)> {
        let mut out = Vec::new();
        let weights: Vec<f64> = line["weights"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_f64)
            .collect();
        // One weight per worker, or worker-major per layer (LGRAWA): each worker's mean.
        let m = self.workers as usize;
        if !weights.is_empty() && weights.len().is_multiple_of(m) {
            let per = weights.len() / m;
            for (i, w) in weights.chunks(per).enumerate() {
                let mean = w.iter().sum::<f64>() / per as f64;
                out.push((format!("round/weight/worker{i}"), mean as f32));
            }
        }
        for key in [
            "lambda",
            "gather_ms",
            "compute_ms",
            "scatter_ms",
            "link_ms",
            "staleness",
        ] {
            push(&mut out, format!("round/{key}"), &line[key]);
        }
        out
    }

    /// Writes buffered events to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.writer.flush()
    }

    /// At the end of a run: the step windows that not every worker reached (workers stop at
    /// different steps under `permits` and `async`), over the workers that did; then flushes.
    pub fn finish(&mut self) -> Result<()> {
        let steps: Vec<u64> = self.pending.keys().copied().collect();
        for step in steps {
            self.emit_window(step)?;
        }
        self.flush()
    }
}
