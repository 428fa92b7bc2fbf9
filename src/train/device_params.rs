//! A GPU worker's parameters, gradients and momentum as three flat buffers on its GPU, laid out
//! by the layer table (docs/design.md section 4, "GPU workers"). Candle's tensors stay the
//! model's working copies: after a backward pass the gradients are *packed* into the flat
//! gradient (one device-to-device copy per tensor), the optimizer is one `sgd_step` launch over
//! the whole model, the proximal pull and a round's pull are one `pull` launch each, and the flat
//! parameters are *unpacked* back into the tensors (one copy per tensor) before the next forward
//! pass. Everything runs on candle's own stream for the worker's GPU, so it is ordered with the
//! forward and backward passes without a host wait.
//!
//! Packing rather than views: a candle tensor owns its storage, and tensors aliasing one flat
//! allocation would each free it on drop. Packing costs two extra passes over the parameters
//! per step (small next to a forward and backward pass); docs/gpu-runs.md has the measurement to
//! make on a GPU.
//!
//! Without the `cuda` feature [`DeviceParams`] is an empty type, so the worker's code has no
//! feature switches: `DeviceParams::open` returns `None` for a CPU model.

#[cfg(feature = "cuda")]
pub use gpu::DeviceParams;
#[cfg(not(feature = "cuda"))]
pub use none::DeviceParams;

#[cfg(feature = "cuda")]
mod gpu {
    use std::sync::Arc;

    use candle_core::backprop::GradStore;
    use candle_core::cuda_backend::cudarc::driver::CudaView;
    use candle_core::{CpuStorage, CudaStorage, InplaceOp1, Layout, Storage};

    use crate::buffer::{CudaBuffer, CudaPlace, Flat, FlatBuffer, FlatPlace, RoundBuffer};
    use crate::model::{Model, ParamSet};
    use crate::optim::SgdConfig;
    use crate::{Error, Result};

    fn gpu(e: impl std::fmt::Display) -> Error {
        Error::Internal(format!("GPU worker: {e}"))
    }

    /// A GPU worker's flat buffers.
    pub struct DeviceParams {
        place: Arc<CudaPlace>,
        /// Always `Flat::Device`: targets apply to it as they are.
        params: Flat,
        grads: CudaBuffer,
        momentum: CudaBuffer,
    }

    impl DeviceParams {
        /// The flat buffers of `model` on its GPU, with momentum `momentum` (host, table
        /// layout); `None` for a model on the CPU.
        pub fn open(model: &Model, momentum: &[f32]) -> Result<Option<Self>> {
            let candle_core::Device::Cuda(dev) = &model.device else {
                return Ok(None);
            };
            let table = model.params.table();
            let n = model.params.len();
            let place = CudaPlace::on_stream(dev.cuda_stream(), table, n)?;
            let params = CudaBuffer::from_host(&place, &model.params.to_flat()?)?;
            Ok(Some(Self {
                grads: CudaBuffer::zeros(&place, n)?,
                momentum: CudaBuffer::from_host(&place, momentum)?,
                params: Flat::Device(params),
                place,
            }))
        }

        /// Where the buffers live, as a round place (to bring a target's point here).
        pub fn place(&self) -> FlatPlace {
            FlatPlace::Device(self.place.clone())
        }

        /// The flat parameters (targets and the proximal pull apply here).
        pub fn params_mut(&mut self) -> &mut Flat {
            &mut self.params
        }

        /// A copy of the parameters on this GPU: the worker's snapshot for a round.
        pub fn snapshot(&self) -> Result<Flat> {
            self.params.duplicate()
        }

