//! The flatness of a checkpointed run: its evaluated model (the workers' uniform average, or
//! EASGD's center, with BatchNorm recalibrated as for evaluation) measured by [`measure`], written
//! to `RUN/flatness.json`. Both `grawa-train flatness --checkpoint RUN` and `--flatness` at the end
//! of a run come here.

use std::path::{Path, PathBuf};

use candle_core::Device;

use super::figures::{measure, FlatnessOptions, FlatnessReport};
use crate::checkpoint::{self, Checkpoint, Layout};
use crate::data::{self, holdout, Dataset, DatasetKind, FolderSpec, Normalization, SyntheticSpec};
use crate::metrics::write_json_atomic;
use crate::model::evaluate::{recalibrate_batchnorm, Recalibration};
use crate::model::{Model, ModelKind};
use crate::{Error, Result};

/// What the measurement needs of a run's config.json.
struct RunInfo {
    dataset: DatasetKind,
    model: ModelKind,
    data_dir: PathBuf,
    seed: u64,
    batch_size: usize,
    synthetic_train: usize,
    synthetic_test: usize,
    bn_recal_batches: usize,
    /// A folder data set's image side.
    image_size: Option<usize>,
    /// `--val-split`: images held out of each of `shards` shards, not trained on.
    val_split: Option<usize>,
    /// The run's workers, all processes together.
    shards: usize,
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
        image_size: v["image_size"].as_u64().map(|s| s as usize),
        val_split: v["val_split"].as_u64().map(|n| n as usize),
        shards: (u("workers")? * v["ranks"].as_u64().unwrap_or(1)) as usize,
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
        shape: info.model.input_shape(info.image_size),
        num_classes: 10,
        train: info.synthetic_train,
        test: info.synthetic_test,
        seed: info.seed,
    };
    let folder = FolderSpec {
        shape: info.model.input_shape(info.image_size),
        progress: false,
    };
    let mut split = data::load_with(info.dataset, &data_dir, &synthetic, &folder)?;
    // The images the run trained on (and recalibrated BatchNorm on): without --val-split's.
    if let Some(n) = info.val_split {
        split.train = holdout::hold_out(split.train, n, info.shards)?.0;
    }
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
    let norm = split.norm.clone();
    let model = evaluated_model(dir, &info, &split.train, &norm)?;
    let report = measure(&model, &split.train, &norm, &opts)?;
    write_json_atomic(&dir.join("flatness.json"), &report)?;
    Ok(report)
}

/// The model the run in `dir` evaluates, from its newest checkpoint: the evaluated point written
/// into a model of the run's kind, BatchNorm recalibrated on `train` as the trainer's evaluator
/// does.
fn evaluated_model(
    dir: &Path,
    info: &RunInfo,
    train: &Dataset,
    norm: &Normalization,
) -> Result<Model> {
    // BatchNorm momentum 1.0, which `recalibrate_batchnorm` needs.
    let model = Model::with_bn_momentum(
        info.model,
        train.shape,
        train.num_classes,
        info.seed,
        1.0,
        &Device::Cpu,
    )?;
    let (ps, bs) = (model.params.shapes(), model.buffers.shapes());
    let layout = Layout {
        params: model.params.table(),
        param_shapes: &ps,
        buffers: model.buffers.table(),
        buffer_shapes: &bs,
    };
    let Some(newest) = checkpoint::list(dir)?.pop() else {
        return Err(Error::usage(format!(
            "--checkpoint {}: no complete checkpoint in it",
            dir.display()
        )));
    };
    let ckpt = checkpoint::read(&newest, &layout)?;
    model.params.write_flat(&evaluated_point(&ckpt)?)?;
    let recal = Recalibration {
        batches: info.bn_recal_batches,
        batch_size: info.batch_size,
        seed: info.seed,
    };
    recalibrate_batchnorm(&model, train, norm, recal)?;
    Ok(model)
}
