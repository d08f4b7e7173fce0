//! Admin routes (bearer admin token): `GET /admin/actors` and `POST /admin/chaos/kill`.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::Json;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};
use troupe_actors::mesh::{MeshError, Target};
use troupe_actors::system;
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

/// One service's worker pool on one node.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolView {
    /// The node it runs on.
    pub node: String,
    /// Its service group.
    pub service: String,
    /// Worker slots (`[services.<name>] workers`, else what the service asks for, else
    /// `[services] workers`).
    pub size: usize,
    /// Workers running now; the others are restarting.
    pub alive: usize,
}

/// Answer of `GET /admin/actors`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActorListView {
    /// Actors in `items`.
    pub total: usize,
    /// The actors, node by node.
    pub items: Vec<ActorView>,
    /// The pools those actors make up, node by node.
    pub pools: Vec<PoolView>,
}

/// The pools of `items`: the listing has one worker per slot of a pool, restarting ones
/// included, so a pool's size is its number of workers.
fn pools(items: &[ActorView]) -> Vec<PoolView> {
    let mut pools: Vec<PoolView> = Vec::new();
    for a in items.iter().filter(|a| a.role == "worker") {
        let pool = match pools
            .iter_mut()
            .position(|p| p.node == a.node && p.service == a.service)
        {
            Some(i) => &mut pools[i],
            None => {
                pools.push(PoolView {
                    node: a.node.clone(),
                    service: a.service.clone(),
                    size: 0,
                    alive: 0,
                });
                pools.last_mut().expect("just pushed")
            }
        };
        pool.size += 1;
        pool.alive += usize::from(a.status == "running");
    }
    pools
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
        let call = system::ACTORS
            .call(())
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
        pools: pools(&items),
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
    if count == 0 || count > system::kill::MAX_COUNT {
        return Err(MeshError::invalid(format!(
            "count must be between 1 and {}",
            system::kill::MAX_COUNT
        ))
        .into());
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
        let call = system::KILL
            .call(KillRequest {
                service: service.clone(),
                count: c,
            })
            .to(Target::Node(n))
            .request_id(rid.clone());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(node: &str, service: &str, status: &str) -> ActorView {
        ActorView {
            node: node.into(),
            service: service.into(),
            name: format!("{service}.w0#1"),
            id: String::new(),
            role: "worker".into(),
            status: status.into(),
        }
    }

    #[test]
    fn pools_count_every_slot_and_the_running_ones() {
        let items = [
            worker("n1", "auth", "running"),
            worker("n1", "auth", "restarting"),
            worker("n1", "users", "running"),
            worker("n2", "auth", "running"),
        ];
        let pools = pools(&items);
        let got: Vec<(&str, &str, usize, usize)> = pools
            .iter()
            .map(|p| (p.node.as_str(), p.service.as_str(), p.size, p.alive))
            .collect();
        assert_eq!(
            got,
            [
                ("n1", "auth", 2, 1),
                ("n1", "users", 1, 1),
                ("n2", "auth", 1, 1)
            ]
        );
    }
}
