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

use std::f32::consts::TAU;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbaImage};
use sha2::{Digest, Sha256};

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

/// Encode to the requested format ("png" | "jpeg" | "webp"; jpeg honours `compression` 0–100 as quality, default 90; webp is lossless in the image crate, fine). Returns the encoded bytes or an error string.
///
/// Format names are case-insensitive and "jpg" is accepted. Fully opaque images are written as
/// RGB; JPEG composites any transparency over white.
pub fn encode(img: &RgbaImage, format: &str, compression: Option<u8>) -> Result<Vec<u8>, String> {
    let (w, h) = img.dimensions();
    let opaque = img.pixels().all(|p| p.0[3] == 255);
    let mut out = Vec::new();
    let fmt = format.trim().to_ascii_lowercase();
    let result = match fmt.as_str() {
        "png" => {
            let enc = PngEncoder::new(&mut out);
            if opaque {
                enc.write_image(&to_rgb(img), w, h, ExtendedColorType::Rgb8)
            } else {
                enc.write_image(img.as_raw(), w, h, ExtendedColorType::Rgba8)
            }
        }
        "jpeg" | "jpg" => {
            let quality = compression.unwrap_or(DEFAULT_JPEG_QUALITY).clamp(1, 100);
            JpegEncoder::new_with_quality(&mut out, quality).write_image(
                &to_rgb(img),
                w,
                h,
                ExtendedColorType::Rgb8,
            )
        }
        "webp" => {
            let enc = WebPEncoder::new_lossless(&mut out);
            if opaque {
                enc.write_image(&to_rgb(img), w, h, ExtendedColorType::Rgb8)
            } else {
                enc.write_image(img.as_raw(), w, h, ExtendedColorType::Rgba8)
            }
        }
        _ => {
            return Err(format!(
                "unsupported output format {format:?} (expected png, jpeg or webp)"
            ));
        }
    };
    result.map_err(|e| format!("could not encode {w}x{h} image as {fmt}: {e}"))?;
    Ok(out)
}

