//! A generation as history keeps it, and the versioned envelope it is stored in.

use crate::api::{ApiError, GenerationParams, Usage};
use crate::store::Id;
use crate::store::SavedImage;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a job is in its life. (`clap::ValueEnum` so `--status` takes exactly these names.)
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// It was running when the process died.
    Interrupted,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Queued,
        Status::Running,
        Status::Succeeded,
        Status::Failed,
        Status::Cancelled,
        Status::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
            Status::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// A job that will not change again unless retried.
    pub fn is_final(self) -> bool {
        !matches!(self, Status::Queued | Status::Running)
    }

    /// A job that may be retried.
    pub fn can_retry(self) -> bool {
        matches!(
            self,
            Status::Failed | Status::Cancelled | Status::Interrupted
        )
    }

    pub fn code(self) -> u8 {
        match self {
            Status::Queued => 0,
            Status::Running => 1,
            Status::Succeeded => 2,
            Status::Failed => 3,
            Status::Cancelled => 4,
            Status::Interrupted => 5,
        }
    }

    pub fn from_code(c: u8) -> Option<Status> {
        Status::ALL.get(usize::from(c)).copied()
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure as history keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedError {
    pub kind: String,
    /// The one-line summary shown to the user.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl From<&ApiError> for RecordedError {
    fn from(e: &ApiError) -> RecordedError {
        RecordedError {
            kind: e.kind.as_str().to_string(),
            message: e.to_string(),
            code: e.code.clone(),
            status: e.status,
            request_id: e.request_id.clone(),
            hint: e.hint().map(str::to_string),
        }
    }
}

/// One generation: what was asked, what happened, what was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationRecord {
    pub id: Id,
    /// The record this one re-runs (kept as it was; [`GenerationRecord::lineage`] lists every
    /// parent with its role).
    #[serde(default)]
    pub parent_id: Option<Id>,
    /// The records this one was made from, each with its role: the picture edited, the
    /// references, the mask's source, the picture varied. (Records written before lineage have
    /// none: they read as before.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<Parent>,
    pub prompt: String,
    #[serde(default)]
    pub revised_prompt: Option<String>,
    pub provider: String,
    pub model: String,
    /// Every parameter as the user set it.
    pub params: GenerationParams,
    /// True when the offline demo backend made it.
    #[serde(default)]
    pub demo: bool,
    pub status: Status,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub started: Option<DateTime<Utc>>,
    #[serde(default)]
    pub finished: Option<DateTime<Utc>>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub error: Option<RecordedError>,
    #[serde(default)]
    pub outputs: Vec<SavedImage>,
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(default)]
    pub cost_usd: Option<f64>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub starred: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    /// 0 (not rated) to 5. A star is a quick mark; a rating is a considered judgment: the two
    /// are independent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rating: u8,
    /// Free text the user wrote about it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
    /// Queued by `easel generate`, which waits for it: if that process is gone before the job
    /// ran, nobody is waiting any more, and the studio must not run (and pay for) it silently.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub headless: bool,
    /// Images of `outputs` known to be gone from disk: `easel history doctor --repair` records
    /// them here so that doctor stops reporting them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<std::path::PathBuf>,
    /// The run this job belongs to (`easel generate` with `{a|b}`, wildcards, axes, repeats):
    /// its id, its place in the run and the values it used. None for a single request (and for
    /// records written before runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunInfo>,
    /// Sent through the Batch API (`easel generate --batch`): the batch it is a line of. A
    /// queued record with a batch is not run by the scheduler; it waits for its batch's
    /// result, which whoever owns the store polls (docs/batch.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchRef>,
}

/// The run records as the grid's layout reads them (records without a run are left out).
pub fn run_entries(records: &[GenerationRecord]) -> Vec<crate::runs::layout::Entry<'_>> {
    records
        .iter()
        .filter_map(|r| {
            r.run.as_ref().map(|i| crate::runs::layout::Entry {
                index: i.index,
                values: &i.values,
            })
        })
        .collect()
}

