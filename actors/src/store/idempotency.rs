//! Idempotent writes: a write that carries an idempotency key (the client's
//! `Idempotency-Key`, or one made at ingress) runs once, and a repeat gets the first
//! answer.
//!
//! - The key travels with an effectful call ([`crate::mesh::Call::idempotency_key`]) in
//!   the mesh envelope, so it reaches the service on whichever node runs it.
//! - [`Idempotent`] wraps a service: a call whose key (digested with the caller and the op,
//!   so one client's key never answers another's call) has an answer already gets that
//!   answer; otherwise the op runs with the key in scope ([`current`]).
//! - A service that writes in a transaction records the key in it ([`Key::record`], done by
//!   [`crate::events::Staged::commit`]): the key's primary key then makes the write happen
//!   once, even when two runs race (the router retrying on another worker, or the client
//!   retrying while the first run still goes). The loser waits for the winner's answer.
//! - When the op answers, the answer is stored with the key; a service that wrote no
//!   record of its own gets one then, so a later repeat is still answered from it.
//!
//! - A write made while running a keyed write (a call to another service) carries a key
//!   derived from it ([`Key::derived`]), so a retry of the outer write runs each inner
//!   write once too.
//!
//! Rows are kept for [`KEEP`] and swept by [`sweep`]. A run that committed and died
//! before its answer was stored leaves a record with no answer: a repeat then gets
//! `already_exists` ("applied; its answer was lost") rather than a second write.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use sqlx::{AnyConnection, Row as _};

use super::batch::Batcher;
use super::time::now_ms;
use super::{db_error, Store};
use crate::mesh::{BoxFuture, Code, MeshError, Request, Service};

/// How long an answer is kept for repeats.
pub const KEEP: Duration = Duration::from_secs(24 * 3600);
/// Longest client key accepted.
pub const MAX_KEY: usize = 255;
/// The message of the error a losing run's record gets (never shown to a client).
const DUPLICATE: &str = "idempotency key recorded by another run";
/// How often a repeat looks for the first run's answer.
const POLL: Duration = Duration::from_millis(50);
/// The first character of a key made at ingress (a client key cannot hold it).
pub const MADE: char = ' ';
/// The seed of the fast request hash of made keys (the same on every node).
const FAST_SEED: u64 = 0x7472_6f75_7065;
/// Answers stored in one statement at most.
const ANSWER_BATCH: usize = 256;
/// Answers waiting for their statement at most.
const ANSWER_QUEUE: usize = 4096;
/// How long a record may wait for its answer before the answer counts as lost.
const ANSWER_GRACE: Duration = Duration::from_secs(30);

tokio::task_local! {
    static KEY: Key;
}

/// The key of the write this task runs.
#[derive(Clone, Debug)]
pub struct Key {
    digest: String,
    made: bool,
    recorded: Arc<AtomicBool>,
}

/// The key of the write the current task runs, if it carries one.
pub fn current() -> Option<Key> {
    KEY.try_with(Key::clone).ok()
}

/// Checks a client's key: 1-255 visible ASCII characters.
pub fn check(key: &str) -> Result<(), MeshError> {
    if key.is_empty() || key.len() > MAX_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(MeshError::invalid(format!(
            "Idempotency-Key must be 1-{MAX_KEY} visible ASCII characters"
        )));
    }
    Ok(())
}

