//! Desktop notifications written to the terminal: OSC 9 (iTerm2, kitty, WezTerm, Ghostty, foot,
//! Windows Terminal), OSC 777 (rxvt, VTE-based terminals), or the bell. Inside tmux they are
//! wrapped for passthrough (it takes effect where `allow-passthrough` is on; the bell always
//! goes through). Pure: the runtime writes what this returns.

use crate::config::Notify;

/// The bytes that tell the user `text`, for the configured kind.
pub fn sequence(kind: Notify, text: &str, inside_tmux: bool) -> String {
    // Only plain text may go into an escape sequence: no control characters, no `;` that
    // OSC 777 would read as a separator.
    let clean: String = crate::sanitize::line(text)
        .chars()
        .map(|c| if c == ';' { ',' } else { c })
        .collect();
    let osc = |body: String| {
        if inside_tmux {
            // tmux passthrough: ESC P tmux; <sequence with every ESC doubled> ESC \
            format!("\x1bPtmux;\x1b\x1b]{body}\x07\x1b\\")
        } else {
            format!("\x1b]{body}\x07")
        }
    };
    match kind {
        Notify::Off => String::new(),
        Notify::Bell => "\x07".into(),
        Notify::Osc9 => osc(format!("9;{clean}")),
        Notify::Osc777 => osc(format!("777;notify;easel;{clean}")),
        Notify::Auto => format!("{}\x07", osc(format!("9;{clean}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_for_each_kind() {
        assert_eq!(sequence(Notify::Off, "x", false), "");
        assert_eq!(sequence(Notify::Bell, "x", true), "\x07");
        assert_eq!(
            sequence(Notify::Osc9, "done: a fox", false),
            "\x1b]9;done: a fox\x07"
        );
        assert_eq!(
            sequence(Notify::Osc777, "a;b", false),
            "\x1b]777;notify;easel;a,b\x07"
        );
        assert_eq!(
            sequence(Notify::Osc9, "x", true),
            "\x1bPtmux;\x1b\x1b]9;x\x07\x1b\\"
        );
        assert_eq!(sequence(Notify::Auto, "x", false), "\x1b]9;x\x07\x07");
        // Hostile text cannot end the sequence early or start another.
        let s = sequence(Notify::Osc9, "evil\x07\x1b]52;c;aGk=\x07", false);
        assert_eq!(s.matches('\x07').count(), 1, "{s:?}");
        assert_eq!(s.matches('\x1b').count(), 1, "{s:?}");
    }
}
