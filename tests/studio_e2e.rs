//! End-to-end tests of the interactive studio: the real `easel` binary runs inside a detached
//! tmux session (a private server per test, 120×40, no tmux config), keys go in with
//! `send-keys`, and every assertion is about what the screen shows (`capture-pane -e`, parsed
//! into cells with their colours) or what the history holds afterwards.
//!
//! Each test has its own HOME, config and data folders and a clean environment (no OPENAI_*
//! variables, so the offline demo backend answers). Nothing sleeps for a fixed time (apart from
//! the window over which the idle test measures CPU use): the screen is polled until what is
//! expected shows up or a generous deadline passes, and a failure prints the last screen (and
//! easel's crash log, if any). tmux is required: without it the tests fail, they do not skip.
//!
//! The pane runs `session.sh`, which runs easel (through `easel.sh`, which writes easel's pid
//! and `exec`s it), then prints `EASEL-EXITED <status>` and whether the terminal was left in raw
//! mode, and then waits: so a test can see how easel ended and what it left on the terminal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use unicode_width::UnicodeWidthChar;

const BIN: &str = env!("CARGO_BIN_EXE_easel");

/// How long anything may take to show up. Generous: these run in parallel on small machines.
const DEADLINE: Duration = Duration::from_secs(40);
/// How often the screen is looked at while waiting.
const POLL: Duration = Duration::from_millis(100);

/// The tmux session every test uses on its private server.
const SESSION: &str = "studio";

/// A demo latency no test outlives: the job is still running whenever the test looks.
const FOREVER_MS: u64 = 120_000;

// ---------------------------------------------------------------------------------------------
// The sandbox: private folders and the binary run directly
// ---------------------------------------------------------------------------------------------

struct Sandbox {
    root: tempfile::TempDir,
    home: PathBuf,
    config_home: PathBuf,
    data: PathBuf,
    /// More environment for the studio (test hooks).
    extra: Vec<(&'static str, String)>,
    /// The studio knows it runs inside the test's tmux (TMUX and TMUX_PANE are kept).
    inside_tmux: bool,
}

impl Sandbox {
    /// Folders for one test, with a config file whose demo backend takes `latency_ms`.
    fn new(latency_ms: u64) -> Sandbox {
        let root = tempfile::Builder::new()
            .prefix("easel-e2e-")
            .tempdir()
            .expect("temp dir");
        let home = root.path().join("home");
        let config_home = root.path().join("config");
        let data = root.path().join("data");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(config_home.join("easel")).unwrap();
        let s = Sandbox {
            root,
            home,
            config_home,
            data,
            extra: Vec::new(),
            inside_tmux: false,
        };
        s.set_latency(latency_ms);
        s
    }

    fn set_latency(&self, latency_ms: u64) {
        let config = format!("[demo]\nlatency_ms = {latency_ms}\npartial_images = 2\n");
        std::fs::write(self.config_home.join("easel").join("config.toml"), config).unwrap();
    }

    /// The clean environment easel runs with, inside tmux or not.
    fn env(&self) -> Vec<(&'static str, String)> {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        vec![
            ("PATH", path),
            ("HOME", self.home.display().to_string()),
            ("XDG_CONFIG_HOME", self.config_home.display().to_string()),
            ("EASEL_DATA_DIR", self.data.display().to_string()),
            ("LANG", "C.UTF-8".into()),
            ("TERM", "xterm-256color".into()),
            ("COLORTERM", "truecolor".into()),
            ("EASEL_GRAPHICS", "halfblocks".into()),
            // In-process unless a test asks for the service (it adds EASEL_SERVICE=on).
            ("EASEL_SERVICE", "off".into()),
        ]
        .into_iter()
        .chain(self.extra.iter().cloned())
        .collect()
    }

    /// Run the binary outside tmux (no terminal) and wait for it.
    fn easel(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.env_clear().args(args).stdin(Stdio::null());
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        cmd.output().expect("run easel")
    }

