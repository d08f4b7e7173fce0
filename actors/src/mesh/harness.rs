//! One node in-process on the real runtime, for the services' unit tests.
//!
//! A [`Harness`] starts what [`super::Mesh::start`] starts, minus the cluster: the service
//! groups ([`super::groups::Groups`]: per service a supervisor with its worker pool, and an
//! endpoint; `ping` included), a [`Router`] whose member list is this node alone, and a
//! [`NodeInfo`] whose router and pools are set, so a service that calls other services
//! through `info.router()` works as it does on a node. Every call goes through the real
//! pools, admission limits, deadlines, lanes and entity routing (this node is every
//! entity's home).
//!
//! What it is not: there is no membership (no chitchat gossip, no ractor_cluster sessions),
//! no socket and no second member, so remote hops, retries on another member, hand-off and
//! notes to other nodes are not exercised (the multi-node tests under `tests/` do that);
//! nor is there ingress: a test names the caller of a call itself.
//!
//! ractor's pg registry is process-global and tests run in parallel in one process, so each
//! harness has a node name of its own (`harness-<uuid>`): its endpoints join `svc.<service>`,
//! where routers only take remote members, and `svc.<service>@<its name>`, which no other
//! harness names. [`Harness::stop`] waits until they have left, and until every worker has
//! stopped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::ActorRef;
use tokio::sync::watch;

use super::backoff::{Backoff, Policy};
use super::groups::GroupsMsg;
use super::{
    heartbeat, membership, start_local, wire, NodeInfo, Pool, Pools, Router, Service, Settings,
};

/// Workers per service unless the service or [`Builder::workers`] says otherwise.
const WORKERS: usize = 2;
/// In-flight limit per service: well above what a test sends at once.
const QUEUE_CAPACITY: usize = 1024;
/// Default deadline of a call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long starting and stopping may take.
const SETTLE: Duration = Duration::from_secs(5);
const UNUSED: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// A harness being set up: its node exists (services take it when they are made), its
/// groups are not started yet.
pub(crate) struct Builder {
    info: Arc<NodeInfo>,
    pool_sizes: HashMap<String, usize>,
}

impl Builder {
    /// The node the services are made for.
    pub(crate) fn info(&self) -> Arc<NodeInfo> {
        self.info.clone()
    }

    /// Gives `service` `n` workers, whatever it asks for.
    pub(crate) fn workers(mut self, service: &str, n: usize) -> Self {
        self.pool_sizes.insert(service.to_string(), n);
        self
    }

    /// Starts the groups of `services` (and `ping`) and the router; answers once every
    /// worker runs.
    pub(crate) async fn start(self, services: Vec<Arc<dyn Service>>) -> Harness {
        let info = self.info;
        let settings = Settings {
            // Read by nothing here: the harness starts no membership.
            membership: membership::Config {
                node: info.node.clone(),
                incarnation: info.incarnation,
                cluster_id: "harness".into(),
                cookie: String::new(),
                cluster_addr: UNUSED,
                advertise_addr: UNUSED.to_string(),
                http_addr: UNUSED,
                grpc_addr: UNUSED,
                seeds: Vec::new(),
                gossip_interval: Duration::from_secs(1),
                phi_threshold: 8.0,
                dial_backoff_max: Duration::from_secs(1),
                services: Vec::new(),
                partition: Default::default(),
                tls: None,
            },
            workers: WORKERS,
            pool_sizes: self.pool_sizes,
            queue_capacity: QUEUE_CAPACITY,
            call_timeout: CALL_TIMEOUT,
            policy: Policy {
                backoff: Backoff::new(Duration::from_millis(5), Duration::from_millis(100)),
                max_restarts: 10,
                window: Duration::from_secs(10),
            },
            leases: None,
        };
        let (pools, groups) = start_local(&info, services, &settings)
            .await
            .expect("harness groups start");
        let (members_tx, members_rx) = watch::channel(Arc::new(vec![info.node.to_string()]));
        let router = Router::new(info.node.clone(), pools.clone(), CALL_TIMEOUT, members_rx);
        assert!(
            info.router.set(router.clone()).is_ok(),
            "a NodeInfo serves one harness"
        );
        let harness = Harness {
            info,
            router,
            pools,
            groups,
            _members_tx: members_tx,
        };
        harness.settle("start", |p| p.alive() == p.size()).await;
        harness
    }
}

