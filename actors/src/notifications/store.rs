//! All SQL of the `notifications` service: tables `notification_log`, `notifications` and
//! `notification_prefs` (migration 0003).

use std::collections::HashSet;

use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::messages::{LogRow, Notification, Preferences};
use crate::mesh::MeshError;
use crate::store::time::rfc3339_millis;
use crate::store::{db_error, values, Store};

/// A log row to write.
#[derive(Clone, Debug)]
pub struct NewLogRow {
    /// Event id.
    pub event_id: String,
    /// Kind.
    pub kind: String,
    /// User, or empty.
    pub user_id: String,
    /// Publishing node.
    pub source: String,
    /// Publish time, unix ms.
    pub event_time: i64,
    /// Payload JSON without secrets.
    pub payload: String,
    /// Comma-separated channels.
    pub channels: String,
    /// Now.
    pub created_at: i64,
}

/// A notification to write.
#[derive(Clone, Debug)]
pub struct NewNotification {
    /// Id (the event id).
    pub id: String,
    /// Recipient.
    pub user_id: String,
    /// Kind.
    pub kind: String,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Payload JSON.
    pub data: String,
    /// Now.
    pub created_at: i64,
}

/// What consuming one event writes: its log row, and the user's notification when there
/// is one. Both are keyed by the event id.
#[derive(Clone, Debug)]
pub struct Record {
    /// The log row.
    pub log: NewLogRow,
    /// The notification, if any.
    pub notification: Option<NewNotification>,
}

/// Rows in one multi-row `INSERT` (8 parameters each).
const ROWS_PER_INSERT: usize = 256;

/// Writes what consuming `records` produces, in one transaction: their log rows, then the
/// notifications of the events that were new. An event whose log row is already there
/// (in the store, or earlier in `records`) was consumed before: nothing of it is written.
/// Answers, per record, whether its event was new.
pub async fn record(store: &Store, records: &[Record]) -> Result<Vec<bool>, MeshError> {
    if records.iter().all(|r| r.notification.is_none()) {
        // Log rows alone: one statement per chunk, each atomic on its own; a chunk that
        // failed leaves nothing, and its events are consumed again on redelivery.
        let mut fresh = HashSet::new();
        for chunk in records.chunks(ROWS_PER_INSERT) {
            fresh.extend(insert_log(store.writer(), chunk).await?);
        }
        return Ok(answers(records, fresh).0);
    }
    let mut tx = store.begin().await?;
    let mut fresh = HashSet::new();
    for chunk in records.chunks(ROWS_PER_INSERT) {
        fresh.extend(insert_log(&mut *tx, chunk).await?);
    }
    let (answers, notify) = answers(records, fresh);
    for chunk in notify.chunks(ROWS_PER_INSERT) {
        let mut sql = String::from(
            "INSERT INTO notifications (id, user_id, kind, title, body, data, read_at, created_at) VALUES ",
        );
        sql.push_str(&values(chunk.len(), 8));
        sql.push_str(" ON CONFLICT (id) DO NOTHING");
        let mut q = sqlx::query(&sql);
        for n in chunk {
            q = q
                .bind(&n.id)
                .bind(&n.user_id)
                .bind(&n.kind)
                .bind(&n.title)
                .bind(&n.body)
                .bind(&n.data)
                .bind(0i64)
                .bind(n.created_at);
        }
        q.execute(&mut *tx).await.map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(answers)
}

/// Inserts the log rows of `records` (the ones not there yet); answers the event ids
/// written.
async fn insert_log<'e>(
    conn: impl sqlx::Executor<'e, Database = sqlx::Any>,
    records: &[Record],
) -> Result<Vec<String>, MeshError> {
    let mut sql = String::from(
        "INSERT INTO notification_log (event_id, kind, user_id, source, event_time, payload, channels, created_at) VALUES ",
    );
    sql.push_str(&values(records.len(), 8));
    sql.push_str(" ON CONFLICT (event_id) DO NOTHING RETURNING event_id");
    let mut q = sqlx::query(&sql);
    for Record { log: r, .. } in records {
        q = q
            .bind(&r.event_id)
            .bind(&r.kind)
            .bind(&r.user_id)
            .bind(&r.source)
            .bind(r.event_time)
            .bind(&r.payload)
            .bind(&r.channels)
            .bind(r.created_at);
    }
    let rows = q.fetch_all(conn).await.map_err(db_error)?;
    rows.iter()
        .map(|r| r.try_get::<String, _>(0).map_err(db_error))
        .collect()
}

