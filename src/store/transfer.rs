//! Export and import of history as JSON lines: one versioned record a line, image paths relative
//! to the data folder. Import is idempotent (records already present are skipped) and refuses
//! records whose image paths are not inside the images folder or not named for the record (so
//! deleting a record never deletes the store's files or another record's), and records larger
//! than a live request could make. `--out` images (absolute paths) are copied in.

use super::files::{self, SavedImage};
use super::record::{self, Envelope, GenerationRecord, RECORD_VERSION, Status};
use super::{HistoryStore, StoreError};
use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// Write every record, oldest first. Returns how many.
pub fn export(store: &dyn HistoryStore, out: &mut dyn Write) -> Result<usize, StoreError> {
    let mut n = 0;
    store.for_each(&mut |r| {
        let line = serde_json::to_string(&Envelope {
            v: RECORD_VERSION,
            record: r,
        })
        .map_err(|e| StoreError::Invalid(format!("could not write a record: {e}")))?;
        // The same JSON with unsafe characters escaped: safe to print, and read back exactly.
        writeln!(out, "{}", crate::sanitize::json(&line))
            .map_err(|e| StoreError::Io(format!("could not write the export: {e}")))?;
        n += 1;
        Ok(())
    })?;
    out.flush()
        .map_err(|e| StoreError::Io(format!("could not write the export: {e}")))?;
    Ok(n)
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    pub imported: usize,
    /// Already in history.
    pub present: usize,
    /// (line number, reason) for each line refused.
    pub refused: Vec<(usize, String)>,
    /// Images from outside the data folder (`--out` images) copied into the images folder.
    pub copied: usize,
}

/// The longest import line read (a record with a prompt at the limit is about 40 KB).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;
/// The longest prompt any model in the catalogue takes (gpt-image: 32,000 characters).
pub const MAX_PROMPT_CHARS: usize = 32_000;
/// Names, codes and parameter values: model, provider, size, request id, error kind…
pub const MAX_FIELD_CHARS: usize = 1_000;
/// Error messages and hints.
pub const MAX_MESSAGE_CHARS: usize = 8_000;
/// Tags: how many, and how long each.
pub const MAX_TAGS: usize = 100;
pub const MAX_TAG_CHARS: usize = 200;
/// Images in one record: the most a request may ask for (n is 1 to 10).
pub const MAX_OUTPUTS: usize = 10;
/// The largest image file copied in from outside the data folder.
pub const MAX_IMAGE_BYTES: u64 = 256 * 1024 * 1024;

/// Check that a stored path stays inside the data folder's images folder: relative, no `..`,
/// under `images/`, not a sidecar, and no symlink on the way that leads out of the images
/// folder. Returns the path in its plain form (`./` dropped), as it is stored.
pub fn check_path(data_dir: &Path, path: &Path) -> Result<PathBuf, String> {
    let rel = files::normalize_image_path(path)?;
    // Follow symlinks of whatever part exists already: the deepest existing part (the file, or
    // a folder on the way to a file not there yet) must resolve inside the images folder. An
    // existing part that does not resolve (a dangling symlink) is refused too.
    let images = data_dir.join(files::IMAGES_DIR);
    let full = data_dir.join(&rel);
    if let Ok(root) = images.canonicalize()
        && let Some(existing) = full
            .ancestors()
            .take_while(|p| p.starts_with(&images))
            .find(|p| p.symlink_metadata().is_ok())
        && !existing
            .canonicalize()
            .is_ok_and(|real| real.starts_with(&root))
    {
        return Err(format!(
            "the image path {} leads outside the images folder through a symlink",
            crate::sanitize::line(&path.display().to_string())
        ));
    }
    Ok(rel)
}

