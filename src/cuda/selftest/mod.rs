//! The GPU side of `grawa-train selftest` (llm.c's habit: every kernel checked against its CPU
//! reference on random inputs, then timed against the memory system's speed):
//!
//! 1. on every visible GPU, each kernel on fresh random inputs (standard normal; positive weights
//!    that sum to 1 per layer) against its CPU twin, over a layer table with empty, one-element,
//!    piece-boundary and large layers, and with 1, 3, 4 and [`MAX_WORKERS`](crate::cuda::MAX_WORKERS) workers;
//! 2. for each ordered pair of GPUs, a peer copy: checked bit for bit, and its bandwidth;
//! 3. on every GPU, each kernel's achieved bandwidth next to a plain device-to-device copy that
//!    moves the same bytes.
//!
//! The seed is printed; `GRAWA_SELFTEST_SEED=N` repeats a run's inputs. Results go into a
//! [`Report`] (`crate::selftest::report`, the only part of the self-test this module uses);
//! printing and the exit status are `crate::selftest`'s.
//!
//! The files: this one opens each GPU and runs the three parts in turn; `parity` is part 1,
//! `peer_copy` part 2, `bandwidth` part 3. The random inputs and their trips to and from a GPU
//! are shared here.

mod bandwidth;
mod parity;
mod peer_copy;

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::cudarc::driver::{CudaContext, CudaSlice, CudaStream, DeviceRepr};
use super::device::{device_count, driver_version};
use super::kernels::Kernels;
use super::{Context, Result};
use crate::selftest::report::{Check, Comparison, DeviceInfo, Outcome, Report};

/// A GPU opened for the self-test: its context and the stream the checks run on.
type Gpu = (Arc<CudaContext>, Arc<CudaStream>);

/// Runs every check on every visible GPU.
pub fn run_checks() -> Outcome {
    let n = match device_count() {
        Ok(0) => {
            let visible = std::env::var("CUDA_VISIBLE_DEVICES")
                .map(|v| format!(" (CUDA_VISIBLE_DEVICES={v:?})"))
                .unwrap_or_default();
            return Outcome::NoDevice(format!("the CUDA driver sees no GPU{visible}"));
        }
        Ok(n) => n,
        Err(e) => return Outcome::NoDevice(e.to_string()),
    };
    let seed = seed_from_env();
    let mut report = Report {
        driver: match driver_version() {
            Ok((major, minor)) => format!("{major}.{minor}"),
            Err(e) => format!("unknown ({e})"),
        },
        seed,
        ..Report::default()
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let gpus: Vec<Gpu> = (0..n)
        .filter_map(|ordinal| check_gpu(ordinal, &mut rng, &mut report))
        .collect();
    peer_copy::check_every_pair(&gpus, &mut rng, &mut report);
    Outcome::Ran(report)
}

/// `GRAWA_SELFTEST_SEED` when it is set (to repeat a run's inputs), else the clock.
fn seed_from_env() -> u64 {
    std::env::var("GRAWA_SELFTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        })
}

/// Opens GPU `ordinal`, then checks its kernels against their CPU twins and times them, into
/// `report`. Returns the GPU for the copies between GPUs, or `None` when it does not open (a
/// failed check says why).
fn check_gpu(ordinal: usize, rng: &mut StdRng, report: &mut Report) -> Option<Gpu> {
    let opened = CudaContext::new(ordinal)
        .and_then(|ctx| ctx.new_stream().map(|s| (ctx, s)))
        .context(&format!("opening GPU {ordinal}"));
    let (ctx, stream) = match opened {
        Ok(g) => g,
        Err(e) => {
            report.checks.push(failed(ordinal, "context", "open", e));
            return None;
        }
    };
    report.devices.push(device_info(&ctx));
    match Kernels::load(&ctx) {
        Ok(k) => {
            parity::check_kernels(&k, &stream, rng, &mut report.checks);
            match bandwidth::measure(&k, &stream, rng) {
                Ok(b) => report.bandwidth.extend(b),
                Err(e) => report
                    .checks
                    .push(failed(ordinal, "bandwidth", "timing", e)),
            }
        }
        Err(e) => report
            .checks
            .push(failed(ordinal, "load PTX", "kernels/*.cu", e)),
    }
    Some((ctx, stream))
}

fn failed(device: usize, kernel: &str, case: impl Into<String>, e: impl ToString) -> Check {
    Check::new(device, kernel, case, Comparison::failed(e.to_string()), 0.0)
}

fn device_info(ctx: &Arc<CudaContext>) -> DeviceInfo {
    DeviceInfo {
        ordinal: ctx.ordinal(),
        name: ctx.name().unwrap_or_else(|e| format!("unknown ({e})")),
        compute_capability: ctx
            .compute_capability()
            .map(|(major, minor)| format!("{major}.{minor}"))
            .unwrap_or_else(|_| "?".to_string()),
        memory_gib: ctx
            .total_mem()
            .map(|b| b as f64 / (1u64 << 30) as f64)
            .unwrap_or(0.0),
    }
}

/// `n` floats drawn from the standard normal distribution.
fn normal(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect()
}

fn upload(stream: &Arc<CudaStream>, v: &[f32]) -> Result<CudaSlice<f32>> {
    stream.clone_htod(v).context("copying inputs to the GPU")
}

fn download<T: DeviceRepr>(stream: &Arc<CudaStream>, v: &CudaSlice<T>) -> Result<Vec<T>> {
    stream.clone_dtoh(v).context("copying results from the GPU")
}
