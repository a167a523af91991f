#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Runs in the studio (issue 14), through the pure `update`: the count shown as the prompt is
//! typed, a run queued whole with one run id, refusals, the spend confirmation, and a run's
//! jobs grouped and acted on in the queue.

use chrono::{DateTime, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use easel::api::{GenerationParams, ProviderRules};
use easel::catalog::Catalog;
use easel::queue::{JobEvent, Submission};
use easel::runs::parse::ErrorKind;
use easel::store::{GenerationRecord, Id, RunInfo, SavedImage, Status};
use easel::studio::keymap::Keymap;
use easel::studio::model::{Confirm, Model, Overlay, Pane, ProviderInfo};
use easel::studio::msg::{Effect, Msg};
use easel::studio::update::update;
use std::path::PathBuf;
use std::sync::Arc;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 14, 9, 26, 53).unwrap()
}

fn id(n: u128) -> Id {
    Id::from_uuid(uuid::Uuid::from_u128(n))
}

fn model_with(demo: bool) -> Model {
    let provider = ProviderInfo {
        name: if demo { "demo" } else { "openai" }.into(),
        demo,
        openai: !demo,
        rules: ProviderRules::default(),
    };
    let params = GenerationParams {
        model: "gpt-image-1".into(),
        size: Some("1024x1024".into()),
        quality: Some("high".into()),
        n: 2,
        ..GenerationParams::default()
    };
    let mut m = Model::new(
        Keymap::default(),
        Arc::new(Catalog::builtin()),
        provider,
        params,
        t0(),
    );
    m.data_dir = PathBuf::from("/data/easel");
    update(&mut m, Msg::Resize(100, 30));
    m
}

fn press(m: &mut Model, k: KeyEvent) -> Vec<Effect> {
    update(m, Msg::Key(k))
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn ch(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

/// Type `text` into the editor; the effects of every key.
fn type_text(m: &mut Model, text: &str) -> Vec<Effect> {
    text.chars().flat_map(|c| press(m, ch(c))).collect()
}

fn label(m: &Model) -> Option<(String, bool)> {
    m.run_preview.label()
}

fn wildcard_asks(fx: &[Effect]) -> Vec<Vec<String>> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::LoadWildcards(names) => Some(names.clone()),
            _ => None,
        })
        .collect()
}

fn colours() -> Msg {
    Msg::WildcardsLoaded(vec![(
        "w".into(),
        Ok(vec!["red".into(), "green".into(), "blue".into()]),
    )])
}

fn submitted_run(fx: &[Effect]) -> &[Submission] {
    match fx {
        [Effect::SubmitRun(jobs)] => jobs,
        other => panic!("expected one SubmitRun, got {other:?}"),
    }
}

#[test]
fn typing_a_run_shows_what_it_expands_to() {
    let mut m = model_with(true);
    // A plain prompt says nothing.
    type_text(&mut m, "a fox");
    assert_eq!(label(&m), None);
    // A choice: two prompts, four images (n = 2), free on the demo backend.
    m = model_with(true);
    type_text(&mut m, "a {b|c}");
    assert_eq!(
        label(&m),
        Some(("expands to 2 prompts · 4 images · $0 (demo)".into(), false))
    );
    // A wildcard not read yet is asked for once, through an effect (no disk I/O in update).
    let fx = type_text(&mut m, " __w__");
    assert_eq!(wildcard_asks(&fx), vec![vec!["w".to_string()]]);
    assert_eq!(label(&m), Some(("reading wildcard files…".into(), false)));
    let fx = update(&mut m, colours());
    assert!(wildcard_asks(&fx).is_empty());
    assert_eq!(
        label(&m),
        Some(("expands to 6 prompts · 12 images · $0 (demo)".into(), false))
    );
    // Typing on does not read it again.
    assert!(wildcard_asks(&type_text(&mut m, " x")).is_empty());
}

#[test]
fn a_paid_run_shows_its_estimate() {
    let mut m = model_with(false);
    type_text(&mut m, "a {red|blue|green} kite");
    let (text, warning) = label(&m).unwrap();
    assert!(!warning);
    assert!(
        text.starts_with("expands to 3 prompts · 6 images · ≈ $"),
        "{text}"
    );
    // The estimate is three times one request's.
    let one = easel::generation::estimate(
        &m.catalog,
        &GenerationParams {
            prompt: "a {red|blue|green} kite".into(),
            ..m.params.clone()
        },
    )
    .unwrap();
    assert!(text.ends_with(&format!("≈ ${:.2}", one * 3.0)), "{text}");
}

