//! The CPU convolution kernels behind `conv::Conv2d`: forward (+ bias), input gradient, weight
//! gradient and bias gradient.
//!
//! Paths, first match wins:
//! - channel-lane forward and input gradient (`conv_cf`, AVX-512): stride 1, kernels 3 wide,
//!   small images of many channels (`ChannelFwd::pays`); it skips the taps on the padding, so on
//!   VGG-16's 2x2 layers it multiplies only real inputs, like the dense path, and beats its
//!   GEMMs, whose operand packing runs on one thread;
//! - dense (`conv_dense`): images no larger than the kernel's reach (VGG-16's 2x2 layers), one
//!   GEMM per (output pixel, input pixel) pair on the tensors as they are, for the weight
//!   gradient and where the channel-lane kernel does not apply;
//! - channel-lane weight gradient (`conv_wgrad`, AVX-512): stride 1, kernels 3 wide, at least
//!   `CHANNEL_WGRAD_MIN_TAPS` taps; output channels in the lanes, no lane sums;
//! - direct (`conv_direct`, AVX-512): the forward and the weight gradient for any stride, and the
//!   input gradient for stride 1 (as the forward of the flipped, transposed kernel, padding
//!   k-1-pad). No patch matrix: each chunk of images is copied once into a padded buffer that the
//!   kernels read with one load per 16 pixels and tap. About the speed of `gemm` on a large
//!   matrix.
//! - im2col (or col2im) around one GEMM of the `gemm` crate per chunk of images: everything else
//!   (the input gradient of strided convolutions, CPUs without AVX-512, batches smaller than the
//!   thread pool). The `gemm` microkernel (64 x 6 on AVX-512) wants a long, contiguous dimension
//!   as its M and a column-major left operand, so the products are arranged as
//!   - forward:     Y^T (pixels x Cout) = col^T (pixels x K) . W^T (K x Cout)
//!   - input grad:  dcol^T (pixels x K) = dY^T (pixels x Cout) . W (Cout x K), then col2im (for
//!     stride 1 the forward of the flipped kernel instead, whose depth is Cout*kh*kw, not Cout)
//!   - weight grad: dW (Cout x K) = dY (Cout x pixels) . col^T (pixels x K), dY transposed to
//!     pixel-major per chunk (with the patch rows as M instead, `gemm` packs a row-major patch
//!     matrix and runs several times slower)
//!
//!   with K = Cin*kh*kw and `pixels` the Ho*Wo output pixels of a chunk of images side by side.
//!
//! Threads: images (or chunks of images) run in parallel on the current rayon pool
//! (`rayon::current_num_threads()`, so a worker's own pool when called inside `pool.install`),
//! each kernel or GEMM single-threaded. A batch smaller than the pool takes the GEMM path with the
//! GEMM itself parallel. Weight gradients keep partial sums per group of images and add them at the end.
//! Padded images, patch matrices and packed weights live in per-thread scratch buffers that only
//! grow (`conv_scratch`), so a steady state allocates only the outputs (and `gemm`'s small packing
//! buffers).
//!
//! The thresholds that pick a path, and the measurements behind them: docs/cpu-bench.md, "The
//! convolution paths' thresholds".

use std::borrow::Cow;

use gemm::Parallelism;
use rayon::prelude::*;

use super::conv_cf::ChannelFwd;
use super::conv_chunks::{grouped_partials, image_chunks};
use super::conv_dense;
use super::conv_direct::{self, Direct};
use super::conv_scratch::{with_scratch, with_weights};
use super::conv_wgrad::ChannelWgrad;
use super::cpu::{sgemm, Mat};
use super::im2col::{col2im_add, im2col, transpose_planes, Geom};
use super::input_map::BnReluInput;

/// Rows of the GEMM (output pixels of a chunk) that a chunk of images aims for on the GEMM path;
/// images are batched up to this.
const TARGET_M: usize = 2048;

/// Bytes of image buffers per chunk of the direct weight gradient (the lane sums at the end of
/// each kernel call are paid once per chunk; chunks should stay in L2).
const DIRECT_WGRAD_BYTES: usize = 256 << 10;

