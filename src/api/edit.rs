//! Edits (`POST /images/edits`) and variations (`POST /images/variations`): the input pictures a
//! request carries, and the checks they must pass before anything is sent.
//!
//! The checks read the files' first bytes (the format is decided by the bytes, never by the
//! name) and their headers (for the size in pixels); a mask is read whole (it is under 4 MB) to
//! see that it has transparent pixels. Nothing here keeps a file in memory: the client streams
//! them from disk when it sends.

use super::request::ValidationError;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// An input picture: a file, and (when it came from history) the record and image it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputImage {
    pub path: PathBuf,
    /// The history record it is an image of (a full id), when it came from history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// Which image of that record, 1-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
}

impl InputImage {
    pub fn file(path: impl Into<PathBuf>) -> InputImage {
        InputImage {
            path: path.into(),
            record: None,
            index: None,
        }
    }
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Generations,
    Edits,
    Variations,
}

impl Endpoint {
    /// The path after the base URL.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Generations => "/images/generations",
            Endpoint::Edits => "/images/edits",
            Endpoint::Variations => "/images/variations",
        }
    }
}

/// The most bytes one input picture of a GPT image model may have (less than 50 MB).
pub const GPT_IMAGE_MAX_BYTES: u64 = 50 * 1024 * 1024;
/// The most bytes of a DALL·E-dialect picture and of any mask (less than 4 MB).
pub const SMALL_IMAGE_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// The files of an edit or a variation, and what they must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditFiles {
    pub endpoint: Endpoint,
    pub images: Vec<PathBuf>,
    pub mask: Option<PathBuf>,
    /// The multipart name of the pictures: `image[]` (GPT image models) or `image`.
    pub image_field: &'static str,
    pub limits: Limits,
}

/// What the input pictures of one request must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_images: usize,
    /// Less than this many bytes each.
    pub max_bytes: u64,
    /// PNG only (the DALL·E dialect), else png, webp or jpeg.
    pub png_only: bool,
    /// Square pictures only (the DALL·E dialect).
    pub square: bool,
}

impl Limits {
    pub fn gpt() -> Limits {
        Limits {
            max_images: 16,
            max_bytes: GPT_IMAGE_MAX_BYTES,
            png_only: false,
            square: false,
        }
    }

    pub fn dalle() -> Limits {
        Limits {
            max_images: 1,
            max_bytes: SMALL_IMAGE_MAX_BYTES,
            png_only: true,
            square: true,
        }
    }
}

/// What a check found out about one input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    pub path: PathBuf,
    /// "png", "jpeg" or "webp", from the bytes.
    pub format: &'static str,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

impl Inspected {
    pub fn mime(&self) -> &'static str {
        match self.format {
            "jpeg" => "image/jpeg",
            "webp" => "image/webp",
            _ => "image/png",
        }
    }

    /// The name sent in the multipart part: the file's own name with the right extension.
    pub fn upload_name(&self) -> String {
        let stem = self
            .path
            .file_stem()
            .map(|s| sanitize_name(&s.to_string_lossy()))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "image".to_string());
        let ext = if self.format == "jpeg" {
            "jpg"
        } else {
            self.format
        };
        format!("{stem}.{ext}")
    }
}

/// A file name a multipart header can carry: ASCII letters, digits, `-`, `_` and `.` only.
fn sanitize_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect()
}

/// The image format of `head` (a file's first bytes), whatever its name says.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpeg")
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some("webp")
    } else if head.starts_with(b"GIF8") {
        Some("gif")
    } else if head.starts_with(b"BM") {
        Some("bmp")
    } else {
        None
    }
}

fn refuse(field: &'static str, message: String) -> ValidationError {
    ValidationError { field, message }
}

fn shown(path: &Path) -> String {
    crate::sanitize::line(&path.display().to_string()).into_owned()
}

