//! Admin routes of the event bus: the dead-letter queue (`GET /admin/dead-letters`,
//! `GET|DELETE /admin/dead-letters/:id`, `POST /admin/dead-letters/:id/replay`) and the
//! benchmark publisher (`POST /admin/events/bench`).
//!
//! Dead letters are in the store every node shares (the transactional outbox), so this
//! node answers for the whole cluster.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use troupe_actors::events::admin::{self as ev, ops};
use troupe_actors::mesh::{MeshError, Op, Target};
use troupe_actors::notifications::{self as n, messages as nm};
use utoipa::ToSchema;

use super::auth::Admin;
use super::identity::List;
use super::json::Json as Body;
use super::openapi::ErrorBody;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// A dead letter: an event that a sink refused every time, kept in its node's outbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterView {
    /// `<event id>.<sink>`.
    pub id: String,
    /// The node whose outbox holds it.
    pub node: String,
    /// The sink it was for.
    pub sink: String,
    /// The event, as JSON (`null` if its stored text is not JSON).
    #[schema(value_type = Value)]
    pub event: Value,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure.
    pub last_error: String,
    /// When the last attempt failed, RFC 3339.
    pub failed_at: String,
}

impl From<ev::DeadLetter> for DeadLetterView {
    fn from(d: ev::DeadLetter) -> Self {
        Self {
            event: serde_json::from_str::<Value>(&d.event_json).unwrap_or(Value::Null),
            id: d.id,
            node: d.node,
            sink: d.sink,
            attempts: d.attempts,
            last_error: d.last_error,
            failed_at: d.failed_at,
        }
    }
}

/// Answer of `POST /admin/dead-letters/{id}/replay`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayedDeadLetter {
    /// Always `true`.
    pub replayed: bool,
    /// The dead letter as it was before the replay.
    pub dead_letter: DeadLetterView,
}

/// Answer of `DELETE /admin/dead-letters/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedDeadLetter {
    /// Always `true`.
    pub deleted: bool,
    /// The dead letter as it was.
    pub dead_letter: DeadLetterView,
}

/// `GET /admin/dead-letters`: the cluster's dead letters (quarantined outbox rows too,
/// sink `quarantine`), oldest failure first, at most 1000.
#[utoipa::path(
    get,
    path = "/admin/dead-letters",
    tag = "admin",
    security(("admin" = [])),
    responses((status = 200, description = "The cluster's dead letters, oldest failure first (at most 1000)", body = List<DeadLetterView>))
)]
pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
) -> Result<Json<List<DeadLetterView>>, ApiError> {
    let call = ops::DEAD_LIST
        .call(())
        .to(Target::Node(state.mesh.router().node().to_string()))
        .request_id(rid);
    let items: Vec<DeadLetterView> = ask::<ev::DeadLetterList>(&state, call)
        .await?
        .items
        .into_iter()
        .map(DeadLetterView::from)
        .collect();
    Ok(Json(items.into()))
}

/// Runs a dead-letter op on this node.
async fn on_holder(
    state: &AppState,
    rid: &str,
    op: &Op<ev::DeadLetterId, ev::DeadLetter>,
    id: String,
) -> Result<ev::DeadLetter, ApiError> {
    if id.is_empty() || id.len() > 200 {
        return Err(MeshError::not_found("no such dead letter").into());
    }
    let call = op
        .call(ev::DeadLetterId { id })
        .to(Target::Node(state.mesh.router().node().to_string()))
        .request_id(rid.to_string());
    ask::<ev::DeadLetter>(state, call).await
}

/// `GET /admin/dead-letters/:id`: one dead letter.
#[utoipa::path(
    get,
    path = "/admin/dead-letters/{id}",
    tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The dead letter's id, `<event id>.<sink>`")),
    responses(
        (status = 200, description = "The dead letter", body = DeadLetterView),
        (status = 404, description = "No such dead letter", body = ErrorBody),
    )
)]
pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Path(id): Path<String>,
) -> Result<Json<DeadLetterView>, ApiError> {
    Ok(Json(
        on_holder(&state, &rid, &ops::DEAD_GET, id).await?.into(),
    ))
}

