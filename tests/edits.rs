//! Edits through the client against the fake server: every fault class behaves on
//! `POST /images/edits` exactly as on `POST /images/generations` (the same outcome, the same
//! number of attempts), the files go out whole on every attempt, and a file that changed after
//! it was checked stops the request before anything is sent.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use easel::api::request::{GenerationParams, ProviderRules, check};
use easel::api::{ApiOutput, CheckedRequest, ClientOptions, ErrorKind, ImagesClient, InputImage};
use easel::catalog::Catalog;
use easel::secret::ApiKey;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::fake_server::{FakeServer, Reply};
use tokio::sync::mpsc::unbounded_channel;
use tokio_util::sync::CancellationToken;

const KEY: &str = "sk-edits-test-UNIQUE-456";

fn picture(dir: &Path) -> PathBuf {
    let img = image::RgbaImage::from_fn(32, 32, |x, y| {
        image::Rgba([x as u8 * 8, y as u8 * 8, 90, 255])
    });
    let path = dir.join("picture.png");
    img.save_with_format(&path, image::ImageFormat::Png)
        .unwrap();
    path
}

fn request(edit_of: Option<&Path>, stream: bool) -> CheckedRequest {
    let mut p = GenerationParams {
        prompt: "the same, at night".into(),
        ..Default::default()
    };
    if let Some(path) = edit_of {
        p.images = vec![InputImage::file(path)];
    }
    if stream {
        p.stream = true;
        p.partial_images = Some(1);
    }
    check(&p, &Catalog::builtin(), &ProviderRules::default()).unwrap()
}

/// Run `request` against a fresh server that answers `script`; the outcome, the attempts the
/// client counted, and the requests the server saw.
async fn run(
    request: &CheckedRequest,
    script: Vec<Reply>,
) -> (
    Result<ApiOutput, (ErrorKind, String)>,
    u32,
    Vec<support::fake_server::Recorded>,
) {
    let server = FakeServer::start().await;
    server.push_all(script);
    let mut opts = ClientOptions::new("OpenAI", &server.base_url());
    opts.api_key = ApiKey::new(KEY);
    opts.max_retries = 2;
    opts.timeout = Duration::from_secs(5);
    opts.stream_idle_timeout = Duration::from_secs(2);
    let client = ImagesClient::new(opts).unwrap();
    let (tx, _rx) = unbounded_channel();
    let result = client
        .generate(request, &CancellationToken::new(), &tx)
        .await;
    let attempts = match &result {
        Ok(o) => o.attempts,
        Err(e) => e.attempts,
    };
    let result = result.map_err(|e| {
        let shown = e.to_string();
        assert!(!shown.contains(KEY), "the key shows: {shown}");
        (e.kind, shown)
    });
    (result, attempts, server.generation_requests())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_class_is_the_same_on_edits_as_on_generations() {
    let dir = tempfile::tempdir().unwrap();
    let pic = picture(dir.path());
    let bytes = std::fs::read(&pic).unwrap();
    type Script = fn() -> Vec<Reply>;
    let cases: &[(&str, bool, Script)] = &[
        ("success", false, || vec![Reply::image()]),
        ("429 with retry-after, then success", false, || {
            vec![Reply::rate_limited(Some(1), None), Reply::image()]
        }),
        ("500, then success", false, || {
            vec![
                Reply::server_error().with_header("retry-after-ms", "1"),
                Reply::image(),
            ]
        }),
        ("503 three times", false, || {
            vec![Reply::overloaded().with_header("retry-after-ms", "1"); 3]
        }),
        ("moderation", false, || vec![Reply::moderation_blocked()]),
        ("out of credit", false, || vec![Reply::insufficient_quota()]),
        ("unknown parameter", false, || {
            vec![Reply::unknown_parameter("quality")]
        }),
        ("connection reset, then success", false, || {
            vec![Reply::connection_reset(), Reply::image()]
        }),
        ("truncated JSON", false, || vec![Reply::truncated_json(); 3]),
        ("not base64", false, || vec![Reply::not_base64()]),
        ("a stream", true, || vec![Reply::stream(1)]),
        ("a stream cut after a partial", true, || {
            vec![Reply::stream_cut_after_partial()]
        }),
        ("an error event in the stream", true, || {
            vec![Reply::stream_error_event()]
        }),
    ];
    for (name, stream, script) in cases {
        let (generation, g_attempts, g_sent) = run(&request(None, *stream), script()).await;
        let (edit, e_attempts, e_sent) = run(&request(Some(&pic), *stream), script()).await;
        let kind = |r: &Result<ApiOutput, (ErrorKind, String)>| match r {
            Ok(o) => Ok(o.images.len()),
            Err((k, _)) => Err(*k),
        };
        assert_eq!(
            kind(&edit),
            kind(&generation),
            "{name}: {edit:?} vs {generation:?}"
        );
        assert_eq!(e_attempts, g_attempts, "{name}: attempts");
        assert_eq!(e_sent.len(), g_sent.len(), "{name}: requests sent");
        for r in &e_sent {
            assert!(r.is_edit(), "{name}: {}", r.path);
            assert_eq!(
                r.files("image[]")[0].data,
                bytes,
                "{name}: the whole file, every attempt"
            );
            assert!(
                !String::from_utf8_lossy(&r.raw_body).contains(KEY),
                "{name}"
            );
        }
        if let Err((_, shown)) = &edit {
            // Typed errors name the request the server answered.
            if !e_sent.is_empty() && !name.contains("stream") && !name.contains("JSON") {
                assert!(shown.contains("req_"), "{name}: {shown}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_picture_that_changed_after_the_check_is_not_sent() {
    let dir = tempfile::tempdir().unwrap();
    let pic = picture(dir.path());
    let checked = request(Some(&pic), false);
    std::fs::write(&pic, b"now a text file").unwrap();
    let (result, attempts, sent) = run(&checked, vec![Reply::image()]).await;
    let (kind, shown) = result.unwrap_err();
    assert_eq!(kind, ErrorKind::InvalidRequest);
    assert!(
        shown.contains("did not send") && shown.contains("not an image"),
        "{shown}"
    );
    assert_eq!(attempts, 0);
    assert!(sent.is_empty());
}
