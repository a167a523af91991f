//! Painting a scene: the order of the parts, then sky, sun or moon, clouds and water.

use std::f32::consts::TAU;

use image::RgbaImage;

use super::canvas::{Canvas, span};
use super::colour::{Rgb, clamp01, mix};
use super::land::Water;
use super::palette::Mood;
use super::scene::{Cloud, Orb, Scene, TownSpot};

impl Scene {
    /// Paint at `width` x `height`; `factor` is how much the result will be scaled up (1 for
    /// the final stage), so sub-pixel details keep their final-size look instead of growing.
    pub(super) fn paint(&self, width: u32, height: u32, factor: u32) -> RgbaImage {
        let mut cv = Canvas::new(width, height);
        cv.min_dot = 0.75 / factor.max(1) as f32;
        self.paint_sky(&mut cv);
        for star in &self.stars {
            cv.soft_dot(star, self.pal.star);
        }
        if let Some(orb) = &self.orb {
            self.paint_orb(&mut cv, orb);
        }
        for cloud in &self.clouds {
            self.paint_cloud(&mut cv, cloud);
        }
        if let Some(water) = &self.water {
            self.paint_water(&mut cv, water);
        }
        if self.town_spot == TownSpot::Horizon {
            self.paint_town(&mut cv);
        }
        for (i, layer) in self.layers.iter().enumerate() {
            self.paint_layer(&mut cv, layer);
            for tree in &layer.trees {
                self.paint_tree(&mut cv, layer, tree);
            }
            if self.town_spot == TownSpot::OnLayer(i) {
                self.paint_town(&mut cv);
            }
            if let Some((tower, spot)) = &self.tower
                && *spot == TownSpot::OnLayer(i)
            {
                self.paint_tower(&mut cv, tower);
            }
        }
        if let Some((tower, TownSpot::Horizon)) = &self.tower {
            self.paint_tower(&mut cv, tower);
        }
        for flake in &self.flakes {
            cv.soft_dot(flake, self.pal.flake);
        }
        cv.vignette(0.2);
        cv.into_image()
    }

    pub(super) fn paint_sky(&self, cv: &mut Canvas) {
        let [top, mid, low] = self.pal.sky;
        let horizon = self.horizon.max(1e-3);
        let rows: Vec<Rgb> = (0..cv.h)
            .map(|y| {
                let t = clamp01((y as f32 + 0.5) / cv.hf / horizon);
                let t = t * t * (3.0 - 2.0 * t) * 0.5 + t * 0.5;
                if t < 0.55 {
                    mix(top, mid, t / 0.55)
                } else {
                    mix(mid, low, (t - 0.55) / 0.45)
                }
            })
            .collect();
        let glow = self.orb.as_ref().map(|orb| {
            let (ox, oy) = (orb.u * cv.wf, orb.v * cv.hf);
            let gr = orb.r * cv.s * 3.5;
            let dx2: Vec<f32> = (0..cv.w)
                .map(|x| {
                    let d = x as f32 + 0.5 - ox;
                    d * d
                })
                .collect();
            (oy, 1.0 / (gr * gr).max(1e-6), dx2)
        });
        let gcol = self.pal.glow;
        let strength = self.pal.glow_strength;
        cv.shade((0, cv.w), (0, cv.h), |x, y, _| {
            let base = rows.get(y as usize).copied().unwrap_or(low);
            match &glow {
                Some((oy, inv, dx2)) => {
                    let dy = y as f32 + 0.5 - oy;
                    let d2 = dx2.get(x as usize).copied().unwrap_or(0.0) + dy * dy;
                    let g = 1.0 / (1.0 + d2 * inv);
                    Some(mix(base, gcol, strength * g * g))
                }
                None => Some(base),
            }
        });
    }

    pub(super) fn paint_orb(&self, cv: &mut Canvas, orb: &Orb) {
        let (cx, cy) = (orb.u * cv.wf, orb.v * cv.hf);
        let r = (orb.r * cv.s).max(0.75);
        let xr = span(cx - r - 1.0, cx + r + 1.0, cv.w);
        let yr = span(cy - r - 1.0, cy + r + 1.0, cv.h);
        let (orb_col, glow) = (self.pal.orb, self.pal.glow);
        // Crescent shadow disk.
        let (sx, sy, sr) = (cx + orb.side * r * 0.38, cy - r * 0.18, r * 0.92);
        cv.shade(xr, yr, |x, y, c| {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            let d = ((fx - cx).powi(2) + (fy - cy).powi(2)).sqrt();
            let mut cov = clamp01(r - d + 0.5);
            if cov <= 0.0 {
                return None;
            }
            let ty = (fy - cy) / r; // -1 top .. 1 bottom
            let col = if orb.moon {
                if orb.stripes {
                    let ds = ((fx - sx).powi(2) + (fy - sy).powi(2)).sqrt();
                    cov *= 1.0 - clamp01(sr - ds + 0.5);
                }
                mix(orb_col, glow, 0.15 * (ty + 1.0))
            } else {
                if orb.stripes && ty > 0.05 {
                    // Synthwave cuts: gaps widen towards the bottom.
                    let k = (ty - 0.05) / 0.95;
                    let phase = (k * 5.0).fract();
                    if phase < 0.12 + 0.45 * k {
                        cov = 0.0;
                    }
                }
                mix(orb_col, glow, 0.55 * clamp01(ty * 0.5 + 0.5))
            };
            (cov > 0.0).then(|| mix(c, col, cov))
        });
    }

