//! The Batch API end to end (issue 14, docs/batch.md): `easel generate --batch` against the
//! fake server's files and batches, the batch polled by later commands (each one a new owner of
//! the data folder: the restart case), its images saved as live ones, a failed line recorded
//! with its error, cancellation, and the contract of the JSONL lines (with a negative control).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use support::fake_server::{FakeServer, batch_line_violations, batch_request_violations};
use support::sandbox::Sandbox;

const BIN: &str = env!("CARGO_BIN_EXE_easel");
const KEY: &str = "sk-batch-test-0123456789abcdefghijklmnop";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

async fn run(s: &Sandbox, server: &FakeServer, args: &[&str]) -> Run {
    let mut cmd: Command = s.clean_command(BIN);
    cmd.args(args)
        .env("OPENAI_BASE_URL", server.base_url())
        .env("OPENAI_API_KEY", KEY);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

async fn records(s: &Sandbox, server: &FakeServer) -> Vec<Value> {
    let r = run(s, server, &["history", "list", "--json", "--limit", "100"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    json_lines(&r.stdout)
}

/// Batch: validating → in_progress → completed with one failed line; every image is saved as
/// a live one (exact bytes, sidecar, cost at half price), the failed job keeps its error. Each
/// command is a new owner of the data folder, so the batch is found again in the store each
/// time (the restart case).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_completes_with_one_failed_line() {
    let server = FakeServer::start().await;
    server.set_batch_failures(vec![1]);
    server.set_batch_auto_advance(false);
    let s = Sandbox::folders();
    let args = [
        "generate",
        "--batch",
        "--json",
        "-q",
        "low",
        "-s",
        "1024x1024",
        "a {red|green|blue} kite",
    ];
    // The live estimate, for the half-price check.
    let dry = run(
        &s,
        &server,
        &[
            "generate",
            "--dry-run",
            "--json",
            "-q",
            "low",
            "-s",
            "1024x1024",
            "a {red|green|blue} kite",
        ],
    )
    .await;
    assert_eq!(dry.code, 0, "{dry:?}");
    let live_total = json_lines(&dry.stdout)
        .last()
        .unwrap()
        .get("estimated_cost_usd")
        .and_then(Value::as_f64)
        .unwrap();

    let sent = run(&s, &server, &args).await;
    assert_eq!(sent.code, 0, "{sent:?}");
    let answer = &json_lines(&sent.stdout)[0];
    let batch_id = answer["batch"].as_str().unwrap().to_string();
    assert!(batch_id.starts_with("batch_"), "{answer}");
    assert_eq!(answer["status"], "validating");
    assert_eq!(answer["jobs"].as_array().unwrap().len(), 3);
    let half = answer["estimated_cost_usd"].as_f64().unwrap();
    assert!(
        (half - live_total / 2.0).abs() < 1e-6,
        "batch estimate {half} is half of {live_total}"
    );
    assert!(!sent.stderr.contains(KEY) && !sent.stdout.contains(KEY));

    // What was uploaded: one line per job, custom_id = the record id, and the live body.
    let lines = server.batch_input_lines();
    assert_eq!(lines.len(), 3);
    let ids: Vec<String> = answer["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for (line, id) in lines.iter().zip(&ids) {
        assert_eq!(line["custom_id"].as_str(), Some(id.as_str()));
        assert_eq!(line["body"]["model"], "gpt-image-2");
    }
    assert!(
        server.batch_violations().is_empty(),
        "{:?}",
        server.batch_violations()
    );
    // The jobs are queued, each with its batch.
    let queued = records(&s, &server).await;
    assert_eq!(queued.len(), 3, "{queued:?}");
    for r in &queued {
        assert_eq!(r["status"], "queued");
        assert_eq!(r["batch"]["id"].as_str(), Some(batch_id.as_str()));
        // A run sent as a batch is still one run.
        assert_eq!(r["run"]["id"], queued[0]["run"]["id"], "{r}");
        assert_eq!(r["run"]["of"], 3, "{r}");
    }

    // A new process polls it: in_progress.
    server.advance_batch(&batch_id);
    let st = run(&s, &server, &["batch", "status", &batch_id, "--json"]).await;
    assert_eq!(st.code, 0, "{st:?}");
    let v = &json_lines(&st.stdout)[0];
    assert_eq!(v["status"], "in_progress", "{st:?}");
    assert_eq!(v["jobs"].as_array().unwrap().len(), 3);
    let listed = run(&s, &server, &["batch", "list"]).await;
    assert_eq!(listed.code, 0, "{listed:?}");
    assert!(listed.stdout.contains(&batch_id), "{listed:?}");

    // And again, another process: completed, results saved.
    server.advance_batch(&batch_id);
    let st = run(&s, &server, &["batch", "status", &batch_id, "--json"]).await;
    assert_eq!(st.code, 0, "{st:?}");
    let v = &json_lines(&st.stdout)[0];
    assert_eq!(v["open"], false, "{st:?}");
    assert_eq!(v["succeeded"], 2, "{st:?}");
    assert_eq!(v["failed"], 1, "{st:?}");
    let states: Vec<String> = server.batch_states().into_iter().map(|(_, s)| s).collect();
    assert_eq!(states, ["completed"]);

    // The output file as the server sent it: the exact bytes of each image.
    let done = records(&s, &server).await;
    assert_eq!(done.len(), 3);
    let by_id = |id: &str| done.iter().find(|r| r["id"] == id).unwrap().clone();
    let failed = by_id(&ids[1]);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("safety system"),
        "{failed}"
    );
    assert_eq!(failed["error"]["code"], "moderation_blocked");
    let out_text = batch_output(&server).await;
    for k in [0usize, 2] {
        let r = by_id(&ids[k]);
        assert_eq!(r["status"], "succeeded", "{r}");
        let outputs = r["outputs"].as_array().unwrap();
        assert_eq!(outputs.len(), 1);
        let path = s.data.join(outputs[0]["path"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        let line = out_text.iter().find(|l| l["custom_id"] == ids[k]).unwrap();
        let sent = STANDARD
            .decode(
                line["response"]["body"]["data"][0]["b64_json"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(bytes, sent, "exact bytes");
        let sidecar: Value =
            serde_json::from_slice(&std::fs::read(path.with_extension("json")).unwrap()).unwrap();
        assert_eq!(sidecar["batch"]["id"].as_str(), Some(batch_id.as_str()));
        assert_eq!(sidecar["id"].as_str(), Some(ids[k].as_str()));
        // Cost at batch prices: the live figure for the same usage, halved.
        let cost = r["cost_usd"].as_f64().unwrap();
        let live = sidecar["estimated_cost_usd"].as_f64().unwrap();
        assert!((cost - live).abs() < 1e-9, "{cost} {live}");
        assert!(cost > 0.0);
        assert_eq!(
            r["request_id"].as_str().unwrap(),
            line["response"]["request_id"].as_str().unwrap()
        );
    }
    // The batch is no longer open.
    let listed = run(&s, &server, &["batch", "list", "--json"]).await;
    assert_eq!(listed.code, 0, "{listed:?}");
    assert!(listed.stdout.trim().is_empty(), "{listed:?}");
}

/// The successful lines of the batch's output file, fetched as easel does.
async fn batch_output(server: &FakeServer) -> Vec<Value> {
    let (id, _) = server.batch_states().pop().unwrap();
    let url = format!("{}/batches/{id}", server.base_url());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let b: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    let file = b["output_file_id"].as_str().unwrap();
    let text = http
        .get(format!("{}/files/{file}/content", server.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    json_lines(&text)
}

/// `--wait` waits across polls and prints what the batch made, as a live run does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_wait_prints_the_saved_paths() {
    let server = FakeServer::start().await;
    let s = Sandbox::folders();
    let mut cmd: Command = s.clean_command(BIN);
    cmd.args(["generate", "--batch", "--wait", "a lighthouse"])
        .env("OPENAI_BASE_URL", server.base_url())
        .env("OPENAI_API_KEY", KEY)
        .env("EASEL_BATCH_POLL_MS", "20");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("batch_"), "{stdout}");
    assert!(
        lines.iter().any(|l| std::path::Path::new(l).is_file()),
        "a saved path: {stdout}"
    );
}

/// Cancel: the server is asked, the batch goes cancelling → cancelled, its jobs end cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_cancel_cancels_its_jobs() {
    let server = FakeServer::start().await;
    server.set_batch_auto_advance(false);
    let s = Sandbox::folders();
    let sent = run(
        &s,
        &server,
        &["generate", "--batch", "--json", "--repeat", "2", "a moth"],
    )
    .await;
    assert_eq!(sent.code, 0, "{sent:?}");
    let batch_id = json_lines(&sent.stdout)[0]["batch"]
        .as_str()
        .unwrap()
        .to_string();
    let c = run(&s, &server, &["batch", "cancel", &batch_id]).await;
    assert_eq!(c.code, 0, "{c:?}");
    assert!(c.stdout.contains("cancelling"), "{c:?}");
    server.advance_batch(&batch_id);
    let st = run(&s, &server, &["batch", "status", &batch_id, "--json"]).await;
    assert_eq!(st.code, 0, "{st:?}");
    let v = &json_lines(&st.stdout)[0];
    assert_eq!(v["status"], "cancelled", "{st:?}");
    assert_eq!(v["cancelled"], 2, "{st:?}");
    for r in records(&s, &server).await {
        assert_eq!(r["status"], "cancelled", "{r}");
    }
    // Unknown ids are refused, with no request that could leave the path.
    let bad = run(&s, &server, &["batch", "cancel", "../files"]).await;
    assert_eq!(bad.code, 1, "{bad:?}");
}

/// `--dry-run` shows the batch lines and the half-price estimate; the demo and edits refuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_dry_run_and_refusals() {
    let server = FakeServer::start().await;
    let s = Sandbox::folders();
    let dry = run(
        &s,
        &server,
        &["generate", "--batch", "--dry-run", "a {fox|hare}"],
    )
    .await;
    assert_eq!(dry.code, 0, "{dry:?}");
    let lines: Vec<Value> = dry
        .stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{dry:?}");
    for l in &lines {
        assert!(batch_line_violations(l).is_empty(), "{l}");
    }
    assert!(dry.stdout.contains("at batch prices"), "{dry:?}");
    assert_eq!(server.request_count(), 0, "nothing sent");

    let demo = s
        .clean_command(BIN)
        .args(["generate", "--batch", "a fox"])
        .output()
        .unwrap();
    assert_eq!(demo.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&demo.stderr).contains("Batch API"));
}

/// The contract check of the lines' bodies: what easel builds validates against
/// `CreateImageRequest`; a line with a bad body does not (the negative control).
#[test]
fn batch_lines_keep_the_images_contract() {
    let good = json!({
        "custom_id": "0192", "method": "POST", "url": "/v1/images/generations",
        "body": {"model": "gpt-image-1", "prompt": "a fox", "n": 1, "size": "1024x1024", "quality": "low"},
    });
    assert!(
        batch_line_violations(&good).is_empty(),
        "{:?}",
        batch_line_violations(&good)
    );
    for bad in [
        json!({"custom_id": "a", "method": "POST", "url": "/v1/images/generations",
               "body": {"model": "gpt-image-1", "prompt": "a fox", "n": "one"}}),
        json!({"custom_id": "a", "method": "POST", "url": "/v1/images/generations",
               "body": {"prompt": 7}}),
        json!({"custom_id": "a", "method": "GET", "url": "/v1/images/generations",
               "body": {"model": "gpt-image-1", "prompt": "a fox"}}),
        json!({"method": "POST", "url": "/v1/images/edits",
               "body": {"model": "gpt-image-1", "prompt": "a fox"}}),
    ] {
        assert!(!batch_line_violations(&bad).is_empty(), "{bad} must fail");
    }
    // The batch's creation, against `CreateBatchRequest` of the batch contract.
    let create = json!({"input_file_id": "file-1", "endpoint": "/v1/images/generations",
                        "completion_window": "24h", "metadata": {"jobs": "2"}});
    assert!(
        batch_request_violations(&create).is_empty(),
        "{:?}",
        batch_request_violations(&create)
    );
    for bad in [
        json!({"input_file_id": "file-1", "endpoint": "/v1/images/generations", "completion_window": "48h"}),
        json!({"endpoint": "/v1/images/generations", "completion_window": "24h"}),
        json!({"input_file_id": "file-1", "endpoint": "/v1/images/generations", "completion_window": "24h", "metadata": {"jobs": 2}}),
    ] {
        assert!(
            !batch_request_violations(&bad).is_empty(),
            "{bad} must fail"
        );
    }
}

/// Stops the sandbox's service when the test ends, however it ends.
struct StopService<'a>(&'a Sandbox);

impl Drop for StopService<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .clean_command(BIN)
            .args(["service", "stop", "--force"])
            .env("EASEL_SERVICE", "on")
            .output();
    }
}

