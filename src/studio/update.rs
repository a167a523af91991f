//! The one place the studio's state changes: `update(model, msg) -> effects`. Pure: no I/O, no
//! clock, no terminal; the runtime carries out the effects and feeds results back as messages.

use super::keymap::{Action, Context, Key};
use super::layout;
use super::mask::{self, Op, PixRect, Shape};
pub use super::model::preview_key;
use super::model::{
    Compared, Confirm, Filter, Graphics, JobView, KEEP, Marked, Model, Notice, Overlay, PAGE, Pane,
    selected_image_path,
};
use super::model::{MaskBase, MaskEdit, PathInput};
use super::msg::{Effect, InputKind, Msg, PreviewSource, StoreOutcome};
use super::params;
use crate::api::InputImage;
use crate::api::request;
use crate::queue::{JobEvent, Submission};
use crate::sanitize;
use crate::store::{GenerationRecord, QueueMove, Status};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Apply a message. Returns the effects for the runtime.
pub fn update(m: &mut Model, msg: Msg) -> Vec<Effect> {
    let mut fx = Vec::new();
    match msg {
        Msg::Key(k) if k.kind != KeyEventKind::Release => key(m, k, &mut fx),
        Msg::Key(_) => {}
        Msg::Paste(text) => paste(m, &text, &mut fx),
        Msg::Resize(w, h) => {
            m.width = w;
            m.height = h;
            lineage_scroll(m);
            clamp_scroll(m);
            load_visible(m, &mut fx);
            // Inside tmux a resize often means another client attached, perhaps from a
            // terminal with other graphics.
            if m.in_tmux {
                fx.push(Effect::CheckTmuxClient);
            }
        }
        Msg::Tick(now) => {
            m.now = now;
            // Inside tmux, look every few seconds for another client in front of the studio
            // (an attach from another terminal need not resize or refocus anything).
            if m.in_tmux
                && m.tmux_checked
                    .is_none_or(|t| now - t >= chrono::Duration::seconds(TMUX_CHECK_SECS))
            {
                m.tmux_checked = Some(now);
                fx.push(Effect::CheckTmuxClient);
            }
        }
        Msg::Focus(on) => {
            m.focused = on;
            if on && m.in_tmux {
                fx.push(Effect::CheckTmuxClient);
            }
        }
        Msg::TmuxClientChanged => fx.push(Effect::Redetect { asked: false }),
        Msg::Queued(ids) => m.mine.extend(ids),
        Msg::GraphicsDetected {
            graphics,
            terminal,
            asked,
        } => graphics_detected(m, graphics, &terminal, asked),
        Msg::Mouse(me) => mouse(m, me, &mut fx),
        Msg::Tags(tags) => m.known_tags = tags,
        Msg::SpendLoaded(spend) => {
            let spent = crate::budget::Spent {
                today: spend.day(m.now),
                month: spend.month(m.now),
            };
            m.spend_history = Some((spent, m.spend));
        }
        Msg::Job(ev) => job_event(m, ev, &mut fx),
        Msg::HistoryPage {
            generation,
            offset,
            total,
            records,
            anchor,
        } => {
            if generation == m.history.generation {
                let page = offset / PAGE;
                m.history.pending.retain(|p| *p != page);
                m.history.total = total;
                m.history.loaded = true;
                let empty = records.is_empty();
                for (i, r) in records.into_iter().enumerate() {
                    m.history.rows.insert(offset + i, r);
                }
                if let Some((id, located)) = anchor {
                    follow_anchor(m, id, located);
                }
                trim_rows(m);
                if m.history.selected >= total {
                    m.history.selected = total.saturating_sub(1);
                }
                clamp_scroll(m);
                sync_selected_id(m);
                // An empty page (an empty history, a search without a match) leaves page 0
                // without a first row, which `load_visible` would ask for again at once: a busy
                // loop of store reads and redraws. Nothing more is needed after one. But an
                // empty page past the end (a search typed far down the list) moved the
                // selection back within `total`: those rows are still to be asked for.
                if !empty || (offset > 0 && total > 0) {
                    load_visible(m, &mut fx);
                }
            }
        }
        Msg::QueueLoaded(records) => {
            m.queue.jobs = records
                .into_iter()
                .filter(|r| !r.status.is_final())
                .map(|record| JobView {
                    record,
                    partial: None,
                    note: None,
                })
                .collect();
            group_runs(&mut m.queue.jobs);
            // A run found in the queue at start: the jobs of it not there have ended before
            // (counted as done; the failed ones were left in history).
            m.queue.runs.clear();
            tally_runs(m);
            let present: Vec<(crate::store::Id, u32)> = m
                .queue
                .runs
                .keys()
                .map(|id| {
                    let n = m
                        .queue
                        .jobs
                        .iter()
                        .filter(|j| j.record.run.as_ref().is_some_and(|r| r.id == *id))
                        .count();
                    (*id, u32::try_from(n).unwrap_or(u32::MAX))
                })
                .collect();
            for (id, n) in present {
                if let Some(t) = m.queue.runs.get_mut(&id) {
                    t.done = t.of.saturating_sub(n);
                }
                // Until its records come: some of those jobs may have failed, or been
                // interrupted when the studio quit.
                m.queue.recount.push(id);
                fx.push(Effect::LoadRun(id));
            }
        }
        Msg::PreviewReady(key, rendered) => {
            m.preview.insert(key, *rendered);
        }
        Msg::PreviewFailed(key, why) => {
            if key.source.is_cell() {
                m.preview.failed_cells.push((key, why));
                if m.preview.failed_cells.len() > super::model::CELL_CACHE {
                    m.preview.failed_cells.remove(0);
                }
            } else {
                m.preview.error = Some((key, why));
            }
        }
        Msg::EditorClosed(text) => {
            set_editor_text(m, text.trim_end_matches('\n'));
            m.focus = Pane::Editor;
        }
        Msg::Stored(outcome) => match outcome {
            StoreOutcome::Starred(r) => replace_row(m, r),
            StoreOutcome::Deleted(id) => {
                m.trash_undo.push(id);
                if m.trash_undo.len() > 100 {
                    m.trash_undo.remove(0);
                }
                let undo = m.keymap.hint(Context::History, Action::Undo);
                notice(
                    m,
                    format!("moved {} to the trash ({undo} undoes)", id.short()),
                    false,
                );
            }
            StoreOutcome::Restored(r) => {
                notice(m, format!("restored {}", r.id.short()), false);
            }
            StoreOutcome::Failed(e) => notice(m, e, true),
        },
        Msg::Problem(p) => notice(m, p, true),
        Msg::Notice(text) => notice(m, text, false),
        Msg::InputResolved(kind, input) => {
            // A mask file is also read as a selection, for the mask editor.
            if kind == InputKind::Mask {
                fx.push(Effect::ImportMask {
                    mask: input.path.clone(),
                    picture: m.params.images.first().map(|i| i.path.clone()),
                });
            }
            input_resolved(m, kind, input)
        }
        Msg::MaskBase {
            path,
            width,
            height,
            base,
        } => mask_base(m, path, width, height, base),
        Msg::MaskBaseFailed(path, why) => {
            if let Some(e) = m.mask_edit.as_mut().filter(|e| e.path == path) {
                e.error = Some(sanitize::line(&why).into_owned());
            }
        }
        Msg::Family(family) => {
            let id = family.id;
            m.family = Some(family);
            if m.pending_child.take() == Some(id) {
                jump_child(m, id, &mut fx);
            }
        }
        Msg::Lineage(id, tree) => lineage_loaded(m, id, tree),
        Msg::MaskImported(path, op) => mask_imported(m, path, op),
        Msg::InputsChecked { submission, result } => {
            inputs_checked(m, *submission, result, &mut fx)
        }
        Msg::RunLoaded(run, records) => {
            recount_run(m, run, &records);
            super::run_grid::loaded(m, run, records);
        }
        Msg::WildcardsLoaded(answers) => {
            m.wildcards.loaded(answers);
            // Worked out again with the values.
            m.run_preview_for.clear();
        }
        Msg::MaskSaved(path) => {
            let shown = shown_path(m, &path);
            m.params.mask = Some(InputImage::file(path));
            notice(
                m,
                format!("mask saved ({shown}): the next submit edits its transparent area"),
                false,
            );
        }
    }
    want_mask_base(m, &mut fx);
    want_preview(m, &mut fx);
    want_run_preview(m, &mut fx);
    fx
}

/// Work out again what the prompt expands to when it (or a parameter that changes the count or
/// the cost) changed, and ask for the wildcard files it names that were not read.
fn want_run_preview(m: &mut Model, fx: &mut Vec<Effect>) {
    let text = m.prompt();
    let p = &m.params;
    let key = format!(
        "{}\u{0}{}\u{0}{}\u{0}{:?}\u{0}{:?}",
        text, p.model, p.n, p.size, p.quality
    );
    if key == m.run_preview_for {
        return;
    }
    let missing = m.wildcards.missing(&text);
    if !missing.is_empty() {
        m.wildcards.asked.extend(missing.iter().cloned());
        fx.push(Effect::LoadWildcards(missing));
    }
    m.run_preview = super::runs::preview(&text, p, &m.catalog, m.provider.demo, &m.wildcards);
    m.run_preview_for = key;
}

fn notice(m: &mut Model, text: impl AsRef<str>, error: bool) {
    let text = sanitize::line(text.as_ref()).into_owned();
    m.notices.push(Notice {
        text,
        error,
        at: m.now,
    });
    if m.notices.len() > 50 {
        m.notices.remove(0);
    }
}

/// An error stays on the status line until a key is pressed after it has been up for a while.
fn acknowledge_notices(m: &mut Model) {
    let now = m.now;
    for n in m.notices.iter_mut().filter(|n| n.error) {
        if (now - n.at).num_seconds() >= super::model::NOTICE_SECS {
            n.error = false;
            n.at = now - chrono::Duration::seconds(super::model::NOTICE_SECS);
        }
    }
}

