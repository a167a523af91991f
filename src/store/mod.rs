//! Where generations are kept: image files on disk, and the history store behind the
//! [`HistoryStore`] trait (sled underneath), so nothing else touches the database directly.

pub mod files;
pub mod id;
pub mod lock;
pub mod query;
pub mod rebuild;
pub mod record;
pub mod sled_store;
pub mod spend;
pub mod transfer;

pub use files::{ImageFiles, SavedImage};
pub use id::Id;
pub use query::{Cursor, Located, Query};
pub use record::{BatchRef, GenerationRecord, RecordedError, RunInfo, Status, UserEdit};
pub use sled_store::SledStore;
pub use spend::{Spend, SpendLine};

use std::collections::BTreeMap;
use std::path::PathBuf;

/// A store failure, said so that the user knows what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum StoreError {
    /// Another process holds the data folder.
    #[error("{0}")]
    Locked(String),
    #[error("{0}")]
    Open(String),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Corrupt(String),
    #[error("no generation has the id {0:?} (`easel history list` shows ids)")]
    NotFound(String),
    #[error("the id {prefix:?} is ambiguous: it starts {} ids; type more of it", matches.len())]
    Ambiguous { prefix: String, matches: Vec<Id> },
    #[error("{0}")]
    Invalid(String),
}

/// One page of history.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub records: Vec<GenerationRecord>,
    /// Where the next page starts, if there is one.
    pub next: Option<Cursor>,
}

/// A way to move a queued job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueMove {
    Up,
    Down,
    Front,
}

/// What start-up recovery found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recovery {
    /// Jobs that were running when easel died: now `interrupted`.
    pub interrupted: Vec<Id>,
    /// Jobs still waiting in the queue.
    pub queued: Vec<Id>,
}

/// A stored record that could not be decoded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BadRecord {
    /// The record's key, in hex.
    pub key: String,
    pub error: String,
}

/// Totals for `easel history stats`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub total: usize,
    pub by_status: BTreeMap<String, usize>,
    pub by_model: BTreeMap<String, usize>,
    pub images: usize,
    pub image_bytes: u64,
    pub database_bytes: u64,
    pub spend_usd: f64,
    pub skipped: usize,
    /// Spend by day, month and model (from usage, or estimated).
    #[serde(default)]
    pub spend: Spend,
}

/// What `easel history doctor` found (and, with repair, fixed).
#[derive(Debug, Clone, Default)]
pub struct DoctorReport {
    pub bad_records: Vec<BadRecord>,
    pub missing_files: Vec<(Id, PathBuf)>,
    pub unreferenced_files: Vec<PathBuf>,
    /// Temporary files of writes that never finished (removed by a repair).
    pub temporary_files: Vec<PathBuf>,
    pub stale_summaries: usize,
    pub orphan_entries: usize,
    /// The stored record count disagrees with the records there are.
    pub count_mismatch: bool,
    pub repaired: bool,
    /// Jobs found running when the store was opened, whose process is gone: now interrupted.
    pub orphaned: Vec<Id>,
    /// Missing images a repair recorded as gone (doctor reports them no more).
    pub marked_missing: usize,
    /// Records made again from the sidecars of images that had no record (repair).
    pub recovered: usize,
    /// Images with no record whose sidecar can make one again (what a repair would recover).
    pub recoverable: usize,
}

impl DoctorReport {
    pub fn is_clean(&self) -> bool {
        self.bad_records.is_empty()
            && self.missing_files.is_empty()
            && self.stale_summaries == 0
            && self.orphan_entries == 0
            && !self.count_mismatch
            && self.recoverable == self.recovered
    }
}

