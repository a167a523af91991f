//! What an answer says about the provider's rate limits: the `x-ratelimit-*` headers (OpenAI's
//! names; compatible servers often send the same) and, on a 429, how long to wait. Pure.
//!
//! `x-ratelimit-limit-requests` is the requests allowed per minute, `…-remaining-requests` how
//! many are left now, `…-reset-requests` how long until the limit is back to its full value
//! (`1s`, `6m0s`, `20ms`, `1h2m3.5s`); the same for `tokens`.

use std::time::Duration;

/// The rate-limit facts of one answer (all optional: many servers send none).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateHints {
    pub limit_requests: Option<u64>,
    pub remaining_requests: Option<u64>,
    pub reset_requests: Option<Duration>,
    pub limit_tokens: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub reset_tokens: Option<Duration>,
    /// The answer was a 429 rate limit (not out of credit).
    pub limited: bool,
    /// On a 429: `retry-after-ms` / `retry-after`, when given.
    pub retry_after: Option<Duration>,
}

impl RateHints {
    /// Read the headers (`get` returns a header's value by its lower-case name).
    pub fn from_headers(get: impl Fn(&str) -> Option<String>) -> RateHints {
        let number = |name: &str| get(name).and_then(|v| v.trim().parse::<u64>().ok());
        let span = |name: &str| get(name).and_then(|v| parse_span(&v));
        RateHints {
            limit_requests: number("x-ratelimit-limit-requests"),
            remaining_requests: number("x-ratelimit-remaining-requests"),
            reset_requests: span("x-ratelimit-reset-requests"),
            limit_tokens: number("x-ratelimit-limit-tokens"),
            remaining_tokens: number("x-ratelimit-remaining-tokens"),
            reset_tokens: span("x-ratelimit-reset-tokens"),
            limited: false,
            retry_after: None,
        }
    }

    /// Whether the answer said anything about rate limits.
    pub fn is_empty(&self) -> bool {
        *self == RateHints::default()
    }
}

/// `1s`, `6m0s`, `20ms`, `1h2m3.5s`, `0.5s`, or a bare number of seconds. At most a day;
/// anything else is `None`.
pub fn parse_span(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() || text.len() > 32 {
        return None;
    }
    if let Ok(secs) = text.parse::<f64>() {
        return secs_ok(secs);
    }
    let mut total = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if end == 0 {
            return None;
        }
        let value: f64 = rest[..end].parse().ok()?;
        rest = &rest[end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    secs_ok(total)
}

fn secs_ok(secs: f64) -> Option<Duration> {
    (secs.is_finite() && (0.0..=86_400.0).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_in_openai_form() {
        let ms = |m: u64| Some(Duration::from_millis(m));
        for (text, want) in [
            ("1s", ms(1000)),
            ("6m0s", ms(360_000)),
            ("20ms", ms(20)),
            ("1h2m3.5s", ms(3_723_500)),
            ("0.5s", ms(500)),
            ("2", ms(2000)),
            ("", None),
            ("soon", None),
            ("5x", None),
            ("-1s", None),
            ("2000h", None),
        ] {
            assert_eq!(parse_span(text), want, "{text:?}");
        }
    }

    #[test]
    fn headers_are_read_and_junk_is_ignored() {
        let h = RateHints::from_headers(|name| {
            match name {
                "x-ratelimit-limit-requests" => Some("60"),
                "x-ratelimit-remaining-requests" => Some(" 9 "),
                "x-ratelimit-reset-requests" => Some("1s"),
                "x-ratelimit-limit-tokens" => Some("lots"),
                "x-ratelimit-reset-tokens" => Some("6m0s"),
                _ => None,
            }
            .map(str::to_string)
        });
        assert_eq!(h.limit_requests, Some(60));
        assert_eq!(h.remaining_requests, Some(9));
        assert_eq!(h.reset_requests, Some(Duration::from_secs(1)));
        assert_eq!(h.limit_tokens, None);
        assert_eq!(h.reset_tokens, Some(Duration::from_secs(360)));
        assert!(!h.is_empty());
        assert!(RateHints::from_headers(|_| None).is_empty());
    }
}
