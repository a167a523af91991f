#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Property tests that throw random and mutated input at everything easel parses from outside:
//! image answers and stream events, the SSE path of the client (against the fake server), error
//! bodies, stored records, JSON-lines import, the config file, key names, ids and cursors.
//!
//! Properties: nothing panics; an error is non-empty text that names what was wrong; whatever is
//! shown through `easel::sanitize::line` holds no unsafe character; what parses round-trips.
//!
//! Inputs are random bytes or strings, random JSON trees built from the field names each parser
//! cares about, and real inputs (recorded answers, a real export, the config template) mutated
//! by byte flips, deletions, insertions, truncation, duplication and spliced hostile tokens.
//!
//! Cases: 2,000 per property (`PROPTEST_CASES` overrides), 16 for the SSE path, which runs a
//! real HTTP exchange per case (`EASEL_FUZZ_SSE_CASES` overrides). Each target prints its count
//! and the last to finish prints `fuzz: N cases over M targets`.

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use easel::api::response::{StreamItem, parse_images_response, parse_stream_data};
use easel::api::{
    ApiError, ClientOptions, ErrorKind, GenerationParams, ImagesClient, ProviderRules,
};
use easel::catalog::Catalog;
use easel::config::{self, Paths, Settings};
use easel::sanitize;
use easel::store::record::{self, GenerationRecord, RecordedError, Status};
use easel::store::transfer;
use easel::store::{Cursor, HistoryStore, Id, SavedImage, SledStore};
use easel::studio::keymap::Key;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::fake_server::{FakeServer, Reply, render_image};

// ---------------------------------------------------------------------------------------------
// Counting and running
// ---------------------------------------------------------------------------------------------

/// How many `#[test]` targets this file has (for the total line).
const TARGETS: usize = 10;
static CASES_RUN: AtomicUsize = AtomicUsize::new(0);
static TARGETS_DONE: AtomicUsize = AtomicUsize::new(0);

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn cases() -> u32 {
    env_u32("PROPTEST_CASES", 2_000)
}

/// Run one property for `cases` cases, count them, print the count (and the total when this is
/// the last target to finish), then fail with proptest's minimal input if the property broke.
fn fuzz<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let count = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, |v| {
        count.fetch_add(1, Ordering::Relaxed);
        test(v)
    });
    let n = count.load(Ordering::Relaxed);
    let total = CASES_RUN.fetch_add(n, Ordering::SeqCst) + n;
    eprintln!("fuzz target {name}: {n} cases");
    if TARGETS_DONE.fetch_add(1, Ordering::SeqCst) + 1 == TARGETS {
        eprintln!("fuzz: {total} cases over {TARGETS} targets");
    }
    if let Err(e) = result {
        panic!("fuzz target {name} failed: {e}");
    }
}

/// The error is text that says something, and shows cleanly.
fn check_text(what: &str, e: &str) -> Result<(), TestCaseError> {
    prop_assert!(!e.trim().is_empty(), "{what}: an empty error");
    let shown = sanitize::line(e);
    prop_assert!(
        !shown.chars().any(sanitize::is_unsafe),
        "{what}: unsafe characters survive sanitize::line: {shown:?}"
    );
    Ok(())
}

fn starts_with_any(e: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| e.starts_with(p))
}

// ---------------------------------------------------------------------------------------------
// Inputs: mutations, JSON trees, hostile tokens
// ---------------------------------------------------------------------------------------------

/// Pieces spliced into inputs: JSON and TOML syntax, numbers at the edges, escapes, hostile text.
const TOKENS: &[&str] = &[
    "\"",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "null",
    "true",
    "-1",
    "0",
    "1e999",
    "-0.5",
    "18446744073709551616",
    "\"\\u001b[2J\"",
    "\\",
    "\\u0000",
    "\u{202e}",
    "\u{9b}",
    "\u{200b}",
    "\u{feff}",
    "\x1b]52;c;aGk=\x07",
    "\x1bP+q\x1b\\",
    "\n",
    "\r\n",
    "=",
    "[[",
    "]]",
    "'''",
    "\"\"\"",
    "#",
    "data: ",
    "[DONE]",
    "\u{0}",
    "🎨",
    "..",
    "/",
    "../../etc/passwd",
    "/etc/passwd",
    "\u{ffff}",
];

