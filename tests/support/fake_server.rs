//! An in-process fake of the OpenAI Images API (`POST /v1/images/generations`) and of the quirks of
//! OpenAI-compatible servers, for tests and benchmarks.
//!
//! The server is a minimal HTTP/1.1 implementation on a raw [`TcpListener`] bound to
//! `127.0.0.1:0`, so that every fault (hang, reset, body cut short, stream cut, …) can be produced
//! exactly. It supports keep-alive, `Content-Length` and chunked request bodies; responses use
//! `Content-Length`, chunked encoding (server-sent events) or close-delimited bodies.
//!
//! ```ignore
//! let server = FakeServer::start().await;
//! server.push(Reply::rate_limited(Some(1), None));
//! server.push(Reply::image());
//! // point the client at server.base_url() ...
//! assert_eq!(server.generation_count(), 2);
//! ```
//!
//! Replies pushed with [`FakeServer::push`] answer generation requests in FIFO order; when the
//! script is empty the default reply (initially [`Reply::image`]) answers. The server task and
//! every connection it serves are aborted when the [`FakeServer`] is dropped.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Cursor};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Side length of generated images unless real sizes are asked for.
pub const SMALL_SIDE: u32 = 64;
/// Largest side generated when real sizes are asked for.
pub const MAX_SIDE: u32 = 4096;
/// The default `x-request-id` prefix; the full id is `req_<Recorded::id>`.
pub const REQUEST_ID_PREFIX: &str = "req_";

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 256 * 1024 * 1024;
const HUGE_CHUNK: usize = 64 * 1024;
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// Server-wide request counter, 1-based; the response's `x-request-id` is `req_<id>`.
    pub id: u64,
    /// Which TCP connection carried the request (1-based, in accept order).
    pub connection: u64,
    pub method: String,
    /// The path without the query string, e.g. `/v1/images/generations`.
    pub path: String,
    pub query: Option<String>,
    /// Header names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The `authorization` header, if any.
    pub authorization: Option<String>,
    /// The body parsed as JSON, or `Value::Null` if it is empty or not JSON. A
    /// `multipart/form-data` body (edits, variations) is given as JSON too: its text fields, typed
    /// as the wire format types them (`n` a number, `stream` a boolean), and its files as
    /// `"<binary: N bytes>"` strings (`image[]` parts gathered into an `image` array).
    pub body: Value,
    pub raw_body: Vec<u8>,
    /// The parts of a `multipart/form-data` body, in order (empty for other bodies).
    pub parts: Vec<FormPart>,
    /// When the request had been read completely (tokio clock, so it follows paused time).
    pub at: Instant,
}

impl Recorded {
    /// The first header of that (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is a `POST …/images/generations` (or an edit or a variation: every request
    /// that makes images).
    pub fn is_generation(&self) -> bool {
        self.method == "POST" && is_generation_path(&self.path)
    }

    /// Whether this is a `POST …/images/edits`.
    pub fn is_edit(&self) -> bool {
        self.method == "POST" && self.path.ends_with("/images/edits")
    }

    /// Whether this is a `POST …/images/variations`.
    pub fn is_variation(&self) -> bool {
        self.method == "POST" && self.path.ends_with("/images/variations")
    }

    /// The file parts named `name`, in order.
    pub fn files(&self, name: &str) -> Vec<&FormPart> {
        self.parts
            .iter()
            .filter(|p| p.name == name && p.filename.is_some())
            .collect()
    }

    /// How this multipart request breaks the wire format (`CreateImageEditRequest` or
    /// `CreateImageVariationRequest`); empty when it keeps it.
    pub fn contract_violations(&self) -> Vec<String> {
        let schema = if self.is_variation() {
            "CreateImageVariationRequest"
        } else {
            "CreateImageEditRequest"
        };
        multipart_violations(schema, &self.headers, &self.parts)
    }
}

/// One part of a `multipart/form-data` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormPart {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// What the server answers to one generation request. Build one with the constructors and adjust
/// it with the `with_*` / `without_*` / `via_*` modifiers.
#[derive(Clone, Debug)]
pub struct Reply {
    kind: Kind,
    headers: Vec<(String, String)>,
    created: bool,
    metadata: bool,
    usage: bool,
    request_id: bool,
    revised_prompt: Option<String>,
    sized: bool,
    event_delay: Duration,
}

#[derive(Clone, Debug)]
enum Kind {
    /// Like the real server: stream if the request says so, URLs if `response_format` is `url`.
    Auto,
    Images {
        content: Content,
        delivery: Delivery,
    },
    Stream {
        partials: Option<u8>,
        end: StreamEnd,
    },
    Json {
        status: u16,
        body: Value,
    },
    Raw {
        status: u16,
        content_type: String,
        body: Bytes,
    },
    WrongShapeImages,
    EmptyData,
    TruncatedJson,
    Hang,
    ResetMidBody,
    ConnectionReset,
    /// Like `Raw`, sent with chunked transfer encoding in chunks of `chunk` bytes (as a real
    /// server's TLS records arrive: the client sees many small pieces).
    RawChunked {
        status: u16,
        content_type: String,
        body: Bytes,
        chunk: usize,
    },
    /// A stream whose one `data:` line never ends: `chunk` bytes every `every`.
    EndlessLine {
        chunk: usize,
        every: Duration,
    },
}

#[derive(Clone, Debug)]
enum Content {
    Generated,
    Static {
        bytes: Bytes,
        mime: String,
        ext: String,
    },
}

