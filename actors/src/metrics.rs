//! Names of the metrics the runtime records (the node serves them on `/metrics`), and the
//! counters `/health` reads back.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Calls run on a service's re-entrant lane instead of a worker (see `mesh::lane`).
pub const LANE_CALLS: &str = "troupe_mesh_lane_calls_total";
/// Mesh calls by service, op, hop (`local`/`remote`) and result code.
pub const MESH_CALLS: &str = "troupe_mesh_calls_total";
/// Mesh call latency by service, op and hop.
pub const MESH_CALL_SECONDS: &str = "troupe_mesh_call_duration_seconds";
/// Worker restarts by service.
pub const ACTOR_RESTARTS: &str = "troupe_actor_restarts_total";
/// Requests refused by admission control, by service.
pub const REJECTED: &str = "troupe_admission_rejected_total";
/// In-flight requests per service on this node (sampled).
pub const QUEUE_DEPTH: &str = "troupe_queue_depth";
/// Live workers per service on this node (sampled).
pub const WORKERS_ALIVE: &str = "troupe_workers_alive";
/// Cluster members by state as this node sees them.
pub const CLUSTER_MEMBERS: &str = "troupe_cluster_members";
/// Mesh heartbeat round trip to each peer.
pub const HEARTBEAT_RTT_SECONDS: &str = "troupe_heartbeat_rtt_seconds";
/// Gossip datagrams that could not be sent, all peers, by `reason`
/// (`unreachable|too_large|relay`; `mesh::membership::gossip`).
pub const GOSSIP_SEND_FAILURES: &str = "troupe_gossip_send_failures_total";
/// Peers the last gossip send to failed.
pub const GOSSIP_UNREACHABLE: &str = "troupe_gossip_unreachable_peers";
/// Gossip datagrams refused before chitchat saw them, by `reason`
/// (`forged|replayed|stale|garbage`; `mesh::membership::seal`).
pub const GOSSIP_REJECTED: &str = "troupe_gossip_rejected_total";
/// 1 while this node owns entities and tasks, 0 while it is fenced (a lost split, no lease).
pub const NODE_OWNER: &str = "troupe_partition_owner";
/// Split decisions taken by this node, by verdict (`win`, `lose`).
pub const PARTITION_DECISIONS: &str = "troupe_partition_decisions_total";
/// Unreachable members this node downed after their lease was released or ran out.
pub const MEMBERS_DOWNED: &str = "troupe_partition_members_downed_total";
/// Cluster peers refused by mutual TLS, by reason (`mesh::tls::Reason`: `wrong_ca`,
/// `wrong_name`, `expired`, `handshake`, ...).
pub const CLUSTER_TLS_REFUSED: &str = "troupe_cluster_tls_refused_total";
/// Open WebSocket connections on this node.
pub const WS_CONNECTIONS: &str = "troupe_ws_connections";
/// Group-commit batches written, by writer (`batch` label: `bookings`, `idempotency`, ...).
pub const BATCHES: &str = "troupe_store_batches_total";
/// Items written in group-commit batches, by writer: over [`BATCHES`], the mean batch.
pub const BATCH_ITEMS: &str = "troupe_store_batch_items_total";

/// Describes every metric once, so `/metrics` carries HELP lines.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(MESH_CALLS, "mesh calls by service, op, hop and result code");
    describe_histogram!(MESH_CALL_SECONDS, Unit::Seconds, "mesh call latency");
    describe_counter!(ACTOR_RESTARTS, "worker actor restarts by service");
    describe_counter!(REJECTED, "requests refused by admission control");
    describe_counter!(BATCHES, "group-commit batches written, by writer");
    describe_counter!(
        BATCH_ITEMS,
        "items written in group-commit batches, by writer"
    );
    describe_counter!(
        LANE_CALLS,
        "calls into a service already waiting on them, run on its lane, by service"
    );
    describe_counter!(
        GOSSIP_SEND_FAILURES,
        "gossip datagrams that could not be sent, by reason"
    );
    describe_counter!(
        CLUSTER_TLS_REFUSED,
        "cluster peers refused by mutual TLS, by reason"
    );
    describe_gauge!(GOSSIP_UNREACHABLE, "peers the last gossip send to failed");
    describe_counter!(
        GOSSIP_REJECTED,
        "gossip datagrams refused (forged, replayed, stale or garbage), by reason"
    );
    describe_gauge!(
        NODE_OWNER,
        "1 while this node owns entities and tasks, 0 while fenced"
    );
    describe_counter!(PARTITION_DECISIONS, "split decisions by verdict");
    describe_counter!(
        MEMBERS_DOWNED,
        "unreachable members downed once their lease was released or ran out"
    );
    describe_gauge!(QUEUE_DEPTH, "in-flight requests per service on this node");
    describe_gauge!(WORKERS_ALIVE, "live worker actors per service on this node");
    describe_gauge!(
        CLUSTER_MEMBERS,
        "cluster members by state as this node sees them"
    );
    describe_histogram!(
        HEARTBEAT_RTT_SECONDS,
        Unit::Seconds,
        "mesh heartbeat round trip per peer"
    );
}

