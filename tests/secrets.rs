#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The API key never lands anywhere: a full session of the real binary against the fake server,
//! with a unique key and failures that echo it back (a 401 whose message quotes the key, a 500
//! page that prints the Authorization header, a stream error event and a download URL holding
//! it), then `history list/show/stats/doctor/export/import`. Afterwards every file under the
//! sandbox (data dir, config dir, home, the export, a second data dir imported into) and every
//! captured stdout and stderr is searched for the key and for every run of 20 of its characters
//! (the redaction rule). Also covered: a key echoed in a successful answer's revised prompt, and
//! a key straddling the point where an error page or an image URL is shortened.
//!
//! Also: the data dir is created 0700 and image files (and sidecars) 0600; a config file that
//! holds `api_key` and is readable by others gets a warning naming `chmod 600` (without the key).
#![cfg(unix)]

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::fake_server::{FakeServer, Reply};
use support::sandbox::Sandbox;

const BIN: &str = env!("CARGO_BIN_EXE_easel");

fn unique_key() -> String {
    let mut rng = fastrand::Rng::new();
    let tail: String = (0..32).map(|_| rng.alphanumeric()).collect();
    format!("sk-UNIQUE-{tail}")
}

impl Sandbox {
    fn new() -> Sandbox {
        // The data folder is not created here: easel must create it, privately.
        Sandbox::folders()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.clean_command(BIN);
        cmd.args(args);
        cmd
    }
}

