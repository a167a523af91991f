//! The scheduler on the offline demo backend (on tokio's paused clock, so latencies cost no real
//! time) and on the OpenAI backend against the in-process fake server: the lifecycle and its
//! events, limits, ordering, pause, cancel, retry, shutdown and restart, and failures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use easel::api::{ClientOptions, GenerationParams, ProviderRules};
use easel::backend::Backend;
use easel::backend::demo::DemoBackend;
use easel::backend::openai::OpenAiBackend;
use easel::catalog::Catalog;
use easel::queue::{
    JobEvent, ProviderSlot, Scheduler, SchedulerConfig, SchedulerHandle, Submission,
};
use easel::secret::ApiKey;
use easel::store::{GenerationRecord, HistoryStore, Id, ImageFiles, QueueMove, SledStore, Status};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use support::fake_server::{FakeServer, Reply};
use tokio::sync::mpsc::UnboundedReceiver;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn demo_slot(latency_ms: u64, partials: u8, limit: usize) -> ProviderSlot {
    ProviderSlot {
        backend: Arc::new(DemoBackend::new(
            Duration::from_millis(latency_ms),
            partials,
        )),
        rules: ProviderRules::default(),
        limit,
    }
}

fn openai_slot(server: &FakeServer, max_retries: u32, limit: usize) -> ProviderSlot {
    let mut opts = ClientOptions::new("OpenAI", &server.base_url());
    opts.api_key = ApiKey::new("sk-test-scheduler");
    opts.max_retries = max_retries;
    let backend: Arc<dyn Backend> = Arc::new(OpenAiBackend::new(opts).unwrap());
    ProviderSlot {
        backend,
        rules: ProviderRules::default(),
        limit,
    }
}

fn params(prompt: &str) -> GenerationParams {
    GenerationParams {
        prompt: prompt.into(),
        size: Some("64x64".into()),
        ..Default::default()
    }
}

fn job(prompt: &str, provider: &str) -> Submission {
    Submission {
        params: params(prompt),
        provider: provider.into(),
        front: false,
        parent: None,
        run: None,
    }
}

/// How far along a status is, for "the store is never behind an event".
fn rank(s: Status) -> u8 {
    match s {
        Status::Queued => 0,
        Status::Running => 1,
        _ => 2,
    }
}

/// A short name for an event: "started a", "partial a 0", …, using prompts as names.
fn label(ev: &JobEvent, names: &HashMap<Id, String>) -> String {
    let name = |id: &Id| names.get(id).cloned().unwrap_or_else(|| id.short());
    match ev {
        JobEvent::Queued(r) => format!("queued {}", r.prompt),
        JobEvent::Started(r) => format!("started {}", r.prompt),
        JobEvent::Partial { id, index, .. } => format!("partial {} {index}", name(id)),
        JobEvent::Retrying { id, .. } => format!("retrying {}", name(id)),
        JobEvent::Succeeded(r) => format!("succeeded {}", r.prompt),
        JobEvent::Failed(r) => format!("failed {}", r.prompt),
        JobEvent::Cancelled(r) => format!("cancelled {}", r.prompt),
        JobEvent::Updated(r) => format!("updated {}", r.prompt),
        JobEvent::Deleted(id) => format!("deleted {}", name(id)),
        JobEvent::Restored(r) => format!("restored {}", r.prompt),
        JobEvent::Reordered(ids) => format!(
            "reordered {}",
            ids.iter().map(name).collect::<Vec<_>>().join(",")
        ),
        JobEvent::Paused(p) => format!("paused {p}"),
        JobEvent::RunPaused(run, p) => format!("run paused {} {p}", run.short()),
        JobEvent::BatchState { batch, state } => format!("batch {batch} {state}"),
        JobEvent::Problem(m) => format!("problem {m}"),
        JobEvent::NeedsCredential { id, provider } => {
            format!("needs {provider} {}", name(id))
        }
        JobEvent::Resync => "resync".into(),
        JobEvent::RateLimited { provider, .. } => format!("rate limited {provider}"),
    }
}

/// A scheduler with its store, and the events it has sent so far.
struct Rig {
    _dir: Option<tempfile::TempDir>,
    data: PathBuf,
    store: Arc<SledStore>,
    handle: SchedulerHandle,
    rx: UnboundedReceiver<JobEvent>,
    /// Every event received, as labels.
    seen: Vec<String>,
    names: HashMap<Id, String>,
    wait: Duration,
}

async fn start_on(
    store: Arc<SledStore>,
    files: ImageFiles,
    providers: Vec<(&str, ProviderSlot)>,
    concurrency: usize,
    resume: bool,
) -> (SchedulerHandle, UnboundedReceiver<JobEvent>) {
    let dyn_store: Arc<dyn HistoryStore> = store;
    let providers: HashMap<String, ProviderSlot> = providers
        .into_iter()
        .map(|(n, s)| (n.to_string(), s))
        .collect();
    let cfg = SchedulerConfig {
        concurrency,
        resume_queue: resume,
    };
    Scheduler::start(
        dyn_store,
        Arc::new(Catalog::builtin()),
        files,
        providers,
        cfg,
    )
    .await
    .unwrap()
}

impl Rig {
    async fn new(providers: Vec<(&str, ProviderSlot)>, concurrency: usize) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = Arc::new(SledStore::open(&data).unwrap());
        let (handle, rx) = start_on(
            store.clone(),
            ImageFiles::new(&data, None),
            providers,
            concurrency,
            true,
        )
        .await;
        Rig {
            _dir: Some(dir),
            data,
            store,
            handle,
            rx,
            seen: Vec::new(),
            names: HashMap::new(),
            wait: Duration::from_secs(30),
        }
    }

    /// A new scheduler on this rig's store (after a shutdown, say).
    async fn restart(
        &mut self,
        files: ImageFiles,
        providers: Vec<(&str, ProviderSlot)>,
        concurrency: usize,
        resume: bool,
    ) {
        let (handle, rx) =
            start_on(self.store.clone(), files, providers, concurrency, resume).await;
        self.handle = handle;
        self.rx = rx;
    }

    async fn submit(&mut self, s: Submission) -> Id {
        let name = s.params.prompt.clone();
        let id = self.handle.submit(s).await.unwrap();
        self.names.insert(id, name);
        id
    }

    fn stored(&self, id: Id) -> GenerationRecord {
        self.store
            .get(id)
            .unwrap()
            .unwrap_or_else(|| panic!("{id} is not in the store"))
    }

    /// The next event; checks that what it announces is already in the store.
    async fn next(&mut self) -> JobEvent {
        let ev = match tokio::time::timeout(self.wait, self.rx.recv()).await {
            Ok(Some(ev)) => ev,
            Ok(None) => panic!("the event channel closed; seen: {:?}", self.seen),
            Err(_) => panic!("no event within {:?}; seen: {:?}", self.wait, self.seen),
        };
        self.check_stored(&ev);
        self.seen.push(label(&ev, &self.names));
        ev
    }

    fn check_stored(&self, ev: &JobEvent) {
        let (r, want) = match ev {
            JobEvent::Queued(r) => (r, Status::Queued),
            JobEvent::Started(r) => (r, Status::Running),
            JobEvent::Succeeded(r) | JobEvent::Failed(r) | JobEvent::Cancelled(r) => (r, r.status),
            JobEvent::Partial { id, .. } | JobEvent::Retrying { id, .. } => {
                let stored = self.stored(*id);
                let now = stored.status;
                // (Or put back in the queue after a 429, its request counted.)
                assert!(
                    rank(now) >= 1 || (now == Status::Queued && stored.attempts >= 1),
                    "{} while the store says {now}",
                    label(ev, &self.names)
                );
                return;
            }
            _ => return,
        };
        assert_eq!(
            r.status,
            want,
            "{} carries a record that is {}",
            label(ev, &self.names),
            r.status
        );
        let stored = self.stored(r.id);
        // A job refused with a 429 goes from running back to queued (with the request it
        // sent counted): the one transition that goes back.
        let put_back =
            stored.status == Status::Queued && stored.attempts > r.attempts.saturating_sub(1);
        assert!(
            rank(stored.status) >= rank(want) || put_back,
            "{} announced while the store still says {}",
            label(ev, &self.names),
            stored.status
        );
        if rank(want) == 2 {
            // A final event carries exactly what was stored.
            assert_eq!(
                &stored,
                r.as_ref(),
                "{} differs from the stored record",
                label(ev, &self.names)
            );
        }
    }

    /// Events up to and including the first one for which `f` holds.
    async fn until(&mut self, mut f: impl FnMut(&JobEvent) -> bool) -> JobEvent {
        loop {
            let ev = self.next().await;
            if f(&ev) {
                return ev;
            }
        }
    }

    /// Events up to the end of job `id`; returns its final record.
    async fn finished(&mut self, id: Id) -> GenerationRecord {
        let ev = self
            .until(|e| e.finished().is_some_and(|r| r.id == id))
            .await;
        ev.finished().cloned().unwrap()
    }

    /// Asserts nothing is announced for `d`.
    async fn quiet(&mut self, d: Duration) {
        if let Ok(Some(ev)) = tokio::time::timeout(d, self.rx.recv()).await {
            panic!(
                "unexpected {} while it should be quiet; seen: {:?}",
                label(&ev, &self.names),
                self.seen
            );
        }
    }

    /// The labels seen so far that start with `prefix`.
    fn seen_starting(&self, prefix: &str) -> Vec<String> {
        self.seen
            .iter()
            .filter(|l| l.starts_with(prefix))
            .cloned()
            .collect()
    }

    fn queue_names(&self) -> Vec<String> {
        self.store
            .queue()
            .unwrap()
            .iter()
            .map(|r| r.prompt.clone())
            .collect()
    }
}

