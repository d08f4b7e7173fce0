//! All SQL of the `auth` service: table `refresh_tokens`, one row per issued refresh token,
//! spent exactly once.

use crate::mesh::MeshError;
use crate::store::time::now_ms;
use crate::store::{db_error, Store};

/// Records an issued refresh token.
pub async fn insert<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    jti: &str,
    session_id: &str,
    user_id: &str,
    expires_at_ms: i64,
) -> Result<(), MeshError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (jti, session_id, user_id, expires_at, used_at) VALUES ($1, $2, $3, $4, 0)",
    )
    .bind(jti)
    .bind(session_id)
    .bind(user_id)
    .bind(expires_at_ms)
    .execute(db)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Spends a refresh token: true the first time, false when it was spent before or is unknown.
/// One conditional UPDATE, so two nodes racing with the same token cannot both win.
pub async fn spend(store: &Store, jti: &str) -> Result<bool, MeshError> {
    let done = sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE jti = $2 AND used_at = 0")
        .bind(now_ms())
        .bind(jti)
        .execute(store.writer())
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Deletes refresh tokens that expired before `now_ms` (spent or not: an expired token is
/// refused either way). Every node runs this; the deletes are idempotent. Answers how many
/// rows went.
pub async fn sweep_expired(store: &Store, now_ms: i64) -> Result<u64, MeshError> {
    let done = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
        .bind(now_ms)
        .execute(store.writer())
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::on_each_backend;

    #[tokio::test]
    async fn the_sweep_deletes_only_expired_tokens() {
        on_each_backend(|store, alone| async move {
            let old = uuid::Uuid::new_v4().to_string();
            let live = uuid::Uuid::new_v4().to_string();
            let now = now_ms();
            insert(store.writer(), &old, "s", "u", now - 1_000)
                .await
                .unwrap();
            insert(store.writer(), &live, "s", "u", now + 3_600_000)
                .await
                .unwrap();
            let swept = sweep_expired(&store, now).await.unwrap();
            // On a shared database another test's sweep may have taken the row first.
            assert!(!alone || swept >= 1, "swept {swept}");
            // The expired row is gone (cannot be spent), the live one is untouched.
            assert!(!spend(&store, &old).await.unwrap());
            assert!(spend(&store, &live).await.unwrap());
        })
        .await;
    }
}
