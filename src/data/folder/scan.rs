//! The listing of one split folder (`train/`, `test/`, `val/`) as torchvision's `ImageFolder`
//! makes it: the class folders are the sub-folders, sorted by name (code point order); a class's
//! images are the files under its folder, sub-folders included (followed through symbolic
//! links), the folders in sorted path order and each folder's files sorted by name; a file is an
//! image when its lower-cased name ends in `.jpg`, `.jpeg` or `.png` (ImageFolder's extensions for
//! the formats this build decodes), and other files are passed over.
//!
//! One difference: names starting with a dot are skipped. ImageFolder keeps them, so a
//! `.ipynb_checkpoints/` folder becomes a class and macOS's `._photo.jpg` companions are read as
//! images, and fail.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::data::DataError;

/// File name endings of the images read (lower case).
pub const EXTENSIONS: [&str; 3] = [".jpg", ".jpeg", ".png"];

/// One image file with its class and what identifies its content for the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFile {
    pub path: PathBuf,
    pub label: u8,
    /// Size in bytes.
    pub len: u64,
    /// Modification time, nanoseconds since 1970 (0 where the system has none).
    pub modified_ns: u128,
}

/// A split's images in ImageFolder's order.
#[derive(Clone, Debug)]
pub struct Listing {
    pub files: Vec<ImageFile>,
}

fn bad(path: &Path, why: impl Into<String>) -> DataError {
    DataError::Folder {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

fn io(path: &Path, source: std::io::Error) -> DataError {
    DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn hidden(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

/// The class names of a split folder: its sub-folders (not hidden), sorted.
pub fn find_classes(root: &Path) -> Result<Vec<String>, DataError> {
    let mut classes = Vec::new();
    for entry in std::fs::read_dir(root).map_err(|e| io(root, e))? {
        let entry = entry.map_err(|e| io(root, e))?;
        let path = entry.path();
        if hidden(&entry.file_name()) || !path.is_dir() {
            continue;
        }
        let name = entry.file_name().into_string().map_err(|_| {
            bad(
                &path,
                "a class folder's name must be valid UTF-8 (it is written to config.json)",
            )
        })?;
        classes.push(name);
    }
    classes.sort();
    if classes.is_empty() {
        return Err(bad(
            root,
            "no class folder in it: expected one sub-folder per class holding its images",
        ));
    }
    Ok(classes)
}

/// The images of the split folder `root`, whose class folders are `present` (from
/// [`find_classes`]), labelled by their position in `classes` (the training split's). A class
/// folder with no image is refused, naming it.
pub fn list_split(
    root: &Path,
    present: &[String],
    classes: &[String],
) -> Result<Listing, DataError> {
    let mut files = Vec::new();
    for name in present {
        let folder = root.join(name);
        let Some(label) = classes.iter().position(|c| c == name) else {
            return Err(bad(
                &folder,
                format!(
                    "class '{name}' is not among the training classes (train/ has {})",
                    classes.join(", ")
                ),
            ));
        };
        let before = files.len();
        for dir in walk_sorted(&folder)? {
            list_images(&dir, label as u8, &mut files)?;
        }
        if files.len() == before {
            return Err(bad(
                &folder,
                format!(
                    "class '{name}' has no image (files ending in {})",
                    EXTENSIONS.join(", ")
                ),
            ));
        }
    }
    Ok(Listing { files })
}

/// `folder` and every folder below it (symbolic links followed, each real folder once, hidden
/// ones skipped), sorted by path as Python's `sorted(os.walk(folder))` sorts them.
fn walk_sorted(folder: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut seen = HashSet::new();
    let mut stack = vec![folder.to_path_buf()];
    let mut dirs = Vec::new();
    while let Some(dir) = stack.pop() {
        // A link back up the tree would make the walk endless: each real folder is read once.
        let real = std::fs::canonicalize(&dir).map_err(|e| io(&dir, e))?;
        if !seen.insert(real) {
            continue;
        }
        for entry in std::fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
            let entry = entry.map_err(|e| io(&dir, e))?;
            let path = entry.path();
            if !hidden(&entry.file_name()) && path.is_dir() {
                stack.push(path);
            }
        }
        dirs.push(dir);
    }
    dirs.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
    Ok(dirs)
}

/// The images directly in `dir`, sorted by name, appended to `out`.
fn list_images(dir: &Path, label: u8, out: &mut Vec<ImageFile>) -> Result<(), DataError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let name = entry.file_name();
        let lower = name.to_string_lossy().to_lowercase();
        if !hidden(&name) && EXTENSIONS.iter().any(|e| lower.ends_with(e)) {
            names.push(name);
        }
    }
    names.sort();
    for name in names {
        let path = dir.join(&name);
        // Following links, as reading the file will.
        let meta = std::fs::metadata(&path).map_err(|e| io(&path, e))?;
        if !meta.is_file() {
            continue;
        }
        let modified_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        out.push(ImageFile {
            path,
            label,
            len: meta.len(),
            modified_ns,
        });
    }
    Ok(())
}
