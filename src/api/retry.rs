//! Retrying as the official OpenAI SDKs do: which failures, how long to wait, and waits that end
//! the moment the caller cancels. The decision and the delay are pure; the loop runs on tokio
//! time so tests drive it with paused time.

use super::error::{ApiError, ErrorKind};
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The longest server-requested wait that is honoured; longer ones fall back to backoff.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A failed attempt, with what the answer said about retrying it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: ApiError,
    /// `x-should-retry: true|false`, which overrides the usual decision.
    pub should_retry: Option<bool>,
    /// `retry-after-ms` or `retry-after`, already parsed.
    pub retry_after: Option<Duration>,
    /// A streamed answer had already delivered an event: never retried.
    pub stream_started: bool,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Failure {
        Failure {
            error,
            should_retry: None,
            retry_after: None,
            stream_started: false,
        }
    }
}

/// Whether this failure may be tried again (ignoring the retry budget).
pub fn should_retry(f: &Failure) -> bool {
    if f.stream_started || f.error.kind == ErrorKind::Cancelled {
        return false;
    }
    // Out-of-credit and moderation answers never change on retry, whatever a header says.
    if matches!(
        f.error.kind,
        ErrorKind::QuotaExceeded | ErrorKind::Moderation
    ) {
        return false;
    }
    f.should_retry.unwrap_or_else(|| f.error.retryable_kind())
}

/// The SDKs' backoff: `min(0.5 × 2^retries, 8)` seconds, less up to 25 % at random
/// (`jitter` in 0..1).
pub fn backoff(retries_so_far: u32, jitter: f64) -> Duration {
    let base = (0.5 * 2f64.powi(retries_so_far.min(16) as i32)).min(8.0);
    Duration::from_secs_f64(base * (1.0 - 0.25 * jitter.clamp(0.0, 1.0)))
}

/// How long to wait before the next attempt.
pub fn delay(f: &Failure, retries_so_far: u32, jitter: f64) -> Duration {
    match f.retry_after {
        Some(d) if !d.is_zero() && d <= MAX_RETRY_AFTER => d,
        _ => backoff(retries_so_far, jitter),
    }
}

/// Parse the retry headers the SDKs honour: `retry-after-ms`, then `retry-after` as seconds or
/// an HTTP date (relative to `now`). As in the SDKs, only a wait of more than 0 and at most
/// [`MAX_RETRY_AFTER`] counts; `0`, a negative number, a date in the past or a longer wait give
/// `None`, and the usual backoff applies. A `retry-after-ms` that is a number decides alone.
pub fn parse_retry_after(
    ms: Option<&str>,
    after: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let usable = |secs: f64| {
        (secs.is_finite() && secs > 0.0 && secs <= MAX_RETRY_AFTER.as_secs_f64())
            .then(|| Duration::from_secs_f64(secs))
    };
    if let Some(ms) = ms.and_then(|v| v.trim().parse::<f64>().ok()) {
        return usable(ms / 1000.0);
    }
    let after = after?.trim();
    if let Ok(secs) = after.parse::<f64>() {
        return usable(secs);
    }
    let when = chrono::DateTime::parse_from_rfc2822(after).ok()?;
    let wait = (when.with_timezone(&chrono::Utc) - now).to_std().ok()?;
    usable(wait.as_secs_f64())
}

/// Something to tell the user while waiting to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryNotice {
    /// 1 for the first retry.
    pub retry: u32,
    pub wait: Duration,
    pub reason: ApiError,
}

