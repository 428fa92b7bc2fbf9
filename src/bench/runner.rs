//! The timed part: M worker threads, each with its own model, optimizer, random batch and rayon
//! pool (threads split as `train::run` splits them), warm up, meet at a barrier, then train until
//! told to stop, recording when each step ended and how long its three phases took.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use crate::data::seed::derive_seed;
use crate::data::ImageShape;
use crate::model::{Model, ModelKind};
use crate::optim::{Sgd, SgdConfig};
use crate::{Error, Result};

/// Classes of the random labels (every model here ends in a 10-way layer for CIFAR-10/MNIST).
pub const CLASSES: usize = 10;

/// The optimizer of every benchmark step (and of scripts/bench_pytorch.py).
pub const SGD: SgdConfig = SgdConfig {
    momentum: 0.9,
    nesterov: true,
    weight_decay: 5e-4,
};

/// Constant learning rate: small, so random labels do not blow the weights up.
pub const LR: f32 = 0.01;

/// How a run is cut into measuring windows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WindowLen {
    /// Windows of this many seconds of wall time.
    Seconds(f64),
    /// Windows of this many steps per worker.
    Steps(usize),
}

/// What to run.
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub model: ModelKind,
    pub batch: usize,
    pub threads: usize,
    pub workers: usize,
    pub warmup: usize,
    pub windows: usize,
    pub window: WindowLen,
    pub seed: u64,
}

impl RunSpec {
    /// The image shape random inputs take for this model.
    pub fn shape(&self) -> ImageShape {
        self.model.synthetic_shape()
    }

    /// Threads in each worker's pool, as `train::run` gives them.
    pub fn threads_per_worker(&self) -> usize {
        (self.threads / self.workers).max(1)
    }
}

/// One timed step.
#[derive(Clone, Copy, Debug)]
pub struct StepRecord {
    /// Seconds from the common start to the end of the step.
    pub end: f64,
    pub forward: Duration,
    pub backward: Duration,
    pub optimizer: Duration,
    pub loss: f32,
}

/// The raw measurements: per worker, its timed steps in order.
pub struct Measured {
    pub workers: Vec<Vec<StepRecord>>,
    /// Seconds from the common start to the stop signal (time windows) or to the last step.
    pub seconds: f64,
}

/// One model with its optimizer and a fixed random batch.
pub struct Bench {
    model: Model,
    opt: Sgd,
    x: Tensor,
    y: Tensor,
}

impl Bench {
    /// Builds the model (initialised from `seed`) and a random batch of `batch` images drawn
    /// from N(0, 1) with uniform labels, both from a generator seeded by (`seed`, `worker`).
    pub fn new(model: ModelKind, batch: usize, seed: u64, worker: usize) -> Result<Self> {
        let device = Device::Cpu;
        let shape = model.synthetic_shape();
        let net = Model::new(model, shape, CLASSES, seed, &device)?;
        let opt = Sgd::new(SGD, &net.params);
        let mut rng = StdRng::seed_from_u64(derive_seed(&[seed, 0x6265_6e63, worker as u64])); // "benc"
        let images: Vec<f32> = (0..batch * shape.len())
            .map(|_| rng.sample(StandardNormal))
            .collect();
        let labels: Vec<u32> = (0..batch)
            .map(|_| rng.random_range(0..CLASSES as u32))
            .collect();
        let x = Tensor::from_vec(
            images,
            (batch, shape.channels, shape.height, shape.width),
            &device,
        )?;
        let y = Tensor::from_vec(labels, batch, &device)?;
        Ok(Self {
            model: net,
            opt,
            x,
            y,
        })
    }

    /// One training step as a worker takes it: forward and cross-entropy, backward (and the
    /// loss read back), SGD step; each phase timed. `end` is left at 0.
    pub fn step(&mut self) -> Result<StepRecord> {
        let t0 = Instant::now();
        let logits = self.model.forward_t(&self.x, true)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &self.y)?;
        let t1 = Instant::now();
        let grads = loss.backward()?;
        let value = loss.to_scalar::<f32>()?;
        let t2 = Instant::now();
        self.opt.step(&self.model.params, &grads, LR)?;
        // Freeing the graph and the gradients is part of the step's cost.
        drop((grads, loss, logits));
        let t3 = Instant::now();
        Ok(StepRecord {
            end: 0.0,
            forward: t1 - t0,
            backward: t2 - t1,
            optimizer: t3 - t2,
            loss: value,
        })
    }
}

