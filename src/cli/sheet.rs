//! `easel history sheet`: one picture of many generations, for sharing a review with someone
//! outside the terminal. Thumbnails in a grid, each labelled with the start of its prompt and
//! its model, size, rating and id, drawn with GNU Unifont (bundled, every character of the
//! Basic Multilingual Plane: Chinese prompts render as typed).

use crate::sanitize;
use crate::store::{GenerationRecord, HistoryStore, ImageFiles, Query, StoreError};
use image::{Rgba, RgbaImage};
use std::path::{Path, PathBuf};

/// What a sheet shows and how.
#[derive(Debug, Clone, clap::Args)]
pub struct SheetArgs {
    /// Generations to show (ids or unique starts); without any, the newest matching the filters.
    pub ids: Vec<String>,
    /// Only prompts matching this (the search syntax of `history list -q`, tag: and rating: too).
    #[arg(long, short = 'q')]
    pub query: Option<String>,
    /// Only generations with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only generations rated at least this (1–5).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub min_rating: Option<u8>,
    /// At most this many generations (without ids).
    #[arg(long, default_value_t = 48, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Thumbnails per row.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub cols: u32,
    /// Thumbnail size in pixels (the longer side).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(64..=1024))]
    pub size: u32,
    /// The PNG to write.
    #[arg(long, short = 'o')]
    pub out: PathBuf,
}

const PAD: u32 = 12;
const LINE: u32 = 18;
const BACKGROUND: Rgba<u8> = Rgba([24, 24, 28, 255]);
const CELL: Rgba<u8> = Rgba([40, 40, 46, 255]);
const TEXT: Rgba<u8> = Rgba([230, 230, 230, 255]);
const DIM: Rgba<u8> = Rgba([150, 150, 160, 255]);

/// One cell: a picture (or why there is none) and its two label lines.
pub struct Tile {
    pub picture: Result<RgbaImage, String>,
    pub title: String,
    pub detail: String,
}

/// Draw `text` at (x, y) in at most `max` pixels, cut with an ellipsis. Characters Unifont lacks
/// (outside the BMP, combining marks) are drawn as `?`. Returns the width drawn.
pub fn draw_text(
    img: &mut RgbaImage,
    x: u32,
    y: u32,
    text: &str,
    max: u32,
    colour: Rgba<u8>,
) -> u32 {
    let glyph = |c: char| unifont::get_glyph(c).or_else(|| unifont::get_glyph('?'));
    let ellipsis_w = glyph('…').map_or(8, |g| g.get_width() as u32);
    let chars: Vec<char> = sanitize::line(text).chars().collect();
    let total: u32 = chars
        .iter()
        .map(|c| glyph(*c).map_or(0, |g| g.get_width() as u32))
        .sum();
    let (budget, cut) = if total <= max {
        (max, false)
    } else {
        (max.saturating_sub(ellipsis_w), true)
    };
    let mut at = 0u32;
    let put = |img: &mut RgbaImage, c: char, at: &mut u32| {
        let Some(g) = glyph(c) else { return };
        let w = g.get_width() as u32;
        for gy in 0..16u32 {
            for gx in 0..w {
                if g.get_pixel(gx as usize, gy as usize) {
                    let (px, py) = (x + *at + gx, y + gy);
                    if px < img.width() && py < img.height() {
                        img.put_pixel(px, py, colour);
                    }
                }
            }
        }
        *at += w;
    };
    for c in chars {
        let w = glyph(c).map_or(0, |g| g.get_width() as u32);
        if at + w > budget {
            break;
        }
        put(img, c, &mut at);
    }
    if cut {
        put(img, '…', &mut at);
    }
    at
}

/// The labels of one image of a record.
pub fn labels(r: &GenerationRecord, image: usize) -> (String, String) {
    let title = sanitize::line(&r.prompt).into_owned();
    let size = r
        .outputs
        .get(image)
        .map(|o| format!("{}x{}", o.width, o.height))
        .unwrap_or_default();
    let rating = if r.rating > 0 {
        format!(" · {}", "★".repeat(usize::from(r.rating.min(5))))
    } else {
        String::new()
    };
    let which = if r.outputs.len() > 1 {
        format!(" #{}", image + 1)
    } else {
        String::new()
    };
    // What tells the images apart first (the model is often the same for all).
    let detail = format!(
        "{}{which}{rating} · {size} · {}",
        r.id.short(),
        sanitize::line(&r.model)
    );
    (title, detail)
}

