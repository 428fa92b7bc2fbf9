//! BatchNorm2d with PyTorch's semantics, optionally fused with the ReLU that follows it or with
//! ResNet's residual add and ReLU.
//!
//! On the CPU in f32 every variant is one candle custom op (`BnOp`) with a closed-form backward:
//!
//! - training: per channel, mean and biased variance (per-plane two-pass merged across planes in
//!   f64, see `bn_kernels`) and the output y = (x - mean) gamma invstd + beta (+ ReLU, + residual)
//!   in one task, so the channel is still in cache for the write; the running statistics are then
//!   updated from those statistics exactly as candle_nn does (unbiased variance, PyTorch's
//!   momentum);
//! - evaluation: y = (x - running_mean) gamma / sqrt(running_var + eps) + beta (+ ReLU, + residual);
//! - backward: g = dy masked where the ReLU was off, dbeta = sum g, dgamma = sum g xhat and
//!   dx = gamma invstd / M (M g - dbeta - xhat dgamma) (M = N H W; in evaluation the statistics
//!   are constants and dx = gamma invstd g), two passes per channel: sums, then dx. The residual's
//!   gradient is g.
//!
//! Channels run in parallel on the current rayon pool. The mean and invstd of the forward stay in
//! the op instance for the backward. Other devices and dtypes go through candle_nn's BatchNorm.

use std::sync::{Arc, OnceLock};

use candle_core::{
    bail, CpuStorage, CustomOp3, DType, Layout, ModuleT, Result, Shape, Storage, Tensor, Var,
};
use rayon::prelude::*;

use super::bn_kernels::{self as kern, Affine, DxCoef, Epilogue, Geometry, Mask, OutPtr};
use super::cpu::contiguous_slice;

/// BatchNorm over (N, C, ...) (normally (N, C, H, W) or (N, C)): batch statistics and a
/// running-statistics update in training mode, running statistics in evaluation mode.
#[derive(Clone, Debug)]
pub struct BatchNorm {
    /// candle's layer, sharing the running statistics: the path off the CPU or off f32.
    inner: candle_nn::BatchNorm,
    running_mean: Var,
    running_var: Var,
    weight: Tensor,
    bias: Tensor,
    eps: f64,
    momentum: f64,
}

impl BatchNorm {
    /// Wraps candle's layer; the running statistics stay shared with it (and with the `VarMap`
    /// they came from), updated in place.
    pub fn new(inner: candle_nn::BatchNorm) -> Result<Self> {
        // The layer's running statistics are `Var`s; `from_tensor` of a variable shares it.
        let running_mean = Var::from_tensor(inner.running_mean())?;
        let running_var = Var::from_tensor(inner.running_var())?;
        let (weight, bias) = match inner.weight_and_bias() {
            Some((w, b)) => (w.clone(), b.clone()),
            None => {
                let rm = running_mean.as_tensor();
                (rm.ones_like()?.detach(), rm.zeros_like()?.detach())
            }
        };
        Ok(Self {
            eps: inner.eps(),
            momentum: inner.momentum(),
            inner,
            running_mean,
            running_var,
            weight,
            bias,
        })
    }

