//! 2-D convolution layer (NCHW). On the CPU with f32 it runs our own op (`Conv2dOp`, or
//! `Conv2dBiasOp` with a bias; kernels in `conv_cpu`: direct AVX-512 convolution, else im2col +
//! GEMM), whose backward is more custom ops (input gradient, weight gradient, bias gradient), so
//! candle's slow CPU convolution and its naive `conv_transpose2d` stay out of the training step.
//! Other devices and dtypes use candle's `conv2d` and a broadcast add of the bias.

use candle_core::{
    bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Device, Layout, Module, Result,
    Shape, Tensor,
};

use super::conv_cpu::{conv_bwd_bias, conv_bwd_input, conv_bwd_weight, conv_fwd};
use super::cpu::f32_data;
use super::im2col::Geom;
use super::input_map::BnReluInput;

/// A 2-D convolution with optional bias, PyTorch's NCHW layout and OIHW weight.
#[derive(Clone, Debug)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    padding: usize,
}

impl Conv2d {
    /// `weight` is (out, in, kh, kw); `bias` is (out,).
    pub fn new(weight: Tensor, bias: Option<Tensor>, stride: usize, padding: usize) -> Self {
        Self {
            weight,
            bias,
            stride,
            padding,
        }
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// The op's geometry (stride and padding).
    pub(crate) fn op(&self) -> Conv2dOp {
        Conv2dOp {
            stride: self.stride,
            padding: self.padding,
        }
    }

    /// Whether `xs` goes through our CPU op rather than candle's convolution.
    pub(crate) fn runs_ours(&self, xs: &Tensor) -> bool {
        runs_ours(xs, &self.weight, self.bias.as_ref())
    }
}

impl Module for Conv2d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        conv2d(
            xs,
            &self.weight,
            self.bias.as_ref(),
            self.stride,
            self.padding,
        )
    }
}

/// `conv2d(xs, weight) + bias` (dilation 1, groups 1; bias of shape (Cout,)): our op on the CPU
/// for f32, candle's elsewhere.
pub fn conv2d(
    xs: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    if runs_ours(xs, weight, bias) {
        let xs = xs.contiguous()?;
        let w = weight.contiguous()?;
        let op = Conv2dOp { stride, padding };
        match bias {
            None => xs.apply_op2(&w, op),
            Some(b) => xs.apply_op3(&w, &b.contiguous()?, Conv2dBiasOp(op)),
        }
    } else {
        let y = xs.conv2d(weight, padding, stride, 1, 1)?;
        match bias {
            None => Ok(y),
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?),
        }
    }
}

