//! The CPU loops behind `ops::batch_norm`: one channel of an (N, C, H*W) f32 tensor at a time.
//!
//! A channel is N planes of H*W contiguous values, plane n at `(n * C + c) * H*W`. Sums run in
//! f32 over 16 independent lanes within a block of about `BLOCK` values (so LLVM vectorises them;
//! the lane count, not the instruction set, fixes the rounding, so results are the same on every
//! x86 machine) and in f64 across blocks. Each entry point is compiled twice, for AVX-512 and for
//! the baseline, and picks one at run time.
//!
//! Outputs are written through `OutPtr` into buffers whose planes of channel `c` only channel
//! `c`'s task touches, so channels run in parallel without locks.

use std::mem::MaybeUninit;

/// Lanes of the f32 partial sums.
const L: usize = 16;
/// Planes smaller than this are not worth a per-plane two-pass; the channel is summed in f64.
const SMALL_PLANE: usize = 16;

/// (N, C, H*W) of an NCHW tensor; H*W is 1 for an (N, C) one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    pub n: usize,
    pub c: usize,
    pub hw: usize,
}

impl Geometry {
    pub fn len(&self) -> usize {
        self.n * self.c * self.hw
    }
    /// Values per channel (N * H * W).
    pub fn per_channel(&self) -> usize {
        self.n * self.hw
    }
    #[inline(always)]
    fn offset(&self, n: usize, c: usize) -> usize {
        (n * self.c + c) * self.hw
    }
    #[inline(always)]
    fn plane<'a>(&self, s: &'a [f32], n: usize, c: usize) -> &'a [f32] {
        &s[self.offset(n, c)..][..self.hw]
    }
}

/// The start of an output buffer of `Geometry::len()` values, shared by the channel tasks.
#[derive(Clone, Copy)]
pub(crate) struct OutPtr(pub *mut f32);
// SAFETY: tasks write disjoint planes (those of their own channel), see the module docs.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// Plane (n, c) as uninitialised output.
    ///
    /// # Safety
    /// The buffer holds `g.len()` values and no one else touches this plane meanwhile.
    #[inline(always)]
    unsafe fn plane<'a>(self, g: &Geometry, n: usize, c: usize) -> &'a mut [MaybeUninit<f32>] {
        std::slice::from_raw_parts_mut(self.0.add(g.offset(n, c)) as *mut MaybeUninit<f32>, g.hw)
    }
}

#[inline(always)]
fn lanes_to_f64(acc: &[f32; L]) -> f64 {
    acc.iter().map(|&v| v as f64).sum()
}

/// Adds x - k over a plane into the lanes; returns the remainder's sum.
#[inline(always)]
fn acc_sum_shifted(acc: &mut [f32; L], x: &[f32], k: f32) -> f64 {
    let chunks = x.chunks_exact(L);
    let rest = chunks.remainder();
    for c in chunks {
        let c: &[f32; L] = c.try_into().unwrap();
        for l in 0..L {
            acc[l] += c[l] - k;
        }
    }
    rest.iter().map(|&v| (v - k) as f64).sum::<f64>()
}

/// Adds (x - a)^2 over a plane into the lanes; returns the remainder's sum.
#[inline(always)]
fn acc_sq_dev(acc: &mut [f32; L], x: &[f32], a: f32) -> f64 {
    let chunks = x.chunks_exact(L);
    let rest = chunks.remainder();
    for c in chunks {
        let c: &[f32; L] = c.try_into().unwrap();
        for l in 0..L {
            let d = c[l] - a;
            acc[l] += d * d;
        }
    }
    rest.iter()
        .map(|&v| {
            let d = (v - a) as f64;
            d * d
        })
        .sum::<f64>()
}

/// Values per block of planes: the unit of the two-pass (its second pass reads from L1) and of
/// the f32 partial sums (flushed to f64 once per block).
const BLOCK: usize = 2048;

/// Consecutive planes of a channel per block.
#[inline(always)]
fn planes_per_block(g: &Geometry) -> usize {
    (BLOCK / g.hw.max(1)).max(1)
}

