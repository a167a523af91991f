//! Pictures printed into a command's normal output (`easel view`, `generate`, `history show`) and
//! the studio's full view.
//!
//! Terminals with a graphics protocol (kitty, sixel, iTerm2; found by asking the terminal, see
//! `termcaps`) get the picture in it, sized to the cells it may take. Everywhere else (and when
//! the output is not a terminal) easel prints half-blocks itself: one `▀` per two
//! pixels, colour codes only where the colour changes, so the output stays small over slow links.

use crate::symbols::Symbols;
use crate::termcaps::{Detection, Protocol};
use image::{DynamicImage, RgbaImage};
use ratatui::layout::Size;
use ratatui_image::FontSize;
use ratatui_image::protocol::kitty::Kitty;
use std::io::{self, Read, Write};
use std::path::Path;

/// Fit a `w`×`h` picture into `cols`×`rows` cells of two pixels each, keeping its shape; the
/// height is a whole number of cells (an odd one would leave the last row half empty).
pub fn fit(w: u32, h: u32, cols: u32, rows: u32) -> (u32, u32) {
    let (w, h) = (w.max(1) as f64, h.max(1) as f64);
    let (max_w, max_h) = (f64::from(cols.max(1)), f64::from(rows.max(1) * 2));
    let scale = (max_w / w).min(max_h / h);
    let height = ((h * scale).round() as u32).clamp(1, rows.max(1) * 2);
    (
        ((w * scale).round() as u32).clamp(1, cols.max(1)),
        height.div_ceil(2) * 2,
    )
}

/// Write `img` as half-blocks into `cols`×`rows` cells. `truecolor` false maps colours to the
/// 256-colour palette. Transparent pixels show the terminal's background.
pub fn write_halfblocks(
    out: &mut impl Write,
    img: &DynamicImage,
    cols: u32,
    rows: u32,
    truecolor: bool,
) -> io::Result<()> {
    let (w, h) = fit(img.width(), img.height(), cols, rows);
    // Each half-cell is the average light of the pixels it covers.
    let small: RgbaImage = crate::colour::resize_linear(&img.to_rgba8(), w, h);
    // Colours as they will be written: 24-bit, or the 256-colour palette index. Comparing in
    // that space means neighbours that map to the same code share it.
    let colour = |p: [u8; 4]| -> Option<Code> {
        if p[3] < 128 {
            None
        } else if truecolor {
            Some(Code::Rgb(p[0], p[1], p[2]))
        } else {
            Some(Code::Indexed(crate::colour::ansi256(p[0], p[1], p[2])))
        }
    };
    let mut buf = Vec::with_capacity((w * h * 4) as usize);
    for row in (0..h).step_by(2) {
        let (mut fg, mut bg): (Option<Code>, Option<Code>) = (None, None);
        for x in 0..w {
            let top = colour(small.get_pixel(x, row).0);
            let bottom = if row + 1 < h {
                colour(small.get_pixel(x, row + 1).0)
            } else {
                None
            };
            // A colour too close to tell from one already set (or from its other half) takes
            // that one's code: fewer bytes, no visible change.
            let snap = |c: Option<Code>, others: [Option<Code>; 2]| {
                others.into_iter().find(|o| close(c, *o)).unwrap_or(c)
            };
            let top = snap(top, [bg, fg]);
            let bottom = snap(bottom, [bg, fg]);
            let bottom = snap(bottom, [top, None]);
            // The glyph, and the foreground and background it needs (None: the terminal's own).
            let (glyph, want_fg, want_bg): (&str, Option<Code>, Option<Code>) = match (top, bottom)
            {
                (None, None) => (" ", fg, None),
                (Some(t), None) => ("▀", Some(t), None),
                (None, Some(b)) => ("▄", Some(b), None),
                // One colour: a space on that background, whatever the foreground is.
                (Some(t), Some(b)) if t == b => (" ", fg, Some(t)),
                // Keep whichever colour is already set where it is, to save a code.
                (Some(t), Some(b)) if fg == Some(b) || bg == Some(t) => ("▄", Some(b), Some(t)),
                (Some(t), Some(b)) => ("▀", Some(t), Some(b)),
            };
            let mut params: Vec<String> = Vec::new();
            if want_bg.is_none() && bg.is_some() {
                params.push("49".into());
                bg = None;
            }
            if want_fg != fg {
                if let Some(c) = want_fg {
                    params.push(c.sgr(true));
                }
                fg = want_fg;
            }
            if want_bg != bg {
                if let Some(c) = want_bg {
                    params.push(c.sgr(false));
                }
                bg = want_bg;
            }
            if !params.is_empty() {
                let _ = write!(buf, "\x1b[{}m", params.join(";"));
            }
            buf.extend_from_slice(glyph.as_bytes());
        }
        buf.extend_from_slice(b"\x1b[0m\n");
    }
    out.write_all(&buf)
}

