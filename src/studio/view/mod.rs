//! Drawing: a pure function of the model, one file per pane.

pub mod compare;
pub mod editor;
pub mod gallery;
pub mod history;
pub mod inputs;
pub mod lineage;
pub mod mask;
pub mod overlay;
pub mod params;
pub mod preview;
pub mod queue;
pub mod run_grid;
pub mod status;
pub mod theme;

use super::layout;
use super::model::Model;
use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

/// Draw the whole screen.
pub fn view(m: &Model, f: &mut Frame) {
    let area = f.area();
    let a = layout::compute_with(area.width, area.height, m.zoom, m.strip_rows());
    if a.too_small {
        let msg = format!(
            "terminal too small: {}x{} (easel needs at least {}x{})",
            area.width,
            area.height,
            layout::MIN_WIDTH,
            layout::MIN_HEIGHT
        );
        f.render_widget(
            Paragraph::new(Line::from(msg)).wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    // So does the mask editor.
    if let Some(e) = &m.mask_edit {
        mask::draw(m, e, f);
        status::draw(m, f, a.status);
        overlay::draw(m, f, area);
        if !m.truecolor {
            to_256_colours(f.buffer_mut());
        }
        return;
    }
    // The lineage view takes the whole screen but the status line.
    if let Some(l) = &m.lineage {
        lineage::draw(m, l, f);
        status::draw(m, f, a.status);
        overlay::draw(m, f, area);
        if !m.truecolor {
            to_256_colours(f.buffer_mut());
        }
        return;
    }
    // The compare screen takes the whole screen but the status line.
    if let Some(c) = &m.compare {
        compare::draw(m, c, f, area);
        status::draw(m, f, a.status);
        overlay::draw(m, f, area);
        if !m.truecolor {
            to_256_colours(f.buffer_mut());
        }
        return;
    }
    // A run as a labelled grid.
    if let Some(g) = &m.run_grid {
        run_grid::draw(m, g, f);
        status::draw(m, f, a.status);
        overlay::draw(m, f, area);
        if !m.truecolor {
            to_256_colours(f.buffer_mut());
        }
        return;
    }
    // The gallery too, when the history is focused.
    if m.gallery_shown() {
        gallery::draw(m, f);
        status::draw(m, f, a.status);
        overlay::draw(m, f, area);
        if !m.truecolor {
            to_256_colours(f.buffer_mut());
        }
        return;
    }
    editor::draw(m, f, a.editor);
    if m.strip_shown() {
        inputs::draw(m, f, a.inputs);
    }
    params::draw(m, f, a.params, a.compact_params);
    queue::draw(m, f, a.queue);
    history::draw(m, f, a.history);
    preview::draw(m, f, a.preview);
    status::draw(m, f, a.status);
    overlay::draw(m, f, area);
    if !m.truecolor {
        to_256_colours(f.buffer_mut());
    }
}

/// The preview picture to place after the frame (kitty graphics by id), and where: none while
/// a popup is open (a placed picture would cover it) or the screen is too small.
pub fn kitty_placement(
    m: &Model,
    area: ratatui::layout::Rect,
) -> Option<(
    std::sync::Arc<crate::studio::preview::KittyImage>,
    ratatui::layout::Rect,
)> {
    let a = layout::compute_for(area.width, area.height, m.zoom);
    // The compare screen and the gallery draw their pictures into cells: nothing is placed.
    if a.too_small
        || m.overlay.is_some()
        || m.compare.is_some()
        || m.gallery_shown()
        || m.lineage.is_some()
        || m.run_grid.is_some()
    {
        return None;
    }
    preview::placed_picture(m, a.preview)
}

/// Draw a rendered picture centred in `area` (a cell of the gallery or the compare screen).
pub fn draw_picture(
    rendered: &crate::studio::preview::Rendered,
    f: &mut Frame,
    area: ratatui::layout::Rect,
) {
    use crate::studio::preview::Picture;
    let size = rendered.picture.size();
    let x = area.x + area.width.saturating_sub(size.width) / 2;
    let y = area.y + area.height.saturating_sub(size.height) / 2;
    let at = ratatui::layout::Rect::new(
        x,
        y,
        size.width.min(area.width),
        size.height.min(area.height),
    )
    .intersection(area);
    match &rendered.picture {
        Picture::Cells(p) => f.render_widget(ratatui_image::Image::new(p), at),
        Picture::Text(rows) => preview::draw_cells(rows, f.buffer_mut(), at),
        // Never made for cells (see `Renderer::render_decoded`); leave them blank.
        Picture::Placed(_) => f.render_widget(ratatui::widgets::Clear, at),
    }
}

/// Cut display text to at most `cols` terminal columns (wide characters such as CJK take two),
/// marking a cut with an ellipsis.
pub fn fit(s: &str, cols: usize) -> std::borrow::Cow<'_, str> {
    use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
    if s.width() <= cols {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > cols {
            break;
        }
        out.push(c);
        used += w;
    }
    if cols > 0 {
        out.push('…');
    }
    std::borrow::Cow::Owned(out)
}

/// [`fit`], then padded with spaces to exactly `cols` columns.
pub fn pad(s: &str, cols: usize) -> String {
    let t = fit(s, cols);
    let room = cols.saturating_sub(unicode_width::UnicodeWidthStr::width(t.as_ref()));
    format!("{t}{}", " ".repeat(room))
}

/// `s` fitted to `cols` and centred in them (pictures are drawn centred in their cells: their
/// labels stand over them).
pub fn centre(s: &str, cols: usize) -> String {
    let t = fit(s, cols);
    let room = cols.saturating_sub(unicode_width::UnicodeWidthStr::width(t.as_ref()));
    format!("{}{t}{}", " ".repeat(room / 2), " ".repeat(room - room / 2))
}

/// Map 24-bit colours (pictures drawn in half-blocks) to the 256-colour palette, for terminals
/// without truecolor, in a perceptual space (see [`crate::colour`]).
pub fn to_256_colours(buf: &mut Buffer) {
    let map = |c: Color| match c {
        Color::Rgb(r, g, b) => Color::Indexed(crate::colour::ansi256(r, g, b)),
        other => other,
    };
    for cell in buf.content.iter_mut() {
        cell.fg = map(cell.fg);
        cell.bg = map(cell.bg);
    }
}

/// What the screen shows that depends on the clock alone: the elapsed time of running jobs and
/// which notice is up. A tick that leaves this unchanged needs no redraw (an idle studio draws
/// nothing).
pub fn clock_face(m: &Model) -> (Vec<i64>, Option<(String, bool)>) {
    let elapsed = m
        .queue
        .jobs
        .iter()
        .filter(|j| j.record.status == crate::store::Status::Running)
        .filter_map(|j| j.record.started.map(|s| (m.now - s).num_seconds()))
        .collect();
    let notice = m.current_notice().map(|n| (n.text.clone(), n.error));
    (elapsed, notice)
}

/// The selected row of a list: one background for the whole row (the spans' own colours would
/// each become a background of their own under reverse video), their bold and underline kept.
pub fn selected_line(line: Line<'_>) -> Line<'_> {
    let spans = line
        .spans
        .into_iter()
        .map(|mut s| {
            s.style.fg = None;
            s.style.bg = None;
            s
        })
        .collect::<Vec<_>>();
    Line::from(spans).style(theme::selected())
}
