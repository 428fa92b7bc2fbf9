//! Data sets: readers for the standard files, a seeded synthetic set, normalisation, augmentation,
//! per-worker shards and batches.
//!
//! Images are held as bytes (`u8`, CHW per image) in a [`Dataset`]; they become `f32` only when a
//! batch is assembled ([`ShardLoader`], [`eval_batches`], [`sample_batch`]), through per-channel
//! lookup tables. Layout expected under the data folder (`--data-dir` / `GRAWA_DATA`, default
//! `data/`):
//!
//! ```text
//! mnist/          train-images-idx3-ubyte  train-labels-idx1-ubyte      (each raw or .gz)
//! fashion-mnist/  t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte
//! cifar-10-batches-bin/  data_batch_1.bin .. data_batch_5.bin  test_batch.bin
//! cifar-100-binary/      train.bin  test.bin
//! ```
//!
//! `scripts/fetch-data.sh mnist|fashion-mnist|all` fetches the first two; CIFAR must be downloaded
//! by hand (see [`DatasetKind::fetch_hint`]). `--dataset folder` reads class folders from the data
//! folder itself ([`folder`]).

pub mod augment;
pub mod cifar;
mod dataset;
mod error;
pub mod files;
pub mod folder;
pub mod holdout;
pub mod idx;
mod kind;
pub mod loader;
pub mod normalize;
pub mod seed;
pub mod synthetic;

use std::path::Path;

pub use augment::{Augment, AugmentParams};
pub use dataset::{Dataset, Split};
pub use error::DataError;
pub use folder::FolderSpec;
pub use kind::{DatasetKind, ImageShape};
pub use loader::{eval_batches, sample_batch, Batch, ShardLoader};
pub use normalize::{NormTable, Normalization};
pub use synthetic::SyntheticSpec;

/// Loads both splits of `kind` from `data_dir` (see the module docs for the layout); `synthetic`
/// is only used for [`DatasetKind::Synthetic`], which reads no files. A folder data set is read
/// at the default [`FolderSpec`] (3x32x32, quietly): [`load_with`] chooses its shape.
pub fn load(
    kind: DatasetKind,
    data_dir: &Path,
    synthetic: &SyntheticSpec,
) -> Result<Split, DataError> {
    load_with(kind, data_dir, synthetic, &FolderSpec::default())
}

/// [`load`], with the shape a folder data set is decoded to and whether its decoding reports
/// progress (`folder`, used for [`DatasetKind::Folder`] only).
pub fn load_with(
    kind: DatasetKind,
    data_dir: &Path,
    synthetic: &SyntheticSpec,
    folder: &FolderSpec,
) -> Result<Split, DataError> {
    let (train, test) = match kind {
        DatasetKind::Mnist | DatasetKind::FashionMnist => {
            let dir = data_dir.join(kind.name());
            let shape = kind.image_shape().unwrap_or(ImageShape::new(1, 28, 28));
            let (k, hint) = (kind.num_classes(), kind.fetch_hint());
            // The two splits are independent files: read (and gunzip) them on two threads.
            let (train, test) = rayon::join(
                || idx::load_split(&dir, "train", shape, k, hint),
                || idx::load_split(&dir, "t10k", shape, k, hint),
            );
            (train?, test?)
        }
        DatasetKind::Cifar10 => cifar::load_cifar10(data_dir)?,
        DatasetKind::Cifar100 => cifar::load_cifar100(data_dir)?,
        DatasetKind::Synthetic => synthetic.generate()?,
        DatasetKind::Folder => return load_folder(data_dir, folder),
    };
    Ok(Split {
        train,
        test,
        val: None,
        classes: None,
        norm: Normalization::for_kind(kind),
        kind,
    })
}

/// A folder data set's splits, normalised with its training images' statistics.
fn load_folder(data_dir: &Path, spec: &FolderSpec) -> Result<Split, DataError> {
    let f = folder::load(data_dir, spec)?;
    Ok(Split {
        norm: folder::stats::channel_stats(&f.train),
        train: f.train,
        test: f.test,
        val: f.val,
        classes: Some(f.classes),
        kind: DatasetKind::Folder,
    })
}