#[derive(Clone, Debug)]
enum Delivery {
    B64,
    Url,
    DataUrl,
    LiteralB64(String),
    /// A URL on this server: the path (starting with `/`) is appended to the origin.
    ServerPath(String),
    /// Like `Url`, through that many redirects on this server.
    UrlRedirected(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StreamEnd {
    Completed,
    Cut,
    ErrorEvent,
    NeverCompletes,
}

impl Reply {
    fn new(kind: Kind) -> Reply {
        Reply {
            kind,
            headers: Vec::new(),
            created: true,
            metadata: true,
            usage: true,
            request_id: true,
            revised_prompt: None,
            sized: false,
            event_delay: Duration::ZERO,
        }
    }

    fn images(content: Content, delivery: Delivery) -> Reply {
        Reply::new(Kind::Images { content, delivery })
    }

    fn error_body(status: u16, error: Value) -> Reply {
        Reply::new(Kind::Json {
            status,
            body: json!({ "error": error }),
        })
    }

    /// Behaves like the real API: a stream (with the requested `partial_images`) when the request
    /// has `stream: true`, `url`s when it has `response_format: "url"`, base64 otherwise.
    pub fn auto() -> Reply {
        Reply::new(Kind::Auto)
    }

    /// 200 JSON in the GPT shape: one base64 image per requested `n` (in the requested
    /// `output_format`), `created`, `usage`, and `background`/`output_format`/`size`/`quality`
    /// echoing the request. Images are small (64 px on the long side, aspect kept) unless
    /// [`Reply::sized`] or [`FakeServer::set_real_sizes`].
    pub fn image() -> Reply {
        Reply::images(Content::Generated, Delivery::B64)
    }

    /// Like [`Reply::image`], with images of the requested size (`auto` = 1024x1024).
    pub fn image_sized() -> Reply {
        Reply::image().sized()
    }

    /// 200 JSON in the DALL·E / LocalAI shape (`created` and `data` only): `data[].url` points at
    /// `GET {base}/files/<name>` on this server.
    pub fn image_url() -> Reply {
        Reply::image().via_url().without_usage().without_metadata()
    }

    /// 200 JSON with `data[].url = "data:image/png;base64,…"` (compatible-server shape).
    pub fn data_url() -> Reply {
        Reply::image()
            .via_data_url()
            .without_usage()
            .without_metadata()
    }

    /// 200 `text/event-stream`: `partials` `image_generation.partial_image` events (index 0..),
    /// one `image_generation.completed` per requested `n` (with usage), then `data: [DONE]`.
    pub fn stream(partials: u8) -> Reply {
        Reply::new(Kind::Stream {
            partials: Some(partials),
            end: StreamEnd::Completed,
        })
    }

    /// A stream whose partial count is the request's `partial_images` (default 0).
    pub fn stream_as_requested() -> Reply {
        Reply::new(Kind::Stream {
            partials: None,
            end: StreamEnd::Completed,
        })
    }

    /// One partial event, then the connection is closed without finishing the chunked body.
    pub fn stream_cut_after_partial() -> Reply {
        Reply::new(Kind::Stream {
            partials: Some(1),
            end: StreamEnd::Cut,
        })
    }

    /// A stream whose only event is `event: error` with
    /// `{"type":"error","error":{"message","type","code","param"}}`; the body then ends cleanly.
    pub fn stream_error_event() -> Reply {
        Reply::stream_error_after(0)
    }

    /// `partials` partial events, then the error event of [`Reply::stream_error_event`].
    pub fn stream_error_after(partials: u8) -> Reply {
        Reply::new(Kind::Stream {
            partials: Some(partials),
            end: StreamEnd::ErrorEvent,
        })
    }

    /// One partial event, then nothing until the client disconnects.
    pub fn stream_never_completes() -> Reply {
        Reply::new(Kind::Stream {
            partials: Some(1),
            end: StreamEnd::NeverCompletes,
        })
    }

    /// 200 `text/event-stream` that starts a completed event's `data:` line and never ends it:
    /// `chunk` more bytes of base64 every `every`, until the client goes away.
    pub fn stream_endless_line(chunk: usize, every: Duration) -> Reply {
        Reply::new(Kind::EndlessLine { chunk, every })
    }

    /// Like [`Reply::raw`], but sent with chunked transfer encoding, `chunk` bytes a chunk.
    pub fn raw_chunked(
        status: u16,
        content_type: &str,
        body: impl Into<Bytes>,
        chunk: usize,
    ) -> Reply {
        Reply::new(Kind::RawChunked {
            status,
            content_type: content_type.to_owned(),
            body: body.into(),
            chunk: chunk.max(1),
        })
    }

    /// A redirect (`status` 301, 302, 303, 307 or 308) to `location`, with an empty body.
    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::raw(status, "text/plain", Bytes::new()).with_header("location", location)
    }

    /// `{"error":{"message","type","param":null,"code"}}` with that status.
    pub fn error(status: u16, error_type: &str, code: &str, message: &str) -> Reply {
        Reply::error_body(
            status,
            json!({ "message": message, "type": error_type, "param": null, "code": code }),
        )
    }

    /// Any JSON body with any status (e.g. a hand-written error object).
    pub fn json(status: u16, body: Value) -> Reply {
        Reply::new(Kind::Json { status, body })
    }

    /// 400 `image_generation_user_error` / `moderation_blocked` with `moderation_details`.
    pub fn moderation_blocked() -> Reply {
        Reply::error_body(
            400,
            json!({
                "message": "Your request was rejected by the safety system. If you believe this is \
                            an error, contact us at help.openai.com and include the request ID.",
                "type": "image_generation_user_error",
                "param": null,
                "code": "moderation_blocked",
                "moderation_details": { "flagged": true, "categories": ["violence"] },
            }),
        )
    }

    /// 400 `invalid_request_error` / `content_policy_violation` (the DALL·E refusal).
    pub fn content_policy_violation() -> Reply {
        Reply::error(
            400,
            "invalid_request_error",
            "content_policy_violation",
            "Your request was rejected as a result of our safety system.",
        )
    }

    /// 429 with type and code `insufficient_quota` (must not be retried).
    pub fn insufficient_quota() -> Reply {
        Reply::error(
            429,
            "insufficient_quota",
            "insufficient_quota",
            "You exceeded your current quota, please check your plan and billing details.",
        )
    }

    /// 429 `rate_limit_exceeded` with optional `retry-after-ms` and `retry-after` headers.
    pub fn rate_limited(retry_after_ms: Option<u64>, retry_after_s: Option<&str>) -> Reply {
        let mut reply = Reply::error(
            429,
            "requests",
            "rate_limit_exceeded",
            "Rate limit reached for images per minute. Please try again later.",
        );
        if let Some(ms) = retry_after_ms {
            reply = reply.with_header("retry-after-ms", ms.to_string());
        }
        if let Some(s) = retry_after_s {
            reply = reply.with_header("retry-after", s);
        }
        reply
    }

    /// 500 `server_error` (retryable).
    pub fn server_error() -> Reply {
        Reply::error_body(
            500,
            json!({
                "message": "The server had an error while processing your request. Sorry about that!",
                "type": "server_error",
                "param": null,
                "code": null,
            }),
        )
    }

    /// 503 overloaded (retryable).
    pub fn overloaded() -> Reply {
        Reply::error(
            503,
            "server_error",
            "overloaded",
            "The engine is currently overloaded, please try again later.",
        )
    }

    /// 401 `invalid_api_key`.
    pub fn unauthorized() -> Reply {
        Reply::error(
            401,
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
        )
    }

    /// 400 `unknown_parameter` naming `param` (as GPT models answer to `style`).
    pub fn unknown_parameter(param: &str) -> Reply {
        Reply::error_body(
            400,
            json!({
                "message": format!("Unknown parameter: '{param}'."),
                "type": "invalid_request_error",
                "param": param,
                "code": "unknown_parameter",
            }),
        )
    }

    /// LocalAI style: `{"error":{"code": <status as a number>, "message", "type": ""}}`.
    pub fn numeric_code_error(status: u16) -> Reply {
        Reply::error_body(
            status,
            json!({ "code": status, "message": "could not load model: rpc error", "type": "" }),
        )
    }

    /// Reads the request, then sends nothing until the client disconnects.
    pub fn hang() -> Reply {
        Reply::new(Kind::Hang)
    }

    /// 200 with a `content-length` and half of a valid image JSON body, then the connection closes.
    pub fn reset_mid_body() -> Reply {
        Reply::new(Kind::ResetMidBody)
    }

    /// No response at all: the connection is reset (RST) right after the request is read.
    pub fn connection_reset() -> Reply {
        Reply::new(Kind::ConnectionReset)
    }

    /// 200 with a complete HTTP body that is an image JSON document cut in the middle.
    pub fn truncated_json() -> Reply {
        Reply::new(Kind::TruncatedJson)
    }

    /// 200 `{"created":…,"data":"oops"}`.
    pub fn wrong_shape() -> Reply {
        Reply::new(Kind::Json {
            status: 200,
            body: json!({ "created": unix_now(), "data": "oops" }),
        })
    }

    /// 200 `{"created":…,"images":[{"b64_json":…}]}` (no `data`).
    pub fn wrong_shape_images() -> Reply {
        Reply::new(Kind::WrongShapeImages)
    }

    /// 200 `{"created":…,"data":[]}`.
    pub fn empty_data() -> Reply {
        Reply::new(Kind::EmptyData)
    }

    /// `b64_json = "!!!not base64!!!"`.
    pub fn not_base64() -> Reply {
        Reply::images(
            Content::Generated,
            Delivery::LiteralB64("!!!not base64!!!".to_owned()),
        )
    }

    /// `b64_json` = valid base64 of plain text.
    pub fn base64_not_image() -> Reply {
        Reply::bytes(
            b"this is plain text, not an image\n".as_slice(),
            "text/plain",
            "txt",
        )
    }

    /// `b64_json` whose bytes are an SVG document (combine with [`Reply::via_url`] for a URL).
    pub fn svg() -> Reply {
        Reply::bytes(SVG_DOC.as_bytes(), "image/svg+xml", "svg")
    }

    /// `b64_json` whose bytes are an HTML page (combine with [`Reply::via_url`] for a URL).
    pub fn html() -> Reply {
        Reply::bytes(HTML_DOC.as_bytes(), "text/html; charset=utf-8", "html")
    }

    /// `b64_json` of arbitrary bytes (served with `mime` and extension `ext` in URL modes).
    pub fn bytes(bytes: impl Into<Bytes>, mime: &str, ext: &str) -> Reply {
        Reply::images(
            Content::Static {
                bytes: bytes.into(),
                mime: mime.to_owned(),
                ext: ext.to_owned(),
            },
            Delivery::B64,
        )
    }

    /// `data[].url` points at a path of this server that answers 404.
    pub fn url_404() -> Reply {
        Reply::images(
            Content::Generated,
            Delivery::ServerPath("/v1/files/missing.png".to_owned()),
        )
        .without_usage()
        .without_metadata()
    }

    /// `data[].url` points at a path streaming `bytes` bytes (PNG signature then filler), with a
    /// `content-length`. Generated on the fly, never held in memory.
    pub fn url_huge(bytes: u64) -> Reply {
        Reply::images(
            Content::Generated,
            Delivery::ServerPath(format!("/v1/files/huge-{bytes}.png")),
        )
        .without_usage()
        .without_metadata()
    }

    /// Like [`Reply::url_huge`] but without `content-length`: the body ends when the server
    /// closes the connection, so only a limit enforced while streaming can catch it.
    pub fn url_huge_unsized(bytes: u64) -> Reply {
        Reply::images(
            Content::Generated,
            Delivery::ServerPath(format!("/v1/files/huge-unsized-{bytes}.png")),
        )
        .without_usage()
        .without_metadata()
    }

    /// Anything: that status, content type and body (with `x-request-id`).
    pub fn raw(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
        Reply::new(Kind::Raw {
            status,
            content_type: content_type.to_owned(),
            body: body.into(),
        })
    }

    // --- modifiers -------------------------------------------------------------------------

    /// Adds a response header (replacing any standard header of that name).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Reply {
        self.headers
            .push((name.into().to_ascii_lowercase(), value.into()));
        self
    }

    /// Omits `created` (as Together does).
    pub fn without_created(mut self) -> Reply {
        self.created = false;
        self
    }

    /// Omits `usage` (JSON replies and the completed stream event).
    pub fn without_usage(mut self) -> Reply {
        self.usage = false;
        self
    }

    /// Adds `usage` (e.g. to an [`Reply::image_url`]).
    pub fn with_usage(mut self) -> Reply {
        self.usage = true;
        self
    }

    /// Omits `background`, `output_format`, `size` and `quality` from a JSON reply.
    pub fn without_metadata(mut self) -> Reply {
        self.metadata = false;
        self
    }

    /// Omits the `x-request-id` header.
    pub fn without_request_id(mut self) -> Reply {
        self.request_id = false;
        self
    }

    /// Adds `revised_prompt` to every `data[]` entry (dall-e-3 shape).
    pub fn with_revised_prompt(mut self, prompt: impl Into<String>) -> Reply {
        self.revised_prompt = Some(prompt.into());
        self
    }

    /// Generated images get the requested size instead of a small one.
    pub fn sized(mut self) -> Reply {
        self.sized = true;
        self
    }

    /// Delivers the images as `url`s served by this server (`GET {base}/files/<name>`).
    pub fn via_url(mut self) -> Reply {
        if let Kind::Images { delivery, .. } = &mut self.kind {
            *delivery = Delivery::Url;
        }
        self
    }

    /// Delivers the images as `url`s served by this server after `hops` redirects (302).
    pub fn via_redirected_url(mut self, hops: u32) -> Reply {
        if let Kind::Images { delivery, .. } = &mut self.kind {
            *delivery = Delivery::UrlRedirected(hops);
        }
        self
    }

    /// Delivers the images as `data:` URLs.
    pub fn via_data_url(mut self) -> Reply {
        if let Kind::Images { delivery, .. } = &mut self.kind {
            *delivery = Delivery::DataUrl;
        }
        self
    }

    /// Delivers the images as `b64_json`.
    pub fn via_b64(mut self) -> Reply {
        if let Kind::Images { delivery, .. } = &mut self.kind {
            *delivery = Delivery::B64;
        }
        self
    }

    /// Waits this long before each stream event after the first (for progress tests).
    pub fn with_event_delay(mut self, delay: Duration) -> Reply {
        self.event_delay = delay;
        self
    }
}

const SVG_DOC: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"64\" height=\"64\" viewBox=\"0 0 64 64\">\n\
  <rect width=\"64\" height=\"64\" fill=\"#3366cc\"/>\n\
  <circle cx=\"32\" cy=\"32\" r=\"20\" fill=\"#ffcc00\"/>\n\
</svg>\n";

