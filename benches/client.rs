//! Client throughput: 1,000 image requests at concurrency 16 against the local fake server,
//! easel's client versus a bare reqwest loop doing the same requests. Rounds alternate between
//! the two so drift on a shared machine hits both alike; medians and their ratio are reported.
//!
//! Then streamed versus plain: the same 8 MB image as one `image_generation.completed` event of
//! a `text/event-stream` answer and as a plain JSON answer, both sent in 16 KB chunks, through
//! easel's client (target: the streamed one within 1.5× of the plain one).
//!
//! Then an edit with 16 reference pictures of 1024² PNG: the time to check, build and send the
//! multipart request to a local server that reads and discards it, and the peak memory the
//! request adds, against the pictures' total size (target: under 1.5×; the files are streamed).
//!
//! cargo bench --bench client

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../tests/support/fake_server.rs"]
#[allow(dead_code)]
mod fake_server;

use easel::api::{ClientOptions, GenerationParams, ImagesClient, ProviderRules, request};
use easel::catalog::Catalog;
use easel::secret::ApiKey;
use futures_util::StreamExt;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

const CONCURRENCY: usize = 16;
/// Chunked-encoding pieces of the big answers: the size of a TLS record, as a real server's
/// stream reaches the client.
const CHUNK: usize = 16 * 1024;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
    rt.block_on(stream_vs_plain());
    rt.block_on(edit_with_16_references());
}

/// Resident memory (`VmRSS`) and its peak (`VmHWM`) in bytes, from /proc/self/status.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A server that reads each request whole, keeps nothing of it, and answers with one small
/// image: what is measured is the client's side of the upload.
async fn sink_server(answer: bytes::Bytes) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    // The head, then Content-Length bytes of body, read and dropped.
                    let mut head = Vec::new();
                    let body_start = loop {
                        let n = socket.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        head.extend_from_slice(&buf[..n]);
                        if let Some(p) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                    };
                    let text = String::from_utf8_lossy(&head[..body_start]).to_ascii_lowercase();
                    let length: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    let mut left = length.saturating_sub(head.len() - body_start);
                    while left > 0 {
                        let n = socket.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        left = left.saturating_sub(n);
                    }
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        answer.len()
                    );
                    if socket.write_all(reply.as_bytes()).await.is_err()
                        || socket.write_all(&answer).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

async fn edit_with_16_references() {
    use base64::Engine;
    let rounds = if common::quick() { 3 } else { 7 };
    let dir = tempfile::tempdir().unwrap();
    let mut total = 0u64;
    let mut images = Vec::new();
    for k in 0..16u64 {
        let mut rng = fastrand::Rng::with_seed(k);
        let pixels: Vec<u8> = (0..1024 * 1024 * 3).map(|_| rng.u8(..)).collect();
        let img = image::RgbImage::from_raw(1024, 1024, pixels).unwrap();
        let path = dir.path().join(format!("ref-{k}.png"));
        img.save_with_format(&path, image::ImageFormat::Png)
            .unwrap();
        total += std::fs::metadata(&path).unwrap().len();
        images.push(easel::api::InputImage::file(path));
    }
    let small = noise_png(64);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&small);
    let answer = bytes::Bytes::from(
        serde_json::json!({ "created": 1, "data": [{ "b64_json": b64 }] }).to_string(),
    );
    let addr = sink_server(answer).await;
    let mut opts = ClientOptions::new("bench", &format!("http://{addr}/v1"));
    opts.api_key = ApiKey::new("sk-bench");
    let client = ImagesClient::new(opts).unwrap();
    let params = GenerationParams {
        prompt: "these sixteen, as one picture".into(),
        images,
        ..Default::default()
    };
    let checked = request::check(&params, &Catalog::builtin(), &ProviderRules::default()).unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    // Warm up (connection, allocator), then measure.
    client
        .generate(&checked, &CancellationToken::new(), &tx)
        .await
        .unwrap();
    let mut times = Vec::new();
    let mut peaks = Vec::new();
    for _ in 0..rounds {
        // Reset the peak to what is resident now (Linux: clear_refs 5).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let (before, _) = memory();
        let start = Instant::now();
        let out = client
            .generate(&checked, &CancellationToken::new(), &tx)
            .await
            .unwrap();
        times.push(common::ms(start.elapsed()));
        assert_eq!(out.images.len(), 1);
        let (_, peak) = memory();
        peaks.push(peak.saturating_sub(before) as f64);
    }
    let mb = total as f64 / (1 << 20) as f64;
    common::report(
        &format!("client: edit with 16 references of 1024² PNG ({mb:.1} MB), check + build + send"),
        "ms",
        common::median(times),
        None,
        "none (recorded)",
        rounds,
    );
    let peak = peaks.iter().copied().fold(0.0, f64::max);
    common::report(
        "client: peak memory an edit with 16 references adds, ÷ the pictures' total size",
        "×",
        peak / total as f64,
        None,
        "< 1.5×",
        rounds,
    );
}

