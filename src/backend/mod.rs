//! Backends turn a checked request into images: the OpenAI-compatible HTTP backend, and the
//! offline demo backend that draws pictures from the prompt so easel can be tried without a key.
//! The queue and the studio only see the [`Backend`] trait.

pub mod demo;
pub mod demo_art;
pub mod openai;

use crate::api::{ApiError, ApiOutput, CheckedRequest};
use crate::config::{Provider, ProviderKind};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// Progress of one generation, in the order it happens.
#[derive(Debug, Clone)]
pub enum BackendEvent {
    /// A rough version of the picture, while it is being made (raw encoded bytes).
    Partial { index: u32, bytes: Bytes },
    /// The attempt failed and will be retried after `wait`.
    Retrying {
        retry: u32,
        wait: Duration,
        reason: String,
    },
    /// What an answer said about the provider's rate limits (a 429 among them).
    RateLimit(crate::api::RateHints),
}

/// Something that generates images.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// The provider's name, as shown to the user.
    fn name(&self) -> &str;
    /// True for the offline demo backend, whose output must always be labelled as such.
    fn is_demo(&self) -> bool;
    /// The Images API client behind it, for the Batch API (none for the demo).
    fn images_client(&self) -> Option<&crate::api::ImagesClient> {
        None
    }
    /// Generate. Progress goes to `events`; cancelling ends the work at once and leaves nothing
    /// behind.
    async fn generate(
        &self,
        request: &CheckedRequest,
        cancel: CancellationToken,
        events: UnboundedSender<BackendEvent>,
    ) -> Result<ApiOutput, ApiError>;
}

/// Build the backend for a resolved provider.
pub fn for_provider(
    provider: &Provider,
    demo: &crate::config::Demo,
) -> Result<Arc<dyn Backend>, ApiError> {
    Ok(match &provider.kind {
        ProviderKind::Demo => Arc::new(demo::DemoBackend::new(
            Duration::from_millis(demo.latency_ms),
            demo.partial_images,
        )),
        ProviderKind::Http(opts) => {
            let mut opts = (**opts).clone();
            // Jobs run through the scheduler, which paces 429s without using up retries.
            opts.defer_rate_limits = true;
            Arc::new(openai::OpenAiBackend::new(opts)?)
        }
    })
}
