//! Cluster membership: chitchat (gossip + phi-accrual failure detection) bridged to a full
//! mesh of ractor_cluster sessions.
//!
//! ractor_cluster has no membership, gossip, reconnect or failure detection, and its pg sync
//! reaches only directly connected peers. The [`Membership`] actor covers that:
//!
//! - chitchat's live set is the truth about who is in the cluster. Each node advertises its
//!   addresses, services and `state` (`up` / `leaving`) as chitchat keys. The chitchat
//!   generation is the node's incarnation (its start time), so a restarted node is a new
//!   member and the stale predecessor is dropped.
//! - For every live member it keeps one ractor session (the lower ractor name dials, the
//!   other side joins in after a grace period), dialing with jittered exponential backoff.
//! - A session whose peer chitchat declares dead, leaving, or superseded by a newer
//!   incarnation is stopped, so its remote endpoints leave every pg group at once. A TCP EOF
//!   (SIGKILL) does the same even before chitchat notices.
//! - The ractor node name is `<name>@<incarnation>`, so ractor's duplicate-session election
//!   never keeps a ghost of a restarted node.
//!
//! It publishes a [`ClusterView`] (for `/cluster`) and the list of routable member names
//! (for the router and entity placement) on watch channels.
//!
//! Gossip runs over [`gossip::SealedUdp`]: UDP datagrams sealed with a key derived from the
//! cookie and the cluster id ([`seal`]), so only members can gossip and a captured datagram
//! cannot be replayed; a peer out of reach is logged once per change and counted, not logged
//! on every gossip round.
//!
//! # Layout
//! - this module: the [`Membership`] actor (gossip, sessions, dialing, publishing).
//! - [`gossip`]: the transport under chitchat (sealed UDP, relayed through chitchat's own
//!   socket on loopback for its wire codec; quiet about unreachable peers).
//! - [`seal`]: sealing and opening datagrams (keys, nonces, the replay window).
//! - [`view`]: the pure rules it applies to what gossip reports: which incarnation counts,
//!   which peers get a session, each member's [`MemberState`], the routable list.
//! - `tests`: gossip on loopback as the actor reads it (cluster ids, restarts).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use chitchat::{ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::node::NodeServerSessionInformation;
use ractor_cluster::{NodeServer, NodeServerMessage, NodeSessionMessage, RactorMessage};
use rand::Rng;
use tokio::sync::watch;

use super::partition::keeper::Allowed;
use super::partition::quorum::{Tracker, Verdict};
use super::partition::{self, Leases};
use super::tls::{Reason, Refusal, Tls};
use super::transport;

pub mod gossip;
pub mod seal;
pub mod view;

pub use view::{ractor_name, ClusterView, MemberState, MemberView, PartitionView};
use view::{Local, Member, Members};

/// Chitchat keys this node advertises.
pub mod keys {
    /// TCP address of the cluster listener (UDP gossip uses the same port).
    pub const CLUSTER_ADDR: &str = "cluster_addr";
    /// HTTP ingress address.
    pub const HTTP_ADDR: &str = "http_addr";
    /// gRPC ingress address.
    pub const GRPC_ADDR: &str = "grpc_addr";
    /// Comma-separated service names.
    pub const SERVICES: &str = "services";
    /// `up` or `leaving`.
    pub const STATE: &str = "state";
    /// Troupe version.
    pub const VERSION: &str = "version";
}

/// What membership is started with.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's name.
    pub node: Arc<str>,
    /// This node's incarnation (start time in ms since the epoch).
    pub incarnation: u64,
    /// Cluster id: nodes with another id ignore each other's gossip.
    pub cluster_id: String,
    /// Shared secret of ractor_cluster sessions.
    pub cookie: String,
    /// TCP (sessions) and UDP (gossip) address this node binds.
    pub cluster_addr: SocketAddr,
    /// Where peers reach `cluster_addr`: `IP:port` or `host:port`. Advertised as the
    /// `cluster_addr` key (peers resolve a host name each time they dial it) and, resolved
    /// once at start, as chitchat's gossip address of this node.
    pub advertise_addr: String,
    /// Advertised HTTP address.
    pub http_addr: SocketAddr,
    /// Advertised gRPC address.
    pub grpc_addr: SocketAddr,
    /// Gossip seeds: `IP:port` or `host:port`; chitchat resolves host names again on every
    /// round.
    pub seeds: Vec<String>,
    /// Gossip period.
    pub gossip_interval: Duration,
    /// Phi-accrual threshold.
    pub phi_threshold: f64,
    /// Longest pause between two dials of one member.
    pub dial_backoff_max: Duration,
    /// Services hosted here.
    pub services: Vec<&'static str>,
    /// How splits are decided ([`partition`]).
    pub partition: partition::Config,
    /// Mutual TLS on every cluster connection; `None` runs plaintext
    /// (`insecure_plaintext`).
    pub tls: Option<Tls>,
}

