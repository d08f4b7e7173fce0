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
    /// The trace it belongs to ([`super::trace`]); the worker serves it inside it.
    pub trace: Option<super::trace::Trace>,
    /// When the caller stops waiting.
    pub deadline: Instant,
    /// Entity id for per-entity ops; empty otherwise.
    pub entity: String,
    /// Services whose workers wait on this request (see [`super::lane`]); empty from
    /// ingress.
    pub chain: Vec<String>,
    /// The write's idempotency key, or empty (see [`crate::store::idempotency`]).
    pub idempotency_key: String,
}

impl Request {
    /// A request of `op` with `payload` from no one in particular, answering within
    /// `timeout`: for tests and the runtime's own calls.
    pub fn new(op: &str, payload: Bytes, timeout: std::time::Duration) -> Self {
        Self {
            op: op.to_string(),
            payload,
            caller: None,
            request_id: String::new(),
            trace: None,
            deadline: Instant::now() + timeout,
            entity: String::new(),
            chain: Vec::new(),
            idempotency_key: String::new(),
        }
    }
}

/// A service hosted by every node as a supervised actor group.
pub trait Service: Send + Sync + 'static {
    /// Group name; the node's endpoint joins pg group `svc.<name>`.
    fn name(&self) -> &'static str;

    /// Runs one op. Called on a worker actor; long CPU work belongs on a blocking pool.
    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>>;

    /// Workers of this service per node, given the configured default. A service whose ops
    /// mostly wait (on the blocking pool, on other services) may want more.
    fn workers(&self, default: usize) -> usize {
        default
    }

    /// Whether `op` spends most of its time waiting for a group-commit writer
    /// ([`crate::store::batch`]): such an op runs on the service's lane (a task of its own,
    /// within the pool's admission limit, see [`super::lane`]) instead of holding a worker
    /// while its batch commits. On workers, a node could have only as many of them waiting
    /// as it has workers, so every batch was at most the pool's size and a burst was
    /// written in many small transactions, one after another; on the lane a batch holds
    /// every request that came while the one before it committed.
    fn waits_on_batch(&self, _op: &str) -> bool {
        false
    }
}

/// The pool a service whose workers mostly wait (on the database, the outbox flush, the
/// blocking pool, a provider) asks for in [`Service::workers`]: four times the default,
/// at least 16.
pub fn waiting_pool(default: usize) -> usize {
    default.max(4) * 4
}

/// The pool a service whose requests wait on a group-commit writer
/// ([`crate::store::batch`]) asks for, for the ops that do not name themselves in
/// [`Service::waits_on_batch`]: a batch holds at most as many of their requests as there
/// are workers waiting on it, so sixteen times the default, at least 64. A waiting worker
/// costs a parked task.
pub fn batching_pool(default: usize) -> usize {
    default.max(4) * 16
}

/// Calls `op` of `svc` through [`Service::handle`], as the mesh would: for the services'
/// unit tests.
#[cfg(test)]
pub(crate) async fn call_op<S, Req, Rep>(
    svc: &S,
    op: &super::Op<Req, Rep>,
    req: Req,
    caller: Option<Caller>,
) -> Result<Rep, MeshError>
where
    S: Service,
    Req: prost::Message + Default,
    Rep: prost::Message + Default,
{
    let mut request = Request::new(
        op.name,
        req.encode_to_vec().into(),
        std::time::Duration::from_secs(10),
    );
    request.caller = caller;
    let bytes = svc.handle(request).await?;
    Ok(Rep::decode(bytes).expect("reply decodes"))
}
