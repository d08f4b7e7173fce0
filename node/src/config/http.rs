//! `[http]`: the HTTP front end's body limit, request deadline and CORS allow-list.

use std::time::Duration;

use super::reader::{at_least, Reader, Section};

/// `[http]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Deadline of a whole HTTP request (`request_timeout_ms`).
    pub request_timeout: Duration,
    /// Strict CORS allow-list of origins such as `https://example.com`.
    pub cors_origins: Vec<String>,
}

/// Requires an exact origin such as `https://example.com:8443`.
fn cors_origin(value: &String) -> Result<(), String> {
    if value == "*" {
        return Err("wildcard origin is not allowed (strict allow-list)".to_owned());
    }
    let host = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match host {
        Some(host) if !host.is_empty() && !host.contains(['/', ' ', '*']) => Ok(()),
        _ => Err(format!(
            "expected an origin like \"https://example.com\" (no path), got {value:?}"
        )),
    }
}

impl Reader<'_> {
    /// Reads `[http]`.
    pub(super) fn http(&mut self, root: &mut Section<'_>) -> Http {
        let mut section = self.section(root, "http");
        let max_body_env = Some("TROUPE_HTTP_MAX_BODY_BYTES");
        let max_body_bytes = self.get(&mut section, "max_body_bytes", max_body_env, &at_least(1));
        let timeout_env = Some("TROUPE_HTTP_REQUEST_TIMEOUT_MS");
        let timeout_ms = self.get(
            &mut section,
            "request_timeout_ms",
            timeout_env,
            &at_least(1),
        );
        let cors_origins = self.list(&mut section, "cors_origins", None, &cors_origin);
        self.finish(section);
        Http {
            max_body_bytes: max_body_bytes.unwrap_or(1024 * 1024),
            request_timeout: Duration::from_millis(timeout_ms.unwrap_or(5000)),
            cors_origins: cors_origins.unwrap_or_default(),
        }
    }
}
