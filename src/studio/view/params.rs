//! The parameters pane: the model and every field it takes, with the request's estimated cost.

use super::theme;
use crate::catalog;
use crate::sanitize;
use crate::studio::model::{Model, Pane};
use crate::studio::params::{self, Row};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

/// The estimated cost line of the current request.
pub fn cost_label(m: &Model) -> String {
    if m.provider.demo {
        return "free (demo)".into();
    }
    let Some(spec) = m.catalog.get(&m.params.model) else {
        return "cost unknown".into();
    };
    let size = m.params.size.as_deref().unwrap_or("auto");
    let quality = m.params.quality.as_deref().unwrap_or("auto");
    match catalog::estimate_cost(spec, &m.prompt(), u32::from(m.params.n), size, quality) {
        Some(c) => format!("≈ ${c:.3}"),
        None => "cost unknown".into(),
    }
}

fn spans(m: &Model, focused: bool) -> Vec<(Row, String, bool)> {
    let rows = params::rows(&m.catalog, &m.params);
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            let mut value = sanitize::line(&params::value(&m.params, *r)).into_owned();
            // A model OpenAI no longer serves is marked, for OpenAI itself.
            if *r == Row::Model
                && m.provider.openai
                && let Some(label) = m
                    .catalog
                    .get(&m.params.model)
                    .and_then(|s| s.lifecycle_label(m.now.date_naive()))
            {
                value.push_str(&format!(" · {label}"));
            }
            (*r, value, focused && i == m.param_cursor)
        })
        .collect()
}

pub fn draw(m: &Model, f: &mut Frame, area: Rect, compact: bool) {
    if area.width < 3 || area.height == 0 {
        return;
    }
    let focused = m.focus == Pane::Params;
    let items = spans(m, focused);
    let cost = cost_label(m);
    if let Some(typed) = &m.size_input {
        // A size being typed, checked as it is typed.
        let check = params::check_typed_size(&m.catalog, &m.provider.rules, &m.params, typed);
        let mut line = vec![
            Span::styled("size ", theme::dim()),
            Span::raw(sanitize::line(typed).into_owned()),
            Span::styled("▏ ", theme::key()),
        ];
        match check {
            Ok(_) => line.push(Span::styled(
                "✓ Enter sets it · Esc keeps the old",
                theme::ok(),
            )),
            Err(e) => line.push(Span::styled(sanitize::line(&e).into_owned(), theme::warn())),
        }
        let at = if compact {
            area
        } else {
            let block = Block::default()
                .borders(Borders::ALL)
                .border_style(theme::border(focused))
                .title(Span::styled(
                    " Parameters · type a size ",
                    theme::title(focused),
                ));
            let inner = block.inner(area);
            f.render_widget(block, area);
            inner
        };
        f.render_widget(
            Paragraph::new(Line::from(line)).wrap(Wrap { trim: false }),
            at,
        );
        return;
    }
    if compact {
        // One line: "model gpt-image-2 · size auto · …   ≈ $0.04", started so that the focused
        // field (label and value) is in view.
        let width = |s: &str| unicode_width::UnicodeWidthStr::width(s);
        let cells: Vec<(String, String, bool)> = items
            .iter()
            .map(|(row, value, sel)| (format!("{} ", row.label()), value.clone(), *sel))
            .collect();
        let room = usize::from(area.width);
        let mut first = 0;
        if let Some(sel) = cells.iter().position(|c| c.2) {
            // Drop fields from the left until the selected one ends within the line.
            let end = |from: usize| -> usize {
                cells[from..=sel]
                    .iter()
                    .map(|(l, v, _)| width(l) + width(v) + 3)
                    .sum::<usize>()
                    + if from > 0 { 2 } else { 0 }
            };
            while first < sel && end(first) > room {
                first += 1;
            }
        }
        let mut line: Vec<Span> = Vec::new();
        if first > 0 {
            line.push(Span::styled("… ", theme::dim()));
        }
        for (i, (label, value, sel)) in cells.iter().enumerate().skip(first) {
            if i > first {
                line.push(Span::styled(" · ", theme::dim()));
            }
            line.push(Span::styled(
                label.clone(),
                if *sel {
                    theme::title(true)
                } else {
                    theme::dim()
                },
            ));
            line.push(Span::styled(
                value.clone(),
                if *sel {
                    theme::selected()
                } else {
                    ratatui::style::Style::default()
                },
            ));
        }
        line.push(Span::styled(format!("  {cost}"), theme::warn()));
        f.render_widget(Paragraph::new(Line::from(line)), area);
        return;
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(focused))
        .title(Span::styled(" Parameters ", theme::title(focused)))
        .title_bottom(Line::from(Span::styled(format!(" {cost} "), theme::warn())).right_aligned());
    let inner = block.inner(area);
    f.render_widget(block, area);
    // Two columns of "label value" cells.
    let col_width = (inner.width / 2).max(1) as usize;
    let mut lines = Vec::new();
    for pair in items.chunks(2) {
        let mut spans = Vec::new();
        for (row, value, sel) in pair {
            let label = format!("{:<12}", row.label());
            let room = col_width.saturating_sub(13).max(1);
            let v = sanitize::truncate(value, room).into_owned();
            spans.push(Span::styled(label, theme::dim()));
            spans.push(Span::styled(
                format!("{v:<room$}"),
                if *sel {
                    theme::selected()
                } else {
                    ratatui::style::Style::default()
                },
            ));
            spans.push(Span::raw(" "));
        }
        lines.push(Line::from(spans));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}
