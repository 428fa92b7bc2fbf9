//! Per-channel normalisation `(pixel / 255 - mean) / std`, as torchvision's `ToTensor` then
//! `Normalize`. Applied through a 256-entry table per channel: a batch is then one lookup per value.

use super::{DatasetKind, ImageShape};

/// Per-channel mean and standard deviation, in the [0, 1] pixel scale. A single entry applies to
/// every channel (used by `synthetic`, whose channel count is chosen at run time).
#[derive(Clone, Debug, PartialEq)]
pub struct Normalization {
    /// Mean per channel (or one for all).
    pub mean: Vec<f32>,
    /// Standard deviation per channel (or one for all).
    pub std: Vec<f32>,
}

impl Normalization {
    /// The usual statistics of each data set's training split.
    pub fn for_kind(kind: DatasetKind) -> Normalization {
        let (mean, std): (&[f32], &[f32]) = match kind {
            DatasetKind::Mnist => (&[0.1307], &[0.3081]),
            DatasetKind::FashionMnist => (&[0.2860], &[0.3530]),
            DatasetKind::Cifar10 => (&[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616]),
            DatasetKind::Cifar100 => (&[0.5071, 0.4865, 0.4409], &[0.2673, 0.2564, 0.2762]),
            // The synthetic generator centres pixels on 0.5 with noise of about 0.2.
            DatasetKind::Synthetic => (&[0.5], &[0.25]),
            // A folder's statistics are its training images' (`Split::norm`, from
            // `folder::stats::channel_stats`); nothing is known before they are read.
            DatasetKind::Folder => (&[0.0], &[1.0]),
        };
        Normalization {
            mean: mean.to_vec(),
            std: std.to_vec(),
        }
    }

    /// Mean 0, std 1 on every channel: plain `pixel / 255`.
    pub fn identity() -> Normalization {
        Normalization {
            mean: vec![0.0],
            std: vec![1.0],
        }
    }

    /// The normalised value of `pixel` in `channel`.
    ///
    /// # Panics
    /// If `channel` has no entry (and there is more than one entry).
    pub fn apply(&self, channel: usize, pixel: u8) -> f32 {
        let c = if self.mean.len() == 1 { 0 } else { channel };
        (pixel as f32 / 255.0 - self.mean[c]) / self.std[c]
    }

    /// The lookup tables for images with `channels` channels.
    ///
    /// # Panics
    /// If the statistics have neither one entry nor `channels` entries, or `mean` and `std` differ
    /// in length: a programming error, since both come from [`Normalization::for_kind`].
    pub fn table(&self, channels: usize) -> NormTable {
        assert!(
            self.mean.len() == self.std.len()
                && (self.mean.len() == 1 || self.mean.len() == channels),
            "normalisation has {} means and {} stds for {channels} channels",
            self.mean.len(),
            self.std.len()
        );
        let tables = (0..channels)
            .map(|c| std::array::from_fn(|p| self.apply(c, p as u8)))
            .collect();
        NormTable { tables }
    }
}

/// Per-channel lookup tables: `tables[c][p]` is the normalised value of pixel byte `p` in channel `c`.
#[derive(Clone, Debug)]
pub struct NormTable {
    tables: Vec<[f32; 256]>,
}

impl NormTable {
    /// The table of channel `c`.
    pub fn channel(&self, c: usize) -> &[f32; 256] {
        &self.tables[c]
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.tables.len()
    }

    /// Writes the normalised `src` image (CHW bytes of `shape`) into `out` (same length).
    pub fn write(&self, src: &[u8], shape: ImageShape, out: &mut [f32]) {
        let plane = shape.plane();
        for ((t, s), o) in self
            .tables
            .iter()
            .zip(src.chunks_exact(plane))
            .zip(out.chunks_exact_mut(plane))
        {
            for (o, &p) in o.iter_mut().zip(s) {
                *o = t[p as usize];
            }
        }
    }
}
