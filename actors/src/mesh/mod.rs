//! The runtime: membership, supervision, routing and placement.
//!
//! # Layout
//! - [`error`]: [`MeshError`] and its [`Code`], the one error type that crosses the mesh.
//! - [`op`]: typed operations ([`Op<Req, Rep>`], [`ops!`](crate::ops)) and [`Call`].
//! - [`service`]: the [`Service`] trait every service group implements.
//! - [`wire`]: the cluster wire format (envelope, reply, pg group names); a leaf module.
//! - [`membership`]: chitchat gossip bridged to a full mesh of ractor_cluster sessions.
//! - [`transport`]: the cluster TCP connections under those sessions (buffered reads).
//! - [`tls`]: mutual TLS on those connections (the cluster CA, node names in certificates).
//! - [`groups`], [`supervisor`], [`worker`], [`pool`], [`admission`]: per node and per
//!   service, a supervisor with a worker pool (restarts with backoff and an intensity limit)
//!   and admission control.
//!
//! Imports among the call path have no cycle: `router` -> `endpoint` -> `pool` -> `worker`,
//! each of them -> `wire`, `lane`, `admission` (leaves).
//! - [`endpoint`]: the one remotable actor per service per node (pg group `svc.<name>`).
//! - [`router`]: local-first selection, deadlines, retries of idempotent ops, `tell`.
//! - [`lane`]: the rule that keeps a pool from waiting on itself (re-entrant calls).
//! - [`trace`]: the W3C trace context of the request being served, carried in every call.
//! - [`heartbeat`]: the `ping` service and the RTT heartbeat, both the runtime's own.
//! - [`partition`]: the split-brain resolver (keep-majority / static-quorum) and the node
//!   lease that fences a losing side.
//! - [`placement`]: rendezvous hashing and the generic entity host (activate on demand,
//!   passivate when idle, hand off on membership change).
//! - [`backoff`]: exponential backoff with full jitter and restart intensity.
//! - `harness` (tests only): one node in-process on these pieces, without membership or
//!   sockets, for the services' unit tests.

pub mod admission;
pub mod backoff;
pub mod endpoint;
pub mod error;
pub mod groups;
#[cfg(test)]
pub(crate) mod harness;
pub mod heartbeat;
pub mod lane;
pub mod membership;
pub mod op;
pub mod partition;
pub mod placement;
pub mod pool;
pub mod router;
pub mod service;
pub mod supervisor;
pub mod tls;
pub mod trace;
pub mod transport;
pub mod wire;
pub mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex, OnceLock};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorRef};
use tokio::sync::watch;

pub use error::{Code, MeshError};
pub use membership::{ClusterView, MemberState, MemberView};
pub use op::{Call, Op, OpInfo, Target};
pub use pool::Pool;
pub use router::Router;
pub use service::{BoxFuture, Request, Service};

/// Everything the runtime needs to start one node.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Membership and transport.
    pub membership: membership::Config,
    /// Workers per service on this node, unless the service or `pool_sizes` says otherwise.
    pub workers: usize,
    /// Workers of named services on this node (`[services.<name>] workers`); these win over
    /// [`Service::workers`] and the default.
    pub pool_sizes: HashMap<String, usize>,
    /// In-flight limit per service on this node.
    pub queue_capacity: usize,
    /// Default deadline of a call.
    pub call_timeout: Duration,
    /// Worker restart policy.
    pub policy: backoff::Policy,
    /// Node leases (the store), which fence the losing side of a split; `None` lets
    /// ownership follow the split verdict alone.
    pub leases: Option<Arc<dyn partition::Leases>>,
}

/// This node's pool of each service, by service name. Looked up on every call; the names
/// are the runtime's own, so the map hashes with foldhash ([`crate::metrics::LabelMap`]).
pub type Pools = crate::metrics::LabelMap<&'static str, Arc<Pool>>;

/// Lists the ids of the entities of one kind this node hosts (see
/// [`NodeInfo::list_hosted_with`]).
pub type Lister = Arc<dyn Fn() -> BoxFuture<'static, Vec<String>> + Send + Sync>;

