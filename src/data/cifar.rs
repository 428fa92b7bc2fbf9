//! The binary versions of CIFAR-10 and CIFAR-100: files of fixed-size records, each one or two
//! label bytes followed by a 3x32x32 image (1024 red, then 1024 green, then 1024 blue bytes: CHW).
//!
//! * CIFAR-10 (`cifar-10-batches-bin/`): `data_batch_1.bin` .. `data_batch_5.bin`, `test_batch.bin`;
//!   record = label (0..10), image.
//! * CIFAR-100 (`cifar-100-binary/`): `train.bin`, `test.bin`; record = coarse label (0..20),
//!   fine label (0..100), image. We train on the fine label.

use std::path::{Path, PathBuf};

use super::files::read_file;
use super::idx::check_labels;
use super::{DataError, Dataset, DatasetKind, ImageShape};

/// Shape of every CIFAR image.
pub const SHAPE: ImageShape = ImageShape::new(3, 32, 32);

/// How a CIFAR file lays out its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordLayout {
    /// Class count of each label byte, in record order (CIFAR-10: `[10]`, CIFAR-100: `[20, 100]`).
    pub label_classes: &'static [usize],
    /// Which label byte is the training label.
    pub used_label: usize,
}

impl RecordLayout {
    /// CIFAR-10: one label byte.
    pub const CIFAR10: RecordLayout = RecordLayout {
        label_classes: &[10],
        used_label: 0,
    };
    /// CIFAR-100: coarse then fine label; the fine one is used.
    pub const CIFAR100: RecordLayout = RecordLayout {
        label_classes: &[20, 100],
        used_label: 1,
    };

    /// Bytes per record.
    pub fn record_len(&self) -> usize {
        self.label_classes.len() + SHAPE.len()
    }

    /// Classes of the training label.
    pub fn num_classes(&self) -> usize {
        self.label_classes[self.used_label]
    }
}

/// Reads one CIFAR binary file into `images` and `labels` (appending). Every label byte is checked
/// against its class count; the file must be a non-zero whole number of records.
pub fn read_records(
    path: &Path,
    layout: RecordLayout,
    hint: &'static str,
    images: &mut Vec<u8>,
    labels: &mut Vec<u8>,
) -> Result<(), DataError> {
    let bytes = read_file(path, hint)?;
    let rec = layout.record_len();
    if bytes.is_empty() || bytes.len() % rec != 0 {
        // The size the file would have with its last record complete.
        let expected = bytes.len().div_ceil(rec).max(1) * rec;
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected: expected as u64,
            found: bytes.len() as u64,
        });
    }
    let n = bytes.len() / rec;
    images.reserve(n * SHAPE.len());
    labels.reserve(n);
    let nl = layout.label_classes.len();
    for (i, record) in bytes.chunks_exact(rec).enumerate() {
        for (j, &classes) in layout.label_classes.iter().enumerate() {
            check_labels(&record[j..j + 1], classes, path, i)?;
        }
        labels.push(record[layout.used_label]);
        images.extend_from_slice(&record[nl..]);
    }
    Ok(())
}

/// Reads and concatenates `files` into one split.
pub fn load_files(
    files: &[PathBuf],
    layout: RecordLayout,
    hint: &'static str,
) -> Result<Dataset, DataError> {
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for f in files {
        read_records(f, layout, hint, &mut images, &mut labels)?;
    }
    Ok(Dataset {
        images,
        labels,
        shape: SHAPE,
        num_classes: layout.num_classes(),
    })
}

/// CIFAR-10 from `data_dir/cifar-10-batches-bin/`: (train, test).
pub fn load_cifar10(data_dir: &Path) -> Result<(Dataset, Dataset), DataError> {
    let dir = data_dir.join("cifar-10-batches-bin");
    let hint = DatasetKind::Cifar10.fetch_hint();
    let train: Vec<PathBuf> = (1..=5)
        .map(|i| dir.join(format!("data_batch_{i}.bin")))
        .collect();
    // Check every file exists before reading 150 MB, so a missing test file fails at once.
    let test = [dir.join("test_batch.bin")];
    check_exist(train.iter().chain(&test), hint)?;
    let (train, test) = rayon::join(
        || load_files(&train, RecordLayout::CIFAR10, hint),
        || load_files(&test, RecordLayout::CIFAR10, hint),
    );
    Ok((train?, test?))
}

/// CIFAR-100 from `data_dir/cifar-100-binary/`: (train, test), fine labels.
pub fn load_cifar100(data_dir: &Path) -> Result<(Dataset, Dataset), DataError> {
    let dir = data_dir.join("cifar-100-binary");
    let hint = DatasetKind::Cifar100.fetch_hint();
    let (train, test) = ([dir.join("train.bin")], [dir.join("test.bin")]);
    check_exist(train.iter().chain(&test), hint)?;
    let (train, test) = rayon::join(
        || load_files(&train, RecordLayout::CIFAR100, hint),
        || load_files(&test, RecordLayout::CIFAR100, hint),
    );
    Ok((train?, test?))
}

fn check_exist<'a>(
    mut files: impl Iterator<Item = &'a PathBuf>,
    hint: &'static str,
) -> Result<(), DataError> {
    match files.find(|f| !f.is_file()) {
        None => Ok(()),
        Some(f) => Err(DataError::Missing {
            path: f.clone(),
            tried: "",
            hint,
        }),
    }
}
