//! Export and import of history as JSON lines: one versioned record a line, image paths relative
//! to the data folder. Import is idempotent (records already present are skipped) and refuses
//! records whose paths would escape the data folder.

use super::record::{self, Envelope, GenerationRecord, RECORD_VERSION, Status};
use super::{HistoryStore, StoreError};
use std::io::{BufRead, Write};
use std::path::{Component, Path};

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
}

/// Check that a stored path stays inside the data folder: relative, no `..`, and no symlink on
/// the way that leads out.
pub fn check_path(data_dir: &Path, path: &Path) -> Result<(), String> {
    if path.as_os_str().is_empty() {
        return Err("an image path is empty".into());
    }
    for c in path.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!(
                    "the image path {} climbs out with ..",
                    crate::sanitize::line(&path.display().to_string())
                ));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "the image path {} is absolute",
                    crate::sanitize::line(&path.display().to_string())
                ));
            }
        }
    }
    // Follow symlinks of whatever part exists already: the deepest existing part (the file, or
    // a folder on the way to a file not there yet) must resolve inside the data folder. An
    // existing part that does not resolve (a dangling symlink) is refused too.
    let full = data_dir.join(path);
    if let Ok(root) = data_dir.canonicalize()
        && let Some(existing) = full.ancestors().find(|p| p.symlink_metadata().is_ok())
        && !existing
            .canonicalize()
            .is_ok_and(|real| real.starts_with(&root))
    {
        return Err(format!(
            "the image path {} leads outside the data folder through a symlink",
            crate::sanitize::line(&path.display().to_string())
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
        raw.clear();
        let read = input
            .read_until(b'\n', &mut raw)
            .map_err(|e| StoreError::Io(format!("could not read the import file: {e}")))?;
        if read == 0 {
            break;
        }
        number += 1;
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
        if let Some(bad) = r
            .outputs
            .iter()
            .find_map(|o| check_path(data_dir, &o.path).err())
        {
            report.refused.push((number, bad));
            continue;
        }
        if store.get(r.id)?.is_some() {
            report.present += 1;
            continue;
        }
        // An imported job never starts running by itself.
        if matches!(r.status, Status::Queued | Status::Running) {
            r.status = Status::Interrupted;
        }
        store.put(&r)?;
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
                check_path(root, Path::new("images/link/passwd"))
                    .unwrap_err()
                    .contains("symlink")
            );
        }
    }
}
