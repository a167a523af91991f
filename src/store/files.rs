//! Image files on disk: exactly the bytes the server sent, in dated folders under the data dir,
//! named so they sort by time, written to a temporary file, synced and renamed into place (a
//! crash never leaves half an image under its final name), each with a JSON sidecar.

use super::Id;
use crate::api::ReceivedImage;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An image saved on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedImage {
    /// Where it is: relative to the data dir when inside it, absolute otherwise.
    pub path: PathBuf,
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    pub sha256: String,
}

/// Create a directory (and its parents) readable only by the user.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Make an existing folder readable only by the user (folders made before, by hand or by an
/// older easel, may be open to others).
pub fn make_private(path: &Path, folder: bool) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::symlink_metadata(path)?;
        if meta.file_type().is_symlink() {
            return Ok(());
        }
        let want = if folder { 0o700 } else { 0o600 };
        if meta.permissions().mode() & 0o777 != want {
            fs::set_permissions(path, fs::Permissions::from_mode(want))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, folder);
    Ok(())
}

/// The folder under the data dir that holds every image easel keeps.
pub const IMAGES_DIR: &str = "images";

/// A stored image path in its plain form: relative, `.` parts dropped, inside `images/`, and not
/// a sidecar or temporary file. Anything else is refused with the reason.
pub fn normalize_image_path(path: &Path) -> Result<PathBuf, String> {
    use std::path::Component;
    let shown = || crate::sanitize::line(&path.display().to_string()).into_owned();
    if path.as_os_str().is_empty() {
        return Err("an image path is empty".into());
    }
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!("the image path {} climbs out with ..", shown()));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("the image path {} is absolute", shown()));
            }
        }
    }
    let mut parts = out.components();
    if parts.next().map(|c| c.as_os_str()) != Some(std::ffi::OsStr::new(IMAGES_DIR))
        || parts.next().is_none()
    {
        return Err(format!(
            "the image path {} is not inside the images folder",
            shown()
        ));
    }
    match out.extension().and_then(|e| e.to_str()) {
        Some("json" | "tmp") | None => Err(format!(
            "the image path {} does not name an image file",
            shown()
        )),
        Some(_) => Ok(out),
    }
}

/// Whether the file name says the image belongs to record `id`: easel names every image
/// `TIME_ID_N.EXT`, so no two records can own one file.
pub fn named_for(path: &Path, id: &Id) -> bool {
    let want = id.to_string();
    path.file_stem()
        .and_then(|s| s.to_str())
        .is_some_and(|stem| stem.split('_').any(|part| part == want))
}

/// The image file (and its sidecar) that deleting record `id` may remove: inside the data dir's
/// images folder (symlinks resolved), named for that record. Anything else (an `--out` image in
/// the user's own folder, a path a crafted import slipped in) is kept, and the reason given.
pub fn deletable(data_dir: &Path, id: &Id, saved: &SavedImage) -> Result<PathBuf, String> {
    let shown = || crate::sanitize::line(&saved.path.display().to_string()).into_owned();
    if saved.path.is_absolute() {
        return Err(format!(
            "kept {}: it is outside easel's images folder (written with --out)",
            shown()
        ));
    }
    let rel = normalize_image_path(&saved.path).map_err(|e| format!("kept the file: {e}"))?;
    if !named_for(&rel, id) {
        return Err(format!(
            "kept {}: its name does not carry this record's id, so it is not this record's file",
            shown()
        ));
    }
    let images = data_dir
        .join(IMAGES_DIR)
        .canonicalize()
        .map_err(|e| format!("kept {}: the images folder cannot be read ({e})", shown()))?;
    let full = data_dir.join(&rel);
    let folder = full
        .parent()
        .and_then(|p| p.canonicalize().ok())
        .ok_or_else(|| format!("kept {}: its folder is gone", shown()))?;
    if !folder.starts_with(&images) {
        return Err(format!(
            "kept {}: it leads outside the images folder through a symlink",
            shown()
        ));
    }
    let name = full
        .file_name()
        .ok_or_else(|| format!("kept {}: no file name", shown()))?;
    Ok(folder.join(name))
}

