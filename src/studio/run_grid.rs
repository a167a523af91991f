//! A run as a labelled grid (issue 14): `V` (global) on a record of a run in the history, or on
//! a job of one in the queue, shows all the run's jobs on the whole screen, laid out by `runs::layout` (the rows and
//! columns are the run's choices and axes), with the gallery's thumbnails in the cells. The
//! selection moves cell by cell; Enter and `z` act on the cell's record as in the gallery; Esc
//! goes back. Pure but for `load`, which the runtime calls on a worker.

use super::gallery::{CELL_H, CELL_W};
use super::model::{Graphics, Model, Notice, Overlay, Pane};
use super::msg::{Effect, PreviewKey, PreviewSource};
pub use super::run_state::RunGrid;
use crate::runs::layout::{self, Mark};
use crate::sanitize;
use crate::store::{GenerationRecord, HistoryStore, Id, Query};
use ratatui::layout::Rect;
use unicode_width::UnicodeWidthStr;

fn notice(m: &mut Model, text: impl AsRef<str>, error: bool) {
    m.notices.push(Notice {
        text: sanitize::line(text.as_ref()).into_owned(),
        error,
        at: m.now,
    });
}

/// The run `V` opens: the selected record's (history or queue), else the run that just ended.
fn wanted(m: &Model) -> Option<(Id, Option<Id>)> {
    let record = match m.focus {
        Pane::Queue => m.queue.selected_job().map(|j| &j.record),
        _ => m.history.selected_record(),
    };
    match record.and_then(|r| r.run.as_ref().map(|i| (i.id, Some(r.id)))) {
        Some(found) => Some(found),
        None => m.run_done.map(|id| (id, None)),
    }
}

/// Open the grid of the selected record's run (`V`), asking for its records.
pub fn open(m: &mut Model, fx: &mut Vec<Effect>) {
    match wanted(m) {
        Some((run, from)) => {
            m.run_grid = Some(RunGrid::new(run, from));
            fx.push(Effect::LoadRun(run));
        }
        None => notice(
            m,
            "this generation is not part of a run: a prompt with {a|b} choices, __wildcards__, \
             --axis or --repeat makes one (docs/runs.md)",
            false,
        ),
    }
}

/// The run's records arrived (or arrived again after one of its jobs ended).
pub fn loaded(m: &mut Model, run: Id, records: Vec<GenerationRecord>) {
    let Some(g) = m.run_grid.as_mut().filter(|g| g.run == run) else {
        return;
    };
    let mut records: Vec<GenerationRecord> = records
        .into_iter()
        .filter(|r| r.run.as_ref().is_some_and(|i| i.id == run))
        .collect();
    records.sort_by_key(|r| r.run.as_ref().map_or(0, |i| i.index));
    g.layout = layout::layout(&crate::store::record::run_entries(&records));
    let first = g.records.is_none();
    g.records = Some(records);
    // The first time, the selection goes to the record the grid was opened from.
    if first && let Some(from) = g.from {
        let at = g
            .records
            .as_ref()
            .and_then(|r| r.iter().position(|r| r.id == from));
        if let Some(at) = at {
            let cols = g.layout.col_count().max(1);
            for (p, page) in g.layout.pages.iter().enumerate() {
                if let Some(c) = page.cells.iter().position(|c| c.contains(&at)) {
                    (g.page, g.row, g.col) = (p, c / cols, c % cols);
                }
            }
        }
    }
    g.page = g.page.min(g.layout.pages.len().saturating_sub(1));
    g.row = g.row.min(g.layout.row_count().saturating_sub(1));
    g.col = g.col.min(g.layout.col_count().saturating_sub(1));
}

/// A job ended: when it was the last of its run still queued or running, say so (`V` shows the
/// grid); an open grid of that run is read again.
pub fn job_finished(m: &mut Model, r: &GenerationRecord, fx: &mut Vec<Effect>) {
    let Some(info) = &r.run else { return };
    if m.run_grid.as_ref().is_some_and(|g| g.run == info.id) {
        fx.push(Effect::LoadRun(info.id));
    }
    let active = m.queue.jobs.iter().any(|j| {
        j.record.id != r.id
            && !j.record.status.is_final()
            && j.record.run.as_ref().is_some_and(|i| i.id == info.id)
    });
    if !active {
        m.run_done = Some(info.id);
        let key = m.keymap.hint(
            super::keymap::Context::History,
            super::keymap::Action::RunGrid,
        );
        // Counted with this job (it is in the pane, or counted done, by now).
        let c = m.queue.run_counts(info.id);
        let of = m.queue.runs.get(&info.id).map_or(info.of, |t| t.of);
        if c.failed == 0 && c.cancelled == 0 {
            notice(
                m,
                format!("run {} done · press {key} to see the grid", info.id.short()),
                false,
            );
        } else {
            let mut parts = vec![format!("{} of {of} done", c.done)];
            if c.failed > 0 {
                parts.push(format!("{} failed", c.failed));
            }
            if c.cancelled > 0 {
                parts.push(format!("{} cancelled", c.cancelled));
            }
            notice(
                m,
                format!(
                    "run {} ended: {} · press {key} to see the grid",
                    info.id.short(),
                    parts.join(" · ")
                ),
                c.failed > 0,
            );
        }
    }
}

