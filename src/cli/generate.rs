//! `easel generate`: one request from the command line, for scripts and quick looks.
//!
//! Prints the saved paths on stdout (JSON lines with `--json`), progress on stderr when it is a
//! terminal, and each image inline when stdout is a terminal. Exit status: 0 when every image was
//! saved where asked, 2 when some were (or were kept in the data folder because `--out` failed),
//! 1 when none. `--dry-run` checks and prices the request and sends nothing.
//!
//! The prompt may be a run (issue 14, docs/runs.md): `{a|b}` alternatives, `__name__` wildcards,
//! `--prompts FILE`, `--repeat`, `--axis`, `--pick`. Every request of a run is built and
//! checked before anything is queued; `--dry-run` lists them with their estimates and the total.
//! Sent, the jobs are queued in order and run one at a time; the exit status counts the run as a
//! whole (0 every image saved, 2 some, 1 none), and each message names its job.

use crate::api::{CheckedRequest, GenerationParams};
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
    /// The prompt; `-` reads it from standard input. `{a|b}` and `__name__` expand it into
    /// several (docs/runs.md).
    #[arg(
        required_unless_present_any = ["prompts", "variation"],
        conflicts_with = "prompts"
    )]
    pub prompt: Option<String>,
    /// The edit flags: input pictures, mask, fidelity, variation (boxed, as the run flags).
    #[command(flatten)]
    pub edit: Box<EditArgs>,
    /// The run flags (boxed: they are rarely given, and keep the command small).
    #[command(flatten)]
    pub run: Box<RunArgs>,
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
    /// Send the request (or the run) through the Batch API: half price, results within 24 h.
    /// Prints the batch id and exits; the images land in history when the batch ends
    /// (docs/batch.md).
    #[arg(long)]
    pub batch: bool,
    /// With --batch: wait for the batch to end and print what it made.
    #[arg(long, requires = "batch")]
    pub wait: bool,
}

/// What an edit or a variation starts from (docs/providers.md#edits-and-variations).
#[derive(Debug, Args, Default)]
pub struct EditArgs {
    /// Edit a picture: a file, or a history image as ID[:N] (an id or unique prefix, and the
    /// record's N-th image, 1-based). Repeat for reference pictures (up to 16); the first is
    /// the one edited.
    #[arg(long = "image", value_name = "PATH|ID[:N]")]
    pub images: Vec<String>,
    /// A PNG mask for the first --image: its transparent pixels (alpha 0) mark where to edit.
    /// Same size as that picture, under 4 MB.
    #[arg(long, value_name = "PATH|ID[:N]", requires = "images")]
    pub mask: Option<String>,
    /// How closely an edit keeps the input pictures' features (GPT image models but mini).
    #[arg(long, value_name = "LEVEL", value_parser = ["high", "low"], requires = "images")]
    pub input_fidelity: Option<String>,
    /// Make variations of a picture (DALL·E-dialect providers that offer them; the demo): a
    /// file or ID[:N]. Takes no prompt.
    #[arg(long, value_name = "PATH|ID[:N]", conflicts_with_all = ["images", "mask", "prompts"])]
    pub variation: Option<String>,
}

/// How a prompt becomes a run of several jobs (docs/runs.md).
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// Read the prompts from FILE, one per line (blank lines skipped); `-` for standard input.
    #[arg(long, value_name = "FILE")]
    pub prompts: Option<PathBuf>,
    /// Make each combination N times.
    #[arg(long, value_name = "N")]
    pub repeat: Option<u32>,
    /// A parameter axis, NAME=V1,V2,… (model, size, quality, n, background, format,
    /// compression, moderation, style); repeat for a grid.
    #[arg(long, value_name = "NAME=VALUES")]
    pub axis: Vec<String>,
    /// Draw N of the combinations at random instead of all of them.
    #[arg(long, value_name = "N")]
    pub pick: Option<u64>,
    /// The seed for --pick, to draw the same combinations again.
    #[arg(long, value_name = "SEED")]
    pub seed: Option<u64>,
    /// Allow a run of more than 1,000 jobs.
    #[arg(long)]
    pub allow_large: bool,
    /// Refuse (exit 1, nothing sent) when the estimated cost of everything asked for is above
    /// USD dollars.
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,
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
pub(super) fn estimate(settings: &Settings, params: &GenerationParams) -> Option<f64> {
    crate::generation::estimate(&settings.catalog, params)
}

