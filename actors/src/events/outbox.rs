//! The transactional outbox: events as rows of the `outbox` table (migration 0016), in the
//! store every node shares.
//!
//! - A service that changes rows writes the events that report the change in the same
//!   transaction ([`Outbox::stage`]), so an acknowledged change always has its events and an
//!   event never outlives a rolled-back change. Publishers without a transaction of their
//!   own go through [`Outbox::insert`] (the bus batches them, one statement per batch).
//! - A relay ([`super::relay`]) on every node claims committed rows with a lease
//!   ([`Outbox::claim`]: `claimed_by`, `claimed_until`; on PostgreSQL `FOR UPDATE SKIP
//!   LOCKED`, so relays on several nodes never wait for each other), delivers them, and
//!   deletes them. It renews its leases while it delivers; a node that dies stops
//!   renewing, and a survivor claims its rows once the lease runs out.
//! - `dead_letters` keeps deliveries that exhausted their attempts and rows quarantined
//!   because they do not hold an event, until an admin replays or drops them.
//!
//! The depth (rows waiting, cluster-wide) is counted by each relay (every second near the
//! bound, every five seconds far from it); above
//! `max_depth` publishing answers `unavailable` (503) instead of taking an event it might
//! not be able to hold.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{AnyConnection, Row as _};
use tokio::sync::Notify;

use super::Event;
use crate::mesh::{Code, MeshError};
use crate::store::time::now_ms;
use crate::store::{db_error, values, Backend, Store};

/// Rows in one multi-row `INSERT` (5 parameters each).
const INSERT_BATCH: usize = 200;
/// The `sink` of a quarantined row's dead letter.
pub const QUARANTINE: &str = "quarantine";

/// A claimed outbox row.
#[derive(Clone, Debug, PartialEq)]
pub struct Claimed {
    /// The row id: the event id, or `<event id>.<sink>` for a one-sink replay.
    pub id: String,
    /// The one sink it goes to; empty = every sink that wants its kind.
    pub sink: String,
    /// The event as JSON (undecodable for a row to quarantine).
    pub body: String,
}

/// A dead letter: a delivery that exhausted its attempts, or a quarantined row.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    /// `<event id>.<sink>` (a quarantined row: `<row id>.quarantine`).
    pub id: String,
    /// The event's id (a quarantined row: its row id).
    pub event_id: String,
    /// The sink that refused it, or [`QUARANTINE`].
    pub sink: String,
    /// The event as JSON (a quarantined row: the body as it was).
    pub body: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure.
    pub last_error: String,
    /// When it was buried (unix ms).
    pub failed_at: i64,
    /// The node that buried it.
    pub node: String,
}

impl DeadLetter {
    /// A delivery of `event` to `sink` that gave up after `attempts`.
    pub fn gave_up(event: &Event, sink: &str, attempts: u32, error: &str, node: &str) -> Self {
        Self {
            id: format!("{}.{sink}", event.id),
            event_id: event.id.clone(),
            sink: sink.to_string(),
            body: serde_json::to_string(event).unwrap_or_default(),
            attempts,
            last_error: error.to_string(),
            failed_at: now_ms(),
            node: node.to_string(),
        }
    }

    /// A row whose body is not an event, kept as it was.
    pub fn quarantined(row: &Claimed, error: &str, node: &str) -> Self {
        Self {
            id: format!("{}.{QUARANTINE}", row.id),
            event_id: row.id.clone(),
            sink: QUARANTINE.to_string(),
            body: row.body.clone(),
            attempts: 0,
            last_error: error.to_string(),
            failed_at: now_ms(),
            node: node.to_string(),
        }
    }

    /// The event it holds; `failed_precondition` for a quarantined body.
    pub fn event(&self) -> Result<Event, MeshError> {
        serde_json::from_str(&self.body).map_err(|e| {
            MeshError::new(
                Code::FailedPrecondition,
                format!("the dead letter does not hold an event: {e}"),
            )
        })
    }
}

