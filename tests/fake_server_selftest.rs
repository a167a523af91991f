//! Proves that the fake Images server in `tests/support` behaves as documented, using a real HTTP
//! client (reqwest) against it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use support::fake_server::{FakeServer, Reply};

fn client() -> reqwest::Client {
    // reqwest is built with `rustls-no-provider`: it needs a process-wide provider even for http.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .build()
        .expect("build reqwest client")
}

fn generations_url(server: &FakeServer) -> String {
    format!("{}/images/generations", server.base_url())
}

async fn generate(server: &FakeServer, body: Value) -> reqwest::Response {
    client()
        .post(generations_url(server))
        .bearer_auth("sk-test")
        .json(&body)
        .send()
        .await
        .expect("send generation request")
}

async fn generate_json(server: &FakeServer, body: Value) -> (reqwest::StatusCode, Value) {
    let response = generate(server, body).await;
    let status = response.status();
    let json = response.json::<Value>().await.expect("JSON body");
    (status, json)
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii header").to_owned())
}

fn decode_b64(text: &str) -> Vec<u8> {
    STANDARD.decode(text).expect("valid base64")
}

/// Parses a complete SSE body into (event name, data) pairs.
fn parse_sse(text: &str) -> Vec<(Option<String>, String)> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (event, data)
        })
        .collect()
}

fn assert_error_shape(json: &Value) {
    let error = json.get("error").expect("error object");
    for key in ["message", "type", "param", "code"] {
        assert!(error.get(key).is_some(), "error lacks {key}: {json}");
    }
}

const PROMPT: &str = "a lighthouse at dusk, oil painting";

