//! What a service is to the runtime: a name, a table of ops, and an async handler.
//!
//! A service never knows which protocol a request came in on, nor which node's ingress
//! accepted it: it sees a [`Request`] and answers bytes (its own prost-encoded reply) or a
//! [`MeshError`].

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use bytes::Bytes;
use troupe_proto::mesh::Caller;

use super::MeshError;

/// A boxed future, as returned by [`Service::handle`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One operation a service offers.
#[derive(Clone, Copy, Debug)]
pub struct Op {
    /// Op name as carried in the envelope.
    pub name: &'static str,
    /// Whether running it twice has the same effect as once: only these are retried by the
    /// router after an `unavailable` failure.
    pub idempotent: bool,
}

impl Op {
    /// A read-only or otherwise repeatable op.
    pub const fn idempotent(name: &'static str) -> Self {
        Self {
            name,
            idempotent: true,
        }
    }

    /// An op with effects that must not be repeated blindly.
    pub const fn effectful(name: &'static str) -> Self {
        Self {
            name,
            idempotent: false,
        }
    }
}

/// One request as a service worker sees it.
#[derive(Clone, Debug)]
pub struct Request {
    /// The op to run.
    pub op: String,
    /// The service's own prost-encoded request.
    pub payload: Bytes,
    /// The authenticated caller, if any.
    pub caller: Option<Caller>,
    /// Correlation id for logs.
    pub request_id: String,
    /// When the caller stops waiting.
    pub deadline: Instant,
    /// Entity id for per-entity ops; empty otherwise.
    pub entity: String,
}

/// A service hosted by every node as a supervised actor group.
pub trait Service: Send + Sync + 'static {
    /// Group name; the node's endpoint joins pg group `svc.<name>`.
    fn name(&self) -> &'static str;

    /// Every op this service answers.
    fn ops(&self) -> &'static [Op];

    /// Runs one op. Called on a worker actor; long CPU work belongs on a blocking pool.
    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>>;

    /// Workers of this service per node, given the configured default. A service whose ops
    /// mostly wait (on the blocking pool, on other services) may want more.
    fn workers(&self, default: usize) -> usize {
        default
    }

    /// Whether `op` is marked idempotent in [`Service::ops`].
    fn is_idempotent(&self, op: &str) -> bool {
        self.ops().iter().any(|o| o.name == op && o.idempotent)
    }
}

/// Calls `op` of `svc` through [`Service::handle`], as the mesh would, with a prost request
/// and reply: for the services' unit tests.
#[cfg(test)]
pub(crate) async fn call_op<S: Service, Req: prost::Message, Rep: prost::Message + Default>(
    svc: &S,
    op: &str,
    req: Req,
    caller: Option<Caller>,
) -> Result<Rep, MeshError> {
    let bytes = svc
        .handle(Request {
            op: op.to_string(),
            payload: req.encode_to_vec().into(),
            caller,
            request_id: "test".to_string(),
            deadline: Instant::now() + std::time::Duration::from_secs(10),
            entity: String::new(),
        })
        .await?;
    Ok(Rep::decode(bytes).expect("reply decodes"))
}