/// `POST /admin/dead-letters/:id/replay`: back into its node's outbox, attempts reset.
#[utoipa::path(
    post,
    path = "/admin/dead-letters/{id}/replay",
    tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The dead letter's id, `<event id>.<sink>`")),
    responses(
        (status = 200, description = "Back in the outbox, for its sink only", body = ReplayedDeadLetter),
        (status = 404, description = "No such dead letter", body = ErrorBody),
        (status = 409, description = "Its sink is not configured on the node that holds it", body = ErrorBody),
    )
)]
pub async fn replay(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Path(id): Path<String>,
) -> Result<Json<ReplayedDeadLetter>, ApiError> {
    let d = on_holder(&state, &rid, &ops::DEAD_REPLAY, id).await?;
    Ok(Json(ReplayedDeadLetter {
        replayed: true,
        dead_letter: d.into(),
    }))
}

/// `DELETE /admin/dead-letters/:id`: drops it for good.
#[utoipa::path(
    delete,
    path = "/admin/dead-letters/{id}",
    tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The dead letter's id, `<event id>.<sink>`")),
    responses(
        (status = 200, description = "Dropped for good", body = DeletedDeadLetter),
        (status = 404, description = "No such dead letter", body = ErrorBody),
    )
)]
pub async fn drop(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Path(id): Path<String>,
) -> Result<Json<DeletedDeadLetter>, ApiError> {
    let d = on_holder(&state, &rid, &ops::DEAD_DROP, id).await?;
    Ok(Json(DeletedDeadLetter {
        deleted: true,
        dead_letter: d.into(),
    }))
}

/// Body of `POST /admin/events/bench`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = EventsBenchBody)]
pub struct BenchBody {
    /// Events to publish from this node, 1 to 1000000.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub count: u32,
    /// Events per second, at most 1000000; unpaced when absent or 0.
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub rate: Option<u32>,
    /// Publishes in flight at once, at most 4096 (default 64, also when 0).
    #[schema(minimum = 0, maximum = 4096)]
    pub concurrency: Option<u32>,
    /// Run id, 1 to 64 letters, digits, `-` or `_` (default: a new one); the same id on
    /// several nodes pools their results.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub run: Option<String>,
    /// Wait up to this many ms, at most 600000, for every event's notification log row
    /// and report the publish-to-row latency (default, or 0: don't wait).
    #[schema(minimum = 0, maximum = 600_000)]
    pub wait_ms: Option<u64>,
}

/// Answer of `POST /admin/events/bench`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsBenchReport {
    /// The node that published.
    pub node: String,
    /// The run id.
    pub run: String,
    /// Events published (acknowledged durable).
    pub published: u32,
    /// Failed publishes.
    pub failed: u32,
    /// Wall time of the burst, seconds.
    pub elapsed_s: f64,
    /// Events published per second (0 when no time elapsed).
    pub events_per_s: f64,
    /// Publish latency, microseconds.
    pub publish_latency_us: PublishLatency,
    /// Outbox depth when the burst ended.
    pub outbox_depth: i64,
    /// Notification log rows of the run when the wait ended; only with `wait_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64)]
    pub log_rows: Option<u64>,
    /// Publish-to-log-row latency of the run, ms; only with `wait_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = RowLatency)]
    pub publish_to_row_ms: Option<RowLatency>,
}

/// Publish latency percentiles of a benchmark burst, microseconds.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EventsBenchPublishLatency)]
pub struct PublishLatency {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Maximum.
    pub max: u64,
}

/// Publish-to-log-row latency percentiles of a benchmark run, milliseconds.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EventsBenchRowLatency)]
pub struct RowLatency {
    /// Median.
    pub p50: i64,
    /// 99th percentile.
    pub p99: i64,
    /// Maximum.
    pub max: i64,
}

impl From<&nm::BenchStats> for RowLatency {
    fn from(s: &nm::BenchStats) -> Self {
        Self {
            p50: s.p50_ms,
            p99: s.p99_ms,
            max: s.max_ms,
        }
    }
}

