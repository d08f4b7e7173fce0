//! The system of record: sqlx over SQLite (embedded default) or PostgreSQL.
//!
//! One [`Store`] per node, shared by the identity services. It is reached through sqlx's
//! `Any` driver so every query is written once:
//!
//! - placeholders are `$1, $2, ...` (both sqlx-postgres and sqlx-sqlite accept them);
//! - columns hold only types both backends decode through `Any`: `TEXT` (`String`) and
//!   `BIGINT` (`i64`). Booleans are `BIGINT` 0/1, times are `BIGINT` unix milliseconds
//!   (see [`time`]).
//!
//! [`Store::connect`] runs the embedded migrations ([`migrate`]); several nodes may start
//! at once against the same database, and they agree through a lock in the store which
//! one applies them.
//!
//! [`batch`] writes many callers' rows in one transaction (group commit).
//!
//! Services turn `sqlx` failures into a [`MeshError`] with [`db_error`], which never lets
//! SQL or driver text reach a client.

pub mod batch;
mod busy;
pub mod idempotency;
pub mod lease;
pub mod migrate;
pub mod time;

use std::path::Path;
use std::sync::Once;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::Rng as _;
use sqlx::any::AnyPoolOptions;
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::{AnyPool, Executor as _};

use crate::mesh::{Code, MeshError};

/// File name of the embedded SQLite database inside the data directory.
pub const SQLITE_FILE: &str = "troupe.db";

/// Readers on SQLite (WAL: they run beside the writer).
const SQLITE_POOL: u32 = 8;
/// Pool size on PostgreSQL.
const POSTGRES_POOL: u32 = 16;
/// How long a query waits for a free connection before failing as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a node copies the SQLite write-ahead log back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// Attempts to open the pool and migrate before giving up.
const CONNECT_ATTEMPTS: u32 = 5;

/// Per-connection settings of SQLite: enforced foreign keys. The write-ahead log is a
/// property of the file, set once by [`Store::open`]; the wait for a lock (5 s) is set
/// first, by [`busy::setting`].
const SQLITE_PRAGMAS: &str = "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";
/// The writer's extra setting: no checkpoint inside a commit (see [`Store`]).
const SQLITE_WRITER_PRAGMAS: &str = "PRAGMA wal_autocheckpoint = 0;";

/// The `VALUES` list of a multi-row `INSERT`: `rows` groups of `columns` placeholders,
/// numbered on from `$1`: `($1, $2), ($3, $4)`.
pub fn values(rows: usize, columns: usize) -> String {
    use std::fmt::Write as _;
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for c in 0..columns {
            if c > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "${}", row * columns + c + 1);
        }
        sql.push(')');
    }
    sql
}