/// A job's place in a run (docs/runs.md): the jobs of one run share `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub id: Id,
    /// 1-based.
    pub index: u32,
    /// How many jobs the run has.
    pub of: u32,
    /// The alternatives, wildcard lines, axis values and repeat this job used.
    pub values: crate::runs::JobValues,
}

impl RunInfo {
    /// "cat, fox · size=1024x1024 · repeat 2": what sets this job apart in its run (the chosen
    /// alternatives and wildcard lines, the axis values, the repeat).
    pub fn values_label(&self) -> String {
        let v = &self.values;
        let mut parts: Vec<String> = Vec::new();
        let chosen: Vec<&str> = v
            .alternatives
            .iter()
            .map(|a| a.value.trim())
            .chain(v.wildcards.iter().map(|w| w.value.trim()))
            .collect();
        if !chosen.is_empty() {
            parts.push(
                chosen
                    .iter()
                    .map(|c| if c.is_empty() { "(none)" } else { c })
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        for a in &v.axes {
            parts.push(format!("{}={}", a.name, a.value));
        }
        if v.repeat > 1 {
            parts.push(format!("repeat {}", v.repeat));
        }
        crate::sanitize::line(&parts.join(" · ")).into_owned()
    }
}

/// A record's place in a Batch API batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRef {
    /// The batch's id (`batch_…`).
    pub id: String,
    /// The line's `custom_id`: the record's id.
    pub custom_id: String,
}

/// What a parent record was to its child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParentRole {
    /// Its image is the picture the child edits.
    Edited,
    /// Its image is a reference picture of the edit.
    Reference,
    /// Its image is the edit's mask.
    MaskSource,
    /// Its image is the picture the child is a variation of.
    VariationOf,
    /// The child runs its request again.
    RerunOf,
    /// The child reuses its prompt and parameters.
    ReusedFrom,
}

impl ParentRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ParentRole::Edited => "edited",
            ParentRole::Reference => "reference",
            ParentRole::MaskSource => "mask source",
            ParentRole::VariationOf => "variation of",
            ParentRole::RerunOf => "rerun of",
            ParentRole::ReusedFrom => "reused from",
        }
    }
}

/// One parent of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Parent {
    pub id: Id,
    pub role: ParentRole,
}

/// The parents an edit or a variation has through its input pictures (those that came from
/// history), in order: the edited picture (or the varied one), the references, the mask.
pub fn parents_of(params: &GenerationParams) -> Vec<Parent> {
    let mut out: Vec<Parent> = Vec::new();
    let mut add = |record: &Option<String>, role: ParentRole| {
        if let Some(id) = record.as_deref().and_then(Id::parse) {
            let p = Parent { id, role };
            if !out.contains(&p) {
                out.push(p);
            }
        }
    };
    for (k, input) in params.images.iter().enumerate() {
        let role = match (params.variation, k) {
            (true, _) => ParentRole::VariationOf,
            (false, 0) => ParentRole::Edited,
            (false, _) => ParentRole::Reference,
        };
        add(&input.record, role);
    }
    if let Some(mask) = &params.mask {
        add(&mask.record, ParentRole::MaskSource);
    }
    out
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

/// A change of what the user owns in a record (not its job's): star, tags, rating, notes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserEdit {
    Star(bool),
    /// Replace the tags (cleaned: trimmed, no empties, no duplicates, sorted).
    Tags(Vec<String>),
    /// Add these tags and remove those.
    Retag {
        add: Vec<String>,
        remove: Vec<String>,
    },
    Rating(u8),
    Notes(String),
}

/// Longest tag and notes accepted.
pub const MAX_TAG_CHARS: usize = 64;
pub const MAX_NOTES_CHARS: usize = 4_000;

