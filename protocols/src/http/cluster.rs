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
    responses((status = 200, description = "`{\"node\", \"incarnation\", \"members\", \"partition\", \"groups\"}`. \
        `node`, `incarnation`: this node's. `members`: every known member (newest incarnation \
        per name, this node included, sorted by name) as `{\"name\", \"incarnation\", \
        \"state\", \"cluster_addr\", \"http_addr\", \"grpc_addr\", \"services\", \"rtt_ms\"}`, \
        `state` being `up`, `suspect`, `leaving` or `down` and `rtt_ms` the last mesh heartbeat \
        round trip (`null` when none). `partition`: the split-brain resolver here, \
        `{\"strategy\", \"verdict\", \"unreachable\", \"placement\", \"owner\", \"fenced\"}`: \
        `verdict` is `healthy`, `undecided`, `win` or `lose`; `placement` the members that own \
        entities and tasks as far as this node knows; `owner` whether this node may own them \
        now, and `fenced` why not (`null` while it owns). `groups`: by service group (`svc.<name>`), \
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
    let view = state.mesh.view();
    let owner = state.mesh.router().ownership().get();
    let fenced = match &owner {
        troupe_actors::mesh::partition::Owner::Fenced(why) => Some(why.to_string()),
        troupe_actors::mesh::partition::Owner::Owner { .. } => None,
    };
    let mut partition = serde_json::to_value(&view.partition).unwrap_or_default();
    partition["owner"] = json!(owner.is_owner());
    partition["fenced"] = json!(fenced);
    Json(json!({
        "node": info.node,
        "incarnation": info.incarnation,
        "members": view.members,
        "partition": partition,
        "groups": groups,
    }))
}
