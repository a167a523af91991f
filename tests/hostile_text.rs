#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Hostile text never reaches the terminal raw. Strings holding ESC [ 2J (clear screen), OSC 52
//! (write the clipboard) ended by BEL, a DCS string, the C1 CSI U+009B, a bidi override U+202E,
//! a zero-width space, a BOM and a bare BEL are put everywhere text enters easel from outside:
//! a prompt, a revised prompt and error messages from the server, a model name (on the command
//! line and in the config's model table), an imported history record (prompt, revised prompt,
//! tags, model, provider, error, request id; a hostile image path is refused), the name of the
//! import file and the `--out` folder. Then `easel generate`, `history list/show/stats/doctor/
//! export` and `easel models` run, plain and `--json`, and every byte of stdout and stderr is
//! scanned: no ESC, no BEL, no U+009B, no bidi or zero-width character, nor any other control
//! character besides the newline.
#![cfg(unix)]

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};
use support::fake_server::{FakeServer, Reply};
use support::sandbox::Sandbox;

const BIN: &str = env!("CARGO_BIN_EXE_easel");

/// The hostile pieces.
const PIECES: &[&str] = &[
    "\x1b[2J",
    "\x1b]52;c;aGFja2Vk\x07",
    "\x1bP+q544e\x1b\\",
    "\u{9b}31m",
    "\u{202e}",
    "\u{200b}",
    "\u{feff}",
    "\u{7}",
];

/// Readable text with every hostile piece in it.
fn hostile(label: &str) -> String {
    format!("{label} {} end", PIECES.join(" x "))
}

/// Characters that must never appear in output.
fn forbidden(c: char) -> bool {
    c != '\n' && easel::sanitize::is_unsafe(c)
}

impl Sandbox {
    fn new() -> Sandbox {
        let sb = Sandbox::folders();
        std::fs::create_dir_all(sb.config_home.join("easel")).unwrap();
        sb
    }

    fn command(&self, server: &FakeServer, args: &[&str]) -> Command {
        let mut cmd = self.clean_command(BIN);
        cmd.env("OPENAI_API_KEY", "sk-hostile-text")
            .env("OPENAI_BASE_URL", server.base_url())
            .args(args);
        cmd
    }
}