    /// `relu(batch_norm(xs))`.
    pub fn forward_relu_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_fused(xs, None, Epilogue::Relu, train)
    }

    /// `relu(batch_norm(xs) + residual)` (ResNet's block output); `residual` has `xs`'s shape.
    pub fn forward_add_relu_t(
        &self,
        xs: &Tensor,
        residual: &Tensor,
        train: bool,
    ) -> Result<Tensor> {
        self.forward_fused(xs, Some(residual), Epilogue::AddRelu, train)
    }

    pub fn running_mean(&self) -> &Tensor {
        self.running_mean.as_tensor()
    }

    pub fn running_var(&self) -> &Tensor {
        self.running_var.as_tensor()
    }

    fn channels(&self) -> usize {
        self.running_mean.as_tensor().elem_count()
    }

    /// Whether the fused CPU op applies.
    pub(crate) fn fast_path(&self, xs: &Tensor, residual: Option<&Tensor>) -> bool {
        let f32_cpu = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32;
        f32_cpu(xs)
            && xs.rank() >= 2
            && xs.dims()[1] == self.channels()
            && [
                &self.weight,
                &self.bias,
                self.running_mean.as_tensor(),
                self.running_var.as_tensor(),
            ]
            .into_iter()
            .all(|t| f32_cpu(t) && t.dims() == [self.channels()])
            && residual.is_none_or(|r| f32_cpu(r) && r.dims() == xs.dims())
    }

    fn forward_fused(
        &self,
        xs: &Tensor,
        residual: Option<&Tensor>,
        epi: Epilogue,
        train: bool,
    ) -> Result<Tensor> {
        if !self.fast_path(xs, residual) {
            let y = self.inner.forward_t(xs, train)?;
            return match (epi, residual) {
                (Epilogue::None, _) => Ok(y),
                (Epilogue::Relu, _) => y.relu(),
                (Epilogue::AddRelu, Some(r)) => (y + r)?.relu(),
                (Epilogue::AddRelu, None) => bail!("batch-norm add-relu without a residual"),
            };
        }
        let x = xs.contiguous()?;
        let (op, saved) = self.op(epi, train)?;
        let op: Arc<Box<dyn CustomOp3 + Send + Sync>> = Arc::new(Box::new(op));
        let out = match residual {
            None => x.apply_op3_arc(&self.weight, &self.bias, op)?,
            Some(r) => {
                let gb = self.gamma_beta()?;
                x.apply_op3_arc(&gb, &r.contiguous()?, op)?
            }
        };
        self.after_forward(&saved, &x, train)?;
        Ok(out)
    }

    /// The BatchNorm op of `relu(batch_norm(xs))` run for its statistics and output constants
    /// alone (no output tensor, no graph node), for ops that apply them as they read xs
    /// (`bn_relu_conv`); training-mode running statistics are updated as by `forward_relu_t`.
    /// `xs` must be contiguous and pass `fast_path`.
    pub(crate) fn relu_constants(&self, xs: &Tensor, train: bool) -> Result<BnOp> {
        let (op, saved) = self.op(Epilogue::Relu, train)?;
        op.constants_only(xs, &self.weight, &self.bias)?;
        self.after_forward(&saved, xs, train)?;
        Ok(op)
    }

    /// gamma and beta as one tensor of 2 C values (for ops with three inputs besides them).
    pub(crate) fn gamma_beta(&self) -> Result<Tensor> {
        Tensor::cat(&[&self.weight, &self.bias], 0)
    }

    /// A fresh op for one forward: training (batch statistics) or evaluation (running ones).
    fn op(&self, epi: Epilogue, train: bool) -> Result<(BnOp, Arc<OnceLock<Saved>>)> {
        let running = if train {
            None
        } else {
            let rm: Vec<f32> = self.running_mean.as_tensor().to_vec1()?;
            let rv: Vec<f32> = self.running_var.as_tensor().to_vec1()?;
            let invstd = rv
                .iter()
                .map(|&v| 1.0 / (v as f64 + self.eps).sqrt())
                .collect();
            Some((rm.iter().map(|&v| v as f64).collect(), invstd))
        };
        let saved = Arc::new(OnceLock::new());
        let op = BnOp {
            eps: self.eps,
            epi,
            running,
            saved: saved.clone(),
        };
        Ok((op, saved))
    }

    /// In training, the running statistics' update from what the forward saved.
    fn after_forward(&self, saved: &OnceLock<Saved>, x: &Tensor, train: bool) -> Result<()> {
        if train {
            let saved: &Saved = saved.get().expect("the forward ran");
            let m = x.elem_count() / self.channels();
            self.update_running(saved, m)?;
        }
        Ok(())
    }

    /// candle_nn's update, from the op's statistics, with candle's f32 arithmetic:
    /// `running_mean = (1 - momentum) running_mean + momentum mean` and
    /// `running_var = (1 - momentum) running_var + momentum M / (M - 1) var` (unbiased, as
    /// PyTorch). Momentum 1 sets them to the batch's.
    fn update_running(&self, saved: &Saved, m: usize) -> Result<()> {
        let mom = self.momentum;
        let keep = (1.0 - mom) as f32;
        let take = mom as f32;
        let take_var = (mom * m as f64 / (m as f64 - 1.0)) as f32;
        let rm: Vec<f32> = self.running_mean.as_tensor().to_vec1()?;
        let rv: Vec<f32> = self.running_var.as_tensor().to_vec1()?;
        let (new_mean, new_var): (Vec<f32>, Vec<f32>) = rm
            .iter()
            .zip(&rv)
            .zip(saved.mean.iter().zip(&saved.var))
            .map(|((&rm, &rv), (&mean, &var))| {
                let (mean, var) = (mean as f32, var as f32);
                if mom == 1.0 {
                    (mean, var * take_var)
                } else {
                    (rm * keep + mean * take, rv * keep + var * take_var)
                }
            })
            .unzip();
        let dev = self.running_mean.device();
        let c = new_mean.len();
        self.running_mean
            .set(&Tensor::from_vec(new_mean, c, dev)?)?;
        self.running_var.set(&Tensor::from_vec(new_var, c, dev)?)?;
        Ok(())
    }
}

