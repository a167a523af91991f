//! `easel generate`: one request from the command line, for scripts and quick looks.
//!
//! Prints the saved paths on stdout (JSON lines with `--json`), progress on stderr when it is a
//! terminal, and each image inline when stdout is a terminal. Exit status: 0 when every image was
//! saved, 2 when some were, 1 when none.

use crate::api::{GenerationParams, request};
use crate::backend;
use crate::catalog::{Catalog, Field};
use crate::config::{self, Settings};
use crate::queue::{JobEvent, ProviderSlot, Scheduler, SchedulerConfig, Submission};
use crate::sanitize;
use crate::store::{GenerationRecord, ImageFiles, Status};
use clap::Args;
use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
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
    /// Save the images in this folder instead of the data folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print one JSON object per saved image.
    #[arg(long)]
    pub json: bool,
    /// Do not print the images inline.
    #[arg(long)]
    pub no_preview: bool,
}

/// Whether the config's default `value` for `field` may be applied to `model`.
fn default_fits(catalog: &Catalog, model: &str, field: Field, value: &str) -> bool {
    let Some(spec) = catalog.get(model) else {
        return true;
    };
    if !spec.accepts(field) {
        return false;
    }
    let allowed = match field {
        Field::Size => &spec.sizes,
        Field::Quality => &spec.qualities,
        Field::OutputFormat => &spec.output_formats,
        Field::Background => &spec.backgrounds,
        Field::Moderation => &spec.moderations,
        _ => return true,
    };
    allowed.iter().any(|a| a == value) || (field == Field::Size && spec.flexible_size.is_some())
}

/// The request: flags first, then the provider's model, then the config's defaults where the
/// model takes them.
pub fn build_params(
    settings: &Settings,
    provider_model: Option<&str>,
    args: &GenerateArgs,
    prompt: String,
) -> GenerationParams {
    let d = &settings.file.defaults;
    let model = args
        .model
        .clone()
        .or(provider_model.map(str::to_string))
        .unwrap_or_else(|| d.model.clone());
    let cat = &settings.catalog;
    let pick = |flag: &Option<String>, default: &Option<String>, field: Field| -> Option<String> {
        flag.clone().or_else(|| {
            default
                .clone()
                .filter(|v| default_fits(cat, &model, field, v))
        })
    };
    let stream = args.stream
        || args.partials.is_some()
        || (d.stream && default_fits(cat, &model, Field::Stream, ""));
    GenerationParams {
        prompt,
        n: args
            .n
            .unwrap_or(if default_fits(cat, &model, Field::N, "") {
                d.n
            } else {
                1
            }),
        size: pick(&args.size, &d.size, Field::Size),
        quality: pick(&args.quality, &d.quality, Field::Quality),
        background: pick(&args.background, &d.background, Field::Background),
        output_format: pick(&args.format, &d.output_format, Field::OutputFormat),
        output_compression: args.compression,
        moderation: pick(&args.moderation, &d.moderation, Field::Moderation),
        style: args.style.clone(),
        response_format: args.response_format.clone(),
        partial_images: if stream {
            args.partials.or(d.partial_images)
        } else {
            None
        },
        stream,
        user: None,
        model,
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

pub async fn run(settings: &Settings, provider: Option<&str>, args: GenerateArgs) -> i32 {
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
    if let Some(notice) = &provider.notice {
        eprintln!("easel: {notice}");
    }
    let params = build_params(settings, provider.model.as_deref(), &args, prompt);
    let checked = match request::check(&params, &settings.catalog, &provider.rules) {
        Ok(c) => c,
        Err(e) => {
            super::report(
                &format!("not sent: {e}"),
                Some("`easel models` lists what each model accepts"),
            );
            return 1;
        }
    };
    for w in &checked.warnings {
        // Warnings quote the model name and the catalogue's note, which may come from anywhere.
        eprintln!("easel: warning: {}", sanitize::line(w));
    }
    let backend = match backend::for_provider(&provider, &settings.file.demo) {
        Ok(b) => b,
        Err(e) => {
            super::report(&e.to_string(), e.hint());
            return 1;
        }
    };
    // Every generation, headless or not, goes through the store and the scheduler, so it lands
    // in history.
    let store = match super::open_store(settings) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let files = ImageFiles::new(&settings.paths.data_dir, args.out.as_deref());
    let is_demo = backend.is_demo();
    let backend_name = backend.name().to_string();
    let slot = ProviderSlot {
        backend,
        rules: provider.rules.clone(),
        limit: 1,
    };
    let providers = HashMap::from([(provider.name.clone(), slot)]);
    let cfg = SchedulerConfig {
        concurrency: 1,
        resume_queue: false,
    };
    let (handle, mut events) = match Scheduler::start(
        store,
        Arc::new(settings.catalog.clone()),
        files.clone(),
        providers,
        cfg,
    )
    .await
    {
        Ok(x) => x,
        Err(e) => {
            super::report(&e.to_string(), None);
            return 1;
        }
    };
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
        on: std::io::stderr().is_terminal(),
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
    report_outcome(&record, &files, &args)
}

/// Print what a finished job made (or why it failed) and choose the exit status.
fn report_outcome(record: &GenerationRecord, files: &ImageFiles, args: &GenerateArgs) -> i32 {
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
                "estimated_cost_usd": record.cost_usd, "attempts": record.attempts,
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
    if let Some(rp) = &record.revised_prompt
        && !args.json
    {
        eprintln!("revised prompt: {}", sanitize::line(rp));
    }
    match &record.error {
        Some(e) => {
            super::report(&e.message, e.hint.as_deref());
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
