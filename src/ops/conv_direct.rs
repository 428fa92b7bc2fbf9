//! Direct convolution with AVX-512, without a patch matrix: the forward pass (and so the
//! stride-1 input gradient, the forward pass of the flipped kernel) and the weight gradient.
//!
//! Each image is first copied into a buffer laid out so that, for every kernel tap k =
//! (ci, ki, kj), the inputs of 16 output pixels that sit next to each other in a vector are 16
//! consecutive floats at `off_k + q`: one (unaligned) load. The buffer holds per input channel
//! s*s phase planes (s the stride; plane (r, c) holds rows r, r+s, r+2s, ... and columns
//! c, c+s, ... of the image), with the vertical zero padding and, in two of the schemes below, the
//! horizontal one. For stride 1 that is just the zero-bordered image. Output vectors are
//!
//! - `Rows` (Wo a multiple of 16): 16 consecutive pixels of one output row;
//! - `Masked` (Wo divides 16, the buffer has no horizontal padding and its planes are Wo wide):
//!   16 consecutive pixels of 16/Wo whole rows; lanes whose tap would read a padding column are
//!   masked to zero in the load (the 8x8 layers of ResNet-20);
//! - `PaddedWidth` (anything else): 16 consecutive positions of the padded plane, rows included;
//!   the columns past Wo are computed too and thrown away.
//!
//! Kernels:
//! - forward: a register tile of NV output vectors by NC output channels accumulates over all
//!   Cin*kh*kw taps (NV loads and NC broadcasts per NV*NC FMAs): a GEMM microkernel whose left
//!   operand is read straight from the image buffer;
//! - weight gradient: a tile of NK taps by NCO output channels accumulates xp[off_k + pixels] .
//!   dY[co][pixels] over all output vectors of a chunk of images (NK + NCO loads per NK*NCO
//!   FMAs), then sums the 16 lanes.
//!
//! The kernels need AVX-512F and AVX-512VL (VL lets the final lane sums use all 32 registers;
//! without it LLVM keeps the accumulators in 16 and spills).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use super::im2col::Geom;
use super::input_map::BnReluInput;

/// Whether this CPU runs the AVX-512 kernels.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static AVX512: OnceLock<bool> = OnceLock::new();
        *AVX512.get_or_init(|| {
            is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Forward register tile: NV vectors of 16 pixels by NC output channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    pub nv: usize,
    pub nc: usize,
}

/// The forward tiles there are kernels for, best first (docs/cpu-bench.md, "The convolution
/// paths' thresholds").
pub const TILES: &[Tile] = &[
    Tile { nv: 3, nc: 8 },
    Tile { nv: 1, nc: 16 },
    Tile { nv: 5, nc: 4 },
    Tile { nv: 6, nc: 4 },
    Tile { nv: 4, nc: 6 },
    Tile { nv: 2, nc: 12 },
];

/// Weight-gradient tile: NK taps by NCO output channels.
const DW_NK: usize = 5;
const DW_NCO: usize = 4;

/// How output pixels are grouped into vectors (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Rows,
    Masked,
    PaddedWidth,
}

/// `y[co[j] + yo[i]..][..16] = init[j] + sum over taps k of xp[offs[k] + xo[i]..][..16] (lanes
/// off in masks[k] read as 0) * wt[k*NC + j]`.
///
/// # Safety
/// The CPU has AVX-512F/VL. For every tap k and every i, the lanes of `xp[offs[k] + xo[i]..][..16]`
/// enabled in `masks[k]` are readable; `wt[..offs.len() * NC]` is readable;
/// `y[co[j] + yo[i]..][..16]` is writable.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl")]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
unsafe fn fwd_kernel<const NV: usize, const NC: usize, const MASKED: bool>(
    xp: *const f32,
    xo: [usize; NV],
    offs: &[usize],
    masks: &[u16],
    wt: *const f32,
    y: *mut f32,
    yo: [usize; NV],
    co: [usize; NC],
    init: [f32; NC],
) {
    let mut acc = [[_mm512_setzero_ps(); NC]; NV];
    for row in acc.iter_mut() {
        for (a, v) in row.iter_mut().zip(init) {
            *a = _mm512_set1_ps(v);
        }
    }
    let mut w = wt;
    for (&off, &m) in offs.iter().zip(masks) {
        let base = xp.add(off);
        let mut a = [_mm512_setzero_ps(); NV];
        for i in 0..NV {
            a[i] = if MASKED {
                _mm512_maskz_loadu_ps(m, base.add(xo[i]))
            } else {
                _mm512_loadu_ps(base.add(xo[i]))
            };
        }
        for j in 0..NC {
            let b = _mm512_set1_ps(*w.add(j));
            for i in 0..NV {
                acc[i][j] = _mm512_fmadd_ps(a[i], b, acc[i][j]);
            }
        }
        w = w.add(NC);
    }
    for j in 0..NC {
        for i in 0..NV {
            _mm512_storeu_ps(y.add(co[j] + yo[i]), acc[i][j]);
        }
    }
}