fn key(m: &mut Model, k: KeyEvent, fx: &mut Vec<Effect>) {
    acknowledge_notices(m);
    let key = Key::from_event(&k);
    // Redraw and suspend act on the terminal, not on what is open: they work from every view
    // and popup and leave it open (a redraw must not answer a confirmation "no"), unless the
    // view binds the key to something else (Ctrl-L clears the prompt in the editor).
    if let Some(action @ (Action::Redraw | Action::Suspend)) = m.keymap.get(Context::Global, key) {
        let own = m.keymap.get(active_context(m), key);
        if own.is_none() || own == Some(action) {
            return act(m, action, fx);
        }
    }
    // Overlays take keys first.
    if let Some(overlay) = m.overlay.take() {
        match overlay {
            Overlay::Confirm(what) => {
                match m.keymap.lookup(Context::Confirm, key) {
                    Some(Action::ForceQuit) => quit(m, fx),
                    Some(Action::Yes) => match what {
                        Confirm::ShutDownModel(s, _) | Confirm::Spend(s, _) => {
                            fx.push(Effect::Submit(*s))
                        }
                        Confirm::Run(jobs, _) => fx.push(Effect::SubmitRun(jobs)),
                        Confirm::Batch(lines, _) => fx.push(Effect::SendBatch(lines)),
                        Confirm::Delete(r) => fx.push(Effect::Delete(r.id)),
                        Confirm::Quit => quit(m, fx),
                    },
                    // Jobs that outlive the studio: c cancels them on the way out.
                    _ if matches!(what, Confirm::Quit)
                        && m.jobs_outlive
                        && key == Key::new(KeyCode::Char('c'), KeyModifiers::NONE) =>
                    {
                        // Only this studio's: the service's queue also holds the jobs of other
                        // clients (an `easel generate` in another terminal, another studio).
                        for j in &m.queue.jobs {
                            if !j.record.status.is_final() && m.mine.contains(&j.record.id) {
                                fx.push(Effect::Cancel(j.record.id));
                            }
                        }
                        quit(m, fx);
                    }
                    // Any other key says no.
                    _ => {}
                }
                return;
            }
            Overlay::Help | Overlay::Details(_) => {
                // Long popups scroll; any other key closes them.
                let page = m.height.saturating_sub(6).max(1);
                let scroll = match m.keymap.lookup(Context::Popup, key) {
                    Some(Action::ForceQuit) => {
                        quit(m, fx);
                        return;
                    }
                    Some(Action::Down) => Some(m.overlay_scroll.saturating_add(1)),
                    Some(Action::Up) => Some(m.overlay_scroll.saturating_sub(1)),
                    Some(Action::PageDown) => Some(m.overlay_scroll.saturating_add(page)),
                    Some(Action::PageUp) => Some(m.overlay_scroll.saturating_sub(page)),
                    Some(Action::Top) => Some(0),
                    Some(Action::JumpParent) => {
                        if let Overlay::Details(r) = &overlay {
                            jump_parent(m, r, fx);
                        }
                        return;
                    }
                    Some(Action::JumpChild) => {
                        if let Overlay::Details(r) = &overlay {
                            jump_child(m, r.id, fx);
                        }
                        return;
                    }
                    Some(Action::ShowLineage) => {
                        if let Overlay::Details(r) = &overlay {
                            open_lineage(m, r.id, fx);
                        }
                        return;
                    }
                    _ => None,
                };
                if let Some(scroll) = scroll {
                    m.overlay_scroll = scroll.min(overlay_len(m, &overlay).saturating_sub(page));
                    m.overlay = Some(overlay);
                }
                return;
            }
        }
    }
    // The mask editor takes the keys while it is open.
    if m.mask_edit.is_some() {
        if let Some(action) = m.keymap.lookup(Context::Mask, key) {
            mask_act(m, action, fx);
        }
        return;
    }
    // The lineage view takes the keys while it is open.
    if m.lineage.is_some() {
        if let Some(action) = m.keymap.lookup(Context::Lineage, key) {
            lineage_act(m, action, fx);
        }
        return;
    }
    // A path being typed for the reference strip.
    if m.path_input.is_some() {
        path_key(m, k, fx);
        return;
    }
    // The compare screen takes the keys while it is open.
    if m.compare.is_some() {
        if let Some(action) = m.keymap.lookup(Context::Compare, key) {
            compare_act(m, action, fx);
        }
        return;
    }
    // A run's grid takes the history's keys while it is open.
    if m.run_grid.is_some() {
        match m.keymap.lookup(Context::History, key) {
            Some(a @ (Action::Quit | Action::ForceQuit | Action::Help | Action::Suspend)) => {
                act(m, a, fx)
            }
            Some(a) => super::run_grid::act(m, a, fx),
            None => {}
        }
        return;
    }
    // The history search line is a text input of its own.
    if m.focus == Pane::History && m.history.search.is_some() {
        search_key(m, k, fx);
        return;
    }
    // And the tags being typed for a history record.
    if m.focus == Pane::History && m.tag_input.is_some() {
        tag_key(m, k, fx);
        return;
    }
    // So is a size being typed in the parameters pane.
    if m.focus == Pane::Params && m.size_input.is_some() {
        size_key(m, k, fx);
        return;
    }
    // On the size row, a digit starts typing a size.
    if m.focus == Pane::Params
        && focused_param(m) == Some(params::Row::Size)
        && k.modifiers.difference(KeyModifiers::SHIFT).is_empty()
        && matches!(k.code, KeyCode::Char(c) if c.is_ascii_digit())
    {
        if let KeyCode::Char(c) = k.code {
            m.size_input = Some(c.to_string());
        }
        return;
    }
    let context = m.focus.context();
    match m.keymap.lookup(context, key) {
        Some(action) => act(m, action, fx),
        // Typed text is held to the same rule as pasted text (a paste without bracketed paste
        // arrives as keys): characters that must not reach the terminal are dropped.
        None if m.focus == Pane::Editor
            && !matches!(k.code, KeyCode::Char(c) if sanitize::is_unsafe(c)) =>
        {
            m.editor.input(k);
        }
        None => {}
    }
}

/// A click focuses the pane under it and picks the row clicked; the wheel scrolls the list
/// under it. Popups and text inputs keep their keys (a click closes a popup).
fn mouse(m: &mut Model, me: crossterm::event::MouseEvent, fx: &mut Vec<Effect>) {
    use crossterm::event::{MouseButton, MouseEventKind};
    let at = ratatui::layout::Position::new(me.column, me.row);
    if m.mask_edit.is_some() && m.overlay.is_none() {
        mask_mouse(m, me);
        return;
    }
    if m.lineage.is_some() && m.overlay.is_none() {
        match me.kind {
            MouseEventKind::ScrollDown => lineage_act(m, Action::Down, fx),
            MouseEventKind::ScrollUp => lineage_act(m, Action::Up, fx),
            _ => {}
        }
        return;
    }
    // A run's grid: a click picks the cell under it.
    if m.run_grid.is_some() && m.overlay.is_none() {
        super::run_grid::mouse(m, me);
        return;
    }
    // The gallery: a click picks the cell under it, the wheel moves a row.
    if m.gallery_shown() && m.overlay.is_none() {
        let cols = super::gallery::geometry(m.width, m.height).cols;
        let cols = i64::try_from(cols).unwrap_or(1);
        match me.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                let hit = super::gallery::cells(m)
                    .into_iter()
                    .find(|c| c.picture.contains(at) || c.caption.contains(at));
                if let Some(cell) = hit {
                    let delta = cell.pos as i64 - m.history.selected as i64;
                    move_history(m, delta, fx);
                }
            }
            MouseEventKind::ScrollDown => move_history(m, cols, fx),
            MouseEventKind::ScrollUp => move_history(m, -cols, fx),
            _ => {}
        }
        return;
    }
    let a = m.areas();
    let pane = [
        (Pane::Editor, a.editor),
        (Pane::Inputs, a.inputs),
        (Pane::Params, a.params),
        (Pane::Queue, a.queue),
        (Pane::History, a.history),
    ]
    .into_iter()
    .find(|(_, r)| r.contains(at))
    .map(|(p, _)| p);
    match me.kind {
        MouseEventKind::Down(MouseButton::Left) => {
            if m.overlay.is_some() {
                m.overlay = None;
                return;
            }
            let Some(pane) = pane else { return };
            m.focus = pane;
            // A click on an input of the strip selects it.
            if pane == Pane::Inputs
                && let Some(cell) = super::strip::cells(m)
                    .into_iter()
                    .find(|c| c.picture.contains(at) || c.caption.contains(at))
            {
                m.input_cursor = cell.index;
            }
            let inner = layout::inner(match pane {
                Pane::Queue => a.queue,
                Pane::History => a.history,
                _ => return,
            });
            if !inner.contains(at) {
                return;
            }
            let line = usize::from(at.y - inner.y);
            match pane {
                Pane::Queue => {
                    let rows = usize::from(inner.height);
                    let start = m.queue.selected.saturating_sub(rows.saturating_sub(1));
                    if start + line < m.queue.jobs.len() {
                        m.queue.selected = start + line;
                    }
                }
                _ => {
                    // The search line, when open, takes the first row.
                    let offset = usize::from(m.history.search.is_some() || m.tag_input.is_some());
                    if let Some(row) = line.checked_sub(offset) {
                        let target = m.history.scroll + row;
                        if target < m.history.total {
                            move_history(m, target as i64 - m.history.selected as i64, fx);
                        }
                    }
                }
            }
        }
        MouseEventKind::ScrollDown | MouseEventKind::ScrollUp if m.overlay.is_none() => {
            let delta = if me.kind == MouseEventKind::ScrollDown {
                3
            } else {
                -3
            };
            match pane {
                Some(Pane::History) => move_history(m, delta, fx),
                Some(Pane::Queue) => {
                    m.queue.selected = step_index(m.queue.selected, delta, m.queue.jobs.len())
                }
                _ => {}
            }
        }
        _ => {}
    }
}

/// Keys while tags are typed: `+tag` (or just `tag`) adds, `-tag` removes; Tab completes the
/// word being typed from the tags in use; Enter applies to the selected record; Esc leaves.
fn tag_key(m: &mut Model, k: KeyEvent, fx: &mut Vec<Effect>) {
    let Some(text) = m.tag_input.as_mut() else {
        return;
    };
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    match k.code {
        KeyCode::Esc => m.tag_input = None,
        KeyCode::Backspace => {
            text.pop();
        }
        KeyCode::Char('c') if ctrl => quit(m, fx),
        KeyCode::Char('u') if ctrl => text.clear(),
        KeyCode::Tab => {
            let completed = complete_tag(text, &m.known_tags);
            *text = completed;
        }
        KeyCode::Char(c) if !ctrl && !sanitize::is_unsafe(c) && text.chars().count() < 200 => {
            text.push(c);
        }
        KeyCode::Enter => {
            let (mut add, mut remove) = (Vec::new(), Vec::new());
            for word in text.split_whitespace() {
                match word.strip_prefix('-') {
                    Some(t) => remove.push(t.to_string()),
                    None => add.push(word.trim_start_matches('+').to_string()),
                }
            }
            m.tag_input = None;
            if let Some(r) = m.history.selected_record()
                && !(add.is_empty() && remove.is_empty())
            {
                fx.push(Effect::Edit(
                    r.id,
                    crate::store::UserEdit::Retag { add, remove },
                ));
            }
        }
        _ => {}
    }
}

/// Complete the last word of `text` (after its + or -) from `known`: the one tag that starts
/// with it, or what all the candidates share.
pub fn complete_tag(text: &str, known: &[String]) -> String {
    let start = text.rfind(' ').map_or(0, |i| i + 1);
    let (head, word) = text.split_at(start);
    let (sign, stem) = match word.chars().next() {
        Some(c @ ('+' | '-')) => (c.to_string(), &word[1..]),
        _ => (String::new(), word),
    };
    let matches: Vec<&String> = known.iter().filter(|t| t.starts_with(stem)).collect();
    let Some(first) = matches.first() else {
        return text.to_string();
    };
    let mut common = first.to_string();
    for t in &matches[1..] {
        while !t.starts_with(common.as_str()) {
            common.pop();
        }
    }
    let done = if matches.len() == 1 { " " } else { "" };
    format!("{head}{sign}{common}{done}")
}

fn focused_param(m: &Model) -> Option<params::Row> {
    params::rows(&m.catalog, &m.params)
        .get(m.param_cursor)
        .copied()
}

/// Keys while a size is typed: characters of WIDTHxHEIGHT, Backspace, Enter sets it when the
/// model takes it, Esc leaves it as it was.
fn size_key(m: &mut Model, k: KeyEvent, fx: &mut Vec<Effect>) {
    let Some(typed) = m.size_input.as_mut() else {
        return;
    };
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    match k.code {
        KeyCode::Esc => m.size_input = None,
        KeyCode::Backspace => {
            typed.pop();
        }
        KeyCode::Char('c') if ctrl => quit(m, fx),
        KeyCode::Char('u') if ctrl => typed.clear(),
        KeyCode::Char(c)
            if !ctrl
                && (c.is_ascii_digit() || matches!(c, 'x' | 'X' | '×'))
                && typed.chars().count() < 12 =>
        {
            typed.push(c);
        }
        KeyCode::Enter => {
            let typed = typed.clone();
            match params::check_typed_size(&m.catalog, &m.provider.rules, &m.params, &typed) {
                Ok(size) => {
                    m.params.size = Some(size);
                    m.size_input = None;
                }
                Err(e) => notice(m, format!("size not set: {e}"), true),
            }
        }
        _ => {}
    }
}

fn search_key(m: &mut Model, k: KeyEvent, fx: &mut Vec<Effect>) {
    if m.history.search.is_none() {
        return;
    }
    match m.keymap.lookup(Context::SearchLine, Key::from_event(&k)) {
        Some(Action::ClearSearch) => {
            m.history.search = None;
            if !m.history.text.is_empty() {
                m.history.text.clear();
                reload_history(m, fx, true);
            }
        }
        Some(Action::KeepSearch) => m.history.search = None,
        Some(Action::ClearLine) => set_search(m, String::new(), fx),
        Some(Action::Down) => move_history(m, 1, fx),
        Some(Action::Up) => move_history(m, -1, fx),
        Some(Action::ForceQuit) => quit(m, fx),
        Some(_) => {}
        None => match k.code {
            KeyCode::Backspace => {
                let mut text = m.history.search.clone().unwrap_or_default();
                text.pop();
                set_search(m, text, fx);
            }
            KeyCode::Char(c)
                if !k.modifiers.contains(KeyModifiers::CONTROL) && !sanitize::is_unsafe(c) =>
            {
                let mut text = m.history.search.clone().unwrap_or_default();
                text.push(c);
                set_search(m, text, fx);
            }
            _ => {}
        },
    }
}

/// The search line's text changed: search again.
fn set_search(m: &mut Model, text: String, fx: &mut Vec<Effect>) {
    m.history.text = text.clone();
    m.history.search = Some(text);
    reload_history(m, fx, true);
}

