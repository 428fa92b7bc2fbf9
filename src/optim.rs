//! SGD with momentum, Nesterov and coupled weight decay, with PyTorch's semantics
//! (`torch.optim.SGD`, dampening 0):
//!
//! ```text
//! d = g + wd * x;  buf = mu * buf + d;  d = d + mu * buf (Nesterov) or d = buf;  x -= lr * d
//! ```
//!
//! The math is `sgd_update` over flat slices (the CPU twin of the fused CUDA step); `Sgd` applies it
//! to a model's parameters in place, with its momentum held in one flat buffer laid out like the
//! parameter table. (candle-nn's SGD has no momentum or weight decay.)
//!
//! On a GPU (feature `cuda`) the same step is the fused `sgd_step` kernel of kernels/sgd.cu, run
//! in place on each parameter's device buffer, with the momentum in one flat buffer on that GPU;
//! it is created from the host buffer at the first CUDA step and read back only for checkpoints.

use std::cell::RefCell;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp1, InplaceOp2, Layout, Result};
use serde::{Deserialize, Serialize};

use crate::model::params::{read_tensor, write_tensor};
use crate::model::ParamSet;

/// Optimizer hyper-parameters other than the learning rate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    pub momentum: f32,
    pub nesterov: bool,
    pub weight_decay: f32,
}

/// One SGD step over flat slices: `x` and its momentum `buf` are updated in place from gradient `g`.
pub fn sgd_update(x: &mut [f32], g: &[f32], buf: &mut [f32], lr: f32, cfg: &SgdConfig) {
    debug_assert!(x.len() == g.len() && x.len() == buf.len());
    let (mu, wd) = (cfg.momentum, cfg.weight_decay);
    for ((xi, &gi), bi) in x.iter_mut().zip(g).zip(buf.iter_mut()) {
        let d = gi + wd * *xi;
        *bi = mu * *bi + d;
        let step = if cfg.nesterov { d + mu * *bi } else { *bi };
        *xi -= lr * step;
    }
}

/// SGD state for one model: the configuration and a flat momentum buffer.
pub struct Sgd {
    pub config: SgdConfig,
    /// The momentum while the parameters are on the CPU (and before the first step on a GPU).
    momentum: Vec<f32>,
    /// The momentum and the kernels on the parameters' GPU, from the first step there on.
    #[cfg(feature = "cuda")]
    gpu: Option<gpu::GpuSgd>,
}

impl Sgd {
    /// A fresh optimizer (zero momentum, as PyTorch's first step implies) for `params`.
    pub fn new(config: SgdConfig, params: &ParamSet) -> Self {
        Self {
            config,
            momentum: vec![0.0; params.len()],
            #[cfg(feature = "cuda")]
            gpu: None,
        }
    }

    /// The host momentum buffer, in the parameter table's layout. Once steps have run on a GPU the
    /// momentum lives there: read it with [`Sgd::momentum_vec`].
    pub fn momentum(&self) -> &[f32] {
        &self.momentum
    }

    /// Mutable host momentum buffer (see [`Sgd::momentum`]; [`Sgd::set_momentum`] works anywhere).
    pub fn momentum_mut(&mut self) -> &mut [f32] {
        &mut self.momentum
    }

    /// The momentum wherever it lives (copied back from the GPU after steps there), for
    /// checkpoints.
    pub fn momentum_vec(&self) -> Result<Vec<f32>> {
        #[cfg(feature = "cuda")]
        if let Some(g) = &self.gpu {
            return g.momentum_to_host();
        }
        Ok(self.momentum.clone())
    }

    /// Overwrites the momentum wherever it lives (restoring a checkpoint).
    pub fn set_momentum(&mut self, momentum: &[f32]) -> Result<()> {
        if momentum.len() != self.momentum.len() {
            candle_core::bail!(
                "momentum holds {} values, the parameters {}",
                momentum.len(),
                self.momentum.len()
            );
        }
        self.momentum.copy_from_slice(momentum);
        #[cfg(feature = "cuda")]
        if let Some(g) = &mut self.gpu {
            g.upload_momentum(momentum)?;
        }
        Ok(())
    }

