//! The studio's whole state. Only `update` changes it; `view` only reads it.

use super::keymap::{Context, Keymap};
use super::layout;
use super::mask::{Op, PixRect, Shape};
pub use super::msg::{Family, MaskBase};
use super::msg::{InputKind, PreviewKey, PreviewSource};
use super::preview::Rendered;
use crate::api::{GenerationParams, ProviderRules};
use crate::catalog::Catalog;
use crate::store::{GenerationRecord, Id, Query, Status};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use ratatui_textarea::TextArea;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// The panes, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Editor,
    /// The input pictures of an edit (the reference strip under the editor): in the Tab order
    /// only while there are some.
    Inputs,
    Params,
    Queue,
    History,
}

impl Pane {
    pub const ORDER: [Pane; 5] = [
        Pane::Editor,
        Pane::Inputs,
        Pane::Params,
        Pane::Queue,
        Pane::History,
    ];

    pub fn context(self) -> Context {
        match self {
            Pane::Editor => Context::Editor,
            Pane::Inputs => Context::Inputs,
            Pane::Params => Context::Params,
            Pane::Queue => Context::Queue,
            Pane::History => Context::History,
        }
    }
}

/// The provider jobs go to, as the studio shows it.
#[derive(Debug, Clone)]
pub struct ProviderInfo {
    pub name: String,
    pub demo: bool,
    /// OpenAI itself (not a compatible server): its shutdown dates apply.
    pub openai: bool,
    pub rules: ProviderRules,
}

/// A job in the queue pane.
#[derive(Debug, Clone)]
pub struct JobView {
    pub record: GenerationRecord,
    /// The newest partial image's index.
    pub partial: Option<u32>,
    /// "retry 1 in 2.0 s: …" while waiting to retry.
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct QueueState {
    pub jobs: Vec<JobView>,
    pub selected: usize,
    pub paused: bool,
    /// The runs with jobs in the pane, by run id (their header rows).
    pub runs: HashMap<Id, super::runs::RunTally>,
    /// The state of each Batch API batch as last polled (`in_progress`…), by batch id.
    pub batch_states: HashMap<String, String>,
    /// Runs found in the queue at start whose records were asked for (`Effect::LoadRun`): their
    /// ended jobs are counted, and the failed and interrupted ones shown, when they come.
    pub recount: Vec<Id>,
    /// Runs held (`JobEvent::RunPaused`), also those whose jobs the pane has not seen yet.
    pub paused_runs: std::collections::HashSet<Id>,
}

impl QueueState {
    pub fn running(&self) -> usize {
        self.jobs
            .iter()
            .filter(|j| j.record.status == Status::Running)
            .count()
    }

    pub fn waiting(&self) -> usize {
        self.jobs
            .iter()
            .filter(|j| j.record.status == Status::Queued)
            .count()
    }

    pub fn selected_job(&self) -> Option<&JobView> {
        self.jobs.get(self.selected)
    }

    /// A run's counts as its header shows them: done from the tally, the rest from the pane.
    pub fn run_counts(&self, run: Id) -> super::runs::RunCounts {
        let mut c = super::runs::RunCounts {
            done: self.runs.get(&run).map_or(0, |t| t.done),
            ..Default::default()
        };
        for j in self
            .jobs
            .iter()
            .filter(|j| j.record.run.as_ref().is_some_and(|r| r.id == run))
        {
            match j.record.status {
                Status::Running => c.running += 1,
                // Waiting in a Batch API batch: nothing here starts it.
                Status::Queued if j.record.batch.is_some() => c.in_batch += 1,
                Status::Queued => c.queued += 1,
                Status::Failed | Status::Interrupted => c.failed += 1,
                Status::Cancelled => c.cancelled += 1,
                _ => {}
            }
        }
        c
    }

    /// The run of the selected job, if it is part of one.
    pub fn selected_run(&self) -> Option<Id> {
        self.selected_job()?.record.run.as_ref().map(|r| r.id)
    }
}

/// An image picked for comparing: a record and which of its images.
#[derive(Debug, Clone, PartialEq)]
pub struct Marked {
    pub record: GenerationRecord,
    pub image: usize,
}

/// The compare screen: 2–4 images side by side, or one at a time in blink mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    pub items: Vec<Marked>,
    pub blink: bool,
    /// The image shown in blink mode (and the one rate and reject act on).
    pub shown: usize,
}

