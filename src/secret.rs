//! The API key, wrapped so that it cannot be printed, logged or serialised by accident.

use std::fmt;

/// An API key. `Debug` and `Display` show a redacted form; only [`ApiKey::expose`] gives the key,
/// and only the HTTP client calls it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Option<ApiKey> {
        let key = key.into().trim().to_string();
        (!key.is_empty()).then_some(ApiKey(key))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let k = ApiKey::new(" sk-secret-123 ").unwrap();
        assert_eq!(k.expose(), "sk-secret-123");
        assert!(!format!("{k:?} {k}").contains("secret"));
        assert!(ApiKey::new("  ").is_none());
    }
}
