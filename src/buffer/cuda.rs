//! [`FlatBuffer`] on a GPU: a `CudaSlice<f32>` with the kernels of `kernels/*.cu`, launched on the
//! stream of the buffer's [`CudaPlace`]. Each operation queues its kernel and returns; only
//! `layer_sumsq` and `to_host` wait (they bring numbers back).
//!
//! Buffers of two places on one GPU are read in place: the reader waits for the buffer's last
//! write (cudarc's write event), and every read queued on a stream that is not the owner's is
//! fenced by hand (`cuda::fence_read`, the rule in `cuda::ordering`): cudarc's one read event per
//! buffer remembers only the last reader, so several workers copying one center would leave the
//! owner free to overwrite or free it under the earlier copies. A buffer on another GPU is first
//! peer-copied to the reader's GPU, and that copy is fenced the same way (cudarc records a peer
//! copy's read on the source's own stream, which does not cover it at all).

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::flat_buffer::FlatBuffer;
use super::round::RoundBuffer;
use super::staging::{plan, Source};
use crate::average::Weights;
use crate::cuda::cudarc::driver::{CudaContext, CudaSlice, CudaStream};
use crate::cuda::{fence_read, CudaError, DeviceLayout, DeviceWeights, Kernels};
use crate::model::LayerEntry;
use crate::optim::SgdConfig;
use crate::{Error, Result};

/// Copies of a buffer between host and GPU memory (uploads and downloads of whole buffers), in
/// this process so far. The GPU round test checks a round adds none.
static HOST_TRANSFERS: AtomicU64 = AtomicU64::new(0);

/// Whole-buffer copies between host and GPU memory made by [`CudaBuffer`]s so far (`from_host`,
/// `to_host`, and so `host`): the count a round on the GPUs must leave unchanged.
pub fn host_transfers() -> u64 {
    HOST_TRANSFERS.load(Ordering::Relaxed)
}

fn gpu(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("GPU: {e}"))
}

/// Where GPU buffers live: a stream on one GPU, our kernels loaded there, and one layer table's
/// layout there (the scratch `layer_sumsq` needs). Shared by the buffers of one worker.
pub struct CudaPlace {
    stream: Arc<CudaStream>,
    kernels: Kernels,
    layout: Mutex<DeviceLayout>,
    layers: usize,
}

impl CudaPlace {
    /// A new stream on GPU `ordinal` for buffers of `len` elements laid out by `table`.
    pub fn new(ordinal: usize, table: &[LayerEntry], len: usize) -> Result<Arc<Self>> {
        let ctx =
            CudaContext::new(ordinal).map_err(|e| gpu(format!("opening GPU {ordinal}: {e}")))?;
        let stream = ctx
            .new_stream()
            .map_err(|e| gpu(format!("a stream on GPU {ordinal}: {e}")))?;
        Self::on_stream(stream, table, len)
    }

    /// Buffers on an existing stream: a worker's, candle's own, so our kernels queue in order
    /// with the model's forward and backward passes.
    pub fn on_stream(
        stream: Arc<CudaStream>,
        table: &[LayerEntry],
        len: usize,
    ) -> Result<Arc<Self>> {
        let kernels = Kernels::load(stream.context()).map_err(gpu)?;
        let layout = DeviceLayout::new(&stream, table, len).map_err(gpu)?;
        Ok(Arc::new(Self {
            stream,
            kernels,
            layout: Mutex::new(layout),
            layers: table.len(),
        }))
    }

    /// The stream every operation of these buffers runs on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The GPU's ordinal.
    pub fn ordinal(&self) -> usize {
        self.stream.context().ordinal()
    }

    /// `len` zeros here.
    fn zeros(self: &Arc<Self>, len: usize) -> Result<CudaBuffer> {
        Ok(CudaBuffer {
            data: self.stream.alloc_zeros::<f32>(len).map_err(gpu)?,
            place: self.clone(),
            mirrors: Vec::new(),
        })
    }
}

/// A flat buffer on one GPU.
pub struct CudaBuffer {
    data: CudaSlice<f32>,
    place: Arc<CudaPlace>,
    /// The same values on other GPUs (an NCCL all-reduce leaves its result on every GPU): a
    /// reader on one of those GPUs takes its copy there instead of a peer copy. Any change to
    /// the buffer drops them.
    mirrors: Vec<CudaBuffer>,
}

impl CudaBuffer {
    /// A copy of `host` on `place`'s GPU.
    pub fn from_host(place: &Arc<CudaPlace>, host: &[f32]) -> Result<Self> {
        HOST_TRANSFERS.fetch_add(1, Ordering::Relaxed);
        let data = place.stream.clone_htod(host).map_err(gpu)?;
        Ok(Self {
            data,
            place: place.clone(),
            mirrors: Vec::new(),
        })
    }

