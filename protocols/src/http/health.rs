//! `GET /health` (this node) and `GET /health/cluster` (every node's health, with its
//! count of live session actors, gathered through the mesh; `/dashboard` draws it). Both
//! read what the background dependency checks last found (`system::dependencies`): a
//! request never waits on the store, the broker or the SMTP server.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use troupe_actors::mesh::{Call, MemberState, Target};
use troupe_actors::sessions::{self, messages::HostCounts};
use troupe_actors::system;
use troupe_proto::mesh::{DependencyHealth, NodeHealth, ServiceHealth};
use utoipa::ToSchema;

use super::request_id::Rid;
use super::{ask, AppState};

/// A node's health.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeHealthView {
    /// `ok`, `degraded` (a service has workers down, or a dependency is down) or `down` (a
    /// service has none alive).
    pub status: String,
    /// Node name.
    pub node: String,
    /// Its incarnation.
    pub incarnation: u64,
    /// Time since the node started, ms.
    pub uptime_ms: u64,
    /// Troupe's version.
    pub version: String,
    /// HTTP requests the node has answered since it started.
    pub http_requests: u64,
    /// Open WebSocket connections on the node.
    pub ws_connections: u32,
    /// Its service groups.
    pub services: Vec<ServiceHealthView>,
    /// What it depends on: `store` always, `mqtt` and `smtp` when configured.
    pub dependencies: Vec<DependencyView>,
}

/// One dependency of one node, as its last background check found it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DependencyView {
    /// `store`, `mqtt` or `smtp`.
    pub name: String,
    /// What is checked, without secrets (`sqlite`, `postgres host:5432/db`, `host:1883`).
    pub target: String,
    /// `ok`, `down` (its last check failed) or `unknown` (not checked yet).
    pub status: String,
    /// How long the last check took, ms.
    pub latency_ms: f64,
    /// When the last check ended, Unix ms (0: not yet).
    pub checked_at_ms: u64,
    /// The error of the last failed check, secrets masked; kept after a recovery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When that check failed, Unix ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_at_ms: Option<u64>,
    /// Since when `status` holds, Unix ms.
    pub since_ms: u64,
}

impl From<DependencyHealth> for DependencyView {
    fn from(d: DependencyHealth) -> Self {
        let failed = !d.last_error.is_empty();
        Self {
            name: d.name,
            target: d.target,
            status: d.status,
            latency_ms: d.latency_ms,
            checked_at_ms: d.checked_at_ms,
            last_error: failed.then_some(d.last_error),
            last_error_at_ms: failed.then_some(d.last_error_at_ms),
            since_ms: d.since_ms,
        }
    }
}

/// One service group on one node.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceHealthView {
    /// Service name.
    pub name: String,
    /// `ok`, `degraded` (some workers down) or `down` (none alive).
    pub status: String,
    /// Workers alive.
    pub workers_alive: u32,
    /// Workers in all.
    pub workers_total: u32,
    /// Calls being handled.
    pub in_flight: u32,
    /// Worker restarts since the node started.
    pub restarts: u64,
}

impl From<NodeHealth> for NodeHealthView {
    fn from(h: NodeHealth) -> Self {
        Self {
            status: h.status,
            node: h.node,
            incarnation: h.incarnation,
            uptime_ms: h.uptime_ms,
            version: h.version,
            http_requests: h.http_requests,
            ws_connections: h.ws_connections,
            services: h
                .services
                .into_iter()
                .map(ServiceHealthView::from)
                .collect(),
            dependencies: h
                .dependencies
                .into_iter()
                .map(DependencyView::from)
                .collect(),
        }
    }
}

impl From<ServiceHealth> for ServiceHealthView {
    fn from(s: ServiceHealth) -> Self {
        Self {
            name: s.name,
            status: s.status,
            workers_alive: s.workers_alive,
            workers_total: s.workers_total,
            in_flight: s.in_flight,
            restarts: s.restarts,
        }
    }
}

/// This node: status, name, incarnation, uptime, version, services, dependencies.
#[utoipa::path(
    get,
    path = "/health",
    tag = "runtime",
    responses(
        (status = 200, description = "The node is `ok` or `degraded` (workers restarting, or a dependency down: it still serves)", body = NodeHealthView),
        (status = 503, description = "The node is `down`: a service has no worker alive", body = NodeHealthView),
    )
)]
pub async fn node(State(state): State<AppState>) -> (StatusCode, Json<NodeHealthView>) {
    let h = system::health::report(state.mesh.info());
    let code = if h.status == "down" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(h.into()))
}

fn node_json(h: NodeHealth) -> Value {
    serde_json::to_value(NodeHealthView::from(h)).expect("a health report always serializes")
}

