//! All SQL of reminders: scheduling inside the caller's transaction, and what the keeper
//! reads and writes to fire them.

use sqlx::any::AnyRow;
use sqlx::{Any, Row as _, Transaction};

use crate::mesh::MeshError;
use crate::store::{db_error, Store};

/// Shards reminders are spread over; each is owned by one node at a time.
pub const SHARDS: u32 = 64;

/// Outcome of a reminder published when due.
pub const FIRED: &str = "fired";
/// Outcome of a reminder that came due only after its `expires_at` (its owner was down
/// past the start of what it reminds of): recorded, not published.
pub const EXPIRED: &str = "expired";

/// The shard of a reminder id (FNV-1a over its bytes): stable across nodes and releases.
pub fn shard_of(id: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % SHARDS
}

/// A reminder to schedule: publish an event of `kind` about `user_id` at `due_at`.
#[derive(Clone, Debug, PartialEq)]
pub struct Due {
    /// What it belongs to, e.g. `event:<id>` or `booking:<id>`; cancelling that drops it.
    pub subject: String,
    /// The user the published event is about (its notification's recipient).
    pub user_id: String,
    /// The event kind published when due.
    pub kind: &'static str,
    /// When it is due, unix ms.
    pub due_at: i64,
    /// After this (unix ms) it is recorded as expired instead of published; `None`: never.
    pub expires_at: Option<i64>,
    /// The published event's payload.
    pub payload: serde_json::Value,
}

/// Schedules `due` inside `tx`, replacing the reminder of the same subject, user and kind
/// (fired or not). Answers the new reminder's id.
pub async fn schedule(
    tx: &mut Transaction<'_, Any>,
    due: &Due,
    now: i64,
) -> Result<String, MeshError> {
    let ids = schedule_all(tx, std::slice::from_ref(due), now).await?;
    ids.into_iter()
        .next()
        .ok_or_else(|| MeshError::internal("a reminder was not scheduled"))
}

/// Rows in one multi-row upsert (9 parameters each).
const ROWS_PER_UPSERT: usize = 256;

/// [`schedule`] for many reminders (each subject, user and kind at most once), a few
/// statements in all; answers their new ids in order.
pub async fn schedule_all(
    tx: &mut Transaction<'_, Any>,
    due: &[Due],
    now: i64,
) -> Result<Vec<String>, MeshError> {
    let ids: Vec<String> = due
        .iter()
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    for (chunk, chunk_ids) in due.chunks(ROWS_PER_UPSERT).zip(ids.chunks(ROWS_PER_UPSERT)) {
        // A reminder of the same subject, user and kind (fired or not) is replaced by the
        // new one, under the new id, unclaimed.
        let sql = format!(
            "INSERT INTO reminders (id, subject, user_id, kind, due_at, expires_at, shard, payload, \
             created_at) VALUES {} \
             ON CONFLICT (subject, user_id, kind) DO UPDATE SET id = excluded.id, \
             due_at = excluded.due_at, expires_at = excluded.expires_at, shard = excluded.shard, \
             payload = excluded.payload, created_at = excluded.created_at, claimed_by = NULL, \
             claimed_until = NULL, fired_at = NULL, fired_by = NULL, outcome = NULL",
            crate::store::values(chunk.len(), 9)
        );
        let mut q = sqlx::query(&sql);
        for (d, id) in chunk.iter().zip(chunk_ids) {
            q = q
                .bind(id.as_str())
                .bind(&d.subject)
                .bind(&d.user_id)
                .bind(d.kind)
                .bind(d.due_at)
                .bind(d.expires_at)
                .bind(i64::from(shard_of(id)))
                .bind(d.payload.to_string())
                .bind(now);
        }
        q.execute(&mut **tx).await.map_err(db_error)?;
    }
    Ok(ids)
}

/// Drops the reminders of `subject` inside `tx` (only `user`'s when given), fired or not.
/// Answers how many there were.
pub async fn drop_for(
    tx: &mut Transaction<'_, Any>,
    subject: &str,
    user: Option<&str>,
) -> Result<u64, MeshError> {
    let done = match user {
        Some(u) => sqlx::query("DELETE FROM reminders WHERE subject = $1 AND user_id = $2")
            .bind(subject)
            .bind(u),
        None => sqlx::query("DELETE FROM reminders WHERE subject = $1").bind(subject),
    }
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected())
}

/// One pending reminder, as the keeper holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    /// Its id (and the published event's).
    pub id: String,
    /// Subject.
    pub subject: String,
    /// Recipient.
    pub user_id: String,
    /// Event kind.
    pub kind: String,
    /// Due, unix ms.
    pub due_at: i64,
    /// Expiry, unix ms, if any.
    pub expires_at: Option<i64>,
    /// The event payload, as JSON text.
    pub payload: String,
}

fn pending_from(r: &AnyRow) -> Result<Pending, sqlx::Error> {
    Ok(Pending {
        id: r.try_get("id")?,
        subject: r.try_get("subject")?,
        user_id: r.try_get("user_id")?,
        kind: r.try_get("kind")?,
        due_at: r.try_get("due_at")?,
        expires_at: r.try_get("expires_at")?,
        payload: r.try_get("payload")?,
    })
}