#[test]
fn bad_syntax_shows_the_column_and_queues_nothing() {
    for (prompt, want) in [
        ("a {cat|dog", "column 3: unclosed brace"),
        ("a {} cat", "column 3: empty alternative list"),
        ("a cat}", "column 6: this '}' closes no '{'"),
    ] {
        let mut m = model_with(true);
        type_text(&mut m, prompt);
        let (text, warning) = label(&m).unwrap_or_default();
        assert!(warning, "{prompt}: {text}");
        assert!(text.starts_with(want), "{prompt}: {text}");
        let fx = press(&mut m, ctrl('s'));
        assert!(fx.is_empty(), "{prompt}: {fx:?}");
        let n = m.current_notice().unwrap();
        assert!(
            n.error && n.text.starts_with(&format!("not queued: {want}")),
            "{n:?}"
        );
    }
}

#[test]
fn an_unknown_wildcard_is_an_error_with_its_column_and_is_read_again_on_submit() {
    let mut m = model_with(true);
    type_text(&mut m, "a {b|c} __nope__");
    update(
        &mut m,
        Msg::WildcardsLoaded(vec![(
            "nope".into(),
            Err(ErrorKind::UnknownWildcard {
                name: "nope".into(),
                file: "/cfg/easel/wildcards/nope.txt".into(),
            }),
        )]),
    );
    let (text, warning) = label(&m).unwrap();
    assert!(warning);
    assert!(
        text.starts_with("column 9: unknown wildcard __nope__"),
        "{text}"
    );
    let fx = press(&mut m, ctrl('s'));
    // Nothing queued; the file is read again (it may have been written since).
    assert_eq!(wildcard_asks(&fx), vec![vec!["nope".to_string()]]);
    assert!(
        !fx.iter()
            .any(|e| matches!(e, Effect::SubmitRun(_) | Effect::Submit(_)))
    );
}

#[test]
fn queueing_a_run_sends_every_job_with_one_run_id() {
    let mut m = model_with(true);
    type_text(&mut m, "a {b|c} __w__");
    update(&mut m, colours());
    let fx = press(&mut m, ctrl('s'));
    let jobs = submitted_run(&fx);
    assert_eq!(jobs.len(), 6);
    let run = jobs[0].run.as_ref().unwrap().id;
    let prompts: Vec<&str> = jobs.iter().map(|s| s.params.prompt.as_str()).collect();
    assert_eq!(
        prompts,
        [
            "a b red",
            "a b green",
            "a b blue",
            "a c red",
            "a c green",
            "a c blue"
        ]
    );
    for (k, s) in jobs.iter().enumerate() {
        let info = s.run.as_ref().unwrap();
        assert_eq!((info.id, info.index, info.of), (run, k as u32 + 1, 6));
        assert_eq!(info.values.template, "a {b|c} __w__");
        assert_eq!(s.params.n, 2);
        assert_eq!(s.provider, "demo");
    }
    assert_eq!(
        jobs[4].run.as_ref().unwrap().values.wildcards[0].value,
        "green"
    );
    // The next run has another id.
    let fx = press(&mut m, ctrl('s'));
    assert_ne!(submitted_run(&fx)[0].run.as_ref().unwrap().id, run);
}

