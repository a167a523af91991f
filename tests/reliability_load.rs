#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Load and soak through the scheduler, the sled store and the OpenAI backend against the
//! in-process fake server.
//!
//! - `load_with_faults`: `EASEL_LOAD_JOBS` jobs (default 120; `scripts/reliability` runs 500)
//!   queued at once, concurrency 16, random server latency 1–30 ms and 20 % injected retryable
//!   faults (500, 503, 429 or a reset). Every job must end in a final state, succeeded + failed
//!   must equal submitted, no job may use more than max_retries + 1 attempts a run (a 429 puts
//!   it back in the queue for another run, at most MAX_REQUEUES times), and the attempts
//!   recorded must add up to the requests the server received. Prints a `load summary:` line
//!   with the peak RSS (VmHWM) and the elapsed time.
//! - `soak` (ignored; `EASEL_SOAK_JOBS`, default 10,000): fast jobs in batches of 500; RSS
//!   (VmRSS) and open file descriptors after the first 1,000 and after the last 1,000 must not
//!   grow by more than 20 MB and 16 fds. Prints a `soak summary:` line with both, and RSS and fds
//!   after every 1,000. `EASEL_SOAK_PRUNE=1` deletes each batch once done, so that history stays
//!   small and what growth remains is not the history's own.
//!
//! Release runs with the full sizes: `scripts/reliability`.

mod support;

use easel::api::{ClientOptions, GenerationParams, ProviderRules};
use easel::backend::Backend;
use easel::backend::openai::OpenAiBackend;
use easel::catalog::Catalog;
use easel::queue::{
    JobEvent, ProviderSlot, Scheduler, SchedulerConfig, SchedulerHandle, Submission,
};
use easel::secret::ApiKey;
use easel::store::{HistoryStore, Id, ImageFiles, SledStore, Status};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::fake_server::FakeServer;
use tokio::sync::mpsc::UnboundedReceiver;

const MAX_RETRIES: u32 = 2;
const CONCURRENCY: usize = 16;

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        _ => default,
    }
}

/// A field of /proc/self/status, in kB.
fn proc_status_kb(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| {
            rest.trim_start_matches(':')
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
}

fn open_fds() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count())
}

/// What the open descriptors are: "files=N sockets=N other=N" (sockets include both ends of
/// the connections to the in-process fake server).
fn fd_kinds() -> String {
    let (mut files, mut sockets, mut other) = (0, 0, 0);
    for e in std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
    {
        match std::fs::read_link(e.path()) {
            Ok(t) if t.to_string_lossy().starts_with("socket:") => sockets += 1,
            Ok(t) if t.is_absolute() => files += 1,
            _ => other += 1,
        }
    }
    format!("files={files} sockets={sockets} other={other}")
}

fn mb(kb: Option<u64>) -> String {
    kb.map_or("n/a".into(), |k| format!("{:.1} MB", k as f64 / 1024.0))
}

fn backend(server: &FakeServer) -> Arc<dyn Backend> {
    let mut o = ClientOptions::new("OpenAI", &server.base_url());
    o.api_key = ApiKey::new("sk-reliability-load");
    o.max_retries = MAX_RETRIES;
    o.timeout = Duration::from_secs(30);
    Arc::new(OpenAiBackend::new(o).unwrap())
}

async fn start(
    server: &FakeServer,
    data: &Path,
) -> (Arc<SledStore>, SchedulerHandle, UnboundedReceiver<JobEvent>) {
    let store = Arc::new(SledStore::open(data).unwrap());
    let slot = ProviderSlot {
        backend: backend(server),
        rules: ProviderRules::default(),
        limit: CONCURRENCY,
    };
    let dyn_store: Arc<dyn HistoryStore> = store.clone();
    let (handle, rx) = Scheduler::start(
        dyn_store,
        Arc::new(Catalog::builtin()),
        ImageFiles::new(data, None),
        HashMap::from([("openai".to_string(), slot)]),
        SchedulerConfig {
            concurrency: CONCURRENCY,
            resume_queue: false,
        },
    )
    .await
    .unwrap();
    (store, handle, rx)
}

fn submission(i: usize) -> Submission {
    Submission {
        params: GenerationParams {
            prompt: format!("load job {i}: a lighthouse at dusk"),
            ..Default::default()
        },
        provider: "openai".into(),
        front: false,
        parent: None,
        run: None,
    }
}

