//! The prompt editor pane: the text area, with a counter against the model's prompt limit.

use super::theme;
use crate::studio::model::{Model, Pane};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders};

pub fn draw(m: &Model, f: &mut Frame, area: Rect) {
    if area.width < 3 || area.height < 3 {
        return;
    }
    let focused = m.focus == Pane::Editor;
    let chars: usize = m
        .editor
        .lines()
        .iter()
        .map(|l| l.chars().count())
        .sum::<usize>()
        + m.editor.lines().len().saturating_sub(1);
    let limit = m.catalog.get(&m.params.model).map(|s| s.prompt_max_chars);
    let counter = match limit {
        Some(max) => format!(" {chars}/{max} "),
        None => format!(" {chars} "),
    };
    let over = limit.is_some_and(|max| chars > max);
    let submit = m.keymap.hint(
        crate::studio::keymap::Context::Editor,
        crate::studio::keymap::Action::Submit,
    );
    let external = m.keymap.hint(
        crate::studio::keymap::Context::Editor,
        crate::studio::keymap::Action::ExternalEditor,
    );
    // The longest hint that leaves the counter and a stretch of border in view.
    let room = usize::from(area.width).saturating_sub(counter.chars().count() + 4);
    let hint = if focused {
        [
            format!(" {submit} queue · {external} editor · Esc leave "),
            format!(" {submit} queue · Esc leave "),
            format!(" {submit} queue "),
        ]
        .into_iter()
        .find(|h| unicode_width::UnicodeWidthStr::width(h.as_str()) <= room)
        .unwrap_or_default()
    } else {
        String::new()
    };
    // What a run expands to (or why it cannot) takes the place of the hint: it matters more.
    let (hint, hint_style) = match m.run_preview.label() {
        Some((text, warning)) => {
            let text = crate::sanitize::line(&text).into_owned();
            // Where the whole does not fit, the figures without "expands to".
            let short = text
                .strip_prefix("expands to ")
                .unwrap_or(&text)
                .to_string();
            let shown = [format!(" {text} "), format!(" {short} ")]
                .into_iter()
                .find(|h| unicode_width::UnicodeWidthStr::width(h.as_str()) <= room)
                .unwrap_or_else(|| super::fit(&format!(" {short} "), room).into_owned());
            let style = if warning {
                theme::warn()
            } else {
                theme::title(false)
            };
            (shown, style)
        }
        None => (hint, theme::dim()),
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(focused))
        .title(Span::styled(" Prompt ", theme::title(focused)))
        .title_bottom(Line::from(Span::styled(hint, hint_style)))
        .title_bottom(
            Line::from(Span::styled(
                counter,
                if over { theme::error() } else { theme::dim() },
            ))
            .right_aligned(),
        );
    let mut editor = m.editor.clone();
    editor.set_block(block);
    if !focused {
        editor.set_cursor_style(ratatui::style::Style::default());
    }
    f.render_widget(&editor, area);
}
