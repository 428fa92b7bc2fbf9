//! The GPU side of `grawa-train selftest` (llm.c's habit: every kernel checked against its CPU
//! reference on random inputs, then timed against the memory system's speed):
//!
//! 1. on every visible GPU, each kernel on fresh random inputs (standard normal; positive weights
//!    that sum to 1 per layer) against its CPU twin, over a layer table with empty, one-element,
//!    piece-boundary and large layers, and with 1, 3, 4 and [`MAX_WORKERS`] workers;
//! 2. for each ordered pair of GPUs, a peer copy: checked bit for bit, and its bandwidth;
//! 3. on every GPU, each kernel's achieved bandwidth next to a plain device-to-device copy that
//!    moves the same bytes.
//!
//! The seed is printed; `GRAWA_SELFTEST_SEED=N` repeats a run's inputs. Results go into a
//! [`Report`] (`crate::selftest::report`, the only part of the self-test this module uses);
//! printing and the exit status are `crate::selftest`'s.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::cudarc::driver::{sys, CudaContext, CudaSlice, CudaStream};
use super::device::{copy, device_count, driver_version, enable_peer_access};
use super::kernels::{DeviceLayout, DeviceWeights, Kernels};
use super::MAX_WORKERS;
use super::{Context, Result};
use crate::average::naive;
use crate::average::Weights;
use crate::model::LayerEntry;
use crate::optim::{sgd_update, SgdConfig};
use crate::selftest::report::{
    compare, Bandwidth, Check, Comparison, DeviceInfo, Outcome, PeerCopy, Report, F32_TOLERANCE,
};

/// Layer lengths of the parity table: empty layers, a single element, both sides of a piece
/// boundary (4096), and a large layer that spans many pieces. 149,793 elements.
const LAYER_LENS: [usize; 11] = [0, 1, 7, 4095, 4096, 4097, 10_000, 3, 0, 123_457, 31];

