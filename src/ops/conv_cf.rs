//! Forward (and, on the flipped weight, input gradient) of stride-1 convolutions three taps wide,
//! with output channels in the vector lanes (AVX-512): the deep layers, where images are small
//! and channels many.
//!
//! y[co][q] = bias[co] + sum over taps k of w[co][k] * X_k[q], where X_k[q] is tap k's input under
//! output pixel q: `xp[offs[k] + oy*wq + ox]` in `Direct`'s image buffer with its horizontal
//! padding in place (`Direct::unmasked`), as in the channel-lane weight gradient (`conv_dw`).
//!
//! `conv_direct`'s forward puts 16 pixels of one channel in the lanes; a 4x4 or 8x8 image is then
//! one to four vectors, and each tap's weight is a broadcast per output channel. Here a register
//! tile holds NP = 6 pixels by NCOV = 4 vectors of 16 output channels: per tap, 4 weight loads
//! and 6 broadcasts of the input feed 24 FMAs. Each output sums the same
//! products in the same order (the bias, then tap 0, 1, ...) as `conv_direct`'s forward, so the
//! results are the same bits.
//!
//! The weights are packed per block of 16*NCOV channels, tap-major. Within a chunk of images the
//! taps are cut into blocks of `ROWS_PER_BLOCK` rows of three, whose weights (24 KiB) stay in L1
//! while every pixel tile of the chunk passes: the tile's sums go to a pixel-major buffer between
//! blocks. At the end the buffer is transposed into the NCHW output.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use rayon::prelude::*;

use super::conv_cpu::{image_chunks, with_scratch, with_weights};
use super::conv_direct::Direct;
use super::im2col::Geom;

/// Rows of three taps per block of the tap loop: 32 rows of 64 channels are 24 KiB of weights.
const ROWS_PER_BLOCK: usize = 32;

/// Floats of the pixel-major output buffer per chunk of images (512 KiB, in L2).
const CHUNK_OUT_FLOATS: usize = 128 << 10;

/// Channel vectors per register tile (64 channels).
const NCOV: usize = 4;
/// Pixels per register tile (NP * NCOV = 24 accumulators).
const NP: usize = 6;
/// Channels per block of packed weights.
const NC: usize = 16 * NCOV;

/// The channel-lane forward of one convolution.
#[derive(Clone, Debug)]
pub struct ChannelFwd {
    d: Direct,
    /// Output channels rounded up to NC.
    coutp: usize,
}

impl ChannelFwd {
    /// The channel-lane form of this convolution, when it applies: an AVX-512 CPU, stride 1 and
    /// a kernel three taps wide.
    pub fn new(g: &Geom) -> Option<Self> {
        let d = Direct::channel_lane(g)?;
        let coutp = g.cout.div_ceil(NC) * NC;
        Some(Self { d, coutp })
    }

    /// Whether this form beats the pixel-lane one (`conv_direct`): small images of many channels,
    /// where a 16-pixel vector is most of an image. Measured at batch 128 on 2 threads
    /// (examples/bench_conv_dw.rs, pixel-lane / channel-lane time, forward and input gradient,
    /// alternated): VGG-16's 512->512 at 4x4 1.18 and 1.23, 256->512 at 4x4 1.08 and 0.95,
    /// 256->256 at 8x8 1.03 and 1.07, 128->256 at 8x8 1.07 and 1.11; against it 128->128 at
    /// 16x16 0.91 and 0.93, 64->64 at 32x32 0.94 and 0.86, and ResNet-20's 64->64 at 8x8 0.58 and
    /// 0.57 (with 64 channels the packing and the transposes cost more than the tiles save).
    pub fn pays(&self) -> bool {
        // cout >= 64: at least one full block of NC channels.
        let g = &self.d.g;
        g.ho * g.wo <= 64 && g.cin >= 128 && g.cout >= 64
    }

