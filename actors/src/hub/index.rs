//! This node's index of its live connections: [`ConnectionHub`], by user, and the
//! [`Outlet`] each connection registers with; delivery to the connections here, and closing
//! them (the revocation sweep, shutdown).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;

use super::presence;
use super::{ConnectionInfo, ConnectionList};
use crate::mesh::NodeInfo;
use crate::sessions::Revocations;
use crate::store::time::now_ms;

/// How often connections of revoked sessions are looked for.
pub const SWEEP: Duration = Duration::from_millis(250);

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

/// Unix milliseconds now, for [`Connection::since_ms`].
pub fn since_now() -> i64 {
    now_ms()
}

/// This node's live connections, by user.
pub struct ConnectionHub {
    pub(super) info: Arc<NodeInfo>,
    pub(super) by_user: RwLock<HashMap<String, Vec<Arc<Connection>>>>,
    /// Users other nodes hold, by node: user id -> username (from notes and pulls; kept by
    /// `presence`).
    pub(super) remote: RwLock<HashMap<String, HashMap<String, String>>>,
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
        tokio::spawn(presence::watch_members(Arc::downgrade(&hub)));
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
            presence::arrived(&self.info, &conn.user_id, &conn.username);
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
            presence::left(self.info.clone(), user_id.to_string());
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

/// Closes connections of revoked sessions, every [`SWEEP`], while the hub lives.
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