/// The input files of an edit or a variation, as `--dry-run` shows them (checked already).
fn dry_run_files(checked: &CheckedRequest) -> Vec<serde_json::Value> {
    let Some(files) = &checked.edit else {
        return Vec::new();
    };
    let inspected = crate::api::edit::check_files(files).unwrap_or_default();
    let pictures = files.images.len();
    inspected
        .iter()
        .enumerate()
        .map(|(k, i)| {
            serde_json::json!({
                "field": if k < pictures { files.image_field } else { "mask" },
                "path": i.path,
                "format": i.format,
                "width": i.width,
                "height": i.height,
                "bytes": i.bytes,
            })
        })
        .collect()
}

/// `--dry-run`: what would be sent where, and what it would cost. Nothing is sent or written.
fn dry_run(
    settings: &Settings,
    provider: &Provider,
    params: &GenerationParams,
    checked: &CheckedRequest,
    json: bool,
) -> i32 {
    let url = provider.endpoint_url(checked.endpoint());
    let cost = estimate(settings, params);
    let files = dry_run_files(checked);
    let mut out = std::io::stdout().lock();
    if json {
        let mut line = serde_json::json!({
            "dry_run": true,
            "provider": provider.name,
            "demo": provider.is_demo(),
            "url": url,
            "body": checked.body,
            // To the micro-dollar: no float noise in scripts' output.
            "estimated_cost_usd": cost.map(|c| (c * 1e6).round() / 1e6),
            "warnings": checked.warnings,
        });
        if let (Some(m), false) = (line.as_object_mut(), files.is_empty()) {
            m.insert(
                "endpoint".into(),
                serde_json::json!(checked.endpoint().path()),
            );
            m.insert("files".into(), serde_json::json!(files));
        }
        let _ = writeln!(out, "{}", sanitize::json(&line.to_string()));
        return 0;
    }
    let body = serde_json::to_string_pretty(&checked.body).unwrap_or_default();
    let target = match &url {
        Some(url) => format!("would send to {}: POST {url}", provider.name),
        None if checked.edit.is_some() => format!(
            "would run {} on the offline demo backend (no API call)",
            match checked.endpoint() {
                crate::api::Endpoint::Variations => "the variation",
                _ => "the edit",
            }
        ),
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
    for f in &files {
        let line = format!(
            "file {}: {} ({} {}x{}, {} bytes)",
            f["field"].as_str().unwrap_or_default(),
            f["path"].as_str().unwrap_or_default(),
            f["format"].as_str().unwrap_or_default(),
            f["width"],
            f["height"],
            f["bytes"]
        );
        let _ = writeln!(out, "{}", sanitize::line(&line));
    }
    if !files.is_empty() && !provider.is_demo() {
        let _ = writeln!(
            out,
            "sent as multipart/form-data; the estimate counts the input pictures as image input tokens"
        );
    }
    let _ = writeln!(out, "{}", sanitize::line(&price));
    let _ = writeln!(out, "nothing was sent (--dry-run)");
    0
}

/// The prompts of the run: the one argument, or the lines of `--prompts`.
fn read_run_prompts(args: &GenerateArgs) -> Result<Vec<(String, String)>, String> {
    let Some(file) = &args.run.prompts else {
        let prompt = read_prompt(args.prompt.as_deref().unwrap_or_default())?;
        return Ok(vec![("the prompt".to_string(), prompt)]);
    };
    let (name, text) = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("could not read the prompts from standard input: {e}"))?;
        ("standard input".to_string(), text)
    } else {
        let name = format!("--prompts {}", file.display());
        let text = std::fs::read_to_string(file).map_err(|e| {
            format!("cannot read {name}: {e} (it must be a UTF-8 text file, one prompt a line)")
        })?;
        (name, text)
    };
    let prompts = crate::runs::prompts_from_text(&name, &text);
    if prompts.is_empty() {
        return Err(format!(
            "{name}: no prompts in it (one prompt a line; blank lines are skipped)"
        ));
    }
    Ok(prompts)
}

