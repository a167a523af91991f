//! A mask painted in the terminal (issue 12): a keyboard (or mouse) selection of rectangles and
//! ellipses, added and subtracted, inverted, over the first input picture. Pure: where the
//! picture goes in its pane, how cells map to the picture's pixels, which pixels are selected,
//! and the PNG mask they make (alpha 0 = edit here, 255 elsewhere, at the picture's exact size).

use ratatui::layout::Rect;

/// A shape's outline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Rect,
    Ellipse,
}

/// A rectangle of picture pixels, half-open: `x0 <= x < x1`, `y0 <= y < y1`. An ellipse is the
/// one inscribed in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixRect {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl PixRect {
    pub fn width(&self) -> u32 {
        self.x1.saturating_sub(self.x0)
    }

    pub fn height(&self) -> u32 {
        self.y1.saturating_sub(self.y0)
    }
}

/// One step of a selection.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Add(Shape, PixRect),
    Subtract(Shape, PixRect),
    Invert,
    /// The transparent area of a mask file, added (a loaded mask becomes the selection).
    Loaded(std::sync::Arc<Loaded>),
}

/// The pixels a mask file marks to edit (alpha 0), at the file's size.
#[derive(Clone, PartialEq, Eq)]
pub struct Loaded {
    pub width: u32,
    pub height: u32,
    clear: Vec<bool>,
}

impl Loaded {
    /// Whether pixel (x, y) is transparent in the file (outside it: no).
    pub fn get(&self, x: u32, y: u32) -> bool {
        if x >= self.width || y >= self.height {
            return false;
        }
        let i = y as usize * self.width as usize + x as usize;
        self.clear.get(i).copied().unwrap_or(false)
    }
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.clear.iter().filter(|c| **c).count();
        write!(f, "Loaded({}x{}, {n} to edit)", self.width, self.height)
    }
}

/// The most pixels a mask file may have to be read as a selection (a mask is the first
/// picture's size; the API's largest pictures are well under this).
pub const MASK_MAX_PIXELS: u64 = 6144 * 6144;

/// A mask file (PNG with transparency) as a selection: its pixels of alpha 0. With `picture`
/// (the first input picture's size, where it is known) a mask of another size is refused, as
/// the check before sending would refuse it; its header is read before any pixel.
pub fn import(bytes: &[u8], picture: Option<(u32, u32)>) -> Result<Op, String> {
    use image::ImageDecoder;
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Png) => {}
        Ok(other) => {
            let name = other.extensions_str().first().copied().unwrap_or("picture");
            return Err(format!(
                "it is a {} file, not a PNG: a mask must be a PNG with transparency",
                name.to_uppercase()
            ));
        }
        Err(_) => {
            return Err(
                "not a picture easel can read (a mask must be a PNG with transparency)".into(),
            );
        }
    }
    let decoder = image::codecs::png::PngDecoder::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a PNG easel can read: {e}"))?;
    let (w, h) = decoder.dimensions();
    if let Some((pw, ph)) = picture.filter(|p| *p != (w, h)) {
        return Err(format!(
            "it is {w}x{h}, but the picture it masks is {pw}x{ph}: a mask must be the same size"
        ));
    }
    if u64::from(w) * u64::from(h) > MASK_MAX_PIXELS {
        return Err(format!("it is {w}x{h}: too large to read as a mask"));
    }
    if !decoder.color_type().has_alpha() {
        return Err(
            "it has no alpha channel: a mask marks where to edit with transparent (alpha 0) pixels"
                .into(),
        );
    }
    let img = image::DynamicImage::from_decoder(decoder)
        .map_err(|e| format!("not a PNG easel can read: {e}"))?
        .to_rgba8();
    let clear: Vec<bool> = img.pixels().map(|p| p.0[3] == 0).collect();
    if !clear.iter().any(|c| *c) {
        return Err(
            "it has no fully transparent pixel: nothing would be edited (alpha 0 marks where to edit)"
                .into(),
        );
    }
    Ok(Op::Loaded(std::sync::Arc::new(Loaded {
        width: img.width(),
        height: img.height(),
        clear,
    })))
}

