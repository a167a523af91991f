#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The studio's `update` and keymap, as tables of cases: no terminal, no I/O, fixed times.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use easel::api::request;
use easel::api::{GenerationParams, ProviderRules};
use easel::catalog::{Catalog, Field};
use easel::queue::JobEvent;
use easel::store::{GenerationRecord, Id, Located, QueueMove, RecordedError, SavedImage, Status};
use easel::studio::keymap::{Action, Context, KeyConfig, KeySpec, Keymap};
use easel::studio::model::{
    Confirm, Filter, KEEP, Model, NOTICE_SECS, Overlay, PAGE, Pane, ProviderInfo,
};
use easel::studio::msg::{Effect, Msg, PreviewSource};
use easel::studio::update::{preview_key, update};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::path::PathBuf;
use std::sync::Arc;

// ---------------------------------------------------------------------------------------------
// Fixtures

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 14, 9, 26, 53).unwrap()
}

fn id(n: u128) -> Id {
    Id::from_uuid(uuid::Uuid::from_u128(n))
}

fn new_model(keymap: Keymap) -> Model {
    let mut m = bare_model(keymap);
    update(&mut m, Msg::Resize(80, 24));
    m
}

/// A studio as the runtime makes it, before its first message.
fn bare_model(keymap: Keymap) -> Model {
    let provider = ProviderInfo {
        name: "demo".into(),
        demo: true,
        openai: false,
        rules: ProviderRules::default(),
    };
    let mut m = Model::new(
        keymap,
        Arc::new(Catalog::builtin()),
        provider,
        GenerationParams::default(),
        t0(),
    );
    m.data_dir = PathBuf::from("/data/easel");
    m
}

fn model() -> Model {
    new_model(Keymap::default())
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
        ..GenerationParams::default()
    };
    let created = t0() - Duration::minutes(n as i64);
    let mut r = GenerationRecord::queued(id(n), params, "demo", true, created);
    r.status = status;
    if status != Status::Queued {
        r.started = Some(created + Duration::seconds(1));
        r.attempts = 1;
    }
    match status {
        Status::Succeeded => {
            r.finished = Some(created + Duration::seconds(9));
            r.outputs = vec![image(&format!("images/2025/03/14/{n}.png"))];
        }
        Status::Failed => {
            r.finished = Some(created + Duration::seconds(3));
            r.error = Some(RecordedError {
                kind: "server".into(),
                message: "the server said no (HTTP 500)".into(),
                code: None,
                status: Some(500),
                request_id: None,
                hint: None,
            });
        }
        _ => {}
    }
    r
}

fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
    KeyEvent::new(code, mods)
}

fn plain(code: KeyCode) -> KeyEvent {
    key(code, KeyModifiers::NONE)
}

fn ch(c: char) -> KeyEvent {
    plain(KeyCode::Char(c))
}

fn ctrl(c: char) -> KeyEvent {
    key(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn press(m: &mut Model, k: KeyEvent) -> Vec<Effect> {
    update(m, Msg::Key(k))
}

fn type_text(m: &mut Model, text: &str) -> Vec<Effect> {
    let mut fx = Vec::new();
    for c in text.chars() {
        fx.extend(press(m, ch(c)));
    }
    fx
}

/// Feed a history page for the current query. Like the runtime's history worker, it answers
/// where the selected record stands when a reload asked for that (here: found in this page, or
/// unknown).
fn page(m: &mut Model, offset: usize, total: usize, records: Vec<GenerationRecord>) -> Vec<Effect> {
    let anchor = m.history.anchor.map(|(id, _)| {
        let at = records.iter().position(|r| r.id == id);
        (id, at.map_or(Located::Unknown, |i| Located::At(offset + i)))
    });
    page_with(m, offset, total, records, anchor)
}

fn page_with(
    m: &mut Model,
    offset: usize,
    total: usize,
    records: Vec<GenerationRecord>,
    anchor: Option<(Id, Located)>,
) -> Vec<Effect> {
    let generation = m.history.generation;
    update(
        m,
        Msg::HistoryPage {
            generation,
            offset,
            total,
            records,
            anchor,
        },
    )
}

fn load_effects(fx: &[Effect]) -> Vec<(u64, usize, usize)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::LoadHistory {
                generation,
                offset,
                limit,
                ..
            } => Some((*generation, *offset, *limit)),
            _ => None,
        })
        .collect()
}

/// History rows: 0 succeeded, 1 failed, 2 queued, 3 succeeded and starred.
fn history_records() -> Vec<GenerationRecord> {
    let mut starred = rec(4, "a lighthouse at dusk", Status::Succeeded);
    starred.starred = true;
    vec![
        rec(1, "夜晚的海边小镇，灯火通明", Status::Succeeded),
        rec(2, "a cat made of clouds", Status::Failed),
        rec(3, "a queued one", Status::Queued),
        starred,
    ]
}

/// A studio with history rows and a queue of one running and two waiting jobs.
fn rich() -> Model {
    let mut m = model();
    page(&mut m, 0, 4, history_records());
    for (n, status) in [
        (10, Status::Running),
        (11, Status::Queued),
        (12, Status::Queued),
    ] {
        let r = rec(n, &format!("job {n}"), status);
        let ev = if status == Status::Running {
            JobEvent::Started(Box::new(r))
        } else {
            JobEvent::Queued(Box::new(r))
        };
        update(&mut m, Msg::Job(ev));
    }
    m
}

/// The rich studio without running jobs.
fn idle() -> Model {
    let mut m = model();
    page(&mut m, 0, 4, history_records());
    update(
        &mut m,
        Msg::Job(JobEvent::Queued(Box::new(rec(
            11,
            "job 11",
            Status::Queued,
        )))),
    );
    m
}

// ---------------------------------------------------------------------------------------------
// Keymap: the default bindings in each pane

struct Case {
    name: &'static str,
    setup: fn() -> Model,
    focus: Pane,
    keys: Vec<KeyEvent>,
    check: fn(&Model, &[Effect]) -> bool,
}

fn case(
    name: &'static str,
    setup: fn() -> Model,
    focus: Pane,
    keys: Vec<KeyEvent>,
    check: fn(&Model, &[Effect]) -> bool,
) -> Case {
    Case {
        name,
        setup,
        focus,
        keys,
        check,
    }
}

fn with_prompt() -> Model {
    let mut m = rich();
    type_text(&mut m, "a red fox");
    m
}

fn submitted(fx: &[Effect], prompt: &str, front: bool) -> bool {
    matches!(fx, [Effect::Submit(s)] if s.params.prompt == prompt && s.front == front && s.parent.is_none() && s.provider == "demo")
}

