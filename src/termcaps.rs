//! What the terminal can show, asked of the terminal itself: its name and version (XTVERSION,
//! `CSI > 0 q`), kitty graphics (a one-pixel query), sixel (device attributes), and the cell size
//! in pixels (`CSI 16 t`), all in one write ended by a status report (`CSI 5 n`), which every
//! terminal answers, so the wait ends as soon as the answers are in.
//!
//! Inside tmux the same questions go twice: plainly (tmux answers: its version, and whether it
//! was built with sixel) and wrapped in passthrough (`ESC Ptmux; … ESC \`, after turning on
//! `allow-passthrough` for the pane), which the outer terminal answers.
//!
//! Parsing and deciding are pure functions over the bytes the terminal sent, so detection is
//! tested as a table over recorded answers (`tests/fixtures/terminals`). What terminals send is
//! untrusted: names are cut to printable ASCII and a bounded length, and numbers are parsed, never
//! echoed.

use std::time::{Duration, Instant};

/// The kitty graphics query's image id (the answer names it).
const QUERY_ID: &str = "31";

/// How long to wait for the answers (a terminal that answers does so in milliseconds; over a
/// slow SSH link, a few hundred).
pub const TIMEOUT: Duration = Duration::from_millis(1000);

/// The most bytes read while waiting: answers are short; anything more is not an answer.
const MAX_ANSWER: usize = 8 * 1024;

/// One terminal's answers (tmux's own, or the outer terminal's through passthrough).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// Answered the kitty graphics query with OK.
    pub kitty: bool,
    /// Device attributes list sixel (4).
    pub sixel: bool,
    /// Device attributes arrived at all.
    pub attributes: bool,
    /// Cell size in pixels, width × height.
    pub cell: Option<(u16, u16)>,
    /// XTVERSION text, e.g. "kitty(0.26.5)" (printable ASCII only).
    pub version: Option<String>,
    /// The closing status report arrived.
    pub status: bool,
}

/// The queries for one terminal, with `esc` as the escape (doubled inside tmux passthrough).
fn questions(esc: &str, graphics: bool) -> String {
    let mut q = String::new();
    if graphics {
        q.push_str(&format!(
            "{esc}_Gi={QUERY_ID},s=1,v=1,a=q,t=d,f=24;AAAA{esc}\\"
        ));
    }
    q.push_str(&format!("{esc}[>0q{esc}[c"));
    if graphics {
        q.push_str(&format!("{esc}[16t"));
    }
    q.push_str(&format!("{esc}[5n"));
    q
}

/// What to send: outside tmux, one batch; inside, tmux's batch and (with passthrough) the outer
/// terminal's, wrapped. Returns the bytes and how many status reports close the answers.
pub fn query(in_tmux: bool, passthrough: bool) -> (String, usize) {
    if !in_tmux {
        return (questions("\x1b", true), 1);
    }
    let mut q = questions("\x1b", false);
    if !passthrough {
        return (q, 1);
    }
    q.push_str("\x1bPtmux;");
    q.push_str(&questions("\x1b\x1b", true));
    q.push_str("\x1b\\");
    (q, 2)
}

