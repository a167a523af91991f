//! History reads (and the few writes that are not a job's) as messages: a client's
//! [`crate::store::HistoryStore`] call travels as a [`StoreCall`], the service answers it from
//! its one open store. Changes to records that jobs also write (star, tags, rating, notes,
//! delete, restore) are not here: they are requests of their own, applied by the scheduler.

use crate::store::{
    BadRecord, Cursor, GenerationRecord, HistoryStore, Id, Located, Query, Stats, StoreError,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum StoreCall {
    Get {
        id: Id,
    },
    Resolve {
        text: String,
    },
    Page {
        query: Query,
        #[serde(default)]
        cursor: Option<Cursor>,
        limit: u32,
    },
    Count {
        query: Query,
    },
    Window {
        query: Query,
        offset: u64,
        limit: u32,
    },
    Tags,
    Locate {
        query: Query,
        id: Id,
    },
    Trashed,
    ResolveTrashed {
        text: String,
    },
    /// Delete trash entries older than this many seconds (all of them without).
    EmptyTrash {
        #[serde(default)]
        older_than_secs: Option<i64>,
    },
    /// The queue as stored (queued and running jobs).
    Queue,
    Stats,
    Skipped,
    Orphaned,
    Warnings,
    PruneMissing,
    Warm,
    Len,
    /// Store an imported record (never one of a live job: the service refuses those).
    Put {
        record: Box<GenerationRecord>,
    },
    /// Delete a record for good (its files are the caller's to remove).
    Purge {
        id: Id,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", content = "value", rename_all = "snake_case")]
pub enum StoreAnswer {
    Record(Option<Box<GenerationRecord>>),
    Id(Id),
    Page {
        records: Vec<GenerationRecord>,
        next: Option<Cursor>,
    },
    Count(u64),
    Window {
        records: Vec<GenerationRecord>,
        total: u64,
    },
    Tags(Vec<(String, u64)>),
    Located(Located),
    Trashed(Vec<(chrono::DateTime<chrono::Utc>, GenerationRecord)>),
    Records(Vec<GenerationRecord>),
    Stats(Box<Stats>),
    Skipped(Vec<BadRecord>),
    Ids(Vec<Id>),
    Texts(Vec<String>),
    Done,
}

/// The most records one page or window may ask for: a history page stays far below the
/// service's frame cap.
pub const MAX_RECORDS: u32 = 500;

fn n(x: usize) -> u64 {
    u64::try_from(x).unwrap_or(u64::MAX)
}

/// Answer `call` from `store` (the service's side). `live` says whether an id is a job the
/// scheduler holds (queued or running): imports may not overwrite those.
pub fn answer(
    store: &dyn HistoryStore,
    call: StoreCall,
    live: &dyn Fn(Id) -> bool,
) -> Result<StoreAnswer, StoreError> {
    use StoreAnswer as A;
    let capped = |limit: u32| usize::try_from(limit.min(MAX_RECORDS)).unwrap_or(1);
    Ok(match call {
        StoreCall::Get { id } => A::Record(store.get(id)?.map(Box::new)),
        StoreCall::Resolve { text } => A::Id(store.resolve(&text)?),
        StoreCall::Page {
            query,
            cursor,
            limit,
        } => {
            let page = store.page(&query, cursor, capped(limit))?;
            A::Page {
                records: page.records,
                next: page.next,
            }
        }
        StoreCall::Count { query } => A::Count(n(store.count(&query)?)),
        StoreCall::Window {
            query,
            offset,
            limit,
        } => {
            let offset = usize::try_from(offset).unwrap_or(usize::MAX);
            let (records, total) = store.window(&query, offset, capped(limit))?;
            A::Window {
                records,
                total: n(total),
            }
        }
        StoreCall::Tags => A::Tags(store.tags()?.into_iter().map(|(t, c)| (t, n(c))).collect()),
        StoreCall::Locate { query, id } => A::Located(store.locate(&query, id)?),
        StoreCall::Trashed => A::Trashed(store.trashed()?),
        StoreCall::ResolveTrashed { text } => A::Id(store.resolve_trashed(&text)?),
        StoreCall::EmptyTrash { older_than_secs } => A::Count(n(
            store.empty_trash(older_than_secs.map(chrono::Duration::seconds))?
        )),
        StoreCall::Queue => A::Records(store.queue()?),
        StoreCall::Stats => A::Stats(Box::new(store.stats()?)),
        StoreCall::Skipped => A::Skipped(store.skipped()),
        StoreCall::Orphaned => A::Ids(store.orphaned()),
        StoreCall::Warnings => A::Texts(store.warnings()),
        StoreCall::PruneMissing => A::Ids(store.prune_missing()?),
        StoreCall::Warm => {
            store.warm()?;
            A::Done
        }
        StoreCall::Len => A::Count(n(store.len())),
        StoreCall::Put { record } => {
            if live(record.id) {
                return Err(StoreError::Invalid(format!(
                    "{} is a job the service is running or has queued; it cannot be replaced by an import",
                    record.id.short()
                )));
            }
            store.put(&record)?;
            A::Done
        }
        StoreCall::Purge { id } => {
            if live(id) {
                return Err(StoreError::Invalid(format!(
                    "{} is a queued or running job; cancel it first",
                    id.short()
                )));
            }
            store.delete(id)?;
            A::Done
        }
    })
}
