#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Issue 15: the studio in real terminals under a virtual display (Xvfb): Debian's xterm with
//! `-ti vt340` (sixel) and Debian's kitty 0.26 (kitty graphics without Unicode placeholders),
//! screenshotted with ImageMagick's `import`, and the preview checked to hold a picture: many
//! colours in one spot, not half-blocks and not a two-colour grid of empty boxes.
//!
//! Skips (passing, with a line on stderr) when Xvfb, ImageMagick or the terminal is missing:
//! `apt-get install -y xvfb xterm kitty imagemagick` to run it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free display number and its Xvfb.
fn xvfb() -> Option<(String, Killed)> {
    let start = 140 + std::process::id() % 50;
    let n = (start..start + 50).find(|n| {
        !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
    })?;
    let child = Command::new("Xvfb")
        .args([
            &format!(":{n}"),
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let guard = Killed(child);
    let socket = format!("/tmp/.X11-unix/X{n}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !Path::new(&socket).exists() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((format!(":{n}"), guard))
}

/// The most distinct colours (with some chroma: not the greys of anti-aliased text) in any
/// 48×48 tile of the screenshot.
fn picture_score(png: &Path) -> usize {
    let Ok(img) = image::open(png) else {
        return 0;
    };
    let img = img.to_rgb8();
    let (w, h) = img.dimensions();
    let mut best = 0;
    for y in (0..h.saturating_sub(48)).step_by(24) {
        for x in (0..w.saturating_sub(48)).step_by(24) {
            let mut seen = std::collections::HashSet::new();
            for dy in 0..48 {
                for dx in 0..48 {
                    let p = img.get_pixel(x + dx, y + dy).0;
                    let (max, min) = (p.iter().max().unwrap(), p.iter().min().unwrap());
                    if max - min >= 24 {
                        seen.insert(p);
                    }
                }
            }
            best = best.max(seen.len());
        }
    }
    best
}

/// Run the studio in a terminal and wait until the screenshot shows a picture (score above
/// `threshold`), or fail with the last screenshot kept.
fn studio_shows_a_picture(
    display: &str,
    name: &str,
    terminal: &[&str],
    threshold: usize,
    out: &Path,
) {
    let data = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    let easel = env!("CARGO_BIN_EXE_easel");
    let env = |c: &mut Command| {
        c.env("DISPLAY", display)
            .env("EASEL_SERVICE", "off")
            .env("EASEL_DATA_DIR", data.path())
            .env("XDG_CONFIG_HOME", config.path())
            .env_remove("OPENAI_API_KEY")
            .env_remove("TMUX")
            .env_remove("COLORTERM")
            .env_remove("EASEL_GRAPHICS");
    };
    let mut gen_cmd = Command::new(easel);
    gen_cmd.args(["--quiet", "--provider", "demo", "generate", "a lighthouse"]);
    env(&mut gen_cmd);
    let made = gen_cmd.output().unwrap();
    assert!(made.status.success(), "{made:?}");
    let mut cmd = Command::new(terminal[0]);
    cmd.args(&terminal[1..])
        .args([easel, "--provider", "demo"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    env(&mut cmd);
    let _term = Killed(cmd.spawn().unwrap());
    let shot = out.join(format!("{name}.png"));
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut score = 0;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(2));
        let ok = Command::new("import")
            .args(["-display", display, "-window", "root"])
            .arg(&shot)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            score = picture_score(&shot);
            if score > threshold {
                eprintln!(
                    "{name}: a picture ({score} colours in one spot), {}",
                    shot.display()
                );
                return;
            }
        }
    }
    panic!(
        "{name}: no picture in the preview ({score} colours in one spot at most, wanted more than {threshold}); screenshot kept at {}",
        shot.display()
    );
}

#[test]
fn real_terminals_show_the_preview_as_a_picture() {
    if !have("Xvfb") || !have("import") {
        eprintln!(
            "SKIP real terminals: Xvfb or ImageMagick missing (apt-get install -y xvfb imagemagick xterm kitty)"
        );
        return;
    }
    let Some((display, _xvfb)) = xvfb() else {
        eprintln!("SKIP real terminals: Xvfb did not start");
        return;
    };
    // Screenshots stay for a look (target/xvfb-shots).
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("xvfb-shots");
    std::fs::create_dir_all(&out).unwrap();
    // Thresholds from screenshots of this machine: xterm's sixel preview has about 64 chromatic
    // colours in its busiest 48-pixel tile and its half-blocks about 10 (bitmap fonts, no
    // anti-aliasing); kitty's graphics about 1400, and its text or half-blocks about 140.
    if have("xterm") {
        studio_shows_a_picture(
            &display,
            "xterm-vt340",
            &[
                "xterm",
                "-ti",
                "vt340",
                "-xrm",
                "XTerm*numColorRegisters: 256",
                "-geometry",
                "132x45+0+0",
                "-e",
            ],
            32,
            &out,
        );
    } else {
        eprintln!("SKIP xterm: not installed");
    }
    if have("kitty") {
        studio_shows_a_picture(
            &display,
            "kitty",
            &[
                "kitty",
                "--config",
                "NONE",
                "-o",
                "remember_window_size=no",
                "-o",
                "initial_window_width=1200",
                "-o",
                "initial_window_height=760",
                "-o",
                "font_size=10",
            ],
            500,
            &out,
        );
    } else {
        eprintln!("SKIP kitty: not installed");
    }
}
