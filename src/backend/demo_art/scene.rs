//! The resolution-independent scene: its parts, and building one from a prompt (sky parts here).
//!
//! Units: `u`/`v` are fractions of the width/height; sizes marked "s" are fractions of the
//! shorter side, so round things stay round at any aspect ratio.
//!
//! After the palette, each part draws from its own stream forked from the variant seed, so the
//! order of the forks in [`Scene::new`] is part of what the pictures look like.

use super::keywords::{DUSK, FOREST, MOUNTAIN, NIGHT, SEA, SNOW, SUN, TOWER, TOWN, scan};
use super::land::{self, Layer, Water};
use super::palette::{Mood, Palette};
use super::rng::{Rng, digest};
use super::town::{self, Building, Tower};

/// Sun or moon.
pub(super) struct Orb {
    pub(super) u: f32,
    pub(super) v: f32,
    /// Radius, s units.
    pub(super) r: f32,
    pub(super) moon: bool,
    /// Sun: cut with synthwave-style stripes. Moon: crescent.
    pub(super) stripes: bool,
    /// Crescent direction (±1).
    pub(super) side: f32,
}

pub(super) struct Cloud {
    pub(super) u: f32,
    pub(super) v: f32,
    /// (dx, dy, r) in s units relative to the centre.
    pub(super) puffs: Vec<(f32, f32, f32)>,
    /// Flat bottom, s units below the centre.
    pub(super) base: f32,
    pub(super) opacity: f32,
}

/// A soft dot (star or snowflake).
pub(super) struct Dot {
    pub(super) u: f32,
    pub(super) v: f32,
    /// Radius, s units.
    pub(super) r: f32,
    pub(super) alpha: f32,
}

/// Where the town goes in the painting order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum TownSpot {
    Horizon,
    OnLayer(usize),
}

pub(super) struct Scene {
    pub(super) mood: Mood,
    pub(super) pal: Palette,
    pub(super) horizon: f32,
    pub(super) orb: Option<Orb>,
    pub(super) stars: Vec<Dot>,
    pub(super) clouds: Vec<Cloud>,
    pub(super) water: Option<Water>,
    pub(super) layers: Vec<Layer>,
    pub(super) town: Vec<Building>,
    pub(super) town_spot: TownSpot,
    pub(super) tower: Option<(Tower, TownSpot)>,
    pub(super) flakes: Vec<Dot>,
}

impl Scene {
    /// The scene for variant `index` of `prompt`: the palette family and the features not named
    /// in the prompt come from the prompt alone, the composition from prompt and index.
    pub(super) fn new(prompt: &str, index: u32) -> Scene {
        let (flags, hue_word) = scan(prompt);
        let family = digest(&[b"easel-demo/palette\0", prompt.as_bytes()]);
        let variant = digest(&[
            b"easel-demo/variant\0",
            prompt.as_bytes(),
            b"\0",
            &index.to_le_bytes(),
        ]);
        let mut fam = Rng::from_hash(&family);
        let mut rng = Rng::from_hash(&variant);

        let mood = pick_mood(flags, &mut fam);
        let flags = add_unnamed_features(flags, &mut fam);
        let sea = flags & SEA != 0;
        let snow = flags & SNOW != 0;

        let jitter = rng.range(-8.0, 8.0);
        let pal = Palette::new(mood, flags, hue_word, &mut fam, jitter);
        let horizon = pick_horizon(&mut rng.fork(), sea);
        let orb = orb(&mut rng.fork(), mood, flags, horizon);
        let stars = stars(&mut rng.fork(), mood, horizon);
        let clouds = clouds(&mut rng.fork(), mood, snow, horizon);

        let mut land = land::land_and_sea(&mut rng.fork(), flags, horizon, &pal);
        if flags & FOREST != 0 {
            land::plant_trees(&mut rng.fork(), &mut land.layers);
        }
        let mut town = Vec::new();
        if flags & TOWN != 0 {
            let mut town_rng = rng.fork();
            let on_horizon = sea;
            if on_horizon {
                land.town_spot = TownSpot::Horizon;
            }
            let ground = land.layer_at(land.town_spot);
            town = town::town(&mut town_rng, on_horizon, ground, horizon, mood);
        }
        let tower = (flags & TOWER != 0).then(|| {
            let ground = land.layer_at(land.tower_spot);
            (
                town::tower(&mut rng.fork(), ground, horizon),
                land.tower_spot,
            )
        });
        let flakes = flakes(&mut rng.fork(), snow);

        Scene {
            mood,
            pal,
            horizon,
            orb,
            stars,
            clouds,
            water: land.water,
            layers: land.layers,
            town,
            town_spot: land.town_spot,
            tower,
            flakes,
        }
    }
}

/// Night, dusk or day: named in the prompt, else decided by the prompt's family seed.
fn pick_mood(flags: u16, fam: &mut Rng) -> Mood {
    if flags & NIGHT != 0 {
        Mood::Night
    } else if flags & DUSK != 0 {
        Mood::Dusk
    } else if flags & (SUN | SNOW) != 0 {
        Mood::Day
    } else {
        match fam.unit() {
            x if x < 0.55 => Mood::Day,
            x if x < 0.8 => Mood::Dusk,
            _ => Mood::Night,
        }
    }
}

