//! `grawa-train bench`: its flags, validated into a `bench::RunSpec`, and the report printed.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use super::exit::{exit_code, parse};
use crate::bench::{RunSpec, WindowLen};
use crate::model::ModelKind;
use crate::{Error, Result};

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

/// `grawa-train bench ARGS` (the first argument is the command's name): measures and prints the
/// report (a table, or one JSON line with `--json`).
pub fn run(args: &[OsString]) -> ExitCode {
    let a = match parse::<BenchArgs>(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let result = a.spec().and_then(|spec| {
        if !a.json {
            eprintln!("{}", crate::bench::report::describe(&spec));
        }
        crate::bench::bench(&spec)
    });
    exit_code(result.and_then(|r| {
        if a.json {
            let line = serde_json::to_string(&r).map_err(|e| Error::Internal(e.to_string()))?;
            println!("{line}");
        } else {
            print!("{}", r.human());
        }
        Ok(())
    }))
}
