//! The decoded images of a folder data set, kept as one file beside the data
//! (`DIR/.grawa-cache-CxHxW.bin`) so that the next run starts without decoding.
//!
//! The file is trusted only when it is whole and current: it opens with a key, a SHA-256 of
//! every listed file's path (relative to DIR), size, modification time and class, of the class
//! names, the image shape and the decoding recipe; its content ends with a CRC-32C of everything
//! before it. A file whose key differs (images added, removed, touched, renamed; another image
//! size) is stale, one whose length or checksum is off is damaged: both are decoded again and
//! rewritten. It is written to a temporary file, synced and renamed, so a reader sees a whole
//! file or none; a data folder that cannot be written to only costs the decoding next time.
//!
//! Layout: `GRAWAIMG`, format version (u32 LE), header length (u32 LE), the header (JSON: key,
//! shape, classes, each split's name and image count), then per split its images (CHW bytes) and
//! labels (one byte each), then the CRC-32C (u32 LE) of the header and everything after it.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::scan::Listing;
use crate::data::{Dataset, ImageShape};

const MAGIC: &[u8; 8] = b"GRAWAIMG";
const VERSION: u32 = 1;
/// Part of the key: a change to how images are decoded or resized must invalidate old caches.
const RECIPE: &str = "pil-rgb-or-luma, resize-shorter-triangle, center-crop, chw-u8";

/// The cache file for images of `shape` under `dir`.
pub fn path(dir: &Path, shape: ImageShape) -> PathBuf {
    dir.join(format!(".grawa-cache-{shape}.bin"))
}

/// The key of a listing: any change to a file, a class or the shape changes it.
pub fn key(
    dir: &Path,
    shape: ImageShape,
    classes: &[String],
    splits: &[(&str, &Listing)],
) -> String {
    let mut h = Sha256::new();
    h.update(RECIPE.as_bytes());
    h.update(format!("{shape}").as_bytes());
    for c in classes {
        h.update(c.as_bytes());
        h.update([0]);
    }
    for (name, listing) in splits {
        h.update(name.as_bytes());
        h.update((listing.files.len() as u64).to_le_bytes());
        for f in &listing.files {
            let rel = f.path.strip_prefix(dir).unwrap_or(&f.path);
            h.update(rel.as_os_str().as_encoded_bytes());
            h.update([0, f.label]);
            h.update(f.len.to_le_bytes());
            h.update(f.modified_ns.to_le_bytes());
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Header {
    key: String,
    shape: ImageShape,
    classes: Vec<String>,
    /// Each split's name and image count, in the order their bytes follow.
    splits: Vec<(String, usize)>,
}

/// The splits held in the cache at `path` when it is current for `key`: `Ok(None)` when there is
/// no cache, an error saying why when it is stale or damaged (then it is rebuilt).
pub fn read(
    path: &Path,
    key: &str,
    shape: ImageShape,
    classes: &[String],
) -> Result<Option<Vec<(String, Dataset)>>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("unreadable: {e}")),
    };
    let damaged = |what: &str| format!("damaged ({what})");
    if bytes.len() < 20 || &bytes[..8] != MAGIC {
        return Err(damaged("not a grawa-train image cache"));
    }
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    if u32_at(8) != VERSION {
        return Err(format!("written by another version (format {})", u32_at(8)));
    }
    let body = &bytes[16..bytes.len() - 4];
    if crc32c::crc32c(body) != u32_at(bytes.len() - 4) {
        return Err(damaged("checksum mismatch"));
    }
    let header_len = u32_at(12) as usize;
    let header: Header = body
        .get(..header_len)
        .and_then(|h| serde_json::from_slice(h).ok())
        .ok_or_else(|| damaged("unreadable header"))?;
    if header.key != key || header.shape != shape || header.classes != classes {
        return Err("stale (the images changed since it was written)".into());
    }
    let mut at = header_len;
    let mut out = Vec::new();
    for (name, n) in header.splits {
        let (len_images, len_labels) = (n * shape.len(), n);
        let end = at + len_images + len_labels;
        if end > body.len() {
            return Err(damaged("truncated"));
        }
        let images = body[at..at + len_images].to_vec();
        let labels = body[at + len_images..end].to_vec();
        let data = Dataset::new(images, labels, shape, classes.len())
            .map_err(|e| damaged(&e.to_string()))?;
        out.push((name, data));
        at = end;
    }
    if at != body.len() {
        return Err(damaged("trailing bytes"));
    }
    Ok(Some(out))
}

/// Writes the cache atomically: a temporary file beside it, synced, then renamed over it. On
/// failure the temporary file is removed and the error returned.
pub fn write(
    path: &Path,
    key: &str,
    shape: ImageShape,
    classes: &[String],
    splits: &[(&str, &Dataset)],
) -> std::io::Result<()> {
    let header = Header {
        key: key.to_string(),
        shape,
        classes: classes.to_vec(),
        splits: splits
            .iter()
            .map(|(n, d)| (n.to_string(), d.len()))
            .collect(),
    };
    let header = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
    let mut crc = crc32c::crc32c(&header);
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let written = (|| {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        f.write_all(MAGIC)?;
        f.write_all(&VERSION.to_le_bytes())?;
        f.write_all(&(header.len() as u32).to_le_bytes())?;
        f.write_all(&header)?;
        for (_, d) in splits {
            for part in [&d.images, &d.labels] {
                crc = crc32c::crc32c_append(crc, part);
                f.write_all(part)?;
            }
        }
        f.write_all(&crc.to_le_bytes())?;
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
