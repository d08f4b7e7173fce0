//! `GET /metrics` (Prometheus text).

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use super::AppState;

pub use crate::ingress::metrics::{describe, REQUESTS, REQUEST_SECONDS};

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
