//! The scheduler: one task that owns the queue, starts jobs on workers within the global and
//! per-provider limits, and turns what workers report into stored transitions and events.

use super::{Command, JobEvent, Submission};
use crate::api::{ApiError, ErrorKind, ProviderRules, request};
use crate::backend::{Backend, BackendEvent};
use crate::catalog::Catalog;
use crate::generation::{self, Job};
use crate::store::{
    GenerationRecord, HistoryStore, Id, ImageFiles, QueueMove, RecordedError, Status, StoreError,
};
use chrono::Utc;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

mod batches;
pub use batches::{BATCH_POLL, BatchInfo, NewBatch, poll_period};

/// A provider the scheduler can run jobs on.
#[derive(Clone)]
pub struct ProviderSlot {
    pub backend: Arc<dyn Backend>,
    pub rules: ProviderRules,
    /// Jobs of this provider running at once (besides the global limit).
    pub limit: usize,
}

impl std::fmt::Debug for ProviderSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSlot")
            .field("backend", &self.backend.name())
            .field("rules", &self.rules)
            .field("limit", &self.limit)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Jobs running at once, over all providers.
    pub concurrency: usize,
    /// Run jobs found queued in the store at start.
    pub resume_queue: bool,
}

/// How to reach a running scheduler. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SchedulerHandle {
    tx: UnboundedSender<Command>,
}

impl SchedulerHandle {
    /// A handle and the orders sent through it, for a scheduler that runs elsewhere (a
    /// service's client forwards them over the socket).
    pub fn channel() -> (SchedulerHandle, UnboundedReceiver<Command>) {
        let (tx, rx) = unbounded_channel();
        (SchedulerHandle { tx }, rx)
    }

