//! The messages between the easel service and its clients, as JSON in length-delimited frames.
//!
//! # Versioning rule
//!
//! - [`PROTOCOL_VERSION`] is one integer. Any change a peer of the other version could misread
//!   (a renamed or removed field or variant, a changed meaning) bumps it. Adding an optional
//!   field (`#[serde(default)]`) does not, since older peers ignore unknown fields.
//! - The first frame each way is frozen forever: a JSON object whose `type` is `"hello"` (client)
//!   or `"welcome"` / `"refused"` (service) and whose top-level `protocol` is an integer. Both
//!   sides read that frame loosely (only `type` and `protocol`), so a peer of any version,
//!   past or future, gets a clear "version mismatch" instead of a parse error.
//! - There is no negotiation: versions are equal, or the connection is refused with both
//!   numbers. Client and service are one binary, so a mismatch means an old service still runs
//!   after an upgrade; the fix is to stop it (the planned service replaces an idle old one).

use super::spec::ProviderSpec;
pub use super::store_call::{StoreAnswer, StoreCall};
use crate::api::GenerationParams;
use crate::secret::ApiKey;
use crate::store::{GenerationRecord, Id, QueueMove, StoreError, UserEdit};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::path::PathBuf;

/// The protocol version this build speaks.
/// 3: the Batch API requests (`SubmitBatch`, `Batches`, `CancelBatch`).
/// 4: a run's jobs held or released (`PauseRun`, `RunPaused`); a batch's state (`BatchState`).
/// 5: a run held silently while its jobs are queued (`HoldRun`).
pub const PROTOCOL_VERSION: u32 = 5;

/// The largest frame the service reads from a client. Requests are small (a prompt is at most
/// 32,000 characters; reference images travel as paths, not bytes).
pub const MAX_REQUEST_FRAME: usize = 1024 * 1024;

/// The largest frame a client reads from the service: replies carry history pages and events
/// carry partial images (base64).
pub const MAX_SERVICE_FRAME: usize = 16 * 1024 * 1024;

/// The most records one history page may ask for.
pub const MAX_PAGE: u32 = 500;

/// What the client says first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    /// Who is asking, for `easel service status` ("easel 0.1.0 studio").
    #[serde(default)]
    pub client: String,
}

/// What the service answers to a good hello.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol: u32,
    /// The service's easel version.
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub pid: u32,
}

/// Frames from a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Hello(Hello),
    Request { id: u64, request: Request },
}

/// Frames from the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome(Welcome),
    /// The handshake was refused (another protocol version, another uid); the connection closes.
    Refused {
        protocol: u32,
        error: WireError,
    },
    /// The answer to request `id`. Answers come in the order requests were sent.
    Reply {
        id: u64,
        reply: Reply,
    },
    /// Something happened that a subscribed client should know.
    Event {
        event: Event,
    },
    /// The connection is broken (a malformed or oversized frame) and closes after this.
    Error {
        error: WireError,
    },
}

/// Orders and questions for the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// pid, socket, uptime, clients, jobs.
    Status,
    /// Queue a generation. Jobs are queued in the order the service receives them.
    Submit(Box<SubmitJob>),
    /// A client's provider (with its key) for jobs that wait for one ("needs OPENAI_API_KEY"):
    /// queued jobs of that provider start with it. Held in memory only.
    Provide {
        provider: Box<ProviderSpec>,
    },
    Cancel {
        job: Id,
    },
    /// Queue a failed, cancelled or interrupted job again, with the retrying client's
    /// provider (and key).
    Retry {
        job: Id,
        #[serde(default)]
        provider: Option<Box<ProviderSpec>>,
    },
    Move {
        job: Id,
        how: QueueMove,
    },
    Pause {
        paused: bool,
    },
    /// Hold or release the queued jobs of a run.
    PauseRun {
        run: Id,
        paused: bool,
    },
    /// Hold a run's jobs while they are being queued (none starts before the last is taken,
    /// so a run refused part way sends nothing), or let them go; no event says so.
    HoldRun {
        run: Id,
        held: bool,
    },
    Star {
        record: Id,
        starred: bool,
    },
    SetTags {
        record: Id,
        tags: Vec<String>,
    },
    /// Change what the user owns in a record (star, tags, rating, notes).
    Edit {
        record: Id,
        edit: UserEdit,
    },
    /// Delete a record to the trash. A queued job is cancelled first; a running one is only
    /// cancelled when `cancel_running` is set, otherwise the service answers
    /// [`Reply::ConfirmCancelRunning`].
    Delete {
        record: Id,
        #[serde(default)]
        cancel_running: bool,
    },
    /// Bring a record back from the trash.
    Restore {
        record: Id,
    },
    /// Record the jobs of a Batch API batch the client created (`easel generate --batch`): the
    /// service keeps the provider (and key) to poll it until it ends.
    SubmitBatch(Box<SubmitBatch>),
    /// The open batches (polled first with `poll`; the answer comes when the polls are
    /// applied).
    Batches {
        #[serde(default)]
        poll: bool,
    },
    /// Ask the server to cancel an open batch.
    CancelBatch {
        batch: String,
    },
    /// A read of the history (or a write that is not a job's: an import, emptying the trash).
    Store {
        call: StoreCall,
    },
    /// Stop the service. With jobs running and no `force`, the answer is [`Reply::Busy`].
    Stop {
        #[serde(default)]
        force: bool,
    },
    /// Start receiving [`Event`]s on this connection.
    Subscribe,
    Unsubscribe,
}

