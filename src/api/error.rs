//! Everything that can go wrong talking to an Images server, as one typed error that keeps what
//! the server said (message, type, param, code, status, request id) and says what to do next.

use crate::sanitize;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The `code` of an error made before sending: an input picture of an edit failed its checks
/// when the request was about to go (it changed after it was first checked).
pub const INPUT_FILE_CODE: &str = "input_file";

/// The class of a failure; decides retrying and the advice shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 401: missing or wrong key.
    Authentication,
    /// 403: the key may not do this (region, organisation, model access).
    Permission,
    /// 404: unknown model or path.
    NotFound,
    /// The prompt or image was refused by moderation.
    Moderation,
    /// Any other 4xx the server explains: an unknown parameter, a bad value.
    InvalidRequest,
    /// 429 without `insufficient_quota`: slow down.
    RateLimited,
    /// 429 `insufficient_quota`: the account is out of credit.
    QuotaExceeded,
    /// 5xx.
    Server,
    /// No answer in time.
    Timeout,
    /// Could not connect, or the connection broke.
    Connection,
    /// The server answered something that is not a usable image answer.
    BadAnswer,
    /// The caller cancelled.
    Cancelled,
    /// The images arrived but could not be saved (disk full, no permission).
    Storage,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Authentication => "authentication",
            ErrorKind::Permission => "permission",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Moderation => "moderation",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::QuotaExceeded => "quota_exceeded",
            ErrorKind::Server => "server",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connection => "connection",
            ErrorKind::BadAnswer => "bad_answer",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Storage => "storage",
        }
    }
}

/// A failed request, with everything the server told us. All text fields are already cleaned of
/// control characters (see [`crate::sanitize`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub kind: ErrorKind,
    /// Who answered ("OpenAI", or the provider's name).
    pub provider: String,
    pub message: String,
    pub status: Option<u16>,
    pub error_type: Option<String>,
    pub param: Option<String>,
    pub code: Option<String>,
    pub request_id: Option<String>,
    /// Extra detail of a moderation refusal, when the server sends it.
    pub moderation_details: Option<String>,
    /// Requests sent before giving up (retries included); 0 when no request was made or the
    /// count is not known.
    #[serde(default)]
    pub attempts: u32,
}

impl ApiError {
    pub fn new(kind: ErrorKind, provider: &str, message: impl AsRef<str>) -> ApiError {
        ApiError {
            kind,
            provider: sanitize::line(provider).into_owned(),
            message: sanitize::line(message.as_ref()).into_owned(),
            status: None,
            error_type: None,
            param: None,
            code: None,
            request_id: None,
            moderation_details: None,
            attempts: 0,
        }
    }

    pub fn cancelled(provider: &str) -> ApiError {
        ApiError::new(ErrorKind::Cancelled, provider, "cancelled")
    }

    pub fn with_request_id(mut self, id: Option<String>) -> ApiError {
        if self.request_id.is_none() {
            self.request_id = id.map(|s| sanitize::line(&s).into_owned());
        }
        self
    }

    /// Build from an HTTP error answer: status, body (OpenAI's `{"error": {...}}` shape, read
    /// leniently) and the request id header.
    pub fn from_response(
        provider: &str,
        status: u16,
        body: &[u8],
        request_id: Option<String>,
    ) -> ApiError {
        let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
        let detail = parsed.and_then(|b| b.error);
        // A field that is empty once cleaned (`"message": ""`, or only control characters)
        // counts as missing, so the message falls back to what the body holds.
        let text = |v: &Option<serde_json::Value>| -> Option<String> {
            let s = match v {
                None | Some(serde_json::Value::Null) => return None,
                Some(serde_json::Value::String(s)) => sanitize::line(s).trim().to_string(),
                Some(other) => sanitize::line(&other.to_string()).trim().to_string(),
            };
            (!s.is_empty()).then_some(s)
        };
        let (message, error_type, param, code, moderation) = match &detail {
            Some(d) => (
                text(&d.message),
                text(&d.error_type),
                text(&d.param),
                text(&d.code),
                text(&d.moderation_details),
            ),
            None => (None, None, None, None, None),
        };
        // The caller redacts the body first (see `ImagesClient`): the quote is shortened here.
        let message = message.unwrap_or_else(|| {
            let snippet = String::from_utf8_lossy(&body[..quote_end(body, 200)]).to_string();
            let snippet = sanitize::line(snippet.trim()).into_owned();
            if snippet.is_empty() {
                format!("HTTP {status} with an empty body")
            } else {
                format!("HTTP {status}: {snippet}")
            }
        });
        let is = |s: &str| code.as_deref() == Some(s) || error_type.as_deref() == Some(s);
        let kind = match status {
            401 => ErrorKind::Authentication,
            403 => ErrorKind::Permission,
            404 => ErrorKind::NotFound,
            429 if is("insufficient_quota") => ErrorKind::QuotaExceeded,
            429 => ErrorKind::RateLimited,
            408 => ErrorKind::Timeout,
            s if s >= 500 => ErrorKind::Server,
            _ if is("moderation_blocked") || is("content_policy_violation") => {
                ErrorKind::Moderation
            }
            _ => ErrorKind::InvalidRequest,
        };
        ApiError {
            kind,
            provider: sanitize::line(provider).into_owned(),
            message,
            status: Some(status),
            error_type,
            param,
            code,
            request_id: request_id.map(|s| sanitize::line(&s).into_owned()),
            moderation_details: moderation,
            attempts: 0,
        }
    }

