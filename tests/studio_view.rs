#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Whole screens drawn into ratatui's `TestBackend`: snapshots at three sizes, no panic at any
//! size, nothing unsafe reaching the buffer, and 256-colour mapping.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use easel::api::{GenerationParams, ProviderRules, Usage};
use easel::catalog::Catalog;
use easel::queue::JobEvent;
use easel::store::{GenerationRecord, Id, RecordedError, SavedImage, Status};
use easel::studio::keymap::Keymap;
use easel::studio::model::{Confirm, Graphics, Model, Overlay, Pane, ProviderInfo};
use easel::studio::msg::Msg;
use easel::studio::preview::Renderer;
use easel::studio::update::{preview_key, update};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use std::path::PathBuf;
use std::sync::{Arc, Once, OnceLock};

// ---------------------------------------------------------------------------------------------
// Fixtures

/// History shows local times: pin the zone so snapshots read the same everywhere.
fn utc() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: set once, before any test of this binary reads the environment (every test
        // calls this first, and chrono reads TZ through std's locked environment access).
        unsafe { std::env::set_var("TZ", "UTC") };
    });
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 14, 9, 26, 53).unwrap()
}

fn id(n: u128) -> Id {
    Id::from_uuid(uuid::Uuid::from_u128(n))
}

fn model() -> Model {
    utc();
    let provider = ProviderInfo {
        name: "demo".into(),
        demo: true,
        openai: false,
        rules: ProviderRules::default(),
    };
    let mut m = Model::new(
        Keymap::default(),
        Arc::new(Catalog::builtin()),
        provider,
        GenerationParams::default(),
        t0(),
    );
    m.data_dir = PathBuf::from("/data/easel");
    update(&mut m, Msg::Resize(80, 24));
    m
}

fn image(path: &str) -> SavedImage {
    SavedImage {
        path: PathBuf::from(path),
        format: "png".into(),
        width: 1024,
        height: 1024,
        bytes: 1_234_567,
        sha256: "ab".repeat(32),
    }
}

/// A record numbered `n`, created `n` minutes before t0.
fn rec(n: u128, prompt: &str, status: Status) -> GenerationRecord {
    let params = GenerationParams {
        prompt: prompt.into(),
        size: Some("1024x1024".into()),
        ..GenerationParams::default()
    };
    let created = t0() - Duration::minutes(n as i64 * 7);
    let mut r = GenerationRecord::queued(id(n), params, "demo", true, created);
    r.status = status;
    if status != Status::Queued {
        r.started = Some(created + Duration::seconds(1));
        r.attempts = 1;
    }
    match status {
        Status::Succeeded => {
            r.finished = Some(created + Duration::milliseconds(9_400));
            r.outputs = vec![image(&format!("images/2025/03/14/{n:04}.png"))];
        }
        Status::Failed => {
            r.finished = Some(created + Duration::seconds(3));
            r.error = Some(RecordedError {
                kind: "policy".into(),
                message: "rejected by the safety system (moderation_blocked)".into(),
                code: Some("moderation_blocked".into()),
                status: Some(400),
                request_id: Some("req_123".into()),
                hint: Some("rephrase the prompt".into()),
            });
        }
        _ => {}
    }
    r
}

fn page(m: &mut Model, total: usize, records: Vec<GenerationRecord>) {
    let generation = m.history.generation;
    update(
        m,
        Msg::HistoryPage {
            generation,
            offset: 0,
            total,
            records,
            anchor: None,
        },
    );
}

fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn type_text(m: &mut Model, text: &str) {
    for c in text.chars() {
        update(m, key(KeyCode::Char(c)));
    }
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let inside = (x as i64 - w as i64 / 2).pow(2) + (y as i64 - h as i64 / 2).pow(2)
            < (w as i64 / 3).pow(2);
        if inside {
            image::Rgb([240, 180, 40])
        } else {
            image::Rgb([(x * 255 / w) as u8, 40, (y * 255 / h) as u8])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// Resize the model and, if the preview shows something, render it in half-blocks for exactly
/// the key `update` would ask for.
fn resize(m: &mut Model, w: u16, h: u16) {
    update(m, Msg::Resize(w, h));
    static PICTURE: OnceLock<Vec<u8>> = OnceLock::new();
    if let Some(k) = preview_key(m)
        && m.preview.get(&k).is_none()
    {
        let r = Renderer::halfblocks()
            .render(PICTURE.get_or_init(|| png(480, 320)), k.cols, k.rows)
            .unwrap();
        update(m, Msg::PreviewReady(k, Box::new(r)));
    }
}

fn draw(m: &Model, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| easel::studio::view::view(m, f)).unwrap();
    terminal
}

/// The screen as text, as a terminal shows it: a cell hidden by a wide character before it is
/// left out.
fn text_of(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut hidden = 0;
        for x in 0..area.width {
            let sym = buf[(x, y)].symbol();
            if hidden == 0 {
                out.push_str(sym);
            }
            hidden = hidden
                .max(unicode_width::UnicodeWidthStr::width(sym))
                .saturating_sub(1);
        }
        out.push('\n');
    }
    out
}

const SIZES: [(u16, u16); 3] = [(80, 24), (120, 40), (200, 60)];

// ---------------------------------------------------------------------------------------------
// Scenes

fn empty_studio() -> Model {
    let mut m = model();
    page(&mut m, 0, vec![]);
    m
}

fn history_rows() -> Vec<GenerationRecord> {
    let mut rows = vec![
        rec(
            1,
            "夜晚的海边小镇，灯火通明，赛博朋克风格",
            Status::Succeeded,
        ),
        rec(
            2,
            "a watercolour fox in the snow, soft light",
            Status::Succeeded,
        ),
        rec(3, "an isometric city made of paper", Status::Failed),
        rec(
            4,
            "the same lighthouse, at dawn this time, with gulls",
            Status::Succeeded,
        ),
        rec(5, "a cancelled one", Status::Cancelled),
        rec(6, "an interrupted one", Status::Interrupted),
    ];
    rows[1].starred = true;
    rows
}

fn chinese_prompt() -> Model {
    let mut m = model();
    page(&mut m, 6, history_rows());
    type_text(&mut m, "一只在雪地里的水彩狐狸，柔和的晨光");
    m
}

fn failed_job() -> Model {
    let mut m = model();
    let mut running = rec(7, "a robot painting a self-portrait", Status::Running);
    running.started = Some(t0() - Duration::seconds(12));
    update(&mut m, Msg::Job(JobEvent::Started(Box::new(running))));
    let mut waiting = rec(
        8,
        "第二个任务：雪山上的日出，广角镜头，清晨的薄雾",
        Status::Queued,
    );
    waiting.params.n = 2;
    update(&mut m, Msg::Job(JobEvent::Queued(Box::new(waiting))));
    update(
        &mut m,
        Msg::Job(JobEvent::Started(Box::new(rec(
            3,
            "an isometric city made of paper",
            Status::Running,
        )))),
    );
    update(
        &mut m,
        Msg::Job(JobEvent::Failed(Box::new(rec(
            3,
            "an isometric city made of paper",
            Status::Failed,
        )))),
    );
    page(&mut m, 6, history_rows());
    m.focus = Pane::History;
    // The failed row is selected: the preview shows why.
    update(&mut m, key(KeyCode::Char('j')));
    update(&mut m, key(KeyCode::Char('j')));
    assert_eq!(
        m.history.selected_record().map(|r| r.status),
        Some(Status::Failed)
    );
    m
}

