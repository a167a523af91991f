//! How fast the scheduler sends one provider jobs: its concurrency adapts (AIMD: halved on a
//! 429, one more after `GROW_AFTER` clean answers, never above the configured limit), and
//! starts are spaced by what the answers say about the rate limit (`x-ratelimit-*`): a model
//! of the provider's request bucket (its refill rate from `limit-requests` per minute, its
//! level lowered to every `remaining-requests` heard) and a time before which nothing starts
//! (a 429's `retry-after`, or a reset when nothing remains). Pure, on tokio's clock.

use crate::api::RateHints;
use std::time::Duration;
use tokio::time::Instant;

/// Clean answers in a row before the concurrency grows by one.
pub const GROW_AFTER: u32 = 4;
/// How long to wait after a 429 that does not say.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(1);
/// The longest wait a hint may impose.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// Times one job may be put back in the queue by 429s before it fails with the last one.
pub const MAX_REQUEUES: u32 = 25;

/// One provider's pace.
#[derive(Debug, Clone, Default)]
pub struct Pace {
    /// Jobs at once now; `None` until the first 429 (the configured limit).
    window: Option<usize>,
    clean: u32,
    /// Nothing starts before this.
    not_before: Option<Instant>,
    halved_at: Option<Instant>,
    /// The request bucket as far as the answers tell: refill per second, level, size.
    bucket: Option<Bucket>,
}

#[derive(Debug, Clone)]
struct Bucket {
    per_sec: f64,
    level: f64,
    size: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + dt * self.per_sec).min(self.size);
        self.at = now;
    }
}

impl Pace {
    /// Jobs that may run at once now, for a configured `limit`.
    pub fn allowed(&self, limit: usize) -> usize {
        let limit = limit.max(1);
        self.window.unwrap_or(limit).clamp(1, limit)
    }