/// Whether pixel (x, y) is inside `shape` drawn in `r` (an ellipse by its pixel's centre).
pub fn inside(shape: Shape, r: &PixRect, x: u32, y: u32) -> bool {
    if x < r.x0 || x >= r.x1 || y < r.y0 || y >= r.y1 {
        return false;
    }
    match shape {
        Shape::Rect => true,
        Shape::Ellipse => {
            let (rx, ry) = (f64::from(r.width()) / 2.0, f64::from(r.height()) / 2.0);
            let (cx, cy) = (f64::from(r.x0) + rx, f64::from(r.y0) + ry);
            let dx = (f64::from(x) + 0.5 - cx) / rx;
            let dy = (f64::from(y) + 0.5 - cy) / ry;
            dx * dx + dy * dy <= 1.0
        }
    }
}

/// Whether pixel (x, y) is selected (to be edited) after `ops`.
pub fn selected(ops: &[Op], x: u32, y: u32) -> bool {
    ops.iter().fold(false, |on, op| match op {
        Op::Add(s, r) => on || inside(*s, r, x, y),
        Op::Subtract(s, r) => on && !inside(*s, r, x, y),
        Op::Invert => !on,
        Op::Loaded(l) => on || l.get(x, y),
    })
}

/// The mask as RGBA at the picture's size: alpha 0 where selected (edit here), 255 elsewhere.
pub fn build(width: u32, height: u32, ops: &[Op]) -> image::RgbaImage {
    image::RgbaImage::from_fn(width, height, |x, y| {
        if selected(ops, x, y) {
            image::Rgba([0, 0, 0, 0])
        } else {
            image::Rgba([0, 0, 0, 255])
        }
    })
}

/// [`build`], encoded as PNG.
pub fn png(width: u32, height: u32, ops: &[Op]) -> Result<Vec<u8>, String> {
    let img = build(width, height, ops);
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgba8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| format!("cannot encode the mask: {e}"))?;
    Ok(out.into_inner())
}

/// Where the picture is drawn: `area` (cells) holds a grid of `gw` × `gh` square dots, two dots
/// a cell (upper and lower half), centred. Dot (gx, gy) is at cell (x + gx, y + gy / 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub x: u16,
    pub y: u16,
    /// Dots across (one a cell column) and down (two a cell row).
    pub gw: u32,
    pub gh: u32,
    /// The picture's size in pixels.
    pub width: u32,
    pub height: u32,
}

impl Placement {
    /// The cells the picture takes.
    pub fn cells(&self) -> Rect {
        Rect::new(
            self.x,
            self.y,
            u16::try_from(self.gw).unwrap_or(u16::MAX),
            u16::try_from(self.gh.div_ceil(2)).unwrap_or(u16::MAX),
        )
    }

    /// The first picture pixel of dot column `gx` (or the width at `gw`).
    pub fn px_x(&self, gx: u32) -> u32 {
        scale(gx.min(self.gw), self.width, self.gw)
    }

    pub fn px_y(&self, gy: u32) -> u32 {
        scale(gy.min(self.gh), self.height, self.gh)
    }

    /// The dot column that holds picture column `x`.
    pub fn dot_x(&self, x: u32) -> u32 {
        (u64::from(x.min(self.width)) * u64::from(self.gw) / u64::from(self.width.max(1))) as u32
    }

    pub fn dot_y(&self, y: u32) -> u32 {
        (u64::from(y.min(self.height)) * u64::from(self.gh) / u64::from(self.height.max(1))) as u32
    }

    /// The dots a rectangle of pixels stands on, to the nearest dot, at least one each way.
    pub fn to_dots(&self, r: &PixRect) -> (u32, u32, u32, u32) {
        let round = |v: u32, to: u32, from: u32| {
            ((u64::from(v) * u64::from(to) + u64::from(from) / 2) / u64::from(from.max(1))) as u32
        };
        let gx0 = round(r.x0, self.gw, self.width).min(self.gw.saturating_sub(1));
        let gy0 = round(r.y0, self.gh, self.height).min(self.gh.saturating_sub(1));
        let gx1 = round(r.x1, self.gw, self.width).clamp(gx0 + 1, self.gw.max(gx0 + 1));
        let gy1 = round(r.y1, self.gh, self.height).clamp(gy0 + 1, self.gh.max(gy0 + 1));
        (gx0, gy0, gx1, gy1)
    }

    /// The picture pixels a rectangle of dots covers.
    pub fn dots_to_pixels(&self, gx0: u32, gy0: u32, gx1: u32, gy1: u32) -> PixRect {
        PixRect {
            x0: self.px_x(gx0),
            y0: self.px_y(gy0),
            x1: self.px_x(gx1),
            y1: self.px_y(gy1),
        }
    }

