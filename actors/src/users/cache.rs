//! A per-node read cache of users by id, so profile reads skip the store.
//!
//! Every change (update, password, delete) evicts the entry on the node that made it and,
//! through the `evict` op, on every other routable node. An entry also expires after
//! [`TTL`], which bounds how stale a read can be on a node that missed an eviction (a
//! partition, a node that joined during the broadcast).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::messages::User;

/// How long an entry may serve reads without an eviction.
pub const TTL: Duration = Duration::from_secs(5);
/// Most entries kept; past it, the cache is cleared (simple and bounded).
const MAX_ENTRIES: usize = 100_000;

/// The cache.
#[derive(Debug, Default)]
pub struct Cache(RwLock<HashMap<String, (User, Instant)>>);

impl Cache {
    /// A fresh entry for `id`.
    pub fn get(&self, id: &str) -> Option<User> {
        let map = self.0.read().expect("users cache lock");
        map.get(id)
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(u, _)| u.clone())
    }

    /// Remembers `user` (never with a password hash).
    pub fn put(&self, user: &User) {
        let mut user = user.clone();
        user.password_hash.clear();
        let mut map = self.0.write().expect("users cache lock");
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(user.id.clone(), (user, Instant::now()));
    }

    /// Forgets `id`.
    pub fn evict(&self, id: &str) {
        self.0.write().expect("users cache lock").remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_evict() {
        let c = Cache::default();
        let u = User {
            id: "u1".into(),
            username: "a".into(),
            password_hash: "secret".into(),
            ..User::default()
        };
        c.put(&u);
        let got = c.get("u1").unwrap();
        assert_eq!(got.username, "a");
        assert!(got.password_hash.is_empty(), "hashes are never cached");
        c.evict("u1");
        assert!(c.get("u1").is_none());
    }
}
