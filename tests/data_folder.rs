//! `--dataset folder`: ImageFolder's listing (class order, extensions, sub-folders, hidden names),
//! decoding and resizing against PIL's numbers, the cache (used, stale, damaged), the training
//! images' statistics, the refusals (exit 2, naming the culprit, nothing written) and a small
//! folder that trains well above chance.

mod run_support;

use std::path::Path;

use grawa_train::data::folder::resize::decode_into;
use grawa_train::data::folder::stats::channel_stats;
use grawa_train::data::folder::{load, FolderSpec};
use grawa_train::data::{DataError, Dataset, ImageShape};
use image::{Rgb, RgbImage};
use run_support::{argv, json, run_bin};

/// The test pattern of tests and of /tmp's PIL reference: pixel (x, y) = ((37x + 11y) mod 256,
/// (5x + 53y) mod 256, (x^2 + 7y^2) mod 256).
fn pattern(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            ((x * 37 + y * 11) % 256) as u8,
            ((x * 5 + y * 53) % 256) as u8,
            ((x * x + y * y * 7) % 256) as u8,
        ])
    })
}

fn png_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageOutputFormat::Png)
        .unwrap();
    out.into_inner()
}

/// A solid image of class `class`: its colour, and in grey its brightness, says the class (lumas
/// about 212, 156, 93 and 25, each plus up to 40 of per-image noise).
fn class_image(class: usize, i: usize, w: u32, h: u32) -> RgbImage {
    let base = [
        (200, 200, 240),
        (160, 160, 120),
        (90, 100, 60),
        (30, 20, 40),
    ][class % 4];
    RgbImage::from_fn(w, h, |x, y| {
        let n = ((x * 7 + y * 13 + i as u32 * 31) % 41) as u8;
        Rgb([base.0 + n / 4, base.1 + n, base.2 + n / 4])
    })
}

/// Writes `root/<split>/<class>/<i>.png` for each (split, class, count); a class's colour is
/// its place among the classes in order of first mention.
fn make_folder(root: &Path, layout: &[(&str, &str, usize)], side: u32) {
    let mut names: Vec<&str> = Vec::new();
    for (split, class, n) in layout {
        if !names.contains(class) {
            names.push(class);
        }
        let k = names.iter().position(|c| c == class).unwrap();
        let dir = root.join(split).join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..*n {
            let img = class_image(k, i, side + (i % 3) as u32, side);
            img.save(dir.join(format!("{i:04}.png"))).unwrap();
        }
    }
}

const SPEC: FolderSpec = FolderSpec {
    shape: ImageShape::new(3, 8, 8),
    progress: false,
};

fn folder_error(e: DataError) -> (String, String) {
    match e {
        DataError::Folder { path, why } => (path.display().to_string(), why),
        other => panic!("expected a folder error, got {other}"),
    }
}

/// PIL (Pillow 12) computed these: Resize(s) (bilinear) then CenterCrop(s) of the pattern, as
/// torchvision does, CHW. Our filter has PIL's weights; PIL rounds between its two passes, so a
/// value may differ by one level (measured: 1 at most in each case below).
#[test]
fn resizing_matches_pil_within_rounding() {
    let cases: [(u32, u32, u32, usize, &[u8]); 3] = [
        (
            7,
            5,
            3,
            3,
            &[
                24, 82, 150, 41, 99, 167, 58, 116, 184, 26, 33, 43, 109, 116, 126, 192, 199, 209,
                4, 8, 19, 32, 36, 47, 92, 96, 107,
            ],
        ),
        // Upscaling 2x3 to 4x6, then the crop's top is round(1.0) = 1.
        (
            2,
            3,
            4,
            3,
            &[
                3, 12, 31, 40, 8, 17, 36, 45, 14, 23, 42, 51, 19, 28, 47, 56, 13, 14, 17, 18, 40,
                41, 44, 45, 66, 67, 70, 71, 93, 94, 97, 98, 2, 2, 3, 3, 5, 5, 6, 6, 12, 12, 13, 13,
                23, 23, 24, 24,
            ],
        ),
        // convert('L') first, then 40x29 down to 11x8 and the crop's left round(1.5) = 2.
        (
            40,
            29,
            8,
            1,
            &[
                112, 137, 129, 142, 127, 149, 124, 124, 120, 119, 129, 122, 128, 130, 132, 127,
                124, 122, 139, 109, 130, 120, 129, 120, 134, 128, 135, 118, 143, 119, 125, 126,
                125, 130, 122, 130, 133, 127, 130, 143, 111, 133, 115, 134, 123, 133, 126, 136,
                127, 138, 109, 136, 113, 128, 125, 128, 137, 137, 135, 137, 115, 127, 129, 109,
            ],
        ),
    ];
    for (w, h, size, channels, want) in cases {
        let mut out = vec![0u8; channels * (size * size) as usize];
        decode_into(&png_bytes(&pattern(w, h)), channels, size, &mut out).unwrap();
        let worst = out
            .iter()
            .zip(want)
            .map(|(&a, &b)| a.abs_diff(b))
            .max()
            .unwrap();
        assert!(
            worst <= 1,
            "{w}x{h} -> {size} ({channels} ch): off by {worst}: {out:?}"
        );
    }
    // Garbage is refused with the decoder's reason.
    let mut out = vec![0u8; 3 * 64];
    let err = decode_into(b"not an image", 3, 8, &mut out).unwrap_err();
    assert!(err.contains("cannot be decoded"), "{err}");
}

