//! The runtime's heartbeat, and the `ping` service it measures with.
//!
//! Every node hosts `ping` because the runtime starts it ([`super::Mesh::start`] adds it to
//! the node's services): nothing outside the mesh has to remember to register it. Once a
//! second the heartbeat calls `ping.ping` on every routable peer and records the round trip
//! (`troupe_heartbeat_rtt_seconds`, and the RTT column of `/cluster`). `GET /ping` uses the
//! same op.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use troupe_proto::mesh::PingReply;

use super::membership::RttTable;
use super::{BoxFuture, MeshError, NodeInfo, Request, Router, Service, Target};

/// Name of the ping service.
pub const NAME: &str = "ping";

crate::ops! {
    /// An op of `ping`.
    pub enum Cmd for NAME {
        /// Which node and incarnation answered.
        Ping = PING("ping", idempotent): () => PingReply,
    }
}

/// The `ping` service.
pub struct Ping(pub Arc<NodeInfo>);

impl Ping {
    fn pong(&self) -> PingReply {
        PingReply {
            node: self.0.node.to_string(),
            incarnation: self.0.incarnation,
        }
    }
}

impl Service for Ping {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        let answer = Cmd::parse(&req).and_then(|cmd| match cmd {
            Cmd::Ping(()) => PING.reply(Ok(self.pong())),
        });
        Box::pin(std::future::ready(answer))
    }
}

/// Every second, a `ping` to each routable peer; records the round trip.
pub(super) async fn run(node: Arc<str>, router: Router, rtt: RttTable) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let members = router.members();
        for peer in members.iter().filter(|m| **m != *node) {
            let started = Instant::now();
            let call = PING
                .call(())
                .to(Target::Node(peer.clone()))
                .timeout(Duration::from_millis(500));
            if router.call(call).await.is_ok() {
                let d = started.elapsed();
                metrics::histogram!(crate::metrics::HEARTBEAT_RTT_SECONDS, "peer" => peer.clone())
                    .record(d.as_secs_f64());
                rtt.lock().expect("rtt lock").insert(peer.clone(), d);
            }
        }
        let members: HashSet<&String> = members.iter().collect();
        rtt.lock()
            .expect("rtt lock")
            .retain(|p, _| members.contains(p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::service::call_op;

    #[tokio::test]
    async fn ping_names_the_node_and_incarnation() {
        let svc = Ping(NodeInfo::new("n7".into(), 42));
        let reply = call_op(&svc, &PING, (), None).await.unwrap();
        assert_eq!(reply.node, "n7");
        assert_eq!(reply.incarnation, 42);
    }
}