/// The unfired reminders of `shards` due by `until` that nobody holds at `now`, soonest
/// first, at most `limit`.
pub async fn upcoming(
    store: &Store,
    shards: &[u32],
    until: i64,
    now: i64,
    limit: i64,
) -> Result<Vec<Pending>, MeshError> {
    if shards.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, subject, user_id, kind, due_at, expires_at, payload FROM reminders \
         WHERE fired_at IS NULL AND shard IN ({}) AND due_at <= $1 \
         AND (claimed_until IS NULL OR claimed_until < $2) ORDER BY due_at LIMIT $3",
        crate::store::placeholders(4, shards.len())
    );
    let mut q = sqlx::query(&sql).bind(until).bind(now).bind(limit);
    for s in shards {
        q = q.bind(i64::from(*s));
    }
    let rows = q.fetch_all(store.pool()).await.map_err(db_error)?;
    rows.iter()
        .map(pending_from)
        .collect::<Result<_, _>>()
        .map_err(db_error)
}

/// Holds the unfired, unheld reminders among `ids` that are due at `now` for `node` until
/// `until`; answers them as they are now (another node may hold or have fired the rest; a
/// reminder moved later or dropped since it was loaded is not among them).
pub async fn claim<'e>(
    conn: impl sqlx::Executor<'e, Database = Any>,
    ids: &[&str],
    node: &str,
    now: i64,
    until: i64,
) -> Result<Vec<Pending>, MeshError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "UPDATE reminders SET claimed_by = $1, claimed_until = $2 \
         WHERE id IN ({}) AND fired_at IS NULL AND due_at <= $3 \
         AND (claimed_until IS NULL OR claimed_until < $3) \
         RETURNING id, subject, user_id, kind, due_at, expires_at, payload",
        crate::store::placeholders(4, ids.len())
    );
    let mut q = sqlx::query(&sql).bind(node).bind(until).bind(now);
    for id in ids {
        q = q.bind(*id);
    }
    let rows = q.fetch_all(conn).await.map_err(db_error)?;
    rows.iter()
        .map(pending_from)
        .collect::<Result<_, _>>()
        .map_err(db_error)
}

/// Records `ids` as done by `node` at `at` with `outcome` ([`FIRED`] or [`EXPIRED`]).
pub async fn record<'e>(
    conn: impl sqlx::Executor<'e, Database = Any>,
    ids: &[String],
    node: &str,
    at: i64,
    outcome: &str,
) -> Result<(), MeshError> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE reminders SET fired_at = $1, fired_by = $2, outcome = $3, claimed_until = NULL \
         WHERE id IN ({}) AND fired_at IS NULL",
        crate::store::placeholders(4, ids.len())
    );
    let mut q = sqlx::query(&sql).bind(at).bind(node).bind(outcome);
    for id in ids {
        q = q.bind(id.as_str());
    }
    q.execute(conn).await.map_err(db_error)?;
    Ok(())
}

/// Lets go of `ids` held by `node` (publishing failed): the next poll tries again.
pub async fn release(store: &Store, ids: &[String], node: &str) -> Result<(), MeshError> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE reminders SET claimed_by = NULL, claimed_until = NULL \
         WHERE claimed_by = $1 AND fired_at IS NULL AND id IN ({})",
        crate::store::placeholders(2, ids.len())
    );
    let mut q = sqlx::query(&sql).bind(node);
    for id in ids {
        q = q.bind(id.as_str());
    }
    q.execute(store.writer()).await.map_err(db_error)?;
    Ok(())
}

/// A reminder as the admin list shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    /// The pending part.
    pub reminder: Pending,
    /// Its shard.
    pub shard: u32,
    /// When it was fired (or expired), unix ms.
    pub fired_at: Option<i64>,
    /// Which node fired it.
    pub fired_by: Option<String>,
    /// [`FIRED`] or [`EXPIRED`] once done.
    pub outcome: Option<String>,
}

/// Reminders filtered by user and subject (each optional) and by whether they are still
/// pending, soonest due first, one page; with the total.
pub async fn list(
    store: &Store,
    user: Option<&str>,
    subject: Option<&str>,
    pending: Option<bool>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Listed>, i64), MeshError> {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<&str> = Vec::new();
    for (column, value) in [("user_id", user), ("subject", subject)] {
        if let Some(v) = value {
            args.push(v);
            clauses.push(format!("{column} = ${}", args.len()));
        }
    }
    match pending {
        Some(true) => clauses.push("fired_at IS NULL".into()),
        Some(false) => clauses.push("fired_at IS NOT NULL".into()),
        None => {}
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    let count_sql = format!("SELECT COUNT(*) FROM reminders{filter}");
    let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
    for a in &args {
        count = count.bind(*a);
    }
    let total = count.fetch_one(store.pool()).await.map_err(db_error)?;
    let sql = format!(
        "SELECT id, subject, user_id, kind, due_at, expires_at, payload, shard, fired_at, \
         fired_by, outcome FROM reminders{filter} ORDER BY due_at, id LIMIT ${} OFFSET ${}",
        args.len() + 1,
        args.len() + 2
    );
    let mut q = sqlx::query(&sql);
    for a in &args {
        q = q.bind(*a);
    }
    let rows = q
        .bind(limit)
        .bind(offset)
        .fetch_all(store.pool())
        .await
        .map_err(db_error)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let shard: i64 = r.try_get("shard").map_err(db_error)?;
        out.push(Listed {
            reminder: pending_from(r).map_err(db_error)?,
            shard: u32::try_from(shard).unwrap_or(0),
            fired_at: r.try_get("fired_at").map_err(db_error)?,
            fired_by: r.try_get("fired_by").map_err(db_error)?,
            outcome: r.try_get("outcome").map_err(db_error)?,
        });
    }
    Ok((out, total))
}