/// Our op takes f32 NCHW on the CPU with an OIHW weight and a (Cout,) bias.
fn runs_ours(xs: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> bool {
    matches!(xs.device(), Device::Cpu)
        && xs.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && bias.is_none_or(|b| b.dtype() == DType::F32 && b.rank() == 1)
        && xs.rank() == 4
        && weight.rank() == 4
}

/// Testing aid: with `false`, every CPU convolution takes the im2col + GEMM path, as on a CPU
/// without AVX-512 (the default, `true`, uses the direct AVX-512 kernels where they apply).
#[doc(hidden)]
pub fn set_direct_kernels(enabled: bool) {
    super::conv_cpu::set_direct(enabled);
}

/// Testing and benchmarking aid: with `false`, forwards and input gradients do not take the
/// channel-lane kernel (`conv_cf`) but the path they took before it (direct pixel-lane or GEMM).
#[doc(hidden)]
pub fn set_channel_fwd(enabled: bool) {
    super::conv_cpu::set_channel_fwd(enabled);
}

/// Testing and benchmarking aid: with `false`, the channel-lane forward and input gradient
/// (`conv_cf`) compute the products of taps on the zero padding instead of skipping them.
#[doc(hidden)]
pub fn set_skip_padding(enabled: bool) {
    super::conv_cf::set_skip_padding(enabled);
}

/// Testing and benchmarking aid: with `false`, weight gradients do not take the channel-lane
/// kernel (`conv_wgrad`) but the path they took before it (direct pixel-lane or GEMM).
#[doc(hidden)]
pub fn set_channel_wgrad(enabled: bool) {
    super::conv_cpu::set_channel_wgrad(enabled);
}

#[allow(clippy::too_many_arguments)]
fn geom(
    op: &str,
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    padding: usize,
) -> Result<Geom> {
    match Geom::new(n, cin, h, w, cout, kh, kw, stride, padding, padding) {
        Some(g) => Ok(g),
        None => bail!(
            "{op}: kernel {kh}x{kw} (stride {stride}, padding {padding}) does not fit a {h}x{w} input"
        ),
    }
}

/// A backward op's incoming gradient must be the size the convolution's output has.
fn check_gradient_size(op: &str, g: &Geom, ho: usize, wo: usize) -> Result<()> {
    if (g.ho, g.wo) != (ho, wo) {
        bail!(
            "{op}: gradient is {ho}x{wo}, the convolution gives {}x{}",
            g.ho,
            g.wo
        );
    }
    Ok(())
}

/// `y = conv2d(x, w)` on (x: N Cin H W, w: Cout Cin kh kw).
#[derive(Clone, Copy, Debug)]
pub struct Conv2dOp {
    pub stride: usize,
    pub padding: usize,
}

impl Conv2dOp {
    /// The forward on CPU storages plus `bias` (Cout), with x read through `map` where given
    /// (without writing the mapped input out where the kernel can: `conv_cpu::conv_fwd`).
    pub(crate) fn cpu(
        &self,
        name: &str,
        (s1, l1): (&CpuStorage, &Layout),
        (s2, l2): (&CpuStorage, &Layout),
        bias: Option<&[f32]>,
        map: Option<&BnReluInput>,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, cin, h, w) = l1.shape().dims4()?;
        let (cout, cin_w, kh, kw) = l2.shape().dims4()?;
        if cin != cin_w || map.is_some_and(|m| m.channels() != cin) {
            bail!("{name}: input has {cin} channels, weight expects {cin_w}");
        }
        if bias.is_some_and(|b| b.len() != cout) {
            bail!("{name}: bias does not match {cout} channels");
        }
        let g = geom(name, n, cin, h, w, cout, kh, kw, self.stride, self.padding)?;
        let x = f32_data(s1, l1, name)?;
        let wt = f32_data(s2, l2, name)?;
        let y = conv_fwd(&g, &x, &wt, bias, map);
        Ok((CpuStorage::F32(y), Shape::from((n, cout, g.ho, g.wo))))
    }

    /// Input and weight gradients (each only if that argument needs one).
    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        self.gradients(x, w, grad, x.track_op(), w.track_op(), None)
    }

    /// The input gradient (if `need_dx`) and the weight gradient (if `need_dw`) from the
    /// input `x` (read through `map` where given), the weight `w` and the output's contiguous
    /// gradient `grad`.
    pub(crate) fn gradients(
        &self,
        x: &Tensor,
        w: &Tensor,
        grad: &Tensor,
        need_dx: bool,
        need_dw: bool,
        map: Option<&BnReluInput>,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (_, _, h, wd) = x.dims4()?;
        let (_, _, kh, kw) = w.dims4()?;
        let dx = if need_dx {
            let op = Conv2dBwdInput {
                stride: self.stride,
                padding: self.padding,
                h,
                w: wd,
            };
            Some(grad.apply_op2_no_bwd(w, &op)?)
        } else {
            None
        };
        let dw = if need_dw {
            let op = Conv2dBwdWeight {
                stride: self.stride,
                padding: self.padding,
                kh,
                kw,
            };
            Some(x.apply_op2_no_bwd(grad, &WeightGrad { op, map })?)
        } else {
            None
        };
        Ok((dx, dw))
    }
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "grawa-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.cpu(self.name(), (s1, l1), (s2, l2), None, None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        self.backward(x, w, &grad.contiguous()?)
    }
}

/// `y = conv2d(x, w) + b` on (x: N Cin H W, w: Cout Cin kh kw, b: Cout).
#[derive(Clone, Copy, Debug)]
pub struct Conv2dBiasOp(pub Conv2dOp);

impl CustomOp3 for Conv2dBiasOp {
    fn name(&self) -> &'static str {
        "grawa-conv2d-bias"
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
        let name = self.name();
        if l3.shape().rank() != 1 {
            bail!("{name}: bias of shape {:?}", l3.shape());
        }
        let bias = f32_data(s3, l3, name)?;
        self.0.cpu(name, (s1, l1), (s2, l2), Some(&bias), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (dx, dw) = self.0.backward(x, w, &grad)?;
        let db = if b.track_op() {
            Some(grad.apply_op1_no_bwd(&Conv2dBwdBias)?)
        } else {
            None
        };
        Ok((dx, dw, db))
    }
}