    /// The convolution computing the input gradient of `g` (stride 1): the same form on dY with
    /// the weight flipped and transposed (`forward`'s `flip`).
    pub fn transposed(g: &Geom) -> Option<Self> {
        if g.stride != 1 || g.pad_h >= g.kh || g.pad_w >= g.kw {
            return None;
        }
        let (ph, pw) = (g.kh - 1 - g.pad_h, g.kw - 1 - g.pad_w);
        Self::new(&Geom::new(
            g.n, g.cout, g.ho, g.wo, g.cin, g.kh, g.kw, 1, ph, pw,
        )?)
    }

    /// y (n x Cout x Ho x Wo) of `n` images `x` (n x Cin x H x W), weight `w` (Cout x Cin x kh x
    /// kw; with `flip`, the weight (Cin x Cout x kh x kw) of the convolution whose input gradient
    /// this is) and `bias` (Cout).
    pub fn forward(
        &self,
        n: usize,
        x: &[f32],
        w: &[f32],
        flip: bool,
        bias: Option<&[f32]>,
    ) -> Vec<f32> {
        let g = &self.d.g;
        let (p, coutp) = (g.ho * g.wo, self.coutp);
        let (img_in, img_out) = (g.cin * g.h * g.w, g.cout * p);
        assert_eq!(x.len(), n * img_in, "conv input size");
        assert_eq!(w.len(), g.cout * self.d.offs.len(), "conv weight size");
        assert!(bias.is_none_or(|b| b.len() == g.cout), "conv bias size");
        let mut biasp = vec![0f32; coutp];
        if let Some(b) = bias {
            biasp[..g.cout].copy_from_slice(b);
        }
        let threads = rayon::current_num_threads().max(1);
        let cb = (CHUNK_OUT_FLOATS / (p * coutp).max(1)).clamp(1, n.div_ceil(2 * threads).max(1));
        let (img_xp, wq) = (self.d.img_xp(), self.d.wq);
        // Offset of each output pixel (b, oy, ox) of a chunk in its image buffer.
        let pixels: Vec<usize> = (0..cb * p)
            .map(|i| (i / p) * img_xp + (i % p) / g.wo * wq + i % g.wo)
            .collect();
        with_weights(coutp * self.d.offs.len(), |wt| {
            self.pack_weights(w, flip, wt);
            let wt = &*wt;
            image_chunks(x, n, cb, img_in, img_out, |xs, nb, yc| {
                with_scratch(self.d.xp_len(nb) + nb * p * coutp, |s| {
                    let (xp, out) = s.split_at_mut(self.d.xp_len(nb));
                    self.d.fill_buffer(xs, nb, xp);
                    self.sums(xp, wt, &biasp, &pixels[..nb * p], out);
                    // Pixel-major to NCHW: every element of the chunk.
                    for (b, img) in yc.chunks_exact_mut(img_out).enumerate() {
                        for (co, plane) in img.chunks_exact_mut(p).enumerate() {
                            for (q, v) in plane.iter_mut().enumerate() {
                                v.write(out[(b * p + q) * coutp + co]);
                            }
                        }
                    }
                });
            })
        })
    }

    /// Packs `w` as blocks of NC channels, each K x NC (channels past Cout zero); with
    /// `flip`, `w` is (Cin x Cout x kh x kw) and this convolution's (co, ci, i, j) is
    /// w[ci][co][kh-1-i][kw-1-j], as `Direct::pack_weights`.
    fn pack_weights(&self, w: &[f32], flip: bool, wt: &mut [f32]) {
        let (k, kh, kw) = (self.d.offs.len(), self.d.g.kh, self.d.g.kw);
        let (cin, cout) = (self.d.g.cin, self.d.g.cout);
        wt.par_chunks_mut(k * NC).enumerate().for_each(|(blk, b)| {
            for kk in 0..k {
                let (ci, i, j) = (kk / (kh * kw), kk / kw % kh, kk % kw);
                for l in 0..NC {
                    let co = blk * NC + l;
                    b[kk * NC + l] = if co >= cout {
                        0.0
                    } else if flip {
                        w[((ci * cout + co) * kh + kh - 1 - i) * kw + kw - 1 - j]
                    } else {
                        w[((co * cin + ci) * kh + i) * kw + j]
                    };
                }
            }
        });
    }

