//! Client throughput: 1,000 image requests at concurrency 16 against the local fake server,
//! easel's client versus a bare reqwest loop doing the same requests. Rounds alternate between
//! the two so drift on a shared machine hits both alike; medians and their ratio are reported.
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

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
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
