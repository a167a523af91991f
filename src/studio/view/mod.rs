//! Drawing: a pure function of the model, one file per pane.

pub mod editor;
pub mod history;
pub mod overlay;
pub mod params;
pub mod preview;
pub mod queue;
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
    let a = layout::compute(area.width, area.height);
    if a.too_small {
        let msg = format!(
            "terminal too small: {}x{} (easel needs at least {}x{})",
            area.width,
            area.height,
            layout::MIN_WIDTH,
            layout::MIN_HEIGHT
        );
        f.render_widget(Paragraph::new(Line::from(msg)).wrap(Wrap { trim: true }), area);
        return;
    }
    editor::draw(m, f, a.editor);
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

/// Map 24-bit colours (pictures drawn in half-blocks) to the 256-colour palette, for terminals
/// without truecolor.
pub fn to_256_colours(buf: &mut Buffer) {
    let map = |c: Color| match c {
        Color::Rgb(r, g, b) => Color::Indexed(ansi_colours::ansi256_from_rgb((r, g, b))),
        other => other,
    };
    for cell in buf.content.iter_mut() {
        cell.fg = map(cell.fg);
        cell.bg = map(cell.bg);
    }
}
