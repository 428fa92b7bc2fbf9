//! Checkpoints: the whole state of a run at a round boundary, so `--resume` continues exactly where
//! it stopped. Each checkpoint is a folder `checkpoints/ckpt-<round>/` holding `tensors.safetensors`
//! (every worker's parameters, BatchNorm buffers and momentum, named `worker<i>/<kind>/<layer>`
//! with their real shapes, so other tools can read them; plus the proximal anchor and the
//! algorithm's own vectors) and `state.json` (steps, data cursors, loss windows, the algorithm's
//! scalars, the metrics position), with `SHA256SUMS` of both (the format `sha256sum -c` reads),
//! verified when the checkpoint is read. It is written into a `.tmp` folder, synced, renamed, and
//! only then marked whole by an empty `COMPLETE` file: a reader never takes a half-written one, and
//! a write that fails (a full disk) removes its `.tmp` folder.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::algo::LossWindow;
use crate::model::LayerEntry;
use crate::{Error, Result};

/// Folder inside a run folder that holds its checkpoints.
pub const CHECKPOINTS: &str = "checkpoints";
/// File that marks a checkpoint folder as whole.
const COMPLETE: &str = "COMPLETE";
/// Checksums of the data files, one `<hex>  <name>` line each.
const SUMS: &str = "SHA256SUMS";
/// The files a checkpoint's checksums cover.
const DATA_FILES: [&str; 2] = ["tensors.safetensors", "state.json"];
/// Bumped when the layout changes.
const VERSION: u32 = 1;

/// What must match for a checkpoint to be resumed by a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub dataset: String,
    pub model: String,
    pub algo: String,
    pub schedule: String,
    pub workers: usize,
    pub batch_size: usize,
    pub seed: u64,
}

/// One worker's scalar state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerState {
    pub step: u64,
    pub since_round: u64,
    pub loader_epoch: usize,
    pub loader_index: usize,
    pub losses: LossWindow,
}

/// One worker's vectors, flat in layer-table order.
#[derive(Clone, Debug, Default)]
pub struct WorkerTensors {
    pub params: Vec<f32>,
    pub buffers: Vec<f32>,
    pub momentum: Vec<f32>,
}

/// A worker's part of a checkpoint.
#[derive(Clone, Debug)]
pub struct WorkerSave {
    pub state: WorkerState,
    pub tensors: WorkerTensors,
}

/// The main thread's metrics state at the checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MetricsState {
    /// Bytes of metrics.jsonl written up to this checkpoint.
    pub bytes: u64,
    /// Per worker: losses since the last evaluation (not yet reported).
    pub pending_losses: Vec<Vec<f32>>,
    pub last_train_loss: Option<f64>,
    /// Per worker: the open step-summary window (loss sum, steps, images).
    pub windows: Vec<(f64, u64, u64)>,
}

/// Everything in `state.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunState {
    pub version: u32,
    pub identity: Identity,
    pub rounds: u64,
    pub total_steps: u64,
    pub seconds: f64,
    pub next_eval: u64,
    /// `--eval-every` in seconds: the seconds of training at which the next evaluation is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_eval_seconds: Option<f64>,
    /// `--link`: the modelled link's seconds and payload bytes so far (`summary.json`'s
    /// `link_seconds` and `bytes` go on from them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<(f64, u64)>,
    pub workers: Vec<WorkerState>,
    /// The algorithm's scalar state (GRAWA's smoothed norms, ...).
    pub algo: serde_json::Value,
    pub metrics: MetricsState,
    /// True when training had finished.
    pub finished: bool,
    /// A pull the saved parameters have not had yet: resuming applies
    /// `x <- (1 - lambda) x + lambda * anchor` to every worker first.
    pub pending_pull: Option<f32>,
}

/// A whole checkpoint in memory.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub state: RunState,
    pub workers: Vec<WorkerTensors>,
    /// The point workers take proximal steps toward (the last target; the initial point before).
    pub anchor: Vec<f32>,
    /// The algorithm's vectors (EASGD's center), by name.
    pub algo_tensors: Vec<(String, Vec<f32>)>,
}

/// Layer names and shapes of the parameter and buffer sets, to name the tensors.
pub struct Layout<'a> {
    pub params: &'a [LayerEntry],
    pub param_shapes: &'a [Vec<usize>],
    pub buffers: &'a [LayerEntry],
    pub buffer_shapes: &'a [Vec<usize>],
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

fn tensor_err(path: &Path) -> impl Fn(candle_core::Error) -> Error + '_ {
    move |e| Error::Usage(format!("{}: {e}", path.display()))
}

fn put(
    map: &mut HashMap<String, Tensor>,
    prefix: &str,
    flat: &[f32],
    table: &[LayerEntry],
    shapes: &[Vec<usize>],
) -> candle_core::Result<()> {
    for (e, shape) in table.iter().zip(shapes) {
        let t = Tensor::from_slice(
            &flat[e.offset..e.offset + e.len],
            shape.as_slice(),
            &Device::Cpu,
        )?;
        map.insert(format!("{prefix}/{}", e.name), t);
    }
    Ok(())
}

