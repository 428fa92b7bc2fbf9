//! Our kernels on one GPU and their host launchers. The `__global__` functions are in
//! `kernels/*.cu`; each launcher here checks its arguments, takes the stream it runs on explicitly
//! and returns as soon as the work is queued (read results back with `stream.clone_dtoh`, which
//! waits). Buffers may be `CudaSlice`s or views; they must live on the stream's GPU.
//!
//! | launcher            | kernel            | CPU twin (the reference)               |
//! |---------------------|-------------------|----------------------------------------|
//! | `layer_sumsq`       | `layer_sumsq`     | `average::naive::naive_layer_sumsq`    |
//! | `weighted_center`   | `weighted_center` | `average::naive::naive_weighted_center`|
//! | `center_and_pull`   | `center_and_pull` | `average::naive::naive_center_and_pull`|
//! | `pull`              | `pull`            | `average::naive::naive_pull`           |
//! | `easgd_round`       | `easgd_round`     | `average::naive::naive_easgd_round`    |
//! | `uniform_average`   | `uniform_average` | `average::naive::naive_uniform_average`|
//! | `sgd_step`          | `sgd_step`        | `optim::sgd_update`                    |
//! | `scale_add`         | `scale_add`       | `buffer::host` (`[f32]::scale_add`)     |
//! | `divide`            | `divide`          | `buffer::host` (`[f32]::divide`)        |

use std::sync::Arc;

use super::block_pieces::{Pieces, PIECE};
use super::cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, DevicePtrMut,
    DeviceRepr, DeviceSlice, LaunchConfig, PushKernelArg, SyncOnDrop,
};
use super::cudarc::nvrtc::Ptx;
use super::{ptx, Context, CudaError, Result};
use crate::average::Weights;
use crate::model::LayerEntry;
use crate::optim::SgdConfig;

/// Most workers one launch takes: their buffer pointers travel by value in a kernel parameter.
/// Must match `MAX_WORKERS` in kernels/average.cu.
pub const MAX_WORKERS: usize = 64;

/// Threads per block for every kernel (a multiple of 32, as `block_sum` needs).
const BLOCK: u32 = 256;

/// Most blocks per launch; the kernels loop over the rest. 4096 blocks of 256 threads keep any
/// current GPU full (an H100 holds 132 x 8 such blocks at once) without launching millions.
const MAX_GRID: u32 = 4096;

/// The workers' buffer pointers, laid out as `struct Workers` in kernels/average.cu.
#[repr(C)]
#[derive(Clone, Copy)]
struct WorkerPtrs([u64; MAX_WORKERS]);

// SAFETY: plain old data with the C layout of `struct Workers { float* x[MAX_WORKERS]; }`.
unsafe impl DeviceRepr for WorkerPtrs {}

/// The workers' pointers for one launch, from each buffer's `device_ptr` (read) or
/// `device_ptr_mut` (written in place), and the guards that must be held until the launch is
/// queued. At most [`MAX_WORKERS`] buffers: callers check that first (`check_workers`).
fn worker_ptrs<'a>(
    buffers: impl ExactSizeIterator<Item = (u64, SyncOnDrop<'a>)>,
) -> (WorkerPtrs, Vec<SyncOnDrop<'a>>) {
    let mut ptrs = WorkerPtrs([0; MAX_WORKERS]);
    let mut guards = Vec::with_capacity(buffers.len());
    for (i, (p, g)) in buffers.enumerate() {
        ptrs.0[i] = p;
        guards.push(g);
    }
    (ptrs, guards)
}

/// The kernels of `kernels/*.cu`, loaded into one GPU's context.
pub struct Kernels {
    ctx: Arc<CudaContext>,
    layer_sumsq: CudaFunction,
    weighted_center: CudaFunction,
    center_and_pull: CudaFunction,
    pull: CudaFunction,
    easgd_round: CudaFunction,
    uniform_average: CudaFunction,
    sgd_step: CudaFunction,
    scale_add: CudaFunction,
    divide: CudaFunction,
}