/// Write `img` as quadrant blocks into `cols`×`rows` cells (four pixels a cell, two colours),
/// the same sizes, colour codes and transparency as [`write_halfblocks`].
pub fn write_quadrants(
    out: &mut impl Write,
    img: &DynamicImage,
    cols: u32,
    rows: u32,
    truecolor: bool,
) -> io::Result<()> {
    // The same cells as half-blocks would take, at twice the pixels across.
    let (w, h) = fit(img.width(), img.height(), cols, rows);
    let small: RgbaImage = crate::colour::resize_linear(&img.to_rgba8(), w * 2, h);
    let code = |c: Option<[u8; 3]>| -> Option<Code> {
        let [r, g, b] = c?;
        Some(if truecolor {
            Code::Rgb(r, g, b)
        } else {
            Code::Indexed(crate::colour::ansi256(r, g, b))
        })
    };
    let mut buf = Vec::with_capacity((w * h * 6) as usize);
    for row in crate::symbols::quadrant_cells(&small) {
        let (mut fg, mut bg): (Option<Code>, Option<Code>) = (None, None);
        for cell in row {
            let (glyph, want_fg, want_bg) =
                cheapest_quadrant(&cell, code(cell.fg), code(cell.bg), fg, bg);
            let mut params: Vec<String> = Vec::new();
            if want_bg.is_none() && bg.is_some() {
                params.push("49".into());
                bg = None;
            }
            if want_fg != fg {
                if let Some(c) = want_fg {
                    params.push(c.sgr(true));
                }
                fg = want_fg;
            }
            if want_bg != bg {
                if let Some(c) = want_bg {
                    params.push(c.sgr(false));
                }
                bg = want_bg;
            }
            if !params.is_empty() {
                let _ = write!(buf, "\x1b[{}m", params.join(";"));
            }
            let mut utf8 = [0u8; 4];
            buf.extend_from_slice(glyph.encode_utf8(&mut utf8).as_bytes());
        }
        buf.extend_from_slice(b"\x1b[0m\n");
    }
    out.write_all(&buf)
}

