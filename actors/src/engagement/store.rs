//! All SQL of the `engagement` service: tables `engagement_activities`, `engagement_points`
//! and `engagement_feedback` (see `actors/migrations/0009_engagement.sql`).
//!
//! Awards are written many to a transaction (the service's group commit): the activity
//! rows, then the users' running totals, then (by the service) the events. An
//! activity that comes from a bus event carries the event's id in `source_event`, which is
//! unique, so a redelivered event (on any node) inserts nothing and awards nothing; an
//! event-earned activity about a thing (a lesson, an event) also carries `once_key`, unique
//! too, so doing the same thing again (a lesson unmarked and marked) earns nothing more.

use std::collections::{HashMap, HashSet};

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row as _};

use super::messages::{DayActive, Feedback, KindCount, Standing};
use crate::mesh::MeshError;
use crate::store::time::rfc3339_millis;
use crate::store::{db_error, values, Store};

/// An activity to award.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewActivity {
    /// Id (a UUID).
    pub id: String,
    /// The user awarded.
    pub user_id: String,
    /// The activity kind.
    pub kind: &'static str,
    /// What it was about; may be empty.
    pub reference: String,
    /// Points awarded.
    pub points: i64,
    /// The bus event it came from, if any (unique).
    pub source_event: Option<String>,
    /// For what may earn points once only, its key (unique), e.g. `kind:user:lesson`.
    pub once_key: Option<String>,
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Unix ms.
    pub created_at: i64,
}

/// Rows in one multi-row `INSERT` (9 parameters each).
const ROWS_PER_INSERT: usize = 256;

/// Records the activities on `conn` (inside the caller's transaction); answers the ids of
/// those recorded now. One whose `source_event` or `once_key` was recorded before (in the
/// store, or earlier in `activities`) is not.
pub async fn insert_activities(
    conn: &mut AnyConnection,
    activities: &[NewActivity],
) -> Result<HashSet<String>, MeshError> {
    let mut fresh = HashSet::new();
    for chunk in activities.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO engagement_activities \
             (id, user_id, kind, ref, points, source_event, once_key, day, created_at) \
             VALUES {} ON CONFLICT DO NOTHING RETURNING id",
            values(chunk.len(), 9)
        );
        let mut q = sqlx::query(&sql);
        for a in chunk {
            q = q
                .bind(&a.id)
                .bind(&a.user_id)
                .bind(a.kind)
                .bind(&a.reference)
                .bind(a.points)
                .bind(&a.source_event)
                .bind(&a.once_key)
                .bind(&a.day)
                .bind(a.created_at);
        }
        for row in q.fetch_all(&mut *conn).await.map_err(db_error)? {
            fresh.insert(row.try_get::<String, _>(0).map_err(db_error)?);
        }
    }
    Ok(fresh)
}

/// Adds `(user, points)` to each user's total on `conn` (inside the caller's transaction;
/// one entry per user); answers every user's total after it.
pub async fn add_points(
    conn: &mut AnyConnection,
    added: &[(&str, i64)],
    now: i64,
) -> Result<HashMap<String, i64>, MeshError> {
    let mut totals = HashMap::with_capacity(added.len());
    for chunk in added.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO engagement_points (user_id, points, updated_at) VALUES {} \
             ON CONFLICT (user_id) DO UPDATE SET points = engagement_points.points + excluded.points, \
             updated_at = excluded.updated_at RETURNING user_id, points",
            values(chunk.len(), 3)
        );
        let mut q = sqlx::query(&sql);
        for (user, points) in chunk {
            q = q.bind(*user).bind(*points).bind(now);
        }
        for row in q.fetch_all(&mut *conn).await.map_err(db_error)? {
            totals.insert(
                row.try_get::<String, _>(0).map_err(db_error)?,
                row.try_get::<i64, _>(1).map_err(db_error)?,
            );
        }
    }
    Ok(totals)
}

