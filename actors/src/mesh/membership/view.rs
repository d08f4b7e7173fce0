//! The pure part of membership: from what gossip reports to what this node does with it.
//!
//! The [`Membership`](super::Membership) actor reads chitchat's node states, live set and
//! dead set into [`Member`]s, then asks this module:
//! - [`newest`]: which incarnation of each node counts (the newest; a restarted node
//!   replaces its predecessor, which is never preferred);
//! - [`wanted`]: which peers it should keep a ractor session with;
//! - [`known_gone`]: whether a session's peer is known to have left or been superseded;
//! - [`cluster_view`]: each member's [`MemberState`], as [`ClusterView`], whose
//!   [`up`](ClusterView::up) list is what the router and placement route to.
//!
//! Nothing here does I/O or reads a clock, so every rule is unit tested below. Gossip from
//! another cluster id never gets this far: chitchat drops it (tested in `membership::tests`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use super::keys;

/// How this node sees a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Alive and routed to.
    Up,
    /// Alive per gossip but no session yet (joining, or a session is being re-established).
    Suspect,
    /// Announced a graceful leave.
    Leaving,
    /// Declared dead by the failure detector.
    Down,
}

/// One member in a [`ClusterView`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct MemberView {
    /// Node name.
    pub name: String,
    /// Incarnation (chitchat generation).
    pub incarnation: u64,
    /// State as this node sees it.
    pub state: MemberState,
    /// Cluster address.
    pub cluster_addr: String,
    /// HTTP address.
    pub http_addr: String,
    /// gRPC address.
    pub grpc_addr: String,
    /// Services it hosts.
    pub services: Vec<String>,
    /// Last mesh heartbeat round trip, milliseconds.
    pub rtt_ms: Option<f64>,
}

/// What this node knows of the cluster.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ClusterView {
    /// Every known member (newest incarnation per name), this node included, sorted by name.
    pub members: Vec<MemberView>,
    /// The split-brain resolver's standing on this node.
    pub partition: PartitionView,
}

/// The split-brain resolver's standing on one node (see [`crate::mesh::partition`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PartitionView {
    /// `keep-majority` or `static-quorum`.
    pub strategy: &'static str,
    /// `healthy`, `undecided` (a split not stable yet), `win` or `lose`.
    pub verdict: &'static str,
    /// Members counted but not reachable from here.
    pub unreachable: Vec<String>,
    /// Members that own entities and tasks as far as this node knows (unreachable ones
    /// keep theirs until downed).
    pub placement: Vec<String>,
}

impl ClusterView {
    /// Names of the members in state `up`.
    pub fn up(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.state == MemberState::Up)
            .map(|m| m.name.clone())
            .collect()
    }
}

/// One incarnation of a node, as gossip reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Node name (chitchat node id).
    pub name: String,
    /// Incarnation (chitchat generation).
    pub incarnation: u64,
    /// The keys it advertises ([`keys`]).
    pub kv: BTreeMap<String, String>,
    /// Heartbeats arrive (the failure detector says alive).
    pub live: bool,
    /// The failure detector declared it dead (a member merely not live yet is joining).
    pub dead: bool,
}

impl Member {
    /// Its ractor node name.
    pub fn ractor_name(&self) -> String {
        ractor_name(&self.name, self.incarnation)
    }

    /// It announced a graceful leave.
    pub fn leaving(&self) -> bool {
        self.kv.get(keys::STATE).map(String::as_str) == Some("leaving")
    }

    fn key(&self, key: &str) -> String {
        self.kv.get(key).cloned().unwrap_or_default()
    }
}

/// The newest incarnation of each node, by name.
pub type Members = BTreeMap<String, Member>;

/// Keeps the newest incarnation of each node name. Of two with the same incarnation, the
/// first one seen stays (chitchat yields its states ordered by id, so that is stable).
pub fn newest(nodes: impl IntoIterator<Item = Member>) -> Members {
    let mut out = Members::new();
    for m in nodes {
        let newer = out
            .get(&m.name)
            .is_none_or(|seen| seen.incarnation < m.incarnation);
        if newer {
            out.insert(m.name.clone(), m);
        }
    }
    out
}

