//! Convolution geometry and the memory passes around the GEMMs of `conv_cpu`: `im2col` (the
//! input patches of one image as a (Cin*kh*kw) x (Ho*Wo) matrix), `col2im` (its adjoint, which
//! scatter-adds such a matrix back onto an image) and `transpose_planes` (an output gradient
//! pixel-major, as the weight gradient's GEMM and the channel-lane kernel read it).
//!
//! `im2col` and `col2im` work on one image at a time and write/read the matrix with a row stride
//! `ld`, so several images can sit side by side in one wider matrix (column `b*Ho*Wo + p` for
//! image `b`).

use std::ops::Range;

/// The shape of one 2-D convolution (NCHW input, OIHW weight, dilation 1, groups 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad_h: usize,
    pub pad_w: usize,
    pub ho: usize,
    pub wo: usize,
}

impl Geom {
    /// The geometry, or `None` when the kernel does not fit the padded input or stride is 0.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        n: usize,
        cin: usize,
        h: usize,
        w: usize,
        cout: usize,
        kh: usize,
        kw: usize,
        stride: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> Option<Self> {
        if stride == 0 || kh == 0 || kw == 0 || h + 2 * pad_h < kh || w + 2 * pad_w < kw {
            return None;
        }
        let ho = (h + 2 * pad_h - kh) / stride + 1;
        let wo = (w + 2 * pad_w - kw) / stride + 1;
        Some(Self {
            n,
            cin,
            h,
            w,
            cout,
            kh,
            kw,
            stride,
            pad_h,
            pad_w,
            ho,
            wo,
        })
    }

    /// Rows of the patch matrix: Cin*kh*kw.
    pub fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }

    /// Output pixels per image: Ho*Wo.
    pub fn p(&self) -> usize {
        self.ho * self.wo
    }

    /// Input pixels per image: H*W.
    pub fn hw(&self) -> usize {
        self.h * self.w
    }

    /// A 1x1 kernel with stride 1 and no padding: the patch matrix is the image itself.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad_h == 0 && self.pad_w == 0
    }

    /// For kernel column `kj`: the output columns `ox0..ox1` whose input column lies inside the
    /// image, and the input column of `ox0`.
    fn valid_cols(&self, kj: usize) -> (usize, usize, usize) {
        let cols = outputs_inside(kj, self.stride, self.pad_w, self.w, self.wo);
        let ix0 = (cols.start * self.stride + kj).saturating_sub(self.pad_w);
        (cols.start, cols.end, ix0)
    }

    /// The output rows whose input row for kernel row `ki` lies inside the image (not on the
    /// padding).
    pub fn output_rows_inside(&self, ki: usize) -> Range<usize> {
        outputs_inside(ki, self.stride, self.pad_h, self.h, self.ho)
    }

    /// The kernel rows with which output row `oy` reads inside the image.
    pub fn kernel_rows_inside(&self, oy: usize) -> Range<usize> {
        taps_inside(oy, self.stride, self.pad_h, self.h, self.kh)
    }

    /// The kernel columns with which output column `ox` reads inside the image.
    pub fn kernel_cols_inside(&self, ox: usize) -> Range<usize> {
        taps_inside(ox, self.stride, self.pad_w, self.w, self.kw)
    }

    /// The input row of output row `oy` and kernel row `ki`, if inside the image.
    #[inline]
    fn in_row(&self, oy: usize, ki: usize) -> Option<usize> {
        let iy = (oy * self.stride + ki).checked_sub(self.pad_h)?;
        (iy < self.h).then_some(iy)
    }
}

/// Along one axis (input `size`, padding `pad`, stride `s`), output o and kernel offset t read
/// input o*s + t - pad: the outputs o < `outs` for which that is inside 0..size, given t.
fn outputs_inside(t: usize, s: usize, pad: usize, size: usize, outs: usize) -> Range<usize> {
    let lo = pad.saturating_sub(t).div_ceil(s).min(outs);
    let hi = match (size + pad).checked_sub(t + 1) {
        Some(last) => (last / s + 1).min(outs),
        None => 0,
    };
    lo..hi.max(lo)
}

/// As `outputs_inside`, the kernel offsets t < `k` for which output o reads inside 0..size.
fn taps_inside(o: usize, s: usize, pad: usize, size: usize, k: usize) -> Range<usize> {
    let lo = pad.saturating_sub(o * s).min(k);
    lo..(size + pad).saturating_sub(o * s).clamp(lo, k)
}

