//! Forward (and, on the flipped weight, input gradient) of stride-1 convolutions three taps wide,
//! with output channels in the vector lanes (AVX-512): the deep layers, where images are small
//! and channels many.
//!
//! y[co][q] = bias[co] + sum over taps k of w[co][k] * X_k[q], where X_k[q] is tap k's input under
//! output pixel q: `xp[offs[k] + oy*wq + ox]` in `Direct`'s image buffer with its horizontal
//! padding in place (`Direct::unmasked`), as in the channel-lane weight gradient (`conv_wgrad`).
//!
//! `conv_direct`'s forward puts 16 pixels of one channel in the lanes; a 4x4 or 8x8 image is then
//! one to four vectors, and each tap's weight is a broadcast per output channel. Here a register
//! tile holds NP = 6 pixels by NCOV = 4 vectors of 16 output channels: per tap, 4 weight loads
//! and 6 broadcasts of the input feed 24 FMAs. Each output sums the same
//! products in the same order (the bias, then tap 0, 1, ...) as `conv_direct`'s forward, so the
//! results are the same bits.
//!
//! Taps that land on the zero padding are skipped: the output pixels of an image are grouped into
//! tap classes (`TapClass`), those that read the same rows and columns of taps inside the image
//! (corners, edges, interior), and a tile takes its pixels from one class, across the images of a
//! chunk. On a 4x4 image with a 3x3 kernel and padding 1, 31 % of the products are with padding;
//! on 8x8, 16 % (docs/cpu-bench.md, "Padding skipped"). The products skipped are exact zeros, so
//! each sum is unchanged (but for the sign of an exact zero).
//!
//! The weights are packed per block of 16*NCOV channels, tap-major. Within a chunk of images a
//! class's rows of taps are cut into blocks of `ROWS_PER_BLOCK`, whose weights (up to 24 KiB)
//! stay in L1 while every pixel tile of the class passes: the tile's sums go to a pixel-major
//! buffer between blocks. At the end the buffer is transposed into the NCHW output.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use super::conv_chunks::image_chunks;
use super::conv_direct::Direct;
use super::conv_scratch::{with_scratch, with_weights};
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

/// Whether taps on the padding are skipped (benchmarks turn it off to compare).
static SKIP_PADDING: AtomicBool = AtomicBool::new(true);

/// Skips (`true`, the default) or computes the products of taps that land on the padding.
pub fn set_skip_padding(enabled: bool) {
    SKIP_PADDING.store(enabled, Ordering::Relaxed);
}

/// The channel-lane forward of one convolution.
#[derive(Clone, Debug)]
pub struct ChannelFwd {
    d: Direct,
    /// Output channels rounded up to NC.
    coutp: usize,
    /// The output pixels of an image grouped by the taps they read inside it.
    classes: Vec<TapClass>,
}

/// A row of taps read by a tap class: (r = ci * kh + ki, the buffer offset of its first tap
/// inside the image, the offset of that tap's weights in a block of packed weights).
type TapRow = (usize, usize, usize);

/// Output pixels of an image whose taps inside the image (not on its zero padding) are the same:
/// kernel rows `ki` and columns `kj`.
#[derive(Clone, Debug, PartialEq)]
struct TapClass {
    ki: Range<usize>,
    kj: Range<usize>,
    /// Output pixels (oy * Wo + ox) of the class.
    pixels: Vec<usize>,
    /// The rows of taps the class reads inside the image, in order of r.
    rows: Vec<TapRow>,
}

impl TapClass {
    fn new(d: &Direct, ki: Range<usize>, kj: Range<usize>, pixels: Vec<usize>) -> Self {
        let kh = d.g.kh;
        // A class with no columns inside reads no taps at all.
        let ki_inside = if kj.is_empty() { 0..0 } else { ki.clone() };
        let rows = (0..d.g.cin)
            .flat_map(|ci| ki_inside.clone().map(move |k| ci * kh + k))
            .map(|r| {
                let first = 3 * r + kj.start;
                (r, d.offs[first], first * NC)
            })
            .collect();
        Self {
            ki,
            kj,
            pixels,
            rows,
        }
    }
}

