#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Crash test: `kill -9` the real `easel generate` at random moments and check that the history
//! keeps its promises.
//!
//! Every round spawns the binary for one generation against the in-process fake Images server
//! (random latency, plain or streamed answers, one or two images) and SIGKILLs it at a random
//! moment after spawn. Every JSON line it printed before dying is a generation reported done.
//! Before the rounds, a few jobs are queued straight through the library; `easel generate` does
//! not resume the queue, so they must still be queued at the end.
//!
//! After the rounds the store is opened with the library, without repair, and checked:
//! - every generation reported done is in history, succeeded, with its files intact (sha256 as
//!   printed and as recorded);
//! - no record of any status points at a missing, partial or temporary file;
//! - the queue holds exactly the queued and running records, and the pre-queued jobs are there;
//! - `doctor(false)` finds nothing to repair and no record was skipped;
//! - jobs left `running` by a kill become `interrupted` when a scheduler starts.
//!
//! Kill moments: warm-up runs (one per kind of answer, never killed) measure when the request
//! reaches the server and when a run ends; a third of the kills then land anywhere in
//! `[0, max(150 ms, 1.25 × slowest run)]`, the rest in the busy part of a run. Nothing asserts on
//! timing: the summary only says where the kills landed.
//!
//! Rounds: `EASEL_CRASH_ROUNDS` (default 12). Seed: `EASEL_CRASH_SEED` (default fixed; printed
//! on failure). `EASEL_CRASH_VERBOSE=1` prints one line per round. `scripts/crash-test` runs 100
//! rounds in release mode.
#![cfg(unix)]

mod support;

use std::collections::{HashMap, HashSet};
use std::io::Read as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use easel::api::GenerationParams;
use easel::catalog::Catalog;
use easel::queue::{Scheduler, SchedulerConfig};
use easel::store::{GenerationRecord, HistoryStore, Id, SledStore, Status};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use support::fake_server::{FakeServer, Reply};
use support::sandbox::Sandbox;

