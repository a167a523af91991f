//! Turning what a server sent into verified image bytes: base64, `data:` URLs, and the check
//! that the bytes really are an image (not SVG, HTML or a truncated file). The bytes themselves
//! are kept exactly as sent, so provenance metadata such as C2PA survives.

use super::response::describe_bytes;
use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;

/// What the verified bytes turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// "png", "jpeg", "webp" or "gif": also the file extension.
    pub format: &'static str,
    pub width: u32,
    pub height: u32,
}

/// One decoder for every base64 servers send: the standard alphabet with or without padding.
/// URL-safe text (`-`, `_`) is mapped onto it first.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decode base64 the way servers actually send it: standard or URL-safe, padded or not, with
/// line breaks.
pub fn decode_base64(text: &str) -> Result<Bytes, String> {
    // Images are megabytes of base64: copy only when something must change (line breaks,
    // URL-safe characters), which is rare.
    let needs_cleaning = text
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b == b'-' || b == b'_');
    let cleaned: std::borrow::Cow<'_, str> = if needs_cleaning {
        text.chars()
            .filter(|c| !c.is_ascii_whitespace())
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect::<String>()
            .into()
    } else {
        text.into()
    };
    if cleaned.is_empty() {
        return Err("the base64 image data is empty".into());
    }
    if let Ok(bytes) = BASE64.decode(cleaned.as_bytes()) {
        return Ok(Bytes::from(bytes));
    }
    let bad = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || c.is_ascii_whitespace() || "+/-_=".contains(*c)))
        .map(|c| format!(" (it contains {c:?})"))
        .unwrap_or_default();
    Err(format!("the image data is not valid base64{bad}"))
}

/// Decode a `data:` URL. Only base64 payloads are accepted: images are binary.
pub fn decode_data_url(url: &str) -> Result<Bytes, String> {
    let rest = url
        .get(5..)
        .filter(|_| url[..5].eq_ignore_ascii_case("data:"))
        .ok_or("not a data: URL")?;
    let (meta, payload) = rest
        .split_once(',')
        .ok_or("the data: URL has no comma before its data")?;
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

/// Check that `bytes` are a whole image of a format easel can show: the format by its signature,
/// the size from its header, and that nothing is cut off or damaged — for PNG every chunk's CRC up
/// to IEND, for JPEG the end-of-image marker, for WebP the RIFF length, for GIF the trailer. This
/// reads the bytes once without decompressing them (microseconds rather than the ~10 ms of a full
/// decode of a 1024² picture), so it is cheap enough for every answer.
pub fn verify_image(bytes: &[u8]) -> Result<ImageInfo, String> {
    let Some(format) = sniff(bytes) else {
        return Err(format!(
            "expected an image but received {}",
            describe_bytes(bytes)
        ));
    };
    let damaged = |why: &str| {
        format!(
            "the {format} image is damaged or cut off ({} bytes): {why}",
            bytes.len()
        )
    };
    let whole = match format {
        "png" => png_is_whole(bytes),
        "jpeg" => jpeg_is_whole(bytes),
        "webp" => webp_is_whole(bytes),
        "gif" => (bytes.last() == Some(&0x3b))
            .then_some(())
            .ok_or("it has no GIF trailer".to_string()),
        _ => Ok(()),
    };
    whole.map_err(|why| damaged(&why))?;
    // A whole PNG starts with its IHDR chunk: the size is right there.
    if format == "png" && bytes.get(12..16) == Some(b"IHDR") {
        let be = |at: usize| {
            bytes
                .get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        if let (Some(width), Some(height)) = (be(16), be(20))
            && width > 0
            && height > 0
        {
            return Ok(ImageInfo {
                format,
                width,
                height,
            });
        }
        return Err(damaged("its size is zero"));
    }
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| damaged(&e.to_string()))?;
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| damaged(&e.to_string()))?;
    if width == 0 || height == 0 {
        return Err(damaged("its size is zero"));
    }
    Ok(ImageInfo {
        format,
        width,
        height,
    })
}

