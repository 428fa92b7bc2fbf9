//! Batches: per-worker training shards, in-order evaluation batches, and uniform samples.
//!
//! A [`ShardLoader`] keeps no random state: the order of epoch `e` is a permutation derived from
//! (seed, e), the same for every worker, and worker `i` of `m` reads its own contiguous slice of it.
//! Augmentation draws come from (seed, worker, epoch, index within the shard). So (epoch, index) is
//! all a checkpoint needs to resume the exact same batches.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::augment::Augment;
use super::normalize::{NormTable, Normalization};
use super::seed::derive_seed;
use super::{DataError, Dataset, ImageShape};

// Tags mixed into seeds so the epoch orders and the augmentation draws are independent streams.
const TAG_ORDER: u64 = 0x006f_7264_6572; // "order"
const TAG_AUGMENT: u64 = 0x6175_676d; // "augm"

/// A batch ready for the model: images as `f32` NCHW, normalised (and augmented when training).
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `len() * shape.len()` values, image after image.
    pub images: Vec<f32>,
    /// Class of each image.
    pub labels: Vec<u32>,
    /// Shape of each image.
    pub shape: ImageShape,
}

impl Batch {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Assembles a batch from the images at `indices`, normalised, without augmentation.
    pub fn gather(dataset: &Dataset, table: &NormTable, indices: &[usize]) -> Batch {
        let d = dataset.shape.len();
        let mut images = vec![0f32; indices.len() * d];
        for (&i, out) in indices.iter().zip(images.chunks_exact_mut(d)) {
            table.write(dataset.image(i), dataset.shape, out);
        }
        Batch {
            images,
            labels: indices.iter().map(|&i| dataset.labels[i] as u32).collect(),
            shape: dataset.shape,
        }
    }
}

/// The order of epoch `epoch`: a permutation of `0..n` derived from `(seed, epoch)` alone.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut rng = StdRng::seed_from_u64(derive_seed(&[seed, TAG_ORDER, epoch as u64]));
    order.shuffle(&mut rng);
    order
}

/// Training batches for worker `worker` of `workers`.
///
/// Each epoch the whole index set is permuted with a seed derived from (seed, epoch) (the same for
/// all workers), then worker `i` takes the slice `i * s .. (i + 1) * s` with `s = n / workers`: shards
/// are disjoint within an epoch, equal in size, and together cover the set except `n % workers`
/// samples (different ones each epoch). Only full batches are produced (drop last); the loader rolls
/// over to the next epoch by itself.
#[derive(Clone, Debug)]
pub struct ShardLoader {
    dataset: Arc<Dataset>,
    table: NormTable,
    augment: Augment,
    batch_size: usize,
    worker: usize,
    workers: usize,
    seed: u64,
    shard_len: usize,
    epoch: usize,
    index: usize,
    /// This worker's slice of the current epoch's order.
    shard: Vec<u32>,
}

impl ShardLoader {
    /// A loader positioned at the start of epoch 0.
    ///
    /// # Panics
    /// When [`ShardLoader::try_new`] would return an error.
    pub fn new(
        dataset: Arc<Dataset>,
        norm: Normalization,
        augment: Augment,
        batch_size: usize,
        worker: usize,
        workers: usize,
        seed: u64,
    ) -> Self {
        match Self::try_new(dataset, norm, augment, batch_size, worker, workers, seed) {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        }
    }

    /// As [`ShardLoader::new`], but an error when the parameters cannot work: no workers, `worker`
    /// not below `workers`, a zero batch, a shard smaller than one batch, or normalisation
    /// statistics for another channel count.
    pub fn try_new(
        dataset: Arc<Dataset>,
        norm: Normalization,
        augment: Augment,
        batch_size: usize,
        worker: usize,
        workers: usize,
        seed: u64,
    ) -> Result<Self, DataError> {
        let bad = |m: String| Err(DataError::Invalid(m));
        if workers == 0 || worker >= workers {
            return bad(format!("worker {worker} of {workers} workers"));
        }
        if batch_size == 0 {
            return bad("batch size 0".to_string());
        }
        let shard_len = dataset.len() / workers;
        if shard_len < batch_size {
            return bad(format!(
                "batch size {batch_size} is larger than a worker's shard ({} samples / {workers} \
                 workers = {shard_len})",
                dataset.len()
            ));
        }
        let c = dataset.shape.channels;
        if norm.mean.len() != norm.std.len() || (norm.mean.len() != 1 && norm.mean.len() != c) {
            return bad(format!(
                "normalisation has {} means and {} stds for {c} channels",
                norm.mean.len(),
                norm.std.len()
            ));
        }
        let table = norm.table(c);
        let mut loader = ShardLoader {
            dataset,
            table,
            augment,
            batch_size,
            worker,
            workers,
            seed,
            shard_len,
            epoch: 0,
            index: 0,
            shard: Vec::new(),
        };
        loader.load_epoch_order();
        Ok(loader)
    }