/// Sums over the (xp offset, dy offset) pairs `vecs` of
/// mask(xm[t], xp[v.0 + xk[t]..][..16]) . dy[v.1 + dco[j]..][..16], for t < NK, j < NCO.
///
/// # Safety
/// The CPU has AVX-512F/VL and every enabled lane of the reads named above is in bounds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl")]
#[allow(clippy::needless_range_loop)]
unsafe fn dw_kernel<const NK: usize, const NCO: usize, const MASKED: bool>(
    xp: *const f32,
    xk: [usize; NK],
    xm: [u16; NK],
    dy: *const f32,
    dco: [usize; NCO],
    vecs: &[(usize, usize)],
) -> [[f32; NCO]; NK] {
    // Same shape as the forward kernel: the NK input vectors first, then per channel one
    // gradient vector and NK FMAs.
    let mut acc = [[_mm512_setzero_ps(); NCO]; NK];
    for &(xv, dv) in vecs {
        let x0 = xp.add(xv);
        let d0 = dy.add(dv);
        let mut x = [_mm512_setzero_ps(); NK];
        for t in 0..NK {
            x[t] = if MASKED {
                _mm512_maskz_loadu_ps(xm[t], x0.add(xk[t]))
            } else {
                _mm512_loadu_ps(x0.add(xk[t]))
            };
        }
        for j in 0..NCO {
            let d = _mm512_loadu_ps(d0.add(dco[j]));
            for t in 0..NK {
                acc[t][j] = _mm512_fmadd_ps(x[t], d, acc[t][j]);
            }
        }
    }
    let mut out = [[0f32; NCO]; NK];
    for t in 0..NK {
        for j in 0..NCO {
            out[t][j] = _mm512_reduce_add_ps(acc[t][j]);
        }
    }
    out
}

/// A direct convolution: its geometry, the image-buffer layout, tap offsets and output vectors.
#[derive(Clone, Debug)]
pub struct Direct {
    /// The convolution (its `n` is not used: buffers are sized per call).
    pub g: Geom,
    pub scheme: Scheme,
    /// Rows and columns of one phase plane of the buffer.
    pub hq: usize,
    pub wq: usize,
    /// Zero floats before the first image (masked taps may point a little before a row).
    pub front: usize,
    /// PaddedWidth: computed positions per channel, Ho*Wq rounded up to 16.
    pub mp: usize,
    pub tile: Tile,
    /// Per tap k = (ci*kh + ki)*kw + kj: offset into an image's buffer, and the lanes to load.
    pub offs: Vec<usize>,
    pub masks: Vec<u16>,
    /// Output vectors of one image: (offset in its buffer, offset in an output plane).
    pub vecs: Vec<(usize, usize)>,
    /// Images per forward call (`Rows` and `Masked`; `PaddedWidth` takes one at a time): as
    /// many as keep their buffer near `FWD_CHUNK_BYTES`, so that small images fill the tiles and
    /// each weight block serves more vectors.
    pub chunk_images: usize,
}

/// Bytes of image buffers per forward call (see `Direct::chunk_images`).
const FWD_CHUNK_BYTES: usize = 256 << 10;

/// Per tap k = (ci*kh + ki)*kw + kj of `g`: its offset into an image's buffer (phase planes of
/// `hq x wq`, `front` zeros before the image) and the lanes it loads (all but, under `Masked`,
/// those whose column falls in the padding).
fn tap_offsets(
    g: &Geom,
    scheme: Scheme,
    hq: usize,
    wq: usize,
    front: usize,
) -> (Vec<usize>, Vec<u16>) {
    let (cin, kh, kw, s, pad_w, wo) = (g.cin, g.kh, g.kw, g.stride, g.pad_w, g.wo);
    let plane = hq * wq;
    let mut offs = Vec::with_capacity(cin * kh * kw);
    let mut masks = Vec::with_capacity(cin * kh * kw);
    for ci in 0..cin {
        for ki in 0..kh {
            for kj in 0..kw {
                let (r, di) = (ki % s, ki / s);
                // Column of the tap relative to the output column (in plane columns), and
                // its phase.
                let (c, dj) = if scheme == Scheme::Masked {
                    let t = kj as isize - pad_w as isize;
                    (t.rem_euclid(s as isize) as usize, t.div_euclid(s as isize))
                } else {
                    (kj % s, (kj / s) as isize)
                };
                let base = front + (ci * s * s + r * s + c) * plane + di * wq;
                offs.push((base as isize + dj) as usize);
                let mask = if scheme == Scheme::Masked {
                    (0..16).fold(0u16, |m, l| {
                        let col = (l % wo) as isize + dj;
                        if (0..wq as isize).contains(&col) {
                            m | (1 << l)
                        } else {
                            m
                        }
                    })
                } else {
                    u16::MAX
                };
                masks.push(mask);
            }
        }
    }
    (offs, masks)
}

