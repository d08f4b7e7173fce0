//! Admin routes of the event bus: the dead-letter queue (`GET /admin/dead-letters`,
//! `GET|DELETE /admin/dead-letters/:id`, `POST /admin/dead-letters/:id/replay`) and the
//! benchmark publisher (`POST /admin/events/bench`).
//!
//! Every node keeps its own outbox, so the list gathers every routable node's dead
//! letters and an id is looked up on each node in turn.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::events::admin::{self as ev, ops};
use troupe_actors::mesh::{Call, Code, MeshError, Target};
use troupe_actors::notifications::{self as n, messages as nm};

use super::auth::Admin;
use super::health::futures_join_all;
use super::json::Json as Body;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

fn letter_json(d: &ev::DeadLetter) -> Value {
    json!({
        "id": d.id,
        "node": d.node,
        "sink": d.sink,
        "event": serde_json::from_str::<Value>(&d.event_json).unwrap_or(Value::Null),
        "attempts": d.attempts,
        "last_error": d.last_error,
        "failed_at": d.failed_at,
    })
}

/// `GET /admin/dead-letters`: every routable node's dead letters, oldest failure first.
pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
) -> Result<Json<Value>, ApiError> {
    let asks = state
        .mesh
        .router()
        .members()
        .to_vec()
        .into_iter()
        .map(|node| {
            let state = state.clone();
            let call = Call::new(ev::NAME, ops::DEAD_LIST)
                .to(Target::Node(node))
                .request_id(rid.clone());
            async move { ask::<ev::DeadLetterList>(&state, call).await }
        });
    let mut items = Vec::new();
    for answer in futures_join_all(asks).await {
        items.extend(answer?.items);
    }
    items.sort_by(|a, b| (&a.failed_at, &a.id).cmp(&(&b.failed_at, &b.id)));
    let items: Vec<Value> = items.iter().map(letter_json).collect();
    Ok(Json(json!({ "total": items.len(), "items": items })))
}

/// Runs a dead-letter op on the node that holds `id` (this node first).
async fn on_holder(
    state: &AppState,
    rid: &str,
    op: &'static str,
    id: String,
) -> Result<ev::DeadLetter, ApiError> {
    if id.is_empty() || id.len() > 200 {
        return Err(MeshError::not_found("no such dead letter").into());
    }
    let router = state.mesh.router();
    let me = router.node().to_string();
    let mut nodes = vec![me.clone()];
    nodes.extend(router.members().iter().filter(|m| **m != me).cloned());
    for node in nodes {
        let call = Call::new(ev::NAME, op)
            .to(Target::Node(node))
            .request_id(rid.to_string())
            .payload(&ev::DeadLetterId { id: id.clone() });
        match ask::<ev::DeadLetter>(state, call).await {
            Ok(d) => return Ok(d),
            Err(e) if e.0.code == Code::NotFound && e.0.message == "no such dead letter" => {}
            Err(e) => return Err(e),
        }
    }
    Err(MeshError::not_found("no such dead letter").into())
}

/// `GET /admin/dead-letters/:id`: one dead letter.
pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(letter_json(
        &on_holder(&state, &rid, ops::DEAD_GET, id).await?,
    )))
}

/// `POST /admin/dead-letters/:id/replay`: back into its node's outbox, attempts reset.
pub async fn replay(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = on_holder(&state, &rid, ops::DEAD_REPLAY, id).await?;
    Ok(Json(
        json!({ "replayed": true, "dead_letter": letter_json(&d) }),
    ))
}

/// `DELETE /admin/dead-letters/:id`: drops it for good.
pub async fn drop(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = on_holder(&state, &rid, ops::DEAD_DROP, id).await?;
    Ok(Json(
        json!({ "deleted": true, "dead_letter": letter_json(&d) }),
    ))
}

/// Body of `POST /admin/events/bench`.
#[derive(Debug, Deserialize)]
pub struct BenchBody {
    /// Events to publish from this node.
    pub count: u32,
    /// Events per second; unpaced when absent.
    pub rate: Option<u32>,
    /// Publishes in flight at once (default 64).
    pub concurrency: Option<u32>,
    /// Run id (default: a new one); the same id on several nodes pools their results.
    pub run: Option<String>,
    /// Wait up to this many ms for every event's notification log row and report the
    /// publish-to-row latency (default: don't wait).
    pub wait_ms: Option<u64>,
}

/// `POST /admin/events/bench` (admin): publishes `count` benchmark events on this node
/// through the outbox, reports publish latency, and optionally the publish-to-log-row
/// latency of the run.
pub async fn bench(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Body(b): Body<BenchBody>,
) -> Result<Json<Value>, ApiError> {
    let run = b
        .run
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let req = ev::BenchRequest {
        count: b.count,
        rate: b.rate.unwrap_or(0),
        run: run.clone(),
        concurrency: b.concurrency.unwrap_or(0),
    };
    let node = state.mesh.router().node().to_string();
    let r: ev::BenchReply = ask(
        &state,
        Call::new(ev::NAME, ops::BENCH)
            .to(Target::Node(node.clone()))
            .request_id(rid.clone())
            .payload(&req)
            .timeout(Duration::from_secs(3600)),
    )
    .await?;
    let secs = r.elapsed_us as f64 / 1e6;
    let mut out = json!({
        "node": node,
        "run": run,
        "published": r.published,
        "failed": r.failed,
        "elapsed_s": secs,
        "events_per_s": if secs > 0.0 { f64::from(r.published) / secs } else { 0.0 },
        "publish_latency_us": { "p50": r.p50_us, "p99": r.p99_us, "max": r.max_us },
        "outbox_depth": r.outbox_depth,
    });
    if let Some(wait) = b.wait_ms.filter(|w| *w > 0) {
        let deadline = std::time::Instant::now() + Duration::from_millis(wait.min(600_000));
        loop {
            let stats: nm::BenchStats = ask(
                &state,
                Call::new(n::NAME, n::ops::BENCH_STATS)
                    .request_id(rid.clone())
                    .payload(&nm::BenchStatsRequest { run: run.clone() }),
            )
            .await?;
            let done = stats.count >= u64::from(r.published);
            if done || std::time::Instant::now() >= deadline {
                out["log_rows"] = json!(stats.count);
                out["publish_to_row_ms"] =
                    json!({ "p50": stats.p50_ms, "p99": stats.p99_ms, "max": stats.max_ms });
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(Json(out))
}

/// `GET /admin/events/bench/:run` (admin): publish-to-log-row latency of a run, pooled
/// over every node that published for it.
pub async fn bench_stats(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Path(run): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let stats: nm::BenchStats = ask(
        &state,
        Call::new(n::NAME, n::ops::BENCH_STATS)
            .request_id(rid)
            .payload(&nm::BenchStatsRequest { run: run.clone() }),
    )
    .await?;
    Ok(Json(json!({
        "run": run,
        "log_rows": stats.count,
        "publish_to_row_ms": { "p50": stats.p50_ms, "p99": stats.p99_ms, "max": stats.max_ms },
    })))
}