#[test]
fn default_bindings_work_in_each_pane() {
    use Pane::*;
    let shift_tab = key(KeyCode::BackTab, KeyModifiers::SHIFT);
    let cases = vec![
        // Moving between panes
        case(
            "tab editor",
            rich,
            Editor,
            vec![plain(KeyCode::Tab)],
            |m, fx| m.focus == Params && fx.is_empty(),
        ),
        case(
            "tab params",
            rich,
            Params,
            vec![plain(KeyCode::Tab)],
            |m, _| m.focus == Queue,
        ),
        case(
            "tab queue",
            rich,
            Queue,
            vec![plain(KeyCode::Tab)],
            |m, _| m.focus == History,
        ),
        case(
            "tab history wraps",
            rich,
            History,
            vec![plain(KeyCode::Tab)],
            |m, _| m.focus == Editor,
        ),
        case(
            "shift-tab editor wraps",
            rich,
            Editor,
            vec![shift_tab],
            |m, _| m.focus == History,
        ),
        case(
            "shift-tab history",
            rich,
            History,
            vec![shift_tab],
            |m, _| m.focus == Queue,
        ),
        case(
            "shift-tab as tab+shift",
            rich,
            Queue,
            vec![key(KeyCode::Tab, KeyModifiers::SHIFT)],
            |m, _| m.focus == Params,
        ),
        case(
            "i focuses the editor",
            rich,
            Queue,
            vec![ch('i')],
            |m, _| m.focus == Editor,
        ),
        // Editor
        case(
            "ctrl-s submits",
            with_prompt,
            Editor,
            vec![ctrl('s')],
            |_, fx| submitted(fx, "a red fox", false),
        ),
        case(
            "alt-enter submits",
            with_prompt,
            Editor,
            vec![key(KeyCode::Enter, KeyModifiers::ALT)],
            |_, fx| submitted(fx, "a red fox", false),
        ),
        case(
            "ctrl-enter submits",
            with_prompt,
            Editor,
            vec![key(KeyCode::Enter, KeyModifiers::CONTROL)],
            |_, fx| submitted(fx, "a red fox", false),
        ),
        case(
            "alt-s submits at the front",
            with_prompt,
            Editor,
            vec![key(KeyCode::Char('s'), KeyModifiers::ALT)],
            |_, fx| submitted(fx, "a red fox", true),
        ),
        case(
            "plain enter is a newline",
            with_prompt,
            Editor,
            vec![plain(KeyCode::Enter)],
            |m, fx| fx.is_empty() && m.editor.lines().len() == 2,
        ),
        case(
            "esc leaves the editor",
            rich,
            Editor,
            vec![plain(KeyCode::Esc)],
            |m, fx| m.focus == History && fx.is_empty(),
        ),
        case(
            "q is text in the editor",
            rich,
            Editor,
            vec![ch('q')],
            |m, fx| fx.is_empty() && !m.quitting && m.prompt() == "q",
        ),
        case(
            "? is text in the editor",
            rich,
            Editor,
            vec![ch('?')],
            |m, _| m.overlay.is_none() && m.prompt() == "?",
        ),
        case(
            "j is text in the editor",
            rich,
            Editor,
            vec![ch('j'), ch('k')],
            |m, _| m.prompt() == "jk",
        ),
        case(
            "ctrl-o opens the external editor",
            with_prompt,
            Editor,
            vec![ctrl('o')],
            |_, fx| matches!(fx, [Effect::OpenEditor(t)] if t == "a red fox"),
        ),
        case("ctrl-z suspends", rich, Editor, vec![ctrl('z')], |_, fx| {
            matches!(fx, [Effect::Suspend])
        }),
        // Moving in lists
        case("j in history", rich, History, vec![ch('j')], |m, _| {
            m.history.selected == 1
        }),
        case(
            "down in history",
            rich,
            History,
            vec![plain(KeyCode::Down), plain(KeyCode::Down)],
            |m, _| m.history.selected == 2,
        ),
        case(
            "k in history",
            rich,
            History,
            vec![ch('j'), ch('j'), ch('k')],
            |m, _| m.history.selected == 1,
        ),
        case(
            "up stops at the top",
            rich,
            History,
            vec![plain(KeyCode::Up)],
            |m, _| m.history.selected == 0,
        ),
        case(
            "G and g in history",
            rich,
            History,
            vec![ch('G')],
            |m, _| m.history.selected == 3,
        ),
        case(
            "g goes back",
            rich,
            History,
            vec![ch('G'), ch('g')],
            |m, _| m.history.selected == 0,
        ),
        case(
            "end and home",
            rich,
            History,
            vec![plain(KeyCode::End), plain(KeyCode::Home)],
            |m, _| m.history.selected == 0,
        ),
        case(
            "j stops at the end",
            rich,
            History,
            vec![ch('j'); 9],
            |m, _| m.history.selected == 3,
        ),
        case("j in the queue", rich, Queue, vec![ch('j')], |m, _| {
            m.queue.selected == 1
        }),
        case(
            "down and up in the queue",
            rich,
            Queue,
            vec![
                plain(KeyCode::Down),
                plain(KeyCode::Down),
                plain(KeyCode::Up),
            ],
            |m, _| m.queue.selected == 1,
        ),
        case(
            "j in params",
            rich,
            Params,
            vec![ch('j'), plain(KeyCode::Down)],
            |m, _| m.param_cursor == 2,
        ),
        case(
            "k in params",
            rich,
            Params,
            vec![ch('j'), ch('k')],
            |m, _| m.param_cursor == 0,
        ),
        case(
            "l steps a value",
            rich,
            Params,
            vec![ch('j'), ch('l')],
            |m, _| m.params.size.is_some(),
        ),
        case(
            "h steps back",
            rich,
            Params,
            vec![ch('j'), ch('l'), ch('h')],
            |m, _| m.params.size.is_none(),
        ),
        // History actions
        case("/ searches", rich, History, vec![ch('/')], |m, fx| {
            m.history.search.as_deref() == Some("") && fx.is_empty()
        }),
        case(
            "enter opens details",
            rich,
            History,
            vec![ch('j'), plain(KeyCode::Enter)],
            |m, _| matches!(&m.overlay, Some(Overlay::Details(r)) if r.id == id(2)),
        ),
        case("e reuses", rich, History, vec![ch('e')], |m, fx| {
            fx.is_empty() && m.focus == Editor && m.prompt() == "夜晚的海边小镇，灯火通明"
        }),
        case(
            "r reruns a succeeded record",
            rich,
            History,
            vec![ch('r')],
            |_, fx| matches!(fx, [Effect::Submit(s)] if s.parent == Some(id(1)) && s.params.prompt == "夜晚的海边小镇，灯火通明"),
        ),
        case(
            "r retries a failed record",
            rich,
            History,
            vec![ch('j'), ch('r')],
            |_, fx| matches!(fx, [Effect::Retry(i)] if *i == id(2)),
        ),
        case(
            "r on a queued record only says so",
            rich,
            History,
            vec![ch('j'), ch('j'), ch('r')],
            |m, fx| {
                fx.is_empty()
                    && m.current_notice()
                        .is_some_and(|n| n.text.contains("still in the queue"))
            },
        ),
        case(
            "x cancels a queued record",
            rich,
            History,
            vec![ch('j'), ch('j'), ch('x')],
            |_, fx| matches!(fx, [Effect::Cancel(i)] if *i == id(3)),
        ),
        case(
            "x ignores a finished record",
            rich,
            History,
            vec![ch('x')],
            |_, fx| fx.is_empty(),
        ),
        case(
            "s stars",
            rich,
            History,
            vec![ch('s')],
            |_, fx| matches!(fx, [Effect::Star(i, true)] if *i == id(1)),
        ),
        case(
            "s unstars",
            rich,
            History,
            vec![ch('G'), ch('s')],
            |_, fx| matches!(fx, [Effect::Star(i, false)] if *i == id(4)),
        ),
        case("d asks first", rich, History, vec![ch('d')], |m, fx| {
            fx.is_empty()
                && matches!(&m.overlay, Some(Overlay::Confirm(Confirm::Delete(r))) if r.id == id(1))
        }),
        case(
            "d then y deletes",
            rich,
            History,
            vec![ch('d'), ch('y')],
            |m, fx| m.overlay.is_none() && matches!(fx, [Effect::Delete(i)] if *i == id(1)),
        ),
        case(
            "d then n keeps it",
            rich,
            History,
            vec![ch('d'), ch('n')],
            |m, fx| m.overlay.is_none() && fx.is_empty(),
        ),
        case(
            "y copies the prompt",
            rich,
            History,
            vec![ch('y')],
            |_, fx| matches!(fx, [Effect::Copy(t)] if t == "夜晚的海边小镇，灯火通明"),
        ),
        case(
            "Y copies the path",
            rich,
            History,
            vec![ch('Y')],
            |_, fx| matches!(fx, [Effect::Copy(t)] if t == "/data/easel/images/2025/03/14/1.png"),
        ),
        case(
            "z views full size",
            rich,
            History,
            vec![ch('z')],
            |_, fx| matches!(fx, [Effect::FullView(p)] if p.is_absolute() && p == &PathBuf::from("/data/easel/images/2025/03/14/1.png")),
        ),
        case(
            "z without an image says so",
            rich,
            History,
            vec![ch('j'), ch('z')],
            |m, fx| {
                fx.is_empty()
                    && m.current_notice()
                        .is_some_and(|n| n.text.contains("no image"))
            },
        ),
        case(
            "p pauses from history",
            rich,
            History,
            vec![ch('p')],
            |_, fx| matches!(fx, [Effect::Pause(true)]),
        ),
        // Queue actions
        case(
            "x cancels the selected job",
            rich,
            Queue,
            vec![ch('x')],
            |_, fx| matches!(fx, [Effect::Cancel(i)] if *i == id(10)),
        ),
        case(
            "r on a waiting job explains instead of retrying",
            rich,
            Queue,
            vec![ch('j'), ch('r')],
            |m, fx| {
                fx.is_empty()
                    && m.current_notice()
                        .is_some_and(|n| n.text.contains("can be retried"))
            },
        ),
        case(
            "J moves a queued job down",
            rich,
            Queue,
            vec![ch('j'), key(KeyCode::Char('J'), KeyModifiers::SHIFT)],
            |_, fx| matches!(fx, [Effect::MoveJob(i, QueueMove::Down)] if *i == id(11)),
        ),
        case(
            "K moves a queued job up",
            rich,
            Queue,
            vec![ch('j'), ch('j'), ch('K')],
            |_, fx| matches!(fx, [Effect::MoveJob(i, QueueMove::Up)] if *i == id(12)),
        ),
        case(
            "F moves a queued job to the front",
            rich,
            Queue,
            vec![ch('j'), ch('j'), ch('F')],
            |_, fx| matches!(fx, [Effect::MoveJob(i, QueueMove::Front)] if *i == id(12)),
        ),
        case(
            "J does not move a running job",
            rich,
            Queue,
            vec![ch('J')],
            |_, fx| fx.is_empty(),
        ),
        case("p pauses the queue", rich, Queue, vec![ch('p')], |_, fx| {
            matches!(fx, [Effect::Pause(true)])
        }),
        case(
            "e reuses a queued job",
            rich,
            Queue,
            vec![ch('j'), ch('e')],
            |m, _| m.focus == Editor && m.prompt() == "job 11",
        ),
        // Quitting
        case(
            "q asks while a job runs",
            rich,
            History,
            vec![ch('q')],
            |m, fx| {
                fx.is_empty()
                    && !m.quitting
                    && matches!(m.overlay, Some(Overlay::Confirm(Confirm::Quit)))
            },
        ),
        case(
            "q then y quits",
            rich,
            Queue,
            vec![ch('q'), ch('y')],
            |m, fx| m.quitting && matches!(fx, [Effect::Quit]),
        ),
        case(
            "q then esc stays",
            rich,
            Queue,
            vec![ch('q'), plain(KeyCode::Esc)],
            |m, fx| !m.quitting && fx.is_empty() && m.overlay.is_none(),
        ),
        case(
            "q quits when idle",
            idle,
            History,
            vec![ch('q')],
            |m, fx| m.quitting && matches!(fx, [Effect::Quit]),
        ),
        case(
            "q quits from params when idle",
            idle,
            Params,
            vec![ch('q')],
            |_, fx| matches!(fx, [Effect::Quit]),
        ),
        case(
            "ctrl-c in the editor",
            rich,
            Editor,
            vec![ctrl('c')],
            |m, fx| m.quitting && matches!(fx, [Effect::Quit]),
        ),
        case(
            "ctrl-c in params",
            rich,
            Params,
            vec![ctrl('c')],
            |_, fx| matches!(fx, [Effect::Quit]),
        ),
        case(
            "ctrl-c in the queue",
            rich,
            Queue,
            vec![ctrl('c')],
            |_, fx| matches!(fx, [Effect::Quit]),
        ),
        case(
            "ctrl-c in history",
            rich,
            History,
            vec![ctrl('c')],
            |_, fx| matches!(fx, [Effect::Quit]),
        ),
        case(
            "ctrl-shift-c",
            rich,
            History,
            vec![key(
                KeyCode::Char('C'),
                KeyModifiers::CONTROL | KeyModifiers::SHIFT,
            )],
            |_, fx| matches!(fx, [Effect::Quit]),
        ),
        case(
            "ctrl-c in the search line",
            rich,
            History,
            vec![ch('/'), ch('a'), ctrl('c')],
            |_, fx| matches!(fx.last(), Some(Effect::Quit)),
        ),
        case(
            "ctrl-c in help",
            rich,
            History,
            vec![ch('?'), ctrl('c')],
            |_, fx| matches!(fx, [Effect::Quit]),
        ),
        case(
            "ctrl-c in details",
            rich,
            History,
            vec![plain(KeyCode::Enter), ctrl('c')],
            |_, fx| matches!(fx, [Effect::Quit]),
        ),
        case(
            "ctrl-c in the quit confirmation",
            rich,
            History,
            vec![ch('q'), ctrl('c')],
            |m, fx| m.quitting && matches!(fx, [Effect::Quit]),
        ),
        case(
            "ctrl-c in the delete confirmation",
            rich,
            History,
            vec![ch('d'), ctrl('c')],
            |_, fx| matches!(fx, [Effect::Quit]),
        ),
        // Help
        case("? opens help", rich, History, vec![ch('?')], |m, fx| {
            fx.is_empty() && matches!(m.overlay, Some(Overlay::Help))
        }),
        case(
            "? opens help from the queue",
            rich,
            Queue,
            vec![ch('?')],
            |m, _| matches!(m.overlay, Some(Overlay::Help)),
        ),
        case(
            "F1 opens help in the editor",
            rich,
            Editor,
            vec![plain(KeyCode::F(1))],
            |m, _| matches!(m.overlay, Some(Overlay::Help)) && m.prompt().is_empty(),
        ),
        case(
            "F1 opens help in params",
            rich,
            Params,
            vec![plain(KeyCode::F(1))],
            |m, _| matches!(m.overlay, Some(Overlay::Help)),
        ),
        case(
            "j scrolls the help, any other key closes it",
            rich,
            History,
            vec![ch('?'), ch('j'), ch('x')],
            |m, _| m.overlay.is_none() && m.history.selected == 0,
        ),
        case(
            "q closes help without quitting",
            idle,
            History,
            vec![ch('?'), ch('q')],
            |m, fx| m.overlay.is_none() && fx.is_empty(),
        ),
        case(
            "any key closes details",
            rich,
            History,
            vec![plain(KeyCode::Enter), plain(KeyCode::Esc)],
            |m, _| m.overlay.is_none(),
        ),
    ];
    let mut failures = Vec::new();
    for c in &cases {
        let mut m = (c.setup)();
        m.focus = c.focus;
        let mut fx = Vec::new();
        for k in &c.keys {
            fx = press(&mut m, *k);
        }
        // Preview requests are the runtime's business here.
        fx.retain(|e| !matches!(e, Effect::RenderPreview { .. }));
        if !(c.check)(&m, &fx) {
            failures.push(format!(
                "{}: focus {:?} overlay {:?} effects {fx:?}",
                c.name, m.focus, m.overlay
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn key_releases_are_ignored() {
    let mut m = rich();
    m.focus = Pane::History;
    let mut k = ch('j');
    k.kind = crossterm::event::KeyEventKind::Release;
    assert!(press(&mut m, k).is_empty());
    assert_eq!(m.history.selected, 0);
}

fn help_text(m: &Model, w: u16, h: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| easel::studio::view::view(m, f)).unwrap();
    let buf = terminal.backend().buffer();
    (0..h)
        .map(|y| {
            (0..w)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect()
}

#[test]
fn config_rebinding_changes_keys_and_the_help_lists_it() {
    let mut cfg = KeyConfig::new();
    cfg.entry(Context::History)
        .or_default()
        .insert(Action::Star, KeySpec::One("S".into()));
    cfg.entry(Context::Editor).or_default().insert(
        Action::Submit,
        KeySpec::Many(vec!["ctrl-g".into(), "F5".into()]),
    );
    cfg.entry(Context::Global)
        .or_default()
        .insert(Action::Help, KeySpec::One("ctrl-h".into()));
    let keymap = Keymap::with_config(&cfg).unwrap();

    let mut m = new_model(keymap.clone());
    page(&mut m, 0, 4, history_records());
    m.focus = Pane::History;
    // s no longer stars; S does.
    assert!(press(&mut m, ch('s')).is_empty());
    assert!(
        matches!(press(&mut m, key(KeyCode::Char('S'), KeyModifiers::SHIFT)).as_slice(), [Effect::Star(i, true)] if *i == id(1))
    );
    // ? no longer opens help; ctrl-h does.
    press(&mut m, ch('?'));
    assert!(m.overlay.is_none());
    press(&mut m, ctrl('h'));
    assert!(matches!(m.overlay, Some(Overlay::Help)));
    m.overlay = None;
    // In the editor Ctrl-S is now text-editing (no submit); Ctrl-G and F5 submit.
    m.focus = Pane::Editor;
    type_text(&mut m, "fox");
    assert!(
        press(&mut m, ctrl('s'))
            .iter()
            .all(|e| !matches!(e, Effect::Submit(_)))
    );
    assert!(matches!(
        press(&mut m, ctrl('g')).as_slice(),
        [Effect::Submit(_)]
    ));
    assert!(matches!(
        press(&mut m, plain(KeyCode::F(5))).as_slice(),
        [Effect::Submit(_)]
    ));

    // The help screen shows the new keys (tall enough to hold every binding).
    m.overlay = Some(Overlay::Help);
    let lines = help_text(&m, 200, 140);
    let find = |what: &str| {
        lines
            .iter()
            .find(|l| l.contains(what))
            .cloned()
            .unwrap_or_default()
    };
    let star = find("star or unstar");
    assert!(star.contains("  S  "), "{star:?}");
    assert!(!star.contains(" s "), "{star:?}");
    let submit = lines
        .iter()
        .find(|l| l.contains("queue the prompt") && !l.contains("front"))
        .cloned()
        .unwrap_or_default();
    assert!(submit.contains("Ctrl-g F5"), "{submit:?}");
    let help: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("show or hide this help"))
        .collect();
    assert!(help.iter().any(|l| l.contains("Ctrl-h")), "{help:?}");
    assert!(!help.iter().any(|l| l.contains('?')), "{help:?}");
    // The pane hints follow too.
    m.overlay = None;
    let screen = help_text(&m, 120, 40).join("\n");
    assert!(screen.contains("Ctrl-g queue"), "{screen}");
    assert!(screen.contains("Ctrl-h help"), "{screen}");
}

// ---------------------------------------------------------------------------------------------
// update

#[test]
fn chinese_prompt_submits_as_typed() {
    let text = "夜晚的海边小镇，灯火通明，赛博朋克风格";
    let mut m = model();
    assert!(type_text(&mut m, text).is_empty());
    assert_eq!(m.prompt(), text);
    let fx = press(&mut m, ctrl('s'));
    match fx.as_slice() {
        [Effect::Submit(s)] => {
            assert_eq!(s.params.prompt, text);
            assert_eq!(s.params.model, m.params.model);
            assert_eq!(s.provider, "demo");
            assert!(!s.front);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn empty_prompt_is_an_error_notice_without_effects() {
    for text in ["", "   ", "\n\n"] {
        let mut m = model();
        update(&mut m, Msg::Paste(text.into()));
        let fx = press(&mut m, ctrl('s'));
        assert!(fx.is_empty(), "{text:?}: {fx:?}");
        let n = m.current_notice().expect("a notice");
        assert!(n.error, "{n:?}");
        assert!(n.text.contains("empty"), "{n:?}");
    }
}

#[test]
fn rejected_prompt_names_the_field() {
    let cases: &[(&str, usize, &str)] =
        &[("dall-e-2", 1001, "prompt"), ("dall-e-3", 4001, "prompt")];
    for (model_name, len, field) in cases {
        let mut m = model();
        m.params.model = (*model_name).into();
        update(&mut m, Msg::Paste("a".repeat(*len)));
        let fx = press(&mut m, ctrl('s'));
        assert!(fx.is_empty(), "{model_name}: {fx:?}");
        let n = m.current_notice().expect("a notice");
        assert!(n.error);
        assert!(n.text.contains(&format!("{field}:")), "{n:?}");
        assert!(n.text.contains(model_name), "{n:?}");
        // One character less is fine.
        press(&mut m, plain(KeyCode::Backspace));
        assert!(
            matches!(press(&mut m, ctrl('s')).as_slice(), [Effect::Submit(_)]),
            "{model_name}"
        );
    }
    // A field the model does not take: n = 3 for dall-e-3.
    let mut m = model();
    m.params.model = "dall-e-3".into();
    m.params.n = 3;
    type_text(&mut m, "fox");
    assert!(press(&mut m, ctrl('s')).is_empty());
    assert!(m.current_notice().unwrap().text.contains("n:"));
}

#[test]
fn paste_is_sanitised() {
    let cases: &[(&str, &str)] = &[
        (
            "hello\x1b]52;c;aGVsbG8=\x07world",
            "hello]52;c;aGVsbG8=world",
        ),
        ("red\x1b[31m fox", "red[31m fox"),
        ("evil\u{202e}txt", "eviltxt"),
        ("zero\u{200b}width", "zerowidth"),
        ("c1\u{9b}31m", "c131m"),
        ("two\r\nlines", "two\nlines"),
        ("tab\there", "tab    here"),
        ("夜晚", "夜晚"),
    ];
    for ((input, want), pane) in cases.iter().zip(
        [Pane::Queue, Pane::History, Pane::Params]
            .into_iter()
            .cycle(),
    ) {
        let mut m = model();
        // From any pane (the history list without its search line too) it goes to the editor.
        m.focus = pane;
        update(&mut m, Msg::Paste((*input).into()));
        assert_eq!(m.focus, Pane::Editor, "{input:?}");
        assert_eq!(m.prompt(), *want, "{input:?}");
        assert!(
            !m.prompt()
                .chars()
                .any(|c| easel::sanitize::is_unsafe(c) && c != '\n'),
            "{input:?}"
        );
    }
    // Pasted into the history search line: one line, sanitised, and it searches.
    let mut m = rich();
    m.focus = Pane::History;
    press(&mut m, ch('/'));
    let fx = update(&mut m, Msg::Paste("a\x1b[2Jb\nc".into()));
    assert_eq!(m.history.search.as_deref(), Some("a[2Jb c"));
    assert!(fx.iter().any(|e| matches!(e, Effect::LoadHistory { query, .. } if query.text.as_deref() == Some("a[2Jb c"))));
}

#[test]
fn job_events_move_jobs_through_the_queue() {
    let mut m = model();
    assert_eq!(m.focus, Pane::Editor);
    let queued = rec(20, "a fox", Status::Queued);
    update(&mut m, Msg::Job(JobEvent::Queued(Box::new(queued.clone()))));
    assert_eq!((m.queue.running(), m.queue.waiting()), (0, 1));

    let mut running = queued.clone();
    running.status = Status::Running;
    running.started = Some(t0());
    running.attempts = 1;
    update(
        &mut m,
        Msg::Job(JobEvent::Started(Box::new(running.clone()))),
    );
    assert_eq!((m.queue.running(), m.queue.waiting()), (1, 0));

    // A partial: with the editor focused, the preview asks for it with the bytes.
    let bytes = bytes::Bytes::from(png(64, 64));
    let fx = update(
        &mut m,
        Msg::Job(JobEvent::Partial {
            id: id(20),
            index: 0,
            bytes: bytes.clone(),
        }),
    );
    assert_eq!(m.queue.jobs[0].partial, Some(0));
    match fx.as_slice() {
        [
            Effect::RenderPreview {
                key,
                bytes: Some(b),
            },
        ] => {
            assert_eq!(
                key.source,
                PreviewSource::Partial {
                    id: id(20),
                    index: 0
                }
            );
            assert_eq!(*b, bytes);
            assert_eq!(Some(key.clone()), preview_key(&m));
        }
        other => panic!("{other:?}"),
    }
    // Asked once, not on every message.
    assert!(update(&mut m, Msg::Tick(t0() + Duration::seconds(1))).is_empty());
    // A newer partial is asked for in turn.
    let fx = update(
        &mut m,
        Msg::Job(JobEvent::Partial {
            id: id(20),
            index: 1,
            bytes: bytes.clone(),
        }),
    );
    assert!(
        matches!(fx.as_slice(), [Effect::RenderPreview { key, bytes: Some(_) }] if key.source == PreviewSource::Partial { id: id(20), index: 1 })
    );

    let mut done = running.clone();
    done.status = Status::Succeeded;
    done.finished = Some(t0() + Duration::seconds(9));
    done.outputs = vec![image("images/20.png")];
    done.cost_usd = Some(0.04);
    let fx = update(&mut m, Msg::Job(JobEvent::Succeeded(Box::new(done))));
    assert!(m.queue.jobs.is_empty());
    assert!(m.preview.partials.is_empty());
    assert!((m.spend - 0.04).abs() < 1e-9);
    let n = m.current_notice().expect("a notice");
    assert!(!n.error && n.text.contains("done: 1 image"), "{n:?}");
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadHistory { offset: 0, .. })),
        "{fx:?}"
    );
}

#[test]
fn partial_previews_follow_the_focus() {
    let mut m = model();
    let mut running = rec(20, "a fox", Status::Running);
    running.started = Some(t0());
    update(&mut m, Msg::Job(JobEvent::Started(Box::new(running))));
    update(
        &mut m,
        Msg::Job(JobEvent::Partial {
            id: id(20),
            index: 0,
            bytes: bytes::Bytes::from(png(8, 8)),
        }),
    );
    for (focus, partial) in [
        (Pane::Editor, true),
        (Pane::Params, true),
        (Pane::Queue, true),
        (Pane::History, false),
    ] {
        m.focus = focus;
        let key = preview_key(&m);
        assert_eq!(
            key.is_some_and(|k| matches!(k.source, PreviewSource::Partial { .. })),
            partial,
            "{focus:?}"
        );
    }
    // Without graphics, nothing is asked for.
    m.graphics = easel::studio::model::Graphics::None;
    m.focus = Pane::Editor;
    assert!(preview_key(&m).is_none());
}

#[test]
fn ended_jobs_in_the_queue_can_be_retried_or_dismissed() {
    let mut m = model();
    m.focus = Pane::Queue;
    update(
        &mut m,
        Msg::Job(JobEvent::Failed(Box::new(rec(
            40,
            "a heron",
            Status::Failed,
        )))),
    );
    update(
        &mut m,
        Msg::Job(JobEvent::Cancelled(Box::new(rec(
            41,
            "a crane",
            Status::Cancelled,
        )))),
    );
    assert_eq!(m.queue.jobs.len(), 2);
    m.queue.selected = 0;
    let fx = update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Char('r'), KeyModifiers::NONE)),
    );
    assert!(
        matches!(fx.as_slice(), [Effect::Retry(i)] if *i == id(40)),
        "{fx:?}"
    );
    m.queue.selected = 1;
    let fx = update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Char('x'), KeyModifiers::NONE)),
    );
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(m.queue.jobs.len(), 1);
    assert_eq!(m.queue.jobs[0].record.id, id(40));
}

/// An error on the status line (a mask file refused, an edit not queued) is not pushed off
/// by jobs finishing meanwhile: with the service, other programs' jobs end every second, and
/// the error was never seen (and a key then acknowledged it unseen). Once it is read, the
/// next job's "done" shows again.
#[test]
fn an_error_is_not_hidden_by_jobs_finishing() {
    let mut m = model();
    update(
        &mut m,
        Msg::Problem("not queued: image: x.png is a folder".into()),
    );
    let error = |m: &Model| {
        m.current_notice()
            .is_some_and(|n| n.error && n.text.contains("is a folder"))
    };
    assert!(error(&m));
    for n in 40..45 {
        let mut done = rec(n, "from another program", Status::Succeeded);
        done.outputs = vec![image(&format!("/data/easel/{n}.png"))];
        update(&mut m, Msg::Job(JobEvent::Succeeded(Box::new(done))));
        assert!(error(&m), "{:?}", m.current_notice());
    }
    // Read (a key after it has been up a while): jobs say "done" again.
    update(&mut m, Msg::Tick(t0() + Duration::seconds(NOTICE_SECS)));
    press(&mut m, plain(KeyCode::Right));
    let mut done = rec(46, "the next one", Status::Succeeded);
    done.outputs = vec![image("/data/easel/46.png")];
    update(&mut m, Msg::Job(JobEvent::Succeeded(Box::new(done))));
    assert!(
        m.current_notice()
            .is_some_and(|n| !n.error && n.text.contains("done")),
        "{:?}",
        m.current_notice()
    );
}