/// A sidecar made from a record (for an image copied in by an import): the same fields as the
/// one written with a fresh image, so history can be rebuilt from it.
pub fn sidecar_of(r: &super::GenerationRecord) -> serde_json::Value {
    serde_json::json!({
        "easel_sidecar": 1,
        "id": r.id.to_string(),
        "prompt": r.prompt,
        "revised_prompt": r.revised_prompt,
        "model": r.model,
        "provider": r.provider,
        "backend": if r.demo { "demo" } else { "openai-compatible" },
        "demo": r.demo,
        "request": r.params,
        "created_at": r.created.to_rfc3339(),
        "started_at": r.started.map(|t| t.to_rfc3339()),
        "finished_at": r.finished.map(|t| t.to_rfc3339()),
        "attempts": r.attempts,
        "request_id": r.request_id,
        "usage": r.usage,
        "estimated_cost_usd": r.cost_usd,
        "run": r.run,
    })
}

/// The folder and file stem for image `index` (0-based) of generation `id`:
/// `images/2026-11-28/214700123_<id>_1` (time to the millisecond, so names sort by time).
/// Nothing of the prompt goes into a path.
pub fn image_stem(id: &Id, created: DateTime<Utc>, index: usize) -> (PathBuf, String) {
    let dir = PathBuf::from("images").join(created.format("%Y-%m-%d").to_string());
    let stem = format!("{}_{}_{}", created.format("%H%M%S%3f"), id, index + 1);
    (dir, stem)
}

/// Write `bytes` to `path` durably: temporary file in the same folder, fsync, rename, fsync the
/// folder. On any error the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no folder"))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Make a rename durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Turn an I/O error into a sentence that says what to do.
pub fn describe_io_error(what: &str, path: &Path, e: &io::Error) -> String {
    let advice = match e.kind() {
        io::ErrorKind::PermissionDenied => {
            " (check the folder's permissions, or set EASEL_DATA_DIR)"
        }
        io::ErrorKind::StorageFull => " (the disk is full: free some space)",
        io::ErrorKind::ReadOnlyFilesystem => {
            " (the file system is read-only: set EASEL_DATA_DIR elsewhere)"
        }
        _ => "",
    };
    format!("could not {what} {}: {e}{advice}", path.display())
}

/// Saves images (and their sidecars) under a root folder.
#[derive(Debug, Clone)]
pub struct ImageFiles {
    /// The data dir: saved paths are relative to it.
    data_dir: PathBuf,
    /// Where images go: the data dir, or the folder `--out` names (flat, no dated folders).
    out_dir: Option<PathBuf>,
}

impl ImageFiles {
    pub fn new(data_dir: &Path, out_dir: Option<&Path>) -> ImageFiles {
        ImageFiles {
            data_dir: data_dir.to_path_buf(),
            out_dir: out_dir.map(Path::to_path_buf),
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The folder `--out` named, if any.
    pub fn out_dir(&self) -> Option<&Path> {
        self.out_dir.as_deref()
    }

    /// The absolute path of a saved image's path.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.data_dir.join(path)
        }
    }

