//! The HTTP client for `POST {base}/images/generations`: plain and streamed answers, downloads of
//! URL results, retries, cancellation. Everything it returns is verified image bytes or an
//! [`ApiError`].

use super::error::{ApiError, ErrorKind};
use super::payload::{self, ImageInfo};
use super::request::CheckedRequest;
use super::response::{self, StreamItem, Usage};
use super::retry::{self, Failure, RetryNotice};
use crate::secret::ApiKey;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// Images up to this size are verified on the calling thread.
const INLINE_VERIFY_BYTES: usize = 1024 * 1024;

/// How the client talks to one provider.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Name shown in messages: "OpenAI" or the provider profile's name.
    pub provider: String,
    /// Up to and including `/v1`, without a trailing slash.
    pub base_url: String,
    pub api_key: Option<ApiKey>,
    pub organization: Option<String>,
    pub project: Option<String>,
    pub max_retries: u32,
    /// Whole request, body included (the SDKs' default is 600 s).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Longest silence between two events of a streamed answer.
    pub stream_idle_timeout: Duration,
    /// Largest image download accepted from a `url` result.
    pub download_max_bytes: u64,
    pub download_timeout: Duration,
    /// Largest JSON answer accepted (base64 images make answers big).
    pub max_response_bytes: u64,
}

impl ClientOptions {
    pub fn new(provider: &str, base_url: &str) -> ClientOptions {
        ClientOptions {
            provider: provider.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key: None,
            organization: None,
            project: None,
            max_retries: 2,
            timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(5),
            stream_idle_timeout: Duration::from_secs(300),
            download_max_bytes: 50 * 1024 * 1024,
            download_timeout: Duration::from_secs(60),
            max_response_bytes: 512 * 1024 * 1024,
        }
    }
}

/// One verified image of an answer.
#[derive(Debug, Clone)]
pub struct ReceivedImage {
    /// Exactly the bytes the server sent.
    pub bytes: Bytes,
    pub info: ImageInfo,
    pub revised_prompt: Option<String>,
    /// Where it came from: "b64_json", "url" or "data_url".
    pub source: &'static str,
}

/// A successful generation.
#[derive(Debug, Clone, Default)]
pub struct ApiOutput {
    pub images: Vec<ReceivedImage>,
    pub usage: Option<Usage>,
    pub request_id: Option<String>,
    pub created: Option<i64>,
    /// Attempts made, 1 when the first one succeeded.
    pub attempts: u32,
    /// What the server says it used (it may resolve "auto").
    pub size: Option<String>,
    pub quality: Option<String>,
    pub background: Option<String>,
    pub output_format: Option<String>,
}

/// Things worth showing while a request runs.
#[derive(Debug, Clone)]
pub enum ClientEvent {
    /// A partial image from a streamed answer (raw bytes, not yet verified).
    Partial {
        index: u32,
        bytes: Bytes,
    },
    Retrying(RetryNotice),
}

/// An answer before its images are decoded and verified.
struct RawAnswer {
    data: Vec<response::ImageData>,
    usage: Option<Usage>,
    request_id: Option<String>,
    created: Option<i64>,
    size: Option<String>,
    quality: Option<String>,
    background: Option<String>,
    output_format: Option<String>,
}

/// The Images API client. Cheap to clone; share one per provider.
#[derive(Debug, Clone)]
pub struct ImagesClient {
    http: reqwest::Client,
    downloads: reqwest::Client,
    opts: ClientOptions,
}