/// Every output captured, labelled, for the final search.
#[derive(Default)]
struct Outputs(Vec<(String, Vec<u8>)>);

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outputs {
    fn run(&mut self, label: &str, mut cmd: Command) -> Run {
        let out = cmd.output().expect("run easel");
        self.0
            .push((format!("{label} (stdout)"), out.stdout.clone()));
        self.0
            .push((format!("{label} (stderr)"), out.stderr.clone()));
        Run {
            code: out.status.code().expect("exited, not killed"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Where the key, or any run of 20 of its characters, shows up: file paths and output labels.
/// Prints how much it searched.
fn leaks(key: &str, roots: &[&Path], outputs: &Outputs) -> Vec<String> {
    let needles: Vec<&[u8]> = key.as_bytes().windows(PIECE).collect();
    assert!(needles.len() > 20);
    let mut found = Vec::new();
    let mut files = Vec::new();
    for root in roots {
        walk(root, &mut files);
    }
    assert!(!files.is_empty());
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        let name = f.to_string_lossy();
        for n in &needles {
            if contains(&bytes, n) || contains(name.as_bytes(), n) {
                found.push(format!("file {}", f.display()));
            }
        }
    }
    for (label, bytes) in &outputs.0 {
        for n in &needles {
            if contains(bytes, n) {
                found.push(label.clone());
            }
        }
    }
    found.sort();
    found.dedup();
    let file_bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let output_bytes: usize = outputs.0.iter().map(|(_, b)| b.len()).sum();
    eprintln!(
        "secrets: searched {} files ({file_bytes} bytes) and {} captured outputs ({output_bytes} bytes) for the key and each run of {PIECE} of its characters ({} pieces): {} hit(s)",
        files.len(),
        outputs.0.len(),
        needles.len(),
        found.len()
    );
    found
}

/// The redaction rule: any run of this many characters of the key is removed.
const PIECE: usize = 20;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_never_lands_in_files_or_output() {
    let key = unique_key();
    let server = FakeServer::start().await;
    let sandbox = Sandbox::new();
    let mut outputs = Outputs::default();
    let generate = |args: &[&str]| {
        let mut all = vec!["generate"];
        all.extend_from_slice(args);
        let mut cmd = sandbox.command(&all);
        cmd.env("OPENAI_API_KEY", &key)
            .env("OPENAI_BASE_URL", server.base_url());
        cmd
    };

    // A success, plain and streamed.
    let ok = outputs.run(
        "generate ok",
        generate(&["a lighthouse at dusk", "--json", "--no-preview"]),
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    server.push(Reply::stream(1));
    let ok = outputs.run(
        "generate stream ok",
        generate(&["a harbour", "--stream", "--partials", "1", "--json"]),
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);

    // A success whose revised prompt echoes the key: printed, and stored in the sidecar and the
    // database, so it must be redacted too.
    server.push(Reply::image().with_revised_prompt(format!("a lighthouse, said {key}")));
    let ok = outputs.run("generate revised echo", generate(&["an echo", "--json"]));
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.contains("<redacted>"), "{}", ok.stdout);

    // A non-JSON error page whose key straddles the point where the quote is cut (~200 bytes):
    // the redaction must come first.
    server.push(Reply::raw(
        400,
        "text/plain",
        format!("{}{key} and more", "x".repeat(185)),
    ));
    let r = outputs.run("generate cut page", generate(&["a cut page"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("<redacted>"), "{}", r.stderr);
    // An image URL whose key straddles the point where URLs are cut (~120 characters).
    let pad = 110usize.saturating_sub(server.base_url().len() + 7);
    let url = format!("{}/files/{}{key}.png", server.base_url(), "p".repeat(pad));
    server.push(Reply::json(
        200,
        json!({"created": 1, "data": [{"url": url}]}),
    ));
    let r = outputs.run("generate cut url", generate(&["a cut url"]));
    assert_eq!(r.code, 1);

    // 401 whose message echoes the key, as some proxies and old servers do.
    server.push(Reply::error(
        401,
        "invalid_request_error",
        "invalid_api_key",
        &format!("Incorrect API key provided: {key}. You can find your API key at https://platform.openai.com/account/api-keys."),
    ));
    let r = outputs.run("generate 401", generate(&["a refused key"]));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("did not accept the API key") && r.stderr.contains("<redacted>"),
        "{}",
        r.stderr
    );

    // 500 on every attempt: a JSON error quoting the key, then pages that print the header.
    server.push(
        Reply::error(
            500,
            "server_error",
            "internal",
            &format!("upstream said: bad bearer {key}"),
        )
        .with_header("retry-after-ms", "1"),
    );
    let page =
        format!("<html><body><h1>500</h1><pre>Authorization: Bearer {key}</pre></body></html>");
    for _ in 0..2 {
        server.push(Reply::raw(500, "text/html", page.clone()).with_header("retry-after-ms", "1"));
    }
    let r = outputs.run("generate 500", generate(&["a broken server"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("server error"), "{}", r.stderr);

    // A moderation refusal.
    server.push(Reply::moderation_blocked());
    let r = outputs.run("generate moderation", generate(&["something refused"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("refused the prompt"), "{}", r.stderr);

    // A stream error event (the fake server's own), and one whose message quotes the key.
    server.push(Reply::stream_error_event());
    let r = outputs.run(
        "generate stream error",
        generate(&["a stream that fails", "--stream"]),
    );
    assert_eq!(r.code, 1);
    let event = json!({"type": "error", "error": {"message": format!("key {key} was revoked"), "code": "server_error"}});
    server.push(Reply::raw(
        200,
        "text/event-stream",
        format!("event: error\ndata: {event}\n\n"),
    ));
    let r = outputs.run(
        "generate stream error echo",
        generate(&["a stream that echoes", "--stream"]),
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("<redacted>"), "{}", r.stderr);

    // A download URL that carries the key (and 404s).
    let url = format!("{}/files/missing.png?key={key}", server.base_url());
    server.push(Reply::json(
        200,
        json!({"created": 1, "data": [{"url": url}]}),
    ));
    let r = outputs.run("generate url with key", generate(&["a url with a key"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("404"), "{}", r.stderr);

    // Every request carried the key (so it really was in play).
    let generations = server.generation_requests();
    assert!(generations.len() >= 12);
    assert!(
        generations
            .iter()
            .all(|g| g.authorization.as_deref() == Some(format!("Bearer {key}").as_str()))
    );

    // History, every way of showing it.
    let list = outputs.run(
        "history list --json",
        sandbox.command(&["history", "list", "--json", "--limit", "100"]),
    );
    assert_eq!(list.code, 0, "{}", list.stderr);
    let ids: Vec<String> = list
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(ids.len(), 11, "{}", list.stdout);
    outputs.run("history list", sandbox.command(&["history", "list"]));
    for id in &ids {
        let r = outputs.run(
            &format!("history show {id}"),
            sandbox.command(&["history", "show", id, "--no-preview"]),
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        outputs.run(
            &format!("history show {id} --json"),
            sandbox.command(&["history", "show", id, "--json"]),
        );
    }
    outputs.run("history stats", sandbox.command(&["history", "stats"]));
    outputs.run(
        "history stats --json",
        sandbox.command(&["history", "stats", "--json"]),
    );
    let doctor = outputs.run("history doctor", sandbox.command(&["history", "doctor"]));
    assert_eq!(doctor.code, 0, "{}{}", doctor.stdout, doctor.stderr);
    let export = sandbox.root.path().join("export.jsonl");
    let r = outputs.run(
        "history export -o",
        sandbox.command(&["history", "export", "-o", export.to_str().unwrap()]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    outputs.run(
        "history export (stdout)",
        sandbox.command(&["history", "export"]),
    );
    let r = outputs.run(
        "history import (same dir)",
        sandbox.command(&["history", "import", export.to_str().unwrap()]),
    );
    assert!(
        r.stdout.contains("imported 0, already present 11"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let other = sandbox.root.path().join("data2");
    let mut cmd = sandbox.command(&["history", "import", export.to_str().unwrap()]);
    cmd.env("EASEL_DATA_DIR", &other);
    let r = outputs.run("history import (new dir)", cmd);
    assert!(r.stdout.contains("imported 11"), "{}{}", r.stdout, r.stderr);

    // Nowhere: not in any file under the sandbox (data, config, home, export, second data
    // dir), not in any output.
    let found = leaks(&key, &[sandbox.root.path()], &outputs);
    assert!(
        found.is_empty(),
        "the key (or a run of {PIECE} of its characters) was found in:\n  {}",
        found.join("\n  ")
    );
    // The search did look at real things.
    assert!(outputs.0.len() >= 40);
    let exported = std::fs::read_to_string(&export).unwrap();
    assert_eq!(exported.lines().count(), 11);
    assert!(
        exported.contains("<redacted>"),
        "the redacted failures are in the export"
    );

    // Private files: the data dir 0700, images and sidecars 0600.
    assert_eq!(mode(&sandbox.data), 0o700, "the data dir");
    let mut files = Vec::new();
    walk(&sandbox.data.join("images"), &mut files);
    let images: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
        .collect();
    assert_eq!(images.len(), 3, "{files:?}");
    for f in &files {
        assert_eq!(mode(f) & 0o077, 0, "{} is mode {:o}", f.display(), mode(f));
        assert_eq!(
            mode(f.parent().unwrap()),
            0o700,
            "{}",
            f.parent().unwrap().display()
        );
    }
    assert_eq!(mode(&sandbox.data.join("easel.lock")) & 0o077, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_in_a_readable_config_file_warns_without_showing_it() {
    let key = unique_key();
    let server = FakeServer::start().await;
    let sandbox = Sandbox::new();
    let mut outputs = Outputs::default();
    let file = sandbox.config_file();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        format!(
            "[providers.openai]\napi_key = \"{key}\"\nbase_url = \"{}\"\n",
            server.base_url()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();

    let r = outputs.run(
        "generate (0644)",
        sandbox.command(&["generate", "a key from the file", "--json"]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("warning") && r.stderr.contains("chmod 600"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(file.to_str().unwrap()),
        "the warning names the file: {}",
        r.stderr
    );
    assert_eq!(
        server.last_request().unwrap().authorization.as_deref(),
        Some(format!("Bearer {key}").as_str()),
        "the key from the file was used"
    );
    let r = outputs.run("config path (0644)", sandbox.command(&["config", "path"]));
    assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);
    let r = outputs.run("history list (0644)", sandbox.command(&["history", "list"]));
    assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = outputs.run(
        "generate (0600)",
        sandbox.command(&["generate", "now private", "--json"]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !r.stderr.contains("chmod"),
        "no warning once private: {}",
        r.stderr
    );

    // The key is in the config file itself, by the user's choice: search everything else.
    let found = leaks(&key, &[&sandbox.data, &sandbox.home], &outputs);
    assert!(
        found.is_empty(),
        "the key was found in:\n  {}",
        found.join("\n  ")
    );
    assert_eq!(mode(&sandbox.data), 0o700);
}
