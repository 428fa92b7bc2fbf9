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

/// The first maximal element of a window `(a, b, c, d)` (row-major: top left, top right, bottom
/// left, bottom right), as a running maximum with strict `>`: its position 0..4 and value. Written
/// as selects, not branches: on random data the branches mispredicted about half the time, and
/// the pooling cost more than the CNN's convolutions.
#[inline(always)]
fn first_max(a: f32, b: f32, c: f32, d: f32) -> (u32, f32) {
    let (i, m) = if b > a { (1, b) } else { (0, a) };
    let (i, m) = if c > m { (2, c) } else { (i, m) };
    if d > m {
        (3, d)
    } else {
        (i, m)
    }
}

/// One output row from input rows `top` and `bottom` (each at least `2 * out.len()` long).
#[inline]
fn pool_row(top: &[f32], bottom: &[f32], out: &mut [f32]) {
    for ((o, t), b) in out
        .iter_mut()
        .zip(top.chunks_exact(2))
        .zip(bottom.chunks_exact(2))
    {
        *o = first_max(t[0], t[1], b[0], b[1]).1;
    }
}

/// The gradient of one output row `g` into input rows `dtop` and `dbottom`: each window's
/// gradient to its first maximal element, zeros to the other three.
#[inline]
fn unpool_row(top: &[f32], bottom: &[f32], g: &[f32], dtop: &mut [f32], dbottom: &mut [f32]) {
    let windows = top
        .chunks_exact(2)
        .zip(bottom.chunks_exact(2))
        .zip(dtop.chunks_exact_mut(2).zip(dbottom.chunks_exact_mut(2)));
    for (((t, b), (dt, db)), &gv) in windows.zip(g) {
        let (i, _) = first_max(t[0], t[1], b[0], b[1]);
        let pick = |k: u32| if i == k { gv } else { 0.0 };
        dt[0] = pick(0);
        dt[1] = pick(1);
        db[0] = pick(2);
        db[1] = pick(3);
    }
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
                    for (i, o) in out.chunks_exact_mut(w2).enumerate() {
                        let rows = &plane[2 * i * w..(2 * i + 2) * w];
                        let (top, bottom) = rows.split_at(w);
                        pool_row(top, bottom, o);
                    }
                });
        }
        Ok((CpuStorage::F32(y), Shape::from((n, c, h2, w2))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (n, c, h, w) = arg.dims4()?;
        let (h2, w2) = (h / 2, w / 2);
        // Zeros: an odd last row or column gets no gradient; the rest is written below.
        let mut dx = vec![0f32; n * c * h * w];
        if h2 * w2 > 0 {
            with_f32(arg, |x| {
                with_f32(grad, |g| {
                    dx.par_chunks_mut(h * w)
                        .zip(x.par_chunks(h * w))
                        .zip(g.par_chunks(h2 * w2))
                        .for_each(|((d, plane), gp)| {
                            for (i, gr) in gp.chunks_exact(w2).enumerate() {
                                let rows = &plane[2 * i * w..(2 * i + 2) * w];
                                let (top, bottom) = rows.split_at(w);
                                let drows = &mut d[2 * i * w..(2 * i + 2) * w];
                                let (dtop, dbottom) = drows.split_at_mut(w);
                                unpool_row(top, bottom, gr, dtop, dbottom);
                            }
                        })
                })
            })??;
        }
        Ok(Some(Tensor::from_vec(dx, (n, c, h, w), arg.device())?))
    }
}