/// Every file under `dir` whose name mentions `id`.
fn files_of(dir: &Path, id: Id) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains(&id.to_string()))
            {
                out.push(p);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn demo_lifecycle_events_come_in_order_after_being_stored() {
    let mut rig = Rig::new(vec![("demo", demo_slot(900, 2, 1))], 2).await;
    let mut s = job("a lighthouse at dusk", "demo");
    s.params.stream = true;
    s.params.partial_images = Some(2);
    let id = rig.submit(s).await;

    // On the paused clock the job cannot move on while the test looks, so each status is exact.
    let JobEvent::Queued(r) = rig.next().await else {
        panic!("{:?}", rig.seen)
    };
    assert_eq!((r.id, r.attempts, r.demo), (id, 0, true));
    let JobEvent::Started(r) = rig.next().await else {
        panic!("{:?}", rig.seen)
    };
    assert_eq!(rig.stored(id).status, Status::Running);
    assert_eq!(r.attempts, 1);
    assert!(r.started.is_some());
    for k in 0..2 {
        let JobEvent::Partial {
            id: pid,
            index,
            bytes,
        } = rig.next().await
        else {
            panic!("{:?}", rig.seen)
        };
        assert_eq!((pid, index), (id, k));
        assert!(bytes.starts_with(b"\x89PNG"));
        assert_eq!(rig.stored(id).status, Status::Running);
    }
    let JobEvent::Succeeded(r) = rig.next().await else {
        panic!("{:?}", rig.seen)
    };
    assert_eq!(
        rig.seen,
        [
            "queued a lighthouse at dusk",
            "started a lighthouse at dusk",
            "partial a lighthouse at dusk 0",
            "partial a lighthouse at dusk 1",
            "succeeded a lighthouse at dusk"
        ]
    );
    assert_eq!(r.status, Status::Succeeded);
    assert_eq!(r.outputs.len(), 1);
    assert!(r.finished >= r.started);
    assert!(r.error.is_none());
    assert_eq!(r.cost_usd, Some(0.0));
    let image = rig.data.join(&r.outputs[0].path);
    assert!(image.is_file(), "{image:?}");
    assert!(image.with_extension("json").is_file());
    assert!(rig.store.queue().unwrap().is_empty());
    assert!(rig.store.doctor(false).unwrap().is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_lifecycle_events_come_in_order_after_being_stored() {
    let server = FakeServer::start().await;
    server.push(Reply::stream(2));
    let mut rig = Rig::new(vec![("openai", openai_slot(&server, 0, 2))], 2).await;
    let mut s = job("a red fox in snow", "openai");
    s.params.stream = true;
    s.params.partial_images = Some(2);
    let id = rig.submit(s).await;
    let r = rig.finished(id).await;
    assert_eq!(
        rig.seen,
        [
            "queued a red fox in snow",
            "started a red fox in snow",
            "partial a red fox in snow 0",
            "partial a red fox in snow 1",
            "succeeded a red fox in snow"
        ]
    );
    assert_eq!(r.status, Status::Succeeded);
    assert!(!r.demo);
    assert_eq!(r.attempts, 1);
    assert_eq!(r.request_id.as_deref(), Some("req_1"));
    assert!(r.usage.is_some());
    assert!(r.cost_usd.is_some_and(|c| c > 0.0));
    assert_eq!(r.outputs.len(), 1);
    assert!(rig.data.join(&r.outputs[0].path).is_file());
    assert_eq!(server.generation_count(), 1);
    assert_eq!(server.last_body().unwrap()["prompt"], "a red fox in snow");
}

// ---------------------------------------------------------------------------------------------
// Limits and order
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_holds_against_a_slow_server() {
    let server = Arc::new(FakeServer::start().await);
    server.set_latency(Duration::from_millis(200), Duration::from_millis(200));
    let mut rig = Rig::new(vec![("openai", openai_slot(&server, 0, 10))], 2).await;

    // Watch the server's open connections while the jobs run.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (server, stop) = (server.clone(), stop.clone());
        tokio::spawn(async move {
            let mut most = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                most = most.max(server.open_connections());
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            most
        })
    };
    let started = std::time::Instant::now();
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(rig.submit(job(&format!("job {i}"), "openai")).await);
    }
    let (mut running, mut most_running, mut done) = (0usize, 0usize, 0);
    while done < 6 {
        match rig.next().await {
            JobEvent::Started(_) => {
                running += 1;
                most_running = most_running.max(running);
            }
            JobEvent::Succeeded(_) => {
                running -= 1;
                done += 1;
            }
            JobEvent::Failed(r) => panic!("{} failed: {:?}", r.prompt, r.error),
            _ => {}
        }
    }
    let elapsed = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let most_open = sampler.await.unwrap();
    assert_eq!(most_running, 2, "{:?}", rig.seen);
    assert!(most_open <= 2, "{most_open} connections were open at once");
    assert!(
        elapsed >= Duration::from_millis(590),
        "six 200 ms jobs two at a time took only {elapsed:?}"
    );
    // When a request arrives, at most one earlier one is still being answered: so the third
    // request after any request comes at least one latency after it.
    let mut at: Vec<_> = server.generation_requests().iter().map(|r| r.at).collect();
    assert_eq!(at.len(), 6);
    at.sort();
    for w in at.windows(3) {
        let gap = w[2] - w[0];
        assert!(
            gap >= Duration::from_millis(190),
            "three requests within {gap:?}: more than two in flight"
        );
    }
    for id in ids {
        assert_eq!(rig.stored(id).status, Status::Succeeded);
    }
}

#[tokio::test(start_paused = true)]
async fn per_provider_limits_with_two_providers() {
    let mut rig = Rig::new(
        vec![
            ("one", demo_slot(1000, 0, 1)),
            ("two", demo_slot(700, 0, 2)),
        ],
        3,
    )
    .await;
    for i in 0..4 {
        rig.submit(job(&format!("one {i}"), "one")).await;
        rig.submit(job(&format!("two {i}"), "two")).await;
    }
    let mut running: HashMap<String, usize> = HashMap::new();
    let (mut most_one, mut most_two, mut most_total, mut done) = (0, 0, 0, 0);
    while done < 8 {
        match rig.next().await {
            JobEvent::Started(r) => {
                *running.entry(r.provider.clone()).or_default() += 1;
            }
            JobEvent::Succeeded(r) => {
                *running.get_mut(&r.provider).unwrap() -= 1;
                done += 1;
            }
            JobEvent::Failed(r) => panic!("{} failed: {:?}", r.prompt, r.error),
            _ => {}
        }
        let one = running.get("one").copied().unwrap_or(0);
        let two = running.get("two").copied().unwrap_or(0);
        most_one = most_one.max(one);
        most_two = most_two.max(two);
        most_total = most_total.max(one + two);
        assert!(
            one <= 1 && two <= 2,
            "one {one}, two {two} running at once: {:?}",
            rig.seen
        );
    }
    assert_eq!(
        (most_one, most_two, most_total),
        (1, 2, 3),
        "{:?}",
        rig.seen
    );
    // Each provider's jobs still start in the order they were queued.
    let starts = rig.seen_starting("started");
    for p in ["one", "two"] {
        let mine: Vec<&String> = starts
            .iter()
            .filter(|l| l.starts_with(&format!("started {p}")))
            .collect();
        let want: Vec<String> = (0..4).map(|i| format!("started {p} {i}")).collect();
        assert_eq!(mine, want.iter().collect::<Vec<_>>());
    }
}

#[tokio::test(start_paused = true)]
async fn jobs_start_in_fifo_order() {
    let mut rig = Rig::new(vec![("demo", demo_slot(100, 0, 4))], 1).await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c", "d", "e"] {
        ids.push(rig.submit(job(name, "demo")).await);
    }
    rig.finished(ids[4]).await;
    assert_eq!(
        rig.seen_starting("started"),
        [
            "started a",
            "started b",
            "started c",
            "started d",
            "started e"
        ]
    );
    // One at a time: each job finishes before the next one starts.
    let lifecycle: Vec<String> = rig
        .seen
        .iter()
        .filter(|l| l.starts_with("started") || l.starts_with("succeeded"))
        .cloned()
        .collect();
    let want: Vec<String> = ["a", "b", "c", "d", "e"]
        .iter()
        .flat_map(|n| [format!("started {n}"), format!("succeeded {n}")])
        .collect();
    assert_eq!(lifecycle, want);
}

