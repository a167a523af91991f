//! The studio's edge: the terminal, the event loop, and the workers that carry out effects.
//!
//! Terminal events, scheduler events and worker results all become `Msg`s; after draining
//! everything that is waiting, the loop draws at most once per frame and only when something
//! changed. Nothing here blocks the loop: the store, previews and the network run on workers.

use super::input::TerminalInput;
use super::model::{Graphics, Model, ProviderInfo};
use super::msg::{Effect, Msg, PreviewSource, StoreOutcome};
use super::preview::{KittyPlacer, Renderer};
use super::update::update;
use super::view::view;
use crate::config::{Provider, Settings};
use crate::queue::SchedulerHandle;
use crate::store::HistoryStore;
use crossterm::event::{Event, KeyboardEnhancementFlags};
use crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use crossterm::{execute, terminal};
use ratatui::DefaultTerminal;
use ratatui::layout::Rect;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// At most this often is the screen drawn.
const FRAME: Duration = Duration::from_millis(16);

/// When the process started (set by `main`), for the start-up figure.
pub static PROCESS_START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Measurements for the benchmark script, written only when `EASEL_PERF_LOG` names a file: the
/// time to the first complete frame, how long each key press took to reach the screen, and the
/// peak resident memory. `EASEL_PERF_EXIT=first-frame` quits after the first complete frame.
struct PerfLog {
    file: Option<std::fs::File>,
    exit_after_first_frame: bool,
    first_frame_done: bool,
    keys: Vec<Instant>,
}

impl PerfLog {
    fn from_env() -> PerfLog {
        let file = std::env::var_os("EASEL_PERF_LOG").and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        let exit_after_first_frame =
            std::env::var("EASEL_PERF_EXIT").is_ok_and(|v| v == "first-frame");
        PerfLog {
            file,
            exit_after_first_frame,
            first_frame_done: false,
            keys: Vec::new(),
        }
    }

    fn on(&self) -> bool {
        self.file.is_some()
    }

    fn write(&mut self, line: serde_json::Value) {
        if let Some(f) = &mut self.file {
            let _ = writeln!(f, "{line}");
        }
    }

    /// After a draw: log key latencies, and the first frame that shows history.
    fn drawn(&mut self, model: &Model) -> bool {
        if !self.on() {
            return false;
        }
        let now = Instant::now();
        let at = PROCESS_START
            .get()
            .map_or(f64::NAN, |s| s.elapsed().as_secs_f64() * 1000.0);
        self.write(serde_json::json!({ "frame_at_ms": at }));
        for t in std::mem::take(&mut self.keys) {
            let ms = (now - t).as_secs_f64() * 1000.0;
            self.write(serde_json::json!({ "key_to_screen_ms": ms }));
        }
        if !self.first_frame_done && model.history.loaded {
            self.first_frame_done = true;
            let ms = PROCESS_START
                .get()
                .map_or(f64::NAN, |s| s.elapsed().as_secs_f64() * 1000.0);
            self.write(serde_json::json!({ "first_frame_ms": ms, "history": model.history.total }));
            return self.exit_after_first_frame;
        }
        false
    }

    fn finish(&mut self) {
        if self.on() {
            let peak = std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmHWM:"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                });
            self.write(serde_json::json!({ "peak_rss_mb": peak.map(|kb| kb / 1024.0) }));
        }
    }
}

/// Everything the runtime needs that is not the model.
struct Edges {
    notify: crate::config::Notify,
    /// For reads only (tags for completion): every write goes through the scheduler.
    store: Arc<dyn HistoryStore>,
    scheduler: SchedulerHandle,
    tx: UnboundedSender<Msg>,
    history_tx: UnboundedSender<HistoryRequest>,
    preview_tx: tokio::sync::watch::Sender<Option<PreviewRequest>>,
    /// Where history images (and painted masks) live.
    data_dir: std::path::PathBuf,
    /// How pictures are drawn, shared with the preview worker: detection may change it.
    renderer: Arc<std::sync::Mutex<Renderer>>,
    /// What detection needs again: `EASEL_GRAPHICS` and `[ui] symbols`.
    graphics_setting: Option<String>,
    symbols: crate::symbols::Symbols,
    /// The tmux client last seen in front of the studio (its tty and terminal).
    tmux_client: Arc<std::sync::Mutex<Option<String>>>,
    /// Where `__name__` wildcard files are read from.
    wildcard_dir: std::path::PathBuf,
    /// The provider's client for the Batch API (none for the demo backend), or why not.
    batch_client: Result<Arc<crate::api::ImagesClient>, String>,
}

struct HistoryRequest {
    generation: u64,
    query: crate::store::Query,
    offset: usize,
    limit: usize,
    anchor: Option<crate::store::Id>,
}

#[derive(Clone)]
struct PreviewRequest {
    key: super::msg::PreviewKey,
    bytes: Option<bytes::Bytes>,
}

/// Put the terminal into the studio's mode: raw, the alternate screen, bracketed paste, and the
/// kitty keyboard protocol where the terminal has it (so Ctrl-Enter can be told apart; the
/// request is sent without asking, since asking means reading stdin, which races with the event
/// reader, and terminals that do not know it ignore it). The one pair with `restore_screen`:
/// used at start, at the end, and around `$EDITOR`, the full view and Ctrl-Z.
/// Whether the studio takes the mouse (`[ui] mouse`), set once at start.
static MOUSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn setup_screen() -> std::io::Result<()> {
    terminal::enable_raw_mode()?;
    let mut out = std::io::stdout();
    execute!(
        out,
        terminal::EnterAlternateScreen,
        crossterm::event::EnableBracketedPaste,
        crossterm::event::EnableFocusChange
    )?;
    let _ = execute!(
        out,
        crossterm::event::PushKeyboardEnhancementFlags(
            KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES
        )
    );
    if MOUSE.load(std::sync::atomic::Ordering::Relaxed) {
        let _ = execute!(out, crossterm::event::EnableMouseCapture);
    }
    Ok(())
}

/// The preview's kitty picture placed by id (kitty before 0.28 and terminals without
/// placeholders): kept in step after each frame, removed whenever the studio's screen is left.
static KITTY: std::sync::Mutex<Option<KittyPlacer>> = std::sync::Mutex::new(None);

/// Bring the placed picture in step with the model, after a frame of `size` was drawn.
fn place_kitty(model: &Model, size: ratatui::layout::Size, resized: bool) {
    if model.graphics != Graphics::KittyDirect {
        return;
    }
    let want = super::view::kitty_placement(model, Rect::new(0, 0, size.width, size.height));
    if let Ok(mut guard) = KITTY.lock() {
        let placer = guard.get_or_insert_with(KittyPlacer::default);
        if resized {
            // A resize clears the screen, and the terminal drops placements with it.
            placer.invalidate();
        }
        placer.sync(
            want.as_ref().map(|(k, at)| (k.as_ref(), *at)),
            &mut std::io::stdout(),
        );
    }
}

/// Give the terminal back as it was (safe to call more than once, and from the panic hook).
fn restore_screen() {
    let mut out = std::io::stdout();
    // Never wait here (the panic hook may run while the lock is held).
    if let Ok(mut guard) = KITTY.try_lock()
        && let Some(placer) = guard.as_mut()
    {
        placer.clear(&mut out);
    }
    let _ = execute!(
        out,
        crossterm::event::PopKeyboardEnhancementFlags,
        crossterm::event::DisableBracketedPaste,
        crossterm::event::DisableFocusChange,
        crossterm::event::DisableMouseCapture,
        terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = terminal::disable_raw_mode();
}

/// Write panics to the log file (the terminal is restored by ratatui's own hook, which runs
/// first).
fn install_panic_log(log: std::path::PathBuf) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // Restore the terminal before anything is printed.
        restore_screen();
        let backtrace = std::backtrace::Backtrace::force_capture();
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
        {
            let _ = writeln!(
                f,
                "{} easel {} panicked: {info}\n{backtrace}",
                chrono::Utc::now().to_rfc3339(),
                env!("CARGO_PKG_VERSION")
            );
        }
        eprintln!("easel crashed; the report is in {}", log.display());
        previous(info);
    }));
}