/// The history: every generation ever made, and the queue of jobs waiting or running. Every
/// write is on disk when the call returns.
pub trait HistoryStore: Send + Sync {
    /// Insert or replace a record. Queued and running records are kept in the queue (appended
    /// if new to it); others are taken out of it.
    fn put(&self, record: &GenerationRecord) -> Result<(), StoreError>;
    /// Insert a queued record at the back (or the front) of the queue.
    fn enqueue(&self, record: &GenerationRecord, front: bool) -> Result<(), StoreError>;
    fn get(&self, id: Id) -> Result<Option<GenerationRecord>, StoreError>;
    /// A full id, or any unique prefix of one.
    fn resolve(&self, text: &str) -> Result<Id, StoreError>;
    fn page(&self, query: &Query, cursor: Option<Cursor>, limit: usize)
    -> Result<Page, StoreError>;
    fn count(&self, query: &Query) -> Result<usize, StoreError>;
    /// The records at positions `offset..offset + limit` of a query's results, and how many
    /// results there are in all (what a scrolling list needs).
    fn window(
        &self,
        query: &Query,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<GenerationRecord>, usize), StoreError> {
        let cursor = (offset > 0).then_some(Cursor::Offset(offset));
        let page = self.page(query, cursor, limit)?;
        Ok((page.records, self.count(query)?))
    }
    /// Every tag in use, with how many records carry it.
    fn tags(&self) -> Result<Vec<(String, usize)>, StoreError> {
        Ok(Vec::new())
    }
    /// Where record `id` stands in the results of `query` (for a list that keeps its
    /// selection on a record while records come and go).
    fn locate(&self, _query: &Query, _id: Id) -> Result<Located, StoreError> {
        Ok(Located::Unknown)
    }
    fn set_starred(&self, id: Id, starred: bool) -> Result<GenerationRecord, StoreError>;
    fn set_tags(&self, id: Id, tags: Vec<String>) -> Result<GenerationRecord, StoreError>;
    /// Change what the user owns in a record (star, tags, rating, notes), read and written as
    /// one step.
    fn edit(&self, id: Id, edit: &UserEdit) -> Result<GenerationRecord, StoreError> {
        let mut r = self
            .get(id)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        edit.apply(&mut r).map_err(StoreError::Invalid)?;
        self.put(&r)?;
        Ok(r)
    }
    /// Move a record to the trash: gone from history, its files kept, until the trash is
    /// emptied. (A store without a trash deletes.)
    fn trash(&self, id: Id) -> Result<Option<GenerationRecord>, StoreError> {
        self.delete(id)
    }
    /// Move a record to the trash; a running job's record only with `cancel_running` (its job
    /// is cancelled). A store without jobs of its own just trashes it.
    fn trash_job(
        &self,
        id: Id,
        _cancel_running: bool,
    ) -> Result<Option<GenerationRecord>, StoreError> {
        self.trash(id)
    }
    /// Bring a record back from the trash (a job that was queued or running comes back
    /// cancelled).
    fn restore(&self, id: Id) -> Result<GenerationRecord, StoreError> {
        Err(StoreError::NotFound(id.to_string()))
    }
    /// What is in the trash, newest first, with when it was put there.
    fn trashed(
        &self,
    ) -> Result<Vec<(chrono::DateTime<chrono::Utc>, GenerationRecord)>, StoreError> {
        Ok(Vec::new())
    }
    /// Delete for good what has been in the trash longer than `older_than` (everything with
    /// `None`); returns how many records went.
    fn empty_trash(&self, _older_than: Option<chrono::Duration>) -> Result<usize, StoreError> {
        Ok(0)
    }
    /// A full id, or a unique prefix, of a record in the trash.
    fn resolve_trashed(&self, text: &str) -> Result<Id, StoreError> {
        Err(StoreError::NotFound(text.to_string()))
    }
    /// Remove a record and its image files for good.
    fn delete(&self, id: Id) -> Result<Option<GenerationRecord>, StoreError>;
    /// Queued and running jobs, in queue order.
    fn queue(&self) -> Result<Vec<GenerationRecord>, StoreError>;
    fn move_in_queue(&self, id: Id, how: QueueMove) -> Result<bool, StoreError>;
    /// On start: jobs found running become interrupted; queued ones stay.
    fn recover(&self) -> Result<Recovery, StoreError>;
    /// Every readable record, oldest first.
    fn for_each(
        &self,
        f: &mut dyn FnMut(GenerationRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    fn stats(&self) -> Result<Stats, StoreError>;
    fn doctor(&self, repair: bool) -> Result<DoctorReport, StoreError>;
    /// Records that could not be decoded so far (reported, skipped).
    fn skipped(&self) -> Vec<BadRecord>;
    /// Jobs that were found running when the store was opened: the process that ran them is
    /// gone (it held the data folder's lock), so they are now interrupted.
    fn orphaned(&self) -> Vec<Id> {
        Vec::new()
    }
    /// Things about the data folder the user should know (for instance, that others can read
    /// it).
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// Remove the records whose every image is recorded as gone (after a doctor repair).
    /// Returns their ids.
    fn prune_missing(&self) -> Result<Vec<Id>, StoreError> {
        let mut gone = Vec::new();
        self.for_each(&mut |r| {
            if !r.outputs.is_empty() && r.outputs.iter().all(|o| r.missing.contains(&o.path)) {
                gone.push(r.id);
            }
            Ok(())
        })?;
        for id in &gone {
            self.delete(*id)?;
        }
        Ok(gone)
    }
    /// Get ready for searching (load indexes); called on a worker at start.
    fn warm(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