/// Quick filters cycled with `f`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Filter {
    #[default]
    All,
    Starred,
    Failed,
    Cancelled,
    Interrupted,
    Model(String),
}

impl Filter {
    pub fn label(&self) -> String {
        match self {
            Filter::All => "all".into(),
            Filter::Starred => "starred".into(),
            Filter::Failed => "failed".into(),
            Filter::Cancelled => "cancelled".into(),
            Filter::Interrupted => "interrupted".into(),
            Filter::Model(m) => format!("model {m}"),
        }
    }
}

/// The history list: a window of rows loaded on demand around the selection, so scrolling
/// through 100,000 entries only ever builds the visible rows.
#[derive(Debug, Clone, Default)]
pub struct HistoryState {
    /// Matching records in all.
    pub total: usize,
    /// Loaded rows by position.
    pub rows: BTreeMap<usize, GenerationRecord>,
    pub selected: usize,
    /// The record the selection is on: the selection follows it when records are added,
    /// deleted or filtered, not the row number.
    pub selected_id: Option<Id>,
    /// A reload is finding where `selected_id` stands now; `true` when the query changed (a
    /// search that no longer finds it goes to the top).
    pub anchor: Option<(Id, bool)>,
    /// First visible position.
    pub scroll: usize,
    /// Fuzzy text (committed).
    pub text: String,
    /// The search line while it is being typed.
    pub search: Option<String>,
    pub filter: Filter,
    /// Bumped whenever the query changes: pages for older queries are dropped.
    pub generation: u64,
    /// Pages asked for and not yet arrived (page number).
    pub pending: Vec<usize>,
    /// Which image of the selected record the preview shows.
    pub image: usize,
    /// Whether the first page has arrived.
    pub loaded: bool,
}

/// Rows fetched per history page.
pub const PAGE: usize = 100;
/// Rows kept around the selection; farther ones are dropped to bound memory.
pub const KEEP: usize = 600;

impl HistoryState {
    pub fn query(&self) -> Query {
        let mut q = Query::default();
        // `tag:`, `#`, `rating:` and `sort:` terms of the search are filters, not text.
        let text = crate::store::query::take_search_terms(&self.text, &mut q);
        q.text = (!text.trim().is_empty()).then_some(text);
        match &self.filter {
            Filter::All => {}
            Filter::Starred => q.starred = true,
            Filter::Failed => q.status = Some(Status::Failed),
            Filter::Cancelled => q.status = Some(Status::Cancelled),
            Filter::Interrupted => q.status = Some(Status::Interrupted),
            Filter::Model(m) => q.model = Some(m.clone()),
        }
        q
    }

    pub fn selected_record(&self) -> Option<&GenerationRecord> {
        self.rows.get(&self.selected)
    }
}

/// A message on the status line.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
    pub at: DateTime<Utc>,
}

/// How long an informational notice stays; errors stay until read (a key pressed after this),
/// and at most `ERROR_SECS`.
pub const NOTICE_SECS: i64 = 6;
pub const ERROR_SECS: i64 = 30;

#[derive(Debug, Clone)]
pub enum Confirm {
    /// Queue a request for a model OpenAI has shut down (or is about to)? Says why.
    ShutDownModel(Box<crate::queue::Submission>, String),
    /// The record as shown when `d` was pressed: the popup names it, and that record is deleted.
    Delete(Box<GenerationRecord>),
    /// Queue a request that costs more than `[budget] confirm_above_usd`, or would pass a
    /// budget? Says why, with the figures.
    Spend(Box<crate::queue::Submission>, Vec<String>),
    /// Queue a run (all its jobs, whole or not at all) that costs more than `[budget]
    /// confirm_above_usd`, or would pass a budget? Says why, with the run's total.
    Run(Vec<crate::queue::Submission>, Vec<String>),
    /// Send these jobs as one Batch API batch? Says how many, the estimate at batch prices,
    /// and any budget it would pass.
    Batch(Vec<crate::queue::send::BatchLine>, Vec<String>),
    Quit,
}

#[derive(Debug, Clone)]
pub enum Overlay {
    Help,
    Details(Box<GenerationRecord>),
    Confirm(Confirm),
}