/// How a batch is cut: `cb` images per chunk, and whether chunks run in parallel (else the GEMMs
/// are parallel).
#[derive(Clone, Copy, Debug)]
struct Plan {
    cb: usize,
    split: bool,
    threads: usize,
}

impl Plan {
    fn new(g: &Geom) -> Self {
        let threads = rayon::current_num_threads().max(1);
        let split = threads > 1 && g.n >= threads;
        let mut cb = if g.is_pointwise() {
            1
        } else {
            (TARGET_M / g.p().max(1)).max(1)
        };
        if split {
            cb = cb.min(g.n.div_ceil(threads));
        }
        cb = cb.min(g.n).max(1);
        Self { cb, split, threads }
    }

    fn gemm_par(&self) -> Parallelism {
        if self.split || self.threads == 1 {
            Parallelism::None
        } else {
            Parallelism::Rayon(self.threads)
        }
    }

    fn chunks(&self, n: usize) -> usize {
        n.div_ceil(self.cb)
    }
}

/// Runs `body(chunk index, chunk of out)` over `out` cut in pieces of `piece` floats, in parallel
/// when the plan splits the batch.
fn for_chunks(plan: &Plan, out: &mut [f32], piece: usize, body: impl Fn(usize, &mut [f32]) + Sync) {
    if piece == 0 {
        return;
    }
    if plan.split {
        out.par_chunks_mut(piece)
            .enumerate()
            .for_each(|(i, c)| body(i, c));
    } else {
        out.chunks_mut(piece)
            .enumerate()
            .for_each(|(i, c)| body(i, c));
    }
}

/// Copies the (Cout x P) planes of `nb` images of `dy` side by side into `dst` (Cout x nb*P).
fn gather_planes(dy: &[f32], nb: usize, cout: usize, p: usize, dst: &mut [f32]) {
    let m = nb * p;
    for b in 0..nb {
        for co in 0..cout {
            let src = &dy[(b * cout + co) * p..][..p];
            dst[co * m + b * p..][..p].copy_from_slice(src);
        }
    }
}

/// The im2col + GEMM forward: `y = conv2d(x, w) + bias` for contiguous x (N, Cin, H, W) and
/// w (Cout, Cin, kh, kw); returns y (N, Cout, Ho, Wo), contiguous.
fn gemm_fwd(g: &Geom, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (k, p, cout) = (g.k(), g.p(), g.cout);
    let img_in = g.cin * g.hw();
    let img_out = cout * p;
    assert_eq!(x.len(), g.n * img_in, "conv input size");
    assert_eq!(w.len(), cout * k, "conv weight size");
    let mut out = vec![0f32; g.n * img_out];
    let plan = Plan::new(g);
    let par = plan.gemm_par();
    // rhs W^T (K x Cout): element (kk, co) at w[co*K + kk].
    let wt = Mat {
        data: w,
        rs: 1,
        cs: k,
    };
    for_chunks(&plan, &mut out, plan.cb * img_out, |ci, out_chunk| {
        let b0 = ci * plan.cb;
        let nb = out_chunk.len() / img_out;
        let xs = &x[b0 * img_in..(b0 + nb) * img_in];
        if g.is_pointwise() {
            // The image is its own patch matrix.
            for (xi, yi) in xs
                .chunks_exact(img_in)
                .zip(out_chunk.chunks_exact_mut(img_out))
            {
                let lhs = Mat {
                    data: xi,
                    rs: 1,
                    cs: p,
                };
                sgemm(p, cout, k, yi, 1, p, false, lhs, wt, par);
            }
        } else {
            let m = nb * p;
            let extra = if nb > 1 { cout * m } else { 0 };
            with_scratch(k * m + extra, |s| {
                let (col, ybuf) = s.split_at_mut(k * m);
                for b in 0..nb {
                    im2col(g, &xs[b * img_in..(b + 1) * img_in], &mut col[b * p..], m);
                }
                let lhs = Mat {
                    data: col,
                    rs: 1,
                    cs: m,
                };
                if nb == 1 {
                    sgemm(m, cout, k, out_chunk, 1, p, false, lhs, wt, par);
                } else {
                    sgemm(m, cout, k, ybuf, 1, m, false, lhs, wt, par);
                    for b in 0..nb {
                        for co in 0..cout {
                            out_chunk[(b * cout + co) * p..][..p]
                                .copy_from_slice(&ybuf[co * m + b * p..][..p]);
                        }
                    }
                }
            });
        }
        if let Some(b) = bias {
            add_bias(out_chunk, b, p);
        }
    });
    out
}