/// Facts about this node that services (the system service) read at run time.
pub struct NodeInfo {
    /// Node name.
    pub node: Arc<str>,
    /// Incarnation.
    pub incarnation: u64,
    /// When the node started.
    pub started: Instant,
    /// Open WebSocket connections on this node (kept by the connection hub).
    pub ws_connections: std::sync::atomic::AtomicUsize,
    hosted: std::sync::Mutex<Vec<(&'static str, Lister)>>,
    pools: OnceLock<Arc<Pools>>,
    router: OnceLock<Router>,
    dependencies: OnceLock<crate::system::dependencies::Dependencies>,
}

impl NodeInfo {
    /// Info for a node starting now.
    pub fn new(node: Arc<str>, incarnation: u64) -> Arc<Self> {
        Arc::new(Self {
            node,
            incarnation,
            started: Instant::now(),
            ws_connections: Default::default(),
            hosted: Default::default(),
            pools: OnceLock::new(),
            router: OnceLock::new(),
            dependencies: OnceLock::new(),
        })
    }

    /// Sets the node's dependency checks (once; a second call is ignored).
    pub fn set_dependencies(&self, deps: crate::system::dependencies::Dependencies) {
        let _ = self.dependencies.set(deps);
    }

    /// The node's dependency checks (none until [`NodeInfo::set_dependencies`]).
    pub fn dependencies(&self) -> Option<&crate::system::dependencies::Dependencies> {
        self.dependencies.get()
    }

    /// Registers what lists the entities of `kind` this node hosts (sessions, tasks, ...),
    /// for the placement view: each hosting service calls it once when it starts.
    pub fn list_hosted_with(&self, kind: &'static str, lister: Lister) {
        self.hosted
            .lock()
            .expect("hosted lock")
            .push((kind, lister));
    }

    /// The ids of the entities this node hosts now, by kind.
    pub async fn hosted(&self) -> Vec<(&'static str, Vec<String>)> {
        let listers = self.hosted.lock().expect("hosted lock").clone();
        let mut out = Vec::with_capacity(listers.len());
        for (kind, list) in listers {
            out.push((kind, list().await));
        }
        out
    }

    /// The router, for services that call other services (set once the mesh started).
    pub fn router(&self) -> Result<&Router, MeshError> {
        self.router
            .get()
            .ok_or_else(|| MeshError::unavailable("node is still starting"))
    }

    /// This node's pools (empty until the runtime has built them).
    pub fn pools(&self) -> Vec<Arc<Pool>> {
        let mut v: Vec<Arc<Pool>> = self
            .pools
            .get()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by_key(|p| p.name());
        v
    }

    /// One pool by service name.
    pub fn pool(&self, service: &str) -> Option<Arc<Pool>> {
        self.pools.get().and_then(|p| p.get(service).cloned())
    }
}

/// A running node's runtime. Cheap to clone.
#[derive(Clone)]
pub struct Mesh {
    info: Arc<NodeInfo>,
    router: Router,
    view_rx: watch::Receiver<Arc<ClusterView>>,
    membership: ActorRef<membership::MembershipMsg>,
    groups: ActorRef<groups::GroupsMsg>,
}

impl Mesh {
    /// Starts the service groups, then joins the cluster.
    pub async fn start(
        settings: Settings,
        info: Arc<NodeInfo>,
        services: Vec<Arc<dyn Service>>,
    ) -> anyhow::Result<Mesh> {
        crate::metrics::describe();
        let node = settings.membership.node.clone();
        let (pools, groups) = start_local(&info, services, &settings)
            .await
            .map_err(startup_error)?;

        let (view_tx, view_rx) = watch::channel(Arc::new(ClusterView::default()));
        let (members_tx, members_rx) = watch::channel(Arc::new(vec![node.to_string()]));
        let (placement_tx, placement_rx) = watch::channel(Arc::new(vec![node.to_string()]));
        let (allowed_tx, allowed_rx) = watch::channel(Ok(()));
        let ownership = partition::keeper::spawn(
            node.clone(),
            settings.leases.clone(),
            settings.membership.partition.lease_ttl,
            allowed_rx,
        );
        let rtt: membership::RttTable = Arc::new(StdMutex::new(HashMap::new()));
        let mut mconf = settings.membership.clone();
        mconf.services = pools.keys().copied().collect();
        mconf.services.sort();
        let (membership, _) = Actor::spawn(
            None,
            membership::Membership,
            membership::Args {
                config: mconf,
                view_tx,
                members_tx,
                rtt: rtt.clone(),
                placement_tx,
                allowed_tx,
                leases: settings.leases.clone(),
            },
        )
        .await
        .map_err(startup_error)?;

        let router = Router::new(node, pools, settings.call_timeout, members_rx)
            .with_partition(placement_rx, ownership);
        let _ = info.router.set(router.clone());
        let mesh = Mesh {
            info,
            router,
            view_rx,
            membership,
            groups,
        };
        tokio::spawn(heartbeat::run(
            mesh.info.node.clone(),
            mesh.router.clone(),
            rtt,
        ));
        tokio::spawn(sample_pools(mesh.clone()));
        if crate::system::history::recording() {
            tokio::spawn(crate::system::history::run(mesh.clone()));
        }
        Ok(mesh)
    }

