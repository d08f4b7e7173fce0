//! Membership's gossip on loopback: what chitchat hands to [`view`] through `read_members`.
//! (The rules applied to it are unit tested in [`view`].)

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use chitchat::ChitchatHandle;

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
    let config = Config {
        seeds: seeds.iter().map(|s| s.to_string()).collect(),
        ..config
    };
    Membership::spawn_gossip(&config)
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