fn paste(m: &mut Model, text: &str, fx: &mut Vec<Effect>) {
    let clean = sanitize::text(text);
    // A path being typed for the strip takes a pasted path (one line, trimmed).
    if let Some(input) = m.path_input.as_mut() {
        input.text.push_str(sanitize::line(clean.trim()).as_ref());
        return;
    }
    // The mask editor takes no text.
    if m.mask_edit.is_some() {
        return;
    }
    if m.focus == Pane::History
        && let Some(search) = m.history.search.as_mut()
    {
        search.push_str(&sanitize::line(&clean));
        m.history.text = search.clone();
        reload_history(m, fx, true);
        return;
    }
    // From any other pane a paste is a prompt: it goes to the editor, which takes the focus.
    m.focus = Pane::Editor;
    m.editor.insert_str(clean);
}

fn quit(m: &mut Model, fx: &mut Vec<Effect>) {
    m.quitting = true;
    fx.push(Effect::Quit);
}

fn act(m: &mut Model, action: Action, fx: &mut Vec<Effect>) {
    match action {
        Action::NextPane | Action::PrevPane => {
            let i = Pane::ORDER.iter().position(|p| *p == m.focus).unwrap_or(0);
            let n = Pane::ORDER.len();
            let mut next = i;
            // The reference strip is in the cycle only while there are inputs.
            loop {
                next = if action == Action::NextPane {
                    (next + 1) % n
                } else {
                    (next + n - 1) % n
                };
                if Pane::ORDER[next] != Pane::Inputs || m.has_inputs() || next == i {
                    break;
                }
            }
            m.focus = Pane::ORDER[next];
        }
        Action::Help => {
            m.overlay = Some(Overlay::Help);
            m.overlay_scroll = 0;
        }
        Action::ForceQuit => quit(m, fx),
        Action::Quit => {
            let active = if m.jobs_outlive {
                m.queue
                    .jobs
                    .iter()
                    .filter(|j| !j.record.status.is_final())
                    .count()
            } else {
                m.queue.running()
            };
            if active > 0 {
                m.overlay = Some(Overlay::Confirm(Confirm::Quit));
            } else {
                quit(m, fx);
            }
        }
        Action::Suspend => fx.push(Effect::Suspend),
        Action::Redraw => fx.push(Effect::Redetect { asked: true }),
        Action::Zoom => {
            m.zoom = !m.zoom;
            clamp_scroll(m);
            load_visible(m, fx);
        }
        Action::FocusEditor => m.focus = Pane::Editor,
        Action::Submit | Action::SubmitFront => submit(m, action == Action::SubmitFront, fx),
        Action::LeaveEditor => m.focus = Pane::History,
        Action::ExternalEditor => fx.push(Effect::OpenEditor(m.prompt())),
        Action::ClearPrompt => {
            m.editor.clear();
        }
        Action::Up
        | Action::Down
        | Action::PageUp
        | Action::PageDown
        | Action::Top
        | Action::Bottom => {
            let page = if m.gallery_shown() {
                i64::try_from(super::gallery::visible(m.width, m.height)).unwrap_or(1)
            } else {
                i64::from(layout::inner(m.areas().history).height.max(1))
            };
            // In the gallery, up and down move a row of the grid.
            let row = if m.gallery_shown() && m.focus == Pane::History {
                i64::try_from(super::gallery::geometry(m.width, m.height).cols).unwrap_or(1)
            } else {
                1
            };
            let delta: i64 = match action {
                Action::Up => -row,
                Action::Down => row,
                Action::PageUp => -page,
                Action::PageDown => page,
                Action::Top => i64::MIN / 2,
                _ => i64::MAX / 2,
            };
            match m.focus {
                Pane::Params => {
                    let n = params::rows(&m.catalog, &m.params).len();
                    // In two columns, up and down stay in the column.
                    let columns = if m.areas().compact_params { 1 } else { 2 };
                    let wanted = m.param_cursor as i64 + delta.saturating_mul(columns);
                    if delta.abs() > 1 || (0..n as i64).contains(&wanted) {
                        m.param_cursor =
                            step_index(m.param_cursor, delta.saturating_mul(columns), n);
                    }
                }
                Pane::Queue => {
                    m.queue.selected = step_index(m.queue.selected, delta, m.queue.jobs.len())
                }
                Pane::History => move_history(m, delta, fx),
                Pane::Editor | Pane::Inputs => {}
            }
        }
        Action::TypeValue => {
            if focused_param(m) == Some(params::Row::Size) {
                m.size_input = Some(String::new());
            } else {
                notice(
                    m,
                    "only the size can be typed: h/l step the other values",
                    false,
                );
            }
        }
        Action::NextValue | Action::PrevValue => {
            let rows = params::rows(&m.catalog, &m.params);
            if let Some(row) = rows.get(m.param_cursor.min(rows.len().saturating_sub(1))) {
                if !params::step(
                    &m.catalog,
                    &m.provider.rules,
                    &mut m.params,
                    *row,
                    action == Action::NextValue,
                ) {
                    let why = params::why_fixed(&m.catalog, &m.provider.rules, &m.params, *row);
                    notice(m, why, false);
                }
                let n = params::rows(&m.catalog, &m.params).len();
                m.param_cursor = m.param_cursor.min(n.saturating_sub(1));
            }
        }
        Action::Cancel => {
            let ended = m.focus == Pane::Queue
                && m.queue
                    .selected_job()
                    .is_some_and(|j| j.record.status.is_final());
            if ended {
                // An ended job in the queue pane: x dismisses it (it stays in history).
                m.queue.jobs.remove(m.queue.selected);
                m.queue.selected = m.queue.selected.min(m.queue.jobs.len().saturating_sub(1));
            } else if let Some(id) = focused_job_id(m) {
                fx.push(Effect::Cancel(id));
            }
        }
        Action::Retry => match m.queue.selected_job() {
            Some(j) if j.record.status.can_retry() => fx.push(Effect::Retry(j.record.id)),
            Some(_) => notice(
                m,
                "only a failed, cancelled or interrupted job can be retried",
                false,
            ),
            None => {}
        },
        Action::MoveUp | Action::MoveDown | Action::MoveFront => {
            if let Some(j) = m
                .queue
                .selected_job()
                .filter(|j| j.record.status == Status::Queued)
            {
                let how = match action {
                    Action::MoveUp => QueueMove::Up,
                    Action::MoveDown => QueueMove::Down,
                    _ => QueueMove::Front,
                };
                fx.push(Effect::MoveJob(j.record.id, how));
            }
        }
        Action::PauseAll => fx.push(Effect::Pause(!m.queue.paused)),
        Action::PauseRun | Action::CancelRun | Action::RetryRun => run_act(m, action, fx),
        Action::SendBatch => send_batch(m, fx),
        Action::Search => m.history.search = Some(m.history.text.clone()),
        Action::ClearSearch => {
            if !m.history.text.is_empty() {
                m.history.text.clear();
                reload_history(m, fx, true);
            }
        }
        Action::Details => {
            if let Some(r) = m.history.selected_record() {
                let id = r.id;
                m.overlay = Some(Overlay::Details(Box::new(r.clone())));
                m.overlay_scroll = 0;
                // Its lineage (parents' prompts, children) is read from the store.
                if m.family.as_ref().is_none_or(|f| f.id != id) {
                    m.family = None;
                    fx.push(Effect::LoadFamily(id));
                }
            }
        }
        Action::Reuse => {
            let record = match m.focus {
                Pane::Queue => m.queue.selected_job().map(|j| j.record.clone()),
                _ => m.history.selected_record().cloned(),
            };
            if let Some(r) = record {
                reuse(m, &r);
            }
        }
        Action::Rerun => {
            if let Some(r) = m.history.selected_record().cloned() {
                if r.status.can_retry() {
                    fx.push(Effect::Retry(r.id));
                } else if !r.status.is_final() {
                    notice(m, "that one is still in the queue", false);
                } else {
                    let mut p = r.params.clone();
                    p.prompt = r.prompt.clone();
                    fx.push(Effect::Submit(Submission {
                        params: p,
                        provider: m.provider.name.clone(),
                        front: false,
                        parent: Some(r.id),
                        run: None,
                    }));
                }
            }
        }
        Action::Star => {
            if let Some(r) = m.history.selected_record() {
                fx.push(Effect::Star(r.id, !r.starred));
            }
        }
        Action::EditTags => {
            if m.history.selected_record().is_some() {
                m.tag_input = Some(String::new());
                fx.push(Effect::LoadTags);
            }
        }
        Action::Rate0
        | Action::Rate1
        | Action::Rate2
        | Action::Rate3
        | Action::Rate4
        | Action::Rate5 => {
            let n = rating_of(action);
            if let Some(r) = m.history.selected_record() {
                fx.push(Effect::Edit(r.id, crate::store::UserEdit::Rating(n)));
            }
        }
        Action::Delete => {
            if let Some(r) = m.history.selected_record() {
                m.overlay = Some(Overlay::Confirm(Confirm::Delete(Box::new(r.clone()))));
            }
        }
        Action::Undo => match m.trash_undo.pop() {
            Some(id) => fx.push(Effect::Restore(id)),
            None => notice(m, "nothing to undo: no delete in this session", false),
        },
        Action::CopyPrompt => {
            if let Some(r) = m.history.selected_record() {
                fx.push(Effect::Copy(r.prompt.clone()));
                notice(m, "prompt copied to the clipboard (OSC 52)", false);
            }
        }
        Action::CopyPath => {
            if let Some(path) = selected_image_path(m) {
                fx.push(Effect::Copy(path.display().to_string()));
                notice(m, "path copied to the clipboard (OSC 52)", false);
            }
        }
        Action::FullView => match selected_image_path(m) {
            Some(path) => fx.push(Effect::FullView(path)),
            None => notice(m, "no image to show", false),
        },
        Action::OpenViewer => match selected_image_path(m) {
            Some(path) => fx.push(Effect::OpenViewer(path)),
            None => notice(m, "no image to open", false),
        },
        Action::Filter => {
            m.history.filter = match &m.history.filter {
                Filter::All => Filter::Starred,
                Filter::Starred => Filter::Failed,
                Filter::Failed => Filter::Cancelled,
                Filter::Cancelled => Filter::Interrupted,
                Filter::Interrupted => Filter::Model(m.params.model.clone()),
                Filter::Model(_) => Filter::All,
            };
            reload_history(m, fx, true);
        }
        // Keys of the search line and of confirmations, handled where those take keys.
        Action::KeepSearch | Action::ClearLine | Action::Yes => {}
        Action::NextImage => {
            let n = m.history.selected_record().map_or(0, |r| r.outputs.len());
            if n > 1 {
                m.history.image = (m.history.image + 1) % n;
            }
        }
        Action::Mark => mark(m),
        Action::RunGrid => super::run_grid::open(m, fx),
        Action::Gallery => {
            m.gallery = !m.gallery;
            m.focus = Pane::History;
            clamp_scroll(m);
            load_visible(m, fx);
        }
        Action::Left | Action::Right if m.gallery_shown() => {
            move_history(m, if action == Action::Left { -1 } else { 1 }, fx);
        }
        Action::Left | Action::Right if m.focus == Pane::Inputs => {
            let n = m.params.images.len();
            m.input_cursor = if action == Action::Left {
                m.input_cursor.saturating_sub(1)
            } else {
                (m.input_cursor + 1).min(n.saturating_sub(1))
            };
        }
        Action::Left | Action::Right => {}
        Action::CompareMarked => open_compare(m),
        Action::EditThis => {
            edit_this(m);
        }
        Action::AddReference => add_reference(m),
        Action::AddFile => {
            m.path_input = Some(PathInput {
                kind: InputKind::Reference,
                text: String::new(),
            });
        }
        Action::LoadMask => {
            m.path_input = Some(PathInput {
                kind: InputKind::Mask,
                text: String::new(),
            });
        }
        Action::ShowLineage => {
            if let Some(id) = m.history.selected_record().map(|r| r.id) {
                open_lineage(m, id, fx);
            }
        }
        Action::GoToRecord | Action::CloseLineage => {}
        Action::JumpParent => {
            if let Some(r) = m.history.selected_record().cloned() {
                jump_parent(m, &r, fx);
            }
        }
        Action::JumpChild => {
            if let Some(id) = m.history.selected_record().map(|r| r.id) {
                jump_child(m, id, fx);
            }
        }
        Action::MoveLeft | Action::MoveRight => move_input(m, action == Action::MoveLeft),
        Action::RemoveInput => remove_input(m),
        Action::Fidelity => {
            let model = m.params.model.clone();
            let takes = m
                .catalog
                .get(&model)
                .is_none_or(|s| s.accepts(crate::catalog::Field::InputFidelity));
            if !takes {
                notice(
                    m,
                    format!("{} takes no input fidelity", sanitize::line(&model)),
                    false,
                );
            } else if m.params.images.is_empty() {
                notice(m, "input fidelity is for edits: add a picture first", false);
            } else {
                m.params.input_fidelity = match m.params.input_fidelity.as_deref() {
                    None => Some("high".to_string()),
                    Some("high") => Some("low".to_string()),
                    _ => None,
                };
                let shown = m.params.input_fidelity.as_deref().unwrap_or("default");
                notice(
                    m,
                    format!("input fidelity {shown}: how closely the pictures' features are kept"),
                    false,
                );
            }
        }
        Action::RemoveMask => {
            if m.params.mask.take().is_some() {
                notice(m, "mask removed: the whole picture may change", false);
            }
            if !m.has_inputs() {
                m.focus = Pane::Editor;
            }
        }
        Action::PaintMask => {
            // From the history, on the selected image (and only if it has one).
            if m.focus != Pane::History || edit_this(m) {
                open_mask(m, fx);
            }
        }
        // Mask-editor actions do nothing elsewhere.
        Action::FarLeft
        | Action::FarRight
        | Action::FarUp
        | Action::FarDown
        | Action::Narrower
        | Action::Wider
        | Action::Shorter
        | Action::Taller
        | Action::MaskShape
        | Action::MaskAdd
        | Action::MaskSubtract
        | Action::MaskInvert
        | Action::MaskClear
        | Action::MaskSave
        | Action::MaskLeave => {}
        // Compare-screen actions do nothing elsewhere.
        Action::Blink
        | Action::NextCompared
        | Action::PrevCompared
        | Action::Reject
        | Action::CloseCompare => {}
    }
}

