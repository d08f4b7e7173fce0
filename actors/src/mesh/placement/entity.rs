//! The [`Entity`] trait a service implements, the errors its callers see, the
//! [`request`] helper, and the per-entity child actor that an
//! [`EntityHost`](super::EntityHost) spawns for every active entity.
//!
//! The child actor is local-only and private to placement: it activates the
//! entity in `pre_start`, runs requests one at a time, drains itself when idle
//! and passivates in `post_stop`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort};
use ractor_cluster::RactorMessage;
use serde::{Deserialize, Serialize};

use super::host::EntityHostMsg;
use crate::mesh::trace::{self, Trace};

/// Errors reported to callers of an entity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum EntityError {
    /// The entity does not exist (and [`Entity::activate`] does not create it).
    #[error("entity not found")]
    NotFound,
    /// The entity cannot serve the request right now: its activation failed
    /// for a transient reason, it crashed while handling the request, or its
    /// host is unreachable or stopping. The message explains which.
    #[error("entity unavailable: {0}")]
    Unavailable(String),
    /// The caller's deadline passed before a reply arrived (see [`request`]).
    /// The request may or may not have been handled.
    #[error("entity request timed out")]
    Timeout,
}

/// A kind of entity hosted by an [`EntityHost`](super::EntityHost).
///
/// One value of the implementing type serves every entity of that kind on a
/// node (it typically holds a handle to the backing store); per-entity data
/// lives in [`State`](Entity::State), owned by the entity's actor. All methods
/// for one entity id are called sequentially (activate, then handle any number
/// of times, then passivate); methods for different ids run concurrently.
///
/// Implementations may use `async fn` for every method.
pub trait Entity: Send + Sync + 'static {
    /// In-memory state of one active entity.
    type State: Send + 'static;
    /// A request addressed to one entity.
    type Request: Send + 'static;
    /// The reply to a [`Request`](Entity::Request).
    type Reply: Send + 'static;

    /// Short name of the entity kind, used in logs and metric labels.
    const KIND: &'static str = "entity";

    /// Loads the entity `id` from the store, or creates it.
    ///
    /// Called once per activation, before any request is handled. An error is
    /// returned to every request waiting for this activation; return
    /// [`EntityError::NotFound`] for ids that must not be created implicitly.
    fn activate(&self, id: &str) -> impl Future<Output = Result<Self::State, EntityError>> + Send;

    /// Handles one request against the entity's state.
    ///
    /// A panic here is contained: see the [placement docs](super).
    fn handle(
        &self,
        id: &str,
        state: &mut Self::State,
        req: Self::Request,
    ) -> impl Future<Output = Self::Reply> + Send;

    /// Persists/flushes the entity before its actor stops.
    ///
    /// Called when the entity is passivated (idle timeout,
    /// [`EntityHostMsg::Passivate`], [`EntityHostMsg::Rebalance`], host
    /// shutdown). The state must be durable once the returned future resolves:
    /// the next activation of `id` may start immediately afterwards. Errors
    /// must be handled (retried, logged) by the implementation.
    fn passivate(&self, id: &str, state: Self::State) -> impl Future<Output = ()> + Send;
}

/// Sends `request` to entity `id` through `host` and awaits the reply. The entity serves
/// it inside the trace of the caller's request ([`trace::current`]), if any.
///
/// Maps transport failures into [`EntityError`]: an unreachable host or a
/// dropped reply becomes [`EntityError::Unavailable`], an elapsed `timeout`
/// becomes [`EntityError::Timeout`]. `None` waits indefinitely.
pub async fn request<E: Entity>(
    host: &ActorRef<EntityHostMsg<E>>,
    id: impl Into<String>,
    request: E::Request,
    timeout: Option<Duration>,
) -> Result<E::Reply, EntityError> {
    let id = id.into();
    let outcome = host
        .call(
            |reply| EntityHostMsg::Request {
                id,
                req: request,
                trace: trace::current(),
                reply,
            },
            timeout,
        )
        .await;
    match outcome {
        Ok(CallResult::Success(result)) => result,
        Ok(CallResult::Timeout) => Err(EntityError::Timeout),
        Ok(CallResult::SenderError) => Err(EntityError::Unavailable(
            "entity host dropped the request".to_string(),
        )),
        Err(err) => Err(EntityError::Unavailable(format!(
            "entity host unreachable: {err}"
        ))),
    }
}

