//! Node leases in the store: the fence of the partition strategy
//! ([`crate::mesh::partition`]).
//!
//! One row per node name: the lease's `epoch` and when it runs out (`expires_at`, unix ms
//! by the writer's clock; nodes' clocks are assumed to agree to well within the lease
//! margin, as NTP keeps them). Every change is one conditional statement, so two nodes
//! racing on one row cannot both win:
//!
//! - `acquire` bumps the epoch and sets the expiry: the node owns under the new epoch;
//! - `renew` extends the expiry only under the epoch the node holds;
//! - `release` ends the lease now (the node holds nothing);
//! - `down` bumps the epoch only of a lease that is released or expired, so its former
//!   holder can never renew it again.

use std::time::Duration;

use sqlx::Row as _;

use super::time::now_ms;
use super::{db_error, Store};
use crate::mesh::partition::Leases;
use crate::mesh::{BoxFuture, MeshError};

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Leases for Store {
    fn acquire(&self, node: &str, ttl: Duration) -> BoxFuture<'_, Result<i64, MeshError>> {
        let node = node.to_string();
        Box::pin(async move {
            let row = sqlx::query(
                "INSERT INTO node_leases (node, epoch, expires_at) VALUES ($1, 1, $2) \
                 ON CONFLICT (node) DO UPDATE SET epoch = node_leases.epoch + 1, expires_at = $2 \
                 RETURNING epoch",
            )
            .bind(&node)
            .bind(now_ms() + ms(ttl))
            .fetch_one(self.writer())
            .await
            .map_err(db_error)?;
            row.try_get::<i64, _>("epoch").map_err(db_error)
        })
    }

    fn renew(
        &self,
        node: &str,
        epoch: i64,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<bool, MeshError>> {
        let node = node.to_string();
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE node_leases SET expires_at = $3 WHERE node = $1 AND epoch = $2",
            )
            .bind(&node)
            .bind(epoch)
            .bind(now_ms() + ms(ttl))
            .execute(self.writer())
            .await
            .map_err(db_error)?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn release(&self, node: &str, epoch: i64) -> BoxFuture<'_, Result<(), MeshError>> {
        let node = node.to_string();
        Box::pin(async move {
            sqlx::query("UPDATE node_leases SET expires_at = 0 WHERE node = $1 AND epoch = $2")
                .bind(&node)
                .bind(epoch)
                .execute(self.writer())
                .await
                .map_err(db_error)?;
            Ok(())
        })
    }

    fn down(&self, node: &str) -> BoxFuture<'_, Result<bool, MeshError>> {
        let node = node.to_string();
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE node_leases SET epoch = epoch + 1, expires_at = 0 \
                 WHERE node = $1 AND expires_at <= $2",
            )
            .bind(&node)
            .bind(now_ms())
            .execute(self.writer())
            .await
            .map_err(db_error)?;
            if done.rows_affected() == 1 {
                return Ok(true);
            }
            // Not downed: either it holds a valid lease, or it never had one.
            let held = sqlx::query("SELECT epoch FROM node_leases WHERE node = $1")
                .bind(&node)
                .fetch_optional(self.pool())
                .await
                .map_err(db_error)?;
            Ok(held.is_none())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::on_each_backend;

    #[tokio::test]
    async fn a_valid_lease_cannot_be_downed_and_a_downed_one_cannot_be_renewed() {
        on_each_backend(|store, _| async move {
            let node = format!("lease-{}", uuid::Uuid::new_v4());
            let ttl = Duration::from_secs(30);
            // A node with no lease at all may be downed (it never owned anything).
            assert!(store.down(&node).await.unwrap());
            let e1 = store.acquire(&node, ttl).await.unwrap();
            assert!(store.renew(&node, e1, ttl).await.unwrap());
            assert!(!store.down(&node).await.unwrap(), "downed a valid lease");
            assert!(store.renew(&node, e1, ttl).await.unwrap());

            // Released: others may down it, and then its holder can no longer renew.
            store.release(&node, e1).await.unwrap();
            assert!(store.down(&node).await.unwrap());
            assert!(!store.renew(&node, e1, ttl).await.unwrap());

            // Rejoining takes a newer epoch, which holds again.
            let e2 = store.acquire(&node, ttl).await.unwrap();
            assert!(e2 > e1 + 1, "epoch {e2} after {e1} and a downing");
            assert!(store.renew(&node, e2, ttl).await.unwrap());
            assert!(!store.renew(&node, e1, ttl).await.unwrap());

            // A lease that ran out can be downed too.
            let short = store
                .acquire(&node, Duration::from_millis(1))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(store.down(&node).await.unwrap());
            assert!(!store.renew(&node, short, ttl).await.unwrap());
        })
        .await;
    }
}