    /// Applies one step with learning rate `lr`. Parameters without a gradient are skipped, as in
    /// PyTorch (no weight decay either).
    pub fn step(&mut self, params: &ParamSet, grads: &GradStore, lr: f32) -> Result<()> {
        for (var, e) in params.vars().iter().zip(params.table()) {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let t = var.as_tensor();
            #[cfg(feature = "cuda")]
            if t.device().is_cuda() {
                let gpu = gpu::GpuSgd::get(&mut self.gpu, t.device(), &self.momentum)?;
                gpu.step(t, &g.contiguous()?, e.offset, lr, &self.config)?;
                continue;
            }
            let buf = &mut self.momentum[e.offset..e.offset + e.len];
            if t.device().is_cpu() {
                let op = SgdInPlace {
                    buf: RefCell::new(buf),
                    lr,
                    config: self.config,
                };
                t.inplace_op2(&g.contiguous()?, &op)?;
            } else {
                // Round trip through the host until the fused CUDA step replaces it.
                let mut x = vec![0f32; e.len];
                let mut gh = vec![0f32; e.len];
                read_tensor(t, &mut x)?;
                read_tensor(g, &mut gh)?;
                sgd_update(&mut x, &gh, buf, lr, &self.config);
                write_tensor(var, &x)?;
            }
        }
        Ok(())
    }
}

impl Sgd {
    /// Applies one step from a flat gradient laid out like the parameter table (an all-reduced
    /// gradient, say). Every parameter is updated.
    pub fn step_flat(&mut self, params: &ParamSet, grads: &[f32], lr: f32) -> Result<()> {
        if grads.len() != params.len() {
            candle_core::bail!(
                "flat gradient holds {} values, the parameters {}",
                grads.len(),
                params.len()
            );
        }
        #[cfg(feature = "cuda")]
        if let Some(first) = params.vars().first() {
            let device = first.as_tensor().device();
            if device.is_cuda() {
                // One upload of the whole gradient, then the kernel on each parameter.
                let gpu = gpu::GpuSgd::get(&mut self.gpu, device, &self.momentum)?;
                return gpu.step_flat(params, grads, lr, &self.config);
            }
        }
        for (var, e) in params.vars().iter().zip(params.table()) {
            let g = &grads[e.offset..e.offset + e.len];
            let buf = &mut self.momentum[e.offset..e.offset + e.len];
            let t = var.as_tensor();
            if t.device().is_cpu() {
                let op = SgdFromSlice {
                    g,
                    buf: RefCell::new(buf),
                    lr,
                    config: self.config,
                };
                t.inplace_op1(&op)?;
            } else {
                let mut x = vec![0f32; e.len];
                read_tensor(t, &mut x)?;
                sgd_update(&mut x, g, buf, lr, &self.config);
                write_tensor(var, &x)?;
            }
        }
        Ok(())
    }
}

/// Copies the gradients of `params` into one flat vector laid out like the parameter table
/// (zeros where a parameter has no gradient).
pub fn flat_grads(params: &ParamSet, grads: &GradStore, out: &mut [f32]) -> Result<()> {
    for (var, e) in params.vars().iter().zip(params.table()) {
        let dst = &mut out[e.offset..e.offset + e.len];
        match grads.get(var.as_tensor()) {
            Some(g) => read_tensor(g, dst)?,
            None => dst.fill(0.0),
        }
    }
    Ok(())
}

/// `sgd_update` from a host gradient slice, inside a CPU tensor's storage.
struct SgdFromSlice<'a> {
    g: &'a [f32],
    buf: RefCell<&'a mut [f32]>,
    lr: f32,
    config: SgdConfig,
}

impl InplaceOp1 for SgdFromSlice<'_> {
    fn name(&self) -> &'static str {
        "sgd-nesterov-from-slice"
    }

    fn cpu_fwd(&self, x: &mut CpuStorage, xl: &Layout) -> Result<()> {
        let CpuStorage::F32(x) = x else {
            candle_core::bail!("sgd: only f32 parameters are supported")
        };
        let Some((a, b)) = xl.contiguous_offsets() else {
            candle_core::bail!("sgd: parameter is not contiguous")
        };
        let mut buf = self.buf.borrow_mut();
        sgd_update(&mut x[a..b], self.g, &mut buf, self.lr, &self.config);
        Ok(())
    }
}

