//! Picks the actor that serves a call and carries the call there.
//!
//! - `Target::Any`: this node's pool first (no serialization, no network); when it has no
//!   live worker, a remote endpoint of the service's pg group `svc.<service>`.
//! - `Target::Node(name)`: that node's endpoint (pg group `svc.<service>@<name>`).
//! - `Target::Entity(id)`: the entity's home node by rendezvous hashing over the *placement*
//!   members (see [`super::placement`]): the routable members plus those unreachable but not
//!   yet downed, which keep their entities until then (see [`super::partition`]). A node
//!   that is fenced answers every entity-bound call with `unavailable`.
//!
//! Every call has a deadline. Ops the service marks idempotent are retried on another
//! member after an `unavailable` failure, until the deadline; others are tried once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ractor::{ActorCell, ActorRef};
use rand::seq::IndexedRandom;

use super::endpoint::EndpointMsg;
use super::op::RawCall;
use super::partition::{Owner, Ownership};
use super::pool::Pool;
use super::{lane, placement, trace, wire, Call, MeshError, Op, Pools, Request, Target};

/// Where one attempt goes.
enum Hop {
    Local(Arc<Pool>),
    Remote(ActorCell),
}

/// The router of one node. Cheap to clone.
#[derive(Clone)]
pub struct Router {
    node: Arc<str>,
    pools: Arc<Pools>,
    default_timeout: Duration,
    members: tokio::sync::watch::Receiver<Arc<Vec<String>>>,
    placement: tokio::sync::watch::Receiver<Arc<Vec<String>>>,
    ownership: Ownership,
}

/// Attempts of an idempotent call (the first included).
const MAX_ATTEMPTS: usize = 5;

impl Router {
    /// A router over this node's pools; `members` are the names of the nodes this node routes
    /// to (itself included), kept current by the membership actor.
    pub fn new(
        node: Arc<str>,
        pools: Arc<Pools>,
        default_timeout: Duration,
        members: tokio::sync::watch::Receiver<Arc<Vec<String>>>,
    ) -> Self {
        Self {
            node,
            pools,
            default_timeout,
            placement: members.clone(),
            members,
            ownership: Ownership::always(),
        }
    }

    /// Places entities over `placement` (kept current by the membership actor) instead of
    /// the routable members, and refuses entity-bound calls while `ownership` is fenced.
    pub fn with_partition(
        mut self,
        placement: tokio::sync::watch::Receiver<Arc<Vec<String>>>,
        ownership: Ownership,
    ) -> Self {
        self.placement = placement;
        self.ownership = ownership;
        self
    }

    /// Whether this node may own entities and tasks now.
    pub fn ownership(&self) -> &Ownership {
        &self.ownership
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Names of the members this node routes to, itself included, sorted.
    pub fn members(&self) -> Arc<Vec<String>> {
        self.members.borrow().clone()
    }

    /// A receiver that sees every change of the routable member list.
    pub fn watch_members(&self) -> tokio::sync::watch::Receiver<Arc<Vec<String>>> {
        self.members.clone()
    }

    /// Names of the members that own entities and tasks as far as this node knows, sorted:
    /// the routable members plus the unreachable ones not downed yet.
    pub fn placement(&self) -> Arc<Vec<String>> {
        self.placement.borrow().clone()
    }

    /// The placement members this node may act on, as they change: what entity and task
    /// hosts rebalance against (see [`OwnedPlacement`]).
    pub fn watch_owned_placement(&self) -> OwnedPlacement {
        OwnedPlacement {
            members: self.placement.clone(),
            owner: self.ownership.watch(),
        }
    }

    /// The home node of an entity id among the placement members.
    pub fn home_of(&self, entity: &str) -> Option<String> {
        let members = self.placement();
        placement::home(entity, &members).cloned()
    }

    /// Runs `op` with `req` on any member, with the default deadline, and answers its reply.
    pub async fn ask<Req, Rep>(&self, op: &Op<Req, Rep>, req: Req) -> Result<Rep, MeshError>
    where
        Req: prost::Message + Default,
        Rep: prost::Message + Default,
    {
        self.call(op.call(req)).await
    }

    /// Runs a call and answers its reply.
    pub async fn call<Rep: prost::Message + Default>(
        &self,
        mut call: Call<Rep>,
    ) -> Result<Rep, MeshError> {
        // A write made while running a keyed write is keyed too (derived from it), so a
        // retry of the outer write runs each inner one once.
        if call.raw.idempotency_key.is_empty() && !call.raw.idempotent {
            if let Some(key) = crate::store::idempotency::current() {
                call.raw.idempotency_key = key.derived();
            }
        }
        let bytes = self.run(&call.raw).await?;
        Rep::decode(bytes).map_err(|e| {
            MeshError::internal(format!(
                "{}.{}: malformed reply: {e}",
                call.raw.service, call.raw.op
            ))
        })
    }

    /// Sends a call whose answer nobody needs (fan-out: revocation notes, cache evictions,
    /// presence) and returns at once: the caller holds no worker while it travels. A
    /// failure is logged at debug level; what needs a guarantee has another path (a store
    /// poll, an outbox).
    pub fn tell<Rep: 'static>(&self, mut call: Call<Rep>) {
        let router = self.clone();
        call.raw.trace = call.raw.trace.or_else(trace::current);
        tokio::spawn(async move {
            if let Err(e) = router.run(&call.raw).await {
                tracing::debug!(service = call.raw.service, op = call.raw.op, error = %e, "told call failed");
            }
        });
    }