    /// Queue a job that runs with its own provider slot (see [`Command::SubmitWith`]).
    pub fn submit_with(
        &self,
        submission: Submission,
        slot: ProviderSlot,
        out_dir: Option<std::path::PathBuf>,
    ) -> impl std::future::Future<Output = Result<Id, String>> + Send + 'static {
        self.ask(move |reply| Command::SubmitWith {
            submission,
            slot,
            out_dir,
            reply,
        })
    }

    pub async fn counts(&self) -> super::JobCounts {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Counts(tx)).is_err() {
            return super::JobCounts::default();
        }
        rx.await.unwrap_or_default()
    }

    /// `Some(true)`: the job runs; `Some(false)`: it is queued; `None`: neither.
    pub async fn is_live(&self, id: Id) -> Option<bool> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::IsLive(id, tx)).is_err() {
            return None;
        }
        rx.await.ok().flatten()
    }

    /// Whether the scheduler still takes orders.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
    /// Queue a job; returns its id once it is stored.
    pub async fn submit(&self, s: Submission) -> Result<Id, String> {
        self.ask(move |tx| Command::Submit(s, tx)).await
    }

    /// Queue a job for a caller that waits for it; if the caller dies before the job runs,
    /// the next scheduler start records it as interrupted instead of running it.
    pub async fn submit_headless(&self, s: Submission) -> Result<Id, String> {
        self.ask(move |tx| Command::SubmitHeadless(s, tx)).await
    }

    pub fn send(&self, c: Command) {
        let _ = self.tx.send(c);
    }

    /// Send a command now and return the way to its answer: commands sent one after the other
    /// are applied in that order even when their answers are awaited on different tasks.
    fn ask<T: Send + 'static>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Command,
    ) -> impl std::future::Future<Output = Result<T, String>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let sent = self.tx.send(command(tx)).is_ok();
        async move {
            if !sent {
                return Err("the scheduler has stopped".to_string());
            }
            rx.await
                .map_err(|_| "the scheduler has stopped".to_string())?
        }
    }

    /// Queue a job now, in the caller's order (two quick submissions keep their order).
    pub fn submit_in_order(
        &self,
        s: Submission,
    ) -> impl std::future::Future<Output = Result<Id, String>> + Send + 'static {
        self.ask(move |tx| Command::Submit(s, tx))
    }

    /// Queue the jobs of a run, in order, whole or not at all: they are sent now (so they keep
    /// their order against other submissions); when one is refused, those queued are cancelled
    /// and the first refusal is the answer.
    pub fn submit_run(
        &self,
        jobs: Vec<Submission>,
    ) -> impl std::future::Future<Output = Result<Vec<Id>, String>> + Send + 'static {
        // Held while it is queued: a job started before a later one is refused would be sent
        // (and paid for) and then cancelled.
        let mut runs: Vec<Id> = jobs
            .iter()
            .filter_map(|s| s.run.as_ref().map(|r| r.id))
            .collect();
        runs.sort();
        runs.dedup();
        for run in &runs {
            self.send(Command::HoldRun(*run, true));
        }
        let queued: Vec<_> = jobs.into_iter().map(|s| self.submit_in_order(s)).collect();
        let handle = self.clone();
        async move {
            let release = |handle: &SchedulerHandle| {
                for run in &runs {
                    handle.send(Command::HoldRun(*run, false));
                }
            };
            let mut ids = Vec::with_capacity(queued.len());
            let mut refused = None;
            for q in queued {
                match q.await {
                    Ok(id) => ids.push(id),
                    Err(e) => {
                        refused.get_or_insert(e);
                    }
                }
            }
            match refused {
                None => {
                    release(&handle);
                    Ok(ids)
                }
                Some(e) => {
                    for id in ids {
                        handle.cancel(id);
                    }
                    release(&handle);
                    Err(e)
                }
            }
        }
    }

    /// Star or unstar a record, through the one writer of records.
    pub fn star(
        &self,
        id: Id,
        on: bool,
    ) -> impl std::future::Future<Output = Result<GenerationRecord, String>> + Send + 'static {
        self.ask(move |tx| Command::Star(id, on, tx))
    }

    /// Replace a record's tags, through the one writer of records.
    pub fn set_tags(
        &self,
        id: Id,
        tags: Vec<String>,
    ) -> impl std::future::Future<Output = Result<GenerationRecord, String>> + Send + 'static {
        self.ask(move |tx| Command::SetTags(id, tags, tx))
    }

    /// Change a record's star, tags, rating or notes, through the one writer of records.
    pub fn edit(
        &self,
        id: Id,
        edit: crate::store::UserEdit,
    ) -> impl std::future::Future<Output = Result<GenerationRecord, String>> + Send + 'static {
        self.ask(move |tx| Command::Edit(id, edit, tx))
    }

    /// Bring a record back from the trash.
    pub fn restore(
        &self,
        id: Id,
    ) -> impl std::future::Future<Output = Result<GenerationRecord, String>> + Send + 'static {
        self.ask(move |tx| Command::Restore(id, tx))
    }

    /// Delete a record to the trash (cancelling its job first if it is queued or running).
    pub fn delete(
        &self,
        id: Id,
    ) -> impl std::future::Future<Output = Result<Option<GenerationRecord>, String>> + Send + 'static
    {
        self.ask(move |tx| Command::Delete(id, tx))
    }

    pub fn cancel(&self, id: Id) {
        self.send(Command::Cancel(id));
    }

    pub fn retry(&self, id: Id) {
        self.send(Command::Retry(id));
    }

    pub fn move_job(&self, id: Id, how: QueueMove) {
        self.send(Command::Move(id, how));
    }

    /// Hold or release the queued jobs of a run.
    pub fn pause_run(&self, run: Id, paused: bool) {
        self.send(Command::PauseRun(run, paused));
    }

    /// Hold a run's jobs while they are queued, silently (see [`SchedulerHandle::submit_run`]).
    pub fn hold_run(&self, run: Id, held: bool) {
        self.send(Command::HoldRun(run, held));
    }

    /// Say again which runs are held, and whether the queue is (events to every subscriber).
    pub fn announce_paused(&self) {
        self.send(Command::AnnouncePaused);
    }

    pub fn pause(&self, paused: bool) {
        self.send(if paused {
            Command::Pause
        } else {
            Command::Resume
        });
    }

    /// Stop: running jobs are cancelled and recorded as interrupted; queued jobs stay queued.
    /// Record the jobs of a batch just created (see [`Command::SubmitBatch`]).
    pub async fn submit_batch(&self, nb: NewBatch) -> Result<Vec<Id>, String> {
        self.ask(move |tx| Command::SubmitBatch(nb, tx)).await
    }

    /// Poll every open batch now, and return when those polls are applied.
    pub async fn poll_batches(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::PollBatches(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// The open batches.
    pub async fn batches(&self) -> Vec<BatchInfo> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Batches(tx)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Ask the server to cancel an open batch.
    pub async fn cancel_batch(&self, id: String) -> Result<BatchInfo, String> {
        self.ask(move |tx| Command::CancelBatch(id, tx)).await
    }

    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

struct Running {
    cancel: CancellationToken,
    provider: String,
}

/// What a worker says when its job ends.
struct WorkerDone {
    id: Id,
    end: WorkerEnd,
}

enum WorkerEnd {
    /// Succeeded.
    Clean,
    /// Failed, cancelled, or dropped.
    Other,
    /// Refused with a 429 and stored as queued again: back to the queue, with its provider
    /// and its folder, to start when the provider's pace allows.
    RateLimited(Box<(GenerationRecord, ProviderSlot, ImageFiles)>),
}

/// What an answer said about its provider's rate limits, from a worker.
struct RateNote {
    provider: String,
    hints: crate::api::RateHints,
}

/// A worker asks the scheduler to store its job's record: the scheduler is the one writer of
/// records, so a worker's copy never overwrites a star or tags set meanwhile, nor brings a
/// deleted record back.
struct WorkerWrite {
    record: GenerationRecord,
    /// The record as stored (user-owned fields merged in), or `None` when the record was
    /// deleted meanwhile and the write was dropped.
    reply: oneshot::Sender<Result<Option<GenerationRecord>, StoreError>>,
}

pub struct Scheduler {
    store: Arc<dyn HistoryStore>,
    catalog: Arc<Catalog>,
    files: ImageFiles,
    providers: HashMap<String, ProviderSlot>,
    cfg: SchedulerConfig,
    /// Queued jobs in order (running ones are in `running`).
    order: Vec<Id>,
    queued: HashMap<Id, GenerationRecord>,
    running: HashMap<Id, Running>,
    paused: bool,
    /// Runs whose queued jobs are held.
    paused_runs: std::collections::HashSet<Id>,
    events: UnboundedSender<JobEvent>,
    done_tx: UnboundedSender<WorkerDone>,
    writes_tx: UnboundedSender<WorkerWrite>,
    /// Records deleted while their job ran: later writes for them are dropped.
    deleted: std::collections::HashSet<Id>,
    /// Jobs that run with a provider of their own (a client's key), until they start.
    job_slots: HashMap<Id, ProviderSlot>,
    /// Jobs whose images go somewhere else than the data folder (`--out`).
    job_files: HashMap<Id, ImageFiles>,
    /// Jobs already announced as waiting for a key.
    waiting_noted: std::collections::HashSet<Id>,
    interrupting: Arc<std::sync::Mutex<Vec<Id>>>,
    /// Each provider's pace: concurrency after 429s, starts spaced by its rate limits.
    paces: HashMap<String, super::pace::Pace>,
    /// Times each job went back to the queue after a 429.
    requeues: HashMap<Id, u32>,
    rates_tx: UnboundedSender<RateNote>,
    /// When a job held back by its provider's pace may start.
    wake: Option<tokio::time::Instant>,
    /// Open Batch API batches, by id.
    batches: HashMap<String, batches::OpenBatch>,
    batch_tx: UnboundedSender<batches::BatchUpdate>,
    batch_poll: std::time::Duration,
    /// Those waiting for a round of batch polls to end.
    poll_waiters: Vec<oneshot::Sender<()>>,
}

/// Run a store call off the async threads.
async fn blocking<T: Send + 'static>(
    store: &Arc<dyn HistoryStore>,
    f: impl FnOnce(&dyn HistoryStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let s = store.clone();
    tokio::task::spawn_blocking(move || f(s.as_ref()))
        .await
        .unwrap_or_else(|e| Err(StoreError::Io(format!("a store task stopped: {e}"))))
}

impl Scheduler {
    /// Start the scheduler on the current tokio runtime. Recovers the store first (jobs left
    /// running become interrupted) and, with `resume_queue`, picks up queued jobs.
    pub async fn start(
        store: Arc<dyn HistoryStore>,
        catalog: Arc<Catalog>,
        files: ImageFiles,
        providers: HashMap<String, ProviderSlot>,
        cfg: SchedulerConfig,
    ) -> Result<(SchedulerHandle, UnboundedReceiver<JobEvent>), StoreError> {
        blocking(&store, |s| s.recover()).await?;
        let (events, events_rx) = unbounded_channel();
        let (done_tx, done_rx) = unbounded_channel();
        let (writes_tx, writes_rx) = unbounded_channel();
        let (rates_tx, rates_rx) = unbounded_channel();
        let (tx, rx) = unbounded_channel();
        let (batch_tx, batch_rx) = unbounded_channel();
        let mut sched = Scheduler {
            store,
            catalog,
            files,
            providers,
            cfg,
            order: Vec::new(),
            queued: HashMap::new(),
            running: HashMap::new(),
            paused: false,
            paused_runs: Default::default(),
            events,
            done_tx,
            writes_tx,
            deleted: std::collections::HashSet::new(),
            job_slots: HashMap::new(),
            job_files: HashMap::new(),
            waiting_noted: std::collections::HashSet::new(),
            interrupting: Arc::new(std::sync::Mutex::new(Vec::new())),
            paces: HashMap::new(),
            requeues: HashMap::new(),
            rates_tx,
            wake: None,
            batches: HashMap::new(),
            batch_tx,
            batch_poll: poll_period(),
            poll_waiters: Vec::new(),
        };
        // Open batches are polled whatever `resume_queue` says: their requests are already
        // sent (and paid for); only their results are awaited.
        for r in blocking(&sched.store, |s| s.queue()).await? {
            if r.status == Status::Queued && r.batch.is_some() {
                sched.adopt_batch_record(r);
            }
        }
        if sched.cfg.resume_queue {
            for mut r in blocking(&sched.store, |s| s.queue()).await? {
                if r.batch.is_some() {
                    continue;
                }
                if r.status == Status::Queued && r.headless {
                    r.status = Status::Interrupted;
                    r.finished = Some(Utc::now());
                    r.error = Some(RecordedError {
                        kind: "interrupted".into(),
                        message: "the `easel generate` that queued this stopped before it ran"
                            .into(),
                        code: None,
                        status: None,
                        request_id: None,
                        hint: Some("retry it (r in the studio) if you still want it".into()),
                    });
                    let stored = r.clone();
                    blocking(&sched.store, move |s| s.put(&stored)).await?;
                } else if r.status == Status::Queued {
                    sched.order.push(r.id);
                    sched.queued.insert(r.id, r);
                }
            }
        }
        tokio::spawn(sched.run(rx, done_rx, writes_rx, rates_rx, batch_rx));
        Ok((SchedulerHandle { tx }, events_rx))
    }

    fn emit(&self, e: JobEvent) {
        let _ = self.events.send(e);
    }

    async fn run(
        mut self,
        mut commands: UnboundedReceiver<Command>,
        mut done: UnboundedReceiver<WorkerDone>,
        mut writes: UnboundedReceiver<WorkerWrite>,
        mut rates: UnboundedReceiver<RateNote>,
        mut batch_updates: UnboundedReceiver<batches::BatchUpdate>,
    ) {
        self.pump();
        let tick_every = self.batch_poll.min(std::time::Duration::from_secs(5));
        let mut batch_tick = tokio::time::interval(tick_every);
        batch_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wake = self.wake;
            tokio::select! {
                // Workers' writes first: a job's own transitions are stored before a later
                // command about it is applied.
                biased;
                Some(w) = writes.recv() => self.write(w).await,
                // Before a job's end: the 429 that put it back is known when it is requeued.
                Some(n) = rates.recv() => self.rate_note(n),
                c = commands.recv() => match c {
                    Some(Command::Shutdown(reply)) => {
                        self.shutdown(&mut done, &mut writes).await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(c) => self.command(c).await,
                    // Every handle is gone: stop as on shutdown.
                    None => {
                        self.shutdown(&mut done, &mut writes).await;
                        return;
                    }
                },
                Some(d) = done.recv() => self.worker_done(d).await,
                // A job held back by its provider's pace may start now.
                () = sleep_until_some(wake) => {}
                Some(u) = batch_updates.recv() => self.batch_update(u).await,
                _ = batch_tick.tick(), if !self.batches.is_empty() => self.poll_batches(false),
            }
            self.pump();
        }
    }

    /// What an answer said about its provider's rate limits.
    fn rate_note(&mut self, n: RateNote) {
        let limit = self.limit_of(&n.provider);
        let now = tokio::time::Instant::now();
        let pace = self.paces.entry(n.provider.clone()).or_default();
        if let Some(wait) = pace.hints(&n.hints, now, limit) {
            self.emit(JobEvent::RateLimited {
                provider: n.provider,
                wait,
            });
        }
    }

    /// The configured limit of a provider's jobs at once.
    fn limit_of(&self, provider: &str) -> usize {
        self.providers
            .get(provider)
            .map(|s| s.limit)
            .or_else(|| {
                self.job_slots
                    .values()
                    .find(|s| s.backend.name() == provider)
                    .map(|s| s.limit)
            })
            .unwrap_or(self.cfg.concurrency)
            .max(1)
    }

    async fn worker_done(&mut self, d: WorkerDone) {
        let run = self.running.remove(&d.id);
        self.deleted.remove(&d.id);
        let provider = run.as_ref().map(|r| r.provider.clone()).unwrap_or_default();
        match d.end {
            WorkerEnd::Clean => {
                let limit = self.limit_of(&provider);
                self.paces.entry(provider).or_default().clean_answer(limit);
                self.requeues.remove(&d.id);
            }
            WorkerEnd::Other => {
                self.requeues.remove(&d.id);
            }
            WorkerEnd::RateLimited(job) => {
                let (mut record, slot, files) = *job;
                let id = record.id;
                // Cancelled (or stopped) while it was being put back: it ends here.
                if run.is_none_or(|r| r.cancel.is_cancelled()) {
                    self.requeues.remove(&id);
                    record.status = Status::Cancelled;
                    record.finished = Some(Utc::now());
                    let stored = record.clone();
                    match blocking(&self.store, move |s| s.put(&stored)).await {
                        Ok(()) => self.emit(JobEvent::Cancelled(Box::new(record))),
                        Err(e) => self.emit(JobEvent::Problem(e.to_string())),
                    }
                    return;
                }
                *self.requeues.entry(id).or_default() += 1;
                // It ran before the jobs waiting now: it goes first.
                self.order.insert(0, id);
                self.queued.insert(id, record.clone());
                self.job_slots.insert(id, slot);
                self.job_files.insert(id, files);
                self.emit(JobEvent::Queued(Box::new(record)));
                self.emit(JobEvent::Reordered(self.order.clone()));
            }
        }
    }

    /// Store a worker's record: the job-owned fields from the worker, the user-owned ones
    /// (star, tags) as stored now. Dropped when the record was deleted meanwhile.
    async fn write(&mut self, w: WorkerWrite) {
        let WorkerWrite { mut record, reply } = w;
        if self.deleted.contains(&record.id) {
            let _ = reply.send(Ok(None));
            return;
        }
        let id = record.id;
        let result = blocking(&self.store, move |s| {
            if let Some(stored) = s.get(id)? {
                record.keep_user_fields(&stored);
            }
            s.put(&record)?;
            Ok(Some(record))
        })
        .await;
        let _ = reply.send(result);
    }

    /// Apply a change to a record that is not its job's (star, tags) to the stored copy and to
    /// the queued copy, and announce it.
    async fn edit(
        &mut self,
        id: Id,
        change: impl FnOnce(&dyn HistoryStore) -> Result<GenerationRecord, StoreError> + Send + 'static,
    ) -> Result<GenerationRecord, String> {
        let r = blocking(&self.store, change)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(q) = self.queued.get_mut(&id) {
            q.keep_user_fields(&r);
        }
        self.emit(JobEvent::Updated(Box::new(r.clone())));
        Ok(r)
    }

    /// A queued job leaves the queue without running: its key and folder go with it.
    fn forget(&mut self, id: Id) {
        self.job_slots.remove(&id);
        self.job_files.remove(&id);
        self.waiting_noted.remove(&id);
    }

    async fn delete(&mut self, id: Id) -> Result<Option<GenerationRecord>, String> {
        if self.queued.remove(&id).is_some() {
            self.order.retain(|x| *x != id);
            self.forget(id);
        }
        if let Some(run) = self.running.get(&id) {
            // Its worker's later writes are dropped, and it removes any files it made.
            self.deleted.insert(id);
            run.cancel.cancel();
        }
        let old = blocking(&self.store, move |s| s.trash(id))
            .await
            .map_err(|e| e.to_string())?;
        self.emit(JobEvent::Deleted(id));
        Ok(old)
    }

    async fn restore(&mut self, id: Id) -> Result<GenerationRecord, String> {
        let r = blocking(&self.store, move |s| s.restore(id))
            .await
            .map_err(|e| e.to_string())?;
        self.emit(JobEvent::Restored(Box::new(r.clone())));
        Ok(r)
    }

    async fn command(&mut self, c: Command) {
        match c {
            Command::Submit(s, reply) => {
                let _ = reply.send(self.submit(s, false).await);
            }
            Command::SubmitHeadless(s, reply) => {
                let _ = reply.send(self.submit(s, true).await);
            }
            Command::SubmitWith {
                submission,
                slot,
                out_dir,
                reply,
            } => {
                let r = self.submit_with(submission, slot, out_dir).await;
                let _ = reply.send(r);
            }
            Command::Provide(name, slot) => {
                let waiting: Vec<Id> = self
                    .order
                    .iter()
                    .copied()
                    .filter(|id| {
                        !self.runnable(*id)
                            && self.queued.get(id).is_some_and(|r| r.provider == name)
                    })
                    .collect();
                for id in waiting {
                    self.job_slots.insert(id, slot.clone());
                }
                self.provide_batches(&name, &slot);
            }
            Command::RetryWith(id, slot) => {
                if self.retry(id).await {
                    self.job_slots.insert(id, slot);
                }
            }
            Command::Counts(reply) => {
                let waiting = self.order.iter().filter(|id| !self.runnable(**id)).count();
                let _ = reply.send(super::JobCounts {
                    running: self.running.len(),
                    queued: self.order.len(),
                    waiting,
                });
            }
            Command::IsLive(id, reply) => {
                let state = if self.running.contains_key(&id) {
                    Some(true)
                } else {
                    self.queued.contains_key(&id).then_some(false)
                };
                let _ = reply.send(state);
            }
            Command::Cancel(id) => self.cancel(id).await,
            Command::Retry(id) => {
                self.retry(id).await;
            }
            Command::Star(id, on, reply) => {
                let r = self.edit(id, move |s| s.set_starred(id, on)).await;
                let _ = reply.send(r);
            }
            Command::SetTags(id, tags, reply) => {
                let r = self.edit(id, move |s| s.set_tags(id, tags)).await;
                let _ = reply.send(r);
            }
            Command::Edit(id, edit, reply) => {
                let r = self.edit(id, move |s| s.edit(id, &edit)).await;
                let _ = reply.send(r);
            }
            Command::Delete(id, reply) => {
                let r = self.delete(id).await;
                let _ = reply.send(r);
            }
            Command::Restore(id, reply) => {
                let r = self.restore(id).await;
                let _ = reply.send(r);
            }
            Command::Move(id, how) => {
                if self.queued.contains_key(&id) {
                    match blocking(&self.store, move |s| s.move_in_queue(id, how)).await {
                        Ok(true) => self.reload_order().await,
                        Ok(false) => {}
                        Err(e) => self.emit(JobEvent::Problem(e.to_string())),
                    }
                }
            }
            Command::Pause => {
                self.paused = true;
                self.emit(JobEvent::Paused(true));
            }
            Command::Resume => {
                self.paused = false;
                self.emit(JobEvent::Paused(false));
            }
            Command::HoldRun(run, held) => {
                if held {
                    self.paused_runs.insert(run);
                } else {
                    self.paused_runs.remove(&run);
                }
            }
            Command::AnnouncePaused => {
                let mut held: Vec<Id> = self.paused_runs.iter().copied().collect();
                held.sort();
                for run in held {
                    self.emit(JobEvent::RunPaused(run, true));
                }
                if self.paused {
                    self.emit(JobEvent::Paused(true));
                }
            }
            Command::PauseRun(run, paused) => {
                if paused {
                    self.paused_runs.insert(run);
                } else {
                    self.paused_runs.remove(&run);
                }
                // Said even when it was so already: a studio that started after the pause
                // learns how the run stands.
                self.emit(JobEvent::RunPaused(run, paused));
            }
            Command::SubmitBatch(nb, reply) => {
                let r = self.submit_batch(nb).await;
                let _ = reply.send(r);
            }
            Command::PollBatches(reply) => self.wait_for_polls(reply),
            Command::Batches(reply) => {
                let _ = reply.send(self.batch_infos());
            }
            Command::CancelBatch(id, reply) => {
                let r = self.cancel_batch(id).await;
                let _ = reply.send(r);
            }
            Command::Shutdown(_) => {}
        }
    }

    async fn reload_order(&mut self) {
        match blocking(&self.store, |s| s.queue()).await {
            Ok(records) => {
                self.order = records
                    .iter()
                    .map(|r| r.id)
                    .filter(|id| self.queued.contains_key(id))
                    .collect();
                self.emit(JobEvent::Reordered(self.order.clone()));
            }
            Err(e) => self.emit(JobEvent::Problem(e.to_string())),
        }
    }

    /// Whether a queued job has a provider to run on here.
    fn runnable(&self, id: Id) -> bool {
        self.job_slots.contains_key(&id)
            || self
                .queued
                .get(&id)
                .is_some_and(|r| self.providers.contains_key(&r.provider))
    }

    async fn submit_with(
        &mut self,
        s: Submission,
        slot: ProviderSlot,
        out_dir: Option<std::path::PathBuf>,
    ) -> Result<Id, String> {
        let id = self.submit_checked(s, false, &slot).await?;
        // The record is queued and announced: the job's own provider and folder go with it.
        // (`pump` runs after this command, so the job cannot have started without them.)
        self.job_slots.insert(id, slot);
        if let Some(dir) = out_dir {
            self.job_files
                .insert(id, ImageFiles::new(self.files.data_dir(), Some(&dir)));
        }
        Ok(id)
    }

    async fn submit(&mut self, s: Submission, headless: bool) -> Result<Id, String> {
        let slot = self
            .providers
            .get(&s.provider)
            .cloned()
            .ok_or_else(|| format!("no provider named {}", s.provider))?;
        self.submit_checked(s, headless, &slot).await
    }

    async fn submit_checked(
        &mut self,
        s: Submission,
        headless: bool,
        slot: &ProviderSlot,
    ) -> Result<Id, String> {
        // Refuse what cannot be sent now, rather than failing it later.
        request::check(&s.params, &self.catalog, &slot.rules).map_err(|e| e.to_string())?;
        let mut r = GenerationRecord::queued(
            Id::new(),
            s.params,
            &s.provider,
            slot.backend.is_demo(),
            Utc::now(),
        );
        r.parent_id = s.parent;
        r.headless = headless;
        r.run = s.run;
        let stored = r.clone();
        let front = s.front;
        blocking(&self.store, move |st| st.enqueue(&stored, front))
            .await
            .map_err(|e| e.to_string())?;
        if front {
            self.order.insert(0, r.id);
        } else {
            self.order.push(r.id);
        }
        let id = r.id;
        self.queued.insert(id, r.clone());
        self.emit(JobEvent::Queued(Box::new(r)));
        if front {
            // Listed where it will run, not last (a paused queue keeps it waiting in view).
            self.emit(JobEvent::Reordered(self.order.clone()));
        }
        Ok(id)
    }

    async fn cancel(&mut self, id: Id) {
        if let Some(run) = self.running.get(&id) {
            // The worker records the cancellation when its request has stopped.
            run.cancel.cancel();
            return;
        }
        let Some(mut r) = self.queued.remove(&id) else {
            if let Some(batch) = self.batch_of(id) {
                self.emit(JobEvent::Problem(format!(
                    "{} is a line of batch {batch}: `easel batch cancel {batch}` cancels the batch",
                    id.short()
                )));
            }
            return;
        };
        self.order.retain(|x| *x != id);
        self.forget(id);
        r.status = Status::Cancelled;
        r.finished = Some(Utc::now());
        let stored = r.clone();
        match blocking(&self.store, move |s| s.put(&stored)).await {
            Ok(()) => self.emit(JobEvent::Cancelled(Box::new(r))),
            Err(e) => self.emit(JobEvent::Problem(e.to_string())),
        }
    }

    /// Queue a failed, cancelled or interrupted job again; says whether it was.
    async fn retry(&mut self, id: Id) -> bool {
        let found = blocking(&self.store, move |s| s.get(id)).await;
        let mut r = match found {
            Ok(Some(r)) if r.status.can_retry() => r,
            Ok(Some(r)) => {
                self.emit(JobEvent::Problem(format!(
                    "{} is {}: only failed, cancelled or interrupted jobs can be retried",
                    r.id.short(),
                    r.status
                )));
                return false;
            }
            Ok(None) => return false,
            Err(e) => {
                self.emit(JobEvent::Problem(e.to_string()));
                return false;
            }
        };
        if self.in_batch(id) {
            return false;
        }
        r.status = Status::Queued;
        r.error = None;
        r.finished = None;
        // Retried, it is sent live: it is no longer a line of its batch.
        r.batch = None;
        // Retried here, it belongs to this scheduler's user now.
        r.headless = false;
        let stored = r.clone();
        if let Err(e) = blocking(&self.store, move |s| s.enqueue(&stored, false)).await {
            self.emit(JobEvent::Problem(e.to_string()));
            return false;
        }
        self.order.push(id);
        self.queued.insert(id, r.clone());
        self.emit(JobEvent::Queued(Box::new(r)));
        true
    }

    /// Start every job that may start now, in queue order.
    fn pump(&mut self) {
        self.wake = None;
        if self.paused {
            return;
        }
        let now = tokio::time::Instant::now();
        let mut i = 0;
        while i < self.order.len() && self.running.len() < self.cfg.concurrency {
            let id = self.order[i];
            // A held run's jobs wait; the others go on.
            if !self.paused_runs.is_empty()
                && self
                    .queued
                    .get(&id)
                    .and_then(|r| r.run.as_ref())
                    .is_some_and(|run| self.paused_runs.contains(&run.id))
            {
                i += 1;
                continue;
            }
            let provider = self
                .queued
                .get(&id)
                .map(|r| r.provider.clone())
                .unwrap_or_default();
            let Some(slot) = self
                .job_slots
                .get(&id)
                .or_else(|| self.providers.get(&provider))
                .cloned()
            else {
                // Its provider is not available in this run (no key, say): it waits, and
                // says so once.
                if self.waiting_noted.insert(id) {
                    self.emit(JobEvent::NeedsCredential {
                        id,
                        provider: provider.clone(),
                    });
                }
                i += 1;
                continue;
            };
            let busy = self
                .running
                .values()
                .filter(|r| r.provider == provider)
                .count();
            // The provider's pace: fewer at once after 429s, starts spaced by its rate limit.
            let pace = self.paces.entry(provider.clone()).or_default();
            if busy >= pace.allowed(slot.limit) {
                i += 1;
                continue;
            }
            if let Some(at) = pace.ready_at(now) {
                self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
                i += 1;
                continue;
            }
            pace.started(now);
            self.order.remove(i);
            // The key is held only while the job needs it: the worker takes it now.
            self.job_slots.remove(&id);
            self.waiting_noted.remove(&id);
            let files = self.job_files.remove(&id);
            if let Some(record) = self.queued.remove(&id) {
                self.start_job(record, slot, files);
            }
        }
    }

    fn start_job(
        &mut self,
        record: GenerationRecord,
        slot: ProviderSlot,
        files: Option<ImageFiles>,
    ) {
        let cancel = CancellationToken::new();
        self.running.insert(
            record.id,
            Running {
                cancel: cancel.clone(),
                provider: record.provider.clone(),
            },
        );
        let may_requeue =
            self.requeues.get(&record.id).copied().unwrap_or(0) < super::pace::MAX_REQUEUES;
        let worker = Worker {
            rates: self.rates_tx.clone(),
            may_requeue,
            writes: self.writes_tx.clone(),
            catalog: self.catalog.clone(),
            files: files.unwrap_or_else(|| self.files.clone()),
            slot,
            events: self.events.clone(),
            interrupting: self.interrupting.clone(),
        };
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            let id = record.id;
            let end = worker.run(record, cancel).await;
            let _ = done.send(WorkerDone { id, end });
        });
    }

    async fn shutdown(
        &mut self,
        done: &mut UnboundedReceiver<WorkerDone>,
        writes: &mut UnboundedReceiver<WorkerWrite>,
    ) {
        self.paused = true;
        {
            let mut list = self.interrupting.lock().unwrap_or_else(|p| p.into_inner());
            for (id, run) in self.running.iter() {
                list.push(*id);
                run.cancel.cancel();
            }
        }
        // Wait for the workers to record their jobs as interrupted (their writes come here).
        while !self.running.is_empty() {
            tokio::select! {
                biased;
                Some(w) = writes.recv() => self.write(w).await,
                d = done.recv() => match d {
                    Some(d) => {
                        self.running.remove(&d.id);
                    }
                    None => break,
                },
            }
        }
    }
}