const HTML_DOC: &str = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n\
<body><h1>502 Bad Gateway</h1><p>The upstream image service is unavailable.</p></body></html>\n";

/// The fake server. Dropping it stops the server and closes every connection.
pub struct FakeServer {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    /// Binds `127.0.0.1:0` and spawns the server on the current tokio runtime.
    #[allow(clippy::expect_used)]
    pub async fn start() -> FakeServer {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("fake server: bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("fake server: local address of the listener");
        let shared = Arc::new(Shared {
            addr,
            next_id: AtomicU64::new(0),
            next_connection: AtomicU64::new(0),
            open_connections: AtomicUsize::new(0),
            notify: Notify::new(),
            state: Mutex::new(State {
                script: VecDeque::new(),
                default: Reply::image(),
                requests: Vec::new(),
                files: HashMap::new(),
                latency: (Duration::ZERO, Duration::ZERO),
                latency_rng: fastrand::Rng::with_seed(0x5EED_1A7E),
                fault: None,
                faults_injected: 0,
                real_sizes: false,
                rate: None,
                batches: FakeBatches::default(),
            }),
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        FakeServer { shared, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://127.0.0.1:PORT/v1`
    pub fn base_url(&self) -> String {
        self.shared.base_url()
    }

    /// `http://127.0.0.1:PORT`
    pub fn origin(&self) -> String {
        self.shared.origin()
    }

    /// Appends a reply to the script (consumed FIFO, one per generation request).
    pub fn push(&self, reply: Reply) {
        self.shared.lock().script.push_back(reply);
    }

    pub fn push_all(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.lock().script.extend(replies);
    }

    /// The reply used when the script is empty (initially [`Reply::image`]).
    pub fn set_default(&self, reply: Reply) {
        self.shared.lock().default = reply;
    }

    /// How many scripted replies have not been used yet.
    pub fn pending(&self) -> usize {
        self.shared.lock().script.len()
    }

    /// Every request received (all routes, including file downloads and 404s), in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// Only the `POST …/images/generations` requests.
    pub fn generation_requests(&self) -> Vec<Recorded> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.is_generation())
            .cloned()
            .collect()
    }

    /// Number of requests received on all routes (`requests().len()`).
    pub fn request_count(&self) -> usize {
        self.shared.lock().requests.len()
    }

    /// Number of generation requests received.
    pub fn generation_count(&self) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.is_generation())
            .count()
    }

    pub fn last_request(&self) -> Option<Recorded> {
        self.shared.lock().requests.last().cloned()
    }

    /// The JSON body of the most recent generation request.
    pub fn last_body(&self) -> Option<Value> {
        self.shared
            .lock()
            .requests
            .iter()
            .rev()
            .find(|r| r.is_generation())
            .map(|r| r.body.clone())
    }

    /// Forgets the recorded requests (the counter behind `x-request-id` keeps going).
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// A uniformly random delay in `[min, max]` before answering each generation request.
    pub fn set_latency(&self, min: Duration, max: Duration) {
        let (min, max) = if max < min { (max, min) } else { (min, max) };
        self.shared.lock().latency = (min, max);
    }

    /// With probability `rate`, a generation request gets a random retryable fault instead of
    /// its reply (500, 503 or 429, each with `retry-after-ms: 1`, or a connection reset); the
    /// scripted reply is then kept for the next request. Deterministic for a given `seed` and
    /// request order. A rate of 0 turns faults off.
    pub fn set_fault_rate(&self, rate: f64, seed: u64) {
        let mut state = self.shared.lock();
        state.fault = if rate > 0.0 {
            Some((rate.min(1.0), fastrand::Rng::with_seed(seed)))
        } else {
            None
        };
        state.latency_rng = fastrand::Rng::with_seed(seed ^ 0x5EED_1A7E);
    }

    /// Limit generation requests to `per_minute` a minute with a burst of `burst` (a token
    /// bucket): beyond it, 429 `rate_limit_exceeded` with `retry-after-ms` (when the next
    /// request would pass); every answer carries `x-ratelimit-{limit,remaining,reset}-requests`.
    pub fn set_rate_limit(&self, per_minute: u32, burst: u32) {
        self.shared.lock().rate = Some(RateLimit {
            per_minute: per_minute.max(1),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            at: tokio::time::Instant::now(),
            refused: 0,
            admitted: 0,
        });
    }

    /// Generation requests the rate limit refused (429) and let through.
    pub fn rate_limit_counts(&self) -> (usize, usize) {
        self.shared
            .lock()
            .rate
            .as_ref()
            .map_or((0, 0), |r| (r.refused, r.admitted))
    }

    /// How many faults [`FakeServer::set_fault_rate`] has injected.
    pub fn fault_count(&self) -> usize {
        self.shared.lock().faults_injected
    }

    /// Generated images get the requested size (for every reply, not only [`Reply::sized`]).
    pub fn set_real_sizes(&self, on: bool) {
        self.shared.lock().real_sizes = on;
    }

    /// Batch API: which lines (0-based, in the input file) fail when a batch completes (with a
    /// 400 `invalid_request_error` in the error file). Applies to batches created afterwards.
    pub fn set_batch_failures(&self, lines: Vec<usize>) {
        self.shared.lock().batches.fail_lines = lines;
    }

    /// Batch API: whether `GET /batches/{id}` moves a batch one step on (validating →
    /// in_progress → completed) each time it is polled (the default). Off, only
    /// [`FakeServer::advance_batch`] moves it.
    pub fn set_batch_auto_advance(&self, on: bool) {
        self.shared.lock().batches.manual = !on;
    }

    /// Batch API: move a batch one step on (the test hook).
    pub fn advance_batch(&self, id: &str) {
        let mut state = self.shared.lock();
        let b = &mut state.batches;
        b.advance(id);
    }

    /// Batch API: the batch expires now (24 h passed): no output file; its lines never ran.
    pub fn expire_batch(&self, id: &str) {
        if let Some(b) = self.shared.lock().batches.batches.get_mut(id) {
            b.status = "expired".into();
        }
    }

    /// Batch API: every batch's id and status, in creation order.
    pub fn batch_states(&self) -> Vec<(String, String)> {
        let state = self.shared.lock();
        state
            .batches
            .order
            .iter()
            .filter_map(|id| {
                state
                    .batches
                    .batches
                    .get(id)
                    .map(|b| (id.clone(), b.status.clone()))
            })
            .collect()
    }

    /// Batch API: the next requests to the files and batches routes get these statuses (an
    /// OpenAI error body, `retry-after-ms: 1`) instead of their answer, one each.
    pub fn push_batch_faults(&self, statuses: impl IntoIterator<Item = u16>) {
        self.shared.lock().batches.faults.extend(statuses);
    }

    /// Batch API: the lines of every uploaded batch input file, parsed.
    pub fn batch_input_lines(&self) -> Vec<Value> {
        let state = self.shared.lock();
        state
            .batches
            .inputs
            .iter()
            .flat_map(|f| f.iter().cloned())
            .collect()
    }

    /// Batch API: how the uploads and batch creations broke the contract (input lines whose
    /// body is not a `CreateImageRequest`, a `CreateBatchRequest` that does not match); empty
    /// when they kept it.
    pub fn batch_violations(&self) -> Vec<String> {
        self.shared.lock().batches.violations.clone()
    }

    /// Connections currently open (a client that gave up on a hung request closes its one).
    pub fn open_connections(&self) -> usize {
        self.shared.open_connections.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.next_connection.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests (all routes) have been received; false on timeout.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, || self.request_count() >= n).await
    }

    /// Waits until at most `n` connections are open; false on timeout.
    pub async fn wait_for_open_connections(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, || self.open_connections() <= n)
            .await
    }

    async fn wait_until(&self, timeout: Duration, cond: impl Fn() -> bool) -> bool {
        tokio::time::timeout(timeout, async {
            loop {
                let notified = self.shared.notify.notified();
                if cond() {
                    return;
                }
                notified.await;
            }
        })
        .await
        .is_ok()
    }
}