async fn run_service(s: &Sandbox, server: &FakeServer, args: &[&str]) -> Run {
    let mut cmd: Command = s.clean_command(BIN);
    cmd.args(args)
        .env("EASEL_SERVICE", "on")
        .env("OPENAI_BASE_URL", server.base_url())
        .env("OPENAI_API_KEY", KEY);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Through the service: the batch is recorded by the service, shown by `easel service
/// status`, survives the service being stopped, and a new service (started by the next
/// command, which offers its key) polls it to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_resumes_after_the_service_restarts() {
    let server = FakeServer::start().await;
    server.set_batch_auto_advance(false);
    let s = Sandbox::folders();
    let _stop = StopService(&s);
    let sent = run_service(&s, &server, &["generate", "--batch", "--json", "a heron"]).await;
    assert_eq!(sent.code, 0, "{sent:?}");
    let batch_id = json_lines(&sent.stdout)[0]["batch"]
        .as_str()
        .unwrap()
        .to_string();
    let status = run_service(&s, &server, &["service", "status", "--json"]).await;
    assert_eq!(status.code, 0, "{status:?}");
    let v: Value = serde_json::from_str(status.stdout.trim()).unwrap();
    assert_eq!(
        v["batches"][0]["id"].as_str(),
        Some(batch_id.as_str()),
        "{v}"
    );
    let text = run_service(&s, &server, &["service", "status"]).await;
    assert!(text.stdout.contains("batches  1 open"), "{text:?}");

    let stop = run_service(&s, &server, &["service", "stop", "--force"]).await;
    assert_eq!(stop.code, 0, "{stop:?}");
    server.advance_batch(&batch_id);
    server.advance_batch(&batch_id);

    let st = run_service(&s, &server, &["batch", "status", &batch_id, "--json"]).await;
    assert_eq!(st.code, 0, "{st:?}");
    let v = &json_lines(&st.stdout)[0];
    assert_eq!(v["open"], false, "{st:?}");
    assert_eq!(v["succeeded"], 1, "{st:?}");
    let list = run_service(&s, &server, &["history", "list", "--json"]).await;
    assert_eq!(list.code, 0, "{list:?}");
    let done = json_lines(&list.stdout);
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["status"], "succeeded");
    let path = s.data.join(done[0]["outputs"][0]["path"].as_str().unwrap());
    assert!(path.is_file(), "{path:?}");
}

