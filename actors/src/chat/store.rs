//! All SQL of the `chat` service: tables `chat_requests` and `chat_messages`
//! (`migrations/0005_chat.sql`), and the `contacts` rows an accepted request creates.
//!
//! Queries use `$N` placeholders and only `TEXT`/`BIGINT` columns (see [`crate::store`]).

use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::messages::{ChatMessage, ChatRequest};
use crate::mesh::MeshError;
use crate::store::time::rfc3339_millis;
use crate::store::{db_error, Store};

/// Status of a request nobody answered yet.
pub const PENDING: &str = "pending";
/// Status of an accepted request.
pub const ACCEPTED: &str = "accepted";

const REQUEST_COLUMNS: &str = "r.id, r.from_user_id, f.username, r.to_user_id, t.username, \
                               r.status, r.created_at, r.updated_at";
const REQUEST_FROM: &str = "chat_requests r JOIN users f ON f.id = r.from_user_id \
                            JOIN users t ON t.id = r.to_user_id";
const MESSAGE_COLUMNS: &str = "id, sender_id, recipient_id, ciphertext, nonce, created_at";

fn request(row: &AnyRow) -> Result<ChatRequest, sqlx::Error> {
    Ok(ChatRequest {
        id: row.try_get(0)?,
        from_user_id: row.try_get(1)?,
        from_username: row.try_get(2)?,
        to_user_id: row.try_get(3)?,
        to_username: row.try_get(4)?,
        status: row.try_get(5)?,
        created_at: rfc3339_millis(row.try_get(6)?),
        updated_at: rfc3339_millis(row.try_get(7)?),
    })
}

fn message(row: &AnyRow) -> Result<ChatMessage, sqlx::Error> {
    Ok(ChatMessage {
        id: row.try_get(0)?,
        sender_id: row.try_get(1)?,
        recipient_id: row.try_get(2)?,
        ciphertext: row.try_get(3)?,
        nonce: row.try_get(4)?,
        created_at: rfc3339_millis(row.try_get(5)?),
    })
}

/// The id of the user with this username (ignoring case).
pub async fn user_by_username(store: &Store, username: &str) -> Result<Option<String>, MeshError> {
    sqlx::query("SELECT id FROM users WHERE username_lower = $1")
        .bind(username.to_lowercase())
        .fetch_optional(store.pool())
        .await
        .and_then(|row| row.map(|r| r.try_get(0)).transpose())
        .map_err(db_error)
}

