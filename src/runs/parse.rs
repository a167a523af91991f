//! The prompt syntax of a run: `{a|b|c}` alternatives (nested), `__name__` wildcards, and the
//! escapes `\{`, `\|`, `\}`, `\_` and `\\`. See docs/runs.md.
//!
//! Columns are 1-based and count characters, not bytes, so they match what the user sees.

use std::fmt;

/// The values of a wildcard file, shared.
pub type WildcardValues = std::sync::Arc<Vec<String>>;

/// One piece of a parsed prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Literal text (escapes already removed).
    Text(String),
    /// `{a|b|c}`: one of the alternatives, each itself a sequence of nodes.
    Alt {
        column: usize,
        options: Vec<Vec<Node>>,
    },
    /// `__name__`: one line of the wildcard file `name.txt` (filled in by `resolve`; shared,
    /// so that a file of a million lines is not copied at each keystroke in the studio).
    Wildcard {
        name: String,
        column: usize,
        values: WildcardValues,
    },
}

/// What is wrong with a prompt, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based character column.
    pub column: usize,
    pub kind: ErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// A `{` that is never closed.
    UnclosedBrace,
    /// A `}` with no `{` before it.
    UnmatchedClose,
    /// `{}`: nothing to choose from.
    EmptyAlternatives,
    /// `__name__` with no file `name.txt` in the wildcard folder.
    UnknownWildcard { name: String, file: String },
    /// A wildcard file with no values (only comments or blank lines).
    EmptyWildcard { name: String, file: String },
    /// A wildcard file that exists but could not be read.
    UnreadableWildcard {
        name: String,
        file: String,
        why: String,
    },
    /// A wildcard file with a control character in a value (line 1-based).
    ControlInWildcard {
        name: String,
        file: String,
        line: usize,
        ch: char,
    },
    /// A prompt that ends with a lone `\`.
    TrailingBackslash,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.kind)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::UnclosedBrace => write!(f, "unclosed brace: this '{{' has no '}}'"),
            ErrorKind::UnmatchedClose => write!(f, "this '}}' closes no '{{'"),
            ErrorKind::EmptyAlternatives => write!(f, "empty alternative list '{{}}'"),
            ErrorKind::UnknownWildcard { name, file } => {
                write!(f, "unknown wildcard __{name}__: there is no file {file}")
            }
            ErrorKind::EmptyWildcard { name, file } => {
                write!(
                    f,
                    "wildcard __{name}__ has no values: {file} has only comments or blank lines"
                )
            }
            ErrorKind::UnreadableWildcard { name, file, why } => {
                write!(f, "wildcard __{name}__: cannot read {file}: {why}")
            }
            ErrorKind::ControlInWildcard {
                name,
                file,
                line,
                ch,
            } => write!(
                f,
                "wildcard __{name}__: line {line} of {file} has a control character (U+{:04X})",
                u32::from(*ch)
            ),
            ErrorKind::TrailingBackslash => {
                write!(
                    f,
                    "the prompt ends with a lone '\\' (write \\\\ for a backslash)"
                )
            }
        }
    }
}

impl SyntaxError {
    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match &self.kind {
            ErrorKind::UnclosedBrace => {
                "close it with '}', or write \\{ for a literal brace (docs/runs.md)"
            }
            ErrorKind::UnmatchedClose => {
                "remove it, or write \\} for a literal brace (docs/runs.md)"
            }
            ErrorKind::EmptyAlternatives => {
                "put choices between the braces, as in {red|blue}, or write \\{\\} for literal braces"
            }
            ErrorKind::UnknownWildcard { .. } => {
                "create the file with one value per line, or write \\_\\_ for literal underscores"
            }
            ErrorKind::EmptyWildcard { .. } => "add at least one value (one per line) to the file",
            ErrorKind::UnreadableWildcard { .. } => {
                "check that it is a file you may read, saved as UTF-8 text"
            }
            ErrorKind::ControlInWildcard { .. } => {
                "remove it from the file: a value is plain text, one a line"
            }
            ErrorKind::TrailingBackslash => "remove it or double it",
        }
    }
}

/// Characters that `\` makes literal.
const ESCAPABLE: [char; 5] = ['{', '|', '}', '_', '\\'];

/// Whether `c` may appear in a wildcard name: letters, digits, `-` and `.` (and `_` singly).
/// No `/`: a name never leaves the wildcard folder.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'
}