        /// Copies the gradients of `set` into the flat gradient (zeros where a tensor has none).
        pub fn pack_grads(&mut self, set: &ParamSet, grads: &GradStore) -> Result<()> {
            let stream = self.place.stream().clone();
            let flat = self.grads.slice_mut();
            for (var, e) in set.vars().iter().zip(set.table()) {
                let mut dst = flat.slice_mut(e.offset..e.offset + e.len);
                match grads.get(var.as_tensor()) {
                    Some(g) => {
                        let g = g.contiguous()?;
                        let (storage, layout) = g.storage_and_layout();
                        let Storage::Cuda(cs) = &*storage else {
                            return Err(gpu("a gradient off the GPU"));
                        };
                        let (a, b) = layout
                            .contiguous_offsets()
                            .ok_or_else(|| gpu("a non-contiguous gradient"))?;
                        let src = cs.as_cuda_slice::<f32>()?.slice(a..b);
                        stream.memcpy_dtod(&src, &mut dst).map_err(gpu)?;
                    }
                    None => stream.memset_zeros(&mut dst).map_err(gpu)?,
                }
            }
            Ok(())
        }

        /// Per-layer sums of squares of the packed gradient (L numbers come to the host).
        pub fn grad_sumsq(&self, set: &ParamSet) -> Result<Vec<f64>> {
            self.grads.layer_sumsq(set.table())
        }

        /// A copy of the packed gradient on this GPU (DDP's and SAM's all-reduce).
        pub fn grads_snapshot(&self) -> Result<Flat> {
            Ok(Flat::Device(self.grads.duplicate()?))
        }

        /// The flat gradient becomes `mean` (the all-reduced gradient), brought to this GPU: a
        /// device copy, or an upload when the mean comes from across ranks (host).
        pub fn set_grads(&mut self, mean: &Flat) -> Result<()> {
            match mean.copy_to(&self.place())? {
                Flat::Device(b) => self.grads = b,
                Flat::Host(_) => return Err(gpu("an all-reduced gradient left on the host")),
            }
            Ok(())
        }

        /// One SGD step of the whole model: one launch.
        pub fn step(&mut self, lr: f32, cfg: &SgdConfig) -> Result<()> {
            let Flat::Device(x) = &mut self.params else {
                return Err(gpu("parameters off the GPU"));
            };
            x.sgd_step(&self.grads, &mut self.momentum, lr, cfg)
        }

        /// `params + scale * grads`, a new buffer (SAM's ascent point).
        pub fn ascended(&self, scale: f32) -> Result<Flat> {
            let Flat::Device(x) = &self.params else {
                return Err(gpu("parameters off the GPU"));
            };
            let mut up = x.duplicate()?;
            up.scale_add(1.0, &self.grads, scale)?;
            Ok(Flat::Device(up))
        }

        /// Writes the flat parameters into the model's tensors.
        pub fn unpack(&self, set: &ParamSet) -> Result<()> {
            write_model(&self.params, set)
        }

        /// The parameters and momentum on the host (checkpoints).
        pub fn to_host(&self) -> Result<(Vec<f32>, Vec<f32>)> {
            Ok((self.params.to_vec()?, self.momentum.to_host()?))
        }

        /// Puts saved parameters and momentum here and into the model's tensors.
        pub fn load(&mut self, set: &ParamSet, params: &[f32], momentum: &[f32]) -> Result<()> {
            self.params = Flat::Device(CudaBuffer::from_host(&self.place, params)?);
            self.momentum = CudaBuffer::from_host(&self.place, momentum)?;
            self.unpack(set)
        }
    }

    /// Writes a flat device buffer into the tensors of `set` (one copy per tensor).
    pub fn write_model(flat: &Flat, set: &ParamSet) -> Result<()> {
        let Flat::Device(src) = flat else {
            return Err(gpu("unpacking a host buffer"));
        };
        for (var, e) in set.vars().iter().zip(set.table()) {
            let view = src.slice().slice(e.offset..e.offset + e.len);
            var.as_tensor().inplace_op1(&CopyFromDevice(view))?;
        }
        // The copies ran on the tensors' stream: when that is not the buffer's own (an
        // evaluator writing the round's point), its owner must wait for them (cuda::ordering).
        if let Some(candle_core::Device::Cuda(d)) = set.vars().first().map(|v| v.device()) {
            crate::cuda::fence_read(&d.cuda_stream(), src.place().stream()).map_err(gpu)?;
        }
        Ok(())
    }