/// Run the studio until the user quits. Returns the exit status.
pub async fn run(settings: &Settings, provider: Provider, fresh: bool) -> i32 {
    let data_dir = settings.paths.data_dir.clone();
    let keymap = settings.keymap.clone();
    let engine = match crate::setup::start_engine(
        settings,
        &provider,
        crate::setup::EngineOptions {
            concurrency: settings.file.queue.concurrency,
            resume_queue: settings.file.queue.resume_queue,
            out_dir: None,
            client: "studio",
        },
    )
    .await
    {
        Ok(e) => e,
        Err(code) => return code,
    };
    let info = ProviderInfo {
        name: provider.name.clone(),
        demo: engine.demo,
        openai: provider.is_openai(),
        rules: provider.rules.clone(),
    };
    let catalog = Arc::new(settings.catalog.clone());
    let jobs_outlive = engine.service;
    let (store, scheduler, jobs) = (engine.store, engine.scheduler, engine.events);
    let store_warnings = engine.warnings;

    // Ask the terminal about graphics before the event reader starts: the answers come on stdin.
    let graphics_setting = std::env::var("EASEL_GRAPHICS").ok();
    let (renderer, graphics, graphics_warning, detection) =
        if std::io::IsTerminal::is_terminal(&std::io::stdout())
            && std::io::IsTerminal::is_terminal(&std::io::stdin())
        {
            Renderer::detect(graphics_setting.as_deref())
        } else {
            (Renderer::halfblocks(), Graphics::Halfblocks, None, None)
        };
    let renderer = renderer.with_symbols(settings.file.ui.symbols);
    let graphics = match (graphics, settings.file.ui.symbols) {
        (Graphics::Halfblocks, crate::symbols::Symbols::Quadrant) => Graphics::Quadrants,
        (g, _) => g,
    };
    crate::picture::set_symbols(settings.file.ui.symbols);
    // The full view and printed pictures use the same answers (asking twice would cost a
    // second wait, and the event reader will own stdin by then).
    if let Some(d) = &detection {
        crate::picture::remember_detection(d.clone());
    }
    let truecolor = std::env::var("COLORTERM")
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "truecolor" | "24bit"));

    install_panic_log(data_dir.join("easel.log"));
    MOUSE.store(settings.file.ui.mouse, std::sync::atomic::Ordering::Relaxed);
    let terminal = setup_screen().and_then(|()| {
        ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))
    });
    let mut terminal: DefaultTerminal = match terminal {
        Ok(t) => t,
        Err(e) => {
            restore_screen();
            crate::setup::report(
                &format!("cannot use this terminal: {e}"),
                Some(
                    "the studio needs an interactive terminal; `easel generate` works without one",
                ),
            );
            scheduler.shutdown().await;
            return 1;
        }
    };

    let mut params = crate::setup::params(
        settings,
        provider.model.as_deref(),
        &Default::default(),
        String::new(),
    );
    params.prompt.clear();
    let mut model = Model::new(keymap, catalog, info, params, chrono::Utc::now());
    model.graphics = graphics;
    model.jobs_outlive = jobs_outlive;
    model.truecolor = truecolor;
    model.data_dir = data_dir.clone();
    model.budget = settings.file.budget.clone();
    let state_file = data_dir.join(super::state::FILE);
    if !fresh && let Some(saved) = read_state(&state_file) {
        super::state::restore(&mut model, saved);
    }
    let (tx, rx) = unbounded_channel();
    if let Some(n) = &provider.notice {
        let _ = tx.send(Msg::Notice(n.clone()));
    }
    if let Some(w) = graphics_warning {
        let _ = tx.send(Msg::Problem(w));
    }
    if let Some(hint) = detection.as_ref().and_then(|d| d.hint.clone()) {
        let _ = tx.send(Msg::Notice(hint));
    }
    for w in settings.warnings.iter().chain(&store_warnings) {
        let _ = tx.send(Msg::Problem(w.clone()));
    }
    let renderer = Arc::new(std::sync::Mutex::new(renderer));
    model.in_tmux = std::env::var_os("TMUX").is_some();
    let edges = Edges {
        renderer: renderer.clone(),
        graphics_setting: graphics_setting.clone(),
        symbols: settings.file.ui.symbols,
        tmux_client: Arc::new(std::sync::Mutex::new(
            model.in_tmux.then(tmux_client).flatten(),
        )),
        notify: settings.file.ui.notify,
        store: store.clone(),
        history_tx: spawn_history_worker(store.clone(), tx.clone()),
        preview_tx: spawn_preview_worker(renderer, settings.thumbs(), tx.clone()),
        scheduler: scheduler.clone(),
        tx: tx.clone(),
        data_dir: data_dir.clone(),
        wildcard_dir: crate::runs::wildcards::folder(&crate::config::real_env),
        batch_client: match &provider.kind {
            crate::config::ProviderKind::Http(opts) => {
                crate::api::ImagesClient::new((**opts).clone())
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            }
            crate::config::ProviderKind::Demo => {
                Err("the offline demo backend has no Batch API".to_string())
            }
        },
    };
    // The queue as stored (jobs resumed from an earlier run), and the search index, off the loop.
    {
        let (store, tx) = (store.clone(), tx.clone());
        tokio::task::spawn_blocking(move || {
            if let Ok(q) = store.queue() {
                let _ = tx.send(Msg::QueueLoaded(q));
            }
            // Load the search index now, so the first `/` search does not wait for it.
            if let Err(e) = store.warm() {
                let _ = tx.send(Msg::Problem(e.to_string()));
            }
        });
    }
    // What history has spent, for the status line and the budgets (a walk over every record:
    // on its own thread, so the queue and the search index do not wait for it).
    {
        let (store, tx) = (store.clone(), tx.clone());
        tokio::task::spawn_blocking(move || match store.stats() {
            Ok(s) => {
                let _ = tx.send(Msg::SpendLoaded(Box::new(s.spend)));
            }
            Err(e) => {
                let _ = tx.send(Msg::Problem(format!("spend so far unknown: {e}")));
            }
        });
    }
    let code = event_loop(&mut terminal, &mut model, &edges, rx, jobs).await;
    // Remembered for the next start (also after SIGHUP: a dropped SSH link loses no draft).
    write_state(&state_file, &super::state::capture(&model));
    scheduler.shutdown().await;
    restore_screen();
    code
}

/// Everything the event loop reads from and keeps between turns.
struct EventLoop<'a> {
    terminal: &'a mut DefaultTerminal,
    model: &'a mut Model,
    edges: &'a Edges,
    rx: UnboundedReceiver<Msg>,
    jobs: UnboundedReceiver<crate::queue::JobEvent>,
    events: TerminalInput,
    tick: tokio::time::Interval,
    signals: Signals,
    /// Messages to hand to `update` on the next turn.
    pending: Vec<Msg>,
    /// Something visible changed since the last frame.
    dirty: bool,
    /// The screen size of the last frame (a change means the terminal cleared it).
    drawn_size: Option<ratatui::layout::Size>,
    last_draw: Instant,
    perf: PerfLog,
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    model: &mut Model,
    edges: &Edges,
    rx: UnboundedReceiver<Msg>,
    jobs: UnboundedReceiver<crate::queue::JobEvent>,
) -> i32 {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            let _ = edges
                .tx
                .send(Msg::Problem(format!("cannot watch for signals: {e}")));
            Signals::none()
        }
    };
    let size = terminal.size().unwrap_or_default();
    let mut l = EventLoop {
        terminal,
        model,
        edges,
        rx,
        jobs,
        events: TerminalInput::start(),
        tick,
        signals,
        pending: vec![
            Msg::Resize(size.width, size.height),
            Msg::Tick(chrono::Utc::now()),
        ],
        dirty: true,
        drawn_size: None,
        last_draw: Instant::now() - FRAME,
        perf: PerfLog::from_env(),
    };
    let code = l.run().await;
    l.perf.finish();
    code
}

