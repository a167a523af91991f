#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Issue 15: detection that knows the terminal, as a table over recorded answers
//! (tests/fixtures/terminals), and the bytes each picture protocol writes.

use easel::termcaps::{Env, Protocol, decide, parse};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/terminals/{name}.bin",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const PLAIN: Env = Env {
    tmux: false,
    konsole: false,
    wezterm: false,
    iterm: false,
};
const TMUX: Env = Env {
    tmux: true,
    ..PLAIN
};

/// (fixture, environment, tmux passthrough turned on, protocol, wrapped for tmux, a word the
/// hint must hold or "" for no hint)
type Row = (&'static str, Env, bool, Protocol, bool, &'static str);

#[test]
fn detection_table() {
    let rows: &[Row] = &[
        // kitty before 0.28 has no Unicode placeholders: place by id (never empty boxes).
        (
            "kitty-0.26.5",
            PLAIN,
            false,
            Protocol::KittyDirect,
            false,
            "",
        ),
        (
            "kitty-0.35.2",
            PLAIN,
            false,
            Protocol::KittyPlaceholders,
            false,
            "",
        ),
        (
            "ghostty-1.1.3",
            PLAIN,
            false,
            Protocol::KittyPlaceholders,
            false,
            "",
        ),
        // WezTerm answers the kitty query but ignores placeholders: iTerm2 images.
        (
            "wezterm-20240203",
            PLAIN,
            false,
            Protocol::Iterm2,
            false,
            "",
        ),
        ("foot-1.16.2", PLAIN, false, Protocol::Sixel, false, ""),
        ("xterm-379-vt340", PLAIN, false, Protocol::Sixel, false, ""),
        ("xterm-379", PLAIN, false, Protocol::Halfblocks, false, ""),
        // Konsole takes kitty graphics without placeholders (and its sixel is unreliable).
        (
            "konsole-23.08",
            Env {
                konsole: true,
                ..PLAIN
            },
            false,
            Protocol::KittyDirect,
            false,
            "",
        ),
        ("no-answer", PLAIN, false, Protocol::Halfblocks, false, ""),
        // Inside tmux.
        (
            "tmux-3.3a-ghostty-1.1.3-passthrough",
            TMUX,
            true,
            Protocol::KittyPlaceholders,
            true,
            "",
        ),
        (
            "tmux-3.3a-kitty-0.26.5-passthrough",
            TMUX,
            true,
            Protocol::Halfblocks,
            false,
            "0.28",
        ),
        (
            "tmux-3.3a-no-passthrough",
            TMUX,
            false,
            Protocol::Halfblocks,
            false,
            "allow-passthrough",
        ),
        (
            "tmux-3.3a-xterm-379-vt340-passthrough",
            TMUX,
            true,
            Protocol::Halfblocks,
            false,
            "sixel",
        ),
        (
            "tmux-3.4-sixel-xterm-379-vt340-passthrough",
            TMUX,
            true,
            Protocol::Sixel,
            false,
            "",
        ),
        (
            "tmux-3.2a-old",
            TMUX,
            false,
            Protocol::Halfblocks,
            false,
            "3.3",
        ),
        (
            "no-answer",
            TMUX,
            true,
            Protocol::Halfblocks,
            false,
            "did not answer",
        ),
    ];
    for (name, env, passthrough, protocol, wrap, hint) in rows {
        let d = decide(env, &parse(&fixture(name)), *passthrough);
        assert_eq!((d.protocol, d.wrap), (*protocol, *wrap), "{name}: {d:?}");
        match (hint.is_empty(), &d.hint) {
            (true, None) => {}
            (false, Some(h)) if h.contains(hint) => {}
            _ => panic!("{name}: hint {:?}, wanted one with {hint:?}", d.hint),
        }
    }
}

#[test]
fn names_and_cell_sizes_come_from_the_answers() {
    let d = decide(&PLAIN, &parse(&fixture("kitty-0.26.5")), false);
    assert_eq!(d.terminal, "kitty(0.26.5)");
    assert_eq!(d.cell, Some((9, 20)));
    // xterm does not say its cell size (the kernel's window size is used instead).
    let d = decide(&PLAIN, &parse(&fixture("xterm-379-vt340")), false);
    assert_eq!((d.terminal.as_str(), d.cell), ("XTerm(379)", None));
    let d = decide(
        &TMUX,
        &parse(&fixture("tmux-3.3a-kitty-0.26.5-passthrough")),
        true,
    );
    assert_eq!(d.terminal, "kitty(0.26.5) in tmux 3.3a");
    let d = decide(&PLAIN, &parse(&fixture("no-answer")), false);
    assert_eq!(d.terminal, "an unknown terminal");
}
