//! The runtime's own services, hosted on every node like any other.
//!
//! - `system`: [`health`] (this node's services, workers and dependencies), [`actors`]
//!   (the actor listing behind `/admin/actors`) and [`kill`] (chaos: kill worker actors).
//! - [`dependencies`]: background checks of the store, the MQTT broker and the SMTP
//!   server, which [`health`] reads.
//!
//! `ping`, which the heartbeat uses, is the mesh's own ([`crate::mesh::heartbeat`]).

pub mod actors;
pub mod dependencies;
pub mod health;
pub mod kill;

use std::sync::Arc;

use bytes::Bytes;
use troupe_proto::mesh::{ActorList, KillReply, KillRequest, NodeHealth};

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
    }
}

/// The `system` service.
pub struct System(pub Arc<NodeInfo>);

impl Service for System {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        let info = &self.0;
        let answer = Cmd::parse(&req).and_then(|cmd| match cmd {
            Cmd::Health(()) => HEALTH.reply(Ok(health::report(info))),
            Cmd::Actors(()) => ACTORS.reply(Ok(actors::run(info))),
            Cmd::Kill(k) => KILL.reply(kill::run(info, k)),
        });
        Box::pin(std::future::ready(answer))
    }
}

/// The runtime's services a node hosts besides `ping`, which the mesh starts itself.
pub fn services(info: &Arc<NodeInfo>) -> Vec<Arc<dyn Service>> {
    vec![Arc::new(System(info.clone()))]
}