/// The outbox, as one node sees it.
pub struct Outbox {
    store: Store,
    node: Arc<str>,
    /// `<node>/<incarnation>`: whose claim a row is under.
    claimer: String,
    max_depth: i64,
    /// Rows waiting, cluster-wide: counted by the relay, raised by this node's inserts.
    depth: AtomicI64,
    /// The last `ord` handed out here (strictly increasing per node).
    last_ord: AtomicI64,
    wake: Notify,
}

impl Outbox {
    /// The outbox in `store`, as node `node` (run `incarnation`) sees it; publishing is
    /// refused past `max_depth` waiting rows.
    pub fn new(store: Store, node: Arc<str>, incarnation: u64, max_depth: u64) -> Arc<Self> {
        Arc::new(Self {
            claimer: format!("{node}/{incarnation}"),
            node,
            store,
            max_depth: i64::try_from(max_depth).unwrap_or(i64::MAX),
            depth: AtomicI64::new(0),
            last_ord: AtomicI64::new(0),
            wake: Notify::new(),
        })
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Rows waiting for delivery, cluster-wide (as last counted, plus this node's inserts).
    pub fn depth(&self) -> i64 {
        self.depth.load(Ordering::Relaxed)
    }

    /// Refuses `n` more events when the outbox is full: `unavailable` (503, with a retry
    /// hint), so a client never gets an acknowledgement for an event with no room.
    pub fn admit(&self, n: usize) -> Result<(), MeshError> {
        if self.depth() + n as i64 > self.max_depth {
            metrics::counter!(super::metrics::REFUSED).increment(n as u64);
            return Err(MeshError::unavailable("the event outbox is full")
                .with_details(serde_json::json!({"reason": "outbox_full", "retry_after_s": 5})));
        }
        Ok(())
    }

    /// Whether the outbox holds at least half of `max_depth` rows (as last counted).
    pub fn half_full(&self) -> bool {
        self.depth() >= self.max_depth / 2
    }

    /// Counts `n` rows written here (until the next count).
    fn add_depth(&self, n: usize) {
        let depth = self.depth.fetch_add(n as i64, Ordering::Relaxed) + n as i64;
        super::metrics::set_depth(depth);
    }

    /// Wakes the relay: committed rows are waiting.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits for [`Outbox::wake`], at most `timeout`.
    pub async fn woken(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.wake.notified()).await;
    }

    fn next_ord(&self) -> i64 {
        let now = now_ms().saturating_mul(1000);
        let mut last = self.last_ord.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self.last_ord.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// Writes `events` (to every sink that wants them) on `conn`, inside the caller's
    /// transaction: they become deliverable when it commits, and vanish with it when it
    /// rolls back. An event id already waiting is kept once.
    pub async fn stage(&self, conn: &mut AnyConnection, events: &[Event]) -> Result<(), MeshError> {
        let rows: Vec<(String, String, String)> = events
            .iter()
            .map(|e| {
                let body = serde_json::to_string(e).map_err(|e| {
                    MeshError::internal(format!("an event does not serialize: {e}"))
                })?;
                Ok((e.id.clone(), String::new(), body))
            })
            .collect::<Result<_, MeshError>>()?;
        self.write_rows(conn, &rows).await?;
        self.add_depth(events.len());
        Ok(())
    }

    /// Writes `events` in a transaction of their own (publishers with no transaction).
    pub async fn insert(&self, events: &[Event]) -> Result<(), MeshError> {
        let mut tx = self.store.begin().await?;
        self.stage(&mut tx, events).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    /// Writes deliveries of events to one sink each, `(row id, sink, event)` (an old
    /// outbox moved into the store).
    pub async fn restore(&self, rows: &[(String, String, Event)]) -> Result<(), MeshError> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows: Vec<(String, String, String)> = rows
            .iter()
            .map(|(id, sink, e)| {
                (
                    id.clone(),
                    sink.clone(),
                    serde_json::to_string(e).unwrap_or_default(),
                )
            })
            .collect();
        let mut tx = self.store.begin().await?;
        self.write_rows(&mut tx, &rows).await?;
        tx.commit().await.map_err(db_error)?;
        self.add_depth(rows.len());
        Ok(())
    }

    async fn write_rows(
        &self,
        conn: &mut AnyConnection,
        rows: &[(String, String, String)],
    ) -> Result<(), MeshError> {
        let now = now_ms();
        for chunk in rows.chunks(INSERT_BATCH) {
            let mut sql =
                String::from("INSERT INTO outbox (id, ord, sink, body, created_at) VALUES ");
            sql.push_str(&values(chunk.len(), 5));
            sql.push_str(" ON CONFLICT (id) DO NOTHING");
            let mut q = sqlx::query(&sql);
            for (id, sink, body) in chunk {
                q = q
                    .bind(id.as_str())
                    .bind(self.next_ord())
                    .bind(sink.as_str())
                    .bind(body.as_str())
                    .bind(now);
            }
            q.execute(&mut *conn).await.map_err(db_error)?;
        }
        Ok(())
    }

    /// Claims up to `n` unclaimed (or expired) rows, oldest first, for `ttl`.
    pub async fn claim(&self, n: usize, ttl: Duration) -> Result<Vec<Claimed>, MeshError> {
        let now = now_ms();
        let skip_locked = match self.store.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE outbox SET claimed_by = $1, claimed_until = $2 WHERE id IN \
             (SELECT id FROM outbox WHERE claimed_until < $3 ORDER BY ord LIMIT $4{skip_locked}) \
             RETURNING id, sink, body, ord"
        );
        let rows = sqlx::query(&sql)
            .bind(&self.claimer)
            .bind(now + ttl.as_millis() as i64)
            .bind(now)
            .bind(n as i64)
            .fetch_all(self.store.writer())
            .await
            .map_err(db_error)?;
        let mut claimed: Vec<(i64, Claimed)> = rows
            .iter()
            .map(|r| {
                (
                    r.get::<i64, _>(3),
                    Claimed {
                        id: r.get(0),
                        sink: r.get(1),
                        body: r.get(2),
                    },
                )
            })
            .collect();
        claimed.sort_by_key(|(ord, _)| *ord);
        Ok(claimed.into_iter().map(|(_, c)| c).collect())
    }

    /// Extends every claim this run of the node holds by `ttl`; answers how many rows.
    pub async fn renew(&self, ttl: Duration) -> Result<u64, MeshError> {
        let r = sqlx::query("UPDATE outbox SET claimed_until = $1 WHERE claimed_by = $2")
            .bind(now_ms() + ttl.as_millis() as i64)
            .bind(&self.claimer)
            .execute(self.store.writer())
            .await
            .map_err(db_error)?;
        Ok(r.rows_affected())
    }

    /// Releases the claims of this node's earlier runs (it restarted: whatever they held
    /// is undelivered or delivered again, never lost); answers how many rows.
    pub async fn release_earlier_runs(&self) -> Result<u64, MeshError> {
        let r = sqlx::query(
            "UPDATE outbox SET claimed_by = '', claimed_until = 0 \
             WHERE claimed_by LIKE $1 ESCAPE '\\' AND claimed_by <> $2",
        )
        .bind(crate::users::store::like_prefix(&format!("{}/", self.node)))
        .bind(&self.claimer)
        .execute(self.store.writer())
        .await
        .map_err(db_error)?;
        Ok(r.rows_affected())
    }

    /// Buries `dead` and deletes the rows `done` (delivered, or buried) in one
    /// transaction.
    pub async fn settle(&self, done: &[String], dead: &[DeadLetter]) -> Result<(), MeshError> {
        if done.is_empty() && dead.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.begin().await?;
        for d in dead {
            bury(&mut tx, d).await?;
        }
        for chunk in done.chunks(500) {
            let list = crate::store::placeholders(1, chunk.len());
            let sql = format!("DELETE FROM outbox WHERE id IN ({list})");
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id.as_str());
            }
            q.execute(&mut *tx).await.map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    /// Counts the rows waiting (cluster-wide) and keeps the count as the depth.
    pub async fn count(&self) -> Result<i64, MeshError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(self.store.pool())
            .await
            .map_err(db_error)?;
        self.depth.store(n, Ordering::Relaxed);
        super::metrics::set_depth(n);
        Ok(n)
    }

