//! The command line: clap derive structs that only parse and validate, `--config FILE.toml`
//! merged underneath the flags, and `run`, which turns everything into an exit code.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};

mod resolve;
mod resume;

use crate::algo::{AlgoFlag, AlgoKind, NormSource, ScheduleKind};
use crate::config::{RoundTransport, RunConfig};
use crate::data::DatasetKind;
use crate::model::ModelKind;
use crate::Result;

/// Train an image classifier with gradient-weighted model averaging (GRAWA) or a baseline.
///
/// Other commands: `grawa-train plot RUN... --out DIR`, `grawa-train compare RUN...`,
/// `grawa-train reproduction-report RUNS --out FILE.md`, `grawa-train flatness --checkpoint RUN`,
/// `grawa-train selftest`, `grawa-train bench` (each has --help).
///
/// Every flag can also be set in a TOML file given with --config (keys are the flag names without
/// the dashes, e.g. `lr = 0.05`); flags on the command line win. Exit codes: 0 done, 1 diverged,
/// 2 bad usage or input, 130 interrupted.
#[derive(Parser, Debug, Clone)]
#[command(name = "grawa-train", version, about, long_about, max_term_width = 100, after_help = crate::error::EXIT_CODES)]
// Later occurrences win (so flags override --config values) and "-1" is a value, not a flag.
#[command(args_override_self = true, allow_negative_numbers = true)]
pub struct TrainArgs {
    /// Data set: mnist, fashion-mnist, cifar10, cifar100 or synthetic (needs no files).
    #[arg(long, default_value = "mnist")]
    pub dataset: DatasetKind,

    /// Folder holding the data sets (mnist/, fashion-mnist/, cifar-10-batches-bin/, cifar-100-binary/).
    #[arg(long, env = "GRAWA_DATA", default_value = "data")]
    pub data_dir: PathBuf,

    /// Model: mlp, cnn (28x28 images), resnet20 or vgg16 (32x32 images).
    #[arg(long, default_value = "mlp")]
    pub model: ModelKind,

    /// Workers (model replicas), one thread each, on disjoint shards of the training set; at most
    /// 256.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,

    /// Algorithm: lgrawa, mgrawa, ddp, ddp-sam, local-sgd, easgd, lsgd; sgd for one worker.
    /// Default: lgrawa with several workers, sgd with one.
    #[arg(long)]
    pub algo: Option<AlgoKind>,

    /// How local steps and rounds interleave: sync (tau steps each, then all meet), permits
    /// (workers*tau steps per round, first come first served) or async (nobody waits).
    #[arg(long, default_value = "sync")]
    pub schedule: ScheduleKind,

    // The algorithm-specific flags' help comes from the algorithms' table (`AlgoKind::default`),
    // the same table validation and the resolved configuration read.
    #[arg(long, help = AlgoFlag::Tau.help())]
    pub tau: Option<u64>,

    #[arg(long, help = AlgoFlag::Pull.help())]
    pub pull: Option<f32>,

    #[arg(long, help = AlgoFlag::Prox.help())]
    pub prox: Option<f32>,

    #[arg(long, help = AlgoFlag::Beta.help())]
    pub beta: Option<f32>,

    #[arg(long, help = AlgoFlag::Rho.help())]
    pub rho: Option<f32>,

    /// Where GRAWA's gradient norms come from: probe (a fresh batch at each round) or accumulated
    /// (the local steps' gradients since the last round).
    #[arg(long)]
    pub norm_source: Option<NormSource>,

    #[arg(long, value_name = "POWER", help = AlgoFlag::WeightPower.help())]
    pub weight_power: Option<f64>,

    /// Images in GRAWA's probe batch (default: the batch size).
    #[arg(long)]
    pub probe_samples: Option<usize>,

    /// Async only: the most local steps a worker runs past its last snapshot without receiving a
    /// center built from it (default 4*tau).
    #[arg(long)]
    pub max_staleness: Option<u64>,

    /// Also evaluate the center and every worker at each evaluation.
    #[arg(long)]
    pub eval_workers: bool,

