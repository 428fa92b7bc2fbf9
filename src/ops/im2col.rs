//! Convolution geometry and the two memory passes around the GEMMs of `conv_cpu`: `im2col` (the
//! input patches of one image as a (Cin*kh*kw) x (Ho*Wo) matrix) and `col2im` (its adjoint, which
//! scatter-adds such a matrix back onto an image).
//!
//! Both work on one image at a time and write/read the matrix with a row stride `ld`, so several
//! images can sit side by side in one wider matrix (column `b*Ho*Wo + p` for image `b`).

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
        let s = self.stride;
        let ox0 = if self.pad_w > kj {
            (self.pad_w - kj).div_ceil(s).min(self.wo)
        } else {
            0
        };
        let ox1 = if self.w + self.pad_w > kj {
            ((self.w - 1 + self.pad_w - kj) / s + 1).min(self.wo)
        } else {
            0
        }
        .max(ox0);
        let ix0 = (ox0 * s + kj).saturating_sub(self.pad_w);
        (ox0, ox1, ix0)
    }

    /// The input row of output row `oy` and kernel row `ki`, if inside the image.
    #[inline]
    fn in_row(&self, oy: usize, ki: usize) -> Option<usize> {
        let iy = (oy * self.stride + ki).checked_sub(self.pad_h)?;
        (iy < self.h).then_some(iy)
    }
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
