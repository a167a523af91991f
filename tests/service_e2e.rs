//! End-to-end tests of the data folder's service with the real binary: started on demand by the
//! first command, shared by the studio (in tmux), `easel generate` and `easel history`, and
//! surviving its clients — and clients surviving it (SIGKILL of the service, a stale socket).
//!
//! Every test has its own temporary root holding HOME, the config folder, a private runtime
//! folder (XDG_RUNTIME_DIR, where the socket goes), the state folder (the service's log) and
//! the data folder, and runs easel with a clean environment and `EASEL_SERVICE=on`. The
//! [`Folder`] guard stops the service when the test ends, passed or failed (`easel service
//! stop --force`, then SIGKILL for anything still running with the test's root in its
//! environment), so no background process outlives a test; `[service] idle_exit_secs = 30` is
//! the safety net behind it. Nothing waits a fixed time: what is expected is polled for until
//! a deadline, except the random moments at which the SIGKILL rounds strike.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use unicode_width::UnicodeWidthChar;

const BIN: &str = env!("CARGO_BIN_EXE_easel");

/// How long anything may take to happen. Generous: these run in parallel on small machines.
const DEADLINE: Duration = Duration::from_secs(40);
const POLL: Duration = Duration::from_millis(50);

/// A demo latency no test outlives: the job is still running whenever the test looks.
const FOREVER_MS: u64 = 120_000;
/// A job slow enough to be seen running, quick enough to wait for.
const SLOW_MS: u64 = 3_000;

// ---------------------------------------------------------------------------------------------
// The folder: private folders, the binary with a clean environment, and the service's end
// ---------------------------------------------------------------------------------------------

struct Folder {
    root: tempfile::TempDir,
    home: PathBuf,
    config_home: PathBuf,
    runtime: PathBuf,
    state: PathBuf,
    data: PathBuf,
}

impl Folder {
    /// Folders for one test, with a config whose demo backend takes `latency_ms`.
    fn new(latency_ms: u64) -> Folder {
        Folder::with_config(latency_ms, "")
    }

    /// ... and `extra` appended to the config file.
    fn with_config(latency_ms: u64, extra: &str) -> Folder {
        // Short: the socket's path must fit in 107 bytes.
        let root = tempfile::Builder::new()
            .prefix("es-")
            .tempdir()
            .expect("temp dir");
        let at = |p: &str| root.path().join(p);
        let f = Folder {
            home: at("home"),
            config_home: at("config"),
            runtime: at("run"),
            state: at("state"),
            data: at("data"),
            root,
        };
        std::fs::create_dir_all(&f.home).unwrap();
        std::fs::create_dir_all(f.config_home.join("easel")).unwrap();
        std::fs::create_dir_all(&f.runtime).unwrap();
        std::fs::set_permissions(&f.runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        let config = format!(
            "[demo]\nlatency_ms = {latency_ms}\npartial_images = 2\n\n\
             [service]\nidle_exit_secs = 30\n\n{extra}"
        );
        std::fs::write(f.config_home.join("easel").join("config.toml"), config).unwrap();
        f
    }

    /// The clean environment easel runs with.
    fn env(&self) -> Vec<(&'static str, String)> {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        let s = |p: &Path| p.display().to_string();
        vec![
            ("PATH", path),
            ("HOME", s(&self.home)),
            ("XDG_CONFIG_HOME", s(&self.config_home)),
            ("XDG_RUNTIME_DIR", s(&self.runtime)),
            ("XDG_STATE_HOME", s(&self.state)),
            ("EASEL_DATA_DIR", s(&self.data)),
            ("EASEL_SERVICE", "on".into()),
            ("LANG", "C.UTF-8".into()),
        ]
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env_clear().args(args).stdin(Stdio::null());
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        cmd
    }

    /// Run easel (no terminal) and wait for it, within the deadline.
    fn easel(&self, args: &[&str]) -> Output {
        let child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run easel");
        Proc::new(child, &format!("easel {args:?}")).output_within(DEADLINE)
    }

    /// `easel generate` in the background, its output kept.
    fn spawn_generate(&self, prompt: &str, env: &[(&str, &str)]) -> Proc {
        let mut cmd = self.command(&["generate", "--json", "--size", "256x256", prompt]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run easel generate");
        Proc::new(child, &format!("easel generate {prompt:?}"))
    }

    /// `easel history list --json`: the records, newest first.
    fn history(&self) -> Vec<Value> {
        let out = self.easel(&["history", "list", "--json", "--limit", "1000"]);
        assert!(
            out.status.success(),
            "easel history list failed: {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.diagnosis()
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("without the service"),
            "easel history list did not reach the service: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.diagnosis()
        );
        records(&out)
    }

    /// The record with this prompt, if history has it.
    fn record(&self, prompt: &str) -> Option<Value> {
        self.history()
            .into_iter()
            .find(|r| r["prompt"].as_str() == Some(prompt))
    }

    /// Poll history until the record with this prompt has one of `statuses`.
    fn wait_status(&self, prompt: &str, statuses: &[&str]) -> Value {
        let start = Instant::now();
        loop {
            let r = self.record(prompt);
            if let Some(r) = &r
                && statuses.contains(&r["status"].as_str().unwrap_or_default())
            {
                return r.clone();
            }
            assert!(
                start.elapsed() < DEADLINE,
                "waited {DEADLINE:?} for {prompt:?} to be {statuses:?}; it is {r:#?}\n{}",
                self.log()
            );
            std::thread::sleep(POLL);
        }
    }

    /// `easel service status --json`: its exit code and answer.
    fn status(&self) -> (i32, Value) {
        let out = self.easel(&["service", "status", "--json"]);
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "status --json is not JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), v)
    }

    /// The running service's pid (it must run).
    fn service_pid(&self) -> u32 {
        let (code, v) = self.status();
        assert_eq!(code, 0, "no service runs: {v}\n{}", self.diagnosis());
        v["pid"].as_u64().expect("a pid") as u32
    }

    /// The socket's path (status names it whether or not a service runs).
    fn socket(&self) -> PathBuf {
        PathBuf::from(self.status().1["socket"].as_str().expect("a socket path"))
    }

    /// The service's log file: `$XDG_STATE_HOME/easel/service-<socket name>.log`.
    fn log_path(&self) -> PathBuf {
        let socket = self.socket();
        let name = socket.file_stem().unwrap().to_string_lossy().into_owned();
        self.state.join("easel").join(format!("service-{name}.log"))
    }

    /// The service's log, for failure messages.
    fn log(&self) -> String {
        let dir = self.state.join("easel");
        let mut text = String::new();
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            text.push_str(&format!("--- {}\n", e.path().display()));
            text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
        text
    }

    /// The log, the processes and the socket, for failure messages.
    fn diagnosis(&self) -> String {
        let dir = self.runtime.join("easel");
        let sockets: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                let m = e.metadata().ok();
                format!(
                    "{} (inode {:?})",
                    e.path().display(),
                    m.map(|m| std::os::unix::fs::MetadataExt::ino(&m))
                )
            })
            .collect();
        format!(
            "{}\nprocesses: {:#?}\nsockets: {sockets:?}",
            self.log(),
            self.processes()
        )
    }

