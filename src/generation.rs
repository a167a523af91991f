//! One generation from start to saved files: run the backend, save every image with its sidecar,
//! and say what happened. Used by `easel generate` and by the queue's workers alike.

use crate::api::{ApiError, CheckedRequest, ErrorKind, GenerationParams, Usage};
use crate::backend::{Backend, BackendEvent};
use crate::catalog::{self, Catalog};
use crate::store::Id;
use crate::store::{ImageFiles, SavedImage};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// A request ready to run.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: Id,
    pub params: GenerationParams,
    pub checked: CheckedRequest,
    pub created: DateTime<Utc>,
    /// Its place in a run (written into the sidecar).
    pub run: Option<crate::store::RunInfo>,
}

/// How a generation ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub images: Vec<SavedImage>,
    /// Images the server made that could not be saved (a full disk, say): one message each.
    pub save_errors: Vec<String>,
    /// What the user should know about an answer that was still used (extra images dropped).
    #[serde(default)]
    pub warnings: Vec<String>,
    pub revised_prompt: Option<String>,
    pub usage: Option<Usage>,
    pub cost_usd: Option<f64>,
    pub request_id: Option<String>,
    pub attempts: u32,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub demo: bool,
}

/// What went wrong, for records and messages.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: ApiError,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
}

/// The estimated or reported cost of what was made.
pub fn cost(
    catalog: &Catalog,
    params: &GenerationParams,
    usage: Option<&Usage>,
    images: usize,
    demo: bool,
) -> Option<f64> {
    if demo {
        return Some(0.0);
    }
    let spec = catalog.get(&params.model)?;
    if let Some(c) = usage.and_then(|u| crate::cost::cost_from_usage(spec, u)) {
        return Some(c);
    }
    let made = catalog::estimate_cost(
        spec,
        &params.prompt,
        images as u32,
        params.size.as_deref().unwrap_or("auto"),
        params.quality.as_deref().unwrap_or("auto"),
    )?;
    // An edit's input pictures are billed too, as image input tokens.
    Some(made + input_cost(spec, params))
}

/// The catalogue's estimate for a request before it is sent, in US dollars (None for a model
/// without prices). An edit's input pictures count as image input tokens.
pub fn estimate(catalog: &Catalog, params: &GenerationParams) -> Option<f64> {
    let spec = catalog.get(&params.model)?;
    let made = catalog::estimate_cost(
        spec,
        &params.prompt,
        u32::from(params.n),
        params.size.as_deref().unwrap_or("auto"),
        params.quality.as_deref().unwrap_or("auto"),
    )?;
    Some(made + input_cost(spec, params))
}

/// The estimated cost of the input pictures of an edit (0 for a generation).
pub fn input_cost(spec: &catalog::ModelSpec, params: &GenerationParams) -> f64 {
    if params.images.is_empty() || params.variation {
        return 0.0;
    }
    catalog::estimate_input_cost(spec, &crate::api::edit::input_sizes(&params.images))
}

/// Save image `index` of `job` (off the async threads: it syncs to disk).
async fn save(
    files: &ImageFiles,
    job: &Job,
    index: usize,
    image: &crate::api::ReceivedImage,
    meta: &serde_json::Value,
) -> Result<SavedImage, String> {
    let files = files.clone();
    let (id, created, image, meta) = (job.id, job.created, image.clone(), meta.clone());
    tokio::task::spawn_blocking(move || files.save(&id, created, index, &image, &meta))
        .await
        .unwrap_or_else(|e| Err(format!("saving stopped: {e}")))
}

/// Run `job` on `backend` and save the results under `files` (images that cannot be written to
/// the `--out` folder are kept in the data folder, with a message saying where).
pub async fn run(
    backend: &dyn Backend,
    files: &ImageFiles,
    catalog: &Catalog,
    job: &Job,
    cancel: CancellationToken,
    events: UnboundedSender<BackendEvent>,
) -> Result<Outcome, Failure> {
    let started = Utc::now();
    let result = backend.generate(&job.checked, cancel.clone(), events).await;
    let output = match result {
        Ok(o) => o,
        Err(error) => {
            return Err(Failure {
                error,
                started,
                finished: Utc::now(),
            });
        }
    };
    let made = Made {
        provider: backend.name(),
        demo: backend.is_demo(),
        started,
        batch: None,
    };
    save_output(&made, files, catalog, job, output, &cancel).await
}

/// Who made an answer, for [`save_output`].
pub struct Made<'a> {
    pub provider: &'a str,
    pub demo: bool,
    pub started: DateTime<Utc>,
    /// Made by a Batch API batch: priced at half, and the sidecar says which batch.
    pub batch: Option<&'a crate::store::BatchRef>,
}

/// The price of a batch request relative to a live one.
pub const BATCH_PRICE_FACTOR: f64 = 0.5;