/// BatchNorm alone (through `ModuleT`, as candle's layer).
impl ModuleT for BatchNorm {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_fused(xs, None, Epilogue::None, train)
    }
}

/// What the forward leaves for the backward and the running-statistics update, per channel.
struct Saved {
    /// Batch mean (training) or running mean (evaluation).
    mean: Vec<f64>,
    /// Biased batch variance (training; empty in evaluation).
    var: Vec<f64>,
    invstd: Vec<f64>,
    gamma: Vec<f32>,
    /// The constants y was computed with (the backward recomputes the ReLU mask from them).
    affine: Vec<Affine>,
}

impl Saved {
    /// Channel `c`'s constants of dx = a g - b (x - mean) - cc, from its backward sums
    /// `(sum g, sum g (x - mean))` over `m` values. In evaluation the statistics are constants,
    /// so only `a` remains.
    #[inline]
    fn dx_coef(&self, c: usize, (s1, s2): (f64, f64), m: f64, train: bool) -> DxCoef {
        let inv = self.invstd[c];
        let gi = self.gamma[c] as f64 * inv;
        if train {
            DxCoef {
                a: gi as f32,
                b: (gi * inv * inv * s2 / m) as f32,
                cc: (gi * s1 / m) as f32,
            }
        } else {
            DxCoef {
                a: gi as f32,
                b: 0.0,
                cc: 0.0,
            }
        }
    }
}

/// The fused op. Inputs: (x, gamma, beta), or (x, [gamma; beta], residual) for `AddRelu`.
pub(crate) struct BnOp {
    eps: f64,
    epi: Epilogue,
    /// Evaluation: running mean and 1 / sqrt(running_var + eps). None: training.
    running: Option<(Vec<f64>, Vec<f64>)>,
    saved: Arc<OnceLock<Saved>>,
}

/// Total values below which a tensor is done on the calling thread.
const PAR_MIN: usize = 1 << 15;
/// Values per rayon task at least.
const PAR_MIN_TASK: usize = 1 << 13;

/// `f(c)` for every channel, on the current rayon pool when the tensor is large enough.
fn per_channel<T: Send>(g: &Geometry, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
    if g.len() < PAR_MIN || rayon::current_num_threads() == 1 {
        (0..g.c).map(f).collect()
    } else {
        let min = PAR_MIN_TASK.div_ceil(g.per_channel().max(1));
        (0..g.c).into_par_iter().with_min_len(min).map(f).collect()
    }
}

fn geometry(shape: &Shape) -> Result<Geometry> {
    let dims = shape.dims();
    if dims.len() < 2 {
        bail!("batch-norm input must have at least two dimensions ({shape:?})")
    }
    Ok(Geometry {
        n: dims[0],
        c: dims[1],
        hw: dims[2..].iter().product(),
    })
}

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    match contiguous_slice(s, l) {
        Ok(Some(v)) => Ok(v),
        Ok(None) => bail!("batch-norm: {what} must be contiguous"),
        Err(_) => bail!("batch-norm: {what} must be f32"),
    }
}

/// Runs `f` on the f32 contents of a contiguous CPU tensor.
fn with_f32<R>(t: &Tensor, what: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => f(f32_slice(s, layout, what)?),
        _ => bail!("batch-norm: {what} must be on the CPU"),
    }
}

