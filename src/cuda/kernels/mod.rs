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
    DeviceSlice, LaunchConfig, PushKernelArg, SyncOnDrop,
};
use super::cudarc::nvrtc::Ptx;
use super::launch_args::{self as args, Arg, Launch, Layered, SgdScalars, WorkerPtrs};
use super::{ptx, Context, CudaError, Result, MAX_WORKERS};
use crate::average::Weights;
use crate::model::LayerEntry;
use crate::optim::SgdConfig;

/// Threads per block for every kernel (a multiple of 32, as `block_sum` needs).
const BLOCK: u32 = 256;

/// Most blocks per launch; the kernels loop over the rest. 4096 blocks of 256 threads keep any
/// current GPU full (an H100 holds 132 x 8 such blocks at once) without launching millions.
const MAX_GRID: u32 = 4096;

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

/// The kernels of `kernels/*.cu`, loaded into one GPU's context, by name.
pub struct Kernels {
    ctx: Arc<CudaContext>,
    functions: Vec<(String, CudaFunction)>,
}

impl Kernels {
    /// Loads the embedded PTX into `ctx` (the driver JIT-compiles it for this GPU), every kernel
    /// each module declares. Refuses PTX whose kernels' parameters differ from what the
    /// launchers pass (`launch_args`): cudarc would launch them anyway and corrupt memory.
    pub fn load(ctx: &Arc<CudaContext>) -> Result<Self> {
        let mut entries = Vec::new();
        let mut functions = Vec::new();
        for (file, text) in ptx::MODULES {
            let found = args::ptx_entries(text)
                .map_err(|e| CudaError::Invalid(format!("reading the PTX of {file}: {e}")))?;
            let module = load_module(ctx, text, file)?;
            for e in &found {
                let f = module.load_function(&e.name).context(&format!(
                    "loading kernel {} on GPU {}",
                    e.name,
                    ctx.ordinal()
                ))?;
                functions.push((e.name.clone(), f));
            }
            entries.extend(found);
        }
        args::check_launches(&entries, &args::every_kernel()).map_err(|e| {
            CudaError::Invalid(format!(
                "the embedded PTX does not match its launchers (rebuild): {e}"
            ))
        })?;
        Ok(Self {
            ctx: ctx.clone(),
            functions,
        })
    }

    /// The context the kernels were loaded into.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// Queues `launch` on `stream` with `grid` blocks. The caller holds the guards of every
    /// buffer whose pointer is among the arguments until this returns.
    fn launch(&self, stream: &Arc<CudaStream>, launch: &Launch, grid: u32) -> Result<()> {
        let f = self
            .functions
            .iter()
            .find(|(name, _)| name == launch.kernel)
            .map(|(_, f)| f)
            .ok_or_else(|| CudaError::Invalid(format!("no kernel {}", launch.kernel)))?;
        let mut b = stream.launch_builder(f);
        for a in &launch.args {
            match a {
                Arg::Ptr(v) | Arg::U64(v) => b.arg(v),
                Arg::U32(v) => b.arg(v),
                Arg::I32(v) => b.arg(v),
                Arg::F32(v) => b.arg(v),
                Arg::Workers(v) => b.arg(&**v),
            };
        }
        // SAFETY: the argument list matches the kernel's parameters (checked against the PTX
        // when the kernels were loaded); every pointer is a buffer the launcher checked to hold
        // what the kernel reads and keeps alive (its guards) until the launch is queued.
        unsafe { b.launch(config(grid)) }.context(&format!("launching {}", launch.kernel))?;
        Ok(())
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
