//! `--dataset folder`: a researcher's own images, laid out as torchvision's `ImageFolder` reads
//! them, under the data folder:
//!
//! ```text
//! DIR/train/<class>/*.png|*.jpg|*.jpeg     required; the classes are train/'s sub-folders
//! DIR/test/<class>/...                     required; each class must be one of train/'s
//! DIR/val/<class>/...                      optional: a validation split, same rules as test/
//! ```
//!
//! Every image is decoded once, in parallel, to `channels` x `size` x `size` bytes
//! (`resize`: torchvision's `Resize(size)` then `CenterCrop(size)`) and the result cached beside
//! the data (`cache`), so the next run with the same files and shape reads one file instead. A
//! folder that cannot be used is refused before anything is written, naming the file or folder
//! and what is wrong: no `train/` or `test/`, a class with no image, a test or validation class
//! the training split lacks, more classes than labels can hold, a file that cannot be decoded.

mod cache;
pub mod resize;
pub mod scan;
pub mod stats;

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use super::{DataError, Dataset, ImageShape};
use scan::{find_classes, list_split, Listing};

/// Labels are bytes: at most this many classes.
pub const MAX_CLASSES: usize = 256;

/// How a folder's images are turned into a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FolderSpec {
    /// Channels (1: grey, 3: RGB) and the square side images are resized and cropped to.
    pub shape: ImageShape,
    /// Report decoding on stderr (a bar on a terminal, two lines otherwise).
    pub progress: bool,
}

impl Default for FolderSpec {
    /// CIFAR's shape, 3x32x32, without progress.
    fn default() -> Self {
        FolderSpec {
            shape: ImageShape::new(3, 32, 32),
            progress: false,
        }
    }
}

/// A folder data set's splits and class names (label i is `classes[i]`).
#[derive(Clone, Debug)]
pub struct FolderData {
    pub train: Dataset,
    pub test: Dataset,
    /// From `val/`, when the folder has one.
    pub val: Option<Dataset>,
    pub classes: Vec<String>,
}

fn bad(path: PathBuf, why: impl Into<String>) -> DataError {
    DataError::Folder {
        path,
        why: why.into(),
    }
}

/// The listings of a folder's splits and its classes.
struct Listed {
    classes: Vec<String>,
    /// (split name, listing): train, test, and val when there is one.
    splits: Vec<(&'static str, Listing)>,
}

/// Lists `dir`'s splits as ImageFolder would, refusing what cannot be used.
fn list_all(dir: &Path) -> Result<Listed, DataError> {
    let layout = "a folder data set holds train/<class>/<images> and test/<class>/<images> (and optionally val/<class>/<images>)";
    for required in ["train", "test"] {
        let root = dir.join(required);
        if !root.is_dir() {
            return Err(bad(root, format!("no such folder: {layout}")));
        }
    }
    let train_root = dir.join("train");
    let classes = find_classes(&train_root)?;
    if classes.len() > MAX_CLASSES {
        let why = format!(
            "{} class folders: at most {MAX_CLASSES} classes",
            classes.len()
        );
        return Err(bad(train_root, why));
    }
    let mut splits = vec![("train", list_split(&train_root, &classes, &classes)?)];
    for name in ["test", "val"] {
        let root = dir.join(name);
        if name == "test" || root.is_dir() {
            splits.push((name, list_split(&root, &find_classes(&root)?, &classes)?));
        }
    }
    Ok(Listed { classes, splits })
}

/// Reads the folder data set in `dir` (from its cache when that is current).
pub fn load(dir: &Path, spec: &FolderSpec) -> Result<FolderData, DataError> {
    let started = Instant::now();
    let Listed { classes, splits } = list_all(dir)?;
    let listings: Vec<(&str, &Listing)> = splits.iter().map(|(n, l)| (*n, l)).collect();
    let key = cache::key(dir, spec.shape, &classes, &listings);
    let cache_path = cache::path(dir, spec.shape);
    let where_ = cache_path.display();
    let listed = started.elapsed().as_secs_f64();
    let cached = cache::read(&cache_path, &key, spec.shape, &classes).unwrap_or_else(|why| {
        note(spec, &format!("{where_}: {why}; decoding the images again"));
        None
    });
    let mut data = match cached {
        Some(data) => {
            let n: usize = data.iter().map(|(_, d)| d.len()).sum();
            let secs = started.elapsed().as_secs_f64();
            note(spec, &format!("{n} images read from {where_} in {secs:.2} s ({listed:.2} s of it listing the files)"));
            data
        }
        None => {
            let data = decode_splits(dir, &listings, spec, classes.len())?;
            let refs: Vec<(&str, &Dataset)> = data.iter().map(|(n, d)| (n.as_str(), d)).collect();
            if let Err(e) = cache::write(&cache_path, &key, spec.shape, &classes, &refs) {
                note(
                    spec,
                    &format!("{where_}: cannot write the cache ({e}); the next run decodes again"),
                );
            }
            data
        }
    };
    let mut take = |name: &str| {
        let i = data.iter().position(|(n, _)| n == name)?;
        Some(data.swap_remove(i).1)
    };
    let (train, test, val) = (take("train"), take("test"), take("val"));
    match (train, test) {
        (Some(train), Some(test)) => Ok(FolderData {
            train,
            test,
            val,
            classes,
        }),
        _ => Err(bad(cache_path, "a split is missing from the cache")),
    }
}

fn note(spec: &FolderSpec, line: &str) {
    if spec.progress {
        eprintln!("grawa-train: {line}");
    }
}

/// Decodes every listed image, in parallel, with a progress bar over all of them.
fn decode_splits(
    dir: &Path,
    listings: &[(&str, &Listing)],
    spec: &FolderSpec,
    classes: usize,
) -> Result<Vec<(String, Dataset)>, DataError> {
    let total: usize = listings.iter().map(|(_, l)| l.files.len()).sum();
    let started = Instant::now();
    let bar = match spec.progress {
        true => ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr()),
        false => ProgressBar::hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "decoding [{elapsed_precise}<{eta_precise}] {bar:30} {pos}/{len} images",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    note(
        spec,
        &format!(
            "decoding {total} images in {} to {}",
            dir.display(),
            spec.shape
        ),
    );
    let mut out = Vec::new();
    for (name, listing) in listings {
        let images = decode_listing(listing, spec.shape, &bar);
        let images = images.inspect_err(|_| bar.abandon())?;
        let labels = listing.files.iter().map(|f| f.label).collect();
        out.push((
            name.to_string(),
            Dataset::new(images, labels, spec.shape, classes)?,
        ));
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    note(spec, &format!("decoded {total} images in {secs:.1} s"));
    Ok(out)
}

/// The images of `listing` as one buffer; the first file (in listing order) that fails is named.
fn decode_listing(
    listing: &Listing,
    shape: ImageShape,
    bar: &ProgressBar,
) -> Result<Vec<u8>, DataError> {
    let d = shape.len();
    let mut images = vec![0u8; listing.files.len() * d];
    let failure = images
        .par_chunks_mut(d)
        .zip(listing.files.par_iter())
        .enumerate()
        .filter_map(|(i, (out, file))| {
            let decoded = std::fs::read(&file.path)
                .map_err(|e| format!("cannot be read: {e}"))
                .and_then(|bytes| {
                    resize::decode_into(&bytes, shape.channels, shape.height as u32, out)
                });
            bar.inc(1);
            decoded.err().map(|why| (i, why))
        })
        .min_by_key(|(i, _)| *i);
    match failure {
        Some((i, why)) => Err(bad(listing.files[i].path.clone(), why)),
        None => Ok(images),
    }
}
