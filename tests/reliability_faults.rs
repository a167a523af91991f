#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Every server and network fault of the reliability issue, through the real pipeline: the
//! scheduler, the sled history store and the OpenAI backend against the in-process fake server
//! (max_retries 2, short timeouts for the cases that hang).
//!
//! Each case is a row of a table: the fault, the final status it must end in, a phrase the
//! message must hold, the attempts the retry rules allow, and whether the server sent a request
//! id. For each, a faulty job is queued followed by a good one (concurrency 1, so in that order),
//! and the test checks that:
//! - the faulty job ends in the expected state, its message says what happened (the phrase) and
//!   carries the request id when the server sent one;
//! - the recorded attempts match the retry rules, and the server saw exactly that many requests;
//! - the good job after it succeeds (the queue goes on);
//! - no record points at a missing file, no `*.tmp` and no unreferenced image is left in the
//!   data dir, and `doctor` finds nothing to repair.
//!
//! The observed outcomes are written to `target/reliability-faults.md` (fault | final status |
//! attempts | message shown) for docs/reliability.md to quote. All problems are collected and
//! reported together after the table is written.

mod support;

use easel::api::{ClientOptions, GenerationParams, ProviderRules};
use easel::backend::Backend;
use easel::backend::openai::OpenAiBackend;
use easel::catalog::Catalog;
use easel::queue::{JobEvent, ProviderSlot, Scheduler, SchedulerConfig, Submission};
use easel::secret::ApiKey;
use easel::store::{HistoryStore, Id, ImageFiles, SledStore, Status};
use futures_util::StreamExt as _;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::fake_server::{FakeServer, Reply};

const MAX_RETRIES: u32 = 2;
/// Whole-request timeout: what "a server that never answers" runs into.
const TIMEOUT: Duration = Duration::from_millis(1500);
/// Silence allowed between two stream events.
const STREAM_IDLE: Duration = Duration::from_millis(500);
/// Download cap, so "a url that is huge" needs only a few megabytes.
const DOWNLOAD_CAP: u64 = 1 << 20;
/// Cases run at once (each has its own server, store and scheduler).
const PARALLEL: usize = 6;

/// Where the faulty job is sent.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    /// The fake server, whose script the case's `setup` fills.
    Server,
    /// A port nobody listens on.
    Refused,
}

/// One row of the table.
struct Case {
    fault: &'static str,
    setup: fn(&FakeServer),
    target: Target,
    /// Ask for a streamed answer (partial_images 1).
    stream: bool,
    status: Status,
    /// The error kind recorded (empty for a success).
    kind: &'static str,
    /// Must appear in the message shown (for a success: in the retry notice).
    phrase: &'static str,
    attempts: u32,
    /// The server sent an `x-request-id` with the failing answer.
    request_id: bool,
}

fn times(server: &FakeServer, reply: Reply, n: u32) {
    for _ in 0..n {
        server.push(reply.clone());
    }
}

const ALL_TRIES: u32 = MAX_RETRIES + 1;

