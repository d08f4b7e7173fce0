//! A service worker: runs one request at a time for its service.
//!
//! Workers are local-only actors (never announced to peers). The [`super::pool::Pool`] picks
//! one per request; the service's [`super::supervisor::Supervisor`] restarts it when it dies.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorMessage;

use super::{lane, trace, MeshError, Request, Service};

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
    Remote(Remote),
}

/// The answer path of a call from another node. If it is dropped unanswered (the worker
/// was killed with the call in its mailbox or mid-request), it answers `unavailable` itself:
/// a dropped remote reply port would otherwise leave the caller waiting for its deadline,
/// while `unavailable` lets the caller's router retry an idempotent op at once.
pub struct Remote {
    port: Option<RpcReplyPort<Vec<u8>>>,
    node: std::sync::Arc<str>,
    _admitted: super::admission::Admitted,
}

impl Remote {
    /// The reply path of one admitted remote call.
    pub fn new(
        port: RpcReplyPort<Vec<u8>>,
        node: std::sync::Arc<str>,
        admitted: super::admission::Admitted,
    ) -> Self {
        Self {
            port: Some(port),
            node,
            _admitted: admitted,
        }
    }

    /// Takes the port back unanswered (the call goes another way).
    pub fn into_port(mut self) -> RpcReplyPort<Vec<u8>> {
        self.port.take().expect("port present until answered")
    }

    fn send(mut self, answer: Result<Bytes, MeshError>) {
        if let Some(port) = self.port.take() {
            let _ = port.send(super::wire::encode_reply(answer, &self.node));
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(port) = self.port.take() {
            let stopped = MeshError::unavailable("worker stopped before answering");
            let _ = port.send(super::wire::encode_reply(Err(stopped), &self.node));
        }
    }
}

impl Reply {
    fn is_closed(&self) -> bool {
        match self {
            Reply::Local(p) => p.is_closed(),
            Reply::Remote(r) => r.port.as_ref().is_none_or(|p| p.is_closed()),
        }
    }

    fn send(self, answer: Result<Bytes, MeshError>) {
        match self {
            Reply::Local(p) => {
                let _ = p.send(answer);
            }
            Reply::Remote(r) => r.send(answer),
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
                    let mut req = req;
                    let outer = std::mem::take(&mut req.chain);
                    let trace = req.trace;
                    let name = service.name();
                    let op = trace::exporting().then(|| req.op.clone());
                    let handling = lane::scope(outer, name, service.handle(req));
                    let handling = CURRENT.scope(myself.get_id(), handling);
                    match trace {
                        Some(t) => {
                            let span = || format!("{name}.{}", op.unwrap_or_default());
                            trace::serve(t, span, handling).await
                        }
                        None => handling.await,
                    }
                };
                reply.send(answer);
            }
        }
        Ok(())
    }
}
