//! End-to-end tests of the `easel` binary: `generate` on the offline demo backend and against the
//! in-process fake Images server, the exit codes and messages of its failures, and the `config`
//! and `models` commands. Every test runs the real binary in its own temporary HOME, config and
//! data folders, with an environment cleared of OPENAI_* variables.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use support::fake_server::{FakeServer, Reply};
use support::sandbox::Sandbox;

const BIN: &str = env!("CARGO_BIN_EXE_easel");

/// A private HOME, config folder and data folder for one test.
impl Sandbox {
    /// No config file at all.
    fn bare() -> Sandbox {
        Sandbox::folders()
    }

    /// A config file that makes the demo backend quick.
    fn new() -> Sandbox {
        let s = Sandbox::bare();
        s.write_config("[demo]\nlatency_ms = 50\n");
        s
    }

    fn write_config(&self, text: &str) {
        let file = self.config_file();
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }

    /// `program` with a clean environment: no OPENAI_*, no EASEL_* besides the data dir.
    fn command_for(&self, program: &str) -> Command {
        self.clean_command(program)
    }

    /// The binary with a clean environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.command_for(BIN);
        cmd.args(args);
        cmd
    }

    /// The binary pointed at `server` with `key`.
    fn command_with_key(&self, server: &FakeServer, key: &str, args: &[&str]) -> Command {
        let mut cmd = self.command(args);
        cmd.env("OPENAI_BASE_URL", server.base_url())
            .env("OPENAI_API_KEY", key);
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::of(self.command(args))
    }

    /// Every file under the sandbox (home, config and data folders).
    fn all_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(self.root.path(), &mut out);
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// What one run of the binary did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    raw_stdout: Vec<u8>,
    raw_stderr: Vec<u8>,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("code", &self.code)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}

impl Run {
    fn from_output(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().expect("exited, not killed by a signal"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            raw_stdout: out.stdout,
            raw_stderr: out.stderr,
        }
    }

    fn of(mut cmd: Command) -> Run {
        Run::from_output(cmd.output().expect("run easel"))
    }

    /// Run with `input` on standard input.
    fn with_stdin(mut cmd: Command, input: &[u8]) -> Run {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn easel");
        child.stdin.take().unwrap().write_all(input).unwrap();
        Run::from_output(child.wait_with_output().unwrap())
    }

    /// From an async test: the server keeps running on the runtime's other threads.
    async fn of_async(cmd: Command) -> Run {
        tokio::task::spawn_blocking(move || Run::of(cmd))
            .await
            .unwrap()
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.stdout.lines().map(PathBuf::from).collect()
    }

    fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "exit code; the run was {self:#?}");
        self
    }
}

fn unique_key() -> String {
    format!(
        "sk-proj-easeltest{:016x}{:016x}",
        fastrand::u64(..),
        fastrand::u64(..)
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn sidecar(image: &Path) -> Value {
    let text = std::fs::read(image.with_extension("json")).expect("sidecar beside the image");
    serde_json::from_slice(&text).expect("sidecar is JSON")
}

/// A PNG of random pixels (so it does not compress much).
fn noise_png(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let img = image::RgbImage::from_fn(width, height, |_, _| {
        image::Rgb([rng.u8(..), rng.u8(..), rng.u8(..)])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A GPT-shaped answer carrying exactly these images.
fn images_answer(images: &[&[u8]]) -> Reply {
    let data: Vec<Value> = images
        .iter()
        .map(|b| json!({ "b64_json": STANDARD.encode(b) }))
        .collect();
    let body = json!({ "created": 1_790_000_000, "data": data, "output_format": "png" });
    Reply::raw(200, "application/json", body.to_string())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// The demo backend
// ---------------------------------------------------------------------------------------------

#[test]
fn demo_without_key_saves_labelled_images() {
    let s = Sandbox::new();
    let prompt = "a lighthouse at dusk";
    let run = s.run(&["generate", "--size", "256x256", prompt]);
    run.expect_code(0);
    assert!(
        run.stderr.contains("demo"),
        "stderr should mention the demo: {}",
        run.stderr
    );
    let paths = run.paths();
    assert_eq!(paths.len(), 1, "one path per image: {:?}", run.stdout);
    let path = &paths[0];
    assert!(path.is_absolute(), "{path:?}");
    assert!(path.starts_with(&s.data), "{path:?} is in the data dir");
    let img = image::open(path).expect("the file decodes as an image");
    assert_eq!((img.width(), img.height()), (256, 256));
    let meta = sidecar(path);
    assert_eq!(meta["demo"], true, "{meta:#}");
    assert_eq!(meta["backend"], "demo", "{meta:#}");
    assert_eq!(meta["prompt"], prompt, "{meta:#}");
    assert_eq!(
        meta["image"]["sha256"],
        sha256_hex(&std::fs::read(path).unwrap())
    );
}

#[test]
fn demo_json_lines_match_the_files() {
    let s = Sandbox::new();
    let run = s.run(&[
        "generate",
        "-n",
        "2",
        "--json",
        "--size",
        "256x256",
        "two foxes",
    ]);
    run.expect_code(0);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    let mut seen = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let path = PathBuf::from(line["path"].as_str().expect("path"));
        let bytes = std::fs::read(&path).expect("the file exists");
        assert_eq!(line["sha256"], sha256_hex(&bytes), "{line}");
        assert_eq!(line["bytes"], bytes.len() as u64, "{line}");
        assert_eq!(line["width"], 256, "{line}");
        assert_eq!(line["height"], 256, "{line}");
        assert_eq!(line["index"], i as u64 + 1, "{line}");
        assert_eq!(line["demo"], true, "{line}");
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (256, 256));
        assert_eq!(sidecar(&path)["demo"], true);
        seen.push(path);
    }
    assert_ne!(seen[0], seen[1]);
    assert_eq!(lines[0]["id"], lines[1]["id"], "one generation");
}

#[test]
fn prompt_from_stdin_lands_unchanged() {
    let s = Sandbox::new();
    let prompt = "夜晚的海边小镇";
    let run = Run::with_stdin(
        s.command(&["generate", "--size", "256x256", "-"]),
        format!("{prompt}\n").as_bytes(),
    );
    run.expect_code(0);
    let paths = run.paths();
    assert_eq!(paths.len(), 1, "{}", run.stdout);
    let meta = sidecar(&paths[0]);
    assert_eq!(meta["prompt"], prompt, "{meta:#}");
    assert_eq!(meta["request"]["prompt"], prompt, "{meta:#}");
}

#[test]
fn out_dir_that_cannot_be_created_fails_cleanly() {
    let s = Sandbox::new();
    let blocker = s.root.path().join("not-a-folder");
    std::fs::write(&blocker, b"a regular file").unwrap();
    let out = blocker.join("images");
    let run = s.run(&[
        "generate",
        "--size",
        "256x256",
        "--out",
        out.to_str().unwrap(),
        "a cat",
    ]);
    run.expect_code(1);
    assert!(run.stdout.is_empty(), "nothing saved: {}", run.stdout);
    // Refused before generating (issue 9 item 6): nothing made, nothing in history.
    assert!(
        run.stderr.contains("not sent: cannot save into --out"),
        "says why nothing was made: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&*out.to_string_lossy()),
        "names the folder: {}",
        run.stderr
    );
    assert!(!out.exists());
    assert!(!s.data.join("images").exists());
}

// ---------------------------------------------------------------------------------------------
// OpenAI (the fake server)
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_request_carries_key_and_saves_exact_bytes() {
    let server = FakeServer::start().await;
    let png = noise_png(48, 32, 7);
    server.push(images_answer(&[&png]));
    let s = Sandbox::new();
    let key = unique_key();
    let prompt = "a red bicycle leaning on a blue wall";
    let run = Run::of_async(s.command_with_key(&server, &key, &["generate", prompt])).await;
    run.expect_code(0);

    let requests = server.generation_requests();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.path, "/v1/images/generations");
    assert_eq!(
        req.authorization.as_deref(),
        Some(format!("Bearer {key}").as_str())
    );
    assert_eq!(req.body["model"], "gpt-image-2", "{}", req.body);
    assert_eq!(req.body["prompt"], prompt, "{}", req.body);

    let paths = run.paths();
    assert_eq!(paths.len(), 1, "{}", run.stdout);
    assert_eq!(
        std::fs::read(&paths[0]).unwrap(),
        png,
        "saved bytes are the bytes sent"
    );
    assert_eq!(paths[0].extension().unwrap(), "png");
    let meta = sidecar(&paths[0]);
    assert_eq!(meta["demo"], false, "{meta:#}");
    assert_eq!(meta["backend"], "openai-compatible", "{meta:#}");
    assert_eq!(meta["prompt"], prompt);
    assert_eq!(meta["request_id"], format!("req_{}", req.id), "{meta:#}");
    assert_eq!(meta["image"]["sha256"], sha256_hex(&png));
    assert!(
        !run.stderr.to_lowercase().contains("demo"),
        "no demo notice: {}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_is_never_written_or_printed() {
    let server = FakeServer::start().await;
    server.push(Reply::unauthorized());
    server.push(Reply::image());
    let s = Sandbox::new();
    let key = unique_key();

    let failed =
        Run::of_async(s.command_with_key(&server, &key, &["generate", "a quiet harbour"])).await;
    failed.expect_code(1);
    let ok = Run::of_async(s.command_with_key(
        &server,
        &key,
        &["generate", "--json", "a quiet harbour"],
    ))
    .await;
    ok.expect_code(0);
    assert_eq!(server.generation_count(), 2);

    for run in [&failed, &ok] {
        assert!(
            !contains(&run.raw_stdout, key.as_bytes()),
            "key on stdout: {run:#?}"
        );
        assert!(
            !contains(&run.raw_stderr, key.as_bytes()),
            "key on stderr: {run:#?}"
        );
    }
    let files = s.all_files();
    assert!(
        files.iter().any(|f| f.starts_with(&s.data)),
        "the success saved something: {files:?}"
    );
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !contains(&bytes, key.as_bytes()),
            "{} holds the key",
            file.display()
        );
        // Not even its distinctive tail (a partial echo).
        assert!(
            !contains(&bytes, &key.as_bytes()[key.len() - 16..]),
            "{}",
            file.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_refusal_says_so_with_the_request_id() {
    let server = FakeServer::start().await;
    server.push(Reply::moderation_blocked());
    let s = Sandbox::new();
    let run = Run::of_async(s.command_with_key(
        &server,
        &unique_key(),
        &["generate", "something refused"],
    ))
    .await;
    run.expect_code(1);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("OpenAI refused the prompt (moderation_blocked)"),
        "{}",
        run.stderr
    );
    let requests = server.generation_requests();
    assert_eq!(requests.len(), 1, "a refusal is not retried");
    let id = format!("req_{}", requests[0].id);
    assert!(
        run.stderr.contains(&id),
        "names request {id}: {}",
        run.stderr
    );
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_hints_at_the_key_variable() {
    let server = FakeServer::start().await;
    server.push(Reply::unauthorized());
    let s = Sandbox::new();
    let run =
        Run::of_async(s.command_with_key(&server, &unique_key(), &["generate", "a tree"])).await;
    run.expect_code(1);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains("did not accept the API key"),
        "{}",
        run.stderr
    );
    let hint = run
        .stderr
        .lines()
        .find(|l| l.trim_start().starts_with("hint:"))
        .unwrap_or_else(|| panic!("a hint line: {}", run.stderr));
    assert!(hint.contains("OPENAI_API_KEY"), "{hint}");
    assert_eq!(server.generation_count(), 1, "401 is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_are_refused_before_sending() {
    let server = FakeServer::start().await;
    let s = Sandbox::new();
    let key = unique_key();
    let cases: &[(&[&str], &str)] = &[
        (&["generate", "--style", "vivid", "a boat"], "style"),
        (&["generate", "--size", "1000x1000", "a boat"], "size"),
        (
            &["generate", "--model", "dall-e-3", "-n", "2", "a boat"],
            "n",
        ),
    ];
    for (args, field) in cases {
        let run = Run::of_async(s.command_with_key(&server, &key, args)).await;
        run.expect_code(1);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        let first = run
            .stderr
            .lines()
            .find(|l| l.starts_with("easel: not sent"))
            .unwrap_or_else(|| panic!("{args:?}: {}", run.stderr));
        assert!(
            first.contains(&format!("not sent: {field}:")),
            "{args:?} names {field}: {first}"
        );
        assert_eq!(
            server.request_count(),
            0,
            "{args:?}: the server got a request"
        );
    }
    assert!(!s.data.join("images").exists());
}

#[test]
fn explicit_openai_without_key_says_what_to_export() {
    let s = Sandbox::new();
    let run = s.run(&["--provider", "openai", "generate", "a boat"]);
    run.expect_code(1);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains("export OPENAI_API_KEY"),
        "{}",
        run.stderr
    );
    assert!(!s.data.join("images").exists(), "no demo fallback");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_error_text_cannot_drive_the_terminal() {
    let server = FakeServer::start().await;
    let evil = "boom\u{1b}]52;c;aGVsbG8=\u{7} then \u{1b}[2J cleared\u{9b}31m";
    server.push(Reply::json(
        400,
        json!({ "error": {
            "message": evil,
            "type": "invalid\u{1b}[31m_request",
            "param": "size\u{7}",
            "code": "bad\u{1b}]0;title\u{7}_value",
        }}),
    ));
    let s = Sandbox::new();
    let run = Run::of_async(s.command_with_key(&server, &unique_key(), &["generate", "x"])).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("boom"),
        "the message is shown: {}",
        run.stderr
    );
    assert!(run.stderr.contains("cleared"), "{}", run.stderr);
    for (name, bytes) in [("stdout", &run.raw_stdout), ("stderr", &run.raw_stderr)] {
        let text = String::from_utf8_lossy(bytes);
        assert!(!bytes.contains(&0x1b), "ESC on {name}: {text:?}");
        assert!(!bytes.contains(&0x07), "BEL on {name}: {text:?}");
        assert!(!text.contains('\u{9b}'), "C1 CSI on {name}: {text:?}");
    }
}

/// Exit status 2: the server sent two images, the first is saved and the second cannot be (the
/// file size limit is below its size; SIGXFSZ is ignored so the write fails with EFBIG).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_save_exits_with_2() {
    let server = FakeServer::start().await;
    let small = noise_png(4, 4, 1);
    let big = noise_png(96, 96, 2); // about 28 KB
    assert!(small.len() < 1024 && big.len() > 16 * 1024);
    server.push(images_answer(&[&small, &big]));
    let s = Sandbox::new();
    let key = unique_key();
    // `ulimit -f` counts 512- or 1024-byte blocks depending on the shell: 12 blocks is at most
    // 12 KB, above the small image and its sidecar, below the big image.
    let mut sh = s.command_for("sh");
    sh.env("OPENAI_BASE_URL", server.base_url())
        .env("OPENAI_API_KEY", &key)
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 12 && exec \"$0\" \"$@\"")
        .arg(BIN)
        .args(["generate", "-n", "2", "--json", "two pictures"]);
    let run = Run::of_async(sh).await;
    run.expect_code(2);
    assert_eq!(server.generation_count(), 1);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "one image saved: {}", run.stdout);
    let path = PathBuf::from(lines[0]["path"].as_str().unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), small);
    assert_eq!(lines[0]["index"], 1);
    assert!(
        run.stderr.contains("could not save the image"),
        "says which save failed: {}",
        run.stderr
    );
    // Nothing half-written is left beside the saved image.
    let mut names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "the image and its sidecar only: {names:?}");
}

