//! Parsed flags into a validated [`RunConfig`]: every value checked (the message names the flag
//! and what was expected), every default filled in, the algorithm's settings from its table
//! (`AlgoKind::default`). The configuration itself (`crate::config`) knows nothing of flags.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use super::value_checks::{positive, positive_f64};
use super::TrainArgs;
use crate::algo::ScheduleKind;
use crate::config::{
    parse_checkpoint_every, parse_eval_every, placement, workers_for_gpus, Budget, RoundTransport,
    RunConfig,
};
use crate::optim::SgdConfig;
use crate::schedule::{parse_milestones, Decay, LrSchedule};
use crate::{Error, Result};

/// Most workers a run takes: each is a thread with a whole model, optimizer and shard of its own.
pub const MAX_WORKERS: usize = 256;

/// `--threads` past this many per core only adds contention.
const MAX_THREADS_PER_CORE: usize = 4;

impl RunConfig {
    /// Validates parsed flags and fills in derived defaults.
    pub fn from_args(a: &TrainArgs) -> Result<Self> {
        let gpu_ids = resolve_gpus(a)?;
        let mut resolved = a.clone();
        resolved.workers = resolve_workers(a.workers, gpu_ids.len())?;
        let a = &resolved;
        let budget = resolve_budget(a)?;
        let schedule = LrSchedule {
            base: positive_f64("lr", a.lr)?,
            decay: resolve_decay(a)?,
            warmup_steps: a.warmup_steps,
        };
        let sgd = resolve_sgd(a)?;
        let threads = resolve_threads(a.threads)?;
        let out = resolve_out(a)?;
        let algo = super::resolve_algo::algo_config(a)?;
        let checkpoint_every = a
            .checkpoint_every
            .as_deref()
            .map(parse_checkpoint_every)
            .transpose()?;
        if checkpoint_every.is_some() && algo.schedule == ScheduleKind::Async {
            return Err(Error::usage(
                "--checkpoint-every needs --schedule sync or permits (async runs checkpoint at the end and on Ctrl-C)",
            ));
        }
        let (eval_every, eval_every_seconds) = match a.eval_every.as_deref() {
            Some(v) => parse_eval_every(v)?,
            None => (None, None),
        };
        Ok(Self {
            dataset: a.dataset,
            data_dir: a.data_dir.clone(),
            model: a.model,
            algo,
            workers: positive("workers", a.workers)?,
            ranks: 1,
            device: if gpu_ids.is_empty() { "cpu" } else { "cuda" }.into(),
            gpus: placement(&gpu_ids, a.workers),
            budget,
            batch_size: positive("batch-size", a.batch_size)?,
            sgd,
            schedule,
            eval_every,
            eval_every_seconds,
            eval_batch_size: positive("eval-batch-size", a.eval_batch_size)?,
            eval_workers: a.eval_workers,
            bn_recal_batches: positive("bn-recal-batches", a.bn_recal_batches)?,
            seed: a.seed,
            threads,
            synthetic_train: positive("synthetic-train", a.synthetic_train)?,
            synthetic_test: positive("synthetic-test", a.synthetic_test)?,
            out,
            checkpoint_every,
            keep: positive("keep", a.keep)?,
            flatness: a.flatness,
            watchdog: a
                .watchdog
                .map(|w| positive_f64("watchdog", w).map(std::time::Duration::from_secs_f64))
                .transpose()?,
            round: resolve_round(a, &gpu_ids)?,
            image_size: resolve_image_size(a)?,
            augment: !a.no_augment,
            per_class: a.per_class,
            tensorboard: !a.no_tensorboard,
            parameters: 0,
            classes: None,
            link: a.link.clone(),
            worker_speed: worker_speed(&a.worker_speed, a.workers)?,
            val_split: a.val_split.map(|n| positive("val-split", n)).transpose()?,
            resume: a.resume.is_some(),
            quiet: a.quiet,
            json: a.json,
            flags: super::resume::flags_to_save(&a.given),
            slow_worker: None,
        })
    }
}

/// `--workers`: 1 to [`MAX_WORKERS`], and at least one per GPU.
fn resolve_workers(workers: usize, gpus: usize) -> Result<usize> {
    if workers > MAX_WORKERS {
        return Err(Error::usage(format!(
            "--workers {workers}: at most {MAX_WORKERS} (each worker is a thread with a whole model of its own)"
        )));
    }
    workers_for_gpus(positive("workers", workers)?, gpus)
}

