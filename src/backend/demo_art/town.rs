//! The little town and the tower or lighthouse: what they are and where they stand.

use super::land::{Layer, Shape};
use super::palette::Mood;
use super::rng::Rng;

pub(super) struct Building {
    pub(super) u0: f32,
    pub(super) u1: f32,
    /// v of the ground it stands on.
    pub(super) ground: f32,
    /// Height, fraction of the image height.
    pub(super) h: f32,
    /// Gable roof height relative to the body height (0 = flat roof).
    pub(super) roof: f32,
    pub(super) shade: f32,
    pub(super) cols: u32,
    pub(super) rows: u32,
    /// One bit per window, row-major.
    pub(super) lit: u64,
}

pub(super) struct Tower {
    pub(super) u: f32,
    pub(super) ground: f32,
    /// Height, s units.
    pub(super) h: f32,
    pub(super) bands: u32,
    /// Beam tilt (dy per dx).
    pub(super) tilt: f32,
}

/// A row of up to 24 buildings, tallest in the middle, on `ground_layer` (or the horizon);
/// smaller on the horizon, with lit windows unless it is day.
pub(super) fn town(
    town_rng: &mut Rng,
    on_horizon: bool,
    ground_layer: Option<&Layer>,
    horizon: f32,
    mood: Mood,
) -> Vec<Building> {
    let mut town = Vec::new();
    let centre = town_rng.range(0.2, 0.8);
    let spread = town_rng.range(0.12, 0.25);
    let mut u = centre - spread;
    while u < centre + spread && town.len() < 24 {
        let width = if on_horizon {
            town_rng.range(0.015, 0.035)
        } else {
            town_rng.range(0.025, 0.05)
        };
        let rel = ((u + width / 2.0 - centre) / spread).abs().min(1.0);
        let h = if on_horizon {
            town_rng.range(0.02, 0.06)
        } else {
            town_rng.range(0.04, 0.11)
        } * (1.0 - 0.5 * rel);
        let ground = match ground_layer {
            Some(layer) => (0..=4)
                .map(|k| layer.profile(u + width * k as f32 / 4.0))
                .fold(0.0f32, f32::max),
            None => horizon,
        };
        let rows = town_rng.int(2, 5);
        let cols = town_rng.int(2, 3);
        let lit_p = if mood == Mood::Day { 0.0 } else { 0.55 };
        let mut lit = 0u64;
        for bit in 0..rows * cols {
            if town_rng.chance(lit_p) {
                lit |= 1u64 << bit.min(63);
            }
        }
        town.push(Building {
            u0: u,
            u1: u + width,
            ground,
            h,
            roof: if town_rng.chance(0.55) {
                town_rng.range(0.25, 0.45)
            } else {
                0.0
            },
            shade: town_rng.range(-0.06, 0.06),
            cols,
            rows,
            lit,
        });
        u += width + town_rng.range(0.0, 0.012);
    }
    town
}

/// The tower on the crest of `layer`: near the tip of a headland, else at the highest point of
/// the middle of the layer; on the horizon if there is no layer.
pub(super) fn tower(tower_rng: &mut Rng, layer: Option<&Layer>, horizon: f32) -> Tower {
    let (u, ground) = match layer {
        Some(layer) => match layer.shape {
            Shape::Headland { left, extent } => {
                let u = if left {
                    extent * 0.3
                } else {
                    1.0 - extent * 0.3
                };
                (u, layer.profile(u))
            }
            _ => (0..=70)
                .map(|k| 0.15 + 0.01 * k as f32)
                .map(|u| (u, layer.profile(u)))
                .fold((0.5, 2.0), |best, c| if c.1 < best.1 { c } else { best }),
        },
        None => (tower_rng.range(0.2, 0.8), horizon),
    };
    Tower {
        u,
        ground: ground + 0.004,
        h: tower_rng.range(0.2, 0.28),
        bands: tower_rng.int(4, 5),
        tilt: tower_rng.range(-0.06, 0.06),
    }
}