/// Keys while the grid is open (the history's bindings).
pub fn act(m: &mut Model, action: super::keymap::Action, fx: &mut Vec<Effect>) {
    use super::keymap::Action;
    let Some(g) = m.run_grid.as_mut() else { return };
    let (rows, cols, pages) = (
        g.layout.row_count(),
        g.layout.col_count(),
        g.layout.pages.len(),
    );
    let step = |v: usize, d: i64, n: usize| -> usize {
        let v = i64::try_from(v).unwrap_or(0).saturating_add(d);
        usize::try_from(v.clamp(0, i64::try_from(n).unwrap_or(1) - 1)).unwrap_or(0)
    };
    match action {
        Action::Up => g.row = step(g.row, -1, rows),
        Action::Down => g.row = step(g.row, 1, rows),
        Action::Left => g.col = step(g.col, -1, cols),
        Action::Right => g.col = step(g.col, 1, cols),
        Action::PageUp => g.page = step(g.page, -1, pages),
        Action::PageDown => g.page = step(g.page, 1, pages),
        Action::Top => (g.row, g.col) = (0, 0),
        Action::Bottom => {
            (g.row, g.col) = (rows.saturating_sub(1), cols.saturating_sub(1));
        }
        Action::ClearSearch | Action::RunGrid => m.run_grid = None,
        Action::Details => {
            if let Some(r) = g.selected().cloned() {
                let id = r.id;
                m.overlay = Some(Overlay::Details(Box::new(r)));
                m.overlay_scroll = 0;
                if m.family.as_ref().is_none_or(|f| f.id != id) {
                    m.family = None;
                    fx.push(Effect::LoadFamily(id));
                }
            }
        }
        Action::FullView | Action::OpenViewer => {
            let data_dir = &m.data_dir;
            let path = g.selected().and_then(|r| {
                let out = r.outputs.first()?;
                Some(if out.path.is_absolute() {
                    out.path.clone()
                } else {
                    data_dir.join(&out.path)
                })
            });
            match path {
                Some(p) if action == Action::FullView => fx.push(Effect::FullView(p)),
                Some(p) => fx.push(Effect::OpenViewer(p)),
                None => notice(m, "no image in this cell", false),
            }
        }
        _ => {}
    }
}

/// A click picks the cell under it; the wheel moves a row.
pub fn mouse(m: &mut Model, me: crossterm::event::MouseEvent) {
    use crossterm::event::{MouseButton, MouseEventKind};
    let Some(g) = m.run_grid.as_ref() else { return };
    let at = ratatui::layout::Position::new(me.column, me.row);
    let (row, col) = match me.kind {
        MouseEventKind::Down(MouseButton::Left) => {
            match cells(m, g)
                .into_iter()
                .find(|c| c.picture.contains(at) || c.caption.contains(at))
            {
                Some(c) => (c.row, c.col),
                None => return,
            }
        }
        MouseEventKind::ScrollDown => (
            (g.row + 1).min(g.layout.row_count().saturating_sub(1)),
            g.col,
        ),
        MouseEventKind::ScrollUp => (g.row.saturating_sub(1), g.col),
        _ => return,
    };
    if let Some(g) = m.run_grid.as_mut() {
        (g.row, g.col) = (row, col);
    }
}

/// The first image of a record, as a path.
fn image_path(m: &Model, r: &GenerationRecord) -> Option<std::path::PathBuf> {
    let out = r.outputs.first()?;
    Some(if out.path.is_absolute() {
        out.path.clone()
    } else {
        m.data_dir.join(&out.path)
    })
}

/// How many of the newest records are read at most to find a run's (the whole history when
/// the run's records are not all found before).
const PAGE: usize = 500;

/// Read the records of a run (newest first; stops once all its jobs are found).
pub fn load(store: &dyn HistoryStore, run: Id) -> Result<Vec<GenerationRecord>, String> {
    let query = Query::default();
    let mut cursor = None;
    let mut found: Vec<GenerationRecord> = Vec::new();
    loop {
        let page = store
            .page(&query, cursor, PAGE)
            .map_err(|e| format!("could not read the run's records: {e}"))?;
        for r in page.records {
            if r.run.as_ref().is_some_and(|i| i.id == run) {
                found.push(r);
            }
        }
        let of = found
            .first()
            .and_then(|r| r.run.as_ref())
            .map_or(u32::MAX, |i| i.of);
        let all = u32::try_from(found.len()).is_ok_and(|n| n >= of);
        match page.next {
            Some(next) if !all => cursor = Some(next),
            _ => break,
        }
    }
    if found.is_empty() {
        return Err(format!(
            "no record of run {} is left in history (deleted?)",
            run.short()
        ));
    }
    Ok(found)
}

// ---------------------------------------------------------------------------------------------
// Where things go