/// The tap classes of a convolution, in a fixed order: output pixels grouped by the kernel rows
/// and columns with which they read inside the image (`Geom::kernel_rows_inside`); a pixel
/// whose ranges are empty reads padding only (its class has no taps).
fn tap_classes(d: &Direct) -> Vec<TapClass> {
    let g = &d.g;
    let mut by_taps: BTreeMap<(usize, usize, usize, usize), Vec<usize>> = BTreeMap::new();
    for oy in 0..g.ho {
        let ki = g.kernel_rows_inside(oy);
        for ox in 0..g.wo {
            let kj = g.kernel_cols_inside(ox);
            by_taps
                .entry((ki.start, ki.end, kj.start, kj.end))
                .or_default()
                .push(oy * g.wo + ox);
        }
    }
    by_taps
        .into_iter()
        .map(|((a, b, c, e), pixels)| TapClass::new(d, a..b, c..e, pixels))
        .collect()
}

impl ChannelFwd {
    /// The channel-lane form of this convolution, when it applies: an AVX-512 CPU, stride 1 and
    /// a kernel three taps wide.
    pub fn new(g: &Geom) -> Option<Self> {
        let d = Direct::channel_lane(g)?;
        let coutp = g.cout.div_ceil(NC) * NC;
        let classes = tap_classes(&d);
        Some(Self { d, coutp, classes })
    }

