//! The benchmark baseline: a bare axum server that answers `GET /health` with a small JSON
//! body, nothing else. `scripts/bench.sh` runs it side by side with Troupe nodes.
//!
//! `cargo run --release --example bare_axum -- 127.0.0.1:7999`

use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7999".into());
    let app = Router::new().route(
        "/health",
        get(|| async { Json(json!({"status": "ok", "node": "bare"})) }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!("bare axum listening on {addr}");
    axum::serve(listener, app).await.expect("serve");
}
