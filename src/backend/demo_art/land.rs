//! Land and sea: layer shapes, their profiles, and building water, islands, hills and trees.

use std::f32::consts::TAU;

use super::colour::{Rgb, mix};
use super::keywords::{MOUNTAIN, SEA, TOWER};
use super::palette::Palette;
use super::rng::Rng;
use super::scene::TownSpot;

#[derive(Clone, Copy)]
pub(super) enum Shape {
    /// Rolling sine hills.
    Hills,
    /// Jagged mountain ridges (sum of triangle waves).
    Ridges,
    /// Low islands sitting on the horizon.
    Islands,
    /// A headland rising from one side into the sea.
    Headland { left: bool, extent: f32 },
}

pub(super) struct Tree {
    pub(super) u: f32,
    /// Height, s units.
    pub(super) h: f32,
}

pub(super) struct Layer {
    pub(super) shape: Shape,
    /// v of the profile's lowest line.
    pub(super) base: f32,
    /// Height of the relief, fraction of the image height.
    pub(super) amp: f32,
    /// (cycles across the width, phase, weight).
    pub(super) octaves: [(f32, f32, f32); 3],
    pub(super) top: Rgb,
    pub(super) bottom: Rgb,
    /// Snow above this fraction of the relief (mountains).
    pub(super) snowcap: Option<f32>,
    /// Don't paint below this v (islands stop at the horizon).
    pub(super) clip: Option<f32>,
    pub(super) trees: Vec<Tree>,
}

impl Layer {
    /// v of the layer's top edge at horizontal position `u`.
    pub(super) fn profile(&self, u: f32) -> f32 {
        let (mut sum, mut wsum) = (0.0, 0.0);
        for &(f, p, w) in &self.octaves {
            let x = f * u + p;
            let wave = match self.shape {
                Shape::Ridges => 1.0 - (2.0 * (x - x.floor()) - 1.0).abs(),
                _ => (TAU * x).sin(),
            };
            sum += w * wave;
            wsum += w;
        }
        let n = if wsum > 0.0 { sum / wsum } else { 0.0 };
        match self.shape {
            Shape::Hills => self.base - self.amp * (0.5 + 0.5 * n),
            Shape::Ridges => self.base - self.amp * n * n.sqrt(),
            Shape::Islands => self.base - self.amp * ((n - 0.2).max(0.0) / 0.8),
            Shape::Headland { left, extent } => {
                let d = if left { u } else { 1.0 - u };
                if d >= extent {
                    2.0
                } else {
                    let k = d / extent.max(1e-3);
                    self.base + (1.15 - self.base) * k.powf(2.2) + self.amp * n
                }
            }
        }
    }
}

pub(super) struct Water {
    pub(super) horizon: f32,
    /// (base v, amplitude as fraction of height, f1, p1, f2, p2), far to near.
    pub(super) bands: Vec<(f32, f32, f32, f32, f32, f32)>,
}

/// The ground of a scene, far to near, and where the town and the tower stand on it.
pub(super) struct Land {
    pub(super) layers: Vec<Layer>,
    pub(super) water: Option<Water>,
    pub(super) town_spot: TownSpot,
    pub(super) tower_spot: TownSpot,
}

impl Land {
    /// The layer something at `spot` stands on (none on the horizon).
    pub(super) fn layer_at(&self, spot: TownSpot) -> Option<&Layer> {
        match spot {
            TownSpot::OnLayer(i) => self.layers.get(i),
            TownSpot::Horizon => None,
        }
    }
}

/// A sea with islands and a headland, or hills (behind mountains if named).
pub(super) fn land_and_sea(land_rng: &mut Rng, flags: u16, horizon: f32, pal: &Palette) -> Land {
    if flags & SEA != 0 {
        sea(land_rng, flags, horizon, pal)
    } else {
        inland(land_rng, flags, horizon, pal)
    }
}

/// Three octaves of a profile: frequencies drawn from the ranges `f`, random phases, weights `w`.
fn octaves(r: &mut Rng, f: [(f32, f32); 3], w: [f32; 3]) -> [(f32, f32, f32); 3] {
    [
        (r.range(f[0].0, f[0].1), r.unit(), w[0]),
        (r.range(f[1].0, f[1].1), r.unit(), w[1]),
        (r.range(f[2].0, f[2].1), r.unit(), w[2]),
    ]
}

/// Water from the horizon down, maybe islands, and a headland (always with a tower).
fn sea(land_rng: &mut Rng, flags: u16, horizon: f32, pal: &Palette) -> Land {
    let water = Some(water(land_rng, horizon));
    let mut layers = Vec::new();
    let mut tower_spot = TownSpot::Horizon;
    if land_rng.chance(0.55) {
        layers.push(islands(land_rng, horizon, pal));
    }
    if flags & TOWER != 0 || land_rng.chance(0.45) {
        layers.push(headland(land_rng, horizon, pal));
        tower_spot = TownSpot::OnLayer(layers.len() - 1);
    }
    Land {
        layers,
        water,
        town_spot: TownSpot::Horizon,
        tower_spot,
    }
}

