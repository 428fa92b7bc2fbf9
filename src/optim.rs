//! SGD with momentum, Nesterov and coupled weight decay, with PyTorch's semantics
//! (`torch.optim.SGD`, dampening 0):
//!
//! ```text
//! d = g + wd * x;  buf = mu * buf + d;  d = d + mu * buf (Nesterov) or d = buf;  x -= lr * d
//! ```
//!
//! The math is `sgd_update` over flat slices: the host step of a worker's flat parameters
//! (`buffer::FlatBuffer::sgd_step`), and the CPU twin of the fused CUDA kernel of kernels/sgd.cu.
//! `Sgd` applies it to a CPU model's parameters in place, inside candle's storage, with its
//! momentum in one flat buffer laid out like the parameter table: the optimizer `bench` times.
//! (candle-nn's SGD has no momentum or weight decay.)

use std::cell::RefCell;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp1, InplaceOp2, Layout, Result};
use serde::{Deserialize, Serialize};

use crate::model::params::read_tensor;
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

/// SGD state for one CPU model: the configuration and a flat momentum buffer.
pub struct Sgd {
    pub config: SgdConfig,
    momentum: Vec<f32>,
}

impl Sgd {
    /// A fresh optimizer (zero momentum, as PyTorch's first step implies) for `params`.
    pub fn new(config: SgdConfig, params: &ParamSet) -> Self {
        Self {
            config,
            momentum: vec![0.0; params.len()],
        }
    }

    /// The momentum buffer, in the parameter table's layout.
    pub fn momentum(&self) -> &[f32] {
        &self.momentum
    }

    /// Overwrites the momentum (restoring a checkpoint).
    pub fn set_momentum(&mut self, momentum: &[f32]) -> Result<()> {
        if momentum.len() != self.momentum.len() {
            candle_core::bail!(
                "momentum holds {} values, the parameters {}",
                momentum.len(),
                self.momentum.len()
            );
        }
        self.momentum.copy_from_slice(momentum);
        Ok(())
    }

    /// Applies one step with learning rate `lr`. Parameters without a gradient are skipped, as in
    /// PyTorch (no weight decay either).
    pub fn step(&mut self, params: &ParamSet, grads: &GradStore, lr: f32) -> Result<()> {
        for (var, e) in params.vars().iter().zip(params.table()) {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let op = SgdInPlace {
                buf: RefCell::new(&mut self.momentum[e.offset..e.offset + e.len]),
                lr,
                config: self.config,
            };
            var.as_tensor().inplace_op2(&g.contiguous()?, &op)?;
        }
        Ok(())
    }

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
        for (var, e) in params.vars().iter().zip(params.table()) {
            let op = SgdFromSlice {
                g: &grads[e.offset..e.offset + e.len],
                buf: RefCell::new(&mut self.momentum[e.offset..e.offset + e.len]),
                lr,
                config: self.config,
            };
            var.as_tensor().inplace_op1(&op)?;
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