/// Classes sorted by code point ("C" < "a" < "b"), labels by that order; files of sub-folders
/// after the folder's own, in path order; other extensions, hidden files and hidden folders
/// passed over; a test split with fewer classes keeps the training labels.
#[test]
fn listing_follows_image_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    make_folder(
        root,
        &[
            ("train", "b", 2),
            ("train", "a", 1),
            ("train", "C", 1),
            ("test", "b", 1),
        ],
        9,
    );
    std::fs::create_dir_all(root.join("train/a/sub")).unwrap();
    class_image(3, 0, 9, 9)
        .save(root.join("train/a/sub/z.PNG"))
        .unwrap();
    std::fs::write(root.join("train/a/notes.txt"), "not an image").unwrap();
    std::fs::write(root.join("train/a/._0000.png"), "macOS companion").unwrap();
    std::fs::create_dir_all(root.join("train/.ipynb_checkpoints")).unwrap();
    let data = load(root, &SPEC).unwrap();
    assert_eq!(data.classes, ["C", "a", "b"]);
    assert_eq!(data.train.labels, [0, 1, 1, 2, 2]);
    assert_eq!(data.test.labels, [2]);
    assert_eq!(data.test.num_classes, 3);
    assert!(data.val.is_none());
    // train/a's own 0000.png first (class 1's colour), then sub/z.PNG (class 3's: dark).
    let (own, z) = (data.train.image(1), data.train.image(2));
    assert!(own[0] >= 160 && z[0] < 60, "{} then {}", own[0], z[0]);
}

/// An optional val/ folder is read with the training classes.
#[test]
fn a_val_folder_is_a_validation_split() {
    let tmp = tempfile::tempdir().unwrap();
    make_folder(
        tmp.path(),
        &[
            ("train", "x", 2),
            ("train", "y", 2),
            ("test", "x", 1),
            ("val", "y", 3),
        ],
        8,
    );
    let data = load(tmp.path(), &SPEC).unwrap();
    let val = data.val.expect("val/ read");
    assert_eq!(val.labels, [1, 1, 1]);
    assert_eq!(val.shape, SPEC.shape);
}

