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
    /// The jobs of one run as a labelled grid (its id, or a unique start of one): rows and
    /// columns are the run's choices and axes. Kept in the cache: the same records again reuse
    /// it. --cols and --limit do not apply.
    #[arg(long, conflicts_with_all = ["ids", "query", "tag", "min_rating"])]
    pub run: Option<String>,
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
    /// The PNG to write (optional with --run: the sheet stays in the cache and its path is
    /// printed).
    #[arg(long, short = 'o', required_unless_present = "run")]
    pub out: Option<PathBuf>,
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
    if let Some(run) = &args.run {
        return run_sheet(store, data_dir, thumbs, run, args.size, args.out.as_deref());
    }
    let Some(out) = args.out.clone() else {
        return Err(StoreError::Invalid(
            "no file to write: give --out FILE.png".into(),
        ));
    };
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
    write_png(&img, &out)?;
    println!(
        "wrote {} ({}x{}, {} images)",
        sanitize::line(&out.display().to_string()),
        img.width(),
        img.height(),
        tiles.len()
    );
    Ok(())
}

/// Write the PNG beside its final name, then rename it into place: a reader never sees half.
fn write_png(img: &RgbaImage, out: &Path) -> Result<(), StoreError> {
    into_place(out, |file| {
        img.write_to(&mut std::io::BufWriter::new(file), image::ImageFormat::Png)
            .map_err(|e| StoreError::Io(format!("could not encode the sheet: {e}")))
    })
}

