//! Setting up what the studio and the commands share: printing a failure, opening the store,
//! starting the engine (the provider's backend, the store and the scheduler), and the
//! parameters a new request starts from. Both `cli` and `studio` call this; it calls neither.

use crate::api::GenerationParams;
use crate::backend;
use crate::catalog::{Catalog, Field};
use crate::config::{Provider, Settings};
use crate::queue::{JobEvent, ProviderSlot, Scheduler, SchedulerConfig, SchedulerHandle};
use crate::store::{HistoryStore, ImageFiles};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedReceiver;

/// Print a failure the way every command does: what happened, then what to do.
pub fn report(message: &str, hint: Option<&str>) {
    eprintln!("easel: {}", crate::sanitize::line(message));
    if let Some(hint) = hint {
        eprintln!("  hint: {hint}");
    }
}

/// Open the data folder's store for writing, with the warnings it has (a data folder others can
/// open, say) for the caller to show; on failure the error is printed and the exit status
/// returned.
pub fn open_store(settings: &Settings) -> Result<(Arc<dyn HistoryStore>, Vec<String>), i32> {
    match crate::store::SledStore::open(&settings.paths.data_dir) {
        Ok(s) => {
            let warnings = HistoryStore::warnings(&s);
            Ok((Arc::new(s), warnings))
        }
        Err(e) => {
            report(&e.to_string(), None);
            Err(1)
        }
    }
}

/// Print warnings to stderr, as commands do.
pub fn print_warnings(warnings: &[String]) {
    for w in warnings {
        eprintln!("easel: warning: {}", crate::sanitize::line(w));
    }
}

/// The engine a command or the studio runs on.
pub struct Engine {
    pub store: Arc<dyn HistoryStore>,
    pub scheduler: SchedulerHandle,
    pub events: UnboundedReceiver<JobEvent>,
    /// The provider's backend is the offline demo.
    pub demo: bool,
    /// The backend's name, for messages.
    pub backend_name: String,
    /// What the store had to say on opening: the caller shows it (stderr for a command, the
    /// status line in the studio, whose screen stderr would scribble over).
    pub warnings: Vec<String>,
    /// The engine is the data folder's service: jobs outlive this process.
    pub service: bool,
}

/// How the engine runs jobs.
pub struct EngineOptions<'a> {
    /// Jobs at once (globally and on the provider).
    pub concurrency: usize,
    /// Run jobs found queued in the store.
    pub resume_queue: bool,
    /// Where images go instead of the data folder (`--out`).
    pub out_dir: Option<&'a Path>,
    /// Who is asking, for the service's status ("studio", "generate").
    pub client: &'static str,
}

/// Start the provider's backend, open the store and start the scheduler. On failure the error
/// is printed and the exit status returned.
pub async fn start_engine(
    settings: &Settings,
    provider: &Provider,
    opts: EngineOptions<'_>,
) -> Result<Engine, i32> {
    let backend = match backend::for_provider(provider, &settings.file.demo) {
        Ok(b) => b,
        Err(e) => {
            report(&e.to_string(), e.hint());
            return Err(1);
        }
    };
    let demo = backend.is_demo();
    let backend_name = backend.name().to_string();
    if settings.file.service.effective_mode() == crate::config::ServiceMode::Service {
        let name = format!("easel {} {}", env!("CARGO_PKG_VERSION"), opts.client);
        let out = opts.out_dir.map(Path::to_path_buf);
        return match crate::service::remote::engine(settings, provider, &name, out).await {
            Ok(r) => {
                let store = r.store.clone();
                let warnings = tokio::task::spawn_blocking(move || store.warnings())
                    .await
                    .unwrap_or_default();
                Ok(Engine {
                    store: r.store,
                    scheduler: r.scheduler,
                    events: r.events,
                    demo,
                    backend_name,
                    warnings,
                    service: true,
                })
            }
            Err(e) => {
                report(&e.to_string(), crate::service::hint(&e));
                Err(1)
            }
        };
    }
    let (store, mut warnings) = open_store(settings)?;
    // The trash keeps deleted generations for `[history] trash_days`, then lets them go.
    if settings.file.history.trash_days > 0 {
        let age = chrono::Duration::days(i64::from(settings.file.history.trash_days));
        if let Err(e) = store.empty_trash(Some(age)) {
            warnings.push(format!("could not empty old entries from the trash: {e}"));
        }
    }
    let slot = ProviderSlot {
        backend,
        rules: provider.rules.clone(),
        limit: opts.concurrency,
    };
    let providers = HashMap::from([(provider.name.clone(), slot)]);
    let cfg = SchedulerConfig {
        concurrency: opts.concurrency,
        resume_queue: opts.resume_queue,
    };
    let files = ImageFiles::new(&settings.paths.data_dir, opts.out_dir);
    let catalog = Arc::new(settings.catalog.clone());
    match Scheduler::start(store.clone(), catalog, files, providers, cfg).await {
        Ok((scheduler, events)) => Ok(Engine {
            store,
            scheduler,
            events,
            demo,
            backend_name,
            warnings,
            service: false,
        }),
        Err(e) => {
            report(&e.to_string(), None);
            Err(1)
        }
    }
}

/// Parameters given on a command line (or nothing, in the studio): each overrides the
/// config's default.
#[derive(Debug, Clone, Default)]
pub struct ParamOverrides {
    pub model: Option<String>,
    pub n: Option<u8>,
    pub size: Option<String>,
    pub quality: Option<String>,
    pub background: Option<String>,
    pub format: Option<String>,
    pub compression: Option<u8>,
    pub moderation: Option<String>,
    pub style: Option<String>,
    pub response_format: Option<String>,
    pub stream: bool,
    pub partials: Option<u8>,
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

/// A request's parameters: the overrides first, then the provider's model, then the config's
/// defaults where the model takes them.
pub fn params(
    settings: &Settings,
    provider_model: Option<&str>,
    o: &ParamOverrides,
    prompt: String,
) -> GenerationParams {
    let d = &settings.file.defaults;
    let model = o
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
    let stream = o.stream
        || o.partials.is_some()
        || (d.stream && default_fits(cat, &model, Field::Stream, ""));
    GenerationParams {
        prompt,
        n: o.n.unwrap_or(if default_fits(cat, &model, Field::N, "") {
            d.n
        } else {
            1
        }),
        size: pick(&o.size, &d.size, Field::Size),
        quality: pick(&o.quality, &d.quality, Field::Quality),
        background: pick(&o.background, &d.background, Field::Background),
        output_format: pick(&o.format, &d.output_format, Field::OutputFormat),
        output_compression: o.compression,
        moderation: pick(&o.moderation, &d.moderation, Field::Moderation),
        style: o.style.clone(),
        response_format: o.response_format.clone(),
        partial_images: if stream {
            o.partials.or(d.partial_images)
        } else {
            None
        },
        stream,
        user: None,
        model,
        // Input pictures, mask and fidelity are set by the caller (edits).
        ..GenerationParams::default()
    }
}