    /// Up to `limit` dead letters, oldest failure first.
    pub async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, MeshError> {
        let rows = sqlx::query(&format!(
            "SELECT {DEAD_COLUMNS} FROM dead_letters ORDER BY failed_at, id LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(self.store.pool())
        .await
        .map_err(db_error)?;
        Ok(rows.iter().map(dead_row).collect())
    }

    /// Dead letters in all.
    pub async fn dead_count(&self) -> Result<i64, MeshError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters")
            .fetch_one(self.store.pool())
            .await
            .map_err(db_error)
    }

    /// One dead letter.
    pub async fn dead_letter(&self, id: &str) -> Result<Option<DeadLetter>, MeshError> {
        let row = sqlx::query(&format!(
            "SELECT {DEAD_COLUMNS} FROM dead_letters WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(db_error)?;
        Ok(row.as_ref().map(dead_row))
    }

    /// Removes a dead letter; answers it as it was.
    pub async fn drop_dead(&self, id: &str) -> Result<Option<DeadLetter>, MeshError> {
        let row = sqlx::query(&format!(
            "DELETE FROM dead_letters WHERE id = $1 RETURNING {DEAD_COLUMNS}"
        ))
        .bind(id)
        .fetch_optional(self.store.writer())
        .await
        .map_err(db_error)?;
        Ok(row.as_ref().map(dead_row))
    }

    /// Puts a dead letter back in the outbox, for its sink only, in one transaction with
    /// its removal; answers it as it was. `not_found` when there is none,
    /// `failed_precondition` for a quarantined body that is still not an event.
    pub async fn replay(&self, id: &str) -> Result<DeadLetter, MeshError> {
        let mut tx = self.store.begin().await?;
        let row = sqlx::query(&format!(
            "DELETE FROM dead_letters WHERE id = $1 RETURNING {DEAD_COLUMNS}"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let dead = row
            .as_ref()
            .map(dead_row)
            .ok_or_else(|| MeshError::not_found("no such dead letter"))?;
        let event = dead.event()?;
        let (row_id, sink) = if dead.sink == QUARANTINE {
            (event.id.clone(), String::new())
        } else {
            (dead.id.clone(), dead.sink.clone())
        };
        self.write_rows(&mut tx, &[(row_id, sink, dead.body.clone())])
            .await?;
        tx.commit().await.map_err(db_error)?;
        self.add_depth(1);
        self.wake();
        Ok(dead)
    }
}

const DEAD_COLUMNS: &str = "id, event_id, sink, body, attempts, last_error, failed_at, node";

fn dead_row(r: &sqlx::any::AnyRow) -> DeadLetter {
    DeadLetter {
        id: r.get(0),
        event_id: r.get(1),
        sink: r.get(2),
        body: r.get(3),
        attempts: u32::try_from(r.get::<i64, _>(4)).unwrap_or(u32::MAX),
        last_error: r.get(5),
        failed_at: r.get(6),
        node: r.get(7),
    }
}

/// Inserts (or refreshes) a dead letter on `conn`.
async fn bury(conn: &mut AnyConnection, d: &DeadLetter) -> Result<(), MeshError> {
    sqlx::query(
        "INSERT INTO dead_letters (id, event_id, sink, body, attempts, last_error, failed_at, node) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (id) DO UPDATE SET attempts = excluded.attempts, \
         last_error = excluded.last_error, failed_at = excluded.failed_at, node = excluded.node",
    )
    .bind(&d.id)
    .bind(&d.event_id)
    .bind(&d.sink)
    .bind(&d.body)
    .bind(i64::from(d.attempts))
    .bind(&d.last_error)
    .bind(d.failed_at)
    .bind(&d.node)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}
