//! The per-user quota on WebSocket connections (`[quotas] ws_connections_per_user`), exact
//! for the whole cluster: a connection reserves a [`Slot`] before its upgrade and frees it
//! when it closes.
//!
//! A slot is a row of `ws_slots` in the store every node shares ([`super::store`]). It is
//! counted and inserted in one statement, in a transaction holding the user's lock for the
//! quota ([`crate::common::quota::hold`]), so upgrades of one user racing each other on
//! any nodes are counted one after the other and exactly the quota gets in (counting the
//! live connections of every node by a fan-out before upgrading, as was done before, let
//! each racing upgrade see the same count and pass it).
//!
//! A slot is freed when its [`Slot`] is dropped: when the connection's actor stops, or when
//! an upgrade that reserved one never completes. The delete runs on the node's keeper task
//! ([`Slots::start`]), which also renews the node's slots every [`RENEW`] for [`LEASE`]
//! more: the slots of a node that dies (SIGKILL, power loss) stop counting at most
//! [`LEASE`] later, a node that restarts under the same name drops its earlier
//! incarnation's at once, and a node that leaves drops its own ([`Slots::release_all`]) so
//! its users can reconnect elsewhere at once. A delete that fails is retried at the next tick, before any
//! renewal, so a freed slot is never renewed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::store::{self, Holder};
use crate::mesh::{MeshError, NodeInfo};
use crate::store::time::now_ms;
use crate::store::Store;

/// The quota's name, in refusals (`details.quota`) and in its lock.
pub const QUOTA: &str = "ws_connections_per_user";

/// How long a slot counts without being renewed (the holder died).
pub const LEASE: Duration = Duration::from_secs(60);

/// How often a node renews its slots.
pub const RENEW: Duration = Duration::from_secs(15);

/// This node's reservations of the cluster-wide connection quota.
pub struct Slots {
    store: Store,
    holder: Holder,
    max_per_user: u32,
    lease: Duration,
    release_tx: mpsc::UnboundedSender<String>,
}

/// One reserved connection slot; freed when dropped.
pub struct Slot {
    id: String,
    release_tx: mpsc::UnboundedSender<String>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The keeper ends only when every sender (the `Slots` and each `Slot`) is gone.
        let _ = self.release_tx.send(std::mem::take(&mut self.id));
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").field("id", &self.id).finish()
    }
}

impl Slots {
    /// The slots of the node `info` names, `max_per_user` per user, each counting for
    /// `lease` unless renewed (nodes use [`LEASE`]). Drops the slots of this node's earlier
    /// incarnations and starts the keeper that frees and renews this one's.
    pub async fn start(
        info: &NodeInfo,
        store: Store,
        max_per_user: u32,
        lease: Duration,
    ) -> Result<Arc<Self>, MeshError> {
        let holder = Holder {
            node: info.node.to_string(),
            incarnation: i64::try_from(info.incarnation).unwrap_or(i64::MAX),
        };
        let dropped = store::drop_of(&store, &holder, store::Run::Earlier).await?;
        if dropped > 0 {
            tracing::info!(
                dropped,
                "websocket slots of an earlier run of this node dropped"
            );
        }
        let (release_tx, release_rx) = mpsc::unbounded_channel();
        tokio::spawn(keep(store.clone(), holder.clone(), lease, release_rx));
        Ok(Arc::new(Self {
            store,
            holder,
            max_per_user,
            lease,
            release_tx,
        }))
    }

    /// Connections one user may hold open across the cluster.
    pub fn max_per_user(&self) -> u32 {
        self.max_per_user
    }

    /// Reserves a slot of `user_id`: `resource_exhausted` naming [`QUOTA`] and its limit
    /// when the user holds all of theirs on any node.
    pub async fn reserve(&self, user_id: &str) -> Result<Slot, MeshError> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_ms();
        let expires_at =
            now.saturating_add(i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX));
        let mut tx = self.store.begin().await?;
        crate::common::quota::hold(&mut tx, self.store.backend(), QUOTA, user_id).await?;
        let reserved = store::reserve(
            &mut tx,
            &id,
            user_id,
            &self.holder,
            now,
            expires_at,
            self.max_per_user,
        )
        .await?;
        if !reserved {
            return Err(crate::auth::limits::over_quota(
                QUOTA,
                u64::from(self.max_per_user),
                false,
            ));
        }
        tx.commit().await.map_err(crate::store::db_error)?;
        Ok(Slot {
            id,
            release_tx: self.release_tx.clone(),
        })
    }

    /// Frees every slot this node holds, at shutdown once its connections are closed and
    /// no upgrade is served any more: their users may reconnect to other nodes at once,
    /// without waiting for the lease.
    pub async fn release_all(&self) -> Result<u64, MeshError> {
        store::drop_of(&self.store, &self.holder, store::Run::This).await
    }
}

/// Frees dropped slots and renews the live ones every `lease / 4` (at most [`RENEW`]),
/// until every slot and the [`Slots`] are gone.
async fn keep(
    store: Store,
    holder: Holder,
    lease: Duration,
    mut release_rx: mpsc::UnboundedReceiver<String>,
) {
    let mut tick = tokio::time::interval((lease / 4).min(RENEW));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Frees that failed, retried before the next renewal.
    let mut unfreed: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            freed = release_rx.recv() => {
                let Some(id) = freed else { return };
                if let Err(e) = store::release(&store, &id).await {
                    tracing::warn!(slot = %id, error = %e, "websocket slot not freed, retrying");
                    unfreed.push(id);
                }
            }
            _ = tick.tick() => {
                let mut still = Vec::new();
                for id in unfreed.drain(..) {
                    if store::release(&store, &id).await.is_err() {
                        still.push(id);
                    }
                }
                unfreed = still;
                if !unfreed.is_empty() {
                    // Renewing now would renew a freed slot too; the live ones have a
                    // lease's worth of time left to wait for the store.
                    continue;
                }
                let expires_at =
                    now_ms().saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
                if let Err(e) = store::renew(&store, &holder, expires_at).await {
                    tracing::warn!(error = %e, "websocket slots not renewed");
                }
            }
        }
    }
}
