//! Batch API batches as the scheduler keeps them: the queued records of an open batch wait
//! (they are never run by a worker); the scheduler polls the batch and, when it ends, saves
//! every image as a live generation would and stores each record's outcome itself (it is the
//! one writer of records). Open batches are the queued records that carry a batch
//! ([`crate::store::BatchRef`]), so a scheduler started later (a new service, an in-process
//! command) finds them in the store and polls them again.

use super::{ProviderSlot, Scheduler, blocking};
use crate::api::batch::{self, Batch, BatchStatus, RequestCounts};
use crate::api::{ApiError, ErrorKind, ImagesClient, request};
use crate::catalog::Catalog;
use crate::generation::{self, Job, Made};
use crate::queue::{JobEvent, Submission};
use crate::store::{BatchRef, GenerationRecord, Id, ImageFiles, RecordedError, Status};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// How often an open batch is polled at most (`EASEL_BATCH_POLL_MS` overrides it, for tests
/// and the impatient). A batch takes minutes to hours; the first minutes are polled more often.
pub const BATCH_POLL: Duration = Duration::from_secs(60);

/// The polling period: [`BATCH_POLL`] unless `EASEL_BATCH_POLL_MS` says otherwise.
pub fn poll_period() -> Duration {
    std::env::var("EASEL_BATCH_POLL_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|ms| Duration::from_millis(ms.max(10)))
        .unwrap_or(BATCH_POLL)
}

/// What a client sees of an open batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchInfo {
    pub id: String,
    pub provider: String,
    /// Its jobs (records) still waiting.
    pub jobs: Vec<Id>,
    /// The last state polled (none before the first poll).
    #[serde(default)]
    pub status: Option<BatchStatus>,
    #[serde(default)]
    pub counts: Option<RequestCounts>,
    /// The last poll's error, if it failed (polled again later).
    #[serde(default)]
    pub error: Option<String>,
    /// A key for its provider is at hand: without one it cannot be polled until a client with
    /// that provider's key connects.
    #[serde(default)]
    pub has_key: bool,
}

/// An open batch.
pub(super) struct OpenBatch {
    provider: String,
    records: Vec<GenerationRecord>,
    slot: Option<ProviderSlot>,
    status: Option<BatchStatus>,
    counts: Option<RequestCounts>,
    error: Option<String>,
    polling: bool,
    next_poll: Instant,
    opened: Instant,
}

impl OpenBatch {
    pub(super) fn new(provider: String, slot: Option<ProviderSlot>) -> OpenBatch {
        OpenBatch {
            provider,
            records: Vec::new(),
            slot,
            status: None,
            counts: None,
            error: None,
            polling: false,
            next_poll: Instant::now(),
            opened: Instant::now(),
        }
    }

    fn info(&self, id: &str) -> BatchInfo {
        BatchInfo {
            id: id.to_string(),
            provider: self.provider.clone(),
            jobs: self.records.iter().map(|r| r.id).collect(),
            status: self.status,
            counts: self.counts,
            error: self.error.clone(),
            has_key: self.slot.is_some(),
        }
    }
}

/// What a poll found.
pub(super) enum BatchUpdate {
    /// Still open (or the poll failed: polled again later).
    State {
        id: String,
        result: Result<Batch, ApiError>,
    },
    /// Ended: the records as they end (their images already saved).
    Done {
        id: String,
        records: Vec<GenerationRecord>,
    },
}

/// A new batch for the scheduler to record: its jobs, with the ids used as `custom_id`s.
#[derive(Debug)]
pub struct NewBatch {
    pub batch_id: String,
    pub jobs: Vec<(Id, Submission)>,
    /// The provider (with its key) to poll it with; `None`: the scheduler's own of that name.
    pub slot: Option<ProviderSlot>,
}

