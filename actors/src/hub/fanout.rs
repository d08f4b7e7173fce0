//! Fan-out to the hub of every member this node routes to (`Target::Node`, one call per
//! node): [`deliver`], [`broadcast_all`] and [`list_all`] wait for the answers; [`send`]
//! (and the presence notes, through `tell_all`) return at once ([`Router::tell`]).

use std::time::Duration;

use bytes::Bytes;

use super::{BroadcastRequest, ConnectionInfo, DeliverRequest, ListRequest};
use super::{BROADCAST, DELIVER, LIST};
use crate::mesh::{MeshError, Op, Router, Target};

/// Deadline of one per-node hub call of a fan-out.
pub const FAN_OUT_TIMEOUT: Duration = Duration::from_secs(1);

/// Sends one call to the hub of every member this node routes to, concurrently; the
/// answers of the members that answered in time.
async fn fan_out<Req, Rep>(
    router: &Router,
    op: &Op<Req, Rep>,
    req: Req,
) -> Vec<(String, Result<Rep, MeshError>)>
where
    Req: prost::Message + Default + Clone,
    Rep: prost::Message + Default + 'static,
{
    let handles: Vec<_> = router
        .members()
        .iter()
        .map(|node| {
            let call = op
                .call(req.clone())
                .to(Target::Node(node.clone()))
                .timeout(FAN_OUT_TIMEOUT);
            let router = router.clone();
            let node = node.clone();
            tokio::spawn(async move { (node, router.call(call).await) })
        })
        .collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(answer) = h.await {
            out.push(answer);
        }
    }
    out
}

/// Sends one call to the hub of every member this node routes to and returns at once: for
/// fan-out whose answers nobody reads.
pub(super) fn tell_all<Req, Rep>(router: &Router, op: &Op<Req, Rep>, req: Req)
where
    Req: prost::Message + Default + Clone,
    Rep: prost::Message + 'static,
{
    for node in router.members().iter() {
        let call = op
            .call(req.clone())
            .to(Target::Node(node.clone()))
            .timeout(FAN_OUT_TIMEOUT);
        router.tell(call);
    }
}

/// Delivers frames to users' connections on every node; per item, the connections reached.
pub async fn deliver(router: &Router, req: DeliverRequest) -> Vec<u32> {
    let mut total = vec![0u32; req.items.len()];
    for (node, answer) in fan_out(router, &DELIVER, req).await {
        match answer {
            Ok(r) => {
                for (t, d) in total.iter_mut().zip(r.delivered) {
                    *t += d;
                }
            }
            Err(e) => tracing::warn!(node = %node, error = %e, "live delivery to a node failed"),
        }
    }
    total
}

/// Delivers frames to users' connections on every node without waiting: for deliveries
/// whose count nobody reads (presence, receipts). A node that misses one only logs it.
pub fn send(router: &Router, req: DeliverRequest) {
    tell_all(router, &DELIVER, req);
}

/// Queues `frame` on every connection of every node; the connections reached and the nodes
/// that answered.
pub async fn broadcast_all(router: &Router, frame: Bytes) -> (u32, Vec<String>) {
    let mut delivered = 0;
    let mut nodes = Vec::new();
    for (node, answer) in fan_out(router, &BROADCAST, BroadcastRequest { frame }).await {
        match answer {
            Ok(r) => {
                delivered += r.delivered;
                nodes.push(node);
            }
            Err(e) => tracing::warn!(node = %node, error = %e, "broadcast to a node failed"),
        }
    }
    nodes.sort();
    (delivered, nodes)
}

/// Every open connection in the cluster (of `user_id` only, unless empty), by node and
/// opening time.
pub async fn list_all(router: &Router, user_id: &str) -> Vec<ConnectionInfo> {
    let req = ListRequest {
        user_id: user_id.to_string(),
    };
    let mut items: Vec<ConnectionInfo> = fan_out(router, &LIST, req)
        .await
        .into_iter()
        .filter_map(|(node, answer)| match answer {
            Ok(list) => Some(list.items),
            Err(e) => {
                tracing::warn!(node = %node, error = %e, "listing a node's connections failed");
                None
            }
        })
        .flatten()
        .collect();
    items.sort_by(|a, b| (&a.node, a.since_ms, a.id).cmp(&(&b.node, b.since_ms, b.id)));
    items
}
