//! `grawa-train flatness --checkpoint RUN`: the flatness of a checkpointed run's evaluated model
//! (`flatness::measure_run`), printed and written to `RUN/flatness.json`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use super::exit::{exit_code, parse};
use crate::flatness::FlatnessOptions;
use crate::{Error, Result};

/// Largest Hessian eigenvalue (Lanczos), the sum of Ritz values and a Hutchinson trace estimate
/// of the training loss at a run's evaluated model.
#[derive(Parser, Debug)]
#[command(name = "grawa-train flatness", max_term_width = 100)]
pub struct FlatnessArgs {
    /// Run folder (its newest checkpoint is measured; every run checkpoints at the end).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Folder holding the data sets (default: the run's).
    #[arg(long, env = "GRAWA_DATA")]
    pub data_dir: Option<PathBuf>,
    /// Lanczos iterations per start, 1 to 1000 (each is one Hessian-vector product; more than the
    /// model has parameters are not taken).
    #[arg(long, default_value_t = 100)]
    pub iterations: usize,
    /// Random Lanczos starts, 1 to 100.
    #[arg(long, default_value_t = 3)]
    pub starts: usize,
    /// Fixed training images the loss is taken over: 1 to the training set's size [default: 320,
    /// or the whole training set when it is smaller].
    #[arg(long)]
    pub samples: Option<usize>,
    /// Hutchinson probe vectors, 0 to 10000 (0 skips the trace estimate).
    #[arg(long, default_value_t = 30)]
    pub hutchinson: usize,
    /// Print the report as one JSON line.
    #[arg(long)]
    pub json: bool,
}

/// Refuses counts that are zero or far past any sensible measurement (they would fail deep inside,
/// or run for days), naming the flag.
fn check_counts(opts: &FlatnessOptions) -> Result<()> {
    let bound = |flag: &str, v: usize, lo: usize, hi: usize| {
        if (lo..=hi).contains(&v) {
            Ok(())
        } else {
            Err(Error::usage(format!("--{flag} {v}: expected {lo} to {hi}")))
        }
    };
    bound("iterations", opts.iterations, 1, 1000)?;
    bound("starts", opts.starts, 1, 100)?;
    if opts.samples == 0 {
        return Err(Error::usage(
            "--samples 0: expected at least 1 image (at most the training set)",
        ));
    }
    bound("hutchinson", opts.hutchinson, 0, 10_000)
}

/// `grawa-train flatness ARGS` (the first argument is the command's name): measures and prints
/// the figures.
pub fn run(args: &[OsString]) -> ExitCode {
    let a = match parse::<FlatnessArgs>(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let defaults = FlatnessOptions::default();
    let opts = FlatnessOptions {
        iterations: a.iterations,
        starts: a.starts,
        samples: a.samples.unwrap_or(defaults.samples),
        hutchinson: a.hutchinson,
        seed: 0,
    };
    let checked = check_counts(&opts).and_then(|()| {
        crate::flatness::measure_run(
            &a.checkpoint,
            a.data_dir.as_deref(),
            &opts,
            a.samples.is_none(),
        )
    });
    exit_code(checked.map(|r| {
        if a.json {
            println!("{}", serde_json::to_string(&r).unwrap_or_default());
        } else {
            println!(
                "lambda_max {:.4}  ritz_sum {:.4}  hutchinson_trace {:.4} ± {:.4}  ({} iterations x {} starts, {} images) -> {}",
                r.lambda_max,
                r.ritz_sum,
                r.hutchinson_trace,
                r.hutchinson_stderr,
                r.iterations,
                r.starts,
                r.samples,
                a.checkpoint.join("flatness.json").display()
            );
        }
    }))
}