impl Kernels {
    /// Loads the embedded PTX into `ctx` (the driver JIT-compiles it for this GPU).
    pub fn load(ctx: &Arc<CudaContext>) -> Result<Self> {
        let average = load_module(ctx, ptx::AVERAGE, "kernels/average.cu")?;
        let sgd = load_module(ctx, ptx::SGD, "kernels/sgd.cu")?;
        let f = |m: &Arc<CudaModule>, name: &str| {
            m.load_function(name)
                .context(&format!("loading kernel {name} on GPU {}", ctx.ordinal()))
        };
        Ok(Self {
            ctx: ctx.clone(),
            layer_sumsq: f(&average, "layer_sumsq")?,
            weighted_center: f(&average, "weighted_center")?,
            center_and_pull: f(&average, "center_and_pull")?,
            pull: f(&average, "pull")?,
            easgd_round: f(&average, "easgd_round")?,
            uniform_average: f(&average, "uniform_average")?,
            sgd_step: f(&sgd, "sgd_step")?,
            scale_add: f(&average, "scale_add")?,
            divide: f(&average, "divide")?,
        })
    }

    /// The context the kernels were loaded into.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

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
        let mut b = stream.launch_builder(&self.layer_sumsq);
        b.arg(&x_ptr)
            .arg(&start)
            .arg(&pieces)
            .arg(&first)
            .arg(&layers)
            .arg(&partial)
            .arg(&done)
            .arg(&out_ptr);
        // SAFETY: the arguments match the kernel's signature; every buffer was checked to hold
        // what the layout says, and the guards keep them alive until the launch is queued.
        unsafe { b.launch(config(grid)) }.context("launching layer_sumsq")?;
        Ok(())
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
        let (m, pieces) = (m as u32, layout.pieces as u32);
        let mut b = stream.launch_builder(&self.weighted_center);
        b.arg(&ptrs)
            .arg(&m)
            .arg(&w)
            .arg(&weights.worker_stride)
            .arg(&weights.layer_stride)
            .arg(&start)
            .arg(&layer)
            .arg(&pieces)
            .arg(&out_ptr);
        // SAFETY: as in `layer_sumsq`; the first `m` pointers are the checked worker buffers,
        // kept alive by `_guards`.
        unsafe { b.launch(config(pieces.clamp(1, MAX_GRID))) }
            .context("launching weighted_center")?;
        Ok(())
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
        let (m, pieces) = (m as u32, layout.pieces as u32);
        let mut b = stream.launch_builder(&self.center_and_pull);
        b.arg(&ptrs)
            .arg(&m)
            .arg(&w)
            .arg(&weights.worker_stride)
            .arg(&weights.layer_stride)
            .arg(&start)
            .arg(&layer)
            .arg(&pieces)
            .arg(&c)
            .arg(&lambda);
        // SAFETY: as in `weighted_center`.
        unsafe { b.launch(config(pieces.clamp(1, MAX_GRID))) }
            .context("launching center_and_pull")?;
        Ok(())
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
        let mut b = stream.launch_builder(&self.pull);
        b.arg(&x_ptr).arg(&c_ptr).arg(&n).arg(&lambda);
        // SAFETY: both buffers hold n f32 on this stream's GPU (`check_elementwise`).
        unsafe { b.launch(config(elementwise_grid(n))) }.context("launching pull")?;
        Ok(())
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
        let mut b = stream.launch_builder(&self.easgd_round);
        b.arg(&ptrs).arg(&m).arg(&c).arg(&n).arg(&beta);
        // SAFETY: the first m pointers are checked worker buffers of n f32 (kept alive by
        // `_guards`), as is the center.
        unsafe { b.launch(config(elementwise_grid(n))) }.context("launching easgd_round")?;
        Ok(())
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
        let mut b = stream.launch_builder(&self.uniform_average);
        b.arg(&ptrs).arg(&m).arg(&o).arg(&n);
        // SAFETY: as in `easgd_round`.
        unsafe { b.launch(config(elementwise_grid(n))) }.context("launching uniform_average")?;
        Ok(())
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
        let nesterov = i32::from(cfg.nesterov);
        let mut b = stream.launch_builder(&self.sgd_step);
        b.arg(&x_ptr)
            .arg(&g_ptr)
            .arg(&b_ptr)
            .arg(&n)
            .arg(&lr)
            .arg(&cfg.momentum)
            .arg(&cfg.weight_decay)
            .arg(&nesterov);
        // SAFETY: the three buffers hold n f32 on this stream's GPU (`check_elementwise`).
        unsafe { b.launch(config(elementwise_grid(n))) }.context("launching sgd_step")?;
        Ok(())
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
        let mut l = stream.launch_builder(&self.scale_add);
        l.arg(&x_ptr).arg(&y_ptr).arg(&n).arg(&a).arg(&b);
        // SAFETY: both buffers hold n f32 on this stream's GPU (`check_elementwise`).
        unsafe { l.launch(config(elementwise_grid(n))) }.context("launching scale_add")?;
        Ok(())
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
        let mut l = stream.launch_builder(&self.divide);
        l.arg(&x_ptr).arg(&n).arg(&d);
        // SAFETY: x holds n f32 on this stream's GPU (`check_elementwise`).
        unsafe { l.launch(config(elementwise_grid(n))) }.context("launching divide")?;
        Ok(())
    }

    fn check_stream(&self, stream: &CudaStream, what: &str) -> Result<()> {
        if **stream.context() != *self.ctx {
            return Err(CudaError::Invalid(format!(
                "{what}: the stream is on GPU {} but the kernels were loaded on GPU {}",
                stream.context().ordinal(),
                self.ctx.ordinal()
            )));
        }
        Ok(())
    }

    /// The checks of an element-wise launch that updates `x` in place: the stream is ours, `x`
    /// lives on its GPU, and so does each named buffer of `others`, with as many elements as `x`.
    /// Returns that count as the kernels take it, or `None` when it is 0 (nothing to launch).
    fn check_elementwise(
        &self,
        stream: &CudaStream,
        what: &str,
        x: &dyn DeviceSlice<f32>,
        others: &[(&str, &dyn DeviceSlice<f32>)],
    ) -> Result<Option<u64>> {
        self.check_stream(stream, what)?;
        let n = x.len();
        check_buffer(stream, x.stream(), n, n, what, "x")?;
        for (name, buffer) in others {
            check_buffer(stream, buffer.stream(), buffer.len(), n, what, name)?;
        }
        Ok((n != 0).then_some(n as u64))
    }
}