    /// Runs a call and returns the service's encoded reply.
    async fn run(&self, call: &RawCall) -> Result<Bytes, MeshError> {
        let started = Instant::now();
        let timeout = call.timeout.unwrap_or(self.default_timeout);
        let deadline = started + timeout;
        // A keyed write runs once however often it is sent: it may be retried too.
        let idempotent = call.idempotent || !call.idempotency_key.is_empty();
        let chain = lane::current();
        let mut tried: Vec<ractor::ActorId> = Vec::new();
        let mut pause = Duration::from_millis(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (hop, result) = match self.pick(call, &tried) {
                Ok(Hop::Local(pool)) => (
                    "local",
                    pool.dispatch(self.request(call, deadline, &chain)).await,
                ),
                Ok(Hop::Remote(cell)) => {
                    tried.push(cell.get_id());
                    ("remote", self.remote(cell, call, deadline, &chain).await)
                }
                Err(e) => ("none", Err(e)),
            };
            match result {
                Ok(bytes) => {
                    record(call, hop, "ok", started);
                    return Ok(bytes);
                }
                // Killed mid-request, or no member right now: an idempotent op may run again.
                Err(e)
                    if idempotent
                        && e.is_retryable()
                        && attempt < MAX_ATTEMPTS
                        && Instant::now() + pause < deadline =>
                {
                    tracing::debug!(service = call.service, op = call.op, error = %e, attempt, "retrying idempotent call");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(e) => {
                    record(call, hop, e.code.as_str(), started);
                    return Err(e);
                }
            }
        }
    }

    fn pick(&self, call: &RawCall, tried: &[ractor::ActorId]) -> Result<Hop, MeshError> {
        let node = match &call.target {
            Target::Any => None,
            Target::Node(n) => Some(n.clone()),
            Target::Entity(id) => Some({
                self.ownership.check()?;
                self.home_of(id)
                    .ok_or_else(|| MeshError::unavailable("no member to place the entity on"))?
            }),
        };
        match node {
            Some(n) if n == *self.node => self.local(call.service),
            Some(n) => ractor::pg::get_members(&wire::node_group(call.service, &n))
                .into_iter()
                .next()
                .map(Hop::Remote)
                .ok_or_else(|| MeshError::unavailable(format!("node {n} is not reachable"))),
            None => {
                // Local first while this node has live workers; then a remote member not yet
                // tried; then this node again (its workers may be back).
                let local = self.pools.get(call.service);
                if let Some(pool) = local.filter(|p| p.alive() > 0) {
                    return Ok(Hop::Local(pool.clone()));
                }
                let remote: Vec<ActorCell> = ractor::pg::get_members(&wire::group(call.service))
                    .into_iter()
                    .filter(|c| !c.get_id().is_local() && !tried.contains(&c.get_id()))
                    .collect();
                if let Some(cell) = remote.choose(&mut rand::rng()) {
                    return Ok(Hop::Remote(cell.clone()));
                }
                self.local(call.service)
            }
        }
    }

    fn local(&self, service: &str) -> Result<Hop, MeshError> {
        self.pools
            .get(service)
            .cloned()
            .map(Hop::Local)
            .ok_or_else(|| MeshError::not_found(format!("unknown service {service}")))
    }

    fn request(&self, call: &RawCall, deadline: Instant, chain: &[String]) -> Request {
        Request {
            op: call.op.to_string(),
            payload: call.payload.clone(),
            caller: call.caller.clone(),
            request_id: call.request_id.clone(),
            trace: call.trace.or_else(trace::current).map(|t| t.child()),
            deadline,
            entity: entity_of(&call.target).to_string(),
            chain: chain.to_vec(),
            idempotency_key: call.idempotency_key.clone(),
        }
    }

    async fn remote(
        &self,
        cell: ActorCell,
        call: &RawCall,
        deadline: Instant,
        chain: &[String],
    ) -> Result<Bytes, MeshError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        tracing::debug!(service = call.service, op = call.op, "call to a peer");
        let env = wire::envelope(
            wire::Outgoing {
                service: call.service,
                op: call.op,
                payload: &call.payload,
                request_id: &call.request_id,
                caller: call.caller.as_ref(),
                entity: entity_of(&call.target),
                origin: &self.node,
                chain,
                idempotency_key: &call.idempotency_key,
                trace: call.trace.or_else(trace::current),
            },
            remaining,
        );
        let actor: ActorRef<EndpointMsg> = cell.into();
        match actor
            .call(|port| EndpointMsg::Call(env, port), Some(remaining))
            .await
        {
            Ok(ractor::rpc::CallResult::Success(bytes)) => wire::decode_reply(&bytes),
            Ok(ractor::rpc::CallResult::Timeout) => Err(MeshError::deadline()),
            Ok(ractor::rpc::CallResult::SenderError) => {
                Err(MeshError::unavailable("peer dropped the call"))
            }
            Err(e) => Err(MeshError::unavailable(format!("peer unreachable: {e}"))),
        }
    }
}