/// Shared map of peer name to last heartbeat RTT, filled by the heartbeat task.
pub type RttTable = Arc<StdMutex<HashMap<String, Duration>>>;

/// The membership actor.
#[derive(Debug, Default)]
pub struct Membership;

/// Messages of [`Membership`].
#[derive(RactorMessage)]
pub enum MembershipMsg {
    /// Re-read chitchat, dial missing members, stop sessions of departed ones, publish the
    /// view. Sent by a timer every half gossip interval and by the live-set watcher.
    Reconcile,
    /// A ractor session changed state; sent by the node-server event subscription.
    Session(SessionEvent, NodeServerSessionInformation),
    /// A dial attempt to `peer` finished; sent by the dial task.
    Dialed {
        /// Ractor name of the peer.
        peer: String,
        /// Error text when the TCP connect failed.
        error: Option<String>,
    },
    /// Announce a graceful leave through gossip; sent by the node on SIGTERM.
    Leave(ractor::RpcReplyPort<()>),
    /// An attempt to down `member` in the lease store finished; sent by the downing task.
    Downed {
        /// The member's name.
        member: String,
        /// Whether its lease was released or expired, so it is downed now.
        downed: bool,
    },
}

/// Kinds of session events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// TCP session opened (not yet authenticated).
    Opened,
    /// Cookie handshake succeeded.
    Authenticated,
    /// State exchange done: the peer's actors are reachable.
    Ready,
    /// Session closed.
    Down,
}

/// What the membership actor is started with.
pub struct Args {
    /// Configuration.
    pub config: Config,
    /// Publishes the view.
    pub view_tx: watch::Sender<Arc<ClusterView>>,
    /// Publishes the routable member names.
    pub members_tx: watch::Sender<Arc<Vec<String>>>,
    /// Heartbeat RTTs.
    pub rtt: RttTable,
    /// Publishes the placement members (routable ones plus unreachable ones not downed).
    pub placement_tx: watch::Sender<Arc<Vec<String>>>,
    /// Tells the lease keeper whether this node may own ([`partition::keeper`]).
    pub allowed_tx: watch::Sender<Allowed>,
    /// The node leases, to down unreachable members only once theirs ran out.
    pub leases: Option<Arc<dyn Leases>>,
}

struct Session {
    actor: ActorRef<NodeSessionMessage>,
    peer: Option<String>,
    authenticated: bool,
    ready: bool,
    /// Refused by TLS (its certificate does not name the member it claims to be): being
    /// stopped, never counted ready.
    refused: bool,
    opened: Instant,
    addr: String,
}

#[derive(Default)]
struct Dial {
    attempt: u32,
    next_at: Option<Instant>,
    in_progress: bool,
    since: Option<Instant>,
}

/// Membership state.
pub struct State {
    config: Config,
    me: String,
    chitchat: ChitchatHandle,
    server: ActorRef<NodeServerMessage>,
    /// The task accepting cluster connections for `server`.
    acceptor: tokio::task::JoinHandle<()>,
    sessions: HashMap<u64, Session>,
    dials: HashMap<String, Dial>,
    leaving: bool,
    view_tx: watch::Sender<Arc<ClusterView>>,
    members_tx: watch::Sender<Arc<Vec<String>>>,
    rtt: RttTable,
    split: Split,
}

/// The split-brain resolver's state in the membership actor.
struct Split {
    tracker: Tracker,
    verdict: Verdict,
    placement_tx: watch::Sender<Arc<Vec<String>>>,
    allowed_tx: watch::Sender<Allowed>,
    leases: Option<Arc<dyn Leases>>,
    /// When each unreachable member was last tried for downing (one try in flight each).
    downing: HashMap<String, Option<Instant>>,
    /// After a lost split healed: when this node may own again.
    rejoin_at: Option<Instant>,
}

