//! The node-local outbox: a sled database with two trees.
//!
//! - `pending`: one entry per (event, sink) still to deliver, keyed by a monotonic sequence
//!   number (8 bytes, big endian) followed by the sink name, so a scan yields them in
//!   publish order.
//! - `dead`: entries that exhausted their attempts, keyed by their dead-letter id
//!   `<event id>.<sink>`.
//!
//! Writes go to sled's in-memory log first; [`Outbox::commit`] makes them durable with one
//! `flush` shared by every publisher waiting at that moment (group commit).

use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

use super::Event;
use crate::mesh::MeshError;

/// How long a publish waits for its flush before answering `unavailable`.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// One delivery of one event to one sink, as the outbox keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The event.
    pub event: Event,
    /// Name of the sink it goes to.
    pub sink: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// The last failure, if any.
    #[serde(default)]
    pub last_error: String,
    /// When the last attempt failed (unix ms; 0 = never).
    #[serde(default)]
    pub failed_at: i64,
}

impl Entry {
    /// A fresh entry: no attempt yet.
    pub fn new(event: Event, sink: &str) -> Self {
        Self {
            event,
            sink: sink.to_string(),
            attempts: 0,
            last_error: String::new(),
            failed_at: 0,
        }
    }

    /// The id the entry has in the dead-letter queue.
    pub fn dead_id(&self) -> String {
        format!("{}.{}", self.event.id, self.sink)
    }

    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an outbox entry serializes")
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// A pending entry with its key.
#[derive(Clone, Debug)]
pub struct Pending {
    /// Key in the `pending` tree.
    pub key: sled::IVec,
    /// The entry.
    pub entry: Entry,
}

/// The outbox of one node.
pub struct Outbox {
    db: sled::Db,
    pending: sled::Tree,
    dead: sled::Tree,
    depth: AtomicI64,
    /// Commit tickets handed out.
    requested: AtomicU64,
    /// The highest ticket known durable.
    durable: watch::Sender<u64>,
    wake: Arc<Notify>,
}

fn storage(e: sled::Error) -> MeshError {
    tracing::error!(error = %e, "outbox storage failure");
    MeshError::unavailable("event outbox unavailable")
}

impl Outbox {
    /// Opens (creating it if missing) the outbox at `path` and starts its flusher.
    pub fn open(path: &Path) -> anyhow::Result<Arc<Self>> {
        let db = sled::Config::new()
            .path(path)
            // Publishers flush explicitly; the background flush only bounds what a crash
            // of a node that published nothing recently could lose of bookkeeping.
            .flush_every_ms(Some(1000))
            .open()?;
        let pending = db.open_tree("pending")?;
        let dead = db.open_tree("dead")?;
        let depth = pending.len() as i64;
        let (durable, _) = watch::channel(0);
        let me = Arc::new(Self {
            db,
            pending,
            dead,
            depth: AtomicI64::new(depth),
            requested: AtomicU64::new(0),
            durable,
            wake: Arc::new(Notify::new()),
        });
        me.gauge();
        tokio::spawn(flusher(Arc::downgrade(&me), me.wake.clone()));
        Ok(me)
    }

    /// Entries waiting for delivery.
    pub fn depth(&self) -> i64 {
        self.depth.load(Ordering::Relaxed)
    }

    fn gauge(&self) {
        super::metrics::set_depth(self.depth());
    }

    fn add_depth(&self, delta: i64) {
        self.depth.fetch_add(delta, Ordering::Relaxed);
        self.gauge();
    }

    /// Adds a pending entry (not yet durable: see [`Outbox::commit`]).
    pub fn push(&self, entry: Entry) -> Result<Pending, MeshError> {
        let seq = self.db.generate_id().map_err(storage)?;
        let mut key = seq.to_be_bytes().to_vec();
        key.extend_from_slice(entry.sink.as_bytes());
        let key = sled::IVec::from(key);
        self.pending
            .insert(key.clone(), entry.encode())
            .map_err(storage)?;
        self.add_depth(1);
        Ok(Pending { key, entry })
    }

    /// Waits until everything written before the call is on disk.
    pub async fn commit(&self) -> Result<(), MeshError> {
        self.commit_later().await
    }

    /// [`Outbox::commit`] asked for now and awaited later: the wait covers everything
    /// written before this call, and borrows nothing.
    pub fn commit_later(
        &self,
    ) -> impl std::future::Future<Output = Result<(), MeshError>> + Send + 'static {
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut rx = self.durable.subscribe();
        self.wake.notify_one();
        async move {
            let durable = async move { rx.wait_for(|d| *d >= ticket).await.is_ok() };
            match tokio::time::timeout(COMMIT_TIMEOUT, durable).await {
                Ok(true) => Ok(()),
                _ => Err(MeshError::unavailable(
                    "event outbox did not reach the disk",
                )),
            }
        }
    }