/// Mean and biased variance of channel `c`: per block of planes a two-pass (the second pass
/// reads the block from L1), blocks merged with Chan et al.'s update in f64. Small planes (too
/// short for the lanes): a two-pass over the whole channel in f64.
#[inline(always)]
fn channel_stats_body(g: &Geometry, x: &[f32], c: usize) -> (f64, f64) {
    let m = g.per_channel() as f64;
    if g.hw < SMALL_PLANE {
        let mut s = 0f64;
        for n in 0..g.n {
            s += g.plane(x, n, c).iter().map(|&v| v as f64).sum::<f64>();
        }
        let mean = s / m;
        let mut q = 0f64;
        for n in 0..g.n {
            q += g
                .plane(x, n, c)
                .iter()
                .map(|&v| {
                    let d = v as f64 - mean;
                    d * d
                })
                .sum::<f64>();
        }
        return (mean, q / m);
    }
    let ppb = planes_per_block(g);
    let (mut count, mut mean, mut m2) = (0f64, 0f64, 0f64);
    // Sums in f32 are taken around a shift close to the data (the channel's first value, then the
    // previous block's mean), so a large mean does not eat their precision.
    let mut shift = match g.n {
        0 => 0.0,
        _ => g.plane(x, 0, c)[0],
    };
    let mut n0 = 0;
    while n0 < g.n {
        let n1 = (n0 + ppb).min(g.n);
        let bc = ((n1 - n0) * g.hw) as f64;
        let mut acc = [0f32; L];
        let mut rest = 0f64;
        for n in n0..n1 {
            rest += acc_sum_shifted(&mut acc, g.plane(x, n, c), shift);
        }
        let bm = shift as f64 + (lanes_to_f64(&acc) + rest) / bc;
        let a = bm as f32;
        shift = a;
        let mut acc = [0f32; L];
        let mut rest = 0f64;
        for n in n0..n1 {
            rest += acc_sq_dev(&mut acc, g.plane(x, n, c), a);
        }
        // Sum (x - bm)^2 from the sum around the rounded a: subtract bc (bm - a)^2.
        let da = bm - a as f64;
        let bm2 = (lanes_to_f64(&acc) + rest - bc * da * da).max(0.0);
        let total = count + bc;
        let delta = bm - mean;
        mean += delta * bc / total;
        m2 += bm2 + delta * delta * count * bc / total;
        count = total;
        n0 = n1;
    }
    (mean, m2 / count)
}

/// How the forward's output is formed from y = (x - mean) * scale + beta.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Epilogue {
    /// y
    None,
    /// max(0, y)
    Relu,
    /// max(0, y + residual)
    AddRelu,
}

/// Per-channel constants of y = (x - mean) * scale + beta. The mean is carried as two f32,
/// `mean + mean_lo`, so x - mean stays accurate when the mean is large against the spread.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Affine {
    pub mean: f32,
    pub mean_lo: f32,
    pub scale: f32,
    pub beta: f32,
}

impl Affine {
    pub fn new(mean: f64, scale: f64, beta: f32) -> Self {
        let hi = mean as f32;
        Self {
            mean: hi,
            mean_lo: (mean - hi as f64) as f32,
            scale: scale as f32,
            beta,
        }
    }
    /// x - mean.
    #[inline(always)]
    fn centered(&self, x: f32) -> f32 {
        (x - self.mean) - self.mean_lo
    }
    #[inline(always)]
    fn y(&self, x: f32) -> f32 {
        self.centered(x) * self.scale + self.beta
    }
}

/// BatchNorm's output with the ReLU for one value: the one definition, shared by the forward's
/// writes and by convolutions that read BatchNorm's input through `input_map`.
#[inline(always)]
pub(crate) fn bn_relu(k: &Affine, x: f32) -> f32 {
    relu(k.y(x))
}

#[inline(always)]
fn relu(v: f32) -> f32 {
    if v > 0.0 {
        v
    } else {
        0.0
    }
}

#[inline(always)]
unsafe fn write_channel_body(
    g: &Geometry,
    c: usize,
    x: &[f32],
    residual: Option<&[f32]>,
    out: OutPtr,
    k: Affine,
    epi: Epilogue,
) {
    // Backwards: the statistics pass just read the last planes, so they are the ones in cache.
    for n in (0..g.n).rev() {
        let xp = g.plane(x, n, c);
        let op = out.plane(g, n, c);
        match (epi, residual) {
            (Epilogue::None, _) => {
                for (o, &v) in op.iter_mut().zip(xp) {
                    o.write(k.y(v));
                }
            }
            (Epilogue::Relu, _) => {
                for (o, &v) in op.iter_mut().zip(xp) {
                    o.write(bn_relu(&k, v));
                }
            }
            (Epilogue::AddRelu, Some(r)) => {
                let rp = g.plane(r, n, c);
                for ((o, &v), &rv) in op.iter_mut().zip(xp).zip(rp) {
                    o.write(relu(k.y(v) + rv));
                }
            }
            (Epilogue::AddRelu, None) => unreachable!("AddRelu without a residual"),
        }
    }
}