/// Wait until every id in `ids` has finished; returns the final statuses. Panics on a stall.
async fn wait_all(
    rx: &mut UnboundedReceiver<JobEvent>,
    ids: &[Id],
    stall: Duration,
) -> HashMap<Id, Status> {
    let wanted: std::collections::HashSet<Id> = ids.iter().copied().collect();
    let mut done = HashMap::new();
    let mut problems = Vec::new();
    while done.len() < wanted.len() {
        match tokio::time::timeout(stall, rx.recv()).await {
            Ok(Some(ev)) => {
                if let JobEvent::Problem(p) = &ev {
                    problems.push(p.clone());
                }
                if let Some(r) = ev.finished().filter(|r| wanted.contains(&r.id)) {
                    done.insert(r.id, r.status);
                }
            }
            Ok(None) => panic!(
                "the scheduler stopped with {} of {} jobs finished",
                done.len(),
                wanted.len()
            ),
            Err(_) => panic!(
                "no job finished for {stall:?}: {} of {} finished; problems: {problems:?}",
                done.len(),
                wanted.len()
            ),
        }
    }
    assert!(problems.is_empty(), "scheduler problems: {problems:?}");
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_with_faults() {
    let jobs = env_usize("EASEL_LOAD_JOBS", 120);
    let seed = env_usize("EASEL_LOAD_SEED", 0x10AD) as u64;
    let server = FakeServer::start().await;
    server.set_latency(Duration::from_millis(1), Duration::from_millis(30));
    server.set_fault_rate(0.2, seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (store, handle, mut rx) = start(&server, &data).await;
    let rss_before = proc_status_kb("VmRSS");

    let started = Instant::now();
    let mut ids = Vec::with_capacity(jobs);
    for i in 0..jobs {
        ids.push(handle.submit(submission(i)).await.unwrap());
    }
    let statuses = wait_all(&mut rx, &ids, Duration::from_secs(60)).await;
    let elapsed = started.elapsed();
    handle.shutdown().await;

    let mut succeeded = 0;
    let mut failed = 0;
    let mut attempts_total = 0u64;
    let mut most_attempts = 0;
    let mut retried = 0;
    for id in &ids {
        let r = store.get(*id).unwrap().expect("every job is in history");
        assert!(r.status.is_final(), "{} ended {}", r.id, r.status);
        assert_eq!(
            statuses.get(id),
            Some(&r.status),
            "the event and the store disagree for {}",
            r.id
        );
        match r.status {
            Status::Succeeded => {
                succeeded += 1;
                assert!(
                    !r.outputs.is_empty() && r.outputs.iter().all(|o| data.join(&o.path).is_file()),
                    "{} has no image",
                    r.id
                );
            }
            Status::Failed => {
                failed += 1;
                let e = r.error.as_ref().expect("a failed job says why");
                assert!(
                    ["server", "rate_limited", "connection"].contains(&e.kind.as_str()),
                    "unexpected failure: {e:?}"
                );
                // Every attempt was used; a job put back in the queue after a 429 also counts
                // the requests it sent before.
                assert!(
                    r.attempts > MAX_RETRIES,
                    "a retryable failure uses every attempt: {} for {e:?}",
                    r.attempts
                );
            }
            other => panic!("{} ended {other}", r.id),
        }
        // A 429 puts a job back in the queue with its retries whole (at most MAX_REQUEUES
        // times): each run of it may use every attempt.
        let most = (MAX_RETRIES + 1) * (easel::queue::pace::MAX_REQUEUES + 1);
        assert!(
            r.attempts >= 1 && r.attempts <= most,
            "{} made {} attempts",
            r.id,
            r.attempts
        );
        attempts_total += u64::from(r.attempts);
        most_attempts = most_attempts.max(r.attempts);
        if r.attempts > 1 {
            retried += 1;
        }
    }
    assert_eq!(succeeded + failed, jobs, "succeeded + failed == submitted");
    assert_eq!(store.len(), jobs);
    assert!(
        store.queue().unwrap().is_empty(),
        "nothing left queued or running"
    );
    let requests = server.generation_count() as u64;
    assert_eq!(
        attempts_total, requests,
        "the attempts recorded add up to the requests the server saw"
    );
    assert!(server.fault_count() > 0, "faults were injected");
    assert!(store.doctor(false).unwrap().is_clean());

    let peak = proc_status_kb("VmHWM");
    eprintln!(
        "load summary: jobs={jobs} concurrency={CONCURRENCY} fault_rate=0.2 seed={seed:#x} succeeded={succeeded} failed={failed} \
         retried_jobs={retried} attempts={attempts_total} server_requests={requests} faults_injected={} max_attempts={most_attempts} \
         elapsed={:.2}s jobs_per_s={:.0} rss_before={} peak_rss={}",
        server.fault_count(),
        elapsed.as_secs_f64(),
        jobs as f64 / elapsed.as_secs_f64(),
        mb(rss_before),
        mb(peak),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long: 10,000 jobs; run with scripts/reliability (release)"]
async fn soak() {
    let jobs = env_usize("EASEL_SOAK_JOBS", 10_000).max(2_000);
    // EASEL_SOAK_PRUNE=1 deletes each batch's records once it has finished, so history stays
    // small: growth that remains then is not the history's own (index, database pages).
    let prune = env_usize("EASEL_SOAK_PRUNE", 0) != 0;
    const BATCH: usize = 500;
    const WINDOW: usize = 1_000;
    let server = FakeServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (store, handle, mut rx) = start(&server, &data).await;

    let started = Instant::now();
    let mut done = 0;
    // (jobs done, RSS kB, open fds) after each thousand, and where the last thousand starts.
    let mut series: Vec<(usize, Option<u64>, Option<usize>)> = Vec::new();
    let mut last_start = None;
    while done < jobs {
        if done == jobs - WINDOW {
            last_start = proc_status_kb("VmRSS");
        }
        // Batches stop at every thousand and where the last thousand starts.
        let edge = [(done / WINDOW + 1) * WINDOW, jobs - WINDOW, jobs]
            .into_iter()
            .filter(|e| *e > done)
            .min()
            .unwrap_or(jobs);
        let n = BATCH.min(edge - done);
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            ids.push(handle.submit(submission(done + i)).await.unwrap());
        }
        let statuses = wait_all(&mut rx, &ids, Duration::from_secs(60)).await;
        assert!(
            statuses.values().all(|s| *s == Status::Succeeded),
            "a soak job failed"
        );
        done += n;
        if prune {
            for id in &ids {
                store.delete(*id).unwrap();
            }
        }
        // The fake server keeps every request it saw: forget them so only easel's memory counts.
        server.clear_requests();
        if done % WINDOW == 0 || done == jobs {
            series.push((done, proc_status_kb("VmRSS"), open_fds()));
        }
    }
    let elapsed = started.elapsed();
    handle.shutdown().await;
    assert_eq!(store.len(), if prune { 0 } else { jobs });

    let (_, rss_first, fds_first) = series[0];
    let (_, rss_last, fds_last) = *series.last().unwrap();
    let growth_kb = match (rss_first, rss_last) {
        (Some(a), Some(b)) => b as i64 - a as i64,
        _ => 0,
    };
    let fd_growth = match (fds_first, fds_last) {
        (Some(a), Some(b)) => b as i64 - a as i64,
        _ => 0,
    };
    let fd_curve: Vec<String> = series
        .iter()
        .map(|(_, _, n)| n.map_or("n/a".into(), |n| n.to_string()))
        .collect();
    let curve: Vec<String> = series
        .iter()
        .map(|(_, kb, _)| kb.map_or("n/a".into(), |k| format!("{:.1}", k as f64 / 1024.0)))
        .collect();
    eprintln!(
        "soak summary: jobs={jobs} pruned={prune} elapsed={:.1}s jobs_per_s={:.0} rss_after_first_{WINDOW}={} rss_after_last_{WINDOW}={} \
         (before last {WINDOW}: {}) rss_growth={:+.1} MB fds_after_first_{WINDOW}={} fds_after_last_{WINDOW}={} fd_growth={fd_growth:+} \
         peak_rss={} rss_mb_every_{WINDOW}=[{}] fds_every_{WINDOW}=[{}] fds_at_end=({})",
        elapsed.as_secs_f64(),
        jobs as f64 / elapsed.as_secs_f64(),
        mb(rss_first),
        mb(rss_last),
        mb(last_start),
        growth_kb as f64 / 1024.0,
        fds_first.map_or("n/a".into(), |n| n.to_string()),
        fds_last.map_or("n/a".into(), |n| n.to_string()),
        mb(proc_status_kb("VmHWM")),
        curve.join(" "),
        fd_curve.join(" "),
        fd_kinds(),
    );
    assert!(
        growth_kb <= 20 * 1024,
        "resident memory grew by {:.1} MB between the first and the last {WINDOW} jobs",
        growth_kb as f64 / 1024.0
    );
    assert!(
        fd_growth <= 16,
        "open file descriptors grew by {fd_growth} between the first and the last {WINDOW} jobs"
    );
}
