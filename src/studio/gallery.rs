//! The gallery (issue 13): history as a grid of thumbnails on the whole screen (`v` toggles it
//! with the list), windowed like the list: only the visible cells are built, their records
//! loaded a page at a time, their thumbnails made once (and cached on disk by the image's hash).
//! Pure: where each cell goes and what it shows, for `update` and `view` alike.

use super::model::{Graphics, Model};
use super::msg::{PreviewKey, PreviewSource};
use ratatui::layout::Rect;

/// A cell's size in terminal cells (a picture and its caption line). Terminal cells are about
/// twice as tall as wide, so 24×11 holds a square picture of 24×10.
pub const CELL_W: u16 = 24;
pub const CELL_H: u16 = 11;

/// Where the grid goes and how many cells fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// The bordered frame (the screen but its status line).
    pub frame: Rect,
    /// The cells' area, inside the frame.
    pub grid: Rect,
    /// The selected cell's prompt, date and rating: two lines under the grid.
    pub footer: Rect,
    pub cols: usize,
    pub rows: usize,
    pub cell_w: u16,
}

pub fn geometry(width: u16, height: u16) -> Geometry {
    let frame = Rect::new(0, 0, width, height.saturating_sub(1));
    let inner = super::layout::inner(frame);
    let footer_h = 2.min(inner.height);
    let grid = Rect {
        height: inner.height.saturating_sub(footer_h),
        ..inner
    };
    let footer = Rect::new(inner.x, grid.bottom(), inner.width, footer_h);
    let cols = usize::from((grid.width / CELL_W).max(1));
    let rows = usize::from((grid.height / CELL_H).max(1));
    // The cells share the width evenly.
    let cell_w = u16::try_from(usize::from(grid.width) / cols).unwrap_or(CELL_W);
    Geometry {
        frame,
        grid,
        footer,
        cols,
        rows,
        cell_w,
    }
}

/// How many records the grid shows at once.
pub fn visible(width: u16, height: u16) -> usize {
    let g = geometry(width, height);
    g.cols * g.rows
}

/// The first visible position for a selection, keeping whole rows of the grid: the selection
/// stays in view, and the view moves a row at a time.
pub fn scroll_for(selected: usize, scroll: usize, cols: usize, rows: usize, total: usize) -> usize {
    let cols = cols.max(1);
    let rows = rows.max(1);
    let row = selected / cols;
    let first_row = scroll / cols;
    let first_row = if row < first_row {
        row
    } else if row >= first_row + rows {
        row + 1 - rows
    } else {
        first_row
    };
    // No empty rows at the end when the grid could be full.
    let last_row = total.saturating_sub(1) / cols;
    let first_row = first_row.min((last_row + 1).saturating_sub(rows));
    first_row * cols
}

/// One visible cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// The record's position in the history.
    pub pos: usize,
    pub picture: Rect,
    pub caption: Rect,
    pub key: Option<PreviewKey>,
}

/// The visible cells, in order, with what each picture is (the record's shown image, as a
/// cached thumbnail).
pub fn cells(m: &Model) -> Vec<Cell> {
    let g = geometry(m.width, m.height);
    let h = &m.history;
    // Whole rows from the one holding the selection (the list's scroll may not be aligned).
    let first = scroll_for(h.selected, h.scroll, g.cols, g.rows, h.total);
    let mut out = Vec::new();
    for i in 0..g.cols * g.rows {
        let pos = first + i;
        if pos >= h.total {
            break;
        }
        let (col, row) = (
            u16::try_from(i % g.cols).unwrap_or(0),
            u16::try_from(i / g.cols).unwrap_or(0),
        );
        let x = g.grid.x + col * g.cell_w;
        let y = g.grid.y + row * CELL_H;
        // A column between cells, and the caption under the picture.
        let picture = Rect::new(x, y, g.cell_w.saturating_sub(1), CELL_H - 1);
        let caption = Rect::new(x, y + CELL_H - 1, g.cell_w.saturating_sub(1), 1);
        let key = h.rows.get(&pos).and_then(|r| {
            if m.graphics == Graphics::None {
                return None;
            }
            let image = if pos == h.selected { h.image } else { 0 };
            let out = r
                .outputs
                .get(image.min(r.outputs.len().saturating_sub(1)))?;
            if r.missing.contains(&out.path) {
                return None;
            }
            let path = if out.path.is_absolute() {
                out.path.clone()
            } else {
                m.data_dir.join(&out.path)
            };
            Some(PreviewKey {
                source: PreviewSource::Thumb {
                    path,
                    sha256: out.sha256.clone(),
                },
                cols: picture.width,
                rows: picture.height,
            })
        });
        out.push(Cell {
            pos,
            picture,
            caption,
            key,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_fills_the_screen_with_whole_cells() {
        // (width, height) → (cols, rows)
        for (w, h, cols, rows) in [
            (120, 40, 4, 3),
            (80, 24, 3, 1),
            (200, 60, 8, 5),
            (40, 12, 1, 1),
        ] {
            let g = geometry(w, h);
            assert_eq!((g.cols, g.rows), (cols, rows), "{w}x{h}");
            assert!(
                g.grid.right() <= w && g.footer.bottom() < h,
                "{w}x{h}: {g:?}"
            );
            assert!(usize::from(g.cell_w) * g.cols <= usize::from(g.grid.width));
        }
    }

    #[test]
    fn scrolling_keeps_the_selection_in_view_a_row_at_a_time() {
        // 4 columns, 3 rows, 100 records. (selected, scroll before) → scroll after
        for (selected, scroll, want) in [
            (0, 0, 0),
            (11, 0, 0),
            (12, 0, 4),
            (13, 4, 4),
            (3, 8, 0),
            (99, 0, 88),
            (50, 0, 40),
        ] {
            assert_eq!(
                scroll_for(selected, scroll, 4, 3, 100),
                want,
                "{selected} from {scroll}"
            );
        }
        // Fewer records than cells: the view stays at the top.
        assert_eq!(scroll_for(5, 0, 4, 3, 7), 0);
    }
}