/// A `__name__` starting at `chars[i]` (which is the first `_`): the name and the index just
/// past the closing `__`.
fn wildcard_at(chars: &[char], i: usize) -> Option<(String, usize)> {
    if chars.get(i) != Some(&'_') || chars.get(i + 1) != Some(&'_') {
        return None;
    }
    let start = i + 2;
    let mut j = start;
    while j + 1 < chars.len() {
        if chars[j] == '_' && chars[j + 1] == '_' {
            break;
        }
        if !name_char(chars[j]) {
            return None;
        }
        j += 1;
    }
    if j + 1 >= chars.len() || j == start {
        return None;
    }
    let name: String = chars[start..j].iter().collect();
    // A name is not "..": it is a file name in the wildcard folder.
    if name.chars().all(|c| c == '.') || name.starts_with('_') {
        return None;
    }
    Some((name, j + 2))
}

/// Parse a prompt into nodes. Wildcards are left without values; see `resolve`.
pub fn parse(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let seq = parse_seq(&chars, &mut i, false)?;
    if let Some(&c) = chars.get(i) {
        // Only a stray `}` stops the top level early.
        debug_assert_eq!(c, '}');
        return Err(SyntaxError {
            column: i + 1,
            kind: ErrorKind::UnmatchedClose,
        });
    }
    Ok(seq)
}

fn push_text(seq: &mut Vec<Node>, buf: &mut String) {
    if !buf.is_empty() {
        seq.push(Node::Text(std::mem::take(buf)));
    }
}

/// A sequence, up to (not including) a `|` or `}` when `inside` braces, or a `}` at the top.
fn parse_seq(chars: &[char], i: &mut usize, inside: bool) -> Result<Vec<Node>, SyntaxError> {
    let mut seq = Vec::new();
    let mut buf = String::new();
    while let Some(&c) = chars.get(*i) {
        match c {
            '\\' => match chars.get(*i + 1) {
                Some(&n) if ESCAPABLE.contains(&n) => {
                    buf.push(n);
                    *i += 2;
                }
                Some(&n) => {
                    // Any other backslash is kept as it is.
                    buf.push('\\');
                    buf.push(n);
                    *i += 2;
                }
                None => {
                    return Err(SyntaxError {
                        column: *i + 1,
                        kind: ErrorKind::TrailingBackslash,
                    });
                }
            },
            '{' => {
                push_text(&mut seq, &mut buf);
                let column = *i + 1;
                *i += 1;
                let mut options = Vec::new();
                loop {
                    let option = parse_seq(chars, i, true)?;
                    match chars.get(*i) {
                        Some('|') => {
                            options.push(option);
                            *i += 1;
                        }
                        Some('}') => {
                            if options.is_empty() && option.is_empty() {
                                return Err(SyntaxError {
                                    column,
                                    kind: ErrorKind::EmptyAlternatives,
                                });
                            }
                            options.push(option);
                            *i += 1;
                            break;
                        }
                        _ => {
                            return Err(SyntaxError {
                                column,
                                kind: ErrorKind::UnclosedBrace,
                            });
                        }
                    }
                }
                seq.push(Node::Alt { column, options });
            }
            '|' if inside => break,
            '}' => break,
            '_' => match wildcard_at(chars, *i) {
                Some((name, next)) => {
                    push_text(&mut seq, &mut buf);
                    seq.push(Node::Wildcard {
                        name,
                        column: *i + 1,
                        values: WildcardValues::default(),
                    });
                    *i = next;
                }
                None => {
                    buf.push('_');
                    *i += 1;
                }
            },
            _ => {
                buf.push(c);
                *i += 1;
            }
        }
    }
    push_text(&mut seq, &mut buf);
    Ok(seq)
}

