//! The API key, wrapped so that it cannot be printed, logged or serialised by accident, and the
//! redaction rule for text that came back from a server.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// What a redacted piece of the key is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Any run of at least this many characters of the key is redacted (the whole key when it is
/// shorter). Fewer characters of a random key tell an attacker little, and shorter runs would
/// start to match ordinary text.
pub const MIN_PIECE: usize = 20;

/// An API key. `Debug` and `Display` show a redacted form; only [`ApiKey::expose`] gives the key,
/// and only the HTTP client calls it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Option<ApiKey> {
        let key = key.into().trim().to_string();
        (!key.is_empty()).then_some(ApiKey(key))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every run of [`MIN_PIECE`] or more characters of the key replaced by
    /// [`REDACTED`]. Apply it before text is shortened, printed or stored.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let spans = key_spans(self.0.as_bytes(), text.as_bytes());
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in spans {
            // Widen to character boundaries (a key is ASCII, but be safe with any key).
            let start = (0..=start)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            let end = (end..=text.len())
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(text.len());
            if start < at {
                continue;
            }
            out.push_str(&text[at..start]);
            out.push_str(REDACTED);
            at = end;
        }
        out.push_str(&text[at..]);
        Cow::Owned(out)
    }

    /// [`ApiKey::redact`] for bytes that may not be UTF-8 (an error body before it is parsed).
    pub fn redact_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let spans = key_spans(self.0.as_bytes(), bytes);
        if spans.is_empty() {
            return Cow::Borrowed(bytes);
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut at = 0;
        for (start, end) in spans {
            out.extend_from_slice(&bytes[at..start]);
            out.extend_from_slice(REDACTED.as_bytes());
            at = end;
        }
        out.extend_from_slice(&bytes[at..]);
        Cow::Owned(out)
    }
}

/// The byte ranges of `text` covered by runs of `MIN_PIECE` (or, for a short key, all) bytes of
/// `key`, merged and in order. Linear in the text: every window of the text is looked up once
/// in a set of the key's windows.
fn key_spans(key: &[u8], text: &[u8]) -> Vec<(usize, usize)> {
    let piece = MIN_PIECE.min(key.len());
    let mut spans: Vec<(usize, usize)> = Vec::new();
    if piece == 0 || text.len() < piece {
        return spans;
    }
    let windows: HashSet<&[u8]> = key.windows(piece).collect();
    let first: HashSet<u8> = windows.iter().map(|w| w[0]).collect();
    for i in 0..=text.len() - piece {
        if !first.contains(&text[i]) || !windows.contains(&text[i..i + piece]) {
            continue;
        }
        let end = i + piece;
        match spans.last_mut() {
            Some((_, e)) if *e >= i => *e = end.max(*e),
            _ => spans.push((i, end)),
        }
    }
    spans
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let k = ApiKey::new(" sk-secret-123 ").unwrap();
        assert_eq!(k.expose(), "sk-secret-123");
        assert!(!format!("{k:?} {k}").contains("secret"));
        assert!(ApiKey::new("  ").is_none());
    }

    const KEY: &str = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCDEF";

    #[test]
    fn redacts_the_key_and_any_run_of_20_of_its_characters() {
        let k = ApiKey::new(KEY).unwrap();
        let cases: Vec<(String, String)> = vec![
            (format!("key {KEY} end"), "key <redacted> end".into()),
            (format!("{KEY}{KEY}"), "<redacted>".into()),
            // The key cut short, as text shortened before redaction used to leave it.
            (
                format!("cut {}", &KEY[..KEY.len() - 2]),
                "cut <redacted>".into(),
            ),
            (format!("tail {}!", &KEY[20..]), "tail <redacted>!".into()),
            // A run of exactly 20 characters from the middle.
            (format!("mid {} x", &KEY[10..30]), "mid <redacted> x".into()),
            // 19 characters are left alone.
            (
                format!("short {}", &KEY[10..29]),
                format!("short {}", &KEY[10..29]),
            ),
            ("夜晚的海边 no key".into(), "夜晚的海边 no key".into()),
            (format!("夜{KEY}晚"), "夜<redacted>晚".into()),
        ];
        for (input, want) in cases {
            assert_eq!(k.redact(&input), want, "{input}");
            assert_eq!(
                k.redact_bytes(input.as_bytes()).as_ref(),
                want.as_bytes(),
                "{input}"
            );
        }
        assert!(matches!(k.redact("nothing here"), Cow::Borrowed(_)));
        // A short key: only the whole key.
        let short = ApiKey::new("sk-short").unwrap();
        assert_eq!(
            short.redact("a sk-short b sk-shor"),
            "a <redacted> b sk-shor"
        );
    }

    proptest::proptest! {
        #[test]
        fn no_run_of_20_survives(pre in "\\PC{0,40}", start in 0usize..30, len in 20usize..50, post in "\\PC{0,40}") {
            let k = ApiKey::new(KEY).unwrap();
            let end = (start + len).min(KEY.len());
            proptest::prop_assume!(end - start >= MIN_PIECE);
            let text = format!("{pre}{}{post}", &KEY[start..end]);
            let out = k.redact(&text);
            for w in KEY.as_bytes().windows(MIN_PIECE) {
                let w = std::str::from_utf8(w).unwrap();
                proptest::prop_assert!(!out.contains(w), "{out}");
            }
        }
    }
}
