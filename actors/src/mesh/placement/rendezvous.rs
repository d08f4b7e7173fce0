//! Rendezvous (highest random weight) hashing: the home of an entity id among
//! the cluster members.
//!
//! Pure functions, no state. The score is a hash that is **stable across
//! processes, machines, architectures and Rust versions** (FNV-1a 64 followed
//! by the splitmix64 finalizer, both fully specified here). It must be:
//! different nodes — possibly running different builds — have to reach the
//! same answer, so `std`'s randomly keyed, explicitly unstable `DefaultHasher`
//! cannot be used.

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
}
