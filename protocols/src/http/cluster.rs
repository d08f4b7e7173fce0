//! `GET /cluster`: members as this node sees them, and the service groups it routes to.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;

/// `GET /cluster`: this node's view of the members and the service groups.
#[utoipa::path(
    get,
    path = "/cluster",
    tag = "runtime",
    responses((status = 200, description = "`{\"node\", \"incarnation\", \"members\", \"groups\"}`. \
        `node`, `incarnation`: this node's. `members`: every known member (newest incarnation \
        per name, this node included, sorted by name) as `{\"name\", \"incarnation\", \
        \"state\", \"cluster_addr\", \"http_addr\", \"grpc_addr\", \"services\", \"rtt_ms\"}`, \
        `state` being `up`, `suspect`, `leaving` or `down` and `rtt_ms` the last mesh heartbeat \
        round trip (`null` when none). `groups`: by service group (`svc.<name>`), \
        `{\"size\", \"nodes\"}`, the routable members that host it", body = Object))
)]
pub async fn view(State(state): State<AppState>) -> Json<Value> {
    let info = state.mesh.info();
    let groups: serde_json::Map<String, Value> = state
        .mesh
        .groups()
        .into_iter()
        .map(|(group, nodes)| (group, json!({ "size": nodes.len(), "nodes": nodes })))
        .collect();
    Json(json!({
        "node": info.node,
        "incarnation": info.incarnation,
        "members": state.mesh.view().members,
        "groups": groups,
    }))
}
