//! The host launcher of each kernel (the table in `kernels/mod.rs`): checks its arguments, takes
//! the buffers' pointers with their guards, and queues the launch on the stream it is given.

use std::sync::Arc;

use super::checks::{check_buffer, check_workers};
use super::{elementwise_grid, DeviceLayout, DeviceWeights, Kernels, MAX_GRID};
use crate::cuda::cudarc::driver::{CudaStream, DevicePtr, DevicePtrMut, DeviceSlice, SyncOnDrop};
use crate::cuda::launch_args::{self as args, Layered, SgdScalars, WorkerPtrs};
use crate::cuda::{Context, Result, MAX_WORKERS};
use crate::optim::SgdConfig;

/// The workers' pointers for one launch, from each buffer's `device_ptr` (read) or
/// `device_ptr_mut` (written in place), and the guards that must be held until the launch is
/// queued. At most [`MAX_WORKERS`] buffers: callers check that first (`check_workers`).
fn worker_ptrs<'a>(
    buffers: impl ExactSizeIterator<Item = (u64, SyncOnDrop<'a>)>,
) -> (WorkerPtrs, Vec<SyncOnDrop<'a>>) {
    let mut ptrs = [0; MAX_WORKERS];
    let mut guards = Vec::with_capacity(buffers.len());
    for (i, (p, g)) in buffers.enumerate() {
        ptrs[i] = p;
        guards.push(g);
    }
    (ptrs, guards)
}

impl Kernels {
    /// `out[l]` = sum of squares of `x` over layer l of `layout`, in f64. One launch for all
    /// layers; deterministic (partial sums are added in a fixed order).
    pub fn layer_sumsq<X, O>(
        &self,
        stream: &Arc<CudaStream>,
        x: &X,
        layout: &mut DeviceLayout,
        out: &mut O,
    ) -> Result<()>
    where
        X: DevicePtr<f32>,
        O: DevicePtrMut<f64>,
    {
        const WHAT: &str = "layer_sumsq";
        self.check_stream(stream, WHAT)?;
        check_buffer(stream, x.stream(), x.len(), layout.len, WHAT, "x")?;
        check_buffer(stream, out.stream(), out.len(), layout.layers, WHAT, "out")?;
        if layout.layers == 0 {
            return Ok(());
        }
        let grid = (layout.pieces as u32).clamp(1, MAX_GRID);
        stream
            .memset_zeros(&mut layout.done)
            .context("layer_sumsq: clearing the block counter")?;
        let (x_ptr, _x) = x.device_ptr(stream);
        let (start, _s) = layout.piece_start.device_ptr(stream);
        let (first, _f) = layout.layer_first.device_ptr(stream);
        let (partial, _p) = layout.partial.device_ptr_mut(stream);
        let (done, _d) = layout.done.device_ptr_mut(stream);
        let (out_ptr, _o) = out.device_ptr_mut(stream);
        let (pieces, layers) = (layout.pieces as u32, layout.layers as u32);
        // Every buffer was checked to hold what the layout says; the guards are held.
        let l = args::layer_sumsq(x_ptr, start, pieces, first, layers, partial, done, out_ptr);
        self.launch(stream, &l, grid)
    }

    /// `out[j] = sum_i w_{i,layer(j)} xs[i][j]`, summed from worker 0 up.
    pub fn weighted_center<X, O>(
        &self,
        stream: &Arc<CudaStream>,
        xs: &[&X],
        weights: &DeviceWeights,
        layout: &DeviceLayout,
        out: &mut O,
    ) -> Result<()>
    where
        X: DevicePtr<f32>,
        O: DevicePtrMut<f32>,
    {
        const WHAT: &str = "weighted_center";
        self.check_stream(stream, WHAT)?;
        let m = check_workers(
            stream,
            xs.iter().map(|x| (x.len(), x.stream())),
            layout.len,
            WHAT,
        )?;
        weights.check(m, layout.layers, WHAT)?;
        check_buffer(stream, out.stream(), out.len(), layout.len, WHAT, "out")?;
        if layout.len == 0 {
            return Ok(());
        }
        let (ptrs, _guards) = worker_ptrs(xs.iter().map(|x| x.device_ptr(stream)));
        let (w, _w) = weights.w.device_ptr(stream);
        let (start, _s) = layout.piece_start.device_ptr(stream);
        let (layer, _l) = layout.piece_layer.device_ptr(stream);
        let (out_ptr, _o) = out.device_ptr_mut(stream);
        let l = layered(ptrs, m, w, weights, start, layer, layout);
        // The first `m` pointers are the checked worker buffers, kept alive by `_guards`.
        self.launch(stream, &args::weighted_center(&l, out_ptr), grid_of(&l))
    }