    /// The first half of the one-line summary: what happened, in plain words.
    pub fn headline(&self) -> String {
        let p = &self.provider;
        match self.kind {
            ErrorKind::Authentication => format!("{p} did not accept the API key"),
            ErrorKind::Permission => format!("{p} does not permit this request"),
            ErrorKind::NotFound => format!("{p} does not know this model or path"),
            ErrorKind::Moderation => format!("{p} refused the prompt"),
            ErrorKind::InvalidRequest if self.status.is_some_and(|s| (300..400).contains(&s)) => {
                format!("{p} redirected the request")
            }
            ErrorKind::InvalidRequest if self.code.as_deref() == Some(INPUT_FILE_CODE) => {
                format!("easel did not send the request to {p}")
            }
            ErrorKind::InvalidRequest => format!("{p} rejected the request"),
            ErrorKind::RateLimited => format!("{p} is rate limiting requests"),
            ErrorKind::QuotaExceeded => format!("{p} says the account is out of credit"),
            ErrorKind::Server => format!("{p} had a server error"),
            ErrorKind::Timeout => format!("{p} did not answer in time"),
            ErrorKind::Connection => format!("could not reach {p}"),
            ErrorKind::BadAnswer => format!("{p} sent an answer easel cannot use"),
            ErrorKind::Cancelled => "cancelled".to_string(),
            ErrorKind::Storage => "the images could not be saved".to_string(),
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self.kind {
            ErrorKind::Authentication => {
                "check the key in OPENAI_API_KEY (or the variable your provider profile names)"
            }
            ErrorKind::Permission => {
                "check that your organisation and project may use this model (OPENAI_ORG_ID, OPENAI_PROJECT_ID)"
            }
            ErrorKind::NotFound => {
                "check the model name and the provider's base URL (easel config path shows the config)"
            }
            ErrorKind::Moderation => {
                "rephrase the prompt; retrying the same prompt gives the same answer"
            }
            ErrorKind::InvalidRequest => return None,
            ErrorKind::RateLimited => "wait a little and retry, or lower the queue's concurrency",
            ErrorKind::QuotaExceeded => {
                "add credit or raise the spending limit in the provider's billing settings"
            }
            ErrorKind::Server => "retry later; the server may be overloaded",
            ErrorKind::Timeout => "retry, or raise network.timeout_secs in the config",
            ErrorKind::Connection => "check the network and the provider's base URL",
            ErrorKind::BadAnswer => {
                "the server may not be OpenAI-compatible for images; check the provider's dialect"
            }
            ErrorKind::Cancelled => return None,
            ErrorKind::Storage => {
                "free disk space or fix the data folder's permissions (easel config path shows it)"
            }
        })
    }