/// A generation to queue, with the provider (and key) it runs with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmitJob {
    pub params: GenerationParams,
    /// Which provider runs it, with the submitting client's key for it. Held by the service in
    /// memory only while the job needs it; never written.
    pub provider: ProviderSpec,
    /// Put it at the front of the queue.
    #[serde(default)]
    pub front: bool,
    /// The record this one re-runs or varies.
    #[serde(default)]
    pub parent: Option<Id>,
    /// Where its images go instead of the data folder (`easel generate --out`).
    #[serde(default)]
    pub out_dir: Option<PathBuf>,
    /// Its place in a run, and the values it used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<crate::store::RunInfo>,
}

/// The jobs of a batch, with the ids used as its lines' `custom_id`s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmitBatch {
    pub batch_id: String,
    /// Each job's id (its line's `custom_id`), request, and place in its run.
    pub jobs: Vec<(Id, GenerationParams, Option<crate::store::RunInfo>)>,
    pub provider: ProviderSpec,
}

/// An API key in transit over the private socket. It serialises the key (that is its one
/// purpose) but its `Debug` is redacted, like [`ApiKey`]'s.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential(pub ApiKey);

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

impl Serialize for Credential {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.expose())
    }
}

impl<'de> Deserialize<'de> for Credential {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ApiKey::new(s)
            .map(Credential)
            .ok_or_else(|| serde::de::Error::custom("empty credential"))
    }
}

/// Answers to requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    Status(ServiceStatus),
    Submitted {
        job: Id,
    },
    Cancelled {
        job: Id,
    },
    /// Done (an order with nothing to report: provide, retry, move, pause).
    Done,
    /// A record after a change (star, tags, rating, notes, restore).
    Record {
        record: Box<GenerationRecord>,
    },
    Deleted {
        record: Id,
        /// The record as it was.
        #[serde(default)]
        old: Option<Box<GenerationRecord>>,
    },
    /// The record's job is running: ask the user, then send `Delete` with `cancel_running`.
    ConfirmCancelRunning {
        record: Id,
    },
    /// The answer to a [`Request::Store`] call.
    Store {
        result: Result<StoreAnswer, StoreError>,
    },
    /// The jobs of a batch are recorded.
    BatchSubmitted {
        jobs: Vec<Id>,
    },
    /// The open batches (or the one cancelled).
    Batches {
        batches: Vec<crate::queue::BatchInfo>,
    },
    /// The service stops now.
    Stopping,
    /// Jobs are running; `Stop` with `force` interrupts them.
    Busy {
        running: u32,
        queued: u32,
    },
    Subscribed,
    Unsubscribed,
    /// The request failed; the connection stays usable.
    Failed {
        error: WireError,
    },
}

/// What `easel service status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub pid: u32,
    pub protocol: u32,
    pub socket: String,
    pub uptime_secs: u64,
    pub clients: u32,
    pub jobs_running: u32,
    pub jobs_queued: u32,
    /// Queued jobs that wait for a client with their provider's key.
    #[serde(default)]
    pub jobs_waiting: u32,
    /// The data folder it owns.
    #[serde(default)]
    pub data_dir: String,
    #[serde(default)]
    pub version: String,
    /// Open Batch API batches it polls.
    #[serde(default)]
    pub batches: Vec<crate::queue::BatchInfo>,
}

