//! Entity placement: which node hosts an entity, and a per-node actor that
//! hosts entities on demand.
//!
//! An *entity* is a unit of addressable, stateful work identified by a string
//! id — a session, a task, a connection. Later services build on two pieces:
//!
//! * [`home`] — **rendezvous (highest random weight) hashing.** Every node
//!   computes, for an entity id, a score for each cluster member and picks the
//!   member with the highest score. Given the same member list every node
//!   agrees on the home without any coordination, and when a member leaves only
//!   the entities homed on it move (every other entity keeps its home); when a
//!   member joins, only the entities that now score highest on the newcomer
//!   move. The score is [`score`], a hash that is **stable across processes,
//!   machines, architectures and Rust versions** (FNV-1a 64 followed by the
//!   splitmix64 finalizer, both fully specified here). It must be: different
//!   nodes — possibly running different builds — have to reach the same
//!   answer, so `std`'s randomly keyed, explicitly unstable `DefaultHasher`
//!   cannot be used.
//!
//! * [`EntityHost`] — **an actor, one per node per entity kind,** that
//!   activates entities on demand. The first [`EntityHostMsg::Request`] for an
//!   id spawns a linked, local-only child actor that loads the entity's state
//!   with [`Entity::activate`]; requests are then forwarded to that child, which
//!   runs them one at a time through [`Entity::handle`]. A child that has been
//!   idle for the configured timeout drains its mailbox and stops, persisting
//!   its state with [`Entity::passivate`]. [`EntityHostMsg::Rebalance`]
//!   passivates entities whose home moved to another node, so that the new home
//!   can activate them from the store.
//!
//! # Lifecycle of a hosted entity
//!
//! ```text
//! (absent) --request--> Activating --activate failed--> (absent)
//!                           |           (queued requests get the error)
//!                      activate ok
//!                           v
//!                        Active --idle timeout | Passivate | Rebalance | crash--> Passivating
//!
//! Passivating --child terminated, no queued requests--> (absent)
//! Passivating --child terminated, requests queued meanwhile--> Activating
//! ```
//!
//! # Guarantees and ordering assumptions
//!
//! * **No lost requests around passivation.** Passivation always goes through
//!   ractor's *drain*: the child's mailbox is closed to new messages, every
//!   request already queued is still handled, and only then does the child stop
//!   and run [`Entity::passivate`] (in `post_stop`). A request that the host
//!   tries to forward to a draining child is handed back by ractor
//!   (`MessagingErr::SendErr`) and parked in the host. The host keeps the
//!   entity in a *passivating* state until it receives the child's termination
//!   supervision event; ractor emits that event only after `post_stop` has
//!   returned, so **a fresh activation for the parked requests starts strictly
//!   after the old child's `passivate` has completed** and therefore reads the
//!   persisted state. (This relies on `passivate` having durably written the
//!   state by the time its future resolves.)
//! * **Requests to one entity are serialised** and, coming from one sender,
//!   handled in the order they were sent, across re-activations too.
//! * **Activation failures** are reported to every request waiting for that
//!   activation, and leave nothing behind: the next request tries again.
//! * **Crashes are contained.** A panic in [`Entity::handle`] fails only that
//!   entity's child: the request being handled and any requests queued in the
//!   child's mailbox are answered with [`EntityError::Unavailable`], the host
//!   forgets the child, and the next request re-activates the entity from the
//!   store. The crashed child does **not** run `passivate` (its in-memory state
//!   may be inconsistent), so changes since the last passivation are lost.
//!   Likewise, a child that is killed (rather than stopped or drained) skips
//!   `passivate`.
//! * **Single activation is per node, not per cluster.** The host activates
//!   whatever is routed to it. During membership changes two nodes can briefly
//!   host the same entity (the old home has not processed its `Rebalance` yet
//!   while the new home already receives requests); entities needing strict
//!   cluster-wide exclusivity must fence writes in their store.
//! * Entity children are **local-only** actors (not registered, not remotable);
//!   remote callers reach entities through the host.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use ractor::{
    Actor, ActorId, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort, SpawnErr,
    SupervisionEvent,
};
use ractor_cluster::RactorMessage;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// Rendezvous hashing
// ---------------------------------------------------------------------------

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64-bit, over the concatenation of `parts`.
fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut hash = FNV_OFFSET_BASIS;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
    }
    hash
}

/// The splitmix64 finalizer: a bijective 64-bit mixer with good avalanche,
/// which repairs FNV-1a's weak diffusion of the last input bytes.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The rendezvous score of `member` for `entity_id`.
///
/// Defined as `splitmix64_finalize(fnv1a_64(member ++ [0x00] ++ entity_id))`
/// over the UTF-8 bytes. The definition is part of the cluster protocol: it is
/// identical on every platform and build, and must never change, or nodes
/// running different versions would disagree on where entities live.
pub fn score(member: &str, entity_id: &str) -> u64 {
    mix64(fnv1a64(&[member.as_bytes(), &[0], entity_id.as_bytes()]))
}

/// Whether candidate `a` beats candidate `b`: higher score wins, and on equal
/// scores the lexicographically smaller member name wins, so the result never
/// depends on the order of the member list.
fn beats(a: (u64, &str), b: (u64, &str)) -> bool {
    a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
}

