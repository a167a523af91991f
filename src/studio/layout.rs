//! Where each pane goes for a terminal size. Pure: `update` uses it to know the preview's size,
//! `view` to draw.

use ratatui::layout::{Constraint, Direction, Layout, Rect};

/// The smallest terminal the studio draws in; below it a "too small" message is shown.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 12;
/// From this width (and height) on, the roomier arrangement is used.
pub const WIDE_WIDTH: u16 = 120;
pub const WIDE_HEIGHT: u16 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Areas {
    pub editor: Rect,
    /// The reference strip (the edit's input pictures), under the editor; empty without inputs.
    pub inputs: Rect,
    pub params: Rect,
    pub queue: Rect,
    pub history: Rect,
    pub preview: Rect,
    pub status: Rect,
    /// The parameters are shown on one line without a border.
    pub compact_params: bool,
    pub too_small: bool,
}

pub fn compute(width: u16, height: u16) -> Areas {
    compute_for(width, height, false)
}

/// The areas, or with `zoom` the zoomed layout: the preview takes the screen but for the queue
/// (one job line) and the status line, so a picture can be judged without leaving the studio.
pub fn compute_for(width: u16, height: u16, zoom: bool) -> Areas {
    compute_with(width, height, zoom, 0)
}

/// Rows the reference strip takes: its border and one line of inputs.
pub const STRIP_ROWS: u16 = 3;

/// [`compute_for`], with the reference strip under the editor when `strip` is more than 0: the
/// rows it would take (a compact screen gives it [`STRIP_ROWS`], a wide one up to `strip`).
pub fn compute_with(width: u16, height: u16, zoom: bool, strip: u16) -> Areas {
    let mut a = compute_plain(width, height, zoom);
    if strip == 0 || a.too_small || zoom {
        return a;
    }
    if a.compact_params {
        // Compact: the strip takes rows from the lists below the parameters, which move down.
        let take = STRIP_ROWS.min(a.history.height.saturating_sub(3));
        if take < STRIP_ROWS {
            return a;
        }
        a.inputs = Rect::new(0, a.params.bottom(), width, take);
        for r in [&mut a.queue, &mut a.preview] {
            if r.area() > 0 {
                r.y += take;
            }
        }
        a.history.y += take;
        a.history.height -= take;
        if a.preview.area() > 0 {
            a.preview.height = a.preview.height.saturating_sub(take);
        }
    } else {
        // Wide: the strip takes the editor's last rows.
        let take = strip.max(STRIP_ROWS).min(a.editor.height.saturating_sub(4));
        if take < STRIP_ROWS {
            return a;
        }
        a.editor.height -= take;
        a.inputs = Rect::new(a.editor.x, a.editor.bottom(), a.editor.width, take);
    }
    a
}

fn compute_plain(width: u16, height: u16, zoom: bool) -> Areas {
    let full = Rect::new(0, 0, width, height);
    if width < MIN_WIDTH || height < MIN_HEIGHT {
        return Areas {
            too_small: true,
            status: full,
            ..Areas::default()
        };
    }
    let [main, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(full);
    if zoom {
        let [queue, preview] =
            Layout::vertical([Constraint::Length(3), Constraint::Min(4)]).areas(main);
        return Areas {
            queue,
            preview,
            status,
            compact_params: true,
            ..Areas::default()
        };
    }
    if width >= WIDE_WIDTH && height >= WIDE_HEIGHT {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
                .areas(main);
        let [editor, params, queue] = Layout::vertical([
            Constraint::Percentage(40),
            Constraint::Length(7),
            Constraint::Min(4),
        ])
        .areas(left);
        let [history, preview] =
            Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(right);
        return Areas {
            editor,
            inputs: Rect::default(),
            params,
            queue,
            history,
            preview,
            status,
            compact_params: false,
            too_small: false,
        };
    }
    let editor_rows = if height >= 20 { 5 } else { 4 };
    let [editor, params, rest] = Layout::vertical([
        Constraint::Length(editor_rows),
        Constraint::Length(1),
        Constraint::Min(4),
    ])
    .areas(main);
    let (lists, preview) = if width >= 60 {
        let [l, p] = Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
            .areas(rest);
        (l, p)
    } else {
        (rest, Rect::default())
    };
    let queue_rows = if lists.height >= 12 { 5 } else { 4 };
    let [queue, history] = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Length(queue_rows), Constraint::Min(3)])
        .areas(lists);
    Areas {
        editor,
        inputs: Rect::default(),
        params,
        queue,
        history,
        preview,
        status,
        compact_params: true,
        too_small: false,
    }
}

/// The inside of a bordered pane.
pub fn inner(r: Rect) -> Rect {
    Rect::new(
        r.x.saturating_add(1),
        r.y.saturating_add(1),
        r.width.saturating_sub(2),
        r.height.saturating_sub(2),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_fit_inside_the_screen_and_do_not_overlap() {
        for (w, h) in [
            (40, 12),
            (80, 24),
            (100, 30),
            (120, 40),
            (200, 60),
            (300, 100),
            (59, 20),
            (61, 13),
        ] {
            for strip in [0, STRIP_ROWS, 8] {
                let a = compute_with(w, h, false, strip);
                assert!(!a.too_small, "{w}x{h}");
                if strip > 0 && h >= 20 {
                    let rows = a.inputs.height;
                    assert!((STRIP_ROWS..=strip).contains(&rows), "{w}x{h}: {rows}");
                }
                let panes = [
                    a.editor, a.inputs, a.params, a.queue, a.history, a.preview, a.status,
                ];
                let screen = Rect::new(0, 0, w, h);
                for (i, p) in panes.iter().enumerate() {
                    assert!(
                        screen.contains(p.as_position()) || p.area() == 0,
                        "{w}x{h} pane {i} {p:?}"
                    );
                    assert!(p.right() <= w && p.bottom() <= h, "{w}x{h} pane {i} {p:?}");
                    for q in &panes[i + 1..] {
                        assert!(
                            !p.intersects(*q) || p.area() == 0 || q.area() == 0,
                            "{w}x{h}: {p:?} overlaps {q:?}"
                        );
                    }
                }
                assert!(a.history.height >= 3, "{w}x{h}");
            }
        }
        assert!(compute(39, 24).too_small);
        assert!(compute(80, 11).too_small);
        assert!(compute(1, 1).too_small);
    }
}
