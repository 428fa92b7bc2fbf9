//! `--algo` and its settings into an [`AlgoConfig`]: the algorithm's defaults from its table
//! (`AlgoKind::default`), a value given for an algorithm that does not take the flag refused by
//! name, every value checked.

use super::value_checks::{fraction, positive, positive_f64};
use super::TrainArgs;
use crate::algo::{AlgoConfig, AlgoFlag, AlgoKind, NormSource, ScheduleKind};
use crate::{Error, Result};

/// Resolves `--algo` and its settings from the algorithms' table (`AlgoKind::default`).
pub(super) fn algo_config(a: &TrainArgs) -> Result<AlgoConfig> {
    let kind = resolve_kind(a)?;
    let tau = setting(kind, AlgoFlag::Tau, a.tau.map(|t| t as f64))?
        .map(|t| positive("tau", t as u64))
        .transpose()?;
    let (norm_source, probe_samples) = resolve_norm_source(a, kind)?;
    Ok(AlgoConfig {
        kind,
        schedule: a.schedule,
        tau,
        pull: setting(kind, AlgoFlag::Pull, a.pull.map(f64::from))?
            .map(|v| fraction("pull", v as f32))
            .transpose()?,
        prox: resolve_prox(a, kind)?,
        beta: setting(kind, AlgoFlag::Beta, a.beta.map(f64::from))?
            .map(|v| fraction("beta", v as f32))
            .transpose()?,
        rho: setting(kind, AlgoFlag::Rho, a.rho.map(f64::from))?
            .map(|v| positive_f64("rho", v).map(|v| v as f32))
            .transpose()?,
        norm_source,
        weight_power: resolve_weight_power(a, kind)?,
        probe_samples,
        max_staleness: resolve_max_staleness(a, tau)?,
    })
}

/// The algorithm (LGRAWA with several workers, SGD with one when not given), refused with a
/// schedule it cannot run.
fn resolve_kind(a: &TrainArgs) -> Result<AlgoKind> {
    let kind = a.algo.unwrap_or(if a.workers > 1 {
        AlgoKind::Lgrawa
    } else {
        AlgoKind::Sgd
    });
    if kind == AlgoKind::Sgd && a.workers > 1 {
        return Err(Error::usage(format!(
            "--algo sgd trains one worker; with --workers {} pick an averaging algorithm (lgrawa, mgrawa, ddp, ddp-sam, local-sgd, easgd, lsgd)",
            a.workers
        )));
    }
    if !kind.schedules().contains(&a.schedule) {
        return Err(Error::usage(format!(
            "--schedule {}: --algo {kind} averages gradients at every step and runs with --schedule sync only",
            a.schedule
        )));
    }
    Ok(kind)
}

/// A value given for an algorithm that does not take the flag is refused; one not given takes
/// the algorithm's default (None where the flag does not apply).
fn setting(kind: AlgoKind, flag: AlgoFlag, given: Option<f64>) -> Result<Option<f64>> {
    let default = kind.default(flag);
    if given.is_some() && default.is_none() {
        return Err(Error::usage(format!(
            "--{} applies to {} only, not --algo {kind}",
            flag.name(),
            flag.takers()
        )));
    }
    Ok(given.or(default))
}

/// `--prox` in [0, 1]; 0 turns the proximal term off (None).
fn resolve_prox(a: &TrainArgs, kind: AlgoKind) -> Result<Option<f32>> {
    let prox = setting(kind, AlgoFlag::Prox, a.prox.map(f64::from))?.map(|p| p as f32);
    if let Some(p) = prox {
        if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
            return Err(Error::usage(format!(
                "--prox {p}: expected a value in [0, 1] (0 turns it off)"
            )));
        }
    }
    Ok(prox.filter(|&p| p > 0.0))
}

/// `--weight-power`: 1 or 2.
fn resolve_weight_power(a: &TrainArgs, kind: AlgoKind) -> Result<Option<f64>> {
    let weight_power = setting(kind, AlgoFlag::WeightPower, a.weight_power)?;
    if let Some(p) = weight_power {
        if p != 1.0 && p != 2.0 {
            return Err(Error::usage(format!("--weight-power {p}: expected 1 or 2")));
        }
    }
    Ok(weight_power)
}

/// GRAWA's `--norm-source` (probe by default) and the probe's samples (one batch by default).
fn resolve_norm_source(
    a: &TrainArgs,
    kind: AlgoKind,
) -> Result<(Option<NormSource>, Option<usize>)> {
    let grawa = kind.is_grawa();
    let norm_source = only_for(
        "norm-source",
        a.norm_source,
        grawa,
        "mgrawa and lgrawa",
        kind,
    )?
    .or(grawa.then_some(NormSource::Probe));
    let probe = norm_source == Some(NormSource::Probe);
    let probe_samples = only_for(
        "probe-samples",
        a.probe_samples,
        probe,
        "GRAWA with --norm-source probe",
        kind,
    )?
    .map(|v| positive("probe-samples", v))
    .transpose()?
    .or(probe.then_some(a.batch_size));
    Ok((norm_source, probe_samples))
}

/// `--max-staleness`: async only, 4 tau by default, never below tau.
fn resolve_max_staleness(a: &TrainArgs, tau: Option<u64>) -> Result<Option<u64>> {
    let is_async = a.schedule == ScheduleKind::Async;
    if a.max_staleness.is_some() && !is_async {
        return Err(Error::usage(
            "--max-staleness applies to --schedule async only",
        ));
    }
    let max_staleness = a
        .max_staleness
        .or(if is_async { tau.map(|t| 4 * t) } else { None });
    if let (Some(s), Some(t)) = (max_staleness, tau) {
        if s < t {
            return Err(Error::usage(format!(
                "--max-staleness {s}: must be at least --tau ({t}), or a worker could wait for a snapshot it has not sent"
            )));
        }
    }
    Ok(max_staleness)
}
/// Refuses a flag given for an algorithm it does not apply to.
fn only_for<T>(
    flag: &str,
    value: Option<T>,
    applies: bool,
    who: &str,
    algo: AlgoKind,
) -> Result<Option<T>> {
    if value.is_some() && !applies {
        return Err(Error::usage(format!(
            "--{flag} applies to {who} only, not --algo {algo}"
        )));
    }
    Ok(value)
}