/// Answer of `GET /admin/events/bench/{run}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsBenchStats {
    /// The run id.
    pub run: String,
    /// Notification log rows of the run.
    pub log_rows: u64,
    /// Publish-to-log-row latency, ms.
    pub publish_to_row_ms: RowLatency,
}

/// `POST /admin/events/bench` (admin): publishes `count` benchmark events on this node
/// through the outbox, reports publish latency, and optionally the publish-to-log-row
/// latency of the run.
#[utoipa::path(
    post,
    path = "/admin/events/bench",
    tag = "admin",
    security(("admin" = [])),
    request_body = BenchBody,
    responses(
        (status = 200, description = "What the burst did", body = EventsBenchReport),
        (status = 400, description = "`count` missing or out of range, or a malformed body", body = ErrorBody),
    )
)]
pub async fn bench(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Body(b): Body<BenchBody>,
) -> Result<Json<EventsBenchReport>, ApiError> {
    let valid_run = |r: &str| {
        (1..=64).contains(&r.len())
            && r.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    };
    if b.run.as_deref().is_some_and(|r| !valid_run(r)) {
        return Err(
            MeshError::invalid("run must be 1-64 characters of A-Z, a-z, 0-9, '-', '_'").into(),
        );
    }
    let bounds = [
        ("rate", b.rate.map(u64::from), 1_000_000),
        ("concurrency", b.concurrency.map(u64::from), 4096),
        ("wait_ms", b.wait_ms, 600_000),
    ];
    for (name, v, max) in bounds {
        if v.is_some_and(|v| v > max) {
            return Err(MeshError::invalid(format!("{name} must be at most {max}")).into());
        }
    }
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
        ops::BENCH
            .call(req)
            .to(Target::Node(node.clone()))
            .request_id(rid.clone())
            .timeout(Duration::from_secs(3600)),
    )
    .await?;
    let secs = r.elapsed_us as f64 / 1e6;
    let mut rows: Option<nm::BenchStats> = None;
    if let Some(wait) = b.wait_ms.filter(|w| *w > 0) {
        let deadline = std::time::Instant::now() + Duration::from_millis(wait.min(600_000));
        loop {
            let stats: nm::BenchStats = ask(
                &state,
                n::ops::BENCH_STATS
                    .call(nm::BenchStatsRequest { run: run.clone() })
                    .request_id(rid.clone()),
            )
            .await?;
            let done = stats.count >= u64::from(r.published);
            if done || std::time::Instant::now() >= deadline {
                rows = Some(stats);
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(Json(EventsBenchReport {
        node,
        run,
        published: r.published,
        failed: r.failed,
        elapsed_s: secs,
        events_per_s: if secs > 0.0 {
            f64::from(r.published) / secs
        } else {
            0.0
        },
        publish_latency_us: PublishLatency {
            p50: r.p50_us,
            p99: r.p99_us,
            max: r.max_us,
        },
        outbox_depth: r.outbox_depth,
        log_rows: rows.as_ref().map(|s| s.count),
        publish_to_row_ms: rows.as_ref().map(RowLatency::from),
    }))
}

/// `GET /admin/events/bench/:run` (admin): publish-to-log-row latency of a run, pooled
/// over every node that published for it.
#[utoipa::path(
    get,
    path = "/admin/events/bench/{run}",
    tag = "admin",
    security(("admin" = [])),
    params(("run" = String, Path, description = "The run id: 1 to 64 letters, digits, `-` or `_`", pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    responses((status = 200, description = "The run's notification log rows and their latency", body = EventsBenchStats))
)]
pub async fn bench_stats(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Path(run): Path<String>,
) -> Result<Json<EventsBenchStats>, ApiError> {
    let stats: nm::BenchStats = ask(
        &state,
        n::ops::BENCH_STATS
            .call(nm::BenchStatsRequest { run: run.clone() })
            .request_id(rid),
    )
    .await?;
    Ok(Json(EventsBenchStats {
        log_rows: stats.count,
        publish_to_row_ms: RowLatency::from(&stats),
        run,
    }))
}