/// HTTP requests this node has answered, every route and status: `/health` and `/dashboard`
/// report it (a request rate is the difference of two readings).
pub static HTTP_REQUESTS: Striped = Striped::new();

/// SOAP requests this node has answered (also counted in [`HTTP_REQUESTS`]): the
/// dashboard's history ([`crate::system::history`]) tells REST from SOAP by it.
pub static SOAP_REQUESTS: Striped = Striped::new();

/// gRPC calls this node has answered, for the dashboard's history.
pub static GRPC_REQUESTS: Striped = Striped::new();

/// WebSocket frames this node has answered, for the dashboard's history.
pub static WS_FRAMES: Striped = Striped::new();

/// Latency of the HTTP (REST, SOAP) and gRPC requests this node answered, for the
/// dashboard's p50/p99 history.
pub static REQUEST_LATENCY: Latency = Latency::new();

/// Mesh calls this node served for each peer (by the peer's name, as the envelope's origin
/// gives it), for the dashboard's history. Counted once per call that crossed the network;
/// a short list, searched in order.
pub static PEER_CALLS: std::sync::Mutex<Vec<(String, u64)>> = std::sync::Mutex::new(Vec::new());

/// Counts one call served for `peer`.
pub fn count_peer_call(peer: &str) {
    let mut calls = PEER_CALLS.lock().unwrap_or_else(|e| e.into_inner());
    match calls.iter_mut().find(|(p, _)| p == peer) {
        Some((_, n)) => *n += 1,
        None => calls.push((peer.to_string(), 1)),
    }
}

/// Buckets of a [`Latency`]: four per power of two of microseconds, up to about 16 s.
pub const LATENCY_BUCKETS: usize = 96;

/// A latency histogram recorded on every request at the cost of one uncontended atomic add
/// (per-thread slots, like [`Striped`]): bucket `i` holds durations of at least
/// [`Latency::lower_us`]`(i)` microseconds.
pub struct Latency {
    slots: [LatencySlot; STRIPES],
}

/// One thread's buckets of a [`Latency`].
#[repr(align(128))]
struct LatencySlot([AtomicU64; LATENCY_BUCKETS]);

impl Latency {
    /// An empty histogram.
    pub const fn new() -> Self {
        Self {
            slots: [const { LatencySlot([const { AtomicU64::new(0) }; LATENCY_BUCKETS]) }; STRIPES],
        }
    }

    /// Records one duration.
    pub fn record(&self, d: std::time::Duration) {
        let stripe = STRIPE.with(|s| *s);
        self.slots[stripe].0[Self::bucket(d.as_micros() as u64)].fetch_add(1, Ordering::Relaxed);
    }

    /// The bucket of `us` microseconds.
    pub fn bucket(us: u64) -> usize {
        if us < 4 {
            return us as usize;
        }
        let octave = 63 - us.leading_zeros() as usize;
        let sub = ((us >> (octave - 2)) & 3) as usize;
        ((octave - 1) * 4 + sub).min(LATENCY_BUCKETS - 1)
    }

    /// The least duration (µs) bucket `i` holds.
    pub fn lower_us(i: usize) -> u64 {
        if i < 4 {
            return i as u64;
        }
        let (octave, sub) = (i / 4 + 1, (i % 4) as u64);
        (4 + sub) << (octave - 2)
    }