/// Drop alpha, compositing over white (a no-op for opaque pixels).
fn to_rgb(img: &RgbaImage) -> Vec<u8> {
    let mut out = Vec::with_capacity(img.as_raw().len() / 4 * 3);
    for p in img.pixels() {
        let [r, g, b, a] = p.0;
        if a == 255 {
            out.extend_from_slice(&[r, g, b]);
        } else {
            let a = u32::from(a);
            let over = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
            out.extend_from_slice(&[over(r), over(g), over(b)]);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Prompt analysis
// ---------------------------------------------------------------------------------------------

const NIGHT: u16 = 1;
const DUSK: u16 = 1 << 1;
const SUN: u16 = 1 << 2;
const SEA: u16 = 1 << 3;
const SNOW: u16 = 1 << 4;
const TOWN: u16 = 1 << 5;
const FOREST: u16 = 1 << 6;
const TOWER: u16 = 1 << 7;
const MOUNTAIN: u16 = 1 << 8;

/// Words that nudge the scene. ASCII words match the start of a prompt word ("sunset" hits
/// "sun"), other scripts match anywhere in the prompt.
const KEYWORDS: &[(&str, u16)] = &[
    ("night", NIGHT),
    ("midnight", NIGHT),
    ("moon", NIGHT),
    ("star", NIGHT),
    ("夜", NIGHT),
    ("月", NIGHT),
    ("星", NIGHT),
    ("dusk", DUSK),
    ("sunset", DUSK),
    ("sunrise", DUSK),
    ("dawn", DUSK),
    ("twilight", DUSK),
    ("evening", DUSK),
    ("黄昏", DUSK),
    ("夕", DUSK),
    ("傍晚", DUSK),
    ("sun", SUN),
    ("summer", SUN),
    ("日", SUN),
    ("阳", SUN),
    ("sea", SEA),
    ("ocean", SEA),
    ("beach", SEA),
    ("wave", SEA),
    ("coast", SEA),
    ("harbo", SEA),
    ("lake", SEA),
    ("海", SEA),
    ("洋", SEA),
    ("湖", SEA),
    ("浪", SEA),
    ("港", SEA),
    ("lighthouse", SEA | TOWER),
    ("灯塔", SEA | TOWER),
    ("tower", TOWER),
    ("castle", TOWER),
    ("塔", TOWER),
    ("snow", SNOW),
    ("winter", SNOW),
    ("ice", SNOW),
    ("frost", SNOW),
    ("雪", SNOW),
    ("冬", SNOW),
    ("冰", SNOW),
    ("town", TOWN),
    ("city", TOWN),
    ("village", TOWN),
    ("house", TOWN),
    ("street", TOWN),
    ("镇", TOWN),
    ("城", TOWN),
    ("村", TOWN),
    ("街", TOWN),
    ("forest", FOREST),
    ("tree", FOREST),
    ("wood", FOREST),
    ("pine", FOREST),
    ("林", FOREST),
    ("森", FOREST),
    ("树", FOREST),
    ("mountain", MOUNTAIN),
    ("peak", MOUNTAIN),
    ("alp", MOUNTAIN),
    ("山", MOUNTAIN),
];

/// Colour words and the hue (degrees) they pull the palette towards.
const HUES: &[(&str, f32)] = &[
    ("red", 2.0),
    ("crimson", 350.0),
    ("orange", 28.0),
    ("amber", 40.0),
    ("gold", 46.0),
    ("yellow", 54.0),
    ("green", 125.0),
    ("emerald", 145.0),
    ("teal", 175.0),
    ("cyan", 186.0),
    ("azure", 205.0),
    ("blue", 215.0),
    ("violet", 265.0),
    ("purple", 275.0),
    ("pink", 330.0),
    ("rose", 340.0),
    ("红", 2.0),
    ("橙", 28.0),
    ("金", 46.0),
    ("黄", 54.0),
    ("绿", 125.0),
    ("青", 180.0),
    ("蓝", 215.0),
    ("紫", 275.0),
    ("粉", 330.0),
];

/// Keyword flags and the first colour word found in `prompt`.
fn scan(prompt: &str) -> (u16, Option<f32>) {
    let lower = prompt.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let hit = |kw: &str| {
        if kw.is_ascii() {
            words.iter().any(|w| w.starts_with(kw))
        } else {
            lower.contains(kw)
        }
    };
    let flags = KEYWORDS
        .iter()
        .filter(|(kw, _)| hit(kw))
        .fold(0, |acc, (_, f)| acc | f);
    let hue = HUES.iter().find(|(kw, _)| hit(kw)).map(|&(_, h)| h);
    (flags, hue)
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// SplitMix64: tiny, fast and fixed forever, so pictures never change with a dependency bump.
struct Rng(u64);

impl Rng {
    fn from_hash(hash: &[u8; 32]) -> Rng {
        let mut seed = 0u64;
        for chunk in hash.chunks(8) {
            let mut word = [0u8; 8];
            for (d, s) in word.iter_mut().zip(chunk) {
                *d = *s;
            }
            seed = seed.rotate_left(17) ^ u64::from_le_bytes(word);
        }
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in lo..=hi.
    fn int(&mut self, lo: u32, hi: u32) -> u32 {
        let span = u64::from(hi.saturating_sub(lo)) + 1;
        lo.saturating_add((self.next_u64() % span) as u32)
    }

    fn chance(&mut self, p: f32) -> bool {
        self.unit() < p
    }

    /// An independent stream, so adding draws to one feature never reshuffles another.
    fn fork(&mut self) -> Rng {
        Rng(self.next_u64() ^ 0xD1B5_4A32_D192_ED03)
    }
}

// ---------------------------------------------------------------------------------------------
// Colour
// ---------------------------------------------------------------------------------------------

/// Linear-ish RGB in 0..=1 (we stay in sRGB space; it is a cartoon).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rgb {
    r: f32,
    g: f32,
    b: f32,
}

impl Rgb {
    const WHITE: Rgb = Rgb {
        r: 1.0,
        g: 1.0,
        b: 1.0,
    };

    fn scale(self, k: f32) -> Rgb {
        Rgb {
            r: self.r * k,
            g: self.g * k,
            b: self.b * k,
        }
    }
}

fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    Rgb {
        r: a.r + (b.r - a.r) * t,
        g: a.g + (b.g - a.g) * t,
        b: a.b + (b.b - a.b) * t,
    }
}

fn hsl(h: f32, s: f32, l: f32) -> Rgb {
    let h = h.rem_euclid(360.0) / 60.0;
    let s = s.clamp(0.0, 1.0);
    let l = l.clamp(0.0, 1.0);
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let m = l - c / 2.0;
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    Rgb {
        r: r + m,
        g: g + m,
        b: b + m,
    }
}

fn to_u8(v: f32) -> u8 {
    // `as` saturates (and maps NaN to 0), so this can never wrap.
    (v * 255.0 + 0.5) as u8
}

fn clamp01(v: f32) -> f32 {
    v.clamp(0.0, 1.0)
}

/// Length of the overlap of [a0, a1] and [b0, b1].
fn overlap(a0: f32, a1: f32, b0: f32, b1: f32) -> f32 {
    (a1.min(b1) - a0.max(b0)).max(0.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mood {
    Day,
    Dusk,
    Night,
}

struct Palette {
    sky: [Rgb; 3],
    orb: Rgb,
    glow: Rgb,
    glow_strength: f32,
    cloud_hi: Rgb,
    cloud_lo: Rgb,
    cloud_alpha: f32,
    land_far: Rgb,
    land_near: Rgb,
    haze: Rgb,
    snowcap: Rgb,
    tree: Rgb,
    water_far: Rgb,
    water_near: Rgb,
    crest: Rgb,
    building: Rgb,
    window_lit: Rgb,
    window_dark: Rgb,
    accent: Rgb,
    paint: Rgb,
    star: Rgb,
    flake: Rgb,
    rim_alpha: f32,
}

impl Palette {
    fn new(mood: Mood, flags: u16, hue_word: Option<f32>, fam: &mut Rng, jitter: f32) -> Palette {
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
            Mood::Day => {
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
            Mood::Dusk => {
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
            Mood::Night => {
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
    }
}

// ---------------------------------------------------------------------------------------------
// Scene description (resolution independent)
// ---------------------------------------------------------------------------------------------
//
// Units: `u`/`v` are fractions of the width/height; sizes marked "s" are fractions of the
// shorter side, so round things stay round at any aspect ratio.

/// Sun or moon.
struct Orb {
    u: f32,
    v: f32,
    /// Radius, s units.
    r: f32,
    moon: bool,
    /// Sun: cut with synthwave-style stripes. Moon: crescent.
    stripes: bool,
    /// Crescent direction (±1).
    side: f32,
}

struct Cloud {
    u: f32,
    v: f32,
    /// (dx, dy, r) in s units relative to the centre.
    puffs: Vec<(f32, f32, f32)>,
    /// Flat bottom, s units below the centre.
    base: f32,
    opacity: f32,
}

/// A soft dot (star or snowflake).
struct Dot {
    u: f32,
    v: f32,
    /// Radius, s units.
    r: f32,
    alpha: f32,
}

#[derive(Clone, Copy)]
enum Shape {
    /// Rolling sine hills.
    Hills,
    /// Jagged mountain ridges (sum of triangle waves).
    Ridges,
    /// Low islands sitting on the horizon.
    Islands,
    /// A headland rising from one side into the sea.
    Headland { left: bool, extent: f32 },
}

struct Tree {
    u: f32,
    /// Height, s units.
    h: f32,
}

struct Layer {
    shape: Shape,
    /// v of the profile's lowest line.
    base: f32,
    /// Height of the relief, fraction of the image height.
    amp: f32,
    /// (cycles across the width, phase, weight).
    octaves: [(f32, f32, f32); 3],
    top: Rgb,
    bottom: Rgb,
    /// Snow above this fraction of the relief (mountains).
    snowcap: Option<f32>,
    /// Don't paint below this v (islands stop at the horizon).
    clip: Option<f32>,
    trees: Vec<Tree>,
}

impl Layer {
    /// v of the layer's top edge at horizontal position `u`.
    fn profile(&self, u: f32) -> f32 {
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

struct Building {
    u0: f32,
    u1: f32,
    /// v of the ground it stands on.
    ground: f32,
    /// Height, fraction of the image height.
    h: f32,
    /// Gable roof height relative to the body height (0 = flat roof).
    roof: f32,
    shade: f32,
    cols: u32,
    rows: u32,
    /// One bit per window, row-major.
    lit: u64,
}

struct Tower {
    u: f32,
    ground: f32,
    /// Height, s units.
    h: f32,
    bands: u32,
    /// Beam tilt (dy per dx).
    tilt: f32,
}

struct Water {
    horizon: f32,
    /// (base v, amplitude as fraction of height, f1, p1, f2, p2), far to near.
    bands: Vec<(f32, f32, f32, f32, f32, f32)>,
}

/// Where the town goes in the painting order.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TownSpot {
    Horizon,
    OnLayer(usize),
}

struct Scene {
    mood: Mood,
    pal: Palette,
    horizon: f32,
    orb: Option<Orb>,
    stars: Vec<Dot>,
    clouds: Vec<Cloud>,
    water: Option<Water>,
    layers: Vec<Layer>,
    town: Vec<Building>,
    town_spot: TownSpot,
    tower: Option<(Tower, TownSpot)>,
    flakes: Vec<Dot>,
}

impl Scene {
    fn new(prompt: &str, index: u32) -> Scene {
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

        let mood = if flags & NIGHT != 0 {
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
        };
        // Features not named in the prompt may still appear, decided per prompt (not per variant).
        let named = flags & (SEA | TOWN | FOREST | MOUNTAIN | TOWER) != 0;
        let mut flags = flags;
        if !named {
            for (flag, p) in [(SEA, 0.3), (MOUNTAIN, 0.35), (TOWN, 0.2), (FOREST, 0.25)] {
                if fam.chance(p) {
                    flags |= flag;
                }
            }
        }
        let sea = flags & SEA != 0;
        let snow = flags & SNOW != 0;

        let jitter = rng.range(-8.0, 8.0);
        let pal = Palette::new(mood, flags, hue_word, &mut fam, jitter);

        let mut comp = rng.fork();
        let horizon = if sea {
            comp.range(0.50, 0.62)
        } else {
            comp.range(0.42, 0.58)
        };

        // Sun or moon.
        let mut orb_rng = rng.fork();
        let has_orb = match mood {
            Mood::Day => flags & SUN != 0 || orb_rng.chance(0.7),
            Mood::Dusk => true,
            Mood::Night => orb_rng.chance(0.85),
        };
        let orb = has_orb.then(|| {
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
        });

        // Stars.
        let mut star_rng = rng.fork();
        let (count, max_v, bright) = match mood {
            Mood::Night => (star_rng.int(140, 220), horizon, 1.0),
            Mood::Dusk => (star_rng.int(15, 35), horizon * 0.35, 0.5),
            Mood::Day => (0, 0.0, 0.0),
        };
        let stars = (0..count)
            .map(|_| Dot {
                u: star_rng.unit(),
                v: max_v * star_rng.unit().powf(1.4),
                r: star_rng.range(0.0008, 0.0026),
                alpha: bright * star_rng.range(0.35, 1.0),
            })
            .collect();

        // Clouds.
        let mut cloud_rng = rng.fork();
        let n_clouds = match mood {
            Mood::Day => cloud_rng.int(2, 5),
            Mood::Dusk => cloud_rng.int(2, 4),
            Mood::Night => cloud_rng.int(0, 2),
        } + u32::from(snow);
        let clouds = (0..n_clouds)
            .map(|_| {
                let width = cloud_rng.range(0.18, 0.40);
                let np = cloud_rng.int(4, 6);
                let puffs = (0..np)
                    .map(|p| {
                        let rel = p as f32 / (np.max(2) - 1) as f32 * 2.0 - 1.0;
                        let dx = rel * width * 0.32 + cloud_rng.range(-0.03, 0.03) * width;
                        let dy = -(1.0 - rel * rel) * width * 0.12
                            + cloud_rng.range(-0.03, 0.03) * width;
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
            .collect();

        // Land and sea.
        let mut land_rng = rng.fork();
        let mut layers = Vec::new();
        let mut water = None;
        let mut town_spot = TownSpot::Horizon;
        let mut tower_spot = TownSpot::Horizon;
        let octaves = |r: &mut Rng, f: [(f32, f32); 3], w: [f32; 3]| {
            [
                (r.range(f[0].0, f[0].1), r.unit(), w[0]),
                (r.range(f[1].0, f[1].1), r.unit(), w[1]),
                (r.range(f[2].0, f[2].1), r.unit(), w[2]),
            ]
        };
        if sea {
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
            water = Some(Water { horizon, bands });
            if land_rng.chance(0.55) {
                layers.push(Layer {
                    shape: Shape::Islands,
                    base: horizon,
                    amp: land_rng.range(0.02, 0.05),
                    octaves: octaves(
                        &mut land_rng,
                        [(1.0, 2.5), (3.0, 5.0), (8.0, 12.0)],
                        [1.0, 0.3, 0.1],
                    ),
                    top: mix(pal.land_far, pal.haze, 0.3),
                    bottom: mix(pal.land_far, pal.haze, 0.5),
                    snowcap: None,
                    clip: Some(horizon),
                    trees: Vec::new(),
                });
            }
            if flags & TOWER != 0 || land_rng.chance(0.45) {
                let left = land_rng.chance(0.5);
                let extent = land_rng.range(0.28, 0.45);
                let base = horizon - land_rng.range(0.04, 0.10);
                layers.push(Layer {
                    shape: Shape::Headland { left, extent },
                    base,
                    amp: 0.012,
                    octaves: octaves(
                        &mut land_rng,
                        [(2.0, 4.0), (6.0, 9.0), (14.0, 20.0)],
                        [1.0, 0.5, 0.2],
                    ),
                    top: pal.land_near,
                    bottom: pal.land_near.scale(0.75),
                    snowcap: None,
                    clip: None,
                    trees: Vec::new(),
                });
                tower_spot = TownSpot::OnLayer(layers.len() - 1);
            }
        } else {
            let mountains = flags & MOUNTAIN != 0;
            if mountains {
                layers.push(Layer {
                    shape: Shape::Ridges,
                    base: horizon + 0.03,
                    amp: land_rng.range(0.2, 0.3),
                    octaves: octaves(
                        &mut land_rng,
                        [(1.5, 3.0), (4.0, 7.0), (10.0, 16.0)],
                        [1.0, 0.45, 0.18],
                    ),
                    top: mix(pal.land_far, pal.haze, 0.15),
                    bottom: mix(pal.land_far, pal.haze, 0.55),
                    snowcap: Some(0.5),
                    clip: None,
                    trees: Vec::new(),
                });
            }
            let n = land_rng.int(3, 4);
            for i in 0..n {
                let d = i as f32 / (n - 1) as f32;
                let col = mix(pal.land_far, pal.land_near, d);
                let bottom = if d < 0.5 {
                    mix(col, pal.haze, 0.35)
                } else {
                    col.scale(0.8)
                };
                layers.push(Layer {
                    shape: Shape::Hills,
                    base: horizon + (1.0 - horizon) * (0.08 + 0.6 * d.powf(1.2)),
                    amp: land_rng.range(0.05, 0.1) * (0.7 + 0.8 * d),
                    octaves: octaves(
                        &mut land_rng,
                        [(0.6, 1.6), (2.0, 4.0), (5.0, 9.0)],
                        [1.0, 0.35, 0.12],
                    ),
                    top: col,
                    bottom,
                    snowcap: None,
                    clip: None,
                    trees: Vec::new(),
                });
            }
            let count = layers.len();
            town_spot = TownSpot::OnLayer(count.saturating_sub(2));
            tower_spot = TownSpot::OnLayer(count.saturating_sub(if count >= 4 { 2 } else { 1 }));
        }

        // Trees on the rolling hills (and headland).
        if flags & FOREST != 0 {
            let mut tree_rng = rng.fork();
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

        // Town.
        let mut town = Vec::new();
        if flags & TOWN != 0 {
            let mut town_rng = rng.fork();
            let on_horizon = sea;
            if on_horizon {
                town_spot = TownSpot::Horizon;
            }
            let ground_layer = match town_spot {
                TownSpot::OnLayer(i) => layers.get(i),
                TownSpot::Horizon => None,
            };
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
        }

        // Tower / lighthouse on the crest of its layer.
        let tower = if flags & TOWER != 0 {
            let mut tower_rng = rng.fork();
            let layer = match tower_spot {
                TownSpot::OnLayer(i) => layers.get(i),
                TownSpot::Horizon => None,
            };
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
            Some((
                Tower {
                    u,
                    ground: ground + 0.004,
                    h: tower_rng.range(0.2, 0.28),
                    bands: tower_rng.int(4, 5),
                    tilt: tower_rng.range(-0.06, 0.06),
                },
                tower_spot,
            ))
        } else {
            None
        };

        // Falling snow.
        let mut flake_rng = rng.fork();
        let flakes = if snow {
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
        };

        Scene {
            mood,
            pal,
            horizon,
            orb,
            stars,
            clouds,
            water,
            layers,
            town,
            town_spot,
            tower,
            flakes,
        }
    }

    /// Paint at `width` x `height`; `factor` is how much the result will be scaled up (1 for
    /// the final stage), so sub-pixel details keep their final-size look instead of growing.
    fn paint(&self, width: u32, height: u32, factor: u32) -> RgbaImage {
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

    fn paint_sky(&self, cv: &mut Canvas) {
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

    fn paint_orb(&self, cv: &mut Canvas, orb: &Orb) {
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

    fn paint_cloud(&self, cv: &mut Canvas, cloud: &Cloud) {
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

    fn paint_water(&self, cv: &mut Canvas, water: &Water) {
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

    fn paint_layer(&self, cv: &mut Canvas, layer: &Layer) {
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

    fn paint_tree(&self, cv: &mut Canvas, layer: &Layer, tree: &Tree) {
        let h = tree.h * cv.s;
        let cx = tree.u * cv.wf;
        let ground = layer.profile(tree.u) * cv.hf + h * 0.12;
        let col = self.pal.tree;
        let hw = h * 0.3;
        cv.fill_trap(cx, ground - h * 0.12, ground, h * 0.04, h * 0.04, col, 1.0);
        cv.fill_trap(cx, ground - h * 0.65, ground - h * 0.1, 0.0, hw, col, 1.0);
        cv.fill_trap(cx, ground - h, ground - h * 0.4, 0.0, hw * 0.75, col, 1.0);
    }

    fn paint_town(&self, cv: &mut Canvas) {
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

    fn paint_tower(&self, cv: &mut Canvas, tower: &Tower) {
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

// ---------------------------------------------------------------------------------------------
// Canvas
// ---------------------------------------------------------------------------------------------

/// Pixel range [lo, hi) covering the real interval [lo, hi], clamped to 0..max.
fn span(lo: f32, hi: f32, max: u32) -> (u32, u32) {
    let a = (lo.floor().max(0.0) as u32).min(max);
    let b = (hi.ceil().max(0.0) as u32).min(max);
    (a, b.max(a))
}

struct Canvas {
    w: u32,
    h: u32,
    wf: f32,
    hf: f32,
    /// Shorter side, the unit for round things.
    s: f32,
    /// Smallest dot radius worth drawing, in canvas pixels (0.75 final-size pixels).
    min_dot: f32,
    buf: Vec<u8>,
}

impl Canvas {
    fn new(w: u32, h: u32) -> Canvas {
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
    fn shade(
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
    fn fill_trap(&mut self, cx: f32, y0: f32, y1: f32, hw0: f32, hw1: f32, col: Rgb, alpha: f32) {
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

    fn soft_dot(&mut self, dot: &Dot, col: Rgb) {
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

    fn vignette(&mut self, strength: f32) {
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

    fn into_image(self) -> RgbaImage {
        let (w, h) = (self.w, self.h);
        RgbaImage::from_raw(w, h, self.buf).unwrap_or_else(|| RgbaImage::new(w, h))
    }
}

fn upscale_nearest(src: &RgbaImage, width: u32, height: u32) -> RgbaImage {
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

// ---------------------------------------------------------------------------------------------
// DEMO stamp
// ---------------------------------------------------------------------------------------------

/// 5x7 glyphs for D, E, M, O; bit 4 is the leftmost column.
const GLYPHS: [[u8; 7]; 4] = [
    [
        0b11110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11110,
    ],
    [
        0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111,
    ],
    [
        0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001,
    ],
    [
        0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110,
    ],
];
/// Label size in font cells: four 5-wide glyphs with 1-cell gaps, 7 tall.
const LABEL_COLS: i64 = 4 * 6 - 1;
const LABEL_ROWS: i64 = 7;

/// Is font cell (col, row) of the label inked?
fn label_cell(col: i64, row: i64) -> bool {
    if !(0..LABEL_COLS).contains(&col) || !(0..LABEL_ROWS).contains(&row) {
        return false;
    }
    let (letter, cx) = (col / 6, col % 6);
    if cx == 5 {
        return false;
    }
    GLYPHS
        .get(letter as usize)
        .and_then(|g| g.get(row as usize))
        .is_some_and(|bits| bits & (1 << (4 - cx)) != 0)
}

/// White "DEMO" with a dark outline in the bottom-right corner, scaled to the image.
fn stamp_demo_label(img: &mut RgbaImage) {
    let (w, h) = img.dimensions();
    let cell = i64::from((w.min(h) / 160).max(1));
    let outline = (cell / 2).max(1);
    let margin = cell * 2 + outline;
    let x0 = i64::from(w) - margin - LABEL_COLS * cell;
    let y0 = i64::from(h) - margin - LABEL_ROWS * cell;
    let dark = [18u8, 18, 26];
    for py in (y0 - outline).max(0)..(y0 + LABEL_ROWS * cell + outline).min(i64::from(h)) {
        for px in (x0 - outline).max(0)..(x0 + LABEL_COLS * cell + outline).min(i64::from(w)) {
            let (lx, ly) = (px - x0, py - y0);
            let (col, row) = (lx.div_euclid(cell), ly.div_euclid(cell));
            let ink = label_cell(col, row);
            let near = !ink
                && (-1..=1).any(|dr| {
                    (-1..=1).any(|dc| {
                        let (c, r) = (col + dc, row + dr);
                        if !label_cell(c, r) {
                            return false;
                        }
                        // Distance from this pixel to that cell's box, per axis.
                        let gap_x = (c * cell - lx).max(lx - (c * cell + cell - 1)).max(0);
                        let gap_y = (r * cell - ly).max(ly - (r * cell + cell - 1)).max(0);
                        gap_x.max(gap_y) <= outline
                    })
                });
            if !ink && !near {
                continue;
            }
            let (Ok(x), Ok(y)) = (u32::try_from(px), u32::try_from(py)) else {
                continue;
            };
            if let Some(p) = img.get_pixel_mut_checked(x, y) {
                if ink {
                    p.0 = [255, 255, 255, 255];
                } else {
                    for (c, d) in p.0.iter_mut().zip(dark) {
                        *c = ((u32::from(*c) * 3 + u32::from(d) * 13) / 16) as u8;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_distance(a: &RgbaImage, b: &RgbaImage) -> f64 {
        assert_eq!(a.dimensions(), b.dimensions());
        let total: f64 = a
            .pixels()
            .zip(b.pixels())
            .map(|(p, q)| {
                let d: f64 = (0..3)
                    .map(|i| (f64::from(p.0[i]) - f64::from(q.0[i])).powi(2))
                    .sum();
                d.sqrt()
            })
            .sum();
        total / f64::from(a.width() * a.height())
    }

    fn mean_luma(img: &RgbaImage) -> f64 {
        let total: f64 = img
            .pixels()
            .map(|p| {
                0.299 * f64::from(p.0[0]) + 0.587 * f64::from(p.0[1]) + 0.114 * f64::from(p.0[2])
            })
            .sum();
        total / f64::from(img.width() * img.height())
    }

    #[test]
    fn same_input_same_bytes() {
        for stage in [Stage::Final, Stage::Partial { index: 1, of: 3 }] {
            let a = render("a lighthouse at dusk", 0, 256, 192, stage);
            let b = render("a lighthouse at dusk", 0, 256, 192, stage);
            assert_eq!(a.as_raw(), b.as_raw());
            for fmt in ["png", "jpeg", "webp"] {
                assert_eq!(
                    encode(&a, fmt, None).unwrap(),
                    encode(&b, fmt, None).unwrap()
                );
            }
        }
    }

    #[test]
    fn different_prompts_differ_substantially() {
        let prompts = [
            "a lighthouse at dusk",
            "夜晚的海边小镇",
            "a red fox in snow",
            "a bowl of ramen",
            "portrait of a cat astronaut",
            "quarterly sales dashboard",
        ];
        let imgs: Vec<RgbaImage> = prompts
            .iter()
            .map(|p| render(p, 0, 128, 128, Stage::Final))
            .collect();
        for i in 0..imgs.len() {
            for j in i + 1..imgs.len() {
                let d = mean_distance(&imgs[i], &imgs[j]);
                println!("{:?} vs {:?}: {d:.1}", prompts[i], prompts[j]);
                assert!(
                    d > 25.0,
                    "{:?} vs {:?}: mean distance {d:.1}",
                    prompts[i],
                    prompts[j]
                );
            }
        }
    }

    #[test]
    fn variants_differ_but_stay_related() {
        let a = render("a quiet harbour", 0, 128, 128, Stage::Final);
        let b = render("a quiet harbour", 1, 128, 128, Stage::Final);
        assert!(mean_distance(&a, &b) > 3.0);
        assert_ne!(a.as_raw(), b.as_raw());
    }

    #[test]
    fn formats_round_trip() {
        let img = render("a red fox in snow", 0, 96, 64, Stage::Final);
        for fmt in ["png", "jpeg", "webp", "JPG", " PNG "] {
            let bytes = encode(&img, fmt, None).unwrap();
            let back = image::load_from_memory(&bytes).unwrap();
            assert_eq!((back.width(), back.height()), (96, 64), "{fmt}");
        }
        let png = image::load_from_memory(&encode(&img, "png", None).unwrap()).unwrap();
        assert_eq!(png.to_rgba8().as_raw(), img.as_raw(), "png is lossless");
        let low = encode(&img, "jpeg", Some(5)).unwrap();
        let high = encode(&img, "jpeg", Some(100)).unwrap();
        assert!(low.len() < high.len());
        assert!(encode(&img, "jpeg", Some(0)).is_ok());
        assert!(encode(&img, "gif", None).is_err());
        assert!(encode(&img, "", None).is_err());
    }

    #[test]
    fn transparency_is_kept_where_the_format_allows() {
        let mut img = RgbaImage::new(4, 4);
        img.put_pixel(1, 1, image::Rgba([10, 20, 30, 128]));
        let png = image::load_from_memory(&encode(&img, "png", None).unwrap()).unwrap();
        assert_eq!(png.to_rgba8().get_pixel(1, 1).0, [10, 20, 30, 128]);
        let webp = image::load_from_memory(&encode(&img, "webp", None).unwrap()).unwrap();
        assert_eq!(webp.to_rgba8().get_pixel(1, 1).0[3], 128);
        assert!(encode(&img, "jpeg", Some(80)).is_ok());
    }

    #[test]
    fn partials_are_rougher_and_sharpen() {
        let prompt = "夜晚的海边小镇";
        let fin = render(prompt, 0, 256, 256, Stage::Final);
        let dists: Vec<f64> = (0..3)
            .map(|i| {
                let p = render(prompt, 0, 256, 256, Stage::Partial { index: i, of: 3 });
                assert_eq!(p.dimensions(), (256, 256));
                mean_distance(&p, &fin)
            })
            .collect();
        assert!(dists.iter().all(|&d| d > 0.5), "{dists:?}");
        assert!(dists[0] > dists[2], "{dists:?}");
        // Odd stage numbers must not panic.
        for (index, of) in [(0, 0), (9, 3), (255, 255), (0, 255)] {
            let p = render(prompt, 0, 33, 17, Stage::Partial { index, of });
            assert_eq!(p.dimensions(), (33, 17));
        }
    }

    #[test]
    fn tiny_odd_and_huge_sizes() {
        for (w, h) in [(1, 1), (16, 16), (17, 5), (5, 17), (2, 300), (300, 2)] {
            for stage in [Stage::Final, Stage::Partial { index: 0, of: 4 }] {
                let img = render("a lighthouse at dusk", 3, w, h, stage);
                assert_eq!(img.dimensions(), (w, h));
                for fmt in ["png", "jpeg", "webp"] {
                    let bytes = encode(&img, fmt, Some(50)).unwrap();
                    let back = image::load_from_memory(&bytes).unwrap();
                    assert_eq!((back.width(), back.height()), (w, h));
                }
            }
        }
        assert_eq!(render("x", 0, 0, 0, Stage::Final).dimensions(), (0, 0));
        assert_eq!(render("x", 0, 0, 9, Stage::Final).dimensions(), (0, 9));
        let big = render("a red fox in snow", 0, 3840, 2160, Stage::Final);
        assert_eq!(big.dimensions(), (3840, 2160));
    }

    #[test]
    fn chinese_prompt_reads_keywords() {
        let (flags, _) = scan("夜晚的海边小镇");
        assert_eq!(flags & (NIGHT | SEA | TOWN), NIGHT | SEA | TOWN);
        let night = render("夜晚的海边小镇", 0, 128, 128, Stage::Final);
        let day = render("a sunny meadow", 0, 128, 128, Stage::Final);
        assert!(mean_luma(&night) < 60.0, "{}", mean_luma(&night));
        assert!(mean_luma(&night) + 40.0 < mean_luma(&day));
    }

    #[test]
    fn keyword_matching() {
        assert_eq!(
            scan("A Lighthouse at DUSK").0 & (SEA | TOWER | DUSK),
            SEA | TOWER | DUSK
        );
        assert_eq!(scan("bored").1, None, "colour words match word starts only");
        assert_eq!(scan("a red fox in snow"), (SNOW, Some(2.0)));
        assert_eq!(scan("").0, 0);
    }

    #[test]
    fn demo_label_is_stamped() {
        let img = render("plain", 0, 512, 512, Stage::Final);
        let corner = |x0: u32, y0: u32| {
            let mut white = 0;
            let mut dark = 0;
            for y in y0..y0 + 60 {
                for x in x0..x0 + 100 {
                    match img.get_pixel(x, y).0 {
                        [255, 255, 255, _] => white += 1,
                        [r, g, b, _] if u32::from(r) + u32::from(g) + u32::from(b) < 150 => {
                            dark += 1
                        }
                        _ => {}
                    }
                }
            }
            (white, dark)
        };
        let (white, dark) = corner(412, 452);
        assert!(white > 100 && dark > 100, "white {white}, dark {dark}");
        assert!(label_cell(0, 0));
        assert!(!label_cell(5, 0));
        assert!(!label_cell(-1, 0));
        assert!(!label_cell(LABEL_COLS, 0));
    }

    /// Prompts chosen to reach every part of the scene: day, dusk and night; sun, striped sun,
    /// moon and crescent; sea bands, islands and headlands; ridges with snowcaps; hills with
    /// trees; towns on a hill and on the horizon; towers on hills and headlands; falling snow.
    const IDENTITY_PROMPTS: [&str; 17] = [
        "a lighthouse at dusk",
        "夜晚的海边小镇",
        "a red fox in snow",
        "a bowl of ramen",
        "portrait of a cat astronaut",
        "quarterly sales dashboard",
        "a village in the pine forest at midnight",
        "green mountain peaks with a castle",
        "a quiet harbour",
        "sunny summer meadow",
        "winter town by the lake at sunset",
        "an old stone tower in the woods",
        "紫色的山和塔",
        "a cabin",
        "moonlit coast with a lighthouse and houses",
        "pine trees on a rocky coast",
        "a forest below the mountains",
    ];

    /// sha256 of the pixels of every case in [`identity_digest`], per prompt, recorded from the
    /// single-file demo_art.rs before it was split up. A change here changes every user's demo
    /// pictures: only update these on purpose.
    const IDENTITY_SHA256: [&str; 17] = [
        "a538ccf2e7d219300d4470090dfa79d7faa6e83059eb01ab8944266d19b38a9f",
        "0789c4b0c0f173ac43e4078b83a5457ceefd9507f32de9b1e3612547db02c733",
        "4b5506d6576e8fc756834f37b4f30f5624b143c38a6d4e54b88643f390bc2316",
        "de71ec19a44b0dfe544640c31240557028c03d9f4515e85f11a5f8a5990ce8b5",
        "2ebe9637544fa73eec980d551a99cd3abce9b6bad2010da11995acd2fdc8a36a",
        "11075fd2106f5b3543805d7c3494395facf6fafdd23169c03067b93d2ae4f279",
        "f78de7e306a8601922d2991f6ae7ad9b74c5f4197da3c6fa811209f338009970",
        "d3a294cc40070b06939d46de79d02bfb3e9ea7b650a378ea0bb60055c1421c7a",
        "3254c188933ad32ec4260708a3119e4d1e28063e4130eba909a2979f551c9378",
        "db6a5ae4a67cef95738d91647dd7f80cfb6b78615a52a49a870f207446a93d03",
        "d6a3c82daf7ff4b002d14cbdcccb7c19cfbbf6437cd22061c651af5d7d473084",
        "4d74dc62ca6b5110f7551f31342a41d3eccc6247cfbd0d91481f96009d817f5a",
        "3f6600efa52b713ceee89e45ff6e7ec83eee3936364a9b23e190a5d3a6f4e161",
        "eca4da3966d2da82b13dfbc4bb552d286a4ac5c24a1e3e289f782faabbb65157",
        "deff92174a529f1575c491be52d5a00eab57df6661464995490791a0ffe19998",
        "36a8705b28aa50604c1e406aac21d1b40558d965fb4aa0f38508fc2d345490a3",
        "d8cc6ee9b5b4b694ea45f7fc69176b1e4619fca81e2d9649f78ee0f8f108080d",
    ];

    /// One digest over several variants, sizes (odd, tall, wide, large enough for a 2-pixel
    /// stamp cell) and stages of `prompt`.
    fn identity_digest(prompt: &str) -> String {
        let cases = [
            (0, 128, 96, Stage::Final),
            (1, 96, 128, Stage::Final),
            (0, 128, 96, Stage::Partial { index: 1, of: 3 }),
            (1, 33, 17, Stage::Partial { index: 0, of: 4 }),
            (2, 400, 320, Stage::Final),
            (3, 7, 300, Stage::Partial { index: 2, of: 2 }),
        ];
        let mut hasher = Sha256::new();
        for (index, w, h, stage) in cases {
            let img = render(prompt, index, w, h, stage);
            hasher.update(w.to_le_bytes());
            hasher.update(h.to_le_bytes());
            hasher.update(img.as_raw());
        }
        hex::encode(hasher.finalize())
    }

    #[test]
    fn pictures_are_byte_identical_to_the_recorded_ones() {
        let actual: Vec<String> = IDENTITY_PROMPTS
            .iter()
            .map(|p| identity_digest(p))
            .collect();
        let wrong: Vec<String> = IDENTITY_PROMPTS
            .iter()
            .zip(&actual)
            .zip(IDENTITY_SHA256)
            .filter(|((_, got), want)| got.as_str() != *want)
            .map(|((prompt, got), want)| format!("{prompt:?}: got {got}, recorded {want}"))
            .collect();
        assert!(
            wrong.is_empty(),
            "demo pictures changed:\n{}",
            wrong.join("\n")
        );
    }
}
