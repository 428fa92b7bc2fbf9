//! The resolved configuration of a run: validated values with their defaults filled in, written to
//! `config.json` so a run can be read (and repeated) without its command line. How flags become
//! this (`RunConfig::from_args`) is the command line's business: `cli::resolve`.

use std::path::PathBuf;

use serde::Serialize;

use crate::algo::AlgoConfig;
use crate::data::DatasetKind;
use crate::link::Link;
use crate::model::ModelKind;
use crate::optim::SgdConfig;
use crate::schedule::LrSchedule;
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
    pub algo: AlgoConfig,
    /// Workers of this process (`--workers`); with `ranks` processes the run has ranks x workers.
    pub workers: usize,
    /// Processes of the run (MPI ranks; 1 without `mpirun`), each with `workers` workers.
    pub ranks: usize,
    /// "cpu", or "cuda" when the workers train on GPUs.
    pub device: String,
    /// The GPU ordinal of each worker (round-robin over `--gpus`/`--gpu-ids`); empty on the CPU.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<usize>,
    pub budget: Budget,
    pub batch_size: usize,
    pub sgd: SgdConfig,
    pub schedule: LrSchedule,
    /// Evaluate every this many local steps per worker (`--eval-every N`).
    pub eval_every: Option<u64>,
    /// Evaluate every this many seconds of training instead (`--eval-every 10s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_every_seconds: Option<f64>,
    pub eval_batch_size: usize,
    pub eval_workers: bool,
    pub bn_recal_batches: usize,
    pub seed: u64,
    pub threads: usize,
    pub synthetic_train: usize,
    pub synthetic_test: usize,
    pub out: PathBuf,
    pub checkpoint_every: Option<CheckpointEvery>,
    pub keep: usize,
    pub flatness: bool,
    pub watchdog: Option<std::time::Duration>,
    /// The modelled interconnect (`--link`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<Link>,
    /// Each worker's speed as a fraction of its real one, by global worker (`--worker-speed`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub worker_speed: Vec<f64>,
    /// Training images held out of every worker's shard for validation (`--val-split`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_split: Option<usize>,
    /// How rounds and DDP's all-reduce move the workers' buffers (`--round`).
    #[serde(skip_serializing_if = "RoundTransport::is_hub")]
    pub round: RoundTransport,
    /// `--image-size`: the side a folder data set's images are resized and cropped to (the
    /// model's usual side by default), or the synthetic images' side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// Training batches augmented as the data set's recipe says (`--no-augment`: off; written
    /// only then).
    #[serde(skip_serializing_if = "is_true")]
    pub augment: bool,
    /// `--per-class`: per-class test accuracy at each evaluation and in the summary.
    #[serde(skip_serializing_if = "is_false")]
    pub per_class: bool,
    /// A TensorBoard event file in the run folder (`--no-tensorboard`: none; written only then).
    #[serde(skip_serializing_if = "is_true")]
    pub tensorboard: bool,
    /// The model's trainable parameters: filled in when the model is built.
    pub parameters: usize,
    /// The class names (label i is `classes[i]`) of a data set that has them (`folder`): filled
    /// in when it is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    /// Resuming the run in `out` from its newest checkpoint.
    #[serde(skip)]
    pub resume: bool,
    #[serde(skip)]
    pub quiet: bool,
    #[serde(skip)]
    pub json: bool,
    /// The flags the run was given (command line and --config), as `--name=value`: what
    /// `--resume` continues with.
    pub flags: Vec<String>,
    /// Tests only: slow one worker down by this much per step, to exercise asynchrony.
    #[serde(skip)]
    pub slow_worker: Option<(usize, std::time::Duration)>,
}

fn is_true(v: &bool) -> bool {
    *v
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// `--checkpoint-every`: a number of rounds, or a wall-clock interval.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum CheckpointEvery {
    Rounds(u64),
    Seconds(f64),
}

/// `--checkpoint-every`: "N" rounds, or a duration with a unit: "30s", "10m", "1h".
pub fn parse_checkpoint_every(v: &str) -> Result<CheckpointEvery> {
    match count_or_seconds(v) {
        Some(CountOrSeconds::Count(n)) => Ok(CheckpointEvery::Rounds(n)),
        Some(CountOrSeconds::Seconds(s)) => Ok(CheckpointEvery::Seconds(s)),
        None => Err(Error::usage(format!(
            "--checkpoint-every {v}: expected a number of rounds (50) or a duration (30s, 10m, 1h)"
        ))),
    }
}

