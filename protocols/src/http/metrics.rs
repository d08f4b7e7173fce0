//! `GET /metrics` (Prometheus text) and the names of the HTTP metrics.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use super::AppState;

/// Requests by protocol, route, method and status.
pub const REQUESTS: &str = "troupe_requests_total";
/// Request latency by protocol, route and method.
pub const REQUEST_SECONDS: &str = "troupe_request_duration_seconds";

/// Describes the HTTP metrics once.
pub fn describe() {
    metrics::describe_counter!(REQUESTS, "requests by protocol, route, method and status");
    metrics::describe_histogram!(
        REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "request latency by protocol, route and method"
    );
}

/// Renders every metric of this node.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "runtime",
    responses((status = 200, description = "Every metric of this node, in the Prometheus text format", content_type = "text/plain; version=0.0.4", body = String))
)]
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.prometheus.render(),
    )
}