/// Writes the patches of one image `x` (Cin x H x W) into `col`: element (k, p) at `col[k*ld + p]`
/// for k = (ci*kh + ki)*kw + kj < Cin*kh*kw and p = oy*Wo + ox < Ho*Wo; zero where the patch
/// reaches into the padding.
pub fn im2col(g: &Geom, x: &[f32], col: &mut [f32], ld: usize) {
    let (p, wo, hw, s) = (g.p(), g.wo, g.hw(), g.stride);
    debug_assert!(x.len() >= g.cin * hw);
    for ci in 0..g.cin {
        let xc = &x[ci * hw..(ci + 1) * hw];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let k = (ci * g.kh + ki) * g.kw + kj;
                let row = &mut col[k * ld..k * ld + p];
                let (ox0, ox1, ix0) = g.valid_cols(kj);
                let len = ox1 - ox0;
                for (oy, r) in row.chunks_exact_mut(wo).enumerate() {
                    match g.in_row(oy, ki) {
                        None => r.fill(0.0),
                        Some(iy) => {
                            r[..ox0].fill(0.0);
                            r[ox1..].fill(0.0);
                            if len == 0 {
                                continue;
                            }
                            let xr = &xc[iy * g.w + ix0..];
                            let dst = &mut r[ox0..ox1];
                            if s == 1 {
                                dst.copy_from_slice(&xr[..len]);
                            } else {
                                for (j, d) in dst.iter_mut().enumerate() {
                                    *d = xr[j * s];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of `im2col`: adds element (k, p) of `col` (at `col[k*ld + p]`) onto the input pixel
/// it was read from in `dx` (Cin x H x W); entries that came from the padding are dropped.
pub fn col2im_add(g: &Geom, col: &[f32], ld: usize, dx: &mut [f32]) {
    let (p, wo, hw, s) = (g.p(), g.wo, g.hw(), g.stride);
    debug_assert!(dx.len() >= g.cin * hw);
    for ci in 0..g.cin {
        let dc = &mut dx[ci * hw..(ci + 1) * hw];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let k = (ci * g.kh + ki) * g.kw + kj;
                let row = &col[k * ld..k * ld + p];
                let (ox0, ox1, ix0) = g.valid_cols(kj);
                let len = ox1 - ox0;
                for (oy, r) in row.chunks_exact(wo).enumerate() {
                    if let (Some(iy), true) = (g.in_row(oy, ki), len > 0) {
                        let src = &r[ox0..ox1];
                        let base = iy * g.w + ix0;
                        if s == 1 {
                            for (d, v) in dc[base..base + len].iter_mut().zip(src) {
                                *d += *v;
                            }
                        } else {
                            for (j, v) in src.iter().enumerate() {
                                dc[base + j * s] += *v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Transposes the (Cout x P) planes of `nb` images of `dy` into `dst` (nb*P rows of `ld` >= Cout
/// floats): row `b*P + q` holds the Cout values of pixel q of image b, then zeros up to `ld`.
pub(super) fn transpose_planes(
    dy: &[f32],
    nb: usize,
    cout: usize,
    p: usize,
    ld: usize,
    dst: &mut [f32],
) {
    const TILE: usize = 64;
    assert!(ld >= cout);
    let dst = &mut dst[..nb * p * ld];
    if ld > cout {
        for row in dst.chunks_exact_mut(ld) {
            row[cout..].fill(0.0);
        }
    }
    for b in 0..nb {
        let src = &dy[b * cout * p..(b + 1) * cout * p];
        let out = &mut dst[b * p * ld..(b + 1) * p * ld];
        for q0 in (0..p).step_by(TILE) {
            let q1 = (q0 + TILE).min(p);
            for co in 0..cout {
                let row = &src[co * p + q0..co * p + q1];
                for (j, v) in row.iter().enumerate() {
                    out[(q0 + j) * ld + co] = *v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every range against the definition (the input index o*s + t - pad inside 0..size), on
    /// strides 1-3, no to wide padding, kernels larger than the image.
    #[test]
    fn ranges_inside_the_image_match_their_definition() {
        for (h, k, s, pad) in [
            (4, 3, 1, 1),
            (8, 3, 1, 0),
            (1, 3, 1, 3),
            (2, 3, 1, 1),
            (7, 5, 2, 2),
            (9, 3, 3, 1),
            (3, 3, 2, 3),
        ] {
            let g = Geom::new(1, 1, h, h, 1, k, k, s, pad, pad).unwrap();
            let reads = |o: usize, t: usize| (o * s + t).checked_sub(pad).is_some_and(|i| i < h);
            for t in 0..k {
                let want: Vec<usize> = (0..g.ho).filter(|&o| reads(o, t)).collect();
                assert_eq!(
                    g.output_rows_inside(t).collect::<Vec<_>>(),
                    want,
                    "{g:?} t {t}"
                );
                let (o0, o1, i0) = g.valid_cols(t);
                assert_eq!((o0..o1).collect::<Vec<_>>(), want, "{g:?} t {t}");
                if o0 < o1 {
                    assert_eq!(i0, o0 * s + t - pad);
                }
            }
            for o in 0..g.ho {
                let want: Vec<usize> = (0..k).filter(|&t| reads(o, t)).collect();
                assert_eq!(
                    g.kernel_rows_inside(o).collect::<Vec<_>>(),
                    want,
                    "{g:?} o {o}"
                );
                assert_eq!(
                    g.kernel_cols_inside(o).collect::<Vec<_>>(),
                    want,
                    "{g:?} o {o}"
                );
            }
        }
    }
}
