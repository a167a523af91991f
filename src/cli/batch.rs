//! The Batch API from the command line (docs/batch.md): `easel generate --batch` sends a run
//! as one batch (half price, results within 24 h), and `easel batch list | status ID | cancel
//! ID` follow it. Whoever owns the store (the service, or an in-process command) polls open
//! batches and saves their images into history as live generations are saved.

use super::generate::{GenerateArgs, Planned, estimate, report_outcome};
use crate::api::{ImagesClient, batch};
use crate::config::{self, Provider, Settings};
use crate::generation::BATCH_PRICE_FACTOR;
use crate::queue::{BatchInfo, Submission};
use crate::sanitize;
use crate::store::{Id, ImageFiles, Status};
use clap::Subcommand;
use std::io::Write;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Subcommand)]
pub enum BatchAction {
    /// The open batches of this data folder, polled now.
    List {
        /// One JSON object per batch.
        #[arg(long)]
        json: bool,
    },
    /// One batch's state (polled now; its results are saved if it has ended).
    Status {
        /// The batch id (`batch_…`).
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Ask the server to cancel a batch; its jobs end as cancelled (lines already done are
    /// saved).
    Cancel {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

/// "none", or "2 open: batch_abc in_progress (3 jobs), …" for `easel service status`.
pub fn summary(batches: &[BatchInfo]) -> String {
    if batches.is_empty() {
        return "none open".into();
    }
    let each: Vec<String> = batches.iter().map(line).collect();
    format!("{} open: {}", batches.len(), each.join("; "))
}

fn line(b: &BatchInfo) -> String {
    let state = b.status.map_or("not polled yet", |s| s.as_str());
    let mut s = format!(
        "{} · {state} · {} job{}",
        sanitize::line(&b.id),
        b.jobs.len(),
        if b.jobs.len() == 1 { "" } else { "s" }
    );
    if let Some(c) = b.counts {
        s.push_str(&format!(
            " ({} done, {} failed of {})",
            c.completed, c.failed, c.total
        ));
    }
    if !b.has_key {
        s.push_str(&format!(
            " · waits for a client with {}'s key",
            sanitize::line(&b.provider)
        ));
    }
    if let Some(e) = &b.error {
        s.push_str(&format!(
            " · last poll: {}",
            sanitize::truncate(&sanitize::line(e), 120)
        ));
    }
    s
}

fn client_for(provider: &Provider) -> Result<ImagesClient, String> {
    match &provider.kind {
        config::ProviderKind::Http(opts) => {
            ImagesClient::new((**opts).clone()).map_err(|e| e.to_string())
        }
        config::ProviderKind::Demo => Err(
            "the offline demo backend has no Batch API: choose a provider with one (--provider openai)"
                .into(),
        ),
    }
}

/// Why a planned run cannot go as a batch, if it cannot.
fn refusal(provider: &Provider, args: &GenerateArgs, planned: &[Planned]) -> Option<String> {
    if provider.is_demo() {
        return Some(
            "the offline demo backend has no Batch API: --batch needs a real provider".into(),
        );
    }
    if args.out.is_some() {
        return Some(
            "--batch saves into the data folder when the batch ends: leave out --out, and copy the files afterwards"
                .into(),
        );
    }
    if planned.iter().any(|p| p.checked.edit.is_some()) {
        return Some(
            "edits and variations are sent as multipart and cannot go in a batch here: send them live"
                .into(),
        );
    }
    if planned.iter().any(|p| p.checked.stream) {
        return Some("a batch cannot stream: leave out --stream and --partials".into());
    }
    None
}

fn round(c: f64) -> f64 {
    (c * 1e6).round() / 1e6
}

/// `easel generate --batch`: the run's requests as one batch (or, with `--dry-run`, its lines).
pub(super) async fn send(
    settings: &Settings,
    provider: &Provider,
    args: &GenerateArgs,
    planned: Vec<Planned>,
    quiet: bool,
) -> i32 {
    if let Some(why) = refusal(provider, args, &planned) {
        super::report(&format!("not sent: {why}"), None);
        return 1;
    }
    if planned.is_empty() {
        super::report("the run has no jobs", None);
        return 1;
    }
    let costs: Vec<Option<f64>> = planned
        .iter()
        .map(|p| estimate(settings, &p.params).map(|c| c * BATCH_PRICE_FACTOR))
        .collect();
    let total: f64 = costs.iter().flatten().sum();
    let unpriced = costs.iter().filter(|c| c.is_none()).count();
    let images: u64 = planned.iter().map(|p| u64::from(p.params.n)).sum();
    let of = planned.len();
    let endpoint = crate::api::Endpoint::Generations;
    if args.dry_run {
        let mut out = std::io::stdout().lock();
        for (k, (p, cost)) in planned.iter().zip(&costs).enumerate() {
            let custom = format!("job-{}", k + 1);
            let l = batch::input_line(&custom, endpoint, &p.checked.body);
            if args.json {
                let v = serde_json::json!({
                    "dry_run": true,
                    "batch": true,
                    "job": k + 1,
                    "jobs": of,
                    "line": serde_json::from_str::<serde_json::Value>(&l).unwrap_or_default(),
                    "estimated_cost_usd": cost.map(round),
                });
                let _ = writeln!(out, "{}", sanitize::json(&v.to_string()));
            } else {
                let _ = writeln!(out, "{}", sanitize::json(&l));
            }
        }
        if args.json {
            let v = serde_json::json!({
                "dry_run": true, "batch": true, "summary": true, "jobs": of, "images": images,
                "estimated_cost_usd": round(total), "unpriced_jobs": unpriced,
                "price_factor": BATCH_PRICE_FACTOR,
            });
            let _ = writeln!(out, "{}", sanitize::json(&v.to_string()));
        } else {
            let url = provider.endpoint_url(endpoint).unwrap_or_default();
            let _ = writeln!(
                out,
                "{}",
                sanitize::line(&format!(
                    "would upload these {of} lines to {} as one batch for POST {url} (window 24h); each custom_id becomes the job's record id",
                    provider.name
                ))
            );
            let _ = writeln!(
                out,
                "total: {of} jobs · {images} images · estimated cost ≈ ${total:.3} at batch prices (half the live price; an estimate from the catalogue's prices{})",
                if unpriced > 0 {
                    format!("; {unpriced} jobs not counted: no prices")
                } else {
                    String::new()
                }
            );
            let _ = writeln!(out, "nothing was sent (--dry-run)");
        }
        return 0;
    }
    let client = match client_for(provider) {
        Ok(c) => c,
        Err(e) => {
            super::report(&format!("not sent: {e}"), None);
            return 1;
        }
    };
    let engine = match crate::setup::start_engine(
        settings,
        provider,
        crate::setup::EngineOptions {
            concurrency: 1,
            resume_queue: false,
            out_dir: None,
            client: "generate",
        },
    )
    .await
    {
        Ok(e) => e,
        Err(code) => return code,
    };
    crate::setup::print_warnings(&engine.warnings);
    let handle = engine.scheduler;
    // [budget]: as for a live run, at batch prices.
    if crate::budget::has_limits(&settings.file.budget) {
        let refused = super::generate::check_budgets(
            settings,
            &engine.store,
            &planned,
            quiet,
            BATCH_PRICE_FACTOR,
        )
        .await;
        if let Some(why) = refused {
            super::report(
                &format!("not sent: {why}"),
                Some(
                    "raise [budget] daily_usd / monthly_usd in the config file (easel config path), or ask for fewer or cheaper images (--dry-run shows each)",
                ),
            );
            handle.shutdown().await;
            return 1;
        }
    }
    // The jobs of a run share a run id, as a live run's do.
    let run_id = Id::new();
    let lines = planned
        .into_iter()
        .enumerate()
        .map(|(k, p)| {
            let run = (of > 1).then(|| crate::store::RunInfo {
                id: run_id,
                index: u32::try_from(k + 1).unwrap_or(u32::MAX),
                of: u32::try_from(of).unwrap_or(u32::MAX),
                values: p.values.clone(),
            });
            crate::queue::send::BatchLine {
                body: p.checked.body,
                submission: Submission {
                    params: p.params,
                    provider: provider.name.clone(),
                    front: false,
                    parent: None,
                    run,
                },
            }
        })
        .collect();
    let sent =
        crate::queue::send::send_batch(&client, &handle, &settings.paths.data_dir, lines).await;
    let (created, ids) = match sent {
        Ok(s) => (s.batch, s.ids),
        Err(e) => {
            super::report(&e.message, e.hint.as_deref());
            handle.shutdown().await;
            return 1;
        }
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let v = serde_json::json!({
            "batch": created.id,
            "status": created.status.as_str(),
            "jobs": ids.iter().map(Id::to_string).collect::<Vec<_>>(),
            "images": images,
            "estimated_cost_usd": round(total),
            "price_factor": BATCH_PRICE_FACTOR,
        });
        let _ = writeln!(out, "{}", sanitize::json(&v.to_string()));
    } else {
        let _ = writeln!(out, "{}", sanitize::line(&created.id));
        if !quiet {
            eprintln!(
                "easel: sent {of} job{} ({images} images) as batch {} · {} · ≈ ${total:.3} at batch prices (half the live price); results within 24 h: `easel batch status {}`",
                if of == 1 { "" } else { "s" },
                sanitize::line(&created.id),
                created.status,
                sanitize::line(&created.id),
            );
        }
    }
    drop(out);
    if !args.wait {
        handle.shutdown().await;
        return 0;
    }
    // --wait: poll until the batch has ended, then report every job as a live run does.
    let period = crate::queue::scheduler::poll_period();
    loop {
        handle.poll_batches().await;
        if !handle.batches().await.iter().any(|b| b.id == created.id) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            r = tokio::signal::ctrl_c() => {
                if r.is_ok() {
                    eprintln!("easel: stopped waiting; batch {} goes on (`easel batch status {}`)", created.id, created.id);
                    handle.shutdown().await;
                    return 130;
                }
            }
        }
    }
    let files = ImageFiles::new(&settings.paths.data_dir, None);
    let mut codes = Vec::with_capacity(ids.len());
    for id in &ids {
        let store = engine.store.clone();
        let id = *id;
        let record = tokio::task::spawn_blocking(move || store.get(id))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        codes.push(match record {
            Some(r) => report_outcome(&r, &files, args, settings, quiet, None),
            None => 1,
        });
    }
    handle.shutdown().await;
    if codes.iter().all(|c| *c == 0) {
        0
    } else if codes.iter().all(|c| *c == 1) {
        1
    } else {
        2
    }
}

/// `easel batch …`.
pub async fn run(settings: &Settings, provider: Option<&str>, action: BatchAction) -> i32 {
    let provider = match settings.resolve_provider(provider, &config::real_env) {
        Ok(p) => p,
        Err(e) => {
            super::report(&e.to_string(), None);
            return 1;
        }
    };
    let engine = match crate::setup::start_engine(
        settings,
        &provider,
        crate::setup::EngineOptions {
            concurrency: 1,
            resume_queue: false,
            out_dir: None,
            client: "batch",
        },
    )
    .await
    {
        Ok(e) => e,
        Err(code) => return code,
    };
    let handle = engine.scheduler;
    let code = match action {
        BatchAction::List { json } => {
            handle.poll_batches().await;
            let batches = handle.batches().await;
            let mut out = std::io::stdout().lock();
            for b in &batches {
                if json {
                    let v = serde_json::to_string(b).unwrap_or_default();
                    let _ = writeln!(out, "{}", sanitize::json(&v));
                } else {
                    let _ = writeln!(out, "{}", line(b));
                }
            }
            if batches.is_empty() && !json {
                let _ = writeln!(
                    out,
                    "no open batches (ended ones are in `easel history list`)"
                );
            }
            0
        }
        BatchAction::Status { id, json } => {
            handle.poll_batches().await;
            let open = handle.batches().await.into_iter().find(|b| b.id == id);
            match open {
                Some(b) => {
                    if json {
                        let v = serde_json::to_string(&b).unwrap_or_default();
                        println!("{}", sanitize::json(&v));
                    } else {
                        println!("{}", line(&b));
                    }
                    0
                }
                None => ended(&provider, &engine.store, &id, json).await,
            }
        }
        BatchAction::Cancel { id, json } => match handle.cancel_batch(id.clone()).await {
            Ok(_) => {
                handle.poll_batches().await;
                let b = handle.batches().await.into_iter().find(|b| b.id == id);
                match b {
                    Some(b) if json => {
                        let v = serde_json::to_string(&b).unwrap_or_default();
                        println!("{}", sanitize::json(&v));
                    }
                    Some(b) => println!("{}", line(&b)),
                    None => println!(
                        "{}",
                        sanitize::line(&format!("batch {id} cancelled; its jobs have ended"))
                    ),
                }
                0
            }
            Err(e) => {
                super::report(&e, None);
                1
            }
        },
    };
    handle.shutdown().await;
    code
}

/// A batch that is not open here: what its jobs became, and what the server says of it.
async fn ended(
    provider: &Provider,
    store: &std::sync::Arc<dyn crate::store::HistoryStore>,
    id: &str,
    json: bool,
) -> i32 {
    let store = store.clone();
    let wanted = id.to_string();
    let records = tokio::task::spawn_blocking(move || {
        let mut found = Vec::new();
        let _ = store.for_each(&mut |r| {
            if r.batch.as_ref().is_some_and(|b| b.id == wanted) {
                found.push(r);
            }
            Ok(())
        });
        found
    })
    .await
    .unwrap_or_default();
    let server = match client_for(provider) {
        Ok(c) => c.get_batch(id, &CancellationToken::new()).await.ok(),
        Err(_) => None,
    };
    if records.is_empty() && server.is_none() {
        super::report(
            &format!("no batch {} in this data folder", sanitize::line(id)),
            Some("`easel batch list` shows the open ones"),
        );
        return 1;
    }
    let count = |s: Status| records.iter().filter(|r| r.status == s).count();
    if json {
        let v = serde_json::json!({
            "id": id,
            "open": false,
            "status": server.as_ref().map(|b| b.status.as_str()),
            "jobs": records.iter().map(|r| r.id.to_string()).collect::<Vec<_>>(),
            "succeeded": count(Status::Succeeded),
            "failed": count(Status::Failed),
            "cancelled": count(Status::Cancelled),
        });
        println!("{}", sanitize::json(&v.to_string()));
    } else {
        println!(
            "{}",
            sanitize::line(&format!(
                "{id} · {} · ended: {} succeeded, {} failed, {} cancelled (in `easel history list`)",
                server.as_ref().map_or("ended", |b| b.status.as_str()),
                count(Status::Succeeded),
                count(Status::Failed),
                count(Status::Cancelled),
            ))
        );
    }
    0
}