    /// The sums of a chunk (buffer `xp`, the buffer offset of each output pixel `pixels`) into
    /// `out` (pixels x Cout', pixel-major), starting from `biasp` (Cout').
    fn sums(&self, xp: &[f32], wt: &[f32], biasp: &[f32], pixels: &[usize], out: &mut [f32]) {
        let (g, coutp) = (&self.d.g, self.coutp);
        let nb = pixels.len() / (g.ho * g.wo);
        assert!(xp.len() >= self.d.xp_len(nb) && out.len() >= pixels.len() * coutp);
        assert!(wt.len() >= coutp * self.d.offs.len() && biasp.len() == coutp);
        #[cfg(target_arch = "x86_64")]
        {
            let rows = self.d.offs.len() / 3;
            let row_offs: Vec<usize> = (0..rows).map(|r| self.d.offs[3 * r]).collect();
            let npx = pixels.len();
            for c0 in (0..coutp).step_by(NC) {
                let wblk = &wt[c0 * rows * 3..(c0 + NC) * rows * 3];
                for r0 in (0..rows).step_by(ROWS_PER_BLOCK) {
                    let r1 = (r0 + ROWS_PER_BLOCK).min(rows);
                    for t0 in (0..npx).step_by(NP) {
                        // A short last tile repeats its last pixel (same value stored twice).
                        let at: [usize; NP] = std::array::from_fn(|i| (t0 + i).min(npx - 1));
                        // SAFETY: AVX-512 was checked in `new`. Input reads: row offsets plus a
                        // pixel's offset (+2 for the third tap) stay inside its image's buffer,
                        // as in the forward of `conv_direct`, for images b < nb within
                        // xp_len(nb) (checked above); weight reads: rows r0..r1 of this block of
                        // wt; out: pixel rows < npx of Cout' floats, channels c0 + NC <= Cout'
                        // (checked above).
                        unsafe {
                            kernel(
                                xp.as_ptr(),
                                std::array::from_fn(|i| pixels[at[i]]),
                                &row_offs[r0..r1],
                                wblk.as_ptr().add(r0 * 3 * NC),
                                (r0 == 0).then(|| biasp.as_ptr().add(c0)),
                                out.as_mut_ptr().add(c0),
                                std::array::from_fn(|i| at[i] * coutp),
                            );
                        }
                    }
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (xp, wt, biasp, nb, out);
            unreachable!("AVX-512 kernel on a non-x86 CPU");
        }
    }
}

/// For NP pixels (buffer offsets `px`) and NCOV vectors of channels: starts from `init` (NC
/// floats: the bias, for the first block of rows) or from the sums in `out`, adds the products
/// of the rows of three taps at `rows` (weights `w`: 3 x NC floats per row), and stores the sums
/// at out[yo[i] + 16v ..][..16].
///
/// # Safety
/// The CPU has AVX-512F/VL; every read and write named above is in bounds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl")]
#[allow(clippy::needless_range_loop)]
unsafe fn kernel(
    xp: *const f32,
    px: [usize; NP],
    rows: &[usize],
    w: *const f32,
    init: Option<*const f32>,
    out: *mut f32,
    yo: [usize; NP],
) {
    let mut acc = [[_mm512_setzero_ps(); NCOV]; NP];
    for i in 0..NP {
        for v in 0..NCOV {
            acc[i][v] = match init {
                Some(b) => _mm512_loadu_ps(b.add(16 * v)),
                None => _mm512_loadu_ps(out.add(yo[i] + 16 * v)),
            };
        }
    }
    let base: [*const f32; NP] = std::array::from_fn(|i| xp.add(px[i]));
    let mut wr = w;
    for &ro in rows {
        for j in 0..3 {
            let wv: [__m512; NCOV] = std::array::from_fn(|v| _mm512_loadu_ps(wr.add(16 * v)));
            for i in 0..NP {
                let x = _mm512_set1_ps(*base[i].add(ro + j));
                for v in 0..NCOV {
                    acc[i][v] = _mm512_fmadd_ps(x, wv[v], acc[i][v]);
                }
            }
            wr = wr.add(16 * NCOV);
        }
    }
    for i in 0..NP {
        for v in 0..NCOV {
            _mm512_storeu_ps(out.add(yo[i] + 16 * v), acc[i][v]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::conv_direct;
    use super::super::conv_direct::tests::{forward_all, naive, uniform};
    use super::*;

    /// Channel counts off the 64-channel blocks, tap counts off the blocks of rows, odd images,
    /// no and double padding, tiles cut short: the same values as the pixel-lane forward (the
    /// same products summed in the same order), with and without bias and flipped weights, and
    /// close to a plain loop.
    #[test]
    fn same_values_as_the_pixel_lane_forward() {
        if !conv_direct::available() {
            return;
        }
        let geoms = [
            Geom::new(3, 40, 4, 4, 70, 3, 3, 1, 1, 1),
            Geom::new(2, 11, 5, 7, 64, 3, 3, 1, 1, 1),
            Geom::new(5, 33, 8, 8, 129, 3, 3, 1, 1, 1),
            Geom::new(3, 12, 6, 6, 9, 3, 3, 1, 0, 0),
            Geom::new(2, 7, 3, 3, 20, 3, 3, 1, 2, 2),
        ];
        let mut rnd = uniform(11);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for g in geoms.into_iter().map(Option::unwrap) {
            let x: Vec<f32> = (0..g.n * g.cin * g.h * g.w).map(|_| rnd()).collect();
            let w: Vec<f32> = (0..g.cout * g.cin * 9).map(|_| rnd()).collect();
            let bias: Vec<f32> = (0..g.cout).map(|_| rnd()).collect();
            let c = ChannelFwd::new(&g).expect("channel-lane form");
            for (flip, b) in [(false, Some(&bias[..])), (false, None), (true, None)] {
                let got = pool.install(|| c.forward(g.n, &x, &w, flip, b));
                let same = forward_all(
                    &Direct::new(&g, None).expect("direct form"),
                    g.n,
                    &x,
                    &w,
                    flip,
                    b,
                );
                // Flipped: `w` is the (Cin' x Cout' x 3 x 3) weight of the convolution whose
                // input gradient this is (Cin' = g.cout); this one's (co, ci, i, j) is
                // w[ci][co][2-i][2-j].
                let weight: Vec<f32> = if flip {
                    (0..w.len())
                        .map(|k| {
                            let (co, ci, i, j) = (k / (9 * g.cin), k / 9 % g.cin, k / 3 % 3, k % 3);
                            w[((ci * g.cout + co) * 3 + 2 - i) * 3 + 2 - j]
                        })
                        .collect()
                } else {
                    w.clone()
                };
                let zeros = vec![0f32; g.cout];
                let want = naive(&g, &x, &weight, b.unwrap_or(&zeros));
                for i in 0..got.len() {
                    assert!(
                        got[i] == same[i],
                        "{g:?} flip {flip}: y[{i}] = {}, pixel lanes {}",
                        got[i],
                        same[i]
                    );
                    // An f32 sum of at most 40*9 products of values in (-0.5, 0.5) against f64:
                    // rounding near 360 * 2^-24 * 0.25 (about 5e-6); a wrong tap or channel is
                    // off by a product, about 0.1.
                    assert!(
                        (got[i] - want[i]).abs() <= 2e-5 * (1.0 + want[i].abs()),
                        "{g:?} flip {flip}: y[{i}] = {}, want {}",
                        got[i],
                        want[i]
                    );
                }
            }
        }
    }
}