/// The rating a `rateN` action gives (0 clears).
fn rating_of(action: Action) -> u8 {
    match action {
        Action::Rate1 => 1,
        Action::Rate2 => 2,
        Action::Rate3 => 3,
        Action::Rate4 => 4,
        Action::Rate5 => 5,
        _ => 0,
    }
}

/// Mark (or unmark) the selected history image for comparing.
fn mark(m: &mut Model) {
    let Some(r) = m.history.selected_record() else {
        return;
    };
    if r.outputs.is_empty() {
        notice(m, "no image to mark: this generation made none", false);
        return;
    }
    let image = m.history.image.min(r.outputs.len() - 1);
    let (id, short) = (r.id, r.id.short());
    if let Some(i) = m
        .marked
        .iter()
        .position(|x| x.record.id == id && x.image == image)
    {
        m.marked.remove(i);
        notice(
            m,
            format!("unmarked {short} ({} marked)", m.marked.len()),
            false,
        );
        return;
    }
    if m.marked.len() >= super::compare::MAX {
        notice(
            m,
            format!(
                "at most {} images are compared: unmark one first (m on it)",
                super::compare::MAX
            ),
            true,
        );
        return;
    }
    let record = r.clone();
    m.marked.push(Marked { record, image });
    let n = m.marked.len();
    let hint = m.keymap.hint(Context::History, Action::CompareMarked);
    notice(
        m,
        if n >= 2 {
            format!("marked {short}: {n} marked, {hint} compares them")
        } else {
            format!("marked {short}: mark another to compare")
        },
        false,
    );
}

/// Open the compare screen: the marked images, or else the images of the selected generation.
fn open_compare(m: &mut Model) {
    let items: Vec<Marked> = if m.marked.len() >= 2 {
        m.marked.clone()
    } else {
        match m.history.selected_record() {
            Some(r) if r.outputs.len() >= 2 => (0..r.outputs.len().min(super::compare::MAX))
                .map(|image| Marked {
                    record: r.clone(),
                    image,
                })
                .collect(),
            _ => {
                let mark = m.keymap.hint(Context::History, Action::Mark);
                notice(
                    m,
                    format!(
                        "nothing to compare: mark 2–4 images with {mark} (or select a generation of several images)"
                    ),
                    true,
                );
                return;
            }
        }
    };
    m.compare = Some(Compared {
        items,
        blink: false,
        shown: 0,
    });
}

fn compare_act(m: &mut Model, action: Action, fx: &mut Vec<Effect>) {
    let Some(c) = m.compare.as_mut() else { return };
    let n = c.items.len().max(1);
    match action {
        Action::ForceQuit => quit(m, fx),
        Action::CloseCompare | Action::Quit => m.compare = None,
        Action::Blink => c.blink = !c.blink,
        Action::NextCompared => c.shown = (c.shown + 1) % n,
        Action::PrevCompared => c.shown = (c.shown + n - 1) % n,
        Action::Rate0
        | Action::Rate1
        | Action::Rate2
        | Action::Rate3
        | Action::Rate4
        | Action::Rate5 => {
            let rating = rating_of(action);
            if let Some(item) = c.items.get(c.shown) {
                fx.push(Effect::Edit(
                    item.record.id,
                    crate::store::UserEdit::Rating(rating),
                ));
            }
        }
        Action::Reject if c.shown < c.items.len() => {
            let gone = c.items.remove(c.shown);
            let id = gone.record.id;
            // Every image of that generation goes with it (a record is deleted whole).
            c.items.retain(|x| x.record.id != id);
            c.shown = c.shown.min(c.items.len().saturating_sub(1));
            m.marked.retain(|x| x.record.id != id);
            fx.push(Effect::Delete(id));
            if c.items.len() < 2 {
                m.compare = None;
            }
        }
        Action::Help => {
            m.overlay = Some(Overlay::Help);
            m.overlay_scroll = 0;
        }
        // Edit from the shown one: it becomes the picture to edit.
        Action::EditThis => {
            let shown = c.items.get(c.shown).and_then(|item| {
                let out = item.record.outputs.get(item.image)?;
                let path = if out.path.is_absolute() {
                    out.path.clone()
                } else {
                    m.data_dir.join(&out.path)
                };
                Some(InputImage {
                    path,
                    record: Some(item.record.id.to_string()),
                    index: Some(u32::try_from(item.image + 1).unwrap_or(1)),
                })
            });
            if let Some(input) = shown {
                m.compare = None;
                edit_input(m, input);
            }
        }
        _ => {}
    }
}

/// How many lines a scrolling popup holds (an upper bound is enough: it only limits scrolling).
fn overlay_len(m: &Model, overlay: &Overlay) -> u16 {
    let lines = match overlay {
        Overlay::Help => super::help::line_count(&m.keymap, m.focus),
        Overlay::Details(r) => {
            24 + r.outputs.len()
                + r.params.images.len()
                + r.lineage().len()
                + m.family.as_ref().map_or(1, |f| f.children.len().min(13))
                + 1
                + r.prompt.lines().count()
                + r.revised_prompt.as_deref().map_or(0, |p| p.lines().count())
                + r.prompt.chars().count() / 60
        }
        Overlay::Confirm(_) => 0,
    };
    lines.min(usize::from(u16::MAX)) as u16
}

fn step_index(current: usize, delta: i64, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    (current as i64)
        .saturating_add(delta)
        .clamp(0, len as i64 - 1) as usize
}

fn focused_job_id(m: &Model) -> Option<crate::store::Id> {
    match m.focus {
        Pane::History => m
            .history
            .selected_record()
            .filter(|r| !r.status.is_final())
            .map(|r| r.id),
        _ => m.queue.selected_job().map(|j| j.record.id),
    }
}

/// Replace the editor's text (cleaned of unsafe characters) as an edit, so Ctrl-U (undo) brings
/// the old text back, with the cursor at the end.
fn set_editor_text(m: &mut Model, text: &str) {
    let text = sanitize::text(text);
    m.editor.select_all();
    if text.is_empty() {
        m.editor.cut();
    } else {
        m.editor.insert_str(text.as_ref());
    }
    m.editor.cancel_selection();
    m.editor.move_cursor(ratatui_textarea::CursorMove::Bottom);
    m.editor.move_cursor(ratatui_textarea::CursorMove::End);
}

fn reuse(m: &mut Model, r: &GenerationRecord) {
    set_editor_text(m, &r.prompt);
    let mut p = r.params.clone();
    p.prompt.clear();
    // A reused edit comes back with its pictures and mask, shown in the reference strip (a
    // variation as an edit of its picture: the studio writes prompts).
    p.variation = false;
    m.input_cursor = 0;
    m.params = p;
    m.focus = Pane::Editor;
    notice(m, format!("loaded {} into the editor", r.id.short()), false);
}

/// How often, inside tmux, the studio looks for another client in front of it.
pub const TMUX_CHECK_SECS: i64 = 10;

/// The terminal answered again: pictures already drawn for the old way are drawn again.
fn graphics_detected(m: &mut Model, graphics: Graphics, terminal: &str, asked: bool) {
    let terminal = sanitize::line(terminal).into_owned();
    if graphics == m.graphics {
        if asked {
            notice(
                m,
                format!("redrawn · pictures: {} ({terminal})", graphics.label()),
                false,
            );
        }
        return;
    }
    let was = m.graphics;
    m.graphics = graphics;
    m.preview.cache.clear();
    m.preview.cells.clear();
    m.preview.failed_cells.clear();
    m.preview.error = None;
    m.preview.requested = None;
    notice(
        m,
        format!(
            "pictures: {} ({terminal}), were {}",
            graphics.label(),
            was.label()
        ),
        false,
    );
}

/// What requests are checked against: the studio's catalogue and provider, today.
fn plan_target(m: &Model) -> crate::plan::Target<'_> {
    crate::plan::Target {
        catalog: &m.catalog,
        rules: &m.provider.rules,
        openai: m.provider.openai,
        today: m.now.date_naive(),
    }
}

fn submit(m: &mut Model, front: bool, fx: &mut Vec<Effect>) {
    let text = m.prompt();
    if text.trim().is_empty() {
        notice(m, "the prompt is empty: type something first", true);
        return;
    }
    // A prompt with choices or wildcards is a run: every job built and checked first.
    let planned = super::runs::plan(&text, &m.params, &plan_target(m), &m.wildcards);
    match planned {
        Ok(super::runs::Planned::Single(prompt)) => submit_one(m, prompt, front, fx),
        Ok(super::runs::Planned::Run(planned)) => submit_run(m, &text, planned, front, fx),
        Err(refusal) => {
            if !refusal.read.is_empty() {
                // A file may have been written since it was read: read it again.
                for n in &refusal.read {
                    if !m.wildcards.asked.contains(n) {
                        m.wildcards.asked.push(n.clone());
                    }
                }
                fx.push(Effect::LoadWildcards(refusal.read));
            }
            notice(m, format!("not queued: {}", refusal.message), true);
        }
    }
}

/// "Send as batch": the prompt (a run, or one request) built and checked as for queueing it,
/// then, once confirmed, sent through the Batch API as `easel generate --batch` sends it.
fn send_batch(m: &mut Model, fx: &mut Vec<Effect>) {
    let refuse = |m: &mut Model, why: &str| notice(m, format!("not sent: {why}"), true);
    if m.provider.demo {
        refuse(
            m,
            "the offline demo backend has no Batch API: start the studio with a provider that has one (easel studio --provider openai)",
        );
        return;
    }
    if m.has_inputs() {
        refuse(
            m,
            "edits are sent as multipart and cannot go in a batch: queue them live",
        );
        return;
    }
    let text = m.prompt();
    if text.trim().is_empty() {
        notice(m, "the prompt is empty: type something first", true);
        return;
    }
    let planned = match super::runs::plan(&text, &m.params, &plan_target(m), &m.wildcards) {
        Ok(super::runs::Planned::Run(planned)) => planned,
        Ok(super::runs::Planned::Single(prompt)) => {
            let params = crate::api::GenerationParams {
                prompt,
                ..m.params.clone()
            };
            match request::check(&params, &m.catalog, &m.provider.rules) {
                Ok(checked) => vec![crate::plan::Planned {
                    values: crate::runs::JobValues {
                        prompt_index: 1,
                        template: text.clone(),
                        combination: 0,
                        alternatives: Vec::new(),
                        wildcards: Vec::new(),
                        axes: Vec::new(),
                        repeat: 1,
                    },
                    params,
                    checked,
                }],
                Err(e) => {
                    refuse(m, &e.to_string());
                    return;
                }
            }
        }
        Err(refusal) => {
            if !refusal.read.is_empty() {
                m.wildcards.asked.extend(refusal.read.iter().cloned());
                fx.push(Effect::LoadWildcards(refusal.read));
            }
            refuse(m, &refusal.message);
            return;
        }
    };
    if planned.iter().any(|p| p.checked.stream) {
        refuse(
            m,
            "a batch cannot stream: turn stream (and partial images) off in the parameters",
        );
        return;
    }
    let of = planned.len();
    let run_id = (of > 1).then(|| {
        m.runs_made += 1;
        super::runs::new_run_id(m.now, m.runs_made, &text)
    });
    let mut total = Some(0.0);
    let mut images = 0u64;
    let mut lines = Vec::with_capacity(of);
    for (k, p) in planned.into_iter().enumerate() {
        total = total.and_then(|t| {
            crate::generation::estimate(&m.catalog, &p.params)
                .map(|c| t + c * crate::generation::BATCH_PRICE_FACTOR)
        });
        images += u64::from(p.params.n);
        let run = run_id.map(|id| crate::store::RunInfo {
            id,
            index: u32::try_from(k + 1).unwrap_or(u32::MAX),
            of: u32::try_from(of).unwrap_or(u32::MAX),
            values: p.values,
        });
        lines.push(crate::queue::send::BatchLine {
            body: p.checked.body,
            submission: Submission {
                params: p.params,
                provider: m.provider.name.clone(),
                front: false,
                parent: None,
                run,
            },
        });
    }
    let cost = match total {
        Some(t) => format!("≈ ${t:.3} at batch prices (half the live price)"),
        None => "cost unknown (no prices in the catalogue)".to_string(),
    };
    let mut why = vec![format!(
        "Send {of} job{} ({images} image{}) to {} as one batch: {cost}; results within 24 h.",
        if of == 1 { "" } else { "s" },
        if images == 1 { "" } else { "s" },
        m.provider.name
    )];
    if let Some(t) = total {
        why.extend(spend_reasons_for(m, t, Some(of)));
    }
    m.overlay = Some(Overlay::Confirm(Confirm::Batch(lines, why)));
}

