//! Weight gradient of stride-1 convolutions three taps wide, with output channels in the vector
//! lanes (AVX-512).
//!
//! dW[co][k] = sum over images and output pixels q = (oy, ox) of dY[co][q] * X_k[q], where X_k[q]
//! is tap k's input under pixel q: `xp[offs[k] + oy*wq + ox]` in `Direct`'s image buffer laid out
//! with its horizontal padding (`Direct::unmasked`).
//!
//! `conv_direct`'s weight gradient puts 16 pixels in the lanes. It must sum the lanes at the end
//! of every call, which for small images (a 4x4 image is one vector) costs more than the products,
//! and it streams every channel pair's data through the cache separately. Here the lanes hold 16
//! output channels of one pixel (dY transposed pixel-major per chunk of images) and each tap's
//! input is one broadcast. A register tile of NCOV channel vectors by NR rows of 3 taps
//! accumulates over every pixel of a chunk: NCOV loads and 3*NR broadcasts per 3*NR*NCOV FMAs,
//! like a GEMM microkernel, with no lane sums and no patch matrix. The tile's sums are added once
//! per chunk into a partial kept in tile order (24 vectors per tile, see `unpack`); Cout' is Cout
//! rounded up to 16.
//!
//! Chunks hold as many images as keep their transposed gradient (read once per row tile) near
//! 512 KiB, in L2. Threads take contiguous groups of images, one partial each, summed at the end.
//!
//! The tiles take the rows kernel row by kernel row (`row_order`: all input channels of ki = 0,
//! then of ki = 1, ...), so that the rows of a tile share ki, and such a tile skips the output
//! pixels whose input row ki lands on the vertical padding: their products are zeros. On a 4x4
//! image with a 3x3 kernel and padding 1 that is 1/6 of the products, on 8x8 1/12. The sums are
//! unchanged (but for the sign of an exact zero).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;
use std::ops::Range;

use rayon::prelude::*;

use super::conv_chunks::grouped_partials;
use super::conv_direct::Direct;
use super::conv_scratch::with_scratch;
use super::im2col::{transpose_planes, Geom};
use super::input_map::BnReluInput;

/// Floats of one register tile's sums: 24 vectors (NCOV * NR * 3 = 24 for every tile).
const TILE_FLOATS: usize = 24 * 16;

/// Floats of transposed output gradient per chunk (512 KiB).
const CHUNK_DYT_FLOATS: usize = 128 << 10;

/// Largest partial sums (bytes, all groups together) for which the batch is cut into more groups
/// than threads (which evens out a thread slowed down by other work).
const MAX_EXTRA_PARTIAL_BYTES: usize = 16 << 20;

/// The channel-lane weight gradient of one convolution.
#[derive(Clone, Debug)]
pub struct ChannelWgrad {
    d: Direct,
    /// Output channels rounded up to 16: the row stride of the transposed gradient and partials.
    coutp: usize,
    /// Channel vectors per register tile.
    ncov: usize,
    /// The rows of three taps (r = ci * kh + ki) in tile order (`row_order`).
    order: Vec<usize>,
}

/// Rows of three taps, r = ci * kh + ki, kernel row by kernel row: (ci, ki) for ci in 0..Cin
/// for ki = 0, then ki = 1, ...
fn row_order(g: &Geom) -> Vec<usize> {
    (0..g.kh)
        .flat_map(|ki| (0..g.cin).map(move |ci| ci * g.kh + ki))
        .collect()
}

impl ChannelWgrad {
    /// The channel-lane form of this convolution's weight gradient, when it applies: an AVX-512
    /// CPU, stride 1 and a kernel three taps wide.
    pub fn new(g: &Geom) -> Option<Self> {
        let d = Direct::channel_lane(g)?;
        let coutp = g.cout.div_ceil(16) * 16;
        let ncov = match coutp {
            c if c % 64 == 0 => 4,
            c if c % 32 == 0 => 2,
            _ => 1,
        };
        let order = row_order(g);
        Some(Self {
            d,
            coutp,
            ncov,
            order,
        })
    }

