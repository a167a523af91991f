//! Messages into `update`, and the effects it asks the runtime to carry out.

use crate::queue::{JobEvent, Submission};
use crate::store::{GenerationRecord, Id, Located, Query, QueueMove};
use crossterm::event::KeyEvent;
use std::path::PathBuf;

/// Everything that can happen to the studio.
// Messages are moved one at a time, never stored in bulk, so a large variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Paste(String),
    Resize(u16, u16),
    /// The terminal gained (true) or lost (false) focus.
    Focus(bool),
    /// Another tmux client came in front of the studio (an attach from another terminal).
    TmuxClientChanged,
    /// Jobs this studio queued (the service's queue also holds other clients' jobs).
    Queued(Vec<Id>),
    /// The terminal was asked again what it can show (`asked`: by the redraw key; otherwise
    /// because another tmux client attached).
    GraphicsDetected {
        graphics: crate::studio::preview::Graphics,
        /// The terminal, as detection names it ("kitty 0.26.5", "tmux 3.3a in XTerm(388)").
        terminal: String,
        asked: bool,
    },
    /// The tags in use (for completion).
    Tags(Vec<String>),
    /// A click or the wheel (when `[ui] mouse` is on).
    Mouse(crossterm::event::MouseEvent),
    /// Time passes (elapsed times, message expiry); carries the time so `update` stays pure.
    Tick(chrono::DateTime<chrono::Utc>),
    /// From the scheduler.
    Job(JobEvent),
    /// A page of history arrived (for the query with this generation number).
    HistoryPage {
        generation: u64,
        offset: usize,
        total: usize,
        records: Vec<GenerationRecord>,
        /// Where the record the selection was on stands now (asked for with the page).
        anchor: Option<(Id, Located)>,
    },
    /// The queue as stored, at start.
    QueueLoaded(Vec<GenerationRecord>),
    /// What history has spent (by day, month, model), read at start for the budgets.
    SpendLoaded(Box<crate::store::Spend>),
    /// A preview picture is ready for this key.
    PreviewReady(PreviewKey, Box<crate::studio::preview::Rendered>),
    PreviewFailed(PreviewKey, String),
    /// The external editor closed with this text (a failure comes as a Problem).
    EditorClosed(String),
    /// A store operation ended.
    Stored(StoreOutcome),
    /// Something went wrong in the runtime.
    Problem(String),
    /// Something worth saying that is not a failure (which provider is used, say).
    Notice(String),
    /// A typed path or history id turned into a picture (a reference to add, a mask to use).
    InputResolved(InputKind, crate::api::InputImage),
    /// The mask editor's picture, read: its size and its dots for an area of cells.
    MaskBase {
        path: PathBuf,
        width: u32,
        height: u32,
        base: MaskBase,
    },
    /// The mask editor's picture could not be read.
    MaskBaseFailed(PathBuf, String),
    /// A painted mask was written to this file.
    MaskSaved(PathBuf),
    /// A mask file was read as a selection (its transparent area), or why it could not be.
    MaskImported(PathBuf, Result<crate::studio::mask::Op, String>),
    /// A record's parents and children.
    Family(Family),
    /// A record's whole family, for the lineage view (or why it could not be read).
    Lineage(Id, Result<Box<crate::studio::lineage::Tree>, String>),
    /// The input pictures (and mask) of an edit were read and checked: queue it, or say why not.
    InputsChecked {
        submission: Box<Submission>,
        result: Result<(), String>,
    },
    /// The records of a run, for its grid (answer to `Effect::LoadRun`).
    RunLoaded(Id, Vec<GenerationRecord>),
    /// Wildcard files read: each name with its values, or why it has none.
    WildcardsLoaded(Vec<(String, Result<Vec<String>, crate::runs::parse::ErrorKind>)>),
}

/// What a typed path is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Reference,
    Mask,
}

/// The results of store operations the studio asked for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum StoreOutcome {
    Starred(GenerationRecord),
    Deleted(Id),
    Restored(GenerationRecord),
    Failed(String),
}

/// What a preview shows, at which size in cells.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PreviewKey {
    pub source: PreviewSource,
    pub cols: u16,
    pub rows: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PreviewSource {
    /// An image file of a history record.
    File(PathBuf),
    /// The newest partial image of a running job.
    Partial { id: Id, index: u32 },
    /// An image file drawn small (the gallery): its cached thumbnail, named by its hash.
    Thumb { path: PathBuf, sha256: String },
    /// An input picture of the edit being written, drawn small in the reference strip.
    Input(PathBuf),
    /// An image of the compare screen, drawn large but into the frame's cells (several at once).
    Compared(PathBuf),
}