impl CustomOp3 for BnOp {
    fn name(&self) -> &'static str {
        "grawa-batch-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = geometry(l1.shape())?;
        let x = f32_slice(s1, l1, "input")?;
        let (gamma, beta, residual) = if self.epi == Epilogue::AddRelu {
            let p = f32_slice(s2, l2, "gamma and beta")?;
            let r = f32_slice(s3, l3, "residual")?;
            if p.len() != 2 * g.c || r.len() != g.len() {
                bail!("batch-norm: parameters or residual do not match the input")
            }
            (&p[..g.c], &p[g.c..], Some(r))
        } else {
            let gamma = f32_slice(s2, l2, "gamma")?;
            let beta = f32_slice(s3, l3, "beta")?;
            if gamma.len() != g.c || beta.len() != g.c {
                bail!("batch-norm: parameters do not match the input")
            }
            (gamma, beta, None)
        };
        let mut out: Vec<f32> = Vec::with_capacity(g.len());
        let ptr = OutPtr(out.as_mut_ptr());
        let per = per_channel(&g, |c| {
            let constants = self.channel_constants(&g, x, gamma, beta, c);
            // SAFETY: `out` has room for g.len() values; this task alone writes channel c.
            unsafe { kern::write_channel(&g, c, x, residual, ptr, constants.3, self.epi) };
            constants
        });
        // SAFETY: every plane of every channel was written above.
        unsafe { out.set_len(g.len()) };
        self.save(&per, gamma)?;
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        _arg2: &Tensor,
        arg3: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = self.grads(x, &grad_res.contiguous()?, Some(res), x.track_op())?;
        let dev = x.device();
        let c = g.dgamma.len();
        match g.dres {
            Some(dres) => {
                let dgb = Tensor::from_vec([g.dgamma, g.dbeta].concat(), 2 * c, dev)?;
                let dres = Tensor::from_vec(dres, arg3.shape(), dev)?;
                Ok((g.dx, Some(dgb), Some(dres)))
            }
            None => {
                let dgamma = Tensor::from_vec(g.dgamma, c, dev)?;
                let dbeta = Tensor::from_vec(g.dbeta, c, dev)?;
                Ok((g.dx, Some(dgamma), Some(dbeta)))
            }
        }
    }
}

/// The gradients of one BatchNorm application.
pub(crate) struct BnGrads {
    /// Of the input (when asked for).
    pub dx: Option<Tensor>,
    pub dgamma: Vec<f32>,
    pub dbeta: Vec<f32>,
    /// Of the residual (`AddRelu` only), in the input's layout.
    pub dres: Option<Vec<f32>>,
}

impl BnOp {
    /// Channel c's mean, biased variance (NaN in evaluation), 1 / std and output constants.
    fn channel_constants(
        &self,
        g: &Geometry,
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        c: usize,
    ) -> (f64, f64, f64, Affine) {
        let (mean, var, invstd) = match &self.running {
            // SAFETY: reads channel c of x, which the caller checked is g.len() long.
            None => {
                let (mean, var) = unsafe { kern::channel_stats(g, x, c) };
                (mean, var, 1.0 / (var + self.eps).sqrt())
            }
            Some((mean, invstd)) => (mean[c], f64::NAN, invstd[c]),
        };
        (
            mean,
            var,
            invstd,
            Affine::new(mean, gamma[c] as f64 * invstd, beta[c]),
        )
    }

    /// Keeps the per-channel constants of the forward for the backward and the running update.
    fn save(&self, per: &[(f64, f64, f64, Affine)], gamma: &[f32]) -> Result<()> {
        let saved = Saved {
            mean: per.iter().map(|p| p.0).collect(),
            var: if self.running.is_none() {
                per.iter().map(|p| p.1).collect()
            } else {
                Vec::new()
            },
            invstd: per.iter().map(|p| p.2).collect(),
            gamma: gamma.to_vec(),
            affine: per.iter().map(|p| p.3).collect(),
        };
        if self.saved.set(saved).is_err() {
            bail!("batch-norm: op instance applied twice")
        }
        Ok(())
    }

    /// The forward's statistics and constants for `x` (contiguous, f32, on the CPU) without its
    /// output: for ops that apply them as they read x (`input_map`).
    fn constants_only(&self, x: &Tensor, gamma: &Tensor, beta: &Tensor) -> Result<()> {
        let g = geometry(x.shape())?;
        with_f32(x, "input", |xv| {
            with_f32(gamma, "gamma", |gv| {
                with_f32(beta, "beta", |bv| {
                    if xv.len() != g.len() || gv.len() != g.c || bv.len() != g.c {
                        bail!("batch-norm: parameters do not match the input")
                    }
                    let per = per_channel(&g, |c| self.channel_constants(&g, xv, gv, bv, c));
                    self.save(&per, gv)
                })
            })
        })
    }