/// `y[n][co][..] += bias[co]` over the images of `y` (planes of `p` floats).
fn add_bias(y: &mut [f32], bias: &[f32], p: usize) {
    if p == 0 {
        return;
    }
    for (plane, b) in y.chunks_exact_mut(p).zip(bias.iter().cycle()) {
        for v in plane {
            *v += *b;
        }
    }
}

/// Input gradient: dx (N, Cin, H, W) from dy (N, Cout, Ho, Wo) and w (Cout, Cin, kh, kw).
fn gemm_bwd_input(g: &Geom, dy: &[f32], w: &[f32]) -> Vec<f32> {
    let (k, p, cout, cin) = (g.k(), g.p(), g.cout, g.cin);
    let img_in = cin * g.hw();
    let img_out = cout * p;
    assert_eq!(dy.len(), g.n * img_out, "conv output-gradient size");
    assert_eq!(w.len(), cout * k, "conv weight size");
    if g.stride == 1 && g.pad_h < g.kh && g.pad_w < g.kw {
        // dx = conv2d(dy, w'), w'[ci][co][i][j] = w[co][ci][kh-1-i][kw-1-j], padding k-1-pad.
        let (kh, kw) = (g.kh, g.kw);
        let mut wf = vec![0f32; w.len()];
        for co in 0..cout {
            for ci in 0..cin {
                for i in 0..kh {
                    for j in 0..kw {
                        wf[((ci * cout + co) * kh + kh - 1 - i) * kw + kw - 1 - j] =
                            w[((co * cin + ci) * kh + i) * kw + j];
                    }
                }
            }
        }
        let g2 = Geom::new(
            g.n,
            cout,
            g.ho,
            g.wo,
            cin,
            kh,
            kw,
            1,
            kh - 1 - g.pad_h,
            kw - 1 - g.pad_w,
        )
        .expect("transposed geometry");
        debug_assert_eq!((g2.ho, g2.wo), (g.h, g.w));
        return gemm_fwd(&g2, dy, &wf, None);
    }
    let mut dx = vec![0f32; g.n * img_in];
    let plan = Plan::new(g);
    let par = plan.gemm_par();
    // rhs W (Cout x K): element (co, kk) at w[co*K + kk].
    let wm = Mat {
        data: w,
        rs: k,
        cs: 1,
    };
    for_chunks(&plan, &mut dx, plan.cb * img_in, |ci, dx_chunk| {
        let b0 = ci * plan.cb;
        let nb = dx_chunk.len() / img_in;
        let dys = &dy[b0 * img_out..(b0 + nb) * img_out];
        let m = nb * p;
        let extra = if nb > 1 { cout * m } else { 0 };
        with_scratch(k * m + extra, |s| {
            let (dcol, dybuf) = s.split_at_mut(k * m);
            let lhs = if nb == 1 {
                Mat {
                    data: dys,
                    rs: 1,
                    cs: p,
                }
            } else {
                gather_planes(dys, nb, cout, p, dybuf);
                Mat {
                    data: dybuf,
                    rs: 1,
                    cs: m,
                }
            };
            sgemm(m, k, cout, dcol, 1, m, false, lhs, wm, par);
            for b in 0..nb {
                col2im_add(
                    g,
                    &dcol[b * p..],
                    m,
                    &mut dx_chunk[b * img_in..(b + 1) * img_in],
                );
            }
        })
    });
    dx
}