    /// [`Kernels::weighted_center`] into `center`, then every worker pulled toward it in place:
    /// `xs[i][j] <- (1 - lambda) xs[i][j] + lambda center[j]`. One pass over memory.
    pub fn center_and_pull<X, C>(
        &self,
        stream: &Arc<CudaStream>,
        xs: &mut [&mut X],
        weights: &DeviceWeights,
        layout: &DeviceLayout,
        center: &mut C,
        lambda: f32,
    ) -> Result<()>
    where
        X: DevicePtrMut<f32>,
        C: DevicePtrMut<f32>,
    {
        const WHAT: &str = "center_and_pull";
        self.check_stream(stream, WHAT)?;
        let m = check_workers(
            stream,
            xs.iter().map(|x| (x.len(), x.stream())),
            layout.len,
            WHAT,
        )?;
        weights.check(m, layout.layers, WHAT)?;
        check_buffer(
            stream,
            center.stream(),
            center.len(),
            layout.len,
            WHAT,
            "center",
        )?;
        if layout.len == 0 {
            return Ok(());
        }
        let (ptrs, _guards) = worker_ptrs(xs.iter_mut().map(|x| x.device_ptr_mut(stream)));
        let (w, _w) = weights.w.device_ptr(stream);
        let (start, _s) = layout.piece_start.device_ptr(stream);
        let (layer, _l) = layout.piece_layer.device_ptr(stream);
        let (c, _c) = center.device_ptr_mut(stream);
        let l = layered(ptrs, m, w, weights, start, layer, layout);
        self.launch(stream, &args::center_and_pull(&l, c, lambda), grid_of(&l))
    }

    /// `x <- (1 - lambda) x + lambda c` in place: the GRAWA/LSGD pull, and the proximal step with
    /// `lambda = p / tau`.
    pub fn pull<X, C>(&self, stream: &Arc<CudaStream>, x: &mut X, c: &C, lambda: f32) -> Result<()>
    where
        X: DevicePtrMut<f32>,
        C: DevicePtr<f32>,
    {
        const WHAT: &str = "pull";
        let Some(n) = self.check_elementwise(stream, WHAT, &*x, &[("center", c)])? else {
            return Ok(());
        };
        let (x_ptr, _x) = x.device_ptr_mut(stream);
        let (c_ptr, _c) = c.device_ptr(stream);
        // Both buffers hold n f32 on this stream's GPU (`check_elementwise`).
        let l = args::pull(x_ptr, c_ptr, n, lambda);
        self.launch(stream, &l, elementwise_grid(n))
    }

    /// One EASGD round in place: `x_i <- (1 - beta/M) x_i + (beta/M) c_old`,
    /// `c <- (1 - beta) c_old + beta mean_i(x_i)`, the mean taken before the pull.
    pub fn easgd_round<X, C>(
        &self,
        stream: &Arc<CudaStream>,
        xs: &mut [&mut X],
        center: &mut C,
        beta: f32,
    ) -> Result<()>
    where
        X: DevicePtrMut<f32>,
        C: DevicePtrMut<f32>,
    {
        const WHAT: &str = "easgd_round";
        self.check_stream(stream, WHAT)?;
        let n = center.len();
        check_buffer(stream, center.stream(), n, n, WHAT, "center")?;
        let m = check_workers(stream, xs.iter().map(|x| (x.len(), x.stream())), n, WHAT)?;
        if n == 0 {
            return Ok(());
        }
        let (ptrs, _guards) = worker_ptrs(xs.iter_mut().map(|x| x.device_ptr_mut(stream)));
        let (c, _c) = center.device_ptr_mut(stream);
        let (m, n) = (m as u32, n as u64);
        // The first m pointers are checked worker buffers of n f32 (kept alive by `_guards`),
        // as is the center.
        let l = args::easgd_round(ptrs, m, c, n, beta);
        self.launch(stream, &l, elementwise_grid(n))
    }

