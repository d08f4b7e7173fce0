//! Sealed gossip datagrams: every chitchat datagram is encrypted and authenticated with a key
//! only cluster members hold, and carries a counter and a timestamp so a captured datagram
//! cannot be played again. What a receiver refuses, it refuses before chitchat sees it.
//!
//! # Keys
//! The cluster key is HKDF-SHA256 over the cluster cookie (`membership::Config.cookie`), with
//! the salt `troupe gossip seal v1`. Each sender instance draws a random 64-bit id when its
//! socket opens, and seals with its own ChaCha20-Poly1305 key:
//! `HKDF-Expand(cluster key, "troupe gossip seal v1: sender key" ‖ sender id ‖ cluster id)`.
//! So another cluster id, or another cookie, gives other keys, and the keys are independent of
//! the cookie's use in ractor's handshake. HKDF is not a password hash: the cookie must be a
//! long random secret, since a captured datagram lets anyone test guesses offline.
//!
//! # Nonces
//! A nonce is the sender's counter (big-endian, padded to 96 bits), and the counter increases
//! by one for every datagram the instance seals, so within one sender key no nonce repeats.
//! Two instances share a key only if they draw the same 64-bit id (a chance of about
//! n²/2⁶⁵ over n instances ever started with one cookie), so a nonce never repeats under one
//! key. Random 96-bit nonces under one cluster-wide key would instead have a limit of about
//! 2³² datagrams in the key's life, which a busy cluster reaches in weeks.
//!
//! # Wire format
//! ```text
//! version (1, = 1) | sender id (8) | counter (8) | timestamp ms since the epoch (8) | ciphertext | tag (16)
//! ```
//! All integers are big-endian. The 25-byte header is the AEAD's associated data, so it is
//! authenticated but readable: the receiver picks the sender's key from it.
//!
//! # What a receiver refuses, in this order
//! - `garbage`: shorter than header and tag, or an unknown version byte (or, in
//!   [`super::gossip`], an authentic datagram chitchat cannot decode).
//! - `forged`: the tag does not verify (another cookie or cluster id, a flipped bit, made up).
//! - `stale`: the timestamp is more than [`MAX_SKEW`] away from the receiver's clock. This is
//!   what stops a receiver that has never heard of a sender (it just started, or evicted the
//!   sender) from accepting that sender's datagrams captured long ago. It assumes members'
//!   clocks agree within [`MAX_SKEW`] (NTP does much better); a node whose clock is off by more
//!   has its gossip refused, is counted `stale`, and is declared down by its peers.
//! - `replayed`: the counter was accepted from this sender before, or is more than
//!   [`WINDOW`] behind the highest accepted one (the window is a sliding bitmap, as in IPsec
//!   and WireGuard, so datagrams reordered by the network are still accepted once).
//!
//! The replay table holds one entry per sender id that sent an authentic datagram, at most
//! `capacity` ([`MAX_SENDERS`] in production); when full, the sender heard from least recently
//! is dropped. Datagrams that fail to authenticate never make an entry, so garbage cannot grow
//! it. A datagram is accepted at most once per receiver per entry; a receiver that restarts or
//! evicts a sender can accept a captured datagram once more, but only within [`MAX_SKEW`] of
//! its sending. A datagram sealed for one member may also be accepted once by another member:
//! it carries nothing the sender would not gossip to that member too.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use aws_lc_rs::hkdf;

/// Wire format version, the first byte of every sealed datagram.
pub const VERSION: u8 = 1;
/// Version, sender id, counter and timestamp.
pub const HEADER_LEN: usize = 1 + 8 + 8 + 8;
/// ChaCha20-Poly1305's tag.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed datagram adds to the chitchat payload.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// How far behind the highest accepted counter a counter may be and still be accepted once.
pub const WINDOW: u64 = 64;
/// How far a datagram's timestamp may be from the receiver's clock, either way.
pub const MAX_SKEW: Duration = Duration::from_secs(30);
/// Senders a receiver tracks: far above the instances of any one cluster within
/// [`MAX_SKEW`].
pub const MAX_SENDERS: usize = 1024;

const SALT: &[u8] = b"troupe gossip seal v1";
const SENDER_KEY_INFO: &[u8] = b"troupe gossip seal v1: sender key";

/// Why a datagram was refused; the label is the `reason` of
/// `troupe_gossip_rejected_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Reject {
    /// Too short, an unknown version, or undecodable after opening.
    #[error("garbage")]
    Garbage,
    /// The tag did not verify.
    #[error("forged")]
    Forged,
    /// The timestamp is outside [`MAX_SKEW`].
    #[error("stale")]
    Stale,
    /// The counter was seen before, or is behind the window.
    #[error("replayed")]
    Replayed,
}