/// Split what the terminal sent into replies, one per status report (the last one may lack its
/// report when the wait ran out).
pub fn parse(bytes: &[u8]) -> Vec<Reply> {
    let bytes = &bytes[..bytes.len().min(MAX_ANSWER)];
    let mut replies = Vec::new();
    let mut cur = Reply::default();
    let mut any = false;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != 0x1b || i + 1 >= bytes.len() {
            i += 1;
            continue;
        }
        match bytes[i + 1] {
            // APC (kitty graphics answer) or DCS (XTVERSION): up to ST (ESC \) or BEL.
            b'_' | b'P' => {
                let start = i + 2;
                let mut end = start;
                while end < bytes.len()
                    && bytes[end] != 0x07
                    && !(bytes[end] == 0x1b && bytes.get(end + 1) == Some(&b'\\'))
                {
                    end += 1;
                }
                let body = &bytes[start..end];
                if bytes[i + 1] == b'_' {
                    if let Some(rest) = body.strip_prefix(b"G")
                        && let Some((keys, msg)) = split_once(rest, b';')
                        && keys
                            .split(|b| *b == b',')
                            .any(|k| k == format!("i={QUERY_ID}").as_bytes())
                    {
                        cur.kitty |= msg == b"OK";
                        any = true;
                    }
                } else if let Some(text) = body.strip_prefix(b">|") {
                    cur.version = Some(clean(text));
                    any = true;
                }
                i = end + if bytes.get(end) == Some(&0x07) { 1 } else { 2 };
            }
            b'[' => {
                let start = i + 2;
                let mut end = start;
                while end < bytes.len() && !(0x40..=0x7e).contains(&bytes[end]) {
                    end += 1;
                }
                if end >= bytes.len() {
                    break;
                }
                let params = &bytes[start..end];
                match bytes[end] {
                    b'c' if params.first() == Some(&b'?') => {
                        cur.attributes = true;
                        cur.sixel |= params[1..].split(|b| *b == b';').any(|p| p == b"4");
                        any = true;
                    }
                    b't' => {
                        let nums: Vec<Option<u16>> = params
                            .split(|b| *b == b';')
                            .map(|p| std::str::from_utf8(p).ok()?.parse().ok())
                            .collect();
                        if let [Some(6), Some(h), Some(w)] = nums[..]
                            && w > 0
                            && h > 0
                        {
                            cur.cell = Some((w, h));
                        }
                        any = true;
                    }
                    b'n' if params == b"0" => {
                        cur.status = true;
                        replies.push(std::mem::take(&mut cur));
                        any = false;
                    }
                    _ => {}
                }
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    if any {
        replies.push(cur);
    }
    replies
}

fn split_once(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let at = s.iter().position(|b| *b == sep)?;
    Some((&s[..at], &s[at + 1..]))
}

/// A terminal's self-description as safe text: printable ASCII, at most 60 characters.
fn clean(text: &[u8]) -> String {
    text.iter()
        .filter(|b| (0x20..0x7f).contains(*b))
        .take(60)
        .map(|b| char::from(*b))
        .collect()
}

/// The terminals detection tells apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Terminal {
    Kitty(Version),
    Ghostty,
    WezTerm,
    Foot,
    XTerm,
    Konsole,
    Tmux(Version),
    Other(String),
    Unknown,
}

/// A dotted version, missing parts 0.
pub type Version = (u32, u32, u32);

fn version_of(text: &str) -> Version {
    let mut parts = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

/// Who answered XTVERSION.
pub fn identify(version: Option<&str>) -> Terminal {
    let Some(v) = version else {
        return Terminal::Unknown;
    };
    let lower = v.to_ascii_lowercase();
    let rest = |name: &str| v.get(name.len()..).unwrap_or("");
    if lower.starts_with("kitty") {
        Terminal::Kitty(version_of(rest("kitty")))
    } else if lower.starts_with("ghostty") {
        Terminal::Ghostty
    } else if lower.starts_with("wezterm") {
        Terminal::WezTerm
    } else if lower.starts_with("foot") {
        Terminal::Foot
    } else if lower.starts_with("xterm") {
        Terminal::XTerm
    } else if lower.starts_with("konsole") {
        Terminal::Konsole
    } else if lower.starts_with("tmux") {
        Terminal::Tmux(version_of(rest("tmux")))
    } else {
        Terminal::Other(v.to_string())
    }
}

/// How pictures reach the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// kitty graphics with Unicode placeholders: the picture is text to the application (and to
    /// tmux). kitty ≥ 0.28, Ghostty.
    KittyPlaceholders,
    /// kitty graphics placed at the cursor with an image id, replaced and removed by id: kitty
    /// before 0.28, and terminals that take kitty graphics but not placeholders.
    KittyDirect,
    Sixel,
    Iterm2,
    Halfblocks,
}

impl Protocol {
    pub fn label(self) -> &'static str {
        match self {
            Protocol::KittyPlaceholders => "kitty",
            Protocol::KittyDirect => "kitty (placed)",
            Protocol::Sixel => "sixel",
            Protocol::Iterm2 => "iterm2",
            Protocol::Halfblocks => "half-blocks",
        }
    }
}

/// What the environment says (variables survive tmux and SSH less well than answers do, so they
/// only break ties).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// `$TMUX` is set.
    pub tmux: bool,
    /// `$KONSOLE_VERSION` is set.
    pub konsole: bool,
    /// `$WEZTERM_EXECUTABLE` or `TERM_PROGRAM=WezTerm`.
    pub wezterm: bool,
    /// `TERM_PROGRAM=iTerm.app` or `LC_TERMINAL=iTerm2`.
    pub iterm: bool,
    /// Inside tmux, in a session no client is attached to (scripts, tests): there is no outer
    /// terminal to ask, and nothing to hint.
    pub detached: bool,
}

