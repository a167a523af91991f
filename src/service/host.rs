//! The service itself: it opens the data folder's store (taking its lock), starts the
//! scheduler, listens on the socket and answers clients until it is stopped or idle.
//!
//! The engine (store + scheduler + workers) knows nothing of the socket: [`EngineHandler`]
//! turns requests into scheduler orders and store reads, and scheduler events into protocol
//! events for every subscriber. The scheduler is the one writer of records.

use super::protocol::{ErrorKind, Event, Reply, Request, ServiceStatus, SubmitJob, WireError};
use super::server::{Handler, Listener, Peer, Server, ServerConfig};
use super::spec::ProviderSpec;
use super::store_call::{self, StoreCall};
use super::{PROTOCOL_VERSION, ServiceError};
use crate::config::Settings;
use crate::queue::{
    JobEvent, ProviderSlot, Scheduler, SchedulerConfig, SchedulerHandle, Submission,
};
use crate::store::{HistoryStore, ImageFiles, SledStore, Status, StoreError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Events kept for a subscriber that reads slowly before it is told it lagged.
const EVENT_BUFFER: usize = 1024;

/// A line in the service's log (its stderr, which the starter points at the log file).
pub fn log(line: &str) {
    eprintln!(
        "{} easel service[{}]: {}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        std::process::id(),
        crate::sanitize::line(line)
    );
}

pub struct EngineHandler {
    store: Arc<dyn HistoryStore>,
    scheduler: SchedulerHandle,
    events: broadcast::Sender<Event>,
    started: Instant,
    socket: PathBuf,
    data_dir: PathBuf,
    clients: OnceLock<Arc<AtomicUsize>>,
    stop: CancellationToken,
    demo: crate::config::Demo,
    /// Jobs of one provider running at once.
    limit: usize,
}

fn failed(kind: ErrorKind, message: impl Into<String>) -> Reply {
    Reply::Failed {
        error: WireError::new(kind, message),
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl EngineHandler {
    fn slot(&self, spec: &ProviderSpec) -> Result<ProviderSlot, Reply> {
        let provider = spec.to_provider();
        let backend = crate::backend::for_provider(&provider, &self.demo)
            .map_err(|e| failed(ErrorKind::Invalid, e.to_string()))?;
        Ok(ProviderSlot {
            backend,
            rules: provider.rules,
            limit: self.limit,
        })
    }

    async fn status(&self) -> ServiceStatus {
        let counts = self.scheduler.counts().await;
        ServiceStatus {
            pid: std::process::id(),
            protocol: PROTOCOL_VERSION,
            socket: self.socket.display().to_string(),
            uptime_secs: self.started.elapsed().as_secs(),
            // This connection is one of them.
            clients: to_u32(self.clients.get().map_or(0, |c| c.load(Ordering::Relaxed))),
            jobs_running: to_u32(counts.running),
            jobs_queued: to_u32(counts.queued),
            jobs_waiting: to_u32(counts.waiting),
            data_dir: self.data_dir.display().to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            batches: self.scheduler.batches().await,
        }
    }

    async fn submit(&self, job: SubmitJob) -> Reply {
        let slot = match self.slot(&job.provider) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let submission = Submission {
            params: job.params,
            provider: job.provider.name.clone(),
            front: job.front,
            parent: job.parent,
            run: job.run,
        };
        match self
            .scheduler
            .submit_with(submission, slot, job.out_dir)
            .await
        {
            Ok(job) => Reply::Submitted { job },
            Err(e) => failed(ErrorKind::Invalid, e),
        }
    }

    async fn store_call(&self, call: StoreCall) -> Reply {
        // Imports may not replace a live job's record: ask the scheduler first.
        let live = match &call {
            StoreCall::Put { record } => self.scheduler.is_live(record.id).await.is_some(),
            StoreCall::Purge { id } => self.scheduler.is_live(*id).await.is_some(),
            _ => false,
        };
        let store = self.store.clone();
        let result = tokio::task::spawn_blocking(move || {
            store_call::answer(store.as_ref(), call, &|_| live)
        })
        .await
        .unwrap_or_else(|e| Err(StoreError::Io(format!("a store task stopped: {e}"))));
        Reply::Store { result }
    }
}

fn record_reply(r: Result<crate::store::GenerationRecord, String>) -> Reply {
    match r {
        Ok(record) => Reply::Record {
            record: Box::new(record),
        },
        Err(e) => failed(ErrorKind::Store, e),
    }
}

#[async_trait::async_trait]
impl Handler for EngineHandler {
    async fn handle(&self, _peer: &Peer, request: Request) -> Reply {
        match request {
            Request::Status => Reply::Status(self.status().await),
            Request::Submit(job) => self.submit(*job).await,
            Request::SubmitBatch(b) => {
                let b = *b;
                let slot = match self.slot(&b.provider) {
                    Ok(s) => s,
                    Err(r) => return r,
                };
                let name = b.provider.name.clone();
                let nb = crate::queue::NewBatch {
                    batch_id: b.batch_id,
                    jobs: b
                        .jobs
                        .into_iter()
                        .map(|(id, params, run)| {
                            (
                                id,
                                Submission {
                                    params,
                                    provider: name.clone(),
                                    front: false,
                                    parent: None,
                                    run,
                                },
                            )
                        })
                        .collect(),
                    slot: Some(slot),
                };
                match self.scheduler.submit_batch(nb).await {
                    Ok(jobs) => Reply::BatchSubmitted { jobs },
                    Err(e) => failed(ErrorKind::Invalid, e),
                }
            }
            Request::Batches { poll } => {
                if poll {
                    self.scheduler.poll_batches().await;
                }
                Reply::Batches {
                    batches: self.scheduler.batches().await,
                }
            }
            Request::CancelBatch { batch } => match self.scheduler.cancel_batch(batch).await {
                Ok(info) => Reply::Batches {
                    batches: vec![info],
                },
                Err(e) => failed(ErrorKind::Invalid, e),
            },
            Request::Provide { provider } => match self.slot(&provider) {
                Ok(slot) => {
                    self.scheduler
                        .send(crate::queue::Command::Provide(provider.name.clone(), slot));
                    Reply::Done
                }
                Err(r) => r,
            },
            Request::Cancel { job } => {
                self.scheduler.cancel(job);
                Reply::Cancelled { job }
            }
            Request::Retry { job, provider } => {
                match provider.map(|p| self.slot(&p)).transpose() {
                    Ok(Some(slot)) => self
                        .scheduler
                        .send(crate::queue::Command::RetryWith(job, slot)),
                    Ok(None) => self.scheduler.retry(job),
                    Err(r) => return r,
                }
                Reply::Done
            }
            Request::Move { job, how } => {
                self.scheduler.move_job(job, how);
                Reply::Done
            }
            Request::Pause { paused } => {
                self.scheduler.pause(paused);
                Reply::Done
            }
            Request::PauseRun { run, paused } => {
                self.scheduler.pause_run(run, paused);
                Reply::Done
            }
            Request::HoldRun { run, held } => {
                self.scheduler.hold_run(run, held);
                Reply::Done
            }
            Request::Star { record, starred } => {
                record_reply(self.scheduler.star(record, starred).await)
            }
            Request::SetTags { record, tags } => {
                record_reply(self.scheduler.set_tags(record, tags).await)
            }
            Request::Edit { record, edit } => record_reply(self.scheduler.edit(record, edit).await),
            Request::Restore { record } => record_reply(self.scheduler.restore(record).await),
            Request::Delete {
                record,
                cancel_running,
            } => {
                if !cancel_running && self.scheduler.is_live(record).await == Some(true) {
                    return Reply::ConfirmCancelRunning { record };
                }
                match self.scheduler.delete(record).await {
                    Ok(old) => Reply::Deleted {
                        record,
                        old: old.map(Box::new),
                    },
                    Err(e) => failed(ErrorKind::Store, e),
                }
            }
            Request::Store { call } => self.store_call(call).await,
            Request::Stop { force } => {
                let counts = self.scheduler.counts().await;
                if counts.running > 0 && !force {
                    return Reply::Busy {
                        running: to_u32(counts.running),
                        queued: to_u32(counts.queued),
                    };
                }
                log(&format!(
                    "stopping on request ({} running, {} queued)",
                    counts.running, counts.queued
                ));
                self.stop.cancel();
                Reply::Stopping
            }
            Request::Subscribe | Request::Unsubscribe => {
                failed(ErrorKind::Internal, "subscriptions are the server's")
            }
        }
    }

    fn subscribe(&self) -> Option<broadcast::Receiver<Event>> {
        let events = self.events.subscribe();
        // A studio that subscribes learns which runs (and whether the queue) are held: a
        // pause lasts while the service runs, beyond the studio that made it.
        self.scheduler.announce_paused();
        Some(events)
    }
}

/// A scheduler event as subscribers hear it.
pub fn to_event(e: JobEvent) -> Option<Event> {
    use base64::Engine as _;
    Some(match e {
        JobEvent::Queued(record) => Event::Queued { record },
        JobEvent::Started(record) => Event::Started { record },
        JobEvent::Partial { id, index, bytes } => Event::Partial {
            job: id,
            index,
            data_base64: base64::engine::general_purpose::STANDARD.encode(&bytes),
        },
        JobEvent::Retrying {
            id,
            retry,
            wait,
            reason,
        } => Event::Retrying {
            job: id,
            retry,
            wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            reason,
        },
        JobEvent::RateLimited { provider, wait } => Event::RateLimited {
            provider,
            wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        },
        JobEvent::Succeeded(record) | JobEvent::Failed(record) | JobEvent::Cancelled(record) => {
            Event::Finished { record }
        }
        JobEvent::Updated(record) => Event::Updated { record },
        JobEvent::Deleted(record) => Event::Deleted { record },
        JobEvent::Restored(record) => Event::Restored { record },
        JobEvent::Reordered(queue) => Event::Reordered { queue },
        JobEvent::Paused(paused) => Event::Paused { paused },
        JobEvent::RunPaused(run, paused) => Event::RunPaused { run, paused },
        JobEvent::BatchState { batch, state } => Event::BatchState { batch, state },
        JobEvent::NeedsCredential { id, provider } => Event::NeedsCredential { job: id, provider },
        JobEvent::Problem(message) => Event::Problem { message },
        JobEvent::Resync => return None,
    })
}

/// A protocol event as a client's studio or command hears it.
pub fn from_event(e: Event) -> Option<JobEvent> {
    Some(match e {
        Event::Queued { record } => JobEvent::Queued(record),
        Event::Started { record } => JobEvent::Started(record),
        Event::Partial {
            job,
            index,
            data_base64,
        } => JobEvent::Partial {
            id: job,
            index,
            bytes: crate::api::payload::decode_base64(&data_base64).ok()?,
        },
        Event::Retrying {
            job,
            retry,
            wait_ms,
            reason,
        } => JobEvent::Retrying {
            id: job,
            retry,
            wait: Duration::from_millis(wait_ms),
            reason: crate::sanitize::line(&reason).into_owned(),
        },
        Event::RateLimited { provider, wait_ms } => JobEvent::RateLimited {
            provider: crate::sanitize::line(&provider).into_owned(),
            wait: Duration::from_millis(wait_ms),
        },
        Event::Finished { record } => match record.status {
            Status::Succeeded => JobEvent::Succeeded(record),
            Status::Cancelled => JobEvent::Cancelled(record),
            _ => JobEvent::Failed(record),
        },
        Event::Updated { record } => JobEvent::Updated(record),
        Event::Deleted { record } => JobEvent::Deleted(record),
        Event::Restored { record } => JobEvent::Restored(record),
        Event::Reordered { queue } => JobEvent::Reordered(queue),
        Event::Paused { paused } => JobEvent::Paused(paused),
        Event::RunPaused { run, paused } => JobEvent::RunPaused(run, paused),
        Event::BatchState { batch, state } => JobEvent::BatchState {
            batch: crate::sanitize::line(&batch).into_owned(),
            state: crate::sanitize::line(&state).into_owned(),
        },
        Event::NeedsCredential { job, provider } => JobEvent::NeedsCredential {
            id: job,
            provider: crate::sanitize::line(&provider).into_owned(),
        },
        Event::Problem { message } => {
            JobEvent::Problem(crate::sanitize::line(&message).into_owned())
        }
        Event::Lagged { .. } => JobEvent::Resync,
        Event::Stopping => return None,
    })
}

/// Why the service could not start.
#[derive(Debug)]
pub enum StartError {
    /// Another easel holds the data folder (a service that won the race, or an in-process
    /// command): not a failure for a client that wanted a service started.
    Locked(String),
    Other(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Locked(m) | StartError::Other(m) => f.write_str(m),
        }
    }
}

/// Run the service for `settings`' data folder until it is stopped (a `stop` request,
/// SIGTERM/SIGINT, the idle time, the data folder gone).
pub async fn run(settings: &Settings) -> Result<(), StartError> {
    let data_dir = settings.paths.data_dir.clone();
    crate::store::files::create_private_dir(&data_dir).map_err(|e| {
        StartError::Other(crate::store::files::describe_io_error(
            "create the data folder",
            &data_dir,
            &e,
        ))
    })?;
    // The lock first: of two services started at once, the loser stops here, before it
    // touches the socket, and its client connects to the winner.
    let store = match SledStore::open(&data_dir) {
        Ok(s) => s,
        Err(StoreError::Locked(m)) => return Err(StartError::Locked(m)),
        Err(e) => return Err(StartError::Other(e.to_string())),
    };
    for w in HistoryStore::warnings(&store) {
        log(&format!("warning: {w}"));
    }
    let store: Arc<dyn HistoryStore> = Arc::new(store);
    // Load the search index off the critical path, so a client's first search or filter does
    // not wait for it (the newest page needs no index).
    {
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.warm() {
                log(&format!("could not load the search index: {e}"));
            }
        });
    }
    if settings.file.history.trash_days > 0 {
        let age = chrono::Duration::days(i64::from(settings.file.history.trash_days));
        if let Err(e) = store.empty_trash(Some(age)) {
            log(&format!("could not empty old entries from the trash: {e}"));
        }
    }
    let socket = super::socket_path(&data_dir).map_err(|e| StartError::Other(e.to_string()))?;
    let listener = Listener::bind(&socket).await.map_err(|e| match e {
        ServiceError::AlreadyRunning { .. } => StartError::Locked(e.to_string()),
        e => StartError::Other(e.to_string()),
    })?;

    let demo = settings.file.demo.clone();
    let limit = settings.file.queue.concurrency.max(1);
    // The demo runs without a key: jobs of it resumed from the store run at once. Providers
    // with a key come with each job (or a client's `provide`), never from here.
    let demo_slot = ProviderSlot {
        backend: crate::backend::for_provider(&crate::config::Provider::demo(), &demo)
            .map_err(|e| StartError::Other(e.to_string()))?,
        rules: Default::default(),
        limit,
    };
    let providers = HashMap::from([(crate::config::DEMO.to_string(), demo_slot)]);
    let files = ImageFiles::new(&data_dir, None);
    let catalog = Arc::new(settings.catalog.clone());
    let cfg = SchedulerConfig {
        concurrency: limit,
        resume_queue: settings.file.queue.resume_queue,
    };
    let (scheduler, mut jobs) = Scheduler::start(store.clone(), catalog, files, providers, cfg)
        .await
        .map_err(|e| StartError::Other(e.to_string()))?;

    let (events, _) = broadcast::channel(EVENT_BUFFER);
    let stop = CancellationToken::new();
    let handler = Arc::new(EngineHandler {
        store: store.clone(),
        scheduler: scheduler.clone(),
        events: events.clone(),
        started: Instant::now(),
        socket: socket.clone(),
        data_dir: data_dir.clone(),
        clients: OnceLock::new(),
        stop: stop.clone(),
        demo,
        limit,
    });
    let server = Server::new(listener, handler.clone(), ServerConfig::default());
    let clients = server.clients();
    let _ = handler.clients.set(clients.clone());

    // Scheduler events to every subscriber.
    tokio::spawn(async move {
        while let Some(e) = jobs.recv().await {
            if let Some(ev) = to_event(e) {
                let _ = events.send(ev);
            }
        }
    });
    tokio::spawn(watch_idle(
        scheduler.clone(),
        clients,
        Duration::from_secs(settings.file.service.idle_exit_secs),
        data_dir.clone(),
        stop.clone(),
    ));
    tokio::spawn(watch_signals(stop.clone()));

    log(&format!(
        "serving {} on {} (protocol {PROTOCOL_VERSION})",
        data_dir.display(),
        socket.display()
    ));
    server.run(stop.clone()).await;
    // Running jobs are recorded as interrupted (retryable); queued ones stay for next time.
    scheduler.shutdown().await;
    drop(handler);
    log("stopped");
    Ok(())
}

