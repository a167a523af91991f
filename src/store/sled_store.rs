//! The history store on sled: generations, their summaries (for fast indexing), the queue order,
//! and metadata, each in its own tree. Every change is flushed to disk before the call returns,
//! so a caller may announce it once this returns.

use super::lock::DataDirLock;
use super::query::{Cursor, Index, Query, Summary};
use super::record::{self, GenerationRecord, RecordedError, Status};
use super::{
    BadRecord, DoctorReport, HistoryStore, Id, ImageFiles, Page, QueueMove, Recovery, Stats,
    StoreError,
};
use chrono::Utc;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The schema version of the database layout.
pub const SCHEMA_VERSION: u32 = 1;

pub struct SledStore {
    db: sled::Db,
    gens: sled::Tree,
    summaries: sled::Tree,
    queue: sled::Tree,
    meta: sled::Tree,
    /// Deleted records, kept (with their files, where they are) until the trash is emptied.
    trash: sled::Tree,
    files: ImageFiles,
    /// Loaded on first use; kept in step with every write after that.
    index: Mutex<Option<Index>>,
    /// Serialises queue reordering (positions are read, then written) and every other
    /// read-then-write of a record (put, enqueue, delete, star, tags).
    queue_lock: Mutex<()>,
    skipped: Mutex<Vec<BadRecord>>,
    /// Jobs found running at open, their process gone: marked interrupted then.
    orphaned: Mutex<Vec<Id>>,
    /// Whether keys (id) order is also `created` order, so the newest page can be read straight
    /// from the records without the index. Imports of old records can break it.
    in_order: std::sync::atomic::AtomicBool,
    warnings: Vec<String>,
    _lock: Option<DataDirLock>,
    /// A read-only store works on a private copy of the database, removed when it closes.
    _copy: Option<ScratchDir>,
}

/// A record in the trash, and when it was put there.
#[derive(serde::Serialize, serde::Deserialize)]
struct TrashEntry {
    trashed: chrono::DateTime<Utc>,
    record: GenerationRecord,
}

/// A private temporary folder, removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    /// In `$XDG_RUNTIME_DIR` (memory, usually) or else the temporary folder.
    fn new() -> std::io::Result<ScratchDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("easel-readonly-{}-{nanos}", std::process::id());
        let mut last = None;
        let places = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .into_iter()
            .chain([std::env::temp_dir()]);
        for base in places {
            let dir = base.join(&name);
            match std::fs::DirBuilder::new().create(&dir) {
                Ok(()) => {
                    super::files::make_private(&dir, true)?;
                    return Ok(ScratchDir(dir));
                }
                Err(e) => last = Some((dir, e)),
            }
        }
        Err(last.map_or_else(
            || std::io::Error::other("no temporary folder"),
            |(dir, e)| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())),
        ))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copy a folder's regular files and folders (not symlinks).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    super::files::create_private_dir(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let kind = e.file_type()?;
        let target = to.join(e.file_name());
        if kind.is_dir() {
            copy_tree(&e.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(e.path(), &target)?;
        }
    }
    Ok(())
}

/// The metadata key saying whether id order is `created` order (1) or not (0).
const ORDER_KEY: &str = "created_order";

/// What to do about a damaged database, said wherever the damage shows.
pub const DAMAGED_REMEDY: &str = "run `easel history doctor --repair` to rebuild it from the image sidecars (the damaged copy is kept)";

fn damaged(what: &str, detail: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "the history database is damaged ({what}: {detail}): {DAMAGED_REMEDY}"
    ))
}

fn sled_error(what: &str, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            damaged(what, &io.to_string())
        }
        sled::Error::Io(io) => {
            let advice = match io.kind() {
                std::io::ErrorKind::StorageFull => " (the disk is full: free some space)",
                std::io::ErrorKind::PermissionDenied => " (check the data folder's permissions)",
                _ => "",
            };
            StoreError::Io(format!("could not {what}: {io}{advice}"))
        }
        sled::Error::Corruption { .. } => damaged(what, "sled found corruption"),
        sled::Error::Unsupported(detail) => damaged(what, &detail),
        sled::Error::ReportableBug(detail) => damaged(what, &detail),
        other => StoreError::Io(format!("could not {what}: {other}")),
    }
}

fn tx_error(what: &str, e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => sled_error(what, e),
    }
}

fn lock_mutex<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    lock(m)
}

/// Make the database folder and everything in it private (0700 folders, 0600 files).
fn make_tree_private(dir: &Path) -> std::io::Result<()> {
    super::files::make_private(dir, true)?;
    for e in std::fs::read_dir(dir)?.flatten() {
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            make_tree_private(&e.path())?;
        } else if kind.is_file() {
            super::files::make_private(&e.path(), false)?;
        }
    }
    Ok(())
}

/// What to do about an I/O error, if there is something to say.
fn advice(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::StorageFull => ": the disk is full: free some space",
        std::io::ErrorKind::ReadOnlyFilesystem => ": that file system is read-only too",
        std::io::ErrorKind::PermissionDenied => ": check the folder's permissions",
        _ => "",
    }
}

/// A warning when others can read the data folder (it holds prompts and errors).
fn privacy_warnings(data_dir: &Path) -> Vec<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(data_dir)
            && meta.permissions().mode() & 0o077 != 0
        {
            return vec![format!(
                "other users can open the data folder {} (mode {:o}); easel keeps its own files private, but run chmod 700 {} to close the folder",
                data_dir.display(),
                meta.permissions().mode() & 0o777,
                data_dir.display()
            )];
        }
    }
    #[cfg(not(unix))]
    let _ = data_dir;
    Vec::new()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves data that is still consistent (every
    // mutation is a single assignment), so recover the guard.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn summary_of(r: &GenerationRecord) -> Summary {
    Summary {
        id: r.id,
        created_ms: r.created.timestamp_millis(),
        status: r.status,
        starred: r.starred,
        rating: r.rating,
        tags: r.tags.clone(),
        model: r.model.clone(),
        prompt: r.prompt.clone(),
    }
}