#[test]
fn a_plain_prompt_is_still_one_job_without_a_run() {
    let mut m = model_with(true);
    type_text(&mut m, r"a \{literal\} brace");
    let fx = press(&mut m, ctrl('s'));
    match fx.as_slice() {
        [Effect::Submit(s)] => {
            assert_eq!(s.params.prompt, "a {literal} brace");
            assert!(s.run.is_none());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_run_over_a_thousand_jobs_is_refused() {
    let mut m = model_with(true);
    // 11 × 11 × 11 = 1,331.
    let g = "{a|b|c|d|e|f|g|h|i|j|k}";
    type_text(&mut m, &format!("{g} {g} {g}"));
    let (text, warning) = label(&m).unwrap();
    assert!(warning);
    assert!(
        text.starts_with("expands to 1331 prompts: over 1000"),
        "{text}"
    );
    let fx = press(&mut m, ctrl('s'));
    assert!(fx.is_empty(), "{fx:?}");
    let n = m.current_notice().unwrap();
    assert!(n.error && n.text.contains("1331 jobs"), "{n:?}");
}

#[test]
fn a_job_the_model_refuses_stops_the_whole_run() {
    let mut m = model_with(true);
    // dall-e-3 makes one image a request.
    m.params.model = "dall-e-3".into();
    m.params.quality = None;
    type_text(&mut m, "a {cat|dog}");
    let fx = press(&mut m, ctrl('s'));
    assert!(fx.is_empty(), "{fx:?}");
    let n = m.current_notice().unwrap();
    assert!(
        n.text.starts_with("not queued: job 1 of 2: a cat: ")
            && n.text.ends_with("(nothing of the run was queued)"),
        "{n:?}"
    );
}

#[test]
fn an_expensive_run_asks_first_with_its_total() {
    let mut m = model_with(false);
    m.budget.confirm_above_usd = Some(0.10);
    type_text(&mut m, "a {red|blue} kite");
    let fx = press(&mut m, ctrl('s'));
    assert!(fx.is_empty(), "{fx:?}");
    let Some(Overlay::Confirm(Confirm::Run(jobs, why))) = &m.overlay else {
        panic!("{:?}", m.overlay);
    };
    assert_eq!(jobs.len(), 2);
    assert!(
        why[0].starts_with("This run of 2 jobs costs ≈ $")
            && why[0].contains("above [budget] confirm_above_usd $0.10"),
        "{why:?}"
    );
    let fx = press(&mut m, ch('y'));
    assert_eq!(submitted_run(&fx).len(), 2);
    // Any other key queues nothing.
    press(&mut m, ctrl('s'));
    assert!(press(&mut m, ch('n')).is_empty());
}

// ---------------------------------------------------------------------------------------------
// The queue

pub fn run_record(n: u128, run: Id, index: u32, of: u32, status: Status) -> GenerationRecord {
    let prompt = format!("a fox {index}");
    let params = GenerationParams {
        prompt: prompt.clone(),
        ..GenerationParams::default()
    };
    let mut r = GenerationRecord::queued(id(n), params, "demo", true, t0());
    r.status = status;
    r.run = Some(RunInfo {
        id: run,
        index,
        of,
        values: easel::runs::JobValues {
            prompt_index: 1,
            template: "a fox {1|2|3|4}".into(),
            combination: u64::from(index - 1),
            alternatives: vec![easel::runs::AltValue {
                column: 7,
                value: index.to_string(),
            }],
            wildcards: vec![],
            axes: vec![],
            repeat: 1,
        },
    });
    if status == Status::Succeeded {
        r.outputs = vec![SavedImage {
            path: PathBuf::from(format!("images/{n}.png")),
            format: "png".into(),
            width: 1024,
            height: 1024,
            bytes: 10,
            sha256: "ab".repeat(32),
        }];
    }
    r
}

fn queued(m: &mut Model, r: GenerationRecord) {
    update(m, Msg::Job(JobEvent::Queued(Box::new(r))));
}

#[test]
fn the_queue_counts_a_run_and_keys_act_on_all_of_it() {
    let mut m = model_with(true);
    let run = id(900);
    // A single job before the run, and one after: the run's jobs stay together.
    let mut single = run_record(50, run, 1, 1, Status::Queued);
    single.run = None;
    queued(&mut m, single);
    for k in 1..=4 {
        queued(&mut m, run_record(k, run, k as u32, 4, Status::Queued));
    }
    update(
        &mut m,
        Msg::Job(JobEvent::Started(Box::new(run_record(
            1,
            run,
            1,
            4,
            Status::Running,
        )))),
    );
    update(
        &mut m,
        Msg::Job(JobEvent::Succeeded(Box::new(run_record(
            1,
            run,
            1,
            4,
            Status::Succeeded,
        )))),
    );
    update(
        &mut m,
        Msg::Job(JobEvent::Started(Box::new(run_record(
            2,
            run,
            2,
            4,
            Status::Running,
        )))),
    );
    let mut failed = run_record(2, run, 2, 4, Status::Failed);
    failed.error = None;
    update(&mut m, Msg::Job(JobEvent::Failed(Box::new(failed))));
    update(
        &mut m,
        Msg::Job(JobEvent::Started(Box::new(run_record(
            3,
            run,
            3,
            4,
            Status::Running,
        )))),
    );
    let c = m.queue.run_counts(run);
    assert_eq!((c.done, c.running, c.queued, c.failed), (1, 1, 1, 1));
    let tally = &m.queue.runs[&run];
    assert_eq!(
        easel::studio::runs::header_text(tally, c),
        "run · 1/4 done · 1 running · 1 queued · 1 failed · a fox {1|2|3|4}"
    );
    // The run's jobs are next to each other in the pane.
    let order: Vec<Option<u32>> = m
        .queue
        .jobs
        .iter()
        .map(|j| j.record.run.as_ref().map(|r| r.index))
        .collect();
    let firsts = order.iter().position(|x| x.is_some()).unwrap();
    assert!(
        order[firsts..firsts + 3].iter().all(Option::is_some),
        "{order:?}"
    );

    // The keys act on the run of the selected job.
    m.focus = Pane::Queue;
    m.queue.selected = m
        .queue
        .jobs
        .iter()
        .position(|j| j.record.id == id(4))
        .unwrap();
    let fx = press(&mut m, ch('P'));
    assert!(
        matches!(fx.as_slice(), [Effect::PauseRun(r, true)] if *r == run),
        "{fx:?}"
    );
    update(&mut m, Msg::Job(JobEvent::RunPaused(run, true)));
    assert!(m.queue.runs[&run].paused);
    assert!(matches!(
        press(&mut m, ch('P')).as_slice(),
        [Effect::PauseRun(_, false)]
    ));
    let fx = press(&mut m, ch('X'));
    let mut cancelled: Vec<Id> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Cancel(id) => Some(*id),
            Effect::PauseRun(..) => None,
            other => panic!("{other:?}"),
        })
        .collect();
    cancelled.sort();
    assert_eq!(cancelled, vec![id(3), id(4)]);
    let fx = press(&mut m, ch('R'));
    assert!(
        matches!(fx.as_slice(), [Effect::Retry(r)] if *r == id(2)),
        "{fx:?}"
    );
    // Once cancelled, R sends those again too.
    let mut cancelled_job = m
        .queue
        .jobs
        .iter()
        .find(|j| j.record.id == id(3))
        .unwrap()
        .record
        .clone();
    cancelled_job.status = Status::Cancelled;
    update(
        &mut m,
        Msg::Job(JobEvent::Cancelled(Box::new(cancelled_job))),
    );
    m.queue.selected = m
        .queue
        .jobs
        .iter()
        .position(|j| j.record.id == id(4))
        .unwrap();
    let mut retried: Vec<Id> = press(&mut m, ch('R'))
        .iter()
        .filter_map(|e| match e {
            Effect::Retry(id) => Some(*id),
            _ => None,
        })
        .collect();
    retried.sort();
    assert_eq!(retried, vec![id(2), id(3)]);
    // A job that is not part of a run: the run keys say so and do nothing.
    m.queue.selected = m
        .queue
        .jobs
        .iter()
        .position(|j| j.record.id == id(50))
        .unwrap();
    assert!(press(&mut m, ch('X')).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Send as batch

#[test]
fn the_demo_backend_has_no_batch_api_and_says_so() {
    let mut m = model_with(true);
    type_text(&mut m, "a {red|blue} kite");
    let fx = press(&mut m, ctrl('b'));
    assert!(fx.is_empty(), "{fx:?}");
    assert!(m.overlay.is_none());
    let n = m.current_notice().unwrap();
    assert!(
        n.error
            && n.text.contains("demo backend has no Batch API")
            && n.text.contains("--provider openai"),
        "{n:?}"
    );
}

#[test]
fn a_run_is_sent_as_one_batch_after_a_confirmation() {
    let mut m = model_with(false);
    type_text(&mut m, "a {red|blue} kite");
    assert!(press(&mut m, ctrl('b')).is_empty());
    let Some(Overlay::Confirm(Confirm::Batch(lines, why))) = &m.overlay else {
        panic!("{:?}", m.overlay);
    };
    assert_eq!(lines.len(), 2);
    assert!(
        why[0].starts_with("Send 2 jobs (4 images) to openai as one batch: ≈ $")
            && why[0].contains("at batch prices (half the live price); results within 24 h"),
        "{why:?}"
    );
    // The question is about sending a batch: nothing is wrong that it would be "anyway".
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
    terminal.draw(|f| easel::studio::view::view(&m, f)).unwrap();
    let screen: String = terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(screen.contains("Send it as one batch? y / n"), "{screen}");
    assert!(!screen.contains("anyway"), "{screen}");
    let fx = press(&mut m, ch('y'));
    let [Effect::SendBatch(lines)] = fx.as_slice() else {
        panic!("{fx:?}");
    };
    let run = lines[0].submission.run.as_ref().unwrap().id;
    for (k, l) in lines.iter().enumerate() {
        let info = l.submission.run.as_ref().unwrap();
        assert_eq!((info.id, info.index, info.of), (run, k as u32 + 1, 2));
        // The body sent is the checked request of that job.
        assert_eq!(l.body["prompt"], l.submission.params.prompt.as_str());
        assert_eq!(l.body["model"], "gpt-image-1");
    }
    assert_eq!(lines[1].submission.params.prompt, "a blue kite");
    // A single prompt goes as a batch of one, without a run.
    let mut m = model_with(false);
    type_text(&mut m, "a kite");
    press(&mut m, ctrl('b'));
    let fx = press(&mut m, ch('y'));
    let [Effect::SendBatch(lines)] = fx.as_slice() else {
        panic!("{fx:?}");
    };
    assert_eq!(lines.len(), 1);
    assert!(lines[0].submission.run.is_none());
}

#[test]
fn a_batch_job_in_the_queue_shows_its_batch_and_state() {
    let mut m = model_with(false);
    let mut r = run_record(60, id(901), 1, 1, Status::Queued);
    r.run = None;
    r.prompt = "a kite".into();
    r.batch = Some(easel::store::BatchRef {
        id: "batch_abc".into(),
        custom_id: id(60).to_string(),
    });
    queued(&mut m, r);
    update(
        &mut m,
        Msg::Job(JobEvent::BatchState {
            batch: "batch_abc".into(),
            state: "in_progress".into(),
        }),
    );
    m.focus = Pane::Queue;
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 40)).unwrap();
    terminal.draw(|f| easel::studio::view::view(&m, f)).unwrap();
    let screen: String = terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(
        screen.contains("in batch batch_abc · in_progress"),
        "{screen}"
    );
}

// ---------------------------------------------------------------------------------------------
// Found by use (issue 14 QA)

/// X on a run with jobs running and queued: a running job cancelled first frees its slot, and the
/// scheduler may start the next queued job of the run (a request sent, maybe paid for) before its
/// own cancel arrives. The run is held first, its queued jobs cancelled before the running ones,
/// and the hold lifted at the end (so a later retry is not held).
#[test]
fn cancelling_a_run_holds_it_first_so_no_queued_job_starts_meanwhile() {
    let mut m = model_with(true);
    let run = id(900);
    for k in 1..=4 {
        queued(&mut m, run_record(k, run, k as u32, 4, Status::Queued));
    }
    for k in 1..=2 {
        update(
            &mut m,
            Msg::Job(JobEvent::Started(Box::new(run_record(
                k,
                run,
                k as u32,
                4,
                Status::Running,
            )))),
        );
    }
    m.focus = Pane::Queue;
    m.queue.selected = 0;
    let fx = press(&mut m, ch('X'));
    let steps: Vec<String> = fx
        .iter()
        .map(|e| match e {
            Effect::PauseRun(r, p) if *r == run => format!("pause {p}"),
            Effect::Cancel(i) if *i == id(1) || *i == id(2) => "cancel running".into(),
            Effect::Cancel(i) if *i == id(3) || *i == id(4) => "cancel queued".into(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        steps,
        [
            "pause true",
            "cancel queued",
            "cancel queued",
            "cancel running",
            "cancel running",
            "pause false"
        ]
    );
}

/// A cancelled run's header counts its cancelled jobs, and the status line says how the run ended
/// (not "done" as if it had all succeeded).
#[test]
fn a_cancelled_run_says_so_in_its_header_and_when_it_ends() {
    let mut m = model_with(true);
    let run = id(901);
    for k in 1..=3 {
        queued(&mut m, run_record(k, run, k as u32, 3, Status::Queued));
    }
    update(
        &mut m,
        Msg::Job(JobEvent::Started(Box::new(run_record(
            1,
            run,
            1,
            3,
            Status::Running,
        )))),
    );
    update(
        &mut m,
        Msg::Job(JobEvent::Succeeded(Box::new(run_record(
            1,
            run,
            1,
            3,
            Status::Succeeded,
        )))),
    );
    update(
        &mut m,
        Msg::Job(JobEvent::Cancelled(Box::new(run_record(
            2,
            run,
            2,
            3,
            Status::Cancelled,
        )))),
    );
    let c = m.queue.run_counts(run);
    assert_eq!(
        easel::studio::runs::header_text(&m.queue.runs[&run], c),
        "run · 1/3 done · 1 queued · 1 cancelled · a fox {1|2|3|4}"
    );
    update(
        &mut m,
        Msg::Job(JobEvent::Cancelled(Box::new(run_record(
            3,
            run,
            3,
            3,
            Status::Cancelled,
        )))),
    );
    // X lifts its hold on the run last: with nothing of the run left to start, that is no news
    // and does not hide how the run ended.
    update(&mut m, Msg::Job(JobEvent::RunPaused(run, false)));
    let last = &m.notices.last().unwrap().text;
    assert!(
        last.contains("1 of 3 done") && last.contains("2 cancelled"),
        "{last}"
    );
}

/// A run sent as a batch, in the queue pane of a 120×40 studio (52 columns): each row still says
/// which job of the run it is and what sets it apart, and the batch's state; the header counts
/// the jobs waiting in the batch (they are not queued here: nothing starts them).
#[test]
fn a_run_in_a_batch_keeps_its_labels_and_state_in_a_narrow_queue() {
    let mut m = model_with(false);
    update(&mut m, Msg::Resize(120, 40));
    let run = id(902);
    for k in 1..=6u32 {
        let mut r = run_record(u128::from(k) + 100, run, k, 6, Status::Queued);
        r.batch = Some(easel::store::BatchRef {
            id: "batch_000002".into(),
            custom_id: id(u128::from(k) + 100).to_string(),
        });
        queued(&mut m, r);
    }
    update(
        &mut m,
        Msg::Job(JobEvent::BatchState {
            batch: "batch_000002".into(),
            state: "in_progress".into(),
        }),
    );
    m.focus = Pane::Queue;
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
    terminal.draw(|f| easel::studio::view::view(&m, f)).unwrap();
    let buf = terminal.backend().buffer();
    let rows: Vec<String> = (0..40)
        .map(|y| (0..120).map(|x| buf[(x, y)].symbol()).collect::<String>())
        .collect();
    let header = rows
        .iter()
        .find(|r| r.contains("▾ run"))
        .unwrap_or_else(|| panic!("{}", rows.join("\n")));
    assert!(header.contains("6 in batch batch_000002"), "{header}");
    assert!(!header.contains("queued"), "{header}");
    for k in 1..=6 {
        let row = rows
            .iter()
            .find(|r| r.contains(&format!("{k}/6 · {k} · ")))
            .unwrap_or_else(|| panic!("job {k}:\n{}", rows.join("\n")));
        assert!(row.contains("in_progress"), "{row}");
    }
}

/// The studio quit with a run half done, then started again: the jobs it interrupted are no
/// longer queued. They used to be counted as done ("8/12 done", then "run … done") and were
/// nowhere to retry. At start the run's records are read: the header counts what succeeded,
/// the interrupted and failed jobs are back in the pane, and R retries them.
#[test]
fn a_run_resumed_at_start_counts_its_interrupted_jobs_and_r_retries_them() {
    let mut m = model_with(true);
    let run = id(903);
    let all: Vec<GenerationRecord> = [
        Status::Succeeded,
        Status::Succeeded,
        Status::Interrupted,
        Status::Failed,
        Status::Queued,
        Status::Queued,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, s)| run_record(200 + i as u128, run, i as u32 + 1, 6, s))
    .collect();
    let fx = update(&mut m, Msg::QueueLoaded(all[4..].to_vec()));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadRun(r) if *r == run)),
        "{fx:?}"
    );
    update(&mut m, Msg::RunLoaded(run, all.clone()));
    let c = m.queue.run_counts(run);
    assert_eq!(
        easel::studio::runs::header_text(&m.queue.runs[&run], c),
        "run · 2/6 done · 2 queued · 2 failed · a fox {1|2|3|4}"
    );
    m.focus = Pane::Queue;
    m.queue.selected = 0;
    let mut retried: Vec<Id> = press(&mut m, ch('R'))
        .iter()
        .filter_map(|e| match e {
            Effect::Retry(i) => Some(*i),
            _ => None,
        })
        .collect();
    retried.sort();
    assert_eq!(retried, vec![id(202), id(203)]);
    // Read again later (the grid open), the tally does not count a job twice, and jobs the
    // user dismissed from the pane do not come back.
    update(&mut m, Msg::RunLoaded(run, all));
    assert_eq!(m.queue.run_counts(run).done, 2);
}

