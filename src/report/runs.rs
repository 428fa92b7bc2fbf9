//! A run folder read back into typed data: `summary.json`, `config.json`, `metrics.jsonl` and, when
//! present, `flatness.json`. Unknown fields are ignored (newer trainers add some); a missing file,
//! bad JSON or a missing required field is an error naming the file (and the line of
//! `metrics.jsonl`).
//!
//! Non-finite numbers: serde_json writes NaN and infinities as `null`, so a diverged run has `null`
//! losses. Every float field here reads `null` as NaN rather than failing.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::error::ReportError;

/// The headline numbers of a run (`summary.json`).
#[derive(Clone, Debug, Deserialize)]
pub struct RunSummary {
    /// `done`, or why the run stopped.
    pub status: String,
    #[serde(default)]
    pub dataset: String,
    #[serde(default)]
    pub model: String,
    /// Algorithm name (`lgrawa`, `mgrawa`, `ddp`, ...).
    pub algo: String,
    /// `sync`, `permits` or `async`.
    pub schedule: String,
    pub workers: usize,
    pub seed: u64,
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub epochs: f64,
    #[serde(default)]
    pub steps: u64,
    #[serde(default)]
    pub local_steps_total: u64,
    #[serde(default)]
    pub worker_steps: Vec<u64>,
    pub rounds: u64,
    #[serde(deserialize_with = "nan_if_null")]
    pub wall_seconds: f64,
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub train_seconds: f64,
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub images_per_second: f64,
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub train_loss: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub test_loss: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub test_accuracy: f64,
    #[serde(default)]
    pub out: Option<PathBuf>,
    /// With --per-class: each class's test accuracy, by label (null: a class without test image).
    #[serde(default)]
    pub per_class_accuracy: Option<Vec<Option<f64>>>,
}

/// The parts of the resolved configuration (`config.json`) the reports use. Everything is optional:
/// the summary holds what the reports need, the config only adds detail.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RunConfig {
    pub dataset: Option<String>,
    pub model: Option<String>,
    pub workers: Option<usize>,
    pub seed: Option<u64>,
    pub algo: Option<AlgoConfig>,
}

/// The `algo` object of `config.json`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AlgoConfig {
    pub kind: Option<String>,
    pub schedule: Option<String>,
    /// Local steps between rounds.
    pub tau: Option<u64>,
    /// Pull strength toward the center or leader.
    pub pull: Option<f64>,
    /// GRAWA's norm source (`probe` or `accumulated`).
    #[serde(default)]
    pub norm_source: Option<String>,
    /// GRAWA's weight power.
    #[serde(default)]
    pub weight_power: Option<f64>,
}

/// Sharpness measures of the final model (`flatness.json`, written by `grawa-train flatness`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Flatness {
    /// Largest Hessian eigenvalue (Lanczos).
    #[serde(default)]
    pub lambda_max: Option<f64>,
    /// Sum of the Ritz values.
    #[serde(default)]
    pub ritz_sum: Option<f64>,
    /// Hutchinson estimate of the Hessian trace.
    #[serde(default)]
    pub hutchinson_trace: Option<f64>,
    /// Lanczos iterations per start.
    #[serde(default)]
    pub iterations: Option<usize>,
    /// Lanczos starts.
    #[serde(default)]
    pub starts: Option<usize>,
    /// Training images the loss was taken over.
    #[serde(default)]
    pub samples: Option<usize>,
    /// Hutchinson probes.
    #[serde(default)]
    pub hutchinson: Option<usize>,
}

/// A `steps` event: one worker's summary over its last `log_every` local steps.
#[derive(Clone, Debug, Deserialize)]
pub struct StepRecord {
    pub worker: usize,
    pub step: u64,
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub epoch: f64,
    /// Seconds since training started.
    #[serde(deserialize_with = "nan_if_null")]
    pub seconds: f64,
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub lr: f64,
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub train_loss: f64,
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub images_per_second: f64,
}

/// A `round` event: one averaging round.
#[derive(Clone, Debug, Deserialize)]
pub struct RoundRecord {
    pub round: u64,
    #[serde(deserialize_with = "nan_if_null")]
    pub seconds: f64,
    /// Local steps of all workers together.
    pub total_steps: u64,
    /// GRAWA weights: one per worker, or worker-major per layer (LGRAWA).
    #[serde(default, deserialize_with = "opt_vec_nan_if_null")]
    pub weights: Option<Vec<f64>>,
    /// The smoothed norms behind the weights (same layout).
    #[serde(default, deserialize_with = "opt_vec_nan_if_null")]
    pub norms: Option<Vec<f64>>,
    #[serde(default)]
    pub leader: Option<usize>,
    #[serde(default)]
    pub lambda: Option<f64>,
    #[serde(default)]
    pub staleness: u64,
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub gather_ms: f64,
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub compute_ms: f64,
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub scatter_ms: f64,
    #[serde(default)]
    pub bytes: u64,
}