/// One node running services on the real runtime, without a cluster (see the module doc).
pub(crate) struct Harness {
    info: Arc<NodeInfo>,
    router: Router,
    pools: Arc<Pools>,
    groups: ActorRef<GroupsMsg>,
    /// Held so the member list stays open (watchers of it end when it goes).
    _members_tx: watch::Sender<Arc<Vec<String>>>,
}

impl Harness {
    /// A harness to set up, on a node with a name of its own.
    pub(crate) fn builder() -> Builder {
        let name = format!("harness-{}", uuid::Uuid::new_v4().simple());
        Builder {
            info: NodeInfo::new(name.into(), 1),
            pool_sizes: HashMap::new(),
        }
    }

    /// The node's router: what ingress and the services call through.
    pub(crate) fn router(&self) -> &Router {
        &self.router
    }

    /// The node's facts (its router and pools set).
    pub(crate) fn info(&self) -> &Arc<NodeInfo> {
        &self.info
    }

    /// Stops the groups; answers once every worker has stopped and every endpoint has left
    /// its pg groups.
    pub(crate) async fn stop(self) {
        let _ = self
            .groups
            .stop_and_wait(Some("harness stopping".into()), Some(SETTLE))
            .await;
        let node = self.info.node.clone();
        self.settle("stop", |p| {
            p.alive() == 0 && ractor::pg::get_members(&wire::node_group(p.name(), &node)).is_empty()
        })
        .await;
    }

    /// Waits until `done` holds for every pool, failing the test after [`SETTLE`].
    async fn settle(&self, what: &str, done: impl Fn(&Pool) -> bool) {
        let deadline = Instant::now() + SETTLE;
        while !self.pools.values().all(|p| done(p)) {
            assert!(
                Instant::now() < deadline,
                "harness {} did not {what} within {SETTLE:?}",
                self.info.node
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

impl Drop for Harness {
    /// A test that failed before [`Harness::stop`] still stops its actors (without waiting).
    fn drop(&mut self) {
        self.groups.stop(Some("harness dropped".into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::{heartbeat::PING, Code, Target};

    #[tokio::test]
    async fn a_harness_serves_on_its_own_node_and_leaves_nothing_behind() {
        let harness = Harness::builder()
            .workers(heartbeat::NAME, 3)
            .start(vec![])
            .await;
        let node = harness.info().node.to_string();
        assert!(node.starts_with("harness-"), "{node}");
        assert_eq!(harness.info().pool(heartbeat::NAME).unwrap().size(), 3);
        assert_eq!(*harness.router().members(), vec![node.clone()]);
        // The services' view of the node: its router is set and routes to itself.
        let pong = harness
            .info()
            .router()
            .unwrap()
            .ask(&PING, ())
            .await
            .unwrap();
        assert_eq!(pong.node, node);
        let entity = PING.call(()).to(Target::Entity("any-id".into()));
        assert_eq!(harness.router().call(entity).await.unwrap().node, node);
        let elsewhere = PING.call(()).to(Target::Node("harness-other".into()));
        assert_eq!(
            harness.router().call(elsewhere).await.unwrap_err().code,
            Code::Unavailable
        );
        let group = wire::node_group(heartbeat::NAME, &node);
        assert_eq!(ractor::pg::get_members(&group).len(), 1);
        harness.stop().await;
        assert!(ractor::pg::get_members(&group).is_empty());
    }

    #[tokio::test]
    async fn harnesses_running_at_once_each_answer_for_themselves() {
        let (a, b) = tokio::join!(
            Harness::builder().start(vec![]),
            Harness::builder().start(vec![])
        );
        assert_ne!(a.info().node, b.info().node);
        for h in [&a, &b] {
            assert_eq!(*h.router().members(), vec![h.info().node.to_string()]);
            let pong = h.router().ask(&PING, ()).await.unwrap();
            assert_eq!(pong.node, h.info().node.to_string());
        }
        a.stop().await;
        // b is untouched by a's stop.
        let pong = b.router().ask(&PING, ()).await.unwrap();
        assert_eq!(pong.node, b.info().node.to_string());
        b.stop().await;
    }
}
