//! The compare screen: 2–4 images side by side (or one place in blink mode), each captioned,
//! with what differs from A below them.

use super::theme;
use crate::studio::compare::{self, Cell};
use crate::studio::keymap::{Action, Context};
use crate::studio::model::{Compared, Model};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

/// Draw on the whole screen (`area`) but its last row, the status line's.
pub fn draw(m: &Model, c: &Compared, f: &mut Frame, area: Rect) {
    f.render_widget(
        Clear,
        Rect {
            height: area.height.saturating_sub(1),
            ..area
        },
    );
    let (title, _, diff) = compare::regions(area.width, area.height, c.items.len());
    let key = |a| m.keymap.hint(Context::Compare, a);
    let mode = if c.blink {
        format!(
            "blink {}/{} · {}/{} switch · {} side by side",
            c.shown + 1,
            c.items.len(),
            key(Action::PrevCompared),
            key(Action::NextCompared),
            key(Action::Blink)
        )
    } else {
        format!("side by side · {} blink", key(Action::Blink))
    };
    let heading = format!(
        " Compare {} · {mode} · 0–5 rate {} · {} reject · {} back ",
        compare::letter(c.shown),
        compare::letter(c.shown),
        key(Action::Reject),
        key(Action::CloseCompare)
    );
    f.render_widget(
        Paragraph::new(Span::styled(
            super::fit(&heading, usize::from(title.width)).into_owned(),
            theme::title(true),
        )),
        title,
    );
    for cell in compare::cells(m, c) {
        draw_cell(m, c, &cell, f);
    }
    let lines: Vec<Line> = (1..c.items.len())
        .map(|i| {
            Line::from(Span::styled(
                super::fit(&compare::difference_line(c, i), usize::from(diff.width)).into_owned(),
                theme::dim(),
            ))
        })
        .collect();
    f.render_widget(Paragraph::new(lines), diff);
}

fn draw_cell(m: &Model, c: &Compared, cell: &Cell, f: &mut Frame) {
    let chosen = cell.index == c.shown;
    let style = if chosen && !c.blink {
        theme::title(true)
    } else {
        theme::dim()
    };
    f.render_widget(
        Paragraph::new(Span::styled(
            super::fit(
                &compare::caption(c, cell.index),
                usize::from(cell.caption.width),
            )
            .into_owned(),
            style,
        )),
        cell.caption,
    );
    let Some(key) = &cell.key else {
        let text = if m.graphics == crate::studio::model::Graphics::None {
            "previews are off (EASEL_GRAPHICS=none)"
        } else {
            "no image"
        };
        f.render_widget(
            Paragraph::new(Span::styled(text, theme::dim())).wrap(Wrap { trim: true }),
            cell.picture,
        );
        return;
    };
    match m.preview.get(key) {
        Some(rendered) => {
            super::draw_picture(rendered, f, cell.picture);
        }
        None => {
            let text = match &m.preview.error {
                Some((k, why)) if k == key => crate::sanitize::line(why).into_owned(),
                _ => "loading…".into(),
            };
            f.render_widget(
                Paragraph::new(Span::styled(text, theme::dim())).wrap(Wrap { trim: true }),
                cell.picture,
            );
        }
    }
}
