//! The request queue: jobs and their lifecycle, and the scheduler that runs them on async
//! workers. No UI dependency: the studio and `easel generate` both drive it through a
//! [`SchedulerHandle`] and read [`JobEvent`]s from a channel.
//!
//! Lifecycle: queued → running → succeeded | failed | cancelled, and interrupted for a job that
//! was running when the process died or was stopped. Every transition is stored (and flushed)
//! before it is announced.

pub mod pace;
pub mod scheduler;
pub mod send;

pub use scheduler::{
    BATCH_POLL, BatchInfo, NewBatch, ProviderSlot, Scheduler, SchedulerConfig, SchedulerHandle,
};

use crate::api::GenerationParams;
use crate::store::{GenerationRecord, Id, QueueMove};
use bytes::Bytes;
use std::time::Duration;

/// What the scheduler reports, in the order things happen.
#[derive(Debug, Clone)]
pub enum JobEvent {
    Queued(Box<GenerationRecord>),
    Started(Box<GenerationRecord>),
    /// A partial image of a running job (raw encoded bytes).
    Partial {
        id: Id,
        index: u32,
        bytes: Bytes,
    },
    Retrying {
        id: Id,
        retry: u32,
        wait: Duration,
        reason: String,
    },
    /// A provider answered 429: its jobs wait `wait` (those that were refused are back in the
    /// queue, at its front) and it runs fewer at once for a while.
    RateLimited {
        provider: String,
        wait: Duration,
    },
    Succeeded(Box<GenerationRecord>),
    Failed(Box<GenerationRecord>),
    Cancelled(Box<GenerationRecord>),
    /// A record changed outside its job's lifecycle (starred, tagged).
    Updated(Box<GenerationRecord>),
    /// A record was deleted, to the trash (a queued or running job with it).
    Deleted(Id),
    /// A record came back from the trash.
    Restored(Box<GenerationRecord>),
    /// A queued job waits for its provider's key: a client with that key must connect.
    NeedsCredential {
        id: Id,
        provider: String,
    },
    /// What the engine holds may differ from what was heard (a service restarted, a client
    /// missed events): reload the queue and the history.
    Resync,
    /// The queue's order changed: the waiting jobs, in the order they will run.
    Reordered(Vec<Id>),
    Paused(bool),
    /// The queued jobs of a run are held (true) or released.
    RunPaused(Id, bool),
    /// A Batch API batch was polled and its state changed (`validating`, `in_progress`,
    /// `finalizing`…): its queued jobs wait for it.
    BatchState {
        batch: String,
        state: String,
    },
    /// Something the scheduler could not do (a store write failed, an unknown id…).
    Problem(String),
}

impl JobEvent {
    /// The record of an event that ends a job.
    pub fn finished(&self) -> Option<&GenerationRecord> {
        match self {
            JobEvent::Succeeded(r) | JobEvent::Failed(r) | JobEvent::Cancelled(r) => Some(r),
            _ => None,
        }
    }
}

/// The scheduler's jobs at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounts {
    pub running: usize,
    pub queued: usize,
    /// Of the queued ones, those whose provider has no key here.
    pub waiting: usize,
}

/// A new job.
#[derive(Debug, Clone)]
pub struct Submission {
    pub params: GenerationParams,
    /// Which provider runs it (a name the scheduler was given).
    pub provider: String,
    /// Put it at the front of the queue.
    pub front: bool,
    /// The record this one re-runs or varies.
    pub parent: Option<Id>,
    /// Its place in a run, and the values it used.
    pub run: Option<crate::store::RunInfo>,
}

/// Orders for the scheduler.
// Orders are moved one at a time through a channel: a large variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Command {
    Submit(Submission, tokio::sync::oneshot::Sender<Result<Id, String>>),
    /// A job for a caller that waits for it (`easel generate`), marked as such.
    SubmitHeadless(Submission, tokio::sync::oneshot::Sender<Result<Id, String>>),
    Cancel(Id),
    Retry(Id),
    /// Star or unstar a record. The scheduler is the only writer of records while it runs, so
    /// a star on a running job is not lost when the job's worker records how it ended.
    Star(
        Id,
        bool,
        tokio::sync::oneshot::Sender<Result<GenerationRecord, String>>,
    ),
    /// Replace a record's tags (same single-writer rule as `Star`).
    SetTags(
        Id,
        Vec<String>,
        tokio::sync::oneshot::Sender<Result<GenerationRecord, String>>,
    ),
    /// Change what the user owns in a record (rating, notes, tags added or removed).
    Edit(
        Id,
        crate::store::UserEdit,
        tokio::sync::oneshot::Sender<Result<GenerationRecord, String>>,
    ),
    /// Bring a record back from the trash.
    Restore(
        Id,
        tokio::sync::oneshot::Sender<Result<GenerationRecord, String>>,
    ),
    /// Delete a record to the trash (its files stay until the trash is emptied). A queued job
    /// is taken out of the queue first; a running one is cancelled, and whatever its worker
    /// reports afterwards is dropped (nothing comes back by itself).
    Delete(
        Id,
        tokio::sync::oneshot::Sender<Result<Option<GenerationRecord>, String>>,
    ),
    Move(Id, QueueMove),
    /// Queue a job that runs with its own provider (a service's client's key) and, with a
    /// folder, saves its images there instead of the data folder.
    SubmitWith {
        submission: Submission,
        slot: ProviderSlot,
        out_dir: Option<std::path::PathBuf>,
        reply: tokio::sync::oneshot::Sender<Result<Id, String>>,
    },
    /// A provider for the queued jobs of that name that wait for one (a client's key): each
    /// holds it until it starts, and it is kept nowhere else.
    Provide(String, ProviderSlot),
    /// Retry a job with its own provider (the retrying client's key).
    RetryWith(Id, ProviderSlot),
    /// How many jobs run, wait in the queue, and wait for a key.
    Counts(tokio::sync::oneshot::Sender<JobCounts>),
    /// Whether the id is a job the scheduler holds: `Some(true)` running, `Some(false)`
    /// queued, `None` neither.
    IsLive(Id, tokio::sync::oneshot::Sender<Option<bool>>),
    Pause,
    Resume,
    /// Hold (true) or release the queued jobs of a run (by run id): held jobs do not start,
    /// the others go on.
    PauseRun(Id, bool),
    /// Say again which runs are held, and whether the queue is (`RunPaused`, `Paused`): for a
    /// studio that starts while they are (its service outlived the studio that held them).
    AnnouncePaused,
    /// Hold (true) or release a run while its jobs are being queued, saying nothing (a pause
    /// the user asked for is `PauseRun`): none of them starts before all are in, so a run
    /// refused part way sends nothing. In-process only: through the service it does nothing.
    HoldRun(Id, bool),
    /// Record the jobs of a Batch API batch just created: queued with their batch, polled (not
    /// run) until it ends; the ids in the reply are those given.
    SubmitBatch(
        NewBatch,
        tokio::sync::oneshot::Sender<Result<Vec<Id>, String>>,
    ),
    /// Poll every open batch now; the reply comes when those polls are applied.
    PollBatches(tokio::sync::oneshot::Sender<()>),
    /// The open batches.
    Batches(tokio::sync::oneshot::Sender<Vec<BatchInfo>>),
    /// Ask the server to cancel an open batch (its jobs end when it does).
    CancelBatch(
        String,
        tokio::sync::oneshot::Sender<Result<BatchInfo, String>>,
    ),
    /// Stop: running jobs become interrupted, queued ones stay queued for next time.
    Shutdown(tokio::sync::oneshot::Sender<()>),
}
