//! The Images API client against the in-process fake server: what a caller sees for every kind
//! of answer, error, fault and cancellation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use easel::api::request::{GenerationParams, ProviderRules, check};
use easel::api::{
    ApiError, ApiOutput, CheckedRequest, ClientEvent, ClientOptions, DownloadHosts, ErrorKind,
    ImagesClient, RateHints,
};
use easel::catalog::Catalog;
use easel::secret::ApiKey;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::fake_server::{FakeServer, Reply};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio_util::sync::CancellationToken;

/// A key that appears nowhere else, so any leak is unmistakable.
const KEY: &str = "sk-test-UNIQUE-123";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn options(server: &FakeServer) -> ClientOptions {
    options_for(&server.base_url())
}

fn options_for(base_url: &str) -> ClientOptions {
    let mut opts = ClientOptions::new("OpenAI", base_url);
    opts.api_key = ApiKey::new(KEY);
    opts
}

fn params(model: &str) -> GenerationParams {
    GenerationParams {
        prompt: "a lighthouse at dusk".into(),
        model: model.into(),
        ..Default::default()
    }
}

fn checked(p: &GenerationParams) -> CheckedRequest {
    check(p, &Catalog::builtin(), &ProviderRules::default())
        .unwrap_or_else(|e| panic!("{p:?} refused: {e}"))
}

fn simple() -> CheckedRequest {
    checked(&params("gpt-image-2"))
}

fn streamed(partials: u8) -> CheckedRequest {
    let mut p = params("gpt-image-2");
    p.stream = true;
    p.partial_images = Some(partials);
    checked(&p)
}

fn drain(rx: &mut UnboundedReceiver<ClientEvent>) -> Vec<ClientEvent> {
    let mut out = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        out.push(ev);
    }
    out
}

/// Every error a test produces goes through this: the key never shows, and nothing a terminal
/// would interpret survives into the message.
fn assert_clean(e: &ApiError) {
    let shown = e.to_string();
    let debug = format!("{e:?}");
    assert!(
        !shown.contains(KEY) && !debug.contains(KEY),
        "the API key leaked: {shown} / {debug}"
    );
    assert!(
        !shown.contains("UNIQUE-123") && !debug.contains("UNIQUE-123"),
        "part of the API key leaked: {shown}"
    );
    assert!(
        !shown.chars().any(easel::sanitize::is_unsafe),
        "unsafe characters shown: {shown:?}"
    );
}

/// Run one generation with a fresh client and return what the caller sees.
async fn generate(
    opts: ClientOptions,
    request: &CheckedRequest,
) -> (Result<ApiOutput, ApiError>, Vec<ClientEvent>) {
    let client = ImagesClient::new(opts).expect("client");
    let (tx, mut rx) = unbounded_channel();
    let result = client
        .generate(request, &CancellationToken::new(), &tx)
        .await;
    if let Err(e) = &result {
        assert_clean(e);
    }
    (result, drain(&mut rx))
}

async fn expect_error(
    opts: ClientOptions,
    request: &CheckedRequest,
) -> (ApiError, Vec<ClientEvent>) {
    match generate(opts, request).await {
        (Ok(out), _) => panic!("expected an error, got {} image(s)", out.images.len()),
        (Err(e), events) => (e, events),
    }
}

fn retries(events: &[ClientEvent]) -> Vec<(u32, Duration, ErrorKind)> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Retrying(n) => Some((n.retry, n.wait, n.reason.kind)),
            ClientEvent::Partial { .. } | ClientEvent::RateLimit(_) => None,
        })
        .collect()
}

fn partial_indexes(events: &[ClientEvent]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Partial { index, .. } => Some(*index),
            ClientEvent::Retrying(_) | ClientEvent::RateLimit(_) => None,
        })
        .collect()
}

/// A port on which nothing listens.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

