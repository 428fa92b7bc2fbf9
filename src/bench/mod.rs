//! `grawa-train bench`: time training steps of one model on random data and report images/s
//! (median, min, max over windows), the forward/backward/optimizer split, peak memory and
//! achieved GFLOP/s. `scripts/bench_pytorch.py` does the same in PyTorch and prints the same JSON
//! line; `scripts/bench-vs-pytorch.sh` runs both and prints the ratio.
//!
//! The pieces: `flops` (analytic FLOP counts), `rss` (peak resident memory), `runner` (the workers
//! and the timed step), `windows` (throughput per window), `report` (what is printed).

pub mod flops;
pub mod report;
pub mod rss;
pub mod runner;
pub mod windows;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use crate::model::ModelKind;
use crate::{Error, Result};
pub use report::BenchReport;
pub use runner::{RunSpec, WindowLen};

/// Time training steps of a model on random data: images/s, the forward/backward/optimizer
/// split, peak memory and GFLOP/s.
///
/// Each step is forward + cross-entropy, backward, and SGD (momentum 0.9, Nesterov, weight decay
/// 5e-4, lr 0.01) as the trainer takes it, on one fixed random batch per worker (N(0,1) images:
/// 1x28x28 for mlp and cnn, 3x32x32 for the others; 10 classes). After --warmup steps the
/// run is cut into --windows windows; images/s is given as median, min and max over them (all
/// workers together). With --workers M, M threads each own a model and a pool of threads/M
/// threads, as in training.
///
/// GFLOP/s counts convolutions (2*Cout*Cin*k*k*Ho*Wo) and linear layers (2*in*out) per image,
/// times 3 for forward plus backward; BatchNorm, ReLU, pooling and the loss are not counted.
/// Peak memory is the process's VmHWM (peak resident set).
#[derive(Parser, Debug, Clone)]
#[command(name = "grawa-train bench", max_term_width = 100)]
pub struct BenchArgs {
    /// Model: mlp, cnn, resnet20, vgg16, wrn16-8 or densenet121.
    #[arg(long, default_value = "resnet20")]
    pub model: ModelKind,
    /// Images per step (per worker).
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// CPU threads in total (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Workers, each with its own model and threads/workers threads.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Untimed steps per worker before measuring.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Measuring windows.
    #[arg(long, default_value_t = 5)]
    pub windows: usize,
    /// Seconds of wall time per window.
    #[arg(long, default_value_t = 3.0, conflicts_with = "steps")]
    pub window_secs: f64,
    /// Steps per worker per window, instead of --window-secs.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Seed of the initial weights and the random batch.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON line instead of the table.
    #[arg(long)]
    pub json: bool,
}

fn at_least_one(flag: &str, v: usize) -> Result<usize> {
    if v == 0 {
        return Err(Error::usage(format!("--{flag} 0: must be at least 1")));
    }
    Ok(v)
}

impl BenchArgs {
    /// The validated run.
    pub fn spec(&self) -> Result<RunSpec> {
        let threads = match self.threads {
            Some(t) => at_least_one("threads", t)?,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let window = match self.steps {
            Some(s) => WindowLen::Steps(at_least_one("steps", s)?),
            None if self.window_secs.is_finite() && self.window_secs > 0.0 => {
                WindowLen::Seconds(self.window_secs)
            }
            None => {
                return Err(Error::usage(format!(
                    "--window-secs {}: must be a positive number of seconds",
                    self.window_secs
                )))
            }
        };
        Ok(RunSpec {
            model: self.model,
            batch: at_least_one("batch", self.batch)?,
            threads,
            workers: at_least_one("workers", self.workers)?,
            warmup: self.warmup,
            windows: at_least_one("windows", self.windows)?,
            window,
            seed: self.seed,
        })
    }
}

/// Measures `spec` and summarises it.
pub fn bench(spec: &RunSpec) -> Result<BenchReport> {
    // candle's thread variables as training sets them (read once, when candle's pools start).
    crate::threads::configure(spec.threads, spec.workers);
    let measured = runner::measure(spec)?;
    Ok(BenchReport::new(spec, &measured, rss::peak_rss_mb()))
}

/// `grawa-train bench ARGS` (the first argument is the command name).
pub fn run(args: &[OsString]) -> ExitCode {
    let a = match crate::subcommands::parse::<BenchArgs>(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let result = a.spec().and_then(|spec| {
        if !a.json {
            eprintln!("{}", report::describe(&spec));
        }
        bench(&spec)
    });
    match result {
        Ok(r) => {
            if a.json {
                match serde_json::to_string(&r) {
                    Ok(line) => println!("{line}"),
                    Err(e) => {
                        eprintln!("grawa-train: {e}");
                        return ExitCode::from(1);
                    }
                }
            } else {
                print!("{}", r.human());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("grawa-train: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
