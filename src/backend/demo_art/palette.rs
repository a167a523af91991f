//! The mood of a scene and the palette it is painted with.

use super::colour::{Rgb, hsl, mix};
use super::keywords::{FOREST, SEA, SNOW};
use super::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mood {
    Day,
    Dusk,
    Night,
}

pub(super) struct Palette {
    pub(super) sky: [Rgb; 3],
    pub(super) orb: Rgb,
    pub(super) glow: Rgb,
    pub(super) glow_strength: f32,
    pub(super) cloud_hi: Rgb,
    pub(super) cloud_lo: Rgb,
    pub(super) cloud_alpha: f32,
    pub(super) land_far: Rgb,
    pub(super) land_near: Rgb,
    pub(super) haze: Rgb,
    pub(super) snowcap: Rgb,
    pub(super) tree: Rgb,
    pub(super) water_far: Rgb,
    pub(super) water_near: Rgb,
    pub(super) crest: Rgb,
    pub(super) building: Rgb,
    pub(super) window_lit: Rgb,
    pub(super) window_dark: Rgb,
    pub(super) accent: Rgb,
    pub(super) paint: Rgb,
    pub(super) star: Rgb,
    pub(super) flake: Rgb,
    pub(super) rim_alpha: f32,
}

impl Palette {
    /// The palette for `mood`, hued by the prompt's colour word (if any) or the family seed.
    pub(super) fn new(
        mood: Mood,
        flags: u16,
        hue_word: Option<f32>,
        fam: &mut Rng,
        jitter: f32,
    ) -> Palette {
        let snow = flags & SNOW != 0;
        let forest = flags & FOREST != 0;
        let sea = flags & SEA != 0;
        // By day a colour word tints the land (a green sky looks wrong); with snow or sea there
        // is no land to carry it, so it tints the sky and therefore the water instead.
        let land_word = hue_word.filter(|_| mood == Mood::Day && !snow && !sea);
        let h = match (hue_word, land_word) {
            (Some(_), Some(_)) => fam.range(185.0, 255.0),
            (Some(word), None) => word,
            (None, _) => fam.range(0.0, 360.0),
        } + jitter;
        let j = fam.range(-1.0, 1.0);
        match mood {
            Mood::Day => Palette::day(h, j, hue_word, land_word, snow, forest),
            Mood::Dusk => Palette::dusk(h, j, hue_word, snow, forest),
            Mood::Night => Palette::night(h, j, hue_word, snow),
        }
    }

    /// Daylight: a light sky of hue `h`; the land takes the colour word when it can.
    fn day(
        h: f32,
        j: f32,
        hue_word: Option<f32>,
        land_word: Option<f32>,
        snow: bool,
        forest: bool,
    ) -> Palette {
        let sky = if snow {
            [
                hsl(h, 0.35, 0.66),
                hsl(h + 10.0, 0.30, 0.80),
                hsl(h + 25.0, 0.30, 0.92),
            ]
        } else {
            [
                hsl(h, 0.55, 0.52),
                hsl(h + 14.0, 0.52, 0.70),
                hsl(h + 42.0, 0.62, 0.86),
            ]
        };
        let land_h = if let Some(word) = land_word {
            word + 8.0 * j
        } else if forest {
            128.0 + 18.0 * j
        } else {
            h + 150.0 + 40.0 * j
        };
        let (land_far, land_near) = if snow {
            (hsl(212.0, 0.25, 0.82), hsl(205.0, 0.22, 0.97))
        } else {
            (
                mix(hsl(land_h, 0.32, 0.56), sky[2], 0.35),
                hsl(land_h + 10.0, 0.45, 0.27),
            )
        };
        Palette {
            sky,
            orb: hsl(46.0, 1.0, 0.84),
            glow: hsl(h + 40.0, 0.95, 0.88),
            glow_strength: 0.45,
            cloud_hi: hsl(h, 0.3, 0.98),
            cloud_lo: hsl(h + 25.0, 0.25, 0.80),
            cloud_alpha: 0.9,
            land_far,
            land_near,
            haze: sky[2],
            snowcap: hsl(210.0, 0.35, 0.97),
            tree: hsl(if forest { 140.0 } else { land_h + 15.0 }, 0.45, 0.17),
            water_far: mix(sky[2], sky[1], 0.5).scale(0.92),
            water_near: mix(sky[0], hsl(h + 10.0, 0.6, 0.2), 0.5),
            crest: hsl(h + 40.0, 0.5, 0.95),
            building: hsl(land_h + 30.0, 0.2, 0.42),
            window_lit: hsl(45.0, 0.85, 0.75),
            window_dark: hsl(h + 180.0, 0.25, 0.25),
            accent: hsl(hue_word.unwrap_or(4.0 + 20.0 * j), 0.72, 0.48),
            paint: hsl(h, 0.15, 0.95),
            star: Rgb::WHITE,
            flake: hsl(210.0, 0.4, 0.98),
            rim_alpha: 0.25,
        }
    }

