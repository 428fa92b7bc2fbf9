//! CIFAR-10 / CIFAR-100 binary readers, on files written here in the exact layout of the official
//! binary versions (label byte(s) then 3072 image bytes, CHW).

use std::path::Path;

use grawa_train::data::{load, DataError, DatasetKind, ImageShape, SyntheticSpec};

/// Image bytes of record `r`: value (r * 7 + i) mod 256 at position i, so every record differs.
fn image(r: usize) -> Vec<u8> {
    (0..3072).map(|i| ((r * 7 + i) % 256) as u8).collect()
}

/// A file of records, each `labels[r]` (one or two bytes) followed by `image(first + r)`.
fn records(labels: &[&[u8]], first: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for (r, l) in labels.iter().enumerate() {
        b.extend_from_slice(l);
        b.extend_from_slice(&image(first + r));
    }
    b
}

/// CIFAR-10 folder: batch i (1..=5) holds records 2(i-1) and 2(i-1)+1 with labels i-1, 9;
/// the test batch holds records 100, 101 with labels 3, 0.
fn write_cifar10(root: &Path) {
    let dir = root.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 1..=5u8 {
        let b = records(&[&[i - 1], &[9]], 2 * (i as usize - 1));
        std::fs::write(dir.join(format!("data_batch_{i}.bin")), b).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), records(&[&[3], &[0]], 100)).unwrap();
}

fn load10(root: &Path) -> Result<grawa_train::data::Split, DataError> {
    load(DatasetKind::Cifar10, root, &SyntheticSpec::default())
}

#[test]
fn cifar10_reads_records_in_order() {
    let root = tempfile::tempdir().unwrap();
    write_cifar10(root.path());
    let s = load10(root.path()).unwrap();
    assert_eq!(s.train.shape, ImageShape::new(3, 32, 32));
    assert_eq!(s.train.num_classes, 10);
    assert_eq!(s.train.labels, vec![0, 9, 1, 9, 2, 9, 3, 9, 4, 9]);
    let want: Vec<u8> = (0..10).flat_map(image).collect();
    assert_eq!(s.train.images, want);
    assert_eq!(s.test.labels, vec![3, 0]);
    assert_eq!(s.test.image(1), image(101).as_slice());
}

#[test]
fn cifar10_errors() {
    let root = tempfile::tempdir().unwrap();
    write_cifar10(root.path());
    let dir = root.path().join("cifar-10-batches-bin");

    // A record cut short.
    let p = dir.join("data_batch_3.bin");
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() - 10]).unwrap();
    let e = load10(root.path()).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::Truncated {
                expected: 6146,
                found: 6136,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains(&p.display().to_string()), "{e}");
    std::fs::write(&p, &b).unwrap();

    // A label of 10.
    let p = dir.join("test_batch.bin");
    std::fs::write(&p, records(&[&[3], &[10]], 0)).unwrap();
    let e = load10(root.path()).unwrap_err();
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
    assert!(e.to_string().contains(&p.display().to_string()), "{e}");

    // A missing batch, named with the hint.
    std::fs::remove_file(dir.join("data_batch_5.bin")).unwrap();
    let e = load10(root.path()).unwrap_err();
    assert!(matches!(e, DataError::Missing { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("data_batch_5.bin") && msg.contains("cifar-10-binary.tar.gz"),
        "{msg}"
    );

    // An empty file is not a data set.
    std::fs::write(dir.join("data_batch_5.bin"), b"").unwrap();
    let e = load10(root.path()).unwrap_err();
    assert!(matches!(e, DataError::Truncated { found: 0, .. }), "{e:?}");
}

#[test]
fn cifar100_uses_the_fine_label() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cifar-100-binary");
    std::fs::create_dir_all(&dir).unwrap();
    // (coarse, fine) pairs.
    std::fs::write(
        dir.join("train.bin"),
        records(&[&[19, 99], &[0, 42], &[4, 7]], 0),
    )
    .unwrap();
    std::fs::write(dir.join("test.bin"), records(&[&[1, 3]], 50)).unwrap();
    let s = load(
        DatasetKind::Cifar100,
        root.path(),
        &SyntheticSpec::default(),
    )
    .unwrap();
    assert_eq!(s.train.num_classes, 100);
    assert_eq!(s.train.labels, vec![99, 42, 7]);
    assert_eq!(s.train.images, (0..3).flat_map(image).collect::<Vec<u8>>());
    assert_eq!(
        (s.test.labels.clone(), s.test.images.clone()),
        (vec![3], image(50))
    );

    // Record length is 3074: a file of 3073-byte records (CIFAR-10 layout) is truncated.
    std::fs::write(dir.join("test.bin"), records(&[&[1]], 0)).unwrap();
    let e = load(
        DatasetKind::Cifar100,
        root.path(),
        &SyntheticSpec::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            DataError::Truncated {
                expected: 3074,
                found: 3073,
                ..
            }
        ),
        "{e:?}"
    );

    // Coarse labels are checked against 20 classes, fine ones against 100.
    std::fs::write(dir.join("test.bin"), records(&[&[1, 3], &[20, 3]], 0)).unwrap();
    let e = load(
        DatasetKind::Cifar100,
        root.path(),
        &SyntheticSpec::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            DataError::LabelOutOfRange {
                index: 1,
                value: 20,
                num_classes: 20,
                ..
            }
        ),
        "{e:?}"
    );
    std::fs::write(dir.join("test.bin"), records(&[&[1, 100]], 0)).unwrap();
    let e = load(
        DatasetKind::Cifar100,
        root.path(),
        &SyntheticSpec::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            DataError::LabelOutOfRange {
                index: 0,
                value: 100,
                num_classes: 100,
                ..
            }
        ),
        "{e:?}"
    );
}