impl Env {
    pub fn from_process() -> Env {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let program = var("TERM_PROGRAM").unwrap_or_default();
        Env {
            tmux: var("TMUX").is_some(),
            konsole: var("KONSOLE_VERSION").is_some(),
            wezterm: var("WEZTERM_EXECUTABLE").is_some() || program == "WezTerm",
            iterm: program == "iTerm.app" || var("LC_TERMINAL").is_some_and(|v| v == "iTerm2"),
            detached: false,
        }
    }
}

/// The outcome of detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    pub protocol: Protocol,
    /// Wrap graphics in tmux passthrough.
    pub wrap: bool,
    /// The terminal, for the preview's title ("kitty 0.26.5", "XTerm(379) in tmux 3.3a").
    pub terminal: String,
    /// Cell size in pixels when the terminal said.
    pub cell: Option<(u16, u16)>,
    /// A one-line hint when something better is within reach (a setting, a version).
    pub hint: Option<String>,
}

fn describe(t: &Terminal, raw: Option<&str>) -> String {
    match (t, raw) {
        (Terminal::Unknown, _) => "an unknown terminal".into(),
        (_, Some(raw)) => raw.to_string(),
        (_, None) => format!("{t:?}"),
    }
}

fn placeholders_work(t: &Terminal) -> bool {
    match t {
        Terminal::Kitty(v) => *v >= (0, 28, 0),
        Terminal::Ghostty => true,
        _ => false,
    }
}

/// Choose from the answers: `replies` as parsed, `passthrough` whether tmux passthrough was
/// turned on (only meaningful in tmux).
pub fn decide(env: &Env, replies: &[Reply], passthrough: bool) -> Detection {
    if env.tmux {
        return decide_tmux(env, replies, passthrough);
    }
    let r = replies.first().cloned().unwrap_or_default();
    let term = identify(r.version.as_deref());
    let name = describe(&term, r.version.as_deref());
    let konsole = env.konsole || term == Terminal::Konsole;
    let wezterm = env.wezterm || term == Terminal::WezTerm;
    let protocol = if placeholders_work(&term) && r.kitty {
        Protocol::KittyPlaceholders
    } else if wezterm {
        // WezTerm takes kitty graphics but not placeholders; its iTerm2 images are reliable.
        Protocol::Iterm2
    } else if r.kitty {
        // kitty before 0.28, Konsole, and any terminal not known to draw placeholders: placing
        // by id works wherever the kitty protocol does at all.
        Protocol::KittyDirect
    } else if r.sixel && !konsole {
        Protocol::Sixel
    } else if env.iterm {
        Protocol::Iterm2
    } else {
        Protocol::Halfblocks
    };
    Detection {
        protocol,
        wrap: false,
        terminal: name,
        cell: r.cell,
        hint: None,
    }
}

