//! Where events go: the [`Sink`] trait, and [`Subscriber`], the sink that hands events to a
//! subscribing service through the mesh.
//!
//! Other crates implement [`Sink`] for their destinations (the MQTT bridge in
//! `troupe-protocols`), so this crate never depends on them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::Event;
use crate::mesh::{BoxFuture, Call, MeshError, NodeInfo};

/// A destination of events. The outbox calls [`Sink::deliver`] until it succeeds (or the
/// attempts run out), so a sink must tolerate the same event twice.
pub trait Sink: Send + Sync + 'static {
    /// Unique name among the node's sinks (`[A-Za-z0-9_-]`); part of dead-letter ids.
    fn name(&self) -> &str;

    /// Whether events of `kind` go to this sink at all.
    fn wants(&self, _kind: &str) -> bool {
        true
    }

    /// How many deliveries may be in flight at once.
    fn concurrency(&self) -> usize {
        32
    }

    /// Delivers one event; `Ok` only once the destination has it (e.g. the broker's
    /// PUBACK, the subscriber's reply).
    fn deliver(&self, event: Arc<Event>) -> BoxFuture<'static, Result<(), MeshError>>;
}

/// Delivers events to a service of the cluster: a call of `service`/`op` whose payload is
/// the event's JSON, on any member hosting the service (this node first).
pub struct Subscriber {
    info: Arc<NodeInfo>,
    service: &'static str,
    op: &'static str,
    timeout: Duration,
}

impl Subscriber {
    /// A subscriber sink named after `service`.
    pub fn new(info: Arc<NodeInfo>, service: &'static str, op: &'static str) -> Self {
        Self {
            info,
            service,
            op,
            timeout: Duration::from_secs(10),
        }
    }
}

impl Sink for Subscriber {
    fn name(&self) -> &str {
        self.service
    }

    fn deliver(&self, event: Arc<Event>) -> BoxFuture<'static, Result<(), MeshError>> {
        let router = self.info.router().cloned();
        let mut call = Call::new(self.service, self.op).timeout(self.timeout);
        call.payload = Bytes::from(serde_json::to_vec(&*event).unwrap_or_default());
        call.request_id = format!("event-{}", event.id);
        Box::pin(async move {
            router?.call(call).await?;
            Ok(())
        })
    }
}
