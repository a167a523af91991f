//! Painting the land: layers of hills, ridges and islands, trees, the town and the tower.

use std::f32::consts::TAU;

use super::canvas::{Canvas, span};
use super::colour::{clamp01, mix};
use super::land::{Layer, Tree};
use super::palette::Mood;
use super::scene::{Scene, TownSpot};
use super::town::Tower;

impl Scene {
    pub(super) fn paint_layer(&self, cv: &mut Canvas, layer: &Layer) {
        let (hf, s) = (cv.hf, cv.s);
        let prof: Vec<f32> = (0..cv.w)
            .map(|x| layer.profile((x as f32 + 0.5) / cv.wf) * hf)
            .collect();
        let top = prof.iter().copied().fold(f32::MAX, f32::min);
        let y_end = layer.clip.map_or(hf, |c| c * hf);
        if top >= y_end {
            return;
        }
        let caps: Option<Vec<f32>> = layer.snowcap.map(|frac| {
            let line = (layer.base - layer.amp * frac) * hf;
            (0..cv.w)
                .map(|x| {
                    let u = (x as f32 + 0.5) / cv.wf;
                    line + layer.amp * hf * 0.08 * (TAU * (u * 23.0 + layer.octaves[0].1)).sin()
                })
                .collect()
        });
        let shade_depth = (hf * 0.3).max(1.0);
        let rim_w = (s * 0.004).max(1.0);
        let (rim, rim_a) = (self.pal.glow, self.pal.rim_alpha);
        let snow = self.pal.snowcap;
        cv.shade((0, cv.w), span(top - 1.0, y_end + 1.0, cv.h), |x, y, c| {
            let p = *prof.get(x as usize)?;
            let fy = y as f32 + 0.5;
            let cov = clamp01(fy - p + 0.5) * clamp01(y_end - fy + 0.5);
            if cov <= 0.0 {
                return None;
            }
            let below = fy - p;
            let t = clamp01(below / shade_depth);
            let mut col = mix(layer.top, layer.bottom, t);
            if let Some(caps) = &caps
                && caps.get(x as usize).is_some_and(|&line| fy < line)
            {
                col = mix(snow, snow.scale(0.85), clamp01(t * 3.0));
            }
            let e = below / rim_w;
            if e < 1.0 {
                col = mix(col, rim, (1.0 - e) * rim_a);
            }
            Some(mix(c, col, cov))
        });
    }

    pub(super) fn paint_tree(&self, cv: &mut Canvas, layer: &Layer, tree: &Tree) {
        let h = tree.h * cv.s;
        let cx = tree.u * cv.wf;
        let ground = layer.profile(tree.u) * cv.hf + h * 0.12;
        let col = self.pal.tree;
        let hw = h * 0.3;
        cv.fill_trap(cx, ground - h * 0.12, ground, h * 0.04, h * 0.04, col, 1.0);
        cv.fill_trap(cx, ground - h * 0.65, ground - h * 0.1, 0.0, hw, col, 1.0);
        cv.fill_trap(cx, ground - h, ground - h * 0.4, 0.0, hw * 0.75, col, 1.0);
    }