/// `sgd_update` applied inside a CPU tensor's storage: no copy and no autograd graph.
struct SgdInPlace<'a> {
    buf: RefCell<&'a mut [f32]>,
    lr: f32,
    config: SgdConfig,
}

impl InplaceOp2 for SgdInPlace<'_> {
    fn name(&self) -> &'static str {
        "sgd-nesterov"
    }

    fn cpu_fwd(&self, x: &mut CpuStorage, xl: &Layout, g: &CpuStorage, gl: &Layout) -> Result<()> {
        let (CpuStorage::F32(x), CpuStorage::F32(g)) = (x, g) else {
            candle_core::bail!("sgd: only f32 parameters are supported")
        };
        let (Some((xa, xb)), Some((ga, gb))) = (xl.contiguous_offsets(), gl.contiguous_offsets())
        else {
            candle_core::bail!("sgd: parameter or gradient is not contiguous")
        };
        let mut buf = self.buf.borrow_mut();
        sgd_update(&mut x[xa..xb], &g[ga..gb], &mut buf, self.lr, &self.config);
        Ok(())
    }
}

#[cfg(feature = "cuda")]
mod gpu {
    //! `sgd_update` on a GPU: the fused `sgd_step` kernel over each parameter's device buffer, the
    //! momentum in one flat buffer on the same GPU.

    use std::cell::RefCell;
    use std::sync::Arc;

