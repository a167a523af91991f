//! The "DEMO" label stamped in the bottom-right corner of every picture.

use image::RgbaImage;

/// 5x7 glyphs for D, E, M, O; bit 4 is the leftmost column.
pub(super) const GLYPHS: [[u8; 7]; 4] = [
    [
        0b11110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11110,
    ],
    [
        0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111,
    ],
    [
        0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001,
    ],
    [
        0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110,
    ],
];
/// Label size in font cells: four 5-wide glyphs with 1-cell gaps, 7 tall.
pub(super) const LABEL_COLS: i64 = 4 * 6 - 1;
pub(super) const LABEL_ROWS: i64 = 7;

/// Is font cell (col, row) of the label inked?
pub(super) fn label_cell(col: i64, row: i64) -> bool {
    if !(0..LABEL_COLS).contains(&col) || !(0..LABEL_ROWS).contains(&row) {
        return false;
    }
    let (letter, cx) = (col / 6, col % 6);
    if cx == 5 {
        return false;
    }
    GLYPHS
        .get(letter as usize)
        .and_then(|g| g.get(row as usize))
        .is_some_and(|bits| bits & (1 << (4 - cx)) != 0)
}

/// White "DEMO" with a dark outline in the bottom-right corner, scaled to the image.
pub(super) fn stamp_demo_label(img: &mut RgbaImage) {
    let (w, h) = img.dimensions();
    let cell = i64::from((w.min(h) / 160).max(1));
    let outline = (cell / 2).max(1);
    let margin = cell * 2 + outline;
    let x0 = i64::from(w) - margin - LABEL_COLS * cell;
    let y0 = i64::from(h) - margin - LABEL_ROWS * cell;
    let dark = [18u8, 18, 26];
    for py in (y0 - outline).max(0)..(y0 + LABEL_ROWS * cell + outline).min(i64::from(h)) {
        for px in (x0 - outline).max(0)..(x0 + LABEL_COLS * cell + outline).min(i64::from(w)) {
            let (lx, ly) = (px - x0, py - y0);
            let (col, row) = (lx.div_euclid(cell), ly.div_euclid(cell));
            let ink = label_cell(col, row);
            let near = !ink
                && (-1..=1).any(|dr| {
                    (-1..=1).any(|dc| {
                        let (c, r) = (col + dc, row + dr);
                        if !label_cell(c, r) {
                            return false;
                        }
                        // Distance from this pixel to that cell's box, per axis.
                        let gap_x = (c * cell - lx).max(lx - (c * cell + cell - 1)).max(0);
                        let gap_y = (r * cell - ly).max(ly - (r * cell + cell - 1)).max(0);
                        gap_x.max(gap_y) <= outline
                    })
                });
            if !ink && !near {
                continue;
            }
            let (Ok(x), Ok(y)) = (u32::try_from(px), u32::try_from(py)) else {
                continue;
            };
            if let Some(p) = img.get_pixel_mut_checked(x, y) {
                if ink {
                    p.0 = [255, 255, 255, 255];
                } else {
                    for (c, d) in p.0.iter_mut().zip(dark) {
                        *c = ((u32::from(*c) * 3 + u32::from(d) * 13) / 16) as u8;
                    }
                }
            }
        }
    }
}
