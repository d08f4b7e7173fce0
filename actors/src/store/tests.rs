//! Store tests, and helpers the services' tests share: a temporary SQLite store and the
//! optional PostgreSQL store named by `TROUPE_TEST_PG`.

use std::future::Future;
use std::path::PathBuf;

use sqlx::Row as _;

use super::*;

/// Environment variable naming a PostgreSQL server for tests.
pub(crate) const PG_ENV: &str = "TROUPE_TEST_PG";

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    /// A fresh, not yet created, directory path.
    pub(crate) fn new() -> Self {
        Self(std::env::temp_dir().join(format!("troupe-test-{}", uuid::Uuid::new_v4())))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh SQLite store in its own temporary directory.
pub(crate) async fn sqlite() -> (Store, TempDir) {
    let dir = TempDir::new();
    let store = Store::connect(None, &dir.0).await.expect("sqlite store");
    (store, dir)
}

/// The PostgreSQL store named by `TROUPE_TEST_PG`, or `None` after printing a skip line.
pub(crate) async fn postgres() -> Option<Store> {
    let Ok(url) = std::env::var(PG_ENV) else {
        println!("skipped: {PG_ENV} not set");
        return None;
    };
    let dir = TempDir::new();
    Some(
        Store::connect(Some(&url), &dir.0)
            .await
            .expect("postgres store"),
    )
}

/// Runs `case` on a fresh SQLite store, then on PostgreSQL when configured. The flag
/// tells the case whether it has the database to itself (SQLite) or shares its tables
/// with concurrently running tests (PostgreSQL).
pub(crate) async fn on_each_backend<F, Fut>(case: F)
where
    F: Fn(Store, bool) -> Fut,
    Fut: Future<Output = ()>,
{
    let (store, _dir) = sqlite().await;
    case(store.clone(), true).await;
    store.close().await;
    if let Some(store) = postgres().await {
        case(store.clone(), false).await;
        store.close().await;
    }
}

/// Rows `_sqlx_migrations` holds once every embedded migration ran.
fn applied() -> i64 {
    migrate::Embedded::migrations().len() as i64
}

async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(store.pool())
        .await
        .expect("count")
        .get::<i64, _>(0)
}

#[tokio::test]
async fn concurrent_connects_to_one_file_migrate_once() {
    let dir = TempDir::new();
    let (a, b) = tokio::join!(Store::connect(None, &dir.0), Store::connect(None, &dir.0));
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert_eq!(a.backend(), Backend::Sqlite);
    assert!(dir.0.join(SQLITE_FILE).is_file());
    assert_eq!(
        count(&a, "SELECT COUNT(*) FROM _sqlx_migrations").await,
        applied()
    );
    assert_eq!(count(&b, "SELECT COUNT(*) FROM users").await, 0);
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(a.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(mode, "wal");
    a.ping().await.expect("ping a");
    b.ping().await.expect("ping b");
    a.close().await;
    b.close().await;

    // A third start on the migrated file changes nothing.
    let c = Store::connect(None, &dir.0).await.expect("third");
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM _sqlx_migrations").await,
        applied()
    );
    c.close().await;
}

/// `n` stores on one fresh SQLite file, opened as `n` nodes would open it but not migrated.
async fn unmigrated_sqlite(dir: &TempDir, n: usize) -> Vec<Store> {
    sqlx::any::install_default_drivers();
    let url = sqlite_file_url(&dir.0).expect("url");
    let mut stores = Vec::new();
    for _ in 0..n {
        let writer = sqlite_pool(1, Some(SQLITE_WRITER_PRAGMAS))
            .connect(&url)
            .await
            .expect("writer");
        writer
            .execute("PRAGMA journal_mode = WAL")
            .await
            .expect("wal");
        let pool = sqlite_pool(2, None).connect(&url).await.expect("readers");
        stores.push(Store {
            pool,
            writer,
            backend: Backend::Sqlite,
        });
    }
    stores
}