    /// The output constants per channel, once the forward ran.
    pub(crate) fn affine(&self) -> Result<&[Affine]> {
        match self.saved.get() {
            Some(saved) => Ok(&saved.affine),
            None => bail!("batch-norm: constants asked for before the forward"),
        }
    }

    /// How the backward finds where the ReLU was active: `zv` is the forward's output, which
    /// only `AddRelu` needs (the others recompute or have no ReLU).
    fn backward_mask<'a>(&self, zv: Option<&'a [f32]>) -> Result<Mask<'a>> {
        Ok(match (self.epi, zv) {
            (Epilogue::None, _) => Mask::None,
            (Epilogue::Relu, _) => Mask::Recompute,
            (Epilogue::AddRelu, Some(zv)) => Mask::Output(zv),
            (Epilogue::AddRelu, None) => {
                bail!("batch-norm backward: add-relu without its output")
            }
        })
    }

    /// The gradients from the input `x` and the output's gradient `dy` (contiguous); `out`, the
    /// forward's output, is read only for `AddRelu` (its ReLU mask), and `Relu` recomputes the
    /// mask from x.
    pub(crate) fn grads(
        &self,
        x: &Tensor,
        dy: &Tensor,
        out: Option<&Tensor>,
        need_dx: bool,
    ) -> Result<BnGrads> {
        let Some(saved) = self.saved.get() else {
            bail!("batch-norm: backward before forward")
        };
        let g = geometry(x.shape())?;
        let add_relu = self.epi == Epilogue::AddRelu;
        let train = self.running.is_none();
        let m = g.per_channel() as f64;
        let mut dx: Vec<f32> = Vec::with_capacity(if need_dx { g.len() } else { 0 });
        let mut dres: Vec<f32> = Vec::with_capacity(if add_relu { g.len() } else { 0 });
        let (dx_ptr, dres_ptr) = (OutPtr(dx.as_mut_ptr()), OutPtr(dres.as_mut_ptr()));
        let sums_with = |xv: &[f32], dyv: &[f32], zv: Option<&[f32]>| -> Result<Vec<(f64, f64)>> {
            if xv.len() != g.len() || dyv.len() != g.len() || zv.is_some_and(|z| z.len() != g.len())
            {
                bail!("batch-norm backward: shapes do not match")
            }
            let mask = self.backward_mask(zv)?;
            let dres_ptr = add_relu.then_some(dres_ptr);
            Ok(per_channel(&g, |c| {
                let k = saved.affine[c];
                // SAFETY: dres has room for g.len() values; only this task writes channel c's
                // planes of dres and dx.
                let (s1, s2) = unsafe { kern::backward_sums(&g, c, xv, dyv, mask, dres_ptr, k) };
                if need_dx {
                    let d = saved.dx_coef(c, (s1, s2), m, train);
                    unsafe { kern::backward_dx(&g, c, xv, dyv, mask, dres_ptr, dx_ptr, k, d) };
                }
                (s1, s2)
            }))
        };
        let sums = with_f32(x, "input", |xv| {
            with_f32(dy, "gradient", |dyv| match out {
                Some(out) => with_f32(out, "output", |zv| sums_with(xv, dyv, Some(zv))),
                None => sums_with(xv, dyv, None),
            })
        })?;
        // SAFETY: the passes above wrote every plane of the buffers they were given.
        unsafe {
            if need_dx {
                dx.set_len(g.len());
            }
            if add_relu {
                dres.set_len(g.len());
            }
        }
        // sum g is beta's gradient; sum g (x - mean) * invstd is gamma's.
        let dbeta: Vec<f32> = sums.iter().map(|s| s.0 as f32).collect();
        let dgamma: Vec<f32> = sums
            .iter()
            .zip(&saved.invstd)
            .map(|(s, inv)| (s.1 * inv) as f32)
            .collect();
        let dx = if need_dx {
            Some(Tensor::from_vec(dx, x.shape(), x.device())?)
        } else {
            None
        };
        Ok(BnGrads {
            dx,
            dgamma,
            dbeta,
            dres: add_relu.then_some(dres),
        })
    }
}