    /// The dot under terminal cell (col, row), upper half (a cell holds two dots).
    pub fn dot_at(&self, col: u16, row: u16) -> Option<(u32, u32)> {
        let gx = u32::from(col.checked_sub(self.x)?);
        let gy = u32::from(row.checked_sub(self.y)?) * 2;
        (gx < self.gw && gy < self.gh).then_some((gx, gy))
    }

    /// The picture pixel at the centre of dot (gx, gy): what the overlay shows for that dot.
    pub fn dot_centre(&self, gx: u32, gy: u32) -> (u32, u32) {
        let x = (self.px_x(gx) + self.px_x(gx + 1)) / 2;
        let y = (self.px_y(gy) + self.px_y(gy + 1)) / 2;
        (
            x.min(self.width.saturating_sub(1)),
            y.min(self.height.saturating_sub(1)),
        )
    }
}

fn scale(v: u32, to: u32, from: u32) -> u32 {
    (u64::from(v) * u64::from(to) / u64::from(from.max(1))) as u32
}

/// Where the mask editor draws, on a screen of `width` × `height`: a frame over the screen but
/// the status line, the picture inside it, two lines of keys and figures under the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub frame: Rect,
    pub picture: Rect,
    pub footer: Rect,
}

pub fn geometry(width: u16, height: u16) -> Geometry {
    let frame = Rect::new(0, 0, width, height.saturating_sub(1));
    let inner = super::layout::inner(frame);
    let footer_h = 2.min(inner.height);
    let picture = Rect {
        height: inner.height - footer_h,
        ..inner
    };
    let footer = Rect::new(inner.x, picture.bottom(), inner.width, footer_h);
    Geometry {
        frame,
        picture,
        footer,
    }
}