/// The service says which runs are held when the studio subscribes, which may be before the
/// studio has read its queue: the run's header says "paused" whichever comes first.
#[test]
fn a_run_held_before_the_queue_is_read_shows_paused() {
    let mut m = model_with(true);
    let run = id(904);
    update(&mut m, Msg::Job(JobEvent::RunPaused(run, true)));
    let jobs: Vec<GenerationRecord> = (1..=3)
        .map(|k| run_record(300 + u128::from(k), run, k, 3, Status::Queued))
        .collect();
    update(&mut m, Msg::QueueLoaded(jobs));
    let c = m.queue.run_counts(run);
    let header = easel::studio::runs::header_text(&m.queue.runs[&run], c);
    assert!(header.contains("3 queued · paused"), "{header}");
    // Let go: no longer paused, and a run let go before its jobs are seen is not held either.
    update(&mut m, Msg::Job(JobEvent::RunPaused(run, false)));
    assert!(!m.queue.runs[&run].paused);
}

/// The ended jobs of a run stay in the pane in run order, whatever order their ends came in
/// (a cancelled run was listed 8/8, 7/8, … 3/8).
#[test]
fn a_runs_ended_jobs_are_listed_in_run_order() {
    let mut m = model_with(true);
    let run = id(905);
    for k in 1..=4u32 {
        queued(
            &mut m,
            run_record(400 + u128::from(k), run, k, 4, Status::Queued),
        );
    }
    for k in [4u32, 2, 3] {
        update(
            &mut m,
            Msg::Job(JobEvent::Cancelled(Box::new(run_record(
                400 + u128::from(k),
                run,
                k,
                4,
                Status::Cancelled,
            )))),
        );
    }
    let order: Vec<(u32, Status)> = m
        .queue
        .jobs
        .iter()
        .map(|j| (j.record.run.as_ref().unwrap().index, j.record.status))
        .collect();
    assert_eq!(
        order,
        [
            (1, Status::Queued),
            (2, Status::Cancelled),
            (3, Status::Cancelled),
            (4, Status::Cancelled)
        ]
    );
}

