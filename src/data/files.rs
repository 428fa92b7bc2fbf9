//! Reading a whole data file into memory, decompressing `.gz`, and turning I/O failures into
//! [`DataError`]s that name the file.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::DataError;

/// `path` with `.gz` appended to its file name.
pub fn gz_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".gz");
    PathBuf::from(s)
}

/// The file to read for `raw`: `raw` itself if it exists, else `raw.gz`, else a
/// [`DataError::Missing`] carrying `hint`. Raw wins when both exist (no decompression cost).
pub fn locate_raw_or_gz(raw: &Path, hint: &'static str) -> Result<PathBuf, DataError> {
    if raw.is_file() {
        return Ok(raw.to_path_buf());
    }
    let gz = gz_path(raw);
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DataError::Missing {
        path: raw.to_path_buf(),
        tried: " (tried also .gz)",
        hint,
    })
}

/// The whole content of `path`, decompressed when its name ends in `.gz`.
/// A missing file is [`DataError::Missing`] with `hint`.
pub fn read_file(path: &Path, hint: &'static str) -> Result<Vec<u8>, DataError> {
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => DataError::Missing {
            path: path.to_path_buf(),
            tried: "",
            hint,
        },
        _ => DataError::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    if path.extension().is_some_and(|e| e == "gz") {
        // Decompressing from memory (not streaming from the file) means every error from the
        // decoder is about the gzip content, never about the disk.
        let mut out = Vec::with_capacity(bytes.len() * 2);
        MultiGzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|source| DataError::Gzip {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}