    /// The router.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Node facts.
    pub fn info(&self) -> &Arc<NodeInfo> {
        &self.info
    }

    /// The latest view of the cluster.
    pub fn view(&self) -> Arc<ClusterView> {
        self.view_rx.borrow().clone()
    }

    /// Each service group (`svc.<name>`) with the routable members that host it.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let up = self.router.members();
        self.info
            .pools()
            .iter()
            .map(|p| {
                let nodes = up
                    .iter()
                    .filter(|n| !ractor::pg::get_members(&wire::node_group(p.name(), n)).is_empty())
                    .cloned()
                    .collect();
                (wire::group(p.name()), nodes)
            })
            .collect()
    }

    /// Announces a graceful leave through gossip and waits `linger` so peers stop routing
    /// here before the node goes away.
    pub async fn leave(&self, linger: Duration) {
        let _ = ractor::call!(self.membership, membership::MembershipMsg::Leave);
        tokio::time::sleep(linger).await;
    }

    /// Stops the node's actors and gossip.
    pub async fn stop(&self) {
        self.groups.stop(Some("node stopping".into()));
        self.membership.stop(Some("node stopping".into()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Workers of `service` on this node: its `[services.<name>]` setting, else what the service
/// asks for given the default; at least one.
pub fn pool_size(settings: &Settings, service: &dyn Service) -> usize {
    settings
        .pool_sizes
        .get(service.name())
        .copied()
        .unwrap_or_else(|| service.workers(settings.workers))
        .max(1)
}

/// The local half of a node, shared by [`Mesh::start`] and the test harness: one pool per
/// service (`ping` added, the runtime's own), sized by [`pool_size`], set on `info`, and their
/// supervision tree (`Groups`: per service a supervisor, its workers and the endpoint).
pub(crate) async fn start_local(
    info: &Arc<NodeInfo>,
    mut services: Vec<Arc<dyn Service>>,
    settings: &Settings,
) -> Result<(Arc<Pools>, ActorRef<groups::GroupsMsg>), ractor::SpawnErr> {
    if !services.iter().any(|s| s.name() == heartbeat::NAME) {
        services.push(Arc::new(heartbeat::Ping(info.clone())));
    }
    let pools: Pools = services
        .into_iter()
        .map(|s| {
            let workers = pool_size(settings, s.as_ref());
            (s.name(), Pool::new(s, workers, settings.queue_capacity))
        })
        .collect();
    let pools = Arc::new(pools);
    let _ = info.pools.set(pools.clone());
    let (groups, _) = Actor::spawn(
        None,
        groups::Groups,
        groups::Args {
            pools: pools.values().cloned().collect(),
            policy: settings.policy.clone(),
            node: info.node.clone(),
            default_timeout: settings.call_timeout,
        },
    )
    .await?;
    Ok((pools, groups))
}

/// Samples queue depth and live workers into gauges every second.
async fn sample_pools(mesh: Mesh) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        for pool in mesh.info.pools() {
            metrics::gauge!(crate::metrics::QUEUE_DEPTH, "service" => pool.name())
                .set(pool.in_flight() as f64);
            metrics::gauge!(crate::metrics::WORKERS_ALIVE, "service" => pool.name())
                .set(pool.alive() as f64);
        }
    }
}

/// A runtime actor that failed to start, as its own error: ractor words every failed
/// `pre_start` as "Actor panicked during startup", also when it returned an error.
fn startup_error(e: ractor::SpawnErr) -> anyhow::Error {
    match e {
        ractor::SpawnErr::StartupFailed(inner) => anyhow::anyhow!("{inner}"),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests;