/// How a quadrant cell is written with the fewest colour codes, given the colours already set:
/// the glyph and the foreground and background it then needs. A cell of two colours may be
/// drawn as its mask with (fg, bg) or as the complementary mask with the colours swapped; a
/// cell of one colour as a space on it or a full block in it; a colour too close to tell from
/// one already set takes that one's code (no visible change, fewer bytes).
fn cheapest_quadrant(
    cell: &crate::symbols::Cell,
    want_fg: Option<Code>,
    want_bg: Option<Code>,
    fg: Option<Code>,
    bg: Option<Code>,
) -> (char, Option<Code>, Option<Code>) {
    let snap = |c: Option<Code>| {
        [fg, bg]
            .into_iter()
            .find(|o| close_within(c, *o, QUADRANT_SAME))
            .unwrap_or(c)
    };
    let (want_fg, want_bg) = (snap(want_fg), snap(want_bg));
    // Transparent parts show the terminal's background: only one way to draw them.
    if want_bg.is_none() {
        let want_fg = if cell.glyph == ' ' { fg } else { want_fg };
        return (cell.glyph, want_fg, None);
    }
    let cost = |f: Option<Code>, b: Option<Code>| -> usize {
        let one = |want: Option<Code>, have: Option<Code>, fore: bool| match want {
            Some(c) if want != have => c.sgr(fore).len() + 1,
            _ => 0,
        };
        one(f, fg, true) + one(b, bg, false)
    };
    let candidates: [(char, Option<Code>, Option<Code>); 2] = if cell.glyph == ' ' {
        // One colour: a space shows only its background, a full block only its foreground.
        [(' ', fg, want_bg), ('█', want_bg, bg)]
    } else {
        let mask = crate::symbols::QUADRANTS
            .iter()
            .position(|q| *q == cell.glyph)
            .unwrap_or(15);
        [
            (cell.glyph, want_fg, want_bg),
            (crate::symbols::QUADRANTS[15 - mask], want_bg, want_fg),
        ]
    };
    candidates
        .into_iter()
        .min_by_key(|(_, f, b)| cost(*f, *b))
        .unwrap_or((cell.glyph, want_fg, want_bg))
}

/// The symbols printed pictures use without graphics (`[ui] symbols`), set once by the commands
/// that read the config.
static SYMBOLS: std::sync::OnceLock<Symbols> = std::sync::OnceLock::new();

/// Use `s` for pictures printed without graphics.
pub fn set_symbols(s: Symbols) {
    let _ = SYMBOLS.set(s);
}

/// Write `img` in text with the configured symbols.
pub fn write_symbols(
    out: &mut impl Write,
    img: &DynamicImage,
    cols: u32,
    rows: u32,
    truecolor: bool,
) -> io::Result<()> {
    match SYMBOLS.get().copied().unwrap_or_default() {
        Symbols::Half => write_halfblocks(out, img, cols, rows, truecolor),
        Symbols::Quadrant => write_quadrants(out, img, cols, rows, truecolor),
    }
}

/// The largest CIE76 difference between two 24-bit colours that share a code: under one
/// just-noticeable difference (about 2.3).
const SAME_COLOUR: f32 = 1.0;

/// Whether two truecolor codes are too close to tell apart.
fn close(a: Option<Code>, b: Option<Code>) -> bool {
    close_within(a, b, SAME_COLOUR)
}

/// Quadrant cells are drawn from pixels already averaged in pairs, so a shared code costs more
/// of the detail they add: a tighter bound than half-blocks'.
const QUADRANT_SAME: f32 = 0.5;

/// Whether two truecolor codes are within `limit` (CIE76) of each other.
fn close_within(a: Option<Code>, b: Option<Code>, limit: f32) -> bool {
    match (a, b) {
        (Some(Code::Rgb(r1, g1, b1)), Some(Code::Rgb(r2, g2, b2))) => {
            let (x, y) = (
                crate::colour::lab(r1, g1, b1),
                crate::colour::lab(r2, g2, b2),
            );
            (x[0] - y[0]).powi(2) + (x[1] - y[1]).powi(2) + (x[2] - y[2]).powi(2) < limit * limit
        }
        _ => false,
    }
}

/// A colour as an SGR parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    Rgb(u8, u8, u8),
    Indexed(u8),
}

impl Code {
    fn sgr(self, foreground: bool) -> String {
        let layer = if foreground { 38 } else { 48 };
        match self {
            Code::Rgb(r, g, b) => format!("{layer};2;{r};{g};{b}"),
            Code::Indexed(i) => format!("{layer};5;{i}"),
        }
    }
}

/// What the terminal answered: the studio stores its own detection here (the event reader
/// owns stdin afterwards), again after it asked anew (a tmux client of another terminal);
/// commands ask on first use.
static DETECTION: std::sync::Mutex<Option<Option<Detection>>> = std::sync::Mutex::new(None);

