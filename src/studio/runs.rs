//! Runs in the studio (issue 14): the count shown as the prompt is typed, a run built and
//! checked when it is queued, and each run's tally for the queue's header rows.
//!
//! Pure like `update`: wildcard files are read by the runtime (`Effect::LoadWildcards`, answered
//! with `Msg::WildcardsLoaded`) and kept here by name. The count as the prompt is typed uses
//! `runs::count_with`, which multiplies the choices and never lists the jobs.

use crate::api::GenerationParams;
use crate::catalog::Catalog;
use crate::runs::parse::{self, ErrorKind};
use crate::runs::{self, RunError, RunSpec};
use crate::store::Id;
use std::collections::HashMap;

/// The wildcard files read so far, by name (an error says why a name has no values).
#[derive(Debug, Clone, Default)]
pub struct WildcardCache {
    pub values: HashMap<String, Result<parse::WildcardValues, ErrorKind>>,
    /// Asked for and not answered yet.
    pub asked: Vec<String>,
}

impl WildcardCache {
    fn lookup(&self, name: &str) -> Result<parse::WildcardValues, ErrorKind> {
        match self.values.get(name) {
            Some(r) => r.clone(),
            // Not read yet: callers ask first (see `missing`), so this is only a fallback.
            None => Err(ErrorKind::UnreadableWildcard {
                name: name.to_string(),
                file: format!("{name}.txt"),
                why: "not read yet".to_string(),
            }),
        }
    }

    /// The answers of the runtime: values or why there are none.
    pub fn loaded(&mut self, answers: Vec<(String, Result<Vec<String>, ErrorKind>)>) {
        for (name, r) in answers {
            self.asked.retain(|n| *n != name);
            self.values.insert(name, r.map(std::sync::Arc::new));
        }
    }

    /// The wildcards `text` uses that were neither read nor asked for (nothing when it does not
    /// parse).
    pub fn missing(&self, text: &str) -> Vec<String> {
        let Ok(nodes) = parse::parse(text) else {
            return Vec::new();
        };
        parse::wildcard_names(&nodes)
            .into_iter()
            .filter(|n| !self.values.contains_key(n) && !self.asked.contains(n))
            .collect()
    }

    /// The wildcards `text` uses whose files could not be read (to read them again: the file
    /// may have been written since).
    pub fn failed(&self, text: &str) -> Vec<String> {
        let Ok(nodes) = parse::parse(text) else {
            return Vec::new();
        };
        parse::wildcard_names(&nodes)
            .into_iter()
            .filter(|n| matches!(self.values.get(n), Some(Err(_))))
            .collect()
    }

    fn pending(&self, text: &str) -> bool {
        let Ok(nodes) = parse::parse(text) else {
            return false;
        };
        parse::wildcard_names(&nodes)
            .iter()
            .any(|n| !self.values.contains_key(n))
    }
}

/// What a run is estimated to cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RunCost {
    /// The demo backend: free.
    Demo,
    /// The model has no prices in the catalogue.
    Unpriced,
    Usd(f64),
}

/// What the prompt being typed expands to, for the editor's footer.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum RunPreview {
    /// A plain prompt (or one that expands to a single job): nothing to say.
    #[default]
    Plain,
    /// Its wildcard files are being read.
    Reading,
    Expands {
        jobs: u128,
        images: u128,
        cost: RunCost,
    },
    /// More jobs than one run may have.
    TooLarge { jobs: u128, why: String },
    /// Bad syntax (with its column), or a wildcard without values.
    Error(String),
}

impl RunPreview {
    /// The footer's text, and whether it is a warning.
    pub fn label(&self) -> Option<(String, bool)> {
        match self {
            RunPreview::Plain => None,
            RunPreview::Reading => Some(("reading wildcard files…".into(), false)),
            RunPreview::Expands { jobs, images, cost } => {
                let cost = match cost {
                    RunCost::Demo => " · $0 (demo)".to_string(),
                    RunCost::Unpriced => " · cost unknown".to_string(),
                    RunCost::Usd(c) => format!(" · ≈ ${c:.2}"),
                };
                Some((
                    format!("expands to {jobs} prompts · {images} images{cost}"),
                    false,
                ))
            }
            RunPreview::TooLarge { why, .. } => Some((why.clone(), true)),
            RunPreview::Error(e) => Some((e.clone(), true)),
        }
    }
}

/// "column 3: unclosed brace: …" (the origin is always the prompt here).
pub fn error_text(e: &RunError) -> String {
    match e.column {
        Some(c) => format!("column {c}: {}", e.message),
        None => e.message.clone(),
    }
}

