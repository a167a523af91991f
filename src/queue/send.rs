//! Sending jobs through the Batch API (docs/batch.md): the JSONL file written in the data
//! folder and uploaded, the batch created, and its jobs recorded with the scheduler, which
//! polls it. Shared by `easel generate --batch` and the studio's "send as batch".

use super::{NewBatch, SchedulerHandle, Submission};
use crate::api::{Endpoint, ImagesClient, batch};
use crate::store::Id;
use std::io::Write;
use tokio_util::sync::CancellationToken;

/// One line of a batch: the request body (built and checked) and the job it becomes.
#[derive(Debug, Clone)]
pub struct BatchLine {
    pub body: serde_json::Map<String, serde_json::Value>,
    pub submission: Submission,
}

/// A batch sent and recorded.
#[derive(Debug, Clone)]
pub struct Sent {
    pub batch: batch::Batch,
    /// The jobs' record ids, in the order of the lines.
    pub ids: Vec<Id>,
}

/// Why nothing was sent (or a batch was created but could not be kept), said so that the user
/// knows what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub message: String,
    pub hint: Option<String>,
}

fn fail(message: String) -> SendError {
    SendError {
        message,
        hint: None,
    }
}

/// Write the lines to a private file in `data_dir` (it holds the prompts), upload it, create
/// the batch (`/v1/images/generations`, window 24h), and record its jobs. A batch that was
/// created but could not be recorded is cancelled (nobody would collect it).
pub async fn send_batch(
    client: &ImagesClient,
    handle: &SchedulerHandle,
    data_dir: &std::path::Path,
    lines: Vec<BatchLine>,
) -> Result<Sent, SendError> {
    if lines.is_empty() {
        return Err(fail("the run has no jobs".into()));
    }
    let endpoint = Endpoint::Generations;
    let of = lines.len();
    let ids: Vec<Id> = lines.iter().map(|_| Id::new()).collect();
    let mut file = tempfile::Builder::new()
        .prefix(".batch-")
        .suffix(".jsonl")
        .tempfile_in(data_dir)
        .map_err(|e| {
            fail(format!(
                "not sent: cannot write the batch file in the data folder: {e}"
            ))
        })?;
    for (id, l) in ids.iter().zip(&lines) {
        let line = batch::input_line(&id.to_string(), endpoint, &l.body);
        writeln!(file, "{line}")
            .map_err(|e| fail(format!("not sent: cannot write the batch file: {e}")))?;
    }
    file.flush()
        .map_err(|e| fail(format!("not sent: cannot write the batch file: {e}")))?;
    let cancel = CancellationToken::new();
    let file_id = client
        .upload_batch_file(file.path(), &cancel)
        .await
        .map_err(|e| SendError {
            message: format!("not sent: the upload failed: {e}"),
            hint: e.hint().map(str::to_string),
        })?;
    drop(file);
    let mut metadata = serde_json::Map::new();
    metadata.insert(
        "created_by".into(),
        format!("easel {}", env!("CARGO_PKG_VERSION")).into(),
    );
    metadata.insert("jobs".into(), of.to_string().into());
    let created = client
        .create_batch(&file_id, endpoint, &metadata, &cancel)
        .await
        .map_err(|e| SendError {
            message: format!("not sent: creating the batch failed: {e}"),
            hint: e.hint().map(str::to_string),
        })?;
    let nb = NewBatch {
        batch_id: created.id.clone(),
        jobs: ids
            .iter()
            .copied()
            .zip(lines.into_iter().map(|l| l.submission))
            .collect(),
        slot: None,
    };
    if let Err(e) = handle.submit_batch(nb).await {
        // Not recorded: nobody would collect it, so it is not left running (and paid for).
        let cancelled = client.cancel_batch(&created.id, &cancel).await.is_ok();
        return Err(fail(format!(
            "batch {} was created but could not be recorded: {e}; {}",
            created.id,
            if cancelled {
                "it was cancelled"
            } else {
                "cancel it in the provider's dashboard"
            }
        )));
    }
    Ok(Sent {
        batch: created,
        ids,
    })
}
