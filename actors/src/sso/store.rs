//! All SQL of the `sso` service (migration `0014_sso.sql`): sign-ins in flight
//! (`sso_logins`), provider identities linked to users (`sso_identities`) and the provider
//! tokens of SSO sessions (`sso_sessions`). The same statements run on SQLite and
//! PostgreSQL.

use sqlx::Row as _;

use crate::mesh::MeshError;
use crate::store::{db_error, Store};

/// A sign-in begun with `login_url`, waiting for its callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The `state` parameter, the row's key.
    pub state: String,
    /// Provider name.
    pub provider: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier the token request must present.
    pub pkce_verifier: String,
    /// Unix milliseconds after which the callback is refused.
    pub expires_at: i64,
}

/// Records a sign-in in flight.
pub async fn insert_pending(store: &Store, p: &Pending, now_ms: i64) -> Result<(), MeshError> {
    sqlx::query(
        "INSERT INTO sso_logins (state, provider, nonce, pkce_verifier, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&p.state)
    .bind(&p.provider)
    .bind(&p.nonce)
    .bind(&p.pkce_verifier)
    .bind(now_ms)
    .bind(p.expires_at)
    .execute(store.writer())
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Takes the sign-in of `state`: deletes its row and answers it, in one statement, so of
/// two callbacks with one state (on any nodes) exactly one gets it. Answers the row even
/// when it has expired (the caller refuses it; it is gone either way); `None` when no such
/// state was issued or it was taken before.
pub async fn take_pending(store: &Store, state: &str) -> Result<Option<Pending>, MeshError> {
    let row = sqlx::query(
        "DELETE FROM sso_logins WHERE state = $1 \
         RETURNING state, provider, nonce, pkce_verifier, expires_at",
    )
    .bind(state)
    .fetch_optional(store.writer())
    .await
    .map_err(db_error)?;
    row.map(|r| {
        Ok(Pending {
            state: r.try_get(0)?,
            provider: r.try_get(1)?,
            nonce: r.try_get(2)?,
            pkce_verifier: r.try_get(3)?,
            expires_at: r.try_get(4)?,
        })
    })
    .transpose()
    .map_err(db_error)
}

/// The user linked to the provider identity `(issuer, subject)`, if any.
pub async fn linked_user(
    store: &Store,
    issuer: &str,
    subject: &str,
) -> Result<Option<String>, MeshError> {
    let row = sqlx::query("SELECT user_id FROM sso_identities WHERE issuer = $1 AND subject = $2")
        .bind(issuer)
        .bind(subject)
        .fetch_optional(store.pool())
        .await
        .map_err(db_error)?;
    row.map(|r| r.try_get(0)).transpose().map_err(db_error)
}

/// A provider identity to link to a user.
#[derive(Clone, Debug)]
pub struct Identity<'a> {
    /// The ID token's `iss`.
    pub issuer: &'a str,
    /// The ID token's `sub`.
    pub subject: &'a str,
    /// The Troupe user.
    pub user_id: &'a str,
    /// Provider name (for operators: which `[[sso.providers]]` entry).
    pub provider: &'a str,
    /// The email address the provider gave at linking.
    pub email: &'a str,
}

/// Links an identity to a user unless it is linked already (another node's first sign-in
/// of the same identity won the race): answers the user the identity is linked to now.
pub async fn link(store: &Store, id: &Identity<'_>, now_ms: i64) -> Result<String, MeshError> {
    sqlx::query(
        "INSERT INTO sso_identities (issuer, subject, user_id, provider, email, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (issuer, subject) DO NOTHING",
    )
    .bind(id.issuer)
    .bind(id.subject)
    .bind(id.user_id)
    .bind(id.provider)
    .bind(id.email)
    .bind(now_ms)
    .execute(store.writer())
    .await
    .map_err(db_error)?;
    linked_user(store, id.issuer, id.subject)
        .await?
        .ok_or_else(|| MeshError::internal("sso identity vanished after linking"))
}

/// Unlinks an identity whose user no longer exists.
pub async fn unlink(store: &Store, issuer: &str, subject: &str) -> Result<(), MeshError> {
    sqlx::query("DELETE FROM sso_identities WHERE issuer = $1 AND subject = $2")
        .bind(issuer)
        .bind(subject)
        .execute(store.writer())
        .await
        .map_err(db_error)?;
    Ok(())
}

/// The provider's tokens of one Troupe session opened by SSO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens {
    /// Troupe session id.
    pub session_id: String,
    /// Provider name.
    pub provider: String,
    /// Troupe user id.
    pub user_id: String,
    /// The provider's subject (`sub`), to check userinfo answers against.
    pub subject: String,
    /// The provider's access token (for userinfo).
    pub access_token: String,
    /// The provider's refresh token; empty when it gave none.
    pub refresh_token: String,
    /// The latest ID token (the `id_token_hint` of the logout URL).
    pub id_token: String,
    /// Unix milliseconds after which the row is swept (the Troupe session can no longer
    /// be refreshed by then).
    pub expires_at: i64,
}