/// Open `path` for reading as a regular file: a missing file, a folder, a symlink to something
/// that is not a regular file, and an unreadable file are each refused with their own message.
fn open_regular(field: &'static str, path: &Path) -> Result<(std::fs::File, u64), ValidationError> {
    let name = shown(path);
    let link = std::fs::symlink_metadata(path).map_err(|e| {
        refuse(
            field,
            match e.kind() {
                std::io::ErrorKind::NotFound => format!("{name}: no such file"),
                _ => format!("{name}: cannot be read: {e}"),
            },
        )
    })?;
    let meta = if link.file_type().is_symlink() {
        std::fs::metadata(path).map_err(|_| {
            refuse(
                field,
                format!("{name} is a symbolic link to nothing (its target is missing)"),
            )
        })?
    } else {
        link.clone()
    };
    if meta.is_dir() {
        return Err(refuse(
            field,
            format!("{name} is a folder, not an image file"),
        ));
    }
    if !meta.is_file() {
        let what = if link.file_type().is_symlink() {
            "is a symbolic link to something that is not a regular file (a device, a pipe, a socket)"
        } else {
            "is not a regular file (a device, a pipe, a socket)"
        };
        return Err(refuse(field, format!("{name} {what}")));
    }
    let file = std::fs::File::open(path)
        .map_err(|e| refuse(field, format!("{name}: cannot be read: {e}")))?;
    Ok((file, meta.len()))
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

/// Check one input picture and read what it is.
pub fn inspect(
    field: &'static str,
    path: &Path,
    limits: &Limits,
) -> Result<Inspected, ValidationError> {
    let name = shown(path);
    let (mut file, bytes) = open_regular(field, path)?;
    if bytes == 0 {
        return Err(refuse(field, format!("{name} is empty")));
    }
    if bytes >= limits.max_bytes {
        return Err(refuse(
            field,
            format!(
                "{name} is {}: it must be under {}",
                megabytes(bytes),
                megabytes(limits.max_bytes)
            ),
        ));
    }
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) => return Err(refuse(field, format!("{name}: cannot be read: {e}"))),
        }
    }
    let format = match sniff(&head[..got]) {
        Some(f @ ("png" | "jpeg" | "webp")) => f,
        Some(other) => {
            return Err(refuse(
                field,
                format!(
                    "{name} is a {} file: {}",
                    other.to_uppercase(),
                    if limits.png_only {
                        "this model takes PNG only"
                    } else {
                        "edits take PNG, WebP or JPEG"
                    }
                ),
            ));
        }
        None => {
            return Err(refuse(
                field,
                format!(
                    "{name} is not an image (its bytes are not PNG, WebP or JPEG, whatever its name says)"
                ),
            ));
        }
    };
    if limits.png_only && format != "png" {
        return Err(refuse(
            field,
            format!(
                "{name} is {}: this model takes PNG only",
                format.to_uppercase()
            ),
        ));
    }
    let (width, height) = dimensions(path, format).map_err(|e| {
        refuse(
            field,
            format!("{name} is not a readable {format} picture: {e}"),
        )
    })?;
    if limits.square && width != height {
        return Err(refuse(
            field,
            format!("{name} is {width}x{height}: this model takes square pictures only"),
        ));
    }
    Ok(Inspected {
        path: path.to_path_buf(),
        format,
        width,
        height,
        bytes,
    })
}

/// The size in pixels, from the header only.
fn dimensions(path: &Path, format: &str) -> Result<(u32, u32), String> {
    let fmt = match format {
        "png" => image::ImageFormat::Png,
        "jpeg" => image::ImageFormat::Jpeg,
        _ => image::ImageFormat::WebP,
    };
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader = image::ImageReader::with_format(std::io::BufReader::new(file), fmt);
    reader.into_dimensions().map_err(|e| e.to_string())
}

/// The size in pixels of each input picture of `params` that can be read (for the estimate of
/// what the inputs cost); unreadable ones are left out.
pub fn input_sizes(images: &[InputImage]) -> Vec<(u32, u32)> {
    images
        .iter()
        .filter_map(|i| {
            image::ImageReader::open(&i.path)
                .ok()?
                .with_guessed_format()
                .ok()?
                .into_dimensions()
                .ok()
        })
        .collect()
}

