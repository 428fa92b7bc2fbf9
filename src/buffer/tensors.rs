//! Between a model's tensors and a flat buffer, wherever both live: a model's parameters as a
//! flat buffer, its gradients packed into one, and a flat buffer written back into its tensors.
//! On the host these are memcpys; on a GPU device-to-device copies on the tensors' own stream, so
//! they queue in order with the forward and backward passes and nothing waits on the host.
//!
//! Packing rather than views: a candle tensor owns its storage, and tensors aliasing one flat
//! allocation would each free it on drop.

use candle_core::backprop::GradStore;
use candle_core::Device;

use super::flat::{Flat, FlatPlace};
use super::round::RoundBuffer;
use crate::model::ParamSet;
use crate::optim::flat_grads;
use crate::Result;

impl FlatPlace {
    /// Where flat buffers of a model on `device` live: host memory for the CPU, candle's own
    /// stream for a GPU (so our kernels queue in order with the model's passes), for buffers of
    /// `set`'s layout.
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
    pub fn of_model(device: &Device, set: &ParamSet) -> Result<FlatPlace> {
        match device {
            #[cfg(feature = "cuda")]
            Device::Cuda(dev) => {
                let place =
                    super::cuda::CudaPlace::on_stream(dev.cuda_stream(), set.table(), set.len())?;
                Ok(FlatPlace::Device(place))
            }
            _ => Ok(FlatPlace::Host),
        }
    }
}

impl Flat {
    /// `set`'s values as a flat buffer at `place`.
    pub fn from_set(set: &ParamSet, place: &FlatPlace) -> Result<Flat> {
        Flat::Host(set.to_flat()?).copy_to(place)
    }

    /// Overwrites this buffer with the gradients of `set` in `grads` (zeros where a tensor has
    /// none), in the layer table's order.
    pub fn pack_grads(&mut self, set: &ParamSet, grads: &GradStore) -> Result<()> {
        match self {
            Flat::Host(v) => Ok(flat_grads(set, grads, v)?),
            #[cfg(feature = "cuda")]
            Flat::Device(b) => device::pack_grads(b, set, grads),
        }
    }

    /// Writes the values into the tensors of `set`, wherever they live.
    pub fn write_to(&self, set: &ParamSet) -> Result<()> {
        match self {
            Flat::Host(v) => Ok(set.write_flat(v)?),
            #[cfg(feature = "cuda")]
            Flat::Device(b) => device::write_to(b, set),
        }
    }
}

#[cfg(feature = "cuda")]
mod device {
    use candle_core::backprop::GradStore;
    use candle_core::cuda_backend::cudarc::driver::CudaView;
    use candle_core::{CpuStorage, CudaStorage, InplaceOp1, Layout, Storage};

    use crate::buffer::cuda::CudaBuffer;
    use crate::buffer::flat_buffer::FlatBuffer;
    use crate::model::ParamSet;
    use crate::{Error, Result};

    fn gpu(e: impl std::fmt::Display) -> Error {
        Error::Internal(format!("GPU: {e}"))
    }

    fn mismatch(what: &str) -> Error {
        gpu(format!(
            "{what}: the tensors and the flat buffer live on different devices"
        ))
    }

    /// The GPU ordinal of `set`'s tensors (`None`: on the CPU).
    fn ordinal(set: &ParamSet) -> Option<usize> {
        let first = set.vars().first()?;
        match first.as_tensor().device() {
            candle_core::Device::Cuda(d) => Some(d.cuda_stream().context().ordinal()),
            _ => None,
        }
    }

    /// One device-to-device copy per tensor into `flat` (a memset where a tensor has none).
    pub fn pack_grads(flat: &mut CudaBuffer, set: &ParamSet, grads: &GradStore) -> Result<()> {
        if ordinal(set) != Some(flat.place().ordinal()) {
            return Err(mismatch("packing gradients"));
        }
        let stream = flat.place().stream().clone();
        let data = flat.slice_mut();
        for (var, e) in set.vars().iter().zip(set.table()) {
            let mut dst = data.slice_mut(e.offset..e.offset + e.len);
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

    /// One copy per tensor from the values on the tensors' GPU (the buffer itself or a mirror of
    /// it there); through the host for tensors on the CPU or a GPU without a copy.
    pub fn write_to(flat: &CudaBuffer, set: &ParamSet) -> Result<()> {
        let Some(src) = ordinal(set).and_then(|g| flat.on_gpu(g)) else {
            return Ok(set.write_flat(&flat.to_host()?)?);
        };
        for (var, e) in set.vars().iter().zip(set.table()) {
            let view = src.slice().slice(e.offset..e.offset + e.len);
            var.as_tensor().inplace_op1(&CopyFromDevice(view))?;
        }
        // The copies ran on the tensors' stream: when that is not the buffer's own (an
        // evaluator writing the hub's point), its owner must wait for them (cuda::ordering).
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