impl Reject {
    /// Every reason, in a fixed order (its index is [`Reject::index`]).
    pub const ALL: [Reject; 4] = [
        Reject::Garbage,
        Reject::Forged,
        Reject::Stale,
        Reject::Replayed,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Reject::Garbage => "garbage",
            Reject::Forged => "forged",
            Reject::Stale => "stale",
            Reject::Replayed => "replayed",
        }
    }

    /// Position in [`Reject::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The cluster key: what every member derives from the cookie and the cluster id.
#[derive(Clone)]
pub struct Key {
    prk: hkdf::Prk,
    cluster_id: Box<[u8]>,
}

impl Key {
    /// Derives the cluster key.
    pub fn derive(cookie: &str, cluster_id: &str) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(cookie.as_bytes());
        Self {
            prk,
            cluster_id: cluster_id.as_bytes().into(),
        }
    }

    /// The key sender `sender` seals with. The info is a fixed label, the 8-byte id and then
    /// the cluster id, so no two (sender, cluster id) pairs give the same info.
    fn for_sender(&self, sender: u64) -> LessSafeKey {
        let id = sender.to_be_bytes();
        let info = [SENDER_KEY_INFO, &id, &self.cluster_id];
        let okm = self
            .prk
            .expand(&info, &CHACHA20_POLY1305)
            .expect("a 32-byte key is within hkdf's output limit");
        LessSafeKey::new(UnboundKey::from(okm))
    }
}

fn nonce(counter: u64) -> Nonce {
    let mut bytes = [0u8; NONCE_LEN];
    bytes[NONCE_LEN - 8..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(u64::MAX))
}

/// Seals this instance's datagrams.
pub struct Sealer {
    key: LessSafeKey,
    sender: u64,
    counter: u64,
}

impl Sealer {
    /// A sealer with a fresh random sender id.
    pub fn new(key: &Key) -> Self {
        let mut id = [0u8; 8];
        aws_lc_rs::rand::fill(&mut id).expect("the system random generator works");
        Self::with_sender(key, u64::from_be_bytes(id))
    }

    fn with_sender(key: &Key, sender: u64) -> Self {
        Self {
            key: key.for_sender(sender),
            sender,
            counter: 0,
        }
    }

    /// Writes `payload` sealed at time `now` into `out` (cleared first).
    pub fn seal(&mut self, payload: &[u8], now: SystemTime, out: &mut Vec<u8>) {
        // 2⁶⁴ datagrams are never sent; were they, refusing beats reusing a nonce.
        self.counter = self
            .counter
            .checked_add(1)
            .expect("gossip counter exhausted");
        out.clear();
        out.reserve(payload.len() + OVERHEAD);
        out.push(VERSION);
        out.extend_from_slice(&self.sender.to_be_bytes());
        out.extend_from_slice(&self.counter.to_be_bytes());
        out.extend_from_slice(&unix_ms(now).to_be_bytes());
        out.extend_from_slice(payload);
        let (header, body) = out.split_at_mut(HEADER_LEN);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce(self.counter), Aad::from(&*header), body)
            .expect("chacha20-poly1305 seals any datagram-sized payload");
        out.extend_from_slice(tag.as_ref());
    }
}

/// What a receiver remembers of one sender.
struct Peer {
    key: LessSafeKey,
    /// Highest counter accepted.
    highest: u64,
    /// Bit `i` set: counter `highest - i` was accepted.
    seen: u64,
    /// When it was last heard from, in [`Opener::tick`]s.
    last: u64,
}

impl Peer {
    fn check(&self, counter: u64) -> Result<(), Reject> {
        if counter > self.highest {
            return Ok(());
        }
        let behind = self.highest - counter;
        if behind >= WINDOW || self.seen & (1 << behind) != 0 {
            return Err(Reject::Replayed);
        }
        Ok(())
    }

    fn mark(&mut self, counter: u64) {
        if counter > self.highest {
            let ahead = counter - self.highest;
            self.seen = if ahead >= WINDOW {
                0
            } else {
                self.seen << ahead
            };
            self.seen |= 1;
            self.highest = counter;
        } else {
            self.seen |= 1 << (self.highest - counter);
        }
    }
}

/// Opens datagrams, remembering what each sender sent.
pub struct Opener {
    key: Key,
    peers: HashMap<u64, Peer>,
    capacity: usize,
    tick: u64,
}