/// Queue the jobs of a run, whole or not at all, with one run id; above `[budget]
/// confirm_above_usd` (or past a budget) the run's total is confirmed first.
fn submit_run(
    m: &mut Model,
    text: &str,
    planned: Vec<crate::plan::Planned>,
    front: bool,
    fx: &mut Vec<Effect>,
) {
    let run_id = super::runs::new_run_id(m.now, m.runs_made, text);
    m.runs_made += 1;
    let of = u32::try_from(planned.len()).unwrap_or(u32::MAX);
    let mut total = Some(0.0);
    let mut warnings: Vec<String> = Vec::new();
    let mut jobs = Vec::with_capacity(planned.len());
    for (k, p) in planned.into_iter().enumerate() {
        total =
            total.and_then(|t| crate::generation::estimate(&m.catalog, &p.params).map(|c| t + c));
        // A model OpenAI has shut down: said once, before anything is sent.
        if let Some(w) = m
            .catalog
            .get(&p.params.model)
            .filter(|_| m.provider.openai)
            .and_then(|spec| spec.openai_shutdown_warning(m.now.date_naive()))
            && !warnings.contains(&w)
        {
            warnings.push(w);
        }
        jobs.push(Submission {
            params: p.params,
            provider: m.provider.name.clone(),
            front,
            parent: None,
            run: Some(crate::store::RunInfo {
                id: run_id,
                index: u32::try_from(k + 1).unwrap_or(u32::MAX),
                of,
                values: p.values,
            }),
        });
    }
    // At the front, the run keeps its order: the last job goes first.
    if front {
        jobs.reverse();
    }
    let mut why = match total {
        Some(t) => spend_reasons_for(m, t, Some(jobs.len())),
        None => Vec::new(),
    };
    why.extend(warnings);
    if why.is_empty() {
        fx.push(Effect::SubmitRun(jobs));
    } else {
        m.overlay = Some(Overlay::Confirm(Confirm::Run(jobs, why)));
    }
}

fn submit_one(m: &mut Model, prompt: String, front: bool, fx: &mut Vec<Effect>) {
    let mut p = m.params.clone();
    p.prompt = prompt;
    match request::check(&p, &m.catalog, &m.provider.rules) {
        Ok(checked) => {
            let submission = Submission {
                params: p,
                provider: m.provider.name.clone(),
                front,
                parent: None,
                run: None,
            };
            match checked.edit {
                // An edit's files are read and checked in the runtime first (as the CLI does):
                // it is queued when they pass (`InputsChecked`).
                Some(files) => fx.push(Effect::CheckInputs {
                    files,
                    submission: Box::new(submission),
                }),
                None => queue_checked(m, submission, fx),
            }
        }
        Err(e) => notice(m, format!("not queued: {e}"), true),
    }
}

/// An edit's files were checked: queue it, or say why not (nothing is queued).
fn inputs_checked(
    m: &mut Model,
    submission: Submission,
    result: Result<(), String>,
    fx: &mut Vec<Effect>,
) {
    match result {
        Ok(()) => queue_checked(m, submission, fx),
        Err(e) => {
            let strip = m.keymap.hint(Context::Inputs, Action::RemoveInput);
            notice(
                m,
                format!(
                    "not queued: {e} (fix or replace the file; {strip} in the strip removes an input)"
                ),
                true,
            );
        }
    }
}

/// A request that passed its checks: confirm first where it costs much or its model is shut
/// down, else queue it.
fn queue_checked(m: &mut Model, submission: Submission, fx: &mut Vec<Effect>) {
    // A model OpenAI has shut down: say so before anything is sent (a compatible server may
    // still serve the name, so only for OpenAI itself).
    let warning = m
        .catalog
        .get(&submission.params.model)
        .filter(|_| m.provider.openai)
        .and_then(|spec| spec.openai_shutdown_warning(m.now.date_naive()));
    let mut spend = spend_reasons(m, &submission.params);
    if !spend.is_empty() {
        spend.extend(warning);
        m.overlay = Some(Overlay::Confirm(Confirm::Spend(
            Box::new(submission),
            spend,
        )));
        return;
    }
    match warning {
        Some(w) => {
            m.overlay = Some(Overlay::Confirm(Confirm::ShutDownModel(
                Box::new(submission),
                w,
            )))
        }
        None => fx.push(Effect::Submit(submission)),
    }
}

/// Why queueing `params` should be confirmed first: its estimate is above
/// `[budget] confirm_above_usd`, or would pass the daily or monthly budget (with the figures).
fn spend_reasons(m: &Model, params: &crate::api::GenerationParams) -> Vec<String> {
    match crate::generation::estimate(&m.catalog, params) {
        Some(estimate) => spend_reasons_for(m, estimate, None),
        None => Vec::new(),
    }
}

/// The same for an estimate: of one request, or (`jobs`) of a whole run.
fn spend_reasons_for(m: &Model, estimate: f64, jobs: Option<usize>) -> Vec<String> {
    if m.provider.demo {
        return Vec::new();
    }
    let what = match jobs {
        Some(n) => format!("This run of {n} jobs costs"),
        None => "This costs".to_string(),
    };
    let mut out = Vec::new();
    if crate::budget::needs_confirmation(&m.budget, estimate) {
        out.push(format!(
            "{what} ≈ ${estimate:.3}, above [budget] confirm_above_usd ${:.2}.",
            m.budget.confirm_above_usd.unwrap_or(0.0)
        ));
    }
    if let Some(spent) = m.spent() {
        for over in crate::budget::over(&m.budget, &spent, estimate) {
            out.push(format!("It would pass a budget: {over}."));
        }
    }
    out
}

fn job_event(m: &mut Model, ev: JobEvent, fx: &mut Vec<Effect>) {
    // The queue's selection stays on its job while jobs are added, moved and ended.
    let selected = m.queue.selected_job().map(|j| j.record.id);
    match ev {
        JobEvent::RateLimited { wait, .. } => {
            let until = m.now
                + chrono::Duration::from_std(wait)
                    .unwrap_or_else(|_| chrono::Duration::seconds(60));
            if m.rate_limited_until.is_none_or(|u| u < until) {
                m.rate_limited_until = Some(until);
            }
        }
        JobEvent::Queued(r) => {
            // A job back in the queue (after a 429) keeps what its row said ("retry 1 in 2s").
            let note = m
                .queue
                .jobs
                .iter()
                .find(|j| j.record.id == r.id)
                .and_then(|j| j.note.clone());
            m.queue.jobs.retain(|j| j.record.id != r.id);
            m.queue.jobs.push(JobView {
                record: *r,
                partial: None,
                note,
            });
            sort_queue(m);
        }
        JobEvent::Started(r) => {
            replace_row(m, (*r).clone());
            if let Some(j) = m.queue.jobs.iter_mut().find(|j| j.record.id == r.id) {
                j.record = *r;
                j.note = None;
            } else {
                m.queue.jobs.push(JobView {
                    record: *r,
                    partial: None,
                    note: None,
                });
            }
            sort_queue(m);
        }
        JobEvent::Partial { id, index, bytes } => {
            if let Some(j) = m.queue.jobs.iter_mut().find(|j| j.record.id == id) {
                j.partial = Some(index);
            }
            m.preview.partials.insert(id, (index, bytes));
        }
        JobEvent::Retrying {
            id,
            retry,
            wait,
            reason,
        } => {
            if let Some(j) = m.queue.jobs.iter_mut().find(|j| j.record.id == id) {
                j.note = Some(format!(
                    "retry {retry} in {:.1} s: {}",
                    wait.as_secs_f64(),
                    sanitize::line(&reason)
                ));
            }
        }
        JobEvent::Succeeded(r) | JobEvent::Failed(r) | JobEvent::Cancelled(r) => {
            finished(m, *r, fx);
        }
        JobEvent::Updated(r) => {
            if let Some(j) = m.queue.jobs.iter_mut().find(|j| j.record.id == r.id) {
                j.record.starred = r.starred;
                j.record.tags = r.tags.clone();
            }
            let compared = m.compare.iter_mut().flat_map(|c| c.items.iter_mut());
            for x in m.marked.iter_mut().chain(compared) {
                if x.record.id == r.id {
                    x.record = (*r).clone();
                }
            }
            replace_row(m, *r);
        }
        JobEvent::Deleted(id) => {
            m.queue.jobs.retain(|j| j.record.id != id);
            m.marked.retain(|x| x.record.id != id);
            m.preview.partials.remove(&id);
            reload_history(m, fx, false);
        }
        JobEvent::Restored(r) => {
            m.trash_undo.retain(|x| *x != r.id);
            // Back in the list, and selected.
            m.history.selected_id = Some(r.id);
            reload_history(m, fx, false);
        }
        JobEvent::Reordered(order) => {
            m.queue.jobs.sort_by_key(|j| {
                let waiting = order.iter().position(|id| *id == j.record.id);
                (
                    j.record.status != Status::Running,
                    waiting.unwrap_or(usize::MAX),
                )
            });
            group_runs(&mut m.queue.jobs);
        }
        JobEvent::Paused(p) => {
            m.queue.paused = p;
            notice(
                m,
                if p {
                    "queue paused: p resumes"
                } else {
                    "queue resumed"
                },
                false,
            );
        }
        JobEvent::BatchState { batch, state } => {
            m.queue.batch_states.insert(batch, state);
        }
        JobEvent::RunPaused(run, paused) => {
            if paused {
                m.queue.paused_runs.insert(run);
            } else {
                m.queue.paused_runs.remove(&run);
            }
            if let Some(t) = m.queue.runs.get_mut(&run) {
                t.paused = paused;
            }
            // With nothing of the run waiting (a run cancelled with X is held, then let go),
            // there is nothing to tell, and the run's end stays on the status line.
            if m.queue.run_counts(run).queued > 0 {
                let hint = m.keymap.hint(Context::Queue, Action::PauseRun);
                notice(
                    m,
                    if paused {
                        format!(
                            "run {} paused: its queued jobs wait ({hint} resumes)",
                            run.short()
                        )
                    } else {
                        format!("run {} resumed", run.short())
                    },
                    false,
                );
            }
        }
        JobEvent::Problem(p) => notice(m, p, true),
        JobEvent::NeedsCredential { id, provider } => {
            let what = format!(
                "waits for {}'s key: start easel where it is set",
                sanitize::line(&provider)
            );
            if let Some(j) = m.queue.jobs.iter_mut().find(|j| j.record.id == id) {
                j.note = Some(what.clone());
            }
            notice(m, format!("job {} {what}", id.short()), true);
        }
        JobEvent::Resync => {
            fx.push(Effect::LoadQueue);
            reload_history(m, fx, false);
        }
    }
    tally_runs(m);
    if let Some(i) = selected.and_then(|id| m.queue.jobs.iter().position(|j| j.record.id == id)) {
        m.queue.selected = i;
    }
    m.queue.selected = m.queue.selected.min(m.queue.jobs.len().saturating_sub(1));
}