/// Per record, whether its event was written now (the first record of each written id),
/// and the notifications to write with them.
fn answers(records: &[Record], mut fresh: HashSet<String>) -> (Vec<bool>, Vec<&NewNotification>) {
    let mut notify = Vec::new();
    let answers = records
        .iter()
        .map(|r| {
            let new = fresh.remove(&r.log.event_id);
            if new {
                notify.extend(r.notification.as_ref());
            }
            new
        })
        .collect();
    (answers, notify)
}

const NOTIFICATION_COLUMNS: &str = "id, user_id, kind, title, body, data, read_at, created_at";

fn notification(row: &AnyRow) -> Result<Notification, sqlx::Error> {
    let read_at: i64 = row.try_get("read_at")?;
    Ok(Notification {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        kind: row.try_get("kind")?,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        data_json: row.try_get("data")?,
        read: read_at != 0,
        read_at: if read_at == 0 {
            String::new()
        } else {
            rfc3339_millis(read_at)
        },
        created_at: rfc3339_millis(row.try_get("created_at")?),
    })
}

/// One page of a user's notifications, newest first, with the matching total.
pub async fn list(
    store: &Store,
    user_id: &str,
    unread_only: bool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Notification>, i64), MeshError> {
    let filter = if unread_only {
        "user_id = $1 AND read_at = 0"
    } else {
        "user_id = $1"
    };
    let rows = sqlx::query(&format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE {filter} \
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(user_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    let items = rows
        .iter()
        .map(notification)
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_error)?;
    let total: i64 = sqlx::query(&format!(
        "SELECT COUNT(*) AS n FROM notifications WHERE {filter}"
    ))
    .bind(user_id)
    .fetch_one(store.pool())
    .await
    .and_then(|r| r.try_get("n"))
    .map_err(db_error)?;
    Ok((items, total))
}

/// Unread notifications of a user.
pub async fn unread(store: &Store, user_id: &str) -> Result<i64, MeshError> {
    sqlx::query("SELECT COUNT(*) AS n FROM notifications WHERE user_id = $1 AND read_at = 0")
        .bind(user_id)
        .fetch_one(store.pool())
        .await
        .and_then(|r| r.try_get("n"))
        .map_err(db_error)
}

/// Marks a notification of `user_id` read (keeping the first read time); answers it.
pub async fn mark_read(
    store: &Store,
    user_id: &str,
    id: &str,
    now: i64,
) -> Result<Option<Notification>, MeshError> {
    sqlx::query(
        "UPDATE notifications SET read_at = $1 WHERE id = $2 AND user_id = $3 AND read_at = 0",
    )
    .bind(now)
    .bind(id)
    .bind(user_id)
    .execute(store.writer())
    .await
    .map_err(db_error)?;
    let row = sqlx::query(&format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(store.pool())
    .await
    .map_err(db_error)?;
    row.as_ref().map(notification).transpose().map_err(db_error)
}

/// A user's preferences (defaults when never set: every channel on).
pub async fn prefs(store: &Store, user_id: &str) -> Result<Preferences, MeshError> {
    let row =
        sqlx::query("SELECT email, log, updated_at FROM notification_prefs WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(store.pool())
            .await
            .map_err(db_error)?;
    let Some(row) = row else {
        return Ok(Preferences {
            user_id: user_id.to_string(),
            email: true,
            log: true,
            updated_at: String::new(),
        });
    };
    let get = |c: &str| row.try_get::<i64, _>(c).map_err(db_error);
    Ok(Preferences {
        user_id: user_id.to_string(),
        email: get("email")? != 0,
        log: get("log")? != 0,
        updated_at: rfc3339_millis(get("updated_at")?),
    })
}

/// Stores a user's preferences.
pub async fn put_prefs(store: &Store, p: &Preferences, now: i64) -> Result<(), MeshError> {
    sqlx::query(
        "INSERT INTO notification_prefs (user_id, email, log, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, log = excluded.log, \
         updated_at = excluded.updated_at",
    )
    .bind(&p.user_id)
    .bind(i64::from(p.email))
    .bind(i64::from(p.log))
    .bind(now)
    .execute(store.writer())
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Filters of the log.
pub struct LogFilter<'a> {
    /// Exact kind, or a prefix when it ends with `*`; empty = any.
    pub kind: &'a str,
    /// User; empty = any.
    pub user_id: &'a str,
    /// Lower bound of `created_at` (0 = none).
    pub since_ms: i64,
    /// Upper bound (exclusive) of `created_at` (0 = none).
    pub until_ms: i64,
}

fn log_row(row: &AnyRow) -> Result<LogRow, sqlx::Error> {
    let channels: String = row.try_get("channels")?;
    Ok(LogRow {
        event_id: row.try_get("event_id")?,
        kind: row.try_get("kind")?,
        user_id: row.try_get("user_id")?,
        source: row.try_get("source")?,
        event_time: rfc3339_millis(row.try_get("event_time")?),
        payload_json: row.try_get("payload")?,
        channels: channels
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect(),
        created_at: rfc3339_millis(row.try_get("created_at")?),
    })
}

/// One page of the log, newest first, with the matching total.
pub async fn logs(
    store: &Store,
    f: &LogFilter<'_>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<LogRow>, i64), MeshError> {
    // Every filter is always bound; an empty one matches everything.
    let (kind_clause, kind) = match f.kind.strip_suffix('*') {
        Some(prefix) => (
            "($1 = '' OR kind LIKE $1 ESCAPE '\\')",
            crate::users::store::like_prefix(prefix),
        ),
        None => ("($1 = '' OR kind = $1)", f.kind.to_string()),
    };
    let filter = format!(
        "{kind_clause} AND ($2 = '' OR user_id = $2) AND ($3 = 0 OR created_at >= $3) \
         AND ($4 = 0 OR created_at < $4)"
    );
    let rows = sqlx::query(&format!(
        "SELECT event_id, kind, user_id, source, event_time, payload, channels, created_at \
         FROM notification_log WHERE {filter} ORDER BY created_at DESC, event_id DESC LIMIT $5 OFFSET $6"
    ))
    .bind(&kind)
    .bind(f.user_id)
    .bind(f.since_ms)
    .bind(f.until_ms)
    .bind(limit)
    .bind(offset)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    let items = rows
        .iter()
        .map(log_row)
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_error)?;
    let total: i64 = sqlx::query(&format!(
        "SELECT COUNT(*) AS n FROM notification_log WHERE {filter}"
    ))
    .bind(&kind)
    .bind(f.user_id)
    .bind(f.since_ms)
    .bind(f.until_ms)
    .fetch_one(store.pool())
    .await
    .and_then(|r| r.try_get("n"))
    .map_err(db_error)?;
    Ok((items, total))
}

/// Publish-to-row latencies (ms) of the benchmark events of run `run`.
pub async fn bench_latencies(store: &Store, kind: &str, run: &str) -> Result<Vec<i64>, MeshError> {
    let pattern = format!("%\"run\":\"{run}\"%");
    let rows = sqlx::query(
        "SELECT created_at - event_time AS latency FROM notification_log \
         WHERE kind = $1 AND payload LIKE $2",
    )
    .bind(kind)
    .bind(pattern)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| r.try_get::<i64, _>("latency"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_error)
}