/// The wildcard folder: `$XDG_CONFIG_HOME/easel/wildcards`, else `~/.config/easel/wildcards`.
pub fn wildcard_dir(env: config::Env) -> PathBuf {
    crate::runs::wildcards::folder(env)
}

/// The flags with a job's axis values in place of theirs (values were checked by `parse_axis`).
fn with_axes(
    mut o: crate::setup::ParamOverrides,
    axes: &[crate::runs::AxisValue],
) -> crate::setup::ParamOverrides {
    for a in axes {
        let v = Some(a.value.clone());
        match a.name.as_str() {
            "model" => o.model = v,
            "size" => o.size = v,
            "quality" => o.quality = v,
            "n" => o.n = a.value.parse().ok(),
            "background" => o.background = v,
            "format" => o.format = v,
            "compression" => o.compression = a.value.parse().ok(),
            "moderation" => o.moderation = v,
            "style" => o.style = v,
            _ => {}
        }
    }
    o
}

/// `--max-cost`: the estimate of every job together must not be above `max` (the demo backend
/// is free; a model without prices cannot be checked, so it is refused).
fn within_budget(
    settings: &Settings,
    provider: &config::Provider,
    planned: &[Planned],
    max: f64,
    batch: bool,
) -> Result<(), String> {
    if !(max.is_finite() && max >= 0.0) {
        return Err(format!("--max-cost must be a number of dollars, not {max}"));
    }
    if provider.is_demo() {
        return Ok(());
    }
    let mut total = 0.0;
    for p in planned {
        total += estimate(settings, &p.params).ok_or_else(|| {
            format!(
                "--max-cost cannot be checked: {} has no prices in the catalogue",
                sanitize::line(&p.params.model)
            )
        })?;
    }
    if batch {
        // Batch requests cost half.
        total *= crate::generation::BATCH_PRICE_FACTOR;
    }
    if total > max {
        return Err(format!(
            "the estimated cost, ${total:.3} for {} job(s), is above --max-cost ${max:.2}",
            planned.len()
        ));
    }
    Ok(())
}

/// The budgets of `[budget]` against history's spend and the run's estimate: `Some(why)` when
/// the run would pass one (with the figures).
pub(super) async fn check_budgets(
    settings: &Settings,
    store: &std::sync::Arc<dyn crate::store::HistoryStore>,
    planned: &[Planned],
    quiet: bool,
    price_factor: f64,
) -> Option<String> {
    let mut total = 0.0;
    let mut unpriced: Vec<&str> = Vec::new();
    for p in planned {
        match estimate(settings, &p.params) {
            Some(c) => total += c,
            None if !unpriced.contains(&p.params.model.as_str()) => unpriced.push(&p.params.model),
            None => {}
        }
    }
    // A batch's requests cost less (half).
    total *= price_factor;
    if !unpriced.is_empty() && !quiet {
        eprintln!(
            "easel: warning: the budget cannot count {}: no prices in the catalogue",
            sanitize::line(&unpriced.join(", "))
        );
    }
    let store = store.clone();
    let stats = tokio::task::spawn_blocking(move || store.stats()).await;
    let spend = match stats {
        Ok(Ok(s)) => s.spend,
        Ok(Err(e)) => return Some(format!("the budget cannot be checked: {e}")),
        Err(e) => return Some(format!("the budget cannot be checked: {e}")),
    };
    let now = chrono::Utc::now();
    let spent = crate::budget::Spent {
        today: spend.day(now),
        month: spend.month(now),
    };
    let over = crate::budget::over(&settings.file.budget, &spent, total);
    if over.is_empty() {
        return None;
    }
    let jobs = planned.len();
    let mut why = format!(
        "this run ({jobs} job{}, ≈ ${total:.3} estimated) would pass the budget: ",
        if jobs == 1 { "" } else { "s" }
    );
    why.push_str(
        &over
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    );
    why.push_str(&format!(
        " (spent today {}, this month {})",
        spent.today.label(),
        spent.month.label()
    ));
    Some(why)
}

