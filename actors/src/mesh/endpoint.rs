//! The one remotable actor per service per node.
//!
//! It joins pg groups `svc.<service>` (any node) and `svc.<service>@<node>` (this node by
//! name), so ractor_cluster announces it to every peer. Its single message is an RPC carrying
//! an encoded [`Envelope`]; it runs the request on the local [`Pool`] and answers an encoded
//! [`Reply`]. Bytes rather than typed fields cross the wire so a malformed envelope is
//! answered with `invalid_argument` instead of being dropped by the decoder.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prost::Message as _;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use troupe_proto::mesh::{reply, Envelope, Reply};

use super::pool::Pool;
use super::{MeshError, Request};

/// The endpoint actor.
#[derive(Debug, Default)]
pub struct Endpoint;

/// Messages of an [`Endpoint`]; the only message type Troupe announces to peers.
#[derive(RactorClusterMessage)]
pub enum EndpointMsg {
    /// A call from a router on any node: an encoded [`Envelope`], answered with an encoded
    /// [`Reply`].
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

/// The pg group of a service, any node.
pub fn group(service: &str) -> String {
    format!("svc.{service}")
}

/// The pg group of a service on one named node.
pub fn node_group(service: &str, node: &str) -> String {
    format!("svc.{service}@{node}")
}

/// Milliseconds since the Unix epoch, `timeout` from now.
pub fn deadline_unix_ms(timeout: Duration) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now + timeout).as_millis() as u64
}

/// Turns an envelope's wall-clock deadline into a local instant (`default` when none).
pub fn local_deadline(deadline_unix_ms: u64, default: Duration) -> Instant {
    if deadline_unix_ms == 0 {
        return Instant::now() + default;
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    Instant::now() + Duration::from_millis(deadline_unix_ms.saturating_sub(now_ms))
}

/// Encodes the answer to a call.
pub fn encode_reply(answer: Result<Bytes, MeshError>, served_by: &str) -> Vec<u8> {
    Reply {
        result: Some(match answer {
            Ok(bytes) => reply::Result::Ok(bytes.to_vec()),
            Err(e) => reply::Result::Error(e.into()),
        }),
        served_by: served_by.to_string(),
    }
    .encode_to_vec()
}

/// Decodes the answer to a call.
pub fn decode_reply(bytes: &[u8]) -> Result<Bytes, MeshError> {
    let reply = Reply::decode(bytes)
        .map_err(|e| MeshError::internal(format!("malformed reply from peer: {e}")))?;
    match reply.result {
        Some(reply::Result::Ok(b)) => Ok(Bytes::from(b)),
        Some(reply::Result::Error(e)) => Err(e.into()),
        None => Err(MeshError::internal("empty reply from peer")),
    }
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
        ractor::pg::join(group(name), vec![myself.get_cell()]);
        ractor::pg::join(node_group(name, &args.node), vec![myself.get_cell()]);
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
                let env = match Envelope::decode(bytes.as_slice()) {
                    Ok(env) => env,
                    Err(e) => {
                        let _ = reply.send(encode_reply(Err(e.into()), &node));
                        return Ok(());
                    }
                };
                let req = Request {
                    op: env.op,
                    payload: Bytes::from(env.payload),
                    caller: env.caller,
                    request_id: env.request_id,
                    deadline: local_deadline(env.deadline_unix_ms, state.default_timeout),
                    entity: env.entity,
                };
                // Straight to a live worker when there is one; otherwise wait for a restart
                // off the endpoint's own loop.
                if let Err(back) = state.pool.dispatch_remote(req, reply, node.clone()) {
                    let (req, reply) = *back;
                    let pool = state.pool.clone();
                    tokio::spawn(async move {
                        let answer = pool.dispatch(req).await;
                        let _ = reply.send(encode_reply(answer, &node));
                    });
                }
            }
        }
        Ok(())
    }
}