/// Wait until `at`, or for ever.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs one job: records it running, generates, saves, records how it ended.
struct Worker {
    rates: UnboundedSender<RateNote>,
    /// A 429 puts the job back in the queue (until it has been put back too often).
    may_requeue: bool,
    writes: UnboundedSender<WorkerWrite>,
    catalog: Arc<Catalog>,
    files: ImageFiles,
    slot: ProviderSlot,
    events: UnboundedSender<JobEvent>,
    interrupting: Arc<std::sync::Mutex<Vec<Id>>>,
}

impl Worker {
    fn emit(&self, e: JobEvent) {
        let _ = self.events.send(e);
    }

    /// Store the record through the scheduler. `Ok(None)`: the record was deleted meanwhile.
    async fn put(&self, r: &GenerationRecord) -> Result<Option<GenerationRecord>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writes
            .send(WorkerWrite {
                record: r.clone(),
                reply: tx,
            })
            .map_err(|_| StoreError::Io("the scheduler has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Io("the scheduler has stopped".into()))?
    }

    async fn run(self, mut r: GenerationRecord, cancel: CancellationToken) -> WorkerEnd {
        r.status = Status::Running;
        r.started = Some(Utc::now());
        r.finished = None;
        r.attempts += 1;
        match self.put(&r).await {
            Ok(Some(stored)) => r = stored,
            // Deleted before it started: nothing to run.
            Ok(None) => return WorkerEnd::Other,
            Err(e) => {
                // It never ran: say so as a failure (not a row left "queued" for ever), and try
                // to record that.
                let err = ApiError::new(
                    ErrorKind::Storage,
                    self.slot.backend.name(),
                    format!("could not record the start of the job: {e}"),
                );
                r.attempts = r.attempts.saturating_sub(1);
                self.finish_failed(r, &err).await;
                return WorkerEnd::Other;
            }
        }
        self.emit(JobEvent::Started(Box::new(r.clone())));

        let checked = match request::check(&r.params, &self.catalog, &self.slot.rules) {
            Ok(c) => c,
            Err(e) => {
                let err = ApiError::new(
                    ErrorKind::InvalidRequest,
                    self.slot.backend.name(),
                    format!("not sent: {e}"),
                );
                self.finish_failed(r, &err).await;
                return WorkerEnd::Other;
            }
        };
        let job = Job {
            id: r.id,
            params: r.params.clone(),
            checked,
            created: r.created,
            run: r.run.clone(),
        };
        let (tx, mut rx) = unbounded_channel();
        let events = self.events.clone();
        let id = r.id;
        let (rates, provider) = (self.rates.clone(), r.provider.clone());
        // Relays progress; returns the wait the last 429 asked for.
        let relay = tokio::spawn(async move {
            let mut asked = None;
            while let Some(ev) = rx.recv().await {
                let out = match ev {
                    BackendEvent::RateLimit(hints) => {
                        if hints.limited {
                            asked = Some(hints.retry_after.unwrap_or(super::pace::DEFAULT_WAIT));
                        }
                        let _ = rates.send(RateNote {
                            provider: provider.clone(),
                            hints,
                        });
                        continue;
                    }
                    BackendEvent::Partial { index, bytes } => {
                        JobEvent::Partial { id, index, bytes }
                    }
                    BackendEvent::Retrying {
                        retry,
                        wait,
                        reason,
                    } => JobEvent::Retrying {
                        id,
                        retry,
                        wait,
                        reason,
                    },
                };
                let _ = events.send(out);
            }
            asked
        });
        let result = generation::run(
            self.slot.backend.as_ref(),
            &self.files,
            &self.catalog,
            &job,
            cancel,
            tx,
        )
        .await;
        let asked = relay.await.ok().flatten();
        match result {
            Ok(outcome) => {
                // Said, not swallowed: images dropped beyond `n`, and the like.
                for w in &outcome.warnings {
                    self.emit(JobEvent::Problem(format!("{}: {w}", r.id.short())));
                }
                r.status = Status::Succeeded;
                r.revised_prompt = outcome.revised_prompt.clone();
                r.outputs = outcome.images.clone();
                r.usage = outcome.usage.clone();
                r.cost_usd = outcome.cost_usd;
                r.request_id = outcome.request_id.clone();
                r.attempts = r.attempts.saturating_sub(1) + outcome.attempts.max(1);
                r.finished = Some(outcome.finished);
                r.error = (!outcome.save_errors.is_empty()).then(|| RecordedError {
                    kind: "storage".into(),
                    message: outcome.save_errors.join("; "),
                    code: None,
                    status: None,
                    request_id: outcome.request_id.clone(),
                    hint: Some("free disk space or fix the data folder's permissions".into()),
                });
                match self.put(&r).await {
                    Ok(Some(stored)) => {
                        self.emit(JobEvent::Succeeded(Box::new(stored)));
                        return WorkerEnd::Clean;
                    }
                    Ok(None) => {
                        // Deleted while it ran: its images go with it.
                        for out in &outcome.images {
                            self.files.remove(out);
                        }
                    }
                    Err(e) => {
                        // The record could not be written: take the files back so nothing
                        // points nowhere, and say so.
                        for out in &outcome.images {
                            self.files.remove(out);
                        }
                        r.outputs.clear();
                        let err = ApiError::new(
                            ErrorKind::Storage,
                            self.slot.backend.name(),
                            e.to_string(),
                        );
                        self.finish_failed(r, &err).await;
                    }
                }
            }
            Err(f) if f.error.kind == ErrorKind::Cancelled => {
                let interrupted = {
                    let list = self.interrupting.lock().unwrap_or_else(|p| p.into_inner());
                    list.contains(&r.id)
                };
                r.finished = Some(f.finished);
                if interrupted {
                    r.status = Status::Interrupted;
                    r.error = Some(RecordedError {
                        kind: "interrupted".into(),
                        message: "easel stopped while this generation was running".into(),
                        code: None,
                        status: None,
                        request_id: None,
                        hint: Some("retry it (r in the studio)".into()),
                    });
                } else {
                    r.status = Status::Cancelled;
                }
                match self.put(&r).await {
                    Ok(None) => {}
                    Ok(Some(_)) if interrupted => {}
                    Ok(Some(stored)) => self.emit(JobEvent::Cancelled(Box::new(stored))),
                    Err(e) => self.emit(JobEvent::Problem(e.to_string())),
                }
            }
            // A rate limit: back to the queue (its retries are not used up), to start when
            // the provider's pace allows.
            Err(f) if f.error.kind == ErrorKind::RateLimited && self.may_requeue => {
                if f.error.attempts > 0 {
                    r.attempts = r.attempts.saturating_sub(1) + f.error.attempts;
                }
                // Said while it is still running; the scheduler announces it queued again.
                self.emit(JobEvent::Retrying {
                    id: r.id,
                    retry: r.attempts,
                    wait: asked.unwrap_or(super::pace::DEFAULT_WAIT),
                    reason: f.error.to_string(),
                });
                r.status = Status::Queued;
                r.started = None;
                match self.put(&r).await {
                    Ok(Some(stored)) => {
                        return WorkerEnd::RateLimited(Box::new((stored, self.slot, self.files)));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let err = ApiError::new(
                            ErrorKind::Storage,
                            self.slot.backend.name(),
                            format!("could not put the job back in the queue: {e}"),
                        );
                        self.finish_failed(r, &err).await;
                    }
                }
            }
            Err(f) => self.finish_failed(r, &f.error).await,
        }
        WorkerEnd::Other
    }

    async fn finish_failed(&self, mut r: GenerationRecord, error: &ApiError) {
        // This run was counted as one attempt when it started; count the requests it really
        // sent (retries included), as a success does.
        if error.attempts > 0 {
            r.attempts = r.attempts.saturating_sub(1) + error.attempts;
        }
        r.status = Status::Failed;
        r.finished = Some(Utc::now());
        r.request_id = error.request_id.clone().or(r.request_id);
        r.error = Some(RecordedError::from(error));
        match self.put(&r).await {
            Ok(Some(stored)) => r = stored,
            Ok(None) => return,
            Err(e) => self.emit(JobEvent::Problem(format!(
                "could not record the failure of {}: {e}",
                r.id.short()
            ))),
        }
        self.emit(JobEvent::Failed(Box::new(r)));
    }
}