#[test]
fn failed_job_notice_stays_until_read() {
    let mut m = model();
    update(
        &mut m,
        Msg::Job(JobEvent::Started(Box::new(rec(
            30,
            "a fox",
            Status::Running,
        )))),
    );
    let mut failed = rec(30, "a fox", Status::Failed);
    failed.error.as_mut().unwrap().message = "content policy: the request was rejected".into();
    let fx = update(&mut m, Msg::Job(JobEvent::Failed(Box::new(failed))));
    // The failed job stays in the queue pane, marked failed, so it can be retried there.
    assert_eq!(m.queue.jobs.len(), 1);
    assert_eq!(m.queue.jobs[0].record.status, Status::Failed);
    assert_eq!(m.queue.running() + m.queue.waiting(), 0);
    assert!(fx.iter().any(|e| matches!(e, Effect::LoadHistory { .. })));
    let shown = |m: &Model| {
        m.current_notice()
            .is_some_and(|n| n.error && n.text.contains("content policy"))
    };
    assert!(shown(&m));
    // It stays a while (the failed job stays in the queue pane for good)…
    update(
        &mut m,
        Msg::Tick(t0() + Duration::seconds(easel::studio::model::ERROR_SECS - 1)),
    );
    assert!(shown(&m));
    // …and expires by itself, as every status message does.
    update(
        &mut m,
        Msg::Tick(t0() + Duration::seconds(easel::studio::model::ERROR_SECS)),
    );
    assert!(m.current_notice().is_none());
    update(&mut m, Msg::Tick(t0() + Duration::seconds(NOTICE_SECS)));
    assert!(shown(&m));
    // A key after it has been up long enough hides it sooner.
    press(&mut m, plain(KeyCode::Right));
    assert!(m.current_notice().is_none(), "{:?}", m.current_notice());

    // A key pressed before NOTICE_SECS leaves it up.
    let mut m = model();
    update(
        &mut m,
        Msg::Job(JobEvent::Failed(Box::new(rec(31, "x", Status::Failed)))),
    );
    update(&mut m, Msg::Tick(t0() + Duration::seconds(NOTICE_SECS - 1)));
    press(&mut m, plain(KeyCode::Right));
    assert!(m.current_notice().is_some_and(|n| n.error));
    update(&mut m, Msg::Tick(t0() + Duration::seconds(NOTICE_SECS)));
    assert!(m.current_notice().is_some_and(|n| n.error));
    press(&mut m, plain(KeyCode::Right));
    assert!(m.current_notice().is_none());

    // Informational notices go by themselves.
    let mut m = model();
    update(&mut m, Msg::Job(JobEvent::Paused(true)));
    assert!(m.current_notice().is_some_and(|n| !n.error));
    update(&mut m, Msg::Tick(t0() + Duration::seconds(NOTICE_SECS)));
    assert!(m.current_notice().is_none());
}

#[test]
fn other_job_events() {
    let mut m = rich();
    // Retrying adds a note; reorder follows the scheduler's order, running first.
    update(
        &mut m,
        Msg::Job(JobEvent::Retrying {
            id: id(10),
            retry: 1,
            wait: std::time::Duration::from_millis(2000),
            reason: "HTTP 503\x1b[2J".into(),
        }),
    );
    assert_eq!(
        m.queue.jobs[0].note.as_deref(),
        Some("retry 1 in 2.0 s: HTTP 503[2J")
    );
    update(&mut m, Msg::Job(JobEvent::Reordered(vec![id(12), id(11)])));
    let order: Vec<Id> = m.queue.jobs.iter().map(|j| j.record.id).collect();
    assert_eq!(order, vec![id(10), id(12), id(11)]);
    // Cancelling the last one keeps the selection inside the list.
    m.queue.selected = 2;
    update(
        &mut m,
        Msg::Job(JobEvent::Cancelled(Box::new(rec(
            11,
            "job 11",
            Status::Cancelled,
        )))),
    );
    // The cancelled job stays (last, marked cancelled) for a retry or a dismissal.
    assert_eq!(m.queue.jobs.len(), 3);
    assert_eq!(m.queue.waiting(), 1);
    assert_eq!(m.queue.jobs[2].record.status, Status::Cancelled);
    assert_eq!(m.queue.selected, 2);
    update(&mut m, Msg::Job(JobEvent::Paused(true)));
    assert!(m.queue.paused);
    m.focus = Pane::Queue;
    assert!(matches!(
        press(&mut m, ch('p')).as_slice(),
        [Effect::Pause(false)]
    ));
    // The queue as stored at start keeps only unfinished jobs.
    update(
        &mut m,
        Msg::QueueLoaded(vec![
            rec(40, "a", Status::Queued),
            rec(41, "b", Status::Succeeded),
            rec(42, "c", Status::Running),
        ]),
    );
    assert_eq!(m.queue.jobs.len(), 2);
}

#[test]
fn history_paging_loads_only_needed_pages_and_bounds_memory() {
    const TOTAL: usize = 100_000;
    let make_page = |offset: usize| -> Vec<GenerationRecord> {
        (offset..(offset + PAGE).min(TOTAL))
            .map(|i| rec(1000 + i as u128, &format!("prompt {i}"), Status::Succeeded))
            .collect()
    };
    for (w, h) in [(80u16, 24u16), (200, 60), (40, 12)] {
        let mut m = model();
        m.graphics = easel::studio::model::Graphics::None;
        let fx = update(&mut m, Msg::Resize(w, h));
        // The first page is asked for once: at start (by the 80x24 resize in `model`).
        assert!(load_effects(&fx).is_empty(), "{fx:?}");
        assert_eq!(m.history.pending, vec![0]);
        let mut outstanding: Vec<usize> = vec![0];
        m.focus = Pane::History;
        let keys = [
            plain(KeyCode::PageDown),
            plain(KeyCode::PageDown),
            ch('j'),
            ch('G'),
            plain(KeyCode::PageUp),
            ch('k'),
            ch('g'),
            plain(KeyCode::End),
        ];
        let mut moves = 0;
        let mut i = 0;
        while moves < 400 {
            // Deliver what was asked for, one page at a time, collecting what that asks next.
            while let Some(offset) = outstanding.pop() {
                let fx = page(&mut m, offset, TOTAL, make_page(offset));
                for (generation, offset, limit) in load_effects(&fx) {
                    assert_eq!(generation, m.history.generation);
                    assert_eq!(offset % PAGE, 0);
                    assert_eq!(limit, PAGE);
                    assert!(offset < TOTAL);
                    outstanding.push(offset);
                }
                assert!(
                    m.history.rows.len() <= KEEP,
                    "{w}x{h}: {} rows kept",
                    m.history.rows.len()
                );
            }
            // Once the pages asked for have arrived, every visible row is there.
            let missing = missing_visible_rows(&m);
            assert!(
                missing.is_empty(),
                "{w}x{h} after {moves} moves: rows {missing:?} never loaded (selected {})",
                m.history.selected
            );
            // Mostly page down, with a few jumps.
            let k = if moves % 50 == 49 {
                keys[i % keys.len()]
            } else {
                plain(KeyCode::PageDown)
            };
            i += usize::from(moves % 50 == 49);
            let fx = press(&mut m, k);
            let loads = load_effects(&fx);
            assert!(loads.len() <= 3, "{w}x{h} {k:?}: {loads:?}");
            for (generation, offset, limit) in loads {
                assert_eq!(generation, m.history.generation);
                assert_eq!(offset % PAGE, 0, "{offset}");
                assert_eq!(limit, PAGE);
                assert!(offset < TOTAL);
                // The selection's page or a neighbour.
                assert!(
                    offset.abs_diff(m.history.selected) <= 2 * PAGE + usize::from(h),
                    "{offset} vs {}",
                    m.history.selected
                );
                assert!(!outstanding.contains(&offset), "asked twice for {offset}");
                outstanding.push(offset);
            }
            assert!(m.history.rows.len() <= KEEP);
            moves += 1;
        }
        // Deliver the rest, then every visible row is loaded.
        while let Some(offset) = outstanding.pop() {
            let fx = page(&mut m, offset, TOTAL, make_page(offset));
            outstanding.extend(load_effects(&fx).into_iter().map(|(_, o, _)| o));
        }
        assert!(m.history.rows.len() <= KEEP);
        assert!(m.history.selected < TOTAL);
        assert!(
            m.history.selected_record().is_some(),
            "{w}x{h}: selected {}",
            m.history.selected
        );
        assert!(m.history.pending.is_empty(), "{:?}", m.history.pending);
    }
}

/// Visible history positions without a loaded row.
fn missing_visible_rows(m: &Model) -> Vec<usize> {
    let a = easel::studio::layout::compute(m.width, m.height);
    let rows = usize::from(easel::studio::layout::inner(a.history).height.max(1));
    let h = &m.history;
    (h.scroll..h.total.min(h.scroll + rows))
        .filter(|p| !h.rows.contains_key(p))
        .collect()
}

#[test]
fn scrolling_down_up_and_down_again_keeps_rows_loaded() {
    const TOTAL: usize = 100_000;
    let mut m = model();
    m.graphics = easel::studio::model::Graphics::None;
    m.focus = Pane::History;
    let mut outstanding = vec![0usize];
    let deliver = |m: &mut Model, outstanding: &mut Vec<usize>| {
        while let Some(offset) = outstanding.pop() {
            let records = (offset..offset + PAGE)
                .map(|i| rec(1000 + i as u128, "p", Status::Succeeded))
                .collect();
            let fx = page(m, offset, TOTAL, records);
            outstanding.extend(load_effects(&fx).into_iter().map(|(_, o, _)| o));
        }
    };
    let script: &[(KeyEvent, usize)] = &[
        (plain(KeyCode::PageDown), 500),
        (ch('k'), 330),
        (ch('j'), 400),
        (ch('k'), 700),
        (ch('j'), 900),
    ];
    for (k, times) in script {
        for n in 0..*times {
            deliver(&mut m, &mut outstanding);
            let missing = missing_visible_rows(&m);
            assert!(
                missing.is_empty(),
                "{k:?} #{n}: rows {missing:?} never loaded (selected {})",
                m.history.selected
            );
            assert!(m.history.rows.len() <= KEEP);
            outstanding.extend(
                load_effects(&press(&mut m, *k))
                    .into_iter()
                    .map(|(_, o, _)| o),
            );
        }
    }
}

#[test]
fn bottom_jump_asks_for_the_last_pages_only() {
    let mut m = model();
    m.graphics = easel::studio::model::Graphics::None;
    page(
        &mut m,
        0,
        100_000,
        (0..100).map(|i| rec(i, "x", Status::Succeeded)).collect(),
    );
    m.focus = Pane::History;
    let fx = press(&mut m, ch('G'));
    assert_eq!(m.history.selected, 99_999);
    let offsets: Vec<usize> = load_effects(&fx).into_iter().map(|(_, o, _)| o).collect();
    assert_eq!(offsets, vec![99_900]);
    // Pressing it again asks for nothing more.
    assert!(load_effects(&press(&mut m, ch('G'))).is_empty());
}

/// A search typed while the list is scrolled far down: the first answer is for the old place
/// (an empty page past the few matches), the selection goes back to the top, and the top rows
/// are then asked for. They were not: the match stayed "…" until a key was pressed, and `d`,
/// `L` or `E` on it did nothing.
#[test]
fn a_search_from_far_down_the_list_loads_its_first_rows() {
    let mut m = model();
    m.graphics = easel::studio::model::Graphics::None;
    page(
        &mut m,
        0,
        1_000,
        (0..100).map(|i| rec(i, "x", Status::Succeeded)).collect(),
    );
    m.focus = Pane::History;
    press(&mut m, ch('G'));
    page(
        &mut m,
        900,
        1_000,
        (900..1_000)
            .map(|i| rec(i, "x", Status::Succeeded))
            .collect(),
    );
    assert_eq!(m.history.selected, 999);
    press(&mut m, ch('/'));
    let fx = type_text(&mut m, "night");
    let (_, offset, _) = *load_effects(&fx)
        .last()
        .expect("the search asks for a page");
    assert!(offset > 0, "{offset}");
    // One match: the page asked for is past it, and empty.
    let fx = page_with(&mut m, offset, 1, vec![], Some((id(999), Located::Unknown)));
    assert_eq!(m.history.selected, 0);
    assert!(
        load_effects(&fx).iter().any(|(_, o, _)| *o == 0),
        "the first rows are asked for: {fx:?}"
    );
    page(&mut m, 0, 1, vec![rec(5, "night scene", Status::Succeeded)]);
    assert_eq!(m.history.selected_record().map(|r| r.id), Some(id(5)));
    // No match at all: one empty answer, nothing asked again (no loop of reads).
    press(&mut m, ch('x'));
    let fx = page_with(&mut m, 0, 0, vec![], None);
    assert!(load_effects(&fx).is_empty(), "{fx:?}");
}

#[test]
fn stale_pages_are_ignored() {
    let mut m = model();
    let old = m.history.generation;
    page(&mut m, 0, 4, history_records());
    m.focus = Pane::History;
    // A new query: pages for the old one no longer count.
    press(&mut m, ch('f'));
    assert_ne!(m.history.generation, old);
    let fx = update(
        &mut m,
        Msg::HistoryPage {
            generation: old,
            offset: 0,
            total: 999,
            records: vec![rec(99, "stale", Status::Succeeded)],
            anchor: None,
        },
    );
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(m.history.total, 4);
    assert!(m.history.rows.is_empty());
    page(
        &mut m,
        0,
        1,
        vec![rec(4, "a lighthouse at dusk", Status::Succeeded)],
    );
    assert_eq!(m.history.total, 1);
    assert_eq!(m.history.rows.len(), 1);
}

#[test]
fn search_reloads_with_the_typed_text() {
    let mut m = rich();
    m.focus = Pane::History;
    press(&mut m, ch('j'));
    press(&mut m, ch('j'));
    assert_eq!(m.history.selected, 2);
    let before = m.history.generation;
    assert!(press(&mut m, ch('/')).is_empty());
    let mut last = Vec::new();
    for c in "海边 fox".chars() {
        let fx = press(&mut m, ch(c));
        last = fx;
    }
    // The reload asked where the selected record stands.
    assert!(
        last.iter()
            .any(|e| matches!(e, Effect::LoadHistory { anchor: Some(a), .. } if *a == id(3))),
        "{last:?}"
    );
    let loads: Vec<_> = last
        .iter()
        .filter_map(|e| match e {
            Effect::LoadHistory {
                generation,
                query,
                offset,
                ..
            } => Some((*generation, query.clone(), *offset)),
            _ => None,
        })
        .collect();
    assert_eq!(loads.len(), 1, "{last:?}");
    let (generation, query, offset) = &loads[0];
    assert_eq!(query.text.as_deref(), Some("海边 fox"));
    assert_eq!(*offset, 0);
    assert_eq!(*generation, m.history.generation);
    assert!(m.history.generation > before);
    // Plain letters are text on the search line, not commands.
    assert!(!m.quitting);
    // Backspace narrows.
    let fx = press(&mut m, plain(KeyCode::Backspace));
    assert!(fx.iter().any(|e| matches!(e, Effect::LoadHistory { query, .. } if query.text.as_deref() == Some("海边 fo"))));
    // Enter keeps the text and leaves the line.
    press(&mut m, plain(KeyCode::Enter));
    assert!(m.history.search.is_none());
    assert_eq!(m.history.text, "海边 fo");
    assert_eq!(m.history.query().text.as_deref(), Some("海边 fo"));
    // `/` again, then Esc clears the search.
    press(&mut m, ch('/'));
    assert_eq!(m.history.search.as_deref(), Some("海边 fo"));
    let fx = press(&mut m, plain(KeyCode::Esc));
    assert!(m.history.search.is_none());
    assert!(m.history.text.is_empty());
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadHistory { query, .. } if query.text.is_none())),
        "{fx:?}"
    );
    // Esc on an empty search line just closes it.
    press(&mut m, ch('/'));
    assert!(load_effects(&press(&mut m, plain(KeyCode::Esc))).is_empty());
    // Ctrl-U clears the line.
    press(&mut m, ch('/'));
    type_text(&mut m, "abc");
    let fx = press(&mut m, ctrl('u'));
    assert_eq!(m.history.search.as_deref(), Some(""));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadHistory { query, .. } if query.text.is_none()))
    );
}

type QueryCheck = fn(&easel::store::Query) -> bool;

#[test]
fn filters_cycle_with_the_right_query() {
    let mut m = rich();
    m.params.model = "dall-e-3".into();
    m.focus = Pane::History;
    let expect: [(Filter, QueryCheck); 6] = [
        (Filter::Starred, |q| {
            q.starred && q.status.is_none() && q.model.is_none()
        }),
        (Filter::Failed, |q| {
            !q.starred && q.status == Some(Status::Failed) && q.model.is_none()
        }),
        (Filter::Cancelled, |q| {
            !q.starred && q.status == Some(Status::Cancelled) && q.model.is_none()
        }),
        (Filter::Interrupted, |q| {
            !q.starred && q.status == Some(Status::Interrupted) && q.model.is_none()
        }),
        (Filter::Model("dall-e-3".into()), |q| {
            !q.starred && q.status.is_none() && q.model.as_deref() == Some("dall-e-3")
        }),
        (Filter::All, |q| q.is_everything()),
    ];
    for round in 0..2 {
        for (filter, ok) in &expect {
            m.history.selected = 1;
            let fx = press(&mut m, ch('f'));
            assert_eq!(&m.history.filter, filter);
            let queries: Vec<_> = fx
                .iter()
                .filter_map(|e| match e {
                    Effect::LoadHistory {
                        query,
                        offset: 0,
                        generation,
                        ..
                    } if *generation == m.history.generation => Some(query.clone()),
                    _ => None,
                })
                .collect();
            assert_eq!(queries.len(), 1, "round {round} {filter:?}: {fx:?}");
            assert!(ok(&queries[0]), "{filter:?}: {:?}", queries[0]);
            // Feed the page so the next cycle starts from a loaded list.
            page(&mut m, 0, 4, history_records());
        }
    }
}

