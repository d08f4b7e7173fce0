//! The bus: the node's [`Publish`] implementation over the transactional outbox, its
//! relay and its delivery lanes.

use std::sync::{Arc, Mutex};

use sqlx::AnyConnection;
use tokio::sync::mpsc;

use super::delivery::{Done, Lane, Retry};
use super::outbox::Outbox;
use super::relay;
use super::sink::Sink;
use super::{Enqueued, Event, NewEvent, Publish};
use crate::mesh::{BoxFuture, MeshError};
use crate::store::batch::Batcher;
use crate::store::time::{now_ms, rfc3339_millis};

/// Longest accepted event kind.
const MAX_KIND: usize = 64;
/// Events one batched insert writes at most.
const INSERT_BATCH: usize = 512;
/// Events waiting for the batched insert at most; past it publishing answers
/// `unavailable`, like a full outbox.
const INSERT_QUEUE: usize = 16_384;

/// The event bus of one node. A service with a transaction stages its events in it
/// ([`Publish::prepare`], [`Publish::stage`], [`Publish::committed`]); other publishers
/// hand them over ([`Publish::enqueue`]) and a batching task writes them. The relay
/// delivers both.
pub struct Bus {
    node: Arc<str>,
    outbox: Arc<Outbox>,
    lanes: Vec<Lane>,
    inserts: Batcher<Event, ()>,
    /// The lanes' reports, until the relay starts.
    reports: Mutex<Option<mpsc::UnboundedReceiver<Done>>>,
    settings: relay::Settings,
}

impl Bus {
    /// Starts a lane per sink and the batched inserter. Call [`Bus::start_relay`] once the
    /// node can route.
    pub fn start(
        node: Arc<str>,
        outbox: Arc<Outbox>,
        sinks: Vec<Arc<dyn Sink>>,
        retry: Retry,
        settings: relay::Settings,
    ) -> Arc<Bus> {
        let (report, reports) = mpsc::unbounded_channel();
        let lanes: Vec<Lane> = sinks
            .into_iter()
            .map(|s| Lane::start(s, retry, report.clone()))
            .collect();
        let inserts = inserter(outbox.clone());
        Arc::new(Bus {
            node,
            outbox,
            lanes,
            inserts,
            reports: Mutex::new(Some(reports)),
            settings,
        })
    }

    /// Starts the relay (once; later calls do nothing): from now on committed events,
    /// this node's and any dead node's, are delivered.
    pub fn start_relay(&self) {
        let reports = self.reports.lock().ok().and_then(|mut r| r.take());
        if let Some(reports) = reports {
            tokio::spawn(relay::run(
                self.outbox.clone(),
                self.lanes.clone(),
                reports,
                self.settings,
            ));
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

    fn event(&self, new: NewEvent) -> Result<Event, MeshError> {
        check_kind(&new.kind)?;
        Ok(Event {
            id: new.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            kind: new.kind,
            time: rfc3339_millis(now_ms()),
            source: self.node.to_string(),
            user_id: new.user_id,
            payload: new.payload,
        })
    }
}

/// The batched writer of the events handed to [`Bus::enqueue`]: as many per transaction
/// as are waiting (up to [`INSERT_BATCH`]), in the order they came.
fn inserter(outbox: Arc<Outbox>) -> Batcher<Event, ()> {
    Batcher::start(
        "outbox",
        INSERT_BATCH,
        INSERT_QUEUE,
        Arc::new(move |events: Vec<Event>| {
            let outbox = outbox.clone();
            Box::pin(async move {
                outbox.insert(&events).await?;
                outbox.wake();
                metrics::counter!(super::metrics::PUBLISHED).increment(events.len() as u64);
                Ok(vec![(); events.len()])
            })
        }),
    )
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
        self.outbox.admit(1)?;
        let event = self.event(new)?;
        let durable = self.inserts.enqueue(event.clone())?;
        Ok(Enqueued { event, durable })
    }

    fn prepare(&self, new: NewEvent) -> Result<Event, MeshError> {
        self.outbox.admit(1)?;
        self.event(new)
    }

    fn stage<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        events: &'a [Event],
    ) -> BoxFuture<'a, Result<(), MeshError>> {
        Box::pin(self.outbox.stage(conn, events))
    }

    fn committed(&self, events: &[Event]) {
        if !events.is_empty() {
            self.outbox.wake();
            metrics::counter!(super::metrics::PUBLISHED).increment(events.len() as u64);
        }
    }
}