impl UserEdit {
    /// Apply to a record; refuses values out of range.
    pub fn apply(&self, r: &mut GenerationRecord) -> Result<(), String> {
        let clean = |tags: Vec<String>| -> Result<Vec<String>, String> {
            let mut out: Vec<String> = Vec::new();
            for t in tags {
                let t = crate::sanitize::line(t.trim()).into_owned();
                if t.is_empty() {
                    continue;
                }
                if t.chars().count() > MAX_TAG_CHARS {
                    return Err(format!("a tag is at most {MAX_TAG_CHARS} characters"));
                }
                if !out.contains(&t) {
                    out.push(t);
                }
            }
            out.sort();
            Ok(out)
        };
        match self {
            UserEdit::Star(on) => r.starred = *on,
            UserEdit::Tags(tags) => r.tags = clean(tags.clone())?,
            UserEdit::Retag { add, remove } => {
                let mut tags = r.tags.clone();
                tags.extend(add.iter().cloned());
                let remove: Vec<String> = remove.iter().map(|t| t.trim().to_string()).collect();
                tags.retain(|t| !remove.contains(t));
                r.tags = clean(tags)?;
            }
            UserEdit::Rating(n) if *n <= 5 => r.rating = *n,
            UserEdit::Rating(n) => return Err(format!("a rating is 0 to 5, not {n}")),
            UserEdit::Notes(text) => {
                let text = crate::sanitize::text(text).trim().to_string();
                if text.chars().count() > MAX_NOTES_CHARS {
                    return Err(format!("notes are at most {MAX_NOTES_CHARS} characters"));
                }
                r.notes = text;
            }
        }
        Ok(())
    }
}

impl GenerationRecord {
    /// Keep what the user owns (star, tags, rating, notes) from `stored`: a job's own write
    /// never undoes a user's edit made while it ran.
    pub fn keep_user_fields(&mut self, stored: &GenerationRecord) {
        self.starred = stored.starred;
        self.tags = stored.tags.clone();
        self.rating = stored.rating;
        self.notes = stored.notes.clone();
    }

    /// Every parent with its role: those stored, and the record re-run (`parent_id`).
    pub fn lineage(&self) -> Vec<Parent> {
        let mut out = self.parents.clone();
        if let Some(id) = self.parent_id
            && !out.iter().any(|p| p.id == id)
        {
            out.push(Parent {
                id,
                role: ParentRole::RerunOf,
            });
        }
        out
    }

    /// Whether `id` is one of this record's parents.
    pub fn has_parent(&self, id: Id) -> bool {
        self.parent_id == Some(id) || self.parents.iter().any(|p| p.id == id)
    }

    /// A new queued record for `params`.
    pub fn queued(
        id: Id,
        params: GenerationParams,
        provider: &str,
        demo: bool,
        created: DateTime<Utc>,
    ) -> GenerationRecord {
        GenerationRecord {
            id,
            parent_id: None,
            parents: parents_of(&params),
            prompt: params.prompt.clone(),
            revised_prompt: None,
            provider: provider.to_string(),
            model: params.model.clone(),
            params,
            demo,
            status: Status::Queued,
            created,
            started: None,
            finished: None,
            attempts: 0,
            error: None,
            outputs: Vec::new(),
            usage: None,
            cost_usd: None,
            request_id: None,
            starred: false,
            tags: Vec::new(),
            rating: 0,
            notes: String::new(),
            headless: false,
            missing: Vec::new(),
            run: None,
            batch: None,
        }
    }
}

/// The schema version written with every record.
pub const RECORD_VERSION: u32 = 1;

/// What is stored for each record: a version and the record, so new fields can be added (with
/// serde defaults) without breaking old records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    pub record: GenerationRecord,
}

pub fn encode(record: &GenerationRecord) -> Result<Vec<u8>, String> {
    serde_json::to_vec(&Envelope {
        v: RECORD_VERSION,
        record: record.clone(),
    })
    .map_err(|e| e.to_string())
}

pub fn decode(bytes: &[u8]) -> Result<GenerationRecord, String> {
    #[derive(Deserialize)]
    struct Head {
        v: u32,
    }
    let head: Head =
        serde_json::from_slice(bytes).map_err(|e| format!("not a record envelope: {e}"))?;
    if head.v > RECORD_VERSION {
        return Err(format!(
            "written by a newer easel (record version {}, this one reads {RECORD_VERSION})",
            head.v
        ));
    }
    let env: Envelope = serde_json::from_slice(bytes)
        .map_err(|e| format!("record version {} does not decode: {e}", head.v))?;
    Ok(env.record)
}