    /// `len` zeros on `place`'s GPU (no host copy).
    pub fn zeros(place: &Arc<CudaPlace>, len: usize) -> Result<Self> {
        place.zeros(len)
    }

    /// The device memory, for kernels and copies of other layers.
    pub fn slice(&self) -> &CudaSlice<f32> {
        &self.data
    }

    /// The device memory, to copy into (packing a model's gradients).
    pub fn slice_mut(&mut self) -> &mut CudaSlice<f32> {
        self.mirrors.clear();
        &mut self.data
    }

    /// This buffer with `mirrors`, copies of its values on other GPUs.
    pub fn with_mirrors(mut self, mirrors: Vec<CudaBuffer>) -> Self {
        self.mirrors = mirrors;
        self
    }

    /// The values on GPU `ordinal`: this buffer or one of its mirrors, if any is there.
    pub(super) fn on_gpu(&self, ordinal: usize) -> Option<&CudaBuffer> {
        std::iter::once(self)
            .chain(&self.mirrors)
            .find(|b| b.place.ordinal() == ordinal)
    }

    /// The place the buffer lives at.
    pub fn place(&self) -> &Arc<CudaPlace> {
        &self.place
    }

    fn same_place(&self, other: &Self, what: &str) -> Result<()> {
        if Arc::ptr_eq(&self.place, &other.place) {
            Ok(())
        } else {
            Err(gpu(CudaError::Invalid(format!(
                "{what}: buffers of two places (copy one over first)"
            ))))
        }
    }

    /// `other` readable by kernels on this buffer's GPU: itself when it lives on that GPU, else
    /// a peer copy made here.
    fn readable<'a>(&self, other: &'a Self) -> Result<Readable<'a>> {
        match other.on_gpu(self.place.ordinal()) {
            Some(here) => Ok(Readable::There(here)),
            None => Ok(Readable::Copied(other.copy_to(&self.place)?)),
        }
    }
}

/// `xs` readable by kernels at `at`, as `buffer::staging::plan` says: in place on `at`'s GPU, by a
/// fenced peer copy from any other.
fn stage<'a>(xs: &[&'a CudaBuffer], at: &Arc<CudaPlace>) -> Result<Vec<Readable<'a>>> {
    let gpus: Vec<usize> = xs.iter().map(|x| x.place.ordinal()).collect();
    plan(&gpus, at.ordinal())
        .into_iter()
        .zip(xs)
        .map(|(source, x)| match source {
            Source::InPlace => Ok(Readable::There(x)),
            Source::PeerCopy { .. } => match x.on_gpu(at.ordinal()) {
                Some(mirror) => Ok(Readable::There(mirror)),
                None => Ok(Readable::Copied(x.copy_to(at)?)),
            },
        })
        .collect()
}

/// A buffer a kernel can read: the one given (on the kernel's GPU already) or a copy made there.
enum Readable<'a> {
    There(&'a CudaBuffer),
    Copied(CudaBuffer),
}

impl Readable<'_> {
    /// After a kernel on `reader` has read this buffer: orders its owner's next use after that
    /// read when the owner is another stream (a copy made here is the reader's own already).
    fn fence_owner(&self, reader: &Arc<CudaStream>) -> Result<()> {
        match self {
            Readable::There(b) => fence_read(reader, &b.place.stream).map_err(gpu),
            Readable::Copied(_) => Ok(()),
        }
    }
}

/// [`Readable::fence_owner`] for every buffer a round's kernel read.
fn fence_owners(staged: &[Readable<'_>], reader: &Arc<CudaStream>) -> Result<()> {
    staged.iter().try_for_each(|b| b.fence_owner(reader))
}

impl std::ops::Deref for Readable<'_> {
    type Target = CudaBuffer;
    fn deref(&self) -> &CudaBuffer {
        match self {
            Readable::There(b) => b,
            Readable::Copied(b) => b,
        }
    }
}

impl RoundBuffer for CudaBuffer {
    type Place = Arc<CudaPlace>;

    fn combine(
        xs: &[&Self],
        scale: Option<&Weights>,
        table: &[LayerEntry],
        at: &Arc<CudaPlace>,
    ) -> Result<Self> {
        let first = xs
            .first()
            .ok_or_else(|| gpu("a round over no participants"))?;
        if table.len() != at.layers {
            return Err(gpu(format!(
                "combine: a table of {} layers, the round's place has {}",
                table.len(),
                at.layers
            )));
        }
        let mut out = at.zeros(first.len())?;
        // Buffers on other GPUs come over by peer copy first; the kernel reads the rest in place.
        let staged = stage(xs, at)?;
        let slices: Vec<&CudaSlice<f32>> = staged.iter().map(|b| &b.data).collect();
        // A plain sum is the weighted one with weights 1: `1 * x` is exact, so the bits match.
        let ones;
        let w = match scale {
            Some(w) => w,
            None => {
                ones = Weights::PerWorker(vec![1.0; xs.len()]);
                &ones
            }
        };
        let weights = DeviceWeights::new(&at.stream, w).map_err(gpu)?;
        let layout = at.layout.lock().map_err(|_| gpu("layout lock poisoned"))?;
        at.kernels
            .weighted_center(&at.stream, &slices, &weights, &layout, &mut out.data)
            .map_err(gpu)?;
        fence_owners(&staged, &at.stream)?;
        Ok(out)
    }