/// The peers this node keeps a ractor session with, by ractor name, with the cluster address
/// they advertise: live, not leaving, advertising a [`dialable`] `cluster_addr`, not `node`
/// itself. Nobody once this node is `leaving`.
pub fn wanted(members: &Members, node: &str, leaving: bool) -> BTreeMap<String, String> {
    if leaving {
        return BTreeMap::new();
    }
    members
        .values()
        .filter(|m| m.live && m.name != node && !m.leaving())
        .filter_map(|m| {
            let addr = m.kv.get(keys::CLUSTER_ADDR).filter(|a| dialable(a))?;
            Some((m.ractor_name(), addr.clone()))
        })
        .collect()
}

/// An advertised cluster address a dial can use: `IP:port`, or `host:port` (resolved by the
/// dial, each time: a StatefulSet pod's name keeps naming it across restarts).
pub fn dialable(addr: &str) -> bool {
    if addr.parse::<SocketAddr>().is_ok() {
        return true;
    }
    addr.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && port.parse::<u16>().is_ok_and(|p| p > 0)
    })
}

/// Whether the session peer `peer` (a ractor name) is known to be gone: gossip shows a newer
/// incarnation of it, or its leave. A name that is not `<node>@<incarnation>` is gone too; a
/// node gossip does not know (yet) is not.
pub fn known_gone(peer: &str, members: &Members) -> bool {
    let Some((name, incarnation)) = parse_ractor_name(peer) else {
        return true;
    };
    members
        .get(name)
        .is_some_and(|m| m.incarnation > incarnation || m.leaving())
}

/// What the view depends on besides gossip: this node's own facts and its sessions.
pub struct Local<'a> {
    /// This node's name.
    pub node: &'a str,
    /// This node announced a leave.
    pub leaving: bool,
    /// Ractor names of the peers with a ready session.
    pub ready: &'a HashSet<&'a str>,
    /// The peers this node wants sessions with ([`wanted`]).
    pub wanted: &'a BTreeMap<String, String>,
    /// Last heartbeat round trip by node name.
    pub rtt: &'a HashMap<String, Duration>,
}

/// How this node sees `m`. Itself: up, or leaving once it announced it. A peer: down when
/// declared dead, suspect while not live (joining), leaving when it announced it, up when its
/// session is ready and still wanted, else suspect.
pub fn member_state(m: &Member, local: &Local<'_>) -> MemberState {
    if m.name == local.node {
        return if local.leaving {
            MemberState::Leaving
        } else {
            MemberState::Up
        };
    }
    let rname = m.ractor_name();
    if m.dead {
        MemberState::Down
    } else if !m.live {
        MemberState::Suspect
    } else if m.leaving() {
        MemberState::Leaving
    } else if local.ready.contains(rname.as_str()) && local.wanted.contains_key(&rname) {
        MemberState::Up
    } else {
        MemberState::Suspect
    }
}

/// The view of `members` (sorted by name, as the map is) from this node.
pub fn cluster_view(members: &Members, local: &Local<'_>) -> ClusterView {
    let members = members
        .values()
        .map(|m| MemberView {
            name: m.name.clone(),
            incarnation: m.incarnation,
            state: member_state(m, local),
            cluster_addr: m.key(keys::CLUSTER_ADDR),
            http_addr: m.key(keys::HTTP_ADDR),
            grpc_addr: m.key(keys::GRPC_ADDR),
            services: m
                .key(keys::SERVICES)
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            rtt_ms: local.rtt.get(&m.name).map(|d| d.as_secs_f64() * 1000.0),
        })
        .collect();
    ClusterView {
        members,
        partition: PartitionView::default(),
    }
}

/// The ractor node name of a member incarnation: `<node>@<incarnation>`.
pub fn ractor_name(node: &str, incarnation: u64) -> String {
    format!("{node}@{incarnation}")
}

