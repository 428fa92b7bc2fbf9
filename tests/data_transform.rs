//! Normalisation and augmentation against hand-computed values and an explicit padded-image
//! reference.

use grawa_train::data::{Augment, AugmentParams, DatasetKind, ImageShape, Normalization};

fn close(a: f32, b: f64) -> bool {
    (a as f64 - b).abs() < 1e-5
}

#[test]
fn normalisation_matches_hand_computed_values() {
    // Expected values computed as (p / 255 - mean) / std in f64 (python3, see the formula).
    let m = Normalization::for_kind(DatasetKind::Mnist);
    assert!(close(m.apply(0, 0), -0.424212917883804));
    assert!(close(m.apply(0, 255), 2.82148653034729));
    assert!(close(m.apply(0, 128), 1.2050009227969019));
    let f = Normalization::for_kind(DatasetKind::FashionMnist);
    assert!(close(f.apply(0, 0), -0.8101983002832861));
    let c10 = Normalization::for_kind(DatasetKind::Cifar10);
    assert!(close(c10.apply(0, 204), 1.2493927125506075));
    assert!(close(c10.apply(2, 51), -0.9422782874617737));
    let c100 = Normalization::for_kind(DatasetKind::Cifar100);
    assert!(close(c100.apply(1, 51), -1.1173946957878313));
    // Synthetic: one entry, used for every channel.
    let s = Normalization::for_kind(DatasetKind::Synthetic);
    assert!(close(s.apply(0, 255), 2.0) && close(s.apply(2, 255), 2.0));

    // The lookup table writes the same values, channel by channel.
    let shape = ImageShape::new(3, 1, 2);
    let src = [204, 0, 10, 20, 51, 255];
    let mut out = [0f32; 6];
    c10.table(3).write(&src, shape, &mut out);
    let want: Vec<f32> = src
        .iter()
        .enumerate()
        .map(|(i, &p)| c10.apply(i / 2, p))
        .collect();
    assert_eq!(out.to_vec(), want);
    assert!(close(out[0], 1.2493927125506075) && close(out[4], -0.9422782874617737));
}

/// Reference: the image zero-padded by `pad` on every side, explicitly built, then the window at
/// (dy, dx), then mirrored if `flip`; finally `/ 255` (identity normalisation).
fn reference(src: &[u8], shape: ImageShape, pad: usize, p: AugmentParams) -> Vec<f32> {
    let (c, h, w) = (shape.channels, shape.height, shape.width);
    let (ph, pw) = (h + 2 * pad, w + 2 * pad);
    let mut padded = vec![0u8; c * ph * pw];
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                padded[(ch * ph + y + pad) * pw + x + pad] = src[(ch * h + y) * w + x];
            }
        }
    }
    let mut out = Vec::new();
    for ch in 0..c {
        for y in 0..h {
            let mut row: Vec<u8> = (0..w)
                .map(|x| padded[(ch * ph + y + p.dy) * pw + x + p.dx])
                .collect();
            if p.flip {
                row.reverse();
            }
            out.extend(row.iter().map(|&v| v as f32 / 255.0));
        }
    }
    out
}

fn augmented(
    aug: Augment,
    src: &[u8],
    shape: ImageShape,
    norm: &Normalization,
    p: AugmentParams,
) -> Vec<f32> {
    let mut out = vec![0f32; shape.len()];
    aug.write(src, shape, &norm.table(shape.channels), p, &mut out);
    out
}

