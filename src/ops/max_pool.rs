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
    assert!(top.len() >= 2 * out.len() && bottom.len() >= 2 * out.len());
    #[cfg(target_arch = "x86_64")]
    if avx512::available() {
        // SAFETY: AVX-512F is present; the lengths were checked above.
        unsafe { avx512::pool_row(top, bottom, out) };
        return;
    }
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
    let n = g.len();
    assert!(top.len() >= 2 * n && bottom.len() >= 2 * n);
    assert!(dtop.len() >= 2 * n && dbottom.len() >= 2 * n);
    #[cfg(target_arch = "x86_64")]
    if avx512::available() {
        // SAFETY: AVX-512F is present; the lengths were checked above.
        unsafe { avx512::unpool_row(top, bottom, g, dtop, dbottom) };
        return;
    }
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

/// The rows 16 windows at a time: the even and odd columns of 32 inputs split with one permute
/// each, `first_max`'s chain of strict `>` as compare masks and blends (a NaN compares false, as
/// in the scalar code), and in the backward the four picks interleaved back. Same bits as the
/// scalar rows.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// The convolutions' CPU check (AVX-512F and VL; these rows need only F).
    pub use crate::ops::conv_direct::available;

    /// Lanes below `l` (at most 16).
    fn lanes(l: usize) -> u16 {
        ((1u32 << l.min(16)) - 1) as u16
    }

    /// The four corners of windows k..k+16 of a row pair (lanes past `n` windows read as 0).
    #[target_feature(enable = "avx512f")]
    unsafe fn corners(top: &[f32], bottom: &[f32], k: usize, n: usize) -> [__m512; 4] {
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let rest = 2 * (n - k);
        let (m0, m1) = (lanes(rest), lanes(rest.saturating_sub(16)));
        let split = |row: &[f32]| {
            let p = row.as_ptr().add(2 * k);
            let (v0, v1) = (
                _mm512_maskz_loadu_ps(m0, p),
                _mm512_maskz_loadu_ps(m1, p.add(16)),
            );
            (
                _mm512_permutex2var_ps(v0, even, v1),
                _mm512_permutex2var_ps(v0, odd, v1),
            )
        };
        let (a, b) = split(top);
        let (c, d) = split(bottom);
        [a, b, c, d]
    }

    /// `first_max` lane by lane: the masks of the windows whose first maximum is b, c and d.
    #[target_feature(enable = "avx512f")]
    unsafe fn first_max(v: [__m512; 4]) -> (__m512, [__mmask16; 3]) {
        let [a, b, c, d] = v;
        let mb = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(b, a);
        let m = _mm512_mask_blend_ps(mb, a, b);
        let mc = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(c, m);
        let m = _mm512_mask_blend_ps(mc, m, c);
        let md = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(d, m);
        let m = _mm512_mask_blend_ps(md, m, d);
        (m, [mb, mc, md])
    }

    /// # Safety
    /// AVX-512F; `top` and `bottom` hold at least `2 * out.len()` floats.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn pool_row(top: &[f32], bottom: &[f32], out: &mut [f32]) {
        let n = out.len();
        for k in (0..n).step_by(16) {
            let (m, _) = first_max(corners(top, bottom, k, n));
            _mm512_mask_storeu_ps(out.as_mut_ptr().add(k), lanes(n - k), m);
        }
    }

    /// # Safety
    /// AVX-512F; `top`, `bottom`, `dtop` and `dbottom` hold at least `2 * g.len()` floats.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn unpool_row(
        top: &[f32],
        bottom: &[f32],
        g: &[f32],
        dtop: &mut [f32],
        dbottom: &mut [f32],
    ) {
        let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        let n = g.len();
        for k in (0..n).step_by(16) {
            let (_, [mb, mc, md]) = first_max(corners(top, bottom, k, n));
            let gv = _mm512_maskz_loadu_ps(lanes(n - k), g.as_ptr().add(k));
            // The first maximum is d where md, else c where mc, else b where mb, else a.
            let (s3, s2) = (md, mc & !md);
            let s1 = mb & !mc & !md;
            let s0 = !(mb | mc | md);
            let pick = |s: __mmask16| _mm512_maskz_mov_ps(s, gv);
            let rest = 2 * (n - k);
            let (m0, m1) = (lanes(rest), lanes(rest.saturating_sub(16)));
            let rows = [
                (dtop.as_mut_ptr(), pick(s0), pick(s1)),
                (dbottom.as_mut_ptr(), pick(s2), pick(s3)),
            ];
            for (row, p, q) in rows {
                let at = row.add(2 * k);
                _mm512_mask_storeu_ps(at, m0, _mm512_permutex2var_ps(p, lo, q));
                _mm512_mask_storeu_ps(at.add(16), m1, _mm512_permutex2var_ps(p, hi, q));
            }
        }
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
