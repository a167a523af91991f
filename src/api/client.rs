//! The HTTP client for `POST {base}/images/generations` (and `/images/edits`,
//! `/images/variations`, sent as multipart with the pictures streamed from disk): plain and
//! streamed answers, downloads of
//! URL results, retries, cancellation. Everything it returns is verified image bytes or an
//! [`ApiError`].

use super::edit::{self, EditFiles, Endpoint, Inspected};
use super::error::{ApiError, ErrorKind};
use super::payload::{self, ImageInfo};
use super::request::CheckedRequest;
use super::response::{self, StreamItem, Usage};
use super::retry::{self, Failure, RetryNotice};
use super::sse;
use crate::secret::ApiKey;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Url, redirect};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// Images up to this size are verified on the calling thread.
const INLINE_VERIFY_BYTES: usize = 1024 * 1024;

/// Which hosts the images of `url` answers may be downloaded from (`download_hosts` in a
/// provider's profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DownloadHosts {
    /// Hosts on the public internet, and the provider's own host and port (a local server such
    /// as LocalAI serves its images itself). Loopback, private, link-local and other special
    /// addresses are refused, whether written in the URL or what a name resolves to.
    #[default]
    Public,
    /// Only the provider's own host and port.
    Provider,
    /// Any http or https host, loopback and private networks included.
    Any,
    /// No downloads: a `url` answer is an error.
    None,
}

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
    /// Largest JSON answer accepted (base64 images make answers big); also the largest single
    /// event of a streamed answer.
    pub max_response_bytes: u64,
    /// Where `url` answers may be downloaded from.
    pub download_hosts: DownloadHosts,
    /// Redirects a download may follow (API requests follow none).
    pub download_max_redirects: u32,
    /// A 429 rate limit (not out of credit) is not retried here but returned at once: the
    /// scheduler puts the job back in its queue and paces the provider (off for direct use).
    pub defer_rate_limits: bool,
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
            download_hosts: DownloadHosts::Public,
            download_max_redirects: 5,
            defer_rate_limits: false,
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
    /// Things the user should know about an answer that was still used (extra images dropped).
    pub warnings: Vec<String>,
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
    /// What an answer said about the rate limits (sent for every answer that said anything,
    /// and for every 429).
    RateLimit(super::ratelimit::RateHints),
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
    /// Images of a streamed answer beyond those asked for: counted, not kept.
    dropped: usize,
}

/// The Images API client. Cheap to clone; share one per provider.
#[derive(Debug, Clone)]
pub struct ImagesClient {
    pub(super) http: reqwest::Client,
    downloads: reqwest::Client,
    provider_downloads: reqwest::Client,
    policy: DownloadPolicy,
    pub(super) opts: ClientOptions,
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
        // Where the value came from: the OPENAI_* variables apply to the openai profile only
        // (see config.rs), and a profile's own setting wins over them.
        let from = |field: &str, var: &str| {
            if opts.provider == "OpenAI" {
                format!("{field} in [providers.openai] or {var}")
            } else {
                format!("{field} in [providers.{}]", opts.provider)
            }
        };
        for (name, value, field, var) in [
            (
                "OpenAI-Organization",
                &opts.organization,
                "organization",
                "OPENAI_ORG_ID",
            ),
            (
                "OpenAI-Project",
                &opts.project,
                "project",
                "OPENAI_PROJECT_ID",
            ),
        ] {
            if let Some(value) = value {
                let v = HeaderValue::from_str(value).map_err(|_| {
                    ApiError::new(
                        ErrorKind::InvalidRequest,
                        &opts.provider,
                        format!(
                            "the {field} ({}) holds characters a header cannot carry: fix it",
                            from(field, var)
                        ),
                    )
                })?;
                headers.insert(name, v);
            }
        }
        let user_agent = concat!("easel/", env!("CARGO_PKG_VERSION"));
        let setup_error = |e: reqwest::Error| {
            ApiError::new(
                ErrorKind::Connection,
                &opts.provider,
                format!("could not set up HTTP: {e}"),
            )
        };
        // API requests follow no redirect: a hop to another host would take the prompt (and,
        // on a later hop, the key and organisation headers) with it. A 30x is shown instead.
        let http = reqwest::Client::builder()
            .user_agent(user_agent)
            .default_headers(headers)
            .connect_timeout(opts.connect_timeout)
            .redirect(redirect::Policy::none())
            .build()
            .map_err(setup_error)?;
        // Downloads go to whatever host a `url` names: never with the key or org headers, and
        // only where the provider's download policy allows, redirects included.
        let policy = DownloadPolicy::new(&opts);
        let mut downloads = reqwest::Client::builder()
            .user_agent(user_agent)
            .connect_timeout(opts.connect_timeout)
            .redirect(policy.redirect_policy(false));
        if policy.hosts == DownloadHosts::Public {
            downloads = downloads.dns_resolver(PublicOnly);
        }
        let downloads = downloads.build().map_err(setup_error)?;
        // URLs on the provider's own host and port (LocalAI serves its images itself, often on
        // localhost) go through a client that resolves names as usual but may not leave that
        // origin on a redirect.
        let provider_downloads = reqwest::Client::builder()
            .user_agent(user_agent)
            .connect_timeout(opts.connect_timeout)
            .redirect(policy.redirect_policy(true))
            .build()
            .map_err(setup_error)?;
        Ok(ImagesClient {
            http,
            downloads,
            provider_downloads,
            policy,
            opts,
        })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    fn endpoint(&self, endpoint: Endpoint) -> String {
        format!("{}{}", self.opts.base_url, endpoint.path())
    }