/// Whether a user with this id exists.
pub async fn user_exists(store: &Store, id: &str) -> Result<bool, MeshError> {
    sqlx::query("SELECT 1 FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map(|row| row.is_some())
        .map_err(db_error)
}

/// Whether `contact_id` is a contact of `user_id`.
pub async fn is_contact(store: &Store, user_id: &str, contact_id: &str) -> Result<bool, MeshError> {
    sqlx::query("SELECT 1 FROM contacts WHERE user_id = $1 AND contact_id = $2")
        .bind(user_id)
        .bind(contact_id)
        .fetch_optional(store.pool())
        .await
        .map(|row| row.is_some())
        .map_err(db_error)
}

/// A pending request between the two users, in either direction.
pub async fn pending_between(
    store: &Store,
    a: &str,
    b: &str,
) -> Result<Option<ChatRequest>, MeshError> {
    let sql = format!(
        "SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM} WHERE r.status = $3 AND \
         ((r.from_user_id = $1 AND r.to_user_id = $2) OR (r.from_user_id = $2 AND r.to_user_id = $1))"
    );
    sqlx::query(&sql)
        .bind(a)
        .bind(b)
        .bind(PENDING)
        .fetch_optional(store.pool())
        .await
        .and_then(|row| row.as_ref().map(request).transpose())
        .map_err(db_error)
}

/// Inserts a pending request unless `from` has `max_pending` pending requests already
/// (counted in the same statement); whether it was inserted. Run it in a transaction that
/// holds the sender's quota lock (`crate::common::quota::hold`).
pub async fn insert_request<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    id: &str,
    from: &str,
    to: &str,
    now: i64,
    max_pending: u32,
) -> Result<bool, MeshError> {
    let done = sqlx::query(
        "INSERT INTO chat_requests (id, from_user_id, to_user_id, status, created_at, updated_at) \
         SELECT $1, $2, $3, $4, $5, $5 WHERE (SELECT COUNT(*) FROM chat_requests \
         WHERE from_user_id = $2 AND status = $4) < $6",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(PENDING)
    .bind(now)
    .bind(i64::from(max_pending))
    .execute(db)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// One request by id.
pub async fn get_request(store: &Store, id: &str) -> Result<Option<ChatRequest>, MeshError> {
    let sql = format!("SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM} WHERE r.id = $1");
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .and_then(|row| row.as_ref().map(request).transpose())
        .map_err(db_error)
}

/// The pending requests addressed to `user_id`, oldest first.
pub async fn incoming(store: &Store, user_id: &str) -> Result<Vec<ChatRequest>, MeshError> {
    let sql = format!(
        "SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM} WHERE r.to_user_id = $1 AND r.status = $2 \
         ORDER BY r.created_at, r.id"
    );
    let rows = sqlx::query(&sql)
        .bind(user_id)
        .bind(PENDING)
        .fetch_all(store.pool())
        .await
        .map_err(db_error)?;
    rows.iter()
        .map(request)
        .collect::<Result<_, _>>()
        .map_err(db_error)
}

/// Marks a pending request addressed to `to` accepted and makes both users contacts of
/// each other, in one transaction. `false` when the request was not pending any more
/// (a racing accept won).
pub async fn accept(
    store: &Store,
    id: &str,
    from: &str,
    to: &str,
    now: i64,
) -> Result<bool, MeshError> {
    let mut tx = store.writer().begin().await.map_err(db_error)?;
    let done = sqlx::query(
        "UPDATE chat_requests SET status = $3, updated_at = $4 \
         WHERE id = $1 AND to_user_id = $2 AND status = $5",
    )
    .bind(id)
    .bind(to)
    .bind(ACCEPTED)
    .bind(now)
    .bind(PENDING)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    if done.rows_affected() == 0 {
        tx.rollback().await.map_err(db_error)?;
        return Ok(false);
    }
    for (user, contact) in [(from, to), (to, from)] {
        sqlx::query(
            "INSERT INTO contacts (user_id, contact_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, contact_id) DO NOTHING",
        )
        .bind(user)
        .bind(contact)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(true)
}

/// Stores one message.
pub async fn insert_message(
    store: &Store,
    m: &ChatMessage,
    created_at: i64,
) -> Result<(), MeshError> {
    sqlx::query(
        "INSERT INTO chat_messages (id, sender_id, recipient_id, ciphertext, nonce, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&m.id)
    .bind(&m.sender_id)
    .bind(&m.recipient_id)
    .bind(&m.ciphertext)
    .bind(&m.nonce)
    .bind(created_at)
    .execute(store.writer())
    .await
    .map_err(db_error)?;
    Ok(())
}

async fn page(
    store: &Store,
    filter: &str,
    order: &str,
    binds: &[&str],
    limit: i64,
    offset: i64,
) -> Result<(Vec<ChatMessage>, i64), MeshError> {
    let count_sql = format!("SELECT COUNT(*) FROM chat_messages WHERE {filter}");
    let mut count = sqlx::query(&count_sql);
    for b in binds {
        count = count.bind(*b);
    }
    let total: i64 = count
        .fetch_one(store.pool())
        .await
        .and_then(|row| row.try_get(0))
        .map_err(db_error)?;
    let n = binds.len();
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE {filter} ORDER BY {order} LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let mut query = sqlx::query(&sql);
    for b in binds {
        query = query.bind(*b);
    }
    let rows = query
        .bind(limit)
        .bind(offset)
        .fetch_all(store.pool())
        .await
        .map_err(db_error)?;
    let items = rows
        .iter()
        .map(message)
        .collect::<Result<_, _>>()
        .map_err(db_error)?;
    Ok((items, total))
}

/// Every message `user_id` sent or received, newest first.
pub async fn messages_of(
    store: &Store,
    user_id: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ChatMessage>, i64), MeshError> {
    page(
        store,
        "sender_id = $1 OR recipient_id = $1",
        "created_at DESC, id DESC",
        &[user_id],
        limit,
        offset,
    )
    .await
}

/// The conversation between `a` and `b`, oldest first.
pub async fn conversation(
    store: &Store,
    a: &str,
    b: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ChatMessage>, i64), MeshError> {
    page(
        store,
        "(sender_id = $1 AND recipient_id = $2) OR (sender_id = $2 AND recipient_id = $1)",
        "created_at, id",
        &[a, b],
        limit,
        offset,
    )
    .await
}
