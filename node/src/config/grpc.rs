//! `[grpc]`: limits of the gRPC listener (a deadline per call, calls at once per
//! connection, HTTP/2 streams per connection, connections at once).

use std::time::Duration;

use super::reader::{between, Reader, Section};

/// `[grpc]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grpc {
    /// Longest one call may run before it is answered `CANCELLED`/`DEADLINE_EXCEEDED`
    /// (`timeout_ms`, default 30 s; a shorter `grpc-timeout` from the client wins).
    pub timeout: Duration,
    /// Calls served at once on one connection; more wait (`concurrency_per_connection`,
    /// default 64).
    pub concurrency_per_connection: usize,
    /// HTTP/2 streams a client may open at once on one connection
    /// (`max_concurrent_streams`, default 128).
    pub max_concurrent_streams: u32,
    /// gRPC connections served at once; more are closed when accepted
    /// (`max_connections`, default 10,000).
    pub max_connections: usize,
}

impl Reader<'_> {
    /// Reads `[grpc]`.
    pub(super) fn grpc(&mut self, root: &mut Section<'_>) -> Grpc {
        let mut section = self.section(root, "grpc");
        let timeout_ms = self.get(
            &mut section,
            "timeout_ms",
            Some("TROUPE_GRPC_TIMEOUT_MS"),
            &between(100u64, 3_600_000),
        );
        let concurrency = self.get(
            &mut section,
            "concurrency_per_connection",
            Some("TROUPE_GRPC_CONCURRENCY_PER_CONNECTION"),
            &between(1usize, 100_000),
        );
        let streams = self.get(
            &mut section,
            "max_concurrent_streams",
            Some("TROUPE_GRPC_MAX_CONCURRENT_STREAMS"),
            &between(1u32, 100_000),
        );
        let max_connections = self.get(
            &mut section,
            "max_connections",
            Some("TROUPE_GRPC_MAX_CONNECTIONS"),
            &between(1usize, 1_000_000),
        );
        self.finish(section);
        Grpc {
            timeout: Duration::from_millis(timeout_ms.unwrap_or(30_000)),
            concurrency_per_connection: concurrency.unwrap_or(64),
            max_concurrent_streams: streams.unwrap_or(128),
            max_connections: max_connections.unwrap_or(10_000),
        }
    }
}