#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Truncate(usize),
    Splice(usize, usize),
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Set(p, b)),
        (any::<usize>(), 1usize..24).prop_map(|(p, n)| Edit::Delete(p, n)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(p, b)| Edit::Insert(p, b)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(p, t)| Edit::Splice(p, t)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Edit::Duplicate(p, n)),
    ]
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(edit(), 1..5)
}

fn apply(base: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = base.to_vec();
    for e in edits {
        let at = |p: usize, len: usize| if len == 0 { 0 } else { p % (len + 1) };
        match e {
            Edit::Set(p, b) => {
                if !out.is_empty() {
                    let i = p % out.len();
                    out[i] = *b;
                }
            }
            Edit::Delete(p, n) => {
                let i = at(*p, out.len());
                let end = (i + n).min(out.len());
                out.drain(i..end);
            }
            Edit::Insert(p, bytes) => {
                let i = at(*p, out.len());
                out.splice(i..i, bytes.iter().copied());
            }
            Edit::Truncate(p) => {
                let i = at(*p, out.len());
                out.truncate(i);
            }
            Edit::Splice(p, t) => {
                let i = at(*p, out.len());
                out.splice(i..i, TOKENS[*t].bytes());
            }
            Edit::Duplicate(p, n) => {
                let i = at(*p, out.len());
                let end = (i + n).min(out.len());
                let copy = out[i..end].to_vec();
                out.splice(end..end, copy);
            }
        }
    }
    out
}

/// Random bytes, or one of `seeds` mutated (three times as likely).
fn bytes_from(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = seeds.len();
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..300),
        3 => (0..n, edits()).prop_map(move |(i, e)| apply(&seeds[i], &e)),
    ]
}

/// Like [`bytes_from`], as text (invalid UTF-8 replaced), plus arbitrary strings.
fn text_from(seeds: Vec<String>) -> impl Strategy<Value = String> {
    let bytes: Vec<Vec<u8>> = seeds.into_iter().map(String::into_bytes).collect();
    prop_oneof![
        1 => any::<String>(),
        3 => bytes_from(bytes).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

/// JSON trees whose keys are the names a parser looks for, and whose leaves are awkward.
fn json_tree(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (0..TOKENS.len()).prop_map(|t| Value::String(TOKENS[t].to_string())),
        any::<String>().prop_map(Value::String),
        Just(Value::String(STANDARD.encode(tiny_png()))),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((0..keys.len(), inner), 0..6).prop_map(move |kv| Value::Object(
                kv.into_iter()
                    .map(|(k, v)| (keys[k].to_string(), v))
                    .collect()
            )),
        ]
    })
}

fn tiny_png() -> Vec<u8> {
    render_image(7, 8, 6, "png", false)
}

// ---------------------------------------------------------------------------------------------
// Response parsing
// ---------------------------------------------------------------------------------------------

const ANSWER_KEYS: &[&str] = &[
    "created",
    "data",
    "b64_json",
    "url",
    "revised_prompt",
    "usage",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "input_tokens_details",
    "text_tokens",
    "image_tokens",
    "size",
    "quality",
    "background",
    "output_format",
    "error",
    "message",
];

