//! The history pane: newest first, only the visible rows are built, a search line on `/`.

use super::queue::status_icon;
use super::theme;
use crate::sanitize;
use crate::studio::model::{Filter, Model, Pane};
use chrono::Local;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

pub fn draw(m: &Model, f: &mut Frame, area: Rect) {
    if area.width < 3 || area.height < 2 {
        return;
    }
    let focused = m.focus == Pane::History;
    let h = &m.history;
    let mut title = format!(" History {} ", h.total);
    if h.filter != Filter::All {
        title.push_str(&format!("[{}] ", sanitize::line(&h.filter.label())));
    }
    if !h.text.is_empty() && h.search.is_none() {
        title.push_str(&format!(
            "/{} ",
            sanitize::truncate(&sanitize::line(&h.text), 20)
        ));
    }
    let position = if h.total > 0 {
        format!(" {}/{} ", h.selected + 1, h.total)
    } else {
        String::new()
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(focused))
        .title(Span::styled(title, theme::title(focused)))
        .title_bottom(Line::from(Span::styled(position, theme::dim())).right_aligned());
    let mut inner = block.inner(area);
    f.render_widget(block, area);
    if let Some(typed) = &m.tag_input {
        // Tags being typed for the selected record, with what Tab would complete from.
        let hint: Vec<&str> = m.known_tags.iter().take(6).map(String::as_str).collect();
        let line = Line::from(vec![
            Span::styled("tags ", theme::key()),
            Span::raw(sanitize::line(typed).into_owned()),
            Span::styled("▏", theme::key()),
            Span::styled(
                super::fit(
                    &format!("  +add -remove · Tab: {}", hint.join(" ")),
                    usize::from(inner.width),
                )
                .into_owned(),
                theme::dim(),
            ),
        ]);
        f.render_widget(Paragraph::new(line), Rect { height: 1, ..inner });
        inner.y += 1;
        inner.height = inner.height.saturating_sub(1);
    } else if let Some(search) = &h.search {
        let line = Line::from(vec![
            Span::styled("/", theme::key()),
            Span::raw(sanitize::line(search).into_owned()),
            Span::styled("▏", theme::key()),
        ]);
        f.render_widget(Paragraph::new(line), Rect { height: 1, ..inner });
        inner.y += 1;
        inner.height = inner.height.saturating_sub(1);
    }
    if h.total == 0 {
        let text = if !h.loaded {
            "loading…"
        } else if h.text.is_empty() && h.filter == Filter::All {
            "nothing yet — your generations will appear here"
        } else {
            "no match"
        };
        f.render_widget(Paragraph::new(Span::styled(text, theme::dim())), inner);
        return;
    }
    let width = usize::from(inner.width);
    let rows = usize::from(inner.height);
    let search = (!h.text.trim().is_empty()).then(|| crate::store::query::Search::new(&h.text));
    // Only the visible rows are built.
    let lines: Vec<Line> = (h.scroll..h.total.min(h.scroll + rows))
        .map(|pos| {
            let Some(r) = h.rows.get(&pos) else {
                return Line::from(Span::styled("…", theme::dim()));
            };
            let (icon, style) = status_icon(r.status);
            let when = r
                .created
                .with_timezone(&Local)
                .format("%m-%d %H:%M")
                .to_string();
            let star = if r.starred { "★" } else { " " };
            // The rating as a digit: narrow, and readable in any font.
            let rating = match r.rating {
                0 => " ".to_string(),
                n => n.to_string(),
            };
            // With images marked for comparing, a column of their letters (A–D).
            let mark = (!m.marked.is_empty()).then(|| {
                m.marked
                    .iter()
                    .position(|x| x.record.id == r.id)
                    .map_or(' ', crate::studio::compare::letter)
            });
            let head = format!("{icon}{star}{rating} {when} ");
            let room = width
                .saturating_sub(head.chars().count() + usize::from(mark.is_some()))
                .max(1);
            let prompt = super::fit(&sanitize::line(&r.prompt), room).into_owned();
            let mut spans = Vec::new();
            if let Some(letter) = mark {
                spans.push(Span::styled(letter.to_string(), theme::title(true)));
            }
            spans.extend([
                Span::styled(icon.to_string(), style),
                Span::styled(star.to_string(), theme::warn()),
                Span::styled(format!("{rating} "), theme::key()),
                Span::styled(format!("{when} "), theme::dim()),
            ]);
            match &search {
                Some(search) => spans.extend(highlighted(&prompt, &search.highlight(&prompt))),
                None => spans.push(Span::raw(prompt)),
            }
            let line = Line::from(spans);
            match (pos == h.selected, focused) {
                (true, true) => super::selected_line(line),
                (true, false) => line.style(
                    ratatui::style::Style::default().add_modifier(ratatui::style::Modifier::BOLD),
                ),
                _ => line,
            }
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

/// The prompt as spans, the characters the search matched marked.
fn highlighted(prompt: &str, matched: &[usize]) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    let mut run = String::new();
    let mut run_matched = false;
    for (i, c) in prompt.chars().enumerate() {
        let is = matched.binary_search(&i).is_ok();
        if is != run_matched && !run.is_empty() {
            spans.push(span(std::mem::take(&mut run), run_matched));
        }
        run_matched = is;
        run.push(c);
    }
    if !run.is_empty() {
        spans.push(span(run, run_matched));
    }
    spans
}

fn span(text: String, matched: bool) -> Span<'static> {
    if matched {
        Span::styled(text, theme::matched())
    } else {
        Span::raw(text)
    }
}