/// Preview pictures: what is wanted, what is shown, and a small cache.
#[derive(Default)]
pub struct PreviewState {
    /// The last render asked for (so it is asked once).
    pub requested: Option<PreviewKey>,
    pub cache: Vec<(PreviewKey, Rendered)>,
    /// Gallery cells, apart.
    pub cells: Vec<(PreviewKey, Rendered)>,
    pub error: Option<(PreviewKey, String)>,
    /// Gallery cells that could not be drawn, and why (kept so they are not asked for again).
    pub failed_cells: Vec<(PreviewKey, String)>,
    /// The newest partial image of each running job.
    pub partials: HashMap<Id, (u32, Bytes)>,
}

/// Rows the reference strip takes with pictures (where the screen is wide enough).
pub const STRIP_PICTURE_ROWS: u16 = 8;

/// Cached preview renders kept.
pub const PREVIEW_CACHE: usize = 8;
/// Cached gallery cells kept (small pictures: a screenful or two).
pub const CELL_CACHE: usize = 64;

impl PreviewState {
    pub fn get(&self, key: &PreviewKey) -> Option<&Rendered> {
        self.cache
            .iter()
            .chain(&self.cells)
            .find(|(k, _)| k == key)
            .map(|(_, r)| r)
    }

    pub fn insert(&mut self, key: PreviewKey, r: Rendered) {
        // Gallery cells have a cache of their own: a screenful of small pictures must not push
        // out the large previews (nor the other way round).
        let (cache, cap) = if key.source.is_cell() {
            (&mut self.cells, CELL_CACHE)
        } else {
            (&mut self.cache, PREVIEW_CACHE)
        };
        cache.retain(|(k, _)| *k != key);
        cache.push((key, r));
        if cache.len() > cap {
            cache.remove(0);
        }
    }
}

impl std::fmt::Debug for PreviewState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviewState")
            .field("requested", &self.requested)
            .field("cached", &self.cache.len())
            .finish()
    }
}

pub use super::preview::Graphics;

pub struct Model {
    pub keymap: Keymap,
    pub catalog: Arc<Catalog>,
    pub provider: ProviderInfo,
    pub focus: Pane,
    pub editor: TextArea<'static>,
    /// Everything but the prompt, which lives in the editor.
    pub params: GenerationParams,
    pub param_cursor: usize,
    /// A size being typed in the parameters pane (WIDTHxHEIGHT), checked as it is typed.
    pub size_input: Option<String>,
    /// Tags being typed for the selected record ("+keep -draft"), and the tags in use.
    pub tag_input: Option<String>,
    pub known_tags: Vec<String>,
    pub queue: QueueState,
    pub history: HistoryState,
    pub preview: PreviewState,
    pub notices: Vec<Notice>,
    /// Records this session moved to the trash, the latest last: `u` brings them back.
    pub trash_undo: Vec<Id>,
    pub overlay: Option<Overlay>,
    /// How far the open popup (help, details) is scrolled.
    pub overlay_scroll: u16,
    /// Spend of what finished in this session.
    pub spend: f64,
    /// Part of `spend` is an estimate (no usage in the answer).
    pub spend_estimated: bool,
    /// `[budget]` from the config.
    pub budget: crate::config::Budget,
    /// What history had spent when it was read (today and this month, at `spend_read_at`), and
    /// the session's `spend` then: spent today is that plus what the session spent since.
    pub spend_history: Option<(crate::budget::Spent, f64)>,
    /// A provider answered 429: its jobs wait until then (the status line counts down).
    pub rate_limited_until: Option<DateTime<Utc>>,
    pub width: u16,
    pub height: u16,
    pub graphics: Graphics,
    /// The zoomed layout: the preview takes most of the screen.
    pub zoom: bool,
    /// Whether the terminal has focus (terminals that do not report it count as focused).
    pub focused: bool,
    /// The studio runs inside tmux, where another client (another terminal) may attach.
    pub in_tmux: bool,
    /// When the studio last looked for another tmux client in front of it.
    pub tmux_checked: Option<DateTime<Utc>>,
    /// The jobs this studio queued: quitting with `c` cancels these, not other clients' jobs.
    pub mine: std::collections::HashSet<Id>,
    /// Whether the terminal shows 24-bit colour (else colours are mapped to the 256 palette).
    pub truecolor: bool,
    pub now: DateTime<Utc>,
    pub quitting: bool,
    /// Jobs belong to a service and keep running after the studio quits.
    pub jobs_outlive: bool,
    /// Images marked for comparing (`m` in the history), at most 4.
    pub marked: Vec<Marked>,
    /// The compare screen, when it is open.
    pub compare: Option<Compared>,
    /// The history is shown as a grid of thumbnails on the whole screen.
    pub gallery: bool,
    /// Where relative image paths are resolved.
    pub data_dir: std::path::PathBuf,
    /// The input picture selected in the reference strip.
    pub input_cursor: usize,
    /// A path (or history id) being typed: a reference to add, or a mask file to load.
    pub path_input: Option<PathInput>,
    /// The mask editor, when it is open.
    pub mask_edit: Option<MaskEdit>,
    /// The selection the last mask was painted from, and on which picture: opening the editor
    /// on that picture again goes on from it.
    pub painted: Option<(PathBuf, Vec<Op>)>,
    /// The lineage of the record whose details are open (or whose child is wanted).
    pub family: Option<Family>,
    /// A record's child to go to once its family is read (`C` before it was).
    pub pending_child: Option<Id>,
    /// The last child gone to with `C`, and whose: `C` on the same parent goes to the next.
    pub child_cycle: Option<(Id, usize)>,
    /// The lineage view, when it is open.
    pub lineage: Option<super::lineage::LineageView>,
    /// A run shown as a labelled grid (`V`), when it is open.
    pub run_grid: Option<super::run_state::RunGrid>,
    /// The run whose jobs all ended last in this session (`V` opens it from anywhere).
    pub run_done: Option<Id>,
    /// The wildcard files read so far (for runs typed in the editor).
    pub wildcards: super::runs::WildcardCache,
    /// What the prompt being typed expands to, and what it was worked out for (the prompt and
    /// the parameters that change the count or the cost).
    pub run_preview: super::runs::RunPreview,
    pub run_preview_for: String,
    /// Runs queued from the studio so far (to make each run's id).
    pub runs_made: u64,
}

