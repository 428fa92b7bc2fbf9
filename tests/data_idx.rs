//! IDX reader (MNIST / Fashion-MNIST format): files written here with known bytes are read back
//! exactly, raw and gzip; each kind of damage gives its own error naming the file. The real data
//! sets are checked too when `data/` holds them.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use grawa_train::data::{idx, load, DataError, DatasetKind, ImageShape, SyntheticSpec};

const HINT: &str = "run scripts/fetch-data.sh mnist";
const SHAPE: ImageShape = ImageShape::new(1, 2, 3);

/// An IDX file: magic, big-endian dims, data.
fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Three 2x3 images holding 0..18 and labels 0, 9, 4.
fn images() -> Vec<u8> {
    idx_bytes(0x0803, &[3, 2, 3], &(0..18).collect::<Vec<u8>>())
}
fn labels() -> Vec<u8> {
    idx_bytes(0x0801, &[3], &[0, 9, 4])
}

/// Writes `train-{images,labels}` into a fresh folder; `gz` picks the compressed names.
fn write_split(img: &[u8], lab: &[u8], gz: bool) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ext = if gz { ".gz" } else { "" };
    let ip = dir.path().join(format!("train-images-idx3-ubyte{ext}"));
    let lp = dir.path().join(format!("train-labels-idx1-ubyte{ext}"));
    let enc = |b: &[u8]| if gz { gzip(b) } else { b.to_vec() };
    std::fs::write(&ip, enc(img)).unwrap();
    std::fs::write(&lp, enc(lab)).unwrap();
    (dir, ip, lp)
}

fn load_small(dir: &Path) -> Result<grawa_train::data::Dataset, DataError> {
    idx::load_split(dir, "train", SHAPE, 10, HINT)
}

/// The error's message names `path`, and is one line.
fn assert_names(e: &DataError, path: &Path) {
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
}

#[test]
fn reads_raw_and_gz_exactly() {
    for gz in [false, true] {
        let (dir, _, _) = write_split(&images(), &labels(), gz);
        let d = load_small(dir.path()).unwrap();
        assert_eq!(d.images, (0..18).collect::<Vec<u8>>(), "gz={gz}");
        assert_eq!(d.labels, vec![0, 9, 4]);
        assert_eq!((d.len(), d.shape, d.num_classes), (3, SHAPE, 10));
        assert_eq!(d.image(1), &[6, 7, 8, 9, 10, 11]);
    }
}

#[test]
fn raw_is_preferred_over_gz() {
    let (dir, _, _) = write_split(&images(), &labels(), false);
    let other = idx_bytes(0x0803, &[3, 2, 3], &[200; 18]);
    std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), gzip(&other)).unwrap();
    assert_eq!(load_small(dir.path()).unwrap().images[0], 0);
    std::fs::remove_file(dir.path().join("train-images-idx3-ubyte")).unwrap();
    assert_eq!(load_small(dir.path()).unwrap().images[0], 200);
}

#[test]
fn wrong_magic() {
    let mut img = images();
    img[3] = 0x01; // a label file's magic in the image file
    let (dir, ip, _) = write_split(&img, &labels(), false);
    let e = load_small(dir.path()).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::BadMagic {
                expected: 0x803,
                found: 0x801,
                ..
            }
        ),
        "{e:?}"
    );
    assert_names(&e, &ip);
    assert!(e.to_string().contains("0x00000803") && e.to_string().contains("0x00000801"));
}

#[test]
fn truncated_data_header_and_trailing_bytes() {
    // One data byte short.
    let img = images();
    let (dir, ip, _) = write_split(&img[..img.len() - 1], &labels(), false);
    let e = load_small(dir.path()).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::Truncated {
                expected: 34,
                found: 33,
                ..
            }
        ),
        "{e:?}"
    );
    assert_names(&e, &ip);
    assert!(e.to_string().contains("expected 34 bytes, found 33"));

    // Cut inside the header: the dims are incomplete.
    let (dir, _, lp) = write_split(&images(), &labels()[..6], false);
    let e = load_small(dir.path()).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::Truncated {
                expected: 8,
                found: 6,
                ..
            }
        ),
        "{e:?}"
    );
    assert_names(&e, &lp);

    // One byte too many.
    let mut lab = labels();
    lab.push(1);
    let (dir, _, lp) = write_split(&images(), &lab, true);
    let e = load_small(dir.path()).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::TrailingBytes {
                expected: 11,
                found: 12,
                ..
            }
        ),
        "{e:?}"
    );
    assert_names(&e, &lp);
}

#[test]
fn count_mismatch() {
    let lab = idx_bytes(0x0801, &[2], &[0, 1]);
    let (dir, ip, lp) = write_split(&images(), &lab, false);
    let e = load_small(dir.path()).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::CountMismatch {
                images: 3,
                labels: 2,
                ..
            }
        ),
        "{e:?}"
    );
    assert_names(&e, &ip);
    assert_names(&e, &lp);
}

#[test]
fn label_out_of_range() {
    let lab = idx_bytes(0x0801, &[3], &[0, 10, 4]);
    let (dir, _, lp) = write_split(&images(), &lab, true);
    let e = load_small(dir.path()).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::LabelOutOfRange {
                index: 1,
                value: 10,
                num_classes: 10,
                ..
            }
        ),
        "{e:?}"
    );
    assert_names(&e, &lp);
}

