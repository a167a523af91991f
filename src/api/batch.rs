//! The Batch API (half price, results within 24 h): upload a JSONL file of requests
//! (`POST /files`, purpose `batch`), create the batch (`POST /batches`), poll it
//! (`GET /batches/{id}`), cancel it (`POST /batches/{id}/cancel`) and download its output and
//! error files (`GET /files/{id}/content`). Same retry contract, redaction and no-redirect rule
//! as the image requests (see [`ImagesClient`]). Wire formats:
//! `../shared/contracts/openai-batch-files.openapi.json`.

use super::client::{ImagesClient, ReadError, read_capped};
use super::error::{ApiError, ErrorKind};
use super::response;
use super::retry::{self, Failure};
use super::{ApiOutput, Endpoint};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// Where a batch is in its life, as the server says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    Validating,
    InProgress,
    Finalizing,
    Completed,
    Failed,
    Expired,
    Cancelling,
    Cancelled,
    /// A status this build does not know: polled again, as an open one.
    #[serde(other)]
    Unknown,
}

impl BatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Validating => "validating",
            BatchStatus::InProgress => "in_progress",
            BatchStatus::Finalizing => "finalizing",
            BatchStatus::Completed => "completed",
            BatchStatus::Failed => "failed",
            BatchStatus::Expired => "expired",
            BatchStatus::Cancelling => "cancelling",
            BatchStatus::Cancelled => "cancelled",
            BatchStatus::Unknown => "unknown",
        }
    }

    /// The batch will not change again: its results (if any) can be collected.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            BatchStatus::Completed
                | BatchStatus::Failed
                | BatchStatus::Expired
                | BatchStatus::Cancelled
        )
    }
}

impl std::fmt::Display for BatchStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub completed: u64,
    #[serde(default)]
    pub failed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchErrorItem {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub line: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchErrors {
    #[serde(default)]
    pub data: Vec<BatchErrorItem>,
}

/// A batch as `GET /batches/{id}` describes it (the fields easel uses; text cleaned of control
/// characters and of the key before anyone sees it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub id: String,
    pub status: BatchStatus,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub input_file_id: Option<String>,
    #[serde(default)]
    pub output_file_id: Option<String>,
    #[serde(default)]
    pub error_file_id: Option<String>,
    #[serde(default)]
    pub request_counts: Option<RequestCounts>,
    #[serde(default)]
    pub errors: Option<BatchErrors>,
    #[serde(default)]
    pub created_at: Option<i64>,
}

impl Batch {
    /// The batch's own errors (a failed validation), in one line.
    pub fn error_summary(&self) -> Option<String> {
        let errs = self.errors.as_ref()?;
        let parts: Vec<String> = errs
            .data
            .iter()
            .map(|e| {
                let mut s = e.message.clone().unwrap_or_default();
                if let Some(code) = &e.code {
                    s = format!("{code}: {s}");
                }
                if let Some(line) = e.line {
                    s = format!("line {line}: {s}");
                }
                s
            })
            .collect();
        (!parts.is_empty()).then(|| crate::sanitize::line(&parts.join("; ")).into_owned())
    }
}

/// The `{ "id": "file-…" }` answer of an upload.
#[derive(Debug, Clone, Deserialize)]
struct FileObject {
    id: String,
}

/// One line of a batch's input file: the same JSON body as a live request.
pub fn input_line(
    custom_id: &str,
    endpoint: Endpoint,
    body: &serde_json::Map<String, serde_json::Value>,
) -> String {
    serde_json::json!({
        "custom_id": custom_id,
        "method": "POST",
        "url": format!("/v1{}", endpoint.path()),
        "body": body,
    })
    .to_string()
}

/// The answer part of an output line.
#[derive(Debug, Clone, Deserialize)]
pub struct LineResponse {
    #[serde(default)]
    pub status_code: u16,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub body: serde_json::Value,
}

/// The error part of an output (or error file) line.
#[derive(Debug, Clone, Deserialize)]
pub struct LineError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// One line of a batch's output or error file.
#[derive(Debug, Clone, Deserialize)]
pub struct OutputLine {
    pub custom_id: String,
    #[serde(default)]
    pub response: Option<LineResponse>,
    #[serde(default)]
    pub error: Option<LineError>,
}