fn take(
    map: &HashMap<String, Tensor>,
    prefix: &str,
    table: &[LayerEntry],
    total: usize,
) -> std::result::Result<Vec<f32>, String> {
    let mut out = vec![0f32; total];
    for e in table {
        let name = format!("{prefix}/{}", e.name);
        let t = map
            .get(&name)
            .ok_or_else(|| format!("tensor {name} is missing"))?;
        let v: Vec<f32> = t
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .map_err(|err| format!("tensor {name}: {err}"))?;
        if v.len() != e.len {
            return Err(format!(
                "tensor {name} holds {} values, the model needs {}",
                v.len(),
                e.len
            ));
        }
        out[e.offset..e.offset + e.len].copy_from_slice(&v);
    }
    Ok(out)
}

fn total(table: &[LayerEntry]) -> usize {
    table.last().map_or(0, |e| e.offset + e.len)
}

/// SHA-256 of a file, in lowercase hex.
fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    std::io::copy(&mut File::open(path)?, &mut hasher)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Why the data of the checkpoint in `dir` does not match its `SHA256SUMS`, if it does not. A
/// checkpoint written before checksums existed has none and is taken as it is.
pub fn verify(dir: &Path) -> std::result::Result<(), String> {
    let sums = dir.join(SUMS);
    let Ok(text) = std::fs::read_to_string(&sums) else {
        return Ok(());
    };
    for name in DATA_FILES {
        let want = text
            .lines()
            .find_map(|l| l.strip_suffix(name).map(str::trim))
            .ok_or_else(|| format!("{SUMS} has no line for {name}"))?;
        let got = sha256_file(&dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
        if got != want {
            return Err(format!(
                "{name} does not match its checksum (the data is damaged)"
            ));
        }
    }
    Ok(())
}

/// Writes `ckpt` as `run_dir/checkpoints/ckpt-<round>` and keeps only the newest `keep`. On a
/// failure nothing of the new checkpoint remains, and the older ones are untouched.
pub fn write(run_dir: &Path, ckpt: &Checkpoint, layout: &Layout, keep: usize) -> Result<PathBuf> {
    let root = run_dir.join(CHECKPOINTS);
    let name = format!("ckpt-{:08}", ckpt.state.rounds);
    let tmp = root.join(format!("{name}.tmp"));
    write_inner(&root, &name, ckpt, layout, keep).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&tmp);
    })
}

fn write_inner(
    root: &Path,
    name: &str,
    ckpt: &Checkpoint,
    layout: &Layout,
    keep: usize,
) -> Result<PathBuf> {
    clear_unfinished(root)?;
    let tmp = root.join(format!("{name}.tmp"));
    std::fs::create_dir_all(&tmp).map_err(write_err(&tmp))?;
    write_files(&tmp, ckpt, layout)?;
    let dir = root.join(name);
    publish(root, &tmp, &dir)?;
    prune(root, keep)?;
    Ok(dir)
}

