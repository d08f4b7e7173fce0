//! The schema: SQL files from `actors/migrations/`, embedded at build time and applied by
//! sqlx's [`Migrator`] when a node connects.
//!
//! Several nodes may start at once on one database, and exactly one of them must apply
//! each migration. They agree through a lock in the store itself, held for the whole
//! run (check what is applied, apply the rest, record it); the others wait for it and
//! then find every migration applied, so a normal start logs nothing alarming.
//!
//! - PostgreSQL: sqlx's migrator already takes a session-level advisory lock
//!   (`pg_advisory_lock`, keyed by the database name) before it reads `_sqlx_migrations`,
//!   and waiting nodes block in it. We use it as is.
//! - SQLite (one file shared by every local node): sqlx takes no lock there, so two nodes
//!   could both see a migration as pending and both apply it. The run goes inside one
//!   `BEGIN IMMEDIATE` transaction instead: it takes the file's write lock up front, so
//!   the first node in holds it from its first read to its commit, and every other node
//!   waits in the busy handler (`store::busy`, 5 s) until then. sqlx's per-migration
//!   transactions become savepoints inside it. Chosen over a lock row with a lease
//!   because SQLite already is the lock: nothing to expire or clean up, a node that dies
//!   mid-run releases it with its connection, and its half-applied run rolls back
//!   whole. A wait longer than the busy timeout (the file busy with other writes) is
//!   waited out again, quietly, up to [`LOCK_WAIT`].

use std::borrow::Cow;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::Connection as _;

use super::{Backend, Store};
use crate::mesh::BoxFuture;

/// Every migration: version, description and SQL, in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "identity",
        include_str!("../../migrations/0001_identity.sql"),
    ),
    (
        2,
        "images",
        include_str!("../../migrations/0002_images.sql"),
    ),
    (
        3,
        "notifications",
        include_str!("../../migrations/0003_notifications.sql"),
    ),
    (
        4,
        "tasks_todos",
        include_str!("../../migrations/0004_tasks_todos.sql"),
    ),
    (5, "chat", include_str!("../../migrations/0005_chat.sql")),
    (
        6,
        "node_leases",
        include_str!("../../migrations/0006_node_leases.sql"),
    ),
    (
        7,
        "training",
        include_str!("../../migrations/0007_training.sql"),
    ),
    (
        8,
        "events",
        include_str!("../../migrations/0008_events.sql"),
    ),
    (
        9,
        "engagement",
        include_str!("../../migrations/0009_engagement.sql"),
    ),
    (
        10,
        "coaching",
        include_str!("../../migrations/0010_coaching.sql"),
    ),
    (
        11,
        "reminders",
        include_str!("../../migrations/0011_reminders.sql"),
    ),
    (
        12,
        "gathering waitlist",
        include_str!("../../migrations/0012_gathering_waitlist.sql"),
    ),
    (
        13,
        "coaching note order",
        include_str!("../../migrations/0013_coaching_note_order.sql"),
    ),
    (14, "sso", include_str!("../../migrations/0014_sso.sql")),
    (
        15,
        "code limits",
        include_str!("../../migrations/0015_code_limits.sql"),
    ),
    (
        16,
        "outbox",
        include_str!("../../migrations/0016_outbox.sql"),
    ),
    (
        17,
        "quota slots",
        include_str!("../../migrations/0017_quota_slots.sql"),
    ),
];

/// Longest a node waits for another node's migration run on SQLite.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// The embedded migrations as a sqlx [`MigrationSource`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Embedded;

impl Embedded {
    /// The migrations themselves.
    pub fn migrations() -> Vec<Migration> {
        MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect()
    }
}

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async { Ok(Embedded::migrations()) })
    }
}

/// Applies pending migrations, holding the store's migration lock (see the module doc).
///
/// `run_direct` rather than `Migrator::run`: the latter's higher-ranked `Acquire` bound
/// makes the future not `Send`, and nodes connect from spawned tasks. After a failure the
/// connection is closed, not returned to the pool, so a lock it may still hold goes with it.
pub async fn run(store: &Store) -> Result<(), anyhow::Error> {
    let migrator = Migrator::new(Embedded)
        .await
        .context("loading embedded migrations")?;
    let mut conn = store
        .writer()
        .acquire()
        .await
        .context("acquiring a connection to migrate")?;
    let result = match store.backend() {
        Backend::Postgres => migrator
            .run_direct(&mut *conn)
            .await
            .context("applying migrations"),
        Backend::Sqlite => run_sqlite(&migrator, &mut conn).await,
    };
    if result.is_err() {
        let _ = conn.close().await;
    }
    result
}

/// The SQLite run: every step inside one `BEGIN IMMEDIATE` transaction.
async fn run_sqlite(migrator: &Migrator, conn: &mut sqlx::AnyConnection) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut tx = loop {
        match conn.begin_with("BEGIN IMMEDIATE").await {
            Ok(tx) => break tx,
            Err(sqlx::Error::Database(e))
                if super::sqlite_busy(e.as_ref()) && started.elapsed() < LOCK_WAIT =>
            {
                tracing::debug!(waited = ?started.elapsed(), "another node is migrating, waiting");
            }
            Err(e) => return Err(e).context("taking the migration lock"),
        }
    };
    migrator
        .run_direct(&mut *tx)
        .await
        .context("applying migrations")?;
    tx.commit().await.context("committing migrations")
}
