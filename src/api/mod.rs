//! The OpenAI Images API: building requests, talking to the server, reading answers.

pub mod batch;
pub mod client;
pub mod edit;
pub mod error;
pub mod payload;
pub mod ratelimit;
pub mod request;
pub mod response;
pub mod retry;
pub mod sse;

pub use client::{
    ApiOutput, ClientEvent, ClientOptions, DownloadHosts, ImagesClient, ReceivedImage,
};
pub use edit::{Endpoint, InputImage};
pub use error::{ApiError, ErrorKind};
pub use ratelimit::RateHints;
pub use request::{CheckedRequest, GenerationParams, ProviderRules, ValidationError};
pub use response::Usage;