/// The scheduler itself: a batch's records are written by it (a star set while the batch is
/// open is kept when the results are stored), and a scheduler started again on the same store
/// finds the open batch and completes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_scheduler_completes_an_open_batch_and_keeps_user_fields() {
    use easel::api::batch::input_line;
    use easel::api::{ClientOptions, Endpoint, GenerationParams, ImagesClient, ProviderRules};
    use easel::backend::Backend;
    use easel::backend::openai::OpenAiBackend;
    use easel::catalog::Catalog;
    use easel::queue::{NewBatch, ProviderSlot, Scheduler, SchedulerConfig, Submission};
    use easel::store::{HistoryStore, Id, ImageFiles, SledStore, Status};
    use std::collections::HashMap;
    use std::sync::Arc;
    use tokio_util::sync::CancellationToken;

    let server = FakeServer::start().await;
    server.set_batch_auto_advance(false);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = Arc::new(SledStore::open(&data).unwrap());
    let mut opts = ClientOptions::new("OpenAI", &server.base_url());
    opts.api_key = easel::secret::ApiKey::new(KEY);
    let client = ImagesClient::new(opts.clone()).unwrap();
    let slot = || ProviderSlot {
        backend: Arc::new(OpenAiBackend::new(opts.clone()).unwrap()) as Arc<dyn Backend>,
        rules: ProviderRules::default(),
        limit: 1,
    };
    let catalog = Arc::new(Catalog::builtin());
    let start = |store: Arc<SledStore>| {
        let providers = HashMap::from([("openai".to_string(), slot())]);
        let catalog = catalog.clone();
        let data = data.clone();
        async move {
            let s: Arc<dyn HistoryStore> = store;
            Scheduler::start(
                s,
                catalog,
                ImageFiles::new(&data, None),
                providers,
                SchedulerConfig {
                    concurrency: 1,
                    resume_queue: true,
                },
            )
            .await
            .unwrap()
        }
    };
    let params = |p: &str| GenerationParams {
        prompt: p.into(),
        model: "gpt-image-2".into(),
        size: Some("1024x1024".into()),
        quality: Some("low".into()),
        ..Default::default()
    };
    let ids = [Id::new(), Id::new()];
    let checked: Vec<_> = ["a wren", "a finch"]
        .iter()
        .map(|p| {
            easel::api::request::check(&params(p), &catalog, &ProviderRules::default()).unwrap()
        })
        .collect();
    let jsonl = dir.path().join("in.jsonl");
    let text: String = ids
        .iter()
        .zip(&checked)
        .map(|(id, c)| input_line(&id.to_string(), Endpoint::Generations, &c.body) + "\n")
        .collect();
    std::fs::write(&jsonl, text).unwrap();
    let cancel = CancellationToken::new();
    let file = client.upload_batch_file(&jsonl, &cancel).await.unwrap();
    let batch = client
        .create_batch(&file, Endpoint::Generations, &Default::default(), &cancel)
        .await
        .unwrap();

    let (handle, _events) = start(store.clone()).await;
    let jobs = ids
        .iter()
        .zip(["a wren", "a finch"])
        .map(|(id, p)| {
            (
                *id,
                Submission {
                    params: params(p),
                    provider: "openai".into(),
                    front: false,
                    parent: None,
                    run: None,
                },
            )
        })
        .collect();
    let recorded = handle
        .submit_batch(NewBatch {
            batch_id: batch.id.clone(),
            jobs,
            slot: None,
        })
        .await
        .unwrap();
    assert_eq!(recorded, ids);
    handle.star(ids[0], true).await.unwrap();
    handle.poll_batches().await;
    let open = handle.batches().await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].status.map(|s| s.as_str()), Some("validating"));
    handle.shutdown().await;

    // Started again: the batch is found in the store, polled, and its results stored.
    server.advance_batch(&batch.id);
    server.advance_batch(&batch.id);
    let (handle, _events) = start(store.clone()).await;
    let open = handle.batches().await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert!(open[0].has_key);
    handle.poll_batches().await;
    assert!(handle.batches().await.is_empty());
    for id in ids {
        let r = store.get(id).unwrap().unwrap();
        assert_eq!(r.status, Status::Succeeded, "{r:?}");
        assert_eq!(r.outputs.len(), 1);
        assert!(data.join(&r.outputs[0].path).is_file());
        assert_eq!(r.starred, id == ids[0], "the star set meanwhile is kept");
    }
    assert!(store.queue().unwrap().is_empty());
    handle.shutdown().await;
}