impl EventLoop<'_> {
    async fn run(&mut self) -> i32 {
        loop {
            // Handle everything that has arrived.
            for msg in std::mem::take(&mut self.pending) {
                // A tick changes the screen only where it shows the time (elapsed seconds, a notice
                // that expires): an idle studio does not redraw.
                let face = matches!(msg, Msg::Tick(_)).then(|| super::view::clock_face(self.model));
                let effects = update(self.model, msg);
                if face.is_none_or(|f| f != super::view::clock_face(self.model)) {
                    self.dirty = true;
                }
                for e in effects {
                    match run_effect(e, self.edges, self.terminal, &self.events).await {
                        Flow::Continue => {}
                        Flow::Quit => return 0,
                    }
                }
            }
            if self.model.quitting {
                return 0;
            }
            // What the effects just sent (the prompt back from the external editor, a problem)
            // goes before keys typed meanwhile: a key must act on the state it replaces, not be
            // replaced by it (a Ctrl-S right after the editor would send the old prompt).
            let mut sent = false;
            while let Ok(m) = self.rx.try_recv() {
                self.pending.push(m);
                sent = true;
            }
            if sent {
                continue;
            }
            // Draw at most once a frame.
            let wait = FRAME.saturating_sub(self.last_draw.elapsed());
            if self.dirty && wait.is_zero() {
                // One synchronized update per frame: terminals that know it show the frame whole,
                // never half drawn (others ignore the request).
                let _ = execute!(std::io::stdout(), BeginSynchronizedUpdate);
                let size = self.terminal.size().unwrap_or_default();
                if let Err(e) = self.terminal.draw(|f| view(self.model, f)) {
                    let _ = self
                        .edges
                        .tx
                        .send(Msg::Problem(format!("drawing failed: {e}")));
                }
                let resized = self.drawn_size.replace(size).is_some_and(|s| s != size);
                place_kitty(self.model, size, resized);
                let _ = execute!(std::io::stdout(), EndSynchronizedUpdate);
                self.last_draw = Instant::now();
                self.dirty = false;
                if self.perf.drawn(self.model) {
                    return 0;
                }
                if crash_test_requested() {
                    // The reliability suite checks that a panic restores the terminal and leaves its
                    // report in the log: this is how it makes one happen, after a real frame.
                    #[allow(clippy::panic)]
                    {
                        panic!("EASEL_TEST_PANIC is set: panicking on purpose");
                    }
                }
            }
            let frame_timer = tokio::time::sleep(if self.dirty {
                wait
            } else {
                Duration::from_secs(3600)
            });
            tokio::select! {
                ev = self.events.next() => match ev {
                    Some(Ok(Event::Key(k))) => {
                        if self.perf.on() {
                            self.perf.keys.push(Instant::now());
                        }
                        self.pending.push(Msg::Key(k));
                    }
                    Some(Ok(Event::Paste(p))) => self.pending.push(Msg::Paste(p)),
                    Some(Ok(Event::FocusGained)) => self.pending.push(Msg::Focus(true)),
                    Some(Ok(Event::FocusLost)) => self.pending.push(Msg::Focus(false)),
                    Some(Ok(Event::Mouse(me))) => self.pending.push(Msg::Mouse(me)),
                    Some(Ok(Event::Resize(w, h))) => self.pending.push(Msg::Resize(w, h)),
                    Some(Err(e)) => self.pending.push(Msg::Problem(format!("reading the terminal failed: {e}"))),
                    // The terminal is gone (a dropped SSH connection).
                    None => return 0,
                },
                Some(j) = self.jobs.recv() => self.pending.push(Msg::Job(j)),
                Some(m) = self.rx.recv() => self.pending.push(m),
                _ = self.tick.tick() => self.pending.push(Msg::Tick(chrono::Utc::now())),
                sig = self.signals.next() => {
                    if sig {
                        // SIGTERM, SIGHUP (SSH dropped) or SIGINT: stop cleanly.
                        return 0;
                    }
                }
                _ = frame_timer => {}
            }
            // Coalesce: take everything else that is already waiting.
            while let Ok(j) = self.jobs.try_recv() {
                self.pending.push(Msg::Job(j));
            }
            while let Ok(m) = self.rx.try_recv() {
                self.pending.push(m);
            }
        }
    }
}

/// Copy text to the clipboard with OSC 52: through the terminal to the local clipboard, also
/// over SSH.
fn osc52(text: &str) {
    let encoded =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text.as_bytes());
    let mut out = std::io::stdout();
    let _ = write!(out, "\x1b]52;c;{encoded}\x07");
    let _ = out.flush();
}

/// The studio's state from an earlier run, if it can be read (a damaged file is ignored: it
/// only holds conveniences).
fn read_state(path: &std::path::Path) -> Option<super::state::Saved> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > 1 << 20 {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Save the studio's state: a private temporary file renamed into place.
fn write_state(path: &std::path::Path, saved: &super::state::Saved) {
    let Ok(bytes) = serde_json::to_vec(saved) else {
        return;
    };
    let Some(dir) = path.parent() else { return };
    if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir)
        && tmp.write_all(&bytes).is_ok()
    {
        let _ = tmp.persist(path);
    }
}

/// `EASEL_TEST_PANIC=1`: panic after the first frame (for the crash-report test). Only in
/// debug builds (what `cargo test` runs): a release build has no such hook.
#[cfg(debug_assertions)]
fn crash_test_requested() -> bool {
    std::env::var("EASEL_TEST_PANIC").is_ok_and(|v| v == "1")
}

#[cfg(not(debug_assertions))]
fn crash_test_requested() -> bool {
    false
}

enum Flow {
    Continue,
    Quit,
}