/// Wave bands, thin and fast near the horizon, wide and slow near the viewer.
fn water(land_rng: &mut Rng, horizon: f32) -> Water {
    let nb = land_rng.int(10, 14);
    let bands = (0..nb)
        .map(|j| {
            let t = j as f32 / nb as f32;
            let f = 3.0 + 10.0 * (1.0 - t) + land_rng.range(-1.0, 1.0);
            (
                horizon + (1.0 - horizon) * t.powf(1.7),
                if j == 0 {
                    0.0
                } else {
                    0.002 + 0.02 * t.powf(1.3)
                },
                f,
                land_rng.unit(),
                f * land_rng.range(1.8, 2.6),
                land_rng.unit(),
            )
        })
        .collect();
    Water { horizon, bands }
}

/// Low hazy islands sitting on the horizon.
fn islands(land_rng: &mut Rng, horizon: f32, pal: &Palette) -> Layer {
    Layer {
        shape: Shape::Islands,
        base: horizon,
        amp: land_rng.range(0.02, 0.05),
        octaves: octaves(
            land_rng,
            [(1.0, 2.5), (3.0, 5.0), (8.0, 12.0)],
            [1.0, 0.3, 0.1],
        ),
        top: mix(pal.land_far, pal.haze, 0.3),
        bottom: mix(pal.land_far, pal.haze, 0.5),
        snowcap: None,
        clip: Some(horizon),
        trees: Vec::new(),
    }
}

/// A headland rising from the left or right edge into the sea.
fn headland(land_rng: &mut Rng, horizon: f32, pal: &Palette) -> Layer {
    let left = land_rng.chance(0.5);
    let extent = land_rng.range(0.28, 0.45);
    let base = horizon - land_rng.range(0.04, 0.10);
    Layer {
        shape: Shape::Headland { left, extent },
        base,
        amp: 0.012,
        octaves: octaves(
            land_rng,
            [(2.0, 4.0), (6.0, 9.0), (14.0, 20.0)],
            [1.0, 0.5, 0.2],
        ),
        top: pal.land_near,
        bottom: pal.land_near.scale(0.75),
        snowcap: None,
        clip: None,
        trees: Vec::new(),
    }
}

/// Maybe mountains, then three or four hills from far to near; the town sits on the
/// second-nearest hill, the tower on the nearest of three or the second-nearest of more.
fn inland(land_rng: &mut Rng, flags: u16, horizon: f32, pal: &Palette) -> Land {
    let mut layers = Vec::new();
    if flags & MOUNTAIN != 0 {
        layers.push(ridges(land_rng, horizon, pal));
    }
    let n = land_rng.int(3, 4);
    for i in 0..n {
        layers.push(hill(land_rng, horizon, pal, i, n));
    }
    let count = layers.len();
    Land {
        layers,
        water: None,
        town_spot: TownSpot::OnLayer(count.saturating_sub(2)),
        tower_spot: TownSpot::OnLayer(count.saturating_sub(if count >= 4 { 2 } else { 1 })),
    }
}

/// Jagged snow-capped mountain ridges behind the hills.
fn ridges(land_rng: &mut Rng, horizon: f32, pal: &Palette) -> Layer {
    Layer {
        shape: Shape::Ridges,
        base: horizon + 0.03,
        amp: land_rng.range(0.2, 0.3),
        octaves: octaves(
            land_rng,
            [(1.5, 3.0), (4.0, 7.0), (10.0, 16.0)],
            [1.0, 0.45, 0.18],
        ),
        top: mix(pal.land_far, pal.haze, 0.15),
        bottom: mix(pal.land_far, pal.haze, 0.55),
        snowcap: Some(0.5),
        clip: None,
        trees: Vec::new(),
    }
}

/// Hill `i` of `n` (0 = farthest): lower, taller and darker towards the viewer.
fn hill(land_rng: &mut Rng, horizon: f32, pal: &Palette, i: u32, n: u32) -> Layer {
    let d = i as f32 / (n - 1) as f32;
    let col = mix(pal.land_far, pal.land_near, d);
    let bottom = if d < 0.5 {
        mix(col, pal.haze, 0.35)
    } else {
        col.scale(0.8)
    };
    Layer {
        shape: Shape::Hills,
        base: horizon + (1.0 - horizon) * (0.08 + 0.6 * d.powf(1.2)),
        amp: land_rng.range(0.05, 0.1) * (0.7 + 0.8 * d),
        octaves: octaves(
            land_rng,
            [(0.6, 1.6), (2.0, 4.0), (5.0, 9.0)],
            [1.0, 0.35, 0.12],
        ),
        top: col,
        bottom,
        snowcap: None,
        clip: None,
        trees: Vec::new(),
    }
}

/// Trees on the rolling hills (and headland), larger on nearer layers.
pub(super) fn plant_trees(tree_rng: &mut Rng, layers: &mut [Layer]) {
    let count = layers.len();
    for (i, layer) in layers.iter_mut().enumerate() {
        if matches!(layer.shape, Shape::Ridges | Shape::Islands) {
            continue;
        }
        let depth = (i + 1) as f32 / count.max(1) as f32;
        let n = tree_rng.int(12, 28);
        layer.trees = (0..n)
            .map(|_| Tree {
                u: tree_rng.unit(),
                h: tree_rng.range(0.025, 0.05) * (0.5 + depth),
            })
            .collect();
    }
}
