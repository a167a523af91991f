//! Tests: determinism, formats, stages, odd sizes, keywords, the stamp, and byte identity.

use image::RgbaImage;
use sha2::{Digest, Sha256};

use super::keywords::{DUSK, NIGHT, SEA, SNOW, TOWER, TOWN, scan};
use super::stamp::{LABEL_COLS, label_cell};
use super::{Stage, encode, render};

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
        .map(|p| 0.299 * f64::from(p.0[0]) + 0.587 * f64::from(p.0[1]) + 0.114 * f64::from(p.0[2]))
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
                    [r, g, b, _] if u32::from(r) + u32::from(g) + u32::from(b) < 150 => dark += 1,
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