pub(super) use crate::plan::{Planned, job_label};

/// Expand the run and build and check every request, before anything is sent. On failure the
/// problem is printed and the exit status returned.
fn plan_run(
    settings: &Settings,
    provider: &Provider,
    args: &GenerateArgs,
    prompts: Vec<(String, String)>,
    inputs: &super::inputs::Inputs,
) -> Result<(crate::runs::Expansion, Vec<Planned>), i32> {
    // The files of the last job checked: the jobs of a run mostly share them.
    let mut files_checked: Option<crate::api::edit::EditFiles> = None;
    let fail = |e: crate::runs::RunError| {
        super::report(&format!("not sent: {e}"), Some(&e.hint));
        1
    };
    let axes = args
        .run
        .axis
        .iter()
        .map(|a| crate::runs::parse_axis(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    let spec = crate::runs::RunSpec {
        prompts,
        axes,
        repeat: args.run.repeat.unwrap_or(1),
        pick: args.run.pick,
        seed: args.run.seed,
        allow_large: args.run.allow_large,
    };
    let mut wildcards = crate::runs::Wildcards::new(wildcard_dir(&config::real_env));
    let expansion = crate::runs::expand(&spec, &mut wildcards).map_err(fail)?;
    let target = crate::plan::Target {
        catalog: &settings.catalog,
        rules: &provider.rules,
        openai: provider.is_openai(),
        today: catalog::today(),
    };
    let planned = crate::plan::plan(
        &expansion.jobs,
        &target,
        &mut |job| {
            let mut overrides = with_axes(overrides(args), &job.values.axes);
            // Variations are a DALL·E-dialect request: without a model named, dall-e-2 (unless
            // the provider names its own).
            if inputs.variation && overrides.model.is_none() && provider.model.is_none() {
                overrides.model = Some("dall-e-2".into());
            }
            let mut params = crate::setup::params(
                settings,
                provider.model.as_deref(),
                &overrides,
                job.prompt.clone(),
            );
            inputs.apply(&mut params);
            params
        },
        // The input pictures, read before anything is sent: count, format, size, mask (the
        // files of the last job checked: the jobs of a run mostly share them).
        &mut |checked| {
            if let Some(files) = &checked.edit
                && files_checked.as_ref() != Some(files)
            {
                crate::api::edit::check_files(files).map_err(|e| e.to_string())?;
                files_checked = Some(files.clone());
            }
            Ok(())
        },
    )
    .map_err(|e| {
        super::report(&format!("not sent: {}", e.message), e.hint.as_deref());
        1
    })?;
    Ok((expansion, planned))
}

/// `--dry-run` of a run of several jobs: every request with its estimate, then the total.
fn dry_run_run(
    settings: &Settings,
    provider: &Provider,
    expansion: &crate::runs::Expansion,
    planned: &[Planned],
    json: bool,
) -> i32 {
    let url = planned
        .first()
        .and_then(|p| provider.endpoint_url(p.checked.endpoint()));
    let round = |c: f64| (c * 1e6).round() / 1e6;
    let of = planned.len();
    let images: u64 = planned.iter().map(|p| u64::from(p.params.n)).sum();
    let costs: Vec<Option<f64>> = planned
        .iter()
        .map(|p| estimate(settings, &p.params))
        .collect();
    let total: f64 = costs.iter().flatten().sum();
    let unpriced = costs.iter().filter(|c| c.is_none()).count();
    let mut out = std::io::stdout().lock();
    if json {
        for (k, (p, cost)) in planned.iter().zip(&costs).enumerate() {
            let line = serde_json::json!({
                "dry_run": true,
                "job": k + 1,
                "jobs": of,
                "provider": provider.name,
                "demo": provider.is_demo(),
                "url": url,
                "body": p.checked.body,
                "estimated_cost_usd": cost.map(round),
                "warnings": p.checked.warnings,
                "values": p.values,
            });
            let _ = writeln!(out, "{}", sanitize::json(&line.to_string()));
        }
        let summary = serde_json::json!({
            "dry_run": true,
            "summary": true,
            "jobs": of,
            "images": images,
            "combinations": expansion.combinations,
            "seed": expansion.seed,
            "estimated_cost_usd": round(total),
            "unpriced_jobs": unpriced,
        });
        let _ = writeln!(out, "{}", sanitize::json(&summary.to_string()));
        return 0;
    }
    let target = match &url {
        Some(url) => format!("would send {of} requests to {}: POST {url}", provider.name),
        None => format!("would run {of} jobs on the offline demo backend (no API call)"),
    };
    let _ = writeln!(out, "{}", sanitize::line(&target));
    for (k, (p, cost)) in planned.iter().zip(&costs).enumerate() {
        let price = match cost {
            Some(c) => format!("≈ ${c:.3}"),
            None => "cost unknown".to_string(),
        };
        let head = format!(
            "{} · {price}",
            job_label(k + 1, of, &p.values, &p.params.prompt)
        );
        let body = serde_json::to_string(&p.checked.body).unwrap_or_default();
        let _ = writeln!(out, "{}", sanitize::line(&head));
        let _ = writeln!(out, "  {}", sanitize::json(&body));
    }
    let mut summary = format!(
        "total: {of} jobs · {images} images · estimated cost ≈ ${total:.3} (an estimate from the catalogue's prices"
    );
    if provider.is_demo() {
        summary.push_str("; free on the demo backend");
    }
    if unpriced > 0 {
        summary.push_str(&format!(
            "; {unpriced} jobs not counted: their model has no prices in the catalogue"
        ));
    }
    summary.push(')');
    let _ = writeln!(out, "{summary}");
    if let Some(seed) = expansion.seed {
        let _ = writeln!(
            out,
            "drawn from {} combinations with --seed {seed} (give it again for the same draw)",
            expansion.combinations
        );
    }
    let _ = writeln!(out, "nothing was sent (--dry-run)");
    0
}

pub async fn run(
    settings: &Settings,
    provider: Option<&str>,
    args: GenerateArgs,
    quiet: bool,
) -> i32 {
    let prompts = match read_run_prompts(&args) {
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
    let inputs = match super::inputs::resolve(
        settings,
        &args.edit.images,
        args.edit.mask.as_deref(),
        args.edit.variation.as_deref(),
        args.edit.input_fidelity.as_deref(),
    ) {
        Ok(i) => i,
        Err((code, why)) => {
            super::report(&format!("not sent: {why}"), None);
            return code;
        }
    };
    let (expansion, planned) = match plan_run(settings, &provider, &args, prompts, &inputs) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if !quiet {
        // Once each, however many jobs share it.
        let mut seen: Vec<&str> = Vec::new();
        for w in planned.iter().flat_map(|p| &p.checked.warnings) {
            if !seen.contains(&w.as_str()) {
                seen.push(w);
                // Warnings quote the model name and the catalogue's note, which may come from
                // anywhere.
                eprintln!("easel: warning: {}", sanitize::line(w));
            }
        }
    }
    if let Some(max) = args.run.max_cost
        && let Err(why) = within_budget(settings, &provider, &planned, max, args.batch)
    {
        super::report(
            &format!("not sent: {why}"),
            Some("raise --max-cost, or ask for fewer or cheaper images (--dry-run shows each)"),
        );
        return 1;
    }
    if args.batch {
        return super::batch::send(settings, &provider, &args, planned, quiet).await;
    }
    if args.dry_run {
        return match planned.as_slice() {
            [one] => dry_run(settings, &provider, &one.params, &one.checked, args.json),
            _ => dry_run_run(settings, &provider, &expansion, &planned, args.json),
        };
    }
    if planned.is_empty() {
        super::report("the run has no jobs", None);
        return 1;
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
            client: "generate",
        },
    )
    .await
    {
        Ok(e) => e,
        Err(code) => return code,
    };
    crate::setup::print_warnings(&engine.warnings);
    // [budget]: what history has spent today and this month, plus this run's estimate, must
    // stay within the budgets; otherwise nothing is sent.
    if !engine.demo && crate::budget::has_limits(&settings.file.budget) {
        let refused = check_budgets(settings, &engine.store, &planned, quiet, 1.0).await;
        if let Some(why) = refused {
            super::report(
                &format!("not sent: {why}"),
                Some(
                    "raise [budget] daily_usd / monthly_usd in the config file (easel config path), wait for the next day or month, or ask for fewer or cheaper images (--dry-run shows each)",
                ),
            );
            engine.scheduler.shutdown().await;
            return 1;
        }
    }
    let files = ImageFiles::new(&settings.paths.data_dir, args.out.as_deref());
    let is_demo = engine.demo;
    let backend_name = engine.backend_name.clone();
    let store = engine.store.clone();
    let (handle, mut events) = (engine.scheduler, engine.events);
    let of = planned.len();
    let first_model = planned
        .first()
        .and_then(|p| p.checked.body["model"].as_str())
        .unwrap_or_default()
        .to_string();
    // Every job of a run is queued, in order, before the first answer is awaited.
    let mut ids = Vec::with_capacity(of);
    let mut labels = Vec::with_capacity(of);
    // The jobs of a run share a run id, and each records the values it used.
    let run_id = crate::store::Id::new();
    for (k, p) in planned.into_iter().enumerate() {
        let run = (of > 1).then(|| crate::store::RunInfo {
            id: run_id,
            index: u32::try_from(k + 1).unwrap_or(u32::MAX),
            of: u32::try_from(of).unwrap_or(u32::MAX),
            values: p.values.clone(),
        });
        labels.push((job_label(k + 1, of, &p.values, &p.params.prompt), p.values));
        let submission = Submission {
            params: p.params,
            provider: provider.name.clone(),
            front: false,
            parent: None,
            run,
        };
        match handle.submit_headless(submission).await {
            Ok(id) => ids.push(id),
            Err(e) => {
                super::report(&format!("not queued: {e}"), None);
                // A run is queued whole or not at all.
                for id in &ids {
                    handle.cancel(*id);
                }
                handle.shutdown().await;
                return 1;
            }
        }
    }

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
            sanitize::line(&first_model),
            sanitize::line(&backend_name)
        ),
        detail: String::new(),
    };
    let mut records: Vec<Option<GenerationRecord>> = vec![None; of];
    let mut done = 0;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    let mut interrupted = false;
    let job_of = |id| ids.iter().position(|j| *j == id);
    let of_run = |k: usize| {
        if of > 1 {
            format!(", job {}/{of}", k + 1)
        } else {
            String::new()
        }
    };
    while done < of {
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                match &ev {
                    JobEvent::Partial { id: j, index, .. } => if let Some(k) = job_of(*j) {
                        progress.detail = format!("{}, partial image {}", of_run(k), index + 1);
                    },
                    JobEvent::Retrying { id: j, retry, wait, reason } => if let Some(k) = job_of(*j) {
                        progress.detail = format!("{}, retry {retry} in {:.1}s after: {}", of_run(k), wait.as_secs_f64(), sanitize::truncate(reason, 80));
                    },
                    JobEvent::RateLimited { wait, .. } => {
                        progress.detail = format!(", rate limited · resuming in {:.0} s", wait.as_secs_f64().ceil());
                    }
                    JobEvent::Problem(p) => {
                        progress.clear();
                        super::report(p, None);
                    }
                    _ => {}
                }
                let finished = match &ev {
                    // Events were missed (a new service after the old one died, which recorded
                    // the jobs it was running as interrupted before anyone listened; or this
                    // client fell behind): how the jobs stand is in the store.
                    JobEvent::Resync => {
                        let pending: Vec<_> = ids
                            .iter()
                            .zip(&records)
                            .filter(|(_, r)| r.is_none())
                            .map(|(id, _)| *id)
                            .collect();
                        let store = store.clone();
                        tokio::task::spawn_blocking(move || {
                            pending
                                .into_iter()
                                .filter_map(|id| store.get(id).ok().flatten())
                                .filter(|r| r.status.is_final())
                                .collect()
                        })
                        .await
                        .unwrap_or_default()
                    }
                    ev => ev.finished().cloned().into_iter().collect::<Vec<_>>(),
                };
                for r in finished {
                    if let Some(k) = job_of(r.id)
                        && records[k].is_none()
                    {
                        records[k] = Some(r);
                        done += 1;
                        progress.detail = if of > 1 { format!(", {done}/{of} done") } else { String::new() };
                    }
                }
                progress.draw();
            }
            r = tokio::signal::ctrl_c(), if !interrupted => {
                if r.is_ok() {
                    interrupted = true;
                    for id in &ids {
                        handle.cancel(*id);
                    }
                }
            }
            _ = tick.tick() => progress.draw(),
        }
    }
    progress.clear();
    handle.shutdown().await;
    // 0 when every job saved every image, 1 when nothing was saved, 2 in between.
    let mut codes = Vec::with_capacity(of);
    for (k, (record, (label, values))) in records.iter().zip(&labels).enumerate() {
        let job = (of > 1).then_some((label.as_str(), values, k + 1, of));
        codes.push(match record {
            Some(record) => report_outcome(record, &files, &args, settings, quiet, job),
            None => {
                let what = "the scheduler stopped before the job ended";
                match job {
                    Some((label, ..)) => super::report(&format!("{label}: {what}"), None),
                    None => super::report(what, None),
                }
                1
            }
        });
    }
    if codes.iter().all(|c| *c == 0) {
        0
    } else if codes.iter().all(|c| *c == 1) {
        1
    } else {
        2
    }
}