/// A job of a run of four (issue 14).
fn run_job(n: u128, index: u32, status: Status) -> GenerationRecord {
    let values = ["red", "blue", "green", "gold"];
    let v = values[index as usize - 1];
    let mut r = rec(n, &format!("a {v} fox in the snow"), status);
    r.run = Some(easel::store::RunInfo {
        id: id(900),
        index,
        of: 4,
        values: easel::runs::JobValues {
            prompt_index: 1,
            template: "a {red|blue|green|gold} fox in the snow".into(),
            combination: u64::from(index - 1),
            alternatives: vec![easel::runs::AltValue {
                column: 3,
                value: v.into(),
            }],
            wildcards: vec![],
            axes: vec![],
            repeat: 1,
        },
    });
    r
}

/// A run in the queue under its header (one done, one running, two waiting), a single job
/// after it, and a run being typed in the editor with what it expands to.
fn run_in_queue() -> Model {
    let mut m = model();
    for k in 1..=4 {
        update(
            &mut m,
            Msg::Job(JobEvent::Queued(Box::new(run_job(
                20 + k,
                k as u32,
                Status::Queued,
            )))),
        );
    }
    update(
        &mut m,
        Msg::Job(JobEvent::Queued(Box::new(rec(
            30,
            "a lighthouse at dusk",
            Status::Queued,
        )))),
    );
    for (n, k, status) in [
        (21, 1, Status::Running),
        (21, 1, Status::Succeeded),
        (22, 2, Status::Running),
    ] {
        let mut r = run_job(n, k, status);
        r.started = Some(t0() - Duration::seconds(4));
        let ev = match status {
            Status::Running => JobEvent::Started(Box::new(r)),
            _ => JobEvent::Succeeded(Box::new(r)),
        };
        update(&mut m, Msg::Job(ev));
    }
    page(&mut m, 6, history_rows());
    type_text(&mut m, "a {cat|dog|owl} at {dawn|dusk}");
    m
}

fn help_overlay() -> Model {
    let mut m = chinese_prompt();
    m.focus = Pane::History;
    update(&mut m, key(KeyCode::Char('?')));
    assert!(matches!(m.overlay, Some(Overlay::Help)));
    m
}

fn details_overlay() -> Model {
    let mut m = model();
    let mut r = rec(
        1,
        "夜晚的海边小镇，灯火通明，赛博朋克风格\nsecond line of the prompt",
        Status::Succeeded,
    );
    r.revised_prompt =
        Some("A small seaside town at night, brightly lit, in a cyberpunk style.".into());
    r.usage = Some(Usage {
        input_tokens: Some(52),
        output_tokens: Some(4160),
        ..Usage::default()
    });
    r.cost_usd = Some(0.0418);
    r.demo = false;
    r.request_id = Some("req_0123456789abcdef".into());
    r.params.quality = Some("high".into());
    r.outputs.push(image("images/2025/03/14/0001-2.png"));
    r.params.n = 2;
    page(&mut m, 1, vec![r]);
    m.focus = Pane::History;
    update(&mut m, key(KeyCode::Enter));
    assert!(matches!(m.overlay, Some(Overlay::Details(_))));
    m
}

fn delete_confirmation() -> Model {
    let mut m = model();
    let mut r = rec(
        1,
        "夜晚的海边小镇，灯火通明，赛博朋克风格, a long prompt that goes on and on about neon signs, rain, reflections on wet streets and a lone cat",
        Status::Succeeded,
    );
    r.outputs.push(image("images/2025/03/14/0001-2.png"));
    page(&mut m, 1, vec![r]);
    m.focus = Pane::History;
    update(&mut m, key(KeyCode::Char('d')));
    assert!(matches!(
        m.overlay,
        Some(Overlay::Confirm(Confirm::Delete(_)))
    ));
    m
}

/// Two records marked and compared side by side: captions, the difference line, the keys.
fn compare_screen() -> Model {
    let mut m = model();
    let mut a = rec(
        1,
        "a watercolour fox in the snow, soft light",
        Status::Succeeded,
    );
    a.params.size = Some("1024x1024".into());
    let mut b = rec(
        2,
        "a watercolour fox in the snow at night",
        Status::Succeeded,
    );
    b.params.size = Some("1536x1024".into());
    b.rating = 4;
    page(&mut m, 2, vec![a, b]);
    m.focus = Pane::History;
    update(&mut m, key(KeyCode::Char('m')));
    update(&mut m, key(KeyCode::Char('j')));
    update(&mut m, key(KeyCode::Char('m')));
    update(&mut m, key(KeyCode::Char('c')));
    assert!(m.compare.is_some());
    m
}

/// The gallery before its thumbnails arrive: cells with captions and placeholders, the
/// selected record under the grid.
fn gallery_screen() -> Model {
    let mut m = model();
    let mut rows = history_rows();
    rows[0].rating = 5;
    page(&mut m, 6, rows);
    m.focus = Pane::History;
    update(&mut m, key(KeyCode::Char('v')));
    update(&mut m, key(KeyCode::Char('l')));
    assert!(m.gallery_shown());
    m
}

/// The lineage view (issue 12) in text (no graphics): the record's parents above it (one
/// deleted, one with a parent of its own), the record, what was made from it below.
fn lineage_screen() -> Model {
    use easel::store::record::ParentRole::*;
    use easel::studio::lineage::{Node, Tree};
    let mut m = model();
    m.graphics = Graphics::None;
    let fam = |k: u128| id((0xa000_0000 + k) << 24);
    let mut r = rec(1, "a watercolour fox in the snow", Status::Succeeded);
    r.id = fam(1);
    page(&mut m, 1, vec![r]);
    m.focus = Pane::History;
    update(&mut m, key(KeyCode::Char('L')));
    let node = |prompt: &str, minutes: i64| Node {
        prompt: prompt.into(),
        created: t0() - Duration::minutes(minutes),
        status: Status::Succeeded,
        image: None,
    };
    let mut t = Tree {
        focus: Some(fam(1)),
        ..Tree::default()
    };
    for (k, prompt, minutes) in [
        (1, "a watercolour fox in the snow", 30),
        (3, "a fox, pencil sketch", 50),
        (4, "a fox", 60),
        (5, "the same fox at night", 20),
        (6, "at night, with the moon \u{1b}[31mred", 10),
        (7, "the same fox at dawn", 15),
    ] {
        t.nodes.insert(fam(k), node(prompt, minutes));
    }
    t.parents
        .insert(fam(1), vec![(fam(2), Edited), (fam(3), Reference)]);
    t.parents.insert(fam(3), vec![(fam(4), RerunOf)]);
    t.children
        .insert(fam(1), vec![(fam(5), Edited), (fam(7), VariationOf)]);
    t.children.insert(fam(5), vec![(fam(6), MaskSource)]);
    update(&mut m, Msg::Lineage(fam(1), Ok(Box::new(t))));
    assert!(m.lineage.as_ref().is_some_and(|l| l.rows.len() == 7));
    m
}