/// A deterministic test image: a gradient whose colours depend on `seed`, encoded as `format`
/// (`png`, `jpeg`/`jpg` or `webp`; anything else is PNG). With `transparent`, part of the image has
/// alpha 0 (not for JPEG). Returns an empty vector if encoding fails (it does not).
pub fn render_image(
    seed: u64,
    width: u32,
    height: u32,
    format: &str,
    transparent: bool,
) -> Vec<u8> {
    let (w, h) = (width.max(1), height.max(1));
    let s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let (r0, g0, b0) = ((s >> 8) as u8, (s >> 24) as u8, (s >> 40) as u8);
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        let fx = (u64::from(x) * 255 / u64::from(w)) as u8;
        let fy = (u64::from(y) * 255 / u64::from(h)) as u8;
        let alpha = if transparent && ((x / 8 + y / 8) % 2 == 1) {
            0
        } else {
            255
        };
        image::Rgba([
            fx.wrapping_add(r0),
            fy.wrapping_add(g0),
            b0 ^ (fx.wrapping_add(fy) / 2),
            alpha,
        ])
    });
    let dynamic = image::DynamicImage::ImageRgba8(img);
    let mut out = Cursor::new(Vec::new());
    let result = match normalise_format(format) {
        "jpeg" => image::DynamicImage::ImageRgb8(dynamic.to_rgb8())
            .write_to(&mut out, image::ImageFormat::Jpeg),
        "webp" => dynamic.write_to(&mut out, image::ImageFormat::WebP),
        _ => dynamic.write_to(&mut out, image::ImageFormat::Png),
    };
    match result {
        Ok(()) => out.into_inner(),
        Err(_) => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------------------------

struct Shared {
    addr: SocketAddr,
    next_id: AtomicU64,
    next_connection: AtomicU64,
    open_connections: AtomicUsize,
    notify: Notify,
    state: Mutex<State>,
}

struct State {
    script: VecDeque<Reply>,
    default: Reply,
    requests: Vec<Recorded>,
    files: HashMap<String, (Bytes, String)>,
    latency: (Duration, Duration),
    latency_rng: fastrand::Rng,
    fault: Option<(f64, fastrand::Rng)>,
    faults_injected: usize,
    real_sizes: bool,
    rate: Option<RateLimit>,
    batches: FakeBatches,
}

/// An images-per-minute limit with a burst: a token bucket of `burst` requests refilled at
/// `per_minute / 60` a second, checked when a generation request arrives.
struct RateLimit {
    per_minute: u32,
    burst: f64,
    tokens: f64,
    at: tokio::time::Instant,
    /// 429s sent, and requests let through.
    refused: usize,
    admitted: usize,
}

impl RateLimit {
    fn per_sec(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    /// Take a request: `Ok(headers)` when it may go on, `Err(reply)` for a 429.
    fn take(&mut self) -> Result<Vec<(String, String)>, Box<Reply>> {
        let now = tokio::time::Instant::now();
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.per_sec()).min(self.burst);
        self.at = now;
        let admitted = self.tokens >= 1.0;
        if admitted {
            self.tokens -= 1.0;
            self.admitted += 1;
        } else {
            self.refused += 1;
        }
        // OpenAI's headers: the limit a minute, what is left, when it is whole again.
        let ms = |secs: f64| format!("{}ms", (secs * 1000.0).ceil().max(0.0) as u64);
        let headers = vec![
            (
                "x-ratelimit-limit-requests".to_string(),
                self.per_minute.to_string(),
            ),
            (
                "x-ratelimit-remaining-requests".to_string(),
                (self.tokens.max(0.0).floor() as u64).to_string(),
            ),
            (
                "x-ratelimit-reset-requests".to_string(),
                ms((self.burst - self.tokens) / self.per_sec()),
            ),
        ];
        if admitted {
            return Ok(headers);
        }
        let wait_ms = ((1.0 - self.tokens) / self.per_sec() * 1000.0)
            .ceil()
            .max(1.0) as u64;
        let mut reply = Reply::rate_limited(Some(wait_ms), None);
        for (k, v) in headers {
            reply = reply.with_header(k, v);
        }
        Err(Box::new(reply))
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

struct ConnectionGuard(Arc<Shared>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }
}

// ---------------------------------------------------------------------------------------------
// Connection handling
// ---------------------------------------------------------------------------------------------

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Owning the connection tasks here means aborting this task aborts them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => {
                    let _ = socket.set_nodelay(true);
                    shared.open_connections.fetch_add(1, Ordering::SeqCst);
                    let guard = ConnectionGuard(Arc::clone(&shared));
                    connections.spawn(serve_connection(socket, Arc::clone(&shared), guard));
                }
                // E.g. too many open files: back off a little instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

struct Request {
    method: String,
    path: String,
    query: Option<String>,
    version: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn wants_close(&self) -> bool {
        let connection = self.header("connection").map(str::to_ascii_lowercase);
        match connection.as_deref() {
            Some(c) if c.contains("close") => true,
            Some(c) if c.contains("keep-alive") => false,
            _ => self.version == "HTTP/1.0",
        }
    }
}

/// What to do with the connection after a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    KeepAlive,
    Close,
    Reset,
}

struct Conn {
    socket: TcpStream,
    buf: Vec<u8>,
    id: u64,
}

async fn serve_connection(socket: TcpStream, shared: Arc<Shared>, _guard: ConnectionGuard) {
    let id = shared.next_connection.fetch_add(1, Ordering::SeqCst) + 1;
    let mut conn = Conn {
        socket,
        buf: Vec::with_capacity(8 * 1024),
        id,
    };
    loop {
        let request = match conn.read_request().await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(e) => {
                if e.kind() == io::ErrorKind::InvalidData {
                    let body = error_json("invalid_request_error", &e.to_string());
                    let _ = conn
                        .write_simple(400, "application/json", &[], body.as_bytes(), true)
                        .await;
                    let _ = conn.socket.shutdown().await;
                }
                return;
            }
        };
        let close = request.wants_close();
        match handle(&shared, &mut conn, request).await {
            Ok(After::KeepAlive) if !close => {}
            Ok(After::Reset) => {
                let _ = conn.socket.set_zero_linger();
                return;
            }
            Ok(_) => {
                let _ = conn.socket.shutdown().await;
                return;
            }
            Err(_) => return,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

impl Conn {
    /// Reads more bytes into the buffer; false at end of stream.
    async fn fill(&mut self) -> io::Result<bool> {
        self.buf.reserve(8 * 1024);
        Ok(self.socket.read_buf(&mut self.buf).await? > 0)
    }

    async fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(pos) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..pos]).into_owned();
                self.buf.drain(..pos + 2);
                return Ok(line);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("line too long"));
            }
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    async fn read_exact_buf(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// The next request, or `None` when the client closed the connection between requests.
    async fn read_request(&mut self) -> io::Result<Option<Request>> {
        let head_end = loop {
            while self.buf.starts_with(b"\r\n") {
                self.buf.drain(..2);
            }
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                break pos;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("request head too large"));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end + 4);

        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split_whitespace();
        let (Some(method), Some(target), Some(version)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid(format!("malformed request line {request_line:?}")));
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target.to_owned(), None),
        };
        let mut headers = Vec::new();
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                return Err(invalid(format!("malformed header {line:?}")));
            };
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let mut request = Request {
            method: method.to_owned(),
            path,
            query,
            version: version.to_owned(),
            headers,
            body: Vec::new(),
        };

        let chunked = request
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        if chunked {
            request.body = self.read_chunked_body().await?;
        } else if let Some(length) = request.header("content-length") {
            let length: usize = length
                .parse()
                .map_err(|_| invalid(format!("bad content-length {length:?}")))?;
            if length > MAX_BODY {
                return Err(invalid("request body too large"));
            }
            request.body = self.read_exact_buf(length).await?;
        }
        Ok(Some(request))
    }

    async fn read_chunked_body(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line().await?;
            let size_text = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.read_line().await?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(invalid("request body too large"));
            }
            body.extend(self.read_exact_buf(size).await?);
            if !self.read_line().await?.is_empty() {
                return Err(invalid("chunk not followed by CRLF"));
            }
        }
    }

    async fn write_head(&mut self, status: u16, headers: &[(String, String)]) -> io::Result<()> {
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        for (name, value) in headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        self.socket.write_all(head.as_bytes()).await
    }

    /// A complete response with a `content-length`; `extra` headers override the standard ones.
    async fn write_simple(
        &mut self,
        status: u16,
        content_type: &str,
        extra: &[(String, String)],
        body: &[u8],
        close: bool,
    ) -> io::Result<()> {
        let mut headers = standard_headers(content_type, close);
        set_header(&mut headers, "content-length", body.len().to_string());
        for (name, value) in extra {
            set_header(&mut headers, name, value.clone());
        }
        let mut bytes = Vec::new();
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        for (name, value) in &headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        bytes.extend_from_slice(head.as_bytes());
        bytes.extend_from_slice(body);
        self.socket.write_all(&bytes).await?;
        self.socket.flush().await
    }

    async fn write_chunk(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let mut bytes = format!("{:x}\r\n", data.len()).into_bytes();
        bytes.extend_from_slice(data);
        bytes.extend_from_slice(b"\r\n");
        self.socket.write_all(&bytes).await?;
        self.socket.flush().await
    }

    async fn finish_chunked(&mut self) -> io::Result<()> {
        self.socket.write_all(b"0\r\n\r\n").await?;
        self.socket.flush().await
    }

    /// Discards anything the client sends until it closes the connection.
    async fn wait_for_client_close(&mut self) {
        let mut scratch = [0u8; 4096];
        loop {
            match self.socket.read(&mut scratch).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

fn standard_headers(content_type: &str, close: bool) -> Vec<(String, String)> {
    vec![
        ("content-type".to_owned(), content_type.to_owned()),
        ("server".to_owned(), "easel-fake-openai".to_owned()),
        (
            "connection".to_owned(),
            if close { "close" } else { "keep-alive" }.to_owned(),
        ),
    ]
}

fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: String) {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    headers.push((name.to_ascii_lowercase(), value));
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn error_json(error_type: &str, message: &str) -> String {
    json!({ "error": { "message": message, "type": error_type, "param": null, "code": null } })
        .to_string()
}

fn is_generation_path(path: &str) -> bool {
    let path = path.strip_prefix("/v1").unwrap_or(path);
    matches!(
        path,
        "/images/generations" | "/images/edits" | "/images/variations"
    )
}

// ---------------------------------------------------------------------------------------------
// Multipart bodies (edits and variations) and their contract
// ---------------------------------------------------------------------------------------------

/// The parts of a `multipart/form-data` body; an error says what is malformed.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<FormPart>, String> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_owned())
        .ok_or("no boundary in the content type")?;
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    let start = find(rest, &delimiter).ok_or("no first boundary")?;
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("no CRLF after a boundary")?;
        let head_end = find(rest, b"\r\n\r\n").ok_or("a part has no header end")?;
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        rest = &rest[head_end + 4..];
        let mut end_marker = b"\r\n".to_vec();
        end_marker.extend_from_slice(&delimiter);
        let end = find(rest, &end_marker).ok_or("a part is not closed by a boundary")?;
        let data = rest[..end].to_vec();
        rest = &rest[end + end_marker.len()..];
        let mut part = FormPart {
            name: String::new(),
            filename: None,
            content_type: None,
            data,
        };
        for line in head.split("\r\n") {
            let Some((name, value)) = line.split_once(':') else {
                return Err(format!("malformed part header {line:?}"));
            };
            match name.trim().to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    for attr in value.split(';').map(str::trim) {
                        if let Some(v) = attr.strip_prefix("name=") {
                            part.name = v.trim_matches('"').to_owned();
                        } else if let Some(v) = attr.strip_prefix("filename=") {
                            part.filename = Some(v.trim_matches('"').to_owned());
                        }
                    }
                }
                "content-type" => part.content_type = Some(value.trim().to_owned()),
                _ => {}
            }
        }
        if part.name.is_empty() {
            return Err("a part has no name".into());
        }
        parts.push(part);
    }
}

/// Fields the wire format types as integers or booleans (multipart sends text).
const INTEGER_FIELDS: &[&str] = &["n", "output_compression", "partial_images"];
const BOOLEAN_FIELDS: &[&str] = &["stream"];

