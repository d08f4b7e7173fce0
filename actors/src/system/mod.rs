//! The runtime's own services, hosted on every node like any other.
//!
//! - `system`: [`health`] (this node's services, workers and dependencies), [`actors`]
//!   (the actor listing behind `/admin/actors`), [`kill`] (chaos: kill worker actors),
//!   [`history`] (the last five minutes, one sample a second, for `/dashboard`) and
//!   `placement` (the entities this node hosts, by kind).
//! - [`dependencies`]: background checks of the store, the MQTT broker and the SMTP
//!   server, which [`health`] reads.
//!
//! `ping`, which the heartbeat uses, is the mesh's own ([`crate::mesh::heartbeat`]).

pub mod actors;
pub mod dependencies;
pub mod health;
pub mod history;
pub mod kill;

use std::sync::Arc;

use bytes::Bytes;
use troupe_proto::mesh::{
    ActorList, History, HistoryRequest, KillReply, KillRequest, NodeHealth, PlacedKind, Placement,
};

use crate::mesh::{BoxFuture, MeshError, NodeInfo, Request, Service};

/// Name of the system service.
pub const NAME: &str = "system";

crate::ops! {
    /// An op of `system`, decoded at the service's edge.
    pub enum Cmd for NAME {
        /// This node's status and its service groups ([`health`]).
        Health = HEALTH("health", idempotent): () => NodeHealth,
        /// Every service actor on this node ([`actors`]).
        Actors = ACTORS("actors", idempotent): () => ActorList,
        /// Kill worker actors, for chaos tests ([`kill`]).
        Kill = KILL("kill", effectful): KillRequest => KillReply,
        /// This node's samples after a time ([`history`]).
        History = HISTORY("history", idempotent): HistoryRequest => History,
        /// The entities this node hosts, by kind, at most [`PLACED_IDS`] ids of each.
        Placement = PLACEMENT("placement", idempotent): () => Placement,
    }
}

/// Most ids of one kind of entity a placement answer lists.
pub const PLACED_IDS: usize = 500;

/// The `system` service.
pub struct System(pub Arc<NodeInfo>);

impl Service for System {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        let info = &self.0;
        Box::pin(async move {
            match Cmd::parse(&req)? {
                Cmd::Health(()) => HEALTH.reply(Ok(health::report(info))),
                Cmd::Actors(()) => ACTORS.reply(Ok(actors::run(info))),
                Cmd::Kill(k) => KILL.reply(kill::run(info, k)),
                Cmd::History(r) => {
                    HISTORY.reply(Ok(history::HISTORY.read(&info.node, info.incarnation, r)))
                }
                Cmd::Placement(()) => PLACEMENT.reply(Ok(placement(info).await)),
            }
        })
    }
}

/// The entities `info`'s node hosts, by kind.
async fn placement(info: &NodeInfo) -> Placement {
    let kinds = info
        .hosted()
        .await
        .into_iter()
        .map(|(kind, mut ids)| {
            let total = ids.len() as u32;
            ids.sort();
            ids.truncate(PLACED_IDS);
            PlacedKind {
                kind: kind.to_string(),
                ids,
                total,
            }
        })
        .collect();
    Placement {
        node: info.node.to_string(),
        kinds,
    }
}

/// The runtime's services a node hosts besides `ping`, which the mesh starts itself.
pub fn services(info: &Arc<NodeInfo>) -> Vec<Arc<dyn Service>> {
    vec![Arc::new(System(info.clone()))]
}