async fn run_effect(
    e: Effect,
    edges: &Edges,
    terminal: &mut DefaultTerminal,
    events: &TerminalInput,
) -> Flow {
    let tx = edges.tx.clone();
    match e {
        Effect::Submit(s) => {
            // Sent now, awaited elsewhere: submissions are queued in the order they were made.
            let queued = edges.scheduler.submit_in_order(s);
            tokio::spawn(async move {
                let _ = tx.send(match queued.await {
                    Ok(id) => Msg::Queued(vec![id]),
                    Err(e) => Msg::Problem(format!("not queued: {e}")),
                });
            });
        }
        Effect::SubmitRun(jobs) => {
            // Sent now, in order; when one is refused, those queued before it are cancelled: a
            // run is queued whole or not at all.
            let queued = edges.scheduler.submit_run(jobs);
            tokio::spawn(async move {
                let _ = tx.send(match queued.await {
                    Ok(ids) => Msg::Queued(ids),
                    Err(e) => Msg::Problem(format!(
                        "not queued: {e} (the jobs of the run that were queued are cancelled)"
                    )),
                });
            });
        }
        Effect::PauseRun(run, paused) => edges.scheduler.pause_run(run, paused),
        Effect::SendBatch(lines) => {
            let client = edges.batch_client.clone();
            let (scheduler, data_dir) = (edges.scheduler.clone(), edges.data_dir.clone());
            tokio::spawn(async move {
                let client = match client {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Msg::Problem(format!("not sent: {e}")));
                        return;
                    }
                };
                let of = lines.len();
                let msg = match crate::queue::send::send_batch(
                    &client, &scheduler, &data_dir, lines,
                )
                .await
                {
                    Ok(sent) => {
                        let _ = tx.send(Msg::Job(crate::queue::JobEvent::BatchState {
                            batch: sent.batch.id.clone(),
                            state: sent.batch.status.as_str().to_string(),
                        }));
                        Msg::Notice(format!(
                            "sent {of} job{} as batch {} · {}: results within 24 h (the queue shows its state)",
                            if of == 1 { "" } else { "s" },
                            sent.batch.id,
                            sent.batch.status.as_str()
                        ))
                    }
                    Err(e) => Msg::Problem(match e.hint {
                        Some(h) => format!("{} ({h})", e.message),
                        None => e.message,
                    }),
                };
                let _ = tx.send(msg);
            });
        }
        Effect::LoadWildcards(names) => {
            let dir = edges.wildcard_dir.clone();
            tokio::task::spawn_blocking(move || {
                let mut files = crate::runs::Wildcards::new(dir);
                let answers = names
                    .into_iter()
                    .map(|n| {
                        let r = files.load(&n);
                        (n, r)
                    })
                    .collect();
                let _ = tx.send(Msg::WildcardsLoaded(answers));
            });
        }
        Effect::Cancel(id) => edges.scheduler.cancel(id),
        Effect::Retry(id) => edges.scheduler.retry(id),
        Effect::MoveJob(id, how) => edges.scheduler.move_job(id, how),
        Effect::Pause(p) => edges.scheduler.pause(p),
        Effect::LoadHistory {
            generation,
            query,
            offset,
            limit,
            anchor,
        } => {
            let _ = edges.history_tx.send(HistoryRequest {
                generation,
                query,
                offset,
                limit,
                anchor,
            });
        }
        // Records are written by the scheduler alone (a running job's worker included), so a
        // star or a delete is never undone by a job's own write.
        Effect::Star(id, on) => {
            let done = edges.scheduler.star(id, on);
            tokio::spawn(async move {
                let out = match done.await {
                    Ok(r) => StoreOutcome::Starred(r),
                    Err(e) => StoreOutcome::Failed(e),
                };
                let _ = tx.send(Msg::Stored(out));
            });
        }
        Effect::Edit(id, edit) => {
            let done = edges.scheduler.edit(id, edit);
            tokio::spawn(async move {
                let out = match done.await {
                    Ok(r) => StoreOutcome::Starred(r),
                    Err(e) => StoreOutcome::Failed(e),
                };
                let _ = tx.send(Msg::Stored(out));
            });
        }
        Effect::Restore(id) => {
            let done = edges.scheduler.restore(id);
            tokio::spawn(async move {
                let out = match done.await {
                    Ok(r) => StoreOutcome::Restored(r),
                    Err(e) => StoreOutcome::Failed(e),
                };
                let _ = tx.send(Msg::Stored(out));
            });
        }
        Effect::Delete(id) => {
            let done = edges.scheduler.delete(id);
            tokio::spawn(async move {
                let out = match done.await {
                    Ok(_) => StoreOutcome::Deleted(id),
                    Err(e) => StoreOutcome::Failed(e),
                };
                let _ = tx.send(Msg::Stored(out));
            });
        }
        Effect::RenderPreview { key, bytes } => {
            let _ = edges.preview_tx.send(Some(PreviewRequest { key, bytes }));
        }
        Effect::Copy(text) => osc52(&text),
        Effect::LoadQueue => {
            let store = edges.store.clone();
            tokio::task::spawn_blocking(move || match store.queue() {
                Ok(q) => {
                    let _ = tx.send(Msg::QueueLoaded(q));
                }
                Err(e) => {
                    let _ = tx.send(Msg::Problem(e.to_string()));
                }
            });
        }
        Effect::LoadTags => {
            let store = edges.store.clone();
            tokio::task::spawn_blocking(move || {
                let tags = store
                    .tags()
                    .map(|t| t.into_iter().map(|(tag, _)| tag).collect())
                    .unwrap_or_default();
                let _ = tx.send(Msg::Tags(tags));
            });
        }
        Effect::Notify(text) => {
            let inside_tmux = std::env::var_os("TMUX").is_some();
            let bytes = super::notify::sequence(edges.notify, &text, inside_tmux);
            let mut out = std::io::stdout();
            let _ = out.write_all(bytes.as_bytes());
            let _ = out.flush();
        }
        Effect::OpenEditor(text) => {
            let result = outside_the_studio(terminal, events, || external_editor(&text));
            match result {
                Ok(t) => {
                    let _ = tx.send(Msg::EditorClosed(t));
                }
                Err(e) => {
                    let _ = tx.send(Msg::Problem(e));
                }
            }
        }
        Effect::FullView(path) => {
            if let Err(e) = outside_the_studio(terminal, events, || full_view(&path)) {
                let _ = tx.send(Msg::Problem(e));
            }
        }
        Effect::OpenViewer(path) => {
            let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            match super::viewer::choose(&env, cfg!(target_os = "macos")) {
                super::viewer::Viewer::Command(words) => {
                    let msg = match super::viewer::spawn(&words, &path) {
                        Ok(()) => Msg::Notice(format!("opened in {}", words.join(" "))),
                        Err(e) => Msg::Problem(e),
                    };
                    let _ = tx.send(msg);
                }
                super::viewer::Viewer::CopyPath(why) => {
                    osc52(&path.display().to_string());
                    let _ = tx.send(Msg::Notice(format!(
                        "{why}: copied the image's path to the clipboard (OSC 52) instead"
                    )));
                }
            }
        }
        Effect::Redetect { asked } => redetect(edges, terminal, events, asked),
        Effect::CheckTmuxClient => {
            let seen = edges.tmux_client.clone();
            tokio::task::spawn_blocking(move || {
                let mut seen = seen
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if client_changed(&mut seen, tmux_client()) {
                    let _ = tx.send(Msg::TmuxClientChanged);
                }
            });
        }
        Effect::Suspend => {
            let _ = outside_the_studio(terminal, events, || {
                // Stop like any shell job; `fg` continues here.
                signal_hook::low_level::raise(signal_hook::consts::SIGTSTP)
                    .map_err(|e| e.to_string())
            });
        }
        Effect::ResolveInput { kind, text } => {
            let (store, data_dir) = (edges.store.clone(), edges.data_dir.clone());
            tokio::task::spawn_blocking(move || {
                let msg = match resolve_input(store.as_ref(), &data_dir, &text) {
                    Ok(input) => Msg::InputResolved(kind, input),
                    Err(e) => Msg::Problem(e),
                };
                let _ = tx.send(msg);
            });
        }
        Effect::LoadFamily(id) => {
            let store = edges.store.clone();
            tokio::task::spawn_blocking(move || {
                let msg = match load_family(store.as_ref(), id) {
                    Ok(f) => Msg::Family(f),
                    Err(e) => Msg::Problem(e),
                };
                let _ = tx.send(msg);
            });
        }
        Effect::ImportMask {
            mask: path,
            picture,
        } => {
            tokio::task::spawn_blocking(move || {
                let op = import_mask(&path, picture.as_deref());
                let _ = tx.send(Msg::MaskImported(path, op));
            });
        }
        Effect::LoadLineage(id) => {
            let (store, data_dir) = (edges.store.clone(), edges.data_dir.clone());
            tokio::task::spawn_blocking(move || {
                let tree = load_lineage(store.as_ref(), &data_dir, id).map(Box::new);
                let _ = tx.send(Msg::Lineage(id, tree));
            });
        }
        Effect::CheckInputs { files, submission } => {
            tokio::task::spawn_blocking(move || {
                let result = check_inputs(&files);
                let _ = tx.send(Msg::InputsChecked { submission, result });
            });
        }
        Effect::LoadRun(run) => {
            let store = edges.store.clone();
            tokio::task::spawn_blocking(move || {
                let msg = match super::run_grid::load(store.as_ref(), run) {
                    Ok(records) => Msg::RunLoaded(run, records),
                    Err(e) => Msg::Problem(e),
                };
                let _ = tx.send(msg);
            });
        }
        Effect::LoadMaskBase { path, cols, rows } => {
            tokio::task::spawn_blocking(move || {
                let msg = match mask_base(&path, cols, rows) {
                    Ok((width, height, base)) => Msg::MaskBase {
                        path,
                        width,
                        height,
                        base,
                    },
                    Err(e) => Msg::MaskBaseFailed(path, e),
                };
                let _ = tx.send(msg);
            });
        }
        Effect::SaveMask {
            width,
            height,
            ops,
            dir,
        } => {
            tokio::task::spawn_blocking(move || {
                let msg = match save_mask(width, height, &ops, &dir) {
                    Ok(path) => Msg::MaskSaved(path),
                    Err(e) => Msg::Problem(e),
                };
                let _ = tx.send(msg);
            });
        }
        Effect::Quit => return Flow::Quit,
    }
    // The window closed (or SSH dropped) while the studio was away from its screen: stop, since
    // crossterm's reader would spin on the hung-up terminal.
    if terminal_gone() {
        return Flow::Quit;
    }
    Flow::Continue
}

/// Whether the terminal has hung up.
fn terminal_gone() -> bool {
    let mut fds = [libc::pollfd {
        fd: 0,
        events: 0,
        revents: 0,
    }];
    // SAFETY: one valid pollfd, its length given; with no events asked nothing is consumed.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) };
    ready > 0 && fds[0].revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}

/// What a typed input names (as `easel generate --image` reads it; the CLI is not imported:
/// the studio stays below it in the module tree).
enum Typed {
    File(std::path::PathBuf),
    Record { id: String, index: u32 },
}