/// A multipart body as the JSON its schema describes: text fields typed, files as strings,
/// `image[]` (or repeated `image`) parts gathered into an `image` array.
pub fn multipart_as_json(parts: &[FormPart]) -> Value {
    let mut out = Map::new();
    let mut images = Vec::new();
    for p in parts {
        if p.filename.is_some() {
            let v = Value::String(format!("<binary: {} bytes>", p.data.len()));
            match p.name.as_str() {
                "image[]" | "image" => images.push(v),
                other => {
                    out.insert(other.to_owned(), v);
                }
            }
            continue;
        }
        let text = String::from_utf8_lossy(&p.data).into_owned();
        let value = if INTEGER_FIELDS.contains(&p.name.as_str()) {
            text.parse::<i64>()
                .map(Value::from)
                .unwrap_or(Value::String(text))
        } else if BOOLEAN_FIELDS.contains(&p.name.as_str()) {
            match text.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => Value::String(text),
            }
        } else {
            Value::String(text)
        };
        out.insert(p.name.clone(), value);
    }
    match images.len() {
        0 => {}
        1 if parts.iter().any(|p| p.name == "image") => {
            out.insert("image".into(), images.remove(0));
        }
        _ => {
            out.insert("image".into(), Value::Array(images));
        }
    }
    Value::Object(out)
}

/// The OpenAPI document: the shared reference folder beside the checkout (the authority), else
/// the copy in the repository.
fn contract_document() -> Option<&'static Value> {
    static DOC: std::sync::OnceLock<Option<Value>> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let manifest = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        [
            manifest.join("../shared/contracts/openai-images.openapi.json"),
            manifest.join("shared/contracts/openai-images.openapi.json"),
            manifest.join("tests/contracts/openai-images.openapi.json"),
        ]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
    })
    .as_ref()
}

/// OpenAPI 3.1 to JSON Schema 2020-12, as tests/contract.rs does it: `$ref`s into `$defs`,
/// `nullable: true` as "null allowed".
fn to_json_schema(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(to_json_schema).collect()),
        Value::Object(map) => {
            let mut out = Map::new();
            let mut nullable = false;
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("nullable", Value::Bool(b)) => nullable = *b,
                    ("$ref", Value::String(r)) => {
                        let r = r.replacen("#/components/schemas/", "#/$defs/", 1);
                        out.insert(k.clone(), Value::String(r));
                    }
                    _ => {
                        out.insert(k.clone(), to_json_schema(v));
                    }
                }
            }
            if nullable {
                json!({ "anyOf": [Value::Object(out), { "type": "null" }] })
            } else {
                Value::Object(out)
            }
        }
        other => other.clone(),
    }
}

/// Check a multipart request against `schema` (a name under `components.schemas`): the body is
/// multipart with a boundary, every field is one the schema names (its `properties`; the schema
/// itself lets unknown keys through, a real server refuses them), the values validate, every
/// file part has a file name and an image content type.
pub fn multipart_violations(
    schema: &str,
    headers: &[(String, String)],
    parts: &[FormPart],
) -> Vec<String> {
    let mut out = Vec::new();
    let content_type = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    if !content_type.starts_with("multipart/form-data") {
        out.push(format!(
            "content type {content_type:?} is not multipart/form-data"
        ));
    }
    let Some(doc) = contract_document() else {
        out.push("the wire contract (openai-images.openapi.json) is missing".into());
        return out;
    };
    let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    else {
        out.push("the contract has no components.schemas".into());
        return out;
    };
    let Some(raw) = schemas.get(schema) else {
        out.push(format!("the contract has no {schema}"));
        return out;
    };
    let known: Vec<&str> = raw
        .get("properties")
        .and_then(Value::as_object)
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    for p in parts {
        let base = p.name.strip_suffix("[]").unwrap_or(&p.name);
        if !known.contains(&base) {
            out.push(format!("unknown field {:?} (not in {schema})", p.name));
        }
        if p.filename.is_some() {
            let ct = p.content_type.as_deref().unwrap_or_default();
            if !matches!(ct, "image/png" | "image/jpeg" | "image/webp") {
                out.push(format!("file part {:?} has content type {ct:?}", p.name));
            }
        } else if matches!(base, "image" | "mask") {
            out.push(format!("{:?} is sent as text, not as a file", p.name));
        }
    }
    let defs: Map<String, Value> = schemas
        .iter()
        .map(|(k, v)| (k.clone(), to_json_schema(v)))
        .collect();
    let mut root = match to_json_schema(raw) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    root.insert("$defs".into(), Value::Object(defs));
    match jsonschema::draft202012::new(&Value::Object(root)) {
        Ok(validator) => {
            let body = multipart_as_json(parts);
            for e in validator.iter_errors(&body) {
                out.push(format!("{e} at {}", e.instance_path()));
            }
        }
        Err(e) => out.push(format!("the schema {schema} does not compile: {e}")),
    }
    out
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Routing and replies
// ---------------------------------------------------------------------------------------------

async fn handle(shared: &Arc<Shared>, conn: &mut Conn, request: Request) -> io::Result<After> {
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst) + 1;
    let content_type = request
        .header("content-type")
        .unwrap_or_default()
        .to_owned();
    let (body, parts, form_error) = if content_type.starts_with("multipart/form-data") {
        match parse_multipart(&content_type, &request.body) {
            Ok(parts) => (multipart_as_json(&parts), parts, None),
            Err(e) => (Value::Null, Vec::new(), Some(e)),
        }
    } else {
        (
            serde_json::from_slice::<Value>(&request.body).unwrap_or(Value::Null),
            Vec::new(),
            None,
        )
    };
    let recorded = Recorded {
        id,
        connection: conn.id,
        method: request.method.clone(),
        path: request.path.clone(),
        query: request.query.clone(),
        authorization: request.header("authorization").map(str::to_owned),
        headers: request.headers.clone(),
        body: body.clone(),
        raw_body: request.body.clone(),
        parts,
        at: Instant::now(),
    };
    let edit_violations = if recorded.is_edit() || recorded.is_variation() {
        let mut v = recorded.contract_violations();
        v.extend(form_error);
        v
    } else {
        Vec::new()
    };
    let input_images = (recorded.files("image[]").len() + recorded.files("image").len()) as u64;
    let is_edit = recorded.is_edit();
    shared.lock().requests.push(recorded);
    shared.notify.notify_waiters();

    let method = request.method.as_str();
    let path = request.path.as_str();
    if method == "POST" && is_generation_path(path) {
        if !edit_violations.is_empty() {
            // As a real server refuses an unknown parameter or a bad value: 400, nothing made.
            let message = format!("invalid multipart request: {}", edit_violations.join("; "));
            let body = error_json("invalid_request_error", &message);
            let headers = [request_id_header(id)];
            conn.write_simple(400, "application/json", &headers, body.as_bytes(), false)
                .await?;
            return Ok(After::KeepAlive);
        }
        // What the replies need to know about an edit, beside its fields (never recorded).
        let mut body = body;
        if let Some(m) = body.as_object_mut().filter(|_| is_edit) {
            m.insert(INTERNAL_EDIT.into(), json!(input_images));
        }
        return generation(shared, conn, id, &body).await;
    }
    if let Some(answer) = batch_route(shared, method, path, &request.body, &content_type) {
        let (status, value) = answer;
        let mut headers = vec![request_id_header(id)];
        if status >= 400 {
            headers.push(("retry-after-ms".to_owned(), "1".to_owned()));
        }
        let (ct, bytes) = match value {
            BatchBody::Json(v) => ("application/json", v.to_string().into_bytes()),
            BatchBody::Raw(b) => ("application/jsonl", b),
        };
        conn.write_simple(status, ct, &headers, &bytes, false)
            .await?;
        return Ok(After::KeepAlive);
    }
    if method == "GET"
        && (path == "/v1/files/goto" || path == "/files/goto")
        && let Some(target) = request.query.as_deref()
    {
        // `…/files/goto?URL`: a 302 to URL, wherever it is.
        let headers = [
            request_id_header(id),
            ("location".to_owned(), target.to_owned()),
        ];
        conn.write_simple(302, "text/plain", &headers, b"", false)
            .await?;
        return Ok(After::KeepAlive);
    }
    if method == "GET" {
        let file = path
            .strip_prefix("/v1/files/")
            .or_else(|| path.strip_prefix("/files/"));
        if let Some(name) = file {
            return download(shared, conn, id, name).await;
        }
    }
    let message = format!("Invalid URL ({method} {path})");
    let body = error_json("invalid_request_error", &message);
    let headers = [request_id_header(id)];
    conn.write_simple(404, "application/json", &headers, body.as_bytes(), false)
        .await?;
    Ok(After::KeepAlive)
}

fn request_id_header(id: u64) -> (String, String) {
    (
        "x-request-id".to_owned(),
        format!("{REQUEST_ID_PREFIX}{id}"),
    )
}

enum Fault {
    Status(u16),
    Reset,
}