/// Runs the migrations from every store at once (each on its own task and pool, as
/// separate nodes do); all must succeed and record each version exactly once.
async fn migrate_together(stores: &[Store]) {
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(stores.len()));
    let mut runs = tokio::task::JoinSet::new();
    for store in stores {
        let (store, start) = (store.clone(), start.clone());
        runs.spawn(async move {
            start.wait().await;
            migrate::run(&store).await
        });
    }
    while let Some(run) = runs.join_next().await {
        run.expect("join")
            .expect("every node's migration run succeeds");
    }
    let rows = sqlx::query(
        "SELECT version, COUNT(*) FROM _sqlx_migrations WHERE success = TRUE \
         GROUP BY version ORDER BY version",
    )
    .fetch_all(stores[0].pool())
    .await
    .expect("migrations table");
    let recorded: Vec<(i64, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let expected: Vec<(i64, i64)> = (migrate::Embedded::migrations().iter())
        .map(|m| (m.version, 1))
        .collect();
    assert_eq!(recorded, expected, "each version recorded once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_migrating_one_fresh_file_at_once_apply_each_version_once() {
    let dir = TempDir::new();
    let stores = unmigrated_sqlite(&dir, 6).await;
    migrate_together(&stores).await;
    assert_eq!(count(&stores[5], "SELECT COUNT(*) FROM users").await, 0);
    // Later starts find everything applied.
    migrate_together(&stores[..2]).await;
    for s in &stores {
        s.close().await;
    }
}

/// Applies all embedded migrations but the last, as the previous release did.
async fn migrate_all_but_the_last(store: &Store) {
    let all = migrate::Embedded::migrations();
    let previous = sqlx::migrate::Migrator {
        migrations: all[..all.len() - 1].to_vec().into(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    let mut conn = store.writer().acquire().await.unwrap();
    previous.run_direct(&mut *conn).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_upgrading_one_file_at_once_apply_the_new_version_once() {
    let dir = TempDir::new();
    let stores = unmigrated_sqlite(&dir, 6).await;
    migrate_all_but_the_last(&stores[0]).await;
    // `_sqlx_migrations` exists now, so a run's first statement only reads: without a lock
    // taken up front, every node would see the last migration pending.
    migrate_together(&stores).await;
    for s in &stores {
        s.close().await;
    }
}

#[tokio::test]
async fn a_node_waits_for_the_node_migrating_then_finds_the_schema_applied() {
    use sqlx::Connection as _;
    let dir = TempDir::new();
    let stores = unmigrated_sqlite(&dir, 2).await;
    migrate_all_but_the_last(&stores[0]).await;
    // One node is mid-run: it holds the lock and has applied the new migration, not yet
    // committed.
    let migrator = sqlx::migrate::Migrator::new(migrate::Embedded)
        .await
        .unwrap();
    let mut holder = stores[0].writer().acquire().await.unwrap();
    let mut run = holder.begin_with("BEGIN IMMEDIATE").await.unwrap();
    migrator.run_direct(&mut *run).await.unwrap();
    let waiter = tokio::spawn({
        let store = stores[1].clone();
        async move { migrate::run(&store).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiter.is_finished(),
        "a node went ahead while another was migrating"
    );
    // The run commits; the waiter then finds every migration applied and applies none.
    run.commit().await.unwrap();
    drop(holder);
    waiter.await.unwrap().expect("the waiter's run succeeds");
    let rows = sqlx::query("SELECT COUNT(*), COUNT(DISTINCT version) FROM _sqlx_migrations")
        .fetch_one(stores[1].pool())
        .await
        .unwrap();
    assert_eq!(
        (rows.get::<i64, _>(0), rows.get::<i64, _>(1)),
        (applied(), applied())
    );
    for s in &stores {
        s.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_nodes_migrating_one_fresh_database_at_once_apply_each_version_once() {
    let Ok(url) = std::env::var(PG_ENV) else {
        println!("skipped: {PG_ENV} not set");
        return;
    };
    sqlx::any::install_default_drivers();
    // A database of its own, so the run starts from nothing and disturbs no one.
    let name = format!("troupe_migrate_{}", uuid::Uuid::new_v4().simple());
    let admin = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("postgres");
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create database");
    let fresh = with_database(&url, &name);
    let mut stores = Vec::new();
    for _ in 0..4 {
        let pool = AnyPoolOptions::new()
            .max_connections(2)
            .connect(&fresh)
            .await
            .expect("connect");
        stores.push(Store {
            writer: pool.clone(),
            pool,
            backend: Backend::Postgres,
        });
    }
    migrate_together(&stores).await;
    for s in &stores {
        s.close().await;
    }
    admin
        .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .expect("drop database");
    admin.close().await;
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

#[test]
fn database_names_are_replaced_in_urls() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
}

#[tokio::test]
async fn commits_never_checkpoint_and_the_background_task_does() {
    let (store, dir) = sqlite().await;
    let auto: i64 = sqlx::query("PRAGMA wal_autocheckpoint")
        .fetch_one(store.writer())
        .await
        .unwrap()
        .get(0);
    assert_eq!(auto, 0, "the writer must not checkpoint inside a commit");
    sqlx::query("CREATE TABLE ck (body TEXT)")
        .execute(store.writer())
        .await
        .unwrap();
    // About 2,000 log pages, twice SQLite's automatic threshold, in separate commits.
    let body = "x".repeat(4000);
    for _ in 0..2000 {
        sqlx::query("INSERT INTO ck (body) VALUES ($1)")
            .bind(&body)
            .execute(store.writer())
            .await
            .unwrap();
    }
    // Only a checkpoint moves pages from the log into the database file.
    let file = dir.0.join(SQLITE_FILE);
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::metadata(&file).unwrap().len() < 8_000_000 {
        assert!(Instant::now() < deadline, "no checkpoint within 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&store, "SELECT COUNT(*) FROM ck").await, 2000);
    store.close().await;
}

#[tokio::test]
async fn many_nodes_starting_together_all_come_up() {
    let dir = TempDir::new();
    let mut starts = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let path = dir.0.clone();
        starts.spawn(async move { Store::connect(None, &path).await });
    }
    let mut stores = Vec::new();
    while let Some(started) = starts.join_next().await {
        stores.push(started.expect("join").expect("connect"));
    }
    for s in &stores {
        s.ping().await.expect("ping");
    }
    assert_eq!(
        count(&stores[0], "SELECT COUNT(*) FROM _sqlx_migrations").await,
        applied()
    );
    for s in &stores {
        s.close().await;
    }
}

#[tokio::test]
async fn explicit_sqlite_url_is_used_as_given() {
    let dir = TempDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    let url = format!("sqlite://{}/other.db?mode=rwc", dir.0.display());
    let store = Store::connect(Some(&url), &dir.0).await.expect("connect");
    assert!(dir.0.join("other.db").is_file());
    assert!(!dir.0.join(SQLITE_FILE).exists());
    store.close().await;
}

#[tokio::test]
async fn unknown_schemes_are_refused() {
    let dir = TempDir::new();
    let err = Store::connect(Some("mysql://u:secret@h/db"), &dir.0)
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("unsupported"), "{text}");
    assert!(!text.contains("secret"), "{text}");
}

#[tokio::test]
async fn postgres_connects_migrates_and_pings() {
    let Some(store) = postgres().await else {
        return;
    };
    assert_eq!(store.backend(), Backend::Postgres);
    store.ping().await.expect("ping");
    // Concurrent starts serialize on sqlx's advisory lock.
    let url = std::env::var(PG_ENV).unwrap();
    let dir = TempDir::new();
    let (a, b) = tokio::join!(
        Store::connect(Some(&url), &dir.0),
        Store::connect(Some(&url), &dir.0)
    );
    let (a, b) = (a.expect("a"), b.expect("b"));
    assert_eq!(
        count(
            &a,
            "SELECT COUNT(*) FROM _sqlx_migrations WHERE version = 1"
        )
        .await,
        1
    );
    b.ping().await.expect("ping b");
    store.close().await;
    a.close().await;
    b.close().await;
}

/// `url` with `sslmode` (and more query parameters) set.
fn with_query(url: &str, query: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

/// PostgreSQL over TLS: `sslmode=require` encrypts (the server says so in `pg_stat_ssl`),
/// and `sslmode=verify-full` against the public roots refuses a server whose certificate no
/// public root signed (this machine's PostgreSQL has Debian's self-signed one), so the
/// certificate really is checked. Skipped when the server does not offer TLS.
#[tokio::test]
async fn postgres_over_tls_encrypts_and_verifies_the_server() {
    let Ok(url) = std::env::var(PG_ENV) else {
        println!("skipped: {PG_ENV} not set");
        return;
    };
    let dir = TempDir::new();
    let store = match Store::connect(Some(&with_query(&url, "sslmode=require")), &dir.0).await {
        Ok(store) => store,
        Err(e) => {
            println!("skipped: the PostgreSQL server at {PG_ENV} offers no TLS ({e:#})");
            return;
        }
    };
    let ssl = count(
        &store,
        "SELECT COUNT(*) FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl",
    )
    .await;
    assert_eq!(ssl, 1, "the connection is not encrypted");
    store.close().await;
    let refused = Store::connect(Some(&with_query(&url, "sslmode=verify-full")), &dir.0).await;
    let Err(error) = refused else {
        panic!("a server certificate no trusted root signed was accepted");
    };
    let error = format!("{error:#}");
    assert!(error.contains("certificate"), "{error}");
}

#[tokio::test]
async fn errors_map_to_codes_without_leaking_sql() {
    on_each_backend(|store, _| async move {
        let id = uuid::Uuid::new_v4().to_string();
        let insert = "INSERT INTO users (id, username, username_lower, email, email_lower, \
                      password_hash, created_at, updated_at) \
                      VALUES ($1, $2, $3, $4, $5, 'x', 0, 0)";
        let name = format!("n{}", &id[..8]);
        sqlx::query(insert)
            .bind(&id)
            .bind(&name)
            .bind(&name)
            .bind(format!("{name}@example.com"))
            .bind(format!("{name}@example.com"))
            .execute(store.pool())
            .await
            .expect("insert");

        let dup_name = sqlx::query(insert)
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(&name)
            .bind(&name)
            .bind(format!("other{name}@example.com"))
            .bind(format!("other{name}@example.com"))
            .execute(store.pool())
            .await
            .unwrap_err();
        let e = db_error(dup_name);
        assert_eq!(e.code, Code::AlreadyExists);
        assert_eq!(e.message, "username already taken");

        let dup_email = sqlx::query(insert)
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(format!("o{name}"))
            .bind(format!("o{name}"))
            .bind(format!("{name}@example.com"))
            .bind(format!("{name}@example.com"))
            .execute(store.pool())
            .await
            .unwrap_err();
        let e = db_error(dup_email);
        assert_eq!(e.code, Code::AlreadyExists);
        assert_eq!(e.message, "email already registered");

        let missing = sqlx::query("SELECT id FROM users WHERE id = $1")
            .bind("no-such-id")
            .fetch_one(store.pool())
            .await
            .map(|_| ())
            .unwrap_err();
        assert_eq!(db_error(missing).code, Code::NotFound);

        let bad = sqlx::query("SELECT nope FROM nowhere")
            .execute(store.pool())
            .await
            .unwrap_err();
        let e = db_error(bad);
        assert_eq!(e.code, Code::Internal);
        assert_eq!(e.message, "database error");

        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(&id)
            .execute(store.pool())
            .await
            .unwrap();
        store.close().await;
        assert_eq!(store.ping().await.unwrap_err().code, Code::Unavailable);
    })
    .await;
}

#[test]
fn urls_are_recognized_and_redacted() {
    assert_eq!(Backend::from_url("sqlite::memory:"), Some(Backend::Sqlite));
    assert_eq!(
        Backend::from_url("postgres://u@h/db"),
        Some(Backend::Postgres)
    );
    assert_eq!(
        Backend::from_url("postgresql://u@h/db"),
        Some(Backend::Postgres)
    );
    assert_eq!(Backend::from_url("mysql://h"), None);
    assert_eq!(redact("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
    assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(encode_path("/a b/c%?.db"), "/a%20b/c%25%3F.db");
}

/// Two nodes' writers on one file: the second waits for the first's write lock (SQLite's
/// busy handler is Troupe's fine-polling one, `store::busy`) and writes once it is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_waits_for_another_nodes_lock_then_writes() {
    let dir = TempDir::new();
    let a = Store::connect(None, &dir.0).await.expect("a");
    let b = Store::connect(None, &dir.0).await.expect("b");
    let installed: i64 = sqlx::query("SELECT troupe_busy_timeout(5000)")
        .fetch_one(b.writer())
        .await
        .unwrap()
        .get(0);
    assert_eq!(installed, 0, "the handler is installed (SQLITE_OK)");
    assert_eq!(busy::setting(), "SELECT troupe_busy_timeout(5000);");

    sqlx::query("CREATE TABLE busy_probe (k TEXT PRIMARY KEY)")
        .execute(a.writer())
        .await
        .unwrap();
    let mut held = a.begin().await.unwrap();
    sqlx::query("INSERT INTO busy_probe (k) VALUES ('held')")
        .execute(&mut *held)
        .await
        .unwrap();
    let waiting = tokio::spawn(async move {
        sqlx::query("INSERT INTO busy_probe (k) VALUES ('waited')")
            .execute(b.writer())
            .await
            .map(|_| b)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "b waits while a holds the lock");
    held.commit().await.unwrap();
    let b = waiting.await.unwrap().expect("b writes once a commits");
    assert_eq!(count(&b, "SELECT COUNT(*) FROM busy_probe").await, 2);
}
