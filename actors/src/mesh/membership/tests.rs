//! Membership's gossip on loopback: what chitchat hands to [`view`] through `read_members`,
//! and what sealing keeps out of it. (The rules applied to it are unit tested in [`view`],
//! the seal in [`seal`].)

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use chitchat::transport::UdpTransport;
use chitchat::ChitchatHandle;

use super::seal::Reject;
use super::*;

const GOSSIP: Duration = Duration::from_millis(50);

/// A loopback address whose UDP port was free a moment ago.
fn free_addr() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free udp port")
}

fn config(node: &str, incarnation: u64, cluster_id: &str, addr: SocketAddr) -> Config {
    Config {
        node: node.into(),
        incarnation,
        cluster_id: cluster_id.into(),
        cookie: "test".into(),
        cluster_addr: addr,
        advertise_addr: addr.to_string(),
        http_addr: "127.0.0.1:1".parse().unwrap(),
        grpc_addr: "127.0.0.1:2".parse().unwrap(),
        seeds: Vec::new(),
        gossip_interval: GOSSIP,
        phi_threshold: 8.0,
        dial_backoff_max: Duration::from_secs(1),
        services: vec!["ping"],
        partition: Default::default(),
        tls: None,
    }
}

async fn gossip(config: Config, seeds: &[SocketAddr]) -> ChitchatHandle {
    let transport = Membership::transport(&config);
    gossip_over(config, seeds, &transport).await
}

/// Starts gossip over `transport`, whose refusal counts the caller keeps reading.
async fn gossip_over(
    config: Config,
    seeds: &[SocketAddr],
    transport: &gossip::SealedUdp,
) -> ChitchatHandle {
    let config = Config {
        seeds: seeds.iter().map(|s| s.to_string()).collect(),
        ..config
    };
    Membership::spawn_gossip(&config, transport)
        .await
        .expect("gossip starts")
}

/// Chitchat over plain, unsealed UDP: what anyone reaching the gossip port can run.
async fn unsealed(config: Config, seeds: &[SocketAddr]) -> ChitchatHandle {
    let config = Config {
        seeds: seeds.iter().map(|s| s.to_string()).collect(),
        ..config
    };
    let cc = ChitchatConfig {
        chitchat_id: ChitchatId::new(
            config.node.to_string(),
            config.incarnation,
            config.cluster_addr,
        ),
        cluster_id: config.cluster_id.clone(),
        gossip_interval: config.gossip_interval,
        listen_addr: config.cluster_addr,
        seed_nodes: config.seeds.clone(),
        failure_detector_config: FailureDetectorConfig::default(),
        marked_for_deletion_grace_period: Duration::from_secs(3600),
        catchup_callback: None,
        extra_liveness_predicate: None,
        protocol_version: chitchat::ProtocolVersion::V0,
    };
    let kvs = vec![
        (keys::CLUSTER_ADDR.into(), config.cluster_addr.to_string()),
        (keys::STATE.into(), "leaving".into()),
    ];
    chitchat::spawn_chitchat(cc, kvs, &UdpTransport)
        .await
        .expect("gossip starts")
}

/// Polls `node`'s members until `pred` holds, failing after 10 s.
async fn wait_for(node: &ChitchatHandle, what: &str, pred: impl Fn(&Members) -> bool) -> Members {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let members = read_members(node).await;
        if pred(&members) {
            return members;
        }
        assert!(Instant::now() < deadline, "{what}: {members:?}");
        tokio::time::sleep(GOSSIP).await;
    }
}

fn names(members: &Members) -> Vec<&str> {
    members.keys().map(String::as_str).collect()
}

fn live(members: &Members, name: &str) -> Option<u64> {
    members
        .get(name)
        .filter(|m| m.live && !m.dead)
        .map(|m| m.incarnation)
}

#[tokio::test]
async fn gossip_from_another_cluster_id_is_ignored() {
    let (a, b, c) = (free_addr(), free_addr(), free_addr());
    let seeds = [a, b, c];
    let blue_a = gossip(config("a", 1, "blue", a), &seeds).await;
    let blue_b = gossip(config("b", 1, "blue", b), &seeds).await;
    let green_c = gossip(config("c", 1, "green", c), &seeds).await;

    let seen = wait_for(&blue_a, "a sees b", |m| live(m, "b").is_some()).await;
    wait_for(&blue_b, "b sees a", |m| live(m, "a").is_some()).await;
    // Every node has gossiped with every seed many times over by now.
    tokio::time::sleep(GOSSIP * 10).await;

    assert_eq!(names(&read_members(&blue_a).await), vec!["a", "b"]);
    assert_eq!(names(&read_members(&blue_b).await), vec!["a", "b"]);
    assert_eq!(names(&read_members(&green_c).await), vec!["c"]);

    // What a node advertises arrives as its keys.
    let b_seen = &seen["b"];
    assert_eq!(b_seen.incarnation, 1);
    assert_eq!(b_seen.kv[keys::CLUSTER_ADDR], b.to_string());
    assert_eq!(b_seen.kv[keys::SERVICES], "ping");
    assert_eq!(b_seen.kv[keys::STATE], "up");

    for node in [blue_a, blue_b, green_c] {
        node.shutdown().await.expect("gossip stops");
    }
}

