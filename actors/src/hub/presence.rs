//! Cluster-wide presence: who is online, announced to their contacts.
//!
//! A user's first connection on a node announces `online` ([`arrived`]); when the last one
//! on a node closes and no other node holds one, `offline` ([`left`]). Every hub notes which
//! users each other node holds (op `note`, [`ConnectionHub::note`]) and pulls the
//! connection list of every member that appears ([`learn`]); when a member leaves routing,
//! the first survivor by name announces its users that no other node holds `offline`
//! ([`watch_members`]).

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::fanout::{list_all, send, tell_all, FAN_OUT_TIMEOUT};
use super::{frames, ConnectionHub, LIST, NOTE};
use super::{ConnectionList, DeliverRequest, Delivery, ListRequest, PresenceNote};
use crate::mesh::{NodeInfo, Target};
use crate::users::{self, messages as um};

/// How long a hub keeps trying to list the connections of a member that appeared.
pub const LEARN_TIMEOUT: Duration = Duration::from_secs(10);

impl ConnectionHub {
    /// Records another node's presence note.
    pub(super) fn note(&self, n: PresenceNote) {
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
    pub(super) fn learn(&self, node: &str, list: ConnectionList, members: &[String]) -> usize {
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
    pub(super) fn forget_departed(&self, members: &[String]) -> Vec<(String, String)> {
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
}

/// A user's first connection on this node opened: their contacts learn they are online,
/// and every other hub that this node holds them.
pub(super) fn arrived(info: &Arc<NodeInfo>, user_id: &str, username: &str) {
    tokio::spawn(announce(
        info.clone(),
        user_id.to_string(),
        username.to_string(),
        true,
    ));
    note_all(info, user_id.to_string(), username.to_string(), true);
}

/// A user's last connection on this node closed: every other hub learns that this node no
/// longer holds them and, unless another node still does, their contacts that they are
/// offline.
pub(super) fn left(info: Arc<NodeInfo>, user: String) {
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
pub(super) async fn watch_members(hub: Weak<ConnectionHub>) {
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
async fn learn(hub: Weak<ConnectionHub>, node: String) {
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
