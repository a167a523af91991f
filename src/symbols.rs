//! Pictures in text, for terminals without graphics: half-blocks (`▀`, two pixels a cell) or
//! quadrants (`▘▝▀▖▌▞▛▗▚▐▜▄▙▟`, four pixels a cell, two colours: for each cell the split of its
//! four pixels into two groups that loses the least, each group drawn in its mean colour).

use image::RgbaImage;
use serde::{Deserialize, Serialize};

/// Which symbols pictures are drawn with when the terminal has no graphics (`[ui] symbols`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Symbols {
    /// `▀`: two pixels a cell, any font has it.
    #[default]
    Half,
    /// Quadrant blocks: four pixels a cell (two colours among them); most monospace fonts have
    /// them.
    Quadrant,
}

/// One cell of a picture in text: its character, foreground and background (None: the
/// terminal's own background, where the picture is transparent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub glyph: char,
    pub fg: Option<[u8; 3]>,
    pub bg: Option<[u8; 3]>,
}

/// The quadrant characters by mask: bit 0 top left, 1 top right, 2 bottom left, 3 bottom right.
pub const QUADRANTS: [char; 16] = [
    ' ', '▘', '▝', '▀', '▖', '▌', '▞', '▛', '▗', '▚', '▐', '▜', '▄', '▙', '▟', '█',
];

fn mean(px: &[[u8; 3]]) -> Option<[u8; 3]> {
    if px.is_empty() {
        return None;
    }
    let n = px.len() as u32;
    let sum = |k: usize| px.iter().map(|p| u32::from(p[k])).sum::<u32>();
    Some([
        ((sum(0) + n / 2) / n) as u8,
        ((sum(1) + n / 2) / n) as u8,
        ((sum(2) + n / 2) / n) as u8,
    ])
}

fn distance(a: [u8; 3], b: [u8; 3]) -> u32 {
    (0..3)
        .map(|k| {
            let d = i32::from(a[k]) - i32::from(b[k]);
            (d * d) as u32
        })
        .sum()
}

/// The best quadrant cell for four pixels (top left, top right, bottom left, bottom right;
/// None where transparent).
pub fn quadrant(px: [Option<[u8; 3]>; 4]) -> Cell {
    let opaque: Vec<[u8; 3]> = px.iter().flatten().copied().collect();
    if opaque.len() < 4 {
        // Transparent pixels show the terminal's background: the opaque ones in their mean.
        let mask = px
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_some())
            .fold(0usize, |m, (i, _)| m | 1 << i);
        return Cell {
            glyph: QUADRANTS[mask],
            fg: mean(&opaque),
            bg: None,
        };
    }
    let all: [[u8; 3]; 4] = [opaque[0], opaque[1], opaque[2], opaque[3]];
    let mut best = (u32::MAX, 0usize, [0u8; 3], [0u8; 3]);
    // Masks 1..=7 with their complements cover every split (the top left pixel is always in
    // the background group for 8..=14, the same split as 15 - mask), plus 0 for one colour.
    for mask in 0..8usize {
        let (set, unset): (Vec<usize>, Vec<usize>) = (0..4).partition(|i| mask & 1 << i != 0);
        let fg = mean(&set.iter().map(|&i| all[i]).collect::<Vec<_>>());
        let bg = mean(&unset.iter().map(|&i| all[i]).collect::<Vec<_>>()).unwrap_or([0; 3]);
        let err: u32 = (0..4)
            .map(|i| {
                distance(
                    all[i],
                    if mask & 1 << i != 0 {
                        fg.unwrap_or(bg)
                    } else {
                        bg
                    },
                )
            })
            .sum();
        if err < best.0 {
            best = (err, mask, fg.unwrap_or(bg), bg);
        }
    }
    let (_, mask, fg, bg) = best;
    if mask == 0 {
        return Cell {
            glyph: ' ',
            fg: None,
            bg: Some(bg),
        };
    }
    Cell {
        glyph: QUADRANTS[mask],
        fg: Some(fg),
        bg: Some(bg),
    }
}

/// Draw a picture already shrunk to two pixels a cell each way (`2·cols` × `2·rows`) as
/// quadrant cells, row by row.
pub fn quadrant_cells(small: &RgbaImage) -> Vec<Vec<Cell>> {
    let (w, h) = small.dimensions();
    let at = |x: u32, y: u32| -> Option<[u8; 3]> {
        if x >= w || y >= h {
            return None;
        }
        let p = small.get_pixel(x, y).0;
        (p[3] >= 128).then_some([p[0], p[1], p[2]])
    };
    (0..h.div_ceil(2))
        .map(|row| {
            (0..w.div_ceil(2))
                .map(|col| {
                    let (x, y) = (col * 2, row * 2);
                    quadrant([at(x, y), at(x + 1, y), at(x, y + 1), at(x + 1, y + 1)])
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quadrants_split_cells_where_the_colours_part() {
        let (r, b) = (Some([200, 0, 0]), Some([0, 0, 200]));
        // Left red, right blue: the left half block.
        let c = quadrant([r, b, r, b]);
        assert_eq!(
            (c.glyph, c.fg, c.bg),
            ('▌', Some([200, 0, 0]), Some([0, 0, 200]))
        );
        // One corner differs: a quadrant.
        let c = quadrant([r, b, b, b]);
        assert_eq!((c.glyph, c.fg), ('▘', Some([200, 0, 0])));
        let c = quadrant([b, b, b, r]);
        assert_eq!((c.glyph, c.bg), ('▛', Some([200, 0, 0])));
        // Diagonals.
        assert_eq!(quadrant([r, b, b, r]).glyph, '▞');
        // One colour: a space on it.
        let c = quadrant([r, r, r, r]);
        assert_eq!((c.glyph, c.fg, c.bg), (' ', None, Some([200, 0, 0])));
        // Transparent pixels are the terminal's background.
        let c = quadrant([r, None, None, None]);
        assert_eq!((c.glyph, c.fg, c.bg), ('▘', Some([200, 0, 0]), None));
        assert_eq!(quadrant([None; 4]).glyph, ' ');
    }

    #[test]
    fn cells_cover_the_picture() {
        let img = RgbaImage::from_fn(6, 4, |x, _| {
            image::Rgba(if x < 3 {
                [255, 255, 255, 255]
            } else {
                [0, 0, 0, 255]
            })
        });
        let cells = quadrant_cells(&img);
        assert_eq!((cells.len(), cells[0].len()), (2, 3));
        // The middle column is split down its middle.
        assert_eq!(cells[0][1].glyph, '▌');
    }
}
