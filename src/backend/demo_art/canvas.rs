//! The pixel buffer the painters draw on, its shapes, and nearest-neighbour upscaling.

use image::RgbaImage;

use super::colour::{Rgb, clamp01, mix, overlap, to_u8};
use super::scene::Dot;

/// Pixel range [lo, hi) covering the real interval [lo, hi], clamped to 0..max.
pub(super) fn span(lo: f32, hi: f32, max: u32) -> (u32, u32) {
    let a = (lo.floor().max(0.0) as u32).min(max);
    let b = (hi.ceil().max(0.0) as u32).min(max);
    (a, b.max(a))
}

pub(super) struct Canvas {
    pub(super) w: u32,
    pub(super) h: u32,
    pub(super) wf: f32,
    pub(super) hf: f32,
    /// Shorter side, the unit for round things.
    pub(super) s: f32,
    /// Smallest dot radius worth drawing, in canvas pixels (0.75 final-size pixels).
    pub(super) min_dot: f32,
    pub(super) buf: Vec<u8>,
}

impl Canvas {
    pub(super) fn new(w: u32, h: u32) -> Canvas {
        let len = (w as usize).saturating_mul(h as usize).saturating_mul(4);
        Canvas {
            w,
            h,
            wf: w as f32,
            hf: h as f32,
            s: w.min(h).max(1) as f32,
            min_dot: 0.75,
            buf: vec![255; len],
        }
    }

    /// Run `f(x, y, current)` over the pixel box `xr` × `yr`; `Some(colour)` replaces the pixel.
    pub(super) fn shade(
        &mut self,
        xr: (u32, u32),
        yr: (u32, u32),
        mut f: impl FnMut(u32, u32, Rgb) -> Option<Rgb>,
    ) {
        let stride = self.w as usize * 4;
        let (x0, x1) = (xr.0.min(self.w) as usize, xr.1.min(self.w) as usize);
        if x0 >= x1 {
            return;
        }
        for y in yr.0..yr.1.min(self.h) {
            let row = y as usize * stride;
            let Some(seg) = self.buf.get_mut(row + x0 * 4..row + x1 * 4) else {
                continue;
            };
            for (px, x) in seg.chunks_exact_mut(4).zip(xr.0..) {
                if let [r, g, b, _] = px {
                    let cur = Rgb {
                        r: f32::from(*r) / 255.0,
                        g: f32::from(*g) / 255.0,
                        b: f32::from(*b) / 255.0,
                    };
                    if let Some(c) = f(x, y, cur) {
                        *r = to_u8(c.r);
                        *g = to_u8(c.g);
                        *b = to_u8(c.b);
                    }
                }
            }
        }
    }

    /// Anti-aliased trapezoid centred on `cx`: half-width `hw0` at `y0` to `hw1` at `y1`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fill_trap(
        &mut self,
        cx: f32,
        y0: f32,
        y1: f32,
        hw0: f32,
        hw1: f32,
        col: Rgb,
        alpha: f32,
    ) {
        if y1 <= y0 || !(y1 - y0).is_finite() {
            return;
        }
        let hw = hw0.max(hw1);
        let xr = span(cx - hw, cx + hw, self.w);
        let yr = span(y0, y1, self.h);
        self.shade(xr, yr, |x, y, c| {
            let fy = y as f32;
            let cov_y = overlap(fy, fy + 1.0, y0, y1);
            let t = clamp01((fy + 0.5 - y0) / (y1 - y0));
            let hw = hw0 + (hw1 - hw0) * t;
            let fx = x as f32;
            let a = overlap(fx, fx + 1.0, cx - hw, cx + hw).min(1.0) * cov_y.min(1.0) * alpha;
            (a > 0.0).then(|| mix(c, col, a))
        });
    }

    pub(super) fn soft_dot(&mut self, dot: &Dot, col: Rgb) {
        let (cx, cy) = (dot.u * self.wf, dot.v * self.hf);
        // A dot smaller than a canvas pixel is drawn one pixel wide with its area as alpha.
        let r = (dot.r * self.s).max(self.min_dot);
        let reff = r.max(0.75);
        let alpha = dot.alpha * (r / reff).powi(2);
        let inv = 1.0 / (reff * reff);
        let xr = span(cx - reff, cx + reff, self.w);
        let yr = span(cy - reff, cy + reff, self.h);
        self.shade(xr, yr, |x, y, c| {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            let a = clamp01((1.0 - (dx * dx + dy * dy) * inv) * 1.6) * alpha;
            (a > 0.0).then(|| mix(c, col, a))
        });
    }

    pub(super) fn vignette(&mut self, strength: f32) {
        let fx: Vec<f32> = (0..self.w)
            .map(|x| ((x as f32 + 0.5) / self.wf * 2.0 - 1.0).powi(2))
            .collect();
        let (w, h, hf) = (self.w, self.h, self.hf);
        self.shade((0, w), (0, h), |x, y, c| {
            let vy = ((y as f32 + 0.5) / hf * 2.0 - 1.0).powi(2);
            let vx = fx.get(x as usize).copied().unwrap_or(0.0);
            Some(c.scale(1.0 - strength * 0.5 * (vx + vy)))
        });
    }

    pub(super) fn into_image(self) -> RgbaImage {
        let (w, h) = (self.w, self.h);
        RgbaImage::from_raw(w, h, self.buf).unwrap_or_else(|| RgbaImage::new(w, h))
    }
}

pub(super) fn upscale_nearest(src: &RgbaImage, width: u32, height: u32) -> RgbaImage {
    let (sw, sh) = src.dimensions();
    let mut out = RgbaImage::new(width, height);
    if sw == 0 || sh == 0 {
        return out;
    }
    let map = |i: u32, n: u32, sn: u32| {
        ((u64::from(i) * u64::from(sn) / u64::from(n.max(1))) as u32).min(sn - 1)
    };
    let xmap: Vec<u32> = (0..width).map(|x| map(x, width, sw)).collect();
    for (y, row) in out.rows_mut().enumerate() {
        let sy = map(y as u32, height, sh);
        for (px, &sx) in row.zip(&xmap) {
            if let Some(p) = src.get_pixel_checked(sx, sy) {
                *px = *p;
            }
        }
    }
    out
}
