//! The command line: clap derive structs that only parse and validate, `--config FILE.toml`
//! merged underneath the flags (`config_file`), and `run`, which turns everything into an exit
//! code (`exit`). Training's flags are [`TrainArgs`] here, resolved into a `RunConfig` by
//! `resolve` and launched by `launch`; each command beside training (`plot`, `compare`,
//! `reproduction_report`, `selftest`, `flatness`, `bench`) has its flags and its `run` in a file
//! of its own, over the library that does the work.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};

mod bench;
mod compare;
mod config_file;
mod exit;
mod flatness;
mod launch;
mod plot;
mod reproduction_report;
mod resolve;
mod resolve_algo;
mod resume;
mod selftest;
mod value_checks;

use config_file::config_file_args;
use exit::{exit_code, usage_exit};
use launch::launch;

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
    /// Data set: mnist, fashion-mnist, cifar10, cifar100, synthetic (needs no files) or folder
    /// (your own images: --data-dir holds train/<class>/*.png|jpg, test/<class>/..., optionally
    /// val/<class>/...).
    #[arg(long, default_value = "mnist")]
    pub dataset: DatasetKind,

    /// Folder holding the data sets (mnist/, fashion-mnist/, cifar-10-batches-bin/, cifar-100-binary/),
    /// or with --dataset folder the image folder itself.
    #[arg(long, env = "GRAWA_DATA", default_value = "data")]
    pub data_dir: PathBuf,

    /// --dataset folder: resize each image's shorter side to this, then center-crop a square
    /// (torchvision's Resize + CenterCrop); --dataset synthetic: the images' side [default: the
    /// model's side, 28 for mlp and cnn, 32 for the others].
    #[arg(long)]
    pub image_size: Option<usize>,

    /// No training augmentation (CIFAR and folder data sets: random crop with padding 4 and a
    /// horizontal flip otherwise).
    #[arg(long)]
    pub no_augment: bool,

    /// Per-class test accuracy at each evaluation (metrics.jsonl) and in the summary.
    #[arg(long)]
    pub per_class: bool,

    /// No TensorBoard event file in the run folder (written by default:
    /// events.out.tfevents.*, for `tensorboard --logdir runs/`).
    #[arg(long)]
    pub no_tensorboard: bool,

    /// Model: mlp, cnn (28x28 images), resnet20, vgg16, wrn16-8 or densenet121 (32x32 images).
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
    /// --quiet, --json, --no-tensorboard, --watchdog, --checkpoint-every, --keep, --data-dir and
    /// --threads may change.
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

    /// How rounds and DDP's all-reduce move the workers' buffers: hub (the hub thread gathers and
    /// combines them; the default) or nccl (NCCL between the GPUs: needs --gpus and a build
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
    let cmd = TrainArgs::command();
    let flags: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
    let from_file = config_file_args(&path, &flags)
        .map_err(|msg| TrainArgs::command().error(clap::error::ErrorKind::InvalidValue, msg))?;
    // The file's values go right after the program name, so any flag on the command line, being
    // later, overrides them.
    let mut merged = Vec::with_capacity(args.len() + from_file.len());
    merged.extend(args.first().cloned());
    merged.extend(from_file.into_iter().map(OsString::from));
    merged.extend(args.iter().skip(1).cloned());
    parse_one(&merged)
}

/// A command's `run`: its arguments (its name first) in, the exit code out.
type Command = fn(&[OsString]) -> ExitCode;

/// The commands beside training, each parsing its own flags: `grawa-train NAME --help`.
const COMMANDS: [(&str, Command); 6] = [
    ("plot", plot::run),
    ("compare", compare::run),
    ("reproduction-report", reproduction_report::run),
    ("selftest", selftest::run),
    ("flatness", flatness::run),
    ("bench", bench::run),
];

/// The whole program: a command beside training when the first argument names one, else parse,
/// train, report; returns the exit code.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let first = args.get(1).and_then(|a| a.to_str());
    if let Some((name, command)) = COMMANDS.iter().find(|(name, _)| Some(*name) == first) {
        let rest: Vec<OsString> = std::iter::once(OsString::from(format!("grawa-train {name}")))
            .chain(args[2..].iter().cloned())
            .collect();
        return command(&rest);
    }
    let args = match parse_from(args) {
        Ok(a) => a,
        Err(e) => return usage_exit(&e),
    };
    exit_code(
        RunConfig::from_args(&args)
            .inspect(|cfg| crate::threads::configure(cfg.threads, cfg.workers))
            .and_then(launch),
    )
}
