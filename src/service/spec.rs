//! A provider as it travels from a client to the service: where to send requests, what the
//! server accepts, and the client's key. The service builds the job's backend from it, so a
//! job runs with the credentials (and the profile) of the client that submitted it, and the
//! service itself never reads a key from its environment or config.

use super::protocol::Credential;
use crate::api::{ClientOptions, DownloadHosts, ProviderRules};
use crate::catalog::{Dialect, Field};
use crate::config::{Provider, ProviderKind};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderSpec {
    pub name: String,
    /// `None` for the offline demo backend (the service's own `[demo]` settings apply).
    #[serde(default)]
    pub http: Option<HttpSpec>,
    #[serde(default)]
    pub dialect: Option<Dialect>,
    #[serde(default)]
    pub fields: Option<Vec<Field>>,
    #[serde(default)]
    pub model: Option<String>,
    /// The provider offers `/images/variations`.
    #[serde(default)]
    pub variations: bool,
}

/// [`ClientOptions`] on the wire; durations in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpSpec {
    pub display_name: String,
    pub base_url: String,
    #[serde(default)]
    pub credential: Option<Credential>,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default)]
    pub project: Option<String>,
    pub max_retries: u32,
    pub timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub stream_idle_timeout_ms: u64,
    pub download_max_bytes: u64,
    pub download_timeout_ms: u64,
    pub max_response_bytes: u64,
    pub download_hosts: DownloadHosts,
    pub download_max_redirects: u32,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl ProviderSpec {
    pub fn of(p: &Provider) -> ProviderSpec {
        let http = match &p.kind {
            ProviderKind::Demo => None,
            ProviderKind::Http(c) => Some(HttpSpec {
                display_name: c.provider.clone(),
                base_url: c.base_url.clone(),
                credential: c.api_key.clone().map(Credential),
                organization: c.organization.clone(),
                project: c.project.clone(),
                max_retries: c.max_retries,
                timeout_ms: ms(c.timeout),
                connect_timeout_ms: ms(c.connect_timeout),
                stream_idle_timeout_ms: ms(c.stream_idle_timeout),
                download_max_bytes: c.download_max_bytes,
                download_timeout_ms: ms(c.download_timeout),
                max_response_bytes: c.max_response_bytes,
                download_hosts: c.download_hosts,
                download_max_redirects: c.download_max_redirects,
            }),
        };
        ProviderSpec {
            name: p.name.clone(),
            http,
            dialect: p.rules.dialect,
            fields: p.rules.fields.clone(),
            model: p.model.clone(),
            variations: p.rules.variations,
        }
    }

    /// Whether the spec carries a key (a demo needs none).
    pub fn has_credential(&self) -> bool {
        self.http.as_ref().is_none_or(|h| h.credential.is_some())
    }

    pub fn to_provider(&self) -> Provider {
        let kind = match &self.http {
            None => ProviderKind::Demo,
            Some(h) => {
                let mut c = ClientOptions::new(&h.display_name, &h.base_url);
                c.api_key = h.credential.clone().map(|k| k.0);
                c.organization = h.organization.clone();
                c.project = h.project.clone();
                c.max_retries = h.max_retries;
                c.timeout = Duration::from_millis(h.timeout_ms);
                c.connect_timeout = Duration::from_millis(h.connect_timeout_ms);
                c.stream_idle_timeout = Duration::from_millis(h.stream_idle_timeout_ms);
                c.download_max_bytes = h.download_max_bytes;
                c.download_timeout = Duration::from_millis(h.download_timeout_ms);
                c.max_response_bytes = h.max_response_bytes;
                c.download_hosts = h.download_hosts;
                c.download_max_redirects = h.download_max_redirects;
                ProviderKind::Http(Box::new(c))
            }
        };
        Provider {
            name: self.name.clone(),
            kind,
            rules: ProviderRules {
                name: self.name.clone(),
                dialect: self.dialect,
                fields: self.fields.clone(),
                variations: self.variations,
            },
            model: self.model.clone(),
            notice: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::ApiKey;

    #[test]
    fn a_provider_survives_the_trip_and_its_key_stays_hidden_in_debug() {
        let mut c = ClientOptions::new("Local", "http://127.0.0.1:9/v1");
        c.api_key = ApiKey::new("sk-spec-0123456789abcdefghijklmnop");
        c.timeout = Duration::from_millis(1234);
        c.download_hosts = DownloadHosts::Provider;
        let p = Provider {
            name: "local".into(),
            kind: ProviderKind::Http(Box::new(c)),
            rules: ProviderRules {
                name: "local".into(),
                dialect: Some(Dialect::Dalle),
                fields: Some(vec![Field::Size]),
                variations: true,
            },
            model: Some("dall-e-2".into()),
            notice: None,
        };
        let spec = ProviderSpec::of(&p);
        let json = serde_json::to_string(&spec).unwrap();
        let back: ProviderSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
        assert!(!format!("{back:?}").contains("0123456789"));
        let again = back.to_provider();
        let ProviderKind::Http(c) = again.kind else {
            panic!("not http")
        };
        assert_eq!(c.timeout, Duration::from_millis(1234));
        assert_eq!(c.download_hosts, DownloadHosts::Provider);
        assert_eq!(
            c.api_key.as_ref().map(|k| k.expose().to_string()),
            Some("sk-spec-0123456789abcdefghijklmnop".to_string())
        );
        assert_eq!(again.rules, p.rules);
        assert!(spec.has_credential());
    }
}