/// Check a mask against the first picture: a PNG under 4 MB, the picture's exact size, with an
/// alpha channel and at least one transparent pixel (alpha 0 marks where to edit).
pub fn inspect_mask(path: &Path, first: &Inspected) -> Result<Inspected, ValidationError> {
    let limits = Limits {
        max_images: 1,
        max_bytes: SMALL_IMAGE_MAX_BYTES,
        png_only: true,
        square: false,
    };
    let mask = inspect("mask", path, &limits)?;
    let name = shown(path);
    if (mask.width, mask.height) != (first.width, first.height) {
        return Err(refuse(
            "mask",
            format!(
                "{name} is {}x{}, but the picture it masks ({}) is {}x{}: a mask must be the same size",
                mask.width,
                mask.height,
                shown(&first.path),
                first.width,
                first.height
            ),
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| refuse("mask", format!("{name}: cannot be read: {e}")))?;
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .map_err(|e| refuse("mask", format!("{name} is not a readable PNG: {e}")))?;
    if !img.color().has_alpha() {
        return Err(refuse(
            "mask",
            format!(
                "{name} has no alpha channel: a mask marks where to edit with transparent (alpha 0) pixels"
            ),
        ));
    }
    let rgba = img.to_rgba8();
    if !rgba.pixels().any(|p| p.0[3] == 0) {
        return Err(refuse(
            "mask",
            format!(
                "{name} has no fully transparent pixel: nothing would be edited (alpha 0 marks where to edit)"
            ),
        ));
    }
    Ok(mask)
}

/// Run every check on the files of a request, in order: the count, then each picture, then the
/// mask. Returns what each picture is (the mask last).
pub fn check_files(files: &EditFiles) -> Result<Vec<Inspected>, ValidationError> {
    let limits = &files.limits;
    if files.images.is_empty() {
        return Err(refuse("image", "no input picture given".into()));
    }
    if files.images.len() > limits.max_images {
        return Err(refuse(
            "image",
            format!(
                "{} pictures given: this request takes at most {}",
                files.images.len(),
                limits.max_images
            ),
        ));
    }
    let mut out = Vec::with_capacity(files.images.len() + 1);
    for path in &files.images {
        out.push(inspect("image", path, limits)?);
    }
    if let Some(mask) = &files.mask {
        let first = out[0].clone();
        out.push(inspect_mask(mask, &first)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};

    fn png(w: u32, h: u32, alpha: u8) -> Vec<u8> {
        let img = RgbaImage::from_pixel(w, h, Rgba([10, 20, 30, alpha]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn rgb_png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([1, 2, 3]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 100, 0]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    /// Every local check refuses with its own message, and nothing else is refused.
    #[test]
    fn local_checks_table() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let put = |name: &str, bytes: &[u8]| {
            let p = d.join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let square = put("square.png", &png(32, 32, 255));
        let wide = put("wide.png", &png(48, 32, 255));
        let photo = put("photo.png", &jpeg(32, 32)); // a JPEG named .png
        let gif = put("anim.png", b"GIF89a\x01\x00\x01\x00");
        let text = put("notes.png", b"hello, this is not a picture");
        let empty = put("empty.png", b"");
        let mask_ok = put("mask.png", &png(32, 32, 0));
        let mask_small = put("mask-small.png", &png(16, 16, 0));
        let mask_rgb = put("mask-rgb.png", &rgb_png(32, 32));
        let mask_opaque = put("mask-opaque.png", &png(32, 32, 255));
        let mask_jpeg = put("mask.jpg", &jpeg(32, 32));
        let folder = d.join("folder");
        std::fs::create_dir(&folder).unwrap();
        let missing = d.join("missing.png");
        let dangling = d.join("dangling.png");
        std::os::unix::fs::symlink(d.join("nowhere"), &dangling).unwrap();
        let to_dir = d.join("to-dir.png");
        std::os::unix::fs::symlink(&folder, &to_dir).unwrap();
        let to_null = d.join("to-null.png");
        std::os::unix::fs::symlink("/dev/null", &to_null).unwrap();
        let to_file = d.join("to-file.png");
        std::os::unix::fs::symlink(&square, &to_file).unwrap();
        let tiny_limit = Limits {
            max_bytes: 64,
            ..Limits::gpt()
        };

        let files = |images: Vec<&PathBuf>, mask: Option<&PathBuf>, limits: Limits| EditFiles {
            endpoint: Endpoint::Edits,
            images: images.into_iter().cloned().collect(),
            mask: mask.cloned(),
            image_field: "image[]",
            limits,
        };
        let g = Limits::gpt;
        let seventeen: Vec<&PathBuf> = std::iter::repeat_n(&square, 17).collect();
        // (case, request, Ok or the field and words of the refusal)
        type Case<'a> = (&'a str, EditFiles, Option<(&'a str, &'a str)>);
        let cases: Vec<Case> = vec![
            ("one png", files(vec![&square], None, g()), None),
            (
                "a jpeg named .png is a jpeg",
                files(vec![&photo], None, g()),
                None,
            ),
            (
                "16 pictures",
                files(std::iter::repeat_n(&square, 16).collect(), None, g()),
                None,
            ),
            (
                "a symlink to a file",
                files(vec![&to_file], None, g()),
                None,
            ),
            (
                "png with its mask",
                files(vec![&square], Some(&mask_ok), g()),
                None,
            ),
            (
                "none",
                files(vec![], None, g()),
                Some(("image", "no input picture")),
            ),
            (
                "17 pictures",
                files(seventeen, None, g()),
                Some(("image", "at most 16")),
            ),
            (
                "two for dall-e-2",
                files(vec![&square, &square], None, Limits::dalle()),
                Some(("image", "at most 1")),
            ),
            (
                "missing",
                files(vec![&missing], None, g()),
                Some(("image", "no such file")),
            ),
            (
                "a folder",
                files(vec![&folder], None, g()),
                Some(("image", "is a folder")),
            ),
            (
                "dangling symlink",
                files(vec![&dangling], None, g()),
                Some(("image", "link to nothing")),
            ),
            (
                "symlink to a folder",
                files(vec![&to_dir], None, g()),
                Some(("image", "is a folder")),
            ),
            (
                "symlink to a device",
                files(vec![&to_null], None, g()),
                Some(("image", "not a regular file")),
            ),
            (
                "empty",
                files(vec![&empty], None, g()),
                Some(("image", "is empty")),
            ),
            (
                "too big",
                files(vec![&square], None, tiny_limit),
                Some(("image", "must be under")),
            ),
            ("gif", files(vec![&gif], None, g()), Some(("image", "GIF"))),
            (
                "text",
                files(vec![&text], None, g()),
                Some(("image", "not an image")),
            ),
            (
                "jpeg for dall-e-2",
                files(vec![&photo], None, Limits::dalle()),
                Some(("image", "PNG only")),
            ),
            (
                "not square for dall-e-2",
                files(vec![&wide], None, Limits::dalle()),
                Some(("image", "square")),
            ),
            (
                "mask of the wrong size",
                files(vec![&square], Some(&mask_small), g()),
                Some(("mask", "same size")),
            ),
            (
                "mask without alpha",
                files(vec![&square], Some(&mask_rgb), g()),
                Some(("mask", "no alpha channel")),
            ),
            (
                "mask without a transparent pixel",
                files(vec![&square], Some(&mask_opaque), g()),
                Some(("mask", "no fully transparent")),
            ),
            (
                "jpeg mask",
                files(vec![&square], Some(&mask_jpeg), g()),
                Some(("mask", "PNG only")),
            ),
            (
                "missing mask",
                files(vec![&square], Some(&missing), g()),
                Some(("mask", "no such file")),
            ),
        ];
        for (case, request, expected) in cases {
            match (check_files(&request), expected) {
                (Ok(found), None) => {
                    assert_eq!(
                        found.len(),
                        request.images.len() + usize::from(request.mask.is_some()),
                        "{case}"
                    );
                }
                (Err(e), Some((field, words))) => {
                    assert_eq!(e.field, field, "{case}: {e}");
                    assert!(e.message.contains(words), "{case}: {e} lacks {words:?}");
                }
                (Ok(_), Some(want)) => panic!("{case}: accepted, but should be refused ({want:?})"),
                (Err(e), None) => panic!("{case}: refused: {e}"),
            }
        }
        let photo_seen = check_files(&files(vec![&photo], None, g())).unwrap();
        assert_eq!(photo_seen[0].format, "jpeg");
        assert_eq!(photo_seen[0].upload_name(), "photo.jpg");
        assert_eq!(photo_seen[0].mime(), "image/jpeg");
    }

    #[test]
    fn sniffing_reads_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nxxxx"), Some("png"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("webp"));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("jpeg"));
        assert_eq!(sniff(b"<svg"), None);
    }

    #[test]
    fn upload_names_are_plain() {
        let i = Inspected {
            path: PathBuf::from("/x/été \"q\".png"),
            format: "png",
            width: 1,
            height: 1,
            bytes: 1,
        };
        assert_eq!(i.upload_name(), "_t___q_.png");
    }
}