/// Elements per buffer in the bandwidth runs: 64 MiB, far past any cache.
const BANDWIDTH_ELEMS: usize = 1 << 24;
/// Workers in the bandwidth runs.
const BANDWIDTH_WORKERS: usize = 4;
/// Bytes per peer copy: 256 MiB.
const PEER_ELEMS: usize = 1 << 26;
/// Timed repetitions after one warm-up.
const REPS: usize = 10;

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
    let seed = std::env::var("GRAWA_SELFTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        });
    let mut report = Report {
        driver: match driver_version() {
            Ok((major, minor)) => format!("{major}.{minor}"),
            Err(e) => format!("unknown ({e})"),
        },
        seed,
        ..Report::default()
    };
    let mut rng = StdRng::seed_from_u64(seed);

    let mut gpus: Vec<(Arc<CudaContext>, Arc<CudaStream>)> = Vec::new();
    for ordinal in 0..n {
        let opened = CudaContext::new(ordinal)
            .and_then(|ctx| ctx.new_stream().map(|s| (ctx, s)))
            .context(&format!("opening GPU {ordinal}"));
        let (ctx, stream) = match opened {
            Ok(g) => g,
            Err(e) => {
                report.checks.push(failed(ordinal, "context", "open", e));
                continue;
            }
        };
        report.devices.push(device_info(&ctx));
        match Kernels::load(&ctx) {
            Ok(k) => {
                parity(&k, &stream, &mut rng, &mut report.checks);
                match bandwidth(&k, &stream, &mut rng) {
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
        gpus.push((ctx, stream));
    }

    for (a, (ctx_a, stream_a)) in gpus.iter().enumerate() {
        for (b, (ctx_b, stream_b)) in gpus.iter().enumerate() {
            if a == b {
                continue;
            }
            let (src, dst) = (ctx_a.ordinal(), ctx_b.ordinal());
            match peer_copy(ctx_a, stream_a, ctx_b, stream_b, &mut rng) {
                Ok((copy, comparison)) => {
                    report.peer_copies.push(copy);
                    report.checks.push(Check::new(
                        dst,
                        "peer copy",
                        format!("GPU {src} -> GPU {dst}"),
                        comparison,
                        0.0,
                    ));
                }
                Err(e) => report.checks.push(failed(
                    dst,
                    "peer copy",
                    format!("GPU {src} -> GPU {dst}"),
                    e,
                )),
            }
        }
    }
    Outcome::Ran(report)
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

// ---------------------------------------------------------------------------------------------
// Parity: each kernel against its CPU twin.

/// Runs every parity case on one GPU, one [`Check`] each (a CUDA failure fails that case only).
fn parity(k: &Kernels, stream: &Arc<CudaStream>, rng: &mut StdRng, out: &mut Vec<Check>) {
    let device = k.context().ordinal();
    let table = table_of(&LAYER_LENS);
    let n: usize = LAYER_LENS.iter().sum();
    let layers = LAYER_LENS.len();
    let mut push = |kernel: &str, case: String, result: Result<Comparison>| {
        let comparison = result.unwrap_or_else(|e| Comparison::failed(e.to_string()));
        out.push(Check::new(device, kernel, case, comparison, F32_TOLERANCE));
    };
    let tl = format!("{layers} layers");

    push(
        "layer_sumsq",
        tl.clone(),
        check_layer_sumsq(k, stream, rng, &table, n),
    );
    push(
        "layer_sumsq",
        "2 empty layers".into(),
        check_layer_sumsq(k, stream, rng, &table_of(&[0, 0]), 0),
    );
    for (m, per_layer) in [(1, false), (4, false), (4, true), (MAX_WORKERS, true)] {
        let kind = if per_layer { "per-layer" } else { "per-worker" };
        push(
            "weighted_center",
            format!("{m} workers, {kind} weights, {tl}"),
            check_weighted_center(k, stream, rng, &table, n, m, per_layer),
        );
    }
    for (m, per_layer) in [(3, true), (4, false)] {
        let kind = if per_layer { "per-layer" } else { "per-worker" };
        push(
            "center_and_pull",
            format!("{m} workers, {kind} weights, lambda 0.5"),
            check_center_and_pull(k, stream, rng, &table, n, m, per_layer, 0.5),
        );
    }
    push(
        "pull",
        "lambda 0.5".into(),
        check_pull(k, stream, rng, n, 0.5),
    );
    push(
        "pull",
        "prox step, lambda 0.01/32".into(),
        check_pull(k, stream, rng, n, 0.01 / 32.0),
    );
    for m in [1, 4] {
        push(
            "easgd_round",
            format!("{m} workers, beta 0.1"),
            check_easgd(k, stream, rng, n, m, 0.1),
        );
    }
    for m in [4, MAX_WORKERS] {
        push(
            "uniform_average",
            format!("{m} workers"),
            check_uniform_average(k, stream, rng, n, m),
        );
    }
    let sgd_cases = [
        ("Nesterov, mu 0.9, wd 1e-4", 0.9, true, 1e-4),
        ("heavy ball, mu 0.9, wd 5e-4", 0.9, false, 5e-4),
        ("plain, mu 0, wd 0", 0.0, false, 0.0),
    ];
    for (case, momentum, nesterov, weight_decay) in sgd_cases {
        let cfg = SgdConfig {
            momentum,
            nesterov,
            weight_decay,
        };
        push(
            "sgd_step",
            format!("{case}, 3 steps"),
            check_sgd(k, stream, rng, n, &cfg, 0.1),
        );
    }
}

/// A layer table of consecutive layers with these lengths.
fn table_of(lens: &[usize]) -> Vec<LayerEntry> {
    let mut offset = 0;
    lens.iter()
        .enumerate()
        .map(|(l, &len)| {
            let e = LayerEntry {
                name: format!("layer{l}"),
                offset,
                len,
            };
            offset += len;
            e
        })
        .collect()
}

fn normal(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect()
}

/// Positive weights, normalised to sum to 1 per layer (as GRAWA's are).
fn random_weights(rng: &mut StdRng, m: usize, layers: usize, per_layer: bool) -> Weights {
    let mut draw = |k: usize| -> Vec<f32> {
        let w: Vec<f32> = (0..k).map(|_| rng.random_range(0.05f32..1.0)).collect();
        let s: f32 = w.iter().sum();
        w.iter().map(|v| v / s).collect()
    };
    if per_layer {
        let by_layer: Vec<Vec<f32>> = (0..layers).map(|_| draw(m)).collect();
        let w = (0..m)
            .flat_map(|i| by_layer.iter().map(move |col| col[i]))
            .collect();
        Weights::PerLayer { layers, w }
    } else {
        Weights::PerWorker(draw(m))
    }
}

fn upload(stream: &Arc<CudaStream>, v: &[f32]) -> Result<CudaSlice<f32>> {
    stream.clone_htod(v).context("copying inputs to the GPU")
}

fn download<T: super::cudarc::driver::DeviceRepr>(
    stream: &Arc<CudaStream>,
    v: &CudaSlice<T>,
) -> Result<Vec<T>> {
    stream.clone_dtoh(v).context("copying results from the GPU")
}

fn check_layer_sumsq(
    k: &Kernels,
    stream: &Arc<CudaStream>,
    rng: &mut StdRng,
    table: &[LayerEntry],
    n: usize,
) -> Result<Comparison> {
    let x = normal(rng, n);
    let want = naive::naive_layer_sumsq(&x, table);
    let mut layout = DeviceLayout::new(stream, table, n)?;
    // One spare element, so that an empty buffer is an empty view of a real allocation.
    let dx = upload(stream, &x.iter().copied().chain([0.0]).collect::<Vec<_>>())?;
    let dx = dx.slice(0..n);
    // Filled with garbage so that a layer the kernel forgets to write shows up.
    let mut out = stream
        .clone_htod(&vec![7.0f64; table.len().max(1)])
        .context("copying inputs to the GPU")?;
    let mut out_view = out.slice_mut(0..table.len());
    k.layer_sumsq(stream, &dx, &mut layout, &mut out_view)?;
    let got = download(stream, &out)?;
    Ok(compare(&got[..table.len()], &want))
}

fn check_weighted_center(
    k: &Kernels,
    stream: &Arc<CudaStream>,
    rng: &mut StdRng,
    table: &[LayerEntry],
    n: usize,
    m: usize,
    per_layer: bool,
) -> Result<Comparison> {
    let xs: Vec<Vec<f32>> = (0..m).map(|_| normal(rng, n)).collect();
    let weights = random_weights(rng, m, table.len(), per_layer);
    let refs: Vec<&[f32]> = xs.iter().map(|x| x.as_slice()).collect();
    let mut want = vec![0.0f32; n];
    naive::naive_weighted_center(&refs, &weights, table, &mut want);

    let layout = DeviceLayout::new(stream, table, n)?;
    let dw = DeviceWeights::new(stream, &weights)?;
    let dxs = xs
        .iter()
        .map(|x| upload(stream, x))
        .collect::<Result<Vec<_>>>()?;
    let dx_refs: Vec<&CudaSlice<f32>> = dxs.iter().collect();
    let mut out = upload(stream, &vec![f32::NAN; n])?;
    k.weighted_center(stream, &dx_refs, &dw, &layout, &mut out)?;
    Ok(compare(&download(stream, &out)?, &want))
}

#[allow(clippy::too_many_arguments)]
fn check_center_and_pull(
    k: &Kernels,
    stream: &Arc<CudaStream>,
    rng: &mut StdRng,
    table: &[LayerEntry],
    n: usize,
    m: usize,
    per_layer: bool,
    lambda: f32,
) -> Result<Comparison> {
    let mut xs: Vec<Vec<f32>> = (0..m).map(|_| normal(rng, n)).collect();
    let weights = random_weights(rng, m, table.len(), per_layer);
    let layout = DeviceLayout::new(stream, table, n)?;
    let dw = DeviceWeights::new(stream, &weights)?;
    let mut dxs = xs
        .iter()
        .map(|x| upload(stream, x))
        .collect::<Result<Vec<_>>>()?;
    let mut center = upload(stream, &vec![f32::NAN; n])?;
    {
        let mut refs: Vec<&mut CudaSlice<f32>> = dxs.iter_mut().collect();
        k.center_and_pull(stream, &mut refs, &dw, &layout, &mut center, lambda)?;
    }

    let mut want_center = vec![0.0f32; n];
    let mut refs: Vec<&mut [f32]> = xs.iter_mut().map(|x| x.as_mut_slice()).collect();
    naive::naive_center_and_pull(&mut refs, &weights, table, &mut want_center, lambda);
    let (mut got, mut want) = (download(stream, &center)?, want_center);
    for (dx, x) in dxs.iter().zip(&xs) {
        got.extend(download(stream, dx)?);
        want.extend_from_slice(x);
    }
    Ok(compare(&got, &want))
}

fn check_pull(
    k: &Kernels,
    stream: &Arc<CudaStream>,
    rng: &mut StdRng,
    n: usize,
    lambda: f32,
) -> Result<Comparison> {
    let mut x = normal(rng, n);
    let c = normal(rng, n);
    let mut dx = upload(stream, &x)?;
    let dc = upload(stream, &c)?;
    k.pull(stream, &mut dx, &dc, lambda)?;
    naive::naive_pull(&mut x, &c, lambda);
    Ok(compare(&download(stream, &dx)?, &x))
}

fn check_easgd(
    k: &Kernels,
    stream: &Arc<CudaStream>,
    rng: &mut StdRng,
    n: usize,
    m: usize,
    beta: f32,
) -> Result<Comparison> {
    let mut xs: Vec<Vec<f32>> = (0..m).map(|_| normal(rng, n)).collect();
    let mut center = normal(rng, n);
    let mut dxs = xs
        .iter()
        .map(|x| upload(stream, x))
        .collect::<Result<Vec<_>>>()?;
    let mut dc = upload(stream, &center)?;
    {
        let mut refs: Vec<&mut CudaSlice<f32>> = dxs.iter_mut().collect();
        k.easgd_round(stream, &mut refs, &mut dc, beta)?;
    }
    let mut refs: Vec<&mut [f32]> = xs.iter_mut().map(|x| x.as_mut_slice()).collect();
    naive::naive_easgd_round(&mut refs, &mut center, beta);
    let (mut got, mut want) = (download(stream, &dc)?, center);
    for (dx, x) in dxs.iter().zip(&xs) {
        got.extend(download(stream, dx)?);
        want.extend_from_slice(x);
    }
    Ok(compare(&got, &want))
}

fn check_uniform_average(
    k: &Kernels,
    stream: &Arc<CudaStream>,
    rng: &mut StdRng,
    n: usize,
    m: usize,
) -> Result<Comparison> {
    let xs: Vec<Vec<f32>> = (0..m).map(|_| normal(rng, n)).collect();
    let refs: Vec<&[f32]> = xs.iter().map(|x| x.as_slice()).collect();
    let mut want = vec![0.0f32; n];
    naive::naive_uniform_average(&refs, &mut want);
    let dxs = xs
        .iter()
        .map(|x| upload(stream, x))
        .collect::<Result<Vec<_>>>()?;
    let dx_refs: Vec<&CudaSlice<f32>> = dxs.iter().collect();
    let mut out = upload(stream, &vec![f32::NAN; n])?;
    k.uniform_average(stream, &dx_refs, &mut out)?;
    Ok(compare(&download(stream, &out)?, &want))
}

/// Three steps with fresh gradients, so the momentum buffer carries state between them.
fn check_sgd(
    k: &Kernels,
    stream: &Arc<CudaStream>,
    rng: &mut StdRng,
    n: usize,
    cfg: &SgdConfig,
    lr: f32,
) -> Result<Comparison> {
    let mut x = normal(rng, n);
    let mut buf = vec![0.0f32; n];
    let mut dx = upload(stream, &x)?;
    let mut dbuf = upload(stream, &buf)?;
    for _ in 0..3 {
        let g = normal(rng, n);
        let dg = upload(stream, &g)?;
        k.sgd_step(stream, &mut dx, &dg, &mut dbuf, lr, cfg)?;
        sgd_update(&mut x, &g, &mut buf, lr, cfg);
    }
    let mut got = download(stream, &dx)?;
    got.extend(download(stream, &dbuf)?);
    x.extend_from_slice(&buf);
    Ok(compare(&got, &x))
}

// ---------------------------------------------------------------------------------------------
// Bandwidth: each kernel against a device-to-device copy of the same bytes.

/// Mean milliseconds of `f` over [`REPS`] runs after one warm-up, timed with events on `stream`.
fn time_ms(stream: &Arc<CudaStream>, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
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

fn gb_per_s(bytes: u64, ms: f64) -> f64 {
    bytes as f64 / (ms * 1e-3) / 1e9
}

/// Times every kernel on [`BANDWIDTH_ELEMS`]-element buffers, and next to each a copy of half the
/// bytes it moves (a copy reads and writes each byte, so both move the same traffic).
fn bandwidth(k: &Kernels, stream: &Arc<CudaStream>, rng: &mut StdRng) -> Result<Vec<Bandwidth>> {
    let device = k.context().ordinal();
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
    let copy_elems = (m + 1) * n;
    let copy_src = stream
        .alloc_zeros::<f32>(copy_elems)
        .context("allocating")?;
    let mut copy_dst = stream
        .alloc_zeros::<f32>(copy_elems)
        .context("allocating")?;

    let f = 4u64; // bytes per f32
    let (n64, m64) = (n as u64, m as u64);
    let mut rows = Vec::new();
    let mut measure = |kernel: &str, bytes: u64, ms: f64| -> Result<()> {
        let floats = (bytes / 2 / f) as usize;
        let copy_ms = time_ms(stream, || {
            copy(
                stream,
                &copy_src.slice(0..floats),
                &mut copy_dst.slice_mut(0..floats),
            )
        })?;
        rows.push(Bandwidth {
            device,
            kernel: kernel.to_string(),
            bytes,
            kernel_gb_per_s: gb_per_s(bytes, ms),
            copy_gb_per_s: gb_per_s(bytes, copy_ms),
        });
        Ok(())
    };

    let ms = time_ms(stream, || {
        k.layer_sumsq(stream, &xs[0], &mut layout, &mut sums)
    })?;
    measure("layer_sumsq", f * n64, ms)?;
    let ms = time_ms(stream, || {
        let refs: Vec<&CudaSlice<f32>> = xs.iter().collect();
        k.weighted_center(stream, &refs, &weights, &layout, &mut center)
    })?;
    measure("weighted_center", f * n64 * (m64 + 1), ms)?;
    let ms = time_ms(stream, || {
        let mut refs: Vec<&mut CudaSlice<f32>> = xs.iter_mut().collect();
        k.center_and_pull(stream, &mut refs, &weights, &layout, &mut center, 0.5)
    })?;
    measure("center_and_pull", f * n64 * (2 * m64 + 1), ms)?;
    let ms = time_ms(stream, || k.pull(stream, &mut xs[0], &center, 0.5))?;
    measure("pull", f * n64 * 3, ms)?;
    let ms = time_ms(stream, || {
        let mut refs: Vec<&mut CudaSlice<f32>> = xs.iter_mut().collect();
        k.easgd_round(stream, &mut refs, &mut center, 0.1)
    })?;
    measure("easgd_round", f * n64 * 2 * (m64 + 1), ms)?;
    let ms = time_ms(stream, || {
        let refs: Vec<&CudaSlice<f32>> = xs.iter().collect();
        k.uniform_average(stream, &refs, &mut center)
    })?;
    measure("uniform_average", f * n64 * (m64 + 1), ms)?;
    let (x0, rest) = xs.split_at_mut(1);
    let ms = time_ms(stream, || {
        k.sgd_step(stream, &mut x0[0], &rest[0], &mut other, 0.01, &cfg)
    })?;
    measure("sgd_step", f * n64 * 5, ms)?;
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// Copies between GPUs.

/// Copies [`PEER_ELEMS`] random floats from GPU a to GPU b: bandwidth, and the copy checked bit for
/// bit (tolerance 0).
fn peer_copy(
    ctx_a: &Arc<CudaContext>,
    stream_a: &Arc<CudaStream>,
    ctx_b: &Arc<CudaContext>,
    stream_b: &Arc<CudaStream>,
    rng: &mut StdRng,
) -> Result<(PeerCopy, Comparison)> {
    // Both directions, so that either side may drive the copy directly.
    let peer = enable_peer_access(ctx_b, ctx_a)? && enable_peer_access(ctx_a, ctx_b)?;
    let host = normal(rng, PEER_ELEMS);
    let src = upload(stream_a, &host)?;
    stream_a.synchronize().context("waiting for the upload")?;
    let mut dst = stream_b
        .alloc_zeros::<f32>(PEER_ELEMS)
        .context("allocating the copy's destination")?;
    let ms = time_ms(stream_b, || copy(stream_b, &src, &mut dst))?;
    let got = download(stream_b, &dst)?;
    let bytes = (PEER_ELEMS * 4) as u64;
    Ok((
        PeerCopy {
            src: ctx_a.ordinal(),
            dst: ctx_b.ordinal(),
            peer_access: peer,
            bytes,
            gb_per_s: gb_per_s(bytes, ms),
        },
        compare(&got, &host),
    ))
}