const BIN: &str = env!("CARGO_BIN_EXE_easel");
const DEFAULT_ROUNDS: usize = 12;
const DEFAULT_SEED: u64 = 0x0C4A_5EED_2026;
const PRE_QUEUED: usize = 3;
/// The kill moment is uniform in `[0, window]` after spawn; the window is at least this, and
/// widens to cover a whole run on a slow machine (measured by the warm-up runs).
const MIN_WINDOW: Duration = Duration::from_millis(150);
const MAX_WINDOW: Duration = Duration::from_secs(3);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16)
                    .ok()
                    .and_then(|n| n.to_string().parse().ok()),
                None => v.parse().ok(),
            };
            parsed.unwrap_or_else(|| panic!("{name}={v:?} is not a number"))
        }
        _ => default,
    }
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox::folders()
    }

    /// `easel generate PROMPT --json ARGS` with a clean environment, pointed at `server`.
    fn generate(&self, server: &FakeServer, prompt: &str, args: &[&str]) -> Command {
        let mut cmd = self.clean_command(BIN);
        cmd.env("OPENAI_API_KEY", "sk-crash-test")
            .env("OPENAI_BASE_URL", server.base_url())
            .args(["generate", prompt, "--json"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

/// What the fake server answers in a round, and the flags that go with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Plain,
    Two,
    Stream,
}

impl Variant {
    const ALL: [Variant; 3] = [Variant::Plain, Variant::Two, Variant::Stream];

    fn args(self) -> &'static [&'static str] {
        match self {
            Variant::Plain => &[],
            Variant::Two => &["-n", "2"],
            Variant::Stream => &["--stream", "--partials", "2"],
        }
    }

    fn n(self) -> usize {
        match self {
            Variant::Plain | Variant::Stream => 1,
            Variant::Two => 2,
        }
    }

    fn reply(self, rng: &mut fastrand::Rng) -> Reply {
        match self {
            Variant::Plain | Variant::Two => Reply::image(),
            Variant::Stream => {
                Reply::stream(2).with_event_delay(Duration::from_millis(rng.u64(2..=25)))
            }
        }
    }
}

/// One image a child printed as saved.
#[derive(Debug, Clone)]
struct Reported {
    round: usize,
    id: Id,
    path: PathBuf,
    sha256: String,
}

/// What happened in one round.
#[derive(Debug)]
struct Round {
    round: usize,
    prompt: String,
    variant: Variant,
    /// When the kill was aimed, after spawn (None: warm-up, never killed).
    kill_at: Option<Duration>,
    /// Whether SIGKILL ended it (rather than it exiting on its own first).
    killed: bool,
    exit_code: Option<i32>,
    elapsed: Duration,
    /// When the server had read the generation request, after spawn.
    request_at: Option<Duration>,
    reported: Vec<Reported>,
    stderr: String,
}

fn run_round(
    sb: &Sandbox,
    server: &FakeServer,
    rng: &mut fastrand::Rng,
    round: usize,
    variant: Variant,
    kill_at: Option<Duration>,
) -> Round {
    server.set_default(variant.reply(rng));
    server.clear_requests();
    let prompt = format!("prompt {round}");
    let start = Instant::now();
    let mut child = sb
        .generate(server, &prompt, variant.args())
        .spawn()
        .expect("spawn easel");
    let status = match kill_at {
        None => child.wait().expect("wait for easel"),
        Some(at) => {
            std::thread::sleep(at);
            if child.try_wait().expect("poll easel").is_none() {
                // SIGKILL on Unix. It may have exited in between: the status says which.
                let _ = child.kill();
            }
            child.wait().expect("wait for easel")
        }
    };
    let elapsed = start.elapsed();
    // When the server had the request: the generation was under way from then on.
    let request_at = server
        .generation_requests()
        .first()
        .map(|r| r.at.into_std().saturating_duration_since(start));
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut out)
        .expect("read stdout");
    let mut err = Vec::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_end(&mut err)
        .expect("read stderr");
    let stdout = String::from_utf8_lossy(&out).into_owned();
    let stderr = String::from_utf8_lossy(&err).into_owned();
    // Only complete lines count: a line cut by the kill was not reported.
    let mut reported = Vec::new();
    let complete = match stdout.rfind('\n') {
        Some(end) => &stdout[..end],
        None => "",
    };
    for line in complete.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("round {round}: stdout line is not JSON ({e}): {line:?}"));
        let id = v["id"]
            .as_str()
            .and_then(Id::parse)
            .unwrap_or_else(|| panic!("round {round}: no id in {line}"));
        let path = PathBuf::from(
            v["path"]
                .as_str()
                .unwrap_or_else(|| panic!("round {round}: no path in {line}")),
        );
        let sha256 = v["sha256"]
            .as_str()
            .unwrap_or_else(|| panic!("round {round}: no sha256 in {line}"))
            .to_string();
        reported.push(Reported {
            round,
            id,
            path,
            sha256,
        });
    }
    Round {
        round,
        prompt,
        variant,
        kill_at,
        killed: status.signal() == Some(9),
        exit_code: status.code(),
        elapsed,
        request_at,
        reported,
        stderr,
    }
}