/// Every member's health, asked through the mesh in parallel; a member that does not
/// answer within a second counts as down.
#[utoipa::path(
    get,
    path = "/health/cluster",
    tag = "runtime",
    responses(
        (status = 200, description = "The cluster is `ok` or `degraded`: `{\"status\", \"nodes\", \
            \"services\"}`. `status`: `ok` when every member answered `ok`, `down` when no member \
            is up, `degraded` otherwise. `nodes`: each member's health as `GET /health` gives it, \
            plus `live_sessions` (its running session actors) when known; a member that did not \
            answer, or is declared dead, as `{\"node\", \"status\": \"down\", \"error\"}`. \
            `services`: by service name, `{\"status\", \"nodes_up\", \"nodes\"}`: the members that \
            answered and host it, those where it is not `down`, and `ok`, `degraded` or `down` \
            accordingly. `dependencies`: by dependency name, `{\"status\", \"nodes_up\", \"nodes\"}`: \
            the members that answered and check it, those where it is not `down`, and `ok`, \
            `degraded` or `down` accordingly", body = Object),
        (status = 503, description = "No member is up; the same body, with `status` `down`", body = Object),
    )
)]
pub async fn cluster(State(state): State<AppState>, Rid(rid): Rid) -> (StatusCode, Json<Value>) {
    let view = state.mesh.view();
    let asks = view
        .members
        .iter()
        .filter(|m| m.state != MemberState::Down)
        .map(|m| {
            let state = state.clone();
            let name = m.name.clone();
            let health = on_node(system::HEALTH.call(()), &name, &rid);
            let sessions = on_node(sessions::ops::STATS.call(()), &name, &rid);
            async move {
                let (health, sessions) = tokio::join!(
                    ask::<NodeHealth>(&state, health),
                    ask::<HostCounts>(&state, sessions)
                );
                (name, health, sessions.ok())
            }
        });
    let answers = futures_join_all(asks).await;
    let mut nodes = Vec::new();
    let mut services: std::collections::BTreeMap<String, (u32, u32)> = Default::default();
    let mut dependencies: std::collections::BTreeMap<String, (u32, u32)> = Default::default();
    let mut all_ok = true;
    for (name, answer, sessions) in answers {
        match answer {
            Ok(h) => {
                all_ok &= h.status == "ok";
                for s in &h.services {
                    let e = services.entry(s.name.clone()).or_default();
                    e.1 += 1;
                    if s.status != "down" {
                        e.0 += 1;
                    }
                }
                for d in &h.dependencies {
                    let e = dependencies.entry(d.name.clone()).or_default();
                    e.1 += 1;
                    if d.status != "down" {
                        e.0 += 1;
                    }
                }
                let mut node = node_json(h);
                if let Some(s) = sessions {
                    node["live_sessions"] = s.active.into();
                }
                nodes.push(node);
            }
            Err(e) => {
                all_ok = false;
                nodes.push(json!({ "node": name, "status": "down", "error": e.0.message }));
            }
        }
    }
    for m in view.members.iter().filter(|m| m.state == MemberState::Down) {
        nodes.push(json!({ "node": m.name, "status": "down", "error": "declared dead" }));
    }
    let any_up = nodes.iter().any(|n| n["status"] != "down");
    let status = if all_ok && nodes.iter().all(|n| n["status"] == "ok") {
        "ok"
    } else if any_up {
        "degraded"
    } else {
        "down"
    };
    let services = summary(services);
    let dependencies = summary(dependencies);
    let code = if status == "down" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        code,
        Json(json!({
            "status": status,
            "nodes": nodes,
            "services": services,
            "dependencies": dependencies,
        })),
    )
}

/// `{name: {"status", "nodes_up", "nodes"}}` of counts `(up, total)` by name: `ok` when up
/// on every node that has it, `down` on none, `degraded` otherwise.
fn summary(
    counts: std::collections::BTreeMap<String, (u32, u32)>,
) -> serde_json::Map<String, Value> {
    counts
        .into_iter()
        .map(|(name, (up, total))| {
            let s = if up == total {
                "ok"
            } else if up > 0 {
                "degraded"
            } else {
                "down"
            };
            (name, json!({ "status": s, "nodes_up": up, "nodes": total }))
        })
        .collect()
}

/// Awaits every future concurrently (small fan-outs only); a panicked one is left out.
pub async fn futures_join_all<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

/// `call` sent to node `name`, with a short deadline: one node's answer must not hold up
/// the cluster view.
fn on_node<R>(call: Call<R>, name: &str, rid: &str) -> Call<R> {
    call.to(Target::Node(name.to_string()))
        .request_id(rid)
        .timeout(Duration::from_secs(1))
}