// ---------------------------------------------------------------------------------------------
// Config and models
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_config_names_the_file_and_line() {
    let s = Sandbox::bare();
    s.write_config("[defaults]\nmodle = 1\n");
    let run = s.run(&["generate", "a boat"]);
    run.expect_code(1);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains(&*s.config_file().to_string_lossy()),
        "names the file: {}",
        run.stderr
    );
    assert!(run.stderr.contains("line 2"), "{}", run.stderr);
    assert!(run.stderr.contains("modle"), "{}", run.stderr);
    assert!(!s.data.exists(), "nothing written");
}

#[test]
fn config_path_honours_the_environment() {
    let s = Sandbox::bare();
    let run = s.run(&["config", "path"]);
    run.expect_code(0);
    let config = s.config_file();
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("config:") && l.contains(&*config.to_string_lossy())),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("data:") && l.trim_end().ends_with(&*s.data.to_string_lossy())),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("not created yet"), "{}", run.stdout);
    assert!(!config.exists(), "`config path` creates nothing");

    // --config (and EASEL_CONFIG) name the file directly.
    let other = s.root.path().join("elsewhere.toml");
    let run = s.run(&["--config", other.to_str().unwrap(), "config", "path"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains(&*other.to_string_lossy()),
        "{}",
        run.stdout
    );
    let mut cmd = s.command(&["config", "path"]);
    cmd.env("EASEL_CONFIG", &other);
    let run = Run::of(cmd);
    run.expect_code(0);
    assert!(
        run.stdout.contains(&*other.to_string_lossy()),
        "{}",
        run.stdout
    );
}

#[test]
fn config_init_writes_a_file_that_parses_and_keeps_it() {
    let s = Sandbox::bare();
    let config = s.config_file();
    let run = s.run(&["config", "init"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains(&*config.to_string_lossy()),
        "{}",
        run.stdout
    );
    let written = std::fs::read_to_string(&config).expect("config written");
    assert!(written.contains("[defaults]"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&config).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
    }

    // It parses: `config path` loads it and no longer says it is missing.
    let run = s.run(&["config", "path"]);
    run.expect_code(0);
    assert!(!run.stdout.contains("not created yet"), "{}", run.stdout);
    assert!(run.stderr.is_empty(), "{}", run.stderr);

    // A second init without --force refuses and leaves the file alone.
    std::fs::write(&config, format!("{written}\n# mine\n")).unwrap();
    let run = s.run(&["config", "init"]);
    run.expect_code(1);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .ends_with("# mine\n")
    );

    let run = s.run(&["config", "init", "--force"]);
    run.expect_code(0);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), written);
}

#[test]
fn models_lists_the_catalogue() {
    let s = Sandbox::bare();
    let run = s.run(&["models"]);
    run.expect_code(0);
    let names: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains(&"gpt-image-2"), "{}", run.stdout);
    assert!(names.contains(&"dall-e-3"), "{}", run.stdout);

    let run = s.run(&["models", "--json"]);
    run.expect_code(0);
    let names: Vec<String> = run
        .stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["name"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(names.iter().any(|n| n == "gpt-image-2"), "{names:?}");
    assert!(names.iter().any(|n| n == "dall-e-3"), "{names:?}");
}

/// `config path` and `config init --force` must work while the file is broken (the advice itself
/// never suggests --force, which replaces the whole file).
#[test]
fn broken_config_can_be_found_and_replaced() {
    let s = Sandbox::bare();
    s.write_config("[defaults]\nmodle = 1\n");
    let config = s.config_file();

    let run = s.run(&["generate", "a boat"]);
    run.expect_code(1);
    // The advice never wipes the file (issue 10 item 15).
    assert!(!run.stderr.contains("--force"), "{}", run.stderr);
    assert!(run.stderr.contains("config init"), "{}", run.stderr);

    let run = s.run(&["config", "path"]);
    run.expect_code(1);
    assert!(
        run.stdout.contains(&*config.to_string_lossy()),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&*s.data.to_string_lossy()),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("line 2"), "{}", run.stderr);

    let run = s.run(&["config", "init"]);
    run.expect_code(1);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);

    s.run(&["config", "init", "--force"]).expect_code(0);
    s.run(&["config", "path"]).expect_code(0);
    s.run(&["models"]).expect_code(0);
}