fn cases() -> Vec<Case> {
    use Status::{Failed, Succeeded};
    let case = |fault, setup: fn(&FakeServer), status, kind, phrase, attempts, request_id| Case {
        fault,
        setup,
        target: Target::Server,
        stream: false,
        status,
        kind,
        phrase,
        attempts,
        request_id,
    };
    let streamed = |c: Case| Case { stream: true, ..c };
    vec![
        case(
            "401 invalid_api_key",
            |s| s.push(Reply::unauthorized()),
            Failed,
            "authentication",
            "did not accept the API key",
            1,
            true,
        ),
        case(
            "403 no access to the model",
            |s| {
                s.push(Reply::json(
                    403,
                    json!({"error": {"message": "Project `proj_abc` does not have access to model `gpt-image-2`", "type": "invalid_request_error", "param": null, "code": null}}),
                ))
            },
            Failed,
            "permission",
            "does not permit this request (HTTP 403): Project `proj_abc` does not have access",
            1,
            true,
        ),
        case(
            "404 unknown model",
            |s| {
                s.push(Reply::error(
                    404,
                    "invalid_request_error",
                    "model_not_found",
                    "The model `gpt-image-2` does not exist or you do not have access to it.",
                ))
            },
            Failed,
            "not_found",
            "does not know this model or path (model_not_found)",
            1,
            true,
        ),
        case(
            "400 moderation_blocked with moderation_details",
            |s| s.push(Reply::moderation_blocked()),
            Failed,
            "moderation",
            "refused the prompt (moderation_blocked)",
            1,
            true,
        ),
        case(
            "400 unknown_parameter",
            |s| s.push(Reply::unknown_parameter("style")),
            Failed,
            "invalid_request",
            "Unknown parameter: 'style'. (param: style)",
            1,
            true,
        ),
        case(
            "429 rate limit with retry-after: 1",
            |s| s.push(Reply::rate_limited(None, Some("1"))),
            Succeeded,
            "",
            "rate limiting requests (rate_limit_exceeded)",
            2,
            true,
        ),
        case(
            "429 insufficient_quota",
            |s| s.push(Reply::insufficient_quota()),
            Failed,
            "quota_exceeded",
            "out of credit (insufficient_quota)",
            1,
            true,
        ),
        case(
            "500 server_error (every attempt)",
            |s| times(s, Reply::server_error(), ALL_TRIES),
            Failed,
            "server",
            "had a server error (HTTP 500)",
            ALL_TRIES,
            true,
        ),
        case(
            "503 overloaded (every attempt)",
            |s| times(s, Reply::overloaded(), ALL_TRIES),
            Failed,
            "server",
            "had a server error (overloaded)",
            ALL_TRIES,
            true,
        ),
        case(
            "server never answers",
            |s| times(s, Reply::hang(), ALL_TRIES),
            Failed,
            "timeout",
            "did not answer in time: no complete answer within 1.5 s",
            ALL_TRIES,
            false,
        ),
        Case {
            target: Target::Refused,
            ..case(
                "connection refused",
                |_| {},
                Failed,
                "connection",
                "Connection refused",
                ALL_TRIES,
                false,
            )
        },
        case(
            "connection reset before any answer",
            |s| times(s, Reply::connection_reset(), ALL_TRIES),
            Failed,
            "connection",
            "could not reach OpenAI: while sending the request",
            ALL_TRIES,
            false,
        ),
        case(
            "connection closed halfway through the body",
            |s| times(s, Reply::reset_mid_body(), ALL_TRIES),
            Failed,
            "connection",
            "while reading the answer",
            ALL_TRIES,
            true,
        ),
        case(
            "truncated JSON",
            |s| s.push(Reply::truncated_json()),
            Failed,
            "bad_answer",
            "JSON cut off in the middle",
            1,
            true,
        ),
        case(
            "JSON of the wrong shape",
            |s| s.push(Reply::wrong_shape()),
            Failed,
            "bad_answer",
            "JSON but not an images response",
            1,
            true,
        ),
        case(
            "no data array (\"images\" instead)",
            |s| s.push(Reply::wrong_shape_images()),
            Failed,
            "bad_answer",
            "not an images response",
            1,
            true,
        ),
        case(
            "empty data array",
            |s| s.push(Reply::empty_data()),
            Failed,
            "bad_answer",
            "holds no images",
            1,
            true,
        ),
        case(
            "b64_json that is not base64",
            |s| s.push(Reply::not_base64()),
            Failed,
            "bad_answer",
            "not valid base64",
            1,
            true,
        ),
        case(
            "base64 that is not an image",
            |s| s.push(Reply::base64_not_image()),
            Failed,
            "bad_answer",
            "expected an image but received text",
            1,
            true,
        ),
        case(
            "an SVG answer (b64_json)",
            |s| s.push(Reply::svg()),
            Failed,
            "bad_answer",
            "received an SVG document",
            1,
            true,
        ),
        case(
            "an SVG answer (url)",
            |s| s.push(Reply::svg().via_url()),
            Failed,
            "bad_answer",
            "received an SVG document",
            1,
            true,
        ),
        case(
            "an HTML answer (b64_json)",
            |s| s.push(Reply::html()),
            Failed,
            "bad_answer",
            "received an HTML page",
            1,
            true,
        ),
        case(
            "an HTML page instead of JSON (200 text/html)",
            |s| {
                s.push(Reply::raw(
                    200,
                    "text/html",
                    "<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>",
                ))
            },
            Failed,
            "bad_answer",
            "not JSON (an HTML page",
            1,
            true,
        ),
        case(
            "a url that 404s",
            |s| s.push(Reply::url_404()),
            Failed,
            "bad_answer",
            "failed with HTTP 404",
            1,
            true,
        ),
        case(
            "a url that is huge (content-length)",
            |s| s.push(Reply::url_huge(8 << 20)),
            Failed,
            "bad_answer",
            "larger than the 1 MB limit",
            1,
            true,
        ),
        case(
            "a url that is huge (no content-length)",
            |s| s.push(Reply::url_huge_unsized(8 << 20)),
            Failed,
            "bad_answer",
            "larger than the 1 MB limit",
            1,
            true,
        ),
        streamed(case(
            "a stream cut off after a partial image",
            |s| s.push(Reply::stream_cut_after_partial()),
            Failed,
            "connection",
            "the stream broke after 1 partial image(s)",
            1,
            true,
        )),
        streamed(case(
            "a stream with an error event",
            |s| s.push(Reply::stream_error_event()),
            Failed,
            "server",
            "(image_generation_failed): The image generation failed on the server",
            1,
            true,
        )),
        streamed(case(
            "a stream that never sends completed",
            |s| s.push(Reply::stream_never_completes()),
            Failed,
            "timeout",
            "the stream went silent for 0.5 s after 1 partial image(s)",
            1,
            true,
        )),
        streamed(case(
            "a stream that ends without completed",
            |s| {
                s.push(Reply::raw(200, "text/event-stream", "data: {\"type\":\"image_generation.partial_image\",\"b64_json\":\"aGk=\",\"partial_image_index\":0}\n\ndata: [DONE]\n\n"))
            },
            Failed,
            "bad_answer",
            "ended after 1 partial image(s) without the finished image",
            1,
            true,
        )),
    ]
}