/// Stop after `idle` with no client, nothing to run and no batch to poll, or when the data
/// folder is gone.
async fn watch_idle(
    scheduler: SchedulerHandle,
    clients: Arc<AtomicUsize>,
    idle: Duration,
    data_dir: PathBuf,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut idle_since: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if !Path::new(&data_dir).is_dir() {
            log("the data folder is gone; stopping");
            stop.cancel();
            return;
        }
        let counts = scheduler.counts().await;
        // An open batch it holds a key for keeps it: it polls the batch until it ends.
        let busy = clients.load(Ordering::Relaxed) > 0
            || counts.running > 0
            || counts.queued > counts.waiting
            || scheduler.batches().await.iter().any(|b| b.has_key);
        if busy || idle.is_zero() {
            idle_since = None;
            continue;
        }
        let since = *idle_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= idle {
            log(&format!(
                "no client and no job for {} s; stopping",
                idle.as_secs()
            ));
            stop.cancel();
            return;
        }
    }
}

async fn watch_signals(stop: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    // A service started from a terminal in the foreground ignores the hangup of that
    // terminal: its jobs outlive it like a detached one's.
    let mut hup = signal(SignalKind::hangup()).ok();
    loop {
        tokio::select! {
            _ = term.recv() => { log("SIGTERM: stopping"); break; }
            _ = int.recv() => { log("SIGINT: stopping"); break; }
            _ = async { match hup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending().await } } => continue,
        }
    }
    stop.cancel();
}