/// Runs and scans.
#[derive(Default)]
struct Scan {
    runs: usize,
    bytes: usize,
    problems: Vec<String>,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Scan {
    fn run(&mut self, label: &str, mut cmd: Command) -> Run {
        let out = cmd.output().expect("run easel");
        self.runs += 1;
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            self.bytes += bytes.len();
            let text = String::from_utf8_lossy(bytes);
            let bad: Vec<String> = text
                .chars()
                .filter(|c| forbidden(*c))
                .map(|c| format!("U+{:04X}", c as u32))
                .collect();
            if !bad.is_empty() || bytes.contains(&0x1b) || bytes.contains(&0x07) {
                let mut bad = bad;
                bad.sort();
                bad.dedup();
                // A little of the text around the first offence.
                let chars: Vec<char> = text.chars().collect();
                let first = chars.iter().position(|c| forbidden(*c)).unwrap_or(0);
                let excerpt: String = chars[first.saturating_sub(60)..].iter().take(120).collect();
                self.problems.push(format!(
                    "{label} ({stream}): {} in {excerpt:?}",
                    bad.join(" ")
                ));
            }
        }
        Run {
            code: out.status.code().expect("exited"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A record as `easel history export` writes it, with hostile text in every text field.
fn hostile_record(id: &str, image: Option<&str>) -> Value {
    let outputs = match image {
        Some(path) => {
            json!([{"path": path, "format": "png", "width": 8, "height": 8, "bytes": 100, "sha256": "00"}])
        }
        None => json!([]),
    };
    json!({"v": 1, "record": {
        "id": id,
        "prompt": hostile("imported prompt"),
        "revised_prompt": hostile("imported revised"),
        "provider": hostile("provider"),
        "model": hostile("model"),
        "params": {"prompt": hostile("imported prompt"), "model": hostile("model"), "n": 1, "size": hostile("size")},
        "status": "failed",
        "created": "2026-11-28T21:47:00Z",
        "finished": "2026-11-28T21:47:05Z",
        "attempts": 1,
        "error": {"kind": "server", "message": hostile("imported error"), "code": hostile("code"), "status": 500,
                  "request_id": hostile("req"), "hint": hostile("hint")},
        "outputs": outputs,
        "request_id": hostile("req"),
        "tags": [hostile("tag"), "\u{202e}gpj.exe"],
        "starred": true,
    }})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_never_reaches_the_terminal_raw() {
    let server = FakeServer::start().await;
    let sandbox = Sandbox::new();
    // A model in the config's table with a hostile name and note (for `easel models`).
    std::fs::write(
        sandbox.config_home.join("easel/config.toml"),
        "[models.\"evil\\u001b[2J\\u202emodel\"]\nlike = \"gpt-image-2\"\nnote = \"note \\u001b]52;c;aGk=\\u0007 \\u009b31m \\u200b\"\n",
    )
    .unwrap();
    let mut scan = Scan::default();
    let cmd = |args: &[&str]| sandbox.command(&server, args);

    // A hostile prompt, and a hostile revised prompt from the server.
    server.push(Reply::image().with_revised_prompt(hostile("revised")));
    let prompt = hostile("prompt");
    let r = scan.run(
        "generate (hostile prompt and revised prompt)",
        cmd(&["generate", &prompt, "--no-preview"]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("revised prompt: revised"), "{}", r.stderr);
    assert_eq!(
        server.last_body().unwrap()["prompt"].as_str(),
        Some(prompt.as_str()),
        "the prompt goes to the server as written"
    );
    server.push(Reply::image().with_revised_prompt(hostile("revised json")));
    let r = scan.run(
        "generate --json (hostile revised prompt)",
        cmd(&["generate", &prompt, "--json"]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line: Value = serde_json::from_str(r.stdout.trim()).expect("--json stays valid JSON");
    assert_eq!(
        line["revised_prompt"].as_str(),
        Some(hostile("revised json").as_str()),
        "JSON keeps the exact text, escaped"
    );

    // Hostile server error messages: a JSON error with hostile fields, and a non-JSON page.
    server.push(Reply::json(
        400,
        json!({"error": {"message": hostile("error message"), "type": hostile("type"), "param": hostile("param"), "code": hostile("code")}}),
    ));
    let r = scan.run(
        "generate (hostile error JSON)",
        cmd(&["generate", "a calm sea"]),
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("error message"), "{}", r.stderr);
    for _ in 0..3 {
        server.push(
            Reply::raw(502, "text/html", hostile("<html>bad gateway"))
                .with_header("retry-after-ms", "1"),
        );
    }
    let r = scan.run(
        "generate (hostile error page)",
        cmd(&["generate", "a calm sea"]),
    );
    assert_eq!(r.code, 1);
    // A stream error event with a hostile message.
    let event = json!({"type": "error", "error": {"message": hostile("stream error"), "code": "server_error"}});
    server.push(Reply::raw(
        200,
        "text/event-stream",
        format!("event: error\ndata: {event}\n\n"),
    ));
    let r = scan.run(
        "generate --stream (hostile error event)",
        cmd(&["generate", "a calm sea", "--stream"]),
    );
    assert_eq!(r.code, 1);

    // A hostile model name: on the command line (sent as written, with a warning), and in the
    // config's table (whose note is a warning too).
    let model = hostile("model");
    let r = scan.run(
        "generate --model (hostile)",
        cmd(&["generate", "a calm sea", "--model", &model, "--no-preview"]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("not in the model catalogue"),
        "{}",
        r.stderr
    );
    let r = scan.run(
        "generate --model (config's hostile model)",
        cmd(&[
            "generate",
            "a calm sea",
            "--model",
            "evil\u{1b}[2J\u{202e}model",
        ]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    scan.run("models", cmd(&["models"]));
    let r = scan.run("models --json", cmd(&["models", "--json"]));
    assert!(
        r.stdout
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "{}",
        r.stdout
    );

    // A hostile --out folder name.
    let out = sandbox.root.path().join(hostile("out").replace(' ', "_"));
    let out_arg = out.as_os_str().to_os_string();
    let mut c = cmd(&["generate", "into a strange folder", "--no-preview", "--out"]);
    c.arg(&out_arg);
    let r = scan.run("generate --out (hostile folder)", c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let saved: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        saved
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "png")),
        "{saved:?}"
    );
    let mut c = cmd(&["generate", "into a strange folder", "--json", "--out"]);
    c.arg(&out_arg);
    let r = scan.run("generate --json --out (hostile folder)", c);
    let line: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let path = PathBuf::from(line["path"].as_str().unwrap());
    assert!(
        path.is_file() && path.starts_with(&out),
        "--json gives the exact path: {path:?}"
    );

    // An imported history record full of hostile text, one with a hostile path (refused),
    // from a file with a hostile name.
    let good_id = "0123456789abcdef0123456789abcdef";
    let refused_id = "fedcba9876543210fedcba9876543210";
    let import = sandbox
        .root
        .path()
        .join(format!("import{}.jsonl", PIECES.join("")));
    let text = format!(
        "{}\n{}\n",
        hostile_record(good_id, None),
        hostile_record(
            refused_id,
            Some(&format!("../{}", hostile("escape").replace(' ', "_")))
        )
    );
    std::fs::write(&import, text).unwrap();
    let mut c = cmd(&["history", "import"]);
    c.arg(&import);
    let r = scan.run("history import (hostile file name and records)", c);
    assert_eq!(r.code, 1, "one record is refused: {}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("imported 1") && r.stderr.contains("climbs out"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(import.is_file());

    // Every way of showing history.
    let r = scan.run("history list", cmd(&["history", "list", "--limit", "50"]));
    assert!(r.stdout.contains("imported prompt"), "{}", r.stdout);
    let r = scan.run(
        "history list --json",
        cmd(&["history", "list", "--json", "--limit", "50"]),
    );
    let ids: Vec<String> = r
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect();
    assert!(
        ids.len() >= 9 && ids.iter().any(|i| i == good_id),
        "{ids:?}"
    );
    for id in &ids {
        scan.run(
            &format!("history show {id}"),
            cmd(&["history", "show", id, "--no-preview"]),
        );
        let r = scan.run(
            &format!("history show {id} --json"),
            cmd(&["history", "show", id, "--json"]),
        );
        serde_json::from_str::<Value>(&r.stdout).expect("show --json stays valid JSON");
    }
    let r = scan.run(
        "history show (imported)",
        cmd(&["history", "show", good_id, "--no-preview"]),
    );
    assert!(
        r.stdout.contains("imported revised") && r.stdout.contains("imported error"),
        "{}",
        r.stdout
    );
    scan.run(
        "history list --query",
        cmd(&["history", "list", "--query", &hostile("prompt")]),
    );
    scan.run(
        "history list --model",
        cmd(&["history", "list", "--model", &model]),
    );
    scan.run(
        "history list --status (hostile)",
        cmd(&["history", "list", "--status", &hostile("status")]),
    );
    scan.run(
        "history list --after (hostile)",
        cmd(&["history", "list", "--after", &hostile("cursor")]),
    );
    scan.run(
        "history show (hostile id)",
        cmd(&["history", "show", &hostile("id")]),
    );
    scan.run("history stats", cmd(&["history", "stats"]));
    scan.run("history stats --json", cmd(&["history", "stats", "--json"]));
    scan.run("history doctor", cmd(&["history", "doctor"]));
    let r = scan.run("history export", cmd(&["history", "export"]));
    assert!(
        r.stdout
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "export stays valid JSON lines"
    );

    eprintln!(
        "hostile text: {} runs, {} bytes of output scanned",
        scan.runs, scan.bytes
    );
    assert!(
        scan.problems.is_empty(),
        "raw control, bidi or zero-width characters reached the output:\n{}",
        scan.problems.join("\n")
    );
}
