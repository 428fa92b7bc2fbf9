//! `--resume DIR`: a resumed run keeps the experiment it was started as. The flags a run was given
//! (after `--config` was merged) are saved in its `config.json` under `flags`; resuming takes them
//! from there, so `grawa-train --resume DIR` alone continues the run. A flag given with it that
//! would change the experiment is refused, naming the flag and both values; the flags in
//! [`MAY_CHANGE`] only say where and how the run reports, and may differ.

use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};

use super::TrainArgs;
use crate::config::RunConfig;

/// Flags a resumed run may change: how it reports and what it may use, not what it computes.
pub const MAY_CHANGE: [&str; 11] = [
    "quiet",
    "no-tensorboard",
    "json",
    "watchdog",
    "checkpoint-every",
    "keep",
    "data-dir",
    "threads",
    "resume",
    "out",
    "config",
];

/// `config.json` keys that follow from the flags in [`MAY_CHANGE`] (or are the flags themselves).
const REPORTING_KEYS: [&str; 8] = [
    "out",
    "tensorboard",
    "threads",
    "watchdog",
    "checkpoint_every",
    "keep",
    "data_dir",
    "flags",
];

/// The flags given explicitly (on the command line or through `--config`), as `--name=value`
/// arguments (`--name` for switches), in the command's order.
pub fn explicit_flags(matches: &ArgMatches) -> Vec<String> {
    let cmd = TrainArgs::command();
    let mut out = Vec::new();
    for arg in cmd.get_arguments() {
        let (id, Some(long)) = (arg.get_id().as_str(), arg.get_long()) else {
            continue;
        };
        if matches.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        if !arg.get_action().takes_values() {
            out.push(format!("--{long}"));
            continue;
        }
        let values: Vec<String> = matches
            .get_raw(id)
            .into_iter()
            .flatten()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        out.push(format!("--{long}={}", values.join(",")));
    }
    out
}

/// The flags of `given` that describe the run, as `config.json` keeps them (not where it is
/// written, resumed from, or configured from).
pub fn flags_to_save(given: &[String]) -> Vec<String> {
    given
        .iter()
        .filter(|f| !["resume", "out", "config"].contains(&name_of(f)))
        .cloned()
        .collect()
}

/// The flag's name in a `--name=value` or `--name` argument.
fn name_of(flag: &str) -> &str {
    let bare = flag.trim_start_matches('-');
    bare.split_once('=').map_or(bare, |(n, _)| n)
}

/// Parses `args` (flags only) into arguments and their explicit flags.
fn parse(args: &[String]) -> Result<TrainArgs, clap::Error> {
    let argv = std::iter::once("grawa-train".to_string()).chain(args.iter().cloned());
    let matches: ArgMatches = TrainArgs::command().try_get_matches_from(argv)?;
    let mut a = TrainArgs::from_arg_matches(&matches)?;
    a.given = explicit_flags(&matches);
    Ok(a)
}

/// The experiment `args` describe: the resolved configuration without what may change.
fn experiment(args: &[String]) -> Option<serde_json::Value> {
    let cfg = RunConfig::from_args(&parse(args).ok()?).ok()?;
    let mut v = serde_json::to_value(cfg).ok()?;
    if let Some(map) = v.as_object_mut() {
        for k in REPORTING_KEYS {
            map.remove(k);
        }
    }
    Some(v)
}

/// The flags a `--resume dir` run goes with: the run's saved flags, then those of `given` that
/// may change. `Ok(None)` for a run saved before flags were kept (its flags must be given again,
/// and are checked against the checkpoint as before). An error names a flag that would change
/// the experiment, with both values.
pub fn resume_flags(dir: &Path, given: &[String]) -> Result<Option<Vec<String>>, String> {
    let where_ = dir.display();
    let path = dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => return Err(format!("--resume {where_}: {}: {e}", path.display())),
    };
    let saved: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "--resume {where_}: {} is not valid JSON: {e}",
            path.display()
        )
    })?;
    let Some(flags) = saved.get("flags").and_then(|f| f.as_array()) else {
        return Ok(None);
    };
    let saved: Vec<String> = flags
        .iter()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect();
    let resume = format!("--resume={}", dir.display());
    let with_resume = |mut v: Vec<String>| {
        v.push(resume.clone());
        v
    };
    let base = experiment(&with_resume(saved.clone()));
    let mut out = saved.clone();
    for flag in given {
        let name = name_of(flag);
        if MAY_CHANGE.contains(&name) {
            // --config's values are among the flags already; --resume is added by the caller.
            if name != "resume" && name != "config" {
                out.push(flag.clone());
            }
            continue;
        }
        if saved.contains(flag) {
            continue;
        }
        let mut changed = saved.clone();
        changed.push(flag.clone());
        // A flag that resolves to the same experiment (a default spelled out) is harmless.
        if experiment(&with_resume(changed)) == base && base.is_some() {
            continue;
        }
        let before = saved
            .iter()
            .rev()
            .find(|f| name_of(f) == name)
            .map_or_else(|| "its default".to_string(), |f| show(f));
        return Err(format!(
            "--resume {where_}: {} would change the run, which was started with {before}; a resumed run keeps its settings (drop the flag, or start a new run)",
            show(flag)
        ));
    }
    Ok(Some(out))
}

/// `--name=value` as a person types it: `--name value`.
fn show(flag: &str) -> String {
    flag.replacen('=', " ", 1)
}

/// Clap's command, for errors raised while resuming.
pub fn command() -> Command {
    TrainArgs::command()
}