fn decide_tmux(env: &Env, replies: &[Reply], passthrough: bool) -> Detection {
    let own = replies.first().cloned().unwrap_or_default();
    let outer = replies.get(1).cloned().unwrap_or_default();
    let tmux = identify(own.version.as_deref());
    let tmux_name = own.version.clone().unwrap_or_else(|| "tmux".into());
    let term = identify(outer.version.as_deref());
    let outer_answered = replies.len() > 1;
    let terminal = if outer_answered {
        format!(
            "{} in {tmux_name}",
            describe(&term, outer.version.as_deref())
        )
    } else {
        tmux_name.clone()
    };
    let base = Detection {
        protocol: Protocol::Halfblocks,
        wrap: false,
        terminal,
        cell: outer.cell,
        hint: None,
    };
    // tmux built with sixel draws sixel itself (and keeps it in its own screen).
    if own.sixel && (!outer_answered || outer.sixel) {
        return Detection {
            protocol: Protocol::Sixel,
            ..base
        };
    }
    if passthrough && outer.kitty && placeholders_work(&term) {
        return Detection {
            protocol: Protocol::KittyPlaceholders,
            wrap: true,
            ..base
        };
    }
    let too_old = matches!(tmux, Terminal::Tmux(v) if v < (3, 3, 0));
    let hint = if !passthrough {
        if too_old {
            format!(
                "{tmux_name} cannot pass pictures through (tmux ≥ 3.3 with `set -g allow-passthrough on` can): half-blocks"
            )
        } else {
            "inside tmux without passthrough: `set -g allow-passthrough on` in tmux.conf lets kitty ≥ 0.28 and Ghostty show pictures".to_string()
        }
    } else if !outer_answered && env.detached {
        return base;
    } else if !outer_answered {
        "inside tmux, the outer terminal did not answer (a detached client?): half-blocks"
            .to_string()
    } else {
        match &term {
            Terminal::Kitty(v) if outer.kitty => format!(
                "kitty {}.{}.{} shows pictures inside tmux only from 0.28 (Unicode placeholders): half-blocks",
                v.0, v.1, v.2
            ),
            _ if outer.sixel => format!(
                "{} has sixel but {tmux_name} was built without it (tmux ≥ 3.4 with sixel shows them): half-blocks",
                describe(&term, outer.version.as_deref())
            ),
            _ if env.wezterm || term == Terminal::WezTerm || outer.kitty => format!(
                "{} cannot show pictures through tmux (it has no Unicode placeholders): half-blocks",
                describe(&term, outer.version.as_deref())
            ),
            _ => return base,
        }
    };
    Detection {
        hint: Some(hint),
        ..base
    }
}

