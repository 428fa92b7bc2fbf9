//! What workers tell the main thread. Workers only send; the main thread renders progress and
//! writes metrics, so no worker ever waits on the screen or the disk.

use serde::Serialize;

/// One local optimizer step of one worker.
#[derive(Clone, Debug, Serialize)]
pub struct StepEvent {
    pub worker: usize,
    /// Steps this worker has taken, this one included.
    pub step: u64,
    /// Epochs completed (fractional), counting one pass over the training set by all workers.
    pub epoch: f64,
    pub loss: f32,
    pub lr: f64,
    pub images: usize,
    /// Seconds since training started.
    pub seconds: f64,
}

/// A test-set evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct EvalEvent {
    pub step: u64,
    pub epoch: f64,
    pub seconds: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    /// Mean mini-batch training loss since the previous evaluation.
    pub train_loss: f64,
}

/// Everything that flows from workers to the main thread.
#[derive(Clone, Debug)]
pub enum Event {
    Step(StepEvent),
    Eval(EvalEvent),
}