    /// The counts so far, every thread's summed.
    pub fn snapshot(&self) -> [u64; LATENCY_BUCKETS] {
        let mut out = [0u64; LATENCY_BUCKETS];
        for slot in &self.slots {
            for (o, b) in out.iter_mut().zip(slot.0.iter()) {
                *o += b.load(Ordering::Relaxed);
            }
        }
        out
    }
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

/// Number of slots of a [`Striped`] counter.
const STRIPES: usize = 16;

/// Hands each thread the slot it adds to in every [`Striped`] counter.
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
}

/// A counter that many threads add to without sharing a cache line on every add: each
/// thread adds to its own padded slot, and a reading sums the slots. For counts taken on
/// every request and read rarely.
pub struct Striped {
    slots: [Slot; STRIPES],
}

/// One cache-line-aligned slot of a [`Striped`] counter.
#[repr(align(128))]
struct Slot(AtomicU64);

impl Striped {
    /// A counter at zero.
    pub const fn new() -> Self {
        Self {
            slots: [const { Slot(AtomicU64::new(0)) }; STRIPES],
        }
    }

    /// Adds one.
    pub fn increment(&self) {
        let stripe = STRIPE.with(|s| *s);
        self.slots[stripe].0.fetch_add(1, Ordering::Relaxed);
    }

    /// The total so far.
    pub fn get(&self) -> u64 {
        self.slots.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

impl Default for Striped {
    fn default() -> Self {
        Self::new()
    }
}

/// A map keyed by the runtime's own labels (service, op and route names, status codes):
/// never by client input, so it hashes with foldhash instead of the DoS-resistant but
/// slower SipHash (which cost about 150 instructions per `&str` on every request).
pub type LabelMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A counter and a histogram per label set, registered once and then kept by each thread
/// that records them (in a `thread_local!`): the hot path builds no registry key and touches
/// no lock or reference count shared with the other worker threads.
pub type HandleMap<K> = LabelMap<K, (metrics::Counter, metrics::Histogram)>;

/// Counts one event under `key` and records its duration, registering the handles with
/// `make` the first time this thread sees `key`.
pub fn record<K: std::hash::Hash + Eq>(
    map: &mut HandleMap<K>,
    key: K,
    seconds: f64,
    make: impl FnOnce() -> (metrics::Counter, metrics::Histogram),
) {
    let (counter, histogram) = map.entry(key).or_insert_with(make);
    counter.increment(1);
    histogram.record(seconds);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_striped_counter_sums_the_adds_of_every_thread() {
        let counter = std::sync::Arc::new(Striped::new());
        let threads: Vec<_> = (0..20)
            .map(|_| {
                let c = counter.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| c.increment()))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(counter.get(), 20_000);
    }

    #[test]
    fn latency_buckets_are_ordered_and_hold_their_lower_bound() {
        for i in 0..LATENCY_BUCKETS {
            assert_eq!(Latency::bucket(Latency::lower_us(i)), i, "bucket {i}");
            if i > 0 {
                assert!(Latency::lower_us(i) > Latency::lower_us(i - 1));
                assert_eq!(Latency::bucket(Latency::lower_us(i) - 1), i - 1);
            }
        }
        let h = Latency::new();
        h.record(std::time::Duration::from_micros(300));
        let snap = h.snapshot();
        assert_eq!(snap.iter().sum::<u64>(), 1);
        let i = snap.iter().position(|&n| n == 1).unwrap();
        assert!(Latency::lower_us(i) <= 300 && 300 < Latency::lower_us(i + 1));
    }

    #[test]
    fn handles_are_registered_once_per_key_and_thread() {
        let mut map = HandleMap::default();
        let mut made = Vec::new();
        for key in ["a", "a", "b", "a"] {
            record(&mut map, key, 0.5, || {
                made.push(key);
                (
                    metrics::counter!("t_total"),
                    metrics::histogram!("t_seconds"),
                )
            });
        }
        assert_eq!(made, ["a", "b"]);
        assert_eq!(map.len(), 2);
    }
}