/// Creates the checkpoints folder `root` and removes every `.tmp` folder in it: what a killed
/// writer left behind, never whole, never read.
fn clear_unfinished(root: &Path) -> Result<()> {
    std::fs::create_dir_all(root).map_err(write_err(root))?;
    for entry in std::fs::read_dir(root).map_err(write_err(root))?.flatten() {
        if entry.path().extension().is_some_and(|e| e == "tmp") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// Writes the tensors, the state and their checksums into `tmp` and syncs each to disk.
fn write_files(tmp: &Path, ckpt: &Checkpoint, layout: &Layout) -> Result<()> {
    let map = tensor_map(ckpt, layout)
        .map_err(|e| Error::Internal(format!("checkpoint tensors: {e}")))?;
    let tensors = tmp.join("tensors.safetensors");
    candle_core::safetensors::save(&map, &tensors).map_err(|e| Error::write(&tensors, e))?;
    let state = tmp.join("state.json");
    let text =
        serde_json::to_string_pretty(&ckpt.state).map_err(|e| Error::Internal(e.to_string()))?;
    std::fs::write(&state, text).map_err(write_err(&state))?;
    let mut sums = String::new();
    for name in DATA_FILES {
        let f = tmp.join(name);
        let hex = sha256_file(&f).map_err(write_err(&f))?;
        sums.push_str(&format!("{hex}  {name}\n"));
    }
    let sums_path = tmp.join(SUMS);
    std::fs::write(&sums_path, sums).map_err(write_err(&sums_path))?;
    for f in [&tensors, &state, &sums_path] {
        File::open(f)
            .and_then(|f| f.sync_all())
            .map_err(write_err(f))?;
    }
    Ok(())
}

/// Every vector of `ckpt` as named tensors in their layers' shapes (see the module comment).
fn tensor_map(ckpt: &Checkpoint, layout: &Layout) -> candle_core::Result<HashMap<String, Tensor>> {
    let mut map = HashMap::new();
    for (i, w) in ckpt.workers.iter().enumerate() {
        put(
            &mut map,
            &format!("worker{i}/params"),
            &w.params,
            layout.params,
            layout.param_shapes,
        )?;
        put(
            &mut map,
            &format!("worker{i}/momentum"),
            &w.momentum,
            layout.params,
            layout.param_shapes,
        )?;
        put(
            &mut map,
            &format!("worker{i}/buffers"),
            &w.buffers,
            layout.buffers,
            layout.buffer_shapes,
        )?;
    }
    put(
        &mut map,
        "anchor",
        &ckpt.anchor,
        layout.params,
        layout.param_shapes,
    )?;
    for (n, v) in &ckpt.algo_tensors {
        map.insert(
            format!("algo/{n}"),
            Tensor::from_slice(v, v.len(), &Device::Cpu)?,
        );
    }
    Ok(map)
}

/// Renames the finished `tmp` to `dir` (replacing an older one of the same round), marks it whole
/// and syncs the folder, so that the rename and the mark survive a crash.
fn publish(root: &Path, tmp: &Path, dir: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(tmp, dir).map_err(write_err(dir))?;
    let marker = dir.join(COMPLETE);
    File::create(&marker)
        .and_then(|f| f.sync_all())
        .map_err(write_err(&marker))?;
    File::open(root)
        .and_then(|f| f.sync_all())
        .map_err(write_err(root))
}

/// An I/O error writing `path`, as [`Error::write`].
fn write_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::write(path, e)
}

/// Moves a damaged checkpoint out of the way as `<name>.damaged` (no longer whole, so never read
/// again, but kept for a look); returns where it went.
pub fn set_aside(dir: &Path) -> Option<PathBuf> {
    let aside = dir.with_extension("damaged");
    let _ = std::fs::remove_dir_all(&aside);
    std::fs::rename(dir, &aside).ok()?;
    let _ = std::fs::remove_file(aside.join(COMPLETE));
    Some(aside)
}

/// Whole checkpoints under `run_dir`, oldest first.
pub fn list(run_dir: &Path) -> Result<Vec<PathBuf>> {
    let root = run_dir.join(CHECKPOINTS);
    if !root.exists() {
        return Ok(Vec::new());
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .map_err(io(&root))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_none() && p.join(COMPLETE).exists())
        .collect();
    dirs.sort();
    Ok(dirs)
}

fn prune(root: &Path, keep: usize) -> Result<()> {
    let dirs = list(root.parent().unwrap_or(root))?;
    for old in dirs.iter().take(dirs.len().saturating_sub(keep.max(1))) {
        // Remove the marker first: a folder without it is never read, even if removal stops half-way.
        let _ = std::fs::remove_file(old.join(COMPLETE));
        std::fs::remove_dir_all(old).map_err(io(old))?;
    }
    Ok(())
}

/// Reads the checkpoint in `dir`, verifying its checksums first.
pub fn read(dir: &Path, layout: &Layout) -> Result<Checkpoint> {
    verify(dir).map_err(|why| Error::Usage(format!("{}: {why}", dir.display())))?;
    let state_path = dir.join("state.json");
    let text = std::fs::read_to_string(&state_path).map_err(io(&state_path))?;
    let state: RunState = serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "{}: not a grawa-train checkpoint state: {e}",
            state_path.display()
        ))
    })?;
    if state.version != VERSION {
        return Err(Error::Usage(format!(
            "{}: checkpoint version {} (this grawa-train reads version {VERSION})",
            state_path.display(),
            state.version
        )));
    }
    let tensors = dir.join("tensors.safetensors");
    let map =
        candle_core::safetensors::load(&tensors, &Device::Cpu).map_err(tensor_err(&tensors))?;
    let bad = |m: String| Error::Usage(format!("{}: {m}", tensors.display()));
    let (np, nb) = (total(layout.params), total(layout.buffers));
    let workers = (0..state.workers.len())
        .map(|i| {
            Ok(WorkerTensors {
                params: take(&map, &format!("worker{i}/params"), layout.params, np).map_err(bad)?,
                momentum: take(&map, &format!("worker{i}/momentum"), layout.params, np)
                    .map_err(bad)?,
                buffers: take(&map, &format!("worker{i}/buffers"), layout.buffers, nb)
                    .map_err(bad)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let anchor = take(&map, "anchor", layout.params, np).map_err(bad)?;
    let mut algo_tensors = Vec::new();
    for (k, t) in &map {
        if let Some(n) = k.strip_prefix("algo/") {
            let v = t
                .to_vec1::<f32>()
                .map_err(|e| bad(format!("tensor {k}: {e}")))?;
            algo_tensors.push((n.to_string(), v));
        }
    }
    algo_tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Checkpoint {
        state,
        workers,
        anchor,
        algo_tensors,
    })
}

/// The version this build writes.
pub fn version() -> u32 {
    VERSION
}