    /// Whether the official SDKs would retry this (before any stream event arrived).
    pub fn retryable_kind(&self) -> bool {
        match self.kind {
            ErrorKind::RateLimited
            | ErrorKind::Server
            | ErrorKind::Timeout
            | ErrorKind::Connection => true,
            // 409 Conflict is retried by the SDKs too.
            ErrorKind::InvalidRequest => self.status == Some(409),
            _ => false,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.headline())?;
        match (&self.code, self.status) {
            (Some(code), _) => write!(f, " ({code})")?,
            (None, Some(status)) => write!(f, " (HTTP {status})")?,
            _ => {}
        }
        if self.kind != ErrorKind::Cancelled {
            write!(f, ": {}", self.message)?;
        }
        if let Some(details) = &self.moderation_details {
            write!(f, " [{details}]")?;
        }
        if let Some(param) = &self.param {
            write!(f, " (param: {param})")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " [request {id}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// Where a quote of at most about `max` bytes of `body` ends: never inside a redaction marker,
/// so a cut does not leave half of "<redacted>" looking like something else.
fn quote_end(body: &[u8], max: usize) -> usize {
    let cut = body.len().min(max);
    let marker = crate::secret::REDACTED.as_bytes();
    let from = cut.saturating_sub(marker.len() - 1);
    let window = &body[from..body.len().min(cut + marker.len())];
    match window.windows(marker.len()).position(|w| w == marker) {
        Some(p) if from + p < cut => (from + p + marker.len()).max(cut),
        _ => cut,
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<ErrorDetail>,
}

/// Read leniently: any field may be missing, `code` may be a number (LocalAI).
#[derive(Deserialize)]
struct ErrorDetail {
    message: Option<serde_json::Value>,
    #[serde(rename = "type")]
    error_type: Option<serde_json::Value>,
    param: Option<serde_json::Value>,
    code: Option<serde_json::Value>,
    moderation_details: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let cases: &[(u16, &str, ErrorKind, bool)] = &[
            (
                401,
                r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#,
                ErrorKind::Authentication,
                false,
            ),
            (
                403,
                r#"{"error":{"message":"Project does not have access","type":"invalid_request_error"}}"#,
                ErrorKind::Permission,
                false,
            ),
            (
                404,
                r#"{"error":{"message":"The model `x` does not exist","type":"invalid_request_error","code":"model_not_found"}}"#,
                ErrorKind::NotFound,
                false,
            ),
            (
                400,
                r#"{"error":{"message":"Your request was rejected","type":"image_generation_user_error","code":"moderation_blocked","moderation_details":{"categories":["violence"]}}}"#,
                ErrorKind::Moderation,
                false,
            ),
            (
                400,
                r#"{"error":{"message":"Your prompt may contain text that is not allowed","type":"invalid_request_error","code":"content_policy_violation"}}"#,
                ErrorKind::Moderation,
                false,
            ),
            (
                400,
                r#"{"error":{"message":"Unknown parameter: 'style'.","type":"invalid_request_error","param":"style","code":"unknown_parameter"}}"#,
                ErrorKind::InvalidRequest,
                false,
            ),
            (
                429,
                r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
                ErrorKind::RateLimited,
                true,
            ),
            (
                429,
                r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
                ErrorKind::QuotaExceeded,
                false,
            ),
            (
                500,
                r#"{"error":{"message":"The server had an error","type":"server_error"}}"#,
                ErrorKind::Server,
                true,
            ),
            (
                503,
                "<html>Service Unavailable</html>",
                ErrorKind::Server,
                true,
            ),
            (409, "", ErrorKind::InvalidRequest, true),
            (
                400,
                r#"{"error":{"message":"bad","code":400}}"#,
                ErrorKind::InvalidRequest,
                false,
            ),
        ];
        for (status, body, kind, retry) in cases {
            let e =
                ApiError::from_response("OpenAI", *status, body.as_bytes(), Some("req_1".into()));
            assert_eq!(e.kind, *kind, "{status} {body}");
            assert_eq!(e.retryable_kind(), *retry, "{status} {body}");
            assert!(e.to_string().contains("[request req_1]"));
        }
    }

    #[test]
    fn moderation_message_reads_well() {
        let body = r#"{"error":{"message":"Your request was rejected by the safety system.","type":"image_generation_user_error","code":"moderation_blocked"}}"#;
        let e = ApiError::from_response("OpenAI", 400, body.as_bytes(), None);
        assert_eq!(
            e.to_string(),
            "OpenAI refused the prompt (moderation_blocked): Your request was rejected by the safety system."
        );
    }

    #[test]
    fn numeric_code_and_hostile_text() {
        let body = "{\"error\":{\"message\":\"boom\\u001b]52;c;aGk=\\u0007\",\"code\":500}}";
        let e = ApiError::from_response(
            "local\u{1b}[2J",
            500,
            body.as_bytes(),
            Some("id\u{1b}x".into()),
        );
        assert_eq!(e.code.as_deref(), Some("500"));
        let shown = e.to_string();
        assert!(!shown.chars().any(crate::sanitize::is_unsafe), "{shown:?}");
    }

    #[test]
    fn a_quote_never_cuts_a_redaction_marker() {
        for pad in 185..205 {
            let body = format!("{}<redacted> and more", "x".repeat(pad));
            let e = ApiError::from_response("OpenAI", 400, body.as_bytes(), None);
            let quoted = e.message.trim_start_matches("HTTP 400: ");
            let marker = crate::secret::REDACTED;
            for k in 1..marker.len() {
                assert!(!quoted.ends_with(&marker[..k]), "{pad}: {quoted}");
            }
        }
    }

    #[test]
    fn non_json_body_is_quoted() {
        let e = ApiError::from_response("OpenAI", 502, b"Bad Gateway", None);
        assert_eq!(e.message, "HTTP 502: Bad Gateway");
        let e = ApiError::from_response("OpenAI", 502, b"", None);
        assert_eq!(e.message, "HTTP 502 with an empty body");
    }
}
