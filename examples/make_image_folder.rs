//! Writes a folder data set of PNGs in class folders, for trying `--dataset folder` and timing its
//! decoding (first start) against its cache (second start):
//!
//!     cargo run --release --example make_image_folder -- /tmp/folder50k [--train 50000]
//!         [--test 10000] [--classes 10] [--side 32]
//!     time target/release/grawa-train --dataset folder --data-dir /tmp/folder50k --model resnet20 --steps 1
//!     time target/release/grawa-train --dataset folder --data-dir /tmp/folder50k --model resnet20 --steps 1
//!
//! Each class is a colour and a stripe direction, with per-image noise, so a model learns it; the
//! sides vary a little around `--side` so the resize and crop have work to do. Refuses a folder
//! that already has `train/` or `test/`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use image::{Rgb, RgbImage};
use rayon::prelude::*;

const USAGE: &str = "usage: make_image_folder DIR [--train N] [--test N] [--classes K] [--side S]";

struct Args {
    dir: PathBuf,
    train: usize,
    test: usize,
    classes: usize,
    side: u32,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let dir = it.next().ok_or(USAGE)?;
    let mut a = Args {
        dir: PathBuf::from(dir),
        train: 50_000,
        test: 10_000,
        classes: 10,
        side: 32,
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value; {USAGE}"))?;
        let n: usize = value
            .parse()
            .map_err(|_| format!("{flag} {value}: expected a whole number"))?;
        match flag.as_str() {
            "--train" => a.train = n,
            "--test" => a.test = n,
            "--classes" if (1..=256).contains(&n) => a.classes = n,
            "--side" if n >= 4 => a.side = n as u32,
            _ => return Err(format!("{flag} {value}: not understood; {USAGE}")),
        }
    }
    Ok(a)
}

/// Image `i` of class `c`: a hue per class, stripes along a class's direction, noise per image.
fn image(c: usize, i: usize, side: u32) -> RgbImage {
    let (w, h) = (side + (i % 5) as u32, side + (i % 3) as u32);
    let hue = [
        (220u32, 60u32, 60u32),
        (60, 220, 60),
        (60, 60, 220),
        (220, 220, 60),
        (220, 60, 220),
    ][c % 5];
    RgbImage::from_fn(w, h, |x, y| {
        let stripe = if (c / 5).is_multiple_of(2) { x } else { y };
        let on = (stripe / 3 + c as u32).is_multiple_of(2);
        let noise = (x * 31 + y * 17 + i as u32 * 7) % 23;
        let v = |base: u32| (if on { base } else { base / 2 } + noise).min(255) as u8;
        Rgb([v(hue.0), v(hue.1), v(hue.2)])
    })
}

fn write_split(
    root: &Path,
    split: &str,
    n: usize,
    classes: usize,
    side: u32,
) -> Result<(), String> {
    for c in 0..classes {
        let dir = root.join(split).join(format!("class{c:03}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    (0..n).into_par_iter().try_for_each(|i| {
        let c = i % classes;
        let path = root
            .join(split)
            .join(format!("class{c:03}"))
            .join(format!("{i:06}.png"));
        image(c, i, side)
            .save(&path)
            .map_err(|e| format!("{}: {e}", path.display()))
    })
}

fn main() -> ExitCode {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("make_image_folder: {e}");
            return ExitCode::from(2);
        }
    };
    if a.dir.join("train").exists() || a.dir.join("test").exists() {
        eprintln!(
            "make_image_folder: {} already holds train/ or test/",
            a.dir.display()
        );
        return ExitCode::from(2);
    }
    let start = std::time::Instant::now();
    let written = write_split(&a.dir, "train", a.train, a.classes, a.side)
        .and_then(|()| write_split(&a.dir, "test", a.test, a.classes, a.side));
    match written {
        Ok(()) => {
            println!(
                "{} train and {} test PNGs in {} classes under {} ({:.1} s)",
                a.train,
                a.test,
                a.classes,
                a.dir.display(),
                start.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("make_image_folder: {e}");
            ExitCode::from(1)
        }
    }
}