/// An existing path (even a dangling symlink) is a file; else `ID` or `ID:N` with a
/// hexadecimal id (prefix) is a history image; anything else is a file that does not exist.
fn typed_reference(text: &str) -> Result<Typed, String> {
    let path = std::path::Path::new(text);
    if std::fs::symlink_metadata(path).is_ok() {
        return Ok(Typed::File(path.to_path_buf()));
    }
    let shown = crate::sanitize::line(text).into_owned();
    let (id, index) = match text.rsplit_once(':') {
        Some((id, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            let index: u32 = n
                .parse()
                .map_err(|_| format!("{shown}: the image number is too large"))?;
            if index == 0 {
                return Err(format!("{shown}: images are numbered from 1"));
            }
            (id, index)
        }
        _ => (text, 1),
    };
    if id.len() >= 4 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        Ok(Typed::Record {
            id: id.to_string(),
            index,
        })
    } else {
        Ok(Typed::File(path.to_path_buf()))
    }
}

/// A typed input picture: `~/…` and relative paths made absolute (a queued job may run from
/// another folder), or a history id (prefix) with an optional `:N`.
fn resolve_input(
    store: &dyn HistoryStore,
    data_dir: &std::path::Path,
    text: &str,
) -> Result<crate::api::InputImage, String> {
    let shown = crate::sanitize::line(text).into_owned();
    let expanded = match (text.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => std::path::PathBuf::from(home)
            .join(rest)
            .to_string_lossy()
            .into_owned(),
        _ => text.to_string(),
    };
    match typed_reference(&expanded)? {
        Typed::File(path) => {
            if std::fs::symlink_metadata(&path).is_err() {
                return Err(format!("{shown}: no such file, and no history id"));
            }
            let path = std::path::absolute(&path).unwrap_or(path);
            Ok(crate::api::InputImage::file(path))
        }
        Typed::Record { id, index } => {
            let found = store
                .resolve(&id)
                .map_err(|e| format!("{shown}: no such file, and {e}"))?;
            let record = store
                .get(found)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{shown}: that record is gone from history"))?;
            let saved = record.outputs.get(index as usize - 1).ok_or_else(|| {
                format!(
                    "record {} has {} image(s), not {index}",
                    record.id.short(),
                    record.outputs.len()
                )
            })?;
            let files = crate::store::ImageFiles::new(data_dir, None);
            Ok(crate::api::InputImage {
                path: files.resolve(&saved.path),
                record: Some(record.id.to_string()),
                index: Some(index),
            })
        }
    }
}

/// A record's whole family for the lineage view: its ancestors up to their roots and its
/// descendants down to the leaves (as deep as the view draws), with who was made from whom.
fn load_lineage(
    store: &dyn HistoryStore,
    data_dir: &std::path::Path,
    id: crate::store::Id,
) -> Result<super::lineage::Tree, String> {
    use super::lineage::{Node, TREE_DEPTH, Tree};
    use crate::store::{GenerationRecord, Id};
    use std::collections::HashMap;
    let focus = store
        .get(id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} is gone from history", id.short()))?;
    let page = store
        .page(&crate::store::Query::default(), None, CHILDREN_SCAN)
        .map_err(|e| e.to_string())?;
    let mut all: HashMap<Id, GenerationRecord> =
        page.records.into_iter().map(|r| (r.id, r)).collect();
    all.insert(focus.id, focus);
    let mut made_from: HashMap<Id, Vec<(Id, crate::store::record::ParentRole)>> = HashMap::new();
    for r in all.values() {
        for p in r.lineage() {
            made_from.entry(p.id).or_default().push((r.id, p.role));
        }
    }
    for list in made_from.values_mut() {
        list.sort_by_key(|(c, _)| all.get(c).map(|r| r.created));
    }
    let mut tree = Tree {
        focus: Some(id),
        ..Tree::default()
    };
    // Up: each record's parents (one older than the records scanned is read on its own).
    let mut level = vec![id];
    for _ in 0..=TREE_DEPTH {
        let mut next = Vec::new();
        for at in level {
            if tree.parents.contains_key(&at) {
                continue;
            }
            if !all.contains_key(&at)
                && let Ok(Some(r)) = store.get(at)
            {
                all.insert(at, r);
            }
            let parents: Vec<_> = all
                .get(&at)
                .map(|r| r.lineage().into_iter().map(|p| (p.id, p.role)).collect())
                .unwrap_or_default();
            next.extend(parents.iter().map(|(p, _)| *p));
            tree.parents.insert(at, parents);
        }
        level = next;
    }
    // Down: the records made from each.
    let mut level = vec![id];
    for _ in 0..=TREE_DEPTH {
        let mut next = Vec::new();
        for at in level {
            if tree.children.contains_key(&at) {
                continue;
            }
            let children = made_from.get(&at).cloned().unwrap_or_default();
            next.extend(children.iter().map(|(c, _)| *c));
            tree.children.insert(at, children);
        }
        level = next;
    }
    let files = crate::store::ImageFiles::new(data_dir, None);
    for at in tree.parents.keys().chain(tree.children.keys()) {
        let Some(r) = all.get(at) else { continue };
        let image = r
            .outputs
            .first()
            .filter(|o| !r.missing.contains(&o.path))
            .map(|o| (files.resolve(&o.path), o.sha256.clone()));
        tree.nodes.insert(
            *at,
            Node {
                prompt: r.prompt.clone(),
                created: r.created,
                status: r.status,
                image,
            },
        );
    }
    Ok(tree)
}

/// Largest mask file read as a selection (the API takes masks under 4 MB).
const MASK_READ_MAX: u64 = 64 * 1024 * 1024;

/// A mask file as a selection (its transparent area), refused when it is not the size of
/// `picture` (the first input picture; its size is read from its header, when it can be).
fn import_mask(
    path: &std::path::Path,
    picture: Option<&std::path::Path>,
) -> Result<super::mask::Op, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    if meta.len() > MASK_READ_MAX {
        return Err(format!("it is {} bytes: too large for a mask", meta.len()));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let size = picture.and_then(|p| {
        image::ImageReader::open(p)
            .ok()?
            .with_guessed_format()
            .ok()?
            .into_dimensions()
            .ok()
    });
    super::mask::import(&bytes, size)
}

