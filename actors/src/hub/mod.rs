//! The `hub` service: every node's index of its live connections, and live delivery to
//! them from anywhere in the cluster.
//!
//! A connection (one WebSocket, owned by its own local-only actor in the protocol layer)
//! registers in its node's [`ConnectionHub`] through an [`Outlet`]: the hub only queues
//! frames on it or closes it, it never touches a socket. Other nodes reach a hub through the
//! mesh, one call per node (`Target::Node`):
//!
//! | op | kind | request | reply |
//! |---|---|---|---|
//! | `deliver` | effectful | [`DeliverRequest`] | [`DeliverReply`] |
//! | `broadcast` | effectful | [`BroadcastRequest`] | [`BroadcastReply`] |
//! | `list` | idempotent | [`ListRequest`] | [`ConnectionList`] |
//! | `note` | idempotent | [`PresenceNote`] | [`PresenceNote`] |
//!
//! [`deliver`], [`broadcast_all`] and [`list_all`] fan a call out to every member this node
//! routes to and wait for the answers (how many connections took a frame, which
//! connections there are); [`send`] and the presence notes fan out without waiting
//! ([`Router::tell`](crate::mesh::Router::tell)), as nobody reads their answers. A member
//! that died leaves routing within about a second, so its connections drop out of
//! [`list_all`] (and `GET /connections`) with it.
//!
//! Presence: a user's first connection on a node announces `online` to the user's contacts;
//! when the last one on a node closes and no other node holds one, `offline`. Every hub also
//! notes which users each other node holds (op `note`); when a member leaves routing (it
//! died), the first surviving member by name announces `offline` for its users that no
//! other node holds.
//!
//! Notes only tell about connections that open or close while both nodes route to each
//! other, so a hub also *pulls*: whenever a member appears in its routing (its own start,
//! a node joining or restarting, a partition healing) it lists that member's connections
//! (op `list`) and adds them to its notes. Pulling rather than having every hub push its
//! users to newcomers keeps one rule on one side (the hub that lacks the state fetches it,
//! with retries until the member's hub is reachable) and reuses `list`; a member that has
//! just appeared answers one small list per peer. A note and a pull that race are merged
//! (union), so the worst case is a user noted online a moment too long: a redundant
//! `offline` announcement if that node dies.
//!
//! A user's connections across the cluster are capped by [`Slots`]: each connection holds a
//! [`Slot`] reserved in the store before its upgrade ([`slots`]), so the quota is exact on
//! every node at once.
//!
//! A connection whose session is revoked is closed ([`CloseReason::SessionRevoked`]) by a
//! sweep of the node's revocation set every [`SWEEP`]. The hub says why it closes a
//! connection, never how: the protocol holding the connection picks its close code.
//!
//! # Layout
//! - this file: the ops ([`Cmd`]) and the service ([`Hub`]), the mesh face of a node's hub;
//! - `index`: [`ConnectionHub`], [`Outlet`], [`Connection`], [`CloseReason`]: this node's
//!   connections by user, delivery to them, the revocation sweep and closing;
//! - `presence`: `online` / `offline` announcements, the notes of which users other nodes
//!   hold, the pull of a member's list ([`LEARN_TIMEOUT`]) and the departed-member watch;
//! - `fanout`: one call to every member's hub: [`deliver`], [`send`], [`broadcast_all`],
//!   [`list_all`];
//! - [`slots`]: [`Slots`], [`Slot`]: the cluster-wide connection quota, reserved in the
//!   store;
//! - [`store`]: all SQL (the slots);
//! - [`messages`]: the prost messages;
//! - [`frames`]: the JSON frames connections receive.

mod fanout;
pub mod frames;
mod index;
pub mod messages;
mod presence;
pub mod slots;
pub mod store;

use std::sync::Arc;

use bytes::Bytes;

pub use fanout::{broadcast_all, deliver, list_all, send, FAN_OUT_TIMEOUT};
pub use index::{
    since_now, CloseReason, Connection, ConnectionHub, Outlet, BROADCAST_CHUNK, SWEEP,
};
pub use messages::*;
pub use presence::LEARN_TIMEOUT;
pub use slots::{Slot, Slots};

use crate::mesh::{BoxFuture, MeshError, Request, Service};

/// Service name.
pub const NAME: &str = "hub";

crate::ops! {
    /// An op of `hub`, decoded at the service's edge; each is sent to one node's hub
    /// (`Target::Node`).
    pub enum Cmd for NAME {
        /// Give frames to users' connections on this node; per item, the connections reached.
        Deliver = DELIVER("deliver", effectful): DeliverRequest => DeliverReply,
        /// Give a frame to every connection on this node.
        Broadcast = BROADCAST("broadcast", effectful): BroadcastRequest => BroadcastReply,
        /// This node's connections (of one user, or all).
        List = LIST("list", idempotent): ListRequest => ConnectionList,
        /// Another node now holds a user, or no longer does; answers the note.
        Note = NOTE("note", idempotent): PresenceNote => PresenceNote,
    }
}

/// The service: the mesh face of this node's [`ConnectionHub`].
pub struct Hub {
    hub: Arc<ConnectionHub>,
}

impl Hub {
    /// The service over this node's hub.
    pub fn new(hub: Arc<ConnectionHub>) -> Self {
        Self { hub }
    }

    /// `deliver`.
    async fn deliver(&self, r: DeliverRequest) -> Result<DeliverReply, MeshError> {
        let mut delivered = Vec::with_capacity(r.items.len());
        for d in &r.items {
            delivered.push(self.hub.deliver(&d.user_id, &d.frame).await);
        }
        Ok(DeliverReply { delivered })
    }

    /// `broadcast`.
    async fn broadcast(&self, r: BroadcastRequest) -> Result<BroadcastReply, MeshError> {
        Ok(BroadcastReply {
            delivered: self.hub.broadcast(&r.frame).await,
        })
    }

    /// `list`.
    fn list(&self, r: &ListRequest) -> Result<ConnectionList, MeshError> {
        Ok(self.hub.list(&r.user_id))
    }

    /// `note`: records it and answers it.
    fn note(&self, n: PresenceNote) -> Result<PresenceNote, MeshError> {
        self.hub.note(n.clone());
        Ok(n)
    }
}

impl Service for Hub {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            match Cmd::parse(&req)? {
                Cmd::Deliver(r) => DELIVER.reply(self.deliver(r).await),
                Cmd::Broadcast(r) => BROADCAST.reply(self.broadcast(r).await),
                Cmd::List(r) => LIST.reply(self.list(&r)),
                Cmd::Note(n) => NOTE.reply(self.note(n)),
            }
        })
    }
}

#[cfg(test)]
mod tests;