/// The home of `entity_id` among `members`, by rendezvous hashing.
///
/// Returns the member with the highest [`score`] for `entity_id` (ties broken
/// by the smaller member name), or `None` if `members` is empty. The result
/// depends only on the *set* of member names, not on their order, so every
/// node with the same membership view computes the same home.
///
/// Removing a member only re-homes the entities that were homed on it; adding
/// one only moves the entities that now score highest on the newcomer
/// (about `1/n` of them). Cost is `O(members)` per lookup.
///
/// ```
/// use troupe_actors::mesh::placement::home;
///
/// let members = ["node-a", "node-b", "node-c"];
/// let owner = home("session-42", &members).expect("members is not empty");
/// assert!(members.contains(owner));
/// // Every node computes the same answer, whatever the order of its list.
/// assert_eq!(home("session-42", &["node-c", "node-a", "node-b"]), Some(owner));
/// ```
pub fn home<'a, M: AsRef<str>>(entity_id: &str, members: &'a [M]) -> Option<&'a M> {
    let mut best: Option<(u64, &'a M)> = None;
    for member in members {
        let s = score(member.as_ref(), entity_id);
        match best {
            Some((bs, bm)) if !beats((s, member.as_ref()), (bs, bm.as_ref())) => {}
            _ => best = Some((s, member)),
        }
    }
    best.map(|(_, m)| m)
}

// ---------------------------------------------------------------------------
// Entity trait and errors
// ---------------------------------------------------------------------------

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

/// A kind of entity hosted by an [`EntityHost`].
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
    /// A panic here is contained: see the [module docs](self).
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

/// Sends `request` to entity `id` through `host` and awaits the reply.
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

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/// Counters and gauges reported by [`EntityHostMsg::Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStats {
    /// Entities with a running actor that accepts requests.
    pub active: usize,
    /// Entities whose activation is in progress.
    pub activating: usize,
    /// Entities whose actor is draining/stopping (passivating or crashed) and
    /// whose termination has not been observed yet.
    pub passivating: usize,
    /// Successful activations since the host started.
    pub activations: u64,
    /// Entity actors that stopped normally (and ran `passivate`).
    pub passivations: u64,
    /// Activations that failed ([`Entity::activate`] returned an error or
    /// panicked).
    pub activation_failures: u64,
    /// Entity actors that failed (e.g. a panic in [`Entity::handle`] or
    /// [`Entity::passivate`]).
    pub crashes: u64,
}

/// Messages understood by an [`EntityHost`].
///
/// Local-only: the variants carry Rust values and are not serialisable.
#[derive(RactorMessage)]
pub enum EntityHostMsg<E: Entity> {
    /// Route `req` to entity `id`, activating it first if needed, and answer
    /// on `reply` with its reply or the reason it could not be served.
    Request {
        /// The entity to address.
        id: String,
        /// The request to hand to [`Entity::handle`].
        req: E::Request,
        /// Where the result is sent.
        reply: RpcReplyPort<Result<E::Reply, EntityError>>,
    },
    /// The cluster membership changed: passivate every hosted entity whose
    /// [`home`] among `members` is no longer `me`, so that its new home can
    /// activate it from the store. Requests already queued for such an entity
    /// are still served first. An activation in progress is passivated as
    /// soon as its queued requests have been served. If `members` does not
    /// contain `me` every entity is passivated.
    Rebalance {
        /// The complete current member list (order does not matter).
        members: Vec<String>,
        /// This node's name as it appears in `members`.
        me: String,
    },
    /// Passivate entity `id` now (after already queued requests). No-op if it
    /// is not active.
    Passivate {
        /// The entity to passivate.
        id: String,
    },
    /// Reply with the host's current [`HostStats`].
    Stats(RpcReplyPort<HostStats>),
    /// Internal: the result of an activation started by the host. Sent by the
    /// host to itself; [`Activation`] cannot be constructed outside this module.
    #[doc(hidden)]
    Activated(Activation<E>),
}

/// Internal message payload: the outcome of spawning an entity actor.
///
/// Opaque; only the host creates and consumes it.
pub struct Activation<E: Entity> {
    id: String,
    epoch: u64,
    result: Result<ActorRef<EntityMsg<E>>, EntityError>,
}

/// Messages of the per-entity child actor.
#[derive(RactorMessage)]
enum EntityMsg<E: Entity> {
    /// A request forwarded by the host.
    Request {
        req: E::Request,
        reply: Reply<E::Reply>,
    },
    /// Timer tick: check whether the entity has been idle long enough.
    IdleCheck,
}

/// A reply port that answers [`EntityError::Unavailable`] if it is dropped
/// without a reply — e.g. when the entity actor panics while handling the
/// request, or dies with the request still in its mailbox.
struct Reply<R> {
    port: Option<RpcReplyPort<Result<R, EntityError>>>,
}

impl<R> Reply<R> {
    fn new(port: RpcReplyPort<Result<R, EntityError>>) -> Self {
        Self { port: Some(port) }
    }

