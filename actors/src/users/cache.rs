//! A per-node read cache of users by id (and an index of those by lowercase username), so
//! profile reads and SOAP lookups skip the store.
//!
//! Every change (update, password, delete, confirmation) evicts the entry on the node that
//! made it and, through the `evict` op, on every other routable node, and is answered once
//! they have (or after 500 ms), so a change is read as made on every node. An entry also
//! expires after
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
pub struct Cache(RwLock<Maps>);

/// The entries, and the ids by lowercase username. A name whose entry was evicted or
/// renamed simply misses: [`Cache::get_by_username`] checks the entry it finds.
#[derive(Debug, Default)]
pub struct Maps {
    by_id: HashMap<String, (User, Instant)>,
    by_name: HashMap<String, String>,
}

impl Cache {
    /// A fresh entry for `id`.
    pub fn get(&self, id: &str) -> Option<User> {
        let maps = self.0.read().expect("users cache lock");
        fresh(&maps, id)
    }

    /// A fresh entry whose username is `lower` (already lowercase).
    pub fn get_by_username(&self, lower: &str) -> Option<User> {
        let maps = self.0.read().expect("users cache lock");
        let id = maps.by_name.get(lower)?;
        fresh(&maps, id).filter(|u| u.username.to_lowercase() == lower)
    }

    /// Remembers `user` (never with a password hash).
    pub fn put(&self, user: &User) {
        let mut user = user.clone();
        user.password_hash.clear();
        let mut maps = self.0.write().expect("users cache lock");
        if maps.by_id.len() >= MAX_ENTRIES || maps.by_name.len() >= MAX_ENTRIES {
            maps.by_id.clear();
            maps.by_name.clear();
        }
        maps.by_name
            .insert(user.username.to_lowercase(), user.id.clone());
        maps.by_id.insert(user.id.clone(), (user, Instant::now()));
    }

    /// Forgets `id`.
    pub fn evict(&self, id: &str) {
        self.0.write().expect("users cache lock").by_id.remove(id);
    }
}

fn fresh(maps: &Maps, id: &str) -> Option<User> {
    maps.by_id
        .get(id)
        .filter(|(_, at)| at.elapsed() < TTL)
        .map(|(u, _)| u.clone())
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
        assert_eq!(c.get_by_username("a").unwrap().id, "u1");
        assert!(c.get_by_username("b").is_none());
        c.evict("u1");
        assert!(c.get("u1").is_none());
        assert!(
            c.get_by_username("a").is_none(),
            "an evicted user misses by name too"
        );
    }

    #[test]
    fn a_renamed_user_is_not_found_under_the_old_name() {
        let c = Cache::default();
        let mut u = User {
            id: "u1".into(),
            username: "Alice".into(),
            ..User::default()
        };
        c.put(&u);
        assert_eq!(c.get_by_username("alice").unwrap().username, "Alice");
        u.username = "bob".into();
        c.put(&u);
        assert!(c.get_by_username("alice").is_none());
        assert_eq!(c.get_by_username("bob").unwrap().id, "u1");
    }
}