/// A path being typed in the reference strip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathInput {
    pub kind: InputKind,
    pub text: String,
}

/// The mask editor: a selection over the first input picture.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskEdit {
    /// The picture painted on.
    pub path: PathBuf,
    /// Its size in pixels, once it is read.
    pub size: Option<(u32, u32)>,
    /// The picture shrunk to the dots of its placement, for the area it was asked for.
    pub base: Option<MaskBase>,
    /// The area (columns, rows) a base was asked for, so it is asked once.
    pub requested: Option<(u16, u16)>,
    pub shape: Shape,
    /// The shape being placed, in picture pixels.
    pub cursor: PixRect,
    pub ops: Vec<Op>,
    /// A mouse drag: where it started (picture pixels), and whether it subtracts.
    pub drag: Option<(u32, u32, bool)>,
    /// Why the picture cannot be shown, when it cannot.
    pub error: Option<String>,
}

impl MaskEdit {
    pub fn new(path: PathBuf, ops: Vec<Op>) -> MaskEdit {
        MaskEdit {
            path,
            size: None,
            base: None,
            requested: None,
            shape: Shape::Rect,
            cursor: PixRect {
                x0: 0,
                y0: 0,
                x1: 0,
                y1: 0,
            },
            ops,
            drag: None,
            error: None,
        }
    }
}

impl Model {
    /// Spent so far today and this month: history as read at start plus what finished since
    /// (None until history was read).
    pub fn spent(&self) -> Option<crate::budget::Spent> {
        let (mut spent, session_then) = self.spend_history?;
        let since = (self.spend - session_then).max(0.0);
        for line in [&mut spent.today, &mut spent.month] {
            line.usd += since;
            if self.spend_estimated {
                line.estimated_usd += since;
            } else {
                line.from_usage_usd += since;
            }
        }
        Some(spent)
    }

