//! Preview pictures: detecting what the terminal can show, and turning image bytes into a
//! picture sized for the pane. Decoding, resizing and encoding happen here, on a worker thread,
//! never in `update` or `view`.
//!
//! Most protocols draw through ratatui-image inside the frame's buffer. kitty graphics without
//! Unicode placeholders (kitty before 0.28, terminals that ignore placeholders) cannot: the
//! picture is placed at a position by image id after each frame ([`KittyPlacer`]), replaced when
//! it changes, and removed under popups, outside the studio and on exit.

pub use crate::picture::{KittyImage, fit_to_cells};
use crate::termcaps::{Detection, Protocol as Wire};
use image::DynamicImage;
use ratatui::layout::{Rect, Size};
use ratatui_image::picker::Picker;
use ratatui_image::protocol::Protocol;
use ratatui_image::{FontSize, Resize};
use std::io::Write;
use std::sync::Arc;

/// Which graphics the preview uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Graphics {
    Kitty,
    /// kitty graphics placed by id (no Unicode placeholders).
    KittyDirect,
    Sixel,
    Iterm,
    Halfblocks,
    /// Quadrant blocks (`[ui] symbols = "quadrant"`).
    Quadrants,
    None,
}

impl Graphics {
    pub fn label(self) -> &'static str {
        match self {
            Graphics::Kitty => "kitty",
            Graphics::KittyDirect => "kitty (placed)",
            Graphics::Sixel => "sixel",
            Graphics::Iterm => "iterm2",
            Graphics::Halfblocks => "half-blocks",
            Graphics::Quadrants => "quadrants",
            Graphics::None => "no previews",
        }
    }

    fn of(p: Wire) -> Graphics {
        match p {
            Wire::KittyPlaceholders => Graphics::Kitty,
            Wire::KittyDirect => Graphics::KittyDirect,
            Wire::Sixel => Graphics::Sixel,
            Wire::Iterm2 => Graphics::Iterm,
            Wire::Halfblocks => Graphics::Halfblocks,
        }
    }
}

/// A picture ready to draw in a pane.
pub enum Picture {
    /// Drawn by ratatui-image into the frame's cells.
    Cells(Protocol),
    /// Placed by [`KittyPlacer`] after the frame; the cells under it are left blank.
    Placed(Arc<KittyImage>),
    /// Symbols drawn by easel (quadrants), row by row.
    Text(Arc<Vec<Vec<crate::symbols::Cell>>>),
}

impl Picture {
    /// The picture's size in cells.
    pub fn size(&self) -> Size {
        match self {
            Picture::Cells(p) => p.size(),
            Picture::Placed(k) => k.size,
            Picture::Text(rows) => Size::new(
                u16::try_from(rows.first().map_or(0, Vec::len)).unwrap_or(u16::MAX),
                u16::try_from(rows.len()).unwrap_or(u16::MAX),
            ),
        }
    }
}

/// A picture ready to draw in a pane.
pub struct Rendered {
    pub picture: Picture,
    /// The source picture's size in pixels.
    pub width: u32,
    pub height: u32,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rendered({}x{})", self.width, self.height)
    }
}

/// Remove the placements of image `id` (its data stays).
fn unplace(id: u32) -> String {
    format!("\x1b_Ga=d,d=i,i={id},q=2\x1b\\")
}

/// Remove image `id` and its data.
fn forget(id: u32) -> String {
    format!("\x1b_Ga=d,d=I,i={id},q=2\x1b\\")
}

/// Keeps the terminal's kitty placement in step with what the view wants: after each frame,
/// [`KittyPlacer::sync`] writes only the difference (transmit a new picture, move, remove).
#[derive(Default)]
pub struct KittyPlacer {
    /// The image whose data the terminal holds.
    transmitted: Option<u32>,
    /// What is on screen: image id and where.
    placed: Option<(u32, Rect)>,
}