/// Runs that stay in the queue pane are shown together: the jobs of a run move up next to its
/// first job (otherwise the order stays).
fn group_runs(jobs: &mut [JobView]) {
    let mut first: std::collections::HashMap<crate::store::Id, usize> =
        std::collections::HashMap::new();
    let firsts: Vec<usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| match &j.record.run {
            Some(run) => *first.entry(run.id).or_insert(i),
            None => i,
        })
        .collect();
    // Within a run, the running and queued jobs keep their order, and the ended ones follow
    // in run order (whatever order they ended in).
    let mut keyed: Vec<(usize, usize, usize)> = firsts
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let r = &jobs[i].record;
            let index = match (&r.run, r.status.is_final()) {
                (Some(run), true) => usize::try_from(run.index).unwrap_or(usize::MAX),
                _ => 0,
            };
            (f, index, i)
        })
        .collect();
    keyed.sort_by_key(|k| *k);
    let order: Vec<JobView> = keyed.iter().map(|(_, _, i)| jobs[*i].clone()).collect();
    for (slot, j) in jobs.iter_mut().zip(order) {
        *slot = j;
    }
}

/// The keys that act on the whole run of the selected job in the queue.
fn run_act(m: &mut Model, action: Action, fx: &mut Vec<Effect>) {
    let Some(run) = m.queue.selected_run() else {
        notice(m, "the selected job is not part of a run", true);
        return;
    };
    let of_run = |j: &&JobView| j.record.run.as_ref().is_some_and(|r| r.id == run);
    match action {
        Action::PauseRun => {
            let paused = m.queue.runs.get(&run).is_some_and(|t| t.paused);
            fx.push(Effect::PauseRun(run, !paused));
        }
        Action::CancelRun => {
            let of_status = |s: Status| -> Vec<_> {
                m.queue
                    .jobs
                    .iter()
                    .filter(of_run)
                    .filter(|j| j.record.status == s)
                    .map(|j| j.record.id)
                    .collect()
            };
            let (queued, running) = (of_status(Status::Queued), of_status(Status::Running));
            if queued.is_empty() && running.is_empty() {
                notice(m, "nothing of this run is queued or running", true);
                return;
            }
            // Held first, and its queued jobs cancelled before the running ones: a running
            // job's end frees a slot, and the scheduler must not start (and pay for) a job of
            // the run whose cancel is still on its way. The hold is lifted once all are
            // cancelled, so that a retry later is not held.
            fx.push(Effect::PauseRun(run, true));
            fx.extend(queued.into_iter().map(Effect::Cancel));
            fx.extend(running.into_iter().map(Effect::Cancel));
            fx.push(Effect::PauseRun(run, false));
        }
        _ => {
            // Whatever did not succeed: failed, interrupted, and cancelled (after X, R sends
            // the run again).
            let failed: Vec<_> = m
                .queue
                .jobs
                .iter()
                .filter(of_run)
                .filter(|j| j.record.status.can_retry())
                .map(|j| j.record.id)
                .collect();
            if failed.is_empty() {
                notice(m, "no job of this run has failed or been cancelled", false);
            }
            fx.extend(failed.into_iter().map(Effect::Retry));
        }
    }
}

/// A run's records read from the store: its header counts the jobs that succeeded (those still
/// in the pane are counted when their end arrives). Asked for at start, its failed and
/// interrupted jobs come back into the pane, where `R` retries them.
fn recount_run(m: &mut Model, run: crate::store::Id, records: &[crate::store::GenerationRecord]) {
    let of_run = |r: &crate::store::GenerationRecord| r.run.as_ref().is_some_and(|i| i.id == run);
    let in_pane: std::collections::HashSet<crate::store::Id> = m
        .queue
        .jobs
        .iter()
        .filter(|j| of_run(&j.record))
        .map(|j| j.record.id)
        .collect();
    let Some(t) = m.queue.runs.get_mut(&run) else {
        return;
    };
    let succeeded = records
        .iter()
        .filter(|r| of_run(r) && r.status == Status::Succeeded && !in_pane.contains(&r.id))
        .count();
    t.done = u32::try_from(succeeded).unwrap_or(u32::MAX);
    let Some(at) = m.queue.recount.iter().position(|r| *r == run) else {
        return;
    };
    m.queue.recount.remove(at);
    let ended = records.iter().filter(|r| {
        of_run(r)
            && matches!(r.status, Status::Failed | Status::Interrupted)
            && !in_pane.contains(&r.id)
    });
    m.queue.jobs.extend(ended.map(|r| JobView {
        record: r.clone(),
        partial: None,
        note: None,
    }));
    sort_queue(m);
}

/// Each run with jobs in the queue pane has a tally (for its header row); a run none of whose
/// jobs are left there has none.
fn tally_runs(m: &mut Model) {
    for j in &m.queue.jobs {
        if let Some(run) = &j.record.run {
            let tally = m
                .queue
                .runs
                .entry(run.id)
                .or_insert_with(|| super::runs::RunTally {
                    of: run.of,
                    done: 0,
                    template: run.values.template.clone(),
                    paused: m.queue.paused_runs.contains(&run.id),
                    batch: None,
                });
            if let Some(b) = &j.record.batch {
                tally.batch = Some(b.id.clone());
            }
        }
    }
    let jobs = &m.queue.jobs;
    m.queue.runs.retain(|id, _| {
        jobs.iter()
            .any(|j| j.record.run.as_ref().is_some_and(|r| r.id == *id))
    });
}

fn sort_queue(m: &mut Model) {
    // Running jobs first, then waiting ones in their order, then ended ones kept for a retry.
    m.queue.jobs.sort_by_key(|j| match j.record.status {
        Status::Running => 0,
        Status::Queued => 1,
        _ => 2,
    });
    group_runs(&mut m.queue.jobs);
}

fn finished(m: &mut Model, r: GenerationRecord, fx: &mut Vec<Effect>) {
    // Away from the terminal: a notification says the job ended.
    if !m.focused {
        let what = match r.status {
            Status::Succeeded => "done",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
            _ => "ended",
        };
        let prompt: String = sanitize::line(&r.prompt).chars().take(60).collect();
        fx.push(Effect::Notify(format!("easel: {what}: {prompt}")));
    }
    m.preview.partials.remove(&r.id);
    m.spend += r.cost_usd.unwrap_or(0.0);
    // A cost not priced from the server's usage is an estimate: the total says so.
    if r.cost_usd.is_some_and(|c| c > 0.0)
        && r.usage.as_ref().is_none_or(|u| u.output_tokens.is_none())
    {
        m.spend_estimated = true;
    }
    match r.status {
        Status::Failed | Status::Cancelled => {
            let msg = match (&r.status, &r.error) {
                (Status::Cancelled, _) => format!("{} cancelled", r.id.short()),
                (_, Some(e)) => format!("{} failed: {}", r.id.short(), e.message),
                _ => format!("{} failed", r.id.short()),
            };
            notice(m, msg, r.status == Status::Failed);
            // It stays in the queue pane, so it can be retried (r) or dismissed (x) there.
            match m.queue.jobs.iter_mut().find(|j| j.record.id == r.id) {
                Some(j) => {
                    j.record = r.clone();
                    j.note = None;
                    j.partial = None;
                }
                None => m.queue.jobs.push(JobView {
                    record: r.clone(),
                    partial: None,
                    note: None,
                }),
            }
            sort_queue(m);
        }
        _ => {
            let was_here = m.queue.jobs.iter().any(|j| j.record.id == r.id);
            if let Some(t) = r
                .run
                .as_ref()
                .filter(|_| was_here)
                .and_then(|run| m.queue.runs.get_mut(&run.id))
            {
                t.done += 1;
            }
            m.queue.jobs.retain(|j| j.record.id != r.id);
            let n = r.outputs.len();
            // An error not read yet stays in sight: the job is in the history anyway.
            let unread_error = m.current_notice().is_some_and(|n| n.error);
            if !unread_error {
                notice(
                    m,
                    format!(
                        "{} done: {n} image{}",
                        r.id.short(),
                        if n == 1 { "" } else { "s" }
                    ),
                    false,
                );
            }
        }
    }
    super::run_grid::job_finished(m, &r, fx);
    // The newest record appears at the top of history: show it when the list is at the top.
    reload_history(m, fx, false);
}

fn replace_row(m: &mut Model, r: GenerationRecord) {
    for row in m.history.rows.values_mut() {
        if row.id == r.id {
            *row = r.clone();
        }
    }
}

/// Ask for the current query again. `reset` goes back to the top (a new search); otherwise the
/// selection stays where it is.
fn reload_history(m: &mut Model, fx: &mut Vec<Effect>, reset: bool) {
    m.history.generation += 1;
    m.history.rows.clear();
    m.history.pending.clear();
    // The selection stays on its record: the first page asked for also asks where it is now.
    m.history.anchor = m.history.selected_id.map(|id| (id, reset));
    if reset && m.history.anchor.is_none() {
        m.history.selected = 0;
        m.history.scroll = 0;
        m.history.image = 0;
    }
    load_visible(m, fx);
}

/// Put the selection back on its record (or its nearest neighbour) after a reload, keeping the
/// record on the same screen row where it can.
fn follow_anchor(m: &mut Model, id: crate::store::Id, located: crate::store::Located) {
    use crate::store::Located;
    let Some((wanted, reset)) = m.history.anchor else {
        return;
    };
    if wanted != id {
        return;
    }
    m.history.anchor = None;
    let h = &mut m.history;
    let before = h.selected;
    let last = h.total.saturating_sub(1);
    h.selected = match located {
        Located::At(p) => p,
        Located::Near(p) => p.min(last),
        Located::Unknown if reset => 0,
        Located::Unknown => before.min(last),
    };
    if located != Located::At(h.selected) {
        h.image = 0;
        h.selected_id = None;
    }
    // Keep it on the same screen row.
    h.scroll = (h.scroll + h.selected).saturating_sub(before);
}

/// Remember which record the selection is on, once its row has arrived.
fn sync_selected_id(m: &mut Model) {
    if m.history.anchor.is_some() {
        return;
    }
    if let Some(r) = m.history.rows.get(&m.history.selected) {
        m.history.selected_id = Some(r.id);
    }
}

fn move_history(m: &mut Model, delta: i64, fx: &mut Vec<Effect>) {
    let before = m.history.selected;
    m.history.selected = step_index(m.history.selected, delta, m.history.total);
    if before != m.history.selected {
        m.history.image = 0;
        // Chosen by position now: whatever record stands there.
        m.history.anchor = None;
        m.history.selected_id = None;
    }
    clamp_scroll(m);
    sync_selected_id(m);
    load_visible(m, fx);
}

fn visible_rows(m: &Model) -> usize {
    if m.gallery_shown() {
        return super::gallery::visible(m.width, m.height).max(1);
    }
    usize::from(layout::inner(m.areas().history).height.max(1))
}

fn clamp_scroll(m: &mut Model) {
    if m.gallery_shown() {
        let g = super::gallery::geometry(m.width, m.height);
        let h = &mut m.history;
        h.scroll = super::gallery::scroll_for(h.selected, h.scroll, g.cols, g.rows, h.total);
        return;
    }
    let rows = visible_rows(m);
    let h = &mut m.history;
    if h.selected < h.scroll {
        h.scroll = h.selected;
    } else if h.selected >= h.scroll + rows {
        h.scroll = h.selected + 1 - rows;
    }
    h.scroll = h.scroll.min(h.total.saturating_sub(rows));
}

/// Ask for the pages the visible rows (and a page of margin) need.
fn load_visible(m: &mut Model, fx: &mut Vec<Effect>) {
    let rows = visible_rows(m);
    let first = m.history.scroll.saturating_sub(PAGE / 2);
    let last = m.history.scroll + rows + PAGE / 2;
    let (first_page, last_page) = (first / PAGE, last / PAGE);
    for page in first_page..=last_page {
        let offset = page * PAGE;
        if m.history.loaded && offset >= m.history.total && page > 0 {
            break;
        }
        if m.history.pending.contains(&page) || m.history.rows.contains_key(&offset) {
            continue;
        }
        m.history.pending.push(page);
        // Only the first page asked for after a reload carries the anchor.
        let anchor = m
            .history
            .anchor
            .filter(|_| {
                !fx.iter().any(|e| {
                    matches!(
                        e,
                        Effect::LoadHistory {
                            anchor: Some(_),
                            ..
                        }
                    )
                })
            })
            .filter(|_| m.history.pending.len() == 1)
            .map(|(id, _)| id);
        fx.push(Effect::LoadHistory {
            generation: m.history.generation,
            query: m.history.query(),
            offset,
            limit: PAGE,
            anchor,
        });
    }
}

/// Drop rows far from the selection, so memory stays bounded while scrolling far. Whole pages
/// go or stay: `load_visible` takes a page's first row as the sign that the page is loaded.
fn trim_rows(m: &mut Model) {
    let center = m.history.selected;
    if m.history.rows.len() > KEEP {
        let (lo, hi) = (center.saturating_sub(KEEP / 2), center + KEEP / 2);
        m.history.rows.retain(|pos, _| {
            let start = pos - pos % PAGE;
            start >= lo && start + PAGE <= hi
        });
    }
}