/// An edit's files, read and checked as the CLI checks them before anything is sent.
fn check_inputs(files: &crate::api::edit::EditFiles) -> Result<(), String> {
    crate::api::edit::check_files(files)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// How many of the newest records are searched for a record's children.
const CHILDREN_SCAN: usize = 20_000;

/// A record's parents (with their prompts, `None` when deleted) and the records made from it.
fn load_family(
    store: &dyn HistoryStore,
    id: crate::store::Id,
) -> Result<super::model::Family, String> {
    let record = store
        .get(id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} is gone from history", id.short()))?;
    let parents = record
        .lineage()
        .into_iter()
        .map(|p| {
            let prompt = store.get(p.id).ok().flatten().map(|r| r.prompt);
            (p, prompt)
        })
        .collect();
    let page = store
        .page(&crate::store::Query::default(), None, CHILDREN_SCAN)
        .map_err(|e| e.to_string())?;
    let mut children: Vec<(
        crate::store::Id,
        crate::store::record::ParentRole,
        String,
        _,
    )> = page
        .records
        .into_iter()
        .filter_map(|c| {
            let role = c.lineage().into_iter().find(|p| p.id == id)?.role;
            Some((c.id, role, c.prompt, c.created))
        })
        .collect();
    children.sort_by_key(|c| c.3);
    Ok(super::model::Family {
        id,
        parents,
        children: children.into_iter().map(|(i, r, p, _)| (i, r, p)).collect(),
    })
}

/// The mask editor's picture: its size, and its dots for an area of `cols` × `rows` cells.
fn mask_base(
    path: &std::path::Path,
    cols: u16,
    rows: u16,
) -> Result<(u32, u32, super::model::MaskBase), String> {
    let img = crate::picture::load(path)?;
    let (width, height) = (img.width(), img.height());
    let area = ratatui::layout::Rect::new(0, 0, cols, rows);
    let p = super::mask::place(area, width, height)
        .ok_or_else(|| "the picture has no pixels".to_string())?;
    let small = img
        .resize_exact(p.gw, p.gh, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let dots = small.pixels().map(|px| px.0).collect();
    Ok((
        width,
        height,
        super::model::MaskBase {
            cols,
            rows,
            gw: p.gw,
            gh: p.gh,
            dots,
        },
    ))
}

/// Write a painted mask into `dir` under a new private name (mode 0600).
fn save_mask(
    width: u32,
    height: u32,
    ops: &[super::mask::Op],
    dir: &std::path::Path,
) -> Result<std::path::PathBuf, String> {
    let bytes = super::mask::png(width, height, ops)?;
    let shown = crate::sanitize::line(&dir.display().to_string()).into_owned();
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot make {shown}: {e}"))?;
    let mut file = tempfile::Builder::new()
        .prefix("mask-")
        .suffix(".png")
        .tempfile_in(dir)
        .map_err(|e| format!("cannot write a mask in {shown}: {e}"))?;
    file.write_all(&bytes)
        .and_then(|()| file.as_file().sync_all())
        .map_err(|e| format!("cannot write the mask: {e}"))?;
    let (_, path) = file
        .keep()
        .map_err(|e| format!("cannot keep the mask: {e}"))?;
    Ok(path)
}

/// The tmux client in front of the studio ("tty terminal"), when tmux says.
fn tmux_client() -> Option<String> {
    let out = std::process::Command::new("tmux")
        .args([
            "display-message",
            "-p",
            "#{client_tty} #{client_termname} #{client_termtype}",
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// Whether the tmux client in front of the studio is another one than last seen (remembering
/// it). No answer (a detached session, tmux gone) changes nothing: there is nobody to ask.
fn client_changed(seen: &mut Option<String>, now: Option<String>) -> bool {
    if now.is_none() || *seen == now {
        return false;
    }
    *seen = now;
    true
}

/// Ask the terminal again what it can show, redraw everything, and tell `update` what it found.
fn redetect(edges: &Edges, terminal: &mut DefaultTerminal, events: &TerminalInput, asked: bool) {
    // The answers come on stdin: the input reader must not take them.
    events.pause();
    let (renderer, graphics, _warning, detection) =
        Renderer::detect(edges.graphics_setting.as_deref());
    events.resume();
    let renderer = renderer.with_symbols(edges.symbols);
    let graphics = match (graphics, edges.symbols) {
        (Graphics::Halfblocks, crate::symbols::Symbols::Quadrant) => Graphics::Quadrants,
        (g, _) => g,
    };
    // A picture placed by id belongs to the old way of drawing.
    if let Ok(mut guard) = KITTY.lock()
        && let Some(placer) = guard.as_mut()
    {
        placer.clear(&mut std::io::stdout());
    }
    let terminal_name = detection
        .as_ref()
        .map(|d| d.terminal.clone())
        .unwrap_or_else(|| "not asked".into());
    if let Some(d) = detection {
        crate::picture::remember_detection(d);
    }
    *edges
        .renderer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = renderer;
    let _ = terminal.clear();
    let _ = edges.tx.send(Msg::GraphicsDetected {
        graphics,
        terminal: terminal_name,
        asked,
    });
}

/// Leave the studio's screen, run `f` with a normal terminal, and come back with a full redraw.
fn outside_the_studio<T>(
    terminal: &mut DefaultTerminal,
    events: &TerminalInput,
    f: impl FnOnce() -> Result<T, String>,
) -> Result<T, String> {
    // Stop reading keys: the editor (or the shell, or the full view) must get them.
    events.pause();
    restore_screen();
    let result = f();
    let back = setup_screen();
    events.resume();
    if let Err(e) = back {
        return Err(format!("cannot take the terminal back: {e}"));
    }
    let _ = terminal.clear();
    result
}

/// The editor command: `$VISUAL`, else `$EDITOR`, else vi. One that is set but empty counts
/// as unset (`VISUAL= easel` still opens `$EDITOR`), as shells and git read them.
fn editor_command(visual: Option<String>, editor: Option<String>) -> String {
    let set = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    set(visual)
        .or_else(|| set(editor))
        .unwrap_or_else(|| "vi".into())
}

fn external_editor(text: &str) -> Result<String, String> {
    let editor = editor_command(std::env::var("VISUAL").ok(), std::env::var("EDITOR").ok());
    // $EDITOR may carry arguments and quotes ("code --wait", "'my editor' -f"): split it as a
    // shell would.
    let words = shell_words::split(&editor)
        .map_err(|e| format!("cannot read the editor command {editor:?}: {e}"))?;
    let Some((program, args)) = words.split_first() else {
        return Err("VISUAL / EDITOR is empty: set it to an editor command".into());
    };
    // A private temporary file (random name, mode 0600), removed when dropped.
    let mut file = tempfile::Builder::new()
        .prefix("easel-prompt-")
        .suffix(".txt")
        .tempfile()
        .map_err(|e| format!("cannot make a temporary file for the editor: {e}"))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| format!("cannot write {}: {e}", file.path().display()))?;
    let status = std::process::Command::new(program)
        .args(args)
        .arg(file.path())
        .status();
    match status {
        Ok(s) if s.success() => std::fs::read_to_string(file.path())
            .map_err(|e| format!("cannot read the edited prompt: {e}")),
        Ok(s) => Err(format!("{editor} exited with {s}; the prompt is unchanged")),
        Err(e) => Err(format!("cannot start {editor}: {e} (set VISUAL or EDITOR)")),
    }
}

/// Show the image as large as the window allows, on the alternate screen (nothing stays on the
/// main screen), with its name on the last row; any key returns.
fn full_view(path: &std::path::Path) -> Result<(), String> {
    let img = crate::picture::load(path)?;
    let (cols, rows) = terminal::size().unwrap_or((80, 24));
    let mut out = std::io::stdout();
    execute!(
        out,
        terminal::EnterAlternateScreen,
        terminal::Clear(terminal::ClearType::All),
        crossterm::cursor::MoveTo(0, 0),
        crossterm::cursor::Hide
    )
    .map_err(|e| format!("cannot open the full view: {e}"))?;
    let shown = (|| {
        let mut buf = std::io::BufWriter::new(&mut out);
        crate::picture::show(
            &mut buf,
            &img,
            u32::from(cols),
            u32::from(rows.saturating_sub(1).max(1)),
        )?;
        buf.flush()
            .map_err(|e| format!("cannot show the image: {e}"))?;
        drop(buf);
        // Raw before the prompt shows: a key pressed after it must not wait in the line buffer
        // of a canonical terminal.
        let _ = terminal::enable_raw_mode();
        let name = crate::sanitize::line(&path.display().to_string()).into_owned();
        let line = format!("{name} — press any key to return");
        // The whole line fits on the last row, its end (the key hint) kept.
        let width = usize::from(cols.saturating_sub(1));
        let skip = unicode_width::UnicodeWidthStr::width(line.as_str()).saturating_sub(width);
        let mut dropped = 0;
        let tail: String = line
            .chars()
            .skip_while(|c| {
                let keep = dropped >= skip;
                dropped += unicode_width::UnicodeWidthChar::width(*c).unwrap_or(0);
                !keep
            })
            .collect();
        let _ = execute!(
            out,
            crossterm::cursor::MoveTo(0, rows.saturating_sub(1)),
            crossterm::style::Print(tail)
        );
        wait_for_a_key();
        Ok(())
    })();
    let _ = terminal::disable_raw_mode();
    crate::picture::remove_shown(&mut out);
    let _ = execute!(out, terminal::LeaveAlternateScreen, crossterm::cursor::Show);
    shown
}

/// Wait until a key arrives. crossterm's reader spins at full speed on a terminal that has hung
/// up (a closed window, a dropped SSH link), and the full view does not see the signal while it
/// waits: a watchdog ends the process when the terminal is gone (the data folder's lock goes
/// with it).
fn wait_for_a_key() {
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watching = done.clone();
    let _ = std::thread::Builder::new()
        .name("full-view-hangup".into())
        .spawn(move || {
            while !watching.load(std::sync::atomic::Ordering::Relaxed) {
                if terminal_gone() {
                    std::process::exit(129);
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
    loop {
        match crossterm::event::read() {
            Ok(Event::Key(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// History pages on a worker; stale requests (an older query) are skipped.
fn spawn_history_worker(
    store: Arc<dyn HistoryStore>,
    tx: UnboundedSender<Msg>,
) -> UnboundedSender<HistoryRequest> {
    let (req_tx, mut req_rx) = unbounded_channel::<HistoryRequest>();
    tokio::spawn(async move {
        while let Some(first) = req_rx.recv().await {
            let mut batch = vec![first];
            while let Ok(more) = req_rx.try_recv() {
                batch.push(more);
            }
            let newest = batch.iter().map(|r| r.generation).max().unwrap_or(0);
            for r in batch.into_iter().filter(|r| r.generation == newest) {
                let store = store.clone();
                let result = tokio::task::spawn_blocking(move || {
                    let (records, total) = store.window(&r.query, r.offset, r.limit)?;
                    let anchor = match r.anchor {
                        Some(id) => Some((id, store.locate(&r.query, id)?)),
                        None => None,
                    };
                    Ok::<_, crate::store::StoreError>((r, records, total, anchor))
                })
                .await;
                match result {
                    Ok(Ok((r, records, total, anchor))) => {
                        let _ = tx.send(Msg::HistoryPage {
                            generation: r.generation,
                            offset: r.offset,
                            total,
                            records,
                            anchor,
                        });
                    }
                    Ok(Err(e)) => {
                        let _ = tx.send(Msg::Problem(e.to_string()));
                    }
                    Err(e) => {
                        let _ = tx.send(Msg::Problem(format!("reading history stopped: {e}")));
                    }
                }
            }
        }
    });
    req_tx
}

/// Previews on a worker thread: only the newest request matters ("single latest job").
/// The thumbnails' size in pixels (the longer side): a gallery cell is about 24×20 pixels per
/// 10 columns in most fonts, so this is sharp up to cells of about 25 columns at kitty's sizes.
const THUMB_PX: u32 = 256;

fn spawn_preview_worker(
    renderer: Arc<std::sync::Mutex<Renderer>>,
    thumbs: crate::thumbs::Thumbs,
    tx: UnboundedSender<Msg>,
) -> tokio::sync::watch::Sender<Option<PreviewRequest>> {
    let (req_tx, mut req_rx) = tokio::sync::watch::channel::<Option<PreviewRequest>>(None);
    tokio::spawn(async move {
        while req_rx.changed().await.is_ok() {
            let Some(req) = req_rx.borrow_and_update().clone() else {
                continue;
            };
            let renderer = renderer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let key = req.key.clone();
            let thumbs = thumbs.clone();
            let result = tokio::task::spawn_blocking(move || {
                // Gallery cells draw from the thumbnail cache: made once, small to decode.
                // The strip's inputs: any picture file, drawn small.
                if let PreviewSource::Input(path) | PreviewSource::Compared(path) = &req.key.source
                {
                    let img = crate::picture::load(path)?;
                    return renderer.render_decoded(img, req.key.cols, req.key.rows);
                }
                if let PreviewSource::Thumb { path, sha256 } = &req.key.source {
                    let img = thumbs.get(path, sha256, THUMB_PX)?;
                    return renderer.render_decoded(
                        image::DynamicImage::ImageRgba8(img),
                        req.key.cols,
                        req.key.rows,
                    );
                }
                let bytes = match (&req.key.source, req.bytes) {
                    (_, Some(b)) => b.to_vec(),
                    (PreviewSource::File(path), None) => std::fs::read(path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
                    (PreviewSource::Partial { .. }, None) => {
                        return Err("the partial image is gone".to_string());
                    }
                    (
                        PreviewSource::Thumb { .. }
                        | PreviewSource::Input(_)
                        | PreviewSource::Compared(_),
                        None,
                    ) => {
                        return Err("a thumbnail has no bytes of its own".to_string());
                    }
                };
                renderer.render(&bytes, req.key.cols, req.key.rows)
            })
            .await;
            let msg = match result {
                Ok(Ok(r)) => Msg::PreviewReady(key, Box::new(r)),
                Ok(Err(e)) => Msg::PreviewFailed(key, e),
                Err(e) => Msg::PreviewFailed(key, format!("the preview worker stopped: {e}")),
            };
            let _ = tx.send(msg);
        }
    });
    req_tx
}

/// SIGTERM, SIGHUP and SIGINT, as one stream.
struct Signals {
    inner: Option<(
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
    )>,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            inner: Some((
                signal(SignalKind::terminate())?,
                signal(SignalKind::hangup())?,
                signal(SignalKind::interrupt())?,
            )),
        })
    }

    fn none() -> Signals {
        Signals { inner: None }
    }

    /// Resolves when one arrives (true), never when signals are not watched.
    async fn next(&mut self) -> bool {
        match &mut self.inner {
            Some((a, b, c)) => tokio::select! {
                _ = a.recv() => true,
                _ = b.recv() => true,
                _ = c.recv() => true,
            },
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::studio::mask::{Op, PixRect, Shape};

    /// Detection runs again only when another tmux client came in front (an attach from
    /// another terminal), not on every resize, and never with nobody attached.
    #[test]
    fn another_tmux_client_means_asking_again() {
        let a = || Some("/dev/pts/3 xterm-256color XTerm(388)".to_string());
        let b = || Some("/dev/pts/7 xterm-kitty kitty(0.35.2)".to_string());
        type Case = (Option<String>, Option<String>, bool, Option<String>);
        let cases: [Case; 5] = [
            (None, a(), true, a()),
            (a(), a(), false, a()),
            (a(), b(), true, b()),
            (a(), None, false, a()),
            (None, None, false, None),
        ];
        for (before, now, changed, after) in cases {
            let mut seen = before.clone();
            assert_eq!(
                client_changed(&mut seen, now.clone()),
                changed,
                "{before:?} → {now:?}"
            );
            assert_eq!(seen, after, "{before:?} → {now:?}");
        }
    }

    #[test]
    fn an_empty_visual_falls_back_to_editor() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(editor_command(s("nano"), s("vim")), "nano");
        assert_eq!(editor_command(s(""), s("vim")), "vim");
        assert_eq!(editor_command(s("  "), s("vim")), "vim");
        assert_eq!(editor_command(None, s("vim")), "vim");
        assert_eq!(editor_command(s(""), s("")), "vi");
        assert_eq!(editor_command(None, None), "vi");
    }

    #[test]
    fn a_saved_mask_is_private_and_at_the_pictures_size() {
        let dir = tempfile::tempdir().unwrap();
        let masks = dir.path().join("masks");
        let sel = PixRect {
            x0: 10,
            y0: 5,
            x1: 30,
            y1: 25,
        };
        let path = save_mask(64, 48, &[Op::Add(Shape::Rect, sel)], &masks).unwrap();
        assert_eq!(path.parent(), Some(masks.as_path()));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("mask-") && name.ends_with(".png"),
            "{name}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "private: {mode:o}");
        }
        let img = image::open(&path).unwrap().to_rgba8();
        assert_eq!(img.dimensions(), (64, 48));
        for (x, y, p) in img.enumerate_pixels() {
            let inside = (10..30).contains(&x) && (5..25).contains(&y);
            assert_eq!(p.0[3], if inside { 0 } else { 255 }, "({x}, {y})");
        }
        // Two saves are two files.
        let again = save_mask(64, 48, &[Op::Invert], &masks).unwrap();
        assert_ne!(again, path);
    }

    /// The studio's check at queue time is the CLI's: a file deleted after it was added to the
    /// strip, a directory, a bad mask each give their message; good files pass.
    #[test]
    fn an_edits_files_are_checked_as_the_cli_checks_them() {
        use crate::api::edit::{EditFiles, Endpoint, Limits};
        let dir = tempfile::tempdir().unwrap();
        let pic = dir.path().join("p.png");
        std::fs::write(&pic, crate::api::payload::tiny_png(64, 64)).unwrap();
        let files = |images: Vec<std::path::PathBuf>, mask: Option<std::path::PathBuf>| EditFiles {
            endpoint: Endpoint::Edits,
            images,
            mask,
            image_field: "image[]",
            limits: Limits::gpt(),
        };
        assert_eq!(check_inputs(&files(vec![pic.clone()], None)), Ok(()));
        let gone = dir.path().join("gone.png");
        let e = check_inputs(&files(vec![pic.clone(), gone], None)).unwrap_err();
        assert!(e.contains("gone.png"), "{e}");
        let e = check_inputs(&files(vec![dir.path().to_path_buf()], None)).unwrap_err();
        assert!(e.contains("is a folder"), "{e}");
        // A mask of another size than the picture.
        let mask = dir.path().join("m.png");
        std::fs::write(&mask, crate::api::payload::tiny_png(32, 32)).unwrap();
        assert!(check_inputs(&files(vec![pic], Some(mask))).is_err());
    }

    #[test]
    fn the_mask_editors_picture_is_shrunk_to_its_dots() {
        let dir = tempfile::tempdir().unwrap();
        let pic = dir.path().join("p.png");
        std::fs::write(&pic, crate::api::payload::tiny_png(300, 150)).unwrap();
        let (w, h, base) = mask_base(&pic, 40, 20).unwrap();
        assert_eq!((w, h), (300, 150));
        assert_eq!((base.cols, base.rows), (40, 20));
        assert_eq!((base.gw, base.gh), (40, 20));
        assert_eq!(base.dots.len(), 800);
        assert!(mask_base(&dir.path().join("gone.png"), 40, 20).is_err());
    }

    #[test]
    fn a_family_is_its_parents_and_the_records_made_from_it() {
        use crate::store::record::{Parent, ParentRole};
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SledStore::open(dir.path()).unwrap();
        let t = chrono::Utc::now();
        let rec = |prompt: &str, minutes: i64| {
            let mut r = crate::store::GenerationRecord::queued(
                crate::store::Id::new(),
                crate::api::GenerationParams::default(),
                "demo",
                true,
                t + chrono::Duration::minutes(minutes),
            );
            r.prompt = prompt.into();
            r.status = crate::store::Status::Succeeded;
            r
        };
        let gone = rec("deleted", 0);
        let parent = rec("a fox", 1);
        let mut child = rec("at night", 3);
        child.parents = vec![
            Parent {
                id: parent.id,
                role: ParentRole::Edited,
            },
            Parent {
                id: gone.id,
                role: ParentRole::Reference,
            },
        ];
        let mut rerun = rec("a fox", 2);
        rerun.parent_id = Some(parent.id);
        let other = rec("unrelated", 4);
        for r in [&parent, &child, &rerun, &other] {
            store.put(r).unwrap();
        }
        let f = load_family(&store, parent.id).unwrap();
        assert!(f.parents.is_empty());
        // Oldest first, with what each is of the parent.
        assert_eq!(
            f.children,
            vec![
                (rerun.id, ParentRole::RerunOf, "a fox".to_string()),
                (child.id, ParentRole::Edited, "at night".to_string()),
            ]
        );
        let f = load_family(&store, child.id).unwrap();
        assert_eq!(f.parents.len(), 2);
        assert_eq!(f.parents[0].1.as_deref(), Some("a fox"));
        assert_eq!(f.parents[1].1, None, "a deleted parent");
        assert!(load_family(&store, gone.id).is_err());
    }

    /// The lineage view's family: ancestors up to the roots, descendants down to the leaves,
    /// nothing unrelated; a deleted parent is an edge without a record.
    #[test]
    fn a_lineage_is_the_whole_family_up_and_down() {
        use crate::store::record::{Parent, ParentRole};
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SledStore::open(dir.path()).unwrap();
        let t = chrono::Utc::now();
        let rec = |prompt: &str, minutes: i64, parents: Vec<(crate::store::Id, ParentRole)>| {
            let mut r = crate::store::GenerationRecord::queued(
                crate::store::Id::new(),
                crate::api::GenerationParams::default(),
                "demo",
                true,
                t + chrono::Duration::minutes(minutes),
            );
            r.prompt = prompt.into();
            r.status = crate::store::Status::Succeeded;
            r.parents = parents
                .into_iter()
                .map(|(id, role)| Parent { id, role })
                .collect();
            r
        };
        let gone = rec("deleted", 0, vec![]);
        let root = rec("root", 1, vec![]);
        let mid = rec(
            "mid",
            2,
            vec![
                (root.id, ParentRole::Edited),
                (gone.id, ParentRole::Reference),
            ],
        );
        let leaf = rec("leaf", 3, vec![(mid.id, ParentRole::VariationOf)]);
        let leaf2 = rec("leaf2", 4, vec![(mid.id, ParentRole::RerunOf)]);
        let grand = rec("grand", 5, vec![(leaf.id, ParentRole::MaskSource)]);
        let other = rec("unrelated", 6, vec![]);
        for r in [&root, &mid, &leaf, &leaf2, &grand, &other] {
            store.put(r).unwrap();
        }
        let tree = load_lineage(&store, dir.path(), mid.id).unwrap();
        let rows = crate::studio::lineage::rows(&tree);
        let got: Vec<(crate::store::Id, bool)> = rows.iter().map(|r| (r.id, r.deleted)).collect();
        assert_eq!(
            got,
            vec![
                (gone.id, true),
                (root.id, false),
                (mid.id, false),
                (leaf.id, false),
                (grand.id, false),
                (leaf2.id, false),
            ]
        );
        assert!(!tree.nodes.contains_key(&other.id));
        assert_eq!(tree.nodes[&grand.id].prompt, "grand");
        // From the leaf: up through mid to root and the deleted one; mid's other child is not
        // the leaf's family.
        let tree = load_lineage(&store, dir.path(), grand.id).unwrap();
        assert!(tree.nodes.contains_key(&root.id));
        assert!(!tree.nodes.contains_key(&leaf2.id));
        assert!(load_lineage(&store, dir.path(), gone.id).is_err());
    }

    #[test]
    fn a_mask_file_is_read_as_a_selection() {
        let dir = tempfile::tempdir().unwrap();
        let sel = PixRect {
            x0: 3,
            y0: 2,
            x1: 9,
            y1: 7,
        };
        let path = save_mask(16, 12, &[Op::Add(Shape::Ellipse, sel)], dir.path()).unwrap();
        let op = import_mask(&path, None).unwrap();
        assert_eq!(
            crate::studio::mask::build(16, 12, &[op]),
            crate::studio::mask::build(16, 12, &[Op::Add(Shape::Ellipse, sel)])
        );
        assert!(
            import_mask(dir.path(), None)
                .unwrap_err()
                .contains("not a regular file")
        );
        assert!(import_mask(&dir.path().join("gone.png"), None).is_err());
        // Against the first picture: its size, read from its file, must be the mask's.
        let picture = dir.path().join("picture.png");
        image::RgbImage::new(16, 12).save(&picture).unwrap();
        assert!(import_mask(&path, Some(&picture)).is_ok());
        let other = dir.path().join("other.png");
        image::RgbImage::new(32, 24).save(&other).unwrap();
        let e = import_mask(&path, Some(&other)).unwrap_err();
        assert!(e.contains("16x12") && e.contains("32x24"), "{e}");
    }

    #[test]
    fn typed_inputs_resolve_to_absolute_files() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn HistoryStore> =
            Arc::new(crate::store::SledStore::open(dir.path()).unwrap());
        let pic = dir.path().join("ref.png");
        std::fs::write(&pic, b"x").unwrap();
        let got = resolve_input(store.as_ref(), dir.path(), &pic.to_string_lossy()).unwrap();
        assert_eq!(got, crate::api::InputImage::file(pic));
        let err = resolve_input(store.as_ref(), dir.path(), "/no/such/file.png").unwrap_err();
        assert!(err.contains("no such file"), "{err}");
        // An id that no record has.
        let err = resolve_input(store.as_ref(), dir.path(), "0190abcd:2").unwrap_err();
        assert!(err.contains("no such file"), "{err}");
        // A record's image by its id prefix and number: the file in the data folder.
        let mut r = crate::store::GenerationRecord::queued(
            crate::store::Id::new(),
            crate::api::GenerationParams::default(),
            "demo",
            true,
            chrono::Utc::now(),
        );
        r.status = crate::store::Status::Succeeded;
        for n in 1..=2 {
            r.outputs.push(crate::store::SavedImage {
                path: std::path::PathBuf::from(format!("images/{n}.png")),
                format: "png".into(),
                width: 8,
                height: 8,
                bytes: 1,
                sha256: String::new(),
            });
        }
        store.put(&r).unwrap();
        let prefix = r.id.short();
        let got = resolve_input(store.as_ref(), dir.path(), &format!("{prefix}:2")).unwrap();
        assert_eq!(got.path, dir.path().join("images/2.png"));
        assert_eq!(got.record, Some(r.id.to_string()));
        assert_eq!(got.index, Some(2));
        let err = resolve_input(store.as_ref(), dir.path(), &format!("{prefix}:3")).unwrap_err();
        assert!(err.contains("2 image(s), not 3"), "{err}");
    }
}