#[test]
fn reuse_loads_prompt_and_params() {
    let mut m = rich();
    let mut r = rec(50, "line one\nline two\x1b[2J", Status::Succeeded);
    r.params.model = "dall-e-3".into();
    r.params.size = Some("1792x1024".into());
    r.params.style = Some("vivid".into());
    r.params.quality = Some("hd".into());
    r.model = "dall-e-3".into();
    page(&mut m, 0, 1, vec![r]);
    m.focus = Pane::History;
    let fx = press(&mut m, ch('e'));
    assert!(
        fx.iter().all(|e| matches!(e, Effect::RenderPreview { .. })),
        "{fx:?}"
    );
    assert_eq!(m.focus, Pane::Editor);
    assert_eq!(m.prompt(), "line one\nline two[2J");
    assert_eq!(m.params.model, "dall-e-3");
    assert_eq!(m.params.size.as_deref(), Some("1792x1024"));
    assert_eq!(m.params.style.as_deref(), Some("vivid"));
    assert_eq!(m.params.quality.as_deref(), Some("hd"));
    assert!(m.params.prompt.is_empty(), "the prompt lives in the editor");
    // And it submits as it was.
    match press(&mut m, ctrl('s')).as_slice() {
        [Effect::Submit(s)] => {
            assert_eq!(s.params.prompt, "line one\nline two[2J");
            assert_eq!(s.params.style.as_deref(), Some("vivid"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rerun_and_retry() {
    let mut m = rich();
    m.focus = Pane::History;
    let mut r = rec(60, "a heron", Status::Succeeded);
    r.params.n = 2;
    let cases = vec![
        (r, "submit"),
        (rec(61, "x", Status::Failed), "retry"),
        (rec(62, "x", Status::Cancelled), "retry"),
        (rec(63, "x", Status::Interrupted), "retry"),
        (rec(64, "x", Status::Running), "none"),
        (rec(65, "x", Status::Queued), "none"),
    ];
    for (r, want) in cases {
        page(&mut m, 0, 1, vec![r.clone()]);
        let fx: Vec<Effect> = press(&mut m, ch('r'))
            .into_iter()
            .filter(|e| !matches!(e, Effect::RenderPreview { .. }))
            .collect();
        match (want, fx.as_slice()) {
            ("submit", [Effect::Submit(s)]) => {
                assert_eq!(s.parent, Some(r.id));
                assert_eq!(s.params.prompt, r.prompt);
                assert_eq!(s.params.n, 2);
            }
            ("retry", [Effect::Retry(i)]) => assert_eq!(*i, r.id),
            ("none", []) => {}
            (want, other) => panic!("{:?}: wanted {want}, got {other:?}", r.status),
        }
    }
}

#[test]
fn deletion_and_store_outcomes() {
    let mut m = rich();
    m.focus = Pane::History;
    press(&mut m, ch('d'));
    // Enter confirms too.
    assert!(
        matches!(press(&mut m, plain(KeyCode::Enter)).as_slice(), [Effect::Delete(i)] if *i == id(1))
    );
    let g = m.history.generation;
    update(
        &mut m,
        Msg::Stored(easel::studio::msg::StoreOutcome::Deleted(id(1))),
    );
    assert!(m.current_notice().unwrap().text.starts_with("moved"));
    // The scheduler announces the delete to every client: the list reloads.
    let fx = update(&mut m, Msg::Job(JobEvent::Deleted(id(1))));
    assert!(m.history.generation > g);
    assert!(fx.iter().any(|e| matches!(e, Effect::LoadHistory { .. })));
    // A starred record replaces its row.
    page(&mut m, 0, 4, history_records());
    let mut starred = rec(1, "夜晚的海边小镇，灯火通明", Status::Succeeded);
    starred.starred = true;
    update(
        &mut m,
        Msg::Stored(easel::studio::msg::StoreOutcome::Starred(starred)),
    );
    assert!(m.history.rows[&0].starred);
    update(
        &mut m,
        Msg::Stored(easel::studio::msg::StoreOutcome::Failed(
            "disk full\x1b]52;c;eA==\x07".into(),
        )),
    );
    let n = m.current_notice().unwrap();
    assert!(
        n.error && !n.text.chars().any(easel::sanitize::is_unsafe),
        "{n:?}"
    );
}

#[test]
fn external_editor_result_replaces_the_prompt() {
    let mut m = model();
    m.focus = Pane::History;
    update(
        &mut m,
        Msg::EditorClosed("first\nsecond\u{202e}\n\n".into()),
    );
    assert_eq!(m.focus, Pane::Editor);
    assert_eq!(m.prompt(), "first\nsecond");
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 255 / w.max(1)) as u8, (y * 255 / h.max(1)) as u8, 128])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

// ---------------------------------------------------------------------------------------------
// Parameters: stepping never lands on a combination `request::check` rejects

fn check_ok(m: &Model) -> Result<(), String> {
    let mut p = m.params.clone();
    p.prompt = "a fox".into();
    request::check(&p, &m.catalog, &m.provider.rules)
        .map(|_| ())
        .map_err(|e| format!("{e} for {p:?}"))
}

#[test]
fn params_stepping_never_produces_a_rejected_combination() {
    let catalog = Catalog::builtin();
    let mut models: Vec<String> = catalog.names().iter().map(|s| s.to_string()).collect();
    models.push("mystery-model".into());
    let rules = [
        ProviderRules::default(),
        ProviderRules {
            name: "narrow".into(),
            dialect: None,
            fields: Some(vec![Field::Size, Field::Quality, Field::N]),
            variations: false,
        },
        ProviderRules {
            name: "bare".into(),
            dialect: None,
            fields: Some(vec![]),
            variations: false,
        },
    ];
    let keys = [
        ch('j'),
        ch('k'),
        ch('h'),
        ch('l'),
        plain(KeyCode::Up),
        plain(KeyCode::Down),
        plain(KeyCode::Left),
        plain(KeyCode::Right),
        plain(KeyCode::Enter),
    ];
    let mut rng = fastrand::Rng::with_seed(0x5eed_ea5e1);
    let mut steps = 0usize;
    let mut changes = 0usize;
    for run in 0..300 {
        let mut m = model();
        m.provider.rules = rules[run % rules.len()].clone();
        m.params.model = models[rng.usize(..models.len())].clone();
        m.focus = Pane::Params;
        check_ok(&m).unwrap_or_else(|e| panic!("run {run} starts rejected: {e}"));
        let len = rng.usize(1..120);
        let mut trail = Vec::new();
        for _ in 0..len {
            // Right/left steps are the interesting ones: weight them up.
            let k = if rng.bool() {
                keys[rng.usize(..keys.len())]
            } else {
                keys[2 + rng.usize(..2)]
            };
            trail.push(k.code);
            let before = m.params.clone();
            let fx = press(&mut m, k);
            assert!(
                fx.iter().all(|e| matches!(e, Effect::RenderPreview { .. })),
                "{fx:?}"
            );
            if let Err(e) = check_ok(&m) {
                panic!("run {run} after {trail:?}: {e}");
            }
            let rows = easel::studio::params::rows(&m.catalog, &m.params);
            assert!(
                m.param_cursor < rows.len(),
                "cursor {} of {} rows",
                m.param_cursor,
                rows.len()
            );
            assert_eq!(m.focus, Pane::Params);
            changes += usize::from(before != m.params);
            steps += 1;
        }
    }
    // The loop did explore: many steps changed something.
    assert!(changes > steps / 10, "{changes} changes in {steps} steps");
}

// ---------------------------------------------------------------------------------------------
// The selection stays on a record (history) and on a job (queue), not on a row number.

/// Eight succeeded records, newest (9) first.
fn eight() -> Vec<GenerationRecord> {
    (2..=9)
        .rev()
        .map(|n| rec(n, &format!("picture {n}"), Status::Succeeded))
        .collect()
}

/// Eight records in history, the fourth selected.
fn on_the_fourth_of_eight() -> Model {
    let mut m = model();
    page(&mut m, 0, 8, eight());
    m.focus = Pane::History;
    for _ in 0..3 {
        press(&mut m, ch('j'));
    }
    m
}

#[test]
fn history_selection_follows_its_record_when_a_new_one_lands_on_top() {
    let mut m = on_the_fourth_of_eight();
    let chosen = m.history.selected_record().unwrap().id;
    assert_eq!(chosen, id(6));
    // A generation finishes: it lands on top of history.
    let mut fresh = rec(1, "the new one", Status::Succeeded);
    fresh.created = t0();
    let fx = update(
        &mut m,
        Msg::Job(JobEvent::Succeeded(Box::new(fresh.clone()))),
    );
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadHistory { anchor: Some(a), .. } if *a == chosen)),
        "{fx:?}"
    );
    let mut rows = vec![fresh];
    rows.extend(eight());
    page(&mut m, 0, 9, rows);
    assert_eq!(m.history.selected, 4);
    assert_eq!(m.history.selected_record().unwrap().id, chosen);
    // s, y and d act on that record.
    assert!(matches!(press(&mut m, ch('s')).as_slice(), [Effect::Star(i, true)] if *i == chosen));
    press(&mut m, ch('d'));
    assert!(
        matches!(&m.overlay, Some(Overlay::Confirm(Confirm::Delete(r))) if r.id == chosen && r.prompt == "picture 6")
    );
    assert!(matches!(press(&mut m, ch('y')).as_slice(), [Effect::Delete(i)] if *i == chosen));
}

#[test]
fn history_selection_goes_to_the_nearest_neighbour_when_its_record_goes() {
    let mut m = on_the_fourth_of_eight();
    assert_eq!(m.history.selected_record().unwrap().id, id(6));
    update(&mut m, Msg::Job(JobEvent::Deleted(id(6))));
    // The store says where it would have been: the next older record stands there now.
    let rest: Vec<_> = eight().into_iter().filter(|r| r.id != id(6)).collect();
    page_with(&mut m, 0, 7, rest, Some((id(6), Located::Near(3))));
    assert_eq!(m.history.selected, 3);
    assert_eq!(m.history.selected_record().unwrap().id, id(5));
    // And the selection now follows that one.
    let fx = update(&mut m, Msg::Job(JobEvent::Deleted(id(9))));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadHistory { anchor: Some(a), .. } if *a == id(5)))
    );
}

#[test]
fn history_selection_follows_its_record_through_filters_and_searches() {
    let mut m = model();
    let mut rows = eight();
    rows[5].starred = true; // picture 4
    page(&mut m, 0, 8, rows.clone());
    m.focus = Pane::History;
    for _ in 0..5 {
        press(&mut m, ch('j'));
    }
    assert_eq!(m.history.selected_record().unwrap().id, id(4));
    // Starred only: it is the one row.
    press(&mut m, ch('f'));
    page(&mut m, 0, 1, vec![rows[5].clone()]);
    assert_eq!(m.history.selected, 0);
    assert_eq!(m.history.selected_record().unwrap().id, id(4));
    // A search that no longer finds it goes to the top.
    press(&mut m, ch('/'));
    type_text(&mut m, "zzz");
    page(&mut m, 0, 0, vec![]);
    assert_eq!(m.history.selected, 0);
}

#[test]
fn a_moved_job_keeps_the_queue_cursor() {
    let mut m = rich();
    m.focus = Pane::Queue;
    // Running 10, then waiting 11 and 12; select 11.
    press(&mut m, ch('j'));
    assert_eq!(m.queue.selected_job().unwrap().record.id, id(11));
    let fx = press(&mut m, ch('J'));
    assert!(matches!(fx.as_slice(), [Effect::MoveJob(i, QueueMove::Down)] if *i == id(11)));
    update(&mut m, Msg::Job(JobEvent::Reordered(vec![id(12), id(11)])));
    assert_eq!(m.queue.selected_job().unwrap().record.id, id(11));
    assert_eq!(m.queue.selected, 2);
    // K now moves the same job back up.
    let fx = press(&mut m, ch('K'));
    assert!(matches!(fx.as_slice(), [Effect::MoveJob(i, QueueMove::Up)] if *i == id(11)));
    // A job queued at the front (Alt-S) is listed where it will run, and the cursor stays.
    update(
        &mut m,
        Msg::Job(JobEvent::Queued(Box::new(rec(
            13,
            "urgent",
            Status::Queued,
        )))),
    );
    update(
        &mut m,
        Msg::Job(JobEvent::Reordered(vec![id(13), id(12), id(11)])),
    );
    let order: Vec<Id> = m.queue.jobs.iter().map(|j| j.record.id).collect();
    assert_eq!(order, vec![id(10), id(13), id(12), id(11)]);
    assert_eq!(m.queue.selected_job().unwrap().record.id, id(11));
    // A job ending above it does not move the cursor onto another job.
    let mut done = rec(10, "job 10", Status::Succeeded);
    done.outputs = vec![image("images/x.png")];
    update(&mut m, Msg::Job(JobEvent::Succeeded(Box::new(done))));
    assert_eq!(m.queue.selected_job().unwrap().record.id, id(11));
}

#[test]
fn esc_in_the_list_clears_an_active_search() {
    let mut m = rich();
    m.focus = Pane::History;
    press(&mut m, ch('/'));
    type_text(&mut m, "fox");
    press(&mut m, plain(KeyCode::Enter));
    assert_eq!(m.history.text, "fox");
    let fx = press(&mut m, plain(KeyCode::Esc));
    assert!(m.history.text.is_empty());
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadHistory { query, .. } if query.text.is_none())),
        "{fx:?}"
    );
    // Without a search, Esc in the list does nothing.
    assert!(load_effects(&press(&mut m, plain(KeyCode::Esc))).is_empty());
}

#[test]
fn reuse_and_clear_can_be_undone() {
    let mut m = rich();
    type_text(&mut m, "my unsent draft");
    m.focus = Pane::History;
    press(&mut m, ch('e'));
    assert_eq!(m.prompt(), "夜晚的海边小镇，灯火通明");
    assert_eq!(m.focus, Pane::Editor);
    // Ctrl-U (undo) brings the draft back.
    for _ in 0..2 {
        if m.prompt() != "my unsent draft" {
            press(&mut m, ctrl('u'));
        }
    }
    assert_eq!(m.prompt(), "my unsent draft");
    // Ctrl-L clears the whole prompt, and that can be undone too.
    press(&mut m, ctrl('l'));
    assert_eq!(m.prompt(), "");
    press(&mut m, ctrl('u'));
    assert_eq!(m.prompt(), "my unsent draft");
}

#[test]
fn help_lists_the_focused_panes_keys_first_and_the_fixed_ones() {
    let m = rich();
    for (focus, first) in [
        (Pane::Editor, "editor"),
        (Pane::Queue, "queue"),
        (Pane::History, "history"),
    ] {
        let sections = easel::studio::help::sections(&m.keymap, focus);
        assert_eq!(sections[0].title, first);
        let titles: Vec<&str> = sections.iter().map(|s| s.title.as_str()).collect();
        assert!(titles.contains(&"editor text"), "{titles:?}");
        assert!(titles.contains(&"history search line"), "{titles:?}");
        let all: String = sections
            .iter()
            .flat_map(|s| s.rows.iter().map(|(k, d)| format!("{k} {d}")))
            .collect();
        assert!(all.contains("Ctrl-U undo"), "{all}");
        assert!(!all.contains(".md") && !all.contains("src/"), "{all}");
    }
    assert!(!easel::studio::help::FOOTNOTE.contains("docs/"));
}

#[test]
fn a_size_can_be_typed_and_is_checked_as_typed() {
    let mut m = model();
    m.params.model = "gpt-image-2".into();
    m.focus = Pane::Params;
    // The size row is the second.
    press(&mut m, ch('j'));
    update(&mut m, Msg::Resize(80, 24));
    m.param_cursor = 1;
    press(&mut m, ch('1'));
    assert_eq!(m.size_input.as_deref(), Some("1"));
    type_text(&mut m, "000x1000");
    press(&mut m, plain(KeyCode::Enter));
    // Not a multiple of 16: not set, and said why.
    assert_eq!(m.params.size, None);
    assert!(m.current_notice().unwrap().text.contains("multiples of 16"));
    for _ in 0..8 {
        press(&mut m, plain(KeyCode::Backspace));
    }
    type_text(&mut m, "536x864");
    press(&mut m, plain(KeyCode::Enter));
    assert_eq!(m.params.size.as_deref(), Some("1536x864"));
    assert!(m.size_input.is_none());
    // e opens it empty; Esc leaves the size as it was.
    press(&mut m, ch('e'));
    assert_eq!(m.size_input.as_deref(), Some(""));
    type_text(&mut m, "64x64");
    press(&mut m, plain(KeyCode::Esc));
    assert_eq!(m.params.size.as_deref(), Some("1536x864"));
}

#[test]
fn params_up_and_down_stay_in_their_column_and_fixed_values_name_the_fix() {
    let mut m = model();
    m.params.model = "gpt-image-2".into();
    update(&mut m, Msg::Resize(160, 50));
    assert!(!easel::studio::layout::compute(160, 50).compact_params);
    m.focus = Pane::Params;
    m.param_cursor = 1;
    press(&mut m, ch('j'));
    assert_eq!(m.param_cursor, 3, "down in the same column");
    press(&mut m, ch('k'));
    assert_eq!(m.param_cursor, 1);
    press(&mut m, ch('k'));
    assert_eq!(m.param_cursor, 1, "the top of the column");
    // Compression with png: the notice names the fix.
    let rows = easel::studio::params::rows(&m.catalog, &m.params);
    m.param_cursor = rows
        .iter()
        .position(|r| *r == easel::studio::params::Row::Compression)
        .unwrap();
    m.params.output_format = Some("png".into());
    press(&mut m, ch('l'));
    assert_eq!(
        m.current_notice().unwrap().text,
        "set format to jpeg or webp to change compression"
    );
}

#[test]
fn a_shut_down_model_asks_before_it_is_sent_to_openai_only() {
    for (openai, asks) in [(true, true), (false, false)] {
        let mut m = model();
        m.provider.openai = openai;
        m.provider.demo = false;
        m.now = chrono::Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        m.params.model = "gpt-image-1.5".into();
        type_text(&mut m, "an old friend");
        let fx = press(&mut m, ctrl('s'));
        if asks {
            assert!(fx.is_empty(), "{fx:?}");
            assert!(
                matches!(&m.overlay, Some(Overlay::Confirm(Confirm::ShutDownModel(_, why))) if why.contains("shut down") && why.contains("2026-12-01")),
                "{:?}",
                m.overlay
            );
            let fx = press(&mut m, ch('y'));
            assert!(
                matches!(fx.as_slice(), [Effect::Submit(s)] if s.params.model == "gpt-image-1.5")
            );
        } else {
            assert!(matches!(fx.as_slice(), [Effect::Submit(_)]), "{fx:?}");
        }
    }
}

#[test]
fn the_search_line_popups_and_confirmations_have_keys_that_can_be_rebound() {
    let cfg: KeyConfig = toml::from_str(
        r#"
        [search]
        keep_search = "tab"
        clear_line = "ctrl-w"
        [popup]
        down = "ctrl-n"
        [confirm]
        yes = "o"
        "#,
    )
    .unwrap();
    let keymap = Keymap::with_config(&cfg).unwrap();
    let mut m = new_model(keymap);
    page(&mut m, 0, 4, history_records());
    m.focus = Pane::History;
    press(&mut m, ch('/'));
    type_text(&mut m, "cat");
    press(&mut m, ctrl('w'));
    assert_eq!(m.history.search.as_deref(), Some(""));
    type_text(&mut m, "fox");
    // Enter is no longer bound: plain keys are text, Enter does nothing; Tab keeps the search.
    press(&mut m, plain(KeyCode::Tab));
    assert!(m.history.search.is_none());
    assert_eq!(m.history.text, "fox");
    page(&mut m, 0, 4, history_records());
    // Confirm with o; y is now "no".
    press(&mut m, ch('d'));
    assert!(press(&mut m, ch('y')).is_empty());
    press(&mut m, ch('d'));
    assert!(matches!(
        press(&mut m, ch('o')).as_slice(),
        [Effect::Delete(_)]
    ));
    // The help lists them.
    let sections = easel::studio::help::sections(&m.keymap, Pane::History);
    let search = sections
        .iter()
        .find(|s| s.title == "history search line")
        .unwrap();
    assert!(
        search
            .rows
            .iter()
            .any(|(k, d)| k == "Tab" && d.contains("keep the search"))
    );
    let confirm = sections
        .iter()
        .find(|s| s.title == "confirmations")
        .unwrap();
    assert!(confirm.rows.iter().any(|(k, _)| k == "o"));
}

