//! Names of the request metrics every protocol records, labelled by `protocol`.

/// Requests by protocol, route, method and status.
pub const REQUESTS: &str = "troupe_requests_total";
/// Request latency by protocol, route and method.
pub const REQUEST_SECONDS: &str = "troupe_request_duration_seconds";

/// Describes the request metrics once.
pub fn describe() {
    metrics::describe_counter!(REQUESTS, "requests by protocol, route, method and status");
    metrics::describe_histogram!(
        REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "request latency by protocol, route and method"
    );
}
