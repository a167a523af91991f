//! The gallery (issue 13), without a terminal: making thumbnails (1024² PNG → the cache), the
//! cache's size, the first grid frame at 200×60 over 100,000 records with the thumbnails cached
//! (each visible cell read from the cache, rendered, then one frame drawn), a page of scrolling,
//! and the memory after 1,000 cells were drawn.
//!
//! cargo bench --bench gallery

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::{TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use easel::api::{GenerationParams, ProviderRules};
use easel::catalog::Catalog;
use easel::store::{GenerationRecord, Id, SavedImage, Status};
use easel::studio::keymap::Keymap;
use easel::studio::model::{Model, Pane, ProviderInfo};
use easel::studio::msg::Msg;
use easel::studio::preview::Renderer;
use easel::studio::update::update;
use easel::thumbs::Thumbs;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use sha2::Digest;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

const TOTAL: usize = 100_000;

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn record(i: usize, files: &[(PathBuf, String)]) -> GenerationRecord {
    let params = GenerationParams {
        prompt: format!("{i} 一只猫在月光下 a lighthouse at dusk, watercolor"),
        ..Default::default()
    };
    let created = Utc.timestamp_opt(1_764_000_000 + i as i64, 0).unwrap();
    let mut r = GenerationRecord::queued(
        Id::from_uuid(uuid::Uuid::from_u128(i as u128 + 1)),
        params,
        "demo",
        true,
        created,
    );
    r.status = Status::Succeeded;
    let (path, sha) = &files[i % files.len()];
    r.outputs = vec![SavedImage {
        path: path.clone(),
        format: "png".into(),
        width: 1024,
        height: 1024,
        bytes: 1,
        sha256: sha.clone(),
    }];
    r
}

fn gallery_model(files: &[(PathBuf, String)]) -> Model {
    let info = ProviderInfo {
        name: "demo".into(),
        demo: true,
        openai: false,
        rules: ProviderRules::default(),
    };
    let now = Utc.timestamp_opt(1_764_100_000, 0).unwrap();
    let mut m = Model::new(
        Keymap::default(),
        Arc::new(Catalog::builtin()),
        info,
        GenerationParams::default(),
        now,
    );
    update(&mut m, Msg::Resize(200, 60));
    let generation = m.history.generation;
    for page in 0..3 {
        let records = (0..100).map(|k| record(page * 100 + k, files)).collect();
        update(
            &mut m,
            Msg::HistoryPage {
                generation,
                offset: page * 100,
                total: TOTAL,
                records,
                anchor: None,
            },
        );
    }
    m.focus = Pane::History;
    update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Char('v'), KeyModifiers::NONE)),
    );
    assert!(m.gallery_shown());
    m
}

/// Render every visible cell from the cache into the model, as the preview worker would.
fn fill(m: &mut Model, thumbs: &Thumbs, renderer: &Renderer) -> usize {
    let cells = easel::studio::gallery::cells(m);
    let mut n = 0;
    for cell in cells {
        let Some(key) = cell.key else { continue };
        if m.preview.get(&key).is_some() {
            continue;
        }
        let easel::studio::msg::PreviewSource::Thumb { path, sha256 } = &key.source else {
            continue;
        };
        let img = thumbs.get(path, sha256, 256).unwrap();
        let r = renderer
            .render_decoded(image::DynamicImage::ImageRgba8(img), key.cols, key.rows)
            .unwrap();
        update(m, Msg::PreviewReady(key, Box::new(r)));
        n += 1;
    }
    n
}