    /// Training batches used to recalibrate BatchNorm statistics of the evaluated model.
    #[arg(long, default_value_t = 16)]
    pub bn_recal_batches: usize,

    /// Checkpoint every N rounds, or every interval of wall time (30s, 10m, 1h); always at the end
    /// and on Ctrl-C. Periodic checkpoints need --schedule sync or permits.
    #[arg(long)]
    pub checkpoint_every: Option<String>,

    /// Checkpoints to keep (the newest).
    #[arg(long, default_value_t = 2)]
    pub keep: usize,

    /// Continue the run in this folder from its newest checkpoint, with the flags it was started
    /// with (saved in its config.json). A flag given with it that would change the run is refused;
    /// --quiet, --json, --watchdog, --checkpoint-every, --keep, --data-dir and --threads may change.
    #[arg(long)]
    pub resume: Option<PathBuf>,

    /// At the end, measure the flatness of the evaluated model (Lanczos lambda_max, sum of Ritz
    /// values, Hutchinson trace; see `grawa-train flatness --help`) into flatness.json.
    #[arg(long)]
    pub flatness: bool,

    /// Train on GPUs 0..N-1 (needs a build with the `cuda` feature).
    #[arg(long)]
    pub gpus: Option<usize>,

    /// Train on these GPUs (e.g. 2,3) instead of 0..N-1.
    #[arg(long, value_delimiter = ',')]
    pub gpu_ids: Vec<usize>,

    /// How rounds and DDP's all-reduce move the workers' buffers: hub (the pulling thread gathers
    /// and combines them; the default) or nccl (NCCL between the GPUs: needs --gpus and a build
    /// with the nccl feature).
    #[arg(long, value_name = "hub|nccl")]
    pub round: Option<RoundTransport>,

    /// End the run with an error naming the worker when one sends nothing for this many seconds
    /// while it is waited for (set it above the time of tau local steps). Off by default.
    #[arg(long)]
    pub watchdog: Option<f64>,

    /// Stop after this many epochs (fractions allowed). Default 1 when no budget is given.
    #[arg(long)]
    pub epochs: Option<f64>,

    /// Stop after this many optimizer steps.
    #[arg(long)]
    pub steps: Option<u64>,

    /// Stop after this many minutes of training (fractions allowed).
    #[arg(long)]
    pub minutes: Option<f64>,

    /// Images per mini-batch (per worker).
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,

    /// Base learning rate.
    #[arg(long, default_value_t = 0.1)]
    pub lr: f64,

    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,

    /// Use plain (heavy-ball) momentum instead of Nesterov's.
    #[arg(long)]
    pub no_nesterov: bool,

    /// Coupled (L2) weight decay.
    #[arg(long, default_value_t = 1e-4)]
    pub weight_decay: f64,

    /// Learning-rate schedule: cosine (over the budget), step (see --milestones) or constant.
    #[arg(long, default_value = "cosine", value_parser = ["constant", "step", "cosine"])]
    pub lr_schedule: String,

    /// Step-schedule milestones, in epochs (30,60) or seconds of training (300s,600s).
    #[arg(long, value_delimiter = ',')]
    pub milestones: Vec<String>,

    /// Step-schedule factor applied at each milestone (--lr-schedule step only) [default: 0.1].
    #[arg(long)]
    pub gamma: Option<f64>,

    /// Linear warm-up over this many steps.
    #[arg(long, default_value_t = 0)]
    pub warmup_steps: u64,

    /// Evaluate on the test set every N local steps per worker, or every interval of training
    /// time (10s, 2m, 1h) (default: once per epoch; always at the end). Taken at the first round
    /// after that; algorithms without rounds (ddp, ddp-sam, sgd) meet for it at the next step.
    #[arg(long, value_name = "N|DURATION")]
    pub eval_every: Option<String>,

    /// Hold N training images out of every worker's shard (the same images for every seed and
    /// method) and score them at each evaluation beside the test set (val_loss, val_accuracy):
    /// choose hyperparameters on these, report the test set.
    #[arg(long, value_name = "N")]
    pub val_split: Option<usize>,

    #[arg(long, value_name = "BANDWIDTH,LATENCY|PRESET", help = crate::link::presets::help())]
    pub link: Option<crate::link::Link>,