    /// Check the files of an edit again, as it is about to be sent (they may have changed since
    /// the request was queued): nothing is sent when one fails.
    async fn check_inputs(&self, files: &EditFiles) -> Result<Vec<Inspected>, ApiError> {
        let files = files.clone();
        let checked = tokio::task::spawn_blocking(move || edit::check_files(&files))
            .await
            .map_err(|e| {
                ApiError::new(
                    ErrorKind::InvalidRequest,
                    &self.opts.provider,
                    format!("checking the input pictures stopped: {e}"),
                )
            })?;
        checked.map_err(|e| {
            let mut error = ApiError::new(
                ErrorKind::InvalidRequest,
                &self.opts.provider,
                format!("{}: {}", e.field, e.message),
            );
            error.code = Some(super::error::INPUT_FILE_CODE.to_string());
            error
        })
    }

    /// The multipart body of an edit or a variation: the text fields of `body`, then the
    /// pictures and the mask, each streamed from its file (opened anew for every attempt).
    async fn multipart(
        &self,
        request: &CheckedRequest,
        files: &EditFiles,
        inputs: &[Inspected],
    ) -> Result<reqwest::multipart::Form, Failure> {
        use reqwest::multipart::{Form, Part};
        let mut form = Form::new();
        for (key, value) in &request.body {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            form = form.text(key.clone(), text);
        }
        let pictures = inputs.len() - usize::from(files.mask.is_some());
        for (k, input) in inputs.iter().enumerate() {
            let field = if k < pictures {
                files.image_field
            } else {
                "mask"
            };
            let file = tokio::fs::File::open(&input.path).await.map_err(|e| {
                let mut error = ApiError::new(
                    ErrorKind::InvalidRequest,
                    &self.opts.provider,
                    format!(
                        "{field}: {} cannot be read: {e}",
                        crate::sanitize::line(&input.path.display().to_string())
                    ),
                );
                error.code = Some(super::error::INPUT_FILE_CODE.to_string());
                Failure::from(error)
            })?;
            let stream = tokio_util::codec::FramedRead::with_capacity(
                file,
                tokio_util::codec::BytesCodec::new(),
                64 * 1024,
            )
            .map(|chunk| chunk.map(bytes::BytesMut::freeze));
            let part = Part::stream_with_length(reqwest::Body::wrap_stream(stream), input.bytes)
                .file_name(input.upload_name())
                .mime_str(input.mime())
                .map_err(|e| {
                    Failure::from(ApiError::new(
                        ErrorKind::InvalidRequest,
                        &self.opts.provider,
                        format!("could not build the request: {e}"),
                    ))
                })?;
            form = form.part(field, part);
        }
        Ok(form)
    }