#[test]
fn digits_rate_the_selected_record() {
    let mut m = rich();
    m.focus = Pane::History;
    for (c, n) in [('4', 4u8), ('0', 0), ('5', 5)] {
        let fx = press(&mut m, ch(c));
        assert!(
            matches!(fx.as_slice(), [Effect::Edit(i, easel::store::UserEdit::Rating(r))] if *i == id(1) && *r == n),
            "{c}: {fx:?}"
        );
    }
    // The rating that comes back shows in the row.
    let mut rated = rec(1, "夜晚的海边小镇，灯火通明", Status::Succeeded);
    rated.rating = 5;
    update(&mut m, Msg::Job(JobEvent::Updated(Box::new(rated))));
    assert_eq!(m.history.rows[&0].rating, 5);
}

#[test]
fn u_brings_back_the_last_deleted_record() {
    let mut m = rich();
    m.focus = Pane::History;
    // Nothing to undo yet.
    assert!(press(&mut m, ch('u')).is_empty());
    assert!(m.current_notice().unwrap().text.contains("nothing to undo"));
    press(&mut m, ch('d'));
    assert!(matches!(press(&mut m, ch('y')).as_slice(), [Effect::Delete(i)] if *i == id(1)));
    update(
        &mut m,
        Msg::Stored(easel::studio::msg::StoreOutcome::Deleted(id(1))),
    );
    assert!(
        m.current_notice()
            .unwrap()
            .text
            .contains("trash (u undoes)")
    );
    assert!(matches!(press(&mut m, ch('u')).as_slice(), [Effect::Restore(i)] if *i == id(1)));
    // Restored: the list reloads with it selected.
    let fx = update(
        &mut m,
        Msg::Job(JobEvent::Restored(Box::new(rec(
            1,
            "夜晚的海边小镇，灯火通明",
            Status::Succeeded,
        )))),
    );
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadHistory { anchor: Some(a), .. } if *a == id(1)))
    );
    assert!(
        press(&mut m, ch('u')).is_empty(),
        "each delete is undone once"
    );
}

#[test]
fn the_studio_state_round_trips() {
    let mut m = rich();
    type_text(&mut m, "an unsent draft");
    m.params.size = Some("1536x1024".into());
    m.focus = Pane::History;
    press(&mut m, ch('j'));
    press(&mut m, ch('f'));
    m.history.text = "fox".into();
    m.gallery = true;
    let saved = easel::studio::state::capture(&m);
    let json = serde_json::to_string(&saved).unwrap();
    let back: easel::studio::state::Saved = serde_json::from_str(&json).unwrap();
    let mut fresh = model();
    easel::studio::state::restore(&mut fresh, back);
    assert_eq!(fresh.prompt(), "an unsent draft");
    assert_eq!(fresh.params.size.as_deref(), Some("1536x1024"));
    assert_eq!(fresh.focus, Pane::History);
    assert_eq!(fresh.history.filter, Filter::Starred);
    assert_eq!(fresh.history.text, "fox");
    assert!(fresh.gallery, "the gallery is remembered");
    // The first page asks where the selected record is.
    assert_eq!(fresh.history.anchor.map(|(i, _)| i), Some(id(2)));
    // Parameters the model would now refuse are not restored.
    let mut bad = easel::studio::state::capture(&m);
    bad.params.as_mut().unwrap().size = Some("1000x1000".into());
    let mut other = model();
    easel::studio::state::restore(&mut other, bad);
    assert_eq!(other.params.size, None);
}

#[test]
fn a_restored_selection_is_asked_for_with_the_first_page() {
    let mut m = bare_model(Keymap::default());
    let saved = easel::studio::state::Saved {
        prompt: String::new(),
        params: None,
        focus: Some("history".into()),
        filter: None,
        filter_model: None,
        search: String::new(),
        selected: Some(id(3)),
        gallery: false,
    };
    easel::studio::state::restore(&mut m, saved);
    let fx = update(&mut m, Msg::Resize(120, 40));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadHistory { anchor: Some(a), .. } if *a == id(3))),
        "{fx:?}"
    );
    page_with(
        &mut m,
        0,
        4,
        history_records(),
        Some((id(3), Located::At(2))),
    );
    assert_eq!(m.history.selected, 2);
    assert_eq!(m.history.selected_record().unwrap().id, id(3));
}

#[test]
fn session_spend_says_when_it_is_an_estimate() {
    let mut m = model();
    let mut priced = rec(40, "priced from usage", Status::Succeeded);
    priced.cost_usd = Some(0.21);
    priced.usage = Some(easel::api::Usage {
        output_tokens: Some(7024),
        ..Default::default()
    });
    update(&mut m, Msg::Job(JobEvent::Succeeded(Box::new(priced))));
    assert!(!m.spend_estimated);
    let mut guessed = rec(41, "estimated", Status::Succeeded);
    guessed.cost_usd = Some(0.04);
    update(&mut m, Msg::Job(JobEvent::Succeeded(Box::new(guessed))));
    assert!(m.spend_estimated);
    assert!((m.spend - 0.25).abs() < 1e-9);
}

#[test]
fn a_job_that_ends_out_of_focus_is_notified() {
    let mut m = rich();
    let done = rec(10, "job 10", Status::Succeeded);
    // In focus: nothing.
    let fx = update(
        &mut m,
        Msg::Job(JobEvent::Succeeded(Box::new(done.clone()))),
    );
    assert!(!fx.iter().any(|e| matches!(e, Effect::Notify(_))), "{fx:?}");
    update(&mut m, Msg::Focus(false));
    let failed = rec(11, "job 11", Status::Failed);
    let fx = update(&mut m, Msg::Job(JobEvent::Failed(Box::new(failed))));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Notify(t) if t == "easel: failed: job 11")),
        "{fx:?}"
    );
    update(&mut m, Msg::Focus(true));
    let fx = update(
        &mut m,
        Msg::Job(JobEvent::Succeeded(Box::new(rec(
            12,
            "job 12",
            Status::Succeeded,
        )))),
    );
    assert!(!fx.iter().any(|e| matches!(e, Effect::Notify(_))));
}

#[test]
fn clicks_focus_and_pick_rows_and_the_wheel_scrolls() {
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let click = |kind, column, row| {
        Msg::Mouse(MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    let mut m = model();
    page(&mut m, 0, 8, eight());
    let a = m.areas();
    // The third history row (inside the border).
    let (x, y) = (a.history.x + 3, a.history.y + 1 + 2);
    update(&mut m, click(MouseEventKind::Down(MouseButton::Left), x, y));
    assert_eq!(m.focus, Pane::History);
    assert_eq!(m.history.selected, 2);
    assert_eq!(m.history.selected_record().unwrap().id, id(7));
    update(&mut m, click(MouseEventKind::ScrollDown, x, y));
    assert_eq!(m.history.selected, 5);
    update(&mut m, click(MouseEventKind::ScrollUp, x, y));
    assert_eq!(m.history.selected, 2);
    // A click on the editor focuses it; a click below the last row picks nothing.
    update(
        &mut m,
        click(
            MouseEventKind::Down(MouseButton::Left),
            a.editor.x + 2,
            a.editor.y + 1,
        ),
    );
    assert_eq!(m.focus, Pane::Editor);
    // A click closes a popup.
    m.overlay = Some(Overlay::Help);
    update(&mut m, click(MouseEventKind::Down(MouseButton::Left), x, y));
    assert!(m.overlay.is_none());
}

#[test]
fn tags_are_typed_with_completion_and_applied_to_the_selected_record() {
    use easel::studio::update::complete_tag;
    let known: Vec<String> = ["keep", "keeper", "sea", "sunset"]
        .map(String::from)
        .to_vec();
    assert_eq!(complete_tag("+se", &known), "+sea ");
    assert_eq!(complete_tag("+ke", &known), "+keep");
    assert_eq!(complete_tag("-su", &known), "-sunset ");
    assert_eq!(complete_tag("x +zz", &known), "x +zz");
    let mut m = rich();
    m.focus = Pane::History;
    let fx = press(&mut m, ch('t'));
    assert!(matches!(fx.as_slice(), [Effect::LoadTags]));
    update(&mut m, Msg::Tags(known.clone()));
    type_text(&mut m, "+se");
    press(&mut m, plain(KeyCode::Tab));
    type_text(&mut m, "-draft");
    let fx = press(&mut m, plain(KeyCode::Enter));
    assert!(
        matches!(fx.as_slice(), [Effect::Edit(i, easel::store::UserEdit::Retag { add, remove })]
            if *i == id(1) && add == &["sea"] && remove == &["draft"]),
        "{fx:?}"
    );
    assert!(m.tag_input.is_none());
    // Esc leaves without a change; keys typed there are not commands.
    press(&mut m, ch('t'));
    type_text(&mut m, "dq");
    assert!(m.overlay.is_none() && !m.quitting);
    assert!(press(&mut m, plain(KeyCode::Esc)).is_empty());
}

/// Filter terms typed on the search line become the query's filters, not fuzzy text.
#[test]
fn search_terms_filter_by_tag_and_rating_and_sort() {
    let mut m = rich();
    m.focus = Pane::History;
    assert!(press(&mut m, ch('/')).is_empty());
    let mut last = Vec::new();
    for c in "fox #keep rating:4 sort:rating".chars() {
        last = press(&mut m, ch(c));
    }
    let query = last
        .iter()
        .find_map(|e| match e {
            Effect::LoadHistory { query, .. } => Some(query.clone()),
            _ => None,
        })
        .expect("a reload");
    assert_eq!(query.text.as_deref(), Some("fox"));
    assert_eq!(query.tag.as_deref(), Some("keep"));
    assert_eq!(query.min_rating, Some(4));
    assert!(query.by_rating);
}

// ---------------------------------------------------------------------------------------------
// Compare
// ---------------------------------------------------------------------------------------------

/// Two succeeded records (ids 1 and 4) marked with `m`, compared with `c`.
fn comparing() -> Model {
    let mut m = rich();
    m.focus = Pane::History;
    // Row 0 is record 1, row 3 record 4 (both have an image).
    assert!(press(&mut m, ch('m')).is_empty());
    for _ in 0..3 {
        press(&mut m, ch('j'));
    }
    press(&mut m, ch('m'));
    assert_eq!(m.marked.len(), 2);
    press(&mut m, ch('c'));
    m
}

#[test]
fn marked_images_open_side_by_side_and_blink_switches_between_them() {
    let mut m = comparing();
    let c = m.compare.as_ref().expect("compare open");
    assert_eq!(
        c.items.iter().map(|x| x.record.id).collect::<Vec<_>>(),
        [id(1), id(4)]
    );
    assert!(!c.blink);
    // The pictures are asked for one render at a time: A first, at the size of its cell.
    let asked = m.preview.requested.clone().expect("a render asked for");
    match &asked.source {
        easel::studio::msg::PreviewSource::Compared(p) => {
            assert!(p.ends_with("images/2025/03/14/1.png"), "{p:?}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        asked.cols < 80 / 2 + 1,
        "side by side: half the width, {asked:?}"
    );
    press(&mut m, ch('b'));
    assert!(m.compare.as_ref().unwrap().blink);
    assert_eq!(m.compare.as_ref().unwrap().shown, 0);
    press(&mut m, ch(' '));
    assert_eq!(m.compare.as_ref().unwrap().shown, 1);
    press(&mut m, ch(' '));
    assert_eq!(m.compare.as_ref().unwrap().shown, 0, "wraps around");
    press(&mut m, plain(KeyCode::Left));
    assert_eq!(m.compare.as_ref().unwrap().shown, 1);
    // Keys of the list do nothing here: j does not move the history selection.
    let before = m.history.selected;
    press(&mut m, ch('j'));
    assert_eq!(m.history.selected, before);
    press(&mut m, plain(KeyCode::Esc));
    assert!(m.compare.is_none());
    assert_eq!(m.marked.len(), 2, "marks stay after closing");
}

#[test]
fn rating_in_compare_rates_the_shown_image_and_reject_trashes_it() {
    let mut m = comparing();
    press(&mut m, ch('b'));
    press(&mut m, ch(' '));
    let fx = press(&mut m, ch('4'));
    assert!(
        fx.iter().any(|e| matches!(
            e,
            Effect::Edit(i, easel::store::UserEdit::Rating(4)) if *i == id(4)
        )),
        "{fx:?}"
    );
    // The rating shows in the caption once the scheduler says so.
    let mut rated = m.compare.as_ref().unwrap().items[1].record.clone();
    rated.rating = 4;
    update(&mut m, Msg::Job(JobEvent::Updated(Box::new(rated))));
    assert_eq!(m.compare.as_ref().unwrap().items[1].record.rating, 4);
    // Reject: to the trash (no question: u undoes), and with one image left compare closes.
    let fx = press(&mut m, ch('x'));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Delete(i) if *i == id(4))),
        "{fx:?}"
    );
    assert!(m.compare.is_none());
    assert_eq!(m.marked.len(), 1);
}

#[test]
fn compare_needs_two_images_and_at_most_four_are_marked() {
    let mut m = rich();
    m.focus = Pane::History;
    press(&mut m, ch('c'));
    assert!(m.compare.is_none());
    assert!(
        m.current_notice()
            .is_some_and(|n| n.text.contains("mark 2–4")),
        "{:?}",
        m.current_notice()
    );
    // m twice unmarks.
    press(&mut m, ch('m'));
    press(&mut m, ch('m'));
    assert!(m.marked.is_empty());
    // A failed record has no image to mark.
    press(&mut m, ch('j'));
    press(&mut m, ch('m'));
    assert!(m.marked.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Gallery
// ---------------------------------------------------------------------------------------------

/// 30 succeeded records at 120×40 (4 columns, 3 rows of cells), the gallery on.
fn gallery() -> Model {
    let mut m = model();
    update(&mut m, Msg::Resize(120, 40));
    let records: Vec<_> = (1..=30)
        .map(|n| rec(n, &format!("picture {n}"), Status::Succeeded))
        .collect();
    page(&mut m, 0, 30, records);
    m.focus = Pane::History;
    press(&mut m, ch('v'));
    assert!(m.gallery_shown());
    m
}

#[test]
fn the_gallery_moves_by_rows_and_cells_and_pages() {
    let mut m = gallery();
    let g = easel::studio::gallery::geometry(120, 40);
    assert_eq!((g.cols, g.rows), (4, 3));
    press(&mut m, ch('j'));
    assert_eq!(m.history.selected, 4, "down is a row of the grid");
    press(&mut m, ch('l'));
    assert_eq!(m.history.selected, 5);
    press(&mut m, plain(KeyCode::Left));
    press(&mut m, plain(KeyCode::Left));
    assert_eq!(m.history.selected, 3);
    press(&mut m, plain(KeyCode::PageDown));
    assert_eq!(m.history.selected, 15, "a page is a screenful of cells");
    // The view keeps whole rows and the selection in sight.
    let cells = easel::studio::gallery::cells(&m);
    assert_eq!(
        cells.first().map(|c| c.pos),
        Some(4),
        "rows 1-3 of the grid"
    );
    assert!(cells.iter().any(|c| c.pos == 15));
    press(&mut m, ch('G'));
    assert_eq!(m.history.selected, 29);
    let cells = easel::studio::gallery::cells(&m);
    assert_eq!(cells.last().map(|c| c.pos), Some(29));
    // h and l do nothing in the list.
    press(&mut m, ch('v'));
    assert!(!m.gallery_shown());
    press(&mut m, ch('h'));
    assert_eq!(m.history.selected, 29);
}

#[test]
fn gallery_cells_ask_for_thumbnails_one_at_a_time_selected_first() {
    let mut m = gallery();
    press(&mut m, ch('l'));
    press(&mut m, ch('l'));
    let asked = m.preview.requested.clone().expect("a thumbnail asked for");
    match &asked.source {
        easel::studio::msg::PreviewSource::Thumb { path, .. } => {
            assert!(path.ends_with("images/2025/03/14/3.png"), "{path:?}")
        }
        other => panic!("{other:?}"),
    }
    // Once it is drawn, the next visible cell is asked for, and so on.
    let failed = asked.clone();
    update(&mut m, Msg::PreviewFailed(failed, "not a picture".into()));
    let next = m.preview.requested.clone().unwrap();
    assert_ne!(next, asked, "a failed cell is not asked for again");
    assert!(matches!(
        next.source,
        easel::studio::msg::PreviewSource::Thumb { .. }
    ));
}

// ---------------------------------------------------------------------------------------------
// A run as a labelled grid (issue 14)

/// Job `index` of a 2×3 run (`a {cat|dog}` × three sizes) with id 900.
fn run_rec(n: u128, index: u32, animal: &str, size: &str, status: Status) -> GenerationRecord {
    use easel::runs::{AltValue, AxisValue, JobValues};
    let mut r = rec(n, &format!("a {animal}"), status);
    r.run = Some(easel::store::RunInfo {
        id: id(900),
        index,
        of: 6,
        values: JobValues {
            prompt_index: 1,
            template: "a {cat|dog}".into(),
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

/// The run's records as history has them (newest first): job 5 failed, job 6 is not there.
fn run_history() -> Vec<GenerationRecord> {
    vec![
        run_rec(1, 5, "dog", "1536x1024", Status::Failed),
        run_rec(2, 4, "dog", "1024x1024", Status::Succeeded),
        run_rec(3, 3, "cat", "1024x1536", Status::Succeeded),
        run_rec(4, 2, "cat", "1536x1024", Status::Succeeded),
        run_rec(5, 1, "cat", "1024x1024", Status::Succeeded),
    ]
}

#[test]
fn v_opens_the_run_of_the_selected_record_as_a_grid_moved_cell_by_cell() {
    let mut m = model();
    update(&mut m, Msg::Resize(120, 40));
    let mut records = run_history();
    records.push(rec(6, "a lone lighthouse", Status::Succeeded));
    page(&mut m, 0, 6, records);
    m.focus = Pane::History;
    // On job 2 (cat, 1536x1024): V asks for the run's records.
    press(&mut m, ch('j'));
    press(&mut m, ch('j'));
    press(&mut m, ch('j'));
    let fx = press(&mut m, ch('V'));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadRun(r) if *r == id(900))),
        "{fx:?}"
    );
    assert!(m.run_grid.as_ref().is_some_and(|g| g.records.is_none()));
    update(&mut m, Msg::RunLoaded(id(900), run_history()));
    let g = m.run_grid.as_ref().unwrap();
    assert_eq!(g.layout.rows.labels, ["cat", "dog"]);
    assert_eq!(
        g.layout.cols.labels,
        ["1024x1024", "1536x1024", "1024x1536"]
    );
    assert_eq!((g.row, g.col), (0, 1), "the selection starts on job 2");
    assert_eq!(g.selected().map(|r| r.id), Some(id(4)));
    // Its thumbnail is asked for first.
    match m.preview.requested.as_ref().map(|k| &k.source) {
        Some(PreviewSource::Thumb { path, .. }) => {
            assert!(path.ends_with("images/2025/03/14/4.png"), "{path:?}")
        }
        other => panic!("{other:?}"),
    }
    // A click picks the cell under it.
    let target = {
        let g = m.run_grid.as_ref().unwrap();
        easel::studio::run_grid::cells(&m, g)
            .into_iter()
            .find(|c| (c.row, c.col) == (1, 0))
            .unwrap()
    };
    update(
        &mut m,
        Msg::Mouse(crossterm::event::MouseEvent {
            kind: crossterm::event::MouseEventKind::Down(crossterm::event::MouseButton::Left),
            column: target.picture.x + 2,
            row: target.picture.y + 1,
            modifiers: KeyModifiers::NONE,
        }),
    );
    let g = m.run_grid.as_ref().unwrap();
    assert_eq!((g.row, g.col), (1, 0), "clicked");
    assert_eq!(m.history.selected, 3, "the history underneath stays");
    press(&mut m, ch('k'));
    press(&mut m, ch('l'));
    // Down and right: job 6, missing: nothing to show.
    press(&mut m, ch('j'));
    press(&mut m, plain(KeyCode::Right));
    press(&mut m, ch('l'));
    let g = m.run_grid.as_ref().unwrap();
    assert_eq!((g.row, g.col), (1, 2), "clamped at the last column");
    assert!(g.selected().is_none());
    let fx = press(&mut m, ch('z'));
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::FullView(_))),
        "{fx:?}"
    );
    // Left: job 5, failed: Enter shows its details.
    press(&mut m, ch('h'));
    press(&mut m, plain(KeyCode::Enter));
    match &m.overlay {
        Some(Overlay::Details(r)) => assert_eq!(r.id, id(1)),
        other => panic!("{other:?}"),
    }
    press(&mut m, plain(KeyCode::Esc));
    assert!(
        m.overlay.is_none() && m.run_grid.is_some(),
        "Esc closes the popup first"
    );
    // Left again: job 4; z shows its image full screen.
    press(&mut m, ch('h'));
    let fx = press(&mut m, ch('z'));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::FullView(p) if p.ends_with("images/2025/03/14/2.png"))),
        "{fx:?}"
    );
    // Esc: back to the history, where it was.
    press(&mut m, plain(KeyCode::Esc));
    assert!(m.run_grid.is_none());
    assert_eq!(m.history.selected, 3);
    // A record of no run says what makes one.
    press(&mut m, ch('G'));
    let fx = press(&mut m, ch('V'));
    assert!(m.run_grid.is_none() && fx.is_empty(), "{fx:?}");
    assert!(
        m.current_notice()
            .is_some_and(|n| n.text.contains("not part of a run")),
        "{:?}",
        m.notices
    );
}