/// The bias gradient of `Conv2dBiasOp`: db (Cout) = sum of dy (N Cout Ho Wo) over N, Ho, Wo.
#[derive(Clone, Copy, Debug)]
pub struct Conv2dBwdBias;

impl CustomOp1 for Conv2dBwdBias {
    fn name(&self) -> &'static str {
        "grawa-conv2d-bwd-bias"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, cout, ho, wo) = l.shape().dims4()?;
        let dy = f32_data(s, l, self.name())?;
        let db = conv_bwd_bias(n, cout, ho * wo, &dy);
        Ok((CpuStorage::F32(db), Shape::from(cout)))
    }
}

/// The input gradient of `Conv2dOp`: dx (N Cin h w) from (dy: N Cout Ho Wo, w: Cout Cin kh kw).
#[derive(Clone, Copy, Debug)]
pub struct Conv2dBwdInput {
    pub stride: usize,
    pub padding: usize,
    /// The input's height and width (several give the same output size when stride > 1).
    pub h: usize,
    pub w: usize,
}

impl CustomOp2 for Conv2dBwdInput {
    fn name(&self) -> &'static str {
        "grawa-conv2d-bwd-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let (n, cout, ho, wo) = l1.shape().dims4()?;
        let (cout_w, cin, kh, kw) = l2.shape().dims4()?;
        if cout != cout_w {
            bail!("{name}: gradient has {cout} channels, weight has {cout_w} outputs");
        }
        let g = geom(
            name,
            n,
            cin,
            self.h,
            self.w,
            cout,
            kh,
            kw,
            self.stride,
            self.padding,
        )?;
        check_gradient_size(name, &g, ho, wo)?;
        let dy = f32_data(s1, l1, name)?;
        let wt = f32_data(s2, l2, name)?;
        let dx = conv_bwd_input(&g, &dy, &wt);
        Ok((CpuStorage::F32(dx), Shape::from((n, cin, self.h, self.w))))
    }
}

/// The weight gradient of `Conv2dOp`: dw (Cout Cin kh kw) from (x: N Cin H W, dy: N Cout Ho Wo).
#[derive(Clone, Copy, Debug)]
pub struct Conv2dBwdWeight {
    pub stride: usize,
    pub padding: usize,
    pub kh: usize,
    pub kw: usize,
}

impl CustomOp2 for Conv2dBwdWeight {
    fn name(&self) -> &'static str {
        "grawa-conv2d-bwd-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.cpu((s1, l1), (s2, l2), None)
    }
}

/// `Conv2dBwdWeight` with x read through an input map (`Conv2dOp::gradients`).
struct WeightGrad<'a> {
    op: Conv2dBwdWeight,
    map: Option<&'a BnReluInput<'a>>,
}

impl CustomOp2 for WeightGrad<'_> {
    fn name(&self) -> &'static str {
        self.op.name()
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.op.cpu((s1, l1), (s2, l2), self.map)
    }
}

impl Conv2dBwdWeight {
    /// dW from x (read through `map` where given) and dy on CPU storages.
    fn cpu(
        &self,
        (s1, l1): (&CpuStorage, &Layout),
        (s2, l2): (&CpuStorage, &Layout),
        map: Option<&BnReluInput>,
    ) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let (n, cin, h, w) = l1.shape().dims4()?;
        let (n_dy, cout, ho, wo) = l2.shape().dims4()?;
        if n != n_dy {
            bail!("{name}: {n} inputs but {n_dy} gradients");
        }
        let (kh, kw) = (self.kh, self.kw);
        let g = geom(name, n, cin, h, w, cout, kh, kw, self.stride, self.padding)?;
        check_gradient_size(name, &g, ho, wo)?;
        let x = f32_data(s1, l1, name)?;
        let dy = f32_data(s2, l2, name)?;
        if map.is_some_and(|m| m.channels() != cin) {
            bail!("{name}: input map for another number of channels than {cin}");
        }
        let dw = conv_bwd_weight(&g, &x, &dy, map);
        Ok((CpuStorage::F32(dw), Shape::from((cout, cin, kh, kw))))
    }
}