/// Install the pure-Rust TLS provider once per process (reqwest is built without one so that no
/// C crypto library has to be compiled).
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl ImagesClient {
    pub fn new(opts: ClientOptions) -> Result<ImagesClient, ApiError> {
        install_tls_provider();
        let mut headers = HeaderMap::new();
        if let Some(org) = &opts.organization {
            let v = HeaderValue::from_str(org).map_err(|_| {
                ApiError::new(
                    ErrorKind::InvalidRequest,
                    &opts.provider,
                    "OPENAI_ORG_ID holds characters a header cannot carry",
                )
            })?;
            headers.insert("OpenAI-Organization", v);
        }
        if let Some(project) = &opts.project {
            let v = HeaderValue::from_str(project).map_err(|_| {
                ApiError::new(
                    ErrorKind::InvalidRequest,
                    &opts.provider,
                    "OPENAI_PROJECT_ID holds characters a header cannot carry",
                )
            })?;
            headers.insert("OpenAI-Project", v);
        }
        let user_agent = concat!("easel/", env!("CARGO_PKG_VERSION"));
        let build = |headers: HeaderMap| {
            reqwest::Client::builder()
                .user_agent(user_agent)
                .default_headers(headers)
                .connect_timeout(opts.connect_timeout)
                .build()
                .map_err(|e| {
                    ApiError::new(
                        ErrorKind::Connection,
                        &opts.provider,
                        format!("could not set up HTTP: {e}"),
                    )
                })
        };
        let http = build(headers)?;
        // Downloads go to whatever host a `url` names: never with the key or org headers.
        let downloads = build(HeaderMap::new())?;
        Ok(ImagesClient {
            http,
            downloads,
            opts,
        })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    fn endpoint(&self) -> String {
        format!("{}/images/generations", self.opts.base_url)
    }

    /// Generate images. Partial images and retry notices go to `events` as they happen; the
    /// returned images are verified. Cancelling ends the request (or a wait) at once.
    pub async fn generate(
        &self,
        request: &CheckedRequest,
        cancel: &CancellationToken,
        events: &UnboundedSender<ClientEvent>,
    ) -> Result<ApiOutput, ApiError> {
        let retry_events = events.clone();
        let (answer, attempts) = retry::run(
            self.opts.max_retries,
            cancel,
            &self.opts.provider,
            |notice| {
                let notice = RetryNotice {
                    reason: self.redact(notice.reason.clone()),
                    ..notice
                };
                let _ = retry_events.send(ClientEvent::Retrying(notice));
            },
            |_| self.attempt(request, events),
        )
        .await;
        // Errors say how many requests were sent, so history can record the retries made.
        let counted = |mut e: ApiError| {
            e.attempts = attempts;
            e
        };
        let answer = answer.map_err(|e| counted(self.redact(e)))?;
        let request_id = answer.request_id.clone();
        let images = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(counted(ApiError::cancelled(&self.opts.provider))),
            r = self.collect_images(answer.data) => r.map_err(|e| counted(self.redact(e.with_request_id(request_id.clone()))))?,
        };
        Ok(ApiOutput {
            images,
            usage: answer.usage,
            request_id,
            created: answer.created,
            attempts,
            size: answer.size,
            quality: answer.quality,
            background: answer.background,
            output_format: answer.output_format,
        })
    }

    /// Errors never show the key, even when a server or proxy echoes it back (in its message,
    /// an HTML page, a URL).
    fn redact(&self, mut e: ApiError) -> ApiError {
        let Some(key) = self
            .opts
            .api_key
            .as_ref()
            .map(ApiKey::expose)
            .filter(|k| !k.is_empty())
        else {
            return e;
        };
        let scrub = |s: &mut String| {
            if s.contains(key) {
                *s = s.replace(key, "<redacted>");
            }
        };
        scrub(&mut e.message);
        for s in [
            &mut e.error_type,
            &mut e.param,
            &mut e.code,
            &mut e.moderation_details,
            &mut e.request_id,
        ]
        .into_iter()
        .flatten()
        {
            scrub(s);
        }
        e
    }

    fn bad_answer(&self, message: impl AsRef<str>, request_id: &Option<String>) -> ApiError {
        ApiError::new(ErrorKind::BadAnswer, &self.opts.provider, message)
            .with_request_id(request_id.clone())
    }

    /// `limit` is the timeout that applied (the request's, or the download's).
    fn transport_error(&self, e: &reqwest::Error, during: &str, limit: Duration) -> ApiError {
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Connection
        };
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            detail = format!("{detail}: {s}");
            source = s.source();
        }
        let what = match kind {
            ErrorKind::Timeout => format!("no complete answer within {} {during}", seconds(limit)),
            _ => format!("{during}: {detail}"),
        };
        ApiError::new(kind, &self.opts.provider, what)
    }

    /// One try: send, check the status, read the answer (streamed or not).
    async fn attempt(
        &self,
        request: &CheckedRequest,
        events: &UnboundedSender<ClientEvent>,
    ) -> Result<RawAnswer, Failure> {
        let mut builder = self
            .http
            .post(self.endpoint())
            .timeout(self.opts.timeout)
            .json(&request.body);
        if let Some(key) = &self.opts.api_key {
            builder = builder.bearer_auth(key.expose());
        }
        if request.stream {
            builder = builder.header("Accept", "text/event-stream");
        }
        let resp = builder.send().await.map_err(|e| {
            Failure::from(self.transport_error(&e, "while sending the request", self.opts.timeout))
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let request_id = header("x-request-id");
        if !resp.status().is_success() {
            let body = read_capped(resp, 1024 * 1024).await.unwrap_or_default();
            let error = ApiError::from_response(&self.opts.provider, status, &body, request_id);
            return Err(Failure {
                error,
                should_retry: header("x-should-retry")
                    .map(|v| v.trim().eq_ignore_ascii_case("true")),
                retry_after: retry::parse_retry_after(
                    header("retry-after-ms").as_deref(),
                    header("retry-after").as_deref(),
                    chrono::Utc::now(),
                ),
                stream_started: false,
            });
        }
        let is_sse = header("content-type")
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("text/event-stream"));
        if is_sse {
            return self.read_stream(resp, request_id, events).await;
        }
        // A plain answer (also what a server that ignores `stream` sends).
        let body = read_capped(resp, self.opts.max_response_bytes)
            .await
            .map_err(|e| {
                let e = match e {
                    ReadError::TooBig => self.bad_answer(
                        format!(
                            "the answer is larger than {} MB",
                            self.opts.max_response_bytes >> 20
                        ),
                        &request_id,
                    ),
                    ReadError::Http(e) => self
                        .transport_error(&e, "while reading the answer", self.opts.timeout)
                        .with_request_id(request_id.clone()),
                };
                Failure::from(e)
            })?;
        let parsed = response::parse_images_response(&body)
            .map_err(|m| Failure::from(self.bad_answer(m, &request_id)))?;
        Ok(RawAnswer {
            data: parsed.data,
            usage: parsed.usage,
            request_id,
            created: parsed.created,
            size: parsed.size,
            quality: parsed.quality,
            background: parsed.background,
            output_format: parsed.output_format,
        })
    }

    async fn read_stream(
        &self,
        resp: reqwest::Response,
        request_id: Option<String>,
        events: &UnboundedSender<ClientEvent>,
    ) -> Result<RawAnswer, Failure> {
        use eventsource_stream::Eventsource;
        let mut stream = resp.bytes_stream().eventsource();
        let mut seen = 0u32;
        let mut partials = 0u32;
        let mut answer = RawAnswer {
            data: Vec::new(),
            usage: None,
            request_id: request_id.clone(),
            created: None,
            size: None,
            quality: None,
            background: None,
            output_format: None,
        };
        let fail = |error: ApiError, seen: u32| Failure {
            error: error.with_request_id(request_id.clone()),
            should_retry: None,
            retry_after: None,
            stream_started: seen > 0,
        };
        loop {
            let next = match tokio::time::timeout(self.opts.stream_idle_timeout, stream.next())
                .await
            {
                Ok(next) => next,
                Err(_) => {
                    let msg = format!(
                        "the stream went silent for {} after {partials} partial image(s) and never completed",
                        seconds(self.opts.stream_idle_timeout)
                    );
                    return Err(fail(
                        ApiError::new(ErrorKind::Timeout, &self.opts.provider, msg),
                        seen.max(1),
                    ));
                }
            };
            let event = match next {
                None => break,
                Some(Ok(ev)) => ev,
                Some(Err(e)) => {
                    let msg = format!("the stream broke after {partials} partial image(s): {e}");
                    return Err(fail(
                        ApiError::new(ErrorKind::Connection, &self.opts.provider, msg),
                        seen,
                    ));
                }
            };
            let item = response::parse_stream_data(&event.data)
                .map_err(|m| fail(self.bad_answer(m, &None), seen + 1))?;
            seen += 1;
            match item {
                StreamItem::Partial { index, b64 } => {
                    partials += 1;
                    if let Ok(bytes) = payload::decode_base64(&b64) {
                        let _ = events.send(ClientEvent::Partial { index, bytes });
                    }
                }
                StreamItem::Completed(ev) => {
                    answer.usage = ev.usage.clone().or(answer.usage);
                    answer.size = ev.size.clone();
                    answer.quality = ev.quality.clone();
                    answer.background = ev.background.clone();
                    answer.output_format = ev.output_format.clone();
                    answer.data.push(response::ImageData {
                        b64_json: ev.b64_json.clone(),
                        url: None,
                        revised_prompt: ev.revised_prompt.clone(),
                    });
                }
                StreamItem::Error(value) => {
                    let body = serde_json::json!({ "error": value }).to_string();
                    let mut e =
                        ApiError::from_response(&self.opts.provider, 400, body.as_bytes(), None);
                    // The HTTP status was 200; the class comes from the error's code or type.
                    e.status = None;
                    if e.kind == ErrorKind::InvalidRequest {
                        let code = e.code.clone().unwrap_or_default()
                            + e.error_type.as_deref().unwrap_or("");
                        if code.contains("server") {
                            e.kind = ErrorKind::Server;
                        } else if code.contains("rate_limit") {
                            e.kind = ErrorKind::RateLimited;
                        }
                    }
                    return Err(fail(e, seen));
                }
                StreamItem::Done => break,
                StreamItem::Ignored => {}
            }
        }
        if answer.data.is_empty() {
            let msg = format!(
                "the stream ended after {partials} partial image(s) without the finished image"
            );
            return Err(fail(
                ApiError::new(ErrorKind::BadAnswer, &self.opts.provider, msg),
                seen,
            ));
        }
        Ok(answer)
    }

    /// Decode, download and verify every image of an answer.
    async fn collect_images(
        &self,
        data: Vec<response::ImageData>,
    ) -> Result<Vec<ReceivedImage>, ApiError> {
        let total = data.len();
        let mut out = Vec::with_capacity(total);
        for (i, item) in data.into_iter().enumerate() {
            let which = if total > 1 {
                format!("image {} of {total}: ", i + 1)
            } else {
                String::new()
            };
            let (bytes, source) = match (&item.b64_json, &item.url) {
                (Some(b64), _) => (
                    payload::decode_base64(b64)
                        .map_err(|m| self.bad_answer(format!("{which}{m}"), &None))?,
                    "b64_json",
                ),
                (None, Some(url)) if url.len() >= 5 && url[..5].eq_ignore_ascii_case("data:") => (
                    payload::decode_data_url(url)
                        .map_err(|m| self.bad_answer(format!("{which}{m}"), &None))?,
                    "data_url",
                ),
                (None, Some(url)) => (
                    self.download(url).await.map_err(|mut e| {
                        e.message = format!("{which}{}", e.message);
                        e
                    })?,
                    "url",
                ),
                (None, None) => {
                    return Err(self.bad_answer(
                        format!("{which}the answer has neither b64_json nor url"),
                        &None,
                    ));
                }
            };
            // The check reads every byte once (a CRC): a very big picture goes to a blocking
            // thread, anything else is checked in place, where a thread hop would cost more.
            let info = if bytes.len() <= INLINE_VERIFY_BYTES {
                payload::verify_image(&bytes)
            } else {
                let check = bytes.clone();
                tokio::task::spawn_blocking(move || payload::verify_image(&check))
                    .await
                    .map_err(|e| {
                        self.bad_answer(format!("{which}checking the image failed: {e}"), &None)
                    })?
            }
            .map_err(|m| self.bad_answer(format!("{which}{m}"), &None))?;
            out.push(ReceivedImage {
                bytes,
                info,
                revised_prompt: item.revised_prompt,
                source,
            });
        }
        Ok(out)
    }

    /// Download a `url` result at once (DALL·E URLs expire after an hour): http and https only,
    /// never with the key, within the size cap and the download timeout.
    async fn download(&self, url: &str) -> Result<Bytes, ApiError> {
        let shown = crate::sanitize::truncate(&crate::sanitize::line(url), 120).into_owned();
        let parsed = reqwest::Url::parse(url).map_err(|e| {
            self.bad_answer(format!("the image URL {shown} is not a URL: {e}"), &None)
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(self.bad_answer(
                format!(
                    "refusing to fetch the image from a {}: URL ({shown})",
                    parsed.scheme()
                ),
                &None,
            ));
        }
        let resp = self
            .downloads
            .get(parsed)
            .timeout(self.opts.download_timeout)
            .send()
            .await
            .map_err(|e| {
                self.transport_error(
                    &e,
                    &format!("while downloading the image from {shown}"),
                    self.opts.download_timeout,
                )
            })?;
        if !resp.status().is_success() {
            return Err(self.bad_answer(
                format!(
                    "downloading the image from {shown} failed with HTTP {}",
                    resp.status().as_u16()
                ),
                &None,
            ));
        }
        let cap = self.opts.download_max_bytes;
        if resp.content_length().is_some_and(|n| n > cap) {
            return Err(self.bad_answer(
                format!(
                    "the image at {shown} is larger than the {} MB limit",
                    cap >> 20
                ),
                &None,
            ));
        }
        read_capped(resp, cap).await.map_err(|e| match e {
            ReadError::TooBig => self.bad_answer(
                format!(
                    "the image at {shown} is larger than the {} MB limit",
                    cap >> 20
                ),
                &None,
            ),
            ReadError::Http(e) => self.transport_error(
                &e,
                &format!("while downloading the image from {shown}"),
                self.opts.download_timeout,
            ),
        })
    }
}

/// A duration for messages: "60 s", or "0.3 s" for a short one that is not whole seconds.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 || d.as_secs() >= 10 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

enum ReadError {
    TooBig,
    Http(reqwest::Error),
}

/// Read a body, refusing to hold more than `cap` bytes.
async fn read_capped(resp: reqwest::Response, cap: u64) -> Result<Bytes, ReadError> {
    // A body that says its length up front is read in one go.
    if let Some(len) = resp.content_length() {
        if len > cap {
            return Err(ReadError::TooBig);
        }
        return resp.bytes().await.map_err(ReadError::Http);
    }
    let mut stream = resp.bytes_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(ReadError::Http)?;
        if buf.len() as u64 + chunk.len() as u64 > cap {
            return Err(ReadError::TooBig);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}