#[test]
fn when_the_last_job_of_a_run_ends_a_notice_offers_the_grid() {
    let mut m = model();
    let a = run_rec(11, 1, "cat", "1024x1024", Status::Running);
    let b = run_rec(12, 2, "cat", "1536x1024", Status::Running);
    update(&mut m, Msg::Job(JobEvent::Started(Box::new(a.clone()))));
    update(&mut m, Msg::Job(JobEvent::Started(Box::new(b.clone()))));
    let mut done = a.clone();
    done.status = Status::Succeeded;
    done.outputs = vec![image("images/a.png")];
    update(&mut m, Msg::Job(JobEvent::Succeeded(Box::new(done))));
    assert!(
        !m.notices.iter().any(|n| n.text.contains("run ")),
        "one job still runs: {:?}",
        m.notices
    );
    assert_eq!(m.run_done, None);
    let mut failed = b.clone();
    failed.status = Status::Failed;
    update(&mut m, Msg::Job(JobEvent::Failed(Box::new(failed))));
    // A failed job: the run ended, not all done (issue 14 QA).
    let n = m.current_notice().unwrap();
    assert_eq!(
        n.text,
        format!(
            "run {} ended: 1 of 6 done · 1 failed · press V to see the grid",
            id(900).short()
        )
    );
    assert_eq!(m.run_done, Some(id(900)));
    // V on a record of no run opens that run, from the queue too (V is global).
    page(
        &mut m,
        0,
        1,
        vec![rec(6, "a lone lighthouse", Status::Succeeded)],
    );
    m.focus = Pane::Queue;
    let fx = press(&mut m, ch('V'));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadRun(r) if *r == id(900))),
        "{fx:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Edits (issue 12): "edit this", the reference strip, the mask editor, lineage

use easel::api::InputImage;
use easel::store::record::{Parent, ParentRole};
use easel::studio::mask::{Op, PixRect, Shape};
use easel::studio::model::MaskBase;
use easel::studio::msg::InputKind;

fn history_input(n: u128) -> InputImage {
    InputImage {
        path: PathBuf::from(format!("/data/easel/images/2025/03/14/{n}.png")),
        record: Some(id(n).to_string()),
        index: Some(1),
    }
}

/// The idle studio with the history focused on row `row`.
fn history_at(row: usize) -> Model {
    let mut m = idle();
    m.focus = Pane::History;
    for _ in 0..row {
        press(&mut m, ch('j'));
    }
    m
}

#[test]
fn edit_this_puts_the_selected_image_in_the_inputs_and_submits_an_edit() {
    let mut m = history_at(0);
    assert!(!m.has_inputs());
    press(&mut m, ch('E'));
    assert_eq!(m.params.images, vec![history_input(1)]);
    assert_eq!(m.focus, Pane::Editor, "the editor takes the focus");
    assert!(m.current_notice().unwrap().text.contains("editing"));
    type_text(&mut m, "the same, at night");
    // The files are checked first (in the runtime); it is queued when they pass.
    let submission = match press(&mut m, ctrl('s')).pop() {
        Some(Effect::CheckInputs { files, submission }) => {
            assert_eq!(files.images, vec![history_input(1).path]);
            submission
        }
        other => panic!("{other:?}"),
    };
    let fx = update(
        &mut m,
        Msg::InputsChecked {
            submission,
            result: Ok(()),
        },
    );
    match fx.as_slice() {
        [Effect::Submit(s)] => {
            assert_eq!(s.params.prompt, "the same, at night");
            assert_eq!(s.params.images, vec![history_input(1)]);
            assert!(s.params.mask.is_none());
        }
        other => panic!("{other:?}"),
    }
    // A failed generation has no image to edit: nothing changes.
    let mut m = history_at(1);
    press(&mut m, ch('E'));
    assert!(m.params.images.is_empty());
    assert_eq!(m.focus, Pane::History);
    // Editing another image makes it the first; the old one stays as a reference.
    let mut m = history_at(0);
    press(&mut m, ch('E'));
    m.focus = Pane::History;
    press(&mut m, ch('G'));
    press(&mut m, ch('E'));
    assert_eq!(m.params.images, vec![history_input(4), history_input(1)]);
}

/// Queueing an edit runs the CLI's checks on its files first (in the runtime, not in
/// `update`): nothing is queued until they pass, and a failure (a file deleted after it was
/// added to the strip) is a notice that says what to do, with nothing queued.
#[test]
fn queueing_an_edit_checks_its_files_first_and_a_failure_queues_nothing() {
    let mut m = history_at(0);
    press(&mut m, ch('E'));
    type_text(&mut m, "the same, at night");
    let fx = press(&mut m, ctrl('s'));
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Submit(_))),
        "queued before its files were checked: {fx:?}"
    );
    let submission = match fx.as_slice() {
        [Effect::CheckInputs { files, submission }] => {
            assert_eq!(files.images, vec![history_input(1).path]);
            assert_eq!(files.mask, None);
            submission.clone()
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(submission.params.prompt, "the same, at night");
    // The file is gone: a notice, nothing queued, the edit still in the editor.
    let fx = update(
        &mut m,
        Msg::InputsChecked {
            submission: submission.clone(),
            result: Err("image: /data/easel/images/2025/03/14/1.png: no such file".into()),
        },
    );
    assert!(fx.is_empty(), "{fx:?}");
    let n = m.current_notice().unwrap();
    assert!(n.error);
    assert!(n.text.starts_with("not queued: image: "), "{}", n.text);
    assert!(n.text.contains("no such file"), "{}", n.text);
    assert!(n.text.contains("removes an input"), "{}", n.text);
    assert_eq!(m.params.images, vec![history_input(1)]);
    assert_eq!(m.prompt(), "the same, at night");
    // Checked and passed: queued (a costly one still asks first, as any other).
    let fx = update(
        &mut m,
        Msg::InputsChecked {
            submission,
            result: Ok(()),
        },
    );
    assert!(
        matches!(fx.as_slice(), [Effect::Submit(s)] if s.params.images == vec![history_input(1)]),
        "{fx:?}"
    );
    // A generation (no inputs) is queued at once, as before.
    let mut m = idle();
    m.focus = Pane::Editor;
    type_text(&mut m, "a kite");
    assert!(matches!(
        press(&mut m, ctrl('s')).as_slice(),
        [Effect::Submit(_)]
    ));
}

#[test]
fn the_strip_is_in_the_tab_order_only_with_inputs() {
    let mut m = idle();
    m.focus = Pane::Editor;
    press(&mut m, plain(KeyCode::Tab));
    assert_eq!(m.focus, Pane::Params, "no inputs: the strip is skipped");
    press(&mut m, key(KeyCode::BackTab, KeyModifiers::SHIFT));
    assert_eq!(m.focus, Pane::Editor);
    let mut m = history_at(0);
    press(&mut m, ch('E'));
    press(&mut m, plain(KeyCode::Tab));
    assert_eq!(m.focus, Pane::Inputs);
    assert!(m.areas().inputs.height > 0, "the strip is on screen");
    press(&mut m, plain(KeyCode::Tab));
    assert_eq!(m.focus, Pane::Params);
}

#[test]
fn references_from_history_reorder_and_remove_in_the_strip() {
    let mut m = history_at(0);
    press(&mut m, ch('E'));
    m.focus = Pane::History;
    press(&mut m, ch('G'));
    // R adds a reference and stays in the history; twice is once.
    press(&mut m, ch('R'));
    press(&mut m, ch('R'));
    assert_eq!(m.focus, Pane::History);
    assert_eq!(m.params.images, vec![history_input(1), history_input(4)]);
    m.params.mask = Some(InputImage::file("/tmp/mask.png"));
    m.focus = Pane::Inputs;
    // The selection starts on the newest input; H moves it left: it becomes the edited one.
    assert_eq!(m.input_cursor, 1);
    press(&mut m, ch('H'));
    assert_eq!(m.params.images, vec![history_input(4), history_input(1)]);
    assert_eq!(m.input_cursor, 0);
    // The mask stays, with a word that it belongs to the first picture.
    assert!(m.params.mask.is_some());
    assert!(m.current_notice().unwrap().text.contains("first picture"));
    // At the left end, H does nothing; L moves it back.
    press(&mut m, ch('H'));
    assert_eq!(m.params.images[0], history_input(4));
    press(&mut m, ch('L'));
    assert_eq!(m.params.images, vec![history_input(1), history_input(4)]);
    assert_eq!(m.input_cursor, 1);
    // h/l move the selection; x removes the selected one.
    press(&mut m, ch('h'));
    assert_eq!(m.input_cursor, 0);
    press(&mut m, ch('l'));
    press(&mut m, ch('l'));
    assert_eq!(m.input_cursor, 1);
    press(&mut m, ch('x'));
    assert_eq!(m.params.images, vec![history_input(1)]);
    assert_eq!(m.input_cursor, 0);
    // f cycles the input fidelity: high, low, default.
    press(&mut m, ch('f'));
    assert_eq!(m.params.input_fidelity.as_deref(), Some("high"));
    press(&mut m, ch('f'));
    assert_eq!(m.params.input_fidelity.as_deref(), Some("low"));
    press(&mut m, ch('f'));
    assert_eq!(m.params.input_fidelity, None);
    press(&mut m, ch('f'));
    // The last one goes with the mask and the fidelity (a generation takes neither), back to
    // the editor; and a prompt queues as a generation again.
    press(&mut m, plain(KeyCode::Delete));
    assert!(m.params.images.is_empty() && m.params.mask.is_none());
    assert_eq!(m.params.input_fidelity, None);
    type_text(&mut m, "a new picture");
    assert!(matches!(
        press(&mut m, ctrl('s')).as_slice(),
        [Effect::Submit(_)]
    ));
    assert_eq!(m.focus, Pane::Editor);
    assert!(!m.has_inputs());
}

#[test]
fn references_and_masks_from_typed_paths() {
    let mut m = history_at(0);
    press(&mut m, ch('E'));
    // Alt-a in the editor opens the path line; typed characters go there, not to the prompt.
    press(&mut m, key(KeyCode::Char('a'), KeyModifiers::ALT));
    assert!(m.path_input.is_some());
    type_text(&mut m, "~/ref\u{1b}.png");
    assert_eq!(m.prompt(), "");
    match press(&mut m, plain(KeyCode::Enter)).as_slice() {
        [Effect::ResolveInput { kind, text }] => {
            assert_eq!(*kind, InputKind::Reference);
            assert_eq!(text, "~/ref.png", "unsafe characters are dropped");
        }
        other => panic!("{other:?}"),
    }
    assert!(m.path_input.is_none());
    update(
        &mut m,
        Msg::InputResolved(InputKind::Reference, InputImage::file("/home/u/ref.png")),
    );
    assert_eq!(m.params.images.len(), 2);
    assert_eq!(m.params.images[1].path, PathBuf::from("/home/u/ref.png"));
    // Esc leaves the line without anything.
    m.focus = Pane::Inputs;
    press(&mut m, ch('a'));
    type_text(&mut m, "x");
    assert!(press(&mut m, plain(KeyCode::Esc)).is_empty());
    assert!(m.path_input.is_none());
    assert_eq!(m.params.images.len(), 2);
    // o types a mask file.
    press(&mut m, ch('o'));
    type_text(&mut m, "/tmp/m.png");
    match press(&mut m, plain(KeyCode::Enter)).as_slice() {
        [Effect::ResolveInput { kind, text }] => {
            assert_eq!(*kind, InputKind::Mask);
            assert_eq!(text, "/tmp/m.png");
        }
        other => panic!("{other:?}"),
    }
    update(
        &mut m,
        Msg::InputResolved(InputKind::Mask, InputImage::file("/tmp/m.png")),
    );
    assert_eq!(m.params.mask, Some(InputImage::file("/tmp/m.png")));
    // X removes the mask only.
    press(&mut m, ch('X'));
    assert!(m.params.mask.is_none());
    assert_eq!(m.params.images.len(), 2);
}

#[test]
fn reuse_brings_an_edit_back_with_its_pictures() {
    let mut m = rich();
    let mut r = rec(50, "at night", Status::Succeeded);
    r.params.images = vec![history_input(1), InputImage::file("/p/ref.png")];
    r.params.mask = Some(InputImage::file("/p/mask.png"));
    page(&mut m, 0, 1, vec![r]);
    m.focus = Pane::History;
    press(&mut m, ch('e'));
    assert_eq!(m.params.images.len(), 2);
    assert_eq!(m.params.mask, Some(InputImage::file("/p/mask.png")));
    assert!(m.strip_shown());
}

/// The studio with the mask editor open on record 1's image, read as a 1024×1024 picture.
fn mask_open() -> Model {
    let mut m = history_at(0);
    let fx = press(&mut m, ch('M'));
    let (cols, rows) = fx
        .iter()
        .find_map(|e| match e {
            Effect::LoadMaskBase { path, cols, rows } => {
                assert_eq!(path, &history_input(1).path);
                Some((*cols, *rows))
            }
            _ => None,
        })
        .expect("the picture is asked for");
    assert_eq!(m.params.images, vec![history_input(1)], "M edits this too");
    let p = easel::studio::mask::place(ratatui::layout::Rect::new(0, 0, cols, rows), 1024, 1024)
        .unwrap();
    let base = MaskBase {
        cols,
        rows,
        gw: p.gw,
        gh: p.gh,
        dots: vec![[100, 100, 100]; (p.gw * p.gh) as usize],
    };
    update(
        &mut m,
        Msg::MaskBase {
            path: history_input(1).path,
            width: 1024,
            height: 1024,
            base,
        },
    );
    m
}

fn ops(m: &Model) -> Vec<Op> {
    m.mask_edit.as_ref().unwrap().ops.clone()
}

fn cursor(m: &Model) -> PixRect {
    m.mask_edit.as_ref().unwrap().cursor
}

#[test]
fn the_mask_editor_adds_subtracts_inverts_and_saves() {
    let mut m = mask_open();
    let e = m.mask_edit.as_ref().unwrap();
    assert_eq!(e.size, Some((1024, 1024)));
    assert!(e.base.is_some());
    // The shape starts in the middle, about half the picture.
    let c = cursor(&m);
    assert!(
        c.x0 > 200 && c.x0 < 300 && c.x1 > 700 && c.x1 < 800,
        "{c:?}"
    );
    // Keys are the editor's: q does not quit, it leaves (tested below).
    press(&mut m, ch(' '));
    assert_eq!(ops(&m), vec![Op::Add(Shape::Rect, c)]);
    // l moves the shape right by one dot, keeping its size.
    press(&mut m, ch('l'));
    let moved = cursor(&m);
    assert!(
        moved.x0 > c.x0 && moved.width().abs_diff(c.width()) <= 1,
        "{moved:?}"
    );
    assert_eq!(moved.y0, c.y0);
    // L widens, H narrows back; J is taller.
    press(&mut m, ch('L'));
    assert!(cursor(&m).width() > moved.width());
    press(&mut m, ch('H'));
    assert_eq!(cursor(&m), moved);
    press(&mut m, ch('J'));
    assert!(cursor(&m).height() > moved.height());
    press(&mut m, ch('K'));
    // Shift-arrows go 8 dots at a time, and stop at the edge.
    let p = easel::studio::update::mask_placement(&m).unwrap();
    press(&mut m, key(KeyCode::Right, KeyModifiers::SHIFT));
    assert_eq!(p.to_dots(&cursor(&m)).0, p.to_dots(&moved).0 + 8);
    for _ in 0..20 {
        press(&mut m, key(KeyCode::Right, KeyModifiers::SHIFT));
    }
    assert_eq!(p.to_dots(&cursor(&m)).2, p.gw, "at the right edge");
    assert_eq!(cursor(&m).width(), moved.width(), "the same size");
    for _ in 0..20 {
        press(&mut m, key(KeyCode::Left, KeyModifiers::SHIFT));
    }
    assert_eq!(cursor(&m).x0, 0);
    // Back where it was, a dot at a time.
    let back = p.to_dots(&moved).0;
    for _ in 0..back {
        press(&mut m, ch('l'));
    }
    assert_eq!(cursor(&m), moved);
    // s switches to an ellipse, - subtracts it, i inverts.
    press(&mut m, ch('s'));
    press(&mut m, ch('-'));
    press(&mut m, ch('i'));
    assert_eq!(
        ops(&m),
        vec![
            Op::Add(Shape::Rect, c),
            Op::Subtract(Shape::Ellipse, moved),
            Op::Invert
        ]
    );
    // u undoes the last step; c clears.
    press(&mut m, ch('u'));
    assert_eq!(ops(&m).len(), 2);
    press(&mut m, ch('c'));
    assert!(ops(&m).is_empty());
    // Nothing selected: Enter says so and saves nothing.
    let fx = press(&mut m, plain(KeyCode::Enter));
    assert!(!fx.iter().any(|e| matches!(e, Effect::SaveMask { .. })));
    assert!(m.mask_edit.is_some());
    assert!(m.current_notice().unwrap().error);
    // Add, save: the mask is built at the picture's size into the data folder's masks/.
    press(&mut m, ch('a'));
    let fx = press(&mut m, plain(KeyCode::Enter));
    match fx.as_slice() {
        [
            Effect::SaveMask {
                width,
                height,
                ops,
                dir,
            },
            ..,
        ] => {
            assert_eq!((*width, *height), (1024, 1024));
            assert_eq!(ops, &vec![Op::Add(Shape::Ellipse, moved)]);
            assert_eq!(dir, &PathBuf::from("/data/easel/masks"));
        }
        other => panic!("{other:?}"),
    }
    assert!(m.mask_edit.is_none());
    update(
        &mut m,
        Msg::MaskSaved(PathBuf::from("/data/easel/masks/mask-x.png")),
    );
    assert_eq!(
        m.params.mask,
        Some(InputImage::file("/data/easel/masks/mask-x.png"))
    );
    assert!(
        m.current_notice()
            .unwrap()
            .text
            .contains("masks/mask-x.png")
    );
    // Opened again on the same picture, the selection goes on from where it was.
    m.focus = Pane::Inputs;
    press(&mut m, ch('m'));
    assert_eq!(ops(&m), vec![Op::Add(Shape::Ellipse, moved)]);
    // Esc (or q) leaves without saving.
    press(&mut m, ch('i'));
    let fx = press(&mut m, ch('q'));
    assert!(
        fx.iter()
            .all(|e| !matches!(e, Effect::SaveMask { .. } | Effect::Quit))
    );
    assert!(m.mask_edit.is_none() && !m.quitting);
}

#[test]
fn the_mask_editor_needs_a_picture_and_follows_resizes() {
    // No inputs: m in the strip says what to do.
    let mut m = idle();
    m.focus = Pane::Inputs;
    press(&mut m, ch('m'));
    assert!(m.mask_edit.is_none());
    assert!(
        m.current_notice()
            .unwrap()
            .text
            .contains("E on a history image")
    );
    // A resize asks for the picture again at the new size, once.
    let mut m = mask_open();
    let fx = update(&mut m, Msg::Resize(120, 40));
    let asked: Vec<_> = fx
        .iter()
        .filter(|e| matches!(e, Effect::LoadMaskBase { .. }))
        .collect();
    assert_eq!(asked.len(), 1, "{fx:?}");
    assert!(update(&mut m, Msg::Tick(t0())).is_empty());
    // M on a failed generation (no image) does not open the editor on the inputs already there.
    let mut m2 = history_at(0);
    press(&mut m2, ch('E'));
    m2.focus = Pane::History;
    press(&mut m2, ch('j'));
    let fx = press(&mut m2, ch('M'));
    assert!(m2.mask_edit.is_none(), "{fx:?}");
    assert_eq!(m2.params.images, vec![history_input(1)]);
    // A picture that cannot be read says why.
    update(
        &mut m,
        Msg::MaskBaseFailed(history_input(1).path, "cannot open it".into()),
    );
    assert_eq!(
        m.mask_edit.as_ref().unwrap().error.as_deref(),
        Some("cannot open it")
    );
    // Ctrl-C still quits.
    press(&mut m, ctrl('c'));
    assert!(m.quitting);
}

#[test]
fn a_mouse_drag_in_the_mask_editor_adds_its_rectangle() {
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let mut m = mask_open();
    let p = easel::studio::update::mask_placement(&m).unwrap();
    let cells = p.cells();
    let mouse = |kind, column, row| {
        Msg::Mouse(MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    let (x, y) = (cells.x + 2, cells.y + 1);
    update(&mut m, mouse(MouseEventKind::Down(MouseButton::Left), x, y));
    update(
        &mut m,
        mouse(MouseEventKind::Drag(MouseButton::Left), x + 5, y + 3),
    );
    update(
        &mut m,
        mouse(MouseEventKind::Up(MouseButton::Left), x + 5, y + 3),
    );
    // Cells 2..=7 across, rows 1..=4 down: dots 2..8 and 2..10.
    let want = p.dots_to_pixels(2, 2, 8, 10);
    assert_eq!(ops(&m), vec![Op::Add(Shape::Rect, want)]);
    // The right button takes out.
    update(
        &mut m,
        mouse(MouseEventKind::Down(MouseButton::Right), x, y),
    );
    update(&mut m, mouse(MouseEventKind::Up(MouseButton::Right), x, y));
    assert!(matches!(ops(&m).last(), Some(Op::Subtract(..))));
}

#[test]
fn details_show_the_lineage_and_p_jumps_to_the_parent() {
    let mut m = idle();
    let mut child = rec(7, "at night", Status::Succeeded);
    child.parents = vec![Parent {
        id: id(1),
        role: ParentRole::Edited,
    }];
    page(&mut m, 0, 1, vec![child]);
    m.focus = Pane::History;
    // A search that might hide the parent is cleared.
    m.history.text = "night".into();
    press(&mut m, plain(KeyCode::Enter));
    assert!(matches!(m.overlay, Some(Overlay::Details(_))));
    let fx = press(&mut m, ch('P'));
    assert!(m.overlay.is_none());
    assert!(m.history.text.is_empty());
    assert_eq!(m.history.selected_id, Some(id(1)));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadHistory { anchor: Some(a), .. } if *a == id(1))),
        "{fx:?}"
    );
    assert!(m.current_notice().unwrap().text.contains("edited"));
    // A record without parents says so.
    let mut m = history_at(0);
    assert!(
        press(&mut m, ch('P'))
            .iter()
            .all(|e| !matches!(e, Effect::LoadHistory { .. }))
    );
    assert!(m.current_notice().unwrap().text.contains("no parent"));
}