/// The names of the wildcards in `nodes`, each once, in the order they appear.
pub fn wildcard_names(nodes: &[Node]) -> Vec<String> {
    fn walk(nodes: &[Node], out: &mut Vec<String>) {
        for node in nodes {
            match node {
                Node::Text(_) => {}
                Node::Alt { options, .. } => {
                    for option in options {
                        walk(option, out);
                    }
                }
                Node::Wildcard { name, .. } => {
                    if !out.contains(name) {
                        out.push(name.clone());
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(nodes, &mut out);
    out
}

/// Whether `nodes` is plain text: no choice, no wildcard (escapes may have been removed).
pub fn is_plain(nodes: &[Node]) -> bool {
    nodes.iter().all(|n| matches!(n, Node::Text(_)))
}

/// Fill in the values of every wildcard with `load(name)`, which gives the values or the error
/// kind. The error carries the wildcard's column.
pub fn resolve(
    nodes: &mut [Node],
    load: &mut dyn FnMut(&str) -> Result<WildcardValues, ErrorKind>,
) -> Result<(), SyntaxError> {
    for node in nodes {
        match node {
            Node::Text(_) => {}
            Node::Alt { options, .. } => {
                for option in options {
                    resolve(option, load)?;
                }
            }
            Node::Wildcard {
                name,
                column,
                values,
            } => {
                *values = load(name).map_err(|kind| SyntaxError {
                    column: *column,
                    kind,
                })?;
            }
        }
    }
    Ok(())
}

/// Write `text` so that `parse` reads it back as exactly that text, with no choices.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if ESCAPABLE.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Node {
        Node::Text(s.into())
    }

    #[test]
    fn alternatives_nest_and_escapes_are_literal() {
        let nodes = parse(r"a {red|{dark|light} blue} \{x\|y\} c:\path").unwrap();
        assert_eq!(
            nodes,
            vec![
                text("a "),
                Node::Alt {
                    column: 3,
                    options: vec![
                        vec![text("red")],
                        vec![
                            Node::Alt {
                                column: 8,
                                options: vec![vec![text("dark")], vec![text("light")]]
                            },
                            text(" blue")
                        ],
                    ]
                },
                text(r" {x|y} c:\path"),
            ]
        );
    }

    #[test]
    fn wildcards_need_a_name_between_double_underscores() {
        let nodes = parse("a __colour__ snake_case a__b __ ____").unwrap();
        assert_eq!(
            nodes,
            vec![
                text("a "),
                Node::Wildcard {
                    name: "colour".into(),
                    column: 3,
                    values: WildcardValues::default()
                },
                text(" snake_case a__b __ ____"),
            ]
        );
        assert_eq!(parse(r"\_\_x\_\_").unwrap(), vec![text("__x__")]);
        // No path separators: a name is a file in the wildcard folder.
        assert_eq!(parse("__a/b__").unwrap(), vec![text("__a/b__")]);
        assert_eq!(parse("__..__").unwrap(), vec![text("__..__")]);
    }

    #[test]
    fn errors_point_at_the_column() {
        // (prompt, column, kind)
        let table: &[(&str, usize, ErrorKind)] = &[
            ("a {b|c", 3, ErrorKind::UnclosedBrace),
            ("{a|{b|c}", 1, ErrorKind::UnclosedBrace),
            ("{a|b} {c|{d}", 7, ErrorKind::UnclosedBrace),
            ("a b}", 4, ErrorKind::UnmatchedClose),
            ("{a} }", 5, ErrorKind::UnmatchedClose),
            ("a {}", 3, ErrorKind::EmptyAlternatives),
            ("{x|{}}", 4, ErrorKind::EmptyAlternatives),
            ("é {}", 3, ErrorKind::EmptyAlternatives),
            ("abc\\", 4, ErrorKind::TrailingBackslash),
        ];
        for (prompt, column, kind) in table {
            let e = parse(prompt).unwrap_err();
            assert_eq!((e.column, &e.kind), (*column, kind), "{prompt}");
            assert!(
                e.to_string().starts_with(&format!("column {column}:")),
                "{e}"
            );
        }
        // Unknown wildcards are found when resolving, with their column.
        let mut nodes = parse("{a|b __nope__}").unwrap();
        let e = resolve(&mut nodes, &mut |name| {
            Err(ErrorKind::UnknownWildcard {
                name: name.into(),
                file: format!("/w/{name}.txt"),
            })
        })
        .unwrap_err();
        assert_eq!(e.column, 6);
        assert!(e.to_string().contains("unknown wildcard __nope__"), "{e}");
    }

    #[test]
    fn empty_options_are_allowed_but_not_an_empty_list() {
        let nodes = parse("{a|}").unwrap();
        assert_eq!(
            nodes,
            vec![Node::Alt {
                column: 1,
                options: vec![vec![text("a")], vec![]]
            }]
        );
        assert_eq!(
            parse("top | level").unwrap(),
            vec![text("top | level")],
            "a | outside braces is text"
        );
    }
}