/// The client: the retry contract applies to the Batch API calls (a 500 and a 429 are retried,
/// a 404 is not), errors are typed, and the key never appears in one even when the server
/// echoes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batch_client_retries_types_errors_and_redacts_the_key() {
    use easel::api::{ClientOptions, Endpoint, ErrorKind, ImagesClient};
    use tokio_util::sync::CancellationToken;

    let server = FakeServer::start().await;
    let mut opts = ClientOptions::new("OpenAI", &server.base_url());
    opts.api_key = easel::secret::ApiKey::new(KEY);
    opts.max_retries = 2;
    let client = ImagesClient::new(opts).unwrap();
    let cancel = CancellationToken::new();
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("in.jsonl");
    std::fs::write(
        &jsonl,
        json!({"custom_id": "a", "method": "POST", "url": "/v1/images/generations",
               "body": {"model": "gpt-image-2", "prompt": "a fox"}})
        .to_string()
            + "\n",
    )
    .unwrap();

    server.push_batch_faults([500, 429]);
    let file = client.upload_batch_file(&jsonl, &cancel).await.unwrap();
    let uploads: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/files")
        .collect();
    assert_eq!(uploads.len(), 3, "two retries, then the upload");
    let up = uploads.last().unwrap();
    assert_eq!(
        up.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    let uploaded = String::from_utf8_lossy(&up.files("file")[0].data).into_owned();
    assert!(uploaded.contains("\"custom_id\":\"a\""), "{uploaded}");
    assert_eq!(
        up.parts
            .iter()
            .find(|p| p.name == "purpose")
            .map(|p| p.data.as_slice()),
        Some(&b"batch"[..])
    );

    // A 400 is final at once, typed, and the key the server echoes is redacted.
    let before = server.request_count();
    let e = client
        .create_batch(KEY, Endpoint::Generations, &Default::default(), &cancel)
        .await
        .unwrap_err();
    assert_eq!(server.request_count(), before + 1, "not retried");
    assert_eq!(e.status, Some(400));
    assert_eq!(e.kind, ErrorKind::InvalidRequest, "{e:?}");
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("No such File object"), "{shown}");
    assert!(!shown.contains(KEY), "{shown}");
    let sent = server.requests().pop().unwrap();
    assert!(
        String::from_utf8_lossy(&sent.raw_body).contains(KEY),
        "the server did get (and echo) the key as the file id"
    );

    let b = client
        .create_batch(&file, Endpoint::Generations, &Default::default(), &cancel)
        .await
        .unwrap();
    assert_eq!(b.status.as_str(), "validating");
    let e = client.get_batch("batch_nope", &cancel).await.unwrap_err();
    assert_eq!(e.status, Some(404));
    assert_eq!(e.kind, ErrorKind::NotFound, "{e:?}");
    let got = client.cancel_batch(&b.id, &cancel).await.unwrap();
    assert_eq!(got.status.as_str(), "cancelling");
    assert!(client.file_content("../etc", &cancel).await.is_err());
}