/// Compose the sheet: `cols` cells per row, each a `size`-pixel square picture (fitted, centred)
/// over two label lines.
pub fn compose(tiles: &[Tile], cols: u32, size: u32, heading: &str) -> RgbaImage {
    let cols = cols
        .max(1)
        .min(u32::try_from(tiles.len()).unwrap_or(1).max(1));
    let rows = u32::try_from(tiles.len())
        .unwrap_or(0)
        .div_ceil(cols)
        .max(1);
    let cell_h = size + 2 * LINE + PAD / 2;
    let width = PAD + cols * (size + PAD);
    let height = PAD + LINE + PAD / 2 + rows * (cell_h + PAD);
    let mut img = RgbaImage::from_pixel(width, height, BACKGROUND);
    draw_text(&mut img, PAD, PAD, heading, width - 2 * PAD, TEXT);
    for (i, tile) in tiles.iter().enumerate() {
        let i = u32::try_from(i).unwrap_or(0);
        let (cx, cy) = (
            PAD + (i % cols) * (size + PAD),
            PAD + LINE + PAD / 2 + (i / cols) * (cell_h + PAD),
        );
        for y in cy..cy + size {
            for x in cx..cx + size {
                img.put_pixel(x, y, CELL);
            }
        }
        match &tile.picture {
            Ok(p) => {
                let (ox, oy) = (
                    cx + (size - p.width().min(size)) / 2,
                    cy + (size - p.height().min(size)) / 2,
                );
                image::imageops::overlay(&mut img, p, i64::from(ox), i64::from(oy));
            }
            Err(why) => {
                draw_text(&mut img, cx + 6, cy + size / 2 - 8, why, size - 12, DIM);
            }
        }
        draw_text(&mut img, cx, cy + size + 4, &tile.title, size, TEXT);
        draw_text(&mut img, cx, cy + size + 4 + LINE, &tile.detail, size, DIM);
    }
    img
}

/// The records the sheet shows.
fn pick(store: &dyn HistoryStore, args: &SheetArgs) -> Result<Vec<GenerationRecord>, StoreError> {
    if !args.ids.is_empty() {
        let mut out = Vec::new();
        for text in &args.ids {
            let id = store.resolve(text)?;
            if let Some(r) = store.get(id)? {
                out.push(r);
            }
        }
        return Ok(out);
    }
    let mut q = Query {
        tag: args.tag.clone(),
        min_rating: args.min_rating,
        ..Query::default()
    };
    if let Some(text) = &args.query {
        let mut terms = Query::default();
        let rest = crate::store::query::take_search_terms(text, &mut terms);
        q.tag = q.tag.or(terms.tag);
        q.min_rating = q.min_rating.or(terms.min_rating);
        q.by_rating = terms.by_rating;
        q.text = (!rest.trim().is_empty()).then_some(rest);
    }
    let limit = usize::try_from(args.limit).unwrap_or(48);
    Ok(store.page(&q, None, limit)?.records)
}

pub fn run(
    store: &dyn HistoryStore,
    data_dir: &Path,
    thumbs: &crate::thumbs::Thumbs,
    args: SheetArgs,
) -> Result<(), StoreError> {
    let records = pick(store, &args)?;
    let files = ImageFiles::new(data_dir, None);
    let mut tiles = Vec::new();
    for r in &records {
        for (k, o) in r.outputs.iter().enumerate() {
            let path = files.resolve(&o.path);
            let picture = if r.missing.contains(&o.path) {
                Err("image file missing".to_string())
            } else {
                thumbs.get(&path, &o.sha256, args.size)
            };
            let (title, detail) = labels(r, k);
            tiles.push(Tile {
                picture,
                title,
                detail,
            });
        }
    }
    if tiles.is_empty() {
        return Err(StoreError::Invalid(
            "no image to put on the sheet: nothing matched, or the matches made no image".into(),
        ));
    }
    let heading = format!(
        "easel · {} image{} of {} generation{} · {}",
        tiles.len(),
        if tiles.len() == 1 { "" } else { "s" },
        records.len(),
        if records.len() == 1 { "" } else { "s" },
        chrono::Local::now().format("%Y-%m-%d %H:%M")
    );
    let img = compose(&tiles, args.cols, args.size, &heading);
    write_png(&img, &args.out)?;
    println!(
        "wrote {} ({}x{}, {} images)",
        sanitize::line(&args.out.display().to_string()),
        img.width(),
        img.height(),
        tiles.len()
    );
    Ok(())
}