/// `--eval-every`: "N" local steps per worker, or seconds of training with a unit ("10s", "2m",
/// "1h"), as (steps, seconds) with one of them set.
pub fn parse_eval_every(v: &str) -> Result<(Option<u64>, Option<f64>)> {
    match count_or_seconds(v) {
        Some(CountOrSeconds::Count(n)) => Ok((Some(n), None)),
        Some(CountOrSeconds::Seconds(s)) => Ok((None, Some(s))),
        None => Err(Error::usage(format!(
            "--eval-every {v}: expected a number of local steps (200) or seconds of training (10s, 2m, 1h)"
        ))),
    }
}

/// A flag's value as a count or as a duration.
enum CountOrSeconds {
    Count(u64),
    Seconds(f64),
}

/// A positive count ("50") or a positive duration with a unit s, m or h ("30s", "2m"); `None`
/// for anything else.
fn count_or_seconds(v: &str) -> Option<CountOrSeconds> {
    let scale = match v.chars().last() {
        Some('s') => 1.0,
        Some('m') => 60.0,
        Some('h') => 3600.0,
        _ => {
            return v
                .parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .map(CountOrSeconds::Count)
        }
    };
    v[..v.len() - 1]
        .parse::<f64>()
        .ok()
        .map(|x| x * scale)
        .filter(|x| x.is_finite() && *x > 0.0)
        .map(CountOrSeconds::Seconds)
}

/// How a round's all-reduces move the workers' buffers (`--round`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RoundTransport {
    /// The hub gathers the buffers and combines them itself (host memory, or peer copies to its
    /// GPU and our kernels).
    #[default]
    Hub,
    /// NCCL between the run's GPUs (one process; feature `nccl`).
    Nccl,
}

impl RoundTransport {
    /// True for the default (`hub`), which config.json leaves out.
    pub fn is_hub(&self) -> bool {
        *self == RoundTransport::Hub
    }
}

impl std::str::FromStr for RoundTransport {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "hub" => Ok(RoundTransport::Hub),
            "nccl" => Ok(RoundTransport::Nccl),
            _ => Err(format!(
                "unknown round transport '{s}': expected hub or nccl"
            )),
        }
    }
}

impl std::fmt::Display for RoundTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RoundTransport::Hub => "hub",
            RoundTransport::Nccl => "nccl",
        })
    }
}

/// Where each worker trains: worker `i` on GPU `gpu_ids[i % gpu_ids.len()]` (round-robin, so
/// `--gpus 2 --workers 4` puts workers 0 and 2 on GPU 0, 1 and 3 on GPU 1); an empty list keeps
/// every worker on the CPU (the result is then empty too).
pub fn placement(gpu_ids: &[usize], workers: usize) -> Vec<usize> {
    if gpu_ids.is_empty() {
        return Vec::new();
    }
    (0..workers).map(|i| gpu_ids[i % gpu_ids.len()]).collect()
}

/// The number of workers for `--workers given` on `gpus` GPUs: with GPUs and the default of one
/// worker, one worker per GPU; otherwise `given`, which must cover every GPU.
pub fn workers_for_gpus(given: usize, gpus: usize) -> Result<usize> {
    if gpus == 0 || given >= gpus {
        Ok(given)
    } else if given == 1 {
        Ok(gpus)
    } else {
        Err(Error::usage(format!(
            "--workers {given} on {gpus} GPUs: every GPU needs a worker; ask for at least {gpus} workers or fewer GPUs"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_every_takes_steps_or_seconds() {
        assert_eq!(parse_eval_every("20").unwrap(), (Some(20), None));
        assert_eq!(parse_eval_every("10s").unwrap(), (None, Some(10.0)));
        assert_eq!(parse_eval_every("2m").unwrap(), (None, Some(120.0)));
        assert_eq!(parse_eval_every("0.5h").unwrap(), (None, Some(1800.0)));
        for bad in ["0", "0s", "-3s", "ten", "NaNs", "infm", "", "1.5", "10x"] {
            let e = parse_eval_every(bad).expect_err(bad).to_string();
            assert!(e.contains(&format!("--eval-every {bad}:")), "{bad}: {e}");
        }
    }

    #[test]
    fn checkpoint_every_is_unchanged() {
        assert_eq!(
            parse_checkpoint_every("50").unwrap(),
            CheckpointEvery::Rounds(50)
        );
        assert_eq!(
            parse_checkpoint_every("10m").unwrap(),
            CheckpointEvery::Seconds(600.0)
        );
        assert!(parse_checkpoint_every("0").is_err());
    }
}