    fn load_epoch_order(&mut self) {
        let order = epoch_order(self.dataset.len(), self.seed, self.epoch);
        let start = self.worker * self.shard_len;
        self.shard = order[start..start + self.shard_len].to_vec();
    }

    /// The next full batch; moves to the next epoch after the last full batch of this one.
    pub fn next_batch(&mut self) -> Batch {
        let (bs, d, shape) = (
            self.batch_size,
            self.dataset.shape.len(),
            self.dataset.shape,
        );
        let ids = &self.shard[self.index..self.index + bs];
        let mut images = vec![0f32; bs * d];
        for (k, (&i, out)) in ids.iter().zip(images.chunks_exact_mut(d)).enumerate() {
            let src = self.dataset.image(i as usize);
            if self.augment.is_identity() {
                self.table.write(src, shape, out);
            } else {
                let bits = derive_seed(&[
                    self.seed,
                    TAG_AUGMENT,
                    self.worker as u64,
                    self.epoch as u64,
                    (self.index + k) as u64,
                ]);
                let p = self.augment.params_from_bits(bits);
                self.augment.write(src, shape, &self.table, p, out);
            }
        }
        let labels = ids
            .iter()
            .map(|&i| self.dataset.labels[i as usize] as u32)
            .collect();
        self.index += bs;
        // Roll over eagerly so that position() after the last batch of an epoch is (epoch + 1, 0)
        // and epoch() counts completed epochs.
        if self.index + bs > self.shard_len {
            self.epoch += 1;
            self.index = 0;
            self.load_epoch_order();
        }
        Batch {
            images,
            labels,
            shape,
        }
    }

    /// Epochs completed by this loader.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// (epoch, index within the shard) of the next batch: what a checkpoint stores.
    pub fn position(&self) -> (usize, usize) {
        (self.epoch, self.index)
    }

    /// Moves to (epoch, index within the shard), as returned by [`ShardLoader::position`]. An index
    /// too close to the shard's end for one more full batch means the start of the next epoch.
    pub fn seek(&mut self, epoch: usize, index: usize) {
        let (epoch, index) = if index + self.batch_size > self.shard_len {
            (epoch + 1, 0)
        } else {
            (epoch, index)
        };
        let reload = epoch != self.epoch;
        self.epoch = epoch;
        self.index = index;
        if reload {
            self.load_epoch_order();
        }
    }

    /// Full batches per epoch: `shard_len() / batch_size`.
    pub fn batches_per_epoch(&self) -> usize {
        self.shard_len / self.batch_size
    }

    /// Samples in this worker's shard each epoch: `n / workers`.
    pub fn shard_len(&self) -> usize {
        self.shard_len
    }

    /// This loader's worker number and the number of workers.
    pub fn worker(&self) -> (usize, usize) {
        (self.worker, self.workers)
    }

    /// Images per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The data set indices of this worker's shard in the current epoch, in reading order.
    pub fn shard_indices(&self) -> &[u32] {
        &self.shard
    }

    /// The data set being read.
    pub fn dataset(&self) -> &Arc<Dataset> {
        &self.dataset
    }
}

/// Evaluation batches over the whole set in order, no augmentation; the last batch may be short.
///
/// # Panics
/// If `batch_size` is 0, or `norm` does not fit the data set's channel count.
pub fn eval_batches<'a>(
    dataset: &'a Dataset,
    norm: &'a Normalization,
    batch_size: usize,
) -> impl Iterator<Item = Batch> + 'a {
    assert!(batch_size > 0, "eval_batches: batch size 0");
    let table = norm.table(dataset.shape.channels);
    let n = dataset.len();
    (0..n).step_by(batch_size).map(move |start| {
        let ids: Vec<usize> = (start..(start + batch_size).min(n)).collect();
        Batch::gather(dataset, &table, &ids)
    })
}

/// `n` samples drawn uniformly without replacement from the whole set (all of it, shuffled, when
/// `n >= len`), no augmentation: for probe gradients and batch-norm recalibration.
///
/// # Panics
/// If `norm` does not fit the data set's channel count.
pub fn sample_batch(
    dataset: &Dataset,
    norm: &Normalization,
    n: usize,
    rng: &mut impl rand::Rng,
) -> Batch {
    let table = norm.table(dataset.shape.channels);
    let ids = rand::seq::index::sample(rng, dataset.len(), n.min(dataset.len())).into_vec();
    Batch::gather(dataset, &table, &ids)
}