impl Scheduler {
    /// Record the jobs of a batch just created: queued, each with its batch; not run here.
    pub(super) async fn submit_batch(&mut self, nb: NewBatch) -> Result<Vec<Id>, String> {
        let NewBatch {
            batch_id,
            jobs,
            slot,
        } = nb;
        let Some((_, first)) = jobs.first() else {
            return Err("a batch needs at least one job".into());
        };
        let provider = first.provider.clone();
        let slot = slot.or_else(|| self.providers.get(&provider).cloned());
        let demo = slot.as_ref().is_some_and(|s| s.backend.is_demo());
        let mut records = Vec::with_capacity(jobs.len());
        for (id, s) in jobs {
            if let Some(slot) = &slot {
                request::check(&s.params, &self.catalog, &slot.rules).map_err(|e| e.to_string())?;
            }
            let mut r = GenerationRecord::queued(id, s.params, &s.provider, demo, Utc::now());
            r.parent_id = s.parent;
            r.run = s.run;
            r.batch = Some(BatchRef {
                id: batch_id.clone(),
                custom_id: id.to_string(),
            });
            records.push(r);
        }
        let stored = records.clone();
        blocking(&self.store, move |st| {
            for r in &stored {
                st.enqueue(r, false)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())?;
        let ids = records.iter().map(|r| r.id).collect();
        for r in &records {
            self.emit(JobEvent::Queued(Box::new(r.clone())));
        }
        let open = self
            .batches
            .entry(batch_id)
            .or_insert_with(|| OpenBatch::new(provider, slot.clone()));
        if open.slot.is_none() {
            open.slot = slot;
        }
        open.records.extend(records);
        // The first poll waits a little: a new batch is validating.
        open.next_poll = Instant::now() + self.batch_poll.min(Duration::from_secs(15));
        Ok(ids)
    }

    /// A record found queued with a batch when the scheduler starts.
    pub(super) fn adopt_batch_record(&mut self, r: GenerationRecord) {
        let Some(b) = r.batch.clone() else {
            return;
        };
        let slot = self.providers.get(&r.provider).cloned();
        let open = self
            .batches
            .entry(b.id)
            .or_insert_with(|| OpenBatch::new(r.provider.clone(), slot));
        open.records.push(r);
    }

    /// A client's provider (with its key): batches of that provider that had none can be
    /// polled now.
    pub(super) fn provide_batches(&mut self, name: &str, slot: &ProviderSlot) {
        for b in self.batches.values_mut() {
            if b.provider == name && b.slot.is_none() {
                b.slot = Some(slot.clone());
                b.next_poll = Instant::now();
            }
        }
    }

    pub(super) fn batch_infos(&self) -> Vec<BatchInfo> {
        let mut out: Vec<BatchInfo> = self.batches.iter().map(|(id, b)| b.info(id)).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Whether a record waits in an open batch.
    pub(super) fn in_batch(&self, id: Id) -> bool {
        self.batch_of(id).is_some()
    }

    /// The open batch a record waits in.
    pub(super) fn batch_of(&self, id: Id) -> Option<String> {
        self.batches
            .iter()
            .find(|(_, b)| b.records.iter().any(|r| r.id == id))
            .map(|(k, _)| k.clone())
    }

    /// Start a poll of every open batch that is due (all of them with `now`).
    pub(super) fn poll_batches(&mut self, now: bool) {
        let t = Instant::now();
        let period = self.batch_poll;
        let ids: Vec<String> = self
            .batches
            .iter()
            .filter(|(_, b)| !b.polling && b.slot.is_some() && (now || b.next_poll <= t))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let Some(b) = self.batches.get_mut(&id) else {
                continue;
            };
            let Some(client) = b
                .slot
                .as_ref()
                .and_then(|s| s.backend.images_client())
                .cloned()
            else {
                b.error = Some("its provider has no Batch API (the demo backend)".into());
                b.next_poll = t + period;
                continue;
            };
            b.polling = true;
            let rules = b.slot.as_ref().map(|s| s.rules.clone()).unwrap_or_default();
            let records = b.records.clone();
            let tx = self.batch_tx.clone();
            let files = self.files.clone();
            let catalog = self.catalog.clone();
            tokio::spawn(async move {
                let update = poll_one(&client, &id, records, &files, &catalog, &rules).await;
                let _ = tx.send(update);
            });
        }
        self.answer_poll_waiters();
    }

    /// Reply to those waiting for a poll round once no poll is in flight.
    fn answer_poll_waiters(&mut self) {
        if self.batches.values().any(|b| b.polling) {
            return;
        }
        for w in self.poll_waiters.drain(..) {
            let _ = w.send(());
        }
    }

    pub(super) fn wait_for_polls(&mut self, reply: oneshot::Sender<()>) {
        self.poll_waiters.push(reply);
        self.poll_batches(true);
    }

    /// Apply what a poll found: a new state, or the batch's end (records stored here, by the
    /// one writer).
    pub(super) async fn batch_update(&mut self, u: BatchUpdate) {
        let period = self.batch_poll;
        match u {
            BatchUpdate::State { id, result } => {
                if let Some(b) = self.batches.get_mut(&id) {
                    b.polling = false;
                    let age = b.opened.elapsed();
                    b.next_poll = Instant::now() + batch::poll_interval(age, period);
                    let mut changed = None;
                    match result {
                        Ok(batch) => {
                            if b.status != Some(batch.status) {
                                changed = Some(batch.status);
                            }
                            b.status = Some(batch.status);
                            b.counts = batch.request_counts;
                            b.error = None;
                        }
                        Err(e) => b.error = Some(e.to_string()),
                    }
                    // Its jobs' rows say where the batch stands (validating, in_progress…).
                    if let Some(status) = changed {
                        self.emit(JobEvent::BatchState {
                            batch: id.clone(),
                            state: status.as_str().to_string(),
                        });
                    }
                }
            }
            BatchUpdate::Done { id, records } => {
                self.batches.remove(&id);
                for mut r in records {
                    let rid = r.id;
                    let outputs = r.outputs.clone();
                    let files = self.files.clone();
                    let stored = blocking(&self.store, move |s| {
                        let Some(old) = s.get(rid)? else {
                            // Deleted meanwhile: its images go with it.
                            for o in &outputs {
                                files.remove(o);
                            }
                            return Ok(None);
                        };
                        r.keep_user_fields(&old);
                        s.put(&r)?;
                        Ok(Some(r))
                    })
                    .await;
                    match stored {
                        Ok(Some(r)) => self.emit(match r.status {
                            Status::Succeeded => JobEvent::Succeeded(Box::new(r)),
                            Status::Cancelled => JobEvent::Cancelled(Box::new(r)),
                            _ => JobEvent::Failed(Box::new(r)),
                        }),
                        Ok(None) => {}
                        Err(e) => self.emit(JobEvent::Problem(format!(
                            "could not record the result of {} (batch {id}): {e}",
                            rid.short()
                        ))),
                    }
                }
            }
        }
        self.answer_poll_waiters();
    }

    /// Ask the server to cancel a batch, then poll it.
    pub(super) async fn cancel_batch(&mut self, id: String) -> Result<BatchInfo, String> {
        let Some(b) = self.batches.get(&id) else {
            return Err(format!("no open batch {id} in this data folder"));
        };
        let Some(client) = b
            .slot
            .as_ref()
            .and_then(|s| s.backend.images_client())
            .cloned()
        else {
            return Err(format!(
                "no key for {} here to cancel batch {id} with",
                b.provider
            ));
        };
        let batch = client
            .cancel_batch(&id, &CancellationToken::new())
            .await
            .map_err(|e| e.to_string())?;
        let info = match self.batches.get_mut(&id) {
            Some(b) => {
                b.status = Some(batch.status);
                b.counts = batch.request_counts;
                b.next_poll = Instant::now();
                b.info(&id)
            }
            None => return Err(format!("batch {id} ended meanwhile")),
        };
        Ok(info)
    }
}

fn recorded(kind: &str, message: String, hint: Option<&str>) -> RecordedError {
    RecordedError {
        kind: kind.into(),
        message,
        code: None,
        status: None,
        request_id: None,
        hint: hint.map(str::to_string),
    }
}

/// Poll one batch; when it has ended, download its output and error files and save every
/// image (nothing is stored here: the scheduler stores the records).
async fn poll_one(
    client: &ImagesClient,
    id: &str,
    records: Vec<GenerationRecord>,
    files: &ImageFiles,
    catalog: &Arc<Catalog>,
    rules: &crate::api::ProviderRules,
) -> BatchUpdate {
    let cancel = CancellationToken::new();
    let batch = match client.get_batch(id, &cancel).await {
        Ok(b) if b.status.is_final() => b,
        result => {
            return BatchUpdate::State {
                id: id.to_string(),
                result,
            };
        }
    };
    let mut lines = HashMap::new();
    let mut download_error = None;
    for file in [&batch.output_file_id, &batch.error_file_id]
        .into_iter()
        .flatten()
    {
        match client.file_content(file, &cancel).await {
            Ok(text) => {
                let (parsed, _bad) = batch::parse_output(&text);
                for l in parsed {
                    lines.insert(l.custom_id.clone(), l);
                }
            }
            Err(e) => download_error = Some(e),
        }
    }
    if let Some(e) = download_error
        && lines.is_empty()
        && batch.status == BatchStatus::Completed
    {
        // The results exist but could not be fetched now: try again at the next poll.
        return BatchUpdate::State {
            id: id.to_string(),
            result: Err(e),
        };
    }
    let mut out = Vec::with_capacity(records.len());
    for mut r in records {
        let custom = r
            .batch
            .as_ref()
            .map(|b| b.custom_id.clone())
            .unwrap_or_default();
        r.finished = Some(Utc::now());
        r.attempts = 1;
        match lines.get(&custom) {
            Some(line) => {
                let ok = line
                    .response
                    .as_ref()
                    .filter(|resp| resp.status_code == 200 && line.error.is_none());
                match ok {
                    Some(resp) => {
                        let result = client
                            .output_from_body(&resp.body, resp.request_id.clone())
                            .await;
                        match result {
                            Ok(output) => save_line(&mut r, output, files, catalog, rules).await,
                            Err(e) => fail(&mut r, &e),
                        }
                    }
                    None => fail(&mut r, &client.line_error(line)),
                }
            }
            None => match batch.status {
                BatchStatus::Cancelled => {
                    r.status = Status::Cancelled;
                }
                BatchStatus::Expired => {
                    r.status = Status::Failed;
                    r.error = Some(recorded(
                        "expired",
                        format!("batch {id} expired (24 h) before this request ran"),
                        Some("retry it (r in the studio) to send it again, live"),
                    ));
                }
                BatchStatus::Failed => {
                    r.status = Status::Failed;
                    let why = batch
                        .error_summary()
                        .unwrap_or_else(|| "the server gave no reason".into());
                    r.error = Some(recorded(
                        "batch_failed",
                        format!("batch {id} failed: {why}"),
                        None,
                    ));
                }
                _ => {
                    r.status = Status::Failed;
                    r.error = Some(recorded(
                        "bad_answer",
                        format!("batch {id} ended with no result for this request"),
                        None,
                    ));
                }
            },
        }
        out.push(r);
    }
    BatchUpdate::Done {
        id: id.to_string(),
        records: out,
    }
}

fn fail(r: &mut GenerationRecord, e: &ApiError) {
    r.status = Status::Failed;
    r.request_id = e.request_id.clone().or(r.request_id.take());
    r.error = Some(RecordedError::from(e));
}

/// Save the images of one successful line, as a live generation's.
async fn save_line(
    r: &mut GenerationRecord,
    output: crate::api::ApiOutput,
    files: &ImageFiles,
    catalog: &Catalog,
    rules: &crate::api::ProviderRules,
) {
    let checked = match request::check(&r.params, catalog, rules) {
        Ok(c) => c,
        Err(e) => {
            let e = ApiError::new(ErrorKind::InvalidRequest, &r.provider, e.to_string());
            return fail(r, &e);
        }
    };
    let job = Job {
        id: r.id,
        params: r.params.clone(),
        checked,
        created: r.created,
        run: r.run.clone(),
    };
    let made = Made {
        provider: &r.provider,
        demo: false,
        started: r.created,
        batch: r.batch.as_ref(),
    };
    let saved = generation::save_output(
        &made,
        files,
        catalog,
        &job,
        output,
        &CancellationToken::new(),
    )
    .await;
    match saved {
        Ok(outcome) => {
            r.status = Status::Succeeded;
            r.started = Some(r.created);
            r.revised_prompt = outcome.revised_prompt.clone();
            r.outputs = outcome.images.clone();
            r.usage = outcome.usage.clone();
            r.cost_usd = outcome.cost_usd;
            r.request_id = outcome.request_id.clone();
            r.finished = Some(outcome.finished);
            r.error = (!outcome.save_errors.is_empty()).then(|| RecordedError {
                kind: "storage".into(),
                message: outcome.save_errors.join("; "),
                code: None,
                status: None,
                request_id: outcome.request_id.clone(),
                hint: Some("free disk space or fix the data folder's permissions".into()),
            });
        }
        Err(f) => fail(r, &f.error),
    }
}