impl PreviewSource {
    /// A small picture of a grid (gallery cells, the strip's inputs), cached apart from the
    /// large previews.
    pub fn is_cell(&self) -> bool {
        matches!(
            self,
            PreviewSource::Thumb { .. } | PreviewSource::Input(_) | PreviewSource::Compared(_)
        )
    }
}

/// Work for the runtime: the only way `update` causes I/O.
// Effects are handed over one at a time: a large variant (a submission's parameters, with an
// edit's input pictures) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Effect {
    Submit(Submission),
    /// The jobs of a run (sharing a run id), queued in order, whole or not at all: when one
    /// is refused, those already queued are cancelled.
    SubmitRun(Vec<Submission>),
    /// Send these jobs through the Batch API as one batch (answered with a `Notice` naming the
    /// batch, or a `Problem`).
    SendBatch(Vec<crate::queue::send::BatchLine>),
    /// Hold (true) or release the queued jobs of a run.
    PauseRun(Id, bool),
    /// Read these wildcard files (answered with `WildcardsLoaded`).
    LoadWildcards(Vec<String>),
    Cancel(Id),
    Retry(Id),
    MoveJob(Id, QueueMove),
    Pause(bool),
    LoadHistory {
        generation: u64,
        query: Query,
        offset: usize,
        limit: usize,
        /// Also find where this record stands, so the selection can stay on it.
        anchor: Option<Id>,
    },
    Star(Id, bool),
    /// Change a record's rating, tags or notes.
    Edit(Id, crate::store::UserEdit),
    Delete(Id),
    /// Bring a record back from the trash.
    Restore(Id),
    /// Decode, resize and encode a preview (partials carry their bytes).
    RenderPreview {
        key: PreviewKey,
        bytes: Option<bytes::Bytes>,
    },
    /// Write text to the clipboard with OSC 52.
    Copy(String),
    /// Read the tags in use (for completion).
    LoadTags,
    /// Tell the user something happened while they were elsewhere (a desktop notification).
    Notify(String),
    /// Leave the studio to edit this text in $VISUAL / $EDITOR.
    OpenEditor(String),
    /// Leave the studio to show this image full size, then come back on a key.
    FullView(PathBuf),
    /// Open this image in the system's viewer (or, with no display, copy its path).
    OpenViewer(PathBuf),
    Suspend,
    /// Redraw the whole screen and ask the terminal again what it can show (`asked`: by the
    /// redraw key, so the answer is shown even when nothing changed).
    Redetect {
        asked: bool,
    },
    /// Inside tmux: see whether another client (another terminal) came in front of the studio,
    /// off the event loop; answered with `TmuxClientChanged` only when one did.
    CheckTmuxClient,
    /// Read the queue again (after the service restarted or events were missed).
    LoadQueue,
    /// Turn what was typed (a path, `~/…`, or a history id with an optional `:N`) into an input
    /// picture: answered with `InputResolved` or a `Problem`.
    ResolveInput {
        kind: InputKind,
        text: String,
    },
    /// Read a record's parents and children (answered with `Family`).
    LoadFamily(Id),
    /// Read a mask file as a selection for the mask editor (answered with `MaskImported`);
    /// `picture` is the first input picture, whose size the mask must have.
    ImportMask {
        mask: PathBuf,
        picture: Option<PathBuf>,
    },
    /// Read a record's whole family, ancestors and descendants (answered with `Lineage`).
    LoadLineage(Id),
    /// Read and check an edit's files as the CLI does (count, format from the bytes, size, the
    /// mask's size and alpha, missing files, directories, symlinks), before anything is queued:
    /// answered with `InputsChecked`.
    CheckInputs {
        files: crate::api::edit::EditFiles,
        submission: Box<Submission>,
    },
    /// Read the records of a run (answered with `RunLoaded`).
    LoadRun(Id),
    /// Read the mask editor's picture and shrink it to the dots of an area of cells.
    LoadMaskBase {
        path: PathBuf,
        cols: u16,
        rows: u16,
    },
    /// Build the mask PNG at the picture's size and write it, private, into `dir`: answered
    /// with `MaskSaved`.
    SaveMask {
        width: u32,
        height: u32,
        ops: Vec<crate::studio::mask::Op>,
        dir: PathBuf,
    },
    Quit,
}

/// A picture shrunk to `gw` × `gh` dots (RGB, row by row) for an area of `cols` × `rows` cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskBase {
    pub cols: u16,
    pub rows: u16,
    pub gw: u32,
    pub gh: u32,
    pub dots: Vec<[u8; 3]>,
}

/// A record's parents and children, read from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub id: Id,
    /// Each parent with its role, and its prompt (`None`: deleted).
    pub parents: Vec<(crate::store::record::Parent, Option<String>)>,
    /// The records made from it, oldest first: id, what it was to them, prompt.
    pub children: Vec<(Id, crate::store::record::ParentRole, String)>,
}
