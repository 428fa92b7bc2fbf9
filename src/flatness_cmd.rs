//! `grawa-train flatness --checkpoint RUN` and `--flatness` at the end of a run: the flatness of
//! the evaluated model of a checkpointed run (the workers' uniform average, or EASGD's center,
//! with BatchNorm recalibrated as for evaluation), written to `RUN/flatness.json`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use candle_core::Device;
use clap::Parser;

use crate::checkpoint::{self, Checkpoint, Layout};
use crate::data::{self, DatasetKind, ImageShape, Normalization, SyntheticSpec};
use crate::flatness::{measure, FlatnessOptions, FlatnessReport};
use crate::metrics::write_json_atomic;
use crate::model::{Model, ModelKind};
use crate::train::evaluator::{EvalSetup, Evaluator};
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

/// What the command needs of a run's config.json.
struct RunInfo {
    dataset: DatasetKind,
    model: ModelKind,
    data_dir: PathBuf,
    seed: u64,
    batch_size: usize,
    synthetic_train: usize,
    synthetic_test: usize,
    bn_recal_batches: usize,
}

fn read_run(dir: &Path) -> Result<RunInfo> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::usage(format!("{}: not valid JSON: {e}", path.display())))?;
    let bad = |field: &str| {
        Error::usage(format!(
            "{}: field '{field}' is missing or malformed",
            path.display()
        ))
    };
    let s = |f: &str| v[f].as_str().ok_or_else(|| bad(f));
    let u = |f: &str| v[f].as_u64().ok_or_else(|| bad(f));
    Ok(RunInfo {
        dataset: s("dataset")?.parse().map_err(|_| bad("dataset"))?,
        model: s("model")?.parse().map_err(|_| bad("model"))?,
        data_dir: PathBuf::from(s("data_dir")?),
        seed: u("seed")?,
        batch_size: u("batch_size")? as usize,
        synthetic_train: u("synthetic_train")? as usize,
        synthetic_test: u("synthetic_test")? as usize,
        bn_recal_batches: u("bn_recal_batches")? as usize,
    })
}

/// The point a run evaluates (see `RoundData::evaluated_flat`), from its checkpoint.
pub fn evaluated_point(ckpt: &Checkpoint) -> Result<Vec<f32>> {
    use crate::buffer::{Flat, FlatPlace};
    let workers: Vec<Flat> = ckpt
        .workers
        .iter()
        .map(|w| Flat::Host(w.params.clone()))
        .collect();
    let xs: Vec<&Flat> = workers.iter().collect();
    crate::round::RoundData::from_state(&ckpt.algo_tensors)
        .evaluated_flat(&xs, None, &FlatPlace::Host)?
        .into_vec()
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

/// Measures the newest checkpoint of the run in `dir` and writes `dir/flatness.json`. More
/// `opts.samples` than the training set holds is refused, or with `clamp_samples` cut to the
/// training set.
pub fn measure_run(
    dir: &Path,
    data_dir: Option<&Path>,
    opts: &FlatnessOptions,
    clamp_samples: bool,
) -> Result<FlatnessReport> {
    let info = read_run(dir)?;
    let data_dir = data_dir
        .map(Path::to_path_buf)
        .unwrap_or(info.data_dir.clone());
    let synthetic = SyntheticSpec {
        shape: info.model.synthetic_shape(),
        num_classes: 10,
        train: info.synthetic_train,
        test: info.synthetic_test,
        seed: info.seed,
    };
    let split = data::load(info.dataset, &data_dir, &synthetic)?;
    let images = split.train.len();
    let mut opts = opts.clone();
    if opts.samples > images {
        if !clamp_samples {
            return Err(Error::usage(format!(
                "--samples {}: the run's training set has only {images} images",
                opts.samples
            )));
        }
        opts.samples = images;
    }
    let opts = &opts;
    let shape: ImageShape = split.train.shape;
    let classes = split.train.num_classes;
    let device = Device::Cpu;
    let probe = Model::new(info.model, shape, classes, info.seed, &device)?;
    let (ps, bs) = (probe.params.shapes(), probe.buffers.shapes());
    let layout = Layout {
        params: probe.params.table(),
        param_shapes: &ps,
        buffers: probe.buffers.table(),
        buffer_shapes: &bs,
    };
    let Some(newest) = checkpoint::list(dir)?.pop() else {
        return Err(Error::usage(format!(
            "--checkpoint {}: no complete checkpoint in it",
            dir.display()
        )));
    };
    let ckpt = checkpoint::read(&newest, &layout)?;
    let norm = Normalization::for_kind(info.dataset);
    let train = Arc::new(split.train);
    let setup = EvalSetup {
        kind: info.model,
        shape,
        num_classes: classes,
        eval_batch_size: 1000,
        recal_batches: info.bn_recal_batches,
        recal_batch_size: info.batch_size,
        seed: info.seed,
    };
    let evaluator = Evaluator::new(
        &setup,
        train.clone(),
        Arc::new(split.test),
        norm.clone(),
        &device,
    )?;
    let model = evaluator.prepare(&evaluated_point(&ckpt)?)?;
    let report = measure(model, &train, &norm, opts)?;
    write_json_atomic(&dir.join("flatness.json"), &report)?;
    Ok(report)
}

/// The `flatness` subcommand (`args` starts with the command name).
pub fn run(args: &[OsString]) -> ExitCode {
    let a = match crate::subcommands::parse::<FlatnessArgs>(args) {
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
        measure_run(
            &a.checkpoint,
            a.data_dir.as_deref(),
            &opts,
            a.samples.is_none(),
        )
    });
    match checked {
        Ok(r) => {
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
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("grawa-train: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
