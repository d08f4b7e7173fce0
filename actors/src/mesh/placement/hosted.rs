//! [`Hosted`]: the [`EntityHost`] of one entity kind as a service keeps it for the node's
//! life: respawned if it died, and told to hand entities off whenever the placement
//! members or this node's ownership change (every entity lets go while the node is fenced
//! after losing a split, see [`crate::mesh::partition`]).

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ractor::{Actor, ActorRef, ActorStatus};

use super::entity::{request, Entity, EntityError};
use super::host::{EntityHost, EntityHostMsg};
use crate::mesh::{MeshError, NodeInfo};

/// The node's host of entities of kind `E`.
pub struct Hosted<E: Entity> {
    info: Arc<NodeInfo>,
    entity: Arc<E>,
    idle: Duration,
    host: Mutex<ActorRef<EntityHostMsg<E>>>,
}

impl<E: Entity> Hosted<E> {
    /// Spawns the host (fenced with `info`; entities passivated after `idle`) and its
    /// hand-off watcher, which stops when the returned value is dropped.
    pub async fn start(
        info: Arc<NodeInfo>,
        entity: E,
        idle: Duration,
    ) -> anyhow::Result<Arc<Self>> {
        let entity = Arc::new(entity);
        let host = spawn(&info, &entity, idle).await?;
        let me = Arc::new(Self {
            info,
            entity,
            idle,
            host: Mutex::new(host),
        });
        tokio::spawn(handoff(Arc::downgrade(&me)));
        let weak = Arc::downgrade(&me);
        me.info.list_hosted_with(
            E::KIND,
            Arc::new(move || -> crate::mesh::BoxFuture<'static, Vec<String>> {
                let weak = weak.clone();
                Box::pin(async move {
                    let Some(h) = weak.upgrade() else {
                        return Vec::new();
                    };
                    let Ok(host) = h.host().await else {
                        return Vec::new();
                    };
                    let ids = ractor::call!(host, EntityHostMsg::Ids);
                    ids.unwrap_or_default()
                })
            }),
        );
        Ok(me)
    }

    /// The host, respawned if it died.
    pub async fn host(&self) -> Result<ActorRef<EntityHostMsg<E>>, MeshError> {
        let current = self.host.lock().expect("host lock").clone();
        if current.get_status() == ActorStatus::Running {
            return Ok(current);
        }
        let fresh = spawn(&self.info, &self.entity, self.idle)
            .await
            .map_err(|e| MeshError::unavailable(format!("{} host restart failed: {e}", E::KIND)))?;
        tracing::warn!(kind = E::KIND, "entity host was down, restarted it");
        *self.host.lock().expect("host lock") = fresh.clone();
        Ok(fresh)
    }

    /// Runs `req` on entity `id`'s actor on this node, waiting at most `timeout`.
    pub async fn request(
        &self,
        id: &str,
        req: E::Request,
        timeout: Option<Duration>,
    ) -> Result<E::Reply, EntityError> {
        let host = self
            .host()
            .await
            .map_err(|e| EntityError::Unavailable(e.message))?;
        request(&host, id.to_string(), req, timeout).await
    }
}

async fn spawn<E: Entity>(
    info: &Arc<NodeInfo>,
    entity: &Arc<E>,
    idle: Duration,
) -> anyhow::Result<ActorRef<EntityHostMsg<E>>> {
    let host = EntityHost::new(entity.clone(), idle).fenced_with(info.clone());
    let (host, _) = Actor::spawn(None, host, ()).await?;
    Ok(host)
}

/// Passivates the entities whose home moved whenever the placement members change, and
/// every entity when this node is fenced.
async fn handoff<E: Entity>(me: Weak<Hosted<E>>) {
    let mut placement = loop {
        let Some(h) = me.upgrade() else { return };
        if let Ok(r) = h.info.router() {
            break r.watch_owned_placement();
        }
        drop(h);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    while let Some(list) = placement.changed().await {
        let Some(h) = me.upgrade() else { return };
        if let Ok(host) = h.host().await {
            let _ = host.cast(EntityHostMsg::Rebalance {
                members: list,
                me: h.info.node.to_string(),
            });
        }
    }
}