fn spec(text: &str) -> RunSpec {
    RunSpec {
        prompts: vec![("the prompt".to_string(), text.to_string())],
        repeat: 1,
        ..RunSpec::default()
    }
}

/// What `text` expands to, counted (never listed), with `params` for the images and the cost.
pub fn preview(
    text: &str,
    params: &GenerationParams,
    catalog: &Catalog,
    demo: bool,
    cache: &WildcardCache,
) -> RunPreview {
    let nodes = match parse::parse(text) {
        Ok(n) => n,
        Err(e) => return RunPreview::Error(format!("column {}: {}", e.column, e.kind)),
    };
    if parse::is_plain(&nodes) {
        return RunPreview::Plain;
    }
    if cache.pending(text) {
        return RunPreview::Reading;
    }
    let count = match runs::count_with(&spec(text), &mut |n| cache.lookup(n)) {
        Ok(c) => c,
        Err(e) => return RunPreview::Error(error_text(&e)),
    };
    if count.jobs <= 1 {
        return RunPreview::Plain;
    }
    if let Err(e) = count.check(false) {
        return RunPreview::TooLarge {
            jobs: count.jobs,
            why: format!("expands to {} prompts: {}", count.jobs, too_large(&e)),
        };
    }
    let images = count.jobs * u128::from(params.n.max(1));
    let cost = if demo {
        RunCost::Demo
    } else {
        // The template's own text stands in for each prompt: the prompt's tokens are a small
        // part of an image's price.
        let one = GenerationParams {
            prompt: text.to_string(),
            ..params.clone()
        };
        match crate::generation::estimate(catalog, &one) {
            Some(c) => RunCost::Usd(c * count.jobs as f64),
            None => RunCost::Unpriced,
        }
    };
    RunPreview::Expands {
        jobs: count.jobs,
        images,
        cost,
    }
}

fn too_large(e: &RunError) -> String {
    if e.message.contains("more than easel sends") {
        format!("more than a run may have ({})", runs::MAX_JOBS)
    } else {
        format!("over {}, not queued from the studio", runs::LARGE_RUN)
    }
}

/// Why a submit queued nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub message: String,
    /// Wildcards to read (again) before trying once more.
    pub read: Vec<String>,
}

/// A prompt as it will be queued.
#[derive(Debug)]
pub enum Planned {
    /// One request (a plain prompt, or a run of one job): its prompt, escapes removed.
    Single(String),
    /// The requests of a run, built and checked, in run order.
    Run(Vec<crate::plan::Planned>),
}