    /// Generate images. Partial images and retry notices go to `events` as they happen; the
    /// returned images are verified. Cancelling ends the request (or a wait) at once.
    pub async fn generate(
        &self,
        request: &CheckedRequest,
        cancel: &CancellationToken,
        events: &UnboundedSender<ClientEvent>,
    ) -> Result<ApiOutput, ApiError> {
        let inputs = match &request.edit {
            Some(files) => self.check_inputs(files).await?,
            None => Vec::new(),
        };
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
            |_| async {
                let mut outcome = self.attempt(request, &inputs, events).await;
                // Deferred: the scheduler waits and sends it again, without using a retry.
                if let Err(f) = &mut outcome
                    && self.opts.defer_rate_limits
                    && f.error.kind == super::error::ErrorKind::RateLimited
                {
                    f.should_retry = Some(false);
                }
                outcome
            },
        )
        .await;
        // Errors say how many requests were sent, so history can record the retries made.
        let counted = |mut e: ApiError| {
            e.attempts = attempts;
            e
        };
        let mut answer = answer.map_err(|e| counted(self.redact(e)))?;
        // Every text of the answer is redacted before anyone can print or store it.
        let request_id = self.redact_opt(answer.request_id.take());
        let mut warnings = Vec::new();
        let keep = images_to_keep(request);
        if answer.data.len() + answer.dropped > keep {
            warnings.push(format!(
                "the server sent {} images where {keep} {} asked for: kept the first {keep}",
                answer.data.len() + answer.dropped,
                if keep == 1 { "was" } else { "were" }
            ));
            answer.data.truncate(keep);
        }
        let images = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(counted(ApiError::cancelled(&self.opts.provider))),
            r = self.collect_images(answer.data) => r.map_err(|e| counted(self.redact(e.with_request_id(request_id.clone()))))?,
        };
        let images = images
            .into_iter()
            .map(|mut image| {
                image.revised_prompt = self.redact_opt(image.revised_prompt.take());
                image
            })
            .collect();
        Ok(ApiOutput {
            images,
            usage: answer.usage,
            request_id,
            created: answer.created,
            attempts,
            size: self.redact_opt(answer.size),
            quality: self.redact_opt(answer.quality),
            background: self.redact_opt(answer.background),
            output_format: self.redact_opt(answer.output_format),
            warnings,
        })
    }

    /// Text with every run of 20 or more characters of the key replaced (see
    /// [`ApiKey::redact`]).
    pub(super) fn redact_text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match &self.opts.api_key {
            Some(key) => key.redact(text),
            None => Cow::Borrowed(text),
        }
    }

    pub(super) fn redact_opt(&self, text: Option<String>) -> Option<String> {
        text.map(|t| match self.redact_text(&t) {
            Cow::Borrowed(_) => t,
            Cow::Owned(o) => o,
        })
    }

    /// Errors never show the key, even when a server or proxy echoes it back (in its message,
    /// an HTML page, a URL).
    pub(super) fn redact(&self, mut e: ApiError) -> ApiError {
        let Some(key) = self.opts.api_key.as_ref() else {
            return e;
        };
        let scrub = |s: &mut String| {
            if let Cow::Owned(clean) = key.redact(s) {
                *s = clean;
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

    pub(super) fn bad_answer(
        &self,
        message: impl AsRef<str>,
        request_id: &Option<String>,
    ) -> ApiError {
        ApiError::new(ErrorKind::BadAnswer, &self.opts.provider, message)
            .with_request_id(request_id.clone())
    }

    /// `limit` is the timeout that applied (the request's, or the download's).
    pub(super) fn transport_error(
        &self,
        e: &reqwest::Error,
        during: &str,
        limit: Duration,
    ) -> ApiError {
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Connection
        };
        let detail = transport_detail(e);
        let what = match kind {
            ErrorKind::Timeout => format!("no complete answer within {} {during}", seconds(limit)),
            _ => format!("{during}: {detail}"),
        };
        // The detail may quote a URL: redact it whole, before anything shortens it.
        let what = self.redact_text(&what).into_owned();
        ApiError::new(kind, &self.opts.provider, what)
    }

    /// One try: send, check the status, read the answer (streamed or not).
    async fn attempt(
        &self,
        request: &CheckedRequest,
        inputs: &[Inspected],
        events: &UnboundedSender<ClientEvent>,
    ) -> Result<RawAnswer, Failure> {
        let builder = self
            .http
            .post(self.endpoint(request.endpoint()))
            .timeout(self.opts.timeout);
        let mut builder = match &request.edit {
            Some(files) => builder.multipart(self.multipart(request, files, inputs).await?),
            None => builder.json(&request.body),
        };
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
        let mut hints = super::ratelimit::RateHints::from_headers(header);
        if status != 429 && !hints.is_empty() {
            let _ = events.send(ClientEvent::RateLimit(hints.clone()));
        }
        if resp.status().is_redirection() {
            return Err(Failure::from(
                self.redirected(status, header("location").as_deref())
                    .with_request_id(request_id),
            ));
        }
        if !resp.status().is_success() {
            let body = read_capped(resp, 1024 * 1024).await.unwrap_or_default();
            // Redact before the error quotes (and shortens) the body.
            let body = match &self.opts.api_key {
                Some(key) => key.redact_bytes(&body).into_owned(),
                None => body.to_vec(),
            };
            let error = ApiError::from_response(&self.opts.provider, status, &body, request_id);
            let retry_after = retry::parse_retry_after(
                header("retry-after-ms").as_deref(),
                header("retry-after").as_deref(),
                chrono::Utc::now(),
            );
            if status == 429 {
                // A rate limit (out of credit is a 429 too, but waiting does not help it).
                hints.limited = error.kind == super::error::ErrorKind::RateLimited;
                hints.retry_after = retry_after;
                let _ = events.send(ClientEvent::RateLimit(hints));
            }
            return Err(Failure {
                error,
                should_retry: header("x-should-retry")
                    .map(|v| v.trim().eq_ignore_ascii_case("true")),
                retry_after,
                stream_started: false,
            });
        }
        let is_sse = header("content-type")
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("text/event-stream"));
        if is_sse {
            return self
                .read_stream(resp, request_id, events, images_to_keep(request))
                .await;
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
            dropped: 0,
        })
    }

    /// A 30x answer to an API request: never followed (see [`ImagesClient::new`]); say where it
    /// pointed and what to do.
    fn redirected(&self, status: u16, location: Option<&str>) -> ApiError {
        let target = location.and_then(|l| {
            Url::parse(&self.endpoint(Endpoint::Generations))
                .ok()?
                .join(l)
                .ok()
        });
        let message = match target {
            Some(mut url) => {
                let _ = url.set_username("");
                let _ = url.set_password(None);
                url.set_query(None);
                url.set_fragment(None);
                let host = match (url.host_str(), url.port()) {
                    (Some(h), Some(p)) => format!("{h}:{p}"),
                    (Some(h), None) => h.to_string(),
                    _ => url.to_string(),
                };
                let text = url.to_string();
                let base = [Endpoint::Generations, Endpoint::Edits, Endpoint::Variations]
                    .iter()
                    .find_map(|e| text.strip_suffix(e.path()))
                    .unwrap_or(&text)
                    .trim_end_matches('/')
                    .to_string();
                format!(
                    "the server redirected to {host}; easel does not follow redirects of API requests (they would take your prompt, and could take your key, to another host): set base_url to {base} if you trust it"
                )
            }
            None => "the server answered with a redirect and no usable location; easel does not follow redirects of API requests: check the provider's base_url".to_string(),
        };
        let message =
            crate::sanitize::truncate_redacted(&self.redact_text(&message), 400).into_owned();
        let mut e = ApiError::new(ErrorKind::InvalidRequest, &self.opts.provider, message);
        e.status = Some(status);
        e
    }

    async fn read_stream(
        &self,
        resp: reqwest::Response,
        request_id: Option<String>,
        events: &UnboundedSender<ClientEvent>,
        keep: usize,
    ) -> Result<RawAnswer, Failure> {
        let mut body = resp.bytes_stream();
        let mut parser = sse::Parser::new(self.opts.max_response_bytes);
        let mut pending: std::collections::VecDeque<sse::Event> = Default::default();
        let mut batch = Vec::new();
        let mut ended = false;
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
            dropped: 0,
        };
        let fail = |error: ApiError, seen: u32| Failure {
            error: error.with_request_id(request_id.clone()),
            should_retry: None,
            retry_after: None,
            stream_started: seen > 0,
        };
        loop {
            let event = match pending.pop_front() {
                Some(event) => event,
                None if ended => break,
                None => {
                    // Silence is time without bytes: a long event that keeps arriving is not
                    // silence (its size is capped instead).
                    let next = match tokio::time::timeout(
                        self.opts.stream_idle_timeout,
                        body.next(),
                    )
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
                    match next {
                        None => ended = true,
                        Some(Ok(chunk)) => {
                            if let Err(sse::SseError::TooBig(cap)) = parser.feed(&chunk, &mut batch)
                            {
                                let msg = format!(
                                    "the stream sent an event over {} MB (the limit for one answer); it may not be an image stream",
                                    cap >> 20
                                );
                                return Err(fail(self.bad_answer(msg, &None), seen.max(1)));
                            }
                            pending.extend(batch.drain(..));
                        }
                        Some(Err(e)) if e.is_timeout() => {
                            let msg = format!(
                                "no complete answer within {} (the stream had sent {partials} partial image(s))",
                                seconds(self.opts.timeout)
                            );
                            return Err(fail(
                                ApiError::new(ErrorKind::Timeout, &self.opts.provider, msg),
                                seen,
                            ));
                        }
                        Some(Err(e)) => {
                            let msg = format!(
                                "the stream broke after {partials} partial image(s): {}",
                                self.redact_text(&transport_detail(&e))
                            );
                            return Err(fail(
                                ApiError::new(ErrorKind::Connection, &self.opts.provider, msg),
                                seen,
                            ));
                        }
                    }
                    continue;
                }
            };
            let data = std::str::from_utf8(&event.data).map_err(|e| {
                fail(
                    self.bad_answer(
                        format!(
                            "a stream event is not valid UTF-8 (at byte {})",
                            e.valid_up_to()
                        ),
                        &None,
                    ),
                    seen + 1,
                )
            })?;
            let item = response::parse_stream_data(data)
                .map_err(|m| fail(self.bad_answer(m, &None), seen + 1))?;
            seen += 1;
            match item {
                StreamItem::Partial { index, b64 } => {
                    partials += 1;
                    if let Ok(bytes) = payload::decode_base64(&b64) {
                        let _ = events.send(ClientEvent::Partial { index, bytes });
                    }
                }
                StreamItem::Completed(_) if answer.data.len() >= keep => answer.dropped += 1,
                StreamItem::Completed(ev) => {
                    // Moved, not copied: b64_json holds megabytes.
                    let ev = *ev;
                    answer.usage = ev.usage.or(answer.usage);
                    answer.size = ev.size;
                    answer.quality = ev.quality;
                    answer.background = ev.background;
                    answer.output_format = ev.output_format;
                    answer.data.push(response::ImageData {
                        b64_json: ev.b64_json,
                        url: None,
                        revised_prompt: ev.revised_prompt,
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
    pub(super) async fn collect_images(
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
        let parsed = Url::parse(url);
        // Shown without credentials, redacted first, then cleaned and shortened.
        let shown = match &parsed {
            Ok(u) => shown_url(u),
            Err(_) => url.to_string(),
        };
        let shown = crate::sanitize::truncate_redacted(
            &crate::sanitize::line(&self.redact_text(&shown)),
            120,
        )
        .into_owned();
        let parsed = parsed.map_err(|e| {
            self.bad_answer(format!("the image URL {shown} is not a URL: {e}"), &None)
        })?;
        if let Err(why) = self.policy.check(&parsed) {
            return Err(self.bad_answer(
                format!("refusing to fetch the image from {shown}: {why}"),
                &None,
            ));
        }
        let client =
            if self.policy.hosts == DownloadHosts::Public && self.policy.is_provider(&parsed) {
                &self.provider_downloads
            } else {
                &self.downloads
            };
        let resp = client
            .get(parsed)
            .timeout(self.opts.download_timeout)
            .send()
            .await
            .map_err(|e| match refusal(&e) {
                Some(why) => self.bad_answer(
                    format!("refusing to fetch the image from {shown}: {why}"),
                    &None,
                ),
                None => self.transport_error(
                    &e,
                    &format!("while downloading the image from {shown}"),
                    self.opts.download_timeout,
                ),
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

/// How many images of an answer are kept: the `n` asked for, or for a model the catalogue does
/// not know (whose server may count differently), at least the catalogue's largest `n`.
fn images_to_keep(request: &CheckedRequest) -> usize {
    let n = request
        .body
        .get("n")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(1)
        .max(1) as usize;
    if request.known_model {
        n
    } else {
        n.max(usize::from(super::request::N_MAX))
    }
}

/// A reqwest error and its sources, one line.
fn transport_detail(e: &reqwest::Error) -> String {
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = format!("{detail}: {s}");
        source = s.source();
    }
    detail
}

/// A URL as shown in messages: without user name, password or fragment.
fn shown_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_fragment(None);
    u.to_string()
}

/// Why a download was stopped by the policy (a redirect or a name that resolved to a refused
/// address), when that is what happened.
fn refusal(e: &reqwest::Error) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refused>() {
            return Some(r.0.clone());
        }
        source = s.source();
    }
    None
}

/// A download the policy does not allow.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Where downloads may go: checked for the URL of the answer and for every redirect.
#[derive(Debug, Clone)]
struct DownloadPolicy {
    hosts: DownloadHosts,
    max_redirects: u32,
    /// The provider's host (lowercase) and port, from its base URL.
    provider_host: Option<String>,
    provider_port: Option<u16>,
    /// The provider's profile name, for messages.
    provider: String,
}

impl DownloadPolicy {
    fn new(opts: &ClientOptions) -> DownloadPolicy {
        let base = Url::parse(&opts.base_url).ok();
        DownloadPolicy {
            hosts: opts.download_hosts,
            max_redirects: opts.download_max_redirects,
            provider_host: base
                .as_ref()
                .and_then(|u| u.host_str().map(str::to_ascii_lowercase)),
            provider_port: base.as_ref().and_then(Url::port_or_known_default),
            provider: if opts.provider == "OpenAI" {
                "openai".to_string()
            } else {
                opts.provider.clone()
            },
        }
    }

    fn is_provider(&self, url: &Url) -> bool {
        url.host_str().map(str::to_ascii_lowercase) == self.provider_host
            && url.port_or_known_default() == self.provider_port
    }

    fn allow_hint(&self, value: &str) -> String {
        format!(
            "allow it with download_hosts = \"{value}\" in [providers.{}] if you trust it",
            self.provider
        )
    }

    /// Whether `url` may be fetched; the reason in words when not.
    fn check(&self, url: &Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("a {}: URL is not http or https", url.scheme()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "the URL carries credentials (user:password@), which easel does not send"
                    .to_string(),
            );
        }
        match self.hosts {
            DownloadHosts::Any => Ok(()),
            DownloadHosts::None => Err(format!(
                "downloads are off for this provider (download_hosts = \"none\" in [providers.{}])",
                self.provider
            )),
            DownloadHosts::Provider if self.is_provider(url) => Ok(()),
            DownloadHosts::Provider => Err(format!(
                "it is not the provider's own host and port; {}",
                self.allow_hint("public")
            )),
            DownloadHosts::Public if self.is_provider(url) => Ok(()),
            DownloadHosts::Public => {
                let host = url.host_str().unwrap_or_default();
                let ip = host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .ok();
                match ip {
                    Some(ip) if !is_public(ip) => Err(format!(
                        "{ip} is a loopback, private or otherwise special address; {}",
                        self.allow_hint("any")
                    )),
                    None if is_local_name(host) => Err(format!(
                        "{host} is this machine; {}",
                        self.allow_hint("any")
                    )),
                    // Names are checked again once resolved (see PublicOnly).
                    _ => Ok(()),
                }
            }
        }
    }

    /// Redirects of a download: bounded, each hop checked like the first URL, and with
    /// `origin_only`, never away from the provider's own host and port.
    fn redirect_policy(&self, origin_only: bool) -> redirect::Policy {
        let policy = self.clone();
        redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > policy.max_redirects as usize {
                let why = format!(
                    "it took more than {} redirects (the limit for a download)",
                    policy.max_redirects
                );
                return attempt.error(Refused(why));
            }
            let verdict = if origin_only && !policy.is_provider(attempt.url()) {
                Err(format!(
                    "a download from the provider's own host may not be redirected elsewhere; {}",
                    policy.allow_hint("any")
                ))
            } else {
                policy.check(attempt.url())
            };
            match verdict {
                Ok(()) => attempt.follow(),
                Err(why) => {
                    let to = shown_url(attempt.url());
                    attempt.error(Refused(format!("it redirected to {to}: {why}")))
                }
            }
        })
    }
}

/// "localhost" and its subdomains, which resolve to this machine without asking DNS.
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// An address on the public internet: not loopback, private, link-local, shared (CGNAT),
/// unspecified, broadcast, multicast, documentation or otherwise reserved.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || (a == 192 && b == 0))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                || first == 0x0064 && v6.segments()[1] == 0xff9b
                || first == 0)
        }
    }
}

