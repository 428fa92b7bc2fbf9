//! A per-channel transform a convolution applies to its input as it copies it into its image
//! buffer: relu(batch_norm(x)) with the constants of a BatchNorm forward. `bn_relu_conv` runs
//! its convolution on x through it, so relu(batch_norm(x)) is never written out as a tensor,
//! neither in the forward nor in the weight gradient's recompute.
//!
//! Each value is `bn_kernels::bn_relu`, the function BatchNorm's own forward writes with, so a
//! convolution through the map sees the same bits as one on BatchNorm's output.

use rayon::prelude::*;

use super::bn_kernels::{bn_relu, Affine};

/// relu((x - mean) * scale + beta) per input channel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BnReluInput<'a> {
    affine: &'a [Affine],
}

impl<'a> BnReluInput<'a> {
    /// One set of constants per input channel.
    pub fn new(affine: &'a [Affine]) -> Self {
        Self { affine }
    }

    pub fn channels(&self) -> usize {
        self.affine.len()
    }

    /// `dst[i] = f_c(src[i])` for values of channel `c`.
    #[inline]
    pub fn row(&self, c: usize, src: &[f32], dst: &mut [f32]) {
        let k = &self.affine[c];
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = bn_relu(k, s);
        }
    }

    /// The transformed tensor of `x` (images x channels x `plane` values), for the paths that
    /// do not copy their input into a buffer of their own.
    pub fn apply(&self, x: &[f32], plane: usize) -> Vec<f32> {
        let c = self.channels();
        let mut out = vec![0f32; x.len()];
        if plane > 0 {
            out.par_chunks_mut(plane)
                .zip(x.par_chunks(plane))
                .enumerate()
                .for_each(|(i, (o, s))| self.row(i % c, s, o));
        }
        out
    }
}