    fn send(mut self, result: Result<R, EntityError>) {
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

/// A request waiting in the host for an activation.
struct Pending<E: Entity> {
    req: E::Request,
    reply: Reply<E::Reply>,
}

// ---------------------------------------------------------------------------
// Per-entity actor
// ---------------------------------------------------------------------------

/// Hosts one entity: activates in `pre_start`, passivates in `post_stop`.
struct EntityActor<E: Entity> {
    entity: Arc<E>,
    idle_timeout: Duration,
}

/// State of an [`EntityActor`].
struct EntityActorState<E: Entity> {
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
            EntityMsg::Request { req, reply } => {
                let Some(state) = st.state.as_mut() else {
                    reply.send(Err(EntityError::Unavailable(
                        "entity is passivating".to_string(),
                    )));
                    return Ok(());
                };
                let out = self.entity.handle(&st.id, state, req).await;
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

// ---------------------------------------------------------------------------
// Host actor
// ---------------------------------------------------------------------------

/// Actor hosting the entities of kind `E` on this node.
///
/// Spawn one per node per entity kind, e.g.
/// `Actor::spawn(Some(name), EntityHost::new(MyEntity::new(store), idle), ())`,
/// and talk to it with [`request`] or [`EntityHostMsg`]. The host never fails
/// because of its entities: crashes of entity actors are absorbed (see the
/// [module docs](self)). When the host itself is stopped, it drains every
/// entity actor (so they passivate) and waits up to
/// [`with_shutdown_timeout`](Self::with_shutdown_timeout) for them.
pub struct EntityHost<E: Entity> {
    entity: Arc<E>,
    idle_timeout: Duration,
    shutdown_timeout: Duration,
}

impl<E: Entity> EntityHost<E> {
    /// Default bound on how long a stopping host waits for its entities to
    /// passivate.
    pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

    /// A host for `entity` that passivates entities idle for `idle_timeout`
    /// (measured from the end of their last request).
    ///
    /// Use [`Duration::MAX`] to disable idle passivation.
    pub fn new(entity: impl Into<Arc<E>>, idle_timeout: Duration) -> Self {
        Self {
            entity: entity.into(),
            idle_timeout,
            shutdown_timeout: Self::DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    /// Sets how long a stopping host waits for its entities to passivate
    /// (default [`DEFAULT_SHUTDOWN_TIMEOUT`](Self::DEFAULT_SHUTDOWN_TIMEOUT)).
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The entity kind implementation shared by all hosted entities.
    pub fn entity(&self) -> &Arc<E> {
        &self.entity
    }

    /// The configured idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }
}

/// Where one entity id stands, from the host's point of view.
enum Slot<E: Entity> {
    /// `activate` is running; requests queue in `waiters`.
    Activating {
        epoch: u64,
        waiters: Vec<Pending<E>>,
        /// Passivate right after serving `waiters` (set by Passivate/Rebalance).
        passivate_when_ready: bool,
    },
    /// The child accepts requests.
    Active { actor: ActorRef<EntityMsg<E>> },
    /// The child (`actor`) is draining, stopping or crashed; requests queue in
    /// `waiters` until its termination is observed, then a fresh activation
    /// starts for them.
    Passivating {
        actor: ActorId,
        waiters: Vec<Pending<E>>,
    },
}

/// Internal state of an [`EntityHost`] (opaque).
pub struct EntityHostState<E: Entity> {
    slots: HashMap<String, Slot<E>>,
    /// Entity id of every child we know about (Active or Passivating slots).
    by_actor: HashMap<ActorId, String>,
    /// Children whose termination arrived before their `Activated` message
    /// (supervision events are delivered with priority over messages).
    early_exits: HashSet<ActorId>,
    next_epoch: u64,
    activations: u64,
    passivations: u64,
    activation_failures: u64,
    crashes: u64,
}

impl<E: Entity> EntityHostState<E> {
    fn stats(&self) -> HostStats {
        let mut stats = HostStats {
            activations: self.activations,
            passivations: self.passivations,
            activation_failures: self.activation_failures,
            crashes: self.crashes,
            ..HostStats::default()
        };
        for slot in self.slots.values() {
            match slot {
                Slot::Activating { .. } => stats.activating += 1,
                Slot::Active { .. } => stats.active += 1,
                Slot::Passivating { .. } => stats.passivating += 1,
            }
        }
        stats
    }
}

/// Converts a failed spawn of an entity actor into the caller-facing error.
fn activation_error(err: SpawnErr) -> EntityError {
    match err {
        SpawnErr::StartupFailed(inner) => match inner.downcast::<EntityError>() {
            Ok(entity_err) => *entity_err,
            Err(other) => EntityError::Unavailable(format!("activation failed: {other}")),
        },
        other => EntityError::Unavailable(format!("activation failed: {other}")),
    }
}

impl<E: Entity> EntityHost<E> {
    /// Starts activating `id` in the background; `waiters` (non-empty) are
    /// served once it is up.
    fn start_activation(
        &self,
        myself: &ActorRef<EntityHostMsg<E>>,
        state: &mut EntityHostState<E>,
        id: String,
        waiters: Vec<Pending<E>>,
    ) {
        state.next_epoch += 1;
        let epoch = state.next_epoch;
        state.slots.insert(
            id.clone(),
            Slot::Activating {
                epoch,
                waiters,
                passivate_when_ready: false,
            },
        );
        let child = EntityActor {
            entity: Arc::clone(&self.entity),
            idle_timeout: self.idle_timeout,
        };
        let host = myself.clone();
        // Activation may be slow (it loads from the store): run it off the
        // host's message loop so other entities keep being served.
        tokio::spawn(async move {
            let result = Actor::spawn_linked(None, child, id.clone(), host.get_cell())
                .await
                .map(|(actor, _join)| actor)
                .map_err(activation_error);
            let msg = EntityHostMsg::Activated(Activation { id, epoch, result });
            if let Err(MessagingErr::SendErr(EntityHostMsg::Activated(lost))) = host.cast(msg) {
                // The host is gone: don't leave an orphan running.
                if let Ok(actor) = lost.result {
                    let _ = actor.drain();
                }
            }
        });
    }

    /// Routes one request for `id` according to its slot.
    fn route(
        &self,
        myself: &ActorRef<EntityHostMsg<E>>,
        state: &mut EntityHostState<E>,
        id: String,
        pending: Pending<E>,
    ) {
        let Some(slot) = state.slots.get_mut(&id) else {
            self.start_activation(myself, state, id, vec![pending]);
            return;
        };
        match slot {
            Slot::Activating { waiters, .. } | Slot::Passivating { waiters, .. } => {
                waiters.push(pending);
            }
            Slot::Active { actor } => {
                let msg = EntityMsg::Request {
                    req: pending.req,
                    reply: pending.reply,
                };
                match actor.cast(msg) {
                    Ok(()) => {}
                    // The child is draining or stopped: park the request until
                    // its termination, then re-activate.
                    Err(MessagingErr::SendErr(EntityMsg::Request { req, reply })) => {
                        *slot = Slot::Passivating {
                            actor: actor.get_id(),
                            waiters: vec![Pending { req, reply }],
                        };
                    }
                    // The message was lost (its reply port already answered
                    // Unavailable when dropped); the child is unusable.
                    Err(_) => {
                        *slot = Slot::Passivating {
                            actor: actor.get_id(),
                            waiters: Vec::new(),
                        };
                    }
                }
            }
        }
    }

    /// Begins passivating `id` if it is hosted; returns whether it was.
    fn begin_passivation(state: &mut EntityHostState<E>, id: &str) -> bool {
        let Some(slot) = state.slots.get_mut(id) else {
            return false;
        };
        match slot {
            Slot::Active { actor } => {
                let actor_id = actor.get_id();
                // Already-queued requests are served before post_stop runs.
                let _ = actor.drain();
                *slot = Slot::Passivating {
                    actor: actor_id,
                    waiters: Vec::new(),
                };
                true
            }
            Slot::Activating {
                passivate_when_ready,
                ..
            } => {
                *passivate_when_ready = true;
                true
            }
            Slot::Passivating { .. } => false,
        }
    }

    fn on_activated(
        &self,
        myself: &ActorRef<EntityHostMsg<E>>,
        state: &mut EntityHostState<E>,
        activation: Activation<E>,
    ) {
        let Activation { id, epoch, result } = activation;
        let (waiters, passivate_when_ready) = match state.slots.remove(&id) {
            Some(Slot::Activating {
                epoch: current,
                waiters,
                passivate_when_ready,
            }) if current == epoch => (waiters, passivate_when_ready),
            other => {
                // Not the activation we are waiting for (cannot happen with
                // the state machine above; handled defensively).
                if let Some(slot) = other {
                    state.slots.insert(id.clone(), slot);
                }
                tracing::warn!(kind = E::KIND, entity = %id, "stale entity activation ignored");
                if let Ok(actor) = result {
                    let _ = actor.drain();
                }
                return;
            }
        };
        match result {
            Err(err) => {
                state.activation_failures += 1;
                ::metrics::counter!("troupe_entity_activation_failures_total", "kind" => E::KIND)
                    .increment(1);
                tracing::debug!(kind = E::KIND, entity = %id, error = %err, "entity activation failed");
                for waiter in waiters {
                    waiter.reply.send(Err(err.clone()));
                }
            }
            Ok(actor) => {
                state.activations += 1;
                ::metrics::counter!("troupe_entity_activations_total", "kind" => E::KIND)
                    .increment(1);
                let actor_id = actor.get_id();
                if state.early_exits.remove(&actor_id) {
                    // It already stopped again (its termination was counted).
                    if !waiters.is_empty() {
                        self.start_activation(myself, state, id, waiters);
                    }
                    return;
                }
                state.by_actor.insert(actor_id, id.clone());
                state.slots.insert(id.clone(), Slot::Active { actor });
                for waiter in waiters {
                    self.route(myself, state, id.clone(), waiter);
                }
                if passivate_when_ready {
                    Self::begin_passivation(state, &id);
                }
            }
        }
    }

    fn on_child_exit(
        &self,
        myself: &ActorRef<EntityHostMsg<E>>,
        state: &mut EntityHostState<E>,
        actor_id: ActorId,
        failure: Option<String>,
    ) {
        match &failure {
            None => {
                state.passivations += 1;
                ::metrics::counter!("troupe_entity_passivations_total", "kind" => E::KIND)
                    .increment(1);
            }
            Some(reason) => {
                state.crashes += 1;
                ::metrics::counter!("troupe_entity_crashes_total", "kind" => E::KIND).increment(1);
                tracing::warn!(kind = E::KIND, actor = %actor_id, %reason, "entity actor failed");
            }
        }
        let Some(id) = state.by_actor.remove(&actor_id) else {
            state.early_exits.insert(actor_id);
            return;
        };
        match state.slots.remove(&id) {
            Some(Slot::Passivating { actor, waiters })
                if actor == actor_id && !waiters.is_empty() =>
            {
                // The old incarnation's passivate has completed (the
                // termination event follows post_stop): safe to reload.
                self.start_activation(myself, state, id, waiters);
            }
            // Gone for good; no request is waiting for it.
            Some(Slot::Active { actor }) if actor.get_id() == actor_id => {}
            Some(Slot::Passivating { actor, .. }) if actor == actor_id => {}
            Some(other) => {
                state.slots.insert(id, other);
            }
            None => {}
        }
    }
}

impl<E: Entity> Actor for EntityHost<E> {
    type Msg = EntityHostMsg<E>;
    type State = EntityHostState<E>;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _args: (),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(EntityHostState {
            slots: HashMap::new(),
            by_actor: HashMap::new(),
            early_exits: HashSet::new(),
            next_epoch: 0,
            activations: 0,
            passivations: 0,
            activation_failures: 0,
            crashes: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EntityHostMsg::Request { id, req, reply } => {
                let pending = Pending {
                    req,
                    reply: Reply::new(reply),
                };
                self.route(&myself, state, id, pending);
            }
            EntityHostMsg::Rebalance { members, me } => {
                let moved: Vec<String> = state
                    .slots
                    .keys()
                    .filter(|id| home(id, &members).map(String::as_str) != Some(me.as_str()))
                    .cloned()
                    .collect();
                let mut count = 0usize;
                for id in &moved {
                    if Self::begin_passivation(state, id) {
                        count += 1;
                    }
                }
                tracing::debug!(kind = E::KIND, passivated = count, "entity host rebalanced");
            }
            EntityHostMsg::Passivate { id } => {
                Self::begin_passivation(state, &id);
            }
            EntityHostMsg::Stats(reply) => {
                let _ = reply.send(state.stats());
            }
            EntityHostMsg::Activated(activation) => {
                self.on_activated(&myself, state, activation);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Unlike ractor's default, a child's exit never stops the host.
        match event {
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                self.on_child_exit(&myself, state, cell.get_id(), None);
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                self.on_child_exit(&myself, state, cell.get_id(), Some(err.to_string()));
            }
            _ => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        for (_, slot) in state.slots.drain() {
            match slot {
                Slot::Activating { waiters, .. } | Slot::Passivating { waiters, .. } => {
                    for waiter in waiters {
                        waiter.reply.send(Err(EntityError::Unavailable(
                            "entity host stopped".to_string(),
                        )));
                    }
                }
                Slot::Active { .. } => {}
            }
        }
        // Let every entity serve what it has queued and passivate.
        myself
            .drain_children_and_wait(Some(self.shutdown_timeout))
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    // ----- rendezvous -----

    #[test]
    fn fnv1a64_matches_reference_vectors() {
        assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&[b"foobar"]), 0x8594_4171_f739_67e8);
        // Splitting the input does not change the hash.
        assert_eq!(fnv1a64(&[b"foo", b"bar"]), fnv1a64(&[b"foobar"]));
    }

    #[test]
    fn mix64_matches_splitmix64_reference() {
        // First output of splitmix64 seeded with 0: mix64(0x9e3779b97f4a7c15).
        assert_eq!(mix64(0x9e37_79b9_7f4a_7c15), 0xe220_a839_7b1d_cdaf);
        assert_eq!(mix64(0), 0);
    }

    #[test]
    fn score_is_pinned() {
        // The score is part of the cluster protocol: it must never change.
        let expected = mix64(fnv1a64(&[b"node-a\0user-42"]));
        assert_eq!(score("node-a", "user-42"), expected);
        assert_ne!(score("node-a", "user-42"), score("node-b", "user-42"));
        assert_ne!(score("node-a", "user-42"), score("node-a", "user-43"));
    }

    #[test]
    fn rendezvous_is_deterministic_and_order_independent() {
        let members = ["n1", "n2", "n3", "n4"];
        let reversed = ["n4", "n3", "n2", "n1"];
        let owned: Vec<String> = members.iter().map(|m| m.to_string()).collect();
        for i in 0..1_000 {
            let id = format!("entity-{i}");
            let a = home(&id, &members).copied();
            assert_eq!(a, home(&id, &members).copied());
            assert_eq!(a, home(&id, &reversed).copied());
            assert_eq!(a.map(str::to_string), home(&id, &owned).cloned());
            // The home is the member with the highest score.
            let best = members.iter().max_by_key(|m| score(m, &id)).copied();
            assert_eq!(a, best);
        }
    }

    #[test]
    fn rendezvous_empty_and_single() {
        let none: [&str; 0] = [];
        assert_eq!(home("x", &none), None);
        assert_eq!(home("x", &["only"]), Some(&"only"));
    }

    #[test]
    fn ties_go_to_the_smaller_name() {
        assert!(beats((5, "b"), (4, "a")));
        assert!(!beats((4, "a"), (5, "b")));
        assert!(beats((5, "a"), (5, "b")));
        assert!(!beats((5, "b"), (5, "a")));
        assert!(!beats((5, "a"), (5, "a")));
    }

    #[test]
    fn rendezvous_spreads_evenly() {
        let members = ["node-a", "node-b", "node-c"];
        let mut counts = HashMap::new();
        let n = 10_000;
        for i in 0..n {
            let id = format!("session-{i}");
            *counts
                .entry(*home(&id, &members).expect("non-empty"))
                .or_insert(0usize) += 1;
        }
        assert_eq!(counts.len(), 3);
        for (member, count) in counts {
            let share = count as f64 / n as f64;
            assert!(
                (0.25..=0.42).contains(&share),
                "{member} got {share:.3} of the entities"
            );
        }
    }

    #[test]
    fn removing_a_member_only_moves_its_entities() {
        let before = ["node-a", "node-b", "node-c"];
        let after = ["node-a", "node-c"];
        let mut moved = 0;
        for i in 0..10_000 {
            let id = format!("task-{i}");
            let old = *home(&id, &before).expect("non-empty");
            let new = *home(&id, &after).expect("non-empty");
            if old == "node-b" {
                moved += 1;
                assert_ne!(new, "node-b");
            } else {
                assert_eq!(old, new, "{id} moved from a surviving member");
            }
        }
        assert!(moved > 2_500, "only {moved} entities were on node-b");
    }

    #[test]
    fn adding_a_member_only_moves_entities_to_it() {
        let before = ["node-a", "node-b"];
        let after = ["node-a", "node-b", "node-c"];
        for i in 0..10_000 {
            let id = format!("conn-{i}");
            let old = *home(&id, &before).expect("non-empty");
            let new = *home(&id, &after).expect("non-empty");
            assert!(new == old || new == "node-c", "{id}: {old} -> {new}");
        }
    }

    // ----- entity host -----

    type Store = Arc<Mutex<HashMap<String, i64>>>;

    /// A counter entity persisted in an in-memory "store".
    #[derive(Default)]
    struct Counter {
        store: Store,
        passivated: Arc<Mutex<Vec<String>>>,
        activated: Arc<Mutex<Vec<String>>>,
        /// Artificial latency of activate, to widen races.
        activate_delay: Duration,
        /// Artificial latency of passivate (before the write), to widen races.
        passivate_delay: Duration,
    }

    enum Op {
        Add(i64),
        Get,
        Panic,
    }

    impl Entity for Counter {
        type State = i64;
        type Request = Op;
        type Reply = i64;
        const KIND: &'static str = "counter";

        async fn activate(&self, id: &str) -> Result<i64, EntityError> {
            if !self.activate_delay.is_zero() {
                tokio::time::sleep(self.activate_delay).await;
            }
            if id.starts_with("missing") {
                return Err(EntityError::NotFound);
            }
            if id.starts_with("broken") {
                return Err(EntityError::Unavailable("store down".to_string()));
            }
            self.activated.lock().unwrap().push(id.to_string());
            Ok(self.store.lock().unwrap().get(id).copied().unwrap_or(0))
        }

        async fn handle(&self, _id: &str, state: &mut i64, req: Op) -> i64 {
            match req {
                Op::Add(n) => {
                    *state += n;
                    *state
                }
                Op::Get => *state,
                Op::Panic => panic!("counter handler exploded"),
            }
        }

        async fn passivate(&self, id: &str, state: i64) {
            if !self.passivate_delay.is_zero() {
                tokio::time::sleep(self.passivate_delay).await;
            }
            self.store.lock().unwrap().insert(id.to_string(), state);
            self.passivated.lock().unwrap().push(id.to_string());
        }
    }

    struct Harness {
        host: ActorRef<EntityHostMsg<Counter>>,
        join: tokio::task::JoinHandle<()>,
        store: Store,
        passivated: Arc<Mutex<Vec<String>>>,
        activated: Arc<Mutex<Vec<String>>>,
    }

    async fn start(idle: Duration, activate_delay: Duration, passivate_delay: Duration) -> Harness {
        let counter = Counter {
            activate_delay,
            passivate_delay,
            ..Counter::default()
        };
        let store = Arc::clone(&counter.store);
        let passivated = Arc::clone(&counter.passivated);
        let activated = Arc::clone(&counter.activated);
        let (host, join) = Actor::spawn(None, EntityHost::new(counter, idle), ())
            .await
            .expect("host spawns");
        Harness {
            host,
            join,
            store,
            passivated,
            activated,
        }
    }

    const LONG: Duration = Duration::from_secs(3600);

    async fn call(h: &Harness, id: &str, op: Op) -> Result<i64, EntityError> {
        request(&h.host, id, op, Some(Duration::from_secs(5))).await
    }

    async fn stats(h: &Harness) -> HostStats {
        ractor::call!(h.host, EntityHostMsg::Stats).expect("stats")
    }

    /// Polls the host until `pred` holds, failing after 5 s.
    async fn wait_for(h: &Harness, pred: impl Fn(&HostStats) -> bool) -> HostStats {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = stats(h).await;
            if pred(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "condition not reached: {s:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn shutdown(h: Harness) {
        h.host.stop(None);
        h.join.await.expect("host task");
    }

    #[tokio::test]
    async fn activates_on_demand_and_keeps_state() {
        let h = start(LONG, Duration::ZERO, Duration::ZERO).await;
        assert_eq!(stats(&h).await, HostStats::default());

        assert_eq!(call(&h, "a", Op::Add(1)).await, Ok(1));
        assert_eq!(call(&h, "a", Op::Add(2)).await, Ok(3));
        assert_eq!(call(&h, "a", Op::Get).await, Ok(3));
        assert_eq!(call(&h, "b", Op::Add(10)).await, Ok(10));

        let s = stats(&h).await;
        assert_eq!(s.active, 2);
        assert_eq!(s.activations, 2);
        assert_eq!(s.passivations, 0);
        assert_eq!(*h.activated.lock().unwrap(), vec!["a", "b"]);
        // Nothing persisted while active.
        assert!(h.store.lock().unwrap().is_empty());

        // Stopping the host passivates its entities.
        let store = Arc::clone(&h.store);
        shutdown(h).await;
        let store = store.lock().unwrap();
        assert_eq!(store.get("a"), Some(&3));
        assert_eq!(store.get("b"), Some(&10));
    }

    #[tokio::test]
    async fn passivates_idle_entities_and_reactivates_from_store() {
        let h = start(Duration::from_millis(150), Duration::ZERO, Duration::ZERO).await;
        assert_eq!(call(&h, "idle", Op::Add(5)).await, Ok(5));
        assert_eq!(stats(&h).await.active, 1);

        let s = wait_for(&h, |s| s.active == 0 && s.passivating == 0).await;
        assert_eq!(s.passivations, 1);
        assert_eq!(h.store.lock().unwrap().get("idle"), Some(&5));
        assert_eq!(*h.passivated.lock().unwrap(), vec!["idle"]);

        assert_eq!(call(&h, "idle", Op::Add(1)).await, Ok(6));
        let s = stats(&h).await;
        assert_eq!(s.activations, 2);
        assert_eq!(s.active, 1);
        shutdown(h).await;
    }

    #[tokio::test]
    async fn busy_entities_are_not_passivated() {
        let h = start(Duration::from_millis(400), Duration::ZERO, Duration::ZERO).await;
        for i in 1..=15 {
            assert_eq!(call(&h, "busy", Op::Add(1)).await, Ok(i));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let s = stats(&h).await;
        assert_eq!(s.activations, 1);
        assert_eq!(s.passivations, 0);
        shutdown(h).await;
    }

    #[tokio::test]
    async fn explicit_passivate_persists_and_next_request_reloads() {
        // A slow passivate: the re-activation must wait for it.
        let h = start(LONG, Duration::ZERO, Duration::from_millis(30)).await;
        assert_eq!(call(&h, "p", Op::Add(7)).await, Ok(7));
        h.host
            .cast(EntityHostMsg::Passivate { id: "p".into() })
            .expect("cast");
        // Sent right behind the Passivate: must not be lost, and must see the
        // persisted value (activation strictly after passivation).
        assert_eq!(call(&h, "p", Op::Add(1)).await, Ok(8));
        assert_eq!(h.store.lock().unwrap().get("p"), Some(&7));
        let s = stats(&h).await;
        assert_eq!(s.activations, 2);
        assert_eq!(s.passivations, 1);
        shutdown(h).await;
    }

    #[tokio::test]
    async fn requests_racing_with_passivation_are_not_lost() {
        // Tiny idle timeout, slow store, explicit passivations and several
        // concurrent writers: every Add must be applied exactly once.
        let h = Arc::new(
            start(
                Duration::from_millis(1),
                Duration::from_millis(1),
                Duration::from_millis(4),
            )
            .await,
        );
        let writers = 4;
        let per_writer = 50;
        let mut tasks = Vec::new();
        for w in 0..writers {
            let h = Arc::clone(&h);
            tasks.push(tokio::spawn(async move {
                for i in 0..per_writer {
                    let r = call(&h, "hot", Op::Add(1)).await;
                    assert!(matches!(r, Ok(n) if n >= 1), "writer {w} op {i}: {r:?}");
                    if (i + w) % 7 == 0 {
                        h.host
                            .cast(EntityHostMsg::Passivate { id: "hot".into() })
                            .expect("cast");
                    }
                    if i % 3 == 0 {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("writer task");
        }
        assert_eq!(call(&h, "hot", Op::Get).await, Ok(writers * per_writer));
        // Once settled, every activation ended in exactly one passivation
        // (or is still active).
        let s = wait_for(&h, |s| s.activating == 0 && s.passivating == 0).await;
        assert!(s.passivations >= 1, "{s:?}");
        assert_eq!(s.activations, s.passivations + s.active as u64, "{s:?}");
        assert_eq!(s.crashes, 0);
        assert_eq!(s.activation_failures, 0);
    }

    #[tokio::test]
    async fn rebalance_passivates_exactly_the_moved_entities() {
        let h = start(LONG, Duration::ZERO, Duration::ZERO).await;
        let old_members = vec!["a".to_string(), "b".to_string()];
        let new_members = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let ids: Vec<String> = (0..400)
            .map(|i| format!("e{i}"))
            .filter(|id| home(id, &old_members).map(String::as_str) == Some("a"))
            .take(60)
            .collect();
        assert_eq!(ids.len(), 60);
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(call(&h, id, Op::Add(n as i64 + 1)).await, Ok(n as i64 + 1));
        }
        let mut expected: Vec<String> = ids
            .iter()
            .filter(|id| home(id, &new_members).map(String::as_str) == Some("c"))
            .cloned()
            .collect();
        assert!(!expected.is_empty() && expected.len() < ids.len());

        // Unchanged membership: nothing moves.
        h.host
            .cast(EntityHostMsg::Rebalance {
                members: old_members.clone(),
                me: "a".into(),
            })
            .expect("cast");
        assert_eq!(stats(&h).await.active, 60);

        h.host
            .cast(EntityHostMsg::Rebalance {
                members: new_members,
                me: "a".into(),
            })
            .expect("cast");
        let s = wait_for(&h, |s| s.passivating == 0 && s.active < 60).await;
        assert_eq!(s.active, ids.len() - expected.len());
        assert_eq!(s.passivations as usize, expected.len());

        let mut passivated = h.passivated.lock().unwrap().clone();
        passivated.sort();
        expected.sort();
        assert_eq!(passivated, expected);
        let store = h.store.lock().unwrap().clone();
        for id in &expected {
            let n = ids.iter().position(|x| x == id).expect("known id") as i64 + 1;
            assert_eq!(store.get(id), Some(&n), "{id} persisted");
        }
        shutdown(h).await;
    }

    #[tokio::test]
    async fn rebalance_without_me_passivates_everything() {
        let h = start(LONG, Duration::ZERO, Duration::ZERO).await;
        for id in ["x", "y", "z"] {
            assert_eq!(call(&h, id, Op::Add(1)).await, Ok(1));
        }
        h.host
            .cast(EntityHostMsg::Rebalance {
                members: vec!["other".into()],
                me: "gone".into(),
            })
            .expect("cast");
        let s = wait_for(&h, |s| s.active == 0 && s.passivating == 0).await;
        assert_eq!(s.passivations, 3);
        assert_eq!(h.store.lock().unwrap().len(), 3);
        shutdown(h).await;
    }

    #[tokio::test]
    async fn activation_error_propagates_and_leaves_nothing_behind() {
        let h = start(LONG, Duration::from_millis(5), Duration::ZERO).await;
        // Several requests waiting on the same failing activation all get
        // the error.
        let (r1, r2) = tokio::join!(
            call(&h, "missing-1", Op::Get),
            call(&h, "missing-1", Op::Add(1))
        );
        assert_eq!(r1, Err(EntityError::NotFound));
        assert_eq!(r2, Err(EntityError::NotFound));
        assert_eq!(
            call(&h, "broken-1", Op::Get).await,
            Err(EntityError::Unavailable("store down".to_string()))
        );
        let s = stats(&h).await;
        assert_eq!(s.active + s.activating + s.passivating, 0);
        assert_eq!(s.activations, 0);
        assert!(s.activation_failures >= 2, "{s:?}");

        // The host still works, and retries a failed activation.
        assert_eq!(call(&h, "ok", Op::Add(2)).await, Ok(2));
        assert_eq!(
            call(&h, "missing-1", Op::Get).await,
            Err(EntityError::NotFound)
        );
        assert_eq!(stats(&h).await.active, 1);
        shutdown(h).await;
    }

    #[tokio::test]
    async fn panicking_handler_is_survived() {
        let h = start(LONG, Duration::ZERO, Duration::ZERO).await;
        assert_eq!(call(&h, "boom", Op::Add(4)).await, Ok(4));
        assert_eq!(call(&h, "other", Op::Add(1)).await, Ok(1));

        // Raw call: the reply port itself carries Unavailable (it is not
        // just dropped), so callers not using `request` get a typed error too.
        let r = ractor::call!(h.host, |reply| EntityHostMsg::Request {
            id: "boom".to_string(),
            req: Op::Panic,
            reply,
        })
        .expect("host answers");
        assert_eq!(
            r,
            Err(EntityError::Unavailable(
                "entity stopped before answering".to_string()
            ))
        );

        let s = wait_for(&h, |s| s.crashes == 1 && s.passivating == 0).await;
        assert_eq!(s.active, 1, "only the healthy entity remains");

        // Re-activated from the store: the crashed state was never persisted.
        assert_eq!(call(&h, "boom", Op::Get).await, Ok(0));
        // The other entity was unaffected.
        assert_eq!(call(&h, "other", Op::Get).await, Ok(1));
        let s = stats(&h).await;
        assert_eq!(s.activations, 3);
        assert_eq!(s.active, 2);
        assert!(!h.passivated.lock().unwrap().contains(&"boom".to_string()));
        shutdown(h).await;
    }

    #[tokio::test]
    async fn requests_queued_behind_a_panic_are_answered() {
        let h = start(LONG, Duration::ZERO, Duration::ZERO).await;
        assert_eq!(call(&h, "q", Op::Add(1)).await, Ok(1));
        let (a, b, c) = tokio::join!(
            call(&h, "q", Op::Panic),
            call(&h, "q", Op::Add(1)),
            call(&h, "q", Op::Add(1))
        );
        assert!(matches!(a, Err(EntityError::Unavailable(_))), "{a:?}");
        // Each later request is either answered with Unavailable (it was in
        // the crashed actor's mailbox) or served by a fresh activation.
        for r in [b, c] {
            assert!(
                matches!(r, Ok(1..=2) | Err(EntityError::Unavailable(_))),
                "{r:?}"
            );
        }
        let next = call(&h, "q", Op::Get).await.expect("re-activated");
        assert!((0..=2).contains(&next));
        shutdown(h).await;
    }

    #[tokio::test]
    async fn stopped_host_answers_unavailable() {
        let h = start(LONG, Duration::ZERO, Duration::ZERO).await;
        let host = h.host.clone();
        shutdown(h).await;
        let r = request(&host, "a", Op::Get, Some(Duration::from_secs(1))).await;
        assert!(matches!(r, Err(EntityError::Unavailable(_))), "{r:?}");
    }
}