/// Decide what the preview should show, and ask for it if it is neither shown nor asked for.
/// On the compare screen, its pictures, one request at a time (each render brings the next).
fn want_preview(m: &mut Model, fx: &mut Vec<Effect>) {
    let key = match &m.compare {
        Some(c) => super::compare::cells(m, c)
            .into_iter()
            .filter_map(|cell| cell.key)
            .find(|k| {
                m.preview.get(k).is_none() && !m.preview.error.as_ref().is_some_and(|(e, _)| e == k)
            }),
        // The lineage view's visible pictures, the selected one first.
        None if m.lineage.is_some() => lineage_thumb_wanted(m),
        // A run's grid: its visible cells, the selected one first.
        None if m.run_grid.is_some() => super::run_grid::wanted_thumb(m),
        // The gallery's visible cells, the selected one first.
        None if m.gallery_shown() => {
            let mut cells = super::gallery::cells(m);
            cells.sort_by_key(|c| c.pos != m.history.selected);
            cells.into_iter().filter_map(|c| c.key).find(|k| {
                m.preview.get(k).is_none() && !m.preview.failed_cells.iter().any(|(f, _)| f == k)
            })
        }
        // The preview first; then the reference strip's pictures, one at a time.
        None => preview_key(m)
            .filter(|k| {
                m.preview.get(k).is_none() && !m.preview.error.as_ref().is_some_and(|(e, _)| e == k)
            })
            .or_else(|| {
                super::strip::cells(m).into_iter().map(|c| c.key).find(|k| {
                    m.preview.get(k).is_none()
                        && !m.preview.failed_cells.iter().any(|(f, _)| f == k)
                })
            }),
    };
    let Some(key) = key else { return };
    if m.preview.get(&key).is_some() || m.preview.requested.as_ref() == Some(&key) {
        return;
    }
    if m.preview.error.as_ref().is_some_and(|(k, _)| *k == key) {
        return;
    }
    let bytes = match &key.source {
        PreviewSource::Partial { id, .. } => m.preview.partials.get(id).map(|(_, b)| b.clone()),
        PreviewSource::File(_)
        | PreviewSource::Thumb { .. }
        | PreviewSource::Input(_)
        | PreviewSource::Compared(_) => None,
    };
    m.preview.requested = Some(key.clone());
    fx.push(Effect::RenderPreview { key, bytes });
}

// ---------------------------------------------------------------------------------------------
// Edits (issue 12): input pictures, the reference strip, the mask editor, lineage

/// A path as the studio shows it: inside the data folder, relative to it; cleaned for display.
fn shown_path(m: &Model, path: &std::path::Path) -> String {
    let rel = path.strip_prefix(&m.data_dir).unwrap_or(path);
    sanitize::line(&rel.display().to_string()).into_owned()
}

/// How the strip names an input picture: a history image by its record and number, a file by
/// its name.
pub fn input_label(input: &InputImage) -> String {
    match (&input.record, input.index) {
        (Some(id), index) => {
            let short = crate::store::Id::parse(id).map_or_else(
                || sanitize::truncate(&sanitize::line(id), 8).into_owned(),
                |i| i.short(),
            );
            format!("{short} #{}", index.unwrap_or(1))
        }
        (None, _) => input
            .path
            .file_name()
            .map(|n| sanitize::line(&n.to_string_lossy()).into_owned())
            .unwrap_or_else(|| sanitize::line(&input.path.display().to_string()).into_owned()),
    }
}

/// The history selection's shown image, as an input picture.
fn selected_input(m: &Model) -> Option<InputImage> {
    let r = m.history.selected_record()?;
    if r.outputs.is_empty() {
        return None;
    }
    let image = m.history.image.min(r.outputs.len() - 1);
    Some(InputImage {
        path: selected_image_path(m)?,
        record: Some(r.id.to_string()),
        index: Some(u32::try_from(image + 1).unwrap_or(1)),
    })
}

/// "Edit this": the selected history image becomes the first input picture (the one edited);
/// the references stay, and the editor takes the focus.
fn edit_this(m: &mut Model) -> bool {
    let Some(input) = selected_input(m) else {
        notice(m, "no image to edit: this generation made none", false);
        return false;
    };
    edit_input(m, input)
}

/// `input` becomes the first input picture (the one edited), and the editor takes the focus.
fn edit_input(m: &mut Model, input: InputImage) -> bool {
    let before = m.params.images.first().map(|i| i.path.clone());
    m.params.images.retain(|i| i.path != input.path);
    m.params.images.insert(0, input.clone());
    m.params.variation = false;
    m.input_cursor = 0;
    m.focus = Pane::Editor;
    let mut text = format!(
        "editing {}: write what to change, {} sends the edit",
        input_label(&input),
        m.keymap.hint(Context::Editor, Action::Submit)
    );
    if before.as_ref() != Some(&input.path) && m.params.mask.take().is_some() {
        text.push_str(" (the mask was for another picture: removed)");
    }
    notice(m, text, false);
    true
}

/// The selected history image joins the inputs as a reference picture.
fn add_reference(m: &mut Model) {
    let Some(input) = selected_input(m) else {
        notice(m, "no image to add: this generation made none", false);
        return;
    };
    add_input(m, input);
}

fn add_input(m: &mut Model, input: InputImage) {
    let label = input_label(&input);
    if m.params.images.iter().any(|i| i.path == input.path) {
        notice(m, format!("{label} is already an input"), false);
        return;
    }
    m.params.images.push(input);
    m.params.variation = false;
    let n = m.params.images.len();
    m.input_cursor = n - 1;
    let what = if n == 1 {
        "the picture to edit".to_string()
    } else {
        format!("reference {}", n - 1)
    };
    notice(m, format!("added {label} as {what} ({n} inputs)"), false);
}

fn input_resolved(m: &mut Model, kind: InputKind, input: InputImage) {
    match kind {
        InputKind::Reference => add_input(m, input),
        InputKind::Mask => {
            let shown = input_label(&input);
            m.params.mask = Some(input);
            let hint = if m.params.images.is_empty() {
                ": add the picture to edit (E on a history image)"
            } else {
                ""
            };
            notice(m, format!("mask {shown} set{hint}"), false);
        }
    }
}

/// Move the selected input picture left or right (the first one is the picture edited).
fn move_input(m: &mut Model, left: bool) {
    let n = m.params.images.len();
    let i = m.input_cursor.min(n.saturating_sub(1));
    let j = if left {
        i.checked_sub(1)
    } else {
        (i + 1 < n).then_some(i + 1)
    };
    let Some(j) = j else { return };
    m.params.images.swap(i, j);
    m.input_cursor = j;
    if (i == 0 || j == 0) && m.params.mask.is_some() {
        notice(
            m,
            "the mask applies to the first picture: it must be that picture's size",
            false,
        );
    }
}

fn remove_input(m: &mut Model) {
    let n = m.params.images.len();
    if n == 0 {
        return;
    }
    let i = m.input_cursor.min(n - 1);
    let gone = m.params.images.remove(i);
    m.input_cursor = i.min(m.params.images.len().saturating_sub(1));
    let mut text = format!("removed {}", input_label(&gone));
    if m.params.images.is_empty() {
        // What only an edit takes goes with the last picture.
        m.params.input_fidelity = None;
        if m.params.mask.take().is_some() {
            text.push_str(" and the mask: the prompt makes a new picture again");
        } else {
            text.push_str(": the prompt makes a new picture again");
        }
        m.focus = Pane::Editor;
    }
    notice(m, text, false);
}

/// Keys while a path is typed for the strip: Enter resolves it (in the runtime: files and
/// history ids), Esc leaves.
fn path_key(m: &mut Model, k: KeyEvent, fx: &mut Vec<Effect>) {
    let Some(input) = m.path_input.as_mut() else {
        return;
    };
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    match k.code {
        KeyCode::Esc => m.path_input = None,
        KeyCode::Backspace => {
            input.text.pop();
        }
        KeyCode::Char('c') if ctrl => quit(m, fx),
        KeyCode::Char('u') if ctrl => input.text.clear(),
        KeyCode::Char(c)
            if !ctrl && !sanitize::is_unsafe(c) && input.text.chars().count() < 4096 =>
        {
            input.text.push(c);
        }
        KeyCode::Enter => {
            let (kind, text) = (input.kind, input.text.trim().to_string());
            m.path_input = None;
            if !text.is_empty() {
                fx.push(Effect::ResolveInput { kind, text });
            }
        }
        _ => {}
    }
}

/// Jump to a record's first parent in the history (a search or filter that would hide it is
/// cleared).
fn jump_parent(m: &mut Model, r: &GenerationRecord, fx: &mut Vec<Effect>) {
    let Some(parent) = r.lineage().into_iter().next() else {
        notice(m, format!("{} has no parent", r.id.short()), false);
        return;
    };
    go_to(m, parent.id, fx);
    notice(
        m,
        format!(
            "to {} ({} of {})",
            parent.id.short(),
            parent.role.as_str(),
            r.id.short()
        ),
        false,
    );
}

/// Select a record in the history (a search or filter that might hide it is cleared).
fn go_to(m: &mut Model, id: crate::store::Id, fx: &mut Vec<Effect>) {
    if !m.history.text.is_empty() || m.history.filter != Filter::All {
        m.history.text.clear();
        m.history.search = None;
        m.history.filter = Filter::All;
    }
    m.overlay = None;
    m.focus = Pane::History;
    m.gallery = false;
    m.history.selected_id = Some(id);
    m.history.image = 0;
    reload_history(m, fx, false);
}

/// Go to a record made from `id`: the first, or after one, the next (cycling).
fn jump_child(m: &mut Model, id: crate::store::Id, fx: &mut Vec<Effect>) {
    let Some(family) = m.family.as_ref().filter(|f| f.id == id) else {
        // Read first; the jump happens when it arrives.
        m.pending_child = Some(id);
        fx.push(Effect::LoadFamily(id));
        return;
    };
    let n = family.children.len();
    if n == 0 {
        notice(m, format!("nothing was made from {}", id.short()), false);
        return;
    }
    let next = match m.child_cycle {
        Some((parent, i)) if parent == id => (i + 1) % n,
        _ => 0,
    };
    let Some((child, role, _)) = family.children.get(next).cloned() else {
        return;
    };
    m.child_cycle = Some((id, next));
    go_to(m, child, fx);
    notice(
        m,
        format!(
            "to {} ({} of {}; {}/{n})",
            child.short(),
            role.as_str(),
            id.short(),
            next + 1
        ),
        false,
    );
}

/// Open the mask editor on the first input picture (going on from the selection last painted
/// on it).
fn open_mask(m: &mut Model, fx: &mut Vec<Effect>) {
    let Some(first) = m.params.images.first() else {
        let hint = m.keymap.hint(Context::History, Action::EditThis);
        notice(
            m,
            format!("no picture to paint a mask on: {hint} on a history image first"),
            true,
        );
        return;
    };
    let ops = match &m.painted {
        // (A mask loaded before any picture was added goes with the first one.)
        Some((path, ops)) if *path == first.path || path.as_os_str().is_empty() => ops.clone(),
        _ => Vec::new(),
    };
    // A mask file set without its selection at hand (kept from the last session): read it,
    // and go on from it once read, rather than start empty and replace it on save.
    if ops.is_empty()
        && let Some(mask) = &m.params.mask
    {
        fx.push(Effect::ImportMask {
            mask: mask.path.clone(),
            picture: Some(first.path.clone()),
        });
    }
    m.mask_edit = Some(MaskEdit::new(first.path.clone(), ops));
    want_mask_base(m, fx);
}

/// Ask for the mask editor's picture at the size of its area, once per size.
fn want_mask_base(m: &mut Model, fx: &mut Vec<Effect>) {
    let area = mask::geometry(m.width, m.height).picture;
    let Some(e) = m.mask_edit.as_mut() else {
        return;
    };
    let want = (area.width, area.height);
    if e.requested == Some(want) || area.area() == 0 {
        return;
    }
    e.requested = Some(want);
    fx.push(Effect::LoadMaskBase {
        path: e.path.clone(),
        cols: want.0,
        rows: want.1,
    });
}

fn mask_base(m: &mut Model, path: std::path::PathBuf, width: u32, height: u32, base: MaskBase) {
    let area = mask::geometry(m.width, m.height).picture;
    let Some(e) = m.mask_edit.as_mut().filter(|e| e.path == path) else {
        return;
    };
    if e.size != Some((width, height)) {
        e.size = Some((width, height));
        // A shape in the middle, half the picture's width and height.
        e.cursor = PixRect {
            x0: width / 4,
            y0: height / 4,
            x1: width - width / 4,
            y1: height - height / 4,
        };
        if let Some(p) = mask::place(area, width, height) {
            e.cursor = snap(&p, &e.cursor);
        }
    }
    if (base.cols, base.rows) == (area.width, area.height) {
        e.base = Some(base);
        e.error = None;
    }
}