/// What the backward needs of the forward besides x and dy: where the ReLU was active.
#[derive(Clone, Copy)]
pub(crate) enum Mask<'a> {
    /// No ReLU: g = dy.
    None,
    /// ReLU after BN: recompute y from x with the forward's constants (bit-identical).
    Recompute,
    /// ReLU after BN + residual: the forward's output z, g = dy where z > 0.
    Output(&'a [f32]),
}

/// Backward pass 1 over channel `c`: returns (sum g, sum g (x - mean)) and, for `Mask::Output`,
/// writes g into `dres` (the residual's gradient).
#[inline(always)]
unsafe fn backward_sums_body(
    g: &Geometry,
    c: usize,
    x: &[f32],
    dy: &[f32],
    mask: Mask,
    dres: Option<OutPtr>,
    k: Affine,
) -> (f64, f64) {
    let (mut s1, mut s2) = (0f64, 0f64);
    // f32 lanes over a block of planes, flushed to f64 at the block's end.
    let ppb = planes_per_block(g);
    let mut a1 = [0f32; L];
    let mut a2 = [0f32; L];
    let mut r1 = 0f64;
    let mut r2 = 0f64;
    for n in 0..g.n {
        let xp = g.plane(x, n, c);
        let dp = g.plane(dy, n, c);
        match mask {
            Mask::None | Mask::Recompute => {
                let recompute = matches!(mask, Mask::Recompute);
                let xc = xp.chunks_exact(L);
                let dc = dp.chunks_exact(L);
                let (xr, dr) = (xc.remainder(), dc.remainder());
                for (xs, ds) in xc.zip(dc) {
                    let xs: &[f32; L] = xs.try_into().unwrap();
                    let ds: &[f32; L] = ds.try_into().unwrap();
                    for l in 0..L {
                        let gv = if !recompute || k.y(xs[l]) > 0.0 {
                            ds[l]
                        } else {
                            0.0
                        };
                        a1[l] += gv;
                        a2[l] += gv * k.centered(xs[l]);
                    }
                }
                for (&xv, &dv) in xr.iter().zip(dr) {
                    let gv = if !recompute || k.y(xv) > 0.0 { dv } else { 0.0 };
                    r1 += gv as f64;
                    r2 += (gv * k.centered(xv)) as f64;
                }
            }
            Mask::Output(z) => {
                let zp = g.plane(z, n, c);
                let gp = dres.expect("Mask::Output needs dres").plane(g, n, c);
                let xc = xp.chunks_exact(L);
                let dc = dp.chunks_exact(L);
                let zc = zp.chunks_exact(L);
                let (xr, dr, zr) = (xc.remainder(), dc.remainder(), zc.remainder());
                let gc = gp.chunks_exact_mut(L);
                for (((xs, ds), zs), gs) in xc.zip(dc).zip(zc).zip(gc) {
                    let xs: &[f32; L] = xs.try_into().unwrap();
                    let ds: &[f32; L] = ds.try_into().unwrap();
                    let zs: &[f32; L] = zs.try_into().unwrap();
                    for l in 0..L {
                        let gv = if zs[l] > 0.0 { ds[l] } else { 0.0 };
                        gs[l].write(gv);
                        a1[l] += gv;
                        a2[l] += gv * k.centered(xs[l]);
                    }
                }
                let tail = gp.len() - xr.len();
                for (i, ((&xv, &dv), &zv)) in xr.iter().zip(dr).zip(zr).enumerate() {
                    let gv = if zv > 0.0 { dv } else { 0.0 };
                    gp[tail + i].write(gv);
                    r1 += gv as f64;
                    r2 += (gv * k.centered(xv)) as f64;
                }
            }
        }
        if (n + 1) % ppb == 0 || n + 1 == g.n {
            s1 += lanes_to_f64(&a1) + r1;
            s2 += lanes_to_f64(&a2) + r2;
            (a1, a2, r1, r2) = ([0f32; L], [0f32; L], 0.0, 0.0);
        }
    }
    (s1, s2)
}