/// Weight gradient: dw (Cout, Cin, kh, kw) = sum over images of dy . patches(x)^T.
///
/// The GEMM is dW (Cout x K) = dY (Cout x pixels) . col^T (pixels x K) with Cout as M: `gemm`
/// then reads dY pixel-major (one transposed copy per chunk, Cout*pixels floats) and the patch
/// matrix in the layout `im2col` writes, and keeps near its peak even for Cout = 16. The other
/// arrangement (patch rows as M) makes `gemm` pack a row-major patch matrix and runs 4-10x slower.
/// Partial sums are kept K-major (element (co, kk) at kk*Cout + co) and transposed at the end.
fn gemm_bwd_weight(g: &Geom, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (k, p, cout) = (g.k(), g.p(), g.cout);
    let img_in = g.cin * g.hw();
    let img_out = cout * p;
    assert_eq!(x.len(), g.n * img_in, "conv input size");
    assert_eq!(dy.len(), g.n * img_out, "conv output-gradient size");
    let size = cout * k;
    let plan = Plan::new(g);
    let par = plan.gemm_par();
    let chunks = plan.chunks(g.n);
    let groups = if plan.split {
        plan.threads.min(chunks).max(1)
    } else {
        1
    };
    let mut parts = vec![0f32; groups * size];
    let group = |gi: usize, part: &mut [f32]| {
        let mut first = true;
        for c in gi * chunks / groups..(gi + 1) * chunks / groups {
            let b0 = c * plan.cb;
            let nb = plan.cb.min(g.n - b0);
            let xs = &x[b0 * img_in..(b0 + nb) * img_in];
            let dys = &dy[b0 * img_out..(b0 + nb) * img_out];
            let m = nb * p;
            let col_len = if g.is_pointwise() { 0 } else { k * m };
            with_scratch(col_len + cout * m, |s| {
                let (col, dyt) = s.split_at_mut(col_len);
                transpose_planes(dys, nb, cout, p, cout, dyt);
                let col: &[f32] = if g.is_pointwise() {
                    // nb == 1: the image is its own patch matrix.
                    xs
                } else {
                    for b in 0..nb {
                        im2col(g, &xs[b * img_in..(b + 1) * img_in], &mut col[b * p..], m);
                    }
                    col
                };
                // lhs dY (Cout x m): element (co, q) at dyt[q*Cout + co].
                let lhs = Mat {
                    data: dyt,
                    rs: 1,
                    cs: cout,
                };
                // rhs col^T (m x K): element (q, kk) at col[kk*m + q].
                let rhs = Mat {
                    data: col,
                    rs: 1,
                    cs: m,
                };
                sgemm(cout, k, m, part, 1, cout, !first, lhs, rhs, par);
            });
            first = false;
        }
    };
    if groups > 1 {
        parts
            .par_chunks_mut(size)
            .enumerate()
            .for_each(|(gi, part)| group(gi, part));
    } else {
        group(0, &mut parts);
    }
    let mut dw = vec![0f32; size];
    for part in parts.chunks_exact(size) {
        for kk in 0..k {
            for co in 0..cout {
                dw[co * k + kk] += part[kk * cout + co];
            }
        }
    }
    dw
}

/// Forward: `y = conv2d(x, w) + bias` for contiguous x (N, Cin, H, W), w (Cout, Cin, kh, kw) and
/// bias (Cout); returns y (N, Cout, Ho, Wo), contiguous. With `map`, the convolution of `map`
/// applied to x: the direct kernel reads x through the map as it fills its buffer (stride 1), the
/// other paths get the mapped tensor. The path is the one the mapped tensor would take, so the
/// results are the same bits.
pub fn conv_fwd(
    g: &Geom,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    map: Option<&BnReluInput>,
) -> Vec<f32> {
    if let Some(b) = bias {
        assert_eq!(b.len(), g.cout, "conv bias size");
    }
    if let Some(c) = channel_fwd(g, ChannelFwd::new) {
        return c.forward(g.n, &mapped(g, x, map), w, false, bias);
    }
    if dense(g) {
        return conv_dense::forward(g, &mapped(g, x, map), w, bias);
    }
    match direct_geom(g, false) {
        Some(d) if g.stride == 1 => direct_fwd(&d, g.n, x, w, false, bias, map),
        Some(d) => direct_fwd(&d, g.n, &mapped(g, x, map), w, false, bias, None),
        None => gemm_fwd(g, &mapped(g, x, map), w, bias),
    }
}