/// The placement members as a node that hosts entities acts on them: the list while it
/// owns, none while it is fenced (it lost a split: every entity here lets go). Made by
/// [`Router::watch_owned_placement`].
pub struct OwnedPlacement {
    members: tokio::sync::watch::Receiver<Arc<Vec<String>>>,
    owner: tokio::sync::watch::Receiver<Owner>,
}

impl OwnedPlacement {
    /// Waits until the placement members or this node's ownership change; answers the list
    /// to rebalance against, or `None` once the node stops publishing them.
    pub async fn changed(&mut self) -> Option<Vec<String>> {
        tokio::select! {
            c = self.members.changed() => c.ok()?,
            c = self.owner.changed() => c.ok()?,
        }
        Some(self.current())
    }

    /// The list to rebalance against now.
    pub fn current(&mut self) -> Vec<String> {
        if self.owner.borrow_and_update().is_owner() {
            self.members.borrow_and_update().to_vec()
        } else {
            Vec::new()
        }
    }
}

fn entity_of(target: &Target) -> &str {
    match target {
        Target::Entity(id) => id,
        _ => "",
    }
}

type CallKey = (&'static str, &'static str, &'static str, &'static str);

thread_local! {
    static CALL_METRICS: std::cell::RefCell<crate::metrics::HandleMap<CallKey>> =
        Default::default();
}

fn record(call: &RawCall, hop: &'static str, code: &'static str, started: Instant) {
    let (service, op) = (call.service, call.op);
    let seconds = started.elapsed().as_secs_f64();
    CALL_METRICS.with_borrow_mut(|map| {
        crate::metrics::record(map, (service, op, hop, code), seconds, || {
            (
                metrics::counter!(crate::metrics::MESH_CALLS, "service" => service, "op" => op, "hop" => hop, "code" => code),
                metrics::histogram!(crate::metrics::MESH_CALL_SECONDS, "service" => service, "op" => op, "hop" => hop),
            )
        })
    });
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").field("node", &self.node).finish()
    }
}