/// A `pull` event (async schedule): a worker applied a pull.
#[derive(Clone, Debug, Deserialize)]
pub struct PullRecord {
    pub worker: usize,
    pub step: u64,
    #[serde(default)]
    pub lag: u64,
}

/// An `eval` event: a test-set evaluation of the averaged model.
#[derive(Clone, Debug, Deserialize)]
pub struct EvalRecord {
    /// Local steps of all workers together (the step count of the round it follows).
    pub total_steps: u64,
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub epoch: f64,
    /// Seconds since training started.
    #[serde(deserialize_with = "nan_if_null")]
    pub seconds: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub test_loss: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub test_accuracy: f64,
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub train_loss: f64,
    #[serde(default)]
    pub center_accuracy: Option<f64>,
    #[serde(default, deserialize_with = "opt_vec_nan_if_null")]
    pub worker_accuracy: Option<Vec<f64>>,
}

/// One line of `metrics.jsonl`, by its `event` tag. Unknown tags are kept as `Other` and skipped.
#[derive(Debug, Deserialize)]
#[serde(tag = "event")]
enum Line {
    #[serde(rename = "steps")]
    Steps(StepRecord),
    #[serde(rename = "round")]
    Round(RoundRecord),
    #[serde(rename = "pull")]
    Pull(PullRecord),
    #[serde(rename = "eval")]
    Eval(EvalRecord),
    #[serde(other)]
    Other,
}

/// Everything a run folder holds, read back.
#[derive(Clone, Debug)]
pub struct RunData {
    /// The run folder, as given.
    pub dir: PathBuf,
    pub summary: RunSummary,
    pub config: RunConfig,
    /// `flatness.json`, when the run has one.
    pub flatness: Option<Flatness>,
    pub steps: Vec<StepRecord>,
    pub rounds: Vec<RoundRecord>,
    pub pulls: Vec<PullRecord>,
    pub evals: Vec<EvalRecord>,
}

impl RunData {
    /// Reads the run folder `dir`. `summary.json`, `config.json` and `metrics.jsonl` must exist;
    /// `flatness.json` is read when present.
    pub fn load(dir: &Path) -> Result<Self, ReportError> {
        if !dir.is_dir() {
            return Err(ReportError::invalid(
                dir,
                None,
                "not a run folder (no such directory)",
            ));
        }
        let summary_path = dir.join("summary.json");
        if !summary_path.exists() {
            return Err(ReportError::invalid(
                &summary_path,
                None,
                "missing: the run has not finished (or was interrupted before writing it)",
            ));
        }
        let summary: RunSummary = read_json(&summary_path)?;
        let config: RunConfig = read_json(&dir.join("config.json"))?;
        let flatness_path = dir.join("flatness.json");
        let flatness = if flatness_path.exists() {
            Some(read_json::<Flatness>(&flatness_path)?)
        } else {
            None
        };

        let metrics_path = dir.join("metrics.jsonl");
        let workers = summary.workers;
        let mut run = RunData {
            dir: dir.to_path_buf(),
            summary,
            config,
            flatness,
            steps: Vec::new(),
            rounds: Vec::new(),
            pulls: Vec::new(),
            evals: Vec::new(),
        };
        for_each_json_line(&metrics_path, |line_no, line: Line| {
            match line {
                Line::Steps(s) => run.steps.push(s),
                Line::Round(r) => {
                    if let Some(w) = &r.weights {
                        if workers == 0 || w.is_empty() || w.len() % workers != 0 {
                            return Err(ReportError::invalid(
                                &metrics_path,
                                Some(line_no),
                                format!(
                                    "round {}: {} weights do not split over {workers} workers",
                                    r.round,
                                    w.len()
                                ),
                            ));
                        }
                    }
                    run.rounds.push(r)
                }
                Line::Pull(p) => run.pulls.push(p),
                Line::Eval(e) => run.evals.push(e),
                Line::Other => {}
            }
            Ok(())
        })?;
        Ok(run)
    }