/// x with `map` applied (borrowed when there is none), for the paths that read x directly.
fn mapped<'a>(g: &Geom, x: &'a [f32], map: Option<&BnReluInput>) -> Cow<'a, [f32]> {
    match map {
        None => Cow::Borrowed(x),
        Some(m) => {
            assert_eq!(m.channels(), g.cin, "input map channels");
            Cow::Owned(m.apply(x, g.h * g.w))
        }
    }
}

/// Bias gradient: db[co] = sum over images and pixels of dy (N, Cout, P).
pub fn conv_bwd_bias(n: usize, cout: usize, p: usize, dy: &[f32]) -> Vec<f32> {
    assert_eq!(dy.len(), n * cout * p, "conv output-gradient size");
    let mut db = vec![0f32; cout];
    if p == 0 {
        return db;
    }
    // One partial sum (f64) per image, in parallel; then added in order.
    let parts: Vec<Vec<f64>> = dy
        .par_chunks(cout * p)
        .map(|img| {
            img.chunks_exact(p)
                .map(|plane| plane.iter().map(|&v| v as f64).sum())
                .collect()
        })
        .collect();
    for part in &parts {
        for (d, v) in db.iter_mut().zip(part) {
            *d += *v as f32;
        }
    }
    db
}

/// Input gradient: dx (N, Cin, H, W) from dy (N, Cout, Ho, Wo) and w (Cout, Cin, kh, kw).
pub fn conv_bwd_input(g: &Geom, dy: &[f32], w: &[f32]) -> Vec<f32> {
    if let Some(c) = channel_fwd(g, ChannelFwd::transposed) {
        return c.forward(g.n, dy, w, true, None);
    }
    if dense(g) {
        return conv_dense::backward_input(g, dy, w);
    }
    match direct_geom(g, true) {
        Some(d) => direct_fwd(&d, g.n, dy, w, true, None, None),
        None => gemm_bwd_input(g, dy, w),
    }
}

/// Weight gradient: dw (Cout, Cin, kh, kw) = sum over images of dy . patches(x)^T. With `map`,
/// of `map` applied to x: the channel-lane and direct kernels read x through the map as they
/// fill their buffers (stride 1), the other paths get the mapped tensor; the same path and bits
/// as on the mapped tensor.
pub fn conv_bwd_weight(g: &Geom, x: &[f32], dy: &[f32], map: Option<&BnReluInput>) -> Vec<f32> {
    if dense(g) {
        return conv_dense::backward_weight(g, &mapped(g, x, map), dy);
    }
    if let Some(c) = channel_wgrad(g) {
        // The channel-lane form is stride 1.
        return c.weight_grad(g.n, x, dy, map);
    }
    match direct_geom(g, false).filter(|_| g.cin * g.cout <= DIRECT_WGRAD_MAX_PAIRS) {
        Some(d) if g.stride == 1 => direct_bwd_weight(&d, g.n, x, dy, map),
        Some(d) => direct_bwd_weight(&d, g.n, &mapped(g, x, map), dy, None),
        None => gemm_bwd_weight(g, &mapped(g, x, map), dy),
    }
}

/// Most (input, output) channel pairs for the direct weight gradient. It streams each pair's
/// share of a call's images through the cache once, without blocking over channels, so with many
/// pairs it loses to the GEMM's blocking (docs/cpu-bench.md, "The convolution paths' thresholds").
const DIRECT_WGRAD_MAX_PAIRS: usize = 64 * 64;

/// The direct kernels are used when at least this share of their lanes are output pixels.
const MIN_DIRECT_EFFICIENCY: f64 = 0.6;

