//! `easel generate`: one request from the command line, for scripts and quick looks.
//!
//! Prints the saved paths on stdout (JSON lines with `--json`), progress on stderr when it is a
//! terminal, and each image inline when stdout is a terminal. Exit status: 0 when every image was
//! saved, 2 when some were, 1 when none.

use crate::api::{GenerationParams, request};
use crate::backend::{self, BackendEvent};
use crate::catalog::{Catalog, Field};
use crate::config::{self, Settings};
use crate::generation::{self, Job};
use crate::sanitize;
use crate::store::{ImageFiles, files::create_private_dir};
use clap::Args;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

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
    let Some(spec) = catalog.get(model) else { return true };
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
pub fn build_params(settings: &Settings, provider_model: Option<&str>, args: &GenerateArgs, prompt: String) -> GenerationParams {
    let d = &settings.file.defaults;
    let model = args.model.clone().or(provider_model.map(str::to_string)).unwrap_or_else(|| d.model.clone());
    let cat = &settings.catalog;
    let pick = |flag: &Option<String>, default: &Option<String>, field: Field| -> Option<String> {
        flag.clone().or_else(|| default.clone().filter(|v| default_fits(cat, &model, field, v)))
    };
    let stream = args.stream || args.partials.is_some() || (d.stream && default_fits(cat, &model, Field::Stream, ""));
    GenerationParams {
        prompt,
        n: args.n.unwrap_or(if default_fits(cat, &model, Field::N, "") { d.n } else { 1 }),
        size: pick(&args.size, &d.size, Field::Size),
        quality: pick(&args.quality, &d.quality, Field::Quality),
        background: pick(&args.background, &d.background, Field::Background),
        output_format: pick(&args.format, &d.output_format, Field::OutputFormat),
        output_compression: args.compression,
        moderation: pick(&args.moderation, &d.moderation, Field::Moderation),
        style: args.style.clone(),
        response_format: args.response_format.clone(),
        partial_images: if stream { args.partials.or(d.partial_images) } else { None },
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
            let _ = write!(err, "\r\x1b[2K{} {:.1}s{}", self.label, self.start.elapsed().as_secs_f64(), self.detail);
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

/// Print an image into the terminal's normal output with viuer.
fn preview(path: &std::path::Path) {
    let Ok(img) = image::open(path) else { return };
    let cols = crossterm::terminal::size().map(|(c, _)| c).unwrap_or(80);
    let width = u32::from(cols.clamp(10, 200)).min(60);
    let conf = viuer::Config { absolute_offset: false, width: Some(width), ..Default::default() };
    let _ = viuer::print(&img, &conf);
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
            super::report(&format!("not sent: {e}"), Some("`easel models` lists what each model accepts"));
            return 1;
        }
    };
    for w in &checked.warnings {
        eprintln!("easel: warning: {w}");
    }
    let backend = match backend::for_provider(&provider, &settings.file.demo) {
        Ok(b) => b,
        Err(e) => {
            super::report(&e.to_string(), e.hint());
            return 1;
        }
    };
    let data_dir = &settings.paths.data_dir;
    if let Err(e) = create_private_dir(data_dir) {
        super::report(&crate::store::files::describe_io_error("create the data folder", data_dir, &e), None);
        return 1;
    }
    let files = ImageFiles::new(data_dir, args.out.as_deref());
    let job = Job::new(params, checked);

    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let demo_mark = if backend.is_demo() { " [DEMO: offline, no API call]" } else { "" };
    let mut progress = Progress {
        on: std::io::stderr().is_terminal(),
        start: Instant::now(),
        label: format!("generating with {} on {}{demo_mark}", sanitize::line(&job.params.model), sanitize::line(backend.name())),
        detail: String::new(),
    };
    let run = generation::run(backend.as_ref(), &files, &settings.catalog, &job, cancel.clone(), tx);
    tokio::pin!(run);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    let result = loop {
        tokio::select! {
            r = &mut run => break r,
            Some(ev) = rx.recv() => {
                match ev {
                    BackendEvent::Partial { index, .. } => progress.detail = format!(", partial image {}", index + 1),
                    BackendEvent::Retrying { retry, wait, reason } => {
                        progress.detail = format!(", retry {retry} in {:.1}s after: {}", wait.as_secs_f64(), sanitize::truncate(&reason, 80));
                    }
                    _ => {}
                }
                progress.draw();
            }
            _ = tick.tick() => progress.draw(),
        }
    };
    progress.clear();

    match result {
        Err(f) => {
            super::report(&f.error.to_string(), f.error.hint());
            1
        }
        Ok(outcome) => {
            let show_inline = !args.no_preview && !args.json && std::io::stdout().is_terminal();
            let mut out = std::io::stdout().lock();
            for (i, saved) in outcome.images.iter().enumerate() {
                let abs = files.resolve(&saved.path);
                if args.json {
                    let line = serde_json::json!({
                        "path": abs, "id": job.id.to_string(), "index": i + 1,
                        "format": saved.format, "width": saved.width, "height": saved.height,
                        "bytes": saved.bytes, "sha256": saved.sha256,
                        "model": job.params.model, "provider": backend.name(), "demo": outcome.demo,
                        "revised_prompt": outcome.revised_prompt, "request_id": outcome.request_id,
                        "estimated_cost_usd": outcome.cost_usd, "attempts": outcome.attempts,
                    });
                    let _ = writeln!(out, "{line}");
                } else {
                    let _ = writeln!(out, "{}", abs.display());
                    if show_inline {
                        let _ = out.flush();
                        preview(&abs);
                    }
                }
            }
            let _ = out.flush();
            if let Some(rp) = &outcome.revised_prompt {
                if !args.json {
                    eprintln!("revised prompt: {}", sanitize::line(rp));
                }
            }
            for e in &outcome.save_errors {
                super::report(e, Some("free disk space or fix the folder's permissions"));
            }
            if outcome.save_errors.is_empty() { 0 } else { 2 }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigFile, Paths, parse};

    fn settings(text: &str) -> Settings {
        let paths = Paths { config_file: "/c.toml".into(), data_dir: "/d".into() };
        let file: ConfigFile = parse(text, &paths.config_file).unwrap();
        Settings::from_file(paths, file).unwrap()
    }

    #[test]
    fn flags_beat_profile_beat_defaults() {
        let s = settings("[defaults]\nmodel = \"gpt-image-1.5\"\nquality = \"high\"\nsize = \"1536x1024\"\n");
        let args = GenerateArgs { model: Some("dall-e-3".into()), ..Default::default() };
        let p = build_params(&s, Some("gpt-image-2"), &args, "x".into());
        assert_eq!(p.model, "dall-e-3");
        // high is not a dall-e-3 quality, 1536x1024 not a dall-e-3 size: defaults dropped.
        assert_eq!(p.quality, None);
        assert_eq!(p.size, None);
        let p = build_params(&s, Some("gpt-image-2"), &GenerateArgs::default(), "x".into());
        assert_eq!(p.model, "gpt-image-2");
        assert_eq!(p.quality.as_deref(), Some("high"));
        let p = build_params(&s, None, &GenerateArgs { partials: Some(2), ..Default::default() }, "x".into());
        assert!(p.stream);
        assert_eq!(p.partial_images, Some(2));
    }
}
