//! Per-channel mean and standard deviation of a split's pixels, in the [0, 1] scale: what
//! `Normalize` takes, computed as the usual recipe does (over every pixel of every training image,
//! the population standard deviation).

use rayon::prelude::*;

use crate::data::{Dataset, Normalization};

/// A channel whose pixels are all equal has no spread to divide by: it is left unscaled.
const FLAT_STD: f32 = 1.0;

/// Counts of each byte value per channel, over `images` (CHW images of `channels` planes of
/// `plane` bytes): exact, and one pass.
fn histograms(images: &[u8], channels: usize, plane: usize) -> Vec<[u64; 256]> {
    let per_image = channels * plane;
    images
        .par_chunks(per_image * 64)
        .map(|chunk| {
            let mut h = vec![[0u64; 256]; channels];
            for image in chunk.chunks_exact(per_image) {
                for (c, pixels) in image.chunks_exact(plane).enumerate() {
                    for &p in pixels {
                        h[c][p as usize] += 1;
                    }
                }
            }
            h
        })
        .reduce(
            || vec![[0u64; 256]; channels],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(&b) {
                    for (u, v) in x.iter_mut().zip(y) {
                        *u += v;
                    }
                }
                a
            },
        )
}

/// The mean and population standard deviation of each channel of `data`'s images, pixels scaled
/// to [0, 1]. A constant channel gets std 1.
pub fn channel_stats(data: &Dataset) -> Normalization {
    let (channels, plane) = (data.shape.channels, data.shape.plane());
    let (mut mean, mut std) = (Vec::new(), Vec::new());
    for h in histograms(&data.images, channels, plane) {
        let n: u64 = h.iter().sum();
        let n = n.max(1) as f64;
        let m = h
            .iter()
            .enumerate()
            .map(|(v, &k)| v as f64 * k as f64)
            .sum::<f64>()
            / n;
        let var = h
            .iter()
            .enumerate()
            .map(|(v, &k)| (v as f64 - m).powi(2) * k as f64)
            .sum::<f64>()
            / n;
        mean.push((m / 255.0) as f32);
        let s = (var.sqrt() / 255.0) as f32;
        std.push(if s > 0.0 { s } else { FLAT_STD });
    }
    Normalization { mean, std }
}