/// Records (or replaces) a session's provider tokens.
pub async fn put_tokens(store: &Store, t: &Tokens, now_ms: i64) -> Result<(), MeshError> {
    sqlx::query(
        "INSERT INTO sso_sessions (session_id, provider, user_id, subject, access_token, \
         refresh_token, id_token, updated_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (session_id) DO UPDATE SET access_token = excluded.access_token, \
         refresh_token = excluded.refresh_token, id_token = excluded.id_token, \
         updated_at = excluded.updated_at, expires_at = excluded.expires_at",
    )
    .bind(&t.session_id)
    .bind(&t.provider)
    .bind(&t.user_id)
    .bind(&t.subject)
    .bind(&t.access_token)
    .bind(&t.refresh_token)
    .bind(&t.id_token)
    .bind(now_ms)
    .bind(t.expires_at)
    .execute(store.writer())
    .await
    .map_err(db_error)?;
    Ok(())
}

const TOKEN_COLUMNS: &str =
    "session_id, provider, user_id, subject, access_token, refresh_token, id_token, expires_at";

fn tokens(r: &sqlx::any::AnyRow) -> Result<Tokens, sqlx::Error> {
    Ok(Tokens {
        session_id: r.try_get(0)?,
        provider: r.try_get(1)?,
        user_id: r.try_get(2)?,
        subject: r.try_get(3)?,
        access_token: r.try_get(4)?,
        refresh_token: r.try_get(5)?,
        id_token: r.try_get(6)?,
        expires_at: r.try_get(7)?,
    })
}

/// The provider tokens of session `session_id`, if it was opened by SSO.
pub async fn get_tokens(store: &Store, session_id: &str) -> Result<Option<Tokens>, MeshError> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM sso_sessions WHERE session_id = $1");
    let row = sqlx::query(&sql)
        .bind(session_id)
        .fetch_optional(store.pool())
        .await
        .map_err(db_error)?;
    row.as_ref().map(tokens).transpose().map_err(db_error)
}

/// Deletes and answers the provider tokens of session `session_id` (logout).
pub async fn take_tokens(store: &Store, session_id: &str) -> Result<Option<Tokens>, MeshError> {
    let sql = format!("DELETE FROM sso_sessions WHERE session_id = $1 RETURNING {TOKEN_COLUMNS}");
    let row = sqlx::query(&sql)
        .bind(session_id)
        .fetch_optional(store.writer())
        .await
        .map_err(db_error)?;
    row.as_ref().map(tokens).transpose().map_err(db_error)
}

/// Deletes sign-ins and session tokens that expired before `now_ms`; answers how many rows
/// went. Every node runs it; the deletes are idempotent.
pub async fn sweep_expired(store: &Store, now_ms: i64) -> Result<u64, MeshError> {
    let mut n = 0;
    for sql in [
        "DELETE FROM sso_logins WHERE expires_at < $1",
        "DELETE FROM sso_sessions WHERE expires_at < $1",
    ] {
        n += sqlx::query(sql)
            .bind(now_ms)
            .execute(store.writer())
            .await
            .map_err(db_error)?
            .rows_affected();
    }
    Ok(n)
}
