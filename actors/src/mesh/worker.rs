//! A service worker: runs one request at a time for its service.
//!
//! Workers are local-only actors (never announced to peers). The [`super::pool::Pool`] picks
//! one per request; the service's [`super::supervisor::Supervisor`] restarts it when it dies.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorMessage;

use super::{MeshError, Request, Service};

tokio::task_local! {
    /// The worker running the current request; lets chaos spare the actor answering it.
    pub static CURRENT: ractor::ActorId;
}

/// The worker actor; its state is the service it runs.
#[derive(Debug, Default)]
pub struct Worker;

/// Where a worker sends its answer.
pub enum Reply {
    /// A caller on this node.
    Local(RpcReplyPort<Result<Bytes, MeshError>>),
    /// A caller on another node: the answer is encoded and sent back through the mesh.
    Remote {
        /// ractor_cluster's reply port of the remote call.
        port: RpcReplyPort<Vec<u8>>,
        /// This node's name, for `served_by`.
        node: std::sync::Arc<str>,
        /// The admission slot, released once answered.
        admitted: super::pool::Admitted,
    },
}

impl Reply {
    fn is_closed(&self) -> bool {
        match self {
            Reply::Local(p) => p.is_closed(),
            Reply::Remote { port, .. } => port.is_closed(),
        }
    }

    fn send(self, answer: Result<Bytes, MeshError>) {
        match self {
            Reply::Local(p) => {
                let _ = p.send(answer);
            }
            Reply::Remote {
                port,
                node,
                admitted,
            } => {
                let _ = port.send(super::endpoint::encode_reply(answer, &node));
                drop(admitted);
            }
        }
    }
}

/// Messages of a [`Worker`].
#[derive(RactorMessage)]
pub enum WorkerMsg {
    /// Run one request and answer. Sent by [`super::pool::Pool::dispatch`] (local callers)
    /// and [`super::pool::Pool::dispatch_remote`] (calls from other nodes).
    Handle(Request, Reply),
}

impl Actor for Worker {
    type Msg = WorkerMsg;
    type State = Arc<dyn Service>;
    type Arguments = Arc<dyn Service>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        service: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(service)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        service: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkerMsg::Handle(req, reply) => {
                if reply.is_closed() {
                    // The caller gave up (deadline or disconnect): do not start work nobody awaits.
                    return Ok(());
                }
                let answer = if Instant::now() >= req.deadline {
                    Err(MeshError::deadline())
                } else {
                    CURRENT.scope(myself.get_id(), service.handle(req)).await
                };
                reply.send(answer);
            }
        }
        Ok(())
    }
}
