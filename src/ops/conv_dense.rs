//! Convolutions of images no larger than the kernel's reach, as matrix products without patches.
//!
//! When every output pixel's window covers every input pixel (VGG-16's last block: a 3x3 kernel
//! with padding 1 on 2x2 images), the convolution is a sum over the (output pixel q, input pixel
//! p) pairs, each with its own tap t(q, p) of the kernel:
//!
//!   Y[:, co, q] = sum over p of X[:, ci, p] . W[co, ci, t(q, p)]^T   (N x Cin times Cin x Cout)
//!
//! One GEMM per pair on the tensors as they lie (strided operands, no copies): Ho*Wo*H*W products
//! that multiply only real inputs, where the direct and im2col forms spend most of their taps on
//! padding (20 of 36 per output pixel and channel pair on 2x2 images). The input gradient and the
//! weight gradient are the same pairs transposed:
//!
//!   dX[:, ci, p] = sum over q of dY[:, co, q] . W[co, ci, t(q, p)]
//!   dW[co, ci, t(q, p)] += dY[:, co, q]^T . X[:, ci, p]

use super::cpu::{gemm_parallelism, sgemm, Mat};
use super::im2col::Geom;

/// Whether every (output pixel, input pixel) pair has its tap inside the kernel.
pub fn applies(g: &Geom) -> bool {
    let covers = |o: usize, i: usize, s: usize, pad: usize, k: usize| {
        (i + pad).checked_sub(o * s).is_some_and(|t| t < k)
    };
    g.n > 0
        && g.cin > 0
        && g.cout > 0
        && (0..g.ho).all(|oy| (0..g.h).all(|iy| covers(oy, iy, g.stride, g.pad_h, g.kh)))
        && (0..g.wo).all(|ox| (0..g.w).all(|ix| covers(ox, ix, g.stride, g.pad_w, g.kw)))
}

/// Every (output pixel q, input pixel p, tap) of the geometry.
fn pairs(g: &Geom) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    (0..g.ho * g.wo).flat_map(move |q| {
        let (oy, ox) = (q / g.wo, q % g.wo);
        (0..g.h * g.w).map(move |p| {
            let (iy, ix) = (p / g.w, p % g.w);
            let ki = iy + g.pad_h - oy * g.stride;
            let kj = ix + g.pad_w - ox * g.stride;
            (q, p, ki * g.kw + kj)
        })
    })
}

/// Forward: y (N, Cout, Ho, Wo) of x (N, Cin, H, W) and w (Cout, Cin, kh, kw), plus `bias`.
pub fn forward(g: &Geom, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (p_in, q_out, taps) = (g.h * g.w, g.ho * g.wo, g.kh * g.kw);
    assert_eq!(x.len(), g.n * g.cin * p_in, "conv input size");
    assert_eq!(w.len(), g.cout * g.cin * taps, "conv weight size");
    let mut y = vec![0f32; g.n * g.cout * q_out];
    if let Some(b) = bias {
        for (i, plane) in y.chunks_exact_mut(q_out).enumerate() {
            plane.fill(b[i % g.cout]);
        }
    }
    let par = gemm_parallelism(g.n * g.cin * g.cout);
    for (q, p, t) in pairs(g) {
        // (N x Cin) at x[b*Cin*P + ci*P + p]; (Cin x Cout) at w[co*Cin*T + ci*T + t].
        let lhs = Mat {
            data: &x[p..],
            rs: g.cin * p_in,
            cs: p_in,
        };
        let rhs = Mat {
            data: &w[t..],
            rs: taps,
            cs: g.cin * taps,
        };
        let acc = bias.is_some() || p > 0;
        sgemm(
            g.n,
            g.cout,
            g.cin,
            &mut y[q..],
            g.cout * q_out,
            q_out,
            acc,
            lhs,
            rhs,
            par,
        );
    }
    y
}

/// Input gradient: dx (N, Cin, H, W) of dy (N, Cout, Ho, Wo) and w (Cout, Cin, kh, kw).
pub fn backward_input(g: &Geom, dy: &[f32], w: &[f32]) -> Vec<f32> {
    let (p_in, q_out, taps) = (g.h * g.w, g.ho * g.wo, g.kh * g.kw);
    assert_eq!(dy.len(), g.n * g.cout * q_out, "conv output-gradient size");
    assert_eq!(w.len(), g.cout * g.cin * taps, "conv weight size");
    let mut dx = vec![0f32; g.n * g.cin * p_in];
    let par = gemm_parallelism(g.n * g.cin * g.cout);
    for (q, p, t) in pairs(g) {
        // (N x Cout) at dy[b*Cout*Q + co*Q + q]; (Cout x Cin) at w[co*Cin*T + ci*T + t].
        let lhs = Mat {
            data: &dy[q..],
            rs: g.cout * q_out,
            cs: q_out,
        };
        let rhs = Mat {
            data: &w[t..],
            rs: g.cin * taps,
            cs: taps,
        };
        sgemm(
            g.n,
            g.cin,
            g.cout,
            &mut dx[p..],
            g.cin * p_in,
            p_in,
            q > 0,
            lhs,
            rhs,
            par,
        );
    }
    dx
}

/// Weight gradient: dw (Cout, Cin, kh, kw) of x (N, Cin, H, W) and dy (N, Cout, Ho, Wo). Taps no
/// pair reaches (those that only ever meet padding, as all but the centre on a 1x1 image) stay
/// zero, which is their gradient.
pub fn backward_weight(g: &Geom, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (p_in, q_out, taps) = (g.h * g.w, g.ho * g.wo, g.kh * g.kw);
    assert_eq!(x.len(), g.n * g.cin * p_in, "conv input size");
    assert_eq!(dy.len(), g.n * g.cout * q_out, "conv output-gradient size");
    let mut dw = vec![0f32; g.cout * g.cin * taps];
    let par = gemm_parallelism(g.n * g.cin * g.cout);
    for (q, p, t) in pairs(g) {
        // (Cout x N) at dy[b*Cout*Q + co*Q + q]; (N x Cin) at x[b*Cin*P + ci*P + p].
        let lhs = Mat {
            data: &dy[q..],
            rs: q_out,
            cs: g.cout * q_out,
        };
        let rhs = Mat {
            data: &x[p..],
            rs: g.cin * p_in,
            cs: p_in,
        };
        sgemm(
            g.cout,
            g.cin,
            g.n,
            &mut dw[t..],
            g.cin * taps,
            taps,
            true,
            lhs,
            rhs,
            par,
        );
    }
    dw
}