/// A resolver that drops loopback, private and other special addresses, so that a public-looking
/// name cannot send a download to this machine or the local network. (The provider's own
/// origin is fetched with another client; see [`ImagesClient::new`].)
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(Refused(format!(
                    "{host} resolves only to loopback, private or otherwise special addresses; set download_hosts = \"any\" for the provider if you trust it"
                )))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
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

pub(super) enum ReadError {
    TooBig,
    Http(reqwest::Error),
}

/// Read a body, refusing to hold more than `cap` bytes.
pub(super) async fn read_capped(resp: reqwest::Response, cap: u64) -> Result<Bytes, ReadError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses() {
        let cases: &[(&str, bool)] = &[
            ("8.8.8.8", true),
            ("151.101.1.1", true),
            ("127.0.0.1", false),
            ("127.1.2.3", false),
            ("10.0.0.1", false),
            ("172.16.5.4", false),
            ("192.168.1.1", false),
            ("169.254.169.254", false),
            ("100.64.0.1", false),
            ("0.0.0.0", false),
            ("255.255.255.255", false),
            ("224.0.0.1", false),
            ("192.0.2.1", false),
            ("2606:4700::1111", true),
            ("::1", false),
            ("::", false),
            ("fd00::1", false),
            ("fe80::1", false),
            ("ff02::1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:8.8.8.8", true),
            ("2001:db8::1", false),
        ];
        for (ip, public) in cases {
            assert_eq!(is_public(ip.parse().unwrap()), *public, "{ip}");
        }
    }

    #[test]
    fn download_policy_checks() {
        let mut opts = ClientOptions::new("localai", "http://localhost:8080/v1");
        let policy = DownloadPolicy::new(&opts);
        let check = |p: &DownloadPolicy, url: &str| p.check(&Url::parse(url).unwrap());
        assert!(check(&policy, "http://localhost:8080/generated/a.png").is_ok());
        assert!(check(&policy, "https://cdn.example.com/a.png").is_ok());
        for refused in [
            "http://localhost:6379/",
            "http://127.0.0.1:8080/a.png",
            "http://[::1]/a.png",
            "http://169.254.169.254/latest/meta-data/",
            "http://app.localhost/a.png",
            "http://u:p@cdn.example.com/a.png",
            "ftp://cdn.example.com/a.png",
        ] {
            assert!(check(&policy, refused).is_err(), "{refused}");
        }
        opts.download_hosts = DownloadHosts::Provider;
        let policy = DownloadPolicy::new(&opts);
        assert!(check(&policy, "http://localhost:8080/a.png").is_ok());
        assert!(check(&policy, "https://cdn.example.com/a.png").is_err());
        opts.download_hosts = DownloadHosts::Any;
        let policy = DownloadPolicy::new(&opts);
        assert!(check(&policy, "http://10.1.2.3:9000/a.png").is_ok());
        assert!(check(&policy, "http://u@10.1.2.3/a.png").is_err());
        opts.download_hosts = DownloadHosts::None;
        let policy = DownloadPolicy::new(&opts);
        let e = check(&policy, "https://cdn.example.com/a.png").unwrap_err();
        assert!(e.contains("[providers.localai]"), "{e}");
    }
}