#[test]
fn crop_with_padding_4_takes_the_expected_window() {
    let shape = ImageShape::new(2, 6, 5);
    let src: Vec<u8> = (0..60).map(|i| 10 + i as u8).collect();
    let aug = Augment {
        crop_padding: 4,
        hflip: false,
    };
    let id = Normalization::identity();
    // A few offsets by hand: (4, 4) is the image itself; (5, 2) moves the window one row down and
    // two columns left, so output (0, 0) and (0, 1) are padding and (0, 2) is input (1, 0) = 15.
    let p = AugmentParams {
        dy: 4,
        dx: 4,
        flip: false,
    };
    let out = augmented(aug, &src, shape, &id, p);
    assert_eq!(
        out,
        src.iter().map(|&v| v as f32 / 255.0).collect::<Vec<_>>()
    );
    let p = AugmentParams {
        dy: 5,
        dx: 2,
        flip: false,
    };
    let out = augmented(aug, &src, shape, &id, p);
    assert_eq!(&out[..3], &[0.0, 0.0, 15.0 / 255.0]);
    // Every offset and flip against the explicit reference.
    for dy in 0..=8 {
        for dx in 0..=8 {
            for flip in [false, true] {
                let p = AugmentParams { dy, dx, flip };
                assert_eq!(
                    augmented(aug, &src, shape, &id, p),
                    reference(&src, shape, 4, p),
                    "{p:?}"
                );
            }
        }
    }
}

#[test]
fn flip_reverses_columns_and_padding_is_pixel_zero() {
    let shape = ImageShape::new(1, 2, 3);
    let src = [1, 2, 3, 4, 5, 6];
    let id = Normalization::identity();
    let flip = Augment {
        crop_padding: 0,
        hflip: true,
    };
    let p = AugmentParams {
        dy: 0,
        dx: 0,
        flip: true,
    };
    let want: Vec<f32> = [3, 2, 1, 6, 5, 4]
        .iter()
        .map(|&v| v as f32 / 255.0)
        .collect();
    assert_eq!(augmented(flip, &src, shape, &id, p), want);

    // Padding reads as a pixel of value 0 after normalisation, as torchvision pads before
    // ToTensor/Normalize: (0 - 0.1307) / 0.3081 for MNIST statistics.
    let crop = Augment {
        crop_padding: 4,
        hflip: false,
    };
    let m = Normalization::for_kind(DatasetKind::Mnist);
    let p = AugmentParams {
        dy: 0,
        dx: 0,
        flip: false,
    };
    let out = augmented(crop, &src, shape, &m, p);
    assert!(out.iter().all(|&v| close(v, -0.424212917883804)), "{out:?}");
}

#[test]
fn recipes_and_random_draws() {
    assert_eq!(
        Augment::for_kind(DatasetKind::Cifar10),
        Augment {
            crop_padding: 4,
            hflip: true
        }
    );
    assert_eq!(
        Augment::for_kind(DatasetKind::Cifar100),
        Augment::for_kind(DatasetKind::Cifar10)
    );
    for k in [
        DatasetKind::Mnist,
        DatasetKind::FashionMnist,
        DatasetKind::Synthetic,
    ] {
        assert!(Augment::for_kind(k).is_identity());
    }
    assert_eq!(
        Augment::none(),
        Augment {
            crop_padding: 0,
            hflip: false
        }
    );

    // Draws cover every offset, flip about half the time, and never flip when hflip is off.
    let aug = Augment::for_kind(DatasetKind::Cifar10);
    let mut seen = [[0usize; 9]; 2];
    let mut flips = 0;
    for i in 0..9000u64 {
        let bits = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i << 40).rotate_left(7);
        let bits = grawa_train::data::seed::mix64(bits);
        let p = aug.params_from_bits(bits);
        seen[0][p.dy] += 1;
        seen[1][p.dx] += 1;
        flips += usize::from(p.flip);
        assert!(
            !Augment {
                hflip: false,
                ..aug
            }
            .params_from_bits(bits)
            .flip
        );
    }
    assert!(
        seen.iter().flatten().all(|&c| (800..1200).contains(&c)),
        "{seen:?}"
    );
    assert!((4200..4800).contains(&flips), "{flips}");
    let none = Augment::none().params_from_bits(u64::MAX);
    assert_eq!(
        none,
        AugmentParams {
            dy: 0,
            dx: 0,
            flip: false
        }
    );
}
