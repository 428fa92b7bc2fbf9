//! What workers and the hub tell the main thread. They only send; the main thread
//! renders progress and writes metrics, so nobody ever waits on the screen or the disk.

use serde::Serialize;

use crate::average::Weights;

/// One local optimizer step of one worker.
#[derive(Clone, Debug, Serialize)]
pub struct StepEvent {
    pub worker: usize,
    /// Steps this worker has taken, this one included.
    pub step: u64,
    /// Epochs completed by all workers together (fractional).
    pub epoch: f64,
    pub loss: f32,
    pub lr: f64,
    pub images: usize,
    /// Seconds since training started.
    pub seconds: f64,
    /// Over a modelled link: the modelled milliseconds of this step's all-reduce (DDP, SAM).
    pub link_ms: Option<f64>,
}

/// Async: a worker applied a pull.
#[derive(Clone, Debug, Serialize)]
pub struct PullEvent {
    pub worker: usize,
    pub step: u64,
    /// Local steps the worker took between its snapshot in the target and the pull.
    pub lag: u64,
}

/// One averaging round at the hub.
#[derive(Clone, Debug, Serialize)]
pub struct RoundEvent {
    pub round: u64,
    pub seconds: f64,
    /// Local steps of all workers together.
    pub total_steps: u64,
    /// Weight of each worker (per worker), or worker-major per layer (LGRAWA); 0 for a worker
    /// that took no part (async: one that has not reported yet).
    pub weights: Option<Vec<f32>>,
    /// Smoothed norms behind the weights, of the participants only (same layout).
    pub norms: Option<Vec<f64>>,
    /// Async: the workers that took part (those that had reported); absent in lockstep rounds,
    /// where every worker does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<usize>>,
    pub leader: Option<usize>,
    pub lambda: Option<f32>,
    /// Async: local steps between the most advanced worker and the oldest snapshot in the
    /// center (0 in lockstep schedules).
    pub staleness: u64,
    /// Milliseconds waiting for every worker's snapshot, computing the target, and replying.
    pub gather_ms: f64,
    pub compute_ms: f64,
    pub scatter_ms: f64,
    /// Parameter bytes moved: snapshots in and targets out.
    pub bytes: u64,
    /// Over a modelled link (`--link`): the round's modelled milliseconds (a lockstep round
    /// waits for them, inside `compute_ms`; an async reply reaches its worker that much later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_ms: Option<f64>,
}

/// A test-set evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct EvalEvent {
    pub total_steps: u64,
    pub epoch: f64,
    pub seconds: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    /// Mean mini-batch training loss since the previous evaluation (filled by the main thread,
    /// which sees every step).
    pub train_loss: f64,
    /// With --eval-workers: the center's accuracy and each worker's.
    pub center_accuracy: Option<f64>,
    pub worker_accuracy: Option<Vec<f64>>,
    /// With --per-class: each class's test accuracy, by label (null for a class with no test
    /// image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_class: Option<Vec<f64>>,
    /// With a validation set (`--val-split`): its loss and accuracy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<f64>,
}

/// Everything that flows to the main thread.
#[derive(Clone, Debug)]
pub enum Event {
    Step(StepEvent),
    Pull(PullEvent),
    Round(RoundEvent),
    Eval(EvalEvent),
    /// Across processes: the training losses of another rank's worker (a global id), step by
    /// step since its previous report, so rank 0's training-loss figures cover every worker.
    RemoteLosses {
        worker: usize,
        losses: Vec<f32>,
    },
    /// A checkpoint to write (the main thread adds the metrics position).
    Checkpoint(Box<crate::checkpoint::Checkpoint>),
    /// The hub has stopped with an error: stop reading events (a stuck worker may
    /// never close its end of the channel).
    Fatal,
}

/// The per-worker weights of a round, for display: the worker's weight, or its mean over layers.
pub fn display_weights(weights: &Weights, workers: usize) -> Vec<f32> {
    match weights {
        Weights::PerWorker(w) => w.clone(),
        Weights::PerLayer { layers, w } => (0..workers)
            .map(|i| w[i * layers..(i + 1) * layers].iter().sum::<f32>() / (*layers).max(1) as f32)
            .collect(),
    }
}

/// The weights of a round as a flat list over all `workers` (per worker, or worker-major per
/// layer), with 0 for workers not among `participants` (the workers the weights are for).
pub fn flat_weights(weights: &Weights, participants: &[usize], workers: usize) -> Vec<f32> {
    let (per, w) = match weights {
        Weights::PerWorker(w) => (1, w),
        Weights::PerLayer { layers, w } => (*layers, w),
    };
    if participants.len() == workers {
        return w.clone();
    }
    let mut out = vec![0.0; workers * per];
    for (k, &worker) in participants.iter().enumerate() {
        out[worker * per..(worker + 1) * per].copy_from_slice(&w[k * per..(k + 1) * per]);
    }
    out
}