/// Have `fill` write a temporary file beside `out`, then rename it into place.
fn into_place(
    out: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
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
    fill(tmp.as_file_mut())?;
    tmp.persist(out).map_err(|e| io("write", e.error))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A run as a labelled grid: `easel history sheet --run ID` (issue 14, docs/runs.md)
// ---------------------------------------------------------------------------------------------

/// The colour of a failed cell's frame and of the missing cell's cross.
const MARK: Rgba<u8> = Rgba([190, 80, 80, 255]);
/// What a run sheet looks like: bumped when the drawing changes, so older cached sheets are
/// not reused.
const RUN_SHEET_VERSION: u32 = 1;

/// What one cell of a run sheet shows.
pub enum RunCell {
    Picture(RgbaImage),
    /// The job failed (or made no image): why.
    Failed(String),
    /// No record of the job in history.
    Missing,
    /// The job has not ended yet: its state ("queued", "running").
    Pending(String),
}

/// The width of `text` drawn with Unifont, as `draw_text` draws it.
fn text_width(text: &str) -> u32 {
    sanitize::line(text)
        .chars()
        .map(|c| {
            unifont::get_glyph(c)
                .or_else(|| unifont::get_glyph('?'))
                .map_or(0, |g| g.get_width() as u32)
        })
        .sum()
}

/// `text` in lines of at most `max` pixels (at spaces where it can), at most `lines` of them:
/// the last one keeps the rest (and is cut with an ellipsis when drawn).
fn wrap(text: &str, max: u32, lines: usize) -> Vec<String> {
    let text = sanitize::line(text).into_owned();
    let mut out: Vec<String> = Vec::new();
    let mut rest: &str = text.trim();
    while !rest.is_empty() && out.len() + 1 < lines.max(1) {
        if text_width(rest) <= max {
            break;
        }
        // The longest start that fits, ended at its last space when it has one.
        let mut end = 0;
        let mut w = 0;
        for (i, c) in rest.char_indices() {
            w += text_width(&c.to_string());
            if w > max {
                break;
            }
            end = i + c.len_utf8();
        }
        if end == 0 {
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        // A word cut in the middle goes to the next line whole.
        if let Some(space) = rest[..end].rfind(' ').filter(|&s| s > 0)
            && !rest[end..].starts_with(' ')
        {
            end = space;
        }
        out.push(rest[..end].trim_end().to_string());
        rest = rest[end..].trim_start();
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// Where things go on a run sheet.
struct RunGeometry {
    label_w: u32,
    header_h: u32,
    page_h: u32,
    top: u32,
    width: u32,
    height: u32,
}

fn run_geometry(l: &crate::runs::layout::Layout, size: u32) -> RunGeometry {
    let cols = u32::try_from(l.col_count()).unwrap_or(1).max(1);
    let rows = u32::try_from(l.row_count()).unwrap_or(1).max(1);
    let has_row_labels = l.rows.labels.iter().any(|s| !s.is_empty());
    let has_col_labels = l.cols.labels.iter().any(|s| !s.is_empty());
    // Row labels as wide as the widest (wrapped beyond the cell's size, or 160 px).
    let label_w = if has_row_labels {
        let widest = l
            .rows
            .labels
            .iter()
            .map(|s| text_width(s))
            .max()
            .unwrap_or(0);
        widest.min(size.max(160)) + PAD
    } else {
        0
    };
    let header_h = if has_col_labels { 2 * LINE } else { 0 };
    let page_label_h = if l.pages.len() > 1 { LINE + PAD / 2 } else { 0 };
    let page_h = page_label_h + header_h + rows * (size + PAD);
    let top = PAD + 2 * LINE + PAD / 2;
    let pages = u32::try_from(l.pages.len()).unwrap_or(1).max(1);
    RunGeometry {
        label_w,
        header_h,
        page_h,
        top,
        width: PAD + label_w + cols * (size + PAD),
        height: top + pages * page_h,
    }
}

/// Compose a run's grid: the heading (what the run is, what the rows and columns are), then
/// each page (labelled with its values when there are several): the column labels over the
/// cells, the row labels left of them. `cell(page, row, col)` says what each cell shows.
pub fn compose_run(
    l: &crate::runs::layout::Layout,
    size: u32,
    heading: &str,
    cell: &dyn Fn(usize, usize, usize) -> RunCell,
) -> RgbaImage {
    let g = run_geometry(l, size);
    let mut img = RgbaImage::from_pixel(g.width, g.height, BACKGROUND);
    let text_w = g.width.saturating_sub(2 * PAD);
    draw_text(&mut img, PAD, PAD, heading, text_w, TEXT);
    let mut axes = Vec::new();
    if !l.rows.name.is_empty() {
        axes.push(format!("rows: {}", l.rows.name));
    }
    if !l.cols.name.is_empty() {
        axes.push(format!("columns: {}", l.cols.name));
    }
    draw_text(&mut img, PAD, PAD + LINE, &axes.join(" · "), text_w, DIM);
    let step = size + PAD;
    let row_lines = usize::try_from((size / LINE).max(1)).unwrap_or(1);
    for (p, page) in l.pages.iter().enumerate() {
        let mut y = g.top + u32::try_from(p).unwrap_or(0) * g.page_h;
        if l.pages.len() > 1 {
            draw_text(&mut img, PAD, y, &page.label, text_w, TEXT);
            y += LINE + PAD / 2;
        }
        let x0 = PAD + g.label_w;
        for (c, label) in l.cols.labels.iter().enumerate() {
            let x = x0 + u32::try_from(c).unwrap_or(0) * step;
            for (k, line) in wrap(label, size, 2).iter().enumerate() {
                let k = u32::try_from(k).unwrap_or(0);
                draw_text(&mut img, x, y + k * LINE, line, size, TEXT);
            }
        }
        y += g.header_h;
        for (r, label) in l.rows.labels.iter().enumerate() {
            let cy = y + u32::try_from(r).unwrap_or(0) * step;
            let lines = wrap(label, g.label_w.saturating_sub(PAD), row_lines);
            let block = u32::try_from(lines.len()).unwrap_or(1) * LINE;
            let ly = cy + size.saturating_sub(block) / 2;
            for (k, line) in lines.iter().enumerate() {
                let k = u32::try_from(k).unwrap_or(0);
                draw_text(
                    &mut img,
                    PAD,
                    ly + k * LINE,
                    line,
                    g.label_w.saturating_sub(PAD),
                    TEXT,
                );
            }
            for c in 0..l.col_count() {
                let cx = x0 + u32::try_from(c).unwrap_or(0) * step;
                fill(&mut img, cx, cy, size, size, CELL);
                match cell(p, r, c) {
                    RunCell::Picture(pic) => {
                        let (ox, oy) = (
                            cx + (size - pic.width().min(size)) / 2,
                            cy + (size - pic.height().min(size)) / 2,
                        );
                        image::imageops::overlay(&mut img, &pic, i64::from(ox), i64::from(oy));
                    }
                    RunCell::Failed(why) => {
                        frame(&mut img, cx, cy, size, MARK);
                        draw_text(
                            &mut img,
                            cx + 6,
                            cy + size / 2 - LINE,
                            "failed",
                            size - 12,
                            MARK,
                        );
                        draw_text(&mut img, cx + 6, cy + size / 2, &why, size - 12, DIM);
                    }
                    RunCell::Pending(what) => {
                        draw_text(&mut img, cx + 6, cy + size / 2 - 8, &what, size - 12, DIM);
                    }
                    RunCell::Missing => {
                        cross(&mut img, cx, cy, size, MARK);
                        draw_text(
                            &mut img,
                            cx + 6,
                            cy + size / 2 - 8,
                            "missing",
                            size - 12,
                            DIM,
                        );
                    }
                }
            }
        }
    }
    img
}

fn fill(img: &mut RgbaImage, x0: u32, y0: u32, w: u32, h: u32, colour: Rgba<u8>) {
    for y in y0..(y0 + h).min(img.height()) {
        for x in x0..(x0 + w).min(img.width()) {
            img.put_pixel(x, y, colour);
        }
    }
}

/// A 2-pixel frame just inside a cell.
fn frame(img: &mut RgbaImage, x: u32, y: u32, size: u32, colour: Rgba<u8>) {
    fill(img, x, y, size, 2, colour);
    fill(img, x, y + size - 2, size, 2, colour);
    fill(img, x, y, 2, size, colour);
    fill(img, x + size - 2, y, 2, size, colour);
}

/// The two diagonals of an empty cell.
fn cross(img: &mut RgbaImage, x: u32, y: u32, size: u32, colour: Rgba<u8>) {
    for k in 0..size {
        for (px, py) in [(x + k, y + k), (x + size - 1 - k, y + k)] {
            if px < img.width() && py < img.height() {
                img.put_pixel(px, py, colour);
            }
        }
    }
}

/// The most pixels a run sheet may have (256 MB of RGBA): a run of thousands of jobs at a large
/// size would otherwise take all the memory.
const MAX_RUN_PIXELS: u64 = 64 * 1024 * 1024;

/// Refuse a sheet too large to draw, saying what would make it fit.
fn check_run_size(l: &crate::runs::layout::Layout, size: u32) -> Result<(), StoreError> {
    let g = run_geometry(l, size);
    let pixels = u64::from(g.width) * u64::from(g.height);
    if pixels <= MAX_RUN_PIXELS && g.width <= 65_535 && g.height <= 65_535 {
        return Ok(());
    }
    Err(StoreError::Invalid(format!(
        "the run's sheet would be {}x{} pixels ({} rows × {} columns{}), too large to draw: \
         give a smaller --size (64 is the least), or look at the run in the studio (V)",
        g.width,
        g.height,
        l.row_count(),
        l.col_count(),
        if l.pages.len() > 1 {
            format!(", {} pages", l.pages.len())
        } else {
            String::new()
        }
    )))
}

/// The cache key of a run's sheet: the run, the size, each record (id, status) with the hash
/// of each image file and whether it is missing. The same records make the same sheet.
fn run_key(run: crate::store::Id, size: u32, records: &[GenerationRecord]) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(format!(
        "easel run sheet {RUN_SHEET_VERSION}\n{run}\n{size}\n"
    ));
    for r in records {
        h.update(format!("{} {}\n", r.id, r.status));
        for o in &r.outputs {
            h.update(format!(" {} {}\n", o.sha256, r.missing.contains(&o.path)));
        }
    }
    hex::encode(h.finalize())
}

/// What the sheet's cells that show no picture are, for its summary: ", 1 missing, 2 failed,
/// 16 cancelled, 1 not finished" (a cancelled job is drawn as a failed cell, but the summary
/// does not call it failed).
fn run_marks(l: &crate::runs::layout::Layout, records: &[GenerationRecord]) -> String {
    use crate::runs::layout::{self, Mark};
    use crate::store::Status;
    let made = |i: usize| {
        records
            .get(i)
            .is_some_and(|r| r.status == Status::Succeeded && !r.outputs.is_empty())
    };
    let (mut missing, mut failed, mut cancelled, mut pending) = (0, 0, 0, 0);
    for page in &l.pages {
        for c in &page.cells {
            match layout::mark(c, made) {
                Mark::Missing => missing += 1,
                Mark::Failed(i) => match records.get(i).map(|r| r.status) {
                    Some(s) if !s.is_final() => pending += 1,
                    Some(Status::Cancelled) => cancelled += 1,
                    _ => failed += 1,
                },
                Mark::Done(_) => {}
            }
        }
    }
    [
        (missing, "missing"),
        (failed, "failed"),
        (cancelled, "cancelled"),
        (pending, "not finished"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!(", {n} {what}"))
    .collect()
}

/// `history sheet --run ID`: the run's grid, from the cache when the same records made it
/// before.
fn run_sheet(
    store: &dyn HistoryStore,
    data_dir: &Path,
    thumbs: &crate::thumbs::Thumbs,
    text: &str,
    size: u32,
    out: Option<&Path>,
) -> Result<(), StoreError> {
    use crate::runs::layout::{self, Mark};
    let (run, records) = super::history::run_records(store, text).map_err(|e| match e {
        StoreError::NotFound(_) => StoreError::Invalid(format!(
            "no run in history has an id that starts \"{}\" (`easel history show ID` names a generation's run)",
            sanitize::line(text)
        )),
        e => e,
    })?;
    let records: Vec<GenerationRecord> = records.into_iter().filter(|r| r.run.is_some()).collect();
    let l = layout::layout(&crate::store::record::run_entries(&records));
    check_run_size(&l, size)?;
    let of = records
        .first()
        .and_then(|r| r.run.as_ref())
        .map_or(0, |i| i.of);
    let made = |i: usize| {
        records
            .get(i)
            .is_some_and(|r| r.status == crate::store::Status::Succeeded && !r.outputs.is_empty())
    };
    let ended = |i: usize| records.get(i).is_none_or(|r| r.status.is_final());
    let pages = if l.pages.len() > 1 {
        format!(", {} pages", l.pages.len())
    } else {
        String::new()
    };
    let marks = run_marks(&l, &records);
    let summary = format!(
        "{} rows × {} columns{pages}, {} of {of} jobs{marks}",
        l.row_count(),
        l.col_count(),
        records.len()
    );

    let key = run_key(run, size, &records);
    let cache_dir = thumbs.dir().with_file_name("sheets");
    let cached = cache_dir.join(format!("run-{run}-{}.png", &key[..16]));
    let shown = |p: &Path| sanitize::line(&p.display().to_string()).into_owned();
    if let Ok((w, h)) = image::image_dimensions(&cached) {
        let target = match out {
            Some(out) => {
                copy_into_place(&cached, out)?;
                out
            }
            None => &cached,
        };
        println!(
            "reused the sheet made earlier from the same records: {} ({w}x{h}, {summary})",
            shown(target)
        );
        return Ok(());
    }

    let files = ImageFiles::new(data_dir, None);
    let first_prompt = records
        .first()
        .and_then(|r| r.run.as_ref())
        .map(|i| i.values.template.clone())
        .unwrap_or_default();
    let heading = format!(
        "easel · run {} · {} · {} of {of} jobs · {}",
        run.short(),
        sanitize::line(&first_prompt),
        records.len(),
        chrono::Local::now().format("%Y-%m-%d %H:%M")
    );
    let cell = |p: usize, r: usize, c: usize| -> RunCell {
        match layout::mark(l.cell(p, r, c), made) {
            Mark::Missing => RunCell::Missing,
            Mark::Failed(i) if !ended(i) => RunCell::Pending(
                records
                    .get(i)
                    .map_or_else(String::new, |r| r.status.to_string()),
            ),
            Mark::Failed(i) => RunCell::Failed(
                records
                    .get(i)
                    .and_then(|r| r.error.as_ref().map(|e| e.message.clone()))
                    .unwrap_or_else(|| {
                        records
                            .get(i)
                            .map_or_else(String::new, |r| r.status.to_string())
                    }),
            ),
            Mark::Done(i) => {
                let Some(o) = records.get(i).and_then(|r| r.outputs.first()) else {
                    return RunCell::Missing;
                };
                let picture = if records.get(i).is_some_and(|r| r.missing.contains(&o.path)) {
                    Err("image file missing".to_string())
                } else {
                    thumbs.get(&files.resolve(&o.path), &o.sha256, size)
                };
                match picture {
                    Ok(p) => RunCell::Picture(p),
                    Err(why) => RunCell::Failed(why),
                }
            }
        }
    };
    let img = compose_run(&l, size, &heading, &cell);
    // Kept in the cache for next time (a cache that cannot be written only costs time, unless
    // it was to be the only copy).
    let kept = std::fs::create_dir_all(&cache_dir)
        .map_err(|e| {
            StoreError::Io(crate::store::files::describe_io_error(
                "create", &cache_dir, &e,
            ))
        })
        .and_then(|()| write_png(&img, &cached));
    match (&kept, out) {
        (Ok(()), _) => forget_older(&cache_dir, run, &cached),
        (Err(e), None) => {
            return Err(StoreError::Io(format!(
                "{e}; give --out FILE.png to write the sheet elsewhere"
            )));
        }
        (Err(_), Some(_)) => {}
    }
    let target = match out {
        Some(out) => {
            write_png(&img, out)?;
            out
        }
        None => &cached,
    };
    println!(
        "wrote {} ({}x{}, {summary})",
        shown(target),
        img.width(),
        img.height()
    );
    Ok(())
}

/// Older cached sheets of the same run (made from records since changed) go.
fn forget_older(dir: &Path, run: crate::store::Id, keep: &Path) {
    let prefix = format!("run-{run}-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name();
        if path != keep && name.to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Copy a file beside its final name, then rename it into place.
fn copy_into_place(from: &Path, out: &Path) -> Result<(), StoreError> {
    let io = |what: &str, e: std::io::Error| {
        StoreError::Io(crate::store::files::describe_io_error(what, out, &e))
    };
    let mut src = std::fs::File::open(from).map_err(|e| io("read", e))?;
    into_place(out, |file| {
        std::io::copy(&mut src, file)
            .map(|_| ())
            .map_err(|e| io("write", e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run cancelled with X: its sheet said "16 failed".
    #[test]
    fn the_summary_counts_cancelled_jobs_apart_from_failed_ones() {
        use crate::runs::layout::{Layout, Page, Side};
        use crate::store::{GenerationRecord, Id, Status};
        let l = Layout {
            rows: Side {
                name: String::new(),
                labels: vec![String::new()],
            },
            cols: Side {
                name: "choice 1".into(),
                labels: (1..=5).map(|i| i.to_string()).collect(),
            },
            pages: vec![Page {
                label: String::new(),
                cells: vec![vec![0], vec![1], vec![2], vec![3], vec![]],
            }],
        };
        let records: Vec<GenerationRecord> = [
            Status::Failed,
            Status::Cancelled,
            Status::Cancelled,
            Status::Running,
        ]
        .into_iter()
        .enumerate()
        .map(|(n, status)| {
            let mut r = GenerationRecord::queued(
                Id::from_uuid(uuid::Uuid::from_u128(n as u128 + 1)),
                crate::api::GenerationParams::default(),
                "demo",
                true,
                chrono::Utc::now(),
            );
            r.status = status;
            r
        })
        .collect();
        assert_eq!(
            run_marks(&l, &records),
            ", 1 missing, 1 failed, 2 cancelled, 1 not finished"
        );
    }

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

    #[test]
    fn a_run_sheet_has_labels_and_marks_missing_and_failed_cells() {
        use crate::runs::layout::{Layout, Page, Side};
        let l = Layout {
            rows: Side {
                name: "choice 1".into(),
                labels: vec!["cat".into(), "一只很长很长很长很长很长很长的狗".into()],
            },
            cols: Side {
                name: "size".into(),
                labels: vec!["1024x1024".into(), "1536x1024".into()],
            },
            pages: vec![Page {
                label: String::new(),
                cells: vec![vec![0], vec![1], vec![2], vec![]],
            }],
        };
        let cell = |_: usize, r: usize, c: usize| match (r, c) {
            (0, 0) | (0, 1) => {
                RunCell::Picture(RgbaImage::from_pixel(64, 64, Rgba([0, 0, 200, 255])))
            }
            (1, 0) => RunCell::Failed("content policy".into()),
            _ => RunCell::Missing,
        };
        let img = compose_run(&l, 64, "run", &cell);
        let g = run_geometry(&l, 64);
        // The long row label is wrapped within its margin (at most the cell's height).
        assert!(g.label_w <= 160 + PAD, "{}", g.label_w);
        assert_eq!(img.width(), PAD + g.label_w + 2 * (64 + PAD));
        assert_eq!(img.height(), g.top + g.header_h + 2 * (64 + PAD));
        let x0 = PAD + g.label_w;
        let y0 = g.top + g.header_h;
        // Column labels over the cells, row labels left of them.
        assert!(lit(&img, x0, g.top, 64, g.header_h, TEXT) > 30);
        assert!(lit(&img, 0, y0, g.label_w, 64, TEXT) > 10);
        assert!(lit(&img, 0, y0 + 76, g.label_w, 64, TEXT) > 40);
        assert_eq!(
            lit(&img, x0 - PAD, y0, PAD, 2 * 76, TEXT),
            0,
            "label over a cell"
        );
        // The picture, then the failed cell framed, the missing one crossed.
        assert_eq!(*img.get_pixel(x0 + 32, y0 + 32), Rgba([0, 0, 200, 255]));
        assert!(lit(&img, x0, y0 + 76, 64, 64, MARK) > 4 * 60);
        assert!(lit(&img, x0 + 76, y0 + 76, 64, 64, MARK) > 100);
        assert_eq!(lit(&img, x0 + 76, y0, 64, 64, MARK), 0);
    }

    #[test]
    fn a_cell_still_running_is_not_marked_failed() {
        use crate::runs::layout::{Layout, Page, Side};
        let l = Layout {
            rows: Side {
                name: String::new(),
                labels: vec![String::new()],
            },
            cols: Side {
                name: "size".into(),
                labels: vec!["a".into()],
            },
            pages: vec![Page {
                label: String::new(),
                cells: vec![vec![0]],
            }],
        };
        let img = compose_run(&l, 64, "run", &|_, _, _| RunCell::Pending("running".into()));
        let g = run_geometry(&l, 64);
        let (x0, y0) = (PAD + g.label_w, g.top + g.header_h);
        assert_eq!(lit(&img, x0, y0, 64, 64, MARK), 0, "marked as failed");
        assert!(lit(&img, x0, y0, 64, 64, DIM) > 20, "says nothing");
    }

    #[test]
    fn a_run_too_large_to_draw_is_refused_with_what_to_do() {
        use crate::runs::layout::{Layout, Page, Side};
        let wide = |n: usize| Layout {
            rows: Side {
                name: String::new(),
                labels: vec![String::new()],
            },
            cols: Side {
                name: "__word__".into(),
                labels: (0..n).map(|k| format!("w{k}")).collect(),
            },
            pages: vec![Page {
                label: String::new(),
                cells: vec![Vec::new(); n],
            }],
        };
        assert!(check_run_size(&wide(100), 256).is_ok());
        let e = check_run_size(&wide(5000), 256).unwrap_err().to_string();
        assert!(
            e.contains("1 rows × 5000 columns") && e.contains("--size"),
            "{e}"
        );
    }

    #[test]
    fn wrapping_keeps_words_and_puts_the_rest_on_the_last_line() {
        assert_eq!(wrap("a red fox at dusk", 80, 3), ["a red fox", "at dusk"]);
        assert_eq!(wrap("a red fox at dusk", 40, 2), ["a red", "fox at dusk"]);
        assert_eq!(wrap("夜晚的海边小镇", 48, 2), ["夜晚的", "海边小镇"]);
        assert_eq!(wrap("", 40, 2), [""]);
    }
}
