//! What history has cost, by day, month and model: the cost priced from the usage a server
//! reported where the answer had it, the catalogue's estimate otherwise, each counted apart.
//! Days and months are local time (the budgets in `[budget]` are counted the same way).

use super::GenerationRecord;
use chrono::{DateTime, Local, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Spend over some records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendLine {
    /// Everything: `from_usage_usd + estimated_usd`.
    pub usd: f64,
    /// Priced from the usage the server reported.
    pub from_usage_usd: f64,
    /// The catalogue's estimate (the answer had no usage).
    pub estimated_usd: f64,
    /// Jobs that cost something.
    pub jobs: usize,
}

impl SpendLine {
    fn add(&mut self, usd: f64, from_usage: bool) {
        self.usd += usd;
        if from_usage {
            self.from_usage_usd += usd;
        } else {
            self.estimated_usd += usd;
        }
        self.jobs += 1;
    }

    /// "$1.23" or "≈ $1.23" when part of it is an estimate.
    pub fn label(&self) -> String {
        let approx = if self.estimated_usd > 0.0 { "≈ " } else { "" };
        format!("{approx}${:.2}", self.usd)
    }
}

/// Spend by day (`2026-12-03`), month (`2026-12`) and model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    #[serde(default)]
    pub by_day: BTreeMap<String, SpendLine>,
    #[serde(default)]
    pub by_month: BTreeMap<String, SpendLine>,
    #[serde(default)]
    pub by_model: BTreeMap<String, SpendLine>,
}

/// The day key of a time, in local time.
pub fn day_key(t: DateTime<Utc>) -> String {
    t.with_timezone(&Local).format("%Y-%m-%d").to_string()
}

/// The month key of a time, in local time.
pub fn month_key(t: DateTime<Utc>) -> String {
    t.with_timezone(&Local).format("%Y-%m").to_string()
}

/// Whether a record's cost was priced from the usage its answer reported.
pub fn from_usage(r: &GenerationRecord) -> bool {
    r.usage.as_ref().is_some_and(|u| u.output_tokens.is_some())
}

impl Spend {
    /// Count a record that cost something (when it finished, else when it was made).
    pub fn add(&mut self, r: &GenerationRecord) {
        let Some(usd) = r.cost_usd.filter(|c| c.is_finite() && *c > 0.0) else {
            return;
        };
        let at = r.finished.unwrap_or(r.created);
        let usage = from_usage(r);
        self.by_day.entry(day_key(at)).or_default().add(usd, usage);
        self.by_month
            .entry(month_key(at))
            .or_default()
            .add(usd, usage);
        self.by_model
            .entry(r.model.clone())
            .or_default()
            .add(usd, usage);
    }

    /// Spend on the day of `now` (local time).
    pub fn day(&self, now: DateTime<Utc>) -> SpendLine {
        self.by_day.get(&day_key(now)).copied().unwrap_or_default()
    }

    /// Spend in the month of `now` (local time).
    pub fn month(&self, now: DateTime<Utc>) -> SpendLine {
        self.by_month
            .get(&month_key(now))
            .copied()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{GenerationParams, Usage};
    use crate::store::{Id, Status};
    use chrono::TimeZone;

    fn rec(at: DateTime<Utc>, model: &str, usd: Option<f64>, usage: bool) -> GenerationRecord {
        let params = GenerationParams {
            model: model.into(),
            ..Default::default()
        };
        let mut r = GenerationRecord::queued(Id::new(), params, "openai", false, at);
        r.status = Status::Succeeded;
        r.finished = Some(at);
        r.cost_usd = usd;
        r.usage = usage.then(|| Usage {
            output_tokens: Some(4160),
            ..Default::default()
        });
        r
    }

    #[test]
    fn spend_is_counted_by_day_month_and_model_and_labelled() {
        // Noon, so that no time zone moves a record to another day.
        let d1 = Local
            .with_ymd_and_hms(2026, 11, 30, 12, 0, 0)
            .unwrap()
            .to_utc();
        let d2 = Local
            .with_ymd_and_hms(2026, 12, 1, 12, 0, 0)
            .unwrap()
            .to_utc();
        let d3 = Local
            .with_ymd_and_hms(2026, 12, 3, 12, 0, 0)
            .unwrap()
            .to_utc();
        let mut s = Spend::default();
        for r in [
            rec(d1, "gpt-image-2", Some(0.5), true),
            rec(d2, "gpt-image-2", Some(0.25), false),
            rec(d3, "dall-e-3", Some(0.04), false),
            rec(d3, "gpt-image-2", Some(0.125), true),
            // Free or failed: not counted.
            rec(d3, "gpt-image-2", Some(0.0), false),
            rec(d3, "gpt-image-2", None, false),
        ] {
            s.add(&r);
        }
        assert_eq!(s.by_day.len(), 3);
        assert_eq!(s.by_month.len(), 2);
        let today = s.day(d3);
        assert_eq!(today.jobs, 2);
        assert!((today.usd - 0.165).abs() < 1e-9);
        assert!((today.from_usage_usd - 0.125).abs() < 1e-9);
        assert!((today.estimated_usd - 0.04).abs() < 1e-9);
        assert_eq!(today.label(), "≈ $0.17");
        let dec = s.month(d3);
        assert_eq!(dec.jobs, 3);
        assert!((dec.usd - 0.415).abs() < 1e-9);
        assert!((s.month(d1).usd - 0.5).abs() < 1e-9);
        assert_eq!(s.month(d1).label(), "$0.50");
        assert_eq!(s.by_model["gpt-image-2"].jobs, 3);
        assert_eq!(s.by_model["dall-e-3"].jobs, 1);
        assert_eq!(
            s.by_day.keys().next().map(String::as_str),
            Some("2026-11-30")
        );
        // A day with nothing spent.
        assert_eq!(s.day(d1 + chrono::Duration::days(2)), SpendLine::default());
    }
}
