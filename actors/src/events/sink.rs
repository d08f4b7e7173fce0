//! Where events go: the [`Sink`] trait, and [`Subscriber`], the sink that hands events to a
//! subscribing service through the mesh.
//!
//! Other crates implement [`Sink`] for their destinations (the MQTT bridge in
//! `troupe-protocols`), so this crate never depends on them.

use std::sync::Arc;
use std::time::Duration;

use super::{Event, EventJson};
use crate::mesh::{BoxFuture, MeshError, NodeInfo, Op};

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

/// Delivers events to a service of the cluster: a call of its `op` with the event
/// ([`EventJson`]), on any member hosting the service (this node first). The op's answer
/// only says that the service has the event.
pub struct Subscriber<Rep> {
    info: Arc<NodeInfo>,
    op: Op<EventJson, Rep>,
    timeout: Duration,
    wants: fn(&str) -> bool,
}

impl<Rep> Subscriber<Rep> {
    /// A subscriber sink calling `op` with every event, named after its service.
    pub fn new(info: Arc<NodeInfo>, op: Op<EventJson, Rep>) -> Self {
        Self {
            info,
            op,
            timeout: Duration::from_secs(10),
            wants: |_| true,
        }
    }

    /// Only events whose kind `wants` accepts go to the service: an event it would only
    /// acknowledge costs no outbox entry, no call and no delivery bookkeeping.
    pub fn only(self, wants: fn(&str) -> bool) -> Self {
        Self { wants, ..self }
    }
}

impl<Rep: prost::Message + Default + 'static> Sink for Subscriber<Rep> {
    /// The sink is named after the service it delivers to, not after the op.
    #[allow(clippy::misnamed_getters)]
    fn name(&self) -> &str {
        self.op.service
    }

    fn wants(&self, kind: &str) -> bool {
        (self.wants)(kind)
    }

    /// A subscribing service writes what it consumes many events to a transaction (its
    /// group commit): the more deliveries in flight, the larger its batches.
    fn concurrency(&self) -> usize {
        128
    }

    fn deliver(&self, event: Arc<Event>) -> BoxFuture<'static, Result<(), MeshError>> {
        let router = self.info.router().cloned();
        let call = self
            .op
            .call(EventJson::of(&event))
            .timeout(self.timeout)
            .request_id(format!("event-{}", event.id));
        Box::pin(async move {
            router?.call(call).await?;
            Ok(())
        })
    }
}