/// Write the PNG beside its final name, then rename it into place: a reader never sees half.
fn write_png(img: &RgbaImage, out: &Path) -> Result<(), StoreError> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let io = |what: &str, e: std::io::Error| {
        StoreError::Io(crate::store::files::describe_io_error(what, out, &e))
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".easel-sheet-")
        .suffix(".png")
        .tempfile_in(&dir)
        .map_err(|e| io("write", e))?;
    img.write_to(
        &mut std::io::BufWriter::new(tmp.as_file_mut()),
        image::ImageFormat::Png,
    )
    .map_err(|e| StoreError::Io(format!("could not encode the sheet: {e}")))?;
    tmp.persist(out).map_err(|e| io("write", e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(img: &RgbaImage, x0: u32, y0: u32, w: u32, h: u32, colour: Rgba<u8>) -> usize {
        let mut n = 0;
        for y in y0..(y0 + h).min(img.height()) {
            for x in x0..(x0 + w).min(img.width()) {
                if *img.get_pixel(x, y) == colour {
                    n += 1;
                }
            }
        }
        n
    }

    #[test]
    fn chinese_text_is_drawn_not_replaced() {
        let mut img = RgbaImage::from_pixel(200, 20, BACKGROUND);
        let w = draw_text(&mut img, 0, 0, "夜晚的海边", 200, TEXT);
        // Five full-width glyphs of 16 pixels, each with ink.
        assert_eq!(w, 80);
        for k in 0..5 {
            assert!(
                lit(&img, k * 16, 0, 16, 16, TEXT) > 10,
                "glyph {k} is empty"
            );
        }
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis_within_its_width() {
        let mut img = RgbaImage::from_pixel(300, 20, BACKGROUND);
        let w = draw_text(&mut img, 0, 0, &"a".repeat(100), 100, TEXT);
        assert!(w <= 100, "{w}");
        assert_eq!(lit(&img, 101, 0, 199, 16, TEXT), 0, "ink beyond the width");
        // Control characters never become glyphs.
        let mut clean = RgbaImage::from_pixel(300, 20, BACKGROUND);
        let w2 = draw_text(&mut clean, 0, 0, "a\u{1b}[2Jb", 300, TEXT);
        assert_eq!(
            w2,
            draw_text(&mut RgbaImage::new(300, 20), 0, 0, "a[2Jb", 300, TEXT)
        );
    }

    #[test]
    fn a_sheet_has_its_grid_and_a_missing_picture_says_so() {
        let red = RgbaImage::from_pixel(256, 128, Rgba([200, 0, 0, 255]));
        let tiles = vec![
            Tile {
                picture: Ok(red),
                title: "a red fox".into(),
                detail: "gpt-image-2 · 1024x512".into(),
            },
            Tile {
                picture: Err("image file missing".into()),
                title: "夜晚的海边小镇".into(),
                detail: "gpt-image-2".into(),
            },
            Tile {
                picture: Ok(RgbaImage::from_pixel(64, 64, Rgba([0, 0, 200, 255]))),
                title: "blue".into(),
                detail: String::new(),
            },
        ];
        let img = compose(&tiles, 2, 256, "heading");
        // Two columns, two rows.
        assert_eq!(img.width(), PAD + 2 * (256 + PAD));
        assert!(img.height() > 2 * 256);
        // The red picture, fitted and centred in the first cell.
        let (cx, cy) = (PAD, PAD + LINE + PAD / 2);
        assert_eq!(*img.get_pixel(cx + 128, cy + 128), Rgba([200, 0, 0, 255]));
        assert_eq!(*img.get_pixel(cx + 128, cy + 10), CELL, "letterboxed");
        // The missing one says why, in the second cell.
        assert!(lit(&img, cx + 256 + PAD, cy, 256, 256, DIM) > 50);
    }
}
