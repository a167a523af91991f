//! Client throughput: 1,000 image requests at concurrency 16 against the local fake server,
//! easel's client versus a bare reqwest loop doing the same requests. Rounds alternate between
//! the two so drift on a shared machine hits both alike; medians and their ratio are reported.
//!
//! Then streamed versus plain: the same 8 MB image as one `image_generation.completed` event of
//! a `text/event-stream` answer and as a plain JSON answer, both sent in 16 KB chunks, through
//! easel's client (target: the streamed one within 1.5× of the plain one).
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