fn options(base_url: &str) -> ClientOptions {
    let mut o = ClientOptions::new("OpenAI", base_url);
    o.api_key = ApiKey::new("sk-reliability-faults");
    o.max_retries = MAX_RETRIES;
    o.timeout = TIMEOUT;
    o.connect_timeout = TIMEOUT;
    o.stream_idle_timeout = STREAM_IDLE;
    o.download_max_bytes = DOWNLOAD_CAP;
    o.download_timeout = TIMEOUT;
    o
}

fn slot(base_url: &str) -> ProviderSlot {
    let backend: Arc<dyn Backend> = Arc::new(OpenAiBackend::new(options(base_url)).unwrap());
    ProviderSlot {
        backend,
        rules: ProviderRules::default(),
        limit: 1,
    }
}

fn params(prompt: &str, stream: bool) -> GenerationParams {
    GenerationParams {
        prompt: prompt.into(),
        stream,
        partial_images: stream.then_some(1),
        ..Default::default()
    }
}

/// A URL where nothing listens: bind a port, then let it go.
async fn refused_url() -> String {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/v1")
}

/// What one case did.
struct Observed {
    fault: &'static str,
    status: String,
    attempts: u32,
    message: String,
    elapsed: Duration,
    problems: Vec<String>,
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Files and records that do not agree: missing files, temporary files, images nobody
/// references, anything `doctor` would repair.
pub fn data_dir_problems(data: &Path, store: &dyn HistoryStore) -> Vec<String> {
    let mut problems = Vec::new();
    let mut referenced = HashSet::new();
    store
        .for_each(&mut |r| {
            for o in &r.outputs {
                let abs = if o.path.is_absolute() {
                    o.path.clone()
                } else {
                    data.join(&o.path)
                };
                if !abs.is_file() {
                    problems.push(format!(
                        "{} points at a missing file {}",
                        r.id.short(),
                        abs.display()
                    ));
                }
                referenced.insert(abs.with_extension("json"));
                referenced.insert(abs);
            }
            Ok(())
        })
        .unwrap();
    let mut files = Vec::new();
    walk(data, &mut files);
    let sled_dir = data.join("history.sled");
    for f in files {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".tmp") || name.ends_with(".partial") {
            problems.push(format!("temporary file left behind: {}", f.display()));
        }
        if !f.starts_with(&sled_dir)
            && f.starts_with(data.join("images"))
            && !referenced.contains(&f)
        {
            problems.push(format!("file no record references: {}", f.display()));
        }
    }
    let report = store.doctor(false).unwrap();
    if !report.is_clean() || !report.unreferenced_files.is_empty() {
        problems.push(format!(
            "doctor: bad records {:?}, missing {:?}, unreferenced {:?}, stale {}, orphans {}, count mismatch {}",
            report.bad_records, report.missing_files, report.unreferenced_files, report.stale_summaries, report.orphan_entries, report.count_mismatch
        ));
    }
    problems
}

