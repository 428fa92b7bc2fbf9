//! Part 1 of the self-test: each kernel on random inputs against its CPU twin, one [`Check`] per
//! case.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::Rng;

use super::{download, normal, upload};
use crate::average::naive;
use crate::average::Weights;
use crate::cuda::cudarc::driver::{CudaSlice, CudaStream};
use crate::cuda::kernels::{DeviceLayout, DeviceWeights, Kernels};
use crate::cuda::{Context, Result, MAX_WORKERS};
use crate::model::LayerEntry;
use crate::optim::{sgd_update, SgdConfig};
use crate::selftest::report::{compare, Check, Comparison, F32_TOLERANCE};

/// Layer lengths of the parity table: empty layers, a single element, both sides of a piece
/// boundary (4096), and a large layer that spans many pieces. 149,793 elements.
const LAYER_LENS: [usize; 11] = [0, 1, 7, 4095, 4096, 4097, 10_000, 3, 0, 123_457, 31];

/// The SGD variants `sgd_step` is checked in: Nesterov, heavy-ball momentum, and plain.
const SGD_CASES: [(&str, SgdConfig); 3] = [
    (
        "Nesterov, mu 0.9, wd 1e-4",
        SgdConfig {
            momentum: 0.9,
            nesterov: true,
            weight_decay: 1e-4,
        },
    ),
    (
        "heavy ball, mu 0.9, wd 5e-4",
        SgdConfig {
            momentum: 0.9,
            nesterov: false,
            weight_decay: 5e-4,
        },
    ),
    (
        "plain, mu 0, wd 0",
        SgdConfig {
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        },
    ),
];

/// Runs every parity case on one GPU, one [`Check`] each (a CUDA failure fails that case only).
pub(super) fn check_kernels(
    k: &Kernels,
    stream: &Arc<CudaStream>,
    rng: &mut StdRng,
    out: &mut Vec<Check>,
) {
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
    for (case, cfg) in SGD_CASES {
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
    let dxs = upload_all(stream, &xs)?;
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
    let mut dxs = upload_all(stream, &xs)?;
    let mut center = upload(stream, &vec![f32::NAN; n])?;
    {
        let mut refs: Vec<&mut CudaSlice<f32>> = dxs.iter_mut().collect();
        k.center_and_pull(stream, &mut refs, &dw, &layout, &mut center, lambda)?;
    }

    let mut want_center = vec![0.0f32; n];
    let mut refs: Vec<&mut [f32]> = xs.iter_mut().map(|x| x.as_mut_slice()).collect();
    naive::naive_center_and_pull(&mut refs, &weights, table, &mut want_center, lambda);
    compare_center_and_workers(stream, &center, want_center, &dxs, &xs)
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
    let mut dxs = upload_all(stream, &xs)?;
    let mut dc = upload(stream, &center)?;
    {
        let mut refs: Vec<&mut CudaSlice<f32>> = dxs.iter_mut().collect();
        k.easgd_round(stream, &mut refs, &mut dc, beta)?;
    }
    let mut refs: Vec<&mut [f32]> = xs.iter_mut().map(|x| x.as_mut_slice()).collect();
    naive::naive_easgd_round(&mut refs, &mut center, beta);
    compare_center_and_workers(stream, &dc, center, &dxs, &xs)
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
    let dxs = upload_all(stream, &xs)?;
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

/// Each host vector on the device, in order.
fn upload_all(stream: &Arc<CudaStream>, xs: &[Vec<f32>]) -> Result<Vec<CudaSlice<f32>>> {
    xs.iter().map(|x| upload(stream, x)).collect()
}

/// A round that writes a center and every worker: the device's center and workers, one after
/// the other, against the reference's.
fn compare_center_and_workers(
    stream: &Arc<CudaStream>,
    center: &CudaSlice<f32>,
    want_center: Vec<f32>,
    dxs: &[CudaSlice<f32>],
    xs: &[Vec<f32>],
) -> Result<Comparison> {
    let (mut got, mut want) = (download(stream, center)?, want_center);
    for (dx, x) in dxs.iter().zip(xs) {
        got.extend(download(stream, dx)?);
        want.extend_from_slice(x);
    }
    Ok(compare(&got, &want))
}