async fn generation(
    shared: &Arc<Shared>,
    conn: &mut Conn,
    id: u64,
    body: &Value,
) -> io::Result<After> {
    let (reply, fault, delay, real_sizes) = {
        let mut state = shared.lock();
        let mut fault = None;
        if let Some((rate, rng)) = state.fault.as_mut()
            && rng.f64() < *rate
        {
            fault = Some(match rng.u8(0..4) {
                0 => Fault::Status(500),
                1 => Fault::Status(503),
                2 => Fault::Status(429),
                _ => Fault::Reset,
            });
        }
        if fault.is_some() {
            state.faults_injected += 1;
        }
        let limited = state.rate.as_mut().map(RateLimit::take);
        if let Some(Err(refusal)) = limited {
            // Refused at once: no latency, nothing taken from the script.
            (Some(*refusal), None, Duration::ZERO, state.real_sizes)
        } else {
            let reply = if fault.is_some() {
                None
            } else {
                let mut reply = match state.script.pop_front() {
                    Some(reply) => reply,
                    None => state.default.clone(),
                };
                if let Some(Ok(headers)) = limited {
                    for (k, v) in headers {
                        reply = reply.with_header(k, v);
                    }
                }
                Some(reply)
            };
            let (min, max) = state.latency;
            let delay = if max > min {
                min + (max - min).mul_f64(state.latency_rng.f64())
            } else {
                min
            };
            (reply, fault, delay, state.real_sizes)
        }
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match (fault, reply) {
        (Some(Fault::Reset), _) => Ok(After::Reset),
        (Some(Fault::Status(status)), _) => {
            let reply = match status {
                500 => Reply::server_error(),
                503 => Reply::overloaded(),
                _ => Reply::rate_limited(None, None),
            }
            .with_header("retry-after-ms", "1");
            respond(shared, conn, id, body, &reply, real_sizes).await
        }
        (None, Some(reply)) => respond(shared, conn, id, body, &reply, real_sizes).await,
        (None, None) => Ok(After::Close),
    }
}

/// What the request asked for, resolved the way the real server would echo it.
struct Params {
    n: u64,
    size: String,
    width: u32,
    height: u32,
    quality: String,
    background: String,
    output_format: &'static str,
    prompt: String,
    stream: bool,
    partial_images: u8,
    wants_url: bool,
    /// `image_generation` or `image_edit`: the stream events' prefix.
    events: &'static str,
    /// Input pictures of an edit, billed as image input tokens.
    input_images: u64,
}

/// The key under which `handle` tells the replies that a request is an edit, with how many
/// pictures it carries.
const INTERNAL_EDIT: &str = "__fake_server_edit_images";

fn normalise_format(format: &str) -> &'static str {
    match format.to_ascii_lowercase().as_str() {
        "jpeg" | "jpg" => "jpeg",
        "webp" => "webp",
        _ => "png",
    }
}

fn mime_of(format: &str) -> &'static str {
    match format {
        "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        _ => "image/png",
    }
}

fn parse_size(size: &str) -> Option<(u32, u32)> {
    let (w, h) = size.split_once(['x', 'X'])?;
    let (w, h) = (w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?);
    (w > 0 && h > 0).then_some((w, h))
}

impl Params {
    fn from_body(body: &Value) -> Params {
        let text = |key: &str| body.get(key).and_then(Value::as_str);
        let (size, (width, height)) = match text("size").and_then(|s| Some((s, parse_size(s)?))) {
            Some((s, dims)) => (s.to_owned(), dims),
            None => ("1024x1024".to_owned(), (1024, 1024)),
        };
        let quality = match text("quality") {
            Some(q) if q != "auto" => q.to_owned(),
            _ => "medium".to_owned(),
        };
        let background = match text("background") {
            Some("transparent") => "transparent",
            _ => "opaque",
        };
        Params {
            n: body
                .get("n")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .clamp(1, 10),
            size,
            width,
            height,
            quality,
            background: background.to_owned(),
            output_format: normalise_format(text("output_format").unwrap_or("png")),
            prompt: text("prompt").unwrap_or_default().to_owned(),
            stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
            partial_images: body
                .get("partial_images")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .min(3) as u8,
            wants_url: text("response_format") == Some("url"),
            events: if body.get(INTERNAL_EDIT).is_some() {
                "image_edit"
            } else {
                "image_generation"
            },
            input_images: body.get(INTERNAL_EDIT).and_then(Value::as_u64).unwrap_or(0),
        }
    }

    /// Pixel dimensions of generated images: the requested size, or a small one with the same
    /// aspect ratio.
    fn pixels(&self, real: bool) -> (u32, u32) {
        let (w, h) = (self.width, self.height);
        let limit = if real { MAX_SIDE } else { SMALL_SIDE };
        let long = w.max(h);
        if long <= limit && real {
            return (w, h);
        }
        let scale = |side: u32| ((u64::from(side) * u64::from(limit)) / u64::from(long)).max(1);
        (scale(w) as u32, scale(h) as u32)
    }

    fn output_tokens_per_image(&self) -> u64 {
        let base = match self.quality.as_str() {
            "low" => 272,
            "high" | "hd" => 4160,
            _ => 1056,
        };
        if u64::from(self.width) * u64::from(self.height) > 1024 * 1024 {
            base * 3 / 2
        } else {
            base
        }
    }

    fn usage(&self, images: u64) -> Value {
        let text_tokens = self.prompt.split_whitespace().count().max(1) as u64;
        let output = self.output_tokens_per_image() * images;
        // Each input picture of an edit as a 1024² one: 765 tokens.
        let image_tokens = self.input_images * 765;
        json!({
            "input_tokens": text_tokens + image_tokens,
            "output_tokens": output,
            "total_tokens": text_tokens + image_tokens + output,
            "input_tokens_details": { "text_tokens": text_tokens, "image_tokens": image_tokens },
            "output_tokens_details": { "image_tokens": output, "text_tokens": 0 },
        })
    }
}

fn reply_headers(reply: &Reply, id: u64) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    if reply.request_id {
        headers.push(request_id_header(id));
    }
    headers.extend(reply.headers.iter().cloned());
    headers
}

/// The generated bytes of image `index` of request `id`, with their mime type and extension.
fn image_payload(
    content: &Content,
    params: &Params,
    id: u64,
    index: u64,
    real: bool,
) -> (Bytes, String, String) {
    match content {
        Content::Generated => {
            let (w, h) = params.pixels(real);
            let bytes = render_image(
                id * 16 + index,
                w,
                h,
                params.output_format,
                params.background == "transparent",
            );
            (
                Bytes::from(bytes),
                mime_of(params.output_format).to_owned(),
                params.output_format.to_owned(),
            )
        }
        Content::Static { bytes, mime, ext } => (bytes.clone(), mime.clone(), ext.clone()),
    }
}

fn images_json(
    shared: &Shared,
    reply: &Reply,
    params: &Params,
    id: u64,
    content: &Content,
    delivery: &Delivery,
    real: bool,
) -> Value {
    let mut data = Vec::new();
    for index in 0..params.n {
        let mut entry = Map::new();
        match delivery {
            Delivery::B64 => {
                let (bytes, _, _) = image_payload(content, params, id, index, real);
                entry.insert("b64_json".into(), STANDARD.encode(&bytes).into());
            }
            Delivery::DataUrl => {
                let (bytes, mime, _) = image_payload(content, params, id, index, real);
                let mime = mime.split(';').next().unwrap_or_default().to_owned();
                let url = format!("data:{mime};base64,{}", STANDARD.encode(&bytes));
                entry.insert("url".into(), url.into());
            }
            Delivery::Url => {
                let (bytes, mime, ext) = image_payload(content, params, id, index, real);
                let name = format!("img_{id}_{index}.{ext}");
                let url = format!("{}/files/{name}", shared.base_url());
                shared.lock().files.insert(name, (bytes, mime));
                entry.insert("url".into(), url.into());
            }
            Delivery::LiteralB64(text) => {
                entry.insert("b64_json".into(), text.clone().into());
            }
            Delivery::ServerPath(path) => {
                entry.insert("url".into(), format!("{}{path}", shared.origin()).into());
            }
            Delivery::UrlRedirected(hops) => {
                let (bytes, mime, ext) = image_payload(content, params, id, index, real);
                let name = format!("img_{id}_{index}.{ext}");
                let url = format!("{}/files/redirect-{hops}-{name}", shared.base_url());
                shared.lock().files.insert(name, (bytes, mime));
                entry.insert("url".into(), url.into());
            }
        }
        if let Some(revised) = &reply.revised_prompt {
            entry.insert("revised_prompt".into(), revised.clone().into());
        }
        data.push(Value::Object(entry));
    }
    let mut object = Map::new();
    if reply.created {
        object.insert("created".into(), unix_now().into());
    }
    object.insert("data".into(), Value::Array(data));
    if reply.metadata {
        object.insert("background".into(), params.background.clone().into());
        object.insert("output_format".into(), params.output_format.into());
        object.insert("size".into(), params.size.clone().into());
        object.insert("quality".into(), params.quality.clone().into());
    }
    if reply.usage {
        object.insert("usage".into(), params.usage(params.n));
    }
    Value::Object(object)
}