fn sha256_file(path: &Path) -> Option<String> {
    std::fs::read(path)
        .ok()
        .map(|b| hex::encode(Sha256::digest(&b)))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Where a killed round's job got to, judged from the store afterwards.
#[derive(Debug, Default)]
struct Landings {
    before_enqueue: usize,
    while_queued: usize,
    mid_generation: usize,
    after_success_recorded: usize,
    after_all_reported: usize,
}

#[test]
fn kill_nine_at_random_moments_keeps_history_consistent() {
    let rounds: usize = env_or("EASEL_CRASH_ROUNDS", DEFAULT_ROUNDS);
    let seed: u64 = env_or("EASEL_CRASH_SEED", DEFAULT_SEED);
    let tag = format!("[seed {seed:#x}, rounds {rounds}; rerun with EASEL_CRASH_SEED={seed:#x}]");
    let mut rng = fastrand::Rng::with_seed(seed);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt.block_on(FakeServer::start());
    server.set_fault_rate(0.0, seed);
    server.set_latency(Duration::from_millis(5), Duration::from_millis(60));
    let sb = Sandbox::new();

    // Jobs queued before any easel runs: they must survive every kill, still queued.
    let pre_queued: Vec<Id> = {
        let store = SledStore::open(&sb.data).expect("create the store");
        (0..PRE_QUEUED)
            .map(|i| {
                let params = GenerationParams {
                    prompt: format!("queued before the crashes {i}"),
                    ..Default::default()
                };
                let r = GenerationRecord::queued(Id::new(), params, "openai", false, Utc::now());
                store.enqueue(&r, false).expect("enqueue");
                r.id
            })
            .collect()
    };

    // Warm-up: each variant once, never killed. Checks the setup and measures a whole run.
    let mut log: Vec<Round> = Vec::new();
    for variant in Variant::ALL {
        let r = run_round(&sb, &server, &mut rng, log.len(), variant, None);
        assert!(
            r.exit_code == Some(0) && r.reported.len() == variant.n(),
            "{tag} warm-up {variant:?} should save {} image(s) and exit 0: {r:#?}",
            variant.n()
        );
        log.push(r);
    }
    // Kill moments: a third anywhere in [0, window] (start-up included), the rest in the busy
    // part, from a little before the request reaches the server to the end of the slowest run, so
    // that many kills land while a job is running, saving or being recorded.
    let slowest = log.iter().map(|r| r.elapsed).max().unwrap_or_default();
    let window = slowest.mul_f64(1.25).clamp(MIN_WINDOW, MAX_WINDOW);
    let first_request = log
        .iter()
        .filter_map(|r| r.request_at)
        .min()
        .unwrap_or_default();
    let busy = (
        first_request.mul_f64(0.8),
        slowest.mul_f64(1.1).max(first_request),
    );
    let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);

    // The kill rounds.
    let mut problems: Vec<String> = Vec::new();
    for _ in 0..rounds {
        let variant = Variant::ALL[rng.usize(..Variant::ALL.len())];
        let at = if rng.u8(..3) == 0 {
            Duration::from_micros(rng.u64(0..=us(window)))
        } else {
            Duration::from_micros(rng.u64(us(busy.0)..=us(busy.1)))
        };
        let r = run_round(&sb, &server, &mut rng, log.len(), variant, Some(at));
        if !r.killed {
            // It finished before the kill: then it must have succeeded in full.
            if r.exit_code != Some(0) || r.reported.len() != variant.n() {
                problems.push(format!(
                    "round {} ({variant:?}) ended on its own with {:?} and {} of {} image(s) reported; stderr: {}",
                    r.round,
                    r.exit_code,
                    r.reported.len(),
                    variant.n(),
                    r.stderr.trim()
                ));
            }
        } else if r.reported.len() > variant.n() {
            problems.push(format!(
                "round {} reported {} images for n={}",
                r.round,
                r.reported.len(),
                variant.n()
            ));
        }
        log.push(r);
    }
    let reported: Vec<Reported> = log
        .iter()
        .flat_map(|r| r.reported.iter().cloned())
        .collect();

    // Open the store as the next easel would: no repair, no recovery yet.
    let store = Arc::new(
        SledStore::open(&sb.data)
            .unwrap_or_else(|e| panic!("{tag} the store does not open after the kills: {e}")),
    );
    let files = store.files().clone();
    let mut records: Vec<GenerationRecord> = Vec::new();
    store
        .for_each(&mut |r| {
            records.push(r);
            Ok(())
        })
        .expect("read every record");
    let by_id: HashMap<Id, &GenerationRecord> = records.iter().map(|r| (r.id, r)).collect();

    // Every generation reported done is in history, succeeded, with intact files.
    let mut lost = 0usize;
    for rep in &reported {
        let what = format!(
            "round {} reported {} at {}",
            rep.round,
            rep.id,
            rep.path.display()
        );
        let Some(r) = by_id.get(&rep.id) else {
            lost += 1;
            problems.push(format!("{what}, but history has no such record"));
            continue;
        };
        let mut ok = true;
        if r.status != Status::Succeeded {
            ok = false;
            problems.push(format!("{what}, but the record is {}", r.status));
        }
        match r
            .outputs
            .iter()
            .find(|o| files.resolve(&o.path) == rep.path)
        {
            Some(o) if o.sha256 == rep.sha256 => {}
            Some(o) => {
                ok = false;
                problems.push(format!(
                    "{what}: record sha256 {} != reported {}",
                    o.sha256, rep.sha256
                ));
            }
            None => {
                ok = false;
                problems.push(format!("{what}, but the record does not list that file"));
            }
        }
        match sha256_file(&rep.path) {
            Some(h) if h == rep.sha256 => {}
            Some(h) => {
                ok = false;
                problems.push(format!(
                    "{what}: the file's sha256 is {h}, reported {}",
                    rep.sha256
                ));
            }
            None => {
                ok = false;
                problems.push(format!("{what}, but the file cannot be read"));
            }
        }
        if !ok {
            lost += 1;
        }
    }

    // No record of any status points at a missing, partial or temporary file.
    let mut referenced: HashSet<PathBuf> = HashSet::new();
    for r in &records {
        for o in &r.outputs {
            let abs = files.resolve(&o.path);
            referenced.insert(abs.clone());
            let name = abs
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.ends_with(".tmp") || name.starts_with('.') {
                problems.push(format!(
                    "{} ({}) points at a temporary file {}",
                    r.id,
                    r.status,
                    abs.display()
                ));
            }
            match std::fs::read(&abs) {
                Ok(bytes) => {
                    let h = hex::encode(Sha256::digest(&bytes));
                    if h != o.sha256 || bytes.len() as u64 != o.bytes {
                        problems.push(format!(
                            "{} ({}): {} has {} bytes, sha256 {h}; the record says {} bytes, {}",
                            r.id,
                            r.status,
                            abs.display(),
                            bytes.len(),
                            o.bytes,
                            o.sha256
                        ));
                    }
                }
                Err(e) => problems.push(format!(
                    "{} ({}) points at {}: {e}",
                    r.id,
                    r.status,
                    abs.display()
                )),
            }
            // The sidecar is written before the record, so it is there and agrees.
            let side = abs.with_extension("json");
            let side_sha = std::fs::read(&side)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| v["image"]["sha256"].as_str().map(str::to_string));
            if side_sha.as_deref() != Some(o.sha256.as_str()) {
                problems.push(format!(
                    "{} ({}): sidecar {} is missing or disagrees",
                    r.id,
                    r.status,
                    side.display()
                ));
            }
        }
        if r.status == Status::Failed || r.status == Status::Cancelled {
            problems.push(format!(
                "{} ended {} (a kill cannot cause that): {:?}",
                r.id, r.status, r.error
            ));
        }
    }

    // The queue holds exactly the queued and running records; the pre-queued jobs are there.
    let queue: Vec<GenerationRecord> = store.queue().expect("read the queue");
    let in_queue: HashSet<Id> = queue.iter().map(|r| r.id).collect();
    let active: HashSet<Id> = records
        .iter()
        .filter(|r| matches!(r.status, Status::Queued | Status::Running))
        .map(|r| r.id)
        .collect();
    if in_queue != active {
        problems.push(format!(
            "the queue ({} entries) is not the set of queued and running records ({})",
            in_queue.len(),
            active.len()
        ));
    }
    for id in &pre_queued {
        match by_id.get(id) {
            Some(r) if r.status == Status::Queued && in_queue.contains(id) => {}
            Some(r) => problems.push(format!(
                "pre-queued job {id} is {} (in queue: {})",
                r.status,
                in_queue.contains(id)
            )),
            None => problems.push(format!("pre-queued job {id} is gone")),
        }
    }

    // Nothing to repair.
    let report = store.doctor(false).expect("doctor");
    let skipped = store.skipped();
    let repairs = report.bad_records.len()
        + report.missing_files.len()
        + report.stale_summaries
        + report.orphan_entries
        + skipped.len();
    if repairs > 0 {
        problems.push(format!(
            "doctor wants repairs: bad records {:?}, missing files {:?}, stale summaries {}, orphan entries {}, skipped {:?}",
            report.bad_records, report.missing_files, report.stale_summaries, report.orphan_entries, skipped
        ));
    }

    // Where each kill landed, by the record its prompt made (if any).
    let by_prompt: HashMap<&str, &GenerationRecord> =
        records.iter().map(|r| (r.prompt.as_str(), r)).collect();
    let mut landed = Landings::default();
    let mut kills = 0usize;
    for r in log.iter().filter(|r| r.killed) {
        kills += 1;
        match by_prompt.get(r.prompt.as_str()).map(|g| g.status) {
            None => landed.before_enqueue += 1,
            Some(Status::Queued) => landed.while_queued += 1,
            Some(Status::Running | Status::Interrupted) => landed.mid_generation += 1,
            Some(Status::Succeeded) if r.reported.len() < r.variant.n() => {
                landed.after_success_recorded += 1
            }
            Some(Status::Succeeded) => landed.after_all_reported += 1,
            Some(other) => problems.push(format!(
                "round {} was killed and its job is {other}",
                r.round
            )),
        }
    }

    // A scheduler's start turns jobs left running into interrupted; queued jobs stay queued.
    let running: Vec<Id> = records
        .iter()
        .filter(|r| r.status == Status::Running)
        .map(|r| r.id)
        .collect();
    let still_queued: Vec<Id> = records
        .iter()
        .filter(|r| r.status == Status::Queued)
        .map(|r| r.id)
        .collect();
    rt.block_on(async {
        let cfg = SchedulerConfig {
            concurrency: 1,
            resume_queue: false,
        };
        let dyn_store: Arc<dyn HistoryStore> = store.clone();
        let (handle, _events) = Scheduler::start(
            dyn_store,
            Arc::new(Catalog::builtin()),
            files.clone(),
            HashMap::new(),
            cfg,
        )
        .await
        .unwrap_or_else(|e| panic!("{tag} the scheduler does not start on the crashed store: {e}"));
        handle.shutdown().await;
    });
    for id in &running {
        match store.get(*id).expect("read") {
            Some(r)
                if r.status == Status::Interrupted
                    && !store.queue().expect("queue").iter().any(|q| q.id == *id) => {}
            other => problems.push(format!(
                "{id} was running; after recovery it is {:?}",
                other.map(|r| r.status)
            )),
        }
    }
    let queue_after: HashSet<Id> = store
        .queue()
        .expect("read the queue")
        .iter()
        .map(|r| r.id)
        .collect();
    for id in &still_queued {
        match store.get(*id).expect("read") {
            Some(r) if r.status == Status::Queued && queue_after.contains(id) => {}
            other => problems.push(format!(
                "{id} was queued; after recovery it is {:?}",
                other.map(|r| r.status)
            )),
        }
    }
    let after = store.doctor(false).expect("doctor after recovery");
    if !after.is_clean() {
        problems.push(format!("doctor after recovery is not clean: {after:?}"));
    }

    // Informational: files a kill left behind (unreferenced images, temporary files).
    let mut on_disk = Vec::new();
    walk(&sb.data.join("images"), &mut on_disk);
    let leftover_tmp = on_disk
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "tmp"))
        .count();
    let unreferenced = on_disk
        .iter()
        .filter(|p| {
            p.extension().is_some_and(|x| x != "json" && x != "tmp") && !referenced.contains(*p)
        })
        .count();

    let summary = format!(
        "crash summary: seed={seed:#x} rounds={rounds} kills={kills} mid_generation={} \
         (before_enqueue={} while_queued={} after_success_recorded={} after_all_reported={}) \
         reported_done={} lost={lost} repairs_needed={repairs} recovered_interrupted={} still_queued={} \
         unreferenced_images={unreferenced} leftover_tmp={leftover_tmp} kill_window_ms={} busy_ms={}..{}",
        landed.mid_generation,
        landed.before_enqueue,
        landed.while_queued,
        landed.after_success_recorded,
        landed.after_all_reported,
        reported.len(),
        running.len(),
        still_queued.len(),
        window.as_millis(),
        busy.0.as_millis(),
        busy.1.as_millis(),
    );
    println!("{summary}");
    let verbose = std::env::var_os("EASEL_CRASH_VERBOSE").is_some();
    if verbose || !problems.is_empty() {
        for r in &log {
            let ms = |d: Option<Duration>| {
                d.map_or("-".to_string(), |d| {
                    format!("{:.1}ms", d.as_secs_f64() * 1e3)
                })
            };
            let status = by_prompt
                .get(r.prompt.as_str())
                .map_or("none".to_string(), |g| g.status.to_string());
            eprintln!(
                "round {:>3} {:<6} kill_at={:>8} request_at={:>8} ended={:>8} killed={:<5} exit={:?} reported={} record={status}",
                r.round,
                format!("{:?}", r.variant),
                ms(r.kill_at),
                ms(r.request_at),
                ms(Some(r.elapsed)),
                r.killed,
                r.exit_code,
                r.reported.len(),
            );
        }
    }
    if !problems.is_empty() {
        panic!(
            "{tag}\n{summary}\n{} problem(s):\n  {}",
            problems.len(),
            problems.join("\n  ")
        );
    }
    assert_eq!(lost, 0, "{tag}");
    assert_eq!(repairs, 0, "{tag}");
}
