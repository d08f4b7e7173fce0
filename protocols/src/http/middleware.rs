//! Cross-cutting layers: JSON error bodies for every failure (including the router's own
//! 404/405 and the body limit's 413), and request metrics.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use troupe_actors::mesh::MeshError;

use super::error::{body, from_status};
use super::request_id::REQUEST_ID;

/// Gives every error response the JSON form of the API contract, with the request id.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let rid = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let error = match resp.extensions().get::<MeshError>() {
        Some(e) => e.clone(),
        None if is_json(&resp) => return resp,
        None => from_status(status),
    };
    let (mut parts, _) = resp.into_parts();
    parts.headers.remove(CONTENT_TYPE);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let fresh = Json(body(&error, &rid)).into_response();
    let (fresh_parts, fresh_body) = fresh.into_parts();
    for (k, v) in fresh_parts.headers.iter() {
        parts.headers.insert(k, v.clone());
    }
    Response::from_parts(parts, Body::new(fresh_body))
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Counts requests and records their latency by route, method and status.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().as_str().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!(crate::http::metrics::REQUESTS, "protocol" => "http", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(crate::http::metrics::REQUEST_SECONDS, "protocol" => "http", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    resp
}
