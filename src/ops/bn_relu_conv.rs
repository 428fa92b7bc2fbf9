//! `conv(relu(batch_norm(x)))` as one node of candle's graph, which keeps x and recomputes
//! `relu(batch_norm(x))` in its backward instead of keeping it.
//!
//! Why: candle's backward holds every tensor of the graph until it returns, so each tensor an op
//! keeps for its backward costs memory for the whole step. BatchNorm keeps its input x and the
//! convolution after it keeps its own input r = relu(batch_norm(x)): two activations of the same
//! size where one determines the other. This op keeps x alone (ResNet-20 at batch 128: 42 of
//! 200 MiB of activations). The forward computes r with BatchNorm's op outside the graph, runs
//! the convolution on it and drops it; the backward recomputes r from x with the constants the
//! forward used (the same kernel, so the same bits), takes the convolution's gradients, then
//! BatchNorm's. Every value equals that of `conv.forward(&bn.forward_relu_t(x))`, which is also
//! the path taken where our CPU ops do not apply (other devices, dtypes, a convolution bias).

use std::sync::{Arc, Mutex};

use candle_core::{bail, CpuStorage, CustomOp3, Layout, Module, Result, Shape, Storage, Tensor};

use super::batch_norm::{BatchNorm, BnOp};
use super::conv::{Conv2d, Conv2dOp};

/// `conv.forward(&bn.forward_relu_t(xs, train))`, keeping only `xs` for the backward.
pub fn bn_relu_conv(bn: &BatchNorm, conv: &Conv2d, xs: &Tensor, train: bool) -> Result<Tensor> {
    let fused = bn.fast_path(xs, None) && conv.runs_ours(xs) && conv.bias().is_none();
    if !fused {
        return conv.forward(&bn.forward_relu_t(xs, train)?);
    }
    let x = xs.contiguous()?;
    let (r, bn_op) = bn.relu_detached(&x, train)?;
    let op = BnReluConvOp {
        bn: bn_op,
        conv: conv.op(),
        input: Mutex::new(Some(r)),
    };
    let op: Arc<Box<dyn CustomOp3 + Send + Sync>> = Arc::new(Box::new(op));
    x.apply_op3_arc(&conv.weight().contiguous()?, &bn.gamma_beta()?, op)
}

/// Inputs: (x, convolution weight, [gamma; beta]).
struct BnReluConvOp {
    /// The BatchNorm application, with the statistics and constants its forward used.
    bn: BnOp,
    conv: Conv2dOp,
    /// relu(batch_norm(x)) from the forward, until the convolution has read it.
    input: Mutex<Option<Tensor>>,
}

impl CustomOp3 for BnReluConvOp {
    fn name(&self) -> &'static str {
        "grawa-bn-relu-conv2d"
    }

    fn cpu_fwd(
        &self,
        _s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        _s3: &CpuStorage,
        _l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let taken = self.input.lock().map(|mut slot| slot.take());
        let Ok(Some(r)) = taken else {
            bail!("{}: op instance applied twice", self.name())
        };
        if r.shape() != l1.shape() {
            bail!(
                "{}: batch-norm output does not match its input",
                self.name()
            )
        }
        let (storage, layout) = r.storage_and_layout();
        let Storage::Cpu(s) = &*storage else {
            bail!("{}: batch-norm output is not on the CPU", self.name())
        };
        self.conv.cpu(self.name(), (s, layout), (s2, l2), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        gb: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let r = self.bn.recompute(x)?;
        let (dr, dw) = self.conv.gradients(&r, w, &grad, true, w.track_op())?;
        drop(r);
        let dr = dr.expect("asked for the input gradient");
        let bn = self.bn.grads(x, &dr, None, x.track_op())?;
        let dgb = if gb.track_op() {
            let c = bn.dgamma.len();
            let v = [bn.dgamma, bn.dbeta].concat();
            Some(Tensor::from_vec(v, 2 * c, x.device())?)
        } else {
            None
        };
        Ok((bn.dx, dw, dgb))
    }
}