#[test]
fn the_strip_asks_for_its_pictures_after_the_preview_one_at_a_time() {
    let mut m = history_at(0);
    update(&mut m, Msg::Resize(120, 40));
    m.focus = Pane::History;
    press(&mut m, ch('R'));
    m.focus = Pane::History;
    press(&mut m, ch('G'));
    press(&mut m, ch('R'));
    assert_eq!(m.params.images.len(), 2);
    let cells = easel::studio::strip::cells(&m);
    assert_eq!(cells.len(), 2, "pictures in the wide strip");
    let asked = |fx: &[Effect]| -> Vec<PreviewSource> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::RenderPreview { key, .. } => Some(key.source.clone()),
                _ => None,
            })
            .collect()
    };
    // The preview is asked for first (what the history shows)...
    let main = preview_key(&m).unwrap();
    assert_eq!(m.preview.requested.as_ref(), Some(&main));
    // ...then, as each arrives, the next picture of the strip.
    let r = easel::studio::preview::Renderer::halfblocks()
        .render(&png(64, 64), main.cols, main.rows)
        .unwrap();
    let fx = update(&mut m, Msg::PreviewReady(main, Box::new(r)));
    assert_eq!(
        asked(&fx),
        vec![PreviewSource::Input(history_input(1).path)]
    );
    let first = cells[0].key.clone();
    let r = easel::studio::preview::Renderer::halfblocks()
        .render(&png(64, 64), first.cols, first.rows)
        .unwrap();
    let fx = update(&mut m, Msg::PreviewReady(first, Box::new(r)));
    assert_eq!(
        asked(&fx),
        vec![PreviewSource::Input(history_input(4).path)]
    );
    // One that cannot be read is not asked for again.
    let second = cells[1].key.clone();
    let fx = update(&mut m, Msg::PreviewFailed(second, "gone".into()));
    assert!(asked(&fx).is_empty(), "{fx:?}");
    assert!(
        m.preview.error.is_none(),
        "the preview's own error is not set"
    );
    // Without graphics, names only: nothing is asked for.
    let mut m = history_at(0);
    m.graphics = easel::studio::model::Graphics::None;
    press(&mut m, ch('E'));
    assert!(easel::studio::strip::cells(&m).is_empty());
}

/// Queueing something above `[budget] confirm_above_usd`, or that would pass a budget, asks
/// first, with the figures; `y` queues it, any other key does not (issue 14).
#[test]
fn spending_above_the_threshold_or_a_budget_asks_first() {
    let paid = || {
        let mut m = model();
        m.provider.demo = false;
        m.params.model = "gpt-image-2".into();
        m.params.quality = Some("high".into());
        m.params.size = Some("1024x1024".into());
        m
    };
    // ≈ $0.21 a picture: below the default threshold ($1.00), no budget: queued at once.
    let mut m = paid();
    type_text(&mut m, "a kite");
    assert!(matches!(
        press(&mut m, ctrl('s')).as_slice(),
        [Effect::Submit(_)]
    ));
    // Eight pictures: ≈ $1.69, above the threshold.
    m.params.n = 8;
    let fx = press(&mut m, ctrl('s'));
    assert!(fx.is_empty(), "{fx:?}");
    assert!(
        matches!(&m.overlay, Some(Overlay::Confirm(Confirm::Spend(_, why))) if why[0].contains("above [budget] confirm_above_usd $1.00")),
        "{:?}",
        m.overlay
    );
    assert!(press(&mut m, ch('n')).is_empty());
    assert!(m.overlay.is_none());
    // A daily budget with $0.40 spent today: one more picture at ≈ $0.21 passes $0.50.
    let mut m = paid();
    m.budget.daily_usd = Some(0.5);
    let mut spend = easel::store::Spend::default();
    let mut spent = GenerationRecord::queued(
        Id::new(),
        GenerationParams::default(),
        "openai",
        false,
        m.now,
    );
    spent.status = Status::Succeeded;
    spent.finished = Some(m.now);
    spent.cost_usd = Some(0.4);
    spend.add(&spent);
    update(&mut m, Msg::SpendLoaded(Box::new(spend)));
    type_text(&mut m, "a kite");
    assert!(press(&mut m, ctrl('s')).is_empty());
    match &m.overlay {
        Some(Overlay::Confirm(Confirm::Spend(_, why))) => {
            assert_eq!(why.len(), 1, "{why:?}");
            assert!(
                why[0].contains("the daily budget is $0.50: ≈ $0.40 spent today"),
                "{why:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let fx = press(&mut m, ch('y'));
    assert!(
        matches!(fx.as_slice(), [Effect::Submit(s)] if s.params.prompt == "a kite"),
        "{fx:?}"
    );
    // The status line shows today's and this month's spend against the budget.
    let mut t = Terminal::new(TestBackend::new(120, 30)).unwrap();
    t.draw(|f| easel::studio::view::view(&m, f)).unwrap();
    let screen: String = t
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(
        screen.contains("today ≈$0.40/$0.50 · month ≈$0.40"),
        "{screen}"
    );
    // The demo is free: never asked.
    let mut m = model();
    m.params.n = 8;
    m.budget.daily_usd = Some(0.0);
    type_text(&mut m, "free");
    assert!(matches!(
        press(&mut m, ctrl('s')).as_slice(),
        [Effect::Submit(_)]
    ));
}

/// A 429 shows on the status line as "rate limited · resuming in N s", counting down, and a
/// job put back in the queue keeps its row's note.
#[test]
fn a_rate_limit_is_shown_on_the_status_line_until_it_is_over() {
    let mut m = model();
    let screen = |m: &Model| {
        let mut t = Terminal::new(TestBackend::new(140, 30)).unwrap();
        t.draw(|f| easel::studio::view::view(m, f)).unwrap();
        t.backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect::<String>()
    };
    let r = rec(5, "a patient fox", Status::Running);
    update(&mut m, Msg::Job(JobEvent::Started(Box::new(r.clone()))));
    update(
        &mut m,
        Msg::Job(JobEvent::Retrying {
            id: r.id,
            retry: 1,
            wait: std::time::Duration::from_secs(12),
            reason: "rate limited".into(),
        }),
    );
    update(
        &mut m,
        Msg::Job(JobEvent::RateLimited {
            provider: "openai".into(),
            wait: std::time::Duration::from_secs(12),
        }),
    );
    let mut queued = r.clone();
    queued.status = Status::Queued;
    update(&mut m, Msg::Job(JobEvent::Queued(Box::new(queued))));
    assert!(m.queue.jobs[0].note.is_some(), "the row says it waits");
    assert!(screen(&m).contains("rate limited · resuming in 12 s"));
    let t = m.now;
    update(&mut m, Msg::Tick(t + Duration::seconds(5)));
    assert!(screen(&m).contains("rate limited · resuming in 7 s"));
    update(&mut m, Msg::Tick(t + Duration::seconds(13)));
    assert!(!screen(&m).contains("rate limited"));
}

#[test]
fn details_read_the_family_and_c_cycles_through_the_children() {
    use easel::studio::model::Family;
    let mut m = history_at(0);
    // Enter asks for the record's lineage.
    let fx = press(&mut m, plain(KeyCode::Enter));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadFamily(i) if *i == id(1))),
        "{fx:?}"
    );
    let family = Family {
        id: id(1),
        parents: vec![],
        children: vec![
            (id(20), ParentRole::Edited, "at night".into()),
            (id(21), ParentRole::Reference, "in snow".into()),
        ],
    };
    update(&mut m, Msg::Family(family.clone()));
    // C in the details goes to the first child...
    let fx = press(&mut m, ch('C'));
    assert!(m.overlay.is_none());
    assert_eq!(m.history.selected_id, Some(id(20)));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadHistory { anchor: Some(a), .. } if *a == id(20)))
    );
    assert!(m.current_notice().unwrap().text.contains("1/2"));
    // ...and, back on the parent, to the next one, then round again.
    m.history.selected_id = Some(id(1));
    m.history.anchor = None;
    page(&mut m, 0, 4, history_records());
    press(&mut m, ch('g'));
    press(&mut m, ch('C'));
    assert_eq!(m.history.selected_id, Some(id(21)));
    m.history.anchor = None;
    page(&mut m, 0, 4, history_records());
    press(&mut m, ch('g'));
    press(&mut m, ch('C'));
    assert_eq!(m.history.selected_id, Some(id(20)));
    // C on a record whose family is not read yet reads it, then goes.
    let mut m = history_at(0);
    let fx = press(&mut m, ch('C'));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadFamily(i) if *i == id(1)))
    );
    assert_eq!(m.history.selected_id, Some(id(1)));
    update(&mut m, Msg::Family(family));
    assert_eq!(m.history.selected_id, Some(id(20)));
    // A record nothing was made from says so.
    let mut m = history_at(0);
    update(
        &mut m,
        Msg::Family(Family {
            id: id(1),
            parents: vec![],
            children: vec![],
        }),
    );
    press(&mut m, ch('C'));
    assert!(
        m.current_notice()
            .unwrap()
            .text
            .contains("nothing was made")
    );
}

#[test]
fn a_pasted_path_goes_to_the_path_line_and_a_click_picks_an_input() {
    let mut m = history_at(0);
    press(&mut m, ch('E'));
    press(&mut m, key(KeyCode::Char('a'), KeyModifiers::ALT));
    update(&mut m, Msg::Paste("  /home/u/My Pictures/ref.png\n".into()));
    assert_eq!(
        m.path_input.as_ref().unwrap().text,
        "/home/u/My Pictures/ref.png"
    );
    assert_eq!(m.prompt(), "", "not into the prompt");
    press(&mut m, plain(KeyCode::Esc));
    // In the wide strip with pictures, a click on the second input selects it.
    update(&mut m, Msg::Resize(120, 40));
    m.focus = Pane::History;
    press(&mut m, ch('G'));
    press(&mut m, ch('R'));
    m.input_cursor = 0;
    let cells = easel::studio::strip::cells(&m);
    let at = cells[1].caption;
    update(
        &mut m,
        Msg::Mouse(crossterm::event::MouseEvent {
            kind: crossterm::event::MouseEventKind::Down(crossterm::event::MouseButton::Left),
            column: at.x + 1,
            row: at.y,
            modifiers: KeyModifiers::NONE,
        }),
    );
    assert_eq!(m.focus, Pane::Inputs);
    assert_eq!(m.input_cursor, 1);
}

/// From compare, `E` edits the shown image: it becomes the first input and the editor is focused.
#[test]
fn edit_from_the_shown_image_in_compare() {
    let mut m = comparing();
    press(&mut m, ch('b'));
    press(&mut m, ch(' '));
    press(&mut m, ch('E'));
    assert!(m.compare.is_none());
    assert_eq!(m.focus, Pane::Editor);
    let first = m.params.images.first().expect("an input");
    assert_eq!(first.record.as_deref(), Some(id(4).to_string().as_str()));
    assert!(
        first.path.ends_with("images/2025/03/14/4.png"),
        "{:?}",
        first.path
    );
}