async fn run_case(case: Case) -> Observed {
    let started = Instant::now();
    let mut problems = Vec::new();
    let server = FakeServer::start().await;
    (case.setup)(&server);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = Arc::new(SledStore::open(&data).unwrap());
    let faulty_url = match case.target {
        Target::Server => server.base_url(),
        Target::Refused => refused_url().await,
    };
    let providers = HashMap::from([
        ("faulty".to_string(), slot(&faulty_url)),
        ("openai".to_string(), slot(&server.base_url())),
    ]);
    let dyn_store: Arc<dyn HistoryStore> = store.clone();
    let (handle, mut rx) = Scheduler::start(
        dyn_store,
        Arc::new(Catalog::builtin()),
        ImageFiles::new(&data, None),
        providers,
        SchedulerConfig {
            concurrency: 1,
            resume_queue: false,
        },
    )
    .await
    .unwrap();
    let submit = |prompt: &str, provider: &str, stream: bool| Submission {
        params: params(prompt, stream),
        provider: provider.into(),
        front: false,
        parent: None,
        run: None,
    };
    let faulty = handle
        .submit(submit("a lighthouse in a storm", "faulty", case.stream))
        .await
        .unwrap();
    let good = handle
        .submit(submit("a calm harbour", "openai", false))
        .await
        .unwrap();

    let mut finished: HashMap<Id, Status> = HashMap::new();
    let mut retries = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while finished.len() < 2 {
        let ev = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => ev,
            Ok(None) => {
                problems.push("the event channel closed".into());
                break;
            }
            Err(_) => {
                problems.push(format!(
                    "the jobs did not finish within 60 s (finished: {finished:?})"
                ));
                break;
            }
        };
        match &ev {
            JobEvent::Retrying {
                id, retry, reason, ..
            } if *id == faulty => retries.push(format!("retry {retry} after: {reason}")),
            JobEvent::Problem(p) => problems.push(format!("scheduler problem: {p}")),
            _ => {}
        }
        if let Some(r) = ev.finished() {
            finished.insert(r.id, r.status);
        }
    }
    handle.shutdown().await;

    let record = store
        .get(faulty)
        .unwrap()
        .expect("the faulty job is in history");
    let message = record
        .error
        .as_ref()
        .map(|e| e.message.clone())
        .unwrap_or_default();
    if record.status != case.status {
        problems.push(format!(
            "ended {} instead of {}",
            record.status, case.status
        ));
    }
    if record.attempts != case.attempts {
        problems.push(format!(
            "recorded {} attempt(s) instead of {}",
            record.attempts, case.attempts
        ));
    }
    let kind = record
        .error
        .as_ref()
        .map(|e| e.kind.as_str())
        .unwrap_or_default();
    if kind != case.kind {
        problems.push(format!("error kind {kind:?} instead of {:?}", case.kind));
    }
    // Which generation requests belong to the faulty job: all but the good job's last one.
    let generations = server.generation_requests();
    let faulty_requests = match case.target {
        Target::Server => generations.len().saturating_sub(1),
        Target::Refused => 0,
    };
    let expected_requests = if case.target == Target::Refused {
        0
    } else {
        case.attempts as usize
    };
    if faulty_requests != expected_requests {
        problems.push(format!("the server saw {faulty_requests} request(s) for the faulty job, expected {expected_requests}"));
    }
    let shown = if case.status == Status::Succeeded {
        retries.join("; ")
    } else {
        message.clone()
    };
    if !shown.contains(case.phrase) {
        problems.push(format!("the message does not say {:?}", case.phrase));
    }
    if case.status == Status::Failed {
        if message.trim().is_empty() {
            problems.push("no error message".into());
        }
        if record.outputs.iter().any(|_| true) {
            problems.push("a failed job has outputs".into());
        }
        let last_id =
            (faulty_requests > 0).then(|| format!("req_{}", generations[faulty_requests - 1].id));
        match (case.request_id, &last_id) {
            (true, Some(id)) => {
                if !message.contains(&format!("[request {id}]")) {
                    problems.push(format!("the message does not carry the request id {id}"));
                }
                if record.request_id.as_deref() != Some(id.as_str()) {
                    problems.push(format!(
                        "the record's request id is {:?}, not {id}",
                        record.request_id
                    ));
                }
            }
            (true, None) => {
                problems.push("expected a request id but the server saw no request".into())
            }
            (false, _) => {
                if message.contains("[request ") {
                    problems.push("a request id without an answer?".into());
                }
            }
        }
        if record
            .error
            .as_ref()
            .and_then(|e| e.hint.as_ref())
            .is_none()
            && case.kind != "invalid_request"
        {
            problems.push("no hint".into());
        }
    } else if !record.outputs.iter().all(|o| data.join(&o.path).is_file())
        || record.outputs.is_empty()
    {
        problems.push("the retried job has no image on disk".into());
    }
    if message.chars().any(easel::sanitize::is_unsafe) {
        problems.push("the message holds unsafe characters".into());
    }
    let next = store
        .get(good)
        .unwrap()
        .expect("the good job is in history");
    if next.status != Status::Succeeded {
        problems.push(format!(
            "the next job ended {} ({:?})",
            next.status,
            next.error.map(|e| e.message)
        ));
    } else if next.attempts != 1 {
        problems.push(format!("the next job took {} attempts", next.attempts));
    }
    if !store.queue().unwrap().is_empty() {
        problems.push("the queue is not empty".into());
    }
    problems.extend(data_dir_problems(&data, store.as_ref()));
    Observed {
        fault: case.fault,
        status: record.status.to_string(),
        attempts: record.attempts,
        message: if case.status == Status::Succeeded {
            format!("(succeeded) {shown}")
        } else {
            message
        },
        elapsed: started.elapsed(),
        problems,
    }
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
    }
}