    /// In-place copy of a device view into a CUDA tensor's storage (no graph, no allocation).
    struct CopyFromDevice<'a>(CudaView<'a, f32>);

    impl InplaceOp1 for CopyFromDevice<'_> {
        fn name(&self) -> &'static str {
            "copy-from-device"
        }

        fn cpu_fwd(&self, _: &mut CpuStorage, _: &Layout) -> candle_core::Result<()> {
            candle_core::bail!("copy-from-device: the tensor is on the CPU")
        }

        fn cuda_fwd(&self, storage: &mut CudaStorage, layout: &Layout) -> candle_core::Result<()> {
            let Some((a, b)) = layout.contiguous_offsets() else {
                candle_core::bail!("copy-from-device: tensor is not contiguous")
            };
            if b - a != self.0.len() {
                candle_core::bail!("copy-from-device: {} values into {}", self.0.len(), b - a)
            }
            let stream = storage.device.cuda_stream();
            let data = storage.as_cuda_slice_mut::<f32>()?;
            let mut dst = data.slice_mut(a..b);
            stream
                .memcpy_dtod(&self.0, &mut dst)
                .map_err(|e| candle_core::Error::Cuda(Box::new(e)))
        }
    }
}

#[cfg(not(feature = "cuda"))]
mod none {
    //! No GPU in this build: no value of [`DeviceParams`] can exist.

    use candle_core::backprop::GradStore;

    use crate::buffer::{Flat, FlatPlace};
    use crate::model::{Model, ParamSet};
    use crate::optim::SgdConfig;
    use crate::Result;

    /// A GPU worker's flat buffers; none in a build without CUDA.
    pub enum DeviceParams {}

    impl DeviceParams {
        /// Always `None`: every model of this build is on the CPU.
        pub fn open(_model: &Model, _momentum: &[f32]) -> Result<Option<Self>> {
            Ok(None)
        }

        pub fn place(&self) -> FlatPlace {
            match *self {}
        }

        pub fn params_mut(&mut self) -> &mut Flat {
            match *self {}
        }

        pub fn snapshot(&self) -> Result<Flat> {
            match *self {}
        }

        pub fn pack_grads(&mut self, _set: &ParamSet, _grads: &GradStore) -> Result<()> {
            match *self {}
        }

        pub fn grad_sumsq(&self, _set: &ParamSet) -> Result<Vec<f64>> {
            match *self {}
        }

        pub fn grads_snapshot(&self) -> Result<Flat> {
            match *self {}
        }

        pub fn set_grads(&mut self, _mean: &Flat) -> Result<()> {
            match *self {}
        }

        pub fn step(&mut self, _lr: f32, _cfg: &SgdConfig) -> Result<()> {
            match *self {}
        }

        pub fn ascended(&self, _scale: f32) -> Result<Flat> {
            match *self {}
        }

        pub fn unpack(&self, _set: &ParamSet) -> Result<()> {
            match *self {}
        }

        pub fn to_host(&self) -> Result<(Vec<f32>, Vec<f32>)> {
            match *self {}
        }

        pub fn load(&mut self, _set: &ParamSet, _params: &[f32], _momentum: &[f32]) -> Result<()> {
            match *self {}
        }
    }

    /// Never called: there is no GPU buffer in this build.
    pub fn write_model(_flat: &Flat, _set: &ParamSet) -> Result<()> {
        Err(crate::Error::Internal(
            "unpacking a GPU buffer in a build without CUDA".into(),
        ))
    }
}

#[cfg(feature = "cuda")]
pub use gpu::write_model;
#[cfg(not(feature = "cuda"))]
pub use none::write_model;