// ---------------------------------------------------------------------------------------------
// Successful answers
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn plain_b64_answer() {
    let server = FakeServer::start().await;
    let mut opts = options(&server);
    opts.organization = Some("org-test-42".into());
    opts.project = Some("proj_test_7".into());
    let mut p = params("gpt-image-2");
    p.size = Some("1536x1024".into());
    p.quality = Some("high".into());
    p.output_format = Some("png".into());
    let request = checked(&p);
    let (result, events) = generate(opts, &request).await;
    let out = result.unwrap();
    assert!(events.is_empty(), "{events:?}");

    assert_eq!(out.images.len(), 1);
    let image = &out.images[0];
    assert_eq!(image.source, "b64_json");
    assert_eq!(image.info.format, "png");
    // The fake draws small images with the requested aspect ratio (64 px on the long side).
    assert_eq!((image.info.width, image.info.height), (64, 42));
    assert!(image.bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(out.attempts, 1);
    assert!(out.created.is_some());
    assert_eq!(out.size.as_deref(), Some("1536x1024"));
    assert_eq!(out.quality.as_deref(), Some("high"));
    assert_eq!(out.output_format.as_deref(), Some("png"));
    let usage = out.usage.expect("usage");
    let (input, output) = (usage.input_tokens.unwrap(), usage.output_tokens.unwrap());
    assert_eq!(
        usage.input_tokens,
        Some(4),
        "one token a word of the prompt"
    );
    assert!(output > 0);
    assert_eq!(usage.total_tokens, Some(input + output));
    assert!(usage.input_tokens_details.is_some());

    let reqs = server.generation_requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(out.request_id, Some(format!("req_{}", r.id)));
    assert_eq!(r.path, "/v1/images/generations");
    assert_eq!(
        r.authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(r.header("openai-organization"), Some("org-test-42"));
    assert_eq!(r.header("openai-project"), Some("proj_test_7"));
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    assert!(
        r.header("user-agent")
            .is_some_and(|u| u.starts_with("easel/"))
    );
    assert_eq!(r.body, Value::Object(request.body.clone()));
}

#[tokio::test]
async fn no_org_or_project_headers_unless_set() {
    let server = FakeServer::start().await;
    let (result, _) = generate(options(&server), &simple()).await;
    result.unwrap();
    let r = &server.generation_requests()[0];
    assert_eq!(r.header("openai-organization"), None);
    assert_eq!(r.header("openai-project"), None);
}

#[tokio::test]
async fn url_result_is_downloaded_without_the_key() {
    let server = FakeServer::start().await;
    server.push(Reply::image_url().with_revised_prompt("A serene lighthouse at dusk"));
    let mut opts = options(&server);
    opts.organization = Some("org-test-42".into());
    let mut p = params("dall-e-3");
    p.response_format = Some("url".into());
    p.style = Some("natural".into());
    let (result, _) = generate(opts, &checked(&p)).await;
    let out = result.unwrap();
    assert_eq!(out.images.len(), 1);
    let image = &out.images[0];
    assert_eq!(image.source, "url");
    assert_eq!(image.info.format, "png");
    assert_eq!(
        image.revised_prompt.as_deref(),
        Some("A serene lighthouse at dusk")
    );
    assert!(out.usage.is_none());

    let all = server.requests();
    assert_eq!(all.len(), 2, "one generation, one download");
    let download = &all[1];
    assert_eq!(download.method, "GET");
    assert!(download.path.starts_with("/v1/files/"), "{}", download.path);
    assert_eq!(
        download.authorization, None,
        "the key went to the download host"
    );
    assert_eq!(download.header("openai-organization"), None);
    assert!(!format!("{:?}", download.headers).contains(KEY));
    // The generation request itself did carry the key.
    assert!(
        all[0]
            .authorization
            .as_deref()
            .is_some_and(|a| a.ends_with(KEY))
    );
}

#[tokio::test]
async fn data_url_result() {
    let server = FakeServer::start().await;
    server.push(Reply::data_url());
    let (result, _) = generate(options(&server), &simple()).await;
    let out = result.unwrap();
    assert_eq!(out.images.len(), 1);
    assert_eq!(out.images[0].source, "data_url");
    assert_eq!(out.images[0].info.format, "png");
    assert_eq!(server.request_count(), 1, "a data: URL needs no download");
}

#[tokio::test]
async fn three_images() {
    let server = FakeServer::start().await;
    let mut p = params("gpt-image-2");
    p.n = 3;
    p.output_format = Some("webp".into());
    p.output_compression = Some(80);
    let (result, _) = generate(options(&server), &checked(&p)).await;
    let out = result.unwrap();
    assert_eq!(out.images.len(), 3);
    for image in &out.images {
        assert_eq!(image.info.format, "webp");
        assert_eq!((image.info.width, image.info.height), (64, 64));
    }
    assert_ne!(out.images[0].bytes, out.images[1].bytes);
    assert_ne!(out.images[1].bytes, out.images[2].bytes);
    assert_eq!(server.last_body().unwrap()["n"], json!(3));
}

#[tokio::test]
async fn three_url_images_are_all_downloaded() {
    let server = FakeServer::start().await;
    server.push(Reply::image_url());
    let mut p = params("dall-e-2");
    p.n = 3;
    p.size = Some("256x256".into());
    p.response_format = Some("url".into());
    let (result, _) = generate(options(&server), &checked(&p)).await;
    let out = result.unwrap();
    assert_eq!(out.images.len(), 3);
    assert!(out.images.iter().all(|i| i.source == "url"));
    assert_eq!(server.request_count(), 4);
}

#[tokio::test]
async fn streamed_answer_with_two_partials() {
    let server = FakeServer::start().await;
    server.push(Reply::stream(2).with_event_delay(Duration::from_millis(250)));
    let client = ImagesClient::new(options(&server)).unwrap();
    let request = streamed(2);
    let (tx, mut rx) = unbounded_channel();
    let cancel = CancellationToken::new();
    let task = tokio::spawn({
        let (client, request, cancel) = (client.clone(), request.clone(), cancel.clone());
        async move { client.generate(&request, &cancel, &tx).await }
    });
    // The first partial arrives while the request is still running.
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let ClientEvent::Partial { index, bytes } = first else {
        panic!("expected a partial, got {first:?}")
    };
    assert_eq!(index, 0);
    assert!(bytes.starts_with(b"\x89PNG"));
    assert!(
        !task.is_finished(),
        "the partial must arrive before the result"
    );
    let out = task.await.unwrap().unwrap();
    let rest = drain(&mut rx);
    assert_eq!(partial_indexes(&rest), [1]);
    assert_eq!(out.images.len(), 1);
    assert_eq!(out.images[0].info.format, "png");
    assert_eq!(out.attempts, 1);
    assert!(out.usage.is_some());
    assert!(out.request_id.is_some());
    let r = &server.generation_requests()[0];
    assert_eq!(r.body["stream"], json!(true));
    assert_eq!(r.body["partial_images"], json!(2));
    assert_eq!(r.header("accept"), Some("text/event-stream"));
}

// ---------------------------------------------------------------------------------------------
// Error answers
// ---------------------------------------------------------------------------------------------

async fn single_error(reply: Reply) -> (ApiError, FakeServer) {
    let server = FakeServer::start().await;
    server.set_default(reply);
    let (e, _) = expect_error(options(&server), &simple()).await;
    (e, server)
}

#[tokio::test]
async fn status_401_is_authentication() {
    let (e, server) = single_error(Reply::unauthorized()).await;
    assert_eq!(e.kind, ErrorKind::Authentication);
    assert_eq!(e.status, Some(401));
    assert_eq!(e.code.as_deref(), Some("invalid_api_key"));
    assert!(
        e.request_id
            .as_deref()
            .is_some_and(|id| id.starts_with("req_"))
    );
    assert!(
        e.to_string()
            .starts_with("OpenAI did not accept the API key (invalid_api_key): Incorrect API key"),
        "{e}"
    );
    assert_eq!(server.generation_count(), 1, "never retried");
}

#[tokio::test]
async fn status_403_is_permission() {
    let (e, server) = single_error(Reply::error(
        403,
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ))
    .await;
    assert_eq!(e.kind, ErrorKind::Permission);
    assert_eq!(e.status, Some(403));
    assert!(e.message.contains("territory not supported"));
    assert_eq!(server.generation_count(), 1);
}

#[tokio::test]
async fn status_404_is_not_found() {
    let (e, server) = single_error(Reply::error(
        404,
        "invalid_request_error",
        "model_not_found",
        "The model `gpt-image-9` does not exist or you do not have access to it.",
    ))
    .await;
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(e.code.as_deref(), Some("model_not_found"));
    assert_eq!(server.generation_count(), 1);
}

#[tokio::test]
async fn moderation_blocked_keeps_its_details() {
    let (e, server) = single_error(Reply::moderation_blocked()).await;
    assert_eq!(e.kind, ErrorKind::Moderation);
    assert_eq!(e.error_type.as_deref(), Some("image_generation_user_error"));
    let details = e
        .moderation_details
        .as_deref()
        .expect("moderation_details kept");
    assert!(details.contains("violence"), "{details}");
    let shown = e.to_string();
    assert!(
        shown.starts_with("OpenAI refused the prompt (moderation_blocked)"),
        "{shown}"
    );
    assert!(shown.contains("violence"), "{shown}");
    assert_eq!(server.generation_count(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn content_policy_violation_is_moderation() {
    let (e, server) = single_error(Reply::content_policy_violation()).await;
    assert_eq!(e.kind, ErrorKind::Moderation);
    assert_eq!(e.code.as_deref(), Some("content_policy_violation"));
    assert_eq!(server.generation_count(), 1);
}

#[tokio::test]
async fn unknown_parameter_keeps_the_param() {
    let (e, server) = single_error(Reply::unknown_parameter("style")).await;
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    assert_eq!(e.param.as_deref(), Some("style"));
    assert_eq!(e.code.as_deref(), Some("unknown_parameter"));
    assert!(e.to_string().contains("(param: style)"), "{e}");
    assert_eq!(server.generation_count(), 1);
}

#[tokio::test]
async fn insufficient_quota_is_not_retried() {
    let server = FakeServer::start().await;
    server.set_default(Reply::insufficient_quota().with_header("retry-after-ms", "1"));
    let mut opts = options(&server);
    opts.max_retries = 5;
    let (e, events) = expect_error(opts, &simple()).await;
    assert_eq!(e.kind, ErrorKind::QuotaExceeded);
    assert_eq!(e.status, Some(429));
    assert_eq!(server.generation_count(), 1);
    assert!(retries(&events).is_empty());
}

/// Server errors are retried until the budget is spent: max_retries + 1 requests.
async fn retried_until_budget(reply: Reply, max_retries: u32, kind: ErrorKind, status: u16) {
    let server = FakeServer::start().await;
    server.set_default(reply.with_header("retry-after-ms", "5"));
    let mut opts = options(&server);
    opts.max_retries = max_retries;
    let (e, events) = expect_error(opts, &simple()).await;
    assert_eq!(e.kind, kind);
    assert_eq!(e.status, Some(status));
    assert_eq!(server.generation_count(), max_retries as usize + 1);
    let seen = retries(&events);
    assert_eq!(
        seen.iter().map(|r| r.0).collect::<Vec<_>>(),
        (1..=max_retries).collect::<Vec<_>>()
    );
    assert!(
        seen.iter()
            .all(|r| r.1 == Duration::from_millis(5) && r.2 == kind),
        "{seen:?}"
    );
}

#[tokio::test]
async fn status_500_is_retried_up_to_max_retries() {
    retried_until_budget(Reply::server_error(), 3, ErrorKind::Server, 500).await;
}

#[tokio::test]
async fn status_503_is_retried_up_to_max_retries() {
    retried_until_budget(Reply::overloaded(), 2, ErrorKind::Server, 503).await;
}

#[tokio::test]
async fn status_500_without_retry_header_backs_off() {
    let server = FakeServer::start().await;
    server.set_default(Reply::server_error());
    let mut opts = options(&server);
    opts.max_retries = 1;
    let start = Instant::now();
    let (e, events) = expect_error(opts, &simple()).await;
    assert_eq!(e.kind, ErrorKind::Server);
    assert_eq!(server.generation_count(), 2);
    // The SDKs' first backoff: 0.5 s less up to 25 %.
    let wait = retries(&events)[0].1;
    assert!(
        (Duration::from_millis(375)..=Duration::from_millis(500)).contains(&wait),
        "{wait:?}"
    );
    assert!(start.elapsed() >= wait);
}

#[tokio::test]
async fn rate_limited_with_retry_after_ms_then_success() {
    let server = FakeServer::start().await;
    server.push(Reply::rate_limited(Some(60), None));
    let start = Instant::now();
    let (result, events) = generate(options(&server), &simple()).await;
    let out = result.unwrap();
    assert_eq!(out.attempts, 2);
    assert_eq!(out.images.len(), 1);
    assert_eq!(server.generation_count(), 2);
    assert_eq!(
        retries(&events),
        [(1, Duration::from_millis(60), ErrorKind::RateLimited)]
    );
    assert!(start.elapsed() >= Duration::from_millis(60));
    // The request id is the one of the attempt that succeeded.
    let last = server.generation_requests().last().unwrap().id;
    assert_eq!(out.request_id, Some(format!("req_{last}")));
}

#[tokio::test]
async fn x_should_retry_false_stops_a_retry() {
    let server = FakeServer::start().await;
    server.set_default(
        Reply::server_error()
            .with_header("x-should-retry", "false")
            .with_header("retry-after-ms", "1"),
    );
    let (e, events) = expect_error(options(&server), &simple()).await;
    assert_eq!(e.kind, ErrorKind::Server);
    assert_eq!(server.generation_count(), 1);
    assert!(retries(&events).is_empty());
}

#[tokio::test]
async fn x_should_retry_true_retries_a_400() {
    let server = FakeServer::start().await;
    server.push(
        Reply::error(400, "invalid_request_error", "flaky", "try again")
            .with_header("x-should-retry", "true")
            .with_header("retry-after-ms", "1"),
    );
    let (result, events) = generate(options(&server), &simple()).await;
    assert_eq!(result.unwrap().attempts, 2);
    assert_eq!(retries(&events).len(), 1);
}

#[tokio::test]
async fn numeric_error_code_is_parsed() {
    let (e, server) = single_error(Reply::numeric_code_error(400)).await;
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    assert_eq!(e.code.as_deref(), Some("400"));
    assert_eq!(e.message, "could not load model: rpc error");
    assert!(e.to_string().contains("(400)"), "{e}");
    assert_eq!(server.generation_count(), 1);
}

#[tokio::test]
async fn non_json_error_body_is_quoted() {
    let (e, _server) = single_error(
        Reply::raw(502, "text/html", "<html>Bad Gateway</html>")
            .with_header("x-should-retry", "false"),
    )
    .await;
    assert_eq!(e.kind, ErrorKind::Server);
    assert_eq!(e.status, Some(502));
    assert!(e.message.contains("Bad Gateway"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn hang_is_a_timeout() {
    let server = FakeServer::start().await;
    server.set_default(Reply::hang());
    let mut opts = options(&server);
    opts.timeout = Duration::from_millis(300);
    opts.max_retries = 0;
    let start = Instant::now();
    let (e, _) = expect_error(opts, &simple()).await;
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.message.contains("within 0.3 s while sending"), "{e}");
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.generation_count(), 1);
}

#[tokio::test]
async fn connection_refused() {
    let mut opts = options_for(&format!("http://127.0.0.1:{}/v1", closed_port()));
    opts.max_retries = 0;
    let (e, _) = expect_error(opts, &simple()).await;
    assert_eq!(e.kind, ErrorKind::Connection, "{e}");
    assert!(e.to_string().starts_with("could not reach OpenAI"), "{e}");
}

#[tokio::test]
async fn reset_mid_body_is_a_connection_error() {
    let server = FakeServer::start().await;
    server.set_default(Reply::reset_mid_body());
    let mut opts = options(&server);
    opts.max_retries = 0;
    let (e, _) = expect_error(opts, &simple()).await;
    assert_eq!(e.kind, ErrorKind::Connection, "{e}");
    assert_eq!(server.generation_count(), 1);
}

#[tokio::test]
async fn reset_mid_body_is_retried() {
    let server = FakeServer::start().await;
    server.push(Reply::reset_mid_body());
    let mut opts = options(&server);
    opts.max_retries = 1;
    let (result, events) = generate(opts, &simple()).await;
    let out = result.unwrap();
    assert_eq!(out.attempts, 2);
    assert_eq!(server.generation_count(), 2);
    let seen = retries(&events);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].2, ErrorKind::Connection);
}

#[tokio::test]
async fn connection_reset_is_retried() {
    let server = FakeServer::start().await;
    server.set_default(Reply::connection_reset());
    let mut opts = options(&server);
    opts.max_retries = 1;
    let (e, _) = expect_error(opts, &simple()).await;
    assert_eq!(e.kind, ErrorKind::Connection, "{e}");
    assert_eq!(server.generation_count(), 2);
}

async fn bad_answer(reply: Reply, needle: &str) -> ApiError {
    let server = FakeServer::start().await;
    server.set_default(reply);
    let (e, _) = expect_error(options(&server), &simple()).await;
    assert_eq!(e.kind, ErrorKind::BadAnswer, "{e}");
    assert!(e.to_string().contains(needle), "{e:?} lacks {needle:?}");
    assert_eq!(server.generation_count(), 1, "a bad answer is not retried");
    e
}

#[tokio::test]
async fn truncated_json_is_cut_off() {
    let e = bad_answer(Reply::truncated_json(), "cut off").await;
    assert!(e.request_id.is_some());
}

#[tokio::test]
async fn wrong_shape_is_a_bad_answer() {
    bad_answer(Reply::wrong_shape(), "not an images response").await;
    bad_answer(Reply::wrong_shape_images(), "not an images response").await;
    bad_answer(Reply::empty_data(), "no images").await;
}

#[tokio::test]
async fn not_base64_is_a_bad_answer() {
    bad_answer(Reply::not_base64(), "base64").await;
}

#[tokio::test]
async fn base64_of_text_is_not_an_image() {
    bad_answer(
        Reply::base64_not_image(),
        "expected an image but received text",
    )
    .await;
}

#[tokio::test]
async fn svg_is_refused() {
    bad_answer(Reply::svg(), "SVG").await;
    bad_answer(Reply::svg().via_url(), "SVG").await;
}

#[tokio::test]
async fn html_is_refused() {
    bad_answer(Reply::html(), "HTML").await;
    bad_answer(Reply::html().via_data_url(), "HTML").await;
}

#[tokio::test]
async fn url_404_is_a_bad_answer() {
    let e = bad_answer(Reply::url_404(), "404").await;
    assert!(e.message.contains("/v1/files/missing.png"), "{e}");
}

#[tokio::test]
async fn url_larger_than_the_limit() {
    for reply in [Reply::url_huge(3 << 20), Reply::url_huge_unsized(3 << 20)] {
        let server = FakeServer::start().await;
        server.set_default(reply);
        let mut opts = options(&server);
        opts.download_max_bytes = 1 << 20;
        let (e, _) = expect_error(opts, &simple()).await;
        assert_eq!(e.kind, ErrorKind::BadAnswer, "{e}");
        assert!(e.to_string().contains("larger than the 1 MB limit"), "{e}");
        assert_eq!(server.generation_count(), 1);
    }
}

#[tokio::test]
async fn url_with_another_scheme_is_not_fetched() {
    let server = FakeServer::start().await;
    server.set_default(Reply::json(
        200,
        json!({ "created": 1, "data": [{ "url": "file:///etc/passwd" }] }),
    ));
    let (e, _) = expect_error(options(&server), &simple()).await;
    assert_eq!(e.kind, ErrorKind::BadAnswer);
    assert!(e.message.contains("refusing to fetch"), "{e}");
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn download_that_hangs_times_out() {
    // A host that accepts the connection and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let server = FakeServer::start().await;
    server.set_default(Reply::json(
        200,
        json!({ "created": 1, "data": [{ "url": format!("http://{silent}/img.png") }] }),
    ));
    let mut opts = options(&server);
    // The silent host is on loopback: allowed only when the provider's policy says so.
    opts.download_hosts = DownloadHosts::Any;
    opts.download_timeout = Duration::from_millis(300);
    let start = Instant::now();
    let (e, _) = expect_error(opts, &simple()).await;
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    // The download's own limit, not the request's 600 s.
    assert!(
        e.message
            .contains("within 0.3 s while downloading the image"),
        "{e}"
    );
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(server.generation_count(), 1);
    hold.abort();
}

#[tokio::test]
async fn stream_cut_after_partial_is_not_retried() {
    let server = FakeServer::start().await;
    server.set_default(Reply::stream_cut_after_partial());
    let (e, events) = expect_error(options(&server), &streamed(2)).await;
    assert_eq!(e.kind, ErrorKind::Connection, "{e}");
    assert!(e.message.contains("after 1 partial image"), "{e}");
    assert_eq!(server.generation_count(), 1);
    assert_eq!(partial_indexes(&events), [0]);
    assert!(retries(&events).is_empty());
}

#[tokio::test]
async fn stream_error_event_is_not_retried() {
    let server = FakeServer::start().await;
    server.set_default(Reply::stream_error_event());
    let (e, events) = expect_error(options(&server), &streamed(1)).await;
    assert!(
        e.message
            .contains("The image generation failed on the server"),
        "{e}"
    );
    assert_eq!(e.code.as_deref(), Some("image_generation_failed"));
    assert_eq!(e.kind, ErrorKind::Server);
    assert_eq!(e.status, None, "the HTTP status was 200");
    assert!(e.request_id.is_some());
    assert_eq!(server.generation_count(), 1);
    assert!(retries(&events).is_empty());
}

#[tokio::test]
async fn stream_that_never_completes_times_out() {
    let server = FakeServer::start().await;
    server.set_default(Reply::stream_never_completes());
    let mut opts = options(&server);
    opts.stream_idle_timeout = Duration::from_millis(300);
    let start = Instant::now();
    let (e, events) = expect_error(opts, &streamed(2)).await;
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(
        e.message.contains("silent for 0.3 s after 1 partial image"),
        "{e}"
    );
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(server.generation_count(), 1);
    assert_eq!(partial_indexes(&events), [0]);
    assert!(retries(&events).is_empty());
}

#[tokio::test]
async fn stream_without_the_final_image_is_a_bad_answer() {
    let server = FakeServer::start().await;
    server.set_default(Reply::raw(
        200,
        "text/event-stream",
        "data: {\"type\":\"keepalive\"}\n\ndata: [DONE]\n\n",
    ));
    let (e, _) = expect_error(options(&server), &streamed(0)).await;
    assert_eq!(e.kind, ErrorKind::BadAnswer);
    assert!(e.message.contains("without the finished image"), "{e}");
    assert_eq!(server.generation_count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn cancel_during_a_hang() {
    let server = FakeServer::start().await;
    server.set_default(Reply::hang());
    let client = ImagesClient::new(options(&server)).unwrap();
    let cancel = CancellationToken::new();
    let (tx, _rx) = unbounded_channel();
    let request = simple();
    let task = tokio::spawn({
        let (client, cancel) = (client.clone(), cancel.clone());
        async move { client.generate(&request, &cancel, &tx).await }
    });
    assert!(server.wait_for_requests(1, Duration::from_secs(5)).await);
    let start = Instant::now();
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("cancel ends the request")
        .unwrap();
    let e = result.unwrap_err();
    assert_clean(&e);
    assert_eq!(e.kind, ErrorKind::Cancelled);
    assert_eq!(e.to_string(), "cancelled");
    assert!(
        start.elapsed() < Duration::from_millis(1000),
        "{:?}",
        start.elapsed()
    );
    // The hung connection is closed, not left open.
    assert!(
        server
            .wait_for_open_connections(0, Duration::from_secs(2))
            .await
    );
    assert_eq!(server.generation_count(), 1);
}

#[tokio::test]
async fn cancel_during_a_retry_wait() {
    let server = FakeServer::start().await;
    server.push(Reply::rate_limited(Some(30_000), None));
    let client = ImagesClient::new(options(&server)).unwrap();
    let cancel = CancellationToken::new();
    let (tx, mut rx) = unbounded_channel();
    let request = simple();
    let task = tokio::spawn({
        let (client, cancel) = (client.clone(), cancel.clone());
        async move { client.generate(&request, &cancel, &tx).await }
    });
    // (What the 429 said about the rate limit comes first.)
    let mut ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    if matches!(ev, ClientEvent::RateLimit(_)) {
        ev = rx.recv().await.unwrap();
    }
    let ClientEvent::Retrying(notice) = ev else {
        panic!("expected a retry notice, got {ev:?}")
    };
    assert_eq!(notice.wait, Duration::from_secs(30));
    let start = Instant::now();
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("cancel ends the wait")
        .unwrap();
    let e = result.unwrap_err();
    assert_clean(&e);
    assert_eq!(e.kind, ErrorKind::Cancelled);
    assert!(
        start.elapsed() < Duration::from_millis(1000),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.generation_count(), 1, "no attempt after the cancel");
}

#[tokio::test]
async fn cancel_before_start() {
    let server = FakeServer::start().await;
    let client = ImagesClient::new(options(&server)).unwrap();
    let cancel = CancellationToken::new();
    cancel.cancel();
    let (tx, _rx) = unbounded_channel();
    let e = client.generate(&simple(), &cancel, &tx).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Cancelled);
}

// ---------------------------------------------------------------------------------------------
// Hostile servers and the key
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn hostile_error_text_is_made_safe() {
    let hostile = "boom \u{1b}]52;c;aGVsbG8=\u{7} \u{202e}exe.txt \u{1b}[2J\u{9b}31m\u{200b}done";
    let server = FakeServer::start().await;
    server.push(Reply::json(
        400,
        json!({ "error": {
            "message": hostile,
            "type": format!("invalid_request_error{hostile}"),
            "param": format!("prompt{hostile}"),
            "code": format!("bad\u{202e}code\u{1b}"),
            "moderation_details": hostile,
        }}),
    ));
    server.push(Reply::raw(400, "text/plain", format!("plain {hostile}")));
    server.push(Reply::json(
        200,
        json!({ "created": 1, "data": [{ "url": format!("gopher://x/{hostile}") }] }),
    ));
    server.push(Reply::json(
        200,
        json!({ "created": 1, "data": [{ "b64_json": hostile }] }),
    ));
    for _ in 0..4 {
        let (e, _) = expect_error(options(&server), &simple()).await;
        let shown = e.to_string();
        assert!(!shown.chars().any(easel::sanitize::is_unsafe), "{shown:?}");
        let fields = [
            Some(&e.message),
            e.error_type.as_ref(),
            e.param.as_ref(),
            e.code.as_ref(),
            e.moderation_details.as_ref(),
        ];
        for text in fields.into_iter().flatten() {
            assert!(!text.chars().any(easel::sanitize::is_unsafe), "{text:?}");
        }
    }
    // A stream error event with the same text.
    let event = json!({ "type": "error", "error": { "message": hostile, "code": hostile } });
    server.push(Reply::raw(
        200,
        "text/event-stream",
        format!("event: error\ndata: {event}\n\n"),
    ));
    let (e, _) = expect_error(options(&server), &streamed(0)).await;
    assert!(e.message.contains("boom"), "{e}");
}

#[tokio::test]
async fn the_key_never_appears_in_errors() {
    let server = FakeServer::start().await;
    let echo = format!("Incorrect API key provided: {KEY}. Authorization: Bearer {KEY}");
    // A retried error that echoes the key: the retry notice must not show it either.
    server.push(
        Reply::error(500, "server_error", "server_error", &echo).with_header("retry-after-ms", "1"),
    );
    let (result, events) = generate(options(&server), &simple()).await;
    assert_eq!(result.unwrap().attempts, 2);
    let notices: Vec<&ApiError> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Retrying(n) => Some(&n.reason),
            ClientEvent::Partial { .. } | ClientEvent::RateLimit(_) => None,
        })
        .collect();
    assert_eq!(notices.len(), 1);
    for reason in notices {
        assert_clean(reason);
        assert!(reason.message.contains("<redacted>"), "{reason}");
    }
    server.push_all([
        Reply::error(401, "invalid_request_error", "invalid_api_key", &echo),
        Reply::json(400, json!({ "error": { "message": echo, "param": KEY, "code": KEY, "moderation_details": { "key": KEY } } })),
        Reply::raw(403, "text/html", format!("<html>{echo}</html>")),
        Reply::json(200, json!({ "created": 1, "data": [{ "b64_json": KEY }] })),
        Reply::json(200, json!({ "created": 1, "data": [{ "url": format!("{}/files/{KEY}.png", server.base_url()) }] })),
    ]);
    for _ in 0..5 {
        // expect_error runs assert_clean on every error.
        expect_error(options(&server), &simple()).await;
    }
    // Transport failures too.
    let mut opts = options_for(&format!("http://127.0.0.1:{}/v1", closed_port()));
    opts.max_retries = 0;
    expect_error(opts, &simple()).await;
}

// ---------------------------------------------------------------------------------------------
// Hardening (issue 9): redirects, redaction, streams, image counts, download policy
// ---------------------------------------------------------------------------------------------

/// A key as long as real ones, so that runs of 20 characters can be looked for.
const LONG_KEY: &str = "sk-proj-LongKeyForRedaction0123456789abcdefghijklmnopqrstuvwxyzABCDEF";

fn long_key_options(server: &FakeServer) -> ClientOptions {
    let mut opts = ClientOptions::new("OpenAI", &server.base_url());
    opts.api_key = ApiKey::new(LONG_KEY);
    opts
}

/// Every run of 20 characters of `key` that `text` holds.
fn key_pieces_in(text: &str, key: &str) -> Vec<String> {
    let chars: Vec<char> = key.chars().collect();
    chars
        .windows(20)
        .map(|w| w.iter().collect::<String>())
        .filter(|piece| text.contains(piece.as_str()))
        .collect()
}

fn assert_no_key_piece(what: &str, text: &str) {
    let found = key_pieces_in(text, LONG_KEY);
    assert!(
        found.is_empty(),
        "{what} holds part of the key {found:?}: {text}"
    );
}

/// Item 1: an Images API request never follows a redirect, so neither the key, the organisation
/// headers nor the prompt reach another host (the chain used to bring `Authorization` back on
/// the second hop).
#[tokio::test]
async fn an_api_redirect_is_not_followed() {
    let origin = FakeServer::start().await;
    let foreign = FakeServer::start().await;
    let target = format!("{}/images/generations", foreign.base_url());
    foreign.push(Reply::redirect(307, &target));
    foreign.push(Reply::redirect(307, &target));
    for status in [307, 308, 301, 302, 303] {
        origin.push(Reply::redirect(status, &target));
        let mut opts = options(&origin);
        opts.organization = Some("org-test-42".into());
        opts.project = Some("proj_test_7".into());
        let (e, events) = expect_error(opts, &simple()).await;
        assert!(
            retries(&events).is_empty(),
            "{status}: a redirect is not retried"
        );
        assert_eq!(e.status, Some(status), "{e}");
        let shown = e.to_string();
        assert!(
            shown.contains("redirected") && shown.contains(&foreign.addr().to_string()),
            "{status}: the message names where it was sent: {shown}"
        );
        assert!(
            shown.contains(&format!("base_url to {}", foreign.base_url())),
            "{status}: says what to do: {shown}"
        );
        assert!(!shown.contains("404"), "{shown}");
    }
    assert_eq!(origin.generation_count(), 5);
    for r in foreign.requests() {
        assert_eq!(r.authorization, None, "the key went to the foreign host");
        assert_eq!(r.header("openai-organization"), None);
        assert_eq!(r.header("openai-project"), None);
    }
    assert_eq!(
        foreign.request_count(),
        0,
        "nothing at all goes to the other host"
    );
}

/// Items 3 and 17: a key that straddles the point where an error body or a URL is shortened is
/// still redacted (and so is any run of 20 characters of it).
#[tokio::test]
async fn a_key_cut_by_shortening_is_still_redacted() {
    let server = FakeServer::start().await;
    for pad in [180, 185, 190, 195, 198] {
        let body = format!("{}{LONG_KEY} trailing", "x".repeat(pad));
        server.push(Reply::raw(400, "text/plain", body));
    }
    // Only a piece of the key: still redacted.
    server.push(Reply::raw(
        400,
        "text/plain",
        format!("piece {}", &LONG_KEY[5..40]),
    ));
    for pad in [80, 90, 100, 105, 110] {
        let url = format!(
            "{}/files/{}{LONG_KEY}.png",
            server.base_url(),
            "p".repeat(pad)
        );
        server.push(Reply::json(
            200,
            json!({ "created": 1, "data": [{ "url": url }] }),
        ));
    }
    for i in 0..11 {
        let client = ImagesClient::new(long_key_options(&server)).unwrap();
        let (tx, _rx) = unbounded_channel();
        let e = client
            .generate(&simple(), &CancellationToken::new(), &tx)
            .await
            .unwrap_err();
        assert_no_key_piece("the error", &e.to_string());
        assert_no_key_piece("the error (debug)", &format!("{e:?}"));
        if i < 6 {
            assert!(e.to_string().contains("<redacted>"), "{e}");
        }
    }
}

/// Item 4: a key echoed in a successful answer (revised prompt, request id, echoed fields) is
/// redacted before anything can print or store it.
#[tokio::test]
async fn a_key_echoed_in_a_successful_answer_is_redacted() {
    let server = FakeServer::start().await;
    let png = support::fake_server::render_image(1, 8, 8, "png", false);
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &png);
    server.push(
        Reply::json(
            200,
            json!({ "created": 1, "size": LONG_KEY, "quality": LONG_KEY, "background": LONG_KEY,
                    "output_format": LONG_KEY,
                    "data": [{ "b64_json": b64, "revised_prompt": format!("a lighthouse {LONG_KEY}") }] }),
        )
        .with_header("x-request-id", format!("req_{LONG_KEY}")),
    );
    let event = json!({ "type": "image_generation.completed", "b64_json": b64,
                        "revised_prompt": format!("echo {LONG_KEY}"), "size": LONG_KEY });
    server.push(Reply::raw(
        200,
        "text/event-stream",
        format!("data: {event}\n\ndata: [DONE]\n\n"),
    ));
    for request in [simple(), streamed(0)] {
        let client = ImagesClient::new(long_key_options(&server)).unwrap();
        let (tx, _rx) = unbounded_channel();
        let out = client
            .generate(&request, &CancellationToken::new(), &tx)
            .await
            .unwrap();
        let revised = out.images[0].revised_prompt.clone().unwrap();
        assert!(revised.contains("<redacted>"), "{revised}");
        let texts = format!(
            "{revised} {:?} {:?} {:?} {:?} {:?}",
            out.request_id, out.size, out.quality, out.background, out.output_format
        );
        assert_no_key_piece("the answer", &texts);
    }
}

/// Item 5: one event's size is capped like a body, and bytes that keep coming do not count as
/// silence (they used to end in "the stream went silent" at the idle timeout).
#[tokio::test]
async fn an_endless_stream_event_is_cut_at_the_cap() {
    let server = FakeServer::start().await;
    server.push(Reply::stream_endless_line(
        64 * 1024,
        Duration::from_millis(10),
    ));
    let mut opts = options(&server);
    opts.max_response_bytes = 1 << 20;
    opts.stream_idle_timeout = Duration::from_millis(300);
    let start = Instant::now();
    let (e, _) = expect_error(opts, &streamed(0)).await;
    assert_eq!(e.kind, ErrorKind::BadAnswer, "{e}");
    assert!(e.message.contains("an event over 1 MB"), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.generation_count(), 1);
}

/// Item 14: the whole-request timeout during a stream is a timeout, not a broken connection.
#[tokio::test]
async fn the_total_timeout_of_a_stream_is_a_timeout() {
    let server = FakeServer::start().await;
    server.push(Reply::stream(3).with_event_delay(Duration::from_millis(250)));
    let mut opts = options(&server);
    opts.timeout = Duration::from_millis(400);
    opts.max_retries = 0;
    let (e, _) = expect_error(opts, &streamed(3)).await;
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.message.contains("within 0.4 s"), "{e}");
    assert!(!e.message.contains("broke"), "{e}");
}

/// Item 14: an organisation from the config is not blamed on OPENAI_ORG_ID.
#[tokio::test]
async fn a_bad_organisation_names_where_it_came_from() {
    let mut opts = ClientOptions::new("localai", "http://127.0.0.1:9/v1");
    opts.organization = Some("org\nbad".into());
    let e = ImagesClient::new(opts).unwrap_err();
    assert!(!e.message.contains("OPENAI_ORG_ID"), "{e}");
    assert!(e.message.contains("[providers.localai]"), "{e}");
    let mut opts = ClientOptions::new("localai", "http://127.0.0.1:9/v1");
    opts.project = Some("proj\nbad".into());
    let e = ImagesClient::new(opts).unwrap_err();
    assert!(!e.message.contains("OPENAI_PROJECT_ID"), "{e}");
    assert!(e.message.contains("[providers.localai]"), "{e}");
}

/// Item 9: more images than asked for are not all kept.
#[tokio::test]
async fn more_images_than_asked_for_are_dropped() {
    let server = FakeServer::start().await;
    let png = support::fake_server::render_image(1, 8, 8, "png", false);
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &png);
    let data: Vec<Value> = (0..40).map(|_| json!({ "b64_json": b64 })).collect();
    server.set_default(Reply::json(200, json!({ "created": 1, "data": data })));
    let (result, _) = generate(options(&server), &simple()).await;
    let out = result.unwrap();
    assert_eq!(out.images.len(), 1, "asked for 1");
    assert_eq!(
        out.warnings,
        ["the server sent 40 images where 1 was asked for: kept the first 1"]
    );
    let mut p = params("gpt-image-2");
    p.n = 3;
    let (result, _) = generate(options(&server), &checked(&p)).await;
    assert_eq!(result.unwrap().images.len(), 3, "asked for 3");
    // A model the catalogue does not know: at most the catalogue's largest n.
    let (result, _) = generate(options(&server), &checked(&params("some-new-model"))).await;
    assert_eq!(result.unwrap().images.len(), 10);
    // A stream with 30 completed events: one kept, the rest counted, not held.
    let event = json!({ "type": "image_generation.completed", "b64_json": b64 });
    server.push(Reply::raw(
        200,
        "text/event-stream",
        format!("data: {event}\n\n").repeat(30),
    ));
    let (result, _) = generate(options(&server), &streamed(0)).await;
    let out = result.unwrap();
    assert_eq!(out.images.len(), 1);
    assert_eq!(
        out.warnings,
        ["the server sent 30 images where 1 was asked for: kept the first 1"]
    );
}

/// Item 17: credentials in an image URL are refused, not sent as Basic auth.
#[tokio::test]
async fn credentials_in_an_image_url_are_refused() {
    let server = FakeServer::start().await;
    let url = format!("http://user:secret@{}/v1/files/x.png", server.addr());
    server.set_default(Reply::json(
        200,
        json!({ "created": 1, "data": [{ "url": url }] }),
    ));
    let (e, _) = expect_error(options(&server), &simple()).await;
    assert_eq!(e.kind, ErrorKind::BadAnswer, "{e}");
    assert!(e.message.contains("credentials"), "{e}");
    assert!(!e.to_string().contains("secret"), "{e}");
    assert_eq!(server.request_count(), 1, "no download was tried");
}

/// Item 17: a URL answer may not send easel to another local service (a loopback port that is
/// not the provider's own).
#[tokio::test]
async fn downloads_from_another_local_service_are_refused() {
    let server = FakeServer::start().await;
    let other = FakeServer::start().await;
    let url = format!("{}/files/huge-100.png", other.base_url());
    server.set_default(Reply::json(
        200,
        json!({ "created": 1, "data": [{ "url": url }] }),
    ));
    let (e, _) = expect_error(options(&server), &simple()).await;
    assert_eq!(e.kind, ErrorKind::BadAnswer, "{e}");
    assert!(
        e.message.contains("download_hosts"),
        "says how to allow it: {e}"
    );
    assert_eq!(
        other.request_count(),
        0,
        "nothing reached the other service"
    );
    // The provider's policy can allow it.
    let mut opts = options(&server);
    opts.download_hosts = DownloadHosts::Any;
    let (e, _) = expect_error(opts, &simple()).await;
    assert!(
        e.message.contains("damaged"),
        "fetched, and not an image: {e}"
    );
    assert_eq!(other.request_count(), 1);
    // Or forbid downloads altogether, or keep them to the provider's own host and port.
    for (hosts, needle) in [
        (DownloadHosts::None, "downloads are off"),
        (DownloadHosts::Provider, "not the provider's own host"),
    ] {
        let mut opts = options(&server);
        opts.download_hosts = hosts;
        let (e, _) = expect_error(opts, &simple()).await;
        assert!(e.message.contains(needle), "{e}");
    }
    assert_eq!(other.request_count(), 1);
}

/// Item 17: a download allowed at first but redirected to a refused place stops there.
#[tokio::test]
async fn a_download_redirected_to_another_local_service_stops() {
    let server = FakeServer::start().await;
    let other = FakeServer::start().await;
    let target = format!("{}/files/huge-100.png", other.base_url());
    let url = format!("{}/files/goto?{target}", server.base_url());
    server.set_default(Reply::json(
        200,
        json!({ "created": 1, "data": [{ "url": url }] }),
    ));
    let (e, _) = expect_error(options(&server), &simple()).await;
    assert_eq!(e.kind, ErrorKind::BadAnswer, "{e}");
    assert!(
        e.message.contains("redirected to") && e.message.contains("download_hosts"),
        "{e}"
    );
    assert_eq!(
        other.request_count(),
        0,
        "nothing reached the other service"
    );
    let goto: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/files/goto"))
        .collect();
    assert_eq!(goto.len(), 1, "the first hop was allowed");
}

/// Item 17: downloads follow redirects, but a bounded number.
#[tokio::test]
async fn downloads_follow_a_bounded_number_of_redirects() {
    let server = FakeServer::start().await;
    server.push(Reply::image_url().via_redirected_url(3));
    let (result, _) = generate(options(&server), &simple()).await;
    assert_eq!(result.unwrap().images[0].source, "url");
    server.push(Reply::image_url().via_redirected_url(8));
    let (e, _) = expect_error(options(&server), &simple()).await;
    assert_eq!(e.kind, ErrorKind::BadAnswer, "{e}");
    assert!(e.message.contains("more than 5 redirects"), "{e}");
}

/// Every answer's `x-ratelimit-*` headers reach the caller; with `defer_rate_limits` a 429 is
/// returned at once (the scheduler waits and sends it again) with its retry-after, and out of
/// credit is not called a rate limit.
#[tokio::test]
async fn rate_limit_headers_are_reported_and_429s_can_be_deferred() {
    let server = FakeServer::start().await;
    server.set_rate_limit(60, 1);
    let (ok, events) = generate(options(&server), &simple()).await;
    assert!(ok.is_ok());
    let hints: Vec<RateHints> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::RateLimit(h) => Some(h.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(hints.len(), 1, "{events:?}");
    assert_eq!(hints[0].limit_requests, Some(60));
    assert_eq!(hints[0].remaining_requests, Some(0));
    assert!(!hints[0].limited);

    // The bucket is empty: a 429 that says when.
    let mut opts = options(&server);
    opts.defer_rate_limits = true;
    opts.max_retries = 2;
    let (refused, events) = generate(opts, &simple()).await;
    let e = refused.unwrap_err();
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert_eq!(e.attempts, 1, "not retried here");
    let limited: Vec<&RateHints> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::RateLimit(h) => Some(h),
            _ => None,
        })
        .collect();
    assert_eq!(limited.len(), 1);
    assert!(limited[0].limited);
    let wait = limited[0].retry_after.unwrap();
    assert!(
        wait > Duration::from_millis(500) && wait <= Duration::from_secs(1),
        "{wait:?}"
    );
    assert_eq!(server.rate_limit_counts(), (1, 1));

    let server = FakeServer::start().await;
    server.push(Reply::insufficient_quota());
    let (broke, events) = generate(options(&server), &simple()).await;
    assert_eq!(broke.unwrap_err().kind, ErrorKind::QuotaExceeded);
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, ClientEvent::RateLimit(h) if h.limited)),
        "{events:?}"
    );
}