/// Features not named in the prompt may still appear, decided per prompt (not per variant).
fn add_unnamed_features(flags: u16, fam: &mut Rng) -> u16 {
    let named = flags & (SEA | TOWN | FOREST | MOUNTAIN | TOWER) != 0;
    let mut flags = flags;
    if !named {
        for (flag, p) in [(SEA, 0.3), (MOUNTAIN, 0.35), (TOWN, 0.2), (FOREST, 0.25)] {
            if fam.chance(p) {
                flags |= flag;
            }
        }
    }
    flags
}

/// v of the horizon; a sea sits a little lower.
fn pick_horizon(comp: &mut Rng, sea: bool) -> f32 {
    if sea {
        comp.range(0.50, 0.62)
    } else {
        comp.range(0.42, 0.58)
    }
}

/// Sun or moon, if the mood has one.
fn orb(orb_rng: &mut Rng, mood: Mood, flags: u16, horizon: f32) -> Option<Orb> {
    let has_orb = match mood {
        Mood::Day => flags & SUN != 0 || orb_rng.chance(0.7),
        Mood::Dusk => true,
        Mood::Night => orb_rng.chance(0.85),
    };
    has_orb.then(|| {
        let u = orb_rng.range(0.18, 0.82);
        let (v, r) = match mood {
            Mood::Day => (orb_rng.range(0.12, 0.30), orb_rng.range(0.055, 0.09)),
            Mood::Dusk => (
                horizon - orb_rng.range(0.03, 0.16),
                orb_rng.range(0.09, 0.15),
            ),
            Mood::Night => (orb_rng.range(0.10, 0.28), orb_rng.range(0.04, 0.07)),
        };
        let stripes = match mood {
            Mood::Night => orb_rng.chance(0.65),
            Mood::Dusk => orb_rng.chance(0.45),
            Mood::Day => false,
        };
        let side = if orb_rng.chance(0.5) { 1.0 } else { -1.0 };
        Orb {
            u,
            v,
            r,
            moon: mood == Mood::Night,
            stripes,
            side,
        }
    })
}

/// Many stars at night, a few high ones at dusk, none by day.
fn stars(star_rng: &mut Rng, mood: Mood, horizon: f32) -> Vec<Dot> {
    let (count, max_v, bright) = match mood {
        Mood::Night => (star_rng.int(140, 220), horizon, 1.0),
        Mood::Dusk => (star_rng.int(15, 35), horizon * 0.35, 0.5),
        Mood::Day => (0, 0.0, 0.0),
    };
    (0..count)
        .map(|_| Dot {
            u: star_rng.unit(),
            v: max_v * star_rng.unit().powf(1.4),
            r: star_rng.range(0.0008, 0.0026),
            alpha: bright * star_rng.range(0.35, 1.0),
        })
        .collect()
}

/// A few clouds of overlapping puffs with flat bottoms, above the horizon.
fn clouds(cloud_rng: &mut Rng, mood: Mood, snow: bool, horizon: f32) -> Vec<Cloud> {
    let n_clouds = match mood {
        Mood::Day => cloud_rng.int(2, 5),
        Mood::Dusk => cloud_rng.int(2, 4),
        Mood::Night => cloud_rng.int(0, 2),
    } + u32::from(snow);
    (0..n_clouds)
        .map(|_| {
            let width = cloud_rng.range(0.18, 0.40);
            let np = cloud_rng.int(4, 6);
            let puffs = (0..np)
                .map(|p| {
                    let rel = p as f32 / (np.max(2) - 1) as f32 * 2.0 - 1.0;
                    let dx = rel * width * 0.32 + cloud_rng.range(-0.03, 0.03) * width;
                    let dy =
                        -(1.0 - rel * rel) * width * 0.12 + cloud_rng.range(-0.03, 0.03) * width;
                    let r = width * cloud_rng.range(0.2, 0.27) * (1.0 - 0.3 * rel.abs());
                    (dx, dy, r)
                })
                .collect();
            Cloud {
                u: cloud_rng.range(-0.05, 1.05),
                v: cloud_rng.range(0.06, (horizon - 0.14).max(0.08)),
                puffs,
                base: width * 0.07,
                opacity: cloud_rng.range(0.7, 1.0),
            }
        })
        .collect()
}

/// Falling snow over the whole picture (the stream is forked even without snow).
fn flakes(flake_rng: &mut Rng, snow: bool) -> Vec<Dot> {
    if snow {
        (0..flake_rng.int(150, 260))
            .map(|_| Dot {
                u: flake_rng.unit(),
                v: flake_rng.unit(),
                r: flake_rng.range(0.0018, 0.006),
                alpha: flake_rng.range(0.45, 0.9),
            })
            .collect()
    } else {
        Vec::new()
    }
}