#[test]
fn snapshot_lineage_view() {
    snapshot("lineage", lineage_screen);
}

/// Job `index` of a 2×3 run (`a {cat|dog}` × three sizes).
fn run_rec(n: u128, index: u32, animal: &str, size: &str, status: Status) -> GenerationRecord {
    use easel::runs::{AltValue, AxisValue, JobValues};
    let mut r = rec(n, &format!("a {animal} in the snow"), status);
    r.run = Some(easel::store::RunInfo {
        id: id(900),
        index,
        of: 6,
        values: JobValues {
            prompt_index: 1,
            template: "a {cat|dog} in the snow".into(),
            combination: u64::from(index - 1),
            alternatives: vec![AltValue {
                column: 3,
                value: animal.into(),
            }],
            wildcards: Vec::new(),
            axes: vec![AxisValue {
                name: "size".into(),
                value: size.into(),
            }],
            repeat: 1,
        },
    });
    r
}

/// A 2×3 run as a grid, on a terminal without graphics: labels on the left and on top, job 5
/// failed, job 6 missing, the selection on job 2.
fn run_grid_screen() -> Model {
    let mut m = model();
    m.graphics = Graphics::None;
    let records = vec![
        run_rec(1, 5, "dog", "1536x1024", Status::Failed),
        run_rec(2, 4, "dog", "1024x1024", Status::Succeeded),
        run_rec(3, 3, "cat", "1024x1536", Status::Succeeded),
        run_rec(4, 2, "cat", "1536x1024", Status::Succeeded),
        run_rec(5, 1, "cat", "1024x1024", Status::Succeeded),
    ];
    page(&mut m, 5, records.clone());
    m.focus = Pane::History;
    update(&mut m, key(KeyCode::Char('j')));
    update(&mut m, key(KeyCode::Char('j')));
    update(&mut m, key(KeyCode::Char('j')));
    update(&mut m, key(KeyCode::Char('V')));
    update(&mut m, Msg::RunLoaded(id(900), records));
    assert!(m.run_grid.as_ref().is_some_and(|g| g.records.is_some()));
    m
}

fn snapshot(name: &str, scene: fn() -> Model) {
    for (w, h) in SIZES {
        let mut m = scene();
        resize(&mut m, w, h);
        let terminal = draw(&m, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), terminal.backend());
    }
}

#[test]
fn snapshot_run_in_queue() {
    snapshot("run_in_queue", run_in_queue);
}

#[test]
fn snapshot_empty_studio() {
    snapshot("empty", empty_studio);
}

#[test]
fn snapshot_chinese_prompt_and_history() {
    snapshot("chinese_prompt", chinese_prompt);
}

#[test]
fn snapshot_failed_job() {
    snapshot("failed_job", failed_job);
}

#[test]
fn snapshot_help_overlay() {
    snapshot("help", help_overlay);
}

#[test]
fn snapshot_details_overlay() {
    snapshot("details", details_overlay);
}

#[test]
fn snapshot_delete_confirmation_names_the_record() {
    snapshot("delete", delete_confirmation);
}

#[test]
fn snapshot_compare_side_by_side() {
    snapshot("compare", compare_screen);
}

#[test]
fn snapshot_gallery() {
    snapshot("gallery", gallery_screen);
}

#[test]
fn snapshot_run_grid() {
    snapshot("run_grid", run_grid_screen);
    // The labels are on screen at every size, and the marked cells say what they are.
    for (w, h) in SIZES {
        let mut m = run_grid_screen();
        resize(&mut m, w, h);
        let text = text_of(draw(&m, w, h).backend().buffer());
        for label in ["cat", "1024x1024", "1536x1024", "Run 00000000", "6 jobs"] {
            assert!(text.contains(label), "{w}x{h}: no {label:?}\n{text}");
        }
        if h >= 40 {
            for label in ["dog", "1024x1536", "✗ failed", "· missing"] {
                assert!(text.contains(label), "{w}x{h}: no {label:?}\n{text}");
            }
        }
    }
}

#[test]
fn a_run_job_still_running_is_not_shown_as_failed_in_the_grid() {
    let mut m = model();
    m.graphics = Graphics::None;
    let records = vec![
        run_rec(1, 2, "cat", "1536x1024", Status::Running),
        run_rec(2, 1, "cat", "1024x1024", Status::Succeeded),
    ];
    page(&mut m, 2, records.clone());
    m.focus = Pane::History;
    update(&mut m, key(KeyCode::Char('V')));
    update(&mut m, Msg::RunLoaded(id(900), records));
    resize(&mut m, 120, 40);
    let text = text_of(draw(&m, 120, 40).backend().buffer());
    assert!(text.contains("… running"), "{text}");
    assert!(!text.contains("✗"), "{text}");
}

#[test]
fn snapshot_too_small() {
    for (w, h) in [(39, 12), (80, 11), (30, 6)] {
        let mut m = chinese_prompt();
        resize(&mut m, w, h);
        let terminal = draw(&m, w, h);
        insta::assert_snapshot!(format!("too_small_{w}x{h}"), terminal.backend());
    }
}

// ---------------------------------------------------------------------------------------------
// Content checks that do not depend on snapshots

/// An error that does not fit beside the model, queue counts and spend takes the status line
/// (the DEMO mark stays): at 80 columns only some 25 characters of it were left, so "not
/// queued: image: /home/…" never said what was wrong or what to do.
#[test]
fn a_long_error_takes_the_whole_status_line() {
    let mut m = model();
    update(
        &mut m,
        Msg::Problem(
            "not queued: image: /tmp/q2/f/dir.png is a folder, not an image file (fix or replace the file)".into(),
        ),
    );
    resize(&mut m, 80, 24);
    let text = text_of(draw(&m, 80, 24).backend().buffer());
    let status = text.lines().last().unwrap().to_string();
    assert!(status.contains("DEMO"), "{status}");
    assert!(status.contains("is a folder, not an im"), "{status}");
    // Short enough, it stays beside the rest; informational notices never take it over.
    let mut m = model();
    update(
        &mut m,
        Msg::Problem("not queued: the prompt is empty".into()),
    );
    resize(&mut m, 80, 24);
    let text = text_of(draw(&m, 80, 24).backend().buffer());
    let status = text.lines().last().unwrap().to_string();
    assert!(
        status.contains("gpt-image") && status.contains("prompt is empty"),
        "{status}"
    );
}

