//! The one remotable actor per service per node.
//!
//! It joins pg groups `svc.<service>` (any node) and `svc.<service>@<node>` (this node by
//! name), so ractor_cluster announces it to every peer. Its single message is an RPC carrying
//! an encoded envelope ([`super::wire`]); it runs the request on the local [`Pool`] and
//! answers an encoded reply.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;

use super::pool::Pool;
use super::{trace, wire};

/// The endpoint actor.
#[derive(Debug, Default)]
pub struct Endpoint;

/// Messages of an [`Endpoint`]; the only message type Troupe announces to peers.
#[derive(RactorClusterMessage)]
pub enum EndpointMsg {
    /// A call from a router on any node: an encoded envelope, answered with an encoded
    /// reply ([`super::wire`]).
    #[rpc]
    Call(Vec<u8>, RpcReplyPort<Vec<u8>>),
}

/// What an endpoint is started with.
pub struct Args {
    /// The local pool of the service.
    pub pool: Arc<Pool>,
    /// This node's name (for the per-node group and `served_by`).
    pub node: Arc<str>,
    /// Deadline applied when an envelope carries none.
    pub default_timeout: Duration,
}

impl Actor for Endpoint {
    type Msg = EndpointMsg;
    type State = Args;
    type Arguments = Args;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Args,
    ) -> Result<Args, ActorProcessingErr> {
        let name = args.pool.name();
        ractor::pg::join(wire::group(name), vec![myself.get_cell()]);
        ractor::pg::join(wire::node_group(name, &args.node), vec![myself.get_cell()]);
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Args,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EndpointMsg::Call(bytes, reply) => {
                let node = state.node.clone();
                let req = match wire::request(&bytes, state.default_timeout) {
                    Ok(req) => req,
                    Err(e) => {
                        let _ = reply.send(wire::encode_reply(Err(e), &node));
                        return Ok(());
                    }
                };
                if let Some(t) = req.trace {
                    let service = state.pool.name();
                    trace::in_scope(
                        t,
                        || tracing::debug!(service, op = %req.op, "call from a peer"),
                    );
                }
                // Straight to a live worker when there is one; otherwise wait for a restart
                // off the endpoint's own loop.
                if let Err(back) = state.pool.dispatch_remote(req, reply, node.clone()) {
                    let (req, reply) = *back;
                    let pool = state.pool.clone();
                    tokio::spawn(async move {
                        let answer = pool.dispatch(req).await;
                        let _ = reply.send(wire::encode_reply(answer, &node));
                    });
                }
            }
        }
        Ok(())
    }
}
