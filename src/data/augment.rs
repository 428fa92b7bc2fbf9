//! Training-time augmentation, as the standard CIFAR recipe in torchvision: `RandomCrop(32,
//! padding=4)` then `RandomHorizontalFlip()`. The crop pads the raw image with pixel value 0 (before
//! normalisation, as torchvision pads the image before `ToTensor`/`Normalize`), so the padding reads
//! as `(0 - mean) / std` after normalisation.
//!
//! The random draws are passed in as [`AugmentParams`], so the caller decides where randomness comes
//! from (the loader derives it from (seed, worker, epoch, index) to make resumed runs identical).

use super::normalize::NormTable;
use super::{DatasetKind, ImageShape};

/// Which augmentations to apply to training images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Augment {
    /// Zero padding on every side before a random crop back to the original size; 0 = no crop.
    pub crop_padding: usize,
    /// Flip horizontally with probability 1/2.
    pub hflip: bool,
}

/// One image's random draws: crop offset into the padded image and whether to flip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AugmentParams {
    /// Row of the crop's top edge in the padded image, `0..=2 * crop_padding`.
    pub dy: usize,
    /// Column of the crop's left edge in the padded image, `0..=2 * crop_padding`.
    pub dx: usize,
    /// Mirror the cropped image left-right.
    pub flip: bool,
}

impl Augment {
    /// No augmentation.
    pub const fn none() -> Augment {
        Augment {
            crop_padding: 0,
            hflip: false,
        }
    }

    /// The usual recipe per data set: CIFAR, and a folder of one's own images, get padding 4 +
    /// flip; the others nothing (flipping digits or clothes changes what they are, or is not
    /// customary).
    pub fn for_kind(kind: DatasetKind) -> Augment {
        match kind {
            DatasetKind::Cifar10 | DatasetKind::Cifar100 | DatasetKind::Folder => Augment {
                crop_padding: 4,
                hflip: true,
            },
            _ => Augment::none(),
        }
    }

    /// True when applying this changes nothing.
    pub fn is_identity(&self) -> bool {
        self.crop_padding == 0 && !self.hflip
    }

    /// Draws from 64 random bits: 24 bits each for the two offsets (the modulo bias is below 1e-6)
    /// and one bit for the flip.
    pub fn params_from_bits(&self, bits: u64) -> AugmentParams {
        let span = 2 * self.crop_padding as u64 + 1;
        AugmentParams {
            dy: ((bits & 0xFF_FFFF) % span) as usize,
            dx: (((bits >> 24) & 0xFF_FFFF) % span) as usize,
            flip: self.hflip && (bits >> 63) == 1,
        }
    }

    /// Writes image `src` (CHW bytes of `shape`), cropped and flipped as `p` says and normalised
    /// through `table`, into `out` (`shape.len()` values).
    pub fn write(
        &self,
        src: &[u8],
        shape: ImageShape,
        table: &NormTable,
        p: AugmentParams,
        out: &mut [f32],
    ) {
        let (h, w) = (shape.height, shape.width);
        let pad = self.crop_padding;
        let plane = shape.plane();
        for c in 0..shape.channels {
            let t = table.channel(c);
            let fill = t[0];
            let s = &src[c * plane..(c + 1) * plane];
            for y in 0..h {
                let row = &mut out[c * plane + y * w..c * plane + (y + 1) * w];
                // Source row: y + dy - pad in the unpadded image; outside it is padding.
                let sy = (y + p.dy).wrapping_sub(pad);
                if sy >= h {
                    row.fill(fill);
                    continue;
                }
                let srow = &s[sy * w..(sy + 1) * w];
                for (x, o) in row.iter_mut().enumerate() {
                    // Flip after the crop: output column x shows cropped column w-1-x.
                    let cx = if p.flip { w - 1 - x } else { x };
                    let sx = (cx + p.dx).wrapping_sub(pad);
                    *o = if sx < w { t[srow[sx] as usize] } else { fill };
                }
            }
        }
    }
}