/// The forward tile with the least cost for `nvec` output vectors by `cout` channels: padded
/// work, times how much a tile waits on loads: per tap it loads nv vectors and broadcasts nc
/// weights for nv*nc FMAs, and with more loads than half its FMAs the load ports, not the FMA
/// units, set its pace (docs/cpu-bench.md, "The convolution paths' thresholds").
fn cheapest_tile(nvec: usize, cout: usize) -> Tile {
    let cost = |t: &Tile| {
        let work = (nvec.div_ceil(t.nv) * t.nv * cout.div_ceil(t.nc) * t.nc) as f64;
        work * (2.0 * (t.nv + t.nc) as f64 / (t.nv * t.nc) as f64).max(1.0)
    };
    *TILES
        .iter()
        .min_by(|a, b| cost(a).total_cmp(&cost(b)))
        .unwrap()
}

impl Direct {
    /// The direct form of a convolution; `None` when the kernel does not fit the padded image.
    /// `tile` forces a forward tile (else the one with the least padded work).
    pub fn new(g: &Geom, tile: Option<Tile>) -> Option<Self> {
        Self::with_masking(g, tile, true)
    }

    /// The direct form in a buffer with its horizontal padding in place (`Rows` or
    /// `PaddedWidth`, never `Masked`): every tap of output pixel (oy, ox) then reads
    /// `offs[k] + oy*wq + ox`, which the channel-lane weight gradient (`conv_wgrad`) relies on.
    pub fn unmasked(g: &Geom) -> Option<Self> {
        Self::with_masking(g, None, false)
    }

    /// The unmasked form for the channel-lane kernels (`conv_wgrad`, `conv_cf`), which read tap
    /// (row, j) at the row's first tap plus j: an AVX-512 CPU, stride 1 and a kernel three taps
    /// wide.
    pub fn channel_lane(g: &Geom) -> Option<Self> {
        if !available() || g.stride != 1 || g.kw != 3 {
            return None;
        }
        let d = Self::unmasked(g)?;
        debug_assert!(d
            .offs
            .chunks_exact(3)
            .all(|t| t[1] == t[0] + 1 && t[2] == t[0] + 2));
        Some(d)
    }

    fn with_masking(g: &Geom, tile: Option<Tile>, allow_masked: bool) -> Option<Self> {
        let Geom {
            cin,
            h,
            w,
            cout,
            stride: s,
            pad_h,
            pad_w,
            ho,
            wo,
            ..
        } = *g;
        // Geom::new already refused a zero stride or kernel, or one larger than the padded image.
        if cin == 0 || cout == 0 {
            return None;
        }
        let (hp, wp) = (h + 2 * pad_h, w + 2 * pad_w);
        let hq = hp.div_ceil(s);
        let masked_wq = w.div_ceil(s);
        let scheme = if wo % 16 == 0 {
            Scheme::Rows
        } else if allow_masked
            && 16 % wo == 0
            && (ho * wo) % 16 == 0
            && masked_wq == wo
            && pad_w < 16
        {
            Scheme::Masked
        } else {
            Scheme::PaddedWidth
        };
        let wq = if scheme == Scheme::Masked {
            masked_wq
        } else {
            wp.div_ceil(s)
        };
        let front = if scheme == Scheme::Masked { 16 } else { 0 };
        let mp = (ho * wq).div_ceil(16) * 16;
        let (offs, masks) = tap_offsets(g, scheme, hq, wq, front);
        let vecs: Vec<(usize, usize)> = match scheme {
            Scheme::Rows => (0..ho)
                .flat_map(|oy| (0..wo / 16).map(move |c| (oy * wq + 16 * c, oy * wo + 16 * c)))
                .collect(),
            Scheme::Masked => (0..ho * wo / 16).map(|v| (16 * v, 16 * v)).collect(),
            Scheme::PaddedWidth => (0..mp / 16).map(|v| (16 * v, 16 * v)).collect(),
        };
        let img_xp = cin * s * s * hq * wq;
        let chunk_images = if scheme == Scheme::PaddedWidth {
            1
        } else {
            (FWD_CHUNK_BYTES / (4 * img_xp).max(1)).max(1)
        };
        let tile = tile.unwrap_or_else(|| cheapest_tile(vecs.len() * chunk_images, cout));
        Some(Self {
            g: *g,
            scheme,
            hq,
            wq,
            front,
            mp,
            tile,
            offs,
            masks,
            vecs,
            chunk_images,
        })
    }