/// `user_id`'s points (0 before any activity).
pub async fn points(store: &Store, user_id: &str) -> Result<i64, MeshError> {
    let row = sqlx::query("SELECT points FROM engagement_points WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(store.pool())
        .await
        .map_err(db_error)?;
    match row {
        Some(r) => r.try_get(0).map_err(db_error),
        None => Ok(0),
    }
}

/// Whether a user of that id exists (the `users` table, read only, as `chat` does).
pub async fn user_exists(store: &Store, user_id: &str) -> Result<bool, MeshError> {
    Ok(sqlx::query("SELECT 1 FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(store.pool())
        .await
        .map_err(db_error)?
        .is_some())
}

/// The top `limit` users by points, with their usernames.
pub async fn leaderboard(store: &Store, limit: i64) -> Result<Vec<Standing>, MeshError> {
    sqlx::query(
        "SELECT p.user_id, COALESCE(u.username, '') AS username, p.points \
         FROM engagement_points p LEFT JOIN users u ON u.id = p.user_id \
         WHERE p.points > 0 ORDER BY p.points DESC, p.updated_at ASC, p.user_id ASC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| {
        Ok(Standing {
            user_id: r.try_get("user_id").map_err(db_error)?,
            username: r.try_get("username").map_err(db_error)?,
            points: r.try_get("points").map_err(db_error)?,
        })
    })
    .collect()
}

/// Stores one feedback.
pub async fn insert_feedback(
    store: &Store,
    f: &Feedback,
    created_at: i64,
) -> Result<(), MeshError> {
    sqlx::query(
        "INSERT INTO engagement_feedback (id, user_id, rating, text, ref, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&f.id)
    .bind(&f.user_id)
    .bind(f.rating)
    .bind(&f.text)
    .bind(&f.reference)
    .bind(created_at)
    .execute(store.writer())
    .await
    .map_err(db_error)?;
    Ok(())
}

fn feedback_of(r: &AnyRow) -> Result<Feedback, MeshError> {
    Ok(Feedback {
        id: r.try_get("id").map_err(db_error)?,
        user_id: r.try_get("user_id").map_err(db_error)?,
        rating: r.try_get("rating").map_err(db_error)?,
        text: r.try_get("text").map_err(db_error)?,
        reference: r.try_get("ref").map_err(db_error)?,
        created_at: rfc3339_millis(r.try_get("created_at").map_err(db_error)?),
    })
}

/// One page of feedback, newest first, and the count of all.
pub async fn feedback(
    store: &Store,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Feedback>, u64), MeshError> {
    let items = sqlx::query(
        "SELECT id, user_id, rating, text, ref, created_at FROM engagement_feedback \
         ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
    )
    .bind(limit)
    .bind(offset)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?
    .iter()
    .map(feedback_of)
    .collect::<Result<Vec<_>, _>>()?;
    let total: i64 = sqlx::query("SELECT COUNT(*) FROM engagement_feedback")
        .fetch_one(store.pool())
        .await
        .map_err(db_error)?
        .try_get(0)
        .map_err(db_error)?;
    Ok((items, total.max(0) as u64))
}

/// Distinct active users per day from `since` (`YYYY-MM-DD`) on, newest day first.
pub async fn active_users(store: &Store, since: &str) -> Result<Vec<DayActive>, MeshError> {
    sqlx::query(
        "SELECT day, COUNT(DISTINCT user_id) AS users FROM engagement_activities \
         WHERE day >= $1 GROUP BY day ORDER BY day DESC",
    )
    .bind(since)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| {
        Ok(DayActive {
            day: r.try_get("day").map_err(db_error)?,
            users: r.try_get("users").map_err(db_error)?,
        })
    })
    .collect()
}

/// The `limit` most frequent activity kinds with the points awarded for them.
pub async fn top_activities(store: &Store, limit: i64) -> Result<Vec<KindCount>, MeshError> {
    sqlx::query(
        "SELECT kind, COUNT(*) AS n, CAST(COALESCE(SUM(points), 0) AS BIGINT) AS total \
         FROM engagement_activities GROUP BY kind ORDER BY n DESC, kind ASC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| {
        Ok(KindCount {
            kind: r.try_get("kind").map_err(db_error)?,
            count: r.try_get("n").map_err(db_error)?,
            points: r.try_get("total").map_err(db_error)?,
        })
    })
    .collect()
}

/// How much feedback there is and its rating sum.
pub async fn feedback_stats(store: &Store) -> Result<(i64, i64), MeshError> {
    let r = sqlx::query(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(rating), 0) AS BIGINT) AS total FROM engagement_feedback",
    )
    .fetch_one(store.pool())
    .await
    .map_err(db_error)?;
    Ok((
        r.try_get("n").map_err(db_error)?,
        r.try_get("total").map_err(db_error)?,
    ))
}