    pub(super) fn paint_cloud(&self, cv: &mut Canvas, cloud: &Cloud) {
        let (cx, cy, s) = (cloud.u * cv.wf, cloud.v * cv.hf, cv.s);
        let puffs: Vec<(f32, f32, f32)> = cloud
            .puffs
            .iter()
            .map(|&(dx, dy, r)| (cx + dx * s, cy + dy * s, (r * s).max(0.5)))
            .collect();
        let (mut x0, mut x1, mut y0) = (f32::MAX, f32::MIN, f32::MAX);
        for &(px, py, r) in &puffs {
            x0 = x0.min(px - r);
            x1 = x1.max(px + r);
            y0 = y0.min(py - r);
        }
        let base = cy + cloud.base * s;
        let soft = (0.02 * s).max(0.75);
        let (hi, lo) = (self.pal.cloud_hi, self.pal.cloud_lo);
        let opacity = cloud.opacity * self.pal.cloud_alpha;
        let height = (base - y0).max(1.0);
        cv.shade(
            span(x0, x1, cv.w),
            span(y0, base + soft, cv.h),
            |x, y, c| {
                let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
                let mut a = 0.0f32;
                for &(px, py, r) in &puffs {
                    let q = 1.0 - ((fx - px).powi(2) + (fy - py).powi(2)) / (r * r);
                    a = a.max((q * 2.2).min(1.0));
                }
                a *= clamp01((base - fy) / soft + 0.5);
                if a <= 0.0 {
                    return None;
                }
                let t = clamp01((fy - y0) / height);
                Some(mix(c, mix(hi, lo, t * t), a * opacity))
            },
        );
    }

    pub(super) fn paint_water(&self, cv: &mut Canvas, water: &Water) {
        let (w, hf, s) = (cv.w as usize, cv.hf, cv.s);
        let hy = water.horizon * hf;
        let depth = (hf - hy).max(1.0);
        let nb = water.bands.len();
        // Band edges per column, band-major.
        let mut edges = Vec::with_capacity(nb * w);
        let mut crest_w = Vec::with_capacity(nb);
        for &(base, amp, f1, p1, f2, p2) in &water.bands {
            for x in 0..w {
                let u = (x as f32 + 0.5) / cv.wf;
                let wave = 0.7 * (TAU * (f1 * u + p1)).sin() + 0.3 * (TAU * (f2 * u + p2)).sin();
                edges.push((base + amp * wave) * hf);
            }
            crest_w.push((amp * hf * 0.35).max(0.6));
        }
        let rows: Vec<Rgb> = (0..cv.h)
            .map(|y| {
                let t = clamp01((y as f32 + 0.5 - hy) / depth);
                mix(self.pal.water_far, self.pal.water_near, t.powf(0.7))
            })
            .collect();
        let (crest, orb_col) = (self.pal.crest, self.pal.orb);
        let reflection = self
            .orb
            .as_ref()
            .filter(|o| o.v < water.horizon)
            .map(|o| (o.u * cv.wf, o.r * s));
        let refl_strength = match self.mood {
            Mood::Day => 0.35,
            Mood::Dusk => 0.6,
            Mood::Night => 0.5,
        };
        cv.shade((0, cv.w), span(hy - 1.0, hf, cv.h), |x, y, c| {
            let fy = y as f32 + 0.5;
            let cov = clamp01(fy - hy + 0.5);
            if cov <= 0.0 {
                return None;
            }
            let xi = x as usize;
            let mut band = 0;
            let mut edge = hy;
            for j in (0..nb).rev() {
                if let Some(&e) = edges.get(j * w + xi)
                    && e <= fy
                {
                    band = j;
                    edge = e;
                    break;
                }
            }
            let t = clamp01((fy - hy) / depth);
            let mut col = rows.get(y as usize).copied().unwrap_or(self.pal.water_near);
            if band % 2 == 1 {
                col = col.scale(0.93);
            }
            let cw = crest_w.get(band).copied().unwrap_or(1.0);
            let e = (fy - edge) / cw;
            if band > 0 && e < 1.0 {
                col = mix(col, crest, (1.0 - e) * (0.25 + 0.3 * t));
            }
            if let Some((ox, r)) = reflection {
                let rw = r * (0.6 + 1.6 * t);
                let dx = (x as f32 + 0.5 - ox).abs();
                if dx < rw {
                    let k = 1.0 - dx / rw;
                    let on = if band % 2 == 0 { 1.0 } else { 0.3 };
                    col = mix(col, orb_col, k * k * refl_strength * on);
                }
            }
            Some(mix(c, col, cov))
        });
    }
}