/// Use `d` for pictures outside the studio's pane (the studio detects before its event reader
/// starts, and again on the redraw key or a tmux attach).
pub fn remember_detection(d: Detection) {
    *DETECTION
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Some(d));
}

/// The graphics for printed pictures: none when stdout is not a terminal or EASEL_GRAPHICS says
/// half-blocks (or none); otherwise the terminal's answers.
fn detection() -> Option<Detection> {
    let mut known = DETECTION
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    known
        .get_or_insert_with(|| {
            let setting = std::env::var("EASEL_GRAPHICS").ok();
            if setting.as_deref().is_some_and(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "halfblocks" | "half-blocks" | "blocks" | "none" | "off"
                )
            }) {
                return None;
            }
            let terminal = io::IsTerminal::is_terminal(&io::stdout())
                && io::IsTerminal::is_terminal(&io::stdin());
            terminal.then(|| crate::termcaps::detect(setting.as_deref()).0)
        })
        .clone()
}

/// The largest picture file easel reads (the Images API's own inputs stay under 50 MB).
pub const MAX_PICTURE_BYTES: u64 = 64 * 1024 * 1024;

/// Read a picture file: a regular file only (not a device, pipe or folder), at most
/// [`MAX_PICTURE_BYTES`], its format told by its bytes rather than its name.
pub fn load(path: &Path) -> Result<DynamicImage, String> {
    let name = crate::sanitize::line(&path.display().to_string()).into_owned();
    let not_regular = || {
        format!(
            "{name} is not a regular file (a folder, device or pipe): give the path of a picture file"
        )
    };
    let too_large = |len: u64| {
        format!(
            "{name} is too large to be a picture easel shows ({} MB; at most {} MB)",
            len.div_ceil(1024 * 1024),
            MAX_PICTURE_BYTES / (1024 * 1024)
        )
    };
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot open {name}: {e}"))?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    if meta.len() > MAX_PICTURE_BYTES {
        return Err(too_large(meta.len()));
    }
    // Without blocking: if the path was swapped for a pipe since, opening must not wait for a
    // writer. The open file is checked again, and the read is capped whatever it is.
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options
        .open(path)
        .map_err(|e| format!("cannot open {name}: {e}"))?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(not_regular());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_PICTURE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {name}: {e}"))?;
    if bytes.len() as u64 > MAX_PICTURE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    let reader = image::ImageReader::new(io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read {name}: {e}"))?;
    if reader.format().is_none() {
        return Err(format!(
            "{name} is not a picture easel can show (PNG, JPEG, WebP or GIF)"
        ));
    }
    reader
        .decode()
        .map_err(|e| format!("cannot decode {name}: {e}"))
}

/// Print a picture file into the output, fitted into `cols`×`rows` cells.
pub fn print_file(path: &Path, cols: u32, rows: u32) -> Result<(), String> {
    let img = load(path)?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    show(&mut out, &img, cols, rows)?;
    out.flush()
        .map_err(|e| format!("cannot write the picture: {e}"))
}

/// Whether the environment says the terminal takes 24-bit colours.
pub fn truecolor_env() -> bool {
    std::env::var("COLORTERM")
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "truecolor" | "24bit"))
}

/// Show a picture at the cursor, fitted into `cols`×`rows` cells, and leave the cursor at the
/// start of the line below it: the terminal's graphics protocol where it has one (kitty, sixel,
/// iTerm2; inside tmux kitty ≥ 0.28 as Unicode placeholders or sixel where tmux has it),
/// half-blocks everywhere else. One path for `easel view`, printed pictures and the studio's
/// full view.
pub fn show(out: &mut impl Write, img: &DynamicImage, cols: u32, rows: u32) -> Result<(), String> {
    let written = match detection() {
        Some(d) if d.protocol != Protocol::Halfblocks => {
            let font = d.cell.unwrap_or((10, 20));
            write_graphics(out, img, cols, rows, &d, font)
        }
        _ => write_symbols(out, img, cols, rows, truecolor_env()),
    };
    written.map_err(|e| format!("cannot write the picture: {e}"))
}