/// At 80×24 the queue pane is 44 columns inside: a run's row kept the model and size
/// (the same for every job of a studio run) and cut what sets the job apart ("3/12 · red, d…").
#[test]
fn a_runs_rows_keep_their_values_at_80_columns() {
    let mut m = model_with(true);
    update(&mut m, Msg::Resize(80, 24));
    let run = id(906);
    for k in 1..=3u32 {
        let mut r = run_record(500 + u128::from(k), run, k, 12, Status::Queued);
        r.run.as_mut().unwrap().values.alternatives = vec![
            easel::runs::AltValue {
                column: 3,
                value: "green".into(),
            },
            easel::runs::AltValue {
                column: 20,
                value: format!("dog{k}"),
            },
        ];
        queued(&mut m, r);
    }
    update(
        &mut m,
        Msg::Job(JobEvent::Started(Box::new({
            let mut r = run_record(501, run, 1, 12, Status::Running);
            r.run.as_mut().unwrap().values.alternatives = vec![
                easel::runs::AltValue {
                    column: 3,
                    value: "green".into(),
                },
                easel::runs::AltValue {
                    column: 20,
                    value: "dog1".into(),
                },
            ];
            r
        }))),
    );
    m.focus = Pane::Queue;
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
    terminal.draw(|f| easel::studio::view::view(&m, f)).unwrap();
    let buf = terminal.backend().buffer();
    let rows: Vec<String> = (0..24)
        .map(|y| (0..80).map(|x| buf[(x, y)].symbol()).collect::<String>())
        .collect();
    // The pane has room for two jobs under the header.
    for k in 1..=2 {
        assert!(
            rows.iter()
                .any(|r| r.contains(&format!("{k}/12 · green, dog{k}"))),
            "job {k}:\n{}",
            rows.join("\n")
        );
    }
    // The running job still says for how long, and which attempt.
    assert!(
        rows.iter().any(|r| r.contains("1/12") && r.contains(" a")),
        "{}",
        rows.join("\n")
    );
}