/// What a subscribed client hears, mirroring the scheduler's events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Queued {
        record: Box<GenerationRecord>,
    },
    Started {
        record: Box<GenerationRecord>,
    },
    /// A partial image of a running job, base64 of the encoded bytes.
    Partial {
        job: Id,
        index: u32,
        data_base64: String,
    },
    Retrying {
        job: Id,
        retry: u32,
        wait_ms: u64,
        reason: String,
    },
    /// A provider answered 429: its jobs wait this long.
    RateLimited {
        provider: String,
        wait_ms: u64,
    },
    Finished {
        record: Box<GenerationRecord>,
    },
    Updated {
        record: Box<GenerationRecord>,
    },
    Deleted {
        record: Id,
    },
    /// A record came back from the trash.
    Restored {
        record: Box<GenerationRecord>,
    },
    Reordered {
        queue: Vec<Id>,
    },
    Paused {
        paused: bool,
    },
    RunPaused {
        run: Id,
        paused: bool,
    },
    /// A batch's state changed (as the service polled it).
    BatchState {
        batch: String,
        state: String,
    },
    /// A job waits for a client with this provider's key ("needs OPENAI_API_KEY").
    NeedsCredential {
        job: Id,
        provider: String,
    },
    /// Something the service could not do (a store write failed, a full disk).
    Problem {
        message: String,
    },
    /// This client read too slowly and missed `missed` events: reload what it shows.
    Lagged {
        missed: u64,
    },
    /// The service is stopping; the connection closes after this.
    Stopping,
}

/// Why something failed, over the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    pub kind: ErrorKind,
    pub message: String,
}

impl WireError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> WireError {
        WireError {
            kind,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    VersionMismatch,
    /// The first frame was not a hello.
    HandshakeRequired,
    HandshakeTimeout,
    /// The peer runs as another user.
    PermissionDenied,
    FrameTooLarge,
    Malformed,
    NotFound,
    /// The request is understood but this service does not serve it yet.
    Unsupported,
    /// A store error or a full disk.
    Store,
    Invalid,
    Internal,
    /// A kind a newer peer sent that this build does not know.
    #[serde(other)]
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frozen first frames: `type` and an integer `protocol` at the top level.
    #[test]
    fn first_frames_keep_their_frozen_shape() {
        let hello = serde_json::to_value(ClientFrame::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            client: "c".into(),
        }))
        .unwrap();
        assert_eq!(hello["type"], "hello");
        assert_eq!(hello["protocol"], PROTOCOL_VERSION);
        let welcome = serde_json::to_value(ServerFrame::Welcome(Welcome {
            protocol: PROTOCOL_VERSION,
            service: "s".into(),
            pid: 1,
        }))
        .unwrap();
        assert_eq!(welcome["type"], "welcome");
        assert_eq!(welcome["protocol"], PROTOCOL_VERSION);
        let refused = serde_json::to_value(ServerFrame::Refused {
            protocol: PROTOCOL_VERSION,
            error: WireError::new(ErrorKind::VersionMismatch, "m"),
        })
        .unwrap();
        assert_eq!(refused["type"], "refused");
        assert_eq!(refused["protocol"], PROTOCOL_VERSION);
        assert_eq!(refused["error"]["kind"], "version_mismatch");
    }

    #[test]
    fn a_submission_carries_its_key_but_never_shows_it() {
        let key = "sk-test-0123456789abcdefghijklmnopqrstuvwxyz";
        let frame = ClientFrame::Request {
            id: 7,
            request: Request::Submit(Box::new(SubmitJob {
                params: GenerationParams::default(),
                provider: ProviderSpec {
                    name: "openai".into(),
                    http: Some(super::super::spec::HttpSpec {
                        display_name: "OpenAI".into(),
                        base_url: "https://api.openai.com/v1".into(),
                        credential: ApiKey::new(key).map(Credential),
                        organization: None,
                        project: None,
                        max_retries: 2,
                        timeout_ms: 1,
                        connect_timeout_ms: 1,
                        stream_idle_timeout_ms: 1,
                        download_max_bytes: 1,
                        download_timeout_ms: 1,
                        max_response_bytes: 1,
                        download_hosts: Default::default(),
                        download_max_redirects: 0,
                    }),
                    dialect: None,
                    fields: None,
                    model: None,
                    variations: false,
                },
                front: false,
                parent: None,
                out_dir: None,
                run: None,
            })),
        };
        let json = serde_json::to_string(&frame).unwrap();
        let back: ClientFrame = serde_json::from_str(&json).unwrap();
        assert_eq!(back, frame);
        assert!(!format!("{frame:?}").contains("0123456789"), "{frame:?}");
        assert!(!format!("{back:?}").contains("0123456789"));
    }

    #[test]
    fn an_unknown_error_kind_from_a_newer_peer_still_reads() {
        let e: WireError =
            serde_json::from_str(r#"{"kind":"quota_exceeded","message":"m"}"#).unwrap();
        assert_eq!(e.kind, ErrorKind::Other);
    }
}