/// The lines of an output or error file; lines that are not output lines are counted, not
/// fatal (the others are still used).
pub fn parse_output(text: &[u8]) -> (Vec<OutputLine>, usize) {
    let mut lines = Vec::new();
    let mut bad = 0;
    for raw in text.split(|b| *b == b'\n') {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<OutputLine>(raw) {
            Ok(l) => lines.push(l),
            Err(_) => bad += 1,
        }
    }
    (lines, bad)
}

/// What to send, for [`ImagesClient::batch_call`].
enum Body<'a> {
    None,
    Json(&'a serde_json::Value),
    /// The JSONL file at this path, streamed as the `file` part of a multipart upload.
    Upload(&'a Path),
}

impl ImagesClient {
    fn api_url(&self, path: &str) -> String {
        format!("{}{path}", self.opts.base_url)
    }

    /// One Batch API call with the retry contract: the answer's body, or an error with the key
    /// redacted. `cap` bounds the answer.
    async fn batch_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Body<'_>,
        cap: u64,
        cancel: &CancellationToken,
    ) -> Result<Bytes, ApiError> {
        let (answer, attempts) = retry::run(
            self.opts.max_retries,
            cancel,
            &self.opts.provider,
            |_| {},
            |_| self.batch_attempt(method.clone(), path, &body, cap),
        )
        .await;
        answer.map_err(|mut e| {
            e.attempts = attempts;
            self.redact(e)
        })
    }

    async fn batch_attempt(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Body<'_>,
        cap: u64,
    ) -> Result<Bytes, Failure> {
        let mut builder = self
            .http
            .request(method, self.api_url(path))
            .timeout(self.opts.timeout);
        match body {
            Body::None => {}
            Body::Json(v) => builder = builder.json(v),
            Body::Upload(file) => builder = builder.multipart(self.upload_form(file).await?),
        }
        if let Some(key) = &self.opts.api_key {
            builder = builder.bearer_auth(key.expose());
        }
        let resp = builder.send().await.map_err(|e| {
            Failure::from(self.transport_error(
                &e,
                &format!("while sending {path}"),
                self.opts.timeout,
            ))
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
        if resp.status().is_redirection() {
            let mut e = ApiError::new(
                ErrorKind::InvalidRequest,
                &self.opts.provider,
                format!(
                    "the server answered {path} with a redirect (HTTP {status}); easel does not follow redirects of API requests: check the provider's base_url"
                ),
            )
            .with_request_id(request_id);
            e.status = Some(status);
            return Err(Failure::from(e));
        }
        if !resp.status().is_success() {
            let body = read_capped(resp, 1024 * 1024).await.unwrap_or_default();
            let body = match &self.opts.api_key {
                Some(key) => key.redact_bytes(&body).into_owned(),
                None => body.to_vec(),
            };
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
        read_capped(resp, cap).await.map_err(|e| {
            Failure::from(match e {
                ReadError::TooBig => self.bad_answer(
                    format!("the answer to {path} is larger than {} MB", cap >> 20),
                    &request_id,
                ),
                ReadError::Http(e) => self
                    .transport_error(
                        &e,
                        &format!("while reading the answer to {path}"),
                        self.opts.timeout,
                    )
                    .with_request_id(request_id.clone()),
            })
        })
    }

    /// The upload's form: `purpose=batch` and the file, streamed from disk (opened anew for
    /// every attempt).
    async fn upload_form(&self, path: &Path) -> Result<reqwest::multipart::Form, Failure> {
        use reqwest::multipart::{Form, Part};
        let fail = |what: String| {
            Failure::from(ApiError::new(
                ErrorKind::InvalidRequest,
                &self.opts.provider,
                what,
            ))
        };
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| fail(format!("the batch file cannot be read: {e}")))?;
        let len = file
            .metadata()
            .await
            .map_err(|e| fail(format!("the batch file cannot be read: {e}")))?
            .len();
        let stream = tokio_util::codec::FramedRead::with_capacity(
            file,
            tokio_util::codec::BytesCodec::new(),
            64 * 1024,
        )
        .map(|chunk| chunk.map(bytes::BytesMut::freeze));
        let part = Part::stream_with_length(reqwest::Body::wrap_stream(stream), len)
            .file_name("easel-batch.jsonl")
            .mime_str("application/jsonl")
            .map_err(|e| fail(format!("could not build the upload: {e}")))?;
        Ok(Form::new().text("purpose", "batch").part("file", part))
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        body: &[u8],
        what: &str,
    ) -> Result<T, ApiError> {
        serde_json::from_slice(body).map_err(|e| {
            let msg = format!("the answer to {what} is not what the Batch API sends: {e}");
            self.bad_answer(self.redact_text(&msg), &None)
        })
    }

    fn clean_text(&self, s: String) -> String {
        crate::sanitize::line(&self.redact_text(&s)).into_owned()
    }

    fn clean_batch(&self, mut b: Batch) -> Batch {
        let clean = |s: String| self.clean_text(s);
        b.id = self.clean_text(b.id);
        for f in [
            &mut b.endpoint,
            &mut b.input_file_id,
            &mut b.output_file_id,
            &mut b.error_file_id,
        ] {
            *f = f.take().map(clean);
        }
        if let Some(errs) = &mut b.errors {
            for e in &mut errs.data {
                e.message = e.message.take().map(clean);
                e.code = e.code.take().map(clean);
            }
        }
        b
    }

    /// Upload a JSONL batch input file (`POST /files`, purpose `batch`); its file id.
    pub async fn upload_batch_file(
        &self,
        path: &Path,
        cancel: &CancellationToken,
    ) -> Result<String, ApiError> {
        let body = self
            .batch_call(
                reqwest::Method::POST,
                "/files",
                Body::Upload(path),
                1024 * 1024,
                cancel,
            )
            .await?;
        let f: FileObject = self.parse(&body, "the upload")?;
        Ok(crate::sanitize::line(&self.redact_text(&f.id)).into_owned())
    }

    /// Create a batch of image generations over an uploaded file (window `24h`).
    pub async fn create_batch(
        &self,
        input_file_id: &str,
        endpoint: Endpoint,
        metadata: &serde_json::Map<String, serde_json::Value>,
        cancel: &CancellationToken,
    ) -> Result<Batch, ApiError> {
        let mut body = serde_json::json!({
            "input_file_id": input_file_id,
            "endpoint": format!("/v1{}", endpoint.path()),
            "completion_window": "24h",
        });
        if let (Some(m), false) = (body.as_object_mut(), metadata.is_empty()) {
            m.insert(
                "metadata".into(),
                serde_json::Value::Object(metadata.clone()),
            );
        }
        let answer = self
            .batch_call(
                reqwest::Method::POST,
                "/batches",
                Body::Json(&body),
                1024 * 1024,
                cancel,
            )
            .await?;
        Ok(self.clean_batch(self.parse(&answer, "the batch's creation")?))
    }

    /// A batch's state.
    pub async fn get_batch(&self, id: &str, cancel: &CancellationToken) -> Result<Batch, ApiError> {
        let path = format!("/batches/{}", path_segment(id)?);
        let answer = self
            .batch_call(reqwest::Method::GET, &path, Body::None, 1024 * 1024, cancel)
            .await?;
        Ok(self.clean_batch(self.parse(&answer, "a batch's state")?))
    }

    /// Ask the server to cancel a batch (it goes through `cancelling` to `cancelled`).
    pub async fn cancel_batch(
        &self,
        id: &str,
        cancel: &CancellationToken,
    ) -> Result<Batch, ApiError> {
        let path = format!("/batches/{}/cancel", path_segment(id)?);
        let answer = self
            .batch_call(
                reqwest::Method::POST,
                &path,
                Body::None,
                1024 * 1024,
                cancel,
            )
            .await?;
        Ok(self.clean_batch(self.parse(&answer, "the cancellation")?))
    }

    /// The content of a file (a batch's output or error file), within the answer size cap.
    pub async fn file_content(
        &self,
        id: &str,
        cancel: &CancellationToken,
    ) -> Result<Bytes, ApiError> {
        let path = format!("/files/{}/content", path_segment(id)?);
        self.batch_call(
            reqwest::Method::GET,
            &path,
            Body::None,
            self.opts.max_response_bytes,
            cancel,
        )
        .await
    }

    /// The verified images of one output line's body (an images answer), as a live request
    /// would return them.
    pub async fn output_from_body(
        &self,
        body: &serde_json::Value,
        request_id: Option<String>,
    ) -> Result<ApiOutput, ApiError> {
        let request_id =
            self.redact_opt(request_id.map(|r| crate::sanitize::line(&r).into_owned()));
        let raw = serde_json::to_vec(body).unwrap_or_default();
        let parsed =
            response::parse_images_response(&raw).map_err(|m| self.bad_answer(m, &request_id))?;
        let images = self
            .collect_images(parsed.data)
            .await
            .map_err(|e| self.redact(e.with_request_id(request_id.clone())))?;
        let images = images
            .into_iter()
            .map(|mut image| {
                image.revised_prompt = self.redact_opt(image.revised_prompt.take());
                image
            })
            .collect();
        Ok(ApiOutput {
            images,
            usage: parsed.usage,
            request_id,
            created: parsed.created,
            attempts: 1,
            size: self.redact_opt(parsed.size),
            quality: self.redact_opt(parsed.quality),
            background: self.redact_opt(parsed.background),
            output_format: self.redact_opt(parsed.output_format),
            warnings: Vec::new(),
        })
    }

    /// The error of a failed output line, as a live request's would be.
    pub fn line_error(&self, line: &OutputLine) -> ApiError {
        let provider = &self.opts.provider;
        let e = match (&line.response, &line.error) {
            (Some(r), _) if r.status_code != 200 && r.status_code != 0 => {
                let body = serde_json::to_vec(&r.body).unwrap_or_default();
                ApiError::from_response(provider, r.status_code, &body, r.request_id.clone())
            }
            (_, Some(err)) => {
                let mut e = ApiError::new(
                    ErrorKind::InvalidRequest,
                    provider,
                    err.message.as_deref().unwrap_or("the batch request failed"),
                );
                e.code = err
                    .code
                    .as_deref()
                    .map(|c| crate::sanitize::line(c).into_owned());
                e
            }
            _ => ApiError::new(
                ErrorKind::BadAnswer,
                provider,
                "the batch line has no answer",
            ),
        };
        self.redact(e)
    }
}

/// An id as one URL path segment: ids are `batch_…` and `file-…`; anything that could leave
/// the path is refused.
fn path_segment(id: &str) -> Result<&str, ApiError> {
    if !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(id)
    } else {
        Err(ApiError::new(
            ErrorKind::InvalidRequest,
            "Batch API",
            format!(
                "{} is not a batch or file id",
                crate::sanitize::truncate(&crate::sanitize::line(id), 60)
            ),
        ))
    }
}

/// How long to wait between two polls of an open batch: soon after it was created, then less
/// often (every `max`) — a batch takes minutes to hours.
pub fn poll_interval(age: std::time::Duration, max: std::time::Duration) -> std::time::Duration {
    let step = if age < std::time::Duration::from_secs(300) {
        std::time::Duration::from_secs(15)
    } else {
        max
    };
    step.min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_lines_carry_the_live_body() {
        let mut body = serde_json::Map::new();
        body.insert("model".into(), "gpt-image-1".into());
        body.insert("prompt".into(), "a fox".into());
        let line = input_line("0192abc", Endpoint::Generations, &body);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["custom_id"], "0192abc");
        assert_eq!(v["method"], "POST");
        assert_eq!(v["url"], "/v1/images/generations");
        assert_eq!(v["body"]["prompt"], "a fox");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn output_lines_parse_leniently() {
        let text = br#"{"id":"batch_req_1","custom_id":"a","response":{"status_code":200,"request_id":"r1","body":{"data":[]}},"error":null}
not json
{"id":"batch_req_2","custom_id":"b","response":null,"error":{"code":"bad","message":"no"}}
"#;
        let (lines, bad) = parse_output(text);
        assert_eq!(bad, 1);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].custom_id, "a");
        assert_eq!(
            lines[1].error.as_ref().unwrap().code.as_deref(),
            Some("bad")
        );
    }

    #[test]
    fn statuses_and_ids() {
        let b: Batch =
            serde_json::from_str(r#"{"id":"batch_1","status":"in_progress","object":"batch"}"#)
                .unwrap();
        assert_eq!(b.status, BatchStatus::InProgress);
        assert!(!b.status.is_final());
        let b: Batch = serde_json::from_str(r#"{"id":"batch_1","status":"paused"}"#).unwrap();
        assert_eq!(b.status, BatchStatus::Unknown);
        assert!(path_segment("batch_abc-1").is_ok());
        assert!(path_segment("../files").is_err());
        assert!(path_segment("a/b").is_err());
        assert!(path_segment("").is_err());
    }
}
