//! One image file to the bytes a model reads: decoded (PNG or JPEG, by content, as PIL opens
//! them), converted to RGB or to grey, resized so its shorter side is `size` and center-cropped
//! to `size` x `size`, as torchvision's `Resize(size)` then `CenterCrop(size)` do.
//!
//! Interpolation: the `image` crate's `resize` with `FilterType::Triangle`, a bilinear (triangle)
//! filter whose support widens with the downscaling factor. That is the filter PIL's
//! `Image.resize(..., BILINEAR)` uses, and so torchvision's `Resize` on PIL images and on tensors
//! with `antialias=True` (its default): the same weights. The one difference is rounding: PIL
//! rounds to 8 bits between its horizontal and vertical passes and computes in fixed point, image
//! keeps the intermediate in f32. Pixels differ by one level at most in the cases that
//! tests/data_folder.rs compares against values PIL computed.

use image::imageops::{self, FilterType};
use image::{DynamicImage, GrayImage, ImageBuffer, Pixel};

/// The size torchvision's `Resize(size)` gives a `w` x `h` image: the shorter side becomes
/// `size`, the longer `int(size * long / short)` (truncated), so the aspect ratio is kept.
pub fn resized_dims(w: u32, h: u32, size: u32) -> (u32, u32) {
    let scaled = |long: u32, short: u32| (size as u64 * long as u64 / short as u64) as u32;
    if w <= h {
        (size, scaled(h, w))
    } else {
        (scaled(w, h), size)
    }
}

/// Python's `round`: halves go to the even neighbour (`round(0.5) == 0`, `round(1.5) == 2`).
fn round_half_even(twice: u32) -> u32 {
    // `twice` is 2x the value: an odd `twice` is a half.
    let (whole, half) = (twice / 2, twice % 2 == 1);
    if half && whole % 2 == 1 {
        whole + 1
    } else {
        whole
    }
}

/// The top-left corner of torchvision's `CenterCrop(size)` in a `w` x `h` image:
/// `int(round((w - size) / 2))`, the same for the top.
pub fn center_crop_origin(w: u32, h: u32, size: u32) -> (u32, u32) {
    (
        round_half_even(w.saturating_sub(size)),
        round_half_even(h.saturating_sub(size)),
    )
}

/// Grey from RGB as PIL's `convert('L')`: ITU-R 601-2 luma in fixed point,
/// `(R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16`.
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 0x8000) >> 16) as u8
}

/// Decodes `bytes` (PNG or JPEG) and writes the `channels` x `size` x `size` image (CHW) into
/// `out`. RGB as PIL's `convert('RGB')` (alpha dropped, grey repeated); one channel through
/// [`luma`]. The error says what the decoder found.
pub fn decode_into(bytes: &[u8], channels: usize, size: u32, out: &mut [u8]) -> Result<(), String> {
    let img = image::load_from_memory(bytes).map_err(|e| format!("cannot be decoded: {e}"))?;
    if img.width() == 0 || img.height() == 0 {
        return Err("the image is empty (0 pixels)".into());
    }
    match channels {
        1 => {
            let grey = to_grey(&img);
            write_planes(&resize_crop(&grey, size), size, out);
        }
        3 => write_planes(&resize_crop(&img.to_rgb8(), size), size, out),
        c => return Err(format!("{c} channels: images have 1 or 3")),
    }
    Ok(())
}

fn to_grey(img: &DynamicImage) -> GrayImage {
    let rgb = img.to_rgb8();
    GrayImage::from_fn(rgb.width(), rgb.height(), |x, y| {
        let [r, g, b] = rgb.get_pixel(x, y).0;
        image::Luma([luma(r, g, b)])
    })
}

/// `Resize(size)` then `CenterCrop(size)`.
fn resize_crop<P: Pixel<Subpixel = u8> + 'static>(
    img: &ImageBuffer<P, Vec<u8>>,
    size: u32,
) -> ImageBuffer<P, Vec<u8>> {
    let (w, h) = resized_dims(img.width(), img.height(), size);
    let resized = imageops::resize(img, w, h, FilterType::Triangle);
    let (left, top) = center_crop_origin(w, h, size);
    imageops::crop_imm(&resized, left, top, size, size).to_image()
}

/// HWC pixels to CHW planes.
fn write_planes<P: Pixel<Subpixel = u8>>(img: &ImageBuffer<P, Vec<u8>>, size: u32, out: &mut [u8]) {
    let c = P::CHANNEL_COUNT as usize;
    let plane = (size * size) as usize;
    for (i, px) in img.as_raw().chunks_exact(c).enumerate() {
        for (ch, &v) in px.iter().enumerate() {
            out[ch * plane + i] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// torchvision: Resize(32) of 64x48 (w x h) -> 42x32 (int(32 * 64 / 48) = 42); of 48x64 ->
    /// 32x42; a square stays square.
    #[test]
    fn the_shorter_side_becomes_size() {
        assert_eq!(resized_dims(64, 48, 32), (42, 32));
        assert_eq!(resized_dims(48, 64, 32), (32, 42));
        assert_eq!(resized_dims(100, 100, 32), (32, 32));
        // int() truncates: 32 * 50 / 33 = 48.48 -> 48.
        assert_eq!(resized_dims(50, 33, 32), (48, 32));
    }

    /// CenterCrop(32): (33 - 32) / 2 = 0.5 rounds to 0, (35 - 32) / 2 = 1.5 to 2, (42 - 32) / 2 = 5.
    #[test]
    fn crops_round_halves_to_even() {
        assert_eq!(center_crop_origin(33, 32, 32), (0, 0));
        assert_eq!(center_crop_origin(35, 32, 32), (2, 0));
        assert_eq!(center_crop_origin(42, 37, 32), (5, 2));
    }

    /// PIL: Image.new('RGB', (1, 1), (255, 0, 0)).convert('L') is 76; (0, 255, 0) 150;
    /// (0, 0, 255) 29; white 255.
    #[test]
    fn grey_is_pils_luma() {
        assert_eq!(luma(255, 0, 0), 76);
        assert_eq!(luma(0, 255, 0), 150);
        assert_eq!(luma(0, 0, 255), 29);
        assert_eq!(luma(255, 255, 255), 255);
    }
}
