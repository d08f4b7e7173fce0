//! All SQL of the `sessions` service (table `sessions`, see `actors/migrations`).

use sqlx::Row as _;

use crate::mesh::{Code, MeshError};
use crate::store::{db_error, Store};

/// One stored session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Session id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub last_activity: i64,
    /// Unix ms.
    pub expires_at: i64,
    /// Device label.
    pub device: String,
    /// Client address.
    pub ip: String,
    /// User agent.
    pub user_agent: String,
    /// JSON text.
    pub metadata: String,
    /// Unix ms, 0 while active.
    pub revoked_at: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
}

const COLUMNS: &str = "id, user_id, created_at, last_activity, expires_at, device, ip, user_agent, metadata, revoked_at, version";

fn row(r: &sqlx::any::AnyRow) -> Result<Row, sqlx::Error> {
    Ok(Row {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        created_at: r.try_get("created_at")?,
        last_activity: r.try_get("last_activity")?,
        expires_at: r.try_get("expires_at")?,
        device: r.try_get("device")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        metadata: r.try_get("metadata")?,
        revoked_at: r.try_get("revoked_at")?,
        version: r.try_get("version")?,
    })
}

/// Inserts a new session.
pub async fn insert(store: &Store, s: &Row) -> Result<(), MeshError> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at, last_activity, expires_at, device, ip, user_agent, metadata, revoked_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&s.id)
    .bind(&s.user_id)
    .bind(s.created_at)
    .bind(s.last_activity)
    .bind(s.expires_at)
    .bind(&s.device)
    .bind(&s.ip)
    .bind(&s.user_agent)
    .bind(&s.metadata)
    .bind(s.revoked_at)
    .bind(s.version)
    .execute(store.writer())
    .await
    .map_err(db_error)?;
    Ok(())
}

/// One session by id.
pub async fn get(store: &Store, id: &str) -> Result<Option<Row>, MeshError> {
    let r = sqlx::query(&format!("SELECT {COLUMNS} FROM sessions WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(db_error)?;
    r.as_ref().map(row).transpose().map_err(db_error)
}

/// Writes `s` if the stored version is still `s.version - 1`; false when another writer won.
pub async fn update(store: &Store, s: &Row) -> Result<bool, MeshError> {
    let done = sqlx::query(
        "UPDATE sessions SET last_activity = $1, device = $2, ip = $3, user_agent = $4, metadata = $5, \
         revoked_at = $6, version = $7 WHERE id = $8 AND version = $9",
    )
    .bind(s.last_activity)
    .bind(&s.device)
    .bind(&s.ip)
    .bind(&s.user_agent)
    .bind(&s.metadata)
    .bind(s.revoked_at)
    .bind(s.version)
    .bind(&s.id)
    .bind(s.version - 1)
    .execute(store.writer())
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Every session of a user, newest activity first.
pub async fn by_user(store: &Store, user_id: &str) -> Result<Vec<Row>, MeshError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE user_id = $1 ORDER BY last_activity DESC, id LIMIT 1000"
    ))
    .bind(user_id)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(row)
        .collect::<Result<_, _>>()
        .map_err(db_error)
}

/// Revokes at `now`, in one statement, every session of `user_id` but `keep` that is not
/// revoked yet and ended after `since` (or has not ended), however many: `revoke_user`.
/// Each row's version moves on, so a session actor holding the row from before fails its
/// next write's version check and reloads it. Answers the revoked rows.
pub async fn revoke_all_of(
    store: &Store,
    user_id: &str,
    keep: &str,
    since: i64,
    now: i64,
) -> Result<Vec<Row>, MeshError> {
    let rows = sqlx::query(&format!(
        "UPDATE sessions SET revoked_at = $1, version = version + 1 \
         WHERE user_id = $2 AND revoked_at = 0 AND expires_at > $3 AND id <> $4 \
         RETURNING {COLUMNS}"
    ))
    .bind(now)
    .bind(user_id)
    .bind(since)
    .bind(keep)
    .fetch_all(store.writer())
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(row)
        .collect::<Result<_, _>>()
        .map_err(db_error)
}

/// Sessions revoked at or after `since` (unix ms) whose tokens may still work at `now`:
/// not expired, or revoked after `tokens_end` (an access token minted before the
/// revocation may outlive the session). `(id, expires_at)`.
pub async fn revoked_since(
    store: &Store,
    since: i64,
    now: i64,
    tokens_end: i64,
) -> Result<Vec<(String, i64)>, MeshError> {
    let rows = sqlx::query(
        "SELECT id, expires_at FROM sessions WHERE revoked_at >= $1 AND revoked_at > 0 \
         AND (expires_at > $2 OR revoked_at > $3)",
    )
    .bind(since)
    .bind(now)
    .bind(tokens_end)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("expires_at")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db_error)
}

/// Deletes sessions that expired before `before_ms`. Their tokens expired with them, so
/// nothing checks their revocation any more; they only fed `last-connection`. Answers how
/// many rows went.
pub async fn sweep_expired(store: &Store, before_ms: i64) -> Result<u64, MeshError> {
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
        .bind(before_ms)
        .execute(store.writer())
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected())
}

/// Not found, as the service reports it.
pub fn not_found() -> MeshError {
    MeshError::new(Code::NotFound, "no such session")
}