    /// Slow workers down: one speed per worker (across mpirun ranks, per worker of the whole run,
    /// rank by rank), each in (0, 1]; worker i sleeps its measured step time times (1/f - 1)
    /// after each step, so its steps take 1/f as long (e.g. 1,1,1,0.5: the last at half speed).
    #[arg(long, value_delimiter = ',', value_name = "F,F,...")]
    pub worker_speed: Vec<f64>,

    /// Images per evaluation batch.
    #[arg(long, default_value_t = 1000)]
    pub eval_batch_size: usize,

    /// Seed for initialisation, shuffling, augmentation and the synthetic data set.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// CPU threads in total (default: all cores; at most 4 per core).
    #[arg(long)]
    pub threads: Option<usize>,

    /// Training images in the synthetic data set.
    #[arg(long, default_value_t = 10_000)]
    pub synthetic_train: usize,

    /// Test images in the synthetic data set.
    #[arg(long, default_value_t = 2_000)]
    pub synthetic_test: usize,

    /// Output folder for config.json, metrics.jsonl and summary.json (default: runs/<dataset>-<model>-seed<seed>-<time>).
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// TOML file with flag values (flags given here override it).
    #[arg(long)]
    pub config: Option<PathBuf>,

    /// No progress output.
    #[arg(long)]
    pub quiet: bool,

    /// Print summary.json as one line on stdout at the end.
    #[arg(long)]
    pub json: bool,

    /// The flags given explicitly (command line and --config), as `--name=value`: saved in
    /// config.json so `--resume` can take them from there.
    #[arg(skip)]
    pub given: Vec<String>,
}

/// Parses `args` (program name first), with `--config` merged under the flags.
pub fn parse_from<I, T>(args: I) -> Result<TrainArgs, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let a = parse_merged(args)?;
    let Some(dir) = a.resume.clone() else {
        return Ok(a);
    };
    match resume::resume_flags(&dir, &a.given) {
        Ok(None) => Ok(a),
        Ok(Some(flags)) => {
            let mut argv = vec![OsString::from("grawa-train")];
            argv.extend(flags.into_iter().map(OsString::from));
            argv.push(OsString::from("--resume"));
            argv.push(dir.into_os_string());
            parse_one(&argv)
        }
        Err(msg) => Err(resume::command().error(clap::error::ErrorKind::ArgumentConflict, msg)),
    }
}

/// Parses once, recording the flags given explicitly.
fn parse_one(args: &[OsString]) -> Result<TrainArgs, clap::Error> {
    let matches = TrainArgs::command().try_get_matches_from(args)?;
    let mut a = TrainArgs::from_arg_matches(&matches)?;
    a.given = resume::explicit_flags(&matches);
    Ok(a)
}

/// Parses `args` with `--config`'s values merged under the flags.
fn parse_merged(args: Vec<OsString>) -> Result<TrainArgs, clap::Error> {
    let first = parse_one(&args)?;
    let Some(path) = first.config.clone() else {
        return Ok(first);
    };
    let from_file = config_file_args(&path)
        .map_err(|msg| TrainArgs::command().error(clap::error::ErrorKind::InvalidValue, msg))?;
    // The file's values go right after the program name, so any flag on the command line, being
    // later, overrides them.
    let mut merged = Vec::with_capacity(args.len() + from_file.len());
    merged.extend(args.first().cloned());
    merged.extend(from_file.into_iter().map(OsString::from));
    merged.extend(args.iter().skip(1).cloned());
    parse_one(&merged)
}

/// Reads a TOML config file into `--flag=value` arguments, refusing keys that are not flags.
fn config_file_args(path: &Path) -> Result<Vec<String>, String> {
    let where_ = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("--config {where_}: {e}"))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        format!("--config {where_}: not valid TOML: {}", e.message())
    })?;
    let cmd = TrainArgs::command();
    let known: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
    let mut out = Vec::new();
    for (key, value) in table {
        if !known.contains(&key.as_str()) || key == "config" {
            return Err(format!("--config {where_}: unknown key '{key}' (keys are flag names, like lr or batch-size)"));
        }
        let text = match value {
            toml::Value::Boolean(true) => {
                out.push(format!("--{key}"));
                continue;
            }
            toml::Value::Boolean(false) => continue,
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            other => {
                return Err(format!(
                    "--config {where_}: key '{key}' has an unsupported value {other}"
                ))
            }
        };
        out.push(format!("--{key}={text}"));
    }
    Ok(out)
}

