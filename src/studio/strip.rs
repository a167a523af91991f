//! The reference strip's geometry (issue 12): where each input picture of the edit goes, drawn
//! small over its name where graphics show pictures and the strip has the rows. Pure: `update`
//! asks for the pictures it shows, `view` draws them.

use super::layout;
use super::model::{Graphics, Model};
use super::msg::{PreviewKey, PreviewSource};
use ratatui::layout::Rect;

/// A cell's width in terminal columns (a picture of 19 and a column between cells).
pub const CELL_W: u16 = 20;

/// One visible input.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Which input (0: the picture edited).
    pub index: usize,
    pub picture: Rect,
    pub caption: Rect,
    pub key: PreviewKey,
}

/// The inside of the strip.
pub fn inner(m: &Model) -> Rect {
    layout::inner(m.areas().inputs)
}

/// The strip shows pictures: graphics, and rows for a picture over the names.
pub fn pictures(m: &Model) -> bool {
    m.graphics != Graphics::None && inner(m).height >= 3 && !m.params.images.is_empty()
}

/// The visible inputs, the selected one always among them.
pub fn cells(m: &Model) -> Vec<Cell> {
    if !pictures(m) {
        return Vec::new();
    }
    let inner = inner(m);
    let per = usize::from((inner.width / CELL_W).max(1));
    let n = m.params.images.len();
    let cursor = m.input_cursor.min(n.saturating_sub(1));
    let first = (cursor + 1).saturating_sub(per);
    let rows = inner.height - 1;
    m.params
        .images
        .iter()
        .enumerate()
        .skip(first)
        .take(per)
        .enumerate()
        .map(|(slot, (index, input))| {
            let x = inner.x + u16::try_from(slot).unwrap_or(0) * CELL_W;
            let width = (CELL_W - 1).min(inner.right().saturating_sub(x));
            let picture = Rect::new(x, inner.y, width, rows);
            Cell {
                index,
                picture,
                caption: Rect::new(x, inner.y + rows, width, 1),
                key: PreviewKey {
                    source: PreviewSource::Input(input.path.clone()),
                    cols: picture.width,
                    rows: picture.height,
                },
            }
        })
        .collect()
}