/// Where the mask editor's picture is now.
pub fn mask_placement(m: &Model) -> Option<mask::Placement> {
    let (w, h) = m.mask_edit.as_ref()?.size?;
    mask::place(mask::geometry(m.width, m.height).picture, w, h)
}

/// A shape's rectangle on whole dots of the placement (at least one dot each way).
fn snap(p: &mask::Placement, r: &PixRect) -> PixRect {
    let (gx0, gy0, gx1, gy1) = p.to_dots(r);
    p.dots_to_pixels(gx0, gy0, gx1, gy1)
}

fn mask_act(m: &mut Model, action: Action, fx: &mut Vec<Effect>) {
    let placement = mask_placement(m);
    let Some(e) = m.mask_edit.as_mut() else {
        return;
    };
    match action {
        Action::ForceQuit => quit(m, fx),
        Action::Help => {
            m.overlay = Some(Overlay::Help);
            m.overlay_scroll = 0;
        }
        Action::MaskLeave => {
            m.mask_edit = None;
            notice(m, "mask editor left: nothing saved", false);
        }
        Action::MaskShape => {
            e.shape = match e.shape {
                Shape::Rect => Shape::Ellipse,
                Shape::Ellipse => Shape::Rect,
            }
        }
        Action::MaskAdd => e.ops.push(Op::Add(e.shape, e.cursor)),
        Action::MaskSubtract => e.ops.push(Op::Subtract(e.shape, e.cursor)),
        Action::MaskInvert => e.ops.push(Op::Invert),
        Action::MaskClear => e.ops.clear(),
        Action::Undo => {
            e.ops.pop();
        }
        Action::MaskSave => {
            let Some((width, height)) = e.size else {
                notice(m, "the picture is not read yet", true);
                return;
            };
            let any = placement.is_some_and(|p| {
                (0..p.gh).any(|gy| {
                    (0..p.gw).any(|gx| {
                        let (x, y) = p.dot_centre(gx, gy);
                        mask::selected(&e.ops, x, y)
                    })
                })
            });
            if !any {
                let add = m.keymap.hint(Context::Mask, Action::MaskAdd);
                notice(
                    m,
                    format!("nothing selected to edit: {add} adds the shape"),
                    true,
                );
                return;
            }
            let ops = e.ops.clone();
            m.painted = Some((e.path.clone(), ops.clone()));
            m.mask_edit = None;
            fx.push(Effect::SaveMask {
                width,
                height,
                ops,
                dir: m.data_dir.join("masks"),
            });
        }
        Action::Left
        | Action::Right
        | Action::Up
        | Action::Down
        | Action::FarLeft
        | Action::FarRight
        | Action::FarUp
        | Action::FarDown
        | Action::Narrower
        | Action::Wider
        | Action::Shorter
        | Action::Taller => {
            let Some(p) = placement else { return };
            let (mut gx0, mut gy0, mut gx1, mut gy1) = p.to_dots(&e.cursor);
            let (gw, gh) = (p.gw, p.gh);
            // A far move goes 8 dots, or to the edge.
            let far = |room: u32| room.min(8);
            match action {
                Action::Left if gx0 > 0 => (gx0, gx1) = (gx0 - 1, gx1 - 1),
                Action::Right if gx1 < gw => (gx0, gx1) = (gx0 + 1, gx1 + 1),
                Action::Up if gy0 > 0 => (gy0, gy1) = (gy0 - 1, gy1 - 1),
                Action::Down if gy1 < gh => (gy0, gy1) = (gy0 + 1, gy1 + 1),
                Action::FarLeft => {
                    let d = far(gx0);
                    (gx0, gx1) = (gx0 - d, gx1 - d);
                }
                Action::FarRight => {
                    let d = far(gw.saturating_sub(gx1));
                    (gx0, gx1) = (gx0 + d, gx1 + d);
                }
                Action::FarUp => {
                    let d = far(gy0);
                    (gy0, gy1) = (gy0 - d, gy1 - d);
                }
                Action::FarDown => {
                    let d = far(gh.saturating_sub(gy1));
                    (gy0, gy1) = (gy0 + d, gy1 + d);
                }
                Action::Narrower if gx1 > gx0 + 1 => gx1 -= 1,
                Action::Wider if gx1 < gw => gx1 += 1,
                Action::Wider if gx0 > 0 => gx0 -= 1,
                Action::Shorter if gy1 > gy0 + 1 => gy1 -= 1,
                Action::Taller if gy1 < gh => gy1 += 1,
                Action::Taller if gy0 > 0 => gy0 -= 1,
                _ => {}
            }
            e.cursor = p.dots_to_pixels(gx0, gy0, gx1, gy1);
        }
        _ => {}
    }
}

/// The mouse in the mask editor: a drag draws the shape from corner to corner and adds it on
/// release (the right button takes it out).
fn mask_mouse(m: &mut Model, me: crossterm::event::MouseEvent) {
    use crossterm::event::{MouseButton, MouseEventKind};
    let Some(p) = mask_placement(m) else { return };
    let Some(e) = m.mask_edit.as_mut() else {
        return;
    };
    // Outside the picture, the nearest dot.
    let cells = p.cells();
    let col = me.column.clamp(cells.x, cells.right().saturating_sub(1));
    let row = me.row.clamp(cells.y, cells.bottom().saturating_sub(1));
    let inside = cells.contains(ratatui::layout::Position::new(me.column, me.row));
    let Some((gx, gy)) = p.dot_at(col, row) else {
        return;
    };
    let gy1 = (gy + 2).min(p.gh);
    match me.kind {
        MouseEventKind::Down(b @ (MouseButton::Left | MouseButton::Right)) if inside => {
            e.drag = Some((gx, gy, b == MouseButton::Right));
            e.cursor = p.dots_to_pixels(gx, gy, gx + 1, gy1);
        }
        MouseEventKind::Drag(_) => {
            if let Some((ax, ay, _)) = e.drag {
                let (x0, x1) = (ax.min(gx), ax.max(gx) + 1);
                let (y0, y1) = (ay.min(gy), (ay + 2).max(gy1).min(p.gh));
                e.cursor = p.dots_to_pixels(x0, y0, x1, y1);
            }
        }
        MouseEventKind::Up(_) => {
            if let Some((_, _, subtract)) = e.drag.take() {
                e.ops.push(if subtract {
                    Op::Subtract(e.shape, e.cursor)
                } else {
                    Op::Add(e.shape, e.cursor)
                });
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// The lineage view (issue 12)

/// Open the lineage view on a record: its family is read from the store (`LoadLineage`).
fn open_lineage(m: &mut Model, id: crate::store::Id, fx: &mut Vec<Effect>) {
    m.overlay = None;
    m.lineage = Some(super::lineage::LineageView::loading(id));
    fx.push(Effect::LoadLineage(id));
}

fn lineage_loaded(
    m: &mut Model,
    id: crate::store::Id,
    tree: Result<Box<super::lineage::Tree>, String>,
) {
    let Some(view) = m.lineage.as_mut().filter(|v| v.id == Some(id)) else {
        return;
    };
    match tree {
        Ok(tree) => view.set_tree(*tree),
        Err(e) => view.error = Some(sanitize::line(&e).into_owned()),
    }
    lineage_scroll(m);
}

/// Keep the selected node in view.
fn lineage_scroll(m: &mut Model) {
    let g = lineage_geometry(m);
    if let Some(v) = m.lineage.as_mut() {
        v.scroll = super::lineage::scroll_for(v.cursor, v.scroll, g.visible, v.rows.len());
    }
}

fn lineage_act(m: &mut Model, action: Action, fx: &mut Vec<Effect>) {
    let page = lineage_geometry(m).visible;
    let Some(view) = m.lineage.as_mut() else {
        return;
    };
    let n = view.rows.len();
    let delta: i64 = match action {
        Action::Up => -1,
        Action::Down => 1,
        Action::PageUp => -(page as i64),
        Action::PageDown => page as i64,
        Action::Top => i64::MIN / 2,
        Action::Bottom => i64::MAX / 2,
        Action::ForceQuit => return quit(m, fx),
        Action::Help => {
            m.overlay = Some(Overlay::Help);
            m.overlay_scroll = 0;
            return;
        }
        Action::CloseLineage => {
            m.lineage = None;
            return;
        }
        Action::GoToRecord => {
            let Some(row) = view.selected().cloned() else {
                return;
            };
            if row.deleted {
                notice(
                    m,
                    format!(
                        "{} was deleted: it is not in history (`easel history restore ID` brings it back from the trash while it is there)",
                        row.id.short()
                    ),
                    true,
                );
                return;
            }
            m.lineage = None;
            go_to(m, row.id, fx);
            return;
        }
        _ => return,
    };
    view.cursor = step_index(view.cursor, delta, n);
    lineage_scroll(m);
}

/// Where the lineage view goes on this screen.
pub fn lineage_geometry(m: &Model) -> super::lineage::Geometry {
    super::lineage::geometry(
        m.width,
        m.height,
        m.graphics != super::model::Graphics::None,
    )
}

/// The picture of a row of the lineage view (a cached thumbnail), where graphics show them.
pub fn lineage_thumb(m: &Model, index: usize) -> Option<super::msg::PreviewKey> {
    if m.graphics == super::model::Graphics::None {
        return None;
    }
    let (path, sha256) = super::lineage::image_of(m.lineage.as_ref()?, index)?.clone();
    Some(super::msg::PreviewKey {
        source: PreviewSource::Thumb { path, sha256 },
        cols: super::lineage::THUMB_W,
        rows: super::lineage::THUMB_H,
    })
}

/// The first visible picture of the lineage view not yet drawn nor failed, the selected first.
fn lineage_thumb_wanted(m: &Model) -> Option<super::msg::PreviewKey> {
    let view = m.lineage.as_ref()?;
    let mut shown = super::lineage::visible(&lineage_geometry(m), view);
    shown.sort_by_key(|(i, _)| *i != view.cursor);
    shown
        .into_iter()
        .filter_map(|(i, _)| lineage_thumb(m, i))
        .find(|k| m.preview.get(k).is_none() && !m.preview.failed_cells.iter().any(|(f, _)| f == k))
}

/// A mask file read as a selection: the mask editor opens on it (on the first picture).
fn mask_imported(m: &mut Model, path: std::path::PathBuf, op: Result<mask::Op, String>) {
    // Only the mask still set (another may have been loaded since).
    if m.params.mask.as_ref().is_none_or(|k| k.path != path) {
        return;
    }
    let shown = shown_path(m, &path);
    match op {
        Ok(op) => {
            // Kept for the first picture; with none yet, for the one added next.
            let on = m
                .params
                .images
                .first()
                .map(|i| i.path.clone())
                .unwrap_or_default();
            // The mask editor open on that picture with nothing done yet starts from it.
            if let Some(e) = m
                .mask_edit
                .as_mut()
                .filter(|e| e.path == on && e.ops.is_empty())
            {
                e.ops = vec![op.clone()];
            }
            m.painted = Some((on, vec![op]));
            let paint = m.keymap.hint(Context::Inputs, Action::PaintMask);
            notice(
                m,
                format!(
                    "mask {shown} loaded: its transparent area is the selection ({paint} paints over it)"
                ),
                false,
            );
        }
        Err(e) => {
            m.params.mask = None;
            notice(
                m,
                format!("mask {shown} not used: {e} (load another, or paint one)"),
                true,
            );
        }
    }
}

/// The context whose bindings the next key goes to: a popup's, a full-screen view's, a text
/// line's (none: `Global`), else the focused pane's.
fn active_context(m: &Model) -> Context {
    match &m.overlay {
        Some(Overlay::Confirm(_)) => return Context::Confirm,
        Some(Overlay::Help | Overlay::Details(_)) => return Context::Popup,
        None => {}
    }
    if m.mask_edit.is_some() {
        Context::Mask
    } else if m.lineage.is_some() {
        Context::Lineage
    } else if m.path_input.is_some() || m.tag_input.is_some() || m.size_input.is_some() {
        // Text lines read their keys themselves: no bindings of their own.
        Context::Global
    } else if m.compare.is_some() {
        Context::Compare
    } else if m.run_grid.is_some() {
        Context::History
    } else if m.focus == Pane::History && m.history.search.is_some() {
        Context::SearchLine
    } else {
        m.focus.context()
    }
}