/// The kitty image id of the last picture [`show`] placed by id, so the full view can remove it.
/// Each printed picture has its own id (pictures printed one after another stay, each its own
/// image); 0 when none was placed.
static SHOWN_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A fresh kitty image id for a printed picture, remembered for [`remove_shown`].
fn next_shown_id() -> u32 {
    let id = fastrand::u32(1..1 << 24);
    SHOWN_ID.store(id, std::sync::atomic::Ordering::Relaxed);
    id
}

/// A picture for kitty graphics placed by id: PNG, transmitted once, placed (and moved,
/// removed) by its id.
pub struct KittyImage {
    pub id: u32,
    /// Base64 of the PNG.
    pub data: String,
    pub size: Size,
}

impl KittyImage {
    /// Transmit without showing (`a=t`), in chunks of 4096 characters, answers suppressed.
    pub fn transmit(&self) -> String {
        let mut s = String::with_capacity(self.data.len() + self.data.len() / 4096 * 24 + 64);
        let chunks: Vec<&[u8]> = self.data.as_bytes().chunks(4096).collect();
        let last = chunks.len().saturating_sub(1);
        for (i, chunk) in chunks.iter().enumerate() {
            let more = u8::from(i < last);
            if i == 0 {
                s.push_str(&format!("\x1b_Ga=t,f=100,t=d,i={},q=2,m={more};", self.id));
            } else {
                s.push_str(&format!("\x1b_Gm={more};"));
            }
            s.push_str(std::str::from_utf8(chunk).unwrap_or(""));
            s.push_str("\x1b\\");
        }
        s
    }

    /// Show at the cursor over `cols`×`rows` cells, the cursor left where it is (`C=1`).
    pub fn place(&self, cols: u16, rows: u16) -> String {
        format!(
            "\x1b_Ga=p,i={},p=1,c={cols},r={rows},C=1,q=2\x1b\\",
            self.id
        )
    }
}

/// Shrink `img` (an area average: the protocols' own resize is nearest-neighbour, which would
/// alias a 1024² picture badly) to fit `cols`×`rows` cells of `font` pixels, keeping its shape
/// and never enlarging it, then pad it with transparency to whole cells. Returns the picture and
/// its size in cells.
pub fn fit_to_cells(
    img: DynamicImage,
    font: FontSize,
    cols: u16,
    rows: u16,
) -> (DynamicImage, Size) {
    let (fw, fh) = (u32::from(font.width.max(1)), u32::from(font.height.max(1)));
    let (max_w, max_h) = (u32::from(cols.max(1)) * fw, u32::from(rows.max(1)) * fh);
    let img = if img.width() > max_w || img.height() > max_h {
        img.thumbnail(max_w, max_h)
    } else {
        img
    };
    let size = Size::new(
        u16::try_from(img.width().div_ceil(fw))
            .unwrap_or(cols)
            .clamp(1, cols.max(1)),
        u16::try_from(img.height().div_ceil(fh))
            .unwrap_or(rows)
            .clamp(1, rows.max(1)),
    );
    let (pw, ph) = (u32::from(size.width) * fw, u32::from(size.height) * fh);
    if (img.width(), img.height()) == (pw, ph) {
        return (img, size);
    }
    let mut canvas = image::RgbaImage::new(pw, ph);
    image::imageops::overlay(&mut canvas, &img.to_rgba8(), 0, 0);
    (DynamicImage::ImageRgba8(canvas), size)
}