#[test]
fn scenes_show_what_they_should() {
    let (w, h) = (120, 40);
    let text = |mut m: Model| {
        resize(&mut m, w, h);
        text_of(draw(&m, w, h).backend().buffer())
    };
    let empty = text(empty_studio());
    assert!(empty.contains("DEMO"), "{empty}");
    assert!(empty.contains("nothing yet"), "{empty}");
    let failed = text(failed_job());
    let status_line = failed.lines().last().unwrap();
    assert!(
        status_line.contains("failed: rejected by the safety system"),
        "{status_line}"
    );
    assert!(failed.contains('✗'), "a failed history row: {failed}");
    let help = text(help_overlay());
    assert!(
        help.contains(" Keys ") && help.contains("star or unstar"),
        "{help}"
    );
    let details = text(details_overlay());
    assert!(
        details.contains("req_0123456789abcdef") && details.contains("$0.0418"),
        "{details}"
    );
    // Key lists longer than their column stay apart from the description.
    let mut editor_help = help_overlay();
    editor_help.focus = Pane::Editor;
    let help = text(editor_help);
    assert!(help.contains("Ctrl-Enter queue the prompt"), "{help}");
    // Wide (CJK) text is cut by columns, with the ellipsis showing, and the queue's columns
    // stay aligned after a CJK prompt.
    let mut narrow = failed_job();
    resize(&mut narrow, 80, 24);
    let narrow = text_of(draw(&narrow, 80, 24).backend().buffer());
    assert!(narrow.contains("灯火通明，赛…"), "{narrow}");
    let queue_rows: Vec<&str> = narrow
        .lines()
        .filter(|l| l.contains("gpt-image-2 1024x1024"))
        .collect();
    // Two waiting jobs and the failed one, which stays for a retry.
    assert_eq!(queue_rows.len(), 3, "{narrow}");
    let column =
        |l: &str| unicode_width::UnicodeWidthStr::width(&l[..l.find("gpt-image-2").unwrap()]);
    assert_eq!(
        column(queue_rows[0]),
        column(queue_rows[1]),
        "{queue_rows:?}"
    );
    let chinese = text(chinese_prompt());
    assert!(chinese.contains("▀"), "a half-block picture: {chinese}");
}

// ---------------------------------------------------------------------------------------------
// Any size

/// A model with everything on screen: jobs, history, a partial and a picture, a notice.
fn rich() -> Model {
    let mut m = failed_job();
    type_text(&mut m, "夜晚的海边小镇");
    update(
        &mut m,
        Msg::Job(JobEvent::Partial {
            id: id(7),
            index: 1,
            bytes: bytes::Bytes::from(png(32, 32)),
        }),
    );
    update(
        &mut m,
        Msg::Job(JobEvent::Retrying {
            id: id(8),
            retry: 2,
            wait: std::time::Duration::from_millis(1500),
            reason: "HTTP 503".into(),
        }),
    );
    m
}

#[test]
fn every_size_renders_without_panic() {
    let widths = [
        1u16, 2, 3, 5, 10, 20, 39, 40, 41, 59, 60, 79, 80, 100, 119, 120, 121, 160, 200, 300,
    ];
    let heights = [1u16, 2, 3, 5, 11, 12, 13, 20, 24, 29, 30, 31, 40, 60, 100];
    let base = rich();
    let overlays: Vec<Option<Overlay>> = vec![
        None,
        Some(Overlay::Help),
        Some(Overlay::Details(Box::new(base.history.rows[&0].clone()))),
        Some(Overlay::Confirm(Confirm::Delete(Box::new(
            base.history.rows[&0].clone(),
        )))),
        Some(Overlay::Confirm(Confirm::Quit)),
    ];
    let mut drawn = 0;
    for &w in &widths {
        for &h in &heights {
            let mut m = rich();
            // Both pictures (the partial the editor shows, the file history shows) are ready.
            for focus in [Pane::History, Pane::Editor] {
                m.focus = focus;
                resize(&mut m, w, h);
            }
            for (i, overlay) in overlays.iter().enumerate() {
                for focus in [Pane::Editor, Pane::History] {
                    m.focus = focus;
                    m.overlay = overlay.clone();
                    // The search line, too.
                    m.history.search =
                        (i == 0 && focus == Pane::History).then(|| "海边".to_string());
                    let terminal = draw(&m, w, h);
                    assert_eq!(terminal.backend().buffer().area.width, w);
                    drawn += 1;
                }
            }
        }
    }
    assert_eq!(drawn, widths.len() * heights.len() * overlays.len() * 2);
}