/// A relative --out is relative to the working directory, and the printed path is where the
/// file really is.
#[test]
fn relative_out_dir_prints_where_the_file_is() {
    let s = Sandbox::new();
    let cwd = s.root.path().join("work");
    std::fs::create_dir_all(&cwd).unwrap();
    let mut cmd = s.command(&["generate", "--size", "256x256", "--out", "shots", "a cat"]);
    cmd.current_dir(&cwd);
    let run = Run::of(cmd);
    run.expect_code(0);
    let paths = run.paths();
    assert_eq!(paths.len(), 1, "{}", run.stdout);
    assert!(paths[0].is_absolute(), "{:?}", paths[0]);
    assert!(paths[0].starts_with(cwd.join("shots")), "{:?}", paths[0]);
    assert!(paths[0].is_file(), "{:?} exists", paths[0]);
    assert_eq!(sidecar(&paths[0])["demo"], true);
}

// ---------------------------------------------------------------------------------------------
// --out is checked before anything is sent (issue 9 item 6)
// ---------------------------------------------------------------------------------------------

/// Each of these folders cannot take an image: the request must not reach the server (it would
/// be paid for and thrown away), and the message must be about --out, not the data folder.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_out_folder_is_refused_before_sending() {
    let server = FakeServer::start().await;
    for _ in 0..5 {
        server.push(Reply::image());
    }
    let s = Sandbox::new();
    let key = unique_key();
    let file = s.root.path().join("a-file");
    std::fs::write(&file, b"not a folder").unwrap();
    let cases: Vec<PathBuf> = vec![
        file.clone(),
        file.join("under"),
        PathBuf::from("/proc/self"),
        PathBuf::from("/dev/full"),
    ];
    for out in &cases {
        let run = Run::of_async(s.command_with_key(
            &server,
            &key,
            &["generate", "--out", out.to_str().unwrap(), "a cat"],
        ))
        .await;
        run.expect_code(1);
        assert!(run.stdout.is_empty(), "{out:?}: {}", run.stdout);
        assert_eq!(
            server.request_count(),
            0,
            "{out:?}: the request reached the server: {run:#?}"
        );
        assert!(
            run.stderr.contains("not sent") && run.stderr.contains("--out"),
            "{out:?}: says it was not sent because of --out: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains(&*out.to_string_lossy()),
            "{out:?}: names the folder: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("EASEL_DATA_DIR") && !run.stderr.contains("data folder"),
            "{out:?}: does not blame the data folder: {}",
            run.stderr
        );
    }
    // A read-only mount, made in a private user and mount namespace (where unshare works).
    let ro = s.root.path().join("read-only");
    std::fs::create_dir(&ro).unwrap();
    let unshare_works = Command::new("unshare")
        .args(["-rm", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|st| st.success());
    if unshare_works {
        let mut cmd = s.command_for("unshare");
        cmd.env("OPENAI_BASE_URL", server.base_url())
            .env("OPENAI_API_KEY", &key)
            .args([
                "-rm",
                "sh",
                "-c",
                "mount -t tmpfs -o ro tmpfs \"$0\" && exec \"$@\"",
            ])
            .arg(&ro)
            .arg(BIN)
            .args(["generate", "--out"])
            .arg(&ro)
            .arg("a cat");
        let run = Run::of_async(cmd).await;
        run.expect_code(1);
        assert!(run.stderr.contains("read-only"), "{}", run.stderr);
        assert_eq!(server.request_count(), 0, "read-only mount: {run:#?}");
    } else {
        eprintln!("unshare -rm is not available here: the read-only mount case is skipped");
    }
    assert!(!s.data.join("images").exists(), "nothing saved anywhere");
}

// ---------------------------------------------------------------------------------------------
// easel view (issue 9 item 10)
// ---------------------------------------------------------------------------------------------

#[cfg(unix)]
#[test]
fn view_refuses_devices_and_oversized_files() {
    let s = Sandbox::bare();
    let zero = s.root.path().join("zero.png");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let run = s.run(&["view", zero.to_str().unwrap()]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("not a regular file"),
        "refuses a device: {}",
        run.stderr
    );
    // A sparse file just over the cap: refused by its size, without reading it.
    let big = s.root.path().join("huge.png");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(64 * 1024 * 1024 + 1).unwrap();
    drop(f);
    let run = s.run(&["view", big.to_str().unwrap()]);
    run.expect_code(1);
    assert!(run.stderr.contains("too large"), "{}", run.stderr);
    let folder = s.root.path().join("folder.png");
    std::fs::create_dir(&folder).unwrap();
    let run = s.run(&["view", folder.to_str().unwrap()]);
    run.expect_code(1);
    assert!(run.stderr.contains("not a regular file"), "{}", run.stderr);
}