/// The budget flags given (each positive); one epoch when none is.
fn resolve_budget(a: &TrainArgs) -> Result<Budget> {
    let mut budget = Budget {
        epochs: a.epochs.map(|v| positive_f64("epochs", v)).transpose()?,
        steps: a.steps.map(|v| positive("steps", v)).transpose()?,
        minutes: a.minutes.map(|v| positive_f64("minutes", v)).transpose()?,
    };
    if budget.epochs.is_none() && budget.steps.is_none() && budget.minutes.is_none() {
        budget.epochs = Some(1.0);
    }
    Ok(budget)
}

/// `--momentum` in [0, 1), `--weight-decay` non-negative, Nesterov unless `--no-nesterov`.
fn resolve_sgd(a: &TrainArgs) -> Result<SgdConfig> {
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
    Ok(SgdConfig {
        momentum: a.momentum as f32,
        nesterov: !a.no_nesterov,
        weight_decay: a.weight_decay as f32,
    })
}

/// `--lr-schedule` with its `--milestones` and `--gamma`, each refused where it does not apply.
fn resolve_decay(a: &TrainArgs) -> Result<Decay> {
    Ok(match a.lr_schedule.as_str() {
        "step" => {
            if a.milestones.is_empty() {
                return Err(Error::usage(
                    "--lr-schedule step needs --milestones (e.g. 30,60 or 300s)",
                ));
            }
            let (milestones, unit) = parse_milestones(&a.milestones).map_err(Error::Usage)?;
            let gamma = positive_f64("gamma", a.gamma.unwrap_or(0.1))?;
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
            if let Some(g) = a.gamma {
                return Err(Error::usage(format!(
                    "--gamma {g} only applies to --lr-schedule step (got --lr-schedule {other})"
                )));
            }
            if other == "cosine" {
                Decay::Cosine
            } else {
                Decay::Constant
            }
        }
    })
}

/// `--threads`: at least 1 and at most a few per core; the machine's cores when not given.
fn resolve_threads(threads: Option<usize>) -> Result<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(match threads {
        Some(t) if t > MAX_THREADS_PER_CORE * cores => {
            return Err(Error::usage(format!(
                "--threads {t}: this machine has {cores} cores; more than {} threads ({MAX_THREADS_PER_CORE} per core) only slow training down",
                MAX_THREADS_PER_CORE * cores
            )))
        }
        Some(t) => positive("threads", t)?,
        None => cores,
    })
}

/// The run's folder: `--resume`'s, `--out`, or a new one under `runs/`.
fn resolve_out(a: &TrainArgs) -> Result<PathBuf> {
    Ok(match (&a.resume, &a.out) {
        (Some(r), Some(o)) if r != o => {
            return Err(Error::usage(format!(
                "--resume {} continues in that folder: drop --out {} or make them the same",
                r.display(),
                o.display()
            )))
        }
        (Some(r), _) => r.clone(),
        (None, Some(o)) => o.clone(),
        (None, None) => default_out_dir(a),
    })
}

/// `runs/<dataset>-<model>-seed<seed>-<unix seconds>`: unique enough for runs started by hand, and
/// sorts by start time.
fn default_out_dir(a: &TrainArgs) -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let algo = a.algo.map_or_else(
        || {
            if a.workers > 1 {
                "lgrawa".into()
            } else {
                "sgd".into()
            }
        },
        |k| k.to_string(),
    );
    PathBuf::from("runs").join(format!(
        "{}-{}-{algo}-w{}-seed{}-{secs}",
        a.dataset, a.model, a.workers, a.seed
    ))
}

/// `--worker-speed`: one speed in (0, 1] per worker of the run (`workers` in this process, times
/// the ranks an MPI launcher started); empty when not given.
fn worker_speed(speeds: &[f64], workers: usize) -> Result<Vec<f64>> {
    if speeds.is_empty() {
        return Ok(Vec::new());
    }
    let ranks = crate::ranks::launched_size()
        .filter(|&n| n > 1)
        .unwrap_or(1);
    let want = workers * ranks;
    if speeds.len() != want {
        let across = if ranks > 1 {
            format!(" ({ranks} ranks x {workers} workers)")
        } else {
            String::new()
        };
        let given: Vec<String> = speeds.iter().map(f64::to_string).collect();
        return Err(Error::usage(format!(
            "--worker-speed {}: {} given for {want} workers{across}; give one speed per worker",
            given.join(","),
            speeds.len()
        )));
    }
    if let Some(bad) = speeds.iter().find(|f| !(**f > 0.0 && **f <= 1.0)) {
        return Err(Error::usage(format!(
            "--worker-speed {bad}: expected a speed in (0, 1] (1 is full speed, 0.5 half)"
        )));
    }
    Ok(speeds.to_vec())
}

