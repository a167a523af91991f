//! The OpenAI-compatible backend: the Images API client behind the [`Backend`] trait.

use super::{Backend, BackendEvent};
use crate::api::{ApiError, ApiOutput, CheckedRequest, ClientEvent, ClientOptions, ImagesClient};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio_util::sync::CancellationToken;

pub struct OpenAiBackend {
    client: ImagesClient,
}

impl OpenAiBackend {
    pub fn new(opts: ClientOptions) -> Result<OpenAiBackend, ApiError> {
        Ok(OpenAiBackend {
            client: ImagesClient::new(opts)?,
        })
    }
}

#[async_trait::async_trait]
impl Backend for OpenAiBackend {
    fn name(&self) -> &str {
        &self.client.options().provider
    }

    fn is_demo(&self) -> bool {
        false
    }

    fn images_client(&self) -> Option<&ImagesClient> {
        Some(&self.client)
    }

    async fn generate(
        &self,
        request: &CheckedRequest,
        cancel: CancellationToken,
        events: UnboundedSender<BackendEvent>,
    ) -> Result<ApiOutput, ApiError> {
        let (tx, mut rx) = unbounded_channel();
        let forward = events.clone();
        // Translate client events as they arrive; ends when the client drops its sender.
        let relay = tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let out = match ev {
                    ClientEvent::Partial { index, bytes } => BackendEvent::Partial { index, bytes },
                    ClientEvent::Retrying(n) => BackendEvent::Retrying {
                        retry: n.retry,
                        wait: n.wait,
                        reason: n.reason.to_string(),
                    },
                    ClientEvent::RateLimit(h) => BackendEvent::RateLimit(h),
                };
                let _ = forward.send(out);
            }
        });
        let result = self.client.generate(request, &cancel, &tx).await;
        drop(tx);
        let _ = relay.await;
        result
    }
}