/// Walk the PNG chunks: each must be there in full with a matching CRC, up to IEND.
fn png_is_whole(bytes: &[u8]) -> Result<(), String> {
    let mut pos = 8;
    loop {
        let head = bytes
            .get(pos..pos + 8)
            .ok_or("it ends before its IEND chunk")?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = &head[4..8];
        let end = pos
            .checked_add(8 + len + 4)
            .ok_or("a chunk length is impossible")?;
        let body = bytes
            .get(pos + 4..pos + 8 + len)
            .ok_or("a chunk is cut off")?;
        let crc = bytes.get(pos + 8 + len..end).ok_or("a chunk is cut off")?;
        if crc32fast::hash(body) != u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err(format!(
                "the {} chunk's checksum is wrong",
                String::from_utf8_lossy(kind)
            ));
        }
        if kind == b"IEND" {
            return Ok(());
        }
        pos = end;
    }
}

/// A JPEG ends with the end-of-image marker (some encoders pad after it).
fn jpeg_is_whole(bytes: &[u8]) -> Result<(), String> {
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    tail.windows(2)
        .any(|w| w == [0xff, 0xd9])
        .then_some(())
        .ok_or("it has no end-of-image marker".into())
}

/// A WebP file says its own length in the RIFF header.
fn webp_is_whole(bytes: &[u8]) -> Result<(), String> {
    let size = bytes
        .get(4..8)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or("its header is cut off")?;
    if size.saturating_add(8) > bytes.len() {
        return Err(format!(
            "it says it is {} bytes long",
            size.saturating_add(8)
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) fn tiny_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_pixel(w, h, image::Rgba([200, 100, 50, 255]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgba8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
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
        assert!(
            decode_base64("!!!not base64!!!")
                .unwrap_err()
                .contains("'!'")
        );
        assert!(decode_base64("").is_err());
    }

    proptest::proptest! {
        /// Whatever flavour a server encodes with, the one decoder reads it back.
        #[test]
        fn one_decoder_reads_every_flavour(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..200)) {
            use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
            for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
                let text = engine.encode(&bytes);
                let decoded = decode_base64(&text).unwrap();
                proptest::prop_assert_eq!(decoded.as_ref(), bytes.as_slice());
            }
        }
    }

    #[test]
    fn data_urls() {
        assert_eq!(
            decode_data_url("data:image/png;base64,aGk=")
                .unwrap()
                .as_ref(),
            b"hi"
        );
        assert_eq!(
            decode_data_url("DATA:image/png;BASE64,aGk=")
                .unwrap()
                .as_ref(),
            b"hi"
        );
        assert!(decode_data_url("data:image/svg+xml,<svg/>").is_err());
        assert!(decode_data_url("data:").is_err());
        assert!(decode_data_url("http://x").is_err());
        assert!(decode_data_url("dat").is_err());
    }

    #[test]
    fn every_format_and_every_cut() {
        let img = image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(40, 30, |x, y| {
            image::Rgba([x as u8 * 6, y as u8 * 8, 90, 255])
        }));
        for (fmt, name) in [
            (image::ImageFormat::Png, "png"),
            (image::ImageFormat::Jpeg, "jpeg"),
            (image::ImageFormat::WebP, "webp"),
            (image::ImageFormat::Gif, "gif"),
        ] {
            let mut out = std::io::Cursor::new(Vec::new());
            let img = if name == "jpeg" {
                image::DynamicImage::ImageRgb8(img.to_rgb8())
            } else {
                img.clone()
            };
            img.write_to(&mut out, fmt).unwrap();
            let bytes = out.into_inner();
            assert_eq!(
                verify_image(&bytes).unwrap(),
                ImageInfo {
                    format: name,
                    width: 40,
                    height: 30
                }
            );
            for cut in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
                assert!(
                    verify_image(&bytes[..cut]).is_err(),
                    "{name} cut at {cut} of {}",
                    bytes.len()
                );
            }
        }
        // A flipped byte inside PNG image data breaks its CRC.
        let mut png = tiny_png(16, 16);
        let mid = png.len() / 2;
        png[mid] ^= 0x55;
        assert!(verify_image(&png).unwrap_err().contains("checksum"));
    }

    #[test]
    fn verification() {
        let png = tiny_png(7, 5);
        assert_eq!(
            verify_image(&png).unwrap(),
            ImageInfo {
                format: "png",
                width: 7,
                height: 5
            }
        );
        let cut = &png[..png.len() / 2];
        assert!(
            verify_image(cut)
                .unwrap_err()
                .contains("damaged or cut off")
        );
        assert!(
            verify_image(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
                .unwrap_err()
                .contains("SVG")
        );
        assert!(
            verify_image(b"<html>nope</html>")
                .unwrap_err()
                .contains("HTML")
        );
        assert!(
            verify_image(b"just some words")
                .unwrap_err()
                .contains("text")
        );
    }
}