    /// Every pending entry, in publish order (at start-up, for redelivery).
    pub fn backlog(&self) -> Vec<Pending> {
        self.pending
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(key, value)| {
                let entry = Entry::decode(&value)?;
                Some(Pending { key, entry })
            })
            .collect()
    }

    /// Forgets a delivered entry.
    pub fn delivered(&self, key: &sled::IVec) -> Result<(), MeshError> {
        if self.pending.remove(key).map_err(storage)?.is_some() {
            self.add_depth(-1);
        }
        Ok(())
    }

    /// Records a failed attempt of a pending entry.
    pub fn retry_later(&self, pending: &Pending) -> Result<(), MeshError> {
        self.pending
            .insert(pending.key.clone(), pending.entry.encode())
            .map_err(storage)?;
        Ok(())
    }

    /// Moves an entry that exhausted its attempts to the dead-letter queue.
    pub fn bury(&self, pending: &Pending) -> Result<(), MeshError> {
        self.dead
            .insert(pending.entry.dead_id().as_bytes(), pending.entry.encode())
            .map_err(storage)?;
        self.delivered(&pending.key)?;
        Ok(())
    }

    /// The dead letters, oldest failure first.
    pub fn dead_letters(&self) -> Vec<Entry> {
        let mut all: Vec<Entry> = self
            .dead
            .iter()
            .values()
            .filter_map(Result::ok)
            .filter_map(|v| Entry::decode(&v))
            .collect();
        all.sort_by(|a, b| {
            (a.failed_at, &a.event.id, &a.sink).cmp(&(b.failed_at, &b.event.id, &b.sink))
        });
        all
    }

    /// One dead letter.
    pub fn dead_letter(&self, id: &str) -> Result<Option<Entry>, MeshError> {
        Ok(self
            .dead
            .get(id.as_bytes())
            .map_err(storage)?
            .and_then(|v| Entry::decode(&v)))
    }

    /// Removes a dead letter; answers it as it was.
    pub fn drop_dead(&self, id: &str) -> Result<Option<Entry>, MeshError> {
        Ok(self
            .dead
            .remove(id.as_bytes())
            .map_err(storage)?
            .and_then(|v| Entry::decode(&v)))
    }
}

/// Flushes whenever someone waits for a commit; one flush serves every ticket handed out
/// before it started.
async fn flusher(outbox: std::sync::Weak<Outbox>, wake: Arc<Notify>) {
    loop {
        let Some(me) = outbox.upgrade() else { return };
        let target = me.requested.load(Ordering::SeqCst);
        if *me.durable.borrow() >= target {
            drop(me);
            // No strong reference while waiting, so a dropped outbox ends the loop at the
            // next wake-up; a periodic wake-up bounds that. `notify_one` leaves a permit
            // when nobody waits, so no request is missed.
            let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
            continue;
        }
        let db = me.db.clone();
        match tokio::task::spawn_blocking(move || db.flush()).await {
            Ok(Ok(_)) => {
                me.durable.send_if_modified(|d| {
                    let changed = *d < target;
                    *d = (*d).max(target);
                    changed
                });
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "outbox flush failed, retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "outbox flush task failed, retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> Event {
        Event {
            id: id.into(),
            kind: "user.registered".into(),
            time: "2026-01-01T00:00:00.000Z".into(),
            source: "n1".into(),
            user_id: Some("u1".into()),
            payload: serde_json::json!({"username": "ann"}),
        }
    }

    fn dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "troupe-outbox-{tag}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[tokio::test]
    async fn committed_entries_survive_a_reopen_in_publish_order() {
        let path = dir("reopen");
        {
            let outbox = Outbox::open(&path).unwrap();
            outbox.push(Entry::new(event("e1"), "mqtt")).unwrap();
            outbox.push(Entry::new(event("e2"), "mqtt")).unwrap();
            outbox.commit().await.unwrap();
            assert_eq!(outbox.depth(), 2);
        }
        // The flusher holds only a weak reference: wait for sled to release its lock.
        let mut reopened = None;
        for _ in 0..50 {
            match Outbox::open(&path) {
                Ok(o) => {
                    reopened = Some(o);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let outbox = reopened.expect("outbox reopens");
        let ids: Vec<String> = outbox
            .backlog()
            .into_iter()
            .map(|p| p.entry.event.id)
            .collect();
        assert_eq!(ids, ["e1", "e2"]);
        assert_eq!(outbox.depth(), 2);
    }

    #[tokio::test]
    async fn buried_entries_become_dead_letters_and_can_be_dropped() {
        let outbox = Outbox::open(&dir("dead")).unwrap();
        let mut p = outbox.push(Entry::new(event("e1"), "mqtt")).unwrap();
        p.entry.attempts = 3;
        p.entry.last_error = "connection refused".into();
        outbox.bury(&p).unwrap();
        assert_eq!(outbox.depth(), 0);
        assert!(outbox.backlog().is_empty());
        let dead = outbox.dead_letters();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].dead_id(), "e1.mqtt");
        assert_eq!(dead[0].attempts, 3);
        assert_eq!(
            outbox.dead_letter("e1.mqtt").unwrap().unwrap().last_error,
            "connection refused"
        );
        assert!(outbox.drop_dead("e1.mqtt").unwrap().is_some());
        assert!(outbox.drop_dead("e1.mqtt").unwrap().is_none());
        assert!(outbox.dead_letters().is_empty());
    }
}