    /// `None` when a job may start now, else when one may.
    pub fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        if let Some(t) = self.not_before
            && t > now
        {
            return Some(t);
        }
        let b = self.bucket.as_mut()?;
        b.refill(now);
        if b.level >= 1.0 {
            return None;
        }
        let wait = ((1.0 - b.level) / b.per_sec).clamp(0.001, MAX_WAIT.as_secs_f64());
        Some(now + Duration::from_secs_f64(wait))
    }

    /// A job starts now: it takes one request from the bucket.
    pub fn started(&mut self, now: Instant) {
        if let Some(b) = self.bucket.as_mut() {
            b.refill(now);
            b.level -= 1.0;
        }
    }

    /// A job ended without a rate limit: after `GROW_AFTER` in a row, one more may run.
    pub fn clean_answer(&mut self, limit: usize) {
        self.clean += 1;
        if self.clean >= GROW_AFTER {
            self.clean = 0;
            if let Some(w) = self.window {
                self.window = (w + 1 < limit.max(1)).then_some(w + 1);
            }
        }
    }

    /// What an answer said. Returns how long the provider is paused for when it was a 429.
    pub fn hints(&mut self, h: &RateHints, now: Instant, limit: usize) -> Option<Duration> {
        if let Some(per_minute) = h.limit_requests.filter(|l| *l > 0) {
            let per_sec = per_minute as f64 / 60.0;
            let heard = h.remaining_requests.map_or(1.0, |r| r as f64);
            let b = self.bucket.get_or_insert(Bucket {
                per_sec,
                level: heard,
                size: (heard + 1.0).max(1.0),
                at: now,
            });
            b.refill(now);
            b.per_sec = per_sec;
        }
        if let Some(r) = h.remaining_requests {
            let r = r as f64;
            match self.bucket.as_mut() {
                Some(b) => {
                    b.refill(now);
                    // Answers arrive late: what they heard can only lower the level. The
                    // most ever heard (plus the request that heard it) is the bucket's size.
                    b.size = b.size.max(r + 1.0);
                    b.level = b.level.min(r);
                }
                // No rate known: nothing left means waiting for the reset.
                None if r < 1.0 => {
                    if let Some(reset) = h.reset_requests {
                        self.pause_until(now + reset.min(MAX_WAIT));
                    }
                }
                None => {}
            }
        }
        if h.remaining_tokens == Some(0)
            && let Some(reset) = h.reset_tokens
        {
            self.pause_until(now + reset.min(MAX_WAIT));
        }
        if !h.limited {
            return None;
        }
        let wait = h
            .retry_after
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_WAIT)
            .min(MAX_WAIT);
        self.pause_until(now + wait);
        self.clean = 0;
        if let Some(b) = self.bucket.as_mut() {
            b.refill(now);
            b.level = b.level.min(0.0);
        }
        // Halved once for a burst of 429s: not again until the wait it asked for has passed.
        let again = self
            .halved_at
            .is_none_or(|t| now.saturating_duration_since(t) >= wait.max(DEFAULT_WAIT));
        if again {
            self.window = Some((self.allowed(limit) / 2).max(1));
            self.halved_at = Some(now);
        }
        Some(wait)
    }

    fn pause_until(&mut self, t: Instant) {
        if self.not_before.is_none_or(|n| n < t) {
            self.not_before = Some(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited(ms: u64) -> RateHints {
        RateHints {
            limited: true,
            retry_after: Some(Duration::from_millis(ms)),
            ..Default::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_halves_once_per_burst_and_clean_answers_grow_it_back() {
        let mut p = Pace::default();
        let t0 = Instant::now();
        assert_eq!(p.allowed(16), 16);
        assert_eq!(p.ready_at(t0), None);
        assert_eq!(
            p.hints(&limited(1500), t0, 16),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(p.allowed(16), 8);
        // The rest of the same burst does not halve again.
        p.hints(&limited(1500), t0 + Duration::from_millis(10), 16);
        assert_eq!(p.allowed(16), 8);
        // Paused until the later of the two asked.
        assert_eq!(p.ready_at(t0), Some(t0 + Duration::from_millis(1510)));
        assert_eq!(p.ready_at(t0 + Duration::from_millis(1510)), None);
        // A later one does.
        p.hints(&limited(0), t0 + Duration::from_secs(3), 16);
        assert_eq!(p.allowed(16), 4);
        assert_eq!(
            p.ready_at(t0 + Duration::from_secs(3)),
            Some(t0 + Duration::from_secs(4)),
            "no retry-after: the default wait"
        );
        for _ in 0..GROW_AFTER {
            p.clean_answer(16);
        }
        assert_eq!(p.allowed(16), 5);
        for _ in 0..GROW_AFTER * 20 {
            p.clean_answer(16);
        }
        assert_eq!(p.allowed(16), 16, "back to the configured limit, not above");
        assert_eq!(p.allowed(3), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn starts_are_spaced_by_the_request_bucket() {
        let mut p = Pace::default();
        let t0 = Instant::now();
        // 60 a minute, 2 left.
        let h = RateHints {
            limit_requests: Some(60),
            remaining_requests: Some(2),
            reset_requests: Some(Duration::from_secs(8)),
            ..Default::default()
        };
        assert_eq!(p.hints(&h, t0, 16), None);
        assert_eq!(p.ready_at(t0), None);
        p.started(t0);
        assert_eq!(p.ready_at(t0), None);
        p.started(t0);
        // Empty: the next one a second later (one request a second).
        let next = p.ready_at(t0).unwrap();
        assert!(
            next.duration_since(t0) >= Duration::from_millis(999)
                && next.duration_since(t0) <= Duration::from_millis(1001)
        );
        assert_eq!(p.ready_at(t0 + Duration::from_secs(1)), None);
        // A late answer that heard 9 left does not raise the level.
        p.hints(
            &RateHints {
                remaining_requests: Some(9),
                ..h.clone()
            },
            t0 + Duration::from_secs(1),
            16,
        );
        p.started(t0 + Duration::from_secs(1));
        assert!(p.ready_at(t0 + Duration::from_secs(1)).is_some());
        // Tokens exhausted: wait for their reset.
        let mut q = Pace::default();
        q.hints(
            &RateHints {
                remaining_tokens: Some(0),
                reset_tokens: Some(Duration::from_secs(5)),
                ..Default::default()
            },
            t0,
            4,
        );
        assert_eq!(q.ready_at(t0), Some(t0 + Duration::from_secs(5)));
        // Nothing said: never in the way.
        let mut r = Pace::default();
        r.hints(&RateHints::default(), t0, 4);
        assert_eq!(r.ready_at(t0), None);
        assert_eq!(r.allowed(4), 4);
    }
}
