//! The keeper: on every node, fires the due reminders of the shards this node owns.
//!
//! It holds the reminders due within the next [`Settings::horizon`] in memory, ordered by
//! due time, reloads them from the store every [`Settings::poll`] (and at once when the
//! placement members or this node's ownership change), and sleeps until the soonest one is
//! due. Firing a batch is one store transaction: hold the rows (`claim`, whose conditions
//! skip a reminder another node fired meanwhile), stage one bus event per reminder in the
//! outbox with the reminder's id as the event id, and record them as fired. The events and
//! the record commit together, so a reminder fires once: a node that dies mid-batch leaves
//! nothing, and the shard's new owner fires the batch. Event ids stay the reminders' ids,
//! so a consumer would still drop a redelivery.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::metrics::{EXPIRED_TOTAL, FIRED_TOTAL, LATENESS_SECONDS};
use super::store::{self, Pending, EXPIRED, FIRED, SHARDS};
use crate::events::{NewEvent, Publisher, Staged};
use crate::mesh::placement;
use crate::mesh::NodeInfo;
use crate::store::time::now_ms;
use crate::store::Store;

/// Batches of one firing in flight at once.
const BATCHES_AT_ONCE: usize = 4;

/// How the keeper runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// How often it reloads the reminders due soon from the store.
    pub poll: Duration,
    /// How far ahead it loads reminders.
    pub horizon: Duration,
    /// How long a claim holds a reminder for the node firing it.
    pub hold: Duration,
    /// Most reminders claimed and published in one batch.
    pub batch: usize,
    /// Most reminders held in memory at once (the soonest due).
    pub window: i64,
}

impl Settings {
    /// Settings for a reload every `poll`.
    pub fn every(poll: Duration) -> Self {
        Self {
            poll,
            horizon: (poll * 5).max(Duration::from_secs(10)),
            hold: Duration::from_secs(30),
            batch: 500,
            window: 50_000,
        }
    }
}

/// The shards whose home among `members` is `me`.
pub fn owned_shards(members: &[String], me: &str) -> Vec<u32> {
    (0..SHARDS)
        .filter(|s| placement::home(&shard_entity(*s), members).is_some_and(|h| h.as_str() == me))
        .collect()
}

/// The placement entity id of a shard.
pub fn shard_entity(shard: u32) -> String {
    format!("reminders/{shard}")
}

/// What the keeper of one node works with.
pub struct Keeper {
    /// The node.
    pub info: Arc<NodeInfo>,
    /// The store the reminders are in.
    pub store: Store,
    /// Where fired reminders are published.
    pub publisher: Publisher,
    /// How it runs.
    pub settings: Settings,
}

impl Keeper {
    /// Fires `due` (all due now), a few batches at a time so one batch's statements overlap
    /// another's. Answers how many were published.
    pub async fn fire(&self, due: Vec<Pending>) -> usize {
        use futures_util::stream::{self, StreamExt as _};
        let batches: Vec<Vec<Pending>> = due
            .chunks(self.settings.batch.max(1))
            .map(<[Pending]>::to_vec)
            .collect();
        stream::iter(batches)
            .map(|batch| async move { self.fire_batch(&batch).await })
            .buffer_unordered(BATCHES_AT_ONCE)
            .fold(0, |published, outcome| async move {
                match outcome {
                    Ok(n) => published + n,
                    Err(e) => {
                        tracing::warn!(error = %e, "firing reminders failed; the next poll retries them");
                        published
                    }
                }
            })
            .await
    }