    /// The share of the computed lanes that are output pixels (PaddedWidth computes the columns
    /// past each row too, and tiny images fill a vector only partly).
    pub fn efficiency(&self) -> f64 {
        (self.g.ho * self.g.wo) as f64 / (16 * self.vecs.len()).max(1) as f64
    }

    /// Floats of one image's buffer (the stride between images).
    pub fn img_xp(&self) -> usize {
        self.g.cin * self.g.stride * self.g.stride * self.hq * self.wq
    }

    /// Length of a buffer of `nb` images, with the zeros around them that taps read.
    pub fn xp_len(&self, nb: usize) -> usize {
        self.front + nb * self.img_xp() + self.mp + 2 * self.wq + self.g.kw + 32
    }

    /// Floats of one image's forward output buffer (PaddedWidth only: Cout x Mp).
    pub fn out_len(&self) -> usize {
        if self.scheme == Scheme::PaddedWidth {
            self.g.cout * self.mp
        } else {
            0
        }
    }

    /// Length of the packed forward weights: blocks of NC channels (the last block padded by
    /// repeating the last channel) x K x NC.
    pub fn wt_len(&self) -> usize {
        self.g.cout.div_ceil(self.tile.nc) * self.tile.nc * self.offs.len()
    }

    /// Packs `w` (Cout, Cin, kh, kw) for the forward kernel: element (co, k) at
    /// (co/NC)*K*NC + k*NC + co%NC. With `flip`, `w` is the weight (Cin, Cout, kh, kw) of the
    /// convolution whose input gradient this one computes, and this one's weight (co, ci, i, j)
    /// is w[ci][co][kh-1-i][kw-1-j].
    pub fn pack_weights(&self, w: &[f32], flip: bool, wt: &mut [f32]) {
        let (nc, k, kh, kw) = (self.tile.nc, self.offs.len(), self.g.kh, self.g.kw);
        let (cin, cout) = (self.g.cin, self.g.cout);
        let blocks = cout.div_ceil(nc);
        for co_p in 0..blocks * nc {
            let co = co_p.min(cout - 1);
            let blk = &mut wt[(co_p / nc) * k * nc..(co_p / nc + 1) * k * nc];
            for ci in 0..cin {
                for i in 0..kh {
                    for j in 0..kw {
                        let v = if flip {
                            w[((ci * cout + co) * kh + kh - 1 - i) * kw + kw - 1 - j]
                        } else {
                            w[((co * cin + ci) * kh + i) * kw + j]
                        };
                        blk[((ci * kh + i) * kw + j) * nc + co_p % nc] = v;
                    }
                }
            }
        }
    }

    /// Copies `nb` images `x` (nb x Cin x H x W) into the buffer `xp` (see the module docs), with
    /// zeros everywhere else.
    pub fn fill_buffer(&self, x: &[f32], nb: usize, xp: &mut [f32]) {
        self.fill_buffer_mapped(x, nb, xp, None)
    }

    /// `fill_buffer` with each value passed through `map` (stride 1 only).
    pub(crate) fn fill_buffer_mapped(
        &self,
        x: &[f32],
        nb: usize,
        xp: &mut [f32],
        map: Option<&BnReluInput>,
    ) {
        assert!(
            map.is_none_or(|m| self.g.stride == 1 && m.channels() == self.g.cin),
            "an input map needs stride 1 and one transform per input channel"
        );
        let (h, w, s, hq, wq) = (self.g.h, self.g.w, self.g.stride, self.hq, self.wq);
        // Horizontal padding inside the buffer (none when masked).
        let pw = if self.scheme == Scheme::Masked {
            0
        } else {
            self.g.pad_w
        };
        let planes = nb * self.g.cin;
        let xp = &mut xp[..self.xp_len(nb)];
        let (head, rest) = xp.split_at_mut(self.front);
        head.fill(0.0);
        let (body, tail) = rest.split_at_mut(planes * s * s * hq * wq);
        tail.fill(0.0);
        for (plane, (src, dst)) in x[..planes * h * w]
            .chunks_exact(h * w)
            .zip(body.chunks_exact_mut(s * s * hq * wq))
            .enumerate()
        {
            match s {
                1 => self.fill_plane1(src, dst, pw, map.map(|m| (m, plane % self.g.cin))),
                2 => self.fill_phases2(src, dst, pw),
                _ => self.fill_phases(src, dst, pw),
            }
        }
    }

