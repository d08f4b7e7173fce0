//! The schema: SQL files from `actors/migrations/`, embedded at build time and applied by
//! sqlx's [`Migrator`] when a node connects.
//!
//! Several nodes may start at once on one database. On PostgreSQL sqlx serializes them
//! with an advisory lock. SQLite has no such lock: two nodes may both see a migration as
//! pending and both apply it. Every statement is written `IF NOT EXISTS`, so the second
//! application changes nothing and only its bookkeeping insert fails; the run is then
//! retried after a short random pause and finds the migration applied.

use std::borrow::Cow;
use std::time::Duration;

use anyhow::Context as _;
use rand::Rng as _;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use super::Store;
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
];

/// Attempts at one migration run before giving up.
const ATTEMPTS: u32 = 5;

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

/// Applies pending migrations, retrying a failed run a few times.
///
/// Each attempt runs on its own connection, which is closed (not returned to the pool)
/// after a failure so a PostgreSQL advisory lock it may still hold goes with it.
pub async fn run(store: &Store) -> Result<(), anyhow::Error> {
    let migrator = Migrator::new(Embedded)
        .await
        .context("loading embedded migrations")?;
    let mut attempt = 1;
    loop {
        let mut conn = store
            .writer()
            .acquire()
            .await
            .context("acquiring a connection to migrate")?;
        // `run_direct` rather than `run(&mut *conn)`: the latter's higher-ranked `Acquire`
        // bound makes the future not `Send`, and nodes connect from spawned tasks.
        match migrator.run_direct(&mut *conn).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                let _ = conn.close().await;
                if attempt >= ATTEMPTS {
                    return Err(e).context("applying migrations");
                }
                tracing::warn!(
                    backend = store.backend().as_str(),
                    attempt,
                    error = %e,
                    "migration run failed, retrying"
                );
                tokio::time::sleep(jitter()).await;
                attempt += 1;
            }
        }
    }
}

/// A short random pause between attempts, so racing nodes fall out of step.
pub(crate) fn jitter() -> Duration {
    Duration::from_millis(rand::rng().random_range(20..200))
}