    /// dW (Cout x Cin*kh*3) of `n` images: `x` (n x Cin x H x W) read through `map` if given,
    /// `dy` (n x Cout x Ho x Wo).
    pub fn weight_grad(
        &self,
        n: usize,
        x: &[f32],
        dy: &[f32],
        map: Option<&BnReluInput>,
    ) -> Vec<f32> {
        let g = &self.d.g;
        let (p, coutp) = (g.ho * g.wo, self.coutp);
        let (img_in, img_out) = (g.cin * g.h * g.w, g.cout * p);
        assert_eq!(x.len(), n * img_in, "conv input size");
        assert_eq!(dy.len(), n * img_out, "conv output-gradient size");
        let part_len = self.part_len();
        let threads = rayon::current_num_threads().max(1);
        let per_thread = if part_len * 4 * 4 * threads <= MAX_EXTRA_PARTIAL_BYTES {
            4
        } else {
            1
        };
        let groups = (threads * per_thread).min(n).max(1);
        let cb = (CHUNK_DYT_FLOATS / (p * coutp).max(1)).clamp(1, n.div_ceil(groups).max(1));
        // Offset of each output pixel (b, oy, ox) of a chunk in its image buffer.
        let (img_xp, wq) = (self.d.img_xp(), self.d.wq);
        let pixels: Vec<usize> = (0..cb * p)
            .map(|i| (i / p) * img_xp + (i % p) / g.wo * wq + i % g.wo)
            .collect();
        // Per kernel row ki, the output rows whose input row ki is inside the image.
        let inside: Vec<Range<usize>> = (0..g.kh).map(|ki| g.output_rows_inside(ki)).collect();
        let parts = grouped_partials(n, groups, cb, part_len, |b0, nb, part| {
            let xs = &x[b0 * img_in..(b0 + nb) * img_in];
            let dys = &dy[b0 * img_out..(b0 + nb) * img_out];
            // Per ki, the runs of the chunk's pixels (start, end) it reads inside the images:
            // one per image, merged where they meet.
            let runs: Vec<Vec<(usize, usize)>> = inside
                .iter()
                .map(|rows| {
                    let mut runs: Vec<(usize, usize)> = Vec::with_capacity(nb);
                    for b in 0..nb {
                        let (s, e) = (b * p + rows.start * g.wo, b * p + rows.end * g.wo);
                        match runs.last_mut() {
                            Some(last) if last.1 == s => last.1 = e,
                            _ if s < e => runs.push((s, e)),
                            _ => {}
                        }
                    }
                    runs
                })
                .collect();
            with_scratch(self.d.xp_len(nb) + nb * p * coutp, |s| {
                let (xp, dyt) = s.split_at_mut(self.d.xp_len(nb));
                self.d.fill_buffer_mapped(xs, nb, xp, map);
                transpose_planes(dys, nb, g.cout, p, coutp, dyt);
                self.accumulate(xp, dyt, &pixels[..nb * p], &runs, part);
            });
        });
        self.unpack(&parts, groups)
    }

    /// Rows of three taps, (ci, ki) pairs, per register tile.
    fn nr(&self) -> usize {
        8 / self.ncov
    }

    /// Floats of a partial: one block of `TILE_FLOATS` per (row tile, channel block).
    fn part_len(&self) -> usize {
        let rows = self.d.offs.len() / 3;
        rows.div_ceil(self.nr()) * (self.coutp / (16 * self.ncov)) * TILE_FLOATS
    }

    /// dW (Cout x K): the sum of `groups` partials in tile order. Block (row tile t, channel
    /// block c) at (t * blocks + c) * TILE_FLOATS holds vector ((3r + j) * NCOV + v) = channels
    /// c*16*NCOV + 16v.. of tap 3*order[t*NR + r] + j; rows past the last (repeats) are dropped.
    /// Channel blocks run in parallel, each writing its own rows of dW in order of taps, so the
    /// rows it writes stay in cache (written tap by tap across all of Cout, the transpose of a
    /// large layer costs more than its products).
    fn unpack(&self, parts: &[f32], groups: usize) -> Vec<f32> {
        let (cout, k) = (self.d.g.cout, self.d.offs.len());
        let (nr, ncov, part_len) = (self.nr(), self.ncov, self.part_len());
        let blocks = self.coutp / (16 * ncov);
        let mut dw = vec![0f32; cout * k];
        dw.par_chunks_mut(16 * ncov * k)
            .enumerate()
            .for_each(|(c, rows)| {
                let tiles = part_len / TILE_FLOATS / blocks;
                for t in 0..tiles {
                    let at = (t * blocks + c) * TILE_FLOATS;
                    for vi in 0..TILE_FLOATS / 16 {
                        let (rj, v) = (vi / ncov, vi % ncov);
                        let Some(&row) = self.order.get(t * nr + rj / 3) else {
                            continue;
                        };
                        let kk = 3 * row + rj % 3;
                        // The last block's rows stop at Cout.
                        let lanes = (rows.len() / k).saturating_sub(16 * v).min(16);
                        for l in 0..lanes {
                            rows[(16 * v + l) * k + kk] = (0..groups)
                                .map(|gi| parts[gi * part_len + at + vi * 16 + l])
                                .sum();
                        }
                    }
                }
            });
        dw
    }