/// An expired batch: its jobs fail as `expired`, with a hint to send them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_batch_fails_its_jobs_as_expired() {
    let server = FakeServer::start().await;
    server.set_batch_auto_advance(false);
    let s = Sandbox::folders();
    let sent = run(
        &s,
        &server,
        &["generate", "--batch", "--json", "a {vole|shrew}"],
    )
    .await;
    assert_eq!(sent.code, 0, "{sent:?}");
    let batch_id = json_lines(&sent.stdout)[0]["batch"]
        .as_str()
        .unwrap()
        .to_string();
    server.expire_batch(&batch_id);
    let st = run(&s, &server, &["batch", "status", &batch_id, "--json"]).await;
    assert_eq!(st.code, 0, "{st:?}");
    let v = &json_lines(&st.stdout)[0];
    assert_eq!(v["status"], "expired", "{st:?}");
    assert_eq!(v["failed"], 2, "{st:?}");
    for r in records(&s, &server).await {
        assert_eq!(r["status"], "failed", "{r}");
        assert_eq!(r["error"]["kind"], "expired", "{r}");
        assert!(
            r["error"]["hint"].as_str().unwrap().contains("retry"),
            "{r}"
        );
    }
}

/// `[budget]` applies to a batch, at batch prices: over it, nothing is uploaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_the_budget_is_refused() {
    let server = FakeServer::start().await;
    let s = Sandbox::folders();
    let file = s.config_file();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "[budget]\ndaily_usd = 0.0001\n").unwrap();
    let r = run(
        &s,
        &server,
        &["generate", "--batch", "-q", "high", "a {lynx|puma}"],
    )
    .await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("budget"), "{r:?}");
    assert!(server.batch_states().is_empty(), "nothing created");
    assert!(server.batch_input_lines().is_empty(), "nothing uploaded");
}

