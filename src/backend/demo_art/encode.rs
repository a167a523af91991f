//! Encoding a picture as PNG, JPEG or WebP.

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbaImage};

use super::DEFAULT_JPEG_QUALITY;

/// Encode to the requested format ("png" | "jpeg" | "webp"; jpeg honours `compression` 0–100 as quality, default 90; webp is lossless in the image crate, fine). Returns the encoded bytes or an error string.
///
/// Format names are case-insensitive and "jpg" is accepted. Fully opaque images are written as
/// RGB; JPEG composites any transparency over white.
pub fn encode(img: &RgbaImage, format: &str, compression: Option<u8>) -> Result<Vec<u8>, String> {
    let (w, h) = img.dimensions();
    let opaque = img.pixels().all(|p| p.0[3] == 255);
    let mut out = Vec::new();
    let fmt = format.trim().to_ascii_lowercase();
    let result = match fmt.as_str() {
        "png" => {
            let enc = PngEncoder::new(&mut out);
            if opaque {
                enc.write_image(&to_rgb(img), w, h, ExtendedColorType::Rgb8)
            } else {
                enc.write_image(img.as_raw(), w, h, ExtendedColorType::Rgba8)
            }
        }
        "jpeg" | "jpg" => {
            let quality = compression.unwrap_or(DEFAULT_JPEG_QUALITY).clamp(1, 100);
            JpegEncoder::new_with_quality(&mut out, quality).write_image(
                &to_rgb(img),
                w,
                h,
                ExtendedColorType::Rgb8,
            )
        }
        "webp" => {
            let enc = WebPEncoder::new_lossless(&mut out);
            if opaque {
                enc.write_image(&to_rgb(img), w, h, ExtendedColorType::Rgb8)
            } else {
                enc.write_image(img.as_raw(), w, h, ExtendedColorType::Rgba8)
            }
        }
        _ => {
            return Err(format!(
                "unsupported output format {format:?} (expected png, jpeg or webp)"
            ));
        }
    };
    result.map_err(|e| format!("could not encode {w}x{h} image as {fmt}: {e}"))?;
    Ok(out)
}

/// Drop alpha, compositing over white (a no-op for opaque pixels).
fn to_rgb(img: &RgbaImage) -> Vec<u8> {
    let mut out = Vec::with_capacity(img.as_raw().len() / 4 * 3);
    for p in img.pixels() {
        let [r, g, b, a] = p.0;
        if a == 255 {
            out.extend_from_slice(&[r, g, b]);
        } else {
            let a = u32::from(a);
            let over = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
            out.extend_from_slice(&[over(r), over(g), over(b)]);
        }
    }
    out
}