#[cfg(test)]
mod run_event_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::store::Id;

    /// A run held or released, and a batch's state, cross the socket and come back as they
    /// left (issue 14); text from the service is made safe on the way in.
    #[test]
    fn run_and_batch_events_cross_the_protocol() {
        let run = Id::new();
        let wire = |e: JobEvent| {
            let ev = to_event(e).unwrap();
            let text = serde_json::to_string(&ev).unwrap();
            from_event(serde_json::from_str(&text).unwrap()).unwrap()
        };
        assert!(
            matches!(wire(JobEvent::RunPaused(run, true)), JobEvent::RunPaused(r, true) if r == run)
        );
        match wire(JobEvent::BatchState {
            batch: "batch_1\u{1b}[2J".into(),
            state: "in_progress".into(),
        }) {
            JobEvent::BatchState { batch, state } => {
                assert!(!batch.contains('\u{1b}'), "{batch:?}");
                assert_eq!(state, "in_progress");
            }
            other => panic!("{other:?}"),
        }
        let req = Request::PauseRun { run, paused: false };
        let back: Request = serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
        assert!(matches!(back, Request::PauseRun { run: r, paused: false } if r == run));
        let req = Request::HoldRun { run, held: true };
        let back: Request = serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
        assert!(matches!(back, Request::HoldRun { run: r, held: true } if r == run));
    }
}
