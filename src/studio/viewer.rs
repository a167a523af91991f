//! Opening a picture in the system's viewer: `$EASEL_VIEWER` (split like a shell does), else
//! `xdg-open` (or `open` on macOS) where there is a display; over SSH without one, the path is
//! copied instead, since a viewer would open on a screen nobody sees.

use std::path::Path;

/// What `o` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// Run this command with the image's path added.
    Command(Vec<String>),
    /// No viewer can be shown here: copy the path, and say why.
    CopyPath(String),
}

/// Choose, from the environment (`env` returns a set, non-empty variable).
pub fn choose(env: &dyn Fn(&str) -> Option<String>, macos: bool) -> Viewer {
    if let Some(cmd) = env("EASEL_VIEWER") {
        return match shell_words::split(&cmd) {
            Ok(words) if !words.is_empty() => Viewer::Command(words),
            _ => Viewer::CopyPath(format!("EASEL_VIEWER ({cmd:?}) is not a command")),
        };
    }
    let display = env("DISPLAY").is_some() || env("WAYLAND_DISPLAY").is_some();
    let remote = env("SSH_CONNECTION").is_some() || env("SSH_TTY").is_some();
    if macos && !remote {
        return Viewer::Command(vec!["open".into()]);
    }
    if display {
        return Viewer::Command(vec!["xdg-open".into()]);
    }
    Viewer::CopyPath(if remote {
        "no display over this SSH connection (set EASEL_VIEWER to choose a viewer)".into()
    } else {
        "no display here (set EASEL_VIEWER to choose a viewer)".into()
    })
}

/// Start the viewer on its own, its output discarded (it must not draw over the studio).
pub fn spawn(words: &[String], path: &Path) -> Result<(), String> {
    let Some((program, args)) = words.split_first() else {
        return Err("no viewer command".into());
    };
    std::process::Command::new(program)
        .args(args)
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(|_| ())
        .map_err(|e| format!("cannot start the viewer {program}: {e} (set EASEL_VIEWER)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Environment variables, whether it is macOS, and the viewer chosen.
    type Case<'a> = (&'a [(&'a str, &'a str)], bool, Viewer);

    #[test]
    fn the_viewer_follows_the_environment() {
        let cases: &[Case] = &[
            (
                &[("EASEL_VIEWER", "feh --scale-down"), ("DISPLAY", ":0")],
                false,
                Viewer::Command(vec!["feh".into(), "--scale-down".into()]),
            ),
            (
                &[("DISPLAY", ":0")],
                false,
                Viewer::Command(vec!["xdg-open".into()]),
            ),
            (
                &[("WAYLAND_DISPLAY", "wayland-0")],
                false,
                Viewer::Command(vec!["xdg-open".into()]),
            ),
            (&[], true, Viewer::Command(vec!["open".into()])),
        ];
        for (vars, macos, want) in cases {
            let env = |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            };
            assert_eq!(&choose(&env, *macos), want, "{vars:?}");
        }
        // Over SSH without a display (or a forwarded one on macOS): copy the path.
        for (vars, macos) in [
            (vec![("SSH_CONNECTION", "1.2.3.4 5 6.7.8.9 22")], false),
            (vec![("SSH_TTY", "/dev/pts/3")], true),
            (vec![], false),
        ] {
            let env = |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            };
            assert!(
                matches!(choose(&env, macos), Viewer::CopyPath(_)),
                "{vars:?}"
            );
        }
    }
}