/// Messages of the per-entity child actor ([`EntityActor`]).
#[derive(RactorMessage)]
pub(super) enum EntityMsg<E: Entity> {
    /// A request forwarded by the host; answered on `reply` with
    /// [`Entity::handle`]'s result.
    Request {
        /// The request to hand to [`Entity::handle`].
        req: E::Request,
        /// The trace of the request that sent it: the turn runs inside it.
        trace: Option<Trace>,
        /// Where the reply goes (answers `Unavailable` if dropped).
        reply: Reply<E::Reply>,
    },
    /// Timer tick, sent by the actor to itself: check whether the entity has
    /// been idle long enough, and if so drain and passivate.
    IdleCheck,
}

/// A reply port that answers [`EntityError::Unavailable`] if it is dropped
/// without a reply — e.g. when the entity actor panics while handling the
/// request, or dies with the request still in its mailbox.
pub(super) struct Reply<R> {
    port: Option<RpcReplyPort<Result<R, EntityError>>>,
}

impl<R> Reply<R> {
    pub(super) fn new(port: RpcReplyPort<Result<R, EntityError>>) -> Self {
        Self { port: Some(port) }
    }

    pub(super) fn send(mut self, result: Result<R, EntityError>) {
        if let Some(port) = self.port.take() {
            // The caller may have given up (timeout); nothing to do then.
            let _ = port.send(result);
        }
    }
}

impl<R> Drop for Reply<R> {
    fn drop(&mut self) {
        if let Some(port) = self.port.take() {
            let _ = port.send(Err(EntityError::Unavailable(
                "entity stopped before answering".to_string(),
            )));
        }
    }
}

/// Hosts one entity: activates in `pre_start`, passivates in `post_stop`.
/// Spawned (linked, local-only) by the host; its argument is the entity id.
pub(super) struct EntityActor<E: Entity> {
    /// The entity kind implementation.
    pub(super) entity: Arc<E>,
    /// Idle time after which the actor drains and passivates.
    pub(super) idle_timeout: Duration,
}

/// State of an [`EntityActor`].
pub(super) struct EntityActorState<E: Entity> {
    id: String,
    /// `None` only after `post_stop` handed it to `passivate`.
    state: Option<E::State>,
    last_activity: Instant,
    /// Pending idle check; armed on the first request, so that an entity
    /// always serves the request that activated it before it can go idle.
    idle_timer: Option<tokio::task::JoinHandle<Result<(), MessagingErr<EntityMsg<E>>>>>,
}

impl<E: Entity> EntityActor<E> {
    fn arm_idle_timer(
        &self,
        myself: &ActorRef<EntityMsg<E>>,
        state: &mut EntityActorState<E>,
        after: Duration,
    ) {
        state.idle_timer = Some(myself.send_after(after, || EntityMsg::IdleCheck));
    }
}

impl<E: Entity> Actor for EntityActor<E> {
    type Msg = EntityMsg<E>;
    type State = EntityActorState<E>;
    type Arguments = String;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        id: String,
    ) -> Result<Self::State, ActorProcessingErr> {
        let state = self.entity.activate(&id).await?;
        tracing::debug!(kind = E::KIND, entity = %id, "entity activated");
        Ok(EntityActorState {
            id,
            state: Some(state),
            last_activity: Instant::now(),
            idle_timer: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EntityMsg::Request { req, trace, reply } => {
                let Some(state) = st.state.as_mut() else {
                    reply.send(Err(EntityError::Unavailable(
                        "entity is passivating".to_string(),
                    )));
                    return Ok(());
                };
                let handling = self.entity.handle(&st.id, state, req);
                let out = match trace {
                    Some(t) => trace::scope(t, handling).await,
                    None => handling.await,
                };
                reply.send(Ok(out));
                st.last_activity = Instant::now();
                if st.idle_timer.is_none() {
                    self.arm_idle_timer(&myself, st, self.idle_timeout);
                }
            }
            EntityMsg::IdleCheck => {
                let idle = st.last_activity.elapsed();
                if idle >= self.idle_timeout {
                    st.idle_timer = None;
                    tracing::debug!(kind = E::KIND, entity = %st.id, ?idle, "entity idle, passivating");
                    // Requests already queued are still served; later ones
                    // bounce back to the host, which re-activates after we stop.
                    let _ = myself.drain();
                } else {
                    self.arm_idle_timer(&myself, st, self.idle_timeout - idle);
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = st.idle_timer.take() {
            timer.abort();
        }
        if let Some(state) = st.state.take() {
            self.entity.passivate(&st.id, state).await;
            tracing::debug!(kind = E::KIND, entity = %st.id, "entity passivated");
        }
        Ok(())
    }
}
