//! The IDX format of MNIST and Fashion-MNIST: a big-endian header (magic `0x000008NN` where `NN` is
//! the number of dimensions, then one `u32` per dimension) followed by exactly the product of the
//! dimensions in unsigned bytes. Files may be raw or `.gz`.

use std::path::{Path, PathBuf};

use super::files::{locate_raw_or_gz, read_file};
use super::{DataError, Dataset, ImageShape};

/// Magic number of an IDX file of unsigned bytes with three dimensions (images: n, rows, cols).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with one dimension (labels: n).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// A parsed IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Sizes from the header, outermost first.
    pub dims: Vec<usize>,
    /// The data, row-major, exactly the product of `dims` bytes.
    pub data: Vec<u8>,
}

/// Parses the content of an IDX file, checking the magic, the header and that the data length is
/// exactly the product of the dimensions. `path` is only used in errors.
pub fn parse(mut bytes: Vec<u8>, expected_magic: u32, path: &Path) -> Result<IdxArray, DataError> {
    let found = bytes.len() as u64;
    let truncated = |expected: u64| DataError::Truncated {
        path: path.to_path_buf(),
        expected,
        found,
    };
    let be_u32 = |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);

    if bytes.len() < 4 {
        return Err(truncated(4));
    }
    let magic = be_u32(&bytes, 0);
    if magic != expected_magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            expected: expected_magic,
            found: magic,
        });
    }
    let ndims = (magic & 0xff) as usize;
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(truncated(header as u64));
    }
    let dims64: Vec<u64> = (0..ndims)
        .map(|d| u64::from(be_u32(&bytes, 4 + 4 * d)))
        .collect();
    let total = dims64
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .and_then(|n| n.checked_add(header as u64))
        .ok_or_else(|| DataError::BadDims {
            path: path.to_path_buf(),
            dims: dims64.clone(),
            why: "the product of the dimensions overflows".to_string(),
        })?;
    if found < total {
        return Err(truncated(total));
    }
    if found > total {
        return Err(DataError::TrailingBytes {
            path: path.to_path_buf(),
            expected: total,
            found,
        });
    }
    // Dropping the header in place: one memmove, no second buffer of the data's size.
    bytes.drain(..header);
    Ok(IdxArray {
        dims: dims64.iter().map(|&d| d as usize).collect(),
        data: bytes,
    })
}

/// Reads and parses the IDX file at `path` (raw, or gzip when the name ends in `.gz`).
pub fn read(path: &Path, expected_magic: u32, hint: &'static str) -> Result<IdxArray, DataError> {
    parse(read_file(path, hint)?, expected_magic, path)
}

/// Loads one split from `dir`: `{prefix}-images-idx3-ubyte` and `{prefix}-labels-idx1-ubyte`
/// (each raw or `.gz`; `prefix` is `train` or `t10k`). Checks that the images have shape `shape`,
/// that both files hold the same number of samples and that labels are `< num_classes`.
pub fn load_split(
    dir: &Path,
    prefix: &str,
    shape: ImageShape,
    num_classes: usize,
    hint: &'static str,
) -> Result<Dataset, DataError> {
    let images_path = locate_raw_or_gz(&dir.join(format!("{prefix}-images-idx3-ubyte")), hint)?;
    let labels_path = locate_raw_or_gz(&dir.join(format!("{prefix}-labels-idx1-ubyte")), hint)?;
    let images = read(&images_path, IMAGES_MAGIC, hint)?;
    let labels = read(&labels_path, LABELS_MAGIC, hint)?;

    let (rows, cols) = (images.dims[1], images.dims[2]);
    if shape.channels != 1 || rows != shape.height || cols != shape.width {
        return Err(DataError::BadDims {
            path: images_path,
            dims: images.dims.iter().map(|&d| d as u64).collect(),
            why: format!("expected n x {} x {}", shape.height, shape.width),
        });
    }
    if images.dims[0] != labels.dims[0] {
        return Err(DataError::CountMismatch {
            images_path,
            labels_path,
            images: images.dims[0] as u64,
            labels: labels.dims[0] as u64,
        });
    }
    check_labels(&labels.data, num_classes, &labels_path, 0)?;
    Ok(Dataset {
        images: images.data,
        labels: labels.data,
        shape,
        num_classes,
    })
}

/// The first label `>= num_classes`, as an error naming `path` and the sample index
/// (`first_index` is added, for files that continue a numbering).
pub(crate) fn check_labels(
    labels: &[u8],
    num_classes: usize,
    path: &Path,
    first_index: usize,
) -> Result<(), DataError> {
    match labels.iter().position(|&l| l as usize >= num_classes) {
        None => Ok(()),
        Some(i) => Err(DataError::LabelOutOfRange {
            path: PathBuf::from(path),
            index: first_index + i,
            value: labels[i],
            num_classes,
        }),
    }
}
