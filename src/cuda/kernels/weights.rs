//! [`DeviceWeights`]: a round's averaging weights as the layered kernels read them on the GPU.

use std::sync::Arc;

use crate::average::Weights;
use crate::cuda::cudarc::driver::{CudaSlice, CudaStream};
use crate::cuda::{Context, CudaError, Result};

/// Averaging weights on one GPU, uploaded from a [`Weights`] (a few floats: once per round).
pub struct DeviceWeights {
    pub(super) w: CudaSlice<f32>,
    /// `None` for per-worker weights, `Some(layers)` for per-worker-and-layer ones.
    pub(super) layers: Option<usize>,
    pub(super) workers: usize,
    pub(super) worker_stride: u32,
    pub(super) layer_stride: u32,
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

    pub(super) fn check(&self, workers: usize, layers: usize, what: &str) -> Result<()> {
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