    /// Adds the products of a chunk's images (buffer `xp`, transposed gradient `dyt`, the
    /// buffer offset of each output pixel `pixels`; per kernel row ki, the runs of pixels whose
    /// input row ki is inside the image, `runs`) into `part` (tile order, see `unpack`).
    fn accumulate(
        &self,
        xp: &[f32],
        dyt: &[f32],
        pixels: &[usize],
        runs: &[Vec<(usize, usize)>],
        part: &mut [f32],
    ) {
        let (g, coutp) = (&self.d.g, self.coutp);
        let nb = pixels.len() / (g.ho * g.wo);
        assert!(xp.len() >= self.d.xp_len(nb) && dyt.len() >= pixels.len() * coutp);
        assert!(part.len() >= self.part_len() && runs.len() == g.kh);
        assert!(runs
            .iter()
            .flatten()
            .all(|&(s, e)| s <= e && e <= pixels.len()));
        let every = [(0, pixels.len())];
        #[cfg(target_arch = "x86_64")]
        {
            macro_rules! tiles {
                ($ncov:literal, $nr:literal) => {{
                    let rows = self.order.len();
                    let mut out = part.as_mut_ptr();
                    for r0 in (0..rows).step_by($nr) {
                        // A short last tile repeats its last row (dropped by `unpack`).
                        let tile: [usize; $nr] =
                            std::array::from_fn(|r| self.order[(r0 + r).min(rows - 1)]);
                        let xrows: [*const f32; $nr] = std::array::from_fn(|r| {
                            // SAFETY: offs are inside an image's buffer (Direct::new).
                            unsafe { xp.as_ptr().add(self.d.offs[3 * tile[r]]) }
                        });
                        // Rows of one kernel row skip the pixels it reads on the padding.
                        let ki = tile[0] % g.kh;
                        let tile_runs = if tile.iter().all(|r| r % g.kh == ki) {
                            &runs[ki][..]
                        } else {
                            &every[..]
                        };
                        for c0 in (0..coutp).step_by(16 * $ncov) {
                            // SAFETY: AVX-512 was checked in `new`. Input reads: tap offsets
                            // plus oy*wq + ox (+2 for the row's third tap) stay inside each
                            // image's buffer, as in the forward pass, for images b < nb within
                            // xp_len(nb); gradient reads: pixel rows < nb*Ho*Wo (runs checked
                            // above) of Cout' floats, channels c0 + 16*NCOV <= Cout'; writes:
                            // this block of TILE_FLOATS, inside part_len (checked above).
                            unsafe {
                                kernel::<$ncov, $nr>(
                                    xrows,
                                    pixels,
                                    tile_runs,
                                    dyt.as_ptr().add(c0),
                                    coutp,
                                    out,
                                );
                                out = out.add(TILE_FLOATS);
                            }
                        }
                    }
                }};
            }
            match self.ncov {
                4 => tiles!(4, 2),
                2 => tiles!(2, 4),
                _ => tiles!(1, 8),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (xp, dyt, every, part);
            unreachable!("AVX-512 kernel on a non-x86 CPU");
        }
    }
}

/// Adds to `out[((3r + j) * NCOV + v) * 16 ..][..16]` the sum over the pixels i of the `runs`
/// (start, end) of dyt[i*ld + 16v ..][..16] * xrows[r][pixels[i] + j]: one tile of
/// `TILE_FLOATS`.
///
/// # Safety
/// The CPU has AVX-512F/VL; every read named above is in bounds, and `out` is writable for
/// `TILE_FLOATS` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl")]
#[allow(clippy::needless_range_loop)]
unsafe fn kernel<const NCOV: usize, const NR: usize>(
    xrows: [*const f32; NR],
    pixels: &[usize],
    runs: &[(usize, usize)],
    dyt: *const f32,
    ld: usize,
    out: *mut f32,
) {
    let mut acc = [[[_mm512_setzero_ps(); 3]; NR]; NCOV];
    // One loop over the pixels of a run, across images (an image of 2x2 pixels would leave an
    // inner loop over columns two iterations long).
    for &(start, end) in runs {
        let mut d = dyt.add(start * ld);
        for &at in &pixels[start..end] {
            let dv: [__m512; NCOV] = std::array::from_fn(|v| _mm512_loadu_ps(d.add(16 * v)));
            for r in 0..NR {
                for j in 0..3 {
                    let x = _mm512_set1_ps(*xrows[r].add(at + j));
                    for v in 0..NCOV {
                        acc[v][r][j] = _mm512_fmadd_ps(dv[v], x, acc[v][r][j]);
                    }
                }
            }
            d = d.add(ld);
        }
    }
    for r in 0..NR {
        for j in 0..3 {
            for v in 0..NCOV {
                let o = out.add(((3 * r + j) * NCOV + v) * 16);
                _mm512_storeu_ps(o, _mm512_add_ps(_mm512_loadu_ps(o), acc[v][r][j]));
            }
        }
    }
}
