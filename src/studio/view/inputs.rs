//! The reference strip under the editor (issue 12): the edit's input pictures in order (the
//! first is the picture edited, the others references), and the mask; or the path being typed.

use super::theme;
use crate::sanitize;
use crate::studio::keymap::{Action, Context};
use crate::studio::model::{Model, Pane};
use crate::studio::msg::InputKind;
use crate::studio::update::input_label;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

pub fn draw(m: &Model, f: &mut Frame, area: Rect) {
    if area.width < 3 || area.height < 3 {
        return;
    }
    let focused = m.focus == Pane::Inputs;
    let n = m.params.images.len();
    let fidelity = m
        .params
        .input_fidelity
        .as_deref()
        .map(|f| format!("· fidelity {} ", sanitize::line(f)))
        .unwrap_or_default();
    let title = match n {
        0 => " Inputs ".to_string(),
        1 => format!(" Edit of 1 picture {fidelity}"),
        2 => format!(" Edit of 2 pictures (1 reference) {fidelity}"),
        _ => format!(" Edit of {n} pictures ({} references) {fidelity}", n - 1),
    };
    let key = |a| m.keymap.hint(Context::Inputs, a);
    let hint = if focused {
        format!(
            " {}/{} select · {}/{} move · {} remove · {} add · {} paint mask · {} mask file ",
            key(Action::Left),
            key(Action::Right),
            key(Action::MoveLeft),
            key(Action::MoveRight),
            key(Action::RemoveInput),
            key(Action::AddFile),
            key(Action::PaintMask),
            key(Action::LoadMask),
        )
    } else {
        String::new()
    };
    let room = usize::from(area.width).saturating_sub(4);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(focused))
        .title(Span::styled(title, theme::title(focused)))
        .title_bottom(Line::from(Span::styled(
            super::fit(&hint, room).into_owned(),
            theme::dim(),
        )));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let width = usize::from(inner.width);
    let cells = crate::studio::strip::cells(m);
    if !cells.is_empty() {
        pictures(m, f, &cells, inner, focused);
    }
    // With pictures, the names are under them and a typed path goes on their line.
    let inner = if cells.is_empty() {
        inner
    } else {
        Rect {
            y: inner.bottom() - 1,
            height: 1,
            ..inner
        }
    };
    if let Some(input) = &m.path_input {
        let label = match input.kind {
            InputKind::Reference => "add reference (path or history id[:N]): ",
            InputKind::Mask => "mask file (PNG with transparency): ",
        };
        // The end of a long path stays in view.
        let typed = sanitize::line(&input.text).into_owned();
        let room = width.saturating_sub(label.chars().count() + 1);
        let skip = typed.chars().count().saturating_sub(room);
        let typed: String = typed.chars().skip(skip).collect();
        let line = Line::from(vec![
            Span::styled(label, theme::key()),
            Span::raw(typed),
            Span::styled("▏", theme::key()),
        ]);
        f.render_widget(Paragraph::new(line), inner);
        return;
    }
    if !cells.is_empty() {
        return;
    }
    let selected = focused.then(|| m.input_cursor.min(n.saturating_sub(1)));
    // The long form ("1 edit 1f2e3d4c #1") where it fits, else the short one ("1·1f2e3d4c #1").
    let long = items(m, selected, true);
    let spans = if spans_width(&long) <= width {
        long
    } else {
        items(m, selected, false)
    };
    // Cut to the width, keeping the selected input in view.
    let line = fit_spans(spans, selected.map(|i| i * 2), width);
    f.render_widget(Paragraph::new(line), inner);
}