    /// Save one image and its sidecar. `sidecar` is the generation's metadata; the image's own
    /// facts are added under "image".
    pub fn save(
        &self,
        id: &Id,
        created: DateTime<Utc>,
        index: usize,
        image: &ReceivedImage,
        sidecar: &serde_json::Value,
    ) -> Result<SavedImage, String> {
        let (rel_dir, stem) = image_stem(id, created, index);
        let dir = match &self.out_dir {
            Some(out) => out.clone(),
            None => self.data_dir.join(&rel_dir),
        };
        create_private_dir(&dir).map_err(|e| describe_io_error("create the folder", &dir, &e))?;
        if self.out_dir.is_none() {
            // Folders made before (by hand, or by an older easel) are made private too.
            for d in [self.data_dir.join(IMAGES_DIR), dir.clone()] {
                make_private(&d, true)
                    .map_err(|e| describe_io_error("make private the folder", &d, &e))?;
            }
        }
        let file = dir.join(format!("{stem}.{}", ext(image.info.format)));
        write_atomic(&file, &image.bytes)
            .map_err(|e| describe_io_error("save the image", &file, &e))?;
        let path = file
            .strip_prefix(&self.data_dir)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| file.clone());
        let saved = SavedImage {
            path,
            format: image.info.format.to_string(),
            width: image.info.width,
            height: image.info.height,
            bytes: image.bytes.len() as u64,
            sha256: sha256_hex(&image.bytes),
        };
        let mut meta = sidecar.clone();
        // A sidecar that cannot be written whole is an error, never an empty file: the sidecar
        // is what rebuilds history after damage.
        let text = serde_json::to_value(&saved)
            .and_then(|image| {
                if let Some(obj) = meta.as_object_mut() {
                    obj.insert("index".into(), serde_json::json!(index + 1));
                    obj.insert("image".into(), image);
                }
                serde_json::to_vec_pretty(&meta)
            })
            .map_err(|e| {
                let _ = fs::remove_file(&file);
                format!("could not write the sidecar of {}: {e}", file.display())
            })?;
        let side = dir.join(format!("{stem}.json"));
        if let Err(e) = write_atomic(&side, &text) {
            let _ = fs::remove_file(&file);
            return Err(describe_io_error("save the sidecar", &side, &e));
        }
        Ok(saved)
    }

    /// Remove an image and its sidecar that this run has just written (a job cancelled part-way
    /// or whose record could not be stored). Deleting a record uses [`deletable`] instead.
    pub fn remove(&self, saved: &SavedImage) {
        let file = self.resolve(&saved.path);
        let _ = fs::remove_file(file.with_extension("json"));
        let _ = fs::remove_file(&file);
    }
}

fn ext(format: &str) -> &str {
    match format {
        "jpeg" => "jpg",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::payload::{ImageInfo, tiny_png};

    fn image() -> ReceivedImage {
        let bytes = bytes::Bytes::from(tiny_png(4, 3));
        ReceivedImage {
            bytes,
            info: ImageInfo {
                format: "png",
                width: 4,
                height: 3,
            },
            revised_prompt: None,
            source: "b64_json",
        }
    }

    #[test]
    fn saves_exact_bytes_with_sidecar_in_dated_folder() {
        let dir = tempfile::tempdir().unwrap();
        let files = ImageFiles::new(dir.path(), None);
        let id = Id::new();
        let when = DateTime::parse_from_rfc3339("2026-11-28T21:47:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let img = image();
        let saved = files
            .save(
                &id,
                when,
                0,
                &img,
                &serde_json::json!({"prompt": "../../etc/passwd"}),
            )
            .unwrap();
        assert_eq!(
            saved.path,
            PathBuf::from(format!("images/2026-11-28/214700000_{id}_1.png"))
        );
        let abs = files.resolve(&saved.path);
        assert_eq!(fs::read(&abs).unwrap(), img.bytes.as_ref());
        assert_eq!(saved.sha256, sha256_hex(&img.bytes));
        let side: serde_json::Value =
            serde_json::from_slice(&fs::read(abs.with_extension("json")).unwrap()).unwrap();
        assert_eq!(side["image"]["width"], 4);
        assert_eq!(side["prompt"], "../../etc/passwd");
        // No temporary files left behind.
        let names: Vec<_> = fs::read_dir(abs.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(abs.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0);
        }
    }

    #[test]
    fn names_sort_by_time() {
        let a = Id::new();
        let t = Utc::now();
        let later = t + chrono::Duration::milliseconds(1);
        assert!(image_stem(&a, t, 0).1 < image_stem(&Id::new(), later, 0).1);
        assert!(image_stem(&a, t, 0).1 < image_stem(&a, t, 1).1);
    }

    #[test]
    fn out_dir_and_unwritable_dir() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let files = ImageFiles::new(&dir.path().join("data"), Some(&out));
        let saved = files
            .save(&Id::new(), Utc::now(), 0, &image(), &serde_json::json!({}))
            .unwrap();
        assert!(saved.path.is_absolute() && saved.path.starts_with(&out));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let ro = dir.path().join("ro");
            fs::create_dir(&ro).unwrap();
            fs::set_permissions(&ro, fs::Permissions::from_mode(0o500)).unwrap();
            if fs::write(ro.join("probe"), b"x").is_ok() {
                return; // running as root, which ignores permissions
            }
            let files = ImageFiles::new(&ro, None);
            let e = files
                .save(&Id::new(), Utc::now(), 0, &image(), &serde_json::json!({}))
                .unwrap_err();
            assert!(e.contains("permissions"), "{e}");
        }
    }
}