/// Save the images of an answer with their sidecars, as a live generation does (a batch's
/// results go through here too, so they land in history exactly the same way).
pub async fn save_output(
    made: &Made<'_>,
    files: &ImageFiles,
    catalog: &Catalog,
    job: &Job,
    output: crate::api::ApiOutput,
    cancel: &CancellationToken,
) -> Result<Outcome, Failure> {
    let (started, demo) = (made.started, made.demo);
    let revised_prompt = output.images.iter().find_map(|i| i.revised_prompt.clone());
    let cost_usd = cost(
        catalog,
        &job.params,
        output.usage.as_ref(),
        output.images.len(),
        demo,
    )
    .map(|c| {
        if made.batch.is_some() {
            c * BATCH_PRICE_FACTOR
        } else {
            c
        }
    });
    let sidecar = serde_json::json!({
        "easel_sidecar": 1,
        "id": job.id.to_string(),
        "prompt": job.params.prompt,
        "revised_prompt": revised_prompt,
        "model": job.params.model,
        "provider": made.provider,
        "backend": if demo { "demo" } else { "openai-compatible" },
        "demo": demo,
        "request": job.checked.body,
        "created_at": job.created.to_rfc3339(),
        "started_at": started.to_rfc3339(),
        "finished_at": Utc::now().to_rfc3339(),
        "attempts": output.attempts,
        "request_id": output.request_id,
        "usage": output.usage,
        "estimated_cost_usd": cost_usd,
        "server_reported": {
            "size": output.size, "quality": output.quality,
            "background": output.background, "output_format": output.output_format,
        },
    });
    let mut sidecar = sidecar;
    if let (Some(m), true) = (sidecar.as_object_mut(), job.checked.edit.is_some()) {
        // What an edit or a variation started from, and its lineage.
        m.insert(
            "endpoint".into(),
            serde_json::json!(job.checked.endpoint().path()),
        );
        m.insert("inputs".into(), serde_json::json!(job.params.images));
        if let Some(mask) = &job.params.mask {
            m.insert("mask".into(), serde_json::json!(mask));
        }
        m.insert(
            "parents".into(),
            serde_json::json!(crate::store::record::parents_of(&job.params)),
        );
    }
    if let (Some(m), Some(run)) = (sidecar.as_object_mut(), &job.run) {
        m.insert("run".into(), serde_json::json!(run));
    }
    if let (Some(m), Some(batch)) = (sidecar.as_object_mut(), made.batch) {
        m.insert("batch".into(), serde_json::json!(batch));
    }
    if let (Some(m), false) = (sidecar.as_object_mut(), output.warnings.is_empty()) {
        m.insert("warnings".into(), serde_json::json!(output.warnings));
    }
    let mut images = Vec::new();
    let mut save_errors = Vec::new();
    for (i, image) in output.images.iter().enumerate() {
        if cancel.is_cancelled() {
            break;
        }
        let per_image = serde_json::json!({ "revised_prompt": image.revised_prompt });
        let mut meta = sidecar.clone();
        if let (Some(m), Some(extra)) = (meta.as_object_mut(), per_image.as_object()) {
            for (k, v) in extra {
                if !v.is_null() {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
        let mut saved = save(files, job, i, image, &meta).await;
        if let (Err(e), Some(out)) = (&saved, files.out_dir()) {
            // The image is paid for: rather than lose it, keep it in the data folder and say so.
            let kept = ImageFiles::new(files.data_dir(), None);
            saved = match save(&kept, job, i, image, &meta).await {
                Ok(s) => {
                    save_errors.push(format!(
                        "image {} could not be written to --out {} ({e}); kept it at {}",
                        i + 1,
                        out.display(),
                        kept.resolve(&s.path).display()
                    ));
                    Ok(s)
                }
                Err(e2) => Err(format!("{e}; nor in the data folder: {e2}")),
            };
        }
        match saved {
            Ok(s) => images.push(s),
            Err(e) => save_errors.push(e),
        }
    }
    if cancel.is_cancelled() {
        // A cancelled job leaves no files behind.
        for s in &images {
            files.remove(s);
        }
        return Err(Failure {
            error: ApiError::cancelled(made.provider),
            started,
            finished: Utc::now(),
        });
    }
    if images.is_empty() && !save_errors.is_empty() {
        let mut error = ApiError::new(ErrorKind::Storage, made.provider, save_errors.join("; "))
            .with_request_id(output.request_id.clone());
        error.attempts = output.attempts;
        return Err(Failure {
            error,
            started,
            finished: Utc::now(),
        });
    }
    Ok(Outcome {
        images,
        save_errors,
        warnings: output.warnings.clone(),
        revised_prompt,
        usage: output.usage,
        cost_usd,
        request_id: output.request_id,
        attempts: output.attempts,
        started,
        finished: Utc::now(),
        demo,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ProviderRules, request};
    use crate::backend::demo::DemoBackend;
    use std::time::Duration;

    /// Issue 9 item 6: an image that was paid for but cannot be written to `--out` is kept in
    /// the data folder, and the message says where.
    #[tokio::test]
    async fn images_that_cannot_go_to_out_are_kept_in_the_data_folder() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let blocker = root.path().join("a-file");
        std::fs::write(&blocker, b"not a folder").unwrap();
        let files = ImageFiles::new(&data, Some(&blocker.join("out")));
        let params = GenerationParams {
            prompt: "a lighthouse".into(),
            size: Some("64x64".into()),
            n: 2,
            ..Default::default()
        };
        let catalog = Catalog::builtin();
        let checked = request::check(&params, &catalog, &ProviderRules::default()).unwrap();
        let job = Job {
            id: Id::new(),
            params,
            checked,
            created: chrono::Utc::now(),
            run: None,
        };
        let backend = DemoBackend::new(Duration::ZERO, 0);
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let outcome = run(
            &backend,
            &files,
            &catalog,
            &job,
            CancellationToken::new(),
            tx,
        )
        .await
        .unwrap_or_else(|f| panic!("the images are kept, not lost: {:?}", f.error));
        assert_eq!(outcome.images.len(), 2);
        for saved in &outcome.images {
            let abs = files.resolve(&saved.path);
            assert!(abs.starts_with(&data), "{abs:?} is in the data folder");
            assert!(abs.is_file(), "{abs:?}");
        }
        assert_eq!(outcome.save_errors.len(), 2, "{:?}", outcome.save_errors);
        for (e, saved) in outcome.save_errors.iter().zip(&outcome.images) {
            assert!(e.contains(&*blocker.to_string_lossy()), "names --out: {e}");
            let abs = files.resolve(&saved.path);
            assert!(e.contains(&*abs.to_string_lossy()), "says where: {e}");
        }
    }
}