/// Whether the direct kernels may be used (tests turn them off to check the GEMM path).
static DIRECT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Allows or forbids the direct kernels (the GEMM path then runs everywhere).
pub fn set_direct(enabled: bool) {
    DIRECT.store(enabled, std::sync::atomic::Ordering::Relaxed);
}

/// Whether a convolution takes the pixel-pair GEMMs of `conv_dense` (images no larger than the
/// kernel's reach; VGG-16's 2x2 layers). Off with the direct kernels, so that the tests of the
/// im2col path cover every shape.
fn dense(g: &Geom) -> bool {
    DIRECT.load(std::sync::atomic::Ordering::Relaxed) && conv_dense::applies(g)
}

/// Whether the channel-lane weight gradient may be used (benchmarks turn it off to compare).
static CHANNEL_WGRAD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Allows or forbids the channel-lane weight gradient (`conv_wgrad`).
pub fn set_channel_wgrad(enabled: bool) {
    CHANNEL_WGRAD.store(enabled, std::sync::atomic::Ordering::Relaxed);
}

/// Whether the channel-lane forward may be used (benchmarks turn it off to compare).
static CHANNEL_FWD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Allows or forbids the channel-lane forward and input gradient (`conv_cf`).
pub fn set_channel_fwd(enabled: bool) {
    CHANNEL_FWD.store(enabled, std::sync::atomic::Ordering::Relaxed);
}

/// The channel-lane form (`make`: of the convolution, or of the one computing its input
/// gradient) where it applies and the direct kernels are allowed, for at least as many images as
/// threads.
fn channel_fwd(g: &Geom, make: fn(&Geom) -> Option<ChannelFwd>) -> Option<ChannelFwd> {
    let threads = rayon::current_num_threads().max(1);
    let enabled = CHANNEL_FWD.load(std::sync::atomic::Ordering::Relaxed)
        && DIRECT.load(std::sync::atomic::Ordering::Relaxed);
    if !enabled || g.n < threads || g.n == 0 {
        return None;
    }
    make(g).filter(|c| c.pays())
}

/// Fewest taps (Cin*kh*kw) for the channel-lane weight gradient. With fewer, transposing dY
/// costs about as much as the products (docs/cpu-bench.md, "The convolution paths' thresholds").
const CHANNEL_WGRAD_MIN_TAPS: usize = 32 * 9;

/// The channel-lane weight gradient of this convolution, where it applies and the direct
/// kernels are allowed, for at least as many images as threads.
fn channel_wgrad(g: &Geom) -> Option<ChannelWgrad> {
    let threads = rayon::current_num_threads().max(1);
    let enabled = CHANNEL_WGRAD.load(std::sync::atomic::Ordering::Relaxed)
        && DIRECT.load(std::sync::atomic::Ordering::Relaxed);
    if !enabled || g.n < threads || g.n == 0 || g.k() < CHANNEL_WGRAD_MIN_TAPS {
        return None;
    }
    ChannelWgrad::new(g)
}

/// The direct (AVX-512) form of this convolution, or of the convolution computing its input
/// gradient (`transposed`, stride 1 only), when it applies: an AVX-512 CPU and at least as many
/// images as threads (smaller batches use the GEMM path, parallel inside the GEMM).
fn direct_geom(g: &Geom, transposed: bool) -> Option<Direct> {
    let threads = rayon::current_num_threads().max(1);
    let enabled = DIRECT.load(std::sync::atomic::Ordering::Relaxed);
    if !enabled || !conv_direct::available() || g.n < threads || g.n == 0 {
        return None;
    }
    let d = if transposed {
        if g.stride != 1 || g.pad_h >= g.kh || g.pad_w >= g.kw {
            return None;
        }
        let (ph, pw) = (g.kh - 1 - g.pad_h, g.kw - 1 - g.pad_w);
        let t = Geom::new(g.n, g.cout, g.ho, g.wo, g.cin, g.kh, g.kw, 1, ph, pw)?;
        Direct::new(&t, None)?
    } else {
        Direct::new(g, None)?
    };
    // Tiny images (2x2: a quarter of each vector) batch better in the GEMM path.
    (d.efficiency() >= MIN_DIRECT_EFFICIENCY).then_some(d)
}