impl KittyPlacer {
    /// Bring the screen to `want` (a picture and its cells, or nothing).
    pub fn sync(&mut self, want: Option<(&KittyImage, Rect)>, out: &mut impl Write) {
        let want_key = want.map(|(k, r)| (k.id, r));
        if want_key == self.placed {
            return;
        }
        let mut s = String::new();
        if let Some((id, _)) = self.placed.take() {
            s.push_str(&unplace(id));
        }
        if let Some((img, at)) = want {
            if self.transmitted != Some(img.id) {
                if let Some(old) = self.transmitted.take() {
                    s.push_str(&forget(old));
                }
                s.push_str(&img.transmit());
                self.transmitted = Some(img.id);
            }
            s.push_str(&format!("\x1b[{};{}H", at.y + 1, at.x + 1));
            s.push_str(&img.place(at.width, at.height));
            self.placed = Some((img.id, at));
        }
        let _ = out.write_all(s.as_bytes());
        let _ = out.flush();
    }

    /// Remove what is shown and the picture's data (before leaving the studio's screen, and on
    /// exit): kitty keeps no pictures of the alternate screen across leaving it, so the next
    /// sync sends it again.
    pub fn clear(&mut self, out: &mut impl Write) {
        self.sync(None, out);
        if let Some(id) = self.transmitted.take() {
            let _ = out.write_all(forget(id).as_bytes());
            let _ = out.flush();
        }
    }

    /// The screen was cleared and is drawn afresh (a resize): send and place again on the next
    /// sync.
    pub fn invalidate(&mut self) {
        self.placed = None;
        self.transmitted = None;
    }
}

/// Makes preview pictures for one terminal.
#[derive(Clone)]
pub struct Renderer {
    kind: Option<Wire>,
    /// Wrap in tmux passthrough.
    wrap: bool,
    font: FontSize,
    halfblocks: Picker,
    symbols: crate::symbols::Symbols,
}

impl Renderer {
    /// Half-blocks only, without asking the terminal (tests, and terminals that do not answer).
    pub fn halfblocks() -> Renderer {
        Renderer {
            kind: Some(Wire::Halfblocks),
            wrap: false,
            font: FontSize::new(10, 20),
            halfblocks: Picker::halfblocks(),
            symbols: crate::symbols::Symbols::Half,
        }
    }

    /// Draw with `symbols` when there are no graphics (`[ui] symbols`).
    pub fn with_symbols(self, symbols: crate::symbols::Symbols) -> Renderer {
        Renderer { symbols, ..self }
    }

    pub fn none() -> Renderer {
        Renderer {
            kind: None,
            ..Renderer::halfblocks()
        }
    }

    /// A renderer for a detection (also used by tests and benchmarks with a made-up one).
    pub fn for_detection(d: &Detection) -> Renderer {
        let (w, h) = d.cell.unwrap_or((10, 20));
        Renderer {
            kind: Some(d.protocol),
            wrap: d.wrap,
            font: FontSize::new(w.max(1), h.max(1)),
            halfblocks: Picker::halfblocks(),
            symbols: crate::symbols::Symbols::Half,
        }
    }

    /// Choose the graphics: `EASEL_GRAPHICS=auto|kitty|kitty-direct|sixel|iterm|halfblocks|none`.
    /// `auto` asks the terminal (before the event reader starts: the answers arrive on stdin).
    /// Returns the renderer, the graphics, a warning, and the detection (None when off).
    pub fn detect(
        setting: Option<&str>,
    ) -> (Renderer, Graphics, Option<String>, Option<Detection>) {
        if setting.is_some_and(|s| matches!(s.trim().to_ascii_lowercase().as_str(), "none" | "off"))
        {
            return (Renderer::none(), Graphics::None, None, None);
        }
        let (d, warning) = crate::termcaps::detect(setting);
        (
            Renderer::for_detection(&d),
            Graphics::of(d.protocol),
            warning,
            Some(d),
        )
    }

    /// Decode `bytes` and fit the picture into `cols` × `rows` cells.
    pub fn render(&self, bytes: &[u8], cols: u16, rows: u16) -> Result<Rendered, String> {
        let kind = self.kind.ok_or("previews are off (EASEL_GRAPHICS=none)")?;
        let img =
            image::load_from_memory(bytes).map_err(|e| format!("cannot decode the image: {e}"))?;
        self.render_image(kind, img, cols, rows)
    }