    pub(super) fn paint_town(&self, cv: &mut Canvas) {
        let pal = &self.pal;
        for b in &self.town {
            let (x0, x1) = (b.u0 * cv.wf, b.u1 * cv.wf);
            let ground = b.ground * cv.hf + 1.0;
            let body_h = b.h * cv.hf;
            let top = ground - body_h;
            let cx = (x0 + x1) / 2.0;
            let hw = (x1 - x0) / 2.0;
            let body = pal.building.scale(1.0 + b.shade);
            cv.fill_trap(cx, top, ground, hw, hw, body, 1.0);
            if b.roof > 0.0 {
                let roof = mix(body, pal.accent, 0.5);
                cv.fill_trap(
                    cx,
                    top - body_h * b.roof,
                    top + 0.5,
                    0.0,
                    hw * 1.12,
                    roof,
                    1.0,
                );
            }
            let (cols, rows) = (b.cols.max(1), b.rows.max(1));
            let cell_w = (x1 - x0) / cols as f32;
            let cell_h = (body_h * 0.85) / rows as f32;
            for r in 0..rows {
                for c in 0..cols {
                    let bit = (r * cols + c).min(63);
                    let on = b.lit & (1u64 << bit) != 0;
                    let col = if on { pal.window_lit } else { pal.window_dark };
                    let wx = x0 + cell_w * (c as f32 + 0.5);
                    let wy = top + body_h * 0.1 + cell_h * r as f32;
                    cv.fill_trap(
                        wx,
                        wy + cell_h * 0.25,
                        wy + cell_h * 0.7,
                        cell_w * 0.2,
                        cell_w * 0.2,
                        col,
                        0.9,
                    );
                }
            }
            // Lit windows shimmer on the water below a seaside town.
            if self.town_spot == TownSpot::Horizon && b.lit != 0 {
                let len = body_h * 1.6;
                let stripe = (cv.s * 0.006).max(1.0);
                let lit = pal.window_lit;
                let gy = b.ground * cv.hf;
                cv.shade(
                    span(cx - hw * 0.3, cx + hw * 0.3, cv.w),
                    span(gy, gy + len, cv.h),
                    |_, y, c| {
                        let d = y as f32 + 0.5 - gy;
                        if d < 0.0 || ((d / stripe) as u32) % 2 == 1 {
                            return None;
                        }
                        Some(mix(c, lit, 0.35 * (1.0 - d / len)))
                    },
                );
            }
        }
    }

    pub(super) fn paint_tower(&self, cv: &mut Canvas, tower: &Tower) {
        let pal = &self.pal;
        let s = cv.s;
        let h = tower.h * s;
        let cx = tower.u * cv.wf;
        let ground = tower.ground * cv.hf;
        let body_top = ground - h * 0.78;
        let (bw, tw) = (h * 0.085, h * 0.055);
        let hw_at = |y: f32| tw + (bw - tw) * clamp01((y - body_top) / (ground - body_top));
        let bands = tower.bands.max(1);
        let band_h = (ground - body_top) / bands as f32;
        for k in 0..bands {
            let y0 = body_top + band_h * k as f32;
            let y1 = y0 + band_h;
            let col = if k % 2 == 0 { pal.paint } else { pal.accent };
            cv.fill_trap(cx, y0, y1 + 0.5, hw_at(y0), hw_at(y1), col, 1.0);
        }
        // Gallery, lantern, roof.
        let dark = pal.building.scale(0.8);
        cv.fill_trap(
            cx,
            body_top - h * 0.03,
            body_top,
            tw * 1.5,
            tw * 1.5,
            dark,
            1.0,
        );
        let lantern_top = body_top - h * 0.12;
        let lamp_on = self.mood != Mood::Day;
        let glass = if lamp_on {
            pal.window_lit
        } else {
            mix(pal.paint, pal.sky[1], 0.5)
        };
        cv.fill_trap(
            cx,
            lantern_top,
            body_top - h * 0.03,
            tw * 0.9,
            tw * 0.9,
            glass,
            1.0,
        );
        cv.fill_trap(
            cx,
            lantern_top - h * 0.09,
            lantern_top + 0.5,
            0.0,
            tw * 1.2,
            pal.accent,
            1.0,
        );
        if lamp_on {
            let (lx, ly) = (cx, lantern_top + h * 0.045);
            let len = s * 0.6;
            let slope = 0.12;
            let lamp_r = tw;
            let tilt = tower.tilt;
            let light = pal.window_lit;
            let reach = slope * len + lamp_r + len * tilt.abs();
            cv.shade(
                span(lx - len, lx + len, cv.w),
                span(ly - reach, ly + reach, cv.h),
                |x, y, c| {
                    let dx = x as f32 + 0.5 - lx;
                    let adx = dx.abs();
                    let dy = (y as f32 + 0.5 - ly - tilt * dx).abs();
                    let spread = slope * adx + lamp_r;
                    let along = 1.0 - adx / len;
                    let a = along * (1.0 - dy / spread);
                    let halo = lamp_r * lamp_r * 4.0 / (lamp_r * lamp_r * 4.0 + dx * dx + dy * dy);
                    let a = clamp01(a).max(0.0) * 0.32 + halo * 0.5;
                    (a > 0.004).then(|| mix(c, light, clamp01(a)))
                },
            );
        }
    }
}
