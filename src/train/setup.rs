//! The set-up phase of a run: everything that can fail on user input (data, model, GPUs, a
//! checkpoint to resume) happens here, before the output folder is created or written.

use std::path::Path;
use std::sync::Arc;

use candle_core::Device;

use super::budget::StepBudget;
use super::evaluator::{EvalSetup, Evaluator};
use crate::algo::{self, WorkerPlan};
use crate::checkpoint::{self, Checkpoint, Identity, Layout};
use crate::config::RunConfig;
use crate::data::{
    self, holdout, Augment, Dataset, FolderSpec, Normalization, ShardLoader, Split, SyntheticSpec,
};
use crate::metrics::write_json_atomic;
use crate::model::{LayerEntry, Model};
use crate::ranks::RankLayout;
use crate::{Error, Result};

/// What the run is made of, ready to start.
pub struct Setup {
    pub train: Arc<Dataset>,
    pub norm: Normalization,
    pub loaders: Vec<ShardLoader>,
    pub batches_per_epoch: u64,
    pub budget: StepBudget,
    pub eval_every: u64,
    pub plan: WorkerPlan,
    /// One model per worker, all at the same initial point `x0`.
    pub models: Vec<Model>,
    pub x0: Vec<f32>,
    pub evaluator: Evaluator,
    pub identity: Identity,
    /// The checkpoint a resumed run continues from.
    pub resumed: Option<Checkpoint>,
    pub shapes: Shapes,
}

/// The model's layer tables and tensor shapes: how its checkpoints lay out their tensors.
pub struct Shapes {
    pub table: Vec<LayerEntry>,
    param_shapes: Vec<Vec<usize>>,
    buffer_table: Vec<LayerEntry>,
    buffer_shapes: Vec<Vec<usize>>,
}

impl Shapes {
    /// How a checkpoint of this run lays out its tensors.
    pub fn layout(&self) -> Layout<'_> {
        Layout {
            params: &self.table,
            param_shapes: &self.param_shapes,
            buffers: &self.buffer_table,
            buffer_shapes: &self.buffer_shapes,
        }
    }
}

/// Loads and builds everything `cfg` asks for, fills in what follows from the data and the model
/// (`parameters`, `classes`), then prepares the output folder (writing `config.json` for a new
/// run; rank 0 alone across processes). This process holds the workers of `layout`: their shards
/// are those of the run's global workers.
pub fn prepare(cfg: &mut RunConfig, layout: RankLayout) -> Result<Setup> {
    let split = load_data(cfg, layout)?;
    let (shape, classes) = (split.train.shape, split.train.num_classes);
    let norm = split.norm.clone();
    let train = Arc::new(split.train);
    let loaders = shard_loaders(cfg, &train, &norm, layout)?;
    let batches_per_epoch = loaders[0].batches_per_epoch() as u64;
    let eval_every = cfg.eval_every.unwrap_or(batches_per_epoch);
    // Each worker's device (round-robin over the GPUs asked for), and the hub's: the first GPU,
    // on a stream of its own, where it evaluates. All CPU without GPUs.
    let (devices, device) = open_devices(&cfg.gpus, layout.local_workers)?;
    // Every worker starts from the same point: the same seed builds the same model.
    let models = devices
        .iter()
        .map(|d| Model::new(cfg.model, shape, classes, cfg.seed, d))
        .collect::<Result<Vec<_>>>()?;
    cfg.parameters = models[0].params.len();
    cfg.classes = split.classes.clone();
    let eval_setup = EvalSetup {
        kind: cfg.model,
        shape,
        num_classes: classes,
        eval_batch_size: cfg.eval_batch_size,
        recal_batch_size: cfg.batch_size,
        recal_batches: cfg.bn_recal_batches,
        seed: cfg.seed,
        per_class: cfg.per_class,
    };
    let test = Arc::new(split.test);
    let evaluator = Evaluator::new(&eval_setup, train.clone(), test, norm.clone(), &device)?
        .with_validation(split.val.map(Arc::new));
    let identity = identity(cfg, layout.global_workers());
    let shapes = Shapes::of(&models[0]);
    let resumed = if cfg.resume {
        Some(load_resume(&cfg.out, &identity, &shapes.layout())?)
    } else {
        None
    };
    let setup = Setup {
        x0: models[0].params.to_flat()?,
        train,
        norm,
        loaders,
        batches_per_epoch,
        budget: StepBudget::new(&cfg.budget, batches_per_epoch as usize),
        eval_every,
        plan: algo::worker_plan(&cfg.algo, eval_every, cfg.batch_size),
        models,
        evaluator,
        identity,
        resumed,
        shapes,
    };
    // Across processes rank 0 alone writes the run folder.
    if layout.is_root() {
        prepare_outputs(cfg)?;
    }
    Ok(setup)
}