/// An incompressible PNG of about `bytes` bytes.
fn noise_png(bytes: usize) -> Vec<u8> {
    let side = ((bytes / 3) as f64).sqrt().ceil() as u32;
    let mut rng = fastrand::Rng::with_seed(7);
    let pixels: Vec<u8> = (0..side * side * 3).map(|_| rng.u8(..)).collect();
    let img = image::RgbImage::from_raw(side, side, pixels).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn stream_vs_plain() {
    use base64::Engine;
    let rounds = if common::quick() { 3 } else { 7 };
    let png = noise_png(8 << 20);
    let mb = png.len() as f64 / (1 << 20) as f64;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    let plain = bytes::Bytes::from(
        serde_json::json!({ "created": 1, "data": [{ "b64_json": b64 }] }).to_string(),
    );
    let event = serde_json::json!({ "type": "image_generation.completed", "b64_json": b64 });
    let sse = bytes::Bytes::from(format!(
        "event: image_generation.completed\ndata: {event}\n\ndata: [DONE]\n\n"
    ));
    let server = fake_server::FakeServer::start().await;
    let mut opts = ClientOptions::new("OpenAI", &server.base_url());
    opts.api_key = ApiKey::new("sk-bench");
    let client = ImagesClient::new(opts).unwrap();
    let mut params = GenerationParams {
        prompt: "a lighthouse at dusk".into(),
        ..Default::default()
    };
    let plain_req =
        request::check(&params, &Catalog::builtin(), &ProviderRules::default()).unwrap();
    params.stream = true;
    let stream_req =
        request::check(&params, &Catalog::builtin(), &ProviderRules::default()).unwrap();
    let once = |streamed: bool| {
        let (client, server) = (&client, &server);
        let (plain, sse) = (plain.clone(), sse.clone());
        let (plain_req, stream_req) = (&plain_req, &stream_req);
        async move {
            if streamed {
                server.push(fake_server::Reply::raw_chunked(
                    200,
                    "text/event-stream",
                    sse,
                    CHUNK,
                ));
            } else {
                server.push(fake_server::Reply::raw_chunked(
                    200,
                    "application/json",
                    plain,
                    CHUNK,
                ));
            }
            let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
            let start = Instant::now();
            let out = client
                .generate(
                    if streamed { stream_req } else { plain_req },
                    &CancellationToken::new(),
                    &tx,
                )
                .await
                .unwrap();
            assert_eq!(out.images.len(), 1);
            start.elapsed()
        }
    };
    once(false).await;
    once(true).await;
    let (mut streamed_ms, mut plain_ms) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for streamed in [round % 2 == 0, round % 2 == 1] {
            let ms = common::ms(once(streamed).await);
            if streamed {
                streamed_ms.push(ms);
            } else {
                plain_ms.push(ms);
            }
        }
    }
    common::report(
        &format!("client: one {mb:.1} MB image, streamed (SSE) vs plain JSON"),
        "ms",
        common::median(streamed_ms),
        Some(("the same image plain", common::median(plain_ms))),
        "≤ 1.5×",
        rounds,
    );
}

async fn run() {
    let requests = if common::quick() { 200 } else { 1000 };
    let rounds = if common::quick() { 3 } else { 7 };
    let server = fake_server::FakeServer::start().await;
    server.set_default(fake_server::Reply::image());
    let params = GenerationParams {
        prompt: "a lighthouse at dusk".into(),
        ..Default::default()
    };
    let checked = request::check(&params, &Catalog::builtin(), &ProviderRules::default()).unwrap();
    let mut opts = ClientOptions::new("OpenAI", &server.base_url());
    opts.api_key = ApiKey::new("sk-bench");
    let client = ImagesClient::new(opts).unwrap();
    let bare = reqwest::Client::new();
    let url = format!("{}/images/generations", server.base_url());

    let easel_round = || async {
        let start = Instant::now();
        futures_util::stream::iter(0..requests)
            .map(|_| {
                let client = &client;
                let checked = &checked;
                async move {
                    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
                    client
                        .generate(checked, &CancellationToken::new(), &tx)
                        .await
                        .unwrap();
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        start.elapsed()
    };
    let bare_round = || async {
        let start = Instant::now();
        futures_util::stream::iter(0..requests)
            .map(|_| {
                let bare = &bare;
                let url = &url;
                let body = &checked.body;
                async move {
                    let resp = bare
                        .post(url)
                        .bearer_auth("sk-bench")
                        .json(body)
                        .send()
                        .await
                        .unwrap();
                    assert!(resp.status().is_success());
                    resp.bytes().await.unwrap();
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        start.elapsed()
    };
    // Warm up both (connections, allocator, server caches).
    easel_round().await;
    bare_round().await;
    let (mut easel_ms, mut bare_ms) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            easel_ms.push(common::ms(easel_round().await));
            bare_ms.push(common::ms(bare_round().await));
        } else {
            bare_ms.push(common::ms(bare_round().await));
            easel_ms.push(common::ms(easel_round().await));
        }
    }
    common::report(
        &format!("client: {requests} requests at concurrency {CONCURRENCY}"),
        "ms",
        common::median(easel_ms),
        Some(("bare reqwest loop", common::median(bare_ms))),
        "≤ 1.1×",
        rounds,
    );
}