#[test]
fn selection_far_down_a_long_history_renders() {
    let mut m = model();
    m.graphics = Graphics::None;
    page(&mut m, 100_000, history_rows());
    m.focus = Pane::History;
    update(&mut m, key(KeyCode::Char('G')));
    for (w, h) in SIZES {
        resize(&mut m, w, h);
        let text = text_of(draw(&m, w, h).backend().buffer());
        assert!(text.contains("100000/100000"), "{text}");
        assert!(
            text.contains('…'),
            "rows not loaded yet show an ellipsis: {text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Nothing unsafe reaches the buffer

const HOSTILE: &[&str] = &[
    "\x1b]52;c;ZXZpbA==\x07",
    "\x1b[2J\x1b[31m",
    "\u{202e}",
    "\u{200b}",
    "\u{9b}31m",
    "\u{200d}",
    "\u{feff}",
    "\u{2066}",
    "\r\n\t",
    "\x7f\x08",
];

fn hostile(base: &str) -> String {
    let mut s = String::from(base);
    for h in HOSTILE {
        s.push_str(h);
        s.push('x');
    }
    s
}

fn hostile_record(n: u128, status: Status) -> GenerationRecord {
    let mut r = rec(n, &hostile("prompt"), status);
    r.model = hostile("model");
    r.params.model = r.model.clone();
    r.provider = hostile("provider");
    r.revised_prompt = Some(hostile("revised"));
    r.request_id = Some(hostile("req"));
    r.params.size = Some(hostile("size"));
    r.params.quality = Some(hostile("quality"));
    r.params.style = Some(hostile("style"));
    r.params.output_format = Some(hostile("format"));
    r.params.background = Some(hostile("background"));
    r.params.moderation = Some(hostile("moderation"));
    r.outputs = vec![SavedImage {
        path: PathBuf::from(hostile("/tmp/evil")),
        format: hostile("png"),
        ..image("x.png")
    }];
    r.error = Some(RecordedError {
        kind: hostile("kind"),
        message: hostile("error message"),
        code: Some(hostile("code")),
        status: Some(500),
        request_id: Some(hostile("req")),
        hint: Some(hostile("hint")),
    });
    r
}

fn unsafe_cells(buf: &Buffer) -> Vec<(u16, u16, String)> {
    let area = buf.area;
    let mut bad = Vec::new();
    for y in 0..area.height {
        for x in 0..area.width {
            let sym = buf[(x, y)].symbol();
            if sym.chars().any(easel::sanitize::is_unsafe) {
                bad.push((x, y, sym.escape_unicode().to_string()));
            }
        }
    }
    bad
}

#[test]
fn hostile_text_never_reaches_the_buffer() {
    let hostile_model = || {
        let mut m = model();
        m.provider.name = hostile("provider");
        m.provider.demo = false;
        m.params.model = hostile("model");
        // The editor: pasted, typed and reused text.
        update(&mut m, Msg::Paste(hostile("pasted")));
        for h in HOSTILE {
            for c in h.chars().filter(|c| !c.is_ascii_control()) {
                update(
                    &mut m,
                    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)),
                );
            }
        }
        update(
            &mut m,
            Msg::Job(JobEvent::Started(Box::new(hostile_record(
                7,
                Status::Running,
            )))),
        );
        update(
            &mut m,
            Msg::Job(JobEvent::Queued(Box::new(hostile_record(
                8,
                Status::Queued,
            )))),
        );
        update(
            &mut m,
            Msg::Job(JobEvent::Retrying {
                id: id(8),
                retry: 1,
                wait: std::time::Duration::from_secs(1),
                reason: hostile("reason"),
            }),
        );
        update(
            &mut m,
            Msg::Job(JobEvent::Failed(Box::new(hostile_record(
                9,
                Status::Failed,
            )))),
        );
        update(&mut m, Msg::Job(JobEvent::Problem(hostile("problem"))));
        page(
            &mut m,
            3,
            vec![
                hostile_record(10, Status::Failed),
                hostile_record(11, Status::Succeeded),
                hostile_record(12, Status::Failed),
            ],
        );
        m.history.filter = easel::studio::model::Filter::Model(hostile("filter"));
        m.history.text = hostile("search");
        m
    };
    let mut checked = 0;
    for (w, h) in [(40, 12), (80, 24), (120, 40), (200, 60)] {
        for scene in 0..6 {
            let mut m = hostile_model();
            match scene {
                0 => {}
                1 => {
                    m.overlay = Some(Overlay::Details(Box::new(hostile_record(
                        10,
                        Status::Failed,
                    ))))
                }
                2 => {
                    m.overlay = Some(Overlay::Details(Box::new(hostile_record(
                        11,
                        Status::Succeeded,
                    ))))
                }
                3 => {
                    m.focus = Pane::History;
                    m.history.search = Some(hostile("typing"));
                }
                4 => {
                    // The preview shows the record's error and a preview failure.
                    m.focus = Pane::History;
                    m.history.selected = 1;
                    update(&mut m, Msg::Resize(w, h));
                    if let Some(k) = preview_key(&m) {
                        update(&mut m, Msg::PreviewFailed(k, hostile("cannot decode")));
                    }
                }
                _ => {
                    // Reused into the editor, then the external editor's text.
                    m.focus = Pane::History;
                    update(&mut m, key(KeyCode::Char('e')));
                    update(&mut m, Msg::EditorClosed(hostile("from $EDITOR")));
                    m.focus = Pane::Params;
                }
            }
            update(&mut m, Msg::Resize(w, h));
            let terminal = draw(&m, w, h);
            let bad = unsafe_cells(terminal.backend().buffer());
            assert!(
                bad.is_empty(),
                "{w}x{h} scene {scene}: {bad:?}\n{}",
                text_of(terminal.backend().buffer())
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 24);
}

// ---------------------------------------------------------------------------------------------
// Colours

fn rgb_cells(buf: &Buffer) -> usize {
    buf.content
        .iter()
        .filter(|c| {
            [c.fg, c.bg, c.underline_color]
                .iter()
                .any(|c| matches!(c, Color::Rgb(..)))
        })
        .count()
}

#[test]
fn without_truecolor_no_rgb_reaches_the_buffer() {
    for (w, h) in SIZES {
        let mut m = chinese_prompt();
        resize(&mut m, w, h);
        // With truecolor the picture is drawn in 24-bit colour...
        let rgb = rgb_cells(draw(&m, w, h).backend().buffer());
        assert!(
            rgb > 20,
            "{w}x{h}: the half-block picture is drawn ({rgb} cells)"
        );
        // ...without, every colour is mapped to the 256-colour palette.
        m.truecolor = false;
        let buf = draw(&m, w, h).backend().buffer().clone();
        assert_eq!(rgb_cells(&buf), 0, "{w}x{h}");
        assert!(
            buf.content
                .iter()
                .any(|c| matches!(c.fg, Color::Indexed(_)) || matches!(c.bg, Color::Indexed(_))),
            "{w}x{h}"
        );
    }
}

/// A search marks the characters it matched in each visible row.
#[test]
fn search_matches_are_highlighted_in_the_list() {
    let mut m = model();
    page(
        &mut m,
        2,
        vec![
            rec(1, "a red fox in the snow", Status::Succeeded),
            rec(2, "a lighthouse at dusk", Status::Succeeded),
        ],
    );
    m.history.text = "fox".into();
    resize(&mut m, 120, 40);
    let terminal = draw(&m, 120, 40);
    let buf = terminal.backend().buffer();
    let mut marked = String::new();
    let mut found_row = false;
    for y in 0..buf.area.height {
        let row: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        if let Some(start) = row.find("a red fox in the snow") {
            found_row = true;
            let x0 = row[..start].chars().count() as u16;
            for (i, c) in "a red fox in the snow".chars().enumerate() {
                let cell = &buf[(x0 + i as u16, y)];
                if cell.modifier.contains(ratatui::style::Modifier::UNDERLINED) {
                    marked.push(c);
                }
            }
        }
    }
    assert!(found_row, "{}", text_of(buf));
    assert_eq!(marked, "fox");
}

/// At 80×24 the parameters are one line: the focused field's label stays in view.
#[test]
fn the_focused_parameter_label_stays_visible_at_80x24() {
    for row in 0..easel::studio::params::rows(&Catalog::builtin(), &model().params).len() {
        let mut m = model();
        m.focus = Pane::Params;
        m.param_cursor = row;
        resize(&mut m, 80, 24);
        let label = easel::studio::params::rows(&m.catalog, &m.params)[row].label();
        let text = text_of(draw(&m, 80, 24).backend().buffer());
        let line = text.lines().nth(5).unwrap_or_default().to_string();
        assert!(
            line.contains(&format!("{label} ")),
            "row {row} ({label}) is not in view: {line:?}"
        );
    }
}

/// The selected row is one band: under reverse video every cell has the same colours (a span's
/// own colour would become a background of its own).
#[test]
fn the_selected_row_has_one_background() {
    let mut m = chinese_prompt();
    m.focus = Pane::History;
    resize(&mut m, 120, 40);
    let terminal = draw(&m, 120, 40);
    let buf = terminal.backend().buffer();
    let mut rows_checked = 0;
    for y in 0..buf.area.height {
        let cells: Vec<_> = (0..buf.area.width)
            .map(|x| &buf[(x, y)])
            .filter(|c| c.modifier.contains(ratatui::style::Modifier::REVERSED))
            .collect();
        if cells.len() < 10 {
            continue;
        }
        rows_checked += 1;
        let colours: std::collections::HashSet<_> = cells.iter().map(|c| (c.fg, c.bg)).collect();
        assert_eq!(
            colours.len(),
            1,
            "row {y} has several backgrounds: {colours:?}"
        );
    }
    assert!(rows_checked >= 1);
}

/// The editor's footer keeps its border and counter however narrow the editor is.
#[test]
fn the_editor_footer_keeps_its_border() {
    for w in [40u16, 50, 60, 80] {
        let mut m = chinese_prompt();
        m.focus = Pane::Editor;
        resize(&mut m, w, 24);
        let text = text_of(draw(&m, w, 24).backend().buffer());
        let footer = text
            .lines()
            .find(|l| l.starts_with('└') && l.contains("/32000"))
            .unwrap_or_else(|| panic!("no footer at {w}: {text}"));
        assert!(footer.contains("──"), "{w}: {footer}");
        assert!(footer.ends_with('┘'), "{w}: {footer}");
    }
}

/// Issue 15: without truecolor, a dark blue picture cell kept no hue (it became a grey). The
/// 256-colour mapping keeps blue blue, and leaves colours that are not 24-bit alone.
#[test]
fn the_256_colour_mapping_keeps_dark_blue_blue() {
    let mut buf = Buffer::empty(ratatui::layout::Rect::new(0, 0, 3, 1));
    buf.content[0].set_bg(Color::Rgb(20, 30, 70));
    buf.content[1].set_fg(Color::Rgb(30, 40, 90));
    buf.content[2].set_fg(Color::Indexed(6));
    easel::studio::view::to_256_colours(&mut buf);
    for c in [buf.content[0].bg, buf.content[1].fg] {
        let Color::Indexed(i) = c else {
            panic!("not mapped: {c:?}")
        };
        let (r, g, b) = easel::colour::palette_rgb(i);
        assert!(b > r && b > g, "a dark blue became ({r}, {g}, {b})");
    }
    assert_eq!(buf.content[2].fg, Color::Indexed(6));
}

/// The zoomed layout: the preview takes the screen but for the queue and status lines, at 80×24
/// too, and its caption names the record.
#[test]
fn zoom_gives_the_preview_the_screen() {
    for (w, h) in [(80u16, 24u16), (120, 40)] {
        let mut m = chinese_prompt();
        m.focus = Pane::History;
        update(&mut m, key(KeyCode::Char('Z')));
        assert!(m.zoom);
        resize(&mut m, w, h);
        let a = m.areas();
        assert!(a.preview.height >= h - 5, "{w}x{h}: {a:?}");
        assert_eq!(a.preview.width, w);
        assert!(a.queue.height > 0 && a.status.height == 1);
        let text = text_of(draw(&m, w, h).backend().buffer());
        assert!(text.contains("Preview") && text.contains("Queue"), "{text}");
        assert!(
            !text.contains("Prompt") && !text.contains("History"),
            "{text}"
        );
        assert!(
            text.contains("1/6 · "),
            "the caption names the record: {text}"
        );
        update(&mut m, key(KeyCode::Char('Z')));
        assert!(!m.zoom);
    }
}

/// Issue 15: kitty graphics placed by id (kitty before 0.28). The view leaves the picture's
/// cells blank and says where the runtime must place it: inside the preview pane, the same cells
/// every frame, and nowhere while a popup is open (a placed picture would cover it).
#[test]
fn kitty_placement_follows_the_preview_and_yields_to_popups() {
    let mut m = model();
    page(
        &mut m,
        1,
        vec![rec(1, "a lighthouse at dusk", Status::Succeeded)],
    );
    m.graphics = Graphics::KittyDirect;
    update(&mut m, Msg::Resize(120, 40));
    let k = preview_key(&m).expect("a preview");
    let detection = easel::termcaps::Detection {
        protocol: easel::termcaps::Protocol::KittyDirect,
        wrap: false,
        terminal: "kitty(0.26.5)".into(),
        cell: Some((9, 20)),
        hint: None,
    };
    let r = Renderer::for_detection(&detection)
        .render(&png(480, 320), k.cols, k.rows)
        .unwrap();
    update(&mut m, Msg::PreviewReady(k.clone(), Box::new(r)));
    let screen = ratatui::layout::Rect::new(0, 0, 120, 40);
    let (img, at) = easel::studio::view::kitty_placement(&m, screen).expect("a placement");
    assert!(
        at.width <= k.cols && at.height <= k.rows,
        "{at:?} for {k:?}"
    );
    assert_eq!((img.size.width, img.size.height), (at.width, at.height));
    // The cells under it are blank in the frame (no placeholder characters, no half-blocks).
    let t = draw(&m, 120, 40);
    let buf = t.backend().buffer();
    for y in at.top()..at.bottom() {
        for x in at.left()..at.right() {
            assert_eq!(buf[(x, y)].symbol(), " ", "cell {x},{y}");
        }
    }
    assert!(text_of(buf).contains("Preview · kitty (placed)"));
    // Stable: the same placement on the next frame.
    let again = easel::studio::view::kitty_placement(&m, screen).expect("a placement");
    assert_eq!((again.0.id, again.1), (img.id, at));
    // A popup: nothing placed.
    m.overlay = Some(Overlay::Help);
    assert!(easel::studio::view::kitty_placement(&m, screen).is_none());
    m.overlay = None;
    // Too small a screen: nothing placed.
    assert!(
        easel::studio::view::kitty_placement(&m, ratatui::layout::Rect::new(0, 0, 20, 5)).is_none()
    );
}

/// Issue 15: `[ui] symbols = "quadrant"` draws the preview with quadrant blocks.
#[test]
fn quadrant_previews_use_quadrant_blocks() {
    let mut m = model();
    page(
        &mut m,
        1,
        vec![rec(1, "a lighthouse at dusk", Status::Succeeded)],
    );
    m.graphics = Graphics::Quadrants;
    update(&mut m, Msg::Resize(120, 40));
    let k = preview_key(&m).expect("a preview");
    let r = Renderer::halfblocks()
        .with_symbols(easel::symbols::Symbols::Quadrant)
        .render(&png(480, 320), k.cols, k.rows)
        .unwrap();
    update(&mut m, Msg::PreviewReady(k, Box::new(r)));
    let t = draw(&m, 120, 40);
    let text = text_of(t.backend().buffer());
    assert!(text.contains("Preview · quadrants"));
    assert!(text.chars().any(|c| "▘▝▖▌▞▛▗▚▐▜▙▟".contains(c)), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Edits (issue 12): the reference strip, queue rows of edits, the mask editor

use easel::api::InputImage;
use easel::studio::mask::{Op, PixRect, Shape};
use easel::studio::model::MaskBase;

/// An edit being written: a history image to edit, a history reference and a file reference
/// (with a hostile name), a mask; an edit waiting in the queue; the strip focused on the second.
fn edit_strip() -> Model {
    let mut m = model();
    page(&mut m, 6, history_rows());
    m.focus = Pane::History;
    update(&mut m, key(KeyCode::Char('E')));
    m.focus = Pane::History;
    update(&mut m, key(KeyCode::Char('j')));
    update(&mut m, key(KeyCode::Char('R')));
    update(
        &mut m,
        Msg::InputResolved(
            easel::studio::msg::InputKind::Reference,
            InputImage::file("/home/u/ref\u{1b}[31m photo.png"),
        ),
    );
    update(
        &mut m,
        Msg::MaskSaved(PathBuf::from("/data/easel/masks/mask-a1b2c3.png")),
    );
    m.focus = Pane::Editor;
    type_text(&mut m, "the same harbour at night");
    let mut job = rec(9, "the same harbour at night", Status::Queued);
    job.params.images = m.params.images.clone();
    job.params.mask = m.params.mask.clone();
    update(&mut m, Msg::Job(JobEvent::Queued(Box::new(job))));
    m.focus = Pane::Inputs;
    update(&mut m, key(KeyCode::Char('h')));
    assert_eq!(m.params.images.len(), 3);
    m
}

/// The mask editor over a picture: a rectangle added, an ellipse taken out of it, the shape
/// being placed outlined.
fn mask_editor() -> Model {
    let mut m = edit_strip();
    m.focus = Pane::Inputs;
    update(&mut m, key(KeyCode::Char('m')));
    assert!(m.mask_edit.is_some());
    m
}

/// Feed the mask editor its picture (a grey gradient) for the area it asked for, and a
/// selection.
fn paint(m: &mut Model) {
    let Some((cols, rows)) = m.mask_edit.as_ref().and_then(|e| e.requested) else {
        return;
    };
    let Some(p) =
        easel::studio::mask::place(ratatui::layout::Rect::new(0, 0, cols, rows), 1024, 768)
    else {
        return;
    };
    let dots = (0..p.gh)
        .flat_map(|y| (0..p.gw).map(move |x| (x, y)))
        .map(|(x, _)| {
            let v = (40 + x * 160 / p.gw.max(1)) as u8;
            [v, v, v]
        })
        .collect();
    let path = m.mask_edit.as_ref().unwrap().path.clone();
    update(
        m,
        Msg::MaskBase {
            path,
            width: 1024,
            height: 768,
            base: MaskBase {
                cols,
                rows,
                gw: p.gw,
                gh: p.gh,
                dots,
            },
        },
    );
    let e = m.mask_edit.as_mut().unwrap();
    e.ops = vec![
        Op::Add(
            Shape::Rect,
            PixRect {
                x0: 0,
                y0: 0,
                x1: 512,
                y1: 768,
            },
        ),
        Op::Subtract(
            Shape::Ellipse,
            PixRect {
                x0: 128,
                y0: 192,
                x1: 384,
                y1: 576,
            },
        ),
    ];
    e.shape = Shape::Ellipse;
    e.cursor = PixRect {
        x0: 640,
        y0: 384,
        x1: 896,
        y1: 640,
    };
}

/// Render the strip's pictures (the scene's picture for every input) as the runtime would.
fn strip_pictures(m: &mut Model) {
    for cell in easel::studio::strip::cells(m) {
        if m.preview.get(&cell.key).is_none() {
            let r = Renderer::halfblocks()
                .render(&png(240, 240), cell.key.cols, cell.key.rows)
                .unwrap();
            update(m, Msg::PreviewReady(cell.key, Box::new(r)));
        }
    }
}

#[test]
fn snapshot_reference_strip_and_edit_in_the_queue() {
    for (w, h) in SIZES {
        let mut m = edit_strip();
        resize(&mut m, w, h);
        strip_pictures(&mut m);
        let terminal = draw(&m, w, h);
        insta::assert_snapshot!(format!("edit_strip_{w}x{h}"), terminal.backend());
    }
    // Without graphics, names only.
    let mut m = edit_strip();
    m.graphics = Graphics::None;
    resize(&mut m, 120, 40);
    let terminal = draw(&m, 120, 40);
    insta::assert_snapshot!("edit_strip_names_120x40", terminal.backend());
}

#[test]
fn snapshot_mask_editor() {
    for (w, h) in SIZES {
        let mut m = mask_editor();
        update(&mut m, Msg::Resize(w, h));
        paint(&mut m);
        let terminal = draw(&m, w, h);
        insta::assert_snapshot!(format!("mask_editor_{w}x{h}"), terminal.backend());
    }
}

/// The mask editor's picture as a map of what each cell's upper dot shows: `#` the area to
/// edit, `o` the outline of the shape being placed, `.` the picture as it is.
fn overlay_map(m: &Model, buf: &Buffer) -> String {
    let Some(p) = easel::studio::update::mask_placement(m) else {
        return String::new();
    };
    let cells = p.cells().intersection(buf.area);
    let mut out = String::new();
    for y in cells.y..cells.bottom() {
        for x in cells.x..cells.right() {
            out.push(match buf[(x, y)].fg {
                Color::Rgb(255, 230, 0) => 'o',
                Color::Rgb(r, g, _) if r > g => '#',
                _ => '.',
            });
        }
        out.push('\n');
    }
    out
}

#[test]
fn snapshot_mask_overlay_map() {
    for (w, h) in [(80, 24), (120, 40)] {
        let mut m = mask_editor();
        update(&mut m, Msg::Resize(w, h));
        paint(&mut m);
        let terminal = draw(&m, w, h);
        insta::assert_snapshot!(
            format!("mask_overlay_{w}x{h}"),
            overlay_map(&m, terminal.backend().buffer())
        );
    }
}

#[test]
fn the_strip_and_queue_say_what_the_edit_is() {
    let mut m = edit_strip();
    m.graphics = Graphics::None;
    resize(&mut m, 200, 60);
    let text = text_of(draw(&m, 200, 60).backend().buffer());
    assert!(text.contains("Edit of 3 pictures (2 references)"), "{text}");
    let short = id(1).short();
    assert!(text.contains(&format!("[1 edit {short} #1]")), "{text}");
    // A file by its name, cleaned of control characters.
    assert!(text.contains("[3 ref ref[31m photo.png]"), "{text}");
    assert!(text.contains("mask: mask-a1b2c3.png"), "{text}");
    assert!(text.contains("edit of the same harbour"), "{text}");
    assert!(text.contains(" 2 refs "), "{text}");
    assert!(unsafe_cells(draw(&m, 200, 60).backend().buffer()).is_empty());
    // The focused strip shows its keys.
    assert!(text.contains("H/L move"), "{text}");
    // Narrower, the short form.
    resize(&mut m, 120, 40);
    let text = text_of(draw(&m, 120, 40).backend().buffer());
    assert!(
        text.contains(&format!("1·{short} #1 2·{short} #1 3·ref")),
        "{text}"
    );
    // With graphics, small pictures over their names, and the mask beside them.
    let mut m = edit_strip();
    resize(&mut m, 200, 60);
    strip_pictures(&mut m);
    let cells = easel::studio::strip::cells(&m);
    assert_eq!(cells.len(), 3);
    let buf = draw(&m, 200, 60).backend().buffer().clone();
    let text = text_of(&buf);
    assert!(text.contains(&format!("1 edit {short} #1")), "{text}");
    assert!(text.contains("mask: mask-a1b2c3.png"), "{text}");
    for c in &cells {
        let blocks = (c.picture.y..c.picture.bottom())
            .flat_map(|y| (c.picture.x..c.picture.right()).map(move |x| (x, y)))
            .filter(|(x, y)| matches!(buf[(*x, *y)].symbol(), "▀" | "▄"))
            .count();
        assert!(blocks > 10, "input {} has no picture:\n{text}", c.index);
    }
}

/// The queue row of an edit counts its references as the strip does (the pictures after the
/// first, which is the one edited): an edit of one picture has none, and one reference is
/// said in the singular, in the row and in the strip's title.
#[test]
fn an_edit_counts_its_references_not_its_pictures() {
    let mut m = edit_strip();
    m.graphics = Graphics::None;
    m.focus = Pane::Inputs;
    // Down to two pictures (the edited one and one reference), then to one.
    update(&mut m, key(KeyCode::Char('x')));
    assert_eq!(m.params.images.len(), 2);
    let queued = |m: &mut Model, n: u128| {
        let mut job = rec(n, &format!("edit number {n}"), Status::Queued);
        job.params.images = m.params.images.clone();
        update(m, Msg::Job(JobEvent::Queued(Box::new(job))));
    };
    queued(&mut m, 20);
    resize(&mut m, 200, 60);
    let text = text_of(draw(&m, 200, 60).backend().buffer());
    assert!(text.contains("Edit of 2 pictures (1 reference)"), "{text}");
    let row = |text: &str, what: &str| {
        text.lines()
            .find(|l| l.contains(what))
            .unwrap_or_default()
            .to_string()
    };
    assert!(row(&text, "edit number 20").contains(" 1 ref "), "{text}");
    update(&mut m, key(KeyCode::Char('x')));
    assert_eq!(m.params.images.len(), 1);
    queued(&mut m, 21);
    let text = text_of(draw(&m, 200, 60).backend().buffer());
    let r = row(&text, "edit number 21");
    assert!(r.contains("edit of") && !r.contains("ref"), "{r}");
}

#[test]
fn the_mask_overlay_tints_the_area_to_edit_and_outlines_the_shape() {
    let (w, h) = (120, 40);
    let mut m = mask_editor();
    update(&mut m, Msg::Resize(w, h));
    paint(&mut m);
    let p = easel::studio::update::mask_placement(&m).unwrap();
    let terminal = draw(&m, w, h);
    let buf = terminal.backend().buffer();
    let rgb = |c: Color| match c {
        Color::Rgb(r, g, b) => (r, g, b),
        other => panic!("{other:?}"),
    };
    let cells = p.cells();
    // The left edge (in the rectangle, outside the ellipse) is tinted: red over grey.
    let (r, g, b) = rgb(buf[(cells.x + 1, cells.y + 1)].fg);
    assert!(r > g + 60 && b > g, "tinted: {:?}", (r, g, b));
    // The right half is the picture as it is: grey.
    let (r, g, b) = rgb(buf[(cells.right() - 2, cells.y + 2)].fg);
    assert!(r == g && g == b, "untouched: {:?}", (r, g, b));
    // The ellipse's centre, taken out, is grey too.
    let (cx, cy) = (cells.x + cells.width / 4, cells.y + cells.height / 2);
    let (r, g, b) = rgb(buf[(cx, cy)].fg);
    assert!(r == g && g == b, "subtracted: {:?}", (r, g, b));
    // The shape being placed is outlined in yellow somewhere.
    let outlined = (cells.y..cells.bottom())
        .flat_map(|y| (cells.x..cells.right()).map(move |x| (x, y)))
        .any(|(x, y)| buf[(x, y)].fg == Color::Rgb(255, 230, 0));
    assert!(outlined);
    let text = text_of(buf);
    assert!(text.contains("Mask · 0001.png · 1024x768"), "{text}");
    assert!(text.contains("% of the picture to edit"), "{text}");
    // Without truecolor, nothing RGB reaches the buffer.
    m.truecolor = false;
    assert_eq!(rgb_cells(draw(&m, w, h).backend().buffer()), 0);
}

#[test]
fn the_mask_editor_and_strip_render_at_every_size() {
    for w in [1u16, 10, 39, 40, 60, 80, 120, 200] {
        for h in [1u16, 5, 11, 12, 13, 20, 24, 40] {
            let mut m = mask_editor();
            update(&mut m, Msg::Resize(w, h));
            paint(&mut m);
            draw(&m, w, h);
            m.mask_edit = None;
            draw(&m, w, h);
            m.path_input = Some(easel::studio::model::PathInput {
                kind: easel::studio::msg::InputKind::Reference,
                text: "~/pictures/海边.png".into(),
            });
            draw(&m, w, h);
        }
    }
}

/// A run's job says where it stands in its run and what sets it apart (issue 14).
#[test]
fn a_run_job_is_labelled_with_its_place_and_values() {
    let mut m = model();
    let mut r = rec(9, "a red fox", Status::Queued);
    r.run = Some(easel::store::RunInfo {
        id: id(99),
        index: 3,
        of: 12,
        values: easel::runs::JobValues {
            prompt_index: 1,
            template: "a {red|blue} {fox|owl}".into(),
            combination: 2,
            alternatives: vec![
                easel::runs::AltValue {
                    column: 3,
                    value: "red".into(),
                },
                easel::runs::AltValue {
                    column: 14,
                    value: "fox".into(),
                },
            ],
            wildcards: vec![],
            axes: vec![easel::runs::AxisValue {
                name: "size".into(),
                value: "1024x1024".into(),
            }],
            repeat: 1,
        },
    });
    update(&mut m, Msg::Job(JobEvent::Queued(Box::new(r))));
    resize(&mut m, 160, 30);
    let screen = text_of(draw(&m, 160, 30).backend().buffer());
    // Under its run's header (issue 14: the queue groups a run), the row says its place and
    // values.
    assert!(
        screen.contains("│▾ run · 0/12 done · 1 queued · a {red|blue} {fox|owl}"),
        "{screen}"
    );
    assert!(
        screen.contains("│·   3/12 · red, fox · size=1024x1024… gpt-image-2"),
        "{screen}"
    );
}

#[test]
fn details_show_parents_and_children() {
    use easel::store::record::{Parent, ParentRole};
    use easel::studio::model::Family;
    let mut m = model();
    let mut r = rec(1, "the same harbour at night", Status::Succeeded);
    r.parents = vec![Parent {
        id: id(2),
        role: ParentRole::Edited,
    }];
    r.params.images = vec![InputImage {
        path: PathBuf::from("/data/easel/images/2025/03/14/0002.png"),
        record: Some(id(2).to_string()),
        index: Some(1),
    }];
    r.params.mask = Some(InputImage::file("/data/easel/masks/mask-a1.png"));
    page(&mut m, 1, vec![r]);
    m.focus = Pane::History;
    update(&mut m, key(KeyCode::Enter));
    resize(&mut m, 120, 40);
    let text = text_of(draw(&m, 120, 40).backend().buffer());
    assert!(text.contains("reading…"), "{text}");
    update(
        &mut m,
        Msg::Family(Family {
            id: id(1),
            parents: vec![(
                Parent {
                    id: id(2),
                    role: ParentRole::Edited,
                },
                Some("a harbour".into()),
            )],
            children: vec![(id(3), ParentRole::Reference, "in the rain".into())],
        }),
    );
    let text = text_of(draw(&m, 120, 40).backend().buffer());
    let short = id(2).short();
    assert!(
        text.contains(&format!("edited {short} · a harbour (P goes there)")),
        "{text}"
    );
    assert!(text.contains("uses this as a reference"), "{text}");
    assert!(text.contains("in the rain (C: next)"), "{text}");
    assert!(text.contains("input 1"), "{text}");
    assert!(text.contains("masks/mask-a1.png"), "{text}");
}