/// The whole program: parse, train, report; returns the exit code.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if let Some(name) = args.get(1).and_then(|a| a.to_str()) {
        if crate::subcommands::NAMES.contains(&name) {
            let rest: Vec<OsString> =
                std::iter::once(OsString::from(format!("grawa-train {name}")))
                    .chain(args[2..].iter().cloned())
                    .collect();
            return crate::subcommands::run(name, &rest);
        }
    }
    let args = match parse_from(args) {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            // --help and --version: clap prints them to stdout.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("grawa-train: {} (see --help)", one_line(&e));
            return ExitCode::from(2);
        }
    };
    match RunConfig::from_args(&args)
        .inspect(|cfg| crate::threads::configure(cfg.threads, cfg.workers))
        .and_then(launch)
    {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("grawa-train: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Trains in this process, or, started by an MPI launcher (`mpirun -np R`, `srun`), as one of R
/// ranks of one run (feature `mpi`).
fn launch(cfg: RunConfig) -> Result<crate::metrics::Summary> {
    match crate::ranks::launched_size().filter(|&n| n > 1) {
        None => crate::train::run(cfg),
        Some(size) => launch_rank(cfg, size),
    }
}

/// This process as one rank of `size`: MPI started, the run's layout recorded, what is not
/// supported across processes refused, and MPI finalised once this rank's run is over.
#[cfg(feature = "mpi")]
fn launch_rank(mut cfg: RunConfig, _size: usize) -> Result<crate::metrics::Summary> {
    let (world, peers) = crate::ranks::mpi::start(cfg.workers)?;
    cfg.ranks = crate::ranks::Peers::layout(&peers).ranks;
    crate::ranks::check_supported(&cfg)?;
    let peers = gpu_rank(&mut cfg, Box::new(peers))?;
    let result = crate::train::run_with(cfg, Some(peers));
    drop(world);
    result
}

/// A GPU rank trains on its machine-local share of the GPUs; with `nccl` its buffers (the
/// round's and DDP's all-reduces) go over NCCL, its small agreements stay on MPI.
#[cfg(feature = "mpi")]
fn gpu_rank(
    cfg: &mut RunConfig,
    peers: Box<dyn crate::ranks::Peers>,
) -> Result<Box<dyn crate::ranks::Peers>> {
    if cfg.gpus.is_empty() {
        return Ok(peers);
    }
    let visible = crate::selftest::gpu_count()
        .map_err(|reason| crate::Error::usage(format!("--gpus: {reason}")))?;
    let local = crate::ranks::local_rank().unwrap_or(0);
    cfg.gpus =
        crate::ranks::gpus_for_rank(&cfg.gpus, local, visible).map_err(crate::Error::usage)?;
    #[cfg(feature = "nccl")]
    let peers: Box<dyn crate::ranks::Peers> =
        Box::new(crate::ranks::nccl_peers::NcclPeers::new(peers, cfg.gpus[0]));
    Ok(peers)
}

/// Without the `mpi` feature a launcher's R processes would be R separate runs into one folder.
#[cfg(not(feature = "mpi"))]
fn launch_rank(_cfg: RunConfig, size: usize) -> Result<crate::metrics::Summary> {
    Err(crate::Error::usage(format!(
        "started by an MPI launcher as one of {size} processes, but this grawa-train was built without the `mpi` feature: build it with `cargo build --release --features mpi`"
    )))
}

/// clap's error without its "error: " prefix and the usage lines after it: scripts and people get
/// one line that names the flag and the expected values.
pub fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "the following required arguments were not provided:" names them on the next line.
    match (first.ends_with(':'), lines.next()) {
        (true, Some(next)) => format!("{first} {next}"),
        _ => first.to_string(),
    }
}