/// Second load: from the cache (a file whose bytes changed but whose size and time did not is
/// not decoded again). A touched file makes the cache stale, a flipped byte damaged: both are
/// rebuilt, with the same images.
#[test]
fn the_cache_is_used_when_current_and_rebuilt_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    make_folder(
        root,
        &[("train", "x", 3), ("train", "y", 3), ("test", "x", 2)],
        10,
    );
    let first = load(root, &SPEC).unwrap();
    let cache = root.join(".grawa-cache-3x8x8.bin");
    assert!(cache.is_file());
    let leftovers: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file left");

    // Same size, same modification time, undecodable content: only a cache hit succeeds.
    let victim = root.join("train/x/0001.png");
    let meta = std::fs::metadata(&victim).unwrap();
    std::fs::write(&victim, vec![0u8; meta.len() as usize]).unwrap();
    let f = std::fs::File::options().write(true).open(&victim).unwrap();
    f.set_modified(meta.modified().unwrap()).unwrap();
    drop(f);
    let second = load(root, &SPEC).unwrap();
    assert_eq!(second.train, first.train);

    // Touched: the key changes, the images are decoded again, and the zeros now fail by name.
    let f = std::fs::File::options().write(true).open(&victim).unwrap();
    f.set_modified(meta.modified().unwrap() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    let (path, why) = folder_error(load(root, &SPEC).unwrap_err());
    assert!(
        path.ends_with("train/x/0001.png") && why.contains("cannot be decoded"),
        "{path}: {why}"
    );
    assert!(cache.is_file(), "a refusal leaves the old cache alone");

    // Restore a real image; damage the cache: rebuilt, equal to a fresh decoding.
    class_image(0, 1, 11, 10).save(&victim).unwrap();
    let fresh = load(root, &SPEC).unwrap();
    let mut bytes = std::fs::read(&cache).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&cache, &bytes).unwrap();
    assert_eq!(load(root, &SPEC).unwrap().train, fresh.train);
    std::fs::write(&cache, &bytes[..100]).unwrap();
    assert_eq!(load(root, &SPEC).unwrap().train, fresh.train);
    // Another shape is another cache file.
    let grey = FolderSpec {
        shape: ImageShape::new(1, 6, 6),
        progress: false,
    };
    assert_eq!(load(root, &grey).unwrap().train.shape, grey.shape);
    assert!(root.join(".grawa-cache-1x6x6.bin").is_file());
}

/// Mean and population std per channel over every pixel, in [0, 1]: two 1x2 two-channel images
/// [0, 255 | 51, 51] and [255, 0 | 51, 51]: channel 0 has mean 127.5 and std 127.5 (so 0.5, 0.5),
/// channel 1 is constant (mean 0.2, std set to 1 rather than 0).
#[test]
fn statistics_of_the_training_images() {
    let d = Dataset::new(
        vec![0, 255, 51, 51, 255, 0, 51, 51],
        vec![0, 1],
        ImageShape::new(2, 1, 2),
        2,
    )
    .unwrap();
    let n = channel_stats(&d);
    assert_eq!(n.mean, [0.5, 0.2]);
    assert_eq!(n.std, [0.5, 1.0]);
}

/// A bad folder: its name, how to build it, the culprit (relative to it) and the reason given.
type Refusal<'a> = (&'a str, &'a dyn Fn(&Path), &'a str, &'a str);

/// Each refusal names its culprit, exits 2, and writes nothing: no run folder, no cache.
#[test]
fn bad_folders_are_refused_by_name_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [Refusal; 5] = [
        (
            "no-train",
            &|r| make_folder(r, &[("test", "x", 1)], 8),
            "train",
            "no such folder",
        ),
        (
            "no-test",
            &|r| make_folder(r, &[("train", "x", 2)], 8),
            "test",
            "no such folder",
        ),
        (
            "empty-class",
            &|r| {
                make_folder(r, &[("train", "x", 2), ("test", "x", 1)], 8);
                std::fs::create_dir_all(r.join("train/y")).unwrap();
                std::fs::write(r.join("train/y/readme.txt"), "").unwrap();
            },
            "train/y",
            "class 'y' has no image",
        ),
        (
            "unknown-test-class",
            &|r| {
                make_folder(
                    r,
                    &[("train", "x", 2), ("test", "x", 1), ("test", "z", 1)],
                    8,
                )
            },
            "test/z",
            "not among the training classes",
        ),
        (
            "corrupt",
            &|r| {
                make_folder(r, &[("train", "x", 2), ("test", "x", 1)], 8);
                std::fs::write(r.join("train/x/0001.png"), b"\x89PNG broken").unwrap();
            },
            "train/x/0001.png",
            "cannot be decoded",
        ),
    ];
    for (name, build, culprit, why) in cases {
        let root = tmp.path().join(name);
        std::fs::create_dir_all(&root).unwrap();
        build(&root);
        let out = tmp.path().join(format!("{name}-run"));
        let o = run_bin(&argv(
            &[
                "--dataset",
                "folder",
                "--data-dir",
                root.to_str().unwrap(),
                "--model",
                "mlp",
                "--image-size",
                "8",
                "--batch-size",
                "1",
                "--steps",
                "1",
                "--quiet",
            ],
            &out,
        ));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        let culprit = root.join(culprit);
        assert!(
            err.contains(&*culprit.to_string_lossy()) && err.contains(why),
            "{name}: {err}"
        );
        assert!(!out.exists(), "{name}: no run folder");
        let cached = std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".grawa-cache"));
        assert!(!cached, "{name}: no cache");
    }
}

