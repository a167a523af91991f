//! Turning what a server sent into verified image bytes: base64, `data:` URLs, and the check
//! that the bytes really are an image (not SVG, HTML or a truncated file). The bytes themselves
//! are kept exactly as sent, so provenance metadata such as C2PA survives.

use super::response::describe_bytes;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use bytes::Bytes;

/// What the verified bytes turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// "png", "jpeg", "webp" or "gif": also the file extension.
    pub format: &'static str,
    pub width: u32,
    pub height: u32,
}

/// Decode base64 the way servers actually send it: standard or URL-safe, padded or not, with
/// line breaks.
pub fn decode_base64(text: &str) -> Result<Bytes, String> {
    let cleaned: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if cleaned.is_empty() {
        return Err("the base64 image data is empty".into());
    }
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        if let Ok(bytes) = engine.decode(cleaned.as_bytes()) {
            return Ok(Bytes::from(bytes));
        }
    }
    let bad = cleaned
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+/-_=".contains(*c)))
        .map(|c| format!(" (it contains {c:?})"))
        .unwrap_or_default();
    Err(format!("the image data is not valid base64{bad}"))
}

/// Decode a `data:` URL. Only base64 payloads are accepted: images are binary.
pub fn decode_data_url(url: &str) -> Result<Bytes, String> {
    let rest = url.get(5..).filter(|_| url[..5].eq_ignore_ascii_case("data:")).ok_or("not a data: URL")?;
    let (meta, payload) = rest.split_once(',').ok_or("the data: URL has no comma before its data")?;
    if !meta.to_ascii_lowercase().ends_with(";base64") {
        return Err("the data: URL is not base64-encoded".into());
    }
    decode_base64(payload)
}

fn sniff(bytes: &[u8]) -> Option<&'static str> {
    match image::guess_format(bytes).ok()? {
        image::ImageFormat::Png => Some("png"),
        image::ImageFormat::Jpeg => Some("jpeg"),
        image::ImageFormat::WebP => Some("webp"),
        image::ImageFormat::Gif => Some("gif"),
        _ => None,
    }
}

/// Check that `bytes` decode fully as an image of a format easel can show. This decodes the whole
/// picture (about 10 ms for 1024²), so call it off the UI thread.
pub fn verify_image(bytes: &[u8]) -> Result<ImageInfo, String> {
    let Some(format) = sniff(bytes) else {
        return Err(format!("expected an image but received {}", describe_bytes(bytes)));
    };
    let img = image::load_from_memory(bytes)
        .map_err(|e| format!("the {format} image is damaged or cut off ({} bytes): {e}", bytes.len()))?;
    Ok(ImageInfo { format, width: img.width(), height: img.height() })
}

#[cfg(test)]
pub(crate) fn tiny_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_pixel(w, h, image::Rgba([200, 100, 50, 255]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgba8(img).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_variants() {
        assert_eq!(decode_base64("aGk=").unwrap().as_ref(), b"hi");
        assert_eq!(decode_base64("aGk").unwrap().as_ref(), b"hi");
        assert_eq!(decode_base64("aG\nk=").unwrap().as_ref(), b"hi");
        assert_eq!(decode_base64("-_8=").unwrap().as_ref(), &[0xfb, 0xff]);
        assert!(decode_base64("!!!not base64!!!").unwrap_err().contains("'!'"));
        assert!(decode_base64("").is_err());
    }

    #[test]
    fn data_urls() {
        assert_eq!(decode_data_url("data:image/png;base64,aGk=").unwrap().as_ref(), b"hi");
        assert_eq!(decode_data_url("DATA:image/png;BASE64,aGk=").unwrap().as_ref(), b"hi");
        assert!(decode_data_url("data:image/svg+xml,<svg/>").is_err());
        assert!(decode_data_url("data:").is_err());
        assert!(decode_data_url("http://x").is_err());
        assert!(decode_data_url("dat").is_err());
    }

    #[test]
    fn verification() {
        let png = tiny_png(7, 5);
        assert_eq!(verify_image(&png).unwrap(), ImageInfo { format: "png", width: 7, height: 5 });
        let cut = &png[..png.len() / 2];
        assert!(verify_image(cut).unwrap_err().contains("damaged or cut off"));
        assert!(verify_image(b"<svg xmlns='http://www.w3.org/2000/svg'/>").unwrap_err().contains("SVG"));
        assert!(verify_image(b"<html>nope</html>").unwrap_err().contains("HTML"));
        assert!(verify_image(b"just some words").unwrap_err().contains("text"));
    }
}