    pub fn new(
        keymap: Keymap,
        catalog: Arc<Catalog>,
        provider: ProviderInfo,
        params: GenerationParams,
        now: DateTime<Utc>,
    ) -> Model {
        let mut editor = TextArea::default();
        editor.set_placeholder_text("Describe the picture… (Ctrl-S queues it)");
        editor.set_wrap_mode(ratatui_textarea::WrapMode::WordOrGlyph);
        editor.set_cursor_line_style(ratatui::style::Style::default());
        editor.set_max_histories(200);
        Model {
            keymap,
            catalog,
            provider,
            focus: Pane::Editor,
            editor,
            params,
            param_cursor: 0,
            size_input: None,
            tag_input: None,
            known_tags: Vec::new(),
            queue: QueueState::default(),
            history: HistoryState::default(),
            preview: PreviewState::default(),
            notices: Vec::new(),
            trash_undo: Vec::new(),
            overlay: None,
            overlay_scroll: 0,
            spend: 0.0,
            spend_estimated: false,
            budget: crate::config::Budget::default(),
            spend_history: None,
            rate_limited_until: None,
            width: 80,
            height: 24,
            graphics: Graphics::Halfblocks,
            zoom: false,
            focused: true,
            in_tmux: false,
            tmux_checked: None,
            mine: Default::default(),
            truecolor: true,
            now,
            quitting: false,
            jobs_outlive: false,
            marked: Vec::new(),
            compare: None,
            gallery: false,
            data_dir: std::path::PathBuf::new(),
            input_cursor: 0,
            path_input: None,
            mask_edit: None,
            painted: None,
            family: None,
            pending_child: None,
            child_cycle: None,
            lineage: None,
            run_grid: None,
            run_done: None,
            wildcards: Default::default(),
            run_preview: Default::default(),
            run_preview_for: String::new(),
            runs_made: 0,
        }
    }

    /// Where each pane goes now.
    /// The gallery is on screen: chosen, with the history focused and no compare open.
    pub fn gallery_shown(&self) -> bool {
        self.gallery && self.focus == Pane::History && self.compare.is_none()
    }

    pub fn areas(&self) -> layout::Areas {
        layout::compute_with(self.width, self.height, self.zoom, self.strip_rows())
    }

    /// The rows the reference strip asks for: none without inputs, a line of names, or (where
    /// graphics show pictures) small pictures over their names.
    pub fn strip_rows(&self) -> u16 {
        if !self.strip_shown() {
            0
        } else if self.graphics == Graphics::None {
            layout::STRIP_ROWS
        } else {
            STRIP_PICTURE_ROWS
        }
    }

    /// The reference strip is on screen: there are inputs, or a path is being typed for one.
    pub fn strip_shown(&self) -> bool {
        self.has_inputs() || self.path_input.is_some()
    }

    /// The prompt has input pictures (or a mask): the next submit is an edit.
    pub fn has_inputs(&self) -> bool {
        !self.params.images.is_empty() || self.params.mask.is_some()
    }

    pub fn prompt(&self) -> String {
        self.editor.lines().join("\n")
    }

    /// The latest notice worth showing: an unread error, else a recent notice.
    pub fn current_notice(&self) -> Option<&Notice> {
        self.notices.iter().rev().find(|n| {
            let age = (self.now - n.at).num_seconds();
            age < NOTICE_SECS || (n.error && age < ERROR_SECS)
        })
    }
}

/// What the preview pane should show now, at its current size.
pub fn preview_key(m: &Model) -> Option<PreviewKey> {
    if m.graphics == Graphics::None {
        return None;
    }
    let area = m.areas();
    let inner = layout::inner(area.preview);
    // One row is kept for the caption.
    if inner.width < 4 || inner.height < 3 {
        return None;
    }
    let (cols, rows) = (inner.width, inner.height - 1);
    let partial_of = |id| {
        m.preview
            .partials
            .get(&id)
            .map(|(index, _)| PreviewSource::Partial { id, index: *index })
    };
    let source = match m.focus {
        Pane::Queue => m.queue.selected_job().and_then(|j| partial_of(j.record.id)),
        Pane::Editor | Pane::Inputs | Pane::Params => m
            .queue
            .jobs
            .iter()
            .filter(|j| j.record.status == Status::Running)
            .find_map(|j| partial_of(j.record.id)),
        Pane::History => None,
    };
    let source = source.or_else(|| selected_image_path(m).map(PreviewSource::File))?;
    Some(PreviewKey { source, cols, rows })
}

/// The file of the image the history selection shows.
pub fn selected_image_path(m: &Model) -> Option<std::path::PathBuf> {
    let r = m.history.selected_record()?;
    let out = r
        .outputs
        .get(m.history.image.min(r.outputs.len().saturating_sub(1)))?;
    Some(if out.path.is_absolute() {
        out.path.clone()
    } else {
        m.data_dir.join(&out.path)
    })
}