    use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaStream, CudaView, CudaViewMut};
    use candle_core::{CudaStorage, Device, InplaceOp1, InplaceOp2, Layout, Result, Tensor};

    use super::SgdConfig;
    use crate::cuda::Kernels;
    use crate::model::ParamSet;

    fn cuda_err(e: impl std::error::Error + Send + Sync + 'static) -> candle_core::Error {
        candle_core::Error::Cuda(Box::new(e))
    }

    /// The kernels and the momentum on the parameters' GPU.
    pub struct GpuSgd {
        kernels: Kernels,
        stream: Arc<CudaStream>,
        /// At least one element (never a zero-length allocation); `len` of them are used.
        momentum: CudaSlice<f32>,
        /// `step_flat`'s gradient, uploaded once per step.
        grads: CudaSlice<f32>,
        len: usize,
    }

    impl GpuSgd {
        /// The state for `device`, made on first use from the host momentum.
        pub fn get<'a>(
            slot: &'a mut Option<GpuSgd>,
            device: &Device,
            host_momentum: &[f32],
        ) -> Result<&'a mut GpuSgd> {
            if slot.is_none() {
                let stream = device.as_cuda_device()?.cuda_stream();
                let kernels = Kernels::load(stream.context()).map_err(cuda_err)?;
                // Never a zero-length allocation (an error on some drivers).
                let n = host_momentum.len().max(1);
                let mut momentum = stream.alloc_zeros::<f32>(n).map_err(cuda_err)?;
                stream
                    .memcpy_htod(host_momentum, &mut momentum)
                    .map_err(cuda_err)?;
                let grads = stream.alloc_zeros::<f32>(n).map_err(cuda_err)?;
                *slot = Some(GpuSgd {
                    kernels,
                    stream,
                    momentum,
                    grads,
                    len: host_momentum.len(),
                });
            }
            Ok(slot.as_mut().expect("set above"))
        }

        /// The momentum, copied to the host (waits for the copy).
        pub fn momentum_to_host(&self) -> Result<Vec<f32>> {
            let mut out = self.stream.clone_dtoh(&self.momentum).map_err(cuda_err)?;
            out.truncate(self.len);
            Ok(out)
        }

        /// Overwrites the momentum from the host.
        pub fn upload_momentum(&mut self, host: &[f32]) -> Result<()> {
            self.stream
                .memcpy_htod(host, &mut self.momentum)
                .map_err(cuda_err)
        }

        /// One step of the parameter `x` (at `offset` in the flat layout) with its gradient `g`,
        /// both on this GPU.
        pub fn step(
            &mut self,
            x: &Tensor,
            g: &Tensor,
            offset: usize,
            lr: f32,
            cfg: &SgdConfig,
        ) -> Result<()> {
            let n = x.elem_count();
            let op = KernelStep {
                kernels: &self.kernels,
                buf: RefCell::new(self.momentum.slice_mut(offset..offset + n)),
                grad: None,
                lr,
                cfg: *cfg,
            };
            x.inplace_op2(g, &op)
        }

        /// One step of every parameter from a flat host gradient laid out like the table.
        pub fn step_flat(
            &mut self,
            params: &ParamSet,
            grads: &[f32],
            lr: f32,
            cfg: &SgdConfig,
        ) -> Result<()> {
            self.stream
                .memcpy_htod(grads, &mut self.grads)
                .map_err(cuda_err)?;
            for (var, e) in params.vars().iter().zip(params.table()) {
                let op = KernelStep {
                    kernels: &self.kernels,
                    buf: RefCell::new(self.momentum.slice_mut(e.offset..e.offset + e.len)),
                    grad: Some(self.grads.slice(e.offset..e.offset + e.len)),
                    lr,
                    cfg: *cfg,
                };
                var.as_tensor().inplace_op1(&op)?;
            }
            Ok(())
        }
    }

    /// `sgd_step` inside a CUDA tensor's storage, on the tensor's own stream; the gradient is the
    /// second operand (`InplaceOp2`) or a view of the uploaded flat gradient (`InplaceOp1`).
    struct KernelStep<'a> {
        kernels: &'a Kernels,
        buf: RefCell<CudaViewMut<'a, f32>>,
        grad: Option<CudaView<'a, f32>>,
        lr: f32,
        cfg: SgdConfig,
    }

    impl KernelStep<'_> {
        fn launch(
            &self,
            x: &mut CudaStorage,
            xl: &Layout,
            g: Option<(&CudaStorage, &Layout)>,
        ) -> Result<()> {
            let Some((xa, xb)) = xl.contiguous_offsets() else {
                candle_core::bail!("sgd: parameter is not contiguous")
            };
            let stream = x.device.cuda_stream();
            let xs = x.as_cuda_slice_mut::<f32>()?;
            let mut xv = xs.slice_mut(xa..xb);
            let mut buf = self.buf.borrow_mut();
            match g {
                Some((g, gl)) => {
                    let Some((ga, gb)) = gl.contiguous_offsets() else {
                        candle_core::bail!("sgd: gradient is not contiguous")
                    };
                    let gv = g.as_cuda_slice::<f32>()?.slice(ga..gb);
                    self.kernels
                        .sgd_step(&stream, &mut xv, &gv, &mut *buf, self.lr, &self.cfg)
                }
                None => {
                    let Some(gv) = &self.grad else {
                        candle_core::bail!("sgd: no gradient given")
                    };
                    self.kernels
                        .sgd_step(&stream, &mut xv, gv, &mut *buf, self.lr, &self.cfg)
                }
            }
            .map_err(cuda_err)
        }
    }

    impl InplaceOp2 for KernelStep<'_> {
        fn name(&self) -> &'static str {
            "sgd-step-cuda"
        }

        fn cpu_fwd(
            &self,
            _: &mut candle_core::CpuStorage,
            _: &Layout,
            _: &candle_core::CpuStorage,
            _: &Layout,
        ) -> Result<()> {
            candle_core::bail!("sgd-step-cuda: the parameters are on the CPU")
        }

        fn cuda_fwd(
            &self,
            x: &mut CudaStorage,
            xl: &Layout,
            g: &CudaStorage,
            gl: &Layout,
        ) -> Result<()> {
            self.launch(x, xl, Some((g, gl)))
        }
    }

    impl InplaceOp1 for KernelStep<'_> {
        fn name(&self) -> &'static str {
            "sgd-step-cuda-flat"
        }

        fn cpu_fwd(&self, _: &mut candle_core::CpuStorage, _: &Layout) -> Result<()> {
            candle_core::bail!("sgd-step-cuda: the parameters are on the CPU")
        }

        fn cuda_fwd(&self, x: &mut CudaStorage, xl: &Layout) -> Result<()> {
            self.launch(x, xl, None)
        }
    }
}