/// A rig with its queue paused, and jobs `names` queued in that order.
async fn paused_with(names: &[&str]) -> (Rig, Vec<Id>) {
    let mut rig = Rig::new(vec![("demo", demo_slot(100, 0, 4))], 1).await;
    rig.handle.pause(true);
    rig.until(|e| matches!(e, JobEvent::Paused(true))).await;
    let mut ids = Vec::new();
    for name in names {
        ids.push(rig.submit(job(name, "demo")).await);
    }
    (rig, ids)
}

/// A job of run `run` (issue 14).
fn run_job(name: &str, run: Id, index: u32) -> Submission {
    let mut s = job(name, "demo");
    s.run = Some(easel::store::RunInfo {
        id: run,
        index,
        of: 2,
        values: easel::runs::JobValues {
            prompt_index: 1,
            template: "r{1|2}".into(),
            combination: u64::from(index - 1),
            alternatives: vec![],
            wildcards: vec![],
            axes: vec![],
            repeat: 1,
        },
    });
    s
}

#[tokio::test(start_paused = true)]
async fn a_paused_run_holds_its_jobs_and_the_others_go_on() {
    let (mut rig, _) = paused_with(&[]).await;
    let run = Id::new();
    rig.handle.pause_run(run, true);
    rig.until(|e| matches!(e, JobEvent::RunPaused(r, true) if *r == run))
        .await;
    let r1 = rig.submit(run_job("r1", run, 1)).await;
    let r2 = rig.submit(run_job("r2", run, 2)).await;
    let other = rig.submit(job("other", "demo")).await;
    rig.handle.pause(false);
    // The run's jobs are first in the queue, yet the job after them runs.
    rig.finished(other).await;
    rig.quiet(Duration::from_secs(5)).await;
    assert_eq!(rig.seen_starting("started"), ["started other"]);
    assert_eq!(rig.stored(r1).status, Status::Queued);
    assert_eq!(rig.stored(r2).status, Status::Queued);
    // Released, they run in their order.
    rig.handle.pause_run(run, false);
    rig.finished(r2).await;
    assert_eq!(
        rig.seen_starting("started"),
        ["started other", "started r1", "started r2"]
    );
    assert_eq!(rig.stored(r1).status, Status::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn a_run_is_queued_whole_or_not_at_all() {
    let (mut rig, _) = paused_with(&[]).await;
    let run = Id::new();
    let mut refused = run_job("r2", run, 2);
    refused.provider = "nowhere".into();
    let answer = rig
        .handle
        .submit_run(vec![run_job("r1", run, 1), refused, run_job("r3", run, 1)])
        .await;
    assert_eq!(answer, Err("no provider named nowhere".to_string()));
    // The two that were queued are cancelled, and nothing runs once the queue goes on.
    rig.until(|e| matches!(e, JobEvent::Cancelled(r) if r.prompt == "r3"))
        .await;
    rig.handle.pause(false);
    rig.until(|e| matches!(e, JobEvent::Paused(false))).await;
    rig.quiet(Duration::from_secs(5)).await;
    assert!(rig.seen_starting("started").is_empty(), "{:?}", rig.seen);
    assert_eq!(
        rig.seen_starting("cancelled"),
        ["cancelled r1", "cancelled r3"]
    );
    // A run the scheduler takes whole: every id, in order.
    let ids = rig
        .handle
        .submit_run(vec![run_job("s1", run, 1), run_job("s2", run, 2)])
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    let last = rig.finished(ids[1]).await;
    assert_eq!(last.status, Status::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn enqueue_at_the_front() {
    let (mut rig, ids) = paused_with(&["a", "b", "c"]).await;
    let mut urgent = job("urgent", "demo");
    urgent.front = true;
    let u = rig.submit(urgent).await;
    assert_eq!(rig.queue_names(), ["urgent", "a", "b", "c"]);
    // Announced where it will run, so a paused queue's list shows it first, not last.
    rig.until(|e| matches!(e, JobEvent::Reordered(_))).await;
    assert_eq!(rig.seen.last().unwrap(), "reordered urgent,a,b,c");
    rig.handle.pause(false);
    rig.finished(ids[2]).await;
    assert_eq!(
        rig.seen_starting("started"),
        ["started urgent", "started a", "started b", "started c"]
    );
    assert_eq!(rig.stored(u).status, Status::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn moves_change_the_start_order_while_paused() {
    let (mut rig, ids) = paused_with(&["a", "b", "c", "d"]).await;
    let (a, c, d) = (ids[0], ids[2], ids[3]);
    rig.handle.move_job(c, QueueMove::Up);
    rig.until(|e| matches!(e, JobEvent::Reordered(_))).await;
    assert_eq!(rig.queue_names(), ["a", "c", "b", "d"]);
    rig.handle.move_job(a, QueueMove::Down);
    rig.until(|e| matches!(e, JobEvent::Reordered(_))).await;
    assert_eq!(rig.queue_names(), ["c", "a", "b", "d"]);
    rig.handle.move_job(d, QueueMove::Front);
    let ev = rig.until(|e| matches!(e, JobEvent::Reordered(_))).await;
    assert_eq!(rig.seen.last().unwrap(), "reordered d,c,a,b", "{ev:?}");
    // Moves that cannot happen change nothing and announce nothing.
    rig.handle.move_job(d, QueueMove::Up);
    rig.handle.move_job(ids[1], QueueMove::Down);
    rig.handle.move_job(Id::new(), QueueMove::Front);
    rig.quiet(Duration::from_secs(5)).await;
    assert_eq!(rig.queue_names(), ["d", "c", "a", "b"]);

    rig.handle.pause(false);
    rig.finished(ids[1]).await;
    assert_eq!(
        rig.seen_starting("started"),
        ["started d", "started c", "started a", "started b"]
    );
}

#[tokio::test(start_paused = true)]
async fn pause_stops_new_starts_and_resume_continues() {
    let mut rig = Rig::new(vec![("demo", demo_slot(500, 0, 4))], 1).await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        ids.push(rig.submit(job(name, "demo")).await);
    }
    rig.until(|e| matches!(e, JobEvent::Started(_))).await;
    rig.handle.pause(true);
    // The running job finishes; nothing new starts, however long we wait.
    let r = rig.finished(ids[0]).await;
    assert_eq!(r.status, Status::Succeeded);
    assert!(
        rig.seen.contains(&"paused true".to_string()),
        "{:?}",
        rig.seen
    );
    rig.quiet(Duration::from_secs(60)).await;
    assert_eq!(rig.seen_starting("started"), ["started a"]);
    assert_eq!(rig.queue_names(), ["b", "c"]);
    assert_eq!(rig.stored(ids[1]).status, Status::Queued);

    rig.handle.pause(false);
    rig.finished(ids[2]).await;
    assert_eq!(
        rig.seen_starting("started"),
        ["started a", "started b", "started c"]
    );
    assert!(rig.seen.contains(&"paused false".to_string()));
    assert!(rig.store.queue().unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Cancel
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn cancelling_a_queued_job() {
    let (mut rig, ids) = paused_with(&["a", "b", "c"]).await;
    let b = ids[1];
    rig.handle.cancel(b);
    let ev = rig.until(|e| matches!(e, JobEvent::Cancelled(_))).await;
    let r = ev.finished().unwrap().clone();
    assert_eq!((r.id, r.status), (b, Status::Cancelled));
    assert!(r.finished.is_some());
    assert_eq!(rig.queue_names(), ["a", "c"]);
    rig.handle.pause(false);
    rig.finished(ids[2]).await;
    assert_eq!(rig.seen_starting("started"), ["started a", "started c"]);
    let stored = rig.stored(b);
    assert_eq!(stored.status, Status::Cancelled);
    assert_eq!((stored.attempts, stored.started), (0, None));
    // Cancelling it again, or an unknown id, does nothing.
    rig.handle.cancel(b);
    rig.handle.cancel(Id::new());
    rig.quiet(Duration::from_secs(5)).await;
    assert_eq!(rig.stored(b).status, Status::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_job_on_a_hanging_server() {
    let server = FakeServer::start().await;
    server.push(Reply::hang());
    let mut rig = Rig::new(vec![("openai", openai_slot(&server, 0, 2))], 2).await;
    let id = rig.submit(job("never answered", "openai")).await;
    rig.until(|e| matches!(e, JobEvent::Started(_))).await;
    assert!(server.wait_for_requests(1, Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let asked = std::time::Instant::now();
    rig.handle.cancel(id);
    let r = rig.finished(id).await;
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "cancelling took {:?}",
        asked.elapsed()
    );
    assert_eq!(r.status, Status::Cancelled);
    assert!(r.outputs.is_empty());
    assert_eq!(rig.stored(id).status, Status::Cancelled);
    assert!(rig.store.queue().unwrap().is_empty());
    assert!(
        files_of(&rig.data.join("images"), id).is_empty(),
        "{:?}",
        files_of(&rig.data, id)
    );
    assert!(files_of(&rig.data, id).is_empty());
    // The request was really dropped.
    assert!(
        server
            .wait_for_open_connections(0, Duration::from_secs(5))
            .await
    );

    // The scheduler goes on with the next job.
    let next = rig.submit(job("answered", "openai")).await;
    assert_eq!(rig.finished(next).await.status, Status::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_running_demo_job_leaves_no_files() {
    let mut rig = Rig::new(vec![("demo", demo_slot(3000, 2, 1))], 1).await;
    let mut s = job("half drawn", "demo");
    s.params.stream = true;
    s.params.partial_images = Some(2);
    let id = rig.submit(s).await;
    rig.until(|e| matches!(e, JobEvent::Partial { .. })).await;
    rig.handle.cancel(id);
    let r = rig.finished(id).await;
    assert_eq!(r.status, Status::Cancelled);
    assert_eq!(rig.stored(id).status, Status::Cancelled);
    assert!(
        files_of(&rig.data, id).is_empty(),
        "{:?}",
        files_of(&rig.data, id)
    );
}

// ---------------------------------------------------------------------------------------------
// Retry
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_a_failed_job_reuses_its_id() {
    let server = FakeServer::start().await;
    server.push(Reply::error(
        400,
        "invalid_request_error",
        "invalid_value",
        "Something about the request was off.",
    ));
    let mut rig = Rig::new(vec![("openai", openai_slot(&server, 0, 2))], 2).await;
    let id = rig.submit(job("second time lucky", "openai")).await;
    let failed = rig.finished(id).await;
    assert_eq!(failed.status, Status::Failed);
    assert_eq!(failed.attempts, 1);
    let error = failed.error.clone().unwrap();
    assert_eq!(error.kind, "invalid_request");
    assert_eq!(error.request_id.as_deref(), Some("req_1"));

    rig.handle.retry(id);
    let JobEvent::Queued(q) = rig.next().await else {
        panic!("{:?}", rig.seen)
    };
    assert_eq!(q.id, id);
    assert!(q.error.is_none() && q.finished.is_none());
    let done = rig.finished(id).await;
    assert_eq!(done.status, Status::Succeeded);
    assert_eq!(done.id, id);
    assert!(
        done.attempts > failed.attempts,
        "attempts {} then {}",
        failed.attempts,
        done.attempts
    );
    assert!(done.error.is_none());
    assert_eq!(done.request_id.as_deref(), Some("req_2"));
    assert_eq!(done.outputs.len(), 1);
    assert_eq!(
        rig.seen,
        [
            "queued second time lucky",
            "started second time lucky",
            "failed second time lucky",
            "queued second time lucky",
            "started second time lucky",
            "succeeded second time lucky"
        ]
    );
    assert_eq!(rig.store.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn retrying_a_succeeded_job_is_a_problem() {
    let mut rig = Rig::new(vec![("demo", demo_slot(10, 0, 1))], 1).await;
    let id = rig.submit(job("already fine", "demo")).await;
    let before = rig.finished(id).await;
    rig.handle.retry(id);
    let ev = rig.next().await;
    let JobEvent::Problem(message) = ev else {
        panic!("{:?}", rig.seen)
    };
    assert!(
        message.contains("succeeded") && message.contains("retried"),
        "{message}"
    );
    rig.quiet(Duration::from_secs(5)).await;
    assert_eq!(rig.stored(id), before);
    // An unknown id is ignored.
    rig.handle.retry(Id::new());
    rig.quiet(Duration::from_secs(5)).await;
}

// ---------------------------------------------------------------------------------------------
// Shutdown and restart
// ---------------------------------------------------------------------------------------------

/// One job running (on a demo that takes a minute), one queued; then shut down.
async fn shut_down_with_one_running_one_queued() -> (Rig, Id, Id) {
    let mut rig = Rig::new(vec![("demo", demo_slot(60_000, 0, 1))], 1).await;
    let running = rig.submit(job("running", "demo")).await;
    let queued = rig.submit(job("waiting", "demo")).await;
    rig.until(|e| matches!(e, JobEvent::Started(_))).await;
    rig.handle.shutdown().await;
    let r = rig.stored(running);
    assert_eq!(r.status, Status::Interrupted);
    assert_eq!(
        r.error.as_ref().map(|e| e.kind.as_str()),
        Some("interrupted")
    );
    assert!(r.outputs.is_empty());
    assert_eq!(rig.stored(queued).status, Status::Queued);
    assert_eq!(rig.queue_names(), ["waiting"]);
    // No cancellation is announced for the interrupted job.
    while let Ok(ev) = rig.rx.try_recv() {
        rig.seen.push(label(&ev, &rig.names));
    }
    assert!(
        !rig.seen
            .iter()
            .any(|l| l.starts_with("cancelled") || l.starts_with("failed")),
        "{:?}",
        rig.seen
    );
    (rig, running, queued)
}

#[tokio::test(start_paused = true)]
async fn shutdown_then_restart_runs_the_queued_job() {
    let (mut rig, running, queued) = shut_down_with_one_running_one_queued().await;
    rig.seen.clear();
    let files = ImageFiles::new(&rig.data, None);
    rig.restart(files, vec![("demo", demo_slot(10, 0, 1))], 1, true)
        .await;
    let r = rig.finished(queued).await;
    assert_eq!(r.status, Status::Succeeded);
    assert_eq!(rig.seen, ["started waiting", "succeeded waiting"]);
    // The interrupted one waits for a retry.
    rig.quiet(Duration::from_secs(5)).await;
    assert_eq!(rig.stored(running).status, Status::Interrupted);
    rig.handle.retry(running);
    assert_eq!(rig.finished(running).await.status, Status::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn restart_without_resume_leaves_the_queue_alone() {
    let (mut rig, running, queued) = shut_down_with_one_running_one_queued().await;
    rig.seen.clear();
    let files = ImageFiles::new(&rig.data, None);
    rig.restart(files, vec![("demo", demo_slot(10, 0, 1))], 1, false)
        .await;
    rig.quiet(Duration::from_secs(30)).await;
    assert_eq!(rig.stored(queued).status, Status::Queued);
    assert_eq!(rig.stored(running).status, Status::Interrupted);
    assert_eq!(rig.queue_names(), ["waiting"]);
    // New work still runs.
    let fresh = rig.submit(job("fresh", "demo")).await;
    assert_eq!(rig.finished(fresh).await.status, Status::Succeeded);
    assert_eq!(rig.stored(queued).status, Status::Queued);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_interrupts_a_request_in_flight() {
    let server = FakeServer::start().await;
    server.push(Reply::hang());
    let mut rig = Rig::new(vec![("openai", openai_slot(&server, 0, 1))], 1).await;
    let running = rig.submit(job("in flight", "openai")).await;
    let queued = rig.submit(job("behind it", "openai")).await;
    rig.until(|e| matches!(e, JobEvent::Started(_))).await;
    assert!(server.wait_for_requests(1, Duration::from_secs(10)).await);
    tokio::time::timeout(Duration::from_secs(5), rig.handle.shutdown())
        .await
        .expect("shutdown hung");
    assert_eq!(rig.stored(running).status, Status::Interrupted);
    assert_eq!(rig.stored(queued).status, Status::Queued);
    assert!(
        server
            .wait_for_open_connections(0, Duration::from_secs(5))
            .await
    );
    assert_eq!(server.generation_count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_failing_disk_write_fails_the_job_with_a_storage_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = Arc::new(SledStore::open(&data).unwrap());
    // The folder images should go to is a regular file: saving fails (even as root). Images
    // that --out cannot take are kept in the data folder, so that one is unusable too.
    let not_a_folder = dir.path().join("not-a-folder");
    std::fs::write(&not_a_folder, b"in the way").unwrap();
    let bad = ImageFiles::new(&not_a_folder.join("data"), Some(&not_a_folder));
    let (handle, rx) = start_on(
        store.clone(),
        bad,
        vec![("demo", demo_slot(10, 0, 1))],
        1,
        true,
    )
    .await;
    let mut rig = Rig {
        _dir: Some(dir),
        data: data.clone(),
        store,
        handle,
        rx,
        seen: Vec::new(),
        names: HashMap::new(),
        wait: Duration::from_secs(30),
    };

    let id = rig.submit(job("nowhere to put it", "demo")).await;
    let r = rig.finished(id).await;
    assert_eq!(r.status, Status::Failed, "{:?}", rig.seen);
    let error = r.error.clone().unwrap();
    assert_eq!(error.kind, "storage", "{error:?}");
    assert!(error.message.contains("not-a-folder"), "{error:?}");
    assert!(r.outputs.is_empty());
    assert_eq!(std::fs::read(&not_a_folder).unwrap(), b"in the way");
    // The store is consistent: the job is over, nothing dangles.
    assert!(rig.store.queue().unwrap().is_empty());
    let report = rig.store.doctor(false).unwrap();
    assert!(
        report.is_clean() && report.unreferenced_files.is_empty(),
        "{report:?}"
    );
    rig.handle.shutdown().await;

    // With a good folder, the next job goes through.
    rig.restart(
        ImageFiles::new(&data, None),
        vec![("demo", demo_slot(10, 0, 1))],
        1,
        true,
    )
    .await;
    let next = rig.submit(job("somewhere to put it", "demo")).await;
    let r = rig.finished(next).await;
    assert_eq!(r.status, Status::Succeeded);
    assert!(data.join(&r.outputs[0].path).is_file());
    assert_eq!(rig.stored(id).status, Status::Failed);
    assert!(rig.store.doctor(false).unwrap().is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_after_the_last_retry_fail_with_the_request_id() {
    let server = FakeServer::start().await;
    server.set_default(Reply::server_error().with_header("retry-after-ms", "1"));
    let mut rig = Rig::new(vec![("openai", openai_slot(&server, 1, 1))], 1).await;
    let id = rig.submit(job("the server is down", "openai")).await;
    let r = rig.finished(id).await;
    assert_eq!(r.status, Status::Failed);
    assert_eq!(server.generation_count(), 2, "one try and one retry");
    let error = r.error.clone().unwrap();
    assert_eq!(error.kind, "server");
    assert_eq!(error.status, Some(500));
    assert_eq!(error.request_id.as_deref(), Some("req_2"));
    assert_eq!(r.request_id.as_deref(), Some("req_2"));
    assert!(error.hint.is_some());
    assert_eq!(
        rig.seen,
        [
            "queued the server is down",
            "started the server is down",
            "retrying the server is down",
            "failed the server is down"
        ]
    );
    assert_eq!(rig.stored(id), r);
    assert!(rig.store.queue().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn submissions_that_cannot_be_sent_are_refused_up_front() {
    let mut rig = Rig::new(vec![("demo", demo_slot(10, 0, 1))], 1).await;
    let e = rig
        .handle
        .submit(job("somewhere", "nope"))
        .await
        .unwrap_err();
    assert!(e.contains("nope"), "{e}");
    let e = rig.handle.submit(job("   ", "demo")).await.unwrap_err();
    assert!(e.contains("prompt"), "{e}");
    rig.quiet(Duration::from_secs(1)).await;
    assert!(rig.store.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_job_left_running_by_a_crash_is_interrupted_at_start_not_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = Arc::new(SledStore::open(&data).unwrap());
    let mut crashed = GenerationRecord::queued(
        Id::new(),
        params("was running"),
        "demo",
        true,
        chrono::Utc::now(),
    );
    crashed.status = Status::Running;
    crashed.attempts = 1;
    store.put(&crashed).unwrap();
    let waiting = GenerationRecord::queued(
        Id::new(),
        params("was waiting"),
        "demo",
        true,
        chrono::Utc::now(),
    );
    store.enqueue(&waiting, false).unwrap();

    let (handle, rx) = start_on(
        store.clone(),
        ImageFiles::new(&data, None),
        vec![("demo", demo_slot(10, 0, 1))],
        1,
        true,
    )
    .await;
    let mut rig = Rig {
        _dir: Some(dir),
        data,
        store,
        handle,
        rx,
        seen: Vec::new(),
        names: HashMap::new(),
        wait: Duration::from_secs(30),
    };
    let r = rig.finished(waiting.id).await;
    assert_eq!(r.status, Status::Succeeded);
    rig.quiet(Duration::from_secs(5)).await;
    assert_eq!(rig.seen, ["started was waiting", "succeeded was waiting"]);
    let c = rig.stored(crashed.id);
    assert_eq!(c.status, Status::Interrupted);
    assert_eq!(c.attempts, 1);
    assert!(rig.store.queue().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_queued_job_of_a_missing_provider_waits_without_blocking_others() {
    let (mut rig, _running, queued) = shut_down_with_one_running_one_queued().await;
    rig.seen.clear();
    // The demo provider is not there this time (no key for it, say); another one is.
    let files = ImageFiles::new(&rig.data, None);
    rig.restart(files, vec![("other", demo_slot(10, 0, 1))], 1, true)
        .await;
    let other = rig.submit(job("on the other one", "other")).await;
    assert_eq!(rig.finished(other).await.status, Status::Succeeded);
    rig.quiet(Duration::from_secs(10)).await;
    assert_eq!(rig.stored(queued).status, Status::Queued);
    assert_eq!(rig.queue_names(), ["waiting"]);
    // Cancelling it still works.
    rig.handle.cancel(queued);
    assert_eq!(rig.finished(queued).await.status, Status::Cancelled);
    assert!(rig.store.queue().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_stopped_scheduler_refuses_new_work() {
    let (rig, _running, _queued) = shut_down_with_one_running_one_queued().await;
    let e = rig
        .handle
        .submit(job("too late", "demo"))
        .await
        .unwrap_err();
    assert!(e.contains("stopped"), "{e}");
    // A second shutdown returns at once.
    tokio::time::timeout(Duration::from_secs(1), rig.handle.shutdown())
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_job_queued_by_a_dead_generate_is_not_run_by_the_next_scheduler() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = Arc::new(SledStore::open(&data).unwrap());
    let mut orphan = GenerationRecord::queued(
        Id::new(),
        params("queued by generate"),
        "demo",
        true,
        chrono::Utc::now(),
    );
    orphan.headless = true;
    store.enqueue(&orphan, false).unwrap();
    let waiting = GenerationRecord::queued(
        Id::new(),
        params("queued in the studio"),
        "demo",
        true,
        chrono::Utc::now(),
    );
    store.enqueue(&waiting, false).unwrap();

    let (handle, rx) = start_on(
        store.clone(),
        ImageFiles::new(&data, None),
        vec![("demo", demo_slot(10, 0, 1))],
        1,
        true,
    )
    .await;
    let mut rig = Rig {
        _dir: Some(dir),
        data,
        store,
        handle,
        rx,
        seen: Vec::new(),
        names: HashMap::new(),
        wait: Duration::from_secs(30),
    };
    assert_eq!(rig.finished(waiting.id).await.status, Status::Succeeded);
    rig.quiet(Duration::from_secs(5)).await;
    assert_eq!(
        rig.seen,
        [
            "started queued in the studio",
            "succeeded queued in the studio"
        ]
    );
    let o = rig.stored(orphan.id);
    assert_eq!(o.status, Status::Interrupted);
    assert!(o.error.unwrap().message.contains("easel generate"));
    // Retried from the studio, it runs, and is the studio's job from then on.
    rig.handle.retry(orphan.id);
    let r = rig.finished(orphan.id).await;
    assert_eq!(r.status, Status::Succeeded);
    assert!(!r.headless);
}

// ---------------------------------------------------------------------------------------------
// One writer per record: the scheduler applies stars, tags and deletes in order with its jobs'
// own transitions, so none is lost and nothing deleted comes back.
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_star_on_a_running_job_survives_its_end() {
    let mut rig = Rig::new(vec![("demo", demo_slot(3000, 0, 1))], 1).await;
    let id = rig.submit(job("starred while running", "demo")).await;
    rig.until(|e| matches!(e, JobEvent::Started(_))).await;
    let starred = rig.handle.star(id, true).await.unwrap();
    assert!(starred.starred);
    rig.handle.set_tags(id, vec!["keep".into()]).await.unwrap();
    let r = rig.finished(id).await;
    assert_eq!(r.status, Status::Succeeded);
    assert!(r.starred, "the job's end dropped the star: {r:?}");
    assert_eq!(r.tags, ["keep"]);
    let stored = rig.stored(id);
    assert!(stored.starred && stored.tags == ["keep"], "{stored:?}");
    assert!(
        rig.seen
            .contains(&"updated starred while running".to_string())
    );
}

#[tokio::test(start_paused = true)]
async fn a_star_on_a_queued_job_survives_its_run() {
    let (mut rig, ids) = paused_with(&["a", "b"]).await;
    rig.handle.star(ids[1], true).await.unwrap();
    rig.handle.pause(false);
    let r = rig.finished(ids[1]).await;
    assert!(r.starred && rig.stored(ids[1]).starred, "{r:?}");
}

#[tokio::test(start_paused = true)]
async fn deleting_a_queued_job_takes_it_out_and_it_never_runs() {
    let (mut rig, ids) = paused_with(&["a", "b", "c"]).await;
    rig.until(|e| matches!(e, JobEvent::Queued(r) if r.prompt == "c"))
        .await;
    let old = rig.handle.delete(ids[1]).await.unwrap();
    assert_eq!(old.map(|r| r.id), Some(ids[1]));
    assert_eq!(rig.queue_names(), ["a", "c"]);
    rig.handle.pause(false);
    rig.finished(ids[2]).await;
    rig.quiet(Duration::from_secs(30)).await;
    assert_eq!(rig.seen_starting("started"), ["started a", "started c"]);
    assert!(rig.store.get(ids[1]).unwrap().is_none());
    assert!(
        rig.seen.contains(&"deleted b".to_string()),
        "{:?}",
        rig.seen
    );
}

#[tokio::test(start_paused = true)]
async fn deleting_a_running_job_cancels_it_and_it_stays_deleted() {
    let mut rig = Rig::new(vec![("demo", demo_slot(3000, 2, 1))], 1).await;
    let mut s = job("deleted mid-flight", "demo");
    s.params.stream = true;
    s.params.partial_images = Some(2);
    let id = rig.submit(s).await;
    let next = rig.submit(job("the next one", "demo")).await;
    rig.until(|e| matches!(e, JobEvent::Partial { .. })).await;
    rig.handle.delete(id).await.unwrap();
    // The next job runs; the deleted one neither ends in history nor leaves files.
    rig.finished(next).await;
    rig.quiet(Duration::from_secs(30)).await;
    assert!(rig.store.get(id).unwrap().is_none(), "it came back");
    assert!(
        files_of(&rig.data, id).is_empty(),
        "{:?}",
        files_of(&rig.data, id)
    );
    assert!(
        !rig.seen.iter().any(|l| l.starts_with("succeeded deleted")
            || l.starts_with("cancelled deleted")
            || l.starts_with("failed deleted")),
        "{:?}",
        rig.seen
    );
    assert!(rig.store.doctor(false).unwrap().is_clean());
}

#[tokio::test(start_paused = true)]
async fn a_delete_after_the_job_saved_its_images_removes_them() {
    let mut rig = Rig::new(vec![("demo", demo_slot(100, 0, 1))], 1).await;
    let id = rig.submit(job("made then deleted", "demo")).await;
    let r = rig.finished(id).await;
    assert!(!r.outputs.is_empty());
    rig.handle.delete(id).await.unwrap();
    assert!(rig.store.get(id).unwrap().is_none());
    // In the trash, with its files, until the trash is emptied; or back with `restore`.
    assert_eq!(rig.store.trashed().unwrap()[0].1.id, id);
    assert!(!files_of(&rig.data, id).is_empty());
    let back = rig.handle.restore(id).await.unwrap();
    assert_eq!(back.outputs, r.outputs);
    assert_eq!(rig.stored(id).status, Status::Succeeded);
    rig.handle.delete(id).await.unwrap();
    assert_eq!(rig.store.empty_trash(None).unwrap(), 1);
    assert!(files_of(&rig.data, id).is_empty());
    assert!(rig.store.doctor(false).unwrap().is_clean());
}

#[tokio::test(start_paused = true)]
async fn submissions_are_queued_in_the_order_they_were_made() {
    let (rig, _) = paused_with(&[]).await;
    // Sent one after the other, awaited in the other order (as two quick Ctrl-S whose answers
    // are awaited on separate tasks).
    let first = rig.handle.submit_in_order(job("first", "demo"));
    let second = rig.handle.submit_in_order(job("second", "demo"));
    let b = tokio::spawn(second);
    tokio::task::yield_now().await;
    let a = tokio::spawn(first);
    b.await.unwrap().unwrap();
    a.await.unwrap().unwrap();
    assert_eq!(rig.queue_names(), ["first", "second"]);
}

/// A store whose writes of running records fail (a full disk at the wrong moment).
struct FailsRunning(Arc<SledStore>);

impl HistoryStore for FailsRunning {
    fn put(&self, r: &GenerationRecord) -> Result<(), easel::store::StoreError> {
        if r.status == Status::Running {
            return Err(easel::store::StoreError::Io(
                "No space left on device".into(),
            ));
        }
        self.0.put(r)
    }
    fn enqueue(&self, r: &GenerationRecord, front: bool) -> Result<(), easel::store::StoreError> {
        self.0.enqueue(r, front)
    }
    fn get(&self, id: Id) -> Result<Option<GenerationRecord>, easel::store::StoreError> {
        self.0.get(id)
    }
    fn resolve(&self, text: &str) -> Result<Id, easel::store::StoreError> {
        self.0.resolve(text)
    }
    fn page(
        &self,
        q: &easel::store::Query,
        c: Option<easel::store::Cursor>,
        limit: usize,
    ) -> Result<easel::store::Page, easel::store::StoreError> {
        self.0.page(q, c, limit)
    }
    fn count(&self, q: &easel::store::Query) -> Result<usize, easel::store::StoreError> {
        self.0.count(q)
    }
    fn set_starred(&self, id: Id, on: bool) -> Result<GenerationRecord, easel::store::StoreError> {
        self.0.set_starred(id, on)
    }
    fn set_tags(
        &self,
        id: Id,
        tags: Vec<String>,
    ) -> Result<GenerationRecord, easel::store::StoreError> {
        self.0.set_tags(id, tags)
    }
    fn delete(&self, id: Id) -> Result<Option<GenerationRecord>, easel::store::StoreError> {
        self.0.delete(id)
    }
    fn queue(&self) -> Result<Vec<GenerationRecord>, easel::store::StoreError> {
        self.0.queue()
    }
    fn move_in_queue(&self, id: Id, how: QueueMove) -> Result<bool, easel::store::StoreError> {
        self.0.move_in_queue(id, how)
    }
    fn recover(&self) -> Result<easel::store::Recovery, easel::store::StoreError> {
        self.0.recover()
    }
    fn for_each(
        &self,
        f: &mut dyn FnMut(GenerationRecord) -> Result<(), easel::store::StoreError>,
    ) -> Result<(), easel::store::StoreError> {
        self.0.for_each(f)
    }
    fn stats(&self) -> Result<easel::store::Stats, easel::store::StoreError> {
        self.0.stats()
    }
    fn doctor(&self, repair: bool) -> Result<easel::store::DoctorReport, easel::store::StoreError> {
        self.0.doctor(repair)
    }
    fn skipped(&self) -> Vec<easel::store::BadRecord> {
        self.0.skipped()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

#[tokio::test(start_paused = true)]
async fn a_job_whose_start_cannot_be_recorded_fails_instead_of_staying_queued() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let inner = Arc::new(SledStore::open(&data).unwrap());
    let store: Arc<dyn HistoryStore> = Arc::new(FailsRunning(inner.clone()));
    let (handle, mut rx) = Scheduler::start(
        store,
        Arc::new(Catalog::builtin()),
        ImageFiles::new(&data, None),
        [("demo".to_string(), demo_slot(10, 0, 1))]
            .into_iter()
            .collect(),
        SchedulerConfig {
            concurrency: 1,
            resume_queue: true,
        },
    )
    .await
    .unwrap();
    let id = handle
        .submit(job("no room to start", "demo"))
        .await
        .unwrap();
    let failed = loop {
        let ev = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("no event")
            .expect("channel closed");
        if let JobEvent::Failed(r) = ev {
            break r;
        }
    };
    assert_eq!(failed.id, id);
    assert_eq!(failed.status, Status::Failed);
    let e = failed.error.clone().unwrap();
    assert_eq!(e.kind, "storage", "{e:?}");
    assert!(e.message.contains("No space left"), "{e:?}");
    // Recorded as failed, not left queued for ever.
    assert_eq!(inner.get(id).unwrap().unwrap().status, Status::Failed);
    assert!(inner.queue().unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Jobs with their own provider (the service's clients) and jobs waiting for a key
// ---------------------------------------------------------------------------------------------

/// A job submitted with its own slot runs on it even though the scheduler has no provider of
/// that name; the scheduler keeps the slot only until the job starts.
#[tokio::test(start_paused = true)]
async fn a_job_runs_with_the_slot_it_was_submitted_with() {
    let mut rig = Rig::new(vec![], 2).await;
    let s = job("with its own key", "openai");
    let id = rig
        .handle
        .submit_with(s, demo_slot(100, 0, 1), None)
        .await
        .unwrap();
    rig.names.insert(id, "with its own key".into());
    let r = rig.finished(id).await;
    assert_eq!(r.status, Status::Succeeded, "{:?}", rig.seen);
    assert!(
        !rig.seen.iter().any(|l| l.starts_with("needs")),
        "{:?}",
        rig.seen
    );
}

/// A queued job of a provider with no key here (a service restarted) waits and says so once;
/// a client offering that provider's key lets it run. A job of another provider is untouched.
#[tokio::test(start_paused = true)]
async fn a_job_without_a_key_waits_until_a_client_provides_one() {
    let mut rig = Rig::new(vec![("demo", demo_slot(100, 0, 1))], 2).await;
    // Queued by an earlier run: stored queued, for a provider this scheduler does not have.
    let waiting = GenerationRecord::queued(
        Id::new(),
        params("waits for a key"),
        "openai",
        false,
        chrono::Utc::now(),
    );
    rig.store.enqueue(&waiting, false).unwrap();
    rig.names.insert(waiting.id, "waits for a key".into());
    let dir = rig.data.clone();
    rig.restart(
        ImageFiles::new(&dir, None),
        vec![("demo", demo_slot(100, 0, 1))],
        2,
        true,
    )
    .await;
    let ev = rig
        .until(|e| matches!(e, JobEvent::NeedsCredential { .. }))
        .await;
    let JobEvent::NeedsCredential { id, provider } = ev else {
        unreachable!()
    };
    assert_eq!((id, provider.as_str()), (waiting.id, "openai"));
    // Other jobs run meanwhile.
    let other = rig.submit(job("runs meanwhile", "demo")).await;
    assert_eq!(rig.finished(other).await.status, Status::Succeeded);
    assert_eq!(rig.stored(waiting.id).status, Status::Queued);
    let counts = rig.handle.counts().await;
    assert_eq!((counts.queued, counts.waiting), (1, 1));
    // A key for another provider changes nothing; the right one lets it run.
    rig.handle.send(easel::queue::Command::Provide(
        "xai".into(),
        demo_slot(100, 0, 1),
    ));
    rig.handle.send(easel::queue::Command::Provide(
        "openai".into(),
        demo_slot(100, 0, 1),
    ));
    let r = rig.finished(waiting.id).await;
    assert_eq!(r.status, Status::Succeeded, "{:?}", rig.seen);
    assert_eq!(
        rig.seen.iter().filter(|l| l.starts_with("needs")).count(),
        1,
        "said once: {:?}",
        rig.seen
    );
}

// ---------------------------------------------------------------------------------------------
// Rate limits (issue 14)
// ---------------------------------------------------------------------------------------------

/// The OpenAI backend as the engine builds it: 429s come back to the scheduler at once.
fn paced_slot(server: &FakeServer, max_retries: u32, limit: usize) -> ProviderSlot {
    let mut opts = ClientOptions::new("OpenAI", &server.base_url());
    opts.api_key = ApiKey::new("sk-test-scheduler");
    opts.max_retries = max_retries;
    opts.defer_rate_limits = true;
    ProviderSlot {
        backend: Arc::new(OpenAiBackend::new(opts).unwrap()),
        rules: ProviderRules::default(),
        limit,
    }
}

/// A 429 puts the job back in the queue instead of using up its retries: with no retries at
/// all it still succeeds once the wait is over, and the wait is announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_requeues_the_job_without_using_its_retries() {
    let server = FakeServer::start().await;
    server.push_all([
        Reply::rate_limited(Some(300), None),
        Reply::rate_limited(Some(300), None),
        Reply::image(),
    ]);
    let mut rig = Rig::new(vec![("openai", paced_slot(&server, 0, 2))], 2).await;
    let started = std::time::Instant::now();
    let id = rig.submit(job("patient", "openai")).await;
    let r = rig.finished(id).await;
    assert_eq!(r.status, Status::Succeeded, "{:?}", rig.seen);
    assert_eq!(r.attempts, 3, "every request counted");
    assert!(
        started.elapsed() >= Duration::from_millis(550),
        "the waits were kept: {:?}",
        started.elapsed()
    );
    assert_eq!(server.generation_count(), 3);
    assert_eq!(rig.seen_starting("rate limited").len(), 2, "{:?}", rig.seen);
    assert_eq!(rig.seen_starting("started").len(), 3, "{:?}", rig.seen);
    assert_eq!(rig.seen_starting("retrying").len(), 2, "{:?}", rig.seen);

    // Out of credit is a 429 too, but waiting does not help it: it fails at once.
    server.push(Reply::insufficient_quota());
    let id = rig.submit(job("broke", "openai")).await;
    let r = rig.finished(id).await;
    assert_eq!(r.status, Status::Failed);
    assert_eq!(r.error.unwrap().kind, "quota_exceeded");
}

/// A run wider than the provider's limit: the scheduler halves its concurrency on the first
/// 429s and then spaces starts by the rate-limit headers, so every job succeeds (with no
/// retries) and few requests are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_rides_a_rate_limit_without_a_storm_of_429s() {
    let server = FakeServer::start().await;
    // 10 a second, a burst of 3; 50 ms an image.
    server.set_rate_limit(600, 3);
    server.set_latency(Duration::from_millis(50), Duration::from_millis(50));
    let mut rig = Rig::new(vec![("openai", paced_slot(&server, 0, 8))], 8).await;
    let started = std::time::Instant::now();
    let mut ids = Vec::new();
    for i in 0..15 {
        ids.push(rig.submit(job(&format!("job {i}"), "openai")).await);
    }
    // They end in any order (a refused job runs again later).
    let mut ended = std::collections::HashSet::new();
    while ended.len() < ids.len() {
        let ev = rig.until(|e| e.finished().is_some()).await;
        let r = ev.finished().unwrap();
        assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
        ended.insert(r.id);
    }
    let elapsed = started.elapsed();
    let (refused, admitted) = server.rate_limit_counts();
    assert_eq!(admitted, 15);
    // The first burst meets the limit (8 sent, 3 pass); after that, starts are paced.
    assert!(refused <= 8, "{refused} 429s; seen {:?}", rig.seen);
    assert!(!rig.seen_starting("rate limited").is_empty());
    // 3 at once, then 12 at 10 a second: about 1.2 s (never the 429 storm of a fixed loop).
    assert!(
        elapsed < Duration::from_secs(5),
        "{elapsed:?} for 15 jobs at 10/s"
    );
}

/// A studio that starts (or subscribes to the service) after a run was paused learns it: the
/// scheduler says again which runs (and whether the queue) are held. A run held with P, the
/// studio quit and started again used to show its jobs as plainly queued while none started.
#[tokio::test(start_paused = true)]
async fn the_runs_held_are_announced_again_on_request() {
    let (mut rig, _) = paused_with(&[]).await;
    let (held, let_go) = (Id::new(), Id::new());
    rig.handle.pause_run(held, true);
    rig.handle.pause_run(let_go, true);
    rig.handle.pause_run(let_go, false);
    rig.until(|e| matches!(e, JobEvent::RunPaused(r, false) if *r == let_go))
        .await;
    rig.handle.announce_paused();
    rig.until(|e| matches!(e, JobEvent::RunPaused(r, true) if *r == held))
        .await;
    // The queue itself is paused in this rig: that is said too.
    rig.until(|e| matches!(e, JobEvent::Paused(true))).await;
}

/// A run refused part way with the queue going (not paused, as in the test above): the first
/// job used to start (its request sent) before the refusal of a later one came back, and was
/// then cancelled mid-flight. The run is held while it is queued: nothing of it starts before
/// all of it is in.
#[tokio::test(start_paused = true)]
async fn a_run_refused_part_way_starts_nothing_even_with_the_queue_going() {
    let mut rig = Rig::new(vec![("demo", demo_slot(100, 0, 4))], 1).await;
    let run = Id::new();
    let mut refused = run_job("r2", run, 2);
    refused.provider = "nowhere".into();
    let answer = rig
        .handle
        .submit_run(vec![run_job("r1", run, 1), refused, run_job("r3", run, 1)])
        .await;
    assert_eq!(answer, Err("no provider named nowhere".to_string()));
    rig.until(|e| matches!(e, JobEvent::Cancelled(r) if r.prompt == "r3"))
        .await;
    rig.quiet(Duration::from_secs(5)).await;
    assert!(rig.seen_starting("started").is_empty(), "{:?}", rig.seen);
    // Taken whole, a run is let go at once and runs.
    let ids = rig
        .handle
        .submit_run(vec![run_job("s1", run, 1), run_job("s2", run, 2)])
        .await
        .unwrap();
    let last = rig.finished(ids[1]).await;
    assert_eq!(last.status, Status::Succeeded);
}