/// The grid on the screen: labels on the left and on top, the cells, the selected cell's
/// values under them; the window of rows and columns that holds the selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub frame: Rect,
    /// The column labels' line.
    pub header: Rect,
    /// The row labels' column.
    pub labels: Rect,
    pub grid: Rect,
    pub footer: Rect,
    pub cell_w: u16,
    pub cell_h: u16,
    pub first_row: usize,
    pub first_col: usize,
    pub vis_rows: usize,
    pub vis_cols: usize,
}

/// The smallest cell: a picture of 11×5 and its caption.
const MIN_W: u16 = 12;
const MIN_H: u16 = 6;

pub fn geometry(m: &Model, g: &RunGrid) -> Geometry {
    let frame = Rect::new(0, 0, m.width, m.height.saturating_sub(1));
    let inner = super::layout::inner(frame);
    let l = &g.layout;
    let label_w = if l.rows.labels.iter().any(|s| !s.is_empty()) {
        let widest = l.rows.labels.iter().map(|s| s.width()).max().unwrap_or(0);
        u16::try_from(widest + 1)
            .unwrap_or(u16::MAX)
            .min(24)
            .min(inner.width / 3)
    } else {
        0
    };
    let header_h = u16::from(l.cols.labels.iter().any(|s| !s.is_empty()));
    let footer_h = 2.min(inner.height);
    let top = inner.y + header_h;
    let grid = Rect::new(
        inner.x + label_w,
        top,
        inner.width.saturating_sub(label_w),
        inner.height.saturating_sub(header_h + footer_h),
    );
    let (rows, cols) = (l.row_count().max(1), l.col_count().max(1));
    let vis_rows = rows.min(usize::from((grid.height / MIN_H).max(1)));
    let vis_cols = cols.min(usize::from((grid.width / MIN_W).max(1)));
    let cell_h = u16::try_from(usize::from(grid.height) / vis_rows)
        .unwrap_or(CELL_H)
        .min(CELL_H);
    let cell_w = u16::try_from(usize::from(grid.width) / vis_cols)
        .unwrap_or(CELL_W)
        .min(2 * CELL_W);
    // A window that moves a whole window at a time and holds the selection.
    let first_row = g.row / vis_rows * vis_rows;
    let first_col = g.col / vis_cols * vis_cols;
    Geometry {
        frame,
        header: Rect::new(grid.x, inner.y, grid.width, header_h),
        labels: Rect::new(inner.x, top, label_w, grid.height),
        grid,
        footer: Rect::new(inner.x, grid.bottom(), inner.width, footer_h),
        cell_w,
        cell_h,
        first_row,
        first_col,
        vis_rows,
        vis_cols,
    }
}

/// One visible cell of the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub row: usize,
    pub col: usize,
    pub picture: Rect,
    pub caption: Rect,
    pub key: Option<PreviewKey>,
}

/// The visible cells of the page, row by row, with the thumbnail each shows.
pub fn cells(m: &Model, g: &RunGrid) -> Vec<Cell> {
    let geo = geometry(m, g);
    let mut out = Vec::new();
    let rows = g.layout.row_count();
    let cols = g.layout.col_count();
    for row in geo.first_row..(geo.first_row + geo.vis_rows).min(rows) {
        for col in geo.first_col..(geo.first_col + geo.vis_cols).min(cols) {
            let (r, c) = (
                u16::try_from(row - geo.first_row).unwrap_or(0),
                u16::try_from(col - geo.first_col).unwrap_or(0),
            );
            let x = geo.grid.x + c * geo.cell_w;
            let y = geo.grid.y + r * geo.cell_h;
            let picture = Rect::new(
                x,
                y,
                geo.cell_w.saturating_sub(1),
                geo.cell_h.saturating_sub(1),
            );
            let caption = Rect::new(x, y + geo.cell_h.saturating_sub(1), picture.width, 1);
            let key = match g.mark(g.page, row, col) {
                Mark::Done(i) if m.graphics != Graphics::None => {
                    g.records.as_ref().and_then(|rs| rs.get(i)).and_then(|r| {
                        let out = r.outputs.first()?;
                        if r.missing.contains(&out.path) {
                            return None;
                        }
                        Some(PreviewKey {
                            source: PreviewSource::Thumb {
                                path: image_path(m, r)?,
                                sha256: out.sha256.clone(),
                            },
                            cols: picture.width,
                            rows: picture.height,
                        })
                    })
                }
                _ => None,
            };
            out.push(Cell {
                row,
                col,
                picture,
                caption,
                key,
            });
        }
    }
    out
}

/// The thumbnail to ask for next: the selected cell's first, then the others.
pub fn wanted_thumb(m: &Model) -> Option<PreviewKey> {
    let g = m.run_grid.as_ref()?;
    let mut cells = cells(m, g);
    cells.sort_by_key(|c| (c.row, c.col) != (g.row, g.col));
    cells
        .into_iter()
        .filter_map(|c| c.key)
        .find(|k| m.preview.get(k).is_none() && !m.preview.failed_cells.iter().any(|(f, _)| f == k))
}
