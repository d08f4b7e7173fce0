//! `[http]`: the HTTP front end's body limit, request deadline, CORS allow-list, the
//! listener's timeouts and connection cap (`crate::listener`), and the proxies whose
//! `X-Forwarded-For` is believed (`trusted_proxies`).

use std::time::Duration;

use super::reader::{at_least, between, Reader, Section};

/// `[http]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Deadline of a whole HTTP request (`request_timeout_ms`).
    pub request_timeout: Duration,
    /// Strict CORS allow-list of origins such as `https://example.com`.
    pub cors_origins: Vec<String>,
    /// Longest a client may take to send a request head, and longest a keep-alive
    /// connection may sit idle (`header_read_timeout_ms`, default 10 s).
    pub header_read_timeout: Duration,
    /// Longest a client may take to send a request body (`body_timeout_ms`, default 10 s).
    pub body_timeout: Duration,
    /// HTTP connections served at once; more are closed when accepted
    /// (`max_connections`, default 50,000).
    pub max_connections: usize,
    /// Networks of the reverse proxies in front of the node (`trusted_proxies`, CIDRs such
    /// as `"10.0.0.0/8"` or single addresses; default none). Only a request whose direct
    /// peer is in one of them has its client taken from `X-Forwarded-For` (the right-most
    /// address not itself trusted); from anyone else the header is ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Parses a CIDR block (`198.18.0.0/15`, `fd00::/8`) or a single address (a /32 or /128).
pub fn network(value: &str) -> Result<ipnet::IpNet, String> {
    let value = value.trim();
    value
        .parse::<ipnet::IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| {
            format!("expected a CIDR block like \"10.0.0.0/8\" or an address, got {value:?}")
        })
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
        let header_ms = self.get(
            &mut section,
            "header_read_timeout_ms",
            Some("TROUPE_HTTP_HEADER_READ_TIMEOUT_MS"),
            &between(100u64, 600_000),
        );
        let body_ms = self.get(
            &mut section,
            "body_timeout_ms",
            Some("TROUPE_HTTP_BODY_TIMEOUT_MS"),
            &between(100u64, 600_000),
        );
        let max_connections = self.get(
            &mut section,
            "max_connections",
            Some("TROUPE_HTTP_MAX_CONNECTIONS"),
            &between(1usize, 1_000_000),
        );
        let trusted = self.list(
            &mut section,
            "trusted_proxies",
            Some("TROUPE_HTTP_TRUSTED_PROXIES"),
            &|v: &String| network(v).map(|_| ()),
        );
        self.finish(section);
        Http {
            max_body_bytes: max_body_bytes.unwrap_or(1024 * 1024),
            request_timeout: Duration::from_millis(timeout_ms.unwrap_or(5000)),
            cors_origins: cors_origins.unwrap_or_default(),
            header_read_timeout: Duration::from_millis(header_ms.unwrap_or(10_000)),
            body_timeout: Duration::from_millis(body_ms.unwrap_or(10_000)),
            max_connections: max_connections.unwrap_or(50_000),
            trusted_proxies: trusted
                .unwrap_or_default()
                .iter()
                .filter_map(|v| network(v).ok())
                .collect(),
        }
    }
}
