//! `easel generate`: one request from the command line, for scripts and quick looks.
//!
//! Prints the saved paths on stdout (JSON lines with `--json`), progress on stderr when it is a
//! terminal, and each image inline when stdout is a terminal. Exit status: 0 when every image was
//! saved where asked, 2 when some were (or were kept in the data folder because `--out` failed),
//! 1 when none. `--dry-run` checks and prices the request and sends nothing.

use crate::api::{CheckedRequest, GenerationParams, request};
use crate::catalog;
use crate::config::{self, Provider, Settings};
use crate::cost::CostBasis;
use crate::queue::{JobEvent, Submission};
use crate::sanitize;
use crate::store::{GenerationRecord, ImageFiles, Status};
use clap::Args;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Args, Default)]
pub struct GenerateArgs {
    /// The prompt; `-` reads it from standard input.
    pub prompt: String,
    /// Model (default: the config's, else gpt-image-2). Any name is accepted.
    #[arg(long, short)]
    pub model: Option<String>,
    /// WIDTHxHEIGHT or auto.
    #[arg(long, short)]
    pub size: Option<String>,
    /// low, medium, high, auto (GPT); standard, hd (dall-e-3).
    #[arg(long, short)]
    pub quality: Option<String>,
    /// Number of images, 1–10.
    #[arg(long, short)]
    pub n: Option<u8>,
    /// transparent, opaque or auto (GPT image models).
    #[arg(long)]
    pub background: Option<String>,
    /// png, jpeg or webp (GPT image models).
    #[arg(long = "format", short = 'f')]
    pub format: Option<String>,
    /// Compression 0–100 for jpeg and webp.
    #[arg(long)]
    pub compression: Option<u8>,
    /// low or auto (GPT image models).
    #[arg(long)]
    pub moderation: Option<String>,
    /// vivid or natural (dall-e-3).
    #[arg(long)]
    pub style: Option<String>,
    /// url or b64_json (DALL·E dialect).
    #[arg(long)]
    pub response_format: Option<String>,
    /// Stream the answer, showing partial images as they arrive.
    #[arg(long)]
    pub stream: bool,
    /// Partial images to stream, 0–3 (implies --stream).
    #[arg(long, value_name = "N")]
    pub partials: Option<u8>,
    /// Save the images in this folder instead of the data folder (checked before sending).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print one JSON object per saved image.
    #[arg(long)]
    pub json: bool,
    /// Check the request and print what would be sent and its estimated cost; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not print the images inline.
    #[arg(long)]
    pub no_preview: bool,
}

/// The request: flags first, then the provider's model, then the config's defaults where the
/// model takes them.
pub fn build_params(
    settings: &Settings,
    provider_model: Option<&str>,
    args: &GenerateArgs,
    prompt: String,
) -> GenerationParams {
    crate::setup::params(settings, provider_model, &overrides(args), prompt)
}

fn overrides(args: &GenerateArgs) -> crate::setup::ParamOverrides {
    crate::setup::ParamOverrides {
        model: args.model.clone(),
        n: args.n,
        size: args.size.clone(),
        quality: args.quality.clone(),
        background: args.background.clone(),
        format: args.format.clone(),
        compression: args.compression,
        moderation: args.moderation.clone(),
        style: args.style.clone(),
        response_format: args.response_format.clone(),
        stream: args.stream,
        partials: args.partials,
    }
}