async fn respond(
    shared: &Arc<Shared>,
    conn: &mut Conn,
    id: u64,
    body: &Value,
    reply: &Reply,
    real_sizes: bool,
) -> io::Result<After> {
    let params = Params::from_body(body);
    let real = real_sizes || reply.sized;
    let headers = reply_headers(reply, id);
    let json_type = "application/json";
    match &reply.kind {
        Kind::Auto => {
            let auto = if params.stream {
                Reply {
                    kind: Kind::Stream {
                        partials: None,
                        end: StreamEnd::Completed,
                    },
                    ..reply.clone()
                }
            } else if params.wants_url {
                Reply {
                    kind: Kind::Images {
                        content: Content::Generated,
                        delivery: Delivery::Url,
                    },
                    metadata: false,
                    usage: false,
                    ..reply.clone()
                }
            } else {
                Reply {
                    kind: Kind::Images {
                        content: Content::Generated,
                        delivery: Delivery::B64,
                    },
                    ..reply.clone()
                }
            };
            Box::pin(respond(shared, conn, id, body, &auto, real_sizes)).await
        }
        Kind::Images { content, delivery } => {
            let json = images_json(shared, reply, &params, id, content, delivery, real);
            let bytes = json.to_string().into_bytes();
            conn.write_simple(200, json_type, &headers, &bytes, false)
                .await?;
            Ok(After::KeepAlive)
        }
        Kind::Stream { partials, end } => {
            let partials = partials.unwrap_or(params.partial_images);
            stream(conn, reply, &params, id, partials, *end, headers, real).await
        }
        Kind::Json { status, body } => {
            let bytes = body.to_string().into_bytes();
            conn.write_simple(*status, json_type, &headers, &bytes, false)
                .await?;
            Ok(After::KeepAlive)
        }
        Kind::Raw {
            status,
            content_type,
            body,
        } => {
            conn.write_simple(*status, content_type, &headers, body, false)
                .await?;
            Ok(After::KeepAlive)
        }
        Kind::WrongShapeImages => {
            let (bytes, _, _) = image_payload(&Content::Generated, &params, id, 0, real);
            let json = json!({
                "created": unix_now(),
                "images": [{ "b64_json": STANDARD.encode(&bytes) }],
            });
            let bytes = json.to_string().into_bytes();
            conn.write_simple(200, json_type, &headers, &bytes, false)
                .await?;
            Ok(After::KeepAlive)
        }
        Kind::EmptyData => {
            let json = json!({ "created": unix_now(), "data": [] });
            let bytes = json.to_string().into_bytes();
            conn.write_simple(200, json_type, &headers, &bytes, false)
                .await?;
            Ok(After::KeepAlive)
        }
        Kind::TruncatedJson => {
            let json = images_json(
                shared,
                reply,
                &params,
                id,
                &Content::Generated,
                &Delivery::B64,
                real,
            );
            let text = json.to_string();
            let cut = &text.as_bytes()[..text.len() / 2];
            conn.write_simple(200, json_type, &headers, cut, false)
                .await?;
            Ok(After::KeepAlive)
        }
        Kind::ResetMidBody => {
            let json = images_json(
                shared,
                reply,
                &params,
                id,
                &Content::Generated,
                &Delivery::B64,
                real,
            );
            let text = json.to_string();
            let mut all = standard_headers(json_type, false);
            set_header(&mut all, "content-length", text.len().to_string());
            for (name, value) in &headers {
                set_header(&mut all, name, value.clone());
            }
            conn.write_head(200, &all).await?;
            conn.socket
                .write_all(&text.as_bytes()[..text.len() / 2])
                .await?;
            conn.socket.flush().await?;
            Ok(After::Close)
        }
        Kind::Hang => {
            conn.wait_for_client_close().await;
            Ok(After::Close)
        }
        Kind::ConnectionReset => Ok(After::Reset),
        Kind::RawChunked {
            status,
            content_type,
            body,
            chunk,
        } => {
            let mut head = standard_headers(content_type, false);
            set_header(&mut head, "transfer-encoding", "chunked".to_owned());
            for (name, value) in &headers {
                set_header(&mut head, name, value.clone());
            }
            conn.write_head(*status, &head).await?;
            for piece in body.chunks(*chunk) {
                conn.write_chunk(piece).await?;
            }
            conn.finish_chunked().await?;
            Ok(After::KeepAlive)
        }
        Kind::EndlessLine { chunk, every } => {
            let mut head = standard_headers("text/event-stream", false);
            set_header(&mut head, "transfer-encoding", "chunked".to_owned());
            for (name, value) in &headers {
                set_header(&mut head, name, value.clone());
            }
            conn.write_head(200, &head).await?;
            conn.write_chunk(b"data: {\"type\":\"image_generation.completed\",\"b64_json\":\"")
                .await?;
            let filler = vec![b'A'; (*chunk).max(1)];
            loop {
                tokio::time::sleep(*every).await;
                if conn.write_chunk(&filler).await.is_err() {
                    return Ok(After::Close);
                }
            }
        }
    }
}

/// Sleeps `delay` unless this is the first event.
async fn pause(delay: Duration, first: &mut bool) {
    if !*first && !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    *first = false;
}

fn sse_event(event: &str, data: &Value) -> Vec<u8> {
    format!("event: {event}\ndata: {data}\n\n").into_bytes()
}

#[allow(clippy::too_many_arguments)]
async fn stream(
    conn: &mut Conn,
    reply: &Reply,
    params: &Params,
    id: u64,
    partials: u8,
    end: StreamEnd,
    extra: Vec<(String, String)>,
    real: bool,
) -> io::Result<After> {
    let mut headers = standard_headers("text/event-stream; charset=utf-8", false);
    set_header(&mut headers, "transfer-encoding", "chunked".to_owned());
    set_header(&mut headers, "cache-control", "no-cache".to_owned());
    for (name, value) in &extra {
        set_header(&mut headers, name, value.clone());
    }
    conn.write_head(200, &headers).await?;
    conn.socket.flush().await?;

    let (w, h) = params.pixels(real);
    let transparent = params.background == "transparent";
    let now = unix_now();
    let common = |b64: String| {
        json!({
            "b64_json": b64,
            "created_at": now,
            "size": params.size,
            "quality": params.quality,
            "background": params.background,
            "output_format": params.output_format,
        })
    };
    let mut first = true;

    for index in 0..partials {
        pause(reply.event_delay, &mut first).await;
        let seed = id * 16 + 8 + u64::from(index);
        let bytes = render_image(seed, w, h, params.output_format, transparent);
        let mut event = common(STANDARD.encode(&bytes));
        let kind = format!("{}.partial_image", params.events);
        event["type"] = kind.clone().into();
        event["partial_image_index"] = index.into();
        conn.write_chunk(&sse_event(&kind, &event)).await?;
    }

    match end {
        StreamEnd::Completed => {
            for index in 0..params.n {
                pause(reply.event_delay, &mut first).await;
                let bytes = render_image(id * 16 + index, w, h, params.output_format, transparent);
                let mut event = common(STANDARD.encode(&bytes));
                let kind = format!("{}.completed", params.events);
                event["type"] = kind.clone().into();
                if reply.usage {
                    event["usage"] = params.usage(1);
                }
                conn.write_chunk(&sse_event(&kind, &event)).await?;
            }
            conn.write_chunk(b"data: [DONE]\n\n").await?;
            conn.finish_chunked().await?;
            Ok(After::KeepAlive)
        }
        StreamEnd::ErrorEvent => {
            pause(reply.event_delay, &mut first).await;
            let event = json!({
                "type": "error",
                "error": {
                    "message": "The image generation failed on the server. Please try again.",
                    "type": "image_generation_server_error",
                    "code": "image_generation_failed",
                    "param": null,
                },
            });
            conn.write_chunk(&sse_event("error", &event)).await?;
            conn.finish_chunked().await?;
            Ok(After::KeepAlive)
        }
        StreamEnd::Cut => Ok(After::Close),
        StreamEnd::NeverCompletes => {
            conn.wait_for_client_close().await;
            Ok(After::Close)
        }
    }
}

async fn download(shared: &Arc<Shared>, conn: &mut Conn, id: u64, name: &str) -> io::Result<After> {
    let request_id = [request_id_header(id)];
    // `redirect-N-NAME`: N redirects (302) before NAME is served.
    if let Some((hops, rest)) = name
        .strip_prefix("redirect-")
        .and_then(|r| r.split_once('-'))
        .and_then(|(n, rest)| Some((n.parse::<u32>().ok()?, rest)))
    {
        let next = if hops <= 1 {
            rest.to_owned()
        } else {
            format!("redirect-{}-{rest}", hops - 1)
        };
        let headers = [
            request_id_header(id),
            ("location".to_owned(), format!("/v1/files/{next}")),
        ];
        conn.write_simple(302, "text/plain", &headers, b"", false)
            .await?;
        return Ok(After::KeepAlive);
    }
    if let Some(rest) = name.strip_prefix("huge-") {
        let (sized, number) = match rest.strip_prefix("unsized-") {
            Some(number) => (false, number),
            None => (true, rest),
        };
        if let Some(total) = number
            .strip_suffix(".png")
            .and_then(|n| n.parse::<u64>().ok())
        {
            return stream_huge(conn, total, sized, &request_id).await;
        }
    }
    let file = shared.lock().files.get(name).cloned();
    match file {
        Some((bytes, mime)) => {
            conn.write_simple(200, &mime, &request_id, &bytes, false)
                .await?;
        }
        None => {
            conn.write_simple(404, "text/plain", &request_id, b"Not Found", false)
                .await?;
        }
    }
    Ok(After::KeepAlive)
}

async fn stream_huge(
    conn: &mut Conn,
    total: u64,
    sized: bool,
    extra: &[(String, String)],
) -> io::Result<After> {
    let mut headers = standard_headers("image/png", !sized);
    if sized {
        set_header(&mut headers, "content-length", total.to_string());
    }
    for (name, value) in extra {
        set_header(&mut headers, name, value.clone());
    }
    conn.write_head(200, &headers).await?;
    let filler: Vec<u8> = (0..HUGE_CHUNK).map(|i| (i % 251) as u8).collect();
    let signature = (PNG_SIGNATURE.len() as u64).min(total) as usize;
    conn.socket.write_all(&PNG_SIGNATURE[..signature]).await?;
    let mut sent = signature as u64;
    while sent < total {
        let n = (total - sent).min(HUGE_CHUNK as u64) as usize;
        conn.socket.write_all(&filler[..n]).await?;
        sent += n as u64;
    }
    conn.socket.flush().await?;
    Ok(if sized {
        After::KeepAlive
    } else {
        After::Close
    })
}

// ---------------------------------------------------------------------------------------------
// The Batch API: files and batches (issue 14)
// ---------------------------------------------------------------------------------------------

/// A batch as the fake keeps it.
#[derive(Debug, Clone)]
struct FakeBatch {
    status: String,
    input_file_id: String,
    lines: Vec<Value>,
    output_file_id: Option<String>,
    error_file_id: Option<String>,
    fail_lines: Vec<usize>,
    errors: Vec<String>,
    created_at: u64,
}

#[derive(Debug, Default)]
struct FakeBatches {
    files: HashMap<String, Vec<u8>>,
    inputs: Vec<Vec<Value>>,
    batches: HashMap<String, FakeBatch>,
    order: Vec<String>,
    next: u64,
    fail_lines: Vec<usize>,
    manual: bool,
    violations: Vec<String>,
    /// The next Batch API requests answered with this status (and `retry-after-ms: 1`).
    faults: VecDeque<u16>,
}

/// What a Batch API route answers.
pub enum BatchBody {
    Json(Value),
    Raw(Vec<u8>),
}

