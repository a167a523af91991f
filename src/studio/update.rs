//! The one place the studio's state changes: `update(model, msg) -> effects`. Pure: no I/O, no
//! clock, no terminal; the runtime carries out the effects and feeds results back as messages.

use super::keymap::{Action, Context, Key};
use super::layout;
pub use super::model::preview_key;
use super::model::{
    Confirm, Filter, JobView, KEEP, Model, Notice, Overlay, PAGE, Pane, selected_image_path,
};
use super::msg::{Effect, Msg, PreviewSource, StoreOutcome};
use super::params;
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
            clamp_scroll(m);
            load_visible(m, &mut fx);
        }
        Msg::Tick(now) => m.now = now,
        Msg::Focus(on) => m.focused = on,
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
                // loop of store reads and redraws. Nothing more is needed after one.
                if !empty {
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
        }
        Msg::PreviewReady(key, rendered) => {
            m.preview.insert(key, *rendered);
        }
        Msg::PreviewFailed(key, why) => {
            m.preview.error = Some((key, why));
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
    }
    want_preview(m, &mut fx);
    fx
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
                        Confirm::Delete(r) => fx.push(Effect::Delete(r.id)),
                        Confirm::Quit => quit(m, fx),
                    },
                    // Jobs that outlive the studio: c cancels them on the way out.
                    _ if matches!(what, Confirm::Quit)
                        && m.jobs_outlive
                        && key == Key::new(KeyCode::Char('c'), KeyModifiers::NONE) =>
                    {
                        for j in &m.queue.jobs {
                            if !j.record.status.is_final() {
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
    let a = m.areas();
    let pane = [
        (Pane::Editor, a.editor),
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
            let next = if action == Action::NextPane {
                (i + 1) % n
            } else {
                (i + n - 1) % n
            };
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
            let page = i64::from(layout::inner(m.areas().history).height.max(1));
            let delta: i64 = match action {
                Action::Up => -1,
                Action::Down => 1,
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
                Pane::Editor => {}
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
        Action::Search => m.history.search = Some(m.history.text.clone()),
        Action::ClearSearch => {
            if !m.history.text.is_empty() {
                m.history.text.clear();
                reload_history(m, fx, true);
            }
        }
        Action::Details => {
            if let Some(r) = m.history.selected_record() {
                m.overlay = Some(Overlay::Details(Box::new(r.clone())));
                m.overlay_scroll = 0;
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
            let n = match action {
                Action::Rate1 => 1,
                Action::Rate2 => 2,
                Action::Rate3 => 3,
                Action::Rate4 => 4,
                Action::Rate5 => 5,
                _ => 0,
            };
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
    }
}

/// How many lines a scrolling popup holds (an upper bound is enough: it only limits scrolling).
fn overlay_len(m: &Model, overlay: &Overlay) -> u16 {
    let lines = match overlay {
        Overlay::Help => super::help::line_count(&m.keymap, m.focus),
        Overlay::Details(r) => {
            24 + r.outputs.len()
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
    // The editor has no input pictures to show yet: a reused edit's prompt and settings come
    // back as a plain generation, never with pictures the user cannot see.
    p.images.clear();
    p.mask = None;
    p.input_fidelity = None;
    p.variation = false;
    m.params = p;
    m.focus = Pane::Editor;
    notice(m, format!("loaded {} into the editor", r.id.short()), false);
}

fn submit(m: &mut Model, front: bool, fx: &mut Vec<Effect>) {
    let mut p = m.params.clone();
    p.prompt = m.prompt();
    if p.prompt.trim().is_empty() {
        notice(m, "the prompt is empty: type something first", true);
        return;
    }
    match request::check(&p, &m.catalog, &m.provider.rules) {
        Ok(_) => {
            let submission = Submission {
                params: p,
                provider: m.provider.name.clone(),
                front,
                parent: None,
                run: None,
            };
            // A model OpenAI has shut down: say so before anything is sent (a compatible
            // server may still serve the name, so only for OpenAI itself).
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
        Err(e) => notice(m, format!("not queued: {e}"), true),
    }
}

/// Why queueing `params` should be confirmed first: its estimate is above
/// `[budget] confirm_above_usd`, or would pass the daily or monthly budget (with the figures).
fn spend_reasons(m: &Model, params: &crate::api::GenerationParams) -> Vec<String> {
    if m.provider.demo {
        return Vec::new();
    }
    let Some(estimate) = crate::generation::estimate(&m.catalog, params) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if crate::budget::needs_confirmation(&m.budget, estimate) {
        out.push(format!(
            "This costs ≈ ${estimate:.3}, above [budget] confirm_above_usd ${:.2}.",
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
            replace_row(m, *r);
        }
        JobEvent::Deleted(id) => {
            m.queue.jobs.retain(|j| j.record.id != id);
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
    if let Some(i) = selected.and_then(|id| m.queue.jobs.iter().position(|j| j.record.id == id)) {
        m.queue.selected = i;
    }
    m.queue.selected = m.queue.selected.min(m.queue.jobs.len().saturating_sub(1));
}

fn sort_queue(m: &mut Model) {
    // Running jobs first, then waiting ones in their order, then ended ones kept for a retry.
    m.queue.jobs.sort_by_key(|j| match j.record.status {
        Status::Running => 0,
        Status::Queued => 1,
        _ => 2,
    });
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
            m.queue.jobs.retain(|j| j.record.id != r.id);
            let n = r.outputs.len();
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
    usize::from(layout::inner(m.areas().history).height.max(1))
}

fn clamp_scroll(m: &mut Model) {
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
fn want_preview(m: &mut Model, fx: &mut Vec<Effect>) {
    let Some(key) = preview_key(m) else { return };
    if m.preview.get(&key).is_some() || m.preview.requested.as_ref() == Some(&key) {
        return;
    }
    if m.preview.error.as_ref().is_some_and(|(k, _)| *k == key) {
        return;
    }
    let bytes = match &key.source {
        PreviewSource::Partial { id, .. } => m.preview.partials.get(id).map(|(_, b)| b.clone()),
        PreviewSource::File(_) => None,
    };
    m.preview.requested = Some(key.clone());
    fx.push(Effect::RenderPreview { key, bytes });
}