/// How long a node that lost a split waits, once it reaches everyone again, before it owns
/// again: a few gossip rounds for the winners to see it back and hand its entities over.
fn handover(gossip_interval: Duration) -> Duration {
    (gossip_interval * 5).max(Duration::from_millis(500))
}

/// Pause between two attempts to down one member whose lease is still valid.
const DOWN_RETRY: Duration = Duration::from_millis(250);

struct Events(ActorRef<MembershipMsg>);

impl ractor_cluster::NodeEventSubscription for Events {
    fn node_session_opened(&self, ses: NodeServerSessionInformation) {
        let _ = self
            .0
            .cast(MembershipMsg::Session(SessionEvent::Opened, ses));
    }
    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        let _ = self.0.cast(MembershipMsg::Session(SessionEvent::Down, ses));
    }
    fn node_session_authenticated(&self, ses: NodeServerSessionInformation) {
        let _ = self
            .0
            .cast(MembershipMsg::Session(SessionEvent::Authenticated, ses));
    }
    fn node_session_ready(&self, ses: NodeServerSessionInformation) {
        let _ = self
            .0
            .cast(MembershipMsg::Session(SessionEvent::Ready, ses));
    }
}

/// How long a session may wait for its peer to show up in gossip before it is dropped.
const UNKNOWN_PEER_GRACE: Duration = Duration::from_secs(3);
/// How long the higher-named side waits before dialing too.
const DIAL_FALLBACK: Duration = Duration::from_millis(1500);
/// A dial that produced no ready session within this is counted as failed.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

impl Membership {
    /// Starts chitchat over `transport` ([`Membership::transport`] outside tests).
    async fn spawn_gossip(
        config: &Config,
        transport: &gossip::SealedUdp,
    ) -> Result<ChitchatHandle, ActorProcessingErr> {
        let id = ChitchatId::new(
            config.node.to_string(),
            config.incarnation,
            resolve_advertised(&config.advertise_addr, config.cluster_addr).await,
        );
        let fd = FailureDetectorConfig {
            phi_threshold: config.phi_threshold,
            sampling_window_size: 1000,
            max_interval: Duration::from_secs(10),
            initial_interval: config.gossip_interval,
            dead_node_grace_period: Duration::from_secs(3600),
        };
        let cc = ChitchatConfig {
            chitchat_id: id,
            cluster_id: config.cluster_id.clone(),
            gossip_interval: config.gossip_interval,
            listen_addr: config.cluster_addr,
            seed_nodes: config.seeds.clone(),
            failure_detector_config: fd,
            marked_for_deletion_grace_period: Duration::from_secs(3600),
            catchup_callback: None,
            extra_liveness_predicate: None,
            protocol_version: chitchat::ProtocolVersion::V0,
        };
        let kvs = vec![
            (keys::CLUSTER_ADDR.into(), config.advertise_addr.clone()),
            (keys::HTTP_ADDR.into(), config.http_addr.to_string()),
            (keys::GRPC_ADDR.into(), config.grpc_addr.to_string()),
            (keys::SERVICES.into(), config.services.join(",")),
            (keys::STATE.into(), "up".into()),
            (keys::VERSION.into(), env!("CARGO_PKG_VERSION").into()),
        ];
        Ok(chitchat::spawn_chitchat(cc, kvs, transport).await?)
    }

    /// Gossip sealed with the key of `config`'s cookie and cluster id.
    fn transport(config: &Config) -> gossip::SealedUdp {
        gossip::SealedUdp::new(seal::Key::derive(&config.cookie, &config.cluster_id))
    }
}

