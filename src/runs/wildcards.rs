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
                return Err(ErrorKind::UnreadableWildcard {
                    name: name.into(),
                    file,
                    why: e.to_string(),
                });
            }
        };
        let values = values_of(&text);
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