/// `$first, $first+1, ...` for `n` bound values (an `IN` list).
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An SQLite file (the embedded default).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend a connection URL names, if supported.
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    /// Lowercase name, for logs and health output.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A migrated database: a pool for reads and a pool for writes. Cheap to clone.
///
/// On SQLite the write pool holds a single connection. SQLite admits one writer at a time
/// per file; with several writing connections in one process, the losers of each race
/// sleep in SQLite's busy handler (1, 2, 5, 10, ... ms) instead of queueing, which put
/// tens of milliseconds on the tail of every write under load. One connection makes the
/// node's writes wait in a FIFO instead; reads keep their own pool and run beside it
/// (WAL). Nodes of a local cluster still share the file; between processes a writer
/// polls for the lock every 50 us to 2 ms ([`busy`]) rather than SQLite's 1-25 ms
/// sleeps. On PostgreSQL both are the same pool.
///
/// SQLite's automatic checkpoint is off on the writer: it runs inside whichever commit
/// crosses 1,000 log pages, copying and syncing megabytes while that request (and every
/// write queued behind it) waits. A background task checkpoints from a read connection
/// every [`CHECKPOINT_EVERY`] instead; it never blocks the writer (see [`checkpoints`]).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    writer: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens the database and applies pending migrations.
    ///
    /// With no `url`, opens (creating it and `data_dir` if missing) the SQLite file
    /// `data_dir/troupe.db`. Otherwise `url` (`sqlite:...` or `postgres://...`) is used as
    /// given. Nodes starting together on one database agree through the store's migration
    /// lock which of them applies the migrations ([`migrate`]); a failed open (the server
    /// not up yet, the file locked past the busy timeout) is retried a few times with a
    /// short random pause.
    pub async fn connect(url: Option<&str>, data_dir: &Path) -> Result<Store, anyhow::Error> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);

        let url = match url {
            Some(url) => url.to_string(),
            None => sqlite_file_url(data_dir)?,
        };
        let backend = Backend::from_url(&url)
            .with_context(|| format!("unsupported database url scheme: {}", redact(&url)))?;

        let mut attempt = 1;
        loop {
            match Self::open(&url, backend).await {
                Ok(store) => {
                    tracing::info!(backend = backend.as_str(), "store ready");
                    return Ok(store);
                }
                Err(e) if attempt < CONNECT_ATTEMPTS => {
                    tracing::warn!(
                        backend = backend.as_str(),
                        attempt,
                        error = %format!("{e:#}"),
                        "opening the store failed, retrying"
                    );
                    tokio::time::sleep(jitter()).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.context(format!("cannot open database {}", redact(&url)))),
            }
        }
    }

    /// One attempt at opening the pools and migrating.
    async fn open(url: &str, backend: Backend) -> Result<Store, anyhow::Error> {
        let store = match backend {
            Backend::Sqlite => {
                let writer = sqlite_pool(1, Some(SQLITE_WRITER_PRAGMAS))
                    .connect(url)
                    .await
                    .context("connecting")?;
                // Persistent in the file; a no-op once set. Done here, on one connection
                // and inside the retry loop, because switching a new file to WAL needs an
                // exclusive lock that nodes starting together contend for.
                if let Err(e) = writer.execute("PRAGMA journal_mode = WAL").await {
                    writer.close().await;
                    return Err(anyhow::Error::new(e).context("enabling the write-ahead log"));
                }
                let pool = sqlite_pool(SQLITE_POOL, None).connect(url).await;
                let pool = match pool {
                    Ok(pool) => pool,
                    Err(e) => {
                        writer.close().await;
                        return Err(anyhow::Error::new(e).context("connecting"));
                    }
                };
                Store {
                    pool,
                    writer,
                    backend,
                }
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(POSTGRES_POOL)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect(url)
                    .await
                    .context("connecting")?;
                Store {
                    writer: pool.clone(),
                    pool,
                    backend,
                }
            }
        };
        if let Err(e) = migrate::run(&store).await {
            store.close().await;
            return Err(e);
        }
        if backend == Backend::Sqlite {
            tokio::spawn(checkpoints(store.pool.clone()));
        }
        Ok(store)
    }

    /// Round trip time of a trivial query.
    pub async fn ping(&self) -> Result<Duration, MeshError> {
        let started = Instant::now();
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(started.elapsed())
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool for writes: every statement that changes data, and every transaction,
    /// goes here (see [`Store`] for why).
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// Begins a transaction on the writer.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, MeshError> {
        self.writer.begin().await.map_err(db_error)
    }

    /// Closes every connection; later queries fail as unavailable.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

/// Options of an SQLite pool of `size` connections with the busy handler, [`SQLITE_PRAGMAS`],
/// then `extra`.
///
/// A connection is not pinged before it is handed out (sqlx's default): it is a file
/// opened by this process, not a socket that can go stale, and the ping was one more
/// round trip to the connection's thread on every query and transaction.
fn sqlite_pool(size: u32, extra: Option<&'static str>) -> AnyPoolOptions {
    let busy = busy::setting();
    AnyPoolOptions::new()
        .max_connections(size)
        .test_before_acquire(false)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                conn.execute(busy).await?;
                conn.execute(SQLITE_PRAGMAS).await?;
                if let Some(extra) = extra {
                    conn.execute(extra).await?;
                }
                Ok(())
            })
        })
}

/// Copies the write-ahead log back into the database file every [`CHECKPOINT_EVERY`], from
/// a connection of `readers`, until the pool closes.
///
/// `PASSIVE` copies what no reader still needs and waits for nobody: the writer keeps
/// appending meanwhile, and when another node of the cluster is checkpointing the same
/// file this one returns at once. SQLite restarts the log from its start once a checkpoint
/// has copied all of it, so the file stays small.
async fn checkpoints(readers: AnyPool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if readers.is_closed() {
            return;
        }
        if let Err(e) = readers.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
            tracing::debug!(error = %e, "write-ahead log checkpoint failed");
        }
    }
}

