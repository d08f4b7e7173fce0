//! All SQL of the hub: table `ws_slots` (`migrations/0017_quota_slots.sql`), the WebSocket
//! connection slots of [`super::slots`].
//!
//! Queries use `$N` placeholders and only `TEXT`/`BIGINT` columns (see [`crate::store`]).

use crate::mesh::MeshError;
use crate::store::{db_error, Store};

/// The node process holding slots: its name and incarnation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The node's name.
    pub node: String,
    /// The process's incarnation (a restart takes a new one).
    pub incarnation: i64,
}

/// Inserts slot `id` of `user_id` held by `holder` until `expires_at` (unix ms) unless the
/// user holds `max` slots live at `now` already (counted in the same statement), after
/// dropping the user's slots that ran out; whether it was inserted. Run it in a
/// transaction that holds the user's quota lock (`crate::common::quota::hold`).
pub async fn reserve(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    user_id: &str,
    holder: &Holder,
    now: i64,
    expires_at: i64,
    max: u32,
) -> Result<bool, MeshError> {
    sqlx::query("DELETE FROM ws_slots WHERE user_id = $1 AND expires_at <= $2")
        .bind(user_id)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    let done = sqlx::query(
        "INSERT INTO ws_slots (id, user_id, node, incarnation, expires_at) \
         SELECT $1, $2, $3, $4, $5 WHERE (SELECT COUNT(*) FROM ws_slots \
         WHERE user_id = $2 AND expires_at > $6) < $7",
    )
    .bind(id)
    .bind(user_id)
    .bind(&holder.node)
    .bind(holder.incarnation)
    .bind(expires_at)
    .bind(now)
    .bind(i64::from(max))
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Frees slot `id`.
pub async fn release(store: &Store, id: &str) -> Result<(), MeshError> {
    sqlx::query("DELETE FROM ws_slots WHERE id = $1")
        .bind(id)
        .execute(store.writer())
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Extends every slot of `holder` to `expires_at`; how many it holds.
pub async fn renew(store: &Store, holder: &Holder, expires_at: i64) -> Result<u64, MeshError> {
    let done =
        sqlx::query("UPDATE ws_slots SET expires_at = $3 WHERE node = $1 AND incarnation = $2")
            .bind(&holder.node)
            .bind(holder.incarnation)
            .bind(expires_at)
            .execute(store.writer())
            .await
            .map_err(db_error)?;
    Ok(done.rows_affected())
}

/// Which slots of a node [`drop_of`] drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Run {
    /// Those of the node's other (earlier) incarnations: their connections died with that
    /// process.
    Earlier,
    /// Those of this incarnation: its connections are closed, the node is leaving.
    This,
}

/// Drops the slots of `holder`'s node held by `run`; how many.
pub async fn drop_of(store: &Store, holder: &Holder, run: Run) -> Result<u64, MeshError> {
    let sql = match run {
        Run::Earlier => "DELETE FROM ws_slots WHERE node = $1 AND incarnation <> $2",
        Run::This => "DELETE FROM ws_slots WHERE node = $1 AND incarnation = $2",
    };
    let done = sqlx::query(sql)
        .bind(&holder.node)
        .bind(holder.incarnation)
        .execute(store.writer())
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected())
}

/// The slots of `user_id` live at `now`.
pub async fn live(store: &Store, user_id: &str, now: i64) -> Result<i64, MeshError> {
    let row = sqlx::query("SELECT COUNT(*) FROM ws_slots WHERE user_id = $1 AND expires_at > $2")
        .bind(user_id)
        .bind(now)
        .fetch_one(store.pool())
        .await
        .map_err(db_error)?;
    sqlx::Row::try_get::<i64, _>(&row, 0).map_err(db_error)
}