#[test]
fn view_detects_the_format_from_the_bytes() {
    let s = Sandbox::bare();
    let img = image::RgbImage::from_pixel(8, 8, image::Rgb([200, 30, 30]));
    let mut jpeg = std::io::Cursor::new(Vec::new());
    img.write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
    let named_png = s.root.path().join("really-a-jpeg.png");
    std::fs::write(&named_png, jpeg.into_inner()).unwrap();
    let run = s.run(&[
        "view",
        "--cols",
        "8",
        "--rows",
        "4",
        named_png.to_str().unwrap(),
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout.lines().count(), 4, "{run:#?}");
    let text = s.root.path().join("notes.png");
    std::fs::write(&text, b"just some text, not a picture").unwrap();
    let run = s.run(&["view", text.to_str().unwrap()]);
    run.expect_code(1);
    assert!(run.stderr.contains("not a picture"), "{}", run.stderr);
}

// ---------------------------------------------------------------------------------------------
// The catalogue: shut-down models, new models, costs (issue 10 items 5, 6, 7)
// ---------------------------------------------------------------------------------------------

#[test]
fn models_mark_shut_down_models_with_their_date() {
    let s = Sandbox::bare();
    let run = s.run(&["models"]);
    run.expect_code(0);
    let line_of = |name: &str| {
        run.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} listed: {}", run.stdout))
            .to_string()
    };
    assert!(line_of("dall-e-3").contains("shut down (2026-05-12)"));
    assert!(line_of("gpt-image-1").contains("shut down (2026-10-23)"));
    for m in [
        "gpt-image-1.5",
        "gpt-image-1.5-2025-12-16",
        "gpt-image-1-mini",
        "chatgpt-image-latest",
    ] {
        assert!(line_of(m).contains("shut down (2026-12-01)"), "{m}");
    }
    for m in [
        "gpt-image-2",
        "gpt-image-2.5-flare",
        "gpt-image-2.5-sunburst",
    ] {
        assert!(!line_of(m).contains("shut"), "{m} is not shut down");
    }
    let run = s.run(&["models", "--json"]);
    run.expect_code(0);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let d3 = lines.iter().find(|v| v["name"] == "dall-e-3").unwrap();
    assert_eq!(d3["shutdown"], "2026-05-12", "{d3}");
    let flare = lines
        .iter()
        .find(|v| v["name"] == "gpt-image-2.5-flare-2026-09-08")
        .unwrap();
    let q: Vec<&str> = flare["qualities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(q.contains(&"xhigh") && q.contains(&"max"), "{q:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shut_down_model_warns_on_openai_but_not_on_a_compatible_profile() {
    let server = FakeServer::start().await;
    server.push(Reply::image());
    server.push(Reply::image());
    let s = Sandbox::new();
    let key = unique_key();
    let run = Run::of_async(s.command_with_key(
        &server,
        &key,
        &["generate", "--model", "gpt-image-1.5", "a cat"],
    ))
    .await;
    let warning = run
        .stderr
        .lines()
        .find(|l| l.contains("shut down"))
        .unwrap_or_else(|| panic!("a shutdown warning: {run:#?}"));
    assert!(warning.contains("2026-12-01"), "{warning}");
    assert!(
        warning.contains("gpt-image-2"),
        "names the successor: {warning}"
    );

    s.write_config(&format!(
        "[demo]\nlatency_ms = 50\n[providers.local]\nbase_url = \"{}\"\napi_key_env = \"LOCAL_KEY\"\n",
        server.base_url()
    ));
    let mut cmd = s.command(&[
        "--provider",
        "local",
        "generate",
        "--model",
        "gpt-image-1.5",
        "a cat",
    ]);
    cmd.env("LOCAL_KEY", &key);
    let run = Run::of_async(cmd).await;
    run.expect_code(0);
    assert!(
        !run.stderr.contains("shut"),
        "a compatible server may still serve it: {}",
        run.stderr
    );
    assert_eq!(server.generation_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_comes_from_usage_or_is_labelled_an_estimate() {
    let server = FakeServer::start().await;
    // The fake reports 4,160 output tokens for high quality: the cost must follow it.
    server.push(Reply::image());
    server.push(Reply::image().without_usage());
    let s = Sandbox::new();
    let key = unique_key();
    let args = [
        "generate",
        "--json",
        "-q",
        "high",
        "-s",
        "1024x1024",
        "a cat",
    ];
    let first = Run::of_async(s.command_with_key(&server, &key, &args)).await;
    first.expect_code(0);
    let second = Run::of_async(s.command_with_key(&server, &key, &args)).await;
    second.expect_code(0);
    let one: Value = serde_json::from_str(first.stdout.trim()).unwrap();
    let two: Value = serde_json::from_str(second.stdout.trim()).unwrap();
    assert_eq!(one["cost_basis"], "usage", "{one}");
    let usage_cost = one["cost_usd"].as_f64().unwrap();
    assert!((usage_cost - 4160.0 * 30.0 / 1e6).abs() < 0.0005, "{one}");
    assert_eq!(two["cost_basis"], "estimate", "{two}");
    let estimate = two["estimated_cost_usd"].as_f64().unwrap();
    assert!((estimate - 0.211).abs() < 0.001, "{two}");
}

// ---------------------------------------------------------------------------------------------
// --dry-run (issue 10 item 7)
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_checks_and_prices_without_sending() {
    let server = FakeServer::start().await;
    let s = Sandbox::new();
    let key = unique_key();
    let run = Run::of_async(s.command_with_key(
        &server,
        &key,
        &[
            "generate",
            "--dry-run",
            "--json",
            "-q",
            "high",
            "-s",
            "1024x1024",
            "-n",
            "2",
            "a cat",
        ],
    ))
    .await;
    run.expect_code(0);
    let v: Value = serde_json::from_str(run.stdout.trim()).expect("one JSON object");
    assert_eq!(v["body"]["model"], "gpt-image-2", "{v}");
    assert_eq!(v["body"]["quality"], "high", "{v}");
    assert_eq!(v["body"]["n"], 2, "{v}");
    assert_eq!(v["provider"], "openai", "{v}");
    assert!(
        v["url"]
            .as_str()
            .unwrap()
            .ends_with("/v1/images/generations"),
        "{v}"
    );
    let cost = v["estimated_cost_usd"].as_f64().unwrap();
    assert!((cost - 2.0 * 0.211).abs() < 0.002, "{v}");
    assert!(!run.stdout.contains(&key) && !run.stderr.contains(&key));

    // Text: the body and the estimate, labelled as one.
    let run = Run::of_async(s.command_with_key(
        &server,
        &key,
        &["generate", "--dry-run", "-q", "high", "a cat"],
    ))
    .await;
    run.expect_code(0);
    assert!(run.stdout.contains("\"quality\": \"high\""), "{run:#?}");
    assert!(run.stdout.contains("estimate"), "{run:#?}");

    // A request that fails the checks fails the dry run too.
    let run = Run::of_async(s.command_with_key(
        &server,
        &key,
        &["generate", "--dry-run", "-q", "xhigh", "a cat"],
    ))
    .await;
    run.expect_code(1);
    assert!(run.stderr.contains("quality"), "{}", run.stderr);

    assert_eq!(server.request_count(), 0, "a dry run sends nothing");
    assert!(!s.data.exists(), "a dry run writes nothing");
}

// ---------------------------------------------------------------------------------------------
// Rough edges (issue 10 items 15 and 16)
// ---------------------------------------------------------------------------------------------

#[test]
fn demo_notice_once_and_quiet_silences_it() {
    let s = Sandbox::new();
    let run = s.run(&["generate", "-s", "256x256", "a cat"]);
    run.expect_code(0);
    assert_eq!(
        run.stderr.matches("demo").count(),
        1,
        "the demo notice once: {}",
        run.stderr
    );
    let run = s.run(&["generate", "--quiet", "-s", "256x256", "a cat"]);
    run.expect_code(0);
    assert!(run.stderr.is_empty(), "--quiet: {}", run.stderr);
    assert_eq!(run.paths().len(), 1, "{}", run.stdout);
    // Errors still show.
    let run = s.run(&["generate", "--quiet", "-s", "1000x1000", "a cat"]);
    run.expect_code(1);
    assert!(run.stderr.contains("not sent"), "{}", run.stderr);
}

#[test]
fn models_hint_only_where_it_helps() {
    let s = Sandbox::new();
    let run = s.run(&["generate", "-q", "hd", "a cat"]);
    run.expect_code(1);
    assert!(run.stderr.contains("easel models"), "{}", run.stderr);
    for args in [
        &["generate", "   "][..],
        &["generate", "--partials", "2", "-n", "2", "a cat"][..],
        &["generate", "--compression", "50", "a cat"][..],
    ] {
        let run = s.run(args);
        run.expect_code(1);
        assert!(run.stderr.contains("not sent"), "{args:?}: {}", run.stderr);
        assert!(
            !run.stderr.contains("easel models"),
            "{args:?}: the catalogue does not help here: {}",
            run.stderr
        );
    }
}

#[test]
fn config_errors_never_suggest_wiping_the_file() {
    let s = Sandbox::bare();
    s.write_config("[defaults]\nmodle = 1\n");
    for args in [
        &["generate", "a boat"][..],
        &["models"][..],
        &["config", "path"][..],
    ] {
        let run = s.run(args);
        run.expect_code(1);
        assert!(run.stderr.contains("line 2"), "{args:?}: {}", run.stderr);
        assert!(
            !run.stderr.contains("--force"),
            "{args:?}: never suggests replacing the file: {}",
            run.stderr
        );
    }
}

#[test]
fn completions_man_page_and_help() {
    let s = Sandbox::bare();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = s.run(&["completions", shell]);
        run.expect_code(0);
        assert!(run.stdout.contains("easel"), "{shell}");
        assert!(run.stdout.contains("generate"), "{shell}");
        assert!(run.stdout.contains("dry-run"), "{shell}: subcommand flags");
    }
    s.run(&["completions", "tcsh"]).expect_code(64);
    let run = s.run(&["man"]);
    run.expect_code(0);
    assert!(
        run.stdout.starts_with(".ie") || run.stdout.contains(".TH"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("generate"));
    let pages = s.root.path().join("man1");
    std::fs::create_dir(&pages).unwrap();
    s.run(&["man", "--dir", pages.to_str().unwrap()])
        .expect_code(0);
    for page in [
        "easel.1",
        "easel-generate.1",
        "easel-history.1",
        "easel-completions.1",
    ] {
        let text = std::fs::read_to_string(pages.join(page)).unwrap_or_default();
        assert!(text.contains(".TH"), "{page}: {text:?}");
    }
    let run = s.run(&["--help"]);
    run.expect_code(0);
    for needle in ["Examples", "easel generate", "Exit status", "64"] {
        assert!(
            run.stdout.contains(needle),
            "--help lacks {needle}: {}",
            run.stdout
        );
    }
    assert!(!s.data.exists());
}

/// Images beyond `n` are dropped, and the command says so (not only the sidecar).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_beyond_n_are_dropped_and_said() {
    let server = FakeServer::start().await;
    let png = noise_png(16, 16, 3);
    server.push(images_answer(&[&png, &png, &png, &png]));
    let s = Sandbox::new();
    let key = unique_key();
    let run = Run::of_async(s.command_with_key(&server, &key, &["generate", "four for one"])).await;
    run.expect_code(0);
    assert_eq!(run.paths().len(), 1, "{}", run.stdout);
    assert!(
        run.stderr.contains("4 images where 1 was asked for"),
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// Runs: prompt expansion with --dry-run (issue 14)
// ---------------------------------------------------------------------------------------------

/// The JSON lines of a run's --dry-run: the jobs, then the summary.
fn run_lines(run: &Run) -> (Vec<Value>, Value) {
    let mut lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = lines.pop().expect("a summary line");
    assert_eq!(summary["summary"], true, "{summary}");
    (lines, summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_dry_run_lists_a_2x2x2_expansion_with_costs() {
    let server = FakeServer::start().await;
    let s = Sandbox::new();
    let key = unique_key();
    let args = [
        "generate",
        "--dry-run",
        "--json",
        "--axis",
        "size=1024x1024,1536x1024",
        "--axis",
        "quality=low,high",
        "a {cat|dog} on a mat",
    ];
    let run = Run::of_async(s.command_with_key(&server, &key, &args)).await;
    run.expect_code(0);
    let (jobs, summary) = run_lines(&run);
    assert_eq!(jobs.len(), 8, "{run:#?}");
    let mut seen = Vec::new();
    let mut sum = 0.0;
    for (k, job) in jobs.iter().enumerate() {
        assert_eq!(job["job"], k + 1);
        assert_eq!(job["jobs"], 8);
        assert!(job["url"].as_str().unwrap().starts_with(&server.base_url()));
        let body = &job["body"];
        let values = &job["values"];
        // The body is what the values say.
        assert_eq!(body["size"], values["axes"][0]["value"], "{job}");
        assert_eq!(body["quality"], values["axes"][1]["value"], "{job}");
        let animal = values["alternatives"][0]["value"].as_str().unwrap();
        assert_eq!(body["prompt"], format!("a {animal} on a mat"), "{job}");
        assert_eq!(values["alternatives"][0]["column"], 3);
        seen.push((
            body["prompt"].clone(),
            body["size"].clone(),
            body["quality"].clone(),
        ));
        sum += job["estimated_cost_usd"].as_f64().unwrap();
    }
    seen.sort_by_key(|v| v.0.to_string() + &v.1.to_string() + &v.2.to_string());
    seen.dedup();
    assert_eq!(seen.len(), 8, "every combination once");
    // First choice slowest, axes inside it, last axis fastest.
    assert_eq!(jobs[0]["body"]["prompt"], "a cat on a mat");
    assert_eq!(jobs[1]["body"]["quality"], "high");
    assert_eq!(jobs[2]["body"]["size"], "1536x1024");
    assert_eq!(jobs[4]["body"]["prompt"], "a dog on a mat");
    assert_eq!(summary["jobs"], 8);
    assert_eq!(summary["images"], 8);
    let total = summary["estimated_cost_usd"].as_f64().unwrap();
    assert!((total - sum).abs() < 1e-5, "{summary}");
    // 2 × (0.006 + 0.211 + 0.009 + 0.316) by the catalogue, roughly.
    assert!(total > 1.0 && total < 1.2, "{summary}");

    // The text form: each job with its values and estimate, then the total.
    let text_args: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
    let run = Run::of_async(s.command_with_key(&server, &key, &text_args)).await;
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("job 8 of 8 (size=1536x1024, quality=high): a dog on a mat · ≈ $"),
        "{run:#?}"
    );
    assert!(
        run.stdout
            .contains("total: 8 jobs · 8 images · estimated cost ≈ $"),
        "{run:#?}"
    );
    assert!(run.stdout.contains("nothing was sent (--dry-run)"));

    // --pick draws the same jobs again with the same seed.
    let pick = |seed: &'static str| {
        let mut a = args.to_vec();
        a.extend(["--pick", "3", "--seed", seed]);
        s.command_with_key(&server, &key, &a)
    };
    let one = Run::of_async(pick("7")).await;
    let two = Run::of_async(pick("7")).await;
    one.expect_code(0);
    assert_eq!(one.stdout, two.stdout);
    let (picked, summary) = run_lines(&one);
    assert_eq!(picked.len(), 3);
    assert_eq!(summary["seed"], 7);
    assert_eq!(summary["combinations"], 8);

    assert_eq!(server.request_count(), 0, "a dry run sends nothing");
    assert!(!s.data.exists(), "a dry run writes nothing");
    assert!(!run.stdout.contains(&key) && !run.stderr.contains(&key));
}

#[test]
fn run_prompts_file_and_stdin_with_repeat() {
    let s = Sandbox::new();
    let file = s.root.path().join("prompts.txt");
    std::fs::write(&file, "a lighthouse\n\n   \na {red|blue} kite\n").unwrap();
    let run = s.run(&[
        "generate",
        "--dry-run",
        "--json",
        "--repeat",
        "2",
        "--prompts",
        file.to_str().unwrap(),
    ]);
    run.expect_code(0);
    let (jobs, summary) = run_lines(&run);
    let prompts: Vec<&str> = jobs
        .iter()
        .map(|j| j["body"]["prompt"].as_str().unwrap())
        .collect();
    assert_eq!(
        prompts,
        [
            "a lighthouse",
            "a lighthouse",
            "a red kite",
            "a red kite",
            "a blue kite",
            "a blue kite"
        ]
    );
    let repeats: Vec<u64> = jobs
        .iter()
        .map(|j| j["values"]["repeat"].as_u64().unwrap())
        .collect();
    assert_eq!(repeats, [1, 2, 1, 2, 1, 2]);
    assert_eq!(jobs[2]["values"]["prompt_index"], 2);
    assert_eq!(summary["jobs"], 6);

    // `-` reads the prompts from standard input.
    let run = Run::with_stdin(
        s.command(&["generate", "--dry-run", "--json", "--prompts", "-"]),
        b"one\ntwo\n",
    );
    run.expect_code(0);
    let (jobs, _) = run_lines(&run);
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[1]["body"]["prompt"], "two");

    // A prompt and --prompts together is a usage error.
    s.run(&["generate", "--prompts", "-", "a cat"])
        .expect_code(64);
    // An empty prompts file says so.
    std::fs::write(&file, "\n\n").unwrap();
    let run = s.run(&["generate", "--dry-run", "--prompts", file.to_str().unwrap()]);
    run.expect_code(1);
    assert!(run.stderr.contains("no prompts in it"), "{run:#?}");
    assert!(!s.data.exists());
}

#[test]
fn run_wildcards_come_from_the_config_folder() {
    let s = Sandbox::new();
    let dir = s.config_home.join("easel").join("wildcards");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("animal.txt"), "# animals\nfox\n\nowl\n").unwrap();
    let run = s.run(&["generate", "--dry-run", "--json", "a __animal__ at night"]);
    run.expect_code(0);
    let (jobs, _) = run_lines(&run);
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[1]["body"]["prompt"], "a owl at night");
    assert_eq!(
        jobs[1]["values"]["wildcards"],
        json!([{"name": "animal", "column": 3, "value": "owl"}])
    );
    // One value: an ordinary single request (the plain dry-run form).
    std::fs::write(dir.join("animal.txt"), "fox\n").unwrap();
    let run = s.run(&["generate", "--dry-run", "--json", "a __animal__"]);
    run.expect_code(0);
    let v: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(v["body"]["prompt"], "a fox");
}

#[test]
fn run_errors_point_at_the_column_and_queue_nothing() {
    let s = Sandbox::new();
    let file = s.root.path().join("p.txt");
    std::fs::write(&file, "fine\nbroken {a|b\n").unwrap();
    let file_arg = file.to_str().unwrap();
    // (arguments, what stderr says)
    let table: &[(&[&str], &str)] = &[
        (
            &["a {cat|dog"],
            "not sent: the prompt, column 3: unclosed brace",
        ),
        (&["a {}"], "the prompt, column 3: empty alternative list"),
        (&["a cat}"], "the prompt, column 6: this '}' closes no '{'"),
        (
            &["{a|b} __nope__"],
            "the prompt, column 7: unknown wildcard __nope__",
        ),
        (&["--prompts", file_arg], "line 2, column 8: unclosed brace"),
        (
            &["--axis", "quality=low,,high", "x"],
            "--axis \"quality=low,,high\", column 13: empty value in the list",
        ),
        (&["--axis", "colour=red", "x"], "unknown axis \"colour\""),
        (
            &["{0|1|2|3|4|5|6|7|8|9}{0|1|2|3|4|5|6|7|8|9}{0|1|2|3|4|5|6|7|8|9}{a|b}"],
            "expands to 2000 jobs, over 1000",
        ),
        (&["--repeat", "0", "x"], "--repeat: must be at least 1"),
    ];
    for (args, message) in table {
        for dry in [true, false] {
            let mut a = vec!["generate"];
            if dry {
                a.push("--dry-run");
            }
            a.extend(args.iter());
            let run = s.run(&a);
            run.expect_code(1);
            assert!(run.stderr.contains(message), "{a:?}: {run:#?}");
            assert!(run.stderr.contains("hint:"), "{a:?}: {run:#?}");
            assert!(run.stdout.is_empty(), "{a:?}: {run:#?}");
        }
    }
    // A job the model refuses is named, with its values.
    let run = s.run(&[
        "generate",
        "--dry-run",
        "--axis",
        "quality=low,xhigh",
        "a cat",
    ]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("not sent: job 2 of 2 (quality=xhigh): a cat:"),
        "{run:#?}"
    );
    // Over 1,000 jobs passes with --allow-large.
    let run = s.run(&[
        "generate",
        "--dry-run",
        "--json",
        "--allow-large",
        "{0|1|2|3|4|5|6|7|8|9}{0|1|2|3|4|5|6|7|8|9}{0|1|2|3|4|5|6|7|8|9}{a|b}",
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout.lines().count(), 2001);
    // Escapes keep braces literal.
    let run = s.run(&["generate", "--dry-run", "--json", r"a \{cat\|dog\}"]);
    run.expect_code(0);
    let v: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(v["body"]["prompt"], "a {cat|dog}");
    assert!(!s.data.exists(), "nothing was queued or written");
}

#[test]
fn a_run_is_sent_job_by_job_in_order() {
    let s = Sandbox::new();
    let run = s.run(&[
        "generate",
        "--json",
        "--axis",
        "size=256x256,512x512",
        "a {cat|dog}",
    ]);
    run.expect_code(0);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{run:#?}");
    let got: Vec<(u64, u64, u64)> = lines
        .iter()
        .map(|l| {
            (
                l["job"].as_u64().unwrap(),
                l["width"].as_u64().unwrap(),
                l["jobs"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [(1, 256, 4), (2, 512, 4), (3, 256, 4), (4, 512, 4)]);
    assert_eq!(lines[2]["values"]["alternatives"][0]["value"], "dog");
    for l in &lines {
        assert!(Path::new(l["path"].as_str().unwrap()).is_file(), "{l}");
    }
    // A run of one job is the ordinary single request, with the axis value.
    let run = s.run(&["generate", "--json", "--axis", "size=256x256", "a {cat}"]);
    run.expect_code(0);
    let v: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(256), Some(256)),
        "{v}"
    );
    assert!(v.get("values").is_none(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_exits_2_when_some_jobs_fail_and_1_when_all_do() {
    let server = FakeServer::start().await;
    let s = Sandbox::new();
    let key = unique_key();
    server.push_all([Reply::image(), Reply::moderation_blocked(), Reply::image()]);
    let run = Run::of_async(s.command_with_key(
        &server,
        &key,
        &["generate", "--no-preview", "{one|two|three}"],
    ))
    .await;
    run.expect_code(2);
    assert_eq!(run.paths().len(), 2, "{run:#?}");
    assert!(
        run.stderr
            .contains("job 2 of 3: two: OpenAI refused the prompt"),
        "{run:#?}"
    );
    let prompts: Vec<Value> = server
        .generation_requests()
        .iter()
        .map(|r| r.body["prompt"].clone())
        .collect();
    assert_eq!(
        prompts,
        [json!("one"), json!("two"), json!("three")],
        "in order"
    );

    server.push_all([Reply::moderation_blocked(), Reply::moderation_blocked()]);
    let run =
        Run::of_async(s.command_with_key(&server, &key, &["generate", "--repeat", "2", "refused"]))
            .await;
    run.expect_code(1);
    assert!(run.stdout.is_empty(), "{run:#?}");
    assert!(
        run.stderr.contains("job 2 of 2 (repeat 2): refused:"),
        "{run:#?}"
    );
    assert!(!run.stderr.contains(&key));
}

#[test]
fn run_text_from_wildcard_files_never_reaches_the_terminal_raw() {
    let s = Sandbox::new();
    let dir = s.config_home.join("easel").join("wildcards");
    std::fs::create_dir_all(&dir).unwrap();
    // Bidi overrides are shown cleaned; control characters (ESC, CSI) refuse the file, with
    // its line, since they would be sent in prompts and stored (issue 14 QA).
    std::fs::write(dir.join("w.txt"), "red\u{202e}x\nblue\u{200f}2J\n").unwrap();
    std::fs::write(
        dir.join("c.txt"),
        "red\n\u{1b}[31mred\u{202e}x\nblue\u{9b}2J\n",
    )
    .unwrap();
    let refused = s.run(&["generate", "--dry-run", "a __c__ {cat|dog}"]);
    refused.expect_code(1);
    assert!(
        refused.stderr.contains("line 2 of") && refused.stderr.contains("(U+001B)"),
        "{refused:#?}"
    );
    for raw in [&refused.raw_stdout, &refused.raw_stderr] {
        let text = String::from_utf8_lossy(raw);
        assert!(!text.contains(['\u{1b}', '\u{202e}', '\u{9b}']), "{text:?}");
    }
    for json in [false, true] {
        let mut args = vec!["generate", "--dry-run", "a __w__ {cat|dog}"];
        if json {
            args.push("--json");
        }
        let run = s.run(&args);
        run.expect_code(0);
        for raw in [&run.raw_stdout, &run.raw_stderr] {
            let text = String::from_utf8_lossy(raw);
            assert!(
                !text.contains(['\u{1b}', '\u{202e}', '\u{9b}', '\u{200f}']),
                "json {json}: {text:?}"
            );
        }
        let last_job = if json { "\"job\":4" } else { "job 4 of 4" };
        assert!(run.stdout.contains(last_job), "{run:#?}");
    }
}

/// `--max-cost` refuses a run whose estimate is above it, before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_cost_refuses_a_run_above_it_and_sends_nothing() {
    let server = FakeServer::start().await;
    let s = Sandbox::new();
    let key = unique_key();
    let args = [
        "generate",
        "--quality",
        "high",
        "--size",
        "1024x1024",
        "--max-cost",
        "0.30",
        "a {red|blue} kite",
    ];
    let run = Run::of_async(s.command_with_key(&server, &key, &args)).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("above --max-cost $0.30"),
        "{}",
        run.stderr
    );
    assert_eq!(server.generation_requests().len(), 0);
    // One job at ≈ $0.21 is within it.
    let png = noise_png(16, 16, 5);
    server.push(images_answer(&[&png]));
    let one = [
        "generate",
        "--quality",
        "high",
        "--size",
        "1024x1024",
        "--max-cost",
        "0.30",
        "a red kite",
    ];
    let run = Run::of_async(s.command_with_key(&server, &key, &one)).await;
    run.expect_code(0);
    assert_eq!(server.generation_requests().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Edits and variations (issue 12)
// ---------------------------------------------------------------------------------------------

/// An RGBA PNG of `w`×`h` whose alpha is `alpha` everywhere, written to `dir/name`.
fn rgba_png_file(dir: &Path, name: &str, w: u32, h: u32, alpha: u8) -> PathBuf {
    let img = image::RgbaImage::from_pixel(w, h, image::Rgba([30, 120, 200, alpha]));
    let path = dir.join(name);
    img.save_with_format(&path, image::ImageFormat::Png)
        .unwrap();
    path
}

/// A picture to edit: random pixels, so that its bytes are unmistakable.
fn picture_file(dir: &Path, name: &str, seed: u64) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, noise_png(32, 32, seed)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_with_a_file_sends_multipart_and_saves_exact_bytes() {
    let server = FakeServer::start().await;
    let answer = noise_png(32, 32, 99);
    server.push(images_answer(&[&answer]));
    let s = Sandbox::new();
    let picture = picture_file(s.root.path(), "street.png", 1);
    let reference = picture_file(s.root.path(), "style.png", 2);
    let mask = rgba_png_file(s.root.path(), "mask.png", 32, 32, 0);
    let key = unique_key();
    let run = Run::of_async(s.command_with_key(
        &server,
        &key,
        &[
            "generate",
            "--image",
            picture.to_str().unwrap(),
            "--image",
            reference.to_str().unwrap(),
            "--mask",
            mask.to_str().unwrap(),
            "--input-fidelity",
            "high",
            "this street at night",
        ],
    ))
    .await;
    run.expect_code(0);
    let requests = server.generation_requests();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.path, "/v1/images/edits");
    assert_eq!(req.contract_violations(), Vec::<String>::new());
    assert_eq!(req.body["prompt"], "this street at night", "{}", req.body);
    assert_eq!(req.body["input_fidelity"], "high", "{}", req.body);
    let images = req.files("image[]");
    assert_eq!(images.len(), 2);
    assert_eq!(
        images[0].data,
        std::fs::read(&picture).unwrap(),
        "the edited picture first"
    );
    assert_eq!(images[1].data, std::fs::read(&reference).unwrap());
    assert_eq!(req.files("mask")[0].data, std::fs::read(&mask).unwrap());
    assert_eq!(
        req.authorization.as_deref(),
        Some(format!("Bearer {key}").as_str())
    );
    assert!(
        !contains(&req.raw_body, key.as_bytes()),
        "the key is not in the body"
    );
    let paths = run.paths();
    assert_eq!(paths.len(), 1, "{}", run.stdout);
    assert_eq!(std::fs::read(&paths[0]).unwrap(), answer, "exact bytes");
    let meta = sidecar(&paths[0]);
    assert_eq!(meta["endpoint"], "/images/edits", "{meta:#}");
    assert_eq!(meta["inputs"].as_array().unwrap().len(), 2, "{meta:#}");
    assert!(
        meta["mask"]["path"].as_str().unwrap().ends_with("mask.png"),
        "{meta:#}"
    );
    for f in s.all_files() {
        let text = std::fs::read(&f).unwrap();
        assert!(!contains(&text, key.as_bytes()), "key written to {f:?}");
    }
}

/// Make one image on the fake server and return (its record id, its saved bytes).
async fn one_stored_image(s: &Sandbox, server: &FakeServer, key: &str) -> (String, Vec<u8>) {
    let png = noise_png(32, 32, 5);
    server.push(images_answer(&[&png]));
    let run =
        Run::of_async(s.command_with_key(server, key, &["generate", "--json", "a harbour"])).await;
    run.expect_code(0);
    let line: Value = serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    let id = line["id"].as_str().unwrap().to_string();
    (id, png)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_with_a_history_id_sends_the_stored_bytes_and_keeps_lineage() {
    let server = FakeServer::start().await;
    let s = Sandbox::new();
    let key = unique_key();
    let (id, stored) = one_stored_image(&s, &server, &key).await;
    server.push(images_answer(&[&noise_png(32, 32, 6)]));
    let prefix = &id[..10];
    let run = Run::of_async(s.command_with_key(
        &server,
        &key,
        &[
            "generate",
            "--json",
            "--image",
            &format!("{prefix}:1"),
            "the harbour in fog",
        ],
    ))
    .await;
    run.expect_code(0);
    let requests = server.generation_requests();
    assert_eq!(requests.len(), 2);
    let edit = &requests[1];
    assert!(edit.is_edit(), "{}", edit.path);
    assert_eq!(
        edit.files("image[]")[0].data,
        stored,
        "the stored file's bytes"
    );
    let child: Value = serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    let child_id = child["id"].as_str().unwrap().to_string();
    let meta = sidecar(Path::new(child["path"].as_str().unwrap()));
    assert_eq!(meta["parents"][0]["id"], id.as_str(), "{meta:#}");
    assert_eq!(meta["parents"][0]["role"], "edited", "{meta:#}");

    // history show lists the parent with its role, and the parent lists its child.
    let show = s.run(&["history", "show", "--no-preview", &child_id]);
    show.expect_code(0);
    let parent_line = show
        .stdout
        .lines()
        .find(|l| l.starts_with("parent"))
        .unwrap_or_else(|| panic!("no parent line: {}", show.stdout));
    assert!(
        parent_line.contains(&id[..8]) && parent_line.contains("edited"),
        "{parent_line}"
    );
    let show = s.run(&["history", "show", "--no-preview", &id]);
    let child_line = show
        .stdout
        .lines()
        .find(|l| l.starts_with("child"))
        .unwrap_or_else(|| panic!("no child line: {}", show.stdout));
    assert!(
        child_line.contains(&child_id[..8]) && child_line.contains("edit of this"),
        "{child_line}"
    );
    // The record keeps the parent with its role.
    let json = s.run(&["history", "show", "--json", &child_id]);
    let record: Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(
        record["parents"],
        json!([{ "id": id, "role": "edited" }]),
        "{record:#}"
    );

    // A number past the record's images, and an unknown id: usage errors, nothing sent.
    let run = s.run(&["generate", "--image", &format!("{prefix}:2"), "x"]);
    run.expect_code(64);
    assert!(
        run.stderr.contains("has 1 image(s), not 2"),
        "{}",
        run.stderr
    );
    let run = s.run(&["generate", "--image", "abcdef0123", "x"]);
    run.expect_code(64);
    assert!(run.stderr.contains("no such file"), "{}", run.stderr);
    assert_eq!(
        server.generation_requests().len(),
        2,
        "nothing more was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_refused_before_anything_is_sent() {
    let server = FakeServer::start().await;
    let s = Sandbox::new();
    let dir = s.root.path();
    let picture = picture_file(dir, "p.png", 3);
    let small_mask = rgba_png_file(dir, "small-mask.png", 16, 16, 0);
    let opaque_mask = rgba_png_file(dir, "opaque-mask.png", 32, 32, 255);
    let text = dir.join("notes.png");
    std::fs::write(&text, "not a picture").unwrap();
    let p = picture.to_str().unwrap();
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["--image", p, "--mask", small_mask.to_str().unwrap()],
            1,
            "same size",
        ),
        (
            &["--image", p, "--mask", opaque_mask.to_str().unwrap()],
            1,
            "no fully transparent",
        ),
        (&["--image", text.to_str().unwrap()], 1, "not an image"),
        (&["--image", dir.to_str().unwrap()], 1, "is a folder"),
        (&["--image", "missing.png"], 1, "no such file"),
        (&["--image", p, "--input-fidelity", "medium"], 64, "medium"),
        (&["--mask", small_mask.to_str().unwrap()], 64, "--image"),
        (&["--image", p, "--model", "dall-e-3"], 1, "does not edit"),
        (
            &[
                "--image",
                p,
                "--model",
                "gpt-image-1-mini",
                "--input-fidelity",
                "high",
            ],
            1,
            "input_fidelity",
        ),
    ];
    for (flags, code, words) in cases {
        let mut args = vec!["generate"];
        args.extend_from_slice(flags);
        args.push("edit this");
        let run = Run::of_async(s.command_with_key(&server, &unique_key(), &args)).await;
        run.expect_code(*code);
        assert!(run.stderr.contains(words), "{flags:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{flags:?}: {}", run.stdout);
    }
    assert_eq!(server.request_count(), 0, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_is_retried_after_a_429_with_the_whole_file_each_time() {
    let server = FakeServer::start().await;
    let answer = noise_png(32, 32, 11);
    server.push_all([
        Reply::rate_limited(Some(1), None),
        images_answer(&[&answer]),
    ]);
    let s = Sandbox::new();
    let picture = picture_file(s.root.path(), "p.png", 4);
    let run = Run::of_async(s.command_with_key(
        &server,
        &unique_key(),
        &["generate", "--image", picture.to_str().unwrap(), "brighter"],
    ))
    .await;
    run.expect_code(0);
    let requests = server.generation_requests();
    assert_eq!(requests.len(), 2, "one retry");
    for r in &requests {
        assert!(r.is_edit());
        assert_eq!(r.files("image[]")[0].data, std::fs::read(&picture).unwrap());
    }
    assert_eq!(std::fs::read(&run.paths()[0]).unwrap(), answer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_refused_by_moderation_says_so() {
    let server = FakeServer::start().await;
    server.push(Reply::moderation_blocked());
    let s = Sandbox::new();
    let picture = picture_file(s.root.path(), "p.png", 8);
    let run = Run::of_async(s.command_with_key(
        &server,
        &unique_key(),
        &[
            "generate",
            "--image",
            picture.to_str().unwrap(),
            "something refused",
        ],
    ))
    .await;
    run.expect_code(1);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("refused the prompt (moderation_blocked)"),
        "{}",
        run.stderr
    );
    assert_eq!(server.generation_requests().len(), 1, "not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_edit_reads_image_edit_events() {
    let server = FakeServer::start().await;
    let s = Sandbox::new();
    let picture = picture_file(s.root.path(), "p.png", 9);
    let run = Run::of_async(s.command_with_key(
        &server,
        &unique_key(),
        &[
            "generate",
            "--json",
            "--partials",
            "2",
            "--image",
            picture.to_str().unwrap(),
            "at dawn",
        ],
    ))
    .await;
    run.expect_code(0);
    let req = &server.generation_requests()[0];
    assert!(req.is_edit());
    assert_eq!(req.body["stream"], true, "{}", req.body);
    assert_eq!(req.body["partial_images"], 2, "{}", req.body);
    assert_eq!(req.contract_violations(), Vec::<String>::new());
    let line: Value = serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    // The usage of image_edit.completed counts the input picture as image tokens.
    assert_eq!(
        line["usage"]["input_tokens_details"]["image_tokens"], 765,
        "{line:#}"
    );
}

#[test]
fn dry_run_of_an_edit_shows_the_files_and_prices_the_inputs() {
    let s = Sandbox::new();
    let picture = picture_file(s.root.path(), "p.png", 10);
    let plain = s.run(&["generate", "--dry-run", "--json", "a lighthouse"]);
    plain.expect_code(0);
    let edit = s.run(&[
        "generate",
        "--dry-run",
        "--json",
        "--image",
        picture.to_str().unwrap(),
        "a lighthouse",
    ]);
    edit.expect_code(0);
    let plain: Value = serde_json::from_str(plain.stdout.trim()).unwrap();
    let edit: Value = serde_json::from_str(edit.stdout.trim()).unwrap();
    assert_eq!(edit["endpoint"], "/images/edits", "{edit:#}");
    assert_eq!(edit["files"][0]["field"], "image[]", "{edit:#}");
    assert_eq!(edit["files"][0]["format"], "png", "{edit:#}");
    assert_eq!(edit["files"][0]["width"], 32, "{edit:#}");
    let (a, b) = (
        plain["estimated_cost_usd"].as_f64().unwrap(),
        edit["estimated_cost_usd"].as_f64().unwrap(),
    );
    assert!(b > a, "the input picture is priced: {a} vs {b}");
    assert!(
        s.all_files().iter().all(|f| !f.starts_with(&s.data)),
        "nothing written"
    );
}

#[test]
fn the_demo_edits_and_varies_offline() {
    let s = Sandbox::new();
    let picture = picture_file(s.root.path(), "p.png", 12);
    let edit = s.run(&["generate", "--image", picture.to_str().unwrap(), "snow"]);
    edit.expect_code(0);
    let meta = sidecar(&edit.paths()[0]);
    assert_eq!(meta["demo"], true, "{meta:#}");
    assert_eq!(meta["endpoint"], "/images/edits", "{meta:#}");
    let vary = s.run(&[
        "generate",
        "--variation",
        picture.to_str().unwrap(),
        "-n",
        "2",
    ]);
    vary.expect_code(0);
    assert_eq!(vary.paths().len(), 2, "{vary:?}");
    let meta = sidecar(&vary.paths()[0]);
    assert_eq!(meta["endpoint"], "/images/variations", "{meta:#}");
    assert_eq!(meta["model"], "dall-e-2", "{meta:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variations_go_only_to_providers_that_offer_them() {
    let server = FakeServer::start().await;
    let s = Sandbox::new();
    let picture = picture_file(s.root.path(), "p.png", 13);
    let p = picture.to_str().unwrap();
    // OpenAI no longer serves variations.
    let run =
        Run::of_async(s.command_with_key(&server, &unique_key(), &["generate", "--variation", p]))
            .await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("does not offer variations"),
        "{}",
        run.stderr
    );
    assert_eq!(server.request_count(), 0);
    // A DALL·E-dialect profile that says it does.
    s.write_config(&format!(
        "provider = \"local\"\n[providers.local]\nbase_url = \"{}\"\ndialect = \"dalle\"\nrequires_key = false\nvariations = true\nmodel = \"dall-e-2\"\n",
        server.base_url()
    ));
    let run = Run::of_async(s.command(&["generate", "--variation", p, "-n", "2"])).await;
    run.expect_code(0);
    let req = &server.generation_requests()[0];
    assert!(req.is_variation(), "{}", req.path);
    assert_eq!(req.contract_violations(), Vec::<String>::new());
    assert_eq!(req.files("image")[0].data, std::fs::read(&picture).unwrap());
    assert_eq!(run.paths().len(), 2, "{run:?}");
}

#[test]
fn history_tree_draws_ancestors_and_descendants_and_survives_a_deleted_parent() {
    let s = Sandbox::new();
    let first = s.run(&["generate", "--json", "-s", "256x256", "a lighthouse"]);
    first.expect_code(0);
    let root: Value = serde_json::from_str(first.stdout.lines().next().unwrap()).unwrap();
    let root = root["id"].as_str().unwrap().to_string();
    let edit = s.run(&["generate", "--json", "--image", &root[..12], "at night"]);
    edit.expect_code(0);
    let child: Value = serde_json::from_str(edit.stdout.lines().next().unwrap()).unwrap();
    let child = child["id"].as_str().unwrap().to_string();
    let vary = s.run(&["generate", "--json", "--variation", &child, "-n", "1"]);
    vary.expect_code(0);
    let grandchild: Value = serde_json::from_str(vary.stdout.lines().next().unwrap()).unwrap();
    let grandchild = grandchild["id"].as_str().unwrap().to_string();

    let tree = s.run(&["history", "tree", &child]);
    tree.expect_code(0);
    let lines: Vec<&str> = tree.stdout.lines().collect();
    assert!(lines[0].starts_with(&child[..8]), "{}", tree.stdout);
    assert_eq!(lines[1], "├─ made from", "{}", tree.stdout);
    assert!(
        lines[2].contains(&root[..8])
            && lines[2].contains("(edited)")
            && lines[2].contains("a lighthouse"),
        "{}",
        tree.stdout
    );
    assert_eq!(lines[3], "└─ made into", "{}", tree.stdout);
    assert!(
        lines[4].contains(&grandchild[..8]) && lines[4].contains("(variation of)"),
        "{}",
        tree.stdout
    );
    // From the root, the whole family hangs below.
    let tree = s.run(&["history", "tree", &root]);
    assert!(tree.stdout.contains(&grandchild[..8]), "{}", tree.stdout);
    // The parent deleted, the child keeps it as a deleted parent.
    s.run(&["history", "rm", "--yes", &root]).expect_code(0);
    let tree = s.run(&["history", "tree", &child]);
    tree.expect_code(0);
    assert!(
        tree.stdout
            .lines()
            .nth(2)
            .is_some_and(|l| l.contains(&root[..8]) && l.contains("(deleted)")),
        "{}",
        tree.stdout
    );
    let show = s.run(&["history", "show", "--no-preview", &child]);
    assert!(show.stdout.contains("(parent deleted)"), "{}", show.stdout);
}

/// `history sheet`: one PNG with a thumbnail per image, filters applied, clear refusals.
#[test]
fn history_sheet_composes_the_images_of_what_matched() {
    let s = Sandbox::new();
    s.run(&["generate", "-s", "256x256", "-n", "2", "a red fox"])
        .expect_code(0);
    s.run(&["generate", "-s", "256x256", "夜晚的海边小镇"])
        .expect_code(0);
    let out = s.root.path().join("sheet.png");
    let out_s = out.to_str().unwrap();
    let run = s.run(&[
        "history", "sheet", "--cols", "2", "--size", "128", "--out", out_s,
    ]);
    run.expect_code(0);
    assert!(run.stdout.contains("3 images"), "{}", run.stdout);
    let img = image::open(&out).unwrap();
    // Two columns of 128 px with 12 px between and around; two rows.
    assert_eq!(img.width(), 12 + 2 * (128 + 12));
    assert!(img.height() > 2 * 128, "{}", img.height());
    // A filter that matches nothing: nothing written, a clear message.
    std::fs::remove_file(&out).unwrap();
    let none = s.run(&["history", "sheet", "--tag", "nope", "--out", out_s]);
    none.expect_code(1);
    assert!(none.stderr.contains("nothing matched"), "{}", none.stderr);
    assert!(!out.exists());
    // An unknown id is named.
    let bad = s.run(&["history", "sheet", "ffffffffff", "--out", out_s]);
    bad.expect_code(1);
    assert!(bad.stderr.contains("ffffffffff"), "{}", bad.stderr);
    // A folder that does not exist.
    let nowhere = s.root.path().join("no/such/dir/sheet.png");
    let run = s.run(&["history", "sheet", "--out", nowhere.to_str().unwrap()]);
    run.expect_code(1);
    assert!(run.stderr.contains("no/such/dir"), "{}", run.stderr);
}

/// `history sheet --run`: a 2×2 run as a grid with its row and column labels; the same
/// records again reuse the sheet; a deleted job leaves a marked cell in a sheet made anew.
#[test]
fn history_sheet_of_a_run_is_a_labelled_grid_and_is_reused() {
    let s = Sandbox::new();
    let run = s.run(&[
        "generate",
        "--json",
        "--axis",
        "size=256x256,512x512",
        "a {cat|dog}",
    ]);
    run.expect_code(0);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let run_id = lines[0]["run"].as_str().unwrap().to_string();
    let out = s.root.path().join("run.png");
    let out_s = out.to_str().unwrap();
    let sheet = s.run(&[
        "history",
        "sheet",
        "--run",
        &run_id[..8],
        "--size",
        "128",
        "--out",
        out_s,
    ]);
    sheet.expect_code(0);
    assert!(sheet.stdout.contains(out_s), "{}", sheet.stdout);
    assert!(
        sheet.stdout.contains("2 rows × 2 columns"),
        "{}",
        sheet.stdout
    );
    let img = image::open(&out).unwrap().to_rgba8();
    let (w, h) = (img.width(), img.height());
    // Two columns and two rows of 128 px cells with 12 px around each, plus a margin on the
    // left for the row labels and one on top for the heading and the column labels.
    let label_w = w.checked_sub(12 + 2 * (128 + 12)).unwrap();
    let top = h.checked_sub(2 * (128 + 12)).unwrap();
    assert!((24..=160).contains(&label_w), "{w}x{h}");
    assert!((40..=120).contains(&top), "{w}x{h}");
    let background = *img.get_pixel(0, 0);
    let ink = |x0: u32, y0: u32, x1: u32, y1: u32| {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .filter(|&(x, y)| *img.get_pixel(x, y) != background)
            .count()
    };
    // The row labels ("cat", "dog") left of the cells, the column labels above them.
    assert!(
        ink(0, top, 12 + label_w - 6, top + 128) > 20,
        "no row label"
    );
    assert!(
        ink(0, top + 140, 12 + label_w - 6, top + 268) > 20,
        "no row label"
    );
    assert!(ink(12 + label_w, top - 30, w, top) > 40, "no column labels");
    // The same records: the sheet is reused, and says so.
    std::fs::remove_file(&out).unwrap();
    let again = s.run(&[
        "history", "sheet", "--run", &run_id, "--size", "128", "--out", out_s,
    ]);
    again.expect_code(0);
    assert!(again.stdout.contains("reused"), "{}", again.stdout);
    assert_eq!(image::open(&out).unwrap().to_rgba8(), img);
    // A job deleted: made anew, the same grid, its cell marked missing.
    let id = lines[1]["id"].as_str().unwrap();
    s.run(&["history", "rm", "--yes", id]).expect_code(0);
    let third = s.run(&[
        "history", "sheet", "--run", &run_id, "--size", "128", "--out", out_s,
    ]);
    third.expect_code(0);
    assert!(!third.stdout.contains("reused"), "{}", third.stdout);
    assert!(third.stdout.contains("1 missing"), "{}", third.stdout);
    let marked = image::open(&out).unwrap().to_rgba8();
    assert_eq!((marked.width(), marked.height()), (w, h));
    // Without --out, the sheet stays in the cache and its path is printed.
    let cached = s.run(&["history", "sheet", "--run", &run_id, "--size", "128"]);
    cached.expect_code(0);
    assert!(cached.stdout.contains("reused"), "{}", cached.stdout);
    assert!(cached.stdout.contains(".png"), "{}", cached.stdout);
    // An unknown run is named, with nothing written.
    let none = s.run(&["history", "sheet", "--run", "ffffffffff", "--out", out_s]);
    none.expect_code(1);
    assert!(none.stderr.contains("ffffffffff"), "{}", none.stderr);
}

// ---------------------------------------------------------------------------------------------
// Runs as first-class things, budgets (issue 14)
// ---------------------------------------------------------------------------------------------

/// The jobs of a run share a run id and each records its values: in the record, the sidecar,
/// `history list --run` and `history show`.
#[test]
fn a_run_is_recorded_with_its_id_and_values() {
    let s = Sandbox::new();
    let run = s.run(&[
        "generate",
        "--json",
        "--axis",
        "size=256x256,512x512",
        "a {cat|dog}",
    ]);
    run.expect_code(0);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{run:#?}");
    let run_id = lines[0]["run"].as_str().unwrap().to_string();
    assert!(lines.iter().all(|l| l["run"] == json!(run_id)), "{lines:?}");
    let side = sidecar(Path::new(lines[3]["path"].as_str().unwrap()));
    assert_eq!(side["run"]["index"], 4, "{side}");
    assert_eq!(side["run"]["of"], 4);
    assert_eq!(side["run"]["values"]["alternatives"][0]["value"], "dog");

    // A single generation is no run, and is not listed with it.
    s.run(&["generate", "a lone cat"]).expect_code(0);

    let listed = s.run(&["history", "list", "--json", "--run", &run_id[..8]]);
    listed.expect_code(0);
    let records: Vec<Value> = listed
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 4, "{listed:#?}");
    let got: Vec<(u64, String, String)> = records
        .iter()
        .map(|r| {
            (
                r["run"]["index"].as_u64().unwrap(),
                r["run"]["values"]["alternatives"][0]["value"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                r["run"]["values"]["axes"][0]["value"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, "cat".into(), "256x256".into()),
            (2, "cat".into(), "512x512".into()),
            (3, "dog".into(), "256x256".into()),
            (4, "dog".into(), "512x512".into()),
        ]
    );
    let text = s.run(&["history", "list", "--run", &run_id]);
    text.expect_code(0);
    assert!(text.stdout.contains("3/4  dog · size=256x256"), "{text:#?}");

    let show = s.run(&[
        "history",
        "show",
        "--no-preview",
        records[2]["id"].as_str().unwrap(),
    ]);
    show.expect_code(0);
    assert!(show.stdout.contains("job 3 of 4"), "{show:#?}");
    assert!(show.stdout.contains("dog · size=256x256"), "{show:#?}");
    assert!(show.stdout.contains("a {cat|dog}"), "{show:#?}");

    let none = s.run(&["history", "list", "--run", "ffffffffffff"]);
    none.expect_code(1);
}

/// `[budget]`: spend so far (from usage, or estimated) plus a run's estimate may not pass the
/// daily budget: the run is refused with the figures and nothing is sent; `history stats`
/// shows the spend by day, month and model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_the_daily_budget_is_refused_with_the_figures() {
    let server = FakeServer::start().await;
    let s = Sandbox::new();
    s.write_config("[demo]\nlatency_ms = 50\n\n[budget]\ndaily_usd = 0.50\n");
    let key = unique_key();
    // $0.1248 priced from the usage, then $0.211 estimated (no usage in the answer).
    server.push(Reply::image());
    server.push(Reply::image().without_usage());
    let high = |prompt: &'static str| ["generate", "-q", "high", "-s", "1024x1024", prompt];
    for _ in 0..2 {
        Run::of_async(s.command_with_key(&server, &key, &high("a cat")))
            .await
            .expect_code(0);
    }
    assert_eq!(server.generation_requests().len(), 2);

    // Two more at ≈ $0.21 each: $0.336 + $0.421 > $0.50.
    let run = Run::of_async(s.command_with_key(&server, &key, &high("a {red|blue} kite"))).await;
    run.expect_code(1);
    for want in [
        "not sent: this run (2 jobs, ≈ $0.421 estimated) would pass the budget",
        "the daily budget is $0.50: ≈ $0.34 spent today + ≈ $0.421 estimated = $0.757",
        "spent today ≈ $0.34, this month ≈ $0.34",
    ] {
        assert!(run.stderr.contains(want), "{want:?} in {}", run.stderr);
    }
    assert!(run.stdout.is_empty());
    assert_eq!(server.generation_requests().len(), 2, "nothing was sent");

    // The spend, by day, month and model, from usage and estimated, labelled.
    let stats = s.run(&["history", "stats", "--json"]);
    stats.expect_code(0);
    let v: Value = serde_json::from_str(stats.stdout.trim()).unwrap();
    let today = &v["budget"]["spent_today"];
    assert!(
        (today["usd"].as_f64().unwrap() - 0.3358).abs() < 0.001,
        "{v}"
    );
    assert!((today["from_usage_usd"].as_f64().unwrap() - 0.1248).abs() < 0.0005);
    assert!((today["estimated_usd"].as_f64().unwrap() - 0.211).abs() < 0.001);
    assert_eq!(today["jobs"], 2);
    assert_eq!(v["budget"]["daily_usd"], 0.5);
    let month = v["budget"]["month"].as_str().unwrap();
    assert_eq!(v["spend"]["by_month"][month]["jobs"], 2, "{v}");
    assert_eq!(v["spend"]["by_model"]["gpt-image-2"]["jobs"], 2, "{v}");
    let text = s.run(&["history", "stats"]);
    assert!(
        text.stdout
            .contains("today      $0.34  (0.12 from usage, 0.21 estimated; 2 jobs) of $0.50"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("spend by model"), "{}", text.stdout);

    // A cheap request still fits.
    server.push(Reply::image());
    let cheap = ["generate", "-q", "low", "-s", "1024x1024", "a small cat"];
    Run::of_async(s.command_with_key(&server, &key, &cheap))
        .await
        .expect_code(0);
    assert_eq!(server.generation_requests().len(), 3);

    // The monthly budget counts the same way.
    s.write_config("[budget]\nmonthly_usd = 0.40\n");
    let run = Run::of_async(s.command_with_key(&server, &key, &high("a dog"))).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("the monthly budget is $0.40"),
        "{}",
        run.stderr
    );
    assert_eq!(server.generation_requests().len(), 3, "nothing was sent");
}