    /// `out = (sum_i xs[i]) / M`: local SGD's average and the evaluated model.
    pub fn uniform_average<X, O>(
        &self,
        stream: &Arc<CudaStream>,
        xs: &[&X],
        out: &mut O,
    ) -> Result<()>
    where
        X: DevicePtr<f32>,
        O: DevicePtrMut<f32>,
    {
        const WHAT: &str = "uniform_average";
        self.check_stream(stream, WHAT)?;
        let n = out.len();
        check_buffer(stream, out.stream(), n, n, WHAT, "out")?;
        let m = check_workers(stream, xs.iter().map(|x| (x.len(), x.stream())), n, WHAT)?;
        if n == 0 {
            return Ok(());
        }
        let (ptrs, _guards) = worker_ptrs(xs.iter().map(|x| x.device_ptr(stream)));
        let (o, _o) = out.device_ptr_mut(stream);
        let (m, n) = (m as u32, n as u64);
        let l = args::uniform_average(ptrs, m, o, n);
        self.launch(stream, &l, elementwise_grid(n))
    }

    /// One SGD step in place over flat buffers (PyTorch semantics, see `optim::sgd_update`):
    /// parameters `x`, gradient `g`, momentum buffer `buf`.
    pub fn sgd_step<X, G, B>(
        &self,
        stream: &Arc<CudaStream>,
        x: &mut X,
        g: &G,
        buf: &mut B,
        lr: f32,
        cfg: &SgdConfig,
    ) -> Result<()>
    where
        X: DevicePtrMut<f32>,
        G: DevicePtr<f32>,
        B: DevicePtrMut<f32>,
    {
        const WHAT: &str = "sgd_step";
        let others = [
            ("gradient", g as &dyn DeviceSlice<f32>),
            ("momentum buffer", &*buf),
        ];
        let Some(n) = self.check_elementwise(stream, WHAT, &*x, &others)? else {
            return Ok(());
        };
        let (x_ptr, _x) = x.device_ptr_mut(stream);
        let (g_ptr, _g) = g.device_ptr(stream);
        let (b_ptr, _b) = buf.device_ptr_mut(stream);
        let scalars = SgdScalars {
            lr,
            momentum: cfg.momentum,
            weight_decay: cfg.weight_decay,
            nesterov: cfg.nesterov,
        };
        // The three buffers hold n f32 on this stream's GPU (`check_elementwise`).
        let l = args::sgd_step(x_ptr, g_ptr, b_ptr, n, scalars);
        self.launch(stream, &l, elementwise_grid(n))
    }

    /// `x <- a x + b y` in place.
    pub fn scale_add<X, Y>(
        &self,
        stream: &Arc<CudaStream>,
        x: &mut X,
        a: f32,
        y: &Y,
        b: f32,
    ) -> Result<()>
    where
        X: DevicePtrMut<f32>,
        Y: DevicePtr<f32>,
    {
        const WHAT: &str = "scale_add";
        let Some(n) = self.check_elementwise(stream, WHAT, &*x, &[("y", y)])? else {
            return Ok(());
        };
        let (x_ptr, _x) = x.device_ptr_mut(stream);
        let (y_ptr, _y) = y.device_ptr(stream);
        // Both buffers hold n f32 on this stream's GPU (`check_elementwise`).
        let l = args::scale_add(x_ptr, y_ptr, n, a, b);
        self.launch(stream, &l, elementwise_grid(n))
    }

    /// `x <- x / d` in place.
    pub fn divide<X>(&self, stream: &Arc<CudaStream>, x: &mut X, d: f32) -> Result<()>
    where
        X: DevicePtrMut<f32>,
    {
        const WHAT: &str = "divide";
        let Some(n) = self.check_elementwise(stream, WHAT, &*x, &[])? else {
            return Ok(());
        };
        let (x_ptr, _x) = x.device_ptr_mut(stream);
        // x holds n f32 on this stream's GPU (`check_elementwise`).
        self.launch(stream, &args::divide(x_ptr, n, d), elementwise_grid(n))
    }
}

/// The parameters `weighted_center` and `center_and_pull` share.
fn layered(
    xs: WorkerPtrs,
    m: usize,
    w: u64,
    weights: &DeviceWeights,
    piece_start: u64,
    piece_layer: u64,
    layout: &DeviceLayout,
) -> Layered {
    Layered {
        xs,
        m: m as u32,
        w,
        worker_stride: weights.worker_stride,
        layer_stride: weights.layer_stride,
        piece_start,
        piece_layer,
        pieces: layout.pieces as u32,
    }
}

/// Blocks for a launch over a layout's pieces.
fn grid_of(l: &Layered) -> u32 {
    l.pieces.clamp(1, MAX_GRID)
}