    /// Fires one batch in one transaction: holds the rows, stages one bus event per live
    /// reminder (the reminder's id as the event id) in the outbox, and records them fired
    /// (or expired). Either all of it commits or none of it: a reminder fires once.
    async fn fire_batch(&self, batch: &[Pending]) -> Result<usize, crate::mesh::MeshError> {
        let node = &*self.info.node;
        let now = now_ms();
        let hold = i64::try_from(self.settings.hold.as_millis()).unwrap_or(i64::MAX);
        let ids: Vec<&str> = batch.iter().map(|p| p.id.as_str()).collect();
        let mut tx = self.store.begin().await?;
        let held = store::claim(&mut *tx, &ids, node, now, now.saturating_add(hold)).await?;
        let (expired, live): (Vec<&Pending>, Vec<&Pending>) = held
            .iter()
            .partition(|p| p.expires_at.is_some_and(|e| e < now));
        let mut out = Staged::new(Some(&self.publisher));
        for p in &live {
            let payload = serde_json::from_str(&p.payload).unwrap_or(serde_json::Value::Null);
            out.add(NewEvent::new(&p.kind, Some(&p.user_id), payload).with_id(&p.id))?;
        }
        let at = now_ms();
        let fired: Vec<String> = live.iter().map(|p| p.id.clone()).collect();
        let expired: Vec<String> = expired.iter().map(|p| p.id.clone()).collect();
        store::record(&mut *tx, &fired, node, at, FIRED).await?;
        store::record(&mut *tx, &expired, node, at, EXPIRED).await?;
        out.write(&mut tx).await?;
        tx.commit().await.map_err(crate::store::db_error)?;
        out.committed();
        for p in &live {
            metrics::histogram!(LATENESS_SECONDS).record((at - p.due_at).max(0) as f64 / 1000.0);
        }
        if !expired.is_empty() {
            tracing::info!(
                reminders = expired.len(),
                "reminders came due after what they remind of had started; recorded as expired"
            );
        }
        metrics::counter!(FIRED_TOTAL).increment(fired.len() as u64);
        metrics::counter!(EXPIRED_TOTAL).increment(expired.len() as u64);
        Ok(fired.len())
    }

    /// The reminders of `shards` due within the horizon, soonest first.
    async fn load(&self, shards: &[u32]) -> Result<Vec<Pending>, crate::mesh::MeshError> {
        let now = now_ms();
        let horizon = i64::try_from(self.settings.horizon.as_millis()).unwrap_or(i64::MAX);
        store::upcoming(
            &self.store,
            shards,
            now.saturating_add(horizon),
            now,
            self.settings.window,
        )
        .await
    }
}

/// Runs the keeper of this node until the service is dropped.
pub async fn run(keeper: Weak<Keeper>) {
    let mut placement = loop {
        let Some(k) = keeper.upgrade() else { return };
        if let Ok(r) = k.info.router() {
            break r.watch_owned_placement();
        }
        drop(k);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut shards: Vec<u32> = Vec::new();
    let mut members = placement.current();
    let mut queue: BTreeMap<(i64, String), Pending> = BTreeMap::new();
    let mut next_poll = tokio::time::Instant::now();
    loop {
        let Some(k) = keeper.upgrade() else { return };
        let me = k.info.node.clone();
        let fresh = owned_shards(&members, &me);
        if fresh != shards {
            tracing::info!(
                shards = fresh.len(),
                "reminder shards owned by this node changed"
            );
            shards = fresh;
            queue.clear();
            next_poll = tokio::time::Instant::now();
        }
        let now = tokio::time::Instant::now();
        if now >= next_poll {
            match k.load(&shards).await {
                Ok(rows) => {
                    queue = rows
                        .into_iter()
                        .map(|p| ((p.due_at, p.id.clone()), p))
                        .collect();
                }
                Err(e) => tracing::warn!(error = %e, "loading due reminders failed"),
            }
            next_poll = tokio::time::Instant::now() + k.settings.poll;
        }
        // Fire everything due now.
        let now_wall = now_ms();
        let later = queue.split_off(&(now_wall + 1, String::new()));
        let due: Vec<Pending> = std::mem::replace(&mut queue, later).into_values().collect();
        if !due.is_empty() {
            k.fire(due).await;
            continue;
        }
        let wake = match queue.first_key_value() {
            Some(((due_at, _), _)) => {
                let wait = Duration::from_millis(u64::try_from(due_at - now_ms()).unwrap_or(0));
                (tokio::time::Instant::now() + wait).min(next_poll)
            }
            None => next_poll,
        };
        drop(k);
        tokio::select! {
            c = placement.changed() => match c {
                Some(list) => members = list,
                None => return,
            },
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}
