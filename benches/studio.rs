//! The studio's own costs, without a terminal: drawing one full frame at 200×60 with 100 jobs
//! queued and 100,000 history entries, and a preview (decode + resize + encode of a 1024×1024
//! PNG into a 60×30-cell pane).
//!
//! cargo bench --bench studio

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::{TimeZone, Utc};
use easel::api::{GenerationParams, ProviderRules};
use easel::catalog::Catalog;
use easel::queue::JobEvent;
use easel::store::{GenerationRecord, Id, SavedImage, Status};
use easel::studio::keymap::Keymap;
use easel::studio::model::{Model, ProviderInfo};
use easel::studio::msg::Msg;
use easel::studio::preview::Renderer;
use easel::studio::update::update;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::sync::Arc;
use std::time::Instant;

fn record(i: u128, status: Status) -> GenerationRecord {
    let params = GenerationParams {
        prompt: format!(
            "{i} 一只猫在月光下 a lighthouse at dusk, watercolor, soft light, wide shot"
        ),
        ..Default::default()
    };
    let created = Utc.timestamp_opt(1_764_000_000 + i as i64, 0).unwrap();
    let mut r = GenerationRecord::queued(
        Id::from_uuid(uuid::Uuid::from_u128(i + 1)),
        params,
        "demo",
        true,
        created,
    );
    r.status = status;
    r.outputs = vec![SavedImage {
        path: format!("/nonexistent/{i}.png").into(),
        format: "png".into(),
        width: 1024,
        height: 1024,
        bytes: 1,
        sha256: String::new(),
    }];
    r
}

fn big_model() -> Model {
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
    for i in 0..100u128 {
        let status = if i < 2 {
            Status::Running
        } else {
            Status::Queued
        };
        update(
            &mut m,
            Msg::Job(JobEvent::Queued(Box::new(record(1_000_000 + i, status)))),
        );
    }
    // A history of 100,000 entries: the model only ever holds the pages around the selection.
    let generation = m.history.generation;
    for page in 0..3 {
        let records = (0..100)
            .map(|k| record((page * 100 + k) as u128, Status::Succeeded))
            .collect();
        update(
            &mut m,
            Msg::HistoryPage {
                generation,
                offset: page * 100,
                total: 100_000,
                records,
                anchor: None,
            },
        );
    }
    m.editor
        .insert_str("一只猫在月光下 a cat under the moon, ink wash, 留白");
    m
}

fn main() {
    let rounds = if common::quick() { 200 } else { 2000 };
    let mut m = big_model();
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    // Warm up, then time whole frames (view + buffer diff against the previous frame).
    for _ in 0..20 {
        terminal.draw(|f| easel::studio::view::view(&m, f)).unwrap();
    }
    let mut frame_ms = Vec::with_capacity(rounds);
    for i in 0..rounds {
        // Change something each frame, as a key press would, so the diff has work to do.
        let key = if i % 2 == 0 {
            crossterm::event::KeyCode::Down
        } else {
            crossterm::event::KeyCode::Up
        };
        m.focus = easel::studio::model::Pane::History;
        update(
            &mut m,
            Msg::Key(crossterm::event::KeyEvent::new(
                key,
                crossterm::event::KeyModifiers::NONE,
            )),
        );
        let t = Instant::now();
        terminal.draw(|f| easel::studio::view::view(&m, f)).unwrap();
        frame_ms.push(common::ms(t.elapsed()));
    }
    common::report(
        "studio: full frame at 200×60, 100 jobs, 100,000 history entries",
        "ms",
        common::median(frame_ms),
        None,
        "≤ 2 ms",
        rounds,
    );

    // Preview: a 1024×1024 PNG (a real demo picture) into a 60×30-cell pane.
    let img = easel::backend::demo_art::render(
        "a lighthouse at dusk",
        0,
        1024,
        1024,
        easel::backend::demo_art::Stage::Final,
    );
    let png = easel::backend::demo_art::encode(&img, "png", None).unwrap();
    let renderer = Renderer::halfblocks();
    let mut preview_ms = Vec::new();
    for _ in 0..(rounds / 20).max(10) {
        let t = Instant::now();
        let r = renderer.render(&png, 60, 30).unwrap();
        preview_ms.push(common::ms(t.elapsed()));
        assert!(r.picture.size().width <= 60);
    }
    let n = preview_ms.len();
    common::report(
        "studio: preview of a 1024×1024 PNG into 60×30 cells (decode + resize + encode, half-blocks)",
        "ms",
        common::median(preview_ms),
        None,
        "≤ 20 ms",
        n,
    );
}
