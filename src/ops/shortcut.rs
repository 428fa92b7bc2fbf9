//! ResNet's option-A shortcut on the CPU as one candle custom op: every other pixel of each plane,
//! with `pad` zero planes before and after the channels.
//!
//! The device-independent form (`model::resnet::option_a_shortcut_composed`) is a reshape, two
//! index selections and a concatenation with zeros; its backward is a chain of concatenations
//! with zeros and copies of the full-resolution gradient, each also summed into fresh zeros by
//! candle's backward. Here the forward is one strided copy and the backward one scatter.

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::f32_data;

/// `F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad))` for an f32 (N, C, H, W) CPU tensor.
pub fn option_a_shortcut_cpu(xs: &Tensor, pad: usize) -> Result<Tensor> {
    xs.apply_op1(Shortcut { pad })
}

struct Shortcut {
    pad: usize,
}

/// The subsampled side: `::2` keeps index 0, 2, ... and an odd side's last.
fn half(side: usize) -> usize {
    side.div_ceil(2)
}

impl CustomOp1 for Shortcut {
    fn name(&self) -> &'static str {
        "grawa-option-a-shortcut"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = l.shape().dims4()?;
        let x = f32_data(s, l, self.name())?;
        let (h2, w2, co) = (half(h), half(w), c + 2 * self.pad);
        let mut y = vec![0f32; n * co * h2 * w2];
        if h2 * w2 > 0 {
            y.par_chunks_mut(h2 * w2)
                .enumerate()
                .for_each(|(plane, out)| {
                    let (b, ch) = (plane / co, plane % co);
                    if ch < self.pad || ch >= self.pad + c {
                        return;
                    }
                    let src = &x[(b * c + ch - self.pad) * h * w..][..h * w];
                    for (oy, row) in out.chunks_exact_mut(w2).enumerate() {
                        let line = &src[2 * oy * w..][..w];
                        for (ox, v) in row.iter_mut().enumerate() {
                            *v = line[2 * ox];
                        }
                    }
                });
        }
        Ok((CpuStorage::F32(y), Shape::from((n, co, h2, w2))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (_, _, h, w) = arg.dims4()?;
        let dx = grad.apply_op1_no_bwd(&ShortcutGrad {
            pad: self.pad,
            h,
            w,
        })?;
        Ok(Some(dx))
    }
}

/// The shortcut's input gradient: dy's middle channels back at every other pixel, zeros
/// elsewhere.
struct ShortcutGrad {
    pad: usize,
    /// The input's height and width (odd and even sides subsample to the same size).
    h: usize,
    w: usize,
}

impl CustomOp1 for ShortcutGrad {
    fn name(&self) -> &'static str {
        "grawa-option-a-shortcut-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, co, h2, w2) = l.shape().dims4()?;
        let (h, w) = (self.h, self.w);
        if co < 2 * self.pad || (h2, w2) != (half(h), half(w)) {
            bail!(
                "{}: gradient of shape {:?} for a {h}x{w} input padded by {} channels",
                self.name(),
                l.shape(),
                self.pad
            );
        }
        let dy = f32_data(s, l, self.name())?;
        let c = co - 2 * self.pad;
        let mut dx = vec![0f32; n * c * h * w];
        if h * w > 0 {
            dx.par_chunks_mut(h * w)
                .enumerate()
                .for_each(|(plane, out)| {
                    let (b, ch) = (plane / c, plane % c);
                    let src = &dy[(b * co + ch + self.pad) * h2 * w2..][..h2 * w2];
                    for (oy, row) in src.chunks_exact(w2).enumerate() {
                        let line = &mut out[2 * oy * w..][..w];
                        for (ox, &v) in row.iter().enumerate() {
                            line[2 * ox] = v;
                        }
                    }
                });
        }
        Ok((CpuStorage::F32(dx), Shape::from((n, c, h, w))))
    }
}