/// Write `img` with a graphics protocol (see [`show`]), `font` the cell size in pixels.
pub fn write_graphics(
    out: &mut impl Write,
    img: &DynamicImage,
    cols: u32,
    rows: u32,
    d: &Detection,
    font: (u16, u16),
) -> io::Result<()> {
    let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX).max(1);
    let (cols, rows) = (clamp(cols), clamp(rows));
    let font = FontSize::new(font.0.max(1), font.1.max(1));
    let (img, size) = fit_to_cells(img.clone(), font, cols, rows);
    let (w, h) = (size.width, size.height);
    let encode_err = |e: String| io::Error::other(e);
    if d.protocol == Protocol::KittyPlaceholders && d.wrap {
        // Inside tmux: the picture is text (placeholder characters whose colour names the
        // image), which tmux keeps like any other text.
        let proto = Kitty::new(img, size, next_shown_id(), true, false)
            .map_err(|e| encode_err(e.to_string()))?;
        return write_cells(out, &ratatui_image::protocol::Protocol::Kitty(proto), size);
    }
    // Make room (scrolling if the cursor is near the bottom), go back up, draw with the cursor
    // saved and restored (protocols leave it in different places), then move below.
    let mut s = String::new();
    s.push_str(&"\n".repeat(usize::from(h)));
    s.push_str(&format!("\x1b[{h}A\r\x1b7"));
    match d.protocol {
        Protocol::Sixel => {
            let rgba = img.to_rgba8();
            let six = icy_sixel::sixel_encode(
                rgba.as_raw(),
                rgba.width() as usize,
                rgba.height() as usize,
                &icy_sixel::EncodeOptions::default(),
            )
            .map_err(|e| encode_err(e.to_string()))?;
            if d.wrap {
                s.push_str("\x1bPtmux;");
                s.push_str(&six.replace('\x1b', "\x1b\x1b"));
                s.push_str("\x1b\\");
            } else {
                s.push_str(&six);
            }
        }
        Protocol::Iterm2 => {
            let png = png_base64(&img)?;
            s.push_str(&format!(
                "\x1b]1337;File=inline=1;width={w};height={h};preserveAspectRatio=1;doNotMoveCursor=1:{png}\x07"
            ));
        }
        _ => {
            let k = KittyImage {
                id: next_shown_id(),
                data: png_base64(&img)?,
                size,
            };
            s.push_str(&k.transmit());
            s.push_str(&k.place(w, h));
        }
    }
    s.push_str(&format!("\x1b8\x1b[{h}B\r"));
    out.write_all(s.as_bytes())
}

fn png_base64(img: &DynamicImage) -> io::Result<String> {
    let mut png = Vec::new();
    img.write_to(&mut io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(io::Error::other)?;
    Ok(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        &png,
    ))
}

/// Print a protocol drawn into cells (ratatui-image's kitty placeholders) as lines of text.
fn write_cells(
    out: &mut impl Write,
    proto: &ratatui_image::protocol::Protocol,
    size: ratatui::layout::Size,
) -> io::Result<()> {
    use ratatui::style::Color;
    use ratatui::widgets::Widget;
    let area = ratatui::layout::Rect::new(0, 0, size.width, size.height);
    let mut buf = ratatui::buffer::Buffer::empty(area);
    ratatui_image::Image::new(proto).render(area, &mut buf);
    let mut s = String::new();
    for y in 0..size.height {
        let mut fg = None;
        for x in 0..size.width {
            let Some(cell) = buf.cell((x, y)) else {
                continue;
            };
            if Some(cell.fg) != fg {
                if let Color::Rgb(r, g, b) = cell.fg {
                    s.push_str(&format!("\x1b[38;2;{r};{g};{b}m"));
                }
                fg = Some(cell.fg);
            }
            s.push_str(cell.symbol());
        }
        s.push_str("\x1b[0m\n");
    }
    out.write_all(s.as_bytes())
}