    /// Dusk: violet to orange sky, dark land against it.
    fn dusk(h: f32, j: f32, hue_word: Option<f32>, snow: bool, forest: bool) -> Palette {
        let j = j * 0.5 + (h / 360.0 - 0.5);
        let sky = [
            hsl(252.0 + 22.0 * j, 0.45, 0.22),
            hsl(hue_word.unwrap_or(322.0 + 18.0 * j), 0.55, 0.50),
            hsl(26.0 + 12.0 * j, 0.92, 0.64),
        ];
        let (land_far, land_near) = if snow {
            (
                hsl(320.0 + 15.0 * j, 0.25, 0.62),
                hsl(270.0 + 15.0 * j, 0.22, 0.50),
            )
        } else if forest {
            (
                hsl(300.0 + 15.0 * j, 0.22, 0.34),
                hsl(200.0 + 20.0 * j, 0.35, 0.11),
            )
        } else {
            (
                hsl(285.0 + 20.0 * j, 0.28, 0.36),
                hsl(262.0 + 20.0 * j, 0.35, 0.12),
            )
        };
        Palette {
            sky,
            orb: hsl(42.0, 1.0, 0.80),
            glow: hsl(28.0 + 8.0 * j, 1.0, 0.64),
            glow_strength: 0.6,
            cloud_hi: hsl(18.0 + 10.0 * j, 0.85, 0.72),
            cloud_lo: hsl(300.0 + 15.0 * j, 0.35, 0.36),
            cloud_alpha: 0.85,
            land_far,
            land_near,
            haze: mix(sky[1], sky[2], 0.5),
            snowcap: hsl(15.0, 0.6, 0.82),
            tree: hsl(260.0, 0.35, 0.09),
            water_far: mix(sky[2], sky[1], 0.45).scale(0.9),
            water_near: hsl(255.0 + 20.0 * j, 0.4, 0.13),
            crest: hsl(32.0, 0.95, 0.78),
            building: hsl(262.0, 0.3, 0.12),
            window_lit: hsl(40.0, 0.95, 0.66),
            window_dark: hsl(262.0, 0.25, 0.2),
            accent: hsl(hue_word.unwrap_or(6.0), 0.6, 0.35),
            paint: hsl(30.0, 0.4, 0.72),
            star: hsl(40.0, 0.5, 0.9),
            flake: hsl(20.0, 0.5, 0.9),
            rim_alpha: 0.45,
        }
    }

    /// Night: near-black blue sky, lit windows, a pale moon.
    fn night(h: f32, j: f32, hue_word: Option<f32>, snow: bool) -> Palette {
        let hb = 222.0 + 22.0 * (j * 0.5 + (h / 360.0 - 0.5));
        let sky = [
            hsl(hb + 8.0, 0.55, 0.04),
            hsl(hb, 0.5, 0.11),
            hsl(hue_word.unwrap_or(hb - 12.0), 0.45, 0.24),
        ];
        let (land_far, land_near) = if snow {
            (hsl(hb, 0.22, 0.30), hsl(hb + 5.0, 0.25, 0.40))
        } else {
            (hsl(hb + 12.0, 0.28, 0.15), hsl(hb + 18.0, 0.3, 0.05))
        };
        Palette {
            sky,
            orb: hsl(50.0, 0.6, 0.9),
            glow: hsl(hb, 0.55, 0.62),
            glow_strength: 0.3,
            cloud_hi: hsl(hb, 0.22, 0.34),
            cloud_lo: hsl(hb + 10.0, 0.3, 0.12),
            cloud_alpha: 0.55,
            land_far,
            land_near,
            haze: sky[2],
            snowcap: hsl(hb, 0.25, 0.5),
            tree: hsl(hb + 20.0, 0.3, 0.04),
            water_far: hsl(hb, 0.45, 0.17),
            water_near: hsl(hb + 10.0, 0.5, 0.04),
            crest: hsl(hb, 0.35, 0.42),
            building: hsl(hb + 15.0, 0.25, 0.07),
            window_lit: hsl(42.0, 0.95, 0.62),
            window_dark: hsl(hb, 0.2, 0.11),
            accent: hsl(hue_word.unwrap_or(6.0), 0.45, 0.2),
            paint: hsl(hb, 0.15, 0.35),
            star: hsl(hb - 20.0, 0.3, 0.95),
            flake: hsl(hb, 0.3, 0.85),
            rim_alpha: 0.18,
        }
    }
}