fn answer_seeds() -> Vec<Vec<u8>> {
    let b64 = STANDARD.encode(tiny_png());
    vec![
        json!({"created": 1713833628, "data": [{"b64_json": b64}], "background": "opaque", "output_format": "png", "size": "1024x1024",
               "quality": "high", "usage": {"total_tokens": 100, "input_tokens": 50, "output_tokens": 50,
               "input_tokens_details": {"text_tokens": 10, "image_tokens": 40}}})
        .to_string(),
        json!({"created": 1700000000, "data": [{"url": "https://files.example/img.png", "revised_prompt": "A serene lighthouse"}]}).to_string(),
        json!({"created": 1.7e9, "id": "x", "data": [{"url": "http://localhost:8080/generated-images/b64.png"}],
               "usage": {"prompt_tokens": 0, "total_tokens": "12"}, "quality": "ultra"})
        .to_string(),
        json!({"error": {"message": "bad", "type": "invalid_request_error"}}).to_string(),
        json!({"created": 1, "data": []}).to_string(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

#[test]
fn images_response_parsing() {
    let input = prop_oneof![
        3 => bytes_from(answer_seeds()),
        1 => json_tree(ANSWER_KEYS).prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(json_tree(ANSWER_KEYS), 0..3)
            .prop_map(|d| json!({"created": 1, "data": d}).to_string().into_bytes()),
    ];
    fuzz("parse_images_response", cases(), input, |body| {
        match parse_images_response(&body) {
            Ok(r) => prop_assert!(!r.data.is_empty(), "an answer without images was accepted"),
            Err(e) => {
                check_text("parse_images_response", &e)?;
                prop_assert!(
                    e.starts_with("the answer "),
                    "the error does not say it is about the answer: {e}"
                );
            }
        }
        Ok(())
    });
}

const EVENT_KEYS: &[&str] = &[
    "type",
    "b64_json",
    "partial_image_index",
    "usage",
    "revised_prompt",
    "size",
    "quality",
    "background",
    "output_format",
    "error",
    "message",
    "code",
    "created_at",
    "input_tokens",
];

fn event_seeds() -> Vec<String> {
    let b64 = STANDARD.encode(tiny_png());
    vec![
        json!({"type": "image_generation.partial_image", "b64_json": b64, "partial_image_index": 2, "size": "1024x1024"}).to_string(),
        json!({"type": "image_generation.completed", "b64_json": b64, "usage": {"total_tokens": 3, "input_tokens": 1, "output_tokens": 2}})
            .to_string(),
        json!({"type": "error", "error": {"message": "bad", "code": "server_error"}}).to_string(),
        "[DONE]".to_string(),
        json!({"type": "keepalive"}).to_string(),
    ]
}

#[test]
fn stream_event_parsing() {
    let kinds = prop_oneof![
        Just("image_generation.partial_image"),
        Just("image_generation.completed"),
        Just("image_edit.partial_image"),
        Just("error"),
        Just("response.created"),
    ];
    let input = prop_oneof![
        3 => text_from(event_seeds()),
        1 => json_tree(EVENT_KEYS).prop_map(|v| v.to_string()),
        1 => (kinds, json_tree(EVENT_KEYS)).prop_map(|(k, mut v)| {
            if let Some(o) = v.as_object_mut() {
                o.insert("type".into(), k.into());
            }
            v.to_string()
        }),
    ];
    fuzz("parse_stream_data", cases(), input, |data| {
        match parse_stream_data(&data) {
            Ok(
                StreamItem::Partial { .. }
                | StreamItem::Completed(_)
                | StreamItem::Error(_)
                | StreamItem::Ignored
                | StreamItem::Done,
            ) => {}
            Err(e) => {
                check_text("parse_stream_data", &e)?;
                prop_assert!(
                    starts_with_any(
                        &e,
                        &[
                            "a stream event",
                            "a partial image event",
                            "the completed event"
                        ]
                    ),
                    "the error does not say which event was wrong: {e}"
                );
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// The SSE path, through the client and a real HTTP exchange
// ---------------------------------------------------------------------------------------------

/// One piece of a stream body.
fn sse_piece() -> impl Strategy<Value = Vec<u8>> {
    let b64 = STANDARD.encode(tiny_png());
    let partial = json!({"type": "image_generation.partial_image", "b64_json": b64, "partial_image_index": 0}).to_string();
    let completed = json!({"type": "image_generation.completed", "b64_json": b64, "usage": {"input_tokens": 1}}).to_string();
    let error = json!({"type": "error", "error": {"message": "it broke \u{1b}[2J", "code": "server_error"}}).to_string();
    let seeds: Vec<Vec<u8>> = [&partial, &completed, &error]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    prop_oneof![
        3 => Just(format!("data: {partial}\n\n").into_bytes()),
        3 => Just(format!("event: image_generation.completed\ndata: {completed}\n\n").into_bytes()),
        1 => Just(format!("event: error\ndata: {error}\n\n").into_bytes()),
        1 => Just(b"data: [DONE]\n\n".to_vec()),
        1 => Just(b": keep-alive\n\n".to_vec()),
        1 => Just(b"\r\n".to_vec()),
        2 => bytes_from(seeds).prop_map(|b| {
            let mut line = b"data: ".to_vec();
            line.extend(b);
            line.extend_from_slice(b"\n\n");
            line
        }),
        1 => prop::collection::vec(any::<u8>(), 0..40),
        1 => json_tree(EVENT_KEYS).prop_map(|v| format!("data: {v}\n\n").into_bytes()),
    ]
}

#[test]
fn sse_through_the_client() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(FakeServer::start());
    let mut opts = ClientOptions::new("OpenAI", &server.base_url());
    opts.api_key = easel::secret::ApiKey::new("sk-fuzz");
    opts.max_retries = 0;
    opts.timeout = std::time::Duration::from_secs(10);
    opts.stream_idle_timeout = std::time::Duration::from_secs(2);
    let client = rt.block_on(async { ImagesClient::new(opts).unwrap() });
    let params = GenerationParams {
        prompt: "fuzz".into(),
        stream: true,
        partial_images: Some(1),
        ..Default::default()
    };
    let checked =
        easel::api::request::check(&params, &Catalog::builtin(), &ProviderRules::default())
            .unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    fuzz(
        "sse (client against the fake server)",
        env_u32("EASEL_FUZZ_SSE_CASES", 16),
        prop::collection::vec(sse_piece(), 0..8),
        |pieces| {
            let body: Vec<u8> = pieces.concat();
            server.push(Reply::raw(200, "text/event-stream", body));
            let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
            let result = rt.block_on(client.generate(&checked, &cancel, &tx));
            match result {
                Ok(out) => prop_assert!(
                    !out.images.is_empty() && out.images.iter().all(|i| i.info.width > 0)
                ),
                Err(e) => {
                    let shown = e.to_string();
                    check_text("sse", &shown)?;
                    prop_assert!(
                        !shown.chars().any(sanitize::is_unsafe),
                        "an error shows unsafe characters: {shown:?}"
                    );
                    prop_assert!(
                        matches!(
                            e.kind,
                            ErrorKind::BadAnswer
                                | ErrorKind::Server
                                | ErrorKind::InvalidRequest
                                | ErrorKind::Connection
                                | ErrorKind::RateLimited
                        ),
                        "unexpected kind {:?}: {shown}",
                        e.kind
                    );
                }
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Error bodies
// ---------------------------------------------------------------------------------------------

const ERROR_KEYS: &[&str] = &[
    "error",
    "message",
    "type",
    "param",
    "code",
    "moderation_details",
    "categories",
    "flagged",
];

#[test]
fn error_body_parsing() {
    let seeds: Vec<Vec<u8>> = [
        r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#,
        r#"{"error":{"message":"Your request was rejected","type":"image_generation_user_error","code":"moderation_blocked","moderation_details":{"categories":["violence"]}}}"#,
        r#"{"error":{"message":"Unknown parameter: 'style'.","type":"invalid_request_error","param":"style","code":"unknown_parameter"}}"#,
        r#"{"error":{"code":500,"message":"could not load model: rpc error","type":""}}"#,
        "<html><body>502 Bad Gateway</body></html>",
        "",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let body = prop_oneof![3 => bytes_from(seeds), 1 => json_tree(ERROR_KEYS).prop_map(|v| v.to_string().into_bytes())];
    let request_id = prop::option::of(text_from(vec!["req_123".into(), "req_\u{1b}[2J".into()]));
    fuzz(
        "ApiError::from_response",
        cases(),
        (100u16..600, body, request_id),
        |(status, body, rid)| {
            let e = ApiError::from_response("OpenAI", status, &body, rid);
            let shown = e.to_string();
            check_text("from_response", &shown)?;
            prop_assert!(
                !shown.chars().any(sanitize::is_unsafe),
                "the error shows unsafe characters: {shown:?}"
            );
            prop_assert!(!e.message.trim().is_empty(), "an empty message");
            prop_assert_eq!(e.status, Some(status));
            let want = match status {
                401 => Some(ErrorKind::Authentication),
                403 => Some(ErrorKind::Permission),
                404 => Some(ErrorKind::NotFound),
                s if s >= 500 => Some(ErrorKind::Server),
                _ => None,
            };
            if let Some(k) = want {
                prop_assert_eq!(e.kind, k);
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Stored records
// ---------------------------------------------------------------------------------------------

fn sample_record(i: u32, status: Status) -> GenerationRecord {
    let mut r = GenerationRecord::queued(
        Id::new(),
        GenerationParams {
            prompt: format!("sample {i}: a lighthouse"),
            size: Some("1024x1024".into()),
            ..Default::default()
        },
        "openai",
        false,
        chrono::Utc::now(),
    );
    r.status = status;
    r.attempts = 1 + i % 3;
    r.tags = vec!["sea".into(), format!("t{i}")];
    r.starred = i.is_multiple_of(2);
    if status == Status::Succeeded {
        r.outputs = vec![SavedImage {
            path: PathBuf::from(format!("images/2026-11-28/214700123_{}_1.png", r.id)),
            format: "png".into(),
            width: 8,
            height: 6,
            bytes: 123,
            sha256: "ab".repeat(32),
        }];
        r.usage = Some(easel::api::Usage {
            input_tokens: Some(5),
            output_tokens: Some(9),
            total_tokens: Some(14),
            input_tokens_details: None,
        });
        r.cost_usd = Some(0.04);
        r.request_id = Some(format!("req_{i}"));
        r.revised_prompt = Some("a serene lighthouse".into());
    }
    if status == Status::Failed {
        r.error = Some(RecordedError {
            kind: "server".into(),
            message: "OpenAI had a server error (HTTP 500): boom [request req_9]".into(),
            code: None,
            status: Some(500),
            request_id: Some("req_9".into()),
            hint: Some("retry later".into()),
        });
    }
    r
}

const RECORD_KEYS: &[&str] = &[
    "v", "record", "id", "prompt", "model", "provider", "params", "status", "created", "outputs",
    "path", "attempts", "error", "kind", "message", "tags", "starred", "usage",
];

#[test]
fn record_decoding() {
    let seeds: Vec<Vec<u8>> = [
        Status::Succeeded,
        Status::Failed,
        Status::Queued,
        Status::Interrupted,
    ]
    .iter()
    .enumerate()
    .map(|(i, s)| record::encode(&sample_record(i as u32, *s)).unwrap())
    .collect();
    let input = prop_oneof![
        4 => bytes_from(seeds),
        1 => json_tree(RECORD_KEYS).prop_map(|v| v.to_string().into_bytes()),
        1 => (0u32..4, json_tree(RECORD_KEYS)).prop_map(|(v, r)| json!({"v": v, "record": r}).to_string().into_bytes()),
    ];
    fuzz("record::decode", cases(), input, |bytes| {
        match record::decode(&bytes) {
            Ok(mut r) => {
                // What decodes, encodes and decodes again to the same record (the cost is a float,
                // which serde_json reads back to within one unit of the last place).
                let mut again = record::decode(&record::encode(&r).unwrap()).unwrap();
                prop_assert_eq!(again.cost_usd.is_some(), r.cost_usd.is_some());
                (again.cost_usd, r.cost_usd) = (None, None);
                prop_assert_eq!(again, r);
            }
            Err(e) => {
                check_text("record::decode", &e)?;
                prop_assert!(
                    starts_with_any(
                        &e,
                        &[
                            "not a record envelope",
                            "record version",
                            "written by a newer easel"
                        ]
                    ),
                    "the error does not say what is wrong with the record: {e}"
                );
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// JSON-lines import
// ---------------------------------------------------------------------------------------------

#[test]
fn json_lines_import() {
    let dir = tempfile::tempdir().unwrap();
    let source = SledStore::open(&dir.path().join("source")).unwrap();
    for (i, s) in [
        Status::Succeeded,
        Status::Failed,
        Status::Running,
        Status::Cancelled,
    ]
    .into_iter()
    .enumerate()
    {
        source.put(&sample_record(i as u32, s)).unwrap();
    }
    let mut export = Vec::new();
    transfer::export(&source, &mut export).unwrap();
    drop(source);
    let lines: Vec<Vec<u8>> = export
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let data = dir.path().join("target");
    let store = Arc::new(SledStore::open(&data).unwrap());
    std::fs::create_dir_all(data.join("images")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc", data.join("images/escape")).unwrap();

    let whole = export.clone();
    let input = prop_oneof![
        // The whole export, mutated.
        2 => (edits()).prop_map(move |e| apply(&whole, &e)),
        // A few lines, each real-and-mutated or random.
        3 => prop::collection::vec(
            prop_oneof![3 => bytes_from(lines.clone()), 1 => json_tree(RECORD_KEYS).prop_map(|v| v.to_string().into_bytes())],
            1..4
        )
        .prop_map(|ls| ls.join(&b'\n')),
    ];
    let data2 = data.clone();
    let held = store.clone();
    fuzz("transfer::import", cases(), input, move |text| {
        let lines = text
            .split(|b| *b == b'\n')
            .filter(|l| !String::from_utf8_lossy(l).trim().is_empty())
            .count();
        let report = match transfer::import(store.as_ref(), &data2, &mut text.as_slice()) {
            Ok(r) => r,
            Err(e) => {
                return Err(TestCaseError::fail(format!(
                    "the import stopped instead of refusing a line: {e}"
                )));
            }
        };
        prop_assert_eq!(
            report.imported + report.present + report.refused.len(),
            lines,
            "every line is imported, present or refused"
        );
        for (n, why) in &report.refused {
            prop_assert!(*n >= 1 && *n <= text.split(|b| *b == b'\n').count());
            check_text("import", why)?;
            prop_assert!(
                !why.chars().any(sanitize::is_unsafe),
                "a refusal shows unsafe characters: {why:?}"
            );
        }
        Ok(())
    });
    // Nothing imported points outside the data folder, and nothing imported runs by itself.
    let store = held;
    store
        .for_each(&mut |r| {
            assert!(
                !matches!(r.status, Status::Queued | Status::Running),
                "an imported job is {}",
                r.status
            );
            for o in &r.outputs {
                assert!(
                    transfer::check_path(&data, &o.path).is_ok(),
                    "{} escapes",
                    o.path.display()
                );
            }
            Ok(())
        })
        .unwrap();
    assert!(store.skipped().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Config, keys, ids, cursors
// ---------------------------------------------------------------------------------------------

#[test]
fn config_parsing() {
    let seeds = vec![
        config::TEMPLATE.to_string(),
        "[defaults]\nmodel = \"dall-e-3\"\nquality = \"hd\"\n[network]\nmax_retries = 0\n".to_string(),
        "provider = \"local\"\n[providers.local]\nbase_url = \"http://localhost:8080/v1\"\ndialect = \"dalle\"\nfields = [\"n\", \"size\"]\n"
            .to_string(),
        "[models.\"my-model\"]\nlike = \"gpt-image-2\"\nn_max = 4\n[keys.global]\nquit = \"ctrl-q\"\n".to_string(),
    ];
    let structured = (
        prop::sample::select(vec![
            "defaults",
            "network",
            "queue",
            "demo",
            "providers.x",
            "models.m",
            "keys.global",
            "keys.history",
            "nope",
        ]),
        prop::sample::select(vec![
            "model",
            "n",
            "max_retries",
            "concurrency",
            "base_url",
            "like",
            "quit",
            "search",
            "latency_ms",
            "x",
        ]),
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<String>().prop_map(|s| format!("{s:?}")),
            Just("true".to_string()),
            Just("[\"n\", \"size\"]".to_string()),
            Just("{ a = 1 }".to_string()),
        ],
    )
        .prop_map(|(t, k, v)| format!("[{t}]\n{k} = {v}\n"));
    let input = prop_oneof![4 => text_from(seeds), 1 => structured];
    let path = Path::new("/home/u/.config/easel/config.toml");
    fuzz("config::parse", cases(), input, |text| {
        match config::parse(&text, path) {
            Ok(file) => {
                // A file that parses may still be refused as a whole; that must say why, too.
                let paths = Paths {
                    config_file: path.to_path_buf(),
                    data_dir: "/d".into(),
                };
                if let Err(e) = Settings::from_file(paths, file) {
                    check_text("Settings::from_file", &e.0)?;
                    prop_assert!(
                        e.0.starts_with("config file /home/u/.config/easel/config.toml: "),
                        "{}",
                        e.0
                    );
                }
            }
            Err(e) => {
                check_text("config::parse", &e.0)?;
                prop_assert!(
                    !e.0.chars().any(sanitize::is_unsafe),
                    "a config error shows unsafe characters: {:?}",
                    e.0
                );
                let rest =
                    e.0.strip_prefix("config file /home/u/.config/easel/config.toml");
                prop_assert!(
                    rest.is_some_and(|r| r.trim_start_matches(|c: char| c != ':').len() > 2),
                    "the error does not name the file and the problem: {}",
                    e.0
                );
            }
        }
        Ok(())
    });
}

#[test]
fn key_parsing() {
    let seeds = [
        "ctrl-s",
        "alt-enter",
        "J",
        "f1",
        "shift-tab",
        "-",
        "ctrl--",
        "space",
        "pgdn",
        "f12",
        "backtab",
        "c-a-x",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let structured = (
        prop::collection::vec(
            prop::sample::select(vec!["ctrl", "alt", "shift", "meta", "c", "x", "", "F1"]),
            0..3,
        ),
        any::<String>(),
    )
        .prop_map(|(mods, key)| {
            let mut s = mods.join("-");
            if !s.is_empty() {
                s.push('-');
            }
            s + &key
        });
    fuzz(
        "Key::parse",
        cases(),
        prop_oneof![2 => text_from(seeds), 1 => structured],
        |text| {
            if let Err(e) = Key::parse(&text) {
                check_text("Key::parse", &e)?;
                prop_assert!(
                    e.contains("key") || e.contains("modifier"),
                    "the error does not say what is wrong: {e}"
                );
            }
            Ok(())
        },
    );
}

#[test]
fn id_parsing() {
    let id = Id::new();
    let seeds = vec![
        id.to_string(),
        id.uuid().to_string(),
        id.uuid().simple().to_string(),
        id.short(),
    ];
    let hexy = "[0-9a-fA-F-]{0,40}";
    fuzz(
        "Id::parse",
        cases(),
        prop_oneof![3 => text_from(seeds), 1 => hexy.prop_map(String::from)],
        |text| {
            if let Some(id) = Id::parse(&text) {
                prop_assert_eq!(Id::parse(&id.to_string()), Some(id));
                prop_assert_eq!(Id::from_key(&id.key()), Some(id));
            }
            Ok(())
        },
    );
}

#[test]
fn cursor_decoding() {
    let seeds = vec![
        Cursor::Before(Id::new()).encode(),
        Cursor::Offset(40).encode(),
        "o18446744073709551615".into(),
        "b".into(),
    ];
    fuzz("Cursor::decode", cases(), text_from(seeds), |text| {
        if let Some(c) = Cursor::decode(&text) {
            prop_assert_eq!(Cursor::decode(&c.encode()), Some(c));
        }
        Ok(())
    });
}