/// `--image-size`: folder and synthetic data sets only, at least 1; a folder set records the
/// model's side when none is given.
fn resolve_image_size(a: &TrainArgs) -> Result<Option<usize>> {
    use crate::data::DatasetKind;
    let size = a
        .image_size
        .map(|s| positive("image-size", s))
        .transpose()?;
    match (a.dataset, size) {
        (DatasetKind::Folder, size) => Ok(Some(a.model.input_shape(size).height)),
        (DatasetKind::Synthetic, size) => Ok(size),
        (_, None) => Ok(None),
        (other, Some(s)) => Err(Error::usage(format!(
            "--image-size {s} applies to --dataset folder and synthetic only (--dataset {other} has a fixed image size)"
        ))),
    }
}

/// `--round`: NCCL moves GPU buffers, so it needs GPUs and a build with NCCL.
fn resolve_round(a: &TrainArgs, gpu_ids: &[usize]) -> Result<RoundTransport> {
    let round = a.round.unwrap_or_default();
    if round == RoundTransport::Nccl {
        if gpu_ids.is_empty() {
            return Err(Error::usage(
                "--round nccl: NCCL moves GPU buffers; give --gpus N (on the CPU the round is the hub's)",
            ));
        }
        if !cfg!(feature = "nccl") {
            return Err(Error::usage(
                "--round nccl: this build has no NCCL; build with --features nccl (scripts/cuda-toolchain.sh sets up nvcc)",
            ));
        }
    }
    Ok(round)
}

/// `--gpus` / `--gpu-ids`: the GPU ordinals asked for (empty: train on the CPU), checked against
/// what this build and driver can give. A build without `cuda`, a driver that cannot start and
/// fewer GPUs than asked for are usage errors that say which.
pub fn resolve_gpus(a: &TrainArgs) -> Result<Vec<usize>> {
    let ids: Vec<usize> = match (a.gpus, a.gpu_ids.is_empty()) {
        (None, true) => return Ok(Vec::new()),
        (Some(0), _) => {
            return Err(Error::usage(
                "--gpus 0: expected at least 1 (leave the flag out to train on the CPU)",
            ))
        }
        (Some(n), true) => (0..n).collect(),
        (Some(n), false) => {
            return Err(Error::usage(format!(
                "--gpus {n} with --gpu-ids: give one of them (--gpu-ids picks the GPUs itself)"
            )))
        }
        (None, false) => a.gpu_ids.clone(),
    };
    if let Some(d) = (1..ids.len()).find(|&i| ids[..i].contains(&ids[i])) {
        return Err(Error::usage(format!(
            "--gpu-ids: GPU {} is listed twice (use --workers to put several workers on one GPU)",
            ids[d]
        )));
    }
    let flag = if a.gpu_ids.is_empty() {
        format!("--gpus {}", ids.len())
    } else {
        let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        format!("--gpu-ids {}", list.join(","))
    };
    let wanted = ids.iter().max().map_or(0, |m| m + 1);
    match crate::gpus::gpu_count() {
        Err(reason) => Err(Error::usage(format!("{flag}: {reason}"))),
        Ok(0) => Err(Error::usage(format!(
            "{flag}: no GPU found: the CUDA driver sees none{}",
            std::env::var("CUDA_VISIBLE_DEVICES")
                .map(|v| format!(" (CUDA_VISIBLE_DEVICES={v:?})"))
                .unwrap_or_default()
        ))),
        Ok(n) if n < wanted => Err(Error::usage(format!(
            "{flag}: needs {wanted} GPUs (ordinals 0..{}), the CUDA driver sees {n}{}",
            wanted - 1,
            std::env::var("CUDA_VISIBLE_DEVICES")
                .map(|v| format!(" (CUDA_VISIBLE_DEVICES={v:?})"))
                .unwrap_or_default()
        ))),
        Ok(_) => Ok(ids),
    }
}
