//! Admin routes (bearer admin token): `GET /admin/actors` and `POST /admin/chaos/kill`.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::Json;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};
use troupe_actors::mesh::{Call, MeshError, Target};
use troupe_actors::system::{actors, kill, SYSTEM};
use troupe_proto::mesh::{ActorList, KillReply, KillRequest};
use utoipa::ToSchema;

use super::auth::Admin;
use super::health::futures_join_all;
use super::openapi::ErrorBody;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// Query of `/admin/actors`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActorsQuery {
    /// Only this node's actors.
    pub node: Option<String>,
    /// Only this service's actors.
    pub service: Option<String>,
}

fn check_node(state: &AppState, node: &str) -> Result<(), ApiError> {
    if state.mesh.router().members().iter().any(|m| m == node) {
        Ok(())
    } else if state.mesh.view().members.iter().any(|m| m.name == node) {
        Err(MeshError::unavailable(format!("node {node} is not reachable")).into())
    } else {
        Err(MeshError::not_found(format!("no member named {node}")).into())
    }
}

fn check_service(state: &AppState, service: &str) -> Result<(), ApiError> {
    if state.mesh.info().pool(service).is_some() {
        Ok(())
    } else {
        Err(MeshError::not_found(format!("no service named {service}")).into())
    }
}

/// One service actor.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActorView {
    /// The node it runs on.
    pub node: String,
    /// Its service group.
    pub service: String,
    /// Actor name.
    pub name: String,
    /// Actor id; empty while it restarts.
    pub id: String,
    /// `worker`.
    pub role: String,
    /// `running`, `restarting`, or another actor state in lower case.
    pub status: String,
}

/// Answer of `GET /admin/actors`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActorListView {
    /// Actors in `items`.
    pub total: usize,
    /// The actors, node by node.
    pub items: Vec<ActorView>,
}

/// Every service actor on every routable node (or one node), gathered through the mesh.
#[utoipa::path(
    get,
    path = "/admin/actors",
    tag = "admin",
    security(("admin" = [])),
    params(ActorsQuery),
    responses(
        (status = 200, description = "The actors", body = ActorListView),
        (status = 404, description = "No member named `node`, or no service named `service`", body = ErrorBody),
        (status = 503, description = "`node` is a member but not reachable", body = ErrorBody),
    )
)]
pub async fn actors(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Query(q): Query<ActorsQuery>,
) -> Result<Json<ActorListView>, ApiError> {
    let nodes: Vec<String> = match &q.node {
        Some(n) => {
            check_node(&state, n)?;
            vec![n.clone()]
        }
        None => state.mesh.router().members().to_vec(),
    };
    if let Some(s) = &q.service {
        check_service(&state, s)?;
    }
    let asks = nodes.into_iter().map(|n| {
        let state = state.clone();
        let call = Call::new(SYSTEM, actors::OP)
            .to(Target::Node(n))
            .request_id(rid.clone());
        async move { ask::<ActorList>(&state, call).await }
    });
    let mut items = Vec::new();
    for answer in futures_join_all(asks).await {
        for a in answer?.actors {
            if q.service.as_ref().is_some_and(|s| *s != a.service) {
                continue;
            }
            items.push(ActorView {
                node: a.node,
                service: a.service,
                name: a.name,
                id: a.id,
                role: a.role,
                status: a.status,
            });
        }
    }
    Ok(Json(ActorListView {
        total: items.len(),
        items,
    }))
}

/// Body of `POST /admin/chaos/kill`; every field optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct KillBody {
    /// Service group whose workers to kill; any when absent.
    pub service: Option<String>,
    /// Node to kill on; random routable nodes when absent.
    pub node: Option<String>,
    /// How many actors, 1 to 1000 (default 1).
    #[schema(minimum = 1, maximum = 1000)]
    pub count: Option<u32>,
}

/// One killed actor.
#[derive(Debug, Serialize, ToSchema)]
pub struct KilledActor {
    /// The node it ran on.
    pub node: String,
    /// Its service group.
    pub service: String,
    /// Actor name.
    pub actor: String,
}

/// Answer of `POST /admin/chaos/kill`.
#[derive(Debug, Serialize, ToSchema)]
pub struct KillReport {
    /// Actors killed.
    pub count: usize,
    /// The actors killed.
    pub killed: Vec<KilledActor>,
}

/// Kills worker actors by service group, node, or at random; their supervisors restart them.
#[utoipa::path(
    post,
    path = "/admin/chaos/kill",
    tag = "admin",
    security(("admin" = [])),
    request_body(
        content = Option<KillBody>,
        description = "Optional: an empty body kills one random worker anywhere"
    ),
    responses(
        (status = 200, description = "The actors killed", body = KillReport),
        (status = 400, description = "`count` not between 1 and 1000, or a malformed body", body = ErrorBody),
        (status = 404, description = "No member named `node`, or no service named `service`", body = ErrorBody),
        (status = 503, description = "`node` is a member but not reachable", body = ErrorBody),
    )
)]
pub async fn kill(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    body: axum::body::Bytes,
) -> Result<Json<KillReport>, ApiError> {
    // Every field is optional, so an empty body means "one random worker anywhere" (white
    // space alone is not JSON, and is refused like any other).
    let body: KillBody = if body.is_empty() {
        KillBody::default()
    } else {
        super::json::from_slice(&body)
            .map_err(|e| MeshError::invalid(format!("malformed json body: {e}")))?
    };
    let count = body.count.unwrap_or(1);
    if count == 0 || count > kill::MAX_COUNT {
        return Err(
            MeshError::invalid(format!("count must be between 1 and {}", kill::MAX_COUNT)).into(),
        );
    }
    if let Some(s) = &body.service {
        check_service(&state, s)?;
    }
    // How many to kill where.
    let mut per_node: BTreeMap<String, u32> = BTreeMap::new();
    match &body.node {
        Some(n) => {
            check_node(&state, n)?;
            per_node.insert(n.clone(), count);
        }
        None => {
            let members = state.mesh.router().members();
            for _ in 0..count {
                if let Some(n) = members.choose(&mut rand::rng()) {
                    *per_node.entry(n.clone()).or_default() += 1;
                }
            }
        }
    }
    let service = body.service.unwrap_or_default();
    let asks = per_node.into_iter().map(|(n, c)| {
        let state = state.clone();
        let call = Call::new(SYSTEM, kill::OP)
            .to(Target::Node(n))
            .request_id(rid.clone())
            .payload(&KillRequest {
                service: service.clone(),
                count: c,
            });
        async move { ask::<KillReply>(&state, call).await }
    });
    let mut killed = Vec::new();
    for answer in futures_join_all(asks).await {
        for k in answer?.killed {
            killed.push(KilledActor {
                node: k.node,
                service: k.service,
                actor: k.actor,
            });
        }
    }
    tracing::warn!(count = killed.len(), "chaos: killed actors");
    Ok(Json(KillReport {
        count: killed.len(),
        killed,
    }))
}
