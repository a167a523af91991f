//! The request queue: jobs and their lifecycle, and the scheduler that runs them on async
//! workers. No UI dependency: the studio and `easel generate` both drive it through a
//! [`SchedulerHandle`] and read [`JobEvent`]s from a channel.
//!
//! Lifecycle: queued → running → succeeded | failed | cancelled, and interrupted for a job that
//! was running when the process died or was stopped. Every transition is stored (and flushed)
//! before it is announced.

pub mod scheduler;

pub use scheduler::{ProviderSlot, Scheduler, SchedulerConfig, SchedulerHandle};

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
    Succeeded(Box<GenerationRecord>),
    Failed(Box<GenerationRecord>),
    Cancelled(Box<GenerationRecord>),
    /// The queue's order changed.
    Reordered(Vec<Id>),
    Paused(bool),
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
    Move(Id, QueueMove),
    Pause,
    Resume,
    /// Stop: running jobs become interrupted, queued ones stay queued for next time.
    Shutdown(tokio::sync::oneshot::Sender<()>),
}