/// A few hundred PNGs in four colour classes, of varied sizes: trained to well above chance
/// (0.25) by the CNN on 16x16 grey crops, augmented (an MLP, which sees where the padding is,
/// learns these solid images' brightness under padding and misses the unpadded test images); the classes and the parameter count in config.json and
/// the summary, per-class accuracies with --per-class.
#[test]
fn a_small_folder_trains_well_above_chance() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("images");
    let classes = ["cat", "dog", "owl", "yak"];
    let mut layout = Vec::new();
    for c in classes {
        layout.push(("train", c, 60));
        layout.push(("test", c, 15));
        layout.push(("val", c, 5));
    }
    make_folder(&root, &layout, 12);
    let out = tmp.path().join("run");
    let o = run_bin(&argv(
        &[
            "--dataset",
            "folder",
            "--data-dir",
            root.to_str().unwrap(),
            "--model",
            "cnn",
            "--image-size",
            "16",
            "--epochs",
            "4",
            "--batch-size",
            "16",
            "--lr",
            "0.05",
            "--per-class",
            "--threads",
            "2",
            "--quiet",
        ],
        &out,
    ));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary = json(&out.join("summary.json"));
    let acc = summary["test_accuracy"].as_f64().unwrap();
    assert!(acc > 0.6, "test accuracy {acc} (chance 0.25)");
    assert_eq!(summary["classes"], serde_json::json!(classes));
    assert_eq!(summary["per_class_accuracy"].as_array().unwrap().len(), 4);
    // val/ is the validation set, scored beside the test set.
    let val = summary["val_accuracy"].as_f64().expect("val_accuracy");
    assert!(val > 0.6, "validation accuracy {val} (chance 0.25)");
    let evals = run_support::events(&out, "eval");
    assert!(evals.iter().all(|e| e["val_loss"].as_f64().is_some()));
    // cnn on 1x16x16, 4 classes, by hand: conv 1->32 (288 + 32), BN 64, conv 32->64 (18,432 +
    // 64), BN 128, features 64 x 2 x 2 -> 128 (32,768 + 128), 128 -> 4 (512 + 4) = 52,420.
    let config = json(&out.join("config.json"));
    assert_eq!(config["parameters"], 52_420);
    assert_eq!(summary["parameters"], config["parameters"]);
    assert_eq!(config["classes"], serde_json::json!(classes));
    assert_eq!(config["image_size"], 16);

    compare_shows_per_class(&out, &summary);
}

/// compare shows a run's per-class accuracies in a table of their own (percentages under the class
/// names), and its CSV as fractions by label.
fn compare_shows_per_class(out: &Path, summary: &serde_json::Value) {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("t.csv");
    let o = run_bin(
        &[
            "compare",
            out.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
        ]
        .map(String::from),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let per_class: Vec<f64> = summary["per_class_accuracy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let table = text
        .split("per-class test accuracy (%)")
        .nth(1)
        .unwrap_or_else(|| panic!("no per-class table: {text}"));
    for a in &per_class {
        assert!(table.contains(&format!("{:.2}", 100.0 * a)), "{text}");
    }
    let csv = std::fs::read_to_string(csv).unwrap();
    let fractions: Vec<String> = per_class.iter().map(|a| a.to_string()).collect();
    assert!(
        csv.lines().next().unwrap().ends_with(",per_class_accuracy"),
        "{csv}"
    );
    assert!(csv.contains(&fractions.join(";")), "{csv}");
}