fn main() {
    let quick = common::quick();
    let pictures = if quick { 12 } else { 40 };
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for i in 0..pictures {
        let img = easel::backend::demo_art::render(
            &format!("a lighthouse at dusk {i}"),
            i as u32,
            1024,
            1024,
            easel::backend::demo_art::Stage::Final,
        );
        let png = easel::backend::demo_art::encode(&img, "png", None).unwrap();
        let path = dir.path().join(format!("{i}.png"));
        std::fs::write(&path, &png).unwrap();
        files.push((path, hex::encode(sha2::Sha256::digest(&png))));
    }

    // Making thumbnails: decode a 1024² PNG, shrink to 256, encode, write (cold cache).
    let thumbs = Thumbs::new(dir.path().join("thumbs"), 1 << 30);
    let mut make_ms = Vec::new();
    for (path, sha) in &files {
        let t = Instant::now();
        thumbs.get(path, sha, 256).unwrap();
        make_ms.push(common::ms(t.elapsed()));
    }
    let per_picture = common::median(make_ms.clone());
    common::report(
        "gallery: one thumbnail made (1024² PNG → 256 px, written to the cache)",
        "ms",
        per_picture,
        None,
        &format!(
            "(made once per picture: {:.0} a second on one core)",
            1000.0 / per_picture
        ),
        make_ms.len(),
    );
    let per_thousand = thumbs.size() as f64 / pictures as f64 * 1000.0 / (1024.0 * 1024.0);
    common::report(
        "gallery: thumbnail cache size per 1,000 pictures",
        "MB",
        per_thousand,
        None,
        "(256 MB cache by default: [ui] thumb_cache_mb)",
        pictures,
    );

    // First grid frame with the thumbnails cached: every visible cell read from the cache and
    // rendered (half-blocks), then one frame drawn.
    let renderer = Renderer::halfblocks();
    let rounds = if quick { 5 } else { 15 };
    let mut first_ms = Vec::new();
    let mut cells = 0;
    for _ in 0..rounds {
        let mut m = gallery_model(&files);
        let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
        let t = Instant::now();
        cells = fill(&mut m, &thumbs, &renderer);
        terminal.draw(|f| easel::studio::view::view(&m, f)).unwrap();
        first_ms.push(common::ms(t.elapsed()));
    }
    common::report(
        &format!(
            "gallery: first grid frame at 200×60 ({cells} cells) over {TOTAL} records, thumbnails cached"
        ),
        "ms",
        common::median(first_ms),
        None,
        "≤ 150 ms",
        rounds,
    );

    // A page of scrolling: the key and the frame drawn (new cells as placeholders until their
    // renders arrive, one at a time, each its own message).
    let mut m = gallery_model(&files);
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    fill(&mut m, &thumbs, &renderer);
    terminal.draw(|f| easel::studio::view::view(&m, f)).unwrap();
    let mut page_ms = Vec::new();
    for i in 0..(if quick { 20 } else { 100 }) {
        let key = if i % 2 == 0 {
            KeyCode::PageDown
        } else {
            KeyCode::PageUp
        };
        let t = Instant::now();
        update(&mut m, Msg::Key(KeyEvent::new(key, KeyModifiers::NONE)));
        terminal.draw(|f| easel::studio::view::view(&m, f)).unwrap();
        page_ms.push(common::ms(t.elapsed()));
        fill(&mut m, &thumbs, &renderer);
    }
    let n = page_ms.len();
    common::report(
        "gallery: a page of scrolling (key + frame drawn) at 200×60",
        "ms",
        common::median(page_ms),
        None,
        "≤ 16 ms",
        n,
    );

    // Memory after 1,000 cells were drawn (the cells' cache keeps the last 64).
    let mut m = gallery_model(&files);
    let mut drawn = 0;
    while drawn < 1000 {
        drawn += fill(&mut m, &thumbs, &renderer).max(1);
        update(
            &mut m,
            Msg::Key(KeyEvent::new(KeyCode::PageDown, KeyModifiers::NONE)),
        );
        // Pages past the loaded ones: give the model the records it asks for.
        let generation = m.history.generation;
        let first = m.history.scroll / 100 * 100;
        if !m.history.rows.contains_key(&first) {
            let records = (0..100).map(|k| record(first + k, &files)).collect();
            update(
                &mut m,
                Msg::HistoryPage {
                    generation,
                    offset: first,
                    total: TOTAL,
                    records,
                    anchor: None,
                },
            );
        }
    }
    common::report(
        "gallery: resident memory after drawing 1,000 cells (the benchmark process)",
        "MB",
        rss_mb(),
        None,
        "≤ 150 MB",
        1,
    );
}