/// Turn on passthrough for this tmux pane (tmux ≥ 3.3); whether it worked.
pub fn tmux_passthrough_on() -> bool {
    std::process::Command::new("tmux")
        .args(["set", "-p", "allow-passthrough", "on"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a client is attached to this tmux session (unknown counts as yes).
fn tmux_attached() -> bool {
    std::process::Command::new("tmux")
        .args(["display-message", "-p", "#{session_attached}"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .map_or(true, |o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u32>()
                .map_or(true, |n| n > 0)
        })
}

/// Ask the terminal (stdin and stdout must be the terminal, and nothing else may be reading
/// stdin). Returns the raw answers and whether tmux passthrough is on; inside a tmux session no
/// client is attached to, sets `env.detached`.
pub fn ask(env: &mut Env, timeout: Duration) -> (Vec<u8>, bool) {
    let passthrough = env.tmux && tmux_passthrough_on();
    // A session no client is attached to has no outer terminal to answer: asking through
    // passthrough would only wait out the timeout.
    env.detached = passthrough && !tmux_attached();
    let (q, reports) = query(env.tmux, passthrough && !env.detached);
    let was_raw = crossterm::terminal::is_raw_mode_enabled().unwrap_or(false);
    if !was_raw && crossterm::terminal::enable_raw_mode().is_err() {
        return (Vec::new(), passthrough);
    }
    let answers = exchange(q.as_bytes(), reports, timeout);
    if !was_raw {
        let _ = crossterm::terminal::disable_raw_mode();
    }
    (answers, passthrough)
}

/// Write `q`, read until `reports` status reports came back or the time ran out.
#[cfg(unix)]
fn exchange(q: &[u8], reports: usize, timeout: Duration) -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::stdout();
    if out.write_all(q).and_then(|()| out.flush()).is_err() {
        return Vec::new();
    }
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while got.len() < MAX_ANSWER {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let mut fds = [libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        }];
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1);
        // SAFETY: one valid pollfd, its length given.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
        if ready <= 0 {
            if ready < 0
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {
                continue;
            }
            break;
        }
        // SAFETY: reading into a buffer of the length given.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        got.extend_from_slice(&buf[..n as usize]);
        if parse(&got).iter().filter(|r| r.status).count() >= reports {
            break;
        }
    }
    got
}

#[cfg(not(unix))]
fn exchange(_q: &[u8], _reports: usize, _timeout: Duration) -> Vec<u8> {
    Vec::new()
}

/// The cell size the kernel knows (TIOCGWINSZ), when it knows it.
pub fn cell_from_window() -> Option<(u16, u16)> {
    match crossterm::terminal::window_size() {
        Ok(ws) if ws.width > 0 && ws.height > 0 && ws.columns > 0 && ws.rows > 0 => {
            Some(((ws.width / ws.columns).max(1), (ws.height / ws.rows).max(1)))
        }
        _ => None,
    }
}

/// Ask and decide, with `EASEL_GRAPHICS` (`auto|kitty|sixel|iterm|halfblocks`) forcing a
/// protocol. Returns the detection and a warning for a setting easel does not know.
pub fn detect(setting: Option<&str>) -> (Detection, Option<String>) {
    let mut env = Env::from_process();
    let setting = setting.unwrap_or("auto").trim().to_ascii_lowercase();
    let forced = match setting.as_str() {
        "kitty" => Some(Protocol::KittyPlaceholders),
        "kitty-direct" | "kitty-placed" => Some(Protocol::KittyDirect),
        "sixel" => Some(Protocol::Sixel),
        "iterm" | "iterm2" => Some(Protocol::Iterm2),
        "halfblocks" | "half-blocks" | "blocks" => Some(Protocol::Halfblocks),
        _ => None,
    };
    let warning = (!matches!(
        setting.as_str(),
        "auto" | "" | "kitty" | "kitty-direct" | "kitty-placed" | "sixel" | "iterm" | "iterm2"
            | "halfblocks" | "half-blocks" | "blocks" | "none" | "off"
    ))
    .then(|| {
        format!(
            "EASEL_GRAPHICS={} is not one of auto, kitty, kitty-direct, sixel, iterm, halfblocks, none: using auto",
            clean(setting.as_bytes())
        )
    });
    if let Some(p) = forced {
        let passthrough = env.tmux && p != Protocol::Halfblocks && tmux_passthrough_on();
        return (
            Detection {
                protocol: p,
                wrap: passthrough && p != Protocol::Sixel,
                terminal: format!("EASEL_GRAPHICS={setting}"),
                cell: cell_from_window(),
                hint: None,
            },
            warning,
        );
    }
    let (answers, passthrough) = ask(&mut env, TIMEOUT);
    let mut d = decide(&env, &parse(&answers), passthrough);
    if d.cell.is_none() {
        d.cell = cell_from_window();
    }
    (d, warning)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_answers_in_any_order_and_ignores_junk() {
        let r = parse(b"x\x1b[?62;4;22c\x1bP>|foot(1.16.2)\x1b\\\x1b[6;17;8t\x1b[0n");
        assert_eq!(r.len(), 1);
        assert!(r[0].sixel && !r[0].kitty && r[0].status);
        assert_eq!(r[0].cell, Some((8, 17)));
        assert_eq!(r[0].version.as_deref(), Some("foot(1.16.2)"));
        // A kitty error is not support; another image's answer is not ours.
        let r = parse(b"\x1b_Gi=31;ENOTSUPPORTED\x1b\\\x1b_Gi=7;OK\x1b\\\x1b[0n");
        assert!(!r[0].kitty);
        // Hostile text in a version is cut to printable ASCII.
        let r = parse(b"\x1bP>|evil\x07");
        assert_eq!(r[0].version.as_deref(), Some("evil"));
        let r = parse(b"\x1bP>|a\x1b]0;title\x07b\x1b\\");
        assert_eq!(r[0].version.as_deref(), Some("a]0;title"));
        assert!(parse(b"").is_empty());
        assert!(parse(b"\x1b[").is_empty());
    }

    #[test]
    fn versions() {
        assert_eq!(identify(Some("kitty(0.26.5)")), Terminal::Kitty((0, 26, 5)));
        assert_eq!(identify(Some("tmux 3.3a")), Terminal::Tmux((3, 3, 0)));
        assert_eq!(identify(Some("tmux next-3.5")), Terminal::Tmux((3, 5, 0)));
        assert_eq!(identify(None), Terminal::Unknown);
    }

    #[test]
    fn the_query_wraps_for_tmux() {
        let (q, n) = query(false, false);
        assert_eq!(n, 1);
        assert!(q.contains("\x1b[>0q") && q.contains("\x1b_Gi=31"));
        let (q, n) = query(true, true);
        assert_eq!(n, 2);
        assert!(
            q.starts_with("\x1b[>0q\x1b[c\x1b[5n\x1bPtmux;\x1b\x1b_G"),
            "{q:?}"
        );
        assert!(q.ends_with("\x1b\x1b[5n\x1b\\"));
        let (q, n) = query(true, false);
        assert_eq!((q.as_str(), n), ("\x1b[>0q\x1b[c\x1b[5n", 1));
    }
}