impl FakeBatches {
    fn next_id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{:06}", self.next)
    }

    /// One step on: validating → in_progress → completed, cancelling → cancelled.
    fn advance(&mut self, id: &str) {
        let Some(b) = self.batches.get(id) else {
            return;
        };
        let next = match b.status.as_str() {
            "validating" if !b.errors.is_empty() => "failed",
            "validating" => "in_progress",
            "in_progress" | "finalizing" => "completed",
            "cancelling" => "cancelled",
            other => other,
        }
        .to_string();
        if next == "completed" {
            let (out, err) = self.results(id);
            let out_id = self.next_id("file-out");
            self.files.insert(out_id.clone(), out);
            let err_id = match err.is_empty() {
                true => None,
                false => {
                    let e = self.next_id("file-err");
                    self.files.insert(e.clone(), err);
                    Some(e)
                }
            };
            if let Some(b) = self.batches.get_mut(id) {
                b.output_file_id = Some(out_id);
                b.error_file_id = err_id;
            }
        }
        if let Some(b) = self.batches.get_mut(id) {
            b.status = next;
        }
    }

    /// The output file (successful lines) and the error file (failed ones) of a batch.
    fn results(&self, id: &str) -> (Vec<u8>, Vec<u8>) {
        let Some(b) = self.batches.get(id) else {
            return (Vec::new(), Vec::new());
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        for (k, line) in b.lines.iter().enumerate() {
            let custom = line["custom_id"].clone();
            let req = format!("req_batch_{id}_{k}");
            let text = if b.fail_lines.contains(&k) {
                json!({
                    "id": format!("batch_req_{k}"),
                    "custom_id": custom,
                    "response": {
                        "status_code": 400,
                        "request_id": req,
                        "body": {"error": {
                            "message": "Your request was rejected by the safety system (fake batch line).",
                            "type": "invalid_request_error",
                            "param": null,
                            "code": "moderation_blocked",
                        }},
                    },
                    "error": null,
                })
            } else {
                let body = &line["body"];
                let n = body["n"].as_u64().unwrap_or(1).max(1);
                let format = body["output_format"].as_str().unwrap_or("png");
                let data: Vec<Value> = (0..n)
                    .map(|i| {
                        let bytes = render_image(self_seed(id, k, i), 48, 32, format, false);
                        json!({"b64_json": STANDARD.encode(bytes)})
                    })
                    .collect();
                json!({
                    "id": format!("batch_req_{k}"),
                    "custom_id": custom,
                    "response": {
                        "status_code": 200,
                        "request_id": req,
                        "body": {
                            "created": unix_now(),
                            "data": data,
                            "usage": {
                                "input_tokens": 10, "output_tokens": 272 * n, "total_tokens": 10 + 272 * n,
                                "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
                            },
                        },
                    },
                    "error": null,
                })
            };
            let target = if b.fail_lines.contains(&k) {
                &mut err
            } else {
                &mut out
            };
            target.extend_from_slice(text.to_string().as_bytes());
            target.push(b'\n');
        }
        (out, err)
    }

    fn describe(&self, id: &str) -> Option<Value> {
        let b = self.batches.get(id)?;
        let total = b.lines.len();
        let done = b.status == "completed";
        let failed = if done {
            b.fail_lines.iter().filter(|k| **k < total).count()
        } else {
            0
        };
        let mut v = json!({
            "id": id,
            "object": "batch",
            "endpoint": "/v1/images/generations",
            "input_file_id": b.input_file_id,
            "completion_window": "24h",
            "status": b.status,
            "output_file_id": b.output_file_id,
            "error_file_id": b.error_file_id,
            "created_at": b.created_at,
            "request_counts": {
                "total": total,
                "completed": if done { total - failed } else { 0 },
                "failed": failed,
            },
        });
        if !b.errors.is_empty() {
            v["errors"] = json!({
                "object": "list",
                "data": b.errors.iter().map(|e| json!({"code": "invalid_request", "message": e})).collect::<Vec<_>>(),
            });
        }
        Some(v)
    }
}

fn self_seed(id: &str, k: usize, i: u64) -> u64 {
    id.bytes().fold(k as u64 * 31 + i, |h, b| {
        h.wrapping_mul(131).wrapping_add(u64::from(b))
    })
}

fn batch_error(status: u16, message: &str) -> (u16, BatchBody) {
    (
        status,
        BatchBody::Json(
            serde_json::from_str(&error_json("invalid_request_error", message)).unwrap_or_default(),
        ),
    )
}

/// The batch contract: the shared reference folder, else the copy in the repository.
fn batch_contract() -> Option<&'static Value> {
    static DOC: std::sync::OnceLock<Option<Value>> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let manifest = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        [
            manifest.join("../shared/contracts/openai-batch-files.openapi.json"),
            manifest.join("tests/contracts/openai-batch-files.openapi.json"),
        ]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
    })
    .as_ref()
}

/// How `value` breaks `components.schemas.<schema>` of `doc` (empty when it keeps it).
pub fn json_violations(doc: Option<&Value>, schema: &str, value: &Value) -> Vec<String> {
    let Some(schemas) = doc
        .and_then(|d| d.pointer("/components/schemas"))
        .and_then(Value::as_object)
    else {
        return vec!["the contract is missing".into()];
    };
    let Some(raw) = schemas.get(schema) else {
        return vec![format!("the contract has no {schema}")];
    };
    let defs: Map<String, Value> = schemas
        .iter()
        .map(|(k, v)| (k.clone(), to_json_schema(v)))
        .collect();
    let mut root = match to_json_schema(raw) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    root.insert("$defs".into(), Value::Object(defs));
    match jsonschema::draft202012::new(&Value::Object(root)) {
        Ok(v) => v
            .iter_errors(value)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect(),
        Err(e) => vec![format!("the schema {schema} does not compile: {e}")],
    }
}

/// How a `POST /batches` body breaks `CreateBatchRequest` (empty when it keeps it).
pub fn batch_request_violations(body: &Value) -> Vec<String> {
    json_violations(batch_contract(), "CreateBatchRequest", body)
}

/// How one input line breaks the batch line format, its body checked against
/// `CreateImageRequest` (the same body as a live request).
pub fn batch_line_violations(line: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if !line["custom_id"].is_string() {
        out.push("custom_id is missing".into());
    }
    if line["method"] != "POST" {
        out.push(format!("method is {} (not POST)", line["method"]));
    }
    if line["url"] != "/v1/images/generations" {
        out.push(format!(
            "url is {} (not /v1/images/generations)",
            line["url"]
        ));
    }
    for v in json_violations(contract_document(), "CreateImageRequest", &line["body"]) {
        out.push(format!("body: {v}"));
    }
    out
}

/// The Batch API routes: `POST /files`, `GET /files/{id}/content`, `POST /batches`,
/// `GET /batches/{id}`, `POST /batches/{id}/cancel`. `None`: not one of them.
fn batch_route(
    shared: &Arc<Shared>,
    method: &str,
    path: &str,
    body: &[u8],
    content_type: &str,
) -> Option<(u16, BatchBody)> {
    let path = path.strip_prefix("/v1").unwrap_or(path);
    let is_batch_route = path == "/files"
        || path == "/batches"
        || path.starts_with("/batches/")
        || (path.starts_with("/files/") && path.ends_with("/content"));
    if !is_batch_route {
        return None;
    }
    let mut state = shared.lock();
    let fb = &mut state.batches;
    if let Some(status) = fb.faults.pop_front() {
        return Some(batch_error(status, "fake fault (push_batch_faults)"));
    }
    if method == "POST" && path == "/files" {
        let parts = match parse_multipart(content_type, body) {
            Ok(p) => p,
            Err(e) => return Some(batch_error(400, &format!("invalid multipart upload: {e}"))),
        };
        let purpose = parts
            .iter()
            .find(|p| p.name == "purpose")
            .map(|p| String::from_utf8_lossy(&p.data).into_owned());
        if purpose.as_deref() != Some("batch") {
            return Some(batch_error(400, "purpose must be batch"));
        }
        let Some(file) = parts
            .iter()
            .find(|p| p.name == "file" && p.filename.is_some())
        else {
            return Some(batch_error(400, "no file part"));
        };
        let id = fb.next_id("file-in");
        fb.files.insert(id.clone(), file.data.clone());
        return Some((
            200,
            BatchBody::Json(json!({
                "id": id, "object": "file", "bytes": file.data.len(),
                "created_at": unix_now(), "filename": file.filename, "purpose": "batch",
            })),
        ));
    }
    if method == "GET"
        && let Some(id) = path
            .strip_prefix("/files/")
            .and_then(|r| r.strip_suffix("/content"))
    {
        return Some(match fb.files.get(id) {
            Some(bytes) => (200, BatchBody::Raw(bytes.clone())),
            None => batch_error(404, &format!("No such File object: {id}")),
        });
    }
    if method == "POST" && path == "/batches" {
        let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        for v in batch_request_violations(&req) {
            fb.violations.push(format!("CreateBatchRequest: {v}"));
        }
        let input = req["input_file_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some(bytes) = fb.files.get(&input).cloned() else {
            return Some(batch_error(400, &format!("No such File object: {input}")));
        };
        let mut lines = Vec::new();
        let mut errors = Vec::new();
        for (k, raw) in bytes.split(|b| *b == b'\n').enumerate() {
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let line: Value = match serde_json::from_slice(raw) {
                Ok(v) => v,
                Err(e) => {
                    errors.push(format!("line {}: not JSON: {e}", k + 1));
                    continue;
                }
            };
            for v in batch_line_violations(&line) {
                errors.push(format!("line {}: {v}", k + 1));
            }
            lines.push(line);
        }
        fb.violations.extend(errors.iter().cloned());
        fb.inputs.push(lines.clone());
        let id = fb.next_id("batch_");
        let fail_lines = fb.fail_lines.clone();
        fb.batches.insert(
            id.clone(),
            FakeBatch {
                status: "validating".into(),
                input_file_id: input,
                lines,
                output_file_id: None,
                error_file_id: None,
                fail_lines,
                errors,
                created_at: unix_now(),
            },
        );
        fb.order.push(id.clone());
        return fb.describe(&id).map(|v| (200, BatchBody::Json(v)));
    }
    if let Some(rest) = path.strip_prefix("/batches/") {
        let (id, cancel) = match rest.strip_suffix("/cancel") {
            Some(id) => (id.to_string(), true),
            None => (rest.to_string(), false),
        };
        if !fb.batches.contains_key(&id) {
            return Some(batch_error(404, &format!("No such Batch object: {id}")));
        }
        if cancel && method == "POST" {
            if let Some(b) = fb.batches.get_mut(&id)
                && matches!(
                    b.status.as_str(),
                    "validating" | "in_progress" | "finalizing"
                )
            {
                b.status = "cancelling".into();
            }
        } else if method == "GET" && !fb.manual {
            fb.advance(&id);
        } else if method != "GET" {
            return None;
        }
        return fb.describe(&id).map(|v| (200, BatchBody::Json(v)));
    }
    None
}
