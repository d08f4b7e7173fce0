//! `GET /ping` and `GET /ping?node=<name>`: answered by the `ping` service actor on this
//! node, or on the named node through the mesh.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use troupe_actors::mesh::heartbeat::PING;
use troupe_actors::mesh::{MeshError, Target};
use troupe_proto::mesh::PingReply;
use utoipa::ToSchema;

use super::openapi::ErrorBody;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// Query of `/ping`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PingQuery {
    /// Node that should answer; this node when absent.
    #[param(min_length = 1)]
    pub node: Option<String>,
}

/// The answer: which node and incarnation served the ping.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pong {
    /// Node name.
    pub node: String,
    /// Its incarnation.
    pub incarnation: u64,
}

/// `GET /ping` (answered by a `ping` worker on this node) or `GET /ping?node=<name>` (by
/// that node's, through the mesh).
#[utoipa::path(
    get,
    path = "/ping",
    tag = "runtime",
    params(PingQuery),
    responses(
        (status = 200, description = "The node that answered", body = Pong),
        (status = 400, description = "`node` is empty", body = ErrorBody),
        (status = 404, description = "No member named `node`", body = ErrorBody),
    )
)]
pub async fn ping(
    State(state): State<AppState>,
    Rid(rid): Rid,
    Query(q): Query<PingQuery>,
) -> Result<Json<Pong>, ApiError> {
    let target = match q.node {
        None => Target::Node(state.mesh.info().node.to_string()),
        Some(n) if n.is_empty() => return Err(MeshError::invalid("node must not be empty").into()),
        Some(n) => {
            if !state.mesh.view().members.iter().any(|m| m.name == n) {
                return Err(MeshError::not_found(format!("no member named {n}")).into());
            }
            Target::Node(n)
        }
    };
    let reply: PingReply = ask(&state, PING.call(()).to(target).request_id(rid)).await?;
    Ok(Json(Pong {
        node: reply.node,
        incarnation: reply.incarnation,
    }))
}
