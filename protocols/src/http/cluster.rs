//! `GET /cluster`: members as this node sees them, and the service groups it routes to.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;

/// The handler.
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