/// One page of `SELECT columns FROM table`, newest first (`created_at DESC, id`), keeping
/// the rows whose named columns equal the given values (a `None` value filters nothing),
/// with the total number of such rows. `table`, `columns` and the filter column names are
/// the caller's constants, never client input; the values are bound.
pub async fn page_where_equal(
    store: &Store,
    table: &str,
    columns: &str,
    equal: &[(&str, Option<&str>)],
    limit: i64,
    offset: i64,
) -> Result<(Vec<sqlx::any::AnyRow>, i64), MeshError> {
    use sqlx::Row as _;
    let mut clauses = Vec::new();
    let mut args: Vec<&str> = Vec::new();
    for (column, value) in equal {
        if let Some(value) = value {
            args.push(value);
            clauses.push(format!("{column} = ${}", args.len()));
        }
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    let count_sql = format!("SELECT COUNT(*) FROM {table}{filter}");
    let mut count = sqlx::query(&count_sql);
    for a in &args {
        count = count.bind(*a);
    }
    let total: i64 = count
        .fetch_one(store.pool())
        .await
        .map_err(db_error)?
        .try_get(0)
        .map_err(db_error)?;
    let page_sql = format!(
        "SELECT {columns} FROM {table}{filter} ORDER BY created_at DESC, id LIMIT ${} OFFSET ${}",
        args.len() + 1,
        args.len() + 2
    );
    let mut page = sqlx::query(&page_sql);
    for a in &args {
        page = page.bind(*a);
    }
    let rows = page
        .bind(limit)
        .bind(offset)
        .fetch_all(store.pool())
        .await
        .map_err(db_error)?;
    Ok((rows, total))
}

/// Maps a database failure to the error a client sees.
///
/// - a unique violation becomes [`Code::AlreadyExists`]: "username already taken" or
///   "email already registered" when the violated constraint names those columns;
/// - no row becomes [`Code::NotFound`];
/// - no free connection in time, a closed pool, or an SQLite lock held past the busy
///   timeout become [`Code::Unavailable`];
/// - anything else becomes [`Code::Internal`]; the detail is logged, never returned.
pub fn db_error(e: sqlx::Error) -> MeshError {
    match &e {
        sqlx::Error::RowNotFound => MeshError::not_found("not found"),
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            tracing::warn!(error = %e, "database unavailable");
            MeshError::unavailable("database unavailable")
        }
        sqlx::Error::Database(d) if d.kind() == ErrorKind::UniqueViolation => {
            let what = format!("{} {}", d.message(), d.constraint().unwrap_or_default());
            MeshError::new(Code::AlreadyExists, unique_message(&what))
        }
        sqlx::Error::Database(d) if sqlite_busy(d.as_ref()) => {
            tracing::warn!(error = %e, "database busy");
            MeshError::unavailable("database busy")
        }
        _ => {
            tracing::error!(error = %e, "database error");
            MeshError::internal("database error")
        }
    }
}

/// The client message for a unique violation, from the constraint's text.
fn unique_message(constraint: &str) -> &'static str {
    if constraint.contains("username") {
        "username already taken"
    } else if constraint.contains("email") {
        "email already registered"
    } else {
        "already exists"
    }
}

/// Whether an error is SQLite's `SQLITE_BUSY` or `SQLITE_LOCKED` (any extended code).
fn sqlite_busy(e: &dyn DatabaseError) -> bool {
    const SQLITE_BUSY: i32 = 5;
    const SQLITE_LOCKED: i32 = 6;
    e.try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .and_then(|s| s.code())
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
}

/// A short random pause between attempts, so racing nodes fall out of step.
fn jitter() -> Duration {
    Duration::from_millis(rand::rng().random_range(20..200))
}

/// The URL of `data_dir/troupe.db`, creating the directory and the file if missing.
fn sqlite_file_url(data_dir: &Path) -> Result<String, anyhow::Error> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let dir = std::fs::canonicalize(data_dir)
        .with_context(|| format!("resolving data directory {}", data_dir.display()))?;
    let file = dir.join(SQLITE_FILE);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .with_context(|| format!("creating database file {}", file.display()))?;
    let path = file
        .to_str()
        .with_context(|| format!("database path is not utf-8: {}", file.display()))?;
    Ok(format!("sqlite://{}?mode=rwc", encode_path(path)))
}

/// Percent-encodes the characters that would end or confuse the path part of a URL.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c.is_control() || "%?# \"<>`{}".contains(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