    /// Easel processes started for this test and still alive: anything with the test's root in
    /// its environment (the service, clients), found in /proc.
    fn processes(&self) -> Vec<(u32, String)> {
        let needle = self.root.path().as_os_str().as_encoded_bytes();
        let me = std::process::id();
        let mut found = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if pid == me || !alive(pid) {
                continue;
            }
            let Ok(environ) = std::fs::read(e.path().join("environ")) else {
                continue;
            };
            if environ.windows(needle.len()).any(|w| w == needle) {
                let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                found.push((pid, cmdline));
            }
        }
        found
    }

    /// Live services of this test's data folder.
    fn services(&self) -> Vec<u32> {
        self.processes()
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("service run"))
            .map(|(pid, _)| pid)
            .collect()
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        // Stop the service the polite way (it records running jobs as interrupted)...
        if let Ok(mut child) = self
            .command(&["service", "stop", "--force"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            let until = Instant::now() + Duration::from_secs(25);
            while Instant::now() < until && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(POLL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // ...and then anything of this test still alive (a service that did not stop, a client
        // left waiting) the hard way.
        if let Ok(out) = self.command(&["service", "status", "--json"]).output()
            && let Ok(v) = serde_json::from_slice::<Value>(&out.stdout)
            && let Some(pid) = v["pid"].as_u64()
        {
            kill(pid as u32, libc::SIGKILL);
        }
        for (pid, _) in self.processes() {
            kill(pid, libc::SIGKILL);
        }
    }
}

/// A child process that is killed and reaped if the test ends before it does.
struct Proc {
    child: Option<Child>,
    what: String,
}

impl Proc {
    fn new(child: Child, what: &str) -> Proc {
        Proc {
            child: Some(child),
            what: what.to_string(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn signal(&self, signal: i32) {
        kill(self.pid(), signal);
    }

    /// Wait for it to end, reading its output; fail after `limit`.
    fn output_within(mut self, limit: Duration) -> Output {
        let mut child = self.child.take().unwrap();
        // Read the pipes on threads so a chatty child cannot block on a full pipe.
        let read = |r: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut buf);
                }
                buf
            })
        };
        let out = read(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        );
        let err = read(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        );
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for easel") {
                break status;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
                panic!(
                    "{} did not end within {limit:?} (killed); its stderr:\n{stderr}",
                    self.what
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Output {
            status,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn kill(pid: u32, signal: i32) {
    // SAFETY: kill(2) with a pid this test started (or read from its own service's status).
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// Whether a process exists with a thread that is not a zombie. (A killed process's main
/// thread can be a zombie while its other threads still exit, holding its files and locks.)
fn alive(pid: u32) -> bool {
    let running = |stat: &str| {
        // The state follows the command name, which is in parentheses.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X')
    };
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|t| std::fs::read_to_string(t.path().join("stat")).is_ok_and(|s| running(&s)))
}

/// Poll until `ready` holds; fail with `what` after the deadline.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < DEADLINE, "waited {DEADLINE:?} for {what}");
        std::thread::sleep(POLL);
    }
}

/// The records of a `history list --json` output.
fn records(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v| v.get("next").is_none())
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every image of a succeeded record is on disk with its recorded size.
fn images_present(folder: &Folder, r: &Value) -> Result<(), String> {
    let outputs = r["outputs"].as_array().cloned().unwrap_or_default();
    if outputs.is_empty() {
        return Err("no outputs".into());
    }
    for o in outputs {
        let rel = o["path"].as_str().unwrap_or_default();
        let path = folder.data.join(rel);
        match std::fs::metadata(&path) {
            Ok(m) if Some(m.len()) == o["bytes"].as_u64() => {}
            Ok(m) => return Err(format!("{rel}: {} bytes, recorded {}", m.len(), o["bytes"])),
            Err(e) => return Err(format!("{rel}: {e}")),
        }
    }
    Ok(())
}

/// Whether a signal the process catches (SigCgt in /proc) includes `signal`: its handler is
/// installed.
fn catches(pid: u32, signal: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

fn exited_by_signal(status: &ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

// ---------------------------------------------------------------------------------------------
// The screen (capture-pane -e parsed into cells) and the studio in tmux — the pieces of
// tests/studio_e2e.rs these tests need
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
    bold: bool,
}

impl Style {
    fn apply(&mut self, params: &str) {
        let p: Vec<u16> = params
            .split([';', ':'])
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        let mut i = 0;
        while i < p.len() {
            match p[i] {
                0 => *self = Style::default(),
                1 => self.bold = true,
                22 => self.bold = false,
                n @ 30..=37 => self.fg = Colour::Indexed((n - 30) as u8),
                n @ (38 | 48) => {
                    let c = match p.get(i + 1) {
                        Some(5) => {
                            let c = Colour::Indexed(p.get(i + 2).copied().unwrap_or(0) as u8);
                            i += 2;
                            c
                        }
                        Some(2) => {
                            let at = |k: usize| p.get(i + k).copied().unwrap_or(0) as u8;
                            let c = Colour::Rgb(at(2), at(3), at(4));
                            i += 4;
                            c
                        }
                        _ => Colour::Default,
                    };
                    if n == 38 {
                        self.fg = c;
                    }
                }
                39 => self.fg = Colour::Default,
                n @ 90..=97 => self.fg = Colour::Indexed((n - 90 + 8) as u8),
                _ => {}
            }
            i += 1;
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Cell {
    ch: char,
    col: usize,
    style: Style,
}

struct Screen {
    rows: Vec<Vec<Cell>>,
}

impl Screen {
    fn parse(raw: &str) -> Screen {
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
                    rows.last_mut().unwrap().push(Cell { ch: c, col, style });
                    col += c.width().unwrap_or(0);
                }
            }
        }
        Screen { rows }
    }

    fn row_text(row: &[Cell]) -> String {
        row.iter()
            .map(|c| c.ch)
            .collect::<String>()
            .trim_end()
            .to_string()
    }

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

    fn cell_at(&self, row: usize, col: usize) -> Option<&Cell> {
        self.rows.get(row)?.iter().find(|c| c.col == col)
    }

    /// The border of the pane whose top line starts with `┌ {title}`: (top, bottom, left, right).
    fn pane(&self, title: &str) -> Option<(usize, usize, usize, usize)> {
        let needle = format!("┌ {title}");
        for (top, row) in self.rows.iter().enumerate() {
            let line: String = row.iter().map(|c| c.ch).collect();
            let Some(at) = line.find(&needle) else {
                continue;
            };
            let idx = line[..at].chars().count();
            let left = row[idx].col;
            let right = row[idx..].iter().find(|c| c.ch == '┐')?.col;
            let bottom = (top + 1..self.rows.len())
                .find(|&b| self.cell_at(b, left).is_some_and(|c| c.ch == '└'))?;
            return Some((top, bottom, left, right));
        }
        None
    }

    /// The text inside a pane's border, row by row.
    fn pane_rows(&self, title: &str) -> Vec<String> {
        let Some((top, bottom, left, right)) = self.pane(title) else {
            return Vec::new();
        };
        (top + 1..bottom)
            .map(|row| {
                let cells: Vec<Cell> = self.rows[row]
                    .iter()
                    .filter(|c| c.col > left && c.col < right)
                    .copied()
                    .collect();
                Screen::row_text(&cells)
            })
            .collect()
    }

    /// The focused pane has a bold cyan border.
    fn focused(&self, title: &str) -> bool {
        self.pane(title)
            .and_then(|(top, _, left, _)| self.cell_at(top, left))
            .is_some_and(|c| c.style.fg == Colour::Indexed(6) && c.style.bold)
    }

    /// History rows that show a generation (they start with a status icon).
    fn history_entries(&self) -> Vec<String> {
        self.pane_rows("History")
            .into_iter()
            .filter(|r| r.starts_with(['·', '▶', '✓', '✗', '–', '!']))
            .collect()
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

/// The history's row for a succeeded generation with this prompt.
fn succeeded_row(s: &Screen, prompt: &str) -> Option<String> {
    s.history_entries()
        .into_iter()
        .find(|r| r.starts_with('✓') && r.contains(&excerpt(prompt)))
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

static SESSIONS: AtomicUsize = AtomicUsize::new(0);
const SESSION: &str = "studio";

/// One easel studio in its own tmux server (120×40). Dropping it kills the server.
struct Studio {
    socket: String,
    socket_path: Option<PathBuf>,
    pidfile: PathBuf,
}

impl Studio {
    /// Start the studio and wait until it is up, its history loaded.
    fn open(f: &Folder, label: &str) -> Studio {
        let n = SESSIONS.fetch_add(1, Ordering::SeqCst);
        let dir = f.root.path().join(format!("session-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("easel.pid");
        let env: Vec<String> = f
            .env()
            .into_iter()
            .chain([
                ("TERM", "xterm-256color".to_string()),
                ("COLORTERM", "truecolor".into()),
                ("EASEL_GRAPHICS", "halfblocks".into()),
            ])
            .map(|(k, v)| format!("{k}={}", sh_quote(&v)))
            .collect();
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
                "sh {}\necho \"EASEL-EXITED $?\"\nexec sleep 3600\n",
                sh_quote(&easel_sh.display().to_string())
            ),
        )
        .unwrap();
        let mut studio = Studio {
            socket: format!("easel-svc-{}-{label}-{n}", std::process::id()),
            socket_path: None,
            pidfile,
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
            .unwrap_or_else(|e| panic!("cannot run tmux ({e}): these tests need it"));
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", SESSION];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", SESSION, "-l", text]);
    }

    fn screen(&self) -> Screen {
        Screen::parse(&self.tmux(&["capture-pane", "-p", "-e", "-t", SESSION]))
    }

    fn wait_for(&self, what: &str, ready: impl Fn(&Screen) -> bool) -> Screen {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "waited {DEADLINE:?} for {what}; the screen shows:\n{}",
                screen.text()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Wait for easel to end; its exit status.
    fn wait_exit(&self) -> i32 {
        let screen = self.wait_for("easel to exit", |s| s.contains("EASEL-EXITED"));
        let text = screen.text();
        text.lines()
            .find_map(|l| l.trim().strip_prefix("EASEL-EXITED "))
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or_else(|| panic!("no exit status on the screen:\n{text}"))
    }

    /// easel's pid (written by the wrapper just before it `exec`s easel).
    fn pid(&self) -> u32 {
        let mut pid = None;
        wait_until("easel's pid file", || {
            pid = std::fs::read_to_string(&self.pidfile)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            pid.is_some()
        });
        pid.unwrap()
    }

    /// Type a prompt into the (focused) editor, submit it, and wait until the queue shows it
    /// running.
    fn submit(&self, prompt: &str) {
        self.type_text(prompt);
        self.wait_for("the prompt in the editor", |s| {
            s.pane_rows("Prompt").iter().any(|r| r.contains(prompt))
        });
        self.keys(&["C-s"]);
        self.wait_for("the job running in the queue", |s| {
            running_row(s, prompt).is_some()
        });
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

// ---------------------------------------------------------------------------------------------
// The service from the command line
// ---------------------------------------------------------------------------------------------

/// `generate` then `history list` start the service on demand; its socket and folder are
/// private, its log has no key in it, status says what runs, and `service stop` stops it.
#[test]
fn the_service_starts_on_demand_and_stops() {
    let f = Folder::with_config(50, "[network]\nmax_retries = 0\nconnect_timeout_secs = 2\n");
    let (code, before) = f.status();
    assert_eq!(code, 3, "no service yet: {before}");
    assert_eq!(before["running"], false, "{before}");

    let out = f.easel(&["generate", "--size", "256x256", "a lighthouse at dusk"]);
    assert!(
        out.status.success(),
        "generate: {}\n{}",
        out.status,
        text(&out.stderr)
    );
    // With a key, pointed at a port nobody listens on: the job fails, but the key went over
    // the socket to the service.
    let key = "sk-test-e2e-NEVER-WRITE-ME-4f1d2c";
    let out = f
        .spawn_generate(
            "a job with a key",
            &[
                ("OPENAI_API_KEY", key),
                ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
            ],
        )
        .output_within(DEADLINE);
    assert!(!out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains(key), "{}", text(&out.stderr));

    let records = f.history();
    let status_of = |p: &str| {
        records
            .iter()
            .find(|r| r["prompt"] == p)
            .map(|r| r["status"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(
        status_of("a lighthouse at dusk").as_deref(),
        Some("succeeded"),
        "{records:#?}"
    );
    assert_eq!(
        status_of("a job with a key").as_deref(),
        Some("failed"),
        "{records:#?}"
    );

    let (code, s) = f.status();
    assert_eq!(code, 0, "{s}");
    assert_eq!(s["running"], true, "{s}");
    let pid = s["pid"].as_u64().expect("pid") as u32;
    assert!(alive(pid), "status names pid {pid}, which is not running");
    assert!(
        f.services() == vec![pid],
        "one service, {pid}: {:?}",
        f.processes()
    );
    // The status command is a client itself.
    assert!(s["clients"].as_u64().is_some_and(|n| n >= 1), "{s}");
    assert_eq!(s["jobs_running"], 0, "{s}");
    assert_eq!(s["jobs_queued"], 0, "{s}");

    let socket = PathBuf::from(s["socket"].as_str().unwrap());
    assert_eq!(socket.parent().unwrap(), f.runtime.join("easel"), "{s}");
    let meta = std::fs::metadata(&socket).expect("the socket exists");
    assert!(meta.file_type().is_socket(), "{socket:?} is a socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "socket mode");
    let dir = std::fs::metadata(socket.parent().unwrap()).unwrap();
    assert_eq!(
        dir.permissions().mode() & 0o777,
        0o700,
        "socket folder mode"
    );

    let log_path = f.log_path();
    assert_eq!(s["log"].as_str(), Some(log_path.to_str().unwrap()), "{s}");
    let log = std::fs::read_to_string(&log_path).expect("the service log exists");
    assert!(log.contains("serving"), "{log}");
    assert!(!log.contains("sk-"), "the log holds a key:\n{log}");
    // Nowhere under the test's root: not the store, not the queue tree, not the log.
    let mut files = Vec::new();
    walk(f.root.path(), &mut files);
    for p in files {
        let bytes = std::fs::read(&p).unwrap_or_default();
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
            "the key was written to {}",
            p.display()
        );
    }

    let out = f.easel(&["service", "stop"]);
    assert!(out.status.success(), "stop: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&pid.to_string()),
        "{}",
        text(&out.stdout)
    );
    assert!(!socket.exists(), "the socket is removed when it stops");
    assert!(!alive(pid), "the service {pid} is still running");
    let (code, s) = f.status();
    assert_eq!(code, 3, "{s}");
    assert_eq!(s["running"], false, "{s}");
    assert!(f.services().is_empty(), "{:?}", f.processes());
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            walk(&e.path(), out);
        } else if t.is_file() {
            out.push(e.path());
        }
    }
}

/// `easel generate` killed with SIGKILL mid-job: the job runs on in the service and lands in
/// history with its image.
#[test]
fn a_killed_generate_leaves_its_job_running() {
    let f = Folder::new(SLOW_MS);
    let prompt = "a kite over the dunes";
    let gen_ = f.spawn_generate(prompt, &[]);
    f.wait_status(prompt, &["running"]);
    gen_.signal(libc::SIGKILL);
    let out = gen_.output_within(DEADLINE);
    assert_eq!(exited_by_signal(&out.status), Some(libc::SIGKILL));

    let r = f.wait_status(prompt, &["succeeded", "failed", "cancelled", "interrupted"]);
    assert_eq!(r["status"], "succeeded", "{r:#}\n{}", f.log());
    images_present(&f, &r).unwrap();
}

/// `easel generate` interrupted with SIGINT (Ctrl-C): it cancels its job and says so.
#[test]
fn ctrl_c_cancels_the_generate_job() {
    let f = Folder::new(FOREVER_MS);
    let prompt = "a harbour that never finishes";
    let gen_ = f.spawn_generate(prompt, &[]);
    f.wait_status(prompt, &["running"]);
    wait_until("generate to catch SIGINT", || {
        catches(gen_.pid(), libc::SIGINT)
    });
    gen_.signal(libc::SIGINT);
    let out = gen_.output_within(DEADLINE);
    assert!(
        !out.status.success() && exited_by_signal(&out.status).is_none(),
        "exit: {:?}\n{}",
        out.status,
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("cancelled"),
        "{}",
        text(&out.stderr)
    );
    let r = f.wait_status(prompt, &["cancelled", "succeeded", "failed", "interrupted"]);
    assert_eq!(r["status"], "cancelled", "{r:#}");
}

/// `service stop` without --force while a job runs and no terminal to ask on: refused, with
/// the way out named; with --force it stops, and the job is recorded as interrupted.
#[test]
fn stop_refuses_while_a_job_runs_unless_forced() {
    let f = Folder::new(FOREVER_MS);
    let prompt = "a slow sunrise";
    let gen_ = f.spawn_generate(prompt, &[]);
    f.wait_status(prompt, &["running"]);
    // The job is the service's now; a generate left waiting would start a new service.
    gen_.signal(libc::SIGKILL);
    drop(gen_);
    let pid = f.service_pid();

    let out = f.easel(&["service", "stop"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(f.service_pid(), pid, "the service still runs");
    assert_eq!(f.record(prompt).unwrap()["status"], "running");

    let out = f.easel(&["service", "stop", "--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!alive(pid), "the service {pid} still runs");
    assert_eq!(f.status().0, 3);
    // Read in process: a history command would start a new service (which would find the
    // same).
    let out = f
        .command(&["history", "list", "--json"])
        .env("EASEL_SERVICE", "off")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = records(&out)
        .into_iter()
        .find(|r| r["prompt"] == prompt)
        .expect("the record");
    assert_eq!(r["status"], "interrupted", "{r:#}");
}

/// SIGKILL of the service leaves its socket behind; the next command finds nothing answering
/// on it, starts a new service, which replaces the stale socket.
#[test]
fn a_stale_socket_is_replaced() {
    let f = Folder::new(50);
    let out = f.easel(&["generate", "--size", "256x256", "a lamp"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pid = f.service_pid();
    let socket = f.socket();
    kill(pid, libc::SIGKILL);
    wait_until("the service to die", || !alive(pid));
    assert!(socket.exists(), "SIGKILL leaves the socket file behind");

    let records = f.history();
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["status"], "succeeded");
    let new = f.service_pid();
    assert_ne!(new, pid);
    assert!(
        std::fs::metadata(&socket).unwrap().file_type().is_socket(),
        "the socket is there again"
    );
    assert_eq!(f.services(), vec![new], "{:?}", f.processes());
}

/// Two commands on a fresh folder at once both start the service: both succeed, one service
/// runs afterwards.
#[test]
fn two_clients_starting_at_once_end_with_one_service() {
    for round in 0..3 {
        let f = Folder::new(50);
        let spawn = || {
            let child = f
                .command(&["history", "list", "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            Proc::new(child, "easel history list")
        };
        let (a, b, c) = (spawn(), spawn(), spawn());
        for p in [a, b, c] {
            let out = p.output_within(DEADLINE);
            assert!(
                out.status.success(),
                "round {round}: {}\n{}",
                out.status,
                text(&out.stderr)
            );
            // Not the fallback that reads without the service.
            assert!(
                text(&out.stderr).is_empty(),
                "round {round}: {}",
                text(&out.stderr)
            );
        }
        let pid = f.service_pid();
        // The losers' service processes exit (3) as soon as they find the folder taken.
        wait_until("one service to be left", || f.services().len() == 1);
        assert_eq!(
            f.services(),
            vec![pid],
            "round {round}: {:?}",
            f.processes()
        );
    }
}

/// SIGKILL of the service during jobs, 20 rounds at random moments: the next command starts a
/// new service, which records the orphaned jobs as interrupted; no finished generation is lost
/// and the doctor finds nothing to repair.
#[test]
fn sigkill_of_the_service_loses_no_finished_generation() {
    let started = Instant::now();
    let f = Folder::new(250);
    // A simple seeded generator (xorshift): the same moments every run, printed on failure.
    let seed: u64 = std::env::var("EASEL_E2E_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe_f00d_0011);
    let mut state = seed;
    let mut rand = |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    // Ids known to have succeeded, with the round they were seen in.
    let mut succeeded: BTreeMap<String, usize> = BTreeMap::new();
    let mut submitted = 0usize;
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for round in 0..20 {
        let ctx = format!("seed {seed}, round {round}");
        // The round starts with a service running (this starts it) and a look at history.
        for r in f.history() {
            if r["status"] == "succeeded" {
                succeeded
                    .entry(r["id"].as_str().unwrap().to_string())
                    .or_insert(round);
            }
        }
        let pid = f.service_pid();
        let jobs = 1 + rand(4) as usize;
        let mut clients = Vec::new();
        for k in 0..jobs {
            clients.push(f.spawn_generate(&format!("round {round} job {k}"), &[]));
            submitted += 1;
            std::thread::sleep(Duration::from_millis(rand(150)));
        }
        // The moment: before anything was queued, while jobs wait or run, as they finish.
        std::thread::sleep(Duration::from_millis(rand(1200)));
        let killed_at = chrono::Utc::now();
        kill(pid, libc::SIGKILL);

        // The next command, at once (the killed service may still be on its way out, its
        // socket and lock not yet let go), starts a new service.
        let after = f.history();
        let new = f.service_pid();
        assert_ne!(new, pid, "{ctx}");
        for r in &after {
            let status = r["status"].as_str().unwrap_or_default();
            if status == "running" {
                // Only a job the new service started (a queued one it resumed) may run.
                let started: chrono::DateTime<chrono::Utc> =
                    r["started"].as_str().unwrap().parse().unwrap();
                assert!(
                    started > killed_at,
                    "{ctx}: a job orphaned by the kill is still running: {r:#}"
                );
            }
        }
        // The clients see their jobs end (interrupted, or finished by the new service).
        for c in clients {
            let what = c.what.clone();
            let out = c.output_within(DEADLINE);
            let code = out.status.code();
            let stderr = text(&out.stderr);
            assert!(
                code == Some(0) || (code == Some(1) && stderr.contains("interrupted")),
                "{ctx}: {what}: {:?}\n{stderr}",
                out.status
            );
            *outcomes
                .entry(if code == Some(0) { "ok" } else { "interrupted" }.into())
                .or_default() += 1;
            for line in text(&out.stdout).lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                succeeded
                    .entry(v["id"].as_str().unwrap().to_string())
                    .or_insert(round);
            }
        }
        let all = f.history();
        assert_eq!(all.len(), submitted, "{ctx}: a record went missing");
        let mut lost = Vec::new();
        for (id, seen) in &succeeded {
            match all.iter().find(|r| r["id"] == id.as_str()) {
                Some(r) if r["status"] == "succeeded" => {
                    if let Err(e) = images_present(&f, r) {
                        lost.push(format!("{id} (round {seen}): {e}"));
                    }
                }
                other => lost.push(format!("{id} (round {seen}): now {other:?}")),
            }
        }
        assert!(
            lost.is_empty(),
            "{ctx}: {} finished generation(s) lost:\n{}",
            lost.len(),
            lost.join("\n")
        );
        for r in &all {
            let status = r["status"].as_str().unwrap_or_default();
            assert!(
                status == "succeeded" || status == "interrupted",
                "{ctx}: {r:#}"
            );
            if status == "succeeded" {
                succeeded
                    .entry(r["id"].as_str().unwrap().to_string())
                    .or_insert(round);
                images_present(&f, r).unwrap_or_else(|e| panic!("{ctx}: {e}: {r:#}"));
            }
        }
        let out = f.easel(&["history", "doctor"]);
        assert!(
            out.status.success() && text(&out.stdout).contains("history is healthy"),
            "{ctx}: doctor: {}\n{}{}\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr),
            f.log()
        );
    }
    eprintln!(
        "20 rounds (seed {seed}) in {:.1} s: {submitted} jobs, {} succeeded, outcomes {outcomes:?}",
        started.elapsed().as_secs_f64(),
        succeeded.len()
    );
    assert!(
        !succeeded.is_empty() && outcomes.contains_key("interrupted"),
        "the rounds should both finish and interrupt jobs: {outcomes:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The studio as a client
// ---------------------------------------------------------------------------------------------

/// With the studio open, `easel generate` from a shell shows in its queue while it runs and in
/// its history when done, and `easel history list` works alongside.
#[test]
fn a_script_job_shows_in_an_open_studio() {
    let f = Folder::new(SLOW_MS);
    let studio = Studio::open(&f, "script");
    let (code, s) = f.status();
    assert_eq!(code, 0, "the studio started the service: {s}");
    assert!(
        s["clients"].as_u64().is_some_and(|n| n >= 2),
        "the studio and status: {s}"
    );

    let prompt = "scriptjob01 a lighthouse in fog";
    let gen_ = f.spawn_generate(prompt, &[]);
    studio.wait_for("the script's job running in the studio's queue", |s| {
        running_row(s, prompt).is_some()
    });
    let out = f.easel(&["history", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("another easel"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        records(&out)
            .iter()
            .any(|r| r["prompt"] == prompt && r["status"] == "running"),
        "{}",
        text(&out.stdout)
    );

    let out = gen_.output_within(DEADLINE);
    assert!(out.status.success(), "{}", text(&out.stderr));
    studio.wait_for("the script's generation in the studio's history", |s| {
        succeeded_row(s, prompt).is_some()
    });
}

/// Two studios on one folder: a star in one shows in the other's history, and back.
#[test]
fn a_star_in_one_studio_shows_in_the_other() {
    let f = Folder::new(50);
    let prompt = "starjob0001 a red umbrella";
    let out = f.easel(&["generate", "--size", "256x256", prompt]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let a = Studio::open(&f, "star-a");
    let b = Studio::open(&f, "star-b");
    let starred = |s: &Screen| {
        s.history_entries()
            .iter()
            .any(|r| r.contains(&excerpt(prompt)) && r.contains('★'))
    };
    let listed = |s: &Screen| {
        s.history_entries()
            .iter()
            .any(|r| r.contains(&excerpt(prompt)))
    };
    for s in [&a, &b] {
        let screen = s.wait_for("the generation in history", listed);
        assert!(!starred(&screen), "{}", screen.text());
    }
    a.leave_editor();
    a.keys(&["s"]);
    a.wait_for("the star in the studio that gave it", starred);
    b.wait_for("the star in the other studio", starred);
    assert_eq!(f.record(prompt).unwrap()["starred"], true);

    b.leave_editor();
    b.keys(&["s"]);
    b.wait_for("the star gone in the studio that took it", |s| {
        listed(s) && !starred(s)
    });
    a.wait_for("the star gone in the other studio", |s| {
        listed(s) && !starred(s)
    });
    assert_eq!(f.record(prompt).unwrap()["starred"], false);
}

/// A studio that gets SIGHUP (its terminal gone) while a slow job runs: the job runs on and
/// succeeds; a new studio shows it.
#[test]
fn sighup_of_a_studio_leaves_its_job_running() {
    let f = Folder::new(SLOW_MS);
    let prompt = "hupjob00001 a train in the rain";
    let studio = Studio::open(&f, "hup");
    studio.submit(prompt);
    let hup_at = chrono::Utc::now();
    kill(studio.pid(), libc::SIGHUP);
    studio.wait_exit();
    drop(studio);

    let r = f.wait_status(prompt, &["succeeded", "failed", "cancelled", "interrupted"]);
    assert_eq!(r["status"], "succeeded", "{r:#}\n{}", f.log());
    images_present(&f, &r).unwrap();
    let finished: chrono::DateTime<chrono::Utc> = r["finished"].as_str().unwrap().parse().unwrap();
    assert!(finished > hup_at, "it finished after the hangup: {r:#}");

    let again = Studio::open(&f, "hup-again");
    again.wait_for("the job's generation in the new studio", |s| {
        succeeded_row(s, prompt).is_some()
    });
}

/// Quitting with a job running asks: `y` quits and leaves it running (it then succeeds), `c`
/// cancels it and quits — the studio's own jobs only: a job another program queued in the same
/// service (an `easel generate` in another terminal) goes on.
#[test]
fn quit_and_keep_versus_quit_and_cancel() {
    // Slow enough to be running still when the studio has quit, whatever the load.
    let f = Folder::new(10_000);
    let asked = |s: &Screen| s.contains("y quits · c cancels ours, quits");

    let kept = "keepjob0001 a boat at anchor";
    let studio = Studio::open(&f, "keep");
    studio.submit(kept);
    studio.leave_editor();
    studio.keys(&["q"]);
    studio.wait_for("the quit question", asked);
    studio.keys(&["y"]);
    assert_eq!(studio.wait_exit(), 0);
    drop(studio);
    let r = f.record(kept).unwrap();
    assert_eq!(r["status"], "running", "kept running: {r:#}");
    let r = f.wait_status(kept, &["succeeded", "failed", "cancelled", "interrupted"]);
    assert_eq!(r["status"], "succeeded", "{r:#}");

    let cancelled = "canceljob01 a boat adrift";
    let theirs = "otherjob001 a lighthouse far away";
    let f2 = Folder::new(FOREVER_MS);
    let studio = Studio::open(&f2, "cancel");
    let other = f2.spawn_generate(theirs, &[]);
    f2.wait_status(theirs, &["running"]);
    studio.submit(cancelled);
    studio.leave_editor();
    studio.keys(&["q"]);
    let screen = studio.wait_for("the quit question", asked);
    assert!(
        screen.contains("the 1 of another program"),
        "the question says other programs' jobs go on:\n{}",
        screen.text()
    );
    studio.keys(&["c"]);
    assert_eq!(studio.wait_exit(), 0);
    drop(studio);
    let r = f2.wait_status(
        cancelled,
        &["cancelled", "succeeded", "failed", "interrupted"],
    );
    assert_eq!(r["status"], "cancelled", "{r:#}");
    let r = f2.record(theirs).unwrap();
    assert_eq!(
        r["status"], "running",
        "another program's job was cancelled: {r:#}"
    );
    let (_, s) = f2.status();
    assert_eq!(s["jobs_running"], 1, "{s}");
    other.signal(libc::SIGKILL);
    let _ = other.output_within(DEADLINE);
}

/// The studio that started the service (its parent) is still open when the service is
/// stopped: `service stop` returns promptly, not after waiting on a process that is gone.
#[test]
fn stop_is_prompt_while_the_studio_that_started_it_is_open() {
    let f = Folder::new(50);
    let studio = Studio::open(&f, "parent");
    let pid = f.service_pid();
    let t = Instant::now();
    let out = f.easel(&["service", "stop", "--force"]);
    let took = t.elapsed();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!alive(pid), "the service {pid} still runs");
    assert!(
        took < Duration::from_secs(5),
        "`service stop` took {took:?} for an idle service"
    );
    drop(studio);
}

/// Clients that go away before their answer comes (killed mid-request) leave the service
/// healthy: writing to a closed connection is an error for that connection, not a signal that
/// ends the process.
#[test]
fn clients_gone_before_their_answer_leave_the_service_running() {
    use easel::service::protocol::{ClientFrame, Hello, PROTOCOL_VERSION, Request};
    use std::io::{Read, Write};
    let f = Folder::new(50);
    let out = f.easel(&["history", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pid = f.service_pid();
    let socket = f.socket();
    let frame = |v: &ClientFrame| {
        let body = easel::service::wire::encode(v, 1 << 20).unwrap();
        let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&body);
        bytes
    };
    let hello = frame(&ClientFrame::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        client: "e2e gone".into(),
    }));
    let ask = frame(&ClientFrame::Request {
        id: 1,
        request: Request::Status,
    });
    let gone = |i: usize, e: std::io::Error| {
        format!(
            "connection {i}: {e}; the service {} alive\n{}",
            if alive(pid) { "is" } else { "is not" },
            f.log()
        )
    };
    for i in 0..20 {
        let mut s = std::os::unix::net::UnixStream::connect(&socket)
            .unwrap_or_else(|e| panic!("{}", gone(i, e)));
        s.write_all(&hello)
            .unwrap_or_else(|e| panic!("{}", gone(i, e)));
        let mut len = [0u8; 4];
        s.read_exact(&mut len)
            .unwrap_or_else(|e| panic!("{}", gone(i, e)));
        let mut welcome = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut welcome)
            .unwrap_or_else(|e| panic!("{}", gone(i, e)));
        // Ask, and be gone before the answer.
        s.write_all(&ask)
            .unwrap_or_else(|e| panic!("{}", gone(i, e)));
        drop(s);
    }
    let (code, s) = f.status();
    assert_eq!(code, 0, "the service died: {s}\n{}", f.log());
    assert_eq!(s["pid"].as_u64(), Some(u64::from(pid)), "{s}");
    assert!(alive(pid));
}