    /// Whether this form beats the pixel-lane one (`conv_direct`): small images of many channels,
    /// where a 16-pixel vector is most of an image. With fewer than 128 input channels the packing
    /// and the transposes cost more than the tiles save (docs/cpu-bench.md, "The convolution
    /// paths' thresholds").
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
        // Per class, each output pixel (b, q) of a chunk, image-major: its offset in the chunk's
        // image buffer and its row of the pixel-major output. A chunk of nb images takes the
        // first nb * |class| of them.
        // With the skipping off (benchmarks), all pixels form one class of every tap.
        let whole;
        let classes = if SKIP_PADDING.load(Ordering::Relaxed) {
            &self.classes
        } else {
            whole = [TapClass::new(&self.d, 0..g.kh, 0..g.kw, (0..p).collect())];
            &whole[..]
        };
        let pixels: Vec<Vec<(usize, usize)>> = classes
            .iter()
            .map(|c| {
                (0..cb)
                    .flat_map(|b| {
                        c.pixels
                            .iter()
                            .map(move |&q| (b * img_xp + q / g.wo * wq + q % g.wo, b * p + q))
                    })
                    .collect()
            })
            .collect();
        with_weights(coutp * self.d.offs.len(), |wt| {
            self.pack_weights(w, flip, wt);
            let wt = &*wt;
            image_chunks(x, n, cb, img_in, img_out, |xs, nb, yc| {
                with_scratch(self.d.xp_len(nb) + nb * p * coutp, |s| {
                    let (xp, out) = s.split_at_mut(self.d.xp_len(nb));
                    self.d.fill_buffer(xs, nb, xp);
                    self.sums(xp, wt, &biasp, classes, nb, &pixels, out);
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
        let k = self.d.offs.len();
        let (cout, taps) = (self.d.g.cout, self.d.g.kh * self.d.g.kw);
        // A transpose of runs of taps that lie contiguous in w, one run per channel at a time
        // (so that no cache line of w is read twice): 16 taps of row co of w (Cout x K), or,
        // flipped, the kh*kw taps of (ci, co) in reverse.
        let run = if flip { taps } else { 16 };
        wt.par_chunks_mut(k * NC).enumerate().for_each(|(blk, b)| {
            for k0 in (0..k).step_by(run) {
                let k1 = (k0 + run).min(k);
                for l in 0..NC {
                    let co = blk * NC + l;
                    let mut put = |kk: usize, v: f32| b[kk * NC + l] = v;
                    if co >= cout {
                        (k0..k1).for_each(|kk| put(kk, 0.0));
                    } else if flip {
                        let at = (k0 / taps * cout + co) * taps;
                        let src = w[at..at + taps].iter().rev();
                        (k0..k1).zip(src).for_each(|(kk, &v)| put(kk, v));
                    } else {
                        let src = &w[co * k + k0..co * k + k1];
                        (k0..k1).zip(src).for_each(|(kk, &v)| put(kk, v));
                    }
                }
            }
        });
    }

    /// The sums of a chunk of `nb` images (buffer `xp`; per class of `classes`, the buffer
    /// offset and output row of each pixel, `pixels`) into `out` (pixels x Cout', pixel-major),
    /// starting from `biasp` (Cout').
    #[allow(clippy::too_many_arguments)]
    fn sums(
        &self,
        xp: &[f32],
        wt: &[f32],
        biasp: &[f32],
        classes: &[TapClass],
        nb: usize,
        pixels: &[Vec<(usize, usize)>],
        out: &mut [f32],
    ) {
        let (g, coutp) = (&self.d.g, self.coutp);
        assert!(xp.len() >= self.d.xp_len(nb) && out.len() >= nb * g.ho * g.wo * coutp);
        assert!(wt.len() >= coutp * self.d.offs.len() && biasp.len() == coutp);
        assert_eq!(pixels.len(), classes.len());
        #[cfg(target_arch = "x86_64")]
        {
            let npx = nb * g.ho * g.wo;
            // A class's pixels in this chunk: the first nb * |class| (image-major).
            let chunk_px: Vec<&[(usize, usize)]> = classes
                .iter()
                .zip(pixels)
                .map(|(class, all)| &all[..nb * class.pixels.len()])
                .collect();
            assert!(chunk_px.iter().all(|px| px.iter().all(|&(_, o)| o < npx)));
            let all_rows = g.cin * g.kh;
            for c0 in (0..coutp).step_by(NC) {
                let wblk = &wt[c0 * self.d.offs.len()..(c0 + NC) * self.d.offs.len()];
                // Blocks of rows of the whole kernel, so that a block's weights serve every
                // class's tiles while they are in L1; the first block starts from the bias
                // (also for a class with no taps inside, which gets the bias alone).
                for r0 in (0..all_rows.max(1)).step_by(ROWS_PER_BLOCK) {
                    let r1 = r0 + ROWS_PER_BLOCK;
                    for (class, px) in classes.iter().zip(&chunk_px) {
                        let rows = &class.rows;
                        let block = &rows[rows.partition_point(|t| t.0 < r0)
                            ..rows.partition_point(|t| t.0 < r1)];
                        if block.is_empty() && r0 > 0 {
                            continue;
                        }
                        let run = match class.kj.len() {
                            1 => kernel::<1>,
                            2 => kernel::<2>,
                            _ => kernel::<3>,
                        };
                        for tile in px.chunks(NP) {
                            // A short last tile repeats its last pixel (same value stored twice).
                            let at = |i: usize| tile[i.min(tile.len() - 1)];
                            // SAFETY: AVX-512 was checked in `new`. Input reads: a row's first
                            // tap inside plus j < |kj| plus a pixel's offset stay inside its
                            // image's buffer, as in the forward of `conv_direct`, for images
                            // b < nb within xp_len(nb) (checked above); weight reads: taps
                            // 3r + kj of this block of wt (NC floats each); out: pixel rows <
                            // nb * Ho * Wo (checked above) of Cout' floats, channels
                            // c0 + NC <= Cout'.
                            unsafe {
                                run(
                                    xp.as_ptr(),
                                    std::array::from_fn(|i| at(i).0),
                                    block,
                                    wblk.as_ptr(),
                                    (r0 == 0).then(|| biasp.as_ptr().add(c0)),
                                    out.as_mut_ptr().add(c0),
                                    std::array::from_fn(|i| at(i).1 * coutp),
                                );
                            }
                        }
                    }
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (xp, wt, biasp, classes, nb, pixels, out);
            unreachable!("AVX-512 kernel on a non-x86 CPU");
        }
    }
}

/// For NP pixels (buffer offsets `px`) and NCOV vectors of channels: starts from `init` (NC
/// floats: the bias, for the first block of rows) or from the sums in `out`, adds the products
/// of NJ taps of each row in `rows` (its index, the buffer offset of its first tap, the offset of
/// that tap's NC weights in `w`; the row's taps are consecutive in both), and stores the sums at
/// out[yo[i] + 16v ..][..16].
///
/// # Safety
/// The CPU has AVX-512F/VL; every read and write named above is in bounds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl")]
#[allow(clippy::needless_range_loop)]
unsafe fn kernel<const NJ: usize>(
    xp: *const f32,
    px: [usize; NP],
    rows: &[TapRow],
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
    for &(_, ro, wo) in rows {
        let wr = w.add(wo);
        for j in 0..NJ {
            let wv: [__m512; NCOV] =
                std::array::from_fn(|v| _mm512_loadu_ps(wr.add(j * NC + 16 * v)));
            for i in 0..NP {
                let x = _mm512_set1_ps(*base[i].add(ro + j));
                for v in 0..NCOV {
                    acc[i][v] = _mm512_fmadd_ps(x, wv[v], acc[i][v]);
                }
            }
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

    /// A 4x4 image with a 3x3 kernel and padding 1: corners read 2x2 taps, edges 2x3 or 3x2,
    /// the interior all 9; every pixel is in one class; the rows are those of its kernel rows.
    #[test]
    fn tap_classes_of_a_small_image() {
        let g = Geom::new(1, 2, 4, 4, 64, 3, 3, 1, 1, 1).unwrap();
        let Some(d) = Direct::channel_lane(&g) else {
            return;
        };
        let classes = tap_classes(&d);
        let find = |ki: Range<usize>, kj: Range<usize>| {
            classes
                .iter()
                .find(|c| c.ki == ki && c.kj == kj)
                .map(|c| c.pixels.clone())
        };
        assert_eq!(find(1..3, 1..3), Some(vec![0]));
        assert_eq!(find(0..2, 0..2), Some(vec![15]));
        assert_eq!(find(1..3, 0..3), Some(vec![1, 2]));
        assert_eq!(find(0..3, 1..3), Some(vec![4, 8]));
        assert_eq!(find(0..3, 0..3), Some(vec![5, 6, 9, 10]));
        assert_eq!(classes.len(), 9);
        let mut all: Vec<usize> = classes.iter().flat_map(|c| c.pixels.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..16).collect::<Vec<_>>());
        let corner = classes.iter().find(|c| c.ki == (1..3)).unwrap();
        // Rows (ci, ki) for ci in 0..2, ki in 1..3; the first tap inside is column kj.start.
        let rs: Vec<usize> = corner.rows.iter().map(|r| r.0).collect();
        assert_eq!(rs, vec![1, 2, 4, 5]);
        for &(r, off, w) in &corner.rows {
            assert_eq!(off, d.offs[3 * r + corner.kj.start]);
            assert_eq!(w, (3 * r + corner.kj.start) * NC);
        }
    }

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
            // VGG-16's last block: every pixel its own class of 2x2 taps.
            Geom::new(3, 130, 2, 2, 70, 3, 3, 1, 1, 1),
            // Padding wider than the kernel: border pixels read padding only (bias alone).
            Geom::new(2, 6, 1, 2, 9, 3, 3, 1, 3, 3),
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