/// Remove a picture [`show`] placed by kitty image id (the full view does, before it closes).
pub fn remove_shown(out: &mut impl Write) {
    if detection().is_some_and(|d| {
        matches!(
            d.protocol,
            Protocol::KittyDirect | Protocol::KittyPlaceholders
        ) && !d.wrap
    }) {
        let id = SHOWN_ID.swap(0, std::sync::atomic::Ordering::Relaxed);
        if id != 0 {
            let _ = write!(out, "\x1b_Ga=d,d=I,i={id},q=2\x1b\\");
        }
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 9 item 10: a pipe must be refused at once, not waited on or read without end.
    #[cfg(unix)]
    #[test]
    fn load_refuses_a_pipe_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.png");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = load(&fifo).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn load_tells_the_format_from_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let img = RgbaImage::from_pixel(6, 4, image::Rgba([1, 2, 3, 255]));
        let mut webp = io::Cursor::new(Vec::new());
        img.write_to(&mut webp, image::ImageFormat::WebP).unwrap();
        let path = dir.path().join("named.jpg");
        std::fs::write(&path, webp.into_inner()).unwrap();
        let got = load(&path).unwrap();
        assert_eq!((got.width(), got.height()), (6, 4));
        let empty = dir.path().join("empty.png");
        std::fs::write(&empty, b"").unwrap();
        assert!(load(&empty).unwrap_err().contains("not a picture"));
    }

    /// Issue 15: quadrants draw a picture in the same cells as half-blocks, with twice the
    /// detail across: a thin vertical stripe half a cell wide is a half-cell block.
    /// What a quadrant cell shows in each of its four pixels (None: the terminal's background).
    fn shown(glyph: char, fg: Option<Code>, bg: Option<Code>) -> [Option<Code>; 4] {
        let mask = if glyph == '█' {
            15
        } else {
            crate::symbols::QUADRANTS
                .iter()
                .position(|q| *q == glyph)
                .unwrap()
        };
        std::array::from_fn(|i| if mask & 1 << i != 0 { fg } else { bg })
    }

    /// Every cell, whatever colours are already set, is drawn with the same four pixels, and a
    /// cell whose two colours are set the other way round (or whose one colour is the
    /// foreground) needs no code at all.
    #[test]
    fn quadrant_cells_reuse_the_colours_already_set() {
        let (a, b, c) = (Code::Indexed(20), Code::Indexed(200), Code::Indexed(99));
        let states = [
            (None, None),
            (Some(a), Some(b)),
            (Some(b), Some(a)),
            (Some(c), Some(a)),
            (Some(b), None),
        ];
        for mask in 0..16usize {
            let cell = crate::symbols::Cell {
                glyph: crate::symbols::QUADRANTS[mask],
                fg: Some([1, 2, 3]),
                bg: Some([4, 5, 6]),
            };
            let (want_fg, want_bg) = if mask == 0 {
                (None, Some(b))
            } else if mask == 15 {
                (Some(a), Some(a))
            } else {
                (Some(a), Some(b))
            };
            let cell = if mask == 0 {
                crate::symbols::Cell {
                    glyph: ' ',
                    fg: None,
                    ..cell
                }
            } else {
                cell
            };
            let expect = shown(cell.glyph, want_fg, want_bg);
            for (fg, bg) in states {
                let (glyph, f, g) = cheapest_quadrant(&cell, want_fg, want_bg, fg, bg);
                assert_eq!(
                    shown(glyph, f, g),
                    expect,
                    "mask {mask} drawn as {glyph:?} from {fg:?}/{bg:?}"
                );
                if (fg, bg) == (Some(b), Some(a)) && (1..15).contains(&mask) {
                    assert_eq!((f, g), (fg, bg), "mask {mask}: a code written for nothing");
                }
            }
        }
        // One colour that is the foreground already: a full block, no code.
        let one = crate::symbols::Cell {
            glyph: ' ',
            fg: None,
            bg: Some([9, 9, 9]),
        };
        assert_eq!(
            cheapest_quadrant(&one, None, Some(c), Some(c), Some(a)),
            ('█', Some(c), Some(a))
        );
    }

    #[test]
    fn quadrants_take_the_same_cells_with_more_detail() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_fn(16, 8, |x, _| {
            image::Rgba(if x == 4 {
                [250, 250, 250, 255]
            } else {
                [0, 0, 0, 255]
            })
        }));
        let (mut half, mut quad) = (Vec::new(), Vec::new());
        write_halfblocks(&mut half, &img, 8, 2, true).unwrap();
        write_quadrants(&mut quad, &img, 8, 2, true).unwrap();
        let (half, quad) = (
            String::from_utf8(half).unwrap(),
            String::from_utf8(quad).unwrap(),
        );
        assert_eq!(half.lines().count(), quad.lines().count());
        // Column 2 of 8 holds the stripe in its left half: `▌` (or its complement).
        assert!(quad.contains('▌') || quad.contains('▐'), "{quad:?}");
        assert!(!half.contains('▌'));
    }

    #[test]
    fn fits_keep_shape() {
        assert_eq!(fit(1024, 1024, 80, 40), (80, 80));
        // Whole cells: an odd height would leave a half-empty last row (issue 15).
        assert_eq!(fit(1536, 1024, 80, 40), (80, 54));
        assert_eq!(fit(1024, 1536, 80, 40), (53, 80));
        assert_eq!(fit(600, 400, 80, 40), (80, 54));
        assert_eq!(fit(1, 1, 0, 0), (1, 2));
    }

    #[test]
    fn output_has_one_line_per_row_and_few_codes() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_pixel(
            64,
            64,
            image::Rgba([10, 20, 30, 255]),
        ));
        let mut out = Vec::new();
        write_halfblocks(&mut out, &img, 8, 4, true).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 4);
        // A flat colour needs one colour code a row.
        assert_eq!(text.matches("48;2;10;20;30").count(), 4, "{text:?}");
        assert!(!text.contains("38;2"), "{text:?}");
        let mut out = Vec::new();
        write_halfblocks(&mut out, &img, 8, 4, false).unwrap();
        assert!(!String::from_utf8(out).unwrap().contains(";2;"));
    }

    /// Issue 15: in 256 colours a dark blue picture (a night sky) came out grey.
    #[test]
    fn dark_blue_keeps_its_hue_in_256_colours() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_pixel(
            16,
            16,
            image::Rgba([20, 30, 70, 255]),
        ));
        let mut out = Vec::new();
        write_halfblocks(&mut out, &img, 4, 2, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        let at = text.find("48;5;").unwrap() + 5;
        let code: u8 = text[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let (r, g, b) = crate::colour::palette_rgb(code);
        assert!(b > r && b > g, "dark blue became ({r}, {g}, {b}): {text:?}");
    }

    /// Issue 15: a picture is shrunk by averaging the light of the pixels each cell covers
    /// (as the eye does), not blurred in sRGB values: fine black and white stripes are a
    /// light grey (188), not a dark one (128).
    #[test]
    fn shrinking_averages_light() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_fn(64, 64, |x, _| {
            let v = if x % 2 == 0 { 0 } else { 255 };
            image::Rgba([v, v, v, 255])
        }));
        let mut out = Vec::new();
        write_halfblocks(&mut out, &img, 4, 2, true).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("48;2;188;188;188"), "{text:?}");
    }

    /// Issue 15 (no more bytes than chafa): in truecolor, neighbours whose colours differ by
    /// less than one just-noticeable step share the code already set.
    #[test]
    fn colours_too_close_to_tell_apart_share_a_code() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_fn(8, 4, |x, _| {
            image::Rgba([100 + (x % 2) as u8, 100, 100, 255])
        }));
        let mut out = Vec::new();
        write_halfblocks(&mut out, &img, 8, 2, true).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("\x1b[").count(), 4, "{text:?}");
        // Visibly different colours still get their own.
        let img = DynamicImage::ImageRgba8(RgbaImage::from_fn(8, 4, |x, _| {
            image::Rgba([100 + 20 * (x % 2) as u8, 100, 100, 255])
        }));
        let mut out = Vec::new();
        write_halfblocks(&mut out, &img, 8, 2, true).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("120;100;100") && text.contains("100;100;100"),
            "{text:?}"
        );
    }
}
