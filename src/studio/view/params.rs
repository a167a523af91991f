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
            (
                *r,
                sanitize::line(&params::value(&m.params, *r)).into_owned(),
                focused && i == m.param_cursor,
            )
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
    if compact {
        // One line: "model gpt-image-2 · size auto · …   ≈ $0.04"
        let mut line: Vec<Span> = Vec::new();
        for (i, (row, value, sel)) in items.iter().enumerate() {
            if i > 0 {
                line.push(Span::styled(" · ", theme::dim()));
            }
            line.push(Span::styled(format!("{} ", row.label()), theme::dim()));
            line.push(Span::styled(
                value.clone(),
                if *sel {
                    theme::selected()
                } else {
                    theme::title(focused && *sel)
                },
            ));
        }
        line.push(Span::styled(format!("  {cost}"), theme::warn()));
        // Keep the selected field in view on narrow screens by starting the line near it.
        let start = if focused {
            m.param_cursor.saturating_sub(2) * 4
        } else {
            0
        };
        let line: Vec<Span> = line.into_iter().skip(start).collect();
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
