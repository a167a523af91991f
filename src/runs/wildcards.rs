//! Wildcard files: `__name__` in a prompt is one line of `NAME.txt` in the wildcard folder
//! (`$XDG_CONFIG_HOME/easel/wildcards` in the program; any folder in tests). One value a line;
//! blank lines and lines starting with `#` are skipped; surrounding spaces are trimmed.

use super::parse::ErrorKind;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where wildcard files are looked up, with each file read at most once.
#[derive(Debug, Clone)]
pub struct Wildcards {
    dir: PathBuf,
    cache: HashMap<String, Vec<String>>,
}

/// The wildcard folder: `$XDG_CONFIG_HOME/easel/wildcards`, else `~/.config/easel/wildcards`
/// (`env` reads an environment variable).
pub fn folder(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            env("HOME")
                .map(PathBuf::from)
                .or_else(|| etcetera::home_dir().ok())
                .map(|h| h.join(".config"))
        })
        .unwrap_or_else(|| PathBuf::from("/nonexistent"))
        .join("easel")
        .join("wildcards")
}

/// The values in the text of a wildcard file.
pub fn values_of(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The first control character (but a tab) in a value line of a wildcard file, with its
/// 1-based line: it would be sent in prompts and kept in history.
fn control_in_values(text: &str) -> Option<(usize, char)> {
    text.lines().enumerate().find_map(|(i, l)| {
        let l = l.trim();
        if l.starts_with('#') {
            return None;
        }
        l.chars()
            .find(|c| c.is_control() && *c != '\t')
            .map(|c| (i + 1, c))
    })
}

impl Wildcards {
    pub fn new(dir: impl Into<PathBuf>) -> Wildcards {
        Wildcards {
            dir: dir.into(),
            cache: HashMap::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The values of `name`, or why there are none.
    pub fn load(&mut self, name: &str) -> Result<Vec<String>, ErrorKind> {
        if let Some(v) = self.cache.get(name) {
            return Ok(v.clone());
        }
        let path = self.dir.join(format!("{name}.txt"));
        let file = path.display().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ErrorKind::UnknownWildcard {
                    name: name.into(),
                    file,
                });
            }
            Err(e) => {
                let why = if e.kind() == std::io::ErrorKind::InvalidData {
                    "it is not UTF-8 text".to_string()
                } else {
                    e.to_string()
                };
                return Err(ErrorKind::UnreadableWildcard {
                    name: name.into(),
                    file,
                    why,
                });
            }
        };
        // A byte-order mark (Windows editors write one) is not part of the first value.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        if let Some((line, ch)) = control_in_values(text) {
            return Err(ErrorKind::ControlInWildcard {
                name: name.into(),
                file,
                line,
                ch,
            });
        }
        let values = values_of(text);
        if values.is_empty() {
            return Err(ErrorKind::EmptyWildcard {
                name: name.into(),
                file,
            });
        }
        self.cache.insert(name.to_string(), values.clone());
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value with a control character would be sent in a prompt and stored in history and
    /// sidecars (an escape sequence, a NUL from a binary file): the file is refused with its line.
    /// A byte-order mark (a file saved by Windows Notepad) is not part of the first value.
    /// A file saved in another encoding (Latin-1): said so, not "check the permissions".
    #[test]
    fn a_file_that_is_not_utf8_says_so() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("latin1.txt"), b"caf\xe9\n").unwrap();
        let e = Wildcards::new(dir.path()).load("latin1").unwrap_err();
        let err = crate::runs::parse::SyntaxError { column: 1, kind: e };
        assert!(err.to_string().contains("is not UTF-8 text"), "{err}");
        assert!(err.hint().contains("UTF-8"), "{}", err.hint());
    }

    #[test]
    fn control_characters_are_refused_with_their_line_and_a_bom_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ctl.txt"),
            "fox\n# a \x1b comment is fine\nowl\x1b[31m\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("nul.txt"), "a\0b\n").unwrap();
        std::fs::write(dir.path().join("bom.txt"), "\u{feff}fox\nowl\tat dusk\r\n").unwrap();
        let mut w = Wildcards::new(dir.path());
        match w.load("ctl") {
            Err(ErrorKind::ControlInWildcard { name, line, ch, .. }) => {
                assert_eq!((name.as_str(), line, ch), ("ctl", 3, '\u{1b}'));
            }
            other => panic!("{other:?}"),
        }
        let e = w.load("nul").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("U+0000"), "{e}");
        assert!(!e.contains('\0'), "{e:?}");
        assert_eq!(w.load("bom").unwrap(), vec!["fox", "owl\tat dusk"]);
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("colour.txt"),
            "# colours\nred\n\n  blue  \r\n#green\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("none.txt"), "# nothing\n\n").unwrap();
        let mut w = Wildcards::new(dir.path());
        assert_eq!(w.load("colour").unwrap(), vec!["red", "blue"]);
        assert!(matches!(
            w.load("none"),
            Err(ErrorKind::EmptyWildcard { .. })
        ));
        assert!(matches!(
            w.load("missing"),
            Err(ErrorKind::UnknownWildcard { .. })
        ));
    }
}