/// A layer table on one GPU: the pieces the layered kernels walk (see `block_pieces.rs`), plus
/// the scratch `layer_sumsq` needs. Built once per model and reused every round.
pub struct DeviceLayout {
    len: usize,
    layers: usize,
    pieces: usize,
    piece_start: CudaSlice<u64>,
    piece_layer: CudaSlice<u32>,
    layer_first: CudaSlice<u32>,
    partial: CudaSlice<f64>,
    done: CudaSlice<u32>,
}

impl DeviceLayout {
    /// Uploads the pieces of a buffer of `len` elements laid out by `table`.
    pub fn new(stream: &Arc<CudaStream>, table: &[LayerEntry], len: usize) -> Result<Self> {
        let layers: Vec<(usize, usize)> = table.iter().map(|e| (e.offset, e.len)).collect();
        let pieces = Pieces::new(&layers, len, PIECE).map_err(CudaError::Invalid)?;
        Self::upload(stream, &pieces)
    }

    /// A buffer of `len` elements with no layer structure (one layer).
    pub fn flat(stream: &Arc<CudaStream>, len: usize) -> Result<Self> {
        let pieces = Pieces::flat(len, PIECE).map_err(CudaError::Invalid)?;
        Self::upload(stream, &pieces)
    }

    fn upload(stream: &Arc<CudaStream>, p: &Pieces) -> Result<Self> {
        let what = "uploading a layer table";
        // Never allocate zero elements (a zero-byte cuMemAlloc is an error on some drivers).
        let at_least_one = |v: &[u32]| if v.is_empty() { vec![0] } else { v.to_vec() };
        Ok(Self {
            len: p.len(),
            layers: p.layers(),
            pieces: p.count(),
            piece_start: stream.clone_htod(&p.start).context(what)?,
            piece_layer: stream.clone_htod(&at_least_one(&p.layer)).context(what)?,
            layer_first: stream.clone_htod(&p.first).context(what)?,
            partial: stream.alloc_zeros(p.count().max(1)).context(what)?,
            done: stream.alloc_zeros(1).context(what)?,
        })
    }

    /// Elements of the buffer the layout describes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a layout of an empty buffer.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Layers in the table.
    pub fn layers(&self) -> usize {
        self.layers
    }
}

