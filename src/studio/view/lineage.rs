//! The lineage view: a record's family as a tree on the whole screen (ancestors above, the
//! record marked ●, descendants below), a small picture by each node where graphics allow.
//! Only the visible nodes are drawn.

use super::theme;
use crate::sanitize;
use crate::studio::keymap::{Action, Context};
use crate::studio::lineage::{self, LineageView, Place};
use crate::studio::model::Model;
use chrono::Local;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

pub fn draw(m: &Model, view: &LineageView, f: &mut Frame) {
    let g = crate::studio::update::lineage_geometry(m);
    f.render_widget(Clear, g.frame);
    let key = |a| m.keymap.hint(Context::Lineage, a);
    let of = view.id.map(|id| id.short()).unwrap_or_default();
    let title = match &view.tree {
        Some(t) => format!(" Lineage of {of} · {} records ", t.nodes.len().max(1)),
        None => format!(" Lineage of {of} "),
    };
    let position = format!(
        " {}/{} · {} go to · {} back ",
        (view.cursor + 1).min(view.rows.len()),
        view.rows.len(),
        key(Action::GoToRecord),
        key(Action::CloseLineage)
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(true))
        .title(Span::styled(title, theme::title(true)))
        .title_bottom(Line::from(position).right_aligned());
    f.render_widget(block, g.frame);
    if let Some(e) = &view.error {
        let text = format!(
            "the family could not be read: {} ({} goes back)",
            sanitize::line(e),
            key(Action::CloseLineage)
        );
        f.render_widget(
            Paragraph::new(Span::styled(text, theme::error())).wrap(Wrap { trim: true }),
            g.body,
        );
        return;
    }
    let Some(tree) = &view.tree else {
        f.render_widget(
            Paragraph::new(Span::styled("reading the family…", theme::dim())),
            g.body,
        );
        return;
    };
    for (i, area) in lineage::visible(&g, view) {
        let Some(row) = view.rows.get(i) else {
            continue;
        };
        let node = tree.nodes.get(&row.id);
        let text_area = Rect {
            x: area.x + g.thumb_w,
            width: area.width.saturating_sub(g.thumb_w),
            ..area
        };
        if g.thumb_w > 0 {
            let pic = Rect::new(
                area.x,
                area.y,
                lineage::THUMB_W.min(area.width),
                area.height,
            );
            picture(m, i, node.is_some_and(|n| n.image.is_none()), f, pic);
        }
        let what = match (row.place, row.role) {
            (Place::Focus, _) | (_, None) => "this one".to_string(),
            (_, Some(role)) => role.as_str().to_string(),
        };
        let first = match node {
            Some(n) => format!(
                "{}{}  {what}  {}  {}{}",
                row.lead,
                row.id.short(),
                n.created.with_timezone(&Local).format("%Y-%m-%d %H:%M"),
                n.status,
                if row.cut { "  …" } else { "" }
            ),
            None => format!("{}{}  {what}  (parent deleted)", row.lead, row.id.short()),
        };
        let prompt = match node {
            Some(n) if n.prompt.trim().is_empty() => "(no prompt)".to_string(),
            Some(n) => sanitize::line(&n.prompt).into_owned(),
            None => String::new(),
        };
        let width = usize::from(text_area.width);
        let mut lines = vec![
            Line::from(super::pad(&first, width)),
            Line::from(super::pad(&format!("{}{prompt}", row.cont), width)),
        ];
        while lines.len() < usize::from(area.height) {
            lines.push(Line::from(super::pad(&row.cont, width)));
        }
        let mut style = if node.is_none() {
            theme::dim()
        } else {
            Style::default()
        };
        if row.place == Place::Focus {
            style = style.add_modifier(Modifier::BOLD);
        }
        if i == view.cursor {
            style = style.patch(theme::selected());
        }
        f.render_widget(Paragraph::new(lines).style(style), text_area);
    }
}

fn picture(m: &Model, index: usize, no_image: bool, f: &mut Frame, at: Rect) {
    let Some(key) = crate::studio::update::lineage_thumb(m, index) else {
        let text = if no_image { "  —" } else { "" };
        f.render_widget(Paragraph::new(Span::styled(text, theme::dim())), at);
        return;
    };
    if let Some(rendered) = m.preview.get(&key) {
        super::draw_picture(rendered, f, at);
        return;
    }
    let text = if m.preview.failed_cells.iter().any(|(k, _)| *k == key) {
        "  ?"
    } else {
        "  …"
    };
    f.render_widget(Paragraph::new(Span::styled(text, theme::dim())), at);
}