/// Print what a finished job made (or why it failed) and choose the exit status.
pub(super) fn report_outcome(
    record: &GenerationRecord,
    files: &ImageFiles,
    args: &GenerateArgs,
    settings: &Settings,
    quiet: bool,
    job: Option<(&str, &crate::runs::JobValues, usize, usize)>,
) -> i32 {
    // In a run, every message names its job.
    let named = |msg: &str| match job {
        Some((label, ..)) => format!("{label}: {msg}"),
        None => msg.to_string(),
    };
    match record.status {
        Status::Succeeded => {}
        Status::Cancelled => {
            super::report(&named("cancelled"), None);
            return 1;
        }
        _ => {
            let (msg, hint) = match &record.error {
                Some(e) => (e.message.clone(), e.hint.clone()),
                None => (format!("the job ended {}", record.status), None),
            };
            super::report(&named(&msg), hint.as_deref());
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
            let mut line = serde_json::json!({
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
            if let (Some((_, values, k, of)), Some(obj)) = (job, line.as_object_mut()) {
                obj.insert("job".into(), serde_json::json!(k));
                obj.insert("jobs".into(), serde_json::json!(of));
                obj.insert("values".into(), serde_json::json!(values));
                if let Some(run) = &record.run {
                    obj.insert("run".into(), serde_json::json!(run.id));
                }
            }
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
            super::report(&named(&e.message), hint);
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
