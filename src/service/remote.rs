//! The client's side of the engine: what the studio and the commands use when a service owns
//! the data folder. It has the same shape as the in-process engine — a
//! [`HistoryStore`] for reads, a [`SchedulerHandle`] for orders, a stream of [`JobEvent`]s —
//! so the studio and `easel generate` do not know which one they talk to.
//!
//! - [`RemoteStore`]: each store call is a request on a connection owned by a small thread of
//!   its own, so it can be called from synchronous code (the `history` commands, the studio's
//!   store worker) as the in-process store is.
//! - the order bridge: a task that forwards what is sent through the [`SchedulerHandle`] to the
//!   service, in order, with this client's provider (and key) on each submission.
//! - the event relay: a subscribed connection whose events become [`JobEvent`]s; when the
//!   service goes away it reconnects (starting a new one) and asks the studio to reload.

use super::host::from_event;
use super::protocol::{Reply, Request, SubmitBatch, SubmitJob};
use super::spec::ProviderSpec;
use super::start::connect_or_start;
use super::store_call::{StoreAnswer, StoreCall};
use super::{Client, ServiceError};
use crate::config::{Provider, Settings};
use crate::queue::{Command, JobEvent, SchedulerHandle};
use crate::store::{
    BadRecord, Cursor, GenerationRecord, HistoryStore, Id, Located, Page, Query, QueueMove,
    Recovery, Stats, StoreError, UserEdit,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

fn store_error(e: ServiceError) -> StoreError {
    match e {
        ServiceError::Failed { message, .. } => StoreError::Io(message),
        e => StoreError::Io(e.to_string()),
    }
}

/// Whether a request failed because the connection is gone (worth one reconnect).
fn connection_lost(e: &ServiceError) -> bool {
    matches!(
        e,
        ServiceError::Closed | ServiceError::Io { .. } | ServiceError::Refused { .. }
    )
}

/// Send `request` on `client`, reconnecting (and starting a service) once if the connection
/// was lost. Every request is safe to send again: a lost connection means the service that
/// got the first one has gone, and its successor starts from the store.
async fn request(
    client: &mut Option<Client>,
    settings: &Settings,
    name: &str,
    request: Request,
) -> Result<Reply, ServiceError> {
    if let Some(c) = client.as_mut() {
        match c.request(request.clone()).await {
            Err(e) if connection_lost(&e) => *client = None,
            other => return other,
        }
    }
    let mut c = connect_or_start(settings, name).await?;
    let r = c.request(request).await;
    *client = Some(c);
    r
}

type Call = (Request, mpsc::SyncSender<Result<Reply, ServiceError>>);

/// Connections a [`RemoteStore`] keeps: calls from different threads (the studio's history
/// pages, its spend walk, the queue) run side by side, so a long one (a walk over every record)
/// does not hold the others back.
const CONNECTIONS: usize = 4;

/// The history, read (and changed) through the service.
pub struct RemoteStore {
    calls: tokio::sync::mpsc::UnboundedSender<Call>,
}

impl RemoteStore {
    /// Connect to the data folder's service (starting it when `start`); blocks until connected.
    pub fn connect(
        settings: &Settings,
        name: &str,
        start: bool,
    ) -> Result<RemoteStore, ServiceError> {
        let (calls, mut rx) = tokio::sync::mpsc::unbounded_channel::<Call>();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let settings = settings.clone();
        let name = name.to_string();
        let spawned = std::thread::Builder::new()
            .name("easel-store-client".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(source) => {
                        let _ = ready_tx.send(Err(ServiceError::Io {
                            what: "client runtime",
                            source,
                        }));
                        return;
                    }
                };
                rt.block_on(async move {
                    let first = if start {
                        connect_or_start(&settings, &name).await
                    } else {
                        super::start::connect_running(&settings, &name).await
                    };
                    let first = match first {
                        Ok(c) => {
                            let _ = ready_tx.send(Ok(()));
                            c
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    // The first connection now, the others when calls overlap.
                    type Slot = std::sync::Arc<tokio::sync::Mutex<Option<Client>>>;
                    let pool: Vec<Slot> = std::iter::once(Some(first))
                        .chain(std::iter::repeat_with(|| None))
                        .take(CONNECTIONS)
                        .map(|c| std::sync::Arc::new(tokio::sync::Mutex::new(c)))
                        .collect();
                    let settings = std::sync::Arc::new(settings);
                    let mut turn = 0;
                    while let Some((req, reply)) = rx.recv().await {
                        // A free connection if there is one, else the next in turn.
                        let slot = pool
                            .iter()
                            .find(|s| s.try_lock().is_ok())
                            .cloned()
                            .unwrap_or_else(|| {
                                turn = (turn + 1) % pool.len();
                                pool[turn].clone()
                            });
                        let (settings, name) = (settings.clone(), name.clone());
                        tokio::spawn(async move {
                            let mut client = slot.lock().await;
                            let r = request(&mut client, &settings, &name, req).await;
                            let _ = reply.send(r);
                        });
                    }
                });
            });
        if let Err(source) = spawned {
            return Err(ServiceError::Io {
                what: "client thread",
                source,
            });
        }
        ready_rx.recv().map_err(|_| ServiceError::Closed)??;
        Ok(RemoteStore { calls })
    }

    fn call(&self, req: Request) -> Result<Reply, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.calls
            .send((req, tx))
            .map_err(|_| store_error(ServiceError::Closed))?;
        rx.recv()
            .map_err(|_| store_error(ServiceError::Closed))?
            .map_err(store_error)
    }

    fn store(&self, call: StoreCall) -> Result<StoreAnswer, StoreError> {
        match self.call(Request::Store { call })? {
            Reply::Store { result } => result,
            other => Err(unexpected(&other)),
        }
    }

    fn record(&self, req: Request) -> Result<GenerationRecord, StoreError> {
        match self.call(req)? {
            Reply::Record { record } => Ok(*record),
            other => Err(unexpected(&other)),
        }
    }

    /// The service's status.
    pub fn status(&self) -> Result<super::ServiceStatus, StoreError> {
        match self.call(Request::Status)? {
            Reply::Status(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }
}

fn unexpected(reply: &Reply) -> StoreError {
    let shown = format!("{reply:?}");
    StoreError::Io(format!(
        "the easel service gave an unexpected answer ({}); make sure client and service are the same easel version",
        crate::sanitize::truncate(&crate::sanitize::line(&shown), 80)
    ))
}

fn count(x: u64) -> usize {
    usize::try_from(x).unwrap_or(usize::MAX)
}

impl HistoryStore for RemoteStore {
    fn put(&self, record: &GenerationRecord) -> Result<(), StoreError> {
        match self.store(StoreCall::Put {
            record: Box::new(record.clone()),
        })? {
            StoreAnswer::Done => Ok(()),
            _ => Err(StoreError::Io("unexpected answer to put".into())),
        }
    }

    fn enqueue(&self, _record: &GenerationRecord, _front: bool) -> Result<(), StoreError> {
        Err(StoreError::Invalid(
            "jobs are queued through the service's scheduler, not written to its store".into(),
        ))
    }

    fn get(&self, id: Id) -> Result<Option<GenerationRecord>, StoreError> {
        match self.store(StoreCall::Get { id })? {
            StoreAnswer::Record(r) => Ok(r.map(|r| *r)),
            _ => Err(StoreError::Io("unexpected answer to get".into())),
        }
    }

    fn resolve(&self, text: &str) -> Result<Id, StoreError> {
        match self.store(StoreCall::Resolve { text: text.into() })? {
            StoreAnswer::Id(id) => Ok(id),
            _ => Err(StoreError::Io("unexpected answer to resolve".into())),
        }
    }

    fn page(
        &self,
        query: &Query,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        match self.store(StoreCall::Page {
            query: query.clone(),
            cursor,
            limit,
        })? {
            StoreAnswer::Page { records, next } => Ok(Page { records, next }),
            _ => Err(StoreError::Io("unexpected answer to page".into())),
        }
    }

    fn count(&self, query: &Query) -> Result<usize, StoreError> {
        match self.store(StoreCall::Count {
            query: query.clone(),
        })? {
            StoreAnswer::Count(n) => Ok(count(n)),
            _ => Err(StoreError::Io("unexpected answer to count".into())),
        }
    }

    fn window(
        &self,
        query: &Query,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<GenerationRecord>, usize), StoreError> {
        match self.store(StoreCall::Window {
            query: query.clone(),
            offset: u64::try_from(offset).unwrap_or(u64::MAX),
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
        })? {
            StoreAnswer::Window { records, total } => Ok((records, count(total))),
            _ => Err(StoreError::Io("unexpected answer to window".into())),
        }
    }

    fn tags(&self) -> Result<Vec<(String, usize)>, StoreError> {
        match self.store(StoreCall::Tags)? {
            StoreAnswer::Tags(t) => Ok(t.into_iter().map(|(t, n)| (t, count(n))).collect()),
            _ => Err(StoreError::Io("unexpected answer to tags".into())),
        }
    }

    fn locate(&self, query: &Query, id: Id) -> Result<Located, StoreError> {
        match self.store(StoreCall::Locate {
            query: query.clone(),
            id,
        })? {
            StoreAnswer::Located(l) => Ok(l),
            _ => Err(StoreError::Io("unexpected answer to locate".into())),
        }
    }

    fn set_starred(&self, id: Id, starred: bool) -> Result<GenerationRecord, StoreError> {
        self.record(Request::Star {
            record: id,
            starred,
        })
    }

    fn set_tags(&self, id: Id, tags: Vec<String>) -> Result<GenerationRecord, StoreError> {
        self.record(Request::SetTags { record: id, tags })
    }

    fn edit(&self, id: Id, edit: &UserEdit) -> Result<GenerationRecord, StoreError> {
        self.record(Request::Edit {
            record: id,
            edit: edit.clone(),
        })
    }

    fn trash(&self, id: Id) -> Result<Option<GenerationRecord>, StoreError> {
        self.trash_job(id, false)
    }

    fn trash_job(
        &self,
        id: Id,
        cancel_running: bool,
    ) -> Result<Option<GenerationRecord>, StoreError> {
        match self.call(Request::Delete {
            record: id,
            cancel_running,
        })? {
            Reply::Deleted { old, .. } => Ok(old.map(|r| *r)),
            Reply::ConfirmCancelRunning { .. } => Err(StoreError::Invalid(format!(
                "{} is running: deleting it cancels the job (paid for if it was sent); add --yes to do that",
                id.short()
            ))),
            other => Err(unexpected(&other)),
        }
    }

    fn restore(&self, id: Id) -> Result<GenerationRecord, StoreError> {
        self.record(Request::Restore { record: id })
    }

    fn trashed(
        &self,
    ) -> Result<Vec<(chrono::DateTime<chrono::Utc>, GenerationRecord)>, StoreError> {
        match self.store(StoreCall::Trashed)? {
            StoreAnswer::Trashed(t) => Ok(t),
            _ => Err(StoreError::Io("unexpected answer to trashed".into())),
        }
    }

    fn empty_trash(&self, older_than: Option<chrono::Duration>) -> Result<usize, StoreError> {
        match self.store(StoreCall::EmptyTrash {
            older_than_secs: older_than.map(|d| d.num_seconds()),
        })? {
            StoreAnswer::Count(n) => Ok(count(n)),
            _ => Err(StoreError::Io("unexpected answer to empty-trash".into())),
        }
    }

    fn resolve_trashed(&self, text: &str) -> Result<Id, StoreError> {
        match self.store(StoreCall::ResolveTrashed { text: text.into() })? {
            StoreAnswer::Id(id) => Ok(id),
            _ => Err(StoreError::Io("unexpected answer to resolve".into())),
        }
    }

    fn delete(&self, id: Id) -> Result<Option<GenerationRecord>, StoreError> {
        let old = self.get(id)?;
        self.store(StoreCall::Purge { id })?;
        Ok(old)
    }

    fn queue(&self) -> Result<Vec<GenerationRecord>, StoreError> {
        match self.store(StoreCall::Queue)? {
            StoreAnswer::Records(r) => Ok(r),
            _ => Err(StoreError::Io("unexpected answer to queue".into())),
        }
    }

    fn move_in_queue(&self, id: Id, how: QueueMove) -> Result<bool, StoreError> {
        self.call(Request::Move { job: id, how })?;
        Ok(true)
    }

    fn recover(&self) -> Result<Recovery, StoreError> {
        // The service recovers its store when it starts.
        Ok(Recovery::default())
    }

    fn for_each(
        &self,
        f: &mut dyn FnMut(GenerationRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let query = Query::default();
        let mut cursor = None;
        loop {
            // Small pages: 100 records of the longest prompts stay far below the frame cap.
            let page = self.page(&query, cursor, 100)?;
            for r in page.records {
                f(r)?;
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
    }

    fn stats(&self) -> Result<Stats, StoreError> {
        match self.store(StoreCall::Stats)? {
            StoreAnswer::Stats(s) => Ok(*s),
            _ => Err(StoreError::Io("unexpected answer to stats".into())),
        }
    }

    fn doctor(&self, _repair: bool) -> Result<crate::store::DoctorReport, StoreError> {
        Err(StoreError::Invalid(
            "the doctor needs the data folder to itself; stop the service first (`easel service stop`)"
                .into(),
        ))
    }

    fn skipped(&self) -> Vec<BadRecord> {
        match self.store(StoreCall::Skipped) {
            Ok(StoreAnswer::Skipped(s)) => s,
            _ => Vec::new(),
        }
    }

    fn orphaned(&self) -> Vec<Id> {
        match self.store(StoreCall::Orphaned) {
            Ok(StoreAnswer::Ids(ids)) => ids,
            _ => Vec::new(),
        }
    }

    fn warnings(&self) -> Vec<String> {
        match self.store(StoreCall::Warnings) {
            Ok(StoreAnswer::Texts(w)) => w,
            _ => Vec::new(),
        }
    }

    fn prune_missing(&self) -> Result<Vec<Id>, StoreError> {
        match self.store(StoreCall::PruneMissing)? {
            StoreAnswer::Ids(ids) => Ok(ids),
            _ => Err(StoreError::Io("unexpected answer to prune".into())),
        }
    }

    fn warm(&self) -> Result<(), StoreError> {
        // The service warms its own index when it starts; asking here would only make this
        // client's next reads wait behind it on its connection.
        Ok(())
    }

    fn len(&self) -> usize {
        match self.store(StoreCall::Len) {
            Ok(StoreAnswer::Count(n)) => count(n),
            _ => 0,
        }
    }
}

/// The engine of a client of the service.
pub struct RemoteEngine {
    pub store: Arc<RemoteStore>,
    pub scheduler: SchedulerHandle,
    pub events: UnboundedReceiver<JobEvent>,
}

/// Connect to (or start) the data folder's service and set up the three parts. `provider`
/// goes with every submission and retry; its key is offered for queued jobs that wait for
/// one. `out_dir` is where this client's jobs save their images (`--out`).
pub async fn engine(
    settings: &Settings,
    provider: &Provider,
    name: &str,
    out_dir: Option<PathBuf>,
) -> Result<RemoteEngine, ServiceError> {
    let settings = Arc::new(settings.clone());
    let spec = ProviderSpec::of(provider);
    let mut orders = connect_or_start(&settings, name).await?;
    let mut events = connect_or_start(&settings, name).await?;
    events.request(Request::Subscribe).await?;
    if spec.http.is_some() && spec.has_credential() {
        orders
            .request(Request::Provide {
                provider: Box::new(spec.clone()),
            })
            .await?;
    }
    let store = {
        let (s, n) = (settings.clone(), name.to_string());
        tokio::task::spawn_blocking(move || RemoteStore::connect(&s, &n, true))
            .await
            .map_err(|_| ServiceError::Closed)??
    };
    let (scheduler, commands) = SchedulerHandle::channel();
    let (tx, rx) = unbounded_channel();
    let ctx = Arc::new(Context {
        settings,
        name: name.to_string(),
        spec,
        out_dir,
    });
    tokio::spawn(bridge(ctx.clone(), Some(orders), commands, tx.clone()));
    tokio::spawn(relay(ctx, events, tx));
    Ok(RemoteEngine {
        store: Arc::new(store),
        scheduler,
        events: rx,
    })
}

struct Context {
    settings: Arc<Settings>,
    name: String,
    spec: ProviderSpec,
    out_dir: Option<PathBuf>,
}

fn answer<T>(
    reply: Result<Reply, ServiceError>,
    f: impl FnOnce(Reply) -> Option<T>,
) -> Result<T, String> {
    match reply {
        Ok(r) => {
            let shown = format!("{r:?}");
            f(r).ok_or_else(|| {
                format!(
                    "the easel service gave an unexpected answer ({})",
                    crate::sanitize::truncate(&crate::sanitize::line(&shown), 80)
                )
            })
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Forward orders to the service, one at a time, in the order they were given.
async fn bridge(
    ctx: Arc<Context>,
    mut client: Option<Client>,
    mut commands: UnboundedReceiver<Command>,
    events: UnboundedSender<JobEvent>,
) {
    let (settings, name) = (ctx.settings.as_ref(), ctx.name.as_str());
    while let Some(c) = commands.recv().await {
        macro_rules! send {
            ($req:expr) => {
                request(&mut client, settings, name, $req).await
            };
        }
        let record = |r: Reply| match r {
            Reply::Record { record } => Some(*record),
            _ => None,
        };
        match c {
            Command::Submit(s, reply) | Command::SubmitHeadless(s, reply) => {
                // Through a service a job outlives its client: even `easel generate`'s jobs
                // keep running if it is killed, and land in history.
                let job = SubmitJob {
                    params: s.params,
                    provider: ctx.spec.clone(),
                    front: s.front,
                    parent: s.parent,
                    out_dir: ctx.out_dir.clone(),
                    run: s.run,
                };
                let r = send!(Request::Submit(Box::new(job)));
                let _ = reply.send(answer(r, |r| match r {
                    Reply::Submitted { job } => Some(job),
                    _ => None,
                }));
            }
            Command::Cancel(job) => report(&events, send!(Request::Cancel { job })),
            Command::Retry(job) => report(
                &events,
                send!(Request::Retry {
                    job,
                    provider: Some(Box::new(ctx.spec.clone())),
                }),
            ),
            Command::Move(job, how) => report(&events, send!(Request::Move { job, how })),
            Command::Pause => report(&events, send!(Request::Pause { paused: true })),
            Command::Resume => report(&events, send!(Request::Pause { paused: false })),
            Command::PauseRun(run, paused) => {
                report(&events, send!(Request::PauseRun { run, paused }))
            }
            // The service says so to each studio that subscribes.
            Command::AnnouncePaused => {}
            // Sent in order with the run's submissions, so the service holds it first.
            Command::HoldRun(run, held) => report(&events, send!(Request::HoldRun { run, held })),
            Command::Star(id, starred, reply) => {
                let r = send!(Request::Star {
                    record: id,
                    starred,
                });
                let _ = reply.send(answer(r, record));
            }
            Command::SetTags(id, tags, reply) => {
                let r = send!(Request::SetTags { record: id, tags });
                let _ = reply.send(answer(r, record));
            }
            Command::Edit(id, edit, reply) => {
                let r = send!(Request::Edit { record: id, edit });
                let _ = reply.send(answer(r, record));
            }
            Command::Restore(id, reply) => {
                let r = send!(Request::Restore { record: id });
                let _ = reply.send(answer(r, record));
            }
            Command::Delete(id, reply) => {
                // The studio asked the user already (its popup names the record).
                let r = send!(Request::Delete {
                    record: id,
                    cancel_running: true,
                });
                let _ = reply.send(answer(r, |r| match r {
                    Reply::Deleted { old, .. } => Some(old.map(|o| *o)),
                    _ => None,
                }));
            }
            Command::Counts(reply) => {
                let r = send!(Request::Status);
                let counts = match r {
                    Ok(Reply::Status(s)) => crate::queue::JobCounts {
                        running: s.jobs_running as usize,
                        queued: s.jobs_queued as usize,
                        waiting: s.jobs_waiting as usize,
                    },
                    _ => Default::default(),
                };
                let _ = reply.send(counts);
            }
            Command::IsLive(_, reply) => {
                let _ = reply.send(None);
            }
            // A client leaving does not stop the service's jobs: they outlive it.
            Command::Shutdown(reply) => {
                let _ = reply.send(());
                return;
            }
            Command::SubmitWith { reply, .. } => {
                let _ = reply.send(Err("not available through the service".into()));
            }
            Command::Provide(..) | Command::RetryWith(..) => {}
            Command::SubmitBatch(nb, reply) => {
                let job = SubmitBatch {
                    batch_id: nb.batch_id,
                    jobs: nb
                        .jobs
                        .into_iter()
                        .map(|(id, s)| (id, s.params, s.run))
                        .collect(),
                    provider: ctx.spec.clone(),
                };
                let r = send!(Request::SubmitBatch(Box::new(job)));
                let _ = reply.send(answer(r, |r| match r {
                    Reply::BatchSubmitted { jobs } => Some(jobs),
                    _ => None,
                }));
            }
            Command::PollBatches(reply) => {
                let _ = send!(Request::Batches { poll: true });
                let _ = reply.send(());
            }
            Command::Batches(reply) => {
                let r = send!(Request::Batches { poll: false });
                let _ = reply.send(
                    answer(r, |r| match r {
                        Reply::Batches { batches } => Some(batches),
                        _ => None,
                    })
                    .unwrap_or_default(),
                );
            }
            Command::CancelBatch(batch, reply) => {
                let r = send!(Request::CancelBatch { batch });
                let _ = reply.send(answer(r, |r| match r {
                    Reply::Batches { mut batches } => batches.pop(),
                    _ => None,
                }));
            }
        }
    }
}

/// A failed order without an answer to wait for is said on the event stream.
fn report(events: &UnboundedSender<JobEvent>, r: Result<Reply, ServiceError>) {
    match r {
        Err(e) => {
            let _ = events.send(JobEvent::Problem(e.to_string()));
        }
        Ok(Reply::Failed { error }) => {
            let _ = events.send(JobEvent::Problem(
                crate::sanitize::line(&error.message).into_owned(),
            ));
        }
        Ok(_) => {}
    }
}

/// Relay the service's events; when it goes away, start (or find) a new one, subscribe again,
/// and ask for a reload.
async fn relay(ctx: Arc<Context>, mut client: Client, tx: UnboundedSender<JobEvent>) {
    loop {
        let lost = loop {
            tokio::select! {
                _ = tx.closed() => return,
                e = client.next_event() => match e {
                    Ok(ev) => {
                        if let Some(j) = from_event(ev)
                            && tx.send(j).is_err()
                        {
                            return;
                        }
                    }
                    Err(e) => break e,
                },
            }
        };
        let _ = tx.send(JobEvent::Problem(format!(
            "lost the easel service ({}); reconnecting",
            crate::sanitize::line(&lost.to_string())
        )));
        let mut wait = Duration::from_millis(100);
        client = loop {
            if tx.is_closed() {
                return;
            }
            match reconnect(&ctx).await {
                Ok(c) => break c,
                Err(e) => {
                    let _ = tx.send(JobEvent::Problem(format!(
                        "the easel service is not back yet: {e}"
                    )));
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        };
        let _ = tx.send(JobEvent::Problem(
            "reconnected to the easel service; jobs that were running when it stopped are recorded as interrupted (they can be retried)".into(),
        ));
        let _ = tx.send(JobEvent::Resync);
    }
}

async fn reconnect(ctx: &Context) -> Result<Client, ServiceError> {
    let mut c = connect_or_start(&ctx.settings, &ctx.name).await?;
    c.request(Request::Subscribe).await?;
    if ctx.spec.http.is_some() && ctx.spec.has_credential() {
        c.request(Request::Provide {
            provider: Box::new(ctx.spec.clone()),
        })
        .await?;
    }
    Ok(c)
}
