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
//! ([`Router::tell`]), as nobody reads their answers. A member that died leaves routing
//! within about a second, so its connections drop out of [`list_all`] (and
//! `GET /connections`) with it.
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
//! A connection whose session is revoked is closed ([`CloseReason::SessionRevoked`]) by a
//! sweep of the node's revocation set every [`SWEEP`]. The hub says why it closes a
//! connection, never how: the protocol holding the connection picks its close code.
//!
//! # Layout
//! - this file: [`ConnectionHub`], [`Outlet`], the service and the fan-out helpers;
//! - [`messages`]: the prost messages;
//! - [`frames`]: the JSON frames connections receive.

pub mod frames;
pub mod messages;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;

pub use messages::*;

use crate::mesh::{BoxFuture, MeshError, NodeInfo, Op, OpInfo, Request, Router, Service, Target};
use crate::sessions::Revocations;
use crate::store::time::now_ms;
use crate::users::{self, messages as um};

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

/// How often connections of revoked sessions are looked for.
pub const SWEEP: Duration = Duration::from_millis(250);
/// Deadline of one per-node hub call of a fan-out.
pub const FAN_OUT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a hub keeps trying to list the connections of a member that appeared.
pub const LEARN_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections one task of a broadcast writes to before the next task takes over.
pub const BROADCAST_CHUNK: usize = 512;

/// Why the hub asks a connection to close, in the hub's terms; the protocol holding the
/// connection turns it into its own (a WebSocket close code and reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The session whose token opened the connection was revoked (the revocation sweep).
    SessionRevoked,
    /// The node is leaving the cluster ([`ConnectionHub::close_all`] at shutdown).
    ShuttingDown,
}

impl CloseReason {
    /// The reason for people, e.g. `session revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::SessionRevoked => "session revoked",
            CloseReason::ShuttingDown => "node shutting down",
        }
    }
}

/// The write side of one live connection as the hub sees it.
pub trait Outlet: Send + Sync + 'static {
    /// Writes a frame (UTF-8 JSON text) to the socket if it can without waiting, else
    /// queues it. `false` when the connection is closing or its send queue is full (it then
    /// closes itself: a slow client never grows memory).
    fn push(&self, frame: &Bytes) -> bool;
    /// Asks the connection to close, for `why`.
    fn close(&self, why: CloseReason);
}

/// One registered connection.
pub struct Connection {
    /// Id, unique on this node ([`ConnectionHub::next_id`]).
    pub id: u64,
    /// The connected user.
    pub user_id: String,
    /// The user's name.
    pub username: String,
    /// The session whose token opened it.
    pub session_id: String,
    /// When it opened, unix milliseconds.
    pub since_ms: i64,
    /// Where its frames go.
    pub outlet: Arc<dyn Outlet>,
}

/// This node's live connections, by user.
pub struct ConnectionHub {
    info: Arc<NodeInfo>,
    by_user: RwLock<HashMap<String, Vec<Arc<Connection>>>>,
    /// Users other nodes hold, by node: user id -> username (from notes and pulls).
    remote: RwLock<HashMap<String, HashMap<String, String>>>,
    next: AtomicU64,
}

impl ConnectionHub {
    /// An empty hub for this node; starts the revocation sweep.
    pub fn start(info: Arc<NodeInfo>, revocations: Revocations) -> Arc<Self> {
        let hub = Arc::new(Self {
            info,
            by_user: RwLock::new(HashMap::new()),
            remote: RwLock::new(HashMap::new()),
            next: AtomicU64::new(1),
        });
        tokio::spawn(sweep(Arc::downgrade(&hub), revocations));
        tokio::spawn(watch_members(Arc::downgrade(&hub)));
        hub
    }

