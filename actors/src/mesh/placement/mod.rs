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
//!   machines, architectures and Rust versions** (see [`rendezvous`]).
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
//! # Layout
//! - [`rendezvous`]: [`home`] and [`score`], the pure hashing that every node
//!   agrees on.
//! - [`entity`]: the [`Entity`] trait a service implements, [`EntityError`],
//!   the [`request`] helper callers use, and the per-entity child actor (one
//!   per active entity: activate, handle, passivate when idle).
//! - [`host`]: the [`EntityHost`] actor and its [`EntityHostMsg`]: activation
//!   on demand, passivation, rebalance (hand-off) and [`HostStats`].
//! - [`hosted`]: [`Hosted`], a host as a service keeps it: respawned when it died, handed
//!   the placement members as they change.
//! - `tests`: the host and its entities driven through [`request`].
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

pub mod entity;
pub mod host;
pub mod hosted;
pub mod rendezvous;

pub use entity::{request, Entity, EntityError};
pub use host::{Activation, EntityHost, EntityHostMsg, EntityHostState, HostStats};
pub use hosted::Hosted;
pub use rendezvous::{home, score};

#[cfg(test)]
mod tests;
