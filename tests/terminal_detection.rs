#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Issue 15: detection that knows the terminal, as a table over recorded answers
//! (tests/fixtures/terminals), and the bytes each picture protocol writes.

use easel::studio::preview::{KittyImage, KittyPlacer, Renderer};
use easel::termcaps::{Detection, Env, Protocol, decide, parse};
use ratatui::layout::{Rect, Size};

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
    detached: false,
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

fn image(id: u32) -> KittyImage {
    KittyImage {
        id,
        data: "A".repeat(5000),
        size: Size::new(4, 2),
    }
}

/// kitty before 0.28: the picture is sent once, placed by id at its cells, moved by placing
/// again, removed under popups and on exit, and a new picture frees the old one's data.
#[test]
fn kitty_placement_sends_only_what_changed() {
    let mut placer = KittyPlacer::default();
    let (a, b) = (image(7), image(8));
    let at = Rect::new(10, 5, 4, 2);
    let mut out = Vec::new();
    placer.sync(Some((&a, at)), &mut out);
    let first = String::from_utf8(out).unwrap();
    let shown = first
        .replace(&"A".repeat(4096), "<4096 A>")
        .replace(&"A".repeat(904), "<904 A>")
        .replace('\x1b', "⎋");
    insta::assert_snapshot!(shown, @"⎋_Ga=t,f=100,t=d,i=7,q=2,m=1;<4096 A>⎋\\⎋_Gm=0;<904 A>⎋\\⎋[6;11H⎋_Ga=p,i=7,p=1,c=4,r=2,C=1,q=2⎋\\");
    // The same again: nothing.
    let mut out = Vec::new();
    placer.sync(Some((&a, at)), &mut out);
    assert!(out.is_empty());
    // Moved: removed and placed again, not sent again.
    let mut out = Vec::new();
    placer.sync(Some((&a, Rect::new(2, 3, 4, 2))), &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "\x1b_Ga=d,d=i,i=7,q=2\x1b\\\x1b[4;3H\x1b_Ga=p,i=7,p=1,c=4,r=2,C=1,q=2\x1b\\"
    );
    // A popup: removed.
    let mut out = Vec::new();
    placer.sync(None, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "\x1b_Ga=d,d=i,i=7,q=2\x1b\\"
    );
    // Another picture: the old one's data is freed.
    let mut out = Vec::new();
    placer.sync(Some((&b, at)), &mut out);
    let s = String::from_utf8(out).unwrap();
    assert!(
        s.starts_with("\x1b_Ga=d,d=I,i=7,q=2\x1b\\\x1b_Ga=t,f=100,t=d,i=8,"),
        "{s:?}"
    );
    // After a clear of the screen (a resize) everything is sent and placed again.
    placer.invalidate();
    let mut out = Vec::new();
    placer.sync(Some((&b, at)), &mut out);
    let s = String::from_utf8(out).unwrap();
    assert!(
        s.contains("a=t,f=100,t=d,i=8,") && s.contains("a=p,i=8"),
        "{s:?}"
    );
    // Leaving the studio's screen (full view, editor, exit): removed with its data, and sent
    // again on the way back (kitty drops the alternate screen's pictures when it is left).
    let mut out = Vec::new();
    placer.clear(&mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "\x1b_Ga=d,d=i,i=8,q=2\x1b\\\x1b_Ga=d,d=I,i=8,q=2\x1b\\"
    );
    let mut out = Vec::new();
    placer.sync(Some((&b, at)), &mut out);
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("a=t,f=100,t=d,i=8,")
    );
}

fn detection(protocol: Protocol, wrap: bool) -> Detection {
    Detection {
        protocol,
        wrap,
        terminal: "test".into(),
        cell: Some((8, 16)),
        hint: None,
    }
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([(x * 7) as u8, (y * 5) as u8, 120, 255])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Each protocol's preview fits the pane, in the cells it says.
#[test]
fn previews_fit_the_pane_in_every_protocol() {
    let bytes = png(300, 150);
    for protocol in [
        Protocol::KittyPlaceholders,
        Protocol::KittyDirect,
        Protocol::Sixel,
        Protocol::Iterm2,
        Protocol::Halfblocks,
    ] {
        let r = Renderer::for_detection(&detection(protocol, false))
            .render(&bytes, 20, 10)
            .unwrap();
        let size = r.picture.size();
        assert!(
            size.width <= 20 && size.height <= 10,
            "{protocol:?}: {size:?}"
        );
        assert!(size.width >= 19, "{protocol:?}: {size:?}");
    }
}

/// Pictures printed outside the pane (the full view, `easel view`): sixel where the terminal has
/// it (xterm -ti vt340 had half-blocks before), kitty placed by id, and placeholders as text
/// inside tmux.
#[test]
fn printed_pictures_use_the_terminal_protocol() {
    let img = image::load_from_memory(&png(64, 32)).unwrap();
    let print = |d: &Detection| {
        let mut out = Vec::new();
        easel::picture::write_graphics(&mut out, &img, 10, 5, d, (8, 16)).unwrap();
        String::from_utf8(out).unwrap()
    };
    // 64×32 pixels at 8×16 a cell: 8 columns, 2 rows.
    let s = print(&detection(Protocol::Sixel, false));
    assert!(s.starts_with("\n\n\x1b[2A\r\x1b7\x1bP"), "{:?}", &s[..20]);
    assert!(
        s.ends_with("\x1b\\\x1b8\x1b[2B\r"),
        "{:?}",
        &s[s.len() - 20..]
    );
    assert!(s.contains('#'), "sixel colour registers");
    // In a tmux built with sixel, tmux draws it: not wrapped.
    let wrapped = print(&detection(Protocol::Sixel, true));
    assert!(wrapped.contains("\x1bPtmux;\x1b\x1bP"));
    let s = print(&detection(Protocol::KittyDirect, false));
    assert!(s.contains("a=t,f=100") && s.contains("a=p,i=") && s.contains("c=8,r=2,C=1"));
    let s = print(&detection(Protocol::Iterm2, false));
    assert!(s.contains("\x1b]1337;File=inline=1;width=8;height=2"));
    // Inside tmux with kitty ≥ 0.28: two lines of placeholder characters.
    let s = print(&detection(Protocol::KittyPlaceholders, true));
    assert!(
        s.contains("\x1bPtmux;\x1b\x1b_G"),
        "transmitted through passthrough"
    );
    assert_eq!(s.matches('\u{10EEEE}').count(), 16, "{s:?}");
    assert_eq!(s.matches('\n').count(), 2);
}