#[test]
fn missing_file_names_path_and_hint() {
    let (dir, _, lp) = write_split(&images(), &labels(), false);
    std::fs::remove_file(&lp).unwrap();
    let e = load_small(dir.path()).unwrap_err();
    assert!(matches!(e, DataError::Missing { .. }), "{e:?}");
    assert_names(&e, &lp);
    let msg = e.to_string();
    assert!(
        msg.contains("tried also .gz") && msg.contains(HINT),
        "{msg}"
    );
}

#[test]
fn bad_gzip() {
    // Not gzip at all.
    let (dir, ip, _) = write_split(&images(), &labels(), true);
    std::fs::write(&ip, b"this is not gzip").unwrap();
    let e = load_small(dir.path()).unwrap_err();
    assert!(matches!(e, DataError::Gzip { .. }), "{e:?}");
    assert_names(&e, &ip);

    // A gzip stream cut short: an error either from the decoder or from the length check.
    let (dir, ip, _) = write_split(&images(), &labels(), true);
    let gz = gzip(&images());
    std::fs::write(&ip, &gz[..gz.len() / 2]).unwrap();
    let e = load_small(dir.path()).unwrap_err();
    assert!(
        matches!(e, DataError::Gzip { .. } | DataError::Truncated { .. }),
        "{e:?}"
    );
    assert_names(&e, &ip);
}

#[test]
fn load_checks_image_dims_for_the_kind() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("mnist");
    std::fs::create_dir(&dir).unwrap();
    for prefix in ["train", "t10k"] {
        let ip = dir.join(format!("{prefix}-images-idx3-ubyte"));
        std::fs::write(&ip, images()).unwrap();
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), labels()).unwrap();
    }
    let e = load(DatasetKind::Mnist, root.path(), &SyntheticSpec::default()).unwrap_err();
    assert!(matches!(e, DataError::BadDims { .. }), "{e:?}");
    assert!(e.to_string().contains("28 x 28"), "{e}");

    // The same files with 28x28 images load through `load`.
    let data: Vec<u8> = (0..2 * 784).map(|i| (i % 251) as u8).collect();
    for prefix in ["train", "t10k"] {
        let img = idx_bytes(0x0803, &[2, 28, 28], &data);
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), img).unwrap();
        let lab = idx_bytes(0x0801, &[2], &[3, 7]);
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), lab).unwrap();
    }
    let s = load(DatasetKind::Mnist, root.path(), &SyntheticSpec::default()).unwrap();
    assert_eq!(s.kind, DatasetKind::Mnist);
    assert_eq!(
        (s.train.images.clone(), s.train.labels.clone()),
        (data.clone(), vec![3, 7])
    );
    assert_eq!(s.test.images, data);
}

#[test]
fn load_reports_a_missing_data_set_with_the_fetch_hint() {
    let root = tempfile::tempdir().unwrap();
    for kind in [DatasetKind::Mnist, DatasetKind::FashionMnist] {
        let e = load(kind, root.path(), &SyntheticSpec::default()).unwrap_err();
        let msg = e.to_string();
        let want = root
            .path()
            .join(kind.name())
            .join("train-images-idx3-ubyte");
        assert!(msg.contains(&want.display().to_string()), "{msg}");
        assert!(
            msg.contains(&format!("scripts/fetch-data.sh {kind}")),
            "{msg}"
        );
    }
}

/// The repository's `data/` (or `GRAWA_DATA`), when `scripts/fetch-data.sh` has been run.
fn real_data_dir(kind: DatasetKind) -> Option<PathBuf> {
    let root = std::env::var_os("GRAWA_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("data"));
    if root.join(kind.name()).is_dir() {
        Some(root)
    } else {
        println!(
            "note: {} not found, skipping real {kind}",
            root.join(kind.name()).display()
        );
        None
    }
}

#[test]
fn real_mnist_and_fashion_mnist_if_present() {
    for kind in [DatasetKind::Mnist, DatasetKind::FashionMnist] {
        let Some(root) = real_data_dir(kind) else {
            continue;
        };
        let s = load(kind, &root, &SyntheticSpec::default()).unwrap();
        assert_eq!((s.train.len(), s.test.len()), (60_000, 10_000), "{kind}");
        assert_eq!(s.train.shape, ImageShape::new(1, 28, 28));
        assert_eq!(s.train.images.len(), 60_000 * 784);
        // Both sets are balanced to within a few percent: every class is present in quantity.
        for d in [&s.train, &s.test] {
            let counts = d.class_counts();
            assert_eq!(counts.iter().sum::<usize>(), d.len());
            assert!(
                counts.iter().all(|&c| c > d.len() / 20),
                "{kind}: {counts:?}"
            );
        }
        // Known first labels: MNIST train starts 5 0 4 1 9, Fashion-MNIST train 9 0 0 3 0.
        let first: &[u8] = match kind {
            DatasetKind::Mnist => &[5, 0, 4, 1, 9],
            _ => &[9, 0, 0, 3, 0],
        };
        assert_eq!(&s.train.labels[..5], first, "{kind}");
        // Fashion-MNIST's test set has exactly 1000 images per class (MNIST's does not).
        if kind == DatasetKind::FashionMnist {
            assert_eq!(s.test.class_counts(), vec![1000; 10]);
        }
    }
}