fn read_prompt(arg: &str) -> Result<String, String> {
    if arg != "-" {
        return Ok(arg.to_string());
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| format!("could not read the prompt from standard input: {e}"))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

/// A one-line progress display on stderr, only when stderr is a terminal.
struct Progress {
    on: bool,
    start: Instant,
    label: String,
    detail: String,
}

impl Progress {
    fn draw(&self) {
        if self.on {
            let mut err = std::io::stderr();
            let _ = write!(
                err,
                "\r\x1b[2K{} {:.1}s{}",
                self.label,
                self.start.elapsed().as_secs_f64(),
                self.detail
            );
            let _ = err.flush();
        }
    }

    fn clear(&self) {
        if self.on {
            let mut err = std::io::stderr();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// Print an image into the terminal's normal output (see `picture`).
fn preview(path: &std::path::Path) {
    let (cols, rows) = crossterm::terminal::size()
        .map(|(c, r)| (u32::from(c), u32::from(r)))
        .unwrap_or((80, 24));
    let _ = super::picture::print_file(
        path,
        cols.clamp(10, 200).min(60),
        rows.saturating_sub(4).clamp(5, 30),
    );
}

/// Make sure `--out` can take the images before anything is sent (and paid for): the folder
/// exists or is created, and a small probe file can be written, synced and removed there.
pub fn prepare_out_dir(dir: &Path) -> Result<(), String> {
    use std::io::ErrorKind as K;
    let why = |e: &std::io::Error| -> String {
        match e.kind() {
            K::NotADirectory => "a part of the path is a file, not a folder".into(),
            K::AlreadyExists => "it is a file, not a folder".into(),
            K::PermissionDenied => "permission denied".into(),
            K::ReadOnlyFilesystem => "the file system is read-only".into(),
            K::StorageFull => "the disk is full".into(),
            _ => e.to_string(),
        }
    };
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err("it is not a folder (a file or a device)".into()),
        Ok(_) => {}
        Err(e) if e.kind() == K::NotFound => crate::store::files::create_private_dir(dir)
            .map_err(|e| format!("cannot create it: {}", why(&e)))?,
        Err(e) => return Err(why(&e)),
    }
    let probe = dir.join(format!(".easel-probe-{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    let written = options.open(&probe).and_then(|mut f| {
        let r = f.write_all(b"easel").and_then(|()| f.sync_all());
        // Only a file this call created is removed.
        let _ = std::fs::remove_file(&probe);
        r
    });
    written.map_err(|e| format!("cannot write into it: {}", why(&e)))
}

/// The catalogue's estimate for a request, in US dollars (None for an unknown model).
fn estimate(settings: &Settings, params: &GenerationParams) -> Option<f64> {
    let spec = settings.catalog.get(&params.model)?;
    catalog::estimate_cost(
        spec,
        &params.prompt,
        u32::from(params.n),
        params.size.as_deref().unwrap_or("auto"),
        params.quality.as_deref().unwrap_or("auto"),
    )
}

/// `--dry-run`: what would be sent where, and what it would cost. Nothing is sent or written.
fn dry_run(
    settings: &Settings,
    provider: &Provider,
    params: &GenerationParams,
    checked: &CheckedRequest,
    json: bool,
) -> i32 {
    let url = provider.generations_url();
    let cost = estimate(settings, params);
    let mut out = std::io::stdout().lock();
    if json {
        let line = serde_json::json!({
            "dry_run": true,
            "provider": provider.name,
            "demo": provider.is_demo(),
            "url": url,
            "body": checked.body,
            // To the micro-dollar: no float noise in scripts' output.
            "estimated_cost_usd": cost.map(|c| (c * 1e6).round() / 1e6),
            "warnings": checked.warnings,
        });
        let _ = writeln!(out, "{}", sanitize::json(&line.to_string()));
        return 0;
    }
    let body = serde_json::to_string_pretty(&checked.body).unwrap_or_default();
    let target = match &url {
        Some(url) => format!("would send to {}: POST {url}", provider.name),
        None => "would run on the offline demo backend (no API call)".to_string(),
    };
    let price = match (cost, provider.is_demo()) {
        (Some(c), false) => {
            format!("estimated cost: ≈ ${c:.3} (an estimate from the catalogue's prices)")
        }
        (Some(c), true) => format!(
            "estimated cost: free on the demo backend (≈ ${c:.3} at {}'s prices, an estimate)",
            params.model
        ),
        (None, _) => format!(
            "estimated cost: unknown ({} has no prices in the catalogue)",
            params.model
        ),
    };
    let _ = writeln!(out, "{}", sanitize::line(&target));
    let _ = writeln!(out, "{}", sanitize::json(&body));
    let _ = writeln!(out, "{}", sanitize::line(&price));
    let _ = writeln!(out, "nothing was sent (--dry-run)");
    0
}

pub async fn run(
    settings: &Settings,
    provider: Option<&str>,
    args: GenerateArgs,
    quiet: bool,
) -> i32 {
    let prompt = match read_prompt(&args.prompt) {
        Ok(p) => p,
        Err(e) => {
            super::report(&e, None);
            return 1;
        }
    };
    let provider = match settings.resolve_provider(provider, &config::real_env) {
        Ok(p) => p,
        Err(e) => {
            super::report(&e.to_string(), None);
            return 1;
        }
    };
    // The one demo notice of this run (the progress line only repeats it while it is drawn).
    if let Some(notice) = provider.notice.as_ref().filter(|_| !quiet) {
        eprintln!("easel: {}", sanitize::line(notice));
    }
    let params = build_params(settings, provider.model.as_deref(), &args, prompt);
    let mut checked = match request::check(&params, &settings.catalog, &provider.rules) {
        Ok(c) => c,
        Err(e) => {
            // The catalogue helps only when the refusal is about what this model takes (the
            // message then names it), not for an empty prompt or a range any model has.
            let hint = format!(
                "`easel models` lists what {} and the other models accept",
                params.model
            );
            let about_model = e.message.contains(params.model.trim());
            super::report(
                &format!("not sent: {e}"),
                about_model.then_some(hint.as_str()),
            );
            return 1;
        }
    };
    // OpenAI's shutdown dates matter only when the request goes to OpenAI: compatible servers
    // may still serve those names.
    if provider.is_openai()
        && let Some(w) = settings
            .catalog
            .get(&params.model)
            .and_then(|spec| spec.openai_shutdown_warning(catalog::today()))
    {
        checked.warnings.push(w);
    }
    if !quiet {
        for w in &checked.warnings {
            // Warnings quote the model name and the catalogue's note, which may come from anywhere.
            eprintln!("easel: warning: {}", sanitize::line(w));
        }
    }
    if args.dry_run {
        return dry_run(settings, &provider, &params, &checked, args.json);
    }
    // Checked before sending: an image that was paid for must have somewhere to go.
    if let Some(out) = &args.out
        && let Err(why) = prepare_out_dir(out)
    {
        super::report(
            &format!("not sent: cannot save into --out {}: {why}", out.display()),
            Some("give --out a folder that you can write to"),
        );
        return 1;
    }
    // Every generation, headless or not, goes through the store and the scheduler, so it lands
    // in history.
    let engine = match crate::setup::start_engine(
        settings,
        &provider,
        crate::setup::EngineOptions {
            concurrency: 1,
            resume_queue: false,
            out_dir: args.out.as_deref(),
        },
    )
    .await
    {
        Ok(e) => e,
        Err(code) => return code,
    };
    crate::setup::print_warnings(&engine.warnings);
    let files = ImageFiles::new(&settings.paths.data_dir, args.out.as_deref());
    let is_demo = engine.demo;
    let backend_name = engine.backend_name.clone();
    let (handle, mut events) = (engine.scheduler, engine.events);
    let submission = Submission {
        params,
        provider: provider.name.clone(),
        front: false,
        parent: None,
    };
    let id = match handle.submit_headless(submission).await {
        Ok(id) => id,
        Err(e) => {
            super::report(&format!("not queued: {e}"), None);
            return 1;
        }
    };

    let demo_mark = if is_demo {
        " [DEMO: offline, no API call]"
    } else {
        ""
    };
    let mut progress = Progress {
        on: !quiet && std::io::stderr().is_terminal(),
        start: Instant::now(),
        label: format!(
            "generating with {} on {}{demo_mark}",
            sanitize::line(checked.body["model"].as_str().unwrap_or_default()),
            sanitize::line(&backend_name)
        ),
        detail: String::new(),
    };
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    let mut interrupted = false;
    let finished = loop {
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { break None };
                match &ev {
                    JobEvent::Partial { id: j, index, .. } if *j == id => progress.detail = format!(", partial image {}", index + 1),
                    JobEvent::Retrying { id: j, retry, wait, reason } if *j == id => {
                        progress.detail = format!(", retry {retry} in {:.1}s after: {}", wait.as_secs_f64(), sanitize::truncate(reason, 80));
                    }
                    JobEvent::Problem(p) => {
                        progress.clear();
                        super::report(p, None);
                    }
                    _ => {}
                }
                if let Some(r) = ev.finished().filter(|r| r.id == id) {
                    break Some(r.clone());
                }
                progress.draw();
            }
            r = tokio::signal::ctrl_c(), if !interrupted => {
                if r.is_ok() {
                    interrupted = true;
                    handle.cancel(id);
                }
            }
            _ = tick.tick() => progress.draw(),
        }
    };
    progress.clear();
    handle.shutdown().await;
    let Some(record) = finished else {
        super::report("the scheduler stopped before the job ended", None);
        return 1;
    };
    report_outcome(&record, &files, &args, settings, quiet)
}

/// Print what a finished job made (or why it failed) and choose the exit status.
fn report_outcome(
    record: &GenerationRecord,
    files: &ImageFiles,
    args: &GenerateArgs,
    settings: &Settings,
    quiet: bool,
) -> i32 {
    match record.status {
        Status::Succeeded => {}
        Status::Cancelled => {
            super::report("cancelled", None);
            return 1;
        }
        _ => {
            let (msg, hint) = match &record.error {
                Some(e) => (e.message.clone(), e.hint.clone()),
                None => (format!("the job ended {}", record.status), None),
            };
            super::report(&msg, hint.as_deref());
            return 1;
        }
    }
    let show_inline = !args.no_preview && !args.json && std::io::stdout().is_terminal();
    let basis = CostBasis::of(
        settings.catalog.get(&record.model),
        record.usage.as_ref(),
        record.demo,
    );
    let mut out = std::io::stdout().lock();
    for (i, saved) in record.outputs.iter().enumerate() {
        let abs = files.resolve(&saved.path);
        if args.json {
            let line = serde_json::json!({
                "path": abs, "id": record.id, "index": i + 1,
                "format": saved.format, "width": saved.width, "height": saved.height,
                "bytes": saved.bytes, "sha256": saved.sha256,
                "model": record.model, "provider": record.provider, "demo": record.demo,
                "revised_prompt": record.revised_prompt, "request_id": record.request_id,
                // cost_usd and estimated_cost_usd carry the same figure; cost_basis says whether
                // it comes from the usage the server reported or is the catalogue's estimate.
                "cost_usd": record.cost_usd, "estimated_cost_usd": record.cost_usd,
                "cost_basis": basis.as_str(), "usage": record.usage,
                "attempts": record.attempts,
            });
            // JSON keeps the exact path, with unsafe characters escaped.
            let _ = writeln!(out, "{}", sanitize::json(&line.to_string()));
        } else {
            // A folder name (from --out) may hold control characters: never print them raw;
            // --json gives the exact path.
            let _ = writeln!(out, "{}", sanitize::line(&abs.display().to_string()));
            if show_inline {
                let _ = out.flush();
                preview(&abs);
            }
        }
    }
    let _ = out.flush();
    if !args.json && !quiet {
        if let Some(rp) = &record.revised_prompt {
            eprintln!("revised prompt: {}", sanitize::line(rp));
        }
        match (record.cost_usd, basis) {
            (Some(c), CostBasis::Usage) => {
                eprintln!("cost: ${c:.3} (from the usage the server reported)")
            }
            (Some(c), CostBasis::Estimate) => {
                eprintln!("cost: ≈ ${c:.3} (an estimate: the server reported no usage)")
            }
            _ => {}
        }
    }
    match &record.error {
        Some(e) => {
            // Images that --out could not take were kept in the data folder: the message says
            // where, and the data folder is not what needs fixing.
            let kept_elsewhere = args.out.as_deref().is_some_and(|out| {
                record
                    .outputs
                    .iter()
                    .any(|o| !files.resolve(&o.path).starts_with(out))
            });
            let hint = if kept_elsewhere {
                Some(
                    "check the --out folder (space, permissions), then copy the images from where they were kept",
                )
            } else {
                e.hint.as_deref()
            };
            super::report(&e.message, hint);
            if record.outputs.is_empty() { 1 } else { 2 }
        }
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigFile, Paths, parse};

    fn settings(text: &str) -> Settings {
        let paths = Paths {
            config_file: "/c.toml".into(),
            data_dir: "/d".into(),
        };
        let file: ConfigFile = parse(text, &paths.config_file).unwrap();
        Settings::from_file(paths, file).unwrap()
    }

    #[test]
    fn flags_beat_profile_beat_defaults() {
        let s = settings(
            "[defaults]\nmodel = \"gpt-image-1.5\"\nquality = \"high\"\nsize = \"1536x1024\"\n",
        );
        let args = GenerateArgs {
            model: Some("dall-e-3".into()),
            ..Default::default()
        };
        let p = build_params(&s, Some("gpt-image-2"), &args, "x".into());
        assert_eq!(p.model, "dall-e-3");
        // high is not a dall-e-3 quality, 1536x1024 not a dall-e-3 size: defaults dropped.
        assert_eq!(p.quality, None);
        assert_eq!(p.size, None);
        let p = build_params(
            &s,
            Some("gpt-image-2"),
            &GenerateArgs::default(),
            "x".into(),
        );
        assert_eq!(p.model, "gpt-image-2");
        assert_eq!(p.quality.as_deref(), Some("high"));
        let p = build_params(
            &s,
            None,
            &GenerateArgs {
                partials: Some(2),
                ..Default::default()
            },
            "x".into(),
        );
        assert!(p.stream);
        assert_eq!(p.partial_images, Some(2));
    }
}