/// Each visible input drawn small over its name; the mask named in the next free cell.
fn pictures(
    m: &Model,
    f: &mut Frame,
    cells: &[crate::studio::strip::Cell],
    inner: Rect,
    focused: bool,
) {
    let n = m.params.images.len();
    for cell in cells {
        let Some(input) = m.params.images.get(cell.index) else {
            continue;
        };
        match m.preview.get(&cell.key) {
            Some(r) => super::draw_picture(r, f, cell.picture),
            None => {
                let failed = m.preview.failed_cells.iter().any(|(k, _)| *k == cell.key);
                let text = if failed { "cannot read it" } else { "…" };
                f.render_widget(
                    Paragraph::new(Span::styled(text, theme::dim())),
                    cell.picture,
                );
            }
        }
        let role = if cell.index == 0 { "edit" } else { "ref" };
        let caption = format!("{} {role} {}", cell.index + 1, input_label(input));
        let style = if focused && cell.index == m.input_cursor.min(n.saturating_sub(1)) {
            theme::selected()
        } else if cell.index == 0 {
            theme::title(true)
        } else {
            ratatui::style::Style::default()
        };
        f.render_widget(
            Paragraph::new(Span::styled(
                super::pad(&caption, usize::from(cell.caption.width)),
                style,
            )),
            cell.caption,
        );
    }
    // More inputs than fit: say how many are out of view.
    let shown = cells.len();
    let next = cells
        .last()
        .map_or(inner.x, |c| c.picture.x + crate::studio::strip::CELL_W);
    let room = inner.right().saturating_sub(next);
    if room == 0 {
        return;
    }
    let hidden = n.saturating_sub(shown);
    let mut lines = Vec::new();
    if hidden > 0 {
        lines.push(Line::from(Span::styled(
            format!("+{hidden} more"),
            theme::dim(),
        )));
    }
    lines.push(match &m.params.mask {
        Some(mask) => Line::from(Span::styled(
            format!("mask: {}", input_label(mask)),
            theme::warn(),
        )),
        None => Line::from(Span::styled("no mask: all may change", theme::dim())),
    });
    let at = Rect::new(next, inner.y, room, inner.height.saturating_sub(1));
    f.render_widget(
        Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: true }),
        at,
    );
}

fn spans_width(spans: &[Span<'_>]) -> usize {
    spans
        .iter()
        .map(|s| unicode_width::UnicodeWidthStr::width(s.content.as_ref()))
        .sum()
}

/// The inputs as spans (each followed by a space), then the mask.
fn items(m: &Model, selected: Option<usize>, long: bool) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    let n = m.params.images.len();
    for (i, input) in m.params.images.iter().enumerate() {
        let text = match (long, i) {
            (true, 0) => format!("[{} edit {}]", i + 1, input_label(input)),
            (true, _) => format!("[{} ref {}]", i + 1, input_label(input)),
            (false, _) => format!("{}·{}", i + 1, input_label(input)),
        };
        let style = if selected == Some(i) {
            theme::selected()
        } else if i == 0 {
            theme::title(true)
        } else {
            ratatui::style::Style::default()
        };
        spans.push(Span::styled(text, style));
        spans.push(Span::raw(" "));
    }
    match &m.params.mask {
        Some(mask) => spans.push(Span::styled(
            format!("mask: {}", input_label(mask)),
            theme::warn(),
        )),
        None if n > 0 => spans.push(Span::styled(
            if long {
                "no mask: all may change"
            } else {
                "no mask"
            },
            theme::dim(),
        )),
        None => {}
    }
    spans
}

/// Spans cut to `cols` columns, the last one ending with an ellipsis when cut; spans before
/// `keep` are left out (for an ellipsis) until `keep` fits.
fn fit_spans(mut spans: Vec<Span<'static>>, keep: Option<usize>, cols: usize) -> Line<'static> {
    if let Some(keep) = keep.filter(|k| *k < spans.len()) {
        let end = spans_width(&spans[..=keep]);
        if end > cols {
            let mut drop = 0;
            let mut w = end;
            while drop < keep && w + 1 > cols {
                w -= unicode_width::UnicodeWidthStr::width(spans[drop].content.as_ref());
                drop += 1;
            }
            spans.drain(..drop);
            spans.insert(0, Span::styled("…", theme::dim()));
        }
    }
    let mut used = 0;
    let mut out = Vec::new();
    for s in spans {
        let w = unicode_width::UnicodeWidthStr::width(s.content.as_ref());
        if used + w > cols {
            let rest = cols.saturating_sub(used);
            out.push(Span::styled(
                super::fit(&s.content, rest).into_owned(),
                s.style,
            ));
            break;
        }
        used += w;
        out.push(s);
    }
    Line::from(out)
}