/// Refuse a record whose fields are larger than a live request allows.
fn check_sizes(r: &GenerationRecord) -> Result<(), String> {
    let chars = |s: &str| s.chars().count();
    let over = |what: &str, len: usize, max: usize| {
        Err(format!(
            "the {what} is {len} characters long: the limit is {max}"
        ))
    };
    for (what, text) in [
        ("prompt", Some(&r.prompt)),
        ("revised prompt", r.revised_prompt.as_ref()),
    ] {
        if let Some(t) = text
            && chars(t) > MAX_PROMPT_CHARS
        {
            return over(what, chars(t), MAX_PROMPT_CHARS);
        }
    }
    let p = &r.params;
    if chars(&p.prompt) > MAX_PROMPT_CHARS {
        return over("prompt", chars(&p.prompt), MAX_PROMPT_CHARS);
    }
    let mut fields: Vec<(&str, Option<&String>)> = vec![
        ("model", Some(&r.model)),
        ("provider", Some(&r.provider)),
        ("parameters' model", Some(&p.model)),
        ("size", p.size.as_ref()),
        ("quality", p.quality.as_ref()),
        ("background", p.background.as_ref()),
        ("output format", p.output_format.as_ref()),
        ("moderation", p.moderation.as_ref()),
        ("style", p.style.as_ref()),
        ("response format", p.response_format.as_ref()),
        ("user", p.user.as_ref()),
        ("request id", r.request_id.as_ref()),
    ];
    if let Some(e) = &r.error {
        fields.extend([
            ("error kind", Some(&e.kind)),
            ("error code", e.code.as_ref()),
            ("error's request id", e.request_id.as_ref()),
        ]);
        for (what, text) in [
            ("error message", Some(&e.message)),
            ("error hint", e.hint.as_ref()),
        ] {
            if let Some(t) = text
                && chars(t) > MAX_MESSAGE_CHARS
            {
                return over(what, chars(t), MAX_MESSAGE_CHARS);
            }
        }
    }
    for o in &r.outputs {
        fields.push(("image format", Some(&o.format)));
        fields.push(("image sha256", Some(&o.sha256)));
    }
    for (what, text) in fields {
        if let Some(t) = text
            && chars(t) > MAX_FIELD_CHARS
        {
            return over(what, chars(t), MAX_FIELD_CHARS);
        }
    }
    if r.tags.len() > MAX_TAGS {
        return Err(format!(
            "the record has {} tags: the limit is {MAX_TAGS}",
            r.tags.len()
        ));
    }
    if let Some(t) = r.tags.iter().find(|t| chars(t) > MAX_TAG_CHARS) {
        return over("tag", chars(t), MAX_TAG_CHARS);
    }
    if r.outputs.len() > MAX_OUTPUTS {
        return Err(format!(
            "the record has {} images: a request makes at most {MAX_OUTPUTS}",
            r.outputs.len()
        ));
    }
    Ok(())
}

fn parse_line(line: &str) -> Result<GenerationRecord, String> {
    // Accept the envelope (what export writes) or a bare record.
    match record::decode(line.as_bytes()) {
        Ok(r) => Ok(r),
        Err(envelope_err) => {
            serde_json::from_str::<GenerationRecord>(line).map_err(|_| envelope_err)
        }
    }
}

/// Read one line of at most `max` bytes into `raw`. Returns how many bytes the line had in all
/// (0 at the end); a longer line is read to its end but not kept.
fn read_line(input: &mut dyn BufRead, raw: &mut Vec<u8>, max: usize) -> std::io::Result<usize> {
    raw.clear();
    let mut total = 0;
    loop {
        let (done, used) = {
            let buf = input.fill_buf()?;
            if buf.is_empty() {
                return Ok(total);
            }
            match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (true, i + 1),
                None => (false, buf.len()),
            }
        };
        if total + used <= max {
            let buf = input.fill_buf()?;
            raw.extend_from_slice(&buf[..used]);
        } else {
            raw.clear();
        }
        input.consume(used);
        total += used;
        if done {
            return Ok(total);
        }
    }
}

/// One image to copy in: a `--out` image of the record, found where it was written.
struct Copy {
    index: usize,
    from: PathBuf,
}