impl Opener {
    /// An opener tracking at most `capacity` senders.
    pub fn new(key: Key, capacity: usize) -> Self {
        Self {
            key,
            peers: HashMap::new(),
            capacity: capacity.max(1),
            tick: 0,
        }
    }

    /// Senders tracked now.
    pub fn senders(&self) -> usize {
        self.peers.len()
    }

    /// Authenticates `datagram` received at time `now` and returns the chitchat payload in
    /// it (decrypted in place), or why it is refused.
    pub fn open<'a>(
        &mut self,
        datagram: &'a mut [u8],
        now: SystemTime,
    ) -> Result<&'a [u8], Reject> {
        if datagram.len() < OVERHEAD || datagram[0] != VERSION {
            return Err(Reject::Garbage);
        }
        let field =
            |at: usize| u64::from_be_bytes(datagram[at..at + 8].try_into().expect("8 bytes"));
        let (sender, counter, sent_ms) = (field(1), field(9), field(17));

        let mut derived = None;
        let key: &LessSafeKey = match self.peers.get(&sender) {
            Some(peer) => &peer.key,
            None => derived.insert(self.key.for_sender(sender)),
        };
        let (header, body) = datagram.split_at_mut(HEADER_LEN);
        let payload = key
            .open_in_place(nonce(counter), Aad::from(&*header), body)
            .map_err(|_| Reject::Forged)?;

        let skew = unix_ms(now).abs_diff(sent_ms);
        if u128::from(skew) > MAX_SKEW.as_millis() {
            return Err(Reject::Stale);
        }

        self.tick += 1;
        match self.peers.get_mut(&sender) {
            Some(peer) => {
                peer.check(counter)?;
                peer.mark(counter);
                peer.last = self.tick;
            }
            None => {
                if self.peers.len() >= self.capacity {
                    self.evict_least_recent();
                }
                let key = derived.expect("derived for an unknown sender");
                self.peers.insert(
                    sender,
                    Peer {
                        key,
                        highest: counter,
                        seen: 1,
                        last: self.tick,
                    },
                );
            }
        }
        Ok(payload)
    }

    fn evict_least_recent(&mut self) {
        if let Some(&oldest) = self
            .peers
            .iter()
            .min_by_key(|(_, p)| p.last)
            .map(|(id, _)| id)
        {
            self.peers.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key::derive("a long random cookie", "blue")
    }

    fn now() -> SystemTime {
        SystemTime::now()
    }

    fn sealed(sealer: &mut Sealer, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        sealer.seal(payload, now(), &mut out);
        out
    }

    fn open(opener: &mut Opener, datagram: &[u8]) -> Result<Vec<u8>, Reject> {
        let mut buf = datagram.to_vec();
        opener.open(&mut buf, now()).map(<[u8]>::to_vec)
    }

    #[test]
    fn a_sealed_datagram_opens_to_its_payload() {
        let mut sealer = Sealer::new(&key());
        let mut opener = Opener::new(key(), MAX_SENDERS);
        let datagram = sealed(&mut sealer, b"syn from a");
        assert_eq!(datagram.len(), b"syn from a".len() + OVERHEAD);
        // The payload does not travel in clear.
        assert!(!datagram.windows(10).any(|w| w == b"syn from a"));
        assert_eq!(open(&mut opener, &datagram).unwrap(), b"syn from a");
        // An empty payload seals too.
        assert_eq!(open(&mut opener, &sealed(&mut sealer, b"")).unwrap(), b"");
    }

    #[test]
    fn a_flipped_bit_anywhere_is_refused_as_forged() {
        let mut sealer = Sealer::new(&key());
        let datagram = sealed(&mut sealer, b"ack: b is up");
        // Byte 0 is the version: flipping it makes the datagram garbage, not forged.
        for at in 1..datagram.len() {
            let mut flipped = datagram.clone();
            flipped[at] ^= 0x01;
            let mut opener = Opener::new(key(), MAX_SENDERS);
            assert_eq!(
                open(&mut opener, &flipped),
                Err(Reject::Forged),
                "byte {at}"
            );
            assert_eq!(opener.senders(), 0);
        }
    }

    #[test]
    fn a_datagram_under_another_cookie_or_cluster_is_refused_as_forged() {
        let mut opener = Opener::new(key(), MAX_SENDERS);
        for other in [
            Key::derive("another cookie", "blue"),
            Key::derive("a long random cookie", "green"),
        ] {
            let datagram = sealed(&mut Sealer::new(&other), b"phantom joins");
            assert_eq!(open(&mut opener, &datagram), Err(Reject::Forged));
        }
        assert_eq!(opener.senders(), 0);
    }

    #[test]
    fn the_same_datagram_twice_is_refused_as_replayed() {
        let mut sealer = Sealer::new(&key());
        let mut opener = Opener::new(key(), MAX_SENDERS);
        let datagram = sealed(&mut sealer, b"b is leaving");
        assert!(open(&mut opener, &datagram).is_ok());
        assert_eq!(open(&mut opener, &datagram), Err(Reject::Replayed));
        // Newer datagrams still go through.
        assert!(open(&mut opener, &sealed(&mut sealer, b"next")).is_ok());
        assert_eq!(open(&mut opener, &datagram), Err(Reject::Replayed));
    }

    #[test]
    fn datagrams_reordered_within_the_window_are_accepted_once() {
        let mut sealer = Sealer::new(&key());
        let mut opener = Opener::new(key(), MAX_SENDERS);
        let datagrams: Vec<_> = (0..WINDOW)
            .map(|i| sealed(&mut sealer, &[i as u8]))
            .collect();
        // The newest arrives first, then the rest backwards: all within the window.
        for d in datagrams.iter().rev() {
            assert!(open(&mut opener, d).is_ok());
        }
        for d in &datagrams {
            assert_eq!(open(&mut opener, d), Err(Reject::Replayed));
        }
    }

    #[test]
    fn a_counter_far_behind_the_highest_is_refused() {
        let mut sealer = Sealer::new(&key());
        let mut opener = Opener::new(key(), MAX_SENDERS);
        let old = sealed(&mut sealer, b"old");
        let mut newest = Vec::new();
        for _ in 0..WINDOW {
            newest = sealed(&mut sealer, b"newer");
        }
        assert!(open(&mut opener, &newest).is_ok());
        // `old` was never accepted, but it is WINDOW behind: it can't be told from a replay.
        assert_eq!(open(&mut opener, &old), Err(Reject::Replayed));
    }

    #[test]
    fn a_timestamp_outside_the_skew_is_refused_as_stale() {
        let mut sealer = Sealer::new(&key());
        let mut opener = Opener::new(key(), MAX_SENDERS);
        let beyond = MAX_SKEW + Duration::from_secs(1);
        let within = MAX_SKEW - Duration::from_secs(1);
        for (sent, accepted) in [
            (now() - beyond, false),
            (now() + beyond, false),
            (now() - within, true),
            (now() + within, true),
        ] {
            let mut datagram = Vec::new();
            sealer.seal(b"heartbeat", sent, &mut datagram);
            let outcome = open(&mut opener, &datagram);
            if accepted {
                assert!(outcome.is_ok());
            } else {
                assert_eq!(outcome, Err(Reject::Stale));
            }
        }
    }

    #[test]
    fn short_and_garbage_datagrams_are_refused_as_garbage() {
        let mut opener = Opener::new(key(), MAX_SENDERS);
        let mut sealer = Sealer::new(&key());
        let mut wrong_version = sealed(&mut sealer, b"x");
        wrong_version[0] = 2;
        for datagram in [&b""[..], b"junk", &[VERSION; OVERHEAD - 1], &wrong_version] {
            assert_eq!(open(&mut opener, datagram), Err(Reject::Garbage));
        }
        // Long enough and the right version, but made up: forged.
        assert_eq!(open(&mut opener, &[VERSION; 200]), Err(Reject::Forged));
        assert_eq!(opener.senders(), 0);
    }

    #[test]
    fn the_sender_table_is_bounded_and_drops_the_least_recent() {
        let mut opener = Opener::new(key(), 4);
        let mut first = Sealer::new(&key());
        assert!(open(&mut opener, &sealed(&mut first, b"a")).is_ok());
        for _ in 0..20 {
            assert!(open(&mut opener, &sealed(&mut Sealer::new(&key()), b"b")).is_ok());
            // The first sender keeps talking, so it is never the least recent.
            assert!(open(&mut opener, &sealed(&mut first, b"a")).is_ok());
            assert!(opener.senders() <= 4);
        }
        assert!(opener.peers.contains_key(&first.sender));
    }

    #[test]
    fn senders_with_distinct_ids_seal_under_distinct_keys() {
        // Same counter, same payload, different sender: different ciphertexts.
        let (mut a, mut b) = (
            Sealer::with_sender(&key(), 1),
            Sealer::with_sender(&key(), 2),
        );
        let (da, db) = (sealed(&mut a, b"same"), sealed(&mut b, b"same"));
        assert_ne!(da[HEADER_LEN..], db[HEADER_LEN..]);
    }
}
