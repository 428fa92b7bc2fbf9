//! 2x2 max-pooling (stride 2, odd edges dropped) on the CPU as a candle custom op. The backward
//! sends each window's gradient to its first maximal element in row-major order, as PyTorch's
//! recorded index does; planes (image, channel) run in parallel on the current rayon pool.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::{contiguous_f32, with_f32};

/// `max_pool2x2` for an f32 (N, C, H, W) CPU tensor.
pub fn max_pool2x2_cpu(xs: &Tensor) -> Result<Tensor> {
    xs.apply_op1(MaxPool2x2)
}

struct MaxPool2x2;

/// Index within its plane of the first maximal element of the window at output (i, j).
#[inline]
fn window_argmax(plane: &[f32], w: usize, i: usize, j: usize) -> usize {
    let top = 2 * i * w + 2 * j;
    let mut best = top;
    for k in [top + 1, top + w, top + w + 1] {
        if plane[k] > plane[best] {
            best = k;
        }
    }
    best
}

impl CustomOp1 for MaxPool2x2 {
    fn name(&self) -> &'static str {
        "grawa-max-pool-2x2"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = layout.shape().dims4()?;
        let (h2, w2) = (h / 2, w / 2);
        let x = contiguous_f32(storage, layout)?;
        let mut y = vec![0f32; n * c * h2 * w2];
        if h2 * w2 > 0 {
            y.par_chunks_mut(h2 * w2)
                .zip(x.par_chunks(h * w))
                .for_each(|(out, plane)| {
                    for i in 0..h2 {
                        for j in 0..w2 {
                            out[i * w2 + j] = plane[window_argmax(plane, w, i, j)];
                        }
                    }
                });
        }
        Ok((CpuStorage::F32(y), Shape::from((n, c, h2, w2))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (n, c, h, w) = arg.dims4()?;
        let (h2, w2) = (h / 2, w / 2);
        let mut dx = vec![0f32; n * c * h * w];
        if h2 * w2 > 0 {
            with_f32(arg, |x| {
                with_f32(grad, |g| {
                    dx.par_chunks_mut(h * w)
                        .zip(x.par_chunks(h * w))
                        .zip(g.par_chunks(h2 * w2))
                        .for_each(|((d, plane), gp)| {
                            for i in 0..h2 {
                                for j in 0..w2 {
                                    d[window_argmax(plane, w, i, j)] = gp[i * w2 + j];
                                }
                            }
                        })
                })
            })??;
        }
        Ok(Some(Tensor::from_vec(dx, (n, c, h, w), arg.device())?))
    }
}
