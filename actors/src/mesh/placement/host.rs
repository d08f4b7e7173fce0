//! The [`EntityHost`] actor: one per node per entity kind. It activates
//! entities on demand (spawning one child actor per entity, see
//! [`entity`](super::entity)), passivates them when asked or when their home
//! moved ([`EntityHostMsg::Rebalance`]), and parks requests that race with a
//! passivation until the fresh activation is up. The state machine and its
//! guarantees are described in the [placement docs](super).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ractor::{
    Actor, ActorId, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort, SpawnErr,
    SupervisionEvent,
};
use ractor_cluster::RactorMessage;
use serde::{Deserialize, Serialize};

use super::entity::{Entity, EntityActor, EntityError, EntityMsg, Reply};
use super::rendezvous::home;
use crate::mesh::trace::{self, Trace};
use crate::mesh::NodeInfo;

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
        /// The trace of the request being served by the sender ([`request`](super::request)
        /// takes [`trace::current`]): the entity's turn runs inside it, so its log lines
        /// carry the request's `trace_id`.
        trace: Option<Trace>,
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
    /// Reply with the ids of the entities whose actor runs and accepts requests. Sent by
    /// [`super::Hosted`]'s lister for the placement view.
    Ids(RpcReplyPort<Vec<String>>),
    /// Internal: the result of an activation started by the host. Sent by the
    /// host to itself; [`Activation`] cannot be constructed outside [`host`](self).
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

/// A request waiting in the host for an activation.
struct Pending<E: Entity> {
    req: E::Request,
    trace: Option<Trace>,
    reply: Reply<E::Reply>,
}

/// Actor hosting the entities of kind `E` on this node.
///
/// Spawn one per node per entity kind, e.g.
/// `Actor::spawn(Some(name), EntityHost::new(MyEntity::new(store), idle), ())`,
/// and talk to it with [`request`](super::request) or [`EntityHostMsg`]. The host never fails
/// because of its entities: crashes of entity actors are absorbed (see the
/// [placement docs](super)). When the host itself is stopped, it drains every
/// entity actor (so they passivate) and waits up to
/// [`with_shutdown_timeout`](Self::with_shutdown_timeout) for them.
pub struct EntityHost<E: Entity> {
    entity: Arc<E>,
    idle_timeout: Duration,
    shutdown_timeout: Duration,
    node: Option<Arc<NodeInfo>>,
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
            node: None,
        }
    }

    /// Refuses every request with [`EntityError::Unavailable`] while the node is fenced
    /// (it lost a split, or holds no lease: see [`crate::mesh::partition`]), as its
    /// router's ownership says once the mesh runs.
    pub fn fenced_with(mut self, node: Arc<NodeInfo>) -> Self {
        self.node = Some(node);
        self
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
        // The activation runs in the trace of the request that caused it: the store load
        // and its log lines belong to that request.
        let cause = waiters.first().and_then(|w| w.trace);
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
            let spawning = Actor::spawn_linked(None, child, id.clone(), host.get_cell());
            let spawned = match cause {
                Some(t) => trace::scope(t, spawning).await,
                None => spawning.await,
            };
            let result = spawned
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
                    trace: pending.trace,
                    reply: pending.reply,
                };
                match actor.cast(msg) {
                    Ok(()) => {}
                    // The child is draining or stopped: park the request until
                    // its termination, then re-activate.
                    Err(MessagingErr::SendErr(EntityMsg::Request { req, trace, reply })) => {
                        *slot = Slot::Passivating {
                            actor: actor.get_id(),
                            waiters: vec![Pending { req, trace, reply }],
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
            EntityHostMsg::Request {
                id,
                req,
                trace,
                reply,
            } => {
                let router = self.node.as_ref().and_then(|n| n.router().ok());
                if let Some(Err(e)) = router.map(|r| r.ownership().check()) {
                    let _ = reply.send(Err(EntityError::Unavailable(e.message)));
                    return Ok(());
                }
                let pending = Pending {
                    req,
                    trace,
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
            EntityHostMsg::Ids(reply) => {
                let ids = state
                    .slots
                    .iter()
                    .filter(|(_, s)| matches!(s, Slot::Active { .. }))
                    .map(|(id, _)| id.clone())
                    .collect();
                let _ = reply.send(ids);
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