/// Expand `text` and build and check every request of it, as `easel generate` does.
pub fn plan(
    text: &str,
    params: &GenerationParams,
    target: &crate::plan::Target<'_>,
    cache: &WildcardCache,
) -> Result<Planned, Refusal> {
    let refuse = |message: String, read: Vec<String>| Refusal { message, read };
    let nodes = parse::parse(text)
        .map_err(|e| refuse(format!("column {}: {}", e.column, e.kind), vec![]))?;
    if parse::is_plain(&nodes) {
        // Escapes removed, as `easel generate` sends it.
        let plain: String = nodes
            .iter()
            .filter_map(|n| match n {
                parse::Node::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        return Ok(Planned::Single(plain));
    }
    let unread: Vec<String> = parse::wildcard_names(&nodes)
        .into_iter()
        .filter(|n| !cache.values.contains_key(n))
        .collect();
    if !unread.is_empty() {
        return Err(refuse(
            "the wildcard files are still being read: queue it again in a moment".into(),
            unread,
        ));
    }
    let spec = spec(text);
    let count = runs::count_with(&spec, &mut |n| cache.lookup(n))
        .map_err(|e| refuse(error_text(&e), cache.failed(text)))?;
    if let Err(e) = count.check(false) {
        return Err(refuse(
            format!(
                "the prompt expands to {} jobs, {}: use fewer choices (easel generate --allow-large sends up to {})",
                count.jobs,
                too_large(&e),
                runs::MAX_JOBS
            ),
            vec![],
        ));
    }
    let expansion = runs::expand_with(&spec, &mut |n| cache.lookup(n))
        .map_err(|e| refuse(error_text(&e), vec![]))?;
    if let [one] = expansion.jobs.as_slice() {
        return Ok(Planned::Single(one.prompt.clone()));
    }
    let planned = crate::plan::plan(
        &expansion.jobs,
        target,
        &mut |job| GenerationParams {
            prompt: job.prompt.clone(),
            ..params.clone()
        },
        &mut |_| Ok(()),
    )
    .map_err(|e| refuse(e.message, vec![]))?;
    Ok(Planned::Run(planned))
}

/// A new run id, made from the studio's clock and a count of runs made (so `update` stays
/// pure: the same state gives the same id).
pub fn new_run_id(now: chrono::DateTime<chrono::Utc>, made: u64, text: &str) -> Id {
    let millis = u64::try_from(now.timestamp_millis()).unwrap_or(0);
    let mut seed = made ^ millis.rotate_left(17);
    for b in text.bytes() {
        seed = seed.rotate_left(5) ^ u64::from(b);
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut bytes = [0u8; 10];
    rng.fill(&mut bytes);
    Id::from_uuid(uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid())
}

/// A run in the queue pane: what its header row says beyond the counts of its jobs there.
#[derive(Debug, Clone, PartialEq)]
pub struct RunTally {
    /// Jobs in the run.
    pub of: u32,
    /// Jobs of it that succeeded (they leave the queue pane).
    pub done: u32,
    /// The prompt as written.
    pub template: String,
    /// Its queued jobs are held.
    pub paused: bool,
    /// The Batch API batch its jobs were sent in, if they were.
    pub batch: Option<String>,
}

/// The counts a run's header shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunCounts {
    pub done: u32,
    pub running: u32,
    pub queued: u32,
    pub failed: u32,
    /// Cancelled jobs still in the pane (they can be retried there).
    pub cancelled: u32,
    /// Jobs waiting in a Batch API batch.
    pub in_batch: u32,
}

/// "run · 7/12 done · 1 running · 3 queued · 1 failed · paused · a {red|blue} fox".
pub fn header_text(t: &RunTally, c: RunCounts) -> String {
    let mut parts = vec![format!("run · {}/{} done", c.done, t.of)];
    if c.running > 0 {
        parts.push(format!("{} running", c.running));
    }
    if c.queued > 0 {
        parts.push(format!("{} queued", c.queued));
    }
    if c.in_batch > 0 {
        parts.push(match &t.batch {
            Some(b) => format!(
                "{} in batch {}",
                c.in_batch,
                crate::sanitize::truncate(&crate::sanitize::line(b), 20)
            ),
            None => format!("{} in batch", c.in_batch),
        });
    }
    if c.failed > 0 {
        parts.push(format!("{} failed", c.failed));
    }
    if c.cancelled > 0 {
        parts.push(format!("{} cancelled", c.cancelled));
    }
    if t.paused {
        parts.push("paused".into());
    }
    parts.push(crate::sanitize::line(&t.template).into_owned());
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// A wildcard file of a million lines (13 MB): each keystroke in a prompt that names it
    /// works the count out again, and must not copy the file's values each time.
    #[test]
    fn a_huge_wildcard_costs_little_a_keystroke() {
        let mut cache = WildcardCache::default();
        cache.loaded(vec![(
            "huge".into(),
            Ok((0..1_000_000).map(|i| format!("value{i:07}")).collect()),
        )]);
        let params = GenerationParams::default();
        let catalog = Catalog::builtin();
        let start = std::time::Instant::now();
        let mut p = RunPreview::Plain;
        for text in ["a __huge__ {x|y", "a __huge__ {x|y}", "a __huge__ {x|y} "] {
            p = preview(text, &params, &catalog, true, &cache);
        }
        let took = start.elapsed() / 3;
        eprintln!("preview with a 1,000,000-line wildcard: {took:?} a keystroke");
        assert!(
            matches!(
                p,
                RunPreview::TooLarge {
                    jobs: 2_000_000,
                    ..
                }
            ),
            "{p:?}"
        );
        assert!(took < std::time::Duration::from_millis(5), "{took:?}");
    }

    #[test]
    fn a_huge_product_is_counted_at_once() {
        // 10^8 combinations: six groups of ten and a wildcard of a hundred lines.
        let group = format!(
            "{{{}}}",
            (0..10)
                .map(|i| format!("w{i}"))
                .collect::<Vec<_>>()
                .join("|")
        );
        let text = format!("{} __many__", vec![group; 6].join(" "));
        let mut cache = WildcardCache::default();
        cache.loaded(vec![(
            "many".into(),
            Ok((0..100).map(|i| format!("v{i}")).collect()),
        )]);
        let start = std::time::Instant::now();
        let p = preview(
            &text,
            &GenerationParams::default(),
            &Catalog::builtin(),
            true,
            &cache,
        );
        let took = start.elapsed();
        eprintln!("preview of 10^8 combinations: {took:?}");
        assert!(took < std::time::Duration::from_millis(50), "{took:?}");
        assert_eq!(
            p,
            RunPreview::TooLarge {
                jobs: 100_000_000,
                why: "expands to 100000000 prompts: more than a run may have (100000)".into()
            }
        );
    }
}