/// Fit a `width` × `height` picture in `area`, as large as it goes with square dots, centred.
pub fn place(area: Rect, width: u32, height: u32) -> Option<Placement> {
    if width == 0 || height == 0 || area.width == 0 || area.height == 0 {
        return None;
    }
    let (aw, ah) = (f64::from(area.width), f64::from(area.height) * 2.0);
    let s = (aw / f64::from(width)).min(ah / f64::from(height));
    let gw = ((f64::from(width) * s).floor() as u32).clamp(1, u32::from(area.width));
    let gh = ((f64::from(height) * s).floor() as u32).clamp(1, u32::from(area.height) * 2);
    let cols = u16::try_from(gw).unwrap_or(area.width);
    let rows = u16::try_from(gh.div_ceil(2)).unwrap_or(area.height);
    Some(Placement {
        x: area.x + (area.width - cols) / 2,
        y: area.y + (area.height - rows) / 2,
        gw,
        gh,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(x0: u32, y0: u32, x1: u32, y1: u32) -> PixRect {
        PixRect { x0, y0, x1, y1 }
    }

    /// The transparent pixels of a built mask.
    fn clear_pixels(img: &image::RgbaImage) -> Vec<(u32, u32)> {
        img.enumerate_pixels()
            .filter(|(_, _, p)| p.0[3] == 0)
            .map(|(x, y, _)| (x, y))
            .collect()
    }

    #[test]
    fn a_rectangle_is_transparent_exactly_inside() {
        let img = build(8, 6, &[Op::Add(Shape::Rect, r(2, 1, 5, 3))]);
        assert_eq!(img.dimensions(), (8, 6));
        let want: Vec<(u32, u32)> = (1..3).flat_map(|y| (2..5).map(move |x| (x, y))).collect();
        let mut got = clear_pixels(&img);
        got.sort_by_key(|(x, y)| (*y, *x));
        assert_eq!(got, want);
        // Everything else is opaque.
        assert!(
            img.enumerate_pixels()
                .all(|(_, _, p)| p.0[3] == 0 || p.0[3] == 255)
        );
    }

    #[test]
    fn an_ellipse_leaves_its_corners_opaque() {
        let e = r(0, 0, 10, 10);
        let img = build(10, 10, &[Op::Add(Shape::Ellipse, e)]);
        // The centre is inside, the corners outside, the middle of each side inside.
        for (x, y, want) in [
            (5, 5, 0),
            (0, 0, 255),
            (9, 9, 255),
            (0, 9, 255),
            (9, 0, 255),
            (0, 5, 0),
            (5, 0, 0),
            (9, 4, 0),
        ] {
            assert_eq!(img.get_pixel(x, y).0[3], want, "({x}, {y})");
        }
        // Exactly the pixels whose centres are within the ellipse.
        for (x, y, p) in img.enumerate_pixels() {
            let (dx, dy) = ((x as f64 + 0.5 - 5.0) / 5.0, (y as f64 + 0.5 - 5.0) / 5.0);
            assert_eq!(p.0[3] == 0, dx * dx + dy * dy <= 1.0, "({x}, {y})");
        }
    }

    #[test]
    fn subtract_and_invert() {
        let ops = [
            Op::Add(Shape::Rect, r(0, 0, 6, 4)),
            Op::Subtract(Shape::Rect, r(2, 0, 4, 4)),
        ];
        let img = build(6, 4, &ops);
        for (x, y, p) in img.enumerate_pixels() {
            let want = !(2..4).contains(&x);
            assert_eq!(p.0[3] == 0, want, "({x}, {y})");
        }
        // Inverted: the opposite pixels.
        let mut inverted = ops.to_vec();
        inverted.push(Op::Invert);
        let img = build(6, 4, &inverted);
        for (x, _, p) in img.enumerate_pixels() {
            assert_eq!(p.0[3] == 0, (2..4).contains(&x), "{x}");
        }
        // An empty selection is all opaque; invert alone selects everything.
        assert!(clear_pixels(&build(3, 3, &[])).is_empty());
        assert_eq!(clear_pixels(&build(3, 3, &[Op::Invert])).len(), 9);
        // Subtracting from nothing selects nothing.
        assert!(clear_pixels(&build(3, 3, &[Op::Subtract(Shape::Rect, r(0, 0, 3, 3))])).is_empty());
    }

    #[test]
    fn the_png_decodes_to_the_same_alpha() {
        let ops = [Op::Add(Shape::Ellipse, r(10, 20, 90, 60))];
        let bytes = png(100, 80, &ops).unwrap();
        let img = image::load_from_memory(&bytes).unwrap().to_rgba8();
        assert_eq!(img, build(100, 80, &ops));
        assert_eq!(crate::api::edit::sniff(&bytes), Some("png"));
    }

    /// A mask file loaded becomes the selection: exporting it gives back the same alpha (0
    /// where the file is transparent, 255 elsewhere), and it can be added to and taken from.
    #[test]
    fn a_loaded_mask_exports_the_same_alpha_and_can_be_edited() {
        // A file with an odd shape: an ellipse minus a rectangle, plus a lone pixel.
        let shape = [
            Op::Add(Shape::Ellipse, r(5, 4, 60, 40)),
            Op::Subtract(Shape::Rect, r(20, 10, 30, 20)),
            Op::Add(Shape::Rect, r(70, 45, 71, 46)),
        ];
        let file = png(80, 50, &shape).unwrap();
        let op = import(&file, Some((80, 50))).unwrap();
        let ops = vec![op.clone()];
        assert_eq!(build(80, 50, &ops), build(80, 50, &shape));
        assert_eq!(png(80, 50, &ops).unwrap(), file, "the same file again");
        // Edited on: a rectangle added, another taken out.
        let mut more = ops.clone();
        more.push(Op::Add(Shape::Rect, r(0, 0, 4, 4)));
        more.push(Op::Subtract(Shape::Rect, r(30, 20, 40, 30)));
        let mut want = shape.to_vec();
        want.push(Op::Add(Shape::Rect, r(0, 0, 4, 4)));
        want.push(Op::Subtract(Shape::Rect, r(30, 20, 40, 30)));
        assert_eq!(build(80, 50, &more), build(80, 50, &want));
        // Partly transparent pixels are kept (only alpha 0 is edited), as the API reads them.
        let mut img = image::RgbaImage::from_pixel(4, 4, image::Rgba([0, 0, 0, 255]));
        img.put_pixel(1, 1, image::Rgba([0, 0, 0, 0]));
        img.put_pixel(2, 2, image::Rgba([0, 0, 0, 128]));
        let mut bytes = std::io::Cursor::new(Vec::new());
        img.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
        let op = import(bytes.get_ref(), None).unwrap();
        assert_eq!(clear_pixels(&build(4, 4, &[op])), vec![(1, 1)]);
        // A file without a transparent pixel, or not a picture, says why.
        let opaque = png(4, 4, &[]).unwrap();
        assert!(
            import(&opaque, None)
                .unwrap_err()
                .contains("no fully transparent pixel")
        );
        assert!(import(b"not a png", None).is_err());
    }

    fn encoded(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    /// A PNG whose header says it is `w`×`h` (its pixels are not there: only the header is read).
    fn with_size(png: &[u8], w: u32, h: u32) -> Vec<u8> {
        let mut out = png.to_vec();
        // The signature (8), the IHDR chunk's length and type (8), then width and height.
        out[16..20].copy_from_slice(&w.to_be_bytes());
        out[20..24].copy_from_slice(&h.to_be_bytes());
        let crc = crc32fast::hash(&out[12..29]);
        out[29..33].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// A mask file that cannot be a mask says what is wrong with it, as the check before
    /// sending would: not a PNG, no alpha channel, not the picture's size, too large to read.
    #[test]
    fn a_mask_file_that_cannot_be_a_mask_says_why() {
        let black = image::RgbImage::new(8, 8);
        // No alpha channel at all is said as such (not "no transparent pixel").
        let rgb = encoded(black.clone().into(), image::ImageFormat::Png);
        let e = import(&rgb, None).unwrap_err();
        assert!(e.contains("no alpha channel"), "{e}");
        // A JPEG (even a transparent-looking one) is not a PNG: the API takes PNG masks only.
        let jpeg = encoded(black.into(), image::ImageFormat::Jpeg);
        let e = import(&jpeg, None).unwrap_err();
        assert!(e.contains("not a PNG"), "{e}");
        // Not the first picture's size: refused with both sizes, before it is used.
        let clear = png(8, 6, &[Op::Invert]).unwrap();
        let e = import(&clear, Some((16, 12))).unwrap_err();
        assert!(e.contains("8x6") && e.contains("16x12"), "{e}");
        assert!(import(&clear, Some((8, 6))).is_ok());
        // A huge picture in a small file is refused from its header, without decoding it.
        let huge = with_size(&png(4, 4, &[Op::Invert]).unwrap(), 20_000, 20_000);
        let e = import(&huge, None).unwrap_err();
        assert!(e.contains("20000x20000"), "{e}");
    }

    #[test]
    fn cells_map_to_pixels_through_the_placement() {
        // A 1024×512 picture in 40×20 cells: 40 dots across, 20 down (10 rows), centred.
        let p = place(Rect::new(10, 5, 40, 20), 1024, 512).unwrap();
        assert_eq!((p.gw, p.gh), (40, 20));
        assert_eq!(p.cells(), Rect::new(10, 10, 40, 10));
        // Dot 0 starts at pixel 0, dot 40 ends at the width; each dot is 25.6 pixels.
        assert_eq!(p.dots_to_pixels(0, 0, 40, 20), r(0, 0, 1024, 512));
        assert_eq!(p.dots_to_pixels(10, 4, 20, 8), r(256, 102, 512, 204));
        // Terminal cell (15, 12) is dot (5, 4): its upper half.
        assert_eq!(p.dot_at(15, 12), Some((5, 4)));
        assert_eq!(p.dot_at(9, 12), None);
        assert_eq!(p.dot_at(50, 12), None);
        assert_eq!(p.dot_at(15, 20), None);
        // And back: picture pixels to dots.
        assert_eq!((p.dot_x(256), p.dot_y(102)), (10, 3));
        assert_eq!((p.dot_x(1024), p.dot_y(512)), (40, 20));
        // A selection made of cells masks exactly those cells' pixels.
        let sel = p.dots_to_pixels(10, 4, 20, 8);
        let img = build(1024, 512, &[Op::Add(Shape::Rect, sel)]);
        assert_eq!(img.get_pixel(256, 102).0[3], 0);
        assert_eq!(img.get_pixel(511, 203).0[3], 0);
        assert_eq!(img.get_pixel(255, 102).0[3], 255);
        assert_eq!(img.get_pixel(512, 150).0[3], 255);
        assert_eq!(img.get_pixel(300, 204).0[3], 255);
        // A tall picture is limited by the height.
        let t = place(Rect::new(0, 0, 80, 10), 500, 1000).unwrap();
        assert_eq!((t.gw, t.gh), (10, 20));
        assert_eq!(t.x, 35);
        assert!(place(Rect::new(0, 0, 0, 5), 10, 10).is_none());
    }
}