/// The node and incarnation of a ractor name, if it is one of ours.
pub fn parse_ractor_name(name: &str) -> Option<(&str, u64)> {
    let (node, incarnation) = name.rsplit_once('@')?;
    Some((node, incarnation.parse().ok()?))
}

/// The peer's ractor name in a session: ractor_cluster announces `<node name>@<hostname>`,
/// and our node name is itself `<node>@<incarnation>`, so the hostname is cut off.
pub fn session_peer(announced: &str) -> &str {
    announced
        .rsplit_once('@')
        .map_or(announced, |(peer, _host)| peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "n1";

    /// A member advertising everything a node advertises, live and up.
    fn member(name: &str, incarnation: u64, port: u16) -> Member {
        let kv = [
            (keys::CLUSTER_ADDR, format!("127.0.0.1:{port}")),
            (keys::HTTP_ADDR, format!("127.0.0.1:{}", port + 1)),
            (keys::GRPC_ADDR, format!("127.0.0.1:{}", port + 2)),
            (keys::SERVICES, "ping,sessions".to_string()),
            (keys::STATE, "up".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Member {
            name: name.into(),
            incarnation,
            kv,
            live: true,
            dead: false,
        }
    }

    fn leaving(mut m: Member) -> Member {
        m.kv.insert(keys::STATE.into(), "leaving".into());
        m
    }

    fn joining(mut m: Member) -> Member {
        m.live = false;
        m
    }

    fn dead(mut m: Member) -> Member {
        m.live = false;
        m.dead = true;
        m
    }

    /// This node's sessions and state, for [`Local`].
    struct Node {
        leaving: bool,
        ready: Vec<String>,
        rtt: HashMap<String, Duration>,
    }

    impl Node {
        /// This node, not leaving, with a ready session to each of `ready` (ractor names).
        fn with_sessions(ready: &[&str]) -> Self {
            Node {
                leaving: false,
                ready: ready.iter().map(|s| s.to_string()).collect(),
                rtt: HashMap::new(),
            }
        }

        /// Its view of `members`, and the names it routes to.
        fn view(&self, members: &Members) -> (ClusterView, Vec<String>) {
            let ready: HashSet<&str> = self.ready.iter().map(String::as_str).collect();
            let wanted = wanted(members, ME, self.leaving);
            let view = cluster_view(
                members,
                &Local {
                    node: ME,
                    leaving: self.leaving,
                    ready: &ready,
                    wanted: &wanted,
                    rtt: &self.rtt,
                },
            );
            let up = view.up();
            (view, up)
        }
    }

    fn states(view: &ClusterView) -> Vec<(&str, u64, MemberState)> {
        view.members
            .iter()
            .map(|m| (m.name.as_str(), m.incarnation, m.state))
            .collect()
    }

    fn three() -> Members {
        newest([
            member(ME, 100, 7000),
            member("n2", 200, 7010),
            member("n3", 300, 7020),
        ])
    }

    #[test]
    fn peers_with_ready_sessions_are_up_and_routed_to() {
        let (view, up) = Node::with_sessions(&["n2@200", "n3@300"]).view(&three());
        assert_eq!(
            states(&view),
            vec![
                (ME, 100, MemberState::Up),
                ("n2", 200, MemberState::Up),
                ("n3", 300, MemberState::Up),
            ]
        );
        assert_eq!(up, vec![ME, "n2", "n3"]);
        let n2 = &view.members[1];
        assert_eq!(n2.cluster_addr, "127.0.0.1:7010");
        assert_eq!(n2.http_addr, "127.0.0.1:7011");
        assert_eq!(n2.grpc_addr, "127.0.0.1:7012");
        assert_eq!(n2.services, vec!["ping", "sessions"]);
    }

    #[test]
    fn a_lone_node_routes_to_itself() {
        let members = newest([member(ME, 100, 7000)]);
        let (view, up) = Node::with_sessions(&[]).view(&members);
        assert_eq!(states(&view), vec![(ME, 100, MemberState::Up)]);
        assert_eq!(up, vec![ME]);
        assert!(
            wanted(&members, ME, false).is_empty(),
            "no session to itself"
        );
    }

    #[test]
    fn joining_member_is_suspect_until_live_and_its_session_is_ready() {
        // Gossip knows it, the failure detector has no verdict yet: no session is dialed.
        let members = newest([member(ME, 100, 7000), joining(member("n2", 200, 7010))]);
        assert!(wanted(&members, ME, false).is_empty());
        let (view, up) = Node::with_sessions(&[]).view(&members);
        assert_eq!(view.members[1].state, MemberState::Suspect);
        assert_eq!(up, vec![ME]);

        // Live now: dialed, but suspect until the session is ready.
        let members = newest([member(ME, 100, 7000), member("n2", 200, 7010)]);
        let want = wanted(&members, ME, false);
        assert_eq!(
            want.into_iter().collect::<Vec<_>>(),
            vec![("n2@200".to_string(), "127.0.0.1:7010".to_string())]
        );
        let (view, up) = Node::with_sessions(&[]).view(&members);
        assert_eq!(view.members[1].state, MemberState::Suspect);
        assert_eq!(up, vec![ME]);

        let (view, up) = Node::with_sessions(&["n2@200"]).view(&members);
        assert_eq!(view.members[1].state, MemberState::Up);
        assert_eq!(up, vec![ME, "n2"]);
    }

    #[test]
    fn member_marked_leaving_is_not_routed_to_and_its_session_goes() {
        let members = newest([
            member(ME, 100, 7000),
            leaving(member("n2", 200, 7010)),
            member("n3", 300, 7020),
        ]);
        // Even with its session still ready.
        let (view, up) = Node::with_sessions(&["n2@200", "n3@300"]).view(&members);
        assert_eq!(view.members[1].state, MemberState::Leaving);
        assert_eq!(up, vec![ME, "n3"]);
        assert_eq!(
            wanted(&members, ME, false).keys().collect::<Vec<_>>(),
            vec!["n3@300"]
        );
        assert!(known_gone("n2@200", &members));
        assert!(!known_gone("n3@300", &members));
    }

    #[test]
    fn dead_member_is_down_even_after_announcing_its_leave() {
        let members = newest([
            member(ME, 100, 7000),
            dead(leaving(member("n2", 200, 7010))),
        ]);
        let (view, _) = Node::with_sessions(&["n2@200"]).view(&members);
        assert_eq!(view.members[1].state, MemberState::Down);
    }

    #[test]
    fn dead_member_is_down_and_not_routed_to_even_with_a_session() {
        let members = newest([member(ME, 100, 7000), dead(member("n2", 200, 7010))]);
        let (view, up) = Node::with_sessions(&["n2@200"]).view(&members);
        assert_eq!(
            states(&view),
            vec![(ME, 100, MemberState::Up), ("n2", 200, MemberState::Down)]
        );
        assert_eq!(up, vec![ME]);
        assert!(wanted(&members, ME, false).is_empty());
        // Not "known gone" (that is for leaves and restarts): its session is dropped
        // because it is no longer wanted, once the unknown-peer grace has passed.
        assert!(!known_gone("n2@200", &members));
    }

    #[test]
    fn restarted_member_replaces_its_predecessor_whatever_the_order() {
        let old = member("n2", 200, 7010);
        let new = member("n2", 250, 7030);
        for nodes in [
            vec![member(ME, 100, 7000), old.clone(), new.clone()],
            vec![new.clone(), member(ME, 100, 7000), old.clone()],
        ] {
            let members = newest(nodes);
            assert_eq!(members.len(), 2);
            assert_eq!(members["n2"], new);
        }
    }

    #[test]
    fn restarted_member_is_never_preferred_over_its_successor() {
        // The predecessor is still live (not yet declared dead) and its session still ready;
        // the successor is still joining.
        let members = newest([
            member(ME, 100, 7000),
            member("n2", 200, 7010),
            joining(member("n2", 250, 7030)),
        ]);
        let (view, up) = Node::with_sessions(&["n2@200"]).view(&members);
        assert_eq!(
            states(&view),
            vec![
                (ME, 100, MemberState::Up),
                ("n2", 250, MemberState::Suspect)
            ]
        );
        assert_eq!(view.members[1].cluster_addr, "127.0.0.1:7030");
        assert_eq!(up, vec![ME]);
        assert!(wanted(&members, ME, false).is_empty());
        assert!(known_gone("n2@200", &members), "the old session is stopped");
        assert!(!known_gone("n2@250", &members));

        // Once the successor is live, only it is dialed, and it is up once its session is.
        let members = newest([
            member(ME, 100, 7000),
            dead(member("n2", 200, 7010)),
            member("n2", 250, 7030),
        ]);
        assert_eq!(
            wanted(&members, ME, false).into_iter().collect::<Vec<_>>(),
            vec![("n2@250".to_string(), "127.0.0.1:7030".to_string())]
        );
        let (view, _) = Node::with_sessions(&["n2@200"]).view(&members);
        assert_eq!(
            view.members[1].state,
            MemberState::Suspect,
            "old session only"
        );
        let (view, up) = Node::with_sessions(&["n2@250"]).view(&members);
        assert_eq!(states(&view)[1], ("n2", 250, MemberState::Up));
        assert_eq!(up, vec![ME, "n2"]);
    }

    #[test]
    fn same_incarnation_twice_keeps_the_first_seen() {
        let first = member("n2", 200, 7010);
        let second = member("n2", 200, 7030);
        assert_eq!(newest([first.clone(), second.clone()])["n2"], first);
        assert_eq!(newest([second.clone(), first])["n2"], second);
    }

    #[test]
    fn output_is_sorted_by_name_whatever_the_input_order() {
        let nodes = [
            member("n3", 300, 7020),
            member("a0", 50, 7040),
            member(ME, 100, 7000),
            member("n10", 10, 7050),
            member("n2", 200, 7010),
        ];
        let ready = &["n2@200", "n3@300", "a0@50", "n10@10"];
        let forward = Node::with_sessions(ready).view(&newest(nodes.clone()));
        let mut reversed = nodes.to_vec();
        reversed.reverse();
        let backward = Node::with_sessions(ready).view(&newest(reversed));
        let names = |v: &ClusterView| v.members.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&forward.0), vec!["a0", ME, "n10", "n2", "n3"]);
        assert_eq!(names(&backward.0), names(&forward.0));
        assert_eq!(forward.1, vec!["a0", ME, "n10", "n2", "n3"]);
        assert_eq!(backward.1, forward.1);
    }

    #[test]
    fn this_node_is_up_whatever_gossip_says_until_it_leaves() {
        // Its own entry is never dead or unlive in chitchat, but the view must not care.
        let members = newest([dead(member(ME, 100, 7000)), member("n2", 200, 7010)]);
        let mut node = Node::with_sessions(&["n2@200"]);
        let (view, up) = node.view(&members);
        assert_eq!(view.members[0].state, MemberState::Up);
        assert_eq!(up, vec![ME, "n2"]);

        // Once it announced its leave it wants no session and routes to nobody, itself
        // included, even though its peers are fine.
        node.leaving = true;
        let (view, up) = node.view(&members);
        assert_eq!(
            states(&view),
            vec![
                (ME, 100, MemberState::Leaving),
                ("n2", 200, MemberState::Suspect)
            ]
        );
        assert!(up.is_empty());
        assert!(wanted(&members, ME, true).is_empty());
    }

    #[test]
    fn a_peer_advertising_a_host_name_is_dialed_by_that_name() {
        let mut pod = member("n2", 200, 7010);
        let name = "troupe-1.troupe-peers.default.svc.cluster.local:7101";
        pod.kv.insert(keys::CLUSTER_ADDR.into(), name.into());
        let members = newest([member(ME, 100, 7000), pod]);
        assert_eq!(
            wanted(&members, ME, false).into_iter().collect::<Vec<_>>(),
            vec![("n2@200".to_string(), name.to_string())]
        );
        for good in ["127.0.0.1:7101", "[::1]:7101", "localhost:7101", name] {
            assert!(dialable(good), "{good}");
        }
        for bad in ["", "localhost", "host:0", ":7101", "a b:7101", "h/x:1"] {
            assert!(!dialable(bad), "{bad}");
        }
    }

    #[test]
    fn live_peer_without_a_usable_cluster_addr_is_never_dialed_nor_up() {
        let mut no_addr = member("n2", 200, 7010);
        no_addr.kv.remove(keys::CLUSTER_ADDR);
        let mut bad_addr = member("n3", 300, 7020);
        bad_addr
            .kv
            .insert(keys::CLUSTER_ADDR.into(), "not an address".into());
        let members = newest([member(ME, 100, 7000), no_addr, bad_addr]);
        assert!(wanted(&members, ME, false).is_empty());
        let (view, up) = Node::with_sessions(&["n2@200", "n3@300"]).view(&members);
        assert_eq!(view.members[1].state, MemberState::Suspect);
        assert_eq!(view.members[1].cluster_addr, "");
        assert_eq!(view.members[2].state, MemberState::Suspect);
        assert_eq!(up, vec![ME]);
    }

    #[test]
    fn missing_keys_read_as_empty_and_services_skip_empty_names() {
        let mut bare = member("n2", 200, 7010);
        bare.kv.retain(|k, _| k == keys::CLUSTER_ADDR);
        let mut odd = member("n3", 300, 7020);
        odd.kv.insert(keys::SERVICES.into(), ",ping,,chat,".into());
        let members = newest([member(ME, 100, 7000), bare, odd]);
        let (view, up) = Node::with_sessions(&["n2@200", "n3@300"]).view(&members);
        let n2 = &view.members[1];
        assert_eq!((n2.http_addr.as_str(), n2.grpc_addr.as_str()), ("", ""));
        assert!(n2.services.is_empty());
        // No `state` key is not a leave.
        assert_eq!(n2.state, MemberState::Up);
        assert_eq!(view.members[2].services, vec!["ping", "chat"]);
        assert_eq!(up, vec![ME, "n2", "n3"]);
    }

    #[test]
    fn rtt_is_reported_in_milliseconds_for_measured_peers_only() {
        let mut node = Node::with_sessions(&["n2@200", "n3@300"]);
        node.rtt.insert("n2".into(), Duration::from_micros(1500));
        let (view, _) = node.view(&three());
        let rtts: Vec<Option<f64>> = view.members.iter().map(|m| m.rtt_ms).collect();
        assert_eq!(rtts, vec![None, Some(1.5), None]);
    }

    #[test]
    fn session_of_a_peer_unknown_to_gossip_is_not_known_gone() {
        // A joining node may dial before its gossip arrives; the actor gives it a grace.
        assert!(!known_gone("n9@900", &three()));
        // Older incarnations of known nodes are; names that are not ours are too.
        assert!(known_gone("n2@199", &three()));
        assert!(
            !known_gone("n2@201", &three()),
            "newer than gossip knows: not gone"
        );
        assert!(known_gone("n2", &three()));
        assert!(known_gone("n2@soon", &three()));
    }

    #[test]
    fn ractor_names_round_trip_and_session_names_lose_the_host() {
        assert_eq!(ractor_name("n1", 1700000000123), "n1@1700000000123");
        assert_eq!(
            parse_ractor_name("n1@1700000000123"),
            Some(("n1", 1700000000123))
        );
        assert_eq!(parse_ractor_name("node@a@42"), Some(("node@a", 42)));
        assert_eq!(parse_ractor_name("n1"), None);
        assert_eq!(parse_ractor_name("n1@-1"), None);
        assert_eq!(session_peer("n1@42@localhost"), "n1@42");
        assert_eq!(session_peer("n1@42@127.0.0.1"), "n1@42");
        assert_eq!(session_peer("plain"), "plain");
    }
}