/// "Send as batch" from the studio goes through `queue::send::send_batch` (as `easel generate
/// --batch` does): the lines uploaded, the batch created and recorded with one run id, and each
/// change of the batch's state announced to the queue (`JobEvent::BatchState`) as it is polled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_sent_like_the_studio_announces_its_states() {
    use easel::api::{ClientOptions, GenerationParams, ImagesClient, ProviderRules};
    use easel::backend::Backend;
    use easel::backend::openai::OpenAiBackend;
    use easel::catalog::Catalog;
    use easel::queue::send::{BatchLine, send_batch};
    use easel::queue::{JobEvent, ProviderSlot, Scheduler, SchedulerConfig, Submission};
    use easel::store::{HistoryStore, Id, ImageFiles, SledStore};
    use std::collections::HashMap;
    use std::sync::Arc;

    let server = FakeServer::start().await;
    server.set_batch_auto_advance(false);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store: Arc<dyn HistoryStore> = Arc::new(SledStore::open(&data).unwrap());
    let mut opts = ClientOptions::new("OpenAI", &server.base_url());
    opts.api_key = easel::secret::ApiKey::new(KEY);
    let client = ImagesClient::new(opts.clone()).unwrap();
    let slot = ProviderSlot {
        backend: Arc::new(OpenAiBackend::new(opts.clone()).unwrap()) as Arc<dyn Backend>,
        rules: ProviderRules::default(),
        limit: 1,
    };
    let catalog = Arc::new(Catalog::builtin());
    let (handle, mut events) = Scheduler::start(
        store.clone(),
        catalog.clone(),
        ImageFiles::new(&data, None),
        HashMap::from([("openai".to_string(), slot)]),
        SchedulerConfig {
            concurrency: 1,
            resume_queue: true,
        },
    )
    .await
    .unwrap();
    let run = Id::new();
    let lines: Vec<BatchLine> = ["a wren", "a finch"]
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let params = GenerationParams {
                prompt: (*p).into(),
                model: "gpt-image-2".into(),
                size: Some("1024x1024".into()),
                quality: Some("low".into()),
                ..Default::default()
            };
            let checked =
                easel::api::request::check(&params, &catalog, &ProviderRules::default()).unwrap();
            BatchLine {
                body: checked.body,
                submission: Submission {
                    params,
                    provider: "openai".into(),
                    front: false,
                    parent: None,
                    run: Some(easel::store::RunInfo {
                        id: run,
                        index: k as u32 + 1,
                        of: 2,
                        values: easel::runs::JobValues {
                            prompt_index: 1,
                            template: "a {wren|finch}".into(),
                            combination: k as u64,
                            alternatives: vec![],
                            wildcards: vec![],
                            axes: vec![],
                            repeat: 1,
                        },
                    }),
                },
            }
        })
        .collect();
    let sent = send_batch(&client, &handle, &data, lines).await.unwrap();
    assert_eq!(sent.batch.status.as_str(), "validating");
    assert_eq!(sent.ids.len(), 2);
    for id in &sent.ids {
        let r = store.get(*id).unwrap().unwrap();
        assert_eq!(r.run.as_ref().map(|x| x.id), Some(run));
        assert_eq!(
            r.batch.as_ref().map(|b| b.id.as_str()),
            Some(sent.batch.id.as_str())
        );
    }
    // The JSONL file holds prompts: it does not stay in the data folder.
    let left: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".batch-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let mut states = Vec::new();
    let mut poll_and_collect = async |states: &mut Vec<String>| {
        handle.poll_batches().await;
        while let Ok(ev) = events.try_recv() {
            if let JobEvent::BatchState { batch, state } = ev {
                assert_eq!(batch, sent.batch.id);
                states.push(state);
            }
        }
    };
    poll_and_collect(&mut states).await;
    // Polled again without a change: nothing new is said.
    poll_and_collect(&mut states).await;
    server.advance_batch(&sent.batch.id);
    poll_and_collect(&mut states).await;
    assert_eq!(states, ["validating", "in_progress"]);
    handle.shutdown().await;
}