/// Ctrl-L and F5 redraw and ask the terminal again what it can show; inside tmux a resize or
/// focus coming back checks whether another client (another terminal) attached; new answers
/// draw the pictures again, the new way.
#[test]
fn redraw_and_redetect() {
    use easel::studio::model::Graphics;
    // `true`: ask the terminal now (the key); `false`: look for another tmux client first.
    let redetect = |fx: &[Effect]| -> Vec<bool> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Redetect { asked } => Some(*asked),
                Effect::CheckTmuxClient => Some(false),
                _ => None,
            })
            .collect()
    };
    let mut m = rich();
    update(&mut m, Msg::Resize(120, 40));
    m.focus = Pane::History;
    assert_eq!(redetect(&press(&mut m, ctrl('l'))), vec![true]);
    assert_eq!(redetect(&press(&mut m, plain(KeyCode::F(5)))), vec![true]);
    // In the editor Ctrl-L clears the prompt (as it always did); F5 still redraws.
    m.focus = Pane::Editor;
    type_text(&mut m, "a fox");
    assert!(redetect(&press(&mut m, ctrl('l'))).is_empty());
    assert_eq!(m.prompt(), "");
    assert_eq!(redetect(&press(&mut m, plain(KeyCode::F(5)))), vec![true]);
    m.focus = Pane::History;

    // Outside tmux a resize is only a resize.
    assert!(redetect(&update(&mut m, Msg::Resize(100, 30))).is_empty());
    assert!(redetect(&update(&mut m, Msg::Focus(true))).is_empty());
    m.in_tmux = true;
    assert_eq!(redetect(&update(&mut m, Msg::Resize(120, 40))), vec![false]);
    assert_eq!(redetect(&update(&mut m, Msg::Focus(true))), vec![false]);
    assert!(redetect(&update(&mut m, Msg::Focus(false))).is_empty());
    // An attach need not resize or refocus: the clock looks every few seconds, no more.
    let every = easel::studio::update::TMUX_CHECK_SECS;
    assert_eq!(redetect(&update(&mut m, Msg::Tick(t0()))), vec![false]);
    assert!(
        redetect(&update(
            &mut m,
            Msg::Tick(t0() + Duration::seconds(every - 1))
        ))
        .is_empty()
    );
    assert_eq!(
        redetect(&update(&mut m, Msg::Tick(t0() + Duration::seconds(every)))),
        vec![false]
    );
    m.in_tmux = false;
    assert!(
        redetect(&update(
            &mut m,
            Msg::Tick(t0() + Duration::seconds(every * 5))
        ))
        .is_empty()
    );
    m.in_tmux = true;
    // Another client came in front: ask the terminal, quietly.
    assert!(matches!(
        update(&mut m, Msg::TmuxClientChanged).as_slice(),
        [Effect::Redetect { asked: false }]
    ));

    // The picture on show, drawn in half-blocks.
    m.graphics = Graphics::Halfblocks;
    update(&mut m, Msg::Tick(t0()));
    let key = preview_key(&m).expect("a preview for the selected record");
    let r = easel::studio::preview::Renderer::halfblocks()
        .render(&png(64, 64), key.cols, key.rows)
        .unwrap();
    update(&mut m, Msg::PreviewReady(key.clone(), Box::new(r)));
    assert!(m.preview.get(&key).is_some());

    // The same answer changes nothing; asked for, it says so.
    let fx = update(
        &mut m,
        Msg::GraphicsDetected {
            graphics: Graphics::Halfblocks,
            terminal: "tmux 3.3a".into(),
            asked: true,
        },
    );
    assert!(m.preview.get(&key).is_some());
    assert!(!fx.iter().any(|e| matches!(e, Effect::RenderPreview { .. })));
    assert!(
        m.current_notice()
            .is_some_and(|n| n.text.contains("redrawn") && n.text.contains("half-blocks"))
    );

    // Another terminal: what was drawn goes, and is drawn again the new way.
    let fx = update(
        &mut m,
        Msg::GraphicsDetected {
            graphics: Graphics::Sixel,
            terminal: "XTerm(388)\x1b[2J".into(),
            asked: false,
        },
    );
    assert_eq!(m.graphics, Graphics::Sixel);
    assert!(m.preview.get(&key).is_none());
    assert!(
        fx.iter().any(|e| matches!(e, Effect::RenderPreview { .. })),
        "{fx:?}"
    );
    let n = m.current_notice().unwrap();
    assert!(
        n.text.contains("sixel") && n.text.contains("half-blocks") && !n.text.contains('\x1b'),
        "{}",
        n.text
    );
}

/// The redraw keys (Ctrl-L, F5) and suspend (Ctrl-Z) work from every view and popup: they
/// redraw (or suspend) and leave what is open as it was. A confirmation is not answered "no" by
/// them (the key typed next still answers it), a popup is not closed, and the mask editor, the
/// lineage view, the compare screen and a path being typed keep their state.
#[test]
fn redraw_and_suspend_work_in_every_view_and_keep_it_open() {
    let redrawn = |fx: &[Effect]| {
        fx.iter()
            .any(|e| matches!(e, Effect::Redetect { asked: true }))
    };
    let suspended = |fx: &[Effect]| fx.iter().any(|e| matches!(e, Effect::Suspend));
    let keys = [ctrl('l'), plain(KeyCode::F(5))];

    // A confirmation: F5 then y still deletes.
    for k in keys {
        let mut m = history_at(0);
        press(&mut m, ch('d'));
        assert!(matches!(
            m.overlay,
            Some(Overlay::Confirm(Confirm::Delete(_)))
        ));
        assert!(
            redrawn(&press(&mut m, k)),
            "{k:?} redraws under a confirmation"
        );
        assert!(
            matches!(m.overlay, Some(Overlay::Confirm(Confirm::Delete(_)))),
            "{k:?} answered the confirmation"
        );
        let fx = press(&mut m, ch('y'));
        assert!(
            fx.iter()
                .any(|e| matches!(e, Effect::Delete(i) if *i == id(1))),
            "y after {k:?}: {fx:?}"
        );
    }
    let mut m = history_at(0);
    press(&mut m, ch('d'));
    assert!(suspended(&press(&mut m, ctrl('z'))));
    assert!(
        matches!(m.overlay, Some(Overlay::Confirm(_))),
        "Ctrl-Z answered no"
    );

    // Help and details stay open.
    for open in [ch('?'), plain(KeyCode::Enter)] {
        for k in keys {
            let mut m = history_at(0);
            press(&mut m, open);
            assert!(m.overlay.is_some());
            assert!(redrawn(&press(&mut m, k)), "{k:?} in a popup");
            assert!(m.overlay.is_some(), "{k:?} closed the popup");
        }
    }

    // The full-screen views stay open and redraw.
    for k in keys {
        let mut m = mask_open();
        let before = m.mask_edit.clone();
        assert!(redrawn(&press(&mut m, k)), "{k:?} in the mask editor");
        assert_eq!(m.mask_edit, before);
        assert!(
            suspended(&press(&mut m, ctrl('z'))),
            "Ctrl-Z in the mask editor"
        );

        let mut m = history_at(0);
        press(&mut m, ch('L'));
        update(&mut m, Msg::Lineage(id(1), Ok(Box::new(family_of_1(2)))));
        assert!(redrawn(&press(&mut m, k)), "{k:?} in the lineage view");
        assert!(m.lineage.is_some());
        assert!(
            suspended(&press(&mut m, ctrl('z'))),
            "Ctrl-Z in the lineage view"
        );

        let mut m = comparing();
        assert!(redrawn(&press(&mut m, k)), "{k:?} in compare");
        assert!(m.compare.is_some());
        assert!(suspended(&press(&mut m, ctrl('z'))), "Ctrl-Z in compare");

        // A path being typed for the strip keeps its text.
        let mut m = history_at(0);
        press(&mut m, ch('E'));
        press(&mut m, key(KeyCode::Char('a'), KeyModifiers::ALT));
        assert!(m.path_input.is_some());
        type_text(&mut m, "/tmp/x");
        assert!(redrawn(&press(&mut m, k)), "{k:?} while typing a path");
        assert_eq!(
            m.path_input.as_ref().map(|p| p.text.as_str()),
            Some("/tmp/x")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The lineage view (issue 12)

use easel::studio::lineage::{Node, Tree};

fn lineage_node(prompt: &str, image: bool) -> Node {
    Node {
        prompt: prompt.into(),
        created: t0(),
        status: Status::Succeeded,
        image: image.then(|| {
            (
                PathBuf::from(format!("/data/easel/{prompt}.png")),
                "cd".repeat(32),
            )
        }),
    }
}

/// Record 1 was edited from record 7 (since deleted) with record 8 as a reference, and
/// `children` records were made from it (ids 100…).
fn family_of_1(children: u128) -> Tree {
    let mut t = Tree {
        focus: Some(id(1)),
        ..Tree::default()
    };
    t.nodes.insert(id(1), lineage_node("the one", true));
    t.nodes.insert(id(8), lineage_node("the reference", true));
    t.parents.insert(
        id(1),
        vec![(id(7), ParentRole::Edited), (id(8), ParentRole::Reference)],
    );
    let kids: Vec<(Id, ParentRole)> = (0..children)
        .map(|k| (id(100 + k), ParentRole::RerunOf))
        .collect();
    for (k, (c, _)) in kids.iter().enumerate() {
        t.nodes
            .insert(*c, lineage_node(&format!("child {k}"), true));
    }
    t.children.insert(id(1), kids);
    t
}

#[test]
fn l_opens_the_lineage_view_and_enter_goes_to_a_node() {
    let mut m = history_at(0);
    let fx = press(&mut m, ch('L'));
    assert!(
        matches!(fx.as_slice(), [Effect::LoadLineage(i)] if *i == id(1)),
        "{fx:?}"
    );
    let view = m.lineage.as_ref().unwrap();
    assert!(view.tree.is_none() && view.rows.is_empty());
    // A family for another record (an old answer) is dropped.
    update(&mut m, Msg::Lineage(id(2), Ok(Box::new(family_of_1(2)))));
    assert!(m.lineage.as_ref().unwrap().tree.is_none());
    update(&mut m, Msg::Lineage(id(1), Ok(Box::new(family_of_1(2)))));
    let view = m.lineage.as_ref().unwrap();
    // Parents above (read upwards), the record, its children below; the record selected.
    let ids: Vec<Id> = view.rows.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![id(8), id(7), id(1), id(100), id(101)]);
    assert_eq!(view.cursor, 2);
    assert!(view.rows[1].deleted && !view.rows[0].deleted);
    // j and k move; the view keeps the keys (k is not the history's up).
    press(&mut m, ch('j'));
    assert_eq!(m.lineage.as_ref().unwrap().cursor, 3);
    press(&mut m, ch('G'));
    assert_eq!(m.lineage.as_ref().unwrap().cursor, 4);
    press(&mut m, ch('g'));
    assert_eq!(m.lineage.as_ref().unwrap().cursor, 0);
    assert_eq!(m.history.selected, 0);
    // Enter on the deleted parent: says so, stays.
    press(&mut m, ch('j'));
    let fx = press(&mut m, plain(KeyCode::Enter));
    assert!(fx.is_empty(), "{fx:?}");
    assert!(m.lineage.is_some());
    let n = m.current_notice().unwrap();
    assert!(n.error && n.text.contains("was deleted"), "{}", n.text);
    // Enter on a child: the history goes to it, the view closes.
    press(&mut m, ch('G'));
    let fx = press(&mut m, plain(KeyCode::Enter));
    assert!(m.lineage.is_none());
    assert_eq!(m.focus, Pane::History);
    assert_eq!(m.history.selected_id, Some(id(101)));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadHistory { anchor: Some(a), .. } if *a == id(101))),
        "{fx:?}"
    );
    // Esc goes back, nothing else changes.
    let mut m = history_at(0);
    press(&mut m, ch('L'));
    let fx = press(&mut m, plain(KeyCode::Esc));
    assert!(m.lineage.is_none() && fx.is_empty(), "{fx:?}");
    assert_eq!(m.history.selected, 0);
    // From the details popup too.
    let mut m = history_at(0);
    press(&mut m, plain(KeyCode::Enter));
    assert!(matches!(m.overlay, Some(Overlay::Details(_))));
    let fx = press(&mut m, ch('L'));
    assert!(m.overlay.is_none());
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadLineage(i) if *i == id(1)))
    );
    // A family that cannot be read says why.
    update(
        &mut m,
        Msg::Lineage(id(1), Err("01 is gone from history".into())),
    );
    assert_eq!(
        m.lineage.as_ref().unwrap().error.as_deref(),
        Some("01 is gone from history")
    );
}

/// A family of hundreds: only the visible nodes are drawn and only their pictures asked for;
/// moving down scrolls a node at a time.
#[test]
fn a_large_family_stays_windowed() {
    let mut m = history_at(0);
    m.graphics = easel::studio::model::Graphics::Halfblocks;
    press(&mut m, ch('L'));
    let fx = update(&mut m, Msg::Lineage(id(1), Ok(Box::new(family_of_1(500)))));
    let g = easel::studio::update::lineage_geometry(&m);
    let view = m.lineage.as_ref().unwrap();
    assert_eq!(view.rows.len(), 503);
    let shown = easel::studio::lineage::visible(&g, view);
    assert_eq!(shown.len(), g.visible);
    assert!(g.visible < 10, "{g:?}");
    // One thumbnail asked for at a time, the selected record's first.
    let thumbs: Vec<&PathBuf> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::RenderPreview { key, .. } => match &key.source {
                PreviewSource::Thumb { path, .. } => Some(path),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(
        thumbs,
        vec![&PathBuf::from("/data/easel/the one.png")],
        "{fx:?}"
    );
    // Down to the 300th child: the view follows, the cursor on its last visible node.
    for _ in 0..300 {
        press(&mut m, ch('j'));
    }
    let view = m.lineage.as_ref().unwrap();
    assert_eq!(view.cursor, 302);
    assert_eq!(view.scroll, 302 + 1 - g.visible);
    let shown = easel::studio::lineage::visible(&g, view);
    assert_eq!(shown.last().map(|(i, _)| *i), Some(302));
    // Its draw holds the visible nodes only.
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    t.draw(|f| easel::studio::view::view(&m, f)).unwrap();
    let screen: String = t
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(screen.contains("child 299 "), "{screen}");
    assert!(!screen.contains("child 0 "), "{screen}");
    assert!(!screen.contains("the one"), "{screen}");
    assert!(screen.contains("303/503"), "{screen}");
}

/// A mask the studio came back with (its draft kept from the last session) but whose
/// selection it no longer has: the mask editor reads the file and goes on from it, rather than
/// starting empty and replacing it on save.
#[test]
fn the_mask_editor_goes_on_from_a_mask_file_it_has_not_read() {
    let mut m = history_at(0);
    press(&mut m, ch('E'));
    let mask = InputImage::file("/tmp/kept-mask.png");
    m.params.mask = Some(mask.clone());
    assert!(m.painted.is_none());
    m.focus = Pane::Inputs;
    let fx = press(&mut m, ch('m'));
    assert!(m.mask_edit.is_some());
    assert!(
        fx.iter().any(|e| matches!(
            e,
            Effect::ImportMask { mask: p, picture: Some(first) }
                if *p == mask.path && *first == history_input(1).path
        )),
        "the mask file is read: {fx:?}"
    );
    let img = image::RgbaImage::from_fn(1024, 1024, |x, _| {
        image::Rgba([0, 0, 0, if x < 100 { 0 } else { 255 }])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    let op = easel::studio::mask::import(bytes.get_ref(), Some((1024, 1024))).unwrap();
    update(&mut m, Msg::MaskImported(mask.path.clone(), Ok(op.clone())));
    assert_eq!(ops(&m), vec![op.clone()], "the open editor starts from it");
    // A step already taken is not replaced by a late answer.
    let mut m = history_at(0);
    press(&mut m, ch('E'));
    m.params.mask = Some(mask.clone());
    m.focus = Pane::Inputs;
    press(&mut m, ch('m'));
    press(&mut m, ch('i'));
    update(&mut m, Msg::MaskImported(mask.path.clone(), Ok(op)));
    assert_eq!(ops(&m), vec![Op::Invert]);
}

/// A mask file loaded in the strip is read (in the runtime) and becomes the mask editor's
/// selection: `m` opens on it, and it can be added to and taken from; a file that cannot be a
/// mask says why and is not kept.
#[test]
fn a_loaded_mask_file_becomes_the_selection() {
    let mut m = history_at(0);
    press(&mut m, ch('E'));
    m.focus = Pane::Inputs;
    // (o, a path typed, Enter: resolved in the runtime.)
    let mask = InputImage::file("/tmp/mask.png");
    let fx = update(&mut m, Msg::InputResolved(InputKind::Mask, mask.clone()));
    assert_eq!(m.params.mask, Some(mask.clone()));
    assert!(
        matches!(
            fx.as_slice(),
            [Effect::ImportMask { mask: p, picture: Some(first) }]
                if *p == mask.path && *first == history_input(1).path
        ),
        "the file is read as a selection: {fx:?}"
    );
    // Its transparent area: a 1024² file with the left half clear.
    let mut img = image::RgbaImage::from_pixel(1024, 1024, image::Rgba([0, 0, 0, 255]));
    for y in 0..1024 {
        for x in 0..512 {
            img.put_pixel(x, y, image::Rgba([0, 0, 0, 0]));
        }
    }
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    let op = easel::studio::mask::import(bytes.get_ref(), Some((1024, 1024))).unwrap();
    update(&mut m, Msg::MaskImported(mask.path.clone(), Ok(op.clone())));
    assert!(
        m.current_notice().unwrap().text.contains("selection"),
        "{:?}",
        m.current_notice()
    );
    // The mask editor opens on it: the selection is the file's, and it is edited on.
    press(&mut m, ch('m'));
    assert_eq!(ops(&m), vec![op.clone()]);
    press(&mut m, ch('i'));
    assert_eq!(ops(&m), vec![op, Op::Invert]);
    // A file with nothing transparent: said, and not kept as the mask.
    let mut m = history_at(0);
    press(&mut m, ch('E'));
    update(&mut m, Msg::InputResolved(InputKind::Mask, mask.clone()));
    update(
        &mut m,
        Msg::MaskImported(
            mask.path.clone(),
            Err("it has no fully transparent pixel".into()),
        ),
    );
    let n = m.current_notice().unwrap();
    assert!(
        n.error && n.text.contains("no fully transparent pixel"),
        "{}",
        n.text
    );
    assert_eq!(m.params.mask, None);
}

/// The redraw key works in the views that take the keys while open (the run grid, the lineage
/// view), and leaves them open.
#[test]
fn the_redraw_key_works_in_the_views_that_take_the_keys() {
    let asked = |fx: &[Effect]| {
        fx.iter()
            .any(|e| matches!(e, Effect::Redetect { asked: true }))
    };
    // The lineage view.
    let mut m = history_at(0);
    press(&mut m, ch('L'));
    update(&mut m, Msg::Lineage(id(1), Ok(Box::new(family_of_1(2)))));
    assert!(asked(&press(&mut m, plain(KeyCode::F(5)))));
    assert!(asked(&press(&mut m, ctrl('l'))));
    assert!(m.lineage.is_some());
    // A run's grid.
    let mut m = model();
    update(&mut m, Msg::Resize(120, 40));
    page(&mut m, 0, 5, run_history());
    m.focus = Pane::History;
    press(&mut m, ch('V'));
    update(&mut m, Msg::RunLoaded(id(900), run_history()));
    assert!(m.run_grid.is_some());
    assert!(asked(&press(&mut m, plain(KeyCode::F(5)))));
    assert!(asked(&press(&mut m, ctrl('l'))));
    assert!(m.run_grid.is_some());
}
