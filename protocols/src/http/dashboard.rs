//! `GET /dashboard`: a live page of the cluster, public like `/cluster` and
//! `/health/cluster`. It polls one URL, `GET /dashboard/state`, every two seconds: the
//! cluster view and health (what `/cluster` and `/health/cluster` answer), each node's
//! history since the last poll (requests/s by protocol, p50/p99 latency, mesh calls/s and
//! RTT per pair of nodes, restarts, WebSocket connections, outbox depth;
//! `troupe_actors::system::history`) and the placement (the entities and tasks each node
//! hosts, and for each node where they would move if it died). It draws charts (inline
//! SVG), the cluster as a picture and the placement. Given the admin token (kept in the
//! browser tab), it also lists the worker actors (`/admin/actors`) and the open connections
//! (`/connections`) every ten seconds, and kills workers (`POST /admin/chaos/kill`). Each
//! node's dependencies (store, MQTT broker, SMTP server: status, last check's latency, last
//! error) come with its health.
//! The page is one static file with no outside assets: it reads the same JSON any client
//! can, so it shows nothing a client could not ask for itself.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY};
use axum::response::{Html, IntoResponse};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::mesh::placement::home;
use troupe_actors::mesh::{MemberState, Target};
use troupe_actors::system;
use troupe_proto::mesh::{History, HistoryRequest, Placement};
use utoipa::IntoParams;

use super::error::ApiError;
use super::health::futures_join_all;
use super::request_id::Rid;
use super::{ask, AppState};

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

/// Query of `GET /dashboard/state`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StateQuery {
    /// History samples taken after this time (ms since the Unix epoch); the whole ring
    /// (five minutes) when absent.
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub since: Option<u64>,
}

/// `GET /dashboard/state`: everything the dashboard draws, in one answer.
#[utoipa::path(
    get,
    path = "/dashboard/state",
    tag = "runtime",
    params(StateQuery),
    responses((status = 200, description = "`{\"node\", \"now_ms\", \"cluster\", \"health\",         \"history\", \"placement\", \"if_down\"}`. `cluster`, `health`: what `GET /cluster` and \
        `GET /health/cluster` answer. `history`: by node, `{\"incarnation\", \"peers\", \"samples\"}`, \
        one sample a second after `since` (at most five minutes): `{\"at_unix_ms\", \"rest\", \
        \"soap\", \"grpc\", \"ws\", \"p50_us\", \"p99_us\", \"restarts\", \"ws_open\", \
        \"outbox\", \"peer_calls\", \"peer_rtt_us\"}`, the last two indexed like `peers` (calls \
        served for that peer in the second, heartbeat RTT to it). `placement`: by node and \
        kind (`session`, `task`, ...), `{\"total\", \"ids\"}`. `if_down`: by node, the entities \
        it hosts as `{\"kind\", \"id\", \"to\"}`, `to` being their home among the other \
        placement members (rendezvous hashing), `null` when none is left", body = Object))
)]
pub async fn state(
    State(state): State<AppState>,
    Rid(rid): Rid,
    Query(q): Query<StateQuery>,
) -> Result<Json<Value>, ApiError> {
    let since = q.since.unwrap_or(0);
    if i64::try_from(since).is_err() {
        let mut f = troupe_actors::common::validate::Fields::new();
        f.check("since", Err(format!("must be at most {}", i64::MAX)));
        return Err(ApiError(f.finish().expect_err("a field is bad")));
    }
    let view = state.mesh.view();
    let live: Vec<String> = view
        .members
        .iter()
        .filter(|m| m.state != MemberState::Down)
        .map(|m| m.name.to_string())
        .collect();
    let asks = live.iter().map(|name| {
        let state = state.clone();
        let (name, rid) = (name.clone(), rid.clone());
        async move {
            let history = on_node(
                system::HISTORY.call(HistoryRequest {
                    since_unix_ms: since,
                }),
                &name,
                &rid,
            );
            let placement = on_node(system::PLACEMENT.call(()), &name, &rid);
            let (history, placement) = tokio::join!(
                ask::<History>(&state, history),
                ask::<Placement>(&state, placement)
            );
            (name, history.ok(), placement.ok())
        }
    });
    let (answers, cluster, health) = tokio::join!(
        futures_join_all(asks),
        super::cluster::view(State(state.clone())),
        super::health::cluster(State(state.clone()), Rid(rid.clone())),
    );
    let mut history = serde_json::Map::new();
    let mut placement = serde_json::Map::new();
    let mut hosted: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (name, h, p) in answers {
        if let Some(h) = h {
            history.insert(name.clone(), history_json(h));
        }
        if let Some(p) = p {
            let mut kinds = serde_json::Map::new();
            for k in p.kinds {
                let entry = hosted.entry(name.clone()).or_default();
                entry.extend(k.ids.iter().map(|id| (k.kind.clone(), id.clone())));
                kinds.insert(k.kind, json!({ "total": k.total, "ids": k.ids }));
            }
            placement.insert(name, Value::Object(kinds));
        }
    }
    // What would move where if a node died: its entities' homes among the others.
    let members = state.mesh.router().placement();
    let if_down: serde_json::Map<String, Value> = hosted
        .into_iter()
        .map(|(node, ids)| {
            let rest: Vec<&String> = members.iter().filter(|m| **m != node).collect();
            let moves: Vec<Value> = ids
                .into_iter()
                .map(|(kind, id)| json!({ "kind": kind, "id": id, "to": home(&id, &rest) }))
                .collect();
            (node, Value::Array(moves))
        })
        .collect();
    Ok(Json(json!({
        "node": state.mesh.info().node,
        "now_ms": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64,
        "cluster": cluster.0,
        "health": (health.1).0,
        "history": history,
        "placement": placement,
        "if_down": if_down,
    })))
}

fn history_json(h: History) -> Value {
    let samples: Vec<Value> = h
        .samples
        .into_iter()
        .map(|s| {
            json!({
                "at_unix_ms": s.at_unix_ms, "rest": s.rest, "soap": s.soap, "grpc": s.grpc,
                "ws": s.ws, "p50_us": s.p50_us, "p99_us": s.p99_us, "restarts": s.restarts,
                "ws_open": s.ws_open, "outbox": s.outbox, "peer_calls": s.peer_calls,
                "peer_rtt_us": s.peer_rtt_us,
            })
        })
        .collect();
    json!({ "incarnation": h.incarnation, "peers": h.peers, "samples": samples })
}

/// `call` sent to node `name` with a short deadline: one slow node must not hold up the page.
fn on_node<R>(
    call: troupe_actors::mesh::Call<R>,
    name: &str,
    rid: &str,
) -> troupe_actors::mesh::Call<R> {
    call.to(Target::Node(name.to_string()))
        .request_id(rid)
        .timeout(Duration::from_secs(1))
}