/// Where an image outside the data folder (an `--out` image) may come from: a regular file
/// (not a symlink) owned by the user who owns the data folder, no larger than the limit, holding
/// exactly the bytes the record names (same sha256).
fn check_outside_image(data_dir: &Path, saved: &SavedImage) -> Result<(), String> {
    let shown = crate::sanitize::line(&saved.path.display().to_string()).into_owned();
    let meta = std::fs::symlink_metadata(&saved.path).map_err(|e| {
        format!("the image {shown} is outside the data folder and cannot be read ({e}): copy it into the images folder first")
    })?;
    if !meta.file_type().is_file() {
        return Err(format!(
            "the image path {shown} is absolute and not a regular file"
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(data_dir).map(|m| m.uid()).ok();
        if owner != Some(meta.uid()) {
            return Err(format!(
                "the image path {shown} is absolute and the file is not yours"
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = data_dir;
    if meta.len() > MAX_IMAGE_BYTES {
        return Err(format!(
            "the image {shown} is {} bytes: the limit is {MAX_IMAGE_BYTES}",
            meta.len()
        ));
    }
    let bytes =
        std::fs::read(&saved.path).map_err(|e| format!("the image {shown} cannot be read: {e}"))?;
    if files::sha256_hex(&bytes) != saved.sha256 {
        return Err(format!(
            "the image path {shown} is absolute and the file there is not the record's image (its sha256 differs)"
        ));
    }
    Ok(())
}

/// Check a record's image paths; returns the record with plain paths, and the `--out` images to
/// copy in.
fn check_outputs(data_dir: &Path, r: &mut GenerationRecord) -> Result<Vec<Copy>, String> {
    let mut copies = Vec::new();
    let mut claimed: HashSet<PathBuf> = HashSet::new();
    for (index, o) in r.outputs.iter_mut().enumerate() {
        if o.path.is_absolute() {
            // An image written with --out. Inside the data folder it is an ordinary path.
            match o.path.strip_prefix(data_dir) {
                Ok(rel) => o.path = rel.to_path_buf(),
                Err(_) => {
                    check_outside_image(data_dir, o)?;
                    copies.push(Copy {
                        index,
                        from: o.path.clone(),
                    });
                    continue;
                }
            }
        }
        o.path = check_path(data_dir, &o.path)?;
        // Every file belongs to one record: its name carries the record's id.
        if !files::named_for(&o.path, &r.id) {
            return Err(format!(
                "the image path {} does not carry the record's id: every image file belongs to one record",
                crate::sanitize::line(&o.path.display().to_string())
            ));
        }
        for p in [o.path.clone(), o.path.with_extension("json")] {
            if !claimed.insert(p.clone()) {
                return Err(format!(
                    "two images of the record share the file {}",
                    crate::sanitize::line(&p.display().to_string())
                ));
            }
        }
    }
    Ok(copies)
}

/// Copy the `--out` images of a record into the images folder, under the names easel gives
/// them, each with a sidecar (the one next to it when there is one, else made from the record).
fn copy_in(
    data_dir: &Path,
    r: &mut GenerationRecord,
    copies: &[Copy],
) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    let result = (|| {
        for c in copies {
            let Some(o) = r.outputs.get(c.index).cloned() else {
                continue;
            };
            let (dir, stem) = files::image_stem(&r.id, r.created, c.index);
            let ext = c
                .from
                .extension()
                .and_then(|e| e.to_str())
                .filter(|e| e.len() <= 8 && e.bytes().all(|b| b.is_ascii_alphanumeric()))
                .unwrap_or("img");
            let rel = dir.join(format!("{stem}.{ext}"));
            let abs = data_dir.join(&rel);
            let folder = data_dir.join(&dir);
            files::create_private_dir(&folder)
                .map_err(|e| files::describe_io_error("create the folder", &folder, &e))?;
            let bytes = std::fs::read(&c.from)
                .map_err(|e| files::describe_io_error("read", &c.from, &e))?;
            if files::sha256_hex(&bytes) != o.sha256 {
                return Err(format!(
                    "the image {} changed while it was imported",
                    crate::sanitize::line(&c.from.display().to_string())
                ));
            }
            files::write_atomic(&abs, &bytes)
                .map_err(|e| files::describe_io_error("copy the image to", &abs, &e))?;
            written.push(abs.clone());
            let mut saved = o.clone();
            saved.path = rel.clone();
            let sidecar = std::fs::symlink_metadata(c.from.with_extension("json"))
                .ok()
                .filter(|m| m.file_type().is_file() && m.len() <= MAX_LINE_BYTES as u64)
                .and_then(|_| std::fs::read(c.from.with_extension("json")).ok())
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .filter(serde_json::Value::is_object)
                .unwrap_or_else(|| files::sidecar_of(r));
            let mut sidecar = sidecar;
            if let Some(obj) = sidecar.as_object_mut() {
                obj.insert("index".into(), serde_json::json!(c.index + 1));
                obj.insert(
                    "image".into(),
                    serde_json::to_value(&saved).unwrap_or_default(),
                );
            }
            let side = abs.with_extension("json");
            let text = serde_json::to_vec_pretty(&sidecar).unwrap_or_default();
            files::write_atomic(&side, &text)
                .map_err(|e| files::describe_io_error("write the sidecar", &side, &e))?;
            written.push(side);
            if let Some(out) = r.outputs.get_mut(c.index) {
                out.path = rel;
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(written),
        Err(e) => {
            for f in &written {
                let _ = std::fs::remove_file(f);
            }
            Err(e)
        }
    }
}

/// Import JSON lines into the store.
pub fn import(
    store: &dyn HistoryStore,
    data_dir: &Path,
    input: &mut dyn BufRead,
) -> Result<ImportReport, StoreError> {
    let mut report = ImportReport::default();
    let mut raw = Vec::new();
    let mut number = 0;
    loop {
        let read = read_line(input, &mut raw, MAX_LINE_BYTES)
            .map_err(|e| StoreError::Io(format!("could not read the import file: {e}")))?;
        if read == 0 {
            break;
        }
        number += 1;
        if read > MAX_LINE_BYTES {
            report.refused.push((
                number,
                format!("the line is {read} bytes long: the limit is {MAX_LINE_BYTES}"),
            ));
            continue;
        }
        // A damaged line is refused on its own; it does not end the import.
        let Ok(line) = std::str::from_utf8(&raw) else {
            report
                .refused
                .push((number, "the line is not UTF-8 text".to_string()));
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        let mut r = match parse_line(line.trim()) {
            Ok(r) => r,
            Err(e) => {
                report
                    .refused
                    .push((number, crate::sanitize::line(&e).into_owned()));
                continue;
            }
        };
        if let Err(why) = check_sizes(&r) {
            report.refused.push((number, why));
            continue;
        }
        if store.get(r.id)?.is_some() {
            report.present += 1;
            continue;
        }
        let copies = match check_outputs(data_dir, &mut r) {
            Ok(c) => c,
            Err(why) => {
                report.refused.push((number, why));
                continue;
            }
        };
        let written = match copy_in(data_dir, &mut r, &copies) {
            Ok(w) => w,
            Err(why) => {
                report.refused.push((number, why));
                continue;
            }
        };
        // An imported job never starts running by itself.
        if matches!(r.status, Status::Queued | Status::Running) {
            r.status = Status::Interrupted;
        }
        if let Err(e) = store.put(&r) {
            for f in &written {
                let _ = std::fs::remove_file(f);
            }
            return Err(e);
        }
        report.copied += copies.len();
        report.imported += 1;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_escape_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("images")).unwrap();
        assert!(check_path(root, Path::new("images/2026-11-28/a.png")).is_ok());
        assert!(
            check_path(root, Path::new("../etc/passwd"))
                .unwrap_err()
                .contains("..")
        );
        assert!(
            check_path(root, Path::new("images/../../x.png"))
                .unwrap_err()
                .contains("..")
        );
        assert!(
            check_path(root, Path::new("/etc/passwd"))
                .unwrap_err()
                .contains("absolute")
        );
        assert!(check_path(root, Path::new("")).is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc", root.join("images/link")).unwrap();
            assert!(
                check_path(root, Path::new("images/link/passwd.png"))
                    .unwrap_err()
                    .contains("symlink")
            );
        }
    }
}
