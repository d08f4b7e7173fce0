//! `system.history`: the node's last five minutes, one sample a second, kept in a ring of
//! fixed size so that a dashboard opened late still draws them.
//!
//! The sampler ([`run`]) reads, once a second, only what the request path counts anyway or
//! what costs nothing to read: the request counters by protocol and the latency histogram
//! of [`crate::metrics`], the pools' restart counts, the open WebSocket connections, the
//! outbox depth ([`outbox_depth`]), the mesh calls served for each peer and the heartbeat
//! RTT to it. It takes the difference to the previous reading and pushes one
//! [`HistorySample`]; nothing is added to a request but the latency bucket's increment.
//!
//! Size: [`CAPACITY`] samples of at most [`MAX_PEERS`] peers each, all preallocated, plus
//! the peer names ([`History::bytes`]): 94,016 bytes held when full, well under the 2 MiB
//! bound.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use troupe_proto::mesh::{History as HistoryReply, HistoryRequest, HistorySample};

use crate::mesh::{MemberState, Mesh};
use crate::metrics::{self, Latency, LATENCY_BUCKETS};

/// Samples kept: five minutes, one a second.
pub const CAPACITY: usize = 300;

/// Peers whose calls are sampled; calls from further peers are not drawn.
pub const MAX_PEERS: usize = 32;

/// Time between samples.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The node's history (one per process, like the request counters it reads).
pub static HISTORY: History = History::new();

static RECORDING: AtomicBool = AtomicBool::new(true);

/// Turns the history off for this process (`[telemetry] history = false`): the mesh starts
/// no sampler, and ingress skips the counts only the history reads (the latency histogram,
/// the per-protocol and per-peer counters). Call it before the mesh starts. The dashboard's
/// charts then stay empty; `/metrics` is unchanged.
pub fn turn_off() {
    RECORDING.store(false, Ordering::Relaxed);
}

/// Whether the history is kept: what the request path checks before counting for it.
#[inline]
pub fn recording() -> bool {
    RECORDING.load(Ordering::Relaxed)
}

/// The outbox depth the history draws. One place to point at whatever the event bus
/// exposes.
pub fn outbox_depth() -> u64 {
    crate::events::metrics::depth()
}

/// One second, as the ring keeps it (fixed size, no allocation per sample).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// End of the second, ms since the Unix epoch.
    pub at_unix_ms: u64,
    /// REST, SOAP, gRPC and WebSocket requests answered in it.
    pub requests: [u32; 4],
    /// p50 and p99 latency of the HTTP and gRPC requests answered in it, µs.
    pub p50_us: u32,
    /// See `p50_us`.
    pub p99_us: u32,
    /// Worker restarts in it.
    pub restarts: u32,
    /// Open WebSocket connections at its end.
    pub ws_open: u32,
    /// Outbox entries waiting at its end.
    pub outbox: u32,
    /// Mesh calls served for each peer (indexed like [`History`]'s peer names) in it.
    pub peer_calls: [u32; MAX_PEERS],
    /// Heartbeat RTT to each peer at its end, µs (0 = unknown).
    pub peer_rtt_us: [u32; MAX_PEERS],
}

/// The ring and the names of the peers its samples index.
struct Ring {
    samples: VecDeque<Sample>,
    peers: Vec<String>,
}

/// A node's short history.
pub struct History {
    ring: Mutex<Ring>,
}

impl History {
    /// An empty history (its ring is allocated at the first sample, at full size).
    pub const fn new() -> Self {
        Self {
            ring: Mutex::new(Ring {
                samples: VecDeque::new(),
                peers: Vec::new(),
            }),
        }
    }

    /// Adds a sample, dropping the oldest once [`CAPACITY`] are kept.
    pub fn push(&self, s: Sample) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.samples.capacity() < CAPACITY {
            ring.samples.reserve_exact(CAPACITY);
        }
        if ring.samples.len() == CAPACITY {
            ring.samples.pop_front();
        }
        ring.samples.push_back(s);
    }

    /// The index of `peer` among the sampled peers, added if there is room.
    fn peer_index(&self, peer: &str) -> Option<usize> {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = ring.peers.iter().position(|p| p == peer) {
            return Some(i);
        }
        if ring.peers.len() == MAX_PEERS {
            return None;
        }
        ring.peers.push(peer.to_string());
        Some(ring.peers.len() - 1)
    }

    /// Bytes the history holds at most: the full ring and [`MAX_PEERS`] names of up to
    /// 64 bytes.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + CAPACITY * std::mem::size_of::<Sample>()
            + MAX_PEERS * (std::mem::size_of::<String>() + 64)
    }

    /// Bytes the history holds now: its ring's allocation and the peer names'.
    pub fn allocated(&self) -> usize {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::size_of::<Self>()
            + ring.samples.capacity() * std::mem::size_of::<Sample>()
            + ring.peers.capacity() * std::mem::size_of::<String>()
            + ring.peers.iter().map(|p| p.capacity()).sum::<usize>()
    }

    /// The samples taken after `since_unix_ms`, as the history op answers them.
    pub fn read(&self, node: &str, incarnation: u64, req: HistoryRequest) -> HistoryReply {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let n = ring.peers.len();
        HistoryReply {
            node: node.to_string(),
            incarnation,
            peers: ring.peers.clone(),
            samples: ring
                .samples
                .iter()
                .filter(|s| s.at_unix_ms > req.since_unix_ms)
                .map(|s| HistorySample {
                    at_unix_ms: s.at_unix_ms,
                    rest: s.requests[0],
                    soap: s.requests[1],
                    grpc: s.requests[2],
                    ws: s.requests[3],
                    p50_us: s.p50_us,
                    p99_us: s.p99_us,
                    restarts: s.restarts,
                    ws_open: s.ws_open,
                    outbox: s.outbox,
                    peer_calls: s.peer_calls[..n].to_vec(),
                    peer_rtt_us: s.peer_rtt_us[..n].to_vec(),
                })
                .collect(),
        }
    }
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