/// The direct forward of `n` images (the input gradient with `flip`: `x` is then dy and `w` the
/// original weight), in parallel over images, plus `bias`; x read through `map` if given.
fn direct_fwd(
    d: &Direct,
    n: usize,
    x: &[f32],
    w: &[f32],
    flip: bool,
    bias: Option<&[f32]>,
    map: Option<&BnReluInput>,
) -> Vec<f32> {
    let img_in = d.g.cin * d.g.h * d.g.w;
    let img_out = d.g.cout * d.g.ho * d.g.wo;
    assert_eq!(x.len(), n * img_in, "conv input size");
    assert_eq!(w.len(), d.g.cout * d.offs.len(), "conv weight size");
    with_weights(d.wt_len(), |wt| {
        d.pack_weights(w, flip, wt);
        let wt = &*wt;
        // Chunks of images, at least two per thread.
        let threads = rayon::current_num_threads().max(1);
        let cb = d.chunk_images.min(n.div_ceil(2 * threads)).max(1);
        image_chunks(x, n, cb, img_in, img_out, |xs, nb, yc| {
            with_scratch(d.xp_len(nb) + d.out_len(), |s| {
                let (xp, out) = s.split_at_mut(d.xp_len(nb));
                d.fill_buffer_mapped(xs, nb, xp, map);
                // Writes every element of the chunk.
                d.forward(xp, nb, wt, bias, out, yc);
            });
        })
    })
}

/// The direct weight gradient of `n` images: groups of images in parallel, each summed over
/// chunks of images, one kernel call per chunk and tile.
fn direct_bwd_weight(
    d: &Direct,
    n: usize,
    x: &[f32],
    dy: &[f32],
    map: Option<&BnReluInput>,
) -> Vec<f32> {
    let img_in = d.g.cin * d.g.h * d.g.w;
    let img_out = d.g.cout * d.g.ho * d.g.wo;
    let size = d.g.cout * d.offs.len();
    assert_eq!(x.len(), n * img_in, "conv input size");
    assert_eq!(dy.len(), n * img_out, "conv output-gradient size");
    // Images per kernel call: as many as fit the byte budget, but at least enough for 64 output
    // vectors (the lane sums at the end of a call cost about as much as 10 vectors).
    let by_bytes = DIRECT_WGRAD_BYTES / (4 * d.img_xp()).max(1);
    let by_vectors = 64usize.div_ceil(d.vecs.len().max(1));
    let target = by_bytes.max(by_vectors).max(1);
    // Groups of images in parallel, one partial sum each: up to 4 per thread (a thread slowed
    // down by other work then holds up less; work stealing balances them), as long as a group
    // still fills a call; at least one per thread.
    let threads = rayon::current_num_threads().max(1);
    let groups = (n / target).clamp(threads, 4 * threads).clamp(1, n.max(1));
    let per_group = n.div_ceil(groups);
    // Calls evened out over a group.
    let cb = per_group
        .div_ceil(per_group.div_ceil(target.min(per_group).max(1)))
        .max(1);
    let pairs = d.image_vectors(cb);
    let mut parts = grouped_partials(n, groups, cb, size, |b0, nb, part| {
        let xs = &x[b0 * img_in..(b0 + nb) * img_in];
        let dys = &dy[b0 * img_out..(b0 + nb) * img_out];
        with_scratch(d.xp_len(nb) + d.dyp_len(nb), |s| {
            let (xp, dyp) = s.split_at_mut(d.xp_len(nb));
            d.fill_buffer_mapped(xs, nb, xp, map);
            d.weight_grad(xp, dys, nb, &pairs, dyp, part);
        });
    });
    let (head, tail) = parts.split_at_mut(size);
    for t in tail.chunks_exact(size) {
        for (a, b) in head.iter_mut().zip(t) {
            *a += *b;
        }
    }
    parts.truncate(size);
    parts
}
