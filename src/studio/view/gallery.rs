//! The gallery: the history as a grid of thumbnails on the whole screen, the selected cell
//! framed, its prompt, date and rating under the grid.

use super::theme;
use crate::sanitize;
use crate::studio::gallery;
use crate::studio::keymap::{Action, Context};
use crate::studio::model::Model;
use chrono::Local;
use ratatui::Frame;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

pub fn draw(m: &Model, f: &mut Frame) {
    let g = gallery::geometry(m.width, m.height);
    f.render_widget(Clear, g.frame);
    let h = &m.history;
    let key = |a| m.keymap.hint(Context::History, a);
    let mut title = format!(" Gallery {} ", h.total);
    if !h.text.is_empty() {
        title.push_str(&format!(
            "/{} ",
            sanitize::truncate(&sanitize::line(&h.text), 20)
        ));
    }
    let position = if h.total > 0 {
        format!(
            " {}/{} · {} list ",
            h.selected + 1,
            h.total,
            key(Action::Gallery)
        )
    } else {
        format!(" {} list ", key(Action::Gallery))
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(true))
        .title(Span::styled(title, theme::title(true)))
        .title_bottom(Line::from(position).right_aligned());
    f.render_widget(block, g.frame);
    if h.total == 0 {
        let text = if h.loaded { "no match" } else { "loading…" };
        f.render_widget(Paragraph::new(Span::styled(text, theme::dim())), g.grid);
        return;
    }
    for cell in gallery::cells(m) {
        let selected = cell.pos == h.selected;
        let record = h.rows.get(&cell.pos);
        // The caption: rating and star, then the prompt.
        let caption = match record {
            Some(r) => {
                let mark = m
                    .marked
                    .iter()
                    .position(|x| x.record.id == r.id)
                    .map(|i| format!("{} ", crate::studio::compare::letter(i)))
                    .unwrap_or_default();
                let star = if r.starred { "★" } else { "" };
                let rating = if r.rating > 0 {
                    format!("{}", r.rating)
                } else {
                    String::new()
                };
                format!("{mark}{star}{rating} {}", sanitize::line(&r.prompt))
            }
            None => "…".into(),
        };
        let style = if selected {
            theme::selected()
        } else {
            theme::dim()
        };
        f.render_widget(
            Paragraph::new(Span::styled(
                super::pad(caption.trim_start(), usize::from(cell.caption.width)),
                style,
            )),
            cell.caption,
        );
        picture(m, &cell, record.is_some_and(|r| r.outputs.is_empty()), f);
    }
    // The selected record, under the grid.
    if let Some(r) = h.selected_record() {
        let when = r.created.with_timezone(&Local).format("%Y-%m-%d %H:%M");
        let rating = if r.rating > 0 {
            format!(" · {}", "★".repeat(usize::from(r.rating.min(5))))
        } else {
            String::new()
        };
        let lines = vec![
            Line::from(Span::raw(
                super::fit(&sanitize::line(&r.prompt), usize::from(g.footer.width)).into_owned(),
            )),
            Line::from(Span::styled(
                super::fit(
                    &format!(
                        "{} · {when} · {} · {}{rating}",
                        r.id.short(),
                        sanitize::line(&r.model),
                        r.status
                    ),
                    usize::from(g.footer.width),
                )
                .into_owned(),
                theme::dim(),
            )),
        ];
        f.render_widget(Paragraph::new(lines), g.footer);
    }
}

fn picture(m: &Model, cell: &gallery::Cell, no_image: bool, f: &mut Frame) {
    let Some(key) = &cell.key else {
        let text = if no_image { "no image" } else { "" };
        f.render_widget(
            Paragraph::new(Span::styled(text, theme::dim())),
            cell.picture,
        );
        return;
    };
    if let Some(rendered) = m.preview.get(key) {
        super::draw_picture(rendered, f, cell.picture);
        return;
    }
    // A placeholder while the thumbnail is made (or why it cannot be).
    let text = match m.preview.failed_cells.iter().find(|(k, _)| k == key) {
        Some((_, why)) => sanitize::line(why).into_owned(),
        None => "…".into(),
    };
    f.render_widget(
        Paragraph::new(Span::styled(text, theme::dim()))
            .wrap(ratatui::widgets::Wrap { trim: true }),
        cell.picture,
    );
}