impl Actor for Membership {
    type Msg = MembershipMsg;
    type State = State;
    type Arguments = Args;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Args,
    ) -> Result<State, ActorProcessingErr> {
        let config = args.config;
        let me = ractor_name(&config.node, config.incarnation);
        // Bound before anything starts, so a taken port fails the node at once.
        let listener = tokio::net::TcpListener::bind(config.cluster_addr)
            .await
            .map_err(|e| format!("cluster_addr {}: {e}", config.cluster_addr))?;
        let (unused_port, unused_ip) = transport::unused_server_listener();
        let server = NodeServer::new(
            unused_port,
            config.cookie.clone(),
            me.clone(),
            advertised_host(&config.advertise_addr).to_string(),
            None,
            Some(ractor_cluster::node::NodeConnectionMode::Isolated),
        )
        .with_listen_addr(unused_ip);
        let (server, _) = Actor::spawn_linked(None, server, (), myself.get_cell()).await?;
        server.cast(NodeServerMessage::SubscribeToEvents {
            id: "troupe-membership".into(),
            subscription: Box::new(Events(myself.clone())),
        })?;
        let chitchat = Self::spawn_gossip(&config, &Self::transport(&config)).await?;

        // Wake up on every live-set change, and on a timer for the failure detector's
        // verdicts and dial backoff.
        let mut watcher = chitchat.chitchat().lock().await.live_nodes_watcher();
        let me_ref = myself.clone();
        tokio::spawn(async move {
            while watcher.changed().await.is_ok() {
                if me_ref.cast(MembershipMsg::Reconcile).is_err() {
                    break;
                }
            }
        });
        myself.send_interval(config.gossip_interval / 2, || MembershipMsg::Reconcile);
        tracing::info!(
            node = %config.node,
            incarnation = config.incarnation,
            addr = %config.cluster_addr,
            advertised = %config.advertise_addr,
            "membership started"
        );
        Ok(State {
            me,
            chitchat,
            acceptor: tokio::spawn(transport::accept(
                listener,
                server.clone(),
                config.tls.clone(),
            )),
            server,
            sessions: HashMap::new(),
            dials: HashMap::new(),
            leaving: false,
            view_tx: args.view_tx,
            members_tx: args.members_tx,
            rtt: args.rtt,
            split: Split {
                tracker: Tracker::new(
                    &config.node,
                    config.partition.strategy,
                    config.partition.stable_after,
                    Instant::now(),
                ),
                verdict: Verdict::Healthy,
                placement_tx: args.placement_tx,
                allowed_tx: args.allowed_tx,
                leases: args.leases,
                downing: HashMap::new(),
                rejoin_at: None,
            },
            config,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        let _ = state.chitchat.initiate_shutdown();
        state.acceptor.abort();
        state.server.stop(Some("node stopping".into()));
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            MembershipMsg::Reconcile => state.reconcile(&myself).await,
            MembershipMsg::Session(event, info) => {
                state.on_session(event, info);
                state.reconcile(&myself).await;
            }
            MembershipMsg::Dialed { peer, error } => {
                let dial = state.dials.entry(peer.clone()).or_default();
                dial.in_progress = false;
                if let Some(error) = error {
                    tracing::debug!(%peer, %error, "dial failed");
                    state.backoff(&peer);
                }
            }
            MembershipMsg::Downed { member, downed } => {
                state
                    .split
                    .downing
                    .insert(member.clone(), Some(Instant::now()));
                if downed {
                    tracing::warn!(%member, "downed an unreachable member: its lease is released or ran out, its entities and tasks move");
                    metrics::counter!(crate::metrics::MEMBERS_DOWNED).increment(1);
                    state.split.tracker.down(&member);
                    state.split.downing.remove(&member);
                    state.reconcile(&myself).await;
                }
            }
            MembershipMsg::Leave(reply) => {
                state.leaving = true;
                let _ = state
                    .split
                    .allowed_tx
                    .send(Err("this node is leaving the cluster".into()));
                state
                    .chitchat
                    .chitchat()
                    .lock()
                    .await
                    .self_node_state()
                    .set(keys::STATE, "leaving");
                tracing::info!("announced leave");
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}

impl State {
    fn on_session(&mut self, event: SessionEvent, info: NodeServerSessionInformation) {
        let peer = info
            .peer_name
            .as_ref()
            .map(|n| view::session_peer(&n.name).to_string());
        match event {
            SessionEvent::Opened => {
                self.sessions.insert(
                    info.node_id,
                    Session {
                        actor: info.actor,
                        peer,
                        authenticated: false,
                        ready: false,
                        refused: false,
                        opened: Instant::now(),
                        addr: info.peer_addr,
                    },
                );
            }
            SessionEvent::Authenticated | SessionEvent::Ready => {
                let s = self
                    .sessions
                    .entry(info.node_id)
                    .or_insert_with(|| Session {
                        actor: info.actor.clone(),
                        peer: None,
                        authenticated: false,
                        ready: false,
                        refused: false,
                        opened: Instant::now(),
                        addr: info.peer_addr.clone(),
                    });
                if peer.is_some() {
                    s.peer = peer.clone();
                }
                // The name the peer claims in ractor's handshake must be the one its TLS
                // handshake proved, before the session is ever routed to.
                if !s.authenticated {
                    if let Some(tls) = &self.config.tls {
                        let claimed = s.peer.as_deref().and_then(view::parse_ractor_name);
                        let verdict = match claimed {
                            Some((node, _)) => tls.verify_session(&s.addr, node),
                            None => Err(Refusal {
                                reason: Reason::WrongName,
                                detail: format!("peer sent no node name ({:?})", s.peer),
                            }),
                        };
                        if let Err(refusal) = verdict {
                            // An inbound peer comes from an ephemeral port: log it by IP.
                            let peer = match s.addr.parse::<SocketAddr>() {
                                Ok(addr) if info.is_server => addr.ip().to_string(),
                                _ => s.addr.clone(),
                            };
                            tls.refusals().note(&peer, &refusal);
                            s.refused = true;
                            s.actor.stop(Some(format!("refused: {refusal}")));
                        }
                    }
                }
                s.authenticated = true;
                if s.refused {
                    return;
                }
                if event == SessionEvent::Ready {
                    s.ready = true;
                    if let Some(p) = &peer {
                        self.dials.remove(p);
                        tracing::info!(peer = %p, addr = %s.addr, "session ready");
                    }
                }
            }
            SessionEvent::Down => {
                if let Some(tls) = &self.config.tls {
                    tls.forget(&info.peer_addr);
                }
                if let Some(s) = self.sessions.remove(&info.node_id) {
                    if s.refused {
                        // Logged (once per peer) and counted when refused.
                    } else if s.authenticated {
                        tracing::info!(peer = ?s.peer, addr = %s.addr, "session closed");
                    } else {
                        tracing::warn!(
                            peer = ?s.peer,
                            addr = %s.addr,
                            "peer session refused before authentication (wrong cluster cookie or not a troupe node)"
                        );
                    }
                    if let Some(p) = s.peer {
                        self.backoff(&p);
                    }
                }
            }
        }
    }

    fn backoff(&mut self, peer: &str) {
        let max = self.config.dial_backoff_max;
        let dial = self.dials.entry(peer.to_string()).or_default();
        dial.in_progress = false;
        dial.since = None;
        dial.attempt = dial.attempt.saturating_add(1);
        let ceiling = Duration::from_millis(50)
            .saturating_mul(1u32 << dial.attempt.min(10))
            .min(max);
        let jitter = rand::rng().random_range(0..=ceiling.as_millis() as u64);
        dial.next_at = Some(Instant::now() + Duration::from_millis(jitter));
    }

    async fn reconcile(&mut self, myself: &ActorRef<MembershipMsg>) {
        let members = read_members(&self.chitchat).await;
        let now = Instant::now();

        // Which ractor names should have a session: live, up, newest incarnation, not me.
        let wanted = view::wanted(&members, &self.config.node, self.leaving);

        // Stop sessions nobody wants any more.
        for s in self.sessions.values() {
            let keep = match &s.peer {
                // A young session whose peer gossip has not confirmed yet is given time
                // (a joining node is not live until its heartbeats are sampled), unless the
                // peer is known to be gone: leaving, or superseded by a newer incarnation.
                Some(p) => {
                    wanted.contains_key(p)
                        || now.duration_since(s.opened) < UNKNOWN_PEER_GRACE
                            && !view::known_gone(p, &members)
                }
                None => now.duration_since(s.opened) < UNKNOWN_PEER_GRACE,
            };
            if !keep {
                tracing::info!(peer = ?s.peer, addr = %s.addr, "stopping session of departed member");
                s.actor.stop(Some("member departed".into()));
            }
        }

        // Dial the members we have no session with.
        for (peer, addr) in &wanted {
            if self
                .sessions
                .values()
                .any(|s| s.peer.as_deref() == Some(peer))
            {
                continue;
            }
            let dial = self.dials.entry(peer.clone()).or_default();
            if dial.in_progress {
                if dial
                    .since
                    .is_some_and(|t| now.duration_since(t) > DIAL_TIMEOUT)
                {
                    dial.in_progress = false;
                }
                continue;
            }
            let since = *dial.since.get_or_insert(now);
            if dial.next_at.is_some_and(|t| now < t) {
                continue;
            }
            let lower = self.me.as_str() < peer.as_str();
            if !lower && now.duration_since(since) < DIAL_FALLBACK {
                continue;
            }
            dial.in_progress = true;
            dial.next_at = Some(now + DIAL_TIMEOUT);
            let server = self.server.clone();
            let me = myself.clone();
            let peer = peer.clone();
            let addr = addr.clone();
            let tls = self.config.tls.clone();
            tokio::spawn(async move {
                let name = view::parse_ractor_name(&peer).map_or(peer.as_str(), |(n, _)| n);
                let error = dial_advertised(&server, &addr, tls.as_ref(), name)
                    .await
                    .err()
                    .map(|e| e.to_string());
                let _ = me.cast(MembershipMsg::Dialed { peer, error });
            });
        }
        self.dials.retain(|p, _| wanted.contains_key(p));

        let mut cluster = self.view(&members, &wanted);
        cluster.partition = self.resolve(&cluster, myself);
        self.publish(cluster);
    }

    /// Feeds the split tracker what this node sees, acts on its verdict (fence, or down
    /// the unreachable members whose lease is gone) and publishes placement.
    fn resolve(
        &mut self,
        cluster: &ClusterView,
        myself: &ActorRef<MembershipMsg>,
    ) -> PartitionView {
        let up: std::collections::BTreeSet<String> = cluster.up().into_iter().collect();
        let left: std::collections::BTreeSet<String> = cluster
            .members
            .iter()
            .filter(|m| m.state == MemberState::Leaving)
            .map(|m| m.name.clone())
            .collect();
        let now = Instant::now();
        let split = &mut self.split;
        let verdict = split.tracker.observe(&up, &left, now);
        if std::mem::discriminant(&verdict) != std::mem::discriminant(&split.verdict) {
            match &verdict {
                Verdict::Healthy => tracing::info!("every known member is reachable"),
                Verdict::Undecided => {
                    tracing::warn!(unreachable = ?split.tracker.unreachable(), "members unreachable; deciding the split once it is stable")
                }
                Verdict::Win { down } => {
                    metrics::counter!(crate::metrics::PARTITION_DECISIONS, "verdict" => "win")
                        .increment(1);
                    tracing::warn!(?down, strategy = self.config.partition.strategy.name(), "this side wins the split; downing the unreachable members once their leases are gone");
                }
                Verdict::Lose { reason } => {
                    metrics::counter!(crate::metrics::PARTITION_DECISIONS, "verdict" => "lose")
                        .increment(1);
                    tracing::warn!(%reason, "this side loses the split: fencing this node");
                }
            }
        }
        // A loser that sees everyone again waits a hand-over pause before it owns again,
        // so the winners have passivated what moves back to it by then.
        match (&split.verdict, &verdict) {
            (Verdict::Lose { .. }, Verdict::Healthy) => {
                split.rejoin_at = Some(now + handover(self.config.gossip_interval));
                tracing::info!("the split healed: owning again after the hand-over pause");
            }
            (_, Verdict::Lose { .. }) => split.rejoin_at = None,
            _ => {}
        }
        if split.rejoin_at.is_some_and(|t| now >= t) {
            split.rejoin_at = None;
        }
        let allowed: Allowed = match &verdict {
            _ if self.leaving => Err("this node is leaving the cluster".into()),
            Verdict::Lose { reason } => Err(format!("lost a network split: {reason}").into()),
            _ if split.rejoin_at.is_some() => {
                Err("rejoining after a lost split: handing entities back".into())
            }
            _ => Ok(()),
        };
        split.allowed_tx.send_if_modified(|cur| {
            let changed = *cur != allowed;
            *cur = allowed;
            changed
        });
        if let Verdict::Win { down } = &verdict {
            for member in down {
                let slot = split.downing.entry(member.clone()).or_insert(None);
                // `None`: never tried; `Some(t)`: last answer at t. In flight: far future.
                if slot.is_some_and(|t| now < t + DOWN_RETRY) {
                    continue;
                }
                *slot = Some(now + Duration::from_secs(3600));
                let (me, member) = (myself.clone(), member.clone());
                match split.leases.clone() {
                    None => {
                        let _ = me.cast(MembershipMsg::Downed {
                            member,
                            downed: true,
                        });
                    }
                    Some(leases) => {
                        tokio::spawn(async move {
                            let downed = match leases.down(&member).await {
                                Ok(d) => d,
                                Err(e) => {
                                    tracing::debug!(%member, error = %e, "downing check failed");
                                    false
                                }
                            };
                            let _ = me.cast(MembershipMsg::Downed { member, downed });
                        });
                    }
                }
            }
        }
        split.downing.retain(|m, _| !up.contains(m));
        let verdict_name = match &verdict {
            Verdict::Healthy => "healthy",
            Verdict::Undecided => "undecided",
            Verdict::Win { .. } => "win",
            Verdict::Lose { .. } => "lose",
        };
        split.verdict = verdict;
        let placement = split.tracker.placement();
        split.placement_tx.send_if_modified(|cur| {
            if **cur != placement {
                *cur = Arc::new(placement.clone());
                true
            } else {
                false
            }
        });
        PartitionView {
            strategy: self.config.partition.strategy.name(),
            verdict: verdict_name,
            unreachable: split.tracker.unreachable(),
            placement,
        }
    }

    fn view(&self, members: &Members, wanted: &BTreeMap<String, String>) -> ClusterView {
        let ready: HashSet<&str> = self
            .sessions
            .values()
            .filter(|s| s.ready && !s.refused)
            .filter_map(|s| s.peer.as_deref())
            .collect();
        let rtt = self.rtt.lock().expect("rtt lock").clone();
        view::cluster_view(
            members,
            &Local {
                node: &self.config.node,
                leaving: self.leaving,
                ready: &ready,
                wanted,
                rtt: &rtt,
            },
        )
    }

    fn publish(&self, cluster: ClusterView) {
        let up = cluster.up();
        for (label, st) in [
            ("up", MemberState::Up),
            ("suspect", MemberState::Suspect),
            ("leaving", MemberState::Leaving),
            ("down", MemberState::Down),
        ] {
            let n = cluster.members.iter().filter(|m| m.state == st).count();
            metrics::gauge!(crate::metrics::CLUSTER_MEMBERS, "state" => label).set(n as f64);
        }
        self.members_tx.send_if_modified(|cur| {
            if **cur != up {
                *cur = Arc::new(up);
                true
            } else {
                false
            }
        });
        self.view_tx.send_replace(Arc::new(cluster));
    }
}

/// Dials a peer at the cluster address it advertises, resolving a host name now (its address
/// may have changed since the last dial) and trying each address it resolves to in turn.
async fn dial_advertised(
    server: &ActorRef<NodeServerMessage>,
    advertised: &str,
    tls: Option<&Tls>,
    name: &str,
) -> anyhow::Result<()> {
    let mut last = anyhow::anyhow!("{advertised} resolves to no address");
    for addr in tokio::net::lookup_host(advertised).await? {
        match transport::dial(server, addr, tls, name).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e.context(format!("{advertised} ({addr})")),
        }
    }
    Err(last)
}

/// The address chitchat gossips to this node at: `advertised` itself, or what its host name
/// resolves to, preferring an address of the family of `bind` (the gossip socket's). A pod's
/// own DNS name may not resolve until the pod is published, so this waits, retrying with
/// backoff, rather than start a member nobody can gossip to.
async fn resolve_advertised(advertised: &str, bind: SocketAddr) -> SocketAddr {
    let mut delay = Duration::from_millis(100);
    loop {
        let found = tokio::net::lookup_host(advertised).await.map(|addrs| {
            let addrs: Vec<SocketAddr> = addrs.collect();
            let same_family = addrs.iter().find(|a| a.is_ipv4() == bind.is_ipv4());
            same_family.or(addrs.first()).copied()
        });
        match found {
            Ok(Some(addr)) => return addr,
            Ok(None) => {
                tracing::warn!(%advertised, "advertised cluster address resolves to nothing yet; retrying")
            }
            Err(e) => {
                tracing::warn!(%advertised, error = %e, "cannot resolve the advertised cluster address yet; retrying")
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// The host part of an advertised `host:port` or `IP:port` (what ractor_cluster announces
/// as this node's host name).
fn advertised_host(advertised: &str) -> &str {
    let host = advertised.rsplit_once(':').map_or(advertised, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Newest incarnation per node name, with liveness and keys, as chitchat reports them now.
async fn read_members(chitchat: &ChitchatHandle) -> Members {
    let guard = chitchat.chitchat();
    let cc = guard.lock().await;
    let live: HashSet<&ChitchatId> = cc.live_nodes().collect();
    let dead: HashSet<&ChitchatId> = cc.dead_nodes().collect();
    view::newest(cc.node_states().iter().map(|(id, state)| {
        Member {
            name: id.node_id.to_string(),
            incarnation: id.generation_id,
            kv: state
                .key_values()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            live: live.contains(id),
            dead: dead.contains(id),
        }
    }))
}

#[cfg(test)]
mod tests;