/// Averaging weights on one GPU, uploaded from a [`Weights`] (a few floats: once per round).
pub struct DeviceWeights {
    w: CudaSlice<f32>,
    /// `None` for per-worker weights, `Some(layers)` for per-worker-and-layer ones.
    layers: Option<usize>,
    workers: usize,
    worker_stride: u32,
    layer_stride: u32,
}

impl DeviceWeights {
    /// Uploads `weights`; per-layer weights stay worker-major, as `Weights::PerLayer` stores them.
    pub fn new(stream: &Arc<CudaStream>, weights: &Weights) -> Result<Self> {
        let (host, layers, workers, strides) = match weights {
            Weights::PerWorker(w) => (w.as_slice(), None, w.len(), (1, 0)),
            Weights::PerLayer { layers, w } => {
                if *layers == 0 || w.len() % layers != 0 {
                    return Err(CudaError::Invalid(format!(
                        "per-layer weights: {} weights do not fill {layers} layers",
                        w.len()
                    )));
                }
                let stride = u32::try_from(*layers)
                    .map_err(|_| CudaError::Invalid(format!("{layers} layers is too many")))?;
                (w.as_slice(), Some(*layers), w.len() / layers, (stride, 1))
            }
        };
        // Never allocate zero elements; a zero-worker set is refused at launch anyway.
        let w = if host.is_empty() {
            stream.alloc_zeros(1)
        } else {
            stream.clone_htod(host)
        }
        .context("uploading weights")?;
        Ok(Self {
            w,
            layers,
            workers,
            worker_stride: strides.0,
            layer_stride: strides.1,
        })
    }

    /// How many workers the weights are for.
    pub fn workers(&self) -> usize {
        self.workers
    }

    fn check(&self, workers: usize, layers: usize, what: &str) -> Result<()> {
        if self.workers != workers {
            return Err(CudaError::Invalid(format!(
                "{what}: weights for {} workers, {workers} buffers given",
                self.workers
            )));
        }
        match self.layers {
            Some(l) if l != layers => Err(CudaError::Invalid(format!(
                "{what}: per-layer weights are for {l} layers but the layout has {layers}"
            ))),
            _ => Ok(()),
        }
    }
}

fn load_module(ctx: &Arc<CudaContext>, ptx: &str, file: &str) -> Result<Arc<CudaModule>> {
    ctx.load_module(Ptx::from_src(ptx)).context(&format!(
        "loading the PTX of {file} on GPU {}",
        ctx.ordinal()
    ))
}

fn config(grid: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (grid, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Blocks for a grid-stride loop over `n` elements.
fn elementwise_grid(n: u64) -> u32 {
    n.div_ceil(u64::from(BLOCK)).clamp(1, u64::from(MAX_GRID)) as u32
}

/// Errors unless a buffer lives on the stream's GPU and holds `want` elements.
fn check_buffer(
    stream: &CudaStream,
    buffer_stream: &CudaStream,
    len: usize,
    want: usize,
    what: &str,
    name: &str,
) -> Result<()> {
    if **buffer_stream.context() != **stream.context() {
        return Err(CudaError::Invalid(format!(
            "{what}: {name} is on GPU {} but the launch is on GPU {} (copy it over first)",
            buffer_stream.context().ordinal(),
            stream.context().ordinal()
        )));
    }
    if len != want {
        return Err(CudaError::Invalid(format!(
            "{what}: {name} has {len} elements, expected {want}"
        )));
    }
    Ok(())
}

/// Checks the workers' buffers (1..=MAX_WORKERS, each `want` elements on the stream's GPU) and
/// returns how many there are.
fn check_workers<'a>(
    stream: &CudaStream,
    buffers: impl Iterator<Item = (usize, &'a Arc<CudaStream>)>,
    want: usize,
    what: &str,
) -> Result<usize> {
    let mut m = 0;
    for (i, (len, s)) in buffers.enumerate() {
        check_buffer(stream, s, len, want, what, &format!("worker {i}"))?;
        m += 1;
    }
    if m == 0 || m > MAX_WORKERS {
        return Err(CudaError::Invalid(format!(
            "{what}: {m} workers given; one launch takes 1 to {MAX_WORKERS}"
        )));
    }
    Ok(m)
}