/// What a worker thread does: build and warm up, meet the others, train until `stop` (time
/// windows) or `max_steps`.
fn worker_body(
    spec: &RunSpec,
    id: usize,
    start: &Barrier,
    clock: &std::sync::OnceLock<Instant>,
    stop: &AtomicBool,
) -> Result<Vec<StepRecord>> {
    let prepared = catch_unwind(AssertUnwindSafe(|| -> Result<Bench> {
        let mut bench = Bench::new(spec.model, spec.batch, spec.seed, id)?;
        for _ in 0..spec.warmup {
            bench.step()?;
        }
        Ok(bench)
    }));
    // Always meet the others, even after a failure, so nobody waits forever.
    start.wait();
    let mut bench = match prepared {
        Ok(r) => r?,
        Err(p) => {
            stop.store(true, Ordering::SeqCst);
            return Err(Error::Internal(format!(
                "bench worker {id} panicked: {}",
                crate::error::panic_message(&*p)
            )));
        }
    };
    let t0 = *clock.get_or_init(Instant::now);
    let max_steps = match spec.window {
        WindowLen::Steps(n) => Some(n * spec.windows),
        WindowLen::Seconds(_) => None,
    };
    let mut records = Vec::new();
    while !stop.load(Ordering::SeqCst) && max_steps.is_none_or(|m| records.len() < m) {
        let mut r = match bench.step() {
            Ok(r) => r,
            Err(e) => {
                stop.store(true, Ordering::SeqCst);
                return Err(e);
            }
        };
        r.end = t0.elapsed().as_secs_f64();
        records.push(r);
    }
    Ok(records)
}

/// Runs the workers and returns their records. The caller sets candle's thread variables first
/// (`threads::configure`).
pub fn measure(spec: &RunSpec) -> Result<Measured> {
    let m = spec.workers;
    let start = Arc::new(Barrier::new(m + 1));
    let clock = Arc::new(std::sync::OnceLock::new());
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::with_capacity(m);
    for id in 0..m {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(spec.threads_per_worker())
            .build()
            .map_err(|e| Error::Internal(format!("cannot start a worker thread pool: {e}")))?;
        let (spec, start, clock, stop) = (spec.clone(), start.clone(), clock.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name(format!("bench-{id}"))
            .spawn(move || pool.install(|| worker_body(&spec, id, &start, &clock, &stop)))
            .map_err(|e| Error::Internal(format!("cannot start a worker thread: {e}")))?;
        handles.push(handle);
    }
    start.wait();
    let t0 = *clock.get_or_init(Instant::now);
    if let WindowLen::Seconds(len) = spec.window {
        let total = Duration::from_secs_f64(len * spec.windows as f64);
        // Sleep in slices so a failed worker ends the wait early.
        while t0.elapsed() < total && !stop.load(Ordering::SeqCst) {
            let left = total.saturating_sub(t0.elapsed());
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
        stop.store(true, Ordering::SeqCst);
    }
    let mut workers = Vec::with_capacity(m);
    let mut first_error = None;
    for (id, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(records)) => workers.push(records),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(p) => {
                first_error.get_or_insert(Error::Internal(format!(
                    "bench worker {id} panicked: {}",
                    crate::error::panic_message(&*p)
                )));
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let seconds = match spec.window {
        WindowLen::Seconds(len) => len * spec.windows as f64,
        WindowLen::Steps(_) => workers
            .iter()
            .filter_map(|w| w.last().map(|r| r.end))
            .fold(0.0, f64::max),
    };
    Ok(Measured { workers, seconds })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_times_its_phases_and_learns() {
        let mut b = Bench::new(ModelKind::Mlp, 8, 0, 0).unwrap();
        let first = b.step().unwrap();
        let mut last = first;
        for _ in 0..20 {
            last = b.step().unwrap();
        }
        assert!(
            first.loss.is_finite() && last.loss < first.loss,
            "{first:?} {last:?}"
        );
        assert!(last.forward > Duration::ZERO && last.backward > Duration::ZERO);
    }

    #[test]
    fn step_windows_run_exactly_their_steps() {
        let spec = RunSpec {
            model: ModelKind::Mlp,
            batch: 4,
            threads: 2,
            workers: 2,
            warmup: 1,
            windows: 3,
            window: WindowLen::Steps(2),
            seed: 1,
        };
        let m = measure(&spec).unwrap();
        assert_eq!(m.workers.len(), 2);
        for w in &m.workers {
            assert_eq!(w.len(), 6);
            assert!(w.windows(2).all(|p| p[0].end <= p[1].end));
        }
        assert!(m.seconds > 0.0);
    }
}