#[tokio::test]
async fn image_reply_is_gpt_shaped_and_echoes_the_request() {
    let server = FakeServer::start().await;
    let response = generate(
        &server,
        json!({"model": "gpt-image-2", "prompt": PROMPT, "n": 2, "size": "1536x1024",
               "quality": "high", "output_format": "png"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-request-id").as_deref(), Some("req_1"));
    assert!(
        header(&response, "content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let json: Value = response.json().await.unwrap();

    assert!(json["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(json["output_format"], "png");
    assert_eq!(json["size"], "1536x1024");
    assert_eq!(json["quality"], "high");
    assert_eq!(json["background"], "opaque");
    let usage = &json["usage"];
    assert_eq!(usage["input_tokens_details"]["image_tokens"], 0);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap()
    );
    assert!(usage["output_tokens"].as_u64().unwrap() > 0);

    let data = json["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let images: Vec<Vec<u8>> = data
        .iter()
        .map(|d| decode_b64(d["b64_json"].as_str().unwrap()))
        .collect();
    assert_ne!(images[0], images[1], "each image differs");
    for bytes in &images {
        assert_eq!(image::guess_format(bytes).unwrap(), image::ImageFormat::Png);
        let img = image::load_from_memory(bytes).unwrap();
        // Small by default, aspect ratio kept.
        assert_eq!((img.width(), img.height()), (64, 42));
    }

    // The request was recorded with its key and body.
    let recorded = server.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].path, "/v1/images/generations");
    assert_eq!(recorded[0].authorization.as_deref(), Some("Bearer sk-test"));
    assert_eq!(recorded[0].header("Content-Type"), Some("application/json"));
    assert!(
        recorded[0]
            .headers
            .iter()
            .all(|(n, _)| *n == n.to_ascii_lowercase())
    );
    assert_eq!(recorded[0].body["n"], 2);
    assert_eq!(server.last_body().unwrap()["prompt"], PROMPT);
    assert_eq!(server.request_count(), 1);
    assert_eq!(server.generation_count(), 1);
}

#[tokio::test]
async fn image_defaults_and_formats() {
    let server = FakeServer::start().await;
    // No n, size, format: one 64x64 PNG, size 1024x1024.
    let (status, json) = generate_json(&server, json!({"prompt": "x"})).await;
    assert_eq!(status, 200);
    assert_eq!(json["data"].as_array().unwrap().len(), 1);
    assert_eq!(json["size"], "1024x1024");
    let img = image::load_from_memory(&decode_b64(json["data"][0]["b64_json"].as_str().unwrap()))
        .unwrap();
    assert_eq!((img.width(), img.height()), (64, 64));

    for (format, expected) in [
        ("jpeg", image::ImageFormat::Jpeg),
        ("webp", image::ImageFormat::WebP),
    ] {
        let (_, json) =
            generate_json(&server, json!({"prompt": "x", "output_format": format})).await;
        assert_eq!(json["output_format"], format);
        let bytes = decode_b64(json["data"][0]["b64_json"].as_str().unwrap());
        assert_eq!(image::guess_format(&bytes).unwrap(), expected);
        image::load_from_memory(&bytes).unwrap();
    }

    // Transparent background gives an image with alpha.
    let (_, json) =
        generate_json(&server, json!({"prompt": "x", "background": "transparent"})).await;
    assert_eq!(json["background"], "transparent");
    let img = image::load_from_memory(&decode_b64(json["data"][0]["b64_json"].as_str().unwrap()))
        .unwrap();
    assert!(img.to_rgba8().pixels().any(|p| p.0[3] == 0));
}

#[tokio::test]
async fn sized_images_have_the_requested_size() {
    let server = FakeServer::start().await;
    server.push(Reply::image_sized());
    let (_, json) = generate_json(&server, json!({"prompt": "x", "size": "1536x1024"})).await;
    let img = image::load_from_memory(&decode_b64(json["data"][0]["b64_json"].as_str().unwrap()))
        .unwrap();
    assert_eq!((img.width(), img.height()), (1536, 1024));

    server.set_real_sizes(true);
    let (_, json) = generate_json(&server, json!({"prompt": "x", "size": "256x512"})).await;
    let img = image::load_from_memory(&decode_b64(json["data"][0]["b64_json"].as_str().unwrap()))
        .unwrap();
    assert_eq!((img.width(), img.height()), (256, 512));
}

#[tokio::test]
async fn image_url_is_served_by_the_same_server() {
    let server = FakeServer::start().await;
    server.push(Reply::image_url());
    let (status, json) = generate_json(&server, json!({"prompt": "x", "n": 2})).await;
    assert_eq!(status, 200);
    assert!(json.get("usage").is_none());
    let urls: Vec<&str> = json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls.len(), 2);
    for url in urls {
        assert!(
            url.starts_with(&format!("{}/files/", server.base_url())),
            "{url}"
        );
        let response = client().get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, "content-type").as_deref(),
            Some("image/png")
        );
        let bytes = response.bytes().await.unwrap();
        image::load_from_memory(&bytes).unwrap();
    }
    // The downloads were recorded too.
    assert_eq!(server.request_count(), 3);
    assert_eq!(server.generation_count(), 1);
    assert_eq!(server.requests()[1].method, "GET");

    // The /files/... route without /v1 serves the same file.
    let path = server.requests()[1].path.clone();
    let url = format!("{}{}", server.origin(), path.trim_start_matches("/v1"));
    assert_eq!(client().get(url).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn data_url_reply() {
    let server = FakeServer::start().await;
    server.push(Reply::data_url());
    let (_, json) = generate_json(&server, json!({"prompt": "x"})).await;
    let url = json["data"][0]["url"].as_str().unwrap();
    let b64 = url
        .strip_prefix("data:image/png;base64,")
        .expect("data URL");
    image::load_from_memory(&decode_b64(b64)).unwrap();
}

#[tokio::test]
async fn stream_sends_partials_completed_and_done() {
    let server = FakeServer::start().await;
    server.push(Reply::stream(2));
    let response = generate(
        &server,
        json!({"prompt": PROMPT, "stream": true, "partial_images": 2, "quality": "low"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(
        header(&response, "content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(header(&response, "x-request-id").is_some());
    let text = response.text().await.unwrap();
    let events = parse_sse(&text);
    assert_eq!(events.len(), 4, "{text}");

    let names: Vec<Option<&str>> = events.iter().map(|(e, _)| e.as_deref()).collect();
    assert_eq!(
        names,
        [
            Some("image_generation.partial_image"),
            Some("image_generation.partial_image"),
            Some("image_generation.completed"),
            None,
        ]
    );
    for (index, (name, data)) in events[..2].iter().enumerate() {
        let json: Value = serde_json::from_str(data).unwrap();
        assert_eq!(json["type"], name.as_deref().unwrap());
        assert_eq!(json["partial_image_index"], index);
        for key in [
            "created_at",
            "size",
            "quality",
            "background",
            "output_format",
        ] {
            assert!(json.get(key).is_some(), "partial lacks {key}");
        }
        image::load_from_memory(&decode_b64(json["b64_json"].as_str().unwrap())).unwrap();
    }
    let completed: Value = serde_json::from_str(&events[2].1).unwrap();
    assert_eq!(completed["type"], "image_generation.completed");
    assert_eq!(completed["quality"], "low");
    assert!(completed.get("partial_image_index").is_none());
    assert!(completed["usage"]["total_tokens"].as_u64().unwrap() > 0);
    image::load_from_memory(&decode_b64(completed["b64_json"].as_str().unwrap())).unwrap();
    assert_eq!(events[3].1, "[DONE]");

    // The connection is reusable afterwards (the chunked body was terminated properly).
    let client = client();
    server.set_default(Reply::stream(0));
    for _ in 0..2 {
        let response = client
            .post(generations_url(&server))
            .json(&json!({"prompt": "x", "stream": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    }
    let requests = server.requests();
    assert_eq!(requests[1].connection, requests[2].connection);
}

#[tokio::test]
async fn stream_cut_after_partial_is_a_body_error() {
    let server = FakeServer::start().await;
    server.push(Reply::stream_cut_after_partial());
    let response = generate(&server, json!({"prompt": "x", "stream": true})).await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut received = Vec::new();
    let mut failed = false;
    while let Some(item) = body.next().await {
        match item {
            Ok(chunk) => received.extend_from_slice(&chunk),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the body must end in an error");
    let text = String::from_utf8(received).unwrap();
    let events = parse_sse(&text);
    assert_eq!(events.len(), 1, "{text}");
    assert_eq!(
        events[0].0.as_deref(),
        Some("image_generation.partial_image")
    );
    assert!(!text.contains("completed"));
}

#[tokio::test]
async fn stream_error_event_has_an_error_object() {
    let server = FakeServer::start().await;
    server.push(Reply::stream_error_event());
    server.push(Reply::stream_error_after(1));
    let response = generate(&server, json!({"prompt": "x", "stream": true})).await;
    assert_eq!(response.status(), 200);
    let events = parse_sse(&response.text().await.unwrap());
    assert_eq!(events.len(), 1);
    let json: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_error_shape(&json);
    assert!(!events.iter().any(|(_, d)| d == "[DONE]"));

    let events = parse_sse(
        &generate(&server, json!({"prompt": "x"}))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0].0.as_deref(),
        Some("image_generation.partial_image")
    );
    assert!(
        serde_json::from_str::<Value>(&events[1].1)
            .unwrap()
            .get("error")
            .is_some()
    );
}

#[tokio::test]
async fn stream_never_completes_until_the_client_disconnects() {
    let server = FakeServer::start().await;
    server.push(Reply::stream_never_completes());
    let response = generate(&server, json!({"prompt": "x", "stream": true})).await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut received = Vec::new();
    while !received.ends_with(b"\n\n") {
        received.extend_from_slice(&body.next().await.unwrap().unwrap());
    }
    let events = parse_sse(std::str::from_utf8(&received).unwrap());
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].0.as_deref(),
        Some("image_generation.partial_image")
    );
    let next = tokio::time::timeout(Duration::from_millis(300), body.next()).await;
    assert!(next.is_err(), "nothing more arrives");
    assert_eq!(server.open_connections(), 1);
    drop(body);
    assert!(
        server
            .wait_for_open_connections(0, Duration::from_secs(5))
            .await,
        "the server notices the client went away"
    );
}

#[tokio::test]
async fn stream_as_requested_and_auto() {
    let server = FakeServer::start().await;
    server.set_default(Reply::auto());
    let text = generate(
        &server,
        json!({"prompt": "x", "stream": true, "partial_images": 3}),
    )
    .await
    .text()
    .await
    .unwrap();
    let events = parse_sse(&text);
    assert_eq!(events.len(), 5, "3 partials, completed, [DONE]");

    let (_, json) = generate_json(&server, json!({"prompt": "x", "response_format": "url"})).await;
    assert!(
        json["data"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );

    let (_, json) = generate_json(&server, json!({"prompt": "x"})).await;
    assert!(json["data"][0]["b64_json"].is_string());

    server.push(Reply::stream_as_requested().with_event_delay(Duration::from_millis(1)));
    let text = generate(&server, json!({"prompt": "x", "stream": true, "n": 2}))
        .await
        .text()
        .await
        .unwrap();
    let events = parse_sse(&text);
    // No partials requested; one completed event per image.
    assert_eq!(events.len(), 3);
    assert_eq!(events[1].0.as_deref(), Some("image_generation.completed"));
}

#[tokio::test]
async fn error_replies() {
    let server = FakeServer::start().await;
    server.push(Reply::error(
        403,
        "invalid_request_error",
        "unsupported_country",
        "Nope",
    ));
    let response = generate(&server, json!({"prompt": "x"})).await;
    assert_eq!(response.status(), 403);
    assert_eq!(header(&response, "x-request-id").as_deref(), Some("req_1"));
    let json: Value = response.json().await.unwrap();
    assert_error_shape(&json);
    assert_eq!(
        json,
        json!({"error": {"message": "Nope", "type": "invalid_request_error",
                         "param": null, "code": "unsupported_country"}})
    );

    server.push(Reply::moderation_blocked());
    let (status, json) = generate_json(&server, json!({"prompt": "x"})).await;
    assert_eq!(status, 400);
    assert_error_shape(&json);
    assert_eq!(json["error"]["type"], "image_generation_user_error");
    assert_eq!(json["error"]["code"], "moderation_blocked");
    assert!(json["error"]["moderation_details"].is_object());

    server.push(Reply::insufficient_quota());
    let (status, json) = generate_json(&server, json!({"prompt": "x"})).await;
    assert_eq!(status, 429);
    assert_eq!(json["error"]["type"], "insufficient_quota");
    assert_eq!(json["error"]["code"], "insufficient_quota");

    server.push(Reply::rate_limited(Some(1500), Some("2")));
    let response = generate(&server, json!({"prompt": "x"})).await;
    assert_eq!(response.status(), 429);
    assert_eq!(header(&response, "retry-after-ms").as_deref(), Some("1500"));
    assert_eq!(header(&response, "retry-after").as_deref(), Some("2"));
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["error"]["code"], "rate_limit_exceeded");

    server.push(Reply::rate_limited(
        None,
        Some("Wed, 21 Oct 2015 07:28:00 GMT"),
    ));
    let response = generate(&server, json!({"prompt": "x"})).await;
    assert!(header(&response, "retry-after-ms").is_none());
    assert_eq!(
        header(&response, "retry-after").as_deref(),
        Some("Wed, 21 Oct 2015 07:28:00 GMT")
    );

    server.push(Reply::numeric_code_error(500));
    let (status, json) = generate_json(&server, json!({"prompt": "x"})).await;
    assert_eq!(status, 500);
    assert_eq!(json["error"]["code"], 500);
    assert!(json["error"]["code"].is_number());

    for (reply, status) in [
        (Reply::server_error(), 500),
        (Reply::overloaded(), 503),
        (Reply::unauthorized(), 401),
        (Reply::unknown_parameter("style"), 400),
        (Reply::content_policy_violation(), 400),
    ] {
        server.push(reply);
        let (got, json) = generate_json(&server, json!({"prompt": "x"})).await;
        assert_eq!(got, status);
        assert_error_shape(&json);
    }
}

#[tokio::test]
async fn with_header_and_without_request_id() {
    let server = FakeServer::start().await;
    server.push(Reply::server_error().with_header("x-should-retry", "false"));
    server.push(
        Reply::image()
            .with_header("X-Custom", "1")
            .without_request_id(),
    );
    let response = generate(&server, json!({"prompt": "x"})).await;
    assert_eq!(response.status(), 500);
    assert_eq!(
        header(&response, "x-should-retry").as_deref(),
        Some("false")
    );
    let response = generate(&server, json!({"prompt": "x"})).await;
    assert_eq!(header(&response, "x-custom").as_deref(), Some("1"));
    assert!(header(&response, "x-request-id").is_none());
}

#[tokio::test]
async fn hang_times_out_on_the_client() {
    let server = FakeServer::start().await;
    server.push(Reply::hang());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = client
        .post(generations_url(&server))
        .json(&json!({"prompt": "x"}))
        .send()
        .await
        .expect_err("hang must time out");
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(server.generation_count(), 1);
    drop(client);
    assert!(
        server
            .wait_for_open_connections(0, Duration::from_secs(5))
            .await
    );
    // The next request is answered normally.
    let (status, _) = generate_json(&server, json!({"prompt": "x"})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn reset_mid_body_fails_while_reading_the_body() {
    let server = FakeServer::start().await;
    server.push(Reply::reset_mid_body());
    let response = generate(&server, json!({"prompt": "x"})).await;
    assert_eq!(response.status(), 200);
    let length: usize = header(&response, "content-length")
        .unwrap()
        .parse()
        .unwrap();
    assert!(length > 100);
    assert!(response.bytes().await.is_err());
}

#[tokio::test]
async fn connection_reset_is_a_request_error() {
    let server = FakeServer::start().await;
    server.push(Reply::connection_reset());
    let result = client()
        .post(generations_url(&server))
        .json(&json!({"prompt": "x"}))
        .send()
        .await;
    let error = result.expect_err("reset must fail the request");
    assert!(
        error.is_request() || error.is_connect() || error.is_body(),
        "{error:?}"
    );
}

#[tokio::test]
async fn truncated_json_is_a_complete_body_that_does_not_parse() {
    let server = FakeServer::start().await;
    server.push(Reply::truncated_json());
    let response = generate(&server, json!({"prompt": "x"})).await;
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.expect("complete HTTP body");
    assert!(bytes.starts_with(b"{"));
    assert!(serde_json::from_slice::<Value>(&bytes).is_err());
}

#[tokio::test]
async fn wrong_shapes() {
    let server = FakeServer::start().await;
    server.push(Reply::wrong_shape());
    server.push(Reply::wrong_shape_images());
    server.push(Reply::empty_data());
    let (status, json) = generate_json(&server, json!({"prompt": "x"})).await;
    assert_eq!(status, 200);
    assert_eq!(json["data"], "oops");
    let (_, json) = generate_json(&server, json!({"prompt": "x"})).await;
    assert!(json.get("data").is_none());
    assert!(json["images"][0]["b64_json"].is_string());
    let (_, json) = generate_json(&server, json!({"prompt": "x"})).await;
    assert_eq!(json["data"], json!([]));
}

#[tokio::test]
async fn payloads_that_are_not_images() {
    let server = FakeServer::start().await;
    server.push(Reply::not_base64());
    let (_, json) = generate_json(&server, json!({"prompt": "x"})).await;
    let b64 = json["data"][0]["b64_json"].as_str().unwrap();
    assert_eq!(b64, "!!!not base64!!!");
    assert!(STANDARD.decode(b64).is_err());

    server.push(Reply::base64_not_image());
    let (_, json) = generate_json(&server, json!({"prompt": "x"})).await;
    let bytes = decode_b64(json["data"][0]["b64_json"].as_str().unwrap());
    assert!(std::str::from_utf8(&bytes).is_ok());
    assert!(image::load_from_memory(&bytes).is_err());

    server.push(Reply::svg());
    let (_, json) = generate_json(&server, json!({"prompt": "x"})).await;
    let text =
        String::from_utf8(decode_b64(json["data"][0]["b64_json"].as_str().unwrap())).unwrap();
    assert!(text.contains("<svg"));

    server.push(Reply::html());
    let (_, json) = generate_json(&server, json!({"prompt": "x"})).await;
    let text =
        String::from_utf8(decode_b64(json["data"][0]["b64_json"].as_str().unwrap())).unwrap();
    assert!(text.contains("<html"));

    // As URLs, served with their own content types.
    server.push(Reply::svg().via_url());
    let (_, json) = generate_json(&server, json!({"prompt": "x"})).await;
    let response = client()
        .get(json["data"][0]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("image/svg+xml")
    );
    assert!(response.text().await.unwrap().contains("<svg"));

    server.push(Reply::html().via_url());
    let (_, json) = generate_json(&server, json!({"prompt": "x"})).await;
    let response = client()
        .get(json["data"][0]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        header(&response, "content-type")
            .unwrap()
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn url_404_and_huge_downloads() {
    let server = FakeServer::start().await;
    server.push(Reply::url_404());
    let (_, json) = generate_json(&server, json!({"prompt": "x"})).await;
    let url = json["data"][0]["url"].as_str().unwrap();
    assert!(url.starts_with(&server.origin()));
    assert_eq!(client().get(url).send().await.unwrap().status(), 404);

    const HUGE: u64 = 5 * 1024 * 1024 + 123;
    server.push(Reply::url_huge(HUGE));
    server.push(Reply::url_huge_unsized(HUGE));
    for sized in [true, false] {
        let (_, json) = generate_json(&server, json!({"prompt": "x"})).await;
        let url = json["data"][0]["url"].as_str().unwrap();
        let response = client().get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.content_length().is_some(), sized);
        if sized {
            assert_eq!(response.content_length(), Some(HUGE));
        }
        let mut stream = response.bytes_stream();
        let mut total = 0u64;
        let mut first = None;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            if first.is_none() {
                first = Some(chunk.clone());
            }
            total += chunk.len() as u64;
        }
        assert_eq!(total, HUGE);
        assert!(first.unwrap().starts_with(b"\x89PNG"));
    }
}

#[tokio::test]
async fn raw_reply_and_compatible_shapes() {
    let server = FakeServer::start().await;
    server.push(Reply::raw(502, "text/html", "<html>bad gateway</html>"));
    let response = generate(&server, json!({"prompt": "x"})).await;
    assert_eq!(response.status(), 502);
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("text/html")
    );
    assert!(header(&response, "x-request-id").is_some());
    assert_eq!(response.text().await.unwrap(), "<html>bad gateway</html>");

    server.push(
        Reply::image()
            .without_created()
            .without_usage()
            .without_metadata(),
    );
    let (_, json) = generate_json(&server, json!({"prompt": "x"})).await;
    assert_eq!(
        json.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["data"]
    );

    server.push(Reply::image_url().with_revised_prompt("a nicer prompt"));
    let (_, json) = generate_json(&server, json!({"prompt": "x"})).await;
    assert_eq!(json["data"][0]["revised_prompt"], "a nicer prompt");
    assert!(json["created"].is_u64());

    server.push(Reply::json(
        200,
        json!({"created": 1, "data": [{"url": "ftp://x"}]}),
    ));
    let (_, json) = generate_json(&server, json!({"prompt": "x"})).await;
    assert_eq!(json["data"][0]["url"], "ftp://x");
}

#[tokio::test]
async fn script_is_fifo_then_default() {
    let server = FakeServer::start().await;
    server.push_all([Reply::server_error(), Reply::unauthorized()]);
    assert_eq!(server.pending(), 2);
    let statuses = [
        generate(&server, json!({"prompt": "x"})).await.status(),
        generate(&server, json!({"prompt": "x"})).await.status(),
        generate(&server, json!({"prompt": "x"})).await.status(),
    ];
    assert_eq!(statuses, [500, 401, 200]);
    assert_eq!(server.pending(), 0);

    server.set_default(Reply::overloaded());
    assert_eq!(
        generate(&server, json!({"prompt": "x"})).await.status(),
        503
    );
    server.push(Reply::image());
    assert_eq!(
        generate(&server, json!({"prompt": "x"})).await.status(),
        200
    );
    assert_eq!(
        generate(&server, json!({"prompt": "x"})).await.status(),
        503
    );

    // x-request-id follows the request counter.
    let ids: Vec<u64> = server.requests().iter().map(|r| r.id).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);
    server.clear_requests();
    assert_eq!(server.request_count(), 0);
    assert!(server.last_body().is_none());
}

#[tokio::test]
async fn unknown_routes_answer_openai_shaped_404() {
    let server = FakeServer::start().await;
    let response = client()
        .post(format!("{}/images/upscale", server.base_url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(header(&response, "x-request-id").is_some());
    let json: Value = response.json().await.unwrap();
    assert_error_shape(&json);
    assert_eq!(
        json["error"]["message"],
        "Invalid URL (POST /v1/images/upscale)"
    );

    let response = client()
        .get(format!("{}/images/generations?x=1", server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let recorded = server.last_request().unwrap();
    assert_eq!(recorded.query.as_deref(), Some("x=1"));
    assert_eq!(recorded.body, Value::Null);
    assert_eq!(server.generation_count(), 0);

    // Edits are served, but as multipart only: a JSON body breaks the contract (400).
    let response = client()
        .post(format!("{}/images/edits", server.base_url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let json: Value = response.json().await.unwrap();
    assert_error_shape(&json);
}

#[tokio::test]
async fn keep_alive_and_chunked_request_bodies() {
    let server = FakeServer::start().await;
    let client = client();
    for _ in 0..3 {
        let response = client
            .post(generations_url(&server))
            .json(&json!({"prompt": "x"}))
            .send()
            .await
            .unwrap();
        response.bytes().await.unwrap();
    }
    let connections: Vec<u64> = server.requests().iter().map(|r| r.connection).collect();
    assert_eq!(connections, [1, 1, 1], "one kept-alive connection");

    // A streamed (chunked) request body is decoded.
    let parts: Vec<Result<&'static [u8], std::io::Error>> =
        vec![Ok(b"{\"prompt\":"), Ok(b"\"chunked\",\"n\":3}")];
    let response = client
        .post(generations_url(&server))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            parts,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["data"].as_array().unwrap().len(), 3);
    assert_eq!(server.last_body().unwrap()["prompt"], "chunked");
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let server = FakeServer::start().await;
    server.set_latency(Duration::from_millis(80), Duration::from_millis(120));
    let started = std::time::Instant::now();
    let (status, _) = generate_json(&server, json!({"prompt": "x"})).await;
    assert_eq!(status, 200);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(80), "{elapsed:?}");
}

/// Sends `count` requests and describes each outcome.
async fn outcomes(server: &FakeServer, count: usize) -> Vec<String> {
    let client = client();
    let mut outcomes = Vec::new();
    for _ in 0..count {
        let result = client
            .post(generations_url(server))
            .json(&json!({"prompt": "x"}))
            .send()
            .await;
        outcomes.push(match result {
            Ok(response) => {
                let status = response.status().as_u16();
                if status != 200 {
                    assert_eq!(header(&response, "retry-after-ms").as_deref(), Some("1"));
                    let json: Value = response.json().await.unwrap();
                    assert_error_shape(&json);
                } else {
                    response.bytes().await.unwrap();
                }
                status.to_string()
            }
            Err(_) => "reset".to_owned(),
        });
    }
    outcomes
}

#[tokio::test]
async fn fault_rate_is_random_retryable_and_deterministic() {
    let server = FakeServer::start().await;
    server.set_fault_rate(1.0, 7);
    let all = outcomes(&server, 24).await;
    assert!(
        all.iter()
            .all(|o| ["500", "503", "429", "reset"].contains(&o.as_str())),
        "{all:?}"
    );
    for kind in ["500", "503", "429", "reset"] {
        assert!(
            all.iter().any(|o| o == kind),
            "{kind} never happened: {all:?}"
        );
    }
    assert_eq!(server.fault_count(), 24);

    // A fault does not consume the script.
    server.push(Reply::unauthorized());
    server.set_fault_rate(0.0, 0);
    assert_eq!(
        generate(&server, json!({"prompt": "x"})).await.status(),
        401
    );

    // Same seed, same sequence.
    let a = FakeServer::start().await;
    let b = FakeServer::start().await;
    a.set_fault_rate(0.5, 42);
    b.set_fault_rate(0.5, 42);
    let (first, second) = (outcomes(&a, 30).await, outcomes(&b, 30).await);
    assert_eq!(first, second);
    assert!(first.iter().any(|o| o == "200"));
    assert!(first.iter().any(|o| o != "200"));
}

#[tokio::test]
async fn wait_for_requests_and_drop_shuts_down() {
    let server = FakeServer::start().await;
    server.push(Reply::hang());
    let url = generations_url(&server);
    let pending = tokio::spawn(async move {
        client()
            .post(url)
            .json(&json!({"prompt": "x"}))
            .send()
            .await
    });
    assert!(server.wait_for_requests(1, Duration::from_secs(5)).await);
    assert!(!server.wait_for_requests(2, Duration::from_millis(50)).await);

    let base = server.base_url();
    drop(server);
    // The hung connection is closed by the shutdown, so the client sees an error.
    let result = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("the hung request ends when the server is dropped")
        .unwrap();
    assert!(result.is_err());
    // And nothing listens any more.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let error = client()
        .post(format!("{base}/images/generations"))
        .json(&json!({"prompt": "x"}))
        .send()
        .await
        .expect_err("server is gone");
    assert!(error.is_connect(), "{error:?}");
}