#[tokio::test]
async fn restarted_node_replaces_its_predecessor_in_gossip() {
    let (a, b) = (free_addr(), free_addr());
    let seeds = [a, b];
    let node_a = gossip(config("a", 1, "blue", a), &seeds).await;
    let node_b = gossip(config("b", 10, "blue", b), &seeds).await;
    wait_for(&node_a, "a sees b", |m| live(m, "b") == Some(10)).await;

    // b restarts on the same address with a newer incarnation.
    node_b.shutdown().await.expect("gossip stops");
    let node_b = gossip(config("b", 11, "blue", b), &seeds).await;
    let members = wait_for(&node_a, "a sees the new b", |m| live(m, "b") == Some(11)).await;
    assert_eq!(names(&members), vec!["a", "b"]);

    // Chitchat still holds the predecessor's state; only the successor counts.
    let held = {
        let guard = node_a.chitchat();
        let cc = guard.lock().await;
        cc.node_states()
            .keys()
            .filter(|id| &*id.node_id == "b")
            .map(|id| id.generation_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(held, vec![10, 11]);
    // However long a's failure detector takes to give up on the predecessor.
    for _ in 0..10 {
        assert_eq!(read_members(&node_a).await["b"].incarnation, 11);
        tokio::time::sleep(GOSSIP).await;
    }

    for node in [node_a, node_b] {
        node.shutdown().await.expect("gossip stops");
    }
}

/// Waits until `transport` has refused at least `n` datagrams for `reason`.
async fn wait_refused(transport: &gossip::SealedUdp, reason: Reject, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while transport.rejected(reason) < n {
        assert!(
            Instant::now() < deadline,
            "{reason} refusals: {}",
            transport.rejected(reason)
        );
        tokio::time::sleep(GOSSIP).await;
    }
}

/// a and b see each other, b `up` at incarnation 1, and nobody else.
async fn assert_untouched(node: &ChitchatHandle, other: &str) {
    let members = read_members(node).await;
    assert_eq!(names(&members).len(), 2, "{members:?}");
    assert_eq!(live(&members, other), Some(1), "{members:?}");
    assert_eq!(members[other].kv[keys::STATE], "up");
}

#[tokio::test]
async fn forged_gossip_changes_no_view() {
    let (a, b) = (free_addr(), free_addr());
    let seeds = [a, b];
    let (ta, tb) = (
        Membership::transport(&config("a", 1, "blue", a)),
        Membership::transport(&config("b", 1, "blue", b)),
    );
    let node_a = gossip_over(config("a", 1, "blue", a), &seeds, &ta).await;
    let node_b = gossip_over(config("b", 1, "blue", b), &seeds, &tb).await;
    wait_for(&node_a, "a sees b", |m| live(m, "b").is_some()).await;
    wait_for(&node_b, "b sees a", |m| live(m, "a").is_some()).await;

    // A phantom member over plain UDP, and an impostor of b with a newer incarnation that
    // announces it is leaving, sealed under another cookie: both gossip to a and b every round.
    let phantom = unsealed(config("phantom", 1, "blue", free_addr()), &seeds).await;
    let impostor_addr = free_addr();
    let impostor_config = Config {
        cookie: "guessed".into(),
        ..config("b", 2, "blue", impostor_addr)
    };
    let impostor = gossip(impostor_config, &seeds).await;
    impostor
        .chitchat()
        .lock()
        .await
        .self_node_state()
        .set(keys::STATE, "leaving");

    for t in [&ta, &tb] {
        wait_refused(t, Reject::Garbage, 3).await;
        wait_refused(t, Reject::Forged, 3).await;
    }
    // Many rounds of both after the first refusals.
    tokio::time::sleep(GOSSIP * 10).await;
    assert_untouched(&node_a, "b").await;
    assert_untouched(&node_b, "a").await;
    // Not even chitchat's own state holds them.
    let held = node_a.chitchat().lock().await.node_states().len();
    assert_eq!(held, 2);
    assert_eq!(
        ta.rejected(Reject::Replayed) + ta.rejected(Reject::Stale),
        0
    );

    for node in [node_a, node_b, phantom, impostor] {
        node.shutdown().await.expect("gossip stops");
    }
}

#[tokio::test]
async fn replayed_gossip_changes_nothing_and_is_counted() {
    let (a, b) = (free_addr(), free_addr());
    // A listener that a takes for a seed, so it receives a's sealed datagrams.
    let spy = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let spy_addr = spy.local_addr().unwrap();
    let tb = Membership::transport(&config("b", 1, "blue", b));
    let node_a = gossip(config("a", 1, "blue", a), &[b, spy_addr]).await;
    let node_b = gossip_over(config("b", 1, "blue", b), &[a], &tb).await;
    wait_for(&node_b, "b sees a", |m| live(m, "a").is_some()).await;

    let mut captured = vec![0; 65_536];
    let (len, from) = tokio::time::timeout(Duration::from_secs(10), spy.recv_from(&mut captured))
        .await
        .expect("a gossips to its seeds")
        .unwrap();
    assert_eq!(from, a);
    captured.truncate(len);

    // Played to b twice at once (at most the first can be news to b), and again later, when
    // a has sent far more than a window's worth since.
    spy.send_to(&captured, b).await.unwrap();
    spy.send_to(&captured, b).await.unwrap();
    wait_refused(&tb, Reject::Replayed, 1).await;
    tokio::time::sleep(GOSSIP * 40).await;
    let before = tb.rejected(Reject::Replayed);
    spy.send_to(&captured, b).await.unwrap();
    wait_refused(&tb, Reject::Replayed, before + 1).await;

    assert_untouched(&node_b, "a").await;
    assert_eq!(
        tb.rejected(Reject::Forged) + tb.rejected(Reject::Garbage),
        0
    );
    for node in [node_a, node_b] {
        node.shutdown().await.expect("gossip stops");
    }
}
