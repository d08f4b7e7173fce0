//! `GET /dashboard`: a live page of the cluster, public like `/cluster` and
//! `/health/cluster` that it polls every two seconds: nodes with their state, incarnation,
//! uptime, HTTP request rate, WebSocket connections and live session actors, and each
//! service's workers per node, and each node's dependencies (store, MQTT broker, SMTP
//! server: status, last check's latency, last error). Given the admin token (kept in the browser tab), it also
//! lists the worker actors (`/admin/actors`) and the open connections (`/connections`).
//! The page is one static file with no outside assets: it reads the same JSON any client
//! can, so it shows nothing a client could not ask for itself.

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY};
use axum::response::{Html, IntoResponse};

/// The page.
const PAGE: &str = include_str!("dashboard.html");

/// `GET /dashboard`: the live operations page.
#[utoipa::path(
    get,
    path = "/dashboard",
    tag = "runtime",
    responses((status = 200, description = "The dashboard, one HTML page with no outside assets", content_type = "text/html; charset=utf-8", body = String))
)]
pub async fn page() -> impl IntoResponse {
    (
        [
            (CACHE_CONTROL, "no-cache"),
            // Its own inline script and style, and requests to this node only.
            (
                CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'",
            ),
        ],
        Html(PAGE),
    )
}