/// Run `attempt` until it succeeds, fails for good, or the retries are used up. Returns the
/// outcome and how many attempts were made. Cancelling ends an attempt or a wait at once.
pub async fn run<T, F, Fut>(
    max_retries: u32,
    cancel: &CancellationToken,
    provider: &str,
    mut on_retry: impl FnMut(RetryNotice),
    mut attempt: F,
) -> (Result<T, ApiError>, u32)
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut retries = 0;
    loop {
        let outcome = tokio::select! {
            biased;
            _ = cancel.cancelled() => return (Err(ApiError::cancelled(provider)), retries + 1),
            r = attempt(retries) => r,
        };
        let failure = match outcome {
            Ok(v) => return (Ok(v), retries + 1),
            Err(f) => f,
        };
        if retries >= max_retries || !should_retry(&failure) {
            return (Err(failure.error), retries + 1);
        }
        let wait = delay(&failure, retries, fastrand::f64());
        retries += 1;
        on_retry(RetryNotice {
            retry: retries,
            wait,
            reason: failure.error.clone(),
        });
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return (Err(ApiError::cancelled(provider)), retries),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::time::Instant;

    fn fail(status: u16, body: &str) -> Failure {
        ApiError::from_response("OpenAI", status, body.as_bytes(), None).into()
    }

    #[test]
    fn decision_table() {
        let quota =
            r#"{"error":{"type":"insufficient_quota","code":"insufficient_quota","message":"q"}}"#;
        let moderation = r#"{"error":{"code":"moderation_blocked","message":"m"}}"#;
        let cases: Vec<(Failure, bool)> = vec![
            (fail(429, "{}"), true),
            (fail(429, quota), false),
            (
                Failure {
                    should_retry: Some(true),
                    ..fail(429, quota)
                },
                false,
            ),
            (fail(500, ""), true),
            (fail(503, ""), true),
            (fail(408, ""), true),
            (fail(409, ""), true),
            (fail(400, moderation), false),
            (fail(400, "{}"), false),
            (fail(401, ""), false),
            (fail(404, ""), false),
            (
                Failure {
                    should_retry: Some(false),
                    ..fail(500, "")
                },
                false,
            ),
            (
                Failure {
                    should_retry: Some(true),
                    ..fail(400, "{}")
                },
                true,
            ),
            (
                Failure {
                    stream_started: true,
                    ..fail(500, "")
                },
                false,
            ),
            (
                ApiError::new(ErrorKind::Connection, "OpenAI", "refused").into(),
                true,
            ),
            (
                ApiError::new(ErrorKind::Timeout, "OpenAI", "slow").into(),
                true,
            ),
            (
                ApiError::new(ErrorKind::BadAnswer, "OpenAI", "junk").into(),
                false,
            ),
        ];
        for (i, (f, want)) in cases.iter().enumerate() {
            assert_eq!(should_retry(f), *want, "case {i}: {}", f.error);
        }
    }

    #[test]
    fn backoff_follows_the_sdks() {
        let secs = |r, j| backoff(r, j).as_secs_f64();
        assert_eq!(secs(0, 0.0), 0.5);
        assert_eq!(secs(1, 0.0), 1.0);
        assert_eq!(secs(3, 0.0), 4.0);
        assert_eq!(secs(4, 0.0), 8.0);
        assert_eq!(secs(10, 0.0), 8.0);
        assert_eq!(secs(0, 1.0), 0.375);
        assert_eq!(secs(40, 0.5), 7.0);
    }

    #[test]
    fn retry_after_parsing() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let cases: &[(Option<&str>, Option<&str>, Option<u64>)] = &[
            (Some("1500"), Some("9"), Some(1500)),
            (None, Some("2"), Some(2000)),
            (None, Some("0.25"), Some(250)),
            (None, Some("Sat, 28 Nov 2026 12:00:05 GMT"), Some(5000)),
            (None, Some("Sat, 28 Nov 2026 11:00:00 GMT"), None),
            (None, Some("soon"), None),
            (Some("junk"), Some("3"), Some(3000)),
            (None, None, None),
            // As the SDKs: only 0 < value <= 60 s is a delay; anything else means backoff.
            (None, Some("0"), None),
            (None, Some("-1"), None),
            (Some("0"), None, None),
            (Some("-5"), Some("2"), None),
            (Some("0"), Some("0"), None),
            (None, Some("61"), None),
            (Some("60001"), None, None),
            (None, Some("Sat, 28 Nov 2026 12:00:00 GMT"), None),
        ];
        for (ms, after, want) in cases {
            let got = parse_retry_after(*ms, *after, now).map(|d| d.as_millis() as u64);
            assert_eq!(got, *want, "{ms:?} {after:?}");
        }
        let long = Failure {
            retry_after: Some(Duration::from_secs(120)),
            ..fail(429, "{}")
        };
        assert_eq!(delay(&long, 0, 0.0), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_wait_as_told_then_succeed() {
        let cancel = CancellationToken::new();
        let start = Instant::now();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let (result, attempts) = run(
            2,
            &cancel,
            "OpenAI",
            |n| seen2.lock().unwrap().push(n.wait),
            |retry| async move {
                match retry {
                    0 => Err(Failure {
                        retry_after: Some(Duration::from_secs(3)),
                        ..fail(429, "{}")
                    }),
                    1 => Err(fail(503, "")),
                    _ => Ok("image"),
                }
            },
        )
        .await;
        assert_eq!(result.unwrap(), "image");
        assert_eq!(attempts, 3);
        let waits = seen.lock().unwrap().clone();
        assert_eq!(waits[0], Duration::from_secs(3));
        assert!(
            waits[1] >= Duration::from_millis(750) && waits[1] <= Duration::from_secs(1),
            "{waits:?}"
        );
        // Tokio's timer has millisecond resolution.
        let slept = start.elapsed().as_secs_f64() - (waits[0] + waits[1]).as_secs_f64();
        assert!(
            (0.0..0.002).contains(&slept),
            "slept {slept} s more than asked"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_budget() {
        let cancel = CancellationToken::new();
        let calls = Arc::new(Mutex::new(0));
        let c2 = calls.clone();
        let (result, attempts) = run(
            3,
            &cancel,
            "OpenAI",
            |_| {},
            |_| {
                *c2.lock().unwrap() += 1;
                async { Err::<(), _>(fail(500, "")) }
            },
        )
        .await;
        assert_eq!(result.unwrap_err().kind, ErrorKind::Server);
        assert_eq!(attempts, 4);
        assert_eq!(*calls.lock().unwrap(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn no_retry_for_quota() {
        let cancel = CancellationToken::new();
        let quota =
            r#"{"error":{"type":"insufficient_quota","code":"insufficient_quota","message":"q"}}"#;
        let (result, attempts) = run(
            5,
            &cancel,
            "OpenAI",
            |_| {},
            |_| async { Err::<(), _>(fail(429, quota)) },
        )
        .await;
        assert_eq!(result.unwrap_err().kind, ErrorKind::QuotaExceeded);
        assert_eq!(attempts, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn cancel_ends_the_wait_at_once() {
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        let start = Instant::now();
        let task = tokio::spawn(async move {
            run(
                2,
                &c2,
                "OpenAI",
                |_| {},
                |_| async {
                    Err::<(), _>(Failure {
                        retry_after: Some(Duration::from_secs(50)),
                        ..fail(429, "{}")
                    })
                },
            )
            .await
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        cancel.cancel();
        let (result, _) = task.await.unwrap();
        assert_eq!(result.unwrap_err().kind, ErrorKind::Cancelled);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cancel_ends_a_running_attempt() {
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        let task = tokio::spawn(async move {
            run(
                2,
                &c2,
                "OpenAI",
                |_| {},
                |_| async {
                    tokio::time::sleep(Duration::from_secs(600)).await;
                    Ok(())
                },
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        cancel.cancel();
        let (result, attempts) = task.await.unwrap();
        assert_eq!(result.unwrap_err().kind, ErrorKind::Cancelled);
        assert_eq!(attempts, 1);
    }
}