    /// `fill_buffer` for one channel and stride 1: `src` (H x W) into `dst` inside its zero
    /// border (`pw` columns each side), through `map`'s transform of its channel when given.
    #[inline]
    fn fill_plane1(
        &self,
        src: &[f32],
        dst: &mut [f32],
        pw: usize,
        map: Option<(&BnReluInput, usize)>,
    ) {
        let (h, w, hq, ph) = (self.g.h, self.g.w, self.hq, self.g.pad_h);
        let wp = self.wq;
        dst[..ph * wp + pw].fill(0.0);
        for (y, row) in src.chunks_exact(w).enumerate() {
            let at = (ph + y) * wp + pw;
            match map {
                None => dst[at..at + w].copy_from_slice(row),
                Some((m, channel)) => m.row(channel, row, &mut dst[at..at + w]),
            }
            // The right border of this row and the left border of the next.
            let end = (at + w + 2 * pw).min(hq * wp);
            dst[at + w..end].fill(0.0);
        }
        dst[(ph + h) * wp..].fill(0.0);
    }

    /// `fill_buffer` for one channel and any stride: the s*s phase planes of `src` (H x W) into
    /// `dst`, with `pw` zero columns on the left of the image (see `fill_phases2`, its unrolled
    /// form for stride 2).
    #[inline]
    fn fill_phases(&self, src: &[f32], dst: &mut [f32], pw: usize) {
        let (h, w, s, hq, wq, ph) = (
            self.g.h,
            self.g.w,
            self.g.stride,
            self.hq,
            self.wq,
            self.g.pad_h,
        );
        for r in 0..s {
            for c in 0..s {
                let pl = &mut dst[(r * s + c) * hq * wq..(r * s + c + 1) * hq * wq];
                for (a, prow) in pl.chunks_exact_mut(wq).enumerate() {
                    // Padded row s*a + r is image row s*a + r - ph.
                    let iy = (s * a + r).checked_sub(ph).filter(|&iy| iy < h);
                    match iy {
                        None => prow.fill(0.0),
                        Some(iy) => {
                            // Plane column b is image column s*b + c - pw: inside the image
                            // for b in b0..b1.
                            let xrow = &src[iy * w..(iy + 1) * w];
                            let b0 = pw.saturating_sub(c).div_ceil(s).min(wq);
                            let b1 = (w + pw).saturating_sub(c).div_ceil(s).clamp(b0, wq);
                            prow[..b0].fill(0.0);
                            prow[b1..].fill(0.0);
                            if b1 > b0 {
                                let ix0 = s * b0 + c - pw;
                                let seg = &xrow[ix0..ix0 + s * (b1 - b0 - 1) + 1];
                                for (v, x) in prow[b0..b1].iter_mut().zip(seg.iter().step_by(s)) {
                                    *v = *x;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `fill_buffer` for one channel and stride 2: the four phase planes of `src` (H x W) into
    /// `dst`, with `pw` zero columns on the left of the image (its own padding columns).
    fn fill_phases2(&self, src: &[f32], dst: &mut [f32], pw: usize) {
        let (h, w, hq, wq, ph) = (self.g.h, self.g.w, self.hq, self.wq, self.g.pad_h);
        let plane = hq * wq;
        let (p00, rest) = dst.split_at_mut(plane);
        let (p01, rest) = rest.split_at_mut(plane);
        let (p10, p11) = rest.split_at_mut(plane);
        let p11 = &mut p11[..plane];
        // Plane column b of phase c is image column 2b + c - pw.
        let range = |c: usize| {
            let b0 = pw.saturating_sub(c).div_ceil(2).min(wq);
            let b1 = (w + pw).saturating_sub(c).div_ceil(2).clamp(b0, wq);
            (b0, b1)
        };
        let (r0, r1) = (range(0), range(1));
        for a in 0..hq {
            for (r, d0, d1) in [(0, &mut *p00, &mut *p01), (1, &mut *p10, &mut *p11)] {
                let (d0, d1) = (&mut d0[a * wq..(a + 1) * wq], &mut d1[a * wq..(a + 1) * wq]);
                let Some(iy) = (2 * a + r).checked_sub(ph).filter(|&iy| iy < h) else {
                    d0.fill(0.0);
                    d1.fill(0.0);
                    continue;
                };
                let xrow = &src[iy * w..(iy + 1) * w];
                for (d, (b0, b1), c) in [(&mut *d0, r0, 0), (&mut *d1, r1, 1)] {
                    d[..b0].fill(0.0);
                    d[b1..].fill(0.0);
                    if b1 > b0 {
                        deinterleave(&xrow[2 * b0 + c - pw..], &mut d[b0..b1]);
                    }
                }
            }
        }
    }

    /// Forward of `nb` images in the buffer `xp` with packed weights `wt`, plus `bias` (Cout), into
    /// `y` (nb x Cout x Ho x Wo), every element of which it writes; `out` is scratch of
    /// `out_len()` floats.
    pub fn forward(
        &self,
        xp: &[f32],
        nb: usize,
        wt: &[f32],
        bias: Option<&[f32]>,
        out: &mut [f32],
        y: &mut [MaybeUninit<f32>],
    ) {
        assert!(available(), "AVX-512 kernel on a CPU without AVX-512");
        let (wo, p) = (self.g.wo, self.g.ho * self.g.wo);
        assert!(xp.len() >= self.xp_len(nb) && wt.len() >= self.wt_len());
        assert!(out.len() >= self.out_len() && y.len() >= nb * self.g.cout * p);
        assert!(bias.is_none_or(|b| b.len() == self.g.cout));
        if self.scheme != Scheme::PaddedWidth {
            // All images' vectors in one list, whose output offsets (Cout x Ho x Wo per image)
            // are those of the weight gradient's pairs. The vectors cover every pixel and the
            // channel blocks every channel.
            let vecs = self.image_vectors(nb);
            self.forward_vectors(xp, &vecs, wt, bias, y.as_mut_ptr().cast::<f32>(), p);
            return;
        }
        let (wq, mp) = (self.wq, self.mp);
        for b in 0..nb {
            let xb = &xp[b * self.img_xp()..];
            let yb = &mut y[b * self.g.cout * p..(b + 1) * self.g.cout * p];
            self.forward_vectors(xb, &self.vecs, wt, bias, out.as_mut_ptr(), mp);
            for (co, plane) in yb.chunks_exact_mut(p).enumerate() {
                for (oy, row) in plane.chunks_exact_mut(wo).enumerate() {
                    for (d, v) in row.iter_mut().zip(&out[co * mp + oy * wq..][..wo]) {
                        d.write(*v);
                    }
                }
            }
        }
    }

    /// All tiles of the vectors `vecs` (offset in the buffer `xb`, offset in the output):
    /// output channel co of vector (xo, yo) is `y + co*ld + yo`, which must be valid for writes
    /// of 16 floats.
    fn forward_vectors(
        &self,
        xb: &[f32],
        vecs: &[(usize, usize)],
        wt: &[f32],
        bias: Option<&[f32]>,
        y: *mut f32,
        ld: usize,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            macro_rules! tiles {
                ($nv:literal, $nc:literal) => {{
                    let k = self.offs.len();
                    let nvec = vecs.len();
                    // Vector tiles outer: a tile's input rows stay in L1 while the weight
                    // blocks stream past from L2.
                    for v0 in (0..nvec).step_by($nv) {
                        // A short last tile repeats its last vector (same value stored twice).
                        let pick = |i: usize| vecs[(v0 + i).min(nvec - 1)];
                        let xo: [usize; $nv] = std::array::from_fn(|i| pick(i).0);
                        let yo: [usize; $nv] = std::array::from_fn(|i| pick(i).1);
                        for blk in 0..self.g.cout.div_ceil($nc) {
                            // A short last block repeats the last channel (packed likewise).
                            let ch = |j: usize| (blk * $nc + j).min(self.g.cout - 1);
                            let co: [usize; $nc] = std::array::from_fn(|j| ch(j) * ld);
                            let init: [f32; $nc] =
                                std::array::from_fn(|j| bias.map_or(0.0, |b| b[ch(j)]));
                            // SAFETY: AVX-512 was checked by the caller. Reads stay inside the
                            // image's buffer plus the zeros after it (xp_len, checked by the
                            // caller), weights inside block blk of wt_len; writes: channel
                            // co < cout at yo + 16 <= the plane length ld.
                            unsafe {
                                let kernel = if self.scheme == Scheme::Masked {
                                    fwd_kernel::<$nv, $nc, true>
                                } else {
                                    fwd_kernel::<$nv, $nc, false>
                                };
                                kernel(
                                    xb.as_ptr(),
                                    xo,
                                    &self.offs,
                                    &self.masks,
                                    wt.as_ptr().add(blk * k * $nc),
                                    y,
                                    yo,
                                    co,
                                    init,
                                );
                            }
                        }
                    }
                }};
            }
            match (self.tile.nv, self.tile.nc) {
                (3, 8) => tiles!(3, 8),
                (1, 16) => tiles!(1, 16),
                (5, 4) => tiles!(5, 4),
                (6, 4) => tiles!(6, 4),
                (4, 6) => tiles!(4, 6),
                (2, 12) => tiles!(2, 12),
                t => unreachable!("no forward kernel for tile {t:?}"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (xb, wt, bias, y, ld);
            unreachable!("AVX-512 kernel on a non-x86 CPU");
        }
    }

    /// Length of the padded-width copy of `nb` images' output gradients (PaddedWidth only).
    pub fn dyp_len(&self, nb: usize) -> usize {
        if self.scheme == Scheme::PaddedWidth {
            nb * self.g.cout * self.mp
        } else {
            0
        }
    }

    /// The (buffer offset, output offset) of every vector of `nb` images, for `weight_grad` (the
    /// output gradient in the layout it reads) and, outside `PaddedWidth`, for `forward`; the
    /// pairs of fewer images are a prefix.
    pub fn image_vectors(&self, nb: usize) -> Vec<(usize, usize)> {
        let img_dy = if self.scheme == Scheme::PaddedWidth {
            self.g.cout * self.mp
        } else {
            self.g.cout * self.g.ho * self.g.wo
        };
        (0..nb)
            .flat_map(|b| {
                self.vecs
                    .iter()
                    .map(move |&(xv, dv)| (b * self.img_xp() + xv, b * img_dy + dv))
            })
            .collect()
    }

    /// Weight gradient of `nb` images, added into `dw` (Cout x K): `xp` holds their buffer, `dy`
    /// the output gradients (nb x Cout x Ho x Wo), `pairs` is `image_vectors(m)` for some m >= nb;
    /// `dyp` is scratch of `dyp_len(nb)`.
    pub fn weight_grad(
        &self,
        xp: &[f32],
        dy: &[f32],
        nb: usize,
        pairs: &[(usize, usize)],
        dyp: &mut [f32],
        dw: &mut [f32],
    ) {
        assert!(available(), "AVX-512 kernel on a CPU without AVX-512");
        let (cout, p, k) = (self.g.cout, self.g.ho * self.g.wo, self.offs.len());
        assert!(xp.len() >= self.xp_len(nb) && dy.len() >= nb * cout * p);
        assert!(dw.len() >= cout * k && dyp.len() >= self.dyp_len(nb));
        assert!(pairs.len() >= nb * self.vecs.len());
        // The gradient in the layout the vectors address: as is, or (PaddedWidth) with the
        // plane's row stride and zeros in the thrown-away columns.
        let (src, plane): (&[f32], usize) = if self.scheme == Scheme::PaddedWidth {
            let (wo, wq, mp) = (self.g.wo, self.wq, self.mp);
            let dyp = &mut dyp[..self.dyp_len(nb)];
            dyp.fill(0.0);
            for (src, dst) in dy[..nb * cout * p]
                .chunks_exact(p)
                .zip(dyp.chunks_exact_mut(mp))
            {
                for (oy, row) in src.chunks_exact(wo).enumerate() {
                    dst[oy * wq..oy * wq + wo].copy_from_slice(row);
                }
            }
            (dyp, mp)
        } else {
            (dy, p)
        };
        let pairs = &pairs[..nb * self.vecs.len()];
        #[cfg(target_arch = "x86_64")]
        for k0 in (0..k).step_by(DW_NK) {
            let xk: [usize; DW_NK] = std::array::from_fn(|t| self.offs[(k0 + t).min(k - 1)]);
            let xm: [u16; DW_NK] = std::array::from_fn(|t| self.masks[(k0 + t).min(k - 1)]);
            for c0 in (0..cout).step_by(DW_NCO) {
                let dco: [usize; DW_NCO] = std::array::from_fn(|j| (c0 + j).min(cout - 1) * plane);
                // SAFETY: AVX-512 checked above. Buffer reads as in the forward pass (image
                // b < nb); gradient reads: channel < cout, vector at plane offset dv with
                // dv + 16 <= plane, image b < nb (lengths checked above).
                let sums = unsafe {
                    let kernel = if self.scheme == Scheme::Masked {
                        dw_kernel::<DW_NK, DW_NCO, true>
                    } else {
                        dw_kernel::<DW_NK, DW_NCO, false>
                    };
                    kernel(xp.as_ptr(), xk, xm, src.as_ptr(), dco, pairs)
                };
                for (t, row) in sums.iter().enumerate().take(k - k0) {
                    for (j, s) in row.iter().enumerate().take(cout - c0) {
                        dw[(c0 + j) * k + k0 + t] += *s;
                    }
                }
            }
        }
    }
}

/// `dst[i] = src[2*i]` for every i < dst.len().
fn deinterleave(src: &[f32], dst: &mut [f32]) {
    let n = dst.len();
    assert!(n == 0 || src.len() > 2 * (n - 1));
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: AVX-512 is present; the lengths were checked above.
        unsafe { deinterleave_avx512(src, dst) };
        return;
    }
    for (d, x) in dst.iter_mut().zip(src.iter().step_by(2)) {
        *d = *x;
    }
}

/// The AVX-512 body of `deinterleave`, with masked loads and stores at the ends.
///
/// # Safety
/// The CPU has AVX-512F; `src.len() > 2 * (dst.len() - 1)` when dst is not empty.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn deinterleave_avx512(src: &[f32], dst: &mut [f32]) {
    let mask = |l: usize| ((1u32 << l.min(16)) - 1) as u16;
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let (n, len) = (dst.len(), src.len());
    let mut i = 0;
    while i < n {
        let avail = len - 2 * i;
        let a = _mm512_maskz_loadu_ps(mask(avail), src.as_ptr().add(2 * i));
        let b = _mm512_maskz_loadu_ps(mask(avail.saturating_sub(16)), src.as_ptr().add(2 * i + 16));
        let r = _mm512_permutex2var_ps(a, even, b);
        _mm512_mask_storeu_ps(dst.as_mut_ptr().add(i), mask(n - i), r);
        i += 16;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Values in (-0.5, 0.5) from a linear congruential generator: the same inputs on every run.
    pub(crate) fn uniform(mut seed: u32) -> impl FnMut() -> f32 {
        move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        }
    }

    /// The forward of `d` (flipped weights with `flip`) on `n` images, every step of it: fill,
    /// pack, forward. Outputs the forward would not write stay NaN.
    pub(crate) fn forward_all(
        d: &Direct,
        n: usize,
        x: &[f32],
        w: &[f32],
        flip: bool,
        bias: Option<&[f32]>,
    ) -> Vec<f32> {
        let mut xp = vec![0f32; d.xp_len(n)];
        let mut wt = vec![0f32; d.wt_len()];
        let mut out = vec![0f32; d.out_len()];
        let mut y = vec![MaybeUninit::new(f32::NAN); n * d.g.cout * d.g.ho * d.g.wo];
        d.fill_buffer(x, n, &mut xp);
        d.pack_weights(w, flip, &mut wt);
        d.forward(&xp, n, &wt, bias, &mut out, &mut y);
        // SAFETY: initialised above.
        y.iter().map(|v| unsafe { v.assume_init() }).collect()
    }

    /// y[b][co][oy][ox] of a plain loop, in f64.
    pub(crate) fn naive(g: &Geom, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
        let mut y = vec![0f32; g.n * g.cout * g.ho * g.wo];
        for b in 0..g.n {
            for co in 0..g.cout {
                for oy in 0..g.ho {
                    for ox in 0..g.wo {
                        let mut s = bias[co] as f64;
                        for ci in 0..g.cin {
                            for ki in 0..g.kh {
                                for kj in 0..g.kw {
                                    let iy = (oy * g.stride + ki) as isize - g.pad_h as isize;
                                    let ix = (ox * g.stride + kj) as isize - g.pad_w as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xi =
                                        ((b * g.cin + ci) * g.h + iy as usize) * g.w + ix as usize;
                                    let wi = ((co * g.cin + ci) * g.kh + ki) * g.kw + kj;
                                    s += x[xi] as f64 * w[wi] as f64;
                                }
                            }
                        }
                        y[((b * g.cout + co) * g.ho + oy) * g.wo + ox] = s as f32;
                    }
                }
            }
        }
        y
    }

    /// Every forward tile, forced, on each layout (rows of 16, masked 8x8 and 4x4, padded
    /// width, stride 2) with channel counts off the tile sizes, against the plain loop.
    #[test]
    fn every_forward_tile_matches_a_plain_convolution() {
        if !available() {
            return;
        }
        let geoms = [
            Geom::new(3, 5, 16, 16, 13, 3, 3, 1, 1, 1),
            Geom::new(4, 6, 8, 8, 7, 3, 3, 1, 1, 1),
            Geom::new(5, 4, 4, 4, 9, 3, 3, 1, 1, 1),
            Geom::new(2, 3, 7, 9, 11, 3, 3, 1, 1, 1),
            Geom::new(3, 4, 16, 16, 6, 3, 3, 2, 1, 1),
        ];
        let mut rnd = uniform(7);
        for g in geoms.into_iter().map(Option::unwrap) {
            let x: Vec<f32> = (0..g.n * g.cin * g.h * g.w).map(|_| rnd()).collect();
            let w: Vec<f32> = (0..g.cout * g.cin * 9).map(|_| rnd()).collect();
            let bias: Vec<f32> = (0..g.cout).map(|_| rnd()).collect();
            let want = naive(&g, &x, &w, &bias);
            for &tile in TILES {
                let d = Direct::new(&g, Some(tile)).expect("direct form");
                let y = forward_all(&d, g.n, &x, &w, false, Some(&bias));
                for (i, (&got, want)) in y.iter().zip(&want).enumerate() {
                    // An f32 sum of at most 6*9 products of values in (-0.5, 0.5) plus a bias,
                    // against f64: rounding stays near 54 * 2^-24 * 0.25 (about 1e-6); a wrong
                    // tap or channel is off by a product, about 0.1.
                    assert!(
                        (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                        "tile {tile:?}, {g:?} ({:?}): y[{i}] = {got}, want {want}",
                        d.scheme
                    );
                }
            }
        }
    }
}
