//! Deterministic "demo" artwork for the offline backend.
//!
//! When no API key is configured easel still has to show *something* that visibly follows the
//! prompt. This module paints a small stylised landscape whose every choice (palette, horizon,
//! sun or moon, clouds, layered hills or sine-band waves, little towns, trees, a lighthouse)
//! comes from `sha256(prompt)` and `sha256(prompt, index)`, nudged by a tiny keyword table
//! ("night"/"夜" darkens, "sea"/"海" adds waves, ...). The same prompt and index always give the
//! same pixels; a "DEMO" stamp in the bottom-right corner makes sure the output can never be
//! mistaken for a real model's.
//!
//! Everything is pure: no I/O, no global state, no clock. Painting works in resolution
//! independent units, so a partial stage is simply the same scene painted at a fraction of the
//! size and scaled back up with nearest-neighbour sampling.
//!
//! The parts: `keywords` reads the prompt, `rng` seeds from it, `palette` (over `colour`)
//! picks the colours, `scene`, `land` and `town` lay the picture out, `painters` and
//! `painters_land` paint it on a `canvas`, `stamp` labels it and `encode` writes it out.

mod canvas;
mod colour;
mod encode;
mod keywords;
mod land;
mod painters;
mod painters_land;
mod palette;
mod rng;
mod scene;
mod stamp;
#[cfg(test)]
mod tests;
mod town;

use image::RgbaImage;

use canvas::upscale_nearest;
use scene::Scene;
use stamp::stamp_demo_label;

pub use encode::encode;

/// Largest width or height [`render`] will allocate; larger requests are clamped to it.
pub const MAX_SIDE: u32 = 8192;

/// JPEG quality used when the request does not say.
pub const DEFAULT_JPEG_QUALITY: u8 = 90;

/// Which stage of a simulated streamed generation to draw: partials are rougher versions of the final picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Partial image `index` of `of` (either 0- or 1-based works; later indices are sharper).
    Partial { index: u8, of: u8 },
    /// The finished picture.
    Final,
}

impl Stage {
    /// log2 of the downsampling factor used to paint this stage (0 = full resolution).
    fn downscale_shift(self) -> u32 {
        match self {
            Stage::Final => 0,
            Stage::Partial { index, of } => {
                let of = u32::from(of.max(1));
                let index = u32::from(index).min(of);
                (of - index + 1).clamp(1, 6)
            }
        }
    }
}

/// Draw the demo picture for `prompt` (variant `index` for n > 1: same palette family, different composition) at width x height.
///
/// Sides above [`MAX_SIDE`] are clamped; a zero side gives an empty image.
pub fn render(prompt: &str, index: u32, width: u32, height: u32, stage: Stage) -> RgbaImage {
    let width = width.min(MAX_SIDE);
    let height = height.min(MAX_SIDE);
    if width == 0 || height == 0 {
        return RgbaImage::new(width, height);
    }
    let scene = Scene::new(prompt, index);
    let shift = stage.downscale_shift();
    let mut img = if shift == 0 {
        scene.paint(width, height, 1)
    } else {
        let factor = 1u32 << shift;
        let small = scene.paint(width.div_ceil(factor), height.div_ceil(factor), factor);
        upscale_nearest(&small, width, height)
    };
    stamp_demo_label(&mut img);
    img
}

/// A demo edit of `source`, with the prompt's picture of the same size: with a `mask` (the
/// source's size; alpha 0 marks where to edit) the masked area is repainted with it and the
/// rest kept; without one the whole picture is recoloured half-way toward it. Stamped DEMO.
pub fn edit(source: &RgbaImage, mask: Option<&RgbaImage>, prompt: &str, index: u32) -> RgbaImage {
    let (w, h) = source.dimensions();
    if w == 0 || h == 0 {
        return source.clone();
    }
    let mut art = Scene::new(prompt, index).paint(w, h, 1);
    for (x, y, px) in art.enumerate_pixels_mut() {
        let src = source.get_pixel(x, y).0;
        let repaint = match mask {
            Some(m) if m.dimensions() == (w, h) => m.get_pixel(x, y).0[3] == 0,
            Some(_) => false,
            // Recolour everywhere: half the source, half the prompt's picture.
            None => {
                for (out, s) in px.0.iter_mut().zip(src).take(3) {
                    *out = ((u16::from(s) + u16::from(*out)) / 2) as u8;
                }
                px.0[3] = src[3];
                continue;
            }
        };
        if !repaint {
            *px = image::Rgba(src);
        }
    }
    stamp_demo_label(&mut art);
    art
}

/// A demo variation of `source`: its hues turned by an angle that depends on `index`, and
/// mirrored for odd indices. Stamped DEMO.
pub fn vary(source: &RgbaImage, index: u32) -> RgbaImage {
    let angle = (f32::from((index % 5) as u8) + 1.0) * 67.0_f32.to_radians();
    let (cos, sin) = (angle.cos(), angle.sin());
    // The standard hue-rotation matrix (luminance kept).
    let m = [
        [
            0.213 + cos * 0.787 - sin * 0.213,
            0.715 - cos * 0.715 - sin * 0.715,
            0.072 - cos * 0.072 + sin * 0.928,
        ],
        [
            0.213 - cos * 0.213 + sin * 0.143,
            0.715 + cos * 0.285 + sin * 0.140,
            0.072 - cos * 0.072 - sin * 0.283,
        ],
        [
            0.213 - cos * 0.213 - sin * 0.787,
            0.715 - cos * 0.715 + sin * 0.715,
            0.072 + cos * 0.928 + sin * 0.072,
        ],
    ];
    let tints = [
        [230.0, 90.0, 60.0],
        [60.0, 160.0, 230.0],
        [90.0, 210.0, 110.0],
        [220.0, 190.0, 60.0],
        [170.0, 90.0, 220.0],
    ];
    let tint = tints[(index % 5) as usize];
    let (w, _) = source.dimensions();
    let mut out = source.clone();
    for (x, y, px) in out.enumerate_pixels_mut() {
        let sx = if index % 2 == 1 { w - 1 - x } else { x };
        let src = source.get_pixel(sx, y).0;
        let rgb = [f32::from(src[0]), f32::from(src[1]), f32::from(src[2])];
        for (c, row) in m.iter().enumerate() {
            let v = row[0] * rgb[0] + row[1] * rgb[1] + row[2] * rgb[2];
            // A fifth of a tint of the variation's own, so grey pictures change too.
            let v = v * 0.8 + tint[c] * 0.2;
            px.0[c] = v.round().clamp(0.0, 255.0) as u8;
        }
        px.0[3] = src[3];
    }
    stamp_demo_label(&mut out);
    out
}
