//! One split of a data set held in memory as bytes, and the train/test pair.

use super::{DataError, DatasetKind, ImageShape, Normalization};

/// One split: `n` images of `shape` stored as `u8`, CHW per image, images one after another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    /// `len() * shape.len()` bytes.
    pub images: Vec<u8>,
    /// One label per image, each `< num_classes`.
    pub labels: Vec<u8>,
    /// Shape of every image.
    pub shape: ImageShape,
    /// Number of classes the labels index into.
    pub num_classes: usize,
}

impl Dataset {
    /// A data set from its parts, checked: sizes agree and every label is `< num_classes`.
    pub fn new(
        images: Vec<u8>,
        labels: Vec<u8>,
        shape: ImageShape,
        num_classes: usize,
    ) -> Result<Self, DataError> {
        if shape.is_empty() {
            return Err(DataError::Invalid(format!("image shape {shape} is empty")));
        }
        if images.len() != labels.len() * shape.len() {
            return Err(DataError::Invalid(format!(
                "{} image bytes for {} labels of shape {shape} (expected {})",
                images.len(),
                labels.len(),
                labels.len() * shape.len()
            )));
        }
        if let Some((i, &v)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &v)| v as usize >= num_classes)
        {
            return Err(DataError::Invalid(format!(
                "label {v} at index {i} is out of range (must be < {num_classes})"
            )));
        }
        Ok(Dataset {
            images,
            labels,
            shape,
            num_classes,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The bytes of image `i` (CHW).
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let d = self.shape.len();
        &self.images[i * d..(i + 1) * d]
    }

    /// Keeps only the first `n` images (no-op when `n >= len()`): quick runs and tests.
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.labels.truncate(n);
            self.images.truncate(n * self.shape.len());
        }
    }

    /// Images per class, indexed by label (labels out of range are not counted).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }
}

/// A data set's training and test splits.
#[derive(Clone, Debug)]
pub struct Split {
    /// Training split (sharded over workers).
    pub train: Dataset,
    /// Test split (evaluation only).
    pub test: Dataset,
    /// A validation split the data set brings itself: a folder set's `val/` (same classes and
    /// shape as `train`); `None` for every other set.
    pub val: Option<Dataset>,
    /// The class names, label i being `classes[i]`: a folder set's class folders; `None` for
    /// the built-in sets.
    pub classes: Option<Vec<String>>,
    /// The per-channel statistics batches are normalised with: the usual figures of a built-in
    /// set, the training images' own for a folder set.
    pub norm: Normalization,
    /// Which data set this is.
    pub kind: DatasetKind,
}