/// Per-channel constants of dx = a g - b (x - mean) - cc.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DxCoef {
    pub a: f32,
    pub b: f32,
    pub cc: f32,
}

/// Backward pass 2 over channel `c`: dx. g is dy (`Mask::None`), dy with the mask recomputed
/// (`Mask::Recompute`) or, for `Mask::Output`, read back from this channel's planes of `dres`,
/// which pass 1 wrote.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn backward_dx_body(
    g: &Geometry,
    c: usize,
    x: &[f32],
    dy: &[f32],
    mask: Mask,
    dres: Option<OutPtr>,
    dx: OutPtr,
    k: Affine,
    d: DxCoef,
) {
    // Backwards: pass 1 just read the last planes, so they are the ones in cache.
    for n in (0..g.n).rev() {
        let xp = g.plane(x, n, c);
        let op = dx.plane(g, n, c);
        match mask {
            Mask::None => {
                let dp = g.plane(dy, n, c);
                for ((o, &xv), &gv) in op.iter_mut().zip(xp).zip(dp) {
                    o.write(d.a * gv - d.b * k.centered(xv) - d.cc);
                }
            }
            Mask::Recompute => {
                let dp = g.plane(dy, n, c);
                for ((o, &xv), &dv) in op.iter_mut().zip(xp).zip(dp) {
                    let gv = if k.y(xv) > 0.0 { dv } else { 0.0 };
                    o.write(d.a * gv - d.b * k.centered(xv) - d.cc);
                }
            }
            Mask::Output(_) => {
                let gp = dres.expect("Mask::Output needs dres").plane(g, n, c);
                // SAFETY: pass 1 of this channel, on this thread, initialised the plane.
                let gp: &[f32] = std::slice::from_raw_parts(gp.as_ptr() as *const f32, gp.len());
                for ((o, &xv), &gv) in op.iter_mut().zip(xp).zip(gp) {
                    o.write(d.a * gv - d.b * k.centered(xv) - d.cc);
                }
            }
        }
    }
}

macro_rules! dispatch {
    ($(#[$doc:meta])* $vis:vis unsafe fn $name:ident / $avx:ident = $body:ident
        ($($arg:ident : $ty:ty),* $(,)?) -> $ret:ty) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $avx($($arg: $ty),*) -> $ret {
            $body($($arg),*)
        }

        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        $vis unsafe fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    return $avx($($arg),*);
                }
            }
            $body($($arg),*)
        }
    };
}

dispatch! {
    /// Mean and biased variance of channel `c` of `x`.
    ///
    /// # Safety
    /// None beyond the signature's (unsafe only for the uniform dispatch).
    pub(crate) unsafe fn channel_stats / channel_stats_avx512 = channel_stats_body
        (g: &Geometry, x: &[f32], c: usize) -> (f64, f64)
}

dispatch! {
    /// Writes channel `c` of the forward's output.
    ///
    /// # Safety
    /// `out` holds `g.len()` values; no one else writes channel `c`'s planes meanwhile.
    pub(crate) unsafe fn write_channel / write_channel_avx512 = write_channel_body
        (g: &Geometry, c: usize, x: &[f32], residual: Option<&[f32]>, out: OutPtr, k: Affine,
         epi: Epilogue) -> ()
}

dispatch! {
    /// Backward pass 1 of channel `c` (see `backward_sums_body`).
    ///
    /// # Safety
    /// As `write_channel`, for `dres`.
    pub(crate) unsafe fn backward_sums / backward_sums_avx512 = backward_sums_body
        (g: &Geometry, c: usize, x: &[f32], dy: &[f32], mask: Mask, dres: Option<OutPtr>,
         k: Affine) -> (f64, f64)
}

dispatch! {
    /// Backward pass 2 of channel `c`: dx.
    ///
    /// # Safety
    /// As `write_channel`, for `dx`.
    pub(crate) unsafe fn backward_dx / backward_dx_avx512 = backward_dx_body
        (g: &Geometry, c: usize, x: &[f32], dy: &[f32], mask: Mask, dres: Option<OutPtr>,
         dx: OutPtr, k: Affine, d: DxCoef) -> ()
}
