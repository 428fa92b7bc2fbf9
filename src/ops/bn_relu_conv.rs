//! `conv(relu(batch_norm(x)))` as one node of candle's graph, which keeps x alone and never
//! writes relu(batch_norm(x)) out as a tensor.
//!
//! Why: candle's backward holds every tensor of the graph until it returns, so each tensor an op
//! keeps for its backward costs memory for the whole step. BatchNorm keeps its input x and the
//! convolution after it would keep its own input r = relu(batch_norm(x)): two activations of the
//! same size where one determines the other. This op keeps x alone (ResNet-20 at batch 128: 42
//! of 200 MiB of activations). The forward computes BatchNorm's statistics and output constants
//! without its output, and the convolution reads x through them (`input_map`: applied as the
//! kernel copies its input into its buffer, or to a temporary copy on the paths without one);
//! the weight gradient reads x the same way, then BatchNorm's backward runs on the input
//! gradient. Every value is the one `conv.forward(&bn.forward_relu_t(x))` gives (the same
//! function computes r, and the same kernels run), which is also the path taken where our CPU
//! ops do not apply (other devices, dtypes).

use std::sync::Arc;

use candle_core::{bail, CpuStorage, CustomOp3, Layout, Module, Result, Shape, Tensor};

use super::batch_norm::{BatchNorm, BnOp};
use super::conv::{Conv2d, Conv2dBwdBias, Conv2dOp};
use super::cpu::f32_data;
use super::input_map::BnReluInput;

/// `conv.forward(&bn.forward_relu_t(xs, train))`, keeping only `xs` for the backward.
pub fn bn_relu_conv(bn: &BatchNorm, conv: &Conv2d, xs: &Tensor, train: bool) -> Result<Tensor> {
    let fused = bn.fast_path(xs, None) && conv.runs_ours(xs);
    if !fused {
        return conv.forward(&bn.forward_relu_t(xs, train)?);
    }
    let x = xs.contiguous()?;
    let bn_op = bn.relu_constants(&x, train)?;
    // One tensor for the small parameters, as candle's ops take three inputs at most.
    let params = match conv.bias() {
        None => bn.gamma_beta()?,
        Some(b) => Tensor::cat(&[&bn.gamma_beta()?, &b.contiguous()?], 0)?,
    };
    let op = BnReluConvOp {
        bn: bn_op,
        conv: conv.op(),
        channels: x.dim(1)?,
        bias: conv.bias().is_some(),
    };
    let op: Arc<Box<dyn CustomOp3 + Send + Sync>> = Arc::new(Box::new(op));
    x.apply_op3_arc(&conv.weight().contiguous()?, &params, op)
}

/// Inputs: (x, convolution weight, [gamma; beta] or [gamma; beta; convolution bias]).
struct BnReluConvOp {
    /// The BatchNorm application, with the statistics and constants its forward computed.
    bn: BnOp,
    conv: Conv2dOp,
    /// BatchNorm's channels (x's): gamma and beta are the first 2 * channels parameters.
    channels: usize,
    /// Whether the convolution's bias follows them.
    bias: bool,
}

impl CustomOp3 for BnReluConvOp {
    fn name(&self) -> &'static str {
        "grawa-bn-relu-conv2d"
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
        let map = BnReluInput::new(self.bn.affine()?);
        let params = f32_data(s3, l3, self.name())?;
        let Some(rest) = params.get(2 * self.channels..) else {
            bail!(
                "{}: {} parameters for {} channels",
                self.name(),
                params.len(),
                self.channels
            )
        };
        let bias = self.bias.then_some(rest);
        self.conv
            .cpu(self.name(), (s1, l1), (s2, l2), bias, Some(&map))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let map = BnReluInput::new(self.bn.affine()?);
        let (dr, dw) = self
            .conv
            .gradients(x, w, &grad, true, w.track_op(), Some(&map))?;
        let dr = dr.expect("asked for the input gradient");
        let bn = self.bn.grads(x, &dr, None, x.track_op())?;
        let dparams = if params.track_op() {
            let mut v = [bn.dgamma, bn.dbeta].concat();
            if self.bias {
                let db: Vec<f32> = grad.apply_op1_no_bwd(&Conv2dBwdBias)?.to_vec1()?;
                v.extend(db);
            }
            let len = v.len();
            Some(Tensor::from_vec(v, len, x.device())?)
        } else {
            None
        };
        Ok((bn.dx, dw, dparams))
    }
}