impl Key {
    /// A made key of this digest, not recorded yet: for other modules' tests.
    #[cfg(test)]
    pub(crate) fn made_for_test(digest: &str) -> Key {
        Key {
            digest: digest.to_string(),
            made: true,
            recorded: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The key of a write this one makes (a call to another service): its digest, made
    /// (so never looked up first) when this one's was.
    pub fn derived(&self) -> String {
        if self.made {
            format!("{MADE}{}", self.digest)
        } else {
            self.digest.clone()
        }
    }

    /// Records the key on `conn`, in the write's transaction: the transaction fails if
    /// another run recorded it first. Once per run (a run's later transactions write
    /// nothing).
    pub async fn record(&self, conn: &mut AnyConnection) -> Result<(), MeshError> {
        self.write(conn).await?;
        self.wrote();
        Ok(())
    }

    /// [`Key::record`]'s write alone, for a transaction that commits later (a batch of
    /// several writes): call [`Key::wrote`] once it has committed.
    pub async fn write(&self, conn: &mut AnyConnection) -> Result<(), MeshError> {
        if self.recorded.load(Ordering::Relaxed) {
            return Ok(());
        }
        let done = sqlx::query(
            "INSERT INTO idempotency (key, reply, created_at) VALUES ($1, '', $2) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(&self.digest)
        .bind(now_ms())
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(duplicate());
        }
        Ok(())
    }

    /// The transaction that [`Key::write`] wrote in committed.
    pub fn wrote(&self) {
        self.recorded.store(true, Ordering::Relaxed);
    }
}

/// [`Key::write`] for the keys of several writes in one transaction (a batch), in one
/// statement per [`ANSWER_BATCH`] keys: the transaction fails if another run recorded any
/// of them first. Call [`Key::wrote`] on each once it has committed.
pub async fn write_all(conn: &mut AnyConnection, keys: &[&Key]) -> Result<(), MeshError> {
    let keys: Vec<&&Key> = keys
        .iter()
        .filter(|k| !k.recorded.load(Ordering::Relaxed))
        .collect();
    let now = now_ms();
    for chunk in keys.chunks(ANSWER_BATCH) {
        let sql = format!(
            "INSERT INTO idempotency (key, reply, created_at) VALUES {} \
             ON CONFLICT (key) DO NOTHING",
            super::values(chunk.len(), 3)
        );
        let mut q = sqlx::query(&sql);
        for k in chunk {
            q = q.bind(k.digest.as_str()).bind("").bind(now);
        }
        let done = q.execute(&mut *conn).await.map_err(db_error)?;
        if done.rows_affected() != chunk.len() as u64 {
            return Err(duplicate());
        }
    }
    Ok(())
}

/// Which of `keys` an earlier run recorded and committed, read on `conn`: a batch tells
/// a repeat of a write that went through from a write that lost its race.
pub async fn recorded(conn: &mut AnyConnection, keys: &[&Key]) -> Result<Vec<bool>, MeshError> {
    let mut found = std::collections::HashSet::new();
    for chunk in keys.chunks(ANSWER_BATCH) {
        let sql = format!(
            "SELECT key FROM idempotency WHERE key IN ({})",
            super::placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for k in chunk {
            q = q.bind(k.digest.as_str());
        }
        for row in q.fetch_all(&mut *conn).await.map_err(db_error)? {
            found.insert(row.try_get::<String, _>(0).map_err(db_error)?);
        }
    }
    Ok(keys.iter().map(|k| found.contains(&k.digest)).collect())
}

/// The error of a write whose key another run recorded: [`Idempotent`] answers it with
/// that run's answer.
pub fn duplicate() -> MeshError {
    MeshError::new(Code::FailedPrecondition, DUPLICATE)
}

/// The digest a client key is stored under: the caller, the op, the key and the request.
fn digest(req: &Request, service: &str) -> String {
    let mut h = Sha256::new();
    let caller = req.caller.as_ref().map_or("", |c| c.user_id.as_str());
    // The request itself is part of it: a key sent again with another request (another
    // login's credentials, say) is another write, never answered with the first one. A
    // key made at ingress (or derived from one) is never sent by a client, so only the
    // calls made under it need telling apart: a fast 64-bit hash of the request does
    // (an image upload is not put through SHA-256 for a key nobody looks up first).
    let fast;
    let payload: &[u8] = if req.idempotency_key.starts_with(MADE) {
        use std::hash::{BuildHasher as _, Hasher as _};
        let mut h = foldhash::fast::FixedState::with_seed(FAST_SEED).build_hasher();
        h.write(&req.payload);
        fast = h.finish().to_be_bytes();
        &fast
    } else {
        &req.payload
    };
    for part in [
        caller.as_bytes(),
        service.as_bytes(),
        req.op.as_bytes(),
        req.idempotency_key.as_bytes(),
        payload,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What the store holds for a key.
enum Stored {
    /// Nothing: the write has not run.
    Nothing,
    /// Recorded, no answer yet (running, or its answer was lost), since (unix ms).
    Pending(i64),
    /// The first answer.
    Answer(Bytes),
}

async fn lookup(store: &Store, digest: &str) -> Result<Stored, MeshError> {
    let row = sqlx::query("SELECT reply, created_at FROM idempotency WHERE key = $1")
        .bind(digest)
        .fetch_optional(store.pool())
        .await
        .map_err(db_error)?;
    let Some(row) = row else {
        return Ok(Stored::Nothing);
    };
    let reply: String = row.get(0);
    if reply.is_empty() {
        return Ok(Stored::Pending(row.get(1)));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(reply.strip_prefix('=').unwrap_or(&reply))
        .map_err(|e| MeshError::internal(format!("a stored answer does not decode: {e}")))?;
    Ok(Stored::Answer(bytes.into()))
}

/// The stored form of an answer. It starts with `=`, so an empty answer (a prost message
/// with every field at its default) is not taken for "no answer yet".
fn encode(reply: &Bytes) -> String {
    format!(
        "={}",
        base64::engine::general_purpose::STANDARD.encode(reply)
    )
}

/// Stores answers, `(digest, encoded answer)`, in one statement (the answer writer's
/// batch); a digest given twice keeps its first answer.
async fn store_answers(store: &Store, answers: &[(String, String)]) -> Result<(), MeshError> {
    let mut seen = std::collections::HashSet::new();
    let rows: Vec<&(String, String)> = answers.iter().filter(|(d, _)| seen.insert(d)).collect();
    let now = now_ms();
    for chunk in rows.chunks(ANSWER_BATCH) {
        let sql = format!(
            "INSERT INTO idempotency (key, reply, created_at) VALUES {} \
             ON CONFLICT (key) DO UPDATE SET reply = excluded.reply",
            super::values(chunk.len(), 3)
        );
        let mut q = sqlx::query(&sql);
        for (digest, text) in chunk {
            q = q.bind(digest.as_str()).bind(text.as_str()).bind(now);
        }
        q.execute(store.writer()).await.map_err(db_error)?;
    }
    Ok(())
}

/// Waits for the first run's answer, until the request's deadline.
async fn first_answer(store: &Store, digest: &str, req: &Request) -> Result<Bytes, MeshError> {
    loop {
        match lookup(store, digest).await? {
            Stored::Answer(bytes) => return Ok(bytes),
            Stored::Pending(since) if now_ms() - since > ANSWER_GRACE.as_millis() as i64 => {
                return Err(MeshError::new(
                    Code::AlreadyExists,
                    "this request was applied already; its answer was lost",
                ));
            }
            Stored::Pending(_) | Stored::Nothing => {}
        }
        if std::time::Instant::now() + POLL >= req.deadline {
            return Err(MeshError::unavailable(
                "the first request with this idempotency key is still running",
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Deletes answers older than [`KEEP`]; answers how many.
pub async fn sweep(store: &Store) -> Result<u64, MeshError> {
    let done = sqlx::query("DELETE FROM idempotency WHERE created_at < $1")
        .bind(now_ms() - KEEP.as_millis() as i64)
        .execute(store.writer())
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected())
}

/// A service whose keyed calls run once (see the module doc).
pub struct Idempotent {
    inner: Arc<dyn Service>,
    store: Store,
    /// Answers, stored many to a statement.
    answers: Batcher<(String, String), ()>,
}

impl Idempotent {
    /// `inner`, with its keyed calls answered from `store` when repeated. Needs a Tokio
    /// runtime (it starts the answer writer).
    pub fn new(inner: Arc<dyn Service>, store: Store) -> Self {
        let writer = store.clone();
        let answers = Batcher::start(
            "idempotency",
            ANSWER_BATCH,
            ANSWER_QUEUE,
            Arc::new(move |answers: Vec<(String, String)>| {
                let store = writer.clone();
                Box::pin(async move {
                    store_answers(&store, &answers).await?;
                    Ok(vec![(); answers.len()])
                })
            }),
        );
        Self {
            inner,
            store,
            answers,
        }
    }

    /// Stores the answer of `digest`. A client's key waits until it is stored, since its
    /// repeat may come at once and, for a service that recorded nothing in its own
    /// transaction, the answer is the only record. A key made at ingress (only the router's
    /// retries repeat it, and its write recorded the key) does not wait, unless the writer's
    /// queue is full.
    async fn answer(&self, digest: String, reply: &Bytes, made: bool) {
        let item = (digest, encode(reply));
        let stored = if made {
            match self.answers.enqueue(item.clone()) {
                Ok(_) => Ok(()),
                Err(_) => self.answers.submit(item).await,
            }
        } else {
            self.answers.submit(item).await
        };
        if let Err(e) = stored {
            tracing::warn!(error = %e, "the answer of an idempotent write was not stored");
        }
    }

    async fn run(&self, req: Request) -> Result<Bytes, MeshError> {
        let digest = digest(&req, self.inner.name());
        // A key made at ingress is nobody's repeat: no lookup before the first run, and
        // an answer kept only for a write that recorded it (for the router's retries).
        let made = req.idempotency_key.starts_with(MADE);
        if !made {
            match lookup(&self.store, &digest).await? {
                Stored::Answer(bytes) => {
                    metrics::counter!(REPEATS, "service" => self.inner.name()).increment(1);
                    return Ok(bytes);
                }
                Stored::Pending(_) => {
                    metrics::counter!(REPEATS, "service" => self.inner.name()).increment(1);
                    return first_answer(&self.store, &digest, &req).await;
                }
                Stored::Nothing => {}
            }
        }
        let key = Key {
            digest: digest.clone(),
            made,
            recorded: Arc::new(AtomicBool::new(false)),
        };
        let recorded = key.recorded.clone();
        let deadline_req = Request {
            payload: Bytes::new(),
            ..req.clone()
        };
        match KEY.scope(key, self.inner.handle(req)).await {
            Ok(bytes) => {
                if !made || recorded.load(Ordering::Relaxed) {
                    self.answer(digest, &bytes, made).await;
                }
                Ok(bytes)
            }
            Err(e) if e.code == Code::FailedPrecondition && e.message == DUPLICATE => {
                metrics::counter!(REPEATS, "service" => self.inner.name()).increment(1);
                first_answer(&self.store, &digest, &deadline_req).await
            }
            Err(e) => Err(e),
        }
    }
}

/// Repeats of keyed writes answered from the first answer, by service.
pub const REPEATS: &str = "troupe_idempotent_repeats_total";

impl Service for Idempotent {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn workers(&self, default: usize) -> usize {
        self.inner.workers(default)
    }

    fn waits_on_batch(&self, op: &str) -> bool {
        self.inner.waits_on_batch(op)
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        if req.idempotency_key.is_empty() {
            return self.inner.handle(req);
        }
        Box::pin(self.run(req))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;
    use crate::events::{NewEvent, Publisher, Recorder, Staged};
    use crate::store::tests::sqlite;

    /// Writes one row per run in a transaction (through [`Staged`], as services do) and
    /// answers how many runs committed before it, slowly enough for runs to overlap.
    struct Counter {
        store: Store,
        runs: AtomicU32,
        publisher: Publisher,
    }

    impl Service for Counter {
        fn name(&self) -> &'static str {
            "counter"
        }

        fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
            Box::pin(async move {
                self.runs.fetch_add(1, Ordering::SeqCst);
                let mut staged = Staged::new(Some(&self.publisher));
                staged.add(NewEvent::new("todo.created", None, serde_json::json!({})))?;
                let mut tx = self.store.begin().await?;
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM todos")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                sqlx::query(
                    "INSERT INTO todos (id, owner_id, title, description, status, created_at, \
                     updated_at, version) VALUES ($1, 'u', 't', '', 'pending', 0, 0, 1)",
                )
                .bind(uuid::Uuid::new_v4().to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                tokio::time::sleep(Duration::from_millis(50)).await;
                staged.commit(tx).await?;
                Ok(Bytes::from(format!(
                    "{n}:{}",
                    String::from_utf8_lossy(&req.payload)
                )))
            })
        }
    }

    fn key(digest: &str) -> Key {
        Key::made_for_test(digest)
    }

    #[tokio::test]
    async fn keys_written_together_fail_together_when_another_run_recorded_one() {
        let (store, _dir) = sqlite().await;
        let (a, b, c) = (key("a"), key("b"), key("c"));
        let mut tx = store.begin().await.unwrap();
        write_all(&mut tx, &[&a, &b]).await.unwrap();
        tx.commit().await.unwrap();
        // `b` is recorded: a batch holding it fails, and leaves `c` unrecorded.
        let mut tx = store.begin().await.unwrap();
        let e = write_all(&mut tx, &[&c, &key("b")]).await.unwrap_err();
        assert_eq!(e.message, DUPLICATE);
        drop(tx);
        // A key twice in one batch is a duplicate too.
        let mut tx = store.begin().await.unwrap();
        assert!(write_all(&mut tx, &[&key("d"), &key("d")]).await.is_err());
        drop(tx);
        let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM idempotency ORDER BY key")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(keys, ["a", "b"]);
        // Once marked written, a key is not written again.
        c.wrote();
        let mut tx = store.begin().await.unwrap();
        write_all(&mut tx, &[&c]).await.unwrap();
        tx.commit().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM idempotency")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(n, 2);
    }

    async fn service() -> (Arc<Idempotent>, Arc<Counter>, crate::store::tests::TempDir) {
        let (store, dir) = sqlite().await;
        let counter = Arc::new(Counter {
            store: store.clone(),
            runs: AtomicU32::new(0),
            publisher: Arc::new(Recorder::default()),
        });
        (
            Arc::new(Idempotent::new(counter.clone(), store)),
            counter,
            dir,
        )
    }

    fn req(key: &str, payload: &str, user: &str) -> Request {
        let mut r = Request::new(
            "create",
            Bytes::from(payload.to_string()),
            Duration::from_secs(5),
        );
        r.idempotency_key = key.into();
        r.caller = Some(troupe_proto::mesh::Caller {
            user_id: user.into(),
            ..Default::default()
        });
        r
    }

    async fn rows(svc: &Counter) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM todos")
            .fetch_one(svc.store.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_repeated_key_gets_the_first_answer_and_writes_once() {
        let (svc, counter, _dir) = service().await;
        let first = svc.handle(req("k1", "a", "ann")).await.unwrap();
        let again = svc.handle(req("k1", "a", "ann")).await.unwrap();
        assert_eq!((first.as_ref(), again.as_ref()), (&b"0:a"[..], &b"0:a"[..]));
        assert_eq!(counter.runs.load(Ordering::SeqCst), 1);
        // Another request under the same key, another caller, or no key: other writes.
        assert_eq!(
            svc.handle(req("k1", "b", "ann")).await.unwrap().as_ref(),
            b"1:b"
        );
        assert_eq!(
            svc.handle(req("k1", "a", "bob")).await.unwrap().as_ref(),
            b"2:a"
        );
        assert_eq!(
            svc.handle(req("", "a", "ann")).await.unwrap().as_ref(),
            b"3:a"
        );
        assert_eq!(rows(&counter).await, 4);
    }

    #[tokio::test]
    async fn racing_runs_of_one_key_commit_once_and_answer_alike() {
        let (svc, counter, _dir) = service().await;
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let svc = svc.clone();
                tokio::spawn(async move { svc.handle(req("race", "x", "ann")).await })
            })
            .collect();
        let mut answers = Vec::new();
        for r in runs {
            answers.push(r.await.unwrap().unwrap());
        }
        assert!(answers.iter().all(|a| a.as_ref() == b"0:x"), "{answers:?}");
        assert_eq!(rows(&counter).await, 1);
    }

    #[tokio::test]
    async fn a_made_key_run_again_after_its_commit_answers_the_first_answer() {
        let (svc, counter, _dir) = service().await;
        let key = format!("{MADE}abc");
        let first = svc.handle(req(&key, "m", "ann")).await.unwrap();
        // The router's retry (the first worker died after answering, say).
        let retry = svc.handle(req(&key, "m", "ann")).await.unwrap();
        assert_eq!(first, retry);
        assert_eq!(rows(&counter).await, 1);
        assert_eq!(
            counter.runs.load(Ordering::SeqCst),
            2,
            "no lookup before a made key's run"
        );
    }

    #[tokio::test]
    async fn old_answers_are_swept() {
        let (svc, counter, _dir) = service().await;
        svc.handle(req("k", "a", "ann")).await.unwrap();
        sqlx::query("UPDATE idempotency SET created_at = 1")
            .execute(counter.store.writer())
            .await
            .unwrap();
        assert_eq!(sweep(&counter.store).await.unwrap(), 1);
        assert_eq!(
            svc.handle(req("k", "a", "ann")).await.unwrap().as_ref(),
            b"1:a"
        );
    }

    #[test]
    fn client_keys_are_visible_ascii_up_to_255() {
        assert!(check("order-1").is_ok());
        for bad in ["", "a b", "\u{7f}", &"x".repeat(256)] {
            assert_eq!(
                check(bad).unwrap_err().code,
                Code::InvalidArgument,
                "{bad:?}"
            );
        }
    }
}
