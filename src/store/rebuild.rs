//! History rebuilt from the image sidecars. Every image easel saves has a JSON sidecar next to
//! it holding the generation's id, prompt, parameters, times, usage and the image's own facts,
//! so when the database is damaged beyond repair (or lost records that still have images), the
//! records of every generation that made an image can be made again from the images folder.

use super::Id;
use super::files::{self, SavedImage};
use super::record::{GenerationRecord, Status};
use crate::api::GenerationParams;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a scan of the sidecars found.
#[derive(Debug, Default)]
pub struct Scan {
    /// One record per generation id, oldest id first, outputs in image order.
    pub records: Vec<GenerationRecord>,
    /// Sidecars that could not be used, and why.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// The largest sidecar read (they are a few KB).
const MAX_SIDECAR_BYTES: u64 = 1024 * 1024;

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn id_time(id: &Id) -> DateTime<Utc> {
    id.uuid()
        .get_timestamp()
        .map(|t| t.to_unix())
        .and_then(|(s, n)| DateTime::from_timestamp(i64::try_from(s).ok()?, n))
        .unwrap_or_else(Utc::now)
}

/// Read one sidecar: the generation's id, its facts, and the image it describes (with the
/// path where the image is now, relative to the data folder).
fn read_sidecar(data_dir: &Path, side: &Path) -> Result<(Id, Value, usize, SavedImage), String> {
    let meta = std::fs::symlink_metadata(side).map_err(|e| e.to_string())?;
    if !meta.file_type().is_file() || meta.len() > MAX_SIDECAR_BYTES {
        return Err("not a sidecar file".into());
    }
    let bytes = std::fs::read(side).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("easel_sidecar").and_then(Value::as_u64) != Some(1) {
        return Err("not an easel sidecar".into());
    }
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .and_then(Id::parse)
        .ok_or("the sidecar has no generation id")?;
    let mut image: SavedImage = v
        .get("image")
        .cloned()
        .ok_or("the sidecar does not describe its image")
        .and_then(|i| {
            serde_json::from_value(i).map_err(|_| "the sidecar's image facts do not read")
        })?;
    // The image is next to its sidecar, whatever path was written at the time.
    let ext = image
        .path
        .extension()
        .map(|e| e.to_os_string())
        .ok_or("the sidecar's image has no file name")?;
    let file = side.with_extension(ext);
    if !std::fs::symlink_metadata(&file).is_ok_and(|m| m.file_type().is_file()) {
        return Err(format!("its image {} is not there", file.display()));
    }
    image.path = file
        .strip_prefix(data_dir)
        .map(Path::to_path_buf)
        .map_err(|_| "the image is outside the data folder")?;
    let index = v
        .get("index")
        .and_then(Value::as_u64)
        .and_then(|i| usize::try_from(i).ok())
        .unwrap_or(1);
    Ok((id, v, index, image))
}

/// The record a generation's sidecars describe.
fn record_of(id: Id, v: &Value, mut images: Vec<(usize, SavedImage)>) -> GenerationRecord {
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let mut params: GenerationParams = v
        .get("request")
        .cloned()
        .and_then(|r| serde_json::from_value(r).ok())
        .unwrap_or_default();
    if let Some(p) = text("prompt") {
        params.prompt = p;
    }
    if let Some(m) = text("model") {
        params.model = m;
    }
    // An edit's or a variation's inputs, and its lineage (see generation.rs).
    if let Some(inputs) = v.get("inputs").cloned() {
        params.images = serde_json::from_value(inputs).unwrap_or_default();
    }
    if let Some(mask) = v.get("mask").cloned() {
        params.mask = serde_json::from_value(mask).ok();
    }
    params.variation = text("endpoint").as_deref() == Some("/images/variations");
    let parents: Vec<crate::store::record::Parent> = v
        .get("parents")
        .cloned()
        .and_then(|p| serde_json::from_value(p).ok())
        .unwrap_or_default();
    let demo = v.get("demo").and_then(Value::as_bool).unwrap_or(false);
    let provider =
        text("provider").unwrap_or_else(|| (if demo { "demo" } else { "openai" }).into());
    let created = v
        .get("created_at")
        .and_then(time)
        .unwrap_or_else(|| id_time(&id));
    let mut r = GenerationRecord::queued(id, params, &provider, demo, created);
    if !parents.is_empty() {
        r.parents = parents;
    }
    r.run = v
        .get("run")
        .cloned()
        .and_then(|x| serde_json::from_value(x).ok());
    r.status = Status::Succeeded;
    r.revised_prompt = text("revised_prompt");
    r.started = v.get("started_at").and_then(time);
    r.finished = v.get("finished_at").and_then(time);
    r.attempts = v
        .get("attempts")
        .and_then(Value::as_u64)
        .and_then(|a| u32::try_from(a).ok())
        .unwrap_or(1);
    r.request_id = text("request_id");
    r.usage = v
        .get("usage")
        .cloned()
        .and_then(|u| serde_json::from_value(u).ok());
    r.cost_usd = v.get("estimated_cost_usd").and_then(Value::as_f64);
    images.sort_by_key(|(i, _)| *i);
    r.outputs = images.into_iter().map(|(_, s)| s).collect();
    r
}

/// Every sidecar under the images folder, as records. Symlinks are not followed.
pub fn scan(data_dir: &Path) -> Scan {
    scan_only(data_dir, |_| true)
}

/// Like [`scan`], for the generations `wanted` accepts.
pub fn scan_only(data_dir: &Path, wanted: impl Fn(&Id) -> bool) -> Scan {
    let mut scan = Scan::default();
    let mut found: BTreeMap<Id, (Value, Vec<(usize, SavedImage)>)> = BTreeMap::new();
    let mut stack = vec![data_dir.join(files::IMAGES_DIR)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                stack.push(p);
                continue;
            }
            let hidden = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if !kind.is_file() || hidden || p.extension().is_none_or(|x| x != "json") {
                continue;
            }
            match read_sidecar(data_dir, &p) {
                Ok((id, v, index, image)) => {
                    if !wanted(&id) {
                        continue;
                    }
                    let entry = found.entry(id).or_insert_with(|| (v, Vec::new()));
                    if !entry.1.iter().any(|(_, s)| s.path == image.path) {
                        entry.1.push((index, image));
                    }
                }
                Err(why) => scan.unreadable.push((p, why)),
            }
        }
    }
    scan.records = found
        .into_iter()
        .map(|(id, (v, images))| record_of(id, &v, images))
        .collect();
    scan
}