/// The data set `cfg` asks for, checked to fit the model and to give each of the run's workers a
/// shard of at least one batch. A folder's decoding shows a progress bar on rank 0. The
/// validation set, scored beside the test set at each evaluation, is the folder's own `val/` or
/// `--val-split`'s images held out of the training set.
fn load_data(cfg: &RunConfig, layout: RankLayout) -> Result<Split> {
    let m = layout.global_workers();
    let synthetic = SyntheticSpec {
        shape: cfg.model.input_shape(cfg.image_size),
        num_classes: 10,
        train: cfg.synthetic_train,
        test: cfg.synthetic_test,
        seed: cfg.seed,
    };
    let folder = FolderSpec {
        shape: cfg.model.input_shape(cfg.image_size),
        progress: !cfg.quiet && layout.is_root(),
    };
    let split = data::load_with(cfg.dataset, &cfg.data_dir, &synthetic, &folder)?;
    let split = holdout::fill_validation(split, cfg.val_split, m, cfg.batch_size, &cfg.data_dir)?;
    cfg.model.check_input(split.train.shape).map_err(|why| {
        Error::usage(format!(
            "--model {} with --dataset {}: {why}",
            cfg.model, cfg.dataset
        ))
    })?;
    let shard = split.train.len() / m;
    if shard < cfg.batch_size {
        return Err(Error::usage(format!(
            "--batch-size {}: each of the {m} workers' shards has only {shard} of the {} training images",
            cfg.batch_size,
            split.train.len()
        )));
    }
    Ok(split)
}