    /// A fresh connection id.
    pub fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Open connections on this node.
    pub fn len(&self) -> usize {
        self.info.ws_connections.load(Ordering::Relaxed)
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a connection; the user's first on this node is announced to their contacts.
    pub fn register(&self, conn: Arc<Connection>) {
        let first = {
            let mut map = self.by_user.write().expect("hub lock");
            let list = map.entry(conn.user_id.clone()).or_default();
            list.push(conn.clone());
            list.len() == 1
        };
        self.info.ws_connections.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!(crate::metrics::WS_CONNECTIONS).set(self.len() as f64);
        if first {
            tokio::spawn(announce(
                self.info.clone(),
                conn.user_id.clone(),
                conn.username.clone(),
                true,
            ));
            note_all(
                &self.info,
                conn.user_id.clone(),
                conn.username.clone(),
                true,
            );
        }
    }

    /// Removes a connection; when it was the user's last on this node and no other node
    /// holds one, `offline` is announced to their contacts.
    pub fn unregister(&self, user_id: &str, id: u64) {
        let (removed, last) = {
            let mut map = self.by_user.write().expect("hub lock");
            let Some(list) = map.get_mut(user_id) else {
                return;
            };
            let before = list.len();
            list.retain(|c| c.id != id);
            let removed = before != list.len();
            let last = list.is_empty();
            if last {
                map.remove(user_id);
            }
            (removed, last)
        };
        if !removed {
            return;
        }
        self.info.ws_connections.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!(crate::metrics::WS_CONNECTIONS).set(self.len() as f64);
        if last {
            let info = self.info.clone();
            let user = user_id.to_string();
            tokio::spawn(async move {
                note_all(&info, user.clone(), String::new(), false);
                let Ok(router) = info.router() else { return };
                let elsewhere = list_all(router, &user).await;
                if let Some(c) = elsewhere.first() {
                    tracing::debug!(user = %user, node = %c.node, "still connected elsewhere");
                    return;
                }
                announce(info.clone(), user, String::new(), false).await;
            });
        }
    }

    /// Gives `frame` to every connection of `user_id` here; how many took it.
    pub async fn deliver(&self, user_id: &str, frame: &Bytes) -> u32 {
        let conns = {
            let map = self.by_user.read().expect("hub lock");
            map.get(user_id).cloned().unwrap_or_default()
        };
        push_all(&conns, frame).await
    }

    /// Gives `frame` to every connection here; how many took it.
    ///
    /// An idle connection's outlet writes the frame to its socket on the spot, so this is
    /// one system call per connection: the connections are taken out of the lock first and
    /// handled in chunks of [`BROADCAST_CHUNK`] spread over the runtime's threads, so a
    /// large node neither holds the lock nor one thread for the whole broadcast.
    pub async fn broadcast(&self, frame: &Bytes) -> u32 {
        let all: Vec<Arc<Connection>> = {
            let map = self.by_user.read().expect("hub lock");
            map.values().flatten().cloned().collect()
        };
        if all.len() <= BROADCAST_CHUNK {
            return push_all(&all, frame).await;
        }
        let all = Arc::new(all);
        let mut tasks = tokio::task::JoinSet::new();
        for start in (BROADCAST_CHUNK..all.len()).step_by(BROADCAST_CHUNK) {
            let (all, frame) = (all.clone(), frame.clone());
            tasks.spawn(async move {
                let end = (start + BROADCAST_CHUNK).min(all.len());
                push_all(&all[start..end], &frame).await
            });
        }
        let mut taken = push_all(&all[..BROADCAST_CHUNK], frame).await;
        while let Some(n) = tasks.join_next().await {
            taken += n.unwrap_or(0);
        }
        taken
    }

    /// The connections here (of `user_id` only, unless empty).
    pub fn list(&self, user_id: &str) -> ConnectionList {
        let map = self.by_user.read().expect("hub lock");
        let info = |c: &Arc<Connection>| ConnectionInfo {
            id: c.id,
            user_id: c.user_id.clone(),
            username: c.username.clone(),
            node: self.info.node.to_string(),
            since_ms: c.since_ms,
        };
        let items = if user_id.is_empty() {
            map.values().flatten().map(info).collect()
        } else {
            map.get(user_id).into_iter().flatten().map(info).collect()
        };
        ConnectionList {
            items,
            total: self.len() as u64,
        }
    }

    /// Asks every connection here to close, for `why` (a node leaving the cluster:
    /// [`CloseReason::ShuttingDown`]).
    pub fn close_all(&self, why: CloseReason) {
        let map = self.by_user.read().expect("hub lock");
        for c in map.values().flatten() {
            c.outlet.close(why);
        }
    }

    /// Records another node's presence note.
    fn note(&self, n: PresenceNote) {
        if n.node == *self.info.node {
            return;
        }
        let mut remote = self.remote.write().expect("hub lock");
        let users = remote.entry(n.node).or_default();
        if n.online {
            users.insert(n.user_id, n.username);
        } else {
            users.remove(&n.user_id);
        }
    }

    /// Adds the users of `node`'s connection list to its notes (a union: a note that raced
    /// with the list is kept); nothing when `node` is no longer among `members`. How many
    /// users `node` holds.
    fn learn(&self, node: &str, list: ConnectionList, members: &[String]) -> usize {
        if node == &*self.info.node || !members.iter().any(|m| m == node) {
            return 0;
        }
        let mut remote = self.remote.write().expect("hub lock");
        let users = remote.entry(node.to_string()).or_default();
        for c in list.items.into_iter().filter(|c| c.node == node) {
            users.insert(c.user_id, c.username);
        }
        users.len()
    }

    /// Forgets the notes of nodes that left routing; the users they held that no live node
    /// holds, with their names.
    fn forget_departed(&self, members: &[String]) -> Vec<(String, String)> {
        let mut remote = self.remote.write().expect("hub lock");
        let gone: Vec<String> = remote
            .keys()
            .filter(|n| !members.contains(n))
            .cloned()
            .collect();
        let mut lost: Vec<(String, String)> = gone
            .iter()
            .filter_map(|n| remote.remove(n))
            .flat_map(|users| users.into_iter())
            .collect();
        let local = self.by_user.read().expect("hub lock");
        lost.retain(|(user, _)| {
            !local.contains_key(user) && !remote.values().any(|users| users.contains_key(user))
        });
        lost.sort();
        lost.dedup();
        lost
    }

    /// Closes every connection whose session is revoked.
    fn close_revoked(&self, revocations: &Revocations) -> usize {
        if revocations.is_empty() {
            return 0;
        }
        let map = self.by_user.read().expect("hub lock");
        let mut closed = 0;
        for c in map.values().flatten() {
            if revocations.is_revoked(&c.session_id) {
                c.outlet.close(CloseReason::SessionRevoked);
                closed += 1;
            }
        }
        closed
    }
}

/// Closes connections of revoked sessions, every [`SWEEP`], while the hub lives.
/// Gives `frame` to each of `conns`; how many took it.
///
/// Outside tokio's cooperative budget: an outlet's direct write is one socket operation, and
/// past the budget (128 per task poll) every further one would find the socket "not ready"
/// and fall back to the connection's mailbox. The caller bounds the work instead
/// ([`BROADCAST_CHUNK`]; a delivery is one user's few connections).
async fn push_all(conns: &[Arc<Connection>], frame: &Bytes) -> u32 {
    tokio::task::unconstrained(async {
        conns.iter().filter(|c| c.outlet.push(frame)).count() as u32
    })
    .await
}

async fn sweep(hub: std::sync::Weak<ConnectionHub>, revocations: Revocations) {
    let mut tick = tokio::time::interval(SWEEP);
    loop {
        tick.tick().await;
        let Some(hub) = hub.upgrade() else { return };
        let closed = hub.close_revoked(&revocations);
        if closed > 0 {
            tracing::info!(closed, "closed connections of revoked sessions");
        }
    }
}

/// Tells every other member's hub that this node now holds `user_id` (or no longer does),
/// without waiting for their answers.
fn note_all(info: &NodeInfo, user_id: String, username: String, online: bool) {
    let Ok(router) = info.router() else { return };
    let note = PresenceNote {
        user_id,
        username,
        node: info.node.to_string(),
        online,
    };
    tell_all(router, &NOTE, note);
}

/// Follows the routable members: pulls the connection list of every member that appears
/// ([`learn`]), and when members leave, the first survivor by name announces `offline` for
/// the users only the departed held.
async fn watch_members(hub: std::sync::Weak<ConnectionHub>) {
    let mut members = loop {
        let Some(h) = hub.upgrade() else { return };
        if let Ok(r) = h.info.router() {
            break r.watch_members();
        }
        drop(h);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The list as it is now counts as a change: a node that starts after its peers were
    // routable must learn them too.
    members.mark_changed();
    let mut known: Vec<String> = vec![];
    while members.changed().await.is_ok() {
        let Some(h) = hub.upgrade() else { return };
        let list = members.borrow_and_update().to_vec();
        for node in list
            .iter()
            .filter(|n| !known.contains(n) && **n != *h.info.node)
        {
            tokio::spawn(learn(hub.clone(), node.clone()));
        }
        known.clone_from(&list);
        let lost = h.forget_departed(&list);
        if lost.is_empty() || list.first().map(String::as_str) != Some(&*h.info.node) {
            continue;
        }
        tracing::info!(
            users = lost.len(),
            "announcing users of departed members offline"
        );
        for (user, username) in lost {
            tokio::spawn(announce(h.info.clone(), user, username, false));
        }
    }
}

/// Pulls `node`'s connection list (op `list`) into this hub's notes, so that a member that
/// joined (or restarted) after users connected there knows them as if it had received
/// their notes. Retried with backoff while `node` is routable but its hub is not yet
/// reachable (its groups may sync a moment after its session is up), for at most
/// [`LEARN_TIMEOUT`].
async fn learn(hub: std::sync::Weak<ConnectionHub>, node: String) {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let Some(router) = hub.upgrade().and_then(|h| h.info.router().ok().cloned()) else {
            return;
        };
        if !router.members().contains(&node) {
            return;
        }
        let call = LIST
            .call(ListRequest::default())
            .to(Target::Node(node.clone()))
            .timeout(FAN_OUT_TIMEOUT);
        match router.call(call).await {
            Ok(list) => {
                let Some(h) = hub.upgrade() else { return };
                let users = h.learn(&node, list, &router.members());
                tracing::debug!(node = %node, users, "learned a member's connections");
                return;
            }
            Err(e) if started.elapsed() + pause < LEARN_TIMEOUT => {
                tracing::debug!(node = %node, error = %e, "member's connections not listed yet");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(e) => {
                tracing::warn!(node = %node, error = %e, "cannot learn a member's connections");
                return;
            }
        }
    }
}

/// Tells `user_id`'s contacts, wherever they are connected, that the user came or went.
async fn announce(info: Arc<NodeInfo>, user_id: String, username: String, online: bool) {
    let Ok(router) = info.router() else { return };
    let call = users::LIST_CONTACTS
        .call(um::ListContactsRequest {
            user_id: user_id.clone(),
        })
        .timeout(FAN_OUT_TIMEOUT);
    let contacts = match router.call(call).await {
        Ok(list) => list.items,
        Err(e) => {
            tracing::warn!(user = %user_id, error = %e, "presence: cannot list contacts");
            return;
        }
    };
    if contacts.is_empty() {
        return;
    }
    let frame = frames::presence(&user_id, &username, online, &info.node);
    let items = contacts
        .into_iter()
        .map(|c| Delivery {
            user_id: c.user_id,
            frame: frame.clone(),
        })
        .collect();
    send(router, DeliverRequest { items });
}

/// Sends one call to the hub of every member this node routes to, concurrently; the
/// answers of the members that answered in time.
async fn fan_out<Req, Rep>(
    router: &Router,
    op: &Op<Req, Rep>,
    req: Req,
) -> Vec<(String, Result<Rep, MeshError>)>
where
    Req: prost::Message + Default + Clone,
    Rep: prost::Message + Default + 'static,
{
    let handles: Vec<_> = router
        .members()
        .iter()
        .map(|node| {
            let call = op
                .call(req.clone())
                .to(Target::Node(node.clone()))
                .timeout(FAN_OUT_TIMEOUT);
            let router = router.clone();
            let node = node.clone();
            tokio::spawn(async move { (node, router.call(call).await) })
        })
        .collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(answer) = h.await {
            out.push(answer);
        }
    }
    out
}

/// Sends one call to the hub of every member this node routes to and returns at once: for
/// fan-out whose answers nobody reads.
fn tell_all<Req, Rep>(router: &Router, op: &Op<Req, Rep>, req: Req)
where
    Req: prost::Message + Default + Clone,
    Rep: prost::Message + 'static,
{
    for node in router.members().iter() {
        let call = op
            .call(req.clone())
            .to(Target::Node(node.clone()))
            .timeout(FAN_OUT_TIMEOUT);
        router.tell(call);
    }
}

/// Delivers frames to users' connections on every node; per item, the connections reached.
pub async fn deliver(router: &Router, req: DeliverRequest) -> Vec<u32> {
    let mut total = vec![0u32; req.items.len()];
    for (node, answer) in fan_out(router, &DELIVER, req).await {
        match answer {
            Ok(r) => {
                for (t, d) in total.iter_mut().zip(r.delivered) {
                    *t += d;
                }
            }
            Err(e) => tracing::warn!(node = %node, error = %e, "live delivery to a node failed"),
        }
    }
    total
}

/// Delivers frames to users' connections on every node without waiting: for deliveries
/// whose count nobody reads (presence, receipts). A node that misses one only logs it.
pub fn send(router: &Router, req: DeliverRequest) {
    tell_all(router, &DELIVER, req);
}

/// Queues `frame` on every connection of every node; the connections reached and the nodes
/// that answered.
pub async fn broadcast_all(router: &Router, frame: Bytes) -> (u32, Vec<String>) {
    let mut delivered = 0;
    let mut nodes = Vec::new();
    for (node, answer) in fan_out(router, &BROADCAST, BroadcastRequest { frame }).await {
        match answer {
            Ok(r) => {
                delivered += r.delivered;
                nodes.push(node);
            }
            Err(e) => tracing::warn!(node = %node, error = %e, "broadcast to a node failed"),
        }
    }
    nodes.sort();
    (delivered, nodes)
}

/// Every open connection in the cluster (of `user_id` only, unless empty), by node and
/// opening time.
pub async fn list_all(router: &Router, user_id: &str) -> Vec<ConnectionInfo> {
    let req = ListRequest {
        user_id: user_id.to_string(),
    };
    let mut items: Vec<ConnectionInfo> = fan_out(router, &LIST, req)
        .await
        .into_iter()
        .filter_map(|(node, answer)| match answer {
            Ok(list) => Some(list.items),
            Err(e) => {
                tracing::warn!(node = %node, error = %e, "listing a node's connections failed");
                None
            }
        })
        .flatten()
        .collect();
    items.sort_by(|a, b| (&a.node, a.since_ms, a.id).cmp(&(&b.node, b.since_ms, b.id)));
    items
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

    fn ops(&self) -> &'static [OpInfo] {
        Cmd::OPS
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

/// Unix milliseconds now, for [`Connection::since_ms`].
pub fn since_now() -> i64 {
    now_ms()
}

#[cfg(test)]
mod tests;
