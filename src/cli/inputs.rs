//! The input pictures of `easel generate --image/--mask/--variation`: a file, or a history
//! record's image (`ID[:N]`, an id or unique prefix and the image's 1-based number).

use crate::api::InputImage;
use crate::sanitize;
use crate::store::sled_store::SledStore;
use crate::store::{HistoryStore, ImageFiles, StoreError};
use std::path::{Path, PathBuf};

/// What the flags ask for, resolved to files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    pub images: Vec<InputImage>,
    pub mask: Option<InputImage>,
    pub input_fidelity: Option<String>,
    pub variation: bool,
}

impl Inputs {
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Put them into a request's parameters.
    pub fn apply(&self, params: &mut crate::api::GenerationParams) {
        params.images = self.images.clone();
        params.mask = self.mask.clone();
        params.input_fidelity = self.input_fidelity.clone();
        params.variation = self.variation;
    }
}

/// How a reference is written: a path, or an id with an optional `:N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    File(PathBuf),
    Record { id: String, index: u32 },
}

/// Read a reference: an existing path (even a dangling symlink: the checks say what is wrong
/// with it) is a file; else `ID` or `ID:N` with a hexadecimal id (prefix) is a history image;
/// anything else is a file that does not exist.
pub fn parse_reference(text: &str) -> Result<Reference, String> {
    let path = Path::new(text);
    if std::fs::symlink_metadata(path).is_ok() {
        return Ok(Reference::File(path.to_path_buf()));
    }
    let (id, index) = match text.rsplit_once(':') {
        Some((id, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            let index: u32 = n
                .parse()
                .map_err(|_| format!("{}: the image number is too large", sanitize::line(text)))?;
            if index == 0 {
                return Err(format!(
                    "{}: images are numbered from 1",
                    sanitize::line(text)
                ));
            }
            (id, index)
        }
        _ => (text, 1),
    };
    let looks_like_id = id.len() >= 4 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if looks_like_id {
        Ok(Reference::Record {
            id: id.to_string(),
            index,
        })
    } else {
        Ok(Reference::File(path.to_path_buf()))
    }
}

/// Turn every reference into a file, opening the history only when one names a record.
/// `Err((code, message))`: 64 for what cannot be understood (an unknown id), 1 otherwise.
pub fn resolve(
    settings: &crate::config::Settings,
    images: &[String],
    mask: Option<&str>,
    variation: Option<&str>,
    input_fidelity: Option<&str>,
) -> Result<Inputs, (i32, String)> {
    let mut refs: Vec<(&'static str, Reference, &str)> = Vec::new();
    for text in images {
        refs.push(("--image", parse_reference(text).map_err(|e| (64, e))?, text));
    }
    if let Some(text) = variation {
        refs.push((
            "--variation",
            parse_reference(text).map_err(|e| (64, e))?,
            text,
        ));
    }
    if let Some(text) = mask {
        refs.push(("--mask", parse_reference(text).map_err(|e| (64, e))?, text));
    }
    let needs_store = refs
        .iter()
        .any(|(_, r, _)| matches!(r, Reference::Record { .. }));
    let data_dir = settings.paths.data_dir.as_path();
    let store: Option<Box<dyn HistoryStore>> = if needs_store {
        // Through the data folder's service when it is on (it holds the folder), else here.
        let opened: Result<Box<dyn HistoryStore>, String> =
            if settings.file.service.effective_mode() == crate::config::ServiceMode::Service {
                let name = format!("easel {} generate", env!("CARGO_PKG_VERSION"));
                crate::service::remote::RemoteStore::connect(settings, &name, true)
                    .map(|s| Box::new(s) as Box<dyn HistoryStore>)
                    .map_err(|e| e.to_string())
            } else {
                SledStore::open(data_dir)
                    .map(|s| Box::new(s) as Box<dyn HistoryStore>)
                    .map_err(|e| e.to_string())
            };
        Some(opened.map_err(|e| {
            (
                1,
                format!("cannot open the history to find the pictures: {e}"),
            )
        })?)
    } else {
        None
    };
    let files = ImageFiles::new(data_dir, None);
    let mut out = Inputs {
        input_fidelity: input_fidelity.map(str::to_string),
        variation: variation.is_some(),
        ..Inputs::default()
    };
    for (flag, reference, text) in refs {
        let input = match (reference, &store) {
            // Absolute: a queued job may run from another folder (the studio, a resumed queue).
            (Reference::File(path), _) => {
                InputImage::file(std::path::absolute(&path).unwrap_or(path))
            }
            (Reference::Record { id, index }, Some(store)) => {
                from_history(store.as_ref(), &files, &id, index).map_err(|(code, why)| {
                    (code, format!("{flag} {}: {why}", sanitize::line(text)))
                })?
            }
            (Reference::Record { .. }, None) => {
                return Err((1, "the history is not open".to_string()));
            }
        };
        match flag {
            "--mask" => out.mask = Some(input),
            _ => out.images.push(input),
        }
    }
    Ok(out)
}

/// Image `index` (1-based) of the record `id` names.
fn from_history(
    store: &dyn HistoryStore,
    files: &ImageFiles,
    id: &str,
    index: u32,
) -> Result<InputImage, (i32, String)> {
    let found = store.resolve(id).map_err(|e| match e {
        StoreError::NotFound(_) => (
            64,
            "no such file, and no history record has that id (`easel history list` shows them)"
                .to_string(),
        ),
        StoreError::Ambiguous { matches, .. } => (
            64,
            format!(
                "{} history records start with that: give more of the id",
                matches.len()
            ),
        ),
        other => (1, other.to_string()),
    })?;
    let record = store
        .get(found)
        .map_err(|e| (1, e.to_string()))?
        .ok_or_else(|| (64, "that record is gone from history".to_string()))?;
    let count = record.outputs.len();
    let saved = record.outputs.get(index as usize - 1).ok_or_else(|| {
        (
            64,
            match count {
                0 => format!(
                    "record {} has no images ({})",
                    record.id.short(),
                    record.status
                ),
                _ => format!(
                    "record {} has {count} image(s), not {index}",
                    record.id.short()
                ),
            },
        )
    })?;
    let path = files.resolve(&saved.path);
    Ok(InputImage {
        path,
        record: Some(record.id.to_string()),
        index: Some(index),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_files_or_ids() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cafe.png");
        std::fs::write(&file, b"x").unwrap();
        let f = file.to_string_lossy().into_owned();
        assert_eq!(parse_reference(&f).unwrap(), Reference::File(file.clone()));
        assert_eq!(
            parse_reference("0190abcd").unwrap(),
            Reference::Record {
                id: "0190abcd".into(),
                index: 1
            }
        );
        assert_eq!(
            parse_reference("0190abcd:3").unwrap(),
            Reference::Record {
                id: "0190abcd".into(),
                index: 3
            }
        );
        assert!(parse_reference("0190abcd:0").is_err());
        assert_eq!(
            parse_reference("photo.png").unwrap(),
            Reference::File(PathBuf::from("photo.png"))
        );
        assert_eq!(
            parse_reference("abc").unwrap(),
            Reference::File(PathBuf::from("abc"))
        );
    }
}
