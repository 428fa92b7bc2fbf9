//! The one error type of the data layer. Every message is one line that names the file (when there is
//! one) and what is wrong with it, so a user can act on it without reading the code.

use std::path::PathBuf;

/// Why a data set could not be loaded or a loader could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file the data set needs is not there. `tried` lists the other names looked for
    /// (e.g. " (tried also .gz)"), `hint` says how to get the file.
    #[error("{} not found{tried}: {hint}", .path.display())]
    Missing {
        path: PathBuf,
        tried: &'static str,
        hint: &'static str,
    },

    /// The file does not start with the magic number of the expected IDX array.
    #[error("{}: wrong magic number: expected {expected:#010x}, found {found:#010x}", .path.display())]
    BadMagic {
        path: PathBuf,
        expected: u32,
        found: u32,
    },

    /// The file (or its decompressed content) is shorter than its header or layout requires.
    #[error("{}: truncated: expected {expected} bytes, found {found}", .path.display())]
    Truncated {
        path: PathBuf,
        expected: u64,
        found: u64,
    },

    /// The file holds more bytes than its header announces.
    #[error("{}: {found} bytes, but the header announces exactly {expected}", .path.display())]
    TrailingBytes {
        path: PathBuf,
        expected: u64,
        found: u64,
    },

    /// The image file and the label file of one split disagree on the number of samples.
    #[error(
        "{} holds {images} images but {} holds {labels} labels",
        .images_path.display(),
        .labels_path.display()
    )]
    CountMismatch {
        images_path: PathBuf,
        labels_path: PathBuf,
        images: u64,
        labels: u64,
    },

    /// A label is not below the number of classes.
    #[error(
        "{}: label {value} at index {index} is out of range (must be < {num_classes})",
        .path.display()
    )]
    LabelOutOfRange {
        path: PathBuf,
        index: usize,
        value: u8,
        num_classes: usize,
    },

    /// The dimensions in a header are not the ones this data set uses (or overflow).
    #[error("{}: unsupported dimensions {dims:?}: {why}", .path.display())]
    BadDims {
        path: PathBuf,
        dims: Vec<u64>,
        why: String,
    },

    /// A `.gz` file is not a valid gzip stream.
    #[error("{}: bad gzip stream: {source}", .path.display())]
    Gzip {
        path: PathBuf,
        source: std::io::Error,
    },

    /// Reading a file failed for another reason than its absence.
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A folder data set (`--dataset folder`) that cannot be read as one: a missing `train/`, an
    /// empty class, a test class the training split lacks, a file that cannot be decoded.
    #[error("{}: {why}", .path.display())]
    Folder { path: PathBuf, why: String },

    /// A data set name that is not one of [`crate::data::DatasetKind::all`].
    #[error("unknown data set '{name}' (allowed: {allowed})")]
    UnknownDataset { name: String, allowed: String },

    /// Parameters that cannot work: an empty synthetic set, a batch larger than a shard, and so on.
    #[error("invalid data configuration: {0}")]
    Invalid(String),
}