    /// Render a picture already decoded for a cell of a grid (gallery cells, compared images,
    /// the strip's inputs): drawn into the frame's cells, never placed after it — kitty before
    /// 0.28 places one picture (the preview), so its cells get half-blocks.
    pub fn render_decoded(
        &self,
        img: DynamicImage,
        cols: u16,
        rows: u16,
    ) -> Result<Rendered, String> {
        let kind = match self.kind.ok_or("previews are off (EASEL_GRAPHICS=none)")? {
            Wire::KittyDirect => Wire::Halfblocks,
            k => k,
        };
        self.render_image(kind, img, cols, rows)
    }

    fn render_image(
        &self,
        kind: Wire,
        img: DynamicImage,
        cols: u16,
        rows: u16,
    ) -> Result<Rendered, String> {
        let (width, height) = (img.width(), img.height());
        let (cols, rows) = (cols.max(1), rows.max(1));
        let fail = |e: ratatui_image::errors::Errors| format!("cannot draw the image: {e}");
        let picture =
            if kind == Wire::Halfblocks && self.symbols == crate::symbols::Symbols::Quadrant {
                // Quadrants: the cells half-blocks would take, at twice the pixels across.
                let (w, h) = crate::picture::fit(width, height, u32::from(cols), u32::from(rows));
                let img = img.thumbnail(w * 4, h * 2);
                let small = crate::colour::resize_linear(&img.to_rgba8(), w * 2, h);
                Picture::Text(Arc::new(crate::symbols::quadrant_cells(&small)))
            } else if kind == Wire::Halfblocks {
                // Half-blocks show two pixels a cell: shrink straight to about that (an area
                // average, twice oversampled), and let the protocol scale it to the cells. Shrinking
                // to the font's pixel size first would cost ten times more for the same picture.
                let img = img.thumbnail(u32::from(cols) * 2, u32::from(rows) * 4);
                Picture::Cells(
                    self.halfblocks
                        .new_protocol(img, Size::new(cols, rows), Resize::Scale(None))
                        .map_err(fail)?,
                )
            } else {
                let (img, size) = fit_to_cells(img, self.font, cols, rows);
                use ratatui_image::protocol::{iterm2::Iterm2, kitty::Kitty, sixel::Sixel};
                match kind {
                    Wire::KittyPlaceholders => Picture::Cells(Protocol::Kitty(
                        Kitty::new(img, size, fresh_id(), self.wrap, false).map_err(fail)?,
                    )),
                    Wire::Sixel => Picture::Cells(Protocol::Sixel(
                        Sixel::new(img, size, self.wrap).map_err(fail)?,
                    )),
                    Wire::Iterm2 => Picture::Cells(Protocol::ITerm2(
                        Iterm2::new(img, size, self.wrap).map_err(fail)?,
                    )),
                    Wire::KittyDirect | Wire::Halfblocks => {
                        let mut png = Vec::new();
                        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                            .map_err(|e| format!("cannot encode the image: {e}"))?;
                        Picture::Placed(Arc::new(KittyImage {
                            id: fresh_id(),
                            data: base64::Engine::encode(
                                &base64::engine::general_purpose::STANDARD,
                                &png,
                            ),
                            size,
                        }))
                    }
                }
            };
        Ok(Rendered {
            picture,
            width,
            height,
        })
    }
}

/// An image id for kitty: random, never 0, below 2²⁴ (ids that fit the placeholders' colour).
fn fresh_id() -> u32 {
    fastrand::u32(1..1 << 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fit_the_area() {
        let png = crate::api::payload::tiny_png(300, 150);
        let r = Renderer::halfblocks().render(&png, 20, 10).unwrap();
        let size = r.picture.size();
        assert!(size.width <= 20 && size.height <= 10, "{size:?}");
        assert_eq!((r.width, r.height), (300, 150));
        assert!(
            Renderer::halfblocks()
                .render(b"<svg/>", 20, 10)
                .unwrap_err()
                .contains("decode")
        );
        assert!(Renderer::none().render(&png, 20, 10).is_err());
    }
}