/// Counter readings one sample is the difference of.
#[derive(Clone)]
struct Reading {
    http: u64,
    soap: u64,
    grpc: u64,
    ws: u64,
    restarts: u64,
    latency: [u64; LATENCY_BUCKETS],
    peers: Vec<(String, u64)>,
}

impl Reading {
    fn now(mesh: &Mesh) -> Self {
        Self {
            http: metrics::HTTP_REQUESTS.get(),
            soap: metrics::SOAP_REQUESTS.get(),
            grpc: metrics::GRPC_REQUESTS.get(),
            ws: metrics::WS_FRAMES.get(),
            restarts: mesh.info().pools().iter().map(|p| p.restarts()).sum(),
            latency: metrics::REQUEST_LATENCY.snapshot(),
            peers: metrics::PEER_CALLS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// Samples the node every [`INTERVAL`] into [`HISTORY`] for as long as the node runs.
pub async fn run(mesh: Mesh) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut last = Reading::now(&mesh);
    loop {
        tick.tick().await;
        let now = Reading::now(&mesh);
        HISTORY.push(sample(&mesh, &last, &now));
        last = now;
    }
}

fn sample(mesh: &Mesh, last: &Reading, now: &Reading) -> Sample {
    let d = |a: u64, b: u64| a.saturating_sub(b).min(u32::MAX as u64) as u32;
    let soap = d(now.soap, last.soap);
    let mut latency = [0u64; LATENCY_BUCKETS];
    for (i, l) in latency.iter_mut().enumerate() {
        *l = now.latency[i].saturating_sub(last.latency[i]);
    }
    let mut s = Sample {
        at_unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64,
        requests: [
            d(now.http, last.http).saturating_sub(soap),
            soap,
            d(now.grpc, last.grpc),
            d(now.ws, last.ws),
        ],
        p50_us: quantile(&latency, 0.5),
        p99_us: quantile(&latency, 0.99),
        restarts: d(now.restarts, last.restarts),
        ws_open: mesh
            .info()
            .ws_connections
            .load(std::sync::atomic::Ordering::Relaxed) as u32,
        outbox: outbox_depth().min(u32::MAX as u64) as u32,
        ..Sample::default()
    };
    for (peer, calls) in &now.peers {
        let before = last
            .peers
            .iter()
            .find(|(p, _)| p == peer)
            .map_or(0, |(_, n)| *n);
        if let Some(i) = HISTORY.peer_index(peer) {
            s.peer_calls[i] = d(*calls, before);
        }
    }
    for m in mesh.view().members.iter() {
        if *m.name == *mesh.info().node || m.state == MemberState::Down {
            continue;
        }
        if let (Some(rtt), Some(i)) = (m.rtt_ms, HISTORY.peer_index(&m.name)) {
            s.peer_rtt_us[i] = (rtt * 1000.0).round() as u32;
        }
    }
    s
}

/// The `q` quantile of a histogram's counts, as the upper bound of its bucket (µs); 0 when
/// it is empty.
pub fn quantile(counts: &[u64; LATENCY_BUCKETS], q: f64) -> u32 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, &c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            let upper = if i + 1 < LATENCY_BUCKETS {
                Latency::lower_us(i + 1)
            } else {
                Latency::lower_us(i)
            };
            return upper.min(u32::MAX as u64) as u32;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_last_five_minutes_and_reads_after_a_time() {
        let h = History::new();
        for t in 1..=(CAPACITY as u64 + 20) {
            h.push(Sample {
                at_unix_ms: t * 1000,
                ..Sample::default()
            });
        }
        let all = h.read("n1", 7, HistoryRequest { since_unix_ms: 0 });
        assert_eq!(all.samples.len(), CAPACITY);
        assert_eq!(all.samples[0].at_unix_ms, 21_000);
        let later = h.read(
            "n1",
            7,
            HistoryRequest {
                since_unix_ms: 310_000,
            },
        );
        assert_eq!(later.samples.len(), 10);
        assert!(h.bytes() <= 2 << 20, "{} bytes", h.bytes());
    }

    #[test]
    fn a_full_history_stays_under_two_mebibytes() {
        let h = History::new();
        for p in 0..MAX_PEERS + 5 {
            h.peer_index(&format!("node-with-a-long-name-{p:040}"));
        }
        for t in 0..(2 * CAPACITY as u64) {
            h.push(Sample {
                at_unix_ms: t,
                peer_calls: [7; MAX_PEERS],
                ..Sample::default()
            });
        }
        let (held, bound) = (h.allocated(), h.bytes());
        println!(
            "history: {} samples of {} bytes, {held} bytes allocated, bound {bound}",
            CAPACITY,
            std::mem::size_of::<Sample>()
        );
        assert!(held <= bound, "{held} > {bound}");
        assert!(bound <= 2 << 20);
    }

    #[test]
    fn quantiles_come_from_the_buckets() {
        let mut counts = [0u64; LATENCY_BUCKETS];
        counts[Latency::bucket(100)] = 98;
        counts[Latency::bucket(5000)] = 2;
        let p50 = quantile(&counts, 0.5);
        let p99 = quantile(&counts, 0.99);
        assert!((100..=128).contains(&p50), "{p50}");
        assert!((5000..=6144).contains(&p99), "{p99}");
        assert_eq!(quantile(&[0; LATENCY_BUCKETS], 0.5), 0);
    }
}
