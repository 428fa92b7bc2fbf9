//! [`FlatBuffer`] on a GPU: a `CudaSlice<f32>` with the kernels of `kernels/*.cu`, launched on the
//! stream of the buffer's [`CudaPlace`]. Each operation queues its kernel and returns; only
//! `layer_sumsq` and `to_host` wait (they bring numbers back).

use std::sync::{Arc, Mutex};

use super::FlatBuffer;
use crate::cuda::cudarc::driver::{CudaContext, CudaSlice, CudaStream};
use crate::cuda::{CudaError, DeviceLayout, Kernels};
use crate::model::LayerEntry;
use crate::optim::SgdConfig;
use crate::{Error, Result};

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
        let kernels = Kernels::load(&ctx).map_err(gpu)?;
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
}

/// A flat buffer on one GPU.
pub struct CudaBuffer {
    data: CudaSlice<f32>,
    place: Arc<CudaPlace>,
}

impl CudaBuffer {
    /// A copy of `host` on `place`'s GPU.
    pub fn from_host(place: &Arc<CudaPlace>, host: &[f32]) -> Result<Self> {
        let data = place.stream.clone_htod(host).map_err(gpu)?;
        Ok(Self {
            data,
            place: place.clone(),
        })
    }

    /// The device memory, for kernels and copies of other layers.
    pub fn slice(&self) -> &CudaSlice<f32> {
        &self.data
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
        self.same_place(center, "pull")?;
        let p = self.place.clone();
        p.kernels
            .pull(&p.stream, &mut self.data, &center.data, lambda)
            .map_err(gpu)
    }

    fn scale_add(&mut self, a: f32, y: &Self, b: f32) -> Result<()> {
        self.same_place(y, "scale_add")?;
        let p = self.place.clone();
        p.kernels
            .scale_add(&p.stream, &mut self.data, a, &y.data, b)
            .map_err(gpu)
    }

    fn divide(&mut self, d: f32) -> Result<()> {
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
        self.place.stream.clone_dtoh(&self.data).map_err(gpu)
    }
}