/// The metadata key holding how many records there are (sled's own `len` walks the whole tree).
const COUNT_KEY: &str = "record_count";

fn decode_count(v: Option<sled::IVec>) -> u64 {
    v.and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes)
}

/// Change the record count inside a transaction.
fn bump_count(
    meta: &sled::transaction::TransactionalTree,
    delta: i64,
) -> Result<(), sled::transaction::UnabortableTransactionError> {
    let n = decode_count(meta.get(COUNT_KEY)?);
    let n = if delta < 0 {
        n.saturating_sub(delta.unsigned_abs())
    } else {
        n.saturating_add(delta as u64)
    };
    meta.insert(COUNT_KEY, &n.to_be_bytes())?;
    Ok(())
}

/// sled 0.34 writes a snapshot to `snap.N.generating` and renames it when it is complete, but
/// when it opens it takes the newest `snap.*` file, `.generating` ones included: a process killed
/// while writing one leaves a database that no longer opens ("Corruption { at: None }", sled issue
/// 1533). An unfinished snapshot is never needed (the previous one and the log are still there),
/// so remove it first. We hold the data folder's lock, so no other easel is writing one.
fn remove_unfinished_snapshots(sled_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(sled_dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn is_active(s: Status) -> bool {
    matches!(s, Status::Queued | Status::Running)
}

impl SledStore {
    /// Open (or create) the store in `data_dir`. Takes the data folder's lock first. Jobs found
    /// running are marked interrupted: the process that ran them is gone, since it held the lock.
    pub fn open(data_dir: &Path) -> Result<SledStore, StoreError> {
        let lock = Self::lock_data_dir(data_dir)?;
        Self::open_locked(data_dir, lock)
    }

    /// Open a data folder that cannot be written (a read-only mount, a full disk) for reading:
    /// sled 0.34 has no read-only mode and writes when it opens, so this opens a private copy of
    /// the database, in `$XDG_RUNTIME_DIR` or the temporary folder, and leaves the folder as it
    /// is. Writes go to the copy and are dropped with it.
    pub fn open_read_only(data_dir: &Path) -> Result<SledStore, StoreError> {
        let lock = DataDirLock::acquire_shared(data_dir).map_err(StoreError::Locked)?;
        let source = data_dir.join("history.sled");
        if !source.is_dir() {
            return Err(StoreError::Open(format!(
                "there is no history in {} to read",
                data_dir.display()
            )));
        }
        let scratch = ScratchDir::new().map_err(|e| {
            StoreError::Io(format!(
                "could not make a private copy of the history to read ({e}{})",
                advice(&e)
            ))
        })?;
        let copy = scratch.0.join("history.sled");
        copy_tree(&source, &copy).map_err(|e| {
            StoreError::Io(format!(
                "could not copy the history to {} to read it ({e}{})",
                scratch.0.display(),
                advice(&e)
            ))
        })?;
        let mut store = Self::open_at(data_dir, &copy, lock, Some(scratch))?;
        store.warnings.push(format!(
            "{} cannot be written: showing a read-only copy of the history (nothing is changed there)",
            data_dir.display()
        ));
        Ok(store)
    }

    fn lock_data_dir(data_dir: &Path) -> Result<DataDirLock, StoreError> {
        super::files::create_private_dir(data_dir).map_err(|e| {
            StoreError::Io(super::files::describe_io_error(
                "create the data folder",
                data_dir,
                &e,
            ))
        })?;
        DataDirLock::acquire(data_dir).map_err(|e| {
            // Held by another easel, or the lock file could not be made (a read-only folder).
            if e.starts_with(super::lock::HELD) {
                StoreError::Locked(e)
            } else {
                StoreError::Io(e)
            }
        })
    }

    fn open_locked(data_dir: &Path, lock: DataDirLock) -> Result<SledStore, StoreError> {
        Self::open_at(data_dir, &data_dir.join("history.sled"), Some(lock), None)
    }

    fn open_at(
        data_dir: &Path,
        path: &Path,
        lock: Option<DataDirLock>,
        copy: Option<ScratchDir>,
    ) -> Result<SledStore, StoreError> {
        let path = path.to_path_buf();
        remove_unfinished_snapshots(&path);
        let mut warnings = privacy_warnings(data_dir);
        let config = sled::Config::new()
            .path(&path)
            // Small cache: history pages are small, and resident memory matters more.
            .cache_capacity(16 * 1024 * 1024)
            .flush_every_ms(Some(1000));
        // sled's background threads let go of its own file lock a moment after the last handle
        // is dropped; we hold the data folder's lock, so a refusal here can only be that.
        let mut tries = 0;
        let db = loop {
            // sled panics on some kinds of damage instead of returning an error.
            let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()))
                .map_err(|_| {
                damaged(
                    &format!("open the history at {}", path.display()),
                    "sled stopped reading it",
                )
            })?;
            match opened {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock") && tries < 40 =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                Err(e) => {
                    return Err(sled_error(
                        &format!("open the history at {}", path.display()),
                        e,
                    ));
                }
            }
        };
        // sled creates its files with the default mode: keep them private, whatever existed.
        if let Err(e) = make_tree_private(&path) {
            warnings.push(super::files::describe_io_error("make private", &path, &e));
        }
        let tree = |name: &str| {
            db.open_tree(name)
                .map_err(|e| sled_error("open the history", e))
        };
        let store = SledStore {
            gens: tree("generations")?,
            summaries: tree("summaries")?,
            queue: tree("queue")?,
            meta: tree("meta")?,
            trash: tree("trash")?,
            db,
            files: ImageFiles::new(data_dir, None),
            index: Mutex::new(None),
            queue_lock: Mutex::new(()),
            skipped: Mutex::new(Vec::new()),
            orphaned: Mutex::new(Vec::new()),
            in_order: std::sync::atomic::AtomicBool::new(true),
            warnings,
            _lock: lock,
            _copy: copy,
        };
        store.check_schema()?;
        store.check_order()?;
        // Jobs left running belong to a process that is gone (it held the lock we now hold).
        // A read-only copy leaves them as they are.
        if store._copy.is_none()
            && let Ok(found) = store.recover_running()
        {
            *lock_mutex(&store.orphaned) = found;
        }
        Ok(store)
    }

    /// Move a damaged database aside (never deleting it) and make history again from the image
    /// sidecars. Returns the new store, how many records it recovered, and where the damaged
    /// database now is.
    pub fn rebuild(data_dir: &Path) -> Result<(SledStore, usize, Option<PathBuf>), StoreError> {
        let lock = Self::lock_data_dir(data_dir)?;
        let path = data_dir.join("history.sled");
        let moved = if path.exists() {
            let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
            let aside = data_dir.join(format!("history.sled.damaged-{stamp}"));
            std::fs::rename(&path, &aside).map_err(|e| {
                StoreError::Io(super::files::describe_io_error(
                    "move the damaged history aside:",
                    &path,
                    &e,
                ))
            })?;
            Some(aside)
        } else {
            None
        };
        let store = Self::open_locked(data_dir, lock)?;
        let scan = super::rebuild::scan(data_dir);
        store.put_batch(&scan.records)?;
        Ok((store, scan.records.len(), moved))
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        match self
            .meta
            .get("schema_version")
            .map_err(|e| sled_error("read the history", e))?
        {
            Some(v) => {
                let found = v
                    .as_ref()
                    .try_into()
                    .map(u32::from_be_bytes)
                    .unwrap_or(u32::MAX);
                if found > SCHEMA_VERSION {
                    return Err(StoreError::Open(format!(
                        "the history was written by a newer easel (schema {found}; this one reads {SCHEMA_VERSION}): upgrade easel"
                    )));
                }
            }
            None => {
                self.meta
                    .insert("schema_version", &SCHEMA_VERSION.to_be_bytes())
                    .map_err(|e| sled_error("write the history", e))?;
                self.flush()?;
            }
        }
        if !self
            .meta
            .contains_key(COUNT_KEY)
            .map_err(|e| sled_error("read the history", e))?
        {
            self.recount()?;
        }
        Ok(())
    }

    /// Whether id order is `created` order: stored, or worked out once from the summaries.
    fn check_order(&self) -> Result<(), StoreError> {
        let stored = self
            .meta
            .get(ORDER_KEY)
            .map_err(|e| sled_error("read the history", e))?;
        let in_order = match stored {
            Some(v) => v.first() == Some(&1),
            None => {
                let in_order = self.summaries_in_order()?;
                self.meta
                    .insert(ORDER_KEY, &[u8::from(in_order)])
                    .map_err(|e| sled_error("write the history", e))?;
                self.flush()?;
                in_order
            }
        };
        self.in_order
            .store(in_order, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn summaries_in_order(&self) -> Result<bool, StoreError> {
        let mut last = i64::MIN;
        for kv in self.summaries.iter() {
            let (k, v) = kv.map_err(|e| sled_error("read the history", e))?;
            let Some(s) = Id::from_key(&k).and_then(|id| Summary::decode(id, &v)) else {
                continue;
            };
            if s.created_ms < last {
                return Ok(false);
            }
            last = s.created_ms;
        }
        Ok(true)
    }

    /// Whether writing a record created at `created_ms` under `key` keeps id order `created`
    /// order: its neighbours by key must not be created after it (before) or before it (after).
    fn keeps_order(&self, key: &[u8], created_ms: i64) -> Result<bool, StoreError> {
        let read = |kv: Option<(sled::IVec, sled::IVec)>| {
            kv.and_then(|(k, v)| Id::from_key(&k).and_then(|id| Summary::decode(id, &v)))
                .map(|s| s.created_ms)
        };
        let before = read(
            self.summaries
                .get_lt(key)
                .map_err(|e| sled_error("read the history", e))?,
        );
        let after = read(
            self.summaries
                .get_gt(key)
                .map_err(|e| sled_error("read the history", e))?,
        );
        Ok(before.is_none_or(|b| b <= created_ms) && after.is_none_or(|a| a >= created_ms))
    }

    fn is_in_order(&self) -> bool {
        self.in_order.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Jobs found running belong to a process that is gone: mark them interrupted.
    fn recover_running(&self) -> Result<Vec<Id>, StoreError> {
        let mut found = Vec::new();
        for r in self.queue()? {
            if r.status == Status::Running {
                let mut r = r;
                r.status = Status::Interrupted;
                r.finished = Some(Utc::now());
                r.error = Some(RecordedError {
                    kind: "interrupted".into(),
                    message:
                        "easel stopped while this generation was running (its process is gone)"
                            .into(),
                    code: None,
                    status: None,
                    request_id: r.request_id.clone(),
                    hint: Some("retry it (r in the studio)".into()),
                });
                self.put(&r)?;
                found.push(r.id);
            }
        }
        Ok(found)
    }

    /// Count the records the slow way and store the figure (first open, and repairs).
    fn recount(&self) -> Result<u64, StoreError> {
        let n = self.gens.len() as u64;
        self.meta
            .insert(COUNT_KEY, &n.to_be_bytes())
            .map_err(|e| sled_error("write the history", e))?;
        self.flush()?;
        Ok(n)
    }

    pub fn files(&self) -> &ImageFiles {
        &self.files
    }

    pub fn data_dir(&self) -> &Path {
        self.files.data_dir()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db
            .flush()
            .map(|_| ())
            .map_err(|e| sled_error("save the history to disk", e))
    }

    fn decode_or_skip(&self, key: &[u8], bytes: &[u8]) -> Option<GenerationRecord> {
        match record::decode(bytes) {
            Ok(r) => Some(r),
            Err(error) => {
                let mut skipped = lock(&self.skipped);
                let key_hex = hex::encode(key);
                if !skipped.iter().any(|b| b.key == key_hex) {
                    skipped.push(BadRecord {
                        key: key_hex,
                        error,
                    });
                }
                None
            }
        }
    }

    fn read(&self, id: Id) -> Result<Option<GenerationRecord>, StoreError> {
        let key = id.key();
        Ok(self
            .gens
            .get(key)
            .map_err(|e| sled_error("read the history", e))?
            .and_then(|v| self.decode_or_skip(&key, &v)))
    }

    fn queue_positions(&self) -> Result<Vec<(i64, Id)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.queue.iter() {
            let (k, v) = kv.map_err(|e| sled_error("read the queue", e))?;
            let (Some(id), Ok(pos)) = (Id::from_key(&k), <[u8; 8]>::try_from(v.as_ref())) else {
                continue;
            };
            out.push((i64::from_be_bytes(pos), id));
        }
        out.sort();
        Ok(out)
    }

    /// Write a record, its summary and its queue entry in one transaction, then flush.
    fn write(
        &self,
        r: &GenerationRecord,
        queue_pos: Option<Option<i64>>,
    ) -> Result<(), StoreError> {
        let bytes = record::encode(r).map_err(StoreError::Invalid)?;
        let summary = summary_of(r);
        let key = r.id.key();
        let breaks_order = self.is_in_order() && !self.keeps_order(&key, summary.created_ms)?;
        (&self.gens, &self.summaries, &self.queue, &self.meta)
            .transaction(|(g, s, q, meta)| {
                if g.insert(&key, bytes.as_slice())?.is_none() {
                    bump_count(meta, 1)?;
                }
                if breaks_order {
                    meta.insert(ORDER_KEY, &[0u8])?;
                }
                s.insert(&key, summary.encode())?;
                match queue_pos {
                    Some(Some(pos)) => {
                        q.insert(&key, &pos.to_be_bytes())?;
                    }
                    Some(None) => {
                        q.remove(&key)?;
                    }
                    None => {}
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| tx_error("save the generation", e))?;
        if breaks_order {
            self.in_order
                .store(false, std::sync::atomic::Ordering::SeqCst);
        }
        self.flush()?;
        if let Some(index) = lock(&self.index).as_mut() {
            index.upsert(summary);
        }
        Ok(())
    }

    fn load_index(&self) -> Result<MutexGuard<'_, Option<Index>>, StoreError> {
        let mut guard = lock(&self.index);
        if guard.is_none() {
            let mut summaries = Vec::new();
            for kv in self.summaries.iter() {
                let (k, v) = kv.map_err(|e| sled_error("read the history", e))?;
                let Some(id) = Id::from_key(&k) else { continue };
                match Summary::decode(id, &v) {
                    Some(s) => summaries.push(s),
                    // A damaged summary: rebuild it from the record when that is readable.
                    None => {
                        if let Some(r) = self.read(id)? {
                            summaries.push(summary_of(&r));
                        }
                    }
                }
            }
            *guard = Some(Index::from_sorted(summaries));
        }
        Ok(guard)
    }

    /// Write many finished records at once with a single flush at the end (imports, benchmark
    /// data). Records must not be queued or running.
    pub fn put_batch(&self, records: &[GenerationRecord]) -> Result<(), StoreError> {
        let mut rows = Vec::with_capacity(records.len());
        for r in records {
            if is_active(r.status) {
                return Err(StoreError::Invalid(format!(
                    "{} is {}: put_batch takes finished records only",
                    r.id.short(),
                    r.status
                )));
            }
            rows.push((
                r.id.key(),
                record::encode(r).map_err(StoreError::Invalid)?,
                summary_of(r).encode(),
            ));
        }
        // Order holds if every new record agrees with its neighbours already stored, and the new
        // records agree among themselves.
        let mut breaks_order = false;
        if self.is_in_order() {
            let mut sorted: Vec<(Id, i64)> = records
                .iter()
                .map(|r| (r.id, r.created.timestamp_millis()))
                .collect();
            sorted.sort();
            breaks_order = sorted.windows(2).any(|w| w[0].1 > w[1].1);
            for (id, ms) in &sorted {
                if breaks_order {
                    break;
                }
                breaks_order = !self.keeps_order(&id.key(), *ms)?;
            }
        }
        (&self.gens, &self.summaries, &self.meta)
            .transaction(|(g, s, meta)| {
                if breaks_order {
                    meta.insert(ORDER_KEY, &[0u8])?;
                }
                let mut added = 0i64;
                for (key, record, summary) in &rows {
                    if g.insert(key, record.as_slice())?.is_none() {
                        added += 1;
                    }
                    s.insert(key, summary.as_slice())?;
                }
                bump_count(meta, added)?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| tx_error("save the history", e))?;
        if breaks_order {
            self.in_order
                .store(false, std::sync::atomic::Ordering::SeqCst);
        }
        self.flush()?;
        if let Some(index) = lock(&self.index).as_mut() {
            for r in records {
                index.upsert(summary_of(r));
            }
        }
        Ok(())
    }

    /// Whether the search index is loaded, without waiting while it loads: a page that can be
    /// read without it (the newest one) must not wait for the index to be built.
    fn index_ready(&self) -> bool {
        match self.index.try_lock() {
            Ok(guard) => guard.is_some(),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().is_some(),
            Err(std::sync::TryLockError::WouldBlock) => false,
        }
    }

    /// Load the search index now (the studio does this on a worker at start).
    pub fn warm_index(&self) -> Result<usize, StoreError> {
        Ok(self.load_index()?.as_ref().map_or(0, Index::len))
    }

    fn fetch(&self, ids: Vec<Id>) -> Result<Vec<GenerationRecord>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(r) = self.read(id)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    fn require(&self, id: Id) -> Result<GenerationRecord, StoreError> {
        self.read(id)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }
}

impl HistoryStore for SledStore {
    fn put(&self, r: &GenerationRecord) -> Result<(), StoreError> {
        let _q = lock(&self.queue_lock);
        let in_queue = self
            .queue
            .contains_key(r.id.key())
            .map_err(|e| sled_error("read the queue", e))?;
        let pos = match (is_active(r.status), in_queue) {
            (true, true) => None,
            (true, false) => Some(Some(
                self.queue_positions()?.last().map_or(0, |(p, _)| p + 1),
            )),
            (false, true) => Some(None),
            (false, false) => None,
        };
        self.write(r, pos)
    }

    fn enqueue(&self, r: &GenerationRecord, front: bool) -> Result<(), StoreError> {
        let _q = lock(&self.queue_lock);
        let positions = self.queue_positions()?;
        let pos = if front {
            positions.first().map_or(0, |(p, _)| p - 1)
        } else {
            positions.last().map_or(0, |(p, _)| p + 1)
        };
        self.write(r, Some(Some(pos)))
    }

    fn get(&self, id: Id) -> Result<Option<GenerationRecord>, StoreError> {
        self.read(id)
    }

    fn resolve(&self, text: &str) -> Result<Id, StoreError> {
        let text = text.trim();
        if let Some(id) = Id::parse(text)
            && self
                .gens
                .contains_key(id.key())
                .map_err(|e| sled_error("read the history", e))?
        {
            return Ok(id);
        }
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::NotFound(text.to_string()));
        }
        let guard = self.load_index()?;
        let matches = guard
            .as_ref()
            .map(|i| i.with_prefix(text))
            .unwrap_or_default();
        match matches.as_slice() {
            [] => Err(StoreError::NotFound(text.to_string())),
            [one] => Ok(*one),
            many => Err(StoreError::Ambiguous {
                prefix: text.to_string(),
                matches: many.to_vec(),
            }),
        }
    }

    fn page(&self, q: &Query, cursor: Option<Cursor>, limit: usize) -> Result<Page, StoreError> {
        // The newest page of everything needs no index: a reverse range scan.
        let index_loaded = self.index_ready();
        if q.is_everything()
            && !index_loaded
            && self.is_in_order()
            && !matches!(cursor, Some(Cursor::Offset(_)))
        {
            let end = match cursor {
                Some(Cursor::Before(id)) => id.key(),
                _ => [0xff; 16],
            };
            let mut records = Vec::with_capacity(limit.min(1024));
            let mut next = None;
            for kv in self.gens.range(..end).rev() {
                let (k, v) = kv.map_err(|e| sled_error("read the history", e))?;
                if records.len() == limit {
                    next = records
                        .last()
                        .map(|r: &GenerationRecord| Cursor::Before(r.id));
                    break;
                }
                if let Some(r) = self.decode_or_skip(&k, &v) {
                    records.push(r);
                }
            }
            return Ok(Page { records, next });
        }
        let (ids, next) = {
            let guard = self.load_index()?;
            guard
                .as_ref()
                .map(|i| i.search(q, cursor, limit))
                .unwrap_or_default()
        };
        Ok(Page {
            records: self.fetch(ids)?,
            next,
        })
    }

    fn count(&self, q: &Query) -> Result<usize, StoreError> {
        if q.is_everything() {
            return Ok(self.len());
        }
        Ok(self.load_index()?.as_ref().map_or(0, |i| i.count(q)))
    }

    fn set_starred(&self, id: Id, starred: bool) -> Result<GenerationRecord, StoreError> {
        // Read, change, write under the lock that put and delete hold, so that a record written
        // or deleted meanwhile is not overwritten with the old copy (or brought back).
        let _q = lock(&self.queue_lock);
        let mut r = self.require(id)?;
        r.starred = starred;
        self.write(&r, None)?;
        Ok(r)
    }

    fn set_tags(&self, id: Id, tags: Vec<String>) -> Result<GenerationRecord, StoreError> {
        let _q = lock(&self.queue_lock);
        let mut r = self.require(id)?;
        r.tags = tags;
        self.write(&r, None)?;
        Ok(r)
    }

    fn edit(&self, id: Id, edit: &super::UserEdit) -> Result<GenerationRecord, StoreError> {
        let _q = lock(&self.queue_lock);
        let mut r = self.require(id)?;
        edit.apply(&mut r).map_err(StoreError::Invalid)?;
        self.write(&r, None)?;
        Ok(r)
    }

    fn trash(&self, id: Id) -> Result<Option<GenerationRecord>, StoreError> {
        let _q = lock(&self.queue_lock);
        let Some(r) = self.read(id)? else {
            return Ok(None);
        };
        let entry = serde_json::to_vec(&TrashEntry {
            trashed: Utc::now(),
            record: r.clone(),
        })
        .map_err(|e| StoreError::Invalid(format!("cannot write the trash entry: {e}")))?;
        let key = id.key();
        (
            &self.gens,
            &self.summaries,
            &self.queue,
            &self.meta,
            &self.trash,
        )
            .transaction(|(g, s, q, meta, t)| {
                if g.remove(&key)?.is_some() {
                    bump_count(meta, -1)?;
                }
                s.remove(&key)?;
                q.remove(&key)?;
                t.insert(&key, entry.as_slice())?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| tx_error("move the generation to the trash", e))?;
        self.flush()?;
        if let Some(index) = lock(&self.index).as_mut() {
            index.remove(id);
        }
        Ok(Some(r))
    }

    fn restore(&self, id: Id) -> Result<GenerationRecord, StoreError> {
        let _q = lock(&self.queue_lock);
        let bytes = self
            .trash
            .get(id.key())
            .map_err(|e| sled_error("read the trash", e))?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let entry: TrashEntry = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Corrupt(format!("a trash entry does not decode: {e}")))?;
        let mut r = entry.record;
        // A job deleted while queued or running comes back as cancelled: it is not run again
        // behind the user's back (retry it to run it).
        if !r.status.is_final() {
            r.status = Status::Cancelled;
        }
        self.write(&r, None)?;
        self.trash
            .remove(id.key())
            .map_err(|e| sled_error("empty the trash entry", e))?;
        self.flush()?;
        Ok(r)
    }

    fn trashed(&self) -> Result<Vec<(chrono::DateTime<Utc>, GenerationRecord)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.trash.iter() {
            let (_, v) = kv.map_err(|e| sled_error("read the trash", e))?;
            if let Ok(e) = serde_json::from_slice::<TrashEntry>(&v) {
                out.push((e.trashed, e.record));
            }
        }
        out.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
        Ok(out)
    }

    fn empty_trash(&self, older_than: Option<chrono::Duration>) -> Result<usize, StoreError> {
        let now = Utc::now();
        let mut gone = 0;
        for (when, r) in self.trashed()? {
            if older_than.is_some_and(|age| now - when < age) {
                continue;
            }
            self.trash
                .remove(r.id.key())
                .map_err(|e| sled_error("empty the trash", e))?;
            // Files after the entry: a crash between leaves files doctor finds, never an entry
            // pointing at nothing. Only the record's own files, as for a delete.
            for out in &r.outputs {
                if let Ok(file) = super::files::deletable(self.data_dir(), &r.id, out) {
                    let _ = std::fs::remove_file(file.with_extension("json"));
                    let _ = std::fs::remove_file(&file);
                }
            }
            gone += 1;
        }
        self.flush()?;
        Ok(gone)
    }

    fn resolve_trashed(&self, text: &str) -> Result<Id, StoreError> {
        let text = text.trim().to_ascii_lowercase();
        let matches: Vec<Id> = self
            .trash
            .iter()
            .keys()
            .filter_map(|k| k.ok().and_then(|k| Id::from_key(&k)))
            .filter(|id| id.to_string().starts_with(&text) || id.short().starts_with(&text))
            .collect();
        match matches.as_slice() {
            [] => Err(StoreError::NotFound(text)),
            [one] => Ok(*one),
            many => Err(StoreError::Ambiguous {
                prefix: text,
                matches: many.to_vec(),
            }),
        }
    }

    fn delete(&self, id: Id) -> Result<Option<GenerationRecord>, StoreError> {
        let _q = lock(&self.queue_lock);
        let old = self.read(id)?;
        let key = id.key();
        (&self.gens, &self.summaries, &self.queue, &self.meta)
            .transaction(|(g, s, q, meta)| {
                if g.remove(&key)?.is_some() {
                    bump_count(meta, -1)?;
                }
                s.remove(&key)?;
                q.remove(&key)?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| tx_error("delete the generation", e))?;
        self.flush()?;
        if let Some(index) = lock(&self.index).as_mut() {
            index.remove(id);
        }
        // Files go after the record, so a crash in between leaves files without a record (found
        // by doctor), never a record pointing at missing files.
        // Only files inside the images folder that are named for this record are removed:
        // never the store's own files, another record's, or an `--out` image.
        if let Some(r) = &old {
            for out in &r.outputs {
                if let Ok(file) = super::files::deletable(self.data_dir(), &r.id, out) {
                    let _ = std::fs::remove_file(file.with_extension("json"));
                    let _ = std::fs::remove_file(&file);
                }
            }
        }
        Ok(old)
    }

    fn queue(&self) -> Result<Vec<GenerationRecord>, StoreError> {
        let ids = self
            .queue_positions()?
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        self.fetch(ids)
    }

    fn move_in_queue(&self, id: Id, how: QueueMove) -> Result<bool, StoreError> {
        let _q = lock(&self.queue_lock);
        let positions = self.queue_positions()?;
        let Some(at) = positions.iter().position(|(_, i)| *i == id) else {
            return Ok(false);
        };
        let swap_with = match how {
            QueueMove::Up if at > 0 => Some(at - 1),
            QueueMove::Down if at + 1 < positions.len() => Some(at + 1),
            QueueMove::Front if at > 0 => {
                let front = positions[0].0 - 1;
                self.queue
                    .insert(id.key(), &front.to_be_bytes())
                    .map_err(|e| sled_error("reorder the queue", e))?;
                self.flush()?;
                return Ok(true);
            }
            _ => None,
        };
        let Some(other) = swap_with else {
            return Ok(false);
        };
        let (pa, ida) = positions[at];
        let (pb, idb) = positions[other];
        self.queue
            .transaction(|q| {
                q.insert(&ida.key(), &pb.to_be_bytes())?;
                q.insert(&idb.key(), &pa.to_be_bytes())?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| tx_error("reorder the queue", e))?;
        self.flush()?;
        Ok(true)
    }

    fn recover(&self) -> Result<Recovery, StoreError> {
        // Those found running when the store was opened were marked then.
        let mut recovery = Recovery {
            interrupted: lock(&self.orphaned).clone(),
            ..Recovery::default()
        };
        for r in self.queue()? {
            match r.status {
                Status::Running => {
                    let mut r = r;
                    r.status = Status::Interrupted;
                    r.finished = Some(Utc::now());
                    r.error = Some(RecordedError {
                        kind: "interrupted".into(),
                        message: "easel stopped while this generation was running".into(),
                        code: None,
                        status: None,
                        request_id: r.request_id.clone(),
                        hint: Some("retry it (r in the studio)".into()),
                    });
                    self.put(&r)?;
                    recovery.interrupted.push(r.id);
                }
                Status::Queued => recovery.queued.push(r.id),
                // A finished job left in the queue tree (should not happen): drop the entry.
                _ => self.put(&r)?,
            }
        }
        Ok(recovery)
    }

    fn for_each(
        &self,
        f: &mut dyn FnMut(GenerationRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for kv in self.gens.iter() {
            let (k, v) = kv.map_err(|e| sled_error("read the history", e))?;
            if let Some(r) = self.decode_or_skip(&k, &v) {
                f(r)?;
            }
        }
        Ok(())
    }

    fn stats(&self) -> Result<Stats, StoreError> {
        let mut stats = Stats::default();
        self.for_each(&mut |r| {
            stats.total += 1;
            *stats
                .by_status
                .entry(r.status.as_str().to_string())
                .or_default() += 1;
            *stats.by_model.entry(r.model.clone()).or_default() += 1;
            stats.images += r.outputs.len();
            stats.image_bytes += r.outputs.iter().map(|o| o.bytes).sum::<u64>();
            stats.spend_usd += r.cost_usd.unwrap_or(0.0);
            stats.spend.add(&r);
            Ok(())
        })?;
        stats.database_bytes = self.db.size_on_disk().unwrap_or(0);
        stats.skipped = lock(&self.skipped).len();
        Ok(stats)
    }

    fn doctor(&self, repair: bool) -> Result<DoctorReport, StoreError> {
        let mut report = DoctorReport {
            orphaned: self.orphaned(),
            ..DoctorReport::default()
        };
        let mut to_mark: Vec<(Id, Vec<PathBuf>)> = Vec::new();
        let mut referenced: Vec<PathBuf> = Vec::new();
        let mut bad_keys = Vec::new();
        let mut actual = 0usize;
        for kv in self.gens.iter() {
            let (k, v) = kv.map_err(|e| sled_error("read the history", e))?;
            actual += 1;
            match record::decode(&v) {
                Ok(r) => {
                    let mut gone = Vec::new();
                    for out in &r.outputs {
                        let path = self.files.resolve(&out.path);
                        // Images a repair recorded as gone are not reported again.
                        if !path.is_file() && !r.missing.contains(&out.path) {
                            report.missing_files.push((r.id, out.path.clone()));
                            gone.push(out.path.clone());
                        }
                        referenced.push(path);
                    }
                    if !gone.is_empty() {
                        to_mark.push((r.id, gone));
                    }
                    let summary_ok = self
                        .summaries
                        .get(&k)
                        .map_err(|e| sled_error("read the history", e))?
                        .and_then(|s| Summary::decode(r.id, &s))
                        .is_some_and(|s| s == summary_of(&r));
                    if !summary_ok {
                        report.stale_summaries += 1;
                        if repair {
                            self.summaries
                                .insert(&k, summary_of(&r).encode())
                                .map_err(|e| sled_error("repair the index", e))?;
                        }
                    }
                }
                Err(error) => {
                    report.bad_records.push(BadRecord {
                        key: hex::encode(&k),
                        error,
                    });
                    bad_keys.push(k);
                }
            }
        }
        // Summaries and queue entries whose record is gone.
        for tree in [&self.summaries, &self.queue] {
            for kv in tree.iter() {
                let (k, _) = kv.map_err(|e| sled_error("read the history", e))?;
                if !self
                    .gens
                    .contains_key(&k)
                    .map_err(|e| sled_error("read the history", e))?
                {
                    report.orphan_entries += 1;
                    if repair {
                        tree.remove(&k)
                            .map_err(|e| sled_error("repair the index", e))?;
                    }
                }
            }
        }
        report.count_mismatch = actual != self.len();
        if repair {
            // Undecodable records are moved aside, not destroyed, so nothing is lost for good.
            let quarantine = self
                .db
                .open_tree("quarantine")
                .map_err(|e| sled_error("repair the history", e))?;
            for k in &bad_keys {
                if let Some(v) = self
                    .gens
                    .remove(k)
                    .map_err(|e| sled_error("repair the history", e))?
                {
                    quarantine
                        .insert(k, v)
                        .map_err(|e| sled_error("repair the history", e))?;
                }
                self.summaries
                    .remove(k)
                    .map_err(|e| sled_error("repair the history", e))?;
                self.queue
                    .remove(k)
                    .map_err(|e| sled_error("repair the history", e))?;
            }
            // Missing images are recorded as gone, so that the report ends.
            for (id, gone) in to_mark {
                let _q = lock(&self.queue_lock);
                let Some(mut r) = self.read(id)? else {
                    continue;
                };
                for p in gone {
                    if !r.missing.contains(&p) {
                        r.missing.push(p);
                        report.marked_missing += 1;
                    }
                }
                self.write(&r, None)?;
            }
            self.recount()?;
            // Recompute whether id order is created order.
            let in_order = self.summaries_in_order()?;
            self.meta
                .insert(ORDER_KEY, &[u8::from(in_order)])
                .map_err(|e| sled_error("repair the history", e))?;
            self.in_order
                .store(in_order, std::sync::atomic::Ordering::SeqCst);
            self.flush()?;
            *lock(&self.index) = None;
            lock(&self.skipped).clear();
            report.repaired = true;
        }
        // Records in the trash still own their files.
        for (_, r) in self.trashed()? {
            for out in &r.outputs {
                referenced.push(self.files.resolve(&out.path));
            }
        }
        // Image files on disk that no record mentions.
        let images = self.data_dir().join("images");
        referenced.sort();
        let mut stack = vec![images];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "tmp") {
                    if repair {
                        let _ = std::fs::remove_file(&p);
                    }
                    report.temporary_files.push(p);
                } else if p.extension().is_some_and(|x| x != "json")
                    && referenced.binary_search(&p).is_err()
                {
                    report.unreferenced_files.push(p);
                }
            }
        }
        // Images with no record whose sidecar names a generation history has lost: their
        // records can be made again.
        if !report.unreferenced_files.is_empty() {
            let scan = super::rebuild::scan_only(self.data_dir(), |id| {
                !self.gens.contains_key(id.key()).unwrap_or(true)
                    && !self.trash.contains_key(id.key()).unwrap_or(true)
            });
            report.recoverable = scan.records.len();
            if repair && !scan.records.is_empty() {
                self.put_batch(&scan.records)?;
                report.recovered = scan.records.len();
                let back: Vec<PathBuf> = scan
                    .records
                    .iter()
                    .flat_map(|r| r.outputs.iter().map(|o| self.files.resolve(&o.path)))
                    .collect();
                report.unreferenced_files.retain(|p| !back.contains(p));
            }
        }
        Ok(report)
    }

    fn window(
        &self,
        q: &Query,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<GenerationRecord>, usize), StoreError> {
        let index_loaded = self.index_ready();
        if q.is_everything() && offset == 0 && !index_loaded && self.is_in_order() {
            // The newest page needs no index (a reverse range scan) and the count is stored.
            let page = self.page(q, None, limit)?;
            return Ok((page.records, self.len()));
        }
        let (ids, total) = {
            let guard = self.load_index()?;
            guard
                .as_ref()
                .map(|i| i.window(q, offset, limit))
                .unwrap_or_default()
        };
        Ok((self.fetch(ids)?, total))
    }

    fn tags(&self) -> Result<Vec<(String, usize)>, StoreError> {
        Ok(self
            .load_index()?
            .as_ref()
            .map(|i| i.tags())
            .unwrap_or_default())
    }

    fn locate(&self, q: &Query, id: Id) -> Result<super::Located, StoreError> {
        let guard = self.load_index()?;
        Ok(guard
            .as_ref()
            .map_or(super::Located::Unknown, |i| i.locate(q, id)))
    }

    fn warm(&self) -> Result<(), StoreError> {
        self.warm_index().map(|_| ())
    }

    fn skipped(&self) -> Vec<BadRecord> {
        lock(&self.skipped).clone()
    }

    fn orphaned(&self) -> Vec<Id> {
        lock(&self.orphaned).clone()
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    fn len(&self) -> usize {
        self.meta.get(COUNT_KEY).map(decode_count).unwrap_or(0) as usize
    }
}

/// Counts by a key, for stats.
pub type Counts = BTreeMap<String, usize>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::GenerationParams;

    fn rec(prompt: &str, status: Status) -> GenerationRecord {
        let params = GenerationParams {
            prompt: prompt.into(),
            ..Default::default()
        };
        let mut r = GenerationRecord::queued(Id::new(), params, "demo", true, Utc::now());
        r.status = status;
        r
    }

    #[test]
    fn put_page_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<Id> = {
            let store = SledStore::open(dir.path()).unwrap();
            let rs: Vec<_> = (0..5)
                .map(|i| rec(&format!("prompt {i}"), Status::Succeeded))
                .collect();
            for r in &rs {
                store.put(r).unwrap();
            }
            let page = store.page(&Query::default(), None, 3).unwrap();
            assert_eq!(
                page.records.iter().map(|r| r.id).collect::<Vec<_>>(),
                vec![rs[4].id, rs[3].id, rs[2].id]
            );
            let page2 = store.page(&Query::default(), page.next, 3).unwrap();
            assert_eq!(page2.records.len(), 2);
            assert!(page2.next.is_none());
            rs.iter().map(|r| r.id).collect()
        };
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.len(), 5);
        assert_eq!(store.get(ids[2]).unwrap().unwrap().prompt, "prompt 2");
        assert_eq!(store.resolve(&ids[2].to_string()[..10]).unwrap(), ids[2]);
        let q = Query {
            text: Some("prompt 3".into()),
            ..Default::default()
        };
        assert_eq!(store.page(&q, None, 10).unwrap().records[0].id, ids[3]);
    }

    #[test]
    fn second_open_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = SledStore::open(dir.path()).unwrap();
        let Err(StoreError::Locked(msg)) = SledStore::open(dir.path()) else {
            panic!("second open allowed")
        };
        assert!(msg.contains("another easel is using"));
    }

    #[test]
    fn corrupt_record_is_skipped_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let good = rec("good", Status::Succeeded);
        store.put(&good).unwrap();
        let bad = Id::new();
        store.gens.insert(bad.key(), &b"{not json"[..]).unwrap();
        let page = store.page(&Query::default(), None, 10).unwrap();
        assert_eq!(page.records.len(), 1);
        assert_eq!(store.skipped().len(), 1);
        let report = store.doctor(false).unwrap();
        assert_eq!(report.bad_records.len(), 1);
        let report = store.doctor(true).unwrap();
        assert!(report.repaired);
        assert!(store.doctor(false).unwrap().bad_records.is_empty());
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn doctor_removes_unfinished_writes_on_repair() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let folder = dir.path().join("images").join("2026-11-28");
        std::fs::create_dir_all(&folder).unwrap();
        let tmp = folder.join(".120000000_x_1.png.77.tmp");
        std::fs::write(&tmp, b"half").unwrap();
        let orphan = folder.join("120000000_x_1.png");
        std::fs::write(&orphan, b"an image nobody recorded").unwrap();
        let report = store.doctor(false).unwrap();
        assert_eq!(report.temporary_files, vec![tmp.clone()]);
        assert_eq!(report.unreferenced_files, vec![orphan.clone()]);
        assert!(tmp.exists());
        store.doctor(true).unwrap();
        assert!(!tmp.exists());
        assert!(orphan.exists(), "images are never deleted by a repair");
    }

    #[test]
    fn a_snapshot_left_unfinished_by_a_kill_does_not_stop_the_store_opening() {
        let dir = tempfile::tempdir().unwrap();
        let r = rec("kept", Status::Succeeded);
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.put(&r).unwrap();
        }
        // What a kill in the middle of sled's snapshot writing leaves behind.
        let sled_dir = dir.path().join("history.sled");
        std::fs::write(sled_dir.join("snap.FFFFFFFFFFFFFFFF.generating"), b"").unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.get(r.id).unwrap().unwrap().prompt, "kept");
        assert!(!sled_dir.join("snap.FFFFFFFFFFFFFFFF.generating").exists());
    }

    #[test]
    fn queue_order_and_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            rec("a", Status::Queued),
            rec("b", Status::Queued),
            rec("c", Status::Queued),
        );
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.enqueue(&a, false).unwrap();
            store.enqueue(&b, false).unwrap();
            store.enqueue(&c, true).unwrap();
            let order = |s: &SledStore| {
                s.queue()
                    .unwrap()
                    .iter()
                    .map(|r| r.prompt.clone())
                    .collect::<Vec<_>>()
            };
            assert_eq!(order(&store), ["c", "a", "b"]);
            assert!(store.move_in_queue(b.id, QueueMove::Up).unwrap());
            assert_eq!(order(&store), ["c", "b", "a"]);
            assert!(store.move_in_queue(a.id, QueueMove::Front).unwrap());
            assert_eq!(order(&store), ["a", "c", "b"]);
            assert!(!store.move_in_queue(a.id, QueueMove::Up).unwrap());
            let mut running = a.clone();
            running.status = Status::Running;
            store.put(&running).unwrap();
            let mut done = c.clone();
            done.status = Status::Succeeded;
            store.put(&done).unwrap();
            assert_eq!(order(&store), ["a", "b"]);
        }
        let store = SledStore::open(dir.path()).unwrap();
        let rec = store.recover().unwrap();
        assert_eq!(rec.interrupted, vec![a.id]);
        assert_eq!(rec.queued, vec![b.id]);
        assert_eq!(
            store.get(a.id).unwrap().unwrap().status,
            Status::Interrupted
        );
        assert_eq!(store.queue().unwrap().len(), 1);
    }
}
