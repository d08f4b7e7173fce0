//! The bus: the node's [`Publish`] implementation over the outbox and its delivery lanes.

use std::sync::Arc;

use super::delivery::{Lane, Retry};
use super::outbox::{Entry, Outbox};
use super::sink::Sink;
use super::{Enqueued, Event, NewEvent, Publish};
use crate::mesh::{Code, MeshError};
use crate::store::time::{now_ms, rfc3339_millis};

/// Longest accepted event kind.
const MAX_KIND: usize = 64;

/// The event bus of one node. Publishing writes one outbox entry per interested sink,
/// waits for them to be on disk, then hands them to the sinks' lanes.
pub struct Bus {
    node: Arc<str>,
    outbox: Arc<Outbox>,
    lanes: Vec<Lane>,
}

impl Bus {
    /// Starts a lane per sink. Call [`Bus::redeliver`] once the node can route, to hand
    /// the lanes what the outbox still holds from before.
    pub fn start(
        node: Arc<str>,
        outbox: Arc<Outbox>,
        sinks: Vec<Arc<dyn Sink>>,
        retry: Retry,
    ) -> Arc<Bus> {
        let lanes: Vec<Lane> = sinks
            .into_iter()
            .map(|s| Lane::start(s, outbox.clone(), retry))
            .collect();
        Arc::new(Bus {
            node,
            outbox,
            lanes,
        })
    }

    /// Hands every entry left in the outbox (by an earlier run of the node) to its lane.
    /// Entries for a sink that is no longer configured become dead letters.
    pub fn redeliver(&self) {
        let backlog = self.outbox.backlog();
        if !backlog.is_empty() {
            tracing::info!(
                entries = backlog.len(),
                "redelivering events left in the outbox"
            );
        }
        for mut pending in backlog {
            match self
                .lanes
                .iter()
                .find(|l| l.sink.name() == pending.entry.sink)
            {
                Some(lane) => lane.send(pending),
                None => {
                    pending.entry.last_error = "sink not configured on this node".into();
                    pending.entry.failed_at = now_ms();
                    if let Err(e) = self.outbox.bury(&pending) {
                        tracing::warn!(error = %e, "cannot move an orphaned entry to the dead-letter queue");
                    }
                }
            }
        }
    }

    /// The outbox.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Names of the sinks events go to.
    pub fn sinks(&self) -> Vec<String> {
        self.lanes
            .iter()
            .map(|l| l.sink.name().to_string())
            .collect()
    }

    /// Puts a dead letter back in the outbox with its attempts reset; answers it.
    pub async fn replay(&self, id: &str) -> Result<Entry, MeshError> {
        let entry = self
            .outbox
            .dead_letter(id)?
            .ok_or_else(|| MeshError::not_found("no such dead letter"))?;
        let lane = self
            .lanes
            .iter()
            .find(|l| l.sink.name() == entry.sink)
            .ok_or_else(|| {
                MeshError::new(
                    Code::FailedPrecondition,
                    format!("sink {} is not configured on this node", entry.sink),
                )
            })?;
        let mut fresh = entry.clone();
        fresh.attempts = 0;
        let pending = self.outbox.push(fresh)?;
        self.outbox.drop_dead(id)?;
        self.outbox.commit().await?;
        lane.send(pending);
        Ok(entry)
    }
}

/// Checks an event kind: 1-64 characters of `a-z`, `0-9`, `.`, `_`, `-`.
pub fn check_kind(kind: &str) -> Result<(), MeshError> {
    let ok = !kind.is_empty()
        && kind.len() <= MAX_KIND
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(MeshError::invalid(format!(
            "event kind must be 1-{MAX_KIND} characters of a-z, 0-9, '.', '_', '-'"
        )))
    }
}

impl Publish for Bus {
    fn enqueue(&self, new: NewEvent) -> Result<Enqueued, MeshError> {
        check_kind(&new.kind)?;
        let event = Event {
            id: new.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            kind: new.kind,
            time: rfc3339_millis(now_ms()),
            source: self.node.to_string(),
            user_id: new.user_id,
            payload: new.payload,
        };
        let mut pushed = Vec::with_capacity(self.lanes.len());
        for lane in self.lanes.iter().filter(|l| l.sink.wants(&event.kind)) {
            pushed.push((
                lane.clone(),
                self.outbox
                    .push(Entry::new(event.clone(), lane.sink.name()))?,
            ));
        }
        let on_disk = self.outbox.commit_later();
        Ok(Enqueued {
            event,
            durable: Box::pin(async move {
                on_disk.await?;
                for (lane, pending) in pushed {
                    lane.send(pending);
                }
                metrics::counter!(super::metrics::PUBLISHED).increment(1);
                Ok(())
            }),
        })
    }
}