/// The shard loaders of this process's workers (the run's global workers of `layout`).
fn shard_loaders(
    cfg: &RunConfig,
    train: &Arc<Dataset>,
    norm: &Normalization,
    layout: RankLayout,
) -> Result<Vec<ShardLoader>> {
    let first = layout.first_worker();
    let augment = match cfg.augment {
        true => Augment::for_kind(cfg.dataset),
        false => Augment::none(),
    };
    let loaders = (first..first + layout.local_workers)
        .map(|i| {
            ShardLoader::try_new(
                train.clone(),
                norm.clone(),
                augment,
                cfg.batch_size,
                i,
                layout.global_workers(),
                cfg.seed,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(loaders)
}

/// What makes a run the run it is: a checkpoint of another is refused on `--resume`.
fn identity(cfg: &RunConfig, workers: usize) -> Identity {
    Identity {
        dataset: cfg.dataset.to_string(),
        model: cfg.model.to_string(),
        algo: cfg.algo.kind.to_string(),
        schedule: cfg.algo.schedule.to_string(),
        workers,
        batch_size: cfg.batch_size,
        seed: cfg.seed,
    }
}

impl Shapes {
    /// The layer tables and shapes of `model`.
    fn of(model: &Model) -> Self {
        Self {
            table: model.params.table().to_vec(),
            param_shapes: model.params.shapes(),
            buffer_table: model.buffers.table().to_vec(),
            buffer_shapes: model.buffers.shapes(),
        }
    }
}

/// Refuses an output folder that holds a run, then writes `config.json` for a new run; a write
/// that fails leaves nothing behind.
fn prepare_outputs(cfg: &RunConfig) -> Result<()> {
    let created = !cfg.out.exists();
    prepare_out_dir(&cfg.out, cfg.resume)?;
    if cfg.resume {
        return Ok(());
    }
    let config = crate::provenance::config_json(cfg)?;
    write_json_atomic(&cfg.out.join("config.json"), &config).map_err(|e| {
        if created {
            let _ = std::fs::remove_dir(&cfg.out); // only if empty: never anything else
        }
        e.then("nothing was written; free space and run the same command again")
    })
}

/// One device per worker and one for the hub. On GPUs every worker gets a CUDA device
/// with a stream of its own (workers sharing a GPU then overlap, and candle's per-slice events
/// order their buffers across streams); the hub gets its own stream on the first GPU.
fn open_devices(gpus: &[usize], workers: usize) -> Result<(Vec<Device>, Device)> {
    if gpus.is_empty() {
        return Ok((vec![Device::Cpu; workers], Device::Cpu));
    }
    if gpus.len() != workers {
        return Err(Error::Internal(format!(
            "{} GPU placements for {workers} workers",
            gpus.len()
        )));
    }
    let open = |ordinal: usize| {
        Device::new_cuda_with_stream(ordinal)
            .map_err(|e| Error::usage(format!("GPU {ordinal}: cannot open it: {e}")))
    };
    let per_worker = gpus.iter().map(|&g| open(g)).collect::<Result<Vec<_>>>()?;
    let first = open(gpus[0])?;
    Ok((per_worker, first))
}

/// Refuses an output folder that already holds a run: overwriting it would lose that run.
fn prepare_out_dir(out: &Path, resume: bool) -> Result<()> {
    if resume {
        return Ok(());
    }
    if out.join("summary.json").exists() {
        return Err(Error::usage(format!(
            "--out {}: already holds a finished run (summary.json); choose another folder or delete it",
            out.display()
        )));
    }
    if out.join("metrics.jsonl").exists() {
        return Err(Error::usage(format!(
            "--out {0}: already holds a run that did not finish (metrics.jsonl); continue it with --resume {0}, or choose another folder",
            out.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))
}

/// Reads the newest checkpoint of the run in `out` and checks that this run may continue it.
fn load_resume(out: &Path, identity: &Identity, layout: &Layout) -> Result<Checkpoint> {
    let where_ = out.display();
    let mut dirs = checkpoint::list(out)?;
    if dirs.is_empty() {
        return Err(Error::usage(format!(
            "--resume {where_}: no complete checkpoint in {where_}/checkpoints"
        )));
    }
    // Newest first. A damaged one (a checksum that does not match, unreadable data) is set aside
    // as `<name>.damaged`, never read again, and the next older one is tried: resuming from an
    // older checkpoint is safe, since the metrics are cut back to its position.
    let mut skipped = Vec::new();
    let ckpt = loop {
        let Some(dir) = dirs.pop() else {
            return Err(Error::usage(format!(
                "--resume {where_}: no intact checkpoint: {}",
                skipped.join("; ")
            )));
        };
        match checkpoint::verify(&dir) {
            // Not damaged: any error reading it is about this run (another model, say).
            Ok(()) => break checkpoint::read(&dir, layout)?,
            Err(why) => {
                let name = dir
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                let kept = checkpoint::set_aside(&dir)
                    .map_or_else(String::new, |p| format!(" (kept as {})", p.display()));
                eprintln!(
                    "grawa-train: --resume {where_}: skipping checkpoint {name}: {why}{kept}"
                );
                skipped.push(format!("{name}: {why}"));
            }
        }
    };
    if !skipped.is_empty() {
        eprintln!(
            "grawa-train: --resume {where_}: resuming from the newest intact checkpoint, round {}",
            ckpt.state.rounds
        );
    }
    let saved = &ckpt.state.identity;
    if saved != identity {
        return Err(Error::usage(format!(
            "--resume {where_}: the checkpoint is of {} {} x{} {} on {} (batch {}, seed {}); this run asks for {} {} x{} {} on {} (batch {}, seed {})",
            saved.algo, saved.schedule, saved.workers, saved.model, saved.dataset, saved.batch_size, saved.seed,
            identity.algo, identity.schedule, identity.workers, identity.model, identity.dataset, identity.batch_size, identity.seed
        )));
    }
    // A finished checkpoint without a summary is a run stopped during its final evaluation or
    // while writing its summary: resuming it does only that (see `finish::from_checkpoint`).
    if ckpt.state.finished && out.join("summary.json").exists() {
        return Err(Error::usage(format!(
            "--resume {where_}: that run has finished (see its summary.json)"
        )));
    }
    if ckpt.workers.len() != identity.workers {
        return Err(Error::usage(format!(
            "--resume {where_}: the checkpoint holds {} workers",
            ckpt.workers.len()
        )));
    }
    Ok(ckpt)
}
