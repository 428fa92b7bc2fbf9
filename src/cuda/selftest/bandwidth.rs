//! Part 3 of the self-test: each kernel's achieved bandwidth next to a device-to-device copy that
//! moves the same bytes, and the event timing the copies between GPUs use too.

use std::sync::Arc;

use rand::rngs::StdRng;

use super::{normal, upload};
use crate::average::Weights;
use crate::cuda::cudarc::driver::{sys, CudaSlice, CudaStream};
use crate::cuda::device::copy;
use crate::cuda::kernels::{DeviceLayout, DeviceWeights, Kernels};
use crate::cuda::{Context, Result};
use crate::optim::SgdConfig;
use crate::selftest::report::Bandwidth;

/// Elements per buffer in the bandwidth runs: 64 MiB, far past any cache.
const BANDWIDTH_ELEMS: usize = 1 << 24;
/// Workers in the bandwidth runs.
const BANDWIDTH_WORKERS: usize = 4;
/// Timed repetitions after one warm-up.
const REPS: usize = 10;

/// Mean milliseconds of `f` over [`REPS`] runs after one warm-up, timed with events on `stream`.
pub(super) fn time_ms(stream: &Arc<CudaStream>, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let ctx = stream.context();
    let flags = Some(sys::CUevent_flags::CU_EVENT_DEFAULT);
    let start = ctx.new_event(flags).context("creating a timing event")?;
    let end = ctx.new_event(flags).context("creating a timing event")?;
    start.record(stream).context("recording a timing event")?;
    for _ in 0..REPS {
        f()?;
    }
    end.record(stream).context("recording a timing event")?;
    let ms = start.elapsed_ms(&end).context("reading a timing event")?;
    Ok(f64::from(ms) / REPS as f64)
}

pub(super) fn gb_per_s(bytes: u64, ms: f64) -> f64 {
    bytes as f64 / (ms * 1e-3) / 1e9
}

/// Times every kernel on [`BANDWIDTH_ELEMS`]-element buffers, each next to a copy of the same
/// traffic ([`AgainstCopy`]).
pub(super) fn measure(
    k: &Kernels,
    stream: &Arc<CudaStream>,
    rng: &mut StdRng,
) -> Result<Vec<Bandwidth>> {
    let n = BANDWIDTH_ELEMS;
    let m = BANDWIDTH_WORKERS;
    // Random contents: some GPUs move runs of zeros faster (compression).
    let x = normal(rng, n);
    let mut xs = (0..m)
        .map(|_| upload(stream, &x))
        .collect::<Result<Vec<_>>>()?;
    let mut center = upload(stream, &x)?;
    let mut other = upload(stream, &x)?;
    let mut sums = stream.alloc_zeros::<f64>(1).context("allocating")?;
    let mut layout = DeviceLayout::flat(stream, n)?;
    let weights = DeviceWeights::new(stream, &Weights::uniform(m))?;
    let cfg = SgdConfig {
        momentum: 0.9,
        nesterov: true,
        weight_decay: 1e-4,
    };
    // The largest copy needed: easgd_round moves 2(M+1)n floats, so a copy of (M+1)n.
    let mut against = AgainstCopy::new(stream, k.context().ordinal(), (m + 1) * n)?;

    let f = 4u64; // bytes per f32
    let (n64, m64) = (n as u64, m as u64);
    let ms = time_ms(stream, || {
        k.layer_sumsq(stream, &xs[0], &mut layout, &mut sums)
    })?;
    against.record("layer_sumsq", f * n64, ms)?;
    let ms = time_ms(stream, || {
        let refs: Vec<&CudaSlice<f32>> = xs.iter().collect();
        k.weighted_center(stream, &refs, &weights, &layout, &mut center)
    })?;
    against.record("weighted_center", f * n64 * (m64 + 1), ms)?;
    let ms = time_ms(stream, || {
        let mut refs: Vec<&mut CudaSlice<f32>> = xs.iter_mut().collect();
        k.center_and_pull(stream, &mut refs, &weights, &layout, &mut center, 0.5)
    })?;
    against.record("center_and_pull", f * n64 * (2 * m64 + 1), ms)?;
    let ms = time_ms(stream, || k.pull(stream, &mut xs[0], &center, 0.5))?;
    against.record("pull", f * n64 * 3, ms)?;
    let ms = time_ms(stream, || {
        let mut refs: Vec<&mut CudaSlice<f32>> = xs.iter_mut().collect();
        k.easgd_round(stream, &mut refs, &mut center, 0.1)
    })?;
    against.record("easgd_round", f * n64 * 2 * (m64 + 1), ms)?;
    let ms = time_ms(stream, || {
        let refs: Vec<&CudaSlice<f32>> = xs.iter().collect();
        k.uniform_average(stream, &refs, &mut center)
    })?;
    against.record("uniform_average", f * n64 * (m64 + 1), ms)?;
    let (x0, rest) = xs.split_at_mut(1);
    let ms = time_ms(stream, || {
        k.sgd_step(stream, &mut x0[0], &rest[0], &mut other, 0.01, &cfg)
    })?;
    against.record("sgd_step", f * n64 * 5, ms)?;
    Ok(against.rows)
}

/// The device-to-device copy each kernel's time is set against, and the rows measured so far. A
/// kernel that moves `bytes` is set against a copy of half as many (a copy reads and writes each
/// byte, so both move the same traffic).
struct AgainstCopy<'a> {
    stream: &'a Arc<CudaStream>,
    device: usize,
    src: CudaSlice<f32>,
    dst: CudaSlice<f32>,
    rows: Vec<Bandwidth>,
}

impl<'a> AgainstCopy<'a> {
    /// Room for copies of up to `elems` floats on `stream`'s GPU (number `device`).
    fn new(stream: &'a Arc<CudaStream>, device: usize, elems: usize) -> Result<Self> {
        Ok(Self {
            stream,
            device,
            src: stream.alloc_zeros::<f32>(elems).context("allocating")?,
            dst: stream.alloc_zeros::<f32>(elems).context("allocating")?,
            rows: Vec::new(),
        })
    }

    /// Times the copy that moves what `kernel` moved (`bytes` in `kernel_ms`) and adds the row.
    fn record(&mut self, kernel: &str, bytes: u64, kernel_ms: f64) -> Result<()> {
        let floats = (bytes / 2 / 4) as usize;
        let (src, dst) = (&self.src, &mut self.dst);
        let copy_ms = time_ms(self.stream, || {
            copy(
                self.stream,
                &src.slice(0..floats),
                &mut dst.slice_mut(0..floats),
            )
        })?;
        self.rows.push(Bandwidth {
            device: self.device,
            kernel: kernel.to_string(),
            bytes,
            kernel_gb_per_s: gb_per_s(bytes, kernel_ms),
            copy_gb_per_s: gb_per_s(bytes, copy_ms),
        });
        Ok(())
    }
}