    /// The method: the algorithm, plus the schedule when it is not `sync` (`"mgrawa (async)"`).
    pub fn method(&self) -> String {
        method_name(&self.summary.algo, &self.summary.schedule)
    }

    /// A short label for legends: method and seed (`"lgrawa s0"`).
    pub fn label(&self) -> String {
        format!("{} s{}", self.method(), self.summary.seed)
    }

    /// The largest Hessian eigenvalue from `flatness.json`, if any.
    pub fn lambda_max(&self) -> Option<f64> {
        self.flatness.as_ref().and_then(|f| f.lambda_max)
    }

    /// For each evaluation, the rounds completed by then: the last round whose step count is at
    /// most the evaluation's (0 before the first round).
    pub fn eval_rounds(&self) -> Vec<u64> {
        self.evals
            .iter()
            .map(|e| {
                self.rounds
                    .iter()
                    .filter(|r| r.total_steps <= e.total_steps)
                    .map(|r| r.round)
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    /// Whether any round carries GRAWA weights.
    pub fn has_weights(&self) -> bool {
        self.rounds.iter().any(|r| r.weights.is_some())
    }

    /// Layers behind each worker's weights: 1 for per-worker weights (MGRAWA), the layer count
    /// for per-layer weights (LGRAWA); 0 when no round has weights.
    pub fn weight_layers(&self) -> usize {
        self.rounds
            .iter()
            .find_map(|r| r.weights.as_ref())
            .map(|w| w.len() / self.summary.workers.max(1))
            .unwrap_or(0)
    }

    /// Each worker's weight per round, as `(round, weights)`: the weight itself, or for per-layer
    /// weights (stored worker-major) the worker's mean over layers. Rounds without weights are
    /// left out.
    pub fn worker_weights(&self) -> Vec<(u64, Vec<f64>)> {
        let workers = self.summary.workers.max(1);
        self.rounds
            .iter()
            .filter_map(|r| {
                let w = r.weights.as_ref()?;
                let layers = w.len() / workers;
                let per_worker = w
                    .chunks(layers.max(1))
                    .map(|c| c.iter().sum::<f64>() / c.len() as f64)
                    .collect();
                Some((r.round, per_worker))
            })
            .collect()
    }
}

/// `algo`, or `algo (schedule)` when the schedule is not `sync`.
pub fn method_name(algo: &str, schedule: &str) -> String {
    if schedule == "sync" || schedule.is_empty() {
        algo.to_string()
    } else {
        format!("{algo} ({schedule})")
    }
}

/// Loads several run folders, stopping at the first that fails.
pub fn load_runs<P: AsRef<Path>>(dirs: &[P]) -> Result<Vec<RunData>, ReportError> {
    dirs.iter().map(|d| RunData::load(d.as_ref())).collect()
}

/// Reads a whole JSON file into `T`.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| ReportError::invalid(path, None, e.to_string()))
}

/// Calls `f(line_number, value)` for each non-blank line of the JSON Lines file `path` (numbers
/// are 1-based). A line that does not parse is an error naming the file and line, except a last
/// line with no newline: that is a write torn by a killed process, and is skipped.
pub(crate) fn for_each_json_line<T, F>(path: &Path, mut f: F) -> Result<(), ReportError>
where
    T: DeserializeOwned,
    F: FnMut(usize, T) -> Result<(), ReportError>,
{
    let file = File::open(path).map_err(|e| ReportError::io(path, e))?;
    let mut reader = BufReader::new(file);
    let mut buf = String::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        let n = reader
            .read_line(&mut buf)
            .map_err(|e| ReportError::invalid(path, Some(line_no + 1), e.to_string()))?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        let complete = buf.ends_with('\n');
        let text = buf.trim();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(text) {
            Ok(v) => f(line_no, v)?,
            Err(_) if !complete => return Ok(()),
            Err(e) => {
                // serde_json counts lines within the string it was given: always line 1 here.
                let msg = e.to_string().replace(" at line 1 column ", " at column ");
                return Err(ReportError::invalid(path, Some(line_no), msg));
            }
        }
    }
}

fn nan() -> f64 {
    f64::NAN
}

/// A float that serde_json may have written as `null` (NaN or an infinity).
fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// An optional list of floats whose elements may be `null` (non-finite): those become NaN.
fn opt_vec_nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<f64>>, D::Error> {
    let v = Option::<Vec<Option<f64>>>::deserialize(d)?;
    Ok(v.map(|v| v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect()))
}