    fn mean(xs: &[&Self], at: &Arc<CudaPlace>) -> Result<Self> {
        let first = xs
            .first()
            .ok_or_else(|| gpu("a round over no participants"))?;
        let mut out = at.zeros(first.len())?;
        let staged = stage(xs, at)?;
        let slices: Vec<&CudaSlice<f32>> = staged.iter().map(|b| &b.data).collect();
        at.kernels
            .uniform_average(&at.stream, &slices, &mut out.data)
            .map_err(gpu)?;
        fence_owners(&staged, &at.stream)?;
        Ok(out)
    }

    fn copy_to(&self, at: &Arc<CudaPlace>) -> Result<Self> {
        let mut out = at.zeros(self.len())?;
        // A copy already on the destination's GPU (a mirror) is a local copy, not a peer copy.
        let src = self.on_gpu(at.ordinal()).unwrap_or(self);
        crate::cuda::copy(&at.stream, &src.data, &mut out.data).map_err(gpu)?;
        // Whenever the copying stream is not the source's, on this GPU or another: workers on
        // one GPU copying the same center are several readers of it.
        fence_read(&at.stream, &src.place.stream).map_err(gpu)?;
        Ok(out)
    }

    fn duplicate(&self) -> Result<Self> {
        let data = self.place.stream.clone_dtod(&self.data).map_err(gpu)?;
        Ok(Self {
            data,
            place: self.place.clone(),
            mirrors: Vec::new(),
        })
    }

    fn host(&self) -> Result<Cow<'_, [f32]>> {
        Ok(Cow::Owned(self.to_host()?))
    }
}

impl FlatBuffer for CudaBuffer {
    fn len(&self) -> usize {
        self.data.len()
    }

    fn layer_sumsq(&self, table: &[LayerEntry]) -> Result<Vec<f64>> {
        if table.len() != self.place.layers {
            return Err(gpu(format!(
                "layer_sumsq: a table of {} layers, the buffer's place has {}",
                table.len(),
                self.place.layers
            )));
        }
        let p = &self.place;
        let mut out = p.stream.alloc_zeros::<f64>(p.layers.max(1)).map_err(gpu)?;
        let mut layout = p.layout.lock().map_err(|_| gpu("layout lock poisoned"))?;
        if p.layers > 0 {
            p.kernels
                .layer_sumsq(
                    &p.stream,
                    &self.data,
                    &mut layout,
                    &mut out.slice_mut(..p.layers),
                )
                .map_err(gpu)?;
        }
        let mut host = p.stream.clone_dtoh(&out).map_err(gpu)?;
        host.truncate(p.layers);
        Ok(host)
    }

    fn pull(&mut self, center: &Self, lambda: f32) -> Result<()> {
        self.mirrors.clear();
        // A center on another GPU (the hub's) is peer-copied here first.
        let center = self.readable(center)?;
        let p = self.place.clone();
        p.kernels
            .pull(&p.stream, &mut self.data, &center.data, lambda)
            .map_err(gpu)?;
        center.fence_owner(&p.stream)
    }

    fn scale_add(&mut self, a: f32, y: &Self, b: f32) -> Result<()> {
        self.mirrors.clear();
        let y = self.readable(y)?;
        let p = self.place.clone();
        p.kernels
            .scale_add(&p.stream, &mut self.data, a, &y.data, b)
            .map_err(gpu)?;
        y.fence_owner(&p.stream)
    }

    fn divide(&mut self, d: f32) -> Result<()> {
        // The same division on every copy keeps the mirrors the same bits.
        for m in &mut self.mirrors {
            m.divide(d)?;
        }
        let p = self.place.clone();
        p.kernels.divide(&p.stream, &mut self.data, d).map_err(gpu)
    }

    fn sgd_step(
        &mut self,
        grad: &Self,
        momentum: &mut Self,
        lr: f32,
        cfg: &SgdConfig,
    ) -> Result<()> {
        self.same_place(grad, "sgd_step")?;
        self.same_place(momentum, "sgd_step")?;
        self.mirrors.clear();
        let p = self.place.clone();
        p.kernels
            .sgd_step(
                &p.stream,
                &mut self.data,
                &grad.data,
                &mut momentum.data,
                lr,
                cfg,
            )
            .map_err(gpu)
    }

    fn to_host(&self) -> Result<Vec<f32>> {
        HOST_TRANSFERS.fetch_add(1, Ordering::Relaxed);
        self.place.stream.clone_dtoh(&self.data).map_err(gpu)
    }
}