fn markdown(rows: &[Observed]) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = String::from(
        "<!-- written by tests/reliability_faults.rs (cargo test --test reliability_faults); do not edit -->\n\n\
         | fault | final status | attempts | message shown |\n|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            cell(r.fault),
            r.status,
            r.attempts,
            cell(&r.message)
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_ends_right_and_the_queue_goes_on() {
    let started = Instant::now();
    let table = cases();
    let n = table.len();
    let mut observed: Vec<Observed> = futures_util::stream::iter(table.into_iter().map(run_case))
        .buffered(PARALLEL)
        .collect()
        .await;
    let order: Vec<&str> = cases().iter().map(|c| c.fault).collect();
    observed.sort_by_key(|o| order.iter().position(|f| *f == o.fault));

    let md = markdown(&observed);
    let path = target_dir().join("reliability-faults.md");
    match std::fs::create_dir_all(target_dir()).and_then(|_| std::fs::write(&path, &md)) {
        Ok(()) => eprintln!("reliability faults: table written to {}", path.display()),
        Err(e) => eprintln!(
            "reliability faults: could not write {}: {e}",
            path.display()
        ),
    }
    let slowest = observed
        .iter()
        .max_by_key(|o| o.elapsed)
        .map(|o| (o.fault, o.elapsed));
    eprintln!(
        "reliability faults: {n} cases in {:.1} s (slowest: {slowest:?})",
        started.elapsed().as_secs_f64()
    );

    let failures: Vec<String> = observed
        .iter()
        .filter(|o| !o.problems.is_empty())
        .map(|o| {
            format!(
                "{}: {}\n    message: {}",
                o.fault,
                o.problems.join("; "),
                o.message
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {n} case(s) went wrong:\n{}\n\n{md}",
        failures.len(),
        failures.join("\n")
    );
}
