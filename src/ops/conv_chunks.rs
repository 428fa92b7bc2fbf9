//! How the CPU convolution kernels share a batch among the threads of the current rayon pool:
//! an output filled chunk of images by chunk of images, and a weight gradient summed per group of
//! images into partials that the caller adds.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// A fresh output of `n` images of `img_out` values, filled in parallel by
/// `body(input images, images, output chunk)` over chunks of `cb` images of `x` (`img_in` values
/// each). `body` must write every element of its chunk: the output is not zeroed first.
pub(super) fn image_chunks(
    x: &[f32],
    n: usize,
    cb: usize,
    img_in: usize,
    img_out: usize,
    body: impl Fn(&[f32], usize, &mut [MaybeUninit<f32>]) + Sync + Send,
) -> Vec<f32> {
    let len = n * img_out;
    let mut y: Vec<f32> = Vec::with_capacity(len);
    if len > 0 {
        y.spare_capacity_mut()[..len]
            .par_chunks_mut(cb * img_out)
            .enumerate()
            .for_each(|(c, yc)| {
                let nb = yc.len() / img_out;
                body(&x[c * cb * img_in..(c * cb + nb) * img_in], nb, yc);
            });
    }
    // SAFETY: `body` wrote all `len` elements (a panic above leaves the length at 0).
    unsafe { y.set_len(len) };
    y
}

/// Partial sums of a weight gradient over `n` images cut into `groups` contiguous groups run in
/// parallel, each of `part_len` floats (zeroed) fed `body(first image, images, partial)` once per
/// chunk of at most `cb` images of its group. The partials, side by side, are returned unsummed.
pub(super) fn grouped_partials(
    n: usize,
    groups: usize,
    cb: usize,
    part_len: usize,
    body: impl Fn(usize, usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let mut parts = vec![0f32; groups * part_len];
    if part_len == 0 {
        return parts;
    }
    parts
        .par_chunks_mut(part_len)
        .enumerate()
        .for_each(|(gi, part)| {
            let (b_start, b_end) = (gi * n / groups, (gi + 1) * n / groups);
            let mut b0 = b_start;
            while b0 < b_end {
                let nb = cb.max(1).min(b_end - b0);
                body(b0, nb, part);
                b0 += nb;
            }
        });
    parts
}
