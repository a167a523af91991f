//! The preview pane: the selected history image or a running job's newest partial, drawn through
//! ratatui-image inside the frame's buffer, with a caption.

use super::theme;
use crate::sanitize;
use crate::studio::model::preview_key;
use crate::studio::model::{Graphics, Model};
use crate::studio::msg::PreviewSource;
use crate::studio::preview::{KittyImage, Picture};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use std::sync::Arc;

pub fn draw(m: &Model, f: &mut Frame, area: Rect) {
    if area.width < 3 || area.height < 3 {
        return;
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(false))
        .title(Span::styled(
            format!(" Preview · {} ", m.graphics.label()),
            theme::title(false),
        ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let key = preview_key(m);
    let caption = match (&key, m.history.selected_record()) {
        (Some(k), _) if matches!(k.source, PreviewSource::Partial { .. }) => match &k.source {
            PreviewSource::Partial { index, .. } => {
                format!("partial image {} (generating…)", index + 1)
            }
            PreviewSource::File(_)
            | PreviewSource::Thumb { .. }
            | PreviewSource::Input(_)
            | PreviewSource::Compared(_) => String::new(),
        },
        (_, Some(r)) => {
            let o = r
                .outputs
                .get(m.history.image.min(r.outputs.len().saturating_sub(1)));
            let dims = o
                .map(|o| format!("{}x{} {}", o.width, o.height, o.format))
                .unwrap_or_default();
            let which = if r.outputs.len() > 1 {
                format!(" · {}/{} (n: next)", m.history.image + 1, r.outputs.len())
            } else {
                String::new()
            };
            let demo = if r.demo { " · DEMO" } else { "" };
            // Zoomed, the history list is hidden: say which record this is.
            let whose = if m.zoom {
                format!(
                    "{}/{} · {} · ",
                    m.history.selected + 1,
                    m.history.total,
                    sanitize::line(&r.prompt)
                )
            } else {
                String::new()
            };
            match &r.error {
                Some(e) if r.outputs.is_empty() => sanitize::line(&e.message).into_owned(),
                _ => format!("{whose}{dims}{which}{demo}"),
            }
        }
        _ => String::new(),
    };
    let caption_area = Rect {
        y: inner.bottom().saturating_sub(1),
        height: 1.min(inner.height),
        ..inner
    };
    let picture_area = picture_area(area);
    f.render_widget(
        Paragraph::new(Span::styled(
            super::fit(&sanitize::line(&caption), usize::from(inner.width)).into_owned(),
            theme::dim(),
        )),
        caption_area,
    );
    if m.graphics == Graphics::None {
        let text = "previews are off (EASEL_GRAPHICS=none): z shows the image full screen";
        f.render_widget(
            Paragraph::new(Line::from(Span::styled(text, theme::dim()))).wrap(Wrap { trim: true }),
            picture_area,
        );
        return;
    }
    let Some(key) = key else {
        let text = if m
            .history
            .selected_record()
            .is_some_and(|r| r.outputs.is_empty())
        {
            "no image"
        } else {
            ""
        };
        f.render_widget(
            Paragraph::new(Span::styled(text, theme::dim())),
            picture_area,
        );
        return;
    };
    match m.preview.get(&key) {
        Some(rendered) => {
            let at = picture_rect(picture_area, rendered.picture.size());
            match &rendered.picture {
                Picture::Cells(p) => f.render_widget(ratatui_image::Image::new(p), at),
                // Placed after the frame by the runtime (see `placed_picture`): the cells under
                // it stay blank.
                Picture::Placed(_) => f.render_widget(Clear, at),
                Picture::Text(rows) => draw_cells(rows, f.buffer_mut(), at),
            }
        }
        None => {
            let text = match &m.preview.error {
                Some((k, why)) if *k == key => sanitize::line(why).into_owned(),
                _ => "loading…".into(),
            };
            f.render_widget(
                Paragraph::new(Span::styled(text, theme::dim())).wrap(Wrap { trim: true }),
                picture_area,
            );
        }
    }
}

/// Symbols drawn by easel (quadrants) into `at`.
pub(crate) fn draw_cells(
    rows: &[Vec<crate::symbols::Cell>],
    buf: &mut ratatui::buffer::Buffer,
    at: Rect,
) {
    use ratatui::style::Color;
    let colour = |c: Option<[u8; 3]>| c.map_or(Color::Reset, |[r, g, b]| Color::Rgb(r, g, b));
    for (y, row) in (at.y..at.bottom()).zip(rows) {
        for (x, cell) in (at.x..at.right()).zip(row) {
            if let Some(c) = buf.cell_mut((x, y)) {
                c.set_char(cell.glyph)
                    .set_fg(colour(cell.fg))
                    .set_bg(colour(cell.bg));
            }
        }
    }
}

/// The picture's cells in its area: centred, cut to the area.
fn picture_rect(picture_area: Rect, size: ratatui::layout::Size) -> Rect {
    let x = picture_area.x + picture_area.width.saturating_sub(size.width) / 2;
    let y = picture_area.y + picture_area.height.saturating_sub(size.height) / 2;
    Rect::new(
        x,
        y,
        size.width.min(picture_area.width),
        size.height.min(picture_area.height),
    )
    .intersection(picture_area)
}

/// The area pictures take in a preview pane drawn at `area`.
fn picture_area(area: Rect) -> Rect {
    let inner = Block::default().borders(Borders::ALL).inner(area);
    Rect {
        height: inner.height.saturating_sub(1),
        ..inner
    }
}

/// The picture placed outside the frame's cells (kitty graphics by id) that the preview pane
/// drawn at `area` shows, and its cells.
pub fn placed_picture(m: &Model, area: Rect) -> Option<(Arc<KittyImage>, Rect)> {
    if area.width < 3 || area.height < 3 || m.graphics == Graphics::None {
        return None;
    }
    let key = preview_key(m)?;
    match &m.preview.get(&key)?.picture {
        Picture::Placed(k) => {
            let at = picture_rect(picture_area(area), k.size);
            (!at.is_empty()).then(|| (k.clone(), at))
        }
        Picture::Cells(_) | Picture::Text(_) => None,
    }
}
