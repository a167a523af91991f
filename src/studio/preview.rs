//! Preview pictures: detecting what the terminal can show, and turning image bytes into a
//! ratatui-image protocol sized for the pane. Decoding, resizing and encoding happen here, on a
//! worker thread, never in `update` or `view`.

use image::DynamicImage;
use ratatui::layout::Size;
use ratatui_image::Resize;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::Protocol;

/// Which graphics the preview uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Graphics {
    Kitty,
    Sixel,
    Iterm,
    Halfblocks,
    None,
}

impl Graphics {
    pub fn label(self) -> &'static str {
        match self {
            Graphics::Kitty => "kitty",
            Graphics::Sixel => "sixel",
            Graphics::Iterm => "iterm2",
            Graphics::Halfblocks => "half-blocks",
            Graphics::None => "no previews",
        }
    }
}

/// A picture ready to draw in a pane.
pub struct Rendered {
    pub protocol: Protocol,
    /// The source picture's size in pixels.
    pub width: u32,
    pub height: u32,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rendered({}x{})", self.width, self.height)
    }
}

/// Makes preview pictures for one terminal.
#[derive(Clone)]
pub struct Renderer {
    picker: Option<Picker>,
}

impl Renderer {
    /// Half-blocks only, without asking the terminal (tests, and terminals that do not answer).
    pub fn halfblocks() -> Renderer {
        Renderer {
            picker: Some(Picker::halfblocks()),
        }
    }

    pub fn none() -> Renderer {
        Renderer { picker: None }
    }

    /// Choose the graphics: `EASEL_GRAPHICS=auto|kitty|sixel|iterm|halfblocks|none`. `auto` asks
    /// the terminal (before the event reader starts: the answers arrive on stdin).
    pub fn detect(setting: Option<&str>) -> (Renderer, Graphics, Option<String>) {
        let setting = setting.unwrap_or("auto").trim().to_ascii_lowercase();
        let forced = match setting.as_str() {
            "none" | "off" => return (Renderer::none(), Graphics::None, None),
            "halfblocks" | "half-blocks" | "blocks" => {
                return (Renderer::halfblocks(), Graphics::Halfblocks, None);
            }
            "kitty" => Some(ProtocolType::Kitty),
            "sixel" => Some(ProtocolType::Sixel),
            "iterm" | "iterm2" => Some(ProtocolType::Iterm2),
            "auto" | "" => None,
            other => {
                let warn = format!(
                    "EASEL_GRAPHICS={other} is not one of auto, kitty, sixel, iterm, halfblocks, none: using auto"
                );
                let (r, g, _) = Renderer::detect(Some("auto"));
                return (r, g, Some(warn));
            }
        };
        let in_tmux = std::env::var_os("TMUX").is_some();
        let mut picker = if in_tmux || forced.is_some() {
            // Inside tmux the terminal's answers may never come back (no passthrough, or a
            // detached client), and a query left waiting on stdin would swallow keys: use what
            // the environment says, and the pixel size the kernel knows.
            picker_from_window_size()
        } else {
            Picker::from_query_stdio().unwrap_or_else(|_| Picker::halfblocks())
        };
        if let Some(p) = forced {
            picker.set_protocol_type(p);
        }
        let graphics = match picker.protocol_type() {
            ProtocolType::Kitty => Graphics::Kitty,
            ProtocolType::Sixel => Graphics::Sixel,
            ProtocolType::Iterm2 => Graphics::Iterm,
            ProtocolType::Halfblocks => Graphics::Halfblocks,
        };
        (
            Renderer {
                picker: Some(picker),
            },
            graphics,
            None,
        )
    }

    /// Decode `bytes` and fit the picture into `cols` × `rows` cells.
    pub fn render(&self, bytes: &[u8], cols: u16, rows: u16) -> Result<Rendered, String> {
        let picker = self
            .picker
            .as_ref()
            .ok_or("previews are off (EASEL_GRAPHICS=none)")?;
        let img =
            image::load_from_memory(bytes).map_err(|e| format!("cannot decode the image: {e}"))?;
        self.render_image(picker, img, cols, rows)
    }

    /// Render a picture already decoded (a cached thumbnail).
    pub fn render_decoded(
        &self,
        img: DynamicImage,
        cols: u16,
        rows: u16,
    ) -> Result<Rendered, String> {
        let picker = self
            .picker
            .as_ref()
            .ok_or("previews are off (EASEL_GRAPHICS=none)")?;
        self.render_image(picker, img, cols, rows)
    }

    fn render_image(
        &self,
        picker: &Picker,
        img: DynamicImage,
        cols: u16,
        rows: u16,
    ) -> Result<Rendered, String> {
        let (width, height) = (img.width(), img.height());
        let (cols, rows) = (cols.max(1), rows.max(1));
        let protocol = if picker.protocol_type() == ProtocolType::Halfblocks {
            // Half-blocks show two pixels a cell: shrink straight to about that (an area
            // average, twice oversampled), and let the protocol scale it to the cells. Shrinking
            // to the font's pixel size first would cost ten times more for the same picture.
            let img = img.thumbnail(u32::from(cols) * 2, u32::from(rows) * 4);
            picker.new_protocol(img, Size::new(cols, rows), Resize::Scale(None))
        } else {
            let font = picker.font_size();
            let (max_w, max_h) = (
                u32::from(cols) * u32::from(font.width.max(1)),
                u32::from(rows) * u32::from(font.height.max(1)),
            );
            // A fast area-averaging shrink first: the protocol's own resize is
            // nearest-neighbour, which would alias a 1024² picture badly.
            let img = if width > max_w || height > max_h {
                img.thumbnail(max_w, max_h)
            } else {
                img
            };
            picker.new_protocol(img, Size::new(cols, rows), Resize::Fit(None))
        }
        .map_err(|e| format!("cannot draw the image: {e}"))?;
        Ok(Rendered {
            protocol,
            width,
            height,
        })
    }
}

/// A half-blocks picker that knows the cell size in pixels when the kernel does (TIOCGWINSZ), so
/// a protocol forced with EASEL_GRAPHICS scales pictures right.
fn picker_from_window_size() -> Picker {
    match crossterm::terminal::window_size() {
        Ok(ws) if ws.width > 0 && ws.height > 0 && ws.columns > 0 && ws.rows > 0 => {
            let font = ratatui_image::FontSize::new(
                (ws.width / ws.columns).max(1),
                (ws.height / ws.rows).max(1),
            );
            #[allow(deprecated)]
            Picker::from_fontsize(font)
        }
        _ => Picker::halfblocks(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fit_the_area() {
        let png = crate::api::payload::tiny_png(300, 150);
        let r = Renderer::halfblocks().render(&png, 20, 10).unwrap();
        let size = r.protocol.size();
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
