//! A validation split (`--val-split N`): N images held out of every worker's shard of the
//! training set, scored at each evaluation beside the test set, so hyperparameters can be chosen
//! without looking at the test set.
//!
//! Which images: the first `N x shards` of one permutation of the training set drawn from a
//! fixed seed ([`VALIDATION_SEED`], never the run's), so every seed and method of a data set holds
//! out the same images, and a run with more workers holds out a superset. Both parts keep the
//! training set's order; the shards are then drawn from what is left, as without a split.

use std::path::Path;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::{DataError, Dataset, Split};

/// The seed of the held-out images' permutation: fixed, so they do not depend on `--seed`.
pub const VALIDATION_SEED: u64 = 0x7661_6c69_6461_7465; // "validate"

/// The validation set's one slot of `split`: the data set's own (a folder set's `val/`, read
/// from `data_dir`), or `--val-split`'s `per_shard` images held out of each of `shards` shards.
/// Both at once are refused: which of the two a run was tuned on must not be a guess.
pub fn fill_validation(
    mut split: Split,
    per_shard: Option<usize>,
    shards: usize,
    batch_size: usize,
    data_dir: &Path,
) -> crate::Result<Split> {
    if let (Some(n), Some(_)) = (per_shard, &split.val) {
        return Err(crate::Error::usage(format!(
            "--val-split {n} with --dataset {}: {} is the data set's own validation set; give one of the two (leave out --val-split, or move that folder away)",
            split.kind,
            data_dir.join("val").display()
        )));
    }
    if split.val.is_none() {
        let (train, val) = validation(split.train, per_shard, shards, batch_size)?;
        (split.train, split.val) = (train, val);
    }
    Ok(split)
}

/// `--val-split`: the training set and the validation set of a run of `shards` workers with
/// batches of `batch_size` (no validation set without the flag). Refused when holding `per_shard`
/// images out of every shard would leave a shard without a batch of training images.
pub fn validation(
    train: Dataset,
    per_shard: Option<usize>,
    shards: usize,
    batch_size: usize,
) -> crate::Result<(Dataset, Option<Dataset>)> {
    let Some(n) = per_shard else {
        return Ok((train, None));
    };
    let shard = train.len() / shards;
    if shard.saturating_sub(n) < batch_size.max(1) {
        return Err(crate::Error::usage(format!(
            "--val-split {n}: each of the {shards} workers' shards has {shard} training images; holding {n} out leaves fewer than one batch of {batch_size}"
        )));
    }
    let (train, val) = hold_out(train, n, shards)?;
    Ok((train, Some(val)))
}

/// `train` split into (the images left for training, the `per_shard * shards` held out). The
/// caller makes sure some are left.
pub fn hold_out(
    train: Dataset,
    per_shard: usize,
    shards: usize,
) -> Result<(Dataset, Dataset), DataError> {
    let n = train.len();
    let held = per_shard.saturating_mul(shards).min(n);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(VALIDATION_SEED));
    let mut is_held = vec![false; n];
    for &i in &order[..held] {
        is_held[i] = true;
    }
    let (kept, val): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| !is_held[i]);
    Ok((subset(&train, &kept)?, subset(&train, &val)?))
}

/// The images of `data` at `indices`, in that order.
fn subset(data: &Dataset, indices: &[usize]) -> Result<Dataset, DataError> {
    let mut images = Vec::with_capacity(indices.len() * data.shape.len());
    for &i in indices {
        images.extend_from_slice(data.image(i));
    }
    let labels = indices.iter().map(|&i| data.labels[i]).collect();
    Dataset::new(images, labels, data.shape, data.num_classes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ImageShape;

    #[test]
    fn a_split_that_leaves_a_shard_without_a_batch_is_refused() {
        // 200 images over 4 shards: 50 each. Holding 18 out leaves 32 = one batch of 32.
        let (train, val) = validation(numbered(200), Some(18), 4, 32).unwrap();
        assert_eq!((train.len(), val.map(|v| v.len())), (128, Some(72)));
        let e = validation(numbered(200), Some(19), 4, 32).unwrap_err();
        assert!(e.to_string().contains("--val-split 19"), "{e}");
        assert!(validation(numbered(200), Some(60), 4, 1).is_err());
        let (all, none) = validation(numbered(200), None, 4, 32).unwrap();
        assert_eq!((all.len(), none.is_none()), (200, true));
    }

    /// `n` one-byte images whose byte is their index (mod 256) and label their index mod 10.
    fn numbered(n: usize) -> Dataset {
        let images = (0..n).map(|i| i as u8).collect();
        let labels = (0..n).map(|i| (i % 10) as u8).collect();
        Dataset::new(images, labels, ImageShape::new(1, 1, 1), 10).unwrap()
    }

    #[test]
    fn holds_out_n_per_shard_keeping_images_with_their_labels() {
        let (train, val) = hold_out(numbered(200), 5, 4).unwrap();
        assert_eq!((train.len(), val.len()), (180, 20));
        let mut all: Vec<u8> = train.images.iter().chain(&val.images).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..200).map(|i| i as u8).collect::<Vec<_>>());
        for d in [&train, &val] {
            for (img, label) in d.images.iter().zip(&d.labels) {
                assert_eq!(*img as usize % 10, *label as usize);
            }
            // The training set's order is kept.
            assert!(d.images.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn the_same_images_whatever_the_run_and_nested_over_worker_counts() {
        let (_, a) = hold_out(numbered(200), 3, 2).unwrap();
        let (_, b) = hold_out(numbered(200), 3, 2).unwrap();
        assert_eq!(a, b);
        let (_, more) = hold_out(numbered(200), 3, 4).unwrap();
        assert!(a.images.iter().all(|i| more.images.contains(i)));
        // A fixed seed, not the identity: the held-out images are spread over the set.
        assert_ne!(a.images, (0..6).collect::<Vec<u8>>());
    }
}
