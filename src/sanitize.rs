//! Text that came from outside (servers, files, imported history, other people's prompts) is
//! cleaned here before anything prints it, so a hostile server cannot drive the user's terminal
//! with escape sequences, rewrite the clipboard with OSC 52, or hide text with bidi overrides.

use std::borrow::Cow;

/// True for characters that must never reach a terminal raw: C0 and C1 controls, DEL,
/// bidirectional overrides and isolates, and zero-width characters.
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        // bidi embeddings, overrides, isolates and marks
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}'
        // zero-width space, non-joiner, joiner, word joiner, invisible operators, BOM
        | '\u{200b}'..='\u{200d}' | '\u{2060}'..='\u{2064}' | '\u{feff}'
        // interlinear annotations and object replacement anchors
        | '\u{fff9}'..='\u{fffb}')
}

/// One line of display text: every unsafe character is dropped, except that line breaks and
/// tabs become a single space so words stay apart.
pub fn line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' | '\t' => {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            c if is_unsafe(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Multi-line display text: like [`line`], but line breaks are kept (CR LF and lone CR become
/// LF) and a tab becomes four spaces.
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) && c != '\n') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => out.push('\n'),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\t' => out.push_str("    "),
            c if is_unsafe(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// JSON text (as serde_json writes it) made safe to print: every unsafe character left raw
/// (serde_json escapes C0 controls but writes C1 controls, bidi and zero-width characters as
/// they are) becomes a `\uXXXX` escape. Outside strings JSON holds only ASCII punctuation,
/// digits, letters and whitespace (serde_json escapes line breaks and tabs inside strings, so
/// raw ones are layout and stay), so the result is the same JSON value, exactly.
pub fn json(s: &str) -> Cow<'_, str> {
    let escape = |c: char| is_unsafe(c) && !matches!(c, '\n' | '\r' | '\t');
    if !s.chars().any(escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if escape(c) {
            // Every unsafe character is in the Basic Multilingual Plane: one escape each.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Cut display text to at most `max` characters, marking the cut with an ellipsis.
pub fn truncate(s: &str, max: usize) -> Cow<'_, str> {
    if s.chars().count() <= max {
        return Cow::Borrowed(s);
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    Cow::Owned(out)
}

/// [`truncate`] for text that went through redaction: a cut that would fall inside a
/// `<redacted>` marker is moved to its end, so half a marker never shows.
pub fn truncate_redacted(s: &str, max: usize) -> Cow<'_, str> {
    if s.chars().count() <= max {
        return Cow::Borrowed(s);
    }
    let keep = max.saturating_sub(1);
    let mut cut = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
    let marker = crate::secret::REDACTED;
    if let Some(p) = s[..cut]
        .rfind('<')
        .filter(|p| cut - p < marker.len() && s[*p..].starts_with(marker))
    {
        cut = p + marker.len();
    }
    if cut >= s.len() {
        return Cow::Borrowed(s);
    }
    let mut out = s[..cut].to_string();
    out.push('…');
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table() {
        let cases: &[(&str, &str)] = &[
            ("plain text", "plain text"),
            ("夜晚的海边小镇", "夜晚的海边小镇"),
            ("a\x1b[31mred\x1b[0m", "a[31mred[0m"),
            ("clip\x1b]52;c;aGVsbG8=\x07board", "clip]52;c;aGVsbG8=board"),
            ("two\nlines\r\nhere", "two lines here"),
            ("tab\there", "tab here"),
            ("evil\u{202e}txt.exe", "eviltxt.exe"),
            ("zero\u{200b}width\u{feff}", "zerowidth"),
            ("c1\u{9b}31m", "c131m"),
            ("del\x7f", "del"),
            ("emoji 🎨 ok", "emoji 🎨 ok"),
        ];
        for (input, want) in cases {
            assert_eq!(line(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn text_keeps_newlines() {
        assert_eq!(text("a\r\nb\rc\n\x1b[2Jd\te"), "a\nb\nc\n[2Jd    e");
        assert!(matches!(text("clean\nlines"), Cow::Borrowed(_)));
    }

    #[test]
    fn truncate_counts_chars() {
        assert_eq!(truncate("夜晚的海边小镇", 4), "夜晚的…");
        assert_eq!(truncate("short", 10), "short");
    }

    #[test]
    fn truncate_redacted_keeps_markers_whole() {
        for cut in 1..30 {
            let s = "abcdefgh<redacted>ijklmnop<redacted>";
            let t = truncate_redacted(s, cut);
            let body = t.trim_end_matches('…');
            for k in 1..crate::secret::REDACTED.len() {
                assert!(!body.ends_with(&crate::secret::REDACTED[..k]), "{cut}: {t}");
            }
        }
        assert_eq!(truncate_redacted("夜晚的海边小镇", 4), "夜晚的…");
        assert_eq!(truncate_redacted("ab<redacted>cd", 5), "ab<redacted>…");
    }

    #[test]
    fn json_escapes_what_serde_leaves_raw() {
        let value =
            serde_json::json!({"p": "a\u{1b}[2J\u{9b}31m\u{202e}\u{200b}\u{feff}\u{7f} ok 🎨\n"});
        for text in [
            serde_json::to_string(&value).unwrap(),
            serde_json::to_string_pretty(&value).unwrap(),
        ] {
            let safe = json(&text);
            assert!(!safe.chars().any(|c| is_unsafe(c) && c != '\n'), "{safe}");
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&safe).unwrap(),
                value
            );
        }
        assert!(matches!(json("{\"plain\":1}"), Cow::Borrowed(_)));
    }

    proptest! {
        #[test]
        fn json_is_lossless(s in "\\PC*|[\\x00-\\x1f\\x7f-\\u{9f}\\u{200b}-\\u{200f}\\u{202a}-\\u{202e}\\u{feff}a-z]*") {
            let text = serde_json::to_string(&serde_json::json!({ "s": s })).unwrap();
            let safe = json(&text);
            prop_assert!(!safe.chars().any(is_unsafe));
            let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
            prop_assert_eq!(back["s"].as_str(), Some(s.as_str()));
        }

        #[test]
        fn nothing_unsafe_survives(s in "\\PC*|[\\x00-\\x1f\\x7f-\\u{9f}\\u{200b}-\\u{200f}\\u{202a}-\\u{202e}a-z]*") {
            prop_assert!(!line(&s).chars().any(is_unsafe));
            prop_assert!(!text(&s).chars().any(|c| is_unsafe(c) && c != '\n'));
        }
    }
}
