//! Names of the metrics the runtime records (the node serves them on `/metrics`).

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
/// Open WebSocket connections on this node.
pub const WS_CONNECTIONS: &str = "troupe_ws_connections";

/// Describes every metric once, so `/metrics` carries HELP lines.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(MESH_CALLS, "mesh calls by service, op, hop and result code");
    describe_histogram!(MESH_CALL_SECONDS, Unit::Seconds, "mesh call latency");
    describe_counter!(ACTOR_RESTARTS, "worker actor restarts by service");
    describe_counter!(REJECTED, "requests refused by admission control");
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

/// Registered metric handles by label values, so hot paths skip building a key and looking
/// it up in the registry on every request.
pub struct Handles<K> {
    map: std::sync::RwLock<std::collections::HashMap<K, (metrics::Counter, metrics::Histogram)>>,
}

impl<K: std::hash::Hash + Eq + Clone> Default for Handles<K> {
    fn default() -> Self {
        Self {
            map: Default::default(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone> Handles<K> {
    /// The counter and histogram for `key`, registered with `make` on first use.
    pub fn get(
        &self,
        key: &K,
        make: impl FnOnce() -> (metrics::Counter, metrics::Histogram),
    ) -> (metrics::Counter, metrics::Histogram) {
        if let Some(h) = self.map.read().expect("metric handles lock").get(key) {
            return h.clone();
        }
        let h = make();
        self.map
            .write()
            .expect("metric handles lock")
            .insert(key.clone(), h.clone());
        h
    }
}
