//! The resolved configuration of a run: validated values with their defaults filled in, written to
//! `config.json` so a run can be read (and repeated) without its command line.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::cli::TrainArgs;
use crate::data::DatasetKind;
use crate::model::ModelKind;
use crate::optim::SgdConfig;
use crate::schedule::{parse_milestones, Decay, LrSchedule};
use crate::{Error, Result};

/// When training stops: at the first budget reached.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Budget {
    pub epochs: Option<f64>,
    pub steps: Option<u64>,
    pub minutes: Option<f64>,
}

/// Everything a run needs, validated.
#[derive(Clone, Debug, Serialize)]
pub struct RunConfig {
    pub dataset: DatasetKind,
    pub data_dir: PathBuf,
    pub model: ModelKind,
    pub algo: String,
    pub workers: usize,
    pub device: String,
    pub budget: Budget,
    pub batch_size: usize,
    pub sgd: SgdConfig,
    pub schedule: LrSchedule,
    pub eval_every: Option<u64>,
    pub eval_batch_size: usize,
    pub seed: u64,
    pub threads: usize,
    pub synthetic_train: usize,
    pub synthetic_test: usize,
    pub out: PathBuf,
    #[serde(skip)]
    pub quiet: bool,
    #[serde(skip)]
    pub json: bool,
}

fn positive_f64(flag: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(Error::usage(format!(
            "--{flag} {v}: expected a positive number"
        )))
    }
}

fn positive<T: PartialOrd + Default + std::fmt::Display + Copy>(flag: &str, v: T) -> Result<T> {
    if v > T::default() {
        Ok(v)
    } else {
        Err(Error::usage(format!(
            "--{flag} {v}: expected a positive integer"
        )))
    }
}

impl RunConfig {
    /// Validates parsed flags and fills in derived defaults.
    pub fn from_args(a: &TrainArgs) -> Result<Self> {
        let mut budget = Budget {
            epochs: a.epochs.map(|v| positive_f64("epochs", v)).transpose()?,
            steps: a.steps.map(|v| positive("steps", v)).transpose()?,
            minutes: a.minutes.map(|v| positive_f64("minutes", v)).transpose()?,
        };
        if budget.epochs.is_none() && budget.steps.is_none() && budget.minutes.is_none() {
            budget.epochs = Some(1.0);
        }
        let lr = positive_f64("lr", a.lr)?;
        if !(0.0..1.0).contains(&a.momentum) {
            return Err(Error::usage(format!(
                "--momentum {}: expected a value in [0, 1)",
                a.momentum
            )));
        }
        if !(a.weight_decay.is_finite() && a.weight_decay >= 0.0) {
            return Err(Error::usage(format!(
                "--weight-decay {}: expected a non-negative number",
                a.weight_decay
            )));
        }
        let decay = match a.lr_schedule.as_str() {
            "step" => {
                if a.milestones.is_empty() {
                    return Err(Error::usage(
                        "--lr-schedule step needs --milestones (e.g. 30,60 or 300s)",
                    ));
                }
                let (milestones, unit) = parse_milestones(&a.milestones).map_err(Error::Usage)?;
                let gamma = positive_f64("gamma", a.gamma)?;
                Decay::Step {
                    milestones,
                    unit,
                    gamma,
                }
            }
            other => {
                if !a.milestones.is_empty() {
                    return Err(Error::usage(format!(
                        "--milestones only applies to --lr-schedule step (got --lr-schedule {other})"
                    )));
                }
                if other == "cosine" {
                    Decay::Cosine
                } else {
                    Decay::Constant
                }
            }
        };
        let threads = match a.threads {
            Some(t) => positive("threads", t)?,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let out = a.out.clone().unwrap_or_else(|| default_out_dir(a));
        Ok(Self {
            dataset: a.dataset,
            data_dir: a.data_dir.clone(),
            model: a.model,
            algo: "sgd".into(),
            workers: 1,
            device: "cpu".into(),
            budget,
            batch_size: positive("batch-size", a.batch_size)?,
            sgd: SgdConfig {
                momentum: a.momentum as f32,
                nesterov: !a.no_nesterov,
                weight_decay: a.weight_decay as f32,
            },
            schedule: LrSchedule {
                base: lr,
                decay,
                warmup_steps: a.warmup_steps,
            },
            eval_every: a
                .eval_every
                .map(|v| positive("eval-every", v))
                .transpose()?,
            eval_batch_size: positive("eval-batch-size", a.eval_batch_size)?,
            seed: a.seed,
            threads,
            synthetic_train: positive("synthetic-train", a.synthetic_train)?,
            synthetic_test: positive("synthetic-test", a.synthetic_test)?,
            out,
            quiet: a.quiet,
            json: a.json,
        })
    }
}

/// `runs/<dataset>-<model>-seed<seed>-<unix seconds>`: unique enough for runs started by hand, and
/// sorts by start time.
fn default_out_dir(a: &TrainArgs) -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    PathBuf::from("runs").join(format!("{}-{}-seed{}-{secs}", a.dataset, a.model, a.seed))
}
