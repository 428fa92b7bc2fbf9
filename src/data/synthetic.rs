//! A seeded synthetic classification set that needs no files: each class has a fixed prototype image
//! (a smooth random pattern around grey 0.5), and each sample is its class prototype plus Gaussian
//! pixel noise, clamped to [0, 1] and quantised to bytes.
//!
//! Difficulty is set so that a linear read-out can learn it but no single pixel tells the classes
//! apart: prototypes differ from each other by about [`SEPARATION`] noise standard deviations in
//! total (summed over all pixels), so a per-pixel difference is small against the noise. The best
//! possible classifier (nearest prototype) is then right about 97% of the time, and a model has to
//! average over many pixels to get there: a softmax regression reaches about 95% (1x28x28) or 92%
//! (3x32x32) after 100-200 SGD steps of 64, starting near chance. The patterns are blocks of about 4x4 pixels, so a convolutional network can
//! see them as well as an MLP.
//!
//! Train and test share the prototypes (derived from the seed) and draw their noise from different
//! derived seeds; labels cycle through the classes, so classes are balanced (counts differ by at most 1).

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::seed::derive_seed;
use super::{DataError, Dataset, ImageShape};

/// Standard deviation of the per-pixel noise, in the [0, 1] pixel scale.
pub const NOISE_STD: f32 = 0.2;
/// Typical distance between two class prototypes, in units of [`NOISE_STD`].
pub const SEPARATION: f32 = 5.0;
/// Side of the square pixel block that one random pattern value covers.
const BLOCK: usize = 4;

// Tags mixed into the seed so prototypes, train noise and test noise are independent streams.
const TAG_PROTOTYPES: u64 = 1;
const TAG_TRAIN: u64 = 2;
const TAG_TEST: u64 = 3;

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyntheticSpec {
    /// Image shape.
    pub shape: ImageShape,
    /// Number of classes (2..=256).
    pub num_classes: usize,
    /// Training samples.
    pub train: usize,
    /// Test samples.
    pub test: usize,
    /// Seed: the same seed gives the same bytes.
    pub seed: u64,
}

impl Default for SyntheticSpec {
    /// MNIST-shaped, 10 classes, 10000 train / 2000 test, seed 0.
    fn default() -> Self {
        SyntheticSpec {
            shape: ImageShape::new(1, 28, 28),
            num_classes: 10,
            train: 10_000,
            test: 2_000,
            seed: 0,
        }
    }
}

impl SyntheticSpec {
    /// Checks the spec can be generated: non-empty shape, 2..=256 classes, at least one train and
    /// one test sample.
    pub fn validate(&self) -> Result<(), DataError> {
        let bad = |m: String| Err(DataError::Invalid(format!("synthetic data set: {m}")));
        if self.shape.is_empty() {
            return bad(format!("image shape {} is empty", self.shape));
        }
        if !(2..=256).contains(&self.num_classes) {
            return bad(format!(
                "{} classes (must be 2 to 256: labels are bytes)",
                self.num_classes
            ));
        }
        if self.train == 0 || self.test == 0 {
            return bad(format!(
                "{} train and {} test samples (need at least 1 each)",
                self.train, self.test
            ));
        }
        Ok(())
    }

    /// The class prototypes, `num_classes * shape.len()` values in [0, 1] (before noise and
    /// clamping); exposed so tests can measure the best achievable accuracy.
    pub fn prototypes(&self) -> Vec<f32> {
        let (c, h, w) = (self.shape.channels, self.shape.height, self.shape.width);
        let (gh, gw) = (h.div_ceil(BLOCK), w.div_ceil(BLOCK));
        let d = self.shape.len();
        let k = self.num_classes;
        let mut rng = StdRng::seed_from_u64(derive_seed(&[self.seed, TAG_PROTOTYPES]));

        // Coarse Gaussian grids, blown up to blocks of pixels.
        let mut patterns = vec![0f32; k * d];
        for p in patterns.chunks_exact_mut(d) {
            let grid: Vec<f32> = (0..c * gh * gw)
                .map(|_| StandardNormal.sample(&mut rng))
                .collect();
            for ch in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        p[(ch * h + y) * w + x] = grid[(ch * gh + y / BLOCK) * gw + x / BLOCK];
                    }
                }
            }
        }
        // Remove the mean over classes (it carries no class information), then give each pattern
        // the norm R where two random patterns sit about R * sqrt(2) = SEPARATION * NOISE_STD apart.
        for i in 0..d {
            let mean = (0..k).map(|j| patterns[j * d + i]).sum::<f32>() / k as f32;
            for j in 0..k {
                patterns[j * d + i] -= mean;
            }
        }
        let radius = SEPARATION * NOISE_STD / std::f32::consts::SQRT_2;
        for p in patterns.chunks_exact_mut(d) {
            let norm = p.iter().map(|v| v * v).sum::<f32>().sqrt();
            let scale = if norm > 0.0 { radius / norm } else { 0.0 };
            for v in p.iter_mut() {
                *v = 0.5 + *v * scale;
            }
        }
        patterns
    }

    /// Generates (train, test).
    pub fn generate(&self) -> Result<(Dataset, Dataset), DataError> {
        self.validate()?;
        let protos = self.prototypes();
        let train = self.samples(&protos, self.train, TAG_TRAIN);
        let test = self.samples(&protos, self.test, TAG_TEST);
        Ok((train, test))
    }

    fn samples(&self, protos: &[f32], n: usize, tag: u64) -> Dataset {
        let d = self.shape.len();
        let k = self.num_classes;
        let split_seed = derive_seed(&[self.seed, tag]);
        let labels: Vec<u8> = (0..n).map(|i| (i % k) as u8).collect();
        let mut images = vec![0u8; n * d];
        // One generator per sample: the bytes do not depend on how rayon splits the work.
        images
            .par_chunks_exact_mut(d)
            .enumerate()
            .for_each(|(i, img)| {
                let mut rng = StdRng::seed_from_u64(derive_seed(&[split_seed, i as u64]));
                let proto = &protos[(i % k) * d..(i % k + 1) * d];
                for (o, &m) in img.iter_mut().zip(proto) {
                    let z: f32 = StandardNormal.sample(&mut rng);
                    *o = ((m + NOISE_STD * z).clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            });
        Dataset {
            images,
            labels,
            shape: self.shape,
            num_classes: k,
        }
    }
}