    /// `easel history list --json`: the records, newest first.
    fn history(&self) -> Vec<Value> {
        let out = self.easel(&["history", "list", "--json"]);
        assert!(
            out.status.success(),
            "easel history list failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("UTF-8 output")
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .filter(|v| v.get("next").is_none())
            .collect()
    }

    fn crash_log_path(&self) -> String {
        self.data.join("easel.log").display().to_string()
    }

    /// The crash report easel writes if it panics.
    fn crash_log(&self) -> String {
        std::fs::read_to_string(self.crash_log_path()).unwrap_or_default()
    }
}

/// Quote for sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

// ---------------------------------------------------------------------------------------------
// The screen: a capture parsed into cells with colours
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Colour {
    #[default]
    Default,
    Indexed(u8),
    Rgb(u8, u8, u8),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Style {
    fg: Colour,
    bg: Colour,
    bold: bool,
    reverse: bool,
}

impl Style {
    /// Apply one SGR sequence's parameters (`1;38;5;6`).
    fn apply(&mut self, params: &str) {
        let p: Vec<u16> = params
            .split([';', ':'])
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        let colour = |p: &[u16], i: &mut usize| -> Colour {
            match p.get(*i + 1) {
                Some(5) => {
                    let c = Colour::Indexed(p.get(*i + 2).copied().unwrap_or(0) as u8);
                    *i += 2;
                    c
                }
                Some(2) => {
                    let at = |k: usize| p.get(*i + k).copied().unwrap_or(0) as u8;
                    let c = Colour::Rgb(at(2), at(3), at(4));
                    *i += 4;
                    c
                }
                _ => Colour::Default,
            }
        };
        let mut i = 0;
        while i < p.len() {
            match p[i] {
                0 => *self = Style::default(),
                1 => self.bold = true,
                22 => self.bold = false,
                7 => self.reverse = true,
                27 => self.reverse = false,
                n @ 30..=37 => self.fg = Colour::Indexed((n - 30) as u8),
                38 => self.fg = colour(&p, &mut i),
                39 => self.fg = Colour::Default,
                n @ 40..=47 => self.bg = Colour::Indexed((n - 40) as u8),
                48 => self.bg = colour(&p, &mut i),
                49 => self.bg = Colour::Default,
                n @ 90..=97 => self.fg = Colour::Indexed((n - 90 + 8) as u8),
                n @ 100..=107 => self.bg = Colour::Indexed((n - 100 + 8) as u8),
                _ => {}
            }
            i += 1;
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Cell {
    ch: char,
    /// The terminal column the character starts in (wide characters take two).
    col: usize,
    style: Style,
}

/// A bordered pane's border coordinates on the screen.
#[derive(Clone, Copy, Debug)]
struct Rect {
    top: usize,
    bottom: usize,
    left: usize,
    right: usize,
}

struct Screen {
    raw: String,
    rows: Vec<Vec<Cell>>,
}

impl Screen {
    /// Parse `capture-pane -p -e` output. tmux carries the style over from line to line.
    fn parse(raw: String) -> Screen {
        let mut rows: Vec<Vec<Cell>> = vec![Vec::new()];
        let mut style = Style::default();
        let mut col = 0;
        let mut it = raw.chars();
        while let Some(c) = it.next() {
            match c {
                '\n' => {
                    rows.push(Vec::new());
                    col = 0;
                }
                '\x1b' => match it.next() {
                    Some('[') => {
                        let mut params = String::new();
                        for d in it.by_ref() {
                            if ('\x40'..='\x7e').contains(&d) {
                                if d == 'm' {
                                    style.apply(&params);
                                }
                                break;
                            }
                            params.push(d);
                        }
                    }
                    Some(']') => {
                        while let Some(d) = it.next() {
                            if d == '\x07' {
                                break;
                            }
                            if d == '\x1b' {
                                it.next();
                                break;
                            }
                        }
                    }
                    _ => {}
                },
                c => {
                    let w = c.width().unwrap_or(0);
                    rows.last_mut().unwrap().push(Cell { ch: c, col, style });
                    col += w;
                }
            }
        }
        while rows.last().is_some_and(|r| r.iter().all(|c| c.ch == ' ')) && rows.len() > 1 {
            rows.pop();
        }
        Screen { raw, rows }
    }

    fn row_text(row: &[Cell]) -> String {
        row.iter()
            .map(|c| c.ch)
            .collect::<String>()
            .trim_end()
            .to_string()
    }

    /// The plain text, one line a row.
    fn text(&self) -> String {
        self.rows
            .iter()
            .map(|r| Screen::row_text(r))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn contains(&self, s: &str) -> bool {
        self.text().contains(s)
    }

    /// The last row with anything on it: the studio's status line.
    fn status_line(&self) -> String {
        self.rows
            .iter()
            .rev()
            .map(|r| Screen::row_text(r))
            .find(|t| !t.trim().is_empty())
            .unwrap_or_default()
    }

    fn cell_at(&self, row: usize, col: usize) -> Option<&Cell> {
        self.rows.get(row)?.iter().find(|c| c.col == col)
    }

    /// The pane whose top border starts with `┌ {title}`.
    fn pane(&self, title: &str) -> Option<Rect> {
        let needle = format!("┌ {title}");
        for (top, row) in self.rows.iter().enumerate() {
            let text: String = row.iter().map(|c| c.ch).collect();
            let Some(at) = text.find(&needle) else {
                continue;
            };
            let idx = text[..at].chars().count();
            let left = row[idx].col;
            let right = row[idx..].iter().find(|c| c.ch == '┐')?.col;
            let bottom = (top + 1..self.rows.len())
                .find(|&b| self.cell_at(b, left).is_some_and(|c| c.ch == '└'))?;
            return Some(Rect {
                top,
                bottom,
                left,
                right,
            });
        }
        None
    }

    /// The cells inside a pane's border, row by row.
    fn pane_cells(&self, title: &str) -> Vec<Vec<Cell>> {
        let Some(r) = self.pane(title) else {
            return Vec::new();
        };
        (r.top + 1..r.bottom)
            .map(|row| {
                self.rows[row]
                    .iter()
                    .filter(|c| c.col > r.left && c.col < r.right)
                    .copied()
                    .collect()
            })
            .collect()
    }

    /// The text inside a pane's border, row by row, trailing blanks removed.
    fn pane_rows(&self, title: &str) -> Vec<String> {
        self.pane_cells(title)
            .iter()
            .map(|r| Screen::row_text(r))
            .collect()
    }

    /// The pane's top line, title included.
    fn pane_title(&self, title: &str) -> String {
        self.pane(title)
            .map(|r| Screen::row_text(&self.rows[r.top]))
            .unwrap_or_default()
    }

    /// The focused pane has a bold cyan border.
    fn focused(&self, title: &str) -> bool {
        self.pane(title)
            .and_then(|r| self.cell_at(r.top, r.left))
            .is_some_and(|c| c.style.fg == Colour::Indexed(6) && c.style.bold)
    }

    /// History rows that show a generation (they start with a status icon).
    fn history_entries(&self) -> Vec<String> {
        self.pane_rows("History")
            .into_iter()
            .filter(|r| r.starts_with(['·', '▶', '✓', '✗', '–', '!']))
            .collect()
    }

    /// Whether any studio border is on screen.
    fn shows_studio(&self) -> bool {
        ["┌ Prompt", "┌ History", "┌ Queue", "┌ Preview"]
            .iter()
            .any(|t| self.contains(t))
    }
}

// ---------------------------------------------------------------------------------------------
// The studio in tmux
// ---------------------------------------------------------------------------------------------

static SESSIONS: AtomicUsize = AtomicUsize::new(0);

/// Fail (not skip) without tmux.
fn require_tmux() {
    match Command::new("tmux").arg("-V").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`tmux -V` failed ({}): the studio end-to-end tests need a working tmux",
            out.status
        ),
        Err(e) => panic!(
            "tmux is not available ({e}): the studio end-to-end tests drive easel inside tmux; \
             install it (apt-get install tmux)"
        ),
    }
}

/// One easel studio in its own tmux server. Dropping it kills the server.
struct Studio {
    socket: String,
    /// The server's socket file, removed on drop (tmux 3.3 leaves it behind).
    socket_path: Option<PathBuf>,
    pidfile: PathBuf,
    log: String,
}

impl Studio {
    /// Start the studio in a 120×40 pane and wait until it is up.
    fn open(sb: &Sandbox, label: &str) -> Studio {
        let studio = Studio::launch(sb, label);
        studio.wait_for("the studio to start, with the editor focused", |s| {
            s.focused("Prompt")
                && s.pane("History").is_some()
                && !s
                    .pane_rows("History")
                    .iter()
                    .any(|r| r.contains("loading…"))
        });
        studio
    }

    fn launch(sb: &Sandbox, label: &str) -> Studio {
        require_tmux();
        let n = SESSIONS.fetch_add(1, Ordering::SeqCst);
        let dir = sb.root.path().join(format!("session-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("easel.pid");
        let mut env: Vec<String> = sb
            .env()
            .into_iter()
            .map(|(k, v)| format!("{k}={}", sh_quote(&v)))
            .collect();
        if sb.inside_tmux {
            // Set by tmux for the pane's shell: the studio's own tmux commands reach this server.
            env.push("TMUX=\"$TMUX\" TMUX_PANE=\"$TMUX_PANE\"".into());
        }
        let easel_sh = dir.join("easel.sh");
        std::fs::write(
            &easel_sh,
            format!(
                "echo $$ > {}\nexec env -i {} {}\n",
                sh_quote(&pidfile.display().to_string()),
                env.join(" "),
                sh_quote(BIN)
            ),
        )
        .unwrap();
        let session_sh = dir.join("session.sh");
        std::fs::write(
            &session_sh,
            format!(
                "sh {}\n\
                 echo \"EASEL-EXITED $?\"\n\
                 if stty -a | grep -q -- -icanon; then echo TTY-RAW; else echo TTY-COOKED; fi\n\
                 exec sleep 3600\n",
                sh_quote(&easel_sh.display().to_string())
            ),
        )
        .unwrap();
        let mut studio = Studio {
            socket: format!("easel-e2e-{}-{label}-{n}", std::process::id()),
            socket_path: None,
            pidfile,
            log: sb.crash_log_path(),
        };
        let command = format!("sh {}", sh_quote(&session_sh.display().to_string()));
        studio.tmux(&[
            "new-session",
            "-d",
            "-s",
            SESSION,
            "-x",
            "120",
            "-y",
            "40",
            &command,
        ]);
        let path = studio.tmux(&["display-message", "-p", "#{socket_path}"]);
        studio.socket_path = Some(PathBuf::from(path.trim())).filter(|p| p.is_absolute());
        studio
    }

    /// Run a tmux command against this test's server; it must succeed.
    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LANG", "C.UTF-8")
            .env("TERM", "xterm-256color")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run tmux ({e}): the studio tests need it"));
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Keys by tmux name (`C-s`, `Tab`, `Escape`, `q`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", SESSION];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Literal text, typed.
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", SESSION, "-l", text]);
    }

    fn screen(&self) -> Screen {
        Screen::parse(self.tmux(&["capture-pane", "-p", "-e", "-t", SESSION]))
    }

    fn alternate_screen(&self) -> bool {
        self.tmux(&["display-message", "-p", "-t", SESSION, "#{alternate_on}"])
            .trim()
            == "1"
    }

    fn resize(&self, width: u16, height: u16) {
        self.tmux(&[
            "resize-window",
            "-t",
            SESSION,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ]);
    }

    /// Poll the screen until `ready` holds; fail with the last screen after the deadline.
    fn wait_for(&self, what: &str, ready: impl Fn(&Screen) -> bool) -> Screen {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            if start.elapsed() > DEADLINE {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!(
                    "waited {DEADLINE:?} for {what}; the screen shows:\n{}\n{}",
                    screen.text(),
                    if log.is_empty() {
                        String::new()
                    } else {
                        format!("easel.log:\n{log}")
                    }
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Wait for easel to end; its exit status and the screen it left behind.
    fn wait_exit(&self) -> (i32, Screen) {
        let screen = self.wait_for("easel to exit", |s| {
            s.contains("EASEL-EXITED") && s.contains("TTY-")
        });
        let text = screen.text();
        let code = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("EASEL-EXITED "))
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or_else(|| panic!("no exit status on the screen:\n{text}"));
        (code, screen)
    }

    /// Assert that easel exited with 0 and gave the terminal back: the alternate screen left
    /// (no studio borders, the shell's output visible), raw mode off.
    fn expect_clean_exit(&self) -> Screen {
        let (code, screen) = self.wait_exit();
        let text = screen.text();
        assert_eq!(code, 0, "easel's exit status; the screen:\n{text}");
        assert!(
            !self.alternate_screen(),
            "the alternate screen is still on:\n{text}"
        );
        assert!(
            !screen.shows_studio(),
            "the studio is still drawn after exit:\n{text}"
        );
        assert!(
            screen.contains("TTY-COOKED"),
            "the terminal was left in raw mode:\n{text}"
        );
        screen
    }

    /// easel's process id (written by the wrapper just before it `exec`s easel).
    fn pid(&self) -> u32 {
        let start = Instant::now();
        loop {
            if let Some(pid) = std::fs::read_to_string(&self.pidfile)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return pid;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "easel's pid file never appeared"
            );
            std::thread::sleep(POLL);
        }
    }

    /// Type a prompt into the (focused) editor, check it arrived, and submit it with Ctrl-S;
    /// then wait until the queue shows it running.
    fn submit(&self, prompt: &str) -> Screen {
        self.type_text(prompt);
        self.wait_for("the prompt in the editor", |s| {
            s.pane_rows("Prompt").iter().any(|r| r.contains(prompt))
        });
        self.keys(&["C-s"]);
        self.wait_for("the job running in the queue", |s| {
            running_row(s, prompt).is_some()
        })
    }

    /// Leave the editor with Esc and wait for the history to have focus.
    fn leave_editor(&self) {
        self.keys(&["Escape"]);
        self.wait_for("the history pane to take focus", |s| {
            s.focused("History") && !s.focused("Prompt")
        });
    }
}

impl Drop for Studio {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .args(["-L", &self.socket, "kill-server"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(p) = &self.socket_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The start of a prompt, as a narrow pane shows it.
fn excerpt(prompt: &str) -> String {
    prompt.chars().take(12).collect()
}

/// The queue's row for a running job with this prompt.
fn running_row(s: &Screen, prompt: &str) -> Option<String> {
    s.pane_rows("Queue")
        .into_iter()
        .find(|r| r.starts_with("▶ ") && r.contains(&excerpt(prompt)))
}

/// The one record of a history listing, checked to be the only one.
fn only_record(sb: &Sandbox) -> Value {
    let records = sb.history();
    assert_eq!(records.len(), 1, "history: {records:#?}");
    records.into_iter().next().unwrap()
}

fn no_outputs(r: &Value) -> bool {
    r["outputs"].as_array().is_some_and(|a| a.is_empty())
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

/// Type a prompt with Chinese text, submit it, watch it run and finish, see its picture in
/// half-blocks, quit with Ctrl-C, and find it again in a new studio.
#[test]
fn generate_preview_quit_and_reopen() {
    let sb = Sandbox::new(3000);
    let prompt = "一只猫在月光下 a cat";
    let studio = Studio::open(&sb, "generate");

    let screen = studio.submit(prompt);
    let row = running_row(&screen, prompt).unwrap();
    assert!(row.contains(prompt), "{row:?}");
    // The row keeps its details after a prompt of wide characters: model, attempts, elapsed.
    let words: Vec<&str> = row.split_whitespace().collect();
    assert!(
        words.contains(&"gpt-image-2") && words.contains(&"a1"),
        "the queue row lost its details: {row:?}"
    );
    assert!(
        words
            .last()
            .is_some_and(|w| w.ends_with('s') && w[..w.len() - 1].parse::<u64>().is_ok()),
        "the queue row shows no elapsed time: {row:?}"
    );
    assert!(
        screen.pane_title("Queue").contains("Queue 1▶ 0·"),
        "{}",
        screen.text()
    );

    let screen = studio.wait_for("the job to finish into history", |s| {
        s.history_entries()
            .first()
            .is_some_and(|r| r.starts_with('✓') && r.contains(prompt))
            && s.pane_rows("Queue").iter().any(|r| r.contains("empty"))
    });
    assert_eq!(screen.history_entries().len(), 1, "{}", screen.text());
    assert!(
        screen.status_line().contains("done: 1 image"),
        "{}",
        screen.status_line()
    );

    // The finished picture, drawn in half-blocks with 24-bit colours.
    let screen = studio.wait_for("the picture in the preview pane", |s| {
        let blocks = s
            .pane_cells("Preview")
            .iter()
            .flatten()
            .filter(|c| {
                matches!(c.ch, '▀' | '▄')
                    && matches!(c.style.fg, Colour::Rgb(..))
                    && matches!(c.style.bg, Colour::Rgb(..))
            })
            .count();
        blocks >= 100
    });
    assert!(
        screen.raw.contains("38;2;") && screen.raw.contains("48;2;"),
        "no 24-bit colour escapes in the capture"
    );
    let caption = screen.pane_rows("Preview").join("\n");
    assert!(caption.contains("DEMO"), "{caption}");

    // Ctrl-C with nothing running quits at once.
    studio.keys(&["C-c"]);
    studio.expect_clean_exit();
    drop(studio);

    // The generation is still there in a new studio on the same data folder.
    let studio = Studio::open(&sb, "reopen");
    let screen = studio.wait_for("the entry in the history of the new studio", |s| {
        s.history_entries()
            .first()
            .is_some_and(|r| r.starts_with('✓') && r.contains(prompt))
    });
    assert!(
        screen.pane_title("History").contains("History 1 "),
        "{}",
        screen.text()
    );
    assert_eq!(screen.history_entries().len(), 1, "{}", screen.text());
    studio.keys(&["C-c"]);
    studio.expect_clean_exit();

    let r = only_record(&sb);
    assert_eq!(r["status"], "succeeded", "{r:#}");
    assert_eq!(r["prompt"], prompt, "{r:#}");
    let out = Path::new(r["outputs"][0]["path"].as_str().unwrap_or_default());
    let path = if out.is_absolute() {
        out.to_path_buf()
    } else {
        sb.data.join(out)
    };
    assert!(path.is_file(), "the image file is missing: {r:#}");
}

/// `x` in the queue cancels a running job: it leaves the queue, history shows it cancelled,
/// and so does `easel history list`.
#[test]
fn cancel_a_running_job_from_the_queue() {
    let sb = Sandbox::new(FOREVER_MS);
    let prompt = "a lighthouse that never gets painted";
    let studio = Studio::open(&sb, "cancel");
    studio.submit(prompt);

    // Editor → Parameters → Queue.
    studio.keys(&["Tab"]);
    studio.wait_for("the parameters pane to take focus", |s| {
        s.focused("Parameters")
    });
    studio.keys(&["Tab"]);
    studio.wait_for("the queue pane to take focus", |s| s.focused("Queue"));
    studio.keys(&["x"]);

    // The cancelled job stays in the queue pane (⊘), where `r` could retry it, and lands in
    // history; a second `x` dismisses it from the queue.
    let screen = studio.wait_for("the job cancelled", |s| {
        s.pane_rows("Queue")
            .iter()
            .any(|r| r.contains('–') && r.contains(&excerpt(prompt)))
            && s.history_entries()
                .first()
                .is_some_and(|r| r.starts_with('–') && r.contains(prompt))
            && s.status_line().contains("cancelled")
    });
    assert!(
        screen.pane_title("Queue").contains("Queue 0▶ 0·"),
        "{}",
        screen.text()
    );
    studio.keys(&["x"]);
    studio.wait_for("the cancelled job dismissed from the queue", |s| {
        s.pane_rows("Queue").iter().any(|r| r.contains("empty"))
    });

    // Nothing runs now: `q` (global in the queue) quits without asking.
    studio.keys(&["q"]);
    studio.expect_clean_exit();

    let r = only_record(&sb);
    assert_eq!(r["status"], "cancelled", "{r:#}");
    assert_eq!(r["prompt"], prompt, "{r:#}");
    assert!(no_outputs(&r), "a cancelled job has no outputs: {r:#}");
}

/// `/` in the history searches: one match for a word only one prompt has; Esc shows all again.
#[test]
fn search_the_history() {
    let sb = Sandbox::new(10);
    let prompts = [
        "a red fox asleep in the snow",
        "a lighthouse at dusk",
        "a bowl of ramen on a wooden table",
    ];
    for p in prompts {
        let out = sb.easel(&["generate", p]);
        assert!(
            out.status.success(),
            "easel generate {p:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let studio = Studio::open(&sb, "search");
    let screen = studio.wait_for("three entries in history", |s| {
        s.history_entries().len() == 3
    });
    assert!(
        screen.pane_title("History").contains("History 3 "),
        "{}",
        screen.text()
    );

    studio.leave_editor();
    studio.keys(&["/"]);
    studio.wait_for("the search line", |s| {
        s.pane_rows("History")
            .first()
            .is_some_and(|r| r.starts_with('/'))
    });
    studio.type_text("lighthouse");
    let screen = studio.wait_for("exactly one match", |s| {
        let entries = s.history_entries();
        s.pane_rows("History")
            .first()
            .is_some_and(|r| r.starts_with("/lighthouse"))
            && entries.len() == 1
            && entries[0].contains("a lighthouse at dusk")
            && s.pane_title("History").contains("History 1 ")
    });
    assert!(
        !screen.contains("fox") && !screen.contains("ramen"),
        "{}",
        screen.text()
    );

    studio.keys(&["Escape"]);
    let screen = studio.wait_for("all three entries back", |s| {
        s.history_entries().len() == 3
            && s.pane_title("History").contains("History 3 ")
            && !s
                .pane_rows("History")
                .first()
                .is_some_and(|r| r.starts_with('/'))
    });
    let entries = screen.history_entries().join("\n");
    for p in prompts {
        assert!(entries.contains(p), "{p} is missing:\n{entries}");
    }

    studio.keys(&["q"]);
    studio.expect_clean_exit();
}

/// `q` while a job runs asks first; `n` keeps the studio, `y` quits and the job is recorded as
/// interrupted.
#[test]
fn quitting_with_a_running_job_asks_first() {
    let sb = Sandbox::new(FOREVER_MS);
    let prompt = "a clock tower that is still running";
    let studio = Studio::open(&sb, "quit");
    studio.submit(prompt);
    studio.leave_editor();

    studio.keys(&["q"]);
    studio.wait_for("the quit confirmation", |s| {
        s.contains("Jobs are running. Quit anyway?")
    });
    studio.keys(&["n"]);
    let screen = studio.wait_for("the confirmation to close", |s| !s.contains("Quit anyway?"));
    assert!(
        running_row(&screen, prompt).is_some(),
        "declining must leave the job running:\n{}",
        screen.text()
    );
    assert!(!screen.contains("EASEL-EXITED"), "{}", screen.text());

    studio.keys(&["q"]);
    studio.wait_for("the quit confirmation again", |s| {
        s.contains("Jobs are running. Quit anyway?")
    });
    studio.keys(&["y"]);
    studio.expect_clean_exit();

    let r = only_record(&sb);
    assert_eq!(r["status"], "interrupted", "{r:#}");
    assert!(no_outputs(&r), "{r:#}");
}

/// SIGTERM while a job runs: easel stops cleanly, gives the terminal back, and records the job
/// as interrupted.
#[test]
fn sigterm_while_a_job_runs() {
    signal_while_jobs_run("TERM");
}

/// A dropped SSH connection (SIGHUP) and an interrupt from outside (SIGINT) end the studio the
/// same way: terminal restored, running jobs interrupted, waiting ones kept for the next start.
#[test]
fn sighup_while_jobs_run() {
    signal_while_jobs_run("HUP");
}

#[test]
fn sigint_while_jobs_run() {
    signal_while_jobs_run("INT");
}

fn signal_while_jobs_run(signal: &str) {
    let sb = Sandbox::new(FOREVER_MS);
    let running = "a storm over the harbour";
    let studio = Studio::open(&sb, &format!("sig{signal}"));
    studio.submit(running);
    // Two more (the editor keeps the last prompt: Ctrl-A Ctrl-K clears the line). With two jobs
    // at a time, the last one waits in the queue.
    studio.keys(&["C-a", "C-k"]);
    studio.submit("a second storm");
    studio.keys(&["C-a", "C-k"]);
    studio.type_text("a third storm");
    studio.keys(&["C-s"]);
    studio.wait_for("a job waiting in the queue", |s| {
        s.pane_title("Queue").contains("1·")
    });

    let pid = studio.pid();
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid}: {status}");

    studio.expect_clean_exit();
    let records = sb.history();
    let status_of = |p: &str| {
        records
            .iter()
            .find(|r| r["prompt"].as_str().is_some_and(|x| x == p))
            .map(|r| r["status"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(
        status_of(running).as_deref(),
        Some("interrupted"),
        "{records:#?}"
    );
    assert_eq!(
        status_of("a second storm").as_deref(),
        Some("interrupted"),
        "{records:#?}"
    );
    assert_eq!(
        status_of("a third storm").as_deref(),
        Some("queued"),
        "{records:#?}"
    );
    assert!(records.iter().all(no_outputs), "{records:#?}");
    assert_eq!(sb.crash_log(), "", "easel wrote a crash report");
}

/// A panic anywhere in the studio restores the terminal and leaves its report in the log file.
#[test]
fn a_panic_restores_the_terminal_and_writes_the_log() {
    let mut sb = Sandbox::new(10);
    sb.extra.push(("EASEL_TEST_PANIC", "1".into()));
    let studio = Studio::launch(&sb, "panic");
    let (code, screen) = studio.wait_exit();
    let text = screen.text();
    assert_eq!(code, 101, "a panic's exit status; the screen:\n{text}");
    assert!(
        !studio.alternate_screen(),
        "the alternate screen is still on:\n{text}"
    );
    assert!(
        screen.contains("TTY-COOKED"),
        "the terminal was left in raw mode:\n{text}"
    );
    assert!(screen.contains("the report is in"), "{text}");
    let log = sb.crash_log();
    assert!(
        log.contains("panicked") && log.contains("EASEL_TEST_PANIC"),
        "{log}"
    );
}

/// A terminal too small for the studio says so, and the studio comes back when it grows.
#[test]
fn resizing_below_the_minimum_and_back() {
    let sb = Sandbox::new(10);
    let studio = Studio::open(&sb, "resize");

    studio.resize(30, 10);
    let screen = studio.wait_for("the too-small message", |s| {
        s.contains("terminal too small") && !s.shows_studio()
    });
    assert!(screen.text().contains("30x10"), "{}", screen.text());

    studio.resize(120, 40);
    let screen = studio.wait_for("the studio again", |s| {
        !s.contains("terminal too small")
            && s.pane("Prompt").is_some()
            && s.pane("Parameters").is_some()
            && s.pane("Queue").is_some()
            && s.pane("History").is_some()
            && s.pane("Preview").is_some()
    });
    assert!(screen.focused("Prompt"), "{}", screen.text());
    assert!(screen.status_line().contains("DEMO"), "{}", screen.text());

    // Still responsive after the resizes.
    studio.keys(&["C-c"]);
    studio.expect_clean_exit();
}

/// CPU time (user and system) a process has used so far.
#[cfg(target_os = "linux")]
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The fields after the command name (which is in parentheses and may hold spaces).
    let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    let ticks: u64 = rest[11].parse::<u64>().unwrap() + rest[12].parse::<u64>().unwrap();
    let per_second = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse::<u64>().ok())
        .unwrap_or(100);
    Duration::from_millis(ticks * 1000 / per_second)
}

/// How much CPU easel uses over `window` while nobody touches it.
#[cfg(target_os = "linux")]
fn idle_cpu(pid: u32, window: Duration) -> Duration {
    let before = cpu_time(pid);
    std::thread::sleep(window);
    cpu_time(pid) - before
}

/// A studio left alone sleeps: with an empty history, and with a search that matches nothing,
/// it does not keep asking the store for the (empty) first page and redrawing.
#[cfg(target_os = "linux")]
#[test]
fn an_idle_studio_does_not_spin() {
    const WINDOW: Duration = Duration::from_secs(2);
    // A busy loop takes most of a core; an idle studio draws a clock tick four times a second.
    const MOST: Duration = Duration::from_millis(300);

    let sb = Sandbox::new(10);
    let studio = Studio::open(&sb, "idle");
    studio.wait_for("the empty history", |s| {
        s.pane_rows("History")
            .iter()
            .any(|r| r.contains("nothing yet"))
    });
    let pid = studio.pid();
    let used = idle_cpu(pid, WINDOW);
    assert!(
        used < MOST,
        "an idle studio with an empty history used {used:?} of CPU in {WINDOW:?}"
    );

    studio.leave_editor();
    studio.keys(&["/"]);
    studio.type_text("zebra");
    studio.wait_for("no match", |s| {
        s.pane_rows("History")
            .iter()
            .any(|r| r.contains("no match"))
    });
    let used = idle_cpu(pid, WINDOW);
    assert!(
        used < MOST,
        "an idle studio showing \"no match\" used {used:?} of CPU in {WINDOW:?}"
    );

    studio.keys(&["C-c"]);
    studio.expect_clean_exit();
}

/// The history selection stays on its record when a new generation lands on top: `d` `y`
/// deletes the record that was selected, not whatever moved under the cursor.
#[test]
fn the_selection_stays_on_its_record_when_a_generation_lands() {
    let sb = Sandbox::new(10);
    let prompts = [
        "record one, a kite",
        "record two, a boat",
        "record three, a tree",
        "record four, a bridge",
        "record five, a moon",
    ];
    for p in prompts {
        let out = sb.easel(&["generate", "--no-preview", p]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let studio = Studio::open(&sb, "follow");
    studio.wait_for("five entries", |s| s.history_entries().len() == 5);
    studio.leave_editor();
    // Newest first: three down is "record two".
    studio.keys(&["j", "j", "j", "d"]);
    studio.wait_for("the confirmation naming record two", |s| {
        s.contains("record two, a boat") && s.contains("y / n")
    });
    studio.keys(&["n"]);
    // A new generation lands on top while the selection is on row 4.
    studio.keys(&["i"]);
    studio.type_text("record six, a lantern");
    studio.keys(&["C-s"]);
    studio.wait_for("six entries", |s| s.history_entries().len() == 6);
    studio.leave_editor();
    studio.keys(&["d"]);
    studio.wait_for("the confirmation still naming record two", |s| {
        s.contains("“record two, a boat”") && s.contains("y / n")
    });
    studio.keys(&["y"]);
    studio.wait_for("five entries again", |s| s.history_entries().len() == 5);
    studio.keys(&["q"]);
    studio.expect_clean_exit();
    let left: Vec<String> = sb
        .history()
        .iter()
        .map(|r| r["prompt"].as_str().unwrap().to_string())
        .collect();
    assert!(!left.iter().any(|p| p == "record two, a boat"), "{left:?}");
    assert_eq!(left.len(), 5, "{left:?}");
    assert!(left.iter().any(|p| p == "record three, a tree"), "{left:?}");
}

/// An idle studio draws nothing: a clock tick that changes nothing on screen is not a frame.
#[test]
fn an_idle_studio_does_not_redraw() {
    let mut sb = Sandbox::new(10);
    let log = sb.root.path().join("perf.jsonl");
    sb.extra.push(("EASEL_PERF_LOG", log.display().to_string()));
    let out = sb.easel(&["generate", "--no-preview", "a quiet pond"]);
    assert!(out.status.success());
    let studio = Studio::open(&sb, "no-redraw");
    studio.wait_for("the entry", |s| s.history_entries().len() == 1);
    let frames = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("frame_at_ms"))
            .count()
    };
    // Let the start settle (the demo notice expires after 6 s), then watch for 2 s.
    std::thread::sleep(Duration::from_secs(7));
    let before = frames();
    std::thread::sleep(Duration::from_secs(2));
    let idle = frames() - before;
    assert!(
        idle == 0,
        "an idle studio drew {idle} frames in 2 s (ticks come 4 times a second)"
    );
    // A key still draws.
    studio.keys(&["Escape"]);
    studio.wait_for("the history focused", |s| s.focused("History"));
    assert!(frames() > before);
    studio.keys(&["q"]);
    studio.expect_clean_exit();
}

/// `$VISUAL` with arguments and quotes is split as a shell would; the prompt goes through a
/// private temporary file (mode 0600) that is gone afterwards.
#[test]
fn the_external_editor_command_is_split_like_a_shell_and_its_file_is_private() {
    let mut sb = Sandbox::new(10);
    let seen = sb.root.path().join("seen");
    // The "editor" records the file's mode and name, then replaces the prompt.
    let visual = format!(
        "sh -c 'stat -c \"%a %n\" \"$1\" > {}; printf \"edited by the editor\" > \"$1\"' 'an editor'",
        seen.display()
    );
    sb.extra.push(("VISUAL", visual));
    let studio = Studio::open(&sb, "editor");
    studio.type_text("the first draft");
    studio.keys(&["C-o"]);
    studio.wait_for("the edited prompt", |s| s.contains("edited by the editor"));
    let line = std::fs::read_to_string(&seen).unwrap();
    let (mode, path) = line.trim().split_once(' ').unwrap();
    assert_eq!(mode, "600", "{line}");
    assert!(path.contains("easel-prompt-"), "{line}");
    assert!(
        !Path::new(path).exists(),
        "the temporary file was left behind: {path}"
    );
    studio.keys(&["C-c"]);
    studio.expect_clean_exit();
}

/// Keys typed as the external editor returns act on the edited prompt: they were read before
/// the edited text was put in, which then replaced them ("abc", Ctrl-O, "y1" gave "abc…1"), and
/// a Ctrl-S right after `:wq` could have sent the old prompt.
#[test]
fn keys_typed_as_the_external_editor_returns_are_kept() {
    let mut sb = Sandbox::new(10);
    sb.extra.push((
        "VISUAL",
        "sh -c 'printf \" +ed\" >> \"$1\"' 'an editor'".to_string(),
    ));
    let studio = Studio::open(&sb, "editor-keys");
    studio.type_text("draft");
    let mut want = String::from("draft");
    for i in 1..=4 {
        // Ctrl-O and the keys after it in one write, as a fast typist sends them.
        let digit = i.to_string();
        studio.keys(&["C-o", "y", &digit]);
        want.push_str(&format!(" +edy{i}"));
        studio.wait_for("the edited prompt and the keys after it", |s| {
            s.pane_rows("Prompt").concat().contains(&want)
        });
    }
    studio.keys(&["C-c"]);
    studio.expect_clean_exit();
}

/// The studio remembers the unsent prompt and the selection; `--fresh` starts clean.
#[test]
fn a_restart_restores_the_unsent_prompt_and_the_selection() {
    let sb = Sandbox::new(10);
    for p in [
        "first picture, a kite",
        "second picture, a boat",
        "third picture, a moon",
    ] {
        assert!(sb.easel(&["generate", "--no-preview", p]).status.success());
    }
    let studio = Studio::open(&sb, "remember-1");
    studio.wait_for("three entries", |s| s.history_entries().len() == 3);
    studio.type_text("a draft I have not sent");
    studio.leave_editor();
    studio.keys(&["j"]);
    studio.wait_for("the second row selected", |s| s.contains(" 2/3 "));
    studio.keys(&["C-c"]);
    studio.expect_clean_exit();

    // Not `open`: the studio comes back with the history focused, as it was left.
    let studio = Studio::launch(&sb, "remember-2");
    studio.wait_for("the draft back", |s| s.contains("a draft I have not sent"));
    // The selection is back on the second record: its details say so.
    studio.wait_for("history focused, second row", |s| {
        s.focused("History") && s.contains(" 2/3 ")
    });
    studio.keys(&["Enter"]);
    studio.wait_for("details of the second picture", |s| {
        s.contains("Details") && s.contains("second picture, a boat")
    });
    studio.keys(&["q", "C-c"]);
    studio.expect_clean_exit();
}

/// Rows of the screen that hold a picture: at least 10 half-blocks or coloured backgrounds.
fn picture_rows(s: &Screen) -> usize {
    s.rows
        .iter()
        .filter(|r| {
            r.iter()
                .filter(|c| matches!(c.ch, '▀' | '▄') || c.style.bg != Colour::Default)
                .count()
                >= 10
        })
        .count()
}

/// Issue 15: the full view (`z`) runs on the alternate screen and fits the picture to the
/// window; after returning and quitting, the shell shows neither the picture nor the prompt
/// to press a key.
#[test]
fn the_full_view_leaves_the_main_screen_untouched() {
    let sb = Sandbox::new(10);
    let out = sb.easel(&["generate", "--no-preview", "a lighthouse for the full view"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let studio = Studio::open(&sb, "full-view");
    studio.wait_for("the entry", |s| s.history_entries().len() == 1);
    studio.leave_editor();
    studio.keys(&["z"]);
    let screen = studio.wait_for("the full view", |s| {
        s.contains("press any key to return") && !s.shows_studio()
    });
    assert!(
        studio.alternate_screen(),
        "the full view is drawn on the main screen:\n{}",
        screen.text()
    );
    // A square picture in a 120×40 window: as tall as the window allows (one row for the line
    // under it).
    let rows = picture_rows(&screen);
    assert!(
        rows >= 38,
        "the picture is not fitted to the window ({rows} rows):\n{}",
        screen.text()
    );
    studio.keys(&["Space"]);
    studio.wait_for("the studio again", |s| {
        s.shows_studio() && !s.contains("press any key")
    });
    // One key is enough: the studio's input reader is paused, never replaced, around the full
    // view (a replaced crossterm EventStream could leave the next key unread until another).
    studio.keys(&["q"]);
    let screen = studio.expect_clean_exit();
    assert!(
        !screen.contains("press any key"),
        "the full view's prompt is left on the shell's screen:\n{}",
        screen.text()
    );
    assert_eq!(
        picture_rows(&screen),
        0,
        "the picture is left on the shell's screen:\n{}",
        screen.text()
    );
}

/// `o` opens the selected image with `$EASEL_VIEWER` (split like a shell does).
#[test]
fn o_opens_the_image_in_the_viewer() {
    let mut sb = Sandbox::new(10);
    let seen = sb.root.path().join("opened");
    sb.extra.push((
        "EASEL_VIEWER",
        format!("sh -c 'printf %s \"$1\" > {}' viewer", seen.display()),
    ));
    assert!(
        sb.easel(&["generate", "--no-preview", "a kite"])
            .status
            .success()
    );
    let studio = Studio::open(&sb, "viewer");
    studio.wait_for("the entry", |s| s.history_entries().len() == 1);
    studio.leave_editor();
    studio.keys(&["o"]);
    studio.wait_for("the viewer started", |s| s.contains("opened in"));
    let start = Instant::now();
    while !seen.exists() && start.elapsed() < DEADLINE {
        std::thread::sleep(POLL);
    }
    let path = std::fs::read_to_string(&seen).unwrap();
    assert!(
        path.ends_with(".png") && Path::new(&path).is_file(),
        "{path}"
    );
    studio.keys(&["C-c"]);
    studio.expect_clean_exit();
}

/// Issue 12, in a real terminal: `M` on a history image opens the mask editor over it; Space
/// adds the shape in the middle and Enter saves the mask (a PNG at the picture's size, alpha 0
/// exactly inside the shape, in the data folder's `masks/`); the next prompt queues an edit of
/// that picture with that mask, and the new record names the first as the picture it edited.
#[test]
fn paint_a_mask_and_send_an_edit() {
    let sb = Sandbox::new(1500);
    let studio = Studio::open(&sb, "mask");
    studio.submit("a red fox in the snow");
    studio.wait_for("the picture in history", |s| {
        s.history_entries()
            .first()
            .is_some_and(|r| r.starts_with('✓'))
    });
    studio.leave_editor();
    studio.keys(&["M"]);
    // The title names the picture's size once it is read.
    let screen = studio.wait_for("the mask editor over the picture", |s| {
        s.text()
            .lines()
            .next()
            .is_some_and(|l| l.contains("Mask ·") && l.matches(" · ").count() >= 2)
    });
    assert!(screen.contains("0 steps"), "{}", screen.text());
    assert!(screen.contains("0% of the picture"), "{}", screen.text());
    // Space adds the shape: a quarter of the picture (half its width and height) is to edit.
    studio.keys(&["Space"]);
    studio.wait_for("the area to edit", |s| {
        s.contains("1 step ") && s.contains("25% of the picture")
    });
    studio.keys(&["Enter"]);
    let screen = studio.wait_for("the mask saved and shown in the strip", |s| {
        s.status_line().contains("mask saved") && s.contains("mask: mask-")
    });
    assert!(
        screen.contains("Edit of 1 picture"),
        "the strip: {}",
        screen.text()
    );

    // The mask: one private PNG at the picture's size.
    let masks: Vec<PathBuf> = std::fs::read_dir(sb.data.join("masks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(masks.len(), 1, "{masks:?}");
    // The edit, sent from the editor (the old prompt cleared first): "edit of" in the queue,
    // then a second record.
    studio.keys(&["C-l"]);
    studio.type_text("the same fox at night");
    studio.keys(&["C-s"]);
    // (An edit of one picture has no references to count.)
    studio.wait_for("the edit in the queue", |s| {
        s.pane_rows("Queue")
            .iter()
            .any(|r| r.contains("edit of") && !r.contains(" ref"))
    });
    studio.wait_for("the edit in history", |s| {
        s.history_entries().len() == 2 && s.history_entries().iter().all(|r| r.starts_with('✓'))
    });
    studio.keys(&["C-c"]);
    studio.expect_clean_exit();
    let records = sb.history();
    let (edit, parent) = (&records[0], &records[1]);
    assert_eq!(edit["prompt"], "the same fox at night", "{edit:#}");
    assert_eq!(edit["parents"][0]["role"], "edited", "{edit:#}");
    assert_eq!(edit["parents"][0]["id"], parent["id"], "{edit:#}");
    assert_eq!(
        edit["params"]["mask"]["path"].as_str(),
        Some(masks[0].to_str().unwrap()),
        "{edit:#}"
    );
    // The mask is at the edited picture's size, alpha 0 exactly in the shape.
    let (w, h) = (
        parent["outputs"][0]["width"].as_u64().unwrap() as u32,
        parent["outputs"][0]["height"].as_u64().unwrap() as u32,
    );
    let mask = image::open(&masks[0]).unwrap().to_rgba8();
    assert_eq!(mask.dimensions(), (w, h));
    let clear = mask.pixels().filter(|p| p.0[3] == 0).count() as f64;
    let share = clear / f64::from(w * h);
    assert!((0.2..0.3).contains(&share), "{share}");
    assert_eq!(mask.get_pixel(w / 2, h / 2).0[3], 0, "the middle is edited");
    assert_eq!(mask.get_pixel(0, 0).0[3], 255, "a corner is kept");
    assert!(mask.pixels().all(|p| p.0[3] == 0 || p.0[3] == 255));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&masks[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the mask is private: {mode:o}");
    }
}

/// Issue 12: the lineage view. Generate, edit it (E, then queue), open the view on the edit
/// (L): both prompts are in the tree, the edited picture above the edit; Enter goes to the
/// selected record, Esc leaves.
#[test]
fn the_lineage_view_shows_an_edit_and_its_picture() {
    let sb = Sandbox::new(1500);
    let studio = Studio::open(&sb, "lineage");
    studio.submit("a red fox in the snow");
    studio.wait_for("the picture in history", |s| {
        s.history_entries()
            .first()
            .is_some_and(|r| r.starts_with('✓'))
    });
    studio.leave_editor();
    studio.keys(&["E"]);
    studio.wait_for("the picture in the strip", |s| {
        s.contains("Edit of 1 picture")
    });
    studio.keys(&["C-l"]);
    studio.type_text("the same fox at night");
    studio.keys(&["C-s"]);
    studio.wait_for("the edit in history", |s| {
        s.history_entries().len() == 2 && s.history_entries().iter().all(|r| r.starts_with('✓'))
    });
    // The edit is the newest: the history's first row.
    studio.leave_editor();
    studio.keys(&["g", "L"]);
    let screen = studio.wait_for("the tree in the lineage view", |s| {
        s.contains("Lineage of")
            && s.contains("the same fox at night")
            && s.contains("a red fox in the snow")
    });
    let text = screen.text();
    let parent = text.find("a red fox in the snow").unwrap();
    let edit = text.find("the same fox at night").unwrap();
    assert!(
        parent < edit,
        "the edited picture is above the edit: {text}"
    );
    assert!(text.contains("edited"), "{text}");
    assert!(text.contains("● "), "the record is marked: {text}");
    // A small picture by each of the two nodes (half-blocks in tmux), in the column at the left.
    studio.wait_for("a picture by each node", |s| {
        let Some(pane) = s.pane("Lineage of") else {
            return false;
        };
        let pictures = s.pane_cells("Lineage of");
        let rows_with_blocks = pictures
            .iter()
            .filter(|row| {
                row.iter()
                    .filter(|c| c.col <= pane.left + 7)
                    .any(|c| matches!(c.ch, '▀' | '▄') && matches!(c.style.bg, Colour::Rgb(..)))
            })
            .count();
        rows_with_blocks >= 4
    });
    // Up to the parent, Enter: the history goes to it (its prompt on the selected row).
    studio.keys(&["k", "Enter"]);
    studio.wait_for("the history on the parent", |s| {
        !s.contains("Lineage of")
            && s.history_entries().len() == 2
            && s.history_entries()[1].contains("a red fox")
    });
    // The view on the parent: it is the record marked, the edit below it.
    studio.keys(&["L"]);
    let screen = studio.wait_for("the view of the parent", |s| {
        s.contains("Lineage of") && s.contains("the same fox at night")
    });
    let text = screen.text();
    let mark = text.find("● ").unwrap();
    assert!(
        mark < text.find("a red fox in the snow").unwrap(),
        "the parent is the record marked: {text}"
    );
    studio.keys(&["Escape"]);
    studio.wait_for("the history again", |s| !s.contains("Lineage of"));
    studio.keys(&["C-c"]);
    studio.expect_clean_exit();
}

/// Issue 12: queueing an edit checks its files first, as the CLI does. The picture edited is
/// deleted after it was put in the strip: Ctrl-S says so on the status line and queues nothing.
#[test]
fn an_edit_whose_picture_was_deleted_is_not_queued() {
    let sb = Sandbox::new(1500);
    let studio = Studio::open(&sb, "gone");
    studio.submit("a red fox in the snow");
    studio.wait_for("the picture in history", |s| {
        s.history_entries()
            .first()
            .is_some_and(|r| r.starts_with('✓'))
    });
    studio.leave_editor();
    studio.keys(&["E"]);
    studio.wait_for("the picture in the strip", |s| {
        s.contains("Edit of 1 picture")
    });
    // The one picture in the data folder (history is the studio's while it runs).
    fn pictures(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                pictures(&p, out);
            } else if p.extension().is_some_and(|x| x == "png") {
                out.push(p);
            }
        }
    }
    let mut found = Vec::new();
    pictures(&sb.data.join("images"), &mut found);
    assert_eq!(found.len(), 1, "{found:?}");
    std::fs::remove_file(&found[0]).unwrap();
    studio.keys(&["C-l"]);
    studio.type_text("the same fox at night");
    studio.keys(&["C-s"]);
    let screen = studio.wait_for("the refusal on the status line", |s| {
        s.status_line().contains("not queued")
    });
    assert!(
        screen.status_line().contains("image"),
        "{}",
        screen.status_line()
    );
    // Nothing was queued (history, read after the studio quit, holds the first picture only).
    assert!(
        screen
            .pane_rows("Queue")
            .iter()
            .all(|r| !r.contains("edit of")),
        "{}",
        screen.text()
    );
    studio.keys(&["C-c"]);
    studio.expect_clean_exit();
    assert_eq!(
        sb.history().len(),
        1,
        "only the first picture is in history"
    );
}

/// Issue 13, end to end in tmux: rate, tag, delete to the trash and undo, as a user would; the
/// history (read by `easel history list` afterwards) has the rating and the tag, and the
/// deleted record back.
#[test]
fn rate_tag_delete_and_undo_in_the_studio() {
    let sb = Sandbox::new(10);
    for p in ["a kite over the dunes", "a boat at dawn"] {
        assert!(sb.easel(&["generate", "--no-preview", p]).status.success());
    }
    let studio = Studio::open(&sb, "review-1");
    studio.wait_for("two entries", |s| s.history_entries().len() == 2);
    studio.leave_editor();
    // The newest (a boat at dawn) is selected: rate it 4 and tag it.
    studio.keys(&["4"]);
    studio.keys(&["t"]);
    studio.wait_for("the tags line", |s| s.contains("+add -remove"));
    studio.type_text("+keep");
    studio.keys(&["Enter"]);
    // Delete the other one, then undo.
    studio.keys(&["j"]);
    studio.keys(&["d"]);
    studio.wait_for("the delete confirmation", |s| {
        s.contains("a kite over the dunes") && s.contains("trash")
    });
    studio.keys(&["y"]);
    studio.wait_for("one entry left", |s| s.history_entries().len() == 1);
    studio.keys(&["u"]);
    studio.wait_for("both entries again", |s| s.history_entries().len() == 2);
    studio.keys(&["C-c"]);
    studio.expect_clean_exit();

    let records = sb.history();
    assert_eq!(records.len(), 2, "{records:?}");
    let boat = records
        .iter()
        .find(|r| r["prompt"] == "a boat at dawn")
        .expect("the boat");
    assert_eq!(boat["rating"], 4, "{boat}");
    assert_eq!(boat["tags"], serde_json::json!(["keep"]), "{boat}");
    assert!(
        records
            .iter()
            .any(|r| r["prompt"] == "a kite over the dunes"),
        "the deleted one is back: {records:?}"
    );
}

/// F5 (Ctrl-L outside the editor) redraws and asks the terminal again: the answers are read
/// while the studio's input reader waits, so none of them shows up as typed keys, and the keys
/// after it still work.
#[test]
fn the_redraw_key_asks_the_terminal_again() {
    let mut sb = Sandbox::new(10);
    // Detection asks the terminal (tmux answers for itself).
    sb.extra.push(("EASEL_GRAPHICS", "auto".into()));
    let studio = Studio::open(&sb, "redraw");
    studio.leave_editor();
    studio.keys(&["F5"]);
    let screen = studio.wait_for("the redraw notice", |s| s.contains("redrawn · pictures:"));
    // tmux answered (XTVERSION): the answer reached detection, not the key reader.
    assert!(
        screen.contains("redrawn · pictures: half-blocks (tmux 3."),
        "{}",
        screen.text()
    );
    studio.keys(&["C-l"]);
    studio.keys(&["i"]);
    studio.type_text("after the redraw");
    let screen = studio.wait_for("the typed prompt", |s| s.contains("after the redraw"));
    // An answer taken for keys would have typed escape-sequence debris into the prompt.
    let prompt = screen.pane_rows("Prompt").join("\n");
    assert!(
        !prompt.contains("[?") && !prompt.contains(">|") && !prompt.contains("tmux"),
        "terminal answers leaked into the prompt:\n{prompt}"
    );
    studio.leave_editor();
    studio.keys(&["q"]);
    studio.expect_clean_exit();
}

/// A run typed in the studio (issue 14): `a {red|blue} kite` on the demo backend says what it
/// expands to under the prompt, is queued as two jobs with one run id, and `easel history list
/// --run` finds both.
#[test]
fn a_run_typed_in_the_studio_is_queued_as_one_run() {
    let sb = Sandbox::new(300);
    let studio = Studio::open(&sb, "run");
    studio.type_text("a {red|blue} kite");
    studio.wait_for("the run's count under the prompt", |s| {
        s.text().contains("2 prompts · 2 images · $0 (demo)")
    });
    studio.keys(&["C-s"]);
    studio.wait_for("both jobs of the run in history", |s| {
        s.history_entries()
            .iter()
            .filter(|r| r.starts_with('✓'))
            .count()
            == 2
    });
    studio.keys(&["C-c"]);
    studio.expect_clean_exit();

    let records = sb.history();
    assert_eq!(records.len(), 2, "{records:#?}");
    let run = records[0]["run"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!run.is_empty(), "{records:#?}");
    assert_eq!(records[1]["run"]["id"], run.as_str(), "{records:#?}");
    let mut prompts: Vec<&str> = records
        .iter()
        .map(|r| r["prompt"].as_str().unwrap_or_default())
        .collect();
    prompts.sort_unstable();
    assert_eq!(prompts, ["a blue kite", "a red kite"]);
    for r in &records {
        assert_eq!(r["run"]["of"], 2, "{r:#}");
        assert_eq!(r["run"]["values"]["template"], "a {red|blue} kite", "{r:#}");
    }

    let out = sb.easel(&["history", "list", "--run", &run[..8], "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("next").is_none())
        .collect();
    assert_eq!(listed.len(), 2, "{listed:#?}");
    let indexes: Vec<u64> = listed
        .iter()
        .map(|r| r["run"]["index"].as_u64().unwrap_or_default())
        .collect();
    assert_eq!(indexes, [1, 2], "in run order: {listed:#?}");
}

/// Attaching to the studio's tmux session from another terminal — kitty 0.35, played by
/// tests/support/fake_terminal.py, which answers the queries kitty answers — switches the
/// preview to kitty graphics with no key pressed: the studio notices the new client (the window
/// keeps its size, so by looking every few seconds) and asks the terminal again.
#[test]
fn attaching_from_another_terminal_switches_the_pictures() {
    let mut sb = Sandbox::new(10);
    sb.extra.push(("EASEL_GRAPHICS", "auto".into()));
    sb.inside_tmux = true;
    let studio = Studio::open(&sb, "attach");
    // Nobody attached: tmux answers alone, so half-blocks.
    studio.wait_for("half-blocks while detached", |s| {
        s.contains("Preview · half-blocks")
    });
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/fake_terminal.py"
    );
    let mut outer = Command::new("python3")
        .args([script, &studio.socket, SESSION, "40"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs the fake terminal");
    let screen = studio.wait_for("kitty graphics after the attach", |s| {
        s.contains("Preview · kitty")
    });
    let _ = outer.kill();
    let _ = outer.wait();
    assert!(
        screen.contains("pictures: kitty (kitty(0.35.2) in tmux"),
        "{}",
        screen.text()
    );
}
